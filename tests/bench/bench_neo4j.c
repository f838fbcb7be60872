/*
 * bench_neo4j: the graph queries of workers/query/graph.c against the real Neo4j on
 * a generated catalogue, and the enrich write on top of it.
 *
 * Loads T titles (ids "bench-N", tags drawn like `hsc sample`: 1-3 of 12
 * genres, 1-3 of 12 themes, 0-2 of 6 moods) with bulk UNWIND statements, and
 * gives each title 10 SIMILAR_TO edges to titles of its first genre, scored
 * with the enrich formula (the true top 10 would need an all-pairs pass that
 * takes longer than the benchmark; the degree and fan-out, which is what the
 * queries pay for, are the same). Then it runs, with C in flight:
 *   - candidates for 1 seed and for 5 seeds (limit 30: 3x over-fetch of 10);
 *   - enrichment of 30 candidates with 3 seeds;
 *   - `RETURN 1`, to show what HTTP and Neo4j's per-request work cost alone;
 *   - the enrich write statement for --write-batches batches of 200 new titles.
 * Prints throughput and only the percentiles the samples support: p50 always,
 * p95 from 20 samples, p99 from 100 ("-" otherwise). Removes its titles
 * afterwards unless --keep.
 *
 *   bench_neo4j [--titles T] [--queries Q (>= 100)] [--concurrency C] [--dialect query|tx]
 *               [--write-batches W (5)] [--keep]
 * Needs HSC_NEO4J_URL, HSC_NEO4J_PASSWORD (source .local/stack.env).
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_args.h"
#include "cli/sample_vocab.h"
#include "enrich/enrich.h"
#include "graph.h"
#include "util.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

struct bench {
    struct ev_loop *loop;
    hsc_neo4j *neo;
    long titles, queries;
    int conc;
    hsc_content_event *evs;
    double *lat;
    long sent, done, nlat;
    int kind; /* 0: candidates 1 seed, 1: candidates 5 seeds, 2: enrichment, 3: RETURN 1 */
    int busy;
};

