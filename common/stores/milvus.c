/*
 * The Milvus REST client. Every operation is one or two HTTP calls; the
 * bodies are built and parsed by the pure functions at the top, and the
 * asynchronous plumbing at the bottom only sequences them.
 *
 * Floats are written with 9 significant digits, the shortest precision that
 * brings every float32 back bit for bit after a trip through decimal.
 */
#include "milvus.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* v1 servers keep the content id in this dynamic field (their key is automatic). */
#define V1_ID_FIELD "content_id"
#define V1_PK_FIELD "pk"
#define VEC_FIELD "embedding"

void hsc_milvus_result_clear(hsc_milvus_result *r)
{
    for (size_t i = 0; i < r->nents; i++)
        free(r->ents[i].vec);
    free(r->ents);
    free(r->hits);
    memset(r, 0, sizeof(*r));
}

/* ---------------- filters ---------------- */

static int field_ok(const char *f)
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
    if (!field_ok(field)) {
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

static char *id_filter(hsc_milvus_dialect d, const char *const *ids, size_t n)
{
    hsc_milvus_filter f = {0};
    hsc_milvus_filter_in(&f, d == HSC_MILVUS_V1 ? V1_ID_FIELD : "id", ids, n);
    if (f.failed) {
        hsc_milvus_filter_free(&f);
        return NULL;
    }
    return f.expr;
}

/* ---------------- request builders ---------------- */

static json_t *jvec(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t i = 0; i < dim; i++)
        json_array_append_new(a, json_real((double)v[i]));
    return a;
}

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_FLAGS);
    json_decref(o);
    return s;
}

static json_t *base(const char *collection)
{
    json_t *o = json_object();
    json_object_set_new(o, "collectionName", json_string(collection));
    return o;
}

/* Appends a string literal (its length known at compile time). */
#define LIT(b, s) hsc_buf_append((b), (s), sizeof(s) - 1)

/* One entity written straight into the body: jansson's generic float formatting
 * costs more than the whole server call for a batch of 1000 x 384. */
static int put_entity(hsc_buf *b, hsc_milvus_dialect d, const hsc_content_event *ev)
{
    int rc = hsc_buf_printf(b, "{\"%s\":", d == HSC_MILVUS_V1 ? V1_ID_FIELD : "id");
    rc |= hsc_buf_json_str(b, ev->id);
    rc |= LIT(b, ",\"" VEC_FIELD "\":[");
    char num[32];
    for (size_t i = 0; i < ev->dim; i++) {
        num[0] = ',';
        size_t n = hsc_fmt_float(ev->embedding[i], num + 1);
        rc |= i ? hsc_buf_append(b, num, n + 1) : hsc_buf_append(b, num + 1, n);
    }
    rc |= LIT(b, "],\"genres\":[");
    for (size_t i = 0; i < ev->genres.n; i++) {
        if (i)
            rc |= LIT(b, ",");
        rc |= hsc_buf_json_str(b, ev->genres.v[i]);
    }
    rc |= LIT(b, "],\"language\":");
    rc |= hsc_buf_json_str(b, ev->language ? ev->language : "");
    rc |= hsc_buf_printf(b, ",\"year\":%d,\"maturity\":%d}",
                         (ev->has & HSC_HAS_YEAR) ? ev->year : HSC_MILVUS_UNKNOWN_YEAR,
                         (ev->has & HSC_HAS_MATURITY) ? ev->maturity : HSC_MILVUS_UNKNOWN_MATURITY);
    return rc ? HSC_ENOMEM : HSC_OK;
}

