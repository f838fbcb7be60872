/*
 * Allocation-failure run of the config module (common/core/config.c): a
 * configuration made, loaded from a file, overridden from the environment and
 * by --set, and dumped both ways, with the n-th allocation failing, for every
 * n. A failed step says HSC_ENOMEM (or, for fopen, that the file could not be
 * opened) and leaves the value it was setting as it was; nothing leaks.
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

#include "config.h"
#include "failalloc.h"

struct ctx {
    char path[64];
};

static void setup(void *arg)
{
    struct ctx *x = arg;
    snprintf(x->path, sizeof(x->path), "/tmp/hsc_test_config_alloc_XXXXXX");
    int fd = mkstemp(x->path);
    assert_true(fd >= 0);
    static const char ini[] = "[kafka]\nbrokers = k1:9092\n[ingest]\nbatch_max = 900\n"
                              "[rdkafka]\nsocket.keepalive.enable = true\n"
                              "[rdkafka.consumer]\nsession.timeout.ms = 10000\n"
                              "fetch.min.bytes = 1\n[rdkafka.producer]\nlinger.ms = 7\n"
                              "[pg]\nurl = postgresql://hsc:hunter2@db:5432/hsc\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
}

static void teardown(void *arg)
{
    unlink(((struct ctx *)arg)->path);
}

/* Sets key, and when that fails for want of memory checks the old value is still there. */
static int set_or_keep(hsc_config *c, const char *key, const char *value, hsc_err *err)
{
    long long before = hsc_config_int(c, key);
    int rc = hsc_config_set(c, key, value, err);
    if (rc) {
        assert_int_equal(rc, HSC_ENOMEM);
        assert_int_equal(hsc_config_int(c, key), before);
    }
    return rc;
}

static int body(void *arg)
{
    struct ctx *x = arg;
    hsc_config *c = hsc_config_new();
    if (!c)
        return HSC_ENOMEM;
    hsc_err err = {0};
    char *env[] = {"HSC_INGEST_LINGER_MS=20", "HSC_RDKAFKA_SASL_USERNAME=alice",
                   "HSC_PG_URL=postgresql://u:s3cret@h/db", NULL};
    int rc = hsc_config_load_file(c, x->path, &err);
    if (!rc)
        rc = hsc_config_apply_env(c, env, &err);
    if (!rc)
        rc = set_or_keep(c, "ingest.batch_max", "1000", &err);
    if (!rc)
        rc = hsc_config_set(c, "rdkafka.producer.linger.ms", "9", &err);
    if (!rc)
        rc = hsc_config_set_from(c, "kafka.client_id", "hsc-x", "the program", &err);
    if (rc) {
        /* an allocation failed: said as such, or as a file fopen could not open */
        assert_true(rc == HSC_ENOMEM || strstr(err.msg, "cannot open config file"));
        assert_true(hsc_failalloc_failed());
        hsc_config_free(c);
        return rc;
    }
    assert_int_equal(hsc_config_int(c, "ingest.batch_max"), 1000);
    assert_int_equal(hsc_config_int(c, "ingest.linger_ms"), 20);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        hsc_config_dump(c, f);
        hsc_config_dump_origins(c, f);
        fclose(f);
        /* a stream that could not grow holds less, but never a secret */
        assert_true(!buf || !strstr(buf, "s3cret"));
    }
    free(buf);
    hsc_config_free(c);
    return 0;
}

static void test_config_load_set_dump_alloc(void **s)
{
    if (!hsc_failalloc_active())
        skip();
    struct ctx x;
    hsc_failalloc_case c = {"config load/env/set/dump", setup, body, teardown, &x};
    assert_true(hsc_failalloc_run(&c) > 10);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_set_dump_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
