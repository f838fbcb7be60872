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

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "feed.h"
#include "hsc/codec.h"
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
 *
 * Why it is shaped this way (issue 17, measured by PROFILE and by Neo4j's
 * CPU on replayed batches): the batch's tag nodes are merged once each
 * ($genres, $themes, $moods: the distinct names) and rows refer to them by
 * position, instead of a MERGE per row and tag; and every title a
 * SIMILAR_TO change names is looked up once ($ids, after the titles are
 * written: null if missing or a stub) and the changes refer to it by
 * position, instead of an index seek per edge end. A batch's changes name
 * ~15,000 titles for ~60,000 edge ends, and after a burst most of them name
 * titles not written yet (the feed runs ahead of the batches), which now
 * cost a null test each. collect() keeps the order of the UNWIND it
 * follows (one row at a time, no parallel runtime in Community), so a
 * position in the list is the position in the parameter. Stubs hold no
 * SIMILAR_TO edge (a stub is only ever made by ON CREATE, and a title's
 * write clears stub), so leaving them out of the deletes changes nothing.
 */
const char ENRICH_WRITE_CYPHER[] =
    "CALL {\n"
    "  UNWIND $deletes AS did\n"
    "  MATCH (c:Content {id: did})\n"
    "  DETACH DELETE c\n"
    "}\n"
    "CALL { UNWIND $genres AS g MERGE (x:Genre {name: g}) RETURN collect(x) AS gn }\n"
    "CALL { UNWIND $themes AS t MERGE (x:Theme {name: t}) RETURN collect(x) AS tn }\n"
    "CALL { UNWIND $moods AS m MERGE (x:Mood {name: m}) RETURN collect(x) AS mn }\n"
    "CALL {\n"
    "  WITH gn, tn, mn\n"
    "  UNWIND $rows AS r\n"
    "  MERGE (c:Content {id: r.id})\n"
    "  WITH c, r, gn, tn, mn WHERE c.version IS NULL OR c.version <= r.version\n"
    "  SET c.title = r.title, c.year = r.year, c.language = r.language,\n"
    "      c.maturity = r.maturity, c.version = r.version, c.attr_w = r.attr_w, c.stub = null\n"
    "  WITH c, r, gn, tn, mn\n"
    "  CALL { WITH c MATCH (c)-[old:BELONGS_TO|HAS_THEME|HAS_MOOD|RELATED_TO]->() DELETE old }\n"
    "  CALL { WITH c, r, gn UNWIND r.genres AS i WITH c, gn[i] AS x\n"
    "         CREATE (c)-[:BELONGS_TO]->(x) }\n"
    "  CALL { WITH c, r, tn UNWIND r.themes AS i WITH c, tn[i] AS x\n"
    "         CREATE (c)-[:HAS_THEME]->(x) }\n"
    "  CALL { WITH c, r, mn UNWIND r.moods AS i WITH c, mn[i] AS x\n"
    "         CREATE (c)-[:HAS_MOOD]->(x) }\n"
    /* An editorial link to a title not seen yet makes a stub that its own event fills in. */
    "  CALL { WITH c, r UNWIND r.related AS rid MERGE (o:Content {id: rid})\n"
    "         ON CREATE SET o.stub = true\n"
    "         CREATE (c)-[:RELATED_TO]->(o) }\n"
    "}\n"
    "CALL {\n"
    "  UNWIND $ids AS id\n"
    "  OPTIONAL MATCH (c:Content {id: id}) WHERE c.stub IS NULL\n"
    "  RETURN collect([c]) AS ns\n"
    "}\n"
    "CALL {\n"
    "  WITH ns\n"
    "  UNWIND $sim_del AS d\n"
    "  WITH ns[d[0]][0] AS a, ns[d[1]][0] AS b WHERE a IS NOT NULL AND b IS NOT NULL\n"
    "  MATCH (a)-[s:SIMILAR_TO]->(b)\n"
    "  DELETE s\n"
    "}\n"
    "CALL {\n"
    "  WITH ns\n"
    "  UNWIND $sim_replace AS rp\n"
    "  WITH ns, ns[rp[0]][0] AS c, rp[1] AS to WHERE c IS NOT NULL\n"
    "  CALL { WITH c MATCH (c)-[s:SIMILAR_TO]->() DELETE s }\n"
    "  CALL { WITH c, ns, to UNWIND to AS e WITH c, ns[e[0]][0] AS o, e[1] AS sc WHERE o IS NOT "
    "NULL\n"
    "         CREATE (c)-[:SIMILAR_TO {score: sc}]->(o) }\n"
    "}\n"
    "CALL {\n"
    "  WITH ns\n"
    "  UNWIND $sim_add AS e\n"
    "  WITH ns[e[0]][0] AS a, ns[e[1]][0] AS b, e[2] AS sc WHERE a IS NOT NULL AND b IS NOT NULL\n"
    "  MERGE (a)-[s:SIMILAR_TO]->(b) SET s.score = sc\n"
    "}\n"
    "RETURN size($rows) AS written, size($sim_replace) AS replaced, "
    "size($sim_add) AS added, size($sim_del) AS removed";

