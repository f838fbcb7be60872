/* --help and --version for the bench programs, answered before any setup. */
#ifndef HSC_BENCH_ARGS_H
#define HSC_BENCH_ARGS_H

/*
 * Prints usage (to stdout) and exits 0 if argv holds --help or -h, or prints
 * the program's name and version and exits 0 if it holds --version; returns
 * otherwise. Call it first in main, so asking for help starts nothing.
 */
void bench_args_help(int argc, char **argv, const char *usage);

#endif
