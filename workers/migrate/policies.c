/*
 * Legacy policies: the legacy table read a page at a time (keyset on the user
 * column), the rows that cannot be migrated reported, and the good ones
 * written to user_policies, with their new versions raised in Redis so cached
 * searches miss.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_list.h"
#include "migrate_internal.h"
#include "util.h"

/* A string list as compact JSON text (malloc'd), for jsonb parameters. */
char *mig_strlist_json(const hsc_strlist *l)
{
    json_t *a = hsc_json_strlist(l);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static int write_policies(struct mig *m, const struct migrate_policy *pols, size_t n, hsc_err *err)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr,
            json_pack("{s:s, s:o, s:o, s:o}", "user_id", pols[i].user_id, "excluded",
                      hsc_json_strlist(&pols[i].excluded), "languages",
                      hsc_json_strlist(&pols[i].languages), "max_maturity",
                      pols[i].max_maturity < 0 ? json_null() : json_integer(pols[i].max_maturity)));
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    const char *p[] = {text};
    /* Unchanged policies keep their version: a re-run invalidates no cache. */
    PGresult *r = mig_pg_exec(
        m->pg,
        "WITH x AS (SELECT x.user_id,"
        "   ARRAY(SELECT jsonb_array_elements_text(x.excluded)) AS excluded_genres,"
        "   x.max_maturity,"
        "   ARRAY(SELECT jsonb_array_elements_text(x.languages)) AS languages"
        "   FROM jsonb_to_recordset($1::jsonb) AS x(user_id text, excluded jsonb,"
        "        max_maturity int, languages jsonb))"
        " INSERT INTO user_policies AS p (user_id, excluded_genres, max_maturity, languages)"
        " SELECT user_id, excluded_genres, max_maturity, languages FROM x"
        " ON CONFLICT (user_id) DO UPDATE SET excluded_genres = excluded.excluded_genres,"
        "   max_maturity = excluded.max_maturity, languages = excluded.languages,"
        "   version = p.version + 1, updated_at = now()"
        " WHERE (p.excluded_genres, p.max_maturity, p.languages) IS DISTINCT FROM"
        "   (excluded.excluded_genres, excluded.max_maturity, excluded.languages)"
        " RETURNING user_id, version",
        1, p, err);
    free(text);
    if (!r)
        return err->code;
    int rows = PQntuples(r), rc = 0;
    if (rows > 0 && m->redis) {
        /* Searches cache a policy by its version: publish the new ones. */
        const char *prefix = hsc_config_str(m->cfg, "redis.policy_key_prefix");
        char **keys = calloc((size_t)rows, sizeof(char *));
        long long *vals = calloc((size_t)rows, sizeof(long long));
        for (int i = 0; keys && vals && i < rows; i++) {
            keys[i] = hsc_strcat2(prefix, PQgetvalue(r, i, 0));
            vals[i] = atoll(PQgetvalue(r, i, 1));
        }
        struct await w = {0};
        if (!keys || !vals)
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
        else if (!(rc = hsc_redis_raise(m->redis, (const char *const *)keys, vals, (size_t)rows,
                                        mig_on_redis, &w, err))) {
            mig_await_run(m, &w);
            if (w.code)
                rc = hsc_err_set(err, w.code, "redis: %s", w.msg);
        }
        for (int i = 0; keys && i < rows; i++)
            free(keys[i]);
        free(keys);
        free(vals);
    }
    PQclear(r);
    return rc;
}

/*
 * Reads the legacy policy table a page at a time (keyset on the user column),
 * reports the rows that cannot be migrated, and hands the good ones to fn.
 */
int mig_each_policy_page(struct mig *m, mig_policy_page_fn fn, void *arg, hsc_err *err)
{
    if (!*m->mp.policy_table)
        return 0;
    char *sql = migrate_policy_sql(&m->mp);
    char after[HSC_MAX_ID_LEN + 1] = "";
    int rc = 0;
    for (;;) {
        const char *p[] = {after, "1000"};
        PGresult *r = mig_pg_exec(m->legacy_pg, sql, 2, p, err);
        if (!r) {
            hsc_err_prefix(err, "legacy policies (migrate.policy_table %s)", m->mp.policy_table);
            rc = err->code;
            break;
        }
        int n = PQntuples(r);
        struct migrate_policy *pols = calloc((size_t)(n ? n : 1), sizeof(*pols));
        size_t good = 0;
        for (int i = 0; pols && i < n; i++) {
            struct migrate_problem pb;
            const char *cols[4];
            for (int c = 0; c < 4; c++)
                cols[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
            if (migrate_policy_from_row(&m->mp, cols[0], cols[1], cols[2], cols[3], &pols[good],
                                        &pb))
                mig_add_problem(m, &pb);
            else
                good++;
        }
        if (n)
            snprintf(after, sizeof(after), "%s", PQgetvalue(r, n - 1, 0));
        PQclear(r);
        if (!pols)
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
        else if (good)
            rc = fn(m, pols, good, arg, err);
        for (size_t i = 0; i < good; i++)
            migrate_policy_clear(&pols[i]);
        free(pols);
        if (rc || n < 1000)
            break;
    }
    free(sql);
    return rc;
}

static int store_policies(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                          hsc_err *err)
{
    int write = *(int *)arg;
    int rc = write ? write_policies(m, pols, n, err) : 0;
    if (!rc)
        m->policies += (long long)n;
    return rc;
}

/* Migrates the legacy policies (with write; a dry run only validates and counts them). */
int mig_do_policies(struct mig *m, int write, hsc_err *err)
{
    return mig_each_policy_page(m, store_policies, &write, err);
}
