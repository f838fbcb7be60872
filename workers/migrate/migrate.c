/*
 * hsc-migrate: the command. Reads the legacy graph a page at a time (keyset
 * on the id, so a restart needs only the last id), publishes each good title
 * to hsc.content.events and each bad one to the DLQ, and checkpoints the page
 * in PostgreSQL once Kafka has acknowledged all of it. The pipeline does the
 * storing; its writes are idempotent per id and version, so the page a crash
 * replays lands once.
 *
 * The migrator is a batch tool, so it is written as straight-line code: each
 * backend call is started on the loop and the loop is run until it answers
 * (await_*), which keeps the shared clients (and their retries) without
 * callbacks everywhere.
 */
#include <ev.h>
#include <float.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsc/codec.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "milvus.h"
#include "neo4j.h"
#include "normalize.h"
#include "pg.h"
#include "redis.h"
#include "util.h"

const char MIGRATE_USAGE[] =
    "Usage: hsc-migrate [options] [--dry-run | --verify] [--rate N] [--restart] [--json]\n"
    "Streams a legacy Neo4j catalogue (titles with embeddings, genre/theme/mood and\n"
    "related relationships) and a legacy PostgreSQL policy table into hsc. Titles go\n"
    "to the content events topic; the pipeline stores them. The mapping of the legacy\n"
    "graph comes from the migrate.* keys (docs/migration.md).\n\n"
    "  (no mode)        migrate, resuming from the checkpoint of migrate.name\n"
    "  --dry-run        read and validate everything, publish nothing; exit 1 if any\n"
    "                   title or policy cannot be migrated\n"
    "  --verify         compare the legacy catalogue with PostgreSQL, Milvus and the graph;\n"
    "                   exit 1 with a report if anything is missing or different\n"
    "  --wait SECONDS   with --verify: repeat until it passes or the time is up\n"
    "  --rate N         titles per second (0 = as fast as Kafka takes them)\n"
    "  --restart        forget the checkpoint and start from the first title\n"
    "  --json           print the report as JSON on stdout\n"
    "  --quiet          no progress line\n\n";

/* The most problems a report lists one by one (the counts are always complete). */
#define MAX_LISTED 100000

/* One run: the clients, the options and what has been counted. */
struct mig {
    struct ev_loop *loop;
    hsc_config *cfg;
    struct migrate_mapping mp;
    hsc_http *http;
    hsc_neo4j *legacy, *graph;
    hsc_milvus *milvus;
    hsc_redis *redis;
    hsc_producer *prod;
    PGconn *pg, *legacy_pg;
    const char *name, *topic, *dlq;
    char source[600];
    char *page_cypher;
    int dry_run, verify, restart, json, quiet, tty;
    double rate, wait_s;
    int page_size;
    /* what was found */
    struct migrate_problem *problems;
    size_t nproblems, cap;
    long long counts[MPK_KINDS];
    long long total, done, published, policies, resumed_from;
    long long earlier_problems; /* counted by the runs before a resume */
    /* deliveries of the current page */
    long long sent, acked, failed;
    char deliver_err[256];
    int64_t started_us, last_progress_us;
    hsc_metrics *metrics; /* when metrics.port is set */
    hsc_httpd *httpd;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

/* ---- waiting for one call on the loop ---- */

/* What an awaited call left behind. */
struct await {
    int done, code;
    char msg[512];
    json_t *rows;
    hsc_milvus_entity *ents;
    size_t nents;
};

static void await_run(struct mig *m, struct await *w)
{
    while (!w->done)
        ev_run(m->loop, EVRUN_ONCE);
}

/* Marks w answered, keeping err if there is one; returns 1 when it failed. */
static int await_answer(struct await *w, const hsc_err *err)
{
    w->done = 1;
    if (!err)
        return 0;
    w->code = err->code;
    snprintf(w->msg, sizeof(w->msg), "%s", err->msg);
    return 1;
}

static void on_neo4j(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct await *w = arg;
    if (!await_answer(w, err))
        w->rows = json_incref(res->rows);
}

/* Runs one statement and returns its rows (NULL and err on failure). */
static json_t *neo4j_rows(struct mig *m, hsc_neo4j *n, const char *cypher, json_t *params,
                          hsc_err *err)
{
    struct await w = {0};
    if (hsc_neo4j_run(n, cypher, params, on_neo4j, &w, err))
        return NULL;
    await_run(m, &w);
    if (w.code) {
        hsc_err_set(err, w.code, "neo4j: %s", w.msg);
        return NULL;
    }
    return w.rows;
}

static void on_milvus(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct await *w = arg;
    if (await_answer(w, err) || !res->nents)
        return;
    /* the result is the client's: take the vectors over */
    w->ents = calloc(res->nents, sizeof(*w->ents));
    if (!w->ents) {
        w->code = HSC_ENOMEM;
        snprintf(w->msg, sizeof(w->msg), "out of memory");
        return;
    }
    w->nents = res->nents;
    for (size_t i = 0; i < res->nents; i++) {
        w->ents[i] = res->ents[i];
        res->ents[i].vec = NULL;
    }
}

static void on_redis(void *arg, const redisReply *reply, const hsc_err *err)
{
    await_answer(arg, err);
    (void)reply;
}

static void entities_free(hsc_milvus_entity *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].vec);
    free(e);
}

