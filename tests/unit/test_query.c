/*
 * Unit tests of the search side without servers: the wire contract (golden
 * examples from Python's msgpack decode and re-encode byte for byte, every
 * validation rule names its field), planner decisions, fusion arithmetic,
 * hard filters and policy scores, the Milvus filter a search sends, and the
 * cache key's normalisation.
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
#include "planner.h"
#include "qcache.h"
#include "query/query.h"
#include "rank.h"
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

/* ---------- planner ---------- */

static hsc_plan_input base_input(void)
{
    return (hsc_plan_input){.requested = HSC_STRATEGY_AUTO,
                            .k = 10,
                            .remaining_ms = 200,
                            .vector_p99 = 20,
                            .graph_p99 = 30,
                            .policy_p99 = 2};
}

static void test_planner_features(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.has_embedding = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_true(p.use_vector && !p.use_graph);

    in = base_input();
    in.has_seeds = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);

    in = base_input();
    in.has_user = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);
    assert_non_null(strstr(p.why, "history"));

    in = base_input();
    in.has_embedding = in.has_user = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    assert_true(p.use_vector && p.use_graph && !p.sequential);
    assert_non_null(strstr(p.why, "32.0 ms fits 200 ms"));

    in.relationships = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL);
    assert_true(p.sequential);

    in = base_input();
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    (void)s;
}

static void test_planner_latency_and_health(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.has_embedding = in.has_seeds = in.relationships = true;
    in.remaining_ms = 40; /* sequential 52 ms does not fit, parallel 32 ms does */
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_PARALLEL);

    in.remaining_ms = 25; /* only the vector side fits */
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_non_null(strstr(p.why, "graph p99 30.0 ms does not fit 25 ms"));

    in.remaining_ms = 200;
    in.graph_down = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_VECTOR_ONLY);
    assert_non_null(strstr(p.why, "graph is failing"));

    in.graph_down = false;
    in.vector_down = true;
    hsc_plan_make(&in, &p);
    assert_int_equal(p.strategy, HSC_STRATEGY_GRAPH_ONLY);
    (void)s;
}

static void test_planner_forced(void **s)
{
    hsc_plan p;
    hsc_plan_input in = base_input();
    in.requested = HSC_STRATEGY_VECTOR_ONLY;
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    assert_non_null(strstr(p.error, "embedding"));
    in.has_embedding = true;
    in.graph_down = true;
    in.requested = HSC_STRATEGY_HYBRID_SEQUENTIAL;
    hsc_plan_make(&in, &p);
    assert_null(p.error);
    assert_int_equal(p.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL); /* forced wins over health */
    in.requested = HSC_STRATEGY_GRAPH_ONLY;
    hsc_plan_make(&in, &p);
    assert_non_null(p.error);
    assert_non_null(strstr(p.error, "seed_ids"));
    (void)s;
}

static void test_latency_window(void **s)
{
    hsc_latency l;
    assert_int_equal(hsc_latency_init(&l, 100), 0);
    assert_true(hsc_latency_p99(&l) == 0);
    for (int i = 1; i <= 100; i++)
        hsc_latency_add(&l, i);
    assert_true(fabs(hsc_latency_p99(&l) - 99) < 1e-9);
    for (int i = 0; i < 100; i++) /* the window slides: old samples leave */
        hsc_latency_add(&l, 5);
    assert_true(hsc_latency_p99(&l) == 5);
    assert_true(l.ewma > 5 && l.ewma < 6);
    hsc_latency_free(&l);
    (void)s;
}

/* ---------- fusion, filters, policy ---------- */

static void test_fusion_weighted(void **s)
{
    hsc_candidate c[3] = {0};
    strcpy(c[0].id, "a"), c[0].in_vector = 1, c[0].vector_raw = 0.9, c[0].vector_rank = 1;
    strcpy(c[1].id, "b"), c[1].in_vector = 1, c[1].vector_raw = 0.5, c[1].vector_rank = 2;
    c[1].in_graph = 1, c[1].graph_raw = 3.0, c[1].graph_rank = 1;
    strcpy(c[2].id, "c"), c[2].in_graph = 1, c[2].graph_raw = 1.0, c[2].graph_rank = 2;
    c[2].policy_score = 0.5;
    hsc_fusion f = {.w_vector = 1.0, .w_graph = 0.6, .w_policy = 0.4};
    hsc_rank_fuse(c, 3, &f);
    /* a: v=1 -> 1.0; b: v=0, g=1 -> 0.6; c: g=1/3 (sums are divided by the largest), p=0.5
     * -> 0.2 + 0.2 */
    assert_string_equal(c[0].id, "a");
    assert_true(fabs(c[0].score - 1.0) < 1e-12);
    assert_string_equal(c[1].id, "b");
    assert_true(fabs(c[1].score - 0.6) < 1e-12);
    assert_true(fabs(c[1].vector_score) < 1e-12 && fabs(c[1].graph_score - 1) < 1e-12);
    assert_string_equal(c[2].id, "c");
    assert_true(fabs(c[2].graph_score - 1.0 / 3) < 1e-12);
    assert_true(fabs(c[2].score - 0.4) < 1e-12);
    (void)s;
}

