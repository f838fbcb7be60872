/*
 * The configuration's values and their loaders. Keys are declared in
 * config_keys.def; this file turns those rows into a table, parses each value
 * once when it is set (INI, environment and --set all go through set_value),
 * remembers where it came from, and prints it with secrets masked.
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

#define KEY_STR(k, d, h) {k, HSC_CONFIG_STR, d, 0, 0, NULL, h},
#define KEY_SECRET(k, d, h) {k, HSC_CONFIG_SECRET, d, 0, 0, NULL, h},
#define KEY_INT(k, d, lo, hi, h) {k, HSC_CONFIG_INT, d, lo, hi, NULL, h},
#define KEY_DOUBLE(k, d, lo, hi, h) {k, HSC_CONFIG_DOUBLE, d, lo, hi, NULL, h},
#define KEY_ENUM(k, d, c, h) {k, HSC_CONFIG_ENUM, d, 0, 0, c, h},
#define KEY_BOOL(k, d, h) {k, HSC_CONFIG_BOOL, d, 0, 0, NULL, h},
/* Every key hsc knows, in declaration order (the docs list them the same way). */
static const struct hsc_config_key KEYS[] = {
#include "config_keys.def"
};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

/* A key's value: its text (for hsc_config_str and dumps) and the typed value parsed from it. */
struct value {
    const char *text; /* the declared default, or owned */
    char *owned;      /* NULL while at the default */
    char *origin;     /* where the value came from; NULL: the default */
    long long i;      /* HSC_CONFIG_INT */
    double d;         /* HSC_CONFIG_DOUBLE */
    bool b;           /* HSC_CONFIG_BOOL */
};

/* One librdkafka property, passed through as text. */
struct prop {
    char *section;
    char *name;
    char *value;
    char *origin;
};

struct hsc_config {
    struct value values[NKEYS];
    struct prop *props;
    size_t nprops, capprops;
    char topic_buf[NKEYS][256];
};

const struct hsc_config_key *hsc_config_key_at(size_t i)
{
    return i < NKEYS ? &KEYS[i] : NULL;
}

static const struct hsc_config_key *find_key(const char *key, size_t *idx)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(KEYS[i].name, key) == 0) {
            if (idx)
                *idx = i;
            return &KEYS[i];
        }
    }
    return NULL;
}

