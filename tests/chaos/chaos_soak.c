/*
 * chaos_soak: the whole pipeline on the real local stack, under faults, and
 * then a verdict on what it stored and how it answered.
 *
 *   flock /tmp/hsc-stack.lock build/tests/chaos/chaos_soak --minutes 4
 *
 * In a namespace of its own (topic prefix, database, Milvus collection, epoch
 * key: the integration harness's it_setup) it runs two processes of each
 * worker in their consumer groups, publishes content and learning events and
 * sends searches without pause, SIGKILLs one worker process every few seconds
 * (in a random order, each restarted a second later) and restarts the servers
 * one at a time (Kafka, PostgreSQL, Redis, Milvus, Neo4j, in a random order).
 * Then it stops the traffic, waits for the pipeline to catch up, checks every
 * store and every search (chaos_verify.c), prints a summary and exits 1 if it
 * found any violation. Every server is running when it exits, whatever
 * happened. The stack lock must be held (it takes it when nobody does).
 */
#include "chaos.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

int64_t chaos_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chaos_elapsed_ms(const struct chaos *c)
{
    return it_ms() - c->t0_ms;
}

uint64_t chaos_rand(struct chaos *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = strdup("(out of memory)");
    return s;
}

void chaos_violation(struct chaos *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    c->violations = realloc(c->violations, (c->nviolations + 1) * sizeof(char *));
    c->violations[c->nviolations++] = s;
    if (c->nviolations <= 20)
        fprintf(stderr, "[+%6.1fs] VIOLATION %s\n", (double)chaos_elapsed_ms(c) / 1000.0, s);
}

void chaos_event(struct chaos *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    char *line;
    if (asprintf(&line, "+%6.1fs  %s", (double)chaos_elapsed_ms(c) / 1000.0, s) < 0)
        line = strdup(s);
    free(s);
    fprintf(stderr, "[%s]\n", line);
    c->timeline = realloc(c->timeline, (c->ntimeline + 1) * sizeof(char *));
    c->timeline[c->ntimeline++] = line;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chaos_soak [--minutes M] [--ids N] [--content-rate R] [--learning-rate R]\n"
            "                  [--search-rate R] [--deadline-ms MS] [--kill-every S]\n"
            "                  [--restart-every S] [--outage S] [--warmup S] [--drain-timeout S]\n"
            "                  [--no-servers] [--seed N] [--keep]\n"
            "                  [--inject pg-row,pg-version,neo4j-node,milvus-entity,milvus-stale,\n"
            "                            learning,reply-dup|all]\n"
            "Run it holding the stack lock: flock /tmp/hsc-stack.lock chaos_soak ...\n");
    exit(2);
}

/* Reads .local/stack.env (export K=V lines) when the caller did not source it. */
static void load_stack_env(void)
{
    if (getenv("HSC_KAFKA_BROKERS"))
        return;
    char path[1024], line[1024];
    snprintf(path, sizeof(path), "%s/.local/stack.env", HSC_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "chaos: %s is missing: start the stack with deploy/local/up\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "export ", 7))
            continue;
        char *eq = strchr(line + 7, '=');
        if (!eq)
            continue;
        *eq = '\0';
        setenv(line + 7, eq + 1, 0);
    }
    fclose(f);
}

static int keep_namespace;

/*
 * Deletes every topic of the run's prefix: a single broker restarted with
 * thousands of leftover partitions takes minutes to serve them all again.
 */
static void delete_topics(const struct it *t)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", t->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        return;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_DeleteTopic_t *del[64];
        size_t n = 0, plen = strlen(t->prefix);
        for (int i = 0; i < md->topic_cnt && n < 64; i++)
            if (!strncmp(md->topics[i].topic, t->prefix, plen))
                del[n++] = rd_kafka_DeleteTopic_new(md->topics[i].topic);
        rd_kafka_metadata_destroy(md);
        if (n) {
            rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
            rd_kafka_DeleteTopics(rk, del, n, NULL, q);
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
            if (!ev || rd_kafka_event_error(ev))
                fprintf(stderr, "chaos: deleting the run's %zu topics failed: %s\n", n,
                        ev ? rd_kafka_event_error_string(ev) : "timed out");
            if (ev)
                rd_kafka_event_destroy(ev);
            rd_kafka_queue_destroy(q);
            rd_kafka_DeleteTopic_destroy_array(del, n);
        }
    }
    rd_kafka_destroy(rk);
}

