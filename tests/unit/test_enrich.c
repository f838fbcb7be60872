/*
 * Tests of hsc-enrich's pure parts: the vocabulary, keyword extraction, the
 * similarity formula, the statement's parameters and how pending changes are
 * split between statements.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enrich/enrich.h"

static struct enrich_vocab vocab;

static int setup(void **state)
{
    (void)state;
    hsc_err err = {0};
    return enrich_vocab_load(HSC_SOURCE_DIR "/schemas/vocabulary.tsv", &vocab, &err);
}

static int teardown(void **state)
{
    (void)state;
    enrich_vocab_free(&vocab);
    return 0;
}

static void push(hsc_strlist *l, const char *s)
{
    hsc_strlist_push(l, s, strlen(s));
}

/* Frees the lists only: the tests' strings are literals. */
static void clear_lists(hsc_content_event *ev)
{
    hsc_strlist_clear(&ev->genres);
    hsc_strlist_clear(&ev->themes);
    hsc_strlist_clear(&ev->moods);
}

static void test_extract_whole_words(void **state)
{
    (void)state;
    hsc_content_event ev = {.title = "Ghost Orbit",
                            .description = "A bittersweet HEIST, in space."};
    push(&ev.themes, "heist"); /* already there: not added twice */
    size_t added = enrich_extract(&vocab, &ev);
    /* haunting (ghost), space (orbit/space), melancholic (bittersweet); heist was present */
    assert_int_equal(added, 3);
    int has_space = 0, has_haunting = 0, heists = 0;
    for (size_t i = 0; i < ev.themes.n; i++) {
        has_space |= !strcmp(ev.themes.v[i], "space");
        has_haunting |= !strcmp(ev.themes.v[i], "haunting");
        heists += !strcmp(ev.themes.v[i], "heist");
    }
    assert_true(has_space && has_haunting);
    assert_int_equal(heists, 1);
    assert_int_equal(ev.moods.n, 1);
    assert_string_equal(ev.moods.v[0], "melancholic");
    clear_lists(&ev);
    /* "warm" is not "war", "spacey" is not "space" */
    hsc_content_event e2 = {.title = "Warm Spacey Days"};
    assert_int_equal(enrich_extract(&vocab, &e2), 0);
    clear_lists(&e2);
    /* a phrase matches as a phrase */
    hsc_content_event e3 = {.title = "Lost", .description = "A tale of time travel."};
    assert_int_equal(enrich_extract(&vocab, &e3), 1);
    assert_string_equal(e3.themes.v[0], "time travel");
    clear_lists(&e3);
    hsc_content_event del = {.op = HSC_OP_DELETE, .title = "ghost"};
    assert_int_equal(enrich_extract(&vocab, &del), 0);
}

static void test_similarity_formula(void **state)
{
    (void)state;
    struct enrich_weights w = {.genre = 1.0, .theme = 0.7, .mood = 0.5};
    hsc_content_event a = {0}, b = {0};
    push(&a.genres, "drama");
    push(&a.genres, "crime");
    push(&a.themes, "heist");
    push(&a.moods, "dark");
    push(&b.genres, "drama");
    push(&b.themes, "heist");
    push(&b.themes, "war");
    /* shared: drama 1 + heist 0.7 = 1.7; union: a 3.2 + b 2.4 - 1.7 = 3.9 */
    assert_true(fabs(enrich_similarity(&a, &b, &w) - 1.7 / 3.9) < 1e-12);
    assert_true(fabs(enrich_similarity(&b, &a, &w) - 1.7 / 3.9) < 1e-12);
    assert_true(fabs(enrich_similarity(&a, &a, &w) - 1.0) < 1e-12);
    hsc_content_event empty = {0};
    assert_true(enrich_similarity(&empty, &empty, &w) == 0);
    clear_lists(&a);
    clear_lists(&b);
}

static void test_params_keep_winners_only(void **state)
{
    (void)state;
    struct enrich_weights w = {
        .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = 10};
    hsc_content_event up = {
        .id = "a", .version = 2, .title = "A", .has = HSC_HAS_YEAR, .year = 2001};
    push(&up.genres, "drama");
    push(&up.themes, "war");
    hsc_content_event old = {.id = "a", .version = 1, .title = "A0"};
    hsc_content_event del = {.id = "b", .version = 3, .op = HSC_OP_DELETE};
    hsc_content_event *evs[] = {&old, &up, &del};
    int winner[] = {0, 1, 1};
    json_t *p = enrich_params(evs, winner, 3, &w);
    json_t *rows = json_object_get(p, "rows");
    assert_int_equal(json_array_size(rows), 1);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "title")), "A");
    assert_int_equal(json_integer_value(json_object_get(r, "year")), 2001);
    assert_true(json_is_null(json_object_get(r, "maturity")));
    assert_true(fabs(json_real_value(json_object_get(r, "attr_w")) - 1.7) < 1e-12);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "deletes"), 0)), "b");
    assert_int_equal(json_integer_value(json_object_get(p, "top")), 10);
    json_decref(p);
    clear_lists(&up);
}