const struct hsc_config_key *hsc_config_key_find(const char *dotted_key)
{
    return find_key(dotted_key, NULL);
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

/* True if value is among the '|'-separated choices. */
static bool is_choice(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* Checks value against d's type and range and stores the typed value in *v. */
static int parse_value(const struct hsc_config_key *d, const char *value, struct value *v,
                       hsc_err *err)
{
    switch (d->type) {
    case HSC_CONFIG_STR:
    case HSC_CONFIG_SECRET:
        return HSC_OK;
    case HSC_CONFIG_INT:
        if (hsc_parse_ll(value, &v->i) != 0)
            return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not an integer", d->name, value);
        if (v->i < d->min || v->i > d->max)
            return hsc_err_set(err, HSC_ECONFIG, "%s: %lld is outside %lld..%lld", d->name, v->i,
                               d->min, d->max);
        return HSC_OK;
    case HSC_CONFIG_DOUBLE: {
        char *end;
        errno = 0;
        v->d = strtod(value, &end);
        if (errno || end == value || *end)
            return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not a number", d->name, value);
        if (v->d < (double)d->min || v->d > (double)d->max)
            return hsc_err_set(err, HSC_ECONFIG, "%s: %g is outside %lld..%lld", d->name, v->d,
                               d->min, d->max);
        return HSC_OK;
    }
    case HSC_CONFIG_BOOL:
        v->b = !strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes");
        if (v->b || !strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            return HSC_OK;
        return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not a boolean (true or false)", d->name,
                           value);
    case HSC_CONFIG_ENUM:
        if (is_choice(d->choices, value))
            return HSC_OK;
        return hsc_err_set(err, HSC_ECONFIG, "%s: '%s' is not one of %s", d->name, value,
                           d->choices);
    }
    return HSC_OK;
}

/* Copies value and origin into fresh strings: both or neither. */
static int dup_pair(const char *value, const char *origin, char **v, char **o, hsc_err *err)
{
    *v = strdup(value);
    *o = strdup(origin);
    if (*v && *o)
        return HSC_OK;
    free(*v);
    free(*o);
    return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
}

static int add_prop(hsc_config *cfg, const char *section, const char *name, const char *value,
                    const char *origin, hsc_err *err)
{
    const char *why = hsc_config_rdkafka_refused(name);
    if (why)
        return hsc_err_set(err, HSC_ECONFIG, "%s.%s: refused: this librdkafka property %s", section,
                           name, why);
    struct prop *p = NULL;
    for (size_t i = 0; i < cfg->nprops && !p; i++)
        if (!strcmp(cfg->props[i].section, section) && !strcmp(cfg->props[i].name, name))
            p = &cfg->props[i];
    char *v, *o;
    if (dup_pair(value, origin, &v, &o, err))
        return HSC_ENOMEM;
    if (!p) {
        struct prop *np = hsc_grow(cfg->props, cfg->nprops, &cfg->capprops, sizeof(*np), 8);
        if (!np) {
            free(v);
            free(o);
            return hsc_err_set(err, HSC_ENOMEM, "config: out of memory");
        }
        cfg->props = np;
        p = &cfg->props[cfg->nprops];
        if (dup_pair(section, name, &p->section, &p->name, err)) {
            free(v);
            free(o);
            return HSC_ENOMEM;
        }
        p->value = p->origin = NULL;
        cfg->nprops++;
    }
    free(p->value);
    free(p->origin);
    p->value = v;
    p->origin = o;
    return HSC_OK;
}

hsc_config *hsc_config_new(void)
{
    hsc_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        hsc_err err = {0};
        cfg->values[i].text = KEYS[i].def;
        /* A default outside its own declaration is a mistake in config_keys.def. */
        if (parse_value(&KEYS[i], KEYS[i].def, &cfg->values[i], &err)) {
            fprintf(stderr, "config_keys.def: bad default: %s\n", err.msg);
            abort();
        }
    }
    return cfg;
}

void hsc_config_free(hsc_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        free(cfg->values[i].owned);
        free(cfg->values[i].origin);
    }
    for (size_t i = 0; i < cfg->nprops; i++) {
        free(cfg->props[i].section);
        free(cfg->props[i].name);
        free(cfg->props[i].value);
        free(cfg->props[i].origin);
    }
    free(cfg->props);
    free(cfg);
}

/* Sets a declared key or a pass-through property; errors name the key, not the origin. */
static int set_value(hsc_config *cfg, const char *dotted_key, const char *value, const char *origin,
                     hsc_err *err)
{
    /* "rdkafka.session.timeout.ms" has dots in the property name: match the section prefix. */
    static const char *const sections[] = {"rdkafka.consumer.", "rdkafka.producer.", "rdkafka."};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(sections[i]);
        if (strncmp(dotted_key, sections[i], n) == 0 && dotted_key[n]) {
            char sec[32];
            snprintf(sec, sizeof(sec), "%.*s", (int)(n - 1), sections[i]);
            return add_prop(cfg, sec, dotted_key + n, value, origin, err);
        }
    }
    size_t idx;
    const struct hsc_config_key *d = find_key(dotted_key, &idx);
    if (!d)
        return hsc_err_set(err, HSC_ECONFIG, "%s: unknown key", dotted_key);
    struct value nv = {0};
    int rc = parse_value(d, value, &nv, err);
    if (rc)
        return rc;
    if (dup_pair(value, origin, &nv.owned, &nv.origin, err))
        return HSC_ENOMEM;
    nv.text = nv.owned;
    free(cfg->values[idx].owned);
    free(cfg->values[idx].origin);
    cfg->values[idx] = nv;
    return HSC_OK;
}

int hsc_config_set_from(hsc_config *cfg, const char *dotted_key, const char *value,
                        const char *origin, hsc_err *err)
{
    int rc = set_value(cfg, dotted_key, value, origin, err);
    if (rc)
        hsc_err_prefix(err, "%s: ", origin);
    return rc;
}

