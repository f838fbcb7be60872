/*
 * bench_pipeline: N new titles published onto a catalogue of C titles,
 * through the real stack (hsc-ingest -> PostgreSQL, hsc-enrich -> Neo4j,
 * hsc-embed-index -> Milvus), on private topics, database and collection
 * (the harness's); Neo4j is shared and wiped first, as the integration
 * tests do.
 *
 *   1. The catalogue: `hsc sample content --count C+N`, the first C lines
 *      published and waited for in every store (its own titles/s printed).
 *   2. The N new titles published; each title's arrival in each store is the
 *      timestamp of the record its stage forwards after the write
 *      (hsc.content.ingested after PostgreSQL, .enriched after Neo4j,
 *      .indexed after Milvus), against its record's timestamp on
 *      hsc.content.events (the publish). Prints per store: when all N had
 *      arrived, titles/s, and arrival-latency p50/p95/p99/max; titles/s end
 *      to end, and per tenth of the titles at the last stage (is the rate
 *      flat?); CPU-seconds per title of each worker and each server process
 *      (/proc: utime+stime over phase 2); peak RSS (VmHWM) of each worker.
 *
 * With --stages enrich, only hsc-enrich runs: both phases are published
 * straight onto hsc.content.ingested (hsc-enrich alone into a graph of C).
 * 3. The raw Milvus upsert (all stages only): once the workers have stopped,
 *      the same N vectors are upserted straight into a scratch collection
 *      through hsc's Milvus client, in batches of embed_index.batch_max (1000),
 *      one batch in flight, each cut into milvus.write_chunk rows sent at once,
 *      as hsc-embed-index writes them; the headline is end-to-end titles/s
 *      over that rate.
 *
 *   bench_pipeline [--catalogue C (100000)] [--titles N (100000)] [--dim D (384)]
 *                  [--stages all|enrich] [--enrich-batch B (2000)] [--wait S (1800)]
 *                  [--settle S (900): at most S s for Milvus to index the catalogue]
 *                  [--no-raw (skip step 3: a 1M load's raw upsert would take 15 min)]
 * Needs the variables of .local/stack.env; hold the stack lock.
 */
#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "bench_args.h"
#include "bench_proc.h"
#include "bench_segments.h"
#include "config.h"
#include "it_common.h"
#include "milvus.h"
#include "util.h"

extern char **environ;

static long C = 100000, N = 100000;

/* Per new title: publish time and arrival in each store (ms, 0 = not yet). */
enum { PUB, PG, NEO, MIL, NSTAGE };
static long long (*at)[NSTAGE];

static long new_index(const char *key, size_t len)
{
    if (len < 7 || len > 10 || key[0] != 't')
        return -1;
    long v = 0;
    for (size_t i = 1; i < len; i++) {
        if (!isdigit((unsigned char)key[i]))
            return -1;
        v = v * 10 + (key[i] - '0');
    }
    v -= C + 1;
    return v >= 0 && v < N ? v : -1;
}

