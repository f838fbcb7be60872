/*
 * The search client. Correlation ids are "<tag>-<sequence>-<token>": the tag
 * (random per client) lets a client sharing a reply partition skip other
 * clients' replies without a lookup, the sequence indexes a small hash of
 * pending searches, and the token is SipHash-2-4 of the sequence keyed by a
 * 128-bit nonce the client draws once from getrandom(2). Anyone who reads
 * the request topic sees past ids, but cannot compute the token of an id the
 * client has not issued yet, so cannot plant a reply for a search before it
 * is sent; a reply whose token is wrong is counted as unmatched and dropped.
 * (The nonce is a key, not part of the id: an id carrying it in the clear
 * would tell every reader the next id.) A pending search leaves the table
 * when it ends, so a second reply for it finds nothing and is counted too.
 */
#include "hsc/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "hsc/codec.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define NBUCKETS 4096

/* One search in flight. */
struct pending {
    struct pending *next;
    hsc_client *c;
    uint64_t seq;
    ev_timer timer;
    hsc_client_reply_fn cb;
    void *arg;
};

struct hsc_client {
    struct ev_loop *loop;
    hsc_producer *prod;
    hsc_consumer *cons;
    char request_topic[256], reply_topic[256];
    int32_t partition;
    int timeout_ms;
    char auth_key[512]; /* query.auth_key: a request naming a user is signed with it */
    char tag[20];
    uint8_t nonce[16]; /* the SipHash key of the ids' tokens; never leaves the process */
    uint64_t next_seq;
    int inflight;
    struct pending *buckets[NBUCKETS];
    struct hsc_client_stats stats;
};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                                  \
        v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                                  \
    } while (0)

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of in[0..n) under a 16-byte key. */
static uint64_t siphash(const uint8_t key[16], const void *in, size_t n)
{
    const uint8_t *p = in;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m = le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t j = 0; i + j < n; j++)
        last |= (uint64_t)p[i + j] << (8 * j);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The token of sequence seq: SipHash of its 8 little-endian bytes under the client's nonce. */
static uint64_t token(const hsc_client *c, uint64_t seq)
{
    uint8_t m[8];
    for (int i = 0; i < 8; i++)
        m[i] = (uint8_t)(seq >> (8 * i));
    return siphash(c->nonce, m, sizeof(m));
}

/*
 * The sequence of a correlation id this client issued; -1 for another
 * client's id (another tag: not ours to count), -2 for an id with our tag
 * that we did not issue (a wrong token: forged or garbled).
 */
static int parse_corr(const hsc_client *c, const char *corr, uint64_t *seq)
{
    size_t tl = strlen(c->tag);
    if (strncmp(corr, c->tag, tl) || corr[tl] != '-')
        return -1;
    const char *p = corr + tl + 1;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(p, &end, 10);
    if (errno || end == p || *p < '0' || *p > '9' || *end != '-' || strlen(end + 1) != 16)
        return -2;
    uint64_t tok = 0;
    for (const char *t = end + 1; *t; t++) {
        int d = *t >= '0' && *t <= '9' ? *t - '0' : *t >= 'a' && *t <= 'f' ? *t - 'a' + 10 : -1;
        if (d < 0)
            return -2;
        tok = (tok << 4) | (uint64_t)d;
    }
    if (tok != token(c, s))
        return -2;
    *seq = s;
    return 0;
}

static struct pending *take(hsc_client *c, uint64_t seq)
{
    struct pending **pp = &c->buckets[seq % NBUCKETS];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->seq == seq) {
            struct pending *p = *pp;
            *pp = p->next;
            c->inflight--;
            ev_timer_stop(c->loop, &p->timer);
            return p;
        }
    return NULL;
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pending *p = w->data;
    hsc_client *c = p->c;
    take(c, p->seq);
    c->stats.timed_out++;
    hsc_err err;
    hsc_err_set(&err, HSC_ETIMEDOUT, "no reply within the deadline");
    p->cb(p->arg, NULL, &err);
    free(p);
    (void)loop;
    (void)revents;
}

