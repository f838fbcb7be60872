/*
 * Tests of common/transport/codec_*.c and common/transport/json_event.c: the golden examples
 * (produced by an independent MessagePack implementation, see
 * schemas/README.md) decode, match their JSON twins and re-encode byte for
 * byte; every validation rule rejects with a message naming the field. The
 * bounds of codec.h are tested in test_codec_bounds.c, the PolicyEvent in
 * test_codec_policy.c.
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
#include "golden.h"
#include "codec_cases.h"

static void assert_lists_equal(const hsc_strlist *a, const hsc_strlist *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->v[i], b->v[i]);
}

static void assert_content_equal(const hsc_content_event *a, const hsc_content_event *b)
{
    assert_int_equal(a->v, b->v);
    assert_int_equal(a->op, b->op);
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->version, b->version);
    assert_int_equal(!!a->title, !!b->title);
    if (a->title)
        assert_string_equal(a->title, b->title);
    assert_int_equal(!!a->description, !!b->description);
    if (a->description)
        assert_string_equal(a->description, b->description);
    assert_lists_equal(&a->genres, &b->genres);
    assert_lists_equal(&a->themes, &b->themes);
    assert_lists_equal(&a->moods, &b->moods);
    assert_lists_equal(&a->related, &b->related);
    assert_int_equal(a->has, b->has);
    assert_int_equal(a->year, b->year);
    assert_int_equal(a->maturity, b->maturity);
    assert_int_equal(a->duration_s, b->duration_s);
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->dim, b->dim);
    for (size_t i = 0; i < a->dim; i++)
        assert_true(a->embedding[i] == b->embedding[i]);
}

static void golden_content(const char *base)
{
    char name[128];
    size_t glen, jlen;
    snprintf(name, sizeof(name), "%s.msgpack.hex", base);
    unsigned char *golden = golden_bytes(name, &glen);
    snprintf(name, sizeof(name), "%s.json", base);
    char *json = slurp(name, &jlen);

    hsc_content_event from_wire, from_json;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_content(golden, glen, &from_wire, &err), HSC_OK);
    assert_int_equal(hsc_json_to_content(json, jlen, &from_json, &err), HSC_OK);
    assert_content_equal(&from_wire, &from_json);

    char *out;
    size_t olen;
    assert_int_equal(hsc_codec_encode_content(&from_wire, &out, &olen, &err), HSC_OK);
    assert_int_equal(olen, glen);
    assert_memory_equal(out, golden, glen);
    free(out);
    assert_int_equal(hsc_codec_encode_content(&from_json, &out, &olen, &err), HSC_OK);
    assert_memory_equal(out, golden, glen);
    free(out);
    hsc_content_event_clear(&from_wire);
    hsc_content_event_clear(&from_json);
    free(golden);
    free(json);
}

static void golden_learning(const char *base)
{
    char name[128];
    size_t glen, jlen;
    snprintf(name, sizeof(name), "%s.msgpack.hex", base);
    unsigned char *golden = golden_bytes(name, &glen);
    snprintf(name, sizeof(name), "%s.json", base);
    char *json = slurp(name, &jlen);
    hsc_learning_event a, b;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_learning(golden, glen, &a, &err), HSC_OK);
    assert_int_equal(hsc_json_to_learning(json, jlen, &b, &err), HSC_OK);
    assert_string_equal(a.user_id, b.user_id);
    assert_string_equal(a.content_id, b.content_id);
    assert_string_equal(a.kind, b.kind);
    assert_int_equal(a.has_value, b.has_value);
    assert_true(a.value == b.value);
    assert_int_equal(a.ts, b.ts);
    char *out;
    size_t olen;
    assert_int_equal(hsc_codec_encode_learning(&a, &out, &olen, &err), HSC_OK);
    assert_int_equal(olen, glen);
    assert_memory_equal(out, golden, glen);
    free(out);
    hsc_learning_event_clear(&a);
    hsc_learning_event_clear(&b);
    free(golden);
    free(json);
}

static void test_golden_content_full(void **s)
{
    golden_content("content_upsert_full");
    size_t glen;
    unsigned char *g = golden_bytes("content_upsert_full.msgpack.hex", &glen);
    hsc_content_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_content(g, glen, &ev, &err), HSC_OK);
    assert_string_equal(ev.title, "The Silent Planet");
    assert_int_equal(ev.dim, 4);
    assert_true(ev.embedding[1] == -0.5f);
    assert_int_equal(ev.maturity, 12);
    assert_string_equal(ev.genres.v[0], "science fiction");
    assert_int_equal(ev.ts, 1700000000123LL);
    hsc_content_event_clear(&ev);
    free(g);
    (void)s;
}
static void test_golden_content_minimal(void **s)
{
    golden_content("content_upsert_minimal");
    (void)s;
}
static void test_golden_content_delete(void **s)
{
    golden_content("content_delete");
    (void)s;
}
static void test_golden_learning_like(void **s)
{
    golden_learning("learning_like");
    (void)s;
}
static void test_golden_learning_rating(void **s)
{
    golden_learning("learning_rating");
    (void)s;
}

/* ---------- building bad messages ---------- */

