/*
 * Tests of hsc-enrich's similarity index (workers/enrich/simindex.c): every
 * title's list against the formula computed here independently (brute force
 * over all pairs), after inserts, re-tags and deletes, with a hot genre
 * shared by half the catalogue; the change set replayed onto a mirror graph
 * equals the lists; versions and the owner's re-write rule.
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

#include "enrich/simindex.h"

#define MAXN 1500
#define TOP 10

static const struct simindex_weights W = {
    .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = TOP};

/* The test's own copy of the catalogue. */
struct item {
    char id[24];
    int alive;
    int64_t version;
    hsc_strlist g, t, m;
};
static struct item items[MAXN];
static size_t nitems;

/* The graph as the change sets built it: per title, its out-edges. */
struct medge {
    char dst[24];
    double score;
};
static struct medge mirror[MAXN][TOP * 4];
static size_t nmirror[MAXN];

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void push(hsc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return;
    hsc_strlist_push(l, s, strlen(s));
}

static void clear_item(struct item *it)
{
    hsc_strlist_clear(&it->g);
    hsc_strlist_clear(&it->t);
    hsc_strlist_clear(&it->m);
}

/* Tags like `hsc sample`, plus "drama" on half the titles (the hot genre). */
static void draw_tags(struct item *it)
{
    static const char *G[] = {"horror", "comedy", "romance", "thriller", "crime", "action"};
    static const char *T[] = {"space", "love", "war", "heist", "survival", "family", "revenge"};
    static const char *M[] = {"dark", "tense", "funny", "uplifting"};
    clear_item(it);
    if (rnd(2))
        push(&it->g, "drama");
    for (unsigned k = rnd(2); k < 2; k++)
        push(&it->g, G[rnd(6)]);
    for (unsigned k = rnd(3); k < 3; k++)
        push(&it->t, T[rnd(7)]);
    for (unsigned k = rnd(3); k < 2; k++)
        push(&it->m, M[rnd(4)]);
}

static int has(const hsc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 1;
    return 0;
}

/* The formula of docs/neo4j.md, written out again here. */
static double formula(const struct item *a, const struct item *b)
{
    double shared = 0, wa = 0, wb = 0;
    for (size_t i = 0; i < a->g.n; i++)
        shared += has(&b->g, a->g.v[i]) ? W.genre : 0;
    for (size_t i = 0; i < a->t.n; i++)
        shared += has(&b->t, a->t.v[i]) ? W.theme : 0;
    for (size_t i = 0; i < a->m.n; i++)
        shared += has(&b->m, a->m.v[i]) ? W.mood : 0;
    wa = a->g.n * W.genre + a->t.n * W.theme + a->m.n * W.mood;
    wb = b->g.n * W.genre + b->t.n * W.theme + b->m.n * W.mood;
    double uni = wa + wb - shared;
    return uni > 0 ? shared / uni : 0;
}

static struct item *item_of(const char *id)
{
    for (size_t i = 0; i < nitems; i++)
        if (!strcmp(items[i].id, id))
            return &items[i];
    return NULL;
}

