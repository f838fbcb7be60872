/* The life of a worker process: command line, config, signals, metrics endpoint, loop. */
#include "worker.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli_common.h"
#include "log.h"

/*
 * glibc's malloc raises its mmap threshold after each large free and gives
 * every librdkafka thread an arena of its own: both keep a drained backlog's
 * buffers resident (hsc-ingest held two ~60 MB arenas after a 100k burst).
 * A fixed threshold and two arenas return them.
 */
static void limit_malloc(void)
{
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 2);
#endif
}

int hsc_worker_start(int argc, char **argv, const char *prog, const char *usage, hsc_config **cfg)
{
    limit_malloc();
    int rc = hsc_cli_start(argc, argv, prog, usage, cfg, NULL);
    return rc == 1 ? 0 : rc ? rc : -1;
}

/* The process's signal watchers and what they stop. */
struct signals {
    ev_signal sigint, sigterm;
    const struct hsc_worker_stop *s;
    int signalled;
};

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct signals *sg = w->data;
    (void)loop;
    (void)revents;
    if (sg->signalled++) {
        if (sg->s->stop_now) {
            hsc_log_warn("second signal: stopping now", NULL);
            sg->s->stop_now(sg->s->arg);
        }
        return;
    }
    sg->s->stop(sg->s->arg);
}

int hsc_worker_run(struct ev_loop *loop, const struct hsc_worker_stop *s)
{
    struct signals sg = {.s = s};
    ev_signal_init(&sg.sigint, signal_cb, SIGINT);
    ev_signal_init(&sg.sigterm, signal_cb, SIGTERM);
    sg.sigint.data = sg.sigterm.data = &sg;
    ev_signal_start(loop, &sg.sigint);
    ev_signal_start(loop, &sg.sigterm);
    ev_run(loop, 0);
    ev_signal_stop(loop, &sg.sigint);
    ev_signal_stop(loop, &sg.sigterm);
    return 0;
}

int hsc_worker_metrics(struct ev_loop *loop, const hsc_config *cfg, hsc_metrics *m,
                       hsc_ready_fn ready, hsc_refresh_fn refresh, void *arg, int required,
                       hsc_httpd **out, hsc_err *err)
{
    int port = (int)hsc_config_int(cfg, "metrics.port");
    *out = hsc_httpd_new(loop, port, m, ready, refresh, arg, err);
    if (port > 0 && !*out) {
        if (required)
            return err->code ? err->code : HSC_EIO; /* a port asked for and not had */
        hsc_log_warn("metrics endpoint off", "error", err->msg, NULL);
    }
    return HSC_OK;
}

/* A key of the worker's own section, e.g. "ingest.batch_max". */
static const char *key(char *buf, size_t cap, const char *section, const char *name)
{
    snprintf(buf, cap, "%s.%s", section, name);
    return buf;
}

int hsc_stage_worker_main(int argc, char **argv, const struct hsc_stage_worker *w)
{
    hsc_config *cfg;
    int rc = hsc_worker_start(argc, argv, w->prog, w->usage, &cfg);
    if (rc >= 0)
        return rc;
    struct ev_loop *loop = ev_default_loop(0);
    hsc_err err = {0};
    void *ctx = calloc(1, w->ctx_size);
    const char *topics[4];
    size_t ntopics = 0;
    if (!ctx || w->init(ctx, loop, cfg, topics, &ntopics, &err)) {
        hsc_log_error("cannot start", "error", ctx ? err.msg : "out of memory", NULL);
        free(ctx);
        hsc_config_free(cfg);
        return 2;
    }
    char k[4][96];
    struct hsc_stage_settings s = {
        .name = w->name,
        .group = hsc_config_str(cfg, key(k[0], sizeof(k[0]), w->section, "group")),
        .topics = topics,
        .ntopics = ntopics,
        .batch_max = (size_t)hsc_config_int(cfg, key(k[1], sizeof(k[1]), w->section, "batch_max")),
        .linger_ms = (int)hsc_config_int(cfg, key(k[2], sizeof(k[2]), w->section, "linger_ms")),
        .shutdown_timeout_ms = (int)hsc_config_int(cfg, "shutdown.timeout_ms"),
        .backoff_initial_ms = (int)hsc_config_int(cfg, "backoff.initial_ms"),
        .backoff_max_ms = (int)hsc_config_int(cfg, "backoff.max_ms"),
        .dlq_topic = hsc_config_topic(cfg, "topics.dlq"),
    };
    hsc_stage *st = hsc_stage_new(loop, cfg, &s, w->ops, ctx, &err);
    if (!st) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        rc = 2;
    } else {
        rc = hsc_stage_run(loop, st);
        if (w->stopped)
            w->stopped(ctx);
    }
    w->destroy(ctx);
    hsc_stage_free(st);
    free(ctx);
    hsc_config_free(cfg);
    if (st)
        ev_loop_destroy(loop);
    return rc;
}
