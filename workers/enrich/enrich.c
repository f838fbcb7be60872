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

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "log.h"
#include "normalize.h"
#include "util.h"

/*
 * The scores of c against every title sharing a tag with it, at least $min,
 * as `cands` (a list of {o, score}). Similarity is symmetric, so the same
 * list tells which other titles might now want c in their own top list.
 */
#define CANDIDATES                                                                                 \
    "    MATCH (c)-[r1:BELONGS_TO|HAS_THEME|HAS_MOOD]->(a)\n"                                      \
    "    CALL { WITH c, a MATCH (a)<-[:BELONGS_TO|HAS_THEME|HAS_MOOD]-(o:Content)\n"               \
    "           WHERE o <> c AND o.stub IS NULL RETURN o LIMIT $fanout }\n"                        \
    "    WITH c, o, sum(CASE type(r1) WHEN 'BELONGS_TO' THEN $wg WHEN 'HAS_THEME' THEN $wt\n"      \
    "                   ELSE $wm END) AS shared\n"                                                 \
    "    WITH c, o, shared / (c.attr_w + o.attr_w - shared) AS score\n"                            \
    "    WHERE score >= $min\n"

/* Records on c the score a newcomer must reach to enter its list (a pruning hint). */
#define SET_FLOOR(N)                                                                               \
    "CALL { WITH " N " OPTIONAL MATCH (" N ")-[e:SIMILAR_TO]->()\n"                                \
    "       WITH " N ", count(e) AS k, min(e.score) AS low\n"                                      \
    "       SET " N ".sim_floor = CASE WHEN k >= $top THEN low ELSE $min END }\n"

/* Replaces the SIMILAR_TO list of every title whose id is in the list named LIST. */
#define RECOMPUTE(LIST)                                                                            \
    "CALL {\n"                                                                                     \
    "  WITH " LIST "\n"                                                                            \
    "  UNWIND " LIST " AS sid\n"                                                                   \
    "  MATCH (c:Content {id: sid}) WHERE c.stub IS NULL\n"                                         \
    "  CALL { WITH c MATCH (c)-[s:SIMILAR_TO]->() DELETE s }\n"                                    \
    "  CALL {\n"                                                                                   \
    "    WITH c\n" CANDIDATES "    WITH c, o, score ORDER BY score DESC, o.id LIMIT $top\n"        \
    "    CREATE (c)-[:SIMILAR_TO {score: score}]->(o)\n"                                           \
    "  }\n"                                                                                        \
    "  " SET_FLOOR("c") "}\n"

/*
 * Cypher runs clause by clause over all rows, so each step below touches
 * only edges no other row of the same step touches: a title's own out-edges.
 */
