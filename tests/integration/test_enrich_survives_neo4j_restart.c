/*
 * Neo4j is stopped in the middle of a stream and started again: hsc-enrich
 * pauses, retries with backoff, and in the end the graph is what was
 * published. Half the events are published before the outage and half
 * during it. Checked as sets, since Neo4j's unique constraint on Content.id
 * makes a duplicate node impossible whatever the worker does:
 *  - the (id, version) of the Content nodes equals the published set (a lost
 *    title or a stale version shows);
 *  - the (title, genre) pairs of the BELONGS_TO edges, each edge counted,
 *    equal the canonical genres PostgreSQL holds (a lost or a doubled edge
 *    shows);
 *  - hsc.content.enriched carries every published (id, version), read to its
 *    end as a seen-set (a duplicate delivery is allowed, a gap is not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include "it_common.h"

#define N 1500

static void test_neo4j_restart_mid_stream(void **state)
{
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    char *content = it_sample(&t, "content", "1500", "1500");
    char *first, *second;
    it_split_lines(content, N / 2, &first, &second);
    const char *ingest_args[] = {"--set", "ingest.group=it-neorestart-ingest", NULL};
    const char *enrich_args[] = {
        "--set", "enrich.group=it-neorestart", "--set", "enrich.batch_max=100",
        "--set", "backoff.max_ms=1000",        "--set", "neo4j.retries=1",
        NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t enrich = it_spawn(&t, "hsc-enrich", enrich_args);

    assert_int_equal(it_publish(&t, "content", first), 0);
    long long end = it_ms() + 120000, seen = -1;
    while (it_ms() < end &&
           (seen = it_neo4j_int("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)")) < 100)
        usleep(100000);
    assert_true(seen >= 100);

    fprintf(stderr, "-- stopping neo4j\n");
    assert_int_equal(it_shell("%s/deploy/local/down neo4j", HSC_SOURCE_DIR), 0);
    assert_int_equal(it_publish(&t, "content", second), 0);
    sleep(3); /* enrich meets the outage: its writes fail and it backs off */
    fprintf(stderr, "-- starting neo4j\n");
    assert_int_equal(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up neo4j "
                              ">/dev/null 2>&1",
                              HSC_SOURCE_DIR),
                     0);

    assert_int_equal(
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", N, 240000), N);
    assert_int_equal(
        it_wait_caught_up(&t, "it-neorestart", it_topic(&t, "content_ingested"), 120000), 0);
    /* The titles: exactly the published (id, version) pairs. */
    it_pg_load_jsonl(&t, "pub_content", content);
    struct it_strs want, got;
    it_pg_strs(&t, IT_PUBLISHED_ID_VERSION("pub_content"), &want);
    it_neo4j_strs("MATCH (c:Content) WHERE c.stub IS NULL RETURN c.id, toString(c.version)", &got);
    assert_int_equal(want.n, N);
    assert_int_equal(it_strs_diff("Content (id, version)", &want, "published", &got, "graph"), 0);
    it_strs_free(&want);
    it_strs_free(&got);
    /* Their genre edges: one per canonical genre, none lost, none doubled. */
    it_pg_strs(&t, "SELECT id, g FROM content, unnest(genres) g", &want);
    it_neo4j_strs("MATCH (c:Content)-[:BELONGS_TO]->(g:Genre) RETURN c.id, g.name", &got);
    assert_true(want.n >= N);
    assert_int_equal(it_strs_diff("BELONGS_TO (id, genre)", &want, "postgresql", &got, "graph"), 0);
    it_strs_free(&want);
    it_strs_free(&got);
    /* The enriched topic got every title, with its version. */
    assert_int_equal(it_forwarded_diff(&t, it_topic(&t, "content_enriched"), "pub_content"), 0);

    assert_int_equal(it_stop(enrich, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    remove(content);
    remove(first);
    remove(second);
    free(content);
    free(first);
    free(second);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_neo4j_restart_mid_stream)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
