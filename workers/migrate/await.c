/*
 * One backend call at a time, for a batch tool: each Neo4j, Milvus or Redis
 * call is started on the loop and the loop run until it answers, which keeps
 * the shared clients (and their retries) without callbacks everywhere;
 * PostgreSQL is called synchronously, one statement at a time.
 */
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_internal.h"
#include "pg.h"
#include "util.h"

void mig_await_run(struct mig *m, struct await *w)
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
json_t *mig_neo4j_rows(struct mig *m, hsc_neo4j *n, const char *cypher, json_t *params,
                       hsc_err *err)
{
    struct await w = {0};
    if (hsc_neo4j_run(n, cypher, params, on_neo4j, &w, err))
        return NULL;
    mig_await_run(m, &w);
    if (w.code) {
        hsc_err_set(err, w.code, "neo4j: %s", w.msg);
        return NULL;
    }
    return w.rows;
}

void mig_on_milvus(void *arg, const hsc_milvus_result *res, const hsc_err *err)
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

void mig_on_redis(void *arg, const redisReply *reply, const hsc_err *err)
{
    await_answer(arg, err);
    (void)reply;
}

void mig_entities_free(hsc_milvus_entity *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].vec);
    free(e);
}

PGresult *mig_pg_exec(PGconn *c, const char *sql, int n, const char *const *params, hsc_err *err)
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

PGconn *mig_pg_connect(const char *url, const char *what, hsc_err *err)
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

/* Sleeps while still serving delivery reports, and wakes early on a signal. */
void mig_loop_sleep(struct mig *m, double secs)
{
    int64_t until = hsc_mono_us() + (int64_t)(secs * 1e6);
    while (!mig_stop && hsc_mono_us() < until) {
        ev_run(m->loop, EVRUN_NOWAIT);
        int64_t left = until - hsc_mono_us();
        if (left > 0)
            usleep((useconds_t)(left < 20000 ? left : 20000));
    }
}
