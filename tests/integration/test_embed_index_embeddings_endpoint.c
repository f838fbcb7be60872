/*
 * Titles published without an embedding, with an embeddings endpoint
 * configured: embed-index asks it (OpenAI-compatible POST /v1/embeddings) and
 * indexes the answers in the real Milvus. The endpoint here is a small HTTP
 * server in the test that derives a vector from the text, so the test can
 * search with the vector a title must have got. (Milvus, Kafka, PostgreSQL
 * and Redis are the real servers.) Both workers run under valgrind: they must
 * exit cleanly, with no leak and no invalid access, after real network work.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "hsc/codec.h"
#include "it_common.h"

#define N 200
#define DIM 16

static int listen_fd;
static int requests;

/* The vector the endpoint gives a text: reproducible, so the test can search with it. */
static void vector_for(const char *text, float *v)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int i = 0; i < DIM; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        v[i] = (float)((double)(h >> 11) / 9007199254740992.0) - 0.5f;
    }
}

static void serve_one(int fd)
{
    char buf[1 << 16];
    size_t len = 0;
    char *body = NULL;
    long clen = -1;
    while (len < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && clen < 0) {
            char *cl = strcasestr(buf, "Content-Length:");
            clen = cl ? atol(cl + 15) : 0;
            body = end + 4;
        }
        if (body && (long)(len - (size_t)(body - buf)) >= clen)
            break;
    }
    json_t *req = json_loadb(body, (size_t)clen, 0, NULL);
    json_t *data = json_array();
    size_t i;
    json_t *in;
    json_array_foreach (json_object_get(req, "input"), i, in) {
        float v[DIM];
        vector_for(json_string_value(in), v);
        json_t *e = json_array();
        for (int k = 0; k < DIM; k++)
            json_array_append_new(e, json_real(v[k]));
        /* Answer in reverse order: the worker must place vectors by "index". */
        json_array_insert_new(data, 0,
                              json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                        (json_int_t)i, "embedding", e));
    }
    json_t *resp = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data, "model",
                             json_string_value(json_object_get(req, "model")));
    char *out = json_dumps(resp, JSON_COMPACT | JSON_REAL_PRECISION(9));
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      strlen(out));
    assert_true(write(fd, head, (size_t)hl) == hl);
    assert_true(write(fd, out, strlen(out)) == (ssize_t)strlen(out));
    __atomic_add_fetch(&requests, 1, __ATOMIC_SEQ_CST);
    free(out);
    json_decref(resp);
    json_decref(req);
}

static void *server(void *arg)
{
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve_one(fd);
        close(fd);
    }
    (void)arg;
}

static void test_titles_without_embeddings_get_one(void **state)
{
    struct it t;
    it_setup(&t);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(listen_fd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(listen_fd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);

    char url[128];
    snprintf(url, sizeof(url), "embeddings.url=http://127.0.0.1:%d", ntohs(a.sin_port));
    const char *ingest_args[] = {"--set", "ingest.group=it-embeddings-ingest", NULL};
    const char *ei_args[] = {
        "--set", "embed_index.group=it-embeddings", "--set", "milvus.dimension=16", "--set", url,
        "--set", "embeddings.model=test-model",     NULL};
    t.valgrind = 1;
    pid_t ingest = it_spawn(&t, "hsc-ingest", ingest_args);
    pid_t ei = it_spawn(&t, "hsc-embed-index", ei_args);
    t.valgrind = 0;

    for (int i = 0; i < N; i++) {
        char id[32], title[64];
        snprintf(id, sizeof(id), "bare%03d", i);
        snprintf(title, sizeof(title), "Untitled Project %d", i);
        hsc_content_event ev = {
            .v = 1, .id = id, .version = 1, .title = title, .description = "no vector yet"};
        char *buf;
        size_t len;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_encode_content(&ev, &buf, &len, &err), 0);
        assert_true(it_produce(&t, it_topic(&t, "content_events"), id, buf, len, NULL) >= 0);
        free(buf);
    }
    assert_int_equal(it_milvus_wait_count(&t, N, 120000), N);
    assert_true(__atomic_load_n(&requests, __ATOMIC_SEQ_CST) >= 1);

    /* Title 7 got the vector of its own text, and that vector finds it. */
    float v[DIM];
    vector_for("Untitled Project 7. no vector yet", v);
    char got[64];
    assert_int_equal(it_milvus_nearest(&t, v, DIM, got, sizeof(got)), 0);
    assert_string_equal(got, "bare007");

    struct it_record *recs;
    size_t n = it_consume_all(&t, it_topic(&t, "content_indexed"), N, 60000, &recs);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        hsc_indexed_record r;
        hsc_err err = {0};
        assert_int_equal(hsc_codec_decode_indexed(recs[i].value, recs[i].len, &r, &err), 0);
        assert_true(r.indexed);
        assert_int_equal(r.dim, DIM);
        hsc_indexed_record_clear(&r);
    }
    it_records_free(recs, n);

    assert_int_equal(it_stop(ei, SIGTERM, 60000), 0);
    assert_int_equal(it_stop(ingest, SIGTERM, 60000), 0);
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(th, NULL);
    it_teardown(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_titles_without_embeddings_get_one)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
