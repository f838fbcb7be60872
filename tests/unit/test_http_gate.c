/*
 * Tests of common/stores/http.c's lanes: a backend that is down (conn.h)
 * gets one request at a time, the others wait until that one has an answer
 * (then all go) or fails (then the next goes), and another every half
 * second while none answers, up to four; a waiting request ends at its
 * own timeout; a backend that is up gets at most 16 at once, and half as
 * many after a round of them times out. Every way a request ends (answered, retried, too big,
 * cancelled waiting, woken or in flight) gives its slot back once, its callback runs once and
 * never inside hsc_http_request or hsc_http_cancel, and a request that waited for its slot keeps
 * its scope's deadline. The server is a loopback socket the test accepts from by hand, so it
 * counts the connections the client opened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "http.h"
#include "loopback.h"
#include "util.h"

#define MAXC 16
#define CONNS 64

/* The test's server: its listening socket and the connections it accepted. */
struct server {
    int fd, port;
    int conns[CONNS];
    int nconns;
};

/* One request's end. */
struct end {
    int calls, code;
    long status;
    int64_t at_ms;
    char msg[600];
};

static int in_call;       /* inside hsc_http_request or hsc_http_cancel */
static int called_inside; /* callbacks that ran there */

static void on_end(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    struct end *e = arg;
    if (in_call)
        called_inside++;
    e->calls++;
    e->at_ms = hsc_now_ms();
    e->code = res ? 0 : err->code;
    e->status = res ? res->status : 0;
    snprintf(e->msg, sizeof(e->msg), "%s", res ? "" : err->msg);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
    (void)w, (void)revents;
}

static struct ev_loop *g_loop; /* the loop of the test running, for the server to turn */

static void run_for(struct ev_loop *loop, double seconds)
{
    g_loop = loop;
    ev_timer t;
    ev_timer_init(&t, on_stop, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static void server_open(struct server *s)
{
    memset(s, 0, sizeof(*s));
    g_loop = NULL;
    s->fd = loopback_listen(64, &s->port);
    assert_true(s->fd >= 0);
    fcntl(s->fd, F_SETFL, O_NONBLOCK);
}

/* Accepts every connection waiting; returns how many there were in all. */
static int server_accept(struct server *s)
{
    int c;
    while (s->nconns < CONNS && (c = accept(s->fd, NULL, NULL)) >= 0)
        s->conns[s->nconns++] = c;
    return s->nconns;
}

/* Waits up to 2 s for connection i's request, turning the client's loop meanwhile: a connection
 * is accepted (by the kernel) before the client has sent anything on it. */
static void server_wait_request(struct server *s, int i)
{
    struct pollfd p = {.fd = s->conns[i], .events = POLLIN};
    for (int n = 0; n < 200 && poll(&p, 1, 0) == 0; n++)
        if (g_loop)
            run_for(g_loop, 0.01);
        else
            poll(&p, 1, 10);
    assert_int_equal(poll(&p, 1, 0), 1);
}

/* Reads connection i's request and answers it 200, closing the connection. */
static void server_answer(struct server *s, int i)
{
    char buf[4096];
    server_wait_request(s, i);
    assert_true(read(s->conns[i], buf, sizeof(buf)) > 0);
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    assert_int_equal(write(s->conns[i], ok, sizeof(ok) - 1), (ssize_t)(sizeof(ok) - 1));
    close(s->conns[i]);
    s->conns[i] = -1;
}

static void server_close(struct server *s)
{
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i] >= 0)
            close(s->conns[i]);
    close(s->fd);
}

/* Starts a POST to s for backend (NULL: none) with retries, its end in e. */
static void start_for(hsc_http *h, const struct server *s, const char *backend, int timeout_ms,
                      int retries, struct end *e)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/q", s->port);
    struct hsc_http_request q = {.method = "POST",
                                 .url = url,
                                 .body = "{}",
                                 .body_len = 2,
                                 .timeout_ms = timeout_ms,
                                 .retries = retries,
                                 .backoff_initial_ms = 10,
                                 .backoff_max_ms = 10,
                                 .backend = backend,
                                 .op = "test",
                                 .idempotent = 1};
    hsc_err err = {0};
    in_call++;
    assert_int_equal(hsc_http_request(h, &q, on_end, e, &err), 0);
    in_call--;
}

static void start(hsc_http *h, const struct server *s, int timeout_ms, struct end *e)
{
    start_for(h, s, "gate", timeout_ms, 0, e);
}

static size_t cancel(hsc_http *h, const void *owner)
{
    in_call++;
    size_t n = hsc_http_cancel(h, owner);
    in_call--;
    return n;
}

