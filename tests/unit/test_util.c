/* Tests of common/util.c: UTF-8 and id validation, secret masking, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util.h"

static void test_utf8(void **s)
{
    assert_true(hsc_utf8_valid("plain", 5));
    assert_true(hsc_utf8_valid("\xc3\xa9t\xc3\xa9", 5)); /* été */
    assert_true(hsc_utf8_valid("\xf0\x9f\x8e\xac", 4));              /* clapper board */
    assert_false(hsc_utf8_valid("\xc3", 1));                         /* truncated */
    assert_false(hsc_utf8_valid("\xc0\xaf", 2));                     /* overlong */
    assert_false(hsc_utf8_valid("\xed\xa0\x80", 3));                 /* surrogate */
    assert_false(hsc_utf8_valid("\xf4\x90\x80\x80", 4));             /* > U+10FFFF */
    assert_false(hsc_utf8_valid("a\0b", 3));                         /* NUL */
    assert_false(hsc_utf8_valid("\xff", 1));
    (void)s;
}

static void test_ids(void **s)
{
    assert_true(hsc_id_valid("t000001", 7));
    assert_true(hsc_id_valid("ep:s01e02.v-2_x", 15));
    assert_false(hsc_id_valid("", 0));
    assert_false(hsc_id_valid("a b", 3));
    assert_false(hsc_id_valid("a/b", 3));
    char long_id[130];
    memset(long_id, 'x', sizeof(long_id));
    assert_true(hsc_id_valid(long_id, 128));
    assert_false(hsc_id_valid(long_id, 129));
    (void)s;
}

static void test_mask_secrets(void **s)
{
    char out[256];
    hsc_mask_secrets("postgresql://hsc:s3cret@127.0.0.1:15432/hsc", out, sizeof(out));
    assert_string_equal(out, "postgresql://hsc:****@127.0.0.1:15432/hsc");
    hsc_mask_secrets("host=db user=hsc password=s3cret dbname=hsc", out, sizeof(out));
    assert_string_equal(out, "host=db user=hsc password=**** dbname=hsc");
    hsc_mask_secrets("redis://127.0.0.1:6379/0", out, sizeof(out));
    assert_string_equal(out, "redis://127.0.0.1:6379/0");
    hsc_mask_secrets("http://neo4j:pw@h:7474", out, sizeof(out));
    assert_string_equal(out, "http://neo4j:****@h:7474");
    (void)s;
}

static void test_buf(void **s)
{
    hsc_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(hsc_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.len, strlen(b.data));
    hsc_buf_free(&b);
    assert_null(b.data);
    long long v;
    assert_int_equal(hsc_parse_ll("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(hsc_parse_ll("12x", &v), -1);
    assert_int_equal(hsc_parse_ll("", &v), -1);
    assert_int_equal(hsc_parse_ll("99999999999999999999", &v), -1);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_mask_secrets),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
