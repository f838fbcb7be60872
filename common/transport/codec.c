/*
 * MessagePack codec for hsc's messages (schemas/README.md): content and
 * learning events, indexed records, search requests and replies.
 * Decoding walks the map once: unknown keys are skipped, known keys are type
 * checked as they are read, then the whole event is validated by the same
 * function that checks events built from JSON, so both paths agree on what is
 * valid. Encoding writes keys in the order of the contract and lets msgpack-c
 * pick the smallest integer form, which makes the encoding canonical.
 */
#include "hsc/codec.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---------- message helpers ---------- */

void hsc_strlist_clear(hsc_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int hsc_strlist_push(hsc_strlist *l, const char *s, size_t n)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (!v)
        return HSC_ENOMEM;
    l->v = v;
    l->v[l->n] = hsc_strndup(s, n);
    if (!l->v[l->n])
        return HSC_ENOMEM;
    l->n++;
    return HSC_OK;
}

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

void hsc_learning_event_clear(hsc_learning_event *ev)
{
    free(ev->user_id);
    free(ev->content_id);
    free(ev->kind);
    memset(ev, 0, sizeof(*ev));
}

/* ---------- validation (shared by the MessagePack and JSON paths) ---------- */

void hsc_indexed_record_clear(hsc_indexed_record *r)
{
    free(r->id);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

static const char *CONTENT_KINDS[] = {"movie", "series", "episode", NULL};
static const char *LEARNING_KINDS[] = {"view",     "like",   "dislike", "skip",
                                       "complete", "rating", NULL};

static int one_of(const char *s, const char **set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

static int check_text(const char *field, const char *s, size_t max, hsc_err *err)
{
    size_t n = strlen(s);
    if (n > max)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu bytes is longer than %zu", field, n, max);
    if (!hsc_utf8_valid(s, n))
        return hsc_err_set(err, HSC_EINVAL, "%s: not valid UTF-8", field);
    return HSC_OK;
}

static int check_id(const char *field, const char *s, hsc_err *err)
{
    if (!s)
        return hsc_err_set(err, HSC_EINVAL, "%s: missing", field);
    if (!hsc_id_valid(s, strlen(s)))
        return hsc_err_set(err, HSC_EINVAL,
                           "%s: '%.40s%s' is not 1-128 characters of [A-Za-z0-9._:-]", field, s,
                           strlen(s) > 40 ? "..." : "");
    return HSC_OK;
}

static int check_tags(const char *field, const hsc_strlist *l, hsc_err *err)
{
    if (l->n > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu entries is more than %d", field, l->n,
                           HSC_MAX_LIST_LEN);
    for (size_t i = 0; i < l->n; i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        int rc = check_text(f, l->v[i], HSC_MAX_TAG_LEN, err);
        if (rc)
            return rc;
    }
    return HSC_OK;
}

int hsc_codec_validate_content(const hsc_content_event *ev, hsc_err *err)
{
    int rc;
    if (ev->v != HSC_SCHEMA_VERSION)
        return hsc_err_set(err, HSC_EINVAL, "v: schema version %d is not supported (expected %d)",
                           ev->v, HSC_SCHEMA_VERSION);
    if ((rc = check_id("id", ev->id, err)))
        return rc;
    if (ev->version < 0)
        return hsc_err_set(err, HSC_EINVAL, "version: %lld is negative", (long long)ev->version);
    if (ev->op == HSC_OP_UPSERT) {
        if (!ev->title)
            return hsc_err_set(err, HSC_EINVAL, "title: missing (required for upsert)");
        if (!*ev->title)
            return hsc_err_set(err, HSC_EINVAL, "title: empty (required for upsert)");
    }
    if (ev->title && (rc = check_text("title", ev->title, HSC_MAX_TITLE_LEN, err)))
        return rc;
    if (ev->description &&
        (rc = check_text("description", ev->description, HSC_MAX_DESCRIPTION_LEN, err)))
        return rc;
    if (ev->kind && !one_of(ev->kind, CONTENT_KINDS))
        return hsc_err_set(err, HSC_EINVAL, "kind: '%.32s' is not movie, series or episode",
                           ev->kind);
    if ((rc = check_tags("genres", &ev->genres, err)) ||
        (rc = check_tags("themes", &ev->themes, err)) ||
        (rc = check_tags("moods", &ev->moods, err)))
        return rc;
    if (ev->language) {
        const char *l = ev->language;
        int ok = strlen(l) == 2;
        for (int i = 0; ok && i < 2; i++)
            ok = (l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z');
        if (!ok)
            return hsc_err_set(err, HSC_EINVAL,
                               "language: '%.16s' is not a two-letter ISO 639-1 code", l);
    }
    if ((ev->has & HSC_HAS_YEAR) && (ev->year < 1800 || ev->year > 2200))
        return hsc_err_set(err, HSC_EINVAL, "year: %d is outside 1800..2200", (int)ev->year);
    if ((ev->has & HSC_HAS_MATURITY) && (ev->maturity < 0 || ev->maturity > 21))
        return hsc_err_set(err, HSC_EINVAL, "maturity: %d is outside 0..21", (int)ev->maturity);
    if ((ev->has & HSC_HAS_DURATION) && ev->duration_s < 0)
        return hsc_err_set(err, HSC_EINVAL, "duration_s: %lld is negative",
                           (long long)ev->duration_s);
    if (ev->related.n > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "related: %zu entries is more than %d", ev->related.n,
                           HSC_MAX_LIST_LEN);
    for (size_t i = 0; i < ev->related.n; i++) {
        char f[40];
        snprintf(f, sizeof(f), "related[%zu]", i);
        if ((rc = check_id(f, ev->related.v[i], err)))
            return rc;
    }
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

int hsc_codec_validate_learning(const hsc_learning_event *ev, hsc_err *err)
{
    int rc;
    if (ev->v != HSC_SCHEMA_VERSION)
        return hsc_err_set(err, HSC_EINVAL, "v: schema version %d is not supported (expected %d)",
                           ev->v, HSC_SCHEMA_VERSION);
    if ((rc = check_id("user_id", ev->user_id, err)) ||
        (rc = check_id("content_id", ev->content_id, err)))
        return rc;
    if (!ev->kind)
        return hsc_err_set(err, HSC_EINVAL, "kind: missing");
    if (!one_of(ev->kind, LEARNING_KINDS))
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

/* ---------- decoding ---------- */

static const char *type_name(msgpack_object_type t)
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

static int want(const char *field, const msgpack_object *o, msgpack_object_type t, const char *what,
                hsc_err *err)
{
    if (o->type == t)
        return HSC_OK;
    return hsc_err_set(err, HSC_EINVAL, "%s: expected %s, got %s", field, what, type_name(o->type));
}

static int get_str(const char *field, const msgpack_object *o, char **out, hsc_err *err)
{
    int rc = want(field, o, MSGPACK_OBJECT_STR, "a string", err);
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

static int get_int(const char *field, const msgpack_object *o, int64_t min, int64_t max,
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
                           type_name(o->type));
    }
    if (v < min || v > max)
        return hsc_err_set(err, HSC_EINVAL, "%s: %lld is outside %lld..%lld", field, (long long)v,
                           (long long)min, (long long)max);
    *out = v;
    return HSC_OK;
}

static int get_strlist(const char *field, const msgpack_object *o, hsc_strlist *out, hsc_err *err)
{
    int rc = want(field, o, MSGPACK_OBJECT_ARRAY, "an array of strings", err);
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
                               type_name(e->type));
        if (memchr(e->via.str.ptr, 0, e->via.str.size))
            return hsc_err_set(err, HSC_EINVAL, "%s[%u]: contains a NUL byte", field, i);
        if (hsc_strlist_push(out, e->via.str.ptr, e->via.str.size))
            return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", field);
    }
    return HSC_OK;
}

static int get_embedding(const msgpack_object *o, float **out, size_t *dim, hsc_err *err)
{
    int rc = want("embedding", o, MSGPACK_OBJECT_BIN, "bin of little-endian float32", err);
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

static int key_is(const msgpack_object *k, const char *name)
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
static int field_of(const msgpack_object *k, const char *const *names, int n, const char *prefix,
                    uint32_t *seen, int *idx, hsc_err *err)
{
    *idx = -1;
    if (k->type != MSGPACK_OBJECT_STR)
        return HSC_OK;
    for (int i = 0; i < n; i++)
        if (key_is(k, names[i])) {
            if (*seen & (1u << i))
                return hsc_err_set(err, HSC_EINVAL, "%s%s: key appears twice", prefix, names[i]);
            *seen |= 1u << i;
            *idx = i;
            return HSC_OK;
        }
    return HSC_OK;
}

/* ---------- bounds: one linear pass over the bytes before anything is allocated ---------- */

/*
 * msgpack-c allocates a container's elements from its header before reading
 * them, so five bytes claiming a map of 4 billion entries would ask for
 * 200 GB. scan_value walks the encoding once, iteratively per container and
 * recursively only to HSC_CODEC_MAX_DEPTH, checking every size against the
 * limits of codec.h and against the bytes actually there; only a message
 * that passes is handed to msgpack-c. The error names the field by its path
 * ("filters.genres", "results[].title").
 */
struct scan {
    const unsigned char *p, *end;
    hsc_err *err;
};

static int scan_truncated(struct scan *s)
{
    return hsc_err_set(s->err, HSC_EINVAL, "message: not MessagePack (truncated)");
}

/* Reads a big-endian unsigned integer of `bytes` bytes. */
static int scan_uint(struct scan *s, int bytes, uint64_t *out)
{
    if ((size_t)(s->end - s->p) < (size_t)bytes)
        return scan_truncated(s);
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | *s->p++;
    *out = v;
    return HSC_OK;
}

static int scan_skip(struct scan *s, uint64_t n)
{
    if ((uint64_t)(s->end - s->p) < n)
        return scan_truncated(s);
    s->p += n;
    return HSC_OK;
}

/* A string, bin or ext body of n bytes, at most max. */
static int scan_body(struct scan *s, const char *field, const char *what, uint64_t n, long max)
{
    if (n > (uint64_t)max)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: %s of %llu bytes exceeds %ld", field, what,
                           (unsigned long long)n, max);
    return scan_skip(s, n);
}

/* The path of a map value: parent.key, with the key cut to 40 printable bytes. */
static void scan_child(char *out, size_t cap, const char *parent, const unsigned char *key,
                       size_t klen)
{
    char k[41];
    size_t n = klen < 40 ? klen : 40;
    for (size_t i = 0; i < n; i++)
        k[i] = key[i] > 0x20 && key[i] < 0x7f ? (char)key[i] : '?';
    k[n] = 0;
    snprintf(out, cap, "%s%s%s", parent, *parent ? "." : "", k);
}

static int scan_value(struct scan *s, const char *field, const char *path, int depth);

/* Checks a string key (its length against HSC_CODEC_MAX_KEY_BYTES) and returns its bytes. */
static int scan_key(struct scan *s, const char *field, const unsigned char **key, size_t *klen,
                    int *is_str)
{
    unsigned c = *s->p;
    uint64_t n = 0;
    int rc = HSC_OK;
    *is_str = 1;
    if (c >= 0xa0 && c <= 0xbf) {
        s->p++;
        n = c & 0x1f;
    } else if (c >= 0xd9 && c <= 0xdb) {
        s->p++;
        rc = scan_uint(s, 1 << (c - 0xd9), &n);
    } else {
        *is_str = 0;
        return HSC_OK;
    }
    if (rc)
        return rc;
    if (n > HSC_CODEC_MAX_KEY_BYTES)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: map key of %llu bytes exceeds %d", field,
                           (unsigned long long)n, HSC_CODEC_MAX_KEY_BYTES);
    *key = s->p;
    *klen = (size_t)n;
    return scan_skip(s, n);
}

static int scan_map(struct scan *s, const char *field, const char *path, uint64_t n, int depth)
{
    if (n > HSC_CODEC_MAX_MAP_ENTRIES)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: map of %llu entries exceeds %d", field,
                           (unsigned long long)n, HSC_CODEC_MAX_MAP_ENTRIES);
    if (depth >= HSC_CODEC_MAX_DEPTH)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: nested deeper than %d levels", field,
                           HSC_CODEC_MAX_DEPTH);
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *key = NULL;
        size_t klen = 0;
        int is_str, rc;
        if (s->p >= s->end)
            return scan_truncated(s);
        if ((rc = scan_key(s, field, &key, &klen, &is_str)))
            return rc;
        char child[160];
        if (is_str) {
            scan_child(child, sizeof(child), path, key, klen);
        } else {
            snprintf(child, sizeof(child), "%s", field);
            if ((rc = scan_value(s, child, path, depth + 1)))
                return rc;
        }
        if ((rc = scan_value(s, child, child, depth + 1)))
            return rc;
    }
    return HSC_OK;
}