/* Reads connection i's request, writes resp and closes the connection. */
static void server_reply(struct server *s, int i, const char *resp)
{
    char buf[4096];
    server_wait_request(s, i);
    assert_true(read(s->conns[i], buf, sizeof(buf)) > 0);
    assert_int_equal(write(s->conns[i], resp, strlen(resp)), (ssize_t)strlen(resp));
    close(s->conns[i]);
    s->conns[i] = -1;
}

/* Connections accepted (and closed) now that were not before. */
static int server_count_new(struct server *s)
{
    int n = 0, c;
    while ((c = accept(s->fd, NULL, NULL)) >= 0) {
        n++;
        close(c);
    }
    return n;
}

/* Runs loop until n of e's count calls, or about seconds. */
static int run_until(struct ev_loop *loop, struct end *e, int count, int n, double seconds)
{
    int done = 0;
    for (int i = 0; i < (int)(seconds * 100) && done < n; i++) {
        run_for(loop, 0.01);
        done = 0;
        for (int j = 0; j < count; j++)
            done += e[j].calls;
    }
    return done;
}

/* The lane of "gate" has all of its 16 slots free: 17 requests, 16 connections. */
static void assert_sixteen_free(struct ev_loop *loop, hsc_http *h, struct server *s)
{
    struct end e[MAXC + 1] = {{0}};
    server_count_new(s);
    for (int i = 0; i < MAXC + 1; i++)
        start(h, s, 5000, &e[i]);
    run_for(loop, 0.2);
    assert_int_equal(server_count_new(s), MAXC);
    hsc_http_free(h);
    for (int i = 0; i < MAXC + 1; i++)
        assert_int_equal(e[i].calls, 1);
}

/* The backend "gate" is down, as after a failed connection. */
static void backend_down(void)
{
    hsc_conn_reset();
    hsc_conn_lost("gate", hsc_conn_epoch("gate"), "test: connection refused");
    assert_true(hsc_conn_is_down("gate"));
}

static void test_down_backend_gets_one_request_then_all_after_an_answer(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    backend_down();
    struct end e[5] = {{0}};
    for (int i = 0; i < 5; i++)
        start(h, &s, 5000, &e[i]);
    run_for(loop, 0.2);
    assert_int_equal(server_accept(&s), 1); /* the probe only */
    assert_int_equal(hsc_http_in_flight(h), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e[i].calls, 0);

    server_answer(&s, 0); /* the backend is back */
    int done = 0;
    for (int i = 0; i < 100 && done < 1; i++) {
        run_for(loop, 0.01);
        done = e[0].calls + e[1].calls + e[2].calls + e[3].calls + e[4].calls;
    }
    assert_int_equal(done, 1);
    assert_false(hsc_conn_is_down("gate"));
    for (int i = 0; i < 50 && server_accept(&s) < 5; i++)
        run_for(loop, 0.01);
    assert_int_equal(s.nconns, 5); /* the four that waited, each on its own connection */
    for (int i = 1; i < 5; i++)
        server_answer(&s, i);
    for (int i = 0; i < 200 && done < 5; i++) {
        run_for(loop, 0.01);
        done = e[0].calls + e[1].calls + e[2].calls + e[3].calls + e[4].calls;
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(e[i].calls, 1);
        assert_int_equal(e[i].code, 0);
        assert_int_equal(e[i].status, 200);
    }
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

static void test_waiting_request_ends_at_its_timeout(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    backend_down();
    struct end probe = {0}, waiting = {0};
    start(h, &s, 5000, &probe);
    start(h, &s, 200, &waiting);
    int64_t t0 = hsc_now_ms();
    for (int i = 0; i < 300 && !waiting.calls; i++)
        run_for(loop, 0.01);
    int64_t took = hsc_now_ms() - t0;
    assert_int_equal(waiting.calls, 1);
    assert_int_equal(waiting.code, HSC_ETRANSIENT);
    assert_non_null(strstr(waiting.msg, "not sent: gate"));
    assert_non_null(strstr(waiting.msg, "it is down"));
    assert_true(took >= 190 && took < 2000);
    assert_int_equal(probe.calls, 0);
    assert_int_equal(server_accept(&s), 1); /* the one that waited never went */
    hsc_http_free(h);
    assert_int_equal(probe.calls, 1);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

static void test_failed_probe_lets_the_next_request_go(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    backend_down();
    int owner_a, owner_b;
    struct end a = {0}, b[2] = {{0}};
    hsc_http_set_scope(h, &owner_a, 0);
    start(h, &s, 5000, &a);
    hsc_http_set_scope(h, &owner_b, 0);
    start(h, &s, 5000, &b[0]);
    start(h, &s, 5000, &b[1]);
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), 1);
    assert_int_equal(hsc_http_cancel(h, &owner_a), 1); /* the probe ends without an answer */
    run_for(loop, 0.1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.code, HSC_ECANCELED);
    assert_int_equal(server_accept(&s), 2); /* one of the two waiting went, not both */
    assert_int_equal(b[0].calls + b[1].calls, 0);
    assert_true(hsc_conn_is_down("gate"));
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

static void test_up_backend_gets_sixteen_then_half_after_timeouts(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    enum { N = MAXC + 14 };
    struct end e[N] = {{0}};
    for (int i = 0; i < N; i++)
        start(h, &s, i < MAXC ? 300 : 3000, &e[i]);
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), MAXC); /* fourteen wait */
    int done = 0;
    for (int i = 0; i < 100 && done < MAXC; i++) {
        run_for(loop, 0.01);
        done = 0;
        for (int j = 0; j < MAXC; j++)
            done += e[j].calls;
    }
    assert_int_equal(done, MAXC); /* timed out, unanswered */
    run_for(loop, 0.1);
    /* Sixteen timeouts of one round halved the limit once: eight of the fourteen went. */
    int fresh = 0, c;
    while ((c = accept(s.fd, NULL, NULL)) >= 0) {
        fresh++;
        close(c);
    }
    assert_int_equal(fresh, MAXC / 2);
    hsc_http_free(h);
    for (int i = 0; i < N; i++)
        assert_int_equal(e[i].calls, 1);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

