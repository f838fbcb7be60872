/*
 * A change to one user's policy (hsc.policy.events), as a plain struct: set
 * or clear hard constraints and explicit preference weights, block or
 * unblock titles, or erase the user. The wire form is MessagePack (codec.h,
 * schemas/README.md "PolicyEvent").
 */
#ifndef HSC_POLICY_EVENT_H
#define HSC_POLICY_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hsc/message.h"

/* What a policy event asks for. */
typedef enum hsc_policy_op {
    HSC_POLICY_SET = 0, /* set and/or clear fields */
    HSC_POLICY_BLOCK,   /* add ids to the blocked titles */
    HSC_POLICY_UNBLOCK, /* remove ids from the blocked titles */
    HSC_POLICY_ERASE,   /* forget the user: policy, preferences, learning events, cache */
} hsc_policy_op;

/* The fields of a policy a "set" event may set or clear (bits of set/clear). */
enum {
    HSC_POLICY_EXCLUDED_GENRES = 1 << 0,
    HSC_POLICY_MAX_MATURITY = 1 << 1,
    HSC_POLICY_LANGUAGES = 1 << 2,
    HSC_POLICY_BLOCKED_IDS = 1 << 3,
    HSC_POLICY_PREFS = 1 << 4,
};

/* The most blocked titles one user keeps (a block beyond it drops the oldest). */
#define HSC_POLICY_MAX_BLOCKED 1000

/* The bound on an explicit preference weight's magnitude. */
#define HSC_POLICY_MAX_WEIGHT 100.0

/* One explicit preference weight of a genre or a theme. */
typedef struct hsc_policy_pref {
    int theme; /* 0: genre, 1: theme */
    char *name;
    double weight; /* -100..100; 0 removes the explicit weight */
} hsc_policy_pref;

/* One change to a user's policy. */
typedef struct hsc_policy_event {
    int v;
    char *user_id;
    int64_t version; /* per user; older or repeated versions are ignored */
    hsc_policy_op op;
    unsigned set;   /* HSC_POLICY_* fields this event sets (op set) */
    unsigned clear; /* HSC_POLICY_* fields this event clears (op set) */
    hsc_strlist excluded_genres;
    int32_t max_maturity;    /* 0..21 */
    hsc_strlist languages;   /* ISO 639-1 codes */
    hsc_strlist blocked_ids; /* replaces the blocked titles */
    hsc_policy_pref *prefs;  /* merged into the explicit weights by (dim, name) */
    size_t nprefs;
    hsc_strlist ids; /* op block / unblock */
    bool has_ts;
    int64_t ts; /* epoch ms when the producer made the event */
} hsc_policy_event;

/* Frees every field of ev (not ev itself) and zeroes it. */
void hsc_policy_event_clear(hsc_policy_event *ev);

/* The wire name of op ("set", "block", "unblock", "erase"). */
const char *hsc_policy_op_name(hsc_policy_op op);

/* The wire name of one HSC_POLICY_* field bit ("excluded_genres", ...), or NULL. */
const char *hsc_policy_field_name(unsigned bit);

#endif
