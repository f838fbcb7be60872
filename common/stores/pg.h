/*
 * An asynchronous PostgreSQL client on a libev loop (libpq's non-blocking
 * API): one connection, queries run one after another in the order given,
 * the connection is (re)opened on demand, and errors are classified so a
 * caller knows whether to retry (server down, restarting, missing schema) or
 * to reject the input (data and constraint errors).
 *
 * A dead connection (the server closed it, EOF, PQstatus bad, SQLSTATE 08xxx
 * or 57P01..57P03) is replaced: a query not yet sent waits for the new one,
 * and a read (a statement whose first keyword is SELECT; hsc sends no SELECT
 * with side effects through this client) that was on the wire is sent once
 * more on it while the query timeout allows. Other statements fail with
 * HSC_ETRANSIENT and the caller retries them. Losses and recoveries are
 * logged and counted once per outage (conn.h, backend "postgresql").
 */
#ifndef HSC_PG_H
#define HSC_PG_H

#include <ev.h>
#include <libpq-fe.h>

#include "conn.h"
#include "hsc/error.h"

/* A connection (opened lazily) and its queue of queries. */
typedef struct hsc_pg hsc_pg;

/* Completion: res is the result on success (freed after the callback returns), else NULL. */
typedef void (*hsc_pg_fn)(void *arg, PGresult *res, const hsc_err *err);

/* Creates a client for url (libpq URI or key=value string); connects on first query. */
hsc_pg *hsc_pg_new(struct ev_loop *loop, const char *url, int query_timeout_ms, hsc_err *err);

/*
 * Queues sql with text parameters (copied). Returns an error now (cb never
 * called) or 0 and calls cb exactly once, from the loop and never inside
 * this call: with the result, a classified error, or HSC_ECANCELED when the
 * client is freed first.
 */
int hsc_pg_query(hsc_pg *pg, const char *sql, int nparams, const char *const *params, hsc_pg_fn cb,
                 void *arg, hsc_err *err);

/* The same, naming the statement for the metrics (op "content":
 * hsc_backend_request_duration_seconds{backend="postgresql",op="content"}); NULL: its first word.
 */
int hsc_pg_query_op(hsc_pg *pg, const char *op, const char *sql, int nparams,
                    const char *const *params, hsc_pg_fn cb, void *arg, hsc_err *err);

/* HSC_EINVAL for SQLSTATEs caused by the data (classes 22, 23, 54), else HSC_ETRANSIENT. */
int hsc_pg_classify(const char *sqlstate);

/* True for SQLSTATEs that end the session rather than the query (class 08, 57P01..57P03). */
int hsc_pg_sqlstate_is_connection(const char *sqlstate);

/* True if sql is a read that may be sent again: its first keyword (after comments, parentheses) is
 * SELECT. */
int hsc_pg_is_read(const char *sql);

/* True while a connection is open and idle or busy. */
int hsc_pg_connected(const hsc_pg *pg);

/* Cancels queued queries (their callbacks get HSC_ECANCELED) and closes. */
void hsc_pg_free(hsc_pg *pg);

#endif
