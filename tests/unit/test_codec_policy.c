/*
 * Tests of the PolicyEvent codec (common/transport/codec_policy.c, hsc.policy.events): the
 * golden examples (packed by Python's msgpack, schemas/README.md) decode to
 * what their JSON twins say and re-encode byte for byte; every rule rejects
 * with a message naming the field; the shared bounds apply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "util.h"
#include "golden.h"

/* Decodes the golden NAME.msgpack.hex, checks it re-encodes to the same bytes; returns it. */
static void golden(const char *name, hsc_policy_event *ev)
{
    char file[128];
    snprintf(file, sizeof(file), "%s.msgpack.hex", name);
    size_t glen;
    unsigned char *g = golden_bytes(file, &glen);
    hsc_err err = {0};
    if (hsc_codec_decode_policy(g, glen, ev, &err))
        fail_msg("%s: %s", name, err.msg);
    char *out;
    size_t len;
    assert_int_equal(hsc_codec_encode_policy(ev, &out, &len, &err), HSC_OK);
    assert_int_equal(len, glen);
    assert_memory_equal(out, g, glen);
    free(out);
    free(g);
}

static void test_golden_set_full(void **s)
{
    hsc_policy_event ev;
    golden("policy_set_full", &ev);
    assert_string_equal(ev.user_id, "u0001");
    assert_int_equal(ev.version, 3);
    assert_int_equal(ev.op, HSC_POLICY_SET);
    assert_int_equal(ev.set, HSC_POLICY_EXCLUDED_GENRES | HSC_POLICY_MAX_MATURITY |
                                 HSC_POLICY_LANGUAGES | HSC_POLICY_BLOCKED_IDS | HSC_POLICY_PREFS);
    assert_int_equal(ev.clear, 0);
    assert_int_equal(ev.excluded_genres.n, 2);
    assert_string_equal(ev.excluded_genres.v[1], "war");
    assert_int_equal(ev.max_maturity, 12);
    assert_string_equal(ev.languages.v[1], "fr");
    assert_string_equal(ev.blocked_ids.v[0], "t000013");
    assert_int_equal(ev.nprefs, 2);
    assert_int_equal(ev.prefs[0].theme, 0);
    assert_string_equal(ev.prefs[0].name, "drama");
    assert_true(ev.prefs[0].weight == 1.5);
    assert_int_equal(ev.prefs[1].theme, 1);
    assert_true(ev.prefs[1].weight == -2.0);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts, 1700000000456LL);
    hsc_policy_event_clear(&ev);
    (void)s;
}

static void test_golden_set_clear(void **s)
{
    hsc_policy_event ev;
    golden("policy_set_clear", &ev);
    assert_int_equal(ev.set, HSC_POLICY_MAX_MATURITY);
    assert_int_equal(ev.clear, HSC_POLICY_EXCLUDED_GENRES | HSC_POLICY_PREFS);
    assert_int_equal(ev.max_maturity, 16);
    assert_false(ev.has_ts);
    hsc_policy_event_clear(&ev);
    (void)s;
}

static void test_golden_block_and_erase(void **s)
{
    hsc_policy_event ev;
    golden("policy_block", &ev);
    assert_int_equal(ev.op, HSC_POLICY_BLOCK);
    assert_int_equal(ev.ids.n, 2);
    assert_string_equal(ev.ids.v[1], "t000043");
    hsc_policy_event_clear(&ev);
    golden("policy_erase", &ev);
    assert_int_equal(ev.op, HSC_POLICY_ERASE);
    assert_string_equal(ev.user_id, "u0002");
    assert_int_equal(ev.version, 8);
    hsc_policy_event_clear(&ev);
    (void)s;
}

/* A message built from a list of (key, packer) pairs; see the cases below. */
struct kv {
    const char *key;
    void (*pack)(msgpack_packer *pk, const void *arg);
    const void *arg;
};

static void p_str(msgpack_packer *pk, const void *a)
{
    const char *s = a;
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void p_int(msgpack_packer *pk, const void *a)
{
    msgpack_pack_int64(pk, (int64_t)(intptr_t)a);
}

static void p_nil(msgpack_packer *pk, const void *a)
{
    msgpack_pack_nil(pk);
    (void)a;
}

/* An array of the strings in a NULL-terminated list. */
static void p_strs(msgpack_packer *pk, const void *a)
{
    const char *const *v = a;
    size_t n = 0;
    while (v[n])
        n++;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        p_str(pk, v[i]);
}

/* prefs: [{dim, name, weight}] from "dim:name:weight" strings ("-" leaves a key out). */
static void p_prefs(msgpack_packer *pk, const void *a)
{
    const char *const *v = a;
    size_t n = 0;
    while (v[n])
        n++;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        char dim[32], name[200], w[32];
        sscanf(v[i], "%31[^:]:%199[^:]:%31s", dim, name, w);
        int k = (strcmp(dim, "-") != 0) + (strcmp(name, "-") != 0) + (strcmp(w, "-") != 0);
        msgpack_pack_map(pk, (size_t)k);
        if (strcmp(dim, "-")) {
            p_str(pk, "dim");
            p_str(pk, dim);
        }
        if (strcmp(name, "-")) {
            p_str(pk, "name");
            p_str(pk, name);
        }
        if (strcmp(w, "-")) {
            p_str(pk, "weight");
            msgpack_pack_double(pk, atof(w));
        }
    }
}

