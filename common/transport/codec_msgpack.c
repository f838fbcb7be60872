/*
 * Reads and writes MessagePack fields for every message's codec: type-checked,
 * bounded readers that name the field in their errors, the linear duplicate-key
 * check, the one decode entry point (bounds, unpack, one map) and the writers
 * that keep the encoding canonical (keys in contract order, smallest integers).
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *codec_type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "string";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

int codec_want(const char *field, const msgpack_object *o, msgpack_object_type t, const char *what,
               hsc_err *err)
{
    if (o->type == t)
        return HSC_OK;
    return hsc_err_set(err, HSC_EINVAL, "%s: expected %s, got %s", field, what,
                       codec_type_name(o->type));
}

int codec_get_str(const char *field, const msgpack_object *o, char **out, hsc_err *err)
{
    int rc = codec_want(field, o, MSGPACK_OBJECT_STR, "a string", err);
    if (rc)
        return rc;
    free(*out);
    *out = hsc_strndup(o->via.str.ptr, o->via.str.size);
    if (!*out)
        return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", field);
    if (strlen(*out) != o->via.str.size)
        return hsc_err_set(err, HSC_EINVAL, "%s: contains a NUL byte", field);
    return HSC_OK;
}

int codec_get_int(const char *field, const msgpack_object *o, int64_t min, int64_t max,
                  int64_t *out, hsc_err *err)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return hsc_err_set(err, HSC_EINVAL, "%s: %llu does not fit in int64", field,
                               (unsigned long long)o->via.u64);
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return hsc_err_set(err, HSC_EINVAL, "%s: expected an integer, got %s", field,
                           codec_type_name(o->type));
    }
    if (v < min || v > max)
        return hsc_err_set(err, HSC_EINVAL, "%s: %lld is outside %lld..%lld", field, (long long)v,
                           (long long)min, (long long)max);
    *out = v;
    return HSC_OK;
}

int codec_get_strlist(const char *field, const msgpack_object *o, hsc_strlist *out, hsc_err *err)
{
    int rc = codec_want(field, o, MSGPACK_OBJECT_ARRAY, "an array of strings", err);
    if (rc)
        return rc;
    if (o->via.array.size > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "%s: %u entries is more than %d", field,
                           o->via.array.size, HSC_MAX_LIST_LEN);
    hsc_strlist_clear(out);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "%s[%u]: expected a string, got %s", field, i,
                               codec_type_name(e->type));
        if (memchr(e->via.str.ptr, 0, e->via.str.size))
            return hsc_err_set(err, HSC_EINVAL, "%s[%u]: contains a NUL byte", field, i);
        if (hsc_strlist_push(out, e->via.str.ptr, e->via.str.size))
            return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", field);
    }
    return HSC_OK;
}

int codec_get_embedding(const msgpack_object *o, float **out, size_t *dim, hsc_err *err)
{
    int rc = codec_want("embedding", o, MSGPACK_OBJECT_BIN, "bin of little-endian float32", err);
    if (rc)
        return rc;
    uint32_t n = o->via.bin.size;
    if (n == 0)
        return hsc_err_set(err, HSC_EINVAL, "embedding: empty");
    if (n % 4)
        return hsc_err_set(err, HSC_EINVAL, "embedding: %u bytes is not a multiple of 4", n);
    if (n / 4 > HSC_MAX_EMBEDDING_DIM)
        return hsc_err_set(err, HSC_EINVAL, "embedding: dimension %u is more than %d", n / 4,
                           HSC_MAX_EMBEDDING_DIM);
    float *v = malloc(n);
    if (!v)
        return hsc_err_set(err, HSC_ENOMEM, "embedding: out of memory");
    const unsigned char *p = (const unsigned char *)o->via.bin.ptr;
    for (uint32_t i = 0; i < n / 4; i++) {
        uint32_t bits = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                        (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&v[i], &bits, 4);
    }
    free(*out);
    *out = v;
    *dim = n / 4;
    return HSC_OK;
}

int codec_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

/*
 * The index of key k among names (*idx = -1 for a non-string or unknown key,
 * which the caller ignores). A known key met a second time is an error:
 * *seen has one bit per name, so the check costs nothing per key and the
 * decoder stays linear in the map size (unknown keys are never compared).
 */
