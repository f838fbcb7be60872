/*
 * libcurl multi on libev: curl tells us which sockets to watch and when to
 * wake it (socket and timer callbacks); libev tells curl when they fire. A
 * request keeps its easy handle across retries, and the multi handle keeps
 * connections alive between requests.
 *
 * Each backend has a lane: a limit on the attempts it has in flight from this
 * client, beyond which requests wait here (parked) in the order they came.
 * The limit is adaptive, as TCP's congestion window (grows with the answers,
 * halves when an attempt times out or its caller stops waiting, 1 while the
 * backend is down), because the servers behind us do not stop a statement when its
 * client hangs up: Neo4j or Milvus restarted under load, JIT-cold, would
 * otherwise be sent every request of the moment, work through the ones
 * already abandoned, and miss the deadlines of the searches after it is back
 * as well. A parked request costs the server nothing when it is abandoned.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"
#include "conn.h"
#include "metrics.h"
#include "log.h"
#include "util.h"

struct req {
    hsc_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body, *method, *url;
    size_t body_len;
    hsc_buf resp;
    int too_big; /* the body passed the client's max_response: the transfer was aborted */
    int attempt, retries;
    const char *backend, *op;      /* static strings, for the metrics; backend NULL: not recorded */
    int idempotent, fresh_retried; /* a stale pooled connection costs one fresh attempt */
    int timeout_ms;
    int64_t deadline_ms;   /* the scope's deadline when it started (epoch ms; 0: none) */
    uint64_t seq;          /* order of arrival, for the lane's queue */
    int in_lane;           /* holds one of its lane's slots (in flight, or woken to start) */
    unsigned lane_cuts;    /* its lane's cuts when its slot was given */
    int parked;            /* waits for a slot; its retry_timer is its timeout meanwhile */
    int in_multi;          /* its attempt is in the multi handle */
    int64_t wait_until_us; /* when a parked request gives up (0: not parked) */
    const void *owner;     /* hsc_http_set_scope's owner when it started, for hsc_http_cancel */
    int cancelled;         /* completes with HSC_ECANCELED from its timer */
    int64_t started_us;
    int64_t attempt_us; /* when its current attempt went into the multi handle */
    unsigned epoch;     /* conn.h epoch of the backend when the attempt started */
    hsc_backoff bo;
    ev_timer retry_timer;
    hsc_http_fn cb;
    void *arg;
    struct req *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

/* One backend's attempts in flight from this client, and how many it may have. */
struct lane {
    const char *backend; /* the requests' static name; NULL: a free lane */
    int in_flight;       /* attempts in the multi handle, or woken to start */
    int limit;           /* 1..HTTP_LANE_MAX, adapted to the answers */
    int threshold;       /* below it the limit grows by one an answer, above by one a round */
    int credit;          /* answers since the limit last grew above the threshold */
    int64_t answer_us;   /* smoothed time of its answered attempts (0: none yet) */
    unsigned cuts;       /* times the limit was cut: an attempt started before the last cut
                            says nothing new when it too is slow */
    hsc_http *h;
    ev_timer hedge; /* while it is down: one more probe now and then (on_hedge) */
};

/* How an attempt ended, for its lane's limit. */
enum outcome {
    ENDED_OTHER,    /* no news about the backend's capacity */
    ENDED_ANSWERED, /* a response arrived: one more may be in flight */
    ENDED_SLOW,     /* it timed out, or its caller stopped waiting: half as many */
    ENDED_LOST,     /* the connection failed: one, until the backend answers */
};

#define HTTP_LANES 8
#define HTTP_LANE_MAX 16 /* as CURLMOPT_MAX_HOST_CONNECTIONS */
#define HTTP_LANE_DOWN_MAX 4
#define HTTP_LANE_HEDGE_S 0.5

