/*
 * The hsc-auth signature (auth.h), with OpenSSL's HMAC. A user id or
 * deadline holding a newline is refused, so "v1\nuser\ndeadline" cannot be
 * read two ways.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static int digest(const char *key, const char *user, const char *deadline, unsigned char *md,
                  unsigned *mdlen, hsc_err *err)
{
    if (!key || !*key)
        return hsc_err_set(err, HSC_ECONFIG, "query.auth_key: empty");
    if (strchr(user, '\n') || strchr(deadline, '\n'))
        return hsc_err_set(err, HSC_EINVAL, "%s: a user id or deadline holds a newline",
                           HSC_HDR_AUTH);
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "hsc-auth-v1\n%s\n%s", user, deadline);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return hsc_err_set(err, HSC_EINVAL, "%s: user id too long to sign", HSC_HDR_AUTH);
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, (size_t)n, md,
              mdlen))
        return hsc_err_set(err, HSC_ENOMEM, "%s: HMAC failed", HSC_HDR_AUTH);
    return HSC_OK;
}

int hsc_auth_sign(const char *key, const char *user, const char *deadline, char *out, hsc_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int rc = digest(key, user, deadline, md, &len, err);
    if (rc)
        return rc;
    for (unsigned i = 0; i < len && i < HSC_AUTH_HEX / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[HSC_AUTH_HEX] = '\0';
    return HSC_OK;
}

int hsc_auth_verify(const char *key, const char *user, const char *deadline, const char *sig,
                    size_t len, hsc_err *err)
{
    char want[HSC_AUTH_HEX + 1];
    int rc = hsc_auth_sign(key, user, deadline, want, err);
    if (rc)
        return rc;
    if (len != HSC_AUTH_HEX || CRYPTO_memcmp(want, sig, HSC_AUTH_HEX))
        return hsc_err_set(err, HSC_EINVAL,
                           "%s: not a signature of this user and deadline under query.auth_key",
                           HSC_HDR_AUTH);
    return HSC_OK;
}
