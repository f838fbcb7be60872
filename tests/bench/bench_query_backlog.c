/*
 * bench_query_backlog: hsc-query starting on a backlog of expired requests
 * (a queue that filled while it was down). Prints the rate at which it drops
 * them against the rate a plain librdkafka consumer reads the same topic in
 * the same run (the headline ratio), the latency of live searches sent while
 * the backlog drains, and hsc-query's peak RSS.
 *
 *   bench_query_backlog [--expired N] [--live M] [--live-timeout MS]
 *
 * Runs in its own namespace on the local stack (source .local/stack.env),
 * with a small catalogue loaded through the pipeline so live searches are
 * real ones.
 */
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "bench_args.h"
#include "it_query.h"
#include "it_requests.h"

static const char USAGE[] =
    "Usage: bench_query_backlog [--expired N] [--live M] [--live-timeout MS]\n"
    "Writes N expired search requests (default 100000), starts hsc-query on them and\n"
    "sends M live searches (default 20, one every 100 ms) while it drains.\n";

/* Live searches: when each was sent and how it ended. */
struct live {
    long long sent_ms, ended_ms;
    int done, ok, degraded, code;
};

static void on_live(void *arg, const hsc_search_reply *r, const hsc_err *err)
{
    struct live *l = arg;
    l->done = 1;
    l->ended_ms = it_ms();
    l->ok = r && r->ok;
    l->degraded = r && r->degraded.n;
    l->code = r ? 0 : err->code;
}

/* Reads every message of topic from the start with a fresh group; returns messages/s. */
static double raw_consume_rate(struct it *t, const char *topic, long n)
{
    char errstr[512], group[64];
    snprintf(group, sizeof(group), "bench-raw-%d", (int)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", t->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    long got = 0;
    long long first = 0, end = it_ms() + 120000;
    while (got < n && it_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (!got)
                first = it_ms();
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    long long last = it_ms();
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    if (got < n)
        fprintf(stderr, "raw consumer read only %ld of %ld\n", got, n);
    return last > first ? (double)got * 1000.0 / (double)(last - first) : 0;
}

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    long expired = 100000;
    int nlive = 20, live_timeout = 5000;
    static const struct option opts[] = {{"expired", required_argument, NULL, 'e'},
                                         {"live", required_argument, NULL, 'l'},
                                         {"live-timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'e')
            expired = atol(optarg);
        else if (c == 'l')
            nlive = atoi(optarg);
        else if (c == 't')
            live_timeout = atoi(optarg);
        else {
            fputs(USAGE, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (expired < 1 || nlive < 1 || nlive > 10000 || live_timeout < 100) {
        fputs(USAGE, stderr);
        return 2;
    }
    struct it t;
    struct itq q;
    it_setup(&t);
    free(itq_catalogue(&q, &t, "100", "bench-backlog"));
    long long f0 = it_ms();
    itr_flood_expired(&t, expired, ITQ_DIM);
    printf("wrote %ld expired requests in %.1f s\n", expired, (it_ms() - f0) / 1000.0);
    double raw = raw_consume_rate(&t, it_topic(&t, "search_requests"), expired);

    int port = 20000 + (int)(getpid() % 20000);
    char mp[32];
    snprintf(mp, sizeof(mp), "metrics.port=%d", port);
    const char *qa[] = {ITQ_QUERY_ARGS, "--set", "query.group=bench-backlog-query",
                        "--set",        mp,      NULL};
    long long s0 = it_ms();
    pid_t query = it_spawn(&t, "hsc-query", qa);
    itq_client(&q);
    struct live *live = calloc((size_t)nlive, sizeof(*live));
    hsc_search_request req;
    itq_request_like(&t, "t000003", &req);
    req.cache = false;
    int sent = 0;
    long long first_drop = 0, all_dropped = 0, end = it_ms() + 300000;
    double dropped = 0;
    while (it_ms() < end) {
        if (sent < nlive && it_ms() >= s0 + 100LL * sent) {
            hsc_err err = {0};
            live[sent].sent_ms = it_ms();
            if (hsc_client_search(q.client, &req, live_timeout, on_live, &live[sent], NULL, &err)) {
                fprintf(stderr, "send: %s\n", err.msg);
                return 1;
            }
            sent++;
        }
        ev_run(q.loop, EVRUN_NOWAIT);
        if (!all_dropped) {
            dropped = itr_metric(port, "hsc_query_expired_total");
            if (dropped > 0 && !first_drop)
                first_drop = it_ms();
            if (dropped >= expired)
                all_dropped = it_ms();
        }
        int pending = 0;
        for (int i = 0; i < sent; i++)
            pending += !live[i].done;
        if (all_dropped && sent == nlive && !pending)
            break;
        int st;
        if (waitpid(query, &st, WNOHANG) == query) {
            printf("hsc-query DIED (status %d) after %.0f dropped\n", st, dropped);
            return 1;
        }
        usleep(2000);
    }
    long hwm = itr_proc_kb(query, "VmHWM");
    /* every live search counts: a timeout at its deadline */
    int ok = 0, errors = 0, timeouts = 0, degraded = 0;
    double *lat = calloc((size_t)nlive, sizeof(*lat));
    for (int i = 0; i < nlive; i++) {
        struct live *l = &live[i];
        if (!l->done || l->code == HSC_ETIMEDOUT) {
            timeouts++;
            lat[i] = live_timeout;
        } else {
            lat[i] = (double)(l->ended_ms - l->sent_ms);
            ok += l->ok && !l->degraded;
            degraded += l->degraded;
            errors += !l->ok;
        }
    }
    double first_live = lat[0];
    for (int i = 1; i < nlive; i++)
        for (int j = i; j > 0 && lat[j] < lat[j - 1]; j--) {
            double x = lat[j];
            lat[j] = lat[j - 1];
            lat[j - 1] = x;
        }
    double rate = all_dropped > first_drop && first_drop
                      ? expired * 1000.0 / (double)(all_dropped - first_drop)
                      : 0;
    printf("expired dropped: %.0f of %ld, %.0f/s; a plain consumer reads the same topic at "
           "%.0f/s: ratio %.2f\n",
           dropped, expired, rate, raw, raw > 0 ? rate / raw : 0);
    printf("start to last drop: %.1f s\n", all_dropped ? (all_dropped - s0) / 1000.0 : -1.0);
    printf("live searches (%d, deadline %d ms): first %.0f ms, p50 %.0f ms, max %.0f ms; "
           "ok %d, errors %d, timeouts %d, degraded %d\n",
           nlive, live_timeout, first_live, lat[nlive / 2], lat[nlive - 1], ok, errors, timeouts,
           degraded);
    printf("hsc-query peak RSS: %.1f MB\n", hwm / 1024.0);
    int rc = it_stop(query, SIGTERM, 30000);
    hsc_search_request_clear(&req);
    itq_done(&q);
    it_teardown(&t);
    free(live);
    free(lat);
    return rc == 0 && dropped >= expired && timeouts == 0 && errors == 0 ? 0 : 1;
}
