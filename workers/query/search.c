/*
 * The state machine of one search, start to finish, on the loop:
 *
 *   versions  Redis: catalogue epoch and the user's policy version (cache.c)
 *   cache     Redis: GET of the result key; a hit replies here (cache.c)
 *   policy    the user's policy, unless a cached copy is current (policy.c)
 *   backends  Milvus search and Neo4j candidates concurrently (or Neo4j
 *             enrichment after Milvus, for HybridSequential) (backends.c)
 *   attrs     PostgreSQL: catalogue rows of the candidates, so hard filters
 *             are checked on canonical data and deleted titles drop out
 *   rank      filter, policy score, fusion, top k; relationships if asked
 *
 * This file plans, moves between the phases, ranks and replies. Two timers
 * bound a search: backends are cut (and named in `degraded`) when the attrs
 * phase would otherwise miss the deadline, and the reply goes out at the
 * deadline whatever is still running. Every backend callback holds a
 * reference, so a cut call that completes later finds its search alive and
 * only records its latency.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "search_internal.h"

/* ---------------- failures and the reply ---------------- */

void query_add_degraded(struct qreq *q, const char *what)
{
    for (size_t i = 0; i < q->degraded.n; i++)
        if (!strcmp(q->degraded.v[i], what))
            return;
    hsc_strlist_push(&q->degraded, what, strlen(what));
}

void query_note_failure(struct qreq *q, const char *what, const hsc_err *err)
{
    size_t n = strlen(q->fail_why);
    snprintf(q->fail_why + n, sizeof(q->fail_why) - n, "%s%s: %s", n ? "; " : "", what,
             err ? err->msg : "missed its budget");
}

/* A part that will not contribute: why goes into an error reply, its name into `degraded`. */
void query_fail_part(struct qreq *q, const char *backend, const char *part, int *state,
                     const hsc_err *err)
{
    query_note_failure(q, backend, err);
    query_add_degraded(q, part);
    *state = P_FAIL;
}

/* The backends a search may wait on, by their conn.h names. */
static const char *const BACKENDS[] = {"redis", "postgresql", "milvus", "neo4j"};
#define NBACKENDS (sizeof(BACKENDS) / sizeof(BACKENDS[0]))

/* The sum of the backends' conn.h epochs: it moves on every loss and every recovery. */
static unsigned conn_mark(void)
{
    unsigned sum = 0;
    for (size_t i = 0; i < NBACKENDS; i++)
        sum += hsc_conn_epoch(BACKENDS[i]);
    return sum;
}

/* 1 while any of them is down (a connection lost and not yet working again). */
static int any_down(void)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (hsc_conn_is_down(BACKENDS[i]))
            return 1;
    return 0;
}

/* 1 if a backend is down now, or one was lost or recovered since mark was taken. */
static int outage_now(unsigned mark)
{
    return any_down() || conn_mark() != mark;
}

void query_finish(struct qreq *q, hsc_search_reply *r)
{
    struct query_engine *e = q->e;
    ev_timer_stop(e->loop, &q->due_backends);
    ev_timer_stop(e->loop, &q->due_final);
    q->replied = 1;
    q->phase = PH_DONE;
    /* calls still running can only be ignored now: free their connections */
    hsc_http_cancel(e->http, &q->vec_state);
    hsc_http_cancel(e->http, &q->graph_state);
    hsc_http_cancel(e->http, &q->rels_state);
    q->t.total = query_since_us(q->t0_us);
    r->v = HSC_SCHEMA_VERSION;
    r->correlation_id = q->corr;
    r->timings_us = q->t;
    r->degraded = q->degraded;
    if (r->ok)
        e->stats.ok++;
    else if (r->error_code && !strcmp(r->error_code, HSC_SEARCH_ERROR_OVERLOADED))
        e->stats.overloaded++;
    else
        e->stats.errors++;
    if (q->degraded.n)
        e->stats.degraded++;
    if (q->ticket.admitted) {
        /* the only signal admission control learns from: how admitted searches end */
        int timed_out = r->error_code && (!strcmp(r->error_code, HSC_SEARCH_ERROR_DEADLINE) ||
                                          !strcmp(r->error_code, HSC_SEARCH_ERROR_NO_BACKEND));
        struct query_admit_outcome o = {
            .answered = r->ok || timed_out,
            .clean = r->ok && !q->degraded.n,
            .out_of_time = q->out_of_time || q->vec_state == P_CUT || q->graph_state == P_CUT ||
                           q->attrs_state == P_CUT || q->policy_state == P_CUT ||
                           q->rels_state == P_CUT,
            .outage = q->met_outage || outage_now(q->conn_mark),
            .total_ms = (double)q->t.total / 1000.0,
            .now_s = query_now_s(e),
        };
        query_admit_end(&e->admit, &q->ticket, &o);
        q->ticket.admitted = false;
    }
    if ((unsigned)r->strategy < 6)
        e->stats.by_strategy[r->strategy]++;
    q->done(q->arg, r);
}

