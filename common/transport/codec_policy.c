/*
 * Encodes, decodes and validates PolicyEvent (hsc.policy.events): a user's
 * set, block, unblock or erase, with the same validation for events built by
 * `hsc policy set`.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const POLICY_OPS[] = {"set", "block", "unblock", "erase"};

/* The settable fields, in their wire order; index i is bit 1 << i. */
static const char *const POLICY_FIELDS[] = {"excluded_genres", "max_maturity", "languages",
                                            "blocked_ids", "prefs"};
#define POLICY_NFIELDS 5

const char *hsc_policy_op_name(hsc_policy_op op)
{
    return (unsigned)op < 4 ? POLICY_OPS[op] : "unknown";
}

const char *hsc_policy_field_name(unsigned bit)
{
    for (int i = 0; i < POLICY_NFIELDS; i++)
        if (bit == 1u << i)
            return POLICY_FIELDS[i];
    return NULL;
}

void hsc_policy_event_clear(hsc_policy_event *ev)
{
    free(ev->user_id);
    hsc_strlist_clear(&ev->excluded_genres);
    hsc_strlist_clear(&ev->languages);
    hsc_strlist_clear(&ev->blocked_ids);
    hsc_strlist_clear(&ev->ids);
    for (size_t i = 0; i < ev->nprefs; i++)
        free(ev->prefs[i].name);
    free(ev->prefs);
    memset(ev, 0, sizeof(*ev));
}
static unsigned lowest_bit(unsigned x)
{
    return x & (~x + 1u);
}

int hsc_codec_validate_policy(const hsc_policy_event *ev, hsc_err *err)
{
    int rc;
    if ((rc = codec_check_versioned(ev->v, "user_id", ev->user_id, ev->version, err)))
        return rc;
    if ((unsigned)ev->op > HSC_POLICY_ERASE)
        return hsc_err_set(err, HSC_EINVAL, "op: %d is not set, block, unblock or erase",
                           (int)ev->op);
    unsigned all = (1u << POLICY_NFIELDS) - 1;
    if ((ev->set | ev->clear) & ~all)
        return hsc_err_set(err, HSC_EINVAL, "set: unknown field bits 0x%x",
                           (ev->set | ev->clear) & ~all);
    const char *op = hsc_policy_op_name(ev->op);
    if (ev->op != HSC_POLICY_SET && (ev->set || ev->clear)) {
        const char *f = ev->set ? hsc_policy_field_name(lowest_bit(ev->set)) : "clear";
        return hsc_err_set(err, HSC_EINVAL, "%s: not allowed with op %s", f ? f : "set", op);
    }
    if (ev->op == HSC_POLICY_SET && !ev->set && !ev->clear)
        return hsc_err_set(err, HSC_EINVAL, "op: set names no field to set or clear");
    if (ev->set & ev->clear)
        return hsc_err_set(err, HSC_EINVAL, "clear: %s is also set",
                           hsc_policy_field_name(lowest_bit(ev->set & ev->clear)));
    if (ev->op == HSC_POLICY_BLOCK || ev->op == HSC_POLICY_UNBLOCK) {
        if (!ev->ids.n)
            return hsc_err_set(err, HSC_EINVAL, "ids: missing or empty (required for %s)", op);
        if ((rc = codec_check_id_list("ids", &ev->ids, err)))
            return rc;
    } else if (ev->ids.n) {
        return hsc_err_set(err, HSC_EINVAL, "ids: not allowed with op %s", op);
    }
    if ((ev->set & HSC_POLICY_EXCLUDED_GENRES) &&
        (rc = codec_check_tags("excluded_genres", &ev->excluded_genres, err)))
        return rc;
    if ((ev->set & HSC_POLICY_MAX_MATURITY) && (ev->max_maturity < 0 || ev->max_maturity > 21))
        return hsc_err_set(err, HSC_EINVAL, "max_maturity: %d is outside 0..21",
                           (int)ev->max_maturity);
    if (ev->set & HSC_POLICY_LANGUAGES) {
        if (ev->languages.n > HSC_MAX_LIST_LEN)
            return hsc_err_set(err, HSC_EINVAL, "languages: %zu entries is more than %d",
                               ev->languages.n, HSC_MAX_LIST_LEN);
        for (size_t i = 0; i < ev->languages.n; i++) {
            char f[40];
            snprintf(f, sizeof(f), "languages[%zu]", i);
            if ((rc = codec_check_language(f, ev->languages.v[i], err)))
                return rc;
        }
    }
    if ((ev->set & HSC_POLICY_BLOCKED_IDS) &&
        (rc = codec_check_id_list("blocked_ids", &ev->blocked_ids, err)))
        return rc;
    if (ev->set & HSC_POLICY_PREFS) {
        if (!ev->nprefs)
            return hsc_err_set(err, HSC_EINVAL, "prefs: empty (clear it with clear: [\"prefs\"])");
        if (ev->nprefs > HSC_MAX_LIST_LEN)
            return hsc_err_set(err, HSC_EINVAL, "prefs: %zu entries is more than %d", ev->nprefs,
                               HSC_MAX_LIST_LEN);
        for (size_t i = 0; i < ev->nprefs; i++) {
            char f[40];
            snprintf(f, sizeof(f), "prefs[%zu].name", i);
            const hsc_policy_pref *p = &ev->prefs[i];
            if (!p->name)
                return hsc_err_set(err, HSC_EINVAL, "%s: missing", f);
            if (!*p->name)
                return hsc_err_set(err, HSC_EINVAL, "%s: empty", f);
            if ((rc = codec_check_text(f, p->name, HSC_MAX_TAG_LEN, err)))
                return rc;
            if (!isfinite(p->weight) || fabs(p->weight) > HSC_POLICY_MAX_WEIGHT)
                return hsc_err_set(err, HSC_EINVAL, "prefs[%zu].weight: %g is outside -%g..%g", i,
                                   p->weight, HSC_POLICY_MAX_WEIGHT, HSC_POLICY_MAX_WEIGHT);
        }
    } else if (ev->nprefs) {
        return hsc_err_set(err, HSC_EINVAL, "prefs: given but not in set");
    }
    if (ev->has_ts && ev->ts < 0)
        return hsc_err_set(err, HSC_EINVAL, "ts: %lld is negative", (long long)ev->ts);
    return HSC_OK;
}

