/*
 * The transactional-endpoint dialect (neo4j.dialect=tx, POST /db/{db}/tx/commit,
 * the one docs/performance.md recommends) against the real local Neo4j, held
 * to the Query API dialect's results:
 *  - writes: hsc-enrich with neo4j.dialect=tx builds the graph of a sample
 *    catalogue; the graph is dumped; it is emptied and hsc-enrich with
 *    neo4j.dialect=query builds it again from the same topic; the two dumps
 *    are equal: every Content node with its version and attributes, every
 *    tag and editorial edge, and each title's SIMILAR_TO scores (targets
 *    compared through their scores, since equal scores may be broken either
 *    way by arrival order);
 *  - reads: the two statements hsc-query sends (hsc_graph_candidates and
 *    hsc_graph_enrich, workers/query/graph.c) run through a tx client and a Query API
 *    client for several seeds return the same candidates, scores, paths,
 *    tags and links, and not nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <signal.h>

#include "graph.h"
#include "it_common.h"

#define N 300
#define NSEEDS 6

static const char NODES_CYPHER[] =
    "MATCH (c:Content) RETURN c.id, toString(c.version), c.title, toString(c.year),"
    " c.language, toString(c.maturity), toString(c.stub)";
static const char EDGES_CYPHER[] =
    "MATCH (c:Content)-[r:BELONGS_TO|HAS_THEME|HAS_MOOD|RELATED_TO]->(x)"
    " RETURN c.id, type(r), coalesce(x.id, x.name)";
static const char SIMILAR_CYPHER[] = "MATCH (c:Content)-[s:SIMILAR_TO]->()"
                                     " RETURN c.id, toString(round(s.score, 9))";

/* Everything the graph holds, as three sorted lists of rows. */
struct dump {
    struct it_strs nodes, edges, similar;
};

static void dump_graph(struct dump *d)
{
    it_neo4j_strs(NODES_CYPHER, &d->nodes);
    it_neo4j_strs(EDGES_CYPHER, &d->edges);
    it_neo4j_strs(SIMILAR_CYPHER, &d->similar);
    fprintf(stderr, "-- graph: %zu nodes, %zu tag/editorial edges, %zu SIMILAR_TO\n", d->nodes.n,
            d->edges.n, d->similar.n);
}

static void dump_free(struct dump *d)
{
    it_strs_free(&d->nodes);
    it_strs_free(&d->edges);
    it_strs_free(&d->similar);
}

/* Runs hsc-enrich with a dialect over the test's ingested topic until the graph is complete. */
static void build_graph(struct it *t, const char *dialect, const char *group)
{
    char g[96], d[64];
    snprintf(g, sizeof(g), "enrich.group=%s", group);
    snprintf(d, sizeof(d), "neo4j.dialect=%s", dialect);
    const char *args[] = {"--set", g, "--set", d, "--set", "enrich.batch_max=50", NULL};
    pid_t enrich = it_spawn(t, "hsc-enrich", args);
    assert_int_equal(
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", N, 120000), N);
    assert_int_equal(it_wait_caught_up(t, group, it_topic(t, "content_ingested"), 120000), 0);
    assert_int_equal(it_stop(enrich, SIGTERM, 30000), 0);
}

/* What one graph read returned, flattened to rows for comparison. */
struct reads {
    struct it_strs rows;
    hsc_err err;
    int done;
};

static void on_candidates(void *arg, const hsc_graph_candidate *c, size_t n, double s,
                          const hsc_err *err)
{
    struct reads *r = arg;
    r->done = 1;
    if (err) {
        r->err = *err;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char row[2048];
        snprintf(row, sizeof(row), "candidate %03zu\t%s\t%.9f\t%s", i, c[i].id, c[i].score,
                 c[i].why ? c[i].why : "");
        it_strs_push(&r->rows, row);
    }
    (void)s;
}

static void join(char *out, size_t cap, const hsc_strlist *l)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", l->v[i]);
}

static void on_info(void *arg, const hsc_graph_info *v, size_t n, double s, const hsc_err *err)
{
    struct reads *r = arg;
    r->done = 1;
    if (err) {
        r->err = *err;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char g[512], th[512], m[512], row[4096];
        join(g, sizeof(g), &v[i].genres);
        join(th, sizeof(th), &v[i].themes);
        join(m, sizeof(m), &v[i].moods);
        snprintf(row, sizeof(row), "info %s\t%s\t%s\t%s\t%s", v[i].id, g, th, m,
                 v[i].links ? v[i].links : "");
        it_strs_push(&r->rows, row);
    }
    (void)s;
}

static hsc_neo4j *client(struct ev_loop *loop, hsc_http *http, hsc_neo4j_dialect d)
{
    hsc_err err = {0};
    struct hsc_neo4j_settings s = {.url = getenv("HSC_NEO4J_URL"),
                                   .user = getenv("HSC_NEO4J_USER") ? getenv("HSC_NEO4J_USER")
                                                                    : "neo4j",
                                   .password = getenv("HSC_NEO4J_PASSWORD"),
                                   .database = "neo4j",
                                   .dialect = d,
                                   .timeout_ms = 30000,
                                   .retries = 1};
    hsc_neo4j *n = hsc_neo4j_new(loop, http, &s, &err);
    if (!n)
        fail_msg("neo4j client: %s", err.msg);
    return n;
}

