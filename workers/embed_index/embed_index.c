/*
 * hsc-embed-index's stage. A batch is written to Milvus as at most two
 * concurrent calls, one upsert and one delete, after keeping only the newest
 * event per id (one key must not appear twice in one write). Both are keyed
 * by content id, so replaying a batch after a crash, an outage or a
 * rebalance rewrites the same entities and duplicates none.
 *
 * Order of effects: embeddings (if any are missing and an endpoint is
 * configured), the Milvus writes, the epoch bump in Redis, then the indexed
 * records. Any transient failure retries the whole batch from the start of
 * what is left; embeddings already fetched are kept on the events.
 */
#include "embed_index.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "log.h"
#include "metrics.h"
#include "normalize.h"
#include "util.h"

static const char NO_ENDPOINT[] = "no embedding and no embeddings endpoint configured";

/* ---------------- the text a title is embedded by ---------------- */

char *embed_index_text(const hsc_content_event *ev)
{
    hsc_buf b = {0};
    hsc_buf_printf(&b, "%s", ev->title ? ev->title : "");
    if (ev->description && *ev->description)
        hsc_buf_printf(&b, ". %s", ev->description);
    if (hsc_buf_append(&b, "", 1)) {
        hsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---------------- stage operations ---------------- */

static int ei_decode(void *vctx, const rd_kafka_message_t *rkm, void **out, hsc_err *err)
{
    struct embed_index_ctx *ctx = vctx;
    hsc_content_event *ev;
    int rc = hsc_content_from_message(rkm->payload, rkm->len, ctx->max_message_bytes,
                                      "embed_index.max_message_bytes", &ev, err);
    if (rc)
        return rc;
    if (ev->op == HSC_OP_UPSERT && ev->embedding && ev->dim != (size_t)ctx->dim) {
        hsc_err_set(err, HSC_EINVAL,
                    "embedding: %zu values, but the collection holds vectors of dimension %d "
                    "(milvus.dimension)",
                    ev->dim, ctx->dim);
        hsc_content_free(ev);
        return HSC_EINVAL;
    }
    *out = ev;
    return HSC_OK;
}

static void ei_free(void *vctx, void *decoded)
{
    hsc_content_free(decoded);
    (void)vctx;
}

/* The state of one process() call across its asynchronous steps. */
struct job {
    struct hsc_stage_job base; /* the batch, done, n; first, so the job is one block */
    struct embed_index_ctx *ctx;
    hsc_content_event **evs;
    int *winner;
    size_t *need; /* indexes of winners that need an embedding */
    size_t nneed;
    int pending; /* Milvus calls in flight */
    hsc_err first_err;
    size_t nup, ndel;
    int64_t epoch;
    int64_t *produced_ms; /* each input's Kafka timestamp: when the stage before produced it */
};

/* Any code but HSC_OK and HSC_EINVAL makes the stage keep the batch and retry it. */
static void job_end(struct job *j, int code, const hsc_err *err)
{
    hsc_stage_job_end(&j->base, code, err);
}

static const char *reason_of(const struct job *j, size_t i)
{
    const hsc_content_event *ev = j->evs[i];
    if (!j->winner[i])
        return "superseded by a newer event for the same id in the same batch";
    if (ev->op == HSC_OP_UPSERT && !ev->embedding)
        return NO_ENDPOINT;
    return NULL;
}

/* Bounds of the freshness histograms, seconds: publish -> searchable spans minutes at worst. */
static const double FRESHNESS_BUCKETS[HSC_METRICS_NBUCKETS] = {0.1, 0.25, 0.5, 1,  2,   3,
                                                               5,   10,   30,  60, 300, 1800};

/*
 * Freshness of a title now searchable: publish (the event's ts) -> now, and its
 * two legs: upstream (publish -> the record read here was produced, its Kafka
 * timestamp: hsc-ingest, and hsc-enrich when embed_index.input is
 * content_enriched) and embed_index (that -> searchable).
 */
static void observe_freshness(const hsc_content_event *ev, int64_t produced_ms, int64_t now)
{
    hsc_metrics *m = hsc_metrics_backend_registry();
    if (!m || !(ev->has & HSC_HAS_TS) || ev->ts <= 0 || ev->ts > now)
        return;
    hsc_metrics_observe_in(m, "hsc_content_freshness_seconds", "", (double)(now - ev->ts) / 1e3,
                           FRESHNESS_BUCKETS);
    if (produced_ms < ev->ts || produced_ms > now)
        return;
    hsc_metrics_observe_in(m, "hsc_content_stage_lag_seconds", "stage=\"upstream\"",
                           (double)(produced_ms - ev->ts) / 1e3, FRESHNESS_BUCKETS);
    hsc_metrics_observe_in(m, "hsc_content_stage_lag_seconds", "stage=\"embed_index\"",
                           (double)(now - produced_ms) / 1e3, FRESHNESS_BUCKETS);
}

static void emit_records(struct job *j)
{
    struct embed_index_ctx *ctx = j->ctx;
    int64_t now = hsc_now_ms();
    int rc = HSC_OK;
    for (size_t i = 0; i < j->base.n && !rc; i++) {
        const hsc_content_event *ev = j->evs[i];
        const char *reason = reason_of(j, i);
        hsc_indexed_record r = {
            .v = HSC_SCHEMA_VERSION,
            .id = ev->id,
            .version = ev->version,
            .op = ev->op,
            .indexed = reason == NULL,
            .reason = (char *)reason,
            .epoch = reason ? 0 : j->epoch,
            .dim = (ev->op == HSC_OP_UPSERT && ev->embedding) ? (int32_t)ev->dim : 0,
            .ts = now,
            .published_ts = (ev->has & HSC_HAS_TS) && ev->ts > 0 ? ev->ts : 0,
        };
        if (!reason)
            observe_freshness(ev, j->produced_ms ? j->produced_ms[i] : -1, now);
        if (reason && j->winner[i]) {
            ctx->stats.not_indexed++;
            hsc_log_info("title not indexed", "id", ev->id, "reason", reason, NULL);
        }
        char *buf;
        size_t len;
        hsc_err e = {0};
        rc = hsc_codec_encode_indexed(&r, &buf, &len, &e);
        if (!rc) {
            rc = hsc_stage_emit(j->base.b, ctx->indexed_topic, ev->id, strlen(ev->id), buf, len,
                                NULL);
            free(buf);
        }
    }
    ctx->stats.upserted += j->nup;
    ctx->stats.deleted += j->ndel;
    if (hsc_log_enabled(HSC_LOG_DEBUG)) {
        char up[24], del[24], ep[24];
        snprintf(up, sizeof(up), "%zu", j->nup);
        snprintf(del, sizeof(del), "%zu", j->ndel);
        snprintf(ep, sizeof(ep), "%lld", (long long)j->epoch);
        hsc_log_debug("milvus batch written", "upserted", up, "deleted", del, "epoch", ep, NULL);
    }
    hsc_err e;
    if (rc)
        hsc_err_set(&e, rc, "embed-index: cannot queue the indexed records");
    job_end(j, rc, rc ? &e : NULL);
}

static void on_epoch(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct job *j = arg;
    if (!reply) {
        job_end(j, err->code == HSC_EINVAL ? HSC_ETRANSIENT : err->code, err);
        return;
    }
    j->epoch = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    emit_records(j);
}

static void bump_epoch(struct job *j)
{
    if (j->nup + j->ndel == 0) {
        emit_records(j);
        return;
    }
    const char *argv[2] = {"INCR", j->ctx->epoch_key};
    size_t lens[2] = {4, strlen(j->ctx->epoch_key)};
    hsc_err err = {0};
    if (hsc_redis_command(j->ctx->redis, on_epoch, j, 2, argv, lens, &err))
        job_end(j, err.code, &err);
}

static void on_written(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res && !j->first_err.code)
        j->first_err = *err;
    if (--j->pending > 0)
        return;
    if (j->first_err.code) {
        job_end(j, j->first_err.code, &j->first_err);
        return;
    }
    bump_epoch(j);
}

static void write_milvus(struct job *j)
{
    struct embed_index_ctx *ctx = j->ctx;
    const hsc_content_event **ups = malloc(j->base.n * sizeof(*ups));
    const char **dels = malloc(j->base.n * sizeof(*dels));
    hsc_err err = {0};
    if (!ups || !dels) {
        free(ups);
        free(dels);
        hsc_err_set(&err, HSC_ETRANSIENT, "out of memory");
        job_end(j, err.code, &err);
        return;
    }
    for (size_t i = 0; i < j->base.n; i++) {
        if (!j->winner[i])
            continue;
        if (j->evs[i]->op == HSC_OP_DELETE)
            dels[j->ndel++] = j->evs[i]->id;
        else if (j->evs[i]->embedding)
            ups[j->nup++] = j->evs[i];
    }
    /* Both calls go out together; each id appears in at most one of them. */
    j->pending = 1; /* held until both are started, so neither completion ends the job */
    if (j->nup) {
        j->pending++;
        if (hsc_milvus_upsert(ctx->milvus, ups, j->nup, on_written, j, &err)) {
            j->pending--;
            if (!j->first_err.code)
                j->first_err = err;
        }
    }
    if (j->ndel && !j->first_err.code) {
        j->pending++;
        if (hsc_milvus_delete(ctx->milvus, dels, j->ndel, on_written, j, &err)) {
            j->pending--;
            j->first_err = err;
        }
    }
    free(ups);
    free(dels);
    on_written(j, &(hsc_milvus_result){0}, NULL); /* releases the hold */
}

static void on_embeddings(void *arg, float **vecs, size_t n, const hsc_err *err)
{
    struct job *j = arg;
    struct embed_index_ctx *ctx = j->ctx;
    if (!vecs) {
        job_end(j, err->code, err);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        hsc_content_event *ev = j->evs[j->need[k]];
        ev->embedding = vecs[k];
        ev->dim = (size_t)ctx->dim;
    }
    ctx->stats.embedded += n;
    write_milvus(j);
}

static void fetch_embeddings(struct job *j)
{
    struct embed_index_ctx *ctx = j->ctx;
    j->nneed = 0;
    for (size_t i = 0; i < j->base.n; i++)
        if (j->winner[i] && j->evs[i]->op == HSC_OP_UPSERT && !j->evs[i]->embedding)
            j->need[j->nneed++] = i;
    if (!ctx->embeddings || !j->nneed) {
        write_milvus(j);
        return;
    }
    char **texts = calloc(j->nneed, sizeof(*texts));
    int oom = !texts;
    for (size_t k = 0; !oom && k < j->nneed; k++)
        oom = !(texts[k] = embed_index_text(j->evs[j->need[k]]));
    hsc_err err = {0};
    int rc = oom ? hsc_err_set(&err, HSC_ETRANSIENT, "out of memory")
                 : hsc_embeddings_fetch(ctx->embeddings, (const char *const *)texts, j->nneed,
                                        on_embeddings, j, &err);
    for (size_t k = 0; texts && k < j->nneed; k++)
        free(texts[k]);
    free(texts);
    if (rc)
        job_end(j, err.code, &err);
}

static void on_ensured(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_end(j, err->code, err);
        return;
    }
    fetch_embeddings(j);
}

