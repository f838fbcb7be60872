/* The integration-test harness (see harness.h). */
#include "harness.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

long long it_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        die("%s is not set: start the stack with deploy/local/up and source .local/stack.env",
            name);
    return v;
}

static PGconn *connect_or_die(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("cannot connect to PostgreSQL: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

/* Replaces the database name (the path) of a postgresql:// URL. */
static void url_with_db(const char *url, const char *db, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    if (!slash)
        die("HSC_PG_URL must be a postgresql://host/db URL");
    const char *q = strchr(slash, '?');
    snprintf(out, cap, "%.*s/%s%s", (int)(slash - url), url, db, q ? q : "");
}

void it_setup(struct it *t)
{
    static int seq;
    memset(t, 0, sizeof(*t));
    snprintf(t->prefix, sizeof(t->prefix), "it%dx%d.", (int)getpid(), seq);
    snprintf(t->db, sizeof(t->db), "hsc_it_%d_%d", (int)getpid(), seq);
    seq++;
    snprintf(t->brokers, sizeof(t->brokers), "%s", need_env("HSC_KAFKA_BROKERS"));
    const char *base = need_env("HSC_PG_URL");
    PGconn *admin = connect_or_die(base);
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->db);
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(admin);
    url_with_db(base, t->db, t->pg_url, sizeof(t->pg_url));
    snprintf(t->env_prefix, sizeof(t->env_prefix), "HSC_TOPICS_PREFIX=%s", t->prefix);
    snprintf(t->env_pg, sizeof(t->env_pg), "HSC_PG_URL=%s", t->pg_url);
    snprintf(t->env_brokers, sizeof(t->env_brokers), "HSC_KAFKA_BROKERS=%s", t->brokers);
    snprintf(t->env_cfg, sizeof(t->env_cfg), "HSC_CONFIG=");
    snprintf(t->collection, sizeof(t->collection), "it_%d_%d", (int)getpid(), seq - 1);
    snprintf(t->epoch_key, sizeof(t->epoch_key), "hsc:it:%d:%d:epoch", (int)getpid(), seq - 1);
    snprintf(t->env_coll, sizeof(t->env_coll), "HSC_MILVUS_COLLECTION=%s", t->collection);
    snprintf(t->env_epoch, sizeof(t->env_epoch), "HSC_REDIS_EPOCH_KEY=%s", t->epoch_key);
    /* Until hsc-enrich runs in a test, embed-index reads what ingest produces. */
    snprintf(t->env_input, sizeof(t->env_input), "HSC_EMBED_INDEX_INPUT=content_ingested");
    const char *schema[] = {"schema", "apply", NULL};
    if (it_run(t, "hsc", schema, NULL) != 0)
        die("hsc schema apply failed");
    const char *topics[] = {"topics", "create", NULL};
    char *out = NULL;
    if (it_run(t, "hsc", topics, &out) != 0)
        die("hsc topics create failed: %s", out ? out : "");
    free(out);
    t->pg = connect_or_die(t->pg_url);
}

void it_teardown(struct it *t)
{
    if (t->pg)
        PQfinish(t->pg);
    t->pg = NULL;
    PGconn *admin = connect_or_die(getenv("HSC_PG_URL"));
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->db);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    const char *mv = getenv("HSC_MILVUS_URL");
    if (mv) {
        char url[512], body[128];
        snprintf(url, sizeof(url), "%s/v1/vector/collections/drop", mv);
        snprintf(body, sizeof(body), "{\"collectionName\":\"%s\"}", t->collection);
        /* A collection left loaded costs Milvus memory and idle CPU in every later
         * benchmark (16 such were found on 2026-12-07, one of 100,000 titles): a Milvus
         * restarted by the test may still refuse the drop for a while, so it is retried. */
        int dropped = 0;
        for (int i = 0; i < 30 && !dropped; i++) {
            long st = 0;
            char *r = it_http("POST", url, body, &st);
            dropped =
                st == 200 && r && (strstr(r, "\"code\":200") || strstr(r, "collection not found"));
            free(r);
            if (!dropped)
                sleep(1);
        }
        if (!dropped)
            fprintf(stderr, "harness: warning: Milvus collection %s was not dropped\n",
                    t->collection);
    }
    /* Left behind, every test's topics stay on the broker's disk: thousands of partition
     * directories made the local Kafka take minutes to start. A failure here is not the
     * test's, so it only warns. No --yes: should the prefix ever be empty, hsc refuses. */
    const char *topics[] = {"topics", "delete", NULL};
    char *out = NULL;
    int rc = it_run(t, "hsc", topics, &out);
    if (rc != 0)
        fprintf(stderr, "harness: warning: hsc topics delete exited %d, topics %s* are left:\n%s",
                rc, t->prefix, out ? out : "");
    free(out);
}

