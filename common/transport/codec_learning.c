/*
 * Encodes, decodes and validates LearningEvent (hsc.learning.events), with
 * the same validation for events built from JSON.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hsc_learning_event_clear(hsc_learning_event *ev)
{
    free(ev->user_id);
    free(ev->content_id);
    free(ev->kind);
    memset(ev, 0, sizeof(*ev));
}
static const char *LEARNING_KINDS[] = {"view",     "like",   "dislike", "skip",
                                       "complete", "rating", NULL};
int hsc_codec_validate_learning(const hsc_learning_event *ev, hsc_err *err)
{
    int rc;
    if ((rc = codec_check_version(ev->v, err)))
        return rc;
    if ((rc = codec_check_id("user_id", ev->user_id, err)) ||
        (rc = codec_check_id("content_id", ev->content_id, err)))
        return rc;
    if (!ev->kind)
        return hsc_err_set(err, HSC_EINVAL, "kind: missing");
    if (!codec_one_of(ev->kind, LEARNING_KINDS))
        return hsc_err_set(err, HSC_EINVAL,
                           "kind: '%.32s' is not view, like, dislike, skip, complete or rating",
                           ev->kind);
    if (ev->has_value && !isfinite(ev->value))
        return hsc_err_set(err, HSC_EINVAL, "value: not a finite number");
    if (!strcmp(ev->kind, "rating")) {
        if (!ev->has_value)
            return hsc_err_set(err, HSC_EINVAL, "value: missing (required for a rating)");
        if (ev->value < 0 || ev->value > 5)
            return hsc_err_set(err, HSC_EINVAL, "value: rating %g is outside 0..5", ev->value);
    }
    if (!strcmp(ev->kind, "complete") && ev->has_value && (ev->value < 0 || ev->value > 1))
        return hsc_err_set(err, HSC_EINVAL, "value: completion %g is outside 0..1", ev->value);
    if (ev->ts < 0)
        return hsc_err_set(err, HSC_EINVAL, "ts: %lld is negative", (long long)ev->ts);
    return HSC_OK;
}
enum { L_V, L_USER_ID, L_CONTENT_ID, L_KIND, L_VALUE, L_TS, L_NKEYS };
static const char *const LEARNING_KEYS[L_NKEYS] = {"v",    "user_id", "content_id",
                                                   "kind", "value",   "ts"};

static const struct codec_slot LEARNING_SLOTS[L_NKEYS] = {
    [L_V] = CODEC_SLOT_INT(CODEC_INT32, hsc_learning_event, v, 0, 1000),
    [L_USER_ID] = CODEC_SLOT(CODEC_STR, hsc_learning_event, user_id),
    [L_CONTENT_ID] = CODEC_SLOT(CODEC_STR, hsc_learning_event, content_id),
    [L_KIND] = CODEC_SLOT(CODEC_STR, hsc_learning_event, kind),
    [L_TS] = CODEC_SLOT_INT(CODEC_INT64, hsc_learning_event, ts, INT64_MIN, INT64_MAX),
};

static const struct codec_map LEARNING_MAP = {
    .keys = LEARNING_KEYS,
    .nkeys = L_NKEYS,
    .nil_absent = CODEC_BIT(L_VALUE), /* a value of nil: none */
    .required = CODEC_BIT(L_V) | CODEC_BIT(L_USER_ID) | CODEC_BIT(L_CONTENT_ID) | CODEC_BIT(L_TS),
    .slots = LEARNING_SLOTS,
};

/* The one field with a rule of its own: the value's presence. */
static int learning_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    hsc_learning_event *ev = out;
    int rc = HSC_OK;
    if (f == L_VALUE) {
        rc = codec_get_num("value", o, &ev->value, err);
        ev->has_value = (rc == HSC_OK);
    }
    return rc;
}

static int learning_finish(void *out, uint32_t seen, hsc_err *err)
{
    return hsc_codec_validate_learning(out, err);
}

CODEC_MESSAGE(LEARNING, "learning", &LEARNING_MAP, learning_field, learning_finish,
              hsc_learning_event_clear);

int hsc_codec_decode_learning(const void *buf, size_t len, hsc_learning_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    return codec_decode(&LEARNING, buf, len, ev, err);
}

int hsc_codec_encode_learning(const hsc_learning_event *ev, char **out, size_t *len, hsc_err *err)
{
    int rc = hsc_codec_validate_learning(ev, err);
    if (rc)
        return rc;
    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, 5 + ev->has_value);
    codec_pack_key(&o.pk, "v");
    msgpack_pack_int64(&o.pk, ev->v);
    codec_pack_str(&o.pk, "user_id", ev->user_id);
    codec_pack_str(&o.pk, "content_id", ev->content_id);
    codec_pack_str(&o.pk, "kind", ev->kind);
    if (ev->has_value) {
        codec_pack_key(&o.pk, "value");
        msgpack_pack_double(&o.pk, ev->value);
    }
    codec_pack_key(&o.pk, "ts");
    msgpack_pack_int64(&o.pk, ev->ts);
    return codec_finish(&o, out, len, err);
}
