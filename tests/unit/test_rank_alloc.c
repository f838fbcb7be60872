/*
 * Allocation-failure runs of the rank module (workers/query/rank.c): copying a
 * user's policy (what hsc-query does between its policy cache and a search)
 * and the whole rank step after it (the rules, the policy score, fusion and
 * selection) with the n-th allocation failing, for every n. A failed copy
 * says HSC_ENOMEM and leaves an empty policy, never a half-copied one that
 * would filter by part of the user's rules; a run that succeeds ranks exactly
 * as one with memory to spare; nothing leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank.h"
#include "failalloc.h"

static void push(hsc_strlist *l, const char *s)
{
    hsc_strlist_push(l, s, strlen(s));
}

/* A policy with something in every field hsc_policy_copy copies. */
static void make_policy(hsc_policy *p)
{
    static hsc_pref prefs[] = {{0, "horror", 5.0}, {1, "ghosts", 2.5}, {0, "comedy", -1.0}};
    memset(p, 0, sizeof(*p));
    p->user_id = strdup("u1");
    p->version = 4;
    push(&p->excluded_genres, "romance");
    push(&p->languages, "en");
    push(&p->languages, "fr");
    push(&p->blocked_ids, "t9");
    p->has_max_maturity = true, p->max_maturity = 16;
    p->nprefs = sizeof(prefs) / sizeof(prefs[0]);
    p->prefs = calloc(p->nprefs, sizeof(*p->prefs));
    for (size_t i = 0; i < p->nprefs; i++) {
        p->prefs[i] = prefs[i];
        p->prefs[i].name = strdup(prefs[i].name);
    }
    push(&p->history, "t1");
    push(&p->history, "t2");
}

static void assert_lists_equal(const hsc_strlist *a, const hsc_strlist *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->v[i], b->v[i]);
}

static void assert_policies_equal(const hsc_policy *a, const hsc_policy *b)
{
    assert_string_equal(a->user_id, b->user_id);
    assert_int_equal(a->version, b->version);
    assert_lists_equal(&a->excluded_genres, &b->excluded_genres);
    assert_lists_equal(&a->languages, &b->languages);
    assert_lists_equal(&a->blocked_ids, &b->blocked_ids);
    assert_int_equal(a->has_max_maturity, b->has_max_maturity);
    assert_int_equal(a->max_maturity, b->max_maturity);
    assert_int_equal(a->nprefs, b->nprefs);
    for (size_t i = 0; i < a->nprefs; i++) {
        assert_int_equal(a->prefs[i].theme, b->prefs[i].theme);
        assert_string_equal(a->prefs[i].name, b->prefs[i].name);
        assert_true(a->prefs[i].weight == b->prefs[i].weight);
    }
    assert_lists_equal(&a->history, &b->history);
}

/* A failed copy leaves dst as hsc_policy_clear would: nothing held, nothing half-set. */
static void assert_policy_empty(const hsc_policy *p)
{
    static const hsc_policy empty;
    assert_memory_equal(p, &empty, sizeof(empty));
}

typedef struct copy_case {
    hsc_policy src, dst;
    int rc;
} copy_case;

static int copy_body(void *ctx)
{
    copy_case *t = ctx;
    t->rc = hsc_policy_copy(&t->dst, &t->src);
    return t->rc;
}

static void copy_check(void *ctx)
{
    copy_case *t = ctx;
    if (t->rc) {
        assert_int_equal(t->rc, HSC_ENOMEM);
        assert_policy_empty(&t->dst);
        return;
    }
    assert_policies_equal(&t->dst, &t->src);
    hsc_policy_clear(&t->dst);
}

static void test_policy_copy(void **s)
{
    (void)s;
    if (!hsc_failalloc_active())
        skip();
    copy_case t;
    make_policy(&t.src);
    hsc_failalloc_case c = {
        .name = "hsc_policy_copy", .body = copy_body, .teardown = copy_check, .ctx = &t};
    /* user_id, prefs, four lists and three names: at least one allocation each */
    assert_true(hsc_failalloc_run(&c) >= 9);
    hsc_policy_clear(&t.src);
}

/* One search's candidates: titles with attributes, a seed, an excluded and a blocked id. */
#define NCAND 6

