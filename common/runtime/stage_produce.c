/*
 * The produce phase of a stage batch: the records process() emitted and the
 * DLQ copies of invalid messages are sent, and resent after a backoff until
 * Kafka acknowledged every one; then the batch's offsets may be stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/message.h"
#include "log.h"
#include "stage_internal.h"
#include "util.h"

void stage_rollback_outputs(hsc_stage_batch *b, size_t mark)
{
    for (size_t i = mark; i < b->nout; i++) {
        free(b->out[i].topic);
        free(b->out[i].key);
        free(b->out[i].value);
        if (b->out[i].hdrs)
            rd_kafka_headers_destroy(b->out[i].hdrs);
    }
    b->nout = mark;
}

int hsc_stage_emit(hsc_stage_batch *b, const char *topic, const void *key, size_t klen,
                   const void *value, size_t vlen, rd_kafka_headers_t *hdrs)
{
    struct output *grown = hsc_grow(b->out, b->nout, &b->capout, sizeof(*grown), 64);
    if (!grown)
        return HSC_ENOMEM;
    b->out = grown;
    struct output *o = &b->out[b->nout];
    memset(o, 0, sizeof(*o));
    o->topic = strdup(topic);
    o->key = hsc_strndup(key, klen);
    o->value = malloc(vlen ? vlen : 1);
    if (!o->topic || !o->key || !o->value) {
        free(o->topic);
        free(o->key);
        free(o->value);
        return HSC_ENOMEM;
    }
    memcpy(o->value, value, vlen);
    o->klen = klen;
    o->vlen = vlen;
    o->hdrs = hdrs;
    o->b = b;
    b->nout++;
    return HSC_OK;
}

static void on_delivery(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct output *o = arg;
    hsc_stage_batch *b = o->b;
    hsc_stage *st = b->st;
    b->inflight--;
    if (st->finished)
        return; /* shutting down: the batch is freed with the stage */
    if (code == HSC_OK) {
        o->acked = 1;
        if (o->dlq_src) {
            st->stats.dlq++;
            stage_topic_counts(st, rd_kafka_topic_name(o->dlq_src->rkm->rkt))->dlq++;
        } else {
            st->stats.produced++;
            stage_topic_counts(st, o->topic)->produced++;
        }
    } else {
        b->failed++;
        if (rkm && rkm->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
            b->timeouts++;
        hsc_log_warn("produce failed; will retry", "stage", st->name, "topic", o->topic, "error",
                     errstr ? errstr : "", NULL);
    }
    if (b->inflight > 0)
        return;
    if (b->failed) {
        if (b->timeouts == b->failed) {
            /* Nothing of the round reached a broker within message.timeout.ms: the producer
             * may be wedged (seen with librdkafka 2.0 after its PID request met a broker
             * loading its coordinator), so the next round gets a new one. */
            st->replace_producer = 1;
        }
        b->failed = 0;
        int64_t ms = stage_backoff(st);
        st->stats.retries++;
        ev_timer_set(&st->retry, (double)ms / 1000.0, 0);
        ev_timer_start(st->loop, &st->retry);
        return;
    }
    stage_finish_batch(b);
    (void)rkm;
}

void stage_send_outputs(hsc_stage_batch *b)
{
    hsc_stage *st = b->st;
    b->phase_us = hsc_mono_us();
    b->timeouts = 0;
    b->inflight = 1; /* guard: no completion until every send was attempted */
    for (size_t i = 0; i < b->nout; i++) {
        struct output *o = &b->out[i];
        if (o->acked)
            continue;
        hsc_err err = {0};
        int rc;
        b->inflight++;
        if (o->dlq_src) {
            rc = hsc_dlq_send(st->producer, st->dlq_topic, st->name, o->dlq_src->rkm,
                              &o->dlq_src->err, on_delivery, o, &err);
        } else {
            /* Headers are handed to librdkafka on success; keep a copy for resends. */
            rd_kafka_headers_t *h = o->hdrs ? rd_kafka_headers_copy(o->hdrs) : NULL;
            rc = hsc_producer_send(st->producer, o->topic, RD_KAFKA_PARTITION_UA, o->key, o->klen,
                                   o->value, o->vlen, h, on_delivery, o, &err);
            if (rc && h)
                rd_kafka_headers_destroy(h);
        }
        if (rc) {
            b->inflight--;
            b->failed++;
            hsc_log_warn("produce failed; will retry", "stage", st->name, "error", err.msg, NULL);
        }
    }
    /* Release the guard through the same path a delivery report takes. */
    b->inflight--;
    if (b->inflight == 0) {
        if (b->failed) {
            b->failed = 0;
            st->stats.retries++;
            ev_timer_set(&st->retry, (double)stage_backoff(st) / 1000.0, 0);
            ev_timer_start(st->loop, &st->retry);
        } else {
            /* Nothing was sent, so no delivery report will end the batch: end it
             * from the loop, never from inside the call chain that started it. */
            ev_timer_set(&st->finish, 0, 0);
            ev_timer_start(st->loop, &st->finish);
        }
    }
}

void stage_start_produce(hsc_stage_batch *b)
{
    hsc_stage *st = b->st;
    b->phase = PHASE_PRODUCE;
    stage_set_reason(st, PAUSE_BACKOFF, 0);
    for (size_t i = 0; i < b->n; i++) {
        hsc_stage_msg *m = b->msgs[i];
        if (m->decoded)
            continue;
        char off[32], part[16];
        snprintf(off, sizeof(off), "%lld", (long long)m->rkm->offset);
        snprintf(part, sizeof(part), "%d", (int)m->rkm->partition);
        /* the key is the content id (or user id): what an operator searches for */
        char key[HSC_MAX_ID_LEN + 1] = "";
        if (m->rkm->key && m->rkm->key_len <= HSC_MAX_ID_LEN &&
            hsc_utf8_valid(m->rkm->key, m->rkm->key_len))
            memcpy(key, m->rkm->key, m->rkm->key_len), key[m->rkm->key_len] = '\0';
        hsc_log_warn("message sent to DLQ", "stage", st->name, "topic",
                     rd_kafka_topic_name(m->rkm->rkt), "partition", part, "offset", off, "key", key,
                     "error", m->err.msg, NULL);
        stage_topic_counts(st, rd_kafka_topic_name(m->rkm->rkt))->failed++;
        if (hsc_stage_emit(b, st->dlq_topic, "", 0, "", 0, NULL) == HSC_OK)
            b->out[b->nout - 1].dlq_src = m;
    }
    stage_send_outputs(b);
}
