/*
 * Two hsc-query processes share the request topic in one consumer group.
 * Before the load, each member holds partitions of it (its own /metrics:
 * hsc_consumer_assigned_partitions). Under a steady load one of them is
 * killed (SIGKILL, no goodbye) once both have answered searches (each
 * member's hsc_query_requests_total, read just before the kill): every search
 * the client sent ends exactly once, answered, told "deadline" or
 * "overloaded" (a request redelivered to the survivor with too little of its
 * deadline left, or beyond what the survivor can answer in time) or timed
 * out, and none is answered twice. A no_backend error, or any other, fails
 * the test: every backend is up. After the rebalance the survivor holds
 * every partition and answers everything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "it_query.h"
#include "it_requests.h"

#define TOTAL 1200
#define RATE 100 /* searches per second */

/* Per-search bookkeeping: how many times it ended, and how. */
static unsigned char ends[TOTAL + 1];
static int answered, answered_late_error, timed_out, other;
static char first_other[1200];

struct one {
    int i;
};

static void on_end(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct one *o = arg;
    ends[o->i]++;
    if (r && r->ok)
        answered++;
    else if (r && (!strcmp(r->error_code, HSC_SEARCH_ERROR_DEADLINE) ||
                   !strcmp(r->error_code, HSC_SEARCH_ERROR_OVERLOADED)))
        answered_late_error++; /* redelivered with too little time left: told so, not dropped */
    else if (!r && err->code == HSC_ETIMEDOUT)
        timed_out++;
    else {
        if (!other++)
            snprintf(first_other, sizeof(first_other), "search %d: %s: %s", o->i,
                     r ? r->error_code : "", r ? r->error_message : err->msg);
        fprintf(stderr, "-- search %d ended with %s: %s\n", o->i, r ? r->error_code : "",
                r ? r->error_message : err->msg);
    }
    free(o);
}

/* The searches a member answered ok: the sum of its hsc_query_requests_total{...,status="ok"}
 * series (-1 if its /metrics cannot be read). */
static double member_answers(int port)
{
    char url[96];
    long st = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    char *m = it_http("GET", url, NULL, &st);
    if (!m || st != 200) {
        free(m);
        return -1;
    }
    double sum = 0;
    static const char name[] = "hsc_query_requests_total{";
    for (const char *l = m; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, sizeof(name) - 1)) {
            const char *sp = strchr(l, ' '), *ok = strstr(l, "status=\"ok\"");
            if (!ok || (sp && ok > sp))
                continue;
            if (sp)
                sum += atof(sp + 1);
        }
    free(m);
    return sum;
}

