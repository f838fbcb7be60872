/*
 * Tests of common/transport/codec_bounds.c (and the JSON reader's bounds):
 * every bound of codec.h is enforced with a message naming the field, and a
 * huge map is rejected in linear time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsc/codec.h"
#include "json_event.h"
#include "util.h"
#include "codec_cases.h"

/* ---------- bounds (codec.h): linear, and each with a message naming the field ---------- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Decodes buf as `kind` (c content, l learning, q request, y reply); returns rc, fills err. */
static int decode_as(char kind, const void *buf, size_t len, hsc_err *err)
{
    int rc;
    if (kind == 'c') {
        hsc_content_event ev;
        rc = hsc_codec_decode_content(buf, len, &ev, err);
        hsc_content_event_clear(&ev);
    } else if (kind == 'l') {
        hsc_learning_event ev;
        rc = hsc_codec_decode_learning(buf, len, &ev, err);
        hsc_learning_event_clear(&ev);
    } else if (kind == 'i') {
        hsc_indexed_record r;
        rc = hsc_codec_decode_indexed(buf, len, &r, err);
        hsc_indexed_record_clear(&r);
    } else if (kind == 'q') {
        hsc_search_request r;
        rc = hsc_codec_decode_search_request(buf, len, &r, err);
        hsc_search_request_clear(&r);
    } else {
        hsc_search_reply r;
        rc = hsc_codec_decode_search_reply(buf, len, &r, err);
        hsc_search_reply_clear(&r);
    }
    return rc;
}

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/*
 * The 1 MB map of 200,000 keys that took 51 s with the quadratic duplicate
 * check: three-letter keys (4 bytes each) with fixint values, 1,000,000 bytes.
 */
static void test_huge_map_is_rejected_in_milliseconds(void **s)
{
    (void)s;
    const char *kinds = "clqyi";
    const char *names[] = {"content", "learning", "search request", "search reply", "indexed"};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 200000);
    static const char A[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int i = 0; i < 200000; i++) {
        char k[3] = {A[i % 62], A[i / 62 % 62], A[i / (62 * 62) % 62]};
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, k, 3);
        msgpack_pack_int(&pk, 1);
    }
    assert_true(sb.size > 1000000 - 16 && sb.size <= HSC_CODEC_MAX_MESSAGE_BYTES);
    for (int t = 0; kinds[t]; t++) {
        hsc_err err = {0};
        double t0 = now_ms();
        assert_int_equal(decode_as(kinds[t], sb.data, sb.size, &err), HSC_EINVAL);
        double ms = now_ms() - t0;
        char want[96];
        snprintf(want, sizeof(want), "%s: map of 200000 entries exceeds %d", names[t],
                 HSC_CODEC_MAX_MAP_ENTRIES);
        assert_string_equal(err.msg, want);
        printf("  %s: a %zu-byte map of 200000 keys rejected in %.3f ms\n", names[t], sb.size, ms);
        assert_true(ms < 1000); /* well under 50 ms in practice; 1 s leaves room for valgrind */
    }
    msgpack_sbuffer_destroy(&sb);
}

/* The same number of known keys as the old quadratic check's worst case, at the largest allowed
 * map. */
static void test_largest_map_decodes_linearly(void **s)
{
    (void)s;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, HSC_CODEC_MAX_MAP_ENTRIES);
    const struct field *b = BASE_CONTENT;
    for (int i = 0; i < 5; i++) {
        pack_s(&pk, b[i].key);
        pack_val(&pk, &b[i].v);
    }
    for (int i = 5; i < HSC_CODEC_MAX_MAP_ENTRIES; i++) {
        pack_s(&pk, "future"); /* unknown keys are ignored, repeated or not */
        msgpack_pack_int(&pk, i);
    }
    hsc_content_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_OK);
    assert_string_equal(ev.id, "t1");
    hsc_content_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);

    /*
     * The costliest message the bounds let through: about 1 MB of 200,000
     * float32 values in 200 unknown keys, every byte scanned, unpacked and
     * walked. Linear: a few milliseconds.
     */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 205);
    for (int i = 0; i < 5; i++) {
        pack_s(&pk, b[i].key);
        pack_val(&pk, &b[i].v);
    }
    for (int i = 0; i < 200; i++) {
        char k[8];
        snprintf(k, sizeof(k), "f%d", i);
        pack_s(&pk, k);
        msgpack_pack_array(&pk, 1000);
        for (int j = 0; j < 1000; j++)
            msgpack_pack_float(&pk, 0.5f);
    }
    assert_true(sb.size > 1000000 && sb.size <= HSC_CODEC_MAX_MESSAGE_BYTES);
    double t0 = now_ms();
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_OK);
    double ms = now_ms() - t0;
    printf("  content: the largest accepted shape (%zu bytes, 200000 values) decoded in %.1f ms\n",
           sb.size, ms);
    assert_true(ms < 1000);
    hsc_content_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);
}

