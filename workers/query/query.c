/*
 * One search, start to finish, as a small state machine on the loop:
 *
 *   versions  Redis: catalogue epoch and the user's policy version (one MGET)
 *   cache     Redis: GET of the result key; a hit replies here
 *   backends  Milvus search and Neo4j candidates concurrently (or Neo4j
 *             enrichment after Milvus, for HybridSequential), and the
 *             user's policy from PostgreSQL unless a cached copy is current
 *   attrs     PostgreSQL: catalogue rows of the candidates, so hard filters
 *             are checked on canonical data and deleted titles drop out
 *   rank      filter, policy score, fusion, top k; relationships if asked
 *
 * Two timers bound it: backends are cut (and named in `degraded`) when the
 * attrs stage would otherwise miss the deadline, and the reply goes out at
 * the deadline whatever is still running. Every backend callback holds a
 * reference, so a cut call that completes later finds its request alive and
 * only records its latency.
 */
#include "query.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hsc/codec.h"
#include "log.h"
#include "qcache.h"
#include "util.h"

const char QUERY_POLICY_SQL[] =
    "SELECT json_build_object(\n"
    "  'version', coalesce(p.version, 0),\n"
    "  'excluded_genres', coalesce(p.excluded_genres, '{}'),\n"
    "  'max_maturity', p.max_maturity,\n"
    "  'languages', coalesce(p.languages, '{}'),\n"
    /* learned weights, each event halving every $3 days before the user's newest one
     * (workers/query/rank.h: hsc_rank_policy_score bounds them) */
    "  'prefs', (SELECT coalesce(json_agg(json_build_array(dim, name, weight)), '[]') FROM (\n"
    "    SELECT dim, name, sum(weight) AS weight FROM (\n"
    "      SELECT t.dim, t.name, sum(hsc_learning_delta(le.kind, le.value) *\n"
    "        power(0.5, (le.newest - le.ts) / (86400000.0 * $3::float8))) AS weight\n"
    "      FROM (SELECT kind, value, content_id, ts, max(ts) OVER () AS newest\n"
    "            FROM learning_events WHERE user_id = $1 ORDER BY ts DESC LIMIT 1000) le\n"
    "      JOIN content c ON c.id = le.content_id AND NOT c.deleted\n"
    "      CROSS JOIN LATERAL (SELECT 'genre'::text AS dim, g AS name FROM unnest(c.genres) g\n"
    "                          UNION ALL SELECT 'theme'::text, th FROM unnest(c.themes) th) t\n"
    "      GROUP BY 1, 2\n"
    /* explicit weights (policy events, user_preference_overrides) add to the learned ones */
    "      UNION ALL SELECT dim, name, weight FROM user_preference_overrides WHERE user_id = $1) "
    "u\n"
    "    GROUP BY 1, 2) w),\n"
    "  'blocked_ids', coalesce(p.blocked_ids, '{}'),\n"
    "  'history', (SELECT coalesce(json_agg(content_id ORDER BY ts DESC), '[]') FROM (\n"
    "      SELECT content_id, max(ts) AS ts FROM learning_events\n"
    "      WHERE user_id = $1 AND (kind IN ('like', 'complete') OR (kind = 'rating' AND value >= "
    "4))\n"
    "      GROUP BY content_id ORDER BY 2 DESC LIMIT $2::int) h))\n"
    "FROM (SELECT 1) one LEFT JOIN user_policies p ON p.user_id = $1";

const char QUERY_ATTRS_SQL[] =
    "SELECT id, coalesce(title, ''), to_json(genres), to_json(themes), language,\n"
    "       coalesce(year, 0), coalesce(maturity, -1)\n"
    "FROM content WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))\n"
    "  AND NOT deleted";

enum { P_OFF = 0, P_WAIT, P_RUN, P_DONE, P_FAIL, P_CUT };
enum { PH_VERSIONS, PH_CACHE, PH_POLICY, PH_BACKENDS, PH_ATTRS, PH_RELS, PH_DONE };

/* One search in flight. */
struct qreq {
    struct qreq *prev, *next; /* the engine's list, for shutdown */
    struct qreq *next_start;  /* the engine's queue of searches to start next turn */
    struct query_engine *e;
    int refs, replied, phase;
    int out_of_time; /* the deadline timer fired: nothing more may be started */
    hsc_search_request *req;
    char corr[128];
    int64_t deadline_ms, t0_us;
    query_done_fn done;
    void *arg;
    ev_timer due_backends, due_final;
    /* versions and cache */
    long long epoch, polver; /* -1: unknown */
    hsc_buf canon;
    uint64_t hash;
    /* plan and parts */
    hsc_plan plan;
    hsc_policy policy;
    int policy_state, policy_pushed;
    int vec_state, graph_state, attrs_state, rels_state;
    int64_t started_vec, started_graph, started_pol, started_attrs, started_cache;
    hsc_search_timings t;
    hsc_strlist degraded;
    char fail_why[256];
    /* candidates, with an open-addressing index by id */
    hsc_candidate *c;
    size_t nc, capc;
    int32_t *idx;
    size_t idxcap;
};

/* ---------------- small helpers ---------------- */

static double now_s(struct query_engine *e)
{
    return ev_now(e->loop);
}

static int64_t since_us(int64_t t)
{
    return hsc_mono_us() - t;
}

static void add_degraded(struct qreq *q, const char *what)
{
    for (size_t i = 0; i < q->degraded.n; i++)
        if (!strcmp(q->degraded.v[i], what))
            return;
    hsc_strlist_push(&q->degraded, what, strlen(what));
}

static void note_failure(struct qreq *q, const char *what, const hsc_err *err)
{
    size_t n = strlen(q->fail_why);
    snprintf(q->fail_why + n, sizeof(q->fail_why) - n, "%s%s: %s", n ? "; " : "", what,
             err ? err->msg : "missed its budget");
}

/* A part that will not contribute: why goes into an error reply, its name into `degraded`. */
static void fail_part(struct qreq *q, const char *backend, const char *part, int *state,
                      const hsc_err *err)
{
    note_failure(q, backend, err);
    add_degraded(q, part);
    *state = P_FAIL;
}

static void backend_failed(struct query_engine *e, hsc_latency *l, const hsc_err *err)
{
    if (err && err->code == HSC_ECANCELED)
        return;
    l->failures++;
    l->down_until = now_s(e) + e->cooldown_s;
}

/* Books one backend call's duration: the planner's window and the latency histogram. */
static void booked(struct query_engine *e, hsc_latency *l, const char *backend, const char *op,
                   double ms)
{
    hsc_latency_add(l, ms);
    if (e->metrics) {
        char labels[96];
        snprintf(labels, sizeof(labels), "backend=\"%s\",op=\"%s\"", backend, op);
        hsc_metrics_observe(e->metrics, "hsc_backend_request_duration_seconds", labels,
                            ms / 1000.0);
    }
}

static int is_down(struct query_engine *e, const hsc_latency *l)
{
    return now_s(e) < l->down_until;
}

static uint64_t id_hash(const char *s)
{
    return hsc_qcache_hash(s, strlen(s));
}

static hsc_candidate *cand_find(struct qreq *q, const char *id)
{
    if (!q->idxcap)
        return NULL;
    for (size_t h = id_hash(id) & (q->idxcap - 1);; h = (h + 1) & (q->idxcap - 1)) {
        if (q->idx[h] < 0)
            return NULL;
        if (!strcmp(q->c[q->idx[h]].id, id))
            return &q->c[q->idx[h]];
    }
}

