/*
 * A client of an OpenAI-compatible embeddings endpoint (POST
 * {embeddings.url}/v1/embeddings), on the shared HTTP client: texts in, one
 * vector of the collection's dimension per text out, in the order asked.
 * Transient failures are retried by the HTTP layer; an answer that is not
 * 200, or whose count or dimension differs from what was asked, is
 * HSC_ETRANSIENT (the endpoint, not the title, is at fault).
 *
 * The request body and the response parser are pure and exported, so the
 * unit tests check them without a server.
 */
#ifndef HSC_EMBEDDINGS_H
#define HSC_EMBEDDINGS_H

#include <stddef.h>

#include "config.h"
#include "hsc/error.h"
#include "http.h"

/* Where the endpoint is, which model to ask for and the vectors' dimension. */
struct hsc_embeddings_settings {
    const char *url;     /* the base URL ("" for none): /v1/embeddings is appended */
    const char *model;   /* embeddings.model */
    const char *api_key; /* a bearer token, "" for none */
    int dim;             /* milvus.dimension: every vector must have it */
    int timeout_ms, retries, backoff_initial_ms, backoff_max_ms;
};

/* A client: the endpoint and the shared HTTP client. */
typedef struct hsc_embeddings hsc_embeddings;

/*
 * Completion: on success vecs holds n vectors of dim floats, in the order of
 * the texts; each vecs[i] is malloc'd and becomes the callback's (to keep or
 * free), the array itself stays the client's. On failure vecs is NULL and err
 * says why.
 */
typedef void (*hsc_embeddings_fn)(void *arg, float **vecs, size_t n, const hsc_err *err);

/* Creates a client (nothing is sent yet); s->url must not be "". */
hsc_embeddings *hsc_embeddings_new(hsc_http *http, const struct hsc_embeddings_settings *s,
                                   hsc_err *err);

/* Frees the client (free the HTTP client first to cancel what is in flight). */
void hsc_embeddings_free(hsc_embeddings *e);

/* Asks for the vectors of n texts; the async contract of http.h. */
int hsc_embeddings_fetch(hsc_embeddings *e, const char *const *texts, size_t n,
                         hsc_embeddings_fn cb, void *arg, hsc_err *err);

/* ---- pure parts (exported for the tests) ---- */

/*
 * The JSON body of a request for texts into *body (malloc'd; NULL on failure):
 * a text that is not UTF-8 is HSC_EINVAL naming it, no memory HSC_ENOMEM.
 */
int hsc_embeddings_request_json(const char *model, const char *const *texts, size_t n, char **body,
                                hsc_err *err);

/*
 * Parses a response into n vectors of dim floats (out[i] malloc'd, ordered
 * by "index"). A wrong count or dimension is an error naming what differs;
 * on any error every out[i] is NULL.
 */
int hsc_embeddings_parse(const char *body, size_t len, size_t n, int dim, float **out,
                         hsc_err *err);

/* Fills s from the embeddings.* keys, milvus.dimension, milvus.retries and backoff.*. */
void hsc_embeddings_settings_load(const hsc_config *cfg, struct hsc_embeddings_settings *s);

#endif
