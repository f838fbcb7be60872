/* Common start-up for every hsc binary: options, config, logging. */
#include "cli_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

extern char **environ;

static const char COMMON_HELP[] =
    "Common options:\n"
    "  -c, --config FILE   INI configuration file (default: $HSC_CONFIG, else built-in defaults)\n"
    "  --set KEY=VALUE     override one key, e.g. --set ingest.batch_max=1000\n"
    "  --print-config      print the effective configuration (secrets masked) and exit\n"
    "  -h, --help          show this help and exit\n"
    "  --version           show the version and exit\n"
    "Every key can also be set as HSC_SECTION_KEY in the environment, e.g. HSC_PG_URL.\n";

/*
 * The first pass over the common options: finds --config, --print-config,
 * --help and --version, so the file loads before --set applies. Returns 1
 * after printing help or the version, 2 on a usage error, else 0 with *cmd
 * at the first argument that is not a common option (argc if none).
 */
static int scan_front(int argc, char **argv, const char *prog, const char *usage, const char **path,
                      int *print, int *cmd)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage, COMMON_HELP);
            return 1;
        } else if (!strcmp(a, "--version")) {
            printf("%s %s\n", prog, HSC_VERSION);
            return 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a file name\n", prog, a);
                return 2;
            }
            *path = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            *path = a + 9;
        } else if (!strcmp(a, "--set")) {
            i++;
        } else if (!strcmp(a, "--print-config")) {
            *print = 1;
        } else if (a[0] != '-' || !a[1]) {
            break;
        }
    }
    *cmd = i < argc ? i : argc;
    return 0;
}

int hsc_cli_start(int argc, char **argv, const char *prog, const char *usage, hsc_config **out,
                  int *next)
{
    const char *path = getenv("HSC_CONFIG");
    int print = 0, cmd;
    int i = scan_front(argc, argv, prog, usage, &path, &print, &cmd);
    if (i)
        return i;
    hsc_config *cfg = hsc_config_new();
    if (!cfg) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 2;
    }
    hsc_err err = {0};
    if ((path && *path && hsc_config_load_file(cfg, path, &err)) ||
        hsc_config_apply_env(cfg, environ, &err)) {
        fprintf(stderr, "%s: config error: %s\n", prog, err.msg);
        hsc_config_free(cfg);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            i++;
        } else if (!strcmp(a, "--set")) {
            const char *kv = i + 1 < argc ? argv[++i] : NULL;
            const char *eq = kv ? strchr(kv, '=') : NULL;
            if (!eq) {
                fprintf(stderr, "%s: --set needs KEY=VALUE\n", prog);
                hsc_config_free(cfg);
                return 2;
            }
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
            if (hsc_config_set(cfg, key, eq + 1, &err)) {
                fprintf(stderr, "%s: config error: %s\n", prog, err.msg);
                hsc_config_free(cfg);
                return 2;
            }
        } else if (!strncmp(a, "--config=", 9) || !strcmp(a, "--print-config")) {
            continue;
        } else if (a[0] == '-' && a[1] && next == NULL) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, a);
            hsc_config_free(cfg);
            return 2;
        } else {
            break;
        }
    }
    if (print) {
        hsc_config_dump(cfg, stdout);
        hsc_config_free(cfg);
        return 1;
    }
    hsc_log_setup(prog, hsc_config_str(cfg, "log.level"), hsc_config_str(cfg, "log.format"));
    /* Process-wide limits of the endpoints and backend HTTP clients (metrics.*, http.*). */
    hsc_http_configure(cfg);
    if (hsc_httpd_configure(cfg, &err)) {
        fprintf(stderr, "%s: config error: %s\n", prog, err.msg);
        hsc_config_free(cfg);
        return 2;
    }
    /* Left at its default, the Kafka client id names the worker, so a group's
     * members tell apart in hsc status and in the broker's logs. */
    if (!strcmp(hsc_config_str(cfg, "kafka.client_id"), "hsc"))
        hsc_config_set_from(cfg, "kafka.client_id", prog, "default: the program name", &err);
    if (!next && i < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[i]);
        hsc_config_free(cfg);
        return 2;
    }
    if (next)
        *next = i;
    *out = cfg;
    return 0;
}

/* The command named name, or NULL. */
static const struct hsc_cli_command *find_command(const struct hsc_cli_command *cmds, size_t n,
                                                  const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(name, cmds[k].name))
            return &cmds[k];
    return NULL;
}

/* True if the arguments of a subcommand ask for its help (before a "--"). */
static int asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

int hsc_cli_dispatch(int argc, char **argv, const char *prog, const char *usage,
                     const struct hsc_cli_command *cmds, size_t ncmds)
{
    const char *path = NULL;
    int print = 0, at;
    int rc = scan_front(argc, argv, prog, usage, &path, &print, &at);
    if (rc)
        return rc == 1 ? 0 : rc;
    const struct hsc_cli_command *c = at < argc ? find_command(cmds, ncmds, argv[at]) : NULL;
    /* A subcommand's help is printed before any start-up: no config is read. */
    if (c && asks_help(argc - at, argv + at)) {
        fputs(c->usage, stdout);
        return 0;
    }
    hsc_config *cfg;
    int next = 1;
    if ((rc = hsc_cli_start(argc, argv, prog, usage, &cfg, &next)))
        return rc == 1 ? 0 : rc;
    if (next >= argc) {
        fputs(usage, stderr);
        rc = 2;
    } else if (!(c = find_command(cmds, ncmds, argv[next]))) {
        fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog, argv[next], prog);
        rc = 2;
    } else {
        rc = c->run(cfg, argc - next, argv + next);
    }
    hsc_config_free(cfg);
    return rc;
}
