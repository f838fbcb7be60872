/*
 * Configuration: one INI file, then HSC_* environment overrides, then --set
 * options. Every known key is declared once in config.c with its type, range
 * and default, so a bad value is reported with the key that holds it. The
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

/* Reads an INI file into cfg; an unknown key or a bad value names the key and line. */
int hsc_config_load_file(hsc_config *cfg, const char *path, hsc_err *err);

/* Applies HSC_SECTION_KEY overrides (and HSC_RDKAFKA_* pass-through) from env. */
int hsc_config_apply_env(hsc_config *cfg, char *const *env, hsc_err *err);

/* Sets "section.key" to value after validating it. */
int hsc_config_set(hsc_config *cfg, const char *dotted_key, const char *value, hsc_err *err);

/* Returns the string value of "section.key" ("" when unset). */
const char *hsc_config_str(const hsc_config *cfg, const char *dotted_key);

/* Returns the integer value of "section.key" (validated at set time). */
long long hsc_config_int(const hsc_config *cfg, const char *dotted_key);

/* Returns the boolean value of "section.key". */
bool hsc_config_bool(const hsc_config *cfg, const char *dotted_key);

/* Returns the double value of "section.key". */
double hsc_config_double(const hsc_config *cfg, const char *dotted_key);

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

/* Writes every known key with its value (secrets masked) to f, as INI. */
void hsc_config_dump(const hsc_config *cfg, void *file);

#endif
