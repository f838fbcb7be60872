/*
 * common/stores/milvus.c's REST v2 dialect against the Milvus documentation's own
 * request and response bodies (tests/fixtures/milvus_v2, recorded from the
 * Milvus 2.4 REST reference; the local server is 2.3 and speaks only v1):
 *  - every request hsc builds uses only keys the endpoint's page documents,
 *    with the documented JSON types (the few keys beyond the page are listed
 *    here, each with why), and carries the page example's values where the
 *    two ask for the same thing;
 *  - the pages' example responses and the recorded error envelopes parse into
 *    the hits, entities, count and dimension they hold, and errors classify by
 *    Milvus's code;
 *  - the client's whole flow (probe, describe a missing collection, create,
 *    describe, load, upsert, search, get, count, delete) against an in-process
 *    HTTP server that answers each path with the recorded response: the paths
 *    in order, each body conforming, each callback once with the right result.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "milvus.h"
#include "util.h"

#define FIX HSC_SOURCE_DIR "/tests/fixtures/milvus_v2/"

static json_t *fixture(const char *name)
{
    json_error_t je;
    json_t *o = json_load_file(name, 0, &je);
    if (!o)
        fail_msg("%s: line %d: %s", name, je.line, je.text);
    return o;
}

static char *fixture_text(const char *name)
{
    char *s = hsc_read_file(name);
    if (!s)
        fail_msg("cannot read %s", name);
    return s;
}

static int type_ok(json_t *want, json_t *v)
{
    if (json_is_array(want))
        return json_is_array(v);
    if (json_is_object(want))
        return json_is_object(v);
    const char *t = json_string_value(want);
    if (!t)
        return 0;
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    return 0;
}

static int allowed(const char *path, const char *const *extra)
{
    for (size_t i = 0; extra && extra[i]; i++)
        if (!strcmp(extra[i], path))
            return 1;
    return 0;
}

/*
 * Counts the keys of sent that the documented body does not have, or has with
 * another type; keys in `extra` (dotted paths) are allowed and reported.
 */
static int conform(const char *what, const char *prefix, json_t *sent, json_t *doc,
                   const char *const *extra)
{
    int bad = 0;
    const char *k;
    json_t *v;
    json_object_foreach (sent, k, v) {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k);
        json_t *want = json_object_get(doc, k);
        if (!want) {
            if (allowed(path, extra)) {
                fprintf(stderr, "%s: %s is not on the 2.4 page (allowed: see the test)\n", what,
                        path);
                continue;
            }
            fprintf(stderr, "%s: key %s is not documented\n", what, path);
            bad++;
        } else if (!type_ok(want, v)) {
            fprintf(stderr, "%s: key %s has another type than documented\n", what, path);
            bad++;
        } else if (json_is_object(v) && json_object_size(want)) {
            bad += conform(what, path, v, want, extra);
        }
    }
    return bad;
}

/* The documented body of an endpoint checked against sent; the page's own example must conform
 * too, so the checker is not vacuous. */
static void check_body(const char *what, const char *body, const char *doc_file,
                       const char *example_file, const char *const *extra)
{
    json_t *sent = json_loads(body, 0, NULL);
    assert_non_null(sent);
    json_t *doc = fixture(doc_file);
    if (conform(what, "", sent, doc, extra))
        fail_msg("%s: hsc's body does not match the documented one: %s", what, body);
    if (example_file) {
        json_t *ex = fixture(example_file);
        if (conform(what, "", ex, doc, NULL))
            fail_msg("%s: the page's own example does not conform (a bad fixture)", what);
        json_decref(ex);
    }
    json_decref(doc);
    json_decref(sent);
}

/* The page's example vector, as float32. */
static void example_vector(float v[5])
{
    json_t *ex = fixture(FIX "search.request.json");
    json_t *d = json_array_get(json_object_get(ex, "data"), 0);
    assert_int_equal(json_array_size(d), 5);
    for (size_t i = 0; i < 5; i++)
        v[i] = (float)json_number_value(json_array_get(d, i));
    json_decref(ex);
}

