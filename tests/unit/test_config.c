/*
 * Tests of common/core/config.c: defaults, INI, environment, errors naming
 * where a value came from and the key, origins in the dumps, the declarations
 * (config_keys.def), and getters that abort on an undeclared key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
        /* the message starts with the file's path, then the line, then the key */
        if (rc != HSC_ECONFIG || strncmp(err.msg, path, strlen(path)) ||
            !strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: rc=%d msg='%s', expected '%s: ...%s'", i, rc, err.msg, path,
                     cases[i].expect);
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

/* "pg.query_timeout_ms" -> "HSC_PG_QUERY_TIMEOUT_MS", the way the config names keys. */
static void key_env_name(const char *key, char *out, size_t cap)
{
    size_t j = (size_t)snprintf(out, cap, "HSC_");
    for (const char *p = key; *p && j + 1 < cap; p++)
        out[j++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    out[j] = '\0';
}

static void test_unknown_environment_variable_refused(void **s)
{
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    /* a misspelt key stops start-up, naming the variable; nothing of env is applied */
    char *typo[] = {"HSC_INGEST_LINGER_MS=20", "HSC_PG_URLL=postgresql://x", NULL};
    assert_int_equal(hsc_config_apply_env(c, typo, &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "environment HSC_PG_URLL: no such key");
    assert_int_equal(hsc_config_int(c, "ingest.linger_ms"), 5);
    /* a key's name must match whole: neither a prefix of one nor one with more after it */
    char *prefix[] = {"HSC_PG=x", NULL};
    assert_int_equal(hsc_config_apply_env(c, prefix, &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "environment HSC_PG: no such key");
    char *longer[] = {"HSC_PG_URL_=x", NULL};
    assert_int_equal(hsc_config_apply_env(c, longer, &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "environment HSC_PG_URL_: no such key");
    /* what the scripts set, librdkafka's properties and everything not HSC_ pass */
    char *ok[] = {"HSC_CONFIG=",
                  "HSC_RUN=/tmp/x",
                  "HSC_TEST_ONLY=unit",
                  "HSC_RDKAFKA_SOCKET_KEEPALIVE_ENABLE=true",
                  "hsc_pg_urll=lower case",
                  "HSCX_PG=1",
                  "PATH=/bin",
                  "HSC_NO_EQUALS_SIGN",
                  NULL};
    assert_int_equal(hsc_config_apply_env(c, ok, &err), HSC_OK);
    /* every listed variable passes, and none of them is also a key's name */
    const struct hsc_config_env_var *v;
    size_t n = 0;
    for (; (v = hsc_config_env_var_at(n)); n++) {
        char kv[128];
        snprintf(kv, sizeof(kv), "%s=1", v->name);
        char *one[] = {kv, NULL};
        if (hsc_config_apply_env(c, one, &err))
            fail_msg("%s: %s", v->name, err.msg);
        assert_true(strncmp(v->name, "HSC_", 4) == 0 && v->used && *v->used);
        const struct hsc_config_key *k;
        for (size_t i = 0; (k = hsc_config_key_at(i)); i++) {
            char name[128];
            key_env_name(k->name, name, sizeof(name));
            if (!strcmp(name, v->name))
                fail_msg("%s is listed as no key, but it is %s", v->name, k->name);
        }
    }
    assert_true(n >= 10);
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
    assert_string_equal(err.msg, "--set nope.key: unknown key");
    assert_int_equal(hsc_config_set(c, "query.max_inflight", "many", &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "--set query.max_inflight: 'many' is not an integer");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_config_dump(c, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "url = postgresql://hsc:****@h:1/db"));
    assert_non_null(strstr(buf, "[rdkafka.producer]\n; from --set\nlinger.ms = 7"));
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

/* Where each value came from: default, FILE:LINE, env VAR, --set, or a caller's own origin. */
static void test_dump_names_origins(void **s)
{
    char *path = write_ini("[ingest]\nbatch_max = 900\n\n[rdkafka.consumer]\n"
                           "session.timeout.ms = 10000\n[log]\nlevel = debug\n");
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_load_file(c, path, &err), HSC_OK);
    char *env[] = {"HSC_INGEST_LINGER_MS=20", "HSC_RDKAFKA_SASL_USERNAME=alice", NULL};
    assert_int_equal(hsc_config_apply_env(c, env, &err), HSC_OK);
    assert_int_equal(hsc_config_set(c, "log.level", "warn", &err), HSC_OK);
    assert_int_equal(hsc_config_set_from(c, "kafka.client_id", "hsc-x", "the program", &err), 0);
    assert_int_equal(hsc_config_set_from(c, "kafka.nope", "1", "the program", &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "the program: kafka.nope: unknown key");

    char *buf = NULL, line[512];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hsc_config_dump_origins(c, f);
    fclose(f);
    const struct {
        const char *key, *origin;
    } want[] = {
        {"ingest.batch_max = 900", ":2"},
        {"ingest.linger_ms = 20", "env HSC_INGEST_LINGER_MS"},
        {"log.level = warn", "--set"},
        {"kafka.client_id = hsc-x", "the program"},
        {"kafka.brokers = 127.0.0.1:9092", "default"},
        {"rdkafka.consumer.session.timeout.ms = 10000", ":5"},
        {"rdkafka.sasl.username = alice", "env HSC_RDKAFKA_SASL_USERNAME"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *at = strstr(buf, want[i].key);
        if (!at)
            fail_msg("no '%s' in:\n%s", want[i].key, buf);
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
        char origin[512];
        snprintf(origin, sizeof(origin), "# %s%s", want[i].origin[0] == ':' ? path : "",
                 want[i].origin);
        if (!strstr(line, origin) || strlen(strstr(line, origin)) != strlen(origin))
            fail_msg("'%s' does not end with '%s'", line, origin);
    }
    free(buf);

    /* the INI dump: a comment above each value that is not the default, and loadable again */
    f = open_memstream(&buf, &len);
    hsc_config_dump(c, f);
    fclose(f);
    snprintf(line, sizeof(line), "; from %s:2\nbatch_max = 900\n", path);
    assert_non_null(strstr(buf, line));
    assert_non_null(strstr(buf, "; from --set\nlevel = warn\n"));
    assert_non_null(strstr(buf, "[kafka]\nbrokers = 127.0.0.1:9092\n"));
    char *again = write_ini(buf);
    hsc_config *c2 = hsc_config_new();
    assert_int_equal(hsc_config_load_file(c2, again, &err), HSC_OK);
    assert_int_equal(hsc_config_int(c2, "ingest.batch_max"), 900);
    assert_string_equal(hsc_config_str(c2, "log.level"), "warn");
    hsc_config_free(c2);
    unlink(again);
    free(again);
    free(buf);
    hsc_config_free(c);
    unlink(path);
    free(path);
    (void)s;
}

/* Values are typed when set: the getters return what was parsed, and a bad set changes nothing. */
static void test_typed_values(void **s)
{
    hsc_config *c = hsc_config_new();
    hsc_err err = {0};
    assert_true(hsc_config_bool(c, "migrate.create_index"));
    assert_int_equal(hsc_config_set(c, "migrate.create_index", "no", &err), 0);
    assert_false(hsc_config_bool(c, "migrate.create_index"));
    assert_int_equal(hsc_config_set(c, "migrate.create_index", "maybe", &err), HSC_ECONFIG);
    assert_false(hsc_config_bool(c, "migrate.create_index"));
    assert_true(hsc_config_double(c, "query.history_weight") == 0.6);
    assert_int_equal(hsc_config_set(c, "query.history_weight", "0.25", &err), 0);
    assert_true(hsc_config_double(c, "query.history_weight") == 0.25);
    assert_int_equal(hsc_config_set(c, "query.history_weight", "2", &err), HSC_ECONFIG);
    assert_string_equal(err.msg, "--set query.history_weight: 2 is outside 0..1");
    assert_true(hsc_config_double(c, "query.history_weight") == 0.25);
    assert_int_equal(hsc_config_int(c, "client.reply_partition"), -1);
    assert_int_equal(hsc_config_set(c, "client.reply_partition", "7", &err), 0);
    assert_int_equal(hsc_config_int(c, "client.reply_partition"), 7);
    hsc_config_free(c);
    (void)s;
}

/* Runs fn in a child process and says whether it died of SIGABRT with want on stderr. */
static void expect_abort(void (*fn)(hsc_config *), const char *want)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        hsc_config *c = hsc_config_new();
        fn(c);
        _exit(0); /* not reached when the getter aborts */
    }
    close(pipefd[1]);
    char out[512] = "";
    ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT || !strstr(out, want))
        fail_msg("expected an abort saying '%s'; status %d, stderr '%s'", want, st, out);
}

static void get_typo(hsc_config *c)
{
    (void)hsc_config_int(c, "query.k_max");
}
static void get_str_typo(hsc_config *c)
{
    (void)hsc_config_str(c, "kafka.broker");
}
static void get_wrong_type(hsc_config *c)
{
    (void)hsc_config_int(c, "query.history_weight");
}
static void get_topic_typo(hsc_config *c)
{
    (void)hsc_config_topic(c, "topics.dlqq");
}

/* A getter asked for an undeclared key, or with the wrong type, aborts naming the key. */
static void test_getters_abort_on_programming_errors(void **s)
{
    expect_abort(get_typo, "hsc_config_int(\"query.k_max\"): no such key in config_keys.def");
    expect_abort(get_str_typo, "hsc_config_str(\"kafka.broker\"): no such key");
    expect_abort(get_wrong_type,
                 "hsc_config_int(\"query.history_weight\"): the key is declared as number");
    expect_abort(get_topic_typo, "hsc_config_topic(\"topics.dlqq\")");
    (void)s;
}

/* Every declared key has help, a default its own type accepts, and one run of its section. */
static void test_declarations(void **s)
{
    hsc_config *c = hsc_config_new(); /* aborts if a default is outside its declaration */
    assert_non_null(c);
    const struct hsc_config_key *k, *prev = NULL;
    char seen[64][32];
    size_t nseen = 0, n = 0;
    for (size_t i = 0; (k = hsc_config_key_at(i)); i++, n++) {
        if (!k->help || strlen(k->help) < 3 || strchr(k->help, '\n'))
            fail_msg("%s: no one-line help", k->name);
        assert_ptr_equal(hsc_config_key_find(k->name), k);
        size_t sl = strcspn(k->name, ".");
        assert_true(sl > 0 && k->name[sl] == '.' && sl < 32);
        if (!prev || strncmp(prev->name, k->name, sl + 1)) {
            for (size_t j = 0; j < nseen; j++)
                if (strlen(seen[j]) == sl && !strncmp(seen[j], k->name, sl))
                    fail_msg("%s: section declared in two places", k->name);
            snprintf(seen[nseen++], sizeof(seen[0]), "%.*s", (int)sl, k->name);
        }
        prev = k;
        if (k->type == HSC_CONFIG_ENUM)
            assert_non_null(k->choices);
    }
    assert_true(n > 100);
    assert_null(hsc_config_key_find("query.k_max"));
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
        cmocka_unit_test(test_unknown_environment_variable_refused),
        cmocka_unit_test(test_set_and_dump_masks_secrets),
        cmocka_unit_test(test_code_loading_rdkafka_properties_refused),
        cmocka_unit_test(test_dump_masks_by_sensitive_name),
        cmocka_unit_test(test_dump_names_origins),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_getters_abort_on_programming_errors),
        cmocka_unit_test(test_declarations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