static int scan_array(struct scan *s, const char *field, uint64_t n, int depth)
{
    if (n > HSC_CODEC_MAX_ARRAY_LEN)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: array of %llu entries exceeds %d", field,
                           (unsigned long long)n, HSC_CODEC_MAX_ARRAY_LEN);
    if (depth >= HSC_CODEC_MAX_DEPTH)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: nested deeper than %d levels", field,
                           HSC_CODEC_MAX_DEPTH);
    char elem[160];
    snprintf(elem, sizeof(elem), "%s[]", field);
    for (uint64_t i = 0; i < n; i++) {
        int rc = scan_value(s, elem, elem, depth + 1);
        if (rc)
            return rc;
    }
    return HSC_OK;
}

/* One value named field; path is what its map keys are appended to. */
static int scan_value(struct scan *s, const char *field, const char *path, int depth)
{
    if (s->p >= s->end)
        return scan_truncated(s);
    unsigned c = *s->p++;
    uint64_t n = 0;
    int rc;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return HSC_OK; /* fixint, nil, booleans */
    if (c <= 0x8f)
        return scan_map(s, field, path, c & 0x0f, depth);
    if (c <= 0x9f)
        return scan_array(s, field, c & 0x0f, depth);
    if (c <= 0xbf)
        return scan_body(s, field, "string", c & 0x1f, HSC_CODEC_MAX_STR_BYTES);
    switch (c) {
    case 0xc4: /* bin 8, 16, 32 */
    case 0xc5:
    case 0xc6:
        if ((rc = scan_uint(s, 1 << (c - 0xc4), &n)))
            return rc;
        return scan_body(s, field, "bin", n, HSC_CODEC_MAX_BIN_BYTES);
    case 0xc7: /* ext 8, 16, 32: length, type, body */
    case 0xc8:
    case 0xc9:
        if ((rc = scan_uint(s, 1 << (c - 0xc7), &n)) || (rc = scan_skip(s, 1)))
            return rc;
        return scan_body(s, field, "ext", n, HSC_CODEC_MAX_STR_BYTES);
    case 0xca: /* float 32, 64 */
        return scan_skip(s, 4);
    case 0xcb:
        return scan_skip(s, 8);
    case 0xcc: /* uint 8..64, int 8..64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        return scan_skip(s, 1u << (c - 0xcc));
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return scan_skip(s, 1u << (c - 0xd0));
    case 0xd4: /* fixext 1..16: type and body */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return scan_skip(s, 1 + (1u << (c - 0xd4)));
    case 0xd9: /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        if ((rc = scan_uint(s, 1 << (c - 0xd9), &n)))
            return rc;
        return scan_body(s, field, "string", n, HSC_CODEC_MAX_STR_BYTES);
    case 0xdc: /* array 16, 32 */
    case 0xdd:
        if ((rc = scan_uint(s, c == 0xdc ? 2 : 4, &n)))
            return rc;
        return scan_array(s, field, n, depth);
    case 0xde: /* map 16, 32 */
    case 0xdf:
        if ((rc = scan_uint(s, c == 0xde ? 2 : 4, &n)))
            return rc;
        return scan_map(s, field, path, n, depth);
    default: /* 0xc1 is never used */
        return hsc_err_set(s->err, HSC_EINVAL, "message: not MessagePack (malformed)");
    }
}