static void index_put(struct qreq *q, size_t i)
{
    for (size_t h = id_hash(q->c[i].id) & (q->idxcap - 1);; h = (h + 1) & (q->idxcap - 1))
        if (q->idx[h] < 0) {
            q->idx[h] = (int32_t)i;
            return;
        }
}

/*
 * The candidate for id, added if new; NULL when out of memory or the id is
 * not one ingest would have accepted: ids come back from Milvus and Neo4j,
 * which are not trusted to hold only what hsc wrote.
 */
static hsc_candidate *cand_get(struct qreq *q, const char *id)
{
    hsc_candidate *c = cand_find(q, id);
    if (c)
        return c;
    if (!hsc_id_valid(id, strlen(id))) {
        hsc_log_warn("backend returned an invalid id; ignored", "correlation_id", q->corr, NULL);
        return NULL;
    }
    if (q->nc == q->capc) {
        size_t cap = q->capc ? 2 * q->capc : 64;
        hsc_candidate *nc = realloc(q->c, cap * sizeof(*nc));
        int32_t *ni = malloc(2 * cap * sizeof(*ni));
        if (!nc || !ni) {
            free(ni);
            if (nc)
                q->c = nc;
            return NULL;
        }
        q->c = nc;
        q->capc = cap;
        free(q->idx);
        q->idx = ni;
        q->idxcap = 2 * cap;
        memset(q->idx, 0xff, q->idxcap * sizeof(*q->idx));
        for (size_t i = 0; i < q->nc; i++)
            index_put(q, i);
    }
    c = &q->c[q->nc];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, strlen(id) + 1);
    index_put(q, q->nc++);
    return c;
}

