/*
 * The asynchronous PostgreSQL client. An idle connection is watched, so a
 * server that closes it (a restart sends 57P01 and hangs up) is noticed at
 * once, and a connection is checked once more just before a query goes out
 * on it: a stale pooled connection costs a reconnect, not a failed query.
 * When a connection is lost under a query that was sent, a read (SELECT) is
 * sent once more on a fresh connection while its timeout allows; anything
 * else fails with a transient error, and retrying it is the caller's job
 * (the stage's backoff, at least once), so that one policy paces writes.
 * Connect attempts after a failed one wait a capped, jittered backoff;
 * queries queued meanwhile wait for the next attempt. Losses and recoveries
 * are logged and counted once per outage for the whole process (conn.h).
 */
#include "pg.h"

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define BACKEND "postgresql"
/* Reconnect pacing after a failed attempt: short, so a restarted server is used within 0.5 s. */
#define RECONNECT_INITIAL_MS 25
#define RECONNECT_MAX_MS 500

enum { ST_IDLE_DISCONNECTED, ST_CONNECTING, ST_READY, ST_BUSY };

struct query {
    char op[16]; /* the statement's first word, lower case, for the metrics */
    int64_t sent_us;
    int64_t deadline_us; /* set at the first send: a resend must finish by then */
    int read;            /* a SELECT: may be sent once more on a fresh connection */
    int retried;
    char *sql;
    int nparams;
    char **params;
    hsc_pg_fn cb;
    void *arg;
    struct query *next;
};

struct hsc_pg {
    struct ev_loop *loop;
    char *url;
    int timeout_ms;
    PGconn *conn;
    int state;
    ev_io io;
    ev_timer timer;
    ev_timer defer; /* starts queued work on the next loop turn */
    struct query *head, *tail;
    PGresult *result; /* the result being collected for head */
    int io_events;
    unsigned epoch;          /* the conn.h epoch the open connection was made in */
    hsc_backoff bo;          /* paces connect attempts after a failed one */
    int64_t next_connect_us; /* no attempt before this (monotonic) */
    ev_timer wait;           /* wakes queued queries at next_connect_us */
};

int hsc_pg_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) < 2)
        return HSC_ETRANSIENT;
    if (!strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2) || !strncmp(sqlstate, "54", 2))
        return HSC_EINVAL;
    return HSC_ETRANSIENT;
}

int hsc_pg_sqlstate_is_connection(const char *sqlstate)
{
    if (!sqlstate)
        return 0;
    /* 08: connection exception; 57P01..57P03: admin/crash shutdown, cannot connect now */
    return !strncmp(sqlstate, "08", 2) || !strcmp(sqlstate, "57P01") ||
           !strcmp(sqlstate, "57P02") || !strcmp(sqlstate, "57P03");
}

int hsc_pg_is_read(const char *sql)
{
    const char *p = sql;
    for (;;) {
        p += strspn(p, " \t\r\n(");
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end)
                return 0;
            p = end + 2;
            continue;
        }
        break;
    }
    return !strncasecmp(p, "select", 6) && !isalnum((unsigned char)p[6]) && p[6] != '_';
}

static void query_free(struct query *q)
{
    free(q->sql);
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q);
}

static struct query *pop(hsc_pg *pg)
{
    struct query *q = pg->head;
    if (q) {
        pg->head = q->next;
        if (!pg->head)
            pg->tail = NULL;
    }
    return q;
}

static void watch(hsc_pg *pg, int events)
{
    int fd = pg->conn ? PQsocket(pg->conn) : -1;
    if (ev_is_active(&pg->io) && (pg->io.fd != fd || pg->io_events != events))
        ev_io_stop(pg->loop, &pg->io);
    if (fd < 0 || !events)
        return;
    if (!ev_is_active(&pg->io)) {
        ev_io_set(&pg->io, fd, events);
        pg->io_events = events;
        ev_io_start(pg->loop, &pg->io);
    }
}

static void disconnect(hsc_pg *pg)
{
    watch(pg, 0);
    ev_timer_stop(pg->loop, &pg->timer);
    if (pg->result) {
        PQclear(pg->result);
        pg->result = NULL;
    }
    if (pg->conn) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    pg->state = ST_IDLE_DISCONNECTED;
}

