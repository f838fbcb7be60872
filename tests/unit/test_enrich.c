/*
 * Tests of hsc-enrich's pure parts: the vocabulary, keyword extraction, the
 * similarity formula and the statement's parameters.
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
        cmocka_unit_test(test_vocabulary_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