/* Appends BASE_CONTENT's five fields plus (key, value) written by fn, as one map. */
static void content_with(msgpack_sbuffer *sb, const char *key, void (*fn)(msgpack_packer *, size_t),
                         size_t n)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    for (int i = 0; i < 5; i++) {
        pack_s(&pk, BASE_CONTENT[i].key);
        pack_val(&pk, &BASE_CONTENT[i].v);
    }
    msgpack_pack_str(&pk, strlen(key));
    msgpack_pack_str_body(&pk, key, strlen(key));
    fn(&pk, n);
}

static void w_array(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_s(pk, "x");
}
static void w_map(msgpack_packer *pk, size_t n)
{
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_int(pk, (int)i);
        msgpack_pack_nil(pk);
    }
}
static char BIG[2 * HSC_CODEC_MAX_STR_BYTES];
static void w_str(msgpack_packer *pk, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, BIG, n);
}
static void w_bin(msgpack_packer *pk, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, BIG, n);
}
static void w_nested(msgpack_packer *pk, size_t n)
{
    for (size_t i = 0; i < n; i++)
        msgpack_pack_array(pk, 1);
    msgpack_pack_nil(pk);
}
static void w_nested_maps(msgpack_packer *pk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 1);
        pack_s(pk, "m");
    }
    msgpack_pack_nil(pk);
}

