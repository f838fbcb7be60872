/*
 * The index feed of hsc-enrich: a group-less reader of every partition of
 * the ingested topic, so that each enrich process sees every title (not only
 * its own partitions') and holds the whole similarity index. It starts at
 * the offsets the topic had before the catalogue was read from PostgreSQL
 * (hsc-ingest writes PostgreSQL before it produces), so nothing falls in
 * between. It commits nothing.
 */
#ifndef HSC_ENRICH_FEED_H
#define HSC_ENRICH_FEED_H

#include <ev.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "hsc/error.h"

/* Called with each message (the callee does not keep rkm). */
typedef void (*enrich_feed_fn)(void *arg, const rd_kafka_message_t *rkm);

/* A feed. */
typedef struct enrich_feed enrich_feed;

/*
 * Creates the reader and reads topic's partitions and their end offsets now
 * (synchronously, before anything is read from PostgreSQL). Nothing is
 * consumed until enrich_feed_start.
 */
enrich_feed *enrich_feed_new(struct ev_loop *loop, const hsc_config *cfg, const char *topic,
                             enrich_feed_fn fn, void *arg, hsc_err *err);

/* Starts reading from the offsets noted by _new, polling on the loop. */
int enrich_feed_start(enrich_feed *f, hsc_err *err);

/* Messages delivered so far. */
unsigned long long enrich_feed_count(const enrich_feed *f);

/* Stops and frees the reader. */
void enrich_feed_free(enrich_feed *f);

#endif
