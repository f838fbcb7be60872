/* Tests of common/core/config.c: defaults, INI, environment, errors naming the key. */
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

static char *write_ini(const char *text)
{
    char *path = strdup("/tmp/hsc_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **s)
{
    hsc_config *c = hsc_config_new();
    assert_string_equal(hsc_config_str(c, "kafka.brokers"), "127.0.0.1:9092");
    assert_int_equal(hsc_config_int(c, "ingest.batch_max"), 500);
    assert_int_equal(hsc_config_int(c, "topics.content_partitions"), 6);
    assert_string_equal(hsc_config_topic(c, "topics.dlq"), "hsc.dlq");
    hsc_config_free(c);
    (void)s;
}

static int collect(void *arg, const char *name, const char *value, hsc_err *err)
{
    char *out = arg;
    strcat(out, name);
    strcat(out, "=");
    strcat(out, value);
    strcat(out, ";");
    (void)err;
    return 0;
}

static void test_ini_values_and_passthrough(void **s)
{
    char *path = write_ini("; comment\n[kafka]\nbrokers = k1:9092,k2:9092\n"
                           "[ingest]\nbatch_max = 1000\n[topics]\nprefix = staging.\n"
                           "[rdkafka]\nsocket.keepalive.enable = true\n"
                           "[rdkafka.consumer]\nsession.timeout.ms = 10000\n");
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_load_file(c, path, &err), HSC_OK);
    assert_string_equal(hsc_config_str(c, "kafka.brokers"), "k1:9092,k2:9092");
    assert_int_equal(hsc_config_int(c, "ingest.batch_max"), 1000);
    assert_string_equal(hsc_config_topic(c, "topics.content_events"), "staging.hsc.content.events");
    char got[256] = "";
    assert_int_equal(hsc_config_each_passthrough(c, "rdkafka", collect, got, &err), 0);
    assert_string_equal(got, "socket.keepalive.enable=true;");
    got[0] = '\0';
    assert_int_equal(hsc_config_each_passthrough(c, "rdkafka.consumer", collect, got, &err), 0);
    assert_string_equal(got, "session.timeout.ms=10000;");
    hsc_config_free(c);
    unlink(path);
    free(path);
    (void)s;
}

static void test_errors_name_key_and_line(void **s)
{
    const struct {
        const char *ini, *expect;
    } cases[] = {
        {"[ingest]\nbatch_maxx = 3\n", ":2: ingest.batch_maxx: unknown key"},
        {"[ingest]\n\nbatch_max = lots\n", ":3: ingest.batch_max: 'lots' is not an integer"},
        {"[ingest]\nbatch_max = 0\n", "ingest.batch_max: 0 is outside 1..100000"},
        {"[log]\nformat = xml\n", "log.format: 'xml' is not one of logfmt|json"},
        {"orphan = 1\n", "key 'orphan' is outside any [section]"},
        {"[kafka]\nthis line has no equals\n", ":2: not a 'key = value' line"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_ini(cases[i].ini);
        hsc_config *c = hsc_config_new();
        hsc_err err = {0};
        int rc = hsc_config_load_file(c, path, &err);
        if (rc != HSC_ECONFIG || !strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: rc=%d msg='%s', expected '%s'", i, rc, err.msg, cases[i].expect);
        hsc_config_free(c);
        unlink(path);
        free(path);
    }
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_load_file(c, "/nonexistent/hsc.ini", &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "/nonexistent/hsc.ini: cannot open config file"));
    hsc_config_free(c);
    (void)s;
}

static void test_environment_overrides(void **s)
{
    char *env[] = {"HSC_PG_URL=postgresql://u:secret@db:5432/hsc", "HSC_INGEST_LINGER_MS=20",
                   "HSC_RDKAFKA_SECURITY_PROTOCOL=ssl", "UNRELATED=1", NULL};
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_apply_env(c, env, &err), HSC_OK);
    assert_string_equal(hsc_config_str(c, "pg.url"), "postgresql://u:secret@db:5432/hsc");
    assert_int_equal(hsc_config_int(c, "ingest.linger_ms"), 20);
    char got[128] = "";
    hsc_config_each_passthrough(c, "rdkafka", collect, got, &err);
    assert_string_equal(got, "security.protocol=ssl;");
    char *bad[] = {"HSC_INGEST_BATCH_MAX=-4", NULL};
    assert_int_equal(hsc_config_apply_env(c, bad, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "environment HSC_INGEST_BATCH_MAX: ingest.batch_max: -4"));
    hsc_config_free(c);
    (void)s;
}

static void test_set_and_dump_masks_secrets(void **s)
{
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(c, "pg.url", "postgresql://hsc:hunter2@h:1/db", &err), 0);
    assert_int_equal(hsc_config_set(c, "rdkafka.producer.linger.ms", "7", &err), 0);
    assert_int_equal(hsc_config_set(c, "nope.key", "1", &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "nope.key: unknown key");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_config_dump(c, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "url = postgresql://hsc:****@h:1/db"));
    assert_non_null(strstr(buf, "[rdkafka.producer]\nlinger.ms = 7"));
    free(buf);
    hsc_config_free(c);
    (void)s;
}

