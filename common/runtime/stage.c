/*
 * The batching consume -> write -> produce -> store loop behind every
 * pipeline worker (see stage.h for its guarantees).
 *
 * A batch moves through two phases. PROCESS: the stage's process() writes the
 * valid messages to its backend; on a transient error the same batch is
 * retried after a backoff while fetching is paused; on a permanent error the
 * batch is split into single messages so the bad one can be isolated. PRODUCE:
 * the emitted records and the DLQ copies of invalid messages are sent, and
 * once Kafka acknowledged all of them the batch's offsets are stored.
 * (Producing, DLQ copies and metrics are in stage_produce.c and
 * stage_metrics.c; what is left here is the queue and the two phases, about
 * 630 lines that read best together.)
 */
#include "stage.h"
#include "stage_internal.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "hsc/message.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"

static void maybe_start_batch(hsc_stage *st);
static void run_process(hsc_stage_batch *b);

/* ---------------- pending queue ---------------- */

static int q_push(hsc_stage *st, hsc_stage_msg *m)
{
    return hsc_ring_push(&st->q, &m);
}

static hsc_stage_msg *q_pop(hsc_stage *st)
{
    hsc_stage_msg *m = NULL;
    hsc_ring_pop(&st->q, &m);
    return m;
}

static void msg_free(hsc_stage *st, hsc_stage_msg *m)
{
    if (!m)
        return;
    if (m->decoded && st->ops.free_decoded)
        st->ops.free_decoded(st->ctx, m->decoded);
    if (m->rkm)
        rd_kafka_message_destroy(m->rkm);
    free(m);
}

/* ---------------- pausing ---------------- */

static void update_pause(hsc_stage *st)
{
    int want = st->pause_reasons != 0;
    if (want != hsc_consumer_paused(st->consumer)) {
        hsc_consumer_set_paused(st->consumer, want);
        hsc_log_debug(want ? "fetching paused" : "fetching resumed", "stage", st->name, NULL);
        if (!want)
            hsc_consumer_poll(st->consumer);
    }
}

void stage_set_reason(hsc_stage *st, unsigned reason, int on)
{
    if (on)
        st->pause_reasons |= reason;
    else
        st->pause_reasons &= ~reason;
    update_pause(st);
}

/* ---------------- consumer callbacks ---------------- */

static int can_accept(void *arg)
{
    hsc_stage *st = arg;
    return !st->stopping && hsc_ring_len(&st->q) < st->soft_cap;
}

static void on_message(void *arg, rd_kafka_message_t *rkm)
{
    hsc_stage *st = arg;
    if (rkm->err) {
        hsc_log_warn("consumer error", "stage", st->name, "error", rd_kafka_message_errstr(rkm),
                     NULL);
        rd_kafka_message_destroy(rkm);
        return;
    }
    hsc_stage_msg *m = calloc(1, sizeof(*m));
    if (!m || q_push(st, m) != HSC_OK) {
        /* Without memory we cannot hold it; dropping the message here is safe
         * because its offset is never stored: rewinding re-reads it. */
        free(m);
        rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(pos, rd_kafka_topic_name(rkm->rkt), rkm->partition)
            ->offset = rkm->offset;
        rd_kafka_seek_partitions(hsc_consumer_handle(st->consumer), pos, 1000);
        rd_kafka_topic_partition_list_destroy(pos);
        rd_kafka_message_destroy(rkm);
        return;
    }
    m->rkm = rkm;
    st->stats.consumed++;
    stage_topic_counts(st, rd_kafka_topic_name(rkm->rkt))->consumed++;
    if (st->ops.decode(st->ctx, rkm, &m->decoded, &m->err) != HSC_OK) {
        if (m->decoded && st->ops.free_decoded)
            st->ops.free_decoded(st->ctx, m->decoded);
        m->decoded = NULL;
        if (!m->err.code)
            hsc_err_set(&m->err, HSC_EINVAL, "undecodable");
    }
    maybe_start_batch(st);
}

static int in_list(const rd_kafka_topic_partition_list_t *parts, const rd_kafka_message_t *rkm)
{
    const char *t = rd_kafka_topic_name(rkm->rkt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition == rkm->partition && !strcmp(parts->elems[i].topic, t))
            return 1;
    return 0;
}

