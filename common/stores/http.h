/*
 * An asynchronous HTTP client: libcurl's multi interface driven by a libev
 * loop, so one worker keeps many requests in flight without threads, and
 * connections are reused across requests (Milvus, Neo4j, embeddings).
 *
 * Transient failures (connect errors, timeouts, HTTP 5xx, 429) are retried
 * with capped exponential backoff and jitter; a rejected request (other 4xx)
 * is never retried. An idempotent request whose reused connection fails
 * (send/receive error, nothing received) first gets one immediate attempt on
 * a fresh connection within its timeout, whatever `retries` says; losses and
 * recoveries of each backend are logged and counted once (conn.h). A response that arrives is
 * handed over whatever its status: the caller knows what its API's errors mean.
 *
 * Each backend (a request's `backend` name) gets at most 16 attempts in
 * flight from one client, fewer while it is slow (the limit halves when
 * attempts time out or are cancelled, and grows back with the answers) and
 * one while it is down (another every 0.5 s while none answers, up to four);
 * the rest wait in the client, the one with the most
 * time left going first, and end at their own timeout if no slot comes. A
 * request abandoned while it waits cost the server nothing, which is what
 * lets a server restarted under load catch up.
 *
 * A backend is trusted with answers, not with the worker's memory or files:
 * only http:// and https:// URLs are accepted (for redirects too), and a
 * response body longer than http.max_response_bytes aborts the transfer with
 * an error naming the host and the cap (not retried: the next attempt would
 * get the same body).
 */
#ifndef HSC_HTTP_H
#define HSC_HTTP_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hsc/error.h"

/* The default response body cap (64 MiB), as http.max_response_bytes. */
#define HSC_HTTP_MAX_RESPONSE_DEFAULT ((size_t)64 * 1024 * 1024)

/* A client on one loop: a curl multi handle and its sockets and timer. */
typedef struct hsc_http hsc_http;

/* A response: the status and the body (NUL-terminated; owned by the client). */
typedef struct hsc_http_response {
    long status;
    const char *body;
    size_t len;
    double seconds; /* the last attempt's total time */
} hsc_http_response;

/*
 * Completion: res when a response arrived (err NULL), else err (res NULL):
 * HSC_ETRANSIENT after the retries ran out, HSC_ECANCELED on shutdown.
 */
typedef void (*hsc_http_fn)(void *arg, const hsc_http_response *res, const hsc_err *err);

/* One request. Strings are copied; headers is a NULL-terminated list of "Name: value". */
struct hsc_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *body; /* may be NULL */
    size_t body_len;
    const char *const *headers;
    int timeout_ms; /* per attempt; 0 means 30000 */
    int retries;    /* extra attempts after a transient failure */
    int backoff_initial_ms, backoff_max_ms;
    /* For the metrics (static strings): "milvus", "neo4j", ...; NULL records nothing. */
    const char *backend, *op;
    /* A read (GET and HEAD are): if a pooled connection proves stale, one fresh attempt. */
    int idempotent;
};

/* Sets the process-wide settings of clients created afterwards (http.max_response_bytes). */
void hsc_http_configure(const hsc_config *cfg);

/* Sets the response body cap of one client, in bytes. */
void hsc_http_set_max_response(hsc_http *h, size_t bytes);

/* Creates a client on loop. */
hsc_http *hsc_http_new(struct ev_loop *loop, hsc_err *err);

/*
 * Starts req; cb is called exactly once (never from inside this call). A URL
 * that is not http:// or https:// is an error now (HSC_ECONFIG).
 */
int hsc_http_request(hsc_http *h, const struct hsc_http_request *req, hsc_http_fn cb, void *arg,
                     hsc_err *err);

/*
 * Tags every request started until the next call with owner (NULL: none)
 * and bounds its timeout by deadline_ms (epoch ms; 0: none). For a caller
 * that starts calls through another client (Milvus, Neo4j) on behalf of a
 * request with a deadline, so that a call it stops waiting for can be
 * cancelled (hsc_http_cancel) and in any case frees its connection then.
 */
void hsc_http_set_scope(hsc_http *h, const void *owner, int64_t deadline_ms);

/*
 * Cancels the requests started under owner: their connections are closed
 * at once and each callback gets HSC_ECANCELED later, from the loop.
 * Returns how many were cancelled.
 */
size_t hsc_http_cancel(hsc_http *h, const void *owner);

/* Requests started and not yet completed. */
size_t hsc_http_in_flight(const hsc_http *h);

/* Cancels every request (callbacks get HSC_ECANCELED) and frees the client. */
void hsc_http_free(hsc_http *h);

/*
 * A server a store client talks JSON to: where it is, how it signs in and
 * its retry policy. Filled by hsc_http_endpoint_init, the strings owned.
 */
struct hsc_http_endpoint {
    hsc_http *http;      /* the shared client the requests go through (the caller's) */
    char *url;           /* the base URL, without a trailing '/' */
    char *auth;          /* an "Authorization: ..." header, or NULL for none */
    const char *backend; /* a static name for the metrics: "milvus", "neo4j", ... */
    struct hsc_http_policy {
        int timeout_ms, retries, backoff_initial_ms, backoff_max_ms;
    } policy; /* as in struct hsc_http_request */
};

/*
 * Copies url (trailing '/' dropped) into ep, and "Authorization: Bearer
 * <bearer>" unless bearer is NULL or "", with policy p.
 */
int hsc_http_endpoint_init(struct hsc_http_endpoint *ep, hsc_http *h, const char *backend,
                           const char *url, const char *bearer, const struct hsc_http_policy *p,
                           hsc_err *err);

/* The policy of a client's settings s (any struct with the four fields). */
#define HSC_HTTP_POLICY_OF(s)                                                                      \
    (&(struct hsc_http_policy){(s)->timeout_ms, (s)->retries, (s)->backoff_initial_ms,             \
                               (s)->backoff_max_ms})

/*
 * The four policy fields of a client's settings, for its initializer, read
 * from cfg: the client's own timeout_key and retries_key, and the backoff.*
 * keys every store client shares (so a new client cannot forget one).
 */
#define HSC_HTTP_POLICY_FIELDS(cfg, timeout_key, retries_key)                                      \
    .timeout_ms = (int)hsc_config_int((cfg), (timeout_key)),                                       \
    .retries = (int)hsc_config_int((cfg), (retries_key)),                                          \
    .backoff_initial_ms = (int)hsc_config_int((cfg), "backoff.initial_ms"),                        \
    .backoff_max_ms = (int)hsc_config_int((cfg), "backoff.max_ms")

/* Frees what ep holds. */
void hsc_http_endpoint_destroy(struct hsc_http_endpoint *ep);

/*
 * Starts method on ep's url + path with a JSON body (NULL for none), ep's
 * auth and retry policy, recorded under ep->backend and op; as
 * hsc_http_request.
 */
int hsc_http_json(const struct hsc_http_endpoint *ep, const char *method, const char *path,
                  const char *body, const char *op, int idempotent, hsc_http_fn cb, void *arg,
                  hsc_err *err);

/*
 * Sets err to an answer's status as backend's error, quoting the first max
 * bytes of its body: HSC_EINVAL for a 4xx other than 408 and 429 (the
 * request is refused), HSC_ETRANSIENT otherwise; err->http_status is the
 * status. Returns err->code.
 */
int hsc_http_status_error(hsc_err *err, const char *backend, long status, const char *body,
                          size_t len, size_t max);

/* True if a status is worth retrying (5xx, 429, 408). */
int hsc_http_status_transient(long status);

#endif
