/*
 * hsc-query's request loop: consumes search requests, runs each as a job on
 * the query engine, replies, and stores offsets as answers complete.
 *
 * Requests are answered concurrently (up to query.max_inflight), so replies
 * finish out of order; a partition's offset is stored only up to the first
 * request not yet answered (its reply acknowledged by Kafka), which means a
 * member that dies loses nothing: its unanswered requests are read again by
 * the member that takes its partitions, and answered if their deadline has
 * not passed.
 *
 * Each correlation id is answered at most once, and never after its
 * deadline. A reply is produced only while its deadline leaves room, and a
 * reply still queued in the producer at the deadline is withdrawn
 * (hsc_producer_send_by). When partitions are revoked, what is answered is
 * committed synchronously before they go: the first unanswered offset, with
 * the offsets above it already answered in the commit's metadata
 * ("hsc1:" and their distances from it), which the next owner reads on
 * assignment and skips; the revoked partitions' searches still running are
 * silenced (no reply), so the next owner answers them instead.
 *
 * One job in about 700 lines, over our ~600 guide: the consumer callbacks,
 * the job table and the reply path share one worker struct and the
 * answer-once rules above, and read best side by side.
 */
#include <ev.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hsc/codec.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "query.h"
#include "serve.h"
#include "util.h"
#include "worker.h"

#ifndef QUERY_PREFETCH_MESSAGES
#define QUERY_PREFETCH_MESSAGES "30000"
#endif
#ifndef QUERY_PREFETCH_KBYTES
#define QUERY_PREFETCH_KBYTES "16384"
#endif

/* The worker: engine, Kafka handles, offset tracking and counters. */
struct worker {
    struct ev_loop *loop;
    struct query_engine eng;
    hsc_consumer *cons;
    hsc_producer *prod;
    char topic[256], dlq[256];
    int max_inflight, default_deadline_ms, max_deadline_ms, shutdown_timeout_ms, reply_margin_ms;
    size_t max_request_bytes;
    hsc_strlist reply_topics; /* where replies may go; "x*" allows every topic starting "x" */
    char auth_key[512];       /* query.auth_key: requests naming a user must be signed with it */
    struct query_offsets offs;
    int inflight, stopping;
    int peak_inflight; /* since memory was last given back (trim_timer) */
    double stop_started;
    hsc_metrics *metrics;
    hsc_httpd *httpd;
    ev_timer stop_timer, trim_timer;
    unsigned long long expired, dlq_count, reply_failures, replies_refused;
    unsigned long long replies_too_late, replies_withheld, skipped_answered, auth_refused;
};

/* One request being answered. */
struct job {
    struct worker *w;
    int32_t partition;
    int64_t offset;
    unsigned gen;
    char reply_topic[256];
    int32_t reply_partition;
    int64_t deadline_ms;
    char correlation_id[129]; /* for the log lines about this request */
};

/* True if j's partition was revoked since j started: its answer is the next owner's. */
static int revoked(struct worker *w, const struct job *j)
{
    struct ptrack *t = query_offsets_track(&w->offs, j->partition);
    return !t || t->gen != j->gen;
}

/* Marks off answered and stores the offset after the longest answered prefix. */
static void mark_done(struct worker *w, int32_t partition, int64_t off, unsigned gen)
{
    int64_t upto = query_offsets_mark_done(&w->offs, partition, off, gen);
    if (upto < 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->topic, partition)->offset = upto;
    hsc_err err = {0};
    if (hsc_consumer_store(w->cons, l, &err))
        hsc_log_warn("cannot store offset", "error", err.msg, NULL);
    rd_kafka_topic_partition_list_destroy(l);
}

static void job_end(struct job *j)
{
    struct worker *w = j->w;
    mark_done(w, j->partition, j->offset, j->gen);
    w->inflight--;
    free(j);
    if (!w->stopping)
        hsc_consumer_poll(w->cons); /* room for one more */
}

static void on_reply_sent(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct job *j = arg;
    (void)rkm;
    if (code == HSC_ETIMEDOUT) {
        /* still queued at its deadline (e.g. the broker away): withdrawn, not sent late */
        j->w->replies_too_late++;
        hsc_metrics_inc(j->w->metrics, "hsc_query_replies_too_late_total", "", 1);
        hsc_log_debug("reply withdrawn at its deadline", "correlation_id", j->correlation_id, NULL);
    } else if (code) {
        /* A reply that cannot be delivered is not retried: it could arrive twice or late. */
        j->w->reply_failures++;
        hsc_log_warn("reply not delivered", "correlation_id", j->correlation_id, "topic",
                     j->reply_topic, "error", errstr ? errstr : "unknown", NULL);
    }
    job_end(j);
}

