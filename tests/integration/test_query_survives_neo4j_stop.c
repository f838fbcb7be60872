/*
 * Neo4j is stopped while hybrid searches keep arriving: every search is
 * answered (none lost), on time (within its deadline), with status ok, the
 * vector results, and `degraded` naming the graph. Degraded answers are not
 * cached. When Neo4j is back, answers are whole again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "it_query.h"

#define DEADLINE_MS 1000

static long readyz(int port)
{
    char url[96];
    long st = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
    free(it_http("GET", url, NULL, &st));
    return st;
}

static void hybrid_request(struct it *t, hsc_search_request *req)
{
    itq_request_like(t, "t000020", req);
    hsc_strlist_push(&req->seed_ids, "t000021", 7);
}

static void test_hybrid_degrades_without_neo4j(void **s)
{
    struct it t;
    struct itq q;
    it_setup(&t);
    char *content = itq_catalogue(&q, &t, "300", "it-qneo");
    int port = 20000 + (int)((getpid() + 7) % 20000);
    char mp[48];
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    const char *qa[] = {ITQ_QUERY_ARGS,
                        "--set",
                        "query.group=it-qneo-query",
                        "--set",
                        "query.down_cooldown_ms=2000",
                        "--set",
                        mp,
                        NULL};
    pid_t query = it_spawn(&t, "hsc-query", qa);
    itq_client(&q);
    hsc_search_request req;
    hybrid_request(&t, &req);
    req.cache = false;
    struct itq_result res;
    itq_search_ok(&q, &req, &res);
    assert_int_equal(res.reply.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    hsc_search_reply_clear(&res.reply);
    assert_int_equal(readyz(port), 200);

    fprintf(stderr, "-- stopping neo4j\n");
    assert_int_equal(it_shell("%s/deploy/local/down neo4j", HSC_SOURCE_DIR), 0);
    long long worst = 0;
    for (int i = 0; i < 40; i++) {
        req.cache =
            i % 2 == 0; /* half of them may use the cache: degraded answers are not stored */
        assert_int_equal(itq_search(&q, &req, DEADLINE_MS, &res), 0); /* answered, not timed out */
        if (!res.reply.ok)
            fail_msg("search %d: %s: %s", i, res.reply.error_code, res.reply.error_message);
        assert_false(res.reply.cache_hit);
        assert_true(res.reply.degraded.n >= 1);
        int graph = 0;
        for (size_t d = 0; d < res.reply.degraded.n; d++)
            graph |= !strcmp(res.reply.degraded.v[d], "graph");
        assert_true(graph);
        assert_true(res.reply.nresults == 10);
        assert_string_equal(res.reply.results[0].id, "t000020"); /* the vector side answers */
        assert_true(res.reply.timings_us.total < DEADLINE_MS * 1000);
        if (res.round_trip_ms > worst)
            worst = res.round_trip_ms;
        if (i == 0) /* the worker has just met the outage: orchestrators stop routing to it */
            assert_int_equal(readyz(port), 503);
        hsc_search_reply_clear(&res.reply);
        usleep(50000);
    }
    fprintf(stderr, "-- 40 searches without neo4j: all answered, degraded, slowest %lld ms\n",
            worst);

    fprintf(stderr, "-- starting neo4j\n");
    assert_int_equal(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up neo4j "
                              ">/dev/null 2>&1",
                              HSC_SOURCE_DIR),
                     0);
    req.cache = false;
    itq_search_ok(&q, &req, &res); /* whole again: ok and nothing degraded */
    assert_int_equal(res.reply.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    assert_true(res.reply.timings_us.graph > 0);
    hsc_search_reply_clear(&res.reply);
    long long end = it_ms() + 10000; /* ready again once the cooldown after the last failure ends */
    while (readyz(port) != 200 && it_ms() < end)
        usleep(100000);
    assert_int_equal(readyz(port), 200);

    hsc_search_request_clear(&req);
    assert_int_equal(it_stop(query, SIGTERM, 30000), 0);
    itq_done(&q);
    remove(content);
    free(content);
    it_teardown(&t);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hybrid_degrades_without_neo4j)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
