/*
 * Equal-jitter backoff: half the delay is fixed so retries never bunch at
 * zero, half is random so many workers recovering from one outage spread
 * their reconnects instead of hammering the backend in step.
 */
#include "backoff.h"

void hsc_backoff_init(hsc_backoff *b, int64_t initial_ms, int64_t max_ms, uint64_t seed)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

static uint64_t next_rand(hsc_backoff *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

int64_t hsc_backoff_next(hsc_backoff *b)
{
    int64_t d = b->initial_ms;
    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    int64_t half = d / 2;
    return d - half + (int64_t)(next_rand(b) % (uint64_t)(half + 1));
}

void hsc_backoff_reset(hsc_backoff *b)
{
    b->attempt = 0;
}
