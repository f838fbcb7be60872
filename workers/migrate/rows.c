/*
 * Legacy rows into hsc's shapes: a page row of the legacy graph into a
 * ContentEvent validated as the pipeline would validate it, a legacy policy
 * row into a user policy, or either into a named problem. No I/O here.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "migrate.h"
#include "normalize.h"
#include "util.h"

/* What each property is called in messages (the hsc field it becomes). */
static const char *const PROP_FIELDS[MP_COUNT] = {
    "title",    "description", "kind",    "year",      "language",
    "maturity", "duration_s",  "version", "embedding",
};

int migrate_row_id(const json_t *row, char *out, size_t cap)
{
    const json_t *id = json_array_get(row, 0);
    if (json_is_string(id))
        snprintf(out, cap, "%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(out, cap, "%lld", (long long)json_integer_value(id));
    else {
        if (cap)
            *out = '\0';
        return -1;
    }
    return 0;
}

static int problem(struct migrate_problem *pb, enum migrate_problem_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int problem(struct migrate_problem *pb, enum migrate_problem_kind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pb->detail, sizeof(pb->detail), fmt, ap);
    va_end(ap);
    pb->kind = k;
    return k;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a map";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A string property into *out (NULL stays NULL). */
static int get_str(const struct migrate_mapping *mp, int i, const json_t *v, char **out,
                   struct migrate_problem *pb)
{
    if (json_is_null(v) || !v)
        return 0;
    if (!json_is_string(v))
        return problem(pb, MPK_INVALID, "%s (property %s): expected a string, got %s",
                       PROP_FIELDS[i], mp->prop[i], type_name(v));
    if (!(*out = strdup(json_string_value(v))))
        return problem(pb, MPK_INVALID, "out of memory");
    return 0;
}

/* An integer property; a float with no fraction counts (drivers write them). */
static int get_int(const struct migrate_mapping *mp, int i, const json_t *v, long long *out,
                   int *present, struct migrate_problem *pb)
{
    *present = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        *out = (long long)json_real_value(v);
    } else if (i == MP_MATURITY && json_is_string(v)) {
        int age = migrate_rating_age(mp, json_string_value(v));
        if (age < 0)
            return problem(pb, MPK_INVALID,
                           "maturity (property %s): rating '%.32s' is not in "
                           "migrate.maturity_ratings",
                           mp->prop[i], json_string_value(v));
        *out = age;
    } else {
        return problem(pb, MPK_INVALID, "%s (property %s): expected an integer, got %s",
                       PROP_FIELDS[i], mp->prop[i], type_name(v));
    }
    *present = 1;
    return 0;
}

/* A list of names (tags, related ids): strings, or integers for integer ids. */
static int get_list(const char *field, const json_t *v, hsc_strlist *out,
                    struct migrate_problem *pb)
{
    size_t i;
    const json_t *x;
    json_array_foreach (v, i, x) {
        char num[32];
        const char *s;
        if (json_is_null(x))
            continue;
        if (json_is_string(x))
            s = json_string_value(x);
        else if (json_is_integer(x))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(x)), s = num;
        else
            return problem(pb, MPK_INVALID, "%s[%zu]: expected a string, got %s", field, i,
                           type_name(x));
        if (hsc_strlist_push(out, s, strlen(s)))
            return problem(pb, MPK_INVALID, "out of memory");
    }
    return 0;
}

/* The embedding: a list of numbers (or that list as JSON text) of mp->dim finite values. */
static int get_embedding(const struct migrate_mapping *mp, const json_t *v, hsc_content_event *ev,
                         struct migrate_problem *pb)
{
    json_t *parsed = NULL;
    if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
        (json_is_string(v) && !*json_string_value(v)))
        return problem(pb, MPK_NO_EMBEDDING, "embedding (property %s): missing",
                       mp->prop[MP_EMBEDDING]);
    if (json_is_string(v)) {
        parsed = json_loads(json_string_value(v), 0, NULL);
        if (!json_is_array(parsed)) {
            json_decref(parsed);
            return problem(pb, MPK_INVALID,
                           "embedding (property %s): a string that is not a JSON list",
                           mp->prop[MP_EMBEDDING]);
        }
        v = parsed;
    }
    int rc = 0;
    size_t n = json_array_size(v);
    if (!json_is_array(v)) {
        rc = problem(pb, MPK_INVALID, "embedding (property %s): expected a list, got %s",
                     mp->prop[MP_EMBEDDING], type_name(v));
    } else if (n != (size_t)mp->dim) {
        rc = problem(pb, MPK_WRONG_DIMENSION, "embedding (property %s): %zu values, expected %d",
                     mp->prop[MP_EMBEDDING], n, mp->dim);
    } else if (!(ev->embedding = malloc(n * sizeof(float)))) {
        rc = problem(pb, MPK_INVALID, "out of memory");
    } else {
        ev->dim = n;
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *x = json_array_get(v, i);
            double d = json_number_value(x);
            int ok = json_is_number(x);
            if (json_is_string(x)) { /* the page query sends numbers as text */
                char *end;
                const char *t = json_string_value(x);
                d = strtod(t, &end);
                ok = *t && !*end;
            }
            if (!ok || !isfinite(d) || fabs(d) > FLT_MAX)
                rc = problem(pb, MPK_INVALID, "embedding[%zu]: %s is not a finite float32", i,
                             ok                  ? "the value"
                             : json_is_string(x) ? "text"
                                                 : type_name(x));
            ev->embedding[i] = (float)d;
        }
    }
    json_decref(parsed);
    return rc;
}

