/*
 * What the integration tests share: an isolated namespace on the real local
 * stack (its own topic prefix and its own PostgreSQL database, so tests never
 * see each other's data), processes of the real binaries, and probes of
 * Kafka and PostgreSQL. Nothing here stands in for a server.
 */
#ifndef HSC_IT_HARNESS_H
#define HSC_IT_HARNESS_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <sys/types.h>

/* One test's namespace on the stack. */
struct it {
    char prefix[64];  /* topic prefix, "it<pid>x<n>." */
    char db[64];      /* database name */
    char pg_url[512]; /* URL of the test's database */
    char brokers[256];
    char env_prefix[96], env_pg[600], env_brokers[300], env_cfg[64];
    char collection[64]; /* the test's Milvus collection */
    char epoch_key[96];  /* the test's catalogue epoch key in Redis */
    char env_coll[128], env_epoch[160], env_input[64];
    int valgrind; /* spawn workers under valgrind: a leak or a bad access makes them exit 99 */
    PGconn *pg;
};

/* Creates the namespace: a database with the schema applied, and the topics. */
void it_setup(struct it *t);

/* Drops the database, the collection and the topics (`hsc topics delete`; a failure only warns)
 * and closes connections. */
void it_teardown(struct it *t);

/* Full topic name for a topics.* key, e.g. it_topic(t, "content_events"). */
const char *it_topic(struct it *t, const char *key);

/* Starts an hsc binary (name relative to the build dir) in the namespace; extra "--set k=v" args.
 */
pid_t it_spawn(struct it *t, const char *binary, const char *const *args);

/* Sends sig to pid and waits up to timeout_ms; returns the exit status, or -1 if still running. */
int it_stop(pid_t pid, int sig, int timeout_ms);

/* Runs an hsc binary to completion in the namespace; returns its exit status. Output to *out if
 * given. */
int it_run(struct it *t, const char *binary, const char *const *args, char **out);

/* Runs a shell command (e.g. deploy/local/down postgres); returns its exit status. */
int it_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns the first column of the first row of sql as an integer (-1 on error). */
long long it_pg_int(struct it *t, const char *sql);

/* Returns the first column of the first row of sql as a malloc'd string (NULL on error). */
char *it_pg_text(struct it *t, const char *sql);

/* Polls sql every 200 ms until it returns want or timeout_ms passes; returns the last value. */
long long it_pg_wait(struct it *t, const char *sql, long long want, int timeout_ms);

/* Produces raw bytes to a topic, waiting for the delivery; returns the offset (or -1). */
long long it_produce(struct it *t, const char *topic, const char *key, const void *value,
                     size_t len, int32_t *partition);

/* A consumed record, for assertions. */
struct it_record {
    char *key;
    void *value;
    size_t len;
    rd_kafka_headers_t *headers;
    int32_t partition;
    int64_t offset;
};

/* Reads every record of a topic from the beginning until `want` arrived or timeout_ms. */
size_t it_consume_all(struct it *t, const char *topic, size_t want, int timeout_ms,
                      struct it_record **out);

/* Reads every record of a topic up to each partition's end at the time of the call (dies if
 * that takes longer than timeout_ms): for checks that must see all of a topic, duplicates
 * included. */
size_t it_consume_to_end(struct it *t, const char *topic, int timeout_ms, struct it_record **out);

/* Frees records returned by it_consume_all. */
void it_records_free(struct it_record *r, size_t n);

/* Returns a header's value as a static string ("" if absent). */
const char *it_header(const struct it_record *r, const char *name);

/* Total lag of a consumer group on a topic (end offsets minus committed); -1 on error. */
long long it_group_lag(struct it *t, const char *group, const char *topic);

/* Waits until the group's lag on topic is 0; returns 0 or -1 on timeout. */
int it_wait_caught_up(struct it *t, const char *group, const char *topic, int timeout_ms);

/* Writes text to a new temporary file; returns its malloc'd path. */
char *it_temp_file(const char *text, size_t len);

/* A blocking HTTP call (libcurl easy); returns the malloc'd body or NULL, and the status. */
char *it_http(const char *method, const char *url, const char *body, long *status);

/* Entities in the test's Milvus collection, by a count(*) query; -1 on error. */
long long it_milvus_count(struct it *t);

/* Polls it_milvus_count until it equals want or timeout_ms passes; returns the last count. */
long long it_milvus_wait_count(struct it *t, long long want, int timeout_ms);

/* Every content id stored in the test's collection (malloc'd array of malloc'd strings). */
size_t it_milvus_ids(struct it *t, char ***ids);

/* The content id of the nearest neighbour of vec, into out; 0 or -1. */
int it_milvus_nearest(struct it *t, const float *vec, size_t dim, char *out, size_t cap);

/* Runs a Cypher statement on the local Neo4j (HSC_NEO4J_*); returns its rows (json array of arrays)
 * or NULL. */
struct json_t *it_neo4j(const char *cypher, const char *params_json);

/* The first value of the first row of a Cypher statement, as an integer (-1 on error). */
long long it_neo4j_int(const char *cypher);

/* Polls a Cypher count until it equals want or timeout_ms passes; returns the last value. */
long long it_neo4j_wait(const char *cypher, long long want, int timeout_ms);

/* Empties the graph (the tests that count nodes share one database, one at a time). */
void it_neo4j_reset(void);

/* Reads an integer key from Redis (HSC_REDIS_URL); -1 when absent or on error. */
long long it_redis_int(const char *key);

/* Milliseconds of monotonic time, for timeouts. */
long long it_ms(void);

#endif