enum { PP_DIM, PP_NAME, PP_WEIGHT, PP_NKEYS };
static const char *const PREF_KEYS[PP_NKEYS] = {"dim", "name", "weight"};

static int decode_pref(const msgpack_object *o, size_t i, hsc_policy_pref *p, hsc_err *err)
{
    char f[48];
    snprintf(f, sizeof(f), "prefs[%zu]", i);
    int rc = codec_want(f, o, MSGPACK_OBJECT_MAP, "a map", err);
    if (rc)
        return rc;
    char prefix[56];
    snprintf(prefix, sizeof(prefix), "%s.", f);
    uint32_t seen = 0;
    char *dim = NULL;
    for (uint32_t k = 0; !rc && k < o->via.map.size; k++) {
        const msgpack_object *val = &o->via.map.ptr[k].val;
        int idx;
        char ff[64];
        if ((rc = codec_field_of(&o->via.map.ptr[k].key, PREF_KEYS, PP_NKEYS, prefix, &seen, &idx,
                                 err)))
            break;
        if (idx >= 0)
            snprintf(ff, sizeof(ff), "%s%s", prefix, PREF_KEYS[idx]);
        if (idx == PP_DIM)
            rc = codec_get_str(ff, val, &dim, err);
        else if (idx == PP_NAME)
            rc = codec_get_str(ff, val, &p->name, err);
        else if (idx == PP_WEIGHT)
            rc = codec_get_num(ff, val, &p->weight, err);
    }
    if (!rc && !dim)
        rc = hsc_err_set(err, HSC_EINVAL, "%s.dim: missing", f);
    if (!rc && strcmp(dim, "genre") && strcmp(dim, "theme"))
        rc = hsc_err_set(err, HSC_EINVAL, "%s.dim: '%.16s' is not genre or theme", f, dim);
    if (!rc)
        p->theme = !strcmp(dim, "theme");
    if (!rc && !p->name)
        rc = hsc_err_set(err, HSC_EINVAL, "%s.name: missing", f);
    if (!rc && !(seen & 1u << PP_WEIGHT))
        rc = hsc_err_set(err, HSC_EINVAL, "%s.weight: missing", f);
    free(dim);
    return rc;
}

