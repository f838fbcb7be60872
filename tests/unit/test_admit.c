/*
 * Admission control (workers/query/admit.c): which searches are refused as
 * overloaded (the in-flight limit, a strategy slower than the time left,
 * the probe that lets an estimate recover, cached_only and the switch), and
 * how the limit adapts (slow start, growth only while in use, one halving
 * a round, the bounds, the latency target), and that an outage is not
 * overload (searches held by a down backend do not count; searches that met
 * an outage teach nothing, so none is refused once the server is back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "admit.h"

static const struct query_admit_settings DEFAULTS = {
    .on = true, .min_inflight = 8, .max_inflight = 256, .slow_ratio = 0.5};

static struct query_admit_input input(hsc_strategy s, double left_ms, int inflight)
{
    return (struct query_admit_input){
        .strategy = s, .left_ms = left_ms, .queued_ms = -1, .inflight = inflight, .now_s = 100};
}

/* Admits one search and ends it at once with outcome o; returns the decision's verdict. */
static enum query_admit_verdict run(struct query_admit *a, struct query_admit_input in,
                                    struct query_admit_outcome o)
{
    struct query_admit_decision d;
    query_admit_decide(a, &in, &d);
    if (d.verdict == QUERY_ADMIT_RUN) {
        struct query_admit_ticket t = query_admit_start(a, &in, &d);
        query_admit_end(a, &t, &o);
    }
    return d.verdict;
}

static const struct query_admit_outcome FAST = {.answered = true, .clean = true, .total_ms = 50};
static const struct query_admit_outcome SLOW = {.answered = true, .clean = true, .total_ms = 700};

static void test_admit_initial_limit(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    assert_int_equal(a.limit, 32); /* an eighth of 256 */
    struct query_admit_settings tiny = DEFAULTS;
    tiny.max_inflight = 16;
    query_admit_init(&a, &tiny);
    assert_int_equal(a.limit, 8); /* never below the minimum */
    tiny.max_inflight = 4;
    query_admit_init(&a, &tiny);
    assert_int_equal(a.limit, 4); /* nor above the maximum */
    assert_int_equal(a.set.min_inflight, 4);
    (void)s;
}

static void test_admit_refuses_at_the_limit(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_decision d;
    struct query_admit_input in = input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 31);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    in.inflight = 32;
    in.queued_ms = 420;
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_FULL);
    assert_non_null(strstr(d.why, "in-flight limit (32 searches"));
    assert_non_null(strstr(d.why, "waited 420 ms in Kafka"));
    /* a cached_only search is one Redis read: never refused */
    in.strategy = HSC_STRATEGY_CACHED_ONLY;
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    /* nor is anything with admission off, and nothing is counted */
    struct query_admit_settings off = DEFAULTS;
    off.on = false;
    query_admit_init(&a, &off);
    in.strategy = HSC_STRATEGY_HYBRID_PARALLEL;
    in.inflight = 100000;
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    struct query_admit_ticket t = query_admit_start(&a, &in, &d);
    assert_false(t.admitted);
    (void)s;
}

static void test_admit_refuses_what_would_miss_its_deadline(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    /* hybrid_parallel searches take 300 ms (long deadlines, so not slow) */
    struct query_admit_outcome o = {.answered = true, .clean = true, .total_ms = 300};
    for (int i = 0; i < 8; i++)
        run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 5000, 0), o);
    assert_true(fabs(a.service_ms[HSC_STRATEGY_HYBRID_PARALLEL] - 300) < 1e-6);
    struct query_admit_decision d;
    struct query_admit_input in = input(HSC_STRATEGY_HYBRID_PARALLEL, 250, 0);
    in.queued_ms = 730;
    in.now_s = 100.1; /* the last probe (below) is recent */
    a.last_probe[HSC_STRATEGY_HYBRID_PARALLEL] = 100;
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_LATE);
    assert_non_null(strstr(d.why, "hybrid_parallel searches take 300 ms"));
    assert_non_null(strstr(d.why, "250 ms are left"));
    assert_non_null(strstr(d.why, "waited 730 ms in Kafka"));
    /* another strategy has its own estimate (none yet here) */
    in.strategy = HSC_STRATEGY_VECTOR_ONLY;
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    /* enough time: admitted */
    in = input(HSC_STRATEGY_HYBRID_PARALLEL, 320, 0);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    assert_false(d.probe);
    (void)s;
}

