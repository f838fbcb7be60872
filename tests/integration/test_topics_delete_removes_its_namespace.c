/*
 * hsc topics delete against the real broker: it deletes the topics of its own
 * prefix and no other namespace's, a second run finds them absent and still
 * exits 0, it_teardown deletes a namespace's topics, and without a prefix it
 * refuses unless --yes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The topics.* keys of schemas/topics.tsv, so the test names every topic a namespace has. */
static const char *const KEYS[] = {"content_events",   "learning_events",  "policy_events",
                                   "content_ingested", "content_enriched", "content_indexed",
                                   "search_requests",  "search_replies",   "dlq"};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

/* Asserts that out has the line "<verb> <topic>" for every topic of t. */
static void assert_each(struct it *t, const char *out, const char *verb)
{
    for (size_t i = 0; i < NKEYS; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s %s\n", verb, it_topic(t, KEYS[i]));
        if (!strstr(out, want))
            fail_msg("no '%.*s' in:\n%s", (int)strlen(want) - 1, want, out);
    }
}

/* How many of t's topics `hsc topics list` shows as missing; its exit status into *rc. */
static int missing(struct it *t, int *rc)
{
    char *out;
    const char *args[] = {"topics", "list", NULL};
    *rc = it_run(t, "hsc", args, &out);
    int n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s ", it_topic(t, KEYS[i]));
        const char *line = strstr(out, want);
        const char *end = line ? strchr(line, '\n') : NULL;
        if (line && end && end - line >= 7 && !strncmp(end - 7, "missing", 7))
            n++;
    }
    free(out);
    return n;
}

/* Polls `hsc topics list` until all of t's topics are missing (the broker's metadata follows
 * the deletion); returns how many were missing at the end. */
static int wait_all_missing(struct it *t, int timeout_ms)
{
    long long end = it_ms() + timeout_ms;
    int n, rc;
    while ((n = missing(t, &rc)) < (int)NKEYS && it_ms() < end)
        usleep(200000);
    if (n == (int)NKEYS)
        assert_int_equal(rc, 1);
    return n;
}

static void test_delete_removes_its_namespace_only(void **state)
{
    struct it a, b;
    it_setup(&a);
    it_setup(&b);
    int rc;
    assert_int_equal(missing(&a, &rc), 0);
    assert_int_equal(rc, 0);

    char *out;
    const char *del[] = {"topics", "delete", NULL};
    rc = it_run(&a, "hsc", del, &out);
    if (rc != 0)
        fail_msg("hsc topics delete exited %d:\n%s", rc, out);
    assert_each(&a, out, "deleted");
    free(out);
    assert_int_equal(wait_all_missing(&a, 30000), (int)NKEYS);

    /* Again: nothing is left to delete, which is no error. */
    rc = it_run(&a, "hsc", del, &out);
    if (rc != 0)
        fail_msg("second hsc topics delete exited %d:\n%s", rc, out);
    assert_each(&a, out, "absent ");
    free(out);

    /* The other namespace kept every topic, until its own teardown. */
    assert_int_equal(missing(&b, &rc), 0);
    assert_int_equal(rc, 0);
    it_teardown(&b);
    assert_int_equal(wait_all_missing(&b, 30000), (int)NKEYS);

    /* Without a prefix the names are production's: refused without --yes. The broker is a
     * closed port, so even a bug here could delete nothing on the shared stack. */
    struct it bare = a;
    snprintf(bare.env_prefix, sizeof(bare.env_prefix), "HSC_TOPICS_PREFIX=");
    snprintf(bare.env_brokers, sizeof(bare.env_brokers), "HSC_KAFKA_BROKERS=127.0.0.1:1");
    rc = it_run(&bare, "hsc", del, &out);
    if (rc != 2 || !strstr(out, "topics.prefix is empty") || !strstr(out, "--yes"))
        fail_msg("hsc topics delete without a prefix exited %d:\n%s", rc, out);
    free(out);
    it_teardown(&a);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_delete_removes_its_namespace_only)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
