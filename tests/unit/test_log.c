/*
 * Log lines as a log shipper reads them: every line parses (logfmt and JSON),
 * values survive quoting, levels filter, and no password or token reaches
 * the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Writes one line with the given fields and returns it (malloc'd). */
static char *line(const char *format, const char *msg, const char *k, const char *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_log_setup("hsc-test", "info", format);
    hsc_log_set_stream(f);
    hsc_log_info(msg, "stage", "ingest", k, v, NULL);
    hsc_log_set_stream(NULL);
    fclose(f);
    return buf;
}

/* A logfmt parser as strict as the common ones: key=value, value bare or "quoted" with \-escapes.
 */
static json_t *parse_logfmt(const char *s)
{
    json_t *o = json_object();
    const char *p = s;
    while (*p && *p != '\n') {
        const char *eq = strchr(p, '=');
        if (!eq || eq == p || memchr(p, ' ', (size_t)(eq - p))) {
            json_decref(o);
            return NULL;
        }
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
        p = eq + 1;
        hsc_buf v = {0};
        hsc_buf_append(&v, "", 0);
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                    if (*p == 'n')
                        hsc_buf_append(&v, "\n", 1);
                    else if (*p == 'x') {
                        char hex[3] = {p[1], p[2], 0};
                        char c = (char)strtol(hex, NULL, 16);
                        hsc_buf_append(&v, &c, 1);
                        p += 2;
                    } else
                        hsc_buf_append(&v, p, 1);
                } else {
                    hsc_buf_append(&v, p, 1);
                }
            }
            if (*p != '"') {
                hsc_buf_free(&v);
                json_decref(o);
                return NULL;
            }
            p++;
        } else {
            size_t n = strcspn(p, " \n");
            hsc_buf_append(&v, p, n);
            p += n;
        }
        hsc_buf_append(&v, "", 1);
        json_object_set_new(o, key, json_string(v.data ? v.data : ""));
        hsc_buf_free(&v);
        if (*p == ' ')
            p++;
    }
    return o;
}

static const char *const AWKWARD[] = {
    "plain",       "two words", "a \"quoted\" word", "k=v inside", "line\nbreak", "tab\there",
    "back\\slash", "",          "ünïcödé",
};

static void test_logfmt_lines_parse_back_to_their_values(void **s)
{
    for (size_t i = 0; i < sizeof(AWKWARD) / sizeof(AWKWARD[0]); i++) {
        char *l = line("logfmt", "message sent to DLQ", "key", AWKWARD[i]);
        assert_non_null(strchr(l, '\n'));
        assert_ptr_equal(strchr(l, '\n'), l + strlen(l) - 1); /* one line */
        json_t *o = parse_logfmt(l);
        if (!o)
            fail_msg("unparseable: %s", l);
        assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
        assert_string_equal(json_string_value(json_object_get(o, "worker")), "hsc-test");
        assert_string_equal(json_string_value(json_object_get(o, "msg")), "message sent to DLQ");
        assert_string_equal(json_string_value(json_object_get(o, "stage")), "ingest");
        assert_string_equal(json_string_value(json_object_get(o, "key")), AWKWARD[i]);
        assert_non_null(json_object_get(o, "ts"));
        json_decref(o);
        free(l);
    }
}

static void test_json_lines_parse_back_to_their_values(void **s)
{
    for (size_t i = 0; i < sizeof(AWKWARD) / sizeof(AWKWARD[0]); i++) {
        char *l = line("json", "stored", "id", AWKWARD[i]);
        json_error_t e;
        json_t *o = json_loads(l, 0, &e);
        if (!o)
            fail_msg("not JSON (%s): %s", e.text, l);
        assert_string_equal(json_string_value(json_object_get(o, "id")), AWKWARD[i]);
        assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
        json_decref(o);
        free(l);
    }
    /* bytes that are not UTF-8 (a poison message's title) still make valid JSON */
    char *l = line("json", "rejected", "error", "title: '\xc1\xff' is not UTF-8");
    json_t *o = json_loads(l, 0, NULL);
    assert_non_null(o);
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "is not UTF-8"));
    json_decref(o);
    free(l);
}

