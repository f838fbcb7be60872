/*
 * JSON readers for content and learning events. Type errors name the field
 * and what was found; range and format rules are left to the codec's
 * validators, so JSON and MessagePack accept exactly the same events. The
 * sizes the codec bounds before decoding (a whole message, keys per object,
 * entries per list, the embedding's dimension) are bounded here before
 * anything is copied.
 */
#include "json_event.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "util.h"

static const char *jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int jstr(json_t *obj, const char *field, char **out, hsc_err *err)
{
    json_t *j = json_object_get(obj, field);
    if (!j || json_is_null(j))
        return HSC_OK;
    if (!json_is_string(j))
        return hsc_err_set(err, HSC_EINVAL, "%s: expected a string, got %s", field, jtype(j));
    if (strlen(json_string_value(j)) != json_string_length(j))
        return hsc_err_set(err, HSC_EINVAL, "%s: contains a NUL character", field);
    *out = strdup(json_string_value(j));
    return *out ? HSC_OK : hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", field);
}

/* Reads an optional integer; *present tells whether it was there. */
static int jint(json_t *obj, const char *field, long long *out, int *present, hsc_err *err)
{
    json_t *j = json_object_get(obj, field);
    *present = 0;
    if (!j || json_is_null(j))
        return HSC_OK;
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d != floor(d) || fabs(d) > 9.0e15)
            return hsc_err_set(err, HSC_EINVAL, "%s: expected an integer, got %g", field, d);
        *out = (long long)d;
    } else if (json_is_integer(j)) {
        *out = json_integer_value(j);
    } else {
        return hsc_err_set(err, HSC_EINVAL, "%s: expected an integer, got %s", field, jtype(j));
    }
    *present = 1;
    return HSC_OK;
}

static int jlist(json_t *obj, const char *field, hsc_strlist *out, hsc_err *err)
{
    json_t *j = json_object_get(obj, field);
    if (!j || json_is_null(j))
        return HSC_OK;
    if (!json_is_array(j))
        return hsc_err_set(err, HSC_EINVAL, "%s: expected an array of strings, got %s", field,
                           jtype(j));
    if (json_array_size(j) > HSC_MAX_LIST_LEN)
        return hsc_err_set(err, HSC_EINVAL, "%s: %zu entries is more than %d", field,
                           json_array_size(j), HSC_MAX_LIST_LEN);
    size_t i;
    json_t *e;
    json_array_foreach (j, i, e) {
        if (!json_is_string(e))
            return hsc_err_set(err, HSC_EINVAL, "%s[%zu]: expected a string, got %s", field, i,
                               jtype(e));
        if (strlen(json_string_value(e)) != json_string_length(e))
            return hsc_err_set(err, HSC_EINVAL, "%s[%zu]: contains a NUL character", field, i);
        if (hsc_strlist_push(out, json_string_value(e), json_string_length(e)))
            return hsc_err_set(err, HSC_ENOMEM, "%s: out of memory", field);
    }
    return HSC_OK;
}

