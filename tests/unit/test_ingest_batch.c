/* Tests of workers/ingest/ingest.c's pure batch builders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "json_event.h"

static struct ingest_item *content(const char *json)
{
    struct ingest_item *it = calloc(1, sizeof(*it));
    hsc_err err = {0};
    if (hsc_json_to_content(json, strlen(json), &it->content, &err))
        fail_msg("%s", err.msg);
    return it;
}

static struct ingest_item *learning(const char *json)
{
    struct ingest_item *it = calloc(1, sizeof(*it));
    it->is_learning = 1;
    hsc_err err = {0};
    if (hsc_json_to_learning(json, strlen(json), &it->learning, &err))
        fail_msg("%s", err.msg);
    return it;
}

static void free_items(struct ingest_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hsc_content_event_clear(&items[i]->content);
        hsc_learning_event_clear(&items[i]->learning);
        free(items[i]);
    }
}

static void test_newest_version_per_id_wins(void **s)
{
    struct ingest_item *items[] = {
        content("{\"id\":\"a\",\"version\":2,\"title\":\"A2\"}"),
        content("{\"id\":\"b\",\"version\":1,\"title\":\"B1\"}"),
        content("{\"id\":\"a\",\"version\":1,\"title\":\"A1\"}"),
        content("{\"id\":\"b\",\"version\":1,\"title\":\"B1 again\"}"),
        content("{\"id\":\"c\",\"version\":5,\"title\":\"C5\"}"),
        content("{\"id\":\"c\",\"version\":5,\"op\":\"delete\"}"),
        learning("{\"user_id\":\"u\",\"content_id\":\"a\",\"kind\":\"like\",\"ts\":1}"),
    };
    int winner[7];
    char *json = ingest_content_rows_json(items, 7, winner);
    int expect[7] = {1, 0, 0, 1, 0, 1, 0};
    assert_memory_equal(winner, expect, sizeof(expect));
    json_t *rows = json_loads(json, 0, NULL);
    assert_int_equal(json_array_size(rows), 3);
    /* The tombstone carries its id and version only. */
    json_t *del = json_array_get(rows, 2);
    assert_string_equal(json_string_value(json_object_get(del, "id")), "c");
    assert_true(json_is_true(json_object_get(del, "deleted")));
    assert_null(json_object_get(del, "title"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "title")),
                        "B1 again");
    json_decref(rows);
    free(json);
    free_items(items, 7);
    (void)s;
}

static void test_row_fields_and_embedding_hex(void **s)
{
    struct ingest_item *items[] = {
        content("{\"id\":\"t1\",\"version\":3,\"title\":\"T\",\"genres\":[\"drama\"],\"year\":2001,"
                "\"maturity\":12,\"language\":\"en\",\"embedding\":[1.0,-2.0],\"ts\":99}")};
    int winner[1];
    char *json = ingest_content_rows_json(items, 1, winner);
    json_t *rows = json_loads(json, 0, NULL);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(row, "version")), 3);
    assert_int_equal(json_integer_value(json_object_get(row, "year")), 2001);
    assert_int_equal(json_integer_value(json_object_get(row, "event_ts")), 99);
    assert_int_equal(json_integer_value(json_object_get(row, "embedding_dim")), 2);
    /* 1.0f = 0x3f800000 and -2.0f = 0xc0000000, little-endian */
    assert_string_equal(json_string_value(json_object_get(row, "embedding")), "0000803f000000c0");
    assert_string_equal(json_string_value(json_array_get(json_object_get(row, "genres"), 0)),
                        "drama");
    json_decref(rows);
    free(json);
    free_items(items, 1);
    (void)s;
}

static void test_learning_rows(void **s)
{
    struct ingest_item *items[] = {
        learning(
            "{\"user_id\":\"u1\",\"content_id\":\"a\",\"kind\":\"rating\",\"value\":4,\"ts\":1}"),
        content("{\"id\":\"a\",\"version\":1,\"title\":\"A\"}"),
        learning("{\"user_id\":\"u1\",\"content_id\":\"a\",\"kind\":\"view\",\"ts\":2}"),
    };
    char *json = ingest_learning_rows_json(items, 3);
    json_t *rows = json_loads(json, 0, NULL);
    assert_int_equal(json_array_size(rows), 2);
    assert_true(json_number_value(json_object_get(json_array_get(rows, 0), "value")) == 4.0);
    assert_true(json_is_null(json_object_get(json_array_get(rows, 1), "value")));
    json_decref(rows);
    free(json);
    int winner[1];
    assert_null(ingest_learning_rows_json(items + 1, 1));
    assert_null(ingest_content_rows_json(items, 1, winner));
    free_items(items, 3);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_version_per_id_wins),
        cmocka_unit_test(test_row_fields_and_embedding_hex),
        cmocka_unit_test(test_learning_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
