/*
 * Normalisation of content events before they are stored: the canonical form
 * that every later stage, and every replay, sees.
 */
#ifndef HSC_NORMALIZE_H
#define HSC_NORMALIZE_H

#include <stddef.h>

#include "hsc/error.h"
#include "hsc/message.h"

/* Trims text, lower-cases and de-duplicates tags, drops self-references; in place. */
int hsc_normalize_content(hsc_content_event *ev, hsc_err *err);

/* Normalises one tag name in place: trim, collapse inner whitespace, ASCII lower-case. */
void hsc_normalize_tag(char *s);

/* Removes leading and trailing ASCII whitespace in place. */
void hsc_trim(char *s);

/*
 * Decodes a content message of at most max bytes (the limit's config key is
 * max_key, for the error), validates and normalises it into a new event.
 */
int hsc_content_from_message(const void *buf, size_t len, size_t max, const char *max_key,
                             hsc_content_event **out, hsc_err *err);

/* Frees an event made by hsc_content_from_message (NULL is fine). */
void hsc_content_free(hsc_content_event *ev);

/* True if a supersedes b: a higher version, or a delete at the same version. */
int hsc_content_supersedes(const hsc_content_event *a, const hsc_content_event *b);

/*
 * Marks winner[i] = 1 for the event of evs that wins for its id: the newest
 * (hsc_content_supersedes), the later arrival on a tie, so a replayed pair
 * keeps the newest arrival. A NULL entry takes no part. A store can then
 * write one row per id per batch, as upserts of one key must not repeat.
 */
void hsc_content_pick_winners(const hsc_content_event *const *evs, size_t n, int *winner);

#endif
