/*
 * --verify: every migratable legacy title is compared with what the pipeline
 * stored (PostgreSQL at the legacy version or later, Milvus with a sample of
 * the vectors, the graph node and each legacy relationship), every good
 * legacy policy with its user_policies row; --wait repeats until it passes.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_internal.h"
#include "normalize.h"
#include "util.h"

/* Adds one formatted entry to a report list (jansson formats it); a list names at most 50. */
static void vlist_add(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vlist_add(json_t *list, const char *fmt, ...)
{
    if (json_array_size(list) >= 50)
        return;
    va_list ap;
    va_start(ap, fmt);
    json_array_append_new(list, json_vsprintf(fmt, ap));
    va_end(ap);
}

static int strlist_has(const json_t *list, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach (list, i, x)
        if (json_is_string(x) && !strcmp(json_string_value(x), s))
            return 1;
    return 0;
}

/* Checks one page of migratable titles against the three stores. */
static int verify_page(struct mig *m, hsc_content_event *evs, size_t n, struct mig_vreport *v,
                       hsc_err *err)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(evs[i].id));
    char *ids_text = json_dumps(ids, JSON_COMPACT);
    /* PostgreSQL: present at the legacy version or a later one */
    const char *p[] = {ids_text};
    PGresult *r = mig_pg_exec(m->pg,
                              "SELECT id, version, deleted FROM content"
                              " WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
                              1, p, err);
    free(ids_text);
    if (!r) {
        json_decref(ids);
        return err->code;
    }
    json_t *pgv = json_object(); /* id -> version, or -1 when deleted */
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(
            pgv, PQgetvalue(r, i, 0),
            json_integer(PQgetvalue(r, i, 2)[0] == 't' ? -1 : atoll(PQgetvalue(r, i, 1))));
    PQclear(r);
    char *changed = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        json_t *ver = json_object_get(pgv, evs[i].id);
        long long pv = ver ? json_integer_value(ver) : -2;
        if (pv >= evs[i].version) {
            v->pg_present++;
            if (pv > evs[i].version) {
                changed[i] = 1;
                v->changed++;
            }
        } else {
            vlist_add(v->list[VL_MISSING_PG], "%s (%s)", evs[i].id,
                      pv == -2   ? "no row"
                      : pv == -1 ? "deleted"
                                 : "older version");
        }
    }
    json_decref(pgv);
    /* Milvus: every id, and the vectors of a sample */
    long long step = m->total / (hsc_config_int(m->cfg, "migrate.verify_sample") + 1) + 1;
    const char **idv = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        idv[i] = evs[i].id;
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += 100) {
        size_t cnt = n - off < 100 ? n - off : 100;
        int want_vec = 0;
        for (size_t i = off; i < off + cnt; i++)
            if (!changed[i] && (v->migratable + (long long)i) % step == 0)
                want_vec = 1;
        struct await w = {0};
        if ((rc = hsc_milvus_get(m->milvus, idv + off, cnt, want_vec, mig_on_milvus, &w, err)))
            break;
        mig_await_run(m, &w);
        if (w.code) {
            rc = hsc_err_set(err, w.code, "milvus: %s", w.msg);
            mig_entities_free(w.ents, w.nents);
            break;
        }
        for (size_t i = off; i < off + cnt; i++) {
            const hsc_milvus_entity *e = NULL;
            for (size_t j = 0; j < w.nents && !e; j++)
                if (!strcmp(w.ents[j].id, evs[i].id))
                    e = &w.ents[j];
            if (!e) {
                vlist_add(v->list[VL_MISSING_MILVUS], "%s", evs[i].id);
                continue;
            }
            v->milvus_present++;
            if (!want_vec || changed[i] || (v->migratable + (long long)i) % step)
                continue;
            v->compared++;
            int bad = !e->vec || e->dim != evs[i].dim;
            for (size_t k = 0; !bad && k < e->dim; k++) {
                double d = fabs((double)e->vec[k] - (double)evs[i].embedding[k]);
                if (d > v->max_diff)
                    v->max_diff = d;
                /* float32 round trip through JSON: a few ulps at most */
                if (d > 4 * FLT_EPSILON * fmax(1.0, fabs((double)evs[i].embedding[k])))
                    bad = 1;
            }
            if (bad) {
                v->vec_bad++;
                vlist_add(v->list[VL_BAD_VECTORS], "%s", evs[i].id);
            }
        }
        mig_entities_free(w.ents, w.nents);
    }
    free(idv);
    /* the graph: the node, and every legacy relationship (the pipeline may add more) */
    json_t *rows = NULL;
    if (!rc) {
        static const char Q[] =
            "UNWIND $ids AS id OPTIONAL MATCH (c:Content {id: id}) WHERE c.stub IS NULL\n"
            "RETURN id, c IS NOT NULL, [(c)-[:BELONGS_TO]->(x) | x.name],\n"
            "  [(c)-[:HAS_THEME]->(x) | x.name], [(c)-[:HAS_MOOD]->(x) | x.name],\n"
            "  [(c)-[:RELATED_TO]->(x) | x.id]";
        rows = mig_neo4j_rows(m, m->graph, Q, json_pack("{s:O}", "ids", ids), err);
        if (!rows)
            rc = err->code;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *row = json_array_get(rows, i);
        if (!json_is_true(json_array_get(row, 1))) {
            vlist_add(v->list[VL_MISSING_GRAPH], "%s", evs[i].id);
            continue;
        }
        v->graph_present++;
        if (changed[i])
            continue;
        const hsc_strlist *lists[4] = {&evs[i].genres, &evs[i].themes, &evs[i].moods,
                                       &evs[i].related};
        static const char *const WHAT[4] = {"genre", "theme", "mood", "related"};
        for (int l = 0; l < 4; l++)
            for (size_t k = 0; k < lists[l]->n; k++) {
                char name[HSC_MAX_TAG_LEN + HSC_MAX_ID_LEN + 2];
                snprintf(name, sizeof(name), "%s", lists[l]->v[k]);
                if (l < 3)
                    hsc_normalize_tag(name);
                else
                    hsc_trim(name);
                if (!*name || (l == 3 && !strcmp(name, evs[i].id)))
                    continue;
                v->rels++;
                if (!strlist_has(json_array_get(row, 2 + l), name)) {
                    v->rels_missing++;
                    vlist_add(v->list[VL_MISSING_RELS], "%s -%s-> %s", evs[i].id, WHAT[l], name);
                }
            }
    }
    json_decref(rows);
    json_decref(ids);
    free(changed);
    return rc;
}