/* Lower-cased copies of a list (tags are stored lower-case everywhere). */
static void lower_list(const hsc_strlist *in, hsc_strlist *out)
{
    for (size_t i = 0; i < in->n; i++) {
        char *v = strdup(in->v[i]);
        for (char *p = v; p && *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (v)
            hsc_strlist_push(out, v, strlen(v));
        free(v);
    }
}

/* The seeds of graph calls: the request's, then the user's recent positive history. */
static void seeds_of(struct qreq *q, hsc_strlist *out)
{
    for (size_t i = 0; i < q->req->seed_ids.n; i++)
        hsc_strlist_push(out, q->req->seed_ids.v[i], strlen(q->req->seed_ids.v[i]));
    if (q->policy_state == P_DONE)
        for (size_t i = 0; i < q->policy.history.n && (int)i < q->e->history_seeds; i++)
            hsc_strlist_push(out, q->policy.history.v[i], strlen(q->policy.history.v[i]));
}

static int fetch_k(struct qreq *q, int cap)
{
    long long k = (long long)q->req->k * q->e->overfetch + (long long)q->req->filters.exclude_ids.n;
    if (q->policy_state ==
        P_DONE) /* blocked titles are dropped after the fetch, like exclude_ids */
        k += (long long)q->policy.blocked_ids.n;
    return (int)(k > cap ? cap : k);
}

static void unref(struct qreq *q);
static void reply_error(struct qreq *q, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void run_plan(struct qreq *q);
static void start_attrs(struct qreq *q);
static void maybe_rank(struct qreq *q);
static void start_graph(struct qreq *q);
static void plan_and_launch(struct qreq *q);

/* ---------------- the reply ---------------- */

static void finish(struct qreq *q, hsc_search_reply *r)
{
    struct query_engine *e = q->e;
    ev_timer_stop(e->loop, &q->due_backends);
    ev_timer_stop(e->loop, &q->due_final);
    q->replied = 1;
    q->phase = PH_DONE;
    /* calls still running can only be ignored now: free their connections */
    hsc_http_cancel(e->http, &q->vec_state);
    hsc_http_cancel(e->http, &q->graph_state);
    hsc_http_cancel(e->http, &q->rels_state);
    q->t.total = since_us(q->t0_us);
    r->v = HSC_SCHEMA_VERSION;
    r->correlation_id = q->corr;
    r->timings_us = q->t;
    r->degraded = q->degraded;
    if (r->ok)
        e->stats.ok++;
    else
        e->stats.errors++;
    if (q->degraded.n)
        e->stats.degraded++;
    if ((unsigned)r->strategy < 6)
        e->stats.by_strategy[r->strategy]++;
    q->done(q->arg, r);
}

static void reply_error(struct qreq *q, const char *code, const char *fmt, ...)
{
    if (q->replied)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hsc_search_reply r = {0};
    r.ok = false;
    r.error_code = (char *)code;
    r.error_message = msg;
    r.strategy = q->plan.strategy;
    r.plan = q->plan.why[0] ? q->plan.why : NULL;
    finish(q, &r);
}

static void on_cache_set(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct qreq *q = arg;
    if (err && err->code != HSC_ECANCELED)
        hsc_log_warn("cache write failed", "correlation_id", q->corr, "error", err->msg, NULL);
    (void)reply;
    unref(q);
}

/* Stores the results under the key of the versions they were computed with. */
static void cache_store(struct qreq *q, const hsc_search_result *res, size_t n)
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

static void reply_ok(struct qreq *q)
{
    size_t n = q->nc < (size_t)q->req->k ? q->nc : (size_t)q->req->k;
    hsc_search_result *res = calloc(n ? n : 1, sizeof(*res));
    if (!res) {
        reply_error(q, "internal", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        hsc_candidate *c = &q->c[i];
        res[i].id = c->id;
        res[i].score = c->score;
        res[i].vector_score = c->vector_score;
        res[i].graph_score = c->graph_score;
        res[i].policy_score = c->policy_score;
        res[i].title = c->attrs.title;
        res[i].genres = c->attrs.genres;
        res[i].has_rels = q->req->include_relationships;
        res[i].rels = c->rels;
        res[i].nrels = c->nrels;
    }
    cache_store(q, res, n);
    hsc_search_reply r = {0};
    r.ok = true;
    r.strategy = q->plan.strategy;
    r.plan = q->plan.why;
    r.results = res;
    r.nresults = n;
    finish(q, &r);
    free(res); /* the strings belong to the candidates */
}

/* ---------------- rank and relationships ---------------- */

static void add_rel(hsc_candidate *c, const char *type, const char *seed, double score)
{
    hsc_search_relationship *r = realloc(c->rels, (c->nrels + 1) * sizeof(*r));
    if (!r)
        return;
    c->rels = r;
    r[c->nrels].type = strdup(type);
    r[c->nrels].seed = strdup(seed);
    r[c->nrels].score = score;
    if (r[c->nrels].type && r[c->nrels].seed)
        c->nrels++;
    else
        free(r[c->nrels].type), free(r[c->nrels].seed);
}

/* Reads enrichment links ([{seed, type, score}]) into c's relationships; returns their score sum.
 */
static double take_links(hsc_candidate *c, const char *links)
{
    json_t *a = json_loads(links ? links : "[]", 0, NULL);
    double sum = 0;
    size_t i;
    json_t *l;
    c->has_rels = true;
    json_array_foreach (a, i, l) {
        const char *type = json_string_value(json_object_get(l, "type"));
        const char *seed = json_string_value(json_object_get(l, "seed"));
        json_t *sc = json_object_get(l, "score");
        double s = json_is_number(sc) ? json_number_value(sc) : 1.0; /* RELATED_TO has none */
        if (!type || !seed)
            continue;
        add_rel(c, type, seed, s);
        sum += s;
    }
    json_decref(a);
    return sum;
}

static void on_rels(void *arg, const hsc_graph_info *v, size_t n, double seconds,
                    const hsc_err *err)
{
    struct qreq *q = arg;
    booked(q->e, &q->e->lat_graph, "neo4j", "enrich", seconds * 1000);
    if (q->replied || q->rels_state != P_RUN) {
        unref(q);
        return;
    }
    q->t.graph += since_us(q->started_graph);
    if (err) {
        backend_failed(q->e, &q->e->lat_graph, err);
        add_degraded(q, "graph");
        q->rels_state = P_FAIL;
    } else {
        q->rels_state = P_DONE;
        for (size_t i = 0; i < n; i++) {
            hsc_candidate *c = cand_find(q, v[i].id);
            if (c && !c->has_rels)
                take_links(c, v[i].links);
        }
    }
    reply_ok(q);
    unref(q);
}

/* Asks the graph how the top results link to the seeds, unless they already know. */
static int start_rels(struct qreq *q, size_t top)
{
    struct query_engine *e = q->e;
    if (!q->req->include_relationships || is_down(e, &e->lat_graph) || q->out_of_time)
        return 0;
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    const char **ids = calloc(top ? top : 1, sizeof(*ids));
    size_t nids = 0;
    for (size_t i = 0; ids && i < top; i++)
        if (!q->c[i].has_rels)
            ids[nids++] = q->c[i].id;
    int started = 0;
    if (ids && nids && seeds.n) {
        hsc_err err = {0};
        q->refs++;
        q->started_graph = hsc_mono_us();
        hsc_http_set_scope(e->http, &q->rels_state, q->deadline_ms); /* cancelled if cut */
        int rc = hsc_graph_enrich(e->neo, ids, nids, (const char *const *)seeds.v, seeds.n, on_rels,
                                  q, &err);
        hsc_http_set_scope(e->http, NULL, 0);
        if (rc == 0) {
            q->rels_state = P_RUN;
            q->phase = PH_RELS;
            started = 1;
        } else {
            q->refs--;
        }
    }
    free(ids);
    hsc_strlist_clear(&seeds);
    return started;
}

static void rank(struct qreq *q)
{
    struct query_engine *e = q->e;
    int64_t t = hsc_mono_us();
    const hsc_search_request *req = q->req;
    bool personal = req->user_id != NULL;
    if (personal && q->policy_state != P_DONE) {
        reply_error(q, "policy_unavailable",
                    "the policy of user %s could not be loaded in time (%s); results are "
                    "withheld rather than shown unfiltered",
                    req->user_id, q->fail_why[0] ? q->fail_why : "no answer");
        return;
    }
    int attrs_ok = q->attrs_state == P_DONE;
    if (!attrs_ok && q->nc) {
        add_degraded(q, "policy");
        if (personal && !q->policy_pushed) {
            reply_error(q, "policy_unavailable",
                        "the catalogue could not be read to apply user %s's policy (%s)",
                        req->user_id, q->fail_why);
            return;
        }
    }
#define FAILED(s) ((s) == P_FAIL || (s) == P_CUT)
    int sources_failed = (q->plan.use_vector ? FAILED(q->vec_state) : 1) &&
                         (q->plan.use_graph ? FAILED(q->graph_state) : 1);
#undef FAILED
    if ((q->plan.use_vector || q->plan.use_graph) && sources_failed) {
        /* A source cut by the search's own time (its budget or the deadline) might
         * have answered with more of it: that is the deadline's doing, not a backend
         * that could not answer. */
        int cut = (q->plan.use_vector && q->vec_state == P_CUT) ||
                  (q->plan.use_graph && q->graph_state == P_CUT);
        if (cut)
            reply_error(q, "deadline", "no backend answered before the deadline: %s",
                        q->fail_why[0] ? q->fail_why : "none could run");
        else
            reply_error(q, "no_backend", "no backend answered: %s",
                        q->fail_why[0] ? q->fail_why : "none could run");
        return;
    }
    /* keep what the catalogue knows and the rules allow */
    size_t kept = 0;
    for (size_t i = 0; i < q->nc; i++) {
        hsc_candidate *c = &q->c[i];
        const char *why = NULL;
        int ok = (!attrs_ok || c->has_attrs) &&
                 hsc_rank_allows(&req->filters, personal ? &q->policy : NULL, c, &why);
        if (ok) {
            c->policy_score = personal ? hsc_rank_policy_score(&q->policy, &c->attrs) : 0;
            if (kept != i)
                q->c[kept] = *c;
            kept++;
        } else {
            hsc_candidate_clear(c);
        }
    }
    q->nc = kept;
    free(q->idx); /* positions move with the sort; rebuilt below */
    q->idx = NULL;
    q->idxcap = 0;
    q->nc = hsc_rank_select(q->c, q->nc, &e->fusion, req); /* never the seeds themselves */
    if (q->nc) {
        size_t cap = 1;
        while (cap < 2 * q->nc)
            cap <<= 1;
        q->idx = malloc(cap * sizeof(*q->idx));
        if (q->idx) {
            q->idxcap = cap;
            memset(q->idx, 0xff, cap * sizeof(*q->idx));
            for (size_t i = 0; i < q->nc; i++)
                index_put(q, i);
        }
    }
    q->t.rank += since_us(t);
    size_t top = q->nc < (size_t)req->k ? q->nc : (size_t)req->k;
    if (start_rels(q, top))
        return;
    reply_ok(q);
}

/* ---------------- attrs (PostgreSQL) ---------------- */

static hsc_pg *pick_pg(struct query_engine *e)
{
    hsc_pg *pg = e->pg[e->pg_next];
    e->pg_next = (e->pg_next + 1) % e->npg;
    return pg;
}

static void fill_json_list(hsc_strlist *l, const char *text)
{
    json_t *a = json_loads(text, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
        if (json_is_string(v))
            hsc_strlist_push(l, json_string_value(v), json_string_length(v));
    json_decref(a);
}

static void on_attrs(void *arg, PGresult *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    double ms = since_us(q->started_attrs) / 1000.0;
    booked(e, &e->lat_policy, "postgresql", "attributes", ms);
    if (q->replied || q->attrs_state != P_RUN) {
        unref(q);
        return;
    }
    q->t.policy += since_us(q->started_attrs);
    if (!res) {
        backend_failed(e, &e->lat_policy, err);
        note_failure(q, "postgresql", err);
        q->attrs_state = P_FAIL;
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            hsc_candidate *c = cand_find(q, PQgetvalue(res, i, 0));
            if (!c)
                continue;
            hsc_title_attrs *a = &c->attrs;
            a->title = strdup(PQgetvalue(res, i, 1));
            fill_json_list(&a->genres, PQgetvalue(res, i, 2));
            fill_json_list(&a->themes, PQgetvalue(res, i, 3));
            a->language = PQgetisnull(res, i, 4) ? NULL : strdup(PQgetvalue(res, i, 4));
            a->year = atoi(PQgetvalue(res, i, 5));
            a->maturity = atoi(PQgetvalue(res, i, 6));
            c->has_attrs = true;
        }
        q->attrs_state = P_DONE;
    }
    maybe_rank(q);
    unref(q);
}

static void start_attrs(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->phase >= PH_ATTRS)
        return;
    q->phase = PH_ATTRS;
    ev_timer_stop(e->loop, &q->due_backends);
    if (q->nc == 0) {
        q->attrs_state = P_DONE;
        maybe_rank(q);
        return;
    }
    /* A JSON parameter, like every list ingest writes: no array literal to quote. */
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < q->nc; i++)
        json_array_append_new(arr, json_string(q->c[i].id));
    char *ids = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    const char *params[1] = {ids};
    hsc_err err = {0};
    q->refs++;
    q->started_attrs = hsc_mono_us();
    q->attrs_state = P_RUN;
    if (!ids || hsc_pg_query(pick_pg(e), QUERY_ATTRS_SQL, 1, params, on_attrs, q, &err)) {
        q->refs--;
        q->attrs_state = P_FAIL;
        note_failure(q, "postgresql", &err);
        maybe_rank(q);
    }
    free(ids);
}

static void maybe_rank(struct qreq *q)
{
    if (q->replied || q->phase != PH_ATTRS)
        return;
    if (q->attrs_state == P_RUN || q->policy_state == P_RUN)
        return;
    rank(q);
}

static void check_backends_done(struct qreq *q)
{
    if (q->replied || q->phase != PH_BACKENDS)
        return;
    if (q->vec_state == P_RUN || q->vec_state == P_WAIT || q->graph_state == P_RUN ||
        q->graph_state == P_WAIT)
        return;
    start_attrs(q);
}

/* ---------------- policy (PostgreSQL, cached in-process by version) ---------------- */

static struct query_policy_slot *policy_slot(struct query_engine *e, const char *user)
{
    return &e->policies[id_hash(user) % QUERY_POLICY_SLOTS];
}

static int parse_policy(const char *text, const char *user, hsc_policy *p)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return HSC_EINVAL;
    }
    memset(p, 0, sizeof(*p));
    p->user_id = strdup(user);
    p->version = json_integer_value(json_object_get(o, "version"));
    json_t *mm = json_object_get(o, "max_maturity");
    p->has_max_maturity = json_is_integer(mm);
    p->max_maturity = (int)json_integer_value(mm);
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(o, "excluded_genres"), i, v)
        if (json_is_string(v))
            hsc_strlist_push(&p->excluded_genres, json_string_value(v), json_string_length(v));
    json_array_foreach (json_object_get(o, "languages"), i, v)
        if (json_is_string(v))
            hsc_strlist_push(&p->languages, json_string_value(v), json_string_length(v));
    json_array_foreach (json_object_get(o, "blocked_ids"), i, v)
        if (json_is_string(v))
            hsc_strlist_push(&p->blocked_ids, json_string_value(v), json_string_length(v));
    json_array_foreach (json_object_get(o, "history"), i, v)
        if (json_is_string(v))
            hsc_strlist_push(&p->history, json_string_value(v), json_string_length(v));
    json_t *prefs = json_object_get(o, "prefs");
    p->prefs = calloc(json_array_size(prefs) + 1, sizeof(*p->prefs));
    json_array_foreach (prefs, i, v) {
        const char *name = json_string_value(json_array_get(v, 1));
        if (!p->prefs || !name)
            continue;
        const char *dim = json_string_value(json_array_get(v, 0));
        p->prefs[p->nprefs].theme = dim && !strcmp(dim, "theme");
        p->prefs[p->nprefs].name = strdup(name);
        p->prefs[p->nprefs].weight = json_number_value(json_array_get(v, 2));
        p->nprefs++;
    }
    json_decref(o);
    return HSC_OK;
}

