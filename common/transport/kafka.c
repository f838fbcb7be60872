/*
 * librdkafka handles bound to a libev loop, and the DLQ producer helper.
 *
 * Why a pipe per handle: librdkafka can write a byte to an fd when a queue
 * turns non-empty. The loop watches the read end and drains the queue until
 * it is empty; a partial drain must be finished by the owner (the byte is
 * only written on the empty -> non-empty edge), hence hsc_consumer_poll().
 */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define DRAIN_BUDGET 2000 /* messages per loop turn, so timers still run */
#define DLQ_MAX_PAYLOAD (512 * 1024)

struct set_ctx {
    rd_kafka_conf_t *conf;
};

static int set_prop(void *arg, const char *name, const char *value, hsc_err *err)
{
    struct set_ctx *c = arg;
    char errstr[512];
    if (rd_kafka_conf_set(c->conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return hsc_err_set(err, HSC_ECONFIG, "%s", errstr);
    return HSC_OK;
}

/*
 * A property from the user's [rdkafka*] sections: refused if it loads code or
 * runs a command (config.c refuses it at load time; this holds for any other
 * way into the pass-through table).
 */
static int set_user_prop(void *arg, const char *name, const char *value, hsc_err *err)
{
    const char *why = hsc_config_rdkafka_refused(name);
    if (why)
        return hsc_err_set(err, HSC_ECONFIG, "refused: this librdkafka property %s", why);
    return set_prop(arg, name, value, err);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum hsc_log_level l = level <= 3   ? HSC_LOG_ERROR
                           : level <= 4 ? HSC_LOG_WARN
                           : level <= 6 ? HSC_LOG_INFO
                                        : HSC_LOG_DEBUG;
    hsc_log(l, "librdkafka", "facility", fac, "detail", buf, "client", rd_kafka_name(rk), NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    /* Most errors are transient and librdkafka retries them itself; fatal ones
     * (e.g. idempotence state lost) mean the handle is unusable. */
    int fatal = (err == RD_KAFKA_RESP_ERR__FATAL);
    hsc_log(fatal ? HSC_LOG_ERROR : HSC_LOG_WARN, "kafka error", "error",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason, NULL);
    (void)rk;
    (void)opaque;
}

rd_kafka_conf_t *hsc_kafka_conf(const hsc_config *cfg, const char *role,
                                const char *const *defaults, hsc_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct set_ctx c = {conf};
    char section[32];
    snprintf(section, sizeof(section), "rdkafka.%s", role);
    if (set_prop(&c, "bootstrap.servers", hsc_config_str(cfg, "kafka.brokers"), err) ||
        set_prop(&c, "client.id", hsc_config_str(cfg, "kafka.client_id"), err)) {
        hsc_err_prefix(err, "kafka.brokers/client_id: ");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* hsc's defaults first, so that the user's [rdkafka] settings override them. */
    for (size_t i = 0; defaults && defaults[i]; i += 2) {
        if (set_prop(&c, defaults[i], defaults[i + 1], err)) {
            hsc_err_prefix(err, "%s: ", defaults[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (hsc_config_each_passthrough(cfg, "rdkafka", set_user_prop, &c, err) ||
        hsc_config_each_passthrough(cfg, section, set_user_prop, &c, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return conf;
}

static int make_pipe(int fds[2], hsc_err *err)
{
    if (pipe(fds) != 0)
        return hsc_err_set(err, HSC_EIO, "pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return HSC_OK;
}

static void drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/* ---------------- producer ---------------- */

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
    rd_kafka_queue_t *q;
    int fds[2];
    ev_io io;
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
    int64_t deadline_ms;            /* 0: none */
    int expired;                    /* its deadline passed before it was sent */
    struct send_ctx *tprev, *tnext; /* in p->timed while librdkafka holds it */
    int linked;
};

static void timed_unlink(hsc_producer *p, struct send_ctx *s)
{
    if (!s->linked)
        return;
    if (s->tprev)
        s->tprev->tnext = s->tnext;
    else
        p->timed = s->tnext;
    if (s->tnext)
        s->tnext->tprev = s->tprev;
    s->tprev = s->tnext = NULL;
    s->linked = 0;
}

/* Arms the deadline timer for the earliest deadline librdkafka still holds. */
static void arm_due(hsc_producer *p)
{
    if (!p->loop)
        return;
    int64_t first = 0;
    for (struct send_ctx *s = p->timed; s; s = s->tnext)
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
    s->tprev = NULL;
    s->tnext = p->timed;
    if (p->timed)
        p->timed->tprev = s;
    p->timed = s;
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
    for (struct send_ctx *s = p->timed; s; s = s->tnext)
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
    drain_pipe(p->fds[0]);
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
    const char *const d[] = {"enable.idempotence", "true", "linger.ms", "0", NULL};
    return producer_create(loop, cfg, d, err);
}

hsc_producer *hsc_producer_new_replies(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err)
{
    /* At most once: no retry (a retried reply could arrive twice, or late), and no
     * idempotence, which would forbid both that and purging queued messages. */
    const char *const d[] = {
        "enable.idempotence", "false", "linger.ms", "0", "message.send.max.retries", "0",
        "request.timeout.ms", "5000",  NULL};
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
    p->fds[0] = p->fds[1] = -1;
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
    if (make_pipe(p->fds, err))
        goto fail;
    p->loop = loop;
    p->q = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->q, p->fds[1], "1", 1);
    ev_io_init(&p->io, producer_io_cb, p->fds[0], EV_READ);
    p->io.data = p;
    ev_io_start(loop, &p->io);
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
        ev_io_stop(p->loop, &p->io);
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
        if (p->q) {
            rd_kafka_queue_io_event_enable(p->q, -1, NULL, 0);
            rd_kafka_queue_destroy(p->q);
        }
        rd_kafka_destroy(p->rk);
    }
    if (p->fds[0] >= 0)
        close(p->fds[0]);
    if (p->fds[1] >= 0)
        close(p->fds[1]);
    free(p);
}

/* ---------------- consumer ---------------- */

struct hsc_consumer {
    struct ev_loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int fds[2];
    ev_io io;
    ev_timer tick;
    struct hsc_consumer_handlers h;
    void *arg;
    int paused;
    int closed;
    int assigned;
    int draining;        /* inside hsc_consumer_poll: a nested call only returns */
    int solo;            /* one assigned partition, no group */
    struct hsc_lag *lag; /* the last statistics' consumer lag per assigned partition */
    size_t nlag;
};

static void drain(hsc_consumer *c);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    hsc_consumer *c = opaque;
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    char n[16];
    snprintf(n, sizeof(n), "%d", parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_error_t *e = NULL;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (e) {
            hsc_log_error("assign failed", "error", rd_kafka_error_string(e), NULL);
            rd_kafka_error_destroy(e);
        }
        c->assigned += parts->cnt;
        if (c->paused)
            rd_kafka_pause_partitions(rk, parts);
        hsc_log_info("partitions assigned", "count", n, NULL);
        if (c->h.on_assign)
            c->h.on_assign(c->arg, parts);
    } else {
        hsc_log_info("partitions revoked", "count", n, "lost",
                     rd_kafka_assignment_lost(rk) ? "true" : "false", NULL);
        /* their lag is another member's to report from now on */
        size_t k = 0;
        for (size_t i = 0; i < c->nlag; i++)
            if (!rd_kafka_topic_partition_list_find(parts, c->lag[i].topic, c->lag[i].partition))
                c->lag[k++] = c->lag[i];
        c->nlag = k;
        if (c->h.on_revoke)
            c->h.on_revoke(c->arg, parts);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
            c->assigned -= parts->cnt;
        } else {
            rd_kafka_assign(rk, NULL);
            c->assigned = 0;
        }
    }
}

void hsc_consumer_poll(hsc_consumer *c)
{
    /* A handler that makes room (ends a job at once) calls back in here; the
     * loop below sees that room on its next turn, so nesting would only grow
     * the stack, one frame per message, until a backlog overflows it. */
    if (c->closed || c->draining)
        return;
    c->draining = 1;
    drain(c);
    c->draining = 0;
}

static void drain(hsc_consumer *c)
{
    for (int i = 0; i < DRAIN_BUDGET && !c->closed; i++) {
        if (c->h.can_accept && !c->h.can_accept(c->arg))
            return;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rkm)
            return;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (c->h.on_message)
            c->h.on_message(c->arg, rkm);
        else
            rd_kafka_message_destroy(rkm);
    }
    if (c->closed)
        return;
    /* Budget spent with messages left: the pipe will not fire again, so come
     * back on the next tick (at most 1 ms away). */
    ev_timer_stop(c->loop, &c->tick);
    ev_timer_set(&c->tick, 0.001, 0.1);
    ev_timer_start(c->loop, &c->tick);
}

static void consumer_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_consumer *c = w->data;
    drain_pipe(c->fds[0]);
    hsc_consumer_poll(c);
    (void)loop;
    (void)revents;
}

static void consumer_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* Safety net: also serves rebalances while the owner is not accepting. */
    hsc_consumer *c = w->data;
    if (c->h.can_accept && !c->h.can_accept(c->arg)) {
        if (c->paused && !c->draining) {
            /* Paused partitions deliver nothing, but a rebalance still must be served. */
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
            c->draining = 1;
            if (rkm && c->h.on_message)
                c->h.on_message(c->arg, rkm);
            else if (rkm)
                rd_kafka_message_destroy(rkm);
            c->draining = 0;
        }
        return;
    }
    hsc_consumer_poll(c);
    (void)loop;
    (void)revents;
}

static hsc_consumer *consumer_create(struct ev_loop *loop, const hsc_config *cfg, const char *group,
                                     const char *const *topics, size_t ntopics, const char *topic,
                                     int32_t partition, const struct hsc_consumer_handlers *h,
                                     void *arg, hsc_err *err);

/*
 * librdkafka's statistics (every statistics.interval.ms) carry each
 * partition's consumer_lag; keep the assigned ones for the metrics endpoint.
 */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    hsc_consumer *c = opaque;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *topics = json_object_get(root, "topics");
    const char *tname;
    json_t *t;
    struct hsc_lag *v = NULL;
    size_t n = 0;
    json_object_foreach (topics, tname, t) {
        const char *pname;
        json_t *p;
        json_object_foreach (json_object_get(t, "partitions"), pname, p) {
            json_int_t id = json_integer_value(json_object_get(p, "partition"));
            json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag"));
            const char *fs = json_string_value(json_object_get(p, "fetch_state"));
            if (id < 0 || lag < 0 || !fs || !strcmp(fs, "none"))
                continue; /* the internal partition, unknown lag, or not ours */
            struct hsc_lag *nv = realloc(v, (n + 1) * sizeof(*nv));
            if (!nv)
                break;
            v = nv;
            snprintf(v[n].topic, sizeof(v[n].topic), "%s", tname);
            v[n].partition = (int32_t)id;
            v[n].lag = (int64_t)lag;
            n++;
        }
    }
    json_decref(root);
    free(c->lag);
    c->lag = v;
    c->nlag = n;
    (void)rk;
    return 0; /* librdkafka frees json */
}

size_t hsc_consumer_lag(const hsc_consumer *c, const struct hsc_lag **out)
{
    *out = c->lag;
    return c->nlag;
}

void hsc_consumer_export_lag(const hsc_consumer *c, hsc_metrics *m, const char *labels)
{
    /* Partitions revoked since the last scrape must not keep reporting a lag. */
    hsc_metrics_drop(m, "hsc_consumer_lag", labels);
    for (size_t i = 0; i < c->nlag; i++) {
        char l[400];
        snprintf(l, sizeof(l), "%s%stopic=\"%s\",partition=\"%d\"", labels, *labels ? "," : "",
                 c->lag[i].topic, c->lag[i].partition);
        hsc_metrics_set(m, "hsc_consumer_lag", l, (double)c->lag[i].lag);
    }
}

hsc_consumer *hsc_consumer_new(struct ev_loop *loop, const hsc_config *cfg, const char *group,
                               const char *const *topics, size_t ntopics,
                               const struct hsc_consumer_handlers *h, void *arg, hsc_err *err)
{
    return consumer_create(loop, cfg, group, topics, ntopics, NULL, -1, h, arg, err);
}

hsc_consumer *hsc_consumer_new_partition(struct ev_loop *loop, const hsc_config *cfg,
                                         const char *topic, int32_t partition,
                                         const struct hsc_consumer_handlers *h, void *arg,
                                         hsc_err *err)
{
    return consumer_create(loop, cfg, NULL, NULL, 0, topic, partition, h, arg, err);
}

/* Assigns topic[partition] at its current end, so nothing produced from now on is missed. */
static int assign_at_end(hsc_consumer *c, const char *topic, int32_t partition, hsc_err *err)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, &lo, &hi, 10000);
    if (e)
        return hsc_err_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? HSC_ETRANSIENT : HSC_ECONFIG,
                           "%s[%d]: cannot read its end offset: %s", topic, partition,
                           rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = hi;
    e = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e)
        return hsc_err_set(err, HSC_ECONFIG, "assign %s[%d]: %s", topic, partition,
                           rd_kafka_err2str(e));
    c->assigned = 1;
    return HSC_OK;
}

