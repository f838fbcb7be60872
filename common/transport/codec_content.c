/*
 * Encodes, decodes and validates ContentEvent (hsc.content.events). Decoding
 * walks the map once: unknown keys are skipped, known keys are type checked
 * as they are read, then the whole event is validated by the same function
 * that checks events built from JSON, so both paths agree on what is valid.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hsc_content_event_clear(hsc_content_event *ev)
{
    free(ev->id);
    free(ev->title);
    free(ev->description);
    free(ev->kind);
    free(ev->language);
    free(ev->embedding);
    hsc_strlist_clear(&ev->genres);
    hsc_strlist_clear(&ev->themes);
    hsc_strlist_clear(&ev->moods);
    hsc_strlist_clear(&ev->related);
    memset(ev, 0, sizeof(*ev));
}
static const char *CONTENT_KINDS[] = {"movie", "series", "episode", NULL};
int hsc_codec_validate_content(const hsc_content_event *ev, hsc_err *err)
{
    int rc;
    if ((rc = codec_check_versioned(ev->v, "id", ev->id, ev->version, err)))
        return rc;
    if (ev->op == HSC_OP_UPSERT) {
        if (!ev->title)
            return hsc_err_set(err, HSC_EINVAL, "title: missing (required for upsert)");
        if (!*ev->title)
            return hsc_err_set(err, HSC_EINVAL, "title: empty (required for upsert)");
    }
    if (ev->title && (rc = codec_check_text("title", ev->title, HSC_MAX_TITLE_LEN, err)))
        return rc;
    if (ev->description &&
        (rc = codec_check_text("description", ev->description, HSC_MAX_DESCRIPTION_LEN, err)))
        return rc;
    if (ev->kind && !codec_one_of(ev->kind, CONTENT_KINDS))
        return hsc_err_set(err, HSC_EINVAL, "kind: '%.32s' is not movie, series or episode",
                           ev->kind);
    if ((rc = codec_check_tags("genres", &ev->genres, err)) ||
        (rc = codec_check_tags("themes", &ev->themes, err)) ||
        (rc = codec_check_tags("moods", &ev->moods, err)))
        return rc;
    if (ev->language && (rc = codec_check_language("language", ev->language, err)))
        return rc;
    if ((ev->has & HSC_HAS_YEAR) && (ev->year < 1800 || ev->year > 2200))
        return hsc_err_set(err, HSC_EINVAL, "year: %d is outside 1800..2200", (int)ev->year);
    if ((ev->has & HSC_HAS_MATURITY) && (ev->maturity < 0 || ev->maturity > 21))
        return hsc_err_set(err, HSC_EINVAL, "maturity: %d is outside 0..21", (int)ev->maturity);
    if ((ev->has & HSC_HAS_DURATION) && ev->duration_s < 0)
        return hsc_err_set(err, HSC_EINVAL, "duration_s: %lld is negative",
                           (long long)ev->duration_s);
    if ((rc = codec_check_id_list("related", &ev->related, err)))
        return rc;
    if (ev->embedding) {
        if (ev->dim == 0 || ev->dim > HSC_MAX_EMBEDDING_DIM)
            return hsc_err_set(err, HSC_EINVAL, "embedding: dimension %zu is outside 1..%d",
                               ev->dim, HSC_MAX_EMBEDDING_DIM);
        for (size_t i = 0; i < ev->dim; i++)
            if (!isfinite(ev->embedding[i]))
                return hsc_err_set(err, HSC_EINVAL, "embedding[%zu]: not a finite number", i);
    }
    if ((ev->has & HSC_HAS_TS) && ev->ts < 0)
        return hsc_err_set(err, HSC_EINVAL, "ts: %lld is negative", (long long)ev->ts);
    return HSC_OK;
}
enum {
    C_V,
    C_OP,
    C_ID,
    C_VERSION,
    C_TITLE,
    C_DESCRIPTION,
    C_KIND,
    C_GENRES,
    C_THEMES,
    C_MOODS,
    C_RELATED,
    C_LANGUAGE,
    C_YEAR,
    C_MATURITY,
    C_DURATION,
    C_EMBEDDING,
    C_TS,
    C_NKEYS
};
static const char *const CONTENT_KEYS[C_NKEYS] = {
    "v",    "op",       "id",         "version",   "title",   "description",
    "kind", "genres",   "themes",     "moods",     "related", "language",
    "year", "maturity", "duration_s", "embedding", "ts"};

#define SLOT(kind, member) CODEC_SLOT(kind, hsc_content_event, member)
#define INT(kind, member, min, max) CODEC_SLOT_INT(kind, hsc_content_event, member, min, max)
#define HAS(kind, member, min, max, bit)                                                           \
    CODEC_SLOT_INT_HAS(kind, hsc_content_event, member, min, max, bit, has)
static const struct codec_slot CONTENT_SLOTS[C_NKEYS] = {
    [C_V] = INT(CODEC_INT32, v, 0, 1000),
    [C_ID] = SLOT(CODEC_STR, id),
    [C_VERSION] = INT(CODEC_INT64, version, INT64_MIN, INT64_MAX),
    [C_TITLE] = SLOT(CODEC_STR, title),
    [C_DESCRIPTION] = SLOT(CODEC_STR, description),
    [C_KIND] = SLOT(CODEC_STR, kind),
    [C_GENRES] = SLOT(CODEC_STRLIST, genres),
    [C_THEMES] = SLOT(CODEC_STRLIST, themes),
    [C_MOODS] = SLOT(CODEC_STRLIST, moods),
    [C_RELATED] = SLOT(CODEC_STRLIST, related),
    [C_LANGUAGE] = SLOT(CODEC_STR, language),
    [C_YEAR] = HAS(CODEC_INT32, year, INT32_MIN, INT32_MAX, HSC_HAS_YEAR),
    [C_MATURITY] = HAS(CODEC_INT32, maturity, INT32_MIN, INT32_MAX, HSC_HAS_MATURITY),
    [C_DURATION] = HAS(CODEC_INT64, duration_s, INT64_MIN, INT64_MAX, HSC_HAS_DURATION),
    [C_TS] = HAS(CODEC_INT64, ts, INT64_MIN, INT64_MAX, HSC_HAS_TS),
};
#undef SLOT
#undef INT
#undef HAS

#define REQUIRED (CODEC_BIT(C_V) | CODEC_BIT(C_OP) | CODEC_BIT(C_ID) | CODEC_BIT(C_VERSION))

/* nil means absent for the optional fields */
static const struct codec_map CONTENT_MAP = {
    .keys = CONTENT_KEYS,
    .nkeys = C_NKEYS,
    .nil_absent = ~(uint32_t)REQUIRED,
    .required = REQUIRED,
    .slots = CONTENT_SLOTS,
};

