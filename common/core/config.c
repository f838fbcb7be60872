/*
 * The configuration table and its loaders. The table below is the one place
 * a key is declared: its type, range and default. Everything else (INI, env,
 * --set) goes through config_set_known(), so every path validates the same way.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

enum key_type { T_STR, T_INT, T_BOOL, T_ENUM, T_DOUBLE, T_SECRET };

struct key_def {
    const char *key; /* "section.key" */
    enum key_type type;
    const char *def;
    long long min, max;  /* T_INT range; T_DOUBLE uses them as whole bounds */
    const char *choices; /* T_ENUM: "a|b|c" */
};

/* Every key hsc knows. Keep sorted by section; the docs list them the same way. */
static const struct key_def KEYS[] = {
    {"kafka.brokers", T_STR, "127.0.0.1:9092", 0, 0, NULL},
    {"kafka.client_id", T_STR, "hsc", 0, 0, NULL},
    {"topics.prefix", T_STR, "", 0, 0, NULL},
    {"topics.content_events", T_STR, "hsc.content.events", 0, 0, NULL},
    {"topics.learning_events", T_STR, "hsc.learning.events", 0, 0, NULL},
    {"topics.policy_events", T_STR, "hsc.policy.events", 0, 0, NULL},
    {"topics.content_ingested", T_STR, "hsc.content.ingested", 0, 0, NULL},
    {"topics.content_enriched", T_STR, "hsc.content.enriched", 0, 0, NULL},
    {"topics.content_indexed", T_STR, "hsc.content.indexed", 0, 0, NULL},
    {"topics.search_requests", T_STR, "hsc.search.requests", 0, 0, NULL},
    {"topics.search_replies", T_STR, "hsc.search.replies", 0, 0, NULL},
    {"topics.dlq", T_STR, "hsc.dlq", 0, 0, NULL},
    {"topics.content_partitions", T_INT, "6", 1, 10000, NULL},
    {"topics.search_partitions", T_INT, "6", 1, 10000, NULL},
    {"topics.other_partitions", T_INT, "3", 1, 10000, NULL},
    {"topics.replication_factor", T_INT, "1", 1, 32, NULL},
    {"pg.url", T_SECRET, "postgresql://127.0.0.1:5432/hsc", 0, 0, NULL},
    {"pg.query_timeout_ms", T_INT, "30000", 100, 3600000, NULL},
    {"redis.url", T_SECRET, "redis://127.0.0.1:6379/0", 0, 0, NULL},
    {"redis.timeout_ms", T_INT, "2000", 10, 600000, NULL},
    {"redis.epoch_key", T_STR, "hsc:catalogue:epoch", 0, 0, NULL},
    {"redis.policy_key_prefix", T_STR, "hsc:policy:version:", 0, 0, NULL},
    {"redis.cache_prefix", T_STR, "hsc:q:", 0, 0, NULL},
    {"milvus.url", T_STR, "http://127.0.0.1:19530", 0, 0, NULL},
    {"milvus.token", T_SECRET, "", 0, 0, NULL},
    {"milvus.dialect", T_ENUM, "auto", 0, 0, "auto|v1|v2"},
    {"milvus.collection", T_STR, "hsc_content", 0, 0, NULL},
    {"milvus.dimension", T_INT, "384", 1, 8192, NULL},
    {"milvus.schema", T_STR, "", 0, 0, NULL},
    {"milvus.timeout_ms", T_INT, "10000", 100, 600000, NULL},
    {"milvus.retries", T_INT, "3", 0, 100, NULL},
    {"milvus.ef", T_INT, "64", 1, 32768, NULL},
    {"milvus.write_chunk", T_INT, "250", 1, 100000, NULL},
    {"neo4j.url", T_STR, "http://127.0.0.1:7474", 0, 0, NULL},
    {"neo4j.user", T_STR, "neo4j", 0, 0, NULL},
    {"neo4j.password", T_SECRET, "", 0, 0, NULL},
    {"neo4j.database", T_STR, "neo4j", 0, 0, NULL},
    {"neo4j.dialect", T_ENUM, "auto", 0, 0, "auto|query|tx"},
    {"neo4j.timeout_ms", T_INT, "120000", 100, 3600000, NULL},
    {"neo4j.retries", T_INT, "3", 0, 100, NULL},
    {"embeddings.url", T_STR, "", 0, 0, NULL},
    {"embeddings.model", T_STR, "text-embedding-3-small", 0, 0, NULL},
    {"embeddings.api_key", T_SECRET, "", 0, 0, NULL},
    {"embeddings.timeout_ms", T_INT, "30000", 100, 600000, NULL},
    {"http.max_response_bytes", T_INT, "67108864", 1024, 2147483647LL, NULL},
    {"metrics.port", T_INT, "0", 0, 65535, NULL},
    {"metrics.bind", T_STR, "127.0.0.1", 0, 0, NULL},
    {"metrics.max_connections", T_INT, "16", 1, 1024, NULL},
    {"metrics.timeout_ms", T_INT, "5000", 10, 600000, NULL},
    {"log.level", T_ENUM, "info", 0, 0, "debug|info|warn|error"},
    {"log.format", T_ENUM, "logfmt", 0, 0, "logfmt|json"},
    {"backoff.initial_ms", T_INT, "100", 1, 600000, NULL},
    {"backoff.max_ms", T_INT, "5000", 1, 3600000, NULL},
    {"shutdown.timeout_ms", T_INT, "30000", 0, 3600000, NULL},
    {"paths.schemas", T_STR, HSC_SCHEMAS_DIR, 0, 0, NULL},
    {"ingest.group", T_STR, "hsc-ingest", 0, 0, NULL},
    {"ingest.batch_max", T_INT, "500", 1, 100000, NULL},
    {"ingest.linger_ms", T_INT, "5", 0, 60000, NULL},
    {"ingest.max_message_bytes", T_INT, "1048576", 64, 104857600, NULL},
    {"enrich.group", T_STR, "hsc-enrich", 0, 0, NULL},
    {"enrich.batch_max", T_INT, "2000", 1, 100000, NULL},
    {"enrich.linger_ms", T_INT, "20", 0, 60000, NULL},
    {"enrich.max_message_bytes", T_INT, "1048576", 64, 104857600, NULL},
    {"enrich.vocabulary", T_STR, "", 0, 0, NULL},
    {"enrich.similar_top_n", T_INT, "10", 0, 1000, NULL},
    {"enrich.similar_min", T_DOUBLE, "0.2", 0, 1, NULL},
    {"enrich.similar_fanout", T_INT, "2000", 1, 10000000, NULL},
    {"enrich.weight_genre", T_DOUBLE, "1.0", 0, 100, NULL},
    {"enrich.weight_theme", T_DOUBLE, "0.7", 0, 100, NULL},
    {"enrich.weight_mood", T_DOUBLE, "0.5", 0, 100, NULL},
    {"embed_index.group", T_STR, "hsc-embed-index", 0, 0, NULL},
    {"embed_index.input", T_ENUM, "content_enriched", 0, 0, "content_enriched|content_ingested"},
    {"embed_index.batch_max", T_INT, "1000", 1, 100000, NULL},
    {"embed_index.linger_ms", T_INT, "50", 0, 60000, NULL},
    {"embed_index.max_message_bytes", T_INT, "1048576", 64, 104857600, NULL},
    {"query.group", T_STR, "hsc-query", 0, 0, NULL},
    {"query.max_inflight", T_INT, "256", 1, 100000, NULL},
    {"query.default_deadline_ms", T_INT, "1000", 10, 600000, NULL},
    {"query.reserve_ms", T_INT, "20", 0, 60000, NULL},
    {"query.reply_margin_ms", T_INT, "5", 0, 60000, NULL},
    {"query.auth_key", T_SECRET, "", 0, 0, NULL},
    {"query.budget_factor", T_DOUBLE, "3", 1, 1000, NULL},
    {"query.budget_min_ms", T_INT, "50", 1, 600000, NULL},
    {"query.overfetch", T_INT, "3", 1, 20, NULL},
    {"query.fusion", T_ENUM, "weighted", 0, 0, "weighted|rrf"},
    {"query.rrf_k", T_INT, "60", 1, 100000, NULL},
    {"query.weight_vector", T_DOUBLE, "1.0", 0, 100, NULL},
    {"query.weight_graph", T_DOUBLE, "0.6", 0, 100, NULL},
    {"query.weight_policy", T_DOUBLE, "0.4", 0, 100, NULL},
    {"query.history_seeds", T_INT, "5", 0, 100, NULL},
    {"query.history_weight", T_DOUBLE, "0.6", 0, 1, NULL},
    {"query.preference_half_life_days", T_DOUBLE, "30", 1, 36500, NULL},
    {"query.cache_ttl_personal_s", T_INT, "300", 1, 604800, NULL},
    {"query.cache_ttl_s", T_INT, "3600", 1, 604800, NULL},
    {"query.down_cooldown_ms", T_INT, "1000", 0, 600000, NULL},
    {"query.pg_connections", T_INT, "4", 1, 64, NULL},
    {"query.latency_window", T_INT, "256", 8, 100000, NULL},
    {"query.reply_topics", T_STR, "", 0, 0, NULL},
    {"query.max_deadline_ms", T_INT, "30000", 10, 3600000, NULL},
    {"query.max_request_bytes", T_INT, "65536", 256, 16777216, NULL},
    {"client.reply_partition", T_INT, "-1", -1, 100000, NULL},
    {"client.timeout_ms", T_INT, "2000", 10, 600000, NULL},
    {"migrate.name", T_STR, "legacy", 0, 0, NULL},
    {"migrate.neo4j_url", T_STR, "", 0, 0, NULL},
    {"migrate.neo4j_user", T_STR, "", 0, 0, NULL},
    {"migrate.neo4j_password", T_SECRET, "", 0, 0, NULL},
    {"migrate.neo4j_database", T_STR, "", 0, 0, NULL},
    {"migrate.label", T_STR, "Movie", 0, 0, NULL},
    {"migrate.id_type", T_ENUM, "string", 0, 0, "string|integer"},
    {"migrate.property_id", T_STR, "id", 0, 0, NULL},
    {"migrate.property_title", T_STR, "title", 0, 0, NULL},
    {"migrate.property_description", T_STR, "description", 0, 0, NULL},
    {"migrate.property_kind", T_STR, "kind", 0, 0, NULL},
    {"migrate.property_year", T_STR, "year", 0, 0, NULL},
    {"migrate.property_language", T_STR, "language", 0, 0, NULL},
    {"migrate.property_maturity", T_STR, "maturity", 0, 0, NULL},
    {"migrate.property_duration", T_STR, "duration_s", 0, 0, NULL},
    {"migrate.property_version", T_STR, "version", 0, 0, NULL},
    {"migrate.property_embedding", T_STR, "embedding", 0, 0, NULL},
    {"migrate.rel_genre", T_STR, "IN_GENRE", 0, 0, NULL},
    {"migrate.rel_theme", T_STR, "HAS_THEME", 0, 0, NULL},
    {"migrate.rel_mood", T_STR, "HAS_MOOD", 0, 0, NULL},
    {"migrate.rel_related", T_STR, "RELATED_TO", 0, 0, NULL},
    {"migrate.tag_name_property", T_STR, "name", 0, 0, NULL},
    {"migrate.maturity_ratings", T_STR,
     "G=0,PG=10,PG-13=13,R=17,NC-17=18,TV-Y=0,TV-Y7=7,TV-G=0,TV-PG=10,TV-14=14,TV-MA=17", 0, 0,
     NULL},
    {"migrate.default_version", T_INT, "1", 0, 4611686018427387904LL, NULL},
    {"migrate.page_size", T_INT, "500", 1, 10000, NULL},
    {"migrate.rate", T_DOUBLE, "0", 0, 1000000000, NULL},
    {"migrate.create_index", T_BOOL, "true", 0, 0, NULL},
    {"migrate.verify_sample", T_INT, "200", 0, 100000000, NULL},
    {"migrate.legacy_pg_url", T_SECRET, "", 0, 0, NULL},
    {"migrate.policy_table", T_STR, "legacy_user_policies", 0, 0, NULL},
    {"migrate.policy_user_column", T_STR, "user_id", 0, 0, NULL},
    {"migrate.policy_excluded_column", T_STR, "blocked_genres", 0, 0, NULL},
    {"migrate.policy_maturity_column", T_STR, "max_rating", 0, 0, NULL},
    {"migrate.policy_languages_column", T_STR, "languages", 0, 0, NULL},
};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

