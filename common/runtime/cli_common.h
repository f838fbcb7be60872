/*
 * The options every hsc binary takes (--config, --set, --print-config,
 * --help, --version) and the start-up they share: load the INI file named by
 * --config or $HSC_CONFIG, apply HSC_* overrides, set up logging.
 */
#ifndef HSC_CLI_COMMON_H
#define HSC_CLI_COMMON_H

#include <stddef.h>

#include "config.h"

/*
 * Parses the common options at the front of argv. Returns 0 with *cfg set and
 * *next at the first argument it did not consume; or an exit status > 0 after
 * printing help, the version, the config or an error (2 for a usage or
 * config error).
 */
int hsc_cli_start(int argc, char **argv, const char *prog, const char *usage, hsc_config **cfg,
                  int *next);

/* One subcommand of a binary with several: its name, entry point and --help text. */
struct hsc_cli_command {
    const char *name;
    int (*run)(hsc_config *cfg, int argc, char **argv); /* argv[0] is the name; an exit status */
    const char *usage;
};

/*
 * The main of a binary with subcommands: the common options, then the
 * command argv names. "COMMAND ... --help" prints that command's usage
 * before anything starts. Returns the process exit status.
 */
int hsc_cli_dispatch(int argc, char **argv, const char *prog, const char *usage,
                     const struct hsc_cli_command *cmds, size_t ncmds);

#endif