/* The fields with a rule of their own: the op's names and the embedding. */
static int content_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    hsc_content_event *ev = out;
    int rc = HSC_OK;
    switch (f) {
    case C_OP: {
        char *op = NULL;
        if (!(rc = codec_get_str("op", o, &op, err))) {
            if (!strcmp(op, "upsert"))
                ev->op = HSC_OP_UPSERT;
            else if (!strcmp(op, "delete"))
                ev->op = HSC_OP_DELETE;
            else
                rc = hsc_err_set(err, HSC_EINVAL, "op: '%.32s' is not upsert or delete", op);
        }
        free(op);
        break;
    }
    case C_EMBEDDING:
        rc = codec_get_embedding(o, &ev->embedding, &ev->dim, err);
        break;
    }
    return rc;
}

static int content_finish(void *out, uint32_t seen, hsc_err *err)
{
    return hsc_codec_validate_content(out, err);
}

CODEC_MESSAGE(CONTENT, "content", &CONTENT_MAP, content_field, content_finish,
              hsc_content_event_clear);

int hsc_codec_decode_content(const void *buf, size_t len, hsc_content_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    return codec_decode(&CONTENT, buf, len, ev, err);
}

int hsc_codec_encode_content(const hsc_content_event *ev, char **out, size_t *len, hsc_err *err)
{
    int rc = hsc_codec_validate_content(ev, err);
    if (rc)
        return rc;
    size_t n = 4; /* v, op, id, version */
    n += !!ev->title + !!ev->description + !!ev->kind + !!ev->genres.n + !!ev->themes.n +
         !!ev->moods.n + !!ev->language + !!(ev->has & HSC_HAS_YEAR) +
         !!(ev->has & HSC_HAS_MATURITY) + !!(ev->has & HSC_HAS_DURATION) + !!ev->related.n +
         !!ev->embedding + !!(ev->has & HSC_HAS_TS);

    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, n);
    codec_pack_key(&o.pk, "v");
    msgpack_pack_int64(&o.pk, ev->v);
    codec_pack_str(&o.pk, "op", ev->op == HSC_OP_DELETE ? "delete" : "upsert");
    codec_pack_str(&o.pk, "id", ev->id);
    codec_pack_key(&o.pk, "version");
    msgpack_pack_int64(&o.pk, ev->version);
    if (ev->title)
        codec_pack_str(&o.pk, "title", ev->title);
    if (ev->description)
        codec_pack_str(&o.pk, "description", ev->description);
    if (ev->kind)
        codec_pack_str(&o.pk, "kind", ev->kind);
    if (ev->genres.n)
        codec_pack_list(&o.pk, "genres", &ev->genres);
    if (ev->themes.n)
        codec_pack_list(&o.pk, "themes", &ev->themes);
    if (ev->moods.n)
        codec_pack_list(&o.pk, "moods", &ev->moods);
    if (ev->language)
        codec_pack_str(&o.pk, "language", ev->language);
    if (ev->has & HSC_HAS_YEAR) {
        codec_pack_key(&o.pk, "year");
        msgpack_pack_int64(&o.pk, ev->year);
    }
    if (ev->has & HSC_HAS_MATURITY) {
        codec_pack_key(&o.pk, "maturity");
        msgpack_pack_int64(&o.pk, ev->maturity);
    }
    if (ev->has & HSC_HAS_DURATION) {
        codec_pack_key(&o.pk, "duration_s");
        msgpack_pack_int64(&o.pk, ev->duration_s);
    }
    if (ev->related.n)
        codec_pack_list(&o.pk, "related", &ev->related);
    if (ev->embedding)
        codec_pack_embedding(&o.pk, ev->embedding, ev->dim);
    if (ev->has & HSC_HAS_TS) {
        codec_pack_key(&o.pk, "ts");
        msgpack_pack_int64(&o.pk, ev->ts);
    }
    return codec_finish(&o, out, len, err);
}