/* The text written for the statement: tags and titles by position, floats kept floats. */
static void test_params_text_numbers_tags_and_titles(void **state)
{
    (void)state;
    struct enrich_weights w = {
        .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = 10};
    hsc_content_event a = {.id = "a", .version = 1, .title = "A \"q\""};
    push(&a.genres, "drama");
    push(&a.genres, "war");
    hsc_content_event b = {.id = "b", .version = 1, .title = "B"};
    push(&b.genres, "war");
    hsc_content_event *evs[] = {&a, &b};
    int winner[] = {1, 1};
    /* Pending changes are keyed by the index's id pointers: one string per title. */
    const char *x = "x", *ida = "a", *y = "y";
    struct enrich_pending pend = {0};
    assert_int_equal(enrich_pending_edge(&pend, x, ida, 0.25), 0);
    assert_int_equal(enrich_pending_edge(&pend, x, ida, 0.5), 0); /* the later change wins */
    assert_int_equal(enrich_pending_edge(&pend, ida, y, -1), 0);
    assert_int_equal(pend.n, 2);
    char *text = enrich_params_text(evs, winner, 2, &w, &pend, NULL);
    assert_non_null(text);
    json_t *p = json_loads(text, 0, NULL);
    assert_non_null(p);
    json_t *g = json_object_get(p, "genres");
    assert_int_equal(json_array_size(g), 2);
    json_t *bg = json_object_get(json_array_get(json_object_get(p, "rows"), 1), "genres");
    assert_string_equal(
        json_string_value(json_array_get(g, json_integer_value(json_array_get(bg, 0)))), "war");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(p, "rows"), 0), "title")),
        "A \"q\"");
    json_t *ids = json_object_get(p, "ids");
    json_t *add = json_array_get(json_object_get(p, "sim_add"), 0);
    json_t *del = json_array_get(json_object_get(p, "sim_del"), 0);
    assert_string_equal(
        json_string_value(json_array_get(ids, json_integer_value(json_array_get(add, 1)))), "a");
    assert_true(json_real_value(json_array_get(add, 2)) == 0.5);
    assert_string_equal(
        json_string_value(json_array_get(ids, json_integer_value(json_array_get(del, 1)))), "y");
    assert_true(
        json_is_real(json_object_get(json_array_get(json_object_get(p, "rows"), 1), "attr_w")));
    assert_int_equal(json_array_size(json_object_get(p, "sim_replace")), 0);
    json_decref(p);
    free(text);
    enrich_pending_free(&pend);
    clear_lists(&a);
    clear_lists(&b);
}

/* Titles for the pending-change tests: the set is keyed by pointer, one string per title. */
static const char *const ids[] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"};

/* What a statement writes, as a model graph would apply it: a score per pair
 * (-1: deleted) and the titles whose list is written whole. */
struct written {
    double score[10][10]; /* 0: untouched */
    int replaced[10];
};

static int idx(const char *id)
{
    for (int i = 0; i < 10; i++)
        if (ids[i] == id)
            return i;
    fail();
    return -1;
}

/* Applies one statement's changes; each change must be written once only. */
static void apply(struct written *w, const struct enrich_pending *p)
{
    for (size_t i = 0; i < p->cap; i++)
        if (p->e[i].src) {
            double *s = &w->score[idx(p->e[i].src)][idx(p->e[i].dst)];
            assert_true(*s == 0);
            *s = p->e[i].score;
        }
    for (size_t i = 0; i < p->caprep; i++)
        if (p->rep[i].id) {
            assert_int_equal(w->replaced[idx(p->rep[i].id)], 0);
            w->replaced[idx(p->rep[i].id)] = 1;
        }
}

/* A pending set like a burst leaves: every pair changed, some twice, some lists replaced. */
static void fill(struct enrich_pending *p)
{
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++)
            if (a != b)
                assert_int_equal(enrich_pending_edge(p, ids[a], ids[b], (a + b) % 4 ? 0.25 : -1),
                                 0);
    for (int a = 0; a < 10; a += 3)
        assert_int_equal(enrich_pending_edge(p, ids[a], ids[(a + 1) % 10], 0.75), 0);
    assert_int_equal(enrich_pending_replace(p, ids[2]), 0);
    assert_int_equal(enrich_pending_replace(p, ids[5]), 0);
    assert_int_equal(enrich_pending_edge(p, ids[5], ids[0], 0.5), 0); /* after the replace */
}