struct prop {
    char *section;
    char *name;
    char *value;
};

struct hsc_config {
    char *values[NKEYS];
    struct prop *props;
    size_t nprops, capprops;
    char topic_buf[NKEYS][256];
};

static const struct key_def *find_key(const char *key, size_t *idx)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(KEYS[i].key, key) == 0) {
            if (idx)
                *idx = i;
            return &KEYS[i];
        }
    }
    return NULL;
}

/*
 * librdkafka properties that load code into the worker or run a command. A
 * configuration file, an HSC_RDKAFKA_* variable or a --set is a weaker thing
 * to control than the binary, so none of them may reach these: hsc uses no
 * librdkafka plugin, and the defaults of the Kerberos command and the OpenSSL
 * setup are what a deployment needs. Matched case-insensitively, by prefix
 * where a trailing '.' or '*' says so.
 */
static const struct {
    const char *name, *why;
} REFUSED[] = {
    {"plugin.library.paths", "loads shared libraries into the process (dlopen)"},
    {"plugin.", "belongs to a librdkafka plugin, and plugins are not loaded"},
    {"interceptor*", "installs interceptors that run code inside librdkafka"},
    {"sasl.kerberos.kinit.cmd",
     "is a shell command librdkafka runs (the default kinit command, fed by "
     "sasl.kerberos.keytab and sasl.kerberos.principal, needs no override)"},
    {"ssl.engine.", "loads an OpenSSL engine library (dlopen)"},
    {"ssl.providers", "loads OpenSSL provider modules"},
    {"ssl_engine_callback_data", "is a pointer only code may set"},
};

