/*
 * Tests of common/core/ring.c: first in, first out across growth and
 * wrap-around, positions read from the front, and an empty ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ring.h"
#include "hsc/error.h"

static void test_fifo_across_growth_and_wraparound(void **s)
{
    hsc_ring r;
    hsc_ring_init(&r, sizeof(int64_t), 4);
    int64_t next_in = 0, next_out = 0, x;
    /* Interleave pushes and pops so the front wraps before every growth. */
    for (int round = 0; round < 50; round++) {
        for (int k = 0; k < 7; k++, next_in++)
            assert_int_equal(hsc_ring_push(&r, &next_in), HSC_OK);
        for (int k = 0; k < 5; k++, next_out++) {
            assert_int_equal(hsc_ring_pop(&r, &x), 1);
            assert_int_equal(x, next_out);
        }
        assert_int_equal(hsc_ring_len(&r), (size_t)(next_in - next_out));
        for (size_t i = 0; i < hsc_ring_len(&r); i++)
            assert_int_equal(*(int64_t *)hsc_ring_at(&r, i), next_out + (int64_t)i);
    }
    while (hsc_ring_pop(&r, &x))
        assert_int_equal(x, next_out++);
    assert_int_equal(next_out, next_in);
    hsc_ring_destroy(&r);
    (void)s;
}

static void test_empty_ring_pops_nothing(void **s)
{
    hsc_ring r;
    hsc_ring_init(&r, sizeof(void *), 0);
    assert_int_equal(hsc_ring_pop(&r, NULL), 0);
    void *p = &r;
    assert_int_equal(hsc_ring_push(&r, &p), HSC_OK);
    assert_int_equal(hsc_ring_pop(&r, NULL), 1);
    assert_int_equal(hsc_ring_pop(&r, NULL), 0);
    assert_int_equal(hsc_ring_len(&r), 0);
    hsc_ring_destroy(&r);
    assert_int_equal(hsc_ring_push(&r, &p), HSC_OK); /* usable again after destroy */
    hsc_ring_destroy(&r);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_across_growth_and_wraparound),
        cmocka_unit_test(test_empty_ring_pops_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