static void on_reply_message(void *arg, rd_kafka_message_t *rkm)
{
    hsc_client *c = arg;
    if (rkm->err) {
        hsc_log_warn("reply consumer error", "error", rd_kafka_message_errstr(rkm), NULL);
        rd_kafka_message_destroy(rkm);
        return;
    }
    char corr[128];
    uint64_t seq;
    int own = hsc_kafka_header(rkm, HSC_HDR_CORRELATION_ID, corr, sizeof(corr)) < 0
                  ? -1 /* absent, over-long or holding a NUL: not an id we issued */
                  : parse_corr(c, corr, &seq);
    if (own == -1) {
        rd_kafka_message_destroy(rkm); /* another client's reply on a shared partition */
        return;
    }
    struct pending *p = own == 0 ? take(c, seq) : NULL;
    if (!p) {
        c->stats.unmatched++;
        rd_kafka_message_destroy(rkm);
        return;
    }
    hsc_search_reply reply;
    hsc_err err = {0};
    if (hsc_codec_decode_search_reply(rkm->payload, rkm->len, &reply, &err)) {
        c->stats.failed++;
        p->cb(p->arg, NULL, &err);
    } else {
        c->stats.answered++;
        if (!reply.ok && reply.error_code && !strcmp(reply.error_code, HSC_SEARCH_ERROR_OVERLOADED))
            c->stats.overloaded++;
        p->cb(p->arg, &reply, NULL);
        hsc_search_reply_clear(&reply);
    }
    free(p);
    rd_kafka_message_destroy(rkm);
}

static void on_sent(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    hsc_client *c = arg;
    if (code == HSC_OK)
        return;
    /* The request never reached Kafka: end it now rather than at its timeout. */
    char corr[128];
    uint64_t seq;
    struct pending *p = NULL;
    /* no message (never handed to librdkafka): the request ends at its timeout */
    if (rkm && hsc_kafka_header(rkm, HSC_HDR_CORRELATION_ID, corr, sizeof(corr)) >= 0 &&
        parse_corr(c, corr, &seq) == 0)
        p = take(c, seq);
    if (!p)
        return;
    c->stats.failed++;
    hsc_err err;
    hsc_err_set(&err, code, "request not sent: %s", errstr ? errstr : "unknown");
    p->cb(p->arg, NULL, &err);
    free(p);
}

/* Fills buf with n bytes from the kernel's CSPRNG; there is no weaker fallback. */
static int client_random(void *buf, size_t n, hsc_err *err)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hsc_err_set(err, HSC_EIO, "client: getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    return HSC_OK;
}

hsc_client *hsc_client_new(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err)
{
    hsc_client *c = calloc(1, sizeof(*c));
    if (!c) {
        hsc_err_set(err, HSC_ENOMEM, "client: out of memory");
        return NULL;
    }
    c->loop = loop;
    snprintf(c->request_topic, sizeof(c->request_topic), "%s",
             hsc_config_topic(cfg, "topics.search_requests"));
    snprintf(c->reply_topic, sizeof(c->reply_topic), "%s",
             hsc_config_topic(cfg, "topics.search_replies"));
    c->timeout_ms = (int)hsc_config_int(cfg, "client.timeout_ms");
    snprintf(c->auth_key, sizeof(c->auth_key), "%s", hsc_config_str(cfg, "query.auth_key"));
    uint64_t r;
    if (client_random(&r, sizeof(r), err) || client_random(c->nonce, sizeof(c->nonce), err))
        goto fail;
    snprintf(c->tag, sizeof(c->tag), "%012llx", (unsigned long long)(r & 0xffffffffffffULL));
    c->next_seq = 1;
    c->prod = hsc_producer_new_interactive(loop, cfg, err);
    if (!c->prod)
        goto fail;
    int32_t part = (int32_t)hsc_config_int(cfg, "client.reply_partition");
    if (part < 0) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *t =
            rd_kafka_topic_new(hsc_producer_handle(c->prod), c->reply_topic, NULL);
        rd_kafka_resp_err_t e = rd_kafka_metadata(hsc_producer_handle(c->prod), 0, t, &md, 10000);
        int nparts =
            (!e && md->topic_cnt == 1 && !md->topics[0].err) ? md->topics[0].partition_cnt : 0;
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
        if (nparts <= 0) {
            hsc_err_set(err, HSC_ECONFIG,
                        "topics.search_replies: topic %s is missing or unreachable (%s); "
                        "create it with `hsc topics create`",
                        c->reply_topic, e ? rd_kafka_err2str(e) : "no partitions");
            goto fail;
        }
        part = (int32_t)((r >> 48) % (uint64_t)nparts);
    }
    c->partition = part;
    {
        /* Learn the request topic's partitions now, not on the first search. */
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *t =
            rd_kafka_topic_new(hsc_producer_handle(c->prod), c->request_topic, NULL);
        if (rd_kafka_metadata(hsc_producer_handle(c->prod), 0, t, &md, 10000) == 0)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
    }
    struct hsc_consumer_handlers h = {.on_message = on_reply_message};
    c->cons = hsc_consumer_new_partition(loop, cfg, c->reply_topic, part, &h, c, err);
    if (!c->cons)
        goto fail;
    return c;
