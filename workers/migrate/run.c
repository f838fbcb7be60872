/*
 * The migration run: reads the legacy graph a page at a time (keyset on the
 * id, so a restart needs only the last id), publishes each good title to
 * hsc.content.events and each bad one to the DLQ, and checkpoints the page
 * once Kafka has acknowledged all of it. The pipeline does the storing; its
 * writes are idempotent per id and version, so the page a crash replays
 * lands once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsc/codec.h"
#include "log.h"
#include "migrate_internal.h"
#include "util.h"

static void on_delivery(void *arg, int code, const char *errstr, const rd_kafka_message_t *rkm)
{
    struct mig *m = arg;
    if (code) {
        if (!m->failed)
            snprintf(m->deliver_err, sizeof(m->deliver_err), "%s", errstr ? errstr : "failed");
        m->failed++;
    } else {
        m->acked++;
    }
    (void)rkm;
}

static int send_one(struct mig *m, const char *topic, const char *key, const void *val, size_t len,
                    rd_kafka_headers_t *h, hsc_err *err)
{
    if (hsc_producer_send(m->prod, topic, -1, key, strlen(key), val, len, h, on_delivery, m, err)) {
        rd_kafka_headers_destroy(h);
        return err->code;
    }
    m->sent++;
    return 0;
}

static rd_kafka_headers_t *base_headers(struct mig *m, const char *eid)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "hsc-migrate", -1, m->name, -1);
    rd_kafka_header_add(h, "hsc-source", -1, eid, -1);
    return h;
}

/* A title that cannot be migrated goes to the DLQ as JSON, with the reason in the headers. */
static int send_problem(struct mig *m, const struct migrate_problem *pb, const json_t *row,
                        hsc_err *err)
{
    json_t *o = json_object();
    static const char *const COLS[MIGRATE_PAGE_COLUMNS] = {
        "id",     "copies",   "eid",      "title",      "description", "kind",
        "year",   "language", "maturity", "duration_s", "version",     "embedding",
        "genres", "themes",   "moods",    "related"};
    if (json_array_size(row) == MIGRATE_PAGE_COLUMNS)
        for (size_t i = 0; i < MIGRATE_PAGE_COLUMNS; i++)
            json_object_set(o, COLS[i], json_array_get(row, i));
    else
        json_object_set_new(o, "id", json_string(pb->id));
    json_object_set_new(o, "eid", json_string(pb->eid));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    rd_kafka_headers_t *h = base_headers(m, pb->eid);
    rd_kafka_header_add(h, "hsc-stage", -1, "migrate", -1);
    rd_kafka_header_add(h, "hsc-error", -1, pb->detail, -1);
    rd_kafka_header_add(h, "hsc-error-code", -1, "invalid", -1);
    rd_kafka_header_add(h, "hsc-problem", -1, migrate_problem_name(pb->kind), -1);
    int rc = send_one(m, m->dlq, *pb->id ? pb->id : pb->eid, text, strlen(text), h, err);
    free(text);
    return rc;
}

static int send_event(struct mig *m, const hsc_content_event *ev, const char *eid, hsc_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    if (hsc_codec_encode_content(ev, &buf, &len, err))
        return err->code;
    int rc = send_one(m, m->topic, ev->id, buf, len, base_headers(m, eid), err);
    free(buf);
    return rc;
}

/* Waits for every message sent so far; an undelivered one fails the page. */
static int await_deliveries(struct mig *m, hsc_err *err)
{
    while (m->acked + m->failed < m->sent)
        ev_run(m->loop, EVRUN_ONCE);
    if (m->failed)
        return hsc_err_set(err, HSC_ETRANSIENT, "kafka: %lld messages not delivered: %s", m->failed,
                           m->deliver_err);
    return 0;
}

static json_t *after_value(const struct mig *m, const char *after)
{
    if (!m->mp.id_integer)
        return json_string(after);
    long long v;
    if (!*after || hsc_parse_ll(after, &v))
        return json_integer(INT64_MIN);
    return json_integer(v);
}