/* A cap splits the changes across statements, none larger than the cap, oldest first,
 * and together they write what one unbounded statement would. */
static void test_pending_split_union_is_unbounded(void **state)
{
    (void)state;
    struct enrich_pending all = {0}, one = {0}, p = {0};
    fill(&all);
    assert_int_equal(enrich_pending_split(&all, SIZE_MAX, 10, 0, 0, &one, NULL), 0);
    assert_int_equal(all.n + all.nrep, 0);
    struct written whole = {0}, parts = {0};
    apply(&whole, &one);
    /* The list of t5 is written whole after its single edges recorded before: those are
     * dropped, the one recorded after the replace is kept. */
    assert_true(whole.score[5][1] == 0 && whole.score[5][0] == 0.5);
    assert_true(whole.score[0][1] == 0.75 && whole.replaced[2] && whole.replaced[5]);
    size_t total = one.n + one.nrep, seen = 0, statements = 0;

    fill(&p);
    uint64_t last = 0;
    while (p.n || p.nrep) {
        struct enrich_pending out;
        assert_int_equal(enrich_pending_split(&p, 7, 3, 0, 0, &out, NULL), 0);
        size_t cost = out.n + 3 * out.nrep;
        assert_true(cost >= 1 && cost <= 7);
        /* Oldest first: nothing in this statement is older than the last one's newest. */
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = 0; i < out.cap; i++)
            if (out.e[i].src) {
                lo = out.e[i].seq < lo ? out.e[i].seq : lo;
                hi = out.e[i].seq > hi ? out.e[i].seq : hi;
            }
        for (size_t i = 0; i < out.caprep; i++)
            if (out.rep[i].id) {
                lo = out.rep[i].seq < lo ? out.rep[i].seq : lo;
                hi = out.rep[i].seq > hi ? out.rep[i].seq : hi;
            }
        assert_true(statements == 0 || lo > last);
        last = hi;
        seen += out.n + out.nrep;
        apply(&parts, &out);
        enrich_pending_free(&out);
        statements++;
    }
    assert_int_equal(seen, total);
    assert_true(statements >= total / 7);
    assert_memory_equal(&whole, &parts, sizeof(whole));
    enrich_pending_free(&all); /* empty, but its tables stay allocated */
    enrich_pending_free(&one);
    enrich_pending_free(&p);
}

/* A change left pending, or sent back by a failed statement, never overtakes a later one. */
static void test_pending_split_later_change_wins(void **state)
{
    (void)state;
    struct enrich_pending p = {0}, out, out2;
    assert_int_equal(enrich_pending_edge(&p, ids[0], ids[1], 0.3), 0);
    assert_int_equal(enrich_pending_edge(&p, ids[2], ids[3], 0.3), 0);
    assert_int_equal(enrich_pending_split(&p, 1, 10, 0, 0, &out, NULL), 0);
    assert_int_equal(out.n, 1);
    for (size_t i = 0; i < out.cap; i++) /* t0 -> t1, the oldest, is in flight */
        assert_true(!out.e[i].src || (out.e[i].src == ids[0] && out.e[i].dst == ids[1]));
    /* Both pairs change again while the statement is in flight. */
    assert_int_equal(enrich_pending_edge(&p, ids[0], ids[1], 0.6), 0);
    assert_int_equal(enrich_pending_edge(&p, ids[2], ids[3], -1), 0);
    /* The statement fails: its change goes back under the newer one. */
    assert_int_equal(enrich_pending_merge_older(&p, &out), 0);
    enrich_pending_free(&out);
    assert_int_equal(enrich_pending_split(&p, SIZE_MAX, 10, 0, 0, &out2, NULL), 0);
    struct written w = {0};
    apply(&w, &out2);
    assert_true(w.score[0][1] == 0.6 && w.score[2][3] == -1);
    enrich_pending_free(&out2);
    enrich_pending_free(&p);
}

