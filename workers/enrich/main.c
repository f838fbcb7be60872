/* hsc-enrich: wires config, loop and the enrich stage together. */
#include <ev.h>
#include <stdio.h>

#include "cli_common.h"
#include "enrich.h"
#include "log.h"
#include "stage.h"

static const char USAGE[] =
    "Usage: hsc-enrich [options]\n"
    "Consumes ingested content records, writes titles, their tags and their SIMILAR_TO\n"
    "top-N (computed from an in-memory index of the whole catalogue, loaded from\n"
    "PostgreSQL at start) to Neo4j in batches, and forwards each record on the enriched\n"
    "topic. Stops gracefully on SIGINT/SIGTERM.\n\n";

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int rc = hsc_cli_start(argc, argv, "hsc-enrich", USAGE, &cfg, NULL);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct ev_loop *loop = ev_default_loop(0);
    hsc_err err = {0};
    struct enrich_ctx ctx;
    if (enrich_ctx_init(&ctx, loop, cfg, &err)) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        hsc_config_free(cfg);
        return 2;
    }
    if (enrich_index_start(&ctx, cfg, &err)) {
        hsc_log_error("cannot start: the similarity index", "error", err.msg, NULL);
        enrich_ctx_destroy(&ctx);
        hsc_config_free(cfg);
        return 2;
    }
    const char *topics[] = {ctx.input_topic};
    struct hsc_stage_settings s = {
        .name = "enrich",
        .group = hsc_config_str(cfg, "enrich.group"),
        .topics = topics,
        .ntopics = 1,
        .batch_max = (size_t)hsc_config_int(cfg, "enrich.batch_max"),
        .linger_ms = (int)hsc_config_int(cfg, "enrich.linger_ms"),
        .shutdown_timeout_ms = (int)hsc_config_int(cfg, "shutdown.timeout_ms"),
        .backoff_initial_ms = (int)hsc_config_int(cfg, "backoff.initial_ms"),
        .backoff_max_ms = (int)hsc_config_int(cfg, "backoff.max_ms"),
        .dlq_topic = hsc_config_topic(cfg, "topics.dlq"),
    };
    hsc_log_info("enrich starting", "input", ctx.input_topic, "output", ctx.enriched_topic, "neo4j",
                 hsc_config_str(cfg, "neo4j.url"), NULL);
    hsc_stage *st = hsc_stage_new(loop, cfg, &s, &enrich_ops, &ctx, &err);
    if (!st) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        enrich_ctx_destroy(&ctx);
        hsc_config_free(cfg);
        return 2;
    }
    rc = hsc_stage_run(loop, st);
    char up[24], del[24], tags[24], add[24], rem[24], rep[24];
    snprintf(up, sizeof(up), "%llu", ctx.written);
    snprintf(del, sizeof(del), "%llu", ctx.deleted);
    snprintf(tags, sizeof(tags), "%llu", ctx.derived_tags);
    snprintf(add, sizeof(add), "%llu", ctx.sim_added);
    snprintf(rem, sizeof(rem), "%llu", ctx.sim_removed);
    snprintf(rep, sizeof(rep), "%llu", ctx.sim_replaced);
    hsc_log_info("enrich stopped", "written", up, "deleted", del, "derived_tags", tags,
                 "similar_added", add, "similar_removed", rem, "similar_replaced", rep, NULL);
    enrich_ctx_destroy(&ctx); /* cancels a write cut off by a shutdown timeout */
    hsc_stage_free(st);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    return rc;
}
