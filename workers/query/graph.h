/*
 * The graph queries the query worker needs, on the Neo4j client:
 *  - candidates: titles linked to seed titles through SIMILAR_TO and
 *    RELATED_TO, each with a graph score and the links that explain it
 *    (shared genres and themes are counted by hsc-query, candidates.h);
 *  - enrichment: for a list of candidates, their genres, themes and moods and
 *    their links to the seeds.
 * Both are one parameterised statement each (see docs/neo4j.md for the model).
 */
#ifndef HSC_GRAPH_H
#define HSC_GRAPH_H

#include "hsc/message.h"
#include "neo4j.h"

/* One graph candidate. */
typedef struct hsc_graph_candidate {
    char id[HSC_MAX_ID_LEN + 1];
    double score;  /* Σ seed weight × link strength: SIMILAR_TO score, 1 per RELATED_TO;
                      not capped */
    char *why;     /* JSON array of up to 3 {seed, via, score, through} */
    double intent; /* the part of score from the request's own seeds (weight 1) */
} hsc_graph_candidate;

/* What the graph knows of one candidate. */
typedef struct hsc_graph_info {
    char id[HSC_MAX_ID_LEN + 1];
    hsc_strlist genres, themes, moods;
    char *links; /* JSON array of {seed, type, score} between it and the seeds */
} hsc_graph_info;

/* Completion of hsc_graph_candidates: the candidates, best first (valid during the call). */
typedef void (*hsc_graph_candidates_fn)(void *arg, const hsc_graph_candidate *c, size_t n,
                                        double seconds, const hsc_err *err);

/* Completion of hsc_graph_enrich (valid during the call). */
typedef void (*hsc_graph_info_fn)(void *arg, const hsc_graph_info *v, size_t n, double seconds,
                                  const hsc_err *err);

/* Hard constraints pushed into the candidate query; every member is optional. */
typedef struct hsc_graph_filter {
    const hsc_strlist *genres;          /* any of these (NULL/empty: any) */
    const hsc_strlist *excluded_genres; /* none of these */
    const hsc_strlist *exclude_ids;     /* never these titles */
    const hsc_strlist *languages;       /* any of these (NULL/empty: any) */
    int year_min, year_max;             /* 0: unbounded */
    int max_maturity;                   /* -1: unbounded; unrated titles never pass a ceiling */
    size_t nexplicit;                   /* seeds[0..nexplicit) are the request's own: weight 1 */
    double history_weight;              /* the weight of the other seeds (the user's history) when
                                           nexplicit > 0; without explicit seeds every seed weighs 1 */
} hsc_graph_filter;

/* Finds up to limit candidates for the seed titles (seeds excluded), those the request's own
   seeds reach first; f may be NULL. */
int hsc_graph_candidates(hsc_neo4j *n, const char *const *seeds, size_t nseeds, int limit,
                         const hsc_graph_filter *f, hsc_graph_candidates_fn cb, void *arg,
                         hsc_err *err);

/* Describes ids: tags and links to the seeds (nseeds may be 0). */
int hsc_graph_enrich(hsc_neo4j *n, const char *const *ids, size_t nids, const char *const *seeds,
                     size_t nseeds, hsc_graph_info_fn cb, void *arg, hsc_err *err);

/* The statements, exported for the tests and the benchmark. */
extern const char HSC_GRAPH_CANDIDATES_CYPHER[];
extern const char HSC_GRAPH_ENRICH_CYPHER[];

/* Parses a candidates result (rows of id, score, why); malloc'd array. */
int hsc_graph_parse_candidates(const hsc_neo4j_result *r, hsc_graph_candidate **out, size_t *n,
                               hsc_err *err);

/* Parses an enrichment result (rows of id, genres, themes, moods, links); malloc'd array. */
int hsc_graph_parse_info(const hsc_neo4j_result *r, hsc_graph_info **out, size_t *n, hsc_err *err);

/* Frees what the parsers returned. */
void hsc_graph_candidates_free(hsc_graph_candidate *c, size_t n);

/* Frees what the parsers returned. */
void hsc_graph_info_free(hsc_graph_info *v, size_t n);

#endif
