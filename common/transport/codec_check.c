/*
 * Checks the message contract's shared rules (text lengths and UTF-8, ids,
 * tag lists, language codes) for the MessagePack and JSON paths alike, and
 * owns the string list type the messages are built from.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

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
int codec_one_of(const char *s, const char **set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

int codec_check_text(const char *field, const char *s, size_t max, hsc_err *err)
{
    size_t n = strlen(s);
    if (n > max)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu bytes is longer than %zu", field, n, max);
    if (!hsc_utf8_valid(s, n))
        return hsc_err_set(err, HSC_EINVAL, "%s: not valid UTF-8", field);
    return HSC_OK;
}

int codec_check_id(const char *field, const char *s, hsc_err *err)
{
    if (!s)
        return hsc_err_set(err, HSC_EINVAL, "%s: missing", field);
    if (!hsc_id_valid(s, strlen(s)))
        return hsc_err_set(err, HSC_EINVAL,
                           "%s: '%.40s%s' is not 1-128 characters of [A-Za-z0-9._:-]", field, s,
                           strlen(s) > 40 ? "..." : "");
    return HSC_OK;
}

/* Checks each entry of l (at most HSC_MAX_LIST_LEN) with one, naming it field[i]. */
static int check_each(const char *field, const hsc_strlist *l,
                      int (*one)(const char *f, const char *s, hsc_err *err), hsc_err *err)
{
    if (l->n > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu entries is more than %d", field, l->n,
                           HSC_MAX_LIST_LEN);
    for (size_t i = 0; i < l->n; i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        int rc = one(f, l->v[i], err);
        if (rc)
            return rc;
    }
    return HSC_OK;
}

static int check_tag(const char *field, const char *s, hsc_err *err)
{
    return codec_check_text(field, s, HSC_MAX_TAG_LEN, err);
}

int codec_check_tags(const char *field, const hsc_strlist *l, hsc_err *err)
{
    return check_each(field, l, check_tag, err);
}

int codec_check_version(int v, hsc_err *err)
{
    if (v != HSC_SCHEMA_VERSION)
        return hsc_err_set(err, HSC_EINVAL, "v: schema version %d is not supported (expected %d)",
                           v, HSC_SCHEMA_VERSION);
    return HSC_OK;
}

int codec_check_versioned(int v, const char *id_field, const char *id, int64_t version,
                          hsc_err *err)
{
    int rc;
    if ((rc = codec_check_version(v, err)) || (rc = codec_check_id(id_field, id, err)))
        return rc;
    if (version < 0)
        return hsc_err_set(err, HSC_EINVAL, "version: %lld is negative", (long long)version);
    return HSC_OK;
}

int codec_check_ids(const char *field, const hsc_strlist *l, hsc_err *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (!hsc_id_valid(l->v[i], strlen(l->v[i])))
            return hsc_err_set(err, HSC_EINVAL, "%s[%zu]: must be 1-%d of [A-Za-z0-9._:-]", field,
                               i, HSC_MAX_ID_LEN);
    return HSC_OK;
}
int codec_check_language(const char *field, const char *l, hsc_err *err)
{
    int ok = strlen(l) == 2;
    for (int i = 0; ok && i < 2; i++)
        ok = (l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z');
    if (!ok)
        return hsc_err_set(err, HSC_EINVAL, "%s: '%.16s' is not a two-letter ISO 639-1 code", field,
                           l);
    return HSC_OK;
}

int codec_check_id_list(const char *field, const hsc_strlist *l, hsc_err *err)
{
    return check_each(field, l, codec_check_id, err);
}
