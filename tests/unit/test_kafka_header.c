/*
 * Tests of hsc_kafka_header_get (common/transport/kafka.c): a header value that does
 * not fit or holds a NUL is an error distinct from an absent header, never a
 * truncated value. The messages are real librdkafka messages: delivery
 * reports from a producer on librdkafka's in-process mock cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "kafka.h"

struct seen {
    int n;
    int rc_fits, rc_long, rc_nul, rc_absent, rc_exact, rc_exact_over;
    char fits[256], untouched[256];
    hsc_err err_long, err_nul, err_absent;
};

/* Reads every header case from the delivered message. */
static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct seen *s = opaque;
    assert_int_equal(rkm->err, RD_KAFKA_RESP_ERR_NO_ERROR);
    s->n++;
    char small[256];
    s->rc_fits = hsc_kafka_header_get(rkm, "hsc-correlation-id", s->fits, sizeof(s->fits), NULL);
    strcpy(s->untouched, "before");
    s->rc_long = hsc_kafka_header_get(rkm, "hsc-reply-topic", s->untouched, sizeof(s->untouched),
                                      &s->err_long);
    s->rc_nul = hsc_kafka_header_get(rkm, "hsc-deadline-ms", small, sizeof(small), &s->err_nul);
    s->err_absent.code = 12345; /* absent leaves err alone */
    s->rc_absent = hsc_kafka_header_get(rkm, "hsc-missing", small, sizeof(small), &s->err_absent);
    /* a value of exactly cap - 1 bytes fits; cap - 2 does not hold it */
    char exact[11];
    s->rc_exact = hsc_kafka_header_get(rkm, "ten", exact, sizeof(exact), NULL);
    s->rc_exact_over = hsc_kafka_header(rkm, "ten", exact, sizeof(exact) - 1);
    (void)rk;
}

static void test_header_too_long_or_nul_is_an_error_not_a_truncation(void **state)
{
    char errstr[512];
    struct seen s = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_opaque(conf, &s);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    char longv[300];
    memset(longv, 't', sizeof(longv));
    const char nulv[] = {'1', '2', '\0', '3'};
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "hsc-correlation-id", -1, "abc-123", -1);
    rd_kafka_header_add(h, "hsc-reply-topic", -1, longv, sizeof(longv));
    rd_kafka_header_add(h, "hsc-deadline-ms", -1, nulv, sizeof(nulv));
    rd_kafka_header_add(h, "ten", -1, "0123456789", 10);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_VALUE("v", 1),
                                       RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rc_fits, 7);
    assert_string_equal(s.fits, "abc-123");
    assert_int_equal(s.rc_long, -2);
    assert_string_equal(s.untouched, "before"); /* nothing copied, nothing cut */
    assert_int_equal(s.err_long.code, HSC_EINVAL);
    assert_string_equal(s.err_long.msg, "header hsc-reply-topic: 300 bytes do not fit in 255");
    assert_int_equal(s.rc_nul, -2);
    assert_string_equal(s.err_nul.msg, "header hsc-deadline-ms: value contains a NUL byte");
    assert_int_equal(s.rc_absent, -1);
    assert_int_equal(s.err_absent.code, 12345);
    assert_int_equal(s.rc_exact, 10);
    assert_int_equal(s.rc_exact_over, -2);
    rd_kafka_destroy(rk);
    (void)state;
}

/* hsc_kafka_conf keeps the refusal even for properties that reached the table some other way. */
static void test_kafka_conf_refuses_code_loading(void **state)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(cfg, "rdkafka.linger.ms", "3", &err), 0);
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "producer", NULL, &err);
    assert_non_null(conf);
    char v[32];
    size_t n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", v, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "3");
    rd_kafka_conf_destroy(conf);
    assert_int_equal(hsc_config_set(cfg, "rdkafka.plugin.library.paths", "x.so", &err),
                     HSC_ECONFIG);
    hsc_config_free(cfg);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_too_long_or_nul_is_an_error_not_a_truncation),
        cmocka_unit_test(test_kafka_conf_refuses_code_loading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
