/*
 * hsc-migrate against the real stack, on a generated legacy catalogue
 * (thousands of titles with embeddings and relationships under the test's
 * own labels and property names, some broken on purpose) and a legacy
 * policy table:
 *  - the dry run reports exactly the broken nodes and rows, and publishes
 *    nothing;
 *  - a migration killed halfway (SIGKILL) and started again completes, and
 *    every store holds each title once;
 *  - --verify passes, and fails naming what is missing once something is
 *    taken away;
 *  - policies arrive mapped as docs/migration.md says, with their versions
 *    published to Redis; a second run changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include "it_common.h"
#include "it_legacy.h"

static struct it T;
static struct itl_fixture F;
static pid_t ingest, enrich, indexer;

/* Runs hsc-migrate with the fixture's mapping; returns the exit status, output in *out. */
static int migrate(const char *const *extra, char **out)
{
    return it_run(&T, "hsc-migrate", itl_args(&F, extra), out);
}

/* The JSON report in a run's output (log lines may come first). */
static json_t *report(const char *out)
{
    const char *p = out;
    while (p && *p && !(*p == '{' && (p == out || p[-1] == '\n')))
        p = strchr(p + 1, '{');
    json_t *o = p ? json_loads(p, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (!o)
        fail_msg("no JSON report in:\n%s", out);
    return o;
}

static long long jint(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *v = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, "."))
        v = json_object_get(v, tok);
    if (!json_is_integer(v))
        fail_msg("%s: not an integer in the report", path);
    return json_integer_value(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_dry_run_reports_exactly_the_broken_ones(void **s)
{
    char *out;
    const char *extra[] = {"--dry-run", "--json", "--quiet", NULL};
    T.valgrind = 1;                            /* and no leak or bad access on the way */
    assert_int_equal(migrate(extra, &out), 1); /* problems found */
    T.valgrind = 0;
    json_t *r = report(out);
    assert_int_equal(jint(r, "titles"), F.nodes);
    assert_int_equal(jint(r, "migratable"), F.good);
    assert_int_equal(jint(r, "policies"), F.policies);
    assert_int_equal(jint(r, "problems.counts.bad_id"), 4);
    assert_int_equal(jint(r, "problems.counts.duplicate_id"), 6);
    assert_int_equal(jint(r, "problems.counts.no_embedding"), 6);
    assert_int_equal(jint(r, "problems.counts.wrong_dimension"), 5);
    assert_int_equal(jint(r, "problems.counts.invalid"), 2);
    assert_int_equal(jint(r, "problems.counts.policy"), 2);
    /* the list names each broken node or row once, and nothing else */
    json_t *list = json_object_get(json_object_get(r, "problems"), "list");
    assert_int_equal(json_array_size(list), F.nbroken);
    int matched[64] = {0};
    size_t i;
    json_t *p;
    json_array_foreach (list, i, p) {
        const char *kind = json_string_value(json_object_get(p, "kind"));
        const char *id = json_string_value(json_object_get(p, "id"));
        int found = 0;
        for (int k = 0; k < F.nbroken && !found; k++)
            if (!matched[k] && !strcmp(F.broken[k].kind, kind) && !strcmp(F.broken[k].id, id))
                matched[k] = found = 1;
        if (!found)
            fail_msg("unexpected problem %s '%s': %s", kind, id,
                     json_string_value(json_object_get(p, "detail")));
        assert_true(strlen(json_string_value(json_object_get(p, "detail"))) > 5);
    }
    /* the reasons name the field */
    json_array_foreach (list, i, p) {
        const char *kind = json_string_value(json_object_get(p, "kind"));
        const char *detail = json_string_value(json_object_get(p, "detail"));
        if (!strcmp(kind, "wrong_dimension"))
            assert_non_null(strstr(detail, "property vec): 8 values, expected 16"));
        if (!strcmp(kind, "no_embedding"))
            assert_non_null(strstr(detail, "property vec"));
        if (!strcmp(json_string_value(json_object_get(p, "id")), "x00001-rating"))
            assert_non_null(strstr(detail, "Unrated-XYZ"));
    }
    json_decref(r);
    free(out);
    /* nothing was published, nothing was checkpointed, no policy written */
    struct it_record *recs = NULL;
    assert_int_equal(it_consume_all(&T, it_topic(&T, "content_events"), 1, 3000, &recs), 0);
    it_records_free(recs, 0);
    assert_int_equal(it_pg_int(&T, "SELECT count(*) FROM migrate_checkpoints"), 0);
    assert_int_equal(it_pg_int(&T, "SELECT count(*) FROM user_policies"), 0);
}

static void test_killed_halfway_then_completes_without_duplicates(void **s)
{
    /* slow enough to be killed in the middle */
    char set_rate[] = "--rate", mport[48];
    int port = 20000 + (int)((getpid() + 29) % 20000);
    snprintf(mport, sizeof(mport), "metrics.port=%d", port);
    const char *args[96];
    const char *extra[] = {"--set", mport, set_rate, "400", "--quiet", NULL};
    memcpy(args, itl_args(&F, extra), sizeof(args));
    pid_t pid = it_spawn(&T, "hsc-migrate", args);
    long long half = it_pg_wait_at_least(
        &T, "SELECT coalesce(max(published), 0) FROM migrate_checkpoints", F.good / 2, 60000);
    assert_true(half >= F.good / 2);
    /* watched like a worker: progress and the legacy reads on /metrics */
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    long st = 0;
    char *metrics = it_http("GET", url, NULL, &st);
    assert_int_equal(st, 200);
    const char *pub = strstr(metrics, "\nhsc_migrate_published_total{mode=\"migrate\"} ");
    assert_non_null(pub);
    assert_true(atoll(strchr(pub, '}') + 2) >= half);
    char total[96];
    snprintf(total, sizeof(total), "\nhsc_migrate_titles{mode=\"migrate\"} %d\n", F.nodes);
    assert_non_null(strstr(metrics, total));
    assert_non_null(strstr(
        metrics, "hsc_backend_request_duration_seconds_count{backend=\"neo4j\",op=\"statement\"}"));
    free(metrics);
    kill(pid, SIGKILL);
    assert_int_equal(it_stop(pid, SIGKILL, 10000), 128 + SIGKILL);
    long long at_kill = it_pg_int(&T, "SELECT published FROM migrate_checkpoints");
    assert_true(at_kill < F.good); /* it really was cut short */

    char *out;
    const char *again[] = {"--json", "--quiet", NULL};
    int rc = migrate(again, &out);
    if (rc)
        fail_msg("the resumed run failed:\n%s", out);
    json_t *r = report(out);
    assert_int_equal(jint(r, "published"), F.good);
    assert_true(jint(r, "resumed_from") >= at_kill);
    json_decref(r);
    free(out);
    assert_int_equal(
        it_pg_int(&T, "SELECT count(*) FROM migrate_checkpoints WHERE finished_at IS NOT NULL"), 1);

    /* the pipeline stores every title once */
    assert_int_equal(it_pg_wait(&T, "SELECT count(*) FROM content", F.good, 180000), F.good);
    char q[256];
    snprintf(q, sizeof(q), "MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)");
    assert_int_equal(it_neo4j_wait(q, F.good, 240000), F.good);
    assert_int_equal(it_milvus_wait_count(&T, F.good, 240000), F.good);
    /* a replayed page may be on the topic twice (at most one page), but lands once */
    struct it_record *recs = NULL;
    size_t n =
        it_consume_all(&T, it_topic(&T, "content_events"), (size_t)F.good + 1000, 8000, &recs);
    it_records_free(recs, n);
    if (n < (size_t)F.good || n > (size_t)F.good + 100)
        fail_msg("%zu content events for %d titles", n, F.good);
    assert_int_equal(it_neo4j_int("MATCH (c:Content) WITH c.id AS id, count(*) AS k WHERE k > 1"
                                  " RETURN count(id)"),
                     0);
    assert_int_equal(it_neo4j_int("MATCH (c:Content)-[r]->(x) WITH c, type(r) AS t, x,"
                                  " count(r) AS k WHERE k > 1 RETURN count(*)"),
                     0);
    char **ids = NULL;
    size_t nids = it_milvus_ids(&T, &ids);
    assert_int_equal(nids, F.good);
    qsort(ids, nids, sizeof(char *), cmp_str);
    for (size_t i = 1; i < nids; i++) /* sorted: neighbours differ */
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);

    /* each broken node went to the DLQ with its reason */
    n = it_consume_all(&T, it_topic(&T, "dlq"), 1000, 5000, &recs);
    int seen[64] = {0};
    for (size_t i = 0; i < n; i++) {
        char problem[32];
        snprintf(problem, sizeof(problem), "%s", it_header(&recs[i], "hsc-problem"));
        assert_string_equal(it_header(&recs[i], "hsc-stage"), "migrate");
        json_t *o = json_loadb(recs[i].value, recs[i].len, 0, NULL);
        assert_non_null(o);
        const json_t *id = json_object_get(o, "id");
        char idtext[64] = "";
        if (json_is_string(id))
            snprintf(idtext, sizeof(idtext), "%s", json_string_value(id));
        else if (json_is_integer(id))
            snprintf(idtext, sizeof(idtext), "%lld", (long long)json_integer_value(id));
        for (int k = 0; k < F.nbroken_nodes; k++)
            if (!seen[k] && !strcmp(F.broken[k].kind, problem) && !strcmp(F.broken[k].id, idtext)) {
                seen[k] = 1;
                break;
            }
        json_decref(o);
    }
    it_records_free(recs, n);
    for (int k = 0; k < F.nbroken_nodes; k++)
        if (!seen[k])
            fail_msg("no DLQ message for %s '%s'", F.broken[k].kind, F.broken[k].id);
}