char *hsc_milvus_build_upsert(hsc_milvus_dialect d, const char *collection,
                              const hsc_content_event *const *evs, size_t n)
{
    hsc_buf b = {0};
    int rc = LIT(&b, "{\"collectionName\":");
    rc |= hsc_buf_json_str(&b, collection);
    rc |= LIT(&b, ",\"data\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc |= LIT(&b, ",");
        rc |= put_entity(&b, d, evs[i]);
    }
    rc |= hsc_buf_append(&b, "]}", 3); /* with its NUL: the body is a C string */
    if (rc) {
        hsc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *hsc_milvus_build_delete(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                              size_t n)
{
    char *filter = id_filter(d, ids, n);
    if (!filter)
        return NULL;
    json_t *o = base(collection);
    json_object_set_new(o, "filter", json_string(filter));
    free(filter);
    return dump(o);
}

int hsc_milvus_search_limit(hsc_milvus_dialect d, int k, int ef)
{
    if (d != HSC_MILVUS_V1 || ef <= k)
        return k;
    return ef > HSC_MILVUS_MAX_LIMIT ? (k > HSC_MILVUS_MAX_LIMIT ? k : HSC_MILVUS_MAX_LIMIT) : ef;
}

char *hsc_milvus_build_search(hsc_milvus_dialect d, const char *collection, const float *vec,
                              size_t dim, int k, const char *filter, int ef)
{
    json_t *o = base(collection);
    json_t *params = json_object();
    if (ef <= 0)
        ef = 64;
    json_object_set_new(params, "ef", json_integer(ef));
    /* v1 on Milvus 2.3 drops params.ef and searches HNSW with ef = max(limit, 16), so the
       beam is asked for through the limit; the client keeps the first k. */
    json_object_set_new(o, "limit",
                        json_integer(d == HSC_MILVUS_V1 ? hsc_milvus_search_limit(d, k, ef) : k));
    if (filter && *filter)
        json_object_set_new(o, "filter", json_string(filter));
    json_t *out = json_array();
    if (d == HSC_MILVUS_V1) {
        json_object_set_new(o, "vector", jvec(vec, dim));
        json_array_append_new(out, json_string(V1_ID_FIELD));
        json_object_set_new(o, "params", params);
    } else {
        json_t *data = json_array();
        json_array_append_new(data, jvec(vec, dim));
        json_object_set_new(o, "data", data);
        json_object_set_new(o, "annsField", json_string(VEC_FIELD));
        json_array_append_new(out, json_string("id"));
        json_t *sp = json_object();
        json_object_set_new(sp, "metricType", json_string("COSINE"));
        json_object_set_new(sp, "params", params);
        json_object_set_new(o, "searchParams", sp);
    }
    json_object_set_new(o, "outputFields", out);
    return dump(o);
}

char *hsc_milvus_build_get(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                           size_t n, int with_vectors)
{
    json_t *o = base(collection);
    json_t *out = json_array();
    json_array_append_new(out, json_string(d == HSC_MILVUS_V1 ? V1_ID_FIELD : "id"));
    if (with_vectors)
        json_array_append_new(out, json_string(VEC_FIELD));
    json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        char *filter = id_filter(d, ids, n);
        if (!filter) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "filter", json_string(filter));
        json_object_set_new(o, "limit", json_integer((json_int_t)(n ? n : 1)));
        free(filter);
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(ids[i]));
        json_object_set_new(o, "id", a);
    }
    return dump(o);
}

char *hsc_milvus_build_count(hsc_milvus_dialect d, const char *collection, const char *filter)
{
    json_t *o = base(collection);
    json_t *out = json_array();
    json_array_append_new(out, json_string("count(*)"));
    json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        /* v1 wants a filter, and refuses count(*) with its default page size. */
        json_object_set_new(o, "filter",
                            json_string(filter && *filter ? filter : V1_PK_FIELD " > 0"));
        json_object_set_new(o, "limit", json_integer(0));
    } else {
        json_object_set_new(o, "filter", json_string(filter ? filter : ""));
        json_object_set_new(o, "consistencyLevel", json_string("Strong"));
    }
    return dump(o);
}

char *hsc_milvus_build_create(hsc_milvus_dialect d, const char *collection, const char *schema_json,
                              int dim, hsc_err *err)
{
    json_error_t je;
    json_t *tpl = json_loads(schema_json, 0, &je);
    if (!tpl || !json_is_object(tpl)) {
        json_decref(tpl);
        hsc_err_set(err, HSC_ECONFIG, "milvus schema: line %d: %s", je.line, je.text);
        return NULL;
    }
    json_t *idx = json_array_get(json_object_get(tpl, "indexParams"), 0);
    const char *metric = json_string_value(json_object_get(idx, "metricType"));
    if (!metric) {
        json_decref(tpl);
        hsc_err_set(err, HSC_ECONFIG, "milvus schema: indexParams[0].metricType: missing");
        return NULL;
    }
    json_t *o = base(collection);
    if (d == HSC_MILVUS_V1) {
        json_object_set_new(o, "dimension", json_integer(dim));
        json_object_set_new(o, "metricType", json_string(metric));
        json_object_set_new(o, "primaryField", json_string(V1_PK_FIELD));
        json_object_set_new(o, "vectorField", json_string(VEC_FIELD));
        json_decref(tpl);
        return dump(o);
    }
    json_t *schema = json_object_get(tpl, "schema");
    json_t *fields = json_object_get(schema, "fields");
    int found = 0;
    size_t i;
    json_t *fd;
    json_array_foreach (fields, i, fd) {
        const char *t = json_string_value(json_object_get(fd, "dataType"));
        if (t && !strcmp(t, "FloatVector")) {
            json_t *p = json_object_get(fd, "elementTypeParams");
            if (!json_is_object(p)) {
                p = json_object();
                json_object_set_new(fd, "elementTypeParams", p);
            }
            json_object_set_new(p, "dim", json_integer(dim));
            found = 1;
        }
    }
    if (!found) {
        json_decref(tpl);
        json_decref(o);
        hsc_err_set(err, HSC_ECONFIG, "milvus schema: schema.fields: no FloatVector field");
        return NULL;
    }
    json_object_set(o, "schema", schema);
    json_object_set(o, "indexParams", json_object_get(tpl, "indexParams"));
    json_decref(tpl);
    return dump(o);
}

