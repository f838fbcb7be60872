/*
 * The endpoints' HTTP server (metrics.h): /metrics, /healthz and /readyz on
 * the worker's own loop, bounded in connections, request size and time.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* Copies a token of buf[0..n) of at most cap - 1 bytes into out; its length, or -1 if too long. */
static int copy_token(const char *p, size_t n, char *out, size_t cap)
{
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return (int)n;
}

int hsc_httpd_parse_request(const char *buf, size_t len, struct hsc_httpd_request *req)
{
    memset(req, 0, sizeof(*req));
    if (len > HSC_HTTPD_MAX_REQUEST)
        len = HSC_HTTPD_MAX_REQUEST; /* never look past the bound, whatever the caller holds */
    const char *eol = memchr(buf, '\n', len);
    if (!eol)
        return len == HSC_HTTPD_MAX_REQUEST ? 414 : 0;
    if (memchr(buf, '\0', len))
        return 400;
    /* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 section 3) */
    size_t line = (size_t)(eol - buf);
    if (line && buf[line - 1] == '\r')
        line--;
    const char *sp1 = memchr(buf, ' ', line);
    if (!sp1 || sp1 == buf)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', line - (size_t)(target - buf));
    if (!sp2 || sp2 == target)
        return 400;
    const char *version = sp2 + 1;
    size_t vlen = line - (size_t)(version - buf);
    for (const char *p = buf; p < sp1; p++)
        if (*p < 'A' || *p > 'Z') /* every registered method is upper-case letters */
            return 400;
    if (copy_token(buf, (size_t)(sp1 - buf), req->method, sizeof(req->method)) < 0)
        return 400;
    if (memchr(version, ' ', vlen))
        return 400;
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) || (version[7] != '0' && version[7] != '1'))
        return vlen >= 5 && !memcmp(version, "HTTP/", 5) ? 505 : 400;
    size_t tlen = (size_t)(sp2 - target);
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= ' ' || (unsigned char)target[i] >= 0x7f)
            return 400;
    if (target[0] != '/')
        return 400;  /* origin-form only: no proxy requests, no "*" */
    size_t plen = 0; /* the path ends at the query or fragment */
    while (plen < tlen && target[plen] != '?' && target[plen] != '#')
        plen++;
    if (copy_token(target, plen, req->path, sizeof(req->path)) < 0)
        return 414;
    req->head = !strcmp(req->method, "HEAD");
    if (strcmp(req->method, "GET") && !req->head)
        return 405;
    /* The request line is good; answer once the header block has ended. */
    const char *rest = eol + 1;
    size_t rlen = len - (size_t)(rest - buf);
    if (rlen >= 1 && rest[0] == '\n')
        return 200;
    if (rlen >= 2 && rest[0] == '\r' && rest[1] == '\n')
        return 200;
    for (size_t i = 0; i + 1 < rlen; i++) {
        if (rest[i] != '\n')
            continue;
        if (rest[i + 1] == '\n' || (i + 2 < rlen && rest[i + 1] == '\r' && rest[i + 2] == '\n'))
            return 200;
    }
    return len == HSC_HTTPD_MAX_REQUEST ? 431 : 0;
}

/* The settings hsc_httpd_new uses (hsc_httpd_configure). */
static char g_bind[64] = "127.0.0.1";
static int g_max_connections = 16, g_timeout_ms = 5000;

struct hsc_httpd {
    struct ev_loop *loop;
    int fd;
    ev_io accept_io;
    hsc_metrics *m;
    hsc_ready_fn ready;
    hsc_refresh_fn refresh;
    void *arg;
    int max_connections, timeout_ms, nconns;
    struct conn *conns; /* every open connection, closed with the server */
};

/*
 * One connection: read the request head, answer it, then read and discard
 * until the client closes (so a request body the client is still sending
 * does not reset the answer away). Every step is non-blocking; one timer
 * bounds the connection's whole life.
 */
