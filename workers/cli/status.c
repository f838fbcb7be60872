/*
 * hsc status: what a running deployment looks like from outside. Each
 * backend's reachability, version and round trip; each consumer group's
 * state, members and lag per topic. Read-only: it joins no group, creates
 * nothing, and commits nothing. Exit status 1 when a backend is unreachable.
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hsc/codec.h"
#include "kafka.h"
#include "status.h"
#include "util.h"

const char CLI_STATUS_USAGE[] =
    "Usage: hsc status [--json] [--timeout MS] [--freshness-window N]\n"
    "Shows each backend's reachability and version, each consumer group's\n"
    "members and lag per topic (ingest, enrich, embed-index, query), and content\n"
    "freshness (publish -> searchable, p50/p99) over the last N (500) indexed\n"
    "records of each partition. Exit status 1 when a backend cannot be reached.\n";

/* One group's state and members from DescribeConsumerGroups; NULL on error. */
static json_t *describe_group(rd_kafka_t *rk, const char *group, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    char es[256];
    rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, es, sizeof(es));
    const char *groups[] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    json_t *out = NULL;
    const rd_kafka_DescribeConsumerGroups_result_t *res =
        ev ? rd_kafka_event_DescribeConsumerGroups_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **gd =
        res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
    if (n == 1 && !rd_kafka_ConsumerGroupDescription_error(gd[0])) {
        out = json_object();
        json_object_set_new(out, "state",
                            json_string(rd_kafka_consumer_group_state_name(
                                rd_kafka_ConsumerGroupDescription_state(gd[0]))));
        json_t *members = json_array();
        size_t mc = rd_kafka_ConsumerGroupDescription_member_count(gd[0]);
        for (size_t i = 0; i < mc; i++) {
            const rd_kafka_MemberDescription_t *m =
                rd_kafka_ConsumerGroupDescription_member(gd[0], i);
            const rd_kafka_topic_partition_list_t *a =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
            const char *host = rd_kafka_MemberDescription_host(m);
            json_array_append_new(
                members,
                json_pack("{s:s, s:s, s:i}", "client_id", rd_kafka_MemberDescription_client_id(m),
                          "host", host[0] == '/' ? host + 1 : host, /* Kafka writes "/1.2.3.4" */
                          "partitions", a ? a->cnt : 0));
        }
        json_object_set_new(out, "members", members);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return out;
}

/* Lag of group on topic: end offsets minus committed (earliest when none), per partition summed. */
static json_t *topic_lag(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    json_t *out = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == 0 && md->topic_cnt == 1 &&
        !md->topics[0].err) {
        int parts = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
        for (int i = 0; i < parts; i++)
            rd_kafka_topic_partition_list_add(l, topic, i);
        if (rd_kafka_committed(rk, l, timeout_ms) == 0) {
            long long lag = 0, end = 0;
            int ok = 1;
            for (int i = 0; i < parts && ok; i++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, timeout_ms)) {
                    ok = 0;
                    break;
                }
                int64_t c = l->elems[i].offset < 0 ? lo : l->elems[i].offset;
                lag += hi - c;
                end += hi;
            }
            if (ok)
                out = json_pack("{s:s, s:i, s:I, s:I}", "topic", topic, "partitions", parts, "lag",
                                (json_int_t)lag, "end_offset", (json_int_t)end);
        }
        rd_kafka_topic_partition_list_destroy(l);
    } else {
        out = json_pack("{s:s, s:s}", "topic", topic, "error", "no such topic");
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return out;
}

