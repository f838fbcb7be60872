/*
 * Gathering a search's candidates (workers/query/candidates.c): the legs'
 * answers merge into one entry per title, each leg's rank is its order, ids
 * a backend should never have returned are dropped, the set stays findable
 * as it grows and after ranking reorders it, and relationships come from the
 * graph's paths or links, the link sums ranked with ties sharing a rank.
 * The shared-tag part of a graph score is counted for every candidate,
 * whichever leg found it, on top of its links.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "candidates.h"

static void test_legs_merge_by_id(void **s)
{
    query_cands set = {0};
    hsc_milvus_hit hits[2] = {{"t1", 0.9f}, {"t2", 0.5f}};
    query_cands_add_vector(&set, hits, 2);
    hsc_graph_candidate g[2] = {{.id = "t2", .score = 3.0, .intent = 2.0},
                                {.id = "t3", .score = 1.0}};
    query_cands_add_graph(&set, g, 2, 0);
    assert_int_equal(set.n, 3);
    hsc_candidate *t1 = query_cands_find(&set, "t1"), *t2 = query_cands_find(&set, "t2"),
                  *t3 = query_cands_find(&set, "t3");
    assert_non_null(t1), assert_non_null(t2), assert_non_null(t3);
    assert_true(t1->in_vector && !t1->in_graph && t1->vector_rank == 1);
    assert_true(fabsf((float)t1->vector_raw - 0.9f) < 1e-6);
    /* the title both legs found is one candidate carrying both answers */
    assert_true(t2->in_vector && t2->in_graph);
    assert_int_equal(t2->vector_rank, 2);
    assert_int_equal(t2->graph_rank, 1);
    assert_true(t2->graph_raw == 3.0 && t2->graph_intent == 2.0);
    assert_true(!t3->in_vector && t3->graph_rank == 2);
    assert_false(t2->has_rels); /* relationships were not asked for */
    assert_null(query_cands_find(&set, "t4"));
    query_cands_free(&set);
    assert_int_equal(set.n, 0);
    (void)s;
}

static void test_invalid_ids_are_dropped(void **s)
{
    query_cands set = {.corr = "c1"};
    hsc_milvus_hit hits[3] = {{"t1", 0.9f}, {"bad id", 0.8f}, {"", 0.7f}};
    query_cands_add_vector(&set, hits, 3);
    assert_int_equal(set.n, 1);
    assert_null(query_cands_get(&set, "t\"1"));
    assert_int_equal(set.n, 1);
    query_cands_free(&set);
    (void)s;
}

static void test_index_survives_growth_and_reorder(void **s)
{
    query_cands set = {0};
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "t%d", i);
        assert_non_null(query_cands_get(&set, id));
    }
    assert_int_equal(set.n, 1000);
    assert_ptr_equal(query_cands_get(&set, "t500"), &set.c[500]); /* not added twice */
    assert_int_equal(set.n, 1000);
    /* ranking keeps some and reorders them: the index follows */
    hsc_candidate keep = set.c[999];
    set.c[999] = set.c[0];
    set.c[0] = keep;
    for (size_t i = 2; i < set.n; i++)
        hsc_candidate_clear(&set.c[i]);
    set.n = 2;
    query_cands_reindex(&set);
    assert_ptr_equal(query_cands_find(&set, "t999"), &set.c[0]);
    assert_ptr_equal(query_cands_find(&set, "t1"), &set.c[1]);
    assert_null(query_cands_find(&set, "t500"));
    query_cands_free(&set);
    (void)s;
}

static void test_graph_paths_become_relationships(void **s)
{
    query_cands set = {0};
    hsc_graph_candidate g = {.id = "t2", .score = 1.3};
    g.why = "[{\"seed\":\"t1\",\"via\":\"similar\",\"score\":0.8},"
            "{\"seed\":\"t1\",\"via\":\"related\",\"score\":1},"
            "{\"seed\":\"t5\",\"via\":\"genre\",\"through\":\"drama\",\"score\":0.2},"
            "{\"via\":\"similar\",\"score\":0.1}]"; /* no seed: skipped */
    query_cands_add_graph(&set, &g, 1, 1);
    hsc_candidate *c = query_cands_find(&set, "t2");
    assert_true(c->has_rels);
    assert_int_equal(c->nrels, 3);
    assert_string_equal(c->rels[0].type, "SIMILAR_TO");
    assert_string_equal(c->rels[0].seed, "t1");
    assert_true(c->rels[0].score == 0.8);
    assert_string_equal(c->rels[1].type, "RELATED_TO");
    assert_string_equal(c->rels[2].type, "SHARES_TAG");
    assert_string_equal(c->rels[2].seed, "t5");
    query_cands_free(&set);
    (void)s;
}