json_t *mig_read_page(struct mig *m, const char *after, hsc_err *err)
{
    json_t *params = json_object();
    json_object_set_new(params, "after", after_value(m, after));
    json_object_set_new(params, "limit", json_integer(m->page_size));
    return mig_neo4j_rows(m, m->legacy, m->page_cypher, params, err);
}

long long mig_count_titles(struct mig *m, hsc_err *err)
{
    char *q = migrate_count_cypher(&m->mp);
    json_t *rows = mig_neo4j_rows(m, m->legacy, q, NULL, err);
    free(q);
    if (!rows)
        return -1;
    long long n = json_integer_value(json_array_get(json_array_get(rows, 0), 0));
    json_decref(rows);
    return n;
}

/* Nodes the keyset cannot reach (no id, or one of the wrong type) are problems too. */
static int scan_bad_ids(struct mig *m, int publish, hsc_err *err)
{
    char *q = migrate_bad_id_cypher(&m->mp);
    json_t *rows = mig_neo4j_rows(m, m->legacy, q, NULL, err);
    free(q);
    if (!rows)
        return err->code;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach (rows, i, row) {
        struct migrate_problem pb = {.kind = MPK_BAD_ID};
        const json_t *eid = json_array_get(row, 0), *id = json_array_get(row, 1);
        snprintf(pb.eid, sizeof(pb.eid), "%s",
                 json_string_value(eid) ? json_string_value(eid) : "");
        snprintf(pb.id, sizeof(pb.id), "%s", json_is_string(id) ? json_string_value(id) : "");
        snprintf(pb.detail, sizeof(pb.detail), "id (property %s): %s", m->mp.id_prop,
                 json_is_null(id)   ? "missing"
                 : m->mp.id_integer ? "not an integer"
                 : *pb.id           ? "not a string"
                                    : "empty");
        mig_add_problem(m, &pb);
        m->done++;
        if (publish && (rc = send_problem(m, &pb, NULL, err)))
            break;
    }
    json_decref(rows);
    return rc;
}

static int ensure_index(struct mig *m, hsc_err *err)
{
    if (!hsc_config_bool(m->cfg, "migrate.create_index"))
        return 0;
    char q[512];
    snprintf(q, sizeof(q), "CREATE INDEX hsc_migrate_%s_%s IF NOT EXISTS FOR (n:`%s`) ON (n.`%s`)",
             m->mp.label, m->mp.id_prop, m->mp.label, m->mp.id_prop);
    json_t *rows = mig_neo4j_rows(m, m->legacy, q, NULL, err);
    json_decref(rows);
    return rows ? 0 : err->code;
}

