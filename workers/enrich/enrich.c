/*
 * hsc-enrich's stage. A batch is one Cypher statement, so one transaction:
 * deletes, then upserts of titles and their tag and editorial edges, then
 * SIMILAR_TO: each written title gets its list from scratch, the titles it
 * scores with merge it into theirs (the score is symmetric), and titles that
 * lost an edge (to a deleted title, or to one whose score fell) are
 * recomputed in full.
 * Edges are replaced, never accumulated, so a replay leaves the graph as it
 * was. Only the newest event per id in a batch is written.
 *
 * SIMILAR_TO(c -> o).score is the weighted Jaccard similarity of the two
 * titles' genres, themes and moods: shared weight / union weight, each tag
 * weighing enrich.weight_genre, _theme or _mood. Each title keeps its top
 * enrich.similar_top_n neighbours scoring at least enrich.similar_min.
 */
#include "enrich.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "feed.h"
#include "hsc/codec.h"
#include "json_list.h"
#include "log.h"
#include "pgload.h"
#include "normalize.h"
#include "util.h"

/*
 * Deletes, then titles and their tag and editorial edges (an older version
 * than the stored one changes nothing), then the SIMILAR_TO changes the
 * index computed: single edges deleted, whole lists replaced, single edges
 * added or re-scored. An edge is written only between titles that exist and
 * are not stubs; the owner of a title that did not exist yet writes the
 * edges to it again when it writes the title (simindex_mark_written).
 */
const char ENRICH_WRITE_CYPHER[] =
    "CALL {\n"
    "  UNWIND $deletes AS did\n"
    "  MATCH (c:Content {id: did})\n"
    "  DETACH DELETE c\n"
    "}\n"
    "CALL {\n"
    "  UNWIND $rows AS r\n"
    "  MERGE (c:Content {id: r.id})\n"
    "  WITH c, r WHERE c.version IS NULL OR c.version <= r.version\n"
    "  SET c.title = r.title, c.year = r.year, c.language = r.language,\n"
    "      c.maturity = r.maturity, c.version = r.version, c.attr_w = r.attr_w, c.stub = null\n"
    "  WITH c, r\n"
    "  CALL { WITH c MATCH (c)-[old:BELONGS_TO|HAS_THEME|HAS_MOOD|RELATED_TO]->() DELETE old }\n"
    "  CALL { WITH c, r UNWIND r.genres AS g MERGE (x:Genre {name: g})\n"
    "         CREATE (c)-[:BELONGS_TO]->(x) }\n"
    "  CALL { WITH c, r UNWIND r.themes AS t MERGE (x:Theme {name: t})\n"
    "         CREATE (c)-[:HAS_THEME]->(x) }\n"
    "  CALL { WITH c, r UNWIND r.moods AS m MERGE (x:Mood {name: m})\n"
    "         CREATE (c)-[:HAS_MOOD]->(x) }\n"
    /* An editorial link to a title not seen yet makes a stub that its own event fills in. */
    "  CALL { WITH c, r UNWIND r.related AS rid MERGE (o:Content {id: rid})\n"
    "         ON CREATE SET o.stub = true\n"
    "         CREATE (c)-[:RELATED_TO]->(o) }\n"
    "}\n"
    "CALL {\n"
    "  UNWIND $sim_del AS d\n"
    "  MATCH (:Content {id: d[0]})-[s:SIMILAR_TO]->(:Content {id: d[1]})\n"
    "  DELETE s\n"
    "}\n"
    "CALL {\n"
    "  UNWIND $sim_replace AS rp\n"
    "  MATCH (c:Content {id: rp.id}) WHERE c.stub IS NULL\n"
    "  CALL { WITH c MATCH (c)-[s:SIMILAR_TO]->() DELETE s }\n"
    "  CALL { WITH c, rp UNWIND rp.to AS e MATCH (o:Content {id: e[0]}) WHERE o.stub IS NULL\n"
    "         CREATE (c)-[:SIMILAR_TO {score: e[1]}]->(o) }\n"
    "}\n"
    "CALL {\n"
    "  UNWIND $sim_add AS e\n"
    "  MATCH (a:Content {id: e[0]}) WHERE a.stub IS NULL\n"
    "  MATCH (b:Content {id: e[1]}) WHERE b.stub IS NULL\n"
    "  MERGE (a)-[s:SIMILAR_TO]->(b) SET s.score = e[2]\n"
    "}\n"
    "RETURN size($rows) AS written, size($sim_replace) AS replaced, "
    "size($sim_add) AS added, size($sim_del) AS removed";

