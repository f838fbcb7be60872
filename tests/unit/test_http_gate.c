/*
 * Tests of common/stores/http.c's lanes: a backend that is down (conn.h)
 * gets one request at a time, the others wait until that one has an answer
 * (then all go) or fails (then the next goes), and another every half
 * second while none answers, up to four; a waiting request ends at its
 * own timeout; a backend that is up gets at most 16 at once, and half as
 * many after a round of them times out. The server is a loopback socket the test accepts
 * from by hand, so it counts the connections the client opened.
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

/* The test's server: its listening socket and the connections it accepted. */
struct server {
    int fd, port;
    int conns[MAXC];
    int nconns;
};

/* One request's end. */
struct end {
    int calls, code;
    long status;
    char msg[600];
};

static void on_end(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    struct end *e = arg;
    e->calls++;
    e->code = res ? 0 : err->code;
    e->status = res ? res->status : 0;
    snprintf(e->msg, sizeof(e->msg), "%s", res ? "" : err->msg);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
    (void)w, (void)revents;
}

static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, on_stop, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static void server_open(struct server *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = loopback_listen(64, &s->port);
    assert_true(s->fd >= 0);
    fcntl(s->fd, F_SETFL, O_NONBLOCK);
}

/* Accepts every connection waiting; returns how many there were in all. */
static int server_accept(struct server *s)
{
    int c;
    while (s->nconns < MAXC && (c = accept(s->fd, NULL, NULL)) >= 0)
        s->conns[s->nconns++] = c;
    return s->nconns;
}

/* Reads connection i's request and answers it 200, closing the connection. */
static void server_answer(struct server *s, int i)
{
    char buf[4096];
    struct pollfd p = {.fd = s->conns[i], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 2000), 1);
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

static void start(hsc_http *h, const struct server *s, int timeout_ms, struct end *e)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/q", s->port);
    struct hsc_http_request q = {.method = "POST",
                                 .url = url,
                                 .body = "{}",
                                 .body_len = 2,
                                 .timeout_ms = timeout_ms,
                                 .backend = "gate",
                                 .op = "test",
                                 .idempotent = 1};
    hsc_err err = {0};
    assert_int_equal(hsc_http_request(h, &q, on_end, e, &err), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_backend_gets_one_request_then_all_after_an_answer),
        cmocka_unit_test(test_waiting_request_ends_at_its_timeout),
        cmocka_unit_test(test_failed_probe_lets_the_next_request_go),
        cmocka_unit_test(test_down_backend_gets_another_probe_every_half_second),
        cmocka_unit_test(test_up_backend_gets_sixteen_then_half_after_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