const char *hsc_config_rdkafka_refused(const char *name)
{
    while (*name == ' ' || *name == '\t')
        name++;
    for (size_t i = 0; i < sizeof(REFUSED) / sizeof(REFUSED[0]); i++) {
        const char *r = REFUSED[i].name;
        size_t n = strlen(r);
        int prefix = r[n - 1] == '.' || r[n - 1] == '*';
        if (r[n - 1] == '*')
            n--;
        if (prefix ? !strncasecmp(name, r, n) : !strcasecmp(name, r))
            return REFUSED[i].why;
    }
    return NULL;
}

/* Substrings of a key or property name whose value is a secret (case-insensitive). */
static const char *const SENSITIVE[] = {
    "password", "passwd",   "secret", "token",    "api_key", "apikey",    "credential",
    "private",  "auth_key", ".pem",   "ssl.key.", "jaas",    "keystore.", "sasl.oauthbearer.config",
    NULL};

bool hsc_config_key_sensitive(const char *name)
{
    for (const char *const *k = SENSITIVE; *k; k++) {
        size_t kl = strlen(*k);
        for (const char *p = name; *p; p++)
            if (!strncasecmp(p, *k, kl))
                return true;
    }
    return false;
}

/*
 * How a secret value is printed: a connection URL (key "*.url", "*_url")
 * keeps its host with its password and password=/token= parameters masked;
 * any other secret is **** whole, whatever it looks like.
 */
