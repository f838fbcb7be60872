/*
 * libFuzzer target: MessagePack PolicyEvent decoding (hsc.policy.events).
 * Any input either decodes or fails with a message; what decodes validates,
 * re-encodes, decodes again to the same event, and re-encodes to the same
 * bytes.
 */
#include "fuzz.h"

static int list_eq(const hsc_strlist *a, const hsc_strlist *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!fuzz_str_eq(a->v[i], b->v[i]))
            return 0;
    return 1;
}

static int policy_eq(const hsc_policy_event *a, const hsc_policy_event *b)
{
    if (a->v != b->v || !fuzz_str_eq(a->user_id, b->user_id) || a->version != b->version ||
        a->op != b->op || a->set != b->set || a->clear != b->clear ||
        a->max_maturity != b->max_maturity || a->has_ts != b->has_ts || a->ts != b->ts ||
        !list_eq(&a->excluded_genres, &b->excluded_genres) ||
        !list_eq(&a->languages, &b->languages) || !list_eq(&a->blocked_ids, &b->blocked_ids) ||
        !list_eq(&a->ids, &b->ids) || a->nprefs != b->nprefs)
        return 0;
    for (size_t i = 0; i < a->nprefs; i++)
        if (a->prefs[i].theme != b->prefs[i].theme ||
            !fuzz_str_eq(a->prefs[i].name, b->prefs[i].name) ||
            !fuzz_double_eq(a->prefs[i].weight, b->prefs[i].weight))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsc_policy_event a, b;
    hsc_err err = {0};
    int rc = hsc_codec_decode_policy(data, size, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.user_id && !a.prefs && !a.ids.n);
        return 0;
    }
    FUZZ_CHECK(hsc_codec_validate_policy(&a, &err) == HSC_OK);
    char *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(hsc_codec_encode_policy(&a, &out, &len, &err) == HSC_OK);
    FUZZ_CHECK(hsc_codec_decode_policy(out, len, &b, &err) == HSC_OK);
    FUZZ_CHECK(policy_eq(&a, &b));
    FUZZ_CHECK(hsc_codec_encode_policy(&b, &again, &len2, &err) == HSC_OK);
    FUZZ_CHECK(len == len2 && !memcmp(out, again, len));
    free(out);
    free(again);
    hsc_policy_event_clear(&b);
    hsc_policy_event_clear(&a);
    return 0;
}
