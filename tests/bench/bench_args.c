/* --help and --version for the bench programs, answered before any setup. */
#include "bench_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_args_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(argv[i], "--version")) {
            const char *slash = strrchr(argv[0], '/');
            printf("%s %s\n", slash ? slash + 1 : argv[0], HSC_VERSION);
            exit(0);
        }
    }
}