/* Checks a's list: scores by the formula, best first, and nothing better left out. */
static void check_list(simindex *ix, struct item *a)
{
    struct simindex_neighbour nb[TOP];
    size_t n = simindex_list(ix, a->id, nb, TOP);
    if (!a->alive) {
        assert_int_equal(n, 0);
        return;
    }
    assert_true(n <= TOP);
    size_t qualifying = 0;
    for (size_t i = 0; i < nitems; i++)
        qualifying += &items[i] != a && items[i].alive && formula(a, &items[i]) >= W.min_score;
    assert_int_equal(n, qualifying < TOP ? qualifying : TOP);
    for (size_t k = 0; k < n; k++) {
        struct item *b = item_of(nb[k].id);
        assert_non_null(b);
        assert_true(b->alive && b != a);
        double want = formula(a, b);
        if (fabs(nb[k].score - want) > 1e-12)
            fail_msg("%s -> %s: %.15f, formula %.15f", a->id, b->id, nb[k].score, want);
        if (k)
            assert_true(nb[k - 1].score > nb[k].score - 1e-12);
        /* Equal doubles go by id; scores equal only on paper may be in either order. */
        if (k && nb[k - 1].score == nb[k].score)
            assert_true(strcmp(nb[k - 1].id, nb[k].id) < 0);
    }
    double lowest = n ? nb[n - 1].score : 0;
    for (size_t i = 0; i < nitems; i++) {
        struct item *b = &items[i];
        if (b == a || !b->alive)
            continue;
        double s = formula(a, b);
        int linked = 0;
        for (size_t k = 0; k < n; k++)
            linked |= !strcmp(nb[k].id, b->id);
        /* A near-tie with the weakest kept (within rounding) may go either way. */
        int must = s >= W.min_score && (n < TOP || s > lowest + 1e-12);
        if (must && !linked)
            fail_msg("%s: %s scores %.15f, left out (lowest kept %.15f, %zu kept)", a->id, b->id, s,
                     lowest, n);
    }
}

static size_t mirror_index(const char *id)
{
    struct item *it = item_of(id);
    assert_non_null(it);
    return (size_t)(it - items);
}

/* Applies a change set as the Cypher does: replace lists, then edge deletes and adds. */
static void apply_changes(simindex *ix)
{
    struct simindex_changes ch;
    assert_int_equal(simindex_take(ix, &ch), 0);
    for (size_t i = 0; i < nitems; i++)
        if (!items[i].alive)
            nmirror[i] = 0; /* DETACH DELETE */
    for (size_t i = 0; i < ch.nreplace; i++) {
        size_t s = mirror_index(ch.replace[i]);
        struct simindex_neighbour nb[TOP];
        size_t n = simindex_list(ix, ch.replace[i], nb, TOP);
        nmirror[s] = 0;
        for (size_t k = 0; k < n; k++) {
            snprintf(mirror[s][k].dst, sizeof(mirror[s][k].dst), "%s", nb[k].id);
            mirror[s][k].score = nb[k].score;
        }
        nmirror[s] = n;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ch.nedges; i++) {
            const struct simindex_edge *e = &ch.edges[i];
            if ((pass == 0) != (e->score < 0))
                continue;
            size_t s = mirror_index(e->src);
            size_t k = 0;
            while (k < nmirror[s] && strcmp(mirror[s][k].dst, e->dst))
                k++;
            if (e->score < 0) {
                if (k < nmirror[s])
                    mirror[s][k] = mirror[s][--nmirror[s]];
            } else {
                if (!item_of(e->dst)->alive)
                    continue; /* MATCH finds no node */
                if (k == nmirror[s]) {
                    assert_true(nmirror[s] < TOP * 4);
                    nmirror[s]++;
                }
                snprintf(mirror[s][k].dst, sizeof(mirror[s][k].dst), "%s", e->dst);
                mirror[s][k].score = e->score;
            }
        }
    }
}

/* The mirror graph holds exactly each title's list. */
static void check_mirror(simindex *ix)
{
    for (size_t i = 0; i < nitems; i++) {
        struct simindex_neighbour nb[TOP];
        size_t n = simindex_list(ix, items[i].id, nb, TOP);
        if (n != nmirror[i])
            fail_msg("%s: %zu edges written, list holds %zu", items[i].id, nmirror[i], n);
        for (size_t k = 0; k < n; k++) {
            size_t j = 0;
            while (j < nmirror[i] && strcmp(mirror[i][j].dst, nb[k].id))
                j++;
            if (j == nmirror[i])
                fail_msg("%s -> %s is in the list, not in the graph", items[i].id, nb[k].id);
            assert_true(mirror[i][j].score == nb[k].score);
        }
    }
}

