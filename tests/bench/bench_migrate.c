/*
 * bench_migrate: migration throughput end to end against the real stack. Generates a
 * legacy catalogue of N titles (tests/integration/it_legacy.h: embeddings on the
 * nodes, 3-5 relationships each) in Neo4j, runs hsc-ingest, hsc-enrich and
 * hsc-embed-index, then times
 *   1. hsc-migrate publishing every title (titles/s onto the topic), and
 *   2. from the start until `hsc-migrate --verify` passes (every title in
 *      PostgreSQL, Milvus and the graph, sampled embeddings equal, relationships
 *      present): the end-to-end titles/s,
 *   3. one more --verify pass on its own.
 * "All in <store>" is when a poll (every 250 ms, from the start of the publish) first
 * saw every title there. No per-title latency is printed: the row's updated_at is
 * now(), the transaction's start, which leaves out the commit (bench_ingest measures
 * the ingest latency honestly, from send to the forwarded record).
 *
 * A store that does not hold every title within --wait seconds prints "did not finish" and
 * the program exits 1 (no verify is attempted).
 *
 *   bench_migrate [--titles N (5000)] [--dim D (384)] [--page P (500)] [--rate R (0)]
 *                 [--wait S (900)]
 *                 [--fixture-only: make the legacy catalogue, print how to migrate it, stop]
 * Needs the variables of .local/stack.env.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"
#include "it_legacy.h"
#include "util.h"

static double seconds_since(long long ms)
{
    return (double)(it_ms() - ms) / 1000.0;
}

static const char USAGE[] =
    "Usage: bench_migrate [--titles N (5000)] [--dim D (384)] [--page P (500)] [--rate R (0)]\n"
    "                     [--wait S (900)] [--fixture-only]\n"
    "Migration throughput end to end: a generated legacy catalogue in Neo4j through\n"
    "hsc-migrate and the pipeline, until --verify passes. Needs .local/stack.env.\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    int titles = 5000, dim = 384, wait_s = 900;
    const char *page = "500", *rate = "0";
    int fixture_only = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--fixture-only"))
            fixture_only = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--titles"))
            titles = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--page"))
            page = argv[i + 1];
        else if (!strcmp(argv[i], "--rate"))
            rate = argv[i + 1];
        else if (!strcmp(argv[i], "--wait"))
            wait_s = atoi(argv[i + 1]);
    }
    struct it t;
    it_setup(&t);
    if (!fixture_only) /* the benchmark counts :Content nodes; a trial keeps what is there */
        it_neo4j_reset();
    long long t0 = it_ms();
    struct itl_fixture f;
    itl_make(&t, &f, titles, dim);
    printf(
        "legacy catalogue: %d nodes (%d migratable, %lld relationships), dim %d, made in %.1f s\n",
        f.nodes, f.good, f.relationships, dim, seconds_since(t0));
    if (fixture_only) {
        /* leave it in place, for trying hsc-migrate by hand */
        /* the mapping, and the legacy policy table's database; titles go to the default topics */
        hsc_buf cmd = {0};
        for (const char **a = itl_args(&f, NULL); *a; a++)
            if (!strstr(*a, "redis.policy_key_prefix") && !strstr(*a, "page_size"))
                hsc_buf_printf(&cmd, "%s%s", strcmp(*a, "--set") ? " " : " \\\n    ", *a);
        /* the shell expands HSC_PG_URL, so no password is printed */
        hsc_buf_printf(&cmd, " \\\n    --set migrate.legacy_pg_url=\"${HSC_PG_URL%%/*}/%s\"", t.db);
        printf("try it (with the pipeline running, e.g. after deploy/local/demo):\n"
               "  build/hsc migrate --dry-run%s\n",
               cmd.data);
        printf("then without --dry-run, then with --verify --wait 600.\n");
        hsc_buf_free(&cmd);
        return 0;
    }
    char page_set[64], dim_set[64];
    snprintf(page_set, sizeof(page_set), "migrate.page_size=%s", page);
    snprintf(f.set[f.nset++], sizeof(f.set[0]), "%s", page_set);
    snprintf(dim_set, sizeof(dim_set), "milvus.dimension=%d", dim);
    const char *ia[] = {"--set", "ingest.group=bm-ingest", "--set", "log.level=warn", NULL};
    const char *ea[] = {"--set", "enrich.group=bm-enrich", "--set", "log.level=warn", NULL};
    const char *xa[] = {
        "--set", "embed_index.group=bm-index", "--set", dim_set, "--set", "log.level=warn", NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ia);
    pid_t enrich = it_spawn(&t, "hsc-enrich", ea);
    pid_t indexer = it_spawn(&t, "hsc-embed-index", xa);

    char *out;
    const char *run[] = {"--rate", rate, "--quiet", NULL};
    long long start = it_ms();
    int rc = it_run(&t, "hsc-migrate", itl_args(&f, run), &out);
    double publish_s = seconds_since(start);
    if (rc) {
        fprintf(stderr, "hsc-migrate failed (%d):\n%s", rc, out);
        return 1;
    }
    free(out);
    /* when each store had every title, to show which stage bounds the pipeline */
    double at[3] = {0, 0, 0};
    char q[256];
    snprintf(q, sizeof(q), "MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)");
    while (!(at[0] && at[1] && at[2]) && seconds_since(start) < wait_s) {
        if (!at[0] && it_pg_int(&t, "SELECT count(*) FROM content") >= f.good)
            at[0] = seconds_since(start);
        if (!at[1] && it_neo4j_int(q) >= f.good)
            at[1] = seconds_since(start);
        if (!at[2] && it_milvus_count(&t) >= f.good)
            at[2] = seconds_since(start);
        usleep(250000);
    }
    char cell[3][32];
    for (int i = 0; i < 3; i++)
        if (at[i])
            snprintf(cell[i], sizeof(cell[i]), "%.1f s", at[i]);
        else
            snprintf(cell[i], sizeof(cell[i]), "did not finish in %d s", wait_s);
    int finished = at[0] && at[1] && at[2];
    double e2e_s = 0, verify_s = 0;
    if (finished) {
        char wait_arg[16];
        snprintf(wait_arg, sizeof(wait_arg), "%d", wait_s);
        const char *verify[] = {"--verify", "--wait", wait_arg, "--quiet", NULL};
        rc = it_run(&t, "hsc-migrate", itl_args(&f, verify), &out);
        e2e_s = seconds_since(start);
        if (rc) {
            fprintf(stderr, "verify failed (%d):\n%s", rc, out);
            return 1;
        }
        free(out);
        long long v0 = it_ms();
        rc = it_run(&t, "hsc-migrate", itl_args(&f, verify), &out);
        verify_s = seconds_since(v0);
        printf("%s", out);
        free(out);
    }
    printf("\n| titles | dim | page | published | all in PostgreSQL | all in Neo4j | all in Milvus "
           "| verified | end-to-end titles/s | one verify pass |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    if (finished)
        printf("| %d | %d | %s | %.1f s (%.0f/s) | %s | %s | %s | %.1f s | %.0f | %.1f s |\n",
               f.good, dim, page, publish_s, f.good / publish_s, cell[0], cell[1], cell[2], e2e_s,
               f.good / e2e_s, verify_s);
    if (finished)
        printf("\nheadline: end-to-end %.0f titles/s / published %.0f titles/s = %.2fx\n",
               f.good / e2e_s, f.good / publish_s, publish_s / e2e_s);
    else
        printf("| %d | %d | %s | %.1f s (%.0f/s) | %s | %s | %s | not attempted | - | - |\n",
               f.good, dim, page, publish_s, f.good / publish_s, cell[0], cell[1], cell[2]);
    it_stop(indexer, SIGTERM, 30000);
    it_stop(enrich, SIGTERM, 30000);
    it_stop(ingest, SIGTERM, 30000);
    itl_drop(&f);
    it_teardown(&t);
    if (!finished) {
        fprintf(stderr, "bench_migrate: FAILED: a store did not hold every title within %d s\n",
                wait_s);
        return 1;
    }
    return rc;
}
