/*
 * Kafka on a libev loop. Each librdkafka handle's queue is bound to a pipe
 * (rd_kafka_queue_io_event_enable), and the loop drains the queue when the
 * pipe turns readable, so delivery reports, rebalances and messages are all
 * served from the loop's thread. Configuration comes from hsc_config:
 * kafka.brokers and kafka.client_id, then the [rdkafka] pass-through section,
 * then [rdkafka.consumer] or [rdkafka.producer]. One header for the Kafka
 * files: kafka_conf.c, kafka_wake.c (the pipe), kafka_producer.c,
 * kafka_consumer.c, kafka_commit_meta.c, kafka_headers.c and kafka_dlq.c.
 */
#ifndef HSC_KAFKA_H
#define HSC_KAFKA_H

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "hsc/error.h"

/* A producer whose delivery reports are served on the loop. */
typedef struct hsc_producer hsc_producer;

/*
 * Called once per sent message from the loop: code is HSC_OK or why it
 * failed. rkm is NULL for a message that was never handed to librdkafka.
 */
typedef void (*hsc_delivery_fn)(void *arg, int code, const char *errstr,
                                const rd_kafka_message_t *rkm);

/* Creates an idempotent producer (acks=all) on loop. */
hsc_producer *hsc_producer_new(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err);

/* The same without batching delay (linger.ms 0), for request/reply traffic. */
hsc_producer *hsc_producer_new_interactive(struct ev_loop *loop, const hsc_config *cfg,
                                           hsc_err *err);

/*
 * A producer for replies, at most once: no retry and no idempotence, so a
 * reply is never written twice, and one still queued at its deadline
 * (hsc_producer_send_by) can be withdrawn.
 */
hsc_producer *hsc_producer_new_replies(struct ev_loop *loop, const hsc_config *cfg, hsc_err *err);

/*
 * Sends value to topic (partition -1: by key). hdrs (may be NULL) is owned by
 * the producer once this returns 0. Returns an error now (cb never called) or
 * 0 and calls cb exactly once, later, from the loop (delivery reports are
 * never served inside this call: when librdkafka's queue is full the message
 * is kept here and handed over from the loop as room is made).
 */
int hsc_producer_send(hsc_producer *p, const char *topic, int32_t partition, const void *key,
                      size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                      hsc_delivery_fn cb, void *arg, hsc_err *err);

/*
 * hsc_producer_send with a deadline (epoch ms, 0: none): a message not yet
 * handed to a broker when it passes is withdrawn and reported with
 * HSC_ETIMEDOUT, so it can never arrive after it. A message already sent is
 * not recalled; librdkafka has no per-message timeout, so the withdrawal
 * purges every queued message and sends the others again (only safe on a
 * producer from hsc_producer_new_replies: the idempotent ones forbid gaps).
 */
int hsc_producer_send_by(hsc_producer *p, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *hdrs,
                         int64_t deadline_ms, hsc_delivery_fn cb, void *arg, hsc_err *err);

/* Waits up to timeout_ms for every sent message's report; returns messages still queued. */
int hsc_producer_flush(hsc_producer *p, int timeout_ms);

/* Messages sent and not yet reported. */
int hsc_producer_outstanding(const hsc_producer *p);

/* The librdkafka handle (for metadata and admin calls). */
rd_kafka_t *hsc_producer_handle(hsc_producer *p);

/* Flushes (bounded by 10 s) and destroys p. */
void hsc_producer_free(hsc_producer *p);

/* A group consumer whose messages and rebalances are served on the loop. */
typedef struct hsc_consumer hsc_consumer;

/* What a consumer's owner is told; any callback may be NULL. */
struct hsc_consumer_handlers {
    /* A message (or a consumer error in rkm->err); the callee owns rkm. */
    void (*on_message)(void *arg, rd_kafka_message_t *rkm);
    /* Partitions newly assigned (after they are assigned). */
    void (*on_assign)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    /* Partitions about to be revoked (before they are unassigned). */
    void (*on_revoke)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    /* 0 stops the drain loop for now; the owner calls hsc_consumer_poll later. */
    int (*can_accept)(void *arg);
};

/*
 * Creates a consumer in group for topics, with cooperative-sticky assignment,
 * auto-commit of explicitly stored offsets only, and earliest reset.
 */
hsc_consumer *hsc_consumer_new(struct ev_loop *loop, const hsc_config *cfg, const char *group,
                               const char *const *topics, size_t ntopics,
                               const struct hsc_consumer_handlers *h, void *arg, hsc_err *err);

/*
 * Creates a consumer of one partition without a group (a reply inbox): it
 * starts at the partition's current end, read synchronously here so that
 * nothing produced after this returns is missed, and commits nothing.
 */
