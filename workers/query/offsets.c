/* hsc-query's offsets tracker: which requests of each partition are answered (offsets.h). */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

#include "hsc/error.h"
#include "kafka.h"
#include "log.h"

struct ptrack *query_offsets_track(struct query_offsets *o, int32_t p)
{
    if (p < 0)
        return NULL;
    if (p >= o->nparts) {
        struct ptrack *n = realloc(o->parts, (size_t)(p + 1) * sizeof(*n));
        if (!n)
            return NULL;
        memset(n + o->nparts, 0, (size_t)(p + 1 - o->nparts) * sizeof(*n));
        for (int i = o->nparts; i <= p; i++) {
            n[i].done_upto = -1;
            hsc_ring_init(&n[i].q, sizeof(struct query_offset), 256);
        }
        o->parts = n;
        o->nparts = p + 1;
    }
    return &o->parts[p];
}

/* The i-th offset read and not yet part of the answered prefix, oldest first. */
static struct query_offset *at(const struct ptrack *t, size_t i)
{
    return hsc_ring_at(&t->q, i);
}

int query_offsets_push(struct ptrack *t, int64_t off)
{
    struct query_offset e = {.off = off, .state = OFF_PENDING};
    return hsc_ring_push(&t->q, &e);
}

/* The entry of off in t, or NULL. */
static struct query_offset *find(const struct ptrack *t, int64_t off)
{
    for (size_t i = 0; i < hsc_ring_len(&t->q); i++)
        if (at(t, i)->off == off)
            return at(t, i);
    return NULL;
}

void query_offsets_mark_sent(struct query_offsets *o, int32_t p, int64_t off, unsigned gen)
{
    struct ptrack *t = query_offsets_track(o, p);
    if (!t || t->gen != gen)
        return;
    struct query_offset *e = find(t, off);
    if (e && e->state == OFF_PENDING)
        e->state = OFF_SENT;
}

int64_t query_offsets_mark_done(struct query_offsets *o, int32_t p, int64_t off, unsigned gen)
{
    struct ptrack *t = query_offsets_track(o, p);
    if (!t || t->gen != gen)
        return -1; /* revoked meanwhile: the new owner answers again from the commit */
    struct query_offset *e = find(t, off);
    if (e)
        e->state = OFF_DONE;
    int64_t last = -1;
    struct query_offset front;
    while (hsc_ring_len(&t->q) && at(t, 0)->state == OFF_DONE) {
        hsc_ring_pop(&t->q, &front);
        last = front.off;
    }
    if (last < 0)
        return -1;
    t->done_upto = last + 1;
    return last + 1;
}

int query_offsets_skipped(struct ptrack *t, int64_t off)
{
    while (t->skip_at < t->nskip && t->skip[t->skip_at] < off)
        t->skip_at++;
    if (t->skip_at >= t->nskip) {
        free(t->skip);
        t->skip = NULL;
        t->nskip = t->skip_at = 0;
        return 0;
    }
    return t->skip[t->skip_at] == off;
}

int query_offsets_revoke_point(const struct ptrack *t, rd_kafka_topic_partition_t *e, char *meta,
                               size_t cap)
{
    size_t first = 0, len = hsc_ring_len(&t->q);
    while (first < len && at(t, first)->state != OFF_PENDING)
        first++;
    int64_t base;
    if (first < len)
        base = at(t, first)->off;
    else if (len)
        base = at(t, len - 1)->off + 1;
    else
        base = t->done_upto;
    if (base < 0)
        return 0; /* nothing read yet: the committed offset and its metadata stand */
    e->offset = base;
    int64_t offs[SKIP_MAX];
    size_t n = 0;
    for (size_t i = first + 1; i < len && n < SKIP_MAX; i++)
        if (at(t, i)->state != OFF_PENDING)
            offs[n++] = at(t, i)->off;
    int64_t last_read = len ? at(t, len - 1)->off : t->done_upto - 1;
    for (size_t i = t->skip_at; i < t->nskip && n < SKIP_MAX; i++)
        if (t->skip[i] > last_read) /* not read here yet: still answered */
            offs[n++] = t->skip[i];
    if (!n)
        return 1;
    size_t mlen = 0;
    size_t fit = hsc_kafka_meta_offsets_format(meta, cap < SKIP_META_MAX ? cap : SKIP_META_MAX,
                                               base, offs, n, &mlen);
    if (fit < n)
        hsc_log_warn("revoke: too many answered offsets for the commit's metadata; the rest may "
                     "be answered again",
                     NULL);
    if (fit) {
        e->metadata = meta;
        e->metadata_size = mlen;
    }
    return 1;
}

void query_offsets_reset(struct ptrack *t)
{
    t->gen++;
    while (hsc_ring_pop(&t->q, NULL))
        ;
    t->done_upto = -1;
    free(t->skip);
    t->skip = NULL;
    t->nskip = t->skip_at = 0;
}

void query_offsets_load_skip(struct ptrack *t, int64_t base, const char *meta, size_t n)
{
    int64_t *v = malloc(SKIP_MAX * sizeof(*v));
    size_t k = v ? hsc_kafka_meta_offsets_parse(meta, n, base, v, SKIP_MAX) : 0;
    free(t->skip);
    t->skip = k ? v : NULL;
    t->nskip = k;
    t->skip_at = 0;
    if (!k)
        free(v);
}

void query_offsets_free(struct query_offsets *o)
{
    for (int i = 0; i < o->nparts; i++) {
        hsc_ring_destroy(&o->parts[i].q);
        free(o->parts[i].skip);
    }
    free(o->parts);
    o->parts = NULL;
    o->nparts = 0;
}
