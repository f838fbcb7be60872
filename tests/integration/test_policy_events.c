/*
 * Integration (real Kafka, PostgreSQL, Redis, Milvus, Neo4j; no mocks): user
 * policies as events. Policy events published with `hsc policy set` and as
 * raw messages reach hsc-ingest, and the very next search sees them in every
 * strategy, the cache included; an older version is ignored; `hsc policy
 * erase` leaves no row in PostgreSQL and no key in Redis for the user, and
 * the user's next search is a new user's; a bad event lands in the DLQ with a
 * reason naming the field; `hsc policy show` reports what is stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "it_query.h"

#define N "300"

static struct it T;
static struct itq Q;
static pid_t query_pid;
static char user[96], newcomer[96], cache_prefix[96];

/* The test's own cache prefix, so scanning it sees only this test's entries. */
static void spawn_pipeline(void)
{
    memset(&Q, 0, sizeof(Q));
    Q.t = &T;
    it_neo4j_reset();
    static char cp[160];
    snprintf(cp, sizeof(cp), "redis.cache_prefix=%s", cache_prefix);
    const char *ia[] = {"--set", "ingest.group=it-policy-ingest", "--set", cp, NULL};
    const char *ea[] = {"--set", "enrich.group=it-policy-enrich", NULL};
    const char *xa[] = {"--set", "embed_index.group=it-policy-index", "--set",
                        "milvus.dimension=" ITQ_DIM_STR, NULL};
    Q.ingest = it_spawn(&T, "hsc-ingest", ia);
    Q.enrich = it_spawn(&T, "hsc-enrich", ea);
    Q.index = it_spawn(&T, "hsc-embed-index", xa);
}

static redisContext *redis(void)
{
    const char *url = getenv("HSC_REDIS_URL");
    char host[128] = "127.0.0.1";
    int port = 6379;
    if (url)
        sscanf(url, "redis://%127[^:]:%d", host, &port);
    redisContext *c = redisConnect(host, port);
    assert_true(c && !c->err);
    return c;
}

static int redis_exists(const char *key)
{
    redisContext *c = redis();
    redisReply *r = redisCommand(c, "EXISTS %s", key);
    int n = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* How many of the test's cached results mention who (their canonical form holds the user). */
static int cached_entries_of(const char *who, int *total)
{
    redisContext *c = redis();
    char match[128], needle[128];
    snprintf(match, sizeof(match), "%s*", cache_prefix);
    snprintf(needle, sizeof(needle), "\nuser=%s\n", who);
    int n = 0;
    *total = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            redisReply *v = redisCommand(c, "GET %s", k);
            if (v && v->type == REDIS_REPLY_STRING) {
                (*total)++;
                n += memmem(v->str, v->len, needle, strlen(needle)) != NULL;
            }
            freeReplyObject(v);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    redisFree(c);
    return n;
}

static char *hsc_cli(const char *const *args, int want_rc)
{
    char *out = NULL;
    int rc = it_run(&T, "hsc", args, &out);
    if (rc != want_rc)
        fail_msg("hsc %s %s: exit %d (want %d): %s", args[0], args[1], rc, want_rc, out);
    return out;
}

static long long pg_ll(const char *fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, arg);
    return it_pg_int(&T, sql);
}

/* Waits until the user's last applied policy event is `version`. */
static void wait_event_version(const char *who, long long version)
{
    char sql[640];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce((SELECT event_version FROM user_policies WHERE user_id = '%s'), -1)",
             who);
    assert_int_equal(it_pg_wait(&T, sql, version, 60000), version);
}

/* Waits until Redis holds the version PostgreSQL stored (ingest raises it after the commit). */
static void wait_redis_version(const char *who)
{
    long long v = pg_ll("SELECT version FROM user_policies WHERE user_id = '%s'", who);
    char key[160];
    snprintf(key, sizeof(key), "hsc:policy:version:%s", who);
    long long end = it_ms() + 30000;
    while (it_redis_int(key) != v && it_ms() < end)
        usleep(50000);
    assert_int_equal(it_redis_int(key), v);
}

/* One search that must answer ok (a degraded answer is still filtered by the policy). */
static void search(const hsc_search_request *req, struct itq_result *res)
{
    assert_int_equal(itq_search(&Q, req, 8000, res), 0);
    if (!res->reply.ok)
        fail_msg("search failed: %s: %s", res->reply.error_code, res->reply.error_message);
    if (res->reply.degraded.n)
        fprintf(stderr, "-- note: %s degraded (%s)\n", hsc_strategy_name(res->reply.strategy),
                res->reply.degraded.v[0]);
}