/* The candidates of seed, then the enrichment of those candidates, through one client. */
static void read_seed(struct ev_loop *loop, hsc_neo4j *neo, const char *seed, struct reads *r)
{
    hsc_err err = {0};
    const char *seeds[] = {seed};
    r->done = 0;
    assert_int_equal(hsc_graph_candidates(neo, seeds, 1, 30, NULL, on_candidates, r, &err), 0);
    while (!r->done)
        ev_run(loop, EVRUN_ONCE);
    if (r->err.code)
        fail_msg("candidates of %s: %s", seed, r->err.msg);
    /* enrich what the candidates were (ids from the rows just pushed) */
    const char *ids[64];
    char idbuf[64][HSC_MAX_ID_LEN + 1];
    size_t nids = 0;
    for (size_t i = 0; i < r->rows.n && nids < 64; i++) {
        if (strncmp(r->rows.v[i], "candidate ", 10))
            continue;
        const char *p = strchr(r->rows.v[i], '\t') + 1;
        size_t len = strcspn(p, "\t");
        snprintf(idbuf[nids], sizeof(idbuf[nids]), "%.*s", (int)len, p);
        ids[nids] = idbuf[nids];
        nids++;
    }
    if (!nids)
        return;
    r->done = 0;
    assert_int_equal(hsc_graph_enrich(neo, ids, nids, seeds, 1, on_info, r, &err), 0);
    while (!r->done)
        ev_run(loop, EVRUN_ONCE);
    if (r->err.code)
        fail_msg("enrichment for %s: %s", seed, r->err.msg);
}

static void test_tx_dialect_same_results(void **state)
{
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    char count[16];
    snprintf(count, sizeof(count), "%d", N);
    char *content = it_sample(&t, "content", count, count);
    const char *ia[] = {"--set", "ingest.group=it-tx-ingest", NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ia);
    assert_int_equal(it_publish(&t, "content", content), 0);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", N, 120000), N);

    /* Writes through tx, then the same events through the Query API. */
    build_graph(&t, "tx", "it-tx-enrich-tx");
    struct dump tx, qa;
    dump_graph(&tx);

    /* Reads, on the tx-written graph, through both dialects. */
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *http = hsc_http_new(loop, &err);
    assert_non_null(http);
    hsc_neo4j *ntx = client(loop, http, HSC_NEO4J_TX),
              *nqa = client(loop, http, HSC_NEO4J_QUERY_API);
    struct it_strs seeds;
    it_pg_strs(&t, "SELECT id FROM content ORDER BY id", &seeds);
    size_t total_rows = 0;
    for (int k = 0; k < NSEEDS; k++) {
        const char *seed = seeds.v[(size_t)k * 47 % seeds.n];
        struct reads a = {0}, b = {0};
        read_seed(loop, ntx, seed, &a);
        read_seed(loop, nqa, seed, &b);
        assert_true(a.rows.n > 0); /* a seed of a sample catalogue has neighbours */
        total_rows += a.rows.n;
        char what[96];
        snprintf(what, sizeof(what), "graph reads of %s", seed);
        assert_int_equal(it_strs_diff(what, &b.rows, "query-api", &a.rows, "tx"), 0);
        it_strs_free(&a.rows);
        it_strs_free(&b.rows);
    }
    assert_int_equal(hsc_neo4j_dialect_of(ntx), HSC_NEO4J_TX);
    assert_int_equal(hsc_neo4j_dialect_of(nqa), HSC_NEO4J_QUERY_API);
    fprintf(stderr, "-- %d seeds: %zu rows of candidates and enrichment, equal in both dialects\n",
            NSEEDS, total_rows);
    it_strs_free(&seeds);
    hsc_http_free(http);
    hsc_neo4j_free(ntx);
    hsc_neo4j_free(nqa);
    ev_loop_destroy(loop);

    it_neo4j_reset();
    assert_int_equal(it_neo4j_int("MATCH (n) RETURN count(n)"), 0);
    build_graph(&t, "query", "it-tx-enrich-query");
    dump_graph(&qa);
    assert_int_equal(tx.nodes.n, N);
    assert_true(tx.edges.n >= N && tx.similar.n > 0);
    assert_int_equal(it_strs_diff("nodes", &qa.nodes, "query-api", &tx.nodes, "tx"), 0);
    assert_int_equal(it_strs_diff("edges", &qa.edges, "query-api", &tx.edges, "tx"), 0);
    assert_int_equal(it_strs_diff("SIMILAR_TO scores", &qa.similar, "query-api", &tx.similar, "tx"),
                     0);
    dump_free(&tx);
    dump_free(&qa);

    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    it_neo4j_reset();
    remove(content);
    free(content);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tx_dialect_same_results)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