static void test_admit_probe_lets_an_estimate_recover(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_outcome o = {.answered = true, .clean = true, .total_ms = 900};
    for (int i = 0; i < 8; i++)
        run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 100000, 0), o);
    struct query_admit_decision d;
    struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 200, 0);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN); /* the first in a second is a probe */
    assert_true(d.probe);
    struct query_admit_ticket t = query_admit_start(&a, &in, &d);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_LATE); /* the next is not */
    in.now_s += 0.25;
    query_admit_decide(&a, &in, &d);
    assert_true(d.probe); /* a quarter second later, another */
    /* the probe comes back fast: the estimate moves toward it */
    struct query_admit_outcome fast = {.answered = true, .clean = true, .total_ms = 20};
    query_admit_end(&a, &t, &fast);
    assert_true(a.service_ms[HSC_STRATEGY_GRAPH_ONLY] < 900);
    (void)s;
}

static void test_admit_limit_grows_while_in_use(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    /* slow start: one more for every clean search that used the limit */
    for (int i = 0; i < 10; i++)
        assert_int_equal(run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 980, a.limit - 1), FAST),
                         QUERY_ADMIT_RUN);
    assert_int_equal(a.limit, 42);
    /* a quiet worker (few in flight) teaches the limit nothing */
    for (int i = 0; i < 100; i++)
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 980, 1), FAST);
    assert_int_equal(a.limit, 42);
    /* degraded or failed searches neither raise nor cut it */
    struct query_admit_outcome degraded = {.answered = true, .total_ms = 50};
    run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 980, 41), degraded);
    assert_int_equal(a.limit, 42);
    /* never past the maximum */
    for (int i = 0; i < 1000; i++)
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 980, a.limit - 1), FAST);
    assert_int_equal(a.limit, 256);
    (void)s;
}

static void test_admit_limit_halves_once_a_round(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    a.limit = 64;
    /* two searches started under the same limit both come back slow: one cut */
    struct query_admit_input in = input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 60);
    struct query_admit_decision d;
    query_admit_decide(&a, &in, &d);
    struct query_admit_ticket t1 = query_admit_start(&a, &in, &d);
    struct query_admit_ticket t2 = query_admit_start(&a, &in, &d);
    query_admit_end(&a, &t1, &SLOW); /* 700 ms of 980 left: over half */
    assert_int_equal(a.limit, 32);
    query_admit_end(&a, &t2, &SLOW);
    assert_int_equal(a.limit, 32);
    /* above the threshold now: one more per round (32 clean searches), not per search */
    for (int i = 0; i < 31; i++)
        run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 31), FAST);
    assert_int_equal(a.limit, 32);
    run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 31), FAST);
    assert_int_equal(a.limit, 33);
    /* a search that ran out of time cuts, whatever its duration says */
    struct query_admit_outcome cut = {.answered = true, .out_of_time = true, .total_ms = 60};
    run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 10), cut);
    assert_int_equal(a.limit, 16);
    /* and never below the minimum */
    for (int i = 0; i < 10; i++)
        run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 980, 0), cut);
    assert_int_equal(a.limit, 8);
    (void)s;
}

static void test_admit_slower_than_the_target_halves_the_limit(void **s)
{
    struct query_admit_settings set = DEFAULTS;
    set.target_ms = 50;
    struct query_admit a;
    query_admit_init(&a, &set);
    /* 60 ms of a 5 s deadline is no share of it worth a cut, but it is over the target */
    struct query_admit_outcome o = {.answered = true, .clean = true, .total_ms = 60};
    run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 5000, 20), o);
    assert_int_equal(a.limit, 16);
    /* a search within the target, the limit in use, is a good end: growth, no cut */
    o.total_ms = 40;
    for (int i = 0; i < 16; i++)
        run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 5000, 15), o);
    assert_int_equal(a.limit, 17);
    /* target 0: only the deadline's share counts, so the same 60 ms is a good end */
    set.target_ms = 0;
    query_admit_init(&a, &set);
    o.total_ms = 60;
    run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 5000, 20), o);
    assert_int_equal(a.limit, 33);
    (void)s;
}

static void test_admit_target_follows_a_slow_deployment(void **s)
{
    struct query_admit_settings set = DEFAULTS;
    set.target_ms = 50;
    struct query_admit a;
    query_admit_init(&a, &set);
    /* few in flight (2 of 32): a slow search says a backend is slow, not that too many run */
    struct query_admit_outcome o = {.answered = true, .clean = true, .total_ms = 90};
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 2), o);
    assert_int_equal(a.limit, 32);
    /* graph_only searches take 30 ms at the quickest here: the bar is 4 times that, 120 */
    o.total_ms = 30;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 2), o);
    o.total_ms = 100;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 20), o);
    assert_int_equal(a.limit, 33); /* in time: a good end */
    o.total_ms = 130;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 20), o);
    assert_int_equal(a.limit, 16);
    /* the quickest time is per strategy: hybrid_parallel has none yet, so its bar is 50 */
    o.total_ms = 60;
    run(&a, input(HSC_STRATEGY_HYBRID_PARALLEL, 5000, 10), o);
    assert_int_equal(a.limit, 8);
    /* and it is forgotten after two windows of 10 s with no quick search */
    a.limit = 32;
    o.total_ms = 100;
    o.now_s = 25;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 2), o);
    o.now_s = 36;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 20), o);
    assert_int_equal(a.limit, 32); /* the bar was 4 x 30: 100 ms in time */
    o.now_s = 37;
    o.total_ms = 130;
    run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 5000, 20), o);
    assert_int_equal(a.limit, 32); /* the quickest is now 100 ms: 130 is under 400 */
    (void)s;
}