/* ---------------- response parsers ---------------- */

/* Codes that mean "this request is wrong", not "the server is unwell". */
static int code_is_input_error(long long code)
{
    return (code >= 1100 && code < 1200) || /* parameter invalid/missing (v2) */
           (code >= 1800 && code < 1900);   /* request errors of the v1 REST layer */
}

static json_t *load(const char *body, size_t len, hsc_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        char head[80];
        snprintf(head, sizeof(head), "%.*s", (int)(len < 60 ? len : 60), body ? body : "");
        hsc_err_set(err, HSC_ETRANSIENT, "milvus: response is not a JSON object (%s): %s", je.text,
                    head);
        return NULL;
    }
    return o;
}

int hsc_milvus_check(hsc_milvus_dialect d, long status, const char *body, size_t len, hsc_err *err)
{
    if (status < 200 || status >= 300) {
        char head[200];
        snprintf(head, sizeof(head), "%.*s", (int)(len < 180 ? len : 180), body ? body : "");
        return hsc_err_set(err,
                           (status >= 400 && status < 500 && status != 408 && status != 429)
                               ? HSC_EINVAL
                               : HSC_ETRANSIENT,
                           "milvus: HTTP %ld: %s", status, head);
    }
    json_t *o = load(body, len, err);
    if (!o)
        return err->code;
    json_t *c = json_object_get(o, "code");
    long long code = json_is_integer(c) ? json_integer_value(c) : -1;
    /* v1 says 200 for success, v2 says 0; accept either so a proxy in between cannot confuse us. */
    if (code == 0 || code == 200 || (d == HSC_MILVUS_V2 && !c)) {
        json_decref(o);
        return HSC_OK;
    }
    const char *msg = json_string_value(json_object_get(o, "message"));
    hsc_err_set(err, code_is_input_error(code) ? HSC_EINVAL : HSC_ETRANSIENT,
                "milvus: code %lld: %s", code, msg ? msg : "(no message)");
    json_decref(o);
    return err->code;
}

/* The "data" array of a response; a nested array (one per query vector) is unwrapped. */
static json_t *data_array(json_t *o, hsc_err *err)
{
    json_t *data = json_object_get(o, "data");
    if (json_is_array(data) && json_array_size(data) && json_is_array(json_array_get(data, 0)))
        data = json_array_get(data, 0);
    if (!json_is_array(data)) {
        hsc_err_set(err, HSC_ETRANSIENT, "milvus: response has no data array");
        return NULL;
    }
    return data;
}

/* Copies an id that may arrive as a string or a number. */
static int copy_id(json_t *v, char *out, hsc_err *err)
{
    if (json_is_string(v) && json_string_length(v) <= HSC_MAX_ID_LEN) {
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        return HSC_OK;
    }
    if (json_is_integer(v)) {
        snprintf(out, HSC_MAX_ID_LEN + 1, "%lld", (long long)json_integer_value(v));
        return HSC_OK;
    }
    return hsc_err_set(err, HSC_ETRANSIENT, "milvus: an entity has no usable id");
}

int hsc_milvus_parse_hits(hsc_milvus_dialect d, const char *body, size_t len, hsc_milvus_hit **hits,
                          size_t *n, hsc_err *err)
{
    *hits = NULL;
    *n = 0;
    json_t *o = load(body, len, err);
    if (!o)
        return err->code;
    json_t *data = data_array(o, err);
    int rc = data ? HSC_OK : err->code;
    size_t cnt = data ? json_array_size(data) : 0;
    hsc_milvus_hit *h = cnt ? calloc(cnt, sizeof(*h)) : NULL;
    if (cnt && !h)
        rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < cnt; i++) {
        json_t *e = json_array_get(data, i);
        rc = copy_id(json_object_get(e, d == HSC_MILVUS_V1 ? V1_ID_FIELD : "id"), h[i].id, err);
        json_t *dist = json_object_get(e, "distance");
        if (!rc && !json_is_number(dist))
            rc = hsc_err_set(err, HSC_ETRANSIENT, "milvus: hit %zu has no distance", i);
        if (!rc)
            h[i].score = (float)json_number_value(dist);
    }
    json_decref(o);
    if (rc) {
        free(h);
        return rc;
    }
    *hits = h;
    *n = cnt;
    return HSC_OK;
}

