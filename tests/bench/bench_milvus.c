/*
 * bench_milvus: the Milvus client against the real server, on clustered data.
 * Generates N unit vectors in C Gaussian clusters (a random unit centre per
 * cluster plus Gaussian noise of norm --spread, normalised again), loads them
 * through hsc_milvus_upsert in batches (per-batch latency and the raw upsert
 * rate), waits until a count query sees every vector, then runs searches at
 * k=10 with a fixed number in flight, with and without a scalar filter.
 * Each query is a noisy copy of a stored vector (noise of norm --query-noise,
 * normalised), never a stored vector itself. The exact top 10 of every query
 * (brute-force COSINE over the same vectors and the same filter, computed
 * here) gives recall@10 beside the latency percentiles.
 *
 *   bench_milvus [--vectors N] [--dim D] [--batch B] [--searches S] [--concurrency C]
 *                [--clusters C (200)] [--spread X (0.5)] [--query-noise Q (0.5)]
 *                [--ef N[,N...] (64)]  (HNSW beam, as milvus.ef: each value runs both searches)
 *                [--index-wait S] [--milvus-metrics URL] [--keep]
 * Before the searches it prints how many entities Milvus holds in sealed segments with
 * the HNSW index built and in growing ones (searched without it), from Milvus's metrics
 * endpoint (--milvus-metrics, default http://127.0.0.1:9091/metrics). With --index-wait S
 * the unfiltered searches run once at once, then again after waiting up to S seconds for
 * every sealed segment to have its index (growing segments are sealed by size or after
 * Milvus's idle time, 10 minutes on 2.3, so recently written vectors stay unindexed).
 * --keep keeps the collection afterwards.
 * Needs HSC_MILVUS_URL (source .local/stack.env).
 */
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"
#include "bench_segments.h"
#include "harness.h"
#include "http.h"
#include "milvus.h"
#include "util.h"

struct bench {
    struct ev_loop *loop;
    hsc_milvus *m;
    int dim, batch, conc, k, ef;
    long vectors, searches;
    /* load */
    long loaded;
    hsc_content_event *evs;
    const hsc_content_event **ptrs;
    double *lat;
    long nlat;
    int64_t t0;
    /* the data: every vector, unit length, and the queries */
    float *data, *queries;
    int clusters;
    double spread, qnoise;
    /* search */
    long sent, done;
    long *target; /* the stored vector each query is a noisy copy of */
    long *got;    /* searches x k: the ids Milvus returned, as indices (-1: none) */
    const char *filter;
    int failed;
};

static uint64_t rng = 88172645463325252ull;

static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

/* A standard normal deviate (Box-Muller). */
static double gauss(void)
{
    return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand());
}

static void normalise(float *v, int dim)
{
    double n = 0;
    for (int k = 0; k < dim; k++)
        n += (double)v[k] * v[k];
    n = sqrt(n);
    for (int k = 0; k < dim; k++)
        v[k] = (float)(v[k] / n);
}

/* out = normalise(base + noise of expected norm `norm`). */
static void noisy(const float *base, double norm, float *out, int dim)
{
    double s = norm / sqrt((double)dim);
    for (int k = 0; k < dim; k++)
        out[k] = (float)(base[k] + s * gauss());
    normalise(out, dim);
}

/* The clustered data set: a random unit centre per cluster, each vector a noisy copy of one. */
static void make_data(struct bench *b)
{
    float *centres = malloc(sizeof(float) * (size_t)b->clusters * (size_t)b->dim);
    for (long c = 0; c < b->clusters; c++) {
        for (int k = 0; k < b->dim; k++)
            centres[c * b->dim + k] = (float)gauss();
        normalise(centres + c * b->dim, b->dim);
    }
    b->data = malloc(sizeof(float) * (size_t)b->vectors * (size_t)b->dim);
    for (long i = 0; i < b->vectors; i++)
        noisy(centres + (long)(urand() * b->clusters) * b->dim, b->spread, b->data + i * b->dim,
              b->dim);
    free(centres);
    b->queries = malloc(sizeof(float) * (size_t)b->searches * (size_t)b->dim);
    b->target = malloc(sizeof(long) * (size_t)b->searches);
    for (long q = 0; q < b->searches; q++) {
        b->target[q] = (long)(urand() * (double)b->vectors);
        noisy(b->data + b->target[q] * b->dim, b->qnoise, b->queries + q * b->dim, b->dim);
    }
}

