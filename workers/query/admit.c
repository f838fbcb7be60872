/*
 * Admission rules, in order: with admission off, or for a cached_only
 * search (one Redis read: refusing it saves nothing), every search runs;
 * at the in-flight limit, a search is refused; when its requested
 * strategy's recent service time is longer than what is left of its
 * deadline (the time it spent in Kafka already gone), it is refused, except
 * one such search every 0.25 s per strategy, so an estimate no longer true can
 * recover. A refusal costs a decode and a reply, so the searches admitted
 * keep the backends to themselves and stay within their deadlines.
 *
 * The limit follows the searches' own time, not a fixed number: saturation
 * shows as searches that take longer than the target, or need a growing
 * share of their deadline (or run out of it), whichever backend or queue
 * inside hsc is the bottleneck.
 *
 * An outage is not saturation. A search waiting only on backends that are
 * down (Redis reconnecting, an HTTP lane down to its one probe) costs the
 * backends nothing (the clients already hold it back) and ends at its
 * deadline whatever the limit says; counting it filled the limit during a
 * restart, and its running out of time halved it, so the searches sent
 * once the server was back were refused (issue 18's revert). Such a search
 * is held: it stops counting, and neither it nor any search that met an
 * outage adapts the limit or the service time. Nor does a search started
 * while held ones still run: the backend that just came back serves it
 * beside their backlog, through a lane that starts again from one call.
 */
#include "admit.h"

#include <stdio.h>
#include <string.h>

/* Samples of a strategy before its estimate can refuse anything. */
#define ADMIT_MIN_SAMPLES 8
/* Seconds between probes of a strategy whose estimate does not fit: after an outage (its
 * searches all ran to their deadline) one fast probe brings the estimate back under it. */
#define ADMIT_PROBE_S 0.25
/* Weight of a new sample in a strategy's service time. */
#define ADMIT_EWMA_ALPHA 0.1
/* A search slower than this many times its strategy's quickest recent one waited in a
 * queue, whatever the target: the target alone would hold a deployment whose searches
 * take longer than it unloaded (remote backends, a larger graph) at the least limit. */
#define ADMIT_BASE_FACTOR 4.0
/* Length of a window of the quickest time: long enough to hold a search that met no
 * queue even under overload, short enough to follow a catalogue that grew. */
#define ADMIT_BASE_WINDOW_S 10.0

static int slot(hsc_strategy s)
{
    return (unsigned)s < QUERY_ADMIT_STRATEGIES ? (int)s : 0;
}

void query_admit_init(struct query_admit *a, const struct query_admit_settings *s)
{
    memset(a, 0, sizeof(*a));
    a->set = *s;
    if (a->set.max_inflight < 1)
        a->set.max_inflight = 1;
    if (a->set.min_inflight < 1)
        a->set.min_inflight = 1;
    if (a->set.min_inflight > a->set.max_inflight)
        a->set.min_inflight = a->set.max_inflight;
    /* the configuration's bounds are whole numbers; near 0 every search would be slow */
    if (a->set.slow_ratio < 0.05)
        a->set.slow_ratio = 0.05;
    /* Not the maximum: a first burst would be admitted whole before any search could
     * say it was slow. Slow start doubles it within a few rounds when it is too low. */
    a->limit = a->set.max_inflight / 8;
    if (a->limit < a->set.min_inflight)
        a->limit = a->set.min_inflight;
    a->threshold = a->set.max_inflight;
    for (int i = 0; i < QUERY_ADMIT_STRATEGIES; i++) {
        a->last_probe[i] = -1e9;
        a->base_cur[i] = a->base_prev[i] = -1;
    }
    a->base_since = -1e9;
}

/* Feeds the quickest-time windows with an answered search of strategy s. */
static void base_add(struct query_admit *a, int s, double ms, double now_s)
{
    if (now_s - a->base_since >= ADMIT_BASE_WINDOW_S) {
        for (int i = 0; i < QUERY_ADMIT_STRATEGIES; i++) {
            a->base_prev[i] = a->base_cur[i];
            a->base_cur[i] = -1;
        }
        a->base_since = now_s;
    }
    if (a->base_cur[s] < 0 || ms < a->base_cur[s])
        a->base_cur[s] = ms;
}

/* The time over which a search of strategy s is slow by the target (0: no target). */
static double target_ms(const struct query_admit *a, int s)
{
    if (a->set.target_ms <= 0)
        return 0;
    double base = a->base_cur[s];
    if (a->base_prev[s] >= 0 && (base < 0 || a->base_prev[s] < base))
        base = a->base_prev[s];
    return base > 0 && ADMIT_BASE_FACTOR * base > a->set.target_ms ? ADMIT_BASE_FACTOR * base
                                                                   : a->set.target_ms;
}