int hsc_milvus_parse_entities(hsc_milvus_dialect d, const char *body, size_t len,
                              hsc_milvus_entity **ents, size_t *n, hsc_err *err)
{
    *ents = NULL;
    *n = 0;
    json_t *o = load(body, len, err);
    if (!o)
        return err->code;
    json_t *data = data_array(o, err);
    int rc = data ? HSC_OK : err->code;
    size_t cnt = data ? json_array_size(data) : 0;
    hsc_milvus_entity *es = cnt ? calloc(cnt, sizeof(*es)) : NULL;
    if (cnt && !es)
        rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < cnt; i++) {
        json_t *e = json_array_get(data, i);
        rc = copy_id(json_object_get(e, d == HSC_MILVUS_V1 ? V1_ID_FIELD : "id"), es[i].id, err);
        json_t *v = json_object_get(e, VEC_FIELD);
        if (rc || !json_is_array(v))
            continue;
        es[i].dim = json_array_size(v);
        es[i].vec = malloc((es[i].dim ? es[i].dim : 1) * sizeof(float));
        if (!es[i].vec) {
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < es[i].dim; k++)
            es[i].vec[k] = (float)json_number_value(json_array_get(v, k));
    }
    json_decref(o);
    if (rc) {
        for (size_t i = 0; i < cnt && es; i++)
            free(es[i].vec);
        free(es);
        return rc;
    }
    *ents = es;
    *n = cnt;
    return HSC_OK;
}

int hsc_milvus_parse_count(const char *body, size_t len, int64_t *count, hsc_err *err)
{
    json_t *o = load(body, len, err);
    if (!o)
        return err->code;
    json_t *data = data_array(o, err);
    json_t *c = data ? json_object_get(json_array_get(data, 0), "count(*)") : NULL;
    long long v = -1;
    if (json_is_integer(c))
        v = json_integer_value(c);
    else if (json_is_string(c) && hsc_parse_ll(json_string_value(c), &v))
        v = -1;
    json_decref(o);
    if (v < 0)
        return hsc_err_set(err, HSC_ETRANSIENT, "milvus: count response has no count(*)");
    *count = v;
    return HSC_OK;
}

int hsc_milvus_parse_dim(hsc_milvus_dialect d, const char *body, size_t len, int *dim, hsc_err *err)
{
    *dim = 0;
    json_t *o = load(body, len, err);
    if (!o)
        return err->code;
    size_t i;
    json_t *f;
    json_array_foreach (json_object_get(json_object_get(o, "data"), "fields"), i, f) {
        const char *t = json_string_value(json_object_get(f, "type"));
        if (!t || strncmp(t, "FloatVector", 11))
            continue;
        if (t[11] == '(') { /* v1: "FloatVector(384)" */
            *dim = atoi(t + 12);
            break;
        }
        size_t k;
        json_t *p;
        json_array_foreach (json_object_get(f, "params"), k, p) { /* v2: [{key, value}] */
            const char *key = json_string_value(json_object_get(p, "key"));
            json_t *v = json_object_get(p, "value");
            if (key && !strcmp(key, "dim"))
                *dim = json_is_string(v) ? atoi(json_string_value(v)) : (int)json_integer_value(v);
        }
        break;
    }
    (void)d;
    json_decref(o);
    return HSC_OK;
}

/* ---------------- the client ---------------- */

struct hsc_milvus {
    struct ev_loop *loop;
    hsc_http *http;
    char *url, *collection, *schema_path, *auth;
    int dim, timeout_ms, retries, backoff_initial_ms, backoff_max_ms, ef, write_chunk;
    hsc_milvus_dialect want, dialect;
    int ready;
};

enum op { OP_ENSURE, OP_UPSERT, OP_DELETE, OP_SEARCH, OP_GET, OP_COUNT, OP_DROP };
static const char *const OP_NAMES[] = {"ensure", "upsert", "delete", "search",
                                       "get",    "count",  "drop"};

/* One operation in flight, possibly several calls long. */
struct call {
    hsc_milvus *m;
    enum op op;
    int step;
    hsc_milvus_fn cb;
    void *arg;
    char **chunks; /* upsert: the write bodies, sent concurrently */
    size_t nchunks;
    int pending; /* chunk calls in flight */
    hsc_err first_err;
    int with_vectors;
    int keep; /* search: the hits asked for (v1 asks Milvus for more) */
    hsc_milvus_result res;
};