struct hsc_http {
    struct ev_loop *loop;
    struct lane lanes[HTTP_LANES];
    uint64_t seq;
    CURLM *multi;
    ev_timer timer;
    struct req *reqs; /* every request not yet completed */
    size_t nreqs;
    size_t max_response; /* bytes of body a response may carry (http.max_response_bytes) */
    int64_t deadline_ms; /* hsc_http_set_scope: bounds requests started now (0: none) */
    const void *owner;   /* hsc_http_set_scope: the owner of requests started now */
};

/* The watcher of one socket curl asked us to watch. */
struct sock {
    ev_io io;
    hsc_http *h;
    curl_socket_t fd;
};

int hsc_http_status_transient(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

int hsc_http_status_error(hsc_err *err, const char *backend, long status, const char *body,
                          size_t len, size_t max)
{
    hsc_err_set(
        err,
        (status >= 400 && status < 500 && !hsc_http_status_transient(status)) ? HSC_EINVAL
                                                                              : HSC_ETRANSIENT,
        "%s: HTTP %ld: %.*s", backend, status, (int)(len < max ? len : max), body ? body : "");
    err->http_status = status;
    return err->code;
}

static void unlink_req(struct req *r)
{
    HSC_DLIST_UNLINK(r->h->reqs, r);
    r->h->nreqs--;
}

static void free_req(struct req *r)
{
    ev_timer_stop(r->h->loop, &r->retry_timer);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    hsc_buf_free(&r->resp);
    free(r->body);
    free(r->method);
    free(r->url);
    free(r);
}

static void lane_release(struct req *r, enum outcome how);

/* Hands the outcome to the caller and forgets the request. */
static void complete(struct req *r, const hsc_http_response *res, const hsc_err *err)
{
    lane_release(r, ENDED_OTHER); /* a slot woken for it and never used */
    r->parked = 0;
    unlink_req(r);
    hsc_http_fn cb = r->cb;
    void *arg = r->arg;
    cb(arg, res, err);
    free_req(r);
}

static void on_hedge(struct ev_loop *loop, ev_timer *w, int revents);

/* The lane of r's backend (made on first use); NULL when it has none (no backend, or too many). */
static struct lane *lane_of(hsc_http *h, const char *backend)
{
    if (!backend)
        return NULL;
    for (int i = 0; i < HTTP_LANES; i++) {
        struct lane *l = &h->lanes[i];
        if (!l->backend) {
            *l = (struct lane){
                .backend = backend, .limit = HTTP_LANE_MAX, .threshold = HTTP_LANE_MAX, .h = h};
            ev_timer_init(&l->hedge, on_hedge, HTTP_LANE_HEDGE_S, HTTP_LANE_HEDGE_S);
            l->hedge.data = l;
            return l;
        }
        if (l->backend == backend || !strcmp(l->backend, backend))
            return l;
    }
    return NULL;
}

static int lane_limit(const struct lane *l)
{
    return hsc_conn_is_down(l->backend) ? 1 : l->limit; /* a down backend gets one probe */
}

/*
 * Gives a slot of l to the parked request with the most time left, to start
 * from the loop; 0 if none waits. Under overload that is the one most likely
 * to be answered in time; first come, first served would hand a backend that
 * is slow to come back (Neo4j plans a statement for seconds after a restart)
 * only requests about to be cut, each abandoned before it could show the
 * backend is back.
 */
static int lane_wake_one(hsc_http *h, struct lane *l)
{
    struct req *next = NULL;
    for (struct req *o = h->reqs; o; o = o->next)
        if (o->parked && lane_of(h, o->backend) == l &&
            (!next || o->wait_until_us > next->wait_until_us ||
             (o->wait_until_us == next->wait_until_us && o->seq < next->seq)))
            next = o;
    if (!next)
        return 0;
    next->parked = 0;
    next->in_lane = 1; /* the slot is its own from now: nobody overtakes it */
    next->lane_cuts = l->cuts;
    l->in_flight++;
    ev_timer_stop(h->loop, &next->retry_timer);
    ev_timer_set(&next->retry_timer, 0., 0.);
    ev_timer_start(h->loop, &next->retry_timer);
    return 1;
}

/* Lets parked requests of l start while it has room. */
static void lane_wake(hsc_http *h, struct lane *l)
{
    while (l->in_flight < lane_limit(l) && lane_wake_one(h, l))
        ;
}

/*
 * While a backend is down its one probe may take long: Neo4j plans a
 * statement for seconds after a restart, and a probe that started before the
 * plan was ready ends no sooner than its own planning. Every
 * HTTP_LANE_HEDGE_S another request goes too, up to HTTP_LANE_DOWN_MAX in
 * flight, so that once the server can answer, an answer comes within that
 * time rather than after the oldest probe.
 */
static void on_hedge(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lane *l = w->data;
    if (!hsc_conn_is_down(l->backend) || l->in_flight >= HTTP_LANE_DOWN_MAX ||
        !lane_wake_one(l->h, l))
        ev_timer_stop(loop, w); /* park() starts it again */
    (void)revents;
}

/* r's attempt no longer holds a slot of its lane: adapt the limit and wake who waits. */
static void lane_release(struct req *r, enum outcome how)
{
    if (!r->in_lane)
        return;
    r->in_lane = 0;
    struct lane *l = lane_of(r->h, r->backend);
    l->in_flight--;
    /* As TCP's congestion window: quickly back to half of where trouble began, then slowly. */
    if (how == ENDED_ANSWERED) {
        int64_t took = hsc_mono_us() - r->attempt_us;
        l->answer_us = l->answer_us ? (7 * l->answer_us + took) / 8 : took;
    }
    if (how == ENDED_ANSWERED && l->limit < HTTP_LANE_MAX) {
        if (l->limit < l->threshold || ++l->credit >= l->limit) {
            l->limit++;
            l->credit = 0;
        }
    } else if ((how == ENDED_SLOW || how == ENDED_LOST) && r->lane_cuts == l->cuts) {
        l->cuts++;
        l->threshold = l->limit > 2 ? l->limit / 2 : 2;
        l->limit = how == ENDED_LOST ? 1 : l->limit > 1 ? l->limit / 2 : 1;
        l->credit = 0;
    }
    lane_wake(r->h, l);
}

/* r waits for a slot of its lane, at most its timeout (and its scope's deadline) in all. */
static void park(struct req *r)
{
    int64_t now = hsc_mono_us();
    if (!r->wait_until_us) {
        int64_t wait_ms = r->timeout_ms;
        if (r->deadline_ms && r->deadline_ms - hsc_now_ms() < wait_ms)
            wait_ms = r->deadline_ms - hsc_now_ms();
        r->wait_until_us = now + (wait_ms > 0 ? wait_ms : 0) * 1000;
    }
    r->parked = 1;
    struct lane *l = lane_of(r->h, r->backend);
    if (hsc_conn_is_down(r->backend) && !ev_is_active(&l->hedge))
        ev_timer_again(r->h->loop, &l->hedge);
    ev_timer_stop(r->h->loop, &r->retry_timer);
    ev_timer_set(&r->retry_timer, (double)(r->wait_until_us - now) / 1e6, 0.);
    ev_timer_start(r->h->loop, &r->retry_timer);
}

static int start_attempt(struct req *r, hsc_err *err)
{
    struct lane *l = lane_of(r->h, r->backend);
    if (l && !r->in_lane) {
        if (l->in_flight >= lane_limit(l)) {
            park(r);
            return HSC_OK;
        }
        r->in_lane = 1;
        r->lane_cuts = l->cuts;
        l->in_flight++;
    }
    if (r->wait_until_us && r->deadline_ms) {
        /* It waited for its slot: its scope's caller stops waiting that much sooner. */
        int64_t left = r->deadline_ms - hsc_now_ms();
        if (left < r->timeout_ms)
            curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(left < 1 ? 1 : left));
    }
    r->wait_until_us = 0;
    r->attempt++;
    r->resp.len = 0;
    r->too_big = 0;
    r->errbuf[0] = '\0';
    if (r->backend)
        r->epoch = hsc_conn_epoch(r->backend);
    CURLMcode mc = curl_multi_add_handle(r->h->multi, r->easy);
    if (mc != CURLM_OK) {
        lane_release(r, ENDED_OTHER);
        return hsc_err_set(err, HSC_ETRANSIENT, "%s %s: %s", r->method, r->url,
                           curl_multi_strerror(mc));
    }
    r->in_multi = 1;
    r->attempt_us = hsc_mono_us();
    return HSC_OK;
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = (struct req *)((char *)w - offsetof(struct req, retry_timer));
    hsc_err err = {0};
    if (r->parked) {
        hsc_err_set(&err, HSC_ETRANSIENT,
                    "%s %s: not sent: %s already had %d requests in flight (%s) "
                    "and none ended within this one's timeout",
                    r->method, r->url, r->backend, lane_of(r->h, r->backend)->in_flight,
                    hsc_conn_is_down(r->backend) ? "it is down: one tests it" : "its limit");
        complete(r, NULL, &err);
        return;
    }
    if (r->cancelled) {
        hsc_err_set(&err, HSC_ECANCELED, "%s %s: cancelled, its caller stopped waiting", r->method,
                    r->url);
        complete(r, NULL, &err);
        return;
    }
    if (start_attempt(r, &err))
        complete(r, NULL, &err);
    (void)loop;
    (void)revents;
}