static void batch_free(hsc_stage *st, hsc_stage_batch *b);

static void on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    hsc_stage *st = arg;
    if (st->ops.on_assign)
        st->ops.on_assign(st->ctx, parts);
}

static void on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    /* Buffered messages of revoked partitions belong to their next owner, who
     * reads them again from the last commit. The batch in flight finishes. */
    hsc_stage *st = arg;
    if (st->ops.on_revoke)
        st->ops.on_revoke(st->ctx, parts);
    size_t n = hsc_ring_len(&st->q), dropped = 0;
    for (size_t i = 0; i < n; i++) {
        hsc_stage_msg *m = q_pop(st);
        if (in_list(parts, m->rkm)) {
            msg_free(st, m);
            dropped++;
        } else {
            q_push(st, m);
        }
    }
    if (dropped) {
        char d[32];
        snprintf(d, sizeof(d), "%zu", dropped);
        hsc_log_info("released buffered messages of revoked partitions", "stage", st->name, "count",
                     d, NULL);
    }
    /* A batch waiting to retry its write, all of whose messages are the next owner's now,
     * is given up: retried later it would race that owner's write of the same ids (a
     * Milvus delete-then-insert from each left a title twice after a Kafka restart). One
     * with a call in flight, or with messages of kept partitions, still finishes. */
    hsc_stage_batch *b = st->batch;
    if (!b || b->phase != PHASE_PROCESS || !ev_is_active(&st->retry))
        return;
    for (size_t i = 0; i < b->n; i++)
        if (!in_list(parts, b->msgs[i]->rkm))
            return;
    char d[32];
    snprintf(d, sizeof(d), "%zu", b->n);
    hsc_log_warn("gave up a batch waiting to retry: its partitions were revoked", "stage", st->name,
                 "messages", d, NULL);
    ev_timer_stop(st->loop, &st->retry);
    stage_set_reason(st, PAUSE_BACKOFF, 0);
    hsc_backoff_reset(&st->backoff);
    st->batch = NULL;
    batch_free(st, b);
    /* the next batch starts from the loop, not inside the rebalance callback */
    ev_timer_set(&st->retry, 0, 0);
    ev_timer_start(st->loop, &st->retry);
}

/* ---------------- batch lifecycle ---------------- */

static void batch_free(hsc_stage *st, hsc_stage_batch *b)
{
    for (size_t i = 0; i < b->nout; i++) {
        free(b->out[i].topic);
        free(b->out[i].key);
        free(b->out[i].value);
        if (b->out[i].hdrs)
            rd_kafka_headers_destroy(b->out[i].hdrs);
    }
    free(b->out);
    for (size_t i = 0; i < b->n; i++)
        msg_free(st, b->msgs[i]);
    free(b->msgs);
    free(b->valid);
    free(b);
}

void *hsc_stage_batch_ctx(hsc_stage_batch *b)
{
    return b->st->ctx;
}

/*
 * Gives the pages a finished batch freed back to the system, at most every
 * 100 ms: glibc keeps free memory inside its arenas (only the top of each is
 * trimmed), and under a backlog the batch, its fetch buffers and its produced
 * copies are freed in a different order from the one they were taken in.
 */
static void trim_memory(hsc_stage *st)
{
    int64_t now = hsc_mono_us();
    if (now - st->trimmed_us < 100000)
        return;
    st->trimmed_us = now;
    malloc_trim(0);
}