static hsc_consumer *consumer_create(struct ev_loop *loop, const hsc_config *cfg, const char *group,
                                     const char *const *topics, size_t ntopics, const char *topic,
                                     int32_t partition, const struct hsc_consumer_handlers *h,
                                     void *arg, hsc_err *err)
{
    hsc_consumer *c = calloc(1, sizeof(*c));
    if (!c) {
        hsc_err_set(err, HSC_ENOMEM, "consumer: out of memory");
        return NULL;
    }
    c->fds[0] = c->fds[1] = -1;
    c->loop = loop;
    c->h = *h;
    c->arg = arg;
    /* Offsets are stored by the owner only after the work they guard is done;
     * auto-commit then sends what was stored. */
    const char *const defaults[] = {"group.id",
                                    group,
                                    "partition.assignment.strategy",
                                    "cooperative-sticky",
                                    "enable.auto.commit",
                                    "true",
                                    "enable.auto.offset.store",
                                    "false",
                                    "auto.offset.reset",
                                    "earliest",
                                    "auto.commit.interval.ms",
                                    "1000",
                                    "statistics.interval.ms",
                                    "5000",
                                    NULL};
    /* A reader of one partition (a reply inbox) has no group and commits nothing. */
    /* librdkafka wants a group.id even for assign(); it is never joined or committed. */
    const char *const solo[] = {"group.id",
                                "hsc-inbox",
                                "enable.auto.commit",
                                "false",
                                "enable.auto.offset.store",
                                "false",
                                "auto.offset.reset",
                                "latest",
                                "fetch.wait.max.ms",
                                "10",
                                NULL};
    c->solo = !group;
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "consumer", group ? defaults : solo, err);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    if (group)
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, c);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->rk) {
        hsc_err_set(err, HSC_ECONFIG, "kafka consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    if (c->solo) {
        if (assign_at_end(c, topic, partition, err))
            goto fail;
    } else {
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)ntopics);
        for (size_t i = 0; i < ntopics; i++)
            rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (e) {
            hsc_err_set(err, HSC_ECONFIG, "subscribe: %s", rd_kafka_err2str(e));
            goto fail;
        }
    }
    if (make_pipe(c->fds, err))
        goto fail;
    c->q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->q, c->fds[1], "1", 1);
    ev_io_init(&c->io, consumer_io_cb, c->fds[0], EV_READ);
    c->io.data = c;
    ev_io_start(loop, &c->io);
    ev_timer_init(&c->tick, consumer_tick_cb, 0.1, 0.1);
    c->tick.data = c;
    ev_timer_start(loop, &c->tick);
    return c;