/*
 * Strings numbered by first appearance (ids, tag names), for parameters that
 * refer to a list by position. Open addressing; the strings are borrowed and
 * must outlive the table.
 */
struct numbering {
    const char **key; /* capacity slots; NULL is free */
    uint32_t *num;
    const char **order; /* the strings by number */
    size_t n, cap;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void numbering_free(struct numbering *t)
{
    free(t->key);
    free(t->num);
    free(t->order);
    memset(t, 0, sizeof(*t));
}

/* The number of s (a new one if unseen), or -1 when out of memory. */
static long number_of(struct numbering *t, const char *s)
{
    if (2 * (t->n + 1) > t->cap) { /* at most half full */
        size_t cap = t->cap ? 2 * t->cap : 64;
        const char **key = calloc(cap, sizeof(*key));
        uint32_t *num = malloc(cap * sizeof(*num));
        const char **order = realloc(t->order, (cap / 2) * sizeof(*order));
        if (order)
            t->order = order;
        if (!key || !num || !order) {
            free(key);
            free(num);
            return -1;
        }
        for (size_t i = 0; i < t->n; i++) {
            size_t h = (size_t)str_hash(t->order[i]) & (cap - 1);
            while (key[h])
                h = (h + 1) & (cap - 1);
            key[h] = t->order[i];
            num[h] = (uint32_t)i;
        }
        free(t->key);
        free(t->num);
        t->key = key;
        t->num = num;
        t->cap = cap;
    }
    size_t h = (size_t)str_hash(s) & (t->cap - 1);
    while (t->key[h]) {
        if (!strcmp(t->key[h], s))
            return t->num[h];
        h = (h + 1) & (t->cap - 1);
    }
    t->key[h] = s;
    t->num[h] = (uint32_t)t->n;
    t->order[t->n] = s;
    return (long)t->n++;
}

/* A float as jansson writes it with JSON_REAL_PRECISION(17): always with a '.' or an
 * exponent, so Neo4j stores a float (a whole 2.0 written "2" would be an integer). */
static int put_real(hsc_buf *b, double v)
{
    char s[40];
    int n = snprintf(s, sizeof(s), "%.17g", v);
    if (n > 0 && !strpbrk(s, ".eEn"))
        snprintf(s + n, sizeof(s) - (size_t)n, ".0");
    return hsc_buf_append(b, s, strlen(s));
}

/* A list of strings as a JSON array. */
static int put_strings(hsc_buf *b, const char *const *v, size_t n)
{
    int rc = hsc_buf_append(b, "[", 1);
    for (size_t i = 0; i < n && !rc; i++)
        rc = (i && hsc_buf_append(b, ",", 1)) || hsc_buf_json_str(b, v[i]);
    return rc || hsc_buf_append(b, "]", 1) ? HSC_ENOMEM : HSC_OK;
}

/* A list of tag names as their numbers in t. */
static int put_numbers(hsc_buf *b, struct numbering *t, const hsc_strlist *l)
{
    int rc = hsc_buf_append(b, "[", 1);
    for (size_t i = 0; i < l->n && !rc; i++) {
        long k = number_of(t, l->v[i]);
        rc = k < 0 || hsc_buf_printf(b, "%s%ld", i ? "," : "", k);
    }
    return rc || hsc_buf_append(b, "]", 1) ? HSC_ENOMEM : HSC_OK;
}

/* One title's row: its properties, its tags by number and its editorial links. */
static int put_row(hsc_buf *b, const hsc_content_event *e, struct numbering tags[3],
                   const struct enrich_weights *w)
{
    int rc = hsc_buf_append(b, "{\"id\":", 6) || hsc_buf_json_str(b, e->id) ||
             hsc_buf_printf(b, ",\"version\":%lld,\"title\":", (long long)e->version) ||
             hsc_buf_json_str(b, e->title ? e->title : "");
    rc = rc || ((e->has & HSC_HAS_YEAR) ? hsc_buf_printf(b, ",\"year\":%d", (int)e->year)
                                        : hsc_buf_printf(b, ",\"year\":null"));
    rc = rc || hsc_buf_printf(b, ",\"language\":") ||
         (e->language ? hsc_buf_json_str(b, e->language) : hsc_buf_printf(b, "null"));
    rc =
        rc || ((e->has & HSC_HAS_MATURITY) ? hsc_buf_printf(b, ",\"maturity\":%d", (int)e->maturity)
                                           : hsc_buf_printf(b, ",\"maturity\":null"));
    rc = rc || hsc_buf_printf(b, ",\"genres\":") || put_numbers(b, &tags[0], &e->genres) ||
         hsc_buf_printf(b, ",\"themes\":") || put_numbers(b, &tags[1], &e->themes) ||
         hsc_buf_printf(b, ",\"moods\":") || put_numbers(b, &tags[2], &e->moods) ||
         hsc_buf_printf(b, ",\"related\":") ||
         put_strings(b, (const char *const *)e->related.v, e->related.n) ||
         hsc_buf_printf(b, ",\"attr_w\":") || put_real(b, enrich_attr_weight(e, w)) ||
         hsc_buf_append(b, "}", 1);
    return rc ? HSC_ENOMEM : HSC_OK;
}

/* The SIMILAR_TO changes of pend (lists to replace read from ix), titles numbered in ids. */
static int put_sim(hsc_buf *b, const struct enrich_pending *pend, simindex *ix, int top,
                   struct numbering *ids)
{
    int rc = HSC_OK;
    for (int pass = 0; pass < 2 && !rc; pass++) { /* sim_del, then sim_add */
        rc = hsc_buf_printf(b, pass ? ",\"sim_add\":[" : ",\"sim_del\":[");
        int first = 1;
        for (size_t i = 0; i < pend->cap && !rc; i++) {
            const struct enrich_pending_edge *e = &pend->e[i];
            if (!e->src || (e->score >= 0) != pass)
                continue;
            long s = number_of(ids, e->src), d = number_of(ids, e->dst);
            rc = s < 0 || d < 0 || hsc_buf_printf(b, "%s[%ld,%ld", first ? "" : ",", s, d) ||
                 (pass && (hsc_buf_append(b, ",", 1) || put_real(b, e->score))) ||
                 hsc_buf_append(b, "]", 1);
            first = 0;
        }
        rc = rc || hsc_buf_append(b, "]", 1);
    }
    struct simindex_neighbour *nb = malloc((size_t)top * sizeof(*nb));
    rc = rc || !nb || hsc_buf_printf(b, ",\"sim_replace\":[");
    int first = 1;
    for (size_t i = 0; i < pend->caprep && !rc; i++) {
        const char *k = pend->rep[i].id;
        if (!k)
            continue;
        size_t n = simindex_list_to_write(ix, k, nb, (size_t)top);
        long c = number_of(ids, k);
        rc = c < 0 || hsc_buf_printf(b, "%s[%ld,[", first ? "" : ",", c);
        for (size_t j = 0; j < n && j < (size_t)top && !rc; j++) {
            long o = number_of(ids, nb[j].id);
            rc = o < 0 || hsc_buf_printf(b, "%s[%ld,", j ? "," : "", o) ||
                 put_real(b, nb[j].score) || hsc_buf_append(b, "]", 1);
        }
        rc = rc || hsc_buf_append(b, "]]", 2);
        first = 0;
    }
    free(nb);
    return rc || hsc_buf_append(b, "]", 1) ? HSC_ENOMEM : HSC_OK;
}

/* The whole parameter object into out (see enrich_params_text). */
static int write_params(hsc_buf *out, hsc_content_event *const *evs, const int *winner, size_t n,
                        const struct enrich_weights *w, const struct enrich_pending *pend,
                        simindex *ix)
{
    struct numbering tags[3] = {{0}}, ids = {0};
    int rc = hsc_buf_append(out, "{\"rows\":[", 9);
    int first = 1;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!winner[i] || evs[i]->op == HSC_OP_DELETE)
            continue;
        rc = (!first && hsc_buf_append(out, ",", 1)) || put_row(out, evs[i], tags, w);
        first = 0;
    }
    rc = rc || hsc_buf_printf(out, "],\"deletes\":[");
    first = 1;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!winner[i] || evs[i]->op != HSC_OP_DELETE)
            continue;
        rc = (!first && hsc_buf_append(out, ",", 1)) || hsc_buf_json_str(out, evs[i]->id);
        first = 0;
    }
    rc = rc || hsc_buf_append(out, "]", 1);
    int top = w->top_n > 0 ? w->top_n : 1;
    if (pend)
        rc = rc || put_sim(out, pend, ix, top, &ids);
    else
        rc = rc || hsc_buf_printf(out, ",\"sim_del\":[],\"sim_add\":[],\"sim_replace\":[]");
    rc = rc || hsc_buf_printf(out, ",\"ids\":") || put_strings(out, ids.order, ids.n) ||
         hsc_buf_printf(out, ",\"genres\":") || put_strings(out, tags[0].order, tags[0].n) ||
         hsc_buf_printf(out, ",\"themes\":") || put_strings(out, tags[1].order, tags[1].n) ||
         hsc_buf_printf(out, ",\"moods\":") || put_strings(out, tags[2].order, tags[2].n);
    /* The formula's settings travel along for whoever reads the statement's log. */
    rc = rc || hsc_buf_printf(out, ",\"wg\":") || put_real(out, w->genre) ||
         hsc_buf_printf(out, ",\"wt\":") || put_real(out, w->theme) ||
         hsc_buf_printf(out, ",\"wm\":") || put_real(out, w->mood) ||
         hsc_buf_printf(out, ",\"min\":") || put_real(out, w->min_score) ||
         hsc_buf_printf(out, ",\"top\":%d,\"fanout\":%d}", w->top_n,
                        w->fanout > 0 ? w->fanout : 2000);
    for (int t = 0; t < 3; t++)
        numbering_free(&tags[t]);
    numbering_free(&ids);
    return rc ? HSC_ENOMEM : HSC_OK;
}