/* The scalar fields of vector i, and the filter the filtered searches use. */
static int year_of(long i)
{
    return 1950 + (int)(i % 75);
}

static int maturity_of(long i)
{
    return (int)(i % 19);
}

static int passes_filter(long i)
{
    return maturity_of(i) <= 12 && year_of(i) >= 1980;
}

static float dot(const float *a, const float *b, int dim)
{
    float s[8] = {0};
    int k = 0;
    for (; k + 8 <= dim; k += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[k + j] * b[k + j];
    for (; k < dim; k++)
        s[0] += a[k] * b[k];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The exact top k of query q by COSINE (dot of unit vectors), optionally filtered. */
static void exact_top(const struct bench *b, long q, int filtered, long *top, int k)
{
    float best[64];
    int n = 0;
    const float *v = b->queries + q * b->dim;
    for (long i = 0; i < b->vectors; i++) {
        if (filtered && !passes_filter(i))
            continue;
        float s = dot(v, b->data + i * b->dim, b->dim);
        if (n == k && s <= best[k - 1])
            continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && best[j - 1] < s) {
            best[j] = best[j - 1];
            top[j] = top[j - 1];
            j--;
        }
        best[j] = s;
        top[j] = i;
    }
    for (int j = n; j < k; j++)
        top[j] = -1;
}

/* Mean recall@k of the searches just run against the exact answers; *exact_ms gets the
 * mean time of one exact search here (one thread). */
static double recall_at_k(const struct bench *b, int filtered, double *exact_ms)
{
    long hit = 0, want = 0;
    long top[64];
    int64_t t0 = hsc_mono_us();
    for (long q = 0; q < b->searches; q++) {
        exact_top(b, q, filtered, top, b->k);
        for (int j = 0; j < b->k; j++) {
            if (top[j] < 0)
                continue;
            want++;
            for (int g = 0; g < b->k; g++)
                if (b->got[q * b->k + g] == top[j]) {
                    hit++;
                    break;
                }
        }
    }
    *exact_ms = (double)(hsc_mono_us() - t0) / 1000.0 / (double)b->searches;
    return want ? (double)hit / (double)want : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *lat, long n, double seconds, const char *unit,
                   double count)
{
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
#define PCT(p) (n ? lat[(long)((p) / 100.0 * (double)(n - 1) + 0.5)] : 0.0)
    printf("%-28s n=%-6ld p50=%7.2f ms  p95=%7.2f ms  p99=%7.2f ms  max=%7.2f ms  %9.0f %s\n", what,
           n, PCT(50), PCT(95), PCT(99), n ? lat[n - 1] : 0.0, count / seconds, unit);
#undef PCT
}

static void die_on(const hsc_err *err, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

static void load_next(struct bench *b);

struct batch_ctx {
    struct bench *b;
    int64_t start;
};

static void on_upserted(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct batch_ctx *c = arg;
    struct bench *b = c->b;
    if (!res)
        die_on(err, "upsert");
    b->lat[b->nlat++] = (double)(hsc_mono_us() - c->start) / 1000.0;
    free(c);
    load_next(b);
}

static void load_next(struct bench *b)
{
    if (b->loaded >= b->vectors) {
        ev_break(b->loop, EVBREAK_ONE);
        return;
    }
    long n = b->vectors - b->loaded < b->batch ? b->vectors - b->loaded : b->batch;
    for (long i = 0; i < n; i++) {
        hsc_content_event *ev = &b->evs[i];
        snprintf(ev->id, 32, "b%08ld", b->loaded + i);
        memcpy(ev->embedding, b->data + (b->loaded + i) * b->dim, sizeof(float) * (size_t)b->dim);
        ev->has = HSC_HAS_YEAR | HSC_HAS_MATURITY;
        ev->year = year_of(b->loaded + i);
        ev->maturity = maturity_of(b->loaded + i);
        b->ptrs[i] = ev;
    }
    b->loaded += n;
    struct batch_ctx *c = malloc(sizeof(*c));
    c->b = b;
    c->start = hsc_mono_us();
    hsc_err err = {0};
    if (hsc_milvus_upsert(b->m, b->ptrs, (size_t)n, on_upserted, c, &err))
        die_on(&err, "upsert");
}

static void search_one(struct bench *b);

struct search_ctx {
    struct bench *b;
    long q;
    int64_t start;
};

static void on_searched(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct search_ctx *c = arg;
    struct bench *b = c->b;
    if (!res)
        die_on(err, "search");
    b->lat[b->nlat++] = (double)(hsc_mono_us() - c->start) / 1000.0;
    for (size_t j = 0; j < res->nhits && j < (size_t)b->k; j++)
        b->got[c->q * b->k + (long)j] = res->hits[j].id[0] == 'b' ? atol(res->hits[j].id + 1) : -1;
    free(c);
    b->done++;
    if (b->done == b->searches)
        ev_break(b->loop, EVBREAK_ONE);
    else
        search_one(b);
}

static void search_one(struct bench *b)
{
    if (b->sent >= b->searches)
        return;
    struct search_ctx *c = malloc(sizeof(*c));
    c->b = b;
    c->q = b->sent++;
    c->start = hsc_mono_us();
    hsc_err err = {0};
    if (hsc_milvus_search(b->m, b->queries + c->q * b->dim, (size_t)b->dim, b->k, b->filter, b->ef,
                          on_searched, c, &err))
        die_on(&err, "search");
}

static void on_done(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct bench *b = arg;
    if (!res)
        die_on(err, "milvus");
    ev_break(b->loop, EVBREAK_ONE);
}

static void on_count(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    if (!res)
        die_on(err, "count");
    *(int64_t *)arg = res->count;
    ev_break(EV_DEFAULT, EVBREAK_ONE);
}

static void print_seg_state(const char *metrics_url, const char *when)
{
    struct bench_seg_state st;
    if (!bench_read_seg_state(metrics_url, &st)) {
        printf("%-28s %s: Milvus metrics (%s) not readable\n", "segments", when, metrics_url);
        return;
    }
    printf("%-28s %s: %.0f entities in sealed segments with the vector index, %.0f sealed "
           "without it, %.0f in growing segments (searched without the HNSW index)\n",
           "segments", when, st.sealed_indexed, st.sealed_plain, st.growing);
}

static void run_searches(struct bench *b, const char *label, const char *filter)
{
    b->filter = filter;
    b->sent = b->done = b->nlat = 0;
    for (long i = 0; i < b->searches * b->k; i++)
        b->got[i] = -1;
    int64_t t0 = hsc_mono_us();
    for (int i = 0; i < b->conc; i++)
        search_one(b);
    ev_run(b->loop, 0);
    double secs = (double)(hsc_mono_us() - t0) / 1e6;
    char what[64];
    snprintf(what, sizeof(what), "search k=%d %s", b->k, label);
    report(what, b->lat, b->nlat, secs, "queries/s", (double)b->done);
    double p50 = b->lat[(long)(0.5 * (double)(b->nlat - 1) + 0.5)], exact_ms = 0;
    double recall = recall_at_k(b, filter != NULL, &exact_ms);
    printf("%-28s recall@%d %.4f against exact search (brute force here, same filter)\n", "", b->k,
           recall);
    printf("%-28s headline: Milvus p50 %.2f ms / exact brute-force search here %.2f ms per "
           "query (one thread) = %.2fx\n",
           "", p50, exact_ms, p50 / exact_ms);
}

static const char USAGE[] =
    "Usage: bench_milvus [--vectors N] [--dim D] [--batch B] [--searches S] [--concurrency C]\n"
    "                    [--clusters C] [--spread X] [--query-noise Q] [--ef N[,N...]]\n"
    "                    [--index-wait S] [--milvus-metrics URL] [--keep]\n"
    "The Milvus client against the real server on clustered data: upsert rate, search\n"
    "latency and recall@10. Needs HSC_MILVUS_URL (source .local/stack.env).\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    struct bench b = {.dim = 384,
                      .batch = 1000,
                      .conc = 8,
                      .k = 10,
                      .vectors = 100000,
                      .searches = 1000,
                      .clusters = 200,
                      .spread = 0.5,
                      .qnoise = 0.5};
    int keep = 0, index_wait = 0;
    const char *efs = "64";
    const char *metrics_url = "http://127.0.0.1:9091/metrics";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--vectors"))
            b.vectors = atol(v), i++;
        else if (!strcmp(argv[i], "--dim"))
            b.dim = atoi(v), i++;
        else if (!strcmp(argv[i], "--batch"))
            b.batch = atoi(v), i++;
        else if (!strcmp(argv[i], "--searches"))
            b.searches = atol(v), i++;
        else if (!strcmp(argv[i], "--concurrency"))
            b.conc = atoi(v), i++;
        else if (!strcmp(argv[i], "--clusters"))
            b.clusters = atoi(v), i++;
        else if (!strcmp(argv[i], "--spread"))
            b.spread = atof(v), i++;
        else if (!strcmp(argv[i], "--query-noise"))
            b.qnoise = atof(v), i++;
        else if (!strcmp(argv[i], "--ef"))
            efs = v, i++;
        else if (!strcmp(argv[i], "--index-wait"))
            index_wait = atoi(v), i++;
        else if (!strcmp(argv[i], "--milvus-metrics"))
            metrics_url = v, i++;
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (b.vectors < 1 || b.dim < 1 || b.batch < 1 || b.searches < 1 || b.conc < 1 ||
        b.clusters < 1) {
        fprintf(stderr, "bench_milvus: sizes must be positive\n");
        return 2;
    }
    make_data(&b);
    b.got = malloc(sizeof(long) * (size_t)b.searches * (size_t)b.k);
    const char *url = getenv("HSC_MILVUS_URL");
    if (!url) {
        fprintf(stderr, "HSC_MILVUS_URL is not set (source .local/stack.env)\n");
        return 2;
    }
    b.loop = ev_default_loop(0);
    hsc_err err = {0};
    hsc_http *http = hsc_http_new(b.loop, &err);
    char coll[64];
    snprintf(coll, sizeof(coll), "bench_%ld_%d", b.vectors, b.dim);
    struct hsc_milvus_settings s = {
        .url = url,
        .token = "",
        .collection = coll,
        .schema_path = HSC_SCHEMAS_DIR "/milvus/content.json",
        .dim = b.dim,
        .timeout_ms = 60000,
        .retries = 3,
        .backoff_initial_ms = 200,
        .backoff_max_ms = 2000,
        .ef = 64,
    };
    b.m = hsc_milvus_new(b.loop, http, &s, &err);
    if (!b.m)
        die_on(&err, "milvus");
    if (hsc_milvus_ensure(b.m, on_done, &b, &err))
        die_on(&err, "ensure");
    ev_run(b.loop, 0);
    if (hsc_milvus_drop(b.m, on_done, &b, &err)) /* start from an empty collection */
        die_on(&err, "drop");
    ev_run(b.loop, 0);
    if (hsc_milvus_ensure(b.m, on_done, &b, &err))
        die_on(&err, "ensure");
    ev_run(b.loop, 0);
    printf("bench_milvus: %ld unit vectors of dimension %d in %d Gaussian clusters (noise norm "
           "%.2f), queries are noisy copies (noise norm %.2f), %s dialect, collection %s\n",
           b.vectors, b.dim, b.clusters, b.spread, b.qnoise,
           hsc_milvus_dialect_of(b.m) == HSC_MILVUS_V1 ? "v1" : "v2", coll);

    b.evs = calloc((size_t)b.batch, sizeof(*b.evs));
    b.ptrs = calloc((size_t)b.batch, sizeof(*b.ptrs));
    for (int i = 0; i < b.batch; i++) {
        b.evs[i].id = malloc(32);
        b.evs[i].embedding = malloc((size_t)b.dim * sizeof(float));
        b.evs[i].dim = (size_t)b.dim;
        b.evs[i].op = HSC_OP_UPSERT;
    }
    long nb = (b.vectors + b.batch - 1) / b.batch;
    long maxlat = nb > b.searches ? nb : b.searches;
    b.lat = malloc((size_t)maxlat * sizeof(double));
    int64_t t0 = hsc_mono_us();
    load_next(&b);
    ev_run(b.loop, 0);
    double secs = (double)(hsc_mono_us() - t0) / 1e6;
    char what[64];
    snprintf(what, sizeof(what), "upsert batches of %d", b.batch);
    report(what, b.lat, b.nlat, secs, "vectors/s (raw upsert rate)", (double)b.vectors);

    /* Reads are bounded-staleness on 2.3: wait until every vector is visible. */
    int64_t visible = -1;
    int64_t w0 = hsc_mono_us();
    while (visible < b.vectors && hsc_mono_us() - w0 < 300 * 1000000LL) {
        if (hsc_milvus_count(b.m, NULL, on_count, &visible, &err))
            die_on(&err, "count");
        ev_run(b.loop, 0);
    }
    printf("%-28s %lld of %ld visible %.1f s after the last upsert returned\n", "count",
           (long long)visible, b.vectors, (double)(hsc_mono_us() - w0) / 1e6);
    if (visible < b.vectors) {
        fprintf(stderr, "bench_milvus: not every vector became visible in 300 s; no search run\n");
        return 1;
    }
    hsc_milvus_filter f = {0};
    hsc_milvus_filter_int(&f, "maturity", "<=", 12);
    hsc_milvus_filter_int(&f, "year", ">=", 1980);
    /* with --index-wait, every search runs once at once, then again once every sealed
     * segment has its index (or S seconds passed) */
    print_seg_state(metrics_url, "at the first search");
    for (int phase = 0; phase < (index_wait > 0 ? 2 : 1); phase++) {
        if (phase == 1) {
            int64_t i0 = hsc_mono_us();
            struct bench_seg_state st;
            while (hsc_mono_us() - i0 < (int64_t)index_wait * 1000000 &&
                   bench_read_seg_state(metrics_url, &st) &&
                   (st.sealed_plain > 0 || st.sealed_indexed == 0))
                sleep(2);
            char when[96];
            snprintf(when, sizeof(when), "after waiting %.0f s for the index",
                     (double)(hsc_mono_us() - i0) / 1e6);
            print_seg_state(metrics_url, when);
        }
        for (const char *e = efs; *e; e += strcspn(e, ",") + (e[strcspn(e, ",")] == ',')) {
            b.ef = atoi(e);
            char nf[64], wf[64];
            snprintf(nf, sizeof(nf), "ef=%d limit=%d", b.ef,
                     hsc_milvus_search_limit(hsc_milvus_dialect_of(b.m), b.k, b.ef));
            snprintf(wf, sizeof(wf), "ef=%d filtered", b.ef);
            run_searches(&b, nf, NULL);
            run_searches(&b, wf, hsc_milvus_filter_str_of(&f));
        }
    }
    hsc_milvus_filter_free(&f);

    if (!keep) {
        if (hsc_milvus_drop(b.m, on_done, &b, &err))
            die_on(&err, "drop");
        ev_run(b.loop, 0);
    }
    for (int i = 0; i < b.batch; i++) {
        free(b.evs[i].id);
        free(b.evs[i].embedding);
    }
    free(b.evs);
    free(b.ptrs);
    free(b.lat);
    free(b.data);
    free(b.queries);
    free(b.target);
    free(b.got);
    hsc_http_free(http);
    hsc_milvus_free(b.m);
    ev_loop_destroy(b.loop);
    return 0;
}
