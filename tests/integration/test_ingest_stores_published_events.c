/*
 * Publish with the CLI, run hsc-ingest against the real stack, and check what
 * a user would: exactly the published rows with the right fields, the
 * canonical records downstream, learned weights that match the rule, replays
 * and older versions that change nothing, and a clean shutdown on SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hsc/codec.h"
#include "json_event.h"
#include "normalize.h"

#define N_TITLES 500
#define N_EVENTS 2000

/* Expected weights recomputed from the stored events: a double-applied event shows as a difference.
 */
static const char WEIGHTS_MISMATCH_SQL[] =
    "WITH e AS (SELECT l.user_id, t.dim, t.name, sum(hsc_learning_delta(l.kind, l.value)) w"
    " FROM learning_events l JOIN content c ON c.id = l.content_id AND NOT c.deleted"
    " CROSS JOIN LATERAL (SELECT 'genre' dim, g name FROM unnest(c.genres) g UNION ALL"
    "                     SELECT 'theme', th FROM unnest(c.themes) th) t GROUP BY 1,2,3)"
    " SELECT count(*) FROM e FULL JOIN user_preferences p USING (user_id, dim, name)"
    " WHERE p.weight IS NULL OR e.w IS NULL OR abs(p.weight - e.w) > 1e-9";

static char *sample(struct it *t, const char *what, const char *count)
{
    char *out;
    const char *args[] = {"sample",   what,  "--count", count, "--dim", "16",
                          "--titles", "500", "--users", "50",  NULL};
    assert_int_equal(it_run(t, "hsc", args, &out), 0);
    char *path = it_temp_file(out, strlen(out));
    free(out);
    return path;
}

static void publish(struct it *t, const char *topic, const char *path)
{
    char *out;
    const char *args[] = {"publish", "--topic", topic, "--quiet", path, NULL};
    int rc = it_run(t, "hsc", args, &out);
    if (rc != 0)
        fail_msg("hsc publish %s: %s", path, out);
    free(out);
}

static void publish_line(struct it *t, const char *topic, const char *line)
{
    char *path = it_temp_file(line, strlen(line));
    publish(t, topic, path);
    remove(path);
    free(path);
}

static void wait_caught_up(struct it *t)
{
    assert_int_equal(it_wait_caught_up(t, "it-ingest", it_topic(t, "content_events"), 60000), 0);
    assert_int_equal(it_wait_caught_up(t, "it-ingest", it_topic(t, "learning_events"), 60000), 0);
}

