/*
 * The filters a search pushes into its backends (workers/query/filters.c):
 * the Milvus expression (lower-cased genres, quoted values, the stricter
 * maturity ceiling) and the Neo4j candidate filter (the request's filters,
 * the user's constraints, a requested language narrowing the user's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "query.h"

static void test_milvus_filter_of_search(void **s)
{
    hsc_search_request r;
    hsc_search_request_init(&r);
    hsc_strlist_push(&r.filters.genres, "Science Fiction", 15);
    r.filters.language = strdup("en");
    r.filters.has = HSC_FILTER_YEAR_MIN | HSC_FILTER_MAX_MATURITY;
    r.filters.year_min = 1990, r.filters.max_maturity = 16;
    hsc_milvus_filter f = {0};
    query_milvus_filter(&r, NULL, &f);
    assert_string_equal(hsc_milvus_filter_str_of(&f),
                        "array_contains_any(genres, [\"science fiction\"]) and language == \"en\" "
                        "and year >= 1990 and maturity <= 16");
    hsc_milvus_filter_free(&f);
    /* the user's constraints are pushed too; the stricter ceiling wins */
    hsc_policy p = {0};
    hsc_strlist_push(&p.excluded_genres, "Horror", 6);
    p.has_max_maturity = true, p.max_maturity = 12;
    hsc_strlist_push(&p.languages, "en", 2);
    hsc_strlist_push(&p.languages, "fr\"]) or (1 == 1", 16); /* stays a quoted value */
    hsc_milvus_filter g = {0};
    query_milvus_filter(&r, &p, &g);
    const char *e = hsc_milvus_filter_str_of(&g);
    assert_non_null(strstr(e, "not array_contains_any(genres, [\"horror\"])"));
    assert_non_null(strstr(e, "maturity <= 12"));
    assert_null(strstr(e, "maturity <= 16"));
    assert_non_null(strstr(e, "language in [\"en\", \"fr\\\"]) or (1 == 1\"]"));
    hsc_milvus_filter_free(&g);
    hsc_policy_clear(&p);
    hsc_search_request_clear(&r);
    (void)s;
}

/* The graph gets the request's filters, and the user's constraints only once the policy is in. */
static void test_graph_filter_of_search(void **s)
{
    hsc_search_request r;
    hsc_search_request_init(&r);
    hsc_strlist_push(&r.seed_ids, "t1", 2);
    hsc_strlist_push(&r.filters.genres, "Drama", 5);
    hsc_strlist_push(&r.filters.exclude_ids, "t9", 2);
    r.filters.has = HSC_FILTER_YEAR_MAX | HSC_FILTER_MAX_MATURITY;
    r.filters.year_max = 2010, r.filters.max_maturity = 16;
    hsc_strlist langs = {0};
    hsc_graph_filter gf;
    query_graph_filter(&r, NULL, 0.6, &langs, &gf);
    assert_ptr_equal(gf.genres, &r.filters.genres);
    assert_ptr_equal(gf.exclude_ids, &r.filters.exclude_ids);
    assert_int_equal(gf.year_min, 0); /* unbounded */
    assert_int_equal(gf.year_max, 2010);
    assert_int_equal(gf.max_maturity, 16);
    assert_int_equal(gf.nexplicit, 1);
    assert_true(gf.history_weight == 0.6);
    assert_null(gf.excluded_genres);
    assert_null(gf.languages);

    hsc_policy p = {0};
    hsc_strlist_push(&p.excluded_genres, "horror", 6);
    hsc_strlist_push(&p.languages, "en", 2);
    hsc_strlist_push(&p.languages, "fr", 2);
    p.has_max_maturity = true, p.max_maturity = 12;
    query_graph_filter(&r, &p, 0.6, &langs, &gf);
    assert_ptr_equal(gf.excluded_genres, &p.excluded_genres);
    assert_ptr_equal(gf.languages, &p.languages);
    assert_int_equal(gf.max_maturity, 12); /* the stricter ceiling */
    p.max_maturity = 18;
    query_graph_filter(&r, &p, 0.6, &langs, &gf);
    assert_int_equal(gf.max_maturity, 16);

    /* a requested language narrows the user's list to that one */
    r.filters.language = strdup("fr");
    query_graph_filter(&r, &p, 0.6, &langs, &gf);
    assert_ptr_equal(gf.languages, &langs);
    assert_int_equal(gf.languages->n, 1);
    assert_string_equal(gf.languages->v[0], "fr");
    hsc_strlist_clear(&langs);
    hsc_policy_clear(&p);
    hsc_search_request_clear(&r);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_milvus_filter_of_search),
        cmocka_unit_test(test_graph_filter_of_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