char *enrich_params_text(hsc_content_event *const *evs, const int *winner, size_t n,
                         const struct enrich_weights *w, const struct enrich_pending *pend,
                         simindex *ix)
{
    hsc_buf b = {0};
    if (write_params(&b, evs, winner, n, w, pend, ix)) {
        hsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

json_t *enrich_params(hsc_content_event *const *evs, const int *winner, size_t n,
                      const struct enrich_weights *w)
{
    char *text = enrich_params_text(evs, winner, n, w, NULL, NULL);
    json_t *p = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return p;
}

/* ---------------- the similarity changes to write ---------------- */

static size_t ptr_hash(const void *a, const void *b)
{
    uint64_t h = ((uint64_t)(uintptr_t)a * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)(uintptr_t)b * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h ^ (h >> 29));
}

/* The slot of src -> dst in e (cap a power of two): its own, or the free one to take. */
static size_t edge_slot(const struct enrich_pending_edge *e, size_t cap, const char *src,
                        const char *dst)
{
    size_t h = ptr_hash(src, dst) & (cap - 1);
    while (e[h].src && (e[h].src != src || e[h].dst != dst))
        h = (h + 1) & (cap - 1);
    return h;
}

static size_t rep_slot(const struct enrich_pending_rep *r, size_t cap, const char *id)
{
    size_t h = ptr_hash(id, NULL) & (cap - 1);
    while (r[h].id && r[h].id != id)
        h = (h + 1) & (cap - 1);
    return h;
}

/* Moves p's edges into a table of cap slots (grown or shrunk); a failed allocation
 * leaves p as it was. */
static int edges_rehash(struct enrich_pending *p, size_t cap)
{
    struct enrich_pending_edge *e = calloc(cap, sizeof(*e));
    if (!e)
        return HSC_ENOMEM;
    for (size_t i = 0; i < p->cap; i++)
        if (p->e[i].src)
            e[edge_slot(e, cap, p->e[i].src, p->e[i].dst)] = p->e[i];
    free(p->e);
    p->e = e;
    p->cap = cap;
    return HSC_OK;
}

/* Moves p's replaced lists into a table of cap slots, as edges_rehash. */
static int reps_rehash(struct enrich_pending *p, size_t cap)
{
    struct enrich_pending_rep *r = calloc(cap, sizeof(*r));
    if (!r)
        return HSC_ENOMEM;
    for (size_t i = 0; i < p->caprep; i++)
        if (p->rep[i].id)
            r[rep_slot(r, cap, p->rep[i].id)] = p->rep[i];
    free(p->rep);
    p->rep = r;
    p->caprep = cap;
    return HSC_OK;
}

/* Makes room for one more entry (at most half full). */
static int pending_room(struct enrich_pending *p)
{
    if (2 * (p->n + 1) > p->cap && edges_rehash(p, p->cap ? 2 * p->cap : 1024))
        return HSC_ENOMEM;
    if (2 * (p->nrep + 1) > p->caprep && reps_rehash(p, p->caprep ? 2 * p->caprep : 256))
        return HSC_ENOMEM;
    return HSC_OK;
}

/* Sets an edge entry (new or replacing the pair's), keeping the order given. */
static int put_edge_seq(struct enrich_pending *p, const struct enrich_pending_edge *in)
{
    if (pending_room(p))
        return HSC_ENOMEM;
    struct enrich_pending_edge *e = &p->e[edge_slot(p->e, p->cap, in->src, in->dst)];
    p->n += !e->src;
    *e = *in;
    return HSC_OK;
}

/* Sets a replace entry; the later of two orders is kept (it supersedes more edges). */
static int put_rep_seq(struct enrich_pending *p, const char *id, uint64_t seq)
{
    if (pending_room(p))
        return HSC_ENOMEM;
    struct enrich_pending_rep *r = &p->rep[rep_slot(p->rep, p->caprep, id)];
    if (r->id && r->seq >= seq)
        return HSC_OK;
    p->nrep += !r->id;
    *r = (struct enrich_pending_rep){.id = id, .seq = seq};
    return HSC_OK;
}

/* The replace entry of id in p, or NULL. */
static const struct enrich_pending_rep *find_rep(const struct enrich_pending *p, const char *id)
{
    if (!p->caprep)
        return NULL;
    const struct enrich_pending_rep *r = &p->rep[rep_slot(p->rep, p->caprep, id)];
    return r->id ? r : NULL;
}

int enrich_pending_edge(struct enrich_pending *p, const char *src, const char *dst, double score)
{
    struct enrich_pending_edge in = {.src = src, .dst = dst, .score = score, .seq = p->next_seq};
    int rc = put_edge_seq(p, &in);
    p->next_seq += !rc;
    return rc;
}

int enrich_pending_replace(struct enrich_pending *p, const char *id)
{
    int rc = put_rep_seq(p, id, p->next_seq);
    p->next_seq += !rc;
    return rc;
}

int enrich_pending_merge_older(struct enrich_pending *p, const struct enrich_pending *older)
{
    int rc = HSC_OK;
    for (size_t i = 0; i < older->cap && !rc; i++) {
        const struct enrich_pending_edge *o = &older->e[i];
        if (o->src && !(rc = pending_room(p))) {
            struct enrich_pending_edge *e = &p->e[edge_slot(p->e, p->cap, o->src, o->dst)];
            if (!e->src) {
                *e = *o;
                p->n++;
            }
        }
    }
    for (size_t i = 0; i < older->caprep && !rc; i++)
        if (older->rep[i].id)
            rc = put_rep_seq(p, older->rep[i].id, older->rep[i].seq);
    if (older->next_seq > p->next_seq)
        p->next_seq = older->next_seq;
    return rc;
}

void enrich_pending_free(struct enrich_pending *p)
{
    free(p->e);
    free(p->rep);
    memset(p, 0, sizeof(*p));
}

/* Empties slot i of the edge table and closes the gap it leaves in its probe run
 * (backward shift), so later lookups still find every entry. */
static void edge_remove(struct enrich_pending *p, size_t i)
{
    size_t mask = p->cap - 1;
    p->e[i].src = NULL;
    p->n--;
    for (size_t j = (i + 1) & mask; p->e[j].src; j = (j + 1) & mask) {
        size_t h = ptr_hash(p->e[j].src, p->e[j].dst) & mask;
        /* The entry at j may move back to i unless its home lies cyclically in (i, j]. */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            p->e[i] = p->e[j];
            p->e[j].src = NULL;
            i = j;
        }
    }
}

