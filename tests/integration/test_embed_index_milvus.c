/*
 * Events through hsc-ingest and hsc-embed-index into the real Milvus:
 *  - N titles published: the content ids Milvus holds, each entity counted,
 *    are exactly the published ids (on Milvus 2.3 the id is not the primary
 *    key, so a duplicate entity is possible and would show), Redis's epoch
 *    moved, and hsc.content.indexed, read to its end as a seen-set, says each
 *    published (id, version) was indexed;
 *  - a search with one title's vector returns that title first;
 *  - replaying every event leaves N (no duplicates); a delete leaves N-1;
 *  - an embedding of the wrong dimension goes to the DLQ naming the field,
 *    and a title without an embedding is reported as not indexed, with why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>

#include "hsc/codec.h"
#include "it_common.h"

#define N 1500
#define GROUP "it-embed"

/* Reads line `want` of a sample file: its id and embedding. */
static void sample_line(const char *path, int want, char *id, float *vec, size_t dim)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i <= want; i++)
        assert_true(getline(&line, &cap, f) > 0);
    fclose(f);
    json_t *o = json_loads(line, 0, NULL);
    free(line);
    assert_non_null(o);
    snprintf(id, 64, "%s", json_string_value(json_object_get(o, "id")));
    json_t *e = json_object_get(o, "embedding");
    assert_int_equal(json_array_size(e), dim);
    for (size_t i = 0; i < dim; i++)
        vec[i] = (float)json_number_value(json_array_get(e, i));
    json_decref(o);
}

