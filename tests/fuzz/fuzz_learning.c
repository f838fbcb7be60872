/*
 * libFuzzer target: MessagePack LearningEvent decoding (hsc.learning.events).
 * Any input either decodes or fails with a message; what decodes re-encodes,
 * decodes again to the same event, and re-encodes to the same bytes.
 */
#include "fuzz.h"

static int learning_eq(const hsc_learning_event *a, const hsc_learning_event *b)
{
    return a->v == b->v && fuzz_str_eq(a->user_id, b->user_id) &&
           fuzz_str_eq(a->content_id, b->content_id) && fuzz_str_eq(a->kind, b->kind) &&
           a->has_value == b->has_value && (!a->has_value || fuzz_double_eq(a->value, b->value)) &&
           a->ts == b->ts;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsc_learning_event a, b;
    hsc_err err = {0};
    int rc = hsc_codec_decode_learning(data, size, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.user_id && !a.content_id && !a.kind);
        return 0;
    }
    char *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(hsc_codec_encode_learning(&a, &out, &len, &err) == HSC_OK);
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES) { /* defaults written out can outgrow the bound */
        free(out);
        goto done;
    }
    FUZZ_CHECK(hsc_codec_decode_learning(out, len, &b, &err) == HSC_OK);
    FUZZ_CHECK(learning_eq(&a, &b));
    FUZZ_CHECK(hsc_codec_encode_learning(&b, &again, &len2, &err) == HSC_OK);
    FUZZ_CHECK(len == len2 && !memcmp(out, again, len));
    free(out);
    free(again);
    hsc_learning_event_clear(&b);
done:
    hsc_learning_event_clear(&a);
    return 0;
}
