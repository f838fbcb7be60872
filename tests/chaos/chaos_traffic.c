/*
 * The soak's traffic: content and learning events through an idempotent
 * producer (a delivery that fails is sent again, so everything the soak
 * remembers reaches Kafka), and searches through a raw producer, with the
 * replies read by a raw consumer of every reply partition. Reading replies
 * here, not through hsc_client, is the point: the client drops late and
 * duplicate replies, and those are what the soak must see.
 *
 * A title's event is a pure function of (id, version, op): a replay is byte
 * for byte the same event, and the version is also written into the year and
 * maturity fields, which Milvus stores, so a stale vector shows up as a wrong
 * (id, version) pair rather than hiding behind a right count.
 */
#include "chaos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsc/codec.h"
#include "hsc/search.h"

enum { TYPE_CONTENT = 1, TYPE_LEARNING = 2, TYPE_SEARCH = 3 };

static const char *const GENRES[] = {"Drama",   "Comedy",  "Thriller", "Science Fiction",
                                     "Romance", "Western", "Horror",   "Documentary"};
static const char *const THEMES[] = {"space", "family", "revenge", "friendship", "war", "heist"};
static const char *const MOODS[] = {"tense", "uplifting", "dark", "funny"};
static const char *const LANGS[] = {"en", "fr", "de"};
static const char *const KINDS[] = {"view", "like", "dislike", "skip", "complete", "rating"};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void chaos_embedding(int id, int64_t version, float *out)
{
    uint64_t h = mix((uint64_t)id * 1000003ULL + (uint64_t)version);
    for (int i = 0; i < CHAOS_DIM; i++) {
        h = mix(h + (uint64_t)i);
        out[i] = (float)((double)(h % 20001) / 10000.0 - 1.0);
    }
    out[0] += 0.01f; /* never the zero vector */
}

static void id_string(const struct chaos *c, int id, char *out, size_t cap)
{
    snprintf(out, cap, "%s%05d", c->id_prefix, id);
}

/* Encodes the event for (id, version, op); *buf is malloc'd. */
static void encode_content(struct chaos *c, int id, int64_t version, int del, char **buf,
                           size_t *len)
{
    hsc_content_event ev = {0};
    char ids[64], title[128];
    id_string(c, id, ids, sizeof(ids));
    ev.v = HSC_SCHEMA_VERSION;
    ev.op = del ? HSC_OP_DELETE : HSC_OP_UPSERT;
    ev.id = strdup(ids);
    ev.version = version;
    ev.has = HSC_HAS_TS;
    ev.ts = 1700000000000LL + version * 1000 + id; /* the same for a replay */
    if (!del) {
        uint64_t h = mix((uint64_t)id * 7919ULL + (uint64_t)version);
        snprintf(title, sizeof(title), "Chaos title %d version %lld", id, (long long)version);
        ev.title = strdup(title);
        ev.kind = strdup("movie");
        hsc_strlist_push(&ev.genres, GENRES[h % 8], strlen(GENRES[h % 8]));
        const char *g2 = GENRES[(h >> 8) % 8];
        if (strcmp(g2, GENRES[h % 8]))
            hsc_strlist_push(&ev.genres, g2, strlen(g2));
        hsc_strlist_push(&ev.themes, THEMES[(h >> 16) % 6], strlen(THEMES[(h >> 16) % 6]));
        hsc_strlist_push(&ev.moods, MOODS[(h >> 24) % 4], strlen(MOODS[(h >> 24) % 4]));
        ev.language = strdup(LANGS[(h >> 32) % 3]);
        ev.has |= HSC_HAS_YEAR | HSC_HAS_MATURITY;
        ev.year = (int32_t)(1800 + version % 401);
        ev.maturity = (int32_t)(version / 401);
        ev.embedding = malloc(sizeof(float) * CHAOS_DIM);
        chaos_embedding(id, version, ev.embedding);
        ev.dim = CHAOS_DIM;
    }
    hsc_err err = {0};
    if (hsc_codec_encode_content(&ev, buf, len, &err)) {
        fprintf(stderr, "chaos: encoding %s v%lld: %s\n", ids, (long long)version, err.msg);
        exit(1);
    }
    hsc_content_event_clear(&ev);
}