static void on_raised(void *arg, const redisReply *reply, const hsc_err *err)
{
    (void)reply;
    (void)err; /* best effort: the next request simply loads the policy again */
    unref(arg);
}

static void on_policy(void *arg, PGresult *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    booked(e, &e->lat_policy, "postgresql", "policy", since_us(q->started_pol) / 1000.0);
    if (q->replied || q->policy_state != P_RUN) {
        unref(q);
        return;
    }
    q->t.policy += since_us(q->started_pol);
    if (!res || PQntuples(res) != 1 ||
        parse_policy(PQgetvalue(res, 0, 0), q->req->user_id, &q->policy)) {
        if (!res)
            backend_failed(e, &e->lat_policy, err);
        note_failure(q, "postgresql", err);
        q->policy_state = P_FAIL;
    } else {
        q->policy_state = P_DONE;
        struct query_policy_slot *s = policy_slot(e, q->req->user_id);
        hsc_policy_clear(&s->policy);
        s->used = hsc_policy_copy(&s->policy, &q->policy) == HSC_OK;
        if (e->redis && q->polver < q->policy.version) {
            /* Publish the version so later requests can trust the cached copy. */
            char *key = hsc_strcat2(e->policy_prefix, q->req->user_id);
            long long v = q->policy.version;
            hsc_err e2 = {0};
            q->refs++;
            if (!key ||
                hsc_redis_raise(e->redis, (const char *const *)&key, &v, 1, on_raised, q, &e2))
                q->refs--;
            free(key);
        }
    }
    if (q->phase == PH_POLICY)
        plan_and_launch(q);
    unref(q);
}

static void start_policy(struct qreq *q)
{
    struct query_engine *e = q->e;
    struct query_policy_slot *s = policy_slot(e, q->req->user_id);
    if (s->used && q->polver >= 0 && !strcmp(s->policy.user_id, q->req->user_id) &&
        s->policy.version == q->polver && hsc_policy_copy(&q->policy, &s->policy) == HSC_OK) {
        q->policy_state = P_DONE;
        q->policy_pushed = 1;
        return;
    }
    char lim[16], half[32];
    snprintf(lim, sizeof(lim), "%d", e->history_seeds);
    snprintf(half, sizeof(half), "%.17g", e->fusion.half_life_days);
    const char *params[3] = {q->req->user_id, lim, half};
    hsc_err err = {0};
    q->refs++;
    q->started_pol = hsc_mono_us();
    q->policy_state = P_RUN;
    if (hsc_pg_query(pick_pg(e), QUERY_POLICY_SQL, 3, params, on_policy, q, &err)) {
        q->refs--;
        q->policy_state = P_FAIL;
        note_failure(q, "postgresql", &err);
    }
}

/* ---------------- vector (Milvus) ---------------- */

void query_milvus_filter(const hsc_search_request *req, const hsc_policy *pushed,
                         hsc_milvus_filter *f)
{
    const hsc_search_filters *rf = &req->filters;
    if (rf->genres.n) {
        hsc_strlist g = {0};
        lower_list(&rf->genres, &g);
        hsc_milvus_filter_contains_any(f, "genres", (const char *const *)g.v, g.n, 0);
        hsc_strlist_clear(&g);
    }
    if (rf->language)
        hsc_milvus_filter_str(f, "language", rf->language, 0);
    if (rf->has & HSC_FILTER_YEAR_MIN)
        hsc_milvus_filter_int(f, "year", ">=", rf->year_min);
    if (rf->has & HSC_FILTER_YEAR_MAX)
        hsc_milvus_filter_int(f, "year", "<=", rf->year_max);
    int ceiling = rf->has & HSC_FILTER_MAX_MATURITY ? rf->max_maturity : -1;
    if (pushed) {
        const hsc_policy *p = pushed;
        if (p->excluded_genres.n) {
            hsc_strlist g = {0};
            lower_list(&p->excluded_genres, &g);
            hsc_milvus_filter_contains_any(f, "genres", (const char *const *)g.v, g.n, 1);
            hsc_strlist_clear(&g);
        }
        if (p->has_max_maturity && (ceiling < 0 || p->max_maturity < ceiling))
            ceiling = p->max_maturity;
        if (p->languages.n)
            hsc_milvus_filter_in(f, "language", (const char *const *)p->languages.v,
                                 p->languages.n);
    }
    if (ceiling >= 0)
        hsc_milvus_filter_int(f, "maturity", "<=", ceiling);
}