static int decode_clear(const msgpack_object *o, unsigned *clear, hsc_err *err)
{
    int rc = codec_want("clear", o, MSGPACK_OBJECT_ARRAY, "an array of field names", err);
    if (rc)
        return rc;
    if (o->via.array.size > POLICY_NFIELDS)
        return hsc_err_set(err, HSC_EINVAL, "clear: %u entries is more than %d fields",
                           o->via.array.size, POLICY_NFIELDS);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "clear[%u]: expected a string, got %s", i,
                               codec_type_name(e->type));
        int f = -1;
        for (int k = 0; k < POLICY_NFIELDS && f < 0; k++)
            if (codec_key_is(e, POLICY_FIELDS[k]))
                f = k;
        if (f < 0)
            return hsc_err_set(err, HSC_EINVAL,
                               "clear[%u]: '%.*s' is not excluded_genres, max_maturity, languages, "
                               "blocked_ids or prefs",
                               i, (int)(e->via.str.size > 32 ? 32 : e->via.str.size),
                               e->via.str.ptr);
        if (*clear & (1u << f))
            return hsc_err_set(err, HSC_EINVAL, "clear[%u]: %s appears twice", i, POLICY_FIELDS[f]);
        *clear |= 1u << f;
    }
    return HSC_OK;
}

enum {
    PO_V,
    PO_USER_ID,
    PO_VERSION,
    PO_OP,
    PO_EXCLUDED_GENRES,
    PO_MAX_MATURITY,
    PO_LANGUAGES,
    PO_BLOCKED_IDS,
    PO_PREFS,
    PO_IDS,
    PO_CLEAR,
    PO_TS,
    PO_NKEYS
};
static const char *const POLICY_KEYS[PO_NKEYS] = {
    "v",         "user_id",     "version", "op",  "excluded_genres", "max_maturity",
    "languages", "blocked_ids", "prefs",   "ids", "clear",           "ts"};

#define REQUIRED                                                                                   \
    (CODEC_BIT(PO_V) | CODEC_BIT(PO_USER_ID) | CODEC_BIT(PO_VERSION) | CODEC_BIT(PO_OP))

/* nil for an optional key means absent */
static const struct codec_map POLICY_MAP = {
    .keys = POLICY_KEYS,
    .nkeys = PO_NKEYS,
    .nil_absent = ~(uint32_t)REQUIRED,
    .nil_unseen = true,
    .required = REQUIRED,
};

/* The settable fields' keys, index i naming the field of bit 1 << i (POLICY_FIELDS). */
static const int SETTABLE_KEYS[POLICY_NFIELDS] = {PO_EXCLUDED_GENRES, PO_MAX_MATURITY, PO_LANGUAGES,
                                                  PO_BLOCKED_IDS, PO_PREFS};

/* What a policy map is read into: the event, and its op until every key is read. */
struct policy_read {
    hsc_policy_event *ev;
    char *op;
};

/* Reads prefs: an array of at most HSC_MAX_LIST_LEN maps. */
static int decode_prefs(const msgpack_object *o, hsc_policy_event *ev, hsc_err *err)
{
    int rc = codec_want("prefs", o, MSGPACK_OBJECT_ARRAY, "an array of maps", err);
    if (rc)
        return rc;
    if (o->via.array.size > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "prefs: %u entries is more than %d", o->via.array.size,
                           HSC_MAX_LIST_LEN);
    ev->prefs = calloc(o->via.array.size + 1, sizeof(*ev->prefs));
    if (!ev->prefs)
        return hsc_err_set(err, HSC_ENOMEM, "prefs: out of memory");
    for (uint32_t k = 0; !rc && k < o->via.array.size; k++) {
        ev->nprefs = k + 1;
        rc = decode_pref(&o->via.array.ptr[k], k, &ev->prefs[k], err);
    }
    return rc;
}

static int policy_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    struct policy_read *pr = out;
    hsc_policy_event *ev = pr->ev;
    int64_t n;
    int rc = HSC_OK;
    switch (f) {
    case PO_V:
        if (!(rc = codec_get_int("v", o, 0, 1000, &n, err)))
            ev->v = (int)n;
        break;
    case PO_USER_ID:
        rc = codec_get_str("user_id", o, &ev->user_id, err);
        break;
    case PO_VERSION:
        rc = codec_get_int("version", o, 0, INT64_MAX, &ev->version, err);
        break;
    case PO_OP:
        rc = codec_get_str("op", o, &pr->op, err);
        break;
    case PO_EXCLUDED_GENRES:
        rc = codec_get_strlist("excluded_genres", o, &ev->excluded_genres, err);
        break;
    case PO_MAX_MATURITY:
        if (!(rc = codec_get_int("max_maturity", o, 0, 21, &n, err)))
            ev->max_maturity = (int32_t)n;
        break;
    case PO_LANGUAGES:
        rc = codec_get_strlist("languages", o, &ev->languages, err);
        break;
    case PO_BLOCKED_IDS:
        rc = codec_get_strlist("blocked_ids", o, &ev->blocked_ids, err);
        break;
    case PO_PREFS:
        rc = decode_prefs(o, ev, err);
        break;
    case PO_IDS:
        rc = codec_get_strlist("ids", o, &ev->ids, err);
        break;
    case PO_CLEAR:
        rc = decode_clear(o, &ev->clear, err);
        break;
    case PO_TS:
        rc = codec_get_int("ts", o, 0, INT64_MAX, &ev->ts, err);
        ev->has_ts = rc == HSC_OK;
        break;
    }
    return rc;
}

