/*
 * The search as hsc-query receives and answers it, without servers: the wire
 * contract (golden examples from Python's msgpack decode and re-encode byte
 * for byte, every validation rule names its field). The planner, ranking,
 * filters, candidates, policy and cache key have their own files
 * (test_planner.c, test_rank.c, test_filters.c, test_candidates.c,
 * test_policy.c, test_qcache.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "hsc/codec.h"
#include "util.h"
#include "golden.h"

/* ---------- wire contract ---------- */

static void roundtrip_request(const char *base, hsc_search_request *out)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.msgpack.hex", base);
    size_t glen;
    unsigned char *g = golden_bytes(name, &glen);
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_search_request(g, glen, out, &err), HSC_OK);
    char *buf;
    size_t len;
    assert_int_equal(hsc_codec_encode_search_request(out, &buf, &len, &err), HSC_OK);
    assert_int_equal(len, glen);
    assert_memory_equal(buf, g, glen);
    free(buf);
    free(g);
}

static void test_golden_request_full(void **s)
{
    hsc_search_request r;
    roundtrip_request("search_request_full", &r);
    assert_string_equal(r.user_id, "u0007");
    assert_int_equal(r.dim, 4);
    assert_true(r.embedding[1] == -0.5f && r.embedding[3] == 0.125f);
    assert_int_equal(r.seed_ids.n, 2);
    assert_string_equal(r.seed_ids.v[1], "t000019");
    assert_int_equal(r.k, 20);
    assert_string_equal(r.filters.genres.v[0], "science fiction");
    assert_string_equal(r.filters.exclude_ids.v[0], "t000007");
    assert_string_equal(r.filters.language, "en");
    assert_int_equal(r.filters.has,
                     HSC_FILTER_YEAR_MIN | HSC_FILTER_YEAR_MAX | HSC_FILTER_MAX_MATURITY);
    assert_int_equal(r.filters.year_min, 1990);
    assert_int_equal(r.filters.max_maturity, 16);
    assert_true(r.include_relationships);
    assert_int_equal(r.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    hsc_search_request_clear(&r);
    (void)s;
}

static void test_golden_request_minimal(void **s)
{
    hsc_search_request r;
    roundtrip_request("search_request_minimal", &r);
    assert_null(r.user_id);
    assert_int_equal(r.k, 10);
    assert_int_equal(r.strategy, HSC_STRATEGY_AUTO);
    assert_true(r.cache);
    hsc_search_request_clear(&r);
    (void)s;
}

static void roundtrip_reply(const char *base, hsc_search_reply *out)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.msgpack.hex", base);
    size_t glen;
    unsigned char *g = golden_bytes(name, &glen);
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_search_reply(g, glen, out, &err), HSC_OK);
    char *buf;
    size_t len;
    assert_int_equal(hsc_codec_encode_search_reply(out, &buf, &len, &err), HSC_OK);
    assert_int_equal(len, glen);
    assert_memory_equal(buf, g, glen);
    free(buf);
    free(g);
}

static void test_golden_replies(void **s)
{
    hsc_search_reply r;
    roundtrip_reply("search_reply_ok", &r);
    assert_true(r.ok);
    assert_int_equal(r.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL);
    assert_int_equal(r.nresults, 1);
    assert_string_equal(r.results[0].title, "The Last Orbit");
    assert_true(r.results[0].graph_score == 0.75);
    assert_int_equal(r.results[0].nrels, 1);
    assert_string_equal(r.results[0].rels[0].type, "SIMILAR_TO");
    assert_int_equal(r.timings_us.vector, 9120);
    hsc_search_reply_clear(&r);
    roundtrip_reply("search_reply_error", &r);
    assert_false(r.ok);
    assert_string_equal(r.error_code, "bad_request");
    assert_string_equal(r.error_message, "k: 0 is outside 1..1000");
    hsc_search_reply_clear(&r);
    roundtrip_reply("search_reply_degraded", &r);
    assert_int_equal(r.degraded.n, 1);
    assert_string_equal(r.degraded.v[0], "graph");
    assert_false(r.results[0].has_rels);
    hsc_search_reply_clear(&r);
    (void)s;
}

/* Packs a map of key/value pairs given as a msgpack-building callback. */
typedef void (*build_fn)(msgpack_packer *pk);

static void expect_request_error(build_fn build, const char *msg)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    build(&pk);
    hsc_search_request r;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_search_request(sb.data, sb.size, &r, &err), HSC_EINVAL);
    if (strstr(err.msg, msg) == NULL)
        fail_msg("expected '%s' in '%s'", msg, err.msg);
    msgpack_sbuffer_destroy(&sb);
}

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void b_k0(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "k"), msgpack_pack_int(pk, 0);
}
static void b_k_big(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "k"), msgpack_pack_int(pk, 1001);
}
static void b_no_v(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    key(pk, "k"), msgpack_pack_int(pk, 5);
}
static void b_strategy(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "strategy"), key(pk, "fastest");
}
static void b_emb(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "embedding"), msgpack_pack_bin(pk, 6), msgpack_pack_bin_body(pk, "abcdef", 6);
}
static void b_emb_nan(msgpack_packer *pk)
{
    float f[2] = {1.0f, NAN};
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "embedding"), msgpack_pack_bin(pk, 8), msgpack_pack_bin_body(pk, f, 8);
}
static void b_seed(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "seed_ids"), msgpack_pack_array(pk, 1), key(pk, "no spaces allowed");
}
static void b_filters(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "filters"), msgpack_pack_array(pk, 0);
}
static void b_years(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "filters"), msgpack_pack_map(pk, 2);
    key(pk, "year_min"), msgpack_pack_int(pk, 2000);
    key(pk, "year_max"), msgpack_pack_int(pk, 1990);
}
static void b_maturity(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "filters"), msgpack_pack_map(pk, 1);
    key(pk, "max_maturity"), key(pk, "PG-13");
}
static void b_cache(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    key(pk, "v"), msgpack_pack_int(pk, 1);
    key(pk, "cache"), msgpack_pack_int(pk, 1);
}

static void test_request_validation(void **s)
{
    expect_request_error(b_k0, "k: 0 is outside 1..1000");
    expect_request_error(b_k_big, "k: 1001 is outside 1..1000");
    expect_request_error(b_no_v, "v: missing");
    expect_request_error(b_strategy, "strategy: \"fastest\" is not one of");
    expect_request_error(b_emb, "embedding: 6 bytes is not a multiple of 4");
    expect_request_error(b_emb_nan, "embedding: value 1 is not finite");
    expect_request_error(b_seed, "seed_ids[0]: must be 1-128 of");
    expect_request_error(b_filters, "filters: expected a map, got array");
    expect_request_error(b_years, "filters.year_min: 2000 is after year_max 1990");
    expect_request_error(b_maturity, "filters.max_maturity: expected an integer, got string");
    expect_request_error(b_cache, "cache: expected a boolean, got integer");
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_request_full),
        cmocka_unit_test(test_golden_request_minimal),
        cmocka_unit_test(test_golden_replies),
        cmocka_unit_test(test_request_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
