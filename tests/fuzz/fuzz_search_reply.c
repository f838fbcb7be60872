/*
 * libFuzzer target: MessagePack SearchReply decoding (what hsc's client reads
 * from its reply partition, and hsc-query from its cache). What decodes
 * re-encodes and decodes again to the same reply, where the encoder's
 * defaults ("" for a missing title, "internal" for a missing error code) are
 * taken into account; then the second encoding is canonical.
 */
#include "fuzz.h"

static int result_eq(const hsc_search_result *a, const hsc_search_result *b)
{
    if (!fuzz_str_eq(a->id, b->id) || !fuzz_double_eq(a->score, b->score) ||
        !fuzz_double_eq(a->vector_score, b->vector_score) ||
        !fuzz_double_eq(a->graph_score, b->graph_score) ||
        !fuzz_double_eq(a->policy_score, b->policy_score) ||
        !fuzz_str_eq_empty(a->title, b->title) || !fuzz_list_eq(&a->genres, &b->genres) ||
        a->has_rels != b->has_rels || a->nrels != b->nrels)
        return 0;
    for (size_t i = 0; i < a->nrels; i++)
        if (!fuzz_str_eq(a->rels[i].type, b->rels[i].type) ||
            !fuzz_str_eq(a->rels[i].seed, b->rels[i].seed) ||
            !fuzz_double_eq(a->rels[i].score, b->rels[i].score))
            return 0;
    return 1;
}

static int reply_eq(const hsc_search_reply *a, const hsc_search_reply *b)
{
    const hsc_search_timings *x = &a->timings_us, *y = &b->timings_us;
    if (a->v != b->v || !fuzz_str_eq(a->correlation_id, b->correlation_id) || a->ok != b->ok ||
        a->strategy != b->strategy || !fuzz_str_eq(a->plan, b->plan) ||
        a->cache_hit != b->cache_hit || !fuzz_list_eq(&a->degraded, &b->degraded) ||
        a->nresults != b->nresults || x->total != y->total || x->cache != y->cache ||
        x->vector != y->vector || x->graph != y->graph || x->policy != y->policy ||
        x->rank != y->rank)
        return 0;
    if (!a->ok && (strcmp(a->error_code ? a->error_code : "internal",
                          b->error_code ? b->error_code : "internal") ||
                   !fuzz_str_eq_empty(a->error_message, b->error_message)))
        return 0;
    for (size_t i = 0; i < a->nresults; i++)
        if (!result_eq(&a->results[i], &b->results[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsc_search_reply a, b, c;
    hsc_err err = {0};
    int rc = hsc_codec_decode_search_reply(data, size, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.correlation_id && !a.results && !a.plan);
        return 0;
    }
    char *out = NULL, *again = NULL, *third = NULL;
    size_t len = 0, len2 = 0, len3 = 0;
    FUZZ_CHECK(hsc_codec_encode_search_reply(&a, &out, &len, &err) == HSC_OK);
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES) { /* defaults written out can outgrow the bound */
        free(out);
        goto done;
    }
    FUZZ_CHECK(hsc_codec_decode_search_reply(out, len, &b, &err) == HSC_OK);
    FUZZ_CHECK(reply_eq(&a, &b));
    FUZZ_CHECK(hsc_codec_encode_search_reply(&b, &again, &len2, &err) == HSC_OK);
    FUZZ_CHECK(hsc_codec_decode_search_reply(again, len2, &c, &err) == HSC_OK);
    FUZZ_CHECK(hsc_codec_encode_search_reply(&c, &third, &len3, &err) == HSC_OK);
    FUZZ_CHECK(len2 == len3 && !memcmp(again, third, len2));
    free(out);
    free(again);
    free(third);
    hsc_search_reply_clear(&b);
    hsc_search_reply_clear(&c);
done:
    hsc_search_reply_clear(&a);
    return 0;
}
