/* Helpers shared by the ingest integration tests (header-only, test code). */
#ifndef HSC_IT_COMMON_H
#define HSC_IT_COMMON_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "hsc/codec.h"

/* Expected weights recomputed from the stored events: a double-applied event shows as a difference.
 */
static const char IT_WEIGHTS_MISMATCH_SQL[] =
    "WITH e AS (SELECT l.user_id, t.dim, t.name, sum(hsc_learning_delta(l.kind, l.value)) w"
    " FROM learning_events l JOIN content c ON c.id = l.content_id AND NOT c.deleted"
    " CROSS JOIN LATERAL (SELECT 'genre' dim, g name FROM unnest(c.genres) g UNION ALL"
    "                     SELECT 'theme', th FROM unnest(c.themes) th) t GROUP BY 1,2,3)"
    " SELECT count(*) FROM e FULL JOIN user_preferences p USING (user_id, dim, name)"
    " WHERE p.weight IS NULL OR e.w IS NULL OR abs(p.weight - e.w) > 1e-9";

/* The weights the events as published imply (table pub_learning, see it_pg_load_jsonl), as a
 * CTE `e (user_id, dim, name, w)`. */
#define IT_PUBLISHED_WEIGHTS_CTE                                                                   \
    "WITH e AS (SELECT l.j->>'user_id' user_id, t.dim, t.name,"                                    \
    "                  sum(hsc_learning_delta(l.j->>'kind', (l.j->>'value')::float8)) w"           \
    " FROM pub_learning l JOIN content c ON c.id = l.j->>'content_id' AND NOT c.deleted"           \
    " CROSS JOIN LATERAL (SELECT 'genre' dim, g name FROM unnest(c.genres) g UNION ALL"            \
    "                     SELECT 'theme', th FROM unnest(c.themes) th) t GROUP BY 1,2,3)"

/* Like IT_WEIGHTS_MISMATCH_SQL, but against the published events, not the stored ones: a lost
 * event shows too. */
static const char IT_PUBLISHED_WEIGHTS_MISMATCH_SQL[] = IT_PUBLISHED_WEIGHTS_CTE
    " SELECT count(*) FROM e FULL JOIN user_preferences p USING (user_id, dim, name)"
    " WHERE p.weight IS NULL OR e.w IS NULL OR abs(p.weight - e.w) > 1e-9";

/* 1 if the stored weights' total equals the published events' (to 1e-6), else 0. */
static const char IT_PUBLISHED_WEIGHTS_TOTAL_SQL[] =
    IT_PUBLISHED_WEIGHTS_CTE " SELECT (abs((SELECT sum(w) FROM e) -"
                             " (SELECT sum(weight) FROM user_preferences)) < 1e-6)::int";

/* The learning events as published (table pub_learning) and as stored, row for row. */
#define IT_PUBLISHED_LEARNING_SQL                                                                  \
    "SELECT j->>'user_id', j->>'content_id', j->>'kind', ((j->>'value')::float8)::text,"           \
    " j->>'ts' FROM pub_learning"
#define IT_STORED_LEARNING_SQL                                                                     \
    "SELECT user_id, content_id, kind, value::text, ts::text FROM learning_events"

/* Writes `hsc sample WHAT --count COUNT --dim DIM` to a temporary file; returns its path. */
static inline char *it_sample_dim(struct it *t, const char *what, const char *count,
                                  const char *titles, const char *dim)
{
    char *out;
    const char *args[] = {"sample",   what,   "--count", count, "--dim", dim,
                          "--titles", titles, "--users", "50",  NULL};
    if (it_run(t, "hsc", args, &out) != 0) {
        fprintf(stderr, "hsc sample failed\n");
        exit(1);
    }
    char *path = it_temp_file(out, strlen(out));
    free(out);
    return path;
}

/* it_sample at dimension 16 (the pipeline tests, whose point is not the vectors). */
static inline char *it_sample(struct it *t, const char *what, const char *count, const char *titles)
{
    return it_sample_dim(t, what, count, titles, "16");
}