static void start_graph_enrich(struct qreq *q);

static void on_vector(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    booked(e, &e->lat_vector, "milvus", "search", since_us(q->started_vec) / 1000.0);
    if (q->replied || q->vec_state != P_RUN) {
        unref(q);
        return;
    }
    q->t.vector += since_us(q->started_vec);
    if (!res) {
        backend_failed(e, &e->lat_vector, err);
        fail_part(q, "milvus", "vector", &q->vec_state, err);
    } else {
        for (size_t i = 0; i < res->nhits; i++) {
            hsc_candidate *c = cand_get(q, res->hits[i].id);
            if (!c)
                continue;
            c->in_vector = true;
            c->vector_raw = res->hits[i].score;
            c->vector_rank = (int)i + 1;
        }
        q->vec_state = P_DONE;
    }
    if (q->plan.sequential && q->graph_state == P_WAIT)
        start_graph_enrich(q);
    check_backends_done(q);
    unref(q);
}

static void start_vector(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_err err = {0};
    if (!hsc_milvus_ready(e->milvus)) {
        hsc_err_set(&err, HSC_ETRANSIENT, "the collection is not ready yet");
        fail_part(q, "milvus", "vector", &q->vec_state, &err);
        return;
    }
    hsc_milvus_filter f = {0};
    query_milvus_filter(q->req, q->policy_pushed ? &q->policy : NULL, &f);
    const char *expr = hsc_milvus_filter_str_of(&f);
    q->refs++;
    q->started_vec = hsc_mono_us();
    q->vec_state = P_RUN;
    hsc_http_set_scope(e->http, &q->vec_state, q->deadline_ms); /* cancelled if cut */
    int rc =
        !expr || hsc_milvus_search(e->milvus, q->req->embedding, q->req->dim, fetch_k(q, 16384),
                                   *expr ? expr : NULL, 0, on_vector, q, &err);
    hsc_http_set_scope(e->http, NULL, 0);
    if (rc) {
        q->refs--;
        if (!expr)
            hsc_err_set(&err, HSC_EINVAL, "the filter could not be built");
        fail_part(q, "milvus", "vector", &q->vec_state, &err);
    }
    hsc_milvus_filter_free(&f);
}

/* ---------------- graph (Neo4j) ---------------- */

/* Books a graph call's end; true if its rows are wanted (in time, and no error). */
static int graph_answered(struct qreq *q, const hsc_err *err)
{
    struct query_engine *e = q->e;
    booked(e, &e->lat_graph, "neo4j", q->plan.sequential ? "enrich" : "candidates",
           since_us(q->started_graph) / 1000.0);
    if (q->replied || q->graph_state != P_RUN)
        return 0; /* cut meanwhile: only the latency counts */
    q->t.graph += since_us(q->started_graph);
    if (err) {
        backend_failed(e, &e->lat_graph, err);
        fail_part(q, "neo4j", "graph", &q->graph_state, err);
        return 0;
    }
    return 1;
}

static void on_graph_cands(void *arg, const hsc_graph_candidate *v, size_t n, double seconds,
                           const hsc_err *err)
{
    struct qreq *q = arg;
    (void)seconds;
    if (graph_answered(q, err)) {
        for (size_t i = 0; i < n; i++) {
            hsc_candidate *c = cand_get(q, v[i].id);
            if (!c)
                continue;
            c->in_graph = true;
            c->graph_raw = v[i].score;
            c->graph_intent = v[i].intent; /* what the request's own seeds found */
            c->graph_rank = (int)i + 1;
            if (q->req->include_relationships && !c->has_rels) {
                /* the paths that found it are its relationships to the seeds */
                json_t *a = json_loads(v[i].why ? v[i].why : "[]", 0, NULL);
                size_t j;
                json_t *p;
                c->has_rels = true;
                json_array_foreach (a, j, p) {
                    const char *via = json_string_value(json_object_get(p, "via"));
                    const char *seed = json_string_value(json_object_get(p, "seed"));
                    if (!via || !seed)
                        continue;
                    add_rel(c,
                            !strcmp(via, "similar")   ? "SIMILAR_TO"
                            : !strcmp(via, "related") ? "RELATED_TO"
                                                      : "SHARES_TAG",
                            seed, json_number_value(json_object_get(p, "score")));
                }
                json_decref(a);
            }
        }
        q->graph_state = P_DONE;
    }
    check_backends_done(q);
    unref(q);
}

static void graph_filter_of(struct qreq *q, hsc_graph_filter *gf)
{
    const hsc_search_filters *rf = &q->req->filters;
    memset(gf, 0, sizeof(*gf));
    gf->genres = &rf->genres;
    gf->exclude_ids = &rf->exclude_ids;
    gf->year_min = rf->has & HSC_FILTER_YEAR_MIN ? rf->year_min : 0;
    gf->year_max = rf->has & HSC_FILTER_YEAR_MAX ? rf->year_max : 0;
    gf->max_maturity = rf->has & HSC_FILTER_MAX_MATURITY ? rf->max_maturity : -1;
    gf->nexplicit = q->req->seed_ids.n; /* seeds_of: the request's first, then history */
    gf->history_weight = q->e->fusion.history_weight;
    if (q->policy_state == P_DONE) {
        const hsc_policy *p = &q->policy;
        gf->excluded_genres = &p->excluded_genres;
        gf->languages = &p->languages;
        if (p->has_max_maturity && (gf->max_maturity < 0 || p->max_maturity < gf->max_maturity))
            gf->max_maturity = p->max_maturity;
    }
}

static void start_graph(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    if (!seeds.n) {
        /* nothing to start from yet: wait for the user's history, or there is none */
        q->graph_state = q->policy_state == P_RUN ? P_WAIT : P_OFF;
        return;
    }
    hsc_graph_filter gf;
    graph_filter_of(q, &gf);
    hsc_strlist langs = {0};
    if (q->req->filters.language) {
        /* a requested language narrows the user's list to one */
        hsc_strlist_push(&langs, q->req->filters.language, strlen(q->req->filters.language));
        gf.languages = &langs;
    }
    hsc_err err = {0};
    q->refs++;
    q->started_graph = hsc_mono_us();
    q->graph_state = P_RUN;
    hsc_http_set_scope(e->http, &q->graph_state, q->deadline_ms); /* cancelled if cut */
    int rc = hsc_graph_candidates(e->neo, (const char *const *)seeds.v, seeds.n, fetch_k(q, 3000),
                                  &gf, on_graph_cands, q, &err);
    hsc_http_set_scope(e->http, NULL, 0);
    if (rc) {
        q->refs--;
        fail_part(q, "neo4j", "graph", &q->graph_state, &err);
    }
    hsc_strlist_clear(&langs);
    hsc_strlist_clear(&seeds);
}

static int by_graph_raw(const void *a, const void *b)
{
    double x = (*(hsc_candidate *const *)a)->graph_raw, y = (*(hsc_candidate *const *)b)->graph_raw;
    return (x < y) - (x > y);
}

/*
 * Ranks the linked candidates by link score, for RRF (ties share a rank).
 * Sorted once rather than compared pairwise: k = 1000 means 3000 candidates.
 */
