/*
 * The soak's verdict: once the pipeline has caught up, what each store holds
 * is compared with what the soak published, as sets. PostgreSQL must hold
 * every title once at its newest version (a delete as a tombstone), Neo4j a
 * :Content node for each live title at its newest version and none for a
 * deleted one, Milvus one entity for each live title whose (id, version) is
 * the newest (the version read back from the year and maturity fields), the
 * learning table every event once (the set of keys and the sum of values),
 * the DLQ nothing. The searches' bookkeeping gives the request/reply verdict.
 */
#include "chaos.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsc/codec.h"
#include "hsc/search.h"

/* At most this many examples of one kind of mismatch are listed. */
#define EXAMPLES 8

/* ---------------- draining ---------------- */

int chaos_wait_drained(struct chaos *c)
{
    struct {
        const char *group, *topic;
    } g[] = {{"ingest", "content_events"},
             {"ingest", "learning_events"},
             {"enrich", "content_ingested"},
             {"index", "content_enriched"},
             {"query", "search_requests"}};
    int64_t start = chaos_elapsed_ms(c), end = start + (int64_t)c->o.drain_timeout_s * 1000;
    int clean_rounds = 0;
    long long lag[5] = {0};
    while (chaos_elapsed_ms(c) < end && !chaos_interrupted) {
        int all_zero = 1;
        for (size_t i = 0; i < 5; i++) {
            char group[96];
            snprintf(group, sizeof(group), "%s-%s", c->tag, g[i].group);
            lag[i] = it_group_lag(&c->t, group, it_topic(&c->t, g[i].topic));
            all_zero &= lag[i] == 0;
            chaos_traffic_poll(c, 0);
        }
        clean_rounds = all_zero ? clean_rounds + 1 : 0;
        if (clean_rounds == 2) { /* twice, a second apart: nothing left in between */
            chaos_event(c, "the pipeline caught up in %.1f s",
                        (double)(chaos_elapsed_ms(c) - start) / 1000.0);
            return 0;
        }
        chaos_procs_tick(c);
        for (int i = 0; i < 10; i++)
            chaos_traffic_poll(c, 100);
    }
    chaos_violation(c,
                    "drain: the pipeline had not caught up after %d s: lag ingest %lld+%lld, "
                    "enrich %lld, embed-index %lld, query %lld",
                    c->o.drain_timeout_s, lag[0], lag[1], lag[2], lag[3], lag[4]);
    return -1;
}

/* ---------------- one comparison of (id, version) sets ---------------- */

/* One store's view of the titles, for the comparison. */
struct seen {
    int *count;       /* rows or entities per id */
    int64_t *version; /* the version of the last one seen */
    int *deleted;     /* PostgreSQL: the row is a tombstone */
    long foreign;     /* rows whose id is not one the soak published */
    char foreign_example[160];
};

static void seen_init(struct seen *s, int n)
{
    memset(s, 0, sizeof(*s));
    s->count = calloc((size_t)n, sizeof(int));
    s->version = calloc((size_t)n, sizeof(int64_t));
    s->deleted = calloc((size_t)n, sizeof(int));
}

static void seen_free(struct seen *s)
{
    free(s->count);
    free(s->version);
    free(s->deleted);
}

static void seen_add(struct chaos *c, struct seen *s, const char *id, int64_t version, int deleted)
{
    size_t pl = strlen(c->id_prefix);
    char *end = NULL;
    long n = -1;
    if (id && !strncmp(id, c->id_prefix, pl))
        n = strtol(id + pl, &end, 10);
    if (n < 0 || n >= c->o.ids || !end || *end) {
        if (!s->foreign++)
            snprintf(s->foreign_example, sizeof(s->foreign_example), "%s", id ? id : "(null)");
        return;
    }
    s->count[n]++;
    s->version[n] = version;
    s->deleted[n] = deleted;
}

/* A list of examples for one kind of mismatch. */
struct examples {
    long n;
    char text[EXAMPLES * 48];
};

static void example(struct examples *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void example(struct examples *e, const char *fmt, ...)
{
    if (e->n++ < EXAMPLES) {
        size_t l = strlen(e->text);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text + l, sizeof(e->text) - l, fmt, ap);
        va_end(ap);
    }
}

/*
 * Compares a store with what was published. tombstones: deleted titles must be
 * present as deleted rows (PostgreSQL) rather than absent. Returns the number
 * of mismatches; with record, each kind becomes a violation and a line is printed.
 */