int codec_field_of(const msgpack_object *k, const char *const *names, int n, const char *prefix,
                   uint32_t *seen, int *idx, hsc_err *err)
{
    *idx = -1;
    if (k->type != MSGPACK_OBJECT_STR)
        return HSC_OK;
    for (int i = 0; i < n; i++)
        if (codec_key_is(k, names[i])) {
            if (*seen & (1u << i))
                return hsc_err_set(err, HSC_EINVAL, "%s%s: key appears twice", prefix, names[i]);
            *seen |= 1u << i;
            *idx = i;
            return HSC_OK;
        }
    return HSC_OK;
}
/* The name of key k in errors. */
static const char *key_name(const struct codec_map *spec, int k)
{
    return spec->names ? spec->names[k] : spec->keys[k];
}

/* int members are read as int32_t */
_Static_assert(sizeof(int) == sizeof(int32_t), "int is 32 bits");

/* Reads val into out by the kind of its slot. */
static int read_slot(const struct codec_slot *slot, const char *name, const msgpack_object *val,
                     void *out, hsc_err *err)
{
    char *at = (char *)out + slot->off;
    int64_t n;
    int rc;
    switch (slot->kind) {
    case CODEC_STR:
        return codec_get_str(name, val, (char **)(void *)at, err);
    case CODEC_STRLIST:
        return codec_get_strlist(name, val, (hsc_strlist *)(void *)at, err);
    case CODEC_NUM:
        return codec_get_num(name, val, (double *)(void *)at, err);
    case CODEC_BOOL:
        return codec_get_bool(name, val, (bool *)(void *)at, err);
    case CODEC_INT64:
    case CODEC_INT32:
        if ((rc = codec_get_int(name, val, slot->min, slot->max, &n, err)))
            return rc;
        if (slot->kind == CODEC_INT64)
            *(int64_t *)(void *)at = n;
        else
            *(int32_t *)(void *)at = (int32_t)n;
        if (slot->flag)
            *(unsigned *)(void *)((char *)out + slot->flag_off) |= slot->flag;
        return HSC_OK;
    case CODEC_CUSTOM:
        break;
    }
    return HSC_OK;
}

int codec_read_map(const struct codec_map *spec, const msgpack_object_map *m, codec_field_fn field,
                   void *out, uint32_t *seen, hsc_err *err)
{
    const char *prefix = spec->prefix ? spec->prefix : "";
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *val = &m->ptr[i].val;
        if (spec->strict && m->ptr[i].key.type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "%s: key %u is not a string", spec->strict, i);
        int f, rc = codec_field_of(&m->ptr[i].key, spec->keys, spec->nkeys, prefix, seen, &f, err);
        if (rc)
            return rc;
        if (f < 0)
            continue; /* unknown keys are ignored */
        if (val->type == MSGPACK_OBJECT_NIL && (spec->nil_absent & CODEC_BIT(f))) {
            if (spec->nil_unseen)
                *seen &= ~CODEC_BIT(f);
            continue;
        }
        if (spec->slots && spec->slots[f].kind != CODEC_CUSTOM)
            rc = read_slot(&spec->slots[f], key_name(spec, f), val, out, err);
        else if (field)
            rc = field(out, f, val, err);
        if (rc)
            return rc;
    }
    return codec_require(spec, *seen, spec->required, err);
}

int codec_require(const struct codec_map *spec, uint32_t seen, uint32_t required, hsc_err *err)
{
    for (int k = 0; k < spec->nkeys; k++)
        if ((required & CODEC_BIT(k)) && !(seen & CODEC_BIT(k)))
            return hsc_err_set(err, HSC_EINVAL, "%s: missing", key_name(spec, k));
    return HSC_OK;
}

int codec_get_bool(const char *field, const msgpack_object *o, bool *out, hsc_err *err)
{
    int rc = codec_want(field, o, MSGPACK_OBJECT_BOOLEAN, "a boolean", err);
    if (!rc)
        *out = o->via.boolean;
    return rc;
}

int codec_get_num(const char *field, const msgpack_object *o, double *out, hsc_err *err)
{
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double)o->via.i64;
    else
        return hsc_err_set(err, HSC_EINVAL, "%s: expected a number, got %s", field,
                           codec_type_name(o->type));
    return HSC_OK;
}

