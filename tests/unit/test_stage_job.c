/*
 * A stage's batch job (common/runtime/stage_job.c): one zeroed block holding
 * the job and its per-message arrays, each aligned and apart from the others;
 * sizes that overflow are refused; hsc_stage_job_end reports to the stage only
 * when the job has a batch, after the block is freed (ASan sees any use after).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "stage.h"

struct job {
    struct hsc_stage_job base;
    char tag; /* odd sizes, so the arrays must be aligned on purpose */
    char **names;
    char *flags;
    int64_t *when;
};

static hsc_stage_batch *g_b;
static int g_code, g_calls;

static void done(hsc_stage_batch *b, int code, const hsc_err *err)
{
    (void)err;
    g_b = b;
    g_code = code;
    g_calls++;
}

static void test_job_and_arrays_in_one_block(void **state)
{
    (void)state;
    hsc_stage_batch *b = (hsc_stage_batch *)&g_calls; /* any non-NULL address: never read */
    struct job *j;
    const size_t size[] = {sizeof(*j->names), sizeof(*j->flags), sizeof(*j->when)};
    void *a[3];
    j = hsc_stage_job_new(sizeof(*j), b, done, 5, 3, size, a);
    assert_non_null(j);
    assert_ptr_equal(j->base.b, b);
    assert_ptr_equal(j->base.done, done);
    assert_int_equal(j->base.n, 5);
    assert_int_equal(j->tag, 0);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal((uintptr_t)a[k] % _Alignof(max_align_t), 0);
        assert_true((char *)a[k] >= (char *)j + sizeof(*j));
    }
    j->names = a[0];
    j->flags = a[1];
    j->when = a[2];
    /* zeroed, and each array ends before the next begins */
    for (size_t i = 0; i < 5; i++) {
        assert_null(j->names[i]);
        assert_int_equal(j->flags[i], 0);
        assert_int_equal(j->when[i], 0);
    }
    assert_true((char *)(j->names + 5) <= j->flags);
    assert_true(j->flags + 5 <= (char *)j->when);
    for (size_t i = 0; i < 5; i++) /* every byte is the job's (ASan checks the last) */
        j->when[i] = INT64_MAX;
    g_calls = 0;
    hsc_err err = {0};
    hsc_err_set(&err, HSC_ETRANSIENT, "down");
    hsc_stage_job_end(&j->base, HSC_ETRANSIENT, &err);
    assert_int_equal(g_calls, 1);
    assert_ptr_equal(g_b, b);
    assert_int_equal(g_code, HSC_ETRANSIENT);
}

static void test_job_without_batch_reports_nothing(void **state)
{
    (void)state;
    struct job *j = hsc_stage_job_new(sizeof(*j), NULL, NULL, 0, 0, NULL, NULL);
    assert_non_null(j);
    g_calls = 0;
    hsc_stage_job_end(&j->base, HSC_OK, NULL);
    assert_int_equal(g_calls, 0);
}

static void test_overflowing_sizes_are_refused(void **state)
{
    (void)state;
    const size_t size[] = {sizeof(char *), 8};
    void *a[HSC_STAGE_JOB_MAX_ARRAYS + 1];
    assert_null(hsc_stage_job_new(sizeof(struct job), NULL, NULL, SIZE_MAX / 8, 2, size, a));
    assert_null(hsc_stage_job_new(SIZE_MAX - 1, NULL, NULL, 1, 1, size, a));
    size_t many[HSC_STAGE_JOB_MAX_ARRAYS + 1] = {0};
    assert_null(hsc_stage_job_new(sizeof(struct job), NULL, NULL, 1, HSC_STAGE_JOB_MAX_ARRAYS + 1,
                                  many, a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_and_arrays_in_one_block),
        cmocka_unit_test(test_job_without_batch_reports_nothing),
        cmocka_unit_test(test_overflowing_sizes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