static void test_down_backend_gets_another_probe_every_half_second(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    backend_down();
    struct end e[8] = {{0}};
    for (int i = 0; i < 8; i++)
        start(h, &s, 10000, &e[i]);
    run_for(loop, 0.25);
    assert_int_equal(server_accept(&s), 1);
    run_for(loop, 0.5);
    assert_int_equal(server_accept(&s), 2); /* the first has no answer after 0.5 s: one more */
    run_for(loop, 2.0);
    assert_int_equal(server_accept(&s), 4); /* and never more than four */
    for (int i = 0; i < 8; i++)
        assert_int_equal(e[i].calls, 0);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

/* A request that waited for its slot has what is left of its scope's deadline, not its timeout
 * again: the scope's caller has stopped waiting by then. */
static void test_woken_request_keeps_its_scope_deadline(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    struct end e[MAXC] = {{0}}, w = {0};
    int owner;
    for (int i = 0; i < MAXC; i++)
        start(h, &s, 5000, &e[i]);
    int64_t t0 = hsc_now_ms();
    hsc_http_set_scope(h, &owner, t0 + 1000);
    start(h, &s, 5000, &w); /* waits: sixteen are in flight */
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.6);
    assert_int_equal(server_accept(&s), MAXC);
    server_answer(&s, 0); /* a slot for the one waiting, 0.6 s into its 1 s */
    for (int i = 0; i < 50 && server_accept(&s) < MAXC + 1; i++)
        run_for(loop, 0.01);
    assert_int_equal(s.nconns, MAXC + 1);
    for (int i = 0; i < 150 && !w.calls; i++)
        run_for(loop, 0.01);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.code, HSC_ETRANSIENT);
    assert_true(w.at_ms < t0 + 1300); /* its deadline, not 0.6 s + 1 s */
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

/* The probe's callback cancels the request its answer just woke (a slot given, not yet started):
 * the slot comes back, once. */
struct cancelling {
    struct end e;
    hsc_http *h;
    const void *owner;
    size_t cancelled;
    struct end *woken;
    int woken_calls_then;
};

static void on_end_cancel(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    struct cancelling *c = arg;
    on_end(&c->e, res, err);
    c->cancelled = cancel(c->h, c->owner);
    c->woken_calls_then = c->woken->calls;
}

static void test_cancel_of_a_woken_request_frees_its_slot(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    backend_down();
    int owner;
    struct end b = {0};
    struct cancelling a = {.h = h, .owner = &owner, .woken = &b};
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/q", s.port);
    struct hsc_http_request q = {.method = "POST",
                                 .url = url,
                                 .body = "{}",
                                 .body_len = 2,
                                 .timeout_ms = 5000,
                                 .backend = "gate",
                                 .op = "test",
                                 .idempotent = 1};
    assert_int_equal(hsc_http_request(h, &q, on_end_cancel, &a, &err), 0);
    hsc_http_set_scope(h, &owner, 0);
    start(h, &s, 5000, &b);
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.1); /* before the hedge's 0.5 s */
    assert_int_equal(server_accept(&s), 1);
    server_answer(&s, 0);
    for (int i = 0; i < 100 && !b.calls; i++)
        run_for(loop, 0.01);
    assert_int_equal(a.e.calls, 1);
    assert_int_equal(a.e.status, 200);
    assert_int_equal(a.cancelled, 1);
    assert_int_equal(a.woken_calls_then, 0); /* not from inside hsc_http_cancel */
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.code, HSC_ECANCELED);
    assert_int_equal(server_count_new(&s), 0); /* it never went */
    assert_int_equal(called_inside, 0);
    assert_sixteen_free(loop, h, &s);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