const char ENRICH_WRITE_CYPHER[] =
    /* Titles that pointed at a deleted title lose an edge: they are recomputed. */
    "CALL {\n"
    "  UNWIND $deletes AS did\n"
    "  MATCH (:Content {id: did})<-[:SIMILAR_TO]-(n:Content)\n"
    "  RETURN collect(DISTINCT n.id) AS orphaned\n"
    "}\n"
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
    "WITH orphaned, [r IN $rows | r.id] AS ups\n"
    /*
     * For each written title: its best $top, and the titles that might take it
     * into their lists (scoring at least their floor), from the new tags.
     */
    "CALL {\n"
    "  WITH ups\n"
    "  UNWIND ups AS uid\n"
    "  MATCH (c:Content {id: uid}) WHERE c.stub IS NULL\n"
    "  CALL {\n"
    "    WITH c, ups\n" CANDIDATES "    WITH c, o, score ORDER BY score DESC, o.id\n"
    "    WITH c, collect({o: o, score: score}) AS all\n"
    "    RETURN all[..$top] AS best,\n"
    "           [x IN all WHERE NOT x.o.id IN [r IN $rows | r.id] AND x.score >= "
    "coalesce(x.o.sim_floor, $min)\n"
    "            | {o: x.o, c: c, score: x.score}] AS offered\n"
    "  }\n"
    "  RETURN collect({c: c, best: best}) AS bests,\n"
    "         collect(offered) AS offered_lists\n"
    "}\n"
    /* Who pointed at a written title, and at what score. */
    "CALL {\n"
    "  WITH ups\n"
    "  UNWIND ups AS uid\n"
    "  MATCH (:Content {id: uid})<-[e:SIMILAR_TO]-(o:Content) WHERE NOT o.id IN ups\n"
    "  RETURN collect({o: o, t: uid, s: e.score, e: e}) AS pointers\n"
    "}\n"
    /* The written titles' own lists, from scratch. */
    "CALL { WITH ups UNWIND ups AS uid MATCH (:Content {id: uid})-[s:SIMILAR_TO]->() DELETE s }\n"
    "CALL {\n"
    "  WITH bests\n"
    "  UNWIND bests AS b\n"
    "  WITH b.c AS c, b.best AS best\n"
    "  CALL { WITH c, best UNWIND best AS x WITH c, x.o AS o, x.score AS score\n"
    "         CREATE (c)-[:SIMILAR_TO {score: score}]->(o) }\n"
    "  " SET_FLOOR(
        "c") "}\n"
             /*
              * Every other title o that scores with a written title or pointed at one. If
              * one of its edges to a written title lost score (or its target no longer
              * qualifies), a title o does not link to may now belong in its list: o is
              * recomputed in full below. Otherwise its list is merged: its edges to
              * unchanged titles plus the written titles it scores with, best $top kept.
              */
             "CALL {\n"
             "  WITH offered_lists, pointers\n"
             "  CALL {\n"
             "    WITH offered_lists\n"
             "    UNWIND offered_lists AS l\n"
             "    UNWIND l AS p\n"
             "    RETURN p.o AS o, p.c AS c, p.score AS score, null AS t, null AS s, null AS e\n"
             "    UNION ALL\n"
             "    WITH pointers\n"
             "    UNWIND pointers AS x\n"
             "    RETURN x.o AS o, null AS c, null AS score, x.t AS t, x.s AS s, x.e AS e\n"
             "  }\n"
             "  WITH o, collect(CASE WHEN c IS NOT NULL THEN {c: c, score: score} END) AS mine,\n"
             "       collect(CASE WHEN t IS NOT NULL THEN {t: t, s: s, e: e} END) AS prev\n"
             "  WITH o, mine, prev, any(pv IN prev WHERE NOT any(m IN mine\n"
             "       WHERE m.c.id = pv.t AND m.score >= pv.s)) AS weakened\n"
             "  CALL {\n"
             "    WITH o, mine, prev, weakened\n"
             "    WITH o, mine, prev WHERE NOT weakened\n"
             "    CALL { WITH prev UNWIND prev AS pv WITH pv.e AS e DELETE e }\n"
             "    OPTIONAL MATCH (o)-[e:SIMILAR_TO]->(x:Content)\n"
             "    WITH o, mine, collect({id: x.id, score: e.score, e: e, n: null}) AS kept\n"
             "    UNWIND [k IN kept WHERE k.e IS NOT NULL] +\n"
             "           [m IN mine | {id: m.c.id, score: m.score, e: null, n: m.c}] AS a\n"
             "    WITH o, a ORDER BY a.score DESC, a.id\n"
             "    WITH o, collect(a) AS ranked\n"
             "    CALL { WITH ranked UNWIND ranked[$top..] AS d WITH d.e AS e WHERE e IS NOT NULL\n"
             "           DELETE e }\n"
             "    CALL { WITH o, ranked UNWIND ranked[..$top] AS t WITH o, t WHERE t.e IS NULL\n"
             "           WITH o, t.n AS n, t.score AS score\n"
             "           CREATE (o)-[:SIMILAR_TO {score: score}]->(n) }\n"
             "    " SET_FLOOR(
                 "o") "  }\n"
                      "  RETURN collect(CASE WHEN weakened THEN o.id END) AS weakened\n"
                      "}\n"
                      "WITH ups, reduce(acc = [], x IN orphaned + weakened |\n"
                      "       CASE WHEN x IN acc OR x IN ups THEN acc ELSE acc + x END) AS "
                      "neighbours\n" RECOMPUTE("neighbours") "RETURN size(ups) AS written, "
                                                             "size(neighbours) AS recomputed";

