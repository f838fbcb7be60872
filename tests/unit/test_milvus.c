/*
 * Tests of common/stores/milvus.c's pure parts: request bodies and response parsing
 * for both REST dialects (responses shaped like the examples in Milvus's
 * docs and like what a 2.3 server answered), error envelopes, and filters.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "milvus.h"
#include "redis.h"

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("not JSON (%s): %s", je.text, s);
    return o;
}

static hsc_content_event make_event(const char *id, float *vec, size_t dim)
{
    hsc_content_event ev = {0};
    ev.v = 1;
    ev.id = (char *)id;
    ev.version = 1;
    ev.title = (char *)"T";
    ev.embedding = vec;
    ev.dim = dim;
    return ev;
}

static void test_upsert_body_v2_keys_by_id(void **state)
{
    (void)state;
    hsc_err err = {0};
    float v[3] = {0.1f, -2.5f, 3.0e-7f};
    hsc_content_event ev = make_event("t1", v, 3);
    char *g = "drama";
    ev.genres.v = &g;
    ev.genres.n = 1;
    ev.language = "en";
    ev.has = HSC_HAS_YEAR;
    ev.year = 1999;
    const hsc_content_event *evs[] = {&ev};
    char *body;
    assert_int_equal(hsc_milvus_build_upsert(HSC_MILVUS_V2, "coll", evs, 1, &body, &err), HSC_OK);
    json_t *o = parse(body);
    assert_string_equal(json_string_value(json_object_get(o, "collectionName")), "coll");
    json_t *e = json_array_get(json_object_get(o, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")), "t1");
    assert_null(json_object_get(e, "content_id"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "genres"), 0)),
                        "drama");
    assert_int_equal(json_integer_value(json_object_get(e, "year")), 1999);
    /* Unknown maturity is stored above every ceiling. */
    assert_int_equal(json_integer_value(json_object_get(e, "maturity")),
                     HSC_MILVUS_UNKNOWN_MATURITY);
    json_t *vec = json_object_get(e, "embedding");
    assert_int_equal(json_array_size(vec), 3);
    for (size_t i = 0; i < 3; i++) /* float32 -> decimal -> float32 is exact */
        assert_true((float)json_number_value(json_array_get(vec, i)) == v[i]);
    json_decref(o);
    free(body);
}

static void test_upsert_body_v1_uses_dynamic_id_field(void **state)
{
    (void)state;
    hsc_err err = {0};
    float v[2] = {1.0f, 2.0f};
    hsc_content_event ev = make_event("t2", v, 2);
    const hsc_content_event *evs[] = {&ev};
    char *body;
    assert_int_equal(hsc_milvus_build_upsert(HSC_MILVUS_V1, "coll", evs, 1, &body, &err), HSC_OK);
    json_t *o = parse(body);
    json_t *e = json_array_get(json_object_get(o, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "content_id")), "t2");
    assert_null(json_object_get(e, "id")); /* v1's key is automatic: sending one is refused */
    json_decref(o);
    free(body);
}

static void test_float32_exact_through_json_for_many_values(void **state)
{
    (void)state;
    hsc_err err = {0};
    enum { N = 2000 };
    float v[N];
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        uint32_t bits = (x & 0x807fffffu) | (((x >> 8) % 200 + 27) << 23); /* finite, varied */
        memcpy(&v[i], &bits, 4);
    }
    hsc_content_event ev = make_event("t3", v, N);
    const hsc_content_event *evs[] = {&ev};
    char *body;
    assert_int_equal(hsc_milvus_build_upsert(HSC_MILVUS_V2, "c", evs, 1, &body, &err), HSC_OK);
    json_t *o = parse(body);
    json_t *vec = json_object_get(json_array_get(json_object_get(o, "data"), 0), "embedding");
    for (int i = 0; i < N; i++) {
        float back = (float)json_number_value(json_array_get(vec, (size_t)i));
        if (memcmp(&back, &v[i], 4))
            fail_msg("value %d: %.9g came back as %.9g", i, (double)v[i], (double)back);
    }
    json_decref(o);
    free(body);
}