fail:
    hsc_consumer_free(c);
    return NULL;
}

void hsc_consumer_set_paused(hsc_consumer *c, int paused)
{
    if (c->closed || c->paused == !!paused)
        return;
    c->paused = !!paused;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
        if (paused)
            rd_kafka_pause_partitions(c->rk, parts);
        else
            rd_kafka_resume_partitions(c->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
}

int hsc_consumer_paused(const hsc_consumer *c)
{
    return c->paused;
}

int hsc_consumer_store(hsc_consumer *c, rd_kafka_topic_partition_list_t *offsets, hsc_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, offsets);
    if (e && e != RD_KAFKA_RESP_ERR__STATE)
        return hsc_err_set(err, HSC_EIO, "store offsets: %s", rd_kafka_err2str(e));
    for (int i = 0; i < offsets->cnt; i++) {
        /* __STATE: the partition was revoked while its batch was in flight; its
         * new owner re-reads from the last commit, and our writes are idempotent. */
        if (offsets->elems[i].err && offsets->elems[i].err != RD_KAFKA_RESP_ERR__STATE)
            return hsc_err_set(err, HSC_EIO, "store offset %s[%d]: %s", offsets->elems[i].topic,
                               offsets->elems[i].partition,
                               rd_kafka_err2str(offsets->elems[i].err));
    }
    return HSC_OK;
}