json_t *enrich_params(hsc_content_event *const *evs, const int *winner, size_t n,
                      const struct enrich_weights *w)
{
    json_t *rows = json_array(), *deletes = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!winner[i])
            continue;
        const hsc_content_event *e = evs[i];
        if (e->op == HSC_OP_DELETE) {
            json_array_append_new(deletes, json_string(e->id));
            continue;
        }
        json_t *r = json_object();
        json_object_set_new(r, "id", json_string(e->id));
        json_object_set_new(r, "version", json_integer(e->version));
        json_object_set_new(r, "title", json_string(e->title ? e->title : ""));
        json_object_set_new(r, "year",
                            (e->has & HSC_HAS_YEAR) ? json_integer(e->year) : json_null());
        json_object_set_new(r, "language", e->language ? json_string(e->language) : json_null());
        json_object_set_new(r, "maturity",
                            (e->has & HSC_HAS_MATURITY) ? json_integer(e->maturity) : json_null());
        json_object_set_new(r, "genres", hsc_json_strlist(&e->genres));
        json_object_set_new(r, "themes", hsc_json_strlist(&e->themes));
        json_object_set_new(r, "moods", hsc_json_strlist(&e->moods));
        json_object_set_new(r, "related", hsc_json_strlist(&e->related));
        json_object_set_new(r, "attr_w", json_real(enrich_attr_weight(e, w)));
        json_array_append_new(rows, r);
    }
    return json_pack("{s:o, s:o, s:f, s:f, s:f, s:f, s:i, s:i, s:[], s:[], s:[]}", "rows", rows,
                     "deletes", deletes, "wg", w->genre, "wt", w->theme, "wm", w->mood, "min",
                     w->min_score, "top", w->top_n, "fanout", w->fanout > 0 ? w->fanout : 2000,
                     "sim_del", "sim_add", "sim_replace");
}

/* ---------------- the similarity changes to write ---------------- */

/* Moves the index's change set into the pending one (a later change of a pair wins). */
static int take_pending(struct enrich_ctx *ctx)
{
    struct simindex_changes ch;
    int rc = simindex_take(ctx->ix, &ch);
    if (rc)
        return rc;
    for (size_t i = 0; i < ch.nreplace; i++)
        json_object_set_new(ctx->pend_replace, ch.replace[i], json_true());
    hsc_buf key = {0};
    for (size_t i = 0; i < ch.nedges && !rc; i++) {
        const struct simindex_edge *e = &ch.edges[i];
        key.len = 0;
        rc = hsc_buf_printf(&key, "%s%c%s", e->src, '\x1f', e->dst);
        json_t *v = e->score < 0 ? json_pack("[s,s]", e->src, e->dst)
                                 : json_pack("[s,s,f]", e->src, e->dst, e->score);
        if (!rc && (!v || json_object_set_new(ctx->pend_edges, key.data, v)))
            rc = HSC_ENOMEM;
    }
    hsc_buf_free(&key);
    return rc;
}

