/*
 * hsc-enrich started while PostgreSQL is down (a restart, a rolling deploy)
 * waits for it instead of exiting: its similarity index is loaded from
 * PostgreSQL before it consumes anything, and a worker that exits there
 * leaves its supervisor to restart it in a loop (the chaos soak saw 17 such
 * exits in 3 minutes when Kafka restarted). Checked: the process is still
 * running while PostgreSQL is down, and once it is back every title published
 * before and after is in the graph at its version, with SIMILAR_TO edges
 * between the two halves (the titles loaded at start are in its index).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "it_common.h"

#define N 400

static int running(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

static void test_enrich_waits_for_postgresql(void **state)
{
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    char *content = it_sample(&t, "content", "400", "400");
    char *first, *second;
    it_split_lines(content, N / 2, &first, &second);
    const char *ingest_args[] = {"--set", "ingest.group=it-enrichwait-ingest", NULL};
    const char *enrich_args[] = {"--set", "enrich.group=it-enrichwait", "--set",
                                 "backoff.max_ms=1000", NULL};

    /* The first half is in PostgreSQL (and on the ingested topic) before enrich starts. */
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    assert_int_equal(it_publish(&t, "content", first), 0);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", N / 2, 60000), N / 2);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);

    fprintf(stderr, "-- stopping postgresql, then starting hsc-enrich\n");
    assert_int_equal(it_shell("%s/deploy/local/down postgres", HSC_SOURCE_DIR), 0);
    pid_t enrich = it_spawn(&t, "hsc-enrich", enrich_args);
    sleep(5);
    assert_true(running(enrich)); /* waiting, not exited */
    assert_int_equal(it_neo4j_int("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)"), 0);
    fprintf(stderr, "-- starting postgresql\n");
    assert_int_equal(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up postgres "
                              ">/dev/null 2>&1",
                              HSC_SOURCE_DIR),
                     0);
    PQreset(t.pg); /* the test's own connection went with the server */

    ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    assert_int_equal(it_publish(&t, "content", second), 0);
    assert_int_equal(
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", N, 180000), N);
    assert_true(running(enrich));

    /* Every title at its published version. */
    it_pg_load_jsonl(&t, "pub_content", content);
    struct it_strs want, got;
    it_pg_strs(&t, IT_PUBLISHED_ID_VERSION("pub_content"), &want);
    it_neo4j_strs("MATCH (c:Content) WHERE c.stub IS NULL RETURN c.id, toString(c.version)", &got);
    assert_int_equal(want.n, N);
    assert_int_equal(it_strs_diff("Content (id, version)", &want, "published", &got, "graph"), 0);
    it_strs_free(&want);
    it_strs_free(&got);
    /* The index held the first half (loaded from PostgreSQL once it was back) when the second
     * came: similarity crosses the halves (ids t000001..t000200 are the first). */
    long long crossing = it_neo4j_int("MATCH (a:Content)-[:SIMILAR_TO]-(b:Content) "
                                      "WHERE a.id <= 't000200' AND b.id > 't000200' "
                                      "RETURN count(*)");
    fprintf(stderr, "-- SIMILAR_TO edges across the halves: %lld\n", crossing);
    assert_true(crossing > 0);

    assert_int_equal(it_stop(enrich, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    remove(content);
    remove(first);
    remove(second);
    free(content);
    free(first);
    free(second);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_enrich_waits_for_postgresql)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