/* Parses one object of at most HSC_CODEC_MAX_MESSAGE_BYTES and HSC_CODEC_MAX_MAP_ENTRIES keys. */
static json_t *parse_object(const char *text, size_t len, hsc_err *err)
{
    if (len > HSC_CODEC_MAX_MESSAGE_BYTES) {
        hsc_err_set(err, HSC_EINVAL, "line: %zu bytes exceeds %d", len,
                    HSC_CODEC_MAX_MESSAGE_BYTES);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        hsc_err_set(err, HSC_EINVAL, "not JSON: %s (column %d)", je.text, je.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        hsc_err_set(err, HSC_EINVAL, "expected a JSON object, got %s", jtype(root));
        json_decref(root);
        return NULL;
    }
    if (json_object_size(root) > HSC_CODEC_MAX_MAP_ENTRIES) {
        hsc_err_set(err, HSC_EINVAL, "line: object of %zu keys exceeds %d", json_object_size(root),
                    HSC_CODEC_MAX_MAP_ENTRIES);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Reads "v" (the schema version, HSC_SCHEMA_VERSION when absent) into *v. */
static int read_v(json_t *o, int *v, hsc_err *err)
{
    long long n;
    int present, rc;
    *v = HSC_SCHEMA_VERSION;
    if ((rc = jint(o, "v", &n, &present, err)))
        return rc;
    if (present && (n < 0 || n > 1000))
        return hsc_err_set(err, HSC_EINVAL, "v: %lld is outside 0..1000", n);
    if (present)
        *v = (int)n;
    return HSC_OK;
}

/* Parses text as one bounded object and hands it to read, which fills out. */
static int read_json(const char *text, size_t len, int (*read)(json_t *, void *, hsc_err *),
                     void *out, hsc_err *err)
{
    json_t *o = parse_object(text, len, err);
    if (!o)
        return err ? err->code : HSC_EINVAL;
    int rc = read(o, out, err);
    json_decref(o);
    return rc;
}

static int read_content(json_t *o, void *out, hsc_err *err)
{
    hsc_content_event *ev = out;
    long long n;
    int present, rc;
    if ((rc = read_v(o, &ev->v, err)))
        return rc;
    char *op = NULL;
    if ((rc = jstr(o, "op", &op, err)))
        return rc;
    if (!op || !strcmp(op, "upsert")) {
        ev->op = HSC_OP_UPSERT;
    } else if (!strcmp(op, "delete")) {
        ev->op = HSC_OP_DELETE;
    } else {
        rc = hsc_err_set(err, HSC_EINVAL, "op: '%.32s' is not upsert or delete", op);
    }
    free(op);
    if (rc)
        return rc;
    if ((rc = jstr(o, "id", &ev->id, err)))
        return rc;
    if ((rc = jint(o, "version", &n, &present, err)))
        return rc;
    if (!present)
        return hsc_err_set(err, HSC_EINVAL, "version: missing");
    ev->version = n;
    if ((rc = jstr(o, "title", &ev->title, err)) ||
        (rc = jstr(o, "description", &ev->description, err)) ||
        (rc = jstr(o, "kind", &ev->kind, err)) || (rc = jlist(o, "genres", &ev->genres, err)) ||
        (rc = jlist(o, "themes", &ev->themes, err)) || (rc = jlist(o, "moods", &ev->moods, err)) ||
        (rc = jlist(o, "related", &ev->related, err)) ||
        (rc = jstr(o, "language", &ev->language, err)))
        return rc;
    static const struct {
        const char *name;
        unsigned bit;
    } ints[] = {{"year", HSC_HAS_YEAR},
                {"maturity", HSC_HAS_MATURITY},
                {"duration_s", HSC_HAS_DURATION},
                {"ts", HSC_HAS_TS}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if ((rc = jint(o, ints[i].name, &n, &present, err)))
            return rc;
        if (!present)
            continue;
        ev->has |= ints[i].bit;
        if (ints[i].bit == HSC_HAS_YEAR || ints[i].bit == HSC_HAS_MATURITY) {
            if (n < INT32_MIN || n > INT32_MAX)
                return hsc_err_set(err, HSC_EINVAL, "%s: %lld is out of range", ints[i].name, n);
        }
        if (ints[i].bit == HSC_HAS_YEAR)
            ev->year = (int32_t)n;
        else if (ints[i].bit == HSC_HAS_MATURITY)
            ev->maturity = (int32_t)n;
        else if (ints[i].bit == HSC_HAS_DURATION)
            ev->duration_s = n;
        else
            ev->ts = n;
    }
    json_t *emb = json_object_get(o, "embedding");
    if (emb && !json_is_null(emb)) {
        if (!json_is_array(emb))
            return hsc_err_set(err, HSC_EINVAL, "embedding: expected an array of numbers, got %s",
                               jtype(emb));
        size_t dim = json_array_size(emb);
        if (dim == 0)
            return hsc_err_set(err, HSC_EINVAL, "embedding: empty");
        if (dim > HSC_MAX_EMBEDDING_DIM)
            return hsc_err_set(err, HSC_EINVAL, "embedding: dimension %zu is more than %d", dim,
                               HSC_MAX_EMBEDDING_DIM);
        ev->embedding = malloc(dim * sizeof(float));
        if (!ev->embedding)
            return hsc_err_set(err, HSC_ENOMEM, "embedding: out of memory");
        ev->dim = dim;
        for (size_t i = 0; i < dim; i++) {
            json_t *e = json_array_get(emb, i);
            if (!json_is_number(e))
                return hsc_err_set(err, HSC_EINVAL, "embedding[%zu]: expected a number, got %s", i,
                                   jtype(e));
            double d = json_number_value(e);
            if (!(fabs(d) <= FLT_MAX)) /* converting it to float would be undefined */
                return hsc_err_set(err, HSC_EINVAL, "embedding[%zu]: %g is outside float32", i, d);
            ev->embedding[i] = (float)d;
        }
    }
    if (!ev->id)
        return hsc_err_set(err, HSC_EINVAL, "id: missing");
    return hsc_codec_validate_content(ev, err);
}

int hsc_json_to_content(const char *text, size_t len, hsc_content_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    int rc = read_json(text, len, read_content, ev, err);
    if (rc)
        hsc_content_event_clear(ev);
    return rc;
}

static int read_learning(json_t *o, void *out, hsc_err *err)
{
    hsc_learning_event *ev = out;
    int rc = read_v(o, &ev->v, err);
    if (rc)
        return rc;
    if ((rc = jstr(o, "user_id", &ev->user_id, err)) ||
        (rc = jstr(o, "content_id", &ev->content_id, err)) ||
        (rc = jstr(o, "kind", &ev->kind, err)))
        return rc;
    json_t *v = json_object_get(o, "value");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v))
            return hsc_err_set(err, HSC_EINVAL, "value: expected a number, got %s", jtype(v));
        ev->value = json_number_value(v);
        ev->has_value = true;
    }
    long long ts;
    int present;
    if ((rc = jint(o, "ts", &ts, &present, err)))
        return rc;
    if (!present)
        return hsc_err_set(err, HSC_EINVAL, "ts: missing");
    ev->ts = ts;
    return hsc_codec_validate_learning(ev, err);
}

int hsc_json_to_learning(const char *text, size_t len, hsc_learning_event *ev, hsc_err *err)
{
    memset(ev, 0, sizeof(*ev));
    int rc = read_json(text, len, read_learning, ev, err);
    if (rc)
        hsc_learning_event_clear(ev);
    return rc;
}