static void test_member_killed_under_load(void **s)
{
    struct it t;
    struct itq q;
    it_setup(&t);
    char *content = itq_catalogue(&q, &t, "200", "it-qkill");
    int port_a = 20000 + (int)(getpid() % 20000), port_b = port_a + 1;
    char mp_a[32], mp_b[32];
    snprintf(mp_a, sizeof(mp_a), "metrics.port=%d", port_a);
    snprintf(mp_b, sizeof(mp_b), "metrics.port=%d", port_b);
    const char *qa[] = {ITQ_QUERY_ARGS,
                        "--set",
                        "query.group=it-qkill-query",
                        "--set",
                        "rdkafka.consumer.session.timeout.ms=6000",
                        "--set",
                        "rdkafka.consumer.heartbeat.interval.ms=1000",
                        "--set",
                        mp_a,
                        NULL};
    const char *qb[] = {ITQ_QUERY_ARGS,
                        "--set",
                        "query.group=it-qkill-query",
                        "--set",
                        "rdkafka.consumer.session.timeout.ms=6000",
                        "--set",
                        "rdkafka.consumer.heartbeat.interval.ms=1000",
                        "--set",
                        mp_b,
                        NULL};
    pid_t a = it_spawn(&t, "hsc-query", qa);
    pid_t b = it_spawn(&t, "hsc-query", qb);
    itq_client(&q);
    hsc_search_request req;
    itq_request_like(&t, "t000007", &req);
    req.cache = false;
    struct itq_result res;
    itq_search_ok(&q, &req, &res);
    hsc_search_reply_clear(&res.reply);
    /* both members hold partitions before the load starts */
    double parts_a = -1, parts_b = -1;
    long long end = it_ms() + 60000;
    while (it_ms() < end) {
        parts_a = itr_metric(port_a, "hsc_consumer_assigned_partitions");
        parts_b = itr_metric(port_b, "hsc_consumer_assigned_partitions");
        if (parts_a > 0 && parts_b > 0)
            break;
        usleep(200000);
    }
    fprintf(stderr, "-- partitions held: member a %.0f, member b %.0f\n", parts_a, parts_b);
    assert_true(parts_a > 0);
    assert_true(parts_b > 0);
    while (it_group_lag(&t, "it-qkill-query", it_topic(&t, "search_requests")) != 0 &&
           it_ms() < end)
        usleep(200000);
    sleep(3);
    double before_a = member_answers(port_a), before_b = member_answers(port_b);
    double at_kill_a = -1, at_kill_b = -1;
    long long start = it_ms();
    int sent = 0;
    while (sent < TOTAL || hsc_client_inflight(q.client) > 0) {
        long long due = start + (long long)sent * 1000 / RATE;
        if (sent < TOTAL && it_ms() >= due) {
            struct one *o = malloc(sizeof(*o));
            o->i = ++sent;
            hsc_err err = {0};
            /* a different title each time, so the answers are real work */
            char id[16];
            snprintf(id, sizeof(id), "t%06d", 1 + sent % 200);
            free(req.embedding);
            req.embedding = itq_embedding(&t, id);
            assert_int_equal(hsc_client_search(q.client, &req, 3000, on_end, o, NULL, &err), 0);
            if (sent == TOTAL / 3) {
                /* both have answered some of the load before one dies */
                at_kill_a = member_answers(port_a);
                at_kill_b = member_answers(port_b);
                fprintf(stderr,
                        "-- killing member b after %d searches (answered so far: a %.0f, b %.0f)\n",
                        sent, at_kill_a - before_a, at_kill_b - before_b);
                kill(b, SIGKILL);
            }
        }
        ev_run(q.loop, EVRUN_NOWAIT);
        usleep(1000);
    }
    /* b died of the kill, not before it of something else */
    assert_int_equal(it_stop(b, 0, 10000), 128 + SIGKILL);
    assert_true(at_kill_a - before_a > 0);
    assert_true(at_kill_b - before_b > 0);
    struct hsc_client_stats st;
    hsc_client_get_stats(q.client, &st);
    int never = 0, twice = 0;
    for (int i = 1; i <= TOTAL; i++) {
        never += ends[i] == 0;
        twice += ends[i] > 1;
    }
    fprintf(stderr,
            "-- %d sent: %d answered, %d answered deadline or overloaded, %d timed out, %d other; "
            "%llu duplicate or late replies dropped by the client\n",
            TOTAL, answered, answered_late_error, timed_out, other, st.unmatched);
    assert_int_equal(never, 0);
    assert_int_equal(twice, 0);
    /* no_backend says no backend could answer: every backend is up, so it is a wrong answer */
    if (other)
        fail_msg("%d searches ended with neither ok, deadline, overloaded nor a timeout; the "
                 "first: %s",
                 other, first_other);
    assert_int_equal(answered + answered_late_error + timed_out, TOTAL);
    /* the killed member's share stalls until the group notices (session timeout 6 s at
     * 100/s is at most ~600 searches on its partitions); everything else is answered */
    assert_true(answered >= TOTAL / 2);
    /* after the rebalance the survivor holds every partition, and answers everything */
    assert_int_equal((int)itr_metric(port_a, "hsc_consumer_assigned_partitions"),
                     (int)(parts_a + parts_b));
    req.cache = false;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(itq_search(&q, &req, 3000, &res), 0);
        assert_true(res.reply.ok);
        hsc_search_reply_clear(&res.reply);
    }
    hsc_search_request_clear(&req);
    assert_int_equal(it_stop(a, SIGTERM, 30000), 0);
    itq_done(&q);
    remove(content);
    free(content);
    it_teardown(&t);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_member_killed_under_load)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
