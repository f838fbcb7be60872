/*
 * The search client against the real Kafka broker, with this test playing
 * a reader of the request topic who writes to the reply topic:
 *  - correlation ids are "<tag>-<sequence>-<token>", and two clients' ids
 *    share nothing guessable (tags and tokens differ, tokens are not a
 *    function of the sequence alone);
 *  - replies planted for ids the client has not issued yet (guessed from the
 *    ids seen on the request topic) are dropped and counted as unmatched,
 *    and the search they targeted ends with its timeout, not with the forgery;
 *  - a genuine reply to an issued id is delivered, once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "hsc/client.h"
#include "hsc/codec.h"
#include "kafka.h"

static struct it T;

struct end {
    int calls, code;
    char plan[64];
};

static void on_end(void *arg, const hsc_search_reply *reply, const hsc_err *err)
{
    struct end *e = arg;
    e->calls++;
    e->code = err ? err->code : 0;
    if (reply && reply->plan)
        snprintf(e->plan, sizeof(e->plan), "%s", reply->plan);
}

static void on_sent(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    int *left = arg;
    assert_int_equal(code, 0);
    (*left)--;
    (void)errstr, (void)rkm;
}

/* Writes a well-formed reply for corr to the reply topic's partition 0. */
static void plant(hsc_producer *p, const char *topic, const char *corr, const char *plan, int *left)
{
    hsc_search_reply r = {.v = 1, .correlation_id = (char *)corr, .ok = true, .plan = (char *)plan};
    char *buf;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_search_reply(&r, &buf, &len, &err), 0);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, HSC_HDR_CORRELATION_ID, -1, corr, -1);
    (*left)++;
    assert_int_equal(
        hsc_producer_send(p, topic, 0, corr, strlen(corr), buf, len, h, on_sent, left, &err), 0);
    free(buf);
}

/* Splits "<tag>-<seq>-<token>" (checked against the format). */
static void split(const char *corr, char *tag, unsigned long long *seq, char *tok)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9a-f]{12}-[0-9]+-[0-9a-f]{16}$", REG_EXTENDED), 0);
    if (regexec(&re, corr, 0, NULL, 0))
        fail_msg("correlation id '%s' is not <tag>-<seq>-<token>", corr);
    regfree(&re);
    assert_int_equal(sscanf(corr, "%12[0-9a-f]-%llu-%16[0-9a-f]", tag, seq, tok), 3);
}

static void run_until(struct ev_loop *loop, int *flag, int want, int timeout_ms)
{
    long long until = it_ms() + timeout_ms;
    while (*flag != want && it_ms() < until)
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT), usleep(1000);
}

/* A client; the test's topics were just created, so their leaders may take a moment. */
static hsc_client *new_client(struct ev_loop *loop, hsc_config *cfg)
{
    hsc_err err = {0};
    for (int i = 0; i < 40; i++) {
        hsc_client *c = hsc_client_new(loop, cfg, &err);
        if (c)
            return c;
        usleep(250000);
    }
    fail_msg("client: %s", err.msg);
    return NULL;
}