int hsc_consumer_commit_sync(hsc_consumer *c, const rd_kafka_topic_partition_list_t *offsets,
                             hsc_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, offsets, 0); /* offsets NULL: what is stored */
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return hsc_err_set(err, HSC_ETRANSIENT, "commit: %s", rd_kafka_err2str(e));
    for (int i = 0; offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].err)
            return hsc_err_set(err, HSC_ETRANSIENT, "commit %s[%d]: %s", offsets->elems[i].topic,
                               offsets->elems[i].partition,
                               rd_kafka_err2str(offsets->elems[i].err));
    return HSC_OK;
}

int hsc_consumer_committed(hsc_consumer *c, rd_kafka_topic_partition_list_t *parts, int timeout_ms,
                           hsc_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_committed(c->rk, parts, timeout_ms);
    if (e)
        return hsc_err_set(err, HSC_ETRANSIENT, "committed offsets: %s", rd_kafka_err2str(e));
    return HSC_OK;
}

#define META_PREFIX "hsc1:"

size_t hsc_kafka_meta_offsets_parse(const char *meta, size_t n, int64_t base, int64_t *out,
                                    size_t cap)
{
    size_t plen = strlen(META_PREFIX);
    if (!meta || n <= plen || memcmp(meta, META_PREFIX, plen) || base < 0)
        return 0;
    size_t k = 0, i = plen;
    int64_t prev = -1;
    while (i < n && k < cap) {
        int64_t d = 0;
        size_t start = i;
        while (i < n && meta[i] >= '0' && meta[i] <= '9' && i - start < 12)
            d = d * 10 + (meta[i++] - '0');
        /* digits, ascending, then a comma or the end; anything else: not ours */
        if (i == start || d <= prev || (i < n && meta[i] != ',') || base > INT64_MAX - d)
            return 0;
        out[k++] = base + d;
        prev = d;
        if (i < n && ++i == n)
            return 0; /* a trailing comma */
    }
    return k;
}

