/*
 * PostgreSQL is stopped in the middle of a stream and started again: hsc-ingest
 * pauses, retries with backoff, and in the end every event is stored once:
 * exactly N titles, exactly M learning events, and weights that show no
 * event was applied twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <unistd.h>

#include "it_common.h"

#define N 20000
#define M 20000

static void outage(const char *why)
{
    fprintf(stderr, "-- stopping postgresql (%s)\n", why);
    assert_int_equal(it_shell("%s/deploy/local/down postgres", HSC_SOURCE_DIR), 0);
    sleep(4);
    fprintf(stderr, "-- starting postgresql\n");
    assert_int_equal(
        it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up postgres >/dev/null 2>&1",
                 HSC_SOURCE_DIR),
        0);
}

static void test_pg_restart_mid_stream(void **state)
{
    struct it t;
    it_setup(&t);
    char *content = it_sample(&t, "content", "20000", "20000");
    char *learning = it_sample(&t, "learning", "20000", "20000");
    assert_int_equal(it_publish(&t, "content", content), 0);
    const char *args[] = {"--set", "ingest.group=it-pgrestart", "--set", "backoff.max_ms=1000",
                          "--set", "ingest.batch_max=200",      NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", args);

    long long seen = it_pg_wait_at_least(&t, "SELECT count(*) FROM content", 2000, 60000);
    assert_true(seen >= 2000);
    assert_true(seen < N); /* the outage really happens mid-stream */
    outage("content stream");
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", N, 120000), N);

    assert_int_equal(it_publish(&t, "learning", learning), 0);
    seen = it_pg_wait_at_least(&t, "SELECT count(*) FROM learning_events", 2000, 60000);
    assert_true(seen >= 2000 && seen < M);
    outage("learning stream");
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM learning_events", M, 120000), M);
    assert_int_equal(it_wait_caught_up(&t, "it-pgrestart", it_topic(&t, "learning_events"), 60000),
                     0);
    assert_int_equal(it_pg_int(&t, IT_WEIGHTS_MISMATCH_SQL), 0);

    /* Downstream got every title (at least once). */
    struct it_record *recs;
    size_t n = it_consume_all(&t, it_topic(&t, "content_ingested"), N, 60000, &recs);
    assert_true(n >= N);
    it_records_free(recs, n);

    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    remove(content);
    remove(learning);
    free(content);
    free(learning);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pg_restart_mid_stream)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
