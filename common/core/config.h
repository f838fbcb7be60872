/*
 * Configuration: one INI file, then HSC_* environment overrides, then --set
 * options. Every known key is declared once in config_keys.def with its type,
 * default, range and help, so a bad value is reported with the key (and the
 * file and line, or the variable, or --set) that holds it, and the docs are
 * generated from the same rows. Each value is parsed once, when it is set;
 * a getter asked for an undeclared key, or with the wrong type, aborts. The
 * sections [rdkafka] and [rdkafka.consumer]/[rdkafka.producer] are passed to
 * librdkafka verbatim (librdkafka validates them, and we name the key),
 * except the properties that load code or run a command, which are refused
 * wherever they come from (file, HSC_RDKAFKA_* variable, --set). Values of
 * keys whose names say they hold secrets are never printed.
 */
#ifndef HSC_CONFIG_H
#define HSC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "hsc/error.h"

/* A loaded configuration: typed known keys plus librdkafka pass-through. */
typedef struct hsc_config hsc_config;

/* Returns a configuration holding every default; free with hsc_config_free. */
hsc_config *hsc_config_new(void);

/* Frees cfg and every string it holds. */
void hsc_config_free(hsc_config *cfg);

/* Reads an INI file into cfg; an unknown key or a bad value names the file, line and key. */
int hsc_config_load_file(hsc_config *cfg, const char *path, hsc_err *err);

/*
 * Applies HSC_SECTION_KEY overrides (and HSC_RDKAFKA_* pass-through) from env.
 * Any other HSC_ variable that is not one of hsc_config_env_var_at's is an
 * error ("environment HSC_PG_URLL: no such key"), and nothing is applied.
 */
int hsc_config_apply_env(hsc_config *cfg, char *const *env, hsc_err *err);

/* An HSC_ environment variable that is not configuration, and who uses it. */
struct hsc_config_env_var {
    const char *name; /* "HSC_RUN" */
    const char *used; /* one line of Markdown: who sets or reads it, and for what */
};

/* The i-th HSC_ variable that is not a key (allowed in the environment), or NULL past the last. */
const struct hsc_config_env_var *hsc_config_env_var_at(size_t i);

/* Sets "section.key" to value after validating it, as a --set option (the error says "--set"). */
int hsc_config_set(hsc_config *cfg, const char *dotted_key, const char *value, hsc_err *err);

/*
 * Sets "section.key" to value, recording origin ("default: the program name")
 * as where it came from for hsc_config_dump; an error starts with "origin: ".
 */
int hsc_config_set_from(hsc_config *cfg, const char *dotted_key, const char *value,
                        const char *origin, hsc_err *err);

/*
 * The getters below return the value parsed when it was set. Asked for a key
 * config_keys.def does not declare, or for a key of another type, they print
 * the key and abort(): that is a typo in the calling code, not a condition a
 * caller could handle, and a silent "" or 0 would run with a wrong setting.
 * Names read from data (topics.tsv) are checked with hsc_config_key_find first.
 */

/* Returns the value of a string, secret or enum key. */
const char *hsc_config_str(const hsc_config *cfg, const char *dotted_key);

/* Returns the value of an integer key (within its declared range). */
long long hsc_config_int(const hsc_config *cfg, const char *dotted_key);

/* Returns the value of a boolean key. */
bool hsc_config_bool(const hsc_config *cfg, const char *dotted_key);

/* Returns the value of a number key (within its declared range). */
double hsc_config_double(const hsc_config *cfg, const char *dotted_key);

/* The type of a declared key: how its text is checked and which getter reads it. */
enum hsc_config_type {
    HSC_CONFIG_STR,    /* any text; hsc_config_str */
    HSC_CONFIG_INT,    /* an integer within min..max; hsc_config_int */
    HSC_CONFIG_BOOL,   /* true/false, 1/0, yes/no; hsc_config_bool */
    HSC_CONFIG_ENUM,   /* one of choices; hsc_config_str */
    HSC_CONFIG_DOUBLE, /* a number within min..max; hsc_config_double */
    HSC_CONFIG_SECRET, /* text never printed; hsc_config_str */
};

/* One declared key, as config_keys.def declares it (for the docs and hsc config). */
struct hsc_config_key {
    const char *name; /* "section.key" */
    enum hsc_config_type type;
    const char *def;     /* the default, as text */
    long long min, max;  /* HSC_CONFIG_INT and HSC_CONFIG_DOUBLE: the accepted range */
    const char *choices; /* HSC_CONFIG_ENUM: "a|b|c"; else NULL */
    const char *help;    /* one line of Markdown */
};

/* The i-th declared key in declaration order, or NULL past the last. */
const struct hsc_config_key *hsc_config_key_at(size_t i);

/* The declared key named dotted_key, or NULL if there is none. */
const struct hsc_config_key *hsc_config_key_find(const char *dotted_key);

/* Callback for hsc_config_each_passthrough: one librdkafka property. */
typedef int (*hsc_config_prop_fn)(void *arg, const char *name, const char *value, hsc_err *err);

/* Calls fn for each pass-through property of section ("rdkafka", "rdkafka.consumer"...). */
int hsc_config_each_passthrough(const hsc_config *cfg, const char *section, hsc_config_prop_fn fn,
                                void *arg, hsc_err *err);

/* Returns "prefix + name" for a topic name key ("topics.content_events"); static buffer per key. */
const char *hsc_config_topic(const hsc_config *cfg, const char *topic_key);

/*
 * Why the librdkafka property name may not be configured (it loads code or
 * runs a command: plugin.library.paths, interceptors, sasl.kerberos.kinit.cmd,
 * ssl.engine.*, ssl.providers), as a static phrase; NULL if it may.
 */
const char *hsc_config_rdkafka_refused(const char *name);

/*
 * True if the key or property name holds a secret by its name (password,
 * secret, token, api_key, credential, private, auth_key, *.pem, ssl.key.*,
 * keystore.*, sasl.jaas, sasl.oauthbearer.config): its value is never printed.
 */
bool hsc_config_key_sensitive(const char *name);

/*
 * Writes every known key with its value (secrets masked) to f, as INI; a
 * value that is not the default has a comment line above it saying where it
 * came from ("; from /etc/hsc.ini:12", "; from env HSC_PG_URL", "; from --set").
 */
void hsc_config_dump(const hsc_config *cfg, void *file);

/*
 * Writes one line per key and pass-through property, "section.key = value",
 * secrets masked, followed by where the value came from: default, FILE:LINE,
 * env VAR or --set (what `hsc config` prints).
 */
void hsc_config_dump_origins(const hsc_config *cfg, void *file);

#endif
