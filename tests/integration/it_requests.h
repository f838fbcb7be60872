/*
 * Raw search requests for the query tests and benchmarks (header-only, test
 * code): requests written straight to the request topic with whatever
 * headers a test wants, as an outside producer would, and the probes that
 * read hsc-query's own account of them (/metrics, /proc).
 */
#ifndef HSC_IT_REQUESTS_H
#define HSC_IT_REQUESTS_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness.h"
#include "hsc/codec.h"
#include "hsc/search.h"

/* The headers of one raw request; NULL leaves a header out. */
struct itr_headers {
    const char *correlation_id, *reply_topic, *reply_partition, *deadline_ms;
};

/* A producer to the test's broker, tuned for throughput. */
static inline rd_kafka_t *itr_producer(struct it *t)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", t->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "producer conf: %s\n", errstr);
        exit(1);
    }
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p) {
        fprintf(stderr, "producer: %s\n", errstr);
        exit(1);
    }
    return p;
}

/* Writes one request (value of len bytes) with the given headers; exits on failure. */
static inline void itr_send(rd_kafka_t *p, const char *topic, const void *value, size_t len,
                            const struct itr_headers *h)
{
    rd_kafka_headers_t *hs = rd_kafka_headers_new(4);
    if (h->correlation_id)
        rd_kafka_header_add(hs, HSC_HDR_CORRELATION_ID, -1, h->correlation_id, -1);
    if (h->reply_topic)
        rd_kafka_header_add(hs, HSC_HDR_REPLY_TOPIC, -1, h->reply_topic, -1);
    if (h->reply_partition)
        rd_kafka_header_add(hs, HSC_HDR_REPLY_PARTITION, -1, h->reply_partition, -1);
    if (h->deadline_ms)
        rd_kafka_header_add(hs, HSC_HDR_DEADLINE_MS, -1, h->deadline_ms, -1);
    const char *key = h->correlation_id ? h->correlation_id : "";
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            exit(1);
        }
        rd_kafka_poll(p, 10);
    }
}

/* An encoded vector search of dimension dim (the embedding is a fixed ramp); caller frees. */
static inline char *itr_encoded_request(int dim, size_t *len)
{
    hsc_search_request req;
    hsc_search_request_init(&req);
    req.dim = (size_t)dim;
    req.embedding = calloc((size_t)dim, sizeof(float));
    for (int i = 0; i < dim; i++)
        req.embedding[i] = (float)(i + 1) / (float)dim;
    char *buf;
    hsc_err err = {0};
    if (hsc_codec_encode_search_request(&req, &buf, len, &err)) {
        fprintf(stderr, "encode: %s\n", err.msg);
        exit(1);
    }
    hsc_search_request_clear(&req);
    return buf;
}

/*
 * Writes n requests whose deadline passed a minute ago, addressed as a real
 * client addresses them, and waits until the broker has them all.
 */
static inline void itr_flood_expired(struct it *t, long n, int dim)
{
    rd_kafka_t *p = itr_producer(t);
    size_t len;
    char *value = itr_encoded_request(dim, &len);
    char corr[64], dl[32], replies[256], requests[256];
    snprintf(dl, sizeof(dl), "%lld", it_ms() - 60000);
    /* it_topic's buffer is reused by the next call: keep copies */
    snprintf(replies, sizeof(replies), "%s", it_topic(t, "search_replies"));
    snprintf(requests, sizeof(requests), "%s", it_topic(t, "search_requests"));
    struct itr_headers h = {corr, replies, "0", dl};
    for (long i = 0; i < n; i++) {
        snprintf(corr, sizeof(corr), "expired-%d-%ld", (int)getpid(), i);
        itr_send(p, requests, value, len, &h);
        rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "flood: not every request reached the broker\n");
        exit(1);
    }
    free(value);
    rd_kafka_destroy(p);
}

/* A value from a worker's /metrics (series written exactly as name{labels}); -1 if absent. */
static inline double itr_metric(int port, const char *series)
{
    char url[96];
    long st = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    char *m = it_http("GET", url, NULL, &st);
    double v = -1;
    if (m && st == 200) {
        size_t n = strlen(series);
        for (const char *l = m; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
            if (!strncmp(l, series, n) && l[n] == ' ') {
                v = atof(l + n + 1);
                break;
            }
    }
    free(m);
    return v;
}

/* A field of /proc/<pid>/status in kB (e.g. "VmHWM", the peak RSS); -1 if unreadable. */
static inline long itr_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            kb = atol(line + n + 1);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

#endif
