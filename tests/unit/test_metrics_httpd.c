/*
 * Tests of the endpoints' HTTP server in common/core/metrics.c: the request
 * parser (a pure function), and the server on a real libev loop with real
 * loopback sockets: a client that never reads a large /metrics answer does
 * not stall a timer on the same loop, connections over the cap are closed at
 * once, only GET and HEAD are served, and metrics.bind is honoured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"

static int parse(const char *s, struct hsc_httpd_request *r)
{
    return hsc_httpd_parse_request(s, strlen(s), r);
}

static void test_parse_request(void **state)
{
    struct hsc_httpd_request r;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &r), 200);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/metrics");
    assert_int_equal(r.head, 0);
    assert_int_equal(parse("GET /readyz?verbose=1 HTTP/1.0\n\n", &r), 200);
    assert_string_equal(r.path, "/readyz");
    assert_int_equal(parse("HEAD /healthz HTTP/1.0\r\n\r\n", &r), 200);
    assert_int_equal(r.head, 1);
    /* incomplete: more bytes needed */
    assert_int_equal(parse("", &r), 0);
    assert_int_equal(parse("GET /metr", &r), 0);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\n", &r), 0);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), 0);
    /* methods other than GET and HEAD, known at the request line */
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\n", &r), 405);
    assert_string_equal(r.method, "POST");
    assert_int_equal(parse("DELETE / HTTP/1.1\r\n\r\n", &r), 405);
    /* malformed */
    const char *bad[] = {"GET\r\n\r\n",
                         "GET /\r\n\r\n", /* HTTP/0.9 */
                         " GET / HTTP/1.1\r\n\r\n",
                         "GET  / HTTP/1.1\r\n\r\n",
                         "get / HTTP/1.1\r\n\r\n",
                         "GET metrics HTTP/1.1\r\n\r\n",
                         "GET * HTTP/1.1\r\n\r\n",
                         "GET http://evil/ HTTP/1.1\r\n\r\n",
                         "GET /a\tb HTTP/1.1\r\n\r\n",
                         "GET /\x7f HTTP/1.1\r\n\r\n",
                         "GET / HTTX/1.1\r\n\r\n",
                         "GET / HTTP/1.1 extra\r\n\r\n",
                         "GETTINGTOOLONGMETHOD / HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (parse(bad[i], &r) != 400)
            fail_msg("'%s' gave %d, not 400", bad[i], parse(bad[i], &r));
    char nul[] = "GET /x HTTP/1.1\r\n\r\n";
    nul[5] = '\0';
    assert_int_equal(hsc_httpd_parse_request(nul, sizeof(nul) - 1, &r), 400);
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &r), 505);
    assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n", &r), 505);
    /* bounds */
    char big[HSC_HTTPD_MAX_REQUEST + 100];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    assert_int_equal(hsc_httpd_parse_request(big, HSC_HTTPD_MAX_REQUEST - 1, &r), 0);
    assert_int_equal(hsc_httpd_parse_request(big, sizeof(big), &r), 414); /* no end of line */
    snprintf(big, sizeof(big), "GET /%0200d HTTP/1.1\r\n\r\n", 0);        /* path over 127 */
    assert_int_equal(parse(big, &r), 414);
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
    memset(big + n, 'h', sizeof(big) - (size_t)n); /* a header block that never ends */
    assert_int_equal(hsc_httpd_parse_request(big, HSC_HTTPD_MAX_REQUEST - 1, &r), 0);
    assert_int_equal(hsc_httpd_parse_request(big, sizeof(big), &r), 431);
    (void)state;
}

/* A port free on 127.0.0.1 now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* A client socket connected to ip:port, or -1 with errno; rcvbuf > 0 shrinks its receive buffer. */
static int dial(const char *ip, int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends req on a new connection and reads the whole answer while the loop serves it. */
static size_t fetch(struct ev_loop *loop, const char *ip, int port, const char *req, char *out,
                    size_t cap)
{
    int fd = dial(ip, port, 0);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t len = 0;
    double until = ev_time() + 5;
    while (ev_time() < until) {
        ev_run(loop, EVRUN_NOWAIT);
        ssize_t r = recv(fd, out + len, cap - 1 - len, 0);
        if (r == 0)
            break;
        if (r > 0)
            len += (size_t)r;
        else if (errno != EAGAIN)
            break;
        else
            usleep(1000);
    }
    close(fd);
    out[len] = '\0';
    return len;
}

/* A timer every 5 ms that records the longest gap between its runs. */
struct ticker {
    ev_timer t;
    double last, max_gap;
};

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ticker *k = (struct ticker *)w;
    double now = ev_time();
    if (k->last > 0 && now - k->last > k->max_gap)
        k->max_gap = now - k->last;
    k->last = now;
    (void)loop, (void)revents;
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ONE);
    (void)w, (void)revents;
}