static void produce(struct chaos *c, rd_kafka_t *p, const char *topic, const char *key,
                    const void *val, size_t len, intptr_t tag, rd_kafka_headers_t *hdrs)
{
    for (;;) {
        rd_kafka_resp_err_t e;
        if (hdrs) /* owned by the message once produced */
            e = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE((void *)val, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            c->produce_queue_full++;
            rd_kafka_poll(p, 10);
            continue;
        }
        if (e) {
            fprintf(stderr, "chaos: produce to %s: %s\n", topic, rd_kafka_err2str(e));
            exit(1);
        }
        return;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct chaos *c = opaque;
    intptr_t tag = (intptr_t)m->_private;
    int type = (int)(tag & 3);
    if (type == TYPE_SEARCH) {
        size_t seq = (size_t)(tag >> 2);
        if (seq < c->nsearches) {
            if (m->err)
                c->searches[seq].send_failed = 1;
            else
                c->searches[seq].delivered = 1;
        }
        return;
    }
    if (!m->err) {
        if (type == TYPE_CONTENT)
            c->content_inflight--;
        else
            c->learning_inflight--;
        return;
    }
    /* Not (surely) in Kafka: send it again; the pipeline is idempotent, and an
     * older version arriving after a newer one must change nothing anyway. */
    c->resent_after_failure++;
    char key[256];
    snprintf(key, sizeof(key), "%.*s", (int)m->key_len, (const char *)m->key);
    produce(c, rk, rd_kafka_topic_name(m->rkt), key, m->payload, m->len, tag, NULL);
}

static rd_kafka_t *producer(struct chaos *c, int idempotent)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    const char *kv[][2] = {
        {"bootstrap.servers", c->t.brokers},
        {"enable.idempotence", idempotent ? "true" : "false"},
        /* content waits out a broker restart; a search not sent in 10 s is moot */
        {"message.timeout.ms", idempotent ? "600000" : "10000"},
        {"linger.ms", "5"},
        {"queue.buffering.max.messages", "1000000"},
        {"log_level", "2"}, /* a broker restart is expected: no connection noise */
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "chaos: %s: %s\n", kv[i][0], errstr);
            exit(1);
        }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p) {
        fprintf(stderr, "chaos: producer: %s\n", errstr);
        exit(1);
    }
    return p;
}