static void test_admit_estimate_needs_samples(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_outcome o = {.answered = true, .clean = true, .total_ms = 900};
    for (int i = 0; i < 7; i++)
        run(&a, input(HSC_STRATEGY_AUTO, 100000, 0), o);
    a.last_probe[HSC_STRATEGY_AUTO] = 100;
    struct query_admit_decision d;
    struct query_admit_input in = input(HSC_STRATEGY_AUTO, 100, 0);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN); /* seven samples decide nothing */
    /* errors that did not take the search's time (a bad request) are not samples */
    struct query_admit_outcome bad = {.total_ms = 1};
    run(&a, input(HSC_STRATEGY_AUTO, 100000, 0), bad);
    assert_int_equal(a.samples[HSC_STRATEGY_AUTO], 7);
    run(&a, input(HSC_STRATEGY_AUTO, 100000, 0), o);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_LATE);
    (void)s;
}

static void test_admit_held_searches_do_not_count(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_ticket t[32];
    struct query_admit_decision d;
    for (int i = 0; i < 32; i++) {
        struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 1980, query_admit_counted(&a));
        query_admit_decide(&a, &in, &d);
        assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
        t[i] = query_admit_start(&a, &in, &d);
    }
    struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 1980, query_admit_counted(&a));
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_FULL);
    /* the backend goes down: the 32 wait in its client, held; the limit is free again */
    for (int i = 0; i < 32; i++) {
        query_admit_hold(&a, &t[i]);
        query_admit_hold(&a, &t[i]); /* idempotent */
    }
    assert_int_equal(a.running, 32);
    assert_int_equal(a.held, 32);
    assert_int_equal(query_admit_counted(&a), 0);
    in.inflight = query_admit_counted(&a);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    /* they run out of time: the limit is not cut, nothing is learnt of the strategy */
    struct query_admit_outcome late = {
        .answered = true, .out_of_time = true, .total_ms = 1980, .outage = false};
    for (int i = 0; i < 32; i++)
        query_admit_end(&a, &t[i], &late);
    assert_int_equal(a.limit, 32);
    assert_int_equal(a.cuts, 0);
    assert_int_equal(a.samples[HSC_STRATEGY_GRAPH_ONLY], 0);
    assert_int_equal(a.running, 0);
    assert_int_equal(a.held, 0);
    (void)s;
}

static void test_admit_outage_teaches_nothing(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_outcome fast = {.answered = true, .clean = true, .total_ms = 20};
    for (int i = 0; i < 8; i++)
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 1980, 0), fast);
    /* searches that met an outage (not held: say the cache was down, then the rest ran) run
     * out of time, slow, or degraded: no cut, no growth, no sample */
    struct query_admit_outcome out = {
        .answered = true, .out_of_time = true, .total_ms = 1990, .outage = true};
    struct query_admit_outcome degraded = {.answered = true, .total_ms = 1500, .outage = true};
    struct query_admit_outcome clean = {
        .answered = true, .clean = true, .total_ms = 20, .outage = true};
    for (int i = 0; i < 50; i++) {
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 1980, 31), out);
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 1980, 31), degraded);
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 1980, 31), clean);
    }
    assert_int_equal(a.limit, 32);
    assert_int_equal(a.cuts, 0);
    assert_true(fabs(a.service_ms[HSC_STRATEGY_VECTOR_ONLY] - 20) < 1e-6);
    assert_int_equal(a.running, 0);
    /* the same ends without the outage would have cut it to the minimum */
    out.outage = false;
    for (int i = 0; i < 10; i++)
        run(&a, input(HSC_STRATEGY_VECTOR_ONLY, 1980, 0), out);
    assert_int_equal(a.limit, 8);
    (void)s;
}

/*
 * The revert's case, at the integration test's load (40 searches/s, 2 s
 * deadlines): a 3 s restart under load, then the searches sent once the
 * server is back. None of those may be refused.
 */
