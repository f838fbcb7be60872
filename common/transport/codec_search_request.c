/*
 * Encodes and decodes SearchRequest (hsc.search.requests), its filters and the
 * strategy names; decoding fills in the contract's defaults.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *STRATEGY_NAMES[] = {
    "auto", "vector_only", "graph_only", "hybrid_parallel", "hybrid_sequential", "cached_only"};

const char *hsc_strategy_name(hsc_strategy s)
{
    return (unsigned)s < sizeof(STRATEGY_NAMES) / sizeof(*STRATEGY_NAMES) ? STRATEGY_NAMES[s]
                                                                          : "unknown";
}

int hsc_strategy_parse(const char *name, hsc_strategy *out)
{
    for (size_t i = 0; i < sizeof(STRATEGY_NAMES) / sizeof(*STRATEGY_NAMES); i++)
        if (!strcmp(name, STRATEGY_NAMES[i])) {
            *out = (hsc_strategy)i;
            return 0;
        }
    return -1;
}

int codec_get_strategy(const msgpack_object *o, hsc_strategy *out, hsc_err *err)
{
    char *s = NULL;
    int rc = codec_get_str("strategy", o, &s, err);
    if (!rc && hsc_strategy_parse(s, out))
        rc = hsc_err_set(err, HSC_EINVAL,
                         "strategy: \"%.40s\" is not one of auto, vector_only, "
                         "graph_only, hybrid_parallel, hybrid_sequential, cached_only",
                         s);
    free(s);
    return rc;
}

void hsc_search_request_init(hsc_search_request *r)
{
    memset(r, 0, sizeof(*r));
    r->v = HSC_SCHEMA_VERSION;
    r->k = HSC_SEARCH_K_DEFAULT;
    r->strategy = HSC_STRATEGY_AUTO;
    r->cache = true;
}

void hsc_search_request_clear(hsc_search_request *r)
{
    free(r->user_id);
    free(r->embedding);
    hsc_strlist_clear(&r->seed_ids);
    hsc_strlist_clear(&r->filters.genres);
    hsc_strlist_clear(&r->filters.exclude_ids);
    free(r->filters.language);
    memset(r, 0, sizeof(*r));
}
enum { F_GENRES, F_EXCLUDE_IDS, F_LANGUAGE, F_YEAR_MIN, F_YEAR_MAX, F_MAX_MATURITY, F_NKEYS };
static const char *const FILTER_KEYS[F_NKEYS] = {"genres",   "exclude_ids", "language",
                                                 "year_min", "year_max",    "max_maturity"};

static const char *const FILTER_NAMES[F_NKEYS] = {"filters.genres",   "filters.exclude_ids",
                                                  "filters.language", "filters.year_min",
                                                  "filters.year_max", "filters.max_maturity"};

/* nil means absent for every filter */
#define HAS(member, max, bit)                                                                      \
    CODEC_SLOT_INT_HAS(CODEC_INT32, hsc_search_filters, member, 0, max, bit, has)
static const struct codec_slot FILTER_SLOTS[F_NKEYS] = {
    [F_YEAR_MIN] = HAS(year_min, 9999, HSC_FILTER_YEAR_MIN),
    [F_YEAR_MAX] = HAS(year_max, 9999, HSC_FILTER_YEAR_MAX),
    [F_MAX_MATURITY] = HAS(max_maturity, 21, HSC_FILTER_MAX_MATURITY),
};
#undef HAS

static const struct codec_map FILTER_MAP = {
    .keys = FILTER_KEYS,
    .prefix = "filters.",
    .names = FILTER_NAMES,
    .nkeys = F_NKEYS,
    .nil_absent = ~0u,
    .strict = "filters",
    .slots = FILTER_SLOTS,
};

static int filter_field(void *out, int x, const msgpack_object *val, hsc_err *err)
{
    hsc_search_filters *f = out;
    const char *name = FILTER_NAMES[x];
    int rc;
    if (x == F_GENRES) {
        if (!(rc = codec_get_strlist(name, val, &f->genres, err)))
            rc = codec_check_tags(name, &f->genres, err);
        return rc;
    }
    if (x == F_EXCLUDE_IDS) {
        if (!(rc = codec_get_strlist(name, val, &f->exclude_ids, err)))
            rc = codec_check_ids(name, &f->exclude_ids, err);
        return rc;
    }
    if (x == F_LANGUAGE) {
        if (!(rc = codec_get_str(name, val, &f->language, err)))
            rc = codec_check_text(name, f->language, 16, err);
        return rc;
    }
    return HSC_OK;
}