void stage_finish_batch(hsc_stage_batch *b)
{
    hsc_stage *st = b->st;
    /* The next offset to read, per partition: one past the batch's last message. */
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_t *rkm = b->msgs[i]->rkm;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(rkm->rkt),
                                                   rkm->partition);
        if (rkm->offset + 1 > tp->offset)
            tp->offset = rkm->offset + 1;
    }
    hsc_err err = {0};
    if (hsc_consumer_store(st->consumer, offs, &err))
        hsc_log_warn("offset store failed", "stage", st->name, "error", err.msg, NULL);
    rd_kafka_topic_partition_list_destroy(offs);
    st->stats.processed += b->n;
    st->stats.batches++;
    hsc_metrics_observe(st->metrics, "hsc_batch_duration_seconds", st->label,
                        (hsc_mono_us() - b->started_us) / 1e6);
    hsc_metrics_observe_in(st->metrics, "hsc_batch_size_messages", st->label, (double)b->n,
                           HSC_METRICS_SIZE_BUCKETS);
    if (hsc_log_enabled(HSC_LOG_DEBUG)) {
        char n[32], us[32], q[32];
        snprintf(n, sizeof(n), "%zu", b->n);
        snprintf(us, sizeof(us), "%lld", (long long)(hsc_mono_us() - b->started_us));
        snprintf(q, sizeof(q), "%zu", hsc_ring_len(&st->q));
        hsc_log_debug("batch done", "stage", st->name, "messages", n, "us", us, "pending", q, NULL);
    }
    st->batch = NULL;
    batch_free(st, b);
    trim_memory(st);
    hsc_backoff_reset(&st->backoff);
    maybe_start_batch(st);
    hsc_consumer_poll(st->consumer); /* room again: drain what librdkafka holds */
}

static void process_done(hsc_stage_batch *b, int code, const hsc_err *err);

static void on_process_done(hsc_stage_batch *b, int code, const hsc_err *err)
{
    if (b->in_process) {
        /* Too early: the contract says done comes later. Keep it for run_process. */
        b->early = 1;
        b->early_code = code;
        b->early_err = err ? *err : (hsc_err){0};
        return;
    }
    process_done(b, code, err);
}

/* After one write: the next message written alone (from the loop), or the produce phase. */
static void next_or_produce(hsc_stage_batch *b)
{
    hsc_stage *st = b->st;
    if (b->isolating && ++b->cursor < b->nvalid) {
        ev_timer_set(&st->kick, 0, 0);
        ev_timer_start(st->loop, &st->kick);
        return;
    }
    stage_start_produce(b);
}

static void process_done(hsc_stage_batch *b, int code, const hsc_err *err)
{
    hsc_stage *st = b->st;
    if (st->finished)
        return; /* cancelled by shutdown: the batch is freed with the stage */
    if (code == HSC_OK) {
        stage_set_reason(st, PAUSE_BACKOFF, 0);
        hsc_backoff_reset(&st->backoff);
        next_or_produce(b);
        return;
    }
    stage_rollback_outputs(b, b->mark);
    if (code == HSC_EINVAL) {
        if (!b->isolating && b->ncur > 1) {
            char n[32];
            snprintf(n, sizeof(n), "%zu", b->ncur);
            hsc_log_warn("batch rejected; writing its messages one by one", "stage", st->name,
                         "messages", n, "error", err ? err->msg : "", NULL);
            b->isolating = 1;
            b->cursor = 0;
            run_process(b);
            return;
        }
        /* One message the backend rejects for what it is: it goes to the DLQ. */
        hsc_stage_msg *m = b->cur[0];
        if (st->ops.free_decoded)
            st->ops.free_decoded(st->ctx, m->decoded);
        m->decoded = NULL;
        hsc_err_set(&m->err, HSC_EINVAL, "%s", err ? err->msg : "rejected by the backend");
        next_or_produce(b);
        return;
    }
    /* Transient (or unknown): keep the batch, pause fetching, retry later. */
    int64_t ms = stage_backoff(st);
    char d[32], n[32];
    snprintf(d, sizeof(d), "%lld", (long long)ms);
    snprintf(n, sizeof(n), "%zu", b->ncur);
    /* A configuration error (bad credentials, wrong dimension) waits for an operator: say so
     * loudly. */
    hsc_log(code == HSC_ECONFIG ? HSC_LOG_ERROR : HSC_LOG_WARN,
            "backend write failed; pausing and retrying", "stage", st->name, "error",
            err ? err->msg : hsc_code_name(code), "retry_in_ms", d, "messages", n, NULL);
    st->stats.retries++;
    stage_set_reason(st, PAUSE_BACKOFF, 1);
    ev_timer_set(&st->retry, (double)ms / 1000.0, 0);
    ev_timer_start(st->loop, &st->retry);
}