int hsc_config_set(hsc_config *cfg, const char *dotted_key, const char *value, hsc_err *err)
{
    int rc = set_value(cfg, dotted_key, value, "--set", err);
    if (rc)
        hsc_err_prefix(err, "--set ");
    return rc;
}

struct ini_ctx {
    hsc_config *cfg;
    hsc_err *err;
    int rc;
    const char *path;
    FILE *f;
    int line; /* of the text the handler is given: one reader call per line, as inih counts */
};

/* inih's reader: fgets, counting lines so the handler knows which one it is given. */
static char *read_line(char *str, int num, void *stream)
{
    struct ini_ctx *c = stream;
    c->line++;
    return fgets(str, num, c->f);
}

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *c = user;
    if (c->rc)
        return 0;
    char key[256], origin[4200];
    if (!section || !*section) {
        c->rc = hsc_err_set(c->err, HSC_ECONFIG, "key '%s' is outside any [section]", name);
        return 0;
    }
    snprintf(origin, sizeof(origin), "%s:%d", c->path, c->line);
    if (is_passthrough_section(section))
        c->rc = add_prop(c->cfg, section, name, value, origin, c->err);
    else if (snprintf(key, sizeof(key), "%s.%s", section, name) >= (int)sizeof(key))
        c->rc = hsc_err_set(c->err, HSC_ECONFIG, "%.64s...: unknown key", key);
    else
        c->rc = set_value(c->cfg, key, value, origin, c->err);
    return c->rc == 0;
}

int hsc_config_load_file(hsc_config *cfg, const char *path, hsc_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return hsc_err_set(err, HSC_ECONFIG, "%s: cannot open config file: %s", path,
                           strerror(errno));
    struct ini_ctx c = {.cfg = cfg, .err = err, .rc = 0, .path = path, .f = f, .line = 0};
    int r = ini_parse_stream(read_line, &c, on_ini_line, &c);
    fclose(f);
    if (c.rc) {
        hsc_err_prefix(err, "%s:%d: ", path, r);
        return c.rc;
    }
    if (r != 0)
        return hsc_err_set(err, HSC_ECONFIG, "%s:%d: not a 'key = value' line", path, r);
    return HSC_OK;
}

/*
 * The HSC_ variables that are not configuration keys, the one list of them:
 * the scripts, the tests and deploy/compose use these names, and a binary
 * they start inherits them, so they are let through. Any other HSC_ variable
 * that names no key is refused at start-up, as a misspelt key in the file is,
 * since ignoring it would run with the default the variable meant to replace.
 * HSC_RDKAFKA_* has its own rule (librdkafka properties).
 */
static const struct hsc_config_env_var OTHER_ENV[] = {
    {"HSC_CONFIG", "every binary: the INI file to read when there is no `--config`"},
    {"HSC_RUN", "deploy/local: where the local stack keeps its data and logs (and `stack.env`)"},
    {"HSC_BIN", "deploy/local's `stack.env`: the folder of the binaries built for the stack"},
    {"HSC_BUILD", "deploy/local: the build folder to build and run from"},
    {"HSC_ROOT", "deploy/local: the source tree"},
    {"HSC_WORKERS", "deploy/local: the workers it starts"},
    {"HSC_METRICS_BASE", "deploy/local: the first worker's metrics port"},
    {"HSC_REBUILD", "deploy/local/up, tests/run: 0 skips the build"},
    {"HSC_SKIP_INSTALL", "deploy/local/up, tests/run: 1 skips the package check"},
    {"HSC_DEMO_TITLES", "deploy/local/demo: titles in the sample"},
    {"HSC_DEMO_EVENTS", "deploy/local/demo: learning events in the sample"},
    {"HSC_TEST_ONLY", "tests/run: `unit` or `integration` only"},
    {"HSC_TEST_SKIP_VALGRIND", "tests/run: 1 skips the valgrind pass"},
    {"HSC_CHAOS_MINUTES", "tests/run: minutes of the chaos soak (0 skips it)"},
    {"HSC_FUZZ_SECONDS", "tests/fuzz/run, tests/run: seconds per fuzz target (0 skips them)"},
    {"HSC_FUZZ_BUILD", "tests/fuzz/run: the fuzz build folder"},
    {"HSC_FUZZ_JOBS", "tests/fuzz/run: build jobs"},
    {"HSC_PG_PASSWORD", "deploy/compose: the PostgreSQL password put into `HSC_PG_URL`"},
    {"HSC_DIMENSION", "deploy/compose: the vector dimension put into `HSC_MILVUS_DIMENSION`"},
};