/*
 * Fails every query queued now with err (each callback exactly once); one
 * queued by a callback meanwhile waits for the next connection.
 */
static void fail_all(hsc_pg *pg, const hsc_err *err)
{
    struct query *q = pg->head;
    pg->head = pg->tail = NULL;
    while (q) {
        struct query *next = q->next;
        q->cb(q->arg, NULL, err);
        query_free(q);
        q = next;
    }
}

/* Runs kick on the next loop turn, so no callback runs inside the call that queued work. */
static void schedule(hsc_pg *pg)
{
    if (pg->head && !ev_is_active(&pg->defer)) {
        ev_timer_set(&pg->defer, 0, 0);
        ev_timer_start(pg->loop, &pg->defer);
    }
}

static void record(struct query *q)
{
    hsc_metrics_backend_call(BACKEND, q->op, (double)(hsc_mono_us() - q->sent_us) / 1e6);
}

/*
 * The connection is gone (or could not be made): what says why. A query on
 * the wire is a read sent again on a fresh connection while its time
 * allows, or fails with err; queries not yet sent wait for the reconnect,
 * except after a failed connect attempt, which fails every queued query
 * (the server is not there) and delays the next attempt by the backoff.
 */
static void lose(hsc_pg *pg, int code, const char *what)
{
    hsc_err err;
    const char *m = pg->conn ? PQerrorMessage(pg->conn) : "";
    /* libpq's messages span lines; logs want one. */
    char msg[400];
    size_t n = 0;
    for (const char *p = m; *p && n + 1 < sizeof(msg); p++) {
        char c = (*p == '\n' || *p == '\t') ? ' ' : *p;
        if (c == ' ' && (n == 0 || msg[n - 1] == ' '))
            continue;
        msg[n++] = c;
    }
    while (n && msg[n - 1] == ' ')
        n--;
    msg[n] = '\0';
    char reason[480];
    snprintf(reason, sizeof(reason), "%s%s%s", what, *msg ? ": " : "", msg);
    hsc_err_set(&err, code, "postgresql: %s", reason);
    int was = pg->state;
    hsc_conn_lost(BACKEND, was == ST_CONNECTING ? hsc_conn_epoch(BACKEND) : pg->epoch, reason);
    disconnect(pg);
    if (was == ST_CONNECTING) {
        pg->next_connect_us = hsc_mono_us() + 1000 * hsc_backoff_next(&pg->bo);
        fail_all(pg, &err);
        return;
    }
    if (pg->bo.attempt) /* it served nothing since the last failed attempt: no tight loop */
        pg->next_connect_us = hsc_mono_us() + 1000 * hsc_backoff_next(&pg->bo);
    struct query *q = pg->head;
    if (was == ST_BUSY && q) {
        if (code != HSC_ETIMEDOUT && q->read && !q->retried && hsc_mono_us() < q->deadline_us) {
            q->retried = 1; /* stays at the head: first on the fresh connection */
            hsc_metrics_backend_retry(BACKEND, 0);
        } else {
            pop(pg);
            record(q);
            q->cb(q->arg, NULL, &err);
            query_free(q);
        }
    }
    schedule(pg);
}

static void kick(hsc_pg *pg);

static void continue_connect(hsc_pg *pg)
{
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        watch(pg, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        watch(pg, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        ev_timer_stop(pg->loop, &pg->timer);
        PQsetnonblocking(pg->conn, 1);
        pg->state = ST_READY;
        pg->epoch = hsc_conn_up(BACKEND);
        pg->next_connect_us = 0;
        watch(pg, EV_READ); /* idle, but a server that hangs up is seen at once */
        kick(pg);
        return;
    default:
        lose(pg, HSC_ETRANSIENT, "connect failed");
        return;
    }
}

static void start_connect(hsc_pg *pg)
{
    pg->conn = PQconnectStart(pg->url);
    pg->state = ST_CONNECTING;
    if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
        lose(pg, HSC_ETRANSIENT, "connect failed");
        return;
    }
    ev_timer_set(&pg->timer, pg->timeout_ms / 1000.0, 0);
    ev_timer_start(pg->loop, &pg->timer);
    continue_connect(pg);
}

