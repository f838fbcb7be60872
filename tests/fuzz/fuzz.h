/*
 * Shared by the libFuzzer targets of tests/fuzz: the entry point every target
 * defines, a check that aborts (so libFuzzer reports the input as a crash),
 * and field-by-field equality of the message structs for the round-trip
 * checks decode(encode(decode(x))) == decode(x).
 */
#ifndef HSC_FUZZ_H
#define HSC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"

/* What each target implements; libFuzzer (or tests/fuzz/replay.c) calls it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition: a property the code promises does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A failed decode must say why: a known code and a non-empty message. */
#define FUZZ_CHECK_ERR(rc, err)                                                                    \
    FUZZ_CHECK(((rc) == HSC_EINVAL || (rc) == HSC_ENOMEM) && (err).code == (rc) && (err).msg[0])

static inline int fuzz_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* NULL and "" are the same where the encoder writes "" for NULL. */
static inline int fuzz_str_eq_empty(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static inline int fuzz_list_eq(const hsc_strlist *a, const hsc_strlist *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]))
            return 0;
    return 1;
}

/* Bit-for-bit, so -0.0 and NaN payloads count too. */
static inline int fuzz_double_eq(double a, double b)
{
    return !memcmp(&a, &b, sizeof(a));
}

#endif