/* As edge_remove, for the table of lists to replace. */
static void rep_remove(struct enrich_pending *p, size_t i)
{
    size_t mask = p->caprep - 1;
    p->rep[i].id = NULL;
    p->nrep--;
    for (size_t j = (i + 1) & mask; p->rep[j].id; j = (j + 1) & mask) {
        size_t h = ptr_hash(p->rep[j].id, NULL) & mask;
        if (((j - h) & mask) >= ((j - i) & mask)) {
            p->rep[i] = p->rep[j];
            p->rep[j].id = NULL;
            i = j;
        }
    }
}

/* Rebuilds p's tables smaller once a burst has drained, so they do not stay at their
 * largest; a failed allocation keeps them as they are. */
static void pending_shrink(struct enrich_pending *p)
{
    if (p->cap > 1024 && 8 * p->n < p->cap) {
        size_t cap = p->cap;
        while (cap > 1024 && 8 * p->n < cap)
            cap /= 2;
        (void)edges_rehash(p, cap);
    }
    if (p->caprep > 256 && 8 * p->nrep < p->caprep) {
        size_t cap = p->caprep;
        while (cap > 256 && 8 * p->nrep < cap)
            cap /= 2;
        (void)reps_rehash(p, cap);
    }
}

/* One live entry of a set being split: its rank (a batch's own changes first, then
 * the order they were recorded in) and the entry. */
