/*
 * Tests of workers/query/offsets.c: the offset stored is the first request
 * not yet answered, whatever order the answers come in; a revoke commits the
 * answered ones above it in the metadata, and the next owner skips them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hsc/error.h"
#include "offsets.h"

static void test_stored_offset_is_the_first_unanswered(void **s)
{
    struct query_offsets o = {0};
    struct ptrack *t = query_offsets_track(&o, 3);
    assert_non_null(t);
    /* Enough offsets to make the tracker grow while its front has moved. */
    for (int64_t off = 100; off < 1100; off++)
        assert_int_equal(query_offsets_push(t, off), HSC_OK);
    unsigned gen = t->gen;
    /* Answered out of order: nothing is stored until 100 is answered. */
    assert_int_equal(query_offsets_mark_done(&o, 3, 102, gen), -1);
    assert_int_equal(query_offsets_mark_done(&o, 3, 101, gen), -1);
    assert_int_equal(query_offsets_mark_done(&o, 3, 100, gen), 103);
    for (int64_t off = 103; off < 1099; off++)
        assert_int_equal(query_offsets_mark_done(&o, 3, off, gen), off + 1);
    /* A late answer of a revoked generation changes nothing. */
    assert_int_equal(query_offsets_mark_done(&o, 3, 1099, gen + 1), -1);
    assert_int_equal(query_offsets_mark_done(&o, 3, 1099, gen), 1100);
    query_offsets_free(&o);
}

static void test_revoke_commits_answered_offsets_and_next_owner_skips_them(void **s)
{
    struct query_offsets o = {0};
    struct ptrack *t = query_offsets_track(&o, 0);
    for (int64_t off = 10; off < 15; off++)
        assert_int_equal(query_offsets_push(t, off), HSC_OK);
    unsigned gen = t->gen;
    assert_int_equal(query_offsets_mark_done(&o, 0, 10, gen), 11);
    query_offsets_mark_sent(&o, 0, 12, gen); /* produced, not yet acknowledged */
    assert_int_equal(query_offsets_mark_done(&o, 0, 14, gen), -1);

    rd_kafka_topic_partition_t e;
    memset(&e, 0, sizeof(e));
    char meta[SKIP_META_MAX];
    assert_int_equal(query_offsets_revoke_point(t, &e, meta, sizeof(meta)), 1);
    assert_int_equal(e.offset, 11); /* 11 was never answered */
    assert_non_null(e.metadata);

    /* The next owner starts at 11 and skips 12 and 14, answers 11 and 13. */
    struct query_offsets next = {0};
    struct ptrack *n = query_offsets_track(&next, 0);
    query_offsets_load_skip(n, e.offset, e.metadata, e.metadata_size);
    assert_false(query_offsets_skipped(n, 11));
    assert_true(query_offsets_skipped(n, 12));
    assert_false(query_offsets_skipped(n, 13));
    assert_true(query_offsets_skipped(n, 14));
    assert_false(query_offsets_skipped(n, 15));

    /* After the revoke the old owner forgets the partition; its late answers are ignored. */
    query_offsets_reset(t);
    assert_int_equal(query_offsets_mark_done(&o, 0, 11, gen), -1);
    memset(&e, 0, sizeof(e));
    assert_int_equal(query_offsets_revoke_point(t, &e, meta, sizeof(meta)), 0);
    query_offsets_free(&o);
    query_offsets_free(&next);
}

static void test_bad_partition_has_no_tracker(void **s)
{
    struct query_offsets o = {0};
    assert_null(query_offsets_track(&o, -1));
    query_offsets_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stored_offset_is_the_first_unanswered),
        cmocka_unit_test(test_revoke_commits_answered_offsets_and_next_owner_skips_them),
        cmocka_unit_test(test_bad_partition_has_no_tracker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