/* Publishes a JSON-lines file with the CLI; returns its exit status. */
static inline int it_publish(struct it *t, const char *topic, const char *path)
{
    char *out;
    const char *args[] = {"publish", "--topic", topic, "--quiet", path, NULL};
    int rc = it_run(t, "hsc", args, &out);
    if (rc != 0)
        fprintf(stderr, "hsc publish %s: %s\n", path, out);
    free(out);
    return rc;
}

/* Waits until sql returns at least `min`; returns the value. */
static inline long long it_pg_wait_at_least(struct it *t, const char *sql, long long min,
                                            int timeout_ms)
{
    long long end = it_ms() + timeout_ms, v = -1;
    while (it_ms() < end) {
        v = it_pg_int(t, sql);
        if (v >= min)
            break;
        usleep(50000);
    }
    return v;
}

/* Splits a JSON-lines file into its first `head` lines and the rest (two new temp files). */
static inline void it_split_lines(const char *path, int head, char **a, char **b)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    char *line = NULL, *bufs[2] = {NULL, NULL};
    size_t cap = 0, lens[2] = {0, 0};
    FILE *out[2] = {open_memstream(&bufs[0], &lens[0]), open_memstream(&bufs[1], &lens[1])};
    for (int i = 0; getline(&line, &cap, f) > 0; i++)
        fputs(line, out[i >= head]);
    free(line);
    fclose(f);
    fclose(out[0]);
    fclose(out[1]);
    *a = it_temp_file(bufs[0], lens[0]);
    *b = it_temp_file(bufs[1], lens[1]);
    free(bufs[0]);
    free(bufs[1]);
}

/* ---- sets: what was published against what a store or a topic holds ---- */

/* A list of malloc'd strings (one per row, columns joined by a tab). */
struct it_strs {
    char **v;
    size_t n, cap;
};

static inline void it_strs_push(struct it_strs *s, const char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof(char *));
    }
    s->v[s->n++] = strdup(x);
}

static inline void it_strs_free(struct it_strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static inline int it_strs_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Drops repeated entries (after sorting): at-least-once delivery may repeat a record. */
static inline void it_strs_distinct(struct it_strs *s)
{
    qsort(s->v, s->n, sizeof(char *), it_strs_cmp);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k && !strcmp(s->v[i], s->v[k - 1]))
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

/*
 * Compares two multisets of rows (each entry counts: a row stored twice is a
 * difference); prints up to 5 rows found only on either side, naming them.
 * Returns the number of differing rows (0: equal).
 */
static inline size_t it_strs_diff(const char *what, struct it_strs *want, const char *want_name,
                                  struct it_strs *got, const char *got_name)
{
    qsort(want->v, want->n, sizeof(char *), it_strs_cmp);
    qsort(got->v, got->n, sizeof(char *), it_strs_cmp);
    size_t i = 0, j = 0, only_want = 0, only_got = 0;
    while (i < want->n || j < got->n) {
        int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->v[i], got->v[j]);
        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            if (only_want++ < 5)
                fprintf(stderr, "%s: in %s, not in %s: %s\n", what, want_name, got_name,
                        want->v[i]);
            i++;
        } else {
            if (only_got++ < 5)
                fprintf(stderr, "%s: in %s, not in %s: %s\n", what, got_name, want_name, got->v[j]);
            j++;
        }
    }
    if (only_want || only_got)
        fprintf(stderr, "%s: %zu rows of %s (%zu) missing from %s (%zu), %zu extra\n", what,
                only_want, want_name, want->n, got_name, got->n, only_got);
    return only_want + only_got;
}