static const hsc_strategy STRATEGIES[] = {HSC_STRATEGY_AUTO, HSC_STRATEGY_VECTOR_ONLY,
                                          HSC_STRATEGY_GRAPH_ONLY, HSC_STRATEGY_HYBRID_PARALLEL,
                                          HSC_STRATEGY_HYBRID_SEQUENTIAL};

/* Searches until the answer is not degraded (at most ten times); fails if it never is. */
static void search_clean(const hsc_search_request *req, struct itq_result *res)
{
    for (int i = 0;; i++) {
        search(req, res);
        if (!res->reply.degraded.n)
            return;
        if (i == 9)
            fail_msg("ten degraded answers in a row (%s)", res->reply.degraded.v[0]);
        hsc_search_reply_clear(&res->reply);
        usleep(300000);
    }
}

/* A personalised request near t000001 with a seed (so every strategy can run). */
static void request(hsc_search_request *req, const char *who, hsc_strategy s)
{
    itq_request_like(&T, "t000001", req);
    req->user_id = strdup(who);
    req->k = 20;
    req->strategy = s;
    hsc_strlist_push(&req->seed_ids, "t000002", 7);
}

static char excluded[64], blocked[32];

static void test_a_constraint_set_excludes_titles_from_the_very_next_search(void **s)
{
    hsc_search_request req;
    struct itq_result r;
    /* before: the auto search is cached, and what it shows gives the genre and title to hide */
    request(&req, user, HSC_STRATEGY_AUTO);
    search_clean(&req, &r); /* a degraded answer is never cached */
    assert_true(r.reply.nresults >= 3);
    assert_true(r.reply.results[0].genres.n > 0);
    snprintf(excluded, sizeof(excluded), "%s", r.reply.results[0].genres.v[0]);
    blocked[0] = '\0';
    for (size_t i = 0; i < r.reply.nresults && !blocked[0]; i++)
        if (!itq_has_genre(&T, r.reply.results[i].id, excluded))
            snprintf(blocked, sizeof(blocked), "%s", r.reply.results[i].id);
    assert_true(blocked[0]);
    hsc_search_reply_clear(&r.reply);
    search(&req, &r);
    assert_true(r.reply.cache_hit); /* so the entry under the old version exists */
    hsc_search_reply_clear(&r.reply);
    fprintf(stderr, "-- excluding genre '%s' and blocking %s for %s\n", excluded, blocked, user);

    /* the CLI publishes a set (excluded genres) and a block, versions 100 and 101 */
    const char *set[] = {"policy", "set",       user,  "--exclude-genres", excluded, "--block",
                         blocked,  "--version", "100", "--json",           NULL};
    char *out = hsc_cli(set, 0);
    json_t *evs = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(evs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 1), "op")), "block");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 1), "version")), 101);
    json_decref(evs);
    free(out);
    wait_event_version(user, 101);
    wait_redis_version(user);

    /* every strategy, the cached one first: nothing excluded or blocked comes back */
    for (size_t k = 0; k < sizeof(STRATEGIES) / sizeof(STRATEGIES[0]); k++) {
        hsc_search_request q;
        request(&q, user, STRATEGIES[k]);
        search(&q, &r);
        if (k == 0)
            assert_false(r.reply.cache_hit); /* the entry cached before the change is not served */
        assert_true(r.reply.nresults > 0);
        for (size_t i = 0; i < r.reply.nresults; i++) {
            const char *id = r.reply.results[i].id;
            if (itq_has_genre(&T, id, excluded) || !strcmp(id, blocked))
                fail_msg("%s returned %s after the policy change", hsc_strategy_name(STRATEGIES[k]),
                         id);
        }
        fprintf(stderr, "-- %s: %zu results, none excluded%s\n",
                hsc_strategy_name(r.reply.strategy), r.reply.nresults,
                r.reply.cache_hit ? " (cache)" : "");
        hsc_search_reply_clear(&r.reply);
        hsc_search_request_clear(&q);
    }
    /* and the cached answer of the new version is just as clean */
    search_clean(&req, &r);
    hsc_search_reply_clear(&r.reply);
    search(&req, &r);
    assert_true(r.reply.cache_hit);
    for (size_t i = 0; i < r.reply.nresults; i++)
        assert_false(itq_has_genre(&T, r.reply.results[i].id, excluded));
    hsc_search_reply_clear(&r.reply);
    hsc_search_request_clear(&req);
    (void)s;
}

