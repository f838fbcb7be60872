/*
 * The connection state of each backend, shared by every client of it in the
 * process (the PostgreSQL pool, Redis, the HTTP client for Milvus, Neo4j and
 * embeddings), so that an outage is logged and counted once, not once per
 * connection or per request: "postgresql connection lost" (warn, with the
 * reason) when the first connection goes, "postgresql connection recovered"
 * (info, with the downtime) when a connection works again, and the counters
 * hsc_backend_connection_lost_total{backend} and
 * hsc_backend_reconnects_total{backend}.
 */
#ifndef HSC_CONN_H
#define HSC_CONN_H

#include "metrics.h"

/*
 * The backend's current epoch. A connection keeps the epoch it was opened
 * in; the loss of a connection opened before the last recorded loss belongs
 * to that outage and is not news.
 */
unsigned hsc_conn_epoch(const char *backend);

/* A connection to backend works (opened, or answered): logs and counts a recovery if it was down;
 * returns the epoch to keep. */
unsigned hsc_conn_up(const char *backend);

/* A connection opened in epoch (or a connect attempt, with hsc_conn_epoch) failed for reason: logs
 * and counts a loss once per outage. */
void hsc_conn_lost(const char *backend, unsigned epoch, const char *reason);

/* True between a recorded loss and the next recovery. */
int hsc_conn_is_down(const char *backend);

/* Where the counters go (hsc-query's registry); NULL: the backend registry of
 * hsc_metrics_set_backend_registry. */
void hsc_conn_set_metrics(hsc_metrics *m);

/* Forgets every backend's state (tests). */
void hsc_conn_reset(void);

#endif
