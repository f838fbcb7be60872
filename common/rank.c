/*
 * Fusion and policy. Scores from Milvus (cosine) and Neo4j (path sums) live
 * on unrelated scales, so each is min-max normalised over what its source
 * returned before weighting; a title one source did not return scores 0
 * there, which is what makes agreement between sources count. RRF ignores
 * the scales altogether and uses ranks only, for teams that prefer it.
 */
#include "rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void hsc_policy_clear(hsc_policy *p)
{
    free(p->user_id);
    hsc_strlist_clear(&p->excluded_genres);
    hsc_strlist_clear(&p->languages);
    hsc_strlist_clear(&p->blocked_ids);
    for (size_t i = 0; i < p->nprefs; i++)
        free(p->prefs[i].name);
    free(p->prefs);
    hsc_strlist_clear(&p->history);
    memset(p, 0, sizeof(*p));
}

static int copy_list(hsc_strlist *dst, const hsc_strlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (hsc_strlist_push(dst, src->v[i], strlen(src->v[i])))
            return HSC_ENOMEM;
    return HSC_OK;
}

int hsc_policy_copy(hsc_policy *dst, const hsc_policy *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->version = src->version;
    dst->has_max_maturity = src->has_max_maturity;
    dst->max_maturity = src->max_maturity;
    dst->user_id = src->user_id ? strdup(src->user_id) : NULL;
    dst->prefs = calloc(src->nprefs ? src->nprefs : 1, sizeof(*dst->prefs));
    int bad = (src->user_id && !dst->user_id) || !dst->prefs ||
              copy_list(&dst->excluded_genres, &src->excluded_genres) ||
              copy_list(&dst->languages, &src->languages) ||
              copy_list(&dst->blocked_ids, &src->blocked_ids) ||
              copy_list(&dst->history, &src->history);
    for (size_t i = 0; !bad && i < src->nprefs; i++) {
        dst->prefs[i] = src->prefs[i];
        dst->prefs[i].name = strdup(src->prefs[i].name);
        dst->nprefs++;
        bad = !dst->prefs[i].name;
    }
    if (bad) {
        hsc_policy_clear(dst);
        return HSC_ENOMEM;
    }
    return HSC_OK;
}

void hsc_candidate_clear(hsc_candidate *c)
{
    free(c->attrs.title);
    free(c->attrs.language);
    hsc_strlist_clear(&c->attrs.genres);
    hsc_strlist_clear(&c->attrs.themes);
    for (size_t i = 0; i < c->nrels; i++) {
        free(c->rels[i].type);
        free(c->rels[i].seed);
    }
    free(c->rels);
    c->rels = NULL;
    c->nrels = 0;
}

static bool list_has(const hsc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcasecmp(l->v[i], s))
            return true;
    return false;
}

bool hsc_rank_allows(const hsc_search_filters *f, const hsc_policy *p, const hsc_candidate *c,
                     const char **why)
{
    const hsc_title_attrs *a = &c->attrs;
    if (f && list_has(&f->exclude_ids, c->id))
        return *why = "excluded by the request", false;
    if (p && list_has(&p->blocked_ids, c->id))
        return *why = "a title the user blocked", false;
    if (!c->has_attrs)
        return true;
    if (p)
        for (size_t i = 0; i < a->genres.n; i++)
            if (list_has(&p->excluded_genres, a->genres.v[i]))
                return *why = "a genre the user excludes", false;
    if (p && p->has_max_maturity && (a->maturity < 0 || a->maturity > p->max_maturity))
        return *why = "above the user's maturity ceiling", false;
    if (p && p->languages.n && (!a->language || !list_has(&p->languages, a->language)))
        return *why = "not in the user's languages", false;
    if (!f)
        return true;
    if ((f->has & HSC_FILTER_MAX_MATURITY) && (a->maturity < 0 || a->maturity > f->max_maturity))
        return *why = "above the requested maturity", false;
    if (f->language && (!a->language || strcasecmp(a->language, f->language)))
        return *why = "not in the requested language", false;
    if ((f->has & HSC_FILTER_YEAR_MIN) && (a->year == 0 || a->year < f->year_min))
        return *why = "before year_min", false;
    if ((f->has & HSC_FILTER_YEAR_MAX) && (a->year == 0 || a->year > f->year_max))
        return *why = "after year_max", false;
    if (f->genres.n) {
        bool any = false;
        for (size_t i = 0; i < a->genres.n && !any; i++)
            any = list_has(&f->genres, a->genres.v[i]);
        if (!any)
            return *why = "none of the requested genres", false;
    }
    return true;
}

double hsc_rank_policy_score(const hsc_policy *p, const hsc_title_attrs *a)
{
    if (!p || !p->nprefs)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < p->nprefs; i++) {
        const hsc_strlist *l = p->prefs[i].theme ? &a->themes : &a->genres;
        if (list_has(l, p->prefs[i].name))
            sum += p->prefs[i].weight;
    }
    return tanh(sum / 3.0);
}

static void minmax(hsc_candidate *c, size_t n, int graph)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!(graph ? c[i].in_graph : c[i].in_vector))
            continue;
        double v = graph ? c[i].graph_raw : c[i].vector_raw;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    for (size_t i = 0; i < n; i++) {
        double *out = graph ? &c[i].graph_score : &c[i].vector_score;
        if (!(graph ? c[i].in_graph : c[i].in_vector)) {
            *out = 0;
            continue;
        }
        double v = graph ? c[i].graph_raw : c[i].vector_raw;
        *out = hi > lo ? (v - lo) / (hi - lo) : 1.0;
    }
}

static int by_score(const void *a, const void *b)
{
    const hsc_candidate *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

void hsc_rank_fuse(hsc_candidate *c, size_t n, const hsc_fusion *f)
{
    minmax(c, n, 0);
    minmax(c, n, 1);
    for (size_t i = 0; i < n; i++) {
        if (f->rrf) {
            double k = f->rrf_k;
            double s = 0;
            if (c[i].vector_rank)
                s += f->w_vector / (k + c[i].vector_rank);
            if (c[i].graph_rank)
                s += f->w_graph / (k + c[i].graph_rank);
            /* the policy score in (-1, 1) moves a title by at most one first-place vote */
            s += f->w_policy * c[i].policy_score / (k + 1);
            c[i].score = s;
        } else {
            c[i].score = f->w_vector * c[i].vector_score + f->w_graph * c[i].graph_score +
                         f->w_policy * c[i].policy_score;
        }
    }
    qsort(c, n, sizeof(*c), by_score);
}
