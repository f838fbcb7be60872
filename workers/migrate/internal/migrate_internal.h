/*
 * Internals shared by hsc-migrate's files (command, run, checkpoint,
 * policies, verify, report, await); the command's API is migrate.h.
 */
#ifndef HSC_MIGRATE_INTERNAL_H
#define HSC_MIGRATE_INTERNAL_H

#include <ev.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>

#include "kafka.h"
#include "metrics.h"
#include "migrate.h"
#include "milvus.h"
#include "neo4j.h"
#include "redis.h"

/* One run: the clients, the options and what has been counted. */
struct mig {
    struct ev_loop *loop;
    hsc_config *cfg;
    struct migrate_mapping mp;
    hsc_http *http;
    hsc_neo4j *legacy, *graph;
    hsc_milvus *milvus;
    hsc_redis *redis;
    hsc_producer *prod;
    PGconn *pg, *legacy_pg;
    const char *name, *topic, *dlq;
    char source[600];
    char *page_cypher;
    int dry_run, verify, restart, json, quiet, tty;
    double rate, wait_s;
    int page_size;
    /* what was found */
    struct migrate_problem *problems;
    size_t nproblems, cap;
    long long counts[MPK_KINDS];
    long long total, done, published, policies, resumed_from;
    long long earlier_problems; /* counted by the runs before a resume */
    /* deliveries of the current page */
    long long sent, acked, failed;
    char deliver_err[256];
    int64_t started_us, last_progress_us;
    hsc_metrics *metrics; /* when metrics.port is set */
    hsc_httpd *httpd;
};

/* The signal that asked the run to stop (0: none); every long loop checks it. */
extern volatile sig_atomic_t mig_stop;

/* ---- await.c: one backend call at a time ---- */

/* What an awaited call left behind. */
struct await {
    int done, code;
    char msg[512];
    json_t *rows;
    hsc_milvus_entity *ents;
    size_t nents;
};

/* Runs the loop until w is answered. */
void mig_await_run(struct mig *m, struct await *w);

/* Runs one statement and returns its rows (NULL and err on failure). */
json_t *mig_neo4j_rows(struct mig *m, hsc_neo4j *n, const char *cypher, json_t *params,
                       hsc_err *err);

/* A Milvus completion for an await: takes the entities' vectors over into w. */
void mig_on_milvus(void *arg, const hsc_milvus_result *res, const hsc_err *err);

/* A Redis completion for an await. */
void mig_on_redis(void *arg, const redisReply *reply, const hsc_err *err);

/* Frees n entities taken over by mig_on_milvus. */
void mig_entities_free(hsc_milvus_entity *e, size_t n);

/* Runs one statement (reconnecting once if the connection was lost); NULL and err on failure. */
PGresult *mig_pg_exec(PGconn *c, const char *sql, int n, const char *const *params, hsc_err *err);

/* Connects to url; what names the key in errors, with the password masked. */
PGconn *mig_pg_connect(const char *url, const char *what, hsc_err *err);

/* Sleeps while still serving delivery reports, and wakes early on a signal. */
void mig_loop_sleep(struct mig *m, double secs);

/* ---- checkpoint.c ---- */

/* A migration checkpoint as stored. */
struct mig_checkpoint {
    int exists, finished;
    char after[HSC_MAX_ID_LEN + 32];
    long long published, problems;
    char source[600];
};

/* Reads the checkpoint of migrate.name into c (c->exists 0 when there is none). */
int mig_checkpoint_load(struct mig *m, struct mig_checkpoint *c, hsc_err *err);

/* Stores the run's position (after) and counts; finished marks it complete. */
int mig_checkpoint_save(struct mig *m, const char *after, int finished, hsc_err *err);

/* Forgets the checkpoint of migrate.name (--restart). */
int mig_checkpoint_reset(struct mig *m, hsc_err *err);

/* ---- run.c: the migration ---- */

/* One page of legacy titles after `after` (rows of MIGRATE_PAGE_COLUMNS), or NULL and err. */
json_t *mig_read_page(struct mig *m, const char *after, hsc_err *err);

/* Every legacy title node, or -1 and err. */
long long mig_count_titles(struct mig *m, hsc_err *err);

/* A migration or a dry run, reported; returns the exit status. */
int mig_migrate(struct mig *m);

/* ---- policies.c ---- */

/* A string list as compact JSON text (malloc'd), for jsonb parameters. */
char *mig_strlist_json(const hsc_strlist *l);

/* What is done with each page of good legacy policies. */
typedef int (*mig_policy_page_fn)(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                                  hsc_err *err);

/*
 * Reads the legacy policy table a page at a time (keyset on the user column),
 * reports the rows that cannot be migrated, and hands the good ones to fn.
 */
int mig_each_policy_page(struct mig *m, mig_policy_page_fn fn, void *arg, hsc_err *err);

/* Migrates the legacy policies (with write; a dry run only validates and counts them). */
int mig_do_policies(struct mig *m, int write, hsc_err *err);

/* ---- verify.c ---- */

/* The kinds of difference --verify lists, in the order the reports show them. */
enum mig_vlist {
    VL_MISSING_PG,
    VL_MISSING_MILVUS,
    VL_MISSING_GRAPH,
    VL_BAD_VECTORS,
    VL_MISSING_RELS,
    VL_BAD_POLICIES,
    VL_COUNT
};

/* How the reports name each list: the text report's label and the JSON key. */
extern const struct mig_vlist_name {
    const char *text, *json;
} mig_vlists[VL_COUNT];

/* What --verify found. */
struct mig_vreport {
    long long titles, migratable, pg_present, milvus_present, graph_present, changed;
    long long compared, vec_bad, rels, rels_missing, pol_total, pol_ok;
    double max_diff;
    json_t *list[VL_COUNT]; /* the first 50 ids of each kind of difference (mig_vlists) */
};

/* True when v found every migratable title and policy in hsc. */
int mig_verify_ok(const struct mig_vreport *v);

/* --verify (with --wait, repeated until it passes), reported; returns the exit status. */
int mig_verify(struct mig *m);

/* ---- report.c ---- */

/* Counts pb and lists it (up to a limit). */
void mig_add_problem(struct mig *m, const struct migrate_problem *pb);

/* Problems with titles, this run's and the earlier runs' (policies apart). */
long long mig_title_problems(const struct mig *m);

/* The progress line (at most once a second unless final), a log line when stderr is no tty. */
void mig_progress(struct mig *m, int final);

/* Prints the report of a migration or dry run; returns status. */
int mig_report_run(struct mig *m, int status, const hsc_err *why);

/* Prints the report of a verify; returns its exit status (0 ok, 1 incomplete, 3 failed). */
int mig_report_verify(struct mig *m, const struct mig_vreport *v, int rc, const hsc_err *err,
                      double secs);

#endif