static const struct field BASE_LEARNING[] = {
    {"v", {V_INT, 1, NULL, 0, 0}},          {"user_id", {V_STR, 0, "u1", 0, 0}},
    {"content_id", {V_STR, 0, "t1", 0, 0}}, {"kind", {V_STR, 0, "like", 0, 0}},
    {"ts", {V_INT, 5, NULL, 0, 0}},
};

/* Packs base with `key` replaced by (or added as) *v; v == NULL removes the key. */
static void build(const struct field *base, size_t nbase, const char *key, const struct val *v,
                  msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t n = 0;
    int found = 0;
    for (size_t i = 0; i < nbase; i++) {
        if (!strcmp(base[i].key, key)) {
            found = 1;
            if (v)
                n++;
        } else {
            n++;
        }
    }
    if (!found && v)
        n++;
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < nbase; i++) {
        const struct val *pv = &base[i].v;
        if (!strcmp(base[i].key, key)) {
            if (!v)
                continue;
            pv = v;
        }
        msgpack_pack_str(&pk, strlen(base[i].key));
        msgpack_pack_str_body(&pk, base[i].key, strlen(base[i].key));
        pack_val(&pk, pv);
    }
    if (!found && v) {
        msgpack_pack_str(&pk, strlen(key));
        msgpack_pack_str_body(&pk, key, strlen(key));
        pack_val(&pk, v);
    }
}

struct bad_case {
    const char *key;
    struct val v;
    int remove;
    const char *expect;
};

static char LONG_TITLE[HSC_MAX_TITLE_LEN + 2];
static char LONG_DESC[HSC_MAX_DESCRIPTION_LEN + 2];
static char LONG_TAG[HSC_MAX_TAG_LEN + 2];
static char LONG_ID[HSC_MAX_ID_LEN + 2];

