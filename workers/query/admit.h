/*
 * Admission control for hsc-query: whether a search starts, or is refused
 * at once as `overloaded` because it would probably miss its deadline or
 * because the searches already running are as many as the backends can
 * serve in time. An outage is not overload: searches held by a backend that
 * is down do not count against the limit, and searches that met an outage
 * teach it nothing. Pure (no clock, no I/O): the engine passes the time and
 * what it knows, so every rule is unit-tested (tests/unit/test_admit.c).
 */
#ifndef HSC_QUERY_ADMIT_H
#define HSC_QUERY_ADMIT_H

#include <stdbool.h>

#include "hsc/search.h"

/* Requested strategies (hsc_strategy's values), each with its own service time. */
#define QUERY_ADMIT_STRATEGIES 6

/* The settings (query.admit, query.admit_min_inflight, query.admit_slow_ratio,
 * query.admit_target_ms). */
struct query_admit_settings {
    bool on;
    int min_inflight, max_inflight; /* bounds of the adaptive limit */
    double slow_ratio; /* a search slower than this share of its time left is a congestion sign */
    double target_ms;  /* so is a search slower than this (or than ADMIT_BASE_FACTOR times its
                          strategy's quickest recent time, if longer) that started with the
                          limit in use; 0: only the share of time left */
};

/*
 * The adaptive state: a limit on admitted searches in flight, adapted as
 * TCP's congestion window (grows with searches answered in time while the
 * limit was in use, halves once a round when one ran out of time), and
 * each requested strategy's recent service time (an EWMA of admitted
 * searches' own time, which includes every wait inside hsc: PostgreSQL
 * connections, the HTTP lanes).
 */
struct query_admit {
    struct query_admit_settings set;
    int limit;     /* admitted searches that may run at once */
    int threshold; /* below it the limit grows by one a search, above by one a round */
    int credit;    /* searches in time since the limit last grew above the threshold */
    unsigned cuts; /* times the limit was cut; a search admitted before the last cut
                      says nothing new when it too is slow */
    int running;   /* admitted searches not yet ended */
    int held;      /* of those, held by an outage (query_admit_hold): not counted */
    double service_ms[QUERY_ADMIT_STRATEGIES]; /* EWMA per requested strategy; 0: none yet */
    int samples[QUERY_ADMIT_STRATEGIES];
    double last_probe[QUERY_ADMIT_STRATEGIES]; /* when one was admitted despite its estimate */
    /* The quickest admitted search of each strategy in this window and the one before
     * (ADMIT_BASE_WINDOW_S each): what a search costs with no queue in front of it. */
    double base_cur[QUERY_ADMIT_STRATEGIES], base_prev[QUERY_ADMIT_STRATEGIES];
    double base_since; /* when the current window began */
};

/* What is known of one search when it is about to start. */
struct query_admit_input {
    hsc_strategy strategy; /* as requested (auto included) */
    double left_ms;        /* until its deadline, minus the reply reserve */
    double queued_ms;      /* how long it waited in Kafka before this worker read it; -1: unknown */
    int inflight;          /* admitted searches counted now (query_admit_counted) */
    double now_s;          /* the loop's time, for probes */
};

/* The verdict on one search. */
enum query_admit_verdict {
    QUERY_ADMIT_RUN,  /* start it */
    QUERY_ADMIT_FULL, /* refused: the in-flight limit is reached */
    QUERY_ADMIT_LATE, /* refused: its strategy takes longer than its time left */
};

/* The decision, and the reason a refused requester is told. */
struct query_admit_decision {
    enum query_admit_verdict verdict;
    bool probe; /* admitted although its estimate did not fit: the estimate can recover */
    char why[256];
};

/* What an admitted search carries until it ends, to report its outcome. */
struct query_admit_ticket {
    bool admitted; /* running (false: admission off, or never started) */
    bool held;     /* held by an outage at some point: no longer counted, teaches nothing */
    bool backlog;  /* started while searches held by an outage still ran: teaches nothing */
    bool limited;  /* the limit was in use when it started: a good end may raise it */
    unsigned cuts; /* the state's cuts when it started */
    hsc_strategy strategy;
    double left_ms;
};

/* How an admitted search ended. */
struct query_admit_outcome {
    bool answered;    /* ok, or an error that took the search's time (deadline, no_backend) */
    bool clean;       /* ok and nothing degraded */
    bool out_of_time; /* its deadline timer fired or a backend was cut at its budget */
    bool outage;      /* a backend was down, or went down or came back, while it ran */
    double total_ms;  /* its own time, start to reply */
    double now_s;     /* the loop's time at its end */
};

/* The state for settings s: the limit starts at an eighth of the maximum (at least the minimum). */
void query_admit_init(struct query_admit *a, const struct query_admit_settings *s);

/* Decides on one search; pure: a is not changed. */
void query_admit_decide(const struct query_admit *a, const struct query_admit_input *in,
                        struct query_admit_decision *out);

/* Records that a search admitted by d starts; returns the ticket it carries to its end. */
struct query_admit_ticket query_admit_start(struct query_admit *a,
                                            const struct query_admit_input *in,
                                            const struct query_admit_decision *d);

/*
 * Marks a running search as held by an outage (every backend call it waits
 * for goes to a backend that is down): from now on it no longer counts
 * against the limit, and its end teaches nothing. Idempotent.
 */
void query_admit_hold(struct query_admit *a, struct query_admit_ticket *t);

/* Admitted searches that count against the limit now: running, less those held. */
int query_admit_counted(const struct query_admit *a);

/*
 * Ends an admitted search: adapts the limit and the strategy's service time
 * to how it ended, unless it met an outage (held, started while held ones
 * still ran, or o->outage).
 */
void query_admit_end(struct query_admit *a, const struct query_admit_ticket *t,
                     const struct query_admit_outcome *o);

#endif
