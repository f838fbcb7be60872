/*
 * A pipeline stage: consume, decode, write a batch to a backend, produce the
 * results, and only then store the offsets. It is shared by ingest, enrich
 * and embed-index, which supply three functions (decode, process, free).
 *
 * Guarantees:
 *  - at-least-once: an offset is stored only after its message's write and
 *    every message it produced (results, DLQ) were acknowledged by Kafka;
 *  - per-key order: one batch is in flight at a time, in consumption order;
 *  - a transient failure (backend down) pauses fetching and retries the same
 *    batch with capped exponential backoff and jitter, forever: nothing is
 *    skipped;
 *  - a permanent failure of a batch is retried one message at a time, so one
 *    bad message goes to the DLQ and its neighbours are stored;
 *  - SIGINT/SIGTERM: stop fetching, finish what is buffered, commit, leave.
 */
#ifndef HSC_STAGE_H
#define HSC_STAGE_H

#include <ev.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "hsc/error.h"
#include "kafka.h"

/* One consumed message and what the stage made of it. */
typedef struct hsc_stage_msg {
    rd_kafka_message_t *rkm;
    void *decoded; /* the stage's decoded form; NULL when invalid */
    hsc_err err;   /* why it is invalid (err.code != 0) */
} hsc_stage_msg;

/* The batch being processed: the messages in, the records to produce out. */
typedef struct hsc_stage_batch hsc_stage_batch;

/*
 * Completion of process(): HSC_OK, HSC_EINVAL (isolate, DLQ the bad one), or
 * any other code (keep the batch and retry; HSC_ECONFIG is logged as an error).
 */
typedef void (*hsc_stage_done_fn)(hsc_stage_batch *b, int code, const hsc_err *err);

/* What a stage plugs in. */
struct hsc_stage_ops {
    /* Decodes one message; an error (with err set) sends it to the DLQ. Pure. */
    int (*decode)(void *ctx, const rd_kafka_message_t *rkm, void **decoded, hsc_err *err);
    /* Frees what decode returned. */
    void (*free_decoded)(void *ctx, void *decoded);
    /*
     * Writes msgs (all valid) and emits results with hsc_stage_emit. Returns an
     * error now (done never called) or 0 and calls done exactly once, later,
     * from the loop. (A done that comes before process() returns is held by
     * the stage until it has, so a misbehaving stage cannot recurse.)
     */
    int (*process)(void *ctx, hsc_stage_batch *b, hsc_stage_msg **msgs, size_t n,
                   hsc_stage_done_fn done);
    /* Optional: partitions newly assigned to the stage's consumer. */
    void (*on_assign)(void *ctx, const rd_kafka_topic_partition_list_t *parts);
    /* Optional: partitions about to be revoked (their buffered messages are dropped next). */
    void (*on_revoke)(void *ctx, const rd_kafka_topic_partition_list_t *parts);
};

/*
 * What a stage's batch job begins with (its first member): the batch it
 * writes and where its end is reported.
 */
struct hsc_stage_job {
    hsc_stage_batch *b; /* NULL for work the stage starts itself (enrich's feed flushes) */
    hsc_stage_done_fn done;
    size_t n; /* messages given to process() */
};

/* At most this many per-message arrays in one job. */
#define HSC_STAGE_JOB_MAX_ARRAYS 8

/*
 * Allocates, zeroed and in one block, a job of job_size bytes (a struct that
 * begins with a struct hsc_stage_job, filled in from b, done and n) and
 * narrays arrays of n elements, the k-th of elem_size[k] bytes, whose
 * addresses it stores in arrays[k]. The caller frees it with one free() (or
 * hsc_stage_job_end), arrays included. Returns NULL when out of memory.
 */
void *hsc_stage_job_new(size_t job_size, hsc_stage_batch *b, hsc_stage_done_fn done, size_t n,
                        size_t narrays, const size_t *elem_size, void **arrays);

/*
 * Frees the job (and its arrays) and then reports code and err to the stage,
 * if it has a batch: the last thing a job does. err must not point into it.
 */
void hsc_stage_job_end(struct hsc_stage_job *job, int code, const hsc_err *err);

/* Settings of a stage, usually read from its config section. */
struct hsc_stage_settings {
    const char *name;  /* "ingest": logs and DLQ headers */
    const char *group; /* consumer group */
    const char *const *topics;
    size_t ntopics;
    size_t batch_max;
    int linger_ms;
    int shutdown_timeout_ms;
    int backoff_initial_ms, backoff_max_ms;
    const char *dlq_topic;
};

/* A running stage on a loop. */
typedef struct hsc_stage hsc_stage;

/* Creates the stage's consumer and producer and starts consuming. */
hsc_stage *hsc_stage_new(struct ev_loop *loop, const hsc_config *cfg,
                         const struct hsc_stage_settings *s, const struct hsc_stage_ops *ops,
                         void *ctx, hsc_err *err);

/* Queues a record to produce once the batch's write succeeded; copies its inputs. */
int hsc_stage_emit(hsc_stage_batch *b, const char *topic, const void *key, size_t klen,
                   const void *value, size_t vlen, rd_kafka_headers_t *hdrs);

/* The stage's context pointer, for process() implementations. */
void *hsc_stage_batch_ctx(hsc_stage_batch *b);

/* Begins a graceful stop; the loop is broken when the stage has finished. */
void hsc_stage_stop(hsc_stage *st);

/* Stops at once: what is unfinished is redelivered (a second signal). */
void hsc_stage_stop_now(hsc_stage *st);

/* Counters for logs, tests and metrics. */
struct hsc_stage_stats {
    unsigned long long consumed, processed, produced, dlq, retries, batches;
};

/* Returns the stage's counters. */
void hsc_stage_get_stats(const hsc_stage *st, struct hsc_stage_stats *out);

/* The stage's producer (a stage may produce outside batches, e.g. epochs). */
hsc_producer *hsc_stage_producer(hsc_stage *st);

/* Frees the stage (after the loop has returned). */
void hsc_stage_free(hsc_stage *st);

/* Runs a stage as a process (hsc_worker_run: signals, loop, graceful stop). Returns 0. */
int hsc_stage_run(struct ev_loop *loop, hsc_stage *st);

#endif