struct split_entry {
    uint64_t key;
    const char *src, *dst; /* dst NULL: a list to replace */
};

static int split_cmp(const void *a, const void *b)
{
    const struct split_entry *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Puts the k smallest keys of v first (in no order): quickselect, O(n) on average,
 * so a statement's share of a million pending changes costs no full sort. Keys are
 * unique (each change has its own order). */
static void split_select(struct split_entry *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* [0, lo) below [lo, hi), below [hi, n) */
    while (lo < k && k < hi) {
        /* Hoare's partition; a pivot below the last slot leaves both sides non-empty. */
        uint64_t pivot = v[lo + (hi - lo - 1) / 2].key;
        size_t i = lo, j = hi - 1;
        for (;;) {
            while (v[i].key < pivot)
                i++;
            while (v[j].key > pivot)
                j--;
            if (i >= j)
                break;
            struct split_entry t = v[i];
            v[i++] = v[j];
            v[j--] = t;
        }
        if (k <= j + 1)
            hi = j + 1;
        else
            lo = j + 1;
    }
}

int enrich_pending_split(struct enrich_pending *p, size_t cap, size_t rep_cost, uint64_t first_lo,
                         uint64_t first_hi, struct enrich_pending *out, size_t *first_left)
{
    memset(out, 0, sizeof(*out));
    out->next_seq = p->next_seq;
    /* Ranks: a batch's own changes below every other, each set by its order. */
    const uint64_t other = (uint64_t)1 << 63;
    size_t size = p->n + p->nrep, nsup = 0, nv = 0, total = 0, nfirst = 0;
    struct split_entry *v = malloc((size + 1) * sizeof(*v));
    if (!v)
        return HSC_ENOMEM;
    for (size_t i = 0; i < p->cap; i++) {
        const struct enrich_pending_edge *e = &p->e[i];
        if (!e->src)
            continue;
        const struct enrich_pending_rep *r = find_rep(p, e->src);
        if (r && r->seq > e->seq) { /* superseded: kept at the end of v, then removed */
            v[size - ++nsup] = (struct split_entry){.src = e->src, .dst = e->dst};
            continue;
        }
        int first = e->seq >= first_lo && e->seq < first_hi;
        v[nv++] =
            (struct split_entry){.key = e->seq | (first ? 0 : other), .src = e->src, .dst = e->dst};
        nfirst += (size_t)first;
        total++;
    }
    for (size_t i = 0; i < p->caprep; i++) {
        const struct enrich_pending_rep *r = &p->rep[i];
        if (!r->id)
            continue;
        int first = r->seq >= first_lo && r->seq < first_hi;
        v[nv++] = (struct split_entry){.key = r->seq | (first ? 0 : other), .src = r->id};
        nfirst += (size_t)first;
        total += rep_cost;
    }
    /* Every change costs at least 1, so a statement takes at most cap: only those
     * need ordering, and when everything fits nothing does. */
    size_t k = nv;
    if (total > cap) {
        k = cap < nv ? cap : nv;
        split_select(v, nv, k);
        qsort(v, k, sizeof(*v), split_cmp);
    }
    size_t used = 0, taken = 0, taken_first = 0;
    int rc = HSC_OK;
    for (; taken < k && !rc; taken++) {
        const struct split_entry *s = &v[taken];
        size_t cost = s->dst ? 1 : rep_cost;
        if (used && used + cost > cap)
            break; /* the rest wait, in order */
        used += cost;
        taken_first += !(s->key & other);
        if (s->dst) {
            const struct enrich_pending_edge *e = &p->e[edge_slot(p->e, p->cap, s->src, s->dst)];
            rc = put_edge_seq(out, e);
        } else {
            rc = put_rep_seq(out, s->src, p->rep[rep_slot(p->rep, p->caprep, s->src)].seq);
        }
    }
    if (rc) {
        free(v);
        enrich_pending_free(out);
        out->next_seq = p->next_seq;
        return rc;
    }
    /* Only now is p changed: what was taken and what was superseded leave it. */
    for (size_t i = 0; i < taken; i++)
        if (v[i].dst)
            edge_remove(p, edge_slot(p->e, p->cap, v[i].src, v[i].dst));
        else
            rep_remove(p, rep_slot(p->rep, p->caprep, v[i].src));
    for (size_t i = size - nsup; i < size; i++)
        edge_remove(p, edge_slot(p->e, p->cap, v[i].src, v[i].dst));
    free(v);
    pending_shrink(p);
    if (first_left)
        *first_left = nfirst - taken_first;
    return HSC_OK;
}

/* Moves the index's change set into the pending one (a later change of a pair wins). */
static int take_pending(struct enrich_ctx *ctx)
{
    struct simindex_changes ch;
    int rc = simindex_take(ctx->ix, &ch);
    for (size_t i = 0; i < ch.nreplace && !rc; i++)
        rc = enrich_pending_replace(&ctx->pend, ch.replace[i]);
    for (size_t i = 0; i < ch.nedges && !rc; i++)
        rc = enrich_pending_edge(&ctx->pend, ch.edges[i].src, ch.edges[i].dst, ch.edges[i].score);
    return rc;
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
    struct enrich_pending pend; /* the changes the statement in flight writes */
    uint64_t own_lo, own_hi;    /* the order of the changes the batch's own titles made */
    size_t own_left;            /* how many of those are still pending */
    int rows_sent;              /* the batch's rows are written (later statements: changes only) */
};

static void start_job(struct job *j);
static void start_flush(struct enrich_ctx *ctx);
static void on_written(void *arg, const hsc_neo4j_result *res, const hsc_err *err);

/* Any code but HSC_OK and HSC_EINVAL makes the stage keep the batch and retry it. */
static void job_end(struct job *j, int code, const hsc_err *err)
{
    struct enrich_ctx *ctx = j->ctx;
    int flush = !j->base.b;
    /* Changes not written go back under the newer pending ones (out of memory here
     * loses them to the next write of the titles, as a lost flush would). */
    if (code && enrich_pending_merge_older(&ctx->pend, &j->pend))
        hsc_log_error("enrich: out of memory keeping unwritten similarity changes", NULL);
    /* Too large for Neo4j's memory: retrying it whole would fail again (and, merged
     * with what gathered meanwhile, grow), so the next statements carry half as much. */
    if (code && err && hsc_neo4j_is_memory_limit(err->server_status)) {
        char took[24], cap[24];
        snprintf(took, sizeof(took), "%zu", j->pend.n + j->pend.nrep);
        ctx->cap = ctx->cap > 1 ? ctx->cap / 2 : 1;
        snprintf(cap, sizeof(cap), "%zu", ctx->cap);
        ctx->splits++;
        hsc_log_warn("enrich: statement too large for neo4j's memory; sending smaller ones", "code",
                     err->server_status, "changes", took, "max_changes_now", cap, NULL);
    }
    enrich_pending_free(&j->pend);
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
    /* What one statement could not carry goes next, not a flush period later
     * (after a failure the timer retries, so a failing server is not hammered). */
    if (!code && !ctx->busy)
        start_flush(ctx);
}

/* Sends the job's next statement: the batch's rows (first statement only) and at
 * most ctx->cap pending changes, the batch's own first. */
static void send_statement(struct job *j)
{
    struct enrich_ctx *ctx = j->ctx;
    hsc_err err = {0};
    size_t top = ctx->w.top_n > 0 ? (size_t)ctx->w.top_n : 1;
    if (enrich_pending_split(&ctx->pend, ctx->cap, top, j->own_lo, j->own_hi, &j->pend,
                             &j->own_left)) {
        hsc_err_set(&err, HSC_ENOMEM, "enrich: out of memory taking the pending changes");
        job_end(j, err.code, &err);
        return;
    }
    size_t n = j->rows_sent ? 0 : j->base.n;
    char *params = enrich_params_text(j->evs, j->winner, n, &ctx->w, &j->pend, ctx->ix);
    if (!params) {
        hsc_err_set(&err, HSC_ENOMEM, "enrich: out of memory writing the batch's parameters");
        job_end(j, err.code, &err);
        return;
    }
    if (hsc_neo4j_run_text(ctx->neo4j, ENRICH_WRITE_CYPHER, params, on_written, j, &err))
        job_end(j, err.code, &err);
}

static void on_written(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct job *j = arg;
    if (!res) {
        job_end(j, err->code, err);
        return;
    }
    int rc = HSC_OK;
    struct enrich_ctx *ctx = j->ctx;
    json_t *row = json_array_get(res->rows, 0);
    ctx->sim_replaced += (unsigned long long)json_integer_value(json_array_get(row, 1));
    ctx->sim_added += (unsigned long long)json_integer_value(json_array_get(row, 2));
    ctx->sim_removed += (unsigned long long)json_integer_value(json_array_get(row, 3));
    ctx->statements++;
    if (j->pend.n + j->pend.nrep > ctx->largest)
        ctx->largest = j->pend.n + j->pend.nrep;
    enrich_pending_free(&j->pend); /* written */
    j->rows_sent = 1;
    if (ctx->cap < ctx->max_changes)
        ctx->cap = ctx->cap * 2 < ctx->max_changes ? ctx->cap * 2 : ctx->max_changes;
    /* The batch's records go on (and its offsets are stored) only once every change
     * its titles made is written: a restart would not replay them. */
    if (j->base.b && j->own_left) {
        send_statement(j);
        return;
    }
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
    /* What the feed changed before this batch is older than what its titles change. */
    int rc = take_pending(ctx);
    j->own_lo = ctx->pend.next_seq;
    for (size_t i = 0; i < j->base.n && !rc; i++)
        if (j->winner[i])
            rc = index_apply(ctx, j->evs[i], 1);
    if (!rc)
        rc = take_pending(ctx);
    j->own_hi = ctx->pend.next_seq;
    j->rows_sent = 0;
    if (rc) {
        hsc_err_set(&err, rc, "enrich: similarity index: out of memory");
        job_end(j, rc, &err);
        return;
    }
    send_statement(j);
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

/* The state of partition p of the input topic, NULL if unknown (and, with grow, out of memory). */
static struct enrich_part *part_of(struct enrich_ctx *ctx, int32_t p, int grow)
{
    if (p < 0)
        return NULL;
    if ((size_t)p >= ctx->nparts) {
        size_t n = (size_t)p + 1;
        struct enrich_part *np = grow ? realloc(ctx->parts, n * sizeof(*np)) : NULL;
        if (!np)
            return NULL;
        for (size_t i = ctx->nparts; i < n; i++)
            np[i] = (struct enrich_part){.next = -1};
        ctx->parts = np;
        ctx->nparts = n;
    }
    return &ctx->parts[p];
}

/* Sets every partition of the input topic in parts to state (made on assignment only). */
static void set_parts(struct enrich_ctx *ctx, const rd_kafka_topic_partition_list_t *parts,
                      struct enrich_part state)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct enrich_part *p = !strcmp(parts->elems[i].topic, ctx->input_topic)
                                    ? part_of(ctx, parts->elems[i].partition, state.assigned)
                                    : NULL;
        if (p)
            *p = state;
    }
}