static void test_delete_body_escapes_ids(void **state)
{
    (void)state;
    hsc_err err = {0};
    const char *ids[] = {"a", "b\"c", "d\\e"};
    char *v2;
    assert_int_equal(hsc_milvus_build_delete(HSC_MILVUS_V2, "c", ids, 3, &v2, &err), HSC_OK);
    json_t *o = parse(v2);
    assert_string_equal(json_string_value(json_object_get(o, "filter")),
                        "id in [\"a\", \"b\\\"c\", \"d\\\\e\"]");
    json_decref(o);
    char *v1;
    assert_int_equal(hsc_milvus_build_delete(HSC_MILVUS_V1, "c", ids, 1, &v1, &err), HSC_OK);
    o = parse(v1);
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "content_id in [\"a\"]");
    json_decref(o);
    free(v1);
    free(v2);
}

/* An id that cannot be written in a filter is an error naming the request and the id. */
static void test_id_filter_errors_name_the_id(void **state)
{
    (void)state;
    hsc_err err = {0};
    const char *ids[] = {"a", "b\nc"};
    char *body = (char *)"untouched";
    assert_int_equal(hsc_milvus_build_delete(HSC_MILVUS_V2, "c", ids, 2, &body, &err), HSC_EINVAL);
    assert_null(body);
    assert_string_equal(err.msg,
                        "milvus delete: ids[1]: a control character cannot be written in a filter");
    body = (char *)"untouched";
    assert_int_equal(hsc_milvus_build_get(HSC_MILVUS_V1, "c", ids, 2, 0, &body, &err), HSC_EINVAL);
    assert_null(body);
    assert_string_equal(err.msg,
                        "milvus get: ids[1]: a control character cannot be written in a filter");
}

static void test_search_bodies(void **state)
{
    (void)state;
    hsc_err err = {0};
    float v[2] = {0.5f, 0.25f};
    char *b2;
    assert_int_equal(
        hsc_milvus_build_search(HSC_MILVUS_V2, "c", v, 2, 10, "year >= 2000", 0, &b2, &err),
        HSC_OK);
    json_t *o = parse(b2);
    assert_int_equal(json_integer_value(json_object_get(o, "limit")), 10);
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "year >= 2000");
    assert_string_equal(json_string_value(json_object_get(o, "annsField")), "embedding");
    json_t *data = json_object_get(o, "data");
    assert_int_equal(json_array_size(json_array_get(data, 0)), 2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(o, "searchParams"), "params"), "ef")),
                     64);
    json_decref(o);
    char *b1;
    assert_int_equal(hsc_milvus_build_search(HSC_MILVUS_V1, "c", v, 2, 5, NULL, 128, &b1, &err),
                     HSC_OK);
    o = parse(b1);
    assert_int_equal(json_array_size(json_object_get(o, "vector")), 2);
    assert_null(json_object_get(o, "filter"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "params"), "ef")), 128);
    /* Milvus 2.3's v1 handler drops params.ef; the beam follows the limit, so ask for ef */
    assert_int_equal(json_integer_value(json_object_get(o, "limit")), 128);
    assert_int_equal(hsc_milvus_search_limit(HSC_MILVUS_V1, 5, 128), 128);
    assert_int_equal(hsc_milvus_search_limit(HSC_MILVUS_V1, 200, 128), 200);
    assert_int_equal(hsc_milvus_search_limit(HSC_MILVUS_V1, 10, 99999), HSC_MILVUS_MAX_LIMIT);
    assert_int_equal(hsc_milvus_search_limit(HSC_MILVUS_V2, 5, 128), 5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "outputFields"), 0)),
                        "content_id");
    json_decref(o);
    free(b1);
    free(b2);
}

