/*
 * What the codec's files share and no other module may use: the bounded
 * MessagePack field readers and writers (codec_msgpack.c) and the contract
 * checks shared by the MessagePack and JSON paths (codec_check.c). Every
 * message family (codec_content.c, codec_learning.c, codec_indexed.c,
 * codec_search_request.c, codec_search_reply.c, codec_policy.c) is built from
 * these; the public API stays include/hsc/codec.h. Every reader names the
 * field it was given in its error ("title: expected a string, got integer").
 */
#ifndef HSC_CODEC_INTERNAL_H
#define HSC_CODEC_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hsc/codec.h"

/* ---------- reading (codec_msgpack.c) ---------- */

/* The name of a MessagePack type as errors print it ("string", "integer"). */
const char *codec_type_name(msgpack_object_type t);

/* HSC_OK if o is of type t, else "field: expected <what>, got <type>". */
int codec_want(const char *field, const msgpack_object *o, msgpack_object_type t, const char *what,
               hsc_err *err);

/* Reads a string without NUL bytes into *out (malloc'd; a previous value is freed). */
int codec_get_str(const char *field, const msgpack_object *o, char **out, hsc_err *err);

/* Reads an integer within min..max. */
int codec_get_int(const char *field, const msgpack_object *o, int64_t min, int64_t max,
                  int64_t *out, hsc_err *err);

/* Reads an array of at most HSC_MAX_LIST_LEN strings into *out (cleared first). */
int codec_get_strlist(const char *field, const msgpack_object *o, hsc_strlist *out, hsc_err *err);

/* Reads "embedding": a bin of little-endian float32 (*out malloc'd, *dim floats). */
int codec_get_embedding(const msgpack_object *o, float **out, size_t *dim, hsc_err *err);

/* Reads a boolean. */
int codec_get_bool(const char *field, const msgpack_object *o, bool *out, hsc_err *err);

/* Reads a number (float or integer) as a double. */
int codec_get_num(const char *field, const msgpack_object *o, double *out, hsc_err *err);

/* True if the string object k is exactly name. */
int codec_key_is(const msgpack_object *k, const char *name);

/*
 * The index of key k among names (*idx = -1 for a non-string or unknown key);
 * a known key met twice is an error, checked with one bit per name in *seen
 * so a map is read in linear time. prefix ("filters.") starts the error.
 */
int codec_field_of(const msgpack_object *k, const char *const *names, int n, const char *prefix,
                   uint32_t *seen, int *idx, hsc_err *err);

/* How a key whose value needs no rule of its own is read (codec_read_map does it). */
enum codec_kind {
    CODEC_CUSTOM = 0, /* the map's field function reads it */
    CODEC_STR,        /* char * (codec_get_str) */
    CODEC_STRLIST,    /* hsc_strlist (codec_get_strlist) */
    CODEC_NUM,        /* double (codec_get_num) */
    CODEC_BOOL,       /* bool (codec_get_bool) */
    CODEC_INT64,      /* int64_t within the slot's min..max (codec_get_int) */
    CODEC_INT32,      /* int32_t or int, within min..max (which the caller keeps in range) */
};

/* Where a key's value goes: its kind and its offset in the decoded struct. */
struct codec_slot {
    enum codec_kind kind;
    size_t off;
    int64_t min, max; /* CODEC_INT64, CODEC_INT32 */
    unsigned flag;    /* set in the unsigned at flag_off once read (a presence bit), or 0 */
    size_t flag_off;
};

/* The slot of member of type, for a codec_map's slots table. */
/* clang-format off */
#define CODEC_SLOT(kind, type, member) {(kind), offsetof(type, member), 0, 0, 0, 0}

/* The slot of an integer member (kind CODEC_INT64 or CODEC_INT32) within min..max. */
#define CODEC_SLOT_INT(kind, type, member, min, max) \
    {(kind), offsetof(type, member), (min), (max), 0, 0}

/* The same, setting bit in the unsigned member has once read. */
#define CODEC_SLOT_INT_HAS(kind, type, member, min, max, bit, has) \
    {(kind), offsetof(type, member), (min), (max), (bit), offsetof(type, has)}
/* clang-format on */

/*
 * How a map's keys are read: its known keys (at most 32, one bit each in a
 * seen mask), their names in errors, what nil means, and which keys are read
 * by kind alone (into out at their offset) rather than by the field function.
 */
struct codec_map {
    const char *const *keys;
    const char *prefix;       /* the path of the map ("results[]."); NULL at the top */
    const char *const *names; /* keys with that path ("results[].id"); NULL: keys */
    int nkeys;
    uint32_t nil_absent; /* keys (bits) for which nil means absent: skipped */
    bool nil_unseen;     /* a skipped nil is not counted as present (nor as a repeat) */
    const char *strict;  /* a non-string key is an error naming this map; NULL: ignored */
    uint32_t required;   /* keys (bits) that must be present, checked in key order */
    const struct codec_slot *slots; /* nkeys entries, or NULL: every key is custom */
};

/* Reads the value of known key (its index) into out. */
typedef int (*codec_field_fn)(void *out, int key, const msgpack_object *val, hsc_err *err);