static void test_content_validation_errors(void **s)
{
    memset(LONG_TITLE, 'a', sizeof(LONG_TITLE) - 1);
    memset(LONG_DESC, 'b', sizeof(LONG_DESC) - 1);
    memset(LONG_TAG, 'c', sizeof(LONG_TAG) - 1);
    memset(LONG_ID, 'd', sizeof(LONG_ID) - 1);
    const float nan_emb[2] = {1.0f, NAN};
    const struct bad_case cases[] = {
        {"v", {V_INT, 0}, 1, "v: missing"},
        {"op", {V_INT, 0}, 1, "op: missing"},
        {"id", {V_INT, 0}, 1, "id: missing"},
        {"version", {V_INT, 0}, 1, "version: missing"},
        {"title", {V_INT, 0}, 1, "title: missing (required for upsert)"},
        {"v", {V_INT, 2}, 0, "v: schema version 2 is not supported"},
        {"op", {V_STR, 0, "merge"}, 0, "op: 'merge' is not upsert or delete"},
        {"id", {V_INT, 7}, 0, "id: expected a string, got integer"},
        {"id", {V_STR, 0, "a b"}, 0, "id: 'a b' is not 1-128 characters"},
        {"id", {V_STR, 0, LONG_ID}, 0, "is not 1-128 characters"},
        {"id", {V_STR, 0, ""}, 0, "id: '' is not 1-128 characters"},
        {"version", {V_INT, -1}, 0, "version: -1 is negative"},
        {"version", {V_STR, 0, "3"}, 0, "version: expected an integer, got string"},
        {"version", {V_UINT, (long long)(~0ull >> 0)}, 0, "does not fit in int64"},
        {"title", {V_STR, 0, ""}, 0, "title: empty"},
        {"title", {V_STR, 0, LONG_TITLE}, 0, "title: 1025 bytes is longer than 1024"},
        {"title", {V_STR, 0, "bad \xff utf8"}, 0, "title: not valid UTF-8"},
        {"title", {V_STRN, 0, "nul\0x", 5}, 0, "title: contains a NUL byte"},
        {"title", {V_ARRAY_STR, 0, "x", 1}, 0, "title: expected a string, got array"},
        {"description", {V_STR, 0, LONG_DESC}, 0, "description: 16385 bytes is longer than 16384"},
        {"kind", {V_STR, 0, "podcast"}, 0, "kind: 'podcast' is not movie, series or episode"},
        {"genres", {V_STR, 0, "drama"}, 0, "genres: expected an array of strings, got string"},
        {"genres", {V_ARRAY_INT, 0, NULL, 2}, 0, "genres[0]: expected a string, got integer"},
        {"genres", {V_ARRAY_STR, 0, "x", 257}, 0, "genres: 257 entries is more than 256"},
        {"themes", {V_ARRAY_STR, 0, LONG_TAG, 1}, 0, "themes[0]: 129 bytes is longer than 128"},
        {"moods", {V_ARRAY_STR, 0, "\xc3\x28", 1}, 0, "moods[0]: not valid UTF-8"},
        {"language", {V_STR, 0, "eng"}, 0, "language: 'eng' is not a two-letter ISO 639-1 code"},
        {"language", {V_STR, 0, "e1"}, 0, "language: 'e1' is not a two-letter"},
        {"year", {V_INT, 1700}, 0, "year: 1700 is outside 1800..2200"},
        {"year", {V_STR, 0, "1999"}, 0, "year: expected an integer, got string"},
        {"maturity", {V_INT, 22}, 0, "maturity: 22 is outside 0..21"},
        {"maturity", {V_INT, -1}, 0, "maturity: -1 is outside 0..21"},
        {"duration_s", {V_INT, -5}, 0, "duration_s: -5 is negative"},
        {"related", {V_ARRAY_STR, 0, "no spaces", 1}, 0, "related[0]: 'no spaces' is not 1-128"},
        {"embedding",
         {V_ARRAY_INT, 0, NULL, 4},
         0,
         "embedding: expected bin of little-endian float32, got array"},
        {"embedding", {V_BIN, 0, "abcdef", 6}, 0, "embedding: 6 bytes is not a multiple of 4"},
        {"embedding", {V_BIN, 0, "", 0}, 0, "embedding: empty"},
        {"embedding", {V_BIN, 0, (const char *)nan_emb, 8}, 0, "embedding[1]: not a finite number"},
        {"ts", {V_INT, -1}, 0, "ts: -1 is negative"},
        {"ts", {V_FLOAT, 0, NULL, 0, 1.5}, 0, "ts: expected an integer, got float"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        build(BASE_CONTENT, 5, cases[i].key, cases[i].remove ? NULL : &cases[i].v, &sb);
        hsc_content_event ev;
        hsc_err err = {0};
        int rc = hsc_codec_decode_content(sb.data, sb.size, &ev, &err);
        if (rc != HSC_EINVAL || !strstr(err.msg, cases[i].expect))
            fail_msg("case %zu (%s): rc=%d msg='%s', expected '%s'", i, cases[i].key, rc, err.msg,
                     cases[i].expect);
        assert_null(ev.id); /* a failed decode leaves nothing to free */
        msgpack_sbuffer_destroy(&sb);
    }
    (void)s;
}

static void test_content_envelope_errors(void **s)
{
    hsc_content_event ev;
    hsc_err err = {0};
    const unsigned char notmp[] = {0xc1};
    assert_int_equal(hsc_codec_decode_content(notmp, 1, &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "message: not MessagePack"));
    assert_int_equal(hsc_codec_decode_content("", 0, &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "message: empty");
    const unsigned char arr[] = {0x91, 0x01};
    assert_int_equal(hsc_codec_decode_content(arr, 2, &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "message: expected a map, got array");
    const unsigned char trunc[] = {0x82, 0xa1, 0x76};
    assert_int_equal(hsc_codec_decode_content(trunc, 3, &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "truncated"));
    const unsigned char intkey[] = {0x81, 0x01, 0x01};
    assert_int_equal(hsc_codec_decode_content(intkey, 3, &ev, &err), HSC_EINVAL);
    assert_non_null(strstr(err.msg, "map key 0 is a integer, not a string"));
    const unsigned char dup[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 'v', 0x01};
    assert_int_equal(hsc_codec_decode_content(dup, sizeof(dup), &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "v: key appears twice");
    /* a valid map followed by garbage */
    msgpack_sbuffer sb;
    build(BASE_CONTENT, 5, "x", NULL, &sb);
    msgpack_sbuffer_write(&sb, "\x01", 1);
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "message: 1 trailing bytes after the map");
    msgpack_sbuffer_destroy(&sb);
    /* JSON text is not MessagePack */
    const char *json = "{\"id\":\"t1\"}";
    assert_int_equal(hsc_codec_decode_content(json, strlen(json), &ev, &err), HSC_EINVAL);
    (void)s;
}

static void test_unknown_keys_and_nil_are_ignored(void **s)
{
    msgpack_sbuffer sb;
    struct val m = {V_MAP, 0, NULL, 0, 0};
    build(BASE_CONTENT, 5, "added_in_v2", &m, &sb);
    hsc_content_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_OK);
    assert_string_equal(ev.id, "t1");
    hsc_content_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);
    struct val nil = {V_NIL, 0, NULL, 0, 0};
    build(BASE_CONTENT, 5, "year", &nil, &sb);
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_OK);
    assert_false(ev.has & HSC_HAS_YEAR);
    hsc_content_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);
    (void)s;
}