/* Keys hsc sends beyond the 2.4 pages, and why. */
static const char *const SEARCH_EXTRA[] = {
    "searchParams.params.ef", /* HNSW's search width: the page lists `params` as "extra search
                               * parameters" and names only the range-search ones */
    NULL};
static const char *const COUNT_EXTRA[] = {
    "consistencyLevel", /* a count must see every write (Strong); not on the 2.4 Query page */
    NULL};

/* ---------------- request bodies ---------------- */

static void test_search_body_is_the_documented_one(void **s)
{
    (void)s;
    hsc_err err = {0};
    float v[5];
    example_vector(v);
    char *body;
    assert_int_equal(hsc_milvus_build_search(HSC_MILVUS_V2, "quick_setup", v, 5, 3,
                                             "language == \"en\"", 64, &body, &err),
                     HSC_OK);
    check_body("search", body, FIX "search.body.json", FIX "search.request.json", SEARCH_EXTRA);
    json_t *o = json_loads(body, 0, NULL), *ex = fixture(FIX "search.request.json");
    /* the same collection, limit and query vector as the page's example */
    assert_true(
        json_equal(json_object_get(o, "collectionName"), json_object_get(ex, "collectionName")));
    assert_true(json_equal(json_object_get(o, "limit"), json_object_get(ex, "limit")));
    json_t *got = json_object_get(o, "data"), *want = json_object_get(ex, "data");
    assert_int_equal(json_array_size(got), 1); /* one query vector: an array of arrays */
    for (size_t i = 0; i < 5; i++)
        assert_true((float)json_number_value(json_array_get(json_array_get(got, 0), i)) ==
                    (float)json_number_value(json_array_get(json_array_get(want, 0), i)));
    /* hsc's own choices: its vector field, its metric, its id */
    assert_string_equal(json_string_value(json_object_get(o, "annsField")), "embedding");
    json_t *sp = json_object_get(o, "searchParams");
    assert_string_equal(json_string_value(json_object_get(sp, "metricType")), "COSINE");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sp, "params"), "ef")), 64);
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "language == \"en\"");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "outputFields"), 0)),
                        "id");
    json_decref(o);
    json_decref(ex);
    free(body);
}

static void test_upsert_body_is_the_documented_one(void **s)
{
    (void)s;
    hsc_err err = {0};
    float v[5];
    example_vector(v);
    hsc_content_event ev = {.v = 1, .id = "0", .version = 1, .embedding = v, .dim = 5};
    const hsc_content_event *evs[] = {&ev};
    char *body;
    assert_int_equal(hsc_milvus_build_upsert(HSC_MILVUS_V2, "quick_setup", evs, 1, &body, &err),
                     HSC_OK);
    check_body("upsert", body, FIX "upsert.body.json", FIX "upsert.request.json", NULL);
    json_t *o = json_loads(body, 0, NULL), *ex = fixture(FIX "upsert.request.json");
    assert_true(
        json_equal(json_object_get(o, "collectionName"), json_object_get(ex, "collectionName")));
    /* one row per entity, keyed by the primary field, the vector as a float array */
    json_t *row = json_array_get(json_object_get(o, "data"), 0);
    json_t *exrow = json_array_get(json_object_get(ex, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "id")), "0");
    json_t *vec = json_object_get(row, "embedding"), *exvec = json_object_get(exrow, "vector");
    assert_int_equal(json_array_size(vec), json_array_size(exvec));
    for (size_t i = 0; i < 5; i++)
        assert_true((float)json_number_value(json_array_get(vec, i)) ==
                    (float)json_number_value(json_array_get(exvec, i)));
    json_decref(o);
    json_decref(ex);
    free(body);
}

