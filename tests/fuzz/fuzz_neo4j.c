/*
 * libFuzzer target: the Neo4j response parsers (common/neo4j.c) of both
 * dialects (Query API and tx/commit), with a success and an error status,
 * and the discovery document. What parses is a table the callers walk:
 * fields an array, rows an array; every row is read as the callers read it.
 */
#include "fuzz.h"
#include "neo4j.h"

static void parse(hsc_neo4j_dialect d, long status, const char *body, size_t len)
{
    hsc_neo4j_result res = {0};
    hsc_err err = {0};
    int rc = hsc_neo4j_parse(d, status, body, len, &res, &err);
    if (rc) {
        FUZZ_CHECK(err.code == rc && err.msg[0] && !res.fields && !res.rows);
        return;
    }
    FUZZ_CHECK(status >= 200 && status < 300);
    FUZZ_CHECK(json_is_array(res.fields) && json_is_array(res.rows));
    size_t i;
    json_t *row;
    json_array_foreach (res.rows, i, row)
        for (size_t c = 0; c < json_array_size(res.fields); c++)
            (void)json_string_value(json_array_get(row, c));
    hsc_neo4j_result_clear(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    parse(HSC_NEO4J_QUERY_API, 200, body, size);
    parse(HSC_NEO4J_QUERY_API, 400, body, size);
    parse(HSC_NEO4J_TX, 200, body, size);
    parse(HSC_NEO4J_TX, 503, body, size);
    hsc_neo4j_dialect d = hsc_neo4j_discover(body, size);
    FUZZ_CHECK(d == HSC_NEO4J_QUERY_API || d == HSC_NEO4J_TX);
    return 0;
}
