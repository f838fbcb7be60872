/*
 * The stage runtime (common/runtime/stage*.c) against librdkafka's mock
 * cluster: every message is consumed and handled, each valid one's output is
 * produced downstream, an undecodable one and one its handler rejects go to
 * the DLQ, and the group's offsets are committed only once the output was
 * acknowledged (while the output partition has no leader, nothing is).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "stage.h"

#define N_MSGS 20

/* The handler's state: calls of process() and the completion it owes. */
struct handler {
    struct ev_loop *loop;
    ev_timer later; /* completes process() from the loop, as the contract asks */
    hsc_stage_batch *b;
    hsc_stage_done_fn done;
    int code;
    hsc_err err;
    int calls;
};

/* "bad" does not decode; everything else decodes to a copy of its payload. */
static int decode(void *ctx, const rd_kafka_message_t *rkm, void **out, hsc_err *err)
{
    (void)ctx;
    if (rkm->len == 3 && !memcmp(rkm->payload, "bad", 3))
        return hsc_err_set(err, HSC_EINVAL, "payload: 'bad' is not a message");
    char *s = malloc(rkm->len + 1);
    if (!s)
        return HSC_ENOMEM;
    memcpy(s, rkm->payload, rkm->len);
    s[rkm->len] = '\0';
    *out = s;
    return HSC_OK;
}

static void free_decoded(void *ctx, void *decoded)
{
    (void)ctx;
    free(decoded);
}

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct handler *h = w->data;
    (void)loop;
    (void)revents;
    h->done(h->b, h->code, h->code ? &h->err : NULL);
}

/* Emits "out:<payload>" for each message; a batch holding "reject" is refused (EINVAL). */
static int process(void *ctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                   hsc_stage_done_fn done)
{
    struct handler *h = ctx;
    h->calls++;
    h->b = b;
    h->done = done;
    h->code = HSC_OK;
    for (size_t i = 0; i < n; i++) {
        const char *p = msgs[i]->decoded;
        if (!strcmp(p, "reject")) {
            h->code = hsc_err_set(&h->err, HSC_EINVAL, "payload: the backend refuses 'reject'");
            break;
        }
        char v[64];
        int len = snprintf(v, sizeof(v), "out:%s", p);
        assert_int_equal(hsc_stage_emit(b, "out", p, strlen(p), v, (size_t)len, NULL), 0);
    }
    ev_timer_set(&h->later, 0, 0);
    ev_timer_start(h->loop, &h->later);
    return HSC_OK;
}

static const struct hsc_stage_ops OPS = {
    .decode = decode, .free_decoded = free_decoded, .process = process};

static void cap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until cond(st) or ms pass; returns cond's last value. */
static int run_until(struct ev_loop *loop, hsc_stage *st, int (*cond)(hsc_stage *), int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (cond(st))
            return 1;
        ev_run(loop, EVRUN_NOWAIT);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return cond(st);
}

static int first_batch_consumed(hsc_stage *st)
{
    struct hsc_stage_stats s;
    hsc_stage_get_stats(st, &s);
    return s.consumed >= 8;
}

static int all_processed(hsc_stage *st)
{
    struct hsc_stage_stats s;
    hsc_stage_get_stats(st, &s);
    return s.processed == N_MSGS;
}

/* The group's committed offset of in/0 (-1001: none), read by a separate consumer. */
static int64_t committed(const char *brokers)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof(e));
    rd_kafka_conf_set(c, "group.id", "g", e, sizeof(e));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "in", 0);
    assert_int_equal(rd_kafka_committed(rk, l, 5000), 0);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

