/*
 * libFuzzer target: the Milvus response parsers (common/stores/milvus.c) in both
 * REST dialects: the envelope check (with a 200 and a 500 status), search
 * hits, get/query entities, count(*) and describe. Each either parses or
 * fails with a message; what parses must be usable as the callers use it:
 * ids are NUL-terminated within their buffer, vectors as long as they say.
 */
#include "fuzz.h"
#include "milvus.h"

static void parse(hsc_milvus_dialect d, const char *body, size_t len)
{
    hsc_err err = {0};
    int rc = hsc_milvus_check(d, 200, body, len, &err);
    FUZZ_CHECK(rc == HSC_OK || (err.code == rc && err.msg[0]));
    FUZZ_CHECK(hsc_milvus_check(d, 500, body, len, &err) == HSC_ETRANSIENT && err.msg[0]);

    hsc_milvus_hit *hits = NULL;
    size_t n = 0;
    if (hsc_milvus_parse_hits(d, body, len, &hits, &n, &err) == HSC_OK) {
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(memchr(hits[i].id, 0, sizeof(hits[i].id)));
        free(hits);
    } else {
        FUZZ_CHECK(!hits && !n && err.msg[0]);
    }

    hsc_milvus_entity *ents = NULL;
    if (hsc_milvus_parse_entities(d, body, len, &ents, &n, &err) == HSC_OK) {
        hsc_milvus_result r = {.ents = ents, .nents = n};
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(memchr(ents[i].id, 0, sizeof(ents[i].id)));
            float sum = 0; /* every element is there (ASan checks the reads) */
            for (size_t k = 0; k < ents[i].dim; k++)
                sum += ents[i].vec[k];
            (void)sum;
        }
        hsc_milvus_result_clear(&r);
    } else {
        FUZZ_CHECK(!ents && err.msg[0]);
    }

    int64_t count = -1;
    if (hsc_milvus_parse_count(body, len, &count, &err) == HSC_OK)
        FUZZ_CHECK(count >= 0);
    int dim = -1;
    FUZZ_CHECK(hsc_milvus_parse_dim(d, body, len, &dim, &err) == HSC_OK || err.msg[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(HSC_MILVUS_V1, (const char *)data, size);
    parse(HSC_MILVUS_V2, (const char *)data, size);
    return 0;
}
