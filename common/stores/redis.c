/*
 * hiredis's async context lives only while connected: hiredis frees it after
 * the disconnect callback. So the client keeps the address and opens a new
 * context when a command arrives and none is open; commands sent while the
 * connection is still being made are buffered by hiredis.
 *
 * A lost connection (EOF, reset, a server that stopped answering) is
 * recorded once per outage (conn.h, backend "redis"); a read command that
 * was on it is sent once more on a fresh connection while its timeout
 * allows, from the formatted copy each command keeps. After a failed
 * connect attempt the next one waits a capped, jittered backoff, and the
 * commands that arrive meanwhile wait for it in the client's own queue.
 */
#include "redis.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define BACKEND "redis"
#define RECONNECT_INITIAL_MS 25
#define RECONNECT_MAX_MS 500

struct pending;

struct hsc_redis {
    struct ev_loop *loop;
    redisAsyncContext *ac;
    char host[256], password[256];
    int port, db, timeout_ms;
    int freeing;
    int ready;                               /* ac's connect callback said it is up */
    unsigned epoch;                          /* the conn.h epoch ac was opened in */
    hsc_backoff bo;                          /* paces connect attempts after a failed one */
    int64_t next_connect_us;                 /* no attempt before this (monotonic) */
    struct pending *waiting, **waiting_tail; /* for the next connection, in order */
    ev_timer resend;                         /* sends the waiting commands */
};

/* One command: alive until hiredis calls back (even if it timed out before), or while waiting. */
struct pending {
    hsc_redis *r;
    hsc_redis_fn cb;
    void *arg;
    ev_timer timer;
    int answered;
    int sent;         /* hiredis holds it; else it is in r->waiting */
    int read, resent; /* a read may be sent once more on a fresh connection */
    char *cmd;        /* the formatted command, for a resend */
    size_t len;
    int64_t start_us;
    char op[16]; /* the command, lower case, for the metrics */
    struct pending *next;
};

int hsc_redis_is_read(const char *command)
{
    static const char *const READS[] = {
        "get",     "mget",    "exists", "ttl",      "pttl",      "strlen", "hget",   "hmget",
        "hgetall", "hexists", "hlen",   "smembers", "sismember", "scard",  "zrange", "zscore",
        "zcard",   "lrange",  "llen",   "type",     "ping",      NULL};
    for (int i = 0; READS[i]; i++)
        if (!strcasecmp(command, READS[i]))
            return 1;
    return 0;
}

/* Records the call for the metrics once, when it is answered or times out. */
static void record(struct pending *p)
{
    hsc_metrics_backend_call(BACKEND, p->op, (double)(hsc_mono_us() - p->start_us) / 1e6);
}

static void pending_free(struct pending *p)
{
    ev_timer_stop(p->r->loop, &p->timer);
    redisFreeCommand(p->cmd);
    free(p);
}

int hsc_redis_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db,
                        char *password, size_t pwcap, hsc_err *err)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8))
        return hsc_err_set(err, HSC_ECONFIG, "redis.url: must start with redis://");
    p += 8;
    password[0] = '\0';
    *port = 6379;
    *db = 0;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= pwcap)
            return hsc_err_set(err, HSC_ECONFIG, "redis.url: password too long");
        memcpy(password, pw, n);
        password[n] = '\0';
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= hostcap)
        return hsc_err_set(err, HSC_ECONFIG, "redis.url: missing or overlong host");
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535)
            return hsc_err_set(err, HSC_ECONFIG, "redis.url: bad port");
        *port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || v < 0 || v > 1000)
            return hsc_err_set(err, HSC_ECONFIG, "redis.url: bad database number");
        *db = (int)v;
    } else if (*p && strcmp(p, "/")) {
        return hsc_err_set(err, HSC_ECONFIG, "redis.url: unexpected '%s'", p);
    }
    return HSC_OK;
}

static void on_resend(struct ev_loop *loop, ev_timer *w, int revents);

