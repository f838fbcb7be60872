/*
 * A growable FIFO ring of fixed-size elements: push at the back, pop at the
 * front, read any element by its position from the front. For queues whose
 * length is unbounded in advance (a stage's pending messages, a partition's
 * offsets in flight); it doubles when full and never shrinks.
 */
#ifndef HSC_RING_H
#define HSC_RING_H

#include <stddef.h>

/* A ring; zero-initialise with hsc_ring_init, free with hsc_ring_destroy. */
typedef struct hsc_ring {
    unsigned char *v;
    size_t esize;   /* bytes per element */
    size_t head;    /* the front's slot */
    size_t len;     /* elements held */
    size_t cap;     /* slots allocated */
    size_t min_cap; /* slots allocated on the first push */
} hsc_ring;

/* An empty ring of elements of esize bytes; min_cap slots are allocated on the first push. */
void hsc_ring_init(hsc_ring *r, size_t esize, size_t min_cap);

/* Copies *e to the back; HSC_ENOMEM (the ring unchanged) if it cannot grow. */
int hsc_ring_push(hsc_ring *r, const void *e);

/* Copies the front into *out (may be NULL) and removes it; 0 if the ring was empty, else 1. */
int hsc_ring_pop(hsc_ring *r, void *out);

/* The element i places from the front (i < hsc_ring_len). */
void *hsc_ring_at(const hsc_ring *r, size_t i);

/* The number of elements held. */
size_t hsc_ring_len(const hsc_ring *r);

/* Frees the ring's memory and leaves it empty (it may be used again). */
void hsc_ring_destroy(hsc_ring *r);

#endif
