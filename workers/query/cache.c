/*
 * The Redis side of a search: one MGET of the catalogue epoch and the user's
 * policy version, the GET of the cached reply computed under those versions
 * (keys and the canonical form come from qcache.c), and storing a fresh
 * reply under them, listed per user so that erasing a user finds its entries.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "log.h"
#include "qcache.h"
#include "search_internal.h"

static void on_cache_set(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct qreq *q = arg;
    if (err && err->code != HSC_ECANCELED)
        hsc_log_warn("cache write failed", "correlation_id", q->corr, "error", err->msg, NULL);
    (void)reply;
    query_unref(q);
}

/* Stores the results under the key of the versions they were computed with. */
void query_cache_store(struct qreq *q, const hsc_search_result *res, size_t n)
{
    struct query_engine *e = q->e;
    if (!q->req->cache || q->epoch < 0 || q->degraded.n || !e->redis)
        return;
    long long ver = q->req->user_id ? (q->policy_state == P_DONE ? q->policy.version : -1) : 0;
    if (ver < 0)
        return;
    char key[192], ttl[24];
    hsc_qcache_key(e->cache_prefix, q->hash, q->epoch, ver, key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%d", q->req->user_id ? e->ttl_personal_s : e->ttl_s);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_bin(&pk, q->canon.len);
    msgpack_pack_bin_body(&pk, q->canon.data, q->canon.len);
    const char *sn = hsc_strategy_name(q->plan.strategy);
    msgpack_pack_str(&pk, strlen(sn));
    msgpack_pack_str_body(&pk, sn, strlen(sn));
    msgpack_pack_str(&pk, strlen(q->plan.why));
    msgpack_pack_str_body(&pk, q->plan.why, strlen(q->plan.why));
    hsc_codec_pack_results(&pk, res, n);
    const char *argv[5] = {"SET", key, sb.data, "EX", ttl};
    size_t lens[5] = {3, strlen(key), sb.size, 2, strlen(ttl)};
    hsc_err err = {0};
    q->refs++;
    if (hsc_redis_command(e->redis, on_cache_set, q, 5, argv, lens, &err))
        q->refs--;
    msgpack_sbuffer_destroy(&sb);
    if (q->req->user_id) {
        /* The user's entries are listed in cache_prefix + "u:" + user, so erasing the user
         * (hsc-ingest, a policy event) can delete them without a scan. */
        static const char INDEX_LUA[] = "redis.call('SADD', KEYS[1], ARGV[1]) "
                                        "redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1";
        char ikey[320];
        snprintf(ikey, sizeof(ikey), "%su:%s", e->cache_prefix, q->req->user_id);
        const char *iargv[6] = {"EVAL", INDEX_LUA, "1", ikey, key, ttl};
        size_t ilens[6] = {4, strlen(INDEX_LUA), 1, strlen(ikey), strlen(key), strlen(ttl)};
        q->refs++;
        if (hsc_redis_command(e->redis, on_cache_set, q, 6, iargv, ilens, &err))
            q->refs--;
    }
}

static void reply_from_cache(struct qreq *q, const char *buf, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    /* Redis is outside the process: the same bounds as any message before msgpack-c
     * allocates (an entry over them is a miss). */
    hsc_err bounds = {0};
    int ok = hsc_codec_check_bounds(buf, len, "cache entry", &bounds) == HSC_OK &&
             msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
             u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 4;
    const msgpack_object *a = ok ? u.data.via.array.ptr : NULL;
    ok = ok && a[0].type == MSGPACK_OBJECT_BIN && a[0].via.bin.size == q->canon.len &&
         !memcmp(a[0].via.bin.ptr, q->canon.data, q->canon.len) &&
         a[1].type == MSGPACK_OBJECT_STR && a[2].type == MSGPACK_OBJECT_STR;
    hsc_search_result *res = NULL;
    size_t n = 0;
    hsc_err err = {0};
    if (ok && hsc_codec_unpack_results(&a[3], &res, &n, &err) == HSC_OK) {
        char plan[400];
        snprintf(plan, sizeof(plan), "cache hit; computed by %.*s: %.*s", (int)a[1].via.str.size,
                 a[1].via.str.ptr, (int)a[2].via.str.size, a[2].via.str.ptr);
        q->e->stats.cache_hits++;
        hsc_search_reply r = {0};
        r.ok = true;
        r.strategy = HSC_STRATEGY_CACHED_ONLY;
        r.plan = plan;
        r.cache_hit = true;
        r.results = res;
        r.nresults = n;
        q->plan.strategy = HSC_STRATEGY_CACHED_ONLY;
        query_finish(q, &r);
    } else {
        ok = 0;
    }
    for (size_t i = 0; res && i < n; i++)
        hsc_search_result_clear(&res[i]);
    free(res);
    msgpack_unpacked_destroy(&u);
    if (!ok) {
        q->e->stats.cache_misses++; /* a collision or a foreign entry: compute afresh */
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            query_reply_error(q, "cache_miss", "no cached result for this request");
        else
            query_run_plan(q);
    }
}

static void on_cache_get(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct qreq *q = arg;
    if (q->replied) {
        query_unref(q);
        return;
    }
    q->t.cache += query_since_us(q->started_cache);
    query_booked(q->e, &q->e->lat_cache, "redis", "get", query_since_us(q->started_cache) / 1000.0);
    if (err) {
        query_add_degraded(q, "cache");
        q->epoch = -1;
    }
    if (reply && reply->type == REDIS_REPLY_STRING) {
        reply_from_cache(q, reply->str, reply->len);
    } else {
        q->e->stats.cache_misses++;
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            query_reply_error(q, err ? "cache_unavailable" : "cache_miss", "%s",
                              err ? err->msg : "no cached result for this request");
        else
            query_run_plan(q);
    }
    query_unref(q);
}

static long long reply_int(const redisReply *r)
{
    long long v;
    if (r && r->type == REDIS_REPLY_STRING && !hsc_parse_ll(r->str, &v))
        return v;
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return -1;
}

static void on_versions(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    if (q->replied) {
        query_unref(q);
        return;
    }
    q->t.cache += query_since_us(q->started_cache);
    query_booked(e, &e->lat_cache, "redis", "mget", query_since_us(q->started_cache) / 1000.0);
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        if (q->req->cache)
            query_add_degraded(q, "cache");
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            query_reply_error(q, "cache_unavailable", "redis: %s", err ? err->msg : "bad reply");
        else
            query_run_plan(q);
        query_unref(q);
        return;
    }
    q->epoch = reply_int(reply->element[0]);
    if (q->epoch < 0)
        q->epoch = 0; /* nothing indexed yet */
    q->polver = q->req->user_id ? (reply->elements > 1 ? reply_int(reply->element[1]) : -1) : 0;
    if (!q->req->cache) {
        query_run_plan(q);
        query_unref(q);
        return;
    }
    q->phase = PH_CACHE;
    if (hsc_qcache_canonical(q->req, e->scope, &q->canon)) {
        query_reply_error(q, "internal", "out of memory");
        query_unref(q);
        return;
    }
    q->hash = hsc_qcache_hash(q->canon.data, q->canon.len);
    if (q->polver < 0) {
        /* no known version: nothing can be cached under it yet */
        e->stats.cache_misses++;
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            query_reply_error(q, "cache_miss", "no cached result for this request");
        else
            query_run_plan(q);
        query_unref(q);
        return;
    }
    char key[192];
    hsc_qcache_key(e->cache_prefix, q->hash, q->epoch, q->polver, key, sizeof(key));
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    hsc_err e2 = {0};
    q->started_cache = hsc_mono_us();
    if (hsc_redis_command(e->redis, on_cache_get, q, 2, argv, lens, &e2) == 0)
        return; /* the reference passes to on_cache_get */
    query_add_degraded(q, "cache");
    q->epoch = -1;
    query_run_plan(q);
    query_unref(q);
}

void query_start_versions(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_search_request *own = q->req;
    if (e->redis && (own->cache || own->user_id)) {
        char *pkey = own->user_id ? hsc_strcat2(e->policy_prefix, own->user_id) : NULL;
        const char *argv[3] = {"MGET", e->epoch_key, pkey};
        size_t lens[3] = {4, strlen(e->epoch_key), pkey ? strlen(pkey) : 0};
        hsc_err err = {0};
        q->started_cache = hsc_mono_us();
        int rc = hsc_redis_command(e->redis, on_versions, q, pkey ? 3 : 2, argv, lens, &err);
        free(pkey);
        if (rc == 0)
            return; /* the first reference passes to on_versions */
        if (own->cache)
            query_add_degraded(q, "cache");
    }
    if (own->strategy == HSC_STRATEGY_CACHED_ONLY)
        query_reply_error(q, "cache_unavailable", "redis is not reachable");
    else
        query_run_plan(q);
    query_unref(q);
}