/* A batch's own changes go first (its offsets wait for them), and what is left is counted. */
static void test_pending_split_batch_first(void **state)
{
    (void)state;
    struct enrich_pending p = {0}, out;
    for (int b = 1; b < 10; b++) /* the feed's, older */
        assert_int_equal(enrich_pending_edge(&p, ids[0], ids[b], 0.25), 0);
    uint64_t lo = p.next_seq;
    assert_int_equal(enrich_pending_replace(&p, ids[7]), 0);
    assert_int_equal(enrich_pending_edge(&p, ids[8], ids[7], 0.5), 0);
    uint64_t hi = p.next_seq;
    size_t left = 99;
    assert_int_equal(enrich_pending_split(&p, 10, 10, lo, hi, &out, &left), 0);
    assert_int_equal(out.nrep, 1);
    assert_int_equal(out.n, 0); /* the next own change did not fit, so nothing older went */
    assert_int_equal(left, 1);
    enrich_pending_free(&out);
    assert_int_equal(enrich_pending_split(&p, 10, 10, lo, hi, &out, &left), 0);
    assert_int_equal(left, 0);
    assert_int_equal(out.n, 10);
    enrich_pending_free(&out);
    assert_int_equal(p.n + p.nrep, 0);
    enrich_pending_free(&p);
}

/* One statement applied to a model graph as ENRICH_WRITE_CYPHER applies it: deletes,
 * then lists written whole (from truth, the index, when the statement is built), then
 * adds. -1: no edge. */
static void apply_statement(double g[10][10], const struct enrich_pending *st, double truth[10][10])
{
    for (size_t i = 0; i < st->cap; i++)
        if (st->e[i].src && st->e[i].score < 0)
            g[idx(st->e[i].src)][idx(st->e[i].dst)] = -1;
    for (size_t i = 0; i < st->caprep; i++)
        if (st->rep[i].id) {
            int a = idx(st->rep[i].id);
            for (int b = 0; b < 10; b++)
                g[a][b] = truth[a][b];
        }
    for (size_t i = 0; i < st->cap; i++)
        if (st->e[i].src && st->e[i].score >= 0)
            g[idx(st->e[i].src)][idx(st->e[i].dst)] = st->e[i].score;
}

/* Changes recorded while statements of random sizes are written or fail: once pending
 * is drained, the graph is the index's, whatever the cap (nothing stale survives). */
static void test_pending_split_random_converges(void **state)
{
    (void)state;
    srand(17);
    for (int round = 0; round < 50; round++) {
        double truth[10][10], g[10][10];
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                truth[a][b] = g[a][b] = -1;
        struct enrich_pending p = {0};
        for (int step = 0; step < 400; step++) {
            int a = rand() % 10, b = rand() % 10, what = rand() % 10;
            if (what < 6) { /* an edge changes in the index */
                double sc = rand() % 3 ? (double)(1 + rand() % 9) / 10 : -1;
                truth[a][b] = sc;
                assert_int_equal(enrich_pending_edge(&p, ids[a], ids[b], sc), 0);
            } else if (what < 7) { /* the list changes and is to be written whole */
                for (int c = 0; c < 10; c++)
                    truth[a][c] = rand() % 2 ? (double)(1 + rand() % 9) / 10 : -1;
                assert_int_equal(enrich_pending_replace(&p, ids[a]), 0);
            } else { /* a statement: written, or failed and put back */
                struct enrich_pending st;
                uint64_t lo = p.next_seq > 5 ? p.next_seq - 5 : 0;
                assert_int_equal(enrich_pending_split(&p, 1 + (size_t)(rand() % 8), 3, lo,
                                                      p.next_seq, &st, NULL),
                                 0);
                if (what == 9) {
                    assert_int_equal(enrich_pending_merge_older(&p, &st), 0);
                } else {
                    apply_statement(g, &st, truth);
                }
                enrich_pending_free(&st);
            }
        }
        while (p.n || p.nrep) {
            struct enrich_pending st;
            assert_int_equal(enrich_pending_split(&p, 4, 3, 0, 0, &st, NULL), 0);
            apply_statement(g, &st, truth);
            enrich_pending_free(&st);
        }
        assert_memory_equal(g, truth, sizeof(g));
        enrich_pending_free(&p);
    }
}

static void test_vocabulary_errors_name_the_line(void **state)
{
    (void)state;
    char path[] = "/tmp/hsc_vocab_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\ntheme\tspace\tspace\nfeeling\tx\ty\n", f);
    fclose(f);
    struct enrich_vocab v;
    hsc_err err = {0};
    assert_int_equal(enrich_vocab_load(path, &v, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, ":3:"));
    assert_non_null(strstr(err.msg, "feeling"));
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_whole_words),
        cmocka_unit_test(test_similarity_formula),
        cmocka_unit_test(test_params_keep_winners_only),
        cmocka_unit_test(test_params_text_numbers_tags_and_titles),
        cmocka_unit_test(test_pending_split_union_is_unbounded),
        cmocka_unit_test(test_pending_split_later_change_wins),
        cmocka_unit_test(test_pending_split_batch_first),
        cmocka_unit_test(test_pending_split_random_converges),
        cmocka_unit_test(test_vocabulary_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
