/*
 * hsc-migrate's command (also `hsc migrate`): its options, the clients one
 * run needs, its metrics, and the choice of a migration, a dry run or a verify.
 */
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrate_internal.h"
#include "pg.h"
#include "util.h"

const char MIGRATE_USAGE[] =
    "Usage: hsc-migrate [options] [--dry-run | --verify] [--rate N] [--restart] [--json]\n"
    "Streams a legacy Neo4j catalogue (titles with embeddings, genre/theme/mood and\n"
    "related relationships) and a legacy PostgreSQL policy table into hsc. Titles go\n"
    "to the content events topic; the pipeline stores them. The mapping of the legacy\n"
    "graph comes from the migrate.* keys (docs/migration.md).\n\n"
    "  (no mode)        migrate, resuming from the checkpoint of migrate.name\n"
    "  --dry-run        read and validate everything, publish nothing; exit 1 if any\n"
    "                   title or policy cannot be migrated\n"
    "  --verify         compare the legacy catalogue with PostgreSQL, Milvus and the graph;\n"
    "                   exit 1 with a report if anything is missing or different\n"
    "  --wait SECONDS   with --verify: repeat until it passes or the time is up\n"
    "  --rate N         titles per second (0 = as fast as Kafka takes them)\n"
    "  --restart        forget the checkpoint and start from the first title\n"
    "  --json           print the report as JSON on stdout\n"
    "  --quiet          no progress line\n\n";

/* The signal that asked the run to stop (0: none); every long loop checks it. */
volatile sig_atomic_t mig_stop;

static void on_signal(int sig)
{
    mig_stop = sig;
}

static void metrics_refresh(void *arg, hsc_metrics *mx)
{
    struct mig *m = arg;
    const char *mode = m->verify    ? "mode=\"verify\""
                       : m->dry_run ? "mode=\"dry_run\""
                                    : "mode=\"migrate\"";
    hsc_metrics_set(mx, "hsc_migrate_titles", mode, (double)m->total);
    hsc_metrics_set(mx, "hsc_migrate_done_titles", mode, (double)m->done);
    hsc_metrics_count(mx, "hsc_migrate_published_total", mode, (double)m->published);
    hsc_metrics_count(mx, "hsc_migrate_problems_total", mode, (double)mig_title_problems(m));
    hsc_metrics_count(mx, "hsc_migrate_policies_total", mode, (double)m->policies);
}

static int metrics_ready(void *arg, char *why, size_t cap)
{
    (void)arg;
    if (mig_stop)
        return snprintf(why, cap, "stopping"), 0;
    return 1;
}

static int parse_args(struct mig *m, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run"))
            m->dry_run = 1;
        else if (!strcmp(a, "--verify"))
            m->verify = 1;
        else if (!strcmp(a, "--restart"))
            m->restart = 1;
        else if (!strcmp(a, "--json"))
            m->json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            m->quiet = 1;
        else if ((!strcmp(a, "--rate") || !strcmp(a, "--wait")) && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || v < 0 || !isfinite(v)) {
                fprintf(stderr, "%s: %s: '%s' is not a number >= 0\n", argv[0], a, argv[i]);
                return 2;
            }
            if (a[2] == 'r')
                m->rate = v;
            else
                m->wait_s = v;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(MIGRATE_USAGE, stdout);
            return 1;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n%s", argv[0], a, MIGRATE_USAGE);
            return 2;
        }
    }
    if (m->dry_run + m->verify > 1) {
        fprintf(stderr, "%s: --dry-run and --verify are separate runs\n", argv[0]);
        return 2;
    }
    return 0;
}