static long compare(struct chaos *c, const char *store, struct seen *s, int tombstones, int record)
{
    struct examples missing = {0}, dup = {0}, stale = {0}, resurrected = {0}, flag = {0};
    long live = 0, dead = 0, exact = 0;
    for (int i = 0; i < c->o.ids; i++) {
        const struct chaos_title *t = &c->titles[i];
        char id[64];
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, i);
        if (t->version == 0)
            continue;
        if (t->deleted)
            dead++;
        else
            live++;
        if (t->deleted && !tombstones) {
            if (s->count[i])
                example(&resurrected, " %s(v%lld, deleted at v%lld)", id, (long long)s->version[i],
                        (long long)t->version);
            else
                exact++;
            continue;
        }
        if (s->count[i] == 0) {
            example(&missing, " %s(v%lld)", id, (long long)t->version);
            continue;
        }
        if (s->count[i] > 1) {
            example(&dup, " %s(x%d)", id, s->count[i]);
            continue;
        }
        if (s->version[i] != t->version) {
            example(&stale, " %s(v%lld, want v%lld)", id, (long long)s->version[i],
                    (long long)t->version);
            continue;
        }
        if (tombstones && s->deleted[i] != t->deleted) {
            example(&flag, " %s(v%lld %s, want %s)", id, (long long)t->version,
                    s->deleted[i] ? "deleted" : "live", t->deleted ? "deleted" : "live");
            continue;
        }
        exact++;
    }
    long bad = missing.n + dup.n + stale.n + resurrected.n + flag.n + s->foreign;
    if (!record)
        return bad;
    printf("  %-10s %ld titles published (%ld live, %ld deleted): %ld exactly right; missing %ld, "
           "duplicated %ld, wrong version %ld, deleted but present %ld, wrong deleted flag %ld, "
           "not ours %ld\n",
           store, live + dead, live, dead, exact, missing.n, dup.n, stale.n, resurrected.n, flag.n,
           s->foreign);
    if (missing.n)
        chaos_violation(c, "%s: %ld titles missing:%s", store, missing.n, missing.text);
    if (dup.n)
        chaos_violation(c, "%s: %ld titles stored more than once:%s", store, dup.n, dup.text);
    if (stale.n)
        chaos_violation(c, "%s: %ld titles at a version other than the newest:%s", store, stale.n,
                        stale.text);
    if (resurrected.n)
        chaos_violation(c, "%s: %ld deleted titles still present:%s", store, resurrected.n,
                        resurrected.text);
    if (flag.n)
        chaos_violation(c, "%s: %ld titles with the wrong deleted flag:%s", store, flag.n,
                        flag.text);
    if (s->foreign)
        chaos_violation(c, "%s: %ld entries the soak never published (e.g. %s)", store, s->foreign,
                        s->foreign_example);
    return bad;
}

/* ---------------- the stores ---------------- */

static long check_pg(struct chaos *c, int record)
{
    struct seen s;
    seen_init(&s, c->o.ids);
    long bad;
    if (PQstatus(c->t.pg) != CONNECTION_OK)
        PQreset(c->t.pg);
    PGresult *r = PQexec(c->t.pg, "SELECT id, version, deleted FROM content");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (record)
            chaos_violation(c, "PostgreSQL: cannot read content: %s", PQresultErrorMessage(r));
        bad = 1;
    } else {
        for (int i = 0; i < PQntuples(r); i++)
            seen_add(c, &s, PQgetvalue(r, i, 0), atoll(PQgetvalue(r, i, 1)),
                     PQgetvalue(r, i, 2)[0] == 't');
        bad = compare(c, "PostgreSQL", &s, 1, record);
    }
    PQclear(r);
    seen_free(&s);
    return bad;
}