/* Produces one encoded policy event keyed by its user. */
static void produce_policy(const hsc_policy_event *ev)
{
    char *buf;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_policy(ev, &buf, &len, &err), HSC_OK);
    assert_true(it_produce(&T, it_topic(&T, "policy_events"), ev->user_id, buf, len, NULL) >= 0);
    free(buf);
}

static void test_an_older_version_is_ignored(void **s)
{
    /* version 50 would clear the exclusion; 102 (after it on the partition) sets a ceiling */
    hsc_policy_event old = {.v = 1,
                            .user_id = user,
                            .version = 50,
                            .op = HSC_POLICY_SET,
                            .clear = HSC_POLICY_EXCLUDED_GENRES | HSC_POLICY_BLOCKED_IDS};
    produce_policy(&old);
    hsc_policy_event next = {.v = 1,
                             .user_id = user,
                             .version = 102,
                             .op = HSC_POLICY_SET,
                             .set = HSC_POLICY_MAX_MATURITY,
                             .max_maturity = 21};
    produce_policy(&next);
    produce_policy(&old); /* and once more after it */
    wait_event_version(user, 102);
    wait_redis_version(user);
    char sql[640];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM user_policies WHERE user_id = '%s' AND excluded_genres = "
             "ARRAY['%s'] AND blocked_ids = ARRAY['%s'] AND max_maturity = 21",
             user, excluded, blocked);
    assert_int_equal(it_pg_int(&T, sql), 1);
    assert_int_equal(pg_ll("SELECT count(*) FROM user_policy_history WHERE user_id = '%s'", user),
                     3); /* 100, 101, 102: the ignored one left no trace */
    hsc_search_request q;
    struct itq_result r;
    request(&q, user, HSC_STRATEGY_VECTOR_ONLY);
    search(&q, &r);
    for (size_t i = 0; i < r.reply.nresults; i++)
        assert_false(itq_has_genre(&T, r.reply.results[i].id, excluded));
    hsc_search_reply_clear(&r.reply);
    hsc_search_request_clear(&q);
    /* show reports the constraints, the version and the history */
    const char *show[] = {"policy", "show", user, "--json", NULL};
    char *out = hsc_cli(show, 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "event_version")), 102);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "excluded_genres"), 0)),
                        excluded);
    assert_int_equal(json_integer_value(json_object_get(o, "max_maturity")), 21);
    assert_int_equal(json_array_size(json_object_get(o, "history")), 3);
    json_decref(o);
    free(out);
    (void)s;
}

static void test_a_bad_event_lands_in_the_dlq_with_its_reason(void **s)
{
    /* max_maturity 99, packed by hand: the encoder would refuse it */
    const unsigned char bad[] = {0x85, 0xa1, 'v', 0x01, 0xa7, 'u', 's', 'e',  'r', '_', 'i', 'd',
                                 0xa2, 'u',  '1', 0xa7, 'v',  'e', 'r', 's',  'i', 'o', 'n', 0x01,
                                 0xa2, 'o',  'p', 0xa3, 's',  'e', 't', 0xac, 'm', 'a', 'x', '_',
                                 'm',  'a',  't', 'u',  'r',  'i', 't', 'y',  0x63};
    long long off = it_produce(&T, it_topic(&T, "policy_events"), "u1", bad, sizeof(bad), NULL);
    assert_true(off >= 0);
    struct it_record *dlq;
    size_t n = it_consume_all(&T, it_topic(&T, "dlq"), 1, 60000, &dlq);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(it_header(&dlq[i], "hsc-source-topic"), it_topic(&T, "policy_events")))
            continue;
        found++;
        assert_string_equal(it_header(&dlq[i], "hsc-stage"), "ingest");
        assert_string_equal(it_header(&dlq[i], "hsc-error"), "max_maturity: 99 is outside 0..21");
        assert_int_equal(dlq[i].len, sizeof(bad));
        assert_memory_equal(dlq[i].value, bad, sizeof(bad));
    }
    it_records_free(dlq, n);
    assert_int_equal(found, 1);
    assert_int_equal(pg_ll("SELECT count(*) FROM user_policies WHERE user_id = '%s'", "u1"), 0);
    (void)s;
}