/* ---------------- vocabulary and extraction ---------------- */

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int enrich_vocab_load(const char *path, struct enrich_vocab *v, hsc_err *err)
{
    memset(v, 0, sizeof(*v));
    FILE *f = fopen(path, "r");
    if (!f)
        return hsc_err_set(err, HSC_ECONFIG, "enrich.vocabulary: cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = HSC_OK;
    while (!rc && getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *kind = line, *name = strchr(kind, '\t'), *kws = name ? strchr(name + 1, '\t') : NULL;
        if (!kws) {
            rc = hsc_err_set(err, HSC_ECONFIG, "%s:%d: expected kind<TAB>name<TAB>keywords", path,
                             lineno);
            break;
        }
        *name++ = '\0';
        *kws++ = '\0';
        if (strcmp(kind, "theme") && strcmp(kind, "mood")) {
            rc = hsc_err_set(err, HSC_ECONFIG, "%s:%d: kind '%s' is not theme or mood", path,
                             lineno, kind);
            break;
        }
        struct enrich_term *nt = realloc(v->terms, (v->n + 1) * sizeof(*nt));
        if (!nt) {
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            break;
        }
        v->terms = nt;
        struct enrich_term *t = &v->terms[v->n++];
        memset(t, 0, sizeof(*t));
        t->is_mood = !strcmp(kind, "mood");
        t->name = strdup(name);
        hsc_normalize_tag(t->name);
        for (char *save = NULL, *k = strtok_r(kws, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            hsc_trim(k);
            if (!*k)
                continue;
            char **nk = realloc(t->keywords, (t->nkeywords + 1) * sizeof(char *));
            if (!nk)
                break;
            t->keywords = nk;
            t->keywords[t->nkeywords] = strdup(k);
            lower(t->keywords[t->nkeywords++]);
        }
    }
    free(line);
    fclose(f);
    if (rc)
        enrich_vocab_free(v);
    return rc;
}

void enrich_vocab_free(struct enrich_vocab *v)
{
    for (size_t i = 0; i < v->n; i++) {
        for (size_t k = 0; k < v->terms[i].nkeywords; k++)
            free(v->terms[i].keywords[k]);
        free(v->terms[i].keywords);
        free(v->terms[i].name);
    }
    free(v->terms);
    memset(v, 0, sizeof(*v));
}

/* True if word occurs in text (both lower case) with no letter or digit either side. */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        int before = p == text || !isalnum((unsigned char)p[-1]);
        int after = !isalnum((unsigned char)p[wl]);
        if (before && after)
            return 1;
    }
    return 0;
}

static int list_has(const hsc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 1;
    return 0;
}

size_t enrich_extract(const struct enrich_vocab *v, hsc_content_event *ev)
{
    if (ev->op == HSC_OP_DELETE)
        return 0;
    hsc_buf text = {0};
    hsc_buf_printf(&text, "%s %s", ev->title ? ev->title : "",
                   ev->description ? ev->description : "");
    if (hsc_buf_append(&text, "", 1)) {
        hsc_buf_free(&text);
        return 0;
    }
    lower(text.data);
    size_t added = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct enrich_term *t = &v->terms[i];
        hsc_strlist *l = t->is_mood ? &ev->moods : &ev->themes;
        if (list_has(l, t->name) || l->n >= HSC_MAX_LIST_LEN)
            continue;
        for (size_t k = 0; k < t->nkeywords; k++) {
            if (has_word(text.data, t->keywords[k])) {
                if (!hsc_strlist_push(l, t->name, strlen(t->name)))
                    added++;
                break;
            }
        }
    }
    hsc_buf_free(&text);
    return added;
}

static double attr_weight(const hsc_content_event *e, const struct enrich_weights *w)
{
    return (double)e->genres.n * w->genre + (double)e->themes.n * w->theme +
           (double)e->moods.n * w->mood;
}

double enrich_similarity(const hsc_content_event *a, const hsc_content_event *b,
                         const struct enrich_weights *w)
{
    double shared = 0;
    for (size_t i = 0; i < a->genres.n; i++)
        shared += list_has(&b->genres, a->genres.v[i]) ? w->genre : 0;
    for (size_t i = 0; i < a->themes.n; i++)
        shared += list_has(&b->themes, a->themes.v[i]) ? w->theme : 0;
    for (size_t i = 0; i < a->moods.n; i++)
        shared += list_has(&b->moods, a->moods.v[i]) ? w->mood : 0;
    double uni = attr_weight(a, w) + attr_weight(b, w) - shared;
    return uni > 0 ? shared / uni : 0;
}

