/*
 * Tests of common/neo4j.c's pure parts: statement bodies for both dialects,
 * parsing of both response shapes (taken from what Neo4j 5.26 answers), error
 * classification, discovery, and the statement file loader.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph.h"
#include "neo4j.h"

static void test_build_keeps_values_out_of_cypher(void **state)
{
    (void)state;
    hsc_err err = {0};
    json_t *p = json_pack("{s:s}", "id", "x\"}) DETACH DELETE n //");
    char *q;
    assert_int_equal(
        hsc_neo4j_build(HSC_NEO4J_QUERY_API, "MATCH (c:Content {id: $id}) RETURN c", p, &q, &err),
        HSC_OK);
    json_t *o = json_loads(q, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "statement")),
                        "MATCH (c:Content {id: $id}) RETURN c");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "parameters"), "id")),
                        "x\"}) DETACH DELETE n //");
    json_decref(o);
    free(q);
    char *t;
    assert_int_equal(hsc_neo4j_build(HSC_NEO4J_TX, "RETURN $id", p, &t, &err), HSC_OK);
    o = json_loads(t, 0, NULL);
    json_t *st = json_array_get(json_object_get(o, "statements"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "statement")), "RETURN $id");
    assert_non_null(json_object_get(json_object_get(st, "parameters"), "id"));
    json_decref(o);
    free(t);
    json_decref(p);
    char *none;
    assert_int_equal(hsc_neo4j_build(HSC_NEO4J_QUERY_API, "RETURN 1", NULL, &none, &err), HSC_OK);
    assert_non_null(strstr(none, "\"parameters\":{}"));
    free(none);
}

/* A statement that cannot be sent is an error naming it, not a NULL body. */
/* Parameters written as text give the same request as a tree, in both dialects. */
static void test_build_text_matches_build(void **state)
{
    (void)state;
    json_t *params = json_pack("{s:[i,f], s:s}", "a", 1, 0.25, "b", "x\"y");
    char *ptext = json_dumps(params, JSON_COMPACT);
    for (int d = HSC_NEO4J_QUERY_API; d <= HSC_NEO4J_TX; d++) {
        char *b1, *b2;
        hsc_err err = {0};
        assert_int_equal(hsc_neo4j_build(d, "RETURN $a, \"q\"", params, &b1, &err), 0);
        assert_int_equal(hsc_neo4j_build_text(d, "RETURN $a, \"q\"", ptext, &b2, &err), 0);
        json_t *j1 = json_loads(b1, 0, NULL), *j2 = json_loads(b2, 0, NULL);
        assert_non_null(j2);
        assert_true(json_equal(j1, j2));
        json_decref(j1);
        json_decref(j2);
        free(b1);
        free(b2);
    }
    free(ptext);
    json_decref(params);
}

static void test_build_refuses_cypher_that_is_not_utf8(void **state)
{
    (void)state;
    hsc_err err = {0};
    char *body = (char *)"untouched";
    assert_int_equal(hsc_neo4j_build(HSC_NEO4J_TX, "RETURN '\xff'", NULL, &body, &err), HSC_EINVAL);
    assert_null(body);
    assert_int_equal(err.code, HSC_EINVAL);
    assert_string_equal(err.msg, "neo4j statement: the Cypher is not valid UTF-8");
}

static void test_parse_both_dialects(void **state)
{
    (void)state;
    hsc_neo4j_result r;
    hsc_err err = {0};
    const char *qa = "{\"data\":{\"fields\":[\"x\",\"y\"],\"values\":[[1,\"a\"],[2,\"b\"]]},"
                     "\"bookmarks\":[\"FB:kcwQ\"]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 202, qa, strlen(qa), &r, &err), 0);
    assert_int_equal(json_array_size(r.rows), 2);
    assert_string_equal(json_string_value(json_array_get(r.fields, 1)), "y");
    assert_string_equal(json_string_value(json_array_get(json_array_get(r.rows, 1), 1)), "b");
    hsc_neo4j_result_clear(&r);
    const char *tx = "{\"results\":[{\"columns\":[\"x\"],\"data\":[{\"row\":[1],\"meta\":[null]},"
                     "{\"row\":[2],\"meta\":[null]}]}],\"errors\":[],\"lastBookmarks\":[\"FB\"]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_TX, 200, tx, strlen(tx), &r, &err), 0);
    assert_int_equal(json_array_size(r.rows), 2);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(r.rows, 1), 0)), 2);
    hsc_neo4j_result_clear(&r);
}

