/*
 * The soak's faults: the worker processes it runs (two per kind, each with
 * its own log file), killed with SIGKILL in a random order and started again;
 * the servers it restarts one at a time with deploy/local/down and up, in a
 * child process so the main loop keeps reading replies on time; the stack
 * lock; and the exit path that leaves every server running whatever happens.
 */
#include "chaos.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const chaos_servers[5] = {"kafka", "postgres", "redis", "milvus", "neo4j"};
const char *const chaos_worker_bin[CHAOS_KINDS] = {"hsc-ingest", "hsc-enrich", "hsc-embed-index",
                                                   "hsc-query"};

#define LOCK_PATH "/tmp/hsc-stack.lock"

/* ---------------- the stack lock ---------------- */

/* The pid holding an flock on the file with this device and inode (0: none found). */
static pid_t lock_holder(const struct stat *st)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    pid_t holder = 0;
    while (f && fgets(line, sizeof(line), f)) {
        char type[16];
        int pid;
        unsigned maj, min;
        unsigned long ino;
        if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", type, &pid, &maj, &min, &ino) == 5 &&
            !strcmp(type, "FLOCK") && maj == major(st->st_dev) && min == minor(st->st_dev) &&
            ino == st->st_ino)
            holder = pid;
    }
    if (f)
        fclose(f);
    return holder;
}

static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    int ppid = 0;
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return 0;
    return ppid;
}

void chaos_lock_stack(void)
{
    static int fd = -1;
    fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, "chaos: cannot open %s: %s\n", LOCK_PATH, strerror(errno));
        exit(2);
    }
    if (!flock(fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "chaos: holding %s\n", LOCK_PATH);
        return; /* held until exit */
    }
    pid_t holder = lock_holder(&st);
    for (pid_t p = getppid(); holder > 0 && p > 1; p = parent_of(p))
        if (p == holder) {
            fprintf(stderr, "chaos: %s is held by pid %d, which started this run\n", LOCK_PATH,
                    (int)holder);
            return;
        }
    fprintf(stderr, "chaos: waiting for %s (held by pid %d)\n", LOCK_PATH, (int)holder);
    if (flock(fd, LOCK_EX)) {
        fprintf(stderr, "chaos: flock %s: %s\n", LOCK_PATH, strerror(errno));
        exit(2);
    }
    fprintf(stderr, "chaos: holding %s\n", LOCK_PATH);
}

/* ---------------- workers ---------------- */

