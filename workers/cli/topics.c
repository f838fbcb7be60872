/*
 * hsc topics: creates the topics listed in schemas/topics.tsv through
 * Kafka's admin API (existing topics are left as they are), lists them
 * with their partition counts, or deletes them (a namespace's teardown;
 * without a topics.prefix only with --yes, since those are production's).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kafka.h"

int cli_topic_specs(const hsc_config *cfg, struct cli_topic_spec *specs, int *n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics.tsv", hsc_config_str(cfg, "paths.schemas"));
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "hsc topics: cannot read %s (set paths.schemas)\n", path);
        return -1;
    }
    char line[1024];
    int lineno = 0;
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
            continue;
        char key[128], cls[32], conf[512];
        if (sscanf(line, "%127s %31s %511s", key, cls, conf) != 3 || *n >= CLI_MAX_TOPICS) {
            fprintf(stderr, "%s:%d: expected 'name class config'\n", path, lineno);
            fclose(f);
            return -1;
        }
        char k[160], pk[64];
        snprintf(k, sizeof(k), "topics.%s", key);
        snprintf(pk, sizeof(pk), "topics.%s_partitions", cls);
        struct cli_topic_spec *s = &specs[(*n)++];
        /* The names come from the file: look them up before the getters, which abort on a typo. */
        const struct hsc_config_key *tk = hsc_config_key_find(k);
        if (tk && tk->type == HSC_CONFIG_STR)
            snprintf(s->name, sizeof(s->name), "%s", hsc_config_topic(cfg, k));
        if (!tk || tk->type != HSC_CONFIG_STR || !s->name[0]) {
            fprintf(stderr, "%s:%d: no config key %s\n", path, lineno, k);
            fclose(f);
            return -1;
        }
        const struct hsc_config_key *pt = hsc_config_key_find(pk);
        s->partitions = pt && pt->type == HSC_CONFIG_INT ? (int)hsc_config_int(cfg, pk) : 0;
        if (s->partitions <= 0) {
            fprintf(stderr, "%s:%d: unknown class '%s'\n", path, lineno, cls);
            fclose(f);
            return -1;
        }
        snprintf(s->config, sizeof(s->config), "%s", strcmp(conf, "-") ? conf : "");
    }
    fclose(f);
    return 0;
}

/* Reads schemas/topics.tsv into specs and opens the admin client; NULL (reported) on failure. */
static rd_kafka_t *admin_client(hsc_config *cfg, struct cli_topic_spec *specs, int *n)
{
    if (cli_topic_specs(cfg, specs, n))
        return NULL;
    hsc_err err = {0};
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "admin", NULL, &err);
    if (!conf) {
        fprintf(stderr, "hsc topics: config error: %s\n", err.msg);
        return NULL;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "hsc topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Admin options with hsc's timeouts: the broker may take 30 s to finish the operation. */
static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    char errstr[512];
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(opts, 30000, errstr, sizeof(errstr));
    return opts;
}

/*
 * Prints one line per topic of an admin result: done, or already so (the error
 * `already`, printed as that word), or the error on stderr. Returns 1 on any other error.
 */
static int print_results(const rd_kafka_topic_result_t **res, size_t cnt, const char *done,
                         rd_kafka_resp_err_t already, const char *already_word)
{
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (!e) {
            printf("%s %s\n", done, name);
        } else if (e == already) {
            printf("%s %s\n", already_word, name);
        } else {
            fprintf(stderr, "hsc topics: %s: %s\n", name,
                    rd_kafka_topic_result_error_string(res[i]));
            rc = 1;
        }
    }
    return rc;
}

/* Waits for an admin request's result on q; NULL (reported) if none came or the whole request
 * failed. The caller destroys the event. */
