/*
 * With query.auth_key set, only a holder of the key may ask as a user: a
 * search naming a user and signed by a client holding the key is answered;
 * the same search from a client without the key gets no reply and lands in
 * the DLQ with hsc-error naming the hsc-auth header; an anonymous search
 * from that client is still answered. (Nothing is searched for real: an
 * answer of any status is an answer.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include "it_query.h"

static struct it T;

struct end {
    int calls, code, answered;
};

static void on_end(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct end *e = arg;
    e->calls++;
    e->answered = r != NULL;
    e->code = r ? 0 : err->code;
}

static hsc_client *client(struct ev_loop *loop, hsc_config **cfg, const char *key)
{
    hsc_err err = {0};
    *cfg = hsc_config_new();
    assert_int_equal(hsc_config_set(*cfg, "kafka.brokers", T.brokers, &err), 0);
    assert_int_equal(hsc_config_set(*cfg, "topics.prefix", T.prefix, &err), 0);
    if (key)
        assert_int_equal(hsc_config_set(*cfg, "query.auth_key", key, &err), 0);
    /* the topics were just created: a reply partition may have no leader for a moment */
    hsc_client *c = NULL;
    for (long long end = it_ms() + 30000; !c && it_ms() < end;)
        if (!(c = hsc_client_new(loop, *cfg, &err)))
            usleep(200000);
    if (!c)
        fail_msg("client: %s", err.msg);
    return c;
}

static void search(struct ev_loop *loop, hsc_client *c, const char *user, int timeout_ms,
                   struct end *e)
{
    hsc_search_request req;
    hsc_search_request_init(&req);
    char *seed = "t1";
    req.seed_ids.n = 1;
    req.seed_ids.v = &seed;
    req.user_id = (char *)user;
    hsc_err err = {0};
    memset(e, 0, sizeof(*e));
    assert_int_equal(hsc_client_search(c, &req, timeout_ms, on_end, e, NULL, &err), 0);
    while (!e->calls)
        ev_run(loop, EVRUN_ONCE);
}

static void test_only_key_holders_ask_as_a_user(void **state)
{
    const char *qa[] = {ITQ_QUERY_ARGS,
                        "--set",
                        "query.group=it-auth-query",
                        "--set",
                        "query.auth_key=it-secret-key",
                        NULL};
    pid_t query = it_spawn(&T, "hsc-query", qa);
    struct ev_loop *loop = ev_loop_new(0);
    hsc_config *kc, *nc;
    hsc_client *keyed = client(loop, &kc, "it-secret-key");
    hsc_client *plain = client(loop, &nc, NULL);
    struct end e;
    /* hsc-query may still be joining its group: the first answer may take a while */
    search(loop, keyed, "it-auth-user", 30000, &e);
    assert_true(e.answered);
    search(loop, plain, "it-auth-user", 3000, &e);
    assert_false(e.answered);
    assert_int_equal(e.code, HSC_ETIMEDOUT);
    search(loop, plain, NULL, 10000, &e);
    assert_true(e.answered); /* anonymous searches need no key */
    search(loop, keyed, "it-auth-user", 10000, &e);
    assert_true(e.answered);

    struct it_record *dlq;
    size_t n = it_consume_all(&T, it_topic(&T, "dlq"), 1, 30000, &dlq);
    assert_int_equal(n, 1);
    assert_string_equal(it_header(&dlq[0], "hsc-stage"), "query");
    assert_non_null(strstr(it_header(&dlq[0], "hsc-error"), "hsc-auth"));
    it_records_free(dlq, n);
    /* nothing else went there (a second DLQ record would be a signed search refused) */
    n = it_consume_all(&T, it_topic(&T, "dlq"), 1000, 3000, &dlq);
    assert_int_equal(n, 1);
    it_records_free(dlq, n);

    hsc_client_free(keyed);
    hsc_client_free(plain);
    hsc_config_free(kc);
    hsc_config_free(nc);
    ev_loop_destroy(loop);
    assert_int_equal(it_stop(query, SIGTERM, 30000), 0);
    (void)state;
}

static int setup(void **state)
{
    it_setup(&T);
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    it_teardown(&T);
    (void)state;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_key_holders_ask_as_a_user),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
