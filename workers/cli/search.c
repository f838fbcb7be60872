/*
 * hsc search: one search over request/reply, printed as a table or as JSON.
 * Built on the public client API (include/hsc/client.h), so it is also the
 * smallest example of using it.
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hsc/client.h"
#include "hsc/codec.h"
#include "util.h"

const char CLI_SEARCH_USAGE[] =
    "Usage: hsc search [options]\n"
    "Sends one search to hsc-query and prints the reply.\n"
    "  --user ID              personalise for this user (policy and preferences)\n"
    "  --seed ID              a seed title for graph search (repeatable)\n"
    "  --like ID              use the stored embedding of title ID (read from PostgreSQL)\n"
    "  --embedding JSON       the query embedding as a JSON array of numbers\n"
    "  --k N                  results wanted (1-1000, default 10)\n"
    "  --genre G              only these genres (repeatable)\n"
    "  --exclude ID           never this title (repeatable)\n"
    "  --language L           only this language\n"
    "  --year-min Y, --year-max Y, --max-maturity N\n"
    "  --relationships        include each result's links to the seeds\n"
    "  --strategy S           auto (default), vector_only, graph_only, hybrid_parallel,\n"
    "                         hybrid_sequential, cached_only\n"
    "  --no-cache             neither read nor write the result cache\n"
    "  --timeout MS           deadline (default client.timeout_ms)\n"
    "  --repeat N             send the same search N times, one after another\n"
    "  --json                 print the reply as JSON (one object per line)\n"
    "Exit status: 0 ok; 1 an error reply or no reply; 75 refused as overloaded (hsc-query\n"
    "started nothing: retry later); 2 bad options.\n";

/* The exit status of a search refused as overloaded: sysexits.h's EX_TEMPFAIL, "try again". */
#define SEARCH_EXIT_OVERLOADED 75

/* The state of one run: the reply (or error) of the search in flight. */
struct run {
    int done, rc, json;
    struct ev_loop *loop;
};

static json_t *reply_json(const hsc_search_reply *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "correlation_id", json_string(r->correlation_id));
    json_object_set_new(o, "status", json_string(r->ok ? "ok" : "error"));
    if (!r->ok)
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s}", "code", r->error_code ? r->error_code : "",
                                      "message", r->error_message ? r->error_message : ""));
    json_object_set_new(o, "strategy", json_string(hsc_strategy_name(r->strategy)));
    if (r->plan)
        json_object_set_new(o, "plan", json_string(r->plan));
    json_object_set_new(o, "cache_hit", json_boolean(r->cache_hit));
    json_t *d = json_array();
    for (size_t i = 0; i < r->degraded.n; i++)
        json_array_append_new(d, json_string(r->degraded.v[i]));
    json_object_set_new(o, "degraded", d);
    json_t *res = json_array();
    for (size_t i = 0; i < r->nresults; i++) {
        const hsc_search_result *x = &r->results[i];
        json_t *g = json_array();
        for (size_t j = 0; j < x->genres.n; j++)
            json_array_append_new(g, json_string(x->genres.v[j]));
        json_t *e = json_pack("{s:s, s:f, s:f, s:f, s:f, s:s, s:o}", "id", x->id, "score", x->score,
                              "vector_score", x->vector_score, "graph_score", x->graph_score,
                              "policy_score", x->policy_score, "title", x->title ? x->title : "",
                              "genres", g);
        if (x->has_rels) {
            json_t *rels = json_array();
            for (size_t j = 0; j < x->nrels; j++)
                json_array_append_new(rels,
                                      json_pack("{s:s, s:s, s:f}", "type", x->rels[j].type, "seed",
                                                x->rels[j].seed, "score", x->rels[j].score));
            json_object_set_new(e, "relationships", rels);
        }
        json_array_append_new(res, e);
    }
    json_object_set_new(o, "results", res);
    const hsc_search_timings *t = &r->timings_us;
    json_object_set_new(o, "timings_us",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)t->total,
                                  "cache", (json_int_t)t->cache, "vector", (json_int_t)t->vector,
                                  "graph", (json_int_t)t->graph, "policy", (json_int_t)t->policy,
                                  "rank", (json_int_t)t->rank));
    return o;
}