size_t hsc_kafka_meta_offsets_format(char *buf, size_t cap, int64_t base, const int64_t *offs,
                                     size_t n, size_t *len)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", META_PREFIX);
    if (used >= cap) {
        *len = 0;
        return 0;
    }
    size_t k = 0;
    for (; k < n; k++) {
        char one[24];
        int m = snprintf(one, sizeof(one), "%s%lld", k ? "," : "", (long long)(offs[k] - base));
        if (used + (size_t)m >= cap)
            break;
        memcpy(buf + used, one, (size_t)m + 1);
        used += (size_t)m;
    }
    *len = k ? used : 0;
    return k;
}

void hsc_consumer_close(hsc_consumer *c)
{
    if (!c || !c->rk || c->closed)
        return;
    rd_kafka_resp_err_t e = c->solo ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_commit(c->rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        hsc_log_warn("final commit failed", "error", rd_kafka_err2str(e), NULL);
    rd_kafka_consumer_close(c->rk);
    c->closed = 1;
}

int hsc_consumer_assigned_count(hsc_consumer *c)
{
    return c->assigned;
}

rd_kafka_t *hsc_consumer_handle(hsc_consumer *c)
{
    return c->rk;
}

void hsc_consumer_free(hsc_consumer *c)
{
    if (!c)
        return;
    if (c->loop) {
        ev_io_stop(c->loop, &c->io);
        ev_timer_stop(c->loop, &c->tick);
    }
    if (c->rk) {
        hsc_consumer_close(c);
        if (c->q) {
            rd_kafka_queue_io_event_enable(c->q, -1, NULL, 0);
            rd_kafka_queue_destroy(c->q);
        }
        rd_kafka_destroy(c->rk);
    }
    if (c->fds[0] >= 0)
        close(c->fds[0]);
    if (c->fds[1] >= 0)
        close(c->fds[1]);
    free(c->lag);
    free(c);
}

/* ---------------- headers and DLQ ---------------- */

int hsc_kafka_header_get(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap,
                         hsc_err *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return -1;
    const void *v;
    size_t n;
    if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    /* A value is rejected whole, never cut: a truncated id or topic is another id or topic. */
    if (n >= cap || n > INT_MAX) {
        hsc_err_set(err, HSC_EINVAL, "header %s: %zu bytes do not fit in %zu", name, n,
                    cap ? cap - 1 : 0);
        return -2;
    }
    if (n && memchr(v, '\0', n)) {
        hsc_err_set(err, HSC_EINVAL, "header %s: value contains a NUL byte", name);
        return -2;
    }
    if (n)
        memcpy(buf, v, n);
    buf[n] = '\0';
    return (int)n;
}

int hsc_kafka_header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap)
{
    return hsc_kafka_header_get(rkm, name, buf, cap, NULL);
}