/* A string list as a JSON array (a new reference). */
static json_t *strlist_array(const hsc_strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

/* A string list as compact JSON text (malloc'd), for jsonb parameters. */
static char *strlist_json(const hsc_strlist *l)
{
    json_t *a = strlist_array(l);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

/* ---- PostgreSQL (synchronous: one statement at a time is all a batch tool needs) ---- */

static PGresult *pg_exec(PGconn *c, const char *sql, int n, const char *const *params, hsc_err *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(c) != CONNECTION_OK)
            PQreset(c);
        PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return r;
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        hsc_err_set(err, state ? hsc_pg_classify(state) : HSC_ETRANSIENT, "postgresql: %s",
                    PQstatus(c) == CONNECTION_OK ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        if (PQstatus(c) == CONNECTION_OK)
            break; /* the statement failed, not the connection: no point repeating it */
    }
    char *nl = strchr(err->msg, '\n');
    if (nl)
        *nl = '\0';
    return NULL;
}

static PGconn *pg_connect(const char *url, const char *what, hsc_err *err)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        char masked[512];
        hsc_mask_secrets(url, masked, sizeof(masked));
        hsc_err_set(err, HSC_ETRANSIENT, "%s (%s): %s", what, masked, PQerrorMessage(c));
        char *nl = strchr(err->msg, '\n');
        if (nl)
            *nl = '\0';
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* ---- the report ---- */

static void add_problem(struct mig *m, const struct migrate_problem *pb)
{
    m->counts[pb->kind]++;
    if (m->nproblems == MAX_LISTED)
        return;
    if (m->nproblems == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        void *p = realloc(m->problems, cap * sizeof(*m->problems));
        if (!p)
            return;
        m->problems = p;
        m->cap = cap;
    }
    m->problems[m->nproblems++] = *pb;
}

static long long title_problems(const struct mig *m)
{
    long long n = m->earlier_problems;
    for (int k = 1; k < MPK_KINDS; k++)
        if (k != MPK_POLICY)
            n += m->counts[k];
    return n;
}

static void progress(struct mig *m, int final)
{
    int64_t now = hsc_mono_us();
    if (m->quiet || (!final && now - m->last_progress_us < 1000000))
        return;
    m->last_progress_us = now;
    double secs = (double)(now - m->started_us) / 1e6;
    long long this_run = m->done - m->resumed_from;
    double rate = secs > 0 ? (double)this_run / secs : 0;
    long long left = m->total > m->done ? m->total - m->done : 0;
    double eta = rate > 0 ? (double)left / rate : 0;
    char line[256];
    snprintf(line, sizeof(line),
             "%s: %lld/%lld titles (%.1f%%), %lld published, %lld problems, %.0f titles/s, "
             "ETA %d:%02d",
             m->dry_run ? "dry run" : "migrate", m->done, m->total,
             m->total ? 100.0 * (double)m->done / (double)m->total : 100.0, m->published,
             title_problems(m), rate, (int)(eta / 60), (int)fmod(eta, 60));
    if (m->tty) {
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    } else {
        char done[32], total[32], r[32], e[32];
        snprintf(done, sizeof(done), "%lld", m->done);
        snprintf(total, sizeof(total), "%lld", m->total);
        snprintf(r, sizeof(r), "%.1f", rate);
        snprintf(e, sizeof(e), "%.0f", eta);
        hsc_log_info("progress", "done", done, "total", total, "rate", r, "eta_s", e, NULL);
    }
}

/* ---- publishing ---- */

static void on_delivery(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct mig *m = arg;
    if (code) {
        if (!m->failed)
            snprintf(m->deliver_err, sizeof(m->deliver_err), "%s", errstr ? errstr : "failed");
        m->failed++;
    } else {
        m->acked++;
    }
    (void)rkm;
}

static int send_one(struct mig *m, const char *topic, const char *key, const void *val, size_t len,
                    rd_kafka_headers_t *h, hsc_err *err)
{
    if (hsc_producer_send(m->prod, topic, -1, key, strlen(key), val, len, h, on_delivery, m, err)) {
        rd_kafka_headers_destroy(h);
        return err->code;
    }
    m->sent++;
    return 0;
}

static rd_kafka_headers_t *base_headers(struct mig *m, const char *eid)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "hsc-migrate", -1, m->name, -1);
    rd_kafka_header_add(h, "hsc-source", -1, eid, -1);
    return h;
}

/* A title that cannot be migrated goes to the DLQ as JSON, with the reason in the headers. */
static int send_problem(struct mig *m, const struct migrate_problem *pb, const json_t *row,
                        hsc_err *err)
{
    json_t *o = json_object();
    static const char *const COLS[MIGRATE_PAGE_COLUMNS] = {
        "id",     "copies",   "eid",      "title",      "description", "kind",
        "year",   "language", "maturity", "duration_s", "version",     "embedding",
        "genres", "themes",   "moods",    "related"};
    if (json_array_size(row) == MIGRATE_PAGE_COLUMNS)
        for (size_t i = 0; i < MIGRATE_PAGE_COLUMNS; i++)
            json_object_set(o, COLS[i], json_array_get(row, i));
    else
        json_object_set_new(o, "id", json_string(pb->id));
    json_object_set_new(o, "eid", json_string(pb->eid));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    rd_kafka_headers_t *h = base_headers(m, pb->eid);
    rd_kafka_header_add(h, "hsc-stage", -1, "migrate", -1);
    rd_kafka_header_add(h, "hsc-error", -1, pb->detail, -1);
    rd_kafka_header_add(h, "hsc-error-code", -1, "invalid", -1);
    rd_kafka_header_add(h, "hsc-problem", -1, migrate_problem_name(pb->kind), -1);
    int rc = send_one(m, m->dlq, *pb->id ? pb->id : pb->eid, text, strlen(text), h, err);
    free(text);
    return rc;
}

static int send_event(struct mig *m, const hsc_content_event *ev, const char *eid, hsc_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    if (hsc_codec_encode_content(ev, &buf, &len, err))
        return err->code;
    int rc = send_one(m, m->topic, ev->id, buf, len, base_headers(m, eid), err);
    free(buf);
    return rc;
}

/* Waits for every message sent so far; an undelivered one fails the page. */
static int await_deliveries(struct mig *m, hsc_err *err)
{
    while (m->acked + m->failed < m->sent)
        ev_run(m->loop, EVRUN_ONCE);
    if (m->failed)
        return hsc_err_set(err, HSC_ETRANSIENT, "kafka: %lld messages not delivered: %s", m->failed,
                           m->deliver_err);
    return 0;
}

/* Sleeps while still serving delivery reports, and wakes early on a signal. */
static void loop_sleep(struct mig *m, double secs)
{
    int64_t until = hsc_mono_us() + (int64_t)(secs * 1e6);
    while (!g_stop && hsc_mono_us() < until) {
        ev_run(m->loop, EVRUN_NOWAIT);
        int64_t left = until - hsc_mono_us();
        if (left > 0)
            usleep((useconds_t)(left < 20000 ? left : 20000));
    }
}

/* ---- checkpoint ---- */

struct checkpoint {
    int exists, finished;
    char after[HSC_MAX_ID_LEN + 32];
    long long published, problems;
    char source[600];
};