static void send_reply(struct job *j, const hsc_search_reply *r)
{
    struct worker *w = j->w;
    char *buf;
    size_t len;
    hsc_err err = {0};
    if (revoked(w, j)) {
        /* The partition went to another member, which reads this request again from the
         * commit and answers it: a reply from here too would be a second one. */
        w->replies_withheld++;
        hsc_metrics_inc(w->metrics, "hsc_query_replies_withheld_total", "", 1);
        job_end(j);
        return;
    }
    /* A reply produced this close to the deadline would reach the requester after it. */
    if (hsc_now_ms() + w->reply_margin_ms >= j->deadline_ms) {
        w->replies_too_late++;
        hsc_metrics_inc(w->metrics, "hsc_query_replies_too_late_total", "", 1);
        hsc_log_debug("reply dropped: too close to its deadline", "correlation_id",
                      j->correlation_id, NULL);
        job_end(j);
        return;
    }
    if (hsc_codec_encode_search_reply(r, &buf, &len, &err)) {
        hsc_log_error("cannot encode reply", "correlation_id", r->correlation_id, "error", err.msg,
                      NULL);
        job_end(j);
        return;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, HSC_HDR_CORRELATION_ID, -1, r->correlation_id, -1);
    if (hsc_producer_send_by(w->prod, j->reply_topic, j->reply_partition, r->correlation_id,
                             strlen(r->correlation_id), buf, len, h, j->deadline_ms, on_reply_sent,
                             j, &err)) {
        rd_kafka_headers_destroy(h);
        w->reply_failures++;
        hsc_log_warn("reply not sent", "correlation_id", r->correlation_id, "topic", j->reply_topic,
                     "error", err.msg, NULL);
        job_end(j);
    } else {
        query_offsets_mark_sent(&w->offs, j->partition, j->offset, j->gen);
    }
    free(buf);
}

static void on_answer(void *arg, hsc_search_reply *r)
{
    struct job *j = arg;
    char labels[96];
    snprintf(labels, sizeof(labels), "strategy=\"%s\",status=\"%s\"",
             hsc_strategy_name(r->strategy), r->ok ? "ok" : r->error_code);
    hsc_metrics_inc(j->w->metrics, "hsc_query_requests_total", labels, 1);
    /* a refusal's microseconds would only hide the searches' own times */
    int refused = !r->ok && r->error_code && !strcmp(r->error_code, HSC_SEARCH_ERROR_OVERLOADED);
    snprintf(labels, sizeof(labels), "strategy=\"%s\"", hsc_strategy_name(r->strategy));
    if (!refused)
        hsc_metrics_observe(j->w->metrics, "hsc_query_request_duration_seconds", labels,
                            r->timings_us.total / 1e6);
    for (size_t i = 0; i < r->degraded.n; i++) {
        snprintf(labels, sizeof(labels), "backend=\"%s\"", r->degraded.v[i]);
        hsc_metrics_inc(j->w->metrics, "hsc_query_degraded_total", labels, 1);
    }
    char total[24];
    snprintf(total, sizeof(total), "%lld", (long long)r->timings_us.total);
    hsc_log_debug("answered", "correlation_id", r->correlation_id, "status",
                  r->ok ? "ok" : r->error_code, "strategy", hsc_strategy_name(r->strategy),
                  "total_us", total, NULL);
    send_reply(j, r);
}

static void on_dlq_sent(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct job *j = arg;
    (void)rkm;
    if (code)
        hsc_log_error("DLQ write failed", "error", errstr ? errstr : "unknown", NULL);
    job_end(j);
}

/*
 * Sends a request that cannot be answered to the DLQ. It gets no reply: its
 * headers or bytes are not to be trusted with choosing a write, and the
 * DLQ's headers say why.
 */
