/*
 * Reads the canonical catalogue from PostgreSQL into the similarity index at
 * start (pgload.h): every row's id, version, deleted flag and tags, plus the
 * themes and moods its title and description reveal (the vocabulary, as for
 * an event). Blocking: it runs before the loop starts, in single-row mode so
 * a large catalogue is never held in memory twice.
 */
#include "pgload.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/message.h"

static const char LOAD_SQL[] =
    "SELECT id, version, deleted, coalesce(title, ''), coalesce(description, ''), "
    "array_to_json(genres)::text, array_to_json(themes)::text, array_to_json(moods)::text "
    "FROM content";

/* Fills l from a JSON array of strings; an error names the column. */
static int json_list(const char *text, hsc_strlist *l, const char *what, const char *id,
                     hsc_err *err)
{
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!json_is_array(a)) {
        json_decref(a);
        return hsc_err_set(err, HSC_EINVAL, "content %s: %s is not a list", id, what);
    }
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v) {
        const char *s = json_string_value(v);
        if (s && hsc_strlist_push(l, s, strlen(s))) {
            json_decref(a);
            return hsc_err_set(err, HSC_ENOMEM, "out of memory");
        }
    }
    json_decref(a);
    return HSC_OK;
}

int enrich_pgload(const char *url, const struct enrich_vocab *vocab, simindex *ix, size_t *loaded,
                  hsc_err *err)
{
    *loaded = 0;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        hsc_err_set(err, HSC_ETRANSIENT, "pg.url: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return err->code;
    }
    if (!PQsendQuery(c, LOAD_SQL) || !PQsetSingleRowMode(c)) {
        hsc_err_set(err, HSC_ETRANSIENT, "catalogue load: %s", PQerrorMessage(c));
        PQfinish(c);
        return err->code;
    }
    int rc = HSC_OK;
    simindex_bulk_begin(ix);
    PGresult *r;
    while ((r = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && !rc) {
            hsc_content_event ev = {0};
            const char *id = PQgetvalue(r, 0, 0);
            long long version = atoll(PQgetvalue(r, 0, 1));
            int deleted = PQgetvalue(r, 0, 2)[0] == 't';
            if (deleted) {
                if (simindex_delete(ix, id, version) < 0)
                    rc = hsc_err_set(err, HSC_ENOMEM, "catalogue load: out of memory");
            } else {
                ev.title = PQgetvalue(r, 0, 3);
                ev.description = PQgetvalue(r, 0, 4);
                rc = json_list(PQgetvalue(r, 0, 5), &ev.genres, "genres", id, err);
                if (!rc)
                    rc = json_list(PQgetvalue(r, 0, 6), &ev.themes, "themes", id, err);
                if (!rc)
                    rc = json_list(PQgetvalue(r, 0, 7), &ev.moods, "moods", id, err);
                if (!rc)
                    enrich_extract(vocab, &ev);
                if (!rc && simindex_upsert(ix, id, version, &ev.genres, &ev.themes, &ev.moods) < 0)
                    rc = hsc_err_set(err, HSC_ENOMEM, "catalogue load: out of memory");
                hsc_strlist_clear(&ev.genres);
                hsc_strlist_clear(&ev.themes);
                hsc_strlist_clear(&ev.moods);
            }
            (*loaded)++;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !rc) {
            rc = hsc_err_set(err, HSC_ETRANSIENT, "catalogue load: %s", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    simindex_bulk_end(ix);
    PQfinish(c);
    return rc;
}
