/*
 * The chaos soak's shared state: what it published (the newest version of
 * every title, every learning event), every search it sent and every reply it
 * read, the worker processes it runs and kills, the servers it restarts, and
 * the violations it found. One process, one thread: the main loop in
 * chaos_soak.c drives traffic (chaos_traffic.c), faults (chaos_procs.c) and,
 * at the end, the checks against the stores (chaos_verify.c).
 */
#ifndef HSC_CHAOS_H
#define HSC_CHAOS_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* Dimension of every embedding the soak publishes (the workers get milvus.dimension=16). */
#define CHAOS_DIM 16
/* Versions are encoded in Milvus's year and maturity fields, which bound them. */
#define CHAOS_MAX_VERSION (401 * 22 - 1)
/* A reply read later than its deadline by more than this is late (one host, one clock). */
#define CHAOS_LATE_TOLERANCE_MS 100
/*
 * How long after Kafka is back its clients are still recovering: leaders are
 * re-elected, metadata refreshed and the groups' coordinators found again. A
 * reply hsc-query produced in time may reach its reader late in this window,
 * and a commit lost to the outage lets the next owner answer a request again
 * (at-least-once). Both are counted and printed, not violations; a reply
 * produced after its deadline is a violation always.
 */
#define CHAOS_KAFKA_SETTLE_MS 15000

/* The run's knobs (command-line options). */
struct chaos_opts {
    double minutes;      /* how long traffic and faults run */
    int ids;             /* size of the content id space */
    int content_rate;    /* content events per second */
    int learning_rate;   /* learning events per second */
    int search_rate;     /* searches per second */
    int deadline_ms;     /* each search's deadline */
    int kill_every_s;    /* a worker process is SIGKILLed this often */
    int restart_every_s; /* a server is restarted this often */
    int outage_s;        /* how long a server stays down */
    int warmup_s;        /* no faults before this */
    int drain_timeout_s; /* bound on the wait for the pipeline to catch up */
    int no_servers;      /* do not restart servers (workers only) */
    unsigned long seed;  /* random seed (printed, to repeat a run) */
    const char *inject;  /* a fault to inject before verifying, to prove the checks fail */
};

/* What the soak knows of one content id. */
struct chaos_title {
    int64_t version; /* newest version published (0: never) */
    int deleted;     /* the newest version is a delete */
};

/* One learning event the soak published (its unique key and value). */
struct chaos_learning {
    int user, content;
    const char *kind;
    int64_t ts;
    int has_value;
    double value;
};

/* Search kinds, for the summary. */
enum {
    CHAOS_S_VECTOR,
    CHAOS_S_GRAPH,
    CHAOS_S_HYBRID_PAR,
    CHAOS_S_HYBRID_SEQ,
    CHAOS_S_AUTO,
    CHAOS_S_N
};

/* One search sent, and what came back for it. */
struct chaos_search {
    int64_t sent_ms, deadline_ms; /* wall clock */
    int kind;
    int nreplies;
    int delivered; /* the request reached Kafka (delivery report) */
    int send_failed;
    int64_t recv_ms, kafka_ts_ms; /* of the first reply */
    int kafka_late, kafka_dup;    /* late or repeated only while Kafka recovered */
    int ok, degraded, cache_hit;
    char error_code[32];
};

/* Worker kinds; two processes of each. */
enum { CHAOS_INGEST, CHAOS_ENRICH, CHAOS_INDEX, CHAOS_QUERY, CHAOS_KINDS };
#define CHAOS_PER_KIND 2
#define CHAOS_WORKERS (CHAOS_KINDS * CHAOS_PER_KIND)

/* One worker process slot (kind, instance) and its current process. */
struct chaos_worker {
    int kind, inst;
    pid_t pid;             /* 0 while not running */
    int killed;            /* we sent SIGKILL to pid */
    int64_t restart_at_ms; /* when to start it again (monotonic), 0: not pending */
    int starts, kills, self_exits;
    long peak_kb; /* highest VmHWM seen for this slot */
};

/* Everything the soak tracks. */
struct chaos {
    struct chaos_opts o;
    struct it t;
    char tag[32];       /* unique per run: ids, groups, correlation ids */
    char id_prefix[40]; /* content ids are id_prefix + number */
    char logdir[256];
    int64_t t0_ms; /* monotonic start */
    uint64_t rng;

    /* publishing */
    rd_kafka_t *prod;  /* idempotent producer for content and learning events */
    rd_kafka_t *sprod; /* producer for search requests */
    struct chaos_title *titles;
    struct chaos_learning *learning;
    size_t nlearning, caplearning;
    int64_t next_learning_ts;
    long content_sent, content_upserts, content_deletes, content_stale, content_replays;
    long learning_sent, learning_dups, resent_after_failure, produce_queue_full;
    long content_inflight, learning_inflight;