void chaos_traffic_init(struct chaos *c)
{
    c->prod = producer(c, 1);
    c->sprod = producer(c, 0);
    c->titles = calloc((size_t)c->o.ids, sizeof(*c->titles));

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512], group[96];
    snprintf(group, sizeof(group), "%s-replies", c->tag);
    rd_kafka_conf_set(conf, "bootstrap.servers", c->t.brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)); /* never joined */
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", errstr, sizeof(errstr));
    /* our own reading must not make a reply late: no 500 ms pause after a fetch error */
    rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "20", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof(errstr));
    c->replies = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->replies) {
        fprintf(stderr, "chaos: consumer: %s\n", errstr);
        exit(1);
    }
    const char *topic = it_topic(&c->t, "search_replies");
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->replies, topic, NULL);
    if (rd_kafka_metadata(c->replies, 0, rkt, &md, 10000) || md->topics[0].err) {
        fprintf(stderr, "chaos: no metadata for %s\n", topic);
        exit(1);
    }
    c->reply_partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    /* Positioned at explicit end offsets: no reply can come before we listen. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->reply_partitions);
    for (int i = 0; i < c->reply_partitions; i++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int tries = 0; tries < 60; tries++) { /* a new topic's leaders take a moment */
            e = rd_kafka_query_watermark_offsets(c->replies, topic, i, &lo, &hi, 10000);
            if (!e)
                break;
            usleep(500000);
        }
        if (e) {
            fprintf(stderr, "chaos: no offsets for %s/%d\n", topic, i);
            exit(1);
        }
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
    }
    rd_kafka_assign(c->replies, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void send_content(struct chaos *c, int id, int64_t version, int del)
{
    char *buf, key[64];
    size_t len;
    encode_content(c, id, version, del, &buf, &len);
    id_string(c, id, key, sizeof(key));
    c->content_inflight++;
    produce(c, c->prod, it_topic(&c->t, "content_events"), key, buf, len, TYPE_CONTENT, NULL);
    free(buf);
    c->content_sent++;
}

void chaos_publish_initial(struct chaos *c)
{
    for (int id = 0; id < c->o.ids; id++) {
        c->titles[id].version = 1;
        c->titles[id].deleted = 0;
        send_content(c, id, 1, 0);
        c->content_upserts++;
    }
}

void chaos_publish_content(struct chaos *c)
{
    int id = (int)(chaos_rand(c) % (uint64_t)c->o.ids);
    struct chaos_title *t = &c->titles[id];
    unsigned r = (unsigned)(chaos_rand(c) % 100);
    if (r < 4 && t->version >= 2) {
        /* stale: an older version, arriving after a newer one, must change nothing */
        int64_t back = 1 + (int64_t)(chaos_rand(c) % 3);
        if (back >= t->version)
            back = t->version - 1;
        send_content(c, id, t->version - back, 0);
        c->content_stale++;
        return;
    }
    if (r < 8 && t->version >= 1) {
        send_content(c, id, t->version, t->deleted); /* an exact replay */
        c->content_replays++;
        return;
    }
    if (t->version >= CHAOS_MAX_VERSION)
        return;
    int del = !t->deleted && r >= 92; /* ~8% deletes; a deleted title may come back */
    t->version++;
    t->deleted = del;
    send_content(c, id, t->version, del);
    if (del)
        c->content_deletes++;
    else
        c->content_upserts++;
}

static void send_learning(struct chaos *c, const struct chaos_learning *l)
{
    hsc_learning_event ev = {0};
    char user[32], content[64];
    snprintf(user, sizeof(user), "u%03d", l->user);
    id_string(c, l->content, content, sizeof(content));
    ev.v = HSC_SCHEMA_VERSION;
    ev.user_id = strdup(user);
    ev.content_id = strdup(content);
    ev.kind = strdup(l->kind);
    ev.has_value = l->has_value;
    ev.value = l->value;
    ev.ts = l->ts;
    char *buf;
    size_t len;
    hsc_err err = {0};
    if (hsc_codec_encode_learning(&ev, &buf, &len, &err)) {
        fprintf(stderr, "chaos: encoding a learning event: %s\n", err.msg);
        exit(1);
    }
    hsc_learning_event_clear(&ev);
    c->learning_inflight++;
    produce(c, c->prod, it_topic(&c->t, "learning_events"), user, buf, len, TYPE_LEARNING, NULL);
    free(buf);
    c->learning_sent++;
}

void chaos_publish_learning(struct chaos *c)
{
    if (c->nlearning && chaos_rand(c) % 100 < 5) {
        /* the same event again: stored once, applied once */
        send_learning(c, &c->learning[chaos_rand(c) % c->nlearning]);
        c->learning_dups++;
        return;
    }
    if (c->nlearning == c->caplearning) {
        c->caplearning = c->caplearning ? c->caplearning * 2 : 4096;
        c->learning = realloc(c->learning, c->caplearning * sizeof(*c->learning));
    }
    struct chaos_learning *l = &c->learning[c->nlearning++];
    memset(l, 0, sizeof(*l));
    l->user = (int)(chaos_rand(c) % 50);
    l->content = (int)(chaos_rand(c) % (uint64_t)c->o.ids);
    l->kind = KINDS[chaos_rand(c) % 6];
    l->ts = c->next_learning_ts++; /* unique: the key (user, content, kind, ts) never repeats */
    if (!strcmp(l->kind, "rating")) {
        l->has_value = 1;
        l->value = (double)(chaos_rand(c) % 11) * 0.5; /* exact in binary: sums compare exactly */
    } else if (!strcmp(l->kind, "complete")) {
        l->has_value = 1;
        l->value = (double)(chaos_rand(c) % 5) * 0.25;
    }
    send_learning(c, l);
}

/* A title that is live now (or any, after a few tries). */
static int live_id(struct chaos *c)
{
    int id = 0;
    for (int i = 0; i < 8; i++) {
        id = (int)(chaos_rand(c) % (uint64_t)c->o.ids);
        if (c->titles[id].version > 0 && !c->titles[id].deleted)
            break;
    }
    return id;
}

void chaos_send_search(struct chaos *c)
{
    if (c->nsearches == c->capsearches) {
        c->capsearches = c->capsearches ? c->capsearches * 2 : 4096;
        c->searches = realloc(c->searches, c->capsearches * sizeof(*c->searches));
    }
    size_t seq = c->nsearches++;
    struct chaos_search *s = &c->searches[seq];
    memset(s, 0, sizeof(*s));
    unsigned r = (unsigned)(chaos_rand(c) % 100);
    s->kind = r < 30   ? CHAOS_S_VECTOR
              : r < 50 ? CHAOS_S_GRAPH
              : r < 70 ? CHAOS_S_HYBRID_PAR
              : r < 85 ? CHAOS_S_HYBRID_SEQ
                       : CHAOS_S_AUTO;
    hsc_search_request req;
    hsc_search_request_init(&req);
    int id = live_id(c);
    char ids[64];
    id_string(c, id, ids, sizeof(ids));
    if (s->kind != CHAOS_S_GRAPH) {
        req.embedding = malloc(sizeof(float) * CHAOS_DIM);
        chaos_embedding(id, c->titles[id].version ? c->titles[id].version : 1, req.embedding);
        req.dim = CHAOS_DIM;
    }
    if (s->kind != CHAOS_S_VECTOR)
        hsc_strlist_push(&req.seed_ids, ids, strlen(ids));
    static const hsc_strategy strat[CHAOS_S_N] = {
        HSC_STRATEGY_VECTOR_ONLY, HSC_STRATEGY_GRAPH_ONLY, HSC_STRATEGY_HYBRID_PARALLEL,
        HSC_STRATEGY_HYBRID_SEQUENTIAL, HSC_STRATEGY_AUTO};
    req.strategy = strat[s->kind];
    if (s->kind >= CHAOS_S_HYBRID_PAR && chaos_rand(c) % 2) {
        char user[32];
        snprintf(user, sizeof(user), "u%03d", (int)(chaos_rand(c) % 50));
        req.user_id = strdup(user);
    }
    req.cache = chaos_rand(c) % 2;
    char *buf;
    size_t len;
    hsc_err err = {0};
    if (hsc_codec_encode_search_request(&req, &buf, &len, &err)) {
        fprintf(stderr, "chaos: encoding a search: %s\n", err.msg);
        exit(1);
    }
    hsc_search_request_clear(&req);

    char corr[80], part[16], deadline[24];
    snprintf(corr, sizeof(corr), "%s.%zu", c->tag, seq);
    snprintf(part, sizeof(part), "%d", (int)(seq % (size_t)c->reply_partitions));
    s->sent_ms = chaos_wall_ms();
    s->deadline_ms = s->sent_ms + c->o.deadline_ms;
    snprintf(deadline, sizeof(deadline), "%lld", (long long)s->deadline_ms);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, HSC_HDR_CORRELATION_ID, -1, corr, -1);
    rd_kafka_header_add(h, HSC_HDR_REPLY_TOPIC, -1, it_topic(&c->t, "search_replies"), -1);
    rd_kafka_header_add(h, HSC_HDR_REPLY_PARTITION, -1, part, -1);
    rd_kafka_header_add(h, HSC_HDR_DEADLINE_MS, -1, deadline, -1);
    produce(c, c->sprod, it_topic(&c->t, "search_requests"), corr, buf, len,
            (intptr_t)((seq << 2) | TYPE_SEARCH), h);
    free(buf);
}

