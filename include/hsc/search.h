/*
 * The search request/reply contract (hsc.search.requests and the reply
 * topics), as plain structs. The wire form is MessagePack; see
 * schemas/README.md for the fields and schemas/golden for examples.
 */
#ifndef HSC_SEARCH_H
#define HSC_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hsc/message.h"

/* Request headers and the one reply header. */
#define HSC_HDR_CORRELATION_ID "hsc-correlation-id"
#define HSC_HDR_REPLY_TOPIC "hsc-reply-topic"
#define HSC_HDR_REPLY_PARTITION "hsc-reply-partition"
#define HSC_HDR_DEADLINE_MS "hsc-deadline-ms"

/* Limits of a request. */
#define HSC_SEARCH_K_MAX 1000
#define HSC_SEARCH_K_DEFAULT 10

/* How a search is answered; AUTO lets the planner choose. */
typedef enum hsc_strategy {
    HSC_STRATEGY_AUTO = 0,
    HSC_STRATEGY_VECTOR_ONLY,
    HSC_STRATEGY_GRAPH_ONLY,
    HSC_STRATEGY_HYBRID_PARALLEL,
    HSC_STRATEGY_HYBRID_SEQUENTIAL,
    HSC_STRATEGY_CACHED_ONLY,
} hsc_strategy;

/* The wire name of s ("vector_only", ...). */
const char *hsc_strategy_name(hsc_strategy s);

/* Parses a wire name; -1 if unknown. */
int hsc_strategy_parse(const char *name, hsc_strategy *out);

/* Bits of hsc_search_filters.has for the optional integers. */
enum {
    HSC_FILTER_YEAR_MIN = 1 << 0,
    HSC_FILTER_YEAR_MAX = 1 << 1,
    HSC_FILTER_MAX_MATURITY = 1 << 2,
};

/* What the caller restricts the results to. */
typedef struct hsc_search_filters {
    hsc_strlist genres;      /* any of these (empty: no restriction) */
    hsc_strlist exclude_ids; /* never these titles */
    char *language;          /* or NULL */
    unsigned has;            /* HSC_FILTER_* bits */
    int32_t year_min, year_max, max_maturity;
} hsc_search_filters;

/* One search, as sent on hsc.search.requests. */
typedef struct hsc_search_request {
    int v;
    char *user_id;    /* or NULL */
    float *embedding; /* dim floats, or NULL */
    size_t dim;
    hsc_strlist seed_ids;
    int k;
    hsc_search_filters filters;
    bool include_relationships;
    hsc_strategy strategy;
    bool cache;
} hsc_search_request;

/* Sets the defaults of a request (v 1, k 10, auto, cache on). */
void hsc_search_request_init(hsc_search_request *r);

/* Frees every field of r (not r itself) and zeroes it. */
void hsc_search_request_clear(hsc_search_request *r);

/* A link between a result and a seed title (or a liked title). */
typedef struct hsc_search_relationship {
    char *type; /* SIMILAR_TO | RELATED_TO */
    char *seed;
    double score;
} hsc_search_relationship;

/* One ranked title. */
typedef struct hsc_search_result {
    char *id;
    double score, vector_score, graph_score, policy_score;
    char *title;
    hsc_strlist genres;
    hsc_search_relationship *rels; /* when include_relationships */
    size_t nrels;
    bool has_rels;
} hsc_search_result;

/* Per-stage time spent, in microseconds (0 when a stage did not run). */
typedef struct hsc_search_timings {
    int64_t total, cache, vector, graph, policy, rank;
} hsc_search_timings;

/* The error codes of a reply (schemas/README.md, SearchReply). */
#define HSC_SEARCH_ERROR_BAD_REQUEST "bad_request"
#define HSC_SEARCH_ERROR_CACHE_MISS "cache_miss"
#define HSC_SEARCH_ERROR_CACHE_UNAVAILABLE "cache_unavailable"
#define HSC_SEARCH_ERROR_NO_BACKEND "no_backend"
#define HSC_SEARCH_ERROR_POLICY_UNAVAILABLE "policy_unavailable"
#define HSC_SEARCH_ERROR_DEADLINE "deadline"
#define HSC_SEARCH_ERROR_INTERNAL "internal"
/* Refused at once, nothing started: hsc-query could not have answered it in time. Retry later. */
#define HSC_SEARCH_ERROR_OVERLOADED "overloaded"

/* One answer, as sent to the request's reply topic and partition. */
typedef struct hsc_search_reply {
    int v;
    char *correlation_id;
    bool ok;
    char *error_code;    /* when !ok: one of HSC_SEARCH_ERROR_* above */
    char *error_message; /* when !ok */
    hsc_strategy strategy;
    char *plan; /* why the planner chose the strategy */
    bool cache_hit;
    hsc_strlist degraded; /* backends left out: "vector", "graph", "policy" */
    hsc_search_result *results;
    size_t nresults;
    hsc_search_timings timings_us;
} hsc_search_reply;

/* Frees every field of r (not r itself) and zeroes it. */
void hsc_search_reply_clear(hsc_search_reply *r);

/* Frees the fields of one result. */
void hsc_search_result_clear(hsc_search_result *r);

#endif
