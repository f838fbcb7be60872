/*
 * Allocation-failure run of the store request builders (milvus_request.c and
 * its id filter, neo4j.c's statement body, embeddings.c's request): every
 * body of both dialects is built with its n-th allocation failing, for every
 * n. A failed build says HSC_ENOMEM with a message naming the request (not a
 * bad request, which a worker would send to the DLQ; the one exception is
 * jansson's parser, below), leaves no body and
 * leaks nothing; a build that says it succeeded gives exactly the body an
 * unhindered build gives (never one missing the part that could not be added).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "embeddings.h"
#include "failalloc.h"
#include "milvus.h"
#include "neo4j.h"

static const char SCHEMA[] = "{\"schema\":{\"autoId\":false,\"fields\":["
                             "{\"fieldName\":\"id\",\"dataType\":\"VarChar\",\"isPrimary\":true},"
                             "{\"fieldName\":\"embedding\",\"dataType\":\"FloatVector\"}]},"
                             "\"indexParams\":[{\"fieldName\":\"embedding\",\"metricType\":"
                             "\"COSINE\",\"indexType\":\"HNSW\"}]}";
static const char *const IDS[] = {"t1", "t\"2", "t3"};
static const float VEC[3] = {0.5f, -0.25f, 1e-3f};

static int upsert(hsc_milvus_dialect d, char **body, hsc_err *err)
{
    char *genres[] = {"drama", "crime"};
    hsc_content_event ev = {.v = 1, .id = "t1", .version = 1, .embedding = (float *)VEC, .dim = 3};
    ev.genres.v = genres;
    ev.genres.n = 2;
    ev.language = "en";
    const hsc_content_event *evs[] = {&ev, &ev};
    return hsc_milvus_build_upsert(d, "c", evs, 2, body, err);
}

static int build(int i, const json_t *params, char **body, hsc_err *err)
{
    hsc_milvus_dialect d = i % 2 ? HSC_MILVUS_V1 : HSC_MILVUS_V2;
    switch (i / 2) {
    case 0:
        return upsert(d, body, err);
    case 1:
        return hsc_milvus_build_delete(d, "c", IDS, 3, body, err);
    case 2:
        return hsc_milvus_build_search(d, "c", VEC, 3, 5, "year >= 2000", 128, body, err);
    case 3:
        return hsc_milvus_build_get(d, "c", IDS, 3, 1, body, err);
    case 4:
        return hsc_milvus_build_count(d, "c", "language == \"en\"", body, err);
    case 5:
        return hsc_milvus_build_create(d, "c", SCHEMA, 3, body, err);
    case 6:
        return hsc_neo4j_build(i % 2 ? HSC_NEO4J_TX : HSC_NEO4J_QUERY_API,
                               "MATCH (c:Content {id: $id}) RETURN c", params, body, err);
    default: {
        const char *texts[] = {"Heat", "Solo"};
        return hsc_embeddings_request_json("m", texts, 2, body, err);
    }
    }
}

#define NBODIES 15

struct ctx {
    json_t *params;      /* the Cypher parameters (made unarmed) */
    char *want[NBODIES]; /* each body as an unhindered build makes it */
};

static void setup(void *arg)
{
    struct ctx *x = arg;
    x->params = json_pack("{s:s, s:[i, i]}", "id", "t1", "n", 1, 2);
    assert_non_null(x->params);
    for (int i = 0; i < NBODIES; i++) {
        hsc_err err = {0};
        if (build(i, x->params, &x->want[i], &err))
            fail_msg("body %d: %s", i, err.msg);
    }
}

static void teardown(void *arg)
{
    struct ctx *x = arg;
    for (int i = 0; i < NBODIES; i++)
        free(x->want[i]);
    json_decref(x->params);
}

static int body(void *arg)
{
    struct ctx *x = arg;
    for (int i = 0; i < NBODIES; i++) {
        hsc_err err = {0};
        char *b = (char *)"untouched";
        int rc = build(i, x->params, &b, &err);
        /* jansson's parser reports some failed allocations as a syntax error: the schema
           file's text, parsed by create, is then said to be bad; nothing here can tell */
        int parse_lost = i / 2 == 5 && rc == HSC_ECONFIG && strstr(err.msg, "milvus schema: line");
        if (rc && !parse_lost) {
            if (rc != HSC_ENOMEM || b || !strstr(err.msg, "out of memory"))
                fail_msg("body %d: rc %d, body %s, '%s'", i, rc, b ? "left" : "none", err.msg);
            assert_true(hsc_failalloc_failed());
            return rc;
        }
        if (rc) {
            assert_null(b);
            assert_true(hsc_failalloc_failed());
            return rc;
        }
        if (strcmp(b, x->want[i]))
            fail_msg("body %d: built\n%s\ninstead of\n%s", i, b, x->want[i]);
        free(b);
    }
    return 0;
}

static void test_request_builders_alloc(void **s)
{
    if (!hsc_failalloc_active())
        skip();
    struct ctx x;
    hsc_failalloc_case c = {"store request bodies", setup, body, teardown, &x};
    assert_true(hsc_failalloc_run(&c) > 50);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_builders_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