static void reject(struct job *j, const rd_kafka_message_t *rkm, const char *corr,
                   const hsc_err *why)
{
    struct worker *w = j->w;
    hsc_log_warn("bad search request", "correlation_id", corr ? corr : "", "error", why->msg, NULL);
    w->dlq_count++;
    char tl[300];
    snprintf(tl, sizeof(tl), "topic=\"%s\"", w->topic);
    hsc_metrics_inc(w->metrics, "hsc_dlq_messages_total", tl, 1);
    hsc_err e = {0};
    if (hsc_dlq_send(w->prod, w->dlq, "query", rkm, why, on_dlq_sent, j, &e)) {
        hsc_log_error("DLQ write failed", "error", e.msg, NULL);
        job_end(j);
    } else {
        query_offsets_mark_sent(&w->offs, j->partition, j->offset, j->gen);
    }
}

/* Adds each comma-separated name of csv (spaces around it trimmed) to out. */
static void split_topics(const char *csv, hsc_strlist *out)
{
    while (*csv) {
        while (*csv == ' ' || *csv == ',')
            csv++;
        size_t n = strcspn(csv, ",");
        size_t m = n;
        while (m && csv[m - 1] == ' ')
            m--;
        if (m)
            hsc_strlist_push(out, csv, m);
        csv += n;
    }
}

/* True if replies may be written to topic (query.reply_topics). */
static int reply_allowed(const struct worker *w, const char *topic)
{
    for (size_t i = 0; i < w->reply_topics.n; i++) {
        const char *a = w->reply_topics.v[i];
        size_t n = strlen(a);
        if (n && a[n - 1] == '*' ? !strncmp(topic, a, n - 1) : !strcmp(topic, a))
            return 1;
    }
    return 0;
}

/* Reads header name into buf: 1 if present, 0 if absent, -1 (err set) if it cannot be used. */
static int header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap,
                  hsc_err *err)
{
    hsc_err e = {0};
    int n = hsc_kafka_header_get(rkm, name, buf, cap, &e);
    if (n == -1)
        return 0;
    if (n < 0) {
        if (e.code)
            *err = e;
        else
            hsc_err_set(err, HSC_EINVAL, "%s: header cannot be read", name);
        return -1;
    }
    return n > 0;
}

/* Validates the routing headers into j and the deadline; err names the header at fault. */
static int read_routing(struct worker *w, const rd_kafka_message_t *rkm, struct job *j,
                        int64_t *deadline, hsc_err *err)
{
    char part[24], dl[24];
    long long v;
    int rc = header(rkm, HSC_HDR_CORRELATION_ID, j->correlation_id, sizeof(j->correlation_id), err);
    if (rc < 0)
        return err->code;
    if (rc == 0)
        return hsc_err_set(err, HSC_EINVAL, "%s: header missing or empty", HSC_HDR_CORRELATION_ID);
    rc = header(rkm, HSC_HDR_REPLY_TOPIC, j->reply_topic, sizeof(j->reply_topic), err);
    if (rc < 0)
        return err->code;
    if (rc == 0)
        return hsc_err_set(err, HSC_EINVAL, "%s: header missing or empty", HSC_HDR_REPLY_TOPIC);
    if (!reply_allowed(w, j->reply_topic)) {
        w->replies_refused++;
        hsc_metrics_inc(w->metrics, "hsc_query_replies_refused_total", "", 1);
        return hsc_err_set(err, HSC_EINVAL,
                           "%s: '%.100s' is not a reply topic this worker writes to "
                           "(query.reply_topics)",
                           HSC_HDR_REPLY_TOPIC, j->reply_topic);
    }
    rc = header(rkm, HSC_HDR_REPLY_PARTITION, part, sizeof(part), err);
    if (rc < 0)
        return err->code;
    if (rc == 0 || hsc_parse_ll(part, &v) || v < 0 || v >= INT32_MAX)
        return hsc_err_set(err, HSC_EINVAL, "%s: header missing or not a partition number",
                           HSC_HDR_REPLY_PARTITION);
    j->reply_partition = (int32_t)v;
    int64_t now = hsc_now_ms();
    *deadline = now + w->default_deadline_ms;
    rc = header(rkm, HSC_HDR_DEADLINE_MS, dl, sizeof(dl), err);
    if (rc < 0)
        return err->code;
    if (rc > 0) {
        if (hsc_parse_ll(dl, &v) || v < 0)
            return hsc_err_set(err, HSC_EINVAL, "%s: '%s' is not epoch milliseconds",
                               HSC_HDR_DEADLINE_MS, dl);
        *deadline = v;
    }
    /* A far deadline would hold an in-flight slot for as long as the requester likes. */
    if (*deadline > now + w->max_deadline_ms)
        *deadline = now + w->max_deadline_ms;
    return HSC_OK;
}

