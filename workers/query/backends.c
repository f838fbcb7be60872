/*
 * The backend calls of one search and their bounds: the Milvus search, the
 * Neo4j candidates, enrichment and relationships, and the PostgreSQL read of
 * the candidates' catalogue rows. Each call runs in the search's cancel
 * scope (cut when its budget ends), holds a reference to the search, and
 * books its latency for the planner whether or not it still counts.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "search_internal.h"

const char QUERY_ATTRS_SQL[] =
    "SELECT id, coalesce(title, ''), to_json(genres), to_json(themes), language,\n"
    "       coalesce(year, 0), coalesce(maturity, -1)\n"
    "FROM content WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))\n"
    "  AND NOT deleted";

void query_backend_failed(struct query_engine *e, hsc_latency *l, const hsc_err *err)
{
    if (err && err->code == HSC_ECANCELED)
        return;
    l->failures++;
    l->down_until = query_now_s(e) + e->cooldown_s;
}

/* Books one backend call's duration: the planner's window and the latency histogram. */
void query_booked(struct query_engine *e, hsc_latency *l, const char *backend, const char *op,
                  double ms)
{
    hsc_latency_add(l, ms);
    if (e->metrics) {
        char labels[96];
        snprintf(labels, sizeof(labels), "backend=\"%s\",op=\"%s\"", backend, op);
        hsc_metrics_observe(e->metrics, "hsc_backend_request_duration_seconds", labels,
                            ms / 1000.0);
    }
}

int query_is_down(struct query_engine *e, const hsc_latency *l)
{
    return query_now_s(e) < l->down_until;
}

hsc_pg *query_pick_pg(struct query_engine *e)
{
    hsc_pg *pg = e->pg[e->pg_next];
    e->pg_next = (e->pg_next + 1) % e->npg;
    return pg;
}

/* The seeds of graph calls: the request's, then the user's recent positive history. */
static void seeds_of(struct qreq *q, hsc_strlist *out)
{
    for (size_t i = 0; i < q->req->seed_ids.n; i++)
        hsc_strlist_push(out, q->req->seed_ids.v[i], strlen(q->req->seed_ids.v[i]));
    if (q->policy_state == P_DONE)
        for (size_t i = 0; i < q->policy.history.n && (int)i < q->e->history_seeds; i++)
            hsc_strlist_push(out, q->policy.history.v[i], strlen(q->policy.history.v[i]));
}

/* Gives the graph leg's seeds to q: the attributes step reads their tags for the shared-tag
 * scores. */
static void keep_graph_seeds(struct qreq *q, hsc_strlist *seeds)
{
    hsc_strlist_clear(&q->gseeds);
    q->gseeds = *seeds;
    *seeds = (hsc_strlist){0};
    q->gseeds_explicit = q->req->seed_ids.n;
}

static int fetch_k(struct qreq *q, int cap)
{
    long long k = (long long)q->req->k * q->e->overfetch + (long long)q->req->filters.exclude_ids.n;
    if (q->policy_state ==
        P_DONE) /* blocked titles are dropped after the fetch, like exclude_ids */
        k += (long long)q->policy.blocked_ids.n;
    return (int)(k > cap ? cap : k);
}

int query_call_counts(struct qreq *q, int state, int64_t started, int64_t *timing)
{
    if (q->replied || state != P_RUN) {
        query_unref(q); /* cut meanwhile: only its latency counts */
        return 0;
    }
    *timing += query_since_us(started);
    return 1;
}

/* Opens a call of a part: a reference for its callback, its start, its cancel scope. */
static void call_begin(struct qreq *q, int *state, int64_t *started)
{
    q->refs++;
    *started = hsc_mono_us();
    *state = P_RUN;
    hsc_http_set_scope(q->e->http, state, q->deadline_ms); /* cancelled if cut */
}

/*
 * Closes the cancel scope; a call that did not start (rc) gives its reference
 * back and fails its part, or, when part is NULL (an optional call), leaves
 * the part off.
 */
static int call_end(struct qreq *q, int rc, int *state, const char *backend, const char *part,
                    const hsc_err *err)
{
    hsc_http_set_scope(q->e->http, NULL, 0);
    if (rc) {
        q->refs--;
        if (part)
            query_fail_part(q, backend, part, state, err);
        else
            *state = P_OFF;
    }
    return rc;
}

/* ---------------- vector (Milvus) ---------------- */

static void on_vector(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    query_booked(e, &e->lat_vector, "milvus", "search", query_since_us(q->started_vec) / 1000.0);
    if (!query_call_counts(q, q->vec_state, q->started_vec, &q->t.vector))
        return;
    if (!res) {
        query_backend_failed(e, &e->lat_vector, err);
        query_fail_part(q, "milvus", "vector", &q->vec_state, err);
    } else {
        query_cands_add_vector(&q->cands, res->hits, res->nhits);
        q->vec_state = P_DONE;
    }
    if (q->plan.sequential && q->graph_state == P_WAIT)
        query_start_graph_enrich(q);
    query_check_backends_done(q);
    query_unref(q);
}

