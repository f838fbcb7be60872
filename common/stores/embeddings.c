/*
 * The embeddings client: one POST per batch of texts, its answer parsed into
 * vectors checked against the dimension the collection holds.
 */
#include "embeddings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json_list.h"
#include "util.h"

struct hsc_embeddings {
    struct hsc_http_endpoint ep; /* the HTTP client, base URL, bearer token, timeout, retries */
    char *model;
    int dim;
};

/* One request in flight. */
struct fetch {
    hsc_embeddings *e;
    size_t n;
    hsc_embeddings_fn cb;
    void *arg;
};

int hsc_embeddings_request_json(const char *model, const char *const *texts, size_t n, char **body,
                                hsc_err *err)
{
    *body = NULL;
    for (size_t i = 0; i < n; i++)
        if (!hsc_utf8_valid(texts[i], strlen(texts[i])))
            return hsc_err_set(err, HSC_EINVAL, "embeddings request: texts[%zu]: not valid UTF-8",
                               i);
    json_t *o = json_object();
    int lost = json_object_set_new(o, "model", json_string(model));
    lost |= json_object_set_new(o, "input", hsc_json_strings(texts, n));
    lost |= json_object_set_new(o, "encoding_format", json_string("float"));
    *body = lost ? NULL : hsc_json_dump(o, JSON_COMPACT);
    json_decref(o);
    if (!*body)
        return hsc_err_set(err, HSC_ENOMEM, "embeddings request: out of memory (%zu texts)", n);
    return HSC_OK;
}

int hsc_embeddings_parse(const char *body, size_t len, size_t n, int dim, float **out, hsc_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    json_t *data = json_object_get(o, "data");
    int rc = HSC_OK;
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!json_is_array(data)) {
        rc = hsc_err_set(err, HSC_ETRANSIENT, "embeddings: response has no data array%s%s",
                         o ? "" : ": ", o ? "" : je.text);
        goto done;
    }
    if (json_array_size(data) != n) {
        rc = hsc_err_set(err, HSC_ETRANSIENT, "embeddings: asked for %zu, got %zu", n,
                         json_array_size(data));
        goto done;
    }
    size_t i;
    json_t *e;
    json_array_foreach (data, i, e) {
        json_t *idx = json_object_get(e, "index");
        size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
        json_t *v = json_object_get(e, "embedding");
        if (at >= n || out[at]) {
            rc = hsc_err_set(err, HSC_ETRANSIENT, "embeddings: data[%zu].index: %zu is bad", i, at);
            goto done;
        }
        if (!json_is_array(v) || json_array_size(v) != (size_t)dim) {
            rc = hsc_err_set(err, HSC_ETRANSIENT,
                             "embeddings: data[%zu].embedding: %zu values, but milvus.dimension "
                             "is %d (is embeddings.model right?)",
                             i, json_is_array(v) ? json_array_size(v) : 0, dim);
            goto done;
        }
        out[at] = malloc((size_t)dim * sizeof(float));
        if (!out[at]) {
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            goto done;
        }
        for (int k = 0; k < dim; k++)
            out[at][k] = (float)json_number_value(json_array_get(v, (size_t)k));
    }
done:
    if (rc)
        for (size_t k = 0; k < n; k++) {
            free(out[k]);
            out[k] = NULL;
        }
    json_decref(o);
    return rc;
}

static void on_answer(void *arg, const hsc_http_response *res, const hsc_err *herr)
{
    struct fetch *f = arg;
    hsc_embeddings_fn cb = f->cb;
    void *cb_arg = f->arg;
    size_t n = f->n;
    int dim = f->e->dim;
    free(f);
    hsc_err err = {0};
    if (!res) {
        cb(cb_arg, NULL, 0, herr);
        return;
    }
    if (res->status != 200) {
        hsc_err_set(&err, HSC_ETRANSIENT, "embeddings: HTTP %ld: %.200s", res->status, res->body);
        err.http_status = res->status;
        cb(cb_arg, NULL, 0, &err);
        return;
    }
    float **vecs = calloc(n ? n : 1, sizeof(*vecs));
    if (!vecs) {
        hsc_err_set(&err, HSC_ETRANSIENT, "out of memory");
        cb(cb_arg, NULL, 0, &err);
        return;
    }
    if (hsc_embeddings_parse(res->body, res->len, n, dim, vecs, &err)) {
        free(vecs);
        cb(cb_arg, NULL, 0, &err);
        return;
    }
    cb(cb_arg, vecs, n, NULL);
    free(vecs);
}

int hsc_embeddings_fetch(hsc_embeddings *e, const char *const *texts, size_t n,
                         hsc_embeddings_fn cb, void *arg, hsc_err *err)
{
    /* No memory is a transient failure here: the batch is kept and tried again. */
    char *body;
    int rc = hsc_embeddings_request_json(e->model, texts, n, &body, err);
    if (rc == HSC_ENOMEM)
        err->code = rc = HSC_ETRANSIENT;
    if (rc)
        return rc;
    struct fetch *f = malloc(sizeof(*f));
    if (!f) {
        free(body);
        return hsc_err_set(err, HSC_ETRANSIENT, "embeddings request: out of memory");
    }
    *f = (struct fetch){.e = e, .n = n, .cb = cb, .arg = arg};
    rc = hsc_http_json(&e->ep, "POST", "/v1/embeddings", body, "embed", 0, on_answer, f, err);
    free(body);
    if (rc)
        free(f);
    return rc;
}

hsc_embeddings *hsc_embeddings_new(hsc_http *http, const struct hsc_embeddings_settings *s,
                                   hsc_err *err)
{
    hsc_embeddings *e = calloc(1, sizeof(*e));
    if (!e) {
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    e->dim = s->dim;
    if (hsc_http_endpoint_init(&e->ep, http, "embeddings", s->url, s->api_key,
                               HSC_HTTP_POLICY_OF(s), err)) {
        free(e);
        return NULL;
    }
    if (!(e->model = strdup(s->model))) {
        hsc_embeddings_free(e);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    return e;
}

void hsc_embeddings_free(hsc_embeddings *e)
{
    if (!e)
        return;
    hsc_http_endpoint_destroy(&e->ep);
    free(e->model);
    free(e);
}

void hsc_embeddings_settings_load(const hsc_config *cfg, struct hsc_embeddings_settings *s)
{
    *s = (struct hsc_embeddings_settings){
        .url = hsc_config_str(cfg, "embeddings.url"),
        .model = hsc_config_str(cfg, "embeddings.model"),
        .api_key = hsc_config_str(cfg, "embeddings.api_key"),
        .dim = (int)hsc_config_int(cfg, "milvus.dimension"),
        /* embed-index has always retried the endpoint as it retries Milvus */
        HSC_HTTP_POLICY_FIELDS(cfg, "embeddings.timeout_ms", "milvus.retries"),
    };
}
