/*
 * Graph queries for search. The candidate query walks the seeds' links:
 * SIMILAR_TO (each title's best matches over the whole catalogue, computed by
 * hsc-enrich) and editorial RELATED_TO. A candidate's score is the sum over
 * every link from every seed of the link's strength times the seed's weight:
 * SIMILAR_TO's weighted Jaccard, 1 for RELATED_TO; nothing caps it, two
 * links count more than one. `intent` is the part from the request's own
 * seeds, which rank first (workers/query/rank.h). Shared genres and themes
 * are not walked here: hsc-query counts them for every candidate from the
 * catalogue rows it reads anyway (candidates.h: query_cands_score_shared).
 */
#include "graph.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json_list.h"

const char HSC_GRAPH_CANDIDATES_CYPHER[] =
    "UNWIND range(0, size($seeds) - 1) AS i\n"
    "MATCH (s:Content {id: $seeds[i]})\n"
    "WITH s, $weights[i] AS sw, i < $nexplicit AS mine\n"
    "CALL {\n"
    "  WITH s MATCH (s)-[r:SIMILAR_TO]-(c:Content)\n"
    "  RETURN c, r.score AS score, 'similar' AS via, null AS through\n"
    "  UNION\n"
    "  WITH s MATCH (s)-[:RELATED_TO]-(c:Content)\n"
    "  RETURN c, 1.0 AS score, 'related' AS via, null AS through\n"
    "}\n"
    "WITH s, sw, mine, c, score, via, through WHERE c.stub IS NULL AND NOT c.id IN $seeds\n"
    "  AND NOT c.id IN $exclude_ids\n"
    "  AND ($max_maturity IS NULL OR c.maturity <= $max_maturity)\n"
    "  AND (size($languages) = 0 OR c.language IN $languages)\n"
    "  AND ($year_min IS NULL OR c.year >= $year_min)\n"
    "  AND ($year_max IS NULL OR c.year <= $year_max)\n"
    "  AND (size($genres) = 0 OR EXISTS { MATCH (c)-[:BELONGS_TO]->(g:Genre)\n"
    "                                    WHERE g.name IN $genres })\n"
    "  AND NOT EXISTS { MATCH (c)-[:BELONGS_TO]->(x:Genre) WHERE x.name IN $excluded_genres }\n"
    "WITH c, sum(sw * score) AS gscore, sum(CASE WHEN mine THEN score ELSE 0.0 END) AS iscore,\n"

    "     collect({seed: s.id, via: via, score: score, through: through}) AS paths\n"
    "RETURN c.id AS id, gscore AS score, paths[..3] AS why, iscore AS intent\n"
    "ORDER BY intent DESC, score DESC, id\n"
    "LIMIT $limit";

const char HSC_GRAPH_ENRICH_CYPHER[] =
    "UNWIND $ids AS cid\n"
    "MATCH (c:Content {id: cid})\n"
    "RETURN c.id AS id,\n"
    "  COLLECT { MATCH (c)-[:BELONGS_TO]->(g:Genre) RETURN g.name } AS genres,\n"
    "  COLLECT { MATCH (c)-[:HAS_THEME]->(t:Theme) RETURN t.name } AS themes,\n"
    "  COLLECT { MATCH (c)-[:HAS_MOOD]->(m:Mood) RETURN m.name } AS moods,\n"
    "  COLLECT { MATCH (c)-[r:SIMILAR_TO|RELATED_TO]-(s:Content) WHERE s.id IN $seeds\n"
    "            RETURN {seed: s.id, type: type(r), score: r.score} } AS links";

static int copy_id(json_t *v, char *out, hsc_err *err)
{
    if (!json_is_string(v) || json_string_length(v) > HSC_MAX_ID_LEN)
        return hsc_err_set(err, HSC_ETRANSIENT, "neo4j: a row has no usable id");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return HSC_OK;
}

void hsc_graph_candidates_free(hsc_graph_candidate *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].why);
    free(c);
}

void hsc_graph_info_free(hsc_graph_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hsc_strlist_clear(&v[i].genres);
        hsc_strlist_clear(&v[i].themes);
        hsc_strlist_clear(&v[i].moods);
        free(v[i].links);
    }
    free(v);
}

/* Reads one result row into all[i]; an error names the row's problem. */
typedef int (*row_fn)(void *all, size_t i, json_t *row, hsc_err *err);

/* Frees n parsed rows (the typed free of the row kind). */
typedef void (*rows_free_fn)(void *all, size_t n);

/* Parses every row of r into a calloc'd array of size-byte elements. */
static int parse_rows(const hsc_neo4j_result *r, size_t size, row_fn read_row, rows_free_fn release,
                      void **out, size_t *n, hsc_err *err)
{
    size_t cnt = json_array_size(r->rows);
    void *all = calloc(cnt ? cnt : 1, size);
    if (!all)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++)
        if (read_row(all, i, json_array_get(r->rows, i), err)) {
            release(all, cnt);
            return err->code;
        }
    *out = all;
    *n = cnt;
    return HSC_OK;
}

static int candidate_row(void *all, size_t i, json_t *row, hsc_err *err)
{
    hsc_graph_candidate *c = (hsc_graph_candidate *)all + i;
    if (copy_id(json_array_get(row, 0), c->id, err))
        return err->code;
    c->score = json_number_value(json_array_get(row, 1));
    c->why = json_dumps(json_array_get(row, 2), JSON_COMPACT | JSON_ENCODE_ANY);
    c->intent = json_number_value(json_array_get(row, 3)); /* 0 when absent */
    return HSC_OK;
}