/* A transient failure (an answer res, or the transfer's CURLcode rc): schedule another
 * attempt, or give up with err. */
static void retry_or_fail(struct req *r, const hsc_http_response *res, CURLcode rc, const char *why)
{
    if (r->attempt <= r->retries) {
        double delay = (double)hsc_backoff_next(&r->bo) / 1000.0;
        char attempt[16];
        snprintf(attempt, sizeof(attempt), "%d", r->attempt);
        hsc_log_debug("http retry", "method", r->method, "url", r->url, "error", why, "attempt",
                      attempt, NULL);
        if (r->backend)
            hsc_metrics_backend_retry(r->backend, delay);
        ev_timer_set(&r->retry_timer, delay, 0.);
        ev_timer_start(r->h->loop, &r->retry_timer);
        return;
    }
    if (res) { /* a 5xx to the end: the caller reads the server's own message */
        complete(r, res, NULL);
        return;
    }
    hsc_err err;
    hsc_err_set(&err, HSC_ETRANSIENT, "%s %s: %s (after %d attempts)", r->method, r->url, why,
                r->attempt);
    err.curl_code = (int)rc;
    complete(r, NULL, &err);
}

/* "user:pw@host:port" of a URL, as "host:port" (for errors: no credentials). */
static void url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* A response body over the client's cap: the transfer was aborted. */
static void fail_too_big(struct req *r, CURLcode rc)
{
    char host[256];
    url_host(r->url, host, sizeof(host));
    hsc_err err;
    hsc_err_set(&err, HSC_ETRANSIENT,
                "%s %s: response from %s exceeds http.max_response_bytes (%zu bytes); aborted",
                r->method, r->url, host, r->h->max_response);
    err.curl_code = (int)rc;
    complete(r, NULL, &err);
}

