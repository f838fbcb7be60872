/*
 * libFuzzer target: MessagePack ContentEvent decoding (hsc.content.events).
 * Any input either decodes or fails with a message; what decodes re-encodes,
 * decodes again to the same event, and re-encodes to the same bytes.
 */
#include "fuzz.h"

static int content_eq(const hsc_content_event *a, const hsc_content_event *b)
{
    return a->v == b->v && a->op == b->op && fuzz_str_eq(a->id, b->id) &&
           a->version == b->version && fuzz_str_eq(a->title, b->title) &&
           fuzz_str_eq(a->description, b->description) && fuzz_str_eq(a->kind, b->kind) &&
           fuzz_list_eq(&a->genres, &b->genres) && fuzz_list_eq(&a->themes, &b->themes) &&
           fuzz_list_eq(&a->moods, &b->moods) && fuzz_list_eq(&a->related, &b->related) &&
           fuzz_str_eq(a->language, b->language) && a->has == b->has && a->year == b->year &&
           a->maturity == b->maturity && a->duration_s == b->duration_s && a->ts == b->ts &&
           a->dim == b->dim && !!a->embedding == !!b->embedding &&
           (!a->dim || !memcmp(a->embedding, b->embedding, a->dim * sizeof(float)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsc_content_event a, b;
    hsc_err err = {0};
    int rc = hsc_codec_decode_content(data, size, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.id && !a.title && !a.embedding); /* nothing left to free */
        return 0;
    }
    char *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(hsc_codec_encode_content(&a, &out, &len, &err) == HSC_OK);
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES) { /* defaults written out can outgrow the bound */
        free(out);
        goto done;
    }
    FUZZ_CHECK(hsc_codec_decode_content(out, len, &b, &err) == HSC_OK);
    FUZZ_CHECK(content_eq(&a, &b));
    FUZZ_CHECK(hsc_codec_encode_content(&b, &again, &len2, &err) == HSC_OK);
    FUZZ_CHECK(len == len2 && !memcmp(out, again, len)); /* canonical */
    free(out);
    free(again);
    hsc_content_event_clear(&b);
done:
    hsc_content_event_clear(&a);
    return 0;
}
