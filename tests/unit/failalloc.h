/*
 * Allocation-failure runs for unit tests: fail the n-th allocation of a test
 * body, for n = 1, 2, ... until the body completes without reaching it, and
 * check on every run that nothing crashed and nothing the body allocated is
 * still live. The test binary that links failalloc.c gets its own malloc,
 * calloc, realloc, free, strdup and strndup, so the allocations of hsc's code
 * and of the libraries it calls (jansson, msgpack-c, libc) are all counted.
 */
#ifndef HSC_TEST_FAILALLOC_H
#define HSC_TEST_FAILALLOC_H

#include <stdbool.h>

/* One allocation-failure case: setup and teardown run unarmed, body armed. */
typedef struct hsc_failalloc_case {
    const char *name;            /* in failure messages */
    void (*setup)(void *ctx);    /* may be NULL; its allocations are not counted */
    int (*body)(void *ctx);      /* 0: the code under test succeeded; else it reported an error */
    void (*teardown)(void *ctx); /* may be NULL; frees what a successful body left in ctx */
    void *ctx;
} hsc_failalloc_case;

/*
 * Runs c once per n = 1, 2, ..., the n-th allocation of its body failing, until
 * a run completes without reaching the n-th. Fails the cmocka test when a run
 * leaves an allocation of its body live after teardown, or when the body
 * reports an error in a run where no allocation failed. Returns how many
 * allocations the complete run made (so a test can assert the body allocates).
 */
long hsc_failalloc_run(const hsc_failalloc_case *c);

/*
 * False when this process's malloc is not failalloc.c's: under valgrind, which
 * replaces malloc in the executable as well as in libc, nothing could be made
 * to fail. A test calls it before allocating anything and skips when false.
 */
bool hsc_failalloc_active(void);

/* True once the armed body has had an allocation refused (for bodies that check output). */
bool hsc_failalloc_failed(void);

#endif