static void on_reply(struct chaos *c, rd_kafka_message_t *m)
{
    int64_t now = chaos_wall_ms();
    c->replies_read++;
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    char corr[160] = "";
    if (!rd_kafka_message_headers(m, &h) &&
        !rd_kafka_header_get_last(h, HSC_HDR_CORRELATION_ID, &v, &n) && n < sizeof(corr)) {
        memcpy(corr, v, n);
        corr[n] = '\0';
    }
    size_t tl = strlen(c->tag);
    char *end = NULL;
    unsigned long long seq = 0;
    if (!strncmp(corr, c->tag, tl) && corr[tl] == '.')
        seq = strtoull(corr + tl + 1, &end, 10);
    if (!end || *end || seq >= c->nsearches) {
        c->replies_unknown++;
        chaos_violation(c,
                        "searches: a reply with correlation id '%s' that no search of this run "
                        "sent (partition %d, offset %lld)",
                        corr, (int)m->partition, (long long)m->offset);
        return;
    }
    struct chaos_search *s = &c->searches[seq];
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    s->nreplies++;
    int recovering = c->kafka_unsettled && now < c->kafka_settled_at_ms;
    if (s->nreplies > 1 && recovering) {
        s->kafka_dup = 1;
        chaos_event(c,
                    "%s answered %d times while Kafka recovered (this reply produced %+lld ms "
                    "and read %+lld ms from the deadline)",
                    corr, s->nreplies, (long long)(ts - s->deadline_ms),
                    (long long)(now - s->deadline_ms));
        return;
    }
    if (s->nreplies > 1) {
        chaos_violation(c,
                        "searches: %s answered %d times (this reply produced %+lld ms and read "
                        "%+lld ms from the deadline)",
                        corr, s->nreplies, (long long)(ts - s->deadline_ms),
                        (long long)(now - s->deadline_ms));
        return;
    }
    s->recv_ms = now;
    s->kafka_ts_ms = ts;
    hsc_search_reply rep;
    hsc_err err = {0};
    if (hsc_codec_decode_search_reply(m->payload, m->len, &rep, &err)) {
        c->replies_bad++;
        chaos_violation(c, "searches: the reply to %s does not decode: %s", corr, err.msg);
        return;
    }
    int read_late = now > s->deadline_ms + CHAOS_LATE_TOLERANCE_MS;
    int produced_late = ts > s->deadline_ms + CHAOS_LATE_TOLERANCE_MS;
    if (read_late && !produced_late && recovering)
        s->kafka_late = 1;
    else if (read_late)
        chaos_violation(
            c,
            "searches: %s answered late: reply produced %+lld ms and read %+lld ms "
            "from its deadline (sent %lld ms before it; %s %s, %s, %lld us in hsc-query)",
            corr, (long long)(ts - s->deadline_ms), (long long)(now - s->deadline_ms),
            (long long)(s->deadline_ms - s->sent_ms), rep.ok ? "ok" : "error",
            rep.ok ? "" : (rep.error_code ? rep.error_code : ""), hsc_strategy_name(rep.strategy),
            (long long)rep.timings_us.total);
    if (!rep.correlation_id || strcmp(rep.correlation_id, corr))
        chaos_violation(c, "searches: the reply under header %s says correlation id '%s'", corr,
                        rep.correlation_id ? rep.correlation_id : "(none)");
    s->ok = rep.ok;
    s->degraded = rep.degraded.n > 0;
    s->cache_hit = rep.cache_hit;
    if (!rep.ok)
        snprintf(s->error_code, sizeof(s->error_code), "%s",
                 rep.error_code ? rep.error_code : "(none)");
    hsc_search_reply_clear(&rep);
}

