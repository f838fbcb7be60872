/*
 * Tests of hsc-embed-index's pure parts: the embeddings request and the
 * parsing of an OpenAI-compatible answer, and which event wins per id.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "embed_index/embed_index.h"
#include "normalize.h"

static void test_text_and_request(void **state)
{
    (void)state;
    hsc_content_event ev = {.title = "Heat", .description = "A heist in L.A."};
    char *t = embed_index_text(&ev);
    assert_string_equal(t, "Heat. A heist in L.A.");
    const char *texts[] = {t, "Solo"};
    char *body = embed_index_request_json("m1", texts, 2);
    json_t *o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "m1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "input"), 1)), "Solo");
    json_decref(o);
    free(body);
    free(t);
}

static void test_parse_orders_by_index(void **state)
{
    (void)state;
    const char *resp = "{\"object\":\"list\",\"data\":["
                       "{\"object\":\"embedding\",\"index\":1,\"embedding\":[3,4]},"
                       "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1.5,2]}],"
                       "\"model\":\"m\"}";
    float *out[2];
    hsc_err err = {0};
    assert_int_equal(embed_index_parse_embeddings(resp, strlen(resp), 2, 2, out, &err), HSC_OK);
    assert_true(out[0][0] == 1.5f && out[0][1] == 2.0f);
    assert_true(out[1][0] == 3.0f && out[1][1] == 4.0f);
    free(out[0]);
    free(out[1]);
}

static void test_parse_names_what_differs(void **state)
{
    (void)state;
    float *out[2];
    hsc_err err = {0};
    const char *wrong_dim = "{\"data\":[{\"index\":0,\"embedding\":[1,2,3]}]}";
    assert_int_equal(embed_index_parse_embeddings(wrong_dim, strlen(wrong_dim), 1, 2, out, &err),
                     HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "3 values"));
    assert_non_null(strstr(err.msg, "milvus.dimension is 2"));
    const char *short_ = "{\"data\":[{\"index\":0,\"embedding\":[1,2]}]}";
    assert_int_equal(embed_index_parse_embeddings(short_, strlen(short_), 2, 2, out, &err),
                     HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "asked for 2, got 1"));
    assert_int_equal(embed_index_parse_embeddings("oops", 4, 1, 2, out, &err), HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "no data array"));
    assert_null(out[0]);
}

static void test_winners_newest_per_id(void **state)
{
    (void)state;
    hsc_content_event a1 = {.id = "a", .version = 1}, a2 = {.id = "a", .version = 2},
                      b1 = {.id = "b", .version = 5},
                      a2del = {.id = "a", .version = 2, .op = HSC_OP_DELETE},
                      b1again = {.id = "b", .version = 5};
    const hsc_content_event *evs[] = {&a2, &a1, &b1, &a2del, &b1again, NULL};
    int w[6];
    hsc_content_pick_winners(evs, 6, w);
    /* a: the delete at version 2 beats the upsert at 2 and the older 1; b: the later replay. */
    int want[6] = {0, 0, 0, 1, 1, 0};
    assert_memory_equal(w, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_request),
        cmocka_unit_test(test_parse_orders_by_index),
        cmocka_unit_test(test_parse_names_what_differs),
        cmocka_unit_test(test_winners_newest_per_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