void query_start_vector(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_err err = {0};
    if (!hsc_milvus_ready(e->milvus)) {
        hsc_err_set(&err, HSC_ETRANSIENT, "the collection is not ready yet");
        query_fail_part(q, "milvus", "vector", &q->vec_state, &err);
        return;
    }
    hsc_milvus_filter f = {0};
    query_milvus_filter(q->req, q->policy_pushed ? &q->policy : NULL, &f);
    const char *expr = hsc_milvus_filter_str_of(&f);
    if (!expr)
        hsc_err_set(&err, HSC_EINVAL, "the filter could not be built");
    call_begin(q, &q->vec_state, &q->started_vec);
    int rc =
        !expr || hsc_milvus_search(e->milvus, q->req->embedding, q->req->dim, fetch_k(q, 16384),
                                   *expr ? expr : NULL, 0, on_vector, q, &err);
    call_end(q, rc, &q->vec_state, "milvus", "vector", &err);
    hsc_milvus_filter_free(&f);
}

/* ---------------- graph (Neo4j) ---------------- */
/* Books a graph call's end; true if its rows are wanted (in time, and no error): the part is
 * then done. */
static int graph_answered(struct qreq *q, const hsc_err *err)
{
    struct query_engine *e = q->e;
    query_booked(e, q->plan.sequential ? &e->lat_enrich : &e->lat_graph, "neo4j",
                 q->plan.sequential ? "enrich" : "candidates",
                 query_since_us(q->started_graph) / 1000.0);
    if (q->replied || q->graph_state != P_RUN)
        return 0; /* cut meanwhile: only the latency counts */
    q->t.graph += query_since_us(q->started_graph);
    if (err) {
        query_backend_failed(e, &e->lat_graph, err);
        query_fail_part(q, "neo4j", "graph", &q->graph_state, err);
        return 0;
    }
    q->graph_state = P_DONE; /* the caller merges the rows before anything else runs */
    return 1;
}

/* After a graph answer: the attributes start once no leg is running. */
static void graph_settled(struct qreq *q)
{
    query_check_backends_done(q);
    query_unref(q);
}

static void on_graph_cands(void *arg, const hsc_graph_candidate *v, size_t n, double seconds,
                           const hsc_err *err)
{
    struct qreq *q = arg;
    (void)seconds;
    if (graph_answered(q, err))
        query_cands_add_graph(&q->cands, v, n, q->req->include_relationships);
    graph_settled(q);
}

void query_start_graph(struct qreq *q)
{
    struct query_engine *e = q->e;
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    if (!seeds.n) {
        /* nothing to start from yet: wait for the user's history, or there is none */
        q->graph_state = q->policy_state == P_RUN ? P_WAIT : P_OFF;
        return;
    }
    hsc_graph_filter gf;
    hsc_strlist langs = {0};
    query_graph_filter(q->req, q->policy_state == P_DONE ? &q->policy : NULL,
                       e->fusion.history_weight, &langs, &gf);
    keep_graph_seeds(q, &seeds);
    hsc_err err = {0};
    call_begin(q, &q->graph_state, &q->started_graph);
    int rc = hsc_graph_candidates(e->neo, (const char *const *)q->gseeds.v, q->gseeds.n,
                                  fetch_k(q, 3000), &gf, on_graph_cands, q, &err);
    call_end(q, rc, &q->graph_state, "neo4j", "graph", &err);
    hsc_strlist_clear(&langs);
}

static void on_graph_info(void *arg, const hsc_graph_info *v, size_t n, double seconds,
                          const hsc_err *err)
{
    struct qreq *q = arg;
    (void)seconds;
    if (graph_answered(q, err))
        query_cands_add_links(&q->cands, v, n, 1);
    graph_settled(q);
}

void query_start_graph_enrich(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->vec_state != P_DONE || !q->cands.n) {
        q->graph_state = P_OFF; /* nothing to enrich */
        return;
    }
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    keep_graph_seeds(q, &seeds);
    const char **ids = calloc(q->cands.n, sizeof(*ids));
    for (size_t i = 0; ids && i < q->cands.n; i++)
        ids[i] = q->cands.c[i].id;
    hsc_err err = {0};
    call_begin(q, &q->graph_state, &q->started_graph);
    int rc = !ids || hsc_graph_enrich(e->neo, ids, q->cands.n, (const char *const *)q->gseeds.v,
                                      q->gseeds.n, on_graph_info, q, &err);
    call_end(q, rc, &q->graph_state, "neo4j", "graph", &err);
    free(ids);
}

/* ---------------- relationships (Neo4j) ---------------- */

static void on_rels(void *arg, const hsc_graph_info *v, size_t n, double seconds,
                    const hsc_err *err)
{
    struct qreq *q = arg;
    query_booked(q->e, &q->e->lat_enrich, "neo4j", "enrich", seconds * 1000);
    if (!query_call_counts(q, q->rels_state, q->started_graph, &q->t.graph))
        return;
    if (err) {
        query_backend_failed(q->e, &q->e->lat_graph, err);
        query_add_degraded(q, "graph");
        q->rels_state = P_FAIL;
    } else {
        q->rels_state = P_DONE;
        query_cands_add_links(&q->cands, v, n, 0);
    }
    query_reply_ok(q);
    query_unref(q);
}

