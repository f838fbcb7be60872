/*
 * Prometheus metrics and health endpoints for a worker: a registry of
 * counters, gauges and histograms rendered in the text exposition format,
 * and a tiny HTTP/1.0 server on the worker's own libev loop that serves
 * /metrics, /healthz (the loop turns) and /readyz (the worker says it is
 * ready). One connection at a time is plenty for a scraper and an orchestrator.
 */
#ifndef HSC_METRICS_H
#define HSC_METRICS_H

#include <ev.h>
#include <stddef.h>

#include "hsc/error.h"
#include "util.h"

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

/* Listens on 0.0.0.0:port (0: returns NULL without error: endpoints off). */
hsc_httpd *hsc_httpd_new(struct ev_loop *loop, int port, hsc_metrics *m, hsc_ready_fn ready,
                         hsc_refresh_fn refresh, void *arg, hsc_err *err);

/* Closes the listener. */
void hsc_httpd_free(hsc_httpd *h);

#endif