static void print_table(const hsc_search_reply *r, double round_trip_ms)
{
    if (!r->ok && r->error_code && !strcmp(r->error_code, HSC_SEARCH_ERROR_OVERLOADED)) {
        printf("overloaded: hsc-query refused the search at once and started nothing; retry "
               "later\n  %s\n",
               r->error_message ? r->error_message : "");
        return;
    }
    if (!r->ok) {
        printf("error %s: %s\n", r->error_code ? r->error_code : "?",
               r->error_message ? r->error_message : "");
        return;
    }
    printf("strategy  %s%s%s%s\n", hsc_strategy_name(r->strategy), r->plan ? " (" : "",
           r->plan ? r->plan : "", r->plan ? ")" : "");
    printf("cache     %s", r->cache_hit ? "hit" : "miss");
    printf("    degraded  ");
    for (size_t i = 0; i < r->degraded.n; i++)
        printf("%s%s", i ? ", " : "", r->degraded.v[i]);
    printf("%s\n", r->degraded.n ? "" : "-");
    const hsc_search_timings *t = &r->timings_us;
    printf("timings   total %.1f ms | cache %.1f | vector %.1f | graph %.1f | policy %.1f | "
           "rank %.2f | round trip %.1f ms\n",
           t->total / 1e3, t->cache / 1e3, t->vector / 1e3, t->graph / 1e3, t->policy / 1e3,
           t->rank / 1e3, round_trip_ms);
    printf("\n %3s  %-14s %7s %7s %7s %7s  %-32s %s\n", "#", "id", "score", "vector", "graph",
           "policy", "title", "genres");
    for (size_t i = 0; i < r->nresults; i++) {
        const hsc_search_result *x = &r->results[i];
        char genres[256] = "";
        for (size_t j = 0; j < x->genres.n; j++) {
            size_t n = strlen(genres);
            snprintf(genres + n, sizeof(genres) - n, "%s%s", j ? ", " : "", x->genres.v[j]);
        }
        printf(" %3zu  %-14s %7.3f %7.3f %7.3f %7.3f  %-32.32s %s\n", i + 1, x->id, x->score,
               x->vector_score, x->graph_score, x->policy_score, x->title ? x->title : "", genres);
        for (size_t j = 0; j < x->nrels; j++)
            printf("      %s %s (%.2f)\n", x->rels[j].type, x->rels[j].seed, x->rels[j].score);
    }
    if (!r->nresults)
        printf("  (no results)\n");
}

static int64_t sent_at;

static void on_reply(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct run *run = arg;
    run->done = 1;
    double rt = (hsc_mono_us() - sent_at) / 1000.0;
    if (!r) {
        fprintf(stderr, "hsc search: %s\n", err->msg);
        run->rc = 1;
        return;
    }
    run->rc = r->ok ? 0
              : r->error_code && !strcmp(r->error_code, HSC_SEARCH_ERROR_OVERLOADED)
                  ? SEARCH_EXIT_OVERLOADED
                  : 1;
    if (run->json) {
        json_t *o = reply_json(r);
        json_object_set_new(o, "round_trip_us", json_integer((json_int_t)(rt * 1000)));
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    } else {
        print_table(r, rt);
    }
    fflush(stdout);
}

/* Reads the stored embedding of a title from the canonical catalogue. */
static int embedding_of(hsc_config *cfg, const char *id, hsc_search_request *req)
{
    PGconn *c = PQconnectdb(hsc_config_str(cfg, "pg.url"));
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "hsc search: --like: cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return 2;
    }
    const char *params[1] = {id};
    PGresult *r = PQexecParams(c, "SELECT embedding FROM content WHERE id = $1 AND NOT deleted", 1,
                               NULL, params, NULL, NULL, 1);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0) ||
        PQgetlength(r, 0, 0) % 4) {
        fprintf(stderr, "hsc search: --like: title %s has no stored embedding\n", id);
        rc = 2;
    } else {
        size_t n = (size_t)PQgetlength(r, 0, 0) / 4;
        const unsigned char *p = (const unsigned char *)PQgetvalue(r, 0, 0);
        req->embedding = malloc(n * sizeof(float));
        for (size_t i = 0; req->embedding && i < n; i++) {
            uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&req->embedding[i], &b, 4);
        }
        req->dim = n;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int embedding_json(const char *text, hsc_search_request *req)
{
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!json_is_array(a) || !json_array_size(a)) {
        fprintf(stderr, "hsc search: --embedding: not a JSON array of numbers\n");
        json_decref(a);
        return 2;
    }
    req->dim = json_array_size(a);
    req->embedding = malloc(req->dim * sizeof(float));
    for (size_t i = 0; req->embedding && i < req->dim; i++)
        req->embedding[i] = (float)json_number_value(json_array_get(a, i));
    json_decref(a);
    return 0;
}

