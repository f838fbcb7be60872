/*
 * What hsc status's command (status.c) asks of its probes (status_probe.c):
 * one backend's answer, and the read-only Kafka handle both files use.
 */
#ifndef HSC_CLI_STATUS_H
#define HSC_CLI_STATUS_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

/* One backend's answer. */
struct probe {
    const char *name;
    int ok;
    char version[128], detail[600];
    double ms;
};

/* PostgreSQL: reachable, its version, and (into *migs) the migrations hsc-migrate checkpointed. */
void status_probe_pg(const hsc_config *cfg, int timeout_ms, struct probe *p, json_t **migs);

/* Redis: reachable and its version. */
void status_probe_redis(const hsc_config *cfg, int timeout_ms, struct probe *p);

/* Neo4j: reachable over HTTP and its version. */
void status_probe_neo4j(const hsc_config *cfg, int timeout_ms, struct probe *p);

/* Milvus: reachable over REST (either API), and whether hsc's collection exists. */
void status_probe_milvus(const hsc_config *cfg, int timeout_ms, struct probe *p);

/* The Kafka brokers, through rk's metadata. */
void status_probe_kafka(const hsc_config *cfg, rd_kafka_t *rk, int timeout_ms, struct probe *p);

/* A Kafka handle that joins no group and commits nothing; NULL with err filled on failure. */
rd_kafka_t *status_kafka_handle(const hsc_config *cfg, const char *group, char *err, size_t cap);

/* A probe as the JSON report shows it (a new reference). */
json_t *status_probe_json(const struct probe *p);

#endif
