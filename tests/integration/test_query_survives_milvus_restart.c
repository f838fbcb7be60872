/*
 * Milvus is restarted while hsc-query answers a steady search load: once
 * the server answers again, every search is ok and whole (a stale pooled
 * connection costs a reconnect, not a failed search), and hsc-query logs the
 * loss and the recovery once each and counts them in /metrics. The body is
 * in it_restart.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "it_restart.h"

static void test_query_survives_milvus_restart(void **s)
{
    static const struct itr_case c = {
        .service = "milvus",
        .backend = "milvus",
        .tag = "it-rmilvus",
        .down_ms = 1000,
        .cache = 0,
        .user = 0,
        .strategy = HSC_STRATEGY_VECTOR_ONLY,
        .quiet_too = 0,
        .probe = itr_probe_milvus,
    };
    itr_run(&c);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_query_survives_milvus_restart)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