int cli_search(hsc_config *cfg, int argc, char **argv)
{
    hsc_search_request req;
    hsc_search_request_init(&req);
    int json = 0, repeat = 1, timeout = 0, rc = 0;
    long long v;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(CLI_SEARCH_USAGE, stdout);
            hsc_search_request_clear(&req);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1, takes = 0;
        } else if (!strcmp(a, "--relationships")) {
            req.include_relationships = true, takes = 0;
        } else if (!strcmp(a, "--no-cache")) {
            req.cache = false, takes = 0;
        } else if (!val) {
            fprintf(stderr, "hsc search: %s needs a value\n%s", a, CLI_SEARCH_USAGE);
            rc = 2;
        } else if (!strcmp(a, "--user")) {
            free(req.user_id);
            req.user_id = strdup(val);
        } else if (!strcmp(a, "--seed")) {
            hsc_strlist_push(&req.seed_ids, val, strlen(val));
        } else if (!strcmp(a, "--genre")) {
            hsc_strlist_push(&req.filters.genres, val, strlen(val));
        } else if (!strcmp(a, "--exclude")) {
            hsc_strlist_push(&req.filters.exclude_ids, val, strlen(val));
        } else if (!strcmp(a, "--language")) {
            free(req.filters.language);
            req.filters.language = strdup(val);
        } else if (!strcmp(a, "--like")) {
            rc = embedding_of(cfg, val, &req);
        } else if (!strcmp(a, "--embedding")) {
            rc = embedding_json(val, &req);
        } else if (!strcmp(a, "--strategy")) {
            if (hsc_strategy_parse(val, &req.strategy)) {
                fprintf(stderr, "hsc search: --strategy: unknown '%s'\n", val);
                rc = 2;
            }
        } else if (hsc_parse_ll(val, &v)) {
            fprintf(stderr, "hsc search: %s: '%s' is not a number\n", a, val);
            rc = 2;
        } else if (!strcmp(a, "--k")) {
            req.k = (int)v;
        } else if (!strcmp(a, "--year-min")) {
            req.filters.year_min = (int32_t)v, req.filters.has |= HSC_FILTER_YEAR_MIN;
        } else if (!strcmp(a, "--year-max")) {
            req.filters.year_max = (int32_t)v, req.filters.has |= HSC_FILTER_YEAR_MAX;
        } else if (!strcmp(a, "--max-maturity")) {
            req.filters.max_maturity = (int32_t)v, req.filters.has |= HSC_FILTER_MAX_MATURITY;
        } else if (!strcmp(a, "--timeout")) {
            timeout = (int)v;
        } else if (!strcmp(a, "--repeat")) {
            repeat = (int)v;
        } else {
            fprintf(stderr, "hsc search: unknown option '%s'\n%s", a, CLI_SEARCH_USAGE);
            rc = 2;
        }
        i += takes;
    }
    if (rc) {
        hsc_search_request_clear(&req);
        return rc;
    }
    struct ev_loop *loop = ev_loop_new(0);
    hsc_err err = {0};
    hsc_client *c = hsc_client_new(loop, cfg, &err);
    if (!c) {
        fprintf(stderr, "hsc search: %s\n", err.msg);
        hsc_search_request_clear(&req);
        ev_loop_destroy(loop);
        return 2;
    }
    for (int n = 0; n < repeat && rc == 0; n++) {
        struct run run = {.json = json, .loop = loop};
        sent_at = hsc_mono_us();
        if (hsc_client_search(c, &req, timeout, on_reply, &run, NULL, &err)) {
            fprintf(stderr, "hsc search: %s\n", err.msg);
            rc = 2;
            break;
        }
        while (!run.done)
            ev_run(loop, EVRUN_ONCE);
        rc = run.rc;
        if (!json && n + 1 < repeat)
            printf("\n");
    }
    hsc_client_free(c);
    ev_loop_destroy(loop);
    hsc_search_request_clear(&req);
    return rc;
}
