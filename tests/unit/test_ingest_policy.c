/*
 * Tests of workers/ingest/ingest.c's policy batch builder: the golden policy
 * events become the rows hsc_apply_policy_events reads, in batch order, and
 * content or learning items in the same batch are left to their own builders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "ingest/ingest.h"
#include "json_event.h"
#include "util.h"
#include "golden.h"

static struct ingest_item *policy(const char *golden_name)
{
    struct ingest_item *it = calloc(1, sizeof(*it));
    it->is_policy = 1;
    size_t len;
    unsigned char *g = golden_bytes(golden_name, &len);
    hsc_err err = {0};
    if (hsc_codec_decode_policy(g, len, &it->policy, &err))
        fail_msg("%s: %s", golden_name, err.msg);
    free(g);
    return it;
}

static void test_policy_rows_in_batch_order(void **s)
{
    struct ingest_item *items[4];
    items[0] = policy("policy_set_full.msgpack.hex");
    items[1] = calloc(1, sizeof(*items[1]));
    hsc_err err = {0};
    const char *c = "{\"id\":\"t1\",\"version\":1,\"title\":\"T\"}";
    assert_int_equal(hsc_json_to_content(c, strlen(c), &items[1]->content, &err), HSC_OK);
    items[2] = policy("policy_set_clear.msgpack.hex");
    items[3] = policy("policy_erase.msgpack.hex");
    char *rows = ingest_policy_rows_json(items, 4);
    assert_non_null(rows);
    json_t *a = json_loads(rows, 0, NULL);
    assert_int_equal(json_array_size(a), 3);
    json_t *r0 = json_array_get(a, 0), *r1 = json_array_get(a, 1), *r2 = json_array_get(a, 2);
    assert_string_equal(json_string_value(json_object_get(r0, "user_id")), "u0001");
    assert_int_equal(json_integer_value(json_object_get(r0, "version")), 3);
    assert_string_equal(json_string_value(json_object_get(r0, "op")), "set");
    assert_int_equal(json_integer_value(json_object_get(r0, "ts")), 1700000000456LL);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r0, "excluded_genres"), 1)), "war");
    assert_int_equal(json_integer_value(json_object_get(r0, "max_maturity")), 12);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r0, "blocked_ids"), 0)),
                        "t000013");
    json_t *p1 = json_array_get(json_object_get(r0, "prefs"), 1);
    assert_string_equal(json_string_value(json_object_get(p1, "dim")), "theme");
    assert_string_equal(json_string_value(json_object_get(p1, "name")), "revenge");
    assert_true(json_real_value(json_object_get(p1, "weight")) == -2.0);
    assert_null(json_object_get(r0, "clear"));
    /* the clearing event: only what it names, fields in wire order */
    assert_null(json_object_get(r1, "excluded_genres"));
    json_t *cl = json_object_get(r1, "clear");
    assert_int_equal(json_array_size(cl), 2);
    assert_string_equal(json_string_value(json_array_get(cl, 0)), "excluded_genres");
    assert_string_equal(json_string_value(json_array_get(cl, 1)), "prefs");
    assert_string_equal(json_string_value(json_object_get(r2, "op")), "erase");
    assert_int_equal(json_object_size(r2), 4); /* user_id, version, op, ts */
    json_decref(a);
    free(rows);
    /* the content builder keeps only the content item */
    int winner[4] = {0};
    char *content = ingest_content_rows_json(items, 4, winner);
    assert_non_null(content);
    assert_int_equal(winner[0] + winner[1] + winner[2] + winner[3], 1);
    assert_int_equal(winner[1], 1);
    free(content);
    assert_null(ingest_learning_rows_json(items, 4));
    assert_null(ingest_policy_rows_json(items + 1, 1));
    for (int i = 0; i < 4; i++) {
        hsc_content_event_clear(&items[i]->content);
        hsc_policy_event_clear(&items[i]->policy);
        free(items[i]);
    }
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_rows_in_batch_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
