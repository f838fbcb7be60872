/*
 * Tests of hsc-embed-index's pure parts: the text a title is embedded by and
 * which event wins per id (the embeddings client is tested in
 * test_embeddings.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "embed_index/embed_index.h"
#include "normalize.h"

static void test_text_is_title_then_description(void **state)
{
    (void)state;
    hsc_content_event ev = {.title = "Heat", .description = "A heist in L.A."};
    char *t = embed_index_text(&ev);
    assert_string_equal(t, "Heat. A heist in L.A.");
    free(t);
    hsc_content_event bare = {.title = "Solo"};
    t = embed_index_text(&bare);
    assert_string_equal(t, "Solo");
    free(t);
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
        cmocka_unit_test(test_text_is_title_then_description),
        cmocka_unit_test(test_winners_newest_per_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
