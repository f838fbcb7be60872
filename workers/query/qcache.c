/* Canonical request text and cache keys; see qcache.h for why. */
#include "qcache.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/error.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends "name=" and l's entries, lower-cased if asked, sorted and deduplicated. */
static int put_set(hsc_buf *out, const char *name, const hsc_strlist *l, int lower)
{
    char **v = calloc(l->n ? l->n : 1, sizeof(*v));
    if (!v)
        return HSC_ENOMEM;
    int rc = HSC_OK;
    size_t n = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        v[n] = strdup(l->v[i]);
        if (!v[n]) {
            rc = HSC_ENOMEM;
            break;
        }
        for (char *c = v[n]; lower && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        n++;
    }
    qsort(v, n, sizeof(*v), cmp_str);
    rc = rc ? rc : hsc_buf_printf(out, "%s=", name);
    for (size_t i = 0; i < n && !rc; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]))
            /* entries cannot hold a newline or the separator unescaped */
            rc = hsc_buf_json_str(out, v[i]);
    rc = rc ? rc : hsc_buf_append(out, "\n", 1);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return rc;
}

int hsc_qcache_canonical(const hsc_search_request *r, const char *scope, hsc_buf *out)
{
    const hsc_search_filters *f = &r->filters;
    hsc_strategy s = r->strategy == HSC_STRATEGY_CACHED_ONLY ? HSC_STRATEGY_AUTO : r->strategy;
    char lang[40] = "";
    for (size_t i = 0; f->language && f->language[i] && i + 1 < sizeof(lang); i++)
        lang[i] = (char)tolower((unsigned char)f->language[i]), lang[i + 1] = 0;
    int rc = hsc_buf_printf(out, "hsc-search-v1\nscope=%s\nuser=%s\nk=%d\nstrategy=%s\nrel=%d\n",
                            scope, r->user_id ? r->user_id : "", r->k, hsc_strategy_name(s),
                            r->include_relationships ? 1 : 0);
    rc = rc ? rc : put_set(out, "seeds", &r->seed_ids, 0);
    rc = rc ? rc : put_set(out, "genres", &f->genres, 1);
    rc = rc ? rc : put_set(out, "exclude", &f->exclude_ids, 0);
    rc = rc ? rc : hsc_buf_printf(out, "lang=%s\n", lang);
    if (!rc && (f->has & HSC_FILTER_YEAR_MIN))
        rc = hsc_buf_printf(out, "year_min=%d\n", f->year_min);
    if (!rc && (f->has & HSC_FILTER_YEAR_MAX))
        rc = hsc_buf_printf(out, "year_max=%d\n", f->year_max);
    if (!rc && (f->has & HSC_FILTER_MAX_MATURITY))
        rc = hsc_buf_printf(out, "max_maturity=%d\n", f->max_maturity);
    rc = rc ? rc : hsc_buf_printf(out, "embedding=%zu:", r->embedding ? r->dim : 0);
    for (size_t i = 0; !rc && r->embedding && i < r->dim; i++) {
        float x = r->embedding[i] == 0.0f ? 0.0f : r->embedding[i]; /* -0 and 0 are one query */
        rc = hsc_buf_append(out, &x, sizeof(x));
    }
    return rc;
}

uint64_t hsc_qcache_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void hsc_qcache_key(const char *prefix, uint64_t hash, long long epoch, long long policy_version,
                    char *out, size_t cap)
{
    snprintf(out, cap, "%s%016llx:%lld:%lld", prefix, (unsigned long long)hash, epoch,
             policy_version);
}
