/*
 * A legacy catalogue for the migration tests and benchmark (header-only,
 * test code): titles with embeddings on the nodes and genre/theme/mood/
 * similar relationships, under labels and property names of the test's own
 * (so the mapping is exercised, and the pipeline's own :Content graph in the
 * same server is left alone), plus a legacy policy table in PostgreSQL.
 * Some nodes and rows are broken on purpose; the fixture lists them.
 */
#ifndef HSC_IT_LEGACY_H
#define HSC_IT_LEGACY_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* One node or row the migrator must report, and why. */
struct itl_broken {
    const char *kind; /* the problem name the report uses */
    char id[64];      /* the legacy id ("" for nodes without a usable one) */
};

/* What was generated. */
struct itl_fixture {
    char label[64], tag_label[64];
    int good, dim;                /* migratable titles and their embedding dimension */
    struct itl_broken broken[64]; /* every broken node and policy row */
    int nbroken, nbroken_nodes, nodes;
    int policies;            /* good legacy policy rows */
    long long relationships; /* legacy relationships of the good titles */
    char policy_prefix[64];  /* the test's own Redis key prefix for policy versions */
    char set[24][160];       /* the --set arguments that map this fixture */
    int nset;
};

static const char *const ITL_GENRES[] = {"Drama",    "Comedy",      "Horror",  "Sci-Fi",
                                         "Thriller", "Documentary", "Romance", "Animation"};
static const char *const ITL_THEMES[] = {"family",     "revenge",  "space travel",
                                         "friendship", "survival", "coming of age"};
static const char *const ITL_MOODS[] = {"dark", "uplifting", "tense", "quirky"};

/* A deterministic pseudo-random number in [0, 1) from a 64-bit state. */
static inline double itl_rand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static inline json_t *itl_vec(unsigned long long *s, int dim)
{
    json_t *v = json_array();
    for (int i = 0; i < dim; i++)
        json_array_append_new(v, json_real(itl_rand(s) * 2 - 1));
    return v;
}

static inline void itl_broken_add(struct itl_fixture *f, const char *kind, const char *id)
{
    struct itl_broken *b = &f->broken[f->nbroken++];
    b->kind = kind;
    snprintf(b->id, sizeof(b->id), "%s", id);
}

/* A good title's node as the legacy system stored it. */
static inline json_t *itl_title(struct itl_fixture *f, int i, unsigned long long *s)
{
    char uid[32], name[64];
    snprintf(uid, sizeof(uid), "m%06d", i);
    snprintf(name, sizeof(name), "Legacy title %d", i);
    static const char *const RATINGS[] = {"G", "PG", "PG-13", "R", "TV-MA"};
    static const char *const LANGS[] = {"en", "fr", "de", "ja"};
    json_t *g = json_array(), *t = json_array(), *m = json_array();
    int ng = 1 + i % 3;
    for (int k = 0; k < ng; k++)
        json_array_append_new(g, json_string(ITL_GENRES[(i * 7 + k * 3) % 8]));
    json_array_append_new(t, json_string(ITL_THEMES[i % 6]));
    json_array_append_new(m, json_string(ITL_MOODS[(i / 3) % 4]));
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:i, s:o, s:o, s:o}", "uid", uid, "name",
                     name, "synopsis", "A legacy catalogue entry.", "released", 1950 + i % 70,
                     "lang", LANGS[i % 4], "rating", RATINGS[i % 5], "vec", itl_vec(s, f->dim),
                     "rev", 1 + i % 3, "genres", g, "themes", t, "moods", m);
}

static inline void itl_insert(struct itl_fixture *f, json_t *rows)
{
    char q[1024];
    snprintf(q, sizeof(q),
             "UNWIND $rows AS r CREATE (n:`%s`) SET n = r {.uid, .name, .synopsis, .released,"
             " .lang, .rating, .vec, .rev}\n"
             "WITH n, r CALL { WITH n, r UNWIND r.genres AS g MERGE (x:`%s` {label: g})"
             " CREATE (n)-[:IN_GENRE]->(x) }\n"
             "CALL { WITH n, r UNWIND r.themes AS g MERGE (x:`%s` {label: g})"
             " CREATE (n)-[:THEME]->(x) }\n"
             "CALL { WITH n, r UNWIND r.moods AS g MERGE (x:`%s` {label: g})"
             " CREATE (n)-[:MOOD]->(x) }",
             f->label, f->tag_label, f->tag_label, f->tag_label);
    json_t *p = json_pack("{s:o}", "rows", rows);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(it_neo4j(q, text));
    free(text);
    json_decref(p);
}

