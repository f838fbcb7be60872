/*
 * The producer on a libev loop: sends, delivery reports served from the
 * loop, the local queue of messages librdkafka had no room for yet (sent
 * from the loop as room is made), and per-message deadlines.
 */
#include "kafka.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "util.h"

struct send_ctx;

/* A message librdkafka had no room for yet (or one purged to be sent again). */
struct pending {
    struct pending *next;
    char *topic;
    int32_t partition;
    void *key, *value;
    size_t klen, vlen;
    rd_kafka_headers_t *hdrs;
    struct send_ctx *s;
};

struct hsc_producer {
    struct ev_loop *loop;
    rd_kafka_t *rk;
    struct kafka_wake wake; /* delivery reports wake the loop */
    int outstanding;
    /* Messages waiting for room in librdkafka's queue, oldest first; sent from the loop. */
    struct pending *head, *tail;
    ev_timer retry;
    /* Messages with a deadline that librdkafka holds, for the purge at the deadline. */
    struct send_ctx *timed;
    ev_timer due;
};

struct send_ctx {
    hsc_delivery_fn cb;
    void *arg;
    int64_t deadline_ms;          /* 0: none */
    int expired;                  /* its deadline passed before it was sent */
    struct send_ctx *prev, *next; /* in p->timed while librdkafka holds it */
    int linked;
};

static void timed_unlink(hsc_producer *p, struct send_ctx *s)
{
    if (!s->linked)
        return;
    HSC_DLIST_UNLINK(p->timed, s);
    s->linked = 0;
}

/* Arms the deadline timer for the earliest deadline librdkafka still holds. */
static void arm_due(hsc_producer *p)
{
    if (!p->loop)
        return;
    int64_t first = 0;
    for (struct send_ctx *s = p->timed; s; s = s->next)
        if (!s->expired && (!first || s->deadline_ms < first))
            first = s->deadline_ms;
    ev_timer_stop(p->loop, &p->due);
    if (!first)
        return;
    int64_t ms = first - hsc_now_ms();
    ev_timer_set(&p->due, ms > 0 ? (double)ms / 1000.0 : 0., 0.);
    ev_timer_start(p->loop, &p->due);
}

static void timed_link(hsc_producer *p, struct send_ctx *s)
{
    if (!s->deadline_ms || s->linked)
        return;
    HSC_DLIST_PUSH(p->timed, s);
    s->linked = 1;
    arm_due(p);
}

static rd_kafka_resp_err_t produce_now(hsc_producer *p, const char *topic, int32_t partition,
                                       const void *key, size_t klen, const void *value, size_t vlen,
                                       rd_kafka_headers_t *hdrs, struct send_ctx *s)
{
    if (hdrs)
        return rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                 RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
    return rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(s),
                             RD_KAFKA_V_END);
}

static void pending_free(struct pending *m)
{
    free(m->topic);
    free(m->key);
    free(m->value);
    if (m->hdrs)
        rd_kafka_headers_destroy(m->hdrs);
    free(m);
}

/* Keeps a copy of a message for the loop to send later; hdrs is taken. */
static int pending_push(hsc_producer *p, const char *topic, int32_t partition, const void *key,
                        size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                        struct send_ctx *s)
{
    struct pending *m = calloc(1, sizeof(*m));
    if (!m)
        return HSC_ENOMEM;
    m->topic = strdup(topic);
    m->key = klen ? malloc(klen) : NULL;
    m->value = vlen ? malloc(vlen) : NULL;
    if (!m->topic || (klen && !m->key) || (vlen && !m->value)) {
        m->hdrs = NULL;
        pending_free(m);
        return HSC_ENOMEM;
    }
    if (klen)
        memcpy(m->key, key, klen);
    if (vlen)
        memcpy(m->value, value, vlen);
    m->klen = klen;
    m->vlen = vlen;
    m->partition = partition;
    m->hdrs = hdrs;
    m->s = s;
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    if (p->loop && !ev_is_active(&p->retry)) {
        ev_timer_set(&p->retry, 0.005, 0.);
        ev_timer_start(p->loop, &p->retry);
    }
    return HSC_OK;
}

/* Reports a message that was never handed to the broker, from the loop. */
static void report_unsent(hsc_producer *p, struct send_ctx *s, int code, const char *why)
{
    p->outstanding--;
    if (s->cb)
        s->cb(s->arg, code, why, NULL);
    free(s);
}

/*
 * Hands waiting messages to librdkafka, oldest first, until it has no room;
 * one whose deadline has passed is reported as timed out instead.
 */
