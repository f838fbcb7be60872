/*
 * Reads a Kafka message's headers, whole or not at all: a value too long or
 * holding a NUL byte is reported, never cut.
 */
#include "kafka.h"

#include <limits.h>
#include <string.h>

int hsc_kafka_header_get(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap,
                         hsc_err *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return -1;
    const void *v;
    size_t n;
    if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    /* A value is rejected whole, never cut: a truncated id or topic is another id or topic. */
    if (n >= cap || n > INT_MAX) {
        hsc_err_set(err, HSC_EINVAL, "header %s: %zu bytes do not fit in %zu", name, n,
                    cap ? cap - 1 : 0);
        return -2;
    }
    if (n && memchr(v, '\0', n)) {
        hsc_err_set(err, HSC_EINVAL, "header %s: value contains a NUL byte", name);
        return -2;
    }
    if (n)
        memcpy(buf, v, n);
    buf[n] = '\0';
    return (int)n;
}

int hsc_kafka_header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap)
{
    return hsc_kafka_header_get(rkm, name, buf, cap, NULL);
}
