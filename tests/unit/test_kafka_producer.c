/*
 * Tests of common/transport/kafka.c's producer contract without a broker (the bootstrap
 * address has nobody listening, so every message stays queued): a send never
 * calls back from inside the call, even when librdkafka's queue is full (the
 * message is kept and handed over from the loop); each message is reported
 * exactly once; a message with a deadline still queued when it passes is
 * withdrawn and reported HSC_ETIMEDOUT at about that time, while the others
 * are queued again and keep waiting. And the commit metadata hsc-query hands
 * a partition over with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <string.h>

#include "kafka.h"
#include "util.h"

struct report {
    int calls, code;
    int64_t at_ms;
};

static int in_send; /* set while hsc_producer_send_by runs */
static int called_inside;

static void on_report(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct report *r = arg;
    if (in_send)
        called_inside++;
    r->calls++;
    r->code = code;
    r->at_ms = hsc_now_ms();
    (void)errstr, (void)rkm;
}

static hsc_config *config(const char *max_messages)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(cfg, "kafka.brokers", "127.0.0.1:1", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "rdkafka.log_level", "0", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "rdkafka.producer.message.timeout.ms", "3000", &err), 0);
    if (max_messages)
        assert_int_equal(hsc_config_set(cfg, "rdkafka.producer.queue.buffering.max.messages",
                                        max_messages, &err),
                         0);
    return cfg;
}

static int send_one(hsc_producer *p, int64_t deadline_ms, struct report *r)
{
    hsc_err err = {0};
    in_send = 1;
    int rc = hsc_producer_send_by(p, "t", 0, "k", 1, "v", 1, NULL, deadline_ms, on_report, r, &err);
    in_send = 0;
    return rc;
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
    (void)w, (void)revents;
}

static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, on_stop, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

/* Runs the loop until *calls reaches n, or for at most seconds (slow under valgrind). */
static void run_until(struct ev_loop *loop, const int *calls, int n, double seconds)
{
    for (double t = 0; *calls < n && t < seconds; t += 0.01)
        run_for(loop, 0.01);
}

/* Deadlined messages still queued at their deadline are withdrawn; the rest wait on. */
static void test_queued_reply_is_withdrawn_at_its_deadline(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_config *cfg = config(NULL);
    hsc_err err = {0};
    hsc_producer *p = hsc_producer_new_replies(loop, cfg, &err);
    assert_non_null(p);
    struct report early = {0}, late = {0}, none = {0};
    int64_t t0 = hsc_now_ms();
    assert_int_equal(send_one(p, t0 + 200, &early), 0);
    assert_int_equal(send_one(p, t0 + 600, &late), 0);
    assert_int_equal(send_one(p, 0, &none), 0);
    /* a deadline already past is refused at once, with no callback */
    struct report past = {0};
    assert_int_equal(send_one(p, t0 - 1, &past), HSC_ETIMEDOUT);
    run_until(loop, &early.calls, 1, 5);
    assert_int_equal(early.calls, 1);
    assert_int_equal(early.code, HSC_ETIMEDOUT);
    assert_true(early.at_ms >= t0 + 200); /* never before its deadline */
    if (hsc_now_ms() < t0 + 600)
        assert_int_equal(late.calls, 0); /* purged with the first, queued again */
    assert_int_equal(none.calls, 0);
    run_until(loop, &late.calls, 1, 5);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.code, HSC_ETIMEDOUT);
    assert_true(late.at_ms >= t0 + 600);
    assert_true(late.at_ms < t0 + 3000); /* at its deadline, not at message.timeout.ms */
    assert_int_equal(none.calls, 0);
    assert_int_equal(hsc_producer_outstanding(p), 1);
    hsc_producer_free(p); /* reports the last one (it never reached a broker) */
    assert_int_equal(none.calls, 1);
    assert_int_not_equal(none.code, HSC_OK);
    assert_int_equal(past.calls, 0);
    assert_int_equal(called_inside, 0);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    (void)state;
}

/* A full queue keeps the message here: no callback inside the send, one report each later. */
static void test_full_queue_never_calls_back_inside_send(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_config *cfg = config("2");
    hsc_err err = {0};
    hsc_producer *p = hsc_producer_new_replies(loop, cfg, &err);
    assert_non_null(p);
    struct report r[6] = {{0}};
    int64_t t0 = hsc_now_ms();
    for (int i = 0; i < 6; i++)
        assert_int_equal(send_one(p, t0 + 300, &r[i]), 0);
    assert_int_equal(hsc_producer_outstanding(p), 6);
    assert_int_equal(called_inside, 0);
    for (int i = 0; i < 6; i++)
        run_until(loop, &r[i].calls, 1, 5);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, HSC_ETIMEDOUT);
    }
    assert_int_equal(hsc_producer_outstanding(p), 0);
    assert_int_equal(called_inside, 0);
    hsc_producer_free(p);
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].calls, 1);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    (void)state;
}

/* The revoke hand-over's metadata: what parses, what is refused, what fits. */
static void test_commit_metadata_offsets(void **state)
{
    int64_t v[8];
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc1:0,3,4", 10, 100, v, 8), 3);
    assert_true(v[0] == 100 && v[1] == 103 && v[2] == 104);
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc1:3,2", 8, 0, v, 8), 0);    /* descending */
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc1:1,", 7, 0, v, 8), 0);     /* trailing , */
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc1:1x", 7, 0, v, 8), 0);     /* not a digit */
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc2:1", 6, 0, v, 8), 0);      /* not ours */
    assert_int_equal(hsc_kafka_meta_offsets_parse("", 0, 0, v, 8), 0);            /* auto-commit */
    assert_int_equal(hsc_kafka_meta_offsets_parse("hsc1:1,2,3", 10, 0, v, 2), 2); /* the cap */
    int64_t offs[] = {50, 51, 60, 1000};
    char buf[64];
    size_t len;
    assert_int_equal(hsc_kafka_meta_offsets_format(buf, sizeof(buf), 50, offs, 4, &len), 4);
    assert_string_equal(buf, "hsc1:0,1,10,950");
    assert_int_equal(len, strlen(buf));
    assert_int_equal(hsc_kafka_meta_offsets_format(buf, 12, 50, offs, 4, &len),
                     3); /* "hsc1:0,1,10" */
    assert_string_equal(buf, "hsc1:0,1,10");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_metadata_offsets),
        cmocka_unit_test(test_queued_reply_is_withdrawn_at_its_deadline),
        cmocka_unit_test(test_full_queue_never_calls_back_inside_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
