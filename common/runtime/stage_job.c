/*
 * A stage's batch job: the block that process() allocates for one batch (the
 * stage's own struct, which begins with a struct hsc_stage_job, and its
 * per-message arrays), and its end, which frees it and reports to the stage.
 * Every pipeline worker set these up the same way; here they are written once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "stage.h"

/* Rounds size up so that what follows it in the block is aligned for any type. */
static int align_up(size_t *size)
{
    const size_t a = _Alignof(max_align_t);
    if (*size > SIZE_MAX - (a - 1))
        return -1;
    *size = (*size + a - 1) / a * a;
    return 0;
}

void *hsc_stage_job_new(size_t job_size, hsc_stage_batch *b, hsc_stage_done_fn done, size_t n,
                        size_t narrays, const size_t *elem_size, void **arrays)
{
    /* One block: the job, then each array at an aligned offset; one free() releases it. */
    size_t total =
        job_size < sizeof(struct hsc_stage_job) ? sizeof(struct hsc_stage_job) : job_size;
    size_t offset[HSC_STAGE_JOB_MAX_ARRAYS];
    if (narrays > HSC_STAGE_JOB_MAX_ARRAYS)
        return NULL;
    for (size_t k = 0; k < narrays; k++) {
        if (align_up(&total) || (elem_size[k] && n > (SIZE_MAX - total) / elem_size[k]))
            return NULL;
        offset[k] = total;
        total += n * elem_size[k];
    }
    char *block = calloc(1, total);
    if (!block)
        return NULL;
    for (size_t k = 0; k < narrays; k++)
        arrays[k] = block + offset[k];
    struct hsc_stage_job *job = (struct hsc_stage_job *)block;
    job->b = b;
    job->done = done;
    job->n = n;
    return block;
}

void hsc_stage_job_end(struct hsc_stage_job *job, int code, const hsc_err *err)
{
    hsc_stage_batch *b = job->b;
    hsc_stage_done_fn done = job->done;
    free(job);
    if (b)
        done(b, code, err);
}