static void finish_query(hsc_pg *pg)
{
    PGresult *res = pg->result;
    pg->result = NULL;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (PQstatus(pg->conn) == CONNECTION_BAD || hsc_pg_sqlstate_is_connection(state)) {
            /* the server ended the session (a restart: 57P01), not this query */
            char what[64];
            snprintf(what, sizeof(what), "connection lost (SQLSTATE %s)", state ? state : "none");
            if (res)
                PQclear(res);
            lose(pg, HSC_ETRANSIENT, what);
            return;
        }
    }
    struct query *q = pop(pg);
    record(q);
    hsc_backoff_reset(&pg->bo); /* the connection has answered: the next loss reconnects at once */
    ev_timer_stop(pg->loop, &pg->timer);
    pg->state = ST_READY;
    watch(pg, EV_READ);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        q->cb(q->arg, res, NULL);
    } else {
        hsc_err err;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        hsc_err_set(&err, hsc_pg_classify(state), "postgresql: %s (SQLSTATE %s)",
                    msg ? msg : "query failed", state ? state : "none");
        snprintf(err.server_status, sizeof(err.server_status), "%s", state ? state : "");
        q->cb(q->arg, NULL, &err);
    }
    if (res)
        PQclear(res);
    query_free(q);
    kick(pg);
}

static void read_results(hsc_pg *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        lose(pg, HSC_ETRANSIENT, "connection lost");
        return;
    }
    while (!PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            finish_query(pg);
            return;
        }
        /* Keep the first error, else the last result. */
        if (pg->result && PQresultStatus(pg->result) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            if (pg->result)
                PQclear(pg->result);
            pg->result = r;
        }
    }
}

/*
 * True if the idle connection has been closed by the server: what the loop
 * may not have told us yet this turn (the socket is readable with the
 * server's goodbye) is read now, before a query is lost on it.
 */