static void test_count_and_get_bodies(void **state)
{
    (void)state;
    hsc_err err = {0};
    char *c1;
    assert_int_equal(hsc_milvus_build_count(HSC_MILVUS_V1, "c", NULL, &c1, &err), HSC_OK);
    json_t *o = parse(c1);
    /* v1 refuses count(*) without a filter, and with its default page size. */
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "pk > 0");
    assert_int_equal(json_integer_value(json_object_get(o, "limit")), 0);
    json_decref(o);
    const char *ids[] = {"x", "y"};
    char *g2;
    assert_int_equal(hsc_milvus_build_get(HSC_MILVUS_V2, "c", ids, 2, 1, &g2, &err), HSC_OK);
    o = parse(g2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "id"), 1)), "y");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "outputFields"), 1)),
                        "embedding");
    json_decref(o);
    char *g1;
    assert_int_equal(hsc_milvus_build_get(HSC_MILVUS_V1, "c", ids, 2, 0, &g1, &err), HSC_OK);
    o = parse(g1);
    assert_string_equal(json_string_value(json_object_get(o, "filter")),
                        "content_id in [\"x\", \"y\"]");
    assert_int_equal(json_integer_value(json_object_get(o, "limit")), 2);
    json_decref(o);
    free(c1);
    free(g1);
    free(g2);
}

static const char SCHEMA[] = "{\"schema\":{\"autoId\":false,\"fields\":["
                             "{\"fieldName\":\"id\",\"dataType\":\"VarChar\",\"isPrimary\":true},"
                             "{\"fieldName\":\"embedding\",\"dataType\":\"FloatVector\","
                             "\"elementTypeParams\":{\"dim\":0}}]},"
                             "\"indexParams\":[{\"fieldName\":\"embedding\",\"metricType\":"
                             "\"COSINE\",\"indexType\":\"HNSW\","
                             "\"params\":{\"M\":16,\"efConstruction\":200}}]}";

static void test_create_bodies(void **state)
{
    (void)state;
    hsc_err err = {0};
    char *b2;
    assert_int_equal(hsc_milvus_build_create(HSC_MILVUS_V2, "c", SCHEMA, 384, &b2, &err), HSC_OK);
    assert_non_null(b2);
    json_t *o = parse(b2);
    json_t *f = json_array_get(json_object_get(json_object_get(o, "schema"), "fields"), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(f, "elementTypeParams"), "dim")), 384);
    json_t *ip = json_array_get(json_object_get(o, "indexParams"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ip, "params"), "M")), 16);
    json_decref(o);
    char *b1;
    assert_int_equal(hsc_milvus_build_create(HSC_MILVUS_V1, "c", SCHEMA, 768, &b1, &err), HSC_OK);
    o = parse(b1);
    assert_int_equal(json_integer_value(json_object_get(o, "dimension")), 768);
    assert_string_equal(json_string_value(json_object_get(o, "metricType")), "COSINE");
    json_decref(o);
    free(b1);
    free(b2);
    char *bad = (char *)"untouched";
    assert_int_equal(hsc_milvus_build_create(HSC_MILVUS_V2, "c", "{not json", 3, &bad, &err),
                     HSC_ECONFIG);
    assert_null(bad);
    assert_int_equal(err.code, HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "milvus schema"));
}

