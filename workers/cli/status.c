/*
 * hsc status: what a running deployment looks like from outside. Each
 * backend's reachability, version and round trip; each consumer group's
 * state, members and lag per topic. Read-only: it joins no group, creates
 * nothing, and commits nothing. Exit status 1 when a backend is unreachable.
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
#include "util.h"

static const char USAGE[] =
    "Usage: hsc status [--json] [--timeout MS] [--freshness-window N]\n"
    "Shows each backend's reachability and version, each consumer group's\n"
    "members and lag per topic (ingest, enrich, embed-index, query), and content\n"
    "freshness (publish -> searchable, p50/p99) over the last N (500) indexed\n"
    "records of each partition. Exit status 1 when a backend cannot be reached.\n";

/* One backend's answer. */
struct probe {
    const char *name;
    int ok;
    char version[128], detail[600];
    double ms;
};

/* ---- HTTP (synchronous: a status check is one request per server) ---- */

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

/* ---- the probes ---- */

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

static void probe_pg(const hsc_config *cfg, int timeout_ms, struct probe *p, json_t **migs)
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

static void probe_redis(const hsc_config *cfg, int timeout_ms, struct probe *p)
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

static void probe_neo4j(const hsc_config *cfg, int timeout_ms, struct probe *p)
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

static void probe_milvus(const hsc_config *cfg, int timeout_ms, struct probe *p)
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

/* ---- Kafka: brokers, then each group ---- */

static rd_kafka_t *kafka_handle(const hsc_config *cfg, const char *group, char *err, size_t cap)
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

static void probe_kafka(const hsc_config *cfg, rd_kafka_t *rk, int timeout_ms, struct probe *p)
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

/* One group's state and members from DescribeConsumerGroups; NULL on error. */
static json_t *describe_group(rd_kafka_t *rk, const char *group, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    char es[256];
    rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, es, sizeof(es));
    const char *groups[] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    json_t *out = NULL;
    const rd_kafka_DescribeConsumerGroups_result_t *res =
        ev ? rd_kafka_event_DescribeConsumerGroups_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **gd =
        res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
    if (n == 1 && !rd_kafka_ConsumerGroupDescription_error(gd[0])) {
        out = json_object();
        json_object_set_new(out, "state",
                            json_string(rd_kafka_consumer_group_state_name(
                                rd_kafka_ConsumerGroupDescription_state(gd[0]))));
        json_t *members = json_array();
        size_t mc = rd_kafka_ConsumerGroupDescription_member_count(gd[0]);
        for (size_t i = 0; i < mc; i++) {
            const rd_kafka_MemberDescription_t *m =
                rd_kafka_ConsumerGroupDescription_member(gd[0], i);
            const rd_kafka_topic_partition_list_t *a =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
            const char *host = rd_kafka_MemberDescription_host(m);
            json_array_append_new(
                members,
                json_pack("{s:s, s:s, s:i}", "client_id", rd_kafka_MemberDescription_client_id(m),
                          "host", host[0] == '/' ? host + 1 : host, /* Kafka writes "/1.2.3.4" */
                          "partitions", a ? a->cnt : 0));
        }
        json_object_set_new(out, "members", members);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return out;
}

/* Lag of group on topic: end offsets minus committed (earliest when none), per partition summed. */
static json_t *topic_lag(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    json_t *out = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == 0 && md->topic_cnt == 1 &&
        !md->topics[0].err) {
        int parts = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
        for (int i = 0; i < parts; i++)
            rd_kafka_topic_partition_list_add(l, topic, i);
        if (rd_kafka_committed(rk, l, timeout_ms) == 0) {
            long long lag = 0, end = 0;
            int ok = 1;
            for (int i = 0; i < parts && ok; i++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, timeout_ms)) {
                    ok = 0;
                    break;
                }
                int64_t c = l->elems[i].offset < 0 ? lo : l->elems[i].offset;
                lag += hi - c;
                end += hi;
            }
            if (ok)
                out = json_pack("{s:s, s:i, s:I, s:I}", "topic", topic, "partitions", parts, "lag",
                                (json_int_t)lag, "end_offset", (json_int_t)end);
        }
        rd_kafka_topic_partition_list_destroy(l);
    } else {
        out = json_pack("{s:s, s:s}", "topic", topic, "error", "no such topic");
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return out;
}