/* ---------------- Milvus and Redis probes (v1 REST, what the local stack runs) ---------------- */

static size_t it_http_write(char *p, size_t size, size_t n, void *arg)
{
    struct {
        char *d;
        size_t len;
    } *b = arg;
    char *nd = realloc(b->d, b->len + size * n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, size * n);
    b->len += size * n;
    nd[b->len] = '\0';
    b->d = nd;
    return size * n;
}

char *it_http(const char *method, const char *url, const char *body, long *status)
{
    struct {
        char *d;
        size_t len;
    } b = {NULL, 0};
    CURL *c = curl_easy_init();
    /* no "Expect: 100-continue": Neo4j can answer a large body before it arrives */
    struct curl_slist *h =
        curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"), "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.d);
        return NULL;
    }
    return b.d ? b.d : strdup("");
}

static json_t *milvus_post(const char *path, json_t *req)
{
    const char *mv = need_env("HSC_MILVUS_URL");
    char url[512];
    snprintf(url, sizeof(url), "%s%s", mv, path);
    char *body = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(req);
    long st;
    char *resp = it_http("POST", url, body, &st);
    free(body);
    json_t *o = resp ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    if (o && json_integer_value(json_object_get(o, "code")) != 200) {
        if (json_integer_value(json_object_get(o, "code")) != 100) /* not created yet: polled */
            fprintf(stderr, "milvus %s: %s\n", path,
                    json_string_value(json_object_get(o, "message")));
        json_decref(o);
        return NULL;
    }
    return o;
}

long long it_milvus_count(struct it *t)
{
    json_t *q = json_pack("{s:s, s:s, s:[s], s:i}", "collectionName", t->collection, "filter",
                          "pk > 0", "outputFields", "count(*)", "limit", 0);
    json_t *o = milvus_post("/v1/vector/query", q);
    if (!o)
        return -1;
    json_t *c = json_object_get(json_array_get(json_object_get(o, "data"), 0), "count(*)");
    long long n = json_is_string(c)    ? atoll(json_string_value(c))
                  : json_is_integer(c) ? json_integer_value(c)
                                       : -1;
    json_decref(o);
    return n;
}

long long it_milvus_wait_count(struct it *t, long long want, int timeout_ms)
{
    long long end = it_ms() + timeout_ms, v = -1;
    while (it_ms() < end) {
        v = it_milvus_count(t);
        if (v == want)
            break;
        usleep(300000);
    }
    return v;
}

size_t it_milvus_ids(struct it *t, char ***ids)
{
    *ids = NULL;
    size_t n = 0;
    /* Pages by the automatic key, since one query window holds at most 16384 rows. */
    long long after = 0;
    for (;;) {
        char filter[64];
        snprintf(filter, sizeof(filter), "pk > %lld", after);
        json_t *q = json_pack("{s:s, s:s, s:[s,s], s:i}", "collectionName", t->collection, "filter",
                              filter, "outputFields", "content_id", "pk", "limit", 16384);
        json_t *o = milvus_post("/v1/vector/query", q);
        json_t *data = json_object_get(o, "data");
        size_t m = json_array_size(data);
        if (!m) {
            json_decref(o);
            break;
        }
        *ids = realloc(*ids, (n + m) * sizeof(char *));
        size_t i;
        json_t *e;
        json_array_foreach (data, i, e) {
            (*ids)[n++] = strdup(json_string_value(json_object_get(e, "content_id")));
            json_t *pk = json_object_get(e, "pk");
            long long v =
                json_is_string(pk) ? atoll(json_string_value(pk)) : json_integer_value(pk);
            if (v > after)
                after = v;
        }
        json_decref(o);
        if (m < 16384)
            break;
    }
    return n;
}

int it_milvus_nearest(struct it *t, const float *vec, size_t dim, char *out, size_t cap)
{
    json_t *v = json_array();
    for (size_t i = 0; i < dim; i++)
        json_array_append_new(v, json_real(vec[i]));
    json_t *q = json_pack("{s:s, s:o, s:i, s:[s]}", "collectionName", t->collection, "vector", v,
                          "limit", 3, "outputFields", "content_id");
    json_t *o = milvus_post("/v1/vector/search", q);
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(o, "data"), 0), "content_id"));
    int rc = id ? 0 : -1;
    if (id)
        snprintf(out, cap, "%s", id);
    json_decref(o);
    return rc;
}

