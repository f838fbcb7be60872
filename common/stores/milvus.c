/*
 * The Milvus client's calls: every operation is one or two HTTP calls whose
 * bodies come from milvus_request.c and whose answers milvus_response.c
 * checks and parses; this file only sequences them (ensure's probe,
 * describe, create and load; v1's delete-then-insert upsert; concurrent
 * write chunks) and acts on the parsed error fields, never on their text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "milvus_internal.h"
#include "util.h"

void hsc_milvus_result_clear(hsc_milvus_result *r)
{
    for (size_t i = 0; i < r->nents; i++)
        free(r->ents[i].vec);
    free(r->ents);
    free(r->hits);
    memset(r, 0, sizeof(*r));
}

struct hsc_milvus {
    struct hsc_http_endpoint ep; /* the HTTP client, url, token, timeout and retries */
    char *collection, *schema_path;
    int dim, ef, write_chunk;
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

static int post_collection(struct call *c, const char *path, hsc_err *err);

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
    return post_collection(c, "/v2/vectordb/collections/describe", err);
}

static void on_http(void *arg, const hsc_http_response *res, const hsc_err *herr);

static int send(struct call *c, const char *method, const char *path, const char *body,
                hsc_err *err)
{
    return hsc_http_json(&c->m->ep, method, path, body, OP_NAMES[c->op],
                         c->op == OP_SEARCH || c->op == OP_GET || c->op == OP_COUNT, on_http, c,
                         err);
}

/* POSTs body (a builder's, freed here). */
static int post(struct call *c, const char *path, char *body, hsc_err *err)
{
    int rc = send(c, "POST", path, body, err);
    free(body);
    return rc;
}

