/*
 * Milvus's answers in both dialects: the envelope check, which turns an
 * error into data once (the HTTP status, Milvus's code, whether the
 * collection is missing), and the pure parsers of hits, entities, counts and
 * the described dimension.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milvus_internal.h"
#include "util.h"

/* Codes that mean "this request is wrong", not "the server is unwell". */
static int code_is_input_error(long long code)
{
    return (code >= 1100 && code < 1200) || /* parameter invalid/missing (v2) */
           (code >= 1800 && code < 1900);   /* request errors of the v1 REST layer */
}

/* True if a server's words say the named thing is not there (v1 has no code for it). */
static int says_missing(const char *text)
{
    return strstr(text, "not found") || strstr(text, "not exist");
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
        if (err)
            err->not_found = says_missing(head) || says_missing(je.text);
        return NULL;
    }
    return o;
}

int hsc_milvus_check(hsc_milvus_dialect d, long status, const char *body, size_t len, hsc_err *err)
{
    if (status < 200 || status >= 300) {
        char head[200];
        snprintf(head, sizeof(head), "%.*s", (int)(len < 180 ? len : 180), body ? body : "");
        hsc_http_status_error(err, "milvus", status, body, len, 180);
        err->not_found = says_missing(head);
        return err->code;
    }
    json_t *o = load(body, len, err);
    if (!o) {
        err->http_status = status;
        return err->code;
    }
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
    err->http_status = status;
    err->server_code = code;
    err->not_found = code == HSC_MILVUS_CODE_COLLECTION_NOT_FOUND || (msg && says_missing(msg));
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

/*
 * The rows of a response: its object *o (the caller releases it), its data
 * array *data, and a zeroed array *out of one elem-sized element per row
 * (NULL when there are none) with each row's id copied to the element's
 * id_at. On an error *o and *out are released and NULL.
 */
static int load_rows(hsc_milvus_dialect d, const char *body, size_t len, size_t elem, size_t id_at,
                     json_t **o, json_t **data, void **out, size_t *cnt, hsc_err *err)
{
    *out = NULL;
    *cnt = 0;
    *data = NULL;
    if (!(*o = load(body, len, err)))
        return err->code;
    int rc = (*data = data_array(*o, err)) ? HSC_OK : err->code;
    size_t n = rc ? 0 : json_array_size(*data);
    char *rows = n ? calloc(n, elem) : NULL;
    if (n && !rows)
        rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        rc = copy_id(json_object_get(json_array_get(*data, i), MILVUS_ID_FIELD(d)),
                     rows + i * elem + id_at, err);
    if (rc) {
        free(rows);
        json_decref(*o);
        *o = NULL;
        return rc;
    }
    *out = rows;
    *cnt = n;
    return HSC_OK;
}

int hsc_milvus_parse_hits(hsc_milvus_dialect d, const char *body, size_t len, hsc_milvus_hit **hits,
                          size_t *n, hsc_err *err)
{
    json_t *o, *data;
    void *rows;
    int rc = load_rows(d, body, len, sizeof(hsc_milvus_hit), offsetof(hsc_milvus_hit, id), &o,
                       &data, &rows, n, err);
    *hits = rows;
    for (size_t i = 0; !rc && i < *n; i++) {
        json_t *dist = json_object_get(json_array_get(data, i), "distance");
        if (!json_is_number(dist))
            rc = hsc_err_set(err, HSC_ETRANSIENT, "milvus: hit %zu has no distance", i);
        else
            (*hits)[i].score = (float)json_number_value(dist);
    }
    json_decref(o);
    if (rc) {
        free(*hits);
        *hits = NULL;
        *n = 0;
    }
    return rc;
}

int hsc_milvus_parse_entities(hsc_milvus_dialect d, const char *body, size_t len,
                              hsc_milvus_entity **ents, size_t *n, hsc_err *err)
{
    json_t *o, *data;
    void *rows;
    int rc = load_rows(d, body, len, sizeof(hsc_milvus_entity), offsetof(hsc_milvus_entity, id), &o,
                       &data, &rows, n, err);
    hsc_milvus_entity *es = rows;
    for (size_t i = 0; !rc && i < *n; i++) {
        json_t *v = json_object_get(json_array_get(data, i), MILVUS_VEC_FIELD);
        if (!json_is_array(v))
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
        for (size_t i = 0; i < *n && es; i++)
            free(es[i].vec);
        free(es);
        es = NULL;
        *n = 0;
    }
    *ents = es;
    return rc;
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