hsc_consumer *hsc_consumer_new_partition(struct ev_loop *loop, const hsc_config *cfg,
                                         const char *topic, int32_t partition,
                                         const struct hsc_consumer_handlers *h, void *arg,
                                         hsc_err *err);

/*
 * Drains messages now (the owner calls this after making room). Called from
 * inside a handler it returns at once: the drain already running sees the
 * room, so a backlog of messages that each finish at once never recurses.
 */
void hsc_consumer_poll(hsc_consumer *c);

/* Pauses (1) or resumes (0) fetching on every assigned partition, now and on later assigns. */
void hsc_consumer_set_paused(hsc_consumer *c, int paused);

/* True if fetching is paused. */
int hsc_consumer_paused(const hsc_consumer *c);

/* Marks offsets (next offset to read) as done; auto-commit sends them. */
int hsc_consumer_store(hsc_consumer *c, rd_kafka_topic_partition_list_t *offsets, hsc_err *err);

/*
 * Commits offsets (with their metadata) synchronously, or what is stored if
 * offsets is NULL; for a rebalance callback, before the partitions go.
 */
int hsc_consumer_commit_sync(hsc_consumer *c, const rd_kafka_topic_partition_list_t *offsets,
                             hsc_err *err);

/* Reads the group's committed offsets and metadata of parts, blocking up to timeout_ms. */
int hsc_consumer_committed(hsc_consumer *c, rd_kafka_topic_partition_list_t *parts, int timeout_ms,
                           hsc_err *err);

/*
 * Offsets above a committed one that a commit's metadata names, as
 * "hsc1:" and their ascending distances from it ("hsc1:0,3,4"): what a
 * member answered beyond its first unanswered offset when it gave a
 * partition up. Parses meta (n bytes, from the broker: any bytes at all)
 * into out (cap entries) as base + distance; returns how many, 0 if meta is
 * not of that form (nothing is skipped on damaged metadata).
 */
size_t hsc_kafka_meta_offsets_parse(const char *meta, size_t n, int64_t base, int64_t *out,
                                    size_t cap);

/*
 * Formats offs (n, ascending, each >= base) as above into buf (cap bytes,
 * NUL-terminated); returns how many fit; *len is the text's length.
 */
size_t hsc_kafka_meta_offsets_format(char *buf, size_t cap, int64_t base, const int64_t *offs,
                                     size_t n, size_t *len);

/* Commits stored offsets synchronously, then leaves the group. */
void hsc_consumer_close(hsc_consumer *c);

/* The number of partitions currently assigned. */
int hsc_consumer_assigned_count(hsc_consumer *c);

/* The librdkafka handle. */
rd_kafka_t *hsc_consumer_handle(hsc_consumer *c);

/* One assigned partition's consumer lag, from librdkafka's statistics. */
struct hsc_lag {
    char topic[256];
    int32_t partition;
    int64_t lag;
};

/* The lag of each assigned partition as of the last statistics (statistics.interval.ms). */
size_t hsc_consumer_lag(const hsc_consumer *c, const struct hsc_lag **out);

struct hsc_metrics;

/* Sets the gauge hsc_consumer_lag{labels,topic,partition} for each assigned partition. */
void hsc_consumer_export_lag(const hsc_consumer *c, struct hsc_metrics *m, const char *labels);

/* Destroys c (closing it first if hsc_consumer_close was not called). */
void hsc_consumer_free(hsc_consumer *c);

/*
 * Copies the last value of header name of rkm into buf (NUL-terminated).
 * Returns its length (>= 0); -1 if the header is absent (err untouched); -2
 * if it is present but invalid: longer than cap - 1 bytes or holding a NUL
 * byte. An invalid value is never truncated or copied (buf is left as it
 * was) and err (may be NULL) names the header and the reason, so a caller
 * can reject the message rather than act on a cut value. Callers that test
 * "< 0" treat invalid like absent; callers that must tell them apart
 * compare with -1 and -2.
 */
int hsc_kafka_header_get(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap,
                         hsc_err *err);

/* hsc_kafka_header_get without the error text: the same returns (-1 absent, -2 invalid). */
int hsc_kafka_header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t cap);

/* Sends rkm's payload to the DLQ with headers naming stage, error and source. */
int hsc_dlq_send(hsc_producer *p, const char *dlq_topic, const char *stage,
                 const rd_kafka_message_t *rkm, const hsc_err *why, hsc_delivery_fn cb, void *arg,
                 hsc_err *err);

/*
 * Builds a librdkafka configuration for role ("consumer", "producer", "admin"):
 * brokers, then defaults (name, value pairs, NULL-terminated), then the
 * user's [rdkafka] and [rdkafka.ROLE] sections, which win.
 */
rd_kafka_conf_t *hsc_kafka_conf(const hsc_config *cfg, const char *role,
                                const char *const *defaults, hsc_err *err);

#endif
