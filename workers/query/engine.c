/*
 * The engine's life: its settings read from the configuration, the backend
 * clients created and freed, and Milvus made ready (and made ready again
 * after a restart), so that searches find their clients in place.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "search_internal.h"

static void on_ensured(void *arg, const hsc_milvus_result *res, const hsc_err *err)
{
    struct query_engine *e = arg;
    e->milvus_ensuring = 0;
    if (err && err->code != HSC_ECANCELED) {
        hsc_log_warn("milvus not ready; retrying", "error", err->msg, NULL);
        ev_timer_set(&e->ensure_timer, 2.0, 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    } else if (res) {
        hsc_log_info("milvus ready", "scope", e->scope, NULL);
    }
}

static void on_ensure_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct query_engine *e = w->data;
    hsc_err err = {0};
    (void)loop;
    (void)revents;
    if (e->milvus_ensuring || hsc_milvus_ready(e->milvus))
        return;
    e->milvus_ensuring = 1;
    if (hsc_milvus_ensure(e->milvus, on_ensured, e, &err)) {
        e->milvus_ensuring = 0;
        ev_timer_set(&e->ensure_timer, 2.0, 0.);
        ev_timer_start(e->loop, &e->ensure_timer);
    }
}

/* The engine's integer settings and the configuration key each comes from. */
static const struct {
    const char *key;
    size_t offset;
} INT_SETTINGS[] = {
    {"milvus.dimension", offsetof(struct query_engine, dim)},
    {"query.overfetch", offsetof(struct query_engine, overfetch)},
    {"query.history_seeds", offsetof(struct query_engine, history_seeds)},
    {"query.cache_ttl_personal_s", offsetof(struct query_engine, ttl_personal_s)},
    {"query.cache_ttl_s", offsetof(struct query_engine, ttl_s)},
    {"query.reserve_ms", offsetof(struct query_engine, reserve_ms)},
    {"query.budget_min_ms", offsetof(struct query_engine, budget_min_ms)},
};