static int compare_policies(struct mig *m, struct migrate_policy *pols, size_t n, void *arg,
                            hsc_err *err)
{
    struct mig_vreport *v = arg;
    for (size_t i = 0; i < n; i++) {
        v->pol_total++;
        char *ex = mig_strlist_json(&pols[i].excluded), *la = mig_strlist_json(&pols[i].languages);
        char mat[16];
        snprintf(mat, sizeof(mat), "%d", pols[i].max_maturity);
        const char *q[] = {pols[i].user_id, ex, mat, la};
        PGresult *r =
            mig_pg_exec(m->pg,
                        "SELECT count(*) FROM user_policies WHERE user_id = $1"
                        " AND excluded_genres = ARRAY(SELECT jsonb_array_elements_text($2::jsonb))"
                        " AND max_maturity IS NOT DISTINCT FROM nullif($3::int, -1)"
                        " AND languages = ARRAY(SELECT jsonb_array_elements_text($4::jsonb))",
                        4, q, err);
        free(ex);
        free(la);
        if (!r)
            return err->code;
        if (atoll(PQgetvalue(r, 0, 0)) == 1)
            v->pol_ok++;
        else
            vlist_add(v->list[VL_BAD_POLICIES], "%s", pols[i].user_id);
        PQclear(r);
    }
    return 0;
}

