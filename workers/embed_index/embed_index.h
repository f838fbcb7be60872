/*
 * The embed-index stage: content records into Milvus, one write per batch,
 * then the catalogue epoch in Redis, then one hsc.content.indexed record per
 * input message.
 */
#ifndef HSC_EMBED_INDEX_H
#define HSC_EMBED_INDEX_H

#include <stddef.h>

#include "config.h"
#include "embeddings.h"
#include "hsc/message.h"
#include "http.h"
#include "milvus.h"
#include "redis.h"
#include "stage.h"

/* Counters beyond the stage's own, logged with every batch summary. */
struct embed_index_stats {
    unsigned long long upserted, deleted, not_indexed, embedded;
};

/* What the stage needs: its clients, topics and settings. */
struct embed_index_ctx {
    struct ev_loop *loop;
    hsc_http *http;
    hsc_milvus *milvus;
    hsc_redis *redis;
    char input_topic[256], indexed_topic[256], epoch_key[256];
    size_t max_message_bytes;
    int dim;
    hsc_embeddings *embeddings; /* the optional endpoint (embeddings.url); NULL when none */
    struct embed_index_stats stats;
};

/* Fills ctx from cfg: HTTP, Milvus and Redis clients on loop (nothing connects yet). */
int embed_index_ctx_init(struct embed_index_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                         hsc_err *err);

/* Cancels what is in flight and frees the clients. */
void embed_index_ctx_destroy(struct embed_index_ctx *ctx);

/* The stage operations (decode, process, free) of embed-index. */
extern const struct hsc_stage_ops embed_index_ops;

/* The text sent to the embeddings endpoint for ev: title, then description. */
char *embed_index_text(const hsc_content_event *ev);

#endif
