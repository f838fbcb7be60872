/*
 * The two graph queries the query worker needs, against the real Neo4j, on a
 * small graph built by hand: the candidates of a seed come back in the order
 * the scoring implies, with the paths that explain them, and enrichment
 * returns each candidate's tags and its links to the seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <math.h>

#include "graph.h"
#include "harness.h"

struct got {
    hsc_graph_candidate c[16];
    size_t nc;
    hsc_graph_info info[8];
    size_t ni;
    char why[16][512];
    char links[8][512];
    hsc_err err;
    int done;
};

static void on_candidates(void *arg, const hsc_graph_candidate *c, size_t n, double s,
                          const hsc_err *err)
{
    struct got *g = arg;
    g->done = 1;
    if (err) {
        g->err = *err;
        return;
    }
    for (size_t i = 0; i < n && i < 16; i++) {
        g->c[i] = c[i];
        snprintf(g->why[i], sizeof(g->why[i]), "%s", c[i].why);
        g->c[i].why = g->why[i];
    }
    g->nc = n;
    (void)s;
}

static void on_info(void *arg, const hsc_graph_info *v, size_t n, double s, const hsc_err *err)
{
    struct got *g = arg;
    g->done = 1;
    if (err) {
        g->err = *err;
        return;
    }
    for (size_t i = 0; i < n && i < 8; i++) {
        memset(&g->info[i], 0, sizeof(g->info[i]));
        memcpy(g->info[i].id, v[i].id, sizeof(v[i].id));
        for (size_t k = 0; k < v[i].genres.n; k++)
            hsc_strlist_push(&g->info[i].genres, v[i].genres.v[k], strlen(v[i].genres.v[k]));
        for (size_t k = 0; k < v[i].themes.n; k++)
            hsc_strlist_push(&g->info[i].themes, v[i].themes.v[k], strlen(v[i].themes.v[k]));
        snprintf(g->links[i], sizeof(g->links[i]), "%s", v[i].links);
    }
    g->ni = n;
    (void)s;
}

static void test_graph_queries(void **state)
{
    (void)state;
    it_neo4j_reset();
    json_t *r = it_neo4j(
        "CREATE (s:Content {id:'gq-s1', title:'Seed'}), (a:Content {id:'gq-a', title:'A'}),"
        " (b:Content {id:'gq-b', title:'B'}), (c:Content {id:'gq-c', title:'C'}),"
        " (d:Content {id:'gq-d', title:'D'}), (e:Content {id:'gq-e', title:'E'}),"
        " (st:Content {id:'gq-stub', stub:true}),"
        " (dr:Genre {name:'drama'}), (w:Theme {name:'war'}),"
        " (s)-[:SIMILAR_TO {score:0.8}]->(a), (s)-[:SIMILAR_TO {score:0.3}]->(b),"
        " (s)-[:RELATED_TO]->(c), (s)-[:RELATED_TO]->(st),"
        " (a)-[:SIMILAR_TO {score:0.5}]->(d),"
        " (s)-[:BELONGS_TO]->(dr), (a)-[:BELONGS_TO]->(dr), (e)-[:BELONGS_TO]->(dr),"
        " (a)-[:HAS_THEME]->(w)",
        NULL);
    assert_non_null(r);
    json_decref(r);

    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *http = hsc_http_new(loop, &err);
    struct hsc_neo4j_settings s = {.url = getenv("HSC_NEO4J_URL"),
                                   .user = "neo4j",
                                   .password = getenv("HSC_NEO4J_PASSWORD"),
                                   .database = "neo4j",
                                   .timeout_ms = 10000,
                                   .retries = 1};
    hsc_neo4j *neo = hsc_neo4j_new(loop, http, &s, &err);
    assert_non_null(neo);

    struct got *g = calloc(1, sizeof(*g));
    const char *seeds[] = {"gq-s1"};
    assert_int_equal(hsc_graph_candidates(neo, seeds, 1, 10, NULL, on_candidates, g, &err), 0);
    while (!g->done)
        ev_run(loop, EVRUN_ONCE);
    if (g->err.code)
        fail_msg("%s", g->err.msg);
    /* related 1.0, similar 0.8, similar 0.3; not gq-d (linked to gq-a, not to the seed) and
     * not gq-e, which only shares drama with the seed: shared tags are hsc-query's to count */
    const char *order[] = {"gq-c", "gq-a", "gq-b"};
    const double scores[] = {1.0, 0.8, 0.3};
    assert_int_equal(g->nc, 3); /* nor the seed, nor the stub */
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(g->c[i].id, order[i]);
        assert_true(fabs(g->c[i].score - scores[i]) < 1e-9);
        assert_non_null(strstr(g->c[i].why, "\"seed\":\"gq-s1\""));
    }
    assert_non_null(strstr(g->c[0].why, "\"via\":\"related\""));
    assert_non_null(strstr(g->c[1].why, "\"via\":\"similar\""));

    /* a request's own seed (gq-a) weighs 1, a history seed (gq-s1) 0.25; what the own seed
     * reaches comes first, with its part as `intent` */
    g->done = 0;
    const char *two[] = {"gq-a", "gq-s1"};
    hsc_graph_filter wf = {.max_maturity = -1, .nexplicit = 1, .history_weight = 0.25};
    assert_int_equal(hsc_graph_candidates(neo, two, 2, 10, &wf, on_candidates, g, &err), 0);
    while (!g->done)
        ev_run(loop, EVRUN_ONCE);
    if (g->err.code)
        fail_msg("%s", g->err.msg);
    assert_int_equal(g->nc, 3);
    assert_string_equal(g->c[0].id, "gq-d"); /* similar to gq-a at 0.5 */
    assert_true(fabs(g->c[0].score - 0.5) < 1e-9);
    assert_true(fabs(g->c[0].intent - 0.5) < 1e-9);
    assert_string_equal(g->c[1].id, "gq-c"); /* related to the history seed only */
    assert_true(fabs(g->c[1].score - 0.25) < 1e-9 && g->c[1].intent == 0);
    assert_string_equal(g->c[2].id, "gq-b");
    assert_true(fabs(g->c[2].score - 0.25 * 0.3) < 1e-9);

    g->done = 0;
    const char *ids[] = {"gq-a", "gq-c", "gq-d"};
    assert_int_equal(hsc_graph_enrich(neo, ids, 3, seeds, 1, on_info, g, &err), 0);
    while (!g->done)
        ev_run(loop, EVRUN_ONCE);
    if (g->err.code)
        fail_msg("%s", g->err.msg);
    assert_int_equal(g->ni, 3);
    assert_string_equal(g->info[0].id, "gq-a");
    assert_int_equal(g->info[0].genres.n, 1);
    assert_string_equal(g->info[0].genres.v[0], "drama");
    assert_string_equal(g->info[0].themes.v[0], "war");
    assert_non_null(strstr(g->links[0], "\"type\":\"SIMILAR_TO\""));
    assert_non_null(strstr(g->links[0], "0.8"));
    assert_non_null(strstr(g->links[1], "\"type\":\"RELATED_TO\""));
    assert_string_equal(g->links[2], "[]");
    assert_int_equal(g->info[2].genres.n, 0);
    for (size_t i = 0; i < g->ni; i++) {
        hsc_strlist_clear(&g->info[i].genres);
        hsc_strlist_clear(&g->info[i].themes);
    }
    free(g);
    hsc_http_free(http);
    hsc_neo4j_free(neo);
    ev_loop_destroy(loop);
    it_neo4j_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_graph_queries)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
