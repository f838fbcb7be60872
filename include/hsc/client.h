/*
 * hsc's search client: request/reply over Kafka on a libev loop.
 *
 * A client owns one partition of the reply topic: every request it sends
 * names that topic and partition in its headers, and the client reads the
 * partition from its end. Many searches can be in flight; each one ends
 * exactly once, with its reply or with a timeout. A reply that arrives for a
 * request already answered or timed out (a redelivery after a worker died,
 * a late answer) is counted and dropped, never delivered twice.
 *
 *     hsc_client *c = hsc_client_new(loop, cfg, &err);
 *     hsc_client_search(c, &req, 0, on_reply, arg, NULL, &err);
 *     ev_run(loop, 0);
 */
#ifndef HSC_CLIENT_H
#define HSC_CLIENT_H

#include <ev.h>
#include <stdint.h>

#include "hsc/error.h"
#include "hsc/search.h"

struct hsc_config;

/* A request/reply client bound to one reply partition. */
typedef struct hsc_client hsc_client;

/*
 * Ends one search: reply on an answer (valid during the call only), or NULL
 * and err (HSC_ETIMEDOUT, or the send failure) when there is none.
 */
typedef void (*hsc_client_reply_fn)(void *arg, const hsc_search_reply *reply, const hsc_err *err);

/*
 * Creates a client from cfg: topics.search_requests and topics.search_replies,
 * client.reply_partition (-1: one chosen from the host and process id) and
 * client.timeout_ms. Blocks until the reply partition is positioned.
 */
hsc_client *hsc_client_new(struct ev_loop *loop, const struct hsc_config *cfg, hsc_err *err);

/*
 * Sends req (copied) with a deadline of timeout_ms (0: client.timeout_ms).
 * Returns an error now (cb never called) or 0 and calls cb exactly once.
 * corr_out (may be NULL, 64 bytes) receives the correlation id.
 */
int hsc_client_search(hsc_client *c, const hsc_search_request *req, int timeout_ms,
                      hsc_client_reply_fn cb, void *arg, char *corr_out, hsc_err *err);

/* Searches sent and not yet ended. */
int hsc_client_inflight(const hsc_client *c);

/* The partition of the reply topic this client reads. */
int32_t hsc_client_reply_partition(const hsc_client *c);

/* What the client has seen, for tests and load generators. */
struct hsc_client_stats {
    unsigned long long sent, answered, timed_out, failed;
    unsigned long long overloaded; /* of answered: refused at once as `overloaded`; retry later */
    unsigned long long unmatched;  /* replies for unknown, answered or timed-out requests */
};

/* Returns the client's counters. */
void hsc_client_get_stats(const hsc_client *c, struct hsc_client_stats *out);

/* Ends every pending search with HSC_ECANCELED, then frees the client. */
void hsc_client_free(hsc_client *c);

#endif