static void mask_value(const char *key, const char *value, char *out, size_t cap)
{
    size_t kl = strlen(key);
    if (!*value)
        snprintf(out, cap, "%s", "");
    else if (kl >= 3 && !strcasecmp(key + kl - 3, "url"))
        hsc_mask_secrets(value, out, cap);
    else
        snprintf(out, cap, "%s", "****");
}

static bool is_passthrough_section(const char *section)
{
    return strcmp(section, "rdkafka") == 0 || strcmp(section, "rdkafka.consumer") == 0 ||
           strcmp(section, "rdkafka.producer") == 0;
}

static int check_value(const struct key_def *d, const char *value, hsc_err *err)
{
    switch (d->type) {
    case T_STR:
    case T_SECRET:
        return HSC_OK;
    case T_INT: {
        long long v;
        if (hsc_parse_ll(value, &v) != 0)
            return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not an integer", d->key, value);
        if (v < d->min || v > d->max)
            return hsc_err_set(err, HSC_ECONFIG, "%s: %lld is outside %lld..%lld", d->key, v,
                               d->min, d->max);
        return HSC_OK;
    }
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end)
            return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not a number", d->key, value);
        if (v < (double)d->min || v > (double)d->max)
            return hsc_err_set(err, HSC_ECONFIG, "%s: %g is outside %lld..%lld", d->key, v, d->min,
                               d->max);
        return HSC_OK;
    }
    case T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "false") || !strcmp(value, "1") ||
            !strcmp(value, "0") || !strcmp(value, "yes") || !strcmp(value, "no"))
            return HSC_OK;
        return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not a boolean (true or false)", d->key,
                           value);
    case T_ENUM: {
        size_t n = strlen(value);
        const char *p = d->choices;
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && strncmp(p, value, n) == 0)
                return HSC_OK;
            p = bar ? bar + 1 : NULL;
        }
        return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not one of %s", d->key, value,
                           d->choices);
    }
    }
    return HSC_OK;
}

