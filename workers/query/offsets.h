/*
 * hsc-query's offsets tracker: per partition, the offsets read in
 * consumption order and which of them are answered, so the offset stored is
 * the first one not yet answered, and a revoke can commit the answered ones
 * above it in the commit's metadata ("hsc1:", read back on assignment).
 */
#ifndef HSC_QUERY_OFFSETS_H
#define HSC_QUERY_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* What is known of one offset: its reply not yet produced, produced, or acknowledged. */
enum { OFF_PENDING = 0, OFF_DONE = 1, OFF_SENT = 2 };

/* Offsets above the committed one that a commit's metadata can name. */
#define SKIP_MAX 1024
#define SKIP_META_MAX 4000 /* under the broker's offset.metadata.max.bytes (4096) */

/* One offset read from a partition and what became of its request. */
struct query_offset {
    int64_t off;
    unsigned char state; /* OFF_* */
};

/* One partition's offsets in flight, oldest first, and what its previous owner answered. */
struct ptrack {
    hsc_ring q;        /* struct query_offset, from the first unanswered one on */
    unsigned gen;      /* bumped when the partition is revoked, so late answers are ignored */
    int64_t done_upto; /* the offset after the last answered prefix (-1: none yet) */
    int64_t *skip;     /* answered by the previous owner (its commit's metadata), ascending */
    size_t nskip, skip_at;
};

/* Every partition's tracker, indexed by partition number. */
struct query_offsets {
    struct ptrack *parts;
    int nparts;
};

/* The tracker of partition p, added if new; NULL for a bad p or without memory. */
struct ptrack *query_offsets_track(struct query_offsets *o, int32_t p);

/* Appends off (pending) to t. Returns HSC_OK or HSC_ENOMEM. */
int query_offsets_push(struct ptrack *t, int64_t off);

/* Marks off's reply produced, so a revoke counts it as answered (unless gen is stale). */
void query_offsets_mark_sent(struct query_offsets *o, int32_t p, int64_t off, unsigned gen);

/*
 * Marks off answered; returns the offset after the longest answered prefix if
 * that prefix grew (the offset to store), else -1 (nothing new, or gen stale).
 */
int64_t query_offsets_mark_done(struct query_offsets *o, int32_t p, int64_t off, unsigned gen);

/* True if off is one the previous owner answered; forgets what lies below off. */
int query_offsets_skipped(struct ptrack *t, int64_t off);

/*
 * Fills e's offset with t's first unanswered offset and its metadata (in
 * meta, of cap bytes) with the answered offsets above it; 0 if t holds
 * nothing to commit.
 */
int query_offsets_revoke_point(const struct ptrack *t, rd_kafka_topic_partition_t *e, char *meta,
                               size_t cap);

/* Forgets t's offsets after a revoke; its searches still running are silenced (gen bumped). */
void query_offsets_reset(struct ptrack *t);

/* Loads the offsets a commit's metadata names as answered above base into t's skip set. */
void query_offsets_load_skip(struct ptrack *t, int64_t base, const char *meta, size_t n);

/* Frees every tracker. */
void query_offsets_free(struct query_offsets *o);

#endif