static int ei_process(void *vctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                      hsc_stage_done_fn done)
{
    struct embed_index_ctx *ctx = vctx;
    struct job *j;
    const size_t size[] = {sizeof(*j->evs), sizeof(*j->winner), sizeof(*j->need),
                           sizeof(*j->produced_ms)};
    void *a[4];
    if (!(j = hsc_stage_job_new(sizeof(*j), b, done, n, 4, size, a)))
        return HSC_ENOMEM;
    *j = (struct job){.base = j->base,
                      .ctx = ctx,
                      .evs = a[0],
                      .winner = a[1],
                      .need = a[2],
                      .produced_ms = a[3]};
    for (size_t i = 0; i < n; i++) {
        j->evs[i] = msgs[i]->decoded;
        j->produced_ms[i] = rd_kafka_message_timestamp(msgs[i]->rkm, NULL);
    }
    hsc_content_pick_winners((const hsc_content_event *const *)j->evs, n, j->winner);
    if (!hsc_milvus_ready(ctx->milvus)) {
        hsc_err err = {0};
        int rc = hsc_milvus_ensure(ctx->milvus, on_ensured, j, &err);
        if (rc) {
            free(j);
            return rc == HSC_EINVAL ? HSC_ETRANSIENT : rc;
        }
        return HSC_OK;
    }
    fetch_embeddings(j);
    return HSC_OK;
}