static void test_schema_file_builds(void **state)
{
    (void)state;
    FILE *f = fopen(HSC_SOURCE_DIR "/schemas/milvus/content.json", "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    hsc_err err = {0};
    char *b;
    if (hsc_milvus_build_create(HSC_MILVUS_V2, "hsc_content", buf, 384, &b, &err))
        fail_msg("%s", err.msg);
    json_t *o = parse(b);
    json_t *ip = json_array_get(json_object_get(o, "indexParams"), 0);
    assert_string_equal(json_string_value(json_object_get(ip, "indexType")), "HNSW");
    assert_string_equal(json_string_value(json_object_get(ip, "metricType")), "COSINE");
    json_t *p = json_object_get(ip, "params");
    assert_int_equal(json_integer_value(json_object_get(p, "M")), 16);
    assert_int_equal(json_integer_value(json_object_get(p, "efConstruction")), 200);
    json_decref(o);
    free(b);
}

static void test_check_envelopes(void **state)
{
    (void)state;
    hsc_err err = {0};
    const char *ok1 = "{\"code\":200,\"data\":{}}";
    const char *ok2 = "{\"code\":0,\"data\":{\"upsertCount\":2}}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V1, 200, ok1, strlen(ok1), &err), HSC_OK);
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, ok2, strlen(ok2), &err), HSC_OK);
    /* What a 2.3 server says for a vector of the wrong length: the input's fault. */
    const char *dim = "{\"code\":1804,\"message\":\"fail to deal the insert data, error: vector "
                      "length diff from dimension\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V1, 200, dim, strlen(dim), &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "code 1804"));
    assert_non_null(strstr(err.msg, "vector length diff"));
    const char *param = "{\"code\":1100,\"message\":\"invalid parameter[expected=...]\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, param, strlen(param), &err), HSC_EINVAL);
    /* A missing collection or a server not ready is worth retrying. */
    const char *gone = "{\"code\":100,\"message\":\"can't find collection\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V1, 200, gone, strlen(gone), &err),
                     HSC_ETRANSIENT);
    const char *busy = "{\"code\":65535,\"message\":\"service not ready\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, busy, strlen(busy), &err),
                     HSC_ETRANSIENT);
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 503, "down", 4, &err), HSC_ETRANSIENT);
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 400, "bad", 3, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "HTTP 400"));
    /* Malformed JSON from something in between: transient, with the start of the body. */
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V1, 200, "<html>", 6, &err), HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "<html>"));
}

static void test_check_errors_are_data(void **state)
{
    (void)state;
    hsc_err err = {0};
    /* Milvus's code and the HTTP status land in fields the client acts on. */
    const char *gone = "{\"code\":100,\"message\":\"collection not found[collection=c]\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, gone, strlen(gone), &err),
                     HSC_ETRANSIENT);
    assert_int_equal(err.server_code, HSC_MILVUS_CODE_COLLECTION_NOT_FOUND);
    assert_int_equal(err.http_status, 200);
    assert_true(err.not_found);
    const char *released = "{\"code\":101,\"message\":\"collection not loaded\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, released, strlen(released), &err),
                     HSC_ETRANSIENT);
    assert_int_equal(err.server_code, HSC_MILVUS_CODE_COLLECTION_NOT_LOADED);
    assert_false(err.not_found);
    /* v1 names a missing collection in words only, under another code. */
    const char *v1gone = "{\"code\":1,\"message\":\"collection hsc does not exist\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V1, 200, v1gone, strlen(v1gone), &err),
                     HSC_ETRANSIENT);
    assert_int_equal(err.server_code, 1);
    assert_true(err.not_found);
    const char *dim = "{\"code\":1100,\"message\":\"the dim (4) of field data(embedding) is not "
                      "equal to schema dim (3)\"}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, dim, strlen(dim), &err), HSC_EINVAL);
    assert_int_equal(err.server_code, 1100);
    assert_false(err.not_found);
    /* A proxy's 404 page: the status, no Milvus code. */
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 404, "404 page not found", 18, &err),
                     HSC_EINVAL);
    assert_int_equal(err.http_status, 404);
    assert_int_equal(err.server_code, 0);
    /* Success leaves the fields alone, and a later error in the same struct starts afresh. */
    const char *ok = "{\"code\":0,\"data\":{}}";
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, ok, strlen(ok), &err), HSC_OK);
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 503, "down", 4, &err), HSC_ETRANSIENT);
    assert_int_equal(err.http_status, 503);
    assert_int_equal(err.server_code, 0);
    assert_false(err.not_found);
}

