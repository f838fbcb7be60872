/*
 * Prometheus metrics and health endpoints for a worker: a registry of
 * counters, gauges and histograms rendered in the text exposition format,
 * and a tiny HTTP/1.0 server on the worker's own libev loop that serves
 * /metrics, /healthz (the loop turns) and /readyz (the worker says it is
 * ready).
 *
 * The server is an edge of the process, so it is bounded: it listens on
 * metrics.bind (default 127.0.0.1), keeps at most metrics.max_connections
 * open (one more is closed at once), serves GET and HEAD only (405 for the
 * rest), reads a request head of at most HSC_HTTPD_MAX_REQUEST bytes, and
 * never blocks the loop: answers are written as the socket takes them, and a
 * connection that has not finished within metrics.timeout_ms (a client that
 * never sends its request or never reads its answer) is closed.
 */
#ifndef HSC_METRICS_H
#define HSC_METRICS_H

#include <ev.h>
#include <stddef.h>

#include "hsc/error.h"
#include "util.h"

struct hsc_config;

/* A registry of metric families. */
typedef struct hsc_metrics hsc_metrics;

/* A histogram's bucket upper bounds in seconds, shared by every latency histogram. */
#define HSC_METRICS_NBUCKETS 12

/* Creates an empty registry. */
hsc_metrics *hsc_metrics_new(void);

/* Frees the registry. */
void hsc_metrics_free(hsc_metrics *m);

/* Adds v to the counter name{labels} ("" for none, e.g. "topic=\"x\""); created on first use. */
void hsc_metrics_inc(hsc_metrics *m, const char *name, const char *labels, double v);

/* Sets the counter name{labels} to a cumulative count kept elsewhere (mirrored stats). */
void hsc_metrics_count(hsc_metrics *m, const char *name, const char *labels, double total);

/* Sets the gauge name{labels} to v. */
void hsc_metrics_set(hsc_metrics *m, const char *name, const char *labels, double v);

/* Records one observation (seconds) in the histogram name{labels}. */
void hsc_metrics_observe(hsc_metrics *m, const char *name, const char *labels, double seconds);

/* Removes every series of name whose labels start with label_prefix (a revoked partition's lag). */
void hsc_metrics_drop(hsc_metrics *m, const char *name, const char *label_prefix);

/* Histogram upper bounds for counts such as batch sizes (1 ... 10000). */
extern const double HSC_METRICS_SIZE_BUCKETS[HSC_METRICS_NBUCKETS];

/* Like hsc_metrics_observe, with the series' own bucket bounds (fixed at its first observation). */
void hsc_metrics_observe_in(hsc_metrics *m, const char *name, const char *labels, double v,
                            const double *bounds);

/*
 * The registry the backend clients (PostgreSQL, HTTP for Milvus, Neo4j and
 * embeddings, Redis) record their calls in; NULL (the default) records
 * nothing. The pipeline workers set it; hsc-query records its own, per step.
 */
void hsc_metrics_set_backend_registry(hsc_metrics *m);

/* The registry set by hsc_metrics_set_backend_registry (NULL if none), for the connection counters
 * of conn.c. */
hsc_metrics *hsc_metrics_backend_registry(void);

/* Records one backend call: hsc_backend_request_duration_seconds{backend,op}. */
void hsc_metrics_backend_call(const char *backend, const char *op, double seconds);

/* Records a retry and its delay: hsc_backend_retries_total, hsc_backend_backoff_seconds_total. */
void hsc_metrics_backend_retry(const char *backend, double delay_s);

/* Declares the help text of a family (shown as # HELP); optional. */
void hsc_metrics_help(hsc_metrics *m, const char *name, const char *help);

/* Renders the registry in the Prometheus text format; 0 or HSC_ENOMEM. */
int hsc_metrics_render(const hsc_metrics *m, hsc_buf *out);

/* The value of counter or gauge name{labels} (0 if absent), for tests. */
double hsc_metrics_value(const hsc_metrics *m, const char *name, const char *labels);

/* Says whether the worker is ready, and if not why (into why, cap bytes). */
typedef int (*hsc_ready_fn)(void *arg, char *why, size_t cap);

/* Called before each /metrics render, to refresh gauges. */
typedef void (*hsc_refresh_fn)(void *arg, hsc_metrics *m);

/* The HTTP server of one worker. */
typedef struct hsc_httpd hsc_httpd;

/* The longest request head (request line and headers) the server reads, in bytes. */
#define HSC_HTTPD_MAX_REQUEST 4096

/* A parsed request line. */
struct hsc_httpd_request {
    char method[16]; /* "GET", "HEAD", ... */
    char path[128];  /* the target up to its query ('?') or fragment */
    int head;        /* the method is HEAD: answer without the body */
};

/*
 * Parses the request head in buf[0..len) (not NUL-terminated; bytes past
 * HSC_HTTPD_MAX_REQUEST are never read). Returns 0 if more bytes are needed,
 * 200 for a complete GET or HEAD of an origin-form target (req filled), or
 * the status to answer with: 400 (malformed, NUL byte), 405 (another method;
 * req->method filled), 414 (target or request line too long), 431 (headers
 * too long), 505 (not HTTP/1.0 or 1.1). Pure: no I/O, no allocation.
 */
int hsc_httpd_parse_request(const char *buf, size_t len, struct hsc_httpd_request *req);

/* What a server listens on and how much it takes. */
struct hsc_httpd_options {
    const char *bind;    /* an IPv4 or IPv6 address literal; NULL or "": 127.0.0.1 */
    int port;            /* <= 0: no server (hsc_httpd_listen returns NULL, no error) */
    int max_connections; /* open at once; <= 0: 16 */
    int timeout_ms;      /* a connection's whole life; <= 0: 5000 */
};

/*
 * Sets the options hsc_httpd_new uses from metrics.bind,
 * metrics.max_connections and metrics.timeout_ms (hsc_cli_start calls it);
 * HSC_ECONFIG if metrics.bind is not an address literal.
 */
int hsc_httpd_configure(const struct hsc_config *cfg, hsc_err *err);

/* Listens as o says; NULL with err on failure, NULL without error if o->port <= 0. */
hsc_httpd *hsc_httpd_listen(struct ev_loop *loop, const struct hsc_httpd_options *o, hsc_metrics *m,
                            hsc_ready_fn ready, hsc_refresh_fn refresh, void *arg, hsc_err *err);

/* Listens on port with the configured options (0: returns NULL without error: endpoints off). */
hsc_httpd *hsc_httpd_new(struct ev_loop *loop, int port, hsc_metrics *m, hsc_ready_fn ready,
                         hsc_refresh_fn refresh, void *arg, hsc_err *err);

/* The port the server listens on. */
int hsc_httpd_port(const hsc_httpd *h);

/* Connections open now (reading, writing or waiting for the client to close). */
int hsc_httpd_connections(const hsc_httpd *h);

/* Closes the listener and every open connection. */
void hsc_httpd_free(hsc_httpd *h);

#endif
