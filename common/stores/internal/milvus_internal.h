/*
 * What the files of the Milvus client share and nobody else uses: the field
 * names of the two dialects and the small JSON helpers of the request
 * builders (milvus.c, milvus_filter.c, milvus_request.c, milvus_response.c).
 */
#ifndef HSC_MILVUS_INTERNAL_H
#define HSC_MILVUS_INTERNAL_H

#include <jansson.h>

#include "milvus.h"

/* Floats with 9 significant digits: every float32 comes back bit for bit. */
#define MILVUS_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* v1 servers keep the content id in this dynamic field (their key is automatic). */
#define MILVUS_V1_ID_FIELD "content_id"
#define MILVUS_V1_PK_FIELD "pk"
#define MILVUS_VEC_FIELD "embedding"

/* The field holding the content id in dialect d. */
#define MILVUS_ID_FIELD(d) ((d) == HSC_MILVUS_V1 ? MILVUS_V1_ID_FIELD : "id")

/* True if f is a field or collection name: a letter or '_', then letters, digits, '_'. */
int hsc_milvus__name_ok(const char *f);

/*
 * The filter `id in [ids]` of dialect d into *out (malloc'd). An id with a
 * control character is HSC_EINVAL, no memory HSC_ENOMEM; what names the
 * request in the error ("delete").
 */
int hsc_milvus__id_filter(hsc_milvus_dialect d, const char *const *ids, size_t n, const char *what,
                          char **out, hsc_err *err);

/* A new request object holding the collection's name (NULL when out of memory). */
json_t *hsc_milvus__base(const char *collection);

/*
 * o (NULL when it could not be made) as compact JSON text into *out
 * (malloc'd); releases o. lost != 0 says a part of o could not be added.
 * Either way a failure is HSC_ENOMEM naming the request ("milvus search").
 */
int hsc_milvus__dump(json_t *o, int lost, const char *what, char **out, hsc_err *err);

#endif