static void rank_by_graph_score(struct qreq *q)
{
    hsc_candidate **v = malloc((q->nc ? q->nc : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < q->nc; i++)
        if (q->c[i].in_graph)
            v[n++] = &q->c[i];
    if (!v)
        return;
    qsort(v, n, sizeof(*v), by_graph_raw);
    for (size_t i = 0; i < n; i++)
        v[i]->graph_rank =
            i && v[i]->graph_raw == v[i - 1]->graph_raw ? v[i - 1]->graph_rank : (int)i + 1;
    free(v);
}

static void on_graph_info(void *arg, const hsc_graph_info *v, size_t n, double seconds,
                          const hsc_err *err)
{
    struct qreq *q = arg;
    (void)seconds;
    if (graph_answered(q, err)) {
        for (size_t i = 0; i < n; i++) {
            hsc_candidate *c = cand_find(q, v[i].id);
            if (!c)
                continue;
            double s = take_links(c, v[i].links);
            c->in_graph = s > 0;
            c->graph_raw = s;
        }
        rank_by_graph_score(q);
        q->graph_state = P_DONE;
    }
    check_backends_done(q);
    unref(q);
}

static void start_graph_enrich(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->vec_state != P_DONE || !q->nc) {
        q->graph_state = P_OFF; /* nothing to enrich */
        return;
    }
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    const char **ids = calloc(q->nc, sizeof(*ids));
    for (size_t i = 0; ids && i < q->nc; i++)
        ids[i] = q->c[i].id;
    hsc_err err = {0};
    q->refs++;
    q->started_graph = hsc_mono_us();
    q->graph_state = P_RUN;
    hsc_http_set_scope(e->http, &q->graph_state, q->deadline_ms); /* cancelled if cut */
    int rc = !ids || hsc_graph_enrich(e->neo, ids, q->nc, (const char *const *)seeds.v, seeds.n,
                                      on_graph_info, q, &err);
    hsc_http_set_scope(e->http, NULL, 0);
    if (rc) {
        q->refs--;
        fail_part(q, "neo4j", "graph", &q->graph_state, &err);
    }
    free(ids);
    hsc_strlist_clear(&seeds);
}

/* ---------------- plan ---------------- */

static void on_due_backends(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct qreq *q = w->data;
    (void)loop;
    (void)revents;
    if (q->replied || q->phase != PH_BACKENDS)
        return;
    if (q->vec_state == P_RUN || q->vec_state == P_WAIT) {
        q->vec_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->vec_state); /* its connection is free for others */
        q->t.vector += since_us(q->started_vec);
        note_failure(q, "milvus", NULL);
        add_degraded(q, "vector");
    }
    if (q->graph_state == P_RUN || q->graph_state == P_WAIT) {
        if (q->graph_state == P_RUN)
            q->t.graph += since_us(q->started_graph);
        q->graph_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->graph_state);
        note_failure(q, "neo4j", NULL);
        add_degraded(q, "graph");
    }
    start_attrs(q);
}

static void on_due_final(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct qreq *q = w->data;
    (void)loop;
    (void)revents;
    if (q->replied)
        return;
    q->refs++; /* the reply may drop the last reference */
    q->out_of_time = 1;
    switch (q->phase) {
    case PH_VERSIONS:
    case PH_CACHE:
        reply_error(q, "deadline", "the cache did not answer before the deadline");
        break;
    case PH_POLICY:
        reply_error(q, "deadline", "the user's policy was not loaded before the deadline");
        break;
    case PH_BACKENDS:
        on_due_backends(loop, &q->due_backends, 0);
        /* fall through */
    case PH_ATTRS:
        if (q->attrs_state == P_RUN) {
            q->attrs_state = P_CUT;
            q->t.policy += since_us(q->started_attrs);
            note_failure(q, "postgresql", NULL);
        }
        if (q->policy_state == P_RUN) {
            q->policy_state = P_CUT;
            note_failure(q, "postgresql", NULL);
        }
        maybe_rank(q);
        break;
    case PH_RELS:
        q->rels_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->rels_state);
        add_degraded(q, "graph");
        reply_ok(q);
        break;
    }
    unref(q);
}

/*
 * The user's policy comes first (from the in-process copy when Redis says it
 * is current, else one PostgreSQL read), so that its hard constraints are
 * pushed into the Milvus filter and the Cypher query: filtering afterwards
 * alone could leave nothing of an over-fetched page for a user who excludes
 * what the query is near.
 */
static void run_plan(struct qreq *q)
{
    struct query_engine *e = q->e;
    const hsc_search_request *req = q->req;
    q->phase = PH_POLICY;
    if (req->embedding && req->dim != (size_t)e->dim) {
        reply_error(q, "bad_request", "embedding: dimension %zu, the catalogue's is %d", req->dim,
                    e->dim);
        return;
    }
    if (req->user_id)
        start_policy(q);
    if (q->policy_state != P_RUN)
        plan_and_launch(q);
}

static void plan_and_launch(struct qreq *q)
{
    struct query_engine *e = q->e;
    const hsc_search_request *req = q->req;
    q->phase = PH_BACKENDS;
    if (req->user_id && q->policy_state != P_DONE) {
        reply_error(q, "policy_unavailable",
                    "the policy of user %s could not be loaded (%s); results are withheld "
                    "rather than shown unfiltered",
                    req->user_id, q->fail_why[0] ? q->fail_why : "no answer");
        return;
    }
    q->policy_pushed = req->user_id != NULL;
    double remaining = (double)(q->deadline_ms - hsc_now_ms()) - e->reserve_ms;
    hsc_plan_input in = {
        .requested = req->strategy,
        .has_embedding = req->embedding != NULL,
        .has_seeds = req->seed_ids.n > 0,
        .has_user = req->user_id != NULL,
        .has_history = q->policy_state == P_DONE && q->policy.history.n > 0,
        .relationships = req->include_relationships,
        .k = req->k,
        .remaining_ms = remaining,
        .vector_p99 = hsc_latency_p99(&e->lat_vector),
        .graph_p99 = hsc_latency_p99(&e->lat_graph),
        .policy_p99 = hsc_latency_p99(&e->lat_policy),
        .vector_down = is_down(e, &e->lat_vector) || !hsc_milvus_ready(e->milvus),
        .graph_down = is_down(e, &e->lat_graph),
    };
    if (!hsc_milvus_ready(e->milvus) && !e->milvus_ensuring && !ev_is_active(&e->ensure_timer)) {
        /* the collection was released or went away (a Milvus restart): make it ready again */
        ev_timer_set(&e->ensure_timer, 0., 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    }
    /*
     * A backend the planner leaves out gets no new samples, so its p99 would
     * never recover: once a second one request tries it anyway.
     */
    double now = now_s(e);
    if (in.graph_p99 + in.policy_p99 > remaining && now - e->lat_graph.last_probe > 1.0) {
        e->lat_graph.last_probe = now;
        in.graph_p99 = 0;
    }
    if (in.vector_p99 + in.policy_p99 > remaining && now - e->lat_vector.last_probe > 1.0) {
        e->lat_vector.last_probe = now;
        in.vector_p99 = 0;
    }
    hsc_plan_make(&in, &q->plan);
    if (q->plan.error) {
        reply_error(q, "bad_request", "%s", q->plan.error);
        return;
    }
    /* a backend the planner left out because it is failing or slow is degraded */
    if (req->strategy == HSC_STRATEGY_AUTO && req->embedding && (req->seed_ids.n || req->user_id) &&
        !(q->plan.use_vector && q->plan.use_graph))
        add_degraded(q, q->plan.use_vector ? "graph" : "vector");
    double attrs_budget = 1.5 * in.policy_p99;
    attrs_budget = attrs_budget < 2               ? 2
                   : attrs_budget > remaining / 2 ? remaining / 2
                                                  : attrs_budget;
    double backends_ms = remaining - attrs_budget;
    /*
     * In a hybrid, a backend's budget is a multiple of its recent p99 (at
     * least budget_min_ms), so a hung server costs a search tens of
     * milliseconds, not its whole deadline, and the other backend answers.
     * With no history yet, or one source, the deadline is the budget.
     */
    double p99 = 0;
    if (q->plan.use_vector && e->lat_vector.n)
        p99 = in.vector_p99 > p99 ? in.vector_p99 : p99;
    if (q->plan.use_graph && e->lat_graph.n) {
        double g = hsc_latency_p99(&e->lat_graph);
        p99 = q->plan.sequential ? p99 + g
              : g > p99          ? g
                                 : p99; /* sequential: one after the other */
    }
    /* cutting the only source would turn a slow answer into none: only hybrids are cut */
    if (p99 > 0 && q->plan.use_vector && q->plan.use_graph) {
        double budget = e->budget_factor * p99;
        budget = budget < e->budget_min_ms ? e->budget_min_ms : budget;
        backends_ms = budget < backends_ms ? budget : backends_ms;
    }
    double backends_s = backends_ms / 1000.0;
    ev_timer_set(&q->due_backends, backends_s > 0 ? backends_s : 0, 0.);
    ev_timer_start(e->loop, &q->due_backends);
    if (q->plan.use_vector)
        start_vector(q);
    if (q->plan.use_graph) {
        if (q->plan.sequential)
            q->graph_state = q->vec_state == P_RUN ? P_WAIT : P_OFF;
        else
            start_graph(q);
    }
    check_backends_done(q);
}

/* ---------------- versions and cache (Redis) ---------------- */

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
        finish(q, &r);
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
            reply_error(q, "cache_miss", "no cached result for this request");
        else
            run_plan(q);
    }
}

