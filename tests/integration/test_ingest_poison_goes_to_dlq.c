/*
 * Poison messages (not MessagePack, wrong types, missing id, oversized, and
 * one the database itself rejects) go to hsc.dlq with headers naming the
 * stage, the error and the source; the valid messages around them are stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "hsc/codec.h"

static void valid_event_desc(int i, const char *title, const char *desc, char **buf, size_t *len)
{
    hsc_content_event ev = {0};
    char id[32];
    snprintf(id, sizeof(id), "ok%03d", i);
    ev.v = 1;
    ev.id = id;
    ev.version = 1;
    ev.title = (char *)title;
    ev.description = (char *)desc;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_content(&ev, buf, len, &err), 0);
}

static void valid_event(int i, const char *title, char **buf, size_t *len)
{
    valid_event_desc(i, title, NULL, buf, len);
}

struct sent {
    const char *what;
    int32_t partition;
    long long offset;
    const char *error_part;
};

static void test_poison_to_dlq(void **state)
{
    struct it t;
    it_setup(&t);
    const char *topic = it_topic(&t, "content_events");
    /* The database rejects what the codec allows: a constraint only this test has. */
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM (SELECT 1) x"), 1);
    PQclear(PQexec(
        t.pg, "ALTER TABLE content ADD CONSTRAINT it_no_forbidden CHECK (title <> 'FORBIDDEN')"));

    struct sent bad[5];
    int nbad = 0, nvalid = 0;
    char *buf;
    size_t len;
    for (int i = 0; i < 30; i++) {
        valid_event(i, "fine", &buf, &len);
        char key[32];
        snprintf(key, sizeof(key), "ok%03d", i);
        assert_true(it_produce(&t, topic, key, buf, len, NULL) >= 0);
        free(buf);
        nvalid++;
        if (i == 5) {
            struct sent *s = &bad[nbad++];
            s->what = "not msgpack";
            s->error_part = "message: not MessagePack";
            s->offset = it_produce(&t, topic, "junk", "\xc1\xc1garbage", 9, &s->partition);
        } else if (i == 10) {
            /* id is an integer */
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 4);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "v", 1);
            msgpack_pack_int(&pk, 1);
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "op", 2);
            msgpack_pack_str(&pk, 6);
            msgpack_pack_str_body(&pk, "upsert", 6);
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "id", 2);
            msgpack_pack_int(&pk, 42);
            msgpack_pack_str(&pk, 7);
            msgpack_pack_str_body(&pk, "version", 7);
            msgpack_pack_int(&pk, 1);
            struct sent *s = &bad[nbad++];
            s->what = "wrong type";
            s->error_part = "id: expected a string, got integer";
            s->offset = it_produce(&t, topic, "42", sb.data, sb.size, &s->partition);
            msgpack_sbuffer_destroy(&sb);
        } else if (i == 15) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 3);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "v", 1);
            msgpack_pack_int(&pk, 1);
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "op", 2);
            msgpack_pack_str(&pk, 6);
            msgpack_pack_str_body(&pk, "upsert", 6);
            msgpack_pack_str(&pk, 7);
            msgpack_pack_str_body(&pk, "version", 7);
            msgpack_pack_int(&pk, 1);
            struct sent *s = &bad[nbad++];
            s->what = "missing id";
            s->error_part = "id: missing";
            s->offset = it_produce(&t, topic, NULL, sb.data, sb.size, &s->partition);
            msgpack_sbuffer_destroy(&sb);
        } else if (i == 20) {
            /* A valid event, but larger than ingest.max_message_bytes (set to 8192 below). */
            char *big = malloc(12000);
            memset(big, 'x', 11999);
            big[11999] = '\0';
            valid_event_desc(999, "big", big, &buf, &len);
            free(big);
            struct sent *s = &bad[nbad++];
            s->what = "oversized";
            s->error_part = "is more than ingest.max_message_bytes (8192)";
            s->offset = it_produce(&t, topic, "ok999", buf, len, &s->partition);
            free(buf);
        } else if (i == 25) {
            valid_event(998, "FORBIDDEN", &buf, &len);
            struct sent *s = &bad[nbad++];
            s->what = "rejected by postgresql";
            s->error_part = "it_no_forbidden";
            s->offset = it_produce(&t, topic, "ok998", buf, len, &s->partition);
            free(buf);
        }
    }
    for (int i = 0; i < nbad; i++)
        assert_true(bad[i].offset >= 0);

    int port = 20000 + (int)((getpid() + 13) % 20000);
    char mp[48];
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    const char *args[] = {
        "--set", "ingest.group=it-poison", "--set", "ingest.max_message_bytes=8192",
        "--set", "ingest.linger_ms=50",    "--set", mp,
        "--set", "log.format=json",        NULL};
    /* the worker's stderr goes to a file, to read its log lines as a shipper would */
    char logpath[] = "/tmp/hsc-it-log-XXXXXX";
    int lfd = mkstemp(logpath), saved = dup(2);
    assert_true(lfd >= 0 && saved >= 0);
    dup2(lfd, 2);
    pid_t ingest = it_spawn(&t, "hsc-ingest", args);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    assert_int_equal(it_pg_wait(&t, "SELECT count(*) FROM content", nvalid, 60000), nvalid);

    struct it_record *recs;
    size_t n = it_consume_all(&t, it_topic(&t, "dlq"), (size_t)nbad, 60000, &recs);
    assert_int_equal(n, nbad);
    for (int i = 0; i < nbad; i++) {
        const struct it_record *r = NULL;
        char off[32], part[16];
        snprintf(off, sizeof(off), "%lld", bad[i].offset);
        snprintf(part, sizeof(part), "%d", bad[i].partition);
        for (size_t k = 0; k < n; k++)
            if (!strcmp(it_header(&recs[k], "hsc-source-offset"), off) &&
                !strcmp(it_header(&recs[k], "hsc-source-partition"), part))
                r = &recs[k];
        if (!r)
            fail_msg("%s (partition %s offset %s) is not in the DLQ", bad[i].what, part, off);
        assert_string_equal(it_header(r, "hsc-stage"), "ingest");
        assert_string_equal(it_header(r, "hsc-source-topic"), topic);
        assert_string_equal(it_header(r, "hsc-error-code"), "invalid");
        if (!strstr(it_header(r, "hsc-error"), bad[i].error_part))
            fail_msg("%s: error header '%s' lacks '%s'", bad[i].what, it_header(r, "hsc-error"),
                     bad[i].error_part);
    }
    /* The payload is kept so the message can be inspected and replayed. */
    for (size_t k = 0; k < n; k++)
        if (!strcmp(it_header(&recs[k], "hsc-error-code"), "invalid") &&
            strstr(it_header(&recs[k], "hsc-error"), "not MessagePack"))
            assert_memory_equal(recs[k].value, "\xc1\xc1garbage", 9);
    it_records_free(recs, n);
    assert_int_equal(it_pg_int(&t, "SELECT count(*) FROM content WHERE title = 'fine'"), nvalid);
    /* The worker's own metrics count what the test sent: every message, and the bad ones. */
    char url[96], want_c[256], want_d[256], want_f[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    snprintf(want_c, sizeof(want_c),
             "\nhsc_messages_consumed_total{stage=\"ingest\",topic=\"%s\"} %d\n", topic,
             nvalid + nbad);
    snprintf(want_d, sizeof(want_d), "\nhsc_dlq_messages_total{stage=\"ingest\",topic=\"%s\"} %d\n",
             topic, nbad);
    long long until = it_ms() + 10000;
    char *m = NULL;
    long st = 0;
    for (;;) {
        free(m);
        m = it_http("GET", url, NULL, &st);
        if ((m && strstr(m, want_c) && strstr(m, want_d)) || it_ms() > until)
            break;
        usleep(200000);
    }
    assert_int_equal(st, 200);
    if (!strstr(m, want_c) || !strstr(m, want_d))
        fail_msg("expected%s and%s in:\n%s", want_c, want_d, m);
    assert_non_null(strstr(m, "# TYPE hsc_batch_duration_seconds histogram"));
    /* one failed per DLQ'd message; the batch sizes; PostgreSQL's latency per statement */
    snprintf(want_f, sizeof(want_f),
             "\nhsc_messages_failed_total{stage=\"ingest\",topic=\"%s\"} %d\n", topic, nbad);
    assert_non_null(strstr(m, want_f));
    assert_non_null(strstr(m, "hsc_batch_size_messages_bucket{stage=\"ingest\",le=\"1\"}"));
    const char *pgc = strstr(
        m, "hsc_backend_request_duration_seconds_count{backend=\"postgresql\",op=\"content\"} ");
    assert_non_null(pgc);
    assert_true(atoll(strchr(pgc, '}') + 2) >= 1);
    free(m);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
    free(it_http("GET", url, NULL, &st));
    assert_int_equal(st, 200);
    /* And the worker is still up, and stops cleanly. */
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    assert_int_equal(it_group_lag(&t, "it-poison", topic), 0);

    /* Every log line is one JSON object with a level and the worker; each DLQ'd
     * message has a line naming its key; the database password appears nowhere. */
    FILE *lf = fopen(logpath, "r");
    assert_non_null(lf);
    char *ln = NULL;
    size_t cap = 0;
    int lines = 0, dlq_lines = 0, keyed = 0;
    const char *pw_at = strchr(strstr(t.pg_url, "://") + 3, ':');
    char pw[128] = "";
    if (pw_at && strchr(pw_at, '@'))
        snprintf(pw, sizeof(pw), "%.*s", (int)(strchr(pw_at, '@') - pw_at - 1), pw_at + 1);
    while (getline(&ln, &cap, lf) > 0) {
        lines++;
        json_error_t je;
        json_t *o = json_loads(ln, 0, &je);
        if (!o)
            fail_msg("log line is not JSON (%s): %s", je.text, ln);
        assert_string_equal(json_string_value(json_object_get(o, "worker")), "hsc-ingest");
        assert_non_null(json_string_value(json_object_get(o, "level")));
        assert_non_null(json_string_value(json_object_get(o, "ts")));
        if (!strcmp(json_string_value(json_object_get(o, "msg")), "message sent to DLQ")) {
            dlq_lines++;
            assert_non_null(json_string_value(json_object_get(o, "error")));
            keyed += !strcmp(json_string_value(json_object_get(o, "key")), "ok999");
        }
        if (pw[0] && strstr(ln, pw))
            fail_msg("the database password is in a log line: %s", ln);
        json_decref(o);
    }
    free(ln);
    fclose(lf);
    unlink(logpath);
    assert_true(lines >= 3);
    assert_int_equal(dlq_lines, nbad);
    assert_int_equal(keyed, 1);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_poison_to_dlq)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