static void run_process(hsc_stage_batch *b)
{
    hsc_stage *st = b->st;
    if (b->isolating) {
        b->cur = &b->valid[b->cursor];
        b->ncur = 1;
    } else {
        b->cur = b->valid;
        b->ncur = b->nvalid;
    }
    b->mark = b->nout;
    b->phase_us = hsc_mono_us();
    hsc_err err = {0};
    b->in_process = 1;
    b->early = 0;
    int rc = st->ops.process(st->ctx, b, b->cur, b->ncur, on_process_done);
    b->in_process = 0;
    if (rc) {
        if (!err.code)
            hsc_err_set(&err, rc, "process failed: %s", hsc_code_name(rc));
        process_done(b, rc, &err);
    } else if (b->early) {
        hsc_err e = b->early_err;
        process_done(b, b->early_code, e.code ? &e : NULL);
    }
}

static void start_batch(hsc_stage *st)
{
    size_t n = hsc_ring_len(&st->q) < st->s.batch_max ? hsc_ring_len(&st->q) : st->s.batch_max;
    hsc_stage_batch *b = calloc(1, sizeof(*b));
    hsc_stage_msg **msgs = malloc(n * sizeof(*msgs));
    hsc_stage_msg **valid = malloc(n * sizeof(*valid));
    if (!b || !msgs || !valid) {
        free(b);
        free(msgs);
        free(valid);
        ev_timer_set(&st->retry, 0.1, 0);
        ev_timer_start(st->loop, &st->retry);
        return;
    }
    b->st = st;
    b->started_us = hsc_mono_us();
    b->msgs = msgs;
    b->valid = valid;
    for (size_t i = 0; i < n; i++) {
        hsc_stage_msg *m = q_pop(st);
        b->msgs[b->n++] = m;
        if (m->decoded)
            b->valid[b->nvalid++] = m;
    }
    st->batch = b;
    if (b->nvalid == 0)
        stage_start_produce(b);
    else
        run_process(b);
}

static void maybe_finish_stop(hsc_stage *st);

static void maybe_start_batch(hsc_stage *st)
{
    if (st->batch || st->finished)
        return;
    if (hsc_ring_len(&st->q) == 0) {
        maybe_finish_stop(st);
        return;
    }
    if (hsc_ring_len(&st->q) >= st->s.batch_max || st->s.linger_ms == 0 || st->stopping) {
        ev_timer_stop(st->loop, &st->linger);
        start_batch(st);
        return;
    }
    if (!ev_is_active(&st->linger)) {
        ev_timer_set(&st->linger, st->s.linger_ms / 1000.0, 0);
        ev_timer_start(st->loop, &st->linger);
    }
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    if (!st->batch && hsc_ring_len(&st->q))
        start_batch(st);
    (void)loop;
    (void)revents;
}

/* Swaps the producer for a new one (nothing is outstanding on the old one). */
static void replace_producer(hsc_stage *st)
{
    st->replace_producer = 0;
    hsc_err err = {0};
    hsc_producer *p = hsc_producer_new(st->loop, st->cfg, &err);
    if (!p) {
        hsc_log_error("cannot create a new producer; keeping the old one", "stage", st->name,
                      "error", err.msg, NULL);
        return;
    }
    hsc_log_warn("a whole send round timed out in the producer: replacing it", "stage", st->name,
                 NULL);
    hsc_producer_free(st->producer);
    st->producer = p;
}

