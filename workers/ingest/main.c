/* hsc-ingest: the ingest stage as a process (the life of it is hsc_stage_worker_main). */
#include "ingest.h"
#include "worker.h"

static const char USAGE[] =
    "Usage: hsc-ingest [options]\n"
    "Consumes content, learning and policy events, stores them in PostgreSQL and\n"
    "forwards canonical content records to the ingested topic. Stops gracefully on "
    "SIGINT/SIGTERM.\n\n";

static int init(void *ctx, struct ev_loop *loop, hsc_config *cfg, const char **topics, size_t *n,
                hsc_err *err)
{
    struct ingest_ctx *c = ctx;
    if (ingest_ctx_init(c, loop, cfg, err))
        return err->code;
    topics[0] = c->content_topic;
    topics[1] = c->learning_topic;
    topics[2] = c->policy_topic;
    *n = 3;
    return HSC_OK;
}

static void destroy(void *ctx)
{
    ingest_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    static const struct hsc_stage_worker w = {
        .prog = "hsc-ingest",
        .usage = USAGE,
        .name = "ingest",
        .section = "ingest",
        .ctx_size = sizeof(struct ingest_ctx),
        .init = init,
        .ops = &ingest_ops,
        .destroy = destroy,
    };
    return hsc_stage_worker_main(argc, argv, &w);
}