static void test_ingest_end_to_end(void **state)
{
    struct it t;
    it_setup(&t);
    char *content = sample(&t, "content", "500");
    char *learning = sample(&t, "learning", "2000");

    publish(&t, "content", content);
    const char *args[] = {"--set", "ingest.group=it-ingest", "--set", "ingest.batch_max=200", NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", args);

    /* Exactly N rows. */
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", N_TITLES, 60000), N_TITLES);

    /* The right fields: row 7 is the normalised form of line 7. */
    FILE *f = fopen(content, "r");
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < 7; i++)
        assert_true(getline(&line, &cap, f) > 0);
    fclose(f);
    hsc_content_event ev;
    hsc_err err = {0};
    assert_int_equal(hsc_json_to_content(line, strlen(line), &ev, &err), 0);
    assert_int_equal(hsc_normalize_content(&ev, &err), 0);
    free(line);
    char *title = it_pg_text(&t, "SELECT title FROM content WHERE id = 't000007'");
    assert_string_equal(title, ev.title);
    free(title);
    char *genres =
        it_pg_text(&t, "SELECT array_to_string(genres, '|') FROM content WHERE id = 't000007'");
    char want[512] = "";
    for (size_t i = 0; i < ev.genres.n; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? "|" : "",
                 ev.genres.v[i]);
    assert_string_equal(genres, want);
    free(genres);
    assert_int_equal(it_pg_int(&t, "SELECT year FROM content WHERE id = 't000007'"), ev.year);
    assert_int_equal(it_pg_int(&t, "SELECT maturity FROM content WHERE id = 't000007'"),
                     ev.maturity);
    assert_int_equal(it_pg_int(&t, "SELECT embedding_dim FROM content WHERE id = 't000007'"), 16);
    assert_int_equal(it_pg_int(&t, "SELECT length(embedding) FROM content WHERE id = 't000007'"),
                     64);
    hsc_content_event_clear(&ev);
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM content WHERE version <> 1 OR deleted"),
                     0);

    /* Canonical records downstream, keyed by id, one per title. */
    struct it_record *recs;
    size_t n = it_consume_all(&t, it_topic(&t, "content_ingested"), N_TITLES, 30000, &recs);
    assert_int_equal(n, N_TITLES);
    for (size_t i = 0; i < n; i++) {
        hsc_content_event e;
        assert_int_equal(hsc_codec_decode_content(recs[i].value, recs[i].len, &e, &err), 0);
        assert_string_equal(recs[i].key, e.id);
        assert_int_equal(e.dim, 16);
        hsc_content_event_clear(&e);
    }
    it_records_free(recs, n);

    /* Learning events: all appended, weights exactly what the rule gives. */
    publish(&t, "learning", learning);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM learning_events", N_EVENTS, 60000),
                     N_EVENTS);
    wait_caught_up(&t);
    assert_true(it_pg_int(&t, "SELECT count(*) FROM user_preferences") > 0);
    assert_int_equal(it_pg_int(&t, WEIGHTS_MISMATCH_SQL), 0);
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM user_policies"),
                     it_pg_int(&t, "SELECT count(DISTINCT user_id) FROM learning_events"));

    /* A hand-checked case: one like adds 1.0 to each genre of the title. */
    long long before =
        it_pg_int(&t, "SELECT count(*) FROM user_preferences WHERE user_id = 'hand'");
    assert_int_equal(before, 0);
    publish_line(&t, "learning",
                 "{\"user_id\":\"hand\",\"content_id\":\"t000007\",\"kind\":\"like\",\"ts\":1}\n"
                 "{\"user_id\":\"hand\",\"content_id\":\"t000007\",\"kind\":\"rating\",\"value\":5,"
                 "\"ts\":2}\n");
    assert_int_equal(
        it_pg_wait(&t,
                   "SELECT count(*) FROM user_preferences WHERE user_id = 'hand' AND dim = 'genre'"
                   " AND weight = 2.0",
                   it_pg_int(&t, "SELECT cardinality(genres) FROM content WHERE id = 't000007'"),
                   30000),
        it_pg_int(&t, "SELECT cardinality(genres) FROM content WHERE id = 't000007'"));
    wait_caught_up(&t);
    assert_int_equal(it_pg_int(&t, "SELECT version FROM user_policies WHERE user_id = 'hand'") >= 1,
                     1);

    /* A replay of everything changes nothing: same row versions, same weights. */
    const char *snap_sql =
        "SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM content";
    const char *wsnap_sql = "SELECT md5(string_agg(user_id || dim || name || weight::text, ',' "
                            "ORDER BY 1)) FROM user_preferences";
    char *snap = it_pg_text(&t, snap_sql), *wsnap = it_pg_text(&t, wsnap_sql);
    long long nevents = it_pg_int(&t, "SELECT count(*) FROM learning_events");
    publish(&t, "content", content);
    publish(&t, "learning", learning);
    n = it_consume_all(&t, it_topic(&t, "content_ingested"), 2 * N_TITLES, 60000, &recs);
    it_records_free(recs, n);
    assert_int_equal(n, 2 * N_TITLES); /* replays are forwarded: downstream is idempotent too */
    wait_caught_up(&t);
    char *snap2 = it_pg_text(&t, snap_sql), *wsnap2 = it_pg_text(&t, wsnap_sql);
    assert_string_equal(snap, snap2);
    assert_string_equal(wsnap, wsnap2);
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM learning_events"), nevents);
    free(snap);
    free(snap2);
    free(wsnap);
    free(wsnap2);

    /* An older version is ignored; a newer one applies; a delete leaves a tombstone. */
    publish_line(&t, "content", "{\"id\":\"t000003\",\"version\":0,\"title\":\"OLD\"}\n");
    wait_caught_up(&t);
    char *t3 = it_pg_text(&t, "SELECT title FROM content WHERE id = 't000003'");
    assert_string_not_equal(t3, "OLD");
    free(t3);
    publish_line(&t, "content",
                 "{\"id\":\"t000003\",\"version\":2,\"title\":\"NEW\"}\n"
                 "{\"op\":\"delete\",\"id\":\"t000004\",\"version\":2}\n");
    assert_int_equal(
        it_pg_wait(&t, "SELECT count(*) FROM content WHERE id = 't000003' AND title = 'NEW'", 1,
                   30000),
        1);
    assert_int_equal(it_pg_wait(&t,
                                "SELECT count(*) FROM content WHERE id = 't000004' AND deleted AND "
                                "title IS NULL AND version = 2",
                                1, 30000),
                     1);
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM content"), N_TITLES);

    /* SIGTERM: finishes, commits, leaves; nothing left to read for the group. */
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    assert_int_equal(it_group_lag(&t, "it-ingest", it_topic(&t, "content_events")), 0);
    assert_int_equal(it_group_lag(&t, "it-ingest", it_topic(&t, "learning_events")), 0);

    remove(content);
    remove(learning);
    free(content);
    free(learning);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ingest_end_to_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