static void test_verify_passes_then_names_what_is_missing(void **s)
{
    char *out;
    const char *extra[] = {"--verify", "--wait", "240", "--json", "--quiet", NULL};
    int rc = migrate(extra, &out);
    if (rc)
        fail_msg("verify failed:\n%s", out);
    json_t *r = report(out);
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_int_equal(jint(r, "migratable"), F.good);
    assert_int_equal(jint(r, "postgresql"), F.good);
    assert_int_equal(jint(r, "milvus"), F.good);
    assert_int_equal(jint(r, "graph"), F.good);
    assert_true(jint(r, "embeddings_compared") >= 150);
    assert_int_equal(jint(r, "embeddings_different"), 0);
    assert_int_equal(jint(r, "relationships"), F.relationships);
    assert_int_equal(jint(r, "relationships_missing"), 0);
    assert_int_equal(jint(r, "policies_matching"), F.policies);
    json_decref(r);
    free(out);

    /* take a row and an edge away: verify fails and names both */
    it_pg_int(&T, "DELETE FROM content WHERE id = 'm000042'; SELECT 0");
    json_decref(it_neo4j("MATCH (:Content {id: 'm000077'})-[r:HAS_MOOD]->() DELETE r", NULL));
    const char *again[] = {"--verify", "--json", "--quiet", NULL};
    T.valgrind = 1;
    assert_int_equal(migrate(again, &out), 1);
    T.valgrind = 0;
    r = report(out);
    assert_false(json_is_true(json_object_get(r, "ok")));
    assert_int_equal(jint(r, "postgresql"), F.good - 1);
    char *missing = json_dumps(json_object_get(r, "missing_postgresql"), 0);
    assert_non_null(strstr(missing, "m000042 (no row)"));
    free(missing);
    missing = json_dumps(json_object_get(r, "missing_relationships"), 0);
    assert_non_null(strstr(missing, "m000077 -mood-> "));
    free(missing);
    json_decref(r);
    free(out);
}