static int checkpoint_load(struct mig *m, struct checkpoint *c, hsc_err *err)
{
    memset(c, 0, sizeof(*c));
    const char *p[] = {m->name};
    PGresult *r = pg_exec(m->pg,
                          "SELECT after_id, published, problems, finished_at IS NOT NULL, source"
                          " FROM migrate_checkpoints WHERE name = $1",
                          1, p, err);
    if (!r)
        return err->code;
    if (PQntuples(r)) {
        c->exists = 1;
        snprintf(c->after, sizeof(c->after), "%s", PQgetvalue(r, 0, 0));
        c->published = atoll(PQgetvalue(r, 0, 1));
        c->problems = atoll(PQgetvalue(r, 0, 2));
        c->finished = PQgetvalue(r, 0, 3)[0] == 't';
        snprintf(c->source, sizeof(c->source), "%s", PQgetvalue(r, 0, 4));
    }
    PQclear(r);
    return 0;
}

static int checkpoint_save(struct mig *m, const char *after, int finished, hsc_err *err)
{
    char pub[32], prob[32], total[32], pol[32];
    snprintf(pub, sizeof(pub), "%lld", m->published);
    snprintf(prob, sizeof(prob), "%lld", title_problems(m));
    snprintf(total, sizeof(total), "%lld", m->total);
    snprintf(pol, sizeof(pol), "%lld", m->policies);
    const char *p[] = {m->name, m->source, after, pub, prob, total, pol, finished ? "t" : "f"};
    PGresult *r = pg_exec(
        m->pg,
        "INSERT INTO migrate_checkpoints AS c (name, source, after_id, published, problems, total,"
        " policies, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " CASE WHEN $8::boolean THEN now() END)"
        " ON CONFLICT (name) DO UPDATE SET source = $2, after_id = $3, published = $4,"
        " problems = $5, total = $6, policies = $7, updated_at = now(),"
        " finished_at = CASE WHEN $8::boolean THEN now() END",
        8, p, err);
    if (!r)
        return err->code;
    PQclear(r);
    return 0;
}

static int checkpoint_reset(struct mig *m, hsc_err *err)
{
    const char *p[] = {m->name};
    PGresult *r = pg_exec(m->pg, "DELETE FROM migrate_checkpoints WHERE name = $1", 1, p, err);
    if (!r)
        return err->code;
    PQclear(r);
    return 0;
}

/* ---- reading the legacy graph ---- */

static json_t *after_value(const struct mig *m, const char *after)
{
    if (!m->mp.id_integer)
        return json_string(after);
    long long v;
    if (!*after || hsc_parse_ll(after, &v))
        return json_integer(INT64_MIN);
    return json_integer(v);
}

static json_t *read_page(struct mig *m, const char *after, hsc_err *err)
{
    json_t *params = json_object();
    json_object_set_new(params, "after", after_value(m, after));
    json_object_set_new(params, "limit", json_integer(m->page_size));
    return neo4j_rows(m, m->legacy, m->page_cypher, params, err);
}

static long long count_titles(struct mig *m, hsc_err *err)
{
    char *q = migrate_count_cypher(&m->mp);
    json_t *rows = neo4j_rows(m, m->legacy, q, NULL, err);
    free(q);
    if (!rows)
        return -1;
    long long n = json_integer_value(json_array_get(json_array_get(rows, 0), 0));
    json_decref(rows);
    return n;
}

/* Nodes the keyset cannot reach (no id, or one of the wrong type) are problems too. */
static int scan_bad_ids(struct mig *m, int publish, hsc_err *err)
{
    char *q = migrate_bad_id_cypher(&m->mp);
    json_t *rows = neo4j_rows(m, m->legacy, q, NULL, err);
    free(q);
    if (!rows)
        return err->code;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach (rows, i, row) {
        struct migrate_problem pb = {.kind = MPK_BAD_ID};
        const json_t *eid = json_array_get(row, 0), *id = json_array_get(row, 1);
        snprintf(pb.eid, sizeof(pb.eid), "%s",
                 json_string_value(eid) ? json_string_value(eid) : "");
        snprintf(pb.id, sizeof(pb.id), "%s", json_is_string(id) ? json_string_value(id) : "");
        snprintf(pb.detail, sizeof(pb.detail), "id (property %s): %s", m->mp.id_prop,
                 json_is_null(id)   ? "missing"
                 : m->mp.id_integer ? "not an integer"
                 : *pb.id           ? "not a string"
                                    : "empty");
        add_problem(m, &pb);
        m->done++;
        if (publish && (rc = send_problem(m, &pb, NULL, err)))
            break;
    }
    json_decref(rows);
    return rc;
}

static int ensure_index(struct mig *m, hsc_err *err)
{
    if (!hsc_config_bool(m->cfg, "migrate.create_index"))
        return 0;
    char q[512];
    snprintf(q, sizeof(q), "CREATE INDEX hsc_migrate_%s_%s IF NOT EXISTS FOR (n:`%s`) ON (n.`%s`)",
             m->mp.label, m->mp.id_prop, m->mp.label, m->mp.id_prop);
    json_t *rows = neo4j_rows(m, m->legacy, q, NULL, err);
    json_decref(rows);
    return rows ? 0 : err->code;
}

/* ---- policies ---- */

static int write_policies(struct mig *m, const struct migrate_policy *pols, size_t n, hsc_err *err)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr,
            json_pack("{s:s, s:o, s:o, s:o}", "user_id", pols[i].user_id, "excluded",
                      strlist_array(&pols[i].excluded), "languages",
                      strlist_array(&pols[i].languages), "max_maturity",
                      pols[i].max_maturity < 0 ? json_null() : json_integer(pols[i].max_maturity)));
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    const char *p[] = {text};
    /* Unchanged policies keep their version: a re-run invalidates no cache. */
    PGresult *r = pg_exec(
        m->pg,
        "WITH x AS (SELECT x.user_id,"
        "   ARRAY(SELECT jsonb_array_elements_text(x.excluded)) AS excluded_genres,"
        "   x.max_maturity,"
        "   ARRAY(SELECT jsonb_array_elements_text(x.languages)) AS languages"
        "   FROM jsonb_to_recordset($1::jsonb) AS x(user_id text, excluded jsonb,"
        "        max_maturity int, languages jsonb))"
        " INSERT INTO user_policies AS p (user_id, excluded_genres, max_maturity, languages)"
        " SELECT user_id, excluded_genres, max_maturity, languages FROM x"
        " ON CONFLICT (user_id) DO UPDATE SET excluded_genres = excluded.excluded_genres,"
        "   max_maturity = excluded.max_maturity, languages = excluded.languages,"
        "   version = p.version + 1, updated_at = now()"
        " WHERE (p.excluded_genres, p.max_maturity, p.languages) IS DISTINCT FROM"
        "   (excluded.excluded_genres, excluded.max_maturity, excluded.languages)"
        " RETURNING user_id, version",
        1, p, err);
    free(text);
    if (!r)
        return err->code;
    int rows = PQntuples(r), rc = 0;
    if (rows > 0 && m->redis) {
        /* Searches cache a policy by its version: publish the new ones. */
        const char *prefix = hsc_config_str(m->cfg, "redis.policy_key_prefix");
        char **keys = calloc((size_t)rows, sizeof(char *));
        long long *vals = calloc((size_t)rows, sizeof(long long));
        for (int i = 0; keys && vals && i < rows; i++) {
            keys[i] = hsc_strcat2(prefix, PQgetvalue(r, i, 0));
            vals[i] = atoll(PQgetvalue(r, i, 1));
        }
        struct await w = {0};
        if (!keys || !vals)
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
        else if (!(rc = hsc_redis_raise(m->redis, (const char *const *)keys, vals, (size_t)rows,
                                        on_redis, &w, err))) {
            await_run(m, &w);
            if (w.code)
                rc = hsc_err_set(err, w.code, "redis: %s", w.msg);
        }
        for (int i = 0; keys && i < rows; i++)
            free(keys[i]);
        free(keys);
        free(vals);
    }
    PQclear(r);
    return rc;
}