/* Reads every page after `after`; publishes unless dry. */
static int run_pages(struct mig *m, char *after, size_t after_cap, hsc_err *err)
{
    for (;;) {
        if (mig_stop)
            return hsc_err_set(err, HSC_ECANCELED, "stopped by signal %d after id '%s'",
                               (int)mig_stop, after);
        int64_t t_read = hsc_mono_us();
        json_t *rows = mig_read_page(m, after, err);
        if (!rows)
            return err->code;
        size_t n = json_array_size(rows);
        if (!n) {
            json_decref(rows);
            return 0;
        }
        int64_t t_send = hsc_mono_us();
        long long pub = 0;
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            json_t *row = json_array_get(rows, i);
            hsc_content_event ev;
            struct migrate_problem pb;
            if (migrate_row_to_event(&m->mp, row, &ev, &pb)) {
                mig_add_problem(m, &pb);
                if (!m->dry_run)
                    rc = send_problem(m, &pb, row, err);
            } else {
                if (!m->dry_run)
                    rc = send_event(m, &ev, pb.eid, err);
                pub++;
                hsc_content_event_clear(&ev);
                if (!rc && m->rate > 0 && !m->dry_run) {
                    /* pace by titles sent since start, so pauses are made up smoothly */
                    double due = (double)(m->published + pub - m->resumed_from) / m->rate;
                    double now = (double)(hsc_mono_us() - m->started_us) / 1e6;
                    if (due > now)
                        mig_loop_sleep(m, due - now);
                }
            }
            m->done++;
            ev_run(m->loop, EVRUN_NOWAIT);
        }
        migrate_row_id(json_array_get(rows, n - 1), after, after_cap);
        json_decref(rows);
        int64_t t_ack = hsc_mono_us();
        if (!rc && !m->dry_run)
            rc = await_deliveries(m, err);
        if (rc)
            return rc;
        m->published += pub;
        int64_t t_ckpt = hsc_mono_us();
        if (!m->dry_run && (rc = mig_checkpoint_save(m, after, 0, err)))
            return rc;
        if (hsc_log_enabled(HSC_LOG_DEBUG)) {
            /* where a page's time goes, to tell a slow source from a slow broker */
            char rows_s[24], rd[24], sd[24], ak[24], ck[24];
            int64_t end = hsc_mono_us();
            snprintf(rows_s, sizeof(rows_s), "%zu", n);
            snprintf(rd, sizeof(rd), "%.1f", (double)(t_send - t_read) / 1000.0);
            snprintf(sd, sizeof(sd), "%.1f", (double)(t_ack - t_send) / 1000.0);
            snprintf(ak, sizeof(ak), "%.1f", (double)(t_ckpt - t_ack) / 1000.0);
            snprintf(ck, sizeof(ck), "%.1f", (double)(end - t_ckpt) / 1000.0);
            hsc_log_debug("page", "rows", rows_s, "after", after, "read_ms", rd, "send_ms", sd,
                          "ack_ms", ak, "checkpoint_ms", ck, NULL);
        }
        mig_progress(m, 0);
    }
}

int mig_migrate(struct mig *m)
{
    hsc_err err = {0};
    struct mig_checkpoint c = {0};
    char after[HSC_MAX_ID_LEN + 32] = "";
    int rc;
    if (!m->dry_run) {
        if (m->restart && (rc = mig_checkpoint_reset(m, &err)))
            goto out;
        if ((rc = mig_checkpoint_load(m, &c, &err)))
            goto out;
        if (c.exists && strcmp(c.source, m->source)) {
            rc = hsc_err_set(&err, HSC_ECONFIG,
                             "checkpoint '%s' was made for %s; this run reads %s (use --restart "
                             "or another migrate.name)",
                             m->name, c.source, m->source);
            goto out;
        }
        if (c.finished) {
            fprintf(stderr,
                    "migration '%s' is already complete (%lld published); --verify checks it, "
                    "--restart runs it again\n",
                    m->name, c.published);
            return 0;
        }
        snprintf(after, sizeof(after), "%s", c.after);
        m->published = c.published;
    }
    if ((rc = ensure_index(m, &err)))
        goto out;
    if ((m->total = mig_count_titles(m, &err)) < 0) {
        rc = err.code;
        goto out;
    }
    /* On a resume the unreachable nodes were reported by the first run. */
    int fresh = !c.exists || !*c.after;
    if (fresh) {
        if ((rc = scan_bad_ids(m, !m->dry_run, &err)))
            goto out;
    } else {
        m->done = c.published + c.problems;
        m->resumed_from = m->done;
        m->earlier_problems = c.problems;
    }
    if ((rc = mig_do_policies(m, !m->dry_run, &err)))
        goto out;
    if (!m->dry_run && (rc = mig_checkpoint_save(m, after, 0, &err)))
        goto out;
    m->started_us = hsc_mono_us();
    if ((rc = run_pages(m, after, sizeof(after), &err)))
        goto out;
    if (!m->dry_run && (rc = mig_checkpoint_save(m, after, 1, &err)))
        goto out;
out:
    mig_progress(m, 1);
    if (rc)
        hsc_log_error(m->dry_run ? "dry run failed" : "migration stopped", "error", err.msg,
                      "after", after, NULL);
    int status = rc ? (rc == HSC_ECONFIG ? 2 : 3)
                    : (m->dry_run && mig_title_problems(m) + m->counts[MPK_POLICY] ? 1 : 0);
    return mig_report_run(m, status, &err);
}