    /* searching */
    rd_kafka_t *replies; /* raw consumer of the reply topic (every partition) */
    int reply_partitions;
    struct chaos_search *searches;
    size_t nsearches, capsearches;
    long replies_read, replies_unknown, replies_bad;
    int64_t max_loop_gap_ms;

    /* processes and servers */
    struct chaos_worker workers[CHAOS_WORKERS];
    int kill_order[CHAOS_WORKERS], kill_next;
    int server_order[5], server_next;
    pid_t server_child; /* a deploy/local down|up in progress */
    int server_phase;   /* 0 idle, 1 stopping, 2 down (waiting), 3 starting */
    int server_current; /* index into chaos_servers */
    int64_t server_phase_ms, server_down_at_ms;
    int servers_touched;
    int kafka_unsettled;         /* Kafka is down or was restarted within the settle time */
    int64_t kafka_settled_at_ms; /* wall clock: the end of the settle time once Kafka is up */
    int server_restarts, server_failures;

    /* results */
    char **violations;
    size_t nviolations;
    char **timeline;
    size_t ntimeline;
};

/* The server names deploy/local/up|down take. */
extern const char *const chaos_servers[5];
/* Worker binary names, by kind. */
extern const char *const chaos_worker_bin[CHAOS_KINDS];

/* Milliseconds since the soak started (monotonic). */
int64_t chaos_elapsed_ms(const struct chaos *c);
/* Wall-clock milliseconds (the clock of deadlines and Kafka timestamps). */
int64_t chaos_wall_ms(void);
/* A pseudo-random number (xorshift64*, seeded by --seed). */
uint64_t chaos_rand(struct chaos *c);
/* Records a violation (printed at the end; any makes the exit status 1). */
void chaos_violation(struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records and prints a timeline entry, stamped with the elapsed time. */
void chaos_event(struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- chaos_traffic.c ---- */

/* Creates the producers and the reply consumer (positioned at the end of every partition). */
void chaos_traffic_init(struct chaos *c);
/* Publishes one content event (upsert, delete, stale or replay, at random). */
void chaos_publish_content(struct chaos *c);
/* Publishes version 1 of every title, so searches have something to find. */
void chaos_publish_initial(struct chaos *c);
/* Publishes one learning event (sometimes again, exactly). */
void chaos_publish_learning(struct chaos *c);
/* Sends one search of a random kind. */
void chaos_send_search(struct chaos *c);
/* Serves delivery reports and reads every reply waiting, for up to wait_ms. */
void chaos_traffic_poll(struct chaos *c, int wait_ms);
/* Flushes the producers (bounded); returns the messages still undelivered. */
int chaos_traffic_flush(struct chaos *c, int timeout_ms);
/* Frees the Kafka handles. */
void chaos_traffic_close(struct chaos *c);
/* The embedding of (id, version), a deterministic function of both. */
void chaos_embedding(int id, int64_t version, float *out);

/* ---- chaos_procs.c ---- */

/* Takes /tmp/hsc-stack.lock unless this process or an ancestor holds it already. */
void chaos_lock_stack(void);
/* Starts every worker process (two per kind). */
void chaos_workers_start(struct chaos *c);
/* Kills the next worker of the random order (and schedules its restart). */
void chaos_kill_next_worker(struct chaos *c);
/* Reaps exited children, restarts workers that are due, samples peak RSS. */
void chaos_procs_tick(struct chaos *c);
/* Begins the next server restart (down, a pause, up), unless one is under way. */
void chaos_restart_next_server(struct chaos *c);
/* True while a server restart is under way. */
int chaos_server_busy(const struct chaos *c);
/* Samples VmHWM of every running worker into its slot. */
void chaos_sample_rss(struct chaos *c);
/* Stops every worker with SIGTERM (a worker that does not exit 0 is a violation). */
void chaos_workers_stop(struct chaos *c);
/* Waits for any server restart under way and starts every server the soak touched. */
void chaos_servers_restore(struct chaos *c);
/* Set by SIGINT, SIGTERM or SIGHUP: the run stops, restores the servers and exits. */
extern volatile sig_atomic_t chaos_interrupted;
/* Installs the exit path that kills workers and restores servers, even on failure. */
void chaos_install_cleanup(struct chaos *c);

/* ---- chaos_verify.c ---- */

/* Waits (bounded) until every group has caught up; returns 0 or -1. */
int chaos_wait_drained(struct chaos *c);
/* Injects the fault named by --inject into a store (to show the checks can fail). */
void chaos_inject(struct chaos *c);
/* Checks PostgreSQL, Neo4j, Milvus, the learning events, the DLQ and the searches. */
void chaos_verify(struct chaos *c);
/* Counts messages on the run's DLQ topic. */
long long chaos_dlq_count(struct chaos *c);

#endif