static void test_parse_hits_both_dialects(void **state)
{
    (void)state;
    hsc_err err = {0};
    hsc_milvus_hit *h;
    size_t n;
    /* v1 (2.3): automatic key in "id", ours in "content_id" */
    const char *v1 = "{\"code\":200,\"data\":[{\"content_id\":\"a\",\"distance\":0.9999998,"
                     "\"id\":\"470682088567996885\"},{\"content_id\":\"b\",\"distance\":0.5,"
                     "\"id\":\"470682088567996886\"}]}";
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V1, v1, strlen(v1), &h, &n, &err), HSC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(h[0].id, "a");
    assert_true(fabsf(h[0].score - 0.9999998f) < 1e-7f);
    assert_string_equal(h[1].id, "b");
    free(h);
    /* v2: ids as strings, numbers, or nested per query vector */
    const char *v2 = "{\"code\":0,\"cost\":0,\"data\":[{\"distance\":0.8,\"id\":\"x\"},"
                     "{\"distance\":0.7,\"id\":42}]}";
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, v2, strlen(v2), &h, &n, &err), HSC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(h[1].id, "42");
    free(h);
    const char *nested = "{\"code\":0,\"data\":[[{\"distance\":1,\"id\":\"z\"}]]}";
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, nested, strlen(nested), &h, &n, &err),
                     HSC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].id, "z");
    free(h);
    const char *empty = "{\"code\":0,\"data\":[]}";
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, empty, strlen(empty), &h, &n, &err),
                     HSC_OK);
    assert_int_equal(n, 0);
    const char *noid = "{\"code\":0,\"data\":[{\"distance\":1}]}";
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, noid, strlen(noid), &h, &n, &err),
                     HSC_ETRANSIENT);
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, "{\"code\":0,", 10, &h, &n, &err),
                     HSC_ETRANSIENT);
}

static void test_parse_entities_count_and_dim(void **state)
{
    (void)state;
    hsc_err err = {0};
    hsc_milvus_entity *e;
    size_t n;
    const char *q = "{\"code\":200,\"data\":[{\"content_id\":\"a\",\"embedding\":[0.1,0.2,0.3],"
                    "\"pk\":\"470682088567996885\"}]}";
    assert_int_equal(hsc_milvus_parse_entities(HSC_MILVUS_V1, q, strlen(q), &e, &n, &err), HSC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].id, "a");
    assert_int_equal(e[0].dim, 3);
    assert_true(e[0].vec[1] == 0.2f);
    free(e[0].vec);
    free(e);
    int64_t c;
    const char *c1 = "{\"code\":200,\"data\":[{\"count(*)\":\"2\"}]}";
    assert_int_equal(hsc_milvus_parse_count(c1, strlen(c1), &c, &err), HSC_OK);
    assert_int_equal(c, 2);
    const char *c2 = "{\"code\":0,\"data\":[{\"count(*)\":12345}]}";
    assert_int_equal(hsc_milvus_parse_count(c2, strlen(c2), &c, &err), HSC_OK);
    assert_int_equal(c, 12345);
    assert_int_equal(hsc_milvus_parse_count("{\"data\":[]}", 11, &c, &err), HSC_ETRANSIENT);
    int dim;
    const char *d1 = "{\"code\":200,\"data\":{\"fields\":[{\"name\":\"pk\",\"type\":\"Int64\"},"
                     "{\"name\":\"embedding\",\"type\":\"FloatVector(384)\"}]}}";
    assert_int_equal(hsc_milvus_parse_dim(HSC_MILVUS_V1, d1, strlen(d1), &dim, &err), HSC_OK);
    assert_int_equal(dim, 384);
    const char *d2 = "{\"code\":0,\"data\":{\"fields\":[{\"name\":\"embedding\",\"type\":"
                     "\"FloatVector\",\"params\":[{\"key\":\"dim\",\"value\":\"768\"}]}]}}";
    assert_int_equal(hsc_milvus_parse_dim(HSC_MILVUS_V2, d2, strlen(d2), &dim, &err), HSC_OK);
    assert_int_equal(dim, 768);
}