/* What is done with each page of good legacy policies. */
typedef int (*policy_page_fn)(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                              hsc_err *err);

/*
 * Reads the legacy policy table a page at a time (keyset on the user column),
 * reports the rows that cannot be migrated, and hands the good ones to fn.
 */
static int each_policy_page(struct mig *m, policy_page_fn fn, void *arg, hsc_err *err)
{
    if (!*m->mp.policy_table)
        return 0;
    char *sql = migrate_policy_sql(&m->mp);
    char after[HSC_MAX_ID_LEN + 1] = "";
    int rc = 0;
    for (;;) {
        const char *p[] = {after, "1000"};
        PGresult *r = pg_exec(m->legacy_pg, sql, 2, p, err);
        if (!r) {
            hsc_err_prefix(err, "legacy policies (migrate.policy_table %s)", m->mp.policy_table);
            rc = err->code;
            break;
        }
        int n = PQntuples(r);
        struct migrate_policy *pols = calloc((size_t)(n ? n : 1), sizeof(*pols));
        size_t good = 0;
        for (int i = 0; pols && i < n; i++) {
            struct migrate_problem pb;
            const char *cols[4];
            for (int c = 0; c < 4; c++)
                cols[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
            if (migrate_policy_from_row(&m->mp, cols[0], cols[1], cols[2], cols[3], &pols[good],
                                        &pb))
                add_problem(m, &pb);
            else
                good++;
        }
        if (n)
            snprintf(after, sizeof(after), "%s", PQgetvalue(r, n - 1, 0));
        PQclear(r);
        if (!pols)
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
        else if (good)
            rc = fn(m, pols, good, arg, err);
        for (size_t i = 0; i < good; i++)
            migrate_policy_clear(&pols[i]);
        free(pols);
        if (rc || n < 1000)
            break;
    }
    free(sql);
    return rc;
}

static int store_policies(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                          hsc_err *err)
{
    int write = *(int *)arg;
    int rc = write ? write_policies(m, pols, n, err) : 0;
    if (!rc)
        m->policies += (long long)n;
    return rc;
}

/* Migrates the legacy policies (with write; a dry run only validates and counts them). */
static int do_policies(struct mig *m, int write, hsc_err *err)
{
    return each_policy_page(m, store_policies, &write, err);
}

/* ---- the run ---- */

/* Reads every page after `after`; publishes unless dry. */
static int run_pages(struct mig *m, char *after, size_t after_cap, hsc_err *err)
{
    for (;;) {
        if (g_stop)
            return hsc_err_set(err, HSC_ECANCELED, "stopped by signal %d after id '%s'",
                               (int)g_stop, after);
        int64_t t_read = hsc_mono_us();
        json_t *rows = read_page(m, after, err);
        if (!rows)
            return err->code;
        size_t n = json_array_size(rows);
        if (!n) {
            json_decref(rows);
            return 0;
        }
        int64_t t_send = hsc_mono_us();
        long long pub = 0;
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            json_t *row = json_array_get(rows, i);
            hsc_content_event ev;
            struct migrate_problem pb;
            if (migrate_row_to_event(&m->mp, row, &ev, &pb)) {
                add_problem(m, &pb);
                if (!m->dry_run)
                    rc = send_problem(m, &pb, row, err);
            } else {
                if (!m->dry_run)
                    rc = send_event(m, &ev, pb.eid, err);
                pub++;
                hsc_content_event_clear(&ev);
                if (!rc && m->rate > 0 && !m->dry_run) {
                    /* pace by titles sent since start, so pauses are made up smoothly */
                    double due = (double)(m->published + pub - m->resumed_from) / m->rate;
                    double now = (double)(hsc_mono_us() - m->started_us) / 1e6;
                    if (due > now)
                        loop_sleep(m, due - now);
                }
            }
            m->done++;
            ev_run(m->loop, EVRUN_NOWAIT);
        }
        migrate_row_id(json_array_get(rows, n - 1), after, after_cap);
        json_decref(rows);
        int64_t t_ack = hsc_mono_us();
        if (!rc && !m->dry_run)
            rc = await_deliveries(m, err);
        if (rc)
            return rc;
        m->published += pub;
        int64_t t_ckpt = hsc_mono_us();
        if (!m->dry_run && (rc = checkpoint_save(m, after, 0, err)))
            return rc;
        if (hsc_log_enabled(HSC_LOG_DEBUG)) {
            /* where a page's time goes, to tell a slow source from a slow broker */
            char rows_s[24], rd[24], sd[24], ak[24], ck[24];
            int64_t end = hsc_mono_us();
            snprintf(rows_s, sizeof(rows_s), "%zu", n);
            snprintf(rd, sizeof(rd), "%.1f", (double)(t_send - t_read) / 1000.0);
            snprintf(sd, sizeof(sd), "%.1f", (double)(t_ack - t_send) / 1000.0);
            snprintf(ak, sizeof(ak), "%.1f", (double)(t_ckpt - t_ack) / 1000.0);
            snprintf(ck, sizeof(ck), "%.1f", (double)(end - t_ckpt) / 1000.0);
            hsc_log_debug("page", "rows", rows_s, "after", after, "read_ms", rd, "send_ms", sd,
                          "ack_ms", ak, "checkpoint_ms", ck, NULL);
        }
        progress(m, 0);
    }
}