/*
 * Generates `good` titles (ids m000001...) plus the broken nodes into Neo4j,
 * and the legacy policy table (200 good rows, 2 broken) into the test's
 * database. Titles i and i+1 are linked SIMILAR_TO, both ways for even i.
 */
static inline void itl_make(struct it *t, struct itl_fixture *f, int good, int dim)
{
    memset(f, 0, sizeof(*f));
    f->good = good;
    f->dim = dim;
    snprintf(f->label, sizeof(f->label), "LegacyTitle%d", (int)getpid());
    snprintf(f->tag_label, sizeof(f->tag_label), "LegacyTag%d", (int)getpid());
    char q[512];
    snprintf(q, sizeof(q), "CREATE INDEX IF NOT EXISTS FOR (n:`%s`) ON (n.uid)", f->label);
    json_decref(it_neo4j(q, NULL));
    unsigned long long s = 42;
    json_t *rows = json_array();
    for (int i = 1; i <= good; i++) {
        json_array_append_new(rows, itl_title(f, i, &s));
        if (json_array_size(rows) == 500 || i == good) {
            itl_insert(f, rows);
            rows = json_array();
        }
    }
    /* The broken ones. Duplicates sit where pages of 100 split them. */
    const char *dups[] = {"m000100", "m000555", "m001234"};
    for (int d = 0; d < 3; d++) {
        json_t *a = itl_title(f, 0, &s); /* a second node with a good title's id */
        json_object_set_new(a, "uid", json_string(dups[d]));
        json_array_append_new(rows, a);
        itl_broken_add(f, "duplicate_id", dups[d]);
        itl_broken_add(f, "duplicate_id", dups[d]);
        f->good--;
    }
    for (int k = 0; k < 6; k++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "x%05d-noemb", k);
        json_t *o = itl_title(f, 0, &s);
        json_object_set_new(o, "uid", json_string(uid));
        json_object_del(o, "vec");
        json_array_append_new(rows, o);
        itl_broken_add(f, "no_embedding", uid);
    }
    for (int k = 0; k < 5; k++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "x%05d-dim", k);
        json_t *o = itl_title(f, 0, &s);
        json_object_set_new(o, "uid", json_string(uid));
        json_object_set_new(o, "vec", itl_vec(&s, dim / 2));
        json_array_append_new(rows, o);
        itl_broken_add(f, "wrong_dimension", uid);
    }
    const char *bad_ids[] = {NULL, NULL, "bad id with spaces"};
    for (int k = 0; k < 3; k++) {
        json_t *o = itl_title(f, 0, &s);
        if (bad_ids[k])
            json_object_set_new(o, "uid", json_string(bad_ids[k]));
        else
            json_object_del(o, "uid");
        json_array_append_new(rows, o);
        itl_broken_add(f, "bad_id", bad_ids[k] ? bad_ids[k] : "");
    }
    {
        json_t *o = itl_title(f, 0, &s); /* an integer id where strings are expected */
        json_object_set_new(o, "uid", json_integer(777));
        json_array_append_new(rows, o);
        itl_broken_add(f, "bad_id", "777");
        o = itl_title(f, 0, &s); /* no title */
        json_object_set_new(o, "uid", json_string("x00000-notitle"));
        json_object_del(o, "name");
        json_array_append_new(rows, o);
        itl_broken_add(f, "invalid", "x00000-notitle");
        o = itl_title(f, 0, &s); /* a rating nobody mapped */
        json_object_set_new(o, "uid", json_string("x00001-rating"));
        json_object_set_new(o, "rating", json_string("Unrated-XYZ"));
        json_array_append_new(rows, o);
        itl_broken_add(f, "invalid", "x00001-rating");
    }
    itl_insert(f, rows);
    f->nbroken_nodes = f->nbroken;
    f->nodes = f->good + f->nbroken_nodes;
    /* SIMILAR_TO between neighbours */
    snprintf(
        q, sizeof(q),
        "MATCH (a:`%s`) WHERE a.uid STARTS WITH 'm' AND a.uid < $last\n"
        "MATCH (b:`%s` {uid: 'm' + right('00000' + toString(toInteger(substring(a.uid, 1)) + 1), "
        "6)})\n"
        "WITH a, b CREATE (a)-[:SIMILAR_TO]->(b)\n"
        "WITH a, b WHERE toInteger(substring(a.uid, 1)) %% 2 = 0 CREATE (b)-[:SIMILAR_TO]->(a)",
        f->label, f->label);
    char params[64];
    snprintf(params, sizeof(params), "{\"last\": \"m%06d\"}", good);
    json_decref(it_neo4j(q, params));
    snprintf(q, sizeof(q),
             "MATCH (a:`%s`)-[r:IN_GENRE|THEME|MOOD|SIMILAR_TO]->() WHERE a.uid STARTS WITH 'm'"
             " AND NOT a.uid IN ['m000100', 'm000555', 'm001234'] RETURN count(r)",
             f->label);
    f->relationships = it_neo4j_int(q);

    /* the legacy policy table: comma-separated genres, rating names, a language array */
    it_pg_int(t, "CREATE TABLE legacy_user_policies (user_id text PRIMARY KEY,"
                 " blocked_genres text, max_rating text, languages text[]); SELECT 0");
    it_pg_int(t, "INSERT INTO legacy_user_policies SELECT 'u' || lpad(i::text, 4, '0'),"
                 " CASE i % 3 WHEN 0 THEN 'Horror, Thriller' WHEN 1 THEN 'Romance' END,"
                 " CASE i % 4 WHEN 0 THEN 'PG-13' WHEN 1 THEN 'R' WHEN 2 THEN '7' END,"
                 " CASE WHEN i % 2 = 0 THEN ARRAY['en', 'FR'] END"
                 " FROM generate_series(1, 200) i; SELECT 0");
    it_pg_int(t, "INSERT INTO legacy_user_policies VALUES ('bad user', 'Horror', 'R', NULL),"
                 " ('u9999', 'Drama', 'ZZZ', NULL); SELECT 0");
    itl_broken_add(f, "policy", "bad user");
    itl_broken_add(f, "policy", "u9999");
    f->policies = 200;

    const char *set[] = {"migrate.label=%s",
                         "migrate.property_id=uid",
                         "migrate.property_title=name",
                         "migrate.property_description=synopsis",
                         "migrate.property_year=released",
                         "migrate.property_language=lang",
                         "migrate.property_maturity=rating",
                         "migrate.property_version=rev",
                         "migrate.property_embedding=vec",
                         "migrate.property_kind=",
                         "migrate.property_duration=",
                         "migrate.rel_theme=THEME",
                         "migrate.rel_mood=MOOD",
                         "migrate.rel_related=SIMILAR_TO",
                         "migrate.tag_name_property=label",
                         "migrate.page_size=100",
                         "redis.policy_key_prefix=%s"};
    snprintf(f->policy_prefix, sizeof(f->policy_prefix), "it%d:policy:", (int)getpid());
    for (size_t k = 0; k < sizeof(set) / sizeof(set[0]); k++)
        snprintf(f->set[f->nset++], sizeof(f->set[0]), set[k],
                 strstr(set[k], "redis.") ? f->policy_prefix : f->label);
}

/* Removes the fixture's nodes (the pipeline's graph is left to it_neo4j_reset). */
static inline void itl_drop(struct itl_fixture *f)
{
    char q[256];
    snprintf(q, sizeof(q),
             "MATCH (n) WHERE n:`%s` OR n:`%s` CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF "
             "1000 ROWS",
             f->label, f->tag_label);
    json_decref(it_neo4j(q, NULL));
}

/* argv for hsc-migrate: the fixture's mapping, then extra (NULL-terminated); static storage. */
static inline const char **itl_args(struct itl_fixture *f, const char *const *extra)
{
    static const char *args[96];
    int n = 0;
    for (int k = 0; k < f->nset; k++) {
        args[n++] = "--set";
        args[n++] = f->set[k];
    }
    args[n++] = "--set";
    static char dim[48];
    snprintf(dim, sizeof(dim), "milvus.dimension=%d", f->dim);
    args[n++] = dim;
    for (; extra && *extra && n < 94; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    return args;
}

#endif