/* Reads topic from the start until every new title was seen on it (or the deadline). */
static long read_topic(const char *topic, int stage, long long deadline)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", getenv("HSC_KAFKA_BROKERS"), errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "bench-pipeline-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    long seen = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 && md->topic_cnt) {
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_metadata_destroy(md);
        for (long i = 0; i < N; i++)
            seen += at[i][stage] != 0;
        while (seen < N && it_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
            if (!m)
                continue;
            long i = m->err ? -1 : new_index(m->key, m->key_len);
            if (i >= 0 && !at[i][stage]) {
                at[i][stage] = rd_kafka_message_timestamp(m, NULL);
                seen++;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return seen;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void report_stage(const char *name, int stage, long long t0)
{
    long long *lat = malloc((size_t)N * sizeof(long long)), last = 0;
    long n = 0;
    for (long i = 0; i < N; i++) {
        if (!at[i][stage] || !at[i][PUB])
            continue;
        lat[n++] = at[i][stage] - at[i][PUB];
        if (at[i][stage] > last)
            last = at[i][stage];
    }
    if (!n) {
        printf("  %-10s none arrived\n", name);
        free(lat);
        return;
    }
    qsort(lat, (size_t)n, sizeof(long long), cmp_ll);
    double all = (double)(last - t0) / 1000.0;
    printf("  %-10s %7ld/%ld arrived, all by %7.1f s (%6.0f titles/s); latency ms p50 %lld "
           "p95 %lld p99 %lld max %lld\n",
           name, n, N, all, (double)n / all, lat[n / 2], lat[(size_t)(n * 95 / 100)],
           lat[(size_t)(n * 99 / 100)], lat[n - 1]);
    free(lat);
}

/* Throughput over time: how fast each tenth of the new titles arrived in stage. */
static void report_tenths(const char *name, int stage, long long t0)
{
    long long *t = malloc((size_t)N * sizeof(long long));
    long n = 0;
    for (long i = 0; i < N; i++)
        if (at[i][stage])
            t[n++] = at[i][stage];
    if (n < 10) {
        free(t);
        return;
    }
    qsort(t, (size_t)n, sizeof(long long), cmp_ll);
    printf("  %-10s titles/s by tenth of the titles:", name);
    long long prev = t0;
    for (int k = 1; k <= 10; k++) {
        long long at_k = t[n * k / 10 - 1];
        double s = (double)(at_k - prev) / 1000.0;
        printf(" %.0f", s > 0 ? (double)(n / 10) / s : 0.0);
        prev = at_k;
    }
    printf("\n");
    free(t);
}

/* The raw upsert's state: the events still to send, and the loop it runs on. */
struct raw {
    struct ev_loop *loop;
    hsc_milvus *m;
    hsc_content_event *evs;
    long n, sent, batch;
    int failed;
};

static void raw_next(struct raw *r);

static void raw_done(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct raw *r = arg;
    if (!res) {
        fprintf(stderr, "raw upsert: %s\n", err ? err->msg : "failed");
        r->failed = 1;
        ev_break(r->loop, EVBREAK_ONE);
        return;
    }
    raw_next(r);
}

static void raw_next(struct raw *r)
{
    if (r->sent >= r->n) {
        ev_break(r->loop, EVBREAK_ONE);
        return;
    }
    long k = r->n - r->sent < r->batch ? r->n - r->sent : r->batch;
    const hsc_content_event **v = malloc(sizeof(*v) * (size_t)k);
    for (long i = 0; i < k; i++)
        v[i] = &r->evs[r->sent + i];
    r->sent += k;
    hsc_err err = {0};
    if (hsc_milvus_upsert(r->m, v, (size_t)k, raw_done, r, &err)) {
        fprintf(stderr, "raw upsert: %s\n", err.msg);
        r->failed = 1;
        ev_break(r->loop, EVBREAK_ONE);
    }
    free(v);
}

static void raw_settled(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct raw *r = arg;
    if (!res) {
        fprintf(stderr, "raw upsert collection: %s\n", err ? err->msg : "failed");
        r->failed = 1;
    }
    ev_break(r->loop, EVBREAK_ONE);
}

/*
 * Upserts the id and embedding of every line of path into a scratch collection
 * (the namespace's collection + "_raw", dropped afterwards), the way
 * hsc-embed-index writes; returns vectors/s, or -1.
 */
static double raw_upsert(const char *path, const char *collection, int dim)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    char schema[1024], coll[160];
    struct hsc_milvus_settings ms;
    if (!cfg || hsc_config_apply_env(cfg, environ, &err)) {
        fprintf(stderr, "raw upsert: config: %s\n", err.msg);
        hsc_config_free(cfg);
        return -1;
    }
    hsc_milvus_settings_load(cfg, &ms, schema, sizeof(schema));
    snprintf(coll, sizeof(coll), "%s_raw", collection);
    ms.collection = coll;
    ms.dim = dim;
    struct raw r = {.loop = ev_loop_new(0), .batch = hsc_config_int(cfg, "embed_index.batch_max")};
    FILE *f = fopen(path, "r");
    size_t cap = 0;
    char *line = NULL;
    r.evs = calloc((size_t)N, sizeof(*r.evs));
    while (f && r.evs && r.n < N && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL), *e = json_object_get(o, "embedding");
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id && json_array_size(e) == (size_t)dim) {
            hsc_content_event *ev = &r.evs[r.n++];
            ev->id = strdup(id);
            ev->op = HSC_OP_UPSERT;
            ev->dim = (size_t)dim;
            ev->embedding = malloc(sizeof(float) * (size_t)dim);
            for (int k = 0; k < dim; k++)
                ev->embedding[k] = (float)json_number_value(json_array_get(e, (size_t)k));
        }
        json_decref(o);
    }
    free(line);
    if (f)
        fclose(f);
    hsc_http *http = hsc_http_new(r.loop, &err);
    double rate = -1;
    if (http && (r.m = hsc_milvus_new(r.loop, http, &ms, &err)) && r.n == N) {
        /* from an empty collection, created before the clock starts */
        if (!hsc_milvus_drop(r.m, raw_settled, &r, &err))
            ev_run(r.loop, 0);
        if (!hsc_milvus_ensure(r.m, raw_settled, &r, &err))
            ev_run(r.loop, 0);
        r.failed = 0; /* the drop of a collection that was not there */
        long long t0 = it_ms();
        raw_next(&r);
        ev_run(r.loop, 0);
        double secs = (double)(it_ms() - t0) / 1000.0;
        if (!r.failed && secs > 0)
            rate = (double)N / secs;
        if (!hsc_milvus_drop(r.m, raw_settled, &r, &err))
            ev_run(r.loop, 0);
    } else {
        fprintf(stderr, "raw upsert: %s (%ld of %ld vectors read)\n",
                err.msg[0] ? err.msg : "no client", r.n, N);
    }
    hsc_milvus_free(r.m);
    hsc_http_free(http);
    for (long i = 0; i < r.n; i++)
        free(r.evs[i].id), free(r.evs[i].embedding);
    free(r.evs);
    ev_loop_destroy(r.loop);
    hsc_config_free(cfg);
    return rate;
}

