/*
 * The bodies of Milvus's REST calls in both dialects (v1 on 2.3, v2 on 2.4
 * and later): pure functions from typed values to JSON text, tested without
 * a server. An upsert's rows are written straight into the body, the rest
 * through jansson.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_list.h"
#include "milvus_internal.h"
#include "util.h"

/* The floats as a JSON array; NULL when out of memory. */
static json_t *jvec(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < dim; i++)
        if (json_array_append_new(a, json_real((double)v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int hsc_milvus__dump(json_t *o, int lost, const char *what, char **out, hsc_err *err)
{
    *out = lost ? NULL : hsc_json_dump(o, MILVUS_JSON_FLAGS);
    json_decref(o);
    if (!*out)
        return hsc_err_set(err, HSC_ENOMEM, "milvus %s: out of memory building the request", what);
    return HSC_OK;
}

json_t *hsc_milvus__base(const char *collection)
{
    json_t *o = json_object();
    if (o && json_object_set_new(o, "collectionName", json_string(collection))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends a string literal (its length known at compile time). */
#define LIT(b, s) hsc_buf_append((b), (s), sizeof(s) - 1)

/* One entity written straight into the body: jansson's generic float formatting
 * costs more than the whole server call for a batch of 1000 x 384. */
static int put_entity(hsc_buf *b, hsc_milvus_dialect d, const hsc_content_event *ev)
{
    int rc = hsc_buf_printf(b, "{\"%s\":", MILVUS_ID_FIELD(d));
    rc |= hsc_buf_json_str(b, ev->id);
    rc |= LIT(b, ",\"" MILVUS_VEC_FIELD "\":[");
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

int hsc_milvus_build_upsert(hsc_milvus_dialect d, const char *collection,
                            const hsc_content_event *const *evs, size_t n, char **body,
                            hsc_err *err)
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
        *body = NULL;
        return hsc_err_set(err, HSC_ENOMEM,
                           "milvus upsert: out of memory building the request (%zu entities)", n);
    }
    *body = b.data;
    return HSC_OK;
}

int hsc_milvus_build_delete(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                            size_t n, char **body, hsc_err *err)
{
    char *filter;
    *body = NULL;
    if (hsc_milvus__id_filter(d, ids, n, "delete", &filter, err))
        return err->code;
    json_t *o = hsc_milvus__base(collection);
    int lost = json_object_set_new(o, "filter", json_string(filter));
    free(filter);
    return hsc_milvus__dump(o, lost, "delete", body, err);
}

int hsc_milvus_search_limit(hsc_milvus_dialect d, int k, int ef)
{
    if (d != HSC_MILVUS_V1 || ef <= k)
        return k;
    return ef > HSC_MILVUS_MAX_LIMIT ? (k > HSC_MILVUS_MAX_LIMIT ? k : HSC_MILVUS_MAX_LIMIT) : ef;
}

int hsc_milvus_build_search(hsc_milvus_dialect d, const char *collection, const float *vec,
                            size_t dim, int k, const char *filter, int ef, char **body,
                            hsc_err *err)
{
    json_t *o = hsc_milvus__base(collection);
    json_t *params = json_object();
    if (ef <= 0)
        ef = 64;
    int lost = json_object_set_new(params, "ef", json_integer(ef));
    /* v1 on Milvus 2.3 drops params.ef and searches HNSW with ef = max(limit, 16), so the
       beam is asked for through the limit; the client keeps the first k. */
    lost |= json_object_set_new(
        o, "limit", json_integer(d == HSC_MILVUS_V1 ? hsc_milvus_search_limit(d, k, ef) : k));
    if (filter && *filter)
        lost |= json_object_set_new(o, "filter", json_string(filter));
    json_t *out = json_array();
    if (d == HSC_MILVUS_V1) {
        lost |= json_object_set_new(o, "vector", jvec(vec, dim));
        lost |= json_array_append_new(out, json_string(MILVUS_V1_ID_FIELD));
        lost |= json_object_set_new(o, "params", params);
    } else {
        json_t *data = json_array();
        lost |= json_array_append_new(data, jvec(vec, dim));
        lost |= json_object_set_new(o, "data", data);
        lost |= json_object_set_new(o, "annsField", json_string(MILVUS_VEC_FIELD));
        lost |= json_array_append_new(out, json_string("id"));
        json_t *sp = json_object();
        lost |= json_object_set_new(sp, "metricType", json_string("COSINE"));
        lost |= json_object_set_new(sp, "params", params);
        lost |= json_object_set_new(o, "searchParams", sp);
    }
    lost |= json_object_set_new(o, "outputFields", out);
    return hsc_milvus__dump(o, lost, "search", body, err);
}

int hsc_milvus_build_get(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                         size_t n, int with_vectors, char **body, hsc_err *err)
{
    json_t *o = hsc_milvus__base(collection);
    json_t *out = json_array();
    int lost = json_array_append_new(out, json_string(MILVUS_ID_FIELD(d)));
    if (with_vectors)
        lost |= json_array_append_new(out, json_string(MILVUS_VEC_FIELD));
    lost |= json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        char *filter;
        if (hsc_milvus__id_filter(d, ids, n, "get", &filter, err)) {
            json_decref(o);
            *body = NULL;
            return err->code;
        }
        lost |= json_object_set_new(o, "filter", json_string(filter));
        lost |= json_object_set_new(o, "limit", json_integer((json_int_t)(n ? n : 1)));
        free(filter);
    } else {
        lost |= json_object_set_new(o, "id", hsc_json_strings(ids, n));
    }
    return hsc_milvus__dump(o, lost, "get", body, err);
}

int hsc_milvus_build_count(hsc_milvus_dialect d, const char *collection, const char *filter,
                           char **body, hsc_err *err)
{
    json_t *o = hsc_milvus__base(collection);
    json_t *out = json_array();
    int lost = json_array_append_new(out, json_string("count(*)"));
    lost |= json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        /* v1 wants a filter, and refuses count(*) with its default page size. */
        lost |= json_object_set_new(
            o, "filter", json_string(filter && *filter ? filter : MILVUS_V1_PK_FIELD " > 0"));
        lost |= json_object_set_new(o, "limit", json_integer(0));
    } else {
        lost |= json_object_set_new(o, "filter", json_string(filter ? filter : ""));
        lost |= json_object_set_new(o, "consistencyLevel", json_string("Strong"));
    }
    return hsc_milvus__dump(o, lost, "count", body, err);
}

int hsc_milvus_build_create(hsc_milvus_dialect d, const char *collection, const char *schema_json,
                            int dim, char **body, hsc_err *err)
{
    *body = NULL;
    json_error_t je;
    json_t *tpl = json_loads(schema_json, 0, &je);
    /* jansson names every parse error; one without a text is an allocation that failed */
    if (!tpl && (json_error_code(&je) == json_error_out_of_memory || !je.text[0]))
        return hsc_err_set(err, HSC_ENOMEM, "milvus create: out of memory reading the schema");
    if (!tpl || !json_is_object(tpl)) {
        json_decref(tpl);
        return hsc_err_set(err, HSC_ECONFIG, "milvus schema: line %d: %s", je.line, je.text);
    }
    json_t *idx = json_array_get(json_object_get(tpl, "indexParams"), 0);
    const char *metric = json_string_value(json_object_get(idx, "metricType"));
    if (!metric) {
        json_decref(tpl);
        return hsc_err_set(err, HSC_ECONFIG, "milvus schema: indexParams[0].metricType: missing");
    }
    json_t *o = hsc_milvus__base(collection);
    int lost = 0;
    if (d == HSC_MILVUS_V1) {
        lost |= json_object_set_new(o, "dimension", json_integer(dim));
        lost |= json_object_set_new(o, "metricType", json_string(metric));
        lost |= json_object_set_new(o, "primaryField", json_string(MILVUS_V1_PK_FIELD));
        lost |= json_object_set_new(o, "vectorField", json_string(MILVUS_VEC_FIELD));
        json_decref(tpl);
        return hsc_milvus__dump(o, lost, "create", body, err);
    }
    json_t *schema = json_object_get(tpl, "schema");
    json_t *fields = json_object_get(schema, "fields");
    int found = 0;
    size_t i;
    json_t *fd;
    json_array_foreach (fields, i, fd) {
        const char *t = json_string_value(json_object_get(fd, "dataType"));
        if (t && !strcmp(t, "FloatVector")) {
            found = 1;
            json_t *p = json_object_get(fd, "elementTypeParams");
            if (!json_is_object(p) &&
                json_object_set_new(fd, "elementTypeParams", p = json_object())) {
                lost = 1; /* p is gone with the failed set */
                continue;
            }
            lost |= json_object_set_new(p, "dim", json_integer(dim));
        }
    }
    if (!found) {
        json_decref(tpl);
        json_decref(o);
        return hsc_err_set(err, HSC_ECONFIG, "milvus schema: schema.fields: no FloatVector field");
    }
    lost |= json_object_set(o, "schema", schema);
    lost |= json_object_set(o, "indexParams", json_object_get(tpl, "indexParams"));
    json_decref(tpl);
    return hsc_milvus__dump(o, lost, "create", body, err);
}
