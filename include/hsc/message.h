/*
 * The messages that travel on hsc's topics, as plain structs. The wire form
 * is MessagePack (see codec.h and schemas/README.md); these structs are what
 * every stage works on after decoding.
 */
#ifndef HSC_MESSAGE_H
#define HSC_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Schema version written into every message's "v". */
#define HSC_SCHEMA_VERSION 1

/* Limits enforced by validation, so one message cannot exhaust a worker. */
#define HSC_MAX_ID_LEN 128
#define HSC_MAX_TITLE_LEN 1024
#define HSC_MAX_DESCRIPTION_LEN 16384
#define HSC_MAX_TAG_LEN 128
#define HSC_MAX_LIST_LEN 256
#define HSC_MAX_EMBEDDING_DIM 8192

/* A list of owned strings (genres, themes, moods, related ids). */
typedef struct hsc_strlist {
    char **v;
    size_t n;
} hsc_strlist;

/* What a content event asks for. */
typedef enum hsc_content_op { HSC_OP_UPSERT = 0, HSC_OP_DELETE = 1 } hsc_content_op;

/* Bits of hsc_content_event.has for the optional integer fields. */
enum {
    HSC_HAS_YEAR = 1 << 0,
    HSC_HAS_MATURITY = 1 << 1,
    HSC_HAS_DURATION = 1 << 2,
    HSC_HAS_TS = 1 << 3,
};

/* A title was created, changed or deleted (hsc.content.events and its successors). */
typedef struct hsc_content_event {
    int v;
    hsc_content_op op;
    char *id;
    int64_t version;
    char *title;       /* required for upsert */
    char *description; /* optional */
    char *kind;        /* "movie" | "series" | "episode", optional */
    hsc_strlist genres, themes, moods, related;
    char *language; /* ISO 639-1, lower case, optional */
    unsigned has;   /* HSC_HAS_* bits */
    int32_t year;
    int32_t maturity;
    int64_t duration_s;
    float *embedding; /* dim floats, or NULL */
    size_t dim;
    int64_t ts;
} hsc_content_event;

/* What a user did with a title (hsc.learning.events). */
typedef struct hsc_learning_event {
    int v;
    char *user_id;
    char *content_id;
    char *kind; /* view | like | dislike | skip | complete | rating */
    bool has_value;
    double value; /* rating 0-5, completion 0-1 */
    int64_t ts;
} hsc_learning_event;

/* What embed-index did with one content event (hsc.content.indexed). */
typedef struct hsc_indexed_record {
    int v;
    char *id;
    int64_t version;
    hsc_content_op op;
    bool indexed;         /* the vector store now reflects this event */
    char *reason;         /* why not, when !indexed (e.g. "no embedding") */
    int64_t epoch;        /* the catalogue epoch after the write (0 when not indexed) */
    int32_t dim;          /* the embedding's dimension (0 for a delete) */
    int64_t ts;           /* when it was indexed, epoch ms */
    int64_t published_ts; /* the content event's ts (its publish time), epoch ms; 0: unknown */
} hsc_indexed_record;

/* Frees every field of r (not r itself) and zeroes it. */
void hsc_indexed_record_clear(hsc_indexed_record *r);

/* Frees every field of ev (not ev itself) and zeroes it. */
void hsc_content_event_clear(hsc_content_event *ev);

/* Frees every field of ev (not ev itself) and zeroes it. */
void hsc_learning_event_clear(hsc_learning_event *ev);

/* Frees the strings of l and zeroes it. */
void hsc_strlist_clear(hsc_strlist *l);

/* Appends a copy of s (n bytes) to l; returns 0 or HSC_ENOMEM. */
int hsc_strlist_push(hsc_strlist *l, const char *s, size_t n);

#endif
