/*
 * Gathers the candidates of one search: merges what Milvus and Neo4j return
 * into one set keyed by id, with each leg's score and rank and the
 * relationships that explain a title. Pure, so the merging is unit-tested
 * without servers (tests/unit/test_candidates.c).
 */
#include "candidates.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "qcache.h"
#include "util.h"

static uint64_t id_hash(const char *s)
{
    return hsc_qcache_hash(s, strlen(s));
}

hsc_candidate *query_cands_find(query_cands *s, const char *id)
{
    if (!s->idxcap)
        return NULL;
    for (size_t h = id_hash(id) & (s->idxcap - 1);; h = (h + 1) & (s->idxcap - 1)) {
        if (s->idx[h] < 0)
            return NULL;
        if (!strcmp(s->c[s->idx[h]].id, id))
            return &s->c[s->idx[h]];
    }
}

static void index_put(query_cands *s, size_t i)
{
    for (size_t h = id_hash(s->c[i].id) & (s->idxcap - 1);; h = (h + 1) & (s->idxcap - 1))
        if (s->idx[h] < 0) {
            s->idx[h] = (int32_t)i;
            return;
        }
}

hsc_candidate *query_cands_get(query_cands *s, const char *id)
{
    hsc_candidate *c = query_cands_find(s, id);
    if (c)
        return c;
    if (!hsc_id_valid(id, strlen(id))) {
        hsc_log_warn("backend returned an invalid id; ignored", "correlation_id",
                     s->corr ? s->corr : "", NULL);
        return NULL;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        hsc_candidate *nc = realloc(s->c, cap * sizeof(*nc));
        int32_t *ni = malloc(2 * cap * sizeof(*ni));
        if (!nc || !ni) {
            free(ni);
            if (nc)
                s->c = nc;
            return NULL;
        }
        s->c = nc;
        s->cap = cap;
        free(s->idx);
        s->idx = ni;
        s->idxcap = 2 * cap;
        memset(s->idx, 0xff, s->idxcap * sizeof(*s->idx));
        for (size_t i = 0; i < s->n; i++)
            index_put(s, i);
    }
    c = &s->c[s->n];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, strlen(id) + 1);
    index_put(s, s->n++);
    return c;
}

void query_cands_reindex(query_cands *s)
{
    free(s->idx);
    s->idx = NULL;
    s->idxcap = 0;
    if (!s->n)
        return;
    size_t cap = 1;
    while (cap < 2 * s->n)
        cap <<= 1;
    s->idx = malloc(cap * sizeof(*s->idx));
    if (!s->idx)
        return; /* lookups find nothing: the ranked results stand without late additions */
    s->idxcap = cap;
    memset(s->idx, 0xff, cap * sizeof(*s->idx));
    for (size_t i = 0; i < s->n; i++)
        index_put(s, i);
}

void query_cands_free(query_cands *s)
{
    for (size_t i = 0; i < s->n; i++)
        hsc_candidate_clear(&s->c[i]);
    free(s->c);
    free(s->idx);
    s->c = NULL;
    s->idx = NULL;
    s->n = s->cap = s->idxcap = 0;
}

static void add_rel(hsc_candidate *c, const char *type, const char *seed, double score)
{
    hsc_search_relationship *r = realloc(c->rels, (c->nrels + 1) * sizeof(*r));
    if (!r)
        return;
    c->rels = r;
    r[c->nrels].type = strdup(type);
    r[c->nrels].seed = strdup(seed);
    r[c->nrels].score = score;
    if (r[c->nrels].type && r[c->nrels].seed)
        c->nrels++;
    else
        free(r[c->nrels].type), free(r[c->nrels].seed);
}

/* The relationship type of the path a graph candidate was found by. */
static const char *path_type(const char *via)
{
    return !strcmp(via, "similar")   ? "SIMILAR_TO"
           : !strcmp(via, "related") ? "RELATED_TO"
                                     : "SHARES_TAG";
}

/*
 * Reads a JSON list of relationships into c's and returns their score sum:
 * enrichment links ([{seed, type, score}], paths 0) or the paths that found
 * a graph candidate ([{seed, via, score}], paths 1).
 */