static json_t *group_status(const hsc_config *cfg, const char *worker, const char *group,
                            const char *const *topic_keys, int timeout_ms)
{
    char err[512] = "";
    json_t *g = json_pack("{s:s, s:s}", "worker", worker, "group", group);
    rd_kafka_t *rk = kafka_handle(cfg, group, err, sizeof(err));
    if (!rk) {
        json_object_set_new(g, "error", json_string(err));
        return g;
    }
    json_t *d = describe_group(rk, group, timeout_ms);
    json_object_set_new(
        g, "state", json_string(d ? json_string_value(json_object_get(d, "state")) : "Unknown"));
    json_object_set(g, "members", d ? json_object_get(d, "members") : json_array());
    json_decref(d);
    json_t *topics = json_array();
    for (const char *const *k = topic_keys; *k; k++) {
        json_t *t = topic_lag(rk, hsc_config_topic(cfg, *k), timeout_ms);
        if (t)
            json_array_append_new(topics, t);
    }
    json_object_set_new(g, "topics", topics);
    rd_kafka_destroy(rk);
    return g;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/*
 * Content freshness from the tail of hsc.content.indexed: for the last
 * `window` records of each partition that were indexed and carry the
 * content event's publish time, indexed ts - published_ts (publish ->
 * searchable). Reads by assignment: no group joins, nothing is committed.
 */
static json_t *freshness(const hsc_config *cfg, int window, int timeout_ms)
{
    const char *topic = hsc_config_topic(cfg, "topics.content_indexed");
    char err[512] = "";
    rd_kafka_t *rk = kafka_handle(cfg, "hsc-status", err, sizeof(err));
    if (!rk)
        return json_pack("{s:s, s:s}", "topic", topic, "error", err);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    json_t *out = NULL;
    long long *ms = NULL;
    size_t n = 0, cap = 0, read = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) || md->topic_cnt != 1 || md->topics[0].err) {
        out = json_pack("{s:s, s:s}", "topic", topic, "error", "no such topic");
        goto done;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int64_t *end = calloc((size_t)parts + 1, sizeof(*end));
    int open = 0;
    for (int i = 0; i < parts; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, timeout_ms))
            continue;
        end[i] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(l, topic, i)->offset =
                hi - window > lo ? hi - window : lo;
            open++;
        }
    }
    if (open)
        rd_kafka_assign(rk, l);
    int64_t until = hsc_mono_us() + (int64_t)timeout_ms * 1000;
    while (open > 0 && hsc_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            hsc_indexed_record r;
            hsc_err e = {0};
            read++;
            if (!hsc_codec_decode_indexed(m->payload, m->len, &r, &e)) {
                if (r.indexed && r.published_ts > 0 && r.ts >= r.published_ts) {
                    if (n == cap) {
                        cap = cap ? 2 * cap : 256;
                        long long *g = realloc(ms, cap * sizeof(*ms));
                        if (g)
                            ms = g;
                        else
                            cap = n;
                    }
                    if (n < cap)
                        ms[n++] = r.ts - r.published_ts;
                }
                hsc_indexed_record_clear(&r);
            }
            if (m->offset + 1 >= end[m->partition])
                open--;
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            open--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(end);
    out = json_pack("{s:s, s:i, s:I, s:I}", "topic", topic, "window", window, "read",
                    (json_int_t)read, "samples", (json_int_t)n);
    if (n) {
        qsort(ms, n, sizeof(*ms), cmp_ll);
        json_object_set_new(out, "p50_ms", json_integer(ms[(n - 1) / 2]));
        json_object_set_new(out, "p99_ms", json_integer(ms[(size_t)((double)(n - 1) * 0.99)]));
        json_object_set_new(out, "max_ms", json_integer(ms[n - 1]));
    }
    if (open > 0)
        json_object_set_new(out, "error", json_string("timed out before the topic's end"));
done:
    free(ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

static json_t *probe_json(const struct probe *p)
{
    return json_pack("{s:s, s:b, s:s, s:s, s:f}", "name", p->name, "ok", p->ok, "version",
                     p->version, "detail", p->detail, "ms", p->ms);
}

int cli_status(hsc_config *cfg, int argc, char **argv)
{
    int as_json = 0, timeout_ms = 3000, window = 500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--freshness-window") && i + 1 < argc)
            window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else {
            fprintf(stderr, "hsc status: unknown argument '%s'\n%s", argv[i], USAGE);
            return 2;
        }
    }
    if (timeout_ms < 100)
        timeout_ms = 100;
    if (window < 1)
        window = 1;
    struct probe probes[5];
    memset(probes, 0, sizeof(probes));
    char err[512] = "";
    rd_kafka_t *rk = kafka_handle(cfg, "hsc-status", err, sizeof(err));
    if (rk)
        probe_kafka(cfg, rk, timeout_ms, &probes[0]);
    else
        probes[0].name = "kafka", snprintf(probes[0].detail, sizeof(probes[0].detail), "%s", err);
    json_t *migs = NULL;
    probe_pg(cfg, timeout_ms, &probes[1], &migs);
    if (!migs)
        migs = json_array();
    probe_redis(cfg, timeout_ms, &probes[2]);
    probe_milvus(cfg, timeout_ms, &probes[3]);
    probe_neo4j(cfg, timeout_ms, &probes[4]);
    if (rk)
        rd_kafka_destroy(rk);
    int all_ok = 1;
    for (int i = 0; i < 5; i++) {
        all_ok &= probes[i].ok;
        char *nl = strchr(probes[i].detail, '\n');
        if (nl)
            *nl = '\0';
    }

    json_t *groups = json_array();
    if (probes[0].ok) {
        static const char *const INGEST[] = {"topics.content_events", "topics.learning_events",
                                             "topics.policy_events", NULL};
        static const char *const ENRICH[] = {"topics.content_ingested", NULL};
        static const char *const INDEXED[] = {"topics.content_enriched", NULL};
        static const char *const INGESTED[] = {"topics.content_ingested", NULL};
        static const char *const QUERY[] = {"topics.search_requests", NULL};
        int from_ingested = !strcmp(hsc_config_str(cfg, "embed_index.input"), "content_ingested");
        json_array_append_new(groups,
                              group_status(cfg, "hsc-ingest", hsc_config_str(cfg, "ingest.group"),
                                           INGEST, timeout_ms));
        json_array_append_new(groups,
                              group_status(cfg, "hsc-enrich", hsc_config_str(cfg, "enrich.group"),
                                           ENRICH, timeout_ms));
        json_array_append_new(groups, group_status(cfg, "hsc-embed-index",
                                                   hsc_config_str(cfg, "embed_index.group"),
                                                   from_ingested ? INGESTED : INDEXED, timeout_ms));
        json_array_append_new(
            groups,
            group_status(cfg, "hsc-query", hsc_config_str(cfg, "query.group"), QUERY, timeout_ms));
    }
    json_t *fresh = probes[0].ok ? freshness(cfg, window, timeout_ms) : json_object();

    if (as_json) {
        json_t *bk = json_array();
        for (int i = 0; i < 5; i++)
            json_array_append_new(bk, probe_json(&probes[i]));
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:b}", "backends", bk, "groups", groups,
                              "freshness", fresh, "migrations", migs, "ok", all_ok);
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
        return all_ok ? 0 : 1;
    }
    printf("%-11s %-5s %-22s %8s  %s\n", "BACKEND", "", "VERSION", "ROUND", "DETAIL");
    for (int i = 0; i < 5; i++)
        printf("%-11s %-5s %-22s %6.1fms  %s\n", probes[i].name, probes[i].ok ? "ok" : "DOWN",
               probes[i].version[0] ? probes[i].version : "-", probes[i].ms, probes[i].detail);
    if (json_array_size(groups)) {
        printf("\n%-16s %-20s %-12s %7s  %-32s %10s\n", "WORKER", "GROUP", "STATE", "MEMBERS",
               "TOPIC", "LAG");
        size_t i;
        json_t *g;
        json_array_foreach (groups, i, g) {
            json_t *topics = json_object_get(g, "topics");
            size_t nt = json_array_size(topics);
            for (size_t k = 0; k < (nt ? nt : 1); k++) {
                json_t *t = json_array_get(topics, k);
                char lag[32];
                if (json_object_get(t, "lag"))
                    snprintf(lag, sizeof(lag), "%lld",
                             (long long)json_integer_value(json_object_get(t, "lag")));
                else
                    snprintf(lag, sizeof(lag), "%s",
                             t ? json_string_value(json_object_get(t, "error")) : "-");
                if (k == 0)
                    printf("%-16s %-20s %-12s %7zu  %-32s %10s\n",
                           json_string_value(json_object_get(g, "worker")),
                           json_string_value(json_object_get(g, "group")),
                           json_string_value(json_object_get(g, "state"))
                               ? json_string_value(json_object_get(g, "state"))
                               : "?",
                           json_array_size(json_object_get(g, "members")),
                           t ? json_string_value(json_object_get(t, "topic")) : "-", lag);
                else
                    printf("%-16s %-20s %-12s %7s  %-32s %10s\n", "", "", "", "",
                           json_string_value(json_object_get(t, "topic")), lag);
            }
            size_t j;
            json_t *m;
            json_array_foreach (json_object_get(g, "members"), j, m)
                printf("%-16s   member %s (%s), %lld partitions\n", "",
                       json_string_value(json_object_get(m, "client_id")),
                       json_string_value(json_object_get(m, "host")),
                       (long long)json_integer_value(json_object_get(m, "partitions")));
        }
    }
    if (json_object_get(fresh, "topic")) {
        json_t *p50 = json_object_get(fresh, "p50_ms");
        printf(
            "\nFRESHNESS (publish -> searchable, last %lld indexed records per partition of %s)\n",
            (long long)json_integer_value(json_object_get(fresh, "window")),
            json_string_value(json_object_get(fresh, "topic")));
        if (p50)
            printf("  p50 %.3f s, p99 %.3f s, max %.3f s over %lld titles\n",
                   (double)json_integer_value(p50) / 1e3,
                   (double)json_integer_value(json_object_get(fresh, "p99_ms")) / 1e3,
                   (double)json_integer_value(json_object_get(fresh, "max_ms")) / 1e3,
                   (long long)json_integer_value(json_object_get(fresh, "samples")));
        else
            printf("  no indexed record with a publish time (%lld read)\n",
                   (long long)json_integer_value(json_object_get(fresh, "read")));
        if (json_object_get(fresh, "error"))
            printf("  %s\n", json_string_value(json_object_get(fresh, "error")));
    }
    json_decref(fresh);
    size_t i;
    json_t *mg;
    if (json_array_size(migs))
        printf("\n%-16s %-10s %21s %9s  %s\n", "MIGRATION", "STATE", "PUBLISHED/TITLES", "PROBLEMS",
               "SOURCE");
    json_array_foreach (migs, i, mg) {
        char prog[48];
        snprintf(prog, sizeof(prog), "%lld/%lld",
                 (long long)json_integer_value(json_object_get(mg, "published")),
                 (long long)json_integer_value(json_object_get(mg, "titles")));
        printf("%-16s %-10s %21s %9lld  %s\n", json_string_value(json_object_get(mg, "name")),
               json_is_true(json_object_get(mg, "finished"))                          ? "finished"
               : json_integer_value(json_object_get(mg, "seconds_since_update")) < 60 ? "running"
                                                                                      : "stopped",
               prog, (long long)json_integer_value(json_object_get(mg, "problems")),
               json_string_value(json_object_get(mg, "source")));
    }
    json_decref(migs);
    json_decref(groups);
    return all_ok ? 0 : 1;
}
