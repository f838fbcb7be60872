/* hsc-embed-index: wires config, loop and the embed-index stage together. */
#include <ev.h>
#include <stdio.h>

#include "cli_common.h"
#include "embed_index.h"
#include "log.h"
#include "stage.h"

static const char USAGE[] =
    "Usage: hsc-embed-index [options]\n"
    "Consumes enriched content records (or ingested ones: embed_index.input), writes their\n"
    "embeddings to Milvus in batches, bumps the catalogue epoch in Redis and reports each\n"
    "title on the indexed topic. Stops gracefully on SIGINT/SIGTERM.\n\n";

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int rc = hsc_cli_start(argc, argv, "hsc-embed-index", USAGE, &cfg, NULL);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct ev_loop *loop = ev_default_loop(0);
    hsc_err err = {0};
    struct embed_index_ctx ctx;
    if (embed_index_ctx_init(&ctx, loop, cfg, &err)) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        hsc_config_free(cfg);
        return 2;
    }
    const char *topics[] = {ctx.input_topic};
    struct hsc_stage_settings s = {
        .name = "embed-index",
        .group = hsc_config_str(cfg, "embed_index.group"),
        .topics = topics,
        .ntopics = 1,
        .batch_max = (size_t)hsc_config_int(cfg, "embed_index.batch_max"),
        .linger_ms = (int)hsc_config_int(cfg, "embed_index.linger_ms"),
        .shutdown_timeout_ms = (int)hsc_config_int(cfg, "shutdown.timeout_ms"),
        .backoff_initial_ms = (int)hsc_config_int(cfg, "backoff.initial_ms"),
        .backoff_max_ms = (int)hsc_config_int(cfg, "backoff.max_ms"),
        .dlq_topic = hsc_config_topic(cfg, "topics.dlq"),
    };
    hsc_log_info("embed-index starting", "input", ctx.input_topic, "output", ctx.indexed_topic,
                 "milvus", hsc_config_str(cfg, "milvus.url"), NULL);
    hsc_stage *st = hsc_stage_new(loop, cfg, &s, &embed_index_ops, &ctx, &err);
    if (!st) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        embed_index_ctx_destroy(&ctx);
        hsc_config_free(cfg);
        return 2;
    }
    rc = hsc_stage_run(loop, st);
    char up[24], del[24], skip[24];
    snprintf(up, sizeof(up), "%llu", ctx.stats.upserted);
    snprintf(del, sizeof(del), "%llu", ctx.stats.deleted);
    snprintf(skip, sizeof(skip), "%llu", ctx.stats.not_indexed);
    hsc_log_info("embed-index stopped", "upserted", up, "deleted", del, "not_indexed", skip, NULL);
    embed_index_ctx_destroy(&ctx); /* cancels a write cut off by a shutdown timeout */
    hsc_stage_free(st);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    return rc;
}
