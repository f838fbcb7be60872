/*
 * Events through hsc-ingest, hsc-enrich and hsc-embed-index into the real
 * PostgreSQL, Neo4j and Milvus:
 *  - N titles: N Content nodes, with exactly the tag and editorial edges the
 *    events (plus the vocabulary's keywords) imply;
 *  - SIMILAR_TO: at most top_n per title, each score equal to the weighted
 *    Jaccard formula, and no better-scoring title left out;
 *  - a replay changes no count; a delete removes the node and its edges;
 *  - embed-index, reading the enriched topic, puts the same N titles in Milvus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <signal.h>

#include "enrich/enrich.h"
#include "hsc/codec.h"
#include "it_common.h"
#include "json_event.h"
#include "normalize.h"

#define N 400
#define TOP 5

static hsc_content_event evs[N];

static void load_expected(const char *path, const struct enrich_vocab *v)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (int i = 0; i < N && (len = getline(&line, &cap, f)) > 0; i++) {
        hsc_err err = {0};
        assert_int_equal(hsc_json_to_content(line, (size_t)len, &evs[i], &err), 0);
        assert_int_equal(hsc_normalize_content(&evs[i], &err), 0);
        enrich_extract(v, &evs[i]);
    }
    free(line);
    fclose(f);
}

static int index_of(const char *id)
{
    for (int i = 0; i < N; i++)
        if (evs[i].id && !strcmp(evs[i].id, id))
            return i;
    return -1;
}

static long long count_rel(const char *type)
{
    char q[256];
    snprintf(q, sizeof(q), "MATCH (:Content)-[r:%s]->() RETURN count(r)", type);
    return it_neo4j_int(q);
}

static void test_enrich_graph(void **state)
{
    struct it t;
    it_setup(&t);
    it_neo4j_reset();
    char count[16];
    snprintf(count, sizeof(count), "%d", N);
    char *content = it_sample(&t, "content", count, count);
    struct enrich_vocab vocab;
    hsc_err err = {0};
    assert_int_equal(enrich_vocab_load(HSC_SOURCE_DIR "/schemas/vocabulary.tsv", &vocab, &err), 0);
    load_expected(content, &vocab);
    struct enrich_weights w = {
        .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = TOP, .fanout = 2000};

    const char *ingest_args[] = {"--set", "ingest.group=it-graph-ingest", NULL};
    const char *enrich_args[] = {"--set", "enrich.group=it-graph", "--set",
                                 "enrich.similar_top_n=5", NULL};
    const char *ei_args[] = {
        "--set", "embed_index.group=it-graph-ei",      "--set", "milvus.dimension=16",
        "--set", "embed_index.input=content_enriched", NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t enrich = it_spawn(&t, "hsc-enrich", enrich_args);
    pid_t ei = it_spawn(&t, "hsc-embed-index", ei_args);
    assert_int_equal(it_publish(&t, "content", content), 0);

    assert_int_equal(
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", N, 120000), N);
    assert_int_equal(it_wait_caught_up(&t, "it-graph", it_topic(&t, "content_ingested"), 120000),
                     0);

    /* Exactly the edges the events imply. */
    long long g = 0, th = 0, m = 0, rel = 0;
    for (int i = 0; i < N; i++) {
        g += (long long)evs[i].genres.n;
        th += (long long)evs[i].themes.n;
        m += (long long)evs[i].moods.n;
        rel += (long long)evs[i].related.n;
    }
    assert_int_equal(count_rel("BELONGS_TO"), g);
    assert_int_equal(count_rel("HAS_THEME"), th);
    assert_int_equal(count_rel("HAS_MOOD"), m);
    assert_int_equal(count_rel("RELATED_TO"), rel);
    assert_int_equal(it_neo4j_int("MATCH (c:Content) WHERE c.stub RETURN count(c)"), 0);

    /* SIMILAR_TO: bounded, scored by the formula, and truly the best. */
    assert_true(it_neo4j_int("MATCH (c:Content) RETURN max(COUNT { (c)-[:SIMILAR_TO]->() })") <=
                TOP);
    for (int k = 0; k < 8; k++) {
        int a = k * 47 % N;
        char params[200];
        snprintf(params, sizeof(params), "{\"id\":\"%s\"}", evs[a].id);
        json_t *rows = it_neo4j("MATCH (:Content {id: $id})-[s:SIMILAR_TO]->(o) "
                                "RETURN o.id, s.score ORDER BY s.score DESC",
                                params);
        assert_non_null(rows);
        double lowest = 2;
        const char *linked[TOP + 1];
        size_t nl = 0, i;
        json_t *row;
        json_array_foreach (rows, i, row) {
            const char *oid = json_string_value(json_array_get(row, 0));
            int b = index_of(oid);
            assert_true(b >= 0);
            double got = json_number_value(json_array_get(row, 1));
            double want = enrich_similarity(&evs[a], &evs[b], &w);
            if (fabs(got - want) > 1e-9)
                fail_msg("%s -> %s: score %.12f, formula %.12f", evs[a].id, oid, got, want);
            assert_true(got >= w.min_score);
            lowest = got < lowest ? got : lowest;
            assert_true(nl < TOP);
            linked[nl++] = evs[b].id;
        }
        for (int b = 0; b < N; b++) {
            double sc = enrich_similarity(&evs[a], &evs[b], &w);
            /* Left out only if not better than every kept one (or under the threshold). */
            int must = b != a && sc >= w.min_score && (nl < TOP || sc > lowest + 1e-12);
            int is = 0;
            for (size_t k2 = 0; k2 < nl; k2++)
                is |= !strcmp(linked[k2], evs[b].id);
            if (must && !is)
                fail_msg("%s: %s scores %.6f but is not linked (lowest kept %.6f)", evs[a].id,
                         evs[b].id, sc, lowest);
        }
        json_decref(rows);
    }

    /* A replay changes no count. */
    long long nodes = it_neo4j_int("MATCH (n) RETURN count(n)");
    long long rels = it_neo4j_int("MATCH ()-[r]->() RETURN count(r)");
    long long sims = count_rel("SIMILAR_TO");
    assert_int_equal(it_publish(&t, "content", content), 0);
    assert_int_equal(
        it_wait_caught_up(&t, "it-graph-ingest", it_topic(&t, "content_events"), 60000), 0);
    assert_int_equal(it_wait_caught_up(&t, "it-graph", it_topic(&t, "content_ingested"), 120000),
                     0);
    assert_int_equal(it_neo4j_int("MATCH (n) RETURN count(n)"), nodes);
    assert_int_equal(it_neo4j_int("MATCH ()-[r]->() RETURN count(r)"), rels);
    assert_int_equal(count_rel("SIMILAR_TO"), sims);

    /* A delete removes the node and every edge that touched it. */
    const char *gone = evs[7].id;
    hsc_content_event del = {.v = 1, .op = HSC_OP_DELETE, .id = (char *)gone, .version = 99};
    char *buf;
    size_t len;
    assert_int_equal(hsc_codec_encode_content(&del, &buf, &len, &err), 0);
    assert_true(it_produce(&t, it_topic(&t, "content_events"), gone, buf, len, NULL) >= 0);
    free(buf);
    assert_int_equal(
        it_neo4j_wait("MATCH (c:Content) WHERE c.stub IS NULL RETURN count(c)", N - 1, 60000),
        N - 1);
    char params[100];
    snprintf(params, sizeof(params), "{\"id\":\"%s\"}", gone);
    json_t *left = it_neo4j("MATCH (c:Content {id: $id}) RETURN count(c)", params);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(left, 0), 0)), 0);
    json_decref(left);
    assert_true(count_rel("SIMILAR_TO") <= (N - 1) * TOP);

    /* The same titles reached Milvus through the enriched topic. */
    assert_int_equal(it_milvus_wait_count(&t, N - 1, 120000), N - 1);

    assert_int_equal(it_stop(ei, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(enrich, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    for (int i = 0; i < N; i++)
        hsc_content_event_clear(&evs[i]);
    enrich_vocab_free(&vocab);
    remove(content);
    free(content);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_enrich_graph)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