/* Failures of the connection rather than of the request: the server went away or is not there. */
static int connection_failed(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_COULDNT_RESOLVE_HOST;
}

/*
 * A connection failure on a reused (pooled) connection of an idempotent
 * request that has not had its fresh attempt yet: the pooled connection was
 * stale, the server may be fine. Returns the ms left of its timeout for one
 * fresh attempt, 0 if that is not the case (or too little is left).
 */
static int64_t stale_left_ms(struct req *r, CURLcode rc)
{
    if (!connection_failed(rc) || rc == CURLE_COULDNT_CONNECT || !r->idempotent || r->fresh_retried)
        return 0;
    long connects = 1;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
    int64_t left_ms = r->timeout_ms - (hsc_mono_us() - r->started_us) / 1000;
    return connects == 0 && left_ms > 10 ? left_ms : 0;
}

/*
 * A connection failure. A stale pooled connection (left_ms from
 * stale_left_ms) gets one immediate attempt on a fresh connection, within
 * what is left of its timeout and not counted as a retry. Otherwise the
 * loss is recorded (once per outage, conn.h) and the usual retry policy
 * decides. 1 if retried fresh.
 */
static int stale_retry(struct req *r, int64_t left_ms, const char *why)
{
    if (left_ms) {
        r->fresh_retried = 1;
        r->attempt--; /* a stale connection is not the server's failure */
        curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)left_ms);
        hsc_log_debug("http stale connection: one fresh attempt", "method", r->method, "url",
                      r->url, "error", why, NULL);
        if (r->backend)
            hsc_metrics_backend_retry(r->backend, 0);
        ev_timer_set(&r->retry_timer, 0., 0.); /* from the loop, after this round of results */
        ev_timer_start(r->h->loop, &r->retry_timer);
        return 1;
    }
    if (r->backend)
        hsc_conn_lost(r->backend, r->epoch, why);
    return 0;
}

