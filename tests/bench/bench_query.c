/*
 * bench_query: search latency per strategy, open loop at a target rate, over
 * Kafka request/reply (to a running hsc-query) and in-process (the same
 * engine linked into this program, no Kafka), so the cost of the Kafka round
 * trip shows. Requests use the stored embeddings of random catalogue titles
 * and random seed titles; "cached" repeats one request so every search after
 * the first is a cache hit.
 *
 *   bench_query [--rate R] [--seconds S] [--titles N] [--mode kafka|inproc|both]
 *               [--timeout MS] [--strategies vector_only,graph_only,...,cached]
 *
 * Configuration comes from HSC_* variables (source .local/stack.env); the
 * catalogue is the one the demo loaded (titles t000001..tN with embeddings).
 */
#include <ev.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hsc/client.h"
#include "query/query.h"
#include "util.h"

extern char **environ;

/* One run: the pacing timer, what was sent and how each ended. */
struct run {
    struct ev_loop *loop;
    ev_timer tick;
    hsc_client *client;       /* kafka mode */
    struct query_engine *eng; /* in-process mode */
    const char *strategy;
    int rate, timeout_ms;
    long total, sent, ended, errors, timeouts, degraded, hits;
    double *lat, *server;
    int64_t *sent_at;
    int64_t t0;
    float **emb;
    int ntitles, dim;
};

/* One search in flight. */
struct one {
    struct run *r;
    long i;
};

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static int rnd(int n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int)(rng % (uint64_t)n);
}

static void ended(struct run *r, long i, const hsc_search_reply *rep, int timed_out)
{
    r->lat[i] = (hsc_mono_us() - r->sent_at[i]) / 1000.0;
    r->ended++;
    if (timed_out)
        r->timeouts++;
    else if (!rep || !rep->ok) {
        if (!r->errors++ && rep)
            fprintf(stderr, "first error: %s: %s\n", rep->error_code, rep->error_message);
    } else {
        r->server[i] = rep->timings_us.total / 1000.0;
        r->degraded += rep->degraded.n > 0;
        r->hits += rep->cache_hit;
    }
    if (r->ended == r->total)
        ev_break(r->loop, EVBREAK_ALL);
}

static void on_reply(void *arg, const hsc_search_reply *rep, const hsc_err *err)
{
    struct one *o = arg;
    ended(o->r, o->i, rep, !rep && err->code == HSC_ETIMEDOUT);
    free(o);
}

static void on_done(void *arg, hsc_search_reply *rep)
{
    struct one *o = arg;
    ended(o->r, o->i, rep, 0);
    free(o);
}