void chaos_traffic_poll(struct chaos *c, int wait_ms)
{
    rd_kafka_poll(c->prod, 0);
    rd_kafka_poll(c->sprod, 0);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->replies, wait_ms);
    for (int i = 0; m && i < 10000; i++) {
        if (!m->err)
            on_reply(c, m);
        rd_kafka_message_destroy(m);
        m = rd_kafka_consumer_poll(c->replies, 0);
    }
    if (m)
        rd_kafka_message_destroy(m);
}

int chaos_traffic_flush(struct chaos *c, int timeout_ms)
{
    int64_t end = chaos_elapsed_ms(c) + timeout_ms;
    while (chaos_elapsed_ms(c) < end &&
           (rd_kafka_outq_len(c->prod) > 0 || c->content_inflight > 0 || c->learning_inflight > 0))
        chaos_traffic_poll(c, 50);
    return rd_kafka_outq_len(c->prod);
}

void chaos_traffic_close(struct chaos *c)
{
    if (c->replies) {
        rd_kafka_consumer_close(c->replies);
        rd_kafka_destroy(c->replies);
    }
    if (c->sprod) {
        rd_kafka_flush(c->sprod, 2000);
        rd_kafka_destroy(c->sprod);
    }
    if (c->prod) {
        rd_kafka_flush(c->prod, 5000);
        rd_kafka_destroy(c->prod);
    }
    c->replies = c->sprod = c->prod = NULL;
}
