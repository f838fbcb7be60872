/*
 * A Neo4j client over HTTP, on the shared HTTP client (libcurl multi on
 * libev). Two dialects, chosen by the server's discovery document or forced
 * in config: the Query API (POST /db/{db}/query/v2, Neo4j 5.19 and later) and
 * the transactional endpoint (POST /db/{db}/tx/commit, deprecated since
 * 5.26). Every statement runs in its own transaction and takes parameters:
 * values are never spliced into Cypher.
 *
 * Errors: Neo.ClientError.* rejects the input (HSC_EINVAL), except security
 * and missing-database errors (HSC_ECONFIG) and a transaction's timeout or
 * memory limit (HSC_ETRANSIENT: too large is not invalid); Neo.TransientError.*,
 * Neo.DatabaseError.*, connection failures and 5xx are HSC_ETRANSIENT and the
 * HTTP layer retries them with backoff first.
 */
#ifndef HSC_NEO4J_H
#define HSC_NEO4J_H

#include <ev.h>
#include <jansson.h>

#include "config.h"
#include "hsc/error.h"
#include "http.h"

/* Which HTTP API the server speaks. */
typedef enum hsc_neo4j_dialect {
    HSC_NEO4J_AUTO = 0,
    HSC_NEO4J_QUERY_API = 1, /* /db/{db}/query/v2 */
    HSC_NEO4J_TX = 2,        /* /db/{db}/tx/commit */
} hsc_neo4j_dialect;

/* Where the server is and how to talk to it. */
struct hsc_neo4j_settings {
    const char *url; /* http://host:7474 */
    const char *user, *password, *database;
    hsc_neo4j_dialect dialect;
    int timeout_ms, retries, backoff_initial_ms, backoff_max_ms;
};

/* A statement's result: column names and rows (arrays of values), owned by the client. */
typedef struct hsc_neo4j_result {
    json_t *fields; /* array of strings */
    json_t *rows;   /* array of arrays */
    double seconds;
} hsc_neo4j_result;

/* Completion: res on success (valid during the call only), else err. */
typedef void (*hsc_neo4j_fn)(void *arg, const hsc_neo4j_result *res, const hsc_err *err);

/* A client: settings, the dialect in use and the shared HTTP client. */
typedef struct hsc_neo4j hsc_neo4j;

/* Creates a client; nothing is sent until the first statement. */
hsc_neo4j *hsc_neo4j_new(struct ev_loop *loop, hsc_http *http, const struct hsc_neo4j_settings *s,
                         hsc_err *err);

/* Frees the client (free the HTTP client first to cancel what is in flight). */
void hsc_neo4j_free(hsc_neo4j *n);

/*
 * True if a statement only reads: none of the write clauses (CREATE, MERGE,
 * SET, DELETE, REMOVE, DETACH, FOREACH, LOAD, DROP, ALTER) outside literals,
 * and CALL only for subqueries. A read whose pooled connection proves stale
 * is sent once more on a fresh one (http.h).
 */
int hsc_neo4j_is_read(const char *cypher);

/*
 * Runs one parameterised statement in its own transaction. params (an object
 * or NULL) is taken over by the call. The dialect is resolved on first use.
 */
int hsc_neo4j_run(hsc_neo4j *n, const char *cypher, json_t *params, hsc_neo4j_fn cb, void *arg,
                  hsc_err *err);

/*
 * As hsc_neo4j_run, with the parameters already written as a JSON object
 * (params, malloc'd, taken over by the call): a caller with a large batch
 * writes it straight into text instead of building a jansson tree first,
 * which for hsc-enrich's batches was most of its peak memory.
 */
int hsc_neo4j_run_text(hsc_neo4j *n, const char *cypher, char *params, hsc_neo4j_fn cb, void *arg,
                       hsc_err *err);

/* The dialect in use (HSC_NEO4J_AUTO until the first answer). */
hsc_neo4j_dialect hsc_neo4j_dialect_of(const hsc_neo4j *n);

/*
 * Reads the statements of every *.cypher file of dir (in name order; "//"
 * comments dropped, one statement per ';'). *stmts is a malloc'd array of
 * malloc'd strings.
 */
int hsc_neo4j_load_statements(const char *dir, char ***stmts, size_t *n, hsc_err *err);

/* ---- pure parts (exported for the tests) ---- */

/*
 * The request body of a statement for a dialect into *body (malloc'd; NULL on
 * failure); params may be NULL. Cypher that is not UTF-8 is HSC_EINVAL, no
 * memory HSC_ENOMEM.
 */
int hsc_neo4j_build(hsc_neo4j_dialect d, const char *cypher, const json_t *params, char **body,
                    hsc_err *err);

/* As hsc_neo4j_build, with the parameters as JSON text (a JSON object, not checked). */
int hsc_neo4j_build_text(hsc_neo4j_dialect d, const char *cypher, const char *params, char **body,
                         hsc_err *err);

/* Maps a Neo4j status code ("Neo.ClientError.Schema...") to an hsc code. */
int hsc_neo4j_classify(const char *code);

/*
 * True if code says a transaction ran out of the server's memory (a memory
 * pool, the transaction limit or the heap): the statement is too large for the
 * server, so a caller that can should send its work in smaller statements.
 */
int hsc_neo4j_is_memory_limit(const char *code);

/*
 * Parses a response of either dialect into res (new references the caller
 * releases with hsc_neo4j_result_clear), or an error naming Neo4j's code and
 * message.
 */
int hsc_neo4j_parse(hsc_neo4j_dialect d, long status, const char *body, size_t len,
                    hsc_neo4j_result *res, hsc_err *err);

/* Releases what hsc_neo4j_parse put in res. */
void hsc_neo4j_result_clear(hsc_neo4j_result *res);

/* The dialect a discovery document (GET /) offers: the Query API if it lists one. */
hsc_neo4j_dialect hsc_neo4j_discover(const char *body, size_t len);

/* Fills s from the neo4j.* and backoff.* keys. */
void hsc_neo4j_settings_load(const hsc_config *cfg, struct hsc_neo4j_settings *s);

#endif
