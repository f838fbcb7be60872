/*
 * hsc-query starts on a backlog of requests whose callers gave up long ago
 * (a queue that filled while it was down): it drops and counts every one of
 * them without answering, stays small, keeps running, and answers the live
 * search that waits behind them within that search's deadline. Before the
 * drain loop was made non-reentrant this crashed (stack overflow) within
 * seconds, and again on every restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "it_query.h"
#include "it_requests.h"

#define BACKLOG 20000

static void test_expired_backlog_is_dropped_and_counted(void **s)
{
    struct it t;
    struct itq q;
    it_setup(&t);
    free(itq_catalogue(&q, &t, "60", "it-backlog"));
    itr_flood_expired(&t, BACKLOG, ITQ_DIM);

    int port = 20000 + (int)(getpid() % 20000);
    char mp[32];
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    const char *qa[] = {ITQ_QUERY_ARGS, "--set", "query.group=it-backlog-query", "--set", mp, NULL};
    pid_t query = it_spawn(&t, "hsc-query", qa);
    itq_client(&q);

    /* A live search sent at once lands behind the backlog of its partition. */
    hsc_search_request req;
    itq_request_like(&t, "t000003", &req);
    req.cache = false;
    struct itq_result res;
    int rc = itq_search(&q, &req, 20000, &res);
    fprintf(stderr, "-- first live search: rc %d, %lld ms, %s\n", rc, res.round_trip_ms,
            res.reply.ok           ? "ok"
            : res.reply.error_code ? res.reply.error_code
                                   : "no reply");
    int status;
    if (waitpid(query, &status, WNOHANG) == query)
        fail_msg("hsc-query died on the backlog (status %d)", status);
    assert_int_equal(rc, 0);
    assert_true(res.reply.ok);
    hsc_search_reply_clear(&res.reply);

    /* every expired request is counted, none answered */
    long long end = it_ms() + 60000;
    double expired = -1;
    while (it_ms() < end && (expired = itr_metric(port, "hsc_query_expired_total")) < BACKLOG)
        usleep(200000);
    fprintf(stderr, "-- expired counted: %.0f of %d\n", expired, BACKLOG);
    assert_true(expired == BACKLOG);
    struct it_record *replies;
    size_t n = it_consume_all(&t, it_topic(&t, "search_replies"), 1000000, 3000, &replies);
    size_t to_expired = 0;
    for (size_t i = 0; i < n; i++)
        to_expired += !strncmp(it_header(&replies[i], HSC_HDR_CORRELATION_ID), "expired-", 8);
    it_records_free(replies, n);
    assert_int_equal(to_expired, 0);

    /* the same worker goes on answering, and never grew large */
    itq_search_ok(&q, &req, &res);
    hsc_search_reply_clear(&res.reply);
    long hwm = itr_proc_kb(query, "VmHWM");
    fprintf(stderr, "-- hsc-query peak RSS %ld kB\n", hwm);
    assert_true(hwm > 0 && hwm < 30 * 1024);
    assert_int_equal(it_stop(query, SIGTERM, 30000), 0);
    hsc_search_request_clear(&req);
    itq_done(&q);
    it_teardown(&t);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expired_backlog_is_dropped_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