static int send(struct call *c, const char *method, const char *path, const char *body,
                hsc_err *err);

static void free_chunks(struct call *c)
{
    for (size_t i = 0; i < c->nchunks; i++)
        free(c->chunks[i]);
    free(c->chunks);
    c->chunks = NULL;
    c->nchunks = 0;
}

static void finish(struct call *c, const hsc_err *err)
{
    c->cb(c->arg, err ? NULL : &c->res, err);
    hsc_milvus_result_clear(&c->res);
    free_chunks(c);
    free(c);
}

static void fail(struct call *c, const hsc_err *err)
{
    finish(c, err);
}

/* The ensure sequence, one step per HTTP answer. */
enum {
    E_PROBE,    /* POST v2 has: 404 means a v1 server */
    E_DESCRIBE, /* describe: missing -> create */
    E_CREATE,   /* create, then describe again */
    E_REDESCRIBE,
    E_LOAD, /* v2 only: load, then done */
};

static const char *path_of(const hsc_milvus *m, const char *v1, const char *v2)
{
    return m->dialect == HSC_MILVUS_V1 ? v1 : v2;
}

static int ensure_describe(struct call *c, int step, hsc_err *err)
{
    hsc_milvus *m = c->m;
    c->step = step;
    if (m->dialect == HSC_MILVUS_V1) {
        char path[512];
        /* The collection name was checked to be an identifier: nothing to escape. */
        snprintf(path, sizeof(path), "/v1/vector/collections/describe?collectionName=%s",
                 m->collection);
        return send(c, "GET", path, NULL, err);
    }
    json_t *o = base(m->collection);
    char *body = dump(o);
    int rc = send(c, "POST", "/v2/vectordb/collections/describe", body, err);
    free(body);
    return rc;
}

static void on_http(void *arg, const hsc_http_response *res, const hsc_err *herr);

static int send(struct call *c, const char *method, const char *path, const char *body,
                hsc_err *err)
{
    hsc_milvus *m = c->m;
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", m->url, path);
    const char *headers[4] = {"Content-Type: application/json", "Accept: application/json", NULL,
                              NULL};
    if (m->auth)
        headers[2] = m->auth;
    struct hsc_http_request q = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .headers = headers,
        .timeout_ms = m->timeout_ms,
        .retries = m->retries,
        .backoff_initial_ms = m->backoff_initial_ms,
        .backoff_max_ms = m->backoff_max_ms,
        .backend = "milvus",
        .op = OP_NAMES[c->op],
        .idempotent = c->op == OP_SEARCH || c->op == OP_GET || c->op == OP_COUNT,
    };
    return hsc_http_request(m->http, &q, on_http, c, err);
}

static int post(struct call *c, const char *path, char *body, hsc_err *err)
{
    if (!body)
        return hsc_err_set(err, HSC_EINVAL,
                           "milvus: cannot build the request (bad id or no memory)");
    int rc = send(c, "POST", path, body, err);
    free(body);
    return rc;
}

/*
 * Sends every chunk of an upsert at once: the server parses JSON on several
 * cores, and the chunks hold different ids, so their order does not matter.
 * Returns an error only if none could be sent.
 */
static int send_chunks(struct call *c, const char *path, hsc_err *err)
{
    c->step = 1;
    c->pending = 1; /* held while sending, so an early answer cannot finish the call */
    for (size_t i = 0; i < c->nchunks; i++) {
        c->pending++;
        if (send(c, "POST", path, c->chunks[i], err)) {
            c->pending--;
            if (!c->first_err.code)
                c->first_err = *err;
            break;
        }
    }
    if (--c->pending == 0) { /* nothing went out */
        *err = c->first_err;
        return err->code ? err->code : HSC_ETRANSIENT;
    }
    return HSC_OK;
}