#define NOTHER_ENV (sizeof(OTHER_ENV) / sizeof(OTHER_ENV[0]))

const struct hsc_config_env_var *hsc_config_env_var_at(size_t i)
{
    return i < NOTHER_ENV ? &OTHER_ENV[i] : NULL;
}

/* "pg.query_timeout_ms" -> "HSC_PG_QUERY_TIMEOUT_MS" */
static void env_name(const char *key, char *out, size_t cap)
{
    size_t j = (size_t)snprintf(out, cap, "HSC_");
    for (const char *p = key; *p && j + 1 < cap; p++)
        out[j++] = (*p == '.') ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

/* True if the n bytes at var are the environment name of a declared key. */
static bool names_key(const char *var, size_t n)
{
    char name[256];
    for (size_t i = 0; i < NKEYS; i++) {
        env_name(KEYS[i].name, name, sizeof(name));
        if (strlen(name) == n && !strncmp(var, name, n))
            return true;
    }
    return false;
}

/* Refuses an HSC_ variable that is no key, no HSC_RDKAFKA_ property and not in OTHER_ENV. */
static int check_env_names(char *const *env, hsc_err *err)
{
    for (char *const *e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "HSC_", 4) != 0 || !eq || !strncmp(*e, "HSC_RDKAFKA_", 12))
            continue;
        size_t n = (size_t)(eq - *e);
        bool other = false;
        for (size_t i = 0; i < NOTHER_ENV && !other; i++)
            other = strlen(OTHER_ENV[i].name) == n && !strncmp(*e, OTHER_ENV[i].name, n);
        if (!other && !names_key(*e, n))
            return hsc_err_set(err, HSC_ECONFIG, "environment %.*s: no such key", (int)n, *e);
    }
    return HSC_OK;
}

