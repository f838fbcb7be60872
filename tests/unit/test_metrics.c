/* Tests of common/core/metrics.c: the Prometheus text the registry renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void test_render(void **s)
{
    hsc_metrics *m = hsc_metrics_new();
    hsc_metrics_help(m, "hsc_x_total", "things counted");
    hsc_metrics_inc(m, "hsc_x_total", "topic=\"a\"", 2);
    hsc_metrics_inc(m, "hsc_x_total", "topic=\"a\"", 3);
    hsc_metrics_inc(m, "hsc_x_total", "topic=\"b\"", 1);
    hsc_metrics_set(m, "hsc_inflight", "", 7);
    hsc_metrics_set(m, "hsc_inflight", "", 4);
    hsc_metrics_observe(m, "hsc_d_seconds", "op=\"s\"", 0.003);
    hsc_metrics_observe(m, "hsc_d_seconds", "op=\"s\"", 0.2);
    hsc_metrics_observe(m, "hsc_d_seconds", "op=\"s\"", 9);
    assert_true(hsc_metrics_value(m, "hsc_x_total", "topic=\"a\"") == 5);
    hsc_buf b = {0};
    assert_int_equal(hsc_metrics_render(m, &b), 0);
    const char *want[] = {
        "# HELP hsc_x_total things counted\n# TYPE hsc_x_total counter\n"
        "hsc_x_total{topic=\"a\"} 5\nhsc_x_total{topic=\"b\"} 1\n",
        "# TYPE hsc_inflight gauge\nhsc_inflight 4\n",
        "# TYPE hsc_d_seconds histogram\n",
        "hsc_d_seconds_bucket{op=\"s\",le=\"0.0025\"} 0\n",
        "hsc_d_seconds_bucket{op=\"s\",le=\"0.005\"} 1\n", /* cumulative */
        "hsc_d_seconds_bucket{op=\"s\",le=\"0.25\"} 2\n",
        "hsc_d_seconds_bucket{op=\"s\",le=\"2.5\"} 2\n",
        "hsc_d_seconds_bucket{op=\"s\",le=\"+Inf\"} 3\n",
        "hsc_d_seconds_sum{op=\"s\"} 9.20",
        "hsc_d_seconds_count{op=\"s\"} 3\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        if (!strstr(b.data, want[i]))
            fail_msg("missing:\n%s\nin:\n%s", want[i], b.data);
    /* each family's TYPE line appears once */
    assert_null(strstr(strstr(b.data, "# TYPE hsc_x_total") + 1, "# TYPE hsc_x_total"));
    hsc_buf_free(&b);
    hsc_metrics_free(m);
    (void)s;
}

static void test_drop_and_size_buckets(void **s)
{
    hsc_metrics *m = hsc_metrics_new();
    hsc_metrics_set(m, "hsc_consumer_lag", "stage=\"ingest\",topic=\"a\",partition=\"0\"", 5);
    hsc_metrics_set(m, "hsc_consumer_lag", "stage=\"ingest\",topic=\"a\",partition=\"1\"", 7);
    hsc_metrics_set(m, "hsc_consumer_lag", "stage=\"enrich\",topic=\"a\",partition=\"0\"", 9);
    hsc_metrics_set(m, "hsc_pending_messages", "stage=\"ingest\"", 3);
    /* a rebalance took ingest's partitions: their series go, the rest stay */
    hsc_metrics_drop(m, "hsc_consumer_lag", "stage=\"ingest\"");
    hsc_metrics_observe_in(m, "hsc_batch_size_messages", "", 300, HSC_METRICS_SIZE_BUCKETS);
    hsc_buf b = {0};
    assert_int_equal(hsc_metrics_render(m, &b), 0);
    assert_null(strstr(b.data, "partition=\"1\""));
    assert_non_null(
        strstr(b.data, "hsc_consumer_lag{stage=\"enrich\",topic=\"a\",partition=\"0\"} 9\n"));
    assert_non_null(strstr(b.data, "hsc_pending_messages{stage=\"ingest\"} 3\n"));
    assert_non_null(strstr(b.data, "hsc_batch_size_messages_bucket{le=\"250\"} 0\n"));
    assert_non_null(strstr(b.data, "hsc_batch_size_messages_bucket{le=\"500\"} 1\n"));
    hsc_buf_free(&b);
    /* the backend registry records only once set */
    hsc_metrics_backend_call("neo4j", "statement", 0.02);
    hsc_metrics_set_backend_registry(m);
    hsc_metrics_backend_call("neo4j", "statement", 0.02);
    hsc_metrics_backend_retry("neo4j", 0.25);
    hsc_metrics_set_backend_registry(NULL);
    assert_true(hsc_metrics_value(m, "hsc_backend_retries_total", "backend=\"neo4j\"") == 1);
    assert_true(hsc_metrics_value(m, "hsc_backend_backoff_seconds_total", "backend=\"neo4j\"") ==
                0.25);
    assert_int_equal(hsc_metrics_render(m, &b), 0);
    assert_non_null(strstr(
        b.data,
        "hsc_backend_request_duration_seconds_count{backend=\"neo4j\",op=\"statement\"} 1\n"));
    hsc_buf_free(&b);
    hsc_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render),
                                       cmocka_unit_test(test_drop_and_size_buckets)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