static void candidates_free(void *all, size_t n)
{
    hsc_graph_candidates_free(all, n);
}

int hsc_graph_parse_candidates(const hsc_neo4j_result *r, hsc_graph_candidate **out, size_t *n,
                               hsc_err *err)
{
    void *all = NULL;
    int rc = parse_rows(r, sizeof(**out), candidate_row, candidates_free, &all, n, err);
    if (rc == HSC_OK)
        *out = all;
    return rc;
}

static void fill_list(hsc_strlist *l, json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
        if (json_is_string(v))
            hsc_strlist_push(l, json_string_value(v), json_string_length(v));
}

static int info_row(void *all, size_t i, json_t *row, hsc_err *err)
{
    hsc_graph_info *v = (hsc_graph_info *)all + i;
    if (copy_id(json_array_get(row, 0), v->id, err))
        return err->code;
    fill_list(&v->genres, json_array_get(row, 1));
    fill_list(&v->themes, json_array_get(row, 2));
    fill_list(&v->moods, json_array_get(row, 3));
    v->links = json_dumps(json_array_get(row, 4), JSON_COMPACT | JSON_ENCODE_ANY);
    return HSC_OK;
}

static void infos_free(void *all, size_t n)
{
    hsc_graph_info_free(all, n);
}

int hsc_graph_parse_info(const hsc_neo4j_result *r, hsc_graph_info **out, size_t *n, hsc_err *err)
{
    void *all = NULL;
    int rc = parse_rows(r, sizeof(**out), info_row, infos_free, &all, n, err);
    if (rc == HSC_OK)
        *out = all;
    return rc;
}

/* The state of one query: its callback (ccb for candidates, else icb for enrichment). */
struct q {
    hsc_graph_candidates_fn ccb;
    hsc_graph_info_fn icb;
    void *arg;
};

/* Parses the rows with the parser of the query's kind and hands them to its callback. */
static void on_result(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct q *q = arg;
    hsc_graph_candidate *c = NULL;
    hsc_graph_info *v = NULL;
    size_t nc = 0, nv = 0;
    hsc_err e = {0};
    const hsc_err *why = res ? NULL : err;
    if (res && (q->ccb ? hsc_graph_parse_candidates(res, &c, &nc, &e)
                       : hsc_graph_parse_info(res, &v, &nv, &e)))
        why = &e;
    double seconds = why ? 0 : res->seconds;
    if (q->ccb)
        q->ccb(q->arg, c, nc, seconds, why);
    else
        q->icb(q->arg, v, nv, seconds, why);
    hsc_graph_candidates_free(c, nc);
    hsc_graph_info_free(v, nv);
    free(q);
}

/* Runs one statement (params taken over) and calls back through on_result. */
static int run_query(hsc_neo4j *n, const char *cypher, json_t *params, hsc_graph_candidates_fn ccb,
                     hsc_graph_info_fn icb, void *arg, hsc_err *err)
{
    struct q *q = calloc(1, sizeof(*q));
    if (!q) {
        json_decref(params);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    q->ccb = ccb;
    q->icb = icb;
    q->arg = arg;
    int rc = hsc_neo4j_run(n, cypher, params, on_result, q, err);
    if (rc)
        free(q);
    return rc;
}

/* Tags are stored lower-case in the graph (enrich normalises them). */
static json_t *list_array(const hsc_strlist *l, int lower)
{
    json_t *a = json_array();
    for (size_t i = 0; l && i < l->n; i++) {
        char *v = strdup(l->v[i]);
        for (char *c = v; lower && c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (v)
            json_array_append_new(a, json_string(v));
        free(v);
    }
    return a;
}

static json_t *opt_int(int present, int v)
{
    return present ? json_integer(v) : json_null();
}

int hsc_graph_candidates(hsc_neo4j *n, const char *const *seeds, size_t nseeds, int limit,
                         const hsc_graph_filter *f, hsc_graph_candidates_fn cb, void *arg,
                         hsc_err *err)
{
    static const hsc_graph_filter none = {.max_maturity = -1};
    if (!f)
        f = &none;
    json_t *w = json_array();
    /* without seeds of its own the request has only history: every seed weighs the same */
    double hw = f->nexplicit ? f->history_weight : 1.0;
    for (size_t i = 0; i < nseeds; i++)
        json_array_append_new(w, json_real(i < f->nexplicit ? 1.0 : hw));
    json_t *p = json_pack(
        "{s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seeds",
        hsc_json_strings(seeds, nseeds), "weights", w, "nexplicit", (int)f->nexplicit, "limit",
        limit, "exclude_ids", list_array(f->exclude_ids, 0), "genres", list_array(f->genres, 1),
        "excluded_genres", list_array(f->excluded_genres, 1), "languages",
        list_array(f->languages, 1), "max_maturity", opt_int(f->max_maturity >= 0, f->max_maturity),
        "year_min", opt_int(f->year_min > 0, f->year_min), "year_max",
        opt_int(f->year_max > 0, f->year_max));
    return run_query(n, HSC_GRAPH_CANDIDATES_CYPHER, p, cb, NULL, arg, err);
}

int hsc_graph_enrich(hsc_neo4j *n, const char *const *ids, size_t nids, const char *const *seeds,
                     size_t nseeds, hsc_graph_info_fn cb, void *arg, hsc_err *err)
{
    json_t *p = json_pack("{s:o, s:o}", "ids", hsc_json_strings(ids, nids), "seeds",
                          hsc_json_strings(seeds, nseeds));
    return run_query(n, HSC_GRAPH_ENRICH_CYPHER, p, NULL, cb, arg, err);
}
