/*
 * Every binary and bench program answers --help (and --version) with its own
 * text and does nothing else: it exits 0 within a few seconds, although every
 * server address points at a closed port, HSC_CONFIG names a file that does
 * not exist (so reading the config would fail the run) and its working
 * directory is an empty one that must stay empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

/* One run: the program (relative to the build directory), its arguments, and what its text
 * must name. */
struct help_case {
    const char *path;
    const char *args[4];
    const char *names;
};

static const struct help_case CASES[] = {
    {"hsc-ingest", {"--help"}, "Usage: hsc-ingest"},
    {"hsc-enrich", {"--help"}, "Usage: hsc-enrich"},
    {"hsc-embed-index", {"--help"}, "Usage: hsc-embed-index"},
    {"hsc-query", {"--help"}, "Usage: hsc-query"},
    {"hsc-migrate", {"--help"}, "Usage: hsc-migrate"},
    {"hsc", {"--help"}, "Usage: hsc [options] COMMAND"},
    {"hsc", {"publish", "--help"}, "Usage: hsc publish"},
    {"hsc", {"topics", "--help"}, "Usage: hsc topics"},
    {"hsc", {"topics", "create", "--help"}, "Usage: hsc topics"},
    {"hsc", {"topics", "delete", "--help"}, "hsc topics delete [--yes]"},
    {"hsc", {"schema", "apply", "--help"}, "Usage: hsc schema"},
    {"hsc", {"sample", "--help"}, "Usage: hsc sample"},
    {"hsc", {"sample", "content", "--help"}, "Usage: hsc sample"},
    {"hsc", {"search", "--like", "x", "--help"}, "Usage: hsc search"},
    {"hsc", {"status", "--help"}, "Usage: hsc status"},
    {"hsc", {"policy", "show", "u1", "--help"}, "Usage: hsc policy"},
    {"hsc", {"migrate", "--help"}, "--dry-run"},
    {"hsc-ingest", {"--version"}, "hsc-ingest " HSC_VERSION},
    {"hsc-query", {"--version"}, "hsc-query " HSC_VERSION},
    {"hsc", {"--version"}, "hsc " HSC_VERSION},
    {"tests/bench/bench_ingest", {"--help"}, "bench_ingest"},
    {"tests/bench/bench_freshness", {"--help"}, "bench_freshness"},
    {"tests/bench/bench_milvus", {"--help"}, "bench_milvus"},
    {"tests/bench/bench_neo4j", {"--help"}, "bench_neo4j"},
    {"tests/bench/bench_simindex", {"--help"}, "bench_simindex"},
    {"tests/bench/bench_pipeline", {"--help"}, "bench_pipeline"},
    {"tests/bench/bench_query", {"--help"}, "bench_query"},
    {"tests/bench/bench_query", {"--rate", "5", "--help"}, "bench_query"},
    {"tests/bench/bench_query_backlog", {"--help"}, "bench_query_backlog"},
    {"tests/bench/bench_migrate", {"--help"}, "bench_migrate"},
    {"tests/bench/eval_ranking", {"--help"}, "eval_ranking"},
    {"tests/bench/bench_ingest", {"--version"}, "bench_ingest " HSC_VERSION},
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int empty = 1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

/* Runs c in an empty directory; returns its exit status (-1: killed at the timeout) and
 * its stdout in out. */
static int run(const struct help_case *c, const char *dir, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", HSC_BUILD_DIR, c->path);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir))
            _exit(126);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char cfg[4200];
        snprintf(cfg, sizeof(cfg), "%s/no-such-config.ini", dir);
        setenv("HSC_CONFIG", cfg, 1);
        setenv("HSC_KAFKA_BROKERS", "127.0.0.1:1", 1);
        setenv("HSC_PG_URL", "postgresql://hsc@127.0.0.1:1/hsc", 1);
        setenv("HSC_REDIS_URL", "redis://127.0.0.1:1", 1);
        setenv("HSC_MILVUS_URL", "http://127.0.0.1:1", 1);
        setenv("HSC_NEO4J_URL", "http://127.0.0.1:1", 1);
        const char *argv[8] = {path};
        for (int i = 0; i < 4 && c->args[i]; i++)
            argv[i + 1] = c->args[i];
        execv(path, (char **)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    long long end = now_ms() + TIMEOUT_MS;
    int status = 0, done = 0;
    while (!done) {
        long long left = end - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, (int)left) > 0) {
            ssize_t n = read(fds[0], out + len, cap - 1 - len);
            if (n > 0)
                len += (size_t)n;
            else if (n == 0 || errno != EINTR)
                done = 1; /* end of its output: it is exiting */
        }
    }
    out[len] = '\0';
    close(fds[0]);
    while (now_ms() < end && waitpid(pid, &status, WNOHANG) == 0)
        usleep(10000);
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void help_case(void **state)
{
    const struct help_case *c = *state;
    char dir[] = "/tmp/hsc-test-help-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static char out[65536];
    int rc = run(c, dir, out, sizeof(out));
    if (rc != 0 || !strstr(out, c->names))
        fprintf(stderr, "%s %s %s: exit %d, printed:\n%s\n", c->path, c->args[0],
                c->args[1] ? c->args[1] : "", rc, out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, c->names));
    int empty = dir_is_empty(dir);
    if (!empty)
        fprintf(stderr, "%s wrote into its working directory %s\n", c->path, dir);
    else
        rmdir(dir);
    assert_true(empty);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(CASES) / sizeof(CASES[0])];
    static char names[sizeof(CASES) / sizeof(CASES[0])][128];
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        const struct help_case *c = &CASES[i];
        snprintf(names[i], sizeof(names[i]), "%s %s%s%s", c->path, c->args[0],
                 c->args[1] ? " " : "", c->args[1] ? c->args[1] : "");
        tests[i] = (struct CMUnitTest){
            .name = names[i], .test_func = help_case, .initial_state = (void *)c};
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
