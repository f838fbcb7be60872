/*
 * hsc status against the real stack: every backend reachable with its
 * version; a consumer group's lag is what was published and not yet
 * consumed, then 0 with its member listed once a worker runs; a stopped
 * backend is reported DOWN with exit status 1, and ok again once it is back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>

#include "it_common.h"

static struct it T;

/* Runs `hsc status --json` in the test's namespace; returns its exit status and the report. */
static int status(json_t **out)
{
    char *text;
    const char *args[] = {
        "--set", "ingest.group=st-ingest", "status", "--json", "--timeout", "2000", NULL};
    int rc = it_run(&T, "hsc", args, &text);
    const char *p = strstr(text, "{\n");
    *out = p ? json_loads(p, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (!*out)
        fail_msg("no JSON from hsc status:\n%s", text);
    free(text);
    return rc;
}

static json_t *backend(json_t *r, const char *name)
{
    size_t i;
    json_t *b;
    json_array_foreach (json_object_get(r, "backends"), i, b)
        if (!strcmp(json_string_value(json_object_get(b, "name")), name))
            return b;
    fail_msg("no backend %s", name);
    return NULL;
}

static json_t *group(json_t *r, const char *worker)
{
    size_t i;
    json_t *g;
    json_array_foreach (json_object_get(r, "groups"), i, g)
        if (!strcmp(json_string_value(json_object_get(g, "worker")), worker))
            return g;
    fail_msg("no group for %s", worker);
    return NULL;
}

static long long lag(json_t *g, const char *topic)
{
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(g, "topics"), i, t)
        if (!strcmp(json_string_value(json_object_get(t, "topic")), topic))
            return json_integer_value(json_object_get(t, "lag"));
    return -1;
}

static void test_status_follows_the_deployment(void **s)
{
    const char *content = it_topic(&T, "content_events");
    char *path = it_sample(&T, "content", "40", "40");
    assert_int_equal(it_publish(&T, "content", path), 0);

    json_t *r;
    assert_int_equal(status(&r), 0);
    const char *names[] = {"kafka", "postgresql", "redis", "milvus", "neo4j"};
    for (int i = 0; i < 5; i++) {
        json_t *b = backend(r, names[i]);
        if (!json_is_true(json_object_get(b, "ok")))
            fail_msg("%s: %s", names[i], json_string_value(json_object_get(b, "detail")));
        assert_true(strlen(json_string_value(json_object_get(b, "version"))) > 0);
    }
    assert_non_null(
        strstr(json_string_value(json_object_get(backend(r, "neo4j"), "version")), "5."));
    assert_non_null(strstr(json_string_value(json_object_get(backend(r, "kafka"), "detail")),
                           "9/9 hsc topics"));
    /* nobody consumes yet: the group's lag is everything published */
    json_t *g = group(r, "hsc-ingest");
    assert_string_equal(json_string_value(json_object_get(g, "group")), "st-ingest");
    assert_int_equal(lag(g, content), 40);
    assert_int_equal(json_array_size(json_object_get(g, "members")), 0);
    json_decref(r);

    const char *args[] = {"--set", "ingest.group=st-ingest", NULL};
    pid_t ingest = it_spawn(&T, "hsc-ingest", args);
    assert_int_equal(it_pg_wait(&T, "SELECT count(*) FROM content", 40, 60000), 40);
    long long until = it_ms() + 30000;
    long long l = -1;
    size_t members = 0;
    while (it_ms() < until) {
        assert_int_equal(status(&r), 0);
        g = group(r, "hsc-ingest");
        l = lag(g, content);
        members = json_array_size(json_object_get(g, "members"));
        json_t *m = json_array_get(json_object_get(g, "members"), 0);
        int parts = m ? (int)json_integer_value(json_object_get(m, "partitions")) : 0;
        json_decref(r);
        if (l == 0 && members == 1 && parts > 0)
            break;
        usleep(500000);
    }
    assert_int_equal(l, 0);
    assert_int_equal(members, 1);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);

    /* a stopped backend is DOWN, and the exit status says something is wrong */
    assert_int_equal(it_shell("%s/deploy/local/down redis", HSC_SOURCE_DIR), 0);
    int rc = status(&r);
    json_t *redis = backend(r, "redis");
    int down = !json_is_true(json_object_get(redis, "ok"));
    char detail[256];
    snprintf(detail, sizeof(detail), "%s", json_string_value(json_object_get(redis, "detail")));
    int others_ok = json_is_true(json_object_get(backend(r, "postgresql"), "ok"));
    json_decref(r);
    assert_int_equal(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up redis "
                              ">/dev/null 2>&1",
                              HSC_SOURCE_DIR),
                     0);
    assert_int_equal(rc, 1);
    assert_true(down);
    assert_true(strlen(detail) > 0);
    assert_true(others_ok);
    assert_int_equal(status(&r), 0);
    assert_true(json_is_true(json_object_get(backend(r, "redis"), "ok")));
    json_decref(r);
}

static int setup(void **s)
{
    it_setup(&T);
    return 0;
}

static int teardown(void **s)
{
    it_teardown(&T);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_status_follows_the_deployment)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
