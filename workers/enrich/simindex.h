/*
 * The similarity index of hsc-enrich: every title's genres, themes and moods
 * in memory (an inverted index tag -> titles) and every title's SIMILAR_TO
 * top-N, kept exact as titles are added, re-tagged and deleted. It records
 * which lists changed since the last simindex_take(), as edges to add, to
 * delete and lists to replace, so the caller writes only what changed.
 *
 * The score is the weighted Jaccard similarity of docs/neo4j.md: the weight
 * of the tags two titles share over the weight of the tags either has. A
 * list keeps the top_n best scoring at least min_score, ties broken by id.
 * Pure: no I/O.
 */
#ifndef HSC_SIMINDEX_H
#define HSC_SIMINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "hsc/error.h"
#include "hsc/message.h"

/* The formula's weights and the list bounds. */
struct simindex_weights {
    double genre, theme, mood;
    double min_score;
    int top_n;
    /*
     * Titles scored per tag in one search, 0 for no limit. Below it (every
     * tag on fewer titles) the lists are exact; above it, near-exact: the
     * titles the bound cannot rule out are visited from a rotating start.
     */
    int fanout;
};

/* An index over a whole catalogue. */
typedef struct simindex simindex;

/* One neighbour of a title: its id (owned by the index) and the score. */
struct simindex_neighbour {
    const char *id;
    double score;
};

/* One edge change: an add (or a new score) when score >= 0, a delete when score < 0. */
struct simindex_edge {
    const char *src, *dst; /* owned by the index */
    double score;
};

/*
 * What changed since the last take: titles whose whole list is to be written
 * again (replace: delete every out-edge, then write the list), and single
 * edges of the other titles. Arrays owned by the index until the next take.
 */
struct simindex_changes {
    const char **replace;
    size_t nreplace;
    struct simindex_edge *edges;
    size_t nedges;
};

/* Work counters (for logs, metrics and the benchmark). */
struct simindex_stats {
    size_t titles, deleted, tags;
    unsigned long long scored;  /* exact scores computed */
    unsigned long long skipped; /* posting entries skipped by the bound */
    size_t bytes;               /* memory held by the index */
};

/* Creates an empty index, or NULL (err set) if the weights are unusable. */
simindex *simindex_new(const struct simindex_weights *w, hsc_err *err);

/* Frees the index. */
void simindex_free(simindex *ix);

/*
 * Adds or re-tags title id at version with these tags (a set: duplicates
 * count once). An event older than what the index holds (or a delete's
 * version) changes nothing and returns 0; an applied one returns 1.
 * HSC_ENOMEM is the only error.
 */
int simindex_upsert(simindex *ix, const char *id, int64_t version, const hsc_strlist *genres,
                    const hsc_strlist *themes, const hsc_strlist *moods);

/*
 * Loading a catalogue at once (from PostgreSQL at start): between _begin and
 * _end, upserts and deletes keep the lists as usual but record no change
 * (the graph is assumed to hold them already).
 */
void simindex_bulk_begin(simindex *ix);

/* Ends a bulk load: changes are recorded again. Returns 0. */
int simindex_bulk_end(simindex *ix);

/* Deletes title id at version (kept as a tombstone holding the version). Returns 1 if applied. */
int simindex_delete(simindex *ix, const char *id, int64_t version);

/*
 * Marks id as written by its owner now: its whole list is replaced on the
 * next take, and every title holding it in its list gets that edge again
 * (its node may not have existed when the edge was first written).
 */
int simindex_mark_written(simindex *ix, const char *id);

/*
 * Marks id (a live title) as waiting for its owner's write in this process:
 * until simindex_mark_written(id), an edge from or to it that enters a list
 * is not recorded (that write sends the list whole and every edge to the
 * title, and before it the title's node may not exist), nor listed by
 * simindex_list_to_write. Removals are still recorded. Returns 0.
 */
int simindex_set_pending(simindex *ix, const char *id);

/* Marks every title still waiting (simindex_set_pending) as written now; 0 or HSC_ENOMEM. */
int simindex_release_pending(simindex *ix);

/* Fills out with what changed since the last take and starts a new change set. */
int simindex_take(simindex *ix, struct simindex_changes *out);

/*
 * The current list of id, best first: up to cap neighbours into out.
 * Returns how many it holds (0 for an unknown or deleted id).
 */
size_t simindex_list(simindex *ix, const char *id, struct simindex_neighbour *out, size_t cap);

/* As simindex_list, without the titles waiting for their owner's write; returns how many it put. */
size_t simindex_list_to_write(simindex *ix, const char *id, struct simindex_neighbour *out,
                              size_t cap);

/* The version held for id: 1 and *version if it is known (deleted or not), else 0. */
int simindex_version(const simindex *ix, const char *id, int64_t *version, int *deleted);

/* The counters. */
void simindex_get_stats(const simindex *ix, struct simindex_stats *out);

#endif
