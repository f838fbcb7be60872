/*
 * hsc-ingest's stage. One batch is at most three statements, each one round
 * trip and atomic on its own: the content upsert, the learning append and
 * the policy events (hsc_apply_policy_events, schemas/postgres/003). All are
 * idempotent (keyed by id+version, by user+content+kind+ts, and by
 * user+version), so retrying a batch after a failure, a crash or a rebalance
 * changes nothing that was already stored.
 *
 * A content event is forwarded to hsc.content.ingested when, after the
 * upsert, it is the stored version: new versions and exact replays are
 * forwarded (a crash between the write and the produce must not lose the
 * record downstream), older versions are not.
 *
 * One job in ~630 lines, on purpose in one file: the stage, its three
 * statements and the builders of their JSON rows, which must agree column
 * for column with the SQL a screen above them.
 */
#include "ingest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "json_list.h"
#include "log.h"
#include "normalize.h"
#include "util.h"

const char INGEST_CONTENT_SQL[] =
    "WITH input AS (\n"
    "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(\n"
    "    id text, version bigint, deleted boolean, title text, description text, kind text,\n"
    "    genres text[], themes text[], moods text[], related text[], language text,\n"
    "    year integer, maturity integer, duration_s bigint, embedding text,\n"
    "    embedding_dim integer, event_ts bigint)\n"
    "), up AS (\n"
    "  INSERT INTO content AS c (id, version, deleted, title, description, kind, genres,\n"
    "    themes, moods, related, language, year, maturity, duration_s, embedding,\n"
    "    embedding_dim, event_ts, updated_at)\n"
    "  SELECT id, version, deleted, title, description, kind, coalesce(genres, '{}'),\n"
    "    coalesce(themes, '{}'), coalesce(moods, '{}'), coalesce(related, '{}'), language,\n"
    "    year, maturity, duration_s, decode(embedding, 'hex'), embedding_dim, event_ts, now()\n"
    "  FROM input\n"
    "  ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,\n"
    "    title = excluded.title, description = excluded.description, kind = excluded.kind,\n"
    "    genres = excluded.genres, themes = excluded.themes, moods = excluded.moods,\n"
    "    related = excluded.related, language = excluded.language, year = excluded.year,\n"
    "    maturity = excluded.maturity, duration_s = excluded.duration_s,\n"
    "    embedding = excluded.embedding, embedding_dim = excluded.embedding_dim,\n"
    "    event_ts = excluded.event_ts, updated_at = now()\n"
    "  WHERE c.version < excluded.version\n"
    "     OR (c.version = excluded.version AND excluded.deleted AND NOT c.deleted)\n"
    "  RETURNING c.id\n"
    ")\n"
    "SELECT i.id,\n"
    "  (u.id IS NOT NULL OR (c.version = i.version AND c.deleted = i.deleted)) AS current\n"
    "FROM input i LEFT JOIN up u ON u.id = i.id LEFT JOIN content c ON c.id = i.id";

const char INGEST_LEARNING_SQL[] =
    "WITH input AS (\n"
    "  SELECT DISTINCT ON (user_id, content_id, kind, ts) *\n"
    "  FROM jsonb_to_recordset($1::jsonb) AS x(user_id text, content_id text, kind text,\n"
    "    value double precision, ts bigint)\n"
    "), ins AS (\n"
    "  INSERT INTO learning_events (user_id, content_id, kind, value, ts)\n"
    "  SELECT user_id, content_id, kind, value, ts FROM input\n"
    "  ON CONFLICT (user_id, content_id, kind, ts) DO NOTHING\n"
    "  RETURNING user_id, content_id, kind, value\n"
    "), deltas AS (\n"
    "  SELECT ins.user_id, t.dim, t.name, sum(hsc_learning_delta(ins.kind, ins.value)) AS d\n"
    "  FROM ins JOIN content c ON c.id = ins.content_id AND NOT c.deleted\n"
    "  CROSS JOIN LATERAL (SELECT 'genre'::text AS dim, g AS name FROM unnest(c.genres) g\n"
    "                      UNION ALL\n"
    "                      SELECT 'theme'::text, th FROM unnest(c.themes) th) t\n"
    "  GROUP BY 1, 2, 3\n"
    "), pref AS (\n"
    "  INSERT INTO user_preferences AS p (user_id, dim, name, weight)\n"
    "  SELECT user_id, dim, name, d FROM deltas\n"
    "  ON CONFLICT (user_id, dim, name) DO UPDATE SET weight = p.weight + excluded.weight\n"
    "  RETURNING 1\n"
    "), upd AS (\n"
    "  INSERT INTO user_policies AS up (user_id, version)\n"
    "  SELECT user_id, hsc_policy_first_version() FROM (SELECT DISTINCT user_id FROM ins) d\n"
    "  ON CONFLICT (user_id) DO UPDATE SET version = up.version + 1, updated_at = now()\n"
    "  RETURNING user_id, version\n"
    ")\n"
    "SELECT user_id, version, (SELECT count(*) FROM pref) AS prefs FROM upd\n"
    "UNION ALL\n"
    "SELECT p.user_id, p.version, 0 FROM user_policies p\n"
    "WHERE p.user_id IN (SELECT user_id FROM input) AND p.user_id NOT IN (SELECT user_id FROM upd)";

