/*
 * Tests of common/stores/http.c's scopes: requests started under an owner are
 * cancelled together (each callback once, HSC_ECANCELED, from the loop and
 * never inside hsc_http_cancel), others keep running, and a scope's deadline
 * bounds a request's timeout. The server is a loopback socket that accepts
 * connections (the kernel's backlog does) and never answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "util.h"

struct end {
    int calls, code;
    int64_t at_ms;
};

static int in_cancel;
static int called_inside;

static void on_end(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    struct end *e = arg;
    if (in_cancel)
        called_inside++;
    e->calls++;
    e->code = res ? 0 : err->code;
    e->at_ms = hsc_now_ms();
}

/* A listening socket nobody accepts from; its port in *port. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t n = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &n);
    *port = ntohs(a.sin_port);
    return fd;
}

static void start(hsc_http *h, const char *url, struct end *e)
{
    struct hsc_http_request q = {
        .method = "POST", .url = url, .body = "{}", .body_len = 2, .timeout_ms = 10000};
    hsc_err err = {0};
    assert_int_equal(hsc_http_request(h, &q, on_end, e, &err), 0);
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

static void test_cancel_ends_only_the_owners_requests_later(void **state)
{
    int port;
    int fd = silent_server(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    int owner_a, owner_b;
    struct end a[3] = {{0}}, b = {0};
    hsc_http_set_scope(h, &owner_a, 0);
    for (int i = 0; i < 3; i++)
        start(h, url, &a[i]);
    hsc_http_set_scope(h, &owner_b, 0);
    start(h, url, &b);
    hsc_http_set_scope(h, NULL, 0);
    run_for(loop, 0.1); /* connected and sent; the server says nothing */
    assert_int_equal(hsc_http_in_flight(h), 4);
    in_cancel = 1;
    assert_int_equal(hsc_http_cancel(h, &owner_a), 3);
    in_cancel = 0;
    assert_int_equal(hsc_http_cancel(h, &owner_a), 0); /* once only */
    assert_int_equal(hsc_http_cancel(h, NULL), 0);
    assert_int_equal(called_inside, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(a[i].calls, 0);
    for (int i = 0; i < 300 && a[2].calls == 0; i++)
        run_for(loop, 0.01);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].code, HSC_ECANCELED);
    }
    assert_int_equal(b.calls, 0);
    assert_int_equal(hsc_http_in_flight(h), 1);
    hsc_http_free(h); /* cancels b: its one callback */
    assert_int_equal(b.calls, 1);
    ev_loop_destroy(loop);
    close(fd);
    (void)state;
}

static void test_scope_deadline_bounds_the_timeout(void **state)
{
    int port;
    int fd = silent_server(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    struct end e = {0}, later = {0};
    int64_t t0 = hsc_now_ms();
    hsc_http_set_scope(h, NULL, t0 + 200);
    start(h, url, &e);
    hsc_http_set_scope(h, NULL, 0);
    start(h, url, &later); /* after the scope: its own 10 s */
    for (int i = 0; i < 300 && !e.calls; i++)
        run_for(loop, 0.01);
    assert_int_equal(e.calls, 1);
    assert_int_not_equal(e.code, 0);
    assert_true(e.at_ms >= t0 + 190 && e.at_ms < t0 + 3000); /* not its own 10 s */
    assert_int_equal(later.calls, 0);
    hsc_http_free(h);
    assert_int_equal(later.calls, 1);
    ev_loop_destroy(loop);
    close(fd);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_ends_only_the_owners_requests_later),
        cmocka_unit_test(test_scope_deadline_bounds_the_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
