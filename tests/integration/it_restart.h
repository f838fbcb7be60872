/*
 * The body of the "query survives a server restart" tests (header-only, test
 * code): hsc-query answers a steady search load (40 searches/s, 2 s
 * deadlines) while one server of the real stack is stopped and started
 * again with deploy/local/down and up. A child process runs the restart and
 * probes the server on fresh connections of its own, so the load never
 * pauses and the moment the server answers again is known. Every search is
 * classed by when it was sent: before the restart, during it, or after the
 * server answers again; the searches after must all be ok and whole (no
 * stale pooled connection may fail one), and hsc-query must log the loss
 * and the recovery once each and count them in /metrics.
 *
 * Two restarts: one under the load, and (for PostgreSQL and Redis) one while
 * the load pauses (from the stop until the server answers again), as when a
 * server is restarted in a quiet hour. Under a steady load every pooled connection meets the outage
 * while the server is down; after a quiet restart they are all stale when
 * the first searches arrive, which is where today's clients failed.
 *
 * The caller holds /tmp/hsc-stack.lock (tests/run and the README's ctest
 * line take it); the child always starts the server again, even if the
 * test fails meanwhile.
 */
#ifndef HSC_IT_RESTART_H
#define HSC_IT_RESTART_H

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sys/wait.h>

#include "it_query.h"
#include "query/graph.h"
#include "redis.h"

#define ITR_DEADLINE_MS 2000
#define ITR_PERIOD_MS 25 /* 40 searches/s */
#define ITR_WARM_MS 3000 /* load before the restart: every pooled connection is in use */
#define ITR_AFTER_MS 5000
#define ITR_MAX 4096

/* One server to restart. */
struct itr_case {
    const char *service; /* deploy/local name: postgres, redis, milvus, neo4j */
    const char *backend; /* the clients' name in log lines and metrics labels */
    const char *tag;     /* consumer groups of this test */
    int down_ms;         /* how long the server stays stopped */
    int cache;           /* searches use the cache (so Redis is part of every answer) */
    int user;            /* searches name a new user each (a PostgreSQL policy read each) */
    int strategy;        /* forced, so that only the backends under test take part */
    /*
     * Also restart it in a quiet hour: for the clients that watch their idle
     * connections (PostgreSQL, Redis). curl prunes a dead pooled connection
     * before reusing it without an error to tell, and Milvus and Neo4j take
     * 30-70 s to come back, so the HTTP backends restart once, under load.
     */
    int quiet_too;
    int (*probe)(struct it *t);
};

/* One search of the load. */
struct itr_search {
    long long sent_ms, round_trip_ms;
    int done, code, ok;
    char error_code[40], degraded[64], message[600];
};

/* Probes, on fresh connections: 0 when the server answers. */
static inline int itr_probe_pg(struct it *t)
{
    PGconn *c = PQconnectdb(t->pg_url);
    int ok = 0;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM content");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static inline int itr_probe_redis(struct it *t)
{
    char host[256], pw[256];
    int port, db, ok = 0;
    hsc_err err = {0};
    (void)t;
    if (hsc_redis_parse_url(getenv("HSC_REDIS_URL"), host, sizeof(host), &port, &db, pw, sizeof(pw),
                            &err))
        return -1;
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok ? 0 : -1;
}

static inline int itr_probe_milvus(struct it *t)
{
    static float v[ITQ_DIM] = {1, 0.5f, 0.25f, 0.125f};
    char id[64];
    return it_milvus_nearest(t, v, ITQ_DIM, id, sizeof(id));
}

/*
 * Neo4j is back for the searches when it answers their own statement: the
 * first run of a statement it has not planned since it started takes seconds
 * (3.8 s for the candidates statement on this machine, unloaded), while a
 * count answers in half a second, so a count would call it back before any
 * search could be.
 */
static inline int itr_probe_neo4j(struct it *t)
{
    (void)t;
    static const char params[] =
        "{\"seeds\":[\"t000021\"],\"weights\":[1.0],\"nexplicit\":1,\"limit\":30,"
        "\"exclude_ids\":[],\"genres\":[],\"excluded_genres\":[],\"languages\":[],"
        "\"max_maturity\":null,\"year_min\":null,\"year_max\":null}";
    json_t *rows = it_neo4j(HSC_GRAPH_CANDIDATES_CYPHER, params);
    int ok = rows != NULL;
    json_decref(rows);
    return ok ? 0 : -1;
}

/* The child: stop, wait, start (probing meanwhile); writes {start, back, rc} to fd. */
static inline void itr_restart_child(struct it *t, const struct itr_case *c, int fd)
{
    long long out[3] = {it_ms(), 0, 0};
    int rc = it_shell("%s/deploy/local/down %s >/dev/null 2>&1", HSC_SOURCE_DIR, c->service);
    usleep((useconds_t)c->down_ms * 1000);
    pid_t up = fork();
    if (up == 0)
        _exit(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up %s >/dev/null 2>&1",
                       HSC_SOURCE_DIR, c->service));
    long long end = it_ms() + 120000;
    while (c->probe(t) != 0 && it_ms() < end)
        usleep(20000);
    out[1] = it_ms();
    int st = 1;
    waitpid(up, &st, 0);
    rc |= !WIFEXITED(st) || WEXITSTATUS(st);
    if (c->probe(t) != 0)
        rc = 1;
    out[2] = rc;
    if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
        _exit(1);
    _exit(rc ? 1 : 0);
}