void query_reply_error(struct qreq *q, const char *code, const char *fmt, ...)
{
    if (q->replied)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hsc_search_reply r = {0};
    r.ok = false;
    r.error_code = (char *)code;
    r.error_message = msg;
    r.strategy = q->plan.strategy;
    r.plan = q->plan.why[0] ? q->plan.why : NULL;
    query_finish(q, &r);
}

void query_reply_ok(struct qreq *q)
{
    size_t n = q->cands.n < (size_t)q->req->k ? q->cands.n : (size_t)q->req->k;
    hsc_search_result *res = calloc(n ? n : 1, sizeof(*res));
    if (!res) {
        query_reply_error(q, "internal", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        hsc_candidate *c = &q->cands.c[i];
        res[i].id = c->id;
        res[i].score = c->score;
        res[i].vector_score = c->vector_score;
        res[i].graph_score = c->graph_score;
        res[i].policy_score = c->policy_score;
        res[i].title = c->attrs.title;
        res[i].genres = c->attrs.genres;
        res[i].has_rels = q->req->include_relationships;
        res[i].rels = c->rels;
        res[i].nrels = c->nrels;
    }
    query_cache_store(q, res, n);
    hsc_search_reply r = {0};
    r.ok = true;
    r.strategy = q->plan.strategy;
    r.plan = q->plan.why;
    r.results = res;
    r.nresults = n;
    query_finish(q, &r);
    free(res); /* the strings belong to the candidates */
}

/* ---------------- rank ---------------- */

/* The graph scores with the tags each candidate shares with the graph leg's seeds. */
static void score_shared_tags(struct qreq *q)
{
    double hw = q->e->fusion.history_weight;
    query_seed_tags *st = calloc(q->gseeds.n, sizeof(*st));
    if (!st)
        return; /* the graph's own scores stand */
    for (size_t i = 0; i < q->gseeds.n; i++) {
        st[i].attrs = q->gseed_found[i] ? &q->gseed_attrs[i] : NULL;
        /* as the graph query weighs them: without seeds of its own, history is all */
        st[i].weight = i < q->gseeds_explicit || !q->gseeds_explicit ? 1.0 : hw;
    }
    query_cands_score_shared(&q->cands, st, q->gseeds.n, q->e->fusion.shared_tag);
    free(st);
}

static void rank(struct qreq *q)
{
    struct query_engine *e = q->e;
    int64_t t = hsc_mono_us();
    const hsc_search_request *req = q->req;
    bool personal = req->user_id != NULL;
    if (personal && q->policy_state != P_DONE) {
        query_reply_error(q, "policy_unavailable",
                          "the policy of user %s could not be loaded in time (%s); results are "
                          "withheld rather than shown unfiltered",
                          req->user_id, q->fail_why[0] ? q->fail_why : "no answer");
        return;
    }
    int attrs_ok = q->attrs_state == P_DONE;
    if (!attrs_ok && q->cands.n) {
        query_add_degraded(q, "policy");
        if (personal && !q->policy_pushed) {
            query_reply_error(q, "policy_unavailable",
                              "the catalogue could not be read to apply user %s's policy (%s)",
                              req->user_id, q->fail_why);
            return;
        }
    }
#define FAILED(s) ((s) == P_FAIL || (s) == P_CUT)
    int sources_failed = (q->plan.use_vector ? FAILED(q->vec_state) : 1) &&
                         (q->plan.use_graph ? FAILED(q->graph_state) : 1);
#undef FAILED
    if ((q->plan.use_vector || q->plan.use_graph) && sources_failed) {
        /* A source cut by the search's own time (its budget or the deadline) might
         * have answered with more of it: that is the deadline's doing, not a backend
         * that could not answer. */
        int cut = (q->plan.use_vector && q->vec_state == P_CUT) ||
                  (q->plan.use_graph && q->graph_state == P_CUT);
        if (cut)
            query_reply_error(q, "deadline", "no backend answered before the deadline: %s",
                              q->fail_why[0] ? q->fail_why : "none could run");
        else
            query_reply_error(q, "no_backend", "no backend answered: %s",
                              q->fail_why[0] ? q->fail_why : "none could run");
        return;
    }
    /* keep what the catalogue knows and the rules allow */
    size_t kept = 0;
    for (size_t i = 0; i < q->cands.n; i++) {
        hsc_candidate *c = &q->cands.c[i];
        const char *why = NULL;
        int ok = (!attrs_ok || c->has_attrs) &&
                 hsc_rank_allows(&req->filters, personal ? &q->policy : NULL, c, &why);
        if (ok) {
            c->policy_score = personal ? hsc_rank_policy_score(&q->policy, &c->attrs) : 0;
            if (kept != i)
                q->cands.c[kept] = *c;
            kept++;
        } else {
            hsc_candidate_clear(c);
        }
    }
    q->cands.n = kept;
    if (attrs_ok && q->gseed_attrs)
        score_shared_tags(q);
    /* never the seeds themselves; positions move with the sort, so the index is rebuilt */
    q->cands.n = hsc_rank_select(q->cands.c, q->cands.n, &e->fusion, req);
    query_cands_reindex(&q->cands);
    q->t.rank += query_since_us(t);
    size_t top = q->cands.n < (size_t)req->k ? q->cands.n : (size_t)req->k;
    if (query_start_rels(q, top))
        return;
    query_reply_ok(q);
}

void query_maybe_rank(struct qreq *q)
{
    if (q->replied || q->phase != PH_ATTRS)
        return;
    if (q->attrs_state == P_RUN || q->policy_state == P_RUN)
        return;
    rank(q);
}

void query_check_backends_done(struct qreq *q)
{
    if (q->replied || q->phase != PH_BACKENDS)
        return;
    if (q->vec_state == P_RUN || q->vec_state == P_WAIT || q->graph_state == P_RUN ||
        q->graph_state == P_WAIT)
        return;
    query_start_attrs(q);
}

/* ---------------- plan and budgets ---------------- */

/* The backends' budget is spent: cut the legs still running and go on with what came. */
static void cut_backends(struct qreq *q)
{
    if (q->replied || q->phase != PH_BACKENDS)
        return;
    if (q->vec_state == P_RUN || q->vec_state == P_WAIT) {
        q->vec_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->vec_state); /* its connection is free for others */
        q->t.vector += query_since_us(q->started_vec);
        query_note_failure(q, "milvus", NULL);
        query_add_degraded(q, "vector");
    }
    if (q->graph_state == P_RUN || q->graph_state == P_WAIT) {
        if (q->graph_state == P_RUN)
            q->t.graph += query_since_us(q->started_graph);
        q->graph_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->graph_state);
        query_note_failure(q, "neo4j", NULL);
        query_add_degraded(q, "graph");
    }
    query_start_attrs(q);
}