hsc_redis *hsc_redis_new(struct ev_loop *loop, const char *url, int timeout_ms, hsc_err *err)
{
    hsc_redis *r = calloc(1, sizeof(*r));
    if (!r) {
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    if (hsc_redis_parse_url(url, r->host, sizeof(r->host), &r->port, &r->db, r->password,
                            sizeof(r->password), err)) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    r->waiting_tail = &r->waiting;
    ev_init(&r->resend, on_resend);
    r->resend.data = r;
    hsc_backoff_init(&r->bo, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS,
                     (uint64_t)hsc_mono_us() ^ (uint64_t)(uintptr_t)r);
    return r;
}

/* Wakes the waiting commands: on the next loop turn, or when the backoff allows a connect. */
static void schedule_resend(hsc_redis *r)
{
    if (!r->waiting || ev_is_active(&r->resend))
        return;
    int64_t wait_us = r->ac ? 0 : r->next_connect_us - hsc_mono_us();
    ev_timer_set(&r->resend, wait_us > 0 ? (double)wait_us / 1e6 : 0., 0.);
    ev_timer_start(r->loop, &r->resend);
}

/* A connect attempt failed: record it and delay the next. */
static void connect_failed(hsc_redis *r, const char *why)
{
    hsc_conn_lost(BACKEND, hsc_conn_epoch(BACKEND), why);
    r->next_connect_us = hsc_mono_us() + 1000 * hsc_backoff_next(&r->bo);
}

/* ac is going away (hiredis frees it after its callbacks): the client forgets it once. */
static void dropped(hsc_redis *r, const redisAsyncContext *ac, const char *why)
{
    if (r->ac != ac)
        return;
    r->ac = NULL;
    if (r->freeing)
        return;
    if (r->ready) {
        hsc_conn_lost(BACKEND, r->epoch, why);
        if (r->bo.attempt) /* it answered nothing since the last failed attempt: no tight loop */
            r->next_connect_us = hsc_mono_us() + 1000 * hsc_backoff_next(&r->bo);
    } else {
        connect_failed(r, why);
    }
    r->ready = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    hsc_redis *r = ac->data;
    if (!r || r->ac != ac)
        return;
    if (status != REDIS_OK) {
        dropped(r, ac, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    r->ready = 1;
    r->epoch = hsc_conn_up(BACKEND);
    r->next_connect_us = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    hsc_redis *r = ac->data;
    if (r && status != REDIS_OK)
        dropped(r, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    else if (r && r->ac == ac)
        r->ac = NULL;
}

static void enqueue(hsc_redis *r, struct pending *p)
{
    p->sent = 0;
    p->next = NULL;
    *r->waiting_tail = p;
    r->waiting_tail = &p->next;
}

static void on_reply(redisAsyncContext *ac, void *vreply, void *privdata)
{
    struct pending *p = privdata;
    redisReply *reply = vreply;
    hsc_redis *r = p->r;
    if (!reply)
        dropped(r, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    if (!p->answered) {
        hsc_err err = {0};
        if (!reply && !r->freeing && p->read && !p->resent &&
            hsc_mono_us() < p->start_us + 1000LL * r->timeout_ms) {
            /* the connection died under a read: once more on a fresh one, within its timeout */
            p->resent = 1;
            enqueue(r, p);
            schedule_resend(r);
            hsc_metrics_backend_retry(BACKEND, 0);
            return;
        }
        p->answered = 1;
        record(p);
        if (!reply) {
            if (r->freeing)
                hsc_err_set(&err, HSC_ECANCELED, "redis: cancelled by shutdown");
            else
                hsc_err_set(&err, HSC_ETRANSIENT, "redis %s:%d: %s", r->host, r->port,
                            ac->errstr[0] ? ac->errstr : "connection lost");
            p->cb(p->arg, NULL, &err);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            /* LOADING and BUSY are a server that will answer later, not a bad command. */
            int later = !strncmp(reply->str, "LOADING", 7) || !strncmp(reply->str, "BUSY", 4) ||
                        !strncmp(reply->str, "TRYAGAIN", 8);
            hsc_err_set(&err, later ? HSC_ETRANSIENT : HSC_EINVAL, "redis: %s", reply->str);
            /* the error's first word is its kind: ERR, WRONGTYPE, NOSCRIPT, LOADING, ... */
            snprintf(err.server_status, sizeof(err.server_status), "%.*s",
                     (int)strcspn(reply->str, " "), reply->str);
            p->cb(p->arg, NULL, &err);
        } else {
            hsc_backoff_reset(&r->bo); /* the connection has answered */
            p->cb(p->arg, reply, NULL);
        }
    }
    pending_free(p);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pending *p = w->data;
    hsc_redis *r = p->r;
    (void)loop;
    (void)revents;
    if (p->answered)
        return;
    p->answered = 1;
    record(p);
    hsc_err err;
    hsc_err_set(&err, HSC_ETRANSIENT, "redis %s:%d: no answer within %d ms", r->host, r->port,
                r->timeout_ms);
    if (!p->sent) { /* still waiting for a connection: ours to free */
        for (struct pending **pp = &r->waiting; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                if (!*pp)
                    r->waiting_tail = pp;
                break;
            }
        p->cb(p->arg, NULL, &err);
        pending_free(p);
        return;
    }
    p->cb(p->arg, NULL, &err);
    /* A slow server gets a fresh connection; pending replies arrive as NULL and free p. */
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        char why[96];
        snprintf(why, sizeof(why), "no answer within %d ms", r->timeout_ms);
        dropped(r, ac, why);
        redisAsyncFree(ac); /* not Disconnect: that would wait for the hung replies */
    }
}

static int connect_now(hsc_redis *r, hsc_err *err)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac)
        return hsc_err_set(err, HSC_ENOMEM, "redis: out of memory");
    if (ac->err) {
        hsc_err_set(err, HSC_ETRANSIENT, "redis %s:%d: %s", r->host, r->port, ac->errstr);
        connect_failed(r, ac->errstr);
        redisAsyncFree(ac);
        return err->code;
    }
    ac->data = r;
    redisLibevAttach(r->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->ready = 0;
    /* Sent first on the new connection, ahead of whatever the caller queues. */
    if (r->password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->password);
    if (r->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
    return HSC_OK;
}

/* Hands p to hiredis on the open connection; 0 or an error (p still ours). */
static int send_one(hsc_redis *r, struct pending *p, hsc_err *err)
{
    if (redisAsyncFormattedCommand(r->ac, on_reply, p, p->cmd, p->len) != REDIS_OK)
        return hsc_err_set(err, HSC_ETRANSIENT, "redis %s:%d: cannot send", r->host, r->port);
    p->sent = 1;
    return HSC_OK;
}

/* Fails one waiting command with err (from the loop). */
static void fail_waiting(struct pending *p, const hsc_err *err)
{
    p->answered = 1;
    record(p);
    p->cb(p->arg, NULL, err);
    pending_free(p);
}

static void on_resend(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_redis *r = w->data;
    (void)loop;
    (void)revents;
    if (!r->waiting)
        return;
    hsc_err err = {0};
    if (!r->ac) {
        if (r->next_connect_us > hsc_mono_us()) {
            schedule_resend(r);
            return;
        }
        if (connect_now(r, &err)) {
            struct pending *p = r->waiting;
            r->waiting = NULL;
            r->waiting_tail = &r->waiting;
            while (p) {
                struct pending *next = p->next;
                fail_waiting(p, &err);
                p = next;
            }
            return;
        }
    }
    struct pending *p = r->waiting;
    r->waiting = NULL;
    r->waiting_tail = &r->waiting;
    while (p) {
        struct pending *next = p->next;
        if (send_one(r, p, &err))
            fail_waiting(p, &err);
        p = next;
    }
}

int hsc_redis_command(hsc_redis *r, hsc_redis_fn cb, void *arg, int argc, const char **argv,
                      const size_t *lens, hsc_err *err)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    int len = redisFormatCommandArgv(&p->cmd, argc, argv, lens);
    if (len < 0) {
        free(p);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    p->len = (size_t)len;
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->start_us = hsc_mono_us();
    for (size_t i = 0; argc > 0 && i < lens[0] && i + 1 < sizeof(p->op); i++)
        p->op[i] = (char)tolower((unsigned char)argv[0][i]);
    p->read = hsc_redis_is_read(p->op);
    ev_timer_init(&p->timer, on_timeout, (double)r->timeout_ms / 1000.0, 0.);
    p->timer.data = p;
    if (!r->ac && (r->waiting || r->next_connect_us > p->start_us)) {
        /* backing off after a failed connect: wait for the next attempt */
        ev_timer_start(r->loop, &p->timer);
        enqueue(r, p);
        schedule_resend(r);
        return HSC_OK;
    }
    if ((!r->ac && connect_now(r, err)) || send_one(r, p, err)) {
        pending_free(p);
        return err->code;
    }
    ev_timer_start(r->loop, &p->timer);
    return HSC_OK;
}

void hsc_redis_free(hsc_redis *r)
{
    if (!r)
        return;
    r->freeing = 1;
    ev_timer_stop(r->loop, &r->resend);
    hsc_err err;
    hsc_err_set(&err, HSC_ECANCELED, "redis: cancelled by shutdown");
    struct pending *p = r->waiting;
    r->waiting = NULL;
    while (p) {
        struct pending *next = p->next;
        fail_waiting(p, &err);
        p = next;
    }
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* calls every pending callback with a NULL reply */
    }
    free(r);
}

/*
 * Raising instead of setting makes the write order irrelevant: a retried or
 * late writer holding an older version can never move a key backwards.
 */
static const char RAISE_LUA[] =
    "for i, k in ipairs(KEYS) do\n"
    "  local cur = tonumber(redis.call('GET', k) or '-1')\n"
    "  if tonumber(ARGV[i]) > cur then redis.call('SET', k, ARGV[i]) end\n"
    "end\n"
    "return #KEYS";

int hsc_redis_raise(hsc_redis *r, const char *const *keys, const long long *vals, size_t n,
                    hsc_redis_fn cb, void *arg, hsc_err *err)
{
    size_t argc = 3 + 2 * n;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char *nums = calloc(n + 1, 24);
    if (!argv || !lens || !nums) {
        free(argv);
        free(lens);
        free(nums);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    char nkeys[24];
    snprintf(nkeys, sizeof(nkeys), "%zu", n);
    argv[0] = "EVAL", argv[1] = RAISE_LUA, argv[2] = nkeys;
    for (size_t i = 0; i < n; i++) {
        argv[3 + i] = keys[i];
        snprintf(nums + 24 * i, 24, "%lld", vals[i]);
        argv[3 + n + i] = nums + 24 * i;
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int rc = hsc_redis_command(r, cb, arg, (int)argc, argv, lens, err);
    free(argv);
    free(lens);
    free(nums);
    return rc;
}
