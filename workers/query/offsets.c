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
        for (int i = o->nparts; i <= p; i++)
            n[i].done_upto = -1;
        o->parts = n;
        o->nparts = p + 1;
    }
    return &o->parts[p];
}

int query_offsets_push(struct ptrack *t, int64_t off)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        int64_t *o = malloc(cap * sizeof(*o));
        unsigned char *d = malloc(cap);
        if (!o || !d) {
            free(o);
            free(d);
            return HSC_ENOMEM;
        }
        for (size_t i = 0; i < t->len; i++) {
            o[i] = t->off[(t->head + i) % t->cap];
            d[i] = t->done[(t->head + i) % t->cap];
        }
        free(t->off);
        free(t->done);
        t->off = o;
        t->done = d;
        t->head = 0;
        t->cap = cap;
    }
    size_t i = (t->head + t->len++) % t->cap;
    t->off[i] = off;
    t->done[i] = 0;
    return HSC_OK;
}

void query_offsets_mark_sent(struct query_offsets *o, int32_t p, int64_t off, unsigned gen)
{
    struct ptrack *t = query_offsets_track(o, p);
    if (!t || t->gen != gen)
        return;
    for (size_t i = 0; i < t->len; i++)
        if (t->off[(t->head + i) % t->cap] == off) {
            if (t->done[(t->head + i) % t->cap] == OFF_PENDING)
                t->done[(t->head + i) % t->cap] = OFF_SENT;
            break;
        }
}

int64_t query_offsets_mark_done(struct query_offsets *o, int32_t p, int64_t off, unsigned gen)
{
    struct ptrack *t = query_offsets_track(o, p);
    if (!t || t->gen != gen)
        return -1; /* revoked meanwhile: the new owner answers again from the commit */
    for (size_t i = 0; i < t->len; i++)
        if (t->off[(t->head + i) % t->cap] == off) {
            t->done[(t->head + i) % t->cap] = OFF_DONE;
            break;
        }
    int64_t last = -1;
    while (t->len && t->done[t->head] == OFF_DONE) {
        last = t->off[t->head];
        t->head = (t->head + 1) % t->cap;
        t->len--;
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
    size_t first = 0;
    while (first < t->len && t->done[(t->head + first) % t->cap] != OFF_PENDING)
        first++;
    int64_t base;
    if (first < t->len)
        base = t->off[(t->head + first) % t->cap];
    else if (t->len)
        base = t->off[(t->head + t->len - 1) % t->cap] + 1;
    else
        base = t->done_upto;
    if (base < 0)
        return 0; /* nothing read yet: the committed offset and its metadata stand */
    e->offset = base;
    int64_t offs[SKIP_MAX];
    size_t n = 0;
    for (size_t i = first + 1; i < t->len && n < SKIP_MAX; i++)
        if (t->done[(t->head + i) % t->cap] != OFF_PENDING)
            offs[n++] = t->off[(t->head + i) % t->cap];
    int64_t last_read = t->len ? t->off[(t->head + t->len - 1) % t->cap] : t->done_upto - 1;
    for (size_t i = t->skip_at; i < t->nskip && n < SKIP_MAX; i++)
        if (t->skip[i] > last_read) /* not read here yet: still answered */
            offs[n++] = t->skip[i];
    if (!n)
        return 1;
    size_t len = 0;
    size_t fit = hsc_kafka_meta_offsets_format(meta, cap < SKIP_META_MAX ? cap : SKIP_META_MAX,
                                               base, offs, n, &len);
    if (fit < n)
        hsc_log_warn("revoke: too many answered offsets for the commit's metadata; the rest may "
                     "be answered again",
                     NULL);
    if (fit) {
        e->metadata = meta;
        e->metadata_size = len;
    }
    return 1;
}

void query_offsets_reset(struct ptrack *t)
{
    t->gen++;
    t->head = t->len = 0;
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
        free(o->parts[i].off);
        free(o->parts[i].done);
        free(o->parts[i].skip);
    }
    free(o->parts);
    o->parts = NULL;
    o->nparts = 0;
}