/* POSTs the body that only names the collection (has, describe, load, drop). */
static int post_collection(struct call *c, const char *path, hsc_err *err)
{
    char *body;
    if (hsc_milvus__dump(hsc_milvus__base(c->m->collection), 0, OP_NAMES[c->op], &body, err))
        return err->code;
    return post(c, path, body, err);
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
                     m->ep.url, NULL);
        return ensure_describe(c, E_DESCRIBE, err) ? -1 : 0;
    case E_DESCRIBE:
    case E_REDESCRIBE: {
        int rc = hsc_milvus_check(m->dialect, res->status, res->body, res->len, err);
        int missing = rc && err->not_found;
        if (rc && !(missing && c->step == E_DESCRIBE))
            return -1;
        if (missing) {
            char *schema = hsc_read_file(m->schema_path);
            if (!schema) {
                hsc_err_set(err, HSC_ECONFIG, "milvus.schema: cannot read %s", m->schema_path);
                return -1;
            }
            char *body;
            rc = hsc_milvus_build_create(m->dialect, m->collection, schema, m->dim, &body, err);
            free(schema);
            if (rc)
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
        return post_collection(c, "/v2/vectordb/collections/load", err) ? -1 : 0;
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
    if (bad && (err.server_code == HSC_MILVUS_CODE_COLLECTION_NOT_FOUND ||
                err.server_code == HSC_MILVUS_CODE_COLLECTION_NOT_LOADED))
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

/* Starts a one-call operation with a builder's body (freed here); frees c if it could not start. */
static int start(struct call *c, const char *v1_path, const char *v2_path, char *body, hsc_err *err)
{
    int rc = post(c, path_of(c->m, v1_path, v2_path), body, err);
    if (rc) {
        free_chunks(c);
        free(c);
    }
    return rc;
}

/* An operation that did not start (no call, or its body could not be built): c (may be NULL) is
 * freed, and err, already filled, says why. */
static int not_started(struct call *c, hsc_err *err)
{
    free(c);
    return err->code;
}

hsc_milvus *hsc_milvus_new(struct ev_loop *loop, hsc_http *http,
                           const struct hsc_milvus_settings *s, hsc_err *err)
{
    if (!hsc_milvus__name_ok(s->collection)) {
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
    (void)loop; /* every wait is the HTTP client's, on its loop */
    if (hsc_http_endpoint_init(&m->ep, http, "milvus", s->url, s->token, HSC_HTTP_POLICY_OF(s),
                               err)) {
        free(m);
        return NULL;
    }
    m->collection = strdup(s->collection);
    m->schema_path = strdup(s->schema_path);
    if (!m->collection || !m->schema_path) {
        hsc_milvus_free(m);
        hsc_err_set(err, HSC_ENOMEM, "out of memory");
        return NULL;
    }
    m->dim = s->dim;
    m->ef = s->ef > 0 ? s->ef : 64;
    m->write_chunk = s->write_chunk > 0 ? s->write_chunk : 250;
    m->want = m->dialect = s->dialect;
    return m;
}

void hsc_milvus_free(hsc_milvus *m)
{
    if (!m)
        return;
    hsc_http_endpoint_destroy(&m->ep);
    free(m->collection);
    free(m->schema_path);
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
        rc = post_collection(c, "/v2/vectordb/collections/has", err);
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
    return MILVUS_ID_FIELD(m->dialect);
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
    int rc = c->chunks ? HSC_OK : hsc_err_set(err, HSC_ENOMEM, "milvus upsert: out of memory");
    for (size_t i = 0; !rc && i < c->nchunks; i++) {
        size_t k = n - i * per < per ? n - i * per : per;
        rc = hsc_milvus_build_upsert(m->dialect, m->collection, evs + i * per, k, &c->chunks[i],
                                     err);
    }
    if (rc) {
        free_chunks(c);
        free(c);
        return rc;
    }
    if (m->dialect == HSC_MILVUS_V2) {
        rc = send_chunks(c, "/v2/vectordb/entities/upsert", err);
        if (rc) {
            free_chunks(c);
            free(c);
        }
        return rc;
    }
    /* v1 has no upsert and its keys are automatic: replace by content id. */
    const char **ids = malloc(n * sizeof(*ids));
    char *del = NULL;
    rc = ids ? HSC_OK : hsc_err_set(err, HSC_ENOMEM, "milvus upsert: out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        ids[i] = evs[i]->id;
    if (!rc)
        rc = hsc_milvus_build_delete(m->dialect, m->collection, ids, n, &del, err);
    free(ids);
    if (rc) {
        free_chunks(c);
        free(c);
        return rc;
    }
    return start(c, "/v1/vector/delete", NULL, del, err);
}

int hsc_milvus_delete(hsc_milvus *m, const char *const *ids, size_t n, hsc_milvus_fn cb, void *arg,
                      hsc_err *err)
{
    struct call *c = new_call(m, OP_DELETE, cb, arg, err);
    char *body;
    if (!c || hsc_milvus_build_delete(m->dialect, m->collection, ids, n, &body, err))
        return not_started(c, err);
    c->res.count = (int64_t)n;
    return start(c, "/v1/vector/delete", "/v2/vectordb/entities/delete", body, err);
}

int hsc_milvus_search(hsc_milvus *m, const float *vec, size_t dim, int k, const char *filter,
                      int ef, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    if (dim != (size_t)m->dim)
        return hsc_err_set(err, HSC_EINVAL, "vector: %zu values, but the collection holds %d", dim,
                           m->dim);
    struct call *c = new_call(m, OP_SEARCH, cb, arg, err);
    char *body;
    if (!c || hsc_milvus_build_search(m->dialect, m->collection, vec, dim, k, filter,
                                      ef > 0 ? ef : m->ef, &body, err))
        return not_started(c, err);
    c->keep = k;
    return start(c, "/v1/vector/search", "/v2/vectordb/entities/search", body, err);
}

int hsc_milvus_get(hsc_milvus *m, const char *const *ids, size_t n, int with_vectors,
                   hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_GET, cb, arg, err);
    char *body;
    if (!c || hsc_milvus_build_get(m->dialect, m->collection, ids, n, with_vectors, &body, err))
        return not_started(c, err);
    return start(c, "/v1/vector/query", "/v2/vectordb/entities/get", body, err);
}

int hsc_milvus_count(hsc_milvus *m, const char *filter, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_COUNT, cb, arg, err);
    char *body;
    if (!c || hsc_milvus_build_count(m->dialect, m->collection, filter, &body, err))
        return not_started(c, err);
    return start(c, "/v1/vector/query", "/v2/vectordb/entities/query", body, err);
}

int hsc_milvus_drop(hsc_milvus *m, hsc_milvus_fn cb, void *arg, hsc_err *err)
{
    struct call *c = new_call(m, OP_DROP, cb, arg, err);
    if (!c)
        return err->code;
    int rc = post_collection(
        c, path_of(m, "/v1/vector/collections/drop", "/v2/vectordb/collections/drop"), err);
    if (rc)
        free(c);
    return rc;
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
        HSC_HTTP_POLICY_FIELDS(cfg, "milvus.timeout_ms", "milvus.retries"),
        .ef = (int)hsc_config_int(cfg, "milvus.ef"),
        .write_chunk = (int)hsc_config_int(cfg, "milvus.write_chunk"),
    };
}
