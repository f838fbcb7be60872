/*
 * What the files of the stage share (stage.c: batches and their process
 * phase; stage_produce.c: the produce phase and the DLQ; stage_metrics.c:
 * counts, readiness and the metrics it exports). Private to hsc_runtime.
 */
#ifndef HSC_STAGE_INTERNAL_H
#define HSC_STAGE_INTERNAL_H

#include "backoff.h"
#include "metrics.h"
#include "ring.h"
#include "stage.h"

/* Why fetching is paused. A full buffer does not pause: pausing purges
 * librdkafka's prefetched messages and resuming re-fetches them, which costs
 * a fetch round trip per batch; instead the stage stops draining the local
 * queue until a batch completes (well inside max.poll.interval.ms). */
enum { PAUSE_BACKOFF = 2, PAUSE_STOPPING = 4 };
enum { PHASE_PROCESS, PHASE_PRODUCE };

struct output {
    char *topic;
    char *key;
    size_t klen;
    char *value;
    size_t vlen;
    rd_kafka_headers_t *hdrs;
    hsc_stage_msg *dlq_src; /* set for a DLQ copy of an invalid message */
    int acked;
    hsc_stage_batch *b;
};

struct hsc_stage_batch {
    hsc_stage *st;
    int64_t started_us;
    int64_t phase_us;     /* when the current process() or send round began, for the watchdog */
    int timeouts;         /* deliveries of this round that timed out in the producer */
    hsc_stage_msg **msgs; /* every message of the batch, in consumption order */
    size_t n;
    hsc_stage_msg **valid;
    size_t nvalid;
    struct output *out;
    size_t nout, capout;
    int phase;
    int isolating;
    size_t cursor;       /* isolating: the valid message being written alone */
    hsc_stage_msg **cur; /* what the current process() call was given */
    size_t ncur;
    size_t mark;  /* outputs emitted before the current process() call */
    int inflight; /* deliveries awaited */
    int failed;   /* deliveries that failed this round */
    /* process() called done before returning: the result waits here until it has */
    int in_process, early;
    int early_code;
    hsc_err early_err;
};

struct hsc_stage {
    struct ev_loop *loop;
    struct hsc_stage_settings s;
    struct hsc_stage_ops ops;
    void *ctx;
    hsc_consumer *consumer;
    hsc_producer *producer;
    char *dlq_topic;
    char *name;

    hsc_ring q; /* pending messages (hsc_stage_msg *), oldest first */
    size_t soft_cap;
    int64_t trimmed_us; /* when a finished batch last gave freed pages back (malloc_trim) */

    hsc_stage_batch *batch;
    unsigned pause_reasons;
    hsc_backoff backoff;
    ev_timer linger, retry, kick, shutdown;
    ev_timer finish;   /* ends a batch that had nothing to deliver, from the loop */
    ev_timer watchdog; /* says so when a batch waits on one phase for long */
    int64_t warned_us;
    int replace_producer; /* a send round timed out whole: a new producer before the next */
    const hsc_config *cfg;
    int stopping, finished;
    struct hsc_stage_stats stats;
    hsc_metrics *metrics;
    hsc_httpd *httpd;
    char label[96];          /* stage="name" */
    struct topic_counts *tc; /* per-topic counts, exported when scraped */
    size_t ntc;
};

/* One topic's message counts (a stage sees two or three topics). */
struct topic_counts {
    char *topic;
    unsigned long long consumed, produced, failed, dlq;
};

/* Sets or clears one reason to pause fetching, and pauses or resumes to match. */
void stage_set_reason(hsc_stage *st, unsigned reason, int on);

/* Stores the batch's offsets, counts it, frees it and starts the next one. */
void stage_finish_batch(hsc_stage_batch *b);

/* Drops the outputs emitted from mark on (a process() call that failed). */
void stage_rollback_outputs(hsc_stage_batch *b, size_t mark);

/* The produce phase: DLQ copies of the invalid messages, then every output sent. */
void stage_start_produce(hsc_stage_batch *b);

/* Sends the outputs not yet acknowledged; the last delivery report ends the round. */
void stage_send_outputs(hsc_stage_batch *b);

/* The counts of topic, found or added. */
struct topic_counts *stage_topic_counts(hsc_stage *st, const char *topic);

/* The next retry delay in ms, counted in hsc_backoff_seconds_total. */
int64_t stage_backoff(hsc_stage *st);

/* Ready: partitions assigned, and not backing off from a failing backend. */
int stage_ready(void *arg, char *why, size_t cap);

/* Exports the stage's counts when the metrics endpoint is scraped. */
void stage_refresh(void *arg, hsc_metrics *m);

#endif
