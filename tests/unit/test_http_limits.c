/*
 * Tests of common/stores/http.c's trust limits: a response body over the client's
 * cap aborts the transfer with an error naming the host and the cap (with or
 * without a Content-Length, and without retrying), a body under the cap
 * arrives whole, and a URL that is not http(s) is refused before anything is
 * sent. The server is a real socket on loopback, served by a thread here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loopback.h"
#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

/* A loopback server answering every request with a body of body_len 'x' bytes. */
struct server {
    int fd, port;
    size_t body_len;
    int chunked; /* 1: no Content-Length, chunked transfer encoding */
    int requests;
    pthread_t thread;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client hung up (it aborted the transfer) */
        p += w;
        n -= (size_t)w;
    }
}

static void *serve(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        size_t len = 0;
        while (len < sizeof(req) - 1) { /* read the request head */
            ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        __atomic_add_fetch(&s->requests, 1, __ATOMIC_SEQ_CST);
        char head[256];
        int hl =
            s->chunked
                ? snprintf(head, sizeof(head),
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n")
                : snprintf(head, sizeof(head),
                           "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                           s->body_len);
        send_all(c, head, (size_t)hl);
        char chunk[8192];
        memset(chunk, 'x', sizeof(chunk));
        for (size_t sent = 0; sent < s->body_len;) {
            size_t n = s->body_len - sent < sizeof(chunk) ? s->body_len - sent : sizeof(chunk);
            if (s->chunked) {
                char sz[32];
                int zl = snprintf(sz, sizeof(sz), "%zx\r\n", n);
                send_all(c, sz, (size_t)zl);
            }
            send_all(c, chunk, n);
            if (s->chunked)
                send_all(c, "\r\n", 2);
            sent += n;
        }
        if (s->chunked)
            send_all(c, "0\r\n\r\n", 5);
        close(c);
    }
}

static void server_start(struct server *s, size_t body_len, int chunked)
{
    memset(s, 0, sizeof(*s));
    s->body_len = body_len;
    s->chunked = chunked;
    s->fd = loopback_listen(8, &s->port);
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(s->thread, NULL);
    close(s->fd);
}

struct outcome {
    int calls;
    long status;
    size_t len;
    int code, curl_code;
    char msg[512];
};

static void on_done(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    struct outcome *o = arg;
    o->calls++;
    if (res) {
        o->status = res->status;
        o->len = res->len;
    } else {
        o->code = err->code;
        o->curl_code = err->curl_code;
        snprintf(o->msg, sizeof(o->msg), "%s", err->msg);
    }
}

/* Runs one GET against s with the given cap; the outcome of its callback. */
static struct outcome get(struct server *s, size_t cap)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    hsc_http_set_max_response(h, cap);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", s->port);
    struct outcome o = {0};
    struct hsc_http_request q = {.method = "GET", .url = url, .retries = 3, .timeout_ms = 10000};
    assert_int_equal(hsc_http_request(h, &q, on_done, &o, &err), 0);
    while (!o.calls)
        ev_run(loop, EVRUN_ONCE);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    return o;
}

static void test_oversized_body_is_aborted_naming_host_and_cap(void **state)
{
    for (int chunked = 0; chunked <= 1; chunked++) {
        struct server s;
        server_start(&s, 4 * 1024 * 1024, chunked);
        struct outcome o = get(&s, 65536);
        assert_int_equal(o.calls, 1);
        assert_int_equal(o.code, HSC_ETRANSIENT);
        char want[128];
        snprintf(want, sizeof(want),
                 "response from 127.0.0.1:%d exceeds http.max_response_bytes (65536 bytes)",
                 s.port);
        if (!strstr(o.msg, want))
            fail_msg("chunked=%d: '%s' lacks '%s'", chunked, o.msg, want);
        /* libcurl's reason is a field (a write aborted, or a Content-Length over the cap) */
        assert_true(o.curl_code == CURLE_WRITE_ERROR || o.curl_code == CURLE_FILESIZE_EXCEEDED);
        /* the same body would come back: no retry although retries = 3 */
        assert_int_equal(__atomic_load_n(&s.requests, __ATOMIC_SEQ_CST), 1);
        server_stop(&s);
    }
    (void)state;
}

static void test_body_under_the_cap_arrives_whole(void **state)
{
    for (int chunked = 0; chunked <= 1; chunked++) {
        struct server s;
        server_start(&s, 65536, chunked);
        struct outcome o = get(&s, 65536); /* exactly the cap is allowed */
        assert_int_equal(o.calls, 1);
        assert_int_equal(o.code, 0);
        assert_int_equal(o.status, 200);
        assert_int_equal(o.len, 65536);
        server_stop(&s);
    }
    (void)state;
}

static void never(void *arg, const hsc_http_response *res, const hsc_err *err)
{
    fail_msg("a refused request must not call back");
    (void)arg, (void)res, (void)err;
}

static void test_non_http_urls_are_refused(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    const char *urls[] = {"file:///etc/passwd", "gopher://127.0.0.1:70/1",
                          "ftp://127.0.0.1/x",  "dict://127.0.0.1:2628/d:x",
                          "/etc/passwd",        "127.0.0.1:19530/x"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(*urls); i++) {
        struct hsc_http_request q = {.method = "GET", .url = urls[i]};
        assert_int_equal(hsc_http_request(h, &q, never, NULL, &err), HSC_ECONFIG);
        assert_non_null(strstr(err.msg, "only http:// and https:// URLs are allowed"));
        assert_non_null(strstr(err.msg, urls[i]));
    }
    assert_int_equal(hsc_http_in_flight(h), 0);
    ev_run(loop, EVRUN_NOWAIT);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    (void)state;
}

/* The configured default reaches every client created afterwards. */
static void test_configured_default_cap(void **state)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_int(cfg, "http.max_response_bytes"), 64 * 1024 * 1024);
    assert_int_equal(hsc_config_set(cfg, "http.max_response_bytes", "2048", &err), 0);
    assert_int_equal(hsc_config_set(cfg, "http.max_response_bytes", "10", &err), HSC_ECONFIG);
    hsc_http_configure(cfg);
    struct server s;
    server_start(&s, 4096, 0);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_http *h = hsc_http_new(loop, &err);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    struct outcome o = {0};
    struct hsc_http_request q = {.method = "GET", .url = url};
    assert_int_equal(hsc_http_request(h, &q, on_done, &o, &err), 0);
    while (!o.calls)
        ev_run(loop, EVRUN_ONCE);
    assert_non_null(strstr(o.msg, "(2048 bytes)"));
    hsc_http_free(h);
    ev_loop_destroy(loop);
    server_stop(&s);
    hsc_config_free(cfg);
    (void)state;
}

