/*
 * The rank step (workers/query/rank.c): seeds and excluded titles never come back,
 * a stated intent outranks the user's history, the policy score neither
 * saturates nor ignores how many liked tags a title matches, graph scores
 * keep the ratio between a strong and a weak path; the fusion arithmetic
 * (weighted and RRF, ties by id), the hard filters of the request and the
 * user's policy, and the policy score.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rank.h"

static void vec(hsc_candidate *c, const char *id, double cos, int rank)
{
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->in_vector = true, c->vector_raw = cos, c->vector_rank = rank;
}

static void graph(hsc_candidate *c, const char *id, double sum, int rank)
{
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->in_graph = true, c->graph_raw = sum, c->graph_rank = rank;
}

static void push(hsc_strlist *l, const char *s)
{
    hsc_strlist_push(l, s, strlen(s));
}

/* Whatever the fusion and whatever the sources say, a seed or an excluded id is dropped. */
static void test_seeds_and_exclusions_never_returned(void **s)
{
    (void)s;
    for (int rrf = 0; rrf < 2; rrf++) {
        hsc_candidate c[4] = {0};
        vec(&c[0], "seed", 1.0, 1); /* the seed's own embedding is its nearest neighbour */
        c[0].in_graph = true, c[0].graph_raw = 5, c[0].graph_rank = 1;
        vec(&c[1], "near", 0.9, 2);
        graph(&c[2], "blocked", 4, 2);
        graph(&c[3], "other", 1, 3);
        hsc_search_request r;
        hsc_search_request_init(&r);
        push(&r.seed_ids, "seed");
        push(&r.filters.exclude_ids, "blocked");
        hsc_fusion f = {
            .rrf = rrf, .rrf_k = 60, .w_vector = 1, .w_graph = 0.6, .history_weight = 0.3};
        size_t n = hsc_rank_select(c, 4, &f, &r);
        assert_int_equal(n, 2);
        assert_string_equal(c[0].id, "near");
        assert_string_equal(c[1].id, "other");
        for (size_t i = 0; i < n; i++)
            hsc_candidate_clear(&c[i]);
        hsc_search_request_clear(&r);
    }
}

/*
 * A user whose history found "past" strongly in the graph, searching with an
 * embedding and no seeds: the vector's best ("asked") outranks it unless the
 * history weight is 1.
 */
static void test_intent_outranks_history(void **s)
{
    (void)s;
    float e[2] = {1, 0};
    for (int hw10 = 1; hw10 <= 10; hw10 += 9) {
        hsc_candidate c[3] = {0};
        vec(&c[0], "asked", 0.95, 1);
        vec(&c[1], "asked2", 0.90, 2);
        graph(&c[2], "past", 3.0, 1);
        c[2].in_vector = true, c[2].vector_raw = 0.91, c[2].vector_rank = 2;
        c[2].policy_score = 0.9;
        hsc_search_request r;
        hsc_search_request_init(&r);
        r.embedding = e, r.dim = 2;
        r.user_id = strdup("u");
        hsc_fusion f = {
            .w_vector = 1, .w_graph = 0.6, .w_policy = 0.4, .history_weight = hw10 / 10.0};
        size_t n = hsc_rank_select(c, 3, &f, &r);
        assert_int_equal(n, 3);
        /* history 0.1: asked 1.0 > past 0.2 + 0.06 + 0.036; history 1: past 0.2 + 0.6 + 0.36 */
        assert_string_equal(c[0].id, hw10 == 1 ? "asked" : "past");
        r.embedding = NULL;
        hsc_search_request_clear(&r);
    }
}

/*
 * "Like X" for a user whose history is elsewhere: a title only the history found
 * ("theirs") comes after everything X's seed and embedding found, however strongly the
 * history backs it, and scores still fall down the list.
 */
static void test_history_fills_after_intent(void **s)
{
    (void)s;
    float e[2] = {1, 0};
    hsc_candidate c[4] = {0};
    vec(&c[0], "near-x", 0.9, 1);
    vec(&c[1], "near-x2", 0.8, 2);
    graph(&c[2], "via-x", 0.5, 2);
    c[2].graph_intent = 0.5;
    graph(&c[3], "theirs", 4.0, 1); /* many paths from the history seeds */
    c[3].policy_score = 0.95;
    hsc_search_request r;
    hsc_search_request_init(&r);
    r.embedding = e, r.dim = 2;
    r.user_id = strdup("u");
    push(&r.seed_ids, "x");
    hsc_fusion f = {.w_vector = 1, .w_graph = 0.6, .w_policy = 0.4, .history_weight = 1};
    size_t n = hsc_rank_select(c, 4, &f, &r);
    assert_int_equal(n, 4);
    assert_string_equal(c[3].id, "theirs");
    assert_true(c[3].fill && !c[0].fill && !c[2].fill);
    for (size_t i = 1; i < n; i++)
        assert_true(c[i].score < c[i - 1].score);
    /* without an intent (a user alone) the history is the query: no fill */
    hsc_candidate d[2] = {0};
    graph(&d[0], "a", 1.0, 2);
    graph(&d[1], "b", 4.0, 1);
    r.embedding = NULL;
    hsc_strlist_clear(&r.seed_ids);
    n = hsc_rank_select(d, 2, &f, &r);
    assert_string_equal(d[0].id, "b");
    assert_false(d[0].fill || d[1].fill);
    hsc_search_request_clear(&r);
}