static void en_assign(void *vctx, const rd_kafka_topic_partition_list_t *parts)
{
    set_parts(vctx, parts, (struct enrich_part){.assigned = 1, .next = -1});
}

/*
 * The titles this process was going to write may be another's to write now:
 * every title still waiting for it is written as if now (its list whole and
 * every edge to it), so what the index left out while it waited is not lost
 * (simindex_set_pending).
 */
static void en_revoke(void *vctx, const rd_kafka_topic_partition_list_t *parts)
{
    struct enrich_ctx *ctx = vctx;
    set_parts(ctx, parts, (struct enrich_part){.next = -1});
    if (ctx->ix && simindex_release_pending(ctx->ix))
        hsc_log_error("enrich: out of memory re-sending the edges of revoked titles", NULL);
}

static int en_process(void *vctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                      hsc_stage_done_fn done)
{
    struct enrich_ctx *ctx = vctx;
    struct job *j;
    /* What the feed reads past these offsets, this process's stage writes later. */
    for (size_t i = 0; i < n; i++) {
        struct enrich_part *p = part_of(ctx, msgs[i]->rkm->partition, 0);
        if (p && p->assigned && msgs[i]->rkm->offset >= p->next)
            p->next = msgs[i]->rkm->offset + 1;
    }
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
    .on_assign = en_assign,
    .on_revoke = en_revoke,
};

