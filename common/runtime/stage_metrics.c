/* A stage's counts, its readiness and the metrics it exports when scraped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage_internal.h"

/*
 * The counts of topic, found or added. Plain counters on the message path;
 * the metrics registry sees them only when scraped (stage_refresh).
 */
struct topic_counts *stage_topic_counts(hsc_stage *st, const char *topic)
{
    static struct topic_counts none;
    for (size_t i = 0; i < st->ntc; i++)
        if (!strcmp(st->tc[i].topic, topic))
            return &st->tc[i];
    struct topic_counts *n = realloc(st->tc, (st->ntc + 1) * sizeof(*n));
    if (!n)
        return &none;
    st->tc = n;
    memset(&n[st->ntc], 0, sizeof(n[0]));
    if (!(n[st->ntc].topic = strdup(topic ? topic : "")))
        return &none;
    return &n[st->ntc++];
}

/* The next retry delay in ms, counted in hsc_backoff_seconds_total. */
int64_t stage_backoff(hsc_stage *st)
{
    int64_t ms = hsc_backoff_next(&st->backoff);
    hsc_metrics_inc(st->metrics, "hsc_backoff_seconds_total", st->label, (double)ms / 1000.0);
    return ms;
}

/* Ready: partitions assigned, and not backing off from a failing backend. */
int stage_ready(void *arg, char *why, size_t cap)
{
    hsc_stage *st = arg;
    if (st->stopping)
        return snprintf(why, cap, "stopping"), 0;
    if (hsc_consumer_assigned_count(st->consumer) <= 0)
        return snprintf(why, cap, "no partitions assigned"), 0;
    if (st->pause_reasons & PAUSE_BACKOFF)
        return snprintf(why, cap, "its backend is failing; retrying with backoff"), 0;
    return 1;
}

void stage_refresh(void *arg, hsc_metrics *m)
{
    hsc_stage *st = arg;
    const char *l = st->label;
    hsc_metrics_count(m, "hsc_messages_processed_total", l, (double)st->stats.processed);
    for (size_t i = 0; i < st->ntc; i++) {
        const struct topic_counts *c = &st->tc[i];
        char tl[384];
        snprintf(tl, sizeof(tl), "%s,topic=\"%s\"", l, c->topic);
        if (c->consumed)
            hsc_metrics_count(m, "hsc_messages_consumed_total", tl, (double)c->consumed);
        if (c->produced)
            hsc_metrics_count(m, "hsc_messages_produced_total", tl, (double)c->produced);
        if (c->failed)
            hsc_metrics_count(m, "hsc_messages_failed_total", tl, (double)c->failed);
        if (c->dlq)
            hsc_metrics_count(m, "hsc_dlq_messages_total", tl, (double)c->dlq);
    }
    hsc_metrics_count(m, "hsc_retries_total", l, (double)st->stats.retries);
    hsc_metrics_count(m, "hsc_batches_total", l, (double)st->stats.batches);
    hsc_metrics_set(m, "hsc_pending_messages", l, (double)hsc_ring_len(&st->q));
    hsc_metrics_set(m, "hsc_consumer_paused", l, hsc_consumer_paused(st->consumer));
    /* pausing stops every assigned partition at once */
    hsc_metrics_set(m, "hsc_consumer_paused_partitions", l,
                    hsc_consumer_paused(st->consumer) ? hsc_consumer_assigned_count(st->consumer)
                                                      : 0);
    hsc_metrics_set(m, "hsc_consumer_assigned_partitions", l,
                    hsc_consumer_assigned_count(st->consumer));
    hsc_consumer_export_lag(st->consumer, m, l);
}