static void send_pending(hsc_producer *p)
{
    while (p->head) {
        struct pending *m = p->head;
        if (m->s->deadline_ms && hsc_now_ms() >= m->s->deadline_ms) {
            p->head = m->next;
            struct send_ctx *s = m->s;
            pending_free(m);
            report_unsent(p, s, HSC_ETIMEDOUT, "its deadline passed before it could be sent");
            continue;
        }
        rd_kafka_resp_err_t e = produce_now(p, m->topic, m->partition, m->key, m->klen, m->value,
                                            m->vlen, m->hdrs, m->s);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        p->head = m->next;
        struct send_ctx *s = m->s;
        if (!e)
            m->hdrs = NULL; /* librdkafka owns them now */
        pending_free(m);
        if (e)
            report_unsent(p, s,
                          e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? HSC_EINVAL : HSC_ETRANSIENT,
                          rd_kafka_err2str(e));
        else
            timed_link(p, s);
    }
    if (!p->head)
        p->tail = NULL;
    else if (p->loop && !ev_is_active(&p->retry)) {
        ev_timer_set(&p->retry, 0.005, 0.);
        ev_timer_start(p->loop, &p->retry);
    }
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_producer *p = w->data;
    rd_kafka_poll(p->rk, 0); /* delivery reports make room */
    send_pending(p);
    (void)loop;
    (void)revents;
}

/*
 * A message still queued at its deadline could only arrive late: librdkafka
 * has no per-message timeout, so every queued (not yet sent) message is
 * purged; the expired ones are reported timed out, the others queued again.
 */
static void due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_producer *p = w->data;
    int64_t now = hsc_now_ms();
    int any = 0;
    for (struct send_ctx *s = p->timed; s; s = s->next)
        if (!s->expired && s->deadline_ms <= now)
            s->expired = any = 1;
    if (any)
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
    arm_due(p);
    (void)loop;
    (void)revents;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct send_ctx *s = rkm->_private;
    hsc_producer *p = opaque;
    if (!s) {
        p->outstanding--;
        return;
    }
    timed_unlink(p, s);
    if (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE) {
        /* never sent, so sending it again cannot duplicate it */
        if (s->expired) {
            report_unsent(p, s, HSC_ETIMEDOUT, "its deadline passed before it could be sent");
            return;
        }
        rd_kafka_headers_t *h = NULL, *copy = NULL;
        if (rd_kafka_message_headers(rkm, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
            copy = rd_kafka_headers_copy(h);
        if (!pending_push(p, rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->key, rkm->key_len,
                          rkm->payload, rkm->len, copy, s))
            return;
        if (copy)
            rd_kafka_headers_destroy(copy);
    }
    p->outstanding--;
    if (s->cb) {
        int code = HSC_OK;
        if (rkm->err) {
            /* A message the broker rejects for its content will never succeed. */
            code = (rkm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
                    rkm->err == RD_KAFKA_RESP_ERR_INVALID_MSG ||
                    rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
                       ? HSC_EINVAL
                       : HSC_ETRANSIENT;
        }
        s->cb(s->arg, code, rkm->err ? rd_kafka_err2str(rkm->err) : NULL, rkm);
    }
    free(s);
    (void)rk;
}

static void producer_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_producer *p = w->data;
    kafka_wake_drain(&p->wake);
    rd_kafka_poll(p->rk, 0);
    if (p->head)
        send_pending(p);
    (void)loop;
    (void)revents;
}

static hsc_producer *producer_create(struct ev_loop *loop, const hsc_config *cfg,
                                     const char *const *defaults, hsc_err *err);

hsc_producer *hsc_producer_new(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err)
{
    /* Idempotence keeps per-partition order and removes duplicates on retry. */
    /* A bounded delivery time: a batch that cannot be delivered fails and is retried
     * (logged) instead of waiting librdkafka's default five minutes. */
    const char *const d[] = {"enable.idempotence", "true",  "linger.ms", "5",
                             "message.timeout.ms", "60000", NULL};
    return producer_create(loop, cfg, d, err);
}

hsc_producer *hsc_producer_new_interactive(struct ev_loop *loop, const hsc_config *cfg,
                                           hsc_err *err)
{
    /* Nagle held a small request behind the previous one's unacknowledged bytes: with
     * it off, hsc-query's vector_only p99 over Kafka at 200/s was 38 ms instead of 113
     * (docs/performance.md, "Kafka settings"). */
    const char *const d[] = {"enable.idempotence",   "true", "linger.ms", "0",
                             "socket.nagle.disable", "true", NULL};
    return producer_create(loop, cfg, d, err);
}

hsc_producer *hsc_producer_new_replies(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err)
{
    /* At most once: no retry (a retried reply could arrive twice, or late), and no
     * idempotence, which would forbid both that and purging queued messages. */
    const char *const d[] = {"enable.idempotence",
                             "false",
                             "linger.ms",
                             "0",
                             "message.send.max.retries",
                             "0",
                             "request.timeout.ms",
                             "5000",
                             "socket.nagle.disable",
                             "true",
                             NULL};
    return producer_create(loop, cfg, d, err);
}

static hsc_producer *producer_create(struct ev_loop *loop, const hsc_config *cfg,
                                     const char *const *defaults, hsc_err *err)
{
    hsc_producer *p = calloc(1, sizeof(*p));
    if (!p) {
        hsc_err_set(err, HSC_ENOMEM, "producer: out of memory");
        return NULL;
    }
    kafka_wake_clear(&p->wake);
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "producer", defaults, err);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);
    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        hsc_err_set(err, HSC_ECONFIG, "kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    if (kafka_wake_init(&p->wake, loop, rd_kafka_queue_get_main(p->rk), producer_io_cb, p, err))
        goto fail;
    p->loop = loop;
    ev_timer_init(&p->retry, retry_cb, 0.005, 0.);
    p->retry.data = p;
    ev_timer_init(&p->due, due_cb, 0., 0.);
    p->due.data = p;
    /* The pipe is written only when the queue turns non-empty: events librdkafka queued
     * before it was enabled must be served once from the loop, or none ever wakes it. */
    ev_timer_set(&p->retry, 0., 0.);
    ev_timer_start(loop, &p->retry);
    return p;
fail:
    hsc_producer_free(p);
    return NULL;
}