static void build(struct run *r, hsc_search_request *req)
{
    hsc_search_request_init(req);
    int cached = !strcmp(r->strategy, "cached");
    int a = cached ? 0 : rnd(r->ntitles), b = cached ? 1 : rnd(r->ntitles);
    if (strcmp(r->strategy, "graph_only")) {
        req->embedding = malloc(sizeof(float) * (size_t)r->dim);
        memcpy(req->embedding, r->emb[a], sizeof(float) * (size_t)r->dim);
        req->dim = (size_t)r->dim;
    }
    if (strcmp(r->strategy, "vector_only")) {
        char id[16];
        snprintf(id, sizeof(id), "t%06d", b + 1);
        hsc_strlist_push(&req->seed_ids, id, strlen(id));
    }
    req->include_relationships = !strcmp(r->strategy, "hybrid_sequential");
    if (cached)
        req->strategy = HSC_STRATEGY_AUTO;
    else
        hsc_strategy_parse(r->strategy, &req->strategy);
    req->cache = cached;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;
    (void)revents;
    /* open loop: send every search whose time has come, whatever is in flight */
    long due = (long)((hsc_mono_us() - r->t0) / 1e6 * r->rate) + 1;
    while (r->sent < r->total && r->sent < due) {
        struct one *o = malloc(sizeof(*o));
        o->r = r;
        o->i = r->sent++;
        hsc_search_request req;
        build(r, &req);
        r->sent_at[o->i] = hsc_mono_us();
        if (r->client) {
            hsc_err err = {0};
            if (hsc_client_search(r->client, &req, r->timeout_ms, on_reply, o, NULL, &err)) {
                fprintf(stderr, "send: %s\n", err.msg);
                exit(1);
            }
            hsc_search_request_clear(&req);
        } else {
            hsc_err err = {0};
            if (query_engine_search(r->eng, &req, "bench", hsc_now_ms() + r->timeout_ms, on_done, o,
                                    &err)) {
                fprintf(stderr, "search: %s\n", err.msg);
                exit(1);
            }
        }
    }
    if (r->sent == r->total)
        ev_timer_stop(loop, w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, long n, double p)
{
    return n ? v[(long)(p * (double)(n - 1) + 0.5)] : 0;
}

static int quiet; /* warm-up runs are not reported */

static void report(struct run *r, const char *mode)
{
    if (quiet)
        return;
    long n = 0, ns = 0;
    double *ok = malloc(sizeof(double) * (size_t)r->total);
    double *srv = malloc(sizeof(double) * (size_t)r->total);
    for (long i = 0; i < r->total; i++) {
        if (r->server[i] >= 0) {
            ok[n++] = r->lat[i];
            srv[ns++] = r->server[i];
        }
    }
    qsort(ok, (size_t)n, sizeof(double), cmp_double);
    qsort(srv, (size_t)ns, sizeof(double), cmp_double);
    double secs = (hsc_mono_us() - r->t0) / 1e6;
    printf("%-8s %-18s %5d/s %7.1f/s  p50 %7.2f  p95 %7.2f  p99 %7.2f  max %8.2f ms   "
           "worker p50 %6.2f p99 %7.2f   err %ld  timeout %ld  degraded %ld  hits %ld\n",
           mode, r->strategy, r->rate, (double)n / secs, pct(ok, n, .5), pct(ok, n, .95),
           pct(ok, n, .99), n ? ok[n - 1] : 0, pct(srv, ns, .5), pct(srv, ns, .99), r->errors,
           r->timeouts, r->degraded, r->hits);
    fflush(stdout);
    free(ok);
    free(srv);
}

static void run_one(struct ev_loop *loop, hsc_client *client, struct query_engine *eng,
                    const char *strategy, int rate, int seconds, int timeout_ms, float **emb,
                    int ntitles, int dim)
{
    struct run r = {.loop = loop,
                    .client = client,
                    .eng = eng,
                    .strategy = strategy,
                    .rate = rate,
                    .timeout_ms = timeout_ms,
                    .emb = emb,
                    .ntitles = ntitles,
                    .dim = dim};
    r.total = (long)rate * seconds;
    r.lat = calloc((size_t)r.total, sizeof(double));
    r.server = malloc(sizeof(double) * (size_t)r.total);
    for (long i = 0; i < r.total; i++)
        r.server[i] = -1;
    r.sent_at = calloc((size_t)r.total, sizeof(int64_t));
    ev_now_update(loop);
    r.t0 = hsc_mono_us();
    ev_timer_init(&r.tick, on_tick, 0., 0.0005);
    r.tick.data = &r;
    ev_timer_start(loop, &r.tick);
    ev_run(loop, 0);
    ev_timer_stop(loop, &r.tick);
    report(&r, client ? "kafka" : "inproc");
    free(r.lat);
    free(r.server);
    free(r.sent_at);
}

static float **load_embeddings(const hsc_config *cfg, int n, int *dim)
{
    PGconn *c = PQconnectdb(hsc_config_str(cfg, "pg.url"));
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT embedding FROM content WHERE id ~ '^t[0-9]{6}$' AND embedding IS NOT NULL "
             "ORDER BY id LIMIT %d",
             n);
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < n) {
        fprintf(stderr, "need %d sample titles with embeddings in PostgreSQL (run the demo): %s\n",
                n, PQerrorMessage(c));
        exit(1);
    }
    *dim = PQgetlength(r, 0, 0) / 4;
    float **v = malloc(sizeof(float *) * (size_t)n);
    for (int i = 0; i < n; i++) {
        v[i] = malloc((size_t)*dim * sizeof(float));
        memcpy(v[i], PQgetvalue(r, i, 0), (size_t)*dim * sizeof(float));
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

int main(int argc, char **argv)
{
    int rate = 100, seconds = 10, titles = 2000, timeout = 1000;
    const char *mode = "both";
    char strategies[256] = "vector_only,graph_only,hybrid_parallel,hybrid_sequential,cached";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rate"))
            rate = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--titles"))
            titles = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout"))
            timeout = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
        else if (!strcmp(argv[i], "--strategies"))
            snprintf(strategies, sizeof(strategies), "%s", argv[i + 1]);
    }
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    if (hsc_config_apply_env(cfg, environ, &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 2;
    }
    int dim;
    float **emb = load_embeddings(cfg, titles, &dim);
    struct ev_loop *loop = ev_default_loop(0);
    hsc_client *client = NULL;
    static struct query_engine eng;
    int kafka = strcmp(mode, "inproc") != 0, inproc = strcmp(mode, "kafka") != 0;
    if (kafka && !(client = hsc_client_new(loop, cfg, &err))) {
        fprintf(stderr, "client: %s\n", err.msg);
        return 2;
    }
    if (inproc) {
        char d[16];
        snprintf(d, sizeof(d), "%d", dim);
        hsc_config_set(cfg, "milvus.dimension", d, &err);
        if (query_engine_init(&eng, loop, cfg, &err)) {
            fprintf(stderr, "engine: %s\n", err.msg);
            return 2;
        }
        while (!hsc_milvus_ready(eng.milvus)) /* the engine loads the collection at start */
            ev_run(loop, EVRUN_ONCE);
    }
    printf("%d titles, dim %d, %d s per run, deadline %d ms; latency in ms\n", titles, dim, seconds,
           timeout);
    for (char *save = NULL, *s = strtok_r(strategies, ",", &save); s;
         s = strtok_r(NULL, ",", &save)) {
        /* a short warm-up at the same rate, not reported */
        if (kafka) {
            quiet = 1;
            run_one(loop, client, NULL, s, rate, 1, timeout, emb, titles, dim);
            quiet = 0;
            run_one(loop, client, NULL, s, rate, seconds, timeout, emb, titles, dim);
        }
        if (inproc) {
            quiet = 1;
            run_one(loop, NULL, &eng, s, rate, 1, timeout, emb, titles, dim);
            quiet = 0;
            run_one(loop, NULL, &eng, s, rate, seconds, timeout, emb, titles, dim);
        }
    }
    hsc_client_free(client);
    if (inproc)
        query_engine_destroy(&eng);
    for (int i = 0; i < titles; i++)
        free(emb[i]);
    free(emb);
    hsc_config_free(cfg);
    return 0;
}
