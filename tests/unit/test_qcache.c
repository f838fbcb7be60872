/*
 * The result cache's key (workers/query/qcache.c): requests that ask the same
 * thing (order of seeds and genres, case, -0) share a key, and anything that
 * changes the answer (k, user, forced strategy, embedding, relationships,
 * scope) changes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qcache.h"

static uint64_t key_of(const hsc_search_request *r)
{
    hsc_buf b = {0};
    assert_int_equal(hsc_qcache_canonical(r, "scope", &b), 0);
    uint64_t h = hsc_qcache_hash(b.data, b.len);
    hsc_buf_free(&b);
    return h;
}

static void test_cache_key_normalisation(void **s)
{
    float emb[3] = {0.5f, 0.0f, -1.0f};
    hsc_search_request a, b;
    hsc_search_request_init(&a);
    hsc_search_request_init(&b);
    a.embedding = malloc(sizeof(emb)), b.embedding = malloc(sizeof(emb));
    memcpy(a.embedding, emb, sizeof(emb));
    memcpy(b.embedding, emb, sizeof(emb));
    b.embedding[1] = -0.0f; /* -0 and 0 are the same query */
    a.dim = b.dim = 3;
    hsc_strlist_push(&a.seed_ids, "t2", 2), hsc_strlist_push(&a.seed_ids, "t1", 2);
    hsc_strlist_push(&b.seed_ids, "t1", 2), hsc_strlist_push(&b.seed_ids, "t2", 2);
    hsc_strlist_push(&b.seed_ids, "t1", 2); /* duplicates do not matter */
    hsc_strlist_push(&a.filters.genres, "Drama", 5),
        hsc_strlist_push(&a.filters.genres, "comedy", 6);
    hsc_strlist_push(&b.filters.genres, "COMEDY", 6),
        hsc_strlist_push(&b.filters.genres, "drama", 5);
    a.filters.language = strdup("EN"), b.filters.language = strdup("en");
    b.strategy = HSC_STRATEGY_CACHED_ONLY; /* looks up what auto stored */
    assert_true(key_of(&a) == key_of(&b));

    uint64_t base = key_of(&a);
    a.k = 11;
    assert_true(key_of(&a) != base);
    a.k = 10;
    a.user_id = strdup("u1");
    assert_true(key_of(&a) != base);
    free(a.user_id), a.user_id = NULL;
    a.strategy = HSC_STRATEGY_GRAPH_ONLY; /* a forced strategy is its own entry */
    assert_true(key_of(&a) != base);
    a.strategy = HSC_STRATEGY_AUTO;
    a.embedding[0] = 0.5000001f;
    assert_true(key_of(&a) != base);
    a.embedding[0] = 0.5f;
    a.include_relationships = true;
    assert_true(key_of(&a) != base);
    a.include_relationships = false;
    assert_true(key_of(&a) == base);
    hsc_buf x = {0}, y = {0};
    hsc_qcache_canonical(&a, "one", &x);
    hsc_qcache_canonical(&a, "two", &y);
    assert_true(hsc_qcache_hash(x.data, x.len) != hsc_qcache_hash(y.data, y.len));
    hsc_buf_free(&x), hsc_buf_free(&y);

    char k1[128];
    hsc_qcache_key("hsc:q:", 0xabcULL, 7, 3, k1, sizeof(k1));
    assert_string_equal(k1, "hsc:q:0000000000000abc:7:3");
    hsc_search_request_clear(&a);
    hsc_search_request_clear(&b);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_key_normalisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