static void test_each_bound_names_the_field(void **s)
{
    (void)s;
    memset(BIG, 'a', sizeof(BIG));
    static char LONG_KEY[HSC_CODEC_MAX_KEY_BYTES + 2];
    memset(LONG_KEY, 'k', sizeof(LONG_KEY) - 1);
    const struct {
        const char *key;
        void (*fn)(msgpack_packer *, size_t);
        size_t n;
        int ok;
        const char *expect;
    } cases[] = {
        {"genres", w_array, 1001, 0, "genres: array of 1001 entries exceeds 1000"},
        {"genres", w_array, 257, 0, "genres: 257 entries is more than 256"},
        {"genres", w_array, 256, 1, NULL},
        {"future", w_array, 1000, 1, NULL},
        {"future", w_array, 1001, 0, "future: array of 1001 entries exceeds 1000"},
        {"future", w_map, 256, 1, NULL},
        {"future", w_map, 257, 0, "future: map of 257 entries exceeds 256"},
        {"description", w_str, HSC_CODEC_MAX_STR_BYTES + 1, 0,
         "description: string of 65537 bytes exceeds 65536"},
        {"description", w_str, HSC_MAX_DESCRIPTION_LEN + 1, 0,
         "description: 16385 bytes is longer than 16384"},
        {"future", w_str, HSC_CODEC_MAX_STR_BYTES, 1, NULL},
        {"embedding", w_bin, HSC_CODEC_MAX_BIN_BYTES + 4, 0,
         "embedding: bin of 32772 bytes exceeds 32768"},
        {"future", w_nested, 7, 1, NULL},
        {"future", w_nested, 8, 0, "future[][][][][][][]: nested deeper than 8 levels"},
        {"future", w_nested_maps, 8, 0, "future.m.m.m.m.m.m.m: nested deeper than 8 levels"},
        {LONG_KEY, w_array, 0, 0, "content: map key of 65 bytes exceeds 64"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        content_with(&sb, cases[i].key, cases[i].fn, cases[i].n);
        hsc_err err = {0};
        int rc = decode_as('c', sb.data, sb.size, &err);
        if (cases[i].ok ? rc != HSC_OK : rc != HSC_EINVAL || strcmp(err.msg, cases[i].expect) != 0)
            fail_msg("case %zu (%s): rc=%d msg='%s', expected '%s'", i, cases[i].key, rc, err.msg,
                     cases[i].ok ? "ok" : cases[i].expect);
        msgpack_sbuffer_destroy(&sb);
    }

    /* Five bytes claiming 4 billion entries: refused before msgpack-c allocates for them. */
    const unsigned char claim_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const unsigned char claim_arr[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    const unsigned char claim_str[] = {0x81, 0xa1, 'x', 0xdb, 0x7f, 0xff, 0xff, 0xff};
    const unsigned char short_arr[] = {0x81, 0xa1, 'x', 0xdc, 0x03, 0xe8, 0x01};
    hsc_err err = {0};
    assert_int_equal(decode_as('c', claim_map, 5, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "content: map of 4294967295 entries exceeds 256");
    assert_int_equal(decode_as('q', claim_arr, sizeof(claim_arr), &err), HSC_EINVAL);
    assert_string_equal(err.msg, "x: array of 4294967295 entries exceeds 1000");
    assert_int_equal(decode_as('y', claim_str, sizeof(claim_str), &err), HSC_EINVAL);
    assert_string_equal(err.msg, "x: string of 2147483647 bytes exceeds 65536");
    assert_int_equal(decode_as('l', short_arr, sizeof(short_arr), &err), HSC_EINVAL);
    assert_string_equal(err.msg, "message: not MessagePack (truncated)");

    /* The same pass, for callers that unpack other MessagePack themselves (cache entries). */
    assert_int_equal(hsc_codec_check_bounds(claim_arr, sizeof(claim_arr), "cache entry", &err),
                     HSC_EINVAL);
    assert_string_equal(err.msg, "x: array of 4294967295 entries exceeds 1000");
    assert_int_equal(hsc_codec_check_bounds(claim_map, 5, "cache entry", &err), HSC_EINVAL);
    assert_string_equal(err.msg, "cache entry: map of 4294967295 entries exceeds 256");
    const unsigned char arr_ok[] = {0x92, 0xa1, 'x', 0xc0};
    assert_int_equal(hsc_codec_check_bounds(arr_ok, sizeof(arr_ok), "cache entry", &err), HSC_OK);

    /* The whole message. */
    size_t big = HSC_CODEC_MAX_MESSAGE_BYTES + 1;
    char *buf = calloc(1, big);
    assert_int_equal(decode_as('q', buf, big, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "search request: message of 1048577 bytes exceeds 1048576");
    free(buf);
}

/* Packs a search request {"v":1, key: value written by fn}. */
static void request_with(msgpack_sbuffer *sb, const char *key, void (*fn)(msgpack_packer *, size_t),
                         size_t n)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_s(&pk, "v");
    msgpack_pack_int(&pk, 1);
    pack_s(&pk, key);
    fn(&pk, n);
}
static void w_int(msgpack_packer *pk, size_t n)
{
    msgpack_pack_uint64(pk, n);
}
static void w_ids(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_s(pk, "t1");
}
static void w_filter_genres(msgpack_packer *pk, size_t n)
{
    msgpack_pack_map(pk, 1);
    pack_s(pk, "genres");
    w_array(pk, n);
}
static void w_filter_dup(msgpack_packer *pk, size_t n)
{
    msgpack_pack_map(pk, 2);
    pack_s(pk, "year_min");
    msgpack_pack_int(pk, (int)n);
    pack_s(pk, "year_min");
    msgpack_pack_int(pk, (int)n);
}
static void w_results(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 1);
        pack_s(pk, "id");
        pack_s(pk, "t1");
    }
}
static void w_rel_without_type(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pack_s(pk, "id");
    pack_s(pk, "t1");
    pack_s(pk, "relationships");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 1);
        pack_s(pk, "seed");
        pack_s(pk, "t2");
    }
}