/* Every way a code-loading librdkafka property can arrive is refused, naming the key and why. */
static void test_code_loading_rdkafka_properties_refused(void **s)
{
    hsc_err err = {0};
    hsc_config *c = hsc_config_new();
    char *env[] = {"HSC_RDKAFKA_PLUGIN_LIBRARY_PATHS=/tmp/evil.so", NULL};
    assert_int_equal(hsc_config_apply_env(c, env, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "environment HSC_RDKAFKA_PLUGIN_LIBRARY_PATHS: "
                                    "rdkafka.plugin.library.paths: refused"));
    assert_non_null(strstr(err.msg, "dlopen"));
    char *kinit[] = {"HSC_RDKAFKA_SASL_KERBEROS_KINIT_CMD=touch /tmp/pwned", NULL};
    assert_int_equal(hsc_config_apply_env(c, kinit, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "rdkafka.sasl.kerberos.kinit.cmd: refused"));
    assert_non_null(strstr(err.msg, "shell command"));
    /* --set, with any case */
    assert_int_equal(hsc_config_set(c, "rdkafka.consumer.SSL.Engine.Location", "/x.so", &err),
                     HSC_ECONFIG);
    assert_non_null(strstr(err.msg, "rdkafka.consumer.SSL.Engine.Location: refused"));
    assert_int_equal(hsc_config_set(c, "rdkafka.ssl.providers", "legacy", &err), HSC_ECONFIG);
    assert_int_equal(hsc_config_set(c, "rdkafka.interceptors", "x", &err), HSC_ECONFIG);
    /* the INI file: the line is named too */
    char *path = write_ini("[rdkafka.producer]\nlinger.ms = 5\nplugin.library.paths = a.so\n");
    assert_int_equal(hsc_config_load_file(c, path, &err), HSC_ECONFIG);
    assert_non_null(strstr(err.msg, ":3: rdkafka.producer.plugin.library.paths: refused"));
    unlink(path);
    free(path);
    /* nothing refused reached the pass-through */
    char got[256] = "";
    hsc_config_each_passthrough(c, "rdkafka", collect, got, &err);
    hsc_config_each_passthrough(c, "rdkafka.consumer", collect, got, &err);
    assert_null(strstr(got, "plugin"));
    assert_null(strstr(got, "kinit"));
    assert_null(strstr(got, "engine"));
    /* what does not load code still passes: OIDC login, file paths, the unsecured JWT config */
    assert_int_equal(hsc_config_set(c, "rdkafka.sasl.oauthbearer.method", "oidc", &err), 0);
    assert_int_equal(hsc_config_set(c, "rdkafka.ssl.ca.location", "/etc/ca.pem", &err), 0);
    assert_null(hsc_config_rdkafka_refused("sasl.oauthbearer.config"));
    assert_null(hsc_config_rdkafka_refused("sasl.kerberos.keytab"));
    assert_non_null(hsc_config_rdkafka_refused("  plugin.library.paths"));
    hsc_config_free(c);
    (void)s;
}

/* Secrets are masked by their key's name, in known keys and in librdkafka properties. */
static void test_dump_masks_by_sensitive_name(void **s)
{
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(c, "milvus.token", "root:Milvus-tok3n", &err), 0);
    assert_int_equal(hsc_config_set(c, "neo4j.password", "n3o-pass", &err), 0);
    assert_int_equal(hsc_config_set(c, "embeddings.api_key", "sk-abc123", &err), 0);
    assert_int_equal(hsc_config_set(c, "redis.url", "redis://:r3dis@h:6379/0", &err), 0);
    char *env[] = {"HSC_RDKAFKA_SASL_PASSWORD=kafk4-pw",
                   "HSC_RDKAFKA_SASL_OAUTHBEARER_CLIENT_SECRET=oidc-s3cret",
                   "HSC_RDKAFKA_SSL_KEY_PEM=-----BEGIN PRIVATE KEY-----xyz",
                   "HSC_RDKAFKA_SSL_KEYSTORE_PASSWORD=ks-pw",
                   "HSC_RDKAFKA_SASL_OAUTHBEARER_CONFIG=principal=admin extension_k=v4lue",
                   "HSC_RDKAFKA_SASL_USERNAME=alice",
                   NULL};
    assert_int_equal(hsc_config_apply_env(c, env, &err), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_config_dump(c, f);
    fclose(f);
    const char *secrets[] = {"Milvus-tok3n", "n3o-pass",    "sk-abc123", "r3dis", "kafk4-pw",
                             "s3cret",       "PRIVATE KEY", "ks-pw",     "v4lue"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(*secrets); i++)
        if (strstr(buf, secrets[i]))
            fail_msg("%s printed in:\n%s", secrets[i], buf);
    assert_non_null(strstr(buf, "token = ****\n"));
    assert_non_null(strstr(buf, "url = redis://:****@h:6379/0\n"));
    assert_non_null(strstr(buf, "sasl.password = ****\n"));
    assert_non_null(strstr(buf, "sasl.username = alice\n")); /* not a secret */
    assert_non_null(strstr(buf, "bind = 127.0.0.1\n"));      /* the metrics default */
    assert_true(hsc_config_key_sensitive("ssl.key.pem"));
    assert_true(hsc_config_key_sensitive("sasl.jaas.config"));
    assert_true(hsc_config_key_sensitive("query.auth_key"));
    assert_false(hsc_config_key_sensitive("ssl.ca.location"));
    assert_false(hsc_config_key_sensitive("metrics.port"));
    free(buf);
    hsc_config_free(c);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ini_values_and_passthrough),
        cmocka_unit_test(test_errors_name_key_and_line),
        cmocka_unit_test(test_environment_overrides),
        cmocka_unit_test(test_set_and_dump_masks_secrets),
        cmocka_unit_test(test_code_loading_rdkafka_properties_refused),
        cmocka_unit_test(test_dump_masks_by_sensitive_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