int query_engine_init(struct query_engine *e, struct ev_loop *loop, const hsc_config *cfg,
                      hsc_err *err)
{
    memset(e, 0, sizeof(*e));
    e->loop = loop;
    snprintf(e->epoch_key, sizeof(e->epoch_key), "%s", hsc_config_str(cfg, "redis.epoch_key"));
    snprintf(e->policy_prefix, sizeof(e->policy_prefix), "%s",
             hsc_config_str(cfg, "redis.policy_key_prefix"));
    snprintf(e->cache_prefix, sizeof(e->cache_prefix), "%s",
             hsc_config_str(cfg, "redis.cache_prefix"));
    snprintf(e->scope, sizeof(e->scope), "%s/%s/%s", hsc_config_str(cfg, "milvus.url"),
             hsc_config_str(cfg, "milvus.collection"), e->epoch_key);
    for (size_t i = 0; i < sizeof(INT_SETTINGS) / sizeof(INT_SETTINGS[0]); i++)
        *(int *)((char *)e + INT_SETTINGS[i].offset) =
            (int)hsc_config_int(cfg, INT_SETTINGS[i].key);
    e->budget_factor = hsc_config_double(cfg, "query.budget_factor");
    e->cooldown_s = (double)hsc_config_int(cfg, "query.down_cooldown_ms") / 1000.0;
    e->fusion = (hsc_fusion){
        .rrf = !strcmp(hsc_config_str(cfg, "query.fusion"), "rrf"),
        .rrf_k = (int)hsc_config_int(cfg, "query.rrf_k"),
        .w_vector = hsc_config_double(cfg, "query.weight_vector"),
        .w_graph = hsc_config_double(cfg, "query.weight_graph"),
        .w_policy = hsc_config_double(cfg, "query.weight_policy"),
        .history_weight = hsc_config_double(cfg, "query.history_weight"),
        .half_life_days = hsc_config_double(cfg, "query.preference_half_life_days"),
        .shared_tag = hsc_config_double(cfg, "query.graph_shared_tag"),
    };
    struct query_admit_settings admit = {
        .on = hsc_config_bool(cfg, "query.admit"),
        .min_inflight = (int)hsc_config_int(cfg, "query.admit_min_inflight"),
        .max_inflight = (int)hsc_config_int(cfg, "query.max_inflight"),
        .slow_ratio = hsc_config_double(cfg, "query.admit_slow_ratio"),
        .target_ms = (double)hsc_config_int(cfg, "query.admit_target_ms"),
    };
    query_admit_init(&e->admit, &admit);
    int window = (int)hsc_config_int(cfg, "query.latency_window");
    e->policies = calloc(QUERY_POLICY_SLOTS, sizeof(*e->policies));
    if (!e->policies || hsc_latency_init(&e->lat_vector, window) ||
        hsc_latency_init(&e->lat_graph, window) || hsc_latency_init(&e->lat_policy, window) ||
        hsc_latency_init(&e->lat_enrich, window) || hsc_latency_init(&e->lat_cache, window)) {
        query_engine_destroy(e);
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    /* A search never waits on a retry: its deadline is the retry policy. */
    char schema[1024];
    struct hsc_milvus_settings ms;
    hsc_milvus_settings_load(cfg, &ms, schema, sizeof(schema));
    ms.retries = 0;
    struct hsc_neo4j_settings ns;
    hsc_neo4j_settings_load(cfg, &ns);
    ns.retries = 0;
    int tmo = (int)hsc_config_int(cfg, "query.default_deadline_ms");
    /* the engine's timers enforce each search's budget; this only bounds abandoned calls */
    ms.timeout_ms = ns.timeout_ms = tmo > 10000 ? tmo : 10000;
    e->npg = (int)hsc_config_int(cfg, "query.pg_connections");
    e->pg = calloc((size_t)e->npg, sizeof(*e->pg));
    if (!e->pg || !(e->http = hsc_http_new(loop, err)) ||
        !(e->milvus = hsc_milvus_new(loop, e->http, &ms, err)) ||
        !(e->neo = hsc_neo4j_new(loop, e->http, &ns, err)) ||
        !(e->redis = hsc_redis_new(loop, hsc_config_str(cfg, "redis.url"),
                                   (int)hsc_config_int(cfg, "redis.timeout_ms"), err))) {
        query_engine_destroy(e);
        return err->code ? err->code : hsc_err_set(err, HSC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < e->npg; i++)
        if (!(e->pg[i] = hsc_pg_new(loop, hsc_config_str(cfg, "pg.url"),
                                    (int)hsc_config_int(cfg, "pg.query_timeout_ms"), err))) {
            query_engine_destroy(e);
            return err->code;
        }
    ev_timer_init(&e->ensure_timer, on_ensure_timer, 0., 0.);
    e->ensure_timer.data = e;
    ev_timer_start(loop, &e->ensure_timer);
    ev_timer_init(&e->start_timer, query_on_start_timer, 0., 0.);
    e->start_timer.data = e;
    return HSC_OK;
}

void query_engine_destroy(struct query_engine *e)
{
    if (e->loop) {
        ev_timer_stop(e->loop, &e->ensure_timer);
        ev_timer_stop(e->loop, &e->start_timer);
    }
    /* Requests still in flight are abandoned without a reply: their callers are gone. */
    while (e->start_head) {
        struct qreq *q = e->start_head;
        e->start_head = q->next_start;
        query_qreq_free(q);
    }
    e->start_tail = NULL;
    for (struct qreq *q = e->active; q; q = q->next) {
        ev_timer_stop(e->loop, &q->due_backends);
        ev_timer_stop(e->loop, &q->due_final);
        q->replied = 1;
    }
    hsc_http_free(e->http); /* cancels Milvus and Neo4j calls first */
    e->http = NULL;
    hsc_milvus_free(e->milvus);
    hsc_neo4j_free(e->neo);
    for (int i = 0; e->pg && i < e->npg; i++)
        hsc_pg_free(e->pg[i]);
    free(e->pg);
    hsc_redis_free(e->redis);
    for (int i = 0; e->policies && i < QUERY_POLICY_SLOTS; i++)
        hsc_policy_clear(&e->policies[i].policy);
    free(e->policies);
    hsc_latency_free(&e->lat_vector);
    hsc_latency_free(&e->lat_graph);
    hsc_latency_free(&e->lat_enrich);
    hsc_latency_free(&e->lat_policy);
    hsc_latency_free(&e->lat_cache);
    memset(e, 0, sizeof(*e));
}
