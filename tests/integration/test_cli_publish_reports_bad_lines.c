/*
 * hsc publish against the real broker: a bad line is reported with its line
 * number and the field, the good lines are published (and keyed by id), and
 * the exit status says that some lines failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "it_common.h"
#include "hsc/codec.h"

static void test_bad_lines(void **state)
{
    struct it t;
    it_setup(&t);
    const char *text = "{\"id\":\"a1\",\"version\":1,\"title\":\"One\"}\n"
                       "\n"
                       "{\"id\":\"a 2\",\"version\":1,\"title\":\"Two\"}\n"
                       "{\"id\":\"a3\",\"version\":1,\"title\":\"Three\",\"year\":\"1999\"}\n"
                       "{\"id\":\"a4\",\"version\":1,\"title\":\"Four\",\"embedding\":[0.5,0.25]}\n"
                       "{broken\n"
                       "{\"op\":\"delete\",\"id\":\"a1\",\"version\":2}\n";
    char *path = it_temp_file(text, strlen(text));
    char *out;
    const char *args[] = {"publish", "--topic", "content", path, NULL};
    int rc = it_run(&t, "hsc", args, &out);
    assert_int_equal(rc, 1);
    char want[1024];
    snprintf(want, sizeof(want), "%s:3: id: 'a 2' is not 1-128 characters", path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "%s:4: year: expected an integer, got a string", path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "%s:6: not JSON", path);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "published 3 events"));
    assert_non_null(strstr(out, "3 bad lines"));
    free(out);

    struct it_record *recs;
    size_t n = it_consume_all(&t, it_topic(&t, "content_events"), 3, 20000, &recs);
    assert_int_equal(n, 3);
    int saw_embedding = 0;
    for (size_t i = 0; i < n; i++) {
        hsc_content_event ev;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_decode_content(recs[i].value, recs[i].len, &ev, &err), 0);
        assert_string_equal(recs[i].key, ev.id);
        if (ev.dim == 2) {
            saw_embedding = 1;
            assert_true(ev.embedding[0] == 0.5f && ev.embedding[1] == 0.25f);
        }
        hsc_content_event_clear(&ev);
    }
    assert_true(saw_embedding);
    it_records_free(recs, n);

    /* A clean file exits 0; a missing one exits 2 with the reason. */
    const char *clean = "{\"user_id\":\"u1\",\"content_id\":\"a4\",\"kind\":\"like\",\"ts\":5}\n";
    char *path2 = it_temp_file(clean, strlen(clean));
    const char *args2[] = {"publish", "--topic", "learning", path2, NULL};
    assert_int_equal(it_run(&t, "hsc", args2, NULL), 0);
    const char *args3[] = {"publish", "--topic", "content", "/nonexistent.jsonl", NULL};
    assert_int_equal(it_run(&t, "hsc", args3, &out), 2);
    assert_non_null(strstr(out, "/nonexistent.jsonl: No such file or directory"));
    free(out);
    remove(path);
    remove(path2);
    free(path);
    free(path2);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bad_lines)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