long long it_redis_int(const char *key)
{
    const char *url = need_env("HSC_REDIS_URL"); /* redis://host:port/db */
    char host[128] = "127.0.0.1";
    int port = 6379;
    sscanf(url, "redis://%127[^:]:%d", host, &port);
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    redisReply *r = redisCommand(c, "GET %s", key);
    long long v = (r && r->type == REDIS_REPLY_STRING) ? atoll(r->str) : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

const char *it_topic(struct it *t, const char *key)
{
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    /* Topic names are the config defaults: "content_events" -> "hsc.content.events". */
    char name[128];
    snprintf(name, sizeof(name), "hsc.%s", key);
    for (char *p = name + 4; *p; p++)
        if (*p == '_')
            *p = '.';
    if (!strcmp(key, "dlq"))
        snprintf(name, sizeof(name), "hsc.dlq");
    snprintf(buf[i], sizeof(buf[i]), "%s%s", t->prefix, name);
    return buf[i];
}

static void exec_in_ns(struct it *t, const char *binary, const char *const *args)
{
    /* A worker outlives nothing of the test's: not its sockets, nor a lock a
     * runner holds around it (flock), which an orphaned worker would keep. */
    closefrom(3);
    putenv(t->env_prefix);
    putenv(t->env_pg);
    putenv(t->env_brokers);
    putenv(t->env_cfg);
    putenv(t->env_coll);
    putenv(t->env_epoch);
    if (!getenv("HSC_EMBED_INDEX_INPUT"))
        putenv(t->env_input);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", HSC_BUILD_DIR, binary);
    const char *argv[72];
    int n = 0;
    if (t->valgrind) {
        argv[n++] = "valgrind";
        argv[n++] = "-q";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--show-leak-kinds=definite,indirect";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect";
        argv[n++] = "--error-exitcode=99";
    }
    argv[n++] = path;
    for (int i = 0; args && args[i] && n < 71; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (t->valgrind)
        execvp("valgrind", (char *const *)argv);
    else
        execv(path, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* Workers a failed assertion left running: killed at exit, so they hold no pipe open. */
static pid_t spawned[64];
static int nspawned;

static void kill_spawned(void)
{
    for (int i = 0; i < nspawned; i++)
        if (spawned[i] > 0)
            kill(spawned[i], SIGKILL);
}

pid_t it_spawn(struct it *t, const char *binary, const char *const *args)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        exec_in_ns(t, binary, args);
    if (nspawned == 0)
        atexit(kill_spawned);
    if (nspawned < 64)
        spawned[nspawned++] = pid;
    return pid;
}

int it_stop(pid_t pid, int sig, int timeout_ms)
{
    if (sig)
        kill(pid, sig);
    long long end = it_ms() + timeout_ms;
    int status;
    while (it_ms() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            for (int i = 0; i < nspawned; i++)
                if (spawned[i] == pid)
                    spawned[i] = 0; /* reaped: its pid may be reused */
        }
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(20000);
    }
    return -1;
}

int it_run(struct it *t, const char *binary, const char *const *args, char **out)
{
    int fds[2];
    if (pipe(fds))
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        exec_in_ns(t, binary, args);
    }
    close(fds[1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0) {
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, chunk, (size_t)n);
        len += (size_t)n;
        buf[len] = '\0';
    }
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (out)
        *out = buf ? buf : strdup("");
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int it_shell(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static PGresult *pg_exec(struct it *t, const char *sql)
{
    if (PQstatus(t->pg) != CONNECTION_OK)
        PQreset(t->pg);
    return PQexec(t->pg, sql);
}

long long it_pg_int(struct it *t, const char *sql)
{
    PGresult *r = pg_exec(t, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "it_pg_int: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

char *it_pg_text(struct it *t, const char *sql)
{
    PGresult *r = pg_exec(t, sql);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

long long it_pg_wait(struct it *t, const char *sql, long long want, int timeout_ms)
{
    long long end = it_ms() + timeout_ms, v = -1;
    while (it_ms() < end) {
        v = it_pg_int(t, sql);
        if (v == want)
            return v;
        usleep(200000);
    }
    return v;
}

static rd_kafka_t *client(struct it *t, rd_kafka_type_t type, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_conf_set(conf, "bootstrap.servers", t->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    if (group)
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        die("rd_kafka_new: %s", errstr);
    return rk;
}

struct dr {
    long long offset;
    int32_t partition;
    int done;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dr *d = m->_private;
    d->done = 1;
    d->offset = m->err ? -1 : m->offset;
    d->partition = m->partition;
    (void)rk;
    (void)opaque;
}

long long it_produce(struct it *t, const char *topic, const char *key, const void *value,
                     size_t len, int32_t *partition)
{
    static rd_kafka_t *p;
    if (!p) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_conf_set(conf, "bootstrap.servers", t->brokers, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "message.max.bytes", "10000000", errstr, sizeof(errstr));
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    }
    struct dr d = {0};
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (e)
        die("produce: %s", rd_kafka_err2str(e));
    while (!d.done)
        rd_kafka_poll(p, 100);
    if (partition)
        *partition = d.partition;
    return d.offset;
}

size_t it_consume_all(struct it *t, const char *topic, size_t want, int timeout_ms,
                      struct it_record **out)
{
    rd_kafka_t *rk = client(t, RD_KAFKA_CONSUMER, "it-reader");
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000))
        die("metadata for %s", topic);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    size_t n = 0, cap = 64;
    struct it_record *r = calloc(cap, sizeof(*r));
    long long end = it_ms() + timeout_ms;
    while (n < want && it_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (n == cap) {
                cap *= 2;
                r = realloc(r, cap * sizeof(*r));
            }
            struct it_record *x = &r[n++];
            memset(x, 0, sizeof(*x));
            x->key = strndup(m->key ? m->key : "", m->key_len);
            x->value = malloc(m->len + 1);
            memcpy(x->value, m->payload, m->len);
            x->len = m->len;
            x->partition = m->partition;
            x->offset = m->offset;
            rd_kafka_headers_t *h;
            if (!rd_kafka_message_headers(m, &h))
                x->headers = rd_kafka_headers_copy(h);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = r;
    return n;
}

size_t it_consume_to_end(struct it *t, const char *topic, int timeout_ms, struct it_record **out)
{
    rd_kafka_t *rk = client(t, RD_KAFKA_CONSUMER, "it-reader");
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000))
        die("metadata for %s", topic);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    /* The end of each partition now: records written later are not waited for. */
    int64_t *hi = calloc((size_t)parts, sizeof(*hi));
    int left = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++) {
        int64_t lo;
        if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi[i], 10000))
            die("watermarks of %s [%d]", topic, i);
        left += hi[i] > lo;
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    size_t n = 0, cap = 64;
    struct it_record *r = calloc(cap, sizeof(*r));
    long long end = it_ms() + timeout_ms;
    while (left > 0 && it_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err && m->offset < hi[m->partition]) {
            if (n == cap) {
                cap *= 2;
                r = realloc(r, cap * sizeof(*r));
            }
            struct it_record *x = &r[n++];
            memset(x, 0, sizeof(*x));
            x->key = strndup(m->key ? m->key : "", m->key_len);
            x->value = malloc(m->len + 1);
            memcpy(x->value, m->payload, m->len);
            x->len = m->len;
            x->partition = m->partition;
            x->offset = m->offset;
            rd_kafka_headers_t *h;
            if (!rd_kafka_message_headers(m, &h))
                x->headers = rd_kafka_headers_copy(h);
            left -= m->offset + 1 == hi[m->partition];
        }
        rd_kafka_message_destroy(m);
    }
    if (left > 0)
        die("%s: %d partitions not read to their end in %d ms", topic, left, timeout_ms);
    free(hi);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = r;
    return n;
}