static json_t *group_status(const hsc_config *cfg, const char *worker, const char *group,
                            const char *const *topic_keys, int timeout_ms)
{
    char err[512] = "";
    json_t *g = json_pack("{s:s, s:s}", "worker", worker, "group", group);
    rd_kafka_t *rk = status_kafka_handle(cfg, group, err, sizeof(err));
    if (!rk) {
        json_object_set_new(g, "error", json_string(err));
        return g;
    }
    json_t *d = describe_group(rk, group, timeout_ms);
    json_object_set_new(
        g, "state", json_string(d ? json_string_value(json_object_get(d, "state")) : "Unknown"));
    json_object_set(g, "members", d ? json_object_get(d, "members") : json_array());
    json_decref(d);
    json_t *topics = json_array();
    for (const char *const *k = topic_keys; *k; k++) {
        json_t *t = topic_lag(rk, hsc_config_topic(cfg, *k), timeout_ms);
        if (t)
            json_array_append_new(topics, t);
    }
    json_object_set_new(g, "topics", topics);
    rd_kafka_destroy(rk);
    return g;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/*
 * Content freshness from the tail of hsc.content.indexed: for the last
 * `window` records of each partition that were indexed and carry the
 * content event's publish time, indexed ts - published_ts (publish ->
 * searchable). Reads by assignment: no group joins, nothing is committed.
 */
static json_t *freshness(const hsc_config *cfg, int window, int timeout_ms)
{
    const char *topic = hsc_config_topic(cfg, "topics.content_indexed");
    char err[512] = "";
    rd_kafka_t *rk = status_kafka_handle(cfg, "hsc-status", err, sizeof(err));
    if (!rk)
        return json_pack("{s:s, s:s}", "topic", topic, "error", err);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    json_t *out = NULL;
    long long *ms = NULL;
    size_t n = 0, cap = 0, read = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) || md->topic_cnt != 1 || md->topics[0].err) {
        out = json_pack("{s:s, s:s}", "topic", topic, "error", "no such topic");
        goto done;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int64_t *end = calloc((size_t)parts + 1, sizeof(*end));
    int open = 0;
    for (int i = 0; i < parts; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, timeout_ms))
            continue;
        end[i] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(l, topic, i)->offset =
                hi - window > lo ? hi - window : lo;
            open++;
        }
    }
    if (open)
        rd_kafka_assign(rk, l);
    int64_t until = hsc_mono_us() + (int64_t)timeout_ms * 1000;
    while (open > 0 && hsc_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            hsc_indexed_record r;
            hsc_err e = {0};
            read++;
            if (!hsc_codec_decode_indexed(m->payload, m->len, &r, &e)) {
                if (r.indexed && r.published_ts > 0 && r.ts >= r.published_ts) {
                    if (n == cap) {
                        cap = cap ? 2 * cap : 256;
                        long long *g = realloc(ms, cap * sizeof(*ms));
                        if (g)
                            ms = g;
                        else
                            cap = n;
                    }
                    if (n < cap)
                        ms[n++] = r.ts - r.published_ts;
                }
                hsc_indexed_record_clear(&r);
            }
            if (m->offset + 1 >= end[m->partition])
                open--;
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            open--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(end);
    out = json_pack("{s:s, s:i, s:I, s:I}", "topic", topic, "window", window, "read",
                    (json_int_t)read, "samples", (json_int_t)n);
    if (n) {
        qsort(ms, n, sizeof(*ms), cmp_ll);
        json_object_set_new(out, "p50_ms", json_integer(ms[(n - 1) / 2]));
        json_object_set_new(out, "p99_ms", json_integer(ms[(size_t)((double)(n - 1) * 0.99)]));
        json_object_set_new(out, "max_ms", json_integer(ms[n - 1]));
    }
    if (open > 0)
        json_object_set_new(out, "error", json_string("timed out before the topic's end"));
done:
    free(ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

int cli_status(hsc_config *cfg, int argc, char **argv)
{
    int as_json = 0, timeout_ms = 3000, window = 500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--freshness-window") && i + 1 < argc)
            window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(CLI_STATUS_USAGE, stdout);
            return 0;
        } else {
            fprintf(stderr, "hsc status: unknown argument '%s'\n%s", argv[i], CLI_STATUS_USAGE);
            return 2;
        }
    }
    if (timeout_ms < 100)
        timeout_ms = 100;
    if (window < 1)
        window = 1;
    struct probe probes[5];
    memset(probes, 0, sizeof(probes));
    char err[512] = "";
    rd_kafka_t *rk = status_kafka_handle(cfg, "hsc-status", err, sizeof(err));
    if (rk)
        status_probe_kafka(cfg, rk, timeout_ms, &probes[0]);
    else
        probes[0].name = "kafka", snprintf(probes[0].detail, sizeof(probes[0].detail), "%s", err);
    json_t *migs = NULL;
    status_probe_pg(cfg, timeout_ms, &probes[1], &migs);
    if (!migs)
        migs = json_array();
    status_probe_redis(cfg, timeout_ms, &probes[2]);
    status_probe_milvus(cfg, timeout_ms, &probes[3]);
    status_probe_neo4j(cfg, timeout_ms, &probes[4]);
    if (rk)
        rd_kafka_destroy(rk);
    int all_ok = 1;
    for (int i = 0; i < 5; i++) {
        all_ok &= probes[i].ok;
        char *nl = strchr(probes[i].detail, '\n');
        if (nl)
            *nl = '\0';
    }

    json_t *groups = json_array();
    if (probes[0].ok) {
        static const char *const INGEST[] = {"topics.content_events", "topics.learning_events",
                                             "topics.policy_events", NULL};
        static const char *const ENRICH[] = {"topics.content_ingested", NULL};
        static const char *const INDEXED[] = {"topics.content_enriched", NULL};
        static const char *const INGESTED[] = {"topics.content_ingested", NULL};
        static const char *const QUERY[] = {"topics.search_requests", NULL};
        int from_ingested = !strcmp(hsc_config_str(cfg, "embed_index.input"), "content_ingested");
        json_array_append_new(groups,
                              group_status(cfg, "hsc-ingest", hsc_config_str(cfg, "ingest.group"),
                                           INGEST, timeout_ms));
        json_array_append_new(groups,
                              group_status(cfg, "hsc-enrich", hsc_config_str(cfg, "enrich.group"),
                                           ENRICH, timeout_ms));
        json_array_append_new(groups, group_status(cfg, "hsc-embed-index",
                                                   hsc_config_str(cfg, "embed_index.group"),
                                                   from_ingested ? INGESTED : INDEXED, timeout_ms));
        json_array_append_new(
            groups,
            group_status(cfg, "hsc-query", hsc_config_str(cfg, "query.group"), QUERY, timeout_ms));
    }
    json_t *fresh = probes[0].ok ? freshness(cfg, window, timeout_ms) : json_object();

    if (as_json) {
        json_t *bk = json_array();
        for (int i = 0; i < 5; i++)
            json_array_append_new(bk, status_probe_json(&probes[i]));
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:b}", "backends", bk, "groups", groups,
                              "freshness", fresh, "migrations", migs, "ok", all_ok);
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
        return all_ok ? 0 : 1;
    }
    printf("%-11s %-5s %-22s %8s  %s\n", "BACKEND", "", "VERSION", "ROUND", "DETAIL");
    for (int i = 0; i < 5; i++)
        printf("%-11s %-5s %-22s %6.1fms  %s\n", probes[i].name, probes[i].ok ? "ok" : "DOWN",
               probes[i].version[0] ? probes[i].version : "-", probes[i].ms, probes[i].detail);
    if (json_array_size(groups)) {
        printf("\n%-16s %-20s %-12s %7s  %-32s %10s\n", "WORKER", "GROUP", "STATE", "MEMBERS",
               "TOPIC", "LAG");
        size_t i;
        json_t *g;
        json_array_foreach (groups, i, g) {
            json_t *topics = json_object_get(g, "topics");
            size_t nt = json_array_size(topics);
            for (size_t k = 0; k < (nt ? nt : 1); k++) {
                json_t *t = json_array_get(topics, k);
                char lag[32];
                if (json_object_get(t, "lag"))
                    snprintf(lag, sizeof(lag), "%lld",
                             (long long)json_integer_value(json_object_get(t, "lag")));
                else
                    snprintf(lag, sizeof(lag), "%s",
                             t ? json_string_value(json_object_get(t, "error")) : "-");
                if (k == 0)
                    printf("%-16s %-20s %-12s %7zu  %-32s %10s\n",
                           json_string_value(json_object_get(g, "worker")),
                           json_string_value(json_object_get(g, "group")),
                           json_string_value(json_object_get(g, "state"))
                               ? json_string_value(json_object_get(g, "state"))
                               : "?",
                           json_array_size(json_object_get(g, "members")),
                           t ? json_string_value(json_object_get(t, "topic")) : "-", lag);
                else
                    printf("%-16s %-20s %-12s %7s  %-32s %10s\n", "", "", "", "",
                           json_string_value(json_object_get(t, "topic")), lag);
            }
            size_t j;
            json_t *m;
            json_array_foreach (json_object_get(g, "members"), j, m)
                printf("%-16s   member %s (%s), %lld partitions\n", "",
                       json_string_value(json_object_get(m, "client_id")),
                       json_string_value(json_object_get(m, "host")),
                       (long long)json_integer_value(json_object_get(m, "partitions")));
        }
    }
    if (json_object_get(fresh, "topic")) {
        json_t *p50 = json_object_get(fresh, "p50_ms");
        printf(
            "\nFRESHNESS (publish -> searchable, last %lld indexed records per partition of %s)\n",
            (long long)json_integer_value(json_object_get(fresh, "window")),
            json_string_value(json_object_get(fresh, "topic")));
        if (p50)
            printf("  p50 %.3f s, p99 %.3f s, max %.3f s over %lld titles\n",
                   (double)json_integer_value(p50) / 1e3,
                   (double)json_integer_value(json_object_get(fresh, "p99_ms")) / 1e3,
                   (double)json_integer_value(json_object_get(fresh, "max_ms")) / 1e3,
                   (long long)json_integer_value(json_object_get(fresh, "samples")));
        else
            printf("  no indexed record with a publish time (%lld read)\n",
                   (long long)json_integer_value(json_object_get(fresh, "read")));
        if (json_object_get(fresh, "error"))
            printf("  %s\n", json_string_value(json_object_get(fresh, "error")));
    }
    json_decref(fresh);
    size_t i;
    json_t *mg;
    if (json_array_size(migs))
        printf("\n%-16s %-10s %21s %9s  %s\n", "MIGRATION", "STATE", "PUBLISHED/TITLES", "PROBLEMS",
               "SOURCE");
    json_array_foreach (migs, i, mg) {
        char prog[48];
        snprintf(prog, sizeof(prog), "%lld/%lld",
                 (long long)json_integer_value(json_object_get(mg, "published")),
                 (long long)json_integer_value(json_object_get(mg, "titles")));
        printf("%-16s %-10s %21s %9lld  %s\n", json_string_value(json_object_get(mg, "name")),
               json_is_true(json_object_get(mg, "finished"))                          ? "finished"
               : json_integer_value(json_object_get(mg, "seconds_since_update")) < 60 ? "running"
                                                                                      : "stopped",
               prog, (long long)json_integer_value(json_object_get(mg, "problems")),
               json_string_value(json_object_get(mg, "source")));
    }
    json_decref(migs);
    json_decref(groups);
    return all_ok ? 0 : 1;
}