/*
 * Checks buf against every bound, then unpacks it into *res and checks it is
 * one map with string keys covering every byte. what names the message
 * ("content") in errors about the message as a whole.
 */
static int unpack_map(const void *buf, size_t len, const char *what, msgpack_unpacked *res,
                      hsc_err *err)
{
    size_t off = 0;
    msgpack_unpacked_init(res);
    int rc = hsc_codec_check_bounds(buf, len, what, err);
    if (rc)
        return rc;
    msgpack_unpack_return r = msgpack_unpack_next(res, buf, len, &off);
    /* Not the message's fault: a worker retries it instead of sending it to the DLQ. */
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory unpacking %zu bytes", what, len);
    if (r != MSGPACK_UNPACK_SUCCESS)
        return hsc_err_set(err, HSC_EINVAL, "message: not MessagePack (%s)",
                           r == MSGPACK_UNPACK_CONTINUE ? "truncated" : "malformed");
    if (off != len)
        return hsc_err_set(err, HSC_EINVAL, "message: %zu trailing bytes after the map", len - off);
    if (res->data.type != MSGPACK_OBJECT_MAP)
        return hsc_err_set(err, HSC_EINVAL, "message: expected a map, got %s",
                           codec_type_name(res->data.type));
    const msgpack_object_map *m = &res->data.via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "message: map key %u is a %s, not a string", i,
                               codec_type_name(m->ptr[i].key.type));
    return HSC_OK;
}

int codec_decode(const struct codec_message *msg, const void *buf, size_t len, void *out,
                 hsc_err *err)
{
    msgpack_unpacked res;
    uint32_t seen = 0;
    int rc = unpack_map(buf, len, msg->what, &res, err);
    if (!rc)
        rc = codec_read_map(msg->map, &res.data.via.map, msg->field, out, &seen, err);
    if (!rc && msg->finish)
        rc = msg->finish(out, seen, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        msg->clear(out);
    return rc;
}

/* ---------- writing ---------- */

/*
 * msgpack_sbuffer_write keeps the old buffer when it cannot grow, and the
 * packers' results are not checked at every call: noting the loss here is
 * what lets codec_finish refuse a truncated message.
 */
static int codec_write(void *data, const char *buf, size_t len)
{
    struct codec_out *o = data;
    if (!o->lost && msgpack_sbuffer_write(&o->sb, buf, len) == 0)
        return 0;
    o->lost = true;
    return -1;
}

void codec_out_init(struct codec_out *o)
{
    msgpack_sbuffer_init(&o->sb);
    o->lost = false;
    msgpack_packer_init(&o->pk, o, codec_write);
}

int codec_finish(struct codec_out *o, char **out, size_t *len, hsc_err *err)
{
    if (o->lost || !o->sb.data) {
        msgpack_sbuffer_destroy(&o->sb);
        return hsc_err_set(err, HSC_ENOMEM, "encode: out of memory");
    }
    *out = o->sb.data; /* msgpack_sbuffer uses malloc/realloc: the caller frees with free() */
    *len = o->sb.size;
    return HSC_OK;
}

/* A string value (keys are strings too). */
static void pack_string(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void codec_pack_key(msgpack_packer *pk, const char *k)
{
    pack_string(pk, k);
}

void codec_pack_str(msgpack_packer *pk, const char *k, const char *v)
{
    pack_string(pk, k);
    pack_string(pk, v);
}

void codec_pack_list(msgpack_packer *pk, const char *k, const hsc_strlist *l)
{
    pack_string(pk, k);
    msgpack_pack_array(pk, l->n);
    for (size_t i = 0; i < l->n; i++)
        pack_string(pk, l->v[i]);
}

void codec_pack_bool(msgpack_packer *pk, const char *k, bool v)
{
    pack_string(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void codec_pack_int(msgpack_packer *pk, const char *k, int64_t v)
{
    pack_string(pk, k);
    msgpack_pack_int64(pk, v);
}

void codec_pack_double(msgpack_packer *pk, const char *k, double v)
{
    pack_string(pk, k);
    msgpack_pack_double(pk, v);
}

void codec_pack_embedding(msgpack_packer *pk, const float *v, size_t dim)
{
    pack_string(pk, "embedding");
    msgpack_pack_bin(pk, dim * 4);
    for (size_t i = 0; i < dim; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                              (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
        msgpack_pack_bin_body(pk, b, 4);
    }
}
