/* hsc-ingest: wires config, loop and the ingest stage together. */
#include <ev.h>
#include <stdio.h>

#include "cli_common.h"
#include "ingest.h"
#include "log.h"
#include "stage.h"

static const char USAGE[] =
    "Usage: hsc-ingest [options]\n"
    "Consumes content, learning and policy events, stores them in PostgreSQL and\n"
    "forwards canonical content records to the ingested topic. Stops gracefully on "
    "SIGINT/SIGTERM.\n\n";

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int rc = hsc_cli_start(argc, argv, "hsc-ingest", USAGE, &cfg, NULL);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct ev_loop *loop = ev_default_loop(0);
    hsc_err err = {0};
    struct ingest_ctx ctx;
    if (ingest_ctx_init(&ctx, loop, cfg, &err)) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        hsc_config_free(cfg);
        return 2;
    }
    const char *topics[] = {ctx.content_topic, ctx.learning_topic, ctx.policy_topic};
    struct hsc_stage_settings s = {
        .name = "ingest",
        .group = hsc_config_str(cfg, "ingest.group"),
        .topics = topics,
        .ntopics = 3,
        .batch_max = (size_t)hsc_config_int(cfg, "ingest.batch_max"),
        .linger_ms = (int)hsc_config_int(cfg, "ingest.linger_ms"),
        .shutdown_timeout_ms = (int)hsc_config_int(cfg, "shutdown.timeout_ms"),
        .backoff_initial_ms = (int)hsc_config_int(cfg, "backoff.initial_ms"),
        .backoff_max_ms = (int)hsc_config_int(cfg, "backoff.max_ms"),
        .dlq_topic = hsc_config_topic(cfg, "topics.dlq"),
    };
    hsc_stage *st = hsc_stage_new(loop, cfg, &s, &ingest_ops, &ctx, &err);
    if (!st) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        ingest_ctx_destroy(&ctx);
        hsc_config_free(cfg);
        return 2;
    }
    rc = hsc_stage_run(loop, st);
    ingest_ctx_destroy(&ctx); /* cancels a write cut off by a shutdown timeout */
    hsc_stage_free(st);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    return rc;
}