int hsc_codec_check_bounds(const void *buf, size_t len, const char *what, hsc_err *err)
{
    if (len == 0)
        return hsc_err_set(err, HSC_EINVAL, "message: empty");
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES)
        return hsc_err_set(err, HSC_EINVAL, "%s: message of %zu bytes exceeds %d", what, len,
                           HSC_CODEC_MAX_MESSAGE_BYTES);
    struct scan s = {.p = buf, .end = (const unsigned char *)buf + len, .err = err};
    int rc = scan_value(&s, what, "", 0);
    if (rc)
        return rc;
    if (s.p != s.end)
        return hsc_err_set(err, HSC_EINVAL, "message: %zu trailing bytes after the map",
                           (size_t)(s.end - s.p));
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
    if (r != MSGPACK_UNPACK_SUCCESS)
        return hsc_err_set(err, HSC_EINVAL, "message: not MessagePack (%s)",
                           r == MSGPACK_UNPACK_CONTINUE ? "truncated" : "malformed");
    if (off != len)
        return hsc_err_set(err, HSC_EINVAL, "message: %zu trailing bytes after the map", len - off);
    if (res->data.type != MSGPACK_OBJECT_MAP)
        return hsc_err_set(err, HSC_EINVAL, "message: expected a map, got %s",
                           type_name(res->data.type));
    const msgpack_object_map *m = &res->data.via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "message: map key %u is a %s, not a string", i,
                               type_name(m->ptr[i].key.type));
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

static int decode_content_fields(const msgpack_object_map *m, hsc_content_event *ev, hsc_err *err)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = field_of(&m->ptr[i].key, CONTENT_KEYS, C_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        if (f < 0)
            continue; /* unknown keys are ignored */
        if (o->type == MSGPACK_OBJECT_NIL && f != C_V && f != C_OP && f != C_ID && f != C_VERSION)
            continue; /* nil means absent for optional fields */
        switch (f) {
        case C_V:
            if (!(rc = get_int("v", o, 0, 1000, &n, err)))
                ev->v = (int)n;
            break;
        case C_OP: {
            char *op = NULL;
            if (!(rc = get_str("op", o, &op, err))) {
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
        case C_ID:
            rc = get_str("id", o, &ev->id, err);
            break;
        case C_VERSION:
            rc = get_int("version", o, INT64_MIN, INT64_MAX, &ev->version, err);
            break;
        case C_TITLE:
            rc = get_str("title", o, &ev->title, err);
            break;
        case C_DESCRIPTION:
            rc = get_str("description", o, &ev->description, err);
            break;
        case C_KIND:
            rc = get_str("kind", o, &ev->kind, err);
            break;
        case C_GENRES:
            rc = get_strlist("genres", o, &ev->genres, err);
            break;
        case C_THEMES:
            rc = get_strlist("themes", o, &ev->themes, err);
            break;
        case C_MOODS:
            rc = get_strlist("moods", o, &ev->moods, err);
            break;
        case C_RELATED:
            rc = get_strlist("related", o, &ev->related, err);
            break;
        case C_LANGUAGE:
            rc = get_str("language", o, &ev->language, err);
            break;
        case C_YEAR:
            if (!(rc = get_int("year", o, INT32_MIN, INT32_MAX, &n, err)))
                ev->year = (int32_t)n, ev->has |= HSC_HAS_YEAR;
            break;
        case C_MATURITY:
            if (!(rc = get_int("maturity", o, INT32_MIN, INT32_MAX, &n, err)))
                ev->maturity = (int32_t)n, ev->has |= HSC_HAS_MATURITY;
            break;
        case C_DURATION:
            if (!(rc = get_int("duration_s", o, INT64_MIN, INT64_MAX, &ev->duration_s, err)))
                ev->has |= HSC_HAS_DURATION;
            break;
        case C_EMBEDDING:
            rc = get_embedding(o, &ev->embedding, &ev->dim, err);
            break;
        case C_TS:
            if (!(rc = get_int("ts", o, INT64_MIN, INT64_MAX, &ev->ts, err)))
                ev->has |= HSC_HAS_TS;
            break;
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << C_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!(seen & 1u << C_OP))
        return hsc_err_set(err, HSC_EINVAL, "op: missing");
    if (!ev->id)
        return hsc_err_set(err, HSC_EINVAL, "id: missing");
    if (!(seen & 1u << C_VERSION))
        return hsc_err_set(err, HSC_EINVAL, "version: missing");
    return hsc_codec_validate_content(ev, err);
}

int hsc_codec_decode_content(const void *buf, size_t len, hsc_content_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "content", &res, err);
    if (!rc)
        rc = decode_content_fields(&res.data.via.map, ev, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_content_event_clear(ev);
    return rc;
}

enum { L_V, L_USER_ID, L_CONTENT_ID, L_KIND, L_VALUE, L_TS, L_NKEYS };
static const char *const LEARNING_KEYS[L_NKEYS] = {"v",    "user_id", "content_id",
                                                   "kind", "value",   "ts"};

static int decode_learning_fields(const msgpack_object_map *m, hsc_learning_event *ev, hsc_err *err)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = field_of(&m->ptr[i].key, LEARNING_KEYS, L_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        switch (f) {
        case L_V:
            if (!(rc = get_int("v", o, 0, 1000, &n, err)))
                ev->v = (int)n;
            break;
        case L_USER_ID:
            rc = get_str("user_id", o, &ev->user_id, err);
            break;
        case L_CONTENT_ID:
            rc = get_str("content_id", o, &ev->content_id, err);
            break;
        case L_KIND:
            rc = get_str("kind", o, &ev->kind, err);
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
                                 type_name(o->type));
            ev->has_value = (rc == HSC_OK);
            break;
        case L_TS:
            rc = get_int("ts", o, INT64_MIN, INT64_MAX, &ev->ts, err);
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
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "learning", &res, err);
    if (!rc)
        rc = decode_learning_fields(&res.data.via.map, ev, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_learning_event_clear(ev);
    return rc;
}

/* ---------- encoding ---------- */

static void pack_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

static void pack_str(msgpack_packer *pk, const char *k, const char *v)
{
    pack_key(pk, k);
    size_t n = strlen(v);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, v, n);
}

static void pack_list(msgpack_packer *pk, const char *k, const hsc_strlist *l)
{
    pack_key(pk, k);
    msgpack_pack_array(pk, l->n);
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, l->v[i], n);
    }
}

