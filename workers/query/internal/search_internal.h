/*
 * What the files of the search engine share and nothing else includes: one
 * search in flight (struct qreq), its part and phase states, and the steps
 * each file provides to the others. Private to hsc_query: the worker, the
 * benchmark and the tests use query.h.
 *
 *   search.c     the state machine of one search: plan, legs, rank, reply
 *   cache.c      Redis: versions, the cached reply, storing a fresh one
 *   policy.c     the user's policy from PostgreSQL, cached by version
 *   backends.c   Milvus, Neo4j and the catalogue attributes, within budget
 *   candidates.c merging the legs' candidates (pure)
 *   filters.c    the filters pushed into the backends (pure)
 *   engine.c     the clients and settings, created and freed
 */
#ifndef HSC_QUERY_SEARCH_INTERNAL_H
#define HSC_QUERY_SEARCH_INTERNAL_H

#include "candidates.h"
#include "query.h"
#include "util.h"

/* The state of one part (a backend call): P_CUT is out of time, P_FAIL failed. */
enum { P_OFF = 0, P_WAIT, P_RUN, P_DONE, P_FAIL, P_CUT };

/* Where a search is; each phase starts the next when its parts are done. */
enum { PH_VERSIONS, PH_CACHE, PH_POLICY, PH_BACKENDS, PH_ATTRS, PH_RELS, PH_DONE };

/* One search in flight. */
struct qreq {
    struct qreq *prev, *next; /* the engine's list, for shutdown */
    struct qreq *next_start;  /* the engine's queue of searches to start next turn */
    struct query_engine *e;
    int refs, replied, phase;
    int out_of_time; /* the deadline timer fired: nothing more may be started */
    hsc_search_request *req;
    char corr[128];
    int64_t deadline_ms, t0_us;
    int64_t queued_ms;                /* its wait in Kafka (-1: unknown) */
    struct query_admit_ticket ticket; /* admission control's, until the reply */
    unsigned conn_mark;               /* the backends' conn.h epochs when it was admitted */
    int met_outage;                   /* a backend was down when it was admitted */
    query_done_fn done;
    void *arg;
    ev_timer due_backends, due_final;
    /* versions and cache */
    long long epoch, polver; /* -1: unknown */
    hsc_buf canon;
    uint64_t hash;
    /* plan and parts */
    hsc_plan plan;
    hsc_policy policy;
    int policy_state, policy_pushed;
    int vec_state, graph_state, attrs_state, rels_state;
    int64_t started_vec, started_graph, started_pol, started_attrs, started_cache;
    hsc_search_timings t;
    hsc_strlist degraded;
    char fail_why[256];
    query_cands cands;
    /* the graph leg's seeds (request's first), read with the attributes for the shared tags */
    hsc_strlist gseeds;
    size_t gseeds_explicit;
    hsc_title_attrs *gseed_attrs; /* gseeds.n of them, once the attributes are in */
    bool *gseed_found;
};

/* The loop's time, in seconds (for cooldowns and probes). */
static inline double query_now_s(struct query_engine *e)
{
    return ev_now(e->loop);
}

/* Microseconds since t (hsc_mono_us). */
static inline int64_t query_since_us(int64_t t)
{
    return hsc_mono_us() - t;
}

/* search.c: the reply and the reference count. */

/* Drops a reference; the last one frees the search (replying first if it never did). */
void query_unref(struct qreq *q);
/* Sends r (the search's timings, degraded parts and correlation id filled in) and counts it. */
void query_finish(struct qreq *q, hsc_search_reply *r);
/* Replies with the top k candidates (and stores them in the cache). */
void query_reply_ok(struct qreq *q);
/* Sends an error reply unless one was sent. */
void query_reply_error(struct qreq *q, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Names a part in `degraded` (once). */
void query_add_degraded(struct qreq *q, const char *what);
/* Appends "what: why" to the reason an error reply gives (NULL err: out of budget). */
void query_note_failure(struct qreq *q, const char *what, const hsc_err *err);
/* A part that will not contribute: why goes into an error reply, its name into `degraded`. */
void query_fail_part(struct qreq *q, const char *backend, const char *part, int *state,
                     const hsc_err *err);

/* search.c: the steps after the versions and the policy. */

/* Checks the request against the catalogue, loads the policy, then plans. */
void query_run_plan(struct qreq *q);
/* Plans the search on what is known now and starts its legs. */
void query_plan_and_launch(struct qreq *q);
/* Moves on to the attributes once no leg is running. */
void query_check_backends_done(struct qreq *q);
/* Ranks once the attributes and the policy are in. */
void query_maybe_rank(struct qreq *q);
/* Frees a search (unlinking it from the engine), without a reply. */
void query_qreq_free(struct qreq *q);
/* The engine's start timer: starts the searches queued before this turn. */
void query_on_start_timer(struct ev_loop *loop, ev_timer *w, int revents);

/* cache.c */

/* Reads the versions (and through them the cached reply), then runs the plan. */
void query_start_versions(struct qreq *q);
/* Stores the results under the key of the versions they were computed with. */
void query_cache_store(struct qreq *q, const hsc_search_result *res, size_t n);

/* policy.c */

/* Loads the user's policy: the in-process copy when current, else from PostgreSQL. */
void query_start_policy(struct qreq *q);

/* backends.c */

/* Books one backend call's duration: the planner's window and the latency histogram. */
void query_booked(struct query_engine *e, hsc_latency *l, const char *backend, const char *op,
                  double ms);
/* Counts a failure and keeps the backend out of plans for the cooldown (not when cancelled). */
void query_backend_failed(struct query_engine *e, hsc_latency *l, const hsc_err *err);
/* True while a backend's cooldown runs. */
int query_is_down(struct query_engine *e, const hsc_latency *l);
/*
 * At a call's answer (after booking its latency): 1 if the search still waits
 * for it, its time added to *timing; else the call was cut or the search has
 * replied, and the callback's reference is dropped.
 */
int query_call_counts(struct qreq *q, int state, int64_t started, int64_t *timing);
/* The next PostgreSQL connection, round robin. */
hsc_pg *query_pick_pg(struct query_engine *e);
/* Milvus search for the request's embedding. */
void query_start_vector(struct qreq *q);
/* Neo4j candidates from the seeds (or waits for the user's history). */
void query_start_graph(struct qreq *q);
/* Neo4j enrichment of Milvus's candidates (HybridSequential). */
void query_start_graph_enrich(struct qreq *q);
/* Catalogue rows of the candidates; ranks when they are in. */
void query_start_attrs(struct qreq *q);
/* Relationships of the top results, when asked for and unknown; 1 if a call was started. */
int query_start_rels(struct qreq *q, size_t top);

#endif