static int idle_conn_dead(hsc_pg *pg)
{
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return 1;
    struct pollfd p = {.fd = PQsocket(pg->conn), .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    return !PQconsumeInput(pg->conn) || PQstatus(pg->conn) == CONNECTION_BAD;
}

static void send_head(hsc_pg *pg)
{
    struct query *q = pg->head;
    if (idle_conn_dead(pg)) {
        lose(pg, HSC_ETRANSIENT, "connection closed by the server"); /* q was not sent */
        return;
    }
    q->sent_us = hsc_mono_us();
    double timeout_s = pg->timeout_ms / 1000.0;
    if (!q->retried)
        q->deadline_us = q->sent_us + 1000LL * pg->timeout_ms;
    else if ((timeout_s = (double)(q->deadline_us - q->sent_us) / 1e6) < 0.001)
        timeout_s = 0.001; /* a resend has what is left of the first send's time */
    if (!PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL,
                           NULL, 0)) {
        lose(pg, HSC_ETRANSIENT, "send failed"); /* not sent: waits for the fresh connection */
        return;
    }
    pg->state = ST_BUSY;
    ev_timer_set(&pg->timer, timeout_s, 0);
    ev_timer_start(pg->loop, &pg->timer);
    int f = PQflush(pg->conn);
    if (f < 0) {
        lose(pg, HSC_ETRANSIENT, "send failed");
        return;
    }
    watch(pg, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void kick(hsc_pg *pg)
{
    if (!pg->head)
        return;
    if (pg->state == ST_IDLE_DISCONNECTED) {
        int64_t wait_us = pg->next_connect_us - hsc_mono_us();
        if (wait_us > 0) { /* backing off after a failed attempt: the queue waits for the next */
            if (!ev_is_active(&pg->wait)) {
                ev_timer_set(&pg->wait, (double)wait_us / 1e6, 0);
                ev_timer_start(pg->loop, &pg->wait);
            }
            return;
        }
        start_connect(pg);
    } else if (pg->state == ST_READY) {
        send_head(pg);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_pg *pg = w->data;
    if (pg->state == ST_CONNECTING) {
        continue_connect(pg);
        return;
    }
    if (pg->state != ST_BUSY) {
        /* Idle socket readable: the server closed it (a restart) or sent a notice. */
        if (pg->conn && (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) == CONNECTION_BAD))
            lose(pg, HSC_ETRANSIENT, "connection closed by the server");
        return;
    }
    if (revents & EV_WRITE) {
        int f = PQflush(pg->conn);
        if (f < 0) {
            lose(pg, HSC_ETRANSIENT, "send failed");
            return;
        }
        if (f == 0)
            watch(pg, EV_READ);
    }
    if (revents & EV_READ)
        read_results(pg);
    (void)loop;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_pg *pg = w->data;
    lose(pg, HSC_ETIMEDOUT, pg->state == ST_CONNECTING ? "connect timed out" : "query timed out");
    (void)loop;
    (void)revents;
}

/* The defer and wait timers: start what is queued. */
static void defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kick(w->data);
    (void)loop;
    (void)revents;
}

hsc_pg *hsc_pg_new(struct ev_loop *loop, const char *url, int query_timeout_ms, hsc_err *err)
{
    hsc_pg *pg = calloc(1, sizeof(*pg));
    if (!pg || !(pg->url = strdup(url))) {
        free(pg);
        hsc_err_set(err, HSC_ENOMEM, "postgresql: out of memory");
        return NULL;
    }
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    if (!opts) {
        hsc_err_set(err, HSC_ECONFIG, "pg.url: %s", errmsg ? errmsg : "cannot be parsed");
        PQfreemem(errmsg);
        free(pg->url);
        free(pg);
        return NULL;
    }
    PQconninfoFree(opts);
    pg->loop = loop;
    pg->timeout_ms = query_timeout_ms > 0 ? query_timeout_ms : 30000;
    ev_init(&pg->io, io_cb);
    pg->io.data = pg;
    ev_init(&pg->timer, timer_cb);
    pg->timer.data = pg;
    ev_init(&pg->defer, defer_cb);
    pg->defer.data = pg;
    ev_init(&pg->wait, defer_cb);
    pg->wait.data = pg;
    hsc_backoff_init(&pg->bo, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS,
                     (uint64_t)hsc_mono_us() ^ (uint64_t)(uintptr_t)pg);
    return pg;
}

int hsc_pg_query(hsc_pg *pg, const char *sql, int nparams, const char *const *params, hsc_pg_fn cb,
                 void *arg, hsc_err *err)
{
    return hsc_pg_query_op(pg, NULL, sql, nparams, params, cb, arg, err);
}

int hsc_pg_query_op(hsc_pg *pg, const char *op, const char *sql, int nparams,
                    const char *const *params, hsc_pg_fn cb, void *arg, hsc_err *err)
{
    struct query *q = calloc(1, sizeof(*q));
    if (!q)
        return hsc_err_set(err, HSC_ENOMEM, "postgresql: out of memory");
    q->sql = strdup(sql);
    if (op) {
        snprintf(q->op, sizeof(q->op), "%s", op);
    } else {
        const char *w = sql + strspn(sql, " \t\r\n(");
        for (size_t i = 0; i + 1 < sizeof(q->op) && isalpha((unsigned char)w[i]); i++)
            q->op[i] = (char)tolower((unsigned char)w[i]);
    }
    q->params = calloc((size_t)(nparams ? nparams : 1), sizeof(char *));
    if (!q->sql || !q->params) {
        query_free(q);
        return hsc_err_set(err, HSC_ENOMEM, "postgresql: out of memory");
    }
    q->nparams = nparams;
    for (int i = 0; i < nparams; i++) {
        if (params[i] && !(q->params[i] = strdup(params[i]))) {
            query_free(q);
            return hsc_err_set(err, HSC_ENOMEM, "postgresql: out of memory");
        }
    }
    q->cb = cb;
    q->arg = arg;
    q->read = hsc_pg_is_read(sql);
    if (pg->tail)
        pg->tail->next = q;
    else
        pg->head = q;
    pg->tail = q;
    /* Start on the next loop turn, so that a callback never runs inside this call. */
    schedule(pg);
    return HSC_OK;
}

int hsc_pg_connected(const hsc_pg *pg)
{
    return pg->state == ST_READY || pg->state == ST_BUSY;
}

void hsc_pg_free(hsc_pg *pg)
{
    if (!pg)
        return;
    disconnect(pg);
    ev_timer_stop(pg->loop, &pg->defer);
    ev_timer_stop(pg->loop, &pg->wait);
    hsc_err err;
    hsc_err_set(&err, HSC_ECANCELED, "postgresql: client closed");
    fail_all(pg, &err);
    free(pg->url);
    free(pg);
}