/* Puts the changes of edges/replace into params as sim_del, sim_add and sim_replace. */
static void sim_params(struct enrich_ctx *ctx, json_t *params, json_t *edges, json_t *replace)
{
    json_t *del = json_array(), *add = json_array(), *rep = json_array();
    const char *k;
    json_t *v;
    json_object_foreach (edges, k, v)
        json_array_append(json_array_size(v) == 2 ? del : add, v);
    int top = ctx->w.top_n > 0 ? ctx->w.top_n : 1;
    struct simindex_neighbour *nb = malloc((size_t)top * sizeof(*nb));
    json_object_foreach (replace, k, v) {
        size_t n = nb ? simindex_list(ctx->ix, k, nb, (size_t)top) : 0;
        json_t *to = json_array();
        for (size_t i = 0; i < n && i < (size_t)top; i++)
            json_array_append_new(to, json_pack("[s,f]", nb[i].id, nb[i].score));
        json_array_append_new(rep, json_pack("{s:s, s:o}", "id", k, "to", to));
    }
    free(nb);
    json_object_set_new(params, "sim_del", del);
    json_object_set_new(params, "sim_add", add);
    json_object_set_new(params, "sim_replace", rep);
}

/* Puts changes that were not written back under the pending ones (which are newer). */
static void restore_pending(struct enrich_ctx *ctx, json_t *edges, json_t *replace)
{
    json_object_update_missing(ctx->pend_edges, edges);
    json_object_update_missing(ctx->pend_replace, replace);
}

/* Applies one event to the index; the owner's (own) writes also re-send edges to the title. */
static int index_apply(struct enrich_ctx *ctx, const hsc_content_event *ev, int own)
{
    int rc = ev->op == HSC_OP_DELETE ? simindex_delete(ctx->ix, ev->id, ev->version)
                                     : simindex_upsert(ctx->ix, ev->id, ev->version, &ev->genres,
                                                       &ev->themes, &ev->moods);
    if (rc >= 0 && own && ev->op != HSC_OP_DELETE)
        rc = simindex_mark_written(ctx->ix, ev->id);
    return rc < 0 ? rc : HSC_OK;
}

/* ---------------- stage operations ---------------- */

static int en_decode(void *vctx, const rd_kafka_message_t *rkm, void **out, hsc_err *err)
{
    struct enrich_ctx *ctx = vctx;
    hsc_content_event *ev;
    int rc = hsc_content_from_message(rkm->payload, rkm->len, ctx->max_message_bytes,
                                      "enrich.max_message_bytes", &ev, err);
    if (rc)
        return rc;
    ctx->derived_tags += enrich_extract(&ctx->vocab, ev);
    *out = ev;
    return HSC_OK;
}

static void en_free(void *vctx, void *decoded)
{
    hsc_content_free(decoded);
    (void)vctx;
}

/* One statement: a batch's (constraints once, the write, then the records) or a flush. */
struct job {
    struct hsc_stage_job base; /* base.b is NULL for a flush of changes seen on the feed */
    struct enrich_ctx *ctx;
    hsc_content_event **evs;
    int *winner;
    char **constraints;
    size_t nconstraints, next_constraint;
    json_t *edges, *replace; /* the changes this statement writes */
};

static void start_job(struct job *j);

/* Any code but HSC_OK and HSC_EINVAL makes the stage keep the batch and retry it. */
static void job_end(struct job *j, int code, const hsc_err *err)
{
    struct enrich_ctx *ctx = j->ctx;
    int flush = !j->base.b;
    if (j->edges) {
        if (code)
            restore_pending(ctx, j->edges, j->replace);
        json_decref(j->edges);
        json_decref(j->replace);
    }
    for (size_t i = 0; i < j->nconstraints; i++)
        free(j->constraints[i]);
    free(j->constraints);
    ctx->busy = 0;
    if (flush && code)
        ctx->flush_failures++;
    hsc_stage_job_end(&j->base, code, err);
    if (!ctx->busy && ctx->waiting) {
        struct job *w = ctx->waiting;
        ctx->waiting = NULL;
        start_job(w);
    }
}

