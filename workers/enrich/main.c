/* hsc-enrich: the enrich stage as a process (the life of it is hsc_stage_worker_main). */
#include "enrich.h"
#include "log.h"
#include "worker.h"

static const char USAGE[] =
    "Usage: hsc-enrich [options]\n"
    "Consumes ingested content records, writes titles, their tags and their SIMILAR_TO\n"
    "top-N (computed from an in-memory index of the whole catalogue, loaded from\n"
    "PostgreSQL at start) to Neo4j in batches, and forwards each record on the enriched\n"
    "topic. Stops gracefully on SIGINT/SIGTERM.\n\n";

static int init(void *ctx, struct ev_loop *loop, hsc_config *cfg, const char **topics, size_t *n,
                hsc_err *err)
{
    struct enrich_ctx *c = ctx;
    if (enrich_ctx_init(c, loop, cfg, err))
        return err->code;
    if (enrich_index_start(c, cfg, err)) {
        enrich_ctx_destroy(c);
        hsc_err_prefix(err, "the similarity index");
        return err->code ? err->code : HSC_EIO;
    }
    topics[0] = c->input_topic;
    *n = 1;
    hsc_log_info("enrich starting", "input", c->input_topic, "output", c->enriched_topic, "neo4j",
                 hsc_config_str(cfg, "neo4j.url"), NULL);
    return HSC_OK;
}

static void stopped(void *ctx)
{
    const struct enrich_ctx *c = ctx;
    const struct hsc_log_count counts[] = {{"written", c->written},
                                           {"deleted", c->deleted},
                                           {"derived_tags", c->derived_tags},
                                           {"similar_added", c->sim_added},
                                           {"similar_removed", c->sim_removed},
                                           {"similar_replaced", c->sim_replaced},
                                           {"too_large_statements", c->splits},
                                           {"statements", c->statements},
                                           {"largest_statement_changes", c->largest}};
    hsc_log_counts("enrich stopped", NULL, NULL, counts, 9);
}

static void destroy(void *ctx)
{
    enrich_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    static const struct hsc_stage_worker w = {.prog = "hsc-enrich",
                                              .usage = USAGE,
                                              .name = "enrich",
                                              .section = "enrich",
                                              .ctx_size = sizeof(struct enrich_ctx),
                                              .init = init,
                                              .ops = &enrich_ops,
                                              .stopped = stopped,
                                              .destroy = destroy};
    return hsc_stage_worker_main(argc, argv, &w);
}
