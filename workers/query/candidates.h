/*
 * The candidate set of one search: the titles the legs (Milvus, Neo4j) found,
 * merged by id, with what each leg said of them. Pure: no I/O, no loop.
 */
#ifndef HSC_QUERY_CANDIDATES_H
#define HSC_QUERY_CANDIDATES_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "milvus.h"
#include "rank.h"

/* The candidates in arrival order, with an open-addressing index by id. */
typedef struct query_cands {
    hsc_candidate *c;
    size_t n, cap;
    int32_t *idx; /* positions in c; -1: empty; idxcap is a power of two */
    size_t idxcap;
    const char *corr; /* the search's correlation id, for the log (not owned) */
} query_cands;

/* The candidate for id, or NULL when it is not in the set. */
hsc_candidate *query_cands_find(query_cands *s, const char *id);

/*
 * The candidate for id, added if new; NULL when out of memory or the id is
 * not one ingest would have accepted (ids come back from Milvus and Neo4j,
 * which are not trusted to hold only what hsc wrote).
 */
hsc_candidate *query_cands_get(query_cands *s, const char *id);

/* Rebuilds the index after the array was compacted or reordered (ranking). */
void query_cands_reindex(query_cands *s);

/* Frees the candidates and the index; the set is empty afterwards. */
void query_cands_free(query_cands *s);

/* Merges Milvus hits (best first): their similarity and rank. */
void query_cands_add_vector(query_cands *s, const hsc_milvus_hit *hits, size_t n);

/*
 * Merges Neo4j candidates (best first): score, intent and rank, and, when
 * relationships are asked for, the paths that found each one.
 */
void query_cands_add_graph(query_cands *s, const hsc_graph_candidate *v, size_t n, int rels);

/*
 * Merges the graph's links of known candidates to the seeds as their
 * relationships (ids not in the set are ignored). With as_scores
 * (HybridSequential), the sum of a candidate's links is also its graph score,
 * ranked (ties share a rank); without, only candidates with no relationships
 * yet take them (the top results, when relationships are asked for).
 */
void query_cands_add_links(query_cands *s, const hsc_graph_info *v, size_t n, int as_scores);

/* A seed of the graph leg: its catalogue tags (NULL: not in the catalogue) and its weight. */
typedef struct query_seed_tags {
    const hsc_title_attrs *attrs;
    double weight; /* 1 for the request's own seeds, the history weight for the user's */
} query_seed_tags;

/*
 * Recomputes every candidate's graph score as its links to the seeds (what
 * the graph leg returned, SIMILAR_TO and RELATED_TO) plus tag_weight × seed
 * weight for each genre and theme it shares with each seed, and ranks them
 * again. Counted here for every candidate, whichever leg found it, from the
 * catalogue rows the search reads anyway: Neo4j could only walk a sample of
 * a genre of 50,000 titles, and it costs a search nothing here.
 * Candidates without attributes keep their scores.
 */
void query_cands_score_shared(query_cands *s, const query_seed_tags *seeds, size_t nseeds,
                              double tag_weight);

#endif
