/* The metrics registry and the endpoints' HTTP server; see metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

static const double BUCKETS[HSC_METRICS_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* Buckets for counts (batch sizes) rather than seconds. */
const double HSC_METRICS_SIZE_BUCKETS[HSC_METRICS_NBUCKETS] = {1,   2,   5,   10,   25,   50,
                                                               100, 250, 500, 1000, 2500, 10000};

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

/* One time series. */
struct series {
    char *name, *labels;
    int type;
    double value, sum;
    unsigned long long count, buckets[HSC_METRICS_NBUCKETS];
    const double *bounds; /* a histogram's upper bounds */
};

/* One family's help text. */
struct help {
    char *name, *text;
};

struct hsc_metrics {
    struct series *s;
    size_t n, cap;
    struct help *h;
    size_t nh;
};

hsc_metrics *hsc_metrics_new(void)
{
    return calloc(1, sizeof(hsc_metrics));
}

void hsc_metrics_free(hsc_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->s[i].name), free(m->s[i].labels);
    for (size_t i = 0; i < m->nh; i++)
        free(m->h[i].name), free(m->h[i].text);
    free(m->s);
    free(m->h);
    free(m);
}

static struct series *get(hsc_metrics *m, const char *name, const char *labels, int type)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return &m->s[i];
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 32;
        struct series *ns = realloc(m->s, cap * sizeof(*ns));
        if (!ns)
            return NULL;
        m->s = ns;
        m->cap = cap;
    }
    struct series *s = &m->s[m->n];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->type = type;
    if (!s->name || !s->labels) {
        free(s->name), free(s->labels);
        return NULL;
    }
    m->n++;
    return s;
}

void hsc_metrics_drop(hsc_metrics *m, const char *name, const char *label_prefix)
{
    if (!m)
        return;
    size_t k = 0, plen = strlen(label_prefix);
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->s[i].name, name) && !strncmp(m->s[i].labels, label_prefix, plen)) {
            free(m->s[i].name), free(m->s[i].labels);
            continue;
        }
        m->s[k++] = m->s[i];
    }
    m->n = k;
}

void hsc_metrics_inc(hsc_metrics *m, const char *name, const char *labels, double v)
{
    struct series *s = m ? get(m, name, labels, M_COUNTER) : NULL;
    if (s)
        s->value += v;
}

void hsc_metrics_count(hsc_metrics *m, const char *name, const char *labels, double total)
{
    struct series *s = m ? get(m, name, labels, M_COUNTER) : NULL;
    if (s)
        s->value = total;
}

void hsc_metrics_set(hsc_metrics *m, const char *name, const char *labels, double v)
{
    struct series *s = m ? get(m, name, labels, M_GAUGE) : NULL;
    if (s)
        s->value = v;
}

void hsc_metrics_observe_in(hsc_metrics *m, const char *name, const char *labels, double v,
                            const double *bounds)
{
    struct series *s = m ? get(m, name, labels, M_HISTOGRAM) : NULL;
    if (!s)
        return;
    if (!s->bounds)
        s->bounds = bounds;
    s->count++;
    s->sum += v;
    for (int i = 0; i < HSC_METRICS_NBUCKETS; i++)
        if (v <= s->bounds[i])
            s->buckets[i]++;
}

void hsc_metrics_observe(hsc_metrics *m, const char *name, const char *labels, double seconds)
{
    hsc_metrics_observe_in(m, name, labels, seconds, BUCKETS);
}

static hsc_metrics *g_backend_metrics;

void hsc_metrics_set_backend_registry(hsc_metrics *m)
{
    g_backend_metrics = m;
}

/* Labels are built here so every client spells them the same way. */
void hsc_metrics_backend_call(const char *backend, const char *op, double seconds)
{
    if (!g_backend_metrics)
        return;
    char labels[160];
    snprintf(labels, sizeof(labels), "backend=\"%s\",op=\"%s\"", backend, op ? op : "call");
    hsc_metrics_observe(g_backend_metrics, "hsc_backend_request_duration_seconds", labels, seconds);
}

void hsc_metrics_backend_retry(const char *backend, double delay_s)
{
    if (!g_backend_metrics)
        return;
    char labels[96];
    snprintf(labels, sizeof(labels), "backend=\"%s\"", backend);
    hsc_metrics_inc(g_backend_metrics, "hsc_backend_retries_total", labels, 1);
    hsc_metrics_inc(g_backend_metrics, "hsc_backend_backoff_seconds_total", labels, delay_s);
}

void hsc_metrics_help(hsc_metrics *m, const char *name, const char *help)
{
    struct help *h = realloc(m->h, (m->nh + 1) * sizeof(*h));
    if (!h)
        return;
    m->h = h;
    h[m->nh].name = strdup(name);
    h[m->nh].text = strdup(help);
    m->nh++;
}

double hsc_metrics_value(const hsc_metrics *m, const char *name, const char *labels)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return m->s[i].type == M_HISTOGRAM ? (double)m->s[i].count : m->s[i].value;
    return 0;
}

static const char *TYPE_NAMES[] = {"counter", "gauge", "histogram"};