static void test_forged_replies_are_dropped(void **state)
{
    hsc_err err = {0};
    struct ev_loop *loop = ev_loop_new(0);
    hsc_config *cfg = hsc_config_new();
    assert_int_equal(hsc_config_set(cfg, "kafka.brokers", T.brokers, &err), 0);
    assert_int_equal(hsc_config_set(cfg, "topics.prefix", T.prefix, &err), 0);
    assert_int_equal(hsc_config_set(cfg, "client.reply_partition", "0", &err), 0);
    hsc_client *a = new_client(loop, cfg);
    hsc_client *b = new_client(loop, cfg); /* shares partition 0 with a */
    hsc_producer *forger = hsc_producer_new_interactive(loop, cfg, &err);
    assert_non_null(forger);
    const char *replies = hsc_config_topic(cfg, "topics.search_replies");

    hsc_search_request req;
    hsc_search_request_init(&req);
    req.seed_ids.n = 1;
    char *seed = "t1";
    req.seed_ids.v = &seed;
    struct end a1 = {0}, a2 = {0}, b1 = {0};
    char ca1[64], ca2[64], cb1[64];
    assert_int_equal(hsc_client_search(a, &req, 20000, on_end, &a1, ca1, &err), 0);
    assert_int_equal(hsc_client_search(b, &req, 20000, on_end, &b1, cb1, &err), 0);

    /* what a reader of the request topic sees */
    char ta[16], tb[16], ka[20], kb[20];
    unsigned long long sa, sb;
    split(ca1, ta, &sa, ka);
    split(cb1, tb, &sb, kb);
    assert_int_equal(sa, 1);
    assert_int_equal(sb, 1);
    assert_string_not_equal(ta, tb);
    assert_string_not_equal(ka, kb); /* same sequence, different tokens: keyed per client */

    /* a's next search, whose id the forger has not seen */
    assert_int_equal(hsc_client_search(a, &req, 1500, on_end, &a2, ca2, &err), 0);
    char t2[16], k2[20];
    unsigned long long s2;
    split(ca2, t2, &s2, k2);
    assert_string_equal(t2, ta);
    assert_int_equal(s2, 2);
    assert_string_not_equal(k2, ka); /* the token moves with the sequence */

    /* guesses from what was seen: the old token, b's token, an old-style id, junk */
    int left = 0;
    char g[128];
    const char *guesses[] = {"%s-2-%s", "%s-2-%s", "%s.2", "%s-2-0000000000000000", "%s-2-%sff"};
    snprintf(g, sizeof(g), guesses[0], ta, ka);
    plant(forger, replies, g, "forged", &left);
    snprintf(g, sizeof(g), guesses[1], ta, kb);
    plant(forger, replies, g, "forged", &left);
    snprintf(g, sizeof(g), guesses[2], ta);
    plant(forger, replies, g, "forged", &left);
    snprintf(g, sizeof(g), guesses[3], ta);
    plant(forger, replies, g, "forged", &left);
    snprintf(g, sizeof(g), guesses[4], ta, k2);
    plant(forger, replies, g, "forged", &left);
    /* and the genuine answers to a's and b's first searches */
    plant(forger, replies, ca1, "genuine", &left);
    plant(forger, replies, cb1, "genuine", &left);
    run_until(loop, &left, 0, 10000);
    assert_int_equal(left, 0);
    run_until(loop, &b1.calls, 1, 10000);
    run_until(loop, &a1.calls, 1, 10000);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(a1.code, 0);
    assert_string_equal(a1.plan, "genuine");
    assert_int_equal(b1.calls, 1);
    assert_string_equal(b1.plan, "genuine");
    /* the forged replies were read (they came before the genuine ones) and dropped */
    struct hsc_client_stats st;
    hsc_client_get_stats(a, &st);
    assert_int_equal(st.answered, 1);
    assert_int_equal(st.unmatched, 4); /* "<tag>.2", the old format, is not even ours to count */
    hsc_client_get_stats(b, &st);
    assert_int_equal(st.unmatched, 0); /* a's tag: not b's to count */
    assert_int_equal(a2.calls, 0);
    /* a's second search ends with its own timeout, not with a forgery */
    run_until(loop, &a2.calls, 1, 5000);
    assert_int_equal(a2.calls, 1);
    assert_int_equal(a2.code, HSC_ETIMEDOUT);
    assert_string_equal(a2.plan, "");

    hsc_producer_free(forger);
    hsc_client_free(a);
    hsc_client_free(b);
    hsc_config_free(cfg);
    ev_loop_destroy(loop);
    (void)state;
}

static int setup(void **state)
{
    it_setup(&T);
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    it_teardown(&T);
    (void)state;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forged_replies_are_dropped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
