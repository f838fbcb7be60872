/*
 * Encodes and decodes SearchReply and its results array, which the query
 * cache also stores on its own (hsc_codec_pack_results / unpack_results).
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hsc_search_result_clear(hsc_search_result *r)
{
    free(r->id);
    free(r->title);
    hsc_strlist_clear(&r->genres);
    for (size_t i = 0; i < r->nrels; i++) {
        free(r->rels[i].type);
        free(r->rels[i].seed);
    }
    free(r->rels);
    memset(r, 0, sizeof(*r));
}

void hsc_search_reply_clear(hsc_search_reply *r)
{
    free(r->correlation_id);
    free(r->error_code);
    free(r->error_message);
    free(r->plan);
    hsc_strlist_clear(&r->degraded);
    for (size_t i = 0; i < r->nresults; i++)
        hsc_search_result_clear(&r->results[i]);
    free(r->results);
    memset(r, 0, sizeof(*r));
}
/* Packs results only (the part the cache stores). */
void hsc_codec_pack_results(void *packer, const hsc_search_result *res, size_t n)
{
    msgpack_packer *pk = packer;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const hsc_search_result *x = &res[i];
        msgpack_pack_map(pk, 7 + x->has_rels);
        codec_pack_str(pk, "id", x->id);
        codec_pack_double(pk, "score", x->score);
        codec_pack_double(pk, "vector_score", x->vector_score);
        codec_pack_double(pk, "graph_score", x->graph_score);
        codec_pack_double(pk, "policy_score", x->policy_score);
        codec_pack_str(pk, "title", x->title ? x->title : "");
        codec_pack_list(pk, "genres", &x->genres);
        if (x->has_rels) {
            codec_pack_key(pk, "relationships");
            msgpack_pack_array(pk, x->nrels);
            for (size_t j = 0; j < x->nrels; j++) {
                msgpack_pack_map(pk, 3);
                codec_pack_str(pk, "type", x->rels[j].type);
                codec_pack_str(pk, "seed", x->rels[j].seed);
                codec_pack_double(pk, "score", x->rels[j].score);
            }
        }
    }
}

int hsc_codec_encode_search_reply(const hsc_search_reply *r, char **out, size_t *len, hsc_err *err)
{
    if (!r->correlation_id)
        return hsc_err_set(err, HSC_EINVAL, "correlation_id: missing");
    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, 8 + !r->ok + !!r->plan);
    codec_pack_int(&o.pk, "v", r->v ? r->v : HSC_SCHEMA_VERSION);
    codec_pack_str(&o.pk, "correlation_id", r->correlation_id);
    codec_pack_str(&o.pk, "status", r->ok ? "ok" : "error");
    if (!r->ok) {
        codec_pack_key(&o.pk, "error");
        msgpack_pack_map(&o.pk, 2);
        codec_pack_str(&o.pk, "code", r->error_code ? r->error_code : "internal");
        codec_pack_str(&o.pk, "message", r->error_message ? r->error_message : "");
    }
    codec_pack_str(&o.pk, "strategy", hsc_strategy_name(r->strategy));
    if (r->plan)
        codec_pack_str(&o.pk, "plan", r->plan);
    codec_pack_bool(&o.pk, "cache_hit", r->cache_hit);
    codec_pack_list(&o.pk, "degraded", &r->degraded);
    codec_pack_key(&o.pk, "results");
    hsc_codec_pack_results(&o.pk, r->results, r->nresults);
    codec_pack_key(&o.pk, "timings_us");
    msgpack_pack_map(&o.pk, 6);
    codec_pack_int(&o.pk, "total", r->timings_us.total);
    codec_pack_int(&o.pk, "cache", r->timings_us.cache);
    codec_pack_int(&o.pk, "vector", r->timings_us.vector);
    codec_pack_int(&o.pk, "graph", r->timings_us.graph);
    codec_pack_int(&o.pk, "policy", r->timings_us.policy);
    codec_pack_int(&o.pk, "rank", r->timings_us.rank);
    return codec_finish(&o, out, len, err);
}

enum { REL_TYPE, REL_SEED, REL_SCORE, REL_NKEYS };
static const char *const REL_KEYS[REL_NKEYS] = {"type", "seed", "score"};
static const char *const REL_NAMES[REL_NKEYS] = {"relationships[].type", "relationships[].seed",
                                                 "relationships[].score"};
static const struct codec_slot REL_SLOTS[REL_NKEYS] = {
    [REL_TYPE] = CODEC_SLOT(CODEC_STR, hsc_search_relationship, type),
    [REL_SEED] = CODEC_SLOT(CODEC_STR, hsc_search_relationship, seed),
    [REL_SCORE] = CODEC_SLOT(CODEC_NUM, hsc_search_relationship, score),
};
static const struct codec_map REL_MAP = {
    .keys = REL_KEYS,
    .prefix = "relationships[].",
    .names = REL_NAMES,
    .nkeys = REL_NKEYS,
    .nil_absent = CODEC_BIT(REL_SCORE),
    /* Both are part of the contract, and the encoder writes them unconditionally. */
    .required = CODEC_BIT(REL_TYPE) | CODEC_BIT(REL_SEED),
    .slots = REL_SLOTS,
};