static void on_written(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_end(j, err->code, err);
        return;
    }
    int rc = HSC_OK;
    json_t *row = json_array_get(res->rows, 0);
    j->ctx->sim_replaced += (unsigned long long)json_integer_value(json_array_get(row, 1));
    j->ctx->sim_added += (unsigned long long)json_integer_value(json_array_get(row, 2));
    j->ctx->sim_removed += (unsigned long long)json_integer_value(json_array_get(row, 3));
    for (size_t i = 0; i < j->base.n && !rc; i++) {
        const hsc_content_event *ev = j->evs[i];
        if (j->winner[i] && ev->op == HSC_OP_DELETE)
            j->ctx->deleted++;
        else if (j->winner[i])
            j->ctx->written++;
        char *buf;
        size_t len;
        hsc_err e = {0};
        rc = hsc_codec_encode_content(ev, &buf, &len, &e);
        if (!rc) {
            rc = hsc_stage_emit(j->base.b, j->ctx->enriched_topic, ev->id, strlen(ev->id), buf, len,
                                NULL);
            free(buf);
        }
    }
    hsc_err e;
    if (rc)
        hsc_err_set(&e, rc, "enrich: cannot queue the enriched records");
    job_end(j, rc, rc ? &e : NULL);
}

static void write_batch(struct job *j)
{
    struct enrich_ctx *ctx = j->ctx;
    hsc_err err = {0};
    int rc = HSC_OK;
    for (size_t i = 0; i < j->base.n && !rc; i++)
        if (j->winner[i])
            rc = index_apply(ctx, j->evs[i], 1);
    if (!rc)
        rc = take_pending(ctx);
    if (rc) {
        hsc_err_set(&err, rc, "enrich: similarity index: out of memory");
        job_end(j, rc, &err);
        return;
    }
    json_t *params = enrich_params(j->evs, j->winner, j->base.n, &ctx->w);
    /* This statement takes the pending changes; new ones gather for the next. */
    j->edges = ctx->pend_edges;
    j->replace = ctx->pend_replace;
    ctx->pend_edges = json_object();
    ctx->pend_replace = json_object();
    sim_params(ctx, params, j->edges, j->replace);
    if (hsc_neo4j_run(ctx->neo4j, ENRICH_WRITE_CYPHER, params, on_written, j, &err))
        job_end(j, err.code, &err);
}

static void next_constraint(struct job *j);

static void on_constraint(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_end(j, err->code == HSC_EINVAL ? HSC_ECONFIG : err->code, err);
        return;
    }
    next_constraint(j);
}

static void next_constraint(struct job *j)
{
    if (j->next_constraint >= j->nconstraints) {
        j->ctx->constraints_done = 1;
        write_batch(j);
        return;
    }
    hsc_err err = {0};
    if (hsc_neo4j_run(j->ctx->neo4j, j->constraints[j->next_constraint++], NULL, on_constraint, j,
                      &err))
        job_end(j, err.code, &err);
}

static void start_job(struct job *j)
{
    struct enrich_ctx *ctx = j->ctx;
    ctx->busy = 1;
    if (!ctx->constraints_done) {
        hsc_err err = {0};
        char dir[1100];
        snprintf(dir, sizeof(dir), "%s/neo4j", ctx->schemas_dir);
        if (hsc_neo4j_load_statements(dir, &j->constraints, &j->nconstraints, &err))
            hsc_log_warn("graph constraints not applied", "error", err.msg, NULL);
        next_constraint(j);
        return;
    }
    write_batch(j);
}

static int en_process(void *vctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                      hsc_stage_done_fn done)
{
    struct enrich_ctx *ctx = vctx;
    struct job *j;
    const size_t size[] = {sizeof(*j->evs), sizeof(*j->winner)};
    void *a[2];
    if (!(j = hsc_stage_job_new(sizeof(*j), b, done, n, 2, size, a)))
        return HSC_ENOMEM;
    *j = (struct job){.base = j->base, .ctx = ctx, .evs = a[0], .winner = a[1]};
    for (size_t i = 0; i < n; i++)
        j->evs[i] = msgs[i]->decoded;
    hsc_content_pick_winners((const hsc_content_event *const *)j->evs, n, j->winner);
    /* One statement at a time, so this process's writes land in the order it made them. */
    if (ctx->busy)
        ctx->waiting = j;
    else
        start_job(j);
    return HSC_OK;
}

