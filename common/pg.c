/*
 * The asynchronous PostgreSQL client. A failed or timed-out connection is
 * closed and every queued query fails with a transient error; the next query
 * reconnects. Retrying is the caller's job (the stage's backoff), so that one
 * policy paces every backend.
 */
#include "pg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

enum { ST_IDLE_DISCONNECTED, ST_CONNECTING, ST_READY, ST_BUSY };

struct query {
    char op[16]; /* the statement's first word, lower case, for the metrics */
    int64_t sent_us;
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
};

int hsc_pg_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) < 2)
        return HSC_ETRANSIENT;
    if (!strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2) || !strncmp(sqlstate, "54", 2))
        return HSC_EINVAL;
    return HSC_ETRANSIENT;
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

/* Fails every queued query with err (each callback exactly once). */
static void fail_all(hsc_pg *pg, const hsc_err *err)
{
    struct query *q;
    while ((q = pop(pg))) {
        q->cb(q->arg, NULL, err);
        query_free(q);
    }
}

static void conn_error(hsc_pg *pg, int code, const char *what)
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
    hsc_err_set(&err, code, "postgresql: %s%s%s", what, *msg ? ": " : "", msg);
    disconnect(pg);
    fail_all(pg, &err);
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
        watch(pg, 0);
        kick(pg);
        return;
    default:
        conn_error(pg, HSC_ETRANSIENT, "connect failed");
        return;
    }
}

static void start_connect(hsc_pg *pg)
{
    pg->conn = PQconnectStart(pg->url);
    if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
        conn_error(pg, HSC_ETRANSIENT, "connect failed");
        return;
    }
    pg->state = ST_CONNECTING;
    ev_timer_set(&pg->timer, pg->timeout_ms / 1000.0, 0);
    ev_timer_start(pg->loop, &pg->timer);
    continue_connect(pg);
}

static void finish_query(hsc_pg *pg)
{
    struct query *q = pop(pg);
    hsc_metrics_backend_call("postgresql", q->op, (double)(hsc_mono_us() - q->sent_us) / 1e6);
    PGresult *res = pg->result;
    pg->result = NULL;
    ev_timer_stop(pg->loop, &pg->timer);
    pg->state = ST_READY;
    watch(pg, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        q->cb(q->arg, res, NULL);
    } else {
        hsc_err err;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        int code = hsc_pg_classify(state);
        hsc_err_set(&err, code, "postgresql: %s (SQLSTATE %s)", msg ? msg : "query failed",
                    state ? state : "none");
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
            code = HSC_ETRANSIENT;
            err.code = code;
        }
        q->cb(q->arg, NULL, &err);
        if (PQstatus(pg->conn) == CONNECTION_BAD)
            disconnect(pg);
    }
    if (res)
        PQclear(res);
    query_free(q);
    kick(pg);
}

static void read_results(hsc_pg *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        conn_error(pg, HSC_ETRANSIENT, "connection lost");
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

static void send_head(hsc_pg *pg)
{
    struct query *q = pg->head;
    q->sent_us = hsc_mono_us();
    if (!PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL,
                           NULL, 0)) {
        conn_error(pg, HSC_ETRANSIENT, "send failed");
        return;
    }
    pg->state = ST_BUSY;
    ev_timer_set(&pg->timer, pg->timeout_ms / 1000.0, 0);
    ev_timer_start(pg->loop, &pg->timer);
    int f = PQflush(pg->conn);
    if (f < 0) {
        conn_error(pg, HSC_ETRANSIENT, "send failed");
        return;
    }
    watch(pg, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void kick(hsc_pg *pg)
{
    if (!pg->head)
        return;
    if (pg->state == ST_IDLE_DISCONNECTED)
        start_connect(pg);
    else if (pg->state == ST_READY)
        send_head(pg);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_pg *pg = w->data;
    if (pg->state == ST_CONNECTING) {
        continue_connect(pg);
        return;
    }
    if (pg->state != ST_BUSY) {
        /* Idle socket readable: the server closed it or sent a notice. */
        if (pg->conn && (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) == CONNECTION_BAD))
            disconnect(pg);
        watch(pg, 0);
        return;
    }
    if (revents & EV_WRITE) {
        int f = PQflush(pg->conn);
        if (f < 0) {
            conn_error(pg, HSC_ETRANSIENT, "send failed");
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
    conn_error(pg, HSC_ETIMEDOUT,
               pg->state == ST_CONNECTING ? "connect timed out" : "query timed out");
    (void)loop;
    (void)revents;
}

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
    if (pg->tail)
        pg->tail->next = q;
    else
        pg->head = q;
    pg->tail = q;
    /* Start on the next loop turn, so that a callback never runs inside this call. */
    if (!ev_is_active(&pg->defer)) {
        ev_timer_set(&pg->defer, 0, 0);
        ev_timer_start(pg->loop, &pg->defer);
    }
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
    hsc_err err;
    hsc_err_set(&err, HSC_ECANCELED, "postgresql: client closed");
    fail_all(pg, &err);
    free(pg->url);
    free(pg);
}
