/*
 * The enrich stage: canonical content records into the Neo4j graph (titles,
 * genres, themes, moods, editorial and similarity edges), one transaction per
 * batch, then the enriched record (with the tags found by keyword) on to
 * hsc.content.enriched. The pure parts (vocabulary, extraction, the batch's
 * parameters, the similarity formula) are exported for the unit tests.
 */
#ifndef HSC_ENRICH_H
#define HSC_ENRICH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hsc/message.h"
#include "http.h"
#include "neo4j.h"
#include "simindex.h"
#include "stage.h"

struct enrich_feed;

/* One vocabulary entry: a theme or mood and the words that reveal it. */
struct enrich_term {
    int is_mood;
    char *name;
    char **keywords; /* lower case */
    size_t nkeywords;
};

/* The vocabulary of schemas/vocabulary.tsv (enrich.vocabulary). */
struct enrich_vocab {
    struct enrich_term *terms;
    size_t n;
};

/* Weights of the similarity formula and its bounds. */
struct enrich_weights {
    double genre, theme, mood;
    double min_score;
    int top_n;
    int fanout; /* titles considered per tag when scoring (exact below it) */
};

/* One pending SIMILAR_TO change: src -> dst gets score, or is deleted when score < 0. */
struct enrich_pending_edge {
    const char *src, *dst; /* the index's id strings (kept for its life), NULL: free slot */
    double score;
    uint64_t seq; /* when it was recorded (enrich_pending.next_seq) */
};

/* One title whose whole list is to be written (read from the index when written). */
struct enrich_pending_rep {
    const char *id; /* NULL: free slot */
    uint64_t seq;
};

/*
 * The SIMILAR_TO changes not written yet: single edges (a later change of a
 * pair replaces an earlier one) and titles whose list is written whole. Open
 * addressing over the index's id pointers (one string per title), so an entry
 * is 32 bytes and adding one allocates nothing: after a burst it holds every
 * change the feed made before the batches catch up, over a million at 100,000
 * titles, which as a jansson object cost about 300 bytes each. Each entry
 * carries the order it was recorded in, so a statement can take part of the
 * set (enrich_pending_split) and a list replaced later supersedes the single
 * edges of that list recorded before it.
 */
struct enrich_pending {
    struct enrich_pending_edge *e;
    size_t n, cap;
    struct enrich_pending_rep *rep;
    size_t nrep, caprep;
    uint64_t next_seq; /* the order of the next change recorded */
};

/* Records a change of src -> dst (score < 0: delete); 0 or HSC_ENOMEM. */
int enrich_pending_edge(struct enrich_pending *p, const char *src, const char *dst, double score);

/* Records that id's whole list is to be written; 0 or HSC_ENOMEM. */
int enrich_pending_replace(struct enrich_pending *p, const char *id);

/* Adds to p what older holds and p does not (changes not written go back under newer ones). */
int enrich_pending_merge_older(struct enrich_pending *p, const struct enrich_pending *older);

/*
 * Moves into out (empty) the changes one statement writes next, so that no
 * statement outgrows the server's transaction memory: at most cap of them, a
 * single edge counting 1 and a replaced list rep_cost (the most edges it
 * writes), but always at least one change. Those recorded in [first_lo,
 * first_hi) go first (a batch's own changes, so its offsets are stored only
 * once they are written), then the oldest. Single edges superseded by a later
 * replace of their source's list are dropped from both sets (written after
 * the list, they would bring back an old edge). p keeps the rest and its
 * order; *first_left (if not NULL) is how many of [first_lo, first_hi) it
 * still holds. 0, or HSC_ENOMEM with p unchanged and out empty.
 */
int enrich_pending_split(struct enrich_pending *p, size_t cap, size_t rep_cost, uint64_t first_lo,
                         uint64_t first_hi, struct enrich_pending *out, size_t *first_left);

/* Frees p's memory and empties it. */
void enrich_pending_free(struct enrich_pending *p);

