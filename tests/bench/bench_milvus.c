/*
 * bench_milvus: the Milvus client against the real server. Loads a generated
 * collection through hsc_milvus_upsert in batches (reporting vectors/s and
 * per-batch latency), then runs searches at k=10 with a fixed number in
 * flight (reporting latency percentiles and queries/s), with and without a
 * scalar filter.
 *
 *   bench_milvus [--vectors N] [--dim D] [--batch B] [--searches S] [--concurrency C]
 *                [--keep]   (keep the collection afterwards)
 * Needs HSC_MILVUS_URL (source .local/stack.env).
 */
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "milvus.h"
#include "util.h"

struct bench {
    struct ev_loop *loop;
    hsc_milvus *m;
    int dim, batch, conc, k;
    long vectors, searches;
    /* load */
    long loaded;
    hsc_content_event *evs;
    const hsc_content_event **ptrs;
    double *lat;
    long nlat;
    int64_t t0;
    /* search */
    long sent, done, hits_self;
    const char *filter;
    int failed;
};

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

/* A clustered vector per id, reproducible from the id's number (for self-search checks). */
static void vector_of(long i, float *v, int dim)
{
    uint64_t save = rng;
    rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) | 1;
    for (int k = 0; k < dim; k++)
        v[k] = frand();
    rng = save;
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
#define PCT(p) (n ? lat[(long)((p) / 100.0 * (double)(n - 1))] : 0.0)
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
        vector_of(b->loaded + i, ev->embedding, b->dim);
        ev->has = HSC_HAS_YEAR | HSC_HAS_MATURITY;
        ev->year = 1950 + (int32_t)((b->loaded + i) % 75);
        ev->maturity = (int32_t)((b->loaded + i) % 19);
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
    long target;
    int64_t start;
};

static void on_searched(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct search_ctx *c = arg;
    struct bench *b = c->b;
    if (!res)
        die_on(err, "search");
    b->lat[b->nlat++] = (double)(hsc_mono_us() - c->start) / 1000.0;
    char want[32];
    snprintf(want, sizeof(want), "b%08ld", c->target);
    if (res->nhits && !strcmp(res->hits[0].id, want))
        b->hits_self++;
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
    c->target = (long)((uint64_t)(b->sent * 7919) % (uint64_t)b->vectors);
    b->sent++;
    float *v = malloc((size_t)b->dim * sizeof(float));
    vector_of(c->target, v, b->dim);
    c->start = hsc_mono_us();
    hsc_err err = {0};
    if (hsc_milvus_search(b->m, v, (size_t)b->dim, b->k, b->filter, 0, on_searched, c, &err))
        die_on(&err, "search");
    free(v);
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

static void run_searches(struct bench *b, const char *label, const char *filter)
{
    b->filter = filter;
    b->sent = b->done = b->hits_self = b->nlat = 0;
    int64_t t0 = hsc_mono_us();
    for (int i = 0; i < b->conc; i++)
        search_one(b);
    ev_run(b->loop, 0);
    double secs = (double)(hsc_mono_us() - t0) / 1e6;
    char what[64];
    snprintf(what, sizeof(what), "search k=%d %s", b->k, label);
    report(what, b->lat, b->nlat, secs, "queries/s", (double)b->done);
    if (!filter)
        printf("%-28s %.1f%% of searches found their own vector first\n", "",
               100.0 * (double)b->hits_self / (double)b->done);
}

int main(int argc, char **argv)
{
    struct bench b = {
        .dim = 384, .batch = 1000, .conc = 8, .k = 10, .vectors = 100000, .searches = 2000};
    int keep = 0;
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
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: bench_milvus [--vectors N] [--dim D] [--batch B] "
                            "[--searches S] [--concurrency C] [--keep]\n");
            return 2;
        }
    }
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
    printf("bench_milvus: %ld vectors of dimension %d, %s dialect, collection %s\n", b.vectors,
           b.dim, hsc_milvus_dialect_of(b.m) == HSC_MILVUS_V1 ? "v1" : "v2", coll);

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
    report(what, b.lat, b.nlat, secs, "vectors/s", (double)b.vectors);

    /* Reads are bounded-staleness on 2.3: wait until every vector is visible. */
    int64_t visible = -1;
    int64_t w0 = hsc_mono_us();
    while (visible < b.vectors && hsc_mono_us() - w0 < 300 * 1000000LL) {
        if (hsc_milvus_count(b.m, NULL, on_count, &visible, &err))
            die_on(&err, "count");
        ev_run(b.loop, 0);
    }
    printf("%-28s %lld of %ld visible after %.1f s\n", "count", (long long)visible, b.vectors,
           (double)(hsc_mono_us() - w0) / 1e6);
    run_searches(&b, "(no filter)", NULL);
    hsc_milvus_filter f = {0};
    hsc_milvus_filter_int(&f, "maturity", "<=", 12);
    hsc_milvus_filter_int(&f, "year", ">=", 1980);
    run_searches(&b, "(maturity, year filter)", hsc_milvus_filter_str_of(&f));
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
    hsc_http_free(http);
    hsc_milvus_free(b.m);
    ev_loop_destroy(b.loop);
    return 0;
}
