/*
 * Planner rules, in order: a forced strategy runs if its inputs are there;
 * otherwise the request's features pick the family (embedding only: vector;
 * seeds or a user only: graph; both: hybrid), then the backends' health and
 * their p99 against the remaining budget pick the variant. Relationships
 * favour HybridSequential, whose graph step enriches the vector candidates
 * and so yields the links for free, when its summed cost fits the budget.
 */
#include "planner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/error.h"

int hsc_latency_init(hsc_latency *l, int cap)
{
    memset(l, 0, sizeof(*l));
    l->ring = calloc((size_t)cap, sizeof(*l->ring));
    l->cap = cap;
    return l->ring ? HSC_OK : HSC_ENOMEM;
}

void hsc_latency_free(hsc_latency *l)
{
    free(l->ring);
    l->ring = NULL;
}

void hsc_latency_add(hsc_latency *l, double ms)
{
    l->ring[l->pos] = ms;
    l->pos = (l->pos + 1) % l->cap;
    if (l->n < l->cap)
        l->n++;
    l->ewma = l->n == 1 ? ms : 0.9 * l->ewma + 0.1 * ms;
    l->dirty++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double hsc_latency_p99(hsc_latency *l)
{
    if (!l->n)
        return 0;
    /* sorting a window per request is wasteful; every 16 samples is plenty fresh */
    if (l->dirty && (l->dirty >= 16 || l->n < 64)) {
        double tmp[l->n];
        memcpy(tmp, l->ring, sizeof(double) * (size_t)l->n);
        qsort(tmp, (size_t)l->n, sizeof(double), cmp_double);
        int idx = (int)(0.99 * (l->n - 1) + 0.5);
        l->p99 = tmp[idx];
        l->dirty = 0;
    }
    return l->p99;
}

static void __attribute__((format(printf, 5, 6)))
set(hsc_plan *p, hsc_strategy s, bool v, bool g, const char *fmt, ...)
{
    p->strategy = s;
    p->use_vector = v;
    p->use_graph = g;
    p->sequential = s == HSC_STRATEGY_HYBRID_SEQUENTIAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
}

static void forced(const hsc_plan_input *in, hsc_plan *p)
{
    bool graph_input = in->has_seeds || in->has_user;
    switch (in->requested) {
    case HSC_STRATEGY_VECTOR_ONLY:
        if (!in->has_embedding)
            p->error = "embedding: vector_only needs an embedding";
        set(p, in->requested, true, false, "requested");
        return;
    case HSC_STRATEGY_GRAPH_ONLY:
        if (!graph_input)
            p->error = "seed_ids: graph_only needs seed_ids or a user_id with history";
        set(p, in->requested, false, true, "requested");
        return;
    case HSC_STRATEGY_HYBRID_PARALLEL:
    case HSC_STRATEGY_HYBRID_SEQUENTIAL:
        if (!in->has_embedding)
            p->error = "embedding: hybrid strategies need an embedding";
        set(p, in->requested, true, true, "requested");
        return;
    default:
        set(p, HSC_STRATEGY_CACHED_ONLY, false, false, "requested");
        return;
    }
}

void hsc_plan_make(const hsc_plan_input *in, hsc_plan *p)
{
    memset(p, 0, sizeof(*p));
    if (in->requested != HSC_STRATEGY_AUTO) {
        forced(in, p);
        return;
    }
    bool graph_input = in->has_seeds || in->has_user;
    double v = in->vector_p99, g = in->graph_p99, pol = in->policy_p99, left = in->remaining_ms;
    if (!in->has_embedding && !graph_input) {
        p->error = "embedding: a search needs an embedding, seed_ids or a user_id";
        set(p, HSC_STRATEGY_AUTO, false, false, "nothing to search with");
        return;
    }
    if (!in->has_embedding) {
        set(p, HSC_STRATEGY_GRAPH_ONLY, false, true, "no embedding: %s",
            in->has_seeds ? "seed titles through the graph"
                          : "the user's history through the graph");
        return;
    }
    if (!graph_input) {
        set(p, HSC_STRATEGY_VECTOR_ONLY, true, false, "embedding only");
        return;
    }
    if (in->graph_down && in->vector_down) {
        set(p, HSC_STRATEGY_HYBRID_PARALLEL, true, true, "both backends failing: trying both");
        return;
    }
    if (in->graph_down) {
        set(p, HSC_STRATEGY_VECTOR_ONLY, true, false, "graph is failing: vector only");
        return;
    }
    if (in->vector_down) {
        set(p, HSC_STRATEGY_GRAPH_ONLY, false, true, "vector is failing: graph only");
        return;
    }
    double seq = v + g + pol, par = (v > g ? v : g) + pol;
    if (in->relationships && seq <= left) {
        set(p, HSC_STRATEGY_HYBRID_SEQUENTIAL, true, true,
            "relationships asked; vector+graph+policy p99 %.1f ms fits %.0f ms", seq, left);
        return;
    }
    if (par <= left) {
        set(p, HSC_STRATEGY_HYBRID_PARALLEL, true, true,
            "embedding and %s; max(vector, graph)+policy p99 %.1f ms fits %.0f ms",
            in->has_seeds ? "seeds" : "a user", par, left);
        return;
    }
    if (v + pol <= left) {
        set(p, HSC_STRATEGY_VECTOR_ONLY, true, false,
            "graph p99 %.1f ms does not fit %.0f ms: vector only", g, left);
        return;
    }
    if (g + pol <= left) {
        set(p, HSC_STRATEGY_GRAPH_ONLY, false, true,
            "vector p99 %.1f ms does not fit %.0f ms: graph only", v, left);
        return;
    }
    set(p, HSC_STRATEGY_HYBRID_PARALLEL, true, true,
        "no backend's p99 fits %.0f ms: both in parallel, cut at the deadline", left);
}