/* The policy score is bounded by the strongest weight, so it never saturates at 1. */
static void test_policy_score_bounded_and_graded(void **s)
{
    (void)s;
    hsc_policy p = {0};
    hsc_pref prefs[3] = {{0, "horror", 500.0}, {1, "ghosts", 250.0}, {0, "comedy", -100.0}};
    p.prefs = prefs, p.nprefs = 3;
    hsc_title_attrs one = {0}, two = {0}, mixed = {0};
    push(&one.genres, "Horror");
    push(&two.genres, "horror"), push(&two.themes, "ghosts");
    push(&mixed.genres, "horror"), push(&mixed.genres, "comedy");
    double s1 = hsc_rank_policy_score(&p, &one), s2 = hsc_rank_policy_score(&p, &two),
           s3 = hsc_rank_policy_score(&p, &mixed);
    assert_true(s2 > s1 && s1 > s3 && s3 > 0);
    assert_true(s2 < 0.95); /* 750 / 1000: tanh(0.75) */
    assert_true(fabs(s2 - tanh(0.75)) < 1e-12);
    /* the same tastes from ten times fewer interactions score the same */
    prefs[0].weight = 50, prefs[1].weight = 25, prefs[2].weight = -10;
    assert_true(fabs(hsc_rank_policy_score(&p, &two) - s2) < 1e-12);
    hsc_strlist_clear(&one.genres);
    hsc_strlist_clear(&two.genres);
    hsc_strlist_clear(&two.themes);
    hsc_strlist_clear(&mixed.genres);
}

/* Graph sums are divided by the largest: the weakest path is not 0, and 2 paths beat 1. */
static void test_graph_scores_keep_ratios(void **s)
{
    (void)s;
    hsc_candidate c[3] = {0};
    graph(&c[0], "a", 2.0, 1);
    graph(&c[1], "b", 1.0, 2);
    graph(&c[2], "c", 0.5, 3);
    hsc_fusion f = {.w_vector = 1, .w_graph = 1, .w_policy = 0};
    hsc_rank_fuse(c, 3, &f);
    assert_true(fabs(c[0].graph_score - 1.0) < 1e-12);
    assert_true(fabs(c[1].graph_score - 0.5) < 1e-12);
    assert_true(fabs(c[2].graph_score - 0.25) < 1e-12);
}

static void test_fusion_weighted(void **s)
{
    hsc_candidate c[3] = {0};
    strcpy(c[0].id, "a"), c[0].in_vector = 1, c[0].vector_raw = 0.9, c[0].vector_rank = 1;
    strcpy(c[1].id, "b"), c[1].in_vector = 1, c[1].vector_raw = 0.5, c[1].vector_rank = 2;
    c[1].in_graph = 1, c[1].graph_raw = 3.0, c[1].graph_rank = 1;
    strcpy(c[2].id, "c"), c[2].in_graph = 1, c[2].graph_raw = 1.0, c[2].graph_rank = 2;
    c[2].policy_score = 0.5;
    hsc_fusion f = {.w_vector = 1.0, .w_graph = 0.6, .w_policy = 0.4};
    hsc_rank_fuse(c, 3, &f);
    /* a: v=1 -> 1.0; b: v=0, g=1 -> 0.6; c: g=1/3 (sums are divided by the largest), p=0.5
     * -> 0.2 + 0.2 */
    assert_string_equal(c[0].id, "a");
    assert_true(fabs(c[0].score - 1.0) < 1e-12);
    assert_string_equal(c[1].id, "b");
    assert_true(fabs(c[1].score - 0.6) < 1e-12);
    assert_true(fabs(c[1].vector_score) < 1e-12 && fabs(c[1].graph_score - 1) < 1e-12);
    assert_string_equal(c[2].id, "c");
    assert_true(fabs(c[2].graph_score - 1.0 / 3) < 1e-12);
    assert_true(fabs(c[2].score - 0.4) < 1e-12);
    (void)s;
}