void query_admit_decide(const struct query_admit *a, const struct query_admit_input *in,
                        struct query_admit_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->verdict = QUERY_ADMIT_RUN;
    if (!a->set.on || in->strategy == HSC_STRATEGY_CACHED_ONLY)
        return;
    char waited[64] = "";
    if (in->queued_ms >= 0)
        snprintf(waited, sizeof(waited), " (it waited %.0f ms in Kafka)", in->queued_ms);
    if (in->inflight >= a->limit) {
        out->verdict = QUERY_ADMIT_FULL;
        snprintf(out->why, sizeof(out->why),
                 "hsc-query is at its in-flight limit (%d searches, what it can answer in "
                 "time now)%s; retry later",
                 in->inflight, waited);
        return;
    }
    int s = slot(in->strategy);
    double est = a->samples[s] >= ADMIT_MIN_SAMPLES ? a->service_ms[s] : 0;
    if (est <= in->left_ms)
        return;
    if (in->now_s - a->last_probe[s] >= ADMIT_PROBE_S) {
        out->probe = true;
        return;
    }
    out->verdict = QUERY_ADMIT_LATE;
    snprintf(out->why, sizeof(out->why),
             "%s searches take %.0f ms now and %.0f ms are left before the deadline%s; retry "
             "later or with a longer deadline",
             hsc_strategy_name(in->strategy), est, in->left_ms > 0 ? in->left_ms : 0, waited);
}

struct query_admit_ticket query_admit_start(struct query_admit *a,
                                            const struct query_admit_input *in,
                                            const struct query_admit_decision *d)
{
    struct query_admit_ticket t = {0};
    if (!a->set.on || d->verdict != QUERY_ADMIT_RUN)
        return t;
    t.admitted = true;
    a->running++;
    /* As RFC 7661 for TCP: a limit that was not in use learns nothing from a good end,
     * so a quiet hour cannot raise it to the maximum before the next burst. */
    t.limited = 2 * (in->inflight + 1) >= a->limit;
    t.cuts = a->cuts;
    t.backlog = a->held > 0;
    t.strategy = in->strategy;
    t.left_ms = in->left_ms;
    if (d->probe)
        a->last_probe[slot(in->strategy)] = in->now_s;
    return t;
}

void query_admit_hold(struct query_admit *a, struct query_admit_ticket *t)
{
    if (!t->admitted || t->held)
        return;
    t->held = true;
    a->held++;
}

int query_admit_counted(const struct query_admit *a)
{
    return a->running - a->held;
}

void query_admit_end(struct query_admit *a, const struct query_admit_ticket *t,
                     const struct query_admit_outcome *o)
{
    if (!t->admitted)
        return;
    a->running--;
    if (t->held)
        a->held--;
    /* Its time was the outage's, not the backends' capacity: a cut here would refuse the
     * searches after the server is back, a sample would refuse them as late. */
    if (t->held || t->backlog || o->outage)
        return;
    int s = slot(t->strategy);
    /* Read before this search joins the windows: a slow one must not raise its own bar. */
    double target = target_ms(a, s);
    if (o->answered) {
        base_add(a, s, o->total_ms, o->now_s);
        a->service_ms[s] = a->samples[s] ? (1 - ADMIT_EWMA_ALPHA) * a->service_ms[s] +
                                               ADMIT_EWMA_ALPHA * o->total_ms
                                         : o->total_ms;
        if (a->samples[s] < ADMIT_MIN_SAMPLES)
            a->samples[s]++;
    }
    /* The target, not only the deadline: with a deadline of a second, searches could take
     * half of it before the limit was cut, so at 200 hybrids/s on 2 cores the backends'
     * queues grew until p99 was 608 ms. It counts only for a search that started with the
     * limit in use: among few in flight, a slow one says a backend is slow (a collection, a
     * checkpoint), not that hsc-query sends too much at once, and cutting then would
     * refuse searches at loads the backends serve. */
    bool slow = o->out_of_time || o->total_ms > a->set.slow_ratio * t->left_ms ||
                (target > 0 && t->limited && o->total_ms > target);
    if (slow) {
        /* As TCP's congestion window: back to half at once, then slowly; once a round,
         * since the searches started before the cut were started under the old limit. */
        if (t->cuts == a->cuts) {
            a->cuts++;
            a->limit = a->limit / 2 > a->set.min_inflight ? a->limit / 2 : a->set.min_inflight;
            a->threshold = a->limit;
            a->credit = 0;
        }
    } else if (o->clean && t->limited && a->limit < a->set.max_inflight) {
        if (a->limit < a->threshold || ++a->credit >= a->limit) {
            a->limit++;
            a->credit = 0;
        }
    }
}
