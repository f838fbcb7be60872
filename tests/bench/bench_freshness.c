/*
 * bench_freshness: how long a published title takes to become searchable, on
 * the real stack. Runs hsc-ingest, hsc-enrich and hsc-embed-index in a fresh
 * namespace, publishes N new titles at a fixed rate (open loop; each event's
 * ts is its send time, with a 384-float embedding), and reads, for each
 * title, the hsc.content.indexed record hsc-embed-index writes after the
 * Milvus write and the epoch bump (its ts: searchable from then on). It
 * prints freshness (indexed ts - published ts) percentiles, the per-stage
 * split from the Kafka timestamps of each title's records on
 * hsc.content.ingested and hsc.content.enriched, every title not indexed or
 * missing, the embed-index histogram hsc_content_freshness_seconds (its
 * count must equal the titles), and as the headline the ratio of freshness
 * to Kafka's own publish -> consume time, measured in the same run by a
 * plain consumer of hsc.content.events.
 *
 * embed-index reads hsc.content.enriched by default, as in production (so
 * freshness includes hsc-enrich's Neo4j writes); --input content_ingested
 * runs it beside hsc-enrich instead (the graph then catches up on its own,
 * and its lag is printed apart).
 *
 *   bench_freshness [--titles N] [--rate PER_S] [--dim D] [--timeout S]
 *                   [--input content_enriched|content_ingested]
 * Needs the variables of .local/stack.env; run it under the stack lock.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_args.h"
#include "harness.h"
#include "hsc/codec.h"
#include "util.h"

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err)
        __atomic_add_fetch((long *)opaque, 1, __ATOMIC_RELAXED);
    (void)rk;
}

static long title_index(const void *key, size_t len, long n)
{
    char k[32] = "";
    if (!key || len >= sizeof(k) || len < 2)
        return -1;
    memcpy(k, key, len);
    if (k[0] != 'f')
        return -1;
    long i = atol(k + 1);
    return i >= 0 && i < n ? i : -1;
}

/* A consumer assigned every partition of topic at `offset`, fetching without waiting. */
static rd_kafka_t *reader_new(const char *brokers, const char *topic, int64_t offset)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "bench-freshness-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "reader: %s\n", errstr), exit(1);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, t, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt < 1)
        fprintf(stderr, "reader: no metadata for %s\n", topic), exit(1);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[p].id)->offset =
            offset;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rk;
}

/* Kafka's own publish -> consume time of each title on hsc.content.events (the baseline). */
struct baseline {
    rd_kafka_t *rk;
    long n;
    long long *ts, *arrived; /* ts[i] set by the producer before it sends */
    long seen;
    int stop;
};

