/* hsc: the command line. Names its subcommands; each lives in a file of its own. */
#include "cli.h"
#include "cli_common.h"
#include "migrate.h"

static const char USAGE[] =
    "Usage: hsc [options] COMMAND [ARGS]\n"
    "Commands:\n"
    "  publish --topic content|learning FILE.jsonl   publish JSON lines as events ('-' reads "
    "stdin)\n"
    "  topics create|list|delete [--yes]             create, list or delete hsc's Kafka topics\n"
    "                                                (delete needs --yes without a topics.prefix)\n"
    "  schema apply|status                           apply or show PostgreSQL migrations\n"
    "  sample content|learning [--count N] ...       synthetic JSON lines for demos and tests\n"
    "  search [--user ID] [--like ID] [--seed ID]... search over request/reply (--json for "
    "scripts)\n"
    "  migrate [--dry-run|--verify] [--rate N]       stream a legacy Neo4j catalogue into hsc\n"
    "  status [--json]                               backends, consumer groups, members and lag\n"
    "  policy set|show|erase USER [...]              a user's constraints and preferences "
    "(events)\n"
    "  config [--ini|--markdown]                     effective configuration and where each "
    "value came from\n"
    "Run 'hsc COMMAND --help' for a command's own options.\n\n";

static const struct hsc_cli_command COMMANDS[] = {
    {"publish", cli_publish, CLI_PUBLISH_USAGE}, {"topics", cli_topics, CLI_TOPICS_USAGE},
    {"sample", cli_sample, CLI_SAMPLE_USAGE},    {"search", cli_search, CLI_SEARCH_USAGE},
    {"status", cli_status, CLI_STATUS_USAGE},    {"migrate", migrate_main, MIGRATE_USAGE},
    {"policy", cli_policy, CLI_POLICY_USAGE},    {"schema", cli_schema, CLI_SCHEMA_USAGE},
    {"config", cli_config, CLI_CONFIG_USAGE},
};

int main(int argc, char **argv)
{
    return hsc_cli_dispatch(argc, argv, "hsc", USAGE, COMMANDS,
                            sizeof(COMMANDS) / sizeof(COMMANDS[0]));
}