static int publish(struct it *t, const char *path, int onto_ingested)
{
    char *out;
    const char *args[] = {"publish", "--topic", "content", "--quiet", path, NULL};
    /* The content topic named as the ingested one: hsc-enrich's input, hsc-ingest skipped. */
    if (onto_ingested)
        setenv("HSC_TOPICS_CONTENT_EVENTS", "hsc.content.ingested", 1);
    int rc = it_run(t, "hsc", args, &out);
    unsetenv("HSC_TOPICS_CONTENT_EVENTS");
    if (rc)
        fprintf(stderr, "hsc publish: %s\n", out);
    free(out);
    return rc;
}

static const char USAGE[] =
    "Usage: bench_pipeline [--catalogue C (100000)] [--titles N (100000)] [--dim D (384)]\n"
    "                      [--stages all|enrich] [--enrich-batch B (2000)] [--wait S (1800)]\n"
    "                      [--settle S (900)] [--no-raw]\n"
    "N new titles published onto a catalogue of C through hsc-ingest, hsc-enrich and\n"
    "hsc-embed-index: per-store arrival latency, titles/s, CPU and RSS per worker.\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    int dim = 384, enrich_only = 0, eb = 2000, wait_s = 1800, no_raw = 0, settle_s = 900;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--catalogue") && i + 1 < argc)
            C = atol(argv[++i]);
        else if (!strcmp(argv[i], "--titles") && i + 1 < argc)
            N = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
            dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--enrich-batch") && i + 1 < argc)
            eb = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--wait") && i + 1 < argc)
            wait_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--stages") && i + 1 < argc)
            enrich_only = !strcmp(argv[++i], "enrich");
        else if (!strcmp(argv[i], "--settle") && i + 1 < argc)
            settle_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-raw"))
            no_raw = 1;
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (N <= 0 || C < 0 || C + N > 99999999) {
        fprintf(stderr, "bench_pipeline: C + N must be 1..99999999 (ids t000001..t99999999)\n");
        return 2;
    }
    at = calloc((size_t)N, sizeof(*at));
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    char count[24], dims[16], ebs[64], mdim[64];
    snprintf(count, sizeof(count), "%ld", C + N);
    snprintf(dims, sizeof(dims), "%d", enrich_only ? 4 : dim);
    snprintf(ebs, sizeof(ebs), "enrich.batch_max=%d", eb);
    snprintf(mdim, sizeof(mdim), "milvus.dimension=%d", dim);
    long long g0 = it_ms();
    char *all = it_sample_dim(&t, "content", count, count, dims), *cat = NULL, *fresh = NULL;
    it_split_lines(all, (int)C, &cat, &fresh);
    printf("bench_pipeline: catalogue %ld, new %ld, dim %d, stages %s, enrich.batch_max %d "
           "(sample written in %.1f s)\n",
           C, N, dim, enrich_only ? "enrich" : "all", eb, (double)(it_ms() - g0) / 1000.0);

    const char *ia[] = {"--set", "ingest.group=bench-pl-ingest", NULL};
    const char *ea[] = {"--set", "enrich.group=bench-pl-enrich", "--set", ebs, NULL};
    const char *xa[] = {"--set", "embed_index.group=bench-pl-ei",      "--set", mdim,
                        "--set", "embed_index.input=content_enriched", NULL};
    pid_t ingest = enrich_only ? 0 : it_spawn(&t, "hsc-ingest", ia);
    pid_t enrich = it_spawn(&t, "hsc-enrich", ea);
    pid_t indexer = enrich_only ? 0 : it_spawn(&t, "hsc-embed-index", xa);
    const char *last_group = enrich_only ? "bench-pl-enrich" : "bench-pl-ei";
    const char *last_topic = it_topic(&t, enrich_only ? "content_ingested" : "content_enriched");
    int failed = 0;

    if (C > 0) {
        long long c0 = it_ms();
        /* Stage by stage, in order: a group is caught up on a topic nothing was written to
         * yet, so waiting on the last stage alone returned while the catalogue still flowed
         * (and its work was counted in phase 2). */
        if (publish(&t, cat, enrich_only) ||
            (!enrich_only && it_wait_caught_up(&t, "bench-pl-ingest",
                                               it_topic(&t, "content_events"), wait_s * 1000)) ||
            (!enrich_only && it_wait_caught_up(&t, "bench-pl-enrich",
                                               it_topic(&t, "content_ingested"), wait_s * 1000)) ||
            it_wait_caught_up(&t, last_group, last_topic, wait_s * 1000)) {
            fprintf(stderr, "the catalogue did not arrive within %d s\n", wait_s);
            failed = 1;
        }
        double s = (double)(it_ms() - c0) / 1000.0;
        printf("catalogue: %ld titles in every store in %.1f s (%.0f titles/s onto an empty "
               "graph)\n",
               C, s, (double)C / s);
        /* Phase 2 goes onto an existing catalogue, which is indexed: the catalogue's own
         * HNSW builds would otherwise run (and be counted) in phase 2. */
        if (!enrich_only && !failed)
            bench_wait_milvus_settled(settle_s);
    }

    pid_t workers[] = {ingest, enrich, indexer};
    const char *wname[] = {"hsc-ingest", "hsc-enrich", "hsc-embed-index"};
    double wcpu0[3], scpu0[BENCH_NSERVERS], scpu1[BENCH_NSERVERS];
    for (int i = 0; i < 3; i++)
        wcpu0[i] = workers[i] ? bench_cpu_of(workers[i]) : 0;
    bench_servers_cpu(scpu0);
    long long t0 = it_ms();
    if (!failed && publish(&t, fresh, enrich_only))
        failed = 1;
    long long deadline = t0 + (long long)wait_s * 1000;
    long done = 0;
    if (!failed) {
        done = read_topic(it_topic(&t, enrich_only ? "content_enriched" : "content_indexed"),
                          enrich_only ? NEO : MIL, deadline);
        if (!enrich_only)
            read_topic(it_topic(&t, "content_enriched"), NEO, deadline);
    }
    double phase = (double)(it_ms() - t0) / 1000.0;
    bench_servers_cpu(scpu1);
    double wcpu1[3];
    long hwm[3];
    for (int i = 0; i < 3; i++) {
        wcpu1[i] = workers[i] ? bench_cpu_of(workers[i]) : 0;
        hwm[i] = workers[i] ? bench_hwm_kb(workers[i]) : 0;
    }
    if (!failed && !enrich_only) {
        read_topic(it_topic(&t, "content_events"), PUB, deadline + 60000);
        read_topic(it_topic(&t, "content_ingested"), PG, deadline + 60000);
    } else if (!failed) {
        /* Published straight onto the ingested topic: that record is the publish. */
        read_topic(it_topic(&t, "content_ingested"), PUB, deadline + 60000);
    }
    long long first = 0;
    for (long i = 0; i < N; i++)
        if (at[i][PUB] && (!first || at[i][PUB] < first))
            first = at[i][PUB];
    printf("new titles: %ld of %ld through in %.1f s (from the first publish)\n", done, N, phase);
    if (!enrich_only)
        report_stage("postgresql", PG, first);
    report_stage("neo4j", NEO, first);
    if (!enrich_only)
        report_stage("milvus", MIL, first);
    double e2e = -1;
    if (done == N) {
        long long last = 0;
        for (long i = 0; i < N; i++)
            last = at[i][enrich_only ? NEO : MIL] > last ? at[i][enrich_only ? NEO : MIL] : last;
        e2e = (double)N / ((double)(last - first) / 1000.0);
        printf("end to end: %.0f titles/s (%ld titles onto %ld)\n", e2e, N, C);
        report_tenths(enrich_only ? "neo4j" : "milvus", enrich_only ? NEO : MIL, first);
    } else {
        printf("end to end: did not finish (%ld of %ld)\n", done, N);
        failed = 1;
    }
    printf("CPU-seconds per title (phase 2) and peak RSS:\n");
    for (int i = 0; i < 3; i++)
        if (workers[i])
            printf("  %-16s %.6f s/title, peak RSS %.1f MB\n", wname[i],
                   (wcpu1[i] - wcpu0[i]) / (double)N, (double)hwm[i] / 1024.0);
    for (size_t s = 0; s < BENCH_NSERVERS; s++)
        printf("  %-16s %.6f s/title (server)\n", BENCH_SERVERS[s].name,
               (scpu1[s] - scpu0[s]) / (double)N);

    for (int i = 0; i < 3; i++)
        if (workers[i])
            it_stop(workers[i], SIGTERM, 60000);
    if (!enrich_only && e2e > 0 && !no_raw) {
        double raw = raw_upsert(fresh, t.collection, dim);
        if (raw > 0)
            printf("raw Milvus upsert of the same %ld vectors (batches of the stage's size, "
                   "workers stopped): %.0f vectors/s\n"
                   "headline: end to end %.0f titles/s / raw Milvus upsert %.0f vectors/s = "
                   "%.2fx\n",
                   N, raw, e2e, raw, e2e / raw);
        else
            printf("raw Milvus upsert: failed (no headline)\n");
    }
    remove(all);
    remove(cat);
    remove(fresh);
    free(all);
    free(cat);
    free(fresh);
    free(at);
    it_teardown(&t);
    return failed;
}