void it_records_free(struct it_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].key);
        free(r[i].value);
        if (r[i].headers)
            rd_kafka_headers_destroy(r[i].headers);
    }
    free(r);
}

const char *it_header(const struct it_record *r, const char *name)
{
    static char buf[8][1024];
    static int i;
    i = (i + 1) % 8;
    const void *v;
    size_t n;
    buf[i][0] = '\0';
    if (r->headers && !rd_kafka_header_get_last(r->headers, name, &v, &n)) {
        if (n >= sizeof(buf[i]))
            n = sizeof(buf[i]) - 1;
        memcpy(buf[i], v, n);
        buf[i][n] = '\0';
    }
    return buf[i];
}

long long it_group_lag(struct it *t, const char *group, const char *topic)
{
    rd_kafka_t *rk = client(t, RD_KAFKA_CONSUMER, group);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    long long lag = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) {
        int parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
        for (int i = 0; i < parts; i++)
            rd_kafka_topic_partition_list_add(l, topic, i);
        if (rd_kafka_committed(rk, l, 10000) == 0) {
            lag = 0;
            for (int i = 0; i < parts; i++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 10000)) {
                    lag = -1;
                    break;
                }
                int64_t c = l->elems[i].offset < 0 ? lo : l->elems[i].offset;
                lag += hi - c;
            }
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return lag;
}

