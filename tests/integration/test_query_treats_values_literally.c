/*
 * Values reach SQL, Cypher and Milvus filters only as parameters or escaped:
 * titles and genres holding quotes, backslashes, commas, braces, NULL and
 * ") or (" are stored as written in PostgreSQL and Neo4j, filter searches
 * match them exactly (and nothing else), and a title whose id is the word
 * NULL comes back with its attributes instead of silently dropping out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "it_query.h"

/* The awkward titles: id, title, genres (already in ingest's lower-case form). */
static const struct {
    const char *id, *title, *genres[2];
} ODD[] = {
    {"NULL", "NULL", {"sci\"fi", NULL}},
    {"q1", "O'Brien \"quoted\" \\ back", {"a\\b", "x,y"}},
    {"q2", ") or (1=1", {"{z}", ") or ("}},
    {"q3", "{braces}, commas", {"null", NULL}},
};
#define NODD (sizeof(ODD) / sizeof(ODD[0]))
#define NFILL 20

/* Writes the catalogue as hsc publish reads it; every embedding near the same point. */
static char *write_catalogue(struct it *t)
{
    static char path[128];
    snprintf(path, sizeof(path), "/tmp/hsc-it-literal-%d.jsonl", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < NODD + NFILL; i++) {
        json_t *o = json_object();
        char id[32], title[64];
        json_t *g = json_array(), *e = json_array();
        if (i < NODD) {
            json_object_set_new(o, "id", json_string(ODD[i].id));
            json_object_set_new(o, "title", json_string(ODD[i].title));
            for (int k = 0; k < 2 && ODD[i].genres[k]; k++)
                json_array_append_new(g, json_string(ODD[i].genres[k]));
        } else {
            snprintf(id, sizeof(id), "fill%02zu", i);
            snprintf(title, sizeof(title), "Filler %zu", i);
            json_object_set_new(o, "id", json_string(id));
            json_object_set_new(o, "title", json_string(title));
            json_array_append_new(g, json_string("drama"));
        }
        for (int d = 0; d < ITQ_DIM; d++)
            json_array_append_new(e, json_real(1.0 + 0.01 * (double)((i * 7 + (size_t)d) % 13)));
        json_object_set_new(o, "version", json_integer(1));
        json_object_set_new(o, "genres", g);
        json_object_set_new(o, "embedding", e);
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(o);
    }
    fclose(f);
    (void)t;
    return path;
}

/* PostgreSQL's title and genres of id, as JSON text; caller frees. */
static char *pg_row(struct it *t, const char *id)
{
    const char *params[1] = {id};
    PGresult *r = PQexecParams(t->pg,
                               "SELECT json_build_array(title, to_json(genres))::text FROM content "
                               "WHERE id = $1",
                               1, NULL, params, NULL, NULL, 0);
    char *s = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                  ? strdup(PQgetvalue(r, 0, 0))
                  : NULL;
    PQclear(r);
    return s;
}

/* The ids a vector search with exactly one genre filter returns, in a sorted JSON array. */
static char *search_genre(struct itq *q, struct it *t, const char *genre, const char *want_title_of,
                          int *title_ok)
{
    hsc_search_request req;
    itq_request_like(t, "fill05", &req);
    req.k = 50;
    req.cache = false;
    req.strategy = HSC_STRATEGY_VECTOR_ONLY;
    hsc_strlist_push(&req.filters.genres, genre, strlen(genre));
    struct itq_result res;
    itq_search_ok(q, &req, &res);
    json_t *ids = json_array();
    *title_ok = want_title_of == NULL;
    for (size_t i = 0; i < res.reply.nresults; i++) {
        const hsc_search_result *r = &res.reply.results[i];
        json_array_append_new(ids, json_string(r->id));
        for (size_t k = 0; want_title_of && k < NODD; k++)
            if (!strcmp(ODD[k].id, r->id) && !strcmp(want_title_of, r->id))
                *title_ok = r->title && !strcmp(r->title, ODD[k].title);
    }
    char *s = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
    return s;
}

static void test_odd_values_are_stored_and_searched_literally(void **s)
{
    struct it t;
    struct itq q;
    it_setup(&t);
    itq_pipeline(&q, &t, "it-literal");
    assert_int_equal(it_publish(&t, "content", write_catalogue(&t)), 0);
    itq_wait_stores(&t, NODD + NFILL);

    /* PostgreSQL holds each value as written */
    for (size_t i = 0; i < NODD; i++) {
        json_t *want = json_array(), *g = json_array();
        json_array_append_new(want, json_string(ODD[i].title));
        for (int k = 0; k < 2 && ODD[i].genres[k]; k++)
            json_array_append_new(g, json_string(ODD[i].genres[k]));
        json_array_append_new(want, g);
        char *row = pg_row(&t, ODD[i].id);
        json_error_t je;
        json_t *got = row ? json_loads(row, 0, &je) : NULL;
        if (!got || !json_equal(got, want))
            fail_msg("postgresql row of %s: %s", ODD[i].id, row ? row : "(none)");
        json_decref(got);
        json_decref(want);
        free(row);
    }
    /* and so does Neo4j, through parameters */
    for (size_t i = 0; i < NODD; i++)
        for (int k = 0; k < 2 && ODD[i].genres[k]; k++) {
            json_t *p = json_pack("{s:s,s:s}", "id", ODD[i].id, "g", ODD[i].genres[k]);
            char *pj = json_dumps(p, JSON_COMPACT);
            json_t *r = it_neo4j("MATCH (c:Content {id: $id})-[]->(g:Genre {name: $g}) "
                                 "RETURN count(g) AS n",
                                 pj);
            char *rs = r ? json_dumps(r, JSON_COMPACT) : NULL;
            if (!rs || !strstr(rs, "1"))
                fail_msg("neo4j: %s has no genre node named %s (%s)", ODD[i].id, ODD[i].genres[k],
                         rs ? rs : "no answer");
            free(rs);
            json_decref(r);
            free(pj);
            json_decref(p);
        }

    const char *qa[] = {ITQ_QUERY_ARGS, "--set", "query.group=it-literal-query", NULL};
    pid_t query = it_spawn(&t, "hsc-query", qa);
    itq_client(&q);
    /* a Milvus filter on each odd genre finds exactly its title, with its attributes */
    static const struct {
        const char *genre, *ids;
    } CASES[] = {
        {"sci\"fi", "[\"NULL\"]"}, {"a\\b", "[\"q1\"]"},
        {"x,y", "[\"q1\"]"},       {"x", "[]"},
        {"{z}", "[\"q2\"]"},       {") or (", "[\"q2\"]"},
        {"null", "[\"q3\"]"},      {"\") or (\"", "[]"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        int title_ok;
        const char *who = strcmp(CASES[i].ids, "[]") ? CASES[i].ids + 2 : NULL;
        char idbuf[16] = "";
        if (who) {
            snprintf(idbuf, sizeof(idbuf), "%.*s", (int)strcspn(who, "\""), who);
            who = idbuf;
        }
        char *got = search_genre(&q, &t, CASES[i].genre, who, &title_ok);
        fprintf(stderr, "-- genre %s: %s\n", CASES[i].genre, got);
        if (strcmp(got, CASES[i].ids))
            fail_msg("genre filter %s returned %s, want %s", CASES[i].genre, got, CASES[i].ids);
        if (!title_ok)
            fail_msg("genre filter %s: %s came back without its title", CASES[i].genre, who);
        free(got);
    }
    assert_int_equal(it_stop(query, SIGTERM, 30000), 0);
    itq_done(&q);
    it_teardown(&t);
    (void)s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_odd_values_are_stored_and_searched_literally),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