static int add_prop(hsc_config *cfg, const char *section, const char *name, const char *value,
                    hsc_err *err)
{
    const char *why = hsc_config_rdkafka_refused(name);
    if (why)
        return hsc_err_set(err, HSC_ECONFIG, "%s.%s: refused: this librdkafka property %s", section,
                           name, why);
    for (size_t i = 0; i < cfg->nprops; i++) {
        if (!strcmp(cfg->props[i].section, section) && !strcmp(cfg->props[i].name, name)) {
            char *v = strdup(value);
            if (!v)
                return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
            free(cfg->props[i].value);
            cfg->props[i].value = v;
            return HSC_OK;
        }
    }
    if (cfg->nprops == cfg->capprops) {
        size_t cap = cfg->capprops ? cfg->capprops * 2 : 8;
        struct prop *p = realloc(cfg->props, cap * sizeof(*p));
        if (!p)
            return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
        cfg->props = p;
        cfg->capprops = cap;
    }
    struct prop *p = &cfg->props[cfg->nprops];
    p->section = strdup(section);
    p->name = strdup(name);
    p->value = strdup(value);
    if (!p->section || !p->name || !p->value) {
        free(p->section);
        free(p->name);
        free(p->value);
        return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
    }
    cfg->nprops++;
    return HSC_OK;
}