/* A refused connection through an endpoint: libcurl's code arrives as a field. */
static void test_endpoint_refused_connection_is_a_curl_code(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d//",
             ntohs(a.sin_port)); /* bound, not listening */
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    struct hsc_http_endpoint ep;
    struct hsc_http_policy p = {.timeout_ms = 5000};
    assert_int_equal(hsc_http_endpoint_init(&ep, h, "test", url, "k", &p, &err), HSC_OK);
    assert_string_equal(ep.auth, "Authorization: Bearer k");
    assert_null(strstr(ep.url + 7, "//"));
    struct outcome o = {0};
    assert_int_equal(hsc_http_json(&ep, "POST", "/x", "{}", "op", 0, on_done, &o, &err), 0);
    while (!o.calls)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(o.code, HSC_ETRANSIENT);
    assert_int_equal(o.curl_code, CURLE_COULDNT_CONNECT);
    hsc_http_endpoint_destroy(&ep);
    hsc_http_free(h);
    ev_loop_destroy(loop);
    close(fd);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_body_is_aborted_naming_host_and_cap),
        cmocka_unit_test(test_body_under_the_cap_arrives_whole),
        cmocka_unit_test(test_non_http_urls_are_refused),
        cmocka_unit_test(test_configured_default_cap),
        cmocka_unit_test(test_endpoint_refused_connection_is_a_curl_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