/* Next step of ensure; returns 1 when it finished the call. */
static int ensure_step(struct call *c, const hsc_http_response *res, hsc_err *err)
{
    hsc_milvus *m = c->m;
    switch (c->step) {
    case E_PROBE:
        if (res->status == 404) {
            m->dialect = HSC_MILVUS_V1;
        } else if (hsc_milvus_check(HSC_MILVUS_V2, res->status, res->body, res->len, err)) {
            return -1;
        } else {
            m->dialect = HSC_MILVUS_V2;
        }
        hsc_log_info("milvus dialect", "dialect", m->dialect == HSC_MILVUS_V1 ? "v1" : "v2", "url",
                     m->url, NULL);
        return ensure_describe(c, E_DESCRIBE, err) ? -1 : 0;
    case E_DESCRIBE:
    case E_REDESCRIBE: {
        int rc = hsc_milvus_check(m->dialect, res->status, res->body, res->len, err);
        int missing = rc && (strstr(err->msg, "code 100:") || strstr(err->msg, "not found") ||
                             strstr(err->msg, "not exist"));
        if (rc && !(missing && c->step == E_DESCRIBE))
            return -1;
        if (missing) {
            char *schema = hsc_read_file(m->schema_path);
            if (!schema) {
                hsc_err_set(err, HSC_ECONFIG, "milvus.schema: cannot read %s", m->schema_path);
                return -1;
            }
            char *body = hsc_milvus_build_create(m->dialect, m->collection, schema, m->dim, err);
            free(schema);
            if (!body)
                return -1;
            c->step = E_CREATE;
            return post(c,
                        path_of(m, "/v1/vector/collections/create",
                                "/v2/vectordb/collections/create"),
                        body, err)
                       ? -1
                       : 0;
        }
        int dim = 0;
        if (hsc_milvus_parse_dim(m->dialect, res->body, res->len, &dim, err))
            return -1;
        if (dim != m->dim) {
            hsc_err_set(err, HSC_ECONFIG,
                        "milvus.dimension: %d, but collection %s holds vectors of dimension %d",
                        m->dim, m->collection, dim);
            return -1;
        }
        if (m->dialect == HSC_MILVUS_V1) { /* v1 creates collections loaded */
            m->ready = 1;
            return 1;
        }
        c->step = E_LOAD;
        return post(c, "/v2/vectordb/collections/load", dump(base(m->collection)), err) ? -1 : 0;
    }
    case E_CREATE:
        if (hsc_milvus_check(m->dialect, res->status, res->body, res->len, err))
            return -1;
        hsc_log_info("milvus collection created", "collection", m->collection, NULL);
        return ensure_describe(c, E_REDESCRIBE, err) ? -1 : 0;
    case E_LOAD:
        if (hsc_milvus_check(m->dialect, res->status, res->body, res->len, err))
            return -1;
        m->ready = 1;
        return 1;
    }
    return -1;
}

static void on_http(void *arg, const hsc_http_response *res, const hsc_err *herr)
{
    struct call *c = arg;
    hsc_milvus *m = c->m;
    hsc_err err = {0};
    if (!res) {
        fail(c, herr);
        return;
    }
    c->res.seconds += res->seconds;
    if (c->op == OP_ENSURE) {
        int r = ensure_step(c, res, &err);
        if (r < 0)
            fail(c, &err);
        else if (r > 0)
            finish(c, NULL);
        return;
    }
    int bad = hsc_milvus_check(m->dialect, res->status, res->body, res->len, &err);
    if (bad && (strstr(err.msg, "code 100:") || strstr(err.msg, "code 101:")))
        m->ready = 0; /* the collection went away (100) or was released (101, e.g. after a
                       * restart on v2): ensure again, which creates and loads it */
    if (c->op == OP_UPSERT && c->step == 1) { /* one of the concurrent writes */
        if (bad && !c->first_err.code)
            c->first_err = err;
        if (--c->pending == 0) {
            if (c->first_err.code)
                fail(c, &c->first_err);
            else
                finish(c, NULL);
        }
        return;
    }
    if (bad) {
        fail(c, &err);
        return;
    }
    int rc = HSC_OK;
    switch (c->op) {
    case OP_UPSERT: /* v1: the delete is done, now the inserts */
        if (send_chunks(c, "/v1/vector/insert", &err))
            fail(c, &err);
        return;
    case OP_SEARCH:
        rc = hsc_milvus_parse_hits(m->dialect, res->body, res->len, &c->res.hits, &c->res.nhits,
                                   &err);
        if (!rc && c->keep > 0 && c->res.nhits > (size_t)c->keep)
            c->res.nhits =
                (size_t)c->keep; /* hits are best first; the rest only widened the beam */
        break;
    case OP_GET:
        rc = hsc_milvus_parse_entities(m->dialect, res->body, res->len, &c->res.ents, &c->res.nents,
                                       &err);
        break;
    case OP_COUNT:
        rc = hsc_milvus_parse_count(res->body, res->len, &c->res.count, &err);
        break;
    case OP_DROP:
        m->ready = 0;
        break;
    default:
        break;
    }
    if (rc)
        fail(c, &err);
    else
        finish(c, NULL);
}