hsc_config *hsc_config_new(void)
{
    hsc_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        cfg->values[i] = strdup(KEYS[i].def);
        if (!cfg->values[i]) {
            hsc_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

void hsc_config_free(hsc_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        free(cfg->values[i]);
    for (size_t i = 0; i < cfg->nprops; i++) {
        free(cfg->props[i].section);
        free(cfg->props[i].name);
        free(cfg->props[i].value);
    }
    free(cfg->props);
    free(cfg);
}

int hsc_config_set(hsc_config *cfg, const char *dotted_key, const char *value, hsc_err *err)
{
    const char *dot = strrchr(dotted_key, '.');
    if (dot) {
        /* "rdkafka.session.timeout.ms" has dots in the property name: match the section prefix. */
        static const char *sections[] = {"rdkafka.consumer.", "rdkafka.producer.", "rdkafka."};
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(sections[i]);
            if (strncmp(dotted_key, sections[i], n) == 0 && dotted_key[n]) {
                char sec[32];
                snprintf(sec, sizeof(sec), "%.*s", (int)(n - 1), sections[i]);
                return add_prop(cfg, sec, dotted_key + n, value, err);
            }
        }
    }
    size_t idx;
    const struct key_def *d = find_key(dotted_key, &idx);
    if (!d)
        return hsc_err_set(err, HSC_ECONFIG, "%s: unknown key", dotted_key);
    int rc = check_value(d, value, err);
    if (rc)
        return rc;
    char *v = strdup(value);
    if (!v)
        return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
    free(cfg->values[idx]);
    cfg->values[idx] = v;
    return HSC_OK;
}

struct ini_ctx {
    hsc_config *cfg;
    hsc_err *err;
    int rc;
    const char *path;
};

static int on_ini_line(void *user, const char *section, const char *name, const char *value
#if INI_HANDLER_LINENO
                       ,
                       int lineno
#endif
)
{
    struct ini_ctx *c = user;
    if (c->rc)
        return 0;
    char key[256];
    if (!section || !*section) {
        c->rc = hsc_err_set(c->err, HSC_ECONFIG, "key '%s' is outside any [section]", name);
        return 0;
    }
    if (is_passthrough_section(section)) {
        c->rc = add_prop(c->cfg, section, name, value, c->err);
        return c->rc == 0;
    }
    snprintf(key, sizeof(key), "%s.%s", section, name);
    c->rc = hsc_config_set(c->cfg, key, value, c->err);
    return c->rc == 0;
}

int hsc_config_load_file(hsc_config *cfg, const char *path, hsc_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return hsc_err_set(err, HSC_ECONFIG, "%s: cannot open config file: %s", path,
                           strerror(errno));
    struct ini_ctx c = {.cfg = cfg, .err = err, .rc = 0, .path = path};
    int r = ini_parse_file(f, on_ini_line, &c);
    fclose(f);
    if (c.rc) {
        hsc_err_prefix(err, "%s:%d: ", path, r);
        return c.rc;
    }
    if (r != 0)
        return hsc_err_set(err, HSC_ECONFIG, "%s:%d: not a 'key = value' line", path, r);
    return HSC_OK;
}

/* "pg.query_timeout_ms" -> "HSC_PG_QUERY_TIMEOUT_MS" */
static void env_name(const char *key, char *out, size_t cap)
{
    size_t j = (size_t)snprintf(out, cap, "HSC_");
    for (const char *p = key; *p && j + 1 < cap; p++)
        out[j++] = (*p == '.') ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

int hsc_config_apply_env(hsc_config *cfg, char *const *env, hsc_err *err)
{
    char name[256];
    for (size_t i = 0; i < NKEYS; i++) {
        env_name(KEYS[i].key, name, sizeof(name));
        size_t n = strlen(name);
        for (char *const *e = env; e && *e; e++) {
            if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
                int rc = hsc_config_set(cfg, KEYS[i].key, *e + n + 1, err);
                if (rc) {
                    hsc_err_prefix(err, "environment %s: ", name);
                    return rc;
                }
            }
        }
    }
    /* HSC_RDKAFKA_SOCKET_KEEPALIVE_ENABLE=true -> rdkafka: socket.keepalive.enable */
    static const char *pfx = "HSC_RDKAFKA_";
    for (char *const *e = env; e && *e; e++) {
        if (strncmp(*e, pfx, strlen(pfx)) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char prop[256];
        size_t j = 0;
        for (const char *p = *e + strlen(pfx); p < eq && j + 1 < sizeof(prop); p++)
            prop[j++] = (*p == '_') ? '.' : (char)tolower((unsigned char)*p);
        prop[j] = '\0';
        int rc = add_prop(cfg, "rdkafka", prop, eq + 1, err);
        if (rc) {
            hsc_err_prefix(err, "environment %.*s: ", (int)(eq - *e), *e);
            return rc;
        }
    }
    return HSC_OK;
}

const char *hsc_config_str(const hsc_config *cfg, const char *dotted_key)
{
    size_t idx;
    if (!find_key(dotted_key, &idx))
        return "";
    return cfg->values[idx];
}

long long hsc_config_int(const hsc_config *cfg, const char *dotted_key)
{
    long long v = 0;
    hsc_parse_ll(hsc_config_str(cfg, dotted_key), &v);
    return v;
}

double hsc_config_double(const hsc_config *cfg, const char *dotted_key)
{
    return strtod(hsc_config_str(cfg, dotted_key), NULL);
}

bool hsc_config_bool(const hsc_config *cfg, const char *dotted_key)
{
    const char *v = hsc_config_str(cfg, dotted_key);
    return !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes");
}

int hsc_config_each_passthrough(const hsc_config *cfg, const char *section, hsc_config_prop_fn fn,
                                void *arg, hsc_err *err)
{
    for (size_t i = 0; i < cfg->nprops; i++) {
        if (strcmp(cfg->props[i].section, section) != 0)
            continue;
        int rc = fn(arg, cfg->props[i].name, cfg->props[i].value, err);
        if (rc) {
            hsc_err_prefix(err, "%s.%s: ", section, cfg->props[i].name);
            return rc;
        }
    }
    return HSC_OK;
}

const char *hsc_config_topic(const hsc_config *cfg, const char *topic_key)
{
    size_t idx;
    if (!find_key(topic_key, &idx))
        return "";
    char *buf = ((hsc_config *)cfg)->topic_buf[idx];
    snprintf(buf, sizeof(cfg->topic_buf[idx]), "%s%s", hsc_config_str(cfg, "topics.prefix"),
             cfg->values[idx]);
    return buf;
}

void hsc_config_dump(const hsc_config *cfg, void *file)
{
    FILE *f = file;
    const char *cur = "";
    size_t curlen = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *dot = strchr(KEYS[i].key, '.');
        size_t seclen = (size_t)(dot - KEYS[i].key);
        if (seclen != curlen || strncmp(cur, KEYS[i].key, seclen) != 0) {
            fprintf(f, "%s[%.*s]\n", i ? "\n" : "", (int)seclen, KEYS[i].key);
            cur = KEYS[i].key;
            curlen = seclen;
        }
        if (KEYS[i].type == T_SECRET || hsc_config_key_sensitive(KEYS[i].key)) {
            char masked[1024];
            mask_value(KEYS[i].key, cfg->values[i], masked, sizeof(masked));
            fprintf(f, "%s = %s\n", dot + 1, masked);
        } else {
            fprintf(f, "%s = %s\n", dot + 1, cfg->values[i]);
        }
    }
    for (size_t i = 0; i < cfg->nprops; i++) {
        const struct prop *p = &cfg->props[i];
        char masked[1024];
        if (hsc_config_key_sensitive(p->name))
            mask_value(p->name, p->value, masked, sizeof(masked));
        fprintf(f, "\n[%s]\n%s = %s\n", p->section, p->name,
                hsc_config_key_sensitive(p->name) ? masked : p->value);
    }
}
