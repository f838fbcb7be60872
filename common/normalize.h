/*
 * Normalisation of content events before they are stored: the canonical form
 * that every later stage, and every replay, sees.
 */
#ifndef HSC_NORMALIZE_H
#define HSC_NORMALIZE_H

#include "hsc/error.h"
#include "hsc/message.h"

/* Trims text, lower-cases and de-duplicates tags, drops self-references; in place. */
int hsc_normalize_content(hsc_content_event *ev, hsc_err *err);

/* Normalises one tag name in place: trim, collapse inner whitespace, ASCII lower-case. */
void hsc_normalize_tag(char *s);

/* Removes leading and trailing ASCII whitespace in place. */
void hsc_trim(char *s);

#endif