static void produce_event(struct it *t, const hsc_content_event *ev)
{
    char *buf;
    size_t len;
    hsc_err err = {0};
    assert_int_equal(hsc_codec_encode_content(ev, &buf, &len, &err), 0);
    assert_true(it_produce(t, it_topic(t, "content_events"), ev->id, buf, len, NULL) >= 0);
    free(buf);
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t distinct(char **ids, size_t n)
{
    qsort(ids, n, sizeof(char *), strcmp_ptr);
    size_t d = n ? 1 : 0;
    for (size_t i = 1; i < n; i++)
        d += strcmp(ids[i], ids[i - 1]) != 0;
    return d;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static void test_embed_index_end_to_end(void **state)
{
    struct it t;
    it_setup(&t);
    char count[16];
    snprintf(count, sizeof(count), "%d", N);
    char *content = it_sample(&t, "content", count, count);
    const char *ingest_args[] = {"--set", "ingest.group=it-embed-ingest", NULL};
    const char *ei_args[] = {"--set", "embed_index.group=" GROUP, "--set", "milvus.dimension=16",
                             "--set", "backoff.max_ms=1000",      NULL};
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t ei = it_spawn(&t, "hsc-embed-index", ei_args);
    assert_int_equal(it_publish(&t, "content", content), 0);

    /* Exactly the published ids, each once. */
    assert_int_equal(it_milvus_wait_count(&t, N, 120000), N);
    it_pg_load_jsonl(&t, "pub_content", content);
    struct it_strs want, seen = {0};
    it_pg_strs(&t, "SELECT j->>'id' FROM pub_content", &want);
    char **ids;
    size_t n = it_milvus_ids(&t, &ids);
    for (size_t i = 0; i < n; i++)
        it_strs_push(&seen, ids[i]);
    free_ids(ids, n);
    assert_int_equal(it_strs_diff("Milvus ids", &want, "published", &seen, "milvus"), 0);
    it_strs_free(&want);
    it_strs_free(&seen);
    assert_true(it_redis_int(t.epoch_key) >= 1);

    /* Every published (id, version) is reported indexed, with its dimension and an epoch. */
    assert_int_equal(it_wait_caught_up(&t, GROUP, it_topic(&t, "content_ingested"), 120000), 0);
    struct it_record *recs;
    size_t nrec = it_consume_to_end(&t, it_topic(&t, "content_indexed"), 60000, &recs);
    memset(&seen, 0, sizeof(seen));
    for (size_t i = 0; i < nrec; i++) {
        hsc_indexed_record r;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_decode_indexed(recs[i].value, recs[i].len, &r, &err), 0);
        assert_true(r.indexed);
        assert_int_equal(r.dim, 16);
        assert_true(r.epoch >= 1);
        assert_string_equal(r.id, recs[i].key);
        char row[256];
        snprintf(row, sizeof(row), "%s\t%lld", r.id, (long long)r.version);
        it_strs_push(&seen, row);
        hsc_indexed_record_clear(&r);
    }
    it_records_free(recs, nrec);
    it_strs_distinct(&seen);
    it_pg_strs(&t, IT_PUBLISHED_ID_VERSION("pub_content"), &want);
    assert_int_equal(it_strs_diff("indexed (id, version)", &want, "published", &seen, "indexed"),
                     0);
    it_strs_free(&want);
    it_strs_free(&seen);

    /* A title's own vector finds that title first. */
    for (int k = 0; k < 5; k++) {
        char id[64], got[64];
        float vec[16];
        sample_line(content, k * 97, id, vec, 16);
        assert_int_equal(it_milvus_nearest(&t, vec, 16, got, sizeof(got)), 0);
        assert_string_equal(got, id);
    }

    /* A replay of every event changes nothing. */
    long long epoch_before = it_redis_int(t.epoch_key);
    assert_int_equal(it_publish(&t, "content", content), 0);
    assert_int_equal(
        it_wait_caught_up(&t, "it-embed-ingest", it_topic(&t, "content_events"), 60000), 0);
    assert_int_equal(it_wait_caught_up(&t, GROUP, it_topic(&t, "content_ingested"), 120000), 0);
    assert_true(it_redis_int(t.epoch_key) > epoch_before); /* the replay was really written */
    sleep(3); /* past Milvus's bounded staleness, so a duplicate would show */
    n = it_milvus_ids(&t, &ids);
    assert_int_equal(n, N);
    assert_int_equal(distinct(ids, n), N);
    free_ids(ids, n);

    /* A delete leaves N-1, and that title is gone. */
    char del_id[64];
    float unused[16];
    sample_line(content, 3, del_id, unused, 16);
    hsc_content_event del = {.v = 1, .op = HSC_OP_DELETE, .id = del_id, .version = 99};
    produce_event(&t, &del);
    assert_int_equal(it_milvus_wait_count(&t, N - 1, 60000), N - 1);
    n = it_milvus_ids(&t, &ids);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(ids[i], del_id);
    free_ids(ids, n);

    /* Wrong dimension: DLQ, naming the field; no embedding: reported, not indexed. */
    float eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    hsc_content_event wrong = {
        .v = 1, .id = "wrong-dim", .version = 1, .title = "Wrong", .embedding = eight, .dim = 8};
    hsc_content_event none = {.v = 1, .id = "no-vector", .version = 1, .title = "Bare"};
    produce_event(&t, &wrong);
    produce_event(&t, &none);
    size_t ndlq = it_consume_all(&t, it_topic(&t, "dlq"), 1, 60000, &recs);
    assert_int_equal(ndlq, 1);
    assert_string_equal(it_header(&recs[0], "hsc-stage"), "embed-index");
    assert_string_equal(it_header(&recs[0], "hsc-source-topic"), it_topic(&t, "content_ingested"));
    if (!strstr(it_header(&recs[0], "hsc-error"), "embedding: 8 values"))
        fail_msg("DLQ error header: %s", it_header(&recs[0], "hsc-error"));
    it_records_free(recs, ndlq);
    int found = 0;
    long long end = it_ms() + 60000;
    while (!found && it_ms() < end) {
        nrec = it_consume_all(&t, it_topic(&t, "content_indexed"), 2 * N + 2, 5000, &recs);
        for (size_t i = 0; i < nrec; i++) {
            if (strcmp(recs[i].key, "no-vector"))
                continue;
            hsc_indexed_record r;
            hsc_err err = {0};
            assert_int_equal(hsc_codec_decode_indexed(recs[i].value, recs[i].len, &r, &err), 0);
            assert_false(r.indexed);
            assert_non_null(strstr(r.reason, "no embedding"));
            hsc_indexed_record_clear(&r);
            found = 1;
        }
        it_records_free(recs, nrec);
    }
    assert_true(found);
    assert_int_equal(it_milvus_count(&t), N - 1);

    assert_int_equal(it_stop(ei, SIGTERM, 30000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 30000), 0);
    remove(content);
    free(content);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_embed_index_end_to_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