static void on_due_backends(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    cut_backends(w->data);
}

/* The deadline: reply with what there is, starting nothing more. */
static void deadline_reached(struct qreq *q)
{
    if (q->replied)
        return;
    q->refs++; /* the reply may drop the last reference */
    q->out_of_time = 1;
    switch (q->phase) {
    case PH_VERSIONS:
    case PH_CACHE:
        query_reply_error(q, "deadline", "the cache did not answer before the deadline");
        break;
    case PH_POLICY:
        query_reply_error(q, "deadline", "the user's policy was not loaded before the deadline");
        break;
    case PH_BACKENDS:
        cut_backends(q);
        /* fall through */
    case PH_ATTRS:
        if (q->attrs_state == P_RUN) {
            q->attrs_state = P_CUT;
            q->t.policy += query_since_us(q->started_attrs);
            query_note_failure(q, "postgresql", NULL);
        }
        if (q->policy_state == P_RUN) {
            q->policy_state = P_CUT;
            query_note_failure(q, "postgresql", NULL);
        }
        query_maybe_rank(q);
        break;
    case PH_RELS:
        q->rels_state = P_CUT;
        hsc_http_cancel(q->e->http, &q->rels_state);
        query_add_degraded(q, "graph");
        query_reply_ok(q);
        break;
    }
    query_unref(q);
}