/* 0 if rkm's hsc-auth header signs (user, its deadline header) under query.auth_key. */
static int check_signature(struct worker *w, const rd_kafka_message_t *rkm, const char *user,
                           hsc_err *err)
{
    char sig[HSC_AUTH_HEX + 2], dl[24];
    int n = header(rkm, HSC_HDR_AUTH, sig, sizeof(sig), err);
    if (n < 0)
        return err->code;
    if (n == 0)
        return hsc_err_set(err, HSC_EINVAL,
                           "%s: missing; query.auth_key is set and the request "
                           "names a user",
                           HSC_HDR_AUTH);
    if (header(rkm, HSC_HDR_DEADLINE_MS, dl, sizeof(dl), err) <= 0)
        return hsc_err_set(err, HSC_EINVAL, "%s: a signed request needs %s", HSC_HDR_AUTH,
                           HSC_HDR_DEADLINE_MS);
    return hsc_auth_verify(w->auth_key, user, dl, sig, strlen(sig), err);
}

static void on_message(void *arg, rd_kafka_message_t *rkm)
{
    struct worker *w = arg;
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            hsc_log_warn("consumer error", "error", rd_kafka_message_errstr(rkm), NULL);
        rd_kafka_message_destroy(rkm);
        return;
    }
    char tl[300];
    snprintf(tl, sizeof(tl), "topic=\"%s\"", w->topic);
    hsc_metrics_inc(w->metrics, "hsc_messages_consumed_total", tl, 1);
    struct ptrack *t = query_offsets_track(&w->offs, rkm->partition);
    if (t && query_offsets_skipped(t, rkm->offset)) {
        /* Answered by this partition's previous owner before it gave the partition up. */
        w->skipped_answered++;
        hsc_metrics_inc(w->metrics, "hsc_query_skipped_answered_total", "", 1);
        if (!query_offsets_push(t, rkm->offset))
            mark_done(w, rkm->partition, rkm->offset, t->gen);
        rd_kafka_message_destroy(rkm);
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!t || !j || query_offsets_push(t, rkm->offset)) {
        /* Not stored, so it is read again after a restart; nothing is lost. */
        hsc_log_error("out of memory; request left for redelivery", NULL);
        free(j);
        rd_kafka_message_destroy(rkm);
        return;
    }
    j->w = w;
    j->partition = rkm->partition;
    j->offset = rkm->offset;
    j->gen = t->gen;
    j->reply_partition = -1;
    w->inflight++;
    if (w->inflight > w->peak_inflight)
        w->peak_inflight = w->inflight;
    /* its wait in Kafka, which a refusal as overloaded names (CreateTime: the client's clock,
     * the same host's in the usual setup; a clock ahead counts as no wait) */
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype), queued = -1;
    if (ts >= 0 && tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        queued = hsc_now_ms() > ts ? hsc_now_ms() - ts : 0;
    hsc_err err = {0};
    int64_t dl = 0;
    j->deadline_ms = INT64_MAX;
    if (rkm->len > w->max_request_bytes) {
        hsc_err_set(&err, HSC_EINVAL, "message: %zu bytes exceeds query.max_request_bytes (%zu)",
                    rkm->len, w->max_request_bytes);
        reject(j, rkm, NULL, &err);
        rd_kafka_message_destroy(rkm);
        return;
    }
    if (read_routing(w, rkm, j, &dl, &err)) {
        reject(j, rkm, j->correlation_id[0] ? j->correlation_id : NULL, &err);
        rd_kafka_message_destroy(rkm);
        return;
    }
    j->deadline_ms = dl;
    if (dl <= hsc_now_ms() + w->eng.reserve_ms) {
        /* The caller has given up: an answer would only be noise. Dropped here,
         * before any decoding, so a backlog drains at the rate Kafka delivers. */
        w->expired++;
        hsc_metrics_inc(w->metrics, "hsc_query_expired_total", "", 1);
        hsc_log_debug("expired before start", "correlation_id", j->correlation_id, NULL);
        rd_kafka_message_destroy(rkm);
        job_end(j);
        return;
    }
    hsc_search_request req;
    if (hsc_codec_decode_search_request(rkm->payload, rkm->len, &req, &err)) {
        reject(j, rkm, j->correlation_id, &err);
        rd_kafka_message_destroy(rkm);
        return;
    }
    if (w->auth_key[0] && req.user_id && check_signature(w, rkm, req.user_id, &err)) {
        /* Only a holder of the key may ask as a user (a policy, a history). */
        w->auth_refused++;
        hsc_metrics_inc(w->metrics, "hsc_query_auth_refused_total", "", 1);
        reject(j, rkm, j->correlation_id, &err);
        hsc_search_request_clear(&req);
        rd_kafka_message_destroy(rkm);
        return;
    }
    rd_kafka_message_destroy(rkm);
    if (query_engine_search(&w->eng, &req, j->correlation_id, dl, queued, on_answer, j, &err)) {
        /* Not stored either: read again after a restart, as with any other loss of memory. */
        hsc_log_error("cannot start search", "correlation_id", j->correlation_id, "error", err.msg,
                      NULL);
        hsc_search_request_clear(&req);
        job_end(j);
    }
}

