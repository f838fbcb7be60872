/*
 * The search as hsc-query receives and answers it, without servers: the wire
 * contract (golden examples from Python's msgpack decode and re-encode byte
 * for byte, every validation rule names its field), and the engine's answers
 * that need no server: every search is answered once, after the call returns,
 * with the error a caller can act on. The planner, ranking,
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "query.h"
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
    roundtrip_reply("search_reply_overloaded", &r);
    assert_false(r.ok);
    assert_string_equal(r.error_code, HSC_SEARCH_ERROR_OVERLOADED);
    assert_int_equal(r.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
    assert_null(r.plan);
    assert_int_equal(r.nresults, 0);
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

/* A reply names a bad strategy the way a request does (one reader for both). */
static void test_reply_strategy_error(void **s)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    b_strategy(&pk);
    hsc_search_reply r;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_decode_search_reply(sb.data, sb.size, &r, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "strategy: \"fastest\" is not one of auto, vector_only, "
                                 "graph_only, hybrid_parallel, hybrid_sequential, cached_only");
    msgpack_sbuffer_destroy(&sb);
    (void)s;
}

/* ---------- the engine, with no server reachable ---------- */

/* One search's outcome as its caller sees it. */
struct outcome {
    int calls;
    bool ok;
    char code[64], message[256];
};

static void on_done(void *arg, hsc_search_reply *r)
{
    struct outcome *o = arg;
    o->calls++;
    o->ok = r->ok;
    snprintf(o->code, sizeof(o->code), "%s", r->error_code ? r->error_code : "");
    snprintf(o->message, sizeof(o->message), "%s", r->error_message ? r->error_message : "");
}

/* Starts e with every backend refusing connections (port 1 on loopback); key=value if key. */
static void engine_start(struct query_engine *e, const char *key, const char *value)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_non_null(cfg);
    if (key)
        assert_int_equal(hsc_config_set(cfg, key, value, &err), 0);
    assert_int_equal(hsc_config_set(cfg, "pg.url", "postgresql://127.0.0.1:1/hsc", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "redis.url", "redis://127.0.0.1:1/0", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "milvus.url", "http://127.0.0.1:1", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "neo4j.url", "http://127.0.0.1:1", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "milvus.dimension", "4", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "query.pg_connections", "1", &err), 0);
    assert_int_equal(query_engine_init(e, ev_loop_new(EVFLAG_AUTO), cfg, &err), 0);
    hsc_config_free(cfg);
}

static int engine_setup(void **state)
{
    static struct query_engine e;
    engine_start(&e, NULL, NULL);
    *state = &e;
    return 0;
}

static int engine_teardown(void **state)
{
    struct query_engine *e = *state;
    struct ev_loop *loop = e->loop;
    query_engine_destroy(e);
    ev_loop_destroy(loop);
    return 0;
}

/* Runs req; asserts the reply came later than the call, exactly once. */
static void search_now(struct query_engine *e, hsc_search_request *req, int64_t deadline_ms,
                       struct outcome *o)
{
    hsc_err err = {0};
    memset(o, 0, sizeof(*o));
    assert_int_equal(query_engine_search(e, req, "unit", deadline_ms, -1, on_done, o, &err), 0);
    assert_int_equal(o->calls, 0); /* never before the call returns */
    int64_t end = hsc_now_ms() + 10000;
    while (!o->calls && hsc_now_ms() < end)
        ev_run(e->loop, EVRUN_ONCE);
    /* a few more turns: nothing else arrives for this search */
    for (int i = 0; i < 5; i++)
        ev_run(e->loop, EVRUN_NOWAIT);
    assert_int_equal(o->calls, 1);
}

static void test_expired_search_answered_later(void **state)
{
    struct query_engine *e = *state;
    hsc_search_request req;
    hsc_search_request_init(&req);
    struct outcome o;
    search_now(e, &req, hsc_now_ms() - 1, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "deadline");
    assert_non_null(strstr(o.message, "before the search started"));
}

static void test_wrong_dimension_is_a_bad_request(void **state)
{
    struct query_engine *e = *state;
    hsc_search_request req;
    hsc_search_request_init(&req);
    req.dim = 3;
    req.embedding = calloc(3, sizeof(float));
    struct outcome o;
    search_now(e, &req, hsc_now_ms() + 5000, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "bad_request");
    assert_string_equal(o.message, "embedding: dimension 3, the catalogue's is 4");
}

