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
#include "hsc/search.h"

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

/* Reads a results array from an unpacked msgpack_object; *out is malloc'd even on error. */
int hsc_codec_unpack_results(const void *obj, hsc_search_result **out, size_t *n, hsc_err *err);

#endif
