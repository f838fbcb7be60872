/* What the benchmarks read of processes from /proc: CPU time, peak memory, the servers'. */
#ifndef HSC_BENCH_PROC_H
#define HSC_BENCH_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* The local stack's servers, by a string their command line holds. */
struct bench_server {
    const char *name, *needle;
};

/* Neo4j, Milvus, PostgreSQL, Kafka and Redis, in print order. */
extern const struct bench_server BENCH_SERVERS[];
#define BENCH_NSERVERS 5

/* utime + stime of pid in seconds; -1 if it is gone. */
double bench_cpu_of(pid_t pid);

/* Peak resident memory (VmHWM) of pid in KiB; -1 if it is gone. */
long bench_hwm_kb(pid_t pid);

/* Resident memory now (VmRSS) of pid in KiB; -1 if it is gone. */
long bench_rss_kb(pid_t pid);

/* CPU seconds of all processes of each server (a server may run several), by BENCH_SERVERS. */
void bench_servers_cpu(double out[BENCH_NSERVERS]);

/* Waits (at most max_s seconds) until the servers together use under `cores` CPUs over
 * 10 s, and says what they used; returns 1 if they went quiet. */
int bench_wait_servers_quiet(int max_s, double cores);

#endif
