/*
 * Fails the n-th allocation of a test body and checks it leaked nothing.
 *
 * The binary that links this file defines malloc, calloc, realloc, free,
 * strdup and strndup; ELF interposition makes every call in the process land
 * here, from hsc's code and from inside libjansson, libmsgpackc and libc
 * alike (glibc supports replacing malloc this way). Each one forwards to the
 * allocator the build would have used anyway, so nothing is allocated by one
 * allocator and freed by another:
 *   - a plain build forwards to glibc's own entry points (__libc_malloc ...),
 *     which valgrind replaces as it does malloc, so its leak check still works;
 *   - an AddressSanitizer build forwards to ASan's interceptors
 *     (__interceptor_malloc ...), so ASan still tracks every block and what its
 *     other interceptors allocate is freed by ASan. A sanitizer runtime that
 *     names them otherwise fails to link this file, loudly, rather than mixing
 *     allocators at run time.
 * While a body runs, every block it allocates is noted in a fixed table (no
 * allocation of our own) and struck off when freed; what is left after the
 * teardown is a leak of that run.
 */
#include "failalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
void *__interceptor_malloc(size_t n);
void *__interceptor_calloc(size_t n, size_t size);
void *__interceptor_realloc(void *p, size_t n);
void __interceptor_free(void *p);
#define REAL_MALLOC __interceptor_malloc
#define REAL_CALLOC __interceptor_calloc
#define REAL_REALLOC __interceptor_realloc
#define REAL_FREE __interceptor_free
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
#define REAL_MALLOC __libc_malloc
#define REAL_CALLOC __libc_calloc
#define REAL_REALLOC __libc_realloc
#define REAL_FREE __libc_free
#endif

enum { IDLE, ARMED, TEARDOWN };

/* Live blocks of the current body: open addressing, TOMB marks a freed slot. */
#define SLOTS (1u << 16)
#define TOMB ((void *)1)

static struct {
    int phase;
    long nth, count; /* fail the nth counted allocation; how many so far */
    bool failed;
    long live;     /* blocks in the table */
    bool overflow; /* the table filled: the run's leak count is unknown */
    void *slot[SLOTS];
} fa;
static char lock; /* the test bodies are single-threaded, but libraries may not be */

static void take(void)
{
    while (__atomic_test_and_set(&lock, __ATOMIC_ACQUIRE))
        ;
}

static void give(void)
{
    __atomic_clear(&lock, __ATOMIC_RELEASE);
}

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (SLOTS - 1);
}

static void note(void *p)
{
    if (fa.live >= (long)SLOTS / 2) {
        fa.overflow = true;
        return;
    }
    size_t i = slot_of(p);
    while (fa.slot[i] && fa.slot[i] != TOMB)
        i = (i + 1) & (SLOTS - 1);
    fa.slot[i] = p;
    fa.live++;
}

static void strike(void *p)
{
    for (size_t i = slot_of(p); fa.slot[i]; i = (i + 1) & (SLOTS - 1))
        if (fa.slot[i] == p) {
            fa.slot[i] = TOMB;
            fa.live--;
            return;
        }
}

/* Counts one allocation of the armed body; false when it is the one to fail. */
static bool admit(void)
{
    if (fa.phase != ARMED)
        return true;
    if (++fa.count == fa.nth) {
        fa.failed = true;
        return false;
    }
    return true;
}

static void *after(void *p)
{
    if (p && fa.phase == ARMED)
        note(p);
    return p;
}

void *malloc(size_t n)
{
    take();
    void *p = admit() ? after(REAL_MALLOC(n)) : NULL;
    give();
    return p;
}

void *calloc(size_t n, size_t size)
{
    take();
    void *p = admit() ? after(REAL_CALLOC(n, size)) : NULL;
    give();
    return p;
}

void *realloc(void *old, size_t n)
{
    if (!old)
        return malloc(n);
    take();
    void *p = NULL;
    if (n == 0 || admit()) {
        p = REAL_REALLOC(old, n);
        /* Gone on success (moved or freed by n == 0); kept, and still ours, on failure. */
        if (p || n == 0) {
            if (fa.phase != IDLE)
                strike(old);
            after(p);
        }
    }
    give();
    return p;
}

void free(void *p)
{
    if (!p)
        return;
    take();
    if (fa.phase != IDLE)
        strike(p);
    REAL_FREE(p);
    give();
}

/* Ours too, so they fail like malloc and, under ASan, do not bypass the count. */
char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

bool hsc_failalloc_active(void)
{
    /* Through a volatile pointer, so the compiler cannot drop the probe as unused. */
    void *(*volatile probe)(size_t) = malloc;
    take();
    fa.phase = ARMED, fa.nth = 1, fa.count = 0;
    give();
    void *p = probe(1);
    take();
    fa.phase = IDLE, fa.failed = false;
    give();
    if (p) {
        free(p);
        print_message("allocation-failure runs skipped: malloc here is not failalloc.c's (valgrind "
                      "replaces it in the executable too); the ASan build runs them\n");
    }
    return !p;
}

bool hsc_failalloc_failed(void)
{
    return fa.failed;
}

/* One run failing the nth allocation (0: none); returns the body's result. */
static int run_once(const hsc_failalloc_case *c, long nth, long *leaked)
{
    if (c->setup)
        c->setup(c->ctx);
    take();
    memset(fa.slot, 0, sizeof(fa.slot));
    fa.live = 0, fa.overflow = false, fa.failed = false;
    fa.nth = nth, fa.count = 0;
    fa.phase = ARMED;
    give();
    int rc = c->body(c->ctx);
    __atomic_store_n(&fa.phase, TEARDOWN, __ATOMIC_SEQ_CST);
    if (c->teardown)
        c->teardown(c->ctx);
    take();
    fa.phase = IDLE;
    *leaked = fa.overflow ? -1 : fa.live;
    give();
    return rc;
}

long hsc_failalloc_run(const hsc_failalloc_case *c)
{
    for (long n = 1;; n++) {
        long leaked;
        int rc = run_once(c, n, &leaked);
        if (leaked < 0)
            fail_msg("%s: more than %u blocks live at once, too many to check", c->name, SLOTS / 2);
        if (leaked)
            fail_msg("%s: allocation %ld failing leaked %ld block(s)", c->name, n, leaked);
        if (rc && !fa.failed)
            fail_msg("%s: the body failed (%d) with no allocation refused", c->name, rc);
        if (!fa.failed)
            return fa.count;
    }
}
