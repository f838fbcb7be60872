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
        for (uint32_t j = 0; j < e->via.map.size && !rc; j++) {
            const msgpack_object *val = &e->via.map.ptr[j].val;
            int f;
            if ((rc = codec_field_of(&e->via.map.ptr[j].key, REL_KEYS, REL_NKEYS,
                                     "relationships[].", &seen, &f, err)))
                break;
            if (f == REL_TYPE)
                rc = codec_get_str("relationships[].type", val, &rel->type, err);
            else if (f == REL_SEED)
                rc = codec_get_str("relationships[].seed", val, &rel->seed, err);
            else if (f == REL_SCORE && val->type != MSGPACK_OBJECT_NIL)
                rc = codec_get_num("relationships[].score", val, &rel->score, err);
        }
        /* Both are part of the contract, and the encoder writes them unconditionally. */
        if (!rc && !rel->type)
            rc = hsc_err_set(err, HSC_EINVAL, "relationships[].type: missing");
        if (!rc && !rel->seed)
            rc = hsc_err_set(err, HSC_EINVAL, "relationships[].seed: missing");
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

static int decode_result(const msgpack_object *o, hsc_search_result *x, hsc_err *err)
{
    int rc = codec_want("results[]", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        const msgpack_object *val = &o->via.map.ptr[j].val;
        int f;
        if ((rc = codec_field_of(&o->via.map.ptr[j].key, RESULT_KEYS, RES_NKEYS, "results[].",
                                 &seen, &f, err)))
            break;
        switch (f) {
        case RES_ID:
            rc = codec_get_str("results[].id", val, &x->id, err);
            break;
        case RES_SCORE:
            rc = codec_get_num("results[].score", val, &x->score, err);
            break;
        case RES_VECTOR_SCORE:
            rc = codec_get_num("results[].vector_score", val, &x->vector_score, err);
            break;
        case RES_GRAPH_SCORE:
            rc = codec_get_num("results[].graph_score", val, &x->graph_score, err);
            break;
        case RES_POLICY_SCORE:
            rc = codec_get_num("results[].policy_score", val, &x->policy_score, err);
            break;
        case RES_TITLE:
            rc = codec_get_str("results[].title", val, &x->title, err);
            break;
        case RES_GENRES:
            rc = codec_get_strlist("results[].genres", val, &x->genres, err);
            break;
        case RES_RELS:
            rc = decode_rels(val, x, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
    }
    if (!rc && !x->id)
        rc = hsc_err_set(err, HSC_EINVAL, "results[].id: missing");
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

static int decode_timings(const msgpack_object *o, hsc_search_timings *t, hsc_err *err)
{
    int rc = codec_want("timings_us", o, MSGPACK_OBJECT_MAP, "a map", err);
    static const char *const names[] = {"total", "cache", "vector", "graph", "policy", "rank"};
    int64_t *slots[] = {&t->total, &t->cache, &t->vector, &t->graph, &t->policy, &t->rank};
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        int f;
        if (!(rc = codec_field_of(&o->via.map.ptr[j].key, names, 6, "timings_us.", &seen, &f,
                                  err)) &&
            f >= 0)
            rc = codec_get_int("timings_us", &o->via.map.ptr[j].val, 0, INT64_MAX, slots[f], err);
    }
    return rc;
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

static int decode_reply_error(const msgpack_object *o, hsc_search_reply *r, hsc_err *err)
{
    static const char *const names[] = {"code", "message"};
    int rc = codec_want("error", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        int f;
        if ((rc = codec_field_of(&o->via.map.ptr[j].key, names, 2, "error.", &seen, &f, err)))
            break;
        if (f == 0)
            rc = codec_get_str("error.code", &o->via.map.ptr[j].val, &r->error_code, err);
        else if (f == 1)
            rc = codec_get_str("error.message", &o->via.map.ptr[j].val, &r->error_message, err);
    }
    return rc;
}

static int decode_reply_fields(const msgpack_object_map *m, void *out, hsc_err *err)
{
    hsc_search_reply *r = out;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = codec_field_of(&m->ptr[i].key, REPLY_KEYS, Y_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        if (o->type == MSGPACK_OBJECT_NIL) {
            seen &= f >= 0 ? ~(1u << f) : ~0u; /* nil is absent: "v": nil is still missing */
            continue;
        }
        switch (f) {
        case Y_V:
            if (!(rc = codec_get_int("v", o, 1, 1000, &n, err)))
                r->v = (int)n;
            break;
        case Y_CORRELATION_ID:
            rc = codec_get_str("correlation_id", o, &r->correlation_id, err);
            break;
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
            rc = decode_reply_error(o, r, err);
            break;
        case Y_STRATEGY: {
            char *s = NULL;
            if (!(rc = codec_get_str("strategy", o, &s, err)) &&
                hsc_strategy_parse(s, &r->strategy))
                rc = hsc_err_set(err, HSC_EINVAL, "strategy: unknown \"%.40s\"", s);
            free(s);
            break;
        }
        case Y_PLAN:
            rc = codec_get_str("plan", o, &r->plan, err);
            break;
        case Y_CACHE_HIT:
            rc = codec_get_bool("cache_hit", o, &r->cache_hit, err);
            break;
        case Y_DEGRADED:
            rc = codec_get_strlist("degraded", o, &r->degraded, err);
            break;
        case Y_RESULTS:
            rc = hsc_codec_unpack_results(o, &r->results, &r->nresults, err);
            break;
        case Y_TIMINGS:
            rc = decode_timings(o, &r->timings_us, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << Y_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!r->correlation_id)
        return hsc_err_set(err, HSC_EINVAL, "correlation_id: missing");
    if (!(seen & 1u << Y_STATUS))
        return hsc_err_set(err, HSC_EINVAL, "status: missing");
    return HSC_OK;
}

int hsc_codec_decode_search_reply(const void *buf, size_t len, hsc_search_reply *r, hsc_err *err)
{
    memset(r, 0, sizeof(*r));
    int rc = codec_decode_map(buf, len, "search reply", decode_reply_fields, r, err);
    if (rc)
        hsc_search_reply_clear(r);
    return rc;
}