static long check_neo4j(struct chaos *c, int record)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"p\":\"%s\"}", c->id_prefix);
    json_t *rows = it_neo4j("MATCH (n:Content) WHERE n.id STARTS WITH $p "
                            "RETURN n.id, n.version, n.stub IS NOT NULL",
                            params);
    if (!rows) {
        if (record)
            chaos_violation(c, "Neo4j: cannot read the :Content nodes");
        return 1;
    }
    struct seen s;
    seen_init(&s, c->o.ids);
    long stubs = 0;
    char stub_example[128] = "";
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        const char *id = json_string_value(json_array_get(row, 0));
        json_t *v = json_array_get(row, 1);
        if (json_is_true(json_array_get(row, 2)) && !stubs++)
            snprintf(stub_example, sizeof(stub_example), "%s", id ? id : "");
        seen_add(c, &s, id, json_is_integer(v) ? json_integer_value(v) : -1, 0);
    }
    json_decref(rows);
    long bad = compare(c, "Neo4j", &s, 0, record) + stubs;
    if (record && stubs) /* no event of the soak names another title */
        chaos_violation(c, "Neo4j: %ld :Content nodes are stubs (e.g. %s)", stubs, stub_example);
    seen_free(&s);
    return bad;
}

static json_t *milvus_post(const char *path, json_t *req)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", getenv("HSC_MILVUS_URL"), path);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long st;
    char *resp = it_http("POST", url, body, &st);
    free(body);
    json_t *o = resp ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    if (o && json_integer_value(json_object_get(o, "code")) != 200) {
        fprintf(stderr, "chaos: milvus %s: %s\n", path,
                json_string_value(json_object_get(o, "message")));
        json_decref(o);
        return NULL;
    }
    return o;
}

static long long jint(json_t *v)
{
    return json_is_string(v) ? atoll(json_string_value(v)) : json_integer_value(v);
}

static long check_milvus(struct chaos *c, int record)
{
    struct seen s;
    seen_init(&s, c->o.ids);
    long long after = 0, total = 0;
    int failed = 0;
    for (;;) { /* paged by the automatic key: one query returns at most 16384 rows */
        char filter[64];
        snprintf(filter, sizeof(filter), "pk > %lld", after);
        json_t *q = json_pack("{s:s, s:s, s:[s,s,s,s], s:i}", "collectionName", c->t.collection,
                              "filter", filter, "outputFields", "content_id", "year", "maturity",
                              "pk", "limit", 16384);
        json_t *o = milvus_post("/v1/vector/query", q);
        if (!o) {
            failed = 1;
            break;
        }
        json_t *data = json_object_get(o, "data"), *e;
        size_t m = json_array_size(data), i;
        json_array_foreach (data, i, e) {
            long long year = jint(json_object_get(e, "year"));
            long long mat = jint(json_object_get(e, "maturity"));
            /* the soak writes year 1800 + v % 401 and maturity v / 401 */
            seen_add(c, &s, json_string_value(json_object_get(e, "content_id")),
                     mat * 401 + (year - 1800), 0);
            long long pk = jint(json_object_get(e, "pk"));
            if (pk > after)
                after = pk;
        }
        total += (long long)m;
        json_decref(o);
        if (m < 16384)
            break;
    }
    long bad;
    if (failed) {
        if (record)
            chaos_violation(c, "Milvus: cannot query collection %s", c->t.collection);
        bad = 1;
    } else {
        bad = compare(c, "Milvus", &s, 0, record);
        if (record)
            printf("  %-10s %lld entities in %s\n", "", total, c->t.collection);
    }
    seen_free(&s);
    return bad;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long check_learning(struct chaos *c, int record)
{
    size_t n = c->nlearning;
    char **want = calloc(n ? n : 1, sizeof(char *));
    double want_sum = 0;
    for (size_t i = 0; i < n; i++) {
        const struct chaos_learning *l = &c->learning[i];
        char buf[160];
        snprintf(buf, sizeof(buf), "u%03d|%s%05d|%s|%lld", l->user, c->id_prefix, l->content,
                 l->kind, (long long)l->ts);
        want[i] = strdup(buf);
        if (l->has_value)
            want_sum += l->value;
    }
    qsort(want, n, sizeof(char *), cmp_str);
    if (PQstatus(c->t.pg) != CONNECTION_OK)
        PQreset(c->t.pg);
    PGresult *r = PQexec(c->t.pg, "SELECT k, v FROM (SELECT user_id || '|' || content_id || '|' || "
                                  "kind || '|' || ts AS k, coalesce(value, 0) AS v "
                                  "FROM learning_events) e ORDER BY k COLLATE \"C\"");
    long bad = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (record)
            chaos_violation(c, "learning: cannot read learning_events: %s",
                            PQresultErrorMessage(r));
        bad = 1;
    } else {
        size_t m = (size_t)PQntuples(r), i = 0, j = 0;
        double have_sum = 0;
        struct examples missing = {0}, extra = {0}, dup = {0};
        while (i < n || j < m) {
            const char *h = j < m ? PQgetvalue(r, (int)j, 0) : NULL;
            int d = !h ? -1 : i >= n ? 1 : strcmp(want[i], h);
            if (h && j > 0 && !strcmp(h, PQgetvalue(r, (int)j - 1, 0))) {
                example(&dup, " %s", h);
                have_sum += atof(PQgetvalue(r, (int)j, 1));
                j++;
            } else if (d < 0) {
                example(&missing, " %s", want[i++]);
            } else if (d > 0) {
                example(&extra, " %s", h);
                have_sum += atof(PQgetvalue(r, (int)j, 1));
                j++;
            } else {
                have_sum += atof(PQgetvalue(r, (int)j, 1));
                i++, j++;
            }
        }
        int sum_ok = have_sum == want_sum; /* multiples of 0.25: exact */
        bad = missing.n + extra.n + dup.n + !sum_ok;
        if (record) {
            printf("  %-10s %zu learning events published (%ld sent again on purpose), %zu rows: "
                   "missing %ld, duplicated %ld, not ours %ld; sum of values %.2f, want %.2f\n",
                   "learning", n, c->learning_dups, m, missing.n, dup.n, extra.n, have_sum,
                   want_sum);
            if (missing.n)
                chaos_violation(c, "learning: %ld events missing:%s", missing.n, missing.text);
            if (dup.n)
                chaos_violation(c, "learning: %ld events stored twice:%s", dup.n, dup.text);
            if (extra.n)
                chaos_violation(c, "learning: %ld rows the soak never published:%s", extra.n,
                                extra.text);
            if (!sum_ok)
                chaos_violation(c,
                                "learning: the stored values sum to %.4f, the published ones "
                                "to %.4f",
                                have_sum, want_sum);
        }
    }
    PQclear(r);
    for (size_t i = 0; i < n; i++)
        free(want[i]);
    free(want);
    return bad;
}

