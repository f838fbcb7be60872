/*
 * The ingest stage: content, learning and policy events into PostgreSQL,
 * canonical content records on to hsc.content.ingested, policy versions (and
 * an erased user's cached results) in Redis. The batch builders are pure so
 * the unit tests can check them without a database.
 */
#ifndef HSC_INGEST_H
#define HSC_INGEST_H

#include <stddef.h>

#include "config.h"
#include "hsc/message.h"
#include "hsc/policy_event.h"
#include "pg.h"
#include "redis.h"
#include "stage.h"

/* One decoded input message of any of the three topics. */
struct ingest_item {
    int is_learning;
    int is_policy;
    hsc_content_event content;
    hsc_learning_event learning;
    hsc_policy_event policy;
};

/* What the ingest stage needs: its database, the Redis that holds policy versions, topics. */
struct ingest_ctx {
    hsc_pg *pg;
    hsc_redis *redis;
    char content_topic[256], learning_topic[256], ingested_topic[256], policy_topic[256];
    char policy_key_prefix[128], cache_prefix[128];
    size_t max_message_bytes;
};

/* Fills ctx from cfg and opens (lazily) the PostgreSQL client on loop. */
int ingest_ctx_init(struct ingest_ctx *ctx, struct ev_loop *loop, const hsc_config *cfg,
                    hsc_err *err);

/* Closes ctx's client; queued queries are cancelled. */
void ingest_ctx_destroy(struct ingest_ctx *ctx);

/* The stage operations (decode, process, free) of ingest. */
extern const struct hsc_stage_ops ingest_ops;

/*
 * Builds the jsonb parameter of the content upsert from the content items of
 * a batch. Only the newest event per id is kept (highest version; at equal
 * versions a delete wins), since PostgreSQL cannot update one row twice in
 * one statement; winner[i] is set to 1 for the items kept. Returns a
 * malloc'd string (caller frees) or NULL when there is no content item.
 */
char *ingest_content_rows_json(struct ingest_item *const *items, size_t n, int *winner);

/* Builds the jsonb parameter of the learning statement; NULL when none. */
char *ingest_learning_rows_json(struct ingest_item *const *items, size_t n);

/*
 * Builds the jsonb parameter of INGEST_POLICY_SQL from the policy items of a
 * batch, in batch order (each user's events are in partition order); NULL
 * when none. Each element: user_id, version, op, ts, and the event's fields
 * (clear as an array of names, prefs as {dim, name, weight}).
 */
char *ingest_policy_rows_json(struct ingest_item *const *items, size_t n);

/* The policy application (parameter $1: ingest_policy_rows_json): hsc_apply_policy_events. */
extern const char INGEST_POLICY_SQL[];

/* The Redis script run after it: per user, raise or delete the version key, purge the cache. */
extern const char INGEST_POLICY_LUA[];

/* The content upsert (parameter $1: rows from ingest_content_rows_json). */
extern const char INGEST_CONTENT_SQL[];

/* The learning append + policy update (parameter $1: ingest_learning_rows_json). */
extern const char INGEST_LEARNING_SQL[];

#endif