int hsc_dlq_send(hsc_producer *p, const char *dlq_topic, const char *stage,
                 const rd_kafka_message_t *rkm, const hsc_err *why, hsc_delivery_fn cb, void *arg,
                 hsc_err *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_headers_t *src = NULL;
    if (rd_kafka_message_headers(rkm, &src) == RD_KAFKA_RESP_ERR_NO_ERROR && src)
        hdrs = rd_kafka_headers_copy(src); /* keep the producer's own headers */
    else
        hdrs = rd_kafka_headers_new(8);
    char num[32];
    rd_kafka_header_add(hdrs, "hsc-stage", -1, stage, -1);
    rd_kafka_header_add(hdrs, "hsc-error", -1, why->msg, -1);
    rd_kafka_header_add(hdrs, "hsc-error-code", -1, hsc_code_name(why->code), -1);
    rd_kafka_header_add(hdrs, "hsc-source-topic", -1, rd_kafka_topic_name(rkm->rkt), -1);
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    rd_kafka_header_add(hdrs, "hsc-source-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)rkm->offset);
    rd_kafka_header_add(hdrs, "hsc-source-offset", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)hsc_now_ms());
    rd_kafka_header_add(hdrs, "hsc-dlq-ts", -1, num, -1);
    size_t len = rkm->len;
    if (len > DLQ_MAX_PAYLOAD) {
        /* Keep the head for diagnosis; the source offset locates the whole message. */
        snprintf(num, sizeof(num), "%zu", len);
        rd_kafka_header_add(hdrs, "hsc-truncated-from", -1, num, -1);
        len = DLQ_MAX_PAYLOAD;
    }
    int rc = hsc_producer_send(p, dlq_topic, RD_KAFKA_PARTITION_UA, rkm->key, rkm->key_len,
                               rkm->payload, len, hdrs, cb, arg, err);
    if (rc)
        rd_kafka_headers_destroy(hdrs);
    return rc;
}
