/*
 * PostgreSQL is stopped in the middle of a stream and started again: hsc-ingest
 * pauses, retries with backoff, and in the end what PostgreSQL holds is what
 * was published, no more and no less:
 *  - the set of (id, version) of the content table equals the published one
 *    (a lost title or a stale version shows as a difference);
 *  - the learning events, row for row (user, content, kind, value, ts), equal
 *    the published ones, and their count and sum of values too;
 *  - every preference weight equals the one the published events imply, and
 *    the weights' total equals theirs (an event applied twice, or lost, shows);
 *  - hsc.content.ingested carries every published (id, version), read to its
 *    end as a seen-set (a duplicate delivery is allowed, a gap is not).
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
    assert_int_equal(it_wait_caught_up(&t, "it-pgrestart", it_topic(&t, "content_events"), 60000),
                     0);

    /* What PostgreSQL holds is what was published. */
    it_pg_load_jsonl(&t, "pub_content", content);
    it_pg_load_jsonl(&t, "pub_learning", learning);
    struct it_strs want, got;
    it_pg_strs(&t, IT_PUBLISHED_ID_VERSION("pub_content"), &want);
    it_pg_strs(&t, "SELECT id, version FROM content", &got);
    assert_int_equal(want.n, N);
    assert_int_equal(it_strs_diff("content (id, version)", &want, "published", &got, "stored"), 0);
    it_strs_free(&want);
    it_strs_free(&got);
    it_pg_strs(&t, IT_PUBLISHED_LEARNING_SQL, &want);
    it_pg_strs(&t, IT_STORED_LEARNING_SQL, &got);
    assert_int_equal(want.n, M);
    assert_int_equal(it_strs_diff("learning events", &want, "published", &got, "stored"), 0);
    it_strs_free(&want);
    it_strs_free(&got);
    /* the sums: of the events' values, and of the weights they imply */
    assert_int_equal(it_pg_int(&t, "SELECT ((SELECT round(sum((j->>'value')::float8)::numeric, 6)"
                                   " FROM pub_learning) = (SELECT round(sum(value)::numeric, 6)"
                                   " FROM learning_events))::int"),
                     1);
    assert_int_equal(it_pg_int(&t, IT_PUBLISHED_WEIGHTS_TOTAL_SQL), 1);
    assert_int_equal(it_pg_int(&t, IT_PUBLISHED_WEIGHTS_MISMATCH_SQL), 0);
    assert_int_equal(it_pg_int(&t, IT_WEIGHTS_MISMATCH_SQL), 0);
    char *total = it_pg_text(&t, "SELECT round(sum(weight)::numeric, 6) FROM user_preferences");
    assert_non_null(total);
    fprintf(stderr, "-- %d titles, %d learning events, weights total %s: as published\n", N, M,
            total);
    free(total);

    /* Downstream got every title, with its version (a seen-set: duplicates allowed, no gaps). */
    assert_int_equal(it_forwarded_diff(&t, it_topic(&t, "content_ingested"), "pub_content"), 0);

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