static int is_named(void *arg, const char *name, const char *value, hsc_err *err)
{
    (void)value, (void)err;
    return strcmp(name, (const char *)arg) ? 0 : 1;
}

/* Sets rdkafka.consumer.NAME to value unless [rdkafka] or [rdkafka.consumer] sets NAME. */
static void consumer_default(hsc_config *cfg, const char *name, const char *value)
{
    hsc_err err = {0};
    if (hsc_config_each_passthrough(cfg, "rdkafka", is_named, (void *)name, &err) ||
        hsc_config_each_passthrough(cfg, "rdkafka.consumer", is_named, (void *)name, &err))
        return;
    char key[128];
    snprintf(key, sizeof(key), "rdkafka.consumer.%s", name);
    if (hsc_config_set(cfg, key, value, &err))
        hsc_log_warn("cannot set a consumer default", "key", key, "error", err.msg, NULL);
}

static int is_ready(void *arg, char *why, size_t cap)
{
    struct worker *w = arg;
    double now = ev_now(w->loop);
    if (w->stopping)
        return snprintf(why, cap, "stopping"), 0;
    if (hsc_consumer_assigned_count(w->cons) <= 0)
        return snprintf(why, cap, "no partitions of %s assigned", w->topic), 0;
    if (!hsc_milvus_ready(w->eng.milvus) || now < w->eng.lat_vector.down_until)
        return snprintf(why, cap, "milvus unreachable"), 0;
    if (now < w->eng.lat_graph.down_until)
        return snprintf(why, cap, "neo4j unreachable"), 0;
    if (now < w->eng.lat_policy.down_until)
        return snprintf(why, cap, "postgresql unreachable"), 0;
    return 1;
}

static void refresh(void *arg, hsc_metrics *m)
{
    struct worker *w = arg;
    hsc_metrics_set(m, "hsc_query_inflight", "", w->inflight);
    hsc_metrics_set(m, "hsc_query_admitted", "", w->eng.admit.running);
    hsc_metrics_set(m, "hsc_query_admit_held", "", w->eng.admit.held);
    hsc_metrics_set(m, "hsc_query_admit_limit", "",
                    w->eng.admit.set.on ? w->eng.admit.limit : w->max_inflight);
    hsc_metrics_count(m, "hsc_query_cache_hits_total", "", (double)w->eng.stats.cache_hits);
    hsc_metrics_count(m, "hsc_query_cache_misses_total", "", (double)w->eng.stats.cache_misses);
    hsc_metrics_set(m, "hsc_consumer_assigned_partitions", "",
                    hsc_consumer_assigned_count(w->cons));
    hsc_metrics_set(m, "hsc_consumer_paused", "", hsc_consumer_paused(w->cons));
    /* pausing stops every assigned partition at once */
    hsc_metrics_set(m, "hsc_consumer_paused_partitions", "",
                    hsc_consumer_paused(w->cons) ? hsc_consumer_assigned_count(w->cons) : 0);
    hsc_consumer_export_lag(w->cons, m, "");
}

static int can_accept(void *arg)
{
    struct worker *w = arg;
    return !w->stopping && w->inflight < w->max_inflight;
}

