/*
 * bench_ingest: end-to-end ingest throughput and latency against the real
 * stack. Produces N content events at a target rate (open loop: the send
 * schedule does not wait for the pipeline), with each event's ts set to its
 * send time, runs hsc-ingest, and reports per-event latency from send to the
 * moment a separate reader in this program receives the event's record on
 * hsc.content.ingested, as percentiles, and throughput (first send to last
 * arrival). hsc-ingest produces that record only after its PostgreSQL
 * transaction has committed, and a consumer sees it only once the broker
 * has it (acks=all on one broker: the produce acknowledgement), so the
 * latency includes the commit and the Kafka acknowledgement, which the
 * row's updated_at (now(), the transaction's start) does not. Every event is
 * also checked in PostgreSQL at the end. A second reader in this program reads the
 * input topic itself, so the same run also prints the broker alone (send to the
 * record readable on hsc.content.events) and the headline ratio of the two p50s.
 *
 *   bench_ingest [--events N] [--rate PER_S (0 = as fast as possible)] [--dim D]
 *                [--batch-max B]
 * Needs the variables of .local/stack.env.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_args.h"
#include "bench_proc.h"
#include "harness.h"
#include "hsc/codec.h"
#include "util.h"

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err)
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    (void)rk;
    (void)opaque;
}

/* The reader of hsc.content.ingested: arrival time (epoch ms) per event index. */
struct reader {
    rd_kafka_t *rk;
    long events;
    long long *arrived; /* 0 until seen */
    long seen, dup, foreign;
    int stop; /* set by main, read by the reader thread (atomics) */
};

