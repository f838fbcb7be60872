/* hsc_err: the error value every module fills for its caller. */
#include "hsc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A new error says nothing of the server that an earlier one in the same struct named. */
static void clear_server_part(hsc_err *err)
{
    err->http_status = 0;
    err->curl_code = 0;
    err->server_code = 0;
    err->server_status[0] = '\0';
    err->not_found = 0;
}

int hsc_err_set(hsc_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        clear_server_part(err);
    }
    return code;
}

void hsc_err_prefix(hsc_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char buf[sizeof(err->msg) * 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(err->msg), fmt, ap);
    va_end(ap);
    size_t plen = n < 0 ? 0 : (size_t)n >= sizeof(err->msg) ? sizeof(err->msg) - 1 : (size_t)n;
    size_t mlen = strnlen(err->msg, sizeof(err->msg) - 1);
    memcpy(buf + plen, err->msg, mlen);
    size_t total = plen + mlen < sizeof(err->msg) - 1 ? plen + mlen : sizeof(err->msg) - 1;
    memcpy(err->msg, buf, total);
    err->msg[total] = '\0';
}

void hsc_err_clear(hsc_err *err)
{
    if (err) {
        err->code = HSC_OK;
        err->msg[0] = '\0';
        clear_server_part(err);
    }
}

const char *hsc_code_name(int code)
{
    switch (code) {
    case HSC_OK:
        return "ok";
    case HSC_EINVAL:
        return "invalid";
    case HSC_ETRANSIENT:
        return "transient";
    case HSC_ENOMEM:
        return "nomem";
    case HSC_ECONFIG:
        return "config";
    case HSC_EIO:
        return "io";
    case HSC_ETIMEDOUT:
        return "timeout";
    case HSC_ENOTFOUND:
        return "notfound";
    case HSC_ECANCELED:
        return "canceled";
    }
    return "unknown";
}
