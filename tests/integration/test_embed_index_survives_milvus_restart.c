/*
 * Milvus is stopped in the middle of a stream and started again: embed-index
 * pauses, retries with backoff, and in the end Milvus holds every title
 * exactly once. Half the events are published before the outage and half
 * during it, so the stream is really cut in the middle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include "it_common.h"

#define N 6000

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_milvus_restart_mid_stream(void **state)
{
    struct it t;
    it_setup(&t);
    char *content = it_sample(&t, "content", "6000", "6000");
    char *first, *second;
    it_split_lines(content, N / 2, &first, &second);
    const char *ingest_args[] = {"--set", "ingest.group=it-mvrestart-ingest", NULL};
    const char *ei_args[] = {"--set", "embed_index.group=it-mvrestart",
                             "--set", "milvus.dimension=16",
                             "--set", "embed_index.batch_max=100",
                             "--set", "backoff.max_ms=1000",
                             "--set", "milvus.retries=1",
                             NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t ei = it_spawn(&t, "hsc-embed-index", ei_args);

    assert_int_equal(it_publish(&t, "content", first), 0);
    long long end = it_ms() + 60000, seen = -1;
    while (it_ms() < end && (seen = it_milvus_count(&t)) < 500)
        usleep(100000);
    assert_true(seen >= 500);

    fprintf(stderr, "-- stopping milvus\n");
    assert_int_equal(it_shell("%s/deploy/local/down milvus", HSC_SOURCE_DIR), 0);
    assert_int_equal(it_publish(&t, "content", second), 0);
    sleep(3); /* embed-index meets the outage: its writes fail and it backs off */
    fprintf(stderr, "-- starting milvus\n");
    assert_int_equal(it_shell("HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up milvus "
                              ">/dev/null 2>&1",
                              HSC_SOURCE_DIR),
                     0);

    assert_int_equal(it_milvus_wait_count(&t, N, 180000), N);
    assert_int_equal(it_wait_caught_up(&t, "it-mvrestart", it_topic(&t, "content_ingested"), 60000),
                     0);
    sleep(3); /* past Milvus's bounded staleness, so a duplicate would show */
    char **ids;
    size_t n = it_milvus_ids(&t, &ids);
    assert_int_equal(n, N);
    /* None twice: sorted, no neighbours equal. */
    qsort(ids, n, sizeof(char *), strcmp_ptr);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(ids[i], ids[i - 1]))
            fail_msg("%s is stored twice", ids[i]);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);

    assert_int_equal(it_stop(ei, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    remove(content);
    remove(first);
    remove(second);
    free(content);
    free(first);
    free(second);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_milvus_restart_mid_stream)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
