/*
 * What a run tells its user: the problems counted and listed, the progress
 * line, and the closing report of a migration or a verify, as text or JSON.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrate_internal.h"
#include "util.h"

/* The most problems a report lists one by one (the counts are always complete). */
#define MAX_LISTED 100000

void mig_add_problem(struct mig *m, const struct migrate_problem *pb)
{
    m->counts[pb->kind]++;
    if (m->nproblems == MAX_LISTED)
        return;
    struct migrate_problem *p = hsc_grow(m->problems, m->nproblems, &m->cap, sizeof(*p), 64);
    if (!p)
        return;
    m->problems = p;
    m->problems[m->nproblems++] = *pb;
}

long long mig_title_problems(const struct mig *m)
{
    long long n = m->earlier_problems;
    for (int k = 1; k < MPK_KINDS; k++)
        if (k != MPK_POLICY)
            n += m->counts[k];
    return n;
}

void mig_progress(struct mig *m, int final)
{
    int64_t now = hsc_mono_us();
    if (m->quiet || (!final && now - m->last_progress_us < 1000000))
        return;
    m->last_progress_us = now;
    double secs = (double)(now - m->started_us) / 1e6;
    long long this_run = m->done - m->resumed_from;
    double rate = secs > 0 ? (double)this_run / secs : 0;
    long long left = m->total > m->done ? m->total - m->done : 0;
    double eta = rate > 0 ? (double)left / rate : 0;
    char line[256];
    snprintf(line, sizeof(line),
             "%s: %lld/%lld titles (%.1f%%), %lld published, %lld problems, %.0f titles/s, "
             "ETA %d:%02d",
             m->dry_run ? "dry run" : "migrate", m->done, m->total,
             m->total ? 100.0 * (double)m->done / (double)m->total : 100.0, m->published,
             mig_title_problems(m), rate, (int)(eta / 60), (int)fmod(eta, 60));
    if (m->tty) {
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    } else {
        char done[32], total[32], r[32], e[32];
        snprintf(done, sizeof(done), "%lld", m->done);
        snprintf(total, sizeof(total), "%lld", m->total);
        snprintf(r, sizeof(r), "%.1f", rate);
        snprintf(e, sizeof(e), "%.0f", eta);
        hsc_log_info("progress", "done", done, "total", total, "rate", r, "eta_s", e, NULL);
    }
}

static void print_problems(const struct mig *m, FILE *f)
{
    for (size_t i = 0; i < m->nproblems; i++)
        fprintf(f, "  %-16s %-24s %s  [%s]\n", migrate_problem_name(m->problems[i].kind),
                m->problems[i].id[0] ? m->problems[i].id : "-", m->problems[i].detail,
                m->problems[i].eid);
}

static json_t *problems_json(const struct mig *m)
{
    json_t *counts = json_object(), *list = json_array();
    for (int k = 1; k < MPK_KINDS; k++)
        json_object_set_new(counts, migrate_problem_name(k), json_integer(m->counts[k]));
    for (size_t i = 0; i < m->nproblems; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "kind",
                                              migrate_problem_name(m->problems[i].kind), "id",
                                              m->problems[i].id, "eid", m->problems[i].eid,
                                              "detail", m->problems[i].detail));
    return json_pack("{s:o, s:o}", "counts", counts, "list", list);
}

