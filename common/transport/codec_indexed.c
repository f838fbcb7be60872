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

#define SLOT(kind, member) CODEC_SLOT(kind, hsc_indexed_record, member)
#define INT(kind, member, min, max) CODEC_SLOT_INT(kind, hsc_indexed_record, member, min, max)
static const struct codec_slot INDEXED_SLOTS[I_NKEYS] = {
    [I_V] = INT(CODEC_INT32, v, 0, 1000),
    [I_ID] = SLOT(CODEC_STR, id),
    [I_VERSION] = INT(CODEC_INT64, version, 0, INT64_MAX),
    [I_INDEXED] = SLOT(CODEC_BOOL, indexed),
    [I_REASON] = SLOT(CODEC_STR, reason),
    [I_EPOCH] = INT(CODEC_INT64, epoch, 0, INT64_MAX),
    [I_DIM] = INT(CODEC_INT32, dim, 0, HSC_MAX_EMBEDDING_DIM),
    [I_TS] = INT(CODEC_INT64, ts, INT64_MIN, INT64_MAX),
    [I_PUB_TS] = INT(CODEC_INT64, published_ts, 1, INT64_MAX),
};
#undef SLOT
#undef INT

static const struct codec_map INDEXED_MAP = {
    .keys = INDEXED_KEYS,
    .nkeys = I_NKEYS,
    .required = CODEC_BIT(I_V) | CODEC_BIT(I_ID),
    .slots = INDEXED_SLOTS,
};

/* The one field with a rule of its own: the op's names. */
static int indexed_field(void *out, int f, const msgpack_object *o, hsc_err *err)
{
    hsc_indexed_record *r = out;
    int rc = HSC_OK;
    if (f == I_OP) {
        char *op = NULL;
        if (!(rc = codec_get_str("op", o, &op, err))) {
            if (!strcmp(op, "upsert") || !strcmp(op, "delete"))
                r->op = strcmp(op, "upsert") ? HSC_OP_DELETE : HSC_OP_UPSERT;
            else
                rc = hsc_err_set(err, HSC_EINVAL, "op: must be \"upsert\" or \"delete\"");
        }
        free(op);
    }
    return rc;
}

/* The id's form, checked before the other required keys so that its error comes first. */
static int indexed_finish(void *out, uint32_t seen, hsc_err *err)
{
    const hsc_indexed_record *r = out;
    if (!hsc_id_valid(r->id, strlen(r->id)))
        return hsc_err_set(err, HSC_EINVAL, "id: must be 1-%d of [A-Za-z0-9._:-]", HSC_MAX_ID_LEN);
    return codec_require(
        &INDEXED_MAP, seen,
        CODEC_BIT(I_VERSION) | CODEC_BIT(I_OP) | CODEC_BIT(I_INDEXED) | CODEC_BIT(I_TS), err);
}

CODEC_MESSAGE(INDEXED, "indexed", &INDEXED_MAP, indexed_field, indexed_finish,
              hsc_indexed_record_clear);

int hsc_codec_decode_indexed(const void *buf, size_t len, hsc_indexed_record *r, hsc_err *err)
{
    memset(r, 0, sizeof(*r));
    return codec_decode(&INDEXED, buf, len, r, err);
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