long long chaos_dlq_count(struct chaos *c)
{
    const char *topic = it_topic(&c->t, "dlq");
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->prod, topic, NULL);
    long long n = -1;
    if (!rd_kafka_metadata(c->prod, 0, rkt, &md, 10000)) {
        n = 0;
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(c->prod, topic, i, &lo, &hi, 10000)) {
                n = -1;
                break;
            }
            n += hi - lo;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

static void check_dlq(struct chaos *c)
{
    long long n = chaos_dlq_count(c);
    printf("  %-10s %lld messages\n", "DLQ", n);
    if (n == 0)
        return;
    if (n < 0) {
        chaos_violation(c, "DLQ: cannot read the offsets of %s", it_topic(&c->t, "dlq"));
        return;
    }
    struct it_record *r;
    size_t got = it_consume_all(&c->t, it_topic(&c->t, "dlq"), 3, 10000, &r);
    char ex[600] = "";
    for (size_t i = 0; i < got; i++) {
        size_t l = strlen(ex);
        snprintf(ex + l, sizeof(ex) - l, " [%s: %s]", it_header(&r[i], "hsc-dlq-stage"),
                 it_header(&r[i], "hsc-dlq-error"));
    }
    it_records_free(r, got);
    chaos_violation(c, "DLQ: %lld valid events went to the DLQ:%s", n, ex);
}

