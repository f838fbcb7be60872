/*
 * hiredis's async context lives only while connected: hiredis frees it after
 * the disconnect callback. So the client keeps the address and opens a new
 * context when a command arrives and none is open; commands sent while the
 * connection is still being made are buffered by hiredis.
 */
#include "redis.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

struct hsc_redis {
    struct ev_loop *loop;
    redisAsyncContext *ac;
    char host[256], password[256];
    int port, db, timeout_ms;
    int freeing;
};

/* One command: alive until hiredis calls back, even if it timed out before. */
struct pending {
    hsc_redis *r;
    hsc_redis_fn cb;
    void *arg;
    ev_timer timer;
    int answered;
    int64_t start_us;
    char op[16]; /* the command, lower case, for the metrics */
};

/* Records the call for the metrics once, when it is answered or times out. */
static void record(struct pending *p)
{
    hsc_metrics_backend_call("redis", p->op, (double)(hsc_mono_us() - p->start_us) / 1e6);
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
    return r;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    hsc_redis *r = ac->data;
    if (status != REDIS_OK) {
        hsc_log_warn("redis connect failed", "error", ac->errstr, NULL);
        if (r && r->ac == ac)
            r->ac = NULL; /* hiredis frees it after this callback */
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    hsc_redis *r = ac->data;
    if (r && r->ac == ac)
        r->ac = NULL;
    if (status != REDIS_OK && r && !r->freeing)
        hsc_log_warn("redis disconnected", "error", ac->errstr, NULL);
}

static void on_reply(redisAsyncContext *ac, void *vreply, void *privdata)
{
    struct pending *p = privdata;
    redisReply *reply = vreply;
    hsc_redis *r = p->r;
    ev_timer_stop(r->loop, &p->timer);
    if (!p->answered) {
        p->answered = 1;
        record(p);
        hsc_err err = {0};
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
            p->cb(p->arg, NULL, &err);
        } else {
            p->cb(p->arg, reply, NULL);
        }
    }
    free(p);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pending *p = w->data;
    hsc_redis *r = p->r;
    if (!p->answered) {
        p->answered = 1;
        record(p);
        hsc_err err;
        hsc_err_set(&err, HSC_ETRANSIENT, "redis %s:%d: no answer within %d ms", r->host, r->port,
                    r->timeout_ms);
        p->cb(p->arg, NULL, &err);
    }
    /* A slow server gets a fresh connection; pending replies arrive as NULL and free p. */
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* not Disconnect: that would wait for the hung replies */
    }
    (void)loop;
    (void)revents;
}

static int connect_now(hsc_redis *r, hsc_err *err)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac)
        return hsc_err_set(err, HSC_ENOMEM, "redis: out of memory");
    if (ac->err) {
        hsc_err_set(err, HSC_ETRANSIENT, "redis %s:%d: %s", r->host, r->port, ac->errstr);
        redisAsyncFree(ac);
        return err->code;
    }
    ac->data = r;
    redisLibevAttach(r->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    /* Sent first on the new connection, ahead of whatever the caller queues. */
    if (r->password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->password);
    if (r->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
    return HSC_OK;
}

int hsc_redis_command(hsc_redis *r, hsc_redis_fn cb, void *arg, int argc, const char **argv,
                      const size_t *lens, hsc_err *err)
{
    if (!r->ac && connect_now(r, err))
        return err->code;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->start_us = hsc_mono_us();
    for (size_t i = 0; argc > 0 && i < lens[0] && i + 1 < sizeof(p->op); i++)
        p->op[i] = (char)tolower((unsigned char)argv[0][i]);
    ev_timer_init(&p->timer, on_timeout, (double)r->timeout_ms / 1000.0, 0.);
    p->timer.data = p;
    if (redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return hsc_err_set(err, HSC_ETRANSIENT, "redis %s:%d: cannot send", r->host, r->port);
    }
    ev_timer_start(r->loop, &p->timer);
    return HSC_OK;
}

void hsc_redis_free(hsc_redis *r)
{
    if (!r)
        return;
    r->freeing = 1;
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