static void test_delete_needs_no_title(void **s)
{
    msgpack_sbuffer sb;
    struct val del = {V_STR, 0, "delete", 0, 0};
    build(BASE_CONTENT, 4, "op", &del, &sb); /* BASE without title */
    hsc_content_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_content(sb.data, sb.size, &ev, &err), HSC_OK);
    assert_int_equal(ev.op, HSC_OP_DELETE);
    hsc_content_event_clear(&ev);
    msgpack_sbuffer_destroy(&sb);
    (void)s;
}

static void test_learning_validation_errors(void **s)
{
    const struct bad_case cases[] = {
        {"v", {V_INT, 0}, 1, "v: missing"},
        {"user_id", {V_INT, 0}, 1, "user_id: missing"},
        {"content_id", {V_INT, 0}, 1, "content_id: missing"},
        {"kind", {V_INT, 0}, 1, "kind: missing"},
        {"ts", {V_INT, 0}, 1, "ts: missing"},
        {"user_id", {V_STR, 0, "bad user"}, 0, "user_id: 'bad user' is not 1-128"},
        {"kind", {V_STR, 0, "share"}, 0, "kind: 'share' is not view, like"},
        {"value", {V_STR, 0, "5"}, 0, "value: expected a number, got string"},
        {"ts", {V_INT, -3}, 0, "ts: -3 is negative"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        build(BASE_LEARNING, 5, cases[i].key, cases[i].remove ? NULL : &cases[i].v, &sb);
        hsc_learning_event ev;
        hsc_err err = {0};
        int rc = hsc_codec_decode_learning(sb.data, sb.size, &ev, &err);
        if (rc != HSC_EINVAL || !strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: rc=%d msg='%s', expected '%s'", i, rc, err.msg, cases[i].expect);
        msgpack_sbuffer_destroy(&sb);
    }
    (void)s;
}

static void test_learning_value_rules(void **s)
{
    hsc_learning_event ev;
    hsc_err err = {0};
    const char *no_value = "{\"user_id\":\"u\",\"content_id\":\"t\",\"kind\":\"rating\",\"ts\":1}";
    assert_int_equal(hsc_json_to_learning(no_value, strlen(no_value), &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "value: missing (required for a rating)");
    const char *high =
        "{\"user_id\":\"u\",\"content_id\":\"t\",\"kind\":\"rating\",\"value\":6,\"ts\":1}";
    assert_int_equal(hsc_json_to_learning(high, strlen(high), &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "value: rating 6 is outside 0..5");
    const char *comp =
        "{\"user_id\":\"u\",\"content_id\":\"t\",\"kind\":\"complete\",\"value\":1.5,\"ts\":1}";
    assert_int_equal(hsc_json_to_learning(comp, strlen(comp), &ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "value: completion 1.5 is outside 0..1");
    const char *ok = "{\"user_id\":\"u\",\"content_id\":\"t\",\"kind\":\"complete\",\"ts\":1}";
    assert_int_equal(hsc_json_to_learning(ok, strlen(ok), &ev, &err), HSC_OK);
    assert_false(ev.has_value);
    hsc_learning_event_clear(&ev);
    (void)s;
}

static void test_json_errors_name_the_field(void **s)
{
    hsc_content_event ev;
    hsc_err err = {0};
    const struct {
        const char *json, *expect;
    } cases[] = {
        {"not json", "not JSON"},
        {"[1,2]", "expected a JSON object, got an array"},
        {"{\"id\":\"t1\",\"title\":\"x\"}", "version: missing"},
        {"{\"id\":\"t1\",\"version\":1.5,\"title\":\"x\"}",
         "version: expected an integer, got 1.5"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"genres\":\"drama\"}",
         "genres: expected an array of strings, got a string"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"embedding\":[1,\"a\"]}",
         "embedding[1]: expected a number, got a string"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"embedding\":[]}", "embedding: empty"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"id\":\"t2\"}", "not JSON"},
        {"{\"version\":1,\"title\":\"x\"}", "id: missing"},
        {"{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"op\":\"remove\"}", "op: 'remove' is not"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = hsc_json_to_content(cases[i].json, strlen(cases[i].json), &ev, &err);
        if (rc != HSC_EINVAL || !strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: rc=%d msg='%s', expected '%s'", i, rc, err.msg, cases[i].expect);
    }
    (void)s;
}

static void test_float32_roundtrip_is_exact(void **s)
{
    hsc_content_event ev = {0};
    ev.v = 1;
    ev.id = strdup("t1");
    ev.title = strdup("x");
    ev.dim = 5;
    ev.embedding = malloc(5 * sizeof(float));
    ev.embedding[0] = 0.1f;
    ev.embedding[1] = -3.4028235e38f;
    ev.embedding[2] = 1.17549435e-38f;
    ev.embedding[3] = 1e-45f; /* subnormal */
    ev.embedding[4] = -0.0f;
    char *buf;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_content(&ev, &buf, &len, &err), HSC_OK);
    hsc_content_event back;
    assert_int_equal(hsc_codec_decode_content(buf, len, &back, &err), HSC_OK);
    assert_memory_equal(back.embedding, ev.embedding, 5 * sizeof(float));
    free(buf);
    hsc_content_event_clear(&ev);
    hsc_content_event_clear(&back);
    (void)s;
}

static void golden_indexed(const char *base, const char *id, int indexed, const char *reason,
                           int64_t epoch, int dim)
{
    char name[128];
    size_t glen;
    snprintf(name, sizeof(name), "%s.msgpack.hex", base);
    unsigned char *golden = golden_bytes(name, &glen);
    hsc_indexed_record r;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_indexed(golden, glen, &r, &err), HSC_OK);
    assert_string_equal(r.id, id);
    assert_int_equal(r.indexed, indexed);
    if (reason)
        assert_string_equal(r.reason, reason);
    else
        assert_null(r.reason);
    assert_int_equal(r.epoch, epoch);
    assert_int_equal(r.dim, dim);
    char *out;
    size_t olen;
    assert_int_equal(hsc_codec_encode_indexed(&r, &out, &olen, &err), HSC_OK);
    assert_int_equal(olen, glen);
    assert_memory_equal(out, golden, glen);
    free(out);
    hsc_indexed_record_clear(&r);
    free(golden);
}

static void test_golden_indexed(void **state)
{
    (void)state;
    golden_indexed("indexed_upsert", "t000042", 1, NULL, 1234, 384);
    golden_indexed("indexed_not_indexed", "t000043", 0,
                   "no embedding and no embeddings endpoint configured", 0, 0);
}

static void test_indexed_errors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *hex, *want;
    } cases[] = {
        /* {"v":1} */
        {"81a17601", "id: missing"},
        /* {"v":1,"id":"a"} */
        {"82a17601a26964a161", "version: missing"},
        /* {"v":1,"id":"a","version":1,"op":"x"} */
        {"84a17601a26964a161a776657273696f6e01a26f70a178", "op: must be"},
        /* {"v":1,"id":"a","version":1,"op":"upsert","indexed":1} */
        {"85a17601a26964a161a776657273696f6e01a26f70a6757073657274a7696e646578656401",
         "indexed: expected a boolean"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char buf[256];
        size_t n = strlen(cases[i].hex) / 2;
        for (size_t k = 0; k < n; k++)
            sscanf(cases[i].hex + 2 * k, "%2hhx", &buf[k]);
        hsc_indexed_record r;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_decode_indexed(buf, n, &r, &err), HSC_EINVAL);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_content_full),
        cmocka_unit_test(test_golden_content_minimal),
        cmocka_unit_test(test_golden_content_delete),
        cmocka_unit_test(test_golden_learning_like),
        cmocka_unit_test(test_golden_learning_rating),
        cmocka_unit_test(test_content_validation_errors),
        cmocka_unit_test(test_content_envelope_errors),
        cmocka_unit_test(test_unknown_keys_and_nil_are_ignored),
        cmocka_unit_test(test_delete_needs_no_title),
        cmocka_unit_test(test_learning_validation_errors),
        cmocka_unit_test(test_learning_value_rules),
        cmocka_unit_test(test_json_errors_name_the_field),
        cmocka_unit_test(test_float32_roundtrip_is_exact),
        cmocka_unit_test(test_golden_indexed),
        cmocka_unit_test(test_indexed_errors_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