static void shuffle(struct chaos *c, int *v, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(chaos_rand(c) % (uint64_t)(i + 1));
        int x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

static const char *worker_name(const struct chaos_worker *w)
{
    static char buf[4][48];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s#%d", chaos_worker_bin[w->kind], w->inst + 1);
    return buf[i];
}

static void worker_log_path(const struct chaos *c, const struct chaos_worker *w, char *out,
                            size_t cap)
{
    snprintf(out, cap, "%s/%s-%d.log", c->logdir, chaos_worker_bin[w->kind], w->inst + 1);
}

static void spawn(struct chaos *c, struct chaos_worker *w)
{
    char group[96], set_group[128], path[512];
    static const char *const gkey[CHAOS_KINDS] = {"ingest.group", "enrich.group",
                                                  "embed_index.group", "query.group"};
    static const char *const gsuffix[CHAOS_KINDS] = {"ingest", "enrich", "index", "query"};
    snprintf(group, sizeof(group), "%s-%s", c->tag, gsuffix[w->kind]);
    snprintf(set_group, sizeof(set_group), "%s=%s", gkey[w->kind], group);
    const char *args[] = {"--set", set_group, "--set", "milvus.dimension=16", "--set",
                          "embed_index.input=content_enriched",
                          /* a killed member's partitions move on within seconds */
                          "--set", "rdkafka.consumer.session.timeout.ms=6000", "--set",
                          "rdkafka.consumer.heartbeat.interval.ms=1000", "--set",
                          "backoff.max_ms=2000",
                          /* a stop that cannot finish its work says so well inside our wait */
                          "--set", "shutdown.timeout_ms=20000", NULL};
    worker_log_path(c, w, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        fprintf(stderr, "chaos: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    dprintf(fd, "---- chaos: start %d at +%.1f s\n", w->starts + 1,
            (double)chaos_elapsed_ms(c) / 1000.0);
    /* The child inherits stderr: point it at the log for the fork only. */
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    w->pid = it_spawn(&c->t, chaos_worker_bin[w->kind], args);
    dup2(saved, 2);
    close(saved);
    w->killed = 0;
    w->restart_at_ms = 0;
    w->starts++;
}

void chaos_workers_start(struct chaos *c)
{
    for (int i = 0; i < CHAOS_WORKERS; i++) {
        struct chaos_worker *w = &c->workers[i];
        w->kind = i / CHAOS_PER_KIND;
        w->inst = i % CHAOS_PER_KIND;
        spawn(c, w);
    }
    shuffle(c, c->kill_order, CHAOS_WORKERS);
    shuffle(c, c->server_order, 5);
    chaos_event(c, "started 2 x hsc-ingest, hsc-enrich, hsc-embed-index, hsc-query (logs in %s)",
                c->logdir);
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

void chaos_sample_rss(struct chaos *c)
{
    for (int i = 0; i < CHAOS_WORKERS; i++) {
        struct chaos_worker *w = &c->workers[i];
        if (w->pid <= 0)
            continue;
        long kb = vm_hwm_kb(w->pid);
        if (kb > w->peak_kb)
            w->peak_kb = kb;
    }
}

void chaos_kill_next_worker(struct chaos *c)
{
    if (c->kill_next == CHAOS_WORKERS) {
        shuffle(c, c->kill_order, CHAOS_WORKERS);
        c->kill_next = 0;
    }
    struct chaos_worker *w = &c->workers[c->kill_order[c->kill_next++]];
    if (w->pid <= 0)
        return; /* down already (it exited by itself): its restart is pending */
    long kb = vm_hwm_kb(w->pid);
    if (kb > w->peak_kb)
        w->peak_kb = kb;
    pid_t pid = w->pid;
    kill(pid, SIGKILL);
    w->killed = 1;
    w->kills++;
    int st = it_stop(pid, 0, 5000); /* reaped through the harness, which forgets the pid */
    w->pid = 0;
    w->restart_at_ms = chaos_elapsed_ms(c) + 1000;
    chaos_event(c, "SIGKILL %s (pid %d, VmHWM %.1f MB)%s", worker_name(w), (int)pid, kb / 1024.0,
                st == 128 + SIGKILL ? "" : " -- it had exited already");
}

/* Closes every descriptor above stderr: a server started from here must not
 * inherit the stack lock (from `flock` or from us) and hold it for ever. */
static void close_inherited(void)
{
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        close(fd);
}

/* Runs a shell command in a child (no atexit handlers there); returns its pid. */
static pid_t start_shell(const char *cmd)
{
    pid_t pid = fork();
    if (pid == 0) {
        close_inherited();
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void server_cmd(const struct chaos *c, int up, char *out, size_t cap)
{
    const char *svc = chaos_servers[c->server_current];
    /* up runs `hsc topics create` and `hsc schema apply` from HSC_BUILD: this build's, which
     * knows every topic of schemas/ (another build dir may be stale), and up writes
     * HSC_BUILD into stack.env as HSC_BIN, so the shared file is put back as it was. */
    if (up)
        snprintf(out, cap,
                 "s=\"${HSC_RUN:-%s/.local}/stack.env\"; cp -p \"$s\" %s/stack.env.saved; "
                 "HSC_BUILD=%s HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up %s "
                 ">>%s/servers.log 2>&1; rc=$?; cp -p %s/stack.env.saved \"$s\"; exit $rc",
                 HSC_SOURCE_DIR, c->logdir, HSC_BUILD_DIR, HSC_SOURCE_DIR, svc, c->logdir,
                 c->logdir);
    else
        snprintf(out, cap, "exec %s/deploy/local/down %s >>%s/servers.log 2>&1", HSC_SOURCE_DIR,
                 svc, c->logdir);
}

static void server_child_exited(struct chaos *c, int status)
{
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int64_t now = chaos_elapsed_ms(c);
    const char *svc = chaos_servers[c->server_current];
    double took = (double)(now - c->server_phase_ms) / 1000.0;
    c->server_child = 0;
    if (c->server_phase == 1) {
        chaos_event(c, "stopped %s (deploy/local/down took %.1f s, exit %d)", svc, took, rc);
        c->server_phase = 2;
        c->server_down_at_ms = now;
        c->server_phase_ms = now;
        if (rc)
            c->server_failures++;
        return;
    }
    chaos_event(c, "started %s (deploy/local/up took %.1f s, exit %d; %s was out for %.1f s)", svc,
                took, rc, svc, (double)(now - c->server_down_at_ms) / 1000.0);
    c->server_phase = 0;
    if (!strcmp(svc, "kafka"))
        c->kafka_settled_at_ms = chaos_wall_ms() + CHAOS_KAFKA_SETTLE_MS;
    if (rc) {
        c->server_failures++;
        chaos_violation(c, "servers: deploy/local/up %s failed with exit %d (see %s/servers.log)",
                        svc, rc, c->logdir);
    } else {
        c->server_restarts++;
    }
}

void chaos_restart_next_server(struct chaos *c)
{
    if (c->server_phase)
        return;
    if (c->server_next == 5) {
        shuffle(c, c->server_order, 5);
        c->server_next = 0;
    }
    c->server_current = c->server_order[c->server_next++];
    char cmd[2048];
    server_cmd(c, 0, cmd, sizeof(cmd));
    c->servers_touched = 1;
    c->server_phase = 1;
    c->server_phase_ms = chaos_elapsed_ms(c);
    c->server_child = start_shell(cmd);
    if (!strcmp(chaos_servers[c->server_current], "kafka")) {
        c->kafka_unsettled = 1;
        c->kafka_settled_at_ms = INT64_MAX;
    }
    chaos_event(c, "stopping %s", chaos_servers[c->server_current]);
}

int chaos_server_busy(const struct chaos *c)
{
    return c->server_phase != 0;
}

static struct chaos_worker *worker_by_pid(struct chaos *c, pid_t pid)
{
    for (int i = 0; i < CHAOS_WORKERS; i++)
        if (c->workers[i].pid == pid)
            return &c->workers[i];
    return NULL;
}

void chaos_procs_tick(struct chaos *c)
{
    /* Who exited? Peek without reaping, then reap the way its spawner expects. */
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid == 0)
            break;
        pid_t pid = si.si_pid;
        if (pid == c->server_child) {
            int status;
            waitpid(pid, &status, 0);
            server_child_exited(c, status);
            continue;
        }
        struct chaos_worker *w = worker_by_pid(c, pid);
        int st = it_stop(pid, 0, 1000);
        if (!w)
            continue;
        char path[512];
        worker_log_path(c, w, path, sizeof(path));
        chaos_violation(c,
                        "workers: %s (pid %d) exited by itself with status %d at +%.1f s "
                        "(log: %s)",
                        worker_name(w), (int)pid, st, (double)chaos_elapsed_ms(c) / 1000.0, path);
        chaos_event(c, "%s (pid %d) exited by itself, status %d", worker_name(w), (int)pid, st);
        w->self_exits++;
        w->pid = 0;
        w->restart_at_ms = chaos_elapsed_ms(c) + 1000;
    }
    int64_t now = chaos_elapsed_ms(c);
    for (int i = 0; i < CHAOS_WORKERS; i++) {
        struct chaos_worker *w = &c->workers[i];
        if (w->pid == 0 && w->restart_at_ms && now >= w->restart_at_ms) {
            spawn(c, w);
            chaos_event(c, "restarted %s (pid %d)", worker_name(w), (int)w->pid);
        }
    }
    if (c->server_phase == 2 && now - c->server_phase_ms >= (int64_t)c->o.outage_s * 1000) {
        char cmd[2048];
        server_cmd(c, 1, cmd, sizeof(cmd));
        c->server_phase = 3;
        c->server_phase_ms = now;
        c->server_child = start_shell(cmd);
    }
}

/* Lines of the file at path containing text. */
static int log_count(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

void chaos_workers_stop(struct chaos *c)
{
    chaos_sample_rss(c);
    for (int i = 0; i < CHAOS_WORKERS; i++)
        if (c->workers[i].pid > 0)
            kill(c->workers[i].pid, SIGTERM);
    for (int i = 0; i < CHAOS_WORKERS; i++) {
        struct chaos_worker *w = &c->workers[i];
        if (w->pid <= 0)
            continue;
        int st = it_stop(w->pid, 0, 30000);
        char path[512];
        worker_log_path(c, w, path, sizeof(path));
        /* SIGKILLed runs never log it: only a stop that gave up on buffered work does */
        if (st == 0 && log_count(path, "shutdown timeout"))
            chaos_violation(c,
                            "workers: %s (pid %d) stopped on SIGTERM only at its shutdown "
                            "timeout, with work unfinished (log: %s)",
                            worker_name(w), (int)w->pid, path);
        if (st != 0) {
            chaos_violation(c,
                            "workers: %s (pid %d) did not stop cleanly on SIGTERM: %s %d (log: %s)",
                            worker_name(w), (int)w->pid,
                            st < 0 ? "still running after 30 s" : "status", st, path);
            if (st < 0) {
                kill(w->pid, SIGKILL);
                it_stop(w->pid, 0, 5000);
            }
        }
        w->pid = 0;
        w->restart_at_ms = 0;
    }
}

void chaos_servers_restore(struct chaos *c)
{
    if (c->server_child > 0) {
        int status;
        waitpid(c->server_child, &status, 0);
        c->server_child = 0;
    }
    c->server_phase = 0;
    if (!c->servers_touched)
        return;
    char cmd[2048];
    /* as in server_cmd: this build's hsc, and the shared stack.env put back as it was */
    snprintf(cmd, sizeof(cmd),
             "s=\"${HSC_RUN:-%s/.local}/stack.env\"; cp -p \"$s\" %s/stack.env.saved; "
             "HSC_BUILD=%s HSC_SKIP_INSTALL=1 HSC_REBUILD=0 %s/deploy/local/up kafka postgres "
             "redis milvus neo4j >>%s/servers.log 2>&1; rc=$?; cp -p %s/stack.env.saved \"$s\"; "
             "exit $rc",
             HSC_SOURCE_DIR, c->logdir, HSC_BUILD_DIR, HSC_SOURCE_DIR, c->logdir, c->logdir);
    int status, rc = -1;
    pid_t pid = start_shell(cmd);
    if (pid > 0 && waitpid(pid, &status, 0) == pid)
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (rc)
        fprintf(stderr, "chaos: RESTORING THE SERVERS FAILED (exit %d): see %s/servers.log\n", rc,
                c->logdir);
    else
        c->servers_touched = 0;
}

/* ---------------- the exit path ---------------- */

static struct chaos *cleanup_c;

static void cleanup(void)
{
    struct chaos *c = cleanup_c;
    if (!c)
        return;
    cleanup_c = NULL;
    for (int i = 0; i < CHAOS_WORKERS; i++)
        if (c->workers[i].pid > 0) {
            kill(c->workers[i].pid, SIGKILL);
            it_stop(c->workers[i].pid, 0, 5000);
            c->workers[i].pid = 0;
        }
    chaos_servers_restore(c);
}

volatile sig_atomic_t chaos_interrupted;

static void on_signal(int sig)
{
    /* The loops see the flag and end through exit(), which runs the cleanup; a
     * second signal takes the default action. */
    chaos_interrupted = sig;
    signal(sig, SIG_DFL);
}

void chaos_install_cleanup(struct chaos *c)
{
    cleanup_c = c;
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}
