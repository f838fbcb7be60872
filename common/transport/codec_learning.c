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
    if (ev->v != HSC_SCHEMA_VERSION)
        return hsc_err_set(err, HSC_EINVAL, "v: schema version %d is not supported (expected %d)",
                           ev->v, HSC_SCHEMA_VERSION);
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

static int decode_learning_fields(const msgpack_object_map *m, void *out, hsc_err *err)
{
    hsc_learning_event *ev = out;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = codec_field_of(&m->ptr[i].key, LEARNING_KEYS, L_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        switch (f) {
        case L_V:
            if (!(rc = codec_get_int("v", o, 0, 1000, &n, err)))
                ev->v = (int)n;
            break;
        case L_USER_ID:
            rc = codec_get_str("user_id", o, &ev->user_id, err);
            break;
        case L_CONTENT_ID:
            rc = codec_get_str("content_id", o, &ev->content_id, err);
            break;
        case L_KIND:
            rc = codec_get_str("kind", o, &ev->kind, err);
            break;
        case L_VALUE:
            if (o->type == MSGPACK_OBJECT_NIL)
                break;
            if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
                ev->value = o->via.f64;
            else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                ev->value = (double)o->via.u64;
            else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                ev->value = (double)o->via.i64;
            else
                rc = hsc_err_set(err, HSC_EINVAL, "value: expected a number, got %s",
                                 codec_type_name(o->type));
            ev->has_value = (rc == HSC_OK);
            break;
        case L_TS:
            rc = codec_get_int("ts", o, INT64_MIN, INT64_MAX, &ev->ts, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << L_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!ev->user_id)
        return hsc_err_set(err, HSC_EINVAL, "user_id: missing");
    if (!ev->content_id)
        return hsc_err_set(err, HSC_EINVAL, "content_id: missing");
    if (!(seen & 1u << L_TS))
        return hsc_err_set(err, HSC_EINVAL, "ts: missing");
    return hsc_codec_validate_learning(ev, err);
}

int hsc_codec_decode_learning(const void *buf, size_t len, hsc_learning_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    int rc = codec_decode_map(buf, len, "learning", decode_learning_fields, ev, err);
    if (rc)
        hsc_learning_event_clear(ev);
    return rc;
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
