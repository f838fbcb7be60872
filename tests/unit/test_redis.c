/*
 * Tests of common/stores/redis.c's pure parts: the URL parser and which commands
 * are reads that may be sent again on a fresh connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis.h"

static void test_reads_and_writes(void **s)
{
    assert_true(hsc_redis_is_read("mget"));
    assert_true(hsc_redis_is_read("GET"));
    assert_true(hsc_redis_is_read("exists"));
    assert_false(hsc_redis_is_read("set"));
    assert_false(hsc_redis_is_read("eval")); /* the version raise writes */
    assert_false(hsc_redis_is_read("incr"));
    assert_false(hsc_redis_is_read("getset"));
    assert_false(hsc_redis_is_read(""));
    (void)s;
}

static void test_url(void **s)
{
    char host[64], pw[64];
    int port, db;
    hsc_err err = {0};
    assert_int_equal(hsc_redis_parse_url("redis://:sec@127.0.0.1:16379/2", host, sizeof(host),
                                         &port, &db, pw, sizeof(pw), &err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 16379);
    assert_int_equal(db, 2);
    assert_string_equal(pw, "sec");
    assert_int_equal(
        hsc_redis_parse_url("http://x", host, sizeof(host), &port, &db, pw, sizeof(pw), &err),
        HSC_ECONFIG);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_and_writes),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
