/*
 * JSON to message structs, for `hsc publish` and the sample data: the same
 * keys as the MessagePack contract, with the embedding as an array of numbers.
 */
#ifndef HSC_JSON_EVENT_H
#define HSC_JSON_EVENT_H

#include <stddef.h>

#include "hsc/error.h"
#include "hsc/message.h"

/* Parses one JSON object into a validated ContentEvent ("v" defaults to 1). */
int hsc_json_to_content(const char *text, size_t len, hsc_content_event *ev, hsc_err *err);

/* Parses one JSON object into a validated LearningEvent ("v" defaults to 1). */
int hsc_json_to_learning(const char *text, size_t len, hsc_learning_event *ev, hsc_err *err);

#endif