const char INGEST_POLICY_SQL[] =
    "SELECT r_user, r_version, r_erased, r_applied FROM hsc_apply_policy_events($1::jsonb)";

/*
 * KEYS: per user, its version key then its cache index (the set of its
 * cached result keys, kept by hsc-query). ARGV: per user, the version (""
 * when the user has no row any more) then "1" to purge its cached results.
 */
const char INGEST_POLICY_LUA[] =
    "for i = 1, #KEYS / 2 do\n"
    "  local vk, ik, v = KEYS[2 * i - 1], KEYS[2 * i], ARGV[2 * i - 1]\n"
    "  if ARGV[2 * i] == '1' then\n"
    "    local m = redis.call('SMEMBERS', ik)\n"
    "    for j = 1, #m, 500 do redis.call('DEL', unpack(m, j, math.min(j + 499, #m))) end\n"
    "    redis.call('DEL', ik)\n"
    "  end\n"
    "  if v == '' then redis.call('DEL', vk)\n"
    "  elseif tonumber(v) > tonumber(redis.call('GET', vk) or '-1') then redis.call('SET', vk, v) "
    "end\n"
    "end\n"
    "return #KEYS / 2";

/* ---------------- pure batch builders ---------------- */

static json_t *content_row(const hsc_content_event *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(ev->id));
    json_object_set_new(o, "version", json_integer(ev->version));
    json_object_set_new(o, "deleted", json_boolean(ev->op == HSC_OP_DELETE));
    if (ev->has & HSC_HAS_TS)
        json_object_set_new(o, "event_ts", json_integer(ev->ts));
    if (ev->op == HSC_OP_DELETE)
        return o; /* a tombstone keeps only its id and version */
    json_object_set_new(o, "title", json_string(ev->title));
    if (ev->description)
        json_object_set_new(o, "description", json_string(ev->description));
    if (ev->kind)
        json_object_set_new(o, "kind", json_string(ev->kind));
    json_object_set_new(o, "genres", hsc_json_strlist(&ev->genres));
    json_object_set_new(o, "themes", hsc_json_strlist(&ev->themes));
    json_object_set_new(o, "moods", hsc_json_strlist(&ev->moods));
    json_object_set_new(o, "related", hsc_json_strlist(&ev->related));
    if (ev->language)
        json_object_set_new(o, "language", json_string(ev->language));
    if (ev->has & HSC_HAS_YEAR)
        json_object_set_new(o, "year", json_integer(ev->year));
    if (ev->has & HSC_HAS_MATURITY)
        json_object_set_new(o, "maturity", json_integer(ev->maturity));
    if (ev->has & HSC_HAS_DURATION)
        json_object_set_new(o, "duration_s", json_integer(ev->duration_s));
    if (ev->embedding) {
        static const char hex[] = "0123456789abcdef";
        char *h = malloc(ev->dim * 8 + 1);
        if (h) {
            for (size_t i = 0; i < ev->dim; i++) {
                uint32_t bits;
                memcpy(&bits, &ev->embedding[i], 4);
                for (int k = 0; k < 4; k++) {
                    unsigned char byte = (unsigned char)(bits >> (8 * k));
                    h[i * 8 + (size_t)k * 2] = hex[byte >> 4];
                    h[i * 8 + (size_t)k * 2 + 1] = hex[byte & 15];
                }
            }
            h[ev->dim * 8] = '\0';
            json_object_set_new(o, "embedding", json_string(h));
            json_object_set_new(o, "embedding_dim", json_integer((json_int_t)ev->dim));
            free(h);
        }
    }
    return o;
}