static struct call *new_call(hsc_milvus *m, enum op op, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    if (op != OP_ENSURE && !m->ready) {
        hsc_err_set(err, HSC_ETRANSIENT, "milvus: collection %s is not ready (ensure first)",
                    m->collection);
        return NULL;
    }
    struct call *c = calloc(1, sizeof(*c));
    if (!c) {
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->op = op;
    c->cb = cb;
    c->arg = arg;
    return c;
}

/* Starts a one-call operation; frees c if it could not start. */
static int start(struct call *c, const char *v1_path, const char *v2_path, char *body, hsc_err *err)
{
    int rc = post(c, path_of(c->m, v1_path, v2_path), body, err);
    if (rc) {
        free_chunks(c);
        free(c);
    }
    return rc;
}

hsc_milvus *hsc_milvus_new(struct ev_loop *loop, hsc_http *http,
                           const struct hsc_milvus_settings *s, hsc_err *err)
{
    if (!field_ok(s->collection)) {
        hsc_err_set(err, HSC_ECONFIG,
                    "milvus.collection: '%s' is not a name (letters, digits, underscores)",
                    s->collection);
        return NULL;
    }
    if (s->dim < 1 || s->dim > HSC_MAX_EMBEDDING_DIM) {
        hsc_err_set(err, HSC_ECONFIG, "milvus.dimension: %d is out of range 1..%d", s->dim,
                    HSC_MAX_EMBEDDING_DIM);
        return NULL;
    }
    hsc_milvus *m = calloc(1, sizeof(*m));
    if (!m) {
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    m->loop = loop;
    m->http = http;
    size_t ulen = strlen(s->url);
    while (ulen && s->url[ulen - 1] == '/')
        ulen--;
    m->url = hsc_strndup(s->url, ulen);
    m->collection = strdup(s->collection);
    m->schema_path = strdup(s->schema_path);
    if (s->token && *s->token) {
        size_t n = strlen(s->token) + 32;
        m->auth = malloc(n);
        if (m->auth)
            snprintf(m->auth, n, "Authorization: Bearer %s", s->token);
    }
    if (!m->url || !m->collection || !m->schema_path || (s->token && *s->token && !m->auth)) {
        hsc_milvus_free(m);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    m->dim = s->dim;
    m->timeout_ms = s->timeout_ms;
    m->retries = s->retries;
    m->backoff_initial_ms = s->backoff_initial_ms;
    m->backoff_max_ms = s->backoff_max_ms;
    m->ef = s->ef > 0 ? s->ef : 64;
    m->write_chunk = s->write_chunk > 0 ? s->write_chunk : 250;
    m->want = m->dialect = s->dialect;
    return m;
}

void hsc_milvus_free(hsc_milvus *m)
{
    if (!m)
        return;
    free(m->url);
    free(m->collection);
    free(m->schema_path);
    free(m->auth);
    free(m);
}

int hsc_milvus_ensure(hsc_milvus *m, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_ENSURE, cb, arg, err);
    if (!c)
        return err->code;
    int rc;
    m->ready = 0;
    if (m->want == HSC_MILVUS_AUTO) {
        c->step = E_PROBE;
        rc = post(c, "/v2/vectordb/collections/has", dump(base(m->collection)), err);
    } else {
        m->dialect = m->want;
        rc = ensure_describe(c, E_DESCRIBE, err);
    }
    if (rc)
        free(c);
    return rc;
}

int hsc_milvus_ready(const hsc_milvus *m)
{
    return m->ready;
}

hsc_milvus_dialect hsc_milvus_dialect_of(const hsc_milvus *m)
{
    return m->dialect;
}

const char *hsc_milvus_id_field(const hsc_milvus *m)
{
    return m->dialect == HSC_MILVUS_V1 ? V1_ID_FIELD : "id";
}

int hsc_milvus_upsert(hsc_milvus *m, const hsc_content_event *const *evs, size_t n,
                      hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!evs[i]->embedding || evs[i]->dim != (size_t)m->dim)
            return hsc_err_set(err, HSC_EINVAL,
                               "embedding: %zu values, but the collection holds %d",
                               evs[i]->embedding ? evs[i]->dim : 0, m->dim);
    struct call *c = new_call(m, OP_UPSERT, cb, arg, err);
    if (!c)
        return err->code;
    c->res.count = (int64_t)n;
    size_t per = (size_t)m->write_chunk;
    c->nchunks = (n + per - 1) / per;
    c->chunks = calloc(c->nchunks ? c->nchunks : 1, sizeof(char *));
    int oom = !c->chunks;
    for (size_t i = 0; !oom && i < c->nchunks; i++) {
        size_t k = n - i * per < per ? n - i * per : per;
        oom =
            !(c->chunks[i] = hsc_milvus_build_upsert(m->dialect, m->collection, evs + i * per, k));
    }
    if (oom) {
        free_chunks(c);
        free(c);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    if (m->dialect == HSC_MILVUS_V2) {
        int rc = send_chunks(c, "/v2/vectordb/entities/upsert", err);
        if (rc) {
            free_chunks(c);
            free(c);
        }
        return rc;
    }
    /* v1 has no upsert and its keys are automatic: replace by content id. */
    const char **ids = malloc(n * sizeof(*ids));
    if (!ids) {
        free_chunks(c);
        free(c);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = evs[i]->id;
    char *del = hsc_milvus_build_delete(m->dialect, m->collection, ids, n);
    free(ids);
    return start(c, "/v1/vector/delete", NULL, del, err);
}

int hsc_milvus_delete(hsc_milvus *m, const char *const *ids, size_t n, hsc_milvus_fn cb, void *arg,
                      hsc_err *err)
{
    struct call *c = new_call(m, OP_DELETE, cb, arg, err);
    if (!c)
        return err->code;
    c->res.count = (int64_t)n;
    return start(c, "/v1/vector/delete", "/v2/vectordb/entities/delete",
                 hsc_milvus_build_delete(m->dialect, m->collection, ids, n), err);
}

int hsc_milvus_search(hsc_milvus *m, const float *vec, size_t dim, int k, const char *filter,
                      int ef, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    if (dim != (size_t)m->dim)
        return hsc_err_set(err, HSC_EINVAL, "vector: %zu values, but the collection holds %d", dim,
                           m->dim);
    struct call *c = new_call(m, OP_SEARCH, cb, arg, err);
    if (!c)
        return err->code;
    c->keep = k;
    return start(c, "/v1/vector/search", "/v2/vectordb/entities/search",
                 hsc_milvus_build_search(m->dialect, m->collection, vec, dim, k, filter,
                                         ef > 0 ? ef : m->ef),
                 err);
}

int hsc_milvus_get(hsc_milvus *m, const char *const *ids, size_t n, int with_vectors,
                   hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_GET, cb, arg, err);
    if (!c)
        return err->code;
    return start(c, "/v1/vector/query", "/v2/vectordb/entities/get",
                 hsc_milvus_build_get(m->dialect, m->collection, ids, n, with_vectors), err);
}

int hsc_milvus_count(hsc_milvus *m, const char *filter, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_COUNT, cb, arg, err);
    if (!c)
        return err->code;
    return start(c, "/v1/vector/query", "/v2/vectordb/entities/query",
                 hsc_milvus_build_count(m->dialect, m->collection, filter), err);
}

int hsc_milvus_drop(hsc_milvus *m, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_DROP, cb, arg, err);
    if (!c)
        return err->code;
    return start(c, "/v1/vector/collections/drop", "/v2/vectordb/collections/drop",
                 dump(base(m->collection)), err);
}

