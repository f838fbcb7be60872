/*
 * bench_query: search latency per strategy against its own catalogue on the
 * local stack, open loop at a target rate, over Kafka request/reply (to an
 * hsc-query it starts) and in-process (the same engine linked into this
 * program, no Kafka), beside the same backend calls issued directly from
 * here (the Milvus search over REST, the candidate Cypher over HTTP, the
 * policy and attribute SQL over libpq), so the headline is a ratio measured
 * in one run. Each run also prints the CPU seconds per 1,000 searches of the
 * process that ran them (hsc-query, or this program for in-process and direct
 * runs) and of each server, and hsc-query's resident memory.
 *
 * Every search hsc-query accepted counts in the percentiles and the rate: a
 * timeout at the moment its deadline passed, an error when it came back.
 * Errors, timeouts and degraded replies are counted beside the percentiles,
 * and the program exits 1 (saying so) when any run had one. Searches refused
 * at once as `overloaded` (admission control, docs/query.md#overload) are
 * neither: they are counted on a line of their own with their own
 * percentiles (a refusal should take a few milliseconds) and fail nothing.
 *
 * Setup, in its own namespace (harness.h: database, topics, Milvus
 * collection; the Neo4j graph is reset as the integration tests do):
 * hsc-ingest, hsc-enrich, hsc-embed-index and hsc-query are started,
 * `hsc sample content` (384 dims) is published and awaited in PostgreSQL,
 * Neo4j and Milvus, then `hsc sample learning` for the users, so each user
 * has a policy row, learned preferences and a history. Searches carry a
 * random one of those users (--users 0: anonymous).
 *
 *   bench_query [--rate R[,R...]] [--seconds S] [--titles N] [--users U] [--events E]
 *               [--mode kafka|inproc|both] [--timeout MS] [--strategies a,b,...]
 *               [--index-wait S]
 *               [--no-direct] [--help]
 * Needs the variables of .local/stack.env; run it holding the stack lock.
 */
#include <ev.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_args.h"
#include "bench_proc.h"
#include "bench_segments.h"
#include "config.h"
#include "harness.h"
#include "hsc/client.h"
#include "query/query.h"
#include "util.h"

extern char **environ;

/* What a run sends: through hsc-query, or one backend call directly. */
enum kind { K_KAFKA, K_INPROC, K_MILVUS, K_NEO4J, K_PG_POLICY, K_PG_ATTRS };
static const char *const KIND_NAME[] = {"kafka", "inproc", "direct", "direct", "direct", "direct"};

/* The stages of a reply's timings_us, in print order. */
enum { S_TOTAL, S_CACHE, S_VECTOR, S_GRAPH, S_POLICY, S_RANK, S_N };
static const char *const STAGE_NAME[] = {"total", "cache", "vector", "graph", "policy", "rank"};

/* The catalogue and users the searches draw from. */
struct catalogue {
    float **emb;
    int ntitles, dim;
    char **users;
    int nusers;
    int history; /* the engine's history_seeds, for the direct policy SQL */
};

/* One run: the pacing timer, what was sent and how each ended. */
struct run {
    int said_error, said_degraded; /* the run's first error and degraded reply were printed */
    struct ev_loop *loop;
    ev_timer tick;
    enum kind kind;
    hsc_client *client;
    struct query_engine *eng;
    const struct catalogue *cat;
    const char *label; /* the strategy, or the backend call */
    int rate, timeout_ms;
    long total, sent, ended, errors, timeouts, degraded, hits, overloaded;
    double *lat;
    char *refused;      /* 1 for a request answered `overloaded` */
    double *stage[S_N]; /* ms from the reply's timings, -1 when the stage did not run */
    int64_t *sent_at;
    int64_t t0;
    double p99; /* filled by report */
};

/* One request in flight. */
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

/* Books the end of request i: ok, an error (code says why), or a timeout. */
static void ended(struct run *r, long i, int ok, int timed_out, const char *why)
{
    r->lat[i] = (double)(hsc_mono_us() - r->sent_at[i]) / 1000.0;
    r->ended++;
    if (!timed_out && r->kind >= K_MILVUS && r->lat[i] > r->timeout_ms)
        timed_out = 1; /* a direct call has no deadline of its own: late is a timeout */
    if (timed_out)
        r->timeouts++;
    else if (!ok) {
        r->errors++;
        if (!r->said_error && why) {
            r->said_error = 1;
            fprintf(stderr, "first error (%s %s %d/s): %s\n", KIND_NAME[r->kind], r->label, r->rate,
                    why);
        }
    }
    if (r->ended == r->total)
        ev_break(r->loop, EVBREAK_ALL);
}