static void add_item(simindex *ix, size_t i)
{
    struct item *it = &items[i];
    /* ids not in insertion order, so ties by id are not ties by age */
    snprintf(it->id, sizeof(it->id), "t%05zu", i * 7919 % 100000);
    it->alive = 1;
    it->version = 1;
    draw_tags(it);
    assert_int_equal(simindex_upsert(ix, it->id, 1, &it->g, &it->t, &it->m), 1);
}

static void free_items(void)
{
    for (size_t i = 0; i < nitems; i++)
        clear_item(&items[i]);
    memset(items, 0, sizeof(items));
    memset(nmirror, 0, sizeof(nmirror));
    nitems = 0;
}

static void test_lists_match_the_formula_through_changes(void **state)
{
    (void)state;
    hsc_err err = {0};
    simindex *ix = simindex_new(&W, &err);
    assert_non_null(ix);
    nitems = 600;
    for (size_t i = 0; i < nitems; i++) {
        add_item(ix, i);
        if (i % 50 == 49)
            apply_changes(ix);
    }
    apply_changes(ix);
    for (size_t i = 0; i < nitems; i++)
        check_list(ix, &items[i]);
    check_mirror(ix);

    /* Re-tags, deletes and re-creations, in batches of 20. */
    for (int op = 0; op < 400; op++) {
        struct item *it = &items[rnd((unsigned)nitems)];
        it->version++;
        if (it->alive && rnd(3) == 0) {
            it->alive = 0;
            assert_int_equal(simindex_delete(ix, it->id, it->version), 1);
        } else {
            it->alive = 1;
            draw_tags(it);
            assert_int_equal(simindex_upsert(ix, it->id, it->version, &it->g, &it->t, &it->m), 1);
        }
        if (op % 20 == 19)
            apply_changes(ix);
    }
    apply_changes(ix);
    for (size_t i = 0; i < nitems; i++)
        check_list(ix, &items[i]);
    check_mirror(ix);

    struct simindex_stats st;
    simindex_get_stats(ix, &st);
    size_t alive = 0;
    for (size_t i = 0; i < nitems; i++)
        alive += items[i].alive;
    assert_int_equal(st.titles, alive);
    assert_int_equal(st.titles + st.deleted, nitems);
    simindex_free(ix);
    free_items();
}

static void test_hot_genre_is_exact_and_pruned(void **state)
{
    (void)state;
    hsc_err err = {0};
    simindex *ix = simindex_new(&W, &err);
    assert_non_null(ix);
    memset(nmirror, 0, sizeof(nmirror));
    nitems = MAXN;
    for (size_t i = 0; i < nitems; i++) {
        struct item *it = &items[i];
        snprintf(it->id, sizeof(it->id), "h%05zu", i);
        it->alive = 1;
        it->version = 1;
        draw_tags(it);
        assert_int_equal(simindex_upsert(ix, it->id, 1, &it->g, &it->t, &it->m), 1);
    }
    apply_changes(ix);
    for (size_t i = 0; i < nitems; i += 7)
        check_list(ix, &items[i]);
    check_mirror(ix);
    /* A bulk load of the same catalogue (as at start) holds the same lists. */
    simindex *bulk = simindex_new(&W, &err);
    assert_non_null(bulk);
    simindex_bulk_begin(bulk);
    for (size_t i = 0; i < nitems; i++)
        assert_int_equal(
            simindex_upsert(bulk, items[i].id, 1, &items[i].g, &items[i].t, &items[i].m), 1);
    assert_int_equal(simindex_bulk_end(bulk), 0);
    for (size_t i = 0; i < nitems; i++) {
        struct simindex_neighbour a[TOP], b[TOP];
        size_t na = simindex_list(ix, items[i].id, a, TOP);
        assert_int_equal(simindex_list(bulk, items[i].id, b, TOP), na);
        for (size_t k = 0; k < na; k++) {
            assert_string_equal(a[k].id, b[k].id);
            assert_true(a[k].score == b[k].score);
        }
    }
    struct simindex_changes ch;
    assert_int_equal(simindex_take(bulk, &ch), 0);
    assert_int_equal(ch.nreplace + ch.nedges, 0);
    simindex_free(bulk);

    struct simindex_stats st;
    simindex_get_stats(ix, &st);
    /* Every insert visiting every title sharing a tag would score about n^2/2 pairs. */
    unsigned long long all_pairs = (unsigned long long)nitems * nitems / 2;
    print_message("scored %llu pairs of %llu, skipped %llu postings, %zu bytes/title\n", st.scored,
                  all_pairs, st.skipped, st.bytes / st.titles);
    assert_true(st.skipped > 0);
    assert_true(st.scored < all_pairs / 2);
    simindex_free(ix);
    free_items();
}

