/*
 * Capped exponential backoff with jitter, for every retry in hsc. Pure: the
 * caller keeps the state and arms its own timer with the delay it returns.
 */
#ifndef HSC_BACKOFF_H
#define HSC_BACKOFF_H

#include <stdint.h>

/* Retry state: the delay doubles per attempt up to max_ms, then stays there. */
typedef struct hsc_backoff {
    int64_t initial_ms, max_ms;
    unsigned attempt;
    uint64_t rng; /* xorshift state; any non-zero seed */
} hsc_backoff;

/* Initialises b with its bounds and a seed for the jitter. */
void hsc_backoff_init(hsc_backoff *b, int64_t initial_ms, int64_t max_ms, uint64_t seed);

/* Returns the next delay in ms: in [d/2, d] where d = min(max, initial * 2^attempt). */
int64_t hsc_backoff_next(hsc_backoff *b);

/* Forgets the attempts after a success. */
void hsc_backoff_reset(hsc_backoff *b);

#endif
