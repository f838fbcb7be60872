/*
 * A Milvus client over its RESTful API, on the shared HTTP client (libcurl
 * multi on libev). Two dialects:
 *
 *  - v2 (/v2/vectordb/..., Milvus 2.4 and later): the content id is the
 *    VarChar primary key, the collection is created from schemas/milvus with
 *    an explicit HNSW index, and upsert is native.
 *  - v1 (/v1/vector/..., Milvus 2.3): the collection can only be created with
 *    an auto-generated Int64 key and dynamic fields, so the content id lives
 *    in the field `content_id`, and an upsert is a delete by content id
 *    followed by an insert (see docs/milvus.md for why that is safe to retry).
 *
 * The request builders and response parsers are pure and exported, so the
 * unit tests check both dialects without a server. The files: milvus.c (the
 * client's calls), milvus_request.c (bodies), milvus_response.c (answers and
 * errors), milvus_filter.c (filter expressions).
 */
#ifndef HSC_MILVUS_H
#define HSC_MILVUS_H

#include <ev.h>
#include <stdint.h>

#include "hsc/error.h"
#include "hsc/message.h"
#include "config.h"
#include "http.h"

/* Which REST API the server speaks. */
typedef enum hsc_milvus_dialect {
    HSC_MILVUS_AUTO = 0, /* probe at start */
    HSC_MILVUS_V1 = 1,
    HSC_MILVUS_V2 = 2,
} hsc_milvus_dialect;

/* Values stored for unknown scalars, so filters can treat them deliberately. */
#define HSC_MILVUS_UNKNOWN_YEAR 0
#define HSC_MILVUS_UNKNOWN_MATURITY 99 /* above every ceiling: unrated titles never pass one */

/* Where the server is and how to talk to it. */
struct hsc_milvus_settings {
    const char *url;         /* http://host:19530 */
    const char *token;       /* "user:password" or an API key; "" for none */
    const char *collection;  /* hsc_content */
    const char *schema_path; /* schemas/milvus/content.json */
    int dim;
    hsc_milvus_dialect dialect;
    int timeout_ms, retries, backoff_initial_ms, backoff_max_ms;
    int ef;          /* HNSW search width (64); on v1 applied through the limit */
    int write_chunk; /* rows per write call; a batch's calls go out concurrently (250) */
};

/* One hit of a search: a content id and its COSINE similarity (higher is closer). */
typedef struct hsc_milvus_hit {
    char id[HSC_MAX_ID_LEN + 1];
    float score;
} hsc_milvus_hit;

/* One entity read back by id. */
typedef struct hsc_milvus_entity {
    char id[HSC_MAX_ID_LEN + 1];
    float *vec; /* dim floats (malloc'd) or NULL when not asked for */
    size_t dim;
} hsc_milvus_entity;

/* The outcome of an operation; which part is filled depends on the operation. */
typedef struct hsc_milvus_result {
    hsc_milvus_hit *hits; /* search */
    size_t nhits;
    hsc_milvus_entity *ents; /* get */
    size_t nents;
    int64_t count;  /* count, and rows written by upsert/delete */
    double seconds; /* server round trips, summed */
} hsc_milvus_result;

/* Frees what a result holds (not the struct). */
void hsc_milvus_result_clear(hsc_milvus_result *r);

/* Completion: res on success (valid during the call), else err. */
typedef void (*hsc_milvus_fn)(void *arg, const hsc_milvus_result *res, const hsc_err *err);

/* A client: the settings, the dialect in use and the shared HTTP client. */
typedef struct hsc_milvus hsc_milvus;

/* Creates a client; no request is made until hsc_milvus_ensure. */
hsc_milvus *hsc_milvus_new(struct ev_loop *loop, hsc_http *http,
                           const struct hsc_milvus_settings *s, hsc_err *err);

/* Frees the client (the HTTP client is the caller's; free it first to cancel). */
void hsc_milvus_free(hsc_milvus *m);

/*
 * Resolves the dialect (probing v2, then v1), creates the collection if it
 * is missing, checks its dimension and loads it. Every other call needs it
 * to have succeeded. A dimension mismatch is HSC_ECONFIG.
 */
int hsc_milvus_ensure(hsc_milvus *m, hsc_milvus_fn cb, void *arg, hsc_err *err);

/* True once ensure succeeded. */
int hsc_milvus_ready(const hsc_milvus *m);

/* The dialect in use (after ensure). */
hsc_milvus_dialect hsc_milvus_dialect_of(const hsc_milvus *m);

/* The field that holds the content id in filters ("id" on v2, "content_id" on v1). */
const char *hsc_milvus_id_field(const hsc_milvus *m);

/* Writes evs (upserts with embeddings of the collection's dimension), keyed by id. */
int hsc_milvus_upsert(hsc_milvus *m, const hsc_content_event *const *evs, size_t n,
                      hsc_milvus_fn cb, void *arg, hsc_err *err);

/* Deletes the entities of ids (absent ones are fine). */
int hsc_milvus_delete(hsc_milvus *m, const char *const *ids, size_t n, hsc_milvus_fn cb, void *arg,
                      hsc_err *err);

/* Searches the k nearest to vec (at most k hits); filter from hsc_milvus_filter_* or NULL;
   ef 0 = the settings' milvus.ef. */
int hsc_milvus_search(hsc_milvus *m, const float *vec, size_t dim, int k, const char *filter,
                      int ef, hsc_milvus_fn cb, void *arg, hsc_err *err);