static void test_erase_leaves_nothing_and_the_next_search_is_a_new_users(void **s)
{
    /* give the user learning events, explicit weights and cached results first */
    hsc_buf likes = {0};
    for (int i = 0; i < 5; i++)
        hsc_buf_printf(
            &likes, "{\"user_id\":\"%s\",\"content_id\":\"t%06d\",\"kind\":\"like\",\"ts\":%d}\n",
            user, 10 + i, 5000 + i);
    char *path = it_temp_file(likes.data, likes.len);
    assert_int_equal(it_publish(&T, "learning", path), 0);
    remove(path);
    free(path);
    hsc_buf_free(&likes);
    char lsql[256];
    snprintf(lsql, sizeof(lsql), "SELECT count(*) FROM learning_events WHERE user_id = '%s'", user);
    assert_int_equal(it_pg_wait(&T, lsql, 5, 60000), 5);
    const char *pref[] = {"policy",          "set",       user,  "--pref",
                          "genre:drama=2.5", "--version", "103", NULL};
    free(hsc_cli(pref, 0));
    wait_event_version(user, 103);
    wait_redis_version(user);
    assert_int_equal(
        pg_ll("SELECT count(*) FROM user_preference_overrides WHERE user_id = '%s'", user), 1);
    for (size_t k = 0; k < 2; k++) {
        hsc_search_request q;
        struct itq_result r;
        request(&q, user, STRATEGIES[k]);
        search_clean(&q, &r);
        hsc_search_reply_clear(&r.reply);
        hsc_search_request_clear(&q);
    }
    int total;
    assert_true(cached_entries_of(user, &total) >= 2);
    char idx[256], vkey[256];
    snprintf(idx, sizeof(idx), "%su:%s", cache_prefix, user);
    snprintf(vkey, sizeof(vkey), "hsc:policy:version:%s", user);
    assert_int_equal(redis_exists(idx), 1);
    assert_int_equal(redis_exists(vkey), 1);

    /* erase refuses without --yes, then publishes */
    const char *no[] = {"policy", "erase", user, NULL};
    free(hsc_cli(no, 2));
    const char *erase[] = {"policy", "erase", user, "--yes", "--version", "104", NULL};
    free(hsc_cli(erase, 0));
    char sql[640];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM user_policies WHERE user_id = '%s'", user);
    assert_int_equal(it_pg_wait(&T, sql, 0, 60000), 0);
    long long end = it_ms() + 30000;
    while (redis_exists(vkey) && it_ms() < end)
        usleep(50000);
    static const char *const TABLES[] = {"user_policies", "user_preferences",
                                         "user_preference_overrides", "learning_events",
                                         "user_policy_history"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE user_id = '%%s'", TABLES[i]);
        if (pg_ll(sql, user) != 0)
            fail_msg("%s still holds rows of %s", TABLES[i], user);
    }
    assert_int_equal(redis_exists(vkey), 0);
    assert_int_equal(redis_exists(idx), 0);
    assert_int_equal(cached_entries_of(user, &total), 0);
    fprintf(stderr,
            "-- erased: no row in 5 tables, no version key, no index, 0 of %d cached entries\n",
            total);

    /* the next search is a new user's: the same answer as for someone never seen (the
     * strategies forced, so the planner's latency-based choice cannot differ) */
    for (size_t k = 1; k < sizeof(STRATEGIES) / sizeof(STRATEGIES[0]); k++) {
        hsc_search_request a, b;
        struct itq_result ra, rb;
        request(&a, user, STRATEGIES[k]);
        request(&b, newcomer, STRATEGIES[k]);
        /* a degraded answer (a backend cut by its budget on this shared machine) is not
         * comparable: such a pair is asked again, up to five times */
        for (int tries = 0;; tries++) {
            search(&a, &ra);
            search(&b, &rb);
            if ((!ra.reply.degraded.n && !rb.reply.degraded.n) || tries == 4)
                break;
            hsc_search_reply_clear(&ra.reply);
            hsc_search_reply_clear(&rb.reply);
        }
        assert_false(ra.reply.degraded.n || rb.reply.degraded.n);
        assert_int_equal(ra.reply.nresults, rb.reply.nresults);
        for (size_t i = 0; i < ra.reply.nresults; i++)
            assert_string_equal(ra.reply.results[i].id, rb.reply.results[i].id);
        hsc_search_reply_clear(&ra.reply);
        hsc_search_reply_clear(&rb.reply);
        hsc_search_request_clear(&a);
        hsc_search_request_clear(&b);
    }
    const char *show[] = {"policy", "show", user, NULL};
    char *out = hsc_cli(show, 0);
    assert_non_null(strstr(out, "no policy"));
    free(out);
    (void)s;
}