const struct hsc_stage_ops embed_index_ops = {
    .decode = ei_decode,
    .free_decoded = ei_free,
    .process = ei_process,
};

/* ---------------- setup ---------------- */

int embed_index_ctx_init(struct embed_index_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                         hsc_err *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->loop = loop;
    const char *input = hsc_config_str(cfg, "embed_index.input");
    HSC_STRCPY(ctx->input_topic, hsc_config_topic(cfg, !strcmp(input, "content_ingested")
                                                           ? "topics.content_ingested"
                                                           : "topics.content_enriched"));
    HSC_STRCPY(ctx->indexed_topic, hsc_config_topic(cfg, "topics.content_indexed"));
    HSC_STRCPY(ctx->epoch_key, hsc_config_str(cfg, "redis.epoch_key"));
    ctx->max_message_bytes = (size_t)hsc_config_int(cfg, "embed_index.max_message_bytes");
    ctx->dim = (int)hsc_config_int(cfg, "milvus.dimension");

    char schema[1024];
    struct hsc_milvus_settings ms;
    hsc_milvus_settings_load(cfg, &ms, schema, sizeof(schema));
    if (!(ctx->http = hsc_http_new(loop, err)))
        return err->code;
    if (!(ctx->milvus = hsc_milvus_new(loop, ctx->http, &ms, err)) ||
        !(ctx->redis = hsc_redis_new(loop, hsc_config_str(cfg, "redis.url"),
                                     (int)hsc_config_int(cfg, "redis.timeout_ms"), err))) {
        embed_index_ctx_destroy(ctx);
        return err->code;
    }
    struct hsc_embeddings_settings es;
    hsc_embeddings_settings_load(cfg, &es);
    if (*es.url && !(ctx->embeddings = hsc_embeddings_new(ctx->http, &es, err))) {
        embed_index_ctx_destroy(ctx);
        return err->code;
    }
    return HSC_OK;
}

void embed_index_ctx_destroy(struct embed_index_ctx *ctx)
{
    hsc_http_free(ctx->http); /* cancels Milvus and embeddings calls in flight */
    hsc_milvus_free(ctx->milvus);
    hsc_redis_free(ctx->redis);
    hsc_embeddings_free(ctx->embeddings);
    memset(ctx, 0, sizeof(*ctx));
}