static int decode_rels(const msgpack_object *o, hsc_search_result *x, hsc_err *err)
{
    int rc = codec_want("relationships", o, MSGPACK_OBJECT_ARRAY, "an array", err);
    if (rc)
        return rc;
    x->has_rels = true;
    x->rels = calloc(o->via.array.size ? o->via.array.size : 1, sizeof(*x->rels));
    if (!x->rels)
        return hsc_err_set(err, HSC_ENOMEM, "relationships: out of memory");
    for (uint32_t i = 0; i < o->via.array.size && !rc; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if ((rc = codec_want("relationships[]", e, MSGPACK_OBJECT_MAP, "a map", err)))
            break;
        hsc_search_relationship *rel = &x->rels[x->nrels++];
        uint32_t seen = 0;
        rc = codec_read_map(&REL_MAP, &e->via.map, NULL, rel, &seen, err);
    }
    return rc;
}

enum {
    RES_ID,
    RES_SCORE,
    RES_VECTOR_SCORE,
    RES_GRAPH_SCORE,
    RES_POLICY_SCORE,
    RES_TITLE,
    RES_GENRES,
    RES_RELS,
    RES_NKEYS
};
static const char *const RESULT_KEYS[RES_NKEYS] = {"id",          "score",        "vector_score",
                                                   "graph_score", "policy_score", "title",
                                                   "genres",      "relationships"};
static const char *const RESULT_NAMES[RES_NKEYS] = {
    "results[].id",          "results[].score",        "results[].vector_score",
    "results[].graph_score", "results[].policy_score", "results[].title",
    "results[].genres",      "results[].relationships"};
#define SLOT(kind, member) CODEC_SLOT(kind, hsc_search_result, member)
static const struct codec_slot RESULT_SLOTS[RES_NKEYS] = {
    [RES_ID] = SLOT(CODEC_STR, id),
    [RES_SCORE] = SLOT(CODEC_NUM, score),
    [RES_VECTOR_SCORE] = SLOT(CODEC_NUM, vector_score),
    [RES_GRAPH_SCORE] = SLOT(CODEC_NUM, graph_score),
    [RES_POLICY_SCORE] = SLOT(CODEC_NUM, policy_score),
    [RES_TITLE] = SLOT(CODEC_STR, title),
    [RES_GENRES] = SLOT(CODEC_STRLIST, genres),
};
#undef SLOT
static const struct codec_map RESULT_MAP = {
    .keys = RESULT_KEYS,
    .prefix = "results[].",
    .names = RESULT_NAMES,
    .nkeys = RES_NKEYS,
    .required = CODEC_BIT(RES_ID),
    .slots = RESULT_SLOTS,
};

/* The one field with a rule of its own: the relationships array. */
static int result_field(void *out, int f, const msgpack_object *val, hsc_err *err)
{
    return f == RES_RELS ? decode_rels(val, out, err) : HSC_OK;
}