/* The catalogue's freshness as hsc status reports it, from the indexed records. */
static void test_status_shows_freshness_and_the_policy_topic(void **s)
{
    const char *st[] = {"status", "--json", NULL};
    char *out = hsc_cli(st, 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    json_t *f = json_object_get(o, "freshness");
    assert_string_equal(json_string_value(json_object_get(f, "topic")),
                        it_topic(&T, "content_indexed"));
    /* every title of the catalogue, each with a publish time (hsc publish sets none: the
     * Kafka timestamp stands in) */
    assert_true(json_integer_value(json_object_get(f, "samples")) >= atoll(N));
    long long p50 = json_integer_value(json_object_get(f, "p50_ms"));
    long long p99 = json_integer_value(json_object_get(f, "p99_ms"));
    assert_true(p50 > 0 && p50 <= p99 && p99 <= json_integer_value(json_object_get(f, "max_ms")));
    fprintf(stderr, "-- hsc status: freshness p50 %lld ms, p99 %lld ms\n", p50, p99);
    size_t i;
    json_t *g;
    int seen = 0;
    json_array_foreach (json_object_get(o, "groups"), i, g) {
        size_t k;
        json_t *t;
        json_array_foreach (json_object_get(g, "topics"), k, t)
            seen += !strcmp(json_string_value(json_object_get(t, "topic")),
                            it_topic(&T, "policy_events")) &&
                    json_object_get(t, "lag");
    }
    assert_int_equal(seen, 1); /* the ingest group's lag on the policy topic */
    json_decref(o);
    free(out);
    (void)s;
}

static int setup(void **s)
{
    it_setup(&T);
    snprintf(user, sizeof(user), "%salice", T.prefix);
    snprintf(newcomer, sizeof(newcomer), "%snewcomer", T.prefix);
    snprintf(cache_prefix, sizeof(cache_prefix), "hsc:q:%s", T.prefix);
    spawn_pipeline();
    char *content = it_sample_dim(&T, "content", N, N, ITQ_DIM_STR);
    if (it_publish(&T, "content", content) != 0)
        exit(1);
    remove(content);
    free(content);
    itq_wait_stores(&T, atoll(N));
    static char cp[160];
    snprintf(cp, sizeof(cp), "redis.cache_prefix=%s", cache_prefix);
    const char *qa[] = {ITQ_QUERY_ARGS, "--set", "query.group=it-policy-query", "--set", cp, NULL};
    query_pid = it_spawn(&T, "hsc-query", qa);
    itq_client(&Q);
    hsc_search_request req;
    itq_request_like(&T, "t000001", &req);
    req.cache = false;
    struct itq_result res;
    itq_search_ok(&Q, &req, &res);
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
    /* every strategy once without the cache, so the first backend calls (connections,
     * dialect discovery) and their latency history are behind us */
    char warm[96];
    snprintf(warm, sizeof(warm), "%swarmup", T.prefix);
    for (size_t k = 0; k < sizeof(STRATEGIES) / sizeof(STRATEGIES[0]); k++) {
        request(&req, warm, STRATEGIES[k]);
        req.cache = false;
        search_clean(&req, &res);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    (void)s;
    return 0;
}

static int teardown(void **s)
{
    if (query_pid > 0 && it_stop(query_pid, SIGTERM, 30000) != 0)
        fprintf(stderr, "query did not stop cleanly\n"), exit(1);
    itq_done(&Q);
    it_teardown(&T);
    (void)s;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_constraint_set_excludes_titles_from_the_very_next_search),
        cmocka_unit_test(test_an_older_version_is_ignored),
        cmocka_unit_test(test_a_bad_event_lands_in_the_dlq_with_its_reason),
        cmocka_unit_test(test_erase_leaves_nothing_and_the_next_search_is_a_new_users),
        cmocka_unit_test(test_status_shows_freshness_and_the_policy_topic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