struct conn {
    hsc_httpd *h;
    struct conn *prev, *next;
    int fd;
    enum { C_READ, C_WRITE, C_DRAIN } state;
    ev_io io;
    ev_timer timer;
    char buf[HSC_HTTPD_MAX_REQUEST];
    size_t len;
    hsc_buf out; /* the whole answer, head and body */
    size_t off;  /* bytes of out written */
};

static void conn_close(struct conn *c)
{
    hsc_httpd *h = c->h;
    ev_io_stop(h->loop, &c->io);
    ev_timer_stop(h->loop, &c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    hsc_buf_free(&c->out);
    free(c);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Service Unavailable";
    }
}

/* Fills c->out with the answer; 0 or HSC_ENOMEM. */
static int build(struct conn *c, int status, const char *ctype, const char *body, size_t n,
                 int head_only)
{
    c->out.len = 0;
    int rc = hsc_buf_printf(&c->out,
                            "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                            "Connection: close\r\n\r\n",
                            status, status_text(status), ctype, n,
                            status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!rc && !head_only && n)
        rc = hsc_buf_append(&c->out, body, n);
    return rc;
}

/* Builds the answer to the request in c->buf (parse result status). */
static int answer(struct conn *c, int status, const struct hsc_httpd_request *rq)
{
    hsc_httpd *h = c->h;
    int head = rq->head;
    if (status != 200) {
        char body[64];
        int n = snprintf(body, sizeof(body), "%s\n", status_text(status));
        return build(c, status, "text/plain", body, (size_t)n, head);
    }
    if (!strcmp(rq->path, "/healthz"))
        return build(c, 200, "text/plain", "ok\n", 3, head); /* answered: the loop turns */
    if (!strcmp(rq->path, "/readyz")) {
        char why[256] = "";
        if (!h->ready || h->ready(h->arg, why, sizeof(why)))
            return build(c, 200, "text/plain", "ready\n", 6, head);
        char body[300];
        int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
        return build(c, 503, "text/plain", body, (size_t)n, head);
    }
    if (!strcmp(rq->path, "/metrics")) {
        if (h->refresh)
            h->refresh(h->arg, h->m);
        hsc_buf b = {0};
        int rc = hsc_metrics_render(h->m, &b);
        if (!rc)
            rc = build(c, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len, head);
        hsc_buf_free(&b);
        return rc;
    }
    return build(c, 404, "text/plain", "not found\n", 10, head);
}

/* Writes what the socket takes now; the write watcher brings the rest. */
static void flush_out(struct conn *c)
{
    while (c->off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->off, c->out.len - c->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->state != C_WRITE) {
                c->state = C_WRITE;
                ev_io_stop(c->h->loop, &c->io);
                ev_io_set(&c->io, c->fd, EV_WRITE);
                ev_io_start(c->h->loop, &c->io);
            }
            return;
        }
        if (w <= 0) {
            conn_close(c); /* the client went away */
            return;
        }
        c->off += (size_t)w;
    }
    /* All sent: end our side, then wait (bounded by the timer) for the client's close. */
    shutdown(c->fd, SHUT_WR);
    hsc_buf_free(&c->out);
    c->state = C_DRAIN;
    ev_io_stop(c->h->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ);
    ev_io_start(c->h->loop, &c->io);
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->state == C_WRITE) {
        flush_out(c);
        return;
    }
    if (c->state == C_DRAIN) {
        char sink[4096];
        ssize_t r = recv(c->fd, sink, sizeof(sink), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)r;
    struct hsc_httpd_request rq;
    int status = hsc_httpd_parse_request(c->buf, c->len, &rq);
    if (status == 0)
        return; /* more to come; the parser answers 414/431 once the buffer is full */
    if (answer(c, status, &rq)) {
        conn_close(c);
        return;
    }
    flush_out(c);
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(w->data); /* a client that never finishes its request or never reads */
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_httpd *h = w->data;
    (void)revents;
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: all taken; other errors: the next readiness retries */
        if (h->nconns >= h->max_connections) {
            close(fd); /* over the cap: refused at once, nothing read or written */
            hsc_metrics_inc(h->m, "hsc_httpd_connections_refused_total", "", 1);
            continue;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->h = h;
        c->fd = fd;
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        ev_io_init(&c->io, on_conn_io, fd, EV_READ);
        c->io.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, on_conn_timeout, h->timeout_ms / 1000.0, 0.);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
    }
}