/* ---------------- searches ---------------- */

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void report_searches(struct chaos *c)
{
    static const char *const kind[CHAOS_S_N] = {"vector", "graph", "hybrid_parallel",
                                                "hybrid_sequential", "auto"};
    long sent[CHAOS_S_N] = {0}, answered[CHAOS_S_N] = {0};
    long delivered = 0, send_failed = 0, unanswered = 0, late = 0, produced_late = 0, dups = 0;
    long kafka_late = 0, kafka_dups = 0;
    long ok = 0, degraded = 0, hits = 0, errors = 0;
    struct {
        char code[32];
        long n;
    } codes[8];
    memset(codes, 0, sizeof(codes));
    long long *lat = malloc(sizeof(long long) * (c->nsearches ? c->nsearches : 1));
    size_t nlat = 0;
    for (size_t i = 0; i < c->nsearches; i++) {
        const struct chaos_search *s = &c->searches[i];
        sent[s->kind]++;
        delivered += s->delivered;
        send_failed += s->send_failed;
        if (!s->nreplies) {
            unanswered++;
            continue;
        }
        answered[s->kind]++;
        dups += s->nreplies > 1 && !s->kafka_dup;
        kafka_dups += s->kafka_dup;
        kafka_late += s->kafka_late;
        late += s->recv_ms > s->deadline_ms + CHAOS_LATE_TOLERANCE_MS && !s->kafka_late;
        produced_late += s->kafka_ts_ms > s->deadline_ms + CHAOS_LATE_TOLERANCE_MS;
        lat[nlat++] = s->recv_ms - s->sent_ms;
        if (s->ok) {
            ok++;
            degraded += s->degraded;
            hits += s->cache_hit;
            continue;
        }
        errors++;
        for (int k = 0; k < 8; k++)
            if (!codes[k].code[0] || !strcmp(codes[k].code, s->error_code)) {
                snprintf(codes[k].code, sizeof(codes[k].code), "%s", s->error_code);
                codes[k].n++;
                break;
            }
    }
    qsort(lat, nlat, sizeof(long long), cmp_ll);
    printf("  %-10s %zu sent (%ld reached Kafka, %ld not sent), %ld answered, %ld unanswered; "
           "late %ld (of which produced after the deadline %ld), duplicated %ld, "
           "replies with unknown ids %ld\n",
           "searches", c->nsearches, delivered, send_failed, ok + errors, unanswered, late,
           produced_late, dups, c->replies_unknown);
    printf("  %-10s answers: %ld ok (%ld degraded, %ld from the cache), %ld errors:", "", ok,
           degraded, hits, errors);
    for (int k = 0; k < 8 && codes[k].code[0]; k++)
        printf(" %s %ld", codes[k].code, codes[k].n);
    printf("\n  %-10s by kind (answered/sent):", "");
    for (int k = 0; k < CHAOS_S_N; k++)
        printf(" %s %ld/%ld", kind[k], answered[k], sent[k]);
    if (nlat)
        printf("; round trip p50 %lld ms, p99 %lld ms, max %lld ms", lat[nlat / 2],
               lat[nlat * 99 / 100], lat[nlat - 1]);
    printf("\n  %-10s tolerance for lateness %d ms; the soak's own loop stalled at most %lld ms\n",
           "", CHAOS_LATE_TOLERANCE_MS, (long long)c->max_loop_gap_ms);
    printf("  %-10s while Kafka recovered (%d s after its restart): %ld replies produced in time "
           "but read late, %ld requests answered twice after their commit was lost\n",
           "", CHAOS_KAFKA_SETTLE_MS / 1000, kafka_late, kafka_dups);
    free(lat);
    if (ok == 0)
        chaos_violation(c, "searches: not one search was answered ok");
}

/* ---------------- faults injected by hand ---------------- */

static int first_live(struct chaos *c, int skip)
{
    for (int i = 0; i < c->o.ids; i++)
        if (c->titles[i].version > 0 && !c->titles[i].deleted && skip-- == 0)
            return i;
    return -1;
}

static int want_fault(const char *inject, const char *name)
{
    if (!strcmp(inject, "all"))
        return 1;
    size_t n = strlen(name);
    for (const char *p = inject; (p = strstr(p, name)); p += n)
        if ((p == inject || p[-1] == ',') && (p[n] == ',' || !p[n]))
            return 1;
    return 0;
}