static double take_rels(hsc_candidate *c, const char *text, int paths)
{
    json_t *a = json_loads(text ? text : "[]", 0, NULL);
    double sum = 0;
    size_t i;
    json_t *l;
    c->has_rels = true;
    json_array_foreach (a, i, l) {
        const char *kind = json_string_value(json_object_get(l, paths ? "via" : "type"));
        const char *seed = json_string_value(json_object_get(l, "seed"));
        json_t *sc = json_object_get(l, "score");
        /* a link without a score is a RELATED_TO, worth 1; a path's score is always sent */
        double s = json_is_number(sc) ? json_number_value(sc) : paths ? 0 : 1.0;
        if (!kind || !seed)
            continue;
        add_rel(c, paths ? path_type(kind) : kind, seed, s);
        sum += s;
    }
    json_decref(a);
    return sum;
}

void query_cands_add_vector(query_cands *s, const hsc_milvus_hit *hits, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hsc_candidate *c = query_cands_get(s, hits[i].id);
        if (!c)
            continue;
        c->in_vector = true;
        c->vector_raw = hits[i].score;
        c->vector_rank = (int)i + 1;
    }
}

void query_cands_add_graph(query_cands *s, const hsc_graph_candidate *v, size_t n, int rels)
{
    for (size_t i = 0; i < n; i++) {
        hsc_candidate *c = query_cands_get(s, v[i].id);
        if (!c)
            continue;
        c->in_graph = true;
        c->graph_raw = v[i].score;
        c->graph_linked = v[i].score;  /* links only: shared tags are counted here */
        c->graph_intent = v[i].intent; /* what the request's own seeds found */
        c->graph_rank = (int)i + 1;
        if (rels && !c->has_rels)
            take_rels(c, v[i].why, 1); /* the paths that found it are its relationships */
    }
}

static int by_graph_raw(const void *a, const void *b)
{
    double x = (*(hsc_candidate *const *)a)->graph_raw, y = (*(hsc_candidate *const *)b)->graph_raw;
    return (x < y) - (x > y);
}

/*
 * Ranks the linked candidates by link score, for RRF (ties share a rank).
 * Sorted once rather than compared pairwise: k = 1000 means 3000 candidates.
 */
static void rank_by_graph_score(query_cands *s)
{
    hsc_candidate **v = malloc((s->n ? s->n : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < s->n; i++)
        if (s->c[i].in_graph)
            v[n++] = &s->c[i];
    if (!v)
        return;
    qsort(v, n, sizeof(*v), by_graph_raw);
    for (size_t i = 0; i < n; i++)
        v[i]->graph_rank =
            i && v[i]->graph_raw == v[i - 1]->graph_raw ? v[i - 1]->graph_rank : (int)i + 1;
    free(v);
}

void query_cands_add_links(query_cands *s, const hsc_graph_info *v, size_t n, int as_scores)
{
    for (size_t i = 0; i < n; i++) {
        hsc_candidate *c = query_cands_find(s, v[i].id);
        if (!c || (!as_scores && c->has_rels))
            continue;
        double sum = take_rels(c, v[i].links, 0);
        if (as_scores) {
            c->in_graph = sum > 0;
            c->graph_raw = c->graph_linked = sum;
        }
    }
    if (as_scores)
        rank_by_graph_score(s);
}

static size_t shared_count(const hsc_strlist *a, const hsc_strlist *b)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++)
            if (!strcasecmp(a->v[i], b->v[j])) {
                n++;
                break;
            }
    return n;
}

void query_cands_score_shared(query_cands *s, const query_seed_tags *seeds, size_t nseeds,
                              double tag_weight)
{
    if (tag_weight <= 0 || !nseeds)
        return;
    for (size_t i = 0; i < s->n; i++) {
        hsc_candidate *c = &s->c[i];
        if (!c->has_attrs)
            continue; /* dropped by the rank step anyway: nothing to compare */
        double shared = 0;
        for (size_t k = 0; k < nseeds; k++) {
            if (!seeds[k].attrs)
                continue;
            size_t n = shared_count(&seeds[k].attrs->genres, &c->attrs.genres) +
                       shared_count(&seeds[k].attrs->themes, &c->attrs.themes);
            shared += seeds[k].weight * tag_weight * (double)n;
        }
        c->graph_raw = c->graph_linked + shared;
        c->in_graph = c->graph_raw > 0;
    }
    rank_by_graph_score(s);
}
