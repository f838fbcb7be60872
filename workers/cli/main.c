/* hsc: the command line. Dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "migrate.h"

static const char USAGE[] =
    "Usage: hsc [options] COMMAND [ARGS]\n"
    "Commands:\n"
    "  publish --topic content|learning FILE.jsonl   publish JSON lines as events ('-' reads "
    "stdin)\n"
    "  topics create|list                            create or list hsc's Kafka topics\n"
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

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int next = 1;
    int rc = hsc_cli_start(argc, argv, "hsc", USAGE, &cfg, &next);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (next >= argc) {
        fputs(USAGE, stderr);
        hsc_config_free(cfg);
        return 2;
    }
    const char *cmd = argv[next];
    int sub_argc = argc - next;
    char **sub_argv = argv + next;
    if (!strcmp(cmd, "publish"))
        rc = cli_publish(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "topics"))
        rc = cli_topics(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "sample"))
        rc = cli_sample(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "search"))
        rc = cli_search(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "status"))
        rc = cli_status(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "migrate"))
        rc = migrate_main(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "policy"))
        rc = cli_policy(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "schema"))
        rc = cli_schema(cfg, sub_argc, sub_argv);
    else if (!strcmp(cmd, "config"))
        rc = cli_config(cfg, sub_argc, sub_argv);
    else {
        fprintf(stderr, "hsc: unknown command '%s' (see hsc --help)\n", cmd);
        rc = 2;
    }
    hsc_config_free(cfg);
    return rc;
}