/* Asks the graph how the top results link to the seeds, unless they already know. */
int query_start_rels(struct qreq *q, size_t top)
{
    struct query_engine *e = q->e;
    if (!q->req->include_relationships || query_is_down(e, &e->lat_graph) || q->out_of_time)
        return 0;
    hsc_strlist seeds = {0};
    seeds_of(q, &seeds);
    const char **ids = calloc(top ? top : 1, sizeof(*ids));
    size_t nids = 0;
    for (size_t i = 0; ids && i < top; i++)
        if (!q->cands.c[i].has_rels)
            ids[nids++] = q->cands.c[i].id;
    int started = 0;
    if (ids && nids && seeds.n) {
        hsc_err err = {0};
        call_begin(q, &q->rels_state, &q->started_graph);
        int rc = hsc_graph_enrich(e->neo, ids, nids, (const char *const *)seeds.v, seeds.n, on_rels,
                                  q, &err);
        started = !call_end(q, rc, &q->rels_state, "neo4j", NULL, &err);
        if (started)
            q->phase = PH_RELS;
    }
    free(ids);
    hsc_strlist_clear(&seeds);
    return started;
}

/* ---------------- attributes (PostgreSQL) ---------------- */

static void fill_json_list(hsc_strlist *l, const char *text)
{
    json_t *a = json_loads(text, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
        if (json_is_string(v))
            hsc_strlist_push(l, json_string_value(v), json_string_length(v));
    json_decref(a);
}

static void on_attrs(void *arg, PGresult *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    double ms = query_since_us(q->started_attrs) / 1000.0;
    query_booked(e, &e->lat_policy, "postgresql", "attributes", ms);
    if (!query_call_counts(q, q->attrs_state, q->started_attrs, &q->t.policy))
        return;
    if (!res) {
        query_backend_failed(e, &e->lat_policy, err);
        query_note_failure(q, "postgresql", err);
        q->attrs_state = P_FAIL;
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            const char *id = PQgetvalue(res, i, 0);
            for (size_t k = 0; q->gseed_attrs && k < q->gseeds.n; k++)
                if (!q->gseed_found[k] && !strcmp(q->gseeds.v[k], id)) {
                    fill_json_list(&q->gseed_attrs[k].genres, PQgetvalue(res, i, 2));
                    fill_json_list(&q->gseed_attrs[k].themes, PQgetvalue(res, i, 3));
                    q->gseed_found[k] = true;
                }
            hsc_candidate *c = query_cands_find(&q->cands, id);
            if (!c)
                continue;
            hsc_title_attrs *a = &c->attrs;
            a->title = strdup(PQgetvalue(res, i, 1));
            fill_json_list(&a->genres, PQgetvalue(res, i, 2));
            fill_json_list(&a->themes, PQgetvalue(res, i, 3));
            a->language = PQgetisnull(res, i, 4) ? NULL : strdup(PQgetvalue(res, i, 4));
            a->year = atoi(PQgetvalue(res, i, 5));
            a->maturity = atoi(PQgetvalue(res, i, 6));
            c->has_attrs = true;
        }
        q->attrs_state = P_DONE;
    }
    query_maybe_rank(q);
    query_unref(q);
}

void query_start_attrs(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->phase >= PH_ATTRS)
        return;
    q->phase = PH_ATTRS;
    ev_timer_stop(e->loop, &q->due_backends);
    if (q->cands.n == 0) {
        q->attrs_state = P_DONE;
        query_maybe_rank(q);
        return;
    }
    /* A JSON parameter, like every list ingest writes: no array literal to quote. */
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < q->cands.n; i++)
        json_array_append_new(arr, json_string(q->cands.c[i].id));
    /* the graph's seeds too, for the tags candidates share with them (search.c: score_shared_tags)
     */
    if (q->graph_state == P_DONE && q->gseeds.n && e->fusion.shared_tag > 0) {
        q->gseed_attrs = calloc(q->gseeds.n, sizeof(*q->gseed_attrs));
        q->gseed_found = calloc(q->gseeds.n, sizeof(*q->gseed_found));
        if (!q->gseed_attrs || !q->gseed_found) {
            free(q->gseed_attrs), free(q->gseed_found);
            q->gseed_attrs = NULL, q->gseed_found = NULL;
        }
        for (size_t i = 0; arr && q->gseed_attrs && i < q->gseeds.n; i++)
            json_array_append_new(arr, json_string(q->gseeds.v[i]));
    }
    char *ids = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    const char *params[1] = {ids};
    hsc_err err = {0};
    q->refs++;
    q->started_attrs = hsc_mono_us();
    q->attrs_state = P_RUN;
    if (!ids || hsc_pg_query(query_pick_pg(e), QUERY_ATTRS_SQL, 1, params, on_attrs, q, &err)) {
        q->refs--;
        q->attrs_state = P_FAIL;
        query_note_failure(q, "postgresql", &err);
        query_maybe_rank(q);
    }
    free(ids);
}
