/*
 * The migrator's pure rules: the mapping from config (and what it refuses),
 * the Cypher it sends, each problem a legacy row can have, and how legacy
 * policies map onto hsc's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "migrate/migrate.h"

static hsc_config *config(const char *const *kv)
{
    hsc_config *cfg = hsc_config_new();
    hsc_err err = {0};
    assert_int_equal(hsc_config_set(cfg, "milvus.dimension", "4", &err), 0);
    for (; kv && *kv; kv += 2)
        if (hsc_config_set(cfg, kv[0], kv[1], &err))
            fail_msg("%s: %s", kv[0], err.msg);
    return cfg;
}

/* The mapping points into the config, which the test frees at its end. */
static hsc_config *load(struct migrate_mapping *mp, const char *const *kv)
{
    hsc_config *cfg = config(kv);
    hsc_err err = {0};
    if (migrate_mapping_load(cfg, mp, &err))
        fail_msg("%s", err.msg);
    return cfg;
}

static void test_mapping_refuses_names_that_are_not_plain(void **s)
{
    const char *bad[][2] = {{"migrate.label", "Movie`) DETACH DELETE n //"},
                            {"migrate.property_id", "id name"},
                            {"migrate.rel_genre", "1GENRE"},
                            {"migrate.label", "Content"},
                            {"migrate.property_embedding", ""},
                            {"migrate.policy_table", "x; DROP TABLE content"},
                            {"migrate.maturity_ratings", "PG=twelve"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *kv[] = {bad[i][0], bad[i][1], NULL};
        hsc_config *cfg = config(kv);
        struct migrate_mapping mp;
        hsc_err err = {0};
        assert_int_equal(migrate_mapping_load(cfg, &mp, &err), HSC_ECONFIG);
        assert_non_null(strstr(err.msg, bad[i][0])); /* the message names the key */
        hsc_config_free(cfg);
    }
    /* optional things may be switched off, and schema.table is fine */
    const char *ok[] = {
        "migrate.rel_mood", "",  "migrate.property_kind", "", "migrate.policy_table",
        "legacy.policies",  NULL};
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, ok);
    assert_string_equal(mp.rel[MR_MOOD], "");
    assert_string_equal(mp.prop[MP_KIND], "");
    hsc_config_free(cfg);
}

static void test_page_query_is_a_keyset_over_the_mapped_names(void **s)
{
    const char *kv[] = {"migrate.label",
                        "Film",
                        "migrate.property_id",
                        "uid",
                        "migrate.property_title",
                        "name",
                        "migrate.rel_mood",
                        "",
                        NULL};
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, kv);
    char *q = migrate_page_cypher(&mp);
    assert_non_null(strstr(q, "MATCH (n:`Film`) WHERE n.`uid` > $after"));
    assert_non_null(strstr(q, "ORDER BY n.`uid` LIMIT $limit"));
    assert_non_null(strstr(q, "m.`name` AS p0"));
    assert_non_null(strstr(q, "[(m)-[:`IN_GENRE`]->(x) | x.`name`] AS r0"));
    assert_non_null(strstr(q, ", [] AS r2"));                  /* moods switched off */
    assert_non_null(strstr(q, "(x:`Film`) | x.`uid`] AS r3")); /* related titles by id */
    free(q);
    q = migrate_bad_id_cypher(&mp);
    assert_non_null(strstr(q, "n.`uid` IS NULL OR NOT n.`uid` IS :: STRING"));
    free(q);
    char *sql = migrate_policy_sql(&mp);
    assert_non_null(strstr(sql, "to_jsonb(\"blocked_genres\")"));
    assert_non_null(strstr(sql, "FROM \"legacy_user_policies\" WHERE \"user_id\"::text > $1"));
    free(sql);
    hsc_config_free(cfg);
}

/* A page row as Neo4j returns it: id, copies, eid, then the properties and lists. */
static json_t *row(const char *id, int copies, json_t *embedding)
{
    json_t *r = json_array();
    json_array_append_new(r, id ? json_string(id) : json_null());
    json_array_append_new(r, json_integer(copies));
    json_array_append_new(r, json_string("4:abc:1"));
    json_array_append_new(r, json_string("  Alien  ")); /* title */
    json_array_append_new(r, json_string("In space.")); /* description */
    json_array_append_new(r, json_string("Movie"));     /* kind */
    json_array_append_new(r, json_integer(1979));       /* year */
    json_array_append_new(r, json_string("EN"));        /* language */
    json_array_append_new(r, json_string("R"));         /* maturity, as a rating */
    json_array_append_new(r, json_real(7020.0));        /* duration, a whole float */
    json_array_append_new(r, json_null());              /* version: default */
    json_array_append_new(r, embedding);
    json_array_append_new(r, json_pack("[s, s, n]", "Sci-Fi", "Horror"));
    json_array_append_new(r, json_pack("[s]", "survival"));
    json_array_append_new(r, json_array());
    json_array_append_new(r, json_pack("[s, i]", "m2", 17)); /* related: ids as written */
    return r;
}

