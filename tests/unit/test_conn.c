/*
 * Tests of common/stores/conn.c: an outage seen by many connections is logged and
 * counted once, its recovery once with the downtime, and a late failure of a
 * connection opened before the outage (or a call started during it) is not
 * a second outage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

static char *g_buf;
static size_t g_len;
static FILE *g_log;

static int setup(void **s)
{
    hsc_conn_reset();
    g_log = open_memstream(&g_buf, &g_len);
    hsc_log_setup("hsc-test", "info", "logfmt");
    hsc_log_set_stream(g_log);
    (void)s;
    return 0;
}

static int teardown(void **s)
{
    hsc_log_set_stream(NULL);
    fclose(g_log);
    free(g_buf);
    g_buf = NULL;
    hsc_conn_reset();
    (void)s;
    return 0;
}

/* Occurrences of needle in what was logged so far. */
static int logged(const char *needle)
{
    fflush(g_log);
    int n = 0;
    for (const char *p = g_buf; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_an_outage_of_four_connections_is_logged_once(void **s)
{
    hsc_metrics *m = hsc_metrics_new();
    hsc_conn_set_metrics(m);
    unsigned e[4];
    for (int i = 0; i < 4; i++)
        e[i] = hsc_conn_up("postgresql"); /* the pool opens: nothing to say */
    assert_int_equal(logged("postgresql"), 0);
    for (int i = 0; i < 4; i++) /* the server restarts: every connection goes */
        hsc_conn_lost("postgresql", e[i], "connection closed by the server");
    for (int i = 0; i < 10; i++) /* reconnect attempts while it is down */
        hsc_conn_lost("postgresql", hsc_conn_epoch("postgresql"), "connect failed");
    assert_true(hsc_conn_is_down("postgresql"));
    assert_int_equal(logged("msg=\"postgresql connection lost\""), 1);
    assert_int_equal(logged("reason=\"connection closed by the server\""), 1);
    for (int i = 0; i < 4; i++)
        e[i] = hsc_conn_up("postgresql");
    assert_false(hsc_conn_is_down("postgresql"));
    assert_int_equal(logged("msg=\"postgresql connection recovered\" down_ms="), 1);
    assert_true(
        hsc_metrics_value(m, "hsc_backend_connection_lost_total", "backend=\"postgresql\"") == 1);
    assert_true(hsc_metrics_value(m, "hsc_backend_reconnects_total", "backend=\"postgresql\"") ==
                1);
    /* A second outage is news again. */
    hsc_conn_lost("postgresql", e[2], "connection lost");
    assert_int_equal(logged("postgresql connection lost"), 2);
    hsc_conn_set_metrics(NULL);
    hsc_metrics_free(m);
    (void)s;
}

static void test_late_failures_of_the_last_outage_are_not_news(void **s)
{
    unsigned old = hsc_conn_up("milvus");
    unsigned during = 0;
    hsc_conn_lost("milvus", old, "Connection refused");
    during = hsc_conn_epoch("milvus"); /* a call started while it was down */
    hsc_conn_up("milvus");
    hsc_conn_lost("milvus", old, "Recv failure: Connection reset by peer");
    hsc_conn_lost("milvus", during, "Connection refused");
    assert_false(hsc_conn_is_down("milvus"));
    assert_int_equal(logged("milvus connection lost"), 1);
    assert_int_equal(logged("milvus connection recovered"), 1);
    (void)s;
}

static void test_backends_are_separate(void **s)
{
    hsc_conn_lost("redis", hsc_conn_epoch("redis"), "Connection refused");
    assert_true(hsc_conn_is_down("redis"));
    assert_false(hsc_conn_is_down("neo4j"));
    hsc_conn_up("neo4j");
    assert_true(hsc_conn_is_down("redis"));
    assert_int_equal(logged("recovered"), 0);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_outage_of_four_connections_is_logged_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_failures_of_the_last_outage_are_not_news, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backends_are_separate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