char *ingest_content_rows_json(struct ingest_item *const *items, size_t n, int *winner)
{
    const hsc_content_event **evs = calloc(n ? n : 1, sizeof(*evs));
    if (!evs)
        return NULL;
    for (size_t i = 0; i < n; i++)
        evs[i] = items[i]->is_learning || items[i]->is_policy ? NULL : &items[i]->content;
    hsc_content_pick_winners(evs, n, winner);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++)
        if (winner[i])
            json_array_append_new(rows, content_row(evs[i]));
    free(evs);
    char *s = json_array_size(rows) ? json_dumps(rows, JSON_COMPACT) : NULL;
    json_decref(rows);
    return s;
}

char *ingest_learning_rows_json(struct ingest_item *const *items, size_t n)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!items[i]->is_learning)
            continue;
        const hsc_learning_event *ev = &items[i]->learning;
        json_t *o = json_object();
        json_object_set_new(o, "user_id", json_string(ev->user_id));
        json_object_set_new(o, "content_id", json_string(ev->content_id));
        json_object_set_new(o, "kind", json_string(ev->kind));
        json_object_set_new(o, "value", ev->has_value ? json_real(ev->value) : json_null());
        json_object_set_new(o, "ts", json_integer(ev->ts));
        json_array_append_new(rows, o);
    }
    char *s = json_array_size(rows) ? json_dumps(rows, JSON_COMPACT) : NULL;
    json_decref(rows);
    return s;
}

static json_t *policy_row(const hsc_policy_event *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "user_id", json_string(ev->user_id));
    json_object_set_new(o, "version", json_integer(ev->version));
    json_object_set_new(o, "op", json_string(hsc_policy_op_name(ev->op)));
    if (ev->has_ts)
        json_object_set_new(o, "ts", json_integer(ev->ts));
    if (ev->set & HSC_POLICY_EXCLUDED_GENRES)
        json_object_set_new(o, "excluded_genres", hsc_json_strlist(&ev->excluded_genres));
    if (ev->set & HSC_POLICY_MAX_MATURITY)
        json_object_set_new(o, "max_maturity", json_integer(ev->max_maturity));
    if (ev->set & HSC_POLICY_LANGUAGES)
        json_object_set_new(o, "languages", hsc_json_strlist(&ev->languages));
    if (ev->set & HSC_POLICY_BLOCKED_IDS)
        json_object_set_new(o, "blocked_ids", hsc_json_strlist(&ev->blocked_ids));
    if (ev->set & HSC_POLICY_PREFS) {
        json_t *a = json_array();
        for (size_t i = 0; i < ev->nprefs; i++)
            json_array_append_new(a, json_pack("{s:s, s:s, s:f}", "dim",
                                               ev->prefs[i].theme ? "theme" : "genre", "name",
                                               ev->prefs[i].name, "weight", ev->prefs[i].weight));
        json_object_set_new(o, "prefs", a);
    }
    if (ev->ids.n)
        json_object_set_new(o, "ids", hsc_json_strlist(&ev->ids));
    if (ev->clear) {
        json_t *a = json_array();
        for (unsigned b = 1; b <= HSC_POLICY_PREFS; b <<= 1)
            if (ev->clear & b)
                json_array_append_new(a, json_string(hsc_policy_field_name(b)));
        json_object_set_new(o, "clear", a);
    }
    return o;
}

char *ingest_policy_rows_json(struct ingest_item *const *items, size_t n)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++)
        if (items[i]->is_policy)
            json_array_append_new(rows, policy_row(&items[i]->policy));
    char *s = json_array_size(rows) ? json_dumps(rows, JSON_COMPACT) : NULL;
    json_decref(rows);
    return s;
}

/* ---------------- stage operations ---------------- */