void chaos_inject(struct chaos *c)
{
    const char *f = c->o.inject;
    char id[64], sql[256];
    if (want_fault(f, "pg-row")) {
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, first_live(c, 0));
        snprintf(sql, sizeof(sql), "DELETE FROM content WHERE id = '%s'", id);
        PQclear(PQexec(c->t.pg, sql));
        chaos_event(c, "INJECTED: deleted PostgreSQL row %s", id);
    }
    if (want_fault(f, "pg-version")) {
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, first_live(c, 1));
        snprintf(sql, sizeof(sql), "UPDATE content SET version = version - 1 WHERE id = '%s'", id);
        PQclear(PQexec(c->t.pg, sql));
        chaos_event(c, "INJECTED: PostgreSQL row %s one version back", id);
    }
    if (want_fault(f, "neo4j-node")) {
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, first_live(c, 2));
        char params[128];
        snprintf(params, sizeof(params), "{\"id\":\"%s\"}", id);
        json_decref(it_neo4j("MATCH (n:Content {id: $id}) DETACH DELETE n", params));
        chaos_event(c, "INJECTED: deleted Neo4j node %s", id);
    }
    if (want_fault(f, "milvus-entity")) {
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, first_live(c, 3));
        char filter[128];
        snprintf(filter, sizeof(filter), "content_id in [\"%s\"]", id);
        json_decref(milvus_post("/v1/vector/delete", json_pack("{s:s, s:s}", "collectionName",
                                                               c->t.collection, "filter", filter)));
        chaos_event(c, "INJECTED: deleted Milvus entity %s", id);
    }
    if (want_fault(f, "milvus-stale")) {
        /* a second, older entity for a live title: a count by id cannot see the difference
         * between this and a right entity, a set of (id, version) can */
        int n = first_live(c, 4);
        int64_t v = c->titles[n].version > 1 ? c->titles[n].version - 1 : 1;
        snprintf(id, sizeof(id), "%s%05d", c->id_prefix, n);
        float vec[CHAOS_DIM];
        chaos_embedding(n, v, vec);
        json_t *e =
            json_pack("{s:s, s:i, s:i, s:s, s:[]}", "content_id", id, "year", (int)(1800 + v % 401),
                      "maturity", (int)(v / 401), "language", "en", "genres");
        json_t *ev = json_array();
        for (int i = 0; i < CHAOS_DIM; i++)
            json_array_append_new(ev, json_real(vec[i]));
        json_object_set_new(e, "embedding", ev);
        json_decref(milvus_post("/v1/vector/insert", json_pack("{s:s, s:[o]}", "collectionName",
                                                               c->t.collection, "data", e)));
        chaos_event(c, "INJECTED: a stale Milvus entity %s v%lld", id, (long long)v);
    }
    if (want_fault(f, "learning")) {
        PQclear(PQexec(c->t.pg, "DELETE FROM learning_events WHERE id = (SELECT min(id) FROM "
                                "learning_events)"));
        chaos_event(c, "INJECTED: deleted one learning event");
    }
    if (want_fault(f, "reply-dup")) {
        /* a second reply for the first answered search, as a redelivery would send it */
        for (size_t i = 0; i < c->nsearches; i++) {
            if (!c->searches[i].nreplies)
                continue;
            char corr[80];
            snprintf(corr, sizeof(corr), "%s.%zu", c->tag, i);
            hsc_search_reply r = {0};
            r.v = HSC_SCHEMA_VERSION;
            r.correlation_id = corr;
            r.ok = true;
            char *buf;
            size_t len;
            hsc_err err = {0};
            if (hsc_codec_encode_search_reply(&r, &buf, &len, &err))
                break;
            rd_kafka_headers_t *h = rd_kafka_headers_new(1);
            rd_kafka_header_add(h, HSC_HDR_CORRELATION_ID, -1, corr, -1);
            rd_kafka_producev(c->sprod, RD_KAFKA_V_TOPIC(it_topic(&c->t, "search_replies")),
                              RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_OPAQUE((void *)(intptr_t)0), RD_KAFKA_V_END);
            free(buf);
            rd_kafka_flush(c->sprod, 5000);
            for (int k = 0; k < 30; k++)
                chaos_traffic_poll(c, 100);
            chaos_event(c, "INJECTED: a second reply for %s", corr);
            break;
        }
    }
}

/* ---------------- the verdict ---------------- */

static long check_stores(struct chaos *c, int record)
{
    return check_pg(c, record) + check_neo4j(c, record) + check_milvus(c, record) +
           check_learning(c, record);
}

void chaos_verify(struct chaos *c)
{
    /* Milvus reads are bounded-staleness, and an embed-index retry may still be
     * settling: a store that converges within the drain bound is right, one that
     * stays wrong is not. */
    int64_t end = chaos_elapsed_ms(c) + (int64_t)c->o.drain_timeout_s * 1000 / 2,
            start = chaos_elapsed_ms(c);
    long bad;
    int rounds = 0;
    while ((bad = check_stores(c, 0)) > 0 && chaos_elapsed_ms(c) < end && !chaos_interrupted) {
        rounds++;
        for (int i = 0; i < 30; i++)
            chaos_traffic_poll(c, 100);
    }
    if (rounds)
        chaos_event(c, "the stores %s after %d more checks (%.1f s)",
                    bad ? "still differ" : "converged", rounds,
                    (double)(chaos_elapsed_ms(c) - start) / 1000.0);
    printf("\nverification:\n");
    check_stores(c, 1);
    check_dlq(c);
    report_searches(c);
}
