/*
 * Broker faults a real single-node broker cannot easily produce, from
 * librdkafka's mock cluster (in addition to the real-broker tests, not
 * instead of them; PostgreSQL is the real one): hsc-ingest runs against a
 * 3-broker mock cluster that fails fetches, produce requests and offset
 * commits along the way. Every event must still be stored in PostgreSQL
 * (the set of (id, version) equals the published one: a lost title or a
 * wrong version shows) and forwarded (the seen-set of (id, version) read to
 * the topic's end equals the published one: a duplicate delivery is allowed,
 * a gap is not), the offsets must catch up, and the worker must stop cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include "hsc/codec.h"
#include "it_common.h"

#define N 3000

/* Kafka protocol API keys (librdkafka keeps its names for them private). */
enum { API_PRODUCE = 0, API_FETCH = 1, API_OFFSET_COMMIT = 8 };

static void test_ingest_under_broker_faults(void **state)
{
    struct it t;
    it_setup(&t);

    /* The mock cluster lives in this handle's background threads. */
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", errstr, sizeof(errstr));
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(mock_rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mock_rk);
    assert_non_null(mc);
    const char *keys[] = {"content_events", "learning_events", "content_ingested", "dlq"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(rd_kafka_mock_topic_create(mc, it_topic(&t, keys[i]), 6, 3), 0);
    /* From here on the harness's Kafka helpers talk to the mock cluster. */
    snprintf(t.brokers, sizeof(t.brokers), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    snprintf(t.env_brokers, sizeof(t.env_brokers), "HSC_KAFKA_BROKERS=%s", t.brokers);

    for (int i = 0; i < N; i++) {
        char id[32], title[48];
        snprintf(id, sizeof(id), "mock%05d", i);
        snprintf(title, sizeof(title), "Mock Title %d", i);
        hsc_content_event ev = {.v = 1, .id = id, .version = 1, .title = title};
        char *buf;
        size_t len;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_encode_content(&ev, &buf, &len, &err), 0);
        assert_true(it_produce(&t, it_topic(&t, "content_events"), id, buf, len, NULL) >= 0);
        free(buf);
    }

    /* Faults the worker meets while it works: leaders move, requests time out. */
    rd_kafka_mock_push_request_errors(
        mc, API_FETCH, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    rd_kafka_mock_push_request_errors(
        mc, API_PRODUCE, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    rd_kafka_mock_push_request_errors(
        mc, API_OFFSET_COMMIT, 4, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);

    char brokers_set[300];
    snprintf(brokers_set, sizeof(brokers_set), "kafka.brokers=%s", t.brokers);
    const char *args[] = {
        "--set", brokers_set, "--set", "ingest.group=it-mock", "--set", "ingest.batch_max=200",
        NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", args);

    assert_int_equal(
        it_pg_wait(&t, "SELECT count(*) FROM content WHERE id LIKE 'mock%'", N, 120000), N);
    assert_int_equal(it_wait_caught_up(&t, "it-mock", it_topic(&t, "content_events"), 60000), 0);
    /* Stored: exactly the published (id, version) pairs. */
    struct it_strs want = {0}, got;
    for (int i = 0; i < N; i++) {
        char row[32];
        snprintf(row, sizeof(row), "mock%05d\t1", i);
        it_strs_push(&want, row);
    }
    it_pg_strs(&t, "SELECT id, version FROM content", &got);
    assert_int_equal(it_strs_diff("content (id, version)", &want, "published", &got, "stored"), 0);
    it_strs_free(&got);
    /* Forwarded: every (id, version) at least once (delivery is at-least-once). */
    struct it_record *recs;
    size_t n = it_consume_to_end(&t, it_topic(&t, "content_ingested"), 120000, &recs);
    it_records_id_version(recs, n, &got);
    it_records_free(recs, n);
    fprintf(stderr, "-- forwarded: %zu records, %zu distinct (id, version)\n", n, got.n);
    assert_int_equal(it_strs_diff("forwarded (id, version)", &want, "published", &got, "forwarded"),
                     0);
    it_strs_free(&want);
    it_strs_free(&got);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);

    rd_kafka_destroy(mock_rk);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ingest_under_broker_faults)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
