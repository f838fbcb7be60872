/*
 * MessagePack encoding and strict decoding of hsc's messages. Decoding checks
 * types, ranges and required keys, ignores unknown keys, and reports the first
 * problem as "field: reason". Encoding writes keys in one canonical order with
 * the smallest integer forms, so decode(encode(x)) == x and golden examples
 * re-encode byte for byte.
 */
#ifndef HSC_CODEC_H
#define HSC_CODEC_H

#include <stddef.h>

#include "hsc/error.h"
#include "hsc/message.h"
#include "hsc/policy_event.h"
#include "hsc/search.h"

/*
 * Bounds on every decoded message, checked in one pass over its bytes before
 * anything is allocated, so decoding is linear in the input and no message
 * can make a worker allocate more than a small multiple of its size. The
 * field rules (HSC_MAX_* in message.h, HSC_SEARCH_K_MAX) are checked as each
 * field is read. Documented in schemas/README.md, "Limits".
 */
#define HSC_CODEC_MAX_MESSAGE_BYTES (1024 * 1024)           /* Kafka's default message.max.bytes */
#define HSC_CODEC_MAX_MAP_ENTRIES 256                       /* entries of any map */
#define HSC_CODEC_MAX_ARRAY_LEN HSC_SEARCH_K_MAX            /* elements of any array (results) */
#define HSC_CODEC_MAX_STR_BYTES 65536                       /* any string or ext value */
#define HSC_CODEC_MAX_BIN_BYTES (4 * HSC_MAX_EMBEDDING_DIM) /* any bin (an embedding) */
#define HSC_CODEC_MAX_KEY_BYTES 64                          /* any map key */
#define HSC_CODEC_MAX_DEPTH 8                               /* nested maps and arrays */

/*
 * Checks that buf is one MessagePack value within every bound above, in one
 * pass and without allocating (every decoder here does this first); for
 * callers that hand other MessagePack, such as cache entries, to msgpack-c.
 * what names the value in errors ("cache entry: map of 300 entries exceeds 256").
 */
int hsc_codec_check_bounds(const void *buf, size_t len, const char *what, hsc_err *err);

/* Decodes and validates a ContentEvent; on failure ev is left empty. */
int hsc_codec_decode_content(const void *buf, size_t len, hsc_content_event *ev, hsc_err *err);

/* Checks a ContentEvent built in memory (by the JSON reader, say) against the contract. */
int hsc_codec_validate_content(const hsc_content_event *ev, hsc_err *err);

/* Encodes ev; *out is malloc'd and owned by the caller. Validates first. */
int hsc_codec_encode_content(const hsc_content_event *ev, char **out, size_t *len, hsc_err *err);

/* Decodes and validates a LearningEvent; on failure ev is left empty. */
int hsc_codec_decode_learning(const void *buf, size_t len, hsc_learning_event *ev, hsc_err *err);

/* Checks a LearningEvent built in memory against the contract. */
int hsc_codec_validate_learning(const hsc_learning_event *ev, hsc_err *err);

/* Encodes ev; *out is malloc'd and owned by the caller. Validates first. */
int hsc_codec_encode_learning(const hsc_learning_event *ev, char **out, size_t *len, hsc_err *err);

/* Decodes and validates an IndexedRecord; on failure r is left empty. */
int hsc_codec_decode_indexed(const void *buf, size_t len, hsc_indexed_record *r, hsc_err *err);

/* Encodes r; *out is malloc'd and owned by the caller. */
int hsc_codec_encode_indexed(const hsc_indexed_record *r, char **out, size_t *len, hsc_err *err);

/* Decodes and validates a SearchRequest (defaults filled in); on failure r is left empty. */
int hsc_codec_decode_search_request(const void *buf, size_t len, hsc_search_request *r,
                                    hsc_err *err);

/* Encodes r; *out is malloc'd and owned by the caller. */
int hsc_codec_encode_search_request(const hsc_search_request *r, char **out, size_t *len,
                                    hsc_err *err);

/* Decodes a SearchReply; on failure r is left empty. */
int hsc_codec_decode_search_reply(const void *buf, size_t len, hsc_search_reply *r, hsc_err *err);

/* Encodes r; *out is malloc'd and owned by the caller. */
int hsc_codec_encode_search_reply(const hsc_search_reply *r, char **out, size_t *len, hsc_err *err);

/* Packs a results array onto a msgpack_packer (the form the query cache stores). */
void hsc_codec_pack_results(void *packer, const hsc_search_result *res, size_t n);

/*
 * Reads a results array (at most HSC_CODEC_MAX_ARRAY_LEN) from an unpacked
 * msgpack_object; *out is malloc'd or NULL, even on error: free it (and its
 * *n results) either way.
 */
int hsc_codec_unpack_results(const void *obj, hsc_search_result **out, size_t *n, hsc_err *err);

/* Decodes and validates a PolicyEvent (hsc.policy.events); on failure ev is left empty. */
int hsc_codec_decode_policy(const void *buf, size_t len, hsc_policy_event *ev, hsc_err *err);

/* Checks a PolicyEvent built in memory (by `hsc policy set`, say) against the contract. */
int hsc_codec_validate_policy(const hsc_policy_event *ev, hsc_err *err);

/* Encodes ev; *out is malloc'd and owned by the caller. Validates first. */
int hsc_codec_encode_policy(const hsc_policy_event *ev, char **out, size_t *len, hsc_err *err);

#endif