static int ingest_decode(void *vctx, const rd_kafka_message_t *rkm, void **out, hsc_err *err)
{
    struct ingest_ctx *ctx = vctx;
    if (rkm->len > ctx->max_message_bytes)
        return hsc_err_set(err, HSC_EINVAL,
                           "message: %zu bytes is more than ingest.max_message_bytes (%zu)",
                           rkm->len, ctx->max_message_bytes);
    struct ingest_item *it = calloc(1, sizeof(*it));
    if (!it)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int rc;
    if (!strcmp(topic, ctx->learning_topic)) {
        it->is_learning = 1;
        rc = hsc_codec_decode_learning(rkm->payload, rkm->len, &it->learning, err);
    } else if (!strcmp(topic, ctx->policy_topic)) {
        it->is_policy = 1;
        rc = hsc_codec_decode_policy(rkm->payload, rkm->len, &it->policy, err);
    } else {
        rc = hsc_codec_decode_content(rkm->payload, rkm->len, &it->content, err);
        if (!rc)
            rc = hsc_normalize_content(&it->content, err);
        /* The publish time follows the title through the stages (freshness): the
         * producer's ts, else the Kafka timestamp of the message. */
        rd_kafka_timestamp_type_t tst;
        int64_t kts = rd_kafka_message_timestamp(rkm, &tst);
        if (!rc && !(it->content.has & HSC_HAS_TS) && tst != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE &&
            kts >= 0) {
            it->content.ts = kts;
            it->content.has |= HSC_HAS_TS;
        }
        if (!rc && rkm->key &&
            (rkm->key_len != strlen(it->content.id) ||
             memcmp(rkm->key, it->content.id, rkm->key_len)))
            hsc_log_debug("message key differs from its id; the id is authoritative", "id",
                          it->content.id, NULL);
    }
    if (rc) {
        hsc_content_event_clear(&it->content);
        hsc_learning_event_clear(&it->learning);
        hsc_policy_event_clear(&it->policy);
        free(it);
        return rc;
    }
    *out = it;
    return HSC_OK;
}

static void ingest_free(void *vctx, void *decoded)
{
    struct ingest_item *it = decoded;
    if (!it)
        return;
    hsc_content_event_clear(&it->content);
    hsc_learning_event_clear(&it->learning);
    hsc_policy_event_clear(&it->policy);
    free(it);
    (void)vctx;
}

/* The state of one process() call across its two statements. */
struct job {
    struct hsc_stage_job base; /* the batch, done, n; first, so the job is one block */
    struct ingest_ctx *ctx;
    struct ingest_item **items;
    int *winner;
    int *forward;
    char *learning_json;
    char *policy_json;
};

/* Frees the job's statement parameters; its arrays go with the job's one block. */
static void free_params(struct job *j)
{
    free(j->learning_json);
    free(j->policy_json);
}

static void job_finish(struct job *j, int code, const hsc_err *err)
{
    if (code == HSC_OK) {
        for (size_t i = 0; i < j->base.n; i++) {
            if (!j->forward[i])
                continue;
            char *buf;
            size_t len;
            hsc_err e = {0};
            const hsc_content_event *ev = &j->items[i]->content;
            if (hsc_codec_encode_content(ev, &buf, &len, &e) != HSC_OK) {
                code = HSC_ENOMEM;
                break;
            }
            int rc = hsc_stage_emit(j->base.b, j->ctx->ingested_topic, ev->id, strlen(ev->id), buf,
                                    len, NULL);
            free(buf);
            if (rc) {
                code = rc;
                break;
            }
        }
    }
    free_params(j);
    hsc_err e2;
    if (code != HSC_OK && !err)
        err = (hsc_err_set(&e2, code, "ingest: %s", hsc_code_name(code)), &e2);
    hsc_stage_job_end(&j->base, code, err);
}

/* Frees the n strings of v (NULL ones too) and v itself, which may be NULL. */
static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void finish_ok(struct job *j)
{
    job_finish(j, HSC_OK, NULL);
}

/*
 * The learning and policy steps: runs sql over the batch's rows (json), or
 * goes straight to next when the batch has none of them.
 */
static void run_step(struct job *j, const char *op, const char *sql, const char *json,
                     hsc_pg_fn on_done, void (*next)(struct job *))
{
    if (!json) {
        next(j);
        return;
    }
    const char *params[1] = {json};
    hsc_err err = {0};
    if (hsc_pg_query_op(j->ctx->pg, op, sql, 1, params, on_done, j, &err))
        job_finish(j, err.code, &err);
}

