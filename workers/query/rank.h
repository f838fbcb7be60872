/*
 * Ranking for search: a user's policy (hard constraints and learned
 * preferences), the checks that apply constraints to a candidate, and the
 * fusion of vector, graph and policy scores into one order. Pure functions,
 * so the unit tests check the arithmetic without a backend.
 */
#ifndef HSC_RANK_H
#define HSC_RANK_H

#include <stdbool.h>
#include <stdint.h>

#include "hsc/error.h"
#include "hsc/message.h"
#include "hsc/search.h"

/* One learned preference weight (user_preferences). */
typedef struct hsc_pref {
    int theme; /* 0: genre, 1: theme */
    char *name;
    double weight;
} hsc_pref;

/* A user's policy as stored in PostgreSQL (user_policies, user_preferences, learning_events). */
typedef struct hsc_policy {
    char *user_id;
    int64_t version; /* 0 when the user has no policy row */
    hsc_strlist excluded_genres;
    hsc_strlist languages;   /* empty: any */
    hsc_strlist blocked_ids; /* titles the user never sees (policy events) */
    bool has_max_maturity;
    int max_maturity;
    hsc_pref *prefs;
    size_t nprefs;
    hsc_strlist history; /* recently liked or completed titles, newest first (graph seeds) */
} hsc_policy;

/* Frees what p holds and zeroes it. */
void hsc_policy_clear(hsc_policy *p);

/* Deep-copies src into dst; 0 or HSC_ENOMEM. */
int hsc_policy_copy(hsc_policy *dst, const hsc_policy *src);

/* What the catalogue says about a title (PostgreSQL's content row). */
typedef struct hsc_title_attrs {
    char *title;
    hsc_strlist genres, themes;
    char *language; /* or NULL */
    int year;       /* 0 when unknown */
    int maturity;   /* -1 when unknown */
} hsc_title_attrs;

/* A title being ranked, with what each source said about it. */
typedef struct hsc_candidate {
    char id[HSC_MAX_ID_LEN + 1];
    bool in_vector, in_graph, has_attrs;
    double vector_raw, graph_raw; /* as the backend returned them */
    double graph_intent;          /* the part of graph_raw from the request's own seeds */
    double graph_linked; /* the part of graph_raw from SIMILAR_TO/RELATED_TO (not shared tags) */
    int vector_rank, graph_rank; /* 1-based within the source; 0 when absent */
    double vector_score, graph_score, policy_score, score; /* after normalisation/fusion */
    hsc_title_attrs attrs;
    hsc_search_relationship *rels;
    size_t nrels;
    bool has_rels;
    bool fill; /* found only through the user's history: ranks after the intent's */
} hsc_candidate;

/* Frees what c holds (not c). */
void hsc_candidate_clear(hsc_candidate *c);

/*
 * True if c may be shown under the request's filters and the user's policy
 * (NULL: anonymous). Without attributes only the id rules are checked. When
 * it returns false, *why names the rule ("excluded genre horror", ...).
 */
bool hsc_rank_allows(const hsc_search_filters *f, const hsc_policy *p, const hsc_candidate *c,
                     const char **why);

/*
 * The policy score of a title, in (-1, 1): tanh(Σ w / (2·max|w|)) over the
 * preferences its genres and themes match, w being the user's (decayed)
 * weights. Dividing by the user's strongest weight bounds it whatever the
 * number of interactions, so a long history never saturates it: a title
 * matching more of what the user likes still scores higher.
 */
double hsc_rank_policy_score(const hsc_policy *p, const hsc_title_attrs *a);

/* How scores are fused. */
typedef struct hsc_fusion {
    bool rrf;  /* reciprocal-rank fusion instead of a weighted sum */
    int rrf_k; /* 60 */
    double w_vector, w_graph, w_policy;
    /*
     * How much the user's history counts against a stated intent (an embedding or
     * seed titles), 0..1: the weight of history seeds in the graph query and the
     * factor on w_policy (and, with only history seeds, on w_graph) when the
     * request states an intent. 1: history counts as much as the request.
     */
    double history_weight;
    double half_life_days; /* preference weights halve every this many days (policy SQL) */
    /* graph strength of one genre or theme a candidate shares with a seed (times the seed's
     * weight), counted in hsc for every candidate; 0: the links alone */
    double shared_tag;
} hsc_fusion;

/*
 * Normalises each source's scores (vector: min-max of the cosines over what
 * Milvus returned; graph: path sums divided by the largest, so strength
 * ratios survive), fills score by the chosen fusion with every weight as
 * given, and sorts c best first (ties by id, so the order is stable).
 */
void hsc_rank_fuse(hsc_candidate *c, size_t n, const hsc_fusion *f);

/*
 * The rank step of a search: drops the request's seed titles and excluded
 * ids (clearing them), fuses and sorts. When req states an intent (an
 * embedding or seeds), what the intent found (Milvus's hits, titles the
 * request's seeds reach in the graph) ranks first, re-ranked by the history
 * (policy, history seeds) scaled by f->history_weight; titles only the
 * history found fill after them, their scores shifted below the last of
 * the intent's so scores still fall down the list. Returns how many remain.
 */
size_t hsc_rank_select(hsc_candidate *c, size_t n, const hsc_fusion *f,
                       const hsc_search_request *req);

#endif