static void test_nothing_to_search_from_is_a_bad_request(void **state)
{
    struct query_engine *e = *state;
    hsc_search_request req;
    hsc_search_request_init(&req);
    req.cache = false;
    struct outcome o;
    search_now(e, &req, hsc_now_ms() + 5000, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "bad_request");
}

static void test_cached_only_without_redis(void **state)
{
    struct query_engine *e = *state;
    hsc_search_request req;
    hsc_search_request_init(&req);
    req.strategy = HSC_STRATEGY_CACHED_ONLY;
    struct outcome o;
    search_now(e, &req, hsc_now_ms() + 5000, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "cache_unavailable");
}

static void test_no_backend_answers(void **state)
{
    struct query_engine *e = *state;
    hsc_search_request req;
    hsc_search_request_init(&req);
    hsc_strlist_push(&req.seed_ids, "t1", 2);
    struct outcome o;
    search_now(e, &req, hsc_now_ms() + 5000, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "no_backend");
    assert_non_null(strstr(o.message, "neo4j"));
    assert_true(e->stats.requests >= 1 && e->inflight == 0);
}

/* Two graph searches at once on an engine that may run max_inflight of them. */
static void two_searches(struct query_engine *e, struct outcome *oa, struct outcome *ob)
{
    hsc_search_request a, b;
    hsc_search_request_init(&a);
    hsc_search_request_init(&b);
    hsc_strlist_push(&a.seed_ids, "t1", 2);
    hsc_strlist_push(&b.seed_ids, "t2", 2);
    hsc_err err = {0};
    memset(oa, 0, sizeof(*oa));
    memset(ob, 0, sizeof(*ob));
    assert_int_equal(query_engine_search(e, &a, "a", hsc_now_ms() + 5000, -1, on_done, oa, &err),
                     0);
    assert_int_equal(query_engine_search(e, &b, "b", hsc_now_ms() + 5000, 250, on_done, ob, &err),
                     0);
    assert_int_equal(oa->calls + ob->calls, 0); /* a refusal too comes later, from the loop */
    int64_t end = hsc_now_ms() + 10000;
    while ((!oa->calls || !ob->calls) && hsc_now_ms() < end)
        ev_run(e->loop, EVRUN_ONCE);
    assert_int_equal(oa->calls, 1);
    assert_int_equal(ob->calls, 1);
}

static void test_overloaded_answered_later(void **state)
{
    static struct query_engine e;
    struct outcome oa, ob;
    engine_start(&e, "query.max_inflight", "1"); /* so the in-flight limit is 1 */
    two_searches(&e, &oa, &ob);
    assert_string_equal(oa.code, "no_backend");
    assert_false(ob.ok);
    assert_string_equal(ob.code, HSC_SEARCH_ERROR_OVERLOADED);
    assert_non_null(strstr(ob.message, "in-flight limit (1 searches"));
    assert_non_null(strstr(ob.message, "waited 250 ms in Kafka"));
    assert_true(e.stats.overloaded == 1 && e.stats.errors == 1 && e.admit.running == 0);
    struct ev_loop *loop = e.loop;
    query_engine_destroy(&e);
    ev_loop_destroy(loop);
    /* the switch: admission off, both run */
    engine_start(&e, "query.admit", "false");
    e.admit.limit = 1; /* would refuse the second if admission were on */
    two_searches(&e, &oa, &ob);
    assert_string_equal(oa.code, "no_backend");
    assert_string_equal(ob.code, "no_backend");
    assert_true(e.stats.overloaded == 0 && e.admit.running == 0);
    loop = e.loop;
    query_engine_destroy(&e);
    ev_loop_destroy(loop);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_request_full),
        cmocka_unit_test(test_golden_request_minimal),
        cmocka_unit_test(test_golden_replies),
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_reply_strategy_error),
        cmocka_unit_test(test_overloaded_answered_later),
    };
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_expired_search_answered_later),
        cmocka_unit_test(test_wrong_dimension_is_a_bad_request),
        cmocka_unit_test(test_nothing_to_search_from_is_a_bad_request),
        cmocka_unit_test(test_cached_only_without_redis),
        cmocka_unit_test(test_no_backend_answers),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(engine, engine_setup, engine_teardown);
}
