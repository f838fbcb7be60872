/*
 * Milvus filter expressions from typed values: names are checked to be
 * identifiers and strings are quoted and escaped here, so no raw input is
 * ever spliced into an expression.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milvus_internal.h"

int hsc_milvus__name_ok(const char *f)
{
    if (!f || !(isalpha((unsigned char)*f) || *f == '_'))
        return 0;
    for (; *f; f++)
        if (!(isalnum((unsigned char)*f) || *f == '_'))
            return 0;
    return 1;
}

static void fappend(hsc_milvus_filter *f, const char *s, size_t n)
{
    if (f->failed)
        return;
    char *p = realloc(f->expr, f->len + n + 1);
    if (!p) {
        f->failed = 1;
        return;
    }
    memcpy(p + f->len, s, n);
    f->len += n;
    p[f->len] = '\0';
    f->expr = p;
}

static void fputs_(hsc_milvus_filter *f, const char *s)
{
    fappend(f, s, strlen(s));
}

/* A string literal: double quotes, with backslash and quote escaped. */
static void fquote(hsc_milvus_filter *f, const char *s)
{
    fputs_(f, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fappend(f, "\\", 1);
        if ((unsigned char)*s < 0x20) { /* control characters have no place in a literal */
            f->failed = 1;
            return;
        }
        fappend(f, s, 1);
    }
    fputs_(f, "\"");
}

static int fbegin(hsc_milvus_filter *f, const char *field)
{
    if (!hsc_milvus__name_ok(field)) {
        f->failed = 1;
        return 0;
    }
    if (f->len)
        fputs_(f, " and ");
    return !f->failed;
}

static void flist(hsc_milvus_filter *f, const char *const *vals, size_t n)
{
    fputs_(f, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs_(f, ", ");
        fquote(f, vals[i]);
    }
    fputs_(f, "]");
}

void hsc_milvus_filter_in(hsc_milvus_filter *f, const char *field, const char *const *vals,
                          size_t n)
{
    if (!fbegin(f, field))
        return;
    fputs_(f, field);
    fputs_(f, " in ");
    flist(f, vals, n);
}

void hsc_milvus_filter_int(hsc_milvus_filter *f, const char *field, const char *op, long long value)
{
    static const char *const OPS[] = {"==", "!=", "<", "<=", ">", ">=", NULL};
    int known = 0;
    for (int i = 0; OPS[i]; i++)
        known |= !strcmp(op, OPS[i]);
    if (!known) {
        f->failed = 1;
        return;
    }
    if (!fbegin(f, field))
        return;
    char buf[160];
    snprintf(buf, sizeof(buf), "%s %s %lld", field, op, value);
    fputs_(f, buf);
}

void hsc_milvus_filter_str(hsc_milvus_filter *f, const char *field, const char *value, int negate)
{
    if (!fbegin(f, field))
        return;
    fputs_(f, field);
    fputs_(f, negate ? " != " : " == ");
    fquote(f, value);
}

void hsc_milvus_filter_contains_any(hsc_milvus_filter *f, const char *field,
                                    const char *const *vals, size_t n, int negate)
{
    if (!fbegin(f, field))
        return;
    fputs_(f, negate ? "not array_contains_any(" : "array_contains_any(");
    fputs_(f, field);
    fputs_(f, ", ");
    flist(f, vals, n);
    fputs_(f, ")");
}

const char *hsc_milvus_filter_str_of(const hsc_milvus_filter *f)
{
    if (f->failed)
        return NULL;
    return f->expr ? f->expr : "";
}

void hsc_milvus_filter_free(hsc_milvus_filter *f)
{
    free(f->expr);
    memset(f, 0, sizeof(*f));
}

int hsc_milvus__id_filter(hsc_milvus_dialect d, const char *const *ids, size_t n, const char *what,
                          char **out, hsc_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        for (const char *p = ids[i]; *p; p++)
            if ((unsigned char)*p < 0x20) /* what fquote refuses */
                return hsc_err_set(err, HSC_EINVAL,
                                   "milvus %s: ids[%zu]: a control character cannot be written "
                                   "in a filter",
                                   what, i);
    hsc_milvus_filter f = {0};
    hsc_milvus_filter_in(&f, MILVUS_ID_FIELD(d), ids, n);
    if (f.failed) {
        hsc_milvus_filter_free(&f);
        return hsc_err_set(err, HSC_ENOMEM, "milvus %s: out of memory building the id filter",
                           what);
    }
    *out = f.expr;
    return HSC_OK;
}