static void test_admit_no_refusal_after_a_restart(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_outcome fast = {.answered = true, .clean = true, .total_ms = 15};
    for (int i = 0; i < 120; i++) /* 3 s of load before: one or two in flight */
        assert_int_equal(run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 1980, 1), fast), QUERY_ADMIT_RUN);
    int limit = a.limit;
    /* the outage: every search waits on the down backend until its deadline; each is held
     * once the client holds it back, the ones in flight when it went down as well */
    struct query_admit_ticket t[200];
    int n = 0, refused = 0;
    for (int tick = 0; tick < 120; tick++) { /* 3 s at 40/s */
        struct query_admit_decision d;
        struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 1980, query_admit_counted(&a));
        in.now_s = 100 + tick * 0.025;
        query_admit_decide(&a, &in, &d);
        if (d.verdict != QUERY_ADMIT_RUN) {
            refused++;
            continue;
        }
        t[n] = query_admit_start(&a, &in, &d);
        query_admit_hold(&a, &t[n]);
        n++;
        /* the search started 80 ticks ago reaches its deadline */
        if (n > 80) {
            struct query_admit_outcome late = {
                .answered = true, .out_of_time = true, .total_ms = 1980, .outage = true};
            query_admit_end(&a, &t[n - 81], &late);
        }
    }
    assert_int_equal(refused, 0);
    /* back: the searches still held run out of time while new ones arrive */
    int next_end = n > 80 ? n - 80 : 0;
    for (int tick = 0; tick < 200; tick++) { /* 5 s after */
        struct query_admit_decision d;
        struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 1980, query_admit_counted(&a));
        in.now_s = 103 + tick * 0.025;
        query_admit_decide(&a, &in, &d);
        assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
        struct query_admit_ticket nt = query_admit_start(&a, &in, &d);
        if (next_end < n) {
            struct query_admit_outcome late = {
                .answered = true, .out_of_time = true, .total_ms = 1980, .outage = true};
            query_admit_end(&a, &t[next_end++], &late);
        }
        query_admit_end(&a, &nt, &fast);
    }
    assert_int_equal(a.limit, limit);
    assert_int_equal(a.cuts, 0);
    assert_int_equal(a.running, 0);
    assert_int_equal(a.held, 0);
    (void)s;
}

/*
 * Once the server is back, the searches held during the outage still run
 * until their deadlines, and the lane lets calls through from one again: a
 * search started then that runs out of time does not cut the limit either.
 */
static void test_admit_backlog_of_an_outage_teaches_nothing(void **s)
{
    struct query_admit a;
    query_admit_init(&a, &DEFAULTS);
    struct query_admit_decision d;
    struct query_admit_input in = input(HSC_STRATEGY_GRAPH_ONLY, 1980, 0);
    query_admit_decide(&a, &in, &d);
    struct query_admit_ticket held = query_admit_start(&a, &in, &d);
    query_admit_hold(&a, &held);
    /* back: a new search, counted, runs out of time behind the backlog */
    in.inflight = query_admit_counted(&a);
    query_admit_decide(&a, &in, &d);
    assert_int_equal(d.verdict, QUERY_ADMIT_RUN);
    struct query_admit_ticket t = query_admit_start(&a, &in, &d);
    assert_true(t.backlog);
    assert_int_equal(query_admit_counted(&a), 1);
    struct query_admit_outcome late = {.answered = true, .out_of_time = true, .total_ms = 1980};
    query_admit_end(&a, &t, &late);
    assert_int_equal(a.limit, 32);
    query_admit_end(&a, &held, &late);
    /* the backlog gone, the same end is congestion again */
    assert_int_equal(run(&a, input(HSC_STRATEGY_GRAPH_ONLY, 1980, 0), late), QUERY_ADMIT_RUN);
    assert_int_equal(a.limit, 16);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_initial_limit),
        cmocka_unit_test(test_admit_refuses_at_the_limit),
        cmocka_unit_test(test_admit_refuses_what_would_miss_its_deadline),
        cmocka_unit_test(test_admit_probe_lets_an_estimate_recover),
        cmocka_unit_test(test_admit_limit_grows_while_in_use),
        cmocka_unit_test(test_admit_limit_halves_once_a_round),
        cmocka_unit_test(test_admit_slower_than_the_target_halves_the_limit),
        cmocka_unit_test(test_admit_target_follows_a_slow_deployment),
        cmocka_unit_test(test_admit_estimate_needs_samples),
        cmocka_unit_test(test_admit_held_searches_do_not_count),
        cmocka_unit_test(test_admit_outage_teaches_nothing),
        cmocka_unit_test(test_admit_no_refusal_after_a_restart),
        cmocka_unit_test(test_admit_backlog_of_an_outage_teaches_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
