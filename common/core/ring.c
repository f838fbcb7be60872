/*
 * The growable FIFO ring of ring.h: one allocation, doubled when full, the
 * elements copied in order to the front of the new one.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "hsc/error.h"

void hsc_ring_init(hsc_ring *r, size_t esize, size_t min_cap)
{
    memset(r, 0, sizeof(*r));
    r->esize = esize;
    r->min_cap = min_cap ? min_cap : 16;
}

void *hsc_ring_at(const hsc_ring *r, size_t i)
{
    return r->v + ((r->head + i) % r->cap) * r->esize;
}

int hsc_ring_push(hsc_ring *r, const void *e)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : r->min_cap;
        if (cap < r->cap || cap > (size_t)-1 / r->esize)
            return HSC_ENOMEM;
        unsigned char *v = malloc(cap * r->esize);
        if (!v)
            return HSC_ENOMEM;
        for (size_t i = 0; i < r->len; i++)
            memcpy(v + i * r->esize, hsc_ring_at(r, i), r->esize);
        free(r->v);
        r->v = v;
        r->head = 0;
        r->cap = cap;
    }
    r->len++;
    memcpy(hsc_ring_at(r, r->len - 1), e, r->esize);
    return HSC_OK;
}

int hsc_ring_pop(hsc_ring *r, void *out)
{
    if (!r->len)
        return 0;
    if (out)
        memcpy(out, hsc_ring_at(r, 0), r->esize);
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return 1;
}

size_t hsc_ring_len(const hsc_ring *r)
{
    return r->len;
}

void hsc_ring_destroy(hsc_ring *r)
{
    free(r->v);
    hsc_ring_init(r, r->esize, r->min_cap);
}
