/*
 * The life of a worker process: its command line (--help, --version and the
 * common options), its config, one style of signal handling (the first
 * SIGINT/SIGTERM stops gracefully, a second one may stop at once), its
 * metrics endpoint and its loop. A pipeline worker's main.c fills a
 * struct hsc_stage_worker and calls hsc_stage_worker_main.
 */
#ifndef HSC_WORKER_H
#define HSC_WORKER_H

#include <ev.h>

#include "config.h"
#include "hsc/error.h"
#include "metrics.h"
#include "stage.h"

/* How a worker stops: stop begins a graceful stop; stop_now (NULL: ignore) a second signal. */
struct hsc_worker_stop {
    void (*stop)(void *arg);
    void (*stop_now)(void *arg);
    void *arg;
};

/*
 * Parses the common options and loads the config of a worker that takes no
 * arguments of its own (and caps malloc's arenas, see worker.c). Returns 0 with *cfg set, or the
 * exit status to return (0 after --help, --version or --print-config).
 */
int hsc_worker_start(int argc, char **argv, const char *prog, const char *usage, hsc_config **cfg);

/* Runs loop until it is broken, with SIGINT/SIGTERM handled as s says. Returns 0. */
int hsc_worker_run(struct ev_loop *loop, const struct hsc_worker_stop *s);

/*
 * Starts the metrics and readiness endpoint on metrics.port (none if 0).
 * *out is NULL when there is none. A port asked for and not had is an
 * error if required, else a warning and no endpoint.
 */
int hsc_worker_metrics(struct ev_loop *loop, const hsc_config *cfg, hsc_metrics *m,
                       hsc_ready_fn ready, hsc_refresh_fn refresh, void *arg, int required,
                       hsc_httpd **out, hsc_err *err);

/* What a pipeline worker is: its names, its context and the stage it plugs in. */
struct hsc_stage_worker {
    const char *prog;    /* "hsc-ingest": logs, --version, the Kafka client id */
    const char *usage;   /* its --help text */
    const char *name;    /* "embed-index": the stage's name in logs and DLQ headers */
    const char *section; /* "embed_index": where group, batch_max and linger_ms are */
    size_t ctx_size;
    /* Builds ctx on loop; fills up to 4 input topics and their count. */
    int (*init)(void *ctx, struct ev_loop *loop, hsc_config *cfg, const char **topics,
                size_t *ntopics, hsc_err *err);
    const struct hsc_stage_ops *ops;
    void (*stopped)(void *ctx); /* optional: logs the worker's own counts at the end */
    void (*destroy)(void *ctx); /* cancels a write cut off by a shutdown timeout */
};

/* The whole life of a pipeline worker process. Returns the exit status. */
int hsc_stage_worker_main(int argc, char **argv, const struct hsc_stage_worker *w);

#endif