static void *read_ingested(void *arg)
{
    struct reader *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && r->seen < r->events) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (!m)
            continue;
        long long now = hsc_now_ms();
        if (!m->err) {
            char key[32] = "";
            if (m->key && m->key_len < sizeof(key))
                memcpy(key, m->key, m->key_len), key[m->key_len] = '\0';
            long i = key[0] == 'b' ? atol(key + 1) : -1;
            if (i < 0 || i >= r->events)
                r->foreign++; /* the warm-up record */
            else if (r->arrived[i])
                r->dup++;
            else
                r->arrived[i] = now, __atomic_add_fetch(&r->seen, 1, __ATOMIC_RELEASE);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* A consumer assigned every partition of topic from the beginning, fetching without waiting. */
static rd_kafka_t *reader_new(const char *brokers, const char *topic, const char *group)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "fetch.min.bytes", "1", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "reader: %s\n", errstr);
        exit(1);
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, t, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "reader: no metadata for %s\n", topic);
        exit(1);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[p].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rk;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static const char USAGE[] =
    "Usage: bench_ingest [--events N] [--rate PER_S (0 = as fast as possible)] [--dim D]\n"
    "                    [--batch-max B]\n"
    "End-to-end ingest throughput and latency: runs hsc-ingest and times each event from\n"
    "its send to its record on hsc.content.ingested. Needs .local/stack.env.\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    long events = 50000, rate = 0;
    int dim = 384;
    const char *batch = "500";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            events = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            rate = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch-max"))
            batch = argv[i + 1];
    }
    struct it t;
    it_setup(&t);
    char batch_set[64];
    snprintf(batch_set, sizeof(batch_set), "ingest.batch_max=%s", batch);
    const char *args[] = {"--set", "ingest.group=bench",
                          "--set", batch_set,
                          "--set", getenv("BENCH_LOG") ? getenv("BENCH_LOG") : "log.level=warn",
                          NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", args);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set(conf, "bootstrap.servers", t.brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    const char *topic = it_topic(&t, "content_events");

    static const char *GENRES[] = {"drama", "comedy", "horror", "science fiction", "romance"};
    float *emb = malloc(sizeof(float) * (size_t)dim);
    srand(1);
    /* Warm up: the consumer joins, the producers get their ids, PostgreSQL connects. */
    {
        hsc_content_event w = {0};
        w.v = 1;
        w.id = "warmup";
        w.title = "warm-up";
        char *buf;
        size_t len;
        hsc_err err = {0};
        hsc_codec_encode_content(&w, &buf, &len, &err);
        it_produce(&t, topic, "warmup", buf, len, NULL);
        free(buf);
        if (it_pg_wait(&t, "SELECT count(*) FROM content", 1, 60000) != 1) {
            fprintf(stderr, "hsc-ingest did not start\n");
            return 1;
        }
        it_pg_int(&t, "DELETE FROM content RETURNING 1");
    }
    struct reader rd = {
        .rk = reader_new(t.brokers, it_topic(&t, "content_ingested"), "bench-ingest-reader"),
        .events = events};
    rd.arrived = calloc((size_t)events, sizeof(long long));
    /* the competing path: the same records read straight off the input topic */
    struct reader raw = {.rk = reader_new(t.brokers, topic, "bench-ingest-raw-reader"),
                         .events = events};
    raw.arrived = calloc((size_t)events, sizeof(long long));
    long long *sent_ts = calloc((size_t)events, sizeof(long long));
    pthread_t reader_thread, raw_thread;
    pthread_create(&reader_thread, NULL, read_ingested, &rd);
    pthread_create(&raw_thread, NULL, read_ingested, &raw);
    long long t0 = hsc_now_ms();
    for (long i = 0; i < events; i++) {
        if (rate > 0) {
            long long due = t0 + (i * 1000) / rate;
            long long now = hsc_now_ms();
            if (due > now)
                usleep((useconds_t)((due - now) * 1000));
        }
        for (int d = 0; d < dim; d++)
            emb[d] = (float)rand() / (float)RAND_MAX - 0.5f;
        hsc_content_event ev = {0};
        char id[32], title[64];
        snprintf(id, sizeof(id), "b%07ld", i);
        snprintf(title, sizeof(title), "Bench title %ld", i);
        char *g[2] = {(char *)GENRES[i % 5], (char *)GENRES[(i / 5) % 5]};
        ev.v = 1;
        ev.id = id;
        ev.version = 1;
        ev.title = title;
        ev.genres.v = g;
        ev.genres.n = g[0] == g[1] ? 1 : 2;
        ev.embedding = emb;
        ev.dim = (size_t)dim;
        ev.has = HSC_HAS_TS;
        ev.ts = sent_ts[i] = hsc_now_ms();
        char *buf;
        size_t len;
        hsc_err err = {0};
        if (hsc_codec_encode_content(&ev, &buf, &len, &err)) {
            fprintf(stderr, "encode: %s\n", err.msg);
            return 1;
        }
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(id, strlen(id)),
                                 RD_KAFKA_V_VALUE(buf, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    long long sent_ms = hsc_now_ms() - t0;
    long long got = it_pg_wait(&t, "SELECT count(*) FROM content", events, 600000);
    if (got != events) {
        fprintf(stderr, "only %lld of %ld events arrived\n", got, events);
        return 1;
    }
    /* the reader has had every record, or had 60 s more than the table needed */
    for (long long end = hsc_now_ms() + 60000;
         __atomic_load_n(&rd.seen, __ATOMIC_ACQUIRE) < events && hsc_now_ms() < end;)
        usleep(10000);
    __atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
    pthread_join(reader_thread, NULL);
    for (long long end = hsc_now_ms() + 10000;
         __atomic_load_n(&raw.seen, __ATOMIC_ACQUIRE) < events && hsc_now_ms() < end;)
        usleep(10000);
    __atomic_store_n(&raw.stop, 1, __ATOMIC_RELEASE);
    pthread_join(raw_thread, NULL);
    printf("bench_ingest: %ld events, dim %d, %s, batch_max %s\n", events, dim,
           rate ? "open loop" : "as fast as possible", batch);
    if (rate)
        printf("  target rate:   %ld events/s (sent in %.1f s)\n", rate, sent_ms / 1000.0);
    if (rd.seen < events) {
        fprintf(stderr, "bench_ingest: FAILED: only %ld of %ld records reached %s\n", rd.seen,
                events, it_topic(&t, "content_ingested"));
        return 1;
    }
    long long *lat = malloc(sizeof(long long) * (size_t)events), last = 0;
    for (long i = 0; i < events; i++) {
        lat[i] = rd.arrived[i] - sent_ts[i];
        if (rd.arrived[i] > last)
            last = rd.arrived[i];
    }
    qsort(lat, (size_t)events, sizeof(long long), cmp_ll);
#define PCT(p) lat[(long)((p) * (double)(events - 1) + 0.5)]
    double span = (double)(last - sent_ts[0]) / 1000.0;
    printf("  throughput:    %.0f events/s (first send to last forwarded record read: %.1f s)\n",
           events / span, span);
    printf("  hsc-ingest peak RSS: %.1f MB\n", (double)bench_hwm_kb(ingest) / 1024.0);
    printf("  latency send -> committed and forwarded, read from %s (ms): p50 %lld  p95 %lld  "
           "p99 %lld  max %lld\n",
           it_topic(&t, "content_ingested"), PCT(.5), PCT(.95), PCT(.99), lat[events - 1]);
    long long ingest_p50 = PCT(.5);
    /* the broker alone, in the same run: send -> readable on the input topic */
    long nraw = 0;
    long long raw_last = 0;
    for (long i = 0; i < events; i++)
        if (raw.arrived[i]) {
            lat[nraw++] = raw.arrived[i] - sent_ts[i];
            if (raw.arrived[i] > raw_last)
                raw_last = raw.arrived[i];
        }
    qsort(lat, (size_t)nraw, sizeof(long long), cmp_ll);
    if (nraw) {
#define RPCT(p) lat[(long)((p) * (double)(nraw - 1) + 0.5)]
        printf("  broker alone, send -> readable on %s (ms): p50 %lld  p95 %lld  p99 %lld  max "
               "%lld  (%ld of %ld read; %.0f events/s)\n",
               topic, RPCT(.5), RPCT(.95), RPCT(.99), lat[nraw - 1], nraw, events,
               nraw / ((double)(raw_last - sent_ts[0]) / 1000.0));
        printf("  headline: ingest p50 %lld ms / broker-alone p50 %lld ms = %.1fx\n", ingest_p50,
               RPCT(.5), RPCT(.5) > 0 ? (double)ingest_p50 / (double)RPCT(.5) : 0.0);
#undef RPCT
    }
#undef PCT
    if (rd.dup)
        printf("  %ld records arrived more than once (at-least-once redelivery)\n", rd.dup);
    free(lat);
    free(rd.arrived);
    free(sent_ts);
    rd_kafka_consumer_close(rd.rk);
    rd_kafka_destroy(rd.rk);
    free(raw.arrived);
    rd_kafka_consumer_close(raw.rk);
    rd_kafka_destroy(raw.rk);
    free(emb);
    rd_kafka_destroy(rk);
    it_stop(ingest, SIGTERM, 30000);
    it_teardown(&t);
    return 0;
}