int hsc_producer_send_by(hsc_producer *p, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                         int64_t deadline_ms, hsc_delivery_fn cb, void *arg, hsc_err *err)
{
    if (deadline_ms && hsc_now_ms() >= deadline_ms)
        return hsc_err_set(err, HSC_ETIMEDOUT, "produce to %s: the deadline has passed", topic);
    struct send_ctx *s = calloc(1, sizeof(*s));
    if (!s)
        return hsc_err_set(err, HSC_ENOMEM, "produce: out of memory");
    s->cb = cb;
    s->arg = arg;
    s->deadline_ms = deadline_ms;
    /* Behind messages already waiting, to keep their order. */
    rd_kafka_resp_err_t e = p->head
                                ? RD_KAFKA_RESP_ERR__QUEUE_FULL
                                : produce_now(p, topic, partition, key, klen, value, vlen, hdrs, s);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* No room in librdkafka's queue: kept here and sent from the loop as
         * delivery reports make room (never served from inside this call). */
        if (pending_push(p, topic, partition, key, klen, value, vlen, hdrs, s)) {
            free(s);
            return hsc_err_set(err, HSC_ENOMEM, "produce to %s: out of memory", topic);
        }
        p->outstanding++;
        return HSC_OK;
    }
    if (e) {
        free(s);
        return hsc_err_set(err, e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? HSC_EINVAL : HSC_EIO,
                           "produce to %s: %s", topic, rd_kafka_err2str(e));
    }
    p->outstanding++;
    timed_link(p, s);
    return HSC_OK;
}

int hsc_producer_send(hsc_producer *p, const char *topic, int32_t partition, const void *key,
                      size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                      hsc_delivery_fn cb, void *arg, hsc_err *err)
{
    return hsc_producer_send_by(p, topic, partition, key, klen, value, vlen, hdrs, 0, cb, arg, err);
}

int hsc_producer_flush(hsc_producer *p, int timeout_ms)
{
    int64_t end = hsc_now_ms() + timeout_ms;
    for (;;) {
        send_pending(p);
        int64_t left = end - hsc_now_ms();
        if (!p->head) {
            rd_kafka_flush(p->rk, left > 0 ? (int)left : 0);
            break;
        }
        if (left <= 0)
            break;
        rd_kafka_flush(p->rk, left < 10 ? (int)left : 10);
    }
    rd_kafka_poll(p->rk, 0);
    int n = rd_kafka_outq_len(p->rk);
    for (struct pending *m = p->head; m; m = m->next)
        n++;
    return n;
}

int hsc_producer_outstanding(const hsc_producer *p)
{
    return p->outstanding;
}

rd_kafka_t *hsc_producer_handle(hsc_producer *p)
{
    return p->rk;
}

void hsc_producer_free(hsc_producer *p)
{
    if (!p)
        return;
    if (p->loop) {
        ev_timer_stop(p->loop, &p->retry);
        ev_timer_stop(p->loop, &p->due);
    }
    if (p->rk) {
        hsc_producer_flush(p, 10000);
        while (p->head) {
            /* Never handed to librdkafka, and not reported: like a message librdkafka still
             * holds at destroy, its sender is being torn down with the producer. */
            struct pending *m = p->head;
            p->head = m->next;
            free(m->s);
            pending_free(m);
        }
        p->tail = NULL;
        kafka_handle_destroy(p->rk, &p->wake);
    }
    free(p);
}
