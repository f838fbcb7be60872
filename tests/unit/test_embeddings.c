/*
 * Tests of common/stores/embeddings.c: the request body, the parsing of an
 * OpenAI-compatible answer, and the client against a server in the test
 * (the path, the headers, and an answer that is not 200 as an error with
 * its status as a field).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "embeddings.h"

static void test_request_body(void **state)
{
    (void)state;
    const char *texts[] = {"Heat. A heist in L.A.", "Solo"};
    hsc_err err = {0};
    char *body;
    assert_int_equal(hsc_embeddings_request_json("m1", texts, 2, &body, &err), HSC_OK);
    json_t *o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "m1");
    assert_int_equal(json_array_size(json_object_get(o, "input")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "input"), 1)), "Solo");
    assert_string_equal(json_string_value(json_object_get(o, "encoding_format")), "float");
    json_decref(o);
    free(body);
}

/* A text that is not UTF-8 is named, rather than dropped from the input list. */
static void test_request_body_refuses_bad_text(void **state)
{
    (void)state;
    const char *texts[] = {"fine", "bad \xc3"};
    hsc_err err = {0};
    char *body = (char *)"untouched";
    assert_int_equal(hsc_embeddings_request_json("m1", texts, 2, &body, &err), HSC_EINVAL);
    assert_null(body);
    assert_string_equal(err.msg, "embeddings request: texts[1]: not valid UTF-8");
}

static void test_parse_orders_by_index(void **state)
{
    (void)state;
    const char *resp = "{\"object\":\"list\",\"data\":["
                       "{\"object\":\"embedding\",\"index\":1,\"embedding\":[3,4]},"
                       "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1.5,2]}],"
                       "\"model\":\"m\"}";
    float *out[2];
    hsc_err err = {0};
    assert_int_equal(hsc_embeddings_parse(resp, strlen(resp), 2, 2, out, &err), HSC_OK);
    assert_true(out[0][0] == 1.5f && out[0][1] == 2.0f);
    assert_true(out[1][0] == 3.0f && out[1][1] == 4.0f);
    free(out[0]);
    free(out[1]);
}

static void test_parse_names_what_differs(void **state)
{
    (void)state;
    float *out[2];
    hsc_err err = {0};
    const char *wrong_dim = "{\"data\":[{\"index\":0,\"embedding\":[1,2,3]}]}";
    assert_int_equal(hsc_embeddings_parse(wrong_dim, strlen(wrong_dim), 1, 2, out, &err),
                     HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "3 values"));
    assert_non_null(strstr(err.msg, "milvus.dimension is 2"));
    const char *short_ = "{\"data\":[{\"index\":0,\"embedding\":[1,2]}]}";
    assert_int_equal(hsc_embeddings_parse(short_, strlen(short_), 2, 2, out, &err), HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "asked for 2, got 1"));
    assert_int_equal(hsc_embeddings_parse("oops", 4, 1, 2, out, &err), HSC_ETRANSIENT);
    assert_non_null(strstr(err.msg, "no data array"));
    assert_null(out[0]);
}

/* ---------------- the client against a server in the test ---------------- */

/* One connection: reads a request, keeps its head, answers with status and body. */
struct server {
    int fd, port;
    pthread_t thread;
    int status;
    const char *body;
    char head[4096];
};

static void *serve(void *arg)
{
    struct server *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[8192];
    size_t len = 0;
    long clen = -1;
    char *end = NULL;
    while (len < sizeof(buf) - 1) {
        ssize_t r = read(c, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "Content-Length:");
            clen = cl ? atol(cl + 15) : 0;
        }
        if (end && (long)(len - (size_t)(end + 4 - buf)) >= clen)
            break;
    }
    snprintf(s->head, sizeof(s->head), "%.*s", end ? (int)(end - buf) : (int)len, buf);
    char out[8192];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n%s",
                     s->status, strlen(s->body), s->body);
    ssize_t w = write(c, out, (size_t)n);
    (void)w;
    close(c);
    return NULL;
}

static void server_start(struct server *s, int status, const char *body)
{
    memset(s, 0, sizeof(*s));
    s->status = status;
    s->body = body;
    s->fd = loopback_listen(4, &s->port);
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

struct outcome {
    int calls;
    size_t n;
    float first[2];
    int code;
    long http_status;
    char msg[512];
};

static void on_vectors(void *arg, float **vecs, size_t n, const hsc_err *err)
{
    struct outcome *o = arg;
    o->calls++;
    if (!vecs) {
        o->code = err->code;
        o->http_status = err->http_status;
        snprintf(o->msg, sizeof(o->msg), "%s", err->msg);
        return;
    }
    o->n = n;
    o->first[0] = vecs[0][0];
    o->first[1] = vecs[0][1];
    for (size_t i = 0; i < n; i++)
        free(vecs[i]); /* the callback's to keep or free */
}

/* Asks a server answering status/body for the vectors of two texts. */
static struct outcome fetch(struct server *s)
{
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_http *h = hsc_http_new(loop, &err);
    assert_non_null(h);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port); /* the '/' is dropped */
    struct hsc_embeddings_settings st = {
        .url = url, .model = "m1", .api_key = "sk-1", .dim = 2, .timeout_ms = 5000};
    hsc_embeddings *e = hsc_embeddings_new(h, &st, &err);
    assert_non_null(e);
    const char *texts[] = {"a", "b"};
    struct outcome o = {0};
    assert_int_equal(hsc_embeddings_fetch(e, texts, 2, on_vectors, &o, &err), HSC_OK);
    assert_int_equal(o.calls, 0); /* never from inside the call */
    while (!o.calls)
        ev_run(loop, EVRUN_ONCE);
    hsc_http_free(h);
    hsc_embeddings_free(e);
    ev_loop_destroy(loop);
    return o;
}

static void test_client_posts_and_parses(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, 200,
                 "{\"data\":[{\"index\":1,\"embedding\":[3,4]},"
                 "{\"index\":0,\"embedding\":[1.5,2]}]}");
    struct outcome o = fetch(&s);
    server_stop(&s);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.n, 2);
    assert_true(o.first[0] == 1.5f && o.first[1] == 2.0f);
    assert_non_null(strstr(s.head, "POST /v1/embeddings HTTP/1.1"));
    assert_non_null(strstr(s.head, "Authorization: Bearer sk-1"));
    assert_non_null(strstr(s.head, "Content-Type: application/json"));
}

static void test_client_refusal_is_an_error_with_its_status(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, 401, "{\"error\":{\"message\":\"bad key\"}}");
    struct outcome o = fetch(&s);
    server_stop(&s);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.code, HSC_ETRANSIENT);
    assert_int_equal(o.http_status, 401);
    assert_non_null(strstr(o.msg, "embeddings: HTTP 401"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_request_body_refuses_bad_text),
        cmocka_unit_test(test_parse_orders_by_index),
        cmocka_unit_test(test_parse_names_what_differs),
        cmocka_unit_test(test_client_posts_and_parses),
        cmocka_unit_test(test_client_refusal_is_an_error_with_its_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
