/*
 * Checks a MessagePack buffer against every bound of codec.h in one linear
 * pass over its bytes, before msgpack-c allocates anything.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

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

/* A map or array header of n entries (what: "map"), at most max, at depth. */
static int scan_container(struct scan *s, const char *field, const char *what, uint64_t n, int max,
                          int depth)
{
    if (n > (uint64_t)max)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: %s of %llu entries exceeds %d", field, what,
                           (unsigned long long)n, max);
    if (depth >= HSC_CODEC_MAX_DEPTH)
        return hsc_err_set(s->err, HSC_EINVAL, "%s: nested deeper than %d levels", field,
                           HSC_CODEC_MAX_DEPTH);
    return HSC_OK;
}

static int scan_map(struct scan *s, const char *field, const char *path, uint64_t n, int depth)
{
    int rc = scan_container(s, field, "map", n, HSC_CODEC_MAX_MAP_ENTRIES, depth);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *key = NULL;
        size_t klen = 0;
        int is_str;
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
    int rc = scan_container(s, field, "array", n, HSC_CODEC_MAX_ARRAY_LEN, depth);
    if (rc)
        return rc;
    char elem[160];
    snprintf(elem, sizeof(elem), "%s[]", field);
    for (uint64_t i = 0; i < n; i++) {
        rc = scan_value(s, elem, elem, depth + 1);
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