static int finish(msgpack_sbuffer *sb, char **out, size_t *len, hsc_err *err)
{
    if (!sb->data) {
        msgpack_sbuffer_destroy(sb);
        return hsc_err_set(err, HSC_ENOMEM, "encode: out of memory");
    }
    *out = sb->data; /* msgpack_sbuffer uses malloc/realloc: the caller frees with free() */
    *len = sb->size;
    return HSC_OK;
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

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    pack_key(&pk, "v");
    msgpack_pack_int64(&pk, ev->v);
    pack_str(&pk, "op", ev->op == HSC_OP_DELETE ? "delete" : "upsert");
    pack_str(&pk, "id", ev->id);
    pack_key(&pk, "version");
    msgpack_pack_int64(&pk, ev->version);
    if (ev->title)
        pack_str(&pk, "title", ev->title);
    if (ev->description)
        pack_str(&pk, "description", ev->description);
    if (ev->kind)
        pack_str(&pk, "kind", ev->kind);
    if (ev->genres.n)
        pack_list(&pk, "genres", &ev->genres);
    if (ev->themes.n)
        pack_list(&pk, "themes", &ev->themes);
    if (ev->moods.n)
        pack_list(&pk, "moods", &ev->moods);
    if (ev->language)
        pack_str(&pk, "language", ev->language);
    if (ev->has & HSC_HAS_YEAR) {
        pack_key(&pk, "year");
        msgpack_pack_int64(&pk, ev->year);
    }
    if (ev->has & HSC_HAS_MATURITY) {
        pack_key(&pk, "maturity");
        msgpack_pack_int64(&pk, ev->maturity);
    }
    if (ev->has & HSC_HAS_DURATION) {
        pack_key(&pk, "duration_s");
        msgpack_pack_int64(&pk, ev->duration_s);
    }
    if (ev->related.n)
        pack_list(&pk, "related", &ev->related);
    if (ev->embedding) {
        pack_key(&pk, "embedding");
        msgpack_pack_bin(&pk, ev->dim * 4);
        for (size_t i = 0; i < ev->dim; i++) {
            uint32_t bits;
            memcpy(&bits, &ev->embedding[i], 4);
            unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                                  (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
            msgpack_pack_bin_body(&pk, b, 4);
        }
    }
    if (ev->has & HSC_HAS_TS) {
        pack_key(&pk, "ts");
        msgpack_pack_int64(&pk, ev->ts);
    }
    return finish(&sb, out, len, err);
}

int hsc_codec_encode_learning(const hsc_learning_event *ev, char **out, size_t *len, hsc_err *err)
{
    int rc = hsc_codec_validate_learning(ev, err);
    if (rc)
        return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5 + ev->has_value);
    pack_key(&pk, "v");
    msgpack_pack_int64(&pk, ev->v);
    pack_str(&pk, "user_id", ev->user_id);
    pack_str(&pk, "content_id", ev->content_id);
    pack_str(&pk, "kind", ev->kind);
    if (ev->has_value) {
        pack_key(&pk, "value");
        msgpack_pack_double(&pk, ev->value);
    }
    pack_key(&pk, "ts");
    msgpack_pack_int64(&pk, ev->ts);
    return finish(&sb, out, len, err);
}

/* ---------- IndexedRecord ---------- */

enum { I_V, I_ID, I_VERSION, I_OP, I_INDEXED, I_REASON, I_EPOCH, I_DIM, I_TS, I_PUB_TS, I_NKEYS };
static const char *const INDEXED_KEYS[I_NKEYS] = {
    "v", "id", "version", "op", "indexed", "reason", "epoch", "dim", "ts", "published_ts"};

static int decode_indexed_fields(const msgpack_object_map *m, hsc_indexed_record *r, hsc_err *err)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = field_of(&m->ptr[i].key, INDEXED_KEYS, I_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        switch (f) {
        case I_V:
            if (!(rc = get_int("v", o, 0, 1000, &n, err)))
                r->v = (int)n;
            break;
        case I_ID:
            rc = get_str("id", o, &r->id, err);
            break;
        case I_VERSION:
            rc = get_int("version", o, 0, INT64_MAX, &r->version, err);
            break;
        case I_OP: {
            char *op = NULL;
            if (!(rc = get_str("op", o, &op, err))) {
                if (!strcmp(op, "upsert") || !strcmp(op, "delete"))
                    r->op = strcmp(op, "upsert") ? HSC_OP_DELETE : HSC_OP_UPSERT;
                else
                    rc = hsc_err_set(err, HSC_EINVAL, "op: must be \"upsert\" or \"delete\"");
            }
            free(op);
            break;
        }
        case I_INDEXED:
            if (!(rc = want("indexed", o, MSGPACK_OBJECT_BOOLEAN, "a boolean", err)))
                r->indexed = o->via.boolean;
            break;
        case I_REASON:
            rc = get_str("reason", o, &r->reason, err);
            break;
        case I_EPOCH:
            rc = get_int("epoch", o, 0, INT64_MAX, &r->epoch, err);
            break;
        case I_DIM:
            if (!(rc = get_int("dim", o, 0, HSC_MAX_EMBEDDING_DIM, &n, err)))
                r->dim = (int32_t)n;
            break;
        case I_TS:
            rc = get_int("ts", o, INT64_MIN, INT64_MAX, &r->ts, err);
            break;
        case I_PUB_TS:
            rc = get_int("published_ts", o, 1, INT64_MAX, &r->published_ts, err);
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
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "indexed", &res, err);
    if (!rc)
        rc = decode_indexed_fields(&res.data.via.map, r, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_indexed_record_clear(r);
    return rc;
}

int hsc_codec_encode_indexed(const hsc_indexed_record *r, char **out, size_t *len, hsc_err *err)
{
    if (!r->id || !hsc_id_valid(r->id, strlen(r->id)))
        return hsc_err_set(err, HSC_EINVAL, "id: must be 1-%d of [A-Za-z0-9._:-]", HSC_MAX_ID_LEN);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8 + !!r->reason + (r->published_ts > 0));
    pack_key(&pk, "v");
    msgpack_pack_int64(&pk, r->v);
    pack_str(&pk, "id", r->id);
    pack_key(&pk, "version");
    msgpack_pack_int64(&pk, r->version);
    pack_str(&pk, "op", r->op == HSC_OP_DELETE ? "delete" : "upsert");
    pack_key(&pk, "indexed");
    if (r->indexed)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (r->reason)
        pack_str(&pk, "reason", r->reason);
    pack_key(&pk, "epoch");
    msgpack_pack_int64(&pk, r->epoch);
    pack_key(&pk, "dim");
    msgpack_pack_int64(&pk, r->dim);
    pack_key(&pk, "ts");
    msgpack_pack_int64(&pk, r->ts);
    if (r->published_ts > 0) {
        pack_key(&pk, "published_ts");
        msgpack_pack_int64(&pk, r->published_ts);
    }
    return finish(&sb, out, len, err);
}

/* ---------- SearchRequest and SearchReply ---------- */

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

void hsc_search_result_clear(hsc_search_result *r)
{
    free(r->id);
    free(r->title);
    hsc_strlist_clear(&r->genres);
    for (size_t i = 0; i < r->nrels; i++) {
        free(r->rels[i].type);
        free(r->rels[i].seed);
    }
    free(r->rels);
    memset(r, 0, sizeof(*r));
}

void hsc_search_reply_clear(hsc_search_reply *r)
{
    free(r->correlation_id);
    free(r->error_code);
    free(r->error_message);
    free(r->plan);
    hsc_strlist_clear(&r->degraded);
    for (size_t i = 0; i < r->nresults; i++)
        hsc_search_result_clear(&r->results[i]);
    free(r->results);
    memset(r, 0, sizeof(*r));
}

static int get_bool(const char *field, const msgpack_object *o, bool *out, hsc_err *err)
{
    int rc = want(field, o, MSGPACK_OBJECT_BOOLEAN, "a boolean", err);
    if (!rc)
        *out = o->via.boolean;
    return rc;
}