static void test_delete_body_is_the_documented_one(void **s)
{
    (void)s;
    hsc_err err = {0};
    const char *ids[] = {"0", "1"};
    char *body;
    assert_int_equal(hsc_milvus_build_delete(HSC_MILVUS_V2, "quick_setup", ids, 2, &body, &err),
                     HSC_OK);
    check_body("delete", body, FIX "delete.body.json", FIX "delete.request.json", NULL);
    json_t *o = json_loads(body, 0, NULL);
    /* the page's filter is `id in [0,1]` on an Int64 key; hsc's key is VarChar, so quoted */
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "id in [\"0\", \"1\"]");
    json_decref(o);
    free(body);
}

static void test_get_body_is_the_documented_one(void **s)
{
    (void)s;
    hsc_err err = {0};
    const char *ids[] = {"1", "3", "5"};
    char *body;
    assert_int_equal(hsc_milvus_build_get(HSC_MILVUS_V2, "quick_setup", ids, 3, 1, &body, &err),
                     HSC_OK);
    check_body("get", body, FIX "get.body.json", FIX "get.request.json", NULL);
    json_t *o = json_loads(body, 0, NULL);
    json_t *id = json_object_get(o, "id");
    assert_int_equal(json_array_size(id), 3);
    assert_string_equal(json_string_value(json_array_get(id, 2)), "5");
    json_decref(o);
    free(body);
}

static void test_count_body_is_the_documented_one(void **s)
{
    (void)s;
    hsc_err err = {0};
    char *body;
    assert_int_equal(hsc_milvus_build_count(HSC_MILVUS_V2, "test_collection", NULL, &body, &err),
                     HSC_OK);
    check_body("count", body, FIX "query_count.body.json", FIX "query_count.request.json",
               COUNT_EXTRA);
    json_t *o = json_loads(body, 0, NULL), *ex = fixture(FIX "query_count.request.json");
    /* the page's count: an empty filter, count(*) as the only output, and no limit */
    assert_true(json_equal(json_object_get(o, "filter"), json_object_get(ex, "filter")));
    assert_true(
        json_equal(json_object_get(o, "outputFields"), json_object_get(ex, "outputFields")));
    assert_null(json_object_get(o, "limit"));
    json_decref(o);
    json_decref(ex);
    free(body);
}

static void test_create_body_is_the_documented_one(void **s)
{
    (void)s;
    char *schema = fixture_text(HSC_SOURCE_DIR "/schemas/milvus/content.json");
    hsc_err err = {0};
    char *body;
    assert_int_equal(hsc_milvus_build_create(HSC_MILVUS_V2, "quick_setup", schema, 5, &body, &err),
                     HSC_OK);
    assert_non_null(body);
    json_t *o = json_loads(body, 0, NULL), *ex = fixture(FIX "create.request.json");
    /* the page's custom setup: schema.fields[] of fieldName/dataType/isPrimary/
     * elementTypeParams, and indexParams[] of fieldName/metricType/indexName/params.index_type */
    json_t *f, *fields = json_object_get(json_object_get(o, "schema"), "fields");
    size_t i;
    int primary = 0, vector = 0;
    json_array_foreach (fields, i, f) {
        assert_true(json_is_string(json_object_get(f, "fieldName")));
        assert_true(json_is_string(json_object_get(f, "dataType")));
        primary += json_is_true(json_object_get(f, "isPrimary"));
        if (!strcmp(json_string_value(json_object_get(f, "dataType")), "FloatVector")) {
            vector++;
            assert_int_equal(
                json_integer_value(json_object_get(json_object_get(f, "elementTypeParams"), "dim")),
                5);
        }
    }
    assert_int_equal(primary, 1);
    assert_int_equal(vector, 1);
    json_t *ix = json_array_get(json_object_get(o, "indexParams"), 0);
    json_t *exix = json_array_get(json_object_get(ex, "indexParams"), 0);
    const char *k;
    json_t *v;
    json_object_foreach (exix, k, v) /* every key of the page's index entry is there */
        if (!json_object_get(ix, k))
            fail_msg("create: indexParams[0].%s missing", k);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ix, "params"), "index_type")), "HNSW");
    json_decref(o);
    json_decref(ex);
    free(body);
    free(schema);
}

/* ---------------- responses ---------------- */

