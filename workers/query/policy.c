/*
 * Loads the user's policy, preferences and recent positive history for a
 * search: one PostgreSQL read, kept in-process by version so a search whose
 * version Redis confirms skips the read; a fresh read publishes its version
 * to Redis for the searches after it.
 */
#include "policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcache.h"
#include "search_internal.h"

const char QUERY_POLICY_SQL[] =
    "SELECT json_build_object(\n"
    "  'version', coalesce(p.version, 0),\n"
    "  'excluded_genres', coalesce(p.excluded_genres, '{}'),\n"
    "  'max_maturity', p.max_maturity,\n"
    "  'languages', coalesce(p.languages, '{}'),\n"
    /* learned weights, each event halving every $3 days before the user's newest one
     * (workers/query/rank.h: hsc_rank_policy_score bounds them) */
    "  'prefs', (SELECT coalesce(json_agg(json_build_array(dim, name, weight)), '[]') FROM (\n"
    "    SELECT dim, name, sum(weight) AS weight FROM (\n"
    "      SELECT t.dim, t.name, sum(hsc_learning_delta(le.kind, le.value) *\n"
    "        power(0.5, (le.newest - le.ts) / (86400000.0 * $3::float8))) AS weight\n"
    "      FROM (SELECT kind, value, content_id, ts, max(ts) OVER () AS newest\n"
    "            FROM learning_events WHERE user_id = $1 ORDER BY ts DESC LIMIT 1000) le\n"
    "      JOIN content c ON c.id = le.content_id AND NOT c.deleted\n"
    "      CROSS JOIN LATERAL (SELECT 'genre'::text AS dim, g AS name FROM unnest(c.genres) g\n"
    "                          UNION ALL SELECT 'theme'::text, th FROM unnest(c.themes) th) t\n"
    "      GROUP BY 1, 2\n"
    /* explicit weights (policy events, user_preference_overrides) add to the learned ones */
    "      UNION ALL SELECT dim, name, weight FROM user_preference_overrides WHERE user_id = $1) "
    "u\n"
    "    GROUP BY 1, 2) w),\n"
    "  'blocked_ids', coalesce(p.blocked_ids, '{}'),\n"
    "  'history', (SELECT coalesce(json_agg(content_id ORDER BY ts DESC), '[]') FROM (\n"
    "      SELECT content_id, max(ts) AS ts FROM learning_events\n"
    "      WHERE user_id = $1 AND (kind IN ('like', 'complete') OR (kind = 'rating' AND value >= "
    "4))\n"
    "      GROUP BY content_id ORDER BY 2 DESC LIMIT $2::int) h))\n"
    "FROM (SELECT 1) one LEFT JOIN user_policies p ON p.user_id = $1";

static struct query_policy_slot *policy_slot(struct query_engine *e, const char *user)
{
    return &e->policies[hsc_qcache_hash(user, strlen(user)) % QUERY_POLICY_SLOTS];
}

/* Appends the strings of a JSON array to l (other members are skipped). */
static void push_strings(hsc_strlist *l, const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
        if (json_is_string(v))
            hsc_strlist_push(l, json_string_value(v), json_string_length(v));
}

int query_policy_parse(const char *text, const char *user, hsc_policy *p)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return HSC_EINVAL;
    }
    memset(p, 0, sizeof(*p));
    p->user_id = strdup(user);
    p->version = json_integer_value(json_object_get(o, "version"));
    json_t *mm = json_object_get(o, "max_maturity");
    p->has_max_maturity = json_is_integer(mm);
    p->max_maturity = (int)json_integer_value(mm);
    push_strings(&p->excluded_genres, json_object_get(o, "excluded_genres"));
    push_strings(&p->languages, json_object_get(o, "languages"));
    push_strings(&p->blocked_ids, json_object_get(o, "blocked_ids"));
    push_strings(&p->history, json_object_get(o, "history"));
    json_t *prefs = json_object_get(o, "prefs");
    p->prefs = calloc(json_array_size(prefs) + 1, sizeof(*p->prefs));
    size_t i;
    json_t *v;
    json_array_foreach (prefs, i, v) {
        const char *name = json_string_value(json_array_get(v, 1));
        if (!p->prefs || !name)
            continue;
        const char *dim = json_string_value(json_array_get(v, 0));
        p->prefs[p->nprefs].theme = dim && !strcmp(dim, "theme");
        p->prefs[p->nprefs].name = strdup(name);
        p->prefs[p->nprefs].weight = json_number_value(json_array_get(v, 2));
        p->nprefs++;
    }
    json_decref(o);
    return HSC_OK;
}

static void on_raised(void *arg, const redisReply *reply, const hsc_err *err)
{
    (void)reply;
    (void)err; /* best effort: the next request simply loads the policy again */
    query_unref(arg);
}

static void on_policy(void *arg, PGresult *res, const hsc_err *err)
{
    struct qreq *q = arg;
    struct query_engine *e = q->e;
    query_booked(e, &e->lat_policy, "postgresql", "policy",
                 query_since_us(q->started_pol) / 1000.0);
    if (!query_call_counts(q, q->policy_state, q->started_pol, &q->t.policy))
        return;
    if (!res || PQntuples(res) != 1 ||
        query_policy_parse(PQgetvalue(res, 0, 0), q->req->user_id, &q->policy)) {
        if (!res)
            query_backend_failed(e, &e->lat_policy, err);
        query_note_failure(q, "postgresql", err);
        q->policy_state = P_FAIL;
    } else {
        q->policy_state = P_DONE;
        struct query_policy_slot *s = policy_slot(e, q->req->user_id);
        hsc_policy_clear(&s->policy);
        s->used = hsc_policy_copy(&s->policy, &q->policy) == HSC_OK;
        if (e->redis && q->polver < q->policy.version) {
            /* Publish the version so later requests can trust the cached copy. */
            char *key = hsc_strcat2(e->policy_prefix, q->req->user_id);
            long long v = q->policy.version;
            hsc_err e2 = {0};
            q->refs++;
            if (!key ||
                hsc_redis_raise(e->redis, (const char *const *)&key, &v, 1, on_raised, q, &e2))
                q->refs--;
            free(key);
        }
    }
    if (q->phase == PH_POLICY)
        query_plan_and_launch(q);
    query_unref(q);
}

void query_start_policy(struct qreq *q)
{
    struct query_engine *e = q->e;
    struct query_policy_slot *s = policy_slot(e, q->req->user_id);
    if (s->used && q->polver >= 0 && !strcmp(s->policy.user_id, q->req->user_id) &&
        s->policy.version == q->polver && hsc_policy_copy(&q->policy, &s->policy) == HSC_OK) {
        q->policy_state = P_DONE;
        q->policy_pushed = 1;
        return;
    }
    char lim[16], half[32];
    snprintf(lim, sizeof(lim), "%d", e->history_seeds);
    snprintf(half, sizeof(half), "%.17g", e->fusion.half_life_days);
    const char *params[3] = {q->req->user_id, lim, half};
    hsc_err err = {0};
    q->refs++;
    q->started_pol = hsc_mono_us();
    q->policy_state = P_RUN;
    if (hsc_pg_query(query_pick_pg(e), QUERY_POLICY_SQL, 3, params, on_policy, q, &err)) {
        q->refs--;
        q->policy_state = P_FAIL;
        query_note_failure(q, "postgresql", &err);
    }
}