static int get_num(const char *field, const msgpack_object *o, double *out, hsc_err *err)
{
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double)o->via.i64;
    else
        return hsc_err_set(err, HSC_EINVAL, "%s: expected a number, got %s", field,
                           type_name(o->type));
    return HSC_OK;
}

static int check_ids(const char *field, const hsc_strlist *l, hsc_err *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (!hsc_id_valid(l->v[i], strlen(l->v[i])))
            return hsc_err_set(err, HSC_EINVAL, "%s[%zu]: must be 1-%d of [A-Za-z0-9._:-]", field,
                               i, HSC_MAX_ID_LEN);
    return HSC_OK;
}

enum { F_GENRES, F_EXCLUDE_IDS, F_LANGUAGE, F_YEAR_MIN, F_YEAR_MAX, F_MAX_MATURITY, F_NKEYS };
static const char *const FILTER_KEYS[F_NKEYS] = {"genres",   "exclude_ids", "language",
                                                 "year_min", "year_max",    "max_maturity"};

static int decode_filters(const msgpack_object *o, hsc_search_filters *f, hsc_err *err)
{
    int rc = want("filters", o, MSGPACK_OBJECT_MAP, "a map", err);
    if (rc)
        return rc;
    const msgpack_object_map *m = &o->via.map;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size && !rc; i++) {
        const msgpack_object *k = &m->ptr[i].key, *val = &m->ptr[i].val;
        int64_t n;
        int x;
        if (k->type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "filters: key %u is not a string", i);
        if ((rc = field_of(k, FILTER_KEYS, F_NKEYS, "filters.", &seen, &x, err)))
            return rc;
        if (val->type == MSGPACK_OBJECT_NIL)
            continue;
        switch (x) {
        case F_GENRES:
            if (!(rc = get_strlist("filters.genres", val, &f->genres, err)))
                rc = check_tags("filters.genres", &f->genres, err);
            break;
        case F_EXCLUDE_IDS:
            if (!(rc = get_strlist("filters.exclude_ids", val, &f->exclude_ids, err)))
                rc = check_ids("filters.exclude_ids", &f->exclude_ids, err);
            break;
        case F_LANGUAGE:
            if (!(rc = get_str("filters.language", val, &f->language, err)))
                rc = check_text("filters.language", f->language, 16, err);
            break;
        case F_YEAR_MIN:
            if (!(rc = get_int("filters.year_min", val, 0, 9999, &n, err)))
                f->year_min = (int32_t)n, f->has |= HSC_FILTER_YEAR_MIN;
            break;
        case F_YEAR_MAX:
            if (!(rc = get_int("filters.year_max", val, 0, 9999, &n, err)))
                f->year_max = (int32_t)n, f->has |= HSC_FILTER_YEAR_MAX;
            break;
        case F_MAX_MATURITY:
            if (!(rc = get_int("filters.max_maturity", val, 0, 21, &n, err)))
                f->max_maturity = (int32_t)n, f->has |= HSC_FILTER_MAX_MATURITY;
            break;
        default:
            break; /* unknown keys are ignored */
        }
    }
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