/* Sets the fields given, then resolves the op's name and validates the whole event. */
static int policy_finish(void *out, uint32_t seen, hsc_err *err)
{
    struct policy_read *pr = out;
    hsc_policy_event *ev = pr->ev;
    /* a field given (not nil) is one to set */
    for (int i = 0; i < POLICY_NFIELDS; i++)
        if (seen & CODEC_BIT(SETTABLE_KEYS[i]))
            ev->set |= 1u << i;
    int k = 0;
    while (k < 4 && strcmp(pr->op, POLICY_OPS[k]))
        k++;
    if (k == 4)
        return hsc_err_set(err, HSC_EINVAL, "op: '%.32s' is not set, block, unblock or erase",
                           pr->op);
    ev->op = (hsc_policy_op)k;
    return hsc_codec_validate_policy(ev, err);
}

static void policy_clear(void *out)
{
    struct policy_read *pr = out;
    hsc_policy_event_clear(pr->ev);
}

static const struct codec_message POLICY = {"policy", &POLICY_MAP, policy_field, policy_finish,
                                            policy_clear};

int hsc_codec_decode_policy(const void *buf, size_t len, hsc_policy_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    struct policy_read pr = {.ev = ev};
    int rc = codec_decode(&POLICY, buf, len, &pr, err);
    free(pr.op);
    return rc;
}

int hsc_codec_encode_policy(const hsc_policy_event *ev, char **out, size_t *len, hsc_err *err)
{
    int rc = hsc_codec_validate_policy(ev, err);
    if (rc)
        return rc;
    size_t n = 4 + !!ev->ids.n + !!ev->clear + ev->has_ts;
    for (unsigned b = 1; b < 1u << POLICY_NFIELDS; b <<= 1)
        n += !!(ev->set & b);
    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, n);
    codec_pack_int(&o.pk, "v", ev->v);
    codec_pack_str(&o.pk, "user_id", ev->user_id);
    codec_pack_int(&o.pk, "version", ev->version);
    codec_pack_str(&o.pk, "op", hsc_policy_op_name(ev->op));
    if (ev->set & HSC_POLICY_EXCLUDED_GENRES)
        codec_pack_list(&o.pk, "excluded_genres", &ev->excluded_genres);
    if (ev->set & HSC_POLICY_MAX_MATURITY)
        codec_pack_int(&o.pk, "max_maturity", ev->max_maturity);
    if (ev->set & HSC_POLICY_LANGUAGES)
        codec_pack_list(&o.pk, "languages", &ev->languages);
    if (ev->set & HSC_POLICY_BLOCKED_IDS)
        codec_pack_list(&o.pk, "blocked_ids", &ev->blocked_ids);
    if (ev->set & HSC_POLICY_PREFS) {
        codec_pack_key(&o.pk, "prefs");
        msgpack_pack_array(&o.pk, ev->nprefs);
        for (size_t i = 0; i < ev->nprefs; i++) {
            msgpack_pack_map(&o.pk, 3);
            codec_pack_str(&o.pk, "dim", ev->prefs[i].theme ? "theme" : "genre");
            codec_pack_str(&o.pk, "name", ev->prefs[i].name);
            codec_pack_double(&o.pk, "weight", ev->prefs[i].weight);
        }
    }
    if (ev->ids.n)
        codec_pack_list(&o.pk, "ids", &ev->ids);
    if (ev->clear) {
        codec_pack_key(&o.pk, "clear");
        int nc = 0;
        for (int i = 0; i < POLICY_NFIELDS; i++)
            nc += !!(ev->clear & 1u << i);
        msgpack_pack_array(&o.pk, (size_t)nc);
        for (int i = 0; i < POLICY_NFIELDS; i++)
            if (ev->clear & 1u << i) {
                size_t l = strlen(POLICY_FIELDS[i]);
                msgpack_pack_str(&o.pk, l);
                msgpack_pack_str_body(&o.pk, POLICY_FIELDS[i], l);
            }
    }
    if (ev->has_ts)
        codec_pack_int(&o.pk, "ts", ev->ts);
    return codec_finish(&o, out, len, err);
}