/* The load generator's state on the test's loop. */
struct itr_load {
    struct itq *q;
    hsc_search_request req;
    const struct itr_case *c;
    struct itr_search s[ITR_MAX];
    int n, stop, quiet; /* quiet: no search goes out */
    ev_timer tick;
};

static inline void itr_on_reply(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct itr_search *s = arg;
    s->done = 1;
    s->round_trip_ms = it_ms() - s->sent_ms;
    if (!r) {
        s->code = err->code;
        snprintf(s->message, sizeof(s->message), "%s", err->msg);
        return;
    }
    s->ok = r->ok;
    snprintf(s->error_code, sizeof(s->error_code), "%s", r->error_code ? r->error_code : "");
    snprintf(s->message, sizeof(s->message), "%s", r->error_message ? r->error_message : "");
    for (size_t i = 0; i < r->degraded.n; i++) {
        size_t len = strlen(s->degraded);
        snprintf(s->degraded + len, sizeof(s->degraded) - len, "%s%s", i ? "," : "",
                 r->degraded.v[i]);
    }
}

static inline void itr_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct itr_load *l = w->data;
    (void)loop;
    (void)revents;
    if (l->stop || l->quiet || l->n >= ITR_MAX)
        return;
    struct itr_search *s = &l->s[l->n++];
    char user[32];
    snprintf(user, sizeof(user), "itr-user-%d-%d", (int)getpid(), l->n);
    l->req.user_id = l->c->user ? user : NULL;
    s->sent_ms = it_ms();
    hsc_err err = {0};
    if (hsc_client_search(l->q->client, &l->req, ITR_DEADLINE_MS, itr_on_reply, s, NULL, &err)) {
        s->done = 1;
        s->code = err.code ? err.code : -1;
        snprintf(s->message, sizeof(s->message), "not sent: %s", err.msg);
    }
    l->req.user_id = NULL;
}

/* Runs the loop for ms milliseconds (searches keep going out). */
static inline void itr_run_for(struct itr_load *l, long long ms)
{
    long long end = it_ms() + ms;
    while (it_ms() < end)
        ev_run(l->q->loop, EVRUN_ONCE);
}

/* Counts of one class of searches. */
struct itr_class {
    int n, failed, degraded;
};

static inline void itr_count(struct itr_class *c, const struct itr_search *s)
{
    c->n++;
    if (s->code || !s->ok)
        c->failed++;
    else if (s->degraded[0])
        c->degraded++;
}

/* Lines of a JSON log whose msg is exactly msg. */
static inline int itr_log_count(const char *path, const char *msg)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_object_get(o, "msg"));
        if (m && !strcmp(m, msg)) {
            n++;
            fprintf(stderr, "   log: %s", line);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return n;
}

/* The value of one series in a /metrics page (-1 if absent). */
static inline double itr_metric(const char *page, const char *series)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s ", series);
    const char *p = page ? strstr(page, want) : NULL;
    return p ? atof(p + strlen(want)) : -1;
}

