/*
 * Reading a user's policy as a search loads it (workers/query/policy.c): the
 * row QUERY_POLICY_SQL returns becomes the hard constraints, the weighted
 * preferences and the history of seeds; anything but an object is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy.h"

static void test_policy_row_parsed(void **s)
{
    hsc_policy p;
    const char *row = "{\"version\": 7, \"excluded_genres\": [\"horror\", 3],"
                      " \"max_maturity\": 12, \"languages\": [\"en\", \"fr\"],"
                      " \"prefs\": [[\"genre\", \"drama\", 2.5], [\"theme\", \"space\", -1],"
                      "             [\"genre\", null, 1]],"
                      " \"blocked_ids\": [\"t9\"], \"history\": [\"t3\", \"t1\"]}";
    assert_int_equal(query_policy_parse(row, "u1", &p), HSC_OK);
    assert_string_equal(p.user_id, "u1");
    assert_int_equal(p.version, 7);
    assert_int_equal(p.excluded_genres.n, 1); /* what is not a string is skipped */
    assert_string_equal(p.excluded_genres.v[0], "horror");
    assert_true(p.has_max_maturity);
    assert_int_equal(p.max_maturity, 12);
    assert_int_equal(p.languages.n, 2);
    assert_int_equal(p.nprefs, 2); /* a preference without a name is skipped */
    assert_false(p.prefs[0].theme);
    assert_string_equal(p.prefs[0].name, "drama");
    assert_true(p.prefs[0].weight == 2.5);
    assert_true(p.prefs[1].theme);
    assert_true(p.prefs[1].weight == -1);
    assert_string_equal(p.blocked_ids.v[0], "t9");
    assert_int_equal(p.history.n, 2);
    assert_string_equal(p.history.v[0], "t3"); /* newest first, as the SQL orders them */
    hsc_policy_clear(&p);
    (void)s;
}

static void test_policy_without_row_values(void **s)
{
    /* a user with no policy row: the SQL's coalesce gives empty lists and a null ceiling */
    hsc_policy p;
    const char *row = "{\"version\": 0, \"excluded_genres\": [], \"max_maturity\": null,"
                      " \"languages\": [], \"prefs\": [], \"blocked_ids\": [], \"history\": []}";
    assert_int_equal(query_policy_parse(row, "u2", &p), HSC_OK);
    assert_int_equal(p.version, 0);
    assert_false(p.has_max_maturity);
    assert_int_equal(p.nprefs, 0);
    assert_int_equal(p.languages.n + p.history.n + p.blocked_ids.n, 0);
    hsc_policy_clear(&p);
    (void)s;
}

static void test_policy_not_an_object(void **s)
{
    hsc_policy p;
    assert_int_equal(query_policy_parse("[1, 2]", "u1", &p), HSC_EINVAL);
    assert_int_equal(query_policy_parse("{\"version\": ", "u1", &p), HSC_EINVAL);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_row_parsed),
        cmocka_unit_test(test_policy_without_row_values),
        cmocka_unit_test(test_policy_not_an_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