static void print_problems(const struct mig *m, FILE *f)
{
    for (size_t i = 0; i < m->nproblems; i++)
        fprintf(f, "  %-16s %-24s %s  [%s]\n", migrate_problem_name(m->problems[i].kind),
                m->problems[i].id[0] ? m->problems[i].id : "-", m->problems[i].detail,
                m->problems[i].eid);
}

static json_t *problems_json(const struct mig *m)
{
    json_t *counts = json_object(), *list = json_array();
    for (int k = 1; k < MPK_KINDS; k++)
        json_object_set_new(counts, migrate_problem_name(k), json_integer(m->counts[k]));
    for (size_t i = 0; i < m->nproblems; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "kind",
                                              migrate_problem_name(m->problems[i].kind), "id",
                                              m->problems[i].id, "eid", m->problems[i].eid,
                                              "detail", m->problems[i].detail));
    return json_pack("{s:o, s:o}", "counts", counts, "list", list);
}

static int report_run(struct mig *m, int status, const hsc_err *why)
{
    double secs = (double)(hsc_mono_us() - m->started_us) / 1e6;
    long long tp = title_problems(m);
    if (m->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:b}", "mode",
            m->dry_run ? "dry_run" : "migrate", "source", m->source, "titles", (json_int_t)m->total,
            "migratable", (json_int_t)(m->total - tp), "published", (json_int_t)m->published,
            "policies", (json_int_t)m->policies, "resumed_from", (json_int_t)m->resumed_from,
            "seconds", secs, "problems", problems_json(m), "complete", status == 0);
        if (why && why->code)
            json_object_set_new(o, "error", json_string(why->msg));
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %s\n", m->dry_run ? "dry run" : "migration", m->source);
        printf("  titles        %lld\n  migratable    %lld\n", m->total, m->total - tp);
        if (!m->dry_run)
            printf("  published     %lld (this run %lld titles in %.1f s, %.0f titles/s)\n",
                   m->published, m->done - m->resumed_from, secs,
                   secs > 0 ? (double)(m->done - m->resumed_from) / secs : 0);
        printf("  problems      %lld\n", tp);
        if (m->earlier_problems)
            printf("    %-16s %lld (sent to the DLQ then)\n", "earlier runs", m->earlier_problems);
        for (int k = 1; k < MPK_KINDS; k++)
            if (k != MPK_POLICY && m->counts[k])
                printf("    %-16s %lld\n", migrate_problem_name(k), m->counts[k]);
        if (*m->mp.policy_table)
            printf("  policies      %lld (%lld problems)\n", m->policies, m->counts[MPK_POLICY]);
        if (m->nproblems) {
            printf("problems%s:\n", m->dry_run ? "" : " (sent to the DLQ)");
            print_problems(m, stdout);
        }
        if (why && why->code)
            printf("stopped: %s\n", why->msg);
    }
    return status;
}

static int do_migrate(struct mig *m)
{
    hsc_err err = {0};
    struct checkpoint c = {0};
    char after[HSC_MAX_ID_LEN + 32] = "";
    int rc;
    if (!m->dry_run) {
        if (m->restart && (rc = checkpoint_reset(m, &err)))
            goto out;
        if ((rc = checkpoint_load(m, &c, &err)))
            goto out;
        if (c.exists && strcmp(c.source, m->source)) {
            rc = hsc_err_set(&err, HSC_ECONFIG,
                             "checkpoint '%s' was made for %s; this run reads %s (use --restart "
                             "or another migrate.name)",
                             m->name, c.source, m->source);
            goto out;
        }
        if (c.finished) {
            fprintf(stderr,
                    "migration '%s' is already complete (%lld published); --verify checks it, "
                    "--restart runs it again\n",
                    m->name, c.published);
            return 0;
        }
        snprintf(after, sizeof(after), "%s", c.after);
        m->published = c.published;
    }
    if ((rc = ensure_index(m, &err)))
        goto out;
    if ((m->total = count_titles(m, &err)) < 0) {
        rc = err.code;
        goto out;
    }
    /* On a resume the unreachable nodes were reported by the first run. */
    int fresh = !c.exists || !*c.after;
    if (fresh) {
        if ((rc = scan_bad_ids(m, !m->dry_run, &err)))
            goto out;
    } else {
        m->done = c.published + c.problems;
        m->resumed_from = m->done;
        m->earlier_problems = c.problems;
    }
    if ((rc = do_policies(m, !m->dry_run, &err)))
        goto out;
    if (!m->dry_run && (rc = checkpoint_save(m, after, 0, &err)))
        goto out;
    m->started_us = hsc_mono_us();
    if ((rc = run_pages(m, after, sizeof(after), &err)))
        goto out;
    if (!m->dry_run && (rc = checkpoint_save(m, after, 1, &err)))
        goto out;
out:
    progress(m, 1);
    if (rc)
        hsc_log_error(m->dry_run ? "dry run failed" : "migration stopped", "error", err.msg,
                      "after", after, NULL);
    int status = rc ? (rc == HSC_ECONFIG ? 2 : 3)
                    : (m->dry_run && title_problems(m) + m->counts[MPK_POLICY] ? 1 : 0);
    return report_run(m, status, &err);
}

/* ---- verify ---- */

/* What --verify found. */
struct vreport {
    long long titles, migratable, pg_present, milvus_present, graph_present, changed;
    long long compared, vec_bad, rels, rels_missing, pol_total, pol_ok;
    double max_diff;
    json_t *missing_pg, *missing_milvus, *missing_graph, *bad_vectors, *missing_rels, *bad_policies;
};