fail:
    hsc_client_free(c);
    return NULL;
}

int hsc_client_search(hsc_client *c, const hsc_search_request *req, int timeout_ms,
                      hsc_client_reply_fn cb, void *arg, char *corr_out, hsc_err *err)
{
    char *buf;
    size_t len;
    if (hsc_codec_encode_search_request(req, &buf, &len, err))
        return err->code;
    /* hsc-query answers nothing it cannot decode (it only DLQs it), so check
     * here, with the same decoder, and tell the caller now. */
    hsc_search_request check;
    if (hsc_codec_decode_search_request(buf, len, &check, err)) {
        free(buf);
        return err->code;
    }
    hsc_search_request_clear(&check);
    if (timeout_ms <= 0)
        timeout_ms = c->timeout_ms;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        free(buf);
        return hsc_err_set(err, HSC_ENOMEM, "client: out of memory");
    }
    p->c = c;
    p->seq = c->next_seq++;
    p->cb = cb;
    p->arg = arg;
    char corr[64], part[16], deadline[24];
    snprintf(corr, sizeof(corr), "%s-%llu-%016llx", c->tag, (unsigned long long)p->seq,
             (unsigned long long)token(c, p->seq));
    snprintf(part, sizeof(part), "%d", c->partition);
    snprintf(deadline, sizeof(deadline), "%lld", (long long)(hsc_now_ms() + timeout_ms));
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, HSC_HDR_CORRELATION_ID, -1, corr, -1);
    rd_kafka_header_add(hdrs, HSC_HDR_REPLY_TOPIC, -1, c->reply_topic, -1);
    rd_kafka_header_add(hdrs, HSC_HDR_REPLY_PARTITION, -1, part, -1);
    rd_kafka_header_add(hdrs, HSC_HDR_DEADLINE_MS, -1, deadline, -1);
    if (c->auth_key[0] && req->user_id) {
        char sig[HSC_AUTH_HEX + 1];
        if (hsc_auth_sign(c->auth_key, req->user_id, deadline, sig, err)) {
            rd_kafka_headers_destroy(hdrs);
            free(buf);
            free(p);
            return err->code;
        }
        rd_kafka_header_add(hdrs, HSC_HDR_AUTH, -1, sig, -1);
    }
    /* Register before sending: the reply can never beat the table entry. */
    p->next = c->buckets[p->seq % NBUCKETS];
    c->buckets[p->seq % NBUCKETS] = p;
    c->inflight++;
    /* the caller may not have run the loop for a while: time the deadline from now */
    ev_now_update(c->loop);
    ev_timer_init(&p->timer, on_timeout, timeout_ms / 1000.0, 0.);
    p->timer.data = p;
    ev_timer_start(c->loop, &p->timer);
    /* keyed by correlation id: requests spread over the request partitions */
    int rc = hsc_producer_send(c->prod, c->request_topic, RD_KAFKA_PARTITION_UA, corr, strlen(corr),
                               buf, len, hdrs, on_sent, c, err);
    free(buf);
    if (rc) {
        rd_kafka_headers_destroy(hdrs);
        free(take(c, p->seq));
        return rc;
    }
    c->stats.sent++;
    if (corr_out)
        snprintf(corr_out, 64, "%s", corr);
    return HSC_OK;
}

int hsc_client_inflight(const hsc_client *c)
{
    return c->inflight;
}

int32_t hsc_client_reply_partition(const hsc_client *c)
{
    return c->partition;
}

void hsc_client_get_stats(const hsc_client *c, struct hsc_client_stats *out)
{
    *out = c->stats;
}

void hsc_client_free(hsc_client *c)
{
    if (!c)
        return;
    hsc_err err;
    hsc_err_set(&err, HSC_ECANCELED, "client closed");
    for (int b = 0; b < NBUCKETS; b++)
        while (c->buckets[b]) {
            struct pending *p = take(c, c->buckets[b]->seq);
            p->cb(p->arg, NULL, &err);
            free(p);
        }
    hsc_consumer_free(c->cons);
    hsc_producer_free(c->prod);
    free(c);
}