/* Every 10 s: a batch that has waited on one phase for over 30 s is logged, every 30 s. */
static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    hsc_stage_batch *b = st->batch;
    int64_t now = hsc_mono_us();
    (void)loop;
    (void)revents;
    if (b && b->phase == PHASE_PRODUCE && b->inflight > 0 && now - b->phase_us > 90000000 &&
        !st->replace_producer) {
        /* Past message.timeout.ms (60 s) with reports still missing: librdkafka is not
         * going to report them. Withdraw everything it holds (each comes back as a failed
         * delivery, so the round is retried) and send the round through a new producer. */
        hsc_log_error("delivery reports overdue: purging the producer and replacing it", "stage",
                      st->name, NULL);
        st->replace_producer = 1;
        rd_kafka_purge(hsc_producer_handle(st->producer), RD_KAFKA_PURGE_F_QUEUE |
                                                              RD_KAFKA_PURGE_F_INFLIGHT |
                                                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    }
    if (!b || now - b->phase_us < 30000000 || now - st->warned_us < 30000000)
        return;
    st->warned_us = now;
    char secs[24], n[24], inflight[24];
    snprintf(secs, sizeof(secs), "%lld", (long long)((now - b->phase_us) / 1000000));
    snprintf(n, sizeof(n), "%zu", b->n);
    snprintf(inflight, sizeof(inflight), "%d", b->inflight);
    hsc_log_warn("batch waiting", "stage", st->name, "phase",
                 b->phase == PHASE_PROCESS ? "process (its backend calls)"
                                           : "produce (delivery reports)",
                 "seconds", secs, "messages", n, "deliveries_awaited",
                 b->phase == PHASE_PROCESS ? "0" : inflight, NULL);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    hsc_stage_batch *b = st->batch;
    if (st->replace_producer && hsc_producer_outstanding(st->producer) == 0)
        replace_producer(st);
    if (!b) {
        maybe_start_batch(st);
        return;
    }
    if (b->phase == PHASE_PROCESS)
        run_process(b);
    else
        stage_send_outputs(b);
    (void)loop;
    (void)revents;
}

static void finish_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    if (st->batch && st->batch->phase == PHASE_PRODUCE && st->batch->inflight == 0 &&
        !st->batch->failed)
        stage_finish_batch(st->batch);
    (void)loop;
    (void)revents;
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    if (st->batch && st->batch->phase == PHASE_PROCESS)
        run_process(st->batch);
    (void)loop;
    (void)revents;
}

/* ---------------- stopping ---------------- */

static void stop_timers(hsc_stage *st)
{
    ev_timer_stop(st->loop, &st->linger);
    ev_timer_stop(st->loop, &st->retry);
    ev_timer_stop(st->loop, &st->kick);
    ev_timer_stop(st->loop, &st->finish);
    ev_timer_stop(st->loop, &st->shutdown);
    ev_timer_stop(st->loop, &st->watchdog);
}

static void finalize(hsc_stage *st)
{
    if (st->finished)
        return;
    st->finished = 1;
    stop_timers(st);
    hsc_consumer_close(st->consumer); /* commits stored offsets, leaves the group */
    hsc_producer_flush(st->producer, 10000);
    const struct hsc_log_count counts[] = {
        {"consumed", st->stats.consumed}, {"produced", st->stats.produced}, {"dlq", st->stats.dlq}};
    hsc_log_counts("stopped", "stage", st->name, counts, 3);
    ev_break(st->loop, EVBREAK_ALL);
}

static void maybe_finish_stop(hsc_stage *st)
{
    if (st->stopping && !st->batch && hsc_ring_len(&st->q) == 0)
        finalize(st);
}

static void shutdown_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_stage *st = w->data;
    char n[32];
    snprintf(n, sizeof(n), "%zu", hsc_ring_len(&st->q) + (st->batch ? st->batch->n : 0));
    hsc_log_warn("shutdown timeout: unfinished messages will be redelivered", "stage", st->name,
                 "messages", n, NULL);
    finalize(st);
    (void)loop;
    (void)revents;
}

void hsc_stage_stop(hsc_stage *st)
{
    if (st->stopping)
        return;
    st->stopping = 1;
    hsc_log_info("stopping: finishing buffered work", "stage", st->name, NULL);
    stage_set_reason(st, PAUSE_STOPPING, 1);
    if (st->s.shutdown_timeout_ms > 0) {
        ev_timer_set(&st->shutdown, st->s.shutdown_timeout_ms / 1000.0, 0);
        ev_timer_start(st->loop, &st->shutdown);
    }
    maybe_start_batch(st);
}

void hsc_stage_stop_now(hsc_stage *st)
{
    finalize(st);
}

/* ---------------- construction ---------------- */

