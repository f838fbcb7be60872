/*
 * Encodes and decodes IndexedRecord (hsc.content.indexed): what embed-index
 * did with one content event.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hsc_indexed_record_clear(hsc_indexed_record *r)
{
    free(r->id);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}
enum { I_V, I_ID, I_VERSION, I_OP, I_INDEXED, I_REASON, I_EPOCH, I_DIM, I_TS, I_PUB_TS, I_NKEYS };
static const char *const INDEXED_KEYS[I_NKEYS] = {
    "v", "id", "version", "op", "indexed", "reason", "epoch", "dim", "ts", "published_ts"};

static int decode_indexed_fields(const msgpack_object_map *m, void *out, hsc_err *err)
{
    hsc_indexed_record *r = out;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = codec_field_of(&m->ptr[i].key, INDEXED_KEYS, I_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        switch (f) {
        case I_V:
            if (!(rc = codec_get_int("v", o, 0, 1000, &n, err)))
                r->v = (int)n;
            break;
        case I_ID:
            rc = codec_get_str("id", o, &r->id, err);
            break;
        case I_VERSION:
            rc = codec_get_int("version", o, 0, INT64_MAX, &r->version, err);
            break;
        case I_OP: {
            char *op = NULL;
            if (!(rc = codec_get_str("op", o, &op, err))) {
                if (!strcmp(op, "upsert") || !strcmp(op, "delete"))
                    r->op = strcmp(op, "upsert") ? HSC_OP_DELETE : HSC_OP_UPSERT;
                else
                    rc = hsc_err_set(err, HSC_EINVAL, "op: must be \"upsert\" or \"delete\"");
            }
            free(op);
            break;
        }
        case I_INDEXED:
            if (!(rc = codec_want("indexed", o, MSGPACK_OBJECT_BOOLEAN, "a boolean", err)))
                r->indexed = o->via.boolean;
            break;
        case I_REASON:
            rc = codec_get_str("reason", o, &r->reason, err);
            break;
        case I_EPOCH:
            rc = codec_get_int("epoch", o, 0, INT64_MAX, &r->epoch, err);
            break;
        case I_DIM:
            if (!(rc = codec_get_int("dim", o, 0, HSC_MAX_EMBEDDING_DIM, &n, err)))
                r->dim = (int32_t)n;
            break;
        case I_TS:
            rc = codec_get_int("ts", o, INT64_MIN, INT64_MAX, &r->ts, err);
            break;
        case I_PUB_TS:
            rc = codec_get_int("published_ts", o, 1, INT64_MAX, &r->published_ts, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << I_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!r->id)
        return hsc_err_set(err, HSC_EINVAL, "id: missing");
    if (!hsc_id_valid(r->id, strlen(r->id)))
        return hsc_err_set(err, HSC_EINVAL, "id: must be 1-%d of [A-Za-z0-9._:-]", HSC_MAX_ID_LEN);
    if (!(seen & 1u << I_VERSION))
        return hsc_err_set(err, HSC_EINVAL, "version: missing");
    if (!(seen & 1u << I_OP))
        return hsc_err_set(err, HSC_EINVAL, "op: missing");
    if (!(seen & 1u << I_INDEXED))
        return hsc_err_set(err, HSC_EINVAL, "indexed: missing");
    if (!(seen & 1u << I_TS))
        return hsc_err_set(err, HSC_EINVAL, "ts: missing");
    return HSC_OK;
}

int hsc_codec_decode_indexed(const void *buf, size_t len, hsc_indexed_record *r, hsc_err *err)
{
    memset(r, 0, sizeof(*r));
    int rc = codec_decode_map(buf, len, "indexed", decode_indexed_fields, r, err);
    if (rc)
        hsc_indexed_record_clear(r);
    return rc;
}

int hsc_codec_encode_indexed(const hsc_indexed_record *r, char **out, size_t *len, hsc_err *err)
{
    if (!r->id || !hsc_id_valid(r->id, strlen(r->id)))
        return hsc_err_set(err, HSC_EINVAL, "id: must be 1-%d of [A-Za-z0-9._:-]", HSC_MAX_ID_LEN);
    struct codec_out o;
    codec_out_init(&o);
    msgpack_pack_map(&o.pk, 8 + !!r->reason + (r->published_ts > 0));
    codec_pack_key(&o.pk, "v");
    msgpack_pack_int64(&o.pk, r->v);
    codec_pack_str(&o.pk, "id", r->id);
    codec_pack_key(&o.pk, "version");
    msgpack_pack_int64(&o.pk, r->version);
    codec_pack_str(&o.pk, "op", r->op == HSC_OP_DELETE ? "delete" : "upsert");
    codec_pack_key(&o.pk, "indexed");
    if (r->indexed)
        msgpack_pack_true(&o.pk);
    else
        msgpack_pack_false(&o.pk);
    if (r->reason)
        codec_pack_str(&o.pk, "reason", r->reason);
    codec_pack_key(&o.pk, "epoch");
    msgpack_pack_int64(&o.pk, r->epoch);
    codec_pack_key(&o.pk, "dim");
    msgpack_pack_int64(&o.pk, r->dim);
    codec_pack_key(&o.pk, "ts");
    msgpack_pack_int64(&o.pk, r->ts);
    if (r->published_ts > 0) {
        codec_pack_key(&o.pk, "published_ts");
        msgpack_pack_int64(&o.pk, r->published_ts);
    }
    return codec_finish(&o, out, len, err);
}
