/*
 * hsc-query against the real stack, on a sample catalogue that went through
 * the pipeline (PostgreSQL, Neo4j, Milvus) and a few users:
 *  - every strategy answers, and answers what the data implies: a title's
 *    own vector finds it first; graph results come from the seed's
 *    neighbourhood; relationships are exactly the graph's edges to the seed;
 *  - auto picks the strategy the request's features call for;
 *  - a user who excludes horror never gets horror, whichever strategy runs;
 *  - a user who liked three science-fiction titles gets more science fiction
 *    than a new user for the same query;
 *  - a repeated query is a cache hit; a content update and a learning event
 *    each make it miss again;
 *  - a request that is not MessagePack gets an error reply naming the
 *    problem and goes to the DLQ; the worker keeps answering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "it_query.h"

#define N "600"

static struct it T;
static struct itq Q;
static pid_t query_pid;
static char user_nohorror[96], user_fan[96], user_new[96];
static int metrics_port, cache_hits_seen;

static void search(const hsc_search_request *req, struct itq_result *res)
{
    assert_int_equal(itq_search(&Q, req, 5000, res), 0);
    cache_hits_seen += res->reply.cache_hit;
    if (!res->reply.ok)
        fail_msg("search failed: %s: %s", res->reply.error_code, res->reply.error_message);
}

static int count_genre(const struct itq_result *res, const char *g)
{
    int n = 0;
    for (size_t i = 0; i < res->reply.nresults; i++)
        n += itq_has_genre(&T, res->reply.results[i].id, g);
    return n;
}

static int contains(const struct itq_result *res, const char *id)
{
    for (size_t i = 0; i < res->reply.nresults; i++)
        if (!strcmp(res->reply.results[i].id, id))
            return 1;
    return 0;
}

static void test_vector_only_finds_own_title(void **s)
{
    const char *ids[] = {"t000010", "t000123", "t000250", "t000377", "t000599"};
    for (size_t i = 0; i < 5; i++) {
        hsc_search_request req;
        itq_request_like(&T, ids[i], &req);
        req.strategy = HSC_STRATEGY_VECTOR_ONLY;
        req.cache = false;
        struct itq_result res;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_VECTOR_ONLY);
        assert_int_equal(res.reply.nresults, 10);
        assert_string_equal(res.reply.results[0].id, ids[i]);
        assert_true(res.reply.results[0].title && res.reply.results[0].title[0]);
        for (size_t j = 1; j < res.reply.nresults; j++)
            assert_true(res.reply.results[j].score <= res.reply.results[j - 1].score);
        assert_true(res.reply.timings_us.vector > 0 && res.reply.timings_us.total > 0);
        hsc_search_reply_clear(&res.reply);
        /* auto with only an embedding is the same plan */
        req.strategy = HSC_STRATEGY_AUTO;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_VECTOR_ONLY);
        assert_string_equal(res.reply.results[0].id, ids[i]);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    (void)s;
}

static void test_graph_only_follows_the_seed(void **s)
{
    char *seed = itq_title_only(&T, "science fiction", 0);
    for (int forced = 0; forced < 2; forced++) {
        hsc_search_request req;
        hsc_search_request_init(&req);
        hsc_strlist_push(&req.seed_ids, seed, strlen(seed));
        req.strategy = forced ? HSC_STRATEGY_GRAPH_ONLY : HSC_STRATEGY_AUTO;
        req.cache = false;
        struct itq_result res;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_GRAPH_ONLY);
        assert_int_equal(res.reply.nresults, 10);
        assert_false(contains(&res, seed));
        /* the neighbourhood of a science-fiction-only title is mostly science fiction
         * (about a fifth of the catalogue is) */
        int sf = count_genre(&res, "science fiction");
        fprintf(stderr, "-- graph_only from %s: %d of 10 science fiction\n", seed, sf);
        assert_true(sf >= 6);
        assert_true(res.reply.results[0].graph_score > 0);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    free(seed);
    (void)s;
}

