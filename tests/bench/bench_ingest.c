/*
 * bench_ingest: end-to-end ingest throughput and latency against the real
 * stack. Produces N content events at a target rate (open loop: the send
 * schedule does not wait for the pipeline), with each event's ts set to its
 * send time, runs hsc-ingest, and reports per-event latency from send to
 * commit in PostgreSQL (updated_at - ts) as percentiles, and throughput.
 *
 *   bench_ingest [--events N] [--rate PER_S (0 = as fast as possible)] [--dim D]
 *                [--batch-max B]
 * Needs the variables of .local/stack.env.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
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
        ev.ts = hsc_now_ms();
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
    char *stats = it_pg_text(
        &t, "SELECT format('%s %s %s %s %s', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY "
            "l)::numeric, 1),"
            " round(percentile_cont(0.95) WITHIN GROUP (ORDER BY l)::numeric, 1),"
            " round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 1), "
            "round(max(l)::numeric, 1),"
            " round((extract(epoch FROM max(updated_at)) * 1000 - min(event_ts))::numeric))"
            " FROM (SELECT extract(epoch FROM updated_at) * 1000 - event_ts AS l, updated_at, "
            "event_ts FROM content) x");
    double p50, p95, p99, max, span;
    sscanf(stats, "%lf %lf %lf %lf %lf", &p50, &p95, &p99, &max, &span);
    printf("bench_ingest: %ld events, dim %d, target rate %s, batch_max %s\n", events, dim,
           rate ? "open loop" : "unlimited", batch);
    if (rate)
        printf("  target rate:   %ld events/s (sent in %.1f s)\n", rate, sent_ms / 1000.0);
    printf("  throughput:    %.0f events/s (first send to last commit: %.1f s)\n",
           events / (span / 1000.0), span / 1000.0);
    printf("  latency send->stored (ms): p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", p50, p95, p99,
           max);
    free(stats);
    free(emb);
    rd_kafka_destroy(rk);
    it_stop(ingest, SIGTERM, 30000);
    it_teardown(&t);
    return 0;
}