static void ended_reply(struct run *r, long i, const hsc_search_reply *rep, int timed_out)
{
    char why[512];
    if (rep && !rep->ok && rep->error_code &&
        !strcmp(rep->error_code, HSC_SEARCH_ERROR_OVERLOADED)) {
        /* refused at once: not an error, and not in the accepted searches' percentiles */
        r->lat[i] = (double)(hsc_mono_us() - r->sent_at[i]) / 1000.0;
        r->refused[i] = 1;
        r->overloaded++;
        if (++r->ended == r->total)
            ev_break(r->loop, EVBREAK_ALL);
        return;
    }
    if (rep && !rep->ok)
        snprintf(why, sizeof(why), "%s: %s", rep->error_code ? rep->error_code : "?",
                 rep->error_message ? rep->error_message : "");
    if (rep && rep->ok) {
        const hsc_search_timings *t = &rep->timings_us;
        int64_t v[S_N] = {t->total, t->cache, t->vector, t->graph, t->policy, t->rank};
        for (int s = 0; s < S_N; s++)
            r->stage[s][i] = v[s] > 0 ? (double)v[s] / 1000.0 : -1;
        if (rep->degraded.n) {
            r->degraded++;
            if (!r->said_degraded) {
                r->said_degraded = 1;
                fprintf(stderr, "first degraded reply (%s %s %d/s): %s left out\n",
                        KIND_NAME[r->kind], r->label, r->rate, rep->degraded.v[0]);
            }
        }
        r->hits += rep->cache_hit;
    }
    ended(r, i, rep && rep->ok, timed_out, rep ? why : "no reply");
}

static void on_reply(void *arg, const hsc_search_reply *rep, const hsc_err *err)
{
    struct one *o = arg;
    ended_reply(o->r, o->i, rep, !rep && err->code == HSC_ETIMEDOUT);
    if (!rep && err->code != HSC_ETIMEDOUT && !o->r->said_error)
        fprintf(stderr, "client error: %s\n", err->msg);
    free(o);
}

static void on_done(void *arg, hsc_search_reply *rep)
{
    struct one *o = arg;
    /* the engine answers a search past its deadline with error code "deadline" */
    int late = rep && !rep->ok && rep->error_code && !strcmp(rep->error_code, "deadline");
    ended_reply(o->r, o->i, rep, late);
    free(o);
}

static void on_direct_milvus(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct one *o = arg;
    ended(o->r, o->i, res != NULL, 0, res ? NULL : err->msg);
    free(o);
}

static void on_direct_graph(void *arg, const hsc_graph_candidate *c, size_t n, double s,
                            const hsc_err *err)
{
    struct one *o = arg;
    (void)c, (void)n, (void)s;
    ended(o->r, o->i, err == NULL, 0, err ? err->msg : NULL);
    free(o);
}

static void on_direct_pg(void *arg, PGresult *res, const hsc_err *err)
{
    struct one *o = arg;
    ended(o->r, o->i, res != NULL, 0, res ? NULL : err->msg);
    free(o);
}

static const char *random_user(const struct catalogue *c)
{
    return c->nusers ? c->users[rnd(c->nusers)] : NULL;
}

static void title_id(int i, char *id, size_t cap)
{
    snprintf(id, cap, "t%06d", i + 1);
}

static void build(struct run *r, hsc_search_request *req)
{
    const struct catalogue *c = r->cat;
    hsc_search_request_init(req);
    int cached = !strcmp(r->label, "cached");
    int a = cached ? 0 : rnd(c->ntitles), b = cached ? 1 : rnd(c->ntitles);
    if (strcmp(r->label, "graph_only")) {
        req->embedding = malloc(sizeof(float) * (size_t)c->dim);
        memcpy(req->embedding, c->emb[a], sizeof(float) * (size_t)c->dim);
        req->dim = (size_t)c->dim;
    }
    if (strcmp(r->label, "vector_only")) {
        char id[16];
        title_id(b, id, sizeof(id));
        hsc_strlist_push(&req->seed_ids, id, strlen(id));
    }
    const char *u = cached ? (c->nusers ? c->users[0] : NULL) : random_user(c);
    if (u)
        req->user_id = strdup(u);
    req->include_relationships = !strcmp(r->label, "hybrid_sequential");
    if (cached)
        req->strategy = HSC_STRATEGY_AUTO;
    else
        hsc_strategy_parse(r->label, &req->strategy);
    req->cache = cached;
}