static void vlist_add(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vlist_add(json_t *list, const char *fmt, ...)
{
    if (json_array_size(list) >= 50)
        return;
    char buf[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_string(buf));
}

static int strlist_has(const json_t *list, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach (list, i, x)
        if (json_is_string(x) && !strcmp(json_string_value(x), s))
            return 1;
    return 0;
}

/* Checks one page of migratable titles against the three stores. */
static int verify_page(struct mig *m, hsc_content_event *evs, size_t n, struct vreport *v,
                       hsc_err *err)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(evs[i].id));
    char *ids_text = json_dumps(ids, JSON_COMPACT);
    /* PostgreSQL: present at the legacy version or a later one */
    const char *p[] = {ids_text};
    PGresult *r = pg_exec(m->pg,
                          "SELECT id, version, deleted FROM content"
                          " WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
                          1, p, err);
    free(ids_text);
    if (!r) {
        json_decref(ids);
        return err->code;
    }
    json_t *pgv = json_object(); /* id -> version, or -1 when deleted */
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(
            pgv, PQgetvalue(r, i, 0),
            json_integer(PQgetvalue(r, i, 2)[0] == 't' ? -1 : atoll(PQgetvalue(r, i, 1))));
    PQclear(r);
    char *changed = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        json_t *ver = json_object_get(pgv, evs[i].id);
        long long pv = ver ? json_integer_value(ver) : -2;
        if (pv >= evs[i].version) {
            v->pg_present++;
            if (pv > evs[i].version) {
                changed[i] = 1;
                v->changed++;
            }
        } else {
            vlist_add(v->missing_pg, "%s (%s)", evs[i].id,
                      pv == -2   ? "no row"
                      : pv == -1 ? "deleted"
                                 : "older version");
        }
    }
    json_decref(pgv);
    /* Milvus: every id, and the vectors of a sample */
    long long step = m->total / (hsc_config_int(m->cfg, "migrate.verify_sample") + 1) + 1;
    const char **idv = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        idv[i] = evs[i].id;
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += 100) {
        size_t cnt = n - off < 100 ? n - off : 100;
        int want_vec = 0;
        for (size_t i = off; i < off + cnt; i++)
            if (!changed[i] && (v->migratable + (long long)i) % step == 0)
                want_vec = 1;
        struct await w = {0};
        if ((rc = hsc_milvus_get(m->milvus, idv + off, cnt, want_vec, on_milvus, &w, err)))
            break;
        await_run(m, &w);
        if (w.code) {
            rc = hsc_err_set(err, w.code, "milvus: %s", w.msg);
            entities_free(w.ents, w.nents);
            break;
        }
        for (size_t i = off; i < off + cnt; i++) {
            const hsc_milvus_entity *e = NULL;
            for (size_t j = 0; j < w.nents && !e; j++)
                if (!strcmp(w.ents[j].id, evs[i].id))
                    e = &w.ents[j];
            if (!e) {
                vlist_add(v->missing_milvus, "%s", evs[i].id);
                continue;
            }
            v->milvus_present++;
            if (!want_vec || changed[i] || (v->migratable + (long long)i) % step)
                continue;
            v->compared++;
            int bad = !e->vec || e->dim != evs[i].dim;
            for (size_t k = 0; !bad && k < e->dim; k++) {
                double d = fabs((double)e->vec[k] - (double)evs[i].embedding[k]);
                if (d > v->max_diff)
                    v->max_diff = d;
                /* float32 round trip through JSON: a few ulps at most */
                if (d > 4 * FLT_EPSILON * fmax(1.0, fabs((double)evs[i].embedding[k])))
                    bad = 1;
            }
            if (bad) {
                v->vec_bad++;
                vlist_add(v->bad_vectors, "%s", evs[i].id);
            }
        }
        entities_free(w.ents, w.nents);
    }
    free(idv);
    /* the graph: the node, and every legacy relationship (the pipeline may add more) */
    json_t *rows = NULL;
    if (!rc) {
        static const char Q[] =
            "UNWIND $ids AS id OPTIONAL MATCH (c:Content {id: id}) WHERE c.stub IS NULL\n"
            "RETURN id, c IS NOT NULL, [(c)-[:BELONGS_TO]->(x) | x.name],\n"
            "  [(c)-[:HAS_THEME]->(x) | x.name], [(c)-[:HAS_MOOD]->(x) | x.name],\n"
            "  [(c)-[:RELATED_TO]->(x) | x.id]";
        rows = neo4j_rows(m, m->graph, Q, json_pack("{s:O}", "ids", ids), err);
        if (!rows)
            rc = err->code;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *row = json_array_get(rows, i);
        if (!json_is_true(json_array_get(row, 1))) {
            vlist_add(v->missing_graph, "%s", evs[i].id);
            continue;
        }
        v->graph_present++;
        if (changed[i])
            continue;
        const hsc_strlist *lists[4] = {&evs[i].genres, &evs[i].themes, &evs[i].moods,
                                       &evs[i].related};
        static const char *const WHAT[4] = {"genre", "theme", "mood", "related"};
        for (int l = 0; l < 4; l++)
            for (size_t k = 0; k < lists[l]->n; k++) {
                char name[HSC_MAX_TAG_LEN + HSC_MAX_ID_LEN + 2];
                snprintf(name, sizeof(name), "%s", lists[l]->v[k]);
                if (l < 3)
                    hsc_normalize_tag(name);
                else
                    hsc_trim(name);
                if (!*name || (l == 3 && !strcmp(name, evs[i].id)))
                    continue;
                v->rels++;
                if (!strlist_has(json_array_get(row, 2 + l), name)) {
                    v->rels_missing++;
                    vlist_add(v->missing_rels, "%s -%s-> %s", evs[i].id, WHAT[l], name);
                }
            }
    }
    json_decref(rows);
    json_decref(ids);
    free(changed);
    return rc;
}

static int compare_policies(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                            hsc_err *err)
{
    struct vreport *v = arg;
    for (size_t i = 0; i < n; i++) {
        v->pol_total++;
        char *ex = strlist_json(&pols[i].excluded), *la = strlist_json(&pols[i].languages);
        char mat[16];
        snprintf(mat, sizeof(mat), "%d", pols[i].max_maturity);
        const char *q[] = {pols[i].user_id, ex, mat, la};
        PGresult *r =
            pg_exec(m->pg,
                    "SELECT count(*) FROM user_policies WHERE user_id = $1"
                    " AND excluded_genres = ARRAY(SELECT jsonb_array_elements_text($2::jsonb))"
                    " AND max_maturity IS NOT DISTINCT FROM nullif($3::int, -1)"
                    " AND languages = ARRAY(SELECT jsonb_array_elements_text($4::jsonb))",
                    4, q, err);
        free(ex);
        free(la);
        if (!r)
            return err->code;
        if (atoll(PQgetvalue(r, 0, 0)) == 1)
            v->pol_ok++;
        else
            vlist_add(v->bad_policies, "%s", pols[i].user_id);
        PQclear(r);
    }
    return 0;
}

