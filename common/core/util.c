/* Small shared helpers: clocks, parsing, buffers, validation, masking. */
#include "util.h"

#include <math.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hsc/error.h"

int64_t hsc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hsc_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int hsc_parse_ll(const char *s, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Appends n bytes of p to out[*j] while room remains. */
static void put_n(char *out, size_t cap, size_t *j, const char *p, size_t n)
{
    for (size_t i = 0; i < n && *j + 1 < cap; i++)
        out[(*j)++] = p[i];
}

void hsc_mask_secrets(const char *s, char *out, size_t cap)
{
    static const char *const KEYS[] = {
        "password=", "passwd=", "token=", "api_key=", "apikey=", "secret=", "bearer ", NULL};
    if (cap == 0)
        return;
    size_t j = 0;
    const char *p = s;
    while (*p && j + 1 < cap) {
        if (!strncmp(p, "://", 3)) {
            /* scheme://user:password@host -> scheme://user:****@host, for every URL */
            const char *u = p + 3;
            size_t ulen = strcspn(u, "/ @\"'?#");
            const char *colon = u[ulen] == '@' ? memchr(u, ':', ulen) : NULL;
            if (colon) {
                put_n(out, cap, &j, p, (size_t)(colon + 1 - p));
                put_n(out, cap, &j, "****@", 5);
                p = u + ulen + 1;
                continue;
            }
        }
        int masked = 0;
        for (const char *const *k = KEYS; *k && !masked; k++) {
            size_t kl = strlen(*k);
            if (strncasecmp(p, *k, kl))
                continue;
            put_n(out, cap, &j, p, kl);
            put_n(out, cap, &j, "****", 4);
            p += kl;
            while (*p && !strchr(" &;,\"'\n", *p))
                p++;
            masked = 1;
        }
        if (!masked)
            out[j++] = *p++;
    }
    out[j] = '\0';
}

bool hsc_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool hsc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        /* reject overlong forms, surrogates and values past U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += n + 1;
    }
    return true;
}

void *hsc_grow(void *v, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc < *cap || (elem && nc > SIZE_MAX / elem))
        return NULL;
    void *nv = realloc(v, nc * elem);
    if (nv)
        *cap = nc;
    return nv;
}

int hsc_buf_append(hsc_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return HSC_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return HSC_OK;
}

int hsc_buf_printf(hsc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return HSC_EIO;
    }
    if (hsc_buf_append(b, NULL, 0) != 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            va_end(ap2);
            return HSC_ENOMEM;
        }
        b->data = d;
        b->cap = cap;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return HSC_OK;
}

void hsc_buf_free(hsc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *hsc_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t hsc_fmt_float(float f, char *out)
{
    char *p = out;
    double x = (double)f;
    if (x == 0.0) {
        memcpy(out, "0", 2);
        return 1;
    }
    if (x < 0) {
        *p++ = '-';
        x = -x;
    }
    /* x = m * 10^(e - 8) with m a 9-digit integer. The double product is exact to
     * ~1e-16 relative, far inside the 6e-8 gap between neighbouring float32s. */
    int e = (int)floor(log10(x));
    double m = round(x * pow(10.0, 8 - e));
    if (m >= 1e9) { /* log10 rounded down at a power of ten */
        e++;
        m = round(x * pow(10.0, 8 - e));
    } else if (m < 1e8) {
        e--;
        m = round(x * pow(10.0, 8 - e));
    }
    char digits[16];
    unsigned long long im = (unsigned long long)m;
    for (int i = 8; i >= 0; i--) {
        digits[i] = (char)('0' + im % 10);
        im /= 10;
    }
    int nd = 9;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (e >= 0 && e < 9) { /* plain: 123.456 */
        for (int i = 0; i <= e; i++)
            *p++ = i < nd ? digits[i] : '0';
        if (nd > e + 1) {
            *p++ = '.';
            for (int i = e + 1; i < nd; i++)
                *p++ = digits[i];
        }
    } else if (e < 0 && e >= -5) { /* plain: 0.000123 */
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--)
            *p++ = '0';
        for (int i = 0; i < nd; i++)
            *p++ = digits[i];
    } else { /* scientific: 1.23e-07 */
        *p++ = digits[0];
        if (nd > 1) {
            *p++ = '.';
            for (int i = 1; i < nd; i++)
                *p++ = digits[i];
        }
        p += sprintf(p, "e%d", e);
    }
    *p = '\0';
    return (size_t)(p - out);
}

int hsc_buf_json_str(hsc_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (hsc_buf_append(b, "\"", 1))
        return HSC_ENOMEM;
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (hsc_buf_append(b, run, (size_t)(s - run)))
            return HSC_ENOMEM;
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (hsc_buf_append(b, esc, n))
            return HSC_ENOMEM;
        run = s + 1;
    }
    if (hsc_buf_append(b, run, (size_t)(s - run)) || hsc_buf_append(b, "\"", 1))
        return HSC_ENOMEM;
    return HSC_OK;
}

char *hsc_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    hsc_buf b = {0};
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = hsc_buf_append(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (rc || bad || hsc_buf_append(&b, "", 1)) {
        hsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *hsc_strcat2(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}