static void test_fusion_rrf_and_ties(void **s)
{
    hsc_candidate c[3] = {0};
    strcpy(c[0].id, "z"), c[0].in_vector = 1, c[0].vector_raw = 0.8, c[0].vector_rank = 2;
    strcpy(c[1].id, "y"), c[1].in_vector = 1, c[1].vector_raw = 0.9, c[1].vector_rank = 1;
    c[1].in_graph = 1, c[1].graph_raw = 2, c[1].graph_rank = 1;
    strcpy(c[2].id, "x"), c[2].in_vector = 1, c[2].vector_raw = 0.8, c[2].vector_rank = 2;
    hsc_fusion f = {.rrf = 1, .rrf_k = 60, .w_vector = 1, .w_graph = 1, .w_policy = 0};
    hsc_rank_fuse(c, 3, &f);
    assert_string_equal(c[0].id, "y");
    assert_true(fabs(c[0].score - (1.0 / 61 + 1.0 / 61)) < 1e-12);
    /* equal scores: ordered by id, so replies are stable */
    assert_string_equal(c[1].id, "x");
    assert_string_equal(c[2].id, "z");
    assert_true(fabs(c[1].score - 1.0 / 62) < 1e-12);
    (void)s;
}

static void set_attrs(hsc_candidate *c, const char *genre, const char *lang, int year, int mat)
{
    c->has_attrs = true;
    hsc_strlist_push(&c->attrs.genres, genre, strlen(genre));
    c->attrs.language = lang ? strdup(lang) : NULL;
    c->attrs.year = year;
    c->attrs.maturity = mat;
}

static void test_hard_filters(void **s)
{
    hsc_candidate c = {0};
    strcpy(c.id, "t1");
    set_attrs(&c, "horror", "en", 2001, 16);
    hsc_policy p = {0};
    hsc_search_filters f = {0};
    const char *why = NULL;
    assert_true(hsc_rank_allows(&f, &p, &c, &why));
    hsc_strlist_push(&p.excluded_genres, "Horror", 6); /* case does not matter */
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    assert_string_equal(why, "a genre the user excludes");
    hsc_strlist_clear(&p.excluded_genres);
    p.has_max_maturity = true, p.max_maturity = 12;
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    p.max_maturity = 18;
    assert_true(hsc_rank_allows(&f, &p, &c, &why));
    hsc_strlist_push(&p.languages, "fr", 2);
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    assert_string_equal(why, "not in the user's languages");
    hsc_policy_clear(&p);
    f.has = HSC_FILTER_YEAR_MIN, f.year_min = 2005;
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    f.has = 0;
    hsc_strlist_push(&f.genres, "comedy", 6);
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    assert_string_equal(why, "none of the requested genres");
    hsc_strlist_push(&f.genres, "HORROR", 6);
    assert_true(hsc_rank_allows(&f, NULL, &c, &why));
    hsc_strlist_push(&f.exclude_ids, "t1", 2);
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    /* an unrated title never passes a maturity ceiling */
    hsc_strlist_clear(&f.genres);
    hsc_strlist_clear(&f.exclude_ids);
    c.attrs.maturity = -1;
    f.has = HSC_FILTER_MAX_MATURITY, f.max_maturity = 21;
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    hsc_candidate_clear(&c);
    (void)s;
}

static void test_policy_score(void **s)
{
    hsc_policy p = {0};
    hsc_pref prefs[2] = {{0, "science fiction", 3.0}, {1, "space", -1.5}};
    p.prefs = prefs, p.nprefs = 2;
    hsc_title_attrs a = {0};
    hsc_strlist_push(&a.genres, "science fiction", 15);
    /* tanh(Σ matched / (2 × the strongest weight)) */
    assert_true(fabs(hsc_rank_policy_score(&p, &a) - tanh(0.5)) < 1e-12);
    hsc_strlist_push(&a.themes, "space", 5);
    assert_true(fabs(hsc_rank_policy_score(&p, &a) - tanh(0.25)) < 1e-12);
    assert_true(hsc_rank_policy_score(NULL, &a) == 0);
    hsc_strlist_clear(&a.genres);
    hsc_strlist_clear(&a.themes);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_and_exclusions_never_returned),
        cmocka_unit_test(test_intent_outranks_history),
        cmocka_unit_test(test_history_fills_after_intent),
        cmocka_unit_test(test_policy_score_bounded_and_graded),
        cmocka_unit_test(test_graph_scores_keep_ratios),
        cmocka_unit_test(test_fusion_weighted),
        cmocka_unit_test(test_fusion_rrf_and_ties),
        cmocka_unit_test(test_hard_filters),
        cmocka_unit_test(test_policy_score),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
