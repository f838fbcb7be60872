/* What the benchmarks read of processes from /proc: CPU time, peak memory, the servers'. */
#include "bench_proc.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "it_requests.h"

const struct bench_server BENCH_SERVERS[BENCH_NSERVERS] = {{"neo4j", "org.neo4j"},
                                                           {"milvus", "milvus run"},
                                                           {"postgres", "postgres"},
                                                           {"kafka", "kafka.Kafka"},
                                                           {"redis", "redis-server"}};

double bench_cpu_of(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the command name may hold spaces and parentheses: the fields start after the last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long bench_hwm_kb(pid_t pid)
{
    return itr_proc_kb(pid, "VmHWM");
}

long bench_rss_kb(pid_t pid)
{
    return itr_proc_kb(pid, "VmRSS");
}

void bench_servers_cpu(double out[BENCH_NSERVERS])
{
    for (size_t s = 0; s < BENCH_NSERVERS; s++)
        out[s] = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t self = getpid();
    while (d && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]) || atoi(e->d_name) == (int)self)
            continue;
        char path[300], cmd[4096];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!cmd[i])
                cmd[i] = ' ';
        cmd[n] = 0;
        for (size_t s = 0; s < BENCH_NSERVERS; s++) {
            if (strstr(cmd, BENCH_SERVERS[s].needle)) {
                double c = bench_cpu_of((pid_t)atoi(e->d_name));
                out[s] += c > 0 ? c : 0;
                break;
            }
        }
    }
    if (d)
        closedir(d);
}

int bench_wait_servers_quiet(int max_s, double cores)
{
    /* A server keeps working after a load (Neo4j checkpoints and collects the garbage
     * of a reset graph, Milvus compacts): on 2026-12-07 a 100,000-title graph cost Neo4j
     * 9.96 ms of CPU a graph search in the first run after the load and 3.3 ms four
     * minutes later. Figures are of servers doing nothing else. */
    double a[BENCH_NSERVERS], b[BENCH_NSERVERS], rate[BENCH_NSERVERS] = {0}, total = 0;
    int waited = 0, quiet = 0;
    bench_servers_cpu(a);
    while (!quiet && waited < max_s) {
        sleep(10);
        waited += 10;
        bench_servers_cpu(b);
        total = 0;
        for (size_t s = 0; s < BENCH_NSERVERS; s++)
            total += rate[s] = (b[s] - a[s]) / 10.0;
        quiet = total < cores;
        memcpy(a, b, sizeof(a));
    }
    printf("servers after %d s of waiting: %.2f CPUs over the last 10 s (", waited, total);
    for (size_t s = 0; s < BENCH_NSERVERS; s++)
        printf("%s%s %.2f", s ? ", " : "", BENCH_SERVERS[s].name, rate[s]);
    printf(")%s\n", quiet ? "" : " (NOT QUIET: the figures below share the machine with them)");
    return quiet;
}
