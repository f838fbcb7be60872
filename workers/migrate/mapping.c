/*
 * The layout of the legacy stores, from config: the migrate.* keys checked
 * (every name a plain identifier, so it can be quoted into a statement) and
 * loaded into a mapping, the rating names, and the names of problem kinds.
 * No I/O here, so the unit tests check every rule without a server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "migrate.h"
#include "normalize.h"
#include "util.h"

static const char *const PROBLEM_NAMES[MPK_KINDS] = {
    "none", "bad_id", "duplicate_id", "no_embedding", "wrong_dimension", "invalid", "policy",
};

static const char *const PROP_KEYS[MP_COUNT] = {
    "migrate.property_title",    "migrate.property_description", "migrate.property_kind",
    "migrate.property_year",     "migrate.property_language",    "migrate.property_maturity",
    "migrate.property_duration", "migrate.property_version",     "migrate.property_embedding",
};

static const char *const REL_KEYS[MR_COUNT] = {
    "migrate.rel_genre",
    "migrate.rel_theme",
    "migrate.rel_mood",
    "migrate.rel_related",
};

const char *migrate_problem_name(enum migrate_problem_kind k)
{
    return (unsigned)k < MPK_KINDS ? PROBLEM_NAMES[k] : "unknown";
}

int migrate_ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64 || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

int migrate_parse_ratings(const char *spec, struct migrate_mapping *mp, hsc_err *err)
{
    mp->nratings = 0;
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len >= sizeof(item))
            return hsc_err_set(err, HSC_ECONFIG, "migrate.maturity_ratings: '%.*s' is too long",
                               (int)len, p);
        memcpy(item, p, len);
        item[len] = '\0';
        hsc_trim(item);
        char *eq = strchr(item, '=');
        long long age;
        if (*item) {
            if (!eq || eq == item || hsc_parse_ll(eq + 1, &age) || age < 0 || age > 21)
                return hsc_err_set(err, HSC_ECONFIG,
                                   "migrate.maturity_ratings: '%s' is not NAME=AGE with AGE 0..21",
                                   item);
            if (mp->nratings == sizeof(mp->ratings) / sizeof(mp->ratings[0]))
                return hsc_err_set(err, HSC_ECONFIG, "migrate.maturity_ratings: more than %zu",
                                   mp->nratings);
            *eq = '\0';
            hsc_trim(item);
            if (strlen(item) >= sizeof(mp->ratings[0].name))
                return hsc_err_set(err, HSC_ECONFIG, "migrate.maturity_ratings: '%s' is too long",
                                   item);
            strcpy(mp->ratings[mp->nratings].name, item);
            mp->ratings[mp->nratings++].age = (int)age;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int migrate_rating_age(const struct migrate_mapping *mp, const char *name)
{
    for (size_t i = 0; i < mp->nratings; i++)
        if (!strcasecmp(mp->ratings[i].name, name))
            return mp->ratings[i].age;
    return -1;
}

/* Checks one configured name; empty is allowed only where the thing is optional. */
static int check_ident(const hsc_config *cfg, const char *key, int optional, const char **out,
                       hsc_err *err)
{
    const char *v = hsc_config_str(cfg, key);
    if (optional && (!v || !*v)) {
        *out = "";
        return 0;
    }
    if (!migrate_ident_ok(v))
        return hsc_err_set(err, HSC_ECONFIG,
                           "%s: '%.64s' is not a plain name (letters, digits, _; not starting "
                           "with a digit)",
                           key, v ? v : "");
    *out = v;
    return 0;
}

int migrate_mapping_load(const hsc_config *cfg, struct migrate_mapping *mp, hsc_err *err)
{
    memset(mp, 0, sizeof(*mp));
    int rc;
    if ((rc = check_ident(cfg, "migrate.label", 0, &mp->label, err)) ||
        (rc = check_ident(cfg, "migrate.property_id", 0, &mp->id_prop, err)) ||
        (rc = check_ident(cfg, "migrate.tag_name_property", 0, &mp->tag_name, err)))
        return rc;
    if (!strcmp(mp->label, "Content"))
        return hsc_err_set(err, HSC_ECONFIG,
                           "migrate.label: 'Content' is hsc's own label; the legacy titles must "
                           "carry another");
    for (int i = 0; i < MP_COUNT; i++)
        if ((rc = check_ident(cfg, PROP_KEYS[i], i != MP_TITLE && i != MP_EMBEDDING, &mp->prop[i],
                              err)))
            return rc;
    for (int i = 0; i < MR_COUNT; i++)
        if ((rc = check_ident(cfg, REL_KEYS[i], 1, &mp->rel[i], err)))
            return rc;
    mp->id_integer = !strcmp(hsc_config_str(cfg, "migrate.id_type"), "integer");
    mp->dim = (int)hsc_config_int(cfg, "milvus.dimension");
    mp->default_version = hsc_config_int(cfg, "migrate.default_version");
    if ((rc = migrate_parse_ratings(hsc_config_str(cfg, "migrate.maturity_ratings"), mp, err)))
        return rc;
    const char *table = hsc_config_str(cfg, "migrate.policy_table");
    mp->policy_table = "";
    if (table && *table) {
        /* schema.table is fine: each part must be a plain name */
        const char *dot = strchr(table, '.');
        char part[80];
        int ok = strlen(table) < sizeof(part);
        if (ok && dot) {
            snprintf(part, sizeof(part), "%.*s", (int)(dot - table), table);
            ok = migrate_ident_ok(part) && migrate_ident_ok(dot + 1);
        } else if (ok) {
            ok = migrate_ident_ok(table);
        }
        if (!ok)
            return hsc_err_set(err, HSC_ECONFIG,
                               "migrate.policy_table: '%.64s' is not a plain [schema.]table name",
                               table);
        mp->policy_table = table;
        if ((rc = check_ident(cfg, "migrate.policy_user_column", 0, &mp->policy_user, err)) ||
            (rc = check_ident(cfg, "migrate.policy_excluded_column", 1, &mp->policy_excluded,
                              err)) ||
            (rc = check_ident(cfg, "migrate.policy_maturity_column", 1, &mp->policy_maturity,
                              err)) ||
            (rc = check_ident(cfg, "migrate.policy_languages_column", 1, &mp->policy_languages,
                              err)))
            return rc;
    }
    return 0;
}