/* Waits until every search sent has ended (or the client gave up on it). */
static inline void itr_drain(struct itr_load *l)
{
    long long end = it_ms() + ITR_DEADLINE_MS + 3000;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < l->n; i++)
            pending += !l->s[i].done;
        if (!pending || it_ms() > end)
            return;
        ev_run(l->q->loop, EVRUN_ONCE);
    }
}

/* What one restart showed. */
struct itr_outcome {
    struct itr_class before, during, after;
    int nlost, nrecovered;         /* log lines so far */
    double lost_total, reconnects; /* the counters so far */
};

/*
 * One restart: warm load, the restart (searches paused meanwhile if quiet),
 * load after; classes and prints the searches, then reads how often the loss
 * and the recovery have been logged and counted so far.
 */
static inline void itr_phase(struct it *t, struct itr_load *l, int quiet, const char *logpath,
                             int port, struct itr_outcome *o)
{
    const struct itr_case *c = l->c;
    l->n = 0;
    l->stop = 0;
    memset(l->s, 0, sizeof(l->s));
    itr_run_for(l, ITR_WARM_MS);
    fprintf(stderr, "-- restarting %s %s\n", c->service,
            quiet ? "while no search comes in" : "under load");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        itr_restart_child(t, c, fds[1]);
    }
    close(fds[1]);
    l->quiet = quiet;
    int st = 0;
    while (waitpid(child, &st, WNOHANG) == 0)
        itr_run_for(l, 20);
    l->quiet = 0;
    long long times[3] = {0, 0, 1};
    ssize_t got = read(fds[0], times, sizeof(times));
    close(fds[0]);
    if (got != (ssize_t)sizeof(times) || times[2])
        fail_msg("the restart of %s failed (see .local/logs)", c->service);
    long long t_start = times[0], t_back = times[1];
    fprintf(stderr, "-- %s answers again %lld ms after the restart began\n", c->service,
            t_back - t_start);
    itr_run_for(l, ITR_AFTER_MS - (it_ms() - t_back));
    l->stop = 1;
    itr_drain(l);

    struct itr_class before = {0}, during = {0}, after = {0};
    for (int i = 0; i < l->n; i++) {
        const struct itr_search *s = &l->s[i];
        if (!s->done)
            fail_msg("search %d (sent %lld ms after the restart began) never ended", i,
                     s->sent_ms - t_start);
        /* before: ended before the server was stopped; one still in flight then met the
         * outage, so it counts with the searches during it */
        struct itr_class *k = s->sent_ms + s->round_trip_ms < t_start ? &before
                              : s->sent_ms < t_back                   ? &during
                                                                      : &after;
        itr_count(k, s);
        if (s->code || !s->ok || s->degraded[0])
            fprintf(stderr, "   %s: sent %+lld ms from back, %lld ms: %s%s%s%s %s\n",
                    k == &after    ? "AFTER"
                    : k == &during ? "during"
                                   : "BEFORE",
                    s->sent_ms - t_back, s->round_trip_ms, s->code ? "no reply " : "",
                    s->error_code, s->degraded[0] ? " degraded=" : "", s->degraded, s->message);
    }
    fprintf(stderr,
            "-- %s restart%s: before %d searches (%d failed, %d degraded); during %d (%d "
            "failed, %d degraded); after %d (%d failed, %d degraded)\n",
            c->service, quiet ? " (quiet)" : "", before.n, before.failed, before.degraded, during.n,
            during.failed, during.degraded, after.n, after.failed, after.degraded);
    o->before = before;
    o->during = during;
    o->after = after;
    char lost[64], recovered[64];
    snprintf(lost, sizeof(lost), "%s connection lost", c->backend);
    snprintf(recovered, sizeof(recovered), "%s connection recovered", c->backend);
    o->nlost = itr_log_count(logpath, lost);
    o->nrecovered = itr_log_count(logpath, recovered);
    fprintf(stderr, "-- log so far: '%s' %d, '%s' %d\n", lost, o->nlost, recovered, o->nrecovered);
    char url[96], series[160];
    long status = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    char *page = it_http("GET", url, NULL, &status);
    assert_int_equal(status, 200);
    snprintf(series, sizeof(series), "hsc_backend_connection_lost_total{backend=\"%s\"}",
             c->backend);
    o->lost_total = itr_metric(page, series);
    snprintf(series, sizeof(series), "hsc_backend_reconnects_total{backend=\"%s\"}", c->backend);
    o->reconnects = itr_metric(page, series);
    fprintf(stderr, "-- metrics so far: lost %g, reconnects %g\n", o->lost_total, o->reconnects);
    free(page);
}