/* One partition of the input topic, as this process's stage consumer holds it. */
struct enrich_part {
    int assigned;
    int64_t next; /* the offset after the last one given to process(); -1: none since assigned */
};

/* What the stage needs. */
struct enrich_ctx {
    hsc_http *http;
    hsc_neo4j *neo4j;
    struct enrich_vocab vocab;
    struct enrich_weights w;
    char input_topic[256], enriched_topic[256], schemas_dir[1024];
    size_t max_message_bytes;
    int constraints_done;
    unsigned long long written, deleted, derived_tags;
    struct ev_loop *loop;
    simindex *ix;               /* the whole catalogue's tags and SIMILAR_TO lists */
    struct enrich_feed *feed;   /* every partition's titles, for the index */
    struct enrich_pending pend; /* changes not written yet */
    int busy;                   /* a statement is in flight */
    void *waiting;              /* a batch waiting for it */
    ev_timer flush;             /* writes what the feed changed between batches */
    size_t max_changes;         /* enrich.max_changes_per_statement */
    size_t cap;                 /* changes per statement now: halved when Neo4j runs out of
                                   memory, back up by doubling after each statement written */
    unsigned long long sim_added, sim_removed, sim_replaced, flush_failures, splits;
    unsigned long long statements, largest; /* statements written; most changes in one */
    struct enrich_part *parts; /* by partition number: which titles this process will write */
    size_t nparts;
};

/* Loads a vocabulary file; an error names the line. */
int enrich_vocab_load(const char *path, struct enrich_vocab *v, hsc_err *err);

/* Frees a vocabulary. */
void enrich_vocab_free(struct enrich_vocab *v);

/*
 * Adds to ev's themes and moods the terms whose keywords occur (whole words,
 * case-insensitive) in its title or description. Returns how many were added.
 */
size_t enrich_extract(const struct enrich_vocab *v, hsc_content_event *ev);

/* A title's total tag weight (genres, themes and moods, each by its weight). */
double enrich_attr_weight(const hsc_content_event *e, const struct enrich_weights *w);

/* The weighted Jaccard similarity of two titles' genres, themes and moods. */
double enrich_similarity(const hsc_content_event *a, const hsc_content_event *b,
                         const struct enrich_weights *w);

/*
 * The parameters of ENRICH_WRITE_CYPHER as JSON text (malloc'd; NULL when out
 * of memory), written straight from the batch's winners and the pending
 * similarity changes (pend, or NULL for none; the lists to replace are read
 * from ix), without building a tree.
 * Rows name their tags by position in $genres, $themes and $moods, and the
 * changes name titles by position in $ids.
 */
char *enrich_params_text(hsc_content_event *const *evs, const int *winner, size_t n,
                         const struct enrich_weights *w, const struct enrich_pending *pend,
                         simindex *ix);

/* enrich_params_text without similarity changes, parsed (new reference; NULL when out of memory).
 */
json_t *enrich_params(hsc_content_event *const *evs, const int *winner, size_t n,
                      const struct enrich_weights *w);

/*
 * The one statement (one transaction) that writes a batch into the graph;
 * its parameters are enrich_params_text's.
 */
extern const char ENRICH_WRITE_CYPHER[];

/* Fills ctx from cfg (clients on loop; nothing connects yet). */
int enrich_ctx_init(struct enrich_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                    hsc_err *err);

/*
 * Reads the ingested topic's ends, loads the catalogue from PostgreSQL
 * (pg.url) into the similarity index, then starts the feed from those ends
 * and the flush timer. Blocking; call before the stage starts.
 */
int enrich_index_start(struct enrich_ctx *ctx, const hsc_config *cfg, hsc_err *err);

/* Cancels what is in flight and frees everything. */
void enrich_ctx_destroy(struct enrich_ctx *ctx);

/* The stage operations of enrich. */
extern const struct hsc_stage_ops enrich_ops;

#endif
