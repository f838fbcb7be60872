/* Tests of common/core/backoff.c: growth, cap, jitter bounds, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_doubles_then_caps_with_jitter_in_bounds(void **s)
{
    hsc_backoff b;
    hsc_backoff_init(&b, 100, 5000, 42);
    int64_t expect[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        int64_t d = hsc_backoff_next(&b);
        if (d < expect[i] / 2 || d > expect[i])
            fail_msg("attempt %zu: %lld not in [%lld, %lld]", i, (long long)d,
                     (long long)expect[i] / 2, (long long)expect[i]);
    }
    hsc_backoff_reset(&b);
    int64_t d = hsc_backoff_next(&b);
    assert_true(d >= 50 && d <= 100);
    (void)s;
}

static void test_jitter_spreads_workers(void **s)
{
    /* Two workers with different seeds should not retry in lock-step. */
    hsc_backoff a, b;
    hsc_backoff_init(&a, 1000, 1000, 1);
    hsc_backoff_init(&b, 1000, 1000, 2);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += hsc_backoff_next(&a) == hsc_backoff_next(&b);
    assert_true(same < 5);
    (void)s;
}

static void test_many_attempts_do_not_overflow(void **s)
{
    hsc_backoff b;
    hsc_backoff_init(&b, 1, 60000, 7);
    for (int i = 0; i < 1000; i++) {
        int64_t d = hsc_backoff_next(&b);
        assert_true(d >= 0 && d <= 60000);
    }
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_then_caps_with_jitter_in_bounds),
        cmocka_unit_test(test_jitter_spreads_workers),
        cmocka_unit_test(test_many_attempts_do_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