int migrate_row_to_event(const struct migrate_mapping *mp, const json_t *row, hsc_content_event *ev,
                         struct migrate_problem *pb)
{
    memset(ev, 0, sizeof(*ev));
    memset(pb, 0, sizeof(*pb));
    const json_t *eid = json_array_get(row, 2);
    snprintf(pb->eid, sizeof(pb->eid), "%s", json_is_string(eid) ? json_string_value(eid) : "");
    if (!json_is_array(row) || json_array_size(row) != MIGRATE_PAGE_COLUMNS)
        return problem(pb, MPK_INVALID, "row: expected %d columns", MIGRATE_PAGE_COLUMNS);
    char id[HSC_MAX_ID_LEN + 64];
    if (migrate_row_id(row, id, sizeof(id)))
        return problem(pb, MPK_BAD_ID, "id (property %s): missing", mp->id_prop);
    snprintf(pb->id, sizeof(pb->id), "%.*s", HSC_MAX_ID_LEN, id);
    if (strlen(id) > HSC_MAX_ID_LEN || !hsc_id_valid(id, strlen(id)))
        return problem(pb, MPK_BAD_ID,
                       "id (property %s): '%.64s' is not 1..%d of letters, digits, '.', '_', "
                       "':' and '-'",
                       mp->id_prop, id, HSC_MAX_ID_LEN);
    long long copies = json_integer_value(json_array_get(row, 1));
    if (copies > 1)
        return problem(pb, MPK_DUPLICATE_ID, "id (property %s): '%.64s' is on %lld nodes",
                       mp->id_prop, id, copies);
    const json_t *props[MP_COUNT];
    for (int i = 0; i < MP_COUNT; i++)
        props[i] = json_array_get(row, 3 + i);
    int rc = get_embedding(mp, props[MP_EMBEDDING], ev, pb);
    if (rc)
        goto fail;
    ev->v = HSC_SCHEMA_VERSION;
    ev->op = HSC_OP_UPSERT;
    if (!(ev->id = strdup(id))) {
        rc = problem(pb, MPK_INVALID, "out of memory");
        goto fail;
    }
    char *kind = NULL;
    if ((rc = get_str(mp, MP_TITLE, props[MP_TITLE], &ev->title, pb)) ||
        (rc = get_str(mp, MP_DESCRIPTION, props[MP_DESCRIPTION], &ev->description, pb)) ||
        (rc = get_str(mp, MP_KIND, props[MP_KIND], &kind, pb)) ||
        (rc = get_str(mp, MP_LANGUAGE, props[MP_LANGUAGE], &ev->language, pb)))
        goto fail;
    if (kind) {
        for (char *p = kind; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        ev->kind = kind;
    }
    if (ev->language)
        for (char *p = ev->language; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    long long n;
    int present;
    static const struct {
        int prop;
        unsigned bit;
    } INTS[] = {
        {MP_YEAR, HSC_HAS_YEAR}, {MP_MATURITY, HSC_HAS_MATURITY}, {MP_DURATION, HSC_HAS_DURATION}};
    for (size_t i = 0; i < sizeof(INTS) / sizeof(INTS[0]); i++) {
        if ((rc = get_int(mp, INTS[i].prop, props[INTS[i].prop], &n, &present, pb)))
            goto fail;
        if (!present)
            continue;
        if (INTS[i].prop != MP_DURATION && (n < INT32_MIN || n > INT32_MAX)) {
            rc = problem(pb, MPK_INVALID, "%s (property %s): %lld is out of range",
                         PROP_FIELDS[INTS[i].prop], mp->prop[INTS[i].prop], n);
            goto fail;
        }
        ev->has |= INTS[i].bit;
        if (INTS[i].prop == MP_YEAR)
            ev->year = (int32_t)n;
        else if (INTS[i].prop == MP_MATURITY)
            ev->maturity = (int32_t)n;
        else
            ev->duration_s = n;
    }
    if ((rc = get_int(mp, MP_VERSION, props[MP_VERSION], &n, &present, pb)))
        goto fail;
    ev->version = present ? n : mp->default_version;
    hsc_strlist *lists[MR_COUNT] = {&ev->genres, &ev->themes, &ev->moods, &ev->related};
    static const char *const LIST_FIELDS[MR_COUNT] = {"genres", "themes", "moods", "related"};
    for (int i = 0; i < MR_COUNT; i++)
        if ((rc = get_list(LIST_FIELDS[i], json_array_get(row, 3 + MP_COUNT + i), lists[i], pb)))
            goto fail;
    ev->ts = hsc_now_ms();
    ev->has |= HSC_HAS_TS;
    hsc_err err = {0};
    if (hsc_codec_validate_content(ev, &err)) {
        rc = problem(pb, MPK_INVALID, "%s", err.msg);
        goto fail;
    }
    return 0;
fail:
    hsc_content_event_clear(ev);
    return rc;
}

/*
 * Adds the tag s (malloc'd, or NULL when it could not be copied; freed here)
 * to out, normalized, unless it is empty. A lost copy is a problem, not a
 * silently shorter list.
 */
static int push_tag(hsc_strlist *out, char *s, struct migrate_problem *pb)
{
    if (!s)
        return problem(pb, MPK_POLICY, "out of memory");
    hsc_normalize_tag(s);
    int rc =
        *s && hsc_strlist_push(out, s, strlen(s)) ? problem(pb, MPK_POLICY, "out of memory") : 0;
    free(s);
    return rc;
}

/* A list column: a JSON list of strings, or one string of comma-separated names. */
static int policy_list(const char *col, const char *json_text, int lang, hsc_strlist *out,
                       struct migrate_problem *pb)
{
    if (!json_text)
        return 0;
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    int rc = 0;
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        while (*p && !rc) {
            size_t len = strcspn(p, ",;");
            rc = push_tag(out, hsc_strndup(p, len), pb);
            p += len;
            if (*p)
                p++;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach (v, i, x) {
            if (json_is_null(x))
                continue;
            if (!json_is_string(x)) {
                rc = problem(pb, MPK_POLICY, "%s[%zu]: expected a string, got %s", col, i,
                             type_name(x));
                break;
            }
            if ((rc = push_tag(out, strdup(json_string_value(x)), pb)))
                break;
        }
    } else if (!json_is_null(v)) {
        rc = problem(pb, MPK_POLICY, "%s: expected a list or comma-separated text, got %s", col,
                     v ? type_name(v) : "unreadable JSON");
    }
    json_decref(v);
    if (!rc && lang)
        for (size_t i = 0; i < out->n && !rc; i++)
            if (strlen(out->v[i]) != 2 || !isalpha((unsigned char)out->v[i][0]) ||
                !isalpha((unsigned char)out->v[i][1]))
                rc = problem(pb, MPK_POLICY, "%s: '%.16s' is not a two-letter ISO 639-1 code", col,
                             out->v[i]);
    return rc;
}

int migrate_policy_from_row(const struct migrate_mapping *mp, const char *user,
                            const char *excluded_json, const char *maturity_json,
                            const char *languages_json, struct migrate_policy *pol,
                            struct migrate_problem *pb)
{
    memset(pol, 0, sizeof(*pol));
    memset(pb, 0, sizeof(*pb));
    pol->max_maturity = -1;
    snprintf(pb->eid, sizeof(pb->eid), "%s", mp->policy_table);
    snprintf(pb->id, sizeof(pb->id), "%s", user ? user : "");
    if (!user || !hsc_id_valid(user, strlen(user)) || strlen(user) > HSC_MAX_ID_LEN)
        return problem(pb, MPK_POLICY, "%s: '%.64s' is not a valid user id", mp->policy_user,
                       user ? user : "");
    snprintf(pol->user_id, sizeof(pol->user_id), "%s", user);
    int rc = policy_list(mp->policy_excluded, excluded_json, 0, &pol->excluded, pb);
    if (!rc)
        rc = policy_list(mp->policy_languages, languages_json, 1, &pol->languages, pb);
    if (!rc && maturity_json) {
        json_t *v = json_loads(maturity_json, JSON_DECODE_ANY, NULL);
        long long age;
        if (json_is_string(v) && !hsc_parse_ll(json_string_value(v), &age)) {
            json_decref(v); /* a text column holding an age */
            v = json_integer(age);
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 21)
            pol->max_maturity = (int)json_integer_value(v);
        else if (json_is_string(v) && migrate_rating_age(mp, json_string_value(v)) >= 0)
            pol->max_maturity = migrate_rating_age(mp, json_string_value(v));
        else if (!json_is_null(v))
            rc = problem(pb, MPK_POLICY,
                         "%s: %.32s is neither an age 0..21 nor a rating in "
                         "migrate.maturity_ratings",
                         mp->policy_maturity, maturity_json);
        json_decref(v);
    }
    if (rc)
        migrate_policy_clear(pol);
    return rc;
}

void migrate_policy_clear(struct migrate_policy *pol)
{
    hsc_strlist_clear(&pol->excluded);
    hsc_strlist_clear(&pol->languages);
}