static void test_policies_are_mapped_and_versions_published(void **s)
{
    assert_int_equal(it_pg_int(&T, "SELECT count(*) FROM user_policies"), F.policies);
    /* i = 3: 'Horror, Thriller', i % 4 = 3 -> no rating, odd -> no languages */
    char *row =
        it_pg_text(&T, "SELECT excluded_genres::text || ' ' || coalesce(max_maturity::text, '-')"
                       " || ' ' || languages::text FROM user_policies WHERE user_id = 'u0003'");
    assert_string_equal(row, "{horror,thriller} - {}");
    free(row);
    /* i = 4: 'Romance', 'PG-13' -> 13, ['en', 'FR'] -> lower case */
    row = it_pg_text(&T,
                     "SELECT excluded_genres::text || ' ' || max_maturity || ' ' || languages::text"
                     " FROM user_policies WHERE user_id = 'u0004'");
    assert_string_equal(row, "{romance} 13 {en,fr}");
    free(row);
    row = it_pg_text(&T, "SELECT max_maturity::text FROM user_policies WHERE user_id = 'u0002'");
    assert_string_equal(row, "7"); /* a plain age passes through */
    free(row);
    char key[128];
    snprintf(key, sizeof(key), "%su0004", F.policy_prefix);
    assert_int_equal(it_redis_int(key),
                     it_pg_int(&T, "SELECT version FROM user_policies WHERE user_id = 'u0004'"));

    /* a finished migration does nothing on a second run; --restart re-publishes idempotently */
    char *out;
    const char *extra[] = {"--quiet", NULL};
    assert_int_equal(migrate(extra, &out), 0);
    assert_non_null(strstr(out, "already complete"));
    free(out);
    long long v = it_pg_int(&T, "SELECT sum(version) FROM user_policies");
    const char *restart[] = {"--restart", "--quiet", NULL};
    T.valgrind = 1;
    assert_int_equal(migrate(restart, &out), 0);
    T.valgrind = 0;
    free(out);
    assert_int_equal(it_pg_int(&T, "SELECT sum(version) FROM user_policies"), v);
    /* the republished titles (same versions) bring back the row taken away, and nothing more */
    assert_int_equal(it_pg_wait(&T, "SELECT count(*) FROM content", F.good, 120000), F.good);
    /* hsc status lists the finished migration */
    const char *st[] = {"status", "--json", NULL};
    it_run(&T, "hsc", st, &out);
    json_t *r = report(out);
    json_t *mig = json_array_get(json_object_get(r, "migrations"), 0);
    assert_string_equal(json_string_value(json_object_get(mig, "name")), "legacy");
    assert_true(json_is_true(json_object_get(mig, "finished")));
    assert_int_equal(jint(mig, "published"), F.good);
    assert_int_equal(jint(mig, "titles"), F.nodes);
    json_decref(r);
    free(out);
}

