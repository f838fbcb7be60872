/*
 * The query planner: which strategy answers a search, from the request's
 * features, the backends' recent latencies and health, and what is left of
 * the deadline. Rule-based and pure, so every decision is unit-tested and
 * the reply can say why it was taken.
 */
#ifndef HSC_PLANNER_H
#define HSC_PLANNER_H

#include <stdbool.h>

#include "hsc/search.h"

/* Recent latencies of one backend: an EWMA and a p99 over a sliding window. */
typedef struct hsc_latency {
    double *ring; /* the last cap samples, in ms */
    int cap, n, pos;
    double ewma;
    double p99;        /* recomputed lazily */
    int dirty;         /* samples added since p99 was computed */
    double down_until; /* ev_now() before which the backend is treated as down */
    double last_probe; /* when a request last tried it despite a p99 over budget */
    unsigned long long failures;
} hsc_latency;

/* Allocates a window of cap samples; 0 or HSC_ENOMEM. */
int hsc_latency_init(hsc_latency *l, int cap);

/* Frees the window. */
void hsc_latency_free(hsc_latency *l);

/* Records one call's duration. */
void hsc_latency_add(hsc_latency *l, double ms);

/* The p99 of the window (0 with no samples). */
double hsc_latency_p99(hsc_latency *l);

/* The features a plan is made from. */
typedef struct hsc_plan_input {
    hsc_strategy requested;
    bool has_embedding, has_seeds, has_user, has_history, relationships;
    int k;
    double remaining_ms; /* until the deadline, minus the reply reserve */
    /* the expected cost of each backend (p99, ms) and whether it is down */
    double vector_p99, graph_p99, policy_p99;
    bool vector_down, graph_down;
} hsc_plan_input;

/* What to run, and why. */
typedef struct hsc_plan {
    hsc_strategy strategy;
    bool use_vector, use_graph;
    bool sequential;   /* graph enriches the vector candidates instead of searching */
    const char *error; /* a bad_request reason, or NULL */
    char why[256];
} hsc_plan;

/* Chooses a strategy. A forced strategy is kept unless it cannot run at all. */
void hsc_plan_make(const hsc_plan_input *in, hsc_plan *out);

#endif