int mig_report_run(struct mig *m, int status, const hsc_err *why)
{
    double secs = (double)(hsc_mono_us() - m->started_us) / 1e6;
    long long tp = mig_title_problems(m);
    if (m->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:b}", "mode",
            m->dry_run ? "dry_run" : "migrate", "source", m->source, "titles", (json_int_t)m->total,
            "migratable", (json_int_t)(m->total - tp), "published", (json_int_t)m->published,
            "policies", (json_int_t)m->policies, "resumed_from", (json_int_t)m->resumed_from,
            "seconds", secs, "problems", problems_json(m), "complete", status == 0);
        if (why && why->code)
            json_object_set_new(o, "error", json_string(why->msg));
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %s\n", m->dry_run ? "dry run" : "migration", m->source);
        printf("  titles        %lld\n  migratable    %lld\n", m->total, m->total - tp);
        if (!m->dry_run)
            printf("  published     %lld (this run %lld titles in %.1f s, %.0f titles/s)\n",
                   m->published, m->done - m->resumed_from, secs,
                   secs > 0 ? (double)(m->done - m->resumed_from) / secs : 0);
        printf("  problems      %lld\n", tp);
        if (m->earlier_problems)
            printf("    %-16s %lld (sent to the DLQ then)\n", "earlier runs", m->earlier_problems);
        for (int k = 1; k < MPK_KINDS; k++)
            if (k != MPK_POLICY && m->counts[k])
                printf("    %-16s %lld\n", migrate_problem_name(k), m->counts[k]);
        if (*m->mp.policy_table)
            printf("  policies      %lld (%lld problems)\n", m->policies, m->counts[MPK_POLICY]);
        if (m->nproblems) {
            printf("problems%s:\n", m->dry_run ? "" : " (sent to the DLQ)");
            print_problems(m, stdout);
        }
        if (why && why->code)
            printf("stopped: %s\n", why->msg);
    }
    return status;
}

static void print_list(const char *what, const json_t *list)
{
    if (!json_array_size(list))
        return;
    printf("  %s:", what);
    size_t i;
    json_t *x;
    json_array_foreach (list, i, x)
        printf("%s %s", i ? "," : "", json_string_value(x));
    printf("%s\n", json_array_size(list) >= 50 ? ", ..." : "");
}

int mig_report_verify(struct mig *m, const struct mig_vreport *v, int rc, const hsc_err *err,
                      double secs)
{
    int ok = !rc && mig_verify_ok(v);
    if (m->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, "
            "s:I}",
            "mode", "verify", "source", m->source, "ok", ok, "seconds", secs, "titles",
            (json_int_t)v->titles, "migratable", (json_int_t)v->migratable, "postgresql",
            (json_int_t)v->pg_present, "milvus", (json_int_t)v->milvus_present, "graph",
            (json_int_t)v->graph_present, "changed_since", (json_int_t)v->changed,
            "embeddings_compared", (json_int_t)v->compared, "embeddings_different",
            (json_int_t)v->vec_bad, "max_difference", v->max_diff, "relationships",
            (json_int_t)v->rels, "relationships_missing", (json_int_t)v->rels_missing, "policies",
            (json_int_t)v->pol_total, "policies_matching", (json_int_t)v->pol_ok);
        for (int l = 0; l < VL_COUNT; l++)
            json_object_set(o, mig_vlists[l].json, v->list[l]);
        if (rc)
            json_object_set_new(o, "error", json_string(err->msg));
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
        return ok ? 0 : rc ? 3 : 1;
    }
    printf("verify: %s\n", m->source);
    printf("  legacy       %lld titles, %lld migratable\n", v->titles, v->migratable);
    printf("  postgresql   %lld/%lld present%s\n", v->pg_present, v->migratable,
           v->changed ? " (some changed since; not compared)" : "");
    printf("  milvus       %lld/%lld present; %lld embeddings compared, %lld different "
           "(largest difference %.3g)\n",
           v->milvus_present, v->migratable, v->compared, v->vec_bad, v->max_diff);
    printf("  graph        %lld/%lld present; %lld/%lld relationships\n", v->graph_present,
           v->migratable, v->rels - v->rels_missing, v->rels);
    if (*m->mp.policy_table)
        printf("  policies     %lld/%lld match\n", v->pol_ok, v->pol_total);
    for (int l = 0; l < VL_COUNT; l++)
        print_list(mig_vlists[l].text, v->list[l]);
    if (rc)
        printf("ERROR: %s\n", err->msg);
    else
        printf("%s\n",
               ok ? "OK: every migratable title and policy is in hsc" : "INCOMPLETE: see above");
    return ok ? 0 : rc ? 3 : 1;
}