hsc_stage *hsc_stage_new(struct ev_loop *loop, const hsc_config *cfg,
                         const struct hsc_stage_settings *s, const struct hsc_stage_ops *ops,
                         void *ctx, hsc_err *err)
{
    hsc_stage *st = calloc(1, sizeof(*st));
    if (!st) {
        hsc_err_set(err, HSC_ENOMEM, "stage: out of memory");
        return NULL;
    }
    st->loop = loop;
    st->s = *s;
    st->ops = *ops;
    st->ctx = ctx;
    st->name = strdup(s->name);
    st->dlq_topic = strdup(s->dlq_topic);
    /* One batch waiting behind the one in flight: each message held here is decoded
     * and pins its fetch buffer, and librdkafka's own read-ahead (refilled as it is
     * drained, kafka_consumer.c) is the rest of the buffer. Two batches waiting cost
     * hsc-ingest a few MB more at its peak (docs/performance.md, issue 17). */
    st->soft_cap = s->batch_max;
    hsc_ring_init(&st->q, sizeof(hsc_stage_msg *), 1024);
    hsc_backoff_init(&st->backoff, s->backoff_initial_ms, s->backoff_max_ms,
                     (uint64_t)hsc_mono_us() ^ (uint64_t)getpid());
    ev_timer_init(&st->linger, linger_cb, 0, 0);
    ev_timer_init(&st->retry, retry_cb, 0, 0);
    ev_timer_init(&st->kick, kick_cb, 0, 0);
    ev_timer_init(&st->finish, finish_cb, 0, 0);
    ev_timer_init(&st->watchdog, watchdog_cb, 10., 10.);
    st->watchdog.data = st;
    st->cfg = cfg;
    st->finish.data = st;
    ev_timer_init(&st->shutdown, shutdown_cb, 0, 0);
    st->linger.data = st->retry.data = st->kick.data = st->shutdown.data = st;
    ev_timer_start(loop, &st->watchdog);
    st->producer = hsc_producer_new(loop, cfg, err);
    if (!st->producer)
        goto fail;
    struct hsc_consumer_handlers h = {.on_message = on_message,
                                      .on_assign = on_assign,
                                      .on_revoke = on_revoke,
                                      .can_accept = can_accept};
    st->consumer = hsc_consumer_new(loop, cfg, s->group, s->topics, s->ntopics, &h, st, err);
    if (!st->consumer)
        goto fail;
    snprintf(st->label, sizeof(st->label), "stage=\"%s\"", s->name);
    st->metrics = hsc_metrics_new();
    hsc_metrics_set_backend_registry(st->metrics); /* one stage per process */
    /* a port asked for and not had is a configuration error */
    if (hsc_worker_metrics(loop, cfg, st->metrics, stage_ready, stage_refresh, st, 1, &st->httpd,
                           err))
        goto fail;
    return st;
fail:
    hsc_stage_free(st);
    return NULL;
}

hsc_producer *hsc_stage_producer(hsc_stage *st)
{
    return st->producer;
}

void hsc_stage_get_stats(const hsc_stage *st, struct hsc_stage_stats *out)
{
    *out = st->stats;
}

void hsc_stage_free(hsc_stage *st)
{
    if (!st)
        return;
    st->finished = 1; /* late callbacks (deliveries, cancelled writes) now do nothing */
    stop_timers(st);
    hsc_httpd_free(st->httpd);
    hsc_metrics_set_backend_registry(NULL);
    hsc_metrics_free(st->metrics);
    for (size_t i = 0; i < st->ntc; i++)
        free(st->tc[i].topic);
    free(st->tc);
    hsc_producer_free(st->producer);
    if (st->batch)
        batch_free(st, st->batch);
    /* Its close may still call on_revoke, which touches the queue. */
    hsc_consumer_free(st->consumer);
    while (hsc_ring_len(&st->q))
        msg_free(st, q_pop(st));
    hsc_ring_destroy(&st->q);
    free(st->name);
    free(st->dlq_topic);
    free(st);
}

static void stop_cb(void *arg)
{
    hsc_stage_stop(arg);
}

static void stop_now_cb(void *arg)
{
    hsc_stage_stop_now(arg);
}

int hsc_stage_run(struct ev_loop *loop, hsc_stage *st)
{
    hsc_log_info("started", "stage", st->name, "group", st->s.group, NULL);
    struct hsc_worker_stop s = {.stop = stop_cb, .stop_now = stop_now_cb, .arg = st};
    return hsc_worker_run(loop, &s);
}