/* Runs the loop for seconds. */
static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer stop;
    ev_now_update(loop);
    ev_timer_init(&stop, on_stop, seconds, 0.);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    ev_timer_stop(loop, &stop);
}

/*
 * A registry whose /metrics answer (about 6 MB) is more than the kernel
 * buffers for one connection (tcp_wmem's 4 MB maximum), in few long series
 * so that rendering it stays cheap even under valgrind.
 */
static hsc_metrics *big_registry(void)
{
    hsc_metrics *m = hsc_metrics_new();
    static char labels[100 * 1024];
    for (int i = 0; i < 64; i++) {
        int n = snprintf(labels, sizeof(labels), "id=\"%d\",pad=\"", i);
        memset(labels + n, 'p', sizeof(labels) - 2 - (size_t)n);
        labels[sizeof(labels) - 2] = '"';
        labels[sizeof(labels) - 1] = '\0';
        hsc_metrics_set(m, "hsc_test_gauge", labels, i);
    }
    return m;
}

static void test_non_reading_client_does_not_stall_the_loop(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_metrics *m = big_registry();
    /* what rendering alone costs here (it runs on the loop either way) */
    double t0 = ev_time();
    hsc_buf b = {0};
    assert_int_equal(hsc_metrics_render(m, &b), 0);
    double render_s = ev_time() - t0;
    assert_true(b.len > 6000000);
    hsc_buf_free(&b);
    hsc_err err = {0};
    struct hsc_httpd_options o = {.port = free_port(), .timeout_ms = 1500};
    hsc_httpd *h = hsc_httpd_listen(loop, &o, m, NULL, NULL, NULL, &err);
    assert_non_null(h);
    struct ticker k = {0};
    ev_timer_init(&k.t, on_tick, 0.005, 0.005);
    ev_timer_start(loop, &k.t);
    int fd = dial("127.0.0.1", o.port, 4096);
    assert_true(fd >= 0);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    run_for(loop, 0.3);
    /* the answer is stuck in the socket (the client reads nothing) and the loop went on */
    assert_int_equal(hsc_httpd_connections(h), 1);
    run_for(loop, 1.5);
    /* metrics.timeout_ms ended it */
    assert_int_equal(hsc_httpd_connections(h), 0);
    ev_timer_stop(loop, &k.t);
    /*
     * A loop blocked on the write would stall until the client read (never) or
     * the 1.5 s timeout; a loop that goes on pauses for the render and the copy
     * into the answer, stretched on a busy machine (477 ms with render 113 ms
     * under a parallel ctest on 2 cores). Half a second of slack tells them apart.
     */
    double bound = 2.5 * render_s + 0.5;
    printf("# longest timer gap %.1f ms (render alone %.1f ms, bound %.1f ms)\n", k.max_gap * 1000,
           render_s * 1000, bound * 1000);
    assert_true(k.max_gap < bound);
    /* the client got the start of a real answer, then the close */
    char head[64] = "";
    assert_true(recv(fd, head, sizeof(head) - 1, 0) > 0);
    assert_memory_equal(head, "HTTP/1.0 200 OK\r\n", 17);
    close(fd);
    hsc_httpd_free(h);
    hsc_metrics_free(m);
    ev_loop_destroy(loop);
    (void)state;
}

