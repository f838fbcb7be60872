/*
 * The consumer on a libev loop: group or single-partition consumers, the
 * drain of messages and rebalances from the loop, pausing, offset storing and
 * committing, and each partition's lag from librdkafka's statistics.
 */
#include "kafka.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define DRAIN_BUDGET 2000     /* messages per loop turn, so timers still run */
#define REFILL_EVERY_US 20000 /* at most one refetch nudge per 20 ms (see refill) */

struct hsc_consumer {
    struct ev_loop *loop;
    rd_kafka_t *rk;
    struct kafka_wake wake; /* messages and rebalances wake the loop */
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
    int64_t refilled_us; /* when refill last nudged the fetcher */
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

/*
 * The read-ahead is kept small (queued.max.messages.kbytes), and librdkafka
 * 2.0 stops fetching a partition whose queue is over it without waking its
 * broker thread when the queue is drained: that thread sleeps until its next
 * I/O or for up to a second, so a drained queue starved for most of that
 * second (bench_ingest with 2 MB of read-ahead: 2,018 events/s instead of
 * 5,556). When the queue is empty, the owner wants more, and a partition's
 * position is behind the high watermark of its last fetch, that partition is
 * sought to its own position: nothing is skipped or read twice (the position
 * is one past the last message handed to us), and the seek wakes the broker
 * thread, which fetches at once. A fetch that was in flight after all is
 * discarded and sent again, so the nudges are spaced REFILL_EVERY_US apart.
 */
static void refill(hsc_consumer *c)
{
    int64_t now = hsc_mono_us();
    if (c->solo || c->paused || c->closed || now - c->refilled_us < REFILL_EVERY_US)
        return;
    c->refilled_us = now;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) || !parts)
        return;
    rd_kafka_topic_partition_list_t *behind = NULL;
    if (parts->cnt && !rd_kafka_position(c->rk, parts)) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t lo = 0, hi = 0;
            if (tp->err || tp->offset < 0 ||
                rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &lo, &hi) ||
                hi <= tp->offset)
                continue; /* nothing read yet, no fetch yet, or caught up */
            if (!behind)
                behind = rd_kafka_topic_partition_list_new(parts->cnt);
            rd_kafka_topic_partition_list_add(behind, tp->topic, tp->partition)->offset =
                tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (!behind)
        return;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, behind, 0); /* 0: asynchronous */
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(behind);
}

static void drain(hsc_consumer *c)
{
    for (int i = 0; i < DRAIN_BUDGET && !c->closed; i++) {
        if (c->h.can_accept && !c->h.can_accept(c->arg))
            return;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rkm) {
            refill(c);
            return;
        }
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
    kafka_wake_drain(&c->wake);
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
    kafka_wake_clear(&c->wake);
    c->loop = loop;
    c->h = *h;
    c->arg = arg;
    /* Offsets are stored by the owner only after the work they guard is done;
     * auto-commit then sends what was stored. The read-ahead is 1 MB, not
     * librdkafka's 64 MB, fetched 256 kB a partition (fetch.max.bytes follows it
     * down to 1 MB): a fetched message pins its whole fetch response, and on a
     * backlog of 384-dim titles hsc-ingest peaked at 127 MB with 64 MB of
     * read-ahead, 46 MB with 8 and 28 MB with 1 (bench_ingest --events 100000:
     * 5,556 events/s with 8 MB, 6,296 with 1). A small read-ahead is only as fast
     * because refill() wakes the fetcher when it is drained (issue 17). */
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
                                    "queued.max.messages.kbytes",
                                    "1024",
                                    "max.partition.fetch.bytes",
                                    "262144",
                                    NULL};
    /* A reader of one partition (a reply inbox) has no group and commits nothing. */
    /* librdkafka wants a group.id even for assign(); it is never joined or committed. */
    /* The broker answers a waiting fetch as soon as a reply lands, so a short
     * fetch.wait.max.ms bought no latency: at 10 ms an idle inbox cost the broker 100
     * fetches a second (3% of a core). */
    const char *const solo[] = {"group.id",
                                "hsc-inbox",
                                "enable.auto.commit",
                                "false",
                                "enable.auto.offset.store",
                                "false",
                                "auto.offset.reset",
                                "latest",
                                "fetch.wait.max.ms",
                                "500",
                                "socket.nagle.disable",
                                "true",
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
    if (kafka_wake_init(&c->wake, loop, rd_kafka_queue_get_consumer(c->rk), consumer_io_cb, c, err))
        goto fail;
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
    if (c->loop)
        ev_timer_stop(c->loop, &c->tick);
    if (c->rk) {
        hsc_consumer_close(c);
        kafka_handle_destroy(c->rk, &c->wake);
    }
    free(c->lag);
    free(c);
}
