/*
 * Sends a message that cannot be processed to the dead-letter topic, with
 * headers naming the stage, the error and where the message came from.
 */
#include "kafka.h"

#include "util.h"

#define DLQ_MAX_PAYLOAD (512 * 1024)

int hsc_dlq_send(hsc_producer *p, const char *dlq_topic, const char *stage,
                 const rd_kafka_message_t *rkm, const hsc_err *why, hsc_delivery_fn cb, void *arg,
                 hsc_err *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_headers_t *src = NULL;
    if (rd_kafka_message_headers(rkm, &src) == RD_KAFKA_RESP_ERR_NO_ERROR && src)
        hdrs = rd_kafka_headers_copy(src); /* keep the producer's own headers */
    else
        hdrs = rd_kafka_headers_new(8);
    char num[32];
    rd_kafka_header_add(hdrs, "hsc-stage", -1, stage, -1);
    rd_kafka_header_add(hdrs, "hsc-error", -1, why->msg, -1);
    rd_kafka_header_add(hdrs, "hsc-error-code", -1, hsc_code_name(why->code), -1);
    rd_kafka_header_add(hdrs, "hsc-source-topic", -1, rd_kafka_topic_name(rkm->rkt), -1);
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    rd_kafka_header_add(hdrs, "hsc-source-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)rkm->offset);
    rd_kafka_header_add(hdrs, "hsc-source-offset", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)hsc_now_ms());
    rd_kafka_header_add(hdrs, "hsc-dlq-ts", -1, num, -1);
    size_t len = rkm->len;
    if (len > DLQ_MAX_PAYLOAD) {
        /* Keep the head for diagnosis; the source offset locates the whole message. */
        snprintf(num, sizeof(num), "%zu", len);
        rd_kafka_header_add(hdrs, "hsc-truncated-from", -1, num, -1);
        len = DLQ_MAX_PAYLOAD;
    }
    int rc = hsc_producer_send(p, dlq_topic, RD_KAFKA_PARTITION_UA, rkm->key, rkm->key_len,
                               rkm->payload, len, hdrs, cb, arg, err);
    if (rc)
        rd_kafka_headers_destroy(hdrs);
    return rc;
}