static void die_send(const char *what, const hsc_err *err)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

/* Issues request i of a direct run: the same call hsc-query makes for that part. */
static void send_direct(struct run *r, struct one *o)
{
    const struct catalogue *c = r->cat;
    struct query_engine *e = r->eng;
    hsc_err err = {0};
    char id[16];
    if (r->kind == K_MILVUS) {
        if (hsc_milvus_search(e->milvus, c->emb[rnd(c->ntitles)], (size_t)c->dim,
                              HSC_SEARCH_K_DEFAULT * e->overfetch, NULL, 0, on_direct_milvus, o,
                              &err))
            die_send("milvus search", &err);
    } else if (r->kind == K_NEO4J) {
        title_id(rnd(c->ntitles), id, sizeof(id));
        const char *seeds[1] = {id};
        if (hsc_graph_candidates(e->neo, seeds, 1, HSC_SEARCH_K_DEFAULT * e->overfetch, NULL,
                                 on_direct_graph, o, &err))
            die_send("graph candidates", &err);
    } else if (r->kind == K_PG_POLICY) {
        char lim[16];
        snprintf(lim, sizeof(lim), "%d", c->history);
        const char *u = random_user(c);
        char half[32]; /* the engine's decay half-life, the SQL's third parameter */
        snprintf(half, sizeof(half), "%.17g", e->fusion.half_life_days);
        const char *params[3] = {u ? u : "nobody", lim, half};
        if (hsc_pg_query(e->pg[0], QUERY_POLICY_SQL, 3, params, on_direct_pg, o, &err))
            die_send("policy sql", &err);
    } else {
        /* the attributes of 30 candidates (k 10, over-fetched 3x), as a JSON parameter */
        hsc_buf ids = {0};
        int n = HSC_SEARCH_K_DEFAULT * e->overfetch;
        for (int k = 0; k < n; k++) {
            title_id(rnd(c->ntitles), id, sizeof(id));
            hsc_buf_printf(&ids, "%s\"%s\"", k ? "," : "[", id);
        }
        hsc_buf_printf(&ids, "]");
        const char *params[1] = {ids.data};
        if (hsc_pg_query(e->pg[0], QUERY_ATTRS_SQL, 1, params, on_direct_pg, o, &err))
            die_send("attrs sql", &err);
        hsc_buf_free(&ids);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;
    (void)revents;
    /* open loop: send every request whose time has come, whatever is in flight */
    long due = (long)((double)(hsc_mono_us() - r->t0) / 1e6 * r->rate) + 1;
    while (r->sent < r->total && r->sent < due) {
        struct one *o = malloc(sizeof(*o));
        o->r = r;
        o->i = r->sent++;
        r->sent_at[o->i] = hsc_mono_us();
        if (r->kind >= K_MILVUS) {
            send_direct(r, o);
            continue;
        }
        hsc_search_request req;
        build(r, &req);
        hsc_err err = {0};
        if (r->kind == K_KAFKA) {
            if (hsc_client_search(r->client, &req, r->timeout_ms, on_reply, o, NULL, &err))
                die_send("send", &err);
            hsc_search_request_clear(&req);
        } else if (query_engine_search(r->eng, &req, "bench", hsc_now_ms() + r->timeout_ms, -1,
                                       on_done, o, &err))
            die_send("search", &err);
    }
    if (r->sent == r->total)
        ev_timer_stop(loop, w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-quantile of n sorted values (nearest rank). */
static double pct(const double *v, long n, double p)
{
    return n ? v[(long)(p * (double)(n - 1) + 0.5)] : 0;
}

static long bad_runs;      /* reported runs with an error, a timeout or a degraded reply */
static long refusing_runs; /* reported runs with searches refused as overloaded */

/* Prints the overloaded refusals of r: how many, and how fast they came back. */
static void report_refused(const struct run *r, double *v)
{
    long m = 0, slow = 0;
    for (long i = 0; i < r->total; i++)
        if (r->refused[i]) {
            v[m++] = r->lat[i];
            slow += r->lat[i] > 5.0;
        }
    qsort(v, (size_t)m, sizeof(double), cmp_double);
    printf("%25s overloaded %ld (%.1f%% refused at once)  p50 %7.2f  p95 %7.2f  p99 %7.2f  "
           "max %8.2f  over 5 ms %ld\n",
           "", m, 100.0 * (double)m / (double)r->total, pct(v, m, .5), pct(v, m, .95),
           pct(v, m, .99), v[m - 1], slow);
}

static void report(struct run *r)
{
    double *v = malloc(sizeof(double) * (size_t)r->total);
    long n = 0; /* the searches hsc-query accepted */
    for (long i = 0; i < r->total; i++)
        if (!r->refused[i])
            v[n++] = r->lat[i];
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    double secs = (double)(hsc_mono_us() - r->t0) / 1e6;
    long ok = n - r->errors - r->timeouts;
    r->p99 = pct(v, n, .99);
    int bad = r->errors || r->timeouts || r->degraded;
    printf("%-6s %-18s %4d/s  %6.1f/s ok  n %5ld  p50 %7.2f  p95 %7.2f  p99 %7.2f  max %8.2f"
           "   errors %ld  timeouts %ld  degraded %ld  overloaded %ld%s\n",
           KIND_NAME[r->kind], r->label, r->rate, (double)ok / secs, n, pct(v, n, .5),
           pct(v, n, .95), r->p99, n ? v[n - 1] : 0, r->errors, r->timeouts, r->degraded,
           r->overloaded, bad ? "   <-- NOT CLEAN" : "");
    if (r->overloaded) {
        report_refused(r, v);
        refusing_runs++;
    }
    if (r->kind <= K_INPROC) {
        printf("%25s worker stages p50/p99:", "");
        for (int s = 0; s < S_N; s++) {
            long m = 0;
            for (long i = 0; i < r->total; i++)
                if (r->stage[s][i] >= 0)
                    v[m++] = r->stage[s][i];
            qsort(v, (size_t)m, sizeof(double), cmp_double);
            if (m)
                printf("  %s %.2f/%.2f", STAGE_NAME[s], pct(v, m, .5), pct(v, m, .99));
            if (m && m < ok)
                printf(" (in %ld)", m);
        }
        if (r->kind == K_KAFKA) {
            /* Kafka both ways and the client: the round trip less hsc-query's own time. */
            long m = 0;
            for (long i = 0; i < r->total; i++)
                if (!r->refused[i] && r->stage[S_TOTAL][i] >= 0)
                    v[m++] = r->lat[i] - r->stage[S_TOTAL][i];
            qsort(v, (size_t)m, sizeof(double), cmp_double);
            if (m)
                printf("  kafka %.2f/%.2f", pct(v, m, .5), pct(v, m, .99));
        }
        printf("  cache hits %ld\n", r->hits);
    }
    fflush(stdout);
    if (bad)
        bad_runs++;
    free(v);
}

/* The hsc-query processes of the group (--queries), for their CPU time and memory. */
enum { MAX_QUERIES = 8 };
static pid_t query_pids[MAX_QUERIES];
static int nqueries;

/* CPU seconds per 1,000 searches of the process that ran them and of each server. */
static void report_cpu(enum kind kind, const double before[BENCH_NSERVERS + 1],
                       const double after[BENCH_NSERVERS + 1], long searches)
{
    if (searches <= 0)
        return;
    double per = 1000.0 / (double)searches;
    printf("%25s cpu s/1000 searches: %s %.3f", "",
           kind == K_KAFKA    ? (nqueries > 1 ? "hsc-query (all)" : "hsc-query")
           : kind == K_INPROC ? "bench (engine in process)"
                              : "bench (direct calls)",
           (after[0] - before[0]) * per);
    for (int s = 0; s < BENCH_NSERVERS; s++)
        printf("  %s %.3f", BENCH_SERVERS[s].name, (after[s + 1] - before[s + 1]) * per);
    for (int q = 0; kind == K_KAFKA && q < nqueries; q++) {
        char name[32] = "hsc-query";
        if (nqueries > 1)
            snprintf(name, sizeof(name), "hsc-query %d", q + 1);
        printf("  (%s rss %.1f MB, peak %.1f MB)", name, (double)bench_rss_kb(query_pids[q]) / 1024,
               (double)bench_hwm_kb(query_pids[q]) / 1024);
    }
    printf("\n");
}

/* CPU seconds so far of the process a run of this kind loads, then of each server. */
static void cpu_now(enum kind kind, double out[BENCH_NSERVERS + 1])
{
    out[0] = 0;
    if (kind == K_KAFKA && nqueries > 0)
        for (int q = 0; q < nqueries; q++)
            out[0] += bench_cpu_of(query_pids[q]);
    else
        out[0] = bench_cpu_of(getpid());
    bench_servers_cpu(out + 1);
}

/* Runs `seconds` of requests at `rate`; reports unless quiet; returns the p99. */
static double run_one(struct ev_loop *loop, enum kind kind, hsc_client *client,
                      struct query_engine *eng, const struct catalogue *cat, const char *label,
                      int rate, int seconds, int timeout_ms, int quiet)
{
    struct run r = {.loop = loop,
                    .kind = kind,
                    .client = client,
                    .eng = eng,
                    .cat = cat,
                    .label = label,
                    .rate = rate,
                    .timeout_ms = timeout_ms};
    r.total = (long)rate * seconds;
    r.lat = calloc((size_t)r.total, sizeof(double));
    r.refused = calloc((size_t)r.total, 1);
    for (int s = 0; s < S_N; s++) {
        r.stage[s] = malloc(sizeof(double) * (size_t)r.total);
        for (long i = 0; i < r.total; i++)
            r.stage[s][i] = -1;
    }
    r.sent_at = calloc((size_t)r.total, sizeof(int64_t));
    double cpu0[BENCH_NSERVERS + 1], cpu1[BENCH_NSERVERS + 1];
    if (!quiet)
        cpu_now(kind, cpu0);
    ev_now_update(loop);
    r.t0 = hsc_mono_us();
    ev_timer_init(&r.tick, on_tick, 0., 0.0005);
    r.tick.data = &r;
    ev_timer_start(loop, &r.tick);
    ev_run(loop, 0);
    ev_timer_stop(loop, &r.tick);
    if (!quiet) {
        cpu_now(kind, cpu1);
        report(&r);
        report_cpu(kind, cpu0, cpu1, r.total);
    }
    free(r.lat);
    free(r.refused);
    for (int s = 0; s < S_N; s++)
        free(r.stage[s]);
    free(r.sent_at);
    return r.p99;
}

/* ---------------- setup: the catalogue and the users through the pipeline ---------------- */

static char *sample(struct it *t, const char *const *args)
{
    char *out;
    if (it_run(t, "hsc", args, &out) != 0) {
        fprintf(stderr, "hsc sample failed: %s\n", out ? out : "");
        exit(1);
    }
    char *path = it_temp_file(out, strlen(out));
    free(out);
    return path;
}

static void publish(struct it *t, const char *topic, const char *path)
{
    char *out;
    const char *args[] = {"publish", "--topic", topic, "--quiet", path, NULL};
    if (it_run(t, "hsc", args, &out) != 0) {
        fprintf(stderr, "hsc publish %s: %s\n", path, out ? out : "");
        exit(1);
    }
    free(out);
}

static void load_catalogue(struct it *t, struct catalogue *c)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT embedding FROM content WHERE id ~ '^t[0-9]{6}$' AND embedding IS NOT NULL "
             "ORDER BY id LIMIT %d",
             c->ntitles);
    PGresult *r = PQexecParams(t->pg, sql, 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < c->ntitles) {
        fprintf(stderr, "only %d of %d titles with embeddings in PostgreSQL\n", PQntuples(r),
                c->ntitles);
        exit(1);
    }
    c->dim = PQgetlength(r, 0, 0) / 4;
    c->emb = malloc(sizeof(float *) * (size_t)c->ntitles);
    for (int i = 0; i < c->ntitles; i++) {
        c->emb[i] = malloc((size_t)c->dim * sizeof(float));
        memcpy(c->emb[i], PQgetvalue(r, i, 0), (size_t)c->dim * sizeof(float));
    }
    PQclear(r);
    r = PQexec(t->pg, "SELECT user_id FROM user_policies ORDER BY user_id");
    c->nusers = PQntuples(r);
    c->users = malloc(sizeof(char *) * (size_t)(c->nusers ? c->nusers : 1));
    for (int i = 0; i < c->nusers; i++)
        c->users[i] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
}

/* Sends vector_only searches one at a time until one comes back ok and clean (hsc-query up). */
struct probe {
    int done, ok;
};

static void on_probe(void *arg, const hsc_search_reply *rep, const hsc_err *err)
{
    struct probe *p = arg;
    (void)err;
    p->done = 1;
    p->ok = rep && rep->ok && !rep->degraded.n;
}

static void wait_query_ready(struct ev_loop *loop, hsc_client *client, const struct catalogue *c)
{
    long long end = it_ms() + 120000;
    while (it_ms() < end) {
        hsc_search_request req;
        hsc_search_request_init(&req);
        req.embedding = malloc(sizeof(float) * (size_t)c->dim);
        memcpy(req.embedding, c->emb[0], sizeof(float) * (size_t)c->dim);
        req.dim = (size_t)c->dim;
        req.cache = false;
        struct probe p = {0};
        hsc_err err = {0};
        if (hsc_client_search(client, &req, 5000, on_probe, &p, NULL, &err))
            die_send("probe", &err);
        hsc_search_request_clear(&req);
        while (!p.done)
            ev_run(loop, EVRUN_ONCE);
        if (p.ok)
            return;
        usleep(300000);
    }
    fprintf(stderr, "hsc-query gave no clean answer within 120 s\n");
    exit(1);
}

static const char USAGE[] =
    "usage: bench_query [--rate R[,R...]] [--seconds S] [--titles N] [--users U]\n"
    "                   [--events E] [--mode kafka|inproc|both] [--timeout MS]\n"
    "                   [--strategies vector_only,graph_only,hybrid_parallel,\n"
    "                                 hybrid_sequential,cached] [--no-direct]\n"
    "                   [--index-wait S] [--queries Q] [--help]\n"
    "Builds its own catalogue (N titles, 384 dims) and U users (E learning events)\n"
    "through the pipeline in a fresh namespace of the local stack (resets the Neo4j\n"
    "graph), then sends searches open loop at each rate for S seconds per strategy,\n"
    "and the same backend calls directly. Exits 1 if any request failed, timed out\n"
    "or was degraded; searches refused as overloaded are counted apart and fail\n"
    "nothing (HSC_QUERY_ADMIT=false turns admission off). Defaults: --rate 100\n"
    "--seconds 10 --titles 2000 --users 100 --events 10000 --mode both --timeout 1000\n"
    "--queries 1 (hsc-query processes in the group, 1..8; the Kafka runs go through them)\n"
    "--index-wait 900 (at most S seconds for Milvus to index every sealed segment and\n"
    "seal the growing ones, read from HSC_MILVUS_METRICS_URL or :9091/metrics).\n"
    "Needs .local/stack.env.\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    int seconds = 10, titles = 2000, users = 100, events = 10000, timeout = 1000, direct = 1;
    int index_wait = 900;
    nqueries = 1;
    const char *mode = "both";
    char rates[128] = "100";
    char strategies[256] = "vector_only,graph_only,hybrid_parallel,hybrid_sequential,cached";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-direct")) {
            direct = 0;
            continue;
        }
        if (!v) { /* an option without its value, or not an option: usage, and no setup */
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--rate"))
            snprintf(rates, sizeof(rates), "%s", v);
        else if (!strcmp(a, "--seconds"))
            seconds = atoi(v);
        else if (!strcmp(a, "--titles"))
            titles = atoi(v);
        else if (!strcmp(a, "--users"))
            users = atoi(v);
        else if (!strcmp(a, "--events"))
            events = atoi(v);
        else if (!strcmp(a, "--index-wait"))
            index_wait = atoi(v);
        else if (!strcmp(a, "--timeout"))
            timeout = atoi(v);
        else if (!strcmp(a, "--queries"))
            nqueries = atoi(v);
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--strategies"))
            snprintf(strategies, sizeof(strategies), "%s", v);
        else {
            usage(stderr);
            return 2;
        }
    }
    int kafka = strcmp(mode, "inproc") != 0, inproc = strcmp(mode, "kafka") != 0;
    if (seconds < 1 || titles < 2 || users < 0 || timeout < 1 || (!kafka && !inproc) ||
        nqueries < 1 || nqueries > MAX_QUERIES) {
        usage(stderr);
        return 2;
    }

    /* ---- the namespace, the pipeline, the catalogue and the users ---- */
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    putenv(t.env_prefix), putenv(t.env_pg), putenv(t.env_brokers), putenv(t.env_cfg);
    putenv(t.env_coll), putenv(t.env_epoch);
    const char *common[] = {"--set", "milvus.dimension=384", "--set", "log.level=warn"};
    const char *ia[] = {"--set", "ingest.group=bq-ingest", common[2], common[3], NULL};
    const char *ea[] = {"--set", "enrich.group=bq-enrich", common[2], common[3], NULL};
    const char *xa[] = {"--set", "embed_index.group=bq-index",         common[0], common[1],
                        "--set", "embed_index.input=content_enriched", common[2], common[3],
                        NULL};
    const char *qa[] = {"--set", "query.group=bq-query", common[0], common[1], common[2], common[3],
                        NULL};
    pid_t pids[4] = {it_spawn(&t, "hsc-ingest", ia), it_spawn(&t, "hsc-enrich", ea),
                     it_spawn(&t, "hsc-embed-index", xa), it_spawn(&t, "hsc-query", qa)};
    /* A worker that exits at start (e.g. a topic created a moment ago has no leader yet)
     * is said so and started once more, rather than waited for until the setup times out. */
    static const char *const WNAME[4] = {"hsc-ingest", "hsc-enrich", "hsc-embed-index",
                                         "hsc-query"};
    const char *const *wargs[4] = {ia, ea, xa, qa};
    sleep(3);
    for (int w = 0; w < 4; w++) {
        int status;
        if (waitpid(pids[w], &status, WNOHANG) == pids[w]) {
            fprintf(stderr, "bench_query: %s exited at start (status %d); starting it again\n",
                    WNAME[w], WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            pids[w] = it_spawn(&t, WNAME[w], wargs[w]);
        }
    }
    /* More members of the same group: the requests' partitions are shared among them. */
    query_pids[0] = pids[3];
    for (int q = 1; q < nqueries; q++)
        query_pids[q] = it_spawn(&t, "hsc-query", qa);
    long long s0 = it_ms();
    char nt[16], ne[16], nu[16];
    snprintf(nt, sizeof(nt), "%d", titles);
    snprintf(ne, sizeof(ne), "%d", events);
    snprintf(nu, sizeof(nu), "%d", users);
    const char *sc[] = {"sample", "content", "--count", nt, "--dim", "384", NULL};
    char *content = sample(&t, sc);
    publish(&t, "content", content);
    if (it_pg_wait(&t, "SELECT count(*) FROM content", titles, 300000) != titles ||
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", titles, 600000) !=
            titles ||
        it_milvus_wait_count(&t, titles, 300000) != titles) {
        fprintf(stderr, "the catalogue did not reach every store\n");
        return 1;
    }
    /* Every title's node is in Neo4j before its SIMILAR_TO edges are (hsc-enrich writes
     * changes to other titles' lists after): at 100,000 titles it was still writing them
     * while the searches ran. A stage commits a batch once all its writes are done, so
     * caught-up groups mean a quiet pipeline. */
    if (it_wait_caught_up(&t, "bq-enrich", it_topic(&t, "content_ingested"), 1800000) ||
        it_wait_caught_up(&t, "bq-index", it_topic(&t, "content_enriched"), 600000)) {
        fprintf(stderr, "the pipeline did not finish the catalogue\n");
        return 1;
    }
    bench_wait_milvus_settled(index_wait);
    char *learning = NULL;
    if (users) {
        const char *sl[] = {"sample", "learning", "--count", ne,  "--titles",
                            nt,       "--users",  nu,        NULL};
        learning = sample(&t, sl);
        publish(&t, "learning", learning);
        if (it_pg_wait(&t, "SELECT count(*) FROM learning_events", events, 300000) != events) {
            fprintf(stderr, "the learning events did not all reach PostgreSQL\n");
            return 1;
        }
    }
    struct catalogue cat = {.ntitles = titles};
    load_catalogue(&t, &cat);
    long long prefs = it_pg_int(&t, "SELECT count(*) FROM user_preferences");
    printf("bench_query: %d titles (dim %d) in PostgreSQL, Neo4j and Milvus; %d users with a "
           "policy, %lld learned preferences, %d learning events; set up in %.0f s\n",
           titles, cat.dim, cat.nusers, prefs, users ? events : 0, (double)(it_ms() - s0) / 1000);
    if (users && cat.nusers == 0) {
        fprintf(stderr, "no user has a policy row\n");
        return 1;
    }
    bench_wait_servers_quiet(index_wait, 0.3);

    /* ---- the client, the in-process engine (also the direct calls' clients) ---- */
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    if (hsc_config_apply_env(cfg, environ, &err) ||
        hsc_config_set(cfg, "milvus.dimension", "384", &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 2;
    }
    struct ev_loop *loop = ev_default_loop(0);
    hsc_client *client = NULL;
    static struct query_engine eng;
    if (query_engine_init(&eng, loop, cfg, &err)) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return 2;
    }
    cat.history = eng.history_seeds;
    while (!hsc_milvus_ready(eng.milvus)) /* the engine loads the collection at start */
        ev_run(loop, EVRUN_ONCE);
    if (kafka) {
        if (!(client = hsc_client_new(loop, cfg, &err))) {
            fprintf(stderr, "client: %s\n", err.msg);
            return 2;
        }
        wait_query_ready(loop, client, &cat);
    }
    printf("%d s per run after 1 s of warm-up, open loop, deadline %d ms, %s; latency in ms, "
           "every request counted (a timeout at its deadline)\n",
           seconds, timeout, cat.nusers ? "each search for a random user" : "anonymous");

    for (char *rsave = NULL, *rs = strtok_r(rates, ",", &rsave); rs;
         rs = strtok_r(NULL, ",", &rsave)) {
        int rate = atoi(rs);
        if (rate < 1)
            continue;
        printf("\n-- %d requests/s --\n", rate);
        double hybrid_p99[2] = {-1, -1};
        char list[256];
        snprintf(list, sizeof(list), "%s", strategies);
        for (char *save = NULL, *s = strtok_r(list, ",", &save); s;
             s = strtok_r(NULL, ",", &save)) {
            for (int k = K_KAFKA; k <= K_INPROC; k++) {
                if ((k == K_KAFKA && !kafka) || (k == K_INPROC && !inproc))
                    continue;
                hsc_client *c = k == K_KAFKA ? client : NULL;
                run_one(loop, k, c, &eng, &cat, s, rate, 1, timeout, 1);
                double p99 = run_one(loop, k, c, &eng, &cat, s, rate, seconds, timeout, 0);
                if (!strcmp(s, "hybrid_parallel"))
                    hybrid_p99[k] = p99;
            }
        }
        if (!direct)
            continue;
        static const char *const DIRECT_LABEL[] = {"milvus search k30", "neo4j candidates",
                                                   "pg policy", "pg attrs 30"};
        double worst = -1;
        const char *worst_label = NULL;
        for (int k = K_MILVUS; k <= K_PG_ATTRS; k++) {
            const char *label = DIRECT_LABEL[k - K_MILVUS];
            run_one(loop, k, NULL, &eng, &cat, label, rate, 1, timeout, 1);
            double p99 = run_one(loop, k, NULL, &eng, &cat, label, rate, seconds, timeout, 0);
            if (k != K_PG_ATTRS && p99 > worst) /* the three parts hybrid_parallel runs at once */
                worst = p99, worst_label = label;
        }
        for (int k = K_KAFKA; k <= K_INPROC; k++)
            if (hybrid_p99[k] >= 0 && worst > 0)
                printf("headline at %d/s: hybrid_parallel p99 %.2f ms (%s) / slowest direct "
                       "backend p99 %.2f ms (%s) = %.2fx\n",
                       rate, hybrid_p99[k], KIND_NAME[k], worst, worst_label,
                       hybrid_p99[k] / worst);
    }

    hsc_client_free(client);
    query_engine_destroy(&eng);
    for (int i = 0; i < cat.ntitles; i++)
        free(cat.emb[i]);
    free(cat.emb);
    for (int i = 0; i < cat.nusers; i++)
        free(cat.users[i]);
    free(cat.users);
    hsc_config_free(cfg);
    for (int i = 3; i >= 0; i--)
        it_stop(pids[i], SIGTERM, 30000);
    for (int q = 1; q < nqueries; q++)
        it_stop(query_pids[q], SIGTERM, 30000);
    unlink(content);
    free(content);
    if (learning)
        unlink(learning);
    free(learning);
    it_neo4j_reset();
    it_teardown(&t);
    if (refusing_runs)
        printf("\nbench_query: %ld run(s) had searches refused as overloaded (admission "
               "control); they are counted apart and are not failures\n",
               refusing_runs);
    if (bad_runs) {
        fprintf(stderr,
                "\nbench_query: FAILED: %ld run(s) had errors, timeouts or degraded replies "
                "(marked NOT CLEAN above; their percentiles include them)\n",
                bad_runs);
        return 1;
    }
    printf("bench_query: clean: no error, timeout or degraded reply in any run\n");
    return 0;
}