static void check_done(hsc_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r->cancelled)
            continue; /* it completes from its timer */
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(h->multi, m->easy_handle);
        r->in_multi = 0;
        if (rc == CURLE_OK && r->backend)
            hsc_conn_up(r->backend); /* it answered: logs a recovery if it was lost */
        int64_t stale_ms = rc == CURLE_OK ? 0 : stale_left_ms(r, rc);
        lane_release(r, rc == CURLE_OK                   ? ENDED_ANSWERED
                        : rc == CURLE_OPERATION_TIMEDOUT ? ENDED_SLOW
                        : stale_ms                       ? ENDED_OTHER /* not the backend's */
                        : connection_failed(rc)          ? ENDED_LOST
                                                         : ENDED_OTHER);
        if (r->backend) { /* every attempt, failed ones too: a timeout is a latency */
            double secs = 0;
            curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &secs);
            hsc_metrics_backend_call(r->backend, r->op, secs);
        }
        if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            fail_too_big(r, rc); /* the next attempt would get the same body: no retry */
            continue;
        }
        if (rc != CURLE_OK) {
            const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
            if (!connection_failed(rc) || !stale_retry(r, stale_ms, why))
                retry_or_fail(r, NULL, rc, why);
            continue;
        }
        hsc_http_response res = {0};
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &res.seconds);
        if (hsc_buf_append(&r->resp, "", 1)) {
            hsc_err err;
            hsc_err_set(&err, HSC_ENOMEM, "%s %s: out of memory", r->method, r->url);
            complete(r, NULL, &err);
            continue;
        }
        res.body = r->resp.data;
        res.len = r->resp.len - 1;
        if (hsc_http_status_transient(res.status)) {
            char why[32];
            snprintf(why, sizeof(why), "HTTP %ld", res.status);
            retry_or_fail(r, &res, CURLE_OK, why);
            continue;
        }
        complete(r, &res, NULL);
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sock *s = (struct sock *)w;
    hsc_http *h = s->h; /* curl may free s (CURL_POLL_REMOVE) inside socket_action */
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, s->fd, action, &running);
    check_done(h);
    (void)loop;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    hsc_http *h = w->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
    (void)loop;
    (void)revents;
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    hsc_http *h = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(h->loop, &s->io);
            free(s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->h = h;
        s->fd = fd;
        curl_multi_assign(h->multi, fd, s);
    } else {
        ev_io_stop(h->loop, &s->io);
    }
    ev_io_init(&s->io, on_io, fd, events);
    ev_io_start(h->loop, &s->io);
    (void)e;
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    hsc_http *h = userp;
    ev_timer_stop(h->loop, &h->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&h->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(h->loop, &h->timer);
    }
    (void)multi;
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    if (size * n > r->h->max_response - r->resp.len) {
        r->too_big = 1; /* returning short makes curl abort with CURLE_WRITE_ERROR */
        return 0;
    }
    return hsc_buf_append(&r->resp, p, size * n) ? 0 : size * n;
}

static size_t g_max_response = HSC_HTTP_MAX_RESPONSE_DEFAULT;

