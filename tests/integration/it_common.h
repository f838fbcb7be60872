/* Helpers shared by the ingest integration tests (header-only, test code). */
#ifndef HSC_IT_COMMON_H
#define HSC_IT_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Expected weights recomputed from the stored events: a double-applied event shows as a difference.
 */
static const char IT_WEIGHTS_MISMATCH_SQL[] =
    "WITH e AS (SELECT l.user_id, t.dim, t.name, sum(hsc_learning_delta(l.kind, l.value)) w"
    " FROM learning_events l JOIN content c ON c.id = l.content_id AND NOT c.deleted"
    " CROSS JOIN LATERAL (SELECT 'genre' dim, g name FROM unnest(c.genres) g UNION ALL"
    "                     SELECT 'theme', th FROM unnest(c.themes) th) t GROUP BY 1,2,3)"
    " SELECT count(*) FROM e FULL JOIN user_preferences p USING (user_id, dim, name)"
    " WHERE p.weight IS NULL OR e.w IS NULL OR abs(p.weight - e.w) > 1e-9";

/* Writes `hsc sample WHAT --count COUNT` to a temporary file; returns its path. */
static inline char *it_sample(struct it *t, const char *what, const char *count, const char *titles)
{
    char *out;
    const char *args[] = {"sample",   what,   "--count", count, "--dim", "16",
                          "--titles", titles, "--users", "50",  NULL};
    if (it_run(t, "hsc", args, &out) != 0) {
        fprintf(stderr, "hsc sample failed\n");
        exit(1);
    }
    char *path = it_temp_file(out, strlen(out));
    free(out);
    return path;
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

#endif