static void on_due_final(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    deadline_reached(w->data);
}

/*
 * The user's policy comes first (from the in-process copy when Redis says it
 * is current, else one PostgreSQL read), so that its hard constraints are
 * pushed into the Milvus filter and the Cypher query: filtering afterwards
 * alone could leave nothing of an over-fetched page for a user who excludes
 * what the query is near.
 */
void query_run_plan(struct qreq *q)
{
    struct query_engine *e = q->e;
    const hsc_search_request *req = q->req;
    q->phase = PH_POLICY;
    if (req->embedding && req->dim != (size_t)e->dim) {
        query_reply_error(q, "bad_request", "embedding: dimension %zu, the catalogue's is %d",
                          req->dim, e->dim);
        return;
    }
    if (req->user_id)
        query_start_policy(q);
    if (q->policy_state != P_RUN)
        query_plan_and_launch(q);
}

void query_plan_and_launch(struct qreq *q)
{
    struct query_engine *e = q->e;
    const hsc_search_request *req = q->req;
    q->phase = PH_BACKENDS;
    if (req->user_id && q->policy_state != P_DONE) {
        query_reply_error(q, "policy_unavailable",
                          "the policy of user %s could not be loaded (%s); results are withheld "
                          "rather than shown unfiltered",
                          req->user_id, q->fail_why[0] ? q->fail_why : "no answer");
        return;
    }
    q->policy_pushed = req->user_id != NULL;
    double remaining = (double)(q->deadline_ms - hsc_now_ms()) - e->reserve_ms;
    hsc_plan_input in = {
        .requested = req->strategy,
        .has_embedding = req->embedding != NULL,
        .has_seeds = req->seed_ids.n > 0,
        .has_user = req->user_id != NULL,
        .has_history = q->policy_state == P_DONE && q->policy.history.n > 0,
        .relationships = req->include_relationships,
        .k = req->k,
        .remaining_ms = remaining,
        .vector_p99 = hsc_latency_p99(&e->lat_vector),
        .graph_p99 = hsc_latency_p99(&e->lat_graph),
        .policy_p99 = hsc_latency_p99(&e->lat_policy),
        .vector_down = query_is_down(e, &e->lat_vector) || !hsc_milvus_ready(e->milvus),
        .graph_down = query_is_down(e, &e->lat_graph),
    };
    if (!hsc_milvus_ready(e->milvus) && !e->milvus_ensuring && !ev_is_active(&e->ensure_timer)) {
        /* the collection was released or went away (a Milvus restart): make it ready again */
        ev_timer_set(&e->ensure_timer, 0., 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    }
    /*
     * A backend the planner leaves out gets no new samples, so its p99 would
     * never recover: once a second one request tries it anyway.
     */
    double now = query_now_s(e);
    if (in.graph_p99 + in.policy_p99 > remaining && now - e->lat_graph.last_probe > 1.0) {
        e->lat_graph.last_probe = now;
        in.graph_p99 = 0;
    }
    if (in.vector_p99 + in.policy_p99 > remaining && now - e->lat_vector.last_probe > 1.0) {
        e->lat_vector.last_probe = now;
        in.vector_p99 = 0;
    }
    hsc_plan_make(&in, &q->plan);
    if (q->plan.error) {
        query_reply_error(q, "bad_request", "%s", q->plan.error);
        return;
    }
    /* a backend the planner left out because it is failing or slow is degraded */
    if (req->strategy == HSC_STRATEGY_AUTO && req->embedding && (req->seed_ids.n || req->user_id) &&
        !(q->plan.use_vector && q->plan.use_graph))
        query_add_degraded(q, q->plan.use_vector ? "graph" : "vector");
    double attrs_budget = 1.5 * in.policy_p99;
    attrs_budget = attrs_budget < 2               ? 2
                   : attrs_budget > remaining / 2 ? remaining / 2
                                                  : attrs_budget;
    double backends_ms = remaining - attrs_budget;
    /*
     * In a hybrid, a backend's budget is a multiple of its recent p99 (at
     * least budget_min_ms), so a hung server costs a search tens of
     * milliseconds, not its whole deadline, and the other backend answers.
     * With no history yet, or one source, the deadline is the budget.
     */
    double p99 = 0;
    if (q->plan.use_vector && e->lat_vector.n)
        p99 = in.vector_p99 > p99 ? in.vector_p99 : p99;
    if (q->plan.sequential) { /* one after the other; the enrich statement's own history */
        p99 = e->lat_enrich.n ? p99 + hsc_latency_p99(&e->lat_enrich) : 0;
    } else if (q->plan.use_graph && e->lat_graph.n) {
        double g = hsc_latency_p99(&e->lat_graph);
        p99 = g > p99 ? g : p99;
    }
    /* cutting the only source would turn a slow answer into none: only hybrids are cut */
    if (p99 > 0 && q->plan.use_vector && q->plan.use_graph) {
        double budget = e->budget_factor * p99;
        budget = budget < e->budget_min_ms ? e->budget_min_ms : budget;
        backends_ms = budget < backends_ms ? budget : backends_ms;
    }
    double backends_s = backends_ms / 1000.0;
    ev_timer_set(&q->due_backends, backends_s > 0 ? backends_s : 0, 0.);
    ev_timer_start(e->loop, &q->due_backends);
    if (q->plan.use_vector)
        query_start_vector(q);
    if (q->plan.use_graph) {
        if (q->plan.sequential)
            q->graph_state = q->vec_state == P_RUN ? P_WAIT : P_OFF;
        else
            query_start_graph(q);
    }
    query_check_backends_done(q);
}

/* ---------------- lifecycle ---------------- */

void query_qreq_free(struct qreq *q)
{
    struct query_engine *e = q->e;
    if (q->prev)
        q->prev->next = q->next;
    else
        e->active = q->next;
    if (q->next)
        q->next->prev = q->prev;
    e->inflight--;
    query_cands_free(&q->cands);
    for (size_t i = 0; q->gseed_attrs && i < q->gseeds.n; i++) {
        hsc_strlist_clear(&q->gseed_attrs[i].genres);
        hsc_strlist_clear(&q->gseed_attrs[i].themes);
    }
    free(q->gseed_attrs);
    free(q->gseed_found);
    hsc_strlist_clear(&q->gseeds);
    hsc_policy_clear(&q->policy);
    hsc_strlist_clear(&q->degraded);
    hsc_buf_free(&q->canon);
    hsc_search_request_clear(q->req);
    free(q->req);
    free(q);
}

void query_unref(struct qreq *q)
{
    if (--q->refs == 0) {
        if (!q->replied) {
            /* every path ends in a reply; reaching here is a bug, never a silent drop */
            hsc_log_error("search ended without a reply", "correlation_id", q->corr, NULL);
            query_reply_error(q, "internal", "the search ended without an answer");
        }
        query_qreq_free(q);
    }
}

int query_engine_search(struct query_engine *e, hsc_search_request *req, const char *correlation_id,
                        int64_t deadline_ms, int64_t queued_ms, query_done_fn done, void *arg,
                        hsc_err *err)
{
    struct qreq *q = calloc(1, sizeof(*q));
    hsc_search_request *own = malloc(sizeof(*own));
    if (!q || !own) {
        free(q);
        free(own);
        return hsc_err_set(err, HSC_ENOMEM, "search: out of memory");
    }
    *own = *req;
    memset(req, 0, sizeof(*req));
    q->e = e;
    q->req = own;
    q->refs = 1;
    q->done = done;
    q->arg = arg;
    q->deadline_ms = deadline_ms;
    q->queued_ms = queued_ms;
    q->t0_us = hsc_mono_us(); /* the wait for the next turn counts in the search's time */
    q->epoch = -1;
    q->polver = -1;
    snprintf(q->corr, sizeof(q->corr), "%s", correlation_id);
    q->cands.corr = q->corr;
    q->next = e->active;
    if (e->active)
        e->active->prev = q;
    e->active = q;
    e->inflight++;
    e->stats.requests++;
    ev_timer_init(&q->due_backends, on_due_backends, 0., 0.);
    q->due_backends.data = q;
    ev_timer_init(&q->due_final, on_due_final, 0., 0.);
    q->due_final.data = q;
    /* Started on the next loop turn, so even an answer known at once (expired,
     * no backend) reaches done after this has returned. */
    if (e->start_tail)
        e->start_tail->next_start = q;
    else
        e->start_head = q;
    e->start_tail = q;
    if (!ev_is_active(&e->start_timer)) {
        ev_timer_set(&e->start_timer, 0., 0.);
        ev_timer_start(e->loop, &e->start_timer);
    }
    return HSC_OK;
}

/* 1 if q waits for a backend call and every call it waits for goes to a backend that is down. */
static int waits_on_outage(const struct qreq *q)
{
    const char *on[4];
    int n = 0;
    if (q->phase == PH_VERSIONS || q->phase == PH_CACHE)
        on[n++] = "redis";
    if (q->policy_state == P_RUN || q->attrs_state == P_RUN)
        on[n++] = "postgresql";
    if (q->vec_state == P_RUN)
        on[n++] = "milvus";
    if (q->graph_state == P_RUN || q->rels_state == P_RUN)
        on[n++] = "neo4j";
    for (int i = 0; i < n; i++)
        if (!hsc_conn_is_down(on[i]))
            return 0;
    return n > 0;
}

/*
 * While a backend is down, the admitted searches that wait only on it are
 * held (admit.h): the client holds their calls back until it answers again
 * or their deadline passes, so they no longer count against the limit. Done
 * at each decision, the only moment the count matters; a walk of at most
 * query.max_inflight searches, and none while every backend is up.
 */
static void hold_outage_searches(struct query_engine *e)
{
    if (!any_down())
        return;
    for (struct qreq *o = e->active; o; o = o->next)
        if (o->ticket.admitted && !o->ticket.held && !o->replied && waits_on_outage(o))
            query_admit_hold(&e->admit, &o->ticket);
}

/*
 * Admission control (admit.h): 1 if q may start; else it is answered
 * `overloaded` now, on this loop turn like every other reply, before any
 * backend is asked.
 */
static int admit(struct qreq *q, double left_ms)
{
    struct query_engine *e = q->e;
    hold_outage_searches(e);
    struct query_admit_input in = {.strategy = q->req->strategy,
                                   .left_ms = left_ms,
                                   .queued_ms = q->queued_ms >= 0 ? (double)q->queued_ms : -1,
                                   .inflight = query_admit_counted(&e->admit),
                                   .now_s = query_now_s(e)};
    struct query_admit_decision d;
    query_admit_decide(&e->admit, &in, &d);
    if (d.verdict == QUERY_ADMIT_RUN) {
        q->ticket = query_admit_start(&e->admit, &in, &d);
        /* a search started while a backend is down says nothing of capacity at its end */
        q->conn_mark = conn_mark();
        q->met_outage = any_down();
        return 1;
    }
    hsc_metrics_inc(e->metrics, "hsc_query_overloaded_total",
                    d.verdict == QUERY_ADMIT_FULL ? "reason=\"inflight\"" : "reason=\"deadline\"",
                    1);
    q->plan.strategy = q->req->strategy;
    query_reply_error(q, HSC_SEARCH_ERROR_OVERLOADED, "%s", d.why);
    return 0;
}

static void start_search(struct qreq *q)
{
    struct query_engine *e = q->e;
    ev_now_update(e->loop); /* the deadline timers count from now, not the loop's last wake */
    double left = (double)(q->deadline_ms - hsc_now_ms() - e->reserve_ms) / 1000.0;
    if (left <= 0) {
        query_reply_error(q, "deadline", "the deadline passed before the search started");
        query_unref(q);
        return;
    }
    if (!admit(q, left * 1000.0)) {
        query_unref(q);
        return;
    }
    ev_timer_set(&q->due_final, left, 0.);
    ev_timer_start(e->loop, &q->due_final);
    query_start_versions(q); /* the first reference passes to the versions step */
}

/* Starts what was queued before this turn; searches queued meanwhile wait for the next. */
void query_on_start_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct query_engine *e = w->data;
    struct qreq *q = e->start_head;
    e->start_head = e->start_tail = NULL;
    while (q) {
        struct qreq *next = q->next_start;
        q->next_start = NULL;
        start_search(q);
        q = next;
    }
    (void)loop;
    (void)revents;
}
