/*
 * libFuzzer target: the request parser of the metrics endpoints' HTTP server
 * (hsc_httpd_parse_request in common/core/metrics.c), the only part of a worker
 * that reads from the network directly. Any bytes give a documented status;
 * a 200 is a GET or HEAD of a clean origin-form path; and because the server
 * parses as bytes arrive, a status decided on a prefix that ends a line is
 * the one the whole input gives (for input without NUL bytes, which is
 * refused wherever it appears).
 */
#include "fuzz.h"
#include "metrics.h"

static int known_status(int s)
{
    return s == 0 || s == 200 || s == 400 || s == 405 || s == 414 || s == 431 || s == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct hsc_httpd_request req;
    int whole = hsc_httpd_parse_request(buf, size, &req);
    FUZZ_CHECK(known_status(whole));
    if (whole == 200) {
        FUZZ_CHECK(!strcmp(req.method, "GET") || !strcmp(req.method, "HEAD"));
        FUZZ_CHECK(req.head == !strcmp(req.method, "HEAD"));
        FUZZ_CHECK(req.path[0] == '/' && memchr(req.path, 0, sizeof(req.path)));
        for (const char *p = req.path; *p; p++)
            FUZZ_CHECK(*p > ' ' && *p < 0x7f && *p != '?' && *p != '#');
    }
    if (whole == 405)
        FUZZ_CHECK(req.method[0] && memchr(req.method, 0, sizeof(req.method)));
    if (memchr(buf, 0, size))
        return 0;
    size_t end = size < HSC_HTTPD_MAX_REQUEST ? size : HSC_HTTPD_MAX_REQUEST;
    for (size_t k = 0; k < end; k++) {
        if (buf[k] != '\n')
            continue;
        int part = hsc_httpd_parse_request(buf, k + 1, &req);
        FUZZ_CHECK(known_status(part));
        if (part)
            FUZZ_CHECK(part == whole);
    }
    return 0;
}
