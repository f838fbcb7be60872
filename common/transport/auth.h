/*
 * Who may ask as a user: an HMAC-SHA256, under a key shared by the clients
 * allowed to and hsc-query, over the request's user id and deadline, carried
 * in the hsc-auth header. A writer of the request topic without the key can
 * still search anonymously, but not as a user of its choosing, and a signed
 * request cannot be replayed once its deadline has passed.
 */
#ifndef HSC_AUTH_H
#define HSC_AUTH_H

#include <stddef.h>

#include "hsc/error.h"

/* The header a signed request carries. */
#define HSC_HDR_AUTH "hsc-auth"

/* Hex digits of a signature, without the NUL. */
#define HSC_AUTH_HEX 64

/*
 * Signs (user, deadline) under key into out (HSC_AUTH_HEX + 1 bytes): the
 * lower-case hex HMAC-SHA256 of "hsc-auth-v1\n" user "\n" deadline.
 */
int hsc_auth_sign(const char *key, const char *user, const char *deadline, char *out, hsc_err *err);

/*
 * 0 if sig (len bytes, from a header) is (user, deadline)'s signature under
 * key, compared in constant time; else an HSC_EINVAL naming the header.
 */
int hsc_auth_verify(const char *key, const char *user, const char *deadline, const char *sig,
                    size_t len, hsc_err *err);

#endif
