/*
 * hsc schema: versioned PostgreSQL migrations from schemas/postgres, and the
 * graph's constraints from schemas/neo4j (idempotent statements). Each
 * NNN_name.sql file is applied once, in order, in its own transaction, under
 * an advisory lock so two workers starting together cannot race. A file that
 * changed after it was applied is an error: migrations are append-only.
 */
#include <dirent.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http.h"
#include "neo4j.h"
#include "util.h"

#define LOCK_KEY "7401931"

struct migration {
    int version;
    char name[256];
    char *sql;
    char checksum[17];
};

static int cmp_migration(const void *a, const void *b)
{
    return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

static void fnv1a(const char *s, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int load(const char *dir, struct migration **out, int *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "hsc schema: cannot open %s (set paths.schemas)\n", dir);
        return -1;
    }
    struct migration *m = NULL;
    int cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql") || e->d_name[0] < '0' ||
            e->d_name[0] > '9')
            continue;
        struct migration *nm = realloc(m, (size_t)(cnt + 1) * sizeof(*m));
        if (!nm)
            break;
        m = nm;
        struct migration *x = &m[cnt];
        x->version = atoi(e->d_name);
        snprintf(x->name, sizeof(x->name), "%s", e->d_name);
        char path[2048];
        snprintf(path, sizeof(path), "%.1000s/%.1000s", dir, e->d_name);
        x->sql = hsc_read_file(path);
        if (!x->sql) {
            fprintf(stderr, "hsc schema: cannot read %s\n", path);
            closedir(d);
            for (int i = 0; i < cnt; i++)
                free(m[i].sql);
            free(m);
            return -1;
        }
        fnv1a(x->sql, x->checksum);
        cnt++;
    }
    closedir(d);
    qsort(m, (size_t)cnt, sizeof(*m), cmp_migration);
    for (int i = 1; i < cnt; i++) {
        if (m[i].version == m[i - 1].version) {
            fprintf(stderr, "hsc schema: %s and %s have the same version %d\n", m[i - 1].name,
                    m[i].name, m[i].version);
            for (int k = 0; k < cnt; k++)
                free(m[k].sql);
            free(m);
            return -1;
        }
    }
    *out = m;
    *n = cnt;
    return 0;
}

static int exec_ok(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "hsc schema: %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static int run(hsc_config *cfg, int apply)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/postgres", hsc_config_str(cfg, "paths.schemas"));
    struct migration *m;
    int n;
    if (load(dir, &m, &n))
        return 2;
    PGconn *c = PQconnectdb(hsc_config_str(cfg, "pg.url"));
    int rc = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        char masked[512];
        hsc_mask_secrets(hsc_config_str(cfg, "pg.url"), masked, sizeof(masked));
        fprintf(stderr, "hsc schema: cannot connect to %s: %s", masked, PQerrorMessage(c));
        rc = 1;
        goto out;
    }
    PQsetNoticeProcessor(c, NULL, NULL);
    if (!exec_ok(c, "SELECT pg_advisory_lock(" LOCK_KEY ")", "lock") ||
        !exec_ok(c,
                 "CREATE TABLE IF NOT EXISTS hsc_schema_migrations (version integer PRIMARY KEY,"
                 " name text NOT NULL, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 "bookkeeping table")) {
        rc = 1;
        goto out;
    }
    int applied_now = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", m[i].version);
        const char *p[1] = {v};
        PGresult *r =
            PQexecParams(c, "SELECT checksum FROM hsc_schema_migrations WHERE version = $1", 1,
                         NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "hsc schema: %s", PQresultErrorMessage(r));
            PQclear(r);
            rc = 1;
            break;
        }
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 0), m[i].checksum)) {
                fprintf(stderr,
                        "hsc schema: %s/%s changed after it was applied (checksum %s, applied %s);"
                        " add a new migration instead\n",
                        dir, m[i].name, m[i].checksum, PQgetvalue(r, 0, 0));
                rc = 1;
            } else if (!apply) {
                printf("applied  %s\n", m[i].name);
            }
            PQclear(r);
            continue;
        }
        PQclear(r);
        if (!apply) {
            printf("pending  %s\n", m[i].name);
            rc = 3;
            continue;
        }
        if (!exec_ok(c, "BEGIN", "begin") || !exec_ok(c, m[i].sql, m[i].name)) {
            exec_ok(c, "ROLLBACK", "rollback");
            rc = 1;
            break;
        }
        const char *p3[3] = {v, m[i].name, m[i].checksum};
        r = PQexecParams(
            c, "INSERT INTO hsc_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
            NULL, p3, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "hsc schema: %s", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok || !exec_ok(c, "COMMIT", "commit")) {
            exec_ok(c, "ROLLBACK", "rollback");
            rc = 1;
            break;
        }
        printf("applied  %s\n", m[i].name);
        applied_now++;
    }
    if (apply && rc == 0 && applied_now == 0)
        printf("schema up to date (%d migrations)\n", n);
    exec_ok(c, "SELECT pg_advisory_unlock(" LOCK_KEY ")", "unlock");