static void on_cache_get(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct qreq *q = arg;
    if (q->replied) {
        unref(q);
        return;
    }
    q->t.cache += since_us(q->started_cache);
    booked(q->e, &q->e->lat_cache, "redis", "get", since_us(q->started_cache) / 1000.0);
    if (err) {
        add_degraded(q, "cache");
        q->epoch = -1;
    }
    if (reply && reply->type == REDIS_REPLY_STRING) {
        reply_from_cache(q, reply->str, reply->len);
    } else {
        q->e->stats.cache_misses++;
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            reply_error(q, err ? "cache_unavailable" : "cache_miss", "%s",
                        err ? err->msg : "no cached result for this request");
        else
            run_plan(q);
    }
    unref(q);
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
        unref(q);
        return;
    }
    q->t.cache += since_us(q->started_cache);
    booked(e, &e->lat_cache, "redis", "mget", since_us(q->started_cache) / 1000.0);
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        if (q->req->cache)
            add_degraded(q, "cache");
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            reply_error(q, "cache_unavailable", "redis: %s", err ? err->msg : "bad reply");
        else
            run_plan(q);
        unref(q);
        return;
    }
    q->epoch = reply_int(reply->element[0]);
    if (q->epoch < 0)
        q->epoch = 0; /* nothing indexed yet */
    q->polver = q->req->user_id ? (reply->elements > 1 ? reply_int(reply->element[1]) : -1) : 0;
    if (!q->req->cache) {
        run_plan(q);
        unref(q);
        return;
    }
    q->phase = PH_CACHE;
    if (hsc_qcache_canonical(q->req, e->scope, &q->canon)) {
        reply_error(q, "internal", "out of memory");
        unref(q);
        return;
    }
    q->hash = hsc_qcache_hash(q->canon.data, q->canon.len);
    if (q->polver < 0) {
        /* no known version: nothing can be cached under it yet */
        e->stats.cache_misses++;
        if (q->req->strategy == HSC_STRATEGY_CACHED_ONLY)
            reply_error(q, "cache_miss", "no cached result for this request");
        else
            run_plan(q);
        unref(q);
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
    add_degraded(q, "cache");
    q->epoch = -1;
    run_plan(q);
    unref(q);
}

/* ---------------- lifecycle ---------------- */

static void qreq_free(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->prev)
        q->prev->next = q->next;
    else
        e->active = q->next;
    if (q->next)
        q->next->prev = q->prev;
    e->inflight--;
    for (size_t i = 0; i < q->nc; i++)
        hsc_candidate_clear(&q->c[i]);
    free(q->c);
    free(q->idx);
    hsc_policy_clear(&q->policy);
    hsc_strlist_clear(&q->degraded);
    hsc_buf_free(&q->canon);
    hsc_search_request_clear(q->req);
    free(q->req);
    free(q);
}

static void unref(struct qreq *q)
{
    if (--q->refs == 0) {
        if (!q->replied) {
            /* every path ends in a reply; reaching here is a bug, never a silent drop */
            hsc_log_error("search ended without a reply", "correlation_id", q->corr, NULL);
            reply_error(q, "internal", "the search ended without an answer");
        }
        qreq_free(q);
    }
}

int query_engine_search(struct query_engine *e, hsc_search_request *req, const char *correlation_id,
                        int64_t deadline_ms, query_done_fn done, void *arg, hsc_err *err)
{
    struct qreq *q = calloc(1, sizeof(*q));
    hsc_search_request *own = malloc(sizeof(*own));
    if (!q || !own) {
        free(q);
        free(own);
        return hsc_err_set(err, HSC_ENOMEM, "search: out of memory");
    }
    *own = *req;
    memset(req, 0, sizeof(*req));
    q->e = e;
    q->req = own;
    q->refs = 1;
    q->done = done;
    q->arg = arg;
    q->deadline_ms = deadline_ms;
    q->t0_us = hsc_mono_us(); /* the wait for the next turn counts in the search's time */
    q->epoch = -1;
    q->polver = -1;
    snprintf(q->corr, sizeof(q->corr), "%s", correlation_id);
    q->next = e->active;
    if (e->active)
        e->active->prev = q;
    e->active = q;
    e->inflight++;
    e->stats.requests++;
    ev_timer_init(&q->due_backends, on_due_backends, 0., 0.);
    q->due_backends.data = q;
    ev_timer_init(&q->due_final, on_due_final, 0., 0.);
    q->due_final.data = q;
    /* Started on the next loop turn, so even an answer known at once (expired,
     * no backend) reaches done after this has returned. */
    if (e->start_tail)
        e->start_tail->next_start = q;
    else
        e->start_head = q;
    e->start_tail = q;
    if (!ev_is_active(&e->start_timer)) {
        ev_timer_set(&e->start_timer, 0., 0.);
        ev_timer_start(e->loop, &e->start_timer);
    }
    return HSC_OK;
}

static void start_search(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_search_request *own = q->req;
    ev_now_update(e->loop); /* the deadline timers count from now, not the loop's last wake */
    double left = (double)(q->deadline_ms - hsc_now_ms() - e->reserve_ms) / 1000.0;
    if (left <= 0) {
        reply_error(q, "deadline", "the deadline passed before the search started");
        unref(q);
        return;
    }
    ev_timer_set(&q->due_final, left, 0.);
    ev_timer_start(e->loop, &q->due_final);
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
            add_degraded(q, "cache");
    }
    if (own->strategy == HSC_STRATEGY_CACHED_ONLY)
        reply_error(q, "cache_unavailable", "redis is not reachable");
    else
        run_plan(q);
    unref(q);
}

