/*
 * Tests of common/stores/pg.c's pure decisions: which SQLSTATEs end the session
 * (the connection is replaced, a read sent again) and which statements are
 * reads that may be sent twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pg.h"

static void test_session_ending_sqlstates(void **s)
{
    assert_true(hsc_pg_sqlstate_is_connection("57P01"));  /* admin shutdown: a restart */
    assert_true(hsc_pg_sqlstate_is_connection("57P02"));  /* crash shutdown */
    assert_true(hsc_pg_sqlstate_is_connection("57P03"));  /* cannot connect now */
    assert_true(hsc_pg_sqlstate_is_connection("08006"));  /* connection failure */
    assert_true(hsc_pg_sqlstate_is_connection("08003"));  /* connection does not exist */
    assert_false(hsc_pg_sqlstate_is_connection("57014")); /* query canceled */
    assert_false(hsc_pg_sqlstate_is_connection("23505")); /* unique violation */
    assert_false(hsc_pg_sqlstate_is_connection("40001"));
    assert_false(hsc_pg_sqlstate_is_connection(NULL));
    /* a session-ending error is never the data's fault */
    assert_int_equal(hsc_pg_classify("57P01"), HSC_ETRANSIENT);
    assert_int_equal(hsc_pg_classify("08006"), HSC_ETRANSIENT);
    (void)s;
}

static void test_reads_are_selects(void **s)
{
    assert_true(hsc_pg_is_read("SELECT 1"));
    assert_true(hsc_pg_is_read("  select id FROM content"));
    assert_true(hsc_pg_is_read("\n(SELECT 1) UNION (SELECT 2)"));
    assert_true(hsc_pg_is_read("-- the attributes\nSELECT id FROM content"));
    assert_true(hsc_pg_is_read("/* policy */ SELECT json_build_object()"));
    assert_false(hsc_pg_is_read("WITH input AS (SELECT 1) INSERT INTO t SELECT * FROM input"));
    assert_false(hsc_pg_is_read("INSERT INTO t VALUES (1)"));
    assert_false(hsc_pg_is_read("UPDATE t SET a = 1"));
    assert_false(hsc_pg_is_read("selective_update()"));
    assert_false(hsc_pg_is_read("select_x"));
    assert_false(hsc_pg_is_read("/* unterminated SELECT"));
    assert_false(hsc_pg_is_read(""));
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_ending_sqlstates),
        cmocka_unit_test(test_reads_are_selects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