static void test_errors_are_classified(void **state)
{
    (void)state;
    hsc_neo4j_result r;
    hsc_err err = {0};
    const char *syntax = "{\"errors\":[{\"code\":\"Neo.ClientError.Statement.SyntaxError\","
                         "\"message\":\"Invalid input 'MATC'\"}]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 400, syntax, strlen(syntax), &r, &err),
                     HSC_EINVAL);
    assert_non_null(strstr(err.msg, "Neo.ClientError.Statement.SyntaxError"));
    assert_non_null(strstr(err.msg, "Invalid input"));
    /* Neo4j's code is a field: what a caller decides on, never the message. */
    assert_string_equal(err.server_status, "Neo.ClientError.Statement.SyntaxError");
    assert_int_equal(err.http_status, 400);
    const char *unique =
        "{\"errors\":[{\"code\":\"Neo.ClientError.Schema.ConstraintValidationFailed\","
        "\"message\":\"Node(1) already exists with label `Content`\"}]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_TX, 200, unique, strlen(unique), &r, &err),
                     HSC_EINVAL);
    assert_string_equal(err.server_status, "Neo.ClientError.Schema.ConstraintValidationFailed");
    const char *deadlock =
        "{\"results\":[],\"errors\":[{\"code\":"
        "\"Neo.TransientError.Transaction.DeadlockDetected\",\"message\":\"x\"}]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_TX, 200, deadlock, strlen(deadlock), &r, &err),
                     HSC_ETRANSIENT);
    assert_string_equal(err.server_status, "Neo.TransientError.Transaction.DeadlockDetected");
    const char *auth = "{\"errors\":[{\"code\":\"Neo.ClientError.Security.Unauthorized\","
                       "\"message\":\"bad credentials\"}]}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 401, auth, strlen(auth), &r, &err),
                     HSC_ECONFIG);
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 503, "busy", 4, &r, &err),
                     HSC_ETRANSIENT);
    assert_int_equal(err.http_status, 503);
    assert_string_equal(err.server_status, "");
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 200, "{\"data\":", 8, &r, &err),
                     HSC_ETRANSIENT);
    assert_int_equal(hsc_neo4j_classify("Neo.DatabaseError.General.UnknownError"), HSC_ETRANSIENT);
    assert_int_equal(hsc_neo4j_classify("Neo.ClientError.Schema.ConstraintValidationFailed"),
                     HSC_EINVAL);
    assert_int_equal(hsc_neo4j_classify("Neo.ClientError.Database.DatabaseNotFound"), HSC_ECONFIG);
    assert_int_equal(hsc_neo4j_classify("Neo.ClientError.Transaction.TransactionTimedOut"),
                     HSC_ETRANSIENT);
    /* A transaction too large for the server's memory is not bad input: no DLQ. */
    assert_int_equal(hsc_neo4j_classify("Neo.ClientError.General.TransactionOutOfMemoryError"),
                     HSC_ETRANSIENT);
    assert_true(hsc_neo4j_is_memory_limit("Neo.TransientError.General.MemoryPoolOutOfMemoryError"));
    assert_true(hsc_neo4j_is_memory_limit("Neo.ClientError.General.TransactionOutOfMemoryError"));
    assert_false(hsc_neo4j_is_memory_limit("Neo.TransientError.Transaction.DeadlockDetected"));
    assert_false(hsc_neo4j_is_memory_limit(NULL));
}

static void test_discovery(void **state)
{
    (void)state;
    const char *d526 =
        "{\"bolt_routing\":\"neo4j://localhost:7687\",\"query\":"
        "\"http://localhost:7474/db/{databaseName}/query/v2\",\"transaction\":"
        "\"http://localhost:7474/db/{databaseName}/tx\",\"neo4j_version\":\"5.26.0\"}";
    assert_int_equal(hsc_neo4j_discover(d526, strlen(d526)), HSC_NEO4J_QUERY_API);
    const char *d515 = "{\"transaction\":\"http://localhost:7474/db/{databaseName}/tx\","
                       "\"neo4j_version\":\"5.15.0\"}";
    assert_int_equal(hsc_neo4j_discover(d515, strlen(d515)), HSC_NEO4J_TX);
}