static json_t *jlist(const hsc_strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

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
        json_object_set_new(r, "genres", jlist(&e->genres));
        json_object_set_new(r, "themes", jlist(&e->themes));
        json_object_set_new(r, "moods", jlist(&e->moods));
        json_object_set_new(r, "related", jlist(&e->related));
        json_object_set_new(r, "attr_w", json_real(attr_weight(e, w)));
        json_array_append_new(rows, r);
    }
    return json_pack("{s:o, s:o, s:f, s:f, s:f, s:f, s:i, s:i}", "rows", rows, "deletes", deletes,
                     "wg", w->genre, "wt", w->theme, "wm", w->mood, "min", w->min_score, "top",
                     w->top_n, "fanout", w->fanout > 0 ? w->fanout : 2000);
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

/* One process() call: constraints (once), the write, then the records. */
struct job {
    struct enrich_ctx *ctx;
    hsc_stage_batch *b;
    hsc_stage_done_fn done;
    hsc_content_event **evs;
    int *winner;
    size_t n;
    char **constraints;
    size_t nconstraints, next_constraint;
};

/* Any code but HSC_OK and HSC_EINVAL makes the stage keep the batch and retry it. */
static void job_end(struct job *j, int code, const hsc_err *err)
{
    hsc_stage_batch *b = j->b;
    hsc_stage_done_fn done = j->done;
    for (size_t i = 0; i < j->nconstraints; i++)
        free(j->constraints[i]);
    free(j->constraints);
    free(j->evs);
    free(j->winner);
    free(j);
    done(b, code, err);
}

static void on_written(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_end(j, err->code, err);
        return;
    }
    int rc = HSC_OK;
    for (size_t i = 0; i < j->n && !rc; i++) {
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
            rc = hsc_stage_emit(j->b, j->ctx->enriched_topic, ev->id, strlen(ev->id), buf, len,
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
    hsc_err err = {0};
    json_t *params = enrich_params(j->evs, j->winner, j->n, &j->ctx->w);
    if (hsc_neo4j_run(j->ctx->neo4j, ENRICH_WRITE_CYPHER, params, on_written, j, &err))
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

static int en_process(void *vctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                      hsc_stage_done_fn done)
{
    struct enrich_ctx *ctx = vctx;
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return HSC_ENOMEM;
    j->ctx = ctx;
    j->b = b;
    j->done = done;
    j->n = n;
    j->evs = malloc(n * sizeof(*j->evs));
    j->winner = calloc(n, sizeof(int));
    if (!j->evs || !j->winner) {
        free(j->evs);
        free(j->winner);
        free(j);
        return HSC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        j->evs[i] = msgs[i]->decoded;
    hsc_content_pick_winners((const hsc_content_event *const *)j->evs, n, j->winner);
    if (!ctx->constraints_done) {
        hsc_err err = {0};
        char dir[1100];
        snprintf(dir, sizeof(dir), "%s/neo4j", ctx->schemas_dir);
        if (hsc_neo4j_load_statements(dir, &j->constraints, &j->nconstraints, &err))
            hsc_log_warn("graph constraints not applied", "error", err.msg, NULL);
        next_constraint(j);
        return HSC_OK;
    }
    write_batch(j);
    return HSC_OK;
}

const struct hsc_stage_ops enrich_ops = {
    .decode = en_decode,
    .free_decoded = en_free,
    .process = en_process,
};

/* ---------------- setup ---------------- */

int enrich_ctx_init(struct enrich_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                    hsc_err *err)
{
    memset(ctx, 0, sizeof(*ctx));
    snprintf(ctx->input_topic, sizeof(ctx->input_topic), "%s",
             hsc_config_topic(cfg, "topics.content_ingested"));
    snprintf(ctx->enriched_topic, sizeof(ctx->enriched_topic), "%s",
             hsc_config_topic(cfg, "topics.content_enriched"));
    snprintf(ctx->schemas_dir, sizeof(ctx->schemas_dir), "%s",
             hsc_config_str(cfg, "paths.schemas"));
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
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(cfg, &ns);
    if (!(ctx->http = hsc_http_new(loop, err)) ||
        !(ctx->neo4j = hsc_neo4j_new(loop, ctx->http, &ns, err))) {
        enrich_ctx_destroy(ctx);
        return err->code;
    }
    return HSC_OK;
}

void enrich_ctx_destroy(struct enrich_ctx *ctx)
{
    hsc_http_free(ctx->http); /* cancels the statement in flight */
    hsc_neo4j_free(ctx->neo4j);
    enrich_vocab_free(&ctx->vocab);
    ctx->http = NULL;
    ctx->neo4j = NULL;
}