/*
 * Reads every known key of m with field, in the map's order, stopping at the
 * first error (field may be NULL when every key has a slot); unknown keys
 * are ignored, a known key twice is an error; then the first required key
 * missing is an error ("id: missing"). *seen
 * gets one bit per key present (start it at 0).
 */
int codec_read_map(const struct codec_map *spec, const msgpack_object_map *m, codec_field_fn field,
                   void *out, uint32_t *seen, hsc_err *err);

/* The first key of required (bits, in key order) not in seen: "key: missing". */
int codec_require(const struct codec_map *spec, uint32_t seen, uint32_t required, hsc_err *err);

/* The bit of key index k in a seen or required mask. */
#define CODEC_BIT(k) (1u << (k))

/*
 * How one message is decoded: its map, the field function for the keys
 * without a slot (NULL: none), then finish (NULL: none) for what needs every
 * key read (validation, checks across fields); clear empties out on failure.
 */
struct codec_message {
    const char *what; /* "content": errors about the message as a whole */
    const struct codec_map *map;
    codec_field_fn field;
    int (*finish)(void *out, uint32_t seen, hsc_err *err);
    void (*clear)(void *out);
};

/*
 * Defines the codec_message name for a struct that clear_fn (its typed
 * _clear) empties, with the void * adapter to clear_fn that the message
 * needs: written once here rather than beside every message.
 */
#define CODEC_MESSAGE(name, what, map, field, finish, clear_fn)                                    \
    static void name##_clear(void *out)                                                            \
    {                                                                                              \
        clear_fn(out);                                                                             \
    }                                                                                              \
    static const struct codec_message name = {(what), (map), (field), (finish), name##_clear}

/*
 * Checks buf against every bound (hsc_codec_check_bounds), unpacks it as one
 * map with string keys covering every byte, and reads it into out (which the
 * caller empties first) as msg says; on failure out is cleared.
 */
int codec_decode(const struct codec_message *msg, const void *buf, size_t len, void *out,
                 hsc_err *err);

/* ---------- writing (codec_msgpack.c) ---------- */

/* A message being encoded: a growing buffer and the packer writing into it. */
struct codec_out {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool lost; /* a write failed: the bytes in sb are incomplete */
};

/* Starts an empty message in o (o must not move until codec_finish). */
void codec_out_init(struct codec_out *o);

/* Hands the encoded bytes to the caller (*out malloc'd), or fails on lost memory. */
int codec_finish(struct codec_out *o, char **out, size_t *len, hsc_err *err);

/* Writes the map key k. */
void codec_pack_key(msgpack_packer *pk, const char *k);

/* Writes k and the string v. */
void codec_pack_str(msgpack_packer *pk, const char *k, const char *v);

/* Writes k and the array of strings l. */
void codec_pack_list(msgpack_packer *pk, const char *k, const hsc_strlist *l);

/* Writes k and the boolean v. */
void codec_pack_bool(msgpack_packer *pk, const char *k, bool v);

/* Writes k and v in the smallest integer form. */
void codec_pack_int(msgpack_packer *pk, const char *k, int64_t v);

/* Writes k and the float64 v. */
void codec_pack_double(msgpack_packer *pk, const char *k, double v);

/* Writes "embedding" and dim floats as a bin of little-endian float32. */
void codec_pack_embedding(msgpack_packer *pk, const float *v, size_t dim);

/* Reads "strategy", one of the names hsc_strategy_parse knows (codec_search_request.c). */
int codec_get_strategy(const msgpack_object *o, hsc_strategy *out, hsc_err *err);

/* ---------- contract checks (codec_check.c) ---------- */

/* True if s is one of the NULL-terminated set. */
int codec_one_of(const char *s, const char **set);

/* At most max bytes of valid UTF-8. */
int codec_check_text(const char *field, const char *s, size_t max, hsc_err *err);

/* Present and 1-128 characters of [A-Za-z0-9._:-]. */
int codec_check_id(const char *field, const char *s, hsc_err *err);

/* At most HSC_MAX_LIST_LEN tags of at most HSC_MAX_TAG_LEN bytes of UTF-8. */
int codec_check_tags(const char *field, const hsc_strlist *l, hsc_err *err);

/* Every entry a valid id ("field[i]: must be 1-128 of ..."); no length bound. */
int codec_check_ids(const char *field, const hsc_strlist *l, hsc_err *err);

/* At most HSC_MAX_LIST_LEN entries, each checked by codec_check_id. */
int codec_check_id_list(const char *field, const hsc_strlist *l, hsc_err *err);

/* The schema version this build reads and writes (HSC_SCHEMA_VERSION). */
int codec_check_version(int v, hsc_err *err);

/*
 * What every versioned record starts with (content, policy): the schema
 * version v, its key id_field = id, and a version that is not negative.
 */
int codec_check_versioned(int v, const char *id_field, const char *id, int64_t version,
                          hsc_err *err);

/* A two-letter ISO 639-1 code (either case). */
int codec_check_language(const char *field, const char *l, hsc_err *err);

#endif