const struct hsc_stage_ops enrich_ops = {
    .decode = en_decode,
    .free_decoded = en_free,
    .process = en_process,
};

/* Writes changes seen on the feed when no batch is coming to carry them. */
static void on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct enrich_ctx *ctx = w->data;
    (void)loop;
    (void)revents;
    if (ctx->busy)
        return;
    if (take_pending(ctx) ||
        (!json_object_size(ctx->pend_edges) && !json_object_size(ctx->pend_replace)))
        return;
    struct job *j = hsc_stage_job_new(sizeof(*j), NULL, NULL, 0, 0, NULL, NULL);
    if (!j)
        return;
    j->ctx = ctx;
    start_job(j);
}

/* A title seen on the feed (any partition): into the index, not written. */
static void on_feed(void *arg, const rd_kafka_message_t *rkm)
{
    struct enrich_ctx *ctx = arg;
    hsc_content_event *ev;
    hsc_err err = {0};
    if (hsc_content_from_message(rkm->payload, rkm->len, ctx->max_message_bytes,
                                 "enrich.max_message_bytes", &ev, &err))
        return; /* the stage sends it to the DLQ */
    enrich_extract(&ctx->vocab, ev);
    if (index_apply(ctx, ev, 0))
        hsc_log_error("similarity index: out of memory", "id", ev->id, NULL);
    hsc_content_free(ev);
}

/* The index's weights, from the stage's. */
static struct simindex_weights index_weights(const struct enrich_ctx *ctx)
{
    return (struct simindex_weights){.genre = ctx->w.genre,
                                     .theme = ctx->w.theme,
                                     .mood = ctx->w.mood,
                                     .min_score = ctx->w.min_score,
                                     .top_n = ctx->w.top_n,
                                     .fanout = ctx->w.fanout};
}

/* One try at the feed's start offsets and the catalogue load; on failure the
 * feed is gone and the index is empty again, so a retry starts from scratch. */
static int index_load(struct enrich_ctx *ctx, const hsc_config *cfg, size_t *rows, hsc_err *err)
{
    ctx->feed = enrich_feed_new(ctx->loop, cfg, ctx->input_topic, on_feed, ctx, err);
    int rc = ctx->feed
                 ? enrich_pgload(hsc_config_str(cfg, "pg.url"), &ctx->vocab, ctx->ix, rows, err)
                 : (err->code ? err->code : HSC_EIO);
    if (!rc)
        return HSC_OK;
    enrich_feed_free(ctx->feed);
    ctx->feed = NULL;
    simindex_free(ctx->ix);
    struct simindex_weights sw = index_weights(ctx);
    hsc_err e2 = {0};
    if (!(ctx->ix = simindex_new(&sw, &e2))) {
        *err = e2;
        return e2.code;
    }
    return rc;
}

