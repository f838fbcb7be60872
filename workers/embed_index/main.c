/* hsc-embed-index: the embed-index stage as a process (its life: hsc_stage_worker_main). */
#include "embed_index.h"
#include "log.h"
#include "worker.h"

static const char USAGE[] =
    "Usage: hsc-embed-index [options]\n"
    "Consumes enriched content records (or ingested ones: embed_index.input), writes their\n"
    "embeddings to Milvus in batches, bumps the catalogue epoch in Redis and reports each\n"
    "title on the indexed topic. Stops gracefully on SIGINT/SIGTERM.\n\n";

static int init(void *ctx, struct ev_loop *loop, hsc_config *cfg, const char **topics, size_t *n,
                hsc_err *err)
{
    struct embed_index_ctx *c = ctx;
    if (embed_index_ctx_init(c, loop, cfg, err))
        return err->code;
    topics[0] = c->input_topic;
    *n = 1;
    hsc_log_info("embed-index starting", "input", c->input_topic, "output", c->indexed_topic,
                 "milvus", hsc_config_str(cfg, "milvus.url"), NULL);
    return HSC_OK;
}

static void stopped(void *ctx)
{
    const struct embed_index_ctx *c = ctx;
    const struct hsc_log_count counts[] = {{"upserted", c->stats.upserted},
                                           {"deleted", c->stats.deleted},
                                           {"not_indexed", c->stats.not_indexed}};
    hsc_log_counts("embed-index stopped", NULL, NULL, counts, 3);
}

static void destroy(void *ctx)
{
    embed_index_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    static const struct hsc_stage_worker w = {.prog = "hsc-embed-index",
                                              .usage = USAGE,
                                              .name = "embed-index",
                                              .section = "embed_index",
                                              .ctx_size = sizeof(struct embed_index_ctx),
                                              .init = init,
                                              .ops = &embed_index_ops,
                                              .stopped = stopped,
                                              .destroy = destroy};
    return hsc_stage_worker_main(argc, argv, &w);
}