static void test_search_bounds_name_the_field(void **s)
{
    (void)s;
    const struct {
        char kind;
        const char *key;
        void (*fn)(msgpack_packer *, size_t);
        size_t n;
        const char *expect;
    } cases[] = {
        {'q', "k", w_int, 5000, "k: 5000 is outside 1..1000"},
        {'q', "k", w_int, 0, "k: 0 is outside 1..1000"},
        {'q', "seed_ids", w_ids, 257, "seed_ids: 257 entries is more than 256"},
        {'q', "seed_ids", w_ids, 5000, "seed_ids: array of 5000 entries exceeds 1000"},
        {'q', "filters", w_filter_genres, 257, "filters.genres: 257 entries is more than 256"},
        {'q', "filters", w_filter_genres, 1001,
         "filters.genres: array of 1001 entries exceeds 1000"},
        {'q', "filters", w_filter_dup, 1990, "filters.year_min: key appears twice"},
        {'q', "embedding", w_bin, HSC_CODEC_MAX_BIN_BYTES + 4,
         "embedding: bin of 32772 bytes exceeds 32768"},
        {'y', "results", w_results, 1001, "results: array of 1001 entries exceeds 1000"},
        {'y', "results", w_rel_without_type, 1, "relationships[].type: missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        request_with(&sb, cases[i].key, cases[i].fn, cases[i].n);
        hsc_err err = {0};
        int rc = decode_as(cases[i].kind, sb.data, sb.size, &err);
        if (rc != HSC_EINVAL || strcmp(err.msg, cases[i].expect) != 0)
            fail_msg("case %zu (%s): rc=%d msg='%s', expected '%s'", i, cases[i].key, rc, err.msg,
                     cases[i].expect);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_json_bounds_name_the_field(void **s)
{
    (void)s;
    hsc_content_event ev;
    hsc_err err = {0};
    const char *head = "{\"id\":\"t1\",\"version\":1,\"title\":\"x\"";
    hsc_buf b = {0};

    /* a line longer than any message */
    hsc_buf_append(&b, head, strlen(head));
    hsc_buf_append(&b, ",\"description\":\"", 16);
    for (int i = 0; i < HSC_CODEC_MAX_MESSAGE_BYTES / 1024 + 1; i++)
        hsc_buf_append(&b, BIG, 1024);
    hsc_buf_append(&b, "\"}", 2);
    assert_int_equal(hsc_json_to_content(b.data, b.len, &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "exceeds 1048576"));
    assert_non_null(strstr(err.msg, "line: "));
    b.len = 0;

    /* more keys than any map may have */
    hsc_buf_append(&b, head, strlen(head));
    for (int i = 0; i < HSC_CODEC_MAX_MAP_ENTRIES; i++) {
        char kv[32];
        int n = snprintf(kv, sizeof(kv), ",\"k%d\":1", i);
        hsc_buf_append(&b, kv, (size_t)n);
    }
    hsc_buf_append(&b, "}", 1);
    assert_int_equal(hsc_json_to_content(b.data, b.len, &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "line: object of 259 keys exceeds 256");
    b.len = 0;

    /* a list longer than the contract allows, refused before it is copied */
    hsc_buf_append(&b, head, strlen(head));
    hsc_buf_append(&b, ",\"genres\":[\"a\"", 14);
    for (int i = 0; i < 100000; i++)
        hsc_buf_append(&b, ",\"a\"", 4);
    hsc_buf_append(&b, "]}", 2);
    double t0 = now_ms();
    assert_int_equal(hsc_json_to_content(b.data, b.len, &ev, &err), HSC_EINVAL);
    printf("  JSON: a %zu-byte line with 100001 genres rejected in %.1f ms\n", b.len,
           now_ms() - t0);
    assert_string_equal(err.msg, "genres: 100001 entries is more than 256");
    hsc_buf_free(&b);

    const struct {
        const char *json, *expect;
    } cases[] = {
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"genres\":[\"a\\u0000b\"]}",
         "genres[0]: contains a NUL character"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"embedding\":[1,1e300]}",
         "embedding[1]: 1e+300 is outside float32"},
        {"{\"v\":4294967297,\"id\":\"t1\",\"version\":1,\"title\":\"x\"}",
         "v: 4294967297 is outside 0..1000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = hsc_json_to_content(cases[i].json, strlen(cases[i].json), &ev, &err);
        if (rc != HSC_EINVAL || strcmp(err.msg, cases[i].expect) != 0)
            fail_msg("case %zu: rc=%d msg='%s', expected '%s'", i, rc, err.msg, cases[i].expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_map_is_rejected_in_milliseconds),
        cmocka_unit_test(test_largest_map_decodes_linearly),
        cmocka_unit_test(test_each_bound_names_the_field),
        cmocka_unit_test(test_search_bounds_name_the_field),
        cmocka_unit_test(test_json_bounds_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
