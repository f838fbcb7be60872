/*
 * JSON arrays of strings, the one list shape the store requests carry (ids
 * for Milvus, texts for the embeddings endpoint, genres and ids as Neo4j
 * parameters), and the dump that turns a request into its body: written once
 * here.
 */
#ifndef HSC_JSON_LIST_H
#define HSC_JSON_LIST_H

#include <jansson.h>
#include <stddef.h>

#include "hsc/message.h"

/* A JSON array of the n strings of v (a new reference; NULL when out of memory or a
 * string is not UTF-8: never a shorter list). */
json_t *hsc_json_strings(const char *const *v, size_t n);

/* A string list as a JSON array (a new reference; NULL when out of memory). */
json_t *hsc_json_strlist(const hsc_strlist *l);

/*
 * o as JSON text written with jansson's flags (malloc'd), or NULL when out of
 * memory. Not json_dumps: when its buffer cannot grow it can leave out an
 * object's key and still return text; here every piece is checked.
 */
char *hsc_json_dump(const json_t *o, size_t flags);

#endif