static int decode_filters(const msgpack_object *o, hsc_search_filters *f, hsc_err *err)
{
    int rc = codec_want("filters", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    if (!rc)
        rc = codec_read_map(&FILTER_MAP, &o->via.map, filter_field, f, &seen, err);
    if (!rc && (f->has & HSC_FILTER_YEAR_MIN) && (f->has & HSC_FILTER_YEAR_MAX) &&
        f->year_min > f->year_max)
        rc = hsc_err_set(err, HSC_EINVAL, "filters.year_min: %d is after year_max %d", f->year_min,
                         f->year_max);
    return rc;
}

enum {
    R_V,
    R_USER_ID,
    R_EMBEDDING,
    R_SEED_IDS,
    R_K,
    R_FILTERS,
    R_INCLUDE_RELS,
    R_STRATEGY,
    R_CACHE,
    R_NKEYS
};
static const char *const REQUEST_KEYS[R_NKEYS] = {
    "v",        "user_id", "embedding", "seed_ids", "k", "filters", "include_relationships",
    "strategy", "cache"};

static const struct codec_slot REQUEST_SLOTS[R_NKEYS] = {
    [R_V] = CODEC_SLOT_INT(CODEC_INT32, hsc_search_request, v, 1, 1),
    [R_K] = CODEC_SLOT_INT(CODEC_INT32, hsc_search_request, k, 1, HSC_SEARCH_K_MAX),
    [R_INCLUDE_RELS] = CODEC_SLOT(CODEC_BOOL, hsc_search_request, include_relationships),
    [R_CACHE] = CODEC_SLOT(CODEC_BOOL, hsc_search_request, cache),
};

/* nil means absent (the default) for every key but v */
static const struct codec_map REQUEST_MAP = {
    .keys = REQUEST_KEYS,
    .nkeys = R_NKEYS,
    .nil_absent = ~CODEC_BIT(R_V),
    .required = CODEC_BIT(R_V),
    .slots = REQUEST_SLOTS,
};

/* The fields with a rule of their own: id checks, the embedding, filters, the strategy's names. */
static int request_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    hsc_search_request *r = out;
    int rc = HSC_OK;
    switch (f) {
    case R_USER_ID:
        if (!(rc = codec_get_str("user_id", o, &r->user_id, err)))
            rc = codec_check_id("user_id", r->user_id, err);
        break;
    case R_EMBEDDING:
        rc = codec_get_embedding(o, &r->embedding, &r->dim, err);
        for (size_t d = 0; !rc && d < r->dim; d++)
            if (!isfinite(r->embedding[d]))
                rc = hsc_err_set(err, HSC_EINVAL, "embedding: value %zu is not finite", d);
        break;
    case R_SEED_IDS:
        if (!(rc = codec_get_strlist("seed_ids", o, &r->seed_ids, err)))
            rc = codec_check_ids("seed_ids", &r->seed_ids, err);
        break;
    case R_FILTERS:
        rc = decode_filters(o, &r->filters, err);
        break;
    case R_STRATEGY:
        rc = codec_get_strategy(o, &r->strategy, err);
        break;
    }
    return rc;
}

CODEC_MESSAGE(REQUEST, "search request", &REQUEST_MAP, request_field, NULL,
              hsc_search_request_clear);

int hsc_codec_decode_search_request(const void *buf, size_t len, hsc_search_request *r,
                                    hsc_err *err)
{
    hsc_search_request_init(r);
    return codec_decode(&REQUEST, buf, len, r, err);
}

int hsc_codec_encode_search_request(const hsc_search_request *r, char **out, size_t *len,
                                    hsc_err *err)
{
    if (r->k < 1 || r->k > HSC_SEARCH_K_MAX)
        return hsc_err_set(err, HSC_EINVAL, "k: %d is outside 1..%d", r->k, HSC_SEARCH_K_MAX);
    if (r->user_id && codec_check_id("user_id", r->user_id, err))
        return err->code;
    const hsc_search_filters *f = &r->filters;
    int nf = !!f->genres.n + !!f->exclude_ids.n + !!f->language + !!(f->has & HSC_FILTER_YEAR_MIN) +
             !!(f->has & HSC_FILTER_YEAR_MAX) + !!(f->has & HSC_FILTER_MAX_MATURITY);
    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, 5 + !!r->user_id + !!r->embedding + !!r->seed_ids.n + !!nf);
    codec_pack_int(&o.pk, "v", r->v ? r->v : HSC_SCHEMA_VERSION);
    if (r->user_id)
        codec_pack_str(&o.pk, "user_id", r->user_id);
    if (r->embedding)
        codec_pack_embedding(&o.pk, r->embedding, r->dim);
    if (r->seed_ids.n)
        codec_pack_list(&o.pk, "seed_ids", &r->seed_ids);
    codec_pack_int(&o.pk, "k", r->k);
    if (nf) {
        codec_pack_key(&o.pk, "filters");
        msgpack_pack_map(&o.pk, nf);
        if (f->genres.n)
            codec_pack_list(&o.pk, "genres", &f->genres);
        if (f->exclude_ids.n)
            codec_pack_list(&o.pk, "exclude_ids", &f->exclude_ids);
        if (f->language)
            codec_pack_str(&o.pk, "language", f->language);
        if (f->has & HSC_FILTER_YEAR_MIN)
            codec_pack_int(&o.pk, "year_min", f->year_min);
        if (f->has & HSC_FILTER_YEAR_MAX)
            codec_pack_int(&o.pk, "year_max", f->year_max);
        if (f->has & HSC_FILTER_MAX_MATURITY)
            codec_pack_int(&o.pk, "max_maturity", f->max_maturity);
    }
    codec_pack_bool(&o.pk, "include_relationships", r->include_relationships);
    codec_pack_str(&o.pk, "strategy", hsc_strategy_name(r->strategy));
    codec_pack_bool(&o.pk, "cache", r->cache);
    return codec_finish(&o, out, len, err);
}
