/*
 * JSON arrays of strings, the one list shape the store requests carry (ids
 * for Milvus, texts for the embeddings endpoint, genres and ids as Neo4j
 * parameters): written once here.
 */
#ifndef HSC_JSON_LIST_H
#define HSC_JSON_LIST_H

#include <jansson.h>
#include <stddef.h>

#include "hsc/message.h"

/* A JSON array of the n strings of v (a new reference; NULL when out of memory). */
json_t *hsc_json_strings(const char *const *v, size_t n);

/* A string list as a JSON array (a new reference; NULL when out of memory). */
json_t *hsc_json_strlist(const hsc_strlist *l);

#endif
