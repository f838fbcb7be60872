/*
 * hsc status's probes: each backend asked, once and synchronously, whether it
 * is reachable and which version it runs (PostgreSQL with the migrations it
 * has seen, Redis, Neo4j, Milvus, the Kafka brokers), with the round trip.
 */
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hsc/codec.h"
#include "kafka.h"
#include "milvus.h"
#include "neo4j.h"
#include "redis.h"
#include "status.h"
#include "util.h"

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    hsc_buf *b = arg;
    return hsc_buf_append(b, p, size * n) ? 0 : size * n;
}

static long http(const char *method, const char *url, const char *body, const char *auth_header,
                 const char *userpwd, int timeout_ms, hsc_buf *out, char *err, size_t errcap)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth_header && *auth_header)
        h = curl_slist_append(h, auth_header);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (userpwd)
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errcap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    hsc_buf_append(out, "", 1);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The migrations hsc-migrate has checkpointed, newest first (none: an empty array). */
static json_t *migrations(PGconn *c)
{
    json_t *out = json_array();
    PGresult *r =
        PQexec(c, "SELECT name, source, published, problems, total,"
                  " finished_at IS NOT NULL, extract(epoch FROM now() - updated_at)::bigint"
                  " FROM migrate_checkpoints ORDER BY updated_at DESC");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I}", "name",
                                             PQgetvalue(r, i, 0), "source", PQgetvalue(r, i, 1),
                                             "published", (json_int_t)atoll(PQgetvalue(r, i, 2)),
                                             "problems", (json_int_t)atoll(PQgetvalue(r, i, 3)),
                                             "titles", (json_int_t)atoll(PQgetvalue(r, i, 4)),
                                             "finished", PQgetvalue(r, i, 5)[0] == 't',
                                             "seconds_since_update",
                                             (json_int_t)atoll(PQgetvalue(r, i, 6))));
    PQclear(r);
    return out;
}

void status_probe_pg(const hsc_config *cfg, int timeout_ms, struct probe *p, json_t **migs)
{
    p->name = "postgresql";
    char tmo[16];
    snprintf(tmo, sizeof(tmo), "%d", (timeout_ms + 999) / 1000);
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {hsc_config_str(cfg, "pg.url"), tmo, NULL};
    int64_t t0 = hsc_mono_us();
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(p->detail, sizeof(p->detail), "%s", PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, "SELECT current_setting('server_version'),"
                                " (SELECT max(version) FROM hsc_schema_migrations),"
                                " (SELECT count(*) FROM content WHERE NOT deleted)");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            p->ok = 1;
            snprintf(p->version, sizeof(p->version), "%.*s", (int)strcspn(PQgetvalue(r, 0, 0), " "),
                     PQgetvalue(r, 0, 0));
            snprintf(p->detail, sizeof(p->detail), "schema %s, %s titles", PQgetvalue(r, 0, 1),
                     PQgetvalue(r, 0, 2));
            *migs = migrations(c);
        } else {
            /* reachable, but hsc's schema is not there */
            p->ok = 1;
            PQclear(r);
            r = PQexec(c, "SELECT current_setting('server_version')");
            snprintf(p->version, sizeof(p->version), "%s",
                     PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
            snprintf(p->detail, sizeof(p->detail), "no hsc schema (run hsc schema apply)");
        }
        PQclear(r);
    }
    p->ms = (double)(hsc_mono_us() - t0) / 1000.0;
    PQfinish(c);
}