/* Parses an IPv4 or IPv6 address literal and port into a, for the key "metrics.bind". */
static int bind_address(const char *bind, int port, struct sockaddr_storage *a, socklen_t *alen,
                        hsc_err *err)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *a4 = (struct sockaddr_in *)a;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)a;
    if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *alen = sizeof(*a4);
        return HSC_OK;
    }
    if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *alen = sizeof(*a6);
        return HSC_OK;
    }
    return hsc_err_set(err, HSC_ECONFIG,
                       "metrics.bind: '%s' is not an IPv4 or IPv6 address (e.g. 127.0.0.1, "
                       "0.0.0.0, ::1)",
                       bind);
}

int hsc_httpd_configure(const hsc_config *cfg, hsc_err *err)
{
    struct sockaddr_storage a;
    socklen_t alen = 0; /* set by bind_address; -O3 cannot see it on every path */
    const char *bind = hsc_config_str(cfg, "metrics.bind");
    if (bind_address(bind, 0, &a, &alen, err))
        return err->code;
    snprintf(g_bind, sizeof(g_bind), "%s", bind);
    g_max_connections = (int)hsc_config_int(cfg, "metrics.max_connections");
    g_timeout_ms = (int)hsc_config_int(cfg, "metrics.timeout_ms");
    return HSC_OK;
}

hsc_httpd *hsc_httpd_listen(struct ev_loop *loop, const struct hsc_httpd_options *o, hsc_metrics *m,
                            hsc_ready_fn ready, hsc_refresh_fn refresh, void *arg, hsc_err *err)
{
    if (o->port <= 0)
        return NULL;
    const char *bind_to = o->bind && *o->bind ? o->bind : "127.0.0.1";
    struct sockaddr_storage a;
    socklen_t alen = 0; /* set by bind_address; -O3 cannot see it on every path */
    if (bind_address(bind_to, o->port, &a, &alen, err))
        return NULL;
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, alen) || listen(fd, 64)) {
        hsc_err_set(err, HSC_ECONFIG, "metrics.port: cannot listen on %s port %d: %s", bind_to,
                    o->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    hsc_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    *h = (hsc_httpd){.loop = loop,
                     .fd = fd,
                     .m = m,
                     .ready = ready,
                     .refresh = refresh,
                     .arg = arg,
                     .max_connections = o->max_connections > 0 ? o->max_connections : 16,
                     .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000};
    ev_io_init(&h->accept_io, on_accept, fd, EV_READ);
    h->accept_io.data = h;
    ev_io_start(loop, &h->accept_io);
    return h;
}

hsc_httpd *hsc_httpd_new(struct ev_loop *loop, int port, hsc_metrics *m, hsc_ready_fn ready,
                         hsc_refresh_fn refresh, void *arg, hsc_err *err)
{
    struct hsc_httpd_options o = {.bind = g_bind,
                                  .port = port,
                                  .max_connections = g_max_connections,
                                  .timeout_ms = g_timeout_ms};
    return hsc_httpd_listen(loop, &o, m, ready, refresh, arg, err);
}

int hsc_httpd_port(const hsc_httpd *h)
{
    struct sockaddr_storage a;
    socklen_t alen = sizeof(a);
    if (getsockname(h->fd, (struct sockaddr *)&a, &alen))
        return -1;
    return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                         : ((struct sockaddr_in *)&a)->sin_port);
}

int hsc_httpd_connections(const hsc_httpd *h)
{
    return h->nconns;
}

void hsc_httpd_free(hsc_httpd *h)
{
    if (!h)
        return;
    while (h->conns)
        conn_close(h->conns);
    ev_io_stop(h->loop, &h->accept_io);
    close(h->fd);
    free(h);
}