static void parse(struct chaos_opts *o, int argc, char **argv)
{
    *o = (struct chaos_opts){.minutes = 4,
                             .ids = 400,
                             .content_rate = 40,
                             .learning_rate = 20,
                             .search_rate = 15,
                             .deadline_ms = 2000,
                             .outage_s = 3,
                             .warmup_s = 20,
                             .drain_timeout_s = 240,
                             .seed = (unsigned long)time(NULL) ^ (unsigned long)getpid(),
                             .inject = ""};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field, conv)                                                                     \
    if (!strcmp(a, name)) {                                                                        \
        if (!v)                                                                                    \
            usage();                                                                               \
        o->field = conv(v);                                                                        \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT("--minutes", minutes, atof)
        OPT("--ids", ids, atoi)
        OPT("--content-rate", content_rate, atoi)
        OPT("--learning-rate", learning_rate, atoi)
        OPT("--search-rate", search_rate, atoi)
        OPT("--deadline-ms", deadline_ms, atoi)
        OPT("--kill-every", kill_every_s, atoi)
        OPT("--restart-every", restart_every_s, atoi)
        OPT("--outage", outage_s, atoi)
        OPT("--warmup", warmup_s, atoi)
        OPT("--drain-timeout", drain_timeout_s, atoi)
        OPT("--seed", seed, (unsigned long)atoll)
#undef OPT
        if (!strcmp(a, "--inject") && v) {
            o->inject = v;
            i++;
        } else if (!strcmp(a, "--no-servers")) {
            o->no_servers = 1;
        } else if (!strcmp(a, "--keep")) {
            keep_namespace = 1;
        } else {
            usage();
        }
    }
    if (o->minutes <= 0 || o->ids < 10 || o->ids > 99999 || o->deadline_ms < 100)
        usage();
    /* Spread the faults over the time after the warm-up: every worker process
     * killed about twice in a short run, every server restarted at least once. */
    double window = o->minutes * 60 - o->warmup_s - 10;
    if (window < 30)
        window = 30;
    if (!o->kill_every_s) {
        o->kill_every_s = (int)(window / (2 * CHAOS_WORKERS));
        o->kill_every_s = o->kill_every_s < 5 ? 5 : o->kill_every_s > 20 ? 20 : o->kill_every_s;
    }
    if (!o->restart_every_s) {
        o->restart_every_s = (int)(window / 5);
        o->restart_every_s = o->restart_every_s < 15   ? 15
                             : o->restart_every_s > 60 ? 60
                                                       : o->restart_every_s;
    }
}

/* Runs the loop without sending anything for ms (replies, restarts, reaping go on). */
static void idle(struct chaos *c, int ms)
{
    int64_t end = chaos_elapsed_ms(c) + ms;
    while (chaos_elapsed_ms(c) < end && !chaos_interrupted) {
        chaos_procs_tick(c);
        chaos_traffic_poll(c, 20);
    }
}

static void run(struct chaos *c)
{
    const struct chaos_opts *o = &c->o;
    int64_t end = (int64_t)(o->minutes * 60000), warm = (int64_t)o->warmup_s * 1000;
    int64_t next_kill = warm, next_restart = warm + 5000, last_rss = 0, last = 0;
    long content = 0, learning = 0, searches = 0;
    chaos_event(c,
                "traffic: %d content, %d learning events and %d searches a second for %.1f min; "
                "a worker killed every %d s and a server restarted every %d s after %d s",
                o->content_rate, o->learning_rate, o->search_rate, o->minutes, o->kill_every_s,
                o->no_servers ? 0 : o->restart_every_s, o->warmup_s);
    for (;;) {
        int64_t now = chaos_elapsed_ms(c);
        if (now >= end || chaos_interrupted)
            break;
        if (last && now - last > c->max_loop_gap_ms)
            c->max_loop_gap_ms = now - last;
        last = now;
        for (; content < now * o->content_rate / 1000; content++)
            chaos_publish_content(c);
        for (; learning < now * o->learning_rate / 1000; learning++)
            chaos_publish_learning(c);
        for (; searches < now * o->search_rate / 1000; searches++)
            chaos_send_search(c);
        if (now >= next_kill) {
            chaos_kill_next_worker(c);
            next_kill = now + (int64_t)o->kill_every_s * 1000;
        }
        /* no restart that could still be under way when the traffic stops */
        if (!o->no_servers && now >= next_restart && !chaos_server_busy(c) && now + 20000 < end) {
            chaos_restart_next_server(c);
            next_restart = now + (int64_t)o->restart_every_s * 1000;
        }
        chaos_procs_tick(c);
        if (now - last_rss >= 2000) {
            chaos_sample_rss(c);
            last_rss = now;
        }
        chaos_traffic_poll(c, 5);
    }
    chaos_event(c, "traffic stopped: %ld content events, %ld learning events, %zu searches",
                c->content_sent, c->learning_sent, c->nsearches);
    /* a server restart under way finishes first */
    while (chaos_server_busy(c) && !chaos_interrupted) {
        chaos_procs_tick(c);
        chaos_traffic_poll(c, 20);
    }
    /* the last searches' deadlines pass with the loop still reading replies on time */
    idle(c, o->deadline_ms + 3000);
    int left = chaos_traffic_flush(c, 120000);
    if (left)
        chaos_violation(c, "publish: %d events still not delivered to Kafka after 120 s", left);
}