static rd_kafka_event_t *admin_result(hsc_config *cfg, rd_kafka_queue_t *q)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev) {
        fprintf(stderr, "hsc topics: no answer from %s within 60 s\n",
                hsc_config_str(cfg, "kafka.brokers"));
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "hsc topics: %s\n", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static int create(hsc_config *cfg)
{
    struct cli_topic_spec specs[CLI_MAX_TOPICS];
    int n;
    rd_kafka_t *rk = admin_client(cfg, specs, &n);
    if (!rk)
        return 2;
    int repl = (int)hsc_config_int(cfg, "topics.replication_factor");
    rd_kafka_NewTopic_t *nt[CLI_MAX_TOPICS];
    char errstr[512];
    for (int i = 0; i < n; i++) {
        nt[i] =
            rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions, repl, errstr, sizeof(errstr));
        char *save = NULL;
        for (char *kv = strtok_r(specs[i].config, ",", &save); kv;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            rd_kafka_NewTopic_set_config(nt[i], kv, eq + 1);
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, opts, q);
    rd_kafka_event_t *ev = admin_result(cfg, q);
    int rc = 0;
    if (!ev) {
        rc = 1;
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rc = print_results(res, cnt, "created", RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, "exists ");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int list(hsc_config *cfg)
{
    struct cli_topic_spec specs[CLI_MAX_TOPICS];
    int n;
    rd_kafka_t *rk = admin_client(cfg, specs, &n);
    if (!rk)
        return 2;
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 15000);
    if (e) {
        fprintf(stderr, "hsc topics: metadata: %s\n", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    printf("%-40s %10s\n", "TOPIC", "PARTITIONS");
    for (int i = 0; i < n; i++) {
        int parts = -1;
        for (int t = 0; t < md->topic_cnt; t++)
            if (!strcmp(md->topics[t].topic, specs[i].name) && !md->topics[t].err)
                parts = md->topics[t].partition_cnt;
        if (parts < 0) {
            printf("%-40s %10s\n", specs[i].name, "missing");
            rc = 1;
        } else {
            printf("%-40s %10d\n", specs[i].name, parts);
        }
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* Deletes the topics of schemas/topics.tsv under this prefix; a topic already gone is no error. */
static int delete (hsc_config *cfg, int argc, char **argv)
{
    int yes = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--yes")) {
            fprintf(stderr, "hsc topics delete: unknown option '%s'\n%s", argv[i],
                    CLI_TOPICS_USAGE);
            return 2;
        }
        yes = 1;
    }
    /* A test's or a staging namespace carries a prefix; without one these are the topics
     * every deployment of this cluster reads, and their events go with them. */
    if (!hsc_config_str(cfg, "topics.prefix")[0] && !yes) {
        fprintf(stderr, "hsc topics delete: topics.prefix is empty, so this deletes hsc's "
                        "unprefixed topics and every event on them; add --yes\n");
        return 2;
    }
    struct cli_topic_spec specs[CLI_MAX_TOPICS];
    int n;
    rd_kafka_t *rk = admin_client(cfg, specs, &n);
    if (!rk)
        return 2;
    rd_kafka_DeleteTopic_t *dt[CLI_MAX_TOPICS];
    for (int i = 0; i < n; i++)
        dt[i] = rd_kafka_DeleteTopic_new(specs[i].name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(rk, dt, (size_t)n, opts, q);
    rd_kafka_event_t *ev = admin_result(cfg, q);
    int rc = 0;
    if (!ev) {
        rc = 1;
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        rc = print_results(res, cnt, "deleted", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "absent ");
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteTopic_destroy_array(dt, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

const char CLI_TOPICS_USAGE[] =
    "Usage: hsc topics create|list\n"
    "       hsc topics delete [--yes]\n"
    "  create  creates every topic of schemas/topics.tsv that does not exist yet\n"
    "  list    shows each topic and its partition count ('missing' exits 1)\n"
    "  delete  deletes those topics and every event on them ('absent' if already gone);\n"
    "          with an empty topics.prefix (production's names) only with --yes\n";

int cli_topics(hsc_config *cfg, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "create"))
        return create(cfg);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return list(cfg);
    if (argc >= 2 && !strcmp(argv[1], "delete"))
        return delete (cfg, argc, argv);
    fputs(CLI_TOPICS_USAGE, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
