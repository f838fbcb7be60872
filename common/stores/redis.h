/*
 * An asynchronous Redis client: hiredis with its libev adapter, on the
 * worker's loop. It connects on first use and again after a disconnect, and
 * bounds every command with a timeout (hiredis 0.14 has none of its own), so
 * a hung server surfaces as a transient error instead of a stalled worker.
 * Losses and recoveries are logged and counted once per outage (conn.h).
 */
#ifndef HSC_REDIS_H
#define HSC_REDIS_H

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#include "hsc/error.h"

/* A connection (opened lazily) to one Redis server and database. */
typedef struct hsc_redis hsc_redis;

/* Completion: reply on success (valid during the call only), else err. */
typedef void (*hsc_redis_fn)(void *arg, const redisReply *reply, const hsc_err *err);

/* Parses redis://[[user]:password@]host[:port][/db] into its parts; 0 or HSC_ECONFIG. */
int hsc_redis_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db,
                        char *password, size_t pwcap, hsc_err *err);

/* Creates a client for url; nothing is sent until the first command. */
hsc_redis *hsc_redis_new(struct ev_loop *loop, const char *url, int timeout_ms, hsc_err *err);

/*
 * Sends one command (binary-safe arguments). Returns an error now (cb never
 * called) or 0, and then cb is called exactly once, from the loop and never
 * inside this call: with the reply (an error reply is HSC_EINVAL),
 * HSC_ETRANSIENT when the server is unreachable or slow, HSC_ECANCELED when
 * the client is freed first. A read (hsc_redis_is_read) whose connection is
 * lost under it is sent once more on a fresh connection within the timeout.
 */
int hsc_redis_command(hsc_redis *r, hsc_redis_fn cb, void *arg, int argc, const char **argv,
                      const size_t *lens, hsc_err *err);

/* True for commands that only read (GET, MGET, EXISTS, ...): safe to send twice. */
int hsc_redis_is_read(const char *command);

/* Cancels pending commands (callbacks get HSC_ECANCELED) and closes. */
void hsc_redis_free(hsc_redis *r);

/*
 * Raises each of keys to its value in vals when that is greater than what the
 * key holds (absent counts as -1), in one atomic round trip. Used for
 * versions, so writers that race or retry never move a version backwards.
 */
int hsc_redis_raise(hsc_redis *r, const char *const *keys, const long long *vals, size_t n,
                    hsc_redis_fn cb, void *arg, hsc_err *err);

#endif
