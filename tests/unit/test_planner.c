/*
 * The planner (workers/query/planner.c): which strategy a search gets from
 * what it has (embedding, seeds, a user), how much time is left against each
 * backend's recent p99, which backends are failing, and what a forced
 * strategy needs; and the latency window the p99 comes from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "planner.h"

static hsc_plan_input base_input(void)
{
    return (hsc_plan_input){.requested = HSC_STRATEGY_AUTO,
                            .k = 10,
                            .remaining_ms = 200,
                            .vector_p99 = 20,
                            .graph_p99 = 30,
                            .policy_p99 = 2};
}

static void test_planner_features(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.has_embedding = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_true(p.use_vector && !p.use_graph);

    in = base_input();
    in.has_seeds = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);

    in = base_input();
    in.has_user = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);
    assert_non_null(strstr(p.why, "history"));

    in = base_input();
    in.has_embedding = in.has_user = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    assert_true(p.use_vector && p.use_graph && !p.sequential);
    assert_non_null(strstr(p.why, "32.0 ms fits 200 ms"));

    in.relationships = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL);
    assert_true(p.sequential);

    in = base_input();
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    (void)s;
}

static void test_planner_latency_and_health(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.has_embedding = in.has_seeds = in.relationships = true;
    in.remaining_ms = 40; /* sequential 52 ms does not fit, parallel 32 ms does */
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_PARALLEL);

    in.remaining_ms = 25; /* only the vector side fits */
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_non_null(strstr(p.why, "graph p99 30.0 ms does not fit 25 ms"));

    in.remaining_ms = 200;
    in.graph_down = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_non_null(strstr(p.why, "graph is failing"));

    in.graph_down = false;
    in.vector_down = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);
    (void)s;
}

static void test_planner_forced(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.requested = HSC_STRATEGY_VECTOR_ONLY;
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    assert_non_null(strstr(p.error, "embedding"));
    in.has_embedding = true;
    in.graph_down = true;
    in.requested = HSC_STRATEGY_HYBRID_SEQUENTIAL;
    hsc_plan_make(&in, &p);
    assert_null(p.error);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL); /* forced wins over health */
    in.requested = HSC_STRATEGY_GRAPH_ONLY;
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    assert_non_null(strstr(p.error, "seed_ids"));
    (void)s;
}

static void test_latency_window(void **s)
{
    hsc_latency l;
    assert_int_equal(hsc_latency_init(&l, 100), 0);
    assert_true(hsc_latency_p99(&l) == 0);
    for (int i = 1; i <= 100; i++)
        hsc_latency_add(&l, i);
    assert_true(fabs(hsc_latency_p99(&l) - 99) < 1e-9);
    for (int i = 0; i < 100; i++) /* the window slides: old samples leave */
        hsc_latency_add(&l, 5);
    assert_true(hsc_latency_p99(&l) == 5);
    assert_true(l.ewma > 5 && l.ewma < 6);
    hsc_latency_free(&l);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planner_features),
        cmocka_unit_test(test_planner_latency_and_health),
        cmocka_unit_test(test_planner_forced),
        cmocka_unit_test(test_latency_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