static void test_documented_responses_parse(void **s)
{
    (void)s;
    hsc_err err = {0};
    char *b = fixture_text(FIX "search.response.json");
    assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, b, strlen(b), &err), 0);
    hsc_milvus_hit *h;
    size_t n;
    assert_int_equal(hsc_milvus_parse_hits(HSC_MILVUS_V2, b, strlen(b), &h, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(h[0].id, "0"); /* Int64 keys come back as numbers */
    assert_string_equal(h[2].id, "4");
    assert_true(fabsf(h[1].score - 0.6290165f) < 1e-7f);
    free(h);
    free(b);

    b = fixture_text(FIX "get.response.json");
    hsc_milvus_entity *e;
    assert_int_equal(hsc_milvus_parse_entities(HSC_MILVUS_V2, b, strlen(b), &e, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(e[1].id, "3");
    assert_null(e[1].vec); /* not asked for */
    for (size_t i = 0; i < n; i++)
        free(e[i].vec);
    free(e);
    free(b);

    b = fixture_text(FIX "query_count.response.json");
    int64_t count;
    assert_int_equal(hsc_milvus_parse_count(b, strlen(b), &count, &err), 0);
    assert_int_equal(count, 20);
    free(b);

    b = fixture_text(FIX "describe.response.json");
    int dim;
    assert_int_equal(hsc_milvus_parse_dim(HSC_MILVUS_V2, b, strlen(b), &dim, &err), 0);
    assert_int_equal(dim, 5);
    free(b);

    static const char *const ok[] = {FIX "upsert.response.json", FIX "delete.response.json",
                                     FIX "has.response.json",    FIX "load.response.json",
                                     FIX "create.response.json", NULL};
    for (size_t i = 0; ok[i]; i++) {
        b = fixture_text(ok[i]);
        if (hsc_milvus_check(HSC_MILVUS_V2, 200, b, strlen(b), &err))
            fail_msg("%s: %s", ok[i], err.msg);
        free(b);
    }
}

static void test_documented_errors_classify_by_code(void **s)
{
    (void)s;
    static const struct {
        const char *file;
        int code;
        const char *has;
    } cases[] = {
        /* the collection is missing: transient, and ensure recognises it and creates it */
        {FIX "error_collection_not_found.response.json", HSC_ETRANSIENT, "code 100:"},
        /* a wrong vector: the input is wrong, so the message goes to the DLQ */
        {FIX "error_dim_mismatch.response.json", HSC_EINVAL, "code 1100: the dim (4)"},
        {FIX "error_missing_parameter.response.json", HSC_EINVAL, "code 1802: missing required"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *b = fixture_text(cases[i].file);
        hsc_err err = {0};
        assert_int_equal(hsc_milvus_check(HSC_MILVUS_V2, 200, b, strlen(b), &err), cases[i].code);
        if (!strstr(err.msg, cases[i].has))
            fail_msg("%s: %s", cases[i].file, err.msg);
        /* ensure decides on the field, not on the text */
        assert_int_equal(err.not_found, cases[i].code == HSC_ETRANSIENT);
        free(b);
    }
}

/* ---------------- the client against recorded answers ---------------- */

#define MAXREQ 32

/* The in-process server: one thread, one connection at a time, each answered and closed. */
static struct server {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    char *paths[MAXREQ], *bodies[MAXREQ];
    int n, describes;
} srv;

/* The recorded response for a path (describe answers "missing" the first time). */
static const char *answer_for(const char *path)
{
    if (!strcmp(path, "/v2/vectordb/collections/has"))
        return FIX "has.response.json";
    if (!strcmp(path, "/v2/vectordb/collections/describe"))
        return srv.describes++ == 0 ? FIX "error_collection_not_found.response.json"
                                    : FIX "describe.response.json";
    if (!strcmp(path, "/v2/vectordb/collections/create"))
        return FIX "create.response.json";
    if (!strcmp(path, "/v2/vectordb/collections/load"))
        return FIX "load.response.json";
    if (!strcmp(path, "/v2/vectordb/entities/upsert"))
        return FIX "upsert.response.json";
    if (!strcmp(path, "/v2/vectordb/entities/search"))
        return FIX "search.response.json";
    if (!strcmp(path, "/v2/vectordb/entities/get"))
        return FIX "get.response.json";
    if (!strcmp(path, "/v2/vectordb/entities/query"))
        return FIX "query_count.response.json";
    if (!strcmp(path, "/v2/vectordb/entities/delete"))
        return FIX "delete.response.json";
    return NULL;
}

static void serve_one(int c)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof(buf) - 1) {
        ssize_t k = read(c, buf + len, sizeof(buf) - 1 - len);
        if (k <= 0)
            return;
        len += (size_t)k;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    char method[16], path[256];
    if (sscanf(buf, "%15s %255s", method, path) != 2)
        return;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl && cl < end ? (size_t)atol(cl + 17) : 0, have = len - (size_t)(end + 4 - buf);
    char *body = malloc(want + 1);
    memcpy(body, end + 4, have < want ? have : want);
    while (have < want) {
        ssize_t k = read(c, body + have, want - have);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    body[want] = '\0';
    pthread_mutex_lock(&srv.mu);
    const char *file = answer_for(path);
    if (srv.n < MAXREQ) {
        srv.paths[srv.n] = strdup(path);
        srv.bodies[srv.n++] = body;
    } else {
        free(body);
    }
    pthread_mutex_unlock(&srv.mu);
    char *resp = file ? hsc_read_file(file) : strdup("404 page not found");
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      file ? "200 OK" : "404 Not Found", strlen(resp));
    if (write(c, head, (size_t)hl) != hl || write(c, resp, strlen(resp)) < 0)
        fprintf(stderr, "server: write failed\n");
    free(resp);
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            return NULL; /* closed: the test is over */
        serve_one(c);
        close(c);
    }
}

static void server_start(void)
{
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv.fd, 16), 0);
    assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&a, &al), 0);
    srv.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv.th, NULL, serve, NULL), 0);
}

