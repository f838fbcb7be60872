/* hsc-migrate: the migration command as its own binary (the same as `hsc migrate`). */
#include "cli_common.h"
#include "migrate.h"

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int next = 1;
    int rc = hsc_cli_start(argc, argv, "hsc-migrate", MIGRATE_USAGE, &cfg, &next);
    if (rc)
        return rc == 1 ? 0 : rc;
    /* what the common options left, with the program name in front */
    argv[next - 1] = argv[0];
    rc = migrate_main(cfg, argc - next + 1, argv + next - 1);
    hsc_config_free(cfg);
    return rc;
}
