/*
 * The statements that read the legacy stores, built from a checked mapping:
 * the page, bad-id and count Cypher for the graph and the policy table's SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "util.h"

/* Appends `n.`prop`` or null for an unmapped property. */
static void prop_expr(hsc_buf *b, const char *var, const char *prop)
{
    if (*prop)
        hsc_buf_printf(b, "%s.`%s`", var, prop);
    else
        hsc_buf_printf(b, "null");
}

char *migrate_page_cypher(const struct migrate_mapping *mp)
{
    hsc_buf b = {0};
    const char *L = mp->label, *I = mp->id_prop;
    /* The first match walks the id index in order and stops at $limit; the
     * second fetches every node of those ids, so duplicates arrive together. */
    hsc_buf_printf(&b,
                   "MATCH (n:`%s`) WHERE n.`%s` > $after\n"
                   "WITH n ORDER BY n.`%s` LIMIT $limit\n"
                   "WITH collect(DISTINCT n.`%s`) AS ids\n"
                   "UNWIND ids AS id\n"
                   "MATCH (m:`%s`) WHERE m.`%s` = id\n"
                   "WITH id, collect(m) AS ms\n"
                   "UNWIND ms AS m\n"
                   "RETURN id, size(ms) AS copies, elementId(m) AS eid",
                   L, I, I, I, L, I);
    for (int i = 0; i < MP_COUNT; i++) {
        hsc_buf_printf(&b, ", ");
        if (i == MP_EMBEDDING)
            /* Numbers as text: the Query API serialises a float array about 7x
             * slower than strings (0.87 s against 0.13 s for 500 x 384 on
             * 5.26), and Java's shortest round-trip form loses nothing. */
            hsc_buf_printf(&b,
                           "CASE WHEN m.`%s` IS :: LIST<ANY> THEN [x IN m.`%s` | toString(x)]"
                           " ELSE m.`%s` END",
                           mp->prop[i], mp->prop[i], mp->prop[i]);
        else
            prop_expr(&b, "m", mp->prop[i]);
        hsc_buf_printf(&b, " AS p%d", i);
    }
    for (int i = 0; i < MR_COUNT; i++) {
        if (!*mp->rel[i])
            hsc_buf_printf(&b, ", []");
        else if (i == MR_RELATED)
            hsc_buf_printf(&b, ", [(m)-[:`%s`]->(x:`%s`) | x.`%s`]", mp->rel[i], L, I);
        else
            hsc_buf_printf(&b, ", [(m)-[:`%s`]->(x) | x.`%s`]", mp->rel[i], mp->tag_name);
        hsc_buf_printf(&b, " AS r%d", i);
    }
    hsc_buf_printf(&b, "\nORDER BY id, eid");
    return b.data;
}

char *migrate_bad_id_cypher(const struct migrate_mapping *mp)
{
    hsc_buf b = {0};
    /* Spelled out: Neo4j 5.26 answers `NOT x IS :: STRING NOT NULL` from the
     * property index, which has no entry for a missing property. */
    if (mp->id_integer)
        hsc_buf_printf(&b, "MATCH (n:`%s`) WHERE n.`%s` IS NULL OR NOT n.`%s` IS :: INTEGER\n",
                       mp->label, mp->id_prop, mp->id_prop);
    else
        hsc_buf_printf(&b,
                       "MATCH (n:`%s`) WHERE n.`%s` IS NULL OR NOT n.`%s` IS :: STRING"
                       " OR n.`%s` = ''\n",
                       mp->label, mp->id_prop, mp->id_prop, mp->id_prop);
    hsc_buf_printf(&b, "RETURN elementId(n) AS eid, toString(n.`%s`) AS id, ", mp->id_prop);
    prop_expr(&b, "n", mp->prop[MP_TITLE]);
    hsc_buf_printf(&b, " AS title ORDER BY eid");
    return b.data;
}

char *migrate_count_cypher(const struct migrate_mapping *mp)
{
    hsc_buf b = {0};
    hsc_buf_printf(&b, "MATCH (n:`%s`) RETURN count(n)", mp->label);
    return b.data;
}

char *migrate_policy_sql(const struct migrate_mapping *mp)
{
    hsc_buf b = {0};
    char table[160];
    const char *dot = strchr(mp->policy_table, '.');
    if (dot)
        snprintf(table, sizeof(table), "\"%.*s\".\"%s\"", (int)(dot - mp->policy_table),
                 mp->policy_table, dot + 1);
    else
        snprintf(table, sizeof(table), "\"%s\"", mp->policy_table);
    hsc_buf_printf(&b, "SELECT \"%s\"::text", mp->policy_user);
    const char *cols[3] = {mp->policy_excluded, mp->policy_maturity, mp->policy_languages};
    for (int i = 0; i < 3; i++)
        if (*cols[i])
            hsc_buf_printf(&b, ", to_jsonb(\"%s\")::text", cols[i]);
        else
            hsc_buf_printf(&b, ", NULL::text");
    hsc_buf_printf(&b, " FROM %s WHERE \"%s\"::text > $1 ORDER BY 1 LIMIT $2::int", table,
                   mp->policy_user);
    return b.data;
}