static int setup(void **s)
{
    it_setup(&T);
    it_neo4j_reset();
    itl_make(&T, &F, 2003, 16);
    const char *ia[] = {"--set", "ingest.group=mig-ingest", NULL};
    const char *ea[] = {"--set", "enrich.group=mig-enrich", NULL};
    const char *xa[] = {"--set", "embed_index.group=mig-index", "--set", "milvus.dimension=16",
                        NULL};
    ingest = it_spawn(&T, "hsc-ingest", ia);
    enrich = it_spawn(&T, "hsc-enrich", ea);
    indexer = it_spawn(&T, "hsc-embed-index", xa);
    return 0;
}

static int teardown(void **s)
{
    int bad = 0;
    bad |= it_stop(indexer, SIGTERM, 30000) != 0;
    bad |= it_stop(enrich, SIGTERM, 30000) != 0;
    bad |= it_stop(ingest, SIGTERM, 30000) != 0;
    itl_drop(&F);
    it_teardown(&T);
    return bad ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dry_run_reports_exactly_the_broken_ones),
        cmocka_unit_test(test_killed_halfway_then_completes_without_duplicates),
        cmocka_unit_test(test_verify_passes_then_names_what_is_missing),
        cmocka_unit_test(test_policies_are_mapped_and_versions_published),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