static void test_versions_and_the_owners_rewrite(void **state)
{
    (void)state;
    hsc_err err = {0};
    simindex *ix = simindex_new(&W, &err);
    assert_non_null(ix);
    hsc_strlist g = {0}, t = {0}, m = {0};
    push(&g, "drama");
    push(&t, "war");
    assert_int_equal(simindex_upsert(ix, "a", 2, &g, &t, &m), 1);
    assert_int_equal(simindex_upsert(ix, "b", 1, &g, &t, &m), 1);
    /* An older event changes nothing; an equal one with the same tags is a no-op. */
    assert_int_equal(simindex_upsert(ix, "a", 1, &g, &m, &m), 0);
    struct simindex_changes ch;
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace, 0);
    assert_int_equal(ch.nedges, 2); /* a -> b and b -> a, score 1 */
    assert_true(ch.edges[0].score == 1.0 && ch.edges[1].score == 1.0);
    assert_int_equal(simindex_upsert(ix, "a", 2, &g, &t, &m), 1);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace + ch.nedges, 0);

    /* The owner's write replaces a's list and writes b -> a again. */
    assert_int_equal(simindex_mark_written(ix, "a"), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace, 1);
    assert_string_equal(ch.replace[0], "a");
    assert_int_equal(ch.nedges, 1);
    assert_string_equal(ch.edges[0].src, "b");
    assert_string_equal(ch.edges[0].dst, "a");

    /* A delete: b's edge goes; a late older upsert does not bring a back. */
    assert_int_equal(simindex_delete(ix, "a", 3), 1);
    assert_int_equal(simindex_upsert(ix, "a", 3, &g, &t, &m), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nedges, 1);
    assert_string_equal(ch.edges[0].src, "b");
    assert_true(ch.edges[0].score < 0);
    struct simindex_neighbour nb[TOP];
    assert_int_equal(simindex_list(ix, "b", nb, TOP), 0);
    int64_t v;
    int deleted;
    assert_int_equal(simindex_version(ix, "a", &v, &deleted), 1);
    assert_int_equal(v, 3);
    assert_int_equal(deleted, 1);
    /* A newer one does. */
    assert_int_equal(simindex_upsert(ix, "a", 4, &g, &t, &m), 1);
    assert_int_equal(simindex_list(ix, "b", nb, TOP), 1);
    assert_string_equal(nb[0].id, "a");
    simindex_free(ix);
    hsc_strlist_clear(&g);
    hsc_strlist_clear(&t);
}

/* The owner's write re-sends o -> x; if o then drops x in the same change set, o -> x
 * goes (an earlier add of it may still be waiting to be written). */