/* The rows of a query, columns joined by a tab (NULL as "NULL"); exits on an error. */
static inline void it_pg_strs(struct it *t, const char *sql, struct it_strs *out)
{
    memset(out, 0, sizeof(*out));
    if (PQstatus(t->pg) != CONNECTION_OK)
        PQreset(t->pg); /* after a PostgreSQL restart */
    PGresult *r = PQexec(t->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    char row[4096];
    for (int i = 0; i < PQntuples(r); i++) {
        size_t len = 0;
        for (int c = 0; c < PQnfields(r); c++)
            len += (size_t)snprintf(row + len, len < sizeof(row) ? sizeof(row) - len : 0, "%s%s",
                                    c ? "\t" : "",
                                    PQgetisnull(r, i, c) ? "NULL" : PQgetvalue(r, i, c));
        it_strs_push(out, row);
    }
    PQclear(r);
}

/* The rows of a Cypher statement, values joined by a tab (strings bare); exits on an error. */
static inline void it_neo4j_strs(const char *cypher, struct it_strs *out)
{
    memset(out, 0, sizeof(*out));
    json_t *rows = it_neo4j(cypher, NULL);
    if (!rows) {
        fprintf(stderr, "neo4j: %s failed\n", cypher);
        exit(1);
    }
    size_t i, c;
    json_t *row, *v;
    json_array_foreach (rows, i, row) {
        char line[4096];
        size_t len = 0;
        json_array_foreach (row, c, v) {
            char *dumped = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            len += (size_t)snprintf(line + len, len < sizeof(line) ? sizeof(line) - len : 0, "%s%s",
                                    c ? "\t" : "", dumped ? dumped : json_string_value(v));
            free(dumped);
        }
        if (!len)
            line[0] = '\0';
        it_strs_push(out, line);
    }
    json_decref(rows);
}

/* Loads a JSON-lines file into a new table `name (j jsonb)` of the test's database. */
static inline void it_pg_load_jsonl(struct it *t, const char *name, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, k, m);
    fclose(f);
    fclose(m);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s AS SELECT l::jsonb AS j FROM regexp_split_to_table($1, E'\\n') l"
             " WHERE l <> ''",
             name);
    const char *params[1] = {text};
    if (PQstatus(t->pg) != CONNECTION_OK)
        PQreset(t->pg);
    PGresult *r = PQexecParams(t->pg, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    free(text);
}

/* The (id, version) of every published content event in table pub (see it_pg_load_jsonl). */
#define IT_PUBLISHED_ID_VERSION(pub) "SELECT j->>'id', coalesce(j->>'version', '0') FROM " pub

/* The (id, version) of every content record in recs (ContentEvents), once each however often it
 * was delivered; exits on an undecodable one or one whose key is not its id. */
static inline void it_records_id_version(const struct it_record *recs, size_t n,
                                         struct it_strs *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        hsc_content_event ev;
        hsc_err err = {0};
        if (hsc_codec_decode_content(recs[i].value, recs[i].len, &ev, &err)) {
            fprintf(stderr, "record %zu: %s\n", i, err.msg);
            exit(1);
        }
        if (strcmp(ev.id, recs[i].key)) {
            fprintf(stderr, "record %zu: key %s, id %s\n", i, recs[i].key, ev.id);
            exit(1);
        }
        char row[256];
        snprintf(row, sizeof(row), "%s\t%lld", ev.id, (long long)ev.version);
        it_strs_push(out, row);
        hsc_content_event_clear(&ev);
    }
    it_strs_distinct(out);
}

/*
 * Every published title was forwarded on topic (ContentEvents), each with the
 * version published: the seen-set of (id, version), read to the topic's end,
 * equals the published set (a duplicate delivery is allowed, a missing or
 * unexpected title is not). Returns the number of differences.
 */
static inline size_t it_forwarded_diff(struct it *t, const char *topic, const char *pub_table)
{
    struct it_record *recs;
    size_t n = it_consume_to_end(t, topic, 120000, &recs);
    struct it_strs seen, want;
    it_records_id_version(recs, n, &seen);
    it_records_free(recs, n);
    char sql[256];
    snprintf(sql, sizeof(sql), IT_PUBLISHED_ID_VERSION("%s"), pub_table);
    it_pg_strs(t, sql, &want);
    it_strs_distinct(&want);
    fprintf(stderr, "-- %s: %zu records, %zu distinct (id, version), %zu published\n", topic, n,
            seen.n, want.n);
    size_t d = it_strs_diff(topic, &want, "published", &seen, "forwarded");
    it_strs_free(&seen);
    it_strs_free(&want);
    return d;
}

#endif