/*
 * The rows a step's statement returned for Redis to learn of: > 0, or 0 when
 * there is nothing to tell (no rows, no Redis) and next has run, or -1 when
 * the statement failed and the job is finished.
 */
static int committed_rows(struct job *j, PGresult *res, const hsc_err *err,
                          void (*next)(struct job *))
{
    if (!res) {
        job_finish(j, err->code, err);
        return -1;
    }
    int n = PQntuples(res);
    if (n == 0 || !j->ctx->redis) {
        next(j);
        return 0;
    }
    return n;
}

static void on_policy_redis(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct job *j = arg;
    (void)reply;
    /* Transient for the batch: a replay is ignored by version, an erase deletes nothing more. */
    job_finish(j, err ? HSC_ETRANSIENT : HSC_OK, err);
}

/*
 * Once the policy events are committed: per user touched, the version key
 * raised to the stored version (or deleted with the user), and an erased
 * user's cached results deleted, so the next search reads the new policy.
 */
static void on_policy(void *arg, PGresult *res, const hsc_err *err)
{
    struct job *j = arg;
    int n = committed_rows(j, res, err, finish_ok);
    if (n <= 0)
        return;
    size_t argc = 3 + 4 * (size_t)n;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char **owned = calloc(2 * (size_t)n, sizeof(*owned));
    char nkeys[24];
    hsc_err e = {0};
    int rc = argv && lens && owned ? HSC_OK : hsc_err_set(&e, HSC_ENOMEM, "out of memory");
    if (!rc) {
        snprintf(nkeys, sizeof(nkeys), "%d", 2 * n);
        argv[0] = "EVAL", argv[1] = INGEST_POLICY_LUA, argv[2] = nkeys;
    }
    for (int i = 0; !rc && i < n; i++) {
        const char *user = PQgetvalue(res, i, 0);
        owned[2 * i] = hsc_strcat2(j->ctx->policy_key_prefix, user);
        char idx[160];
        snprintf(idx, sizeof(idx), "%su:", j->ctx->cache_prefix);
        owned[2 * i + 1] = hsc_strcat2(idx, user);
        if (!owned[2 * i] || !owned[2 * i + 1]) {
            rc = hsc_err_set(&e, HSC_ENOMEM, "out of memory");
            break;
        }
        argv[3 + 2 * i] = owned[2 * i];
        argv[4 + 2 * i] = owned[2 * i + 1];
        argv[3 + 2 * n + 2 * i] = PQgetisnull(res, i, 1) ? "" : PQgetvalue(res, i, 1);
        argv[4 + 2 * n + 2 * i] = PQgetvalue(res, i, 2)[0] == 't' ? "1" : "0";
    }
    for (size_t i = 0; !rc && i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (!rc)
        rc = hsc_redis_command(j->ctx->redis, on_policy_redis, j, (int)argc, argv, lens, &e);
    free_strings(owned, 2 * (size_t)n);
    free(argv);
    free(lens);
    if (rc)
        job_finish(j, rc == HSC_ENOMEM ? rc : HSC_ETRANSIENT, &e);
}

static void run_policy(struct job *j)
{
    run_step(j, "policy", INGEST_POLICY_SQL, j->policy_json, on_policy, finish_ok);
}

static void on_versions(void *arg, const redisReply *reply, const hsc_err *err)
{
    struct job *j = arg;
    (void)reply;
    /* Any failure here is transient for the batch: the statement is idempotent. */
    if (err)
        job_finish(j, HSC_ETRANSIENT, err);
    else
        run_policy(j);
}

/*
 * Publishes each user's policy version to Redis once it is committed, so the
 * query cache (whose keys include it) misses from now on. A replayed batch
 * gets the stored versions back and raises them again, which is harmless.
 */
static void on_learning(void *arg, PGresult *res, const hsc_err *err)
{
    struct job *j = arg;
    int n = committed_rows(j, res, err, run_policy);
    if (n <= 0)
        return;
    char **keys = calloc((size_t)n, sizeof(*keys));
    long long *vals = calloc((size_t)n, sizeof(*vals));
    hsc_err e = {0};
    int rc = keys && vals ? HSC_OK : hsc_err_set(&e, HSC_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        keys[i] = hsc_strcat2(j->ctx->policy_key_prefix, PQgetvalue(res, i, 0));
        vals[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (!keys[i])
            rc = hsc_err_set(&e, HSC_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = hsc_redis_raise(j->ctx->redis, (const char *const *)keys, vals, (size_t)n, on_versions,
                             j, &e);
    free_strings(keys, (size_t)n);
    free(vals);
    if (rc)
        job_finish(j, rc == HSC_ENOMEM ? rc : HSC_ETRANSIENT, &e);
}

static void run_learning(struct job *j)
{
    run_step(j, "learning", INGEST_LEARNING_SQL, j->learning_json, on_learning, run_policy);
}

static void on_content(void *arg, PGresult *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_finish(j, err->code, err);
        return;
    }
    /* Rows come back per input id: forward the winners that are now current. */
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        int current = PQgetvalue(res, r, 1)[0] == 't';
        for (size_t i = 0; i < j->base.n; i++)
            if (j->winner[i] && !strcmp(j->items[i]->content.id, id))
                j->forward[i] = current;
    }
    run_learning(j);
}

static int ingest_process(void *vctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                          hsc_stage_done_fn done)
{
    struct ingest_ctx *ctx = vctx;
    struct job *j;
    const size_t size[] = {sizeof(*j->items), sizeof(*j->winner), sizeof(*j->forward)};
    void *a[3];
    if (!(j = hsc_stage_job_new(sizeof(*j), b, done, n, 3, size, a)))
        return HSC_ENOMEM;
    *j = (struct job){.base = j->base, .ctx = ctx, .items = a[0], .winner = a[1], .forward = a[2]};
    for (size_t i = 0; i < n; i++)
        j->items[i] = msgs[i]->decoded;
    j->learning_json = ingest_learning_rows_json(j->items, n);
    j->policy_json = ingest_policy_rows_json(j->items, n);
    char *content_json = ingest_content_rows_json(j->items, n, j->winner);
    if (!content_json) {
        run_learning(j);
        return HSC_OK;
    }
    const char *params[1] = {content_json};
    hsc_err err = {0};
    int rc =
        hsc_pg_query_op(ctx->pg, "content", INGEST_CONTENT_SQL, 1, params, on_content, j, &err);
    free(content_json);
    if (rc) {
        free_params(j);
        free(j);
        return rc;
    }
    return HSC_OK;
}

const struct hsc_stage_ops ingest_ops = {
    .decode = ingest_decode,
    .free_decoded = ingest_free,
    .process = ingest_process,
};

int ingest_ctx_init(struct ingest_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                    hsc_err *err)
{
    memset(ctx, 0, sizeof(*ctx));
    HSC_STRCPY(ctx->content_topic, hsc_config_topic(cfg, "topics.content_events"));
    HSC_STRCPY(ctx->learning_topic, hsc_config_topic(cfg, "topics.learning_events"));
    HSC_STRCPY(ctx->ingested_topic, hsc_config_topic(cfg, "topics.content_ingested"));
    HSC_STRCPY(ctx->policy_topic, hsc_config_topic(cfg, "topics.policy_events"));
    HSC_STRCPY(ctx->cache_prefix, hsc_config_str(cfg, "redis.cache_prefix"));
    ctx->max_message_bytes = (size_t)hsc_config_int(cfg, "ingest.max_message_bytes");
    HSC_STRCPY(ctx->policy_key_prefix, hsc_config_str(cfg, "redis.policy_key_prefix"));
    ctx->pg = hsc_pg_new(loop, hsc_config_str(cfg, "pg.url"),
                         (int)hsc_config_int(cfg, "pg.query_timeout_ms"), err);
    if (!ctx->pg)
        return err->code;
    ctx->redis = hsc_redis_new(loop, hsc_config_str(cfg, "redis.url"),
                               (int)hsc_config_int(cfg, "redis.timeout_ms"), err);
    if (!ctx->redis) {
        hsc_pg_free(ctx->pg);
        ctx->pg = NULL;
        return err->code;
    }
    return HSC_OK;
}

void ingest_ctx_destroy(struct ingest_ctx *ctx)
{
    hsc_pg_free(ctx->pg);
    hsc_redis_free(ctx->redis);
    ctx->pg = NULL;
    ctx->redis = NULL;
}
