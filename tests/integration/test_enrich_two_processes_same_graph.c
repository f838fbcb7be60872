/*
 * Two hsc-enrich processes in one group build the same SIMILAR_TO graph as
 * one, and both equal the formula computed here independently:
 *  - N titles through hsc-ingest, then re-tags of some and deletes of others;
 *  - run 1: two enrich processes share the ingested topic's partitions (each
 *    holds the whole index: PostgreSQL at start, every partition after);
 *  - run 2: the graph wiped, one enrich process in a new group, started after
 *    everything is in PostgreSQL (its index is loaded whole, then the topic
 *    replays: the restart-with-backlog path);
 *  - the two SIMILAR_TO sets (source, target, score) are equal, and every
 *    title's list keeps scores by the formula with no better title left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include "enrich/enrich.h"
#include "hsc/codec.h"
#include "it_common.h"
#include "json_event.h"
#include "normalize.h"

#define N 500
#define TOP 5

static hsc_content_event evs[N];
static int gone[N];

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

static void produce(struct it *t, const hsc_content_event *ev)
{
    char *buf;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_content(ev, &buf, &len, &err), 0);
    assert_true(it_produce(t, it_topic(t, "content_events"), ev->id, buf, len, NULL) >= 0);
    free(buf);
}

/* Re-tags every 9th title (a new genre set and no themes) and deletes every 13th. */
static void change_catalogue(struct it *t, const struct enrich_vocab *v)
{
    static const char *G[] = {"drama", "comedy", "horror", "romance"};
    for (int i = 0; i < N; i++) {
        if (i % 13 == 5) {
            hsc_content_event del = {
                .v = 1, .op = HSC_OP_DELETE, .id = evs[i].id, .version = evs[i].version + 1};
            produce(t, &del);
            gone[i] = 1;
        } else if (i % 9 == 4) {
            hsc_content_event *e = &evs[i];
            e->version++;
            hsc_strlist_clear(&e->genres);
            hsc_strlist_clear(&e->themes);
            hsc_strlist_push(&e->genres, G[i % 4], strlen(G[i % 4]));
            hsc_strlist_push(&e->genres, G[(i / 4) % 4], strlen(G[(i / 4) % 4]));
            hsc_err err = {0};
            assert_int_equal(hsc_normalize_content(e, &err), 0);
            produce(t, e);
            enrich_extract(v, e); /* the title and description's keywords, as enrich finds */
        }
    }
}

/* The SIMILAR_TO set, sorted, once two reads a second apart agree. */
static json_t *similar_set(void)
{
    const char *q = "MATCH (a:Content)-[s:SIMILAR_TO]->(b:Content) "
                    "RETURN a.id, b.id, s.score ORDER BY a.id, b.id";
    json_t *prev = it_neo4j(q, NULL);
    for (int i = 0; i < 60; i++) {
        sleep(1);
        json_t *cur = it_neo4j(q, NULL);
        if (prev && cur && json_equal(prev, cur)) {
            json_decref(prev);
            return cur;
        }
        json_decref(prev);
        prev = cur;
    }
    fail_msg("the SIMILAR_TO set did not settle");
    return NULL;
}

static void check_formula(json_t *set, const struct enrich_weights *w)
{
    /* Per source: its kept targets and scores. */
    for (int a = 0; a < N; a++) {
        double lowest = 2;
        int linked[N] = {0};
        size_t nl = 0, i;
        json_t *row;
        json_array_foreach (set, i, row) {
            if (strcmp(json_string_value(json_array_get(row, 0)), evs[a].id))
                continue;
            if (gone[a])
                fail_msg("deleted %s still has edges", evs[a].id);
            int b = index_of(json_string_value(json_array_get(row, 1)));
            assert_true(b >= 0 && b != a);
            if (gone[b])
                fail_msg("%s -> deleted %s", evs[a].id, evs[b].id);
            double got = json_number_value(json_array_get(row, 2));
            double want = enrich_similarity(&evs[a], &evs[b], w);
            if (fabs(got - want) > 1e-9)
                fail_msg("%s -> %s: score %.12f, formula %.12f", evs[a].id, evs[b].id, got, want);
            lowest = got < lowest ? got : lowest;
            linked[b] = 1;
            nl++;
        }
        assert_true(nl <= TOP);
        if (gone[a])
            continue;
        for (int b = 0; b < N; b++) {
            if (b == a || gone[b])
                continue;
            double sc = enrich_similarity(&evs[a], &evs[b], w);
            int must = sc >= w->min_score && (nl < TOP || sc > lowest + 1e-12);
            if (must && !linked[b])
                fail_msg("%s: %s scores %.6f but is not linked (lowest kept %.6f, %zu kept)",
                         evs[a].id, evs[b].id, sc, lowest, nl);
        }
    }
}

static void test_two_processes_build_the_graph_of_one(void **state)
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

    /* Run 1: two processes in one group. */
    const char *ingest_args[] = {"--set", "ingest.group=it-2p-ingest", NULL};
    const char *two_args[] = {"--set", "enrich.group=it-2p",  "--set", "enrich.similar_top_n=5",
                              "--set", "enrich.batch_max=50", NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t e1 = it_spawn(&t, "hsc-enrich", two_args);
    pid_t e2 = it_spawn(&t, "hsc-enrich", two_args);
    assert_int_equal(it_publish(&t, "content", content), 0);
    assert_int_equal(it_wait_caught_up(&t, "it-2p-ingest", it_topic(&t, "content_events"), 120000),
                     0);
    change_catalogue(&t, &vocab);
    assert_int_equal(it_wait_caught_up(&t, "it-2p-ingest", it_topic(&t, "content_events"), 120000),
                     0);
    assert_int_equal(it_wait_caught_up(&t, "it-2p", it_topic(&t, "content_ingested"), 120000), 0);
    json_t *two = similar_set();
    assert_true(json_array_size(two) > (size_t)N);
    assert_int_equal(it_stop(e1, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(e2, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);

    /* Run 2: the graph wiped, one process in a new group, everything already in PostgreSQL. */
    it_neo4j_reset();
    const char *one_args[] = {"--set", "enrich.group=it-1p", "--set", "enrich.similar_top_n=5",
                              NULL};
    pid_t e3 = it_spawn(&t, "hsc-enrich", one_args);
    assert_int_equal(it_wait_caught_up(&t, "it-1p", it_topic(&t, "content_ingested"), 120000), 0);
    json_t *one = similar_set();
    assert_int_equal(it_stop(e3, SIGTERM, 30000), 0);

    print_message("SIMILAR_TO edges: %zu with two processes, %zu with one\n", json_array_size(two),
                  json_array_size(one));
    assert_int_equal(json_array_size(two), json_array_size(one));
    for (size_t i = 0; i < json_array_size(one); i++) {
        json_t *a = json_array_get(two, i), *b = json_array_get(one, i);
        if (strcmp(json_string_value(json_array_get(a, 0)),
                   json_string_value(json_array_get(b, 0))) ||
            strcmp(json_string_value(json_array_get(a, 1)),
                   json_string_value(json_array_get(b, 1))) ||
            fabs(json_number_value(json_array_get(a, 2)) -
                 json_number_value(json_array_get(b, 2))) > 1e-12)
            fail_msg(
                "edge %zu differs: %s -> %s (two processes) vs %s -> %s (one)", i,
                json_string_value(json_array_get(a, 0)), json_string_value(json_array_get(a, 1)),
                json_string_value(json_array_get(b, 0)), json_string_value(json_array_get(b, 1)));
    }
    check_formula(one, &w);

    json_decref(one);
    json_decref(two);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_processes_build_the_graph_of_one)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
