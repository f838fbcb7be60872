/*
 * Building MessagePack test messages field by field, for the codec's unit
 * tests (include after cmocka.h and msgpack.h): a value of any kind, and the
 * smallest valid ContentEvent to change one field of.
 */
#ifndef HSC_TEST_CODEC_CASES_H
#define HSC_TEST_CODEC_CASES_H

#include <string.h>

enum vkind { V_INT, V_UINT, V_STR, V_STRN, V_NIL, V_ARRAY_STR, V_BIN, V_ARRAY_INT, V_MAP, V_FLOAT };
struct val {
    enum vkind k;
    long long i;
    const char *s;
    size_t n;
    double f;
};

struct field {
    const char *key;
    struct val v;
};

static void pack_val(msgpack_packer *pk, const struct val *v)
{
    switch (v->k) {
    case V_INT:
        msgpack_pack_int64(pk, v->i);
        break;
    case V_UINT:
        msgpack_pack_uint64(pk, (uint64_t)v->i);
        break;
    case V_FLOAT:
        msgpack_pack_double(pk, v->f);
        break;
    case V_STR:
        msgpack_pack_str(pk, strlen(v->s));
        msgpack_pack_str_body(pk, v->s, strlen(v->s));
        break;
    case V_STRN:
        msgpack_pack_str(pk, v->n);
        msgpack_pack_str_body(pk, v->s, v->n);
        break;
    case V_NIL:
        msgpack_pack_nil(pk);
        break;
    case V_ARRAY_STR:
        msgpack_pack_array(pk, v->n);
        for (size_t i = 0; i < v->n; i++) {
            msgpack_pack_str(pk, strlen(v->s));
            msgpack_pack_str_body(pk, v->s, strlen(v->s));
        }
        break;
    case V_ARRAY_INT:
        msgpack_pack_array(pk, v->n);
        for (size_t i = 0; i < v->n; i++)
            msgpack_pack_int(pk, (int)i);
        break;
    case V_BIN:
        msgpack_pack_bin(pk, v->n);
        msgpack_pack_bin_body(pk, v->s, v->n);
        break;
    case V_MAP:
        msgpack_pack_map(pk, 1);
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "x", 1);
        msgpack_pack_int(pk, 1);
        break;
    }
}

static const struct field BASE_CONTENT[] = {
    {"v", {V_INT, 1, NULL, 0, 0}},          {"op", {V_STR, 0, "upsert", 0, 0}},
    {"id", {V_STR, 0, "t1", 0, 0}},         {"version", {V_INT, 3, NULL, 0, 0}},
    {"title", {V_STR, 0, "A title", 0, 0}},
};

#endif