/* Every good legacy policy equals its user_policies row (bad ones were never migrated). */
static int verify_policies(struct mig *m, struct vreport *v, hsc_err *err)
{
    return each_policy_page(m, compare_policies, v, err);
}

static void vreport_free(struct vreport *v)
{
    json_decref(v->missing_pg);
    json_decref(v->missing_milvus);
    json_decref(v->missing_graph);
    json_decref(v->bad_vectors);
    json_decref(v->missing_rels);
    json_decref(v->bad_policies);
    memset(v, 0, sizeof(*v));
}

static void vreport_clear(struct vreport *v)
{
    vreport_free(v);
    v->missing_pg = json_array();
    v->missing_milvus = json_array();
    v->missing_graph = json_array();
    v->bad_vectors = json_array();
    v->missing_rels = json_array();
    v->bad_policies = json_array();
}

static int verify_once(struct mig *m, struct vreport *v, hsc_err *err)
{
    vreport_clear(v);
    memset(m->counts, 0, sizeof(m->counts));
    m->nproblems = 0;
    m->done = 0;
    if ((m->total = count_titles(m, err)) < 0)
        return err->code;
    v->titles = m->total;
    char after[HSC_MAX_ID_LEN + 32] = "";
    int rc = 0;
    while (!rc) {
        json_t *rows = read_page(m, after, err);
        if (!rows) {
            rc = err->code;
            break;
        }
        size_t n = json_array_size(rows), good = 0;
        hsc_content_event *evs = n ? calloc(n, sizeof(*evs)) : NULL;
        if (!evs) {
            json_decref(rows);
            if (n)
                rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            struct migrate_problem pb;
            if (!migrate_row_to_event(&m->mp, json_array_get(rows, i), &evs[good], &pb))
                good++;
        }
        migrate_row_id(json_array_get(rows, n - 1), after, sizeof(after));
        json_decref(rows);
        rc = verify_page(m, evs, good, v, err);
        v->migratable += (long long)good;
        for (size_t i = 0; i < good; i++)
            hsc_content_event_clear(&evs[i]);
        free(evs);
        m->done += (long long)n;
        progress(m, 0);
    }
    if (!rc)
        rc = verify_policies(m, v, err);
    return rc;
}

static int verify_ok(const struct vreport *v)
{
    return v->pg_present == v->migratable && v->milvus_present == v->migratable &&
           v->graph_present == v->migratable && !v->vec_bad && !v->rels_missing &&
           v->pol_ok == v->pol_total;
}

static void print_list(const char *what, const json_t *list)
{
    if (!json_array_size(list))
        return;
    printf("  %s:", what);
    size_t i;
    json_t *x;
    json_array_foreach (list, i, x)
        printf("%s %s", i ? "," : "", json_string_value(x));
    printf("%s\n", json_array_size(list) >= 50 ? ", ..." : "");
}

static int report_verify(struct mig *m, const struct vreport *v, int rc, const hsc_err *err,
                         double secs)
{
    int ok = !rc && verify_ok(v);
    if (m->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, "
            "s:I}",
            "mode", "verify", "source", m->source, "ok", ok, "seconds", secs, "titles",
            (json_int_t)v->titles, "migratable", (json_int_t)v->migratable, "postgresql",
            (json_int_t)v->pg_present, "milvus", (json_int_t)v->milvus_present, "graph",
            (json_int_t)v->graph_present, "changed_since", (json_int_t)v->changed,
            "embeddings_compared", (json_int_t)v->compared, "embeddings_different",
            (json_int_t)v->vec_bad, "max_difference", v->max_diff, "relationships",
            (json_int_t)v->rels, "relationships_missing", (json_int_t)v->rels_missing, "policies",
            (json_int_t)v->pol_total, "policies_matching", (json_int_t)v->pol_ok);
        json_object_set(o, "missing_postgresql", v->missing_pg);
        json_object_set(o, "missing_milvus", v->missing_milvus);
        json_object_set(o, "missing_graph", v->missing_graph);
        json_object_set(o, "different_embeddings", v->bad_vectors);
        json_object_set(o, "missing_relationships", v->missing_rels);
        json_object_set(o, "different_policies", v->bad_policies);
        if (rc)
            json_object_set_new(o, "error", json_string(err->msg));
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
        return ok ? 0 : rc ? 3 : 1;
    }
    printf("verify: %s\n", m->source);
    printf("  legacy       %lld titles, %lld migratable\n", v->titles, v->migratable);
    printf("  postgresql   %lld/%lld present%s\n", v->pg_present, v->migratable,
           v->changed ? " (some changed since; not compared)" : "");
    printf("  milvus       %lld/%lld present; %lld embeddings compared, %lld different "
           "(largest difference %.3g)\n",
           v->milvus_present, v->migratable, v->compared, v->vec_bad, v->max_diff);
    printf("  graph        %lld/%lld present; %lld/%lld relationships\n", v->graph_present,
           v->migratable, v->rels - v->rels_missing, v->rels);
    if (*m->mp.policy_table)
        printf("  policies     %lld/%lld match\n", v->pol_ok, v->pol_total);
    print_list("missing in postgresql", v->missing_pg);
    print_list("missing in milvus", v->missing_milvus);
    print_list("missing in the graph", v->missing_graph);
    print_list("different embeddings", v->bad_vectors);
    print_list("missing relationships", v->missing_rels);
    print_list("different policies", v->bad_policies);
    if (rc)
        printf("ERROR: %s\n", err->msg);
    else
        printf("%s\n",
               ok ? "OK: every migratable title and policy is in hsc" : "INCOMPLETE: see above");
    return ok ? 0 : rc ? 3 : 1;
}

static int do_verify(struct mig *m)
{
    struct vreport v = {0};
    hsc_err err = {0};
    int rc;
    struct await w = {0};
    if ((rc = hsc_milvus_ensure(m->milvus, on_milvus, &w, &err)) == 0) {
        await_run(m, &w);
        if (w.code)
            rc = hsc_err_set(&err, w.code, "milvus: %s", w.msg);
    }
    int64_t start = hsc_mono_us();
    int64_t deadline = start + (int64_t)(m->wait_s * 1e6);
    for (;;) {
        m->started_us = hsc_mono_us();
        if (!rc)
            rc = verify_once(m, &v, &err);
        if ((!rc && verify_ok(&v)) || hsc_mono_us() >= deadline || g_stop || rc == HSC_ECONFIG)
            break;
        rc = 0;
        hsc_err_clear(&err);
        loop_sleep(m, 2.0);
    }
    if (m->tty && !m->quiet)
        fputc('\n', stderr);
    int status = report_verify(m, &v, rc, &err, (double)(hsc_mono_us() - start) / 1e6);
    vreport_free(&v);
    return status;
}