static int decode_result(const msgpack_object *o, hsc_search_result *x, hsc_err *err)
{
    int rc = codec_want("results[]", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    if (!rc)
        rc = codec_read_map(&RESULT_MAP, &o->via.map, result_field, x, &seen, err);
    return rc;
}

int hsc_codec_unpack_results(const void *obj, hsc_search_result **out, size_t *n, hsc_err *err)
{
    const msgpack_object *o = obj;
    *out = NULL;
    *n = 0;
    int rc = codec_want("results", o, MSGPACK_OBJECT_ARRAY, "an array", err);
    if (rc)
        return rc;
    if (o->via.array.size > HSC_CODEC_MAX_ARRAY_LEN)
        return hsc_err_set(err, HSC_EINVAL, "results: array of %u entries exceeds %d",
                           o->via.array.size, HSC_CODEC_MAX_ARRAY_LEN);
    hsc_search_result *v = calloc(o->via.array.size ? o->via.array.size : 1, sizeof(*v));
    if (!v)
        return hsc_err_set(err, HSC_ENOMEM, "results: out of memory");
    size_t cnt = 0;
    for (uint32_t i = 0; i < o->via.array.size && !rc; i++)
        rc = decode_result(&o->via.array.ptr[i], &v[cnt++], err);
    *out = v;
    *n = cnt;
    return rc;
}

static const char *const TIMING_KEYS[] = {"total", "cache", "vector", "graph", "policy", "rank"};
/* every timing's error names the map, as it always has */
static const char *const TIMING_NAMES[] = {"timings_us", "timings_us", "timings_us",
                                           "timings_us", "timings_us", "timings_us"};
#define SLOT(member) CODEC_SLOT_INT(CODEC_INT64, hsc_search_timings, member, 0, INT64_MAX)
static const struct codec_slot TIMING_SLOTS[] = {SLOT(total), SLOT(cache),  SLOT(vector),
                                                 SLOT(graph), SLOT(policy), SLOT(rank)};
#undef SLOT
static const struct codec_map TIMING_MAP = {
    .keys = TIMING_KEYS,
    .prefix = "timings_us.",
    .names = TIMING_NAMES,
    .nkeys = 6,
    .slots = TIMING_SLOTS,
};

static const char *const ERROR_KEYS[] = {"code", "message"};
static const char *const ERROR_NAMES[] = {"error.code", "error.message"};
static const struct codec_slot ERROR_SLOTS[] = {
    CODEC_SLOT(CODEC_STR, hsc_search_reply, error_code),
    CODEC_SLOT(CODEC_STR, hsc_search_reply, error_message),
};
static const struct codec_map ERROR_MAP = {
    .keys = ERROR_KEYS,
    .prefix = "error.",
    .names = ERROR_NAMES,
    .nkeys = 2,
    .slots = ERROR_SLOTS,
};

/* A nested map read by slots alone (timings_us, error), into out. */
static int decode_submap(const struct codec_map *spec, const char *name, const msgpack_object *o,
                         void *out, hsc_err *err)
{
    uint32_t seen = 0;
    int rc = codec_want(name, o, MSGPACK_OBJECT_MAP, "a map", err);
    return rc ? rc : codec_read_map(spec, &o->via.map, NULL, out, &seen, err);
}

enum {
    Y_V,
    Y_CORRELATION_ID,
    Y_STATUS,
    Y_ERROR,
    Y_STRATEGY,
    Y_PLAN,
    Y_CACHE_HIT,
    Y_DEGRADED,
    Y_RESULTS,
    Y_TIMINGS,
    Y_NKEYS
};
static const char *const REPLY_KEYS[Y_NKEYS] = {
    "v",    "correlation_id", "status",   "error",   "strategy",
    "plan", "cache_hit",      "degraded", "results", "timings_us"};

static const struct codec_slot REPLY_SLOTS[Y_NKEYS] = {
    [Y_V] = CODEC_SLOT_INT(CODEC_INT32, hsc_search_reply, v, 1, 1000),
    [Y_CORRELATION_ID] = CODEC_SLOT(CODEC_STR, hsc_search_reply, correlation_id),
    [Y_PLAN] = CODEC_SLOT(CODEC_STR, hsc_search_reply, plan),
    [Y_CACHE_HIT] = CODEC_SLOT(CODEC_BOOL, hsc_search_reply, cache_hit),
    [Y_DEGRADED] = CODEC_SLOT(CODEC_STRLIST, hsc_search_reply, degraded),
};

/* nil is absent for every key: "v": nil is still missing */
static const struct codec_map REPLY_MAP = {
    .keys = REPLY_KEYS,
    .nkeys = Y_NKEYS,
    .nil_absent = ~0u,
    .nil_unseen = true,
    .required = CODEC_BIT(Y_V) | CODEC_BIT(Y_CORRELATION_ID) | CODEC_BIT(Y_STATUS),
    .slots = REPLY_SLOTS,
};

/* The fields with a rule of their own: names, nested maps and the results. */
static int reply_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    hsc_search_reply *r = out;
    int rc = HSC_OK;
    switch (f) {
    case Y_STATUS: {
        char *s = NULL;
        if (!(rc = codec_get_str("status", o, &s, err))) {
            if (strcmp(s, "ok") && strcmp(s, "error"))
                rc = hsc_err_set(err, HSC_EINVAL, "status: must be \"ok\" or \"error\"");
            r->ok = !strcmp(s, "ok");
        }
        free(s);
        break;
    }
    case Y_ERROR:
        rc = decode_submap(&ERROR_MAP, "error", o, r, err);
        break;
    case Y_STRATEGY:
        rc = codec_get_strategy(o, &r->strategy, err);
        break;
    case Y_RESULTS:
        rc = hsc_codec_unpack_results(o, &r->results, &r->nresults, err);
        break;
    case Y_TIMINGS:
        rc = decode_submap(&TIMING_MAP, "timings_us", o, &r->timings_us, err);
        break;
    }
    return rc;
}

CODEC_MESSAGE(REPLY, "search reply", &REPLY_MAP, reply_field, NULL, hsc_search_reply_clear);

int hsc_codec_decode_search_reply(const void *buf, size_t len, hsc_search_reply *r, hsc_err *err)
{
    memset(r, 0, sizeof(*r));
    return codec_decode(&REPLY, buf, len, r, err);
}