static int decode_request_fields(const msgpack_object_map *m, hsc_search_request *r, hsc_err *err)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = field_of(&m->ptr[i].key, REQUEST_KEYS, R_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        if (o->type == MSGPACK_OBJECT_NIL && f != R_V)
            continue;
        switch (f) {
        case R_V:
            if (!(rc = get_int("v", o, 1, 1, &n, err)))
                r->v = (int)n;
            break;
        case R_USER_ID:
            if (!(rc = get_str("user_id", o, &r->user_id, err)))
                rc = check_id("user_id", r->user_id, err);
            break;
        case R_EMBEDDING:
            rc = get_embedding(o, &r->embedding, &r->dim, err);
            for (size_t d = 0; !rc && d < r->dim; d++)
                if (!isfinite(r->embedding[d]))
                    rc = hsc_err_set(err, HSC_EINVAL, "embedding: value %zu is not finite", d);
            break;
        case R_SEED_IDS:
            if (!(rc = get_strlist("seed_ids", o, &r->seed_ids, err)))
                rc = check_ids("seed_ids", &r->seed_ids, err);
            break;
        case R_K:
            if (!(rc = get_int("k", o, 1, HSC_SEARCH_K_MAX, &n, err)))
                r->k = (int)n;
            break;
        case R_FILTERS:
            rc = decode_filters(o, &r->filters, err);
            break;
        case R_INCLUDE_RELS:
            rc = get_bool("include_relationships", o, &r->include_relationships, err);
            break;
        case R_STRATEGY: {
            char *s = NULL;
            if (!(rc = get_str("strategy", o, &s, err)) && hsc_strategy_parse(s, &r->strategy))
                rc = hsc_err_set(err, HSC_EINVAL,
                                 "strategy: \"%.40s\" is not one of auto, vector_only, "
                                 "graph_only, hybrid_parallel, hybrid_sequential, cached_only",
                                 s);
            free(s);
            break;
        }
        case R_CACHE:
            rc = get_bool("cache", o, &r->cache, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << R_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    return HSC_OK;
}

int hsc_codec_decode_search_request(const void *buf, size_t len, hsc_search_request *r,
                                    hsc_err *err)
{
    hsc_search_request_init(r);
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "search request", &res, err);
    if (!rc)
        rc = decode_request_fields(&res.data.via.map, r, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_search_request_clear(r);
    return rc;
}

static void pack_bool(msgpack_packer *pk, const char *k, bool v)
{
    pack_key(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void pack_int(msgpack_packer *pk, const char *k, int64_t v)
{
    pack_key(pk, k);
    msgpack_pack_int64(pk, v);
}

int hsc_codec_encode_search_request(const hsc_search_request *r, char **out, size_t *len,
                                    hsc_err *err)
{
    if (r->k < 1 || r->k > HSC_SEARCH_K_MAX)
        return hsc_err_set(err, HSC_EINVAL, "k: %d is outside 1..%d", r->k, HSC_SEARCH_K_MAX);
    if (r->user_id && check_id("user_id", r->user_id, err))
        return err->code;
    const hsc_search_filters *f = &r->filters;
    int nf = !!f->genres.n + !!f->exclude_ids.n + !!f->language + !!(f->has & HSC_FILTER_YEAR_MIN) +
             !!(f->has & HSC_FILTER_YEAR_MAX) + !!(f->has & HSC_FILTER_MAX_MATURITY);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5 + !!r->user_id + !!r->embedding + !!r->seed_ids.n + !!nf);
    pack_int(&pk, "v", r->v ? r->v : HSC_SCHEMA_VERSION);
    if (r->user_id)
        pack_str(&pk, "user_id", r->user_id);
    if (r->embedding) {
        pack_key(&pk, "embedding");
        msgpack_pack_bin(&pk, r->dim * 4);
        for (size_t i = 0; i < r->dim; i++) {
            uint32_t bits;
            memcpy(&bits, &r->embedding[i], 4);
            unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                                  (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
            msgpack_pack_bin_body(&pk, b, 4);
        }
    }
    if (r->seed_ids.n)
        pack_list(&pk, "seed_ids", &r->seed_ids);
    pack_int(&pk, "k", r->k);
    if (nf) {
        pack_key(&pk, "filters");
        msgpack_pack_map(&pk, nf);
        if (f->genres.n)
            pack_list(&pk, "genres", &f->genres);
        if (f->exclude_ids.n)
            pack_list(&pk, "exclude_ids", &f->exclude_ids);
        if (f->language)
            pack_str(&pk, "language", f->language);
        if (f->has & HSC_FILTER_YEAR_MIN)
            pack_int(&pk, "year_min", f->year_min);
        if (f->has & HSC_FILTER_YEAR_MAX)
            pack_int(&pk, "year_max", f->year_max);
        if (f->has & HSC_FILTER_MAX_MATURITY)
            pack_int(&pk, "max_maturity", f->max_maturity);
    }
    pack_bool(&pk, "include_relationships", r->include_relationships);
    pack_str(&pk, "strategy", hsc_strategy_name(r->strategy));
    pack_bool(&pk, "cache", r->cache);
    return finish(&sb, out, len, err);
}

static void pack_double(msgpack_packer *pk, const char *k, double v)
{
    pack_key(pk, k);
    msgpack_pack_double(pk, v);
}

/* Packs results only (the part the cache stores). */
void hsc_codec_pack_results(void *packer, const hsc_search_result *res, size_t n)
{
    msgpack_packer *pk = packer;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const hsc_search_result *x = &res[i];
        msgpack_pack_map(pk, 7 + x->has_rels);
        pack_str(pk, "id", x->id);
        pack_double(pk, "score", x->score);
        pack_double(pk, "vector_score", x->vector_score);
        pack_double(pk, "graph_score", x->graph_score);
        pack_double(pk, "policy_score", x->policy_score);
        pack_str(pk, "title", x->title ? x->title : "");
        pack_list(pk, "genres", &x->genres);
        if (x->has_rels) {
            pack_key(pk, "relationships");
            msgpack_pack_array(pk, x->nrels);
            for (size_t j = 0; j < x->nrels; j++) {
                msgpack_pack_map(pk, 3);
                pack_str(pk, "type", x->rels[j].type);
                pack_str(pk, "seed", x->rels[j].seed);
                pack_double(pk, "score", x->rels[j].score);
            }
        }
    }
}

int hsc_codec_encode_search_reply(const hsc_search_reply *r, char **out, size_t *len, hsc_err *err)
{
    if (!r->correlation_id)
        return hsc_err_set(err, HSC_EINVAL, "correlation_id: missing");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8 + !r->ok + !!r->plan);
    pack_int(&pk, "v", r->v ? r->v : HSC_SCHEMA_VERSION);
    pack_str(&pk, "correlation_id", r->correlation_id);
    pack_str(&pk, "status", r->ok ? "ok" : "error");
    if (!r->ok) {
        pack_key(&pk, "error");
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "code", r->error_code ? r->error_code : "internal");
        pack_str(&pk, "message", r->error_message ? r->error_message : "");
    }
    pack_str(&pk, "strategy", hsc_strategy_name(r->strategy));
    if (r->plan)
        pack_str(&pk, "plan", r->plan);
    pack_bool(&pk, "cache_hit", r->cache_hit);
    pack_list(&pk, "degraded", &r->degraded);
    pack_key(&pk, "results");
    hsc_codec_pack_results(&pk, r->results, r->nresults);
    pack_key(&pk, "timings_us");
    msgpack_pack_map(&pk, 6);
    pack_int(&pk, "total", r->timings_us.total);
    pack_int(&pk, "cache", r->timings_us.cache);
    pack_int(&pk, "vector", r->timings_us.vector);
    pack_int(&pk, "graph", r->timings_us.graph);
    pack_int(&pk, "policy", r->timings_us.policy);
    pack_int(&pk, "rank", r->timings_us.rank);
    return finish(&sb, out, len, err);
}

enum { REL_TYPE, REL_SEED, REL_SCORE, REL_NKEYS };
static const char *const REL_KEYS[REL_NKEYS] = {"type", "seed", "score"};

static int decode_rels(const msgpack_object *o, hsc_search_result *x, hsc_err *err)
{
    int rc = want("relationships", o, MSGPACK_OBJECT_ARRAY, "an array", err);
    if (rc)
        return rc;
    x->has_rels = true;
    x->rels = calloc(o->via.array.size ? o->via.array.size : 1, sizeof(*x->rels));
    if (!x->rels)
        return hsc_err_set(err, HSC_ENOMEM, "relationships: out of memory");
    for (uint32_t i = 0; i < o->via.array.size && !rc; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if ((rc = want("relationships[]", e, MSGPACK_OBJECT_MAP, "a map", err)))
            break;
        hsc_search_relationship *rel = &x->rels[x->nrels++];
        uint32_t seen = 0;
        for (uint32_t j = 0; j < e->via.map.size && !rc; j++) {
            const msgpack_object *val = &e->via.map.ptr[j].val;
            int f;
            if ((rc = field_of(&e->via.map.ptr[j].key, REL_KEYS, REL_NKEYS, "relationships[].",
                               &seen, &f, err)))
                break;
            if (f == REL_TYPE)
                rc = get_str("relationships[].type", val, &rel->type, err);
            else if (f == REL_SEED)
                rc = get_str("relationships[].seed", val, &rel->seed, err);
            else if (f == REL_SCORE && val->type != MSGPACK_OBJECT_NIL)
                rc = get_num("relationships[].score", val, &rel->score, err);
        }
        /* Both are part of the contract, and the encoder writes them unconditionally. */
        if (!rc && !rel->type)
            rc = hsc_err_set(err, HSC_EINVAL, "relationships[].type: missing");
        if (!rc && !rel->seed)
            rc = hsc_err_set(err, HSC_EINVAL, "relationships[].seed: missing");
    }
    return rc;
}

enum {
    RES_ID,
    RES_SCORE,
    RES_VECTOR_SCORE,
    RES_GRAPH_SCORE,
    RES_POLICY_SCORE,
    RES_TITLE,
    RES_GENRES,
    RES_RELS,
    RES_NKEYS
};
static const char *const RESULT_KEYS[RES_NKEYS] = {"id",          "score",        "vector_score",
                                                   "graph_score", "policy_score", "title",
                                                   "genres",      "relationships"};

static int decode_result(const msgpack_object *o, hsc_search_result *x, hsc_err *err)
{
    int rc = want("results[]", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        const msgpack_object *val = &o->via.map.ptr[j].val;
        int f;
        if ((rc = field_of(&o->via.map.ptr[j].key, RESULT_KEYS, RES_NKEYS, "results[].", &seen, &f,
                           err)))
            break;
        switch (f) {
        case RES_ID:
            rc = get_str("results[].id", val, &x->id, err);
            break;
        case RES_SCORE:
            rc = get_num("results[].score", val, &x->score, err);
            break;
        case RES_VECTOR_SCORE:
            rc = get_num("results[].vector_score", val, &x->vector_score, err);
            break;
        case RES_GRAPH_SCORE:
            rc = get_num("results[].graph_score", val, &x->graph_score, err);
            break;
        case RES_POLICY_SCORE:
            rc = get_num("results[].policy_score", val, &x->policy_score, err);
            break;
        case RES_TITLE:
            rc = get_str("results[].title", val, &x->title, err);
            break;
        case RES_GENRES:
            rc = get_strlist("results[].genres", val, &x->genres, err);
            break;
        case RES_RELS:
            rc = decode_rels(val, x, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
    }
    if (!rc && !x->id)
        rc = hsc_err_set(err, HSC_EINVAL, "results[].id: missing");
    return rc;
}

int hsc_codec_unpack_results(const void *obj, hsc_search_result **out, size_t *n, hsc_err *err)
{
    const msgpack_object *o = obj;
    *out = NULL;
    *n = 0;
    int rc = want("results", o, MSGPACK_OBJECT_ARRAY, "an array", err);
    if (rc)
        return rc;
    if (o->via.array.size > HSC_CODEC_MAX_ARRAY_LEN)
        return hsc_err_set(err, HSC_EINVAL, "results: array of %u entries exceeds %d",
                           o->via.array.size, HSC_CODEC_MAX_ARRAY_LEN);
    hsc_search_result *v = calloc(o->via.array.size ? o->via.array.size : 1, sizeof(*v));
    if (!v)
        return hsc_err_set(err, HSC_ENOMEM, "results: out of memory");
    size_t cnt = 0;
    for (uint32_t i = 0; i < o->via.array.size && !rc; i++)
        rc = decode_result(&o->via.array.ptr[i], &v[cnt++], err);
    *out = v;
    *n = cnt;
    return rc;
}

static int decode_timings(const msgpack_object *o, hsc_search_timings *t, hsc_err *err)
{
    int rc = want("timings_us", o, MSGPACK_OBJECT_MAP, "a map", err);
    static const char *const names[] = {"total", "cache", "vector", "graph", "policy", "rank"};
    int64_t *slots[] = {&t->total, &t->cache, &t->vector, &t->graph, &t->policy, &t->rank};
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        int f;
        if (!(rc = field_of(&o->via.map.ptr[j].key, names, 6, "timings_us.", &seen, &f, err)) &&
            f >= 0)
            rc = get_int("timings_us", &o->via.map.ptr[j].val, 0, INT64_MAX, slots[f], err);
    }
    return rc;
}

enum {
    Y_V,
    Y_CORRELATION_ID,
    Y_STATUS,
    Y_ERROR,
    Y_STRATEGY,
    Y_PLAN,
    Y_CACHE_HIT,
    Y_DEGRADED,
    Y_RESULTS,
    Y_TIMINGS,
    Y_NKEYS
};
static const char *const REPLY_KEYS[Y_NKEYS] = {
    "v",    "correlation_id", "status",   "error",   "strategy",
    "plan", "cache_hit",      "degraded", "results", "timings_us"};

static int decode_reply_error(const msgpack_object *o, hsc_search_reply *r, hsc_err *err)
{
    static const char *const names[] = {"code", "message"};
    int rc = want("error", o, MSGPACK_OBJECT_MAP, "a map", err);
    uint32_t seen = 0;
    for (uint32_t j = 0; !rc && j < o->via.map.size; j++) {
        int f;
        if ((rc = field_of(&o->via.map.ptr[j].key, names, 2, "error.", &seen, &f, err)))
            break;
        if (f == 0)
            rc = get_str("error.code", &o->via.map.ptr[j].val, &r->error_code, err);
        else if (f == 1)
            rc = get_str("error.message", &o->via.map.ptr[j].val, &r->error_message, err);
    }
    return rc;
}

static int decode_reply_fields(const msgpack_object_map *m, hsc_search_reply *r, hsc_err *err)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f, rc = field_of(&m->ptr[i].key, REPLY_KEYS, Y_NKEYS, "", &seen, &f, err);
        if (rc)
            return rc;
        if (o->type == MSGPACK_OBJECT_NIL) {
            seen &= f >= 0 ? ~(1u << f) : ~0u; /* nil is absent: "v": nil is still missing */
            continue;
        }
        switch (f) {
        case Y_V:
            if (!(rc = get_int("v", o, 1, 1000, &n, err)))
                r->v = (int)n;
            break;
        case Y_CORRELATION_ID:
            rc = get_str("correlation_id", o, &r->correlation_id, err);
            break;
        case Y_STATUS: {
            char *s = NULL;
            if (!(rc = get_str("status", o, &s, err))) {
                if (strcmp(s, "ok") && strcmp(s, "error"))
                    rc = hsc_err_set(err, HSC_EINVAL, "status: must be \"ok\" or \"error\"");
                r->ok = !strcmp(s, "ok");
            }
            free(s);
            break;
        }
        case Y_ERROR:
            rc = decode_reply_error(o, r, err);
            break;
        case Y_STRATEGY: {
            char *s = NULL;
            if (!(rc = get_str("strategy", o, &s, err)) && hsc_strategy_parse(s, &r->strategy))
                rc = hsc_err_set(err, HSC_EINVAL, "strategy: unknown \"%.40s\"", s);
            free(s);
            break;
        }
        case Y_PLAN:
            rc = get_str("plan", o, &r->plan, err);
            break;
        case Y_CACHE_HIT:
            rc = get_bool("cache_hit", o, &r->cache_hit, err);
            break;
        case Y_DEGRADED:
            rc = get_strlist("degraded", o, &r->degraded, err);
            break;
        case Y_RESULTS:
            rc = hsc_codec_unpack_results(o, &r->results, &r->nresults, err);
            break;
        case Y_TIMINGS:
            rc = decode_timings(o, &r->timings_us, err);
            break;
        default:
            break; /* unknown keys are ignored */
        }
        if (rc)
            return rc;
    }
    if (!(seen & 1u << Y_V))
        return hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!r->correlation_id)
        return hsc_err_set(err, HSC_EINVAL, "correlation_id: missing");
    if (!(seen & 1u << Y_STATUS))
        return hsc_err_set(err, HSC_EINVAL, "status: missing");
    return HSC_OK;
}

