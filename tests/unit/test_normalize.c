/* Tests of common/transport/normalize.c: the canonical form stored and forwarded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "json_event.h"
#include "normalize.h"

static void parse(const char *json, hsc_content_event *ev)
{
    hsc_err err = {0};
    if (hsc_json_to_content(json, strlen(json), ev, &err))
        fail_msg("parse: %s", err.msg);
}

static void test_text_is_trimmed(void **s)
{
    hsc_content_event ev;
    parse("{\"id\":\"t1\",\"version\":1,\"title\":\"  Alien \\t\\n\",\"description\":\"   \"}",
          &ev);
    hsc_err err = {0};
    assert_int_equal(hsc_normalize_content(&ev, &err), HSC_OK);
    assert_string_equal(ev.title, "Alien");
    assert_null(ev.description); /* blank description is dropped, not stored empty */
    hsc_content_event_clear(&ev);
    (void)s;
}

static void test_whitespace_title_is_rejected(void **s)
{
    hsc_content_event ev;
    parse("{\"id\":\"t1\",\"version\":1,\"title\":\" \\t \"}", &ev);
    hsc_err err = {0};
    assert_int_equal(hsc_normalize_content(&ev, &err), HSC_EINVAL);
    assert_string_equal(err.msg, "title: only whitespace (required for upsert)");
    hsc_content_event_clear(&ev);
    (void)s;
}

static void test_tags_are_lowercased_collapsed_and_deduplicated(void **s)
{
    hsc_content_event ev;
    parse("{\"id\":\"t1\",\"version\":1,\"title\":\"x\","
          "\"genres\":[\"Sci-Fi\",\" sci-fi \",\"SCIENCE   Fiction\",\"\",\"  \",\"Drama\"],"
          "\"themes\":[\"Time Travel\",\"time  travel\"],\"moods\":[\"Éclat\",\"éclat\"]}",
          &ev);
    hsc_err err = {0};
    assert_int_equal(hsc_normalize_content(&ev, &err), HSC_OK);
    assert_int_equal(ev.genres.n, 3);
    assert_string_equal(ev.genres.v[0], "sci-fi");
    assert_string_equal(ev.genres.v[1], "science fiction");
    assert_string_equal(ev.genres.v[2], "drama");
    assert_int_equal(ev.themes.n, 1);
    assert_string_equal(ev.themes.v[0], "time travel");
    /* Non-ASCII letters are not folded (no locale tables): both stay. */
    assert_int_equal(ev.moods.n, 2);
    hsc_content_event_clear(&ev);
    (void)s;
}

static void test_related_drops_self_and_duplicates(void **s)
{
    hsc_content_event ev;
    parse("{\"id\":\"t1\",\"version\":1,\"title\":\"x\",\"related\":[\"t2\",\"t1\",\"t2\",\"t3\"],"
          "\"language\":\"FR\"}",
          &ev);
    hsc_err err = {0};
    assert_int_equal(hsc_normalize_content(&ev, &err), HSC_OK);
    assert_int_equal(ev.related.n, 2);
    assert_string_equal(ev.related.v[0], "t2");
    assert_string_equal(ev.related.v[1], "t3");
    assert_string_equal(ev.language, "fr");
    hsc_content_event_clear(&ev);
    (void)s;
}

static void test_normalize_tag(void **s)
{
    char a[] = "  Film   Noir\t";
    hsc_normalize_tag(a);
    assert_string_equal(a, "film noir");
    char b[] = "";
    hsc_normalize_tag(b);
    assert_string_equal(b, "");
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_is_trimmed),
        cmocka_unit_test(test_whitespace_title_is_rejected),
        cmocka_unit_test(test_tags_are_lowercased_collapsed_and_deduplicated),
        cmocka_unit_test(test_related_drops_self_and_duplicates),
        cmocka_unit_test(test_normalize_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
