/*
 * Fusion and policy. Scores from Milvus (cosine) and Neo4j (path sums) live
 * on unrelated scales, so each is normalised over what its source returned
 * before weighting (cosines min-max, path sums by the largest); a title one
 * source did not return scores 0 there, which is what makes agreement
 * between sources count. RRF ignores the scales altogether and uses ranks
 * only, for teams that prefer it. A request's intent (its embedding and seed
 * titles) comes first: the user's history re-ranks and fills, scaled by
 * history_weight, and the seeds themselves are never returned.
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
    double sum = 0, top = 0;
    for (size_t i = 0; i < p->nprefs; i++) {
        double w = fabs(p->prefs[i].weight);
        top = w > top ? w : top;
        const hsc_strlist *l = p->prefs[i].theme ? &a->themes : &a->genres;
        if (list_has(l, p->prefs[i].name))
            sum += p->prefs[i].weight;
    }
    return top > 0 ? tanh(sum / (2.0 * top)) : 0;
}

/* Vector: min-max over what Milvus returned (cosines of one page are close together). */
static void norm_vector(hsc_candidate *c, size_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].in_vector)
            continue;
        lo = c[i].vector_raw < lo ? c[i].vector_raw : lo;
        hi = c[i].vector_raw > hi ? c[i].vector_raw : hi;
    }
    for (size_t i = 0; i < n; i++)
        c[i].vector_score = !c[i].in_vector ? 0
                            : hi > lo       ? (c[i].vector_raw - lo) / (hi - lo)
                                            : 1.0;
}

/* Graph: divided by the strongest, so two paths count twice one and the weakest is not 0. */
static void norm_graph(hsc_candidate *c, size_t n, double scale)
{
    double hi = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].in_graph && c[i].graph_raw > hi)
            hi = c[i].graph_raw;
    for (size_t i = 0; i < n; i++)
        c[i].graph_score = c[i].in_graph && hi > 0 ? scale * c[i].graph_raw / hi : 0;
}

static int by_score(const void *a, const void *b)
{
    const hsc_candidate *x = a, *y = b;
    if (x->fill != y->fill)
        return x->fill ? 1 : -1;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

static void fuse(hsc_candidate *c, size_t n, const hsc_fusion *f, double graph_scale,
                 double policy_scale)
{
    norm_vector(c, n);
    norm_graph(c, n, graph_scale);
    double wg = f->w_graph * graph_scale, wp = f->w_policy * policy_scale;
    for (size_t i = 0; i < n; i++) {
        if (f->rrf) {
            double k = f->rrf_k;
            double s = 0;
            if (c[i].vector_rank)
                s += f->w_vector / (k + c[i].vector_rank);
            if (c[i].graph_rank)
                s += wg / (k + c[i].graph_rank);
            /* the policy score in (-1, 1) moves a title by at most one first-place vote */
            s += wp * c[i].policy_score / (k + 1);
            c[i].score = s;
        } else {
            /* graph_score already carries graph_scale */
            c[i].score = f->w_vector * c[i].vector_score + f->w_graph * c[i].graph_score +
                         wp * c[i].policy_score;
        }
    }
    qsort(c, n, sizeof(*c), by_score);
}

void hsc_rank_fuse(hsc_candidate *c, size_t n, const hsc_fusion *f)
{
    fuse(c, n, f, 1.0, 1.0);
}

size_t hsc_rank_select(hsc_candidate *c, size_t n, const hsc_fusion *f,
                       const hsc_search_request *req)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (list_has(&req->seed_ids, c[i].id) || list_has(&req->filters.exclude_ids, c[i].id)) {
            hsc_candidate_clear(&c[i]);
            continue;
        }
        if (kept != i)
            c[kept] = c[i];
        kept++;
    }
    double hw = f->history_weight < 0 ? 0 : f->history_weight > 1 ? 1 : f->history_weight;
    bool intent = req->embedding || req->seed_ids.n;
    /* the graph searched from the history alone: it is the user's past, not the request */
    double graph_scale = req->embedding && !req->seed_ids.n ? hw : 1.0;
    for (size_t i = 0; i < kept; i++)
        c[i].fill = intent && !c[i].in_vector && !(req->seed_ids.n && c[i].graph_intent > 0);
    fuse(c, kept, f, graph_scale, intent ? hw : 1.0);
    /* the history's fill goes below the intent's last, in its own order */
    double low = INFINITY, high = -INFINITY;
    for (size_t i = 0; i < kept; i++) {
        if (!c[i].fill && c[i].score < low)
            low = c[i].score;
        if (c[i].fill && c[i].score > high)
            high = c[i].score;
    }
    if (isfinite(low) && isfinite(high) && high >= low) {
        double shift = high - low + 1e-6;
        for (size_t i = 0; i < kept; i++)
            if (c[i].fill)
                c[i].score -= shift;
    }
    return kept;
}