/* ---- metrics: a long migration is watched like any worker ---- */

static void metrics_refresh(void *arg, hsc_metrics *mx)
{
    struct mig *m = arg;
    const char *mode = m->verify    ? "mode=\"verify\""
                       : m->dry_run ? "mode=\"dry_run\""
                                    : "mode=\"migrate\"";
    hsc_metrics_set(mx, "hsc_migrate_titles", mode, (double)m->total);
    hsc_metrics_set(mx, "hsc_migrate_done_titles", mode, (double)m->done);
    hsc_metrics_count(mx, "hsc_migrate_published_total", mode, (double)m->published);
    hsc_metrics_count(mx, "hsc_migrate_problems_total", mode, (double)title_problems(m));
    hsc_metrics_count(mx, "hsc_migrate_policies_total", mode, (double)m->policies);
}

static int metrics_ready(void *arg, char *why, size_t cap)
{
    (void)arg;
    if (g_stop)
        return snprintf(why, cap, "stopping"), 0;
    return 1;
}

/* ---- setup ---- */

static int parse_args(struct mig *m, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run"))
            m->dry_run = 1;
        else if (!strcmp(a, "--verify"))
            m->verify = 1;
        else if (!strcmp(a, "--restart"))
            m->restart = 1;
        else if (!strcmp(a, "--json"))
            m->json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            m->quiet = 1;
        else if ((!strcmp(a, "--rate") || !strcmp(a, "--wait")) && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || v < 0 || !isfinite(v)) {
                fprintf(stderr, "%s: %s: '%s' is not a number >= 0\n", argv[0], a, argv[i]);
                return 2;
            }
            if (a[2] == 'r')
                m->rate = v;
            else
                m->wait_s = v;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(MIGRATE_USAGE, stdout);
            return 1;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n%s", argv[0], a, MIGRATE_USAGE);
            return 2;
        }
    }
    if (m->dry_run + m->verify > 1) {
        fprintf(stderr, "%s: --dry-run and --verify are separate runs\n", argv[0]);
        return 2;
    }
    return 0;
}

static int setup(struct mig *m, hsc_err *err)
{
    int rc;
    if ((rc = migrate_mapping_load(m->cfg, &m->mp, err)))
        return rc;
    m->name = hsc_config_str(m->cfg, "migrate.name");
    m->topic = hsc_config_topic(m->cfg, "topics.content_events");
    m->dlq = hsc_config_topic(m->cfg, "topics.dlq");
    m->page_size = (int)hsc_config_int(m->cfg, "migrate.page_size");
    m->page_cypher = migrate_page_cypher(&m->mp);
    int port = (int)hsc_config_int(m->cfg, "metrics.port");
    if (port > 0) {
        m->metrics = hsc_metrics_new();
        hsc_metrics_set_backend_registry(m->metrics);
        if (!(m->httpd =
                  hsc_httpd_new(m->loop, port, m->metrics, metrics_ready, metrics_refresh, m, err)))
            return err->code;
    }
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(m->cfg, &ns);
    struct hsc_neo4j_settings ls = ns;
    const char *v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_url")))
        ls.url = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_user")))
        ls.user = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_password")))
        ls.password = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_database")))
        ls.database = v;
    snprintf(m->source, sizeof(m->source), ":%s(%s) at %s/%s", m->mp.label, m->mp.id_prop, ls.url,
             ls.database);
    if (!(m->http = hsc_http_new(m->loop, err)) ||
        !(m->legacy = hsc_neo4j_new(m->loop, m->http, &ls, err)))
        return err->code;
    if (!(m->pg = pg_connect(hsc_config_str(m->cfg, "pg.url"), "pg.url", err)))
        return err->code;
    const char *lurl = hsc_config_str(m->cfg, "migrate.legacy_pg_url");
    if (*m->mp.policy_table &&
        !(m->legacy_pg = pg_connect(*lurl ? lurl : hsc_config_str(m->cfg, "pg.url"),
                                    "migrate.legacy_pg_url", err)))
        return err->code;
    if (m->verify) {
        static char schema[1024];
        struct hsc_milvus_settings ms;
        hsc_milvus_settings_load(m->cfg, &ms, schema, sizeof(schema));
        if (!(m->graph = hsc_neo4j_new(m->loop, m->http, &ns, err)) ||
            !(m->milvus = hsc_milvus_new(m->loop, m->http, &ms, err)))
            return err->code;
    } else if (!m->dry_run) {
        if (!(m->prod = hsc_producer_new(m->loop, m->cfg, err)) ||
            !(m->redis = hsc_redis_new(m->loop, hsc_config_str(m->cfg, "redis.url"),
                                       (int)hsc_config_int(m->cfg, "redis.timeout_ms"), err)))
            return err->code;
    }
    return 0;
}

static void teardown(struct mig *m)
{
    if (m->prod)
        hsc_producer_free(m->prod);
    hsc_http_free(m->http); /* cancels what is in flight before the clients go */
    if (m->legacy)
        hsc_neo4j_free(m->legacy);
    if (m->graph)
        hsc_neo4j_free(m->graph);
    if (m->milvus)
        hsc_milvus_free(m->milvus);
    if (m->redis)
        hsc_redis_free(m->redis);
    if (m->pg)
        PQfinish(m->pg);
    if (m->legacy_pg)
        PQfinish(m->legacy_pg);
    free(m->page_cypher);
    free(m->problems);
    hsc_httpd_free(m->httpd);
    hsc_metrics_set_backend_registry(NULL);
    hsc_metrics_free(m->metrics);
}

int migrate_main(hsc_config *cfg, int argc, char **argv)
{
    struct mig m = {0};
    m.cfg = cfg;
    m.rate = hsc_config_double(cfg, "migrate.rate");
    int rc = parse_args(&m, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    m.tty = isatty(2);
    m.loop = ev_loop_new(0);
    m.started_us = m.last_progress_us = hsc_mono_us();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    hsc_err err = {0};
    if ((rc = setup(&m, &err))) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        rc = rc == HSC_ECONFIG ? 2 : 3;
    } else {
        rc = m.verify ? do_verify(&m) : do_migrate(&m);
    }
    teardown(&m);
    ev_loop_destroy(m.loop);
    return rc;
}