/* Reads every message of topic/0 into out ("key=value" lines); returns the count. */
static int read_topic(const char *brokers, const char *topic, char *out, size_t cap)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof(e));
    rd_kafka_conf_set(c, "group.id", "reader", e, sizeof(e)); /* assign() needs one */
    rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof(e));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int n = 0;
    size_t len = 0;
    out[0] = '\0';
    for (int idle = 0; idle < 10;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            idle++;
            continue;
        }
        if (!m->err) {
            len += (size_t)snprintf(out + len, cap - len, "%.*s=%.*s\n", (int)m->key_len,
                                    (const char *)m->key, (int)m->len, (const char *)m->payload);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

static void test_consume_process_produce_commit(void **state)
{
    (void)state;
    char e[256];
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_conf_set(mconf, "test.mock.num.brokers", "1", e, sizeof(e));
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, e, sizeof(e));
    assert_non_null(mock_rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mock_rk);
    assert_non_null(mc);
    const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "in", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "out", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "dlq", 1, 1), 0);

    /* The input: 18 good messages, one that does not decode, one the handler rejects. */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, e, sizeof(e));
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof(e));
    for (int i = 0; i < N_MSGS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "m%02d", i);
        const char *p = i == 5 ? "bad" : i == 12 ? "reject" : v;
        assert_int_equal(
            rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE((void *)p, strlen(p)), RD_KAFKA_V_KEY(v, strlen(v)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    rd_kafka_destroy(prod);

    /* No leader for out/0: deliveries wait, so no offset may be committed yet. */
    rd_kafka_mock_partition_set_leader(mc, "out", 0, -1);

    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(cfg, "kafka.brokers", brokers, &err), 0);
    assert_int_equal(hsc_config_set(cfg, "metrics.port", "0", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "rdkafka.consumer.auto.commit.interval.ms", "100", &err),
                     0);
    assert_int_equal(hsc_config_set(cfg, "rdkafka.consumer.auto.offset.reset", "earliest", &err),
                     0);
    struct ev_loop *loop = ev_loop_new(0);
    struct handler h = {.loop = loop};
    ev_timer_init(&h.later, later_cb, 0, 0);
    h.later.data = &h;
    const char *topics[] = {"in"};
    struct hsc_stage_settings s = {.name = "test",
                                   .group = "g",
                                   .topics = topics,
                                   .ntopics = 1,
                                   .batch_max = 8,
                                   .linger_ms = 5,
                                   .shutdown_timeout_ms = 10000,
                                   .backoff_initial_ms = 50,
                                   .backoff_max_ms = 200,
                                   .dlq_topic = "dlq"};
    hsc_stage *st = hsc_stage_new(loop, cfg, &s, &OPS, &h, &err);
    assert_non_null(st);

    assert_true(run_until(loop, st, first_batch_consumed, 30000));
    /* Handled, but the first batch's output is not acknowledged: nothing stored or committed. */
    run_until(loop, st, all_processed, 1500);
    struct hsc_stage_stats stats;
    hsc_stage_get_stats(st, &stats);
    assert_int_equal(stats.processed, 0);
    assert_true(h.calls >= 1);
    assert_true(committed(brokers) < 0);

    /* The leader is back: everything is delivered, then stored and committed. */
    rd_kafka_mock_partition_set_leader(mc, "out", 0, 1);
    assert_true(run_until(loop, st, all_processed, 60000));
    hsc_stage_stop(st);
    /* The stage breaks the loop once it has committed and left; that may already have
     * happened inside hsc_stage_stop (nothing was buffered), so a timer ends the run too. */
    ev_timer cap;
    ev_timer_init(&cap, cap_cb, 2., 0);
    ev_timer_start(loop, &cap);
    ev_run(loop, 0);
    ev_timer_stop(loop, &cap);
    hsc_stage_get_stats(st, &stats);
    assert_int_equal(stats.consumed, N_MSGS);
    assert_int_equal(stats.produced, N_MSGS - 2);
    assert_int_equal(stats.dlq, 2);
    assert_int_equal(committed(brokers), N_MSGS);
    hsc_stage_free(st);

    static char out[8192];
    assert_int_equal(read_topic(brokers, "out", out, sizeof(out)), N_MSGS - 2);
    if (!strstr(out, "m00=out:m00\n"))
        fprintf(stderr, "out holds:\n%s", out);
    assert_non_null(strstr(out, "m00=out:m00\n"));
    assert_non_null(strstr(out, "m19=out:m19\n"));
    assert_null(strstr(out, "m05="));
    assert_null(strstr(out, "m12="));
    assert_int_equal(read_topic(brokers, "dlq", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "=bad\n"));
    assert_non_null(strstr(out, "=reject\n"));

    ev_loop_destroy(loop);
    hsc_config_free(cfg);
    rd_kafka_destroy(mock_rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consume_process_produce_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