static void test_fusion_rrf_and_ties(void **s)
{
    hsc_candidate c[3] = {0};
    strcpy(c[0].id, "z"), c[0].in_vector = 1, c[0].vector_raw = 0.8, c[0].vector_rank = 2;
    strcpy(c[1].id, "y"), c[1].in_vector = 1, c[1].vector_raw = 0.9, c[1].vector_rank = 1;
    c[1].in_graph = 1, c[1].graph_raw = 2, c[1].graph_rank = 1;
    strcpy(c[2].id, "x"), c[2].in_vector = 1, c[2].vector_raw = 0.8, c[2].vector_rank = 2;
    hsc_fusion f = {.rrf = 1, .rrf_k = 60, .w_vector = 1, .w_graph = 1, .w_policy = 0};
    hsc_rank_fuse(c, 3, &f);
    assert_string_equal(c[0].id, "y");
    assert_true(fabs(c[0].score - (1.0 / 61 + 1.0 / 61)) < 1e-12);
    /* equal scores: ordered by id, so replies are stable */
    assert_string_equal(c[1].id, "x");
    assert_string_equal(c[2].id, "z");
    assert_true(fabs(c[1].score - 1.0 / 62) < 1e-12);
    (void)s;
}

static void set_attrs(hsc_candidate *c, const char *genre, const char *lang, int year, int mat)
{
    c->has_attrs = true;
    hsc_strlist_push(&c->attrs.genres, genre, strlen(genre));
    c->attrs.language = lang ? strdup(lang) : NULL;
    c->attrs.year = year;
    c->attrs.maturity = mat;
}

static void test_hard_filters(void **s)
{
    hsc_candidate c = {0};
    strcpy(c.id, "t1");
    set_attrs(&c, "horror", "en", 2001, 16);
    hsc_policy p = {0};
    hsc_search_filters f = {0};
    const char *why = NULL;
    assert_true(hsc_rank_allows(&f, &p, &c, &why));
    hsc_strlist_push(&p.excluded_genres, "Horror", 6); /* case does not matter */
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    assert_string_equal(why, "a genre the user excludes");
    hsc_strlist_clear(&p.excluded_genres);
    p.has_max_maturity = true, p.max_maturity = 12;
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    p.max_maturity = 18;
    assert_true(hsc_rank_allows(&f, &p, &c, &why));
    hsc_strlist_push(&p.languages, "fr", 2);
    assert_false(hsc_rank_allows(&f, &p, &c, &why));
    assert_string_equal(why, "not in the user's languages");
    hsc_policy_clear(&p);
    f.has = HSC_FILTER_YEAR_MIN, f.year_min = 2005;
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    f.has = 0;
    hsc_strlist_push(&f.genres, "comedy", 6);
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    assert_string_equal(why, "none of the requested genres");
    hsc_strlist_push(&f.genres, "HORROR", 6);
    assert_true(hsc_rank_allows(&f, NULL, &c, &why));
    hsc_strlist_push(&f.exclude_ids, "t1", 2);
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    /* an unrated title never passes a maturity ceiling */
    hsc_strlist_clear(&f.genres);
    hsc_strlist_clear(&f.exclude_ids);
    c.attrs.maturity = -1;
    f.has = HSC_FILTER_MAX_MATURITY, f.max_maturity = 21;
    assert_false(hsc_rank_allows(&f, NULL, &c, &why));
    hsc_candidate_clear(&c);
    (void)s;
}

