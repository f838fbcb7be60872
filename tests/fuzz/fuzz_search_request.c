/*
 * libFuzzer target: MessagePack SearchRequest decoding (hsc.search.requests,
 * what hsc-query reads from any writer of that topic). What decodes
 * re-encodes, decodes again to the same request, and re-encodes to the same
 * bytes.
 */
#include "fuzz.h"

static int filters_eq(const hsc_search_filters *a, const hsc_search_filters *b)
{
    return fuzz_list_eq(&a->genres, &b->genres) && fuzz_list_eq(&a->exclude_ids, &b->exclude_ids) &&
           fuzz_str_eq(a->language, b->language) && a->has == b->has &&
           (!(a->has & HSC_FILTER_YEAR_MIN) || a->year_min == b->year_min) &&
           (!(a->has & HSC_FILTER_YEAR_MAX) || a->year_max == b->year_max) &&
           (!(a->has & HSC_FILTER_MAX_MATURITY) || a->max_maturity == b->max_maturity);
}

static int request_eq(const hsc_search_request *a, const hsc_search_request *b)
{
    return a->v == b->v && fuzz_str_eq(a->user_id, b->user_id) && a->dim == b->dim &&
           !!a->embedding == !!b->embedding &&
           (!a->dim || !memcmp(a->embedding, b->embedding, a->dim * sizeof(float))) &&
           fuzz_list_eq(&a->seed_ids, &b->seed_ids) && a->k == b->k &&
           filters_eq(&a->filters, &b->filters) &&
           a->include_relationships == b->include_relationships && a->strategy == b->strategy &&
           a->cache == b->cache;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsc_search_request a, b;
    hsc_err err = {0};
    int rc = hsc_codec_decode_search_request(data, size, &a, &err);
    if (rc) {
        FUZZ_CHECK_ERR(rc, err);
        FUZZ_CHECK(!a.user_id && !a.embedding && !a.seed_ids.v);
        return 0;
    }
    char *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(hsc_codec_encode_search_request(&a, &out, &len, &err) == HSC_OK);
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES) { /* defaults written out can outgrow the bound */
        free(out);
        goto done;
    }
    FUZZ_CHECK(hsc_codec_decode_search_request(out, len, &b, &err) == HSC_OK);
    FUZZ_CHECK(request_eq(&a, &b));
    FUZZ_CHECK(hsc_codec_encode_search_request(&b, &again, &len2, &err) == HSC_OK);
    FUZZ_CHECK(len == len2 && !memcmp(out, again, len));
    free(out);
    free(again);
    hsc_search_request_clear(&b);
done:
    hsc_search_request_clear(&a);
    return 0;
}