int hsc_config_apply_env(hsc_config *cfg, char *const *env, hsc_err *err)
{
    char name[256], origin[300];
    if (check_env_names(env, err))
        return err->code;
    for (size_t i = 0; i < NKEYS; i++) {
        env_name(KEYS[i].name, name, sizeof(name));
        size_t n = strlen(name);
        snprintf(origin, sizeof(origin), "env %s", name);
        for (char *const *e = env; e && *e; e++) {
            if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
                int rc = set_value(cfg, KEYS[i].name, *e + n + 1, origin, err);
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
        snprintf(origin, sizeof(origin), "env %.*s", (int)(eq - *e), *e);
        int rc = add_prop(cfg, "rdkafka", prop, eq + 1, origin, err);
        if (rc) {
            hsc_err_prefix(err, "environment %.*s: ", (int)(eq - *e), *e);
            return rc;
        }
    }
    return HSC_OK;
}

static const char *const TYPE_NAMES[] = {"string", "integer", "boolean",
                                         "enum",   "number",  "secret"};

/*
 * The value of key, which must be declared with one of the types in the
 * mask. Anything else is a typo or a wrong getter in the calling code: no
 * caller can recover from it, and returning "" or 0 would run the worker on a
 * setting nobody chose, so the key is printed and the process aborts (a test
 * or the first start finds it, with a core dump pointing at the caller).
 */
static const struct value *typed(const hsc_config *cfg, const char *key, unsigned types,
                                 const char *getter)
{
    size_t idx;
    const struct hsc_config_key *d = find_key(key, &idx);
    if (d && (types & (1u << d->type)))
        return &cfg->values[idx];
    if (d)
        fprintf(stderr, "%s(\"%s\"): the key is declared as %s (a programming error)\n", getter,
                key, TYPE_NAMES[d->type]);
    else
        fprintf(stderr, "%s(\"%s\"): no such key in config_keys.def (a programming error)\n",
                getter, key);
    abort();
}

#define STRS ((1u << HSC_CONFIG_STR) | (1u << HSC_CONFIG_SECRET) | (1u << HSC_CONFIG_ENUM))

const char *hsc_config_str(const hsc_config *cfg, const char *dotted_key)
{
    return typed(cfg, dotted_key, STRS, __func__)->text;
}

long long hsc_config_int(const hsc_config *cfg, const char *dotted_key)
{
    return typed(cfg, dotted_key, 1u << HSC_CONFIG_INT, __func__)->i;
}

double hsc_config_double(const hsc_config *cfg, const char *dotted_key)
{
    return typed(cfg, dotted_key, 1u << HSC_CONFIG_DOUBLE, __func__)->d;
}

bool hsc_config_bool(const hsc_config *cfg, const char *dotted_key)
{
    return typed(cfg, dotted_key, 1u << HSC_CONFIG_BOOL, __func__)->b;
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
    const struct value *v = typed(cfg, topic_key, 1u << HSC_CONFIG_STR, __func__);
    size_t idx = (size_t)(v - cfg->values);
    char *buf = ((hsc_config *)cfg)->topic_buf[idx];
    snprintf(buf, sizeof(cfg->topic_buf[idx]), "%s%s", hsc_config_str(cfg, "topics.prefix"),
             v->text);
    return buf;
}

/*
 * One printed line: section, name, the value as shown (masked), its origin
 * (NULL: default), and where it stands: 0 inside a section, 1 first of a
 * section, 2 first of all.
 */
typedef void (*shown_fn)(FILE *f, const char *section, size_t seclen, const char *name,
                         const char *value, const char *origin, int first);

/* Calls fn for every declared key, then every pass-through property, with secrets masked. */
static void each_shown(const hsc_config *cfg, FILE *f, shown_fn fn)
{
    char masked[1024];
    const char *cur = "";
    size_t curlen = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *key = KEYS[i].name, *dot = strchr(key, '.');
        size_t seclen = (size_t)(dot - key);
        int first = i == 0 ? 2 : seclen != curlen || strncmp(cur, key, seclen) != 0;
        cur = key;
        curlen = seclen;
        const char *v = cfg->values[i].text;
        if (KEYS[i].type == HSC_CONFIG_SECRET || hsc_config_key_sensitive(key)) {
            mask_value(key, v, masked, sizeof(masked));
            v = masked;
        }
        fn(f, key, seclen, dot + 1, v, cfg->values[i].origin, first);
    }
    for (size_t i = 0; i < cfg->nprops; i++) {
        const struct prop *p = &cfg->props[i];
        const char *v = p->value;
        if (hsc_config_key_sensitive(p->name)) {
            mask_value(p->name, p->value, masked, sizeof(masked));
            v = masked;
        }
        fn(f, p->section, strlen(p->section), p->name, v, p->origin, 1);
    }
}

static void ini_line(FILE *f, const char *section, size_t seclen, const char *name,
                     const char *value, const char *origin, int first)
{
    if (first)
        fprintf(f, "%s[%.*s]\n", first == 2 ? "" : "\n", (int)seclen, section);
    if (origin)
        fprintf(f, "; from %s\n", origin);
    fprintf(f, "%s = %s\n", name, value);
}

static void origin_line(FILE *f, const char *section, size_t seclen, const char *name,
                        const char *value, const char *origin, int first)
{
    (void)first;
    int n = fprintf(f, "%.*s.%s = %s", (int)seclen, section, name, value);
    fprintf(f, "%*s  # %s\n", n < 56 ? 56 - n : 0, "", origin ? origin : "default");
}

void hsc_config_dump(const hsc_config *cfg, void *file)
{
    each_shown(cfg, file, ini_line);
}

void hsc_config_dump_origins(const hsc_config *cfg, void *file)
{
    each_shown(cfg, file, origin_line);
}
