/*
 * Tests of common/transport/auth.c: a signature verifies for its own user and
 * deadline under its key and for nothing else (another user, deadline or
 * key, a cut or altered signature), it matches an HMAC-SHA256 computed
 * independently (openssl dgst), and input that could be read two ways is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth.h"

static void test_signature_binds_user_deadline_and_key(void **state)
{
    char sig[HSC_AUTH_HEX + 1];
    hsc_err err = {0};
    assert_int_equal(hsc_auth_sign("k3y", "user-1", "1796300000000", sig, &err), 0);
    assert_int_equal(strlen(sig), HSC_AUTH_HEX);
    /* printf 'hsc-auth-v1\nuser-1\n1796300000000' | openssl dgst -sha256 -hmac k3y */
    assert_string_equal(sig, "5d8795e0e776bddbab97cf2d9c925e650e17b719f9b7d71b1648b1201b18f7ca");
    assert_int_equal(hsc_auth_verify("k3y", "user-1", "1796300000000", sig, HSC_AUTH_HEX, &err), 0);
    assert_int_equal(hsc_auth_verify("k3y", "user-2", "1796300000000", sig, HSC_AUTH_HEX, &err),
                     HSC_EINVAL);
    assert_non_null(strstr(err.msg, HSC_HDR_AUTH));
    assert_int_equal(hsc_auth_verify("k3y", "user-1", "1796300000001", sig, HSC_AUTH_HEX, &err),
                     HSC_EINVAL);
    assert_int_equal(hsc_auth_verify("key", "user-1", "1796300000000", sig, HSC_AUTH_HEX, &err),
                     HSC_EINVAL);
    assert_int_equal(hsc_auth_verify("k3y", "user-1", "1796300000000", sig, 63, &err), HSC_EINVAL);
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    assert_int_equal(hsc_auth_verify("k3y", "user-1", "1796300000000", sig, HSC_AUTH_HEX, &err),
                     HSC_EINVAL);
    (void)state;
}

static void test_ambiguous_input_is_refused(void **state)
{
    char sig[HSC_AUTH_HEX + 1];
    hsc_err err = {0};
    assert_int_equal(hsc_auth_sign("k3y", "a\nb", "1", sig, &err), HSC_EINVAL);
    assert_int_equal(hsc_auth_sign("", "a", "1", sig, &err), HSC_ECONFIG);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_binds_user_deadline_and_key),
        cmocka_unit_test(test_ambiguous_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