/* The checks of one restart; nth: how many restarts so far. */
static inline void itr_check(const struct itr_outcome *o, int quiet, int nth)
{
    assert_true(o->before.n >= ITR_WARM_MS / ITR_PERIOD_MS / 2);
    assert_int_equal(o->before.failed + o->before.degraded, 0);
    if (!quiet)
        assert_true(o->during.failed + o->during.degraded > 0); /* the server was really gone */
    else /* a search in flight as the server stopped counts as during; it must still succeed */
        assert_int_equal(o->during.failed + o->during.degraded, 0);
    assert_true(o->after.n >= ITR_AFTER_MS / ITR_PERIOD_MS / 2);
    assert_int_equal(o->after.failed, 0);
    assert_int_equal(o->after.degraded, 0);
    /* Logged once each per restart, and counted. */
    assert_int_equal(o->nlost, nth);
    assert_int_equal(o->nrecovered, nth);
    assert_true(o->lost_total == nth);
    assert_true(o->reconnects == nth);
}

/* The whole test for one server. */
static inline void itr_run(const struct itr_case *c)
{
    struct it t;
    static struct itq q;
    it_setup(&t);
    char *content = itq_catalogue(&q, &t, "300", c->tag);
    int port = 20000 + (int)((getpid() + 11) % 20000);
    char mp[48], group[96];
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    snprintf(group, sizeof(group), "query.group=%s-query", c->tag);
    /*
     * The planner's cooldown (a failed backend is skipped for a while on
     * purpose) is off, so that what the searches after the restart show is
     * the clients' own handling of their connections.
     */
    const char *qa[] = {
        ITQ_QUERY_ARGS, "--set", group,   "--set",           "query.down_cooldown_ms=0",
        "--set",        mp,      "--set", "log.format=json", NULL};
    char logpath[] = "/tmp/hsc-it-restart-log-XXXXXX";
    int lfd = mkstemp(logpath), saved = dup(2);
    assert_true(lfd >= 0 && saved >= 0);
    dup2(lfd, 2);
    pid_t query = it_spawn(&t, "hsc-query", qa);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    itq_client(&q);

    static struct itr_load l;
    memset(&l, 0, sizeof(l));
    l.q = &q;
    l.c = c;
    if (c->strategy == HSC_STRATEGY_GRAPH_ONLY)
        hsc_search_request_init(&l.req);
    else
        itq_request_like(&t, "t000020", &l.req);
    if (c->strategy != HSC_STRATEGY_VECTOR_ONLY)
        hsc_strlist_push(&l.req.seed_ids, "t000021", 7);
    l.req.strategy = c->strategy;
    l.req.cache = c->cache;
    struct itq_result res;
    l.req.user_id = c->user ? "itr-user-0" : NULL;
    itq_search_ok(&q, &l.req, &res); /* every backend answers before the load starts */
    hsc_search_reply_clear(&res.reply);
    l.req.user_id = NULL;

    ev_timer_init(&l.tick, itr_tick, 0., ITR_PERIOD_MS / 1000.0);
    l.tick.data = &l;
    ev_timer_start(q.loop, &l.tick);
    struct itr_outcome loaded, quiet;
    itr_phase(&t, &l, 0, logpath, port, &loaded);
    if (c->quiet_too)
        itr_phase(&t, &l, 1, logpath, port, &quiet);
    ev_timer_stop(q.loop, &l.tick);
    itr_check(&loaded, 0, 1);
    if (c->quiet_too)
        itr_check(&quiet, 1, 2);

    hsc_search_request_clear(&l.req);
    assert_int_equal(it_stop(query, SIGTERM, 30000), 0);
    itq_done(&q);
    remove(logpath);
    remove(content);
    free(content);
    it_teardown(&t);
}

#endif