/* Writes changes seen on the feed when no batch is coming to carry them. */
static void on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct enrich_ctx *ctx = w->data;
    (void)loop;
    (void)revents;
    start_flush(ctx);
}

/* A statement of pending changes, if there are some and none is in flight. */
static void start_flush(struct enrich_ctx *ctx)
{
    if (ctx->busy || !ctx->ix)
        return;
    if (take_pending(ctx) || (!ctx->pend.n && !ctx->pend.nrep))
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
    /* A title of this process's partitions that its stage has not reached: the
     * stage's write of it will send every edge it has then, so the edges it gains
     * meanwhile are not sent to a node that does not exist yet. Before the stage's
     * first message of a partition its position is unknown: nothing is left out. */
    const struct enrich_part *p = part_of(ctx, rkm->partition, 0);
    if (ev->op != HSC_OP_DELETE && p && p->assigned && p->next >= 0 && rkm->offset >= p->next)
        simindex_set_pending(ctx->ix, ev->id);
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
    ctx->max_changes = (size_t)hsc_config_int(cfg, "enrich.max_changes_per_statement");
    ctx->cap = ctx->max_changes;
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
    enrich_pending_free(&ctx->pend);
    free(ctx->parts);
    ctx->parts = NULL;
    ctx->nparts = 0;
    ctx->feed = NULL;
    ctx->ix = NULL;
    ctx->http = NULL;
    ctx->neo4j = NULL;
}
