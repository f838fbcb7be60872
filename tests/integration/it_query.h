/*
 * Helpers shared by the query integration tests (header-only, test code): a
 * catalogue through the real pipeline (PostgreSQL, Neo4j, Milvus), a search
 * client in the test process, and lookups of what the catalogue says.
 */
#ifndef HSC_IT_QUERY_H
#define HSC_IT_QUERY_H

#include <ev.h>
#include <signal.h>

#include "config.h"
#include "hsc/client.h"
#include "hsc/codec.h"
#include "it_common.h"
#include "util.h"

/* The production dimension (milvus.dimension in every shipped config), so the query tests
 * search vectors of the size production searches. */
#define ITQ_DIM 384
#define ITQ_DIM_STR "384"

/* The pipeline's processes and the test's client. */
struct itq {
    struct it *t;
    pid_t ingest, enrich, index;
    struct ev_loop *loop;
    hsc_config *cfg;
    hsc_client *client;
};

/* Options every hsc-query of a test gets (dimension; a generous deadline for valgrind-free runs).
 */
#define ITQ_QUERY_ARGS "--set", "milvus.dimension=" ITQ_DIM_STR

/* Starts ingest, enrich and embed-index (groups named after tag) on an empty graph. */
static inline void itq_pipeline(struct itq *q, struct it *t, const char *tag)
{
    memset(q, 0, sizeof(*q));
    q->t = t;
    it_neo4j_reset();
    char g1[96], g2[96], g3[96];
    snprintf(g1, sizeof(g1), "ingest.group=%s-ingest", tag);
    snprintf(g2, sizeof(g2), "enrich.group=%s-enrich", tag);
    snprintf(g3, sizeof(g3), "embed_index.group=%s-index", tag);
    const char *ia[] = {"--set", g1, NULL};
    const char *ea[] = {"--set", g2, NULL};
    const char *xa[] = {"--set", g3, "--set", "milvus.dimension=" ITQ_DIM_STR, NULL};
    q->ingest = it_spawn(t, "hsc-ingest", ia);
    q->enrich = it_spawn(t, "hsc-enrich", ea);
    q->index = it_spawn(t, "hsc-embed-index", xa);
}

/* Waits until PostgreSQL, Neo4j and Milvus all hold n titles; exits if they do not. */
static inline void itq_wait_stores(struct it *t, long long n)
{
    if (it_pg_wait(t, "SELECT count(*) FROM content", n, 120000) != n ||
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", n, 240000) != n ||
        it_milvus_wait_count(t, n, 240000) != n) {
        fprintf(stderr, "the catalogue did not reach every store\n");
        exit(1);
    }
}

/*
 * Publishes `count` sample titles and waits until PostgreSQL, Neo4j and
 * Milvus all hold them; returns the path of the sample file.
 */
static inline char *itq_catalogue(struct itq *q, struct it *t, const char *count, const char *tag)
{
    itq_pipeline(q, t, tag);
    char *content = it_sample_dim(t, "content", count, count, ITQ_DIM_STR);
    if (it_publish(t, "content", content) != 0)
        exit(1);
    itq_wait_stores(t, atoll(count));
    return content;
}

/* Creates the test's search client on its own loop (after hsc-query is started). */
static inline void itq_client(struct itq *q)
{
    hsc_err err = {0};
    q->loop = ev_loop_new(0);
    q->cfg = hsc_config_new();
    if (hsc_config_set(q->cfg, "kafka.brokers", q->t->brokers, &err) ||
        hsc_config_set(q->cfg, "topics.prefix", q->t->prefix, &err) ||
        !(q->client = hsc_client_new(q->loop, q->cfg, &err))) {
        fprintf(stderr, "client: %s\n", err.msg);
        exit(1);
    }
}

/* Stops the pipeline's workers (cleanly: each must exit 0) and frees the client. */
static inline void itq_done(struct itq *q)
{
    hsc_client_free(q->client);
    if (q->loop)
        ev_loop_destroy(q->loop);
    hsc_config_free(q->cfg);
    if (q->index > 0 && it_stop(q->index, SIGTERM, 30000) != 0)
        fprintf(stderr, "embed-index did not stop cleanly\n"), exit(1);
    if (q->enrich > 0 && it_stop(q->enrich, SIGTERM, 30000) != 0)
        fprintf(stderr, "enrich did not stop cleanly\n"), exit(1);
    if (q->ingest > 0 && it_stop(q->ingest, SIGTERM, 30000) != 0)
        fprintf(stderr, "ingest did not stop cleanly\n"), exit(1);
}