static void test_hybrid_parallel(void **s)
{
    char *seed = itq_title_only(&T, "science fiction", 0);
    char *x = itq_title_only(&T, "science fiction", 1);
    for (int forced = 0; forced < 2; forced++) {
        hsc_search_request req;
        itq_request_like(&T, x, &req);
        hsc_strlist_push(&req.seed_ids, seed, strlen(seed));
        req.strategy = forced ? HSC_STRATEGY_HYBRID_PARALLEL : HSC_STRATEGY_AUTO;
        req.cache = false;
        struct itq_result res;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
        assert_int_equal(res.reply.degraded.n, 0);
        assert_true(contains(&res, x));
        int from_graph = 0, from_vector = 0;
        for (size_t i = 0; i < res.reply.nresults; i++) {
            from_graph += res.reply.results[i].graph_score > 0;
            from_vector += res.reply.results[i].vector_score > 0;
        }
        assert_true(from_graph > 0 && from_vector > 0);
        assert_true(res.reply.timings_us.vector > 0 && res.reply.timings_us.graph > 0);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    free(seed);
    free(x);
    (void)s;
}

static void test_hybrid_sequential_relationships(void **s)
{
    char *seed = itq_title_only(&T, "science fiction", 0);
    for (int forced = 0; forced < 2; forced++) {
        hsc_search_request req;
        itq_request_like(&T, seed, &req);
        hsc_strlist_push(&req.seed_ids, seed, strlen(seed));
        req.include_relationships = true;
        req.strategy = forced ? HSC_STRATEGY_HYBRID_SEQUENTIAL : HSC_STRATEGY_AUTO;
        req.cache = false;
        struct itq_result res;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_HYBRID_SEQUENTIAL);
        int linked = 0;
        for (size_t i = 0; i < res.reply.nresults; i++) {
            const hsc_search_result *r = &res.reply.results[i];
            assert_true(r->has_rels);
            /* exactly the graph's edges between the result and the seed */
            char cy[512];
            snprintf(
                cy, sizeof(cy),
                "MATCH (a:Content {id: '%s'})-[r:SIMILAR_TO|RELATED_TO]-(b:Content {id: '%s'}) "
                "RETURN count(r)",
                r->id, seed);
            long long edges = it_neo4j_int(cy);
            assert_int_equal((long long)r->nrels, edges);
            linked += r->nrels > 0;
            for (size_t j = 0; j < r->nrels; j++)
                assert_string_equal(r->rels[j].seed, seed);
        }
        fprintf(stderr, "-- hybrid_sequential: %d of %zu results linked to the seed\n", linked,
                res.reply.nresults);
        assert_true(linked > 0);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    free(seed);
    (void)s;
}

static void test_user_who_excludes_horror_never_gets_it(void **s)
{
    char *h = itq_title_only(&T, "horror", 0);
    hsc_search_request req;
    itq_request_like(&T, h, &req);
    req.k = 20;
    req.cache = false;
    struct itq_result res;
    /* the control: the same search for nobody in particular is full of horror */
    req.strategy = HSC_STRATEGY_VECTOR_ONLY;
    search(&req, &res);
    int anon = count_genre(&res, "horror");
    assert_true(anon > 0);
    hsc_search_reply_clear(&res.reply);
    req.user_id = strdup(user_nohorror);
    hsc_strlist_push(&req.seed_ids, h, strlen(h));
    hsc_strategy strategies[] = {HSC_STRATEGY_VECTOR_ONLY, HSC_STRATEGY_GRAPH_ONLY,
                                 HSC_STRATEGY_HYBRID_PARALLEL, HSC_STRATEGY_HYBRID_SEQUENTIAL,
                                 HSC_STRATEGY_AUTO};
    for (size_t i = 0; i < 5; i++) {
        for (int pass = 0; pass < 2; pass++) { /* the second pass uses the cached policy */
            req.strategy = strategies[i];
            search(&req, &res);
            if (res.reply.nresults == 0 || count_genre(&res, "horror"))
                fail_msg("%s (pass %d): %zu results, %d horror", hsc_strategy_name(req.strategy),
                         pass, res.reply.nresults, count_genre(&res, "horror"));
            hsc_search_reply_clear(&res.reply);
        }
    }
    fprintf(stderr, "-- horror: %d of 20 for anyone, 0 for the user who excludes it\n", anon);
    hsc_search_request_clear(&req);
    free(h);
    (void)s;
}

static void test_science_fiction_fan_sees_more_of_it(void **s)
{
    char *c = itq_title_only(&T, "comedy", 0);
    int counts[2];
    for (int u = 0; u < 2; u++) {
        hsc_search_request req;
        itq_request_like(&T, c, &req);
        req.k = 20;
        req.cache = false;
        req.user_id = strdup(u ? user_fan : user_new);
        struct itq_result res;
        search(&req, &res);
        assert_int_equal(res.reply.strategy, HSC_STRATEGY_HYBRID_PARALLEL);
        counts[u] = count_genre(&res, "science fiction");
        for (size_t i = 0; u && i < res.reply.nresults; i++)
            if (itq_has_genre(&T, res.reply.results[i].id, "science fiction"))
                assert_true(res.reply.results[i].policy_score > 0);
        hsc_search_reply_clear(&res.reply);
        hsc_search_request_clear(&req);
    }
    fprintf(stderr, "-- science fiction in the top 20: new user %d, fan %d\n", counts[0],
            counts[1]);
    assert_true(counts[1] > counts[0]);
    free(c);
    (void)s;
}

static void publish_lines(const char *topic, const char *text)
{
    char *path = it_temp_file(text, strlen(text));
    assert_int_equal(it_publish(&T, topic, path), 0);
    remove(path);
    free(path);
}

static void test_cache_hits_and_invalidation(void **s)
{
    hsc_search_request req;
    itq_request_like(&T, "t000042", &req);
    struct itq_result a, b;
    search(&req, &a);
    assert_false(a.reply.cache_hit);
    search(&req, &b);
    assert_true(b.reply.cache_hit);
    assert_int_equal(b.reply.strategy, HSC_STRATEGY_CACHED_ONLY);
    assert_int_equal(b.reply.nresults, a.reply.nresults);
    for (size_t i = 0; i < a.reply.nresults; i++)
        assert_string_equal(a.reply.results[i].id, b.reply.results[i].id);
    assert_true(b.reply.timings_us.vector == 0 && b.reply.timings_us.policy == 0);
    fprintf(stderr, "-- cache: miss %lld us, hit %lld us (in the worker)\n",
            (long long)a.reply.timings_us.total, (long long)b.reply.timings_us.total);
    hsc_search_reply_clear(&a.reply);
    hsc_search_reply_clear(&b.reply);
    /* cached_only answers only from the cache */
    req.strategy = HSC_STRATEGY_CACHED_ONLY;
    search(&req, &b);
    assert_true(b.reply.cache_hit);
    hsc_search_reply_clear(&b.reply);
    req.k = 11;
    assert_int_equal(itq_search(&Q, &req, 5000, &b), 0);
    assert_false(b.reply.ok);
    assert_string_equal(b.reply.error_code, "cache_miss");
    hsc_search_reply_clear(&b.reply);
    req.k = 10;
    req.strategy = HSC_STRATEGY_AUTO;

    /* a content update bumps the catalogue epoch: the entry is unreachable */
    long long epoch = it_redis_int(T.epoch_key);
    float *v = itq_embedding(&T, "t000500");
    hsc_buf upd = {0};
    hsc_buf_printf(&upd, "{\"id\":\"t000500\",\"version\":2,\"title\":\"Renamed\","
                         "\"genres\":[\"drama\"],\"embedding\":[");
    for (int i = 0; i < ITQ_DIM; i++)
        hsc_buf_printf(&upd, "%s%.9g", i ? "," : "", v[i]);
    hsc_buf_printf(&upd, "]}\n");
    publish_lines("content", upd.data);
    hsc_buf_free(&upd);
    free(v);
    long long end = it_ms() + 60000;
    while (it_redis_int(T.epoch_key) <= epoch && it_ms() < end)
        usleep(100000);
    assert_true(it_redis_int(T.epoch_key) > epoch);
    search(&req, &a);
    assert_false(a.reply.cache_hit);
    hsc_search_reply_clear(&a.reply);
    search(&req, &a);
    assert_true(a.reply.cache_hit);
    hsc_search_reply_clear(&a.reply);

    /* a learning event bumps the user's policy version: personalised entries miss */
    req.user_id = strdup(user_fan);
    search(&req, &a);
    hsc_search_reply_clear(&a.reply);
    search(&req, &a);
    assert_true(a.reply.cache_hit);
    hsc_search_reply_clear(&a.reply);
    char key[160], line[256];
    snprintf(key, sizeof(key), "hsc:policy:version:%s", user_fan);
    long long ver = it_redis_int(key);
    assert_true(ver >= 1);
    snprintf(line, sizeof(line),
             "{\"user_id\":\"%s\",\"content_id\":\"t000042\",\"kind\":\"like\",\"ts\":%lld}\n",
             user_fan, 1800000000000LL);
    publish_lines("learning", line);
    end = it_ms() + 60000;
    while (it_redis_int(key) <= ver && it_ms() < end)
        usleep(100000);
    assert_true(it_redis_int(key) > ver);
    search(&req, &a);
    assert_false(a.reply.cache_hit);
    hsc_search_reply_clear(&a.reply);
    hsc_search_request_clear(&req);
    (void)s;
}

static void test_bad_request_goes_to_the_dlq_without_a_reply(void **s)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", T.brokers, errstr, sizeof(errstr));
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(p);
    char corr[64], deadline[32];
    snprintf(corr, sizeof(corr), "bad-%d", (int)getpid());
    snprintf(deadline, sizeof(deadline), "%lld", 4102444800000LL); /* 2100: never expires */
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, HSC_HDR_CORRELATION_ID, -1, corr, -1);
    rd_kafka_header_add(h, HSC_HDR_REPLY_TOPIC, -1, it_topic(&T, "search_replies"), -1);
    rd_kafka_header_add(h, HSC_HDR_REPLY_PARTITION, -1, "0", -1);
    rd_kafka_header_add(h, HSC_HDR_DEADLINE_MS, -1, deadline, -1);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(it_topic(&T, "search_requests")),
                                       RD_KAFKA_V_VALUE("\xc1 not msgpack", 15),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     0);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    /* the request is in the DLQ with the stage and the reason */
    struct it_record *dlq;
    size_t n = it_consume_all(&T, it_topic(&T, "dlq"), 1, 30000, &dlq);
    assert_int_equal(n, 1);
    assert_string_equal(it_header(&dlq[0], "hsc-stage"), "query");
    assert_non_null(strstr(it_header(&dlq[0], "hsc-error"), "not MessagePack"));
    it_records_free(dlq, n);
    /* and, handled by now, it got no reply at all: bytes that do not decode are not
     * trusted with choosing a write (the client times out; the DLQ says why) */
    struct it_record *recs;
    size_t nr = it_consume_all(&T, it_topic(&T, "search_replies"), 1000000, 5000, &recs);
    for (size_t i = 0; i < nr; i++)
        if (!strcmp(it_header(&recs[i], HSC_HDR_CORRELATION_ID), corr))
            fail_msg("a reply was written for an undecodable request");
    it_records_free(recs, nr);
    /* the worker is still answering */
    hsc_search_request req;
    itq_request_like(&T, "t000001", &req);
    struct itq_result res;
    search(&req, &res);
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
    (void)s;
}