/* Cancelling waiting requests frees nothing; cancelling sixteen in flight (and two of the same
 * owner waiting) halves the limit once and frees their slots: the two others waiting go, then six
 * of ten more. */
static void test_cancel_frees_slots_of_requests_in_flight_only(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    int owner_x, owner_y;
    struct end x[MAXC + 2] = {{0}}, y[2] = {{0}}, z[2] = {{0}}, more[10] = {{0}};
    hsc_http_set_scope(h, &owner_x, 0);
    for (int i = 0; i < MAXC; i++)
        start(h, &s, 5000, &x[i]);
    hsc_http_set_scope(h, &owner_y, 0);
    start(h, &s, 5000, &y[0]);
    start(h, &s, 5000, &y[1]);
    hsc_http_set_scope(h, NULL, 0);
    start(h, &s, 5000, &z[0]);
    start(h, &s, 5000, &z[1]);
    hsc_http_set_scope(h, &owner_x, 0);
    start(h, &s, 9000, &x[MAXC]); /* waiting, and the first to be woken (the most time left) */
    start(h, &s, 9000, &x[MAXC + 1]);
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), MAXC);
    assert_int_equal(cancel(h, &owner_y), 2);
    run_for(loop, 0.1);
    assert_int_equal(y[0].calls + y[1].calls, 2);
    assert_int_equal(y[0].code, HSC_ECANCELED);
    assert_int_equal(server_accept(&s), MAXC); /* no slot came free */
    assert_int_equal(cancel(h, &owner_x), MAXC + 2);
    assert_int_equal(run_until(loop, x, MAXC + 2, MAXC + 2, 1.0), MAXC + 2);
    for (int i = 0; i < MAXC + 2; i++) {
        assert_int_equal(x[i].calls, 1);
        assert_int_equal(x[i].code, HSC_ECANCELED);
    }
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), MAXC + 2);
    for (int i = 0; i < 10; i++)
        start(h, &s, 5000, &more[i]);
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), MAXC + 2 + 6); /* a limit of 8, 2 in flight */
    assert_int_equal(z[0].calls + z[1].calls, 0);
    assert_int_equal(called_inside, 0);
    hsc_http_free(h);
    for (int i = 0; i < 2; i++)
        assert_int_equal(z[i].calls, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(more[i].calls, 1);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

/* A request cut a moment after it was sent (its search spent its budget waiting) says nothing
 * about a backend that answers in 200 ms: the limit stays 16. */
static void test_cut_of_a_fresh_attempt_keeps_the_limit(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    struct end a = {0}, b = {0};
    start(h, &s, 5000, &a);
    run_for(loop, 0.2);
    assert_int_equal(server_accept(&s), 1);
    server_reply(&s, 0, ok); /* answered in about 200 ms */
    assert_int_equal(run_until(loop, &a, 1, 1, 2.0), 1);
    assert_int_equal(a.code, 0);
    int owner;
    hsc_http_set_scope(h, &owner, 0);
    start(h, &s, 5000, &b);
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.02);
    assert_int_equal(cancel(h, &owner), 1);
    assert_int_equal(run_until(loop, &b, 1, 1, 1.0), 1);
    assert_int_equal(b.code, HSC_ECANCELED);
    assert_sixteen_free(loop, h, &s);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

/* An answer 503 retried, a body over the cap, and a 200 each give their slot back. */
static void test_slots_come_back_after_retries_and_too_big(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_http_set_max_response(h, 10);
    hsc_conn_reset();
    struct end e[3] = {{0}};
    start_for(h, &s, "gate", 5000, 1, &e[0]);
    start(h, &s, 5000, &e[1]);
    start(h, &s, 5000, &e[2]);
    run_for(loop, 0.1);
    assert_int_equal(server_accept(&s), 3);
    static const char unavailable[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    static const char big[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n01234567890123456789";
    server_reply(&s, 0, unavailable);
    server_reply(&s, 1, big);
    server_answer(&s, 2);
    for (int i = 0; i < 100 && server_accept(&s) < 4; i++)
        run_for(loop, 0.01);
    assert_int_equal(s.nconns, 4); /* the retry */
    server_answer(&s, 3);
    assert_int_equal(run_until(loop, e, 3, 3, 1.0), 3);
    assert_int_equal(e[0].status, 200);
    assert_int_equal(e[1].code, HSC_ETRANSIENT);
    assert_int_equal(e[2].status, 200);
    assert_int_equal(called_inside, 0);
    assert_sixteen_free(loop, h, &s);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

/* A waiting request whose scope's deadline has passed ends from the loop, not inside the call. */
static void test_waiting_request_past_its_deadline_ends_from_the_loop(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    struct end e[MAXC] = {{0}}, late = {0};
    for (int i = 0; i < MAXC; i++)
        start(h, &s, 5000, &e[i]);
    hsc_http_set_scope(h, NULL, hsc_now_ms() - 10);
    start(h, &s, 5000, &late);
    hsc_http_set_scope(h, NULL, 0);
    assert_int_equal(late.calls, 0);
    run_for(loop, 0.1);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.code, HSC_ETRANSIENT);
    assert_non_null(strstr(late.msg, "not sent"));
    assert_int_equal(called_inside, 0);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    (void)state;
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ALL);
    (void)revents;
}

/* Once every request has ended, the hedge timer does not keep the loop running. */
static void test_hedge_lets_the_loop_end(void **state)
{
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    backend_down();
    struct end probe = {0}, waiting[3] = {{0}};
    start(h, &s, 300, &probe);
    for (int i = 0; i < 3; i++)
        start(h, &s, 200, &waiting[i]);
    int fired = 0;
    ev_timer guard;
    ev_timer_init(&guard, on_guard, 5., 0.);
    guard.data = &fired;
    ev_timer_start(loop, &guard);
    ev_unref(loop); /* the guard alone does not keep the loop running */
    int64_t t0 = hsc_now_ms();
    ev_run(loop, 0);
    ev_ref(loop);
    ev_timer_stop(loop, &guard);
    assert_false(fired);
    assert_true(hsc_now_ms() - t0 < 2000);
    assert_int_equal(probe.calls, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(waiting[i].calls, 1);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

/* More backends than a client has lanes, and requests with no backend: they go, unlimited. */
static void test_more_backends_than_lanes_and_none(void **state)
{
    static const char *const names[] = {"b0", "b1", "b2", "b3", "b4", "b5",
                                        "b6", "b7", "b8", "b9", NULL};
    enum { N = sizeof(names) / sizeof(names[0]) };
    struct server s;
    server_open(&s);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    hsc_conn_reset();
    hsc_conn_lost("b9", hsc_conn_epoch("b9"), "test: refused"); /* no lane: not held back */
    struct end e[N] = {{0}}, b9[3] = {{0}};
    for (int i = 0; i < N; i++)
        start_for(h, &s, names[i], 5000, 0, &e[i]);
    for (int i = 0; i < 3; i++)
        start_for(h, &s, "b9", 5000, 0, &b9[i]);
    for (int i = 0; i < 50 && server_accept(&s) < N + 3; i++)
        run_for(loop, 0.01);
    assert_int_equal(s.nconns, N + 3);
    for (int i = 0; i < N + 3; i++)
        server_answer(&s, i);
    assert_int_equal(run_until(loop, e, N, N, 1.0), N);
    assert_int_equal(run_until(loop, b9, 3, 3, 1.0), 3);
    for (int i = 0; i < N; i++)
        assert_int_equal(e[i].status, 200);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_close(&s);
    hsc_conn_reset();
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_backend_gets_one_request_then_all_after_an_answer),
        cmocka_unit_test(test_waiting_request_ends_at_its_timeout),
        cmocka_unit_test(test_failed_probe_lets_the_next_request_go),
        cmocka_unit_test(test_down_backend_gets_another_probe_every_half_second),
        cmocka_unit_test(test_up_backend_gets_sixteen_then_half_after_timeouts),
        cmocka_unit_test(test_woken_request_keeps_its_scope_deadline),
        cmocka_unit_test(test_cancel_of_a_woken_request_frees_its_slot),
        cmocka_unit_test(test_cancel_frees_slots_of_requests_in_flight_only),
        cmocka_unit_test(test_cut_of_a_fresh_attempt_keeps_the_limit),
        cmocka_unit_test(test_slots_come_back_after_retries_and_too_big),
        cmocka_unit_test(test_waiting_request_past_its_deadline_ends_from_the_loop),
        cmocka_unit_test(test_hedge_lets_the_loop_end),
        cmocka_unit_test(test_more_backends_than_lanes_and_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
