/*
 * The index feed (feed.h): rd_kafka_assign() of every partition of one topic
 * at offsets noted before the catalogue load, drained by a loop timer.
 */
#include "feed.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "util.h"

struct enrich_feed {
    struct ev_loop *loop;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *start;
    ev_timer tick;
    enrich_feed_fn fn;
    void *arg;
    unsigned long long count;
};

/*
 * Drains what has arrived for at most TICK_BUDGET_MS a turn, so the loop stays
 * responsive: a title costs up to a millisecond in the index at 100,000 titles,
 * and a turn of 5,000 (the bound before) held the loop for seconds in a burst,
 * Neo4j's answers and the stage's batches waiting behind it.
 */
#define TICK_BUDGET_MS 20
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    enrich_feed *f = w->data;
    int64_t until = hsc_now_ms() + TICK_BUDGET_MS;
    for (int i = 1;; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 0);
        if (!m)
            break;
        if (!m->err) {
            f->count++;
            f->fn(f->arg, m);
        }
        rd_kafka_message_destroy(m);
        if (i % 8 == 0 && hsc_now_ms() >= until)
            break;
    }
    (void)loop;
    (void)revents;
}

enrich_feed *enrich_feed_new(struct ev_loop *loop, const hsc_config *cfg, const char *topic,
                             enrich_feed_fn fn, void *arg, hsc_err *err)
{
    enrich_feed *f = calloc(1, sizeof(*f));
    if (!f) {
        hsc_err_set(err, HSC_ENOMEM, "enrich feed: out of memory");
        return NULL;
    }
    f->loop = loop;
    f->fn = fn;
    f->arg = arg;
    /* librdkafka wants a group.id even for assign(); it is never joined or committed. */
    const char *const solo[] = {"group.id",
                                "hsc-enrich-index",
                                "enable.auto.commit",
                                "false",
                                "enable.auto.offset.store",
                                "false",
                                "auto.offset.reset",
                                "earliest",
                                "fetch.wait.max.ms",
                                "50",
                                NULL};
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "consumer", solo, err);
    char errstr[512];
    if (!conf)
        goto fail;
    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!f->rk) {
        rd_kafka_conf_destroy(conf);
        hsc_err_set(err, HSC_ECONFIG, "enrich feed: %s", errstr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(f->rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(f->rk, 0, rkt, &md, 10000);
    /* A topic just created has no leaders for a moment: wait for them (up to 30 s). */
    for (int tries = 0; !e && md && md->topic_cnt && md->topics[0].err && tries < 150; tries++) {
        rd_kafka_metadata_destroy(md);
        md = NULL;
        usleep(200000);
        e = rd_kafka_metadata(f->rk, 0, rkt, &md, 10000);
    }
    rd_kafka_topic_destroy(rkt);
    if (e || !md->topic_cnt || md->topics[0].err) {
        hsc_err_set(err, HSC_ETRANSIENT, "enrich feed: %s: cannot read its partitions: %s", topic,
                    rd_kafka_err2str(e    ? e
                                     : md ? md->topics[0].err
                                          : e));
        if (md)
            rd_kafka_metadata_destroy(md);
        goto fail;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    f->start = rd_kafka_topic_partition_list_new(np);
    for (int32_t p = 0; p < np; p++) {
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(f->rk, topic, p, &lo, &hi, 10000);
        for (int tries = 0; e && e != RD_KAFKA_RESP_ERR__TIMED_OUT && tries < 150; tries++) {
            usleep(200000); /* no leader yet (a topic just created) */
            e = rd_kafka_query_watermark_offsets(f->rk, topic, p, &lo, &hi, 10000);
        }
        if (e) {
            hsc_err_set(err, HSC_ETRANSIENT, "enrich feed: %s[%d]: cannot read its end: %s", topic,
                        p, rd_kafka_err2str(e));
            goto fail;
        }
        rd_kafka_topic_partition_list_add(f->start, topic, p)->offset = hi;
    }
    ev_timer_init(&f->tick, on_tick, 0.02, 0.02);
    f->tick.data = f;
    return f;
fail:
    enrich_feed_free(f);
    return NULL;
}

int enrich_feed_start(enrich_feed *f, hsc_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_assign(f->rk, f->start);
    if (e)
        return hsc_err_set(err, HSC_ECONFIG, "enrich feed: assign: %s", rd_kafka_err2str(e));
    ev_timer_start(f->loop, &f->tick);
    return HSC_OK;
}

unsigned long long enrich_feed_count(const enrich_feed *f)
{
    return f->count;
}

void enrich_feed_free(enrich_feed *f)
{
    if (!f)
        return;
    if (f->loop)
        ev_timer_stop(f->loop, &f->tick);
    if (f->rk) {
        rd_kafka_assign(f->rk, NULL);
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    if (f->start)
        rd_kafka_topic_partition_list_destroy(f->start);
    free(f);
}