int enrich_index_start(struct enrich_ctx *ctx, const hsc_config *cfg, hsc_err *err)
{
    /* A worker started while Kafka or PostgreSQL is out (a restart, a rolling
     * deploy) waits for them here, as the stage's consumer does, instead of
     * exiting: a supervisor restarting it in a loop would only add load. The loop
     * has not started yet, so a SIGTERM meanwhile ends the process as usual. */
    hsc_backoff b;
    hsc_backoff_init(&b, hsc_config_int(cfg, "backoff.initial_ms"),
                     hsc_config_int(cfg, "backoff.max_ms"), (uint64_t)hsc_mono_us() | 1);
    int64_t t0 = hsc_mono_us();
    size_t rows = 0;
    unsigned tries = 1;
    int rc;
    while ((rc = index_load(ctx, cfg, &rows, err)) == HSC_ETRANSIENT) {
        if (tries++ == 1)
            hsc_log_warn("similarity index: waiting for kafka and postgresql", "error", err->msg,
                         NULL);
        int64_t ms = hsc_backoff_next(&b);
        usleep((useconds_t)(ms * 1000));
        memset(err, 0, sizeof(*err));
    }
    if (rc)
        return rc;
    if (tries > 1) {
        char n[24];
        snprintf(n, sizeof(n), "%u", tries);
        hsc_log_info("similarity index: sources reachable again", "attempts", n, NULL);
    }
    struct simindex_stats st;
    simindex_get_stats(ctx->ix, &st);
    char n[24], secs[24], bpt[24];
    snprintf(n, sizeof(n), "%zu", st.titles);
    snprintf(secs, sizeof(secs), "%.1f", (double)(hsc_mono_us() - t0) / 1e6);
    snprintf(bpt, sizeof(bpt), "%zu", st.titles ? st.bytes / st.titles : 0);
    hsc_log_info("similarity index loaded from postgresql", "titles", n, "seconds", secs,
                 "bytes_per_title", bpt, NULL);
    if ((rc = enrich_feed_start(ctx->feed, err)))
        return rc;
    ev_timer_init(&ctx->flush, on_flush, 0.2, 0.2);
    ctx->flush.data = ctx;
    ev_timer_start(ctx->loop, &ctx->flush);
    return HSC_OK;
}

/* ---------------- setup ---------------- */

int enrich_ctx_init(struct enrich_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                    hsc_err *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->loop = loop;
    HSC_STRCPY(ctx->input_topic, hsc_config_topic(cfg, "topics.content_ingested"));
    HSC_STRCPY(ctx->enriched_topic, hsc_config_topic(cfg, "topics.content_enriched"));
    HSC_STRCPY(ctx->schemas_dir, hsc_config_str(cfg, "paths.schemas"));
    ctx->max_message_bytes = (size_t)hsc_config_int(cfg, "enrich.max_message_bytes");
    ctx->w = (struct enrich_weights){
        .genre = hsc_config_double(cfg, "enrich.weight_genre"),
        .theme = hsc_config_double(cfg, "enrich.weight_theme"),
        .mood = hsc_config_double(cfg, "enrich.weight_mood"),
        .min_score = hsc_config_double(cfg, "enrich.similar_min"),
        .top_n = (int)hsc_config_int(cfg, "enrich.similar_top_n"),
        .fanout = (int)hsc_config_int(cfg, "enrich.similar_fanout"),
    };
    char vocab[1100];
    const char *vp = hsc_config_str(cfg, "enrich.vocabulary");
    if (!*vp) {
        snprintf(vocab, sizeof(vocab), "%s/vocabulary.tsv", ctx->schemas_dir);
        vp = vocab;
    }
    if (enrich_vocab_load(vp, &ctx->vocab, err))
        return err->code;
    struct simindex_weights sw = index_weights(ctx);
    ctx->pend_edges = json_object();
    ctx->pend_replace = json_object();
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(cfg, &ns);
    if (!(ctx->ix = simindex_new(&sw, err)) || !(ctx->http = hsc_http_new(loop, err)) ||
        !(ctx->neo4j = hsc_neo4j_new(loop, ctx->http, &ns, err))) {
        enrich_ctx_destroy(ctx);
        return err->code;
    }
    return HSC_OK;
}

void enrich_ctx_destroy(struct enrich_ctx *ctx)
{
    if (ctx->loop)
        ev_timer_stop(ctx->loop, &ctx->flush);
    enrich_feed_free(ctx->feed);
    hsc_http_free(ctx->http); /* cancels the statement in flight */
    hsc_neo4j_free(ctx->neo4j);
    enrich_vocab_free(&ctx->vocab);
    simindex_free(ctx->ix);
    json_decref(ctx->pend_edges);
    json_decref(ctx->pend_replace);
    ctx->feed = NULL;
    ctx->ix = NULL;
    ctx->pend_edges = ctx->pend_replace = NULL;
    ctx->http = NULL;
    ctx->neo4j = NULL;
}