static void test_a_good_row_becomes_an_event(void **s)
{
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, NULL);
    json_t *r = row("m1", 1, json_pack("[f, f, i, f]", 0.5, -0.25, 1, 0.125));
    hsc_content_event ev;
    struct migrate_problem pb;
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), 0);
    assert_string_equal(ev.id, "m1");
    assert_int_equal(ev.version, 1);
    assert_string_equal(ev.kind, "movie");
    assert_string_equal(ev.language, "en");
    assert_int_equal(ev.maturity, 17);
    assert_int_equal(ev.duration_s, 7020);
    assert_int_equal(ev.year, 1979);
    assert_true(ev.has & HSC_HAS_MATURITY);
    assert_int_equal(ev.dim, 4);
    assert_true(ev.embedding[2] == 1.0f && ev.embedding[3] == 0.125f);
    assert_int_equal(ev.genres.n, 2);
    assert_string_equal(ev.related.v[1], "17");
    hsc_content_event_clear(&ev);
    json_decref(r);
    /* numbers as text (how the page query sends them) are read exactly */
    r = row("m1", 1, json_pack("[s, s, s, s]", "0.1", "-1.0E-3", "2", "3.4028234663852886E38"));
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), 0);
    assert_true(ev.embedding[0] == 0.1f && ev.embedding[1] == -1.0e-3f);
    hsc_content_event_clear(&ev);
    json_decref(r);
    /* an embedding stored as JSON text is read too */
    r = row("m1", 1, json_string("[1, 2, 3, 4]"));
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), 0);
    assert_true(ev.embedding[3] == 4.0f);
    hsc_content_event_clear(&ev);
    json_decref(r);
    hsc_config_free(cfg);
}

static void test_each_problem_is_named(void **s)
{
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, NULL);
    struct {
        json_t *row;
        enum migrate_problem_kind kind;
        const char *detail;
    } cases[] = {
        {row(NULL, 1, json_pack("[i,i,i,i]", 1, 2, 3, 4)), MPK_BAD_ID, "id (property id): missing"},
        {row("a b", 1, json_pack("[i,i,i,i]", 1, 2, 3, 4)), MPK_BAD_ID, "'a b' is not"},
        {row("m1", 2, json_pack("[i,i,i,i]", 1, 2, 3, 4)), MPK_DUPLICATE_ID, "is on 2 nodes"},
        {row("m1", 1, json_null()), MPK_NO_EMBEDDING, "embedding (property embedding): missing"},
        {row("m1", 1, json_array()), MPK_NO_EMBEDDING, "missing"},
        {row("m1", 1, json_pack("[i,i]", 1, 2)), MPK_WRONG_DIMENSION, "2 values, expected 4"},
        {row("m1", 1, json_pack("[i,s,i,i]", 1, "x", 3, 4)), MPK_INVALID, "embedding[1]"},
        {row("m1", 1, json_pack("[f,f,f,f]", 1.0, 1e39, 0.0, 0.0)), MPK_INVALID, "embedding[1]"},
        {row("m1", 1, json_integer(5)), MPK_INVALID, "expected a list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hsc_content_event ev;
        struct migrate_problem pb;
        int rc = migrate_row_to_event(&mp, cases[i].row, &ev, &pb);
        if (rc != (int)cases[i].kind || !strstr(pb.detail, cases[i].detail))
            fail_msg("case %zu: %s: %s", i, migrate_problem_name(pb.kind), pb.detail);
        assert_null(ev.id); /* nothing is left allocated */
        assert_string_equal(pb.eid, "4:abc:1");
        json_decref(cases[i].row);
    }
    /* field problems name the field and the legacy property */
    json_t *r = row("m1", 1, json_pack("[i,i,i,i]", 1, 2, 3, 4));
    json_array_set_new(r, 3 + MP_YEAR, json_string("nineteen"));
    hsc_content_event ev;
    struct migrate_problem pb;
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), MPK_INVALID);
    assert_string_equal(pb.detail, "year (property year): expected an integer, got a string");
    json_array_set_new(r, 3 + MP_YEAR, json_integer(1979));
    json_array_set_new(r, 3 + MP_MATURITY, json_string("X-Rated"));
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), MPK_INVALID);
    assert_non_null(strstr(pb.detail, "rating 'X-Rated' is not in migrate.maturity_ratings"));
    json_array_set_new(r, 3 + MP_MATURITY, json_integer(40));
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), MPK_INVALID);
    assert_non_null(strstr(pb.detail, "maturity")); /* the pipeline's own rule */
    json_array_set_new(r, 3 + MP_MATURITY, json_integer(12));
    json_array_set_new(r, 3 + MP_TITLE, json_null());
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), MPK_INVALID);
    assert_non_null(strstr(pb.detail, "title"));
    json_decref(r);
    hsc_config_free(cfg);
}