static void test_links_score_and_rank(void **s)
{
    query_cands set = {0};
    hsc_milvus_hit hits[4] = {{"a", 0.9f}, {"b", 0.8f}, {"c", 0.7f}, {"d", 0.6f}};
    query_cands_add_vector(&set, hits, 4);
    hsc_graph_info v[4] = {{.id = "a"}, {.id = "b"}, {.id = "c"}, {.id = "zz"}};
    v[0].links = "[{\"seed\":\"s\",\"type\":\"SIMILAR_TO\",\"score\":0.5}]";
    v[1].links = "[{\"seed\":\"s\",\"type\":\"RELATED_TO\"},"                /* no score: worth 1 */
                 "{\"seed\":\"s2\",\"type\":\"SIMILAR_TO\",\"score\":0.5}]"; /* 1.5 */
    v[2].links = "[{\"seed\":\"s\",\"type\":\"SIMILAR_TO\",\"score\":0.5}]";
    v[3].links = "[{\"seed\":\"s\",\"type\":\"SIMILAR_TO\",\"score\":9}]"; /* not a candidate */
    query_cands_add_links(&set, v, 4, 1);
    assert_int_equal(set.n, 4);
    hsc_candidate *a = query_cands_find(&set, "a"), *b = query_cands_find(&set, "b"),
                  *c = query_cands_find(&set, "c"), *d = query_cands_find(&set, "d");
    assert_true(b->in_graph && b->graph_raw == 1.5 && b->graph_rank == 1);
    assert_int_equal(b->nrels, 2);
    assert_string_equal(b->rels[0].type, "RELATED_TO");
    assert_true(b->rels[0].score == 1.0);
    /* equal sums share a rank */
    assert_int_equal(a->graph_rank, 2);
    assert_int_equal(c->graph_rank, 2);
    assert_false(d->in_graph);
    assert_int_equal(d->graph_rank, 0);
    assert_false(d->has_rels);

    /* relationships only: titles that have some keep theirs, the others take them */
    hsc_graph_info more[2] = {{.id = "a"}, {.id = "d"}};
    more[0].links = more[1].links = "[{\"seed\":\"s9\",\"type\":\"RELATED_TO\"}]";
    query_cands_add_links(&set, more, 2, 0);
    assert_int_equal(a->nrels, 1);
    assert_string_equal(a->rels[0].seed, "s");
    assert_int_equal(d->nrels, 1);
    assert_string_equal(d->rels[0].seed, "s9");
    assert_false(d->in_graph); /* scores untouched */
    assert_int_equal(a->graph_rank, 2);
    query_cands_free(&set);
    (void)s;
}

static void tags(hsc_title_attrs *a, const char *g1, const char *g2, const char *t1)
{
    memset(a, 0, sizeof(*a));
    if (g1)
        hsc_strlist_push(&a->genres, g1, strlen(g1));
    if (g2)
        hsc_strlist_push(&a->genres, g2, strlen(g2));
    if (t1)
        hsc_strlist_push(&a->themes, t1, strlen(t1));
}

static void test_shared_tags_score_every_candidate(void **s)
{
    query_cands set = {0};
    /* v1: only Milvus found it; g1: the graph, by a SIMILAR_TO link of 0.5; g2: the graph,
     * by a weaker link of 0.3; x: no attributes */
    hsc_milvus_hit hits[2] = {{"v1", 0.9f}, {"x", 0.8f}};
    query_cands_add_vector(&set, hits, 2);
    hsc_graph_candidate g[2] = {{.id = "g1", .score = 0.5, .intent = 0.5},
                                {.id = "g2", .score = 0.3, .intent = 0.3}};
    query_cands_add_graph(&set, g, 2, 0);
    hsc_candidate *v1 = query_cands_find(&set, "v1"), *g1 = query_cands_find(&set, "g1"),
                  *g2 = query_cands_find(&set, "g2"), *x = query_cands_find(&set, "x");
    tags(&v1->attrs, "horror", "comedy", "space"); /* 2 with the seed, 1 with the history */
    tags(&g1->attrs, "drama", NULL, "space");      /* 1 with the history */
    tags(&g2->attrs, "Horror", NULL, NULL);        /* 1 with the seed (case-insensitive) */
    v1->has_attrs = g1->has_attrs = g2->has_attrs = true;
    hsc_title_attrs seed, hist;
    tags(&seed, "horror", "comedy", "heist");
    tags(&hist, "western", NULL, "space");
    query_seed_tags st[3] = {{&seed, 1.0}, {&hist, 0.5}, {NULL, 1.0}}; /* the third: deleted */
    query_cands_score_shared(&set, st, 3, 0.2);
    /* v1: 2 x 0.2 x 1 + 1 x 0.2 x 0.5; a vector-only title now has graph evidence */
    assert_true(v1->in_graph && fabs(v1->graph_raw - 0.5) < 1e-9);
    /* g1: its link plus one tag shared with the history seed */
    assert_true(fabs(g1->graph_raw - (0.5 + 0.1)) < 1e-9);
    assert_true(fabs(g2->graph_raw - (0.3 + 0.2)) < 1e-9);
    /* without attributes nothing is counted: it keeps what the legs said */
    assert_false(x->in_graph);
    assert_true(x->graph_raw == 0);
    /* ranked again by the new scores; ties share a rank */
    assert_int_equal(g1->graph_rank, 1);
    assert_int_equal(v1->graph_rank, 2);
    assert_int_equal(g2->graph_rank, 2);
    /* a weight of 0 leaves the scores as they are (the links alone, from the legs) */
    query_cands_score_shared(&set, st, 3, 0);
    assert_true(fabs(g1->graph_raw - 0.6) < 1e-9);
    for (hsc_title_attrs *a = &seed; a; a = a == &seed ? &hist : NULL) {
        hsc_strlist_clear(&a->genres);
        hsc_strlist_clear(&a->themes);
    }
    query_cands_free(&set);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legs_merge_by_id),
        cmocka_unit_test(test_invalid_ids_are_dropped),
        cmocka_unit_test(test_index_survives_growth_and_reorder),
        cmocka_unit_test(test_graph_paths_become_relationships),
        cmocka_unit_test(test_links_score_and_rank),
        cmocka_unit_test(test_shared_tags_score_every_candidate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