static void test_no_secret_reaches_a_line(void **s)
{
    const char *values[] = {
        "postgresql://hsc:s3cr3t@127.0.0.1:5432/hsc",
        "connect to redis://:s3cr3t@127.0.0.1:6379/0 failed; fell back to redis://u:s3cr3t@h2/1",
        "host=127.0.0.1 user=hsc password=s3cr3t dbname=hsc",
        "POST https://api.example.com/v1/embeddings?api_key=s3cr3t: 401",
        "Authorization: Bearer s3cr3t",
        "token=s3cr3t&x=1",
    };
    for (int fmt = 0; fmt < 2; fmt++)
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            char *l = line(fmt ? "json" : "logfmt", "connecting", "url", values[i]);
            if (strstr(l, "s3cr3t"))
                fail_msg("secret in: %s", l);
            assert_non_null(strstr(l, "****"));
            free(l);
        }
    /* what is not a secret is left alone */
    char *l = line("logfmt", "connecting", "url", "http://127.0.0.1:19530/v1/vector/search");
    assert_non_null(strstr(l, "url=http://127.0.0.1:19530/v1/vector/search"));
    free(l);
}

static void test_levels_filter(void **s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_log_setup("hsc-test", "warn", "logfmt");
    hsc_log_set_stream(f);
    hsc_log_debug("d", NULL);
    hsc_log_info("i", NULL);
    hsc_log_warn("w", NULL);
    hsc_log_error("e", NULL);
    hsc_log_set_stream(NULL);
    fclose(f);
    assert_null(strstr(buf, "msg=d"));
    assert_null(strstr(buf, "msg=i"));
    assert_non_null(strstr(buf, "level=warn worker=hsc-test msg=w\n"));
    assert_non_null(strstr(buf, "level=error worker=hsc-test msg=e\n"));
    free(buf);
    hsc_log_setup(NULL, "info", "logfmt");
}

/* hsc_log_counts writes what hsc_log would with each count formatted in decimal. */
static void test_counts_are_fields_in_decimal(void **s)
{
    const struct hsc_log_count counts[] = {{"consumed", 0}, {"dlq", 18446744073709551615ull}};
    for (int fmt = 0; fmt < 2; fmt++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        hsc_log_setup("hsc-test", "info", fmt ? "json" : "logfmt");
        hsc_log_set_stream(f);
        hsc_log_counts("stopped", "stage", "ingest", counts, 2);
        hsc_log_counts("stopped", NULL, NULL, counts, 1);
        hsc_log_set_stream(NULL);
        fclose(f);
        char *second = strchr(buf, '\n') + 1;
        json_t *a = fmt ? json_loadb(buf, (size_t)(second - buf), 0, NULL) : parse_logfmt(buf);
        json_t *b = fmt ? json_loads(second, 0, NULL) : parse_logfmt(second);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(json_string_value(json_object_get(a, "msg")), "stopped");
        assert_string_equal(json_string_value(json_object_get(a, "stage")), "ingest");
        assert_string_equal(json_string_value(json_object_get(a, "consumed")), "0");
        assert_string_equal(json_string_value(json_object_get(a, "dlq")), "18446744073709551615");
        assert_null(json_object_get(b, "stage"));
        assert_string_equal(json_string_value(json_object_get(b, "consumed")), "0");
        assert_null(json_object_get(b, "dlq"));
        json_decref(a);
        json_decref(b);
        free(buf);
    }
    /* an info line like any other: filtered below warn */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_log_setup("hsc-test", "warn", "logfmt");
    hsc_log_set_stream(f);
    hsc_log_counts("stopped", NULL, NULL, counts, 2);
    hsc_log_set_stream(NULL);
    fclose(f);
    assert_int_equal(len, 0);
    free(buf);
    hsc_log_setup(NULL, "info", "logfmt");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logfmt_lines_parse_back_to_their_values),
        cmocka_unit_test(test_json_lines_parse_back_to_their_values),
        cmocka_unit_test(test_no_secret_reaches_a_line),
        cmocka_unit_test(test_levels_filter),
        cmocka_unit_test(test_counts_are_fields_in_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