/* Starts what was queued before this turn; searches queued meanwhile wait for the next. */
static void on_start_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct query_engine *e = w->data;
    struct qreq *q = e->start_head;
    e->start_head = e->start_tail = NULL;
    while (q) {
        struct qreq *next = q->next_start;
        q->next_start = NULL;
        start_search(q);
        q = next;
    }
    (void)loop;
    (void)revents;
}

/* ---------------- engine ---------------- */

static void on_ensured(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct query_engine *e = arg;
    e->milvus_ensuring = 0;
    if (err && err->code != HSC_ECANCELED) {
        hsc_log_warn("milvus not ready; retrying", "error", err->msg, NULL);
        ev_timer_set(&e->ensure_timer, 2.0, 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    } else if (res) {
        hsc_log_info("milvus ready", "scope", e->scope, NULL);
    }
}

static void on_ensure_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct query_engine *e = w->data;
    hsc_err err = {0};
    (void)loop;
    (void)revents;
    if (e->milvus_ensuring || hsc_milvus_ready(e->milvus))
        return;
    e->milvus_ensuring = 1;
    if (hsc_milvus_ensure(e->milvus, on_ensured, e, &err)) {
        e->milvus_ensuring = 0;
        ev_timer_set(&e->ensure_timer, 2.0, 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    }
}

int query_engine_init(struct query_engine *e, struct ev_loop *loop, const hsc_config *cfg,
                      hsc_err *err)
{
    memset(e, 0, sizeof(*e));
    e->loop = loop;
    snprintf(e->epoch_key, sizeof(e->epoch_key), "%s", hsc_config_str(cfg, "redis.epoch_key"));
    snprintf(e->policy_prefix, sizeof(e->policy_prefix), "%s",
             hsc_config_str(cfg, "redis.policy_key_prefix"));
    snprintf(e->cache_prefix, sizeof(e->cache_prefix), "%s",
             hsc_config_str(cfg, "redis.cache_prefix"));
    snprintf(e->scope, sizeof(e->scope), "%s/%s/%s", hsc_config_str(cfg, "milvus.url"),
             hsc_config_str(cfg, "milvus.collection"), e->epoch_key);
    e->dim = (int)hsc_config_int(cfg, "milvus.dimension");
    e->overfetch = (int)hsc_config_int(cfg, "query.overfetch");
    e->history_seeds = (int)hsc_config_int(cfg, "query.history_seeds");
    e->ttl_personal_s = (int)hsc_config_int(cfg, "query.cache_ttl_personal_s");
    e->ttl_s = (int)hsc_config_int(cfg, "query.cache_ttl_s");
    e->reserve_ms = (int)hsc_config_int(cfg, "query.reserve_ms");
    e->budget_factor = hsc_config_double(cfg, "query.budget_factor");
    e->budget_min_ms = (int)hsc_config_int(cfg, "query.budget_min_ms");
    e->cooldown_s = (double)hsc_config_int(cfg, "query.down_cooldown_ms") / 1000.0;
    e->fusion = (hsc_fusion){
        .rrf = !strcmp(hsc_config_str(cfg, "query.fusion"), "rrf"),
        .rrf_k = (int)hsc_config_int(cfg, "query.rrf_k"),
        .w_vector = hsc_config_double(cfg, "query.weight_vector"),
        .w_graph = hsc_config_double(cfg, "query.weight_graph"),
        .w_policy = hsc_config_double(cfg, "query.weight_policy"),
        .history_weight = hsc_config_double(cfg, "query.history_weight"),
        .half_life_days = hsc_config_double(cfg, "query.preference_half_life_days"),
    };
    int window = (int)hsc_config_int(cfg, "query.latency_window");
    e->policies = calloc(QUERY_POLICY_SLOTS, sizeof(*e->policies));
    if (!e->policies || hsc_latency_init(&e->lat_vector, window) ||
        hsc_latency_init(&e->lat_graph, window) || hsc_latency_init(&e->lat_policy, window) ||
        hsc_latency_init(&e->lat_cache, window)) {
        query_engine_destroy(e);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    /* A search never waits on a retry: its deadline is the retry policy. */
    char schema[1024];
    struct hsc_milvus_settings ms;
    hsc_milvus_settings_load(cfg, &ms, schema, sizeof(schema));
    ms.retries = 0;
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(cfg, &ns);
    ns.retries = 0;
    int tmo = (int)hsc_config_int(cfg, "query.default_deadline_ms");
    /* the engine's timers enforce each search's budget; this only bounds abandoned calls */
    ms.timeout_ms = ns.timeout_ms = tmo > 10000 ? tmo : 10000;
    e->npg = (int)hsc_config_int(cfg, "query.pg_connections");
    e->pg = calloc((size_t)e->npg, sizeof(*e->pg));
    if (!e->pg || !(e->http = hsc_http_new(loop, err)) ||
        !(e->milvus = hsc_milvus_new(loop, e->http, &ms, err)) ||
        !(e->neo = hsc_neo4j_new(loop, e->http, &ns, err)) ||
        !(e->redis = hsc_redis_new(loop, hsc_config_str(cfg, "redis.url"),
                                   (int)hsc_config_int(cfg, "redis.timeout_ms"), err))) {
        query_engine_destroy(e);
        return err->code ? err->code : hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < e->npg; i++)
        if (!(e->pg[i] = hsc_pg_new(loop, hsc_config_str(cfg, "pg.url"),
                                    (int)hsc_config_int(cfg, "pg.query_timeout_ms"), err))) {
            query_engine_destroy(e);
            return err->code;
        }
    ev_timer_init(&e->ensure_timer, on_ensure_timer, 0., 0.);
    e->ensure_timer.data = e;
    ev_timer_start(loop, &e->ensure_timer);
    ev_timer_init(&e->start_timer, on_start_timer, 0., 0.);
    e->start_timer.data = e;
    return HSC_OK;
}

void query_engine_destroy(struct query_engine *e)
{
    if (e->loop) {
        ev_timer_stop(e->loop, &e->ensure_timer);
        ev_timer_stop(e->loop, &e->start_timer);
    }
    /* Requests still in flight are abandoned without a reply: their callers are gone. */
    while (e->start_head) {
        struct qreq *q = e->start_head;
        e->start_head = q->next_start;
        qreq_free(q);
    }
    e->start_tail = NULL;
    for (struct qreq *q = e->active; q; q = q->next) {
        ev_timer_stop(e->loop, &q->due_backends);
        ev_timer_stop(e->loop, &q->due_final);
        q->replied = 1;
    }
    hsc_http_free(e->http); /* cancels Milvus and Neo4j calls first */
    e->http = NULL;
    hsc_milvus_free(e->milvus);
    hsc_neo4j_free(e->neo);
    for (int i = 0; e->pg && i < e->npg; i++)
        hsc_pg_free(e->pg[i]);
    free(e->pg);
    hsc_redis_free(e->redis);
    for (int i = 0; e->policies && i < QUERY_POLICY_SLOTS; i++)
        hsc_policy_clear(&e->policies[i].policy);
    free(e->policies);
    hsc_latency_free(&e->lat_vector);
    hsc_latency_free(&e->lat_graph);
    hsc_latency_free(&e->lat_policy);
    hsc_latency_free(&e->lat_cache);
    memset(e, 0, sizeof(*e));
}