static void die_on(const hsc_err *err, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

static void on_stmt(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct bench *b = arg;
    if (!res)
        die_on(err, "neo4j");
    b->busy = 0;
}

/* Runs one statement to completion. */
static void run(struct bench *b, const char *cypher, json_t *params)
{
    hsc_err err = {0};
    b->busy = 1;
    if (hsc_neo4j_run(b->neo, cypher, params, on_stmt, b, &err))
        die_on(&err, "neo4j");
    while (b->busy)
        ev_run(b->loop, EVRUN_ONCE);
}

static void pick(hsc_strlist *l, const char *const *from, unsigned n, unsigned lo, unsigned hi)
{
    unsigned k = lo + rnd(hi - lo + 1);
    for (unsigned i = 0; i < k; i++) {
        const char *s = from[rnd(n)];
        int dup = 0;
        for (size_t j = 0; j < l->n; j++)
            dup |= !strcmp(l->v[j], s);
        if (!dup)
            hsc_strlist_push(l, s, strlen(s));
    }
}

static void make_title(hsc_content_event *e, long i)
{
    memset(e, 0, sizeof(*e));
    e->id = malloc(32);
    snprintf(e->id, 32, "bench-%ld", i);
    e->title = malloc(48);
    snprintf(e->title, 48, "Bench Title %ld", i);
    e->version = 1;
    e->has = HSC_HAS_YEAR | HSC_HAS_MATURITY;
    e->year = 1950 + (int32_t)rnd(75);
    e->maturity = (int32_t)rnd(19);
    pick(&e->genres, hsc_sample_genres, HSC_SAMPLE_NGENRES, 1, 3);
    pick(&e->themes, hsc_sample_themes, HSC_SAMPLE_NTHEMES, 1, 3);
    pick(&e->moods, hsc_sample_moods, HSC_SAMPLE_NMOODS, 0, 2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *lat, long n, double secs, const char *unit,
                   double count)
{
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    char p95[32] = "      -", p99[32] = "      -";
    /* a percentile needs enough samples above it: 1 in 20 for p95, 1 in 100 for p99 */
    if (n >= 20)
        snprintf(p95, sizeof(p95), "%7.2f", lat[(long)(0.95 * (double)(n - 1) + 0.5)]);
    if (n >= 100)
        snprintf(p99, sizeof(p99), "%7.2f", lat[(long)(0.99 * (double)(n - 1) + 0.5)]);
    printf("%-34s n=%-5ld p50=%7.2f ms  p95=%s ms  p99=%s ms  max=%7.2f ms  %8.1f %s\n", what, n,
           n ? lat[(long)(0.5 * (double)(n - 1) + 0.5)] : 0.0, p95, p99, n ? lat[n - 1] : 0.0,
           count / secs, unit);
}

static void next_query(struct bench *b);

struct qctx {
    struct bench *b;
    int64_t start;
};

static void finish_one(struct qctx *q)
{
    struct bench *b = q->b;
    b->lat[b->nlat++] = (double)(hsc_mono_us() - q->start) / 1000.0;
    free(q);
    if (++b->done == b->queries)
        ev_break(b->loop, EVBREAK_ONE);
    else
        next_query(b);
}

static void on_cands(void *arg, const hsc_graph_candidate *c, size_t n, double s,
                     const hsc_err *err)
{
    if (err)
        die_on(err, "candidates");
    finish_one(arg);
    (void)c, (void)n, (void)s;
}

static void on_info(void *arg, const hsc_graph_info *v, size_t n, double s, const hsc_err *err)
{
    if (err)
        die_on(err, "enrichment");
    finish_one(arg);
    (void)v, (void)n, (void)s;
}

static void on_ping(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    if (!res)
        die_on(err, "RETURN 1");
    finish_one(arg);
}

static void next_query(struct bench *b)
{
    if (b->sent >= b->queries)
        return;
    b->sent++;
    struct qctx *q = malloc(sizeof(*q));
    q->b = b;
    const char *seeds[5], *ids[30];
    for (int i = 0; i < 5; i++)
        seeds[i] = b->evs[rnd((unsigned)b->titles)].id;
    for (int i = 0; i < 30; i++)
        ids[i] = b->evs[rnd((unsigned)b->titles)].id;
    hsc_err err = {0};
    q->start = hsc_mono_us();
    int rc = b->kind == 3   ? hsc_neo4j_run(b->neo, "RETURN 1", NULL, on_ping, q, &err)
             : b->kind == 2 ? hsc_graph_enrich(b->neo, ids, 30, seeds, 3, on_info, q, &err)
                            : hsc_graph_candidates(b->neo, seeds, b->kind ? 5 : 1, 30, NULL,
                                                   on_cands, q, &err);
    if (rc)
        die_on(&err, "query");
}

static void run_queries(struct bench *b, int kind, const char *label, int quiet)
{
    b->kind = kind;
    b->sent = b->done = b->nlat = 0;
    int64_t t0 = hsc_mono_us();
    for (int i = 0; i < b->conc; i++)
        next_query(b);
    ev_run(b->loop, 0);
    if (!quiet)
        report(label, b->lat, b->nlat, (double)(hsc_mono_us() - t0) / 1e6, "queries/s",
               (double)b->done);
}

static const char USAGE[] =
    "Usage: bench_neo4j [--titles T] [--queries Q (>= 100)] [--concurrency C]\n"
    "                   [--dialect query|tx] [--write-batches W (5)] [--keep]\n"
    "hsc-query's graph queries and the enrich write against the real Neo4j on a generated\n"
    "catalogue. Needs HSC_NEO4J_URL, HSC_NEO4J_PASSWORD (source .local/stack.env).\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    struct bench b = {.titles = 100000, .queries = 500, .conc = 4};
    int keep = 0, write_batches = 5;
    hsc_neo4j_dialect dialect = HSC_NEO4J_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--titles"))
            b.titles = atol(v), i++;
        else if (!strcmp(argv[i], "--queries"))
            b.queries = atol(v), i++;
        else if (!strcmp(argv[i], "--concurrency"))
            b.conc = atoi(v), i++;
        else if (!strcmp(argv[i], "--write-batches"))
            write_batches = atoi(v), i++;
        else if (!strcmp(argv[i], "--dialect") && (!strcmp(v, "query") || !strcmp(v, "tx")))
            dialect = !strcmp(v, "tx") ? HSC_NEO4J_TX : HSC_NEO4J_QUERY_API, i++;
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (b.queries < 100 || write_batches < 1 || write_batches > 12) {
        fprintf(stderr, "bench_neo4j: --queries must be at least 100 (for a p99), "
                        "--write-batches 1..12\n");
        return 2;
    }
    if (!getenv("HSC_NEO4J_URL") || !getenv("HSC_NEO4J_PASSWORD")) {
        fprintf(stderr, "HSC_NEO4J_URL/HSC_NEO4J_PASSWORD are not set (source .local/stack.env)\n");
        return 2;
    }
    b.loop = ev_default_loop(0);
    hsc_err err = {0};
    hsc_http *http = hsc_http_new(b.loop, &err);
    struct hsc_neo4j_settings s = {.url = getenv("HSC_NEO4J_URL"),
                                   .user = "neo4j",
                                   .password = getenv("HSC_NEO4J_PASSWORD"),
                                   .database = "neo4j",
                                   .dialect = dialect,
                                   .timeout_ms = 600000,
                                   .retries = 2};
    b.neo = hsc_neo4j_new(b.loop, http, &s, &err);
    struct enrich_weights w = {
        .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = 10, .fanout = 2000};

    run(&b, "CREATE CONSTRAINT content_id IF NOT EXISTS FOR (c:Content) REQUIRE c.id IS UNIQUE",
        NULL);
    run(&b,
        "MATCH (c:Content) WHERE c.id STARTS WITH 'bench-' "
        "CALL { WITH c DETACH DELETE c } IN TRANSACTIONS OF 1000 ROWS",
        NULL);

    /* Load the titles and their tags. */
    b.evs = calloc((size_t)b.titles + 2500, sizeof(*b.evs));
    hsc_content_event **ptrs = malloc(((size_t)b.titles + 2500) * sizeof(*ptrs));
    for (long i = 0; i < b.titles + 2500; i++) {
        make_title(&b.evs[i], i);
        ptrs[i] = &b.evs[i];
    }
    int64_t t0 = hsc_mono_us();
    int winner_all[5000];
    for (int i = 0; i < 5000; i++)
        winner_all[i] = 1;
    for (long off = 0; off < b.titles; off += 5000) {
        long n = b.titles - off < 5000 ? b.titles - off : 5000;
        json_t *p = enrich_params(ptrs + off, winner_all, (size_t)n, &w);
        run(&b,
            "UNWIND $rows AS r MERGE (c:Content {id: r.id})"
            " SET c.title = r.title, c.year = r.year, c.maturity = r.maturity, c.version = "
            "r.version,"
            " c.attr_w = r.attr_w"
            /* enrich_params' rows name their tags by position in $genres, $themes, $moods */
            " FOREACH (g IN r.genres | MERGE (x:Genre {name: $genres[g]})"
            " CREATE (c)-[:BELONGS_TO]->(x))"
            " FOREACH (t IN r.themes | MERGE (x:Theme {name: $themes[t]})"
            " CREATE (c)-[:HAS_THEME]->(x))"
            " FOREACH (m IN r.moods | MERGE (x:Mood {name: $moods[m]}) CREATE "
            "(c)-[:HAS_MOOD]->(x))",
            p);
    }
    double load_s = (double)(hsc_mono_us() - t0) / 1e6;
    /* SIMILAR_TO: 10 per title, within its first genre, scored by the formula. */
    long *by_genre[12];
    long nby[12] = {0};
    for (int g = 0; g < 12; g++)
        by_genre[g] = malloc((size_t)b.titles * sizeof(long));
    for (long i = 0; i < b.titles; i++)
        for (int g = 0; g < 12; g++)
            if (!strcmp(b.evs[i].genres.v[0], hsc_sample_genres[g]))
                by_genre[g][nby[g]++] = i;
    t0 = hsc_mono_us();
    json_t *edges = json_array();
    long nedges = 0;
    for (long i = 0; i < b.titles; i++) {
        int g = 0;
        while (strcmp(b.evs[i].genres.v[0], hsc_sample_genres[g]))
            g++;
        for (int k = 0; k < 10 && nby[g] > 1; k++) {
            long o = by_genre[g][rnd((unsigned)nby[g])];
            if (o == i)
                continue;
            json_array_append_new(edges,
                                  json_pack("{s:s, s:s, s:f}", "a", b.evs[i].id, "b", b.evs[o].id,
                                            "s", enrich_similarity(&b.evs[i], &b.evs[o], &w)));
            nedges++;
        }
        if (json_array_size(edges) >= 50000 || i == b.titles - 1) {
            run(&b,
                "UNWIND $e AS e MATCH (a:Content {id: e.a}), (o:Content {id: e.b})"
                " CREATE (a)-[:SIMILAR_TO {score: e.s}]->(o)",
                json_pack("{s:o}", "e", edges));
            edges = json_array();
        }
    }
    json_decref(edges);
    /* What enrich keeps on every title: the score a newcomer must beat to enter its list. */
    run(&b,
        "MATCH (c:Content) WHERE c.id STARTS WITH 'bench-' CALL { WITH c "
        "OPTIONAL MATCH (c)-[e:SIMILAR_TO]->() WITH c, count(e) AS k, min(e.score) AS low "
        "SET c.sim_floor = CASE WHEN k >= 10 THEN low ELSE 0.2 END } IN TRANSACTIONS OF 5000 ROWS",
        NULL);
    printf("bench_neo4j: %ld titles loaded in %.1f s, %ld SIMILAR_TO edges in %.1f s\n", b.titles,
           load_s, nedges, (double)(hsc_mono_us() - t0) / 1e6);

    b.lat = malloc((size_t)(b.queries > 100 ? b.queries : 100) * sizeof(double));
    /* Warm the plans and the page cache, then measure. */
    long q = b.queries;
    b.queries = 50;
    run_queries(&b, 0, "(warm-up)", 1);
    b.queries = q;
    printf("%s dialect, %d in flight\n",
           hsc_neo4j_dialect_of(b.neo) == HSC_NEO4J_TX ? "tx" : "query API", b.conc);
    run_queries(&b, 3, "RETURN 1", 0);
    run_queries(&b, 0, "candidates, 1 seed, limit 30", 0);
    run_queries(&b, 1, "candidates, 5 seeds, limit 30", 0);
    run_queries(&b, 2, "enrichment, 30 ids, 3 seeds", 0);

    /* The enrich write on top of the catalogue: batches of 200 new titles. */
    b.nlat = 0;
    int64_t w0 = hsc_mono_us();
    for (int k = 0; k < write_batches; k++) {
        json_t *p = enrich_params(ptrs + b.titles + k * 200, winner_all, 200, &w);
        int64_t s0 = hsc_mono_us();
        run(&b, ENRICH_WRITE_CYPHER, p);
        b.lat[b.nlat++] = (double)(hsc_mono_us() - s0) / 1000.0;
    }
    report("enrich write, batches of 200", b.lat, b.nlat, (double)(hsc_mono_us() - w0) / 1e6,
           "titles/s", 200.0 * write_batches);

    if (!keep)
        run(&b,
            "MATCH (c:Content) WHERE c.id STARTS WITH 'bench-' "
            "CALL { WITH c DETACH DELETE c } IN TRANSACTIONS OF 1000 ROWS",
            NULL);
    for (long i = 0; i < b.titles + 2500; i++)
        hsc_content_event_clear(&b.evs[i]);
    free(b.evs);
    free(ptrs);
    for (int g = 0; g < 12; g++)
        free(by_genre[g]);
    free(b.lat);
    hsc_http_free(http);
    hsc_neo4j_free(b.neo);
    ev_loop_destroy(b.loop);
    return 0;
}