static void candidate(hsc_candidate *c, const char *id, const char *genre, const char *lang,
                      int maturity, double cos, double path)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->has_attrs = true;
    c->attrs.title = strdup(id);
    c->attrs.language = strdup(lang);
    push(&c->attrs.genres, genre);
    push(&c->attrs.themes, "ghosts");
    c->attrs.maturity = maturity;
    c->in_vector = cos > 0, c->vector_raw = cos;
    c->in_graph = path > 0, c->graph_raw = path, c->graph_intent = path / 2;
    c->rels = calloc(1, sizeof(*c->rels));
    c->rels[0].type = strdup("SIMILAR_TO");
    c->rels[0].seed = strdup("seed");
    c->nrels = 1, c->has_rels = true;
}

typedef struct step_case {
    hsc_policy cached, policy;
    hsc_search_request req;
    hsc_fusion fusion;
    hsc_candidate c[NCAND];
    size_t n;
    char order[NCAND][HSC_MAX_ID_LEN + 1]; /* the ranking with memory to spare */
    size_t norder;
    int rc;
} step_case;

static void step_setup(void *ctx)
{
    step_case *t = ctx;
    candidate(&t->c[0], "seed", "horror", "en", 12, 1.0, 3.0);
    candidate(&t->c[1], "t3", "horror", "en", 12, 0.9, 2.0);
    candidate(&t->c[2], "t4", "comedy", "fr", 12, 0.8, 0);
    candidate(&t->c[3], "t5", "romance", "en", 12, 0.7, 1.0); /* an excluded genre */
    candidate(&t->c[4], "t9", "horror", "en", 12, 0.95, 4.0); /* blocked by the user */
    candidate(&t->c[5], "t6", "horror", "de", 12, 0.6, 1.0);  /* a language not allowed */
    t->n = NCAND;
}

/* The rank step as hsc-query runs it once its backends have answered. */
static int step_body(void *ctx)
{
    step_case *t = ctx;
    t->rc = hsc_policy_copy(&t->policy, &t->cached);
    if (t->rc) {
        for (size_t i = 0; i < t->n; i++)
            hsc_candidate_clear(&t->c[i]);
        t->n = 0;
        return t->rc;
    }
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *why = NULL;
        if (hsc_rank_allows(&t->req.filters, &t->policy, &t->c[i], &why)) {
            t->c[i].policy_score = hsc_rank_policy_score(&t->policy, &t->c[i].attrs);
            t->c[kept++] = t->c[i];
        } else {
            hsc_candidate_clear(&t->c[i]);
        }
    }
    t->n = hsc_rank_select(t->c, kept, &t->fusion, &t->req);
    return 0;
}

static void step_check(void *ctx)
{
    step_case *t = ctx;
    if (t->rc) {
        assert_int_equal(t->rc, HSC_ENOMEM);
        assert_policy_empty(&t->policy);
    } else {
        assert_int_equal(t->n, t->norder);
        for (size_t i = 0; i < t->n; i++)
            assert_string_equal(t->c[i].id, t->order[i]);
    }
    for (size_t i = 0; i < t->n; i++)
        hsc_candidate_clear(&t->c[i]);
    hsc_policy_clear(&t->policy);
}

static void test_rank_step(void **s)
{
    (void)s;
    if (!hsc_failalloc_active())
        skip();
    static float e[2] = {1, 0};
    step_case t = {
        .fusion = {.w_vector = 1, .w_graph = 0.6, .w_policy = 0.4, .history_weight = 0.6}};
    make_policy(&t.cached);
    hsc_search_request_init(&t.req);
    t.req.embedding = e, t.req.dim = 2;
    push(&t.req.seed_ids, "seed");
    /* The order with memory to spare, once, outside any failure run. */
    step_setup(&t);
    assert_int_equal(step_body(&t), 0);
    t.norder = t.n;
    for (size_t i = 0; i < t.n; i++)
        memcpy(t.order[i], t.c[i].id, sizeof(t.order[i]));
    step_check(&t);
    /* the seed, the excluded genre, the blocked title and the other language are gone */
    assert_int_equal(t.norder, 2);
    assert_string_equal(t.order[0], "t3");
    assert_string_equal(t.order[1], "t4");

    hsc_failalloc_case c = {.name = "rank step",
                            .setup = step_setup,
                            .body = step_body,
                            .teardown = step_check,
                            .ctx = &t};
    assert_true(hsc_failalloc_run(&c) >= 9);
    t.req.embedding = NULL;
    hsc_search_request_clear(&t.req);
    hsc_policy_clear(&t.cached);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_copy),
        cmocka_unit_test(test_rank_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