int hsc_metrics_render(const hsc_metrics *m, hsc_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        const struct series *s = &m->s[i];
        int first = 1; /* the first series of its family prints the family's header */
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(m->s[j].name, s->name) != 0;
        if (!first)
            continue;
        for (size_t h = 0; h < m->nh && !rc; h++)
            if (!strcmp(m->h[h].name, s->name))
                rc = hsc_buf_printf(out, "# HELP %s %s\n", s->name, m->h[h].text);
        rc = rc ? rc : hsc_buf_printf(out, "# TYPE %s %s\n", s->name, TYPE_NAMES[s->type]);
        for (size_t j = i; j < m->n && !rc; j++) {
            const struct series *x = &m->s[j];
            if (strcmp(x->name, s->name))
                continue;
            const char *sep = x->labels[0] ? "," : "";
            if (x->type != M_HISTOGRAM) {
                rc = hsc_buf_printf(out, "%s%s%s%s %.17g\n", x->name, x->labels[0] ? "{" : "",
                                    x->labels, x->labels[0] ? "}" : "", x->value);
                continue;
            }
            for (int b = 0; b < HSC_METRICS_NBUCKETS && !rc; b++)
                rc = hsc_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", x->name, x->labels, sep,
                                    x->bounds[b], x->buckets[b]);
            rc = rc ? rc
                    : hsc_buf_printf(out,
                                     "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s%s%s %.17g\n"
                                     "%s_count%s%s%s %llu\n",
                                     x->name, x->labels, sep, x->count, x->name,
                                     x->labels[0] ? "{" : "", x->labels, x->labels[0] ? "}" : "",
                                     x->sum, x->name, x->labels[0] ? "{" : "", x->labels,
                                     x->labels[0] ? "}" : "", x->count);
        }
    }
    return rc;
}

/* ---------------- the HTTP server ---------------- */

struct hsc_httpd {
    struct ev_loop *loop;
    int fd;
    ev_io accept_io;
    hsc_metrics *m;
    hsc_ready_fn ready;
    hsc_refresh_fn refresh;
    void *arg;
};

/* One connection: read the request line, answer, close. */
struct conn {
    hsc_httpd *h;
    int fd;
    ev_io io;
    ev_timer timer;
    char buf[2048];
    size_t len;
};

static void conn_close(struct conn *c)
{
    ev_io_stop(c->h->loop, &c->io);
    ev_timer_stop(c->h->loop, &c->timer);
    close(c->fd);
    free(c);
}

static void respond(struct conn *c, int status, const char *ctype, const char *body, size_t n)
{
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status,
                      status == 200   ? "OK"
                      : status == 404 ? "Not Found"
                                      : "Service Unavailable",
                      ctype, n);
    /* the reply is small; a blocking write with a send timeout keeps this simple */
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    const char *parts[2] = {head, body};
    size_t lens[2] = {(size_t)hl, n};
    for (int p = 0; p < 2; p++)
        for (size_t off = 0; off < lens[p];) {
            ssize_t w = write(c->fd, parts[p] + off, lens[p] - off);
            if (w <= 0)
                return;
            off += (size_t)w;
        }
}

static void serve(struct conn *c)
{
    hsc_httpd *h = c->h;
    c->buf[c->len] = 0;
    char path[128] = "";
    if (sscanf(c->buf, "GET %127s", path) != 1) {
        respond(c, 404, "text/plain", "only GET\n", 9);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = 0;
    if (!strcmp(path, "/healthz")) {
        respond(c, 200, "text/plain", "ok\n", 3); /* answered from the loop: the loop turns */
    } else if (!strcmp(path, "/readyz")) {
        char why[256] = "";
        if (!h->ready || h->ready(h->arg, why, sizeof(why))) {
            respond(c, 200, "text/plain", "ready\n", 6);
        } else {
            char body[300];
            int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
            respond(c, 503, "text/plain", body, (size_t)n);
        }
    } else if (!strcmp(path, "/metrics")) {
        if (h->refresh)
            h->refresh(h->arg, h->m);
        hsc_buf b = {0};
        if (hsc_metrics_render(h->m, &b) == 0)
            respond(c, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
        hsc_buf_free(&b);
    } else {
        respond(c, 404, "text/plain", "not found\n", 10);
    }
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n") || c->len == sizeof(c->buf) - 1) {
        serve(c);
        conn_close(c);
    }
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(w->data); /* a client that never finishes its request */
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    hsc_httpd *h = w->data;
    (void)revents;
    int fd = accept(h->fd, NULL, NULL);
    if (fd < 0)
        return;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->h = h;
    c->fd = fd;
    ev_io_init(&c->io, on_conn_io, fd, EV_READ);
    c->io.data = c;
    ev_io_start(loop, &c->io);
    ev_timer_init(&c->timer, on_conn_timeout, 5., 0.);
    c->timer.data = c;
    ev_timer_start(loop, &c->timer);
}

hsc_httpd *hsc_httpd_new(struct ev_loop *loop, int port, hsc_metrics *m, hsc_ready_fn ready,
                         hsc_refresh_fn refresh, void *arg, hsc_err *err)
{
    if (port <= 0)
        return NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
        hsc_err_set(err, HSC_ECONFIG, "metrics.port: cannot listen on %d: %s", port,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    hsc_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    *h =
        (hsc_httpd){.loop = loop, .fd = fd, .m = m, .ready = ready, .refresh = refresh, .arg = arg};
    ev_io_init(&h->accept_io, on_accept, fd, EV_READ);
    h->accept_io.data = h;
    ev_io_start(loop, &h->accept_io);
    return h;
}

void hsc_httpd_free(hsc_httpd *h)
{
    if (!h)
        return;
    ev_io_stop(h->loop, &h->accept_io);
    close(h->fd);
    free(h);
}