int hsc_codec_decode_search_reply(const void *buf, size_t len, hsc_search_reply *r, hsc_err *err)
{
    memset(r, 0, sizeof(*r));
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "search reply", &res, err);
    if (!rc)
        rc = decode_reply_fields(&res.data.via.map, r, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_search_reply_clear(r);
    return rc;
}

/* ---------- PolicyEvent ---------- */

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

static int check_language(const char *field, const char *l, hsc_err *err)
{
    int ok = strlen(l) == 2;
    for (int i = 0; ok && i < 2; i++)
        ok = (l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z');
    if (!ok)
        return hsc_err_set(err, HSC_EINVAL, "%s: '%.16s' is not a two-letter ISO 639-1 code", field,
                           l);
    return HSC_OK;
}

static int check_id_list(const char *field, const hsc_strlist *l, hsc_err *err)
{
    if (l->n > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu entries is more than %d", field, l->n,
                           HSC_MAX_LIST_LEN);
    for (size_t i = 0; i < l->n; i++) {
        char f[48];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        int rc = check_id(f, l->v[i], err);
        if (rc)
            return rc;
    }
    return HSC_OK;
}

static unsigned lowest_bit(unsigned x)
{
    return x & (~x + 1u);
}

int hsc_codec_validate_policy(const hsc_policy_event *ev, hsc_err *err)
{
    int rc;
    if (ev->v != HSC_SCHEMA_VERSION)
        return hsc_err_set(err, HSC_EINVAL, "v: schema version %d is not supported (expected %d)",
                           ev->v, HSC_SCHEMA_VERSION);
    if ((rc = check_id("user_id", ev->user_id, err)))
        return rc;
    if (ev->version < 0)
        return hsc_err_set(err, HSC_EINVAL, "version: %lld is negative", (long long)ev->version);
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
        if ((rc = check_id_list("ids", &ev->ids, err)))
            return rc;
    } else if (ev->ids.n) {
        return hsc_err_set(err, HSC_EINVAL, "ids: not allowed with op %s", op);
    }
    if ((ev->set & HSC_POLICY_EXCLUDED_GENRES) &&
        (rc = check_tags("excluded_genres", &ev->excluded_genres, err)))
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
            if ((rc = check_language(f, ev->languages.v[i], err)))
                return rc;
        }
    }
    if ((ev->set & HSC_POLICY_BLOCKED_IDS) &&
        (rc = check_id_list("blocked_ids", &ev->blocked_ids, err)))
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
            if ((rc = check_text(f, p->name, HSC_MAX_TAG_LEN, err)))
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
    int rc = want(f, o, MSGPACK_OBJECT_MAP, "a map", err);
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
        if ((rc = field_of(&o->via.map.ptr[k].key, PREF_KEYS, PP_NKEYS, prefix, &seen, &idx, err)))
            break;
        if (idx >= 0)
            snprintf(ff, sizeof(ff), "%s%s", prefix, PREF_KEYS[idx]);
        if (idx == PP_DIM)
            rc = get_str(ff, val, &dim, err);
        else if (idx == PP_NAME)
            rc = get_str(ff, val, &p->name, err);
        else if (idx == PP_WEIGHT)
            rc = get_num(ff, val, &p->weight, err);
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
    int rc = want("clear", o, MSGPACK_OBJECT_ARRAY, "an array of field names", err);
    if (rc)
        return rc;
    if (o->via.array.size > POLICY_NFIELDS)
        return hsc_err_set(err, HSC_EINVAL, "clear: %u entries is more than %d fields",
                           o->via.array.size, POLICY_NFIELDS);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR)
            return hsc_err_set(err, HSC_EINVAL, "clear[%u]: expected a string, got %s", i,
                               type_name(e->type));
        int f = -1;
        for (int k = 0; k < POLICY_NFIELDS && f < 0; k++)
            if (key_is(e, POLICY_FIELDS[k]))
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