static void test_policy_score(void **s)
{
    hsc_policy p = {0};
    hsc_pref prefs[2] = {{0, "science fiction", 3.0}, {1, "space", -1.5}};
    p.prefs = prefs, p.nprefs = 2;
    hsc_title_attrs a = {0};
    hsc_strlist_push(&a.genres, "science fiction", 15);
    /* tanh(Σ matched / (2 × the strongest weight)) */
    assert_true(fabs(hsc_rank_policy_score(&p, &a) - tanh(0.5)) < 1e-12);
    hsc_strlist_push(&a.themes, "space", 5);
    assert_true(fabs(hsc_rank_policy_score(&p, &a) - tanh(0.25)) < 1e-12);
    assert_true(hsc_rank_policy_score(NULL, &a) == 0);
    hsc_strlist_clear(&a.genres);
    hsc_strlist_clear(&a.themes);
    (void)s;
}

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

/* ---------- cache key ---------- */

static uint64_t key_of(const hsc_search_request *r)
{
    hsc_buf b = {0};
    assert_int_equal(hsc_qcache_canonical(r, "scope", &b), 0);
    uint64_t h = hsc_qcache_hash(b.data, b.len);
    hsc_buf_free(&b);
    return h;
}

static void test_cache_key_normalisation(void **s)
{
    float emb[3] = {0.5f, 0.0f, -1.0f};
    hsc_search_request a, b;
    hsc_search_request_init(&a);
    hsc_search_request_init(&b);
    a.embedding = malloc(sizeof(emb)), b.embedding = malloc(sizeof(emb));
    memcpy(a.embedding, emb, sizeof(emb));
    memcpy(b.embedding, emb, sizeof(emb));
    b.embedding[1] = -0.0f; /* -0 and 0 are the same query */
    a.dim = b.dim = 3;
    hsc_strlist_push(&a.seed_ids, "t2", 2), hsc_strlist_push(&a.seed_ids, "t1", 2);
    hsc_strlist_push(&b.seed_ids, "t1", 2), hsc_strlist_push(&b.seed_ids, "t2", 2);
    hsc_strlist_push(&b.seed_ids, "t1", 2); /* duplicates do not matter */
    hsc_strlist_push(&a.filters.genres, "Drama", 5),
        hsc_strlist_push(&a.filters.genres, "comedy", 6);
    hsc_strlist_push(&b.filters.genres, "COMEDY", 6),
        hsc_strlist_push(&b.filters.genres, "drama", 5);
    a.filters.language = strdup("EN"), b.filters.language = strdup("en");
    b.strategy = HSC_STRATEGY_CACHED_ONLY; /* looks up what auto stored */
    assert_true(key_of(&a) == key_of(&b));

    uint64_t base = key_of(&a);
    a.k = 11;
    assert_true(key_of(&a) != base);
    a.k = 10;
    a.user_id = strdup("u1");
    assert_true(key_of(&a) != base);
    free(a.user_id), a.user_id = NULL;
    a.strategy = HSC_STRATEGY_GRAPH_ONLY; /* a forced strategy is its own entry */
    assert_true(key_of(&a) != base);
    a.strategy = HSC_STRATEGY_AUTO;
    a.embedding[0] = 0.5000001f;
    assert_true(key_of(&a) != base);
    a.embedding[0] = 0.5f;
    a.include_relationships = true;
    assert_true(key_of(&a) != base);
    a.include_relationships = false;
    assert_true(key_of(&a) == base);
    hsc_buf x = {0}, y = {0};
    hsc_qcache_canonical(&a, "one", &x);
    hsc_qcache_canonical(&a, "two", &y);
    assert_true(hsc_qcache_hash(x.data, x.len) != hsc_qcache_hash(y.data, y.len));
    hsc_buf_free(&x), hsc_buf_free(&y);

    char k1[128];
    hsc_qcache_key("hsc:q:", 0xabcULL, 7, 3, k1, sizeof(k1));
    assert_string_equal(k1, "hsc:q:0000000000000abc:7:3");
    hsc_search_request_clear(&a);
    hsc_search_request_clear(&b);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_request_full),
        cmocka_unit_test(test_golden_request_minimal),
        cmocka_unit_test(test_golden_replies),
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_planner_features),
        cmocka_unit_test(test_planner_latency_and_health),
        cmocka_unit_test(test_planner_forced),
        cmocka_unit_test(test_latency_window),
        cmocka_unit_test(test_fusion_weighted),
        cmocka_unit_test(test_fusion_rrf_and_ties),
        cmocka_unit_test(test_hard_filters),
        cmocka_unit_test(test_policy_score),
        cmocka_unit_test(test_milvus_filter_of_search),
        cmocka_unit_test(test_cache_key_normalisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