static void on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    struct worker *w = arg;
    int lost = rd_kafka_assignment_lost(hsc_consumer_handle(w->cons));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts->cnt);
    char(*meta)[SKIP_META_MAX + 64] = calloc((size_t)parts->cnt + 1, sizeof(*meta));
    for (int i = 0; i < parts->cnt && meta; i++) {
        struct ptrack *t = query_offsets_track(&w->offs, parts->elems[i].partition);
        if (!t)
            continue;
        rd_kafka_topic_partition_t e = {0};
        if (!lost && query_offsets_revoke_point(t, &e, meta[i], sizeof(meta[i]))) {
            rd_kafka_topic_partition_t *x =
                rd_kafka_topic_partition_list_add(l, w->topic, parts->elems[i].partition);
            x->offset = e.offset;
            if (e.metadata) {
                x->metadata = malloc(e.metadata_size);
                if (x->metadata) {
                    memcpy(x->metadata, e.metadata, e.metadata_size);
                    x->metadata_size = e.metadata_size;
                }
            }
        }
        /* searches of these partitions still running are silenced from here on */
        query_offsets_reset(t);
    }
    free(meta);
    if (!lost) {
        /* Stored offsets of partitions holding nothing in flight, then the revoke points:
         * the next owner must start after what was answered here, not at the last
         * auto-commit. */
        hsc_err err = {0};
        if (hsc_consumer_commit_sync(w->cons, NULL, &err) ||
            (l->cnt && hsc_consumer_commit_sync(w->cons, l, &err)))
            hsc_log_warn("revoke: commit failed; the next owner may answer some requests again",
                         "error", err.msg, NULL);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    struct worker *w = arg;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(parts);
    hsc_err err = {0};
    if (hsc_consumer_committed(w->cons, l, 2000, &err)) {
        hsc_log_warn("assign: cannot read the committed metadata; requests the previous owner "
                     "answered may be answered again",
                     "error", err.msg, NULL);
    } else {
        for (int i = 0; i < l->cnt; i++) {
            struct ptrack *t = query_offsets_track(&w->offs, l->elems[i].partition);
            if (t && !l->elems[i].err && l->elems[i].offset >= 0 && l->elems[i].metadata)
                query_offsets_load_skip(t, l->elems[i].offset, l->elems[i].metadata,
                                        l->elems[i].metadata_size);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * After a burst (an overload refused at the door still peaks at the in-flight
 * limit), freed memory is given back to the system once the load has fallen:
 * glibc keeps freed heap pages of a fragmented heap otherwise.
 */
static void on_trim_timer(struct ev_loop *loop, ev_timer *w_, int revents)
{
    struct worker *w = w_->data;
    (void)loop, (void)revents;
    if (w->peak_inflight < 64 || w->inflight > w->peak_inflight / 8)
        return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    w->peak_inflight = w->inflight;
}

static void on_stop_timer(struct ev_loop *loop, ev_timer *w_, int revents)
{
    struct worker *w = w_->data;
    (void)revents;
    int waited_ms = (int)((ev_now(loop) - w->stop_started) * 1000);
    if (w->inflight > 0 && waited_ms < w->shutdown_timeout_ms)
        return;
    if (w->inflight > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", w->inflight);
        hsc_log_warn("shutdown timeout; unanswered requests are left for redelivery", "inflight", n,
                     NULL);
    }
    ev_timer_stop(loop, w_);
    ev_timer_stop(loop, &w->trim_timer);
    hsc_producer_flush(w->prod, 5000);
    hsc_consumer_close(w->cons);
    ev_break(loop, EVBREAK_ALL);
}

static void on_stop(void *arg)
{
    struct worker *w = arg;
    if (w->stopping)
        return;
    hsc_log_info("stopping: answering what is in flight", NULL);
    w->stopping = 1;
    w->stop_started = ev_now(w->loop);
    hsc_consumer_set_paused(w->cons, 1);
    ev_timer_init(&w->stop_timer, on_stop_timer, 0.02, 0.02);
    w->stop_timer.data = w;
    ev_timer_start(w->loop, &w->stop_timer);
}

int query_serve(hsc_config *cfg)
{
    struct ev_loop *loop = ev_default_loop(0);
    hsc_err err = {0};
    static struct worker w;
    w.loop = loop;
    snprintf(w.topic, sizeof(w.topic), "%s", hsc_config_topic(cfg, "topics.search_requests"));
    snprintf(w.dlq, sizeof(w.dlq), "%s", hsc_config_topic(cfg, "topics.dlq"));
    w.max_inflight = (int)hsc_config_int(cfg, "query.max_inflight");
    w.default_deadline_ms = (int)hsc_config_int(cfg, "query.default_deadline_ms");
    w.max_deadline_ms = (int)hsc_config_int(cfg, "query.max_deadline_ms");
    w.max_request_bytes = (size_t)hsc_config_int(cfg, "query.max_request_bytes");
    const char *allowed = hsc_config_str(cfg, "query.reply_topics");
    if (allowed[0])
        split_topics(allowed, &w.reply_topics);
    else
        hsc_strlist_push(&w.reply_topics, hsc_config_topic(cfg, "topics.search_replies"),
                         strlen(hsc_config_topic(cfg, "topics.search_replies")));
    w.shutdown_timeout_ms = (int)hsc_config_int(cfg, "shutdown.timeout_ms");
    w.reply_margin_ms = (int)hsc_config_int(cfg, "query.reply_margin_ms");
    snprintf(w.auth_key, sizeof(w.auth_key), "%s", hsc_config_str(cfg, "query.auth_key"));
    if (query_engine_init(&w.eng, loop, cfg, &err)) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        return 2;
    }
    /*
     * A small prefetch: requests are small and each is dropped or started at once, so
     * librdkafka's default (100,000 messages queued) would only hold memory on a backlog
     * (docs/performance.md#query-backlog). librdkafka 2.0 refetches a partition at its
     * threshold only when woken (kafka_consumer.c's refill does that once the queue is
     * drained), so the threshold also sets how much one fetch brings.
     */
    consumer_default(cfg, "queued.min.messages", QUERY_PREFETCH_MESSAGES);
    consumer_default(cfg, "queued.max.messages.kbytes", QUERY_PREFETCH_KBYTES);
    /* Small fetches, as every consumer's 256 kB a partition (kafka_consumer.c): a fetch
     * response stays allocated until its last message is destroyed, and librdkafka would
     * size the whole fetch from the byte threshold above. */
    consumer_default(cfg, "fetch.max.bytes", "1048576");
    /* Requests are small and each one waits for its answer: send every fetch at once. */
    consumer_default(cfg, "socket.nagle.disable", "true");
    const char *topics[] = {w.topic};
    struct hsc_consumer_handlers h = {.on_message = on_message,
                                      .on_assign = on_assign,
                                      .on_revoke = on_revoke,
                                      .can_accept = can_accept};
    w.prod = hsc_producer_new_replies(loop, cfg, &err);
    if (w.prod)
        w.cons = hsc_consumer_new(loop, cfg, hsc_config_str(cfg, "query.group"), topics, 1, &h, &w,
                                  &err);
    if (!w.prod || !w.cons) {
        hsc_log_error("cannot start", "error", err.msg, NULL);
        hsc_producer_free(w.prod);
        query_engine_destroy(&w.eng);
        return 2;
    }
    w.metrics = hsc_metrics_new();
    w.eng.metrics = w.metrics;
    hsc_conn_set_metrics(w.metrics); /* connection losses and recoveries (conn.h) */
    /* without the endpoint the worker still answers: a warning, not an error */
    hsc_worker_metrics(loop, cfg, w.metrics, is_ready, refresh, &w, 0, &w.httpd, &err);
    hsc_log_info("query starting", "input", w.topic, "group", hsc_config_str(cfg, "query.group"),
                 "milvus", hsc_config_str(cfg, "milvus.url"), NULL);
    ev_timer_init(&w.trim_timer, on_trim_timer, 5., 5.);
    w.trim_timer.data = &w;
    ev_timer_start(loop, &w.trim_timer);
    /* a second signal changes nothing: the stop timer already bounds the wait */
    struct hsc_worker_stop stop = {.stop = on_stop, .arg = &w};
    hsc_worker_run(loop, &stop);
    const struct query_stats *s = &w.eng.stats;
    const struct hsc_log_count counts[] = {
        {"requests", s->requests},     {"ok", s->ok},
        {"errors", s->errors},         {"overloaded", s->overloaded},
        {"cache_hits", s->cache_hits}, {"degraded", s->degraded},
        {"expired", w.expired},        {"dlq", w.dlq_count}};
    hsc_log_counts("query stopped", NULL, NULL, counts, sizeof(counts) / sizeof(counts[0]));
    hsc_httpd_free(w.httpd);
    hsc_consumer_free(w.cons);
    hsc_producer_free(w.prod);
    query_engine_destroy(&w.eng);
    hsc_metrics_free(w.metrics);
    query_offsets_free(&w.offs);
    hsc_strlist_clear(&w.reply_topics);
    ev_loop_destroy(loop);
    return 0;
}