/* Every good legacy policy equals its user_policies row (bad ones were never migrated). */
static int verify_policies(struct mig *m, struct mig_vreport *v, hsc_err *err)
{
    return mig_each_policy_page(m, compare_policies, v, err);
}

const struct mig_vlist_name mig_vlists[VL_COUNT] = {
    [VL_MISSING_PG] = {"missing in postgresql", "missing_postgresql"},
    [VL_MISSING_MILVUS] = {"missing in milvus", "missing_milvus"},
    [VL_MISSING_GRAPH] = {"missing in the graph", "missing_graph"},
    [VL_BAD_VECTORS] = {"different embeddings", "different_embeddings"},
    [VL_MISSING_RELS] = {"missing relationships", "missing_relationships"},
    [VL_BAD_POLICIES] = {"different policies", "different_policies"},
};

static void vreport_free(struct mig_vreport *v)
{
    for (int l = 0; l < VL_COUNT; l++)
        json_decref(v->list[l]);
    memset(v, 0, sizeof(*v));
}

static void vreport_clear(struct mig_vreport *v)
{
    vreport_free(v);
    for (int l = 0; l < VL_COUNT; l++)
        v->list[l] = json_array();
}

static int verify_once(struct mig *m, struct mig_vreport *v, hsc_err *err)
{
    vreport_clear(v);
    memset(m->counts, 0, sizeof(m->counts));
    m->nproblems = 0;
    m->done = 0;
    if ((m->total = mig_count_titles(m, err)) < 0)
        return err->code;
    v->titles = m->total;
    char after[HSC_MAX_ID_LEN + 32] = "";
    int rc = 0;
    while (!rc) {
        json_t *rows = mig_read_page(m, after, err);
        if (!rows) {
            rc = err->code;
            break;
        }
        size_t n = json_array_size(rows), good = 0;
        hsc_content_event *evs = n ? calloc(n, sizeof(*evs)) : NULL;
        if (!evs) {
            json_decref(rows);
            if (n)
                rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            struct migrate_problem pb;
            if (!migrate_row_to_event(&m->mp, json_array_get(rows, i), &evs[good], &pb))
                good++;
        }
        migrate_row_id(json_array_get(rows, n - 1), after, sizeof(after));
        json_decref(rows);
        rc = verify_page(m, evs, good, v, err);
        v->migratable += (long long)good;
        for (size_t i = 0; i < good; i++)
            hsc_content_event_clear(&evs[i]);
        free(evs);
        m->done += (long long)n;
        mig_progress(m, 0);
    }
    if (!rc)
        rc = verify_policies(m, v, err);
    return rc;
}

int mig_verify_ok(const struct mig_vreport *v)
{
    return v->pg_present == v->migratable && v->milvus_present == v->migratable &&
           v->graph_present == v->migratable && !v->vec_bad && !v->rels_missing &&
           v->pol_ok == v->pol_total;
}

int mig_verify(struct mig *m)
{
    struct mig_vreport v = {0};
    hsc_err err = {0};
    int rc;
    struct await w = {0};
    if ((rc = hsc_milvus_ensure(m->milvus, mig_on_milvus, &w, &err)) == 0) {
        mig_await_run(m, &w);
        if (w.code)
            rc = hsc_err_set(&err, w.code, "milvus: %s", w.msg);
    }
    int64_t start = hsc_mono_us();
    int64_t deadline = start + (int64_t)(m->wait_s * 1e6);
    for (;;) {
        m->started_us = hsc_mono_us();
        if (!rc)
            rc = verify_once(m, &v, &err);
        if ((!rc && mig_verify_ok(&v)) || hsc_mono_us() >= deadline || mig_stop ||
            rc == HSC_ECONFIG)
            break;
        rc = 0;
        hsc_err_clear(&err);
        mig_loop_sleep(m, 2.0);
    }
    if (m->tty && !m->quiet)
        fputc('\n', stderr);
    int status = mig_report_verify(m, &v, rc, &err, (double)(hsc_mono_us() - start) / 1e6);
    vreport_free(&v);
    return status;
}