void status_probe_redis(const hsc_config *cfg, int timeout_ms, struct probe *p)
{
    p->name = "redis";
    char host[256], pw[256];
    int port, db;
    hsc_err err = {0};
    if (hsc_redis_parse_url(hsc_config_str(cfg, "redis.url"), host, sizeof(host), &port, &db, pw,
                            sizeof(pw), &err)) {
        snprintf(p->detail, sizeof(p->detail), "%s", err.msg);
        return;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int64_t t0 = hsc_mono_us();
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    redisReply *r = NULL;
    if (!c || c->err) {
        snprintf(p->detail, sizeof(p->detail), "%.200s:%d: %.200s", host, port,
                 c ? c->errstr : "out of memory");
    } else {
        redisSetTimeout(c, tv);
        if (pw[0]) {
            r = redisCommand(c, "AUTH %s", pw);
            freeReplyObject(r);
        }
        r = redisCommand(c, "INFO server");
        if (r && r->type == REDIS_REPLY_STRING) {
            const char *v = strstr(r->str, "redis_version:");
            p->ok = 1;
            snprintf(p->version, sizeof(p->version), "%.*s", v ? (int)strcspn(v + 14, "\r\n") : 1,
                     v ? v + 14 : "?");
            freeReplyObject(r);
            r = redisCommand(c, "GET %s", hsc_config_str(cfg, "redis.epoch_key"));
            snprintf(p->detail, sizeof(p->detail), "catalogue epoch %s",
                     r && r->type == REDIS_REPLY_STRING ? r->str : "0");
        } else {
            snprintf(p->detail, sizeof(p->detail), "%s",
                     r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        }
        freeReplyObject(r);
    }
    p->ms = (double)(hsc_mono_us() - t0) / 1000.0;
    if (c)
        redisFree(c);
}

void status_probe_neo4j(const hsc_config *cfg, int timeout_ms, struct probe *p)
{
    p->name = "neo4j";
    char url[1024], err[256] = "";
    snprintf(url, sizeof(url), "%s/", hsc_config_str(cfg, "neo4j.url"));
    hsc_buf b = {0};
    int64_t t0 = hsc_mono_us();
    long st = http("GET", url, NULL, NULL, NULL, timeout_ms, &b, err, sizeof(err));
    p->ms = (double)(hsc_mono_us() - t0) / 1000.0;
    json_t *o = st == 200 ? json_loads(b.data, 0, NULL) : NULL;
    if (o) {
        p->ok = 1;
        snprintf(p->version, sizeof(p->version), "%s %s",
                 json_string_value(json_object_get(o, "neo4j_version"))
                     ? json_string_value(json_object_get(o, "neo4j_version"))
                     : "?",
                 json_string_value(json_object_get(o, "neo4j_edition"))
                     ? json_string_value(json_object_get(o, "neo4j_edition"))
                     : "");
        snprintf(p->detail, sizeof(p->detail), "%s",
                 hsc_neo4j_discover(b.data, b.len - 1) == HSC_NEO4J_QUERY_API
                     ? "Query API"
                     : "transactional HTTP API");
    } else {
        snprintf(p->detail, sizeof(p->detail), "%s", st ? "unexpected discovery answer" : err);
    }
    json_decref(o);
    hsc_buf_free(&b);
}

void status_probe_milvus(const hsc_config *cfg, int timeout_ms, struct probe *p)
{
    p->name = "milvus";
    const char *base = hsc_config_str(cfg, "milvus.url");
    const char *token = hsc_config_str(cfg, "milvus.token");
    const char *coll = hsc_config_str(cfg, "milvus.collection");
    char auth[512] = "", url[1024], err[256] = "";
    if (token && *token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    int64_t t0 = hsc_mono_us();
    /* v2 first (Milvus 2.4+), then v1 (2.3): the same order the workers probe */
    hsc_buf b = {0};
    snprintf(url, sizeof(url), "%s/v2/vectordb/collections/list", base);
    long st = http("POST", url, "{}", auth, NULL, timeout_ms, &b, err, sizeof(err));
    json_t *o = st == 200 ? json_loads(b.data, 0, NULL) : NULL;
    const char *dialect = "REST v2";
    if (!o || json_integer_value(json_object_get(o, "code")) != 0) {
        json_decref(o);
        hsc_buf_free(&b);
        snprintf(url, sizeof(url), "%s/v1/vector/collections", base);
        st = http("GET", url, NULL, auth, NULL, timeout_ms, &b, err, sizeof(err));
        o = st == 200 ? json_loads(b.data, 0, NULL) : NULL;
        dialect = "REST v1";
        if (o && json_integer_value(json_object_get(o, "code")) != 200) {
            json_decref(o);
            o = NULL;
        }
    }
    p->ms = (double)(hsc_mono_us() - t0) / 1000.0;
    if (o) {
        p->ok = 1;
        int found = 0;
        size_t i;
        json_t *x;
        json_array_foreach (json_object_get(o, "data"), i, x)
            found |= json_is_string(x) && !strcmp(json_string_value(x), coll);
        snprintf(p->version, sizeof(p->version), "%s", dialect);
        snprintf(p->detail, sizeof(p->detail), "collection %s %s", coll,
                 found ? "present" : "missing (embed-index creates it)");
    } else {
        snprintf(p->detail, sizeof(p->detail), "%s", st ? "unexpected answer" : err);
    }
    json_decref(o);
    hsc_buf_free(&b);
}

rd_kafka_t *status_kafka_handle(const hsc_config *cfg, const char *group, char *err, size_t cap)
{
    hsc_err e = {0};
    static const char *const defaults[] = {"enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "consumer", defaults, &e);
    if (!conf) {
        snprintf(err, cap, "%s", e.msg);
        return NULL;
    }
    char es[512];
    /* a group id only to read its committed offsets: this handle never subscribes */
    if (rd_kafka_conf_set(conf, "group.id", group, es, sizeof(es)) != RD_KAFKA_CONF_OK) {
        snprintf(err, cap, "%s", es);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es));
    if (!rk) {
        snprintf(err, cap, "%s", es);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

void status_probe_kafka(const hsc_config *cfg, rd_kafka_t *rk, int timeout_ms, struct probe *p)
{
    p->name = "kafka";
    const struct rd_kafka_metadata *md = NULL;
    int64_t t0 = hsc_mono_us();
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    p->ms = (double)(hsc_mono_us() - t0) / 1000.0;
    if (e) {
        snprintf(p->detail, sizeof(p->detail), "%s", rd_kafka_err2str(e));
        return;
    }
    p->ok = 1;
    /* the topics of schemas/topics.tsv, as hsc topics create makes them */
    struct cli_topic_spec specs[CLI_MAX_TOPICS];
    int nspecs = 0, present = 0;
    if (cli_topic_specs(cfg, specs, &nspecs))
        nspecs = 0;
    for (int k = 0; k < nspecs; k++)
        for (int i = 0; i < md->topic_cnt; i++)
            if (!md->topics[i].err && !strcmp(md->topics[i].topic, specs[k].name)) {
                present++;
                break;
            }
    snprintf(p->version, sizeof(p->version), "%d broker%s", md->broker_cnt,
             md->broker_cnt == 1 ? "" : "s");
    snprintf(p->detail, sizeof(p->detail), "controller %d, %d/%d hsc topics%s",
             rd_kafka_controllerid(rk, 0), present, nspecs,
             present < nspecs ? " (hsc topics create)" : "");
    rd_kafka_metadata_destroy(md);
}

json_t *status_probe_json(const struct probe *p)
{
    return json_pack("{s:s, s:b, s:s, s:s, s:f}", "name", p->name, "ok", p->ok, "version",
                     p->version, "detail", p->detail, "ms", p->ms);
}
