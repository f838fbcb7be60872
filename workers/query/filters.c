/*
 * Builds the hard filters a search pushes into its backends: the Milvus
 * expression and the Neo4j candidate filter, from the request's filters and
 * the user's policy. Pure; what the backends return is still checked against
 * the catalogue by hsc_rank_allows (rank.c), so these only narrow the fetch.
 */
#include "filters.h"

#include <stdlib.h>
#include <string.h>

#include "query.h"

/* Lower-cased copies of a list (tags are stored lower-case everywhere). */
static void lower_list(const hsc_strlist *in, hsc_strlist *out)
{
    for (size_t i = 0; i < in->n; i++) {
        char *v = strdup(in->v[i]);
        for (char *p = v; p && *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (v)
            hsc_strlist_push(out, v, strlen(v));
        free(v);
    }
}

/* Adds "[not] array_contains_any(genres, [...])" of the lower-cased list. */
static void genres_filter(hsc_milvus_filter *f, const hsc_strlist *genres, int negate)
{
    hsc_strlist g = {0};
    lower_list(genres, &g);
    hsc_milvus_filter_contains_any(f, "genres", (const char *const *)g.v, g.n, negate);
    hsc_strlist_clear(&g);
}

/* The stricter of a maturity ceiling (-1: none) and the policy's. */
static int stricter_maturity(int ceiling, const hsc_policy *p)
{
    if (p->has_max_maturity && (ceiling < 0 || p->max_maturity < ceiling))
        return p->max_maturity;
    return ceiling;
}

void query_milvus_filter(const hsc_search_request *req, const hsc_policy *pushed,
                         hsc_milvus_filter *f)
{
    const hsc_search_filters *rf = &req->filters;
    if (rf->genres.n)
        genres_filter(f, &rf->genres, 0);
    if (rf->language)
        hsc_milvus_filter_str(f, "language", rf->language, 0);
    if (rf->has & HSC_FILTER_YEAR_MIN)
        hsc_milvus_filter_int(f, "year", ">=", rf->year_min);
    if (rf->has & HSC_FILTER_YEAR_MAX)
        hsc_milvus_filter_int(f, "year", "<=", rf->year_max);
    int ceiling = rf->has & HSC_FILTER_MAX_MATURITY ? rf->max_maturity : -1;
    if (pushed) {
        if (pushed->excluded_genres.n)
            genres_filter(f, &pushed->excluded_genres, 1);
        ceiling = stricter_maturity(ceiling, pushed);
        if (pushed->languages.n)
            hsc_milvus_filter_in(f, "language", (const char *const *)pushed->languages.v,
                                 pushed->languages.n);
    }
    if (ceiling >= 0)
        hsc_milvus_filter_int(f, "maturity", "<=", ceiling);
}

void query_graph_filter(const hsc_search_request *req, const hsc_policy *policy,
                        double history_weight, hsc_strlist *langs, hsc_graph_filter *gf)
{
    const hsc_search_filters *rf = &req->filters;
    memset(gf, 0, sizeof(*gf));
    gf->genres = &rf->genres;
    gf->exclude_ids = &rf->exclude_ids;
    gf->year_min = rf->has & HSC_FILTER_YEAR_MIN ? rf->year_min : 0;
    gf->year_max = rf->has & HSC_FILTER_YEAR_MAX ? rf->year_max : 0;
    gf->max_maturity = rf->has & HSC_FILTER_MAX_MATURITY ? rf->max_maturity : -1;
    gf->nexplicit = req->seed_ids.n; /* the seeds are the request's first, then history */
    gf->history_weight = history_weight;
    if (policy) {
        gf->excluded_genres = &policy->excluded_genres;
        gf->languages = &policy->languages;
        gf->max_maturity = stricter_maturity(gf->max_maturity, policy);
    }
    if (rf->language) {
        /* a requested language narrows the user's list to one */
        hsc_strlist_push(langs, rf->language, strlen(rf->language));
        gf->languages = langs;
    }
}