void hsc_http_configure(const hsc_config *cfg)
{
    g_max_response = (size_t)hsc_config_int(cfg, "http.max_response_bytes");
}

void hsc_http_set_max_response(hsc_http *h, size_t bytes)
{
    h->max_response = bytes;
}

hsc_http *hsc_http_new(struct ev_loop *loop, hsc_err *err)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            hsc_err_set(err, HSC_EIO, "curl_global_init failed");
            return NULL;
        }
        global_done = 1;
    }
    hsc_http *h = calloc(1, sizeof(*h));
    if (!h || !(h->multi = curl_multi_init())) {
        free(h);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->max_response = g_max_response;
    ev_timer_init(&h->timer, on_timer, 0., 0.);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* Enough connections per server for a worker's concurrent calls, kept open. */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 32L);
    return h;
}

int hsc_http_request(hsc_http *h, const struct hsc_http_request *q, hsc_http_fn cb, void *arg,
                     hsc_err *err)
{
    if (strncasecmp(q->url, "http://", 7) && strncasecmp(q->url, "https://", 8))
        return hsc_err_set(err, HSC_ECONFIG,
                           "%s %.200s: only http:// and https:// URLs are allowed", q->method,
                           q->url);
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    r->retries = q->retries < 0 ? 0 : q->retries;
    r->backend = q->backend;
    r->op = q->op;
    r->idempotent = q->idempotent || !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD");
    r->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : 30000;
    r->owner = h->owner;
    r->deadline_ms = h->deadline_ms;
    r->seq = ++h->seq;
    if (h->deadline_ms) {
        /* A call its caller has stopped waiting for must not hold a connection on. */
        int64_t left = h->deadline_ms - hsc_now_ms();
        if (left < 1)
            left = 1;
        if (left < r->timeout_ms)
            r->timeout_ms = (int)left;
    }
    r->started_us = hsc_mono_us();
    hsc_backoff_init(&r->bo, q->backoff_initial_ms > 0 ? q->backoff_initial_ms : 100,
                     q->backoff_max_ms > 0 ? q->backoff_max_ms : 2000,
                     (uint64_t)hsc_mono_us() ^ (uintptr_t)r);
    ev_timer_init(&r->retry_timer, on_retry_timer, 0., 0.);
    r->method = strdup(q->method);
    r->url = strdup(q->url);
    r->easy = curl_easy_init();
    if (q->body) {
        r->body = hsc_strndup(q->body, q->body_len);
        r->body_len = q->body_len;
    }
    if (!r->method || !r->url || !r->easy || (q->body && !r->body)) {
        free_req(r);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    for (const char *const *hd = q->headers; hd && *hd; hd++) {
        struct curl_slist *n = curl_slist_append(r->hdrs, *hd);
        if (!n) {
            free_req(r);
            return hsc_err_set(err, HSC_ENOMEM, "out of memory");
        }
        r->hdrs = n;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (!strcmp(r->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Only http(s), for the URL and any redirect: never file://, gopher://, ... */
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* A Content-Length over the cap fails before the body; on_write stops the rest. */
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_response);
    /* "Expect: 100-continue" would cost a round trip on every large body. */
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (n) {
        r->hdrs = n;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    }
    HSC_DLIST_PUSH(h->reqs, r);
    h->nreqs++;
    if (start_attempt(r, err)) {
        unlink_req(r);
        free_req(r);
        return err->code;
    }
    return HSC_OK;
}

void hsc_http_set_scope(hsc_http *h, const void *owner, int64_t deadline_ms)
{
    h->owner = owner;
    h->deadline_ms = deadline_ms;
}

/*
 * Whether an attempt cut by its caller says the backend is slow: it was in
 * flight at least twice the lane's usual answer time. One sent a moment ago
 * by a search that spent its budget waiting for the slot says nothing, and
 * counting it would halve the limit of a backend answering everything promptly.
 */
static int cut_was_slow(const struct req *r)
{
    if (!r->in_multi || !r->in_lane)
        return 0;
    const struct lane *l = lane_of(r->h, r->backend);
    return !l->answer_us || hsc_mono_us() - r->attempt_us >= 2 * l->answer_us;
}

size_t hsc_http_cancel(hsc_http *h, const void *owner)
{
    size_t n = 0;
    if (!owner)
        return 0;
    for (struct req *r = h->reqs; r; r = r->next) {
        if (r->owner != owner || r->cancelled)
            continue;
        /* Out of the multi handle now, so its connection is closed and its slot freed; the
         * callback comes from the loop, never from inside this call. */
        r->cancelled = 1;
        r->parked = 0;
        /* Its caller stopped waiting: the backend was slower than the caller's budget. */
        lane_release(r, cut_was_slow(r) ? ENDED_SLOW : ENDED_OTHER);
        r->in_multi = 0;
        curl_multi_remove_handle(h->multi, r->easy);
        ev_timer_stop(h->loop, &r->retry_timer);
        ev_timer_set(&r->retry_timer, 0., 0.);
        ev_timer_start(h->loop, &r->retry_timer);
        n++;
    }
    return n;
}

size_t hsc_http_in_flight(const hsc_http *h)
{
    return h->nreqs;
}

void hsc_http_free(hsc_http *h)
{
    if (!h)
        return;
    while (h->reqs) {
        struct req *r = h->reqs;
        curl_multi_remove_handle(h->multi, r->easy);
        hsc_err err;
        hsc_err_set(&err, HSC_ECANCELED, "%s %s: cancelled by shutdown", r->method, r->url);
        complete(r, NULL, &err);
    }
    ev_timer_stop(h->loop, &h->timer);
    for (int i = 0; i < HTTP_LANES; i++)
        if (h->lanes[i].backend)
            ev_timer_stop(h->loop, &h->lanes[i].hedge);
    curl_multi_cleanup(h->multi); /* closes the sockets, calling sock_cb to free watchers */
    free(h);
}

int hsc_http_endpoint_init(struct hsc_http_endpoint *ep, hsc_http *h, const char *backend,
                           const char *url, const char *bearer, const struct hsc_http_policy *p,
                           hsc_err *err)
{
    memset(ep, 0, sizeof(*ep));
    ep->http = h;
    ep->backend = backend;
    ep->policy = *p;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    ep->url = hsc_strndup(url, n);
    if (bearer && *bearer) {
        hsc_buf a = {0};
        if (hsc_buf_printf(&a, "Authorization: Bearer %s", bearer))
            hsc_buf_free(&a);
        ep->auth = a.data;
    }
    if (!ep->url || (bearer && *bearer && !ep->auth)) {
        hsc_http_endpoint_destroy(ep);
        return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", backend);
    }
    return HSC_OK;
}

void hsc_http_endpoint_destroy(struct hsc_http_endpoint *ep)
{
    free(ep->url);
    free(ep->auth);
    ep->url = ep->auth = NULL;
}

int hsc_http_json(const struct hsc_http_endpoint *ep, const char *method, const char *path,
                  const char *body, const char *op, int idempotent, hsc_http_fn cb, void *arg,
                  hsc_err *err)
{
    hsc_buf url = {0};
    if (hsc_buf_printf(&url, "%s%s", ep->url, path)) {
        hsc_buf_free(&url);
        return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", ep->backend);
    }
    const char *headers[] = {"Content-Type: application/json", "Accept: application/json", ep->auth,
                             NULL};
    struct hsc_http_request q = {
        .method = method,
        .url = url.data,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .headers = headers,
        .timeout_ms = ep->policy.timeout_ms,
        .retries = ep->policy.retries,
        .backoff_initial_ms = ep->policy.backoff_initial_ms,
        .backoff_max_ms = ep->policy.backoff_max_ms,
        .backend = ep->backend,
        .op = op,
        .idempotent = idempotent,
    };
    int rc = hsc_http_request(ep->http, &q, cb, arg, err);
    hsc_buf_free(&url);
    return rc;
}