static void summary(struct chaos *c)
{
    printf("\ntimeline:\n");
    for (size_t i = 0; i < c->ntimeline; i++)
        printf("  %s\n", c->timeline[i]);
    printf("\nfaults:\n");
    long kills[CHAOS_KINDS] = {0}, selfx[CHAOS_KINDS] = {0}, peak[CHAOS_KINDS] = {0};
    for (int i = 0; i < CHAOS_WORKERS; i++) {
        const struct chaos_worker *w = &c->workers[i];
        kills[w->kind] += w->kills;
        selfx[w->kind] += w->self_exits;
        if (w->peak_kb > peak[w->kind])
            peak[w->kind] = w->peak_kb;
    }
    for (int k = 0; k < CHAOS_KINDS; k++)
        printf("  %-16s %ld SIGKILLs, %ld exits on its own\n", chaos_worker_bin[k], kills[k],
               selfx[k]);
    printf("  servers          %d restarts (down %d s each), %d failed steps\n", c->server_restarts,
           c->o.outage_s, c->server_failures);
    printf("\npublished:\n");
    printf("  content          %ld events: %ld upserts, %ld deletes, %ld older versions, %ld exact "
           "replays\n",
           c->content_sent, c->content_upserts, c->content_deletes, c->content_stale,
           c->content_replays);
    printf("  learning         %ld events (%ld of them sent twice on purpose)\n", c->learning_sent,
           c->learning_dups);
    printf("  resent           %ld after a failed delivery; producer queue full %ld times\n",
           c->resent_after_failure, c->produce_queue_full);
    printf("\npeak RSS (VmHWM, the highest of any process of the kind):\n");
    for (int k = 0; k < CHAOS_KINDS; k++) {
        printf("  %-16s %6.1f MB  (", chaos_worker_bin[k], peak[k] / 1024.0);
        for (int i = 0; i < CHAOS_WORKERS; i++)
            if (c->workers[i].kind == k)
                printf("%s#%d %.1f MB", c->workers[i].inst ? ", " : "", c->workers[i].inst + 1,
                       c->workers[i].peak_kb / 1024.0);
        printf(")\n");
    }
    printf("\nrun %s, seed %lu, logs in %s\n", c->tag, c->o.seed, c->logdir);
    if (!c->nviolations) {
        printf("PASS: no violations\n");
        return;
    }
    printf("FAIL: %zu violations\n", c->nviolations);
    for (size_t i = 0; i < c->nviolations; i++)
        if (i < 200)
            printf("  - %s\n", c->violations[i]);
    if (c->nviolations > 200)
        printf("  ... and %zu more\n", c->nviolations - 200);
}

static void mkdirs(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

int main(int argc, char **argv)
{
    static struct chaos c;
    parse(&c.o, argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_stack_env();
    chaos_lock_stack();
    c.rng = c.o.seed * 0x9e3779b97f4a7c15ULL + 1;
    c.t0_ms = it_ms();
    c.next_learning_ts = chaos_wall_ms();
    snprintf(c.tag, sizeof(c.tag), "cs%dx%04x", (int)getpid(), (unsigned)(chaos_rand(&c) & 0xffff));
    snprintf(c.id_prefix, sizeof(c.id_prefix), "%s-", c.tag);
    snprintf(c.logdir, sizeof(c.logdir), "%s/tests/chaos/logs/%s", HSC_BUILD_DIR, c.tag);
    mkdirs(c.logdir);
    chaos_install_cleanup(&c);
    /* A run before this one may have left a server down: start from a whole stack. */
    c.servers_touched = 1;
    chaos_servers_restore(&c);
    it_setup(&c.t);
    chaos_event(&c, "namespace %s (database %s, collection %s), seed %lu", c.t.prefix, c.t.db,
                c.t.collection, c.o.seed);
    chaos_traffic_init(&c);
    chaos_workers_start(&c);
    chaos_publish_initial(&c);
    run(&c);
    if (!chaos_interrupted && chaos_wait_drained(&c) == 0)
        idle(&c, 3000); /* past Milvus's bounded staleness */
    if (!chaos_interrupted) {
        if (c.o.inject[0])
            chaos_inject(&c);
        chaos_verify(&c);
        chaos_workers_stop(&c);
    }
    summary(&c);
    if (chaos_interrupted) {
        printf("interrupted by signal %d: no verdict\n", (int)chaos_interrupted);
        exit(2);
    }
    chaos_traffic_close(&c);
    chaos_servers_restore(&c);
    if (!keep_namespace) {
        char params[128];
        snprintf(params, sizeof(params), "{\"p\":\"%s\"}", c.id_prefix);
        json_decref(
            it_neo4j("MATCH (n:Content) WHERE n.id STARTS WITH $p DETACH DELETE n", params));
        delete_topics(&c.t);
        it_teardown(&c.t);
    }
    return c.nviolations ? 1 : 0;
}