static int decode_policy_fields(const msgpack_object_map *m, hsc_policy_event *ev, hsc_err *err)
{
    uint32_t seen = 0;
    char *op = NULL;
    int rc = HSC_OK;
    for (uint32_t i = 0; !rc && i < m->size; i++) {
        const msgpack_object *o = &m->ptr[i].val;
        int64_t n;
        int f;
        if ((rc = field_of(&m->ptr[i].key, POLICY_KEYS, PO_NKEYS, "", &seen, &f, err)))
            break;
        if (f >= 0 && o->type == MSGPACK_OBJECT_NIL && f != PO_V && f != PO_USER_ID &&
            f != PO_VERSION && f != PO_OP) {
            seen &= ~(1u << f); /* nil for an optional key means absent */
            continue;
        }
        switch (f) {
        case PO_V:
            if (!(rc = get_int("v", o, 0, 1000, &n, err)))
                ev->v = (int)n;
            break;
        case PO_USER_ID:
            rc = get_str("user_id", o, &ev->user_id, err);
            break;
        case PO_VERSION:
            rc = get_int("version", o, 0, INT64_MAX, &ev->version, err);
            break;
        case PO_OP:
            rc = get_str("op", o, &op, err);
            break;
        case PO_EXCLUDED_GENRES:
            rc = get_strlist("excluded_genres", o, &ev->excluded_genres, err);
            ev->set |= HSC_POLICY_EXCLUDED_GENRES;
            break;
        case PO_MAX_MATURITY:
            if (!(rc = get_int("max_maturity", o, 0, 21, &n, err)))
                ev->max_maturity = (int32_t)n;
            ev->set |= HSC_POLICY_MAX_MATURITY;
            break;
        case PO_LANGUAGES:
            rc = get_strlist("languages", o, &ev->languages, err);
            ev->set |= HSC_POLICY_LANGUAGES;
            break;
        case PO_BLOCKED_IDS:
            rc = get_strlist("blocked_ids", o, &ev->blocked_ids, err);
            ev->set |= HSC_POLICY_BLOCKED_IDS;
            break;
        case PO_PREFS:
            ev->set |= HSC_POLICY_PREFS;
            if ((rc = want("prefs", o, MSGPACK_OBJECT_ARRAY, "an array of maps", err)))
                break;
            if (o->via.array.size > HSC_MAX_LIST_LEN) {
                rc = hsc_err_set(err, HSC_EINVAL, "prefs: %u entries is more than %d",
                                 o->via.array.size, HSC_MAX_LIST_LEN);
                break;
            }
            ev->prefs = calloc(o->via.array.size + 1, sizeof(*ev->prefs));
            if (!ev->prefs) {
                rc = hsc_err_set(err, HSC_ENOMEM, "prefs: out of memory");
                break;
            }
            for (uint32_t k = 0; !rc && k < o->via.array.size; k++) {
                ev->nprefs = k + 1;
                rc = decode_pref(&o->via.array.ptr[k], k, &ev->prefs[k], err);
            }
            break;
        case PO_IDS:
            rc = get_strlist("ids", o, &ev->ids, err);
            break;
        case PO_CLEAR:
            rc = decode_clear(o, &ev->clear, err);
            break;
        case PO_TS:
            rc = get_int("ts", o, 0, INT64_MAX, &ev->ts, err);
            ev->has_ts = rc == HSC_OK;
            break;
        default:
            break; /* unknown keys are ignored */
        }
    }
    if (!rc && !(seen & 1u << PO_V))
        rc = hsc_err_set(err, HSC_EINVAL, "v: missing");
    if (!rc && !ev->user_id)
        rc = hsc_err_set(err, HSC_EINVAL, "user_id: missing");
    if (!rc && !(seen & 1u << PO_VERSION))
        rc = hsc_err_set(err, HSC_EINVAL, "version: missing");
    if (!rc && !op)
        rc = hsc_err_set(err, HSC_EINVAL, "op: missing");
    if (!rc) {
        int k = 0;
        while (k < 4 && strcmp(op, POLICY_OPS[k]))
            k++;
        if (k == 4)
            rc =
                hsc_err_set(err, HSC_EINVAL, "op: '%.32s' is not set, block, unblock or erase", op);
        else
            ev->op = (hsc_policy_op)k;
    }
    free(op);
    return rc ? rc : hsc_codec_validate_policy(ev, err);
}

int hsc_codec_decode_policy(const void *buf, size_t len, hsc_policy_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    msgpack_unpacked res;
    int rc = unpack_map(buf, len, "policy", &res, err);
    if (!rc)
        rc = decode_policy_fields(&res.data.via.map, ev, err);
    msgpack_unpacked_destroy(&res);
    if (rc)
        hsc_policy_event_clear(ev);
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
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    pack_int(&pk, "v", ev->v);
    pack_str(&pk, "user_id", ev->user_id);
    pack_int(&pk, "version", ev->version);
    pack_str(&pk, "op", hsc_policy_op_name(ev->op));
    if (ev->set & HSC_POLICY_EXCLUDED_GENRES)
        pack_list(&pk, "excluded_genres", &ev->excluded_genres);
    if (ev->set & HSC_POLICY_MAX_MATURITY)
        pack_int(&pk, "max_maturity", ev->max_maturity);
    if (ev->set & HSC_POLICY_LANGUAGES)
        pack_list(&pk, "languages", &ev->languages);
    if (ev->set & HSC_POLICY_BLOCKED_IDS)
        pack_list(&pk, "blocked_ids", &ev->blocked_ids);
    if (ev->set & HSC_POLICY_PREFS) {
        pack_key(&pk, "prefs");
        msgpack_pack_array(&pk, ev->nprefs);
        for (size_t i = 0; i < ev->nprefs; i++) {
            msgpack_pack_map(&pk, 3);
            pack_str(&pk, "dim", ev->prefs[i].theme ? "theme" : "genre");
            pack_str(&pk, "name", ev->prefs[i].name);
            pack_double(&pk, "weight", ev->prefs[i].weight);
        }
    }
    if (ev->ids.n)
        pack_list(&pk, "ids", &ev->ids);
    if (ev->clear) {
        pack_key(&pk, "clear");
        int nc = 0;
        for (int i = 0; i < POLICY_NFIELDS; i++)
            nc += !!(ev->clear & 1u << i);
        msgpack_pack_array(&pk, (size_t)nc);
        for (int i = 0; i < POLICY_NFIELDS; i++)
            if (ev->clear & 1u << i) {
                size_t l = strlen(POLICY_FIELDS[i]);
                msgpack_pack_str(&pk, l);
                msgpack_pack_str_body(&pk, POLICY_FIELDS[i], l);
            }
    }
    if (ev->has_ts)
        pack_int(&pk, "ts", ev->ts);
    return finish(&sb, out, len, err);
}