int it_wait_caught_up(struct it *t, const char *group, const char *topic, int timeout_ms)
{
    long long end = it_ms() + timeout_ms;
    while (it_ms() < end) {
        if (it_group_lag(t, group, topic) == 0)
            return 0;
        usleep(300000);
    }
    return -1;
}

char *it_temp_file(const char *text, size_t len)
{
    char *path = strdup("/tmp/hsc_it_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        die("temp file: %s", strerror(errno));
    /* One write() stops at 2 GiB: a 1M-title sample at 384 dimensions is 3.8 GB. */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0)
            die("temp file: %s", w < 0 ? strerror(errno) : "short write");
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* ---------------- Neo4j probes (the Query API, on the local stack) ---------------- */

json_t *it_neo4j(const char *cypher, const char *params_json)
{
    const char *url = need_env("HSC_NEO4J_URL");
    char full[512], auth[512];
    snprintf(full, sizeof(full), "%s/db/neo4j/query/v2", url);
    snprintf(auth, sizeof(auth), "%s:%s",
             getenv("HSC_NEO4J_USER") ? getenv("HSC_NEO4J_USER") : "neo4j",
             need_env("HSC_NEO4J_PASSWORD"));
    json_t *req = json_pack("{s:s}", "statement", cypher);
    json_object_set_new(req, "parameters",
                        params_json ? json_loads(params_json, 0, NULL) : json_object());
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct {
        char *d;
        size_t len;
    } b = {NULL, 0};
    CURL *c = curl_easy_init();
    /* no "Expect: 100-continue": Neo4j can answer a large body before it arrives */
    struct curl_slist *h =
        curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"), "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_USERPWD, auth);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    json_t *o = rc == CURLE_OK && b.d ? json_loads(b.d, 0, NULL) : NULL;
    free(b.d);
    json_t *errors = json_object_get(o, "errors");
    if (!o || json_array_size(errors)) {
        if (o)
            fprintf(stderr, "neo4j: %s\n",
                    json_string_value(json_object_get(json_array_get(errors, 0), "message")));
        json_decref(o);
        return NULL;
    }
    json_t *rows = json_incref(json_object_get(json_object_get(o, "data"), "values"));
    json_decref(o);
    return rows;
}

long long it_neo4j_int(const char *cypher)
{
    json_t *rows = it_neo4j(cypher, NULL);
    json_t *v = json_array_get(json_array_get(rows, 0), 0);
    long long n = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(rows);
    return n;
}

long long it_neo4j_wait(const char *cypher, long long want, int timeout_ms)
{
    long long end = it_ms() + timeout_ms, v = -1;
    while (it_ms() < end) {
        v = it_neo4j_int(cypher);
        if (v == want)
            break;
        usleep(300000);
    }
    return v;
}

void it_neo4j_reset(void)
{
    /* Relationships first: a tag node of a 100k catalogue holds ~50,000 of them, and
     * a batch of DETACH DELETEs that meets it passed Neo4j's transaction memory limit
     * (600 MiB here), so every test after a large benchmark found the graph full. */
    /* At most 100,000 a request, until none is left: one request for the ~2 million
     * relationships two 100k benchmarks leave ran past the request's 60 s, and the
     * tests after it found 200,000 nodes. */
    for (int i = 0; i < 1000 && it_neo4j_int("MATCH ()-[r]->() WITH r LIMIT 100000 "
                                             "CALL { WITH r DELETE r } IN TRANSACTIONS OF 5000 "
                                             "ROWS RETURN count(*)") > 0;
         i++)
        ;
    for (int i = 0; i < 1000 && it_neo4j_int("MATCH (n) WITH n LIMIT 100000 "
                                             "CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF "
                                             "5000 ROWS RETURN count(*)") > 0;
         i++)
        ;
}
