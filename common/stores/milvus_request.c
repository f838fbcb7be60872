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

static json_t *jvec(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t i = 0; i < dim; i++)
        json_array_append_new(a, json_real((double)v[i]));
    return a;
}

char *hsc_milvus__dump(json_t *o)
{
    char *s = json_dumps(o, MILVUS_JSON_FLAGS);
    json_decref(o);
    return s;
}

json_t *hsc_milvus__base(const char *collection)
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
    char *filter = hsc_milvus__id_filter(d, ids, n);
    if (!filter)
        return NULL;
    json_t *o = hsc_milvus__base(collection);
    json_object_set_new(o, "filter", json_string(filter));
    free(filter);
    return hsc_milvus__dump(o);
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
    json_t *o = hsc_milvus__base(collection);
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
        json_array_append_new(out, json_string(MILVUS_V1_ID_FIELD));
        json_object_set_new(o, "params", params);
    } else {
        json_t *data = json_array();
        json_array_append_new(data, jvec(vec, dim));
        json_object_set_new(o, "data", data);
        json_object_set_new(o, "annsField", json_string(MILVUS_VEC_FIELD));
        json_array_append_new(out, json_string("id"));
        json_t *sp = json_object();
        json_object_set_new(sp, "metricType", json_string("COSINE"));
        json_object_set_new(sp, "params", params);
        json_object_set_new(o, "searchParams", sp);
    }
    json_object_set_new(o, "outputFields", out);
    return hsc_milvus__dump(o);
}

char *hsc_milvus_build_get(hsc_milvus_dialect d, const char *collection, const char *const *ids,
                           size_t n, int with_vectors)
{
    json_t *o = hsc_milvus__base(collection);
    json_t *out = json_array();
    json_array_append_new(out, json_string(MILVUS_ID_FIELD(d)));
    if (with_vectors)
        json_array_append_new(out, json_string(MILVUS_VEC_FIELD));
    json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        char *filter = hsc_milvus__id_filter(d, ids, n);
        if (!filter) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "filter", json_string(filter));
        json_object_set_new(o, "limit", json_integer((json_int_t)(n ? n : 1)));
        free(filter);
    } else {
        json_object_set_new(o, "id", hsc_json_strings(ids, n));
    }
    return hsc_milvus__dump(o);
}

char *hsc_milvus_build_count(hsc_milvus_dialect d, const char *collection, const char *filter)
{
    json_t *o = hsc_milvus__base(collection);
    json_t *out = json_array();
    json_array_append_new(out, json_string("count(*)"));
    json_object_set_new(o, "outputFields", out);
    if (d == HSC_MILVUS_V1) {
        /* v1 wants a filter, and refuses count(*) with its default page size. */
        json_object_set_new(o, "filter",
                            json_string(filter && *filter ? filter : MILVUS_V1_PK_FIELD " > 0"));
        json_object_set_new(o, "limit", json_integer(0));
    } else {
        json_object_set_new(o, "filter", json_string(filter ? filter : ""));
        json_object_set_new(o, "consistencyLevel", json_string("Strong"));
    }
    return hsc_milvus__dump(o);
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
    json_t *o = hsc_milvus__base(collection);
    if (d == HSC_MILVUS_V1) {
        json_object_set_new(o, "dimension", json_integer(dim));
        json_object_set_new(o, "metricType", json_string(metric));
        json_object_set_new(o, "primaryField", json_string(MILVUS_V1_PK_FIELD));
        json_object_set_new(o, "vectorField", json_string(MILVUS_VEC_FIELD));
        json_decref(tpl);
        return hsc_milvus__dump(o);
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
    return hsc_milvus__dump(o);
}