static void *read_events(void *arg)
{
    struct baseline *b = arg;
    while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&b->seen, __ATOMIC_ACQUIRE) < b->n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->rk, 100);
        if (!m)
            continue;
        long long now = hsc_now_ms();
        long i = m->err ? -1 : title_index(m->key, m->key_len, b->n);
        if (i >= 0 && !b->arrived[i]) {
            b->arrived[i] = now;
            __atomic_add_fetch(&b->seen, 1, __ATOMIC_RELEASE);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Prints p50/p90/p99/max of v (n values, ms; sorted in place) as seconds; returns p99. */
static double pct(const char *name, long long *v, long n)
{
    if (n <= 0) {
        printf("  %-34s no samples\n", name);
        return NAN;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_ll);
#define P(q) ((double)v[(long)((double)(n - 1) * (q))] / 1e3)
    printf("  %-34s p50 %7.3f s  p90 %7.3f s  p99 %7.3f s  max %7.3f s  (%ld)\n", name, P(0.5),
           P(0.9), P(0.99), (double)v[n - 1] / 1e3, n);
    double p99 = P(0.99);
#undef P
    return p99;
}

/* The Kafka CreateTime of each title's record on topic (0 if absent). */
static void topic_times(struct it *t, const char *key, long n, long long *out)
{
    rd_kafka_t *rk = reader_new(t->brokers, it_topic(t, key), RD_KAFKA_OFFSET_BEGINNING);
    long seen = 0, idle = 0;
    while (seen < n && idle < 50) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        idle = 0;
        long i = m->err ? -1 : title_index(m->key, m->key_len, n);
        if (i >= 0 && !out[i]) {
            out[i] = rd_kafka_message_timestamp(m, NULL);
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static const char USAGE[] =
    "Usage: bench_freshness [--titles N] [--rate PER_S] [--dim D] [--timeout S]\n"
    "                       [--input content_enriched|content_ingested]\n"
    "How long a published title takes to become searchable: runs hsc-ingest, hsc-enrich\n"
    "and hsc-embed-index in a fresh namespace and prints freshness percentiles.\n"
    "Needs .local/stack.env; run it under the stack lock.\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    long n = 1000, rate = 100;
    int dim = 384, timeout_s = 300;
    const char *input = "content_enriched";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--titles"))
            n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            rate = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout"))
            timeout_s = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--input"))
            input = argv[i + 1];
    }
    if (n < 1 || rate < 1 || dim < 1 || dim > HSC_MAX_EMBEDDING_DIM)
        fputs(USAGE, stderr), exit(2);
    struct it t;
    it_setup(&t);
    int port = 21000 + (int)(getpid() % 10000);
    int serial = !strcmp(input, "content_enriched");
    if (!serial && strcmp(input, "content_ingested"))
        fprintf(stderr, "--input: content_enriched or content_ingested\n"), exit(2);
    char ds[64], mp[48], in[64];
    snprintf(in, sizeof(in), "embed_index.input=%s", input);
    snprintf(ds, sizeof(ds), "milvus.dimension=%d", dim);
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    const char *lg = getenv("BENCH_LOG") ? getenv("BENCH_LOG") : "log.level=warn";
    const char *ia[] = {"--set", "ingest.group=bench-fresh-ingest", "--set", lg, NULL};
    const char *ea[] = {"--set", "enrich.group=bench-fresh-enrich", "--set", lg, NULL};
    const char *xa[] = {
        "--set", "embed_index.group=bench-fresh-index", "--set", ds, "--set", mp, "--set", lg,
        NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ia);
    pid_t enrich = it_spawn(&t, "hsc-enrich", ea);
    pid_t index = it_spawn(&t, "hsc-embed-index", xa);

    /* warm-up: one title through every stage, so group joins and the collection's
     * creation and load are not counted */
    char errstr[256];
    long failed = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", t.brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "1", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, &failed);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p)
        fprintf(stderr, "producer: %s\n", errstr), exit(1);
    const char *events = it_topic(&t, "content_events");
    float *emb = malloc(sizeof(float) * (size_t)dim);
    static const char *GENRES[] = {"drama", "comedy", "thriller", "documentary", "horror"};
    srand(42);
    hsc_content_event ev = {.v = 1, .version = 1, .has = HSC_HAS_TS, .dim = (size_t)dim};
    char id[32], title[64];
    ev.id = id;
    ev.title = title;
    ev.embedding = emb;
    char *g[1];
    ev.genres.v = g;
    ev.genres.n = 1;
    hsc_err err = {0};
#define SEND(idstr)                                                                                \
    do {                                                                                           \
        for (int d = 0; d < dim; d++)                                                              \
            emb[d] = (float)rand() / (float)RAND_MAX - 0.5f;                                       \
        char *buf;                                                                                 \
        size_t len;                                                                                \
        if (hsc_codec_encode_content(&ev, &buf, &len, &err))                                       \
            fprintf(stderr, "encode: %s\n", err.msg), exit(1);                                     \
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(events),                                      \
                                 RD_KAFKA_V_KEY(idstr, strlen(idstr)), RD_KAFKA_V_VALUE(buf, len), \
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),                         \
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)                 \
            rd_kafka_poll(p, 10);                                                                  \
        rd_kafka_poll(p, 0);                                                                       \
    } while (0)
    snprintf(id, sizeof(id), "warmup");
    snprintf(title, sizeof(title), "Warm-up");
    g[0] = (char *)GENRES[0];
    ev.ts = hsc_now_ms();
    SEND(id);
    rd_kafka_flush(p, 10000);
    long long wend = it_ms() + 240000;
    while (it_milvus_count(&t) < 1 && it_ms() < wend)
        usleep(200000);
    if (it_milvus_count(&t) < 1)
        fprintf(stderr, "warm-up title never reached Milvus\n"), exit(1);
    /* the warm-up record must be on the indexed topic too before the clock starts */
    struct it_record *wr;
    size_t wn = it_consume_all(&t, it_topic(&t, "content_indexed"), 1, 60000, &wr);
    it_records_free(wr, wn);

    struct baseline base = {.n = n};
    base.ts = calloc((size_t)n, sizeof(long long));
    base.arrived = calloc((size_t)n, sizeof(long long));
    base.rk = reader_new(t.brokers, events, RD_KAFKA_OFFSET_END);
    sleep(2); /* assigned and positioned at the end */
    pthread_t th;
    pthread_create(&th, NULL, read_events, &base);
    rd_kafka_t *ix = reader_new(t.brokers, it_topic(&t, "content_indexed"), RD_KAFKA_OFFSET_END);
    sleep(1);

    long long t0 = hsc_now_ms();
    for (long i = 0; i < n; i++) {
        long long due = t0 + i * 1000 / rate;
        long long now;
        while ((now = hsc_now_ms()) < due) {
            rd_kafka_poll(p, 0);
            usleep((useconds_t)((due - now) * 1000 > 2000 ? 2000 : (due - now) * 1000));
        }
        snprintf(id, sizeof(id), "f%06ld", i);
        snprintf(title, sizeof(title), "Fresh title %ld", i);
        g[0] = (char *)GENRES[i % 5];
        ev.ts = hsc_now_ms();
        base.ts[i] = ev.ts;
        SEND(id);
    }
    long long t_sent = hsc_now_ms();
    rd_kafka_flush(p, 30000);

    /* each title's indexed record */
    long long *indexed = calloc((size_t)n, sizeof(long long)), *pub = calloc((size_t)n, 8);
    long got = 0, not_indexed = 0, dup = 0, bad = 0;
    long long end = it_ms() + (long long)timeout_s * 1000;
    while (got + not_indexed < n && it_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ix, 100);
        if (!m)
            continue;
        long i = m->err ? -1 : title_index(m->key, m->key_len, n);
        hsc_indexed_record r;
        if (i >= 0 && !hsc_codec_decode_indexed(m->payload, m->len, &r, &err)) {
            if (indexed[i])
                dup++;
            else if (!r.indexed)
                not_indexed++, indexed[i] = -1;
            else
                indexed[i] = r.ts, pub[i] = r.published_ts, got++;
            hsc_indexed_record_clear(&r);
        } else if (i >= 0) {
            bad++;
        }
        rd_kafka_message_destroy(m);
    }
    long long t_done = hsc_now_ms();
    __atomic_store_n(&base.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);

    long long *ingested = calloc((size_t)n, 8), *enriched = calloc((size_t)n, 8);
    topic_times(&t, "content_ingested", n, ingested);
    topic_times(&t, "content_enriched", n, enriched);

    long long *fresh = malloc(sizeof(long long) * (size_t)n), *s1 = malloc(8 * (size_t)n),
              *s2 = malloc(8 * (size_t)n), *s3 = malloc(8 * (size_t)n), *kb = malloc(8 * (size_t)n);
    long nf = 0, n1 = 0, n2 = 0, n3 = 0, nk = 0, pub_mismatch = 0;
    for (long i = 0; i < n; i++) {
        if (base.arrived[i])
            kb[nk++] = base.arrived[i] - base.ts[i];
        if (indexed[i] <= 0)
            continue;
        pub_mismatch += pub[i] != base.ts[i];
        fresh[nf++] = indexed[i] - base.ts[i];
        if (ingested[i])
            s1[n1++] = ingested[i] - base.ts[i];
        if (ingested[i] && enriched[i])
            s2[n2++] = enriched[i] - ingested[i];
        long long from = serial ? enriched[i] : ingested[i];
        if (from)
            s3[n3++] = indexed[i] - from;
    }
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    long st = 0;
    char *metrics = it_http("GET", url, NULL, &st);
    const char *hc = metrics ? strstr(metrics, "\nhsc_content_freshness_seconds_count ") : NULL;
    long long hist_count = hc ? atoll(hc + strlen("\nhsc_content_freshness_seconds_count ")) : -1;

    time_t now_t = time(NULL);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now_t));
    printf("bench_freshness --titles %ld --rate %ld --dim %d --input %s  (%s)\n", n, rate, dim,
           input, date);
    printf("  sent %ld titles in %.2f s (%.0f/s); last indexed %.2f s after the first send\n", n,
           (double)(t_sent - t0) / 1e3, (double)n * 1e3 / (double)(t_sent - t0 + 1),
           (double)(t_done - t0) / 1e3);
    printf("  indexed %ld, not indexed %ld, missing %ld, duplicates %ld, undecodable %ld, "
           "delivery failures %ld, published_ts differing from ts %ld\n",
           got, not_indexed, n - got - not_indexed, dup, bad, failed, pub_mismatch);
    double fp99 = pct("freshness (publish -> searchable)", fresh, nf);
    pct("  publish -> ingested (hsc-ingest)", s1, n1);
    pct(serial ? "  ingested -> enriched (hsc-enrich)" : "  (beside) ingested -> enriched (graph)",
        s2, n2);
    pct(serial ? "  enriched -> searchable (embed-index)"
               : "  ingested -> searchable (embed-index)",
        s3, n3);
    double kp99 = pct("Kafka publish -> consume (baseline)", kb, nk);
    printf("  hsc_content_freshness_seconds_count on hsc-embed-index: %lld (titles indexed + 1 "
           "warm-up: %ld)\n",
           hist_count, got + 1);
    for (int k = 0; k < 2; k++) {
        const char *stage = k ? "embed_index" : "upstream";
        char sum[128], cnt[128];
        snprintf(sum, sizeof(sum), "\nhsc_content_stage_lag_seconds_sum{stage=\"%s\"} ", stage);
        snprintf(cnt, sizeof(cnt), "\nhsc_content_stage_lag_seconds_count{stage=\"%s\"} ", stage);
        const char *ps = metrics ? strstr(metrics, sum) : NULL,
                   *pc = metrics ? strstr(metrics, cnt) : NULL;
        if (ps && pc)
            printf("  embed-index's hsc_content_stage_lag_seconds{stage=\"%s\"}: mean %.3f s over "
                   "%lld\n",
                   stage, atof(ps + strlen(sum)) / (double)atoll(pc + strlen(cnt)),
                   atoll(pc + strlen(cnt)));
    }
    printf("HEADLINE: freshness p99 %.3f s = %.0fx Kafka's own publish -> consume p99 (%.3f s), "
           "at %ld titles/s\n",
           fp99, kp99 > 0 ? fp99 / kp99 : NAN, kp99, rate);
    free(metrics);
    int rc = (got == n && hist_count == got + 1) ? 0 : 1;

    rd_kafka_consumer_close(ix);
    rd_kafka_destroy(ix);
    rd_kafka_consumer_close(base.rk);
    rd_kafka_destroy(base.rk);
    rd_kafka_destroy(p);
    it_stop(index, SIGTERM, 30000);
    it_stop(enrich, SIGTERM, 30000);
    it_stop(ingest, SIGTERM, 30000);
    it_teardown(&t);
    free(emb);
    free(base.ts);
    free(base.arrived);
    free(indexed);
    free(pub);
    free(ingested);
    free(enriched);
    free(fresh);
    free(s1);
    free(s2);
    free(s3);
    free(kb);
    return rc;
}