/* The outcome of one search, copied out of the client's callback. */
struct itq_result {
    int done;
    int code; /* 0, or the client's error (timeout) */
    hsc_search_reply reply;
    long long round_trip_ms;
};

static inline void itq_on_reply(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct itq_result *res = arg;
    res->done = 1;
    if (!r) {
        res->code = err->code;
        return;
    }
    /* a deep copy by the codec itself */
    char *buf;
    size_t len;
    hsc_err e = {0};
    if (hsc_codec_encode_search_reply(r, &buf, &len, &e) ||
        hsc_codec_decode_search_reply(buf, len, &res->reply, &e)) {
        fprintf(stderr, "reply copy: %s\n", e.msg);
        exit(1);
    }
    free(buf);
}

/* Sends req and waits for its end; returns 0 with *out filled, or the client's error code. */
static inline int itq_search(struct itq *q, const hsc_search_request *req, int timeout_ms,
                             struct itq_result *out)
{
    memset(out, 0, sizeof(*out));
    hsc_err err = {0};
    long long t0 = it_ms();
    if (hsc_client_search(q->client, req, timeout_ms, itq_on_reply, out, NULL, &err)) {
        fprintf(stderr, "search: %s\n", err.msg);
        exit(1);
    }
    while (!out->done)
        ev_run(q->loop, EVRUN_ONCE);
    out->round_trip_ms = it_ms() - t0;
    return out->code;
}

/* Like itq_search, but retries (up to 60 s) until the reply is ok: for warm-up after start. */
static inline void itq_search_ok(struct itq *q, const hsc_search_request *req,
                                 struct itq_result *out)
{
    long long end = it_ms() + 60000;
    for (;;) {
        if (itq_search(q, req, 5000, out) == 0 && out->reply.ok && !out->reply.degraded.n)
            return;
        if (it_ms() > end) {
            fprintf(stderr, "no clean ok reply: code %d, %s %s\n", out->code,
                    out->reply.error_code ? out->reply.error_code : "",
                    out->reply.error_message ? out->reply.error_message : "");
            exit(1);
        }
        hsc_search_reply_clear(&out->reply);
        usleep(200000);
    }
}

/* The stored embedding of a title, from PostgreSQL; returns a malloc'd array of ITQ_DIM floats. */
static inline float *itq_embedding(struct it *t, const char *id)
{
    const char *params[1] = {id};
    PGresult *r = PQexecParams(t->pg, "SELECT embedding FROM content WHERE id = $1", 1, NULL,
                               params, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQgetlength(r, 0, 0) != 4 * ITQ_DIM) {
        fprintf(stderr, "no embedding for %s\n", id);
        exit(1);
    }
    float *v = malloc(sizeof(float) * ITQ_DIM);
    memcpy(v, PQgetvalue(r, 0, 0), sizeof(float) * ITQ_DIM); /* little-endian host */
    PQclear(r);
    return v;
}

/* A request with a title's embedding (and nothing else). */
static inline void itq_request_like(struct it *t, const char *id, hsc_search_request *req)
{
    hsc_search_request_init(req);
    req->embedding = itq_embedding(t, id);
    req->dim = ITQ_DIM;
}

/* True if title id has genre g in the catalogue. */
static inline int itq_has_genre(struct it *t, const char *id, const char *g)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM content WHERE id = '%s' AND '%s' = ANY(genres)", id, g);
    return it_pg_int(t, sql) == 1;
}

/* The first title (by id) whose genres are exactly {g}, skipping `skip` of them. */
static inline char *itq_title_only(struct it *t, const char *g, int skip)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM content WHERE genres = ARRAY['%s'] ORDER BY id OFFSET %d LIMIT 1", g,
             skip);
    char *id = it_pg_text(t, sql);
    if (!id) {
        fprintf(stderr, "no title with genres {%s}\n", g);
        exit(1);
    }
    return id;
}

#endif
