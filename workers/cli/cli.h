/* The subcommands of the `hsc` command line; each returns a process exit status. */
#ifndef HSC_CLI_H
#define HSC_CLI_H

#include "config.h"

/* hsc publish: JSON lines to a topic as encoded messages. */
int cli_publish(hsc_config *cfg, int argc, char **argv);

/* The most topics schemas/topics.tsv may list. */
#define CLI_MAX_TOPICS 64

/* One topic hsc uses: its full name (with topics.prefix), partitions and settings. */
struct cli_topic_spec {
    char name[256];
    int partitions;
    char config[512];
};

/* Reads schemas/topics.tsv into specs (at most CLI_MAX_TOPICS); -1 after printing why. */
int cli_topic_specs(const hsc_config *cfg, struct cli_topic_spec *specs, int *n);

/* hsc topics create|list|delete: the topics of schemas/topics.tsv. */
int cli_topics(hsc_config *cfg, int argc, char **argv);

/* hsc schema apply|status: versioned PostgreSQL migrations. */
int cli_schema(hsc_config *cfg, int argc, char **argv);

/* hsc sample: synthetic catalogue and interactions as JSON lines. */
int cli_sample(hsc_config *cfg, int argc, char **argv);

/* hsc search: one search over request/reply, as a table or JSON. */
int cli_search(hsc_config *cfg, int argc, char **argv);

/* hsc status: backends' reachability and versions, consumer groups' members and lag. */
int cli_status(hsc_config *cfg, int argc, char **argv);

/* hsc policy set|show|erase: a user's policy as events, and what PostgreSQL holds. */
int cli_policy(hsc_config *cfg, int argc, char **argv);

/* hsc config [--ini|--markdown]: the effective configuration and its origins, or the docs. */
int cli_config(hsc_config *cfg, int argc, char **argv);

/* hsc config's --help text. */
extern const char CLI_CONFIG_USAGE[];
/* Each subcommand's --help text (hsc_cli_dispatch prints it before any start-up). */
extern const char CLI_PUBLISH_USAGE[], CLI_TOPICS_USAGE[], CLI_SCHEMA_USAGE[], CLI_SAMPLE_USAGE[],
    CLI_SEARCH_USAGE[], CLI_STATUS_USAGE[], CLI_POLICY_USAGE[];

#endif