static void server_stop(void)
{
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv.th, NULL);
    for (int i = 0; i < srv.n; i++) {
        free(srv.paths[i]);
        free(srv.bodies[i]);
    }
    pthread_mutex_destroy(&srv.mu);
}

/* One operation's outcome. */
struct done {
    int calls;
    hsc_err err;
    size_t nhits, nents;
    char first[HSC_MAX_ID_LEN + 1];
    int64_t count;
};

static void on_done(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct done *d = arg;
    d->calls++;
    if (err) {
        d->err = *err;
        return;
    }
    d->nhits = res->nhits;
    d->nents = res->nents;
    d->count = res->count;
    if (res->nhits)
        snprintf(d->first, sizeof(d->first), "%s", res->hits[0].id);
    else if (res->nents)
        snprintf(d->first, sizeof(d->first), "%s", res->ents[0].id);
}

static void wait_done(struct ev_loop *loop, struct done *d, const char *what)
{
    while (!d->calls)
        ev_run(loop, EVRUN_ONCE);
    ev_run(loop, EVRUN_NOWAIT); /* a second callback would show here */
    assert_int_equal(d->calls, 1);
    if (d->err.code)
        fail_msg("%s: %s", what, d->err.msg);
}

static void test_client_flow_against_recorded_answers(void **s)
{
    (void)s;
    server_start();
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *http = hsc_http_new(loop, &err);
    assert_non_null(http);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    struct hsc_milvus_settings st = {.url = url,
                                     .token = "",
                                     .collection = "quick_setup",
                                     .schema_path = HSC_SOURCE_DIR "/schemas/milvus/content.json",
                                     .dim = 5, /* the documented describe's dimension */
                                     .dialect = HSC_MILVUS_AUTO,
                                     .timeout_ms = 5000,
                                     .retries = 0,
                                     .backoff_initial_ms = 10,
                                     .backoff_max_ms = 10};
    hsc_milvus *m = hsc_milvus_new(loop, http, &st, &err);
    assert_non_null(m);

    struct done d = {0};
    assert_int_equal(hsc_milvus_ensure(m, on_done, &d, &err), 0);
    wait_done(loop, &d, "ensure");
    assert_int_equal(hsc_milvus_dialect_of(m), HSC_MILVUS_V2); /* the has probe answered */
    assert_true(hsc_milvus_ready(m));

    float v[5];
    example_vector(v);
    hsc_content_event a = {.v = 1, .id = "0", .version = 1, .embedding = v, .dim = 5};
    hsc_content_event b = {.v = 1, .id = "1", .version = 1, .embedding = v, .dim = 5};
    const hsc_content_event *evs[] = {&a, &b};
    memset(&d, 0, sizeof(d));
    assert_int_equal(hsc_milvus_upsert(m, evs, 2, on_done, &d, &err), 0);
    wait_done(loop, &d, "upsert");
    assert_int_equal(d.count, 2);

    memset(&d, 0, sizeof(d));
    assert_int_equal(hsc_milvus_search(m, v, 5, 3, NULL, 0, on_done, &d, &err), 0);
    wait_done(loop, &d, "search");
    assert_int_equal(d.nhits, 3);
    assert_string_equal(d.first, "0");

    const char *ids[] = {"1", "3", "5"};
    memset(&d, 0, sizeof(d));
    assert_int_equal(hsc_milvus_get(m, ids, 3, 0, on_done, &d, &err), 0);
    wait_done(loop, &d, "get");
    assert_int_equal(d.nents, 3);
    assert_string_equal(d.first, "1");

    memset(&d, 0, sizeof(d));
    assert_int_equal(hsc_milvus_count(m, NULL, on_done, &d, &err), 0);
    wait_done(loop, &d, "count");
    assert_int_equal(d.count, 20);

    memset(&d, 0, sizeof(d));
    assert_int_equal(hsc_milvus_delete(m, ids, 2, on_done, &d, &err), 0);
    wait_done(loop, &d, "delete");

    hsc_http_free(http);
    hsc_milvus_free(m);
    ev_loop_destroy(loop);

    /* what went over the wire: the documented paths in order, each body as documented */
    static const struct {
        const char *path, *doc;
        const char *const *extra;
    } want[] = {
        {"/v2/vectordb/collections/has", FIX "collection.body.json", NULL},
        {"/v2/vectordb/collections/describe", FIX "collection.body.json", NULL},
        {"/v2/vectordb/collections/create", NULL, NULL},
        {"/v2/vectordb/collections/describe", FIX "collection.body.json", NULL},
        {"/v2/vectordb/collections/load", FIX "collection.body.json", NULL},
        {"/v2/vectordb/entities/upsert", FIX "upsert.body.json", NULL},
        {"/v2/vectordb/entities/search", FIX "search.body.json", SEARCH_EXTRA},
        {"/v2/vectordb/entities/get", FIX "get.body.json", NULL},
        {"/v2/vectordb/entities/query", FIX "query_count.body.json", COUNT_EXTRA},
        {"/v2/vectordb/entities/delete", FIX "delete.body.json", NULL},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    pthread_mutex_lock(&srv.mu);
    int n = srv.n;
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "-- %s %s\n", srv.paths[i], srv.bodies[i]);
    assert_int_equal(n, (int)nwant);
    for (size_t i = 0; i < nwant; i++) {
        assert_string_equal(srv.paths[i], want[i].path);
        if (want[i].doc)
            check_body(want[i].path, srv.bodies[i], want[i].doc, NULL, want[i].extra);
    }
    server_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_body_is_the_documented_one),
        cmocka_unit_test(test_upsert_body_is_the_documented_one),
        cmocka_unit_test(test_delete_body_is_the_documented_one),
        cmocka_unit_test(test_get_body_is_the_documented_one),
        cmocka_unit_test(test_count_body_is_the_documented_one),
        cmocka_unit_test(test_create_body_is_the_documented_one),
        cmocka_unit_test(test_documented_responses_parse),
        cmocka_unit_test(test_documented_errors_classify_by_code),
        cmocka_unit_test(test_client_flow_against_recorded_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