/* True if fd has been closed by the peer (EOF or reset readable now). */
static int peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) != 1)
        return 0;
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void test_connections_over_the_cap_are_closed_at_once(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_metrics *m = hsc_metrics_new();
    hsc_err err = {0};
    struct hsc_httpd_options o = {.port = free_port(), .max_connections = 2, .timeout_ms = 5000};
    hsc_httpd *h = hsc_httpd_listen(loop, &o, m, NULL, NULL, NULL, &err);
    assert_non_null(h);
    int a = dial("127.0.0.1", o.port, 0), b = dial("127.0.0.1", o.port, 0);
    run_for(loop, 0.05);
    int c = dial("127.0.0.1", o.port, 0);
    run_for(loop, 0.05);
    assert_int_equal(hsc_httpd_connections(h), 2);
    assert_true(peer_closed(c));
    assert_false(peer_closed(a));
    assert_false(peer_closed(b));
    assert_true(hsc_metrics_value(m, "hsc_httpd_connections_refused_total", "") == 1);
    /* a slot freed is a slot again: a and b hold theirs, so answer on a new one after b leaves */
    close(b);
    run_for(loop, 0.05);
    assert_int_equal(hsc_httpd_connections(h), 1);
    char out[512];
    fetch(loop, "127.0.0.1", o.port, "GET /healthz HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "200 OK"));
    close(a);
    close(c);
    hsc_httpd_free(h);
    hsc_metrics_free(m);
    ev_loop_destroy(loop);
    (void)state;
}

static int not_ready(void *arg, char *why, size_t cap)
{
    snprintf(why, cap, "neo4j down");
    (void)arg;
    return 0;
}

static void test_only_get_and_head_are_served(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_metrics *m = hsc_metrics_new();
    hsc_metrics_inc(m, "hsc_x_total", "", 3);
    hsc_err err = {0};
    struct hsc_httpd_options o = {.port = free_port()};
    hsc_httpd *h = hsc_httpd_listen(loop, &o, m, not_ready, NULL, NULL, &err);
    assert_non_null(h);
    char out[4096];
    fetch(loop, "127.0.0.1", o.port, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
          out, sizeof(out));
    assert_memory_equal(out, "HTTP/1.0 405 Method Not Allowed\r\n", 33);
    assert_non_null(strstr(out, "\r\nAllow: GET, HEAD\r\n"));
    fetch(loop, "127.0.0.1", o.port, "PUT /healthz HTTP/1.1\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 405 "));
    fetch(loop, "127.0.0.1", o.port, "GET /metrics HTTP/1.1\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "\r\n\r\n# TYPE hsc_x_total counter\nhsc_x_total 3\n"));
    size_t n = fetch(loop, "127.0.0.1", o.port, "HEAD /healthz HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "Content-Length: 3\r\n"));
    assert_string_equal(out + n - 4, "\r\n\r\n"); /* no body */
    fetch(loop, "127.0.0.1", o.port, "GET /readyz HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 503 "));
    assert_non_null(strstr(out, "not ready: neo4j down\n"));
    fetch(loop, "127.0.0.1", o.port, "GET /nope HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 404 "));
    fetch(loop, "127.0.0.1", o.port, "GET / HTTP/2.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 505 "));
    fetch(loop, "127.0.0.1", o.port, "BREW /pot HTCPCP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 400 "));
    fetch(loop, "127.0.0.1", o.port, "garbage\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, " 400 "));
    /* a head that never ends within the bound */
    char big[HSC_HTTPD_MAX_REQUEST + 64];
    int hl = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
    memset(big + hl, 'h', sizeof(big) - 1 - (size_t)hl);
    big[sizeof(big) - 1] = '\0';
    fetch(loop, "127.0.0.1", o.port, big, out, sizeof(out));
    assert_non_null(strstr(out, " 431 "));
    run_for(loop, 0.05);
    assert_int_equal(hsc_httpd_connections(h), 0);
    hsc_httpd_free(h);
    hsc_metrics_free(m);
    ev_loop_destroy(loop);
    (void)state;
}

static void test_bind_address_is_honoured(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_metrics *m = hsc_metrics_new();
    hsc_err err = {0};
    /* the default is loopback 127.0.0.1 only */
    struct hsc_httpd_options o = {.port = free_port()};
    hsc_httpd *h = hsc_httpd_listen(loop, &o, m, NULL, NULL, NULL, &err);
    assert_non_null(h);
    assert_int_equal(hsc_httpd_port(h), o.port);
    assert_int_equal(dial("127.0.0.2", o.port, 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    char out[512];
    fetch(loop, "127.0.0.1", o.port, "GET /healthz HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "\r\n\r\nok\n"));
    hsc_httpd_free(h);
    /* another address, from the configuration through hsc_httpd_new */
    hsc_config *cfg = hsc_config_new();
    assert_int_equal(hsc_config_set(cfg, "metrics.bind", "127.0.0.2", &err), 0);
    assert_int_equal(hsc_httpd_configure(cfg, &err), 0);
    int port = free_port();
    h = hsc_httpd_new(loop, port, m, NULL, NULL, NULL, &err);
    assert_non_null(h);
    assert_int_equal(dial("127.0.0.1", port, 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    fetch(loop, "127.0.0.2", port, "GET /healthz HTTP/1.0\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "\r\n\r\nok\n"));
    hsc_httpd_free(h);
    /* not an address: a configuration error naming the key */
    assert_int_equal(hsc_config_set(cfg, "metrics.bind", "localhost", &err), 0);
    assert_int_equal(hsc_httpd_configure(cfg, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "metrics.bind: 'localhost' is not an IPv4 or IPv6 address"));
    assert_int_equal(hsc_config_set(cfg, "metrics.bind", "127.0.0.1", &err), 0);
    assert_int_equal(hsc_httpd_configure(cfg, &err), 0);
    /* off stays off */
    assert_null(hsc_httpd_new(loop, 0, m, NULL, NULL, NULL, &err));
    hsc_config_free(cfg);
    hsc_metrics_free(m);
    ev_loop_destroy(loop);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_request),
        cmocka_unit_test(test_non_reading_client_does_not_stall_the_loop),
        cmocka_unit_test(test_connections_over_the_cap_are_closed_at_once),
        cmocka_unit_test(test_only_get_and_head_are_served),
        cmocka_unit_test(test_bind_address_is_honoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