static int decode_kvs(const struct kv *kvs, hsc_err *err)
{
    size_t n = 0;
    while (kvs[n].key)
        n++;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        p_str(&pk, kvs[i].key);
        kvs[i].pack(&pk, kvs[i].arg);
    }
    hsc_policy_event ev;
    int rc = hsc_codec_decode_policy(sb.data, sb.size, &ev, err);
    if (rc)
        assert_null(ev.user_id); /* left empty on failure */
    hsc_policy_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

#define HEAD                                                                                       \
    {"v", p_int, (void *)1}, {"user_id", p_str, "u1"},                                             \
    {                                                                                              \
        "version", p_int, (void *)5                                                                \
    }
#define I(x) ((void *)(intptr_t)(x))

static const char *const GENRES[] = {"horror", NULL};
static const char *const BAD_LANG[] = {"en", "eng", NULL};
static const char *const IDS[] = {"t1", "t2", NULL};
static const char *const BAD_IDS[] = {"t1", "not an id", NULL};
static const char *const CLEAR_MM[] = {"max_maturity", NULL};
static const char *const CLEAR_BAD[] = {"colour", NULL};
static const char *const CLEAR_TWICE[] = {"prefs", "prefs", NULL};
static const char *const PREFS_OK[] = {"genre:drama:2", NULL};
static const char *const PREFS_BIG[] = {"genre:drama:500", NULL};
static const char *const PREFS_DIM[] = {"genre:drama:1", "mood:dark:1", NULL};
static const char *const PREFS_NOW[] = {"genre:drama:-", NULL};
static const char *const PREFS_EMPTY[] = {NULL};

/* One invalid message and the reason its error must contain. */
struct bad_case {
    struct kv kvs[8];
    const char *want;
};

static const struct bad_case BAD[] = {
    {{{"user_id", p_str, "u1"}, {"version", p_int, I(1)}, {"op", p_str, "erase"}}, "v: missing"},
    {{{"v", p_int, I(1)}, {"version", p_int, I(1)}, {"op", p_str, "erase"}}, "user_id: missing"},
    {{{"v", p_int, I(1)},
      {"user_id", p_str, "u 1"},
      {"version", p_int, I(1)},
      {"op", p_str, "erase"}},
     "user_id: 'u 1' is not"},
    {{{"v", p_int, I(1)}, {"user_id", p_str, "u1"}, {"op", p_str, "erase"}}, "version: missing"},
    {{{"v", p_int, I(1)},
      {"user_id", p_str, "u1"},
      {"version", p_int, I(-3)},
      {"op", p_str, "erase"}},
     "version: -3 is outside"},
    {{{"v", p_int, I(2)},
      {"user_id", p_str, "u1"},
      {"version", p_int, I(1)},
      {"op", p_str, "erase"}},
     "v: schema version 2"},
    {{HEAD}, "op: missing"},
    {{HEAD, {"op", p_str, "delete"}}, "op: 'delete' is not set, block, unblock or erase"},
    {{HEAD, {"op", p_str, "set"}}, "op: set names no field to set or clear"},
    {{HEAD, {"op", p_str, "set"}, {"max_maturity", p_int, I(30)}},
     "max_maturity: 30 is outside 0..21"},
    {{HEAD, {"op", p_str, "set"}, {"max_maturity", p_str, "PG"}},
     "max_maturity: expected an integer, got string"},
    {{HEAD, {"op", p_str, "set"}, {"languages", p_strs, BAD_LANG}},
     "languages[1]: 'eng' is not a two-letter ISO 639-1 code"},
    {{HEAD, {"op", p_str, "set"}, {"blocked_ids", p_strs, BAD_IDS}}, "blocked_ids[1]:"},
    {{HEAD, {"op", p_str, "set"}, {"prefs", p_prefs, PREFS_BIG}},
     "prefs[0].weight: 500 is outside -100..100"},
    {{HEAD, {"op", p_str, "set"}, {"prefs", p_prefs, PREFS_DIM}},
     "prefs[1].dim: 'mood' is not genre or theme"},
    {{HEAD, {"op", p_str, "set"}, {"prefs", p_prefs, PREFS_NOW}}, "prefs[0].weight: missing"},
    {{HEAD, {"op", p_str, "set"}, {"prefs", p_prefs, PREFS_EMPTY}}, "prefs: empty"},
    {{HEAD, {"op", p_str, "set"}, {"clear", p_strs, CLEAR_BAD}}, "clear[0]: 'colour' is not"},
    {{HEAD, {"op", p_str, "set"}, {"clear", p_strs, CLEAR_TWICE}}, "clear[1]: prefs appears twice"},
    {{HEAD, {"op", p_str, "set"}, {"max_maturity", p_int, I(12)}, {"clear", p_strs, CLEAR_MM}},
     "clear: max_maturity is also set"},
    {{HEAD, {"op", p_str, "block"}}, "ids: missing or empty (required for block)"},
    {{HEAD, {"op", p_str, "unblock"}, {"ids", p_strs, BAD_IDS}}, "ids[1]:"},
    {{HEAD, {"op", p_str, "set"}, {"ids", p_strs, IDS}, {"clear", p_strs, CLEAR_MM}},
     "ids: not allowed with op set"},
    {{HEAD, {"op", p_str, "erase"}, {"excluded_genres", p_strs, GENRES}},
     "excluded_genres: not allowed with op erase"},
    {{HEAD, {"op", p_str, "block"}, {"ids", p_strs, IDS}, {"clear", p_strs, CLEAR_MM}},
     "clear: not allowed with op block"},
    {{HEAD, {"op", p_str, "erase"}, {"op", p_str, "erase"}}, "op: key appears twice"},
    {{HEAD, {"op", p_str, "erase"}, {"ts", p_int, I(-1)}}, "ts: -1 is outside"},
};

