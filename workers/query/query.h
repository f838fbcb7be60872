/*
 * The query engine: answers one search request against Redis, Milvus, Neo4j
 * and PostgreSQL, asynchronously on a libev loop, with many requests in
 * flight and no thread per request. It knows nothing of Kafka, so the
 * benchmark can run the same searches in-process; workers/query/worker.c
 * puts it behind the request topic.
 */
#ifndef HSC_QUERY_H
#define HSC_QUERY_H

#include <ev.h>
#include <stdint.h>

#include "admit.h"
#include "config.h"
#include "graph.h"
#include "hsc/search.h"
#include "http.h"
#include "metrics.h"
#include "milvus.h"
#include "neo4j.h"
#include "pg.h"
#include "planner.h"
#include "rank.h"
#include "redis.h"

/* Called once per search with its reply (valid during the call only). */
typedef void (*query_done_fn)(void *arg, hsc_search_reply *reply);

/* Counters for logs, tests and metrics (errors excludes overloaded refusals). */
struct query_stats {
    unsigned long long requests, ok, errors, cache_hits, cache_misses, degraded, overloaded;
    unsigned long long by_strategy[6];
};

/* A cached policy, valid while its version matches Redis's. */
struct query_policy_slot {
    hsc_policy policy;
    int used;
};

#define QUERY_POLICY_SLOTS 4096

/* Everything the engine holds: clients, settings, latency windows, the policy cache. */
struct query_engine {
    struct ev_loop *loop;
    hsc_http *http;
    hsc_milvus *milvus;
    hsc_neo4j *neo;
    hsc_redis *redis;
    hsc_pg **pg;
    int npg, pg_next;
    int milvus_ready, milvus_ensuring;
    ev_timer ensure_timer;
    char epoch_key[256], policy_prefix[128], cache_prefix[64], scope[512];
    int dim, overfetch, history_seeds, ttl_personal_s, ttl_s, reserve_ms, budget_min_ms;
    double budget_factor;
    double cooldown_s;
    hsc_fusion fusion;
    hsc_latency lat_vector, lat_graph, lat_policy, lat_cache;
    /* the enrich statement's own latencies (HybridSequential, relationships): a statement
     * of its own, so it is budgeted on its own history, not the candidate query's;
     * failures still go to lat_graph, which says whether Neo4j is down */
    hsc_latency lat_enrich;
    struct query_policy_slot *policies;
    hsc_metrics *metrics; /* backend latency histograms go here when set (not owned) */
    struct qreq *active;  /* searches in flight, so shutdown can abandon them cleanly */
    struct qreq *start_head, *start_tail; /* accepted, started on the next loop turn */
    ev_timer start_timer;
    int inflight;
    struct query_admit admit; /* admission control (admit.h); its running: admitted, unanswered */
    struct query_stats stats;
};

/* Creates the backend clients from cfg and starts making Milvus ready. */
int query_engine_init(struct query_engine *e, struct ev_loop *loop, const hsc_config *cfg,
                      hsc_err *err);

/* Cancels every backend call (their searches still get a reply) and frees the engine. */
void query_engine_destroy(struct query_engine *e);

/*
 * Answers req by deadline_ms (epoch ms); queued_ms is how long it waited
 * before reaching the engine (in Kafka; -1: unknown), which admission
 * control names in a refusal. Returns an error now (req is left to the
 * caller, done is never called), or 0: req is taken over and done is called
 * exactly once, later, from the loop — never before this returns, even for
 * an answer known at once (a refusal as `overloaded` included), so a
 * backlog of such answers cannot recurse.
 */
int query_engine_search(struct query_engine *e, hsc_search_request *req, const char *correlation_id,
                        int64_t deadline_ms, int64_t queued_ms, query_done_fn done, void *arg,
                        hsc_err *err);

/*
 * Builds the Milvus filter of a search: the request's filters, and the user's
 * hard constraints when the policy is known before the search (pushed).
 */
void query_milvus_filter(const hsc_search_request *req, const hsc_policy *pushed,
                         hsc_milvus_filter *f);

/* The SQL that loads a user's policy, preferences and recent positive history. */
extern const char QUERY_POLICY_SQL[];

/* The SQL that loads catalogue attributes of candidate titles. */
extern const char QUERY_ATTRS_SQL[];

#endif