/* The worker's own account matches what the client saw, and it says it is healthy. */
static void test_metrics_and_health_endpoints(void **s)
{
    char url[128];
    long st;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", metrics_port);
    free(it_http("GET", url, NULL, &st));
    assert_int_equal(st, 200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", metrics_port);
    free(it_http("GET", url, NULL, &st));
    assert_int_equal(st, 200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", metrics_port);
    char *m = it_http("GET", url, NULL, &st);
    assert_int_equal(st, 200);
    char want[256];
    snprintf(want, sizeof(want), "\nhsc_query_cache_hits_total %d\n", cache_hits_seen);
    if (!strstr(m, want))
        fail_msg("expected '%s' in the metrics:\n%s", want + 1, m);
    snprintf(want, sizeof(want), "\nhsc_dlq_messages_total{topic=\"%s\"} 1\n",
             it_topic(&T, "search_requests"));
    assert_non_null(strstr(m, want));
    assert_non_null(strstr(m, "# TYPE hsc_query_request_duration_seconds histogram\n"));
    assert_non_null(strstr(m, "hsc_query_requests_total{strategy=\"vector_only\",status=\"ok\"} "));
    assert_non_null(strstr(m, "hsc_backend_request_duration_seconds_count{backend=\"milvus\","
                              "op=\"search\"} "));
    assert_non_null(strstr(m, "hsc_backend_request_duration_seconds_bucket{backend=\"neo4j\","
                              "op=\"candidates\",le=\"+Inf\"} "));
    fprintf(stderr, "-- metrics: %d cache hits seen by the client and counted by the worker\n",
            cache_hits_seen);
    free(m);
    /* every request partition is assigned and, everything answered, its lag drains to 0 */
    long long until = it_ms() + 15000;
    int zero = 0;
    while (zero < 6 && it_ms() < until) {
        usleep(300000);
        m = it_http("GET", url, NULL, &st);
        zero = 0;
        for (int p = 0; m && p < 6; p++) {
            snprintf(want, sizeof(want), "hsc_consumer_lag{topic=\"%s\",partition=\"%d\"} 0\n",
                     it_topic(&T, "search_requests"), p);
            zero += strstr(m, want) != NULL;
        }
        free(m);
    }
    assert_int_equal(zero, 6);
    (void)s;
}

static int setup(void **s)
{
    it_setup(&T);
    char *content = itq_catalogue(&Q, &T, N, "it-qsearch");
    remove(content);
    free(content);
    /* a user who excludes horror, a new user, and a fan of three science-fiction titles */
    snprintf(user_nohorror, sizeof(user_nohorror), "%snohorror", T.prefix);
    snprintf(user_fan, sizeof(user_fan), "%sfan", T.prefix);
    snprintf(user_new, sizeof(user_new), "%snew", T.prefix);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO user_policies (user_id, excluded_genres) VALUES ('%s', '{horror}') "
             "RETURNING 1",
             user_nohorror);
    assert_int_equal(it_pg_int(&T, sql), 1);
    hsc_buf likes = {0};
    for (int i = 0; i < 3; i++) {
        char *id = itq_title_only(&T, "science fiction", 2 + i);
        hsc_buf_printf(&likes,
                       "{\"user_id\":\"%s\",\"content_id\":\"%s\",\"kind\":\"like\",\"ts\":%d}\n",
                       user_fan, id, 1000 + i);
        free(id);
    }
    publish_lines("learning", likes.data);
    hsc_buf_free(&likes);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM learning_events WHERE user_id = '%s'",
             user_fan);
    assert_int_equal(it_pg_wait(&T, sql, 3, 60000), 3);
    metrics_port = 20000 + (int)(getpid() % 20000);
    char mp[48];
    snprintf(mp, sizeof(mp), "metrics.port=%d", metrics_port);
    const char *qa[] = {ITQ_QUERY_ARGS,
                        "--set",
                        "query.group=it-qsearch-query",
                        "--set",
                        mp,
                        "--set",
                        "rdkafka.consumer.statistics.interval.ms=1000",
                        NULL};
    query_pid = it_spawn(&T, "hsc-query", qa);
    itq_client(&Q);
    hsc_search_request req;
    itq_request_like(&T, "t000001", &req);
    req.cache = false;
    struct itq_result res;
    itq_search_ok(&Q, &req, &res); /* ready: assigned and Milvus loaded */
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
    (void)s;
    return 0;
}

static int teardown(void **s)
{
    assert_int_equal(it_stop(query_pid, SIGTERM, 30000), 0);
    itq_done(&Q);
    it_teardown(&T);
    (void)s;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_only_finds_own_title),
        cmocka_unit_test(test_graph_only_follows_the_seed),
        cmocka_unit_test(test_hybrid_parallel),
        cmocka_unit_test(test_hybrid_sequential_relationships),
        cmocka_unit_test(test_user_who_excludes_horror_never_gets_it),
        cmocka_unit_test(test_science_fiction_fan_sees_more_of_it),
        cmocka_unit_test(test_cache_hits_and_invalidation),
        cmocka_unit_test(test_bad_request_goes_to_the_dlq_without_a_reply),
        cmocka_unit_test(test_metrics_and_health_endpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