static void test_filters_are_built_from_typed_values(void **state)
{
    (void)state;
    hsc_milvus_filter f = {0};
    const char *genres[] = {"drama", "sci\"fi"};
    hsc_milvus_filter_contains_any(&f, "genres", genres, 2, 0);
    hsc_milvus_filter_int(&f, "maturity", "<=", 12);
    hsc_milvus_filter_str(&f, "language", "en", 0);
    const char *ex[] = {"horror"};
    hsc_milvus_filter_contains_any(&f, "genres", ex, 1, 1);
    assert_string_equal(hsc_milvus_filter_str_of(&f),
                        "array_contains_any(genres, [\"drama\", \"sci\\\"fi\"]) and maturity <= 12"
                        " and language == \"en\" and not array_contains_any(genres, "
                        "[\"horror\"])");
    hsc_milvus_filter_free(&f);
    /* An injected field name or operator makes the whole filter unusable. */
    hsc_milvus_filter g = {0};
    hsc_milvus_filter_int(&g, "year) or (1", "==", 1);
    assert_null(hsc_milvus_filter_str_of(&g));
    hsc_milvus_filter_free(&g);
    hsc_milvus_filter h = {0};
    hsc_milvus_filter_int(&h, "year", "== 1 or 1", 1);
    assert_null(hsc_milvus_filter_str_of(&h));
    hsc_milvus_filter_free(&h);
    hsc_milvus_filter k = {0};
    hsc_milvus_filter_str(&k, "language", "en\n", 0); /* control characters are refused */
    assert_null(hsc_milvus_filter_str_of(&k));
    hsc_milvus_filter_free(&k);
    hsc_milvus_filter empty = {0};
    assert_string_equal(hsc_milvus_filter_str_of(&empty), "");
}

static void test_redis_url(void **state)
{
    (void)state;
    char host[64], pw[64];
    int port, db;
    hsc_err err = {0};
    assert_int_equal(hsc_redis_parse_url("redis://127.0.0.1:16379/2", host, sizeof(host), &port,
                                         &db, pw, sizeof(pw), &err),
                     HSC_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 16379);
    assert_int_equal(db, 2);
    assert_string_equal(pw, "");
    assert_int_equal(hsc_redis_parse_url("redis://:s3cret@cache", host, sizeof(host), &port, &db,
                                         pw, sizeof(pw), &err),
                     HSC_OK);
    assert_string_equal(host, "cache");
    assert_int_equal(port, 6379);
    assert_string_equal(pw, "s3cret");
    assert_int_equal(
        hsc_redis_parse_url("http://x", host, sizeof(host), &port, &db, pw, sizeof(pw), &err),
        HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "redis.url"));
    assert_int_equal(hsc_redis_parse_url("redis://h:99999", host, sizeof(host), &port, &db, pw,
                                         sizeof(pw), &err),
                     HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "port"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_body_v2_keys_by_id),
        cmocka_unit_test(test_upsert_body_v1_uses_dynamic_id_field),
        cmocka_unit_test(test_float32_exact_through_json_for_many_values),
        cmocka_unit_test(test_delete_body_escapes_ids),
        cmocka_unit_test(test_id_filter_errors_name_the_id),
        cmocka_unit_test(test_search_bodies),
        cmocka_unit_test(test_count_and_get_bodies),
        cmocka_unit_test(test_create_bodies),
        cmocka_unit_test(test_schema_file_builds),
        cmocka_unit_test(test_check_envelopes),
        cmocka_unit_test(test_check_errors_are_data),
        cmocka_unit_test(test_parse_hits_both_dialects),
        cmocka_unit_test(test_parse_entities_count_and_dim),
        cmocka_unit_test(test_filters_are_built_from_typed_values),
        cmocka_unit_test(test_redis_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