static int setup(struct mig *m, hsc_err *err)
{
    int rc;
    if ((rc = migrate_mapping_load(m->cfg, &m->mp, err)))
        return rc;
    m->name = hsc_config_str(m->cfg, "migrate.name");
    m->topic = hsc_config_topic(m->cfg, "topics.content_events");
    m->dlq = hsc_config_topic(m->cfg, "topics.dlq");
    m->page_size = (int)hsc_config_int(m->cfg, "migrate.page_size");
    m->page_cypher = migrate_page_cypher(&m->mp);
    int port = (int)hsc_config_int(m->cfg, "metrics.port");
    if (port > 0) {
        m->metrics = hsc_metrics_new();
        hsc_metrics_set_backend_registry(m->metrics);
        if (!(m->httpd =
                  hsc_httpd_new(m->loop, port, m->metrics, metrics_ready, metrics_refresh, m, err)))
            return err->code;
    }
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(m->cfg, &ns);
    struct hsc_neo4j_settings ls = ns;
    const char *v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_url")))
        ls.url = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_user")))
        ls.user = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_password")))
        ls.password = v;
    if (*(v = hsc_config_str(m->cfg, "migrate.neo4j_database")))
        ls.database = v;
    snprintf(m->source, sizeof(m->source), ":%s(%s) at %s/%s", m->mp.label, m->mp.id_prop, ls.url,
             ls.database);
    if (!(m->http = hsc_http_new(m->loop, err)) ||
        !(m->legacy = hsc_neo4j_new(m->loop, m->http, &ls, err)))
        return err->code;
    if (!(m->pg = mig_pg_connect(hsc_config_str(m->cfg, "pg.url"), "pg.url", err)))
        return err->code;
    const char *lurl = hsc_config_str(m->cfg, "migrate.legacy_pg_url");
    if (*m->mp.policy_table &&
        !(m->legacy_pg = mig_pg_connect(*lurl ? lurl : hsc_config_str(m->cfg, "pg.url"),
                                        "migrate.legacy_pg_url", err)))
        return err->code;
    if (m->verify) {
        static char schema[1024];
        struct hsc_milvus_settings ms;
        hsc_milvus_settings_load(m->cfg, &ms, schema, sizeof(schema));
        if (!(m->graph = hsc_neo4j_new(m->loop, m->http, &ns, err)) ||
            !(m->milvus = hsc_milvus_new(m->loop, m->http, &ms, err)))
            return err->code;
    } else if (!m->dry_run) {
        if (!(m->prod = hsc_producer_new(m->loop, m->cfg, err)) ||
            !(m->redis = hsc_redis_new(m->loop, hsc_config_str(m->cfg, "redis.url"),
                                       (int)hsc_config_int(m->cfg, "redis.timeout_ms"), err)))
            return err->code;
    }
    return 0;
}

/* Every free here takes NULL: a setup that failed half-way is torn down the same way. */
static void teardown(struct mig *m)
{
    hsc_producer_free(m->prod);
    hsc_http_free(m->http); /* cancels what is in flight before the clients go */
    hsc_neo4j_free(m->legacy);
    hsc_neo4j_free(m->graph);
    hsc_milvus_free(m->milvus);
    hsc_redis_free(m->redis);
    PQfinish(m->pg);
    PQfinish(m->legacy_pg);
    free(m->page_cypher);
    free(m->problems);
    hsc_httpd_free(m->httpd);
    hsc_metrics_set_backend_registry(NULL);
    hsc_metrics_free(m->metrics);
}

int migrate_main(hsc_config *cfg, int argc, char **argv)
{
    struct mig m = {0};
    m.cfg = cfg;
    m.rate = hsc_config_double(cfg, "migrate.rate");
    int rc = parse_args(&m, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    m.tty = isatty(2);
    m.loop = ev_loop_new(0);
    m.started_us = m.last_progress_us = hsc_mono_us();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    hsc_err err = {0};
    if ((rc = setup(&m, &err))) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        rc = rc == HSC_ECONFIG ? 2 : 3;
    } else {
        rc = m.verify ? mig_verify(&m) : mig_migrate(&m);
    }
    teardown(&m);
    ev_loop_destroy(m.loop);
    return rc;
}
