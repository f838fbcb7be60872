/*
 * The options every hsc binary takes (--config, --set, --print-config,
 * --help, --version) and the start-up they share: load the INI file named by
 * --config or $HSC_CONFIG, apply HSC_* overrides, set up logging.
 */
#ifndef HSC_CLI_COMMON_H
#define HSC_CLI_COMMON_H

#include "config.h"

/*
 * Parses the common options at the front of argv. Returns 0 with *cfg set and
 * *next at the first argument it did not consume; or an exit status > 0 after
 * printing help, the version, the config or an error (2 for a usage or
 * config error).
 */
int hsc_cli_start(int argc, char **argv, const char *prog, const char *usage, hsc_config **cfg,
                  int *next);

#endif