static void test_owners_rewrite_keeps_a_later_removal(void **state)
{
    (void)state;
    struct simindex_weights w1 = W;
    w1.top_n = 1;
    hsc_err err = {0};
    simindex *ix = simindex_new(&w1, &err);
    assert_non_null(ix);
    hsc_strlist g = {0}, t = {0}, m = {0};
    push(&g, "drama");
    push(&t, "war");
    assert_int_equal(simindex_upsert(ix, "a", 1, &g, &t, &m), 1);
    assert_int_equal(simindex_upsert(ix, "x", 1, &g, &t, &m), 1);
    struct simindex_changes ch;
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(simindex_mark_written(ix, "x"), 0);
    /* w ties with x and sorts first, so a's one slot goes to w. */
    assert_int_equal(simindex_upsert(ix, "w", 1, &g, &t, &m), 1);
    assert_int_equal(simindex_take(ix, &ch), 0);
    int removed = 0, added = 0;
    for (size_t i = 0; i < ch.nedges; i++) {
        if (!strcmp(ch.edges[i].src, "a")) {
            removed += !strcmp(ch.edges[i].dst, "x") && ch.edges[i].score < 0;
            added += !strcmp(ch.edges[i].dst, "w") && ch.edges[i].score >= 0;
        }
    }
    assert_int_equal(removed, 1);
    assert_int_equal(added, 1);
    simindex_free(ix);
    hsc_strlist_clear(&g);
    hsc_strlist_clear(&t);
}

/* Edges from and to a title waiting for its owner's write are left out until that write,
 * which sends them all; removals are kept; a revoke writes every waiting title. */
static void test_pending_titles_wait_for_their_write(void **state)
{
    (void)state;
    hsc_err err = {0};
    simindex *ix = simindex_new(&W, &err);
    assert_non_null(ix);
    hsc_strlist g = {0}, t = {0}, m = {0};
    push(&g, "drama");
    push(&t, "war");
    assert_int_equal(simindex_upsert(ix, "a", 1, &g, &t, &m), 1);
    struct simindex_changes ch;
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(simindex_upsert(ix, "b", 1, &g, &t, &m), 1);
    assert_int_equal(simindex_set_pending(ix, "b"), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace + ch.nedges, 0);
    struct simindex_neighbour nb[TOP];
    assert_int_equal(simindex_list(ix, "a", nb, TOP), 1);
    assert_int_equal(simindex_list_to_write(ix, "a", nb, TOP), 0);

    /* The owner's write: b's list whole and a -> b. */
    assert_int_equal(simindex_mark_written(ix, "b"), 0);
    assert_int_equal(simindex_list_to_write(ix, "a", nb, TOP), 1);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace, 1);
    assert_string_equal(ch.replace[0], "b");
    assert_int_equal(ch.nedges, 1);
    assert_string_equal(ch.edges[0].src, "a");
    assert_string_equal(ch.edges[0].dst, "b");
    assert_true(ch.edges[0].score >= 0);

    /* A newer b waiting again, re-tagged away from a: a -> b is removed, nothing added. */
    hsc_strlist g2 = {0};
    push(&g2, "comedy");
    assert_int_equal(simindex_upsert(ix, "b", 2, &g2, &m, &m), 1);
    assert_int_equal(simindex_set_pending(ix, "b"), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    int removed = 0;
    for (size_t i = 0; i < ch.nedges; i++) {
        assert_true(ch.edges[i].score < 0);
        removed += !strcmp(ch.edges[i].src, "a") && !strcmp(ch.edges[i].dst, "b");
    }
    assert_int_equal(removed, 1);

    /* Back to a's tags while waiting; the revoke writes b as its owner would. */
    assert_int_equal(simindex_upsert(ix, "b", 3, &g, &t, &m), 1);
    assert_int_equal(simindex_set_pending(ix, "b"), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace + ch.nedges, 0);
    assert_int_equal(simindex_release_pending(ix), 0);
    assert_int_equal(simindex_take(ix, &ch), 0);
    assert_int_equal(ch.nreplace, 1);
    assert_string_equal(ch.replace[0], "b");
    assert_int_equal(ch.nedges, 1);
    assert_string_equal(ch.edges[0].src, "a");
    simindex_free(ix);
    hsc_strlist_clear(&g);
    hsc_strlist_clear(&g2);
    hsc_strlist_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_match_the_formula_through_changes),
        cmocka_unit_test(test_hot_genre_is_exact_and_pruned),
        cmocka_unit_test(test_versions_and_the_owners_rewrite),
        cmocka_unit_test(test_owners_rewrite_keeps_a_later_removal),
        cmocka_unit_test(test_pending_titles_wait_for_their_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
