/*
 * Two hsc-ingest processes share a consumer group. One is killed with
 * SIGKILL mid-stream (no chance to commit); the group rebalances and the
 * survivor re-reads from the last commit. Nothing is lost and, thanks to the
 * idempotent writes, nothing is applied twice.
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

static const char *ARGS[] = {"--set", "ingest.group=it-kill",
                             "--set", "ingest.batch_max=200",
                             "--set", "rdkafka.consumer.session.timeout.ms=6000",
                             "--set", "rdkafka.consumer.heartbeat.interval.ms=1000",
                             NULL};

static void test_member_killed(void **state)
{
    struct it t;
    it_setup(&t);
    char *content = it_sample(&t, "content", "20000", "20000");
    char *learning = it_sample(&t, "learning", "20000", "20000");
    assert_int_equal(it_publish(&t, "content", content), 0);
    pid_t a = it_spawn(&t, "hsc-ingest", ARGS);
    pid_t b = it_spawn(&t, "hsc-ingest", ARGS);

    long long seen = it_pg_wait_at_least(&t, "SELECT count(*) FROM content", 3000, 60000);
    assert_true(seen >= 3000 && seen < N);
    fprintf(stderr, "-- killing one member at %lld rows\n", seen);
    assert_int_equal(it_stop(a, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", N, 120000), N);

    a = it_spawn(&t, "hsc-ingest", ARGS);
    assert_int_equal(it_publish(&t, "learning", learning), 0);
    seen = it_pg_wait_at_least(&t, "SELECT count(*) FROM learning_events", 3000, 60000);
    assert_true(seen >= 3000 && seen < M);
    fprintf(stderr, "-- killing the other member at %lld events\n", seen);
    assert_int_equal(it_stop(b, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM learning_events", M, 120000), M);
    assert_int_equal(it_wait_caught_up(&t, "it-kill", it_topic(&t, "learning_events"), 60000), 0);
    assert_int_equal(it_pg_int(&t, IT_WEIGHTS_MISMATCH_SQL), 0);

    assert_int_equal(it_stop(a, SIGTERM, 30000), 0);
    remove(content);
    remove(learning);
    free(content);
    free(learning);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_member_killed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