static void test_statement_files(void **state)
{
    (void)state;
    char **st;
    size_t n;
    hsc_err err = {0};
    assert_int_equal(hsc_neo4j_load_statements(HSC_SOURCE_DIR "/schemas/neo4j", &st, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_non_null(strstr(st[0], "CREATE CONSTRAINT content_id IF NOT EXISTS"));
    for (size_t i = 0; i < n; i++) {
        assert_null(strchr(st[i], ';'));
        assert_null(strstr(st[i], "//"));
        free(st[i]);
    }
    free(st);
    assert_int_equal(hsc_neo4j_load_statements("/nonexistent", &st, &n, &err), HSC_ECONFIG);
}

/* Reads (sent again on a fresh connection if their pooled one proves stale) and writes. */
static void test_reads_are_told_from_writes(void **state)
{
    assert_true(hsc_neo4j_is_read(HSC_GRAPH_CANDIDATES_CYPHER)); /* CALL { subquery } reads */
    assert_true(hsc_neo4j_is_read(HSC_GRAPH_ENRICH_CYPHER));
    assert_true(hsc_neo4j_is_read("MATCH (c:Content) WHERE c.title = 'CREATE' RETURN c.set"));
    assert_true(hsc_neo4j_is_read("RETURN $merge AS x"));
    assert_false(hsc_neo4j_is_read("UNWIND $rows AS r MERGE (c:Content {id: r.id})"));
    assert_false(hsc_neo4j_is_read("MATCH (c) SET c.x = 1"));
    assert_false(hsc_neo4j_is_read("MATCH (c) detach delete c"));
    assert_false(hsc_neo4j_is_read(
        "CREATE CONSTRAINT x IF NOT EXISTS FOR (c:Content) REQUIRE c.id IS UNIQUE"));
    assert_false(hsc_neo4j_is_read("CALL db.labels()")); /* a procedure may write */
    assert_false(hsc_neo4j_is_read("MATCH (c) CALL { WITH c SET c.y = 2 } RETURN c"));
    (void)state;
}

static void test_graph_parsers(void **state)
{
    (void)state;
    hsc_neo4j_result r;
    hsc_err err = {0};
    const char *c =
        "{\"data\":{\"fields\":[\"id\",\"score\",\"why\"],\"values\":["
        "[\"t2\",1.4,[{\"seed\":\"t1\",\"via\":\"similar\",\"score\":0.4,\"through\":null}]],"
        "[\"t3\",0.1,[]]]}}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 202, c, strlen(c), &r, &err), 0);
    hsc_graph_candidate *cs;
    size_t n;
    assert_int_equal(hsc_graph_parse_candidates(&r, &cs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cs[0].id, "t2");
    assert_true(cs[0].score == 1.4);
    assert_non_null(strstr(cs[0].why, "\"via\":\"similar\""));
    hsc_graph_candidates_free(cs, n);
    hsc_neo4j_result_clear(&r);
    const char *i = "{\"data\":{\"fields\":[\"id\",\"genres\",\"themes\",\"moods\",\"links\"],"
                    "\"values\":[[\"t2\",[\"drama\"],[\"war\",\"love\"],[],[{\"seed\":\"t1\","
                    "\"type\":\"RELATED_TO\",\"score\":null}]]]}}";
    assert_int_equal(hsc_neo4j_parse(HSC_NEO4J_QUERY_API, 202, i, strlen(i), &r, &err), 0);
    hsc_graph_info *v;
    assert_int_equal(hsc_graph_parse_info(&r, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].themes.n, 2);
    assert_string_equal(v[0].themes.v[1], "love");
    assert_int_equal(v[0].moods.n, 0);
    assert_non_null(strstr(v[0].links, "RELATED_TO"));
    hsc_graph_info_free(v, n);
    hsc_neo4j_result_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_keeps_values_out_of_cypher),
        cmocka_unit_test(test_build_text_matches_build),
        cmocka_unit_test(test_build_refuses_cypher_that_is_not_utf8),
        cmocka_unit_test(test_parse_both_dialects),
        cmocka_unit_test(test_errors_are_classified),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_statement_files),
        cmocka_unit_test(test_graph_parsers),
        cmocka_unit_test(test_reads_are_told_from_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