/* Reads entities by id, with their vectors when with_vectors. */
int hsc_milvus_get(hsc_milvus *m, const char *const *ids, size_t n, int with_vectors,
                   hsc_milvus_fn cb, void *arg, hsc_err *err);

/* Counts the entities (filter may be NULL). */
int hsc_milvus_count(hsc_milvus *m, const char *filter, hsc_milvus_fn cb, void *arg, hsc_err *err);

/* Drops the collection (tests and benchmarks). */
int hsc_milvus_drop(hsc_milvus *m, hsc_milvus_fn cb, void *arg, hsc_err *err);

/* ---- filters: typed values in, a safe expression out (no raw input spliced) ---- */

/* A filter expression being built; zero-initialise, free with hsc_milvus_filter_free. */
typedef struct hsc_milvus_filter {
    char *expr;
    size_t len;
    int failed; /* a bad field name or no memory: the expression is unusable */
} hsc_milvus_filter;

/* Adds `field in ["a", "b"]` (ANDed with what is there). */
void hsc_milvus_filter_in(hsc_milvus_filter *f, const char *field, const char *const *vals,
                          size_t n);

/* Adds `field OP value` for an integer; op is one of == != < <= > >=. */
void hsc_milvus_filter_int(hsc_milvus_filter *f, const char *field, const char *op,
                           long long value);

/* Adds `field == "value"` (or != when negate). */
void hsc_milvus_filter_str(hsc_milvus_filter *f, const char *field, const char *value, int negate);

/* Adds `array_contains_any(field, [...])` (or its negation when negate). */
void hsc_milvus_filter_contains_any(hsc_milvus_filter *f, const char *field,
                                    const char *const *vals, size_t n, int negate);

/* The expression ("" when empty), or NULL if building it failed. */
const char *hsc_milvus_filter_str_of(const hsc_milvus_filter *f);

/* Frees the expression. */
void hsc_milvus_filter_free(hsc_milvus_filter *f);

/* ---- pure request builders and response parsers (exported for the tests) ---- */

/*
 * The builders below write a request's JSON body into *body (malloc'd, the
 * caller frees it; NULL on failure) and return HSC_OK, or an error naming the
 * request and the reason: HSC_ENOMEM when memory ran out, HSC_EINVAL for an id
 * that cannot be written in a filter, HSC_ECONFIG for a bad schema file.
 */

/* The body of an upsert (v2) or insert (v1) of evs. */
int hsc_milvus_build_upsert(hsc_milvus_dialect d, const char *collection,
                            const hsc_content_event *const *evs, size_t n, char **body,
                            hsc_err *err);

/* The body of a delete of ids. */
int hsc_milvus_build_delete(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                            size_t n, char **body, hsc_err *err);

/* The largest limit (topk) Milvus accepts in one search. */
#define HSC_MILVUS_MAX_LIMIT 16384

/*
 * The limit a search of k asks Milvus for. v2 sends k and the beam as
 * searchParams.params.ef; v1 (Milvus 2.3) ignores params.ef and searches HNSW
 * with ef = max(limit, 16), so it asks for max(k, ef) and keeps the first k.
 */
int hsc_milvus_search_limit(hsc_milvus_dialect d, int k, int ef);

/* The body of a search (limit from hsc_milvus_search_limit). */
int hsc_milvus_build_search(hsc_milvus_dialect d, const char *collection, const float *vec,
                            size_t dim, int k, const char *filter, int ef, char **body,
                            hsc_err *err);

/* The body of a get by ids. */
int hsc_milvus_build_get(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                         size_t n, int with_vectors, char **body, hsc_err *err);

/* The body of a count. */
int hsc_milvus_build_count(hsc_milvus_dialect d, const char *collection, const char *filter,
                           char **body, hsc_err *err);

/* The body that creates the collection, from the schema file's text. */
int hsc_milvus_build_create(hsc_milvus_dialect d, const char *collection, const char *schema_json,
                            int dim, char **body, hsc_err *err);

/* Milvus's codes the client acts on (hsc_err.server_code). */
#define HSC_MILVUS_CODE_COLLECTION_NOT_FOUND 100
#define HSC_MILVUS_CODE_COLLECTION_NOT_LOADED 101

/*
 * Checks a response's envelope: the HTTP status and Milvus's own code. An
 * error carries both codes and the message, as text and as fields
 * (http_status, server_code, and not_found when the server says the
 * collection is not there); input errors (a bad parameter, a wrong
 * dimension) are HSC_EINVAL, everything else HSC_ETRANSIENT.
 */
int hsc_milvus_check(hsc_milvus_dialect d, long status, const char *body, size_t len, hsc_err *err);

/* Parses a search response into hits (id from "id" on v2, "content_id" on v1). */
int hsc_milvus_parse_hits(hsc_milvus_dialect d, const char *body, size_t len, hsc_milvus_hit **hits,
                          size_t *n, hsc_err *err);

/* Parses a get/query response into entities. */
int hsc_milvus_parse_entities(hsc_milvus_dialect d, const char *body, size_t len,
                              hsc_milvus_entity **ents, size_t *n, hsc_err *err);

/* Parses a count(*) response. */
int hsc_milvus_parse_count(const char *body, size_t len, int64_t *count, hsc_err *err);

/* Parses a describe response: the vector dimension (0 if not found). */
int hsc_milvus_parse_dim(hsc_milvus_dialect d, const char *body, size_t len, int *dim,
                         hsc_err *err);

/* Fills s from the milvus.* keys; schema_buf holds the default schema path. */
void hsc_milvus_settings_load(const hsc_config *cfg, struct hsc_milvus_settings *s,
                              char *schema_buf, size_t cap);

#endif