static void test_integer_ids_page_numerically(void **s)
{
    const char *kv[] = {"migrate.id_type", "integer", NULL};
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, kv);
    assert_true(mp.id_integer);
    json_t *r = row("x", 1, json_pack("[i,i,i,i]", 1, 2, 3, 4));
    json_array_set_new(r, 0, json_integer(123456));
    hsc_content_event ev;
    struct migrate_problem pb;
    assert_int_equal(migrate_row_to_event(&mp, r, &ev, &pb), 0);
    assert_string_equal(ev.id, "123456");
    hsc_content_event_clear(&ev);
    json_decref(r);
    char *q = migrate_bad_id_cypher(&mp);
    assert_non_null(strstr(q, "NOT n.`id` IS :: INTEGER"));
    free(q);
    hsc_config_free(cfg);
}

static void test_policies_map_to_hsc(void **s)
{
    struct migrate_mapping mp;
    hsc_config *cfg = load(&mp, NULL);
    struct migrate_policy pol;
    struct migrate_problem pb;
    assert_int_equal(migrate_policy_from_row(&mp, "u1", "\" Horror ,  Sci  Fi\"", "\"PG-13\"",
                                             "[\"EN\", \"fr\"]", &pol, &pb),
                     0);
    assert_int_equal(pol.excluded.n, 2);
    assert_string_equal(pol.excluded.v[0], "horror");
    assert_string_equal(pol.excluded.v[1], "sci fi");
    assert_int_equal(pol.max_maturity, 13);
    assert_string_equal(pol.languages.v[0], "en");
    migrate_policy_clear(&pol);
    /* an age as a number or as text; nothing at all */
    assert_int_equal(migrate_policy_from_row(&mp, "u2", NULL, "16", NULL, &pol, &pb), 0);
    assert_int_equal(pol.max_maturity, 16);
    migrate_policy_clear(&pol);
    assert_int_equal(migrate_policy_from_row(&mp, "u3", "null", "\"7\"", "null", &pol, &pb), 0);
    assert_int_equal(pol.max_maturity, 7);
    assert_int_equal(pol.excluded.n, 0);
    migrate_policy_clear(&pol);
    /* problems name the column */
    assert_int_equal(migrate_policy_from_row(&mp, "u4", NULL, "\"ZZZ\"", NULL, &pol, &pb),
                     MPK_POLICY);
    assert_non_null(strstr(pb.detail, "max_rating"));
    assert_int_equal(migrate_policy_from_row(&mp, "bad user", NULL, NULL, NULL, &pol, &pb),
                     MPK_POLICY);
    assert_non_null(strstr(pb.detail, "user_id: 'bad user'"));
    assert_int_equal(migrate_policy_from_row(&mp, "u5", "[1]", NULL, NULL, &pol, &pb), MPK_POLICY);
    assert_non_null(strstr(pb.detail, "blocked_genres[0]"));
    assert_int_equal(migrate_policy_from_row(&mp, "u6", NULL, NULL, "[\"english\"]", &pol, &pb),
                     MPK_POLICY);
    assert_non_null(strstr(pb.detail, "languages"));
    hsc_config_free(cfg);
}

static void test_ratings_parse(void **s)
{
    struct migrate_mapping mp = {0};
    hsc_err err = {0};
    assert_int_equal(migrate_parse_ratings(" U = 0, 12A=12 ,18=18,", &mp, &err), 0);
    assert_int_equal(mp.nratings, 3);
    assert_int_equal(migrate_rating_age(&mp, "12a"), 12);
    assert_int_equal(migrate_rating_age(&mp, "u"), 0);
    assert_int_equal(migrate_rating_age(&mp, "PG"), -1);
    assert_int_equal(migrate_parse_ratings("X=30", &mp, &err), HSC_ECONFIG);
    assert_int_equal(migrate_parse_ratings("=3", &mp, &err), HSC_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_refuses_names_that_are_not_plain),
        cmocka_unit_test(test_page_query_is_a_keyset_over_the_mapped_names),
        cmocka_unit_test(test_a_good_row_becomes_an_event),
        cmocka_unit_test(test_each_problem_is_named),
        cmocka_unit_test(test_integer_ids_page_numerically),
        cmocka_unit_test(test_policies_map_to_hsc),
        cmocka_unit_test(test_ratings_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