static void test_invalid_events_name_the_field(void **s)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        hsc_err err = {0};
        int rc = decode_kvs(BAD[i].kvs, &err);
        if (rc != HSC_EINVAL || !strstr(err.msg, BAD[i].want))
            fail_msg("case %zu: want '%s', got %d '%s'", i, BAD[i].want, rc, err.msg);
    }
    (void)s;
}

static void test_valid_events_and_nil_means_absent(void **s)
{
    const struct kv ok[][8] = {
        {HEAD, {"op", p_str, "erase"}},
        {HEAD, {"op", p_str, "set"}, {"prefs", p_prefs, PREFS_OK}},
        {HEAD, {"op", p_str, "set"}, {"max_maturity", p_nil, NULL}, {"clear", p_strs, CLEAR_MM}},
        {HEAD, {"op", p_str, "unblock"}, {"ids", p_strs, IDS}, {"future", p_str, "ignored"}},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        hsc_err err = {0};
        if (decode_kvs(ok[i], &err))
            fail_msg("case %zu: %s", i, err.msg);
    }
    (void)s;
}

static void test_encode_validates_and_round_trips(void **s)
{
    hsc_policy_event ev = {.v = 1, .user_id = "u9", .version = 12, .op = HSC_POLICY_SET};
    char *out = NULL;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_policy(&ev, &out, &len, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "op: set names no field"));
    ev.set = HSC_POLICY_LANGUAGES;
    char *langs[] = {"de"};
    ev.languages.v = langs;
    ev.languages.n = 1;
    ev.clear = HSC_POLICY_BLOCKED_IDS;
    assert_int_equal(hsc_codec_encode_policy(&ev, &out, &len, &err), HSC_OK);
    hsc_policy_event back;
    assert_int_equal(hsc_codec_decode_policy(out, len, &back, &err), HSC_OK);
    assert_string_equal(back.user_id, "u9");
    assert_int_equal(back.version, 12);
    assert_int_equal(back.set, HSC_POLICY_LANGUAGES);
    assert_int_equal(back.clear, HSC_POLICY_BLOCKED_IDS);
    assert_string_equal(back.languages.v[0], "de");
    hsc_policy_event_clear(&back);
    free(out);
    (void)s;
}

static void test_bounds_apply(void **s)
{
    /* 300 ids: over the list rule (256) but within the codec's array bound (1000) */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    p_str(&pk, "v"), msgpack_pack_int(&pk, 1);
    p_str(&pk, "user_id"), p_str(&pk, "u1");
    p_str(&pk, "version"), msgpack_pack_int(&pk, 1);
    p_str(&pk, "op"), p_str(&pk, "block");
    p_str(&pk, "ids");
    msgpack_pack_array(&pk, 300);
    for (int i = 0; i < 300; i++)
        p_str(&pk, "t1");
    hsc_policy_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_policy(sb.data, sb.size, &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "ids: 300 entries is more than 256"));
    msgpack_sbuffer_destroy(&sb);
    /* a map header claiming 100000 entries is rejected before anything is read */
    const unsigned char huge[] = {0xdf, 0x00, 0x01, 0x86, 0xa0};
    assert_int_equal(hsc_codec_decode_policy(huge, sizeof(huge), &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "policy: map of 100000 entries exceeds 256"));
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_set_full),
        cmocka_unit_test(test_golden_set_clear),
        cmocka_unit_test(test_golden_block_and_erase),
        cmocka_unit_test(test_invalid_events_name_the_field),
        cmocka_unit_test(test_valid_events_and_nil_means_absent),
        cmocka_unit_test(test_encode_validates_and_round_trips),
        cmocka_unit_test(test_bounds_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
