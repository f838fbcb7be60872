/*
 * libFuzzer target: the JSON-lines reader of `hsc publish`
 * (common/transport/json_event.c). Each input is one line, read both as a content and
 * as a learning event. What reads must be an event the MessagePack codec
 * accepts: it encodes, and decodes back to the same event.
 */
#include "fuzz.h"
#include "json_event.h"

static int content_eq(const hsc_content_event *a, const hsc_content_event *b)
{
    return a->v == b->v && a->op == b->op && fuzz_str_eq(a->id, b->id) &&
           a->version == b->version && fuzz_str_eq(a->title, b->title) &&
           fuzz_str_eq(a->description, b->description) && fuzz_str_eq(a->kind, b->kind) &&
           fuzz_list_eq(&a->genres, &b->genres) && fuzz_list_eq(&a->themes, &b->themes) &&
           fuzz_list_eq(&a->moods, &b->moods) && fuzz_list_eq(&a->related, &b->related) &&
           fuzz_str_eq(a->language, b->language) && a->has == b->has && a->year == b->year &&
           a->maturity == b->maturity && a->duration_s == b->duration_s && a->ts == b->ts &&
           a->dim == b->dim &&
           (!a->dim || !memcmp(a->embedding, b->embedding, a->dim * sizeof(float)));
}

static void as_content(const char *line, size_t len)
{
    hsc_content_event a, b;
    hsc_err err = {0};
    int rc = hsc_json_to_content(line, len, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.id && !a.title && !a.embedding);
        return;
    }
    char *out = NULL;
    size_t olen = 0;
    FUZZ_CHECK(hsc_codec_encode_content(&a, &out, &olen, &err) == HSC_OK);
    FUZZ_CHECK(hsc_codec_decode_content(out, olen, &b, &err) == HSC_OK);
    FUZZ_CHECK(content_eq(&a, &b));
    free(out);
    hsc_content_event_clear(&a);
    hsc_content_event_clear(&b);
}

static void as_learning(const char *line, size_t len)
{
    hsc_learning_event a, b;
    hsc_err err = {0};
    int rc = hsc_json_to_learning(line, len, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.user_id && !a.content_id && !a.kind);
        return;
    }
    char *out = NULL;
    size_t olen = 0;
    FUZZ_CHECK(hsc_codec_encode_learning(&a, &out, &olen, &err) == HSC_OK);
    FUZZ_CHECK(hsc_codec_decode_learning(out, olen, &b, &err) == HSC_OK);
    FUZZ_CHECK(fuzz_str_eq(a.user_id, b.user_id) && fuzz_str_eq(a.content_id, b.content_id) &&
               fuzz_str_eq(a.kind, b.kind) && a.has_value == b.has_value &&
               (!a.has_value || fuzz_double_eq(a.value, b.value)) && a.ts == b.ts);
    free(out);
    hsc_learning_event_clear(&a);
    hsc_learning_event_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_content((const char *)data, size);
    as_learning((const char *)data, size);
    return 0;
}