void hsc_milvus_settings_load(const hsc_config *cfg, struct hsc_milvus_settings *s,
                              char *schema_buf, size_t cap)
{
    const char *sp = hsc_config_str(cfg, "milvus.schema");
    if (!*sp) {
        snprintf(schema_buf, cap, "%s/milvus/content.json", hsc_config_str(cfg, "paths.schemas"));
        sp = schema_buf;
    }
    const char *d = hsc_config_str(cfg, "milvus.dialect");
    *s = (struct hsc_milvus_settings){
        .url = hsc_config_str(cfg, "milvus.url"),
        .token = hsc_config_str(cfg, "milvus.token"),
        .collection = hsc_config_str(cfg, "milvus.collection"),
        .schema_path = sp,
        .dim = (int)hsc_config_int(cfg, "milvus.dimension"),
        .dialect = !strcmp(d, "v1")   ? HSC_MILVUS_V1
                   : !strcmp(d, "v2") ? HSC_MILVUS_V2
                                      : HSC_MILVUS_AUTO,
        .timeout_ms = (int)hsc_config_int(cfg, "milvus.timeout_ms"),
        .retries = (int)hsc_config_int(cfg, "milvus.retries"),
        .backoff_initial_ms = (int)hsc_config_int(cfg, "backoff.initial_ms"),
        .backoff_max_ms = (int)hsc_config_int(cfg, "backoff.max_ms"),
        .ef = (int)hsc_config_int(cfg, "milvus.ef"),
        .write_chunk = (int)hsc_config_int(cfg, "milvus.write_chunk"),
    };
}