out:
    PQfinish(c);
    for (int i = 0; i < n; i++)
        free(m[i].sql);
    free(m);
    return rc == 3 ? 1 : rc;
}

/* Completion of one graph statement: remember the error, stop the loop. */
struct graph_run {
    hsc_err err;
    int done;
};

static void on_graph(void *arg, const hsc_neo4j_result *res, const hsc_err *err)
{
    struct graph_run *g = arg;
    if (!res)
        g->err = *err;
    g->done = 1;
}

/* Applies schemas/neo4j/ *.cypher, one statement at a time (each is idempotent). */
static int apply_graph(hsc_config *cfg)
{
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/neo4j", hsc_config_str(cfg, "paths.schemas"));
    char **st;
    size_t n;
    hsc_err err = {0};
    if (hsc_neo4j_load_statements(dir, &st, &n, &err)) {
        fprintf(stderr, "hsc schema: %s\n", err.msg);
        return 2;
    }
    struct ev_loop *loop = ev_loop_new(0);
    hsc_http *http = hsc_http_new(loop, &err);
    struct hsc_neo4j_settings s;
    hsc_neo4j_settings_load(cfg, &s);
    s.retries = 2;
    hsc_neo4j *neo = http ? hsc_neo4j_new(loop, http, &s, &err) : NULL;
    int rc = neo ? 0 : 1;
    for (size_t i = 0; i < n && !rc; i++) {
        struct graph_run g = {0};
        if (hsc_neo4j_run(neo, st[i], NULL, on_graph, &g, &g.err) == 0)
            while (!g.done)
                ev_run(loop, EVRUN_ONCE);
        if (g.err.code) {
            fprintf(stderr, "hsc schema: neo4j %s: %s\n", hsc_config_str(cfg, "neo4j.url"),
                    g.err.msg);
            rc = 1;
        }
    }
    if (!rc)
        printf("graph constraints applied (%zu statements)\n", n);
    for (size_t i = 0; i < n; i++)
        free(st[i]);
    free(st);
    hsc_http_free(http);
    hsc_neo4j_free(neo);
    ev_loop_destroy(loop);
    return rc;
}

const char CLI_SCHEMA_USAGE[] =
    "Usage: hsc schema apply [pg|neo4j|all]|status\n"
    "  apply   applies the migrations of schemas/postgres not applied yet, then the\n"
    "          graph constraints of schemas/neo4j (default: both)\n"
    "  status  lists them as applied or pending (exits 1 if any is pending)\n";

int cli_schema(hsc_config *cfg, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "apply")) {
        const char *only = argc >= 3 ? argv[2] : "all";
        if (strcmp(only, "all") && strcmp(only, "pg") && strcmp(only, "neo4j")) {
            fprintf(stderr, "hsc schema apply: '%s' is not pg, neo4j or all\n", only);
            return 2;
        }
        int rc = strcmp(only, "neo4j") ? run(cfg, 1) : 0;
        if (!rc && strcmp(only, "pg"))
            rc = apply_graph(cfg);
        return rc;
    }
    if (argc >= 2 && !strcmp(argv[1], "status"))
        return run(cfg, 0);
    int help = argc >= 2 && !strcmp(argv[1], "--help");
    fputs(CLI_SCHEMA_USAGE, help ? stdout : stderr);
    return help ? 0 : 2;
}
