/* Tests of common/core/util.c: UTF-8 and id validation, secret masking, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include <string.h>

#include "util.h"

static void test_utf8(void **s)
{
    assert_true(hsc_utf8_valid("plain", 5));
    assert_true(hsc_utf8_valid("\xc3\xa9t\xc3\xa9", 5)); /* été */
    assert_true(hsc_utf8_valid("\xf0\x9f\x8e\xac", 4));  /* clapper board */
    assert_false(hsc_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(hsc_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(hsc_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(hsc_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(hsc_utf8_valid("a\0b", 3));             /* NUL */
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

static void test_fmt_float_round_trips_exactly(void **state)
{
    (void)state;
    char buf[32];
    uint32_t x = 2463534242u;
    for (int i = 0; i < 2000000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        float f;
        memcpy(&f, &x, 4);
        if (!isfinite(f))
            continue;
        hsc_fmt_float(f, buf);
        float back = strtof(buf, NULL);
        if (memcmp(&back, &f, 4))
            fail_msg("%.9g printed as %s came back as %.9g", (double)f, buf, (double)back);
    }
    const struct {
        float f;
        const char *want;
    } cases[] = {{0.0f, "0"},
                 {1.0f, "1"},
                 {-2.5f, "-2.5"},
                 {100.0f, "100"},
                 {0.001f, "0.00100000005"},
                 {1e-7f, "1.00000001e-7"},
                 {3e38f, "3.00000001e38"},
                 {123456.789f, "123456.789"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hsc_fmt_float(cases[i].f, buf);
        assert_string_equal(buf, cases[i].want);
    }
}

static void test_json_str_escapes(void **state)
{
    (void)state;
    hsc_buf b = {0};
    assert_int_equal(hsc_buf_json_str(&b, "a\"b\\c\n\x01é"), 0);
    assert_int_equal(hsc_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001é\"");
    hsc_buf_free(&b);
}

/* hsc_grow: first elements at first, then doubling; no room needed, no move; overflow refused. */
static void test_grow(void **s)
{
    size_t cap = 0;
    int *v = hsc_grow(NULL, 0, &cap, sizeof(*v), 4);
    assert_non_null(v);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++)
        v[i] = i;
    assert_ptr_equal(hsc_grow(v, 3, &cap, sizeof(*v), 4), v); /* room left */
    assert_int_equal(cap, 4);
    int *w = hsc_grow(v, 4, &cap, sizeof(*w), 4);
    assert_non_null(w);
    assert_int_equal(cap, 8);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i], i);
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(hsc_grow(w, huge, &huge, sizeof(*w), 4)); /* doubling would wrap */
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_float_round_trips_exactly),
        cmocka_unit_test(test_json_str_escapes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_mask_secrets),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
