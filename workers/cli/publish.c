/*
 * hsc publish: reads JSON lines, validates and encodes each as the topic's
 * message type, and produces it keyed as the contract says (content by id,
 * learning by user id). A bad line is reported with its number and skipped;
 * the exit status is 1 if any line or delivery failed.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hsc/codec.h"
#include "json_event.h"
#include "kafka.h"
#include "util.h"

const char CLI_PUBLISH_USAGE[] =
    "Usage: hsc publish --topic content|learning [--quiet] FILE.jsonl|-\n"
    "Each line is one JSON object with the keys of the message contract\n"
    "(schemas/README.md); embeddings are arrays of numbers.\n";

struct pub_stats {
    unsigned long long delivered, failed;
    char first_error[256];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct pub_stats *s = opaque;
    if (rkm->err) {
        if (!s->failed)
            snprintf(s->first_error, sizeof(s->first_error), "%s", rd_kafka_err2str(rkm->err));
        s->failed++;
    } else {
        s->delivered++;
    }
    (void)rk;
}

int cli_publish(hsc_config *cfg, int argc, char **argv)
{
    const char *which = NULL, *path = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--topic") && i + 1 < argc)
            which = argv[++i];
        else if (!strncmp(argv[i], "--topic=", 8))
            which = argv[i] + 8;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(CLI_PUBLISH_USAGE, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hsc publish: unknown option '%s'\n%s", argv[i], CLI_PUBLISH_USAGE);
            return 2;
        } else
            path = argv[i];
    }
    if (!which || !path || (strcmp(which, "content") && strcmp(which, "learning"))) {
        fputs(CLI_PUBLISH_USAGE, stderr);
        return 2;
    }
    int learning = !strcmp(which, "learning");
    const char *topic =
        hsc_config_topic(cfg, learning ? "topics.learning_events" : "topics.content_events");
    FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "hsc publish: %s: %s\n", path, strerror(errno));
        return 2;
    }

    struct pub_stats stats = {0};
    hsc_err err = {0};
    static const char *const defaults[] = {
        "enable.idempotence", "true",  "linger.ms", "20", "compression.type", "lz4",
        "message.timeout.ms", "60000", NULL};
    rd_kafka_conf_t *conf = hsc_kafka_conf(cfg, "producer", defaults, &err);
    if (!conf) {
        fprintf(stderr, "hsc publish: config error: %s\n", err.msg);
        if (in != stdin)
            fclose(in);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &stats);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "hsc publish: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        if (in != stdin)
            fclose(in);
        return 2;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long long lineno = 0, sent = 0, bad = 0;
    int tty = isatty(2);
    int64_t start = hsc_mono_us(), last_progress = start;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t skip = strspn(line, " \t");
        if (line[skip] == '\0')
            continue;
        char *buf = NULL;
        size_t blen = 0;
        const char *key = NULL;
        int rc;
        /* The same steps for either topic: parse, encode, key by user or by title. */
        union {
            hsc_learning_event l;
            hsc_content_event c;
        } ev;
        rc = learning ? hsc_json_to_learning(line, (size_t)len, &ev.l, &err)
                      : hsc_json_to_content(line, (size_t)len, &ev.c, &err);
        if (!rc) {
            rc = learning ? hsc_codec_encode_learning(&ev.l, &buf, &blen, &err)
                          : hsc_codec_encode_content(&ev.c, &buf, &blen, &err);
            key = rc ? NULL : strdup(learning ? ev.l.user_id : ev.c.id);
        }
        if (learning) /* both readers leave the event empty on failure */
            hsc_learning_event_clear(&ev.l);
        else
            hsc_content_event_clear(&ev.c);
        if (rc || !key) {
            fprintf(stderr, "%s:%llu: %s\n", path, lineno, rc ? err.msg : "out of memory");
            bad++;
            free(buf);
            continue;
        }
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(buf, blen),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 100);
        if (e) {
            fprintf(stderr, "%s:%llu: produce: %s\n", path, lineno, rd_kafka_err2str(e));
            free(buf);
            bad++;
        } else {
            sent++;
        }
        free((void *)key);
        rd_kafka_poll(rk, 0);
        int64_t now = hsc_mono_us();
        if (!quiet && now - last_progress > 1000000) {
            double rate = (double)sent / ((double)(now - start) / 1e6);
            fprintf(stderr, "%spublished %llu, bad %llu, delivered %llu (%.0f/s)%s",
                    tty ? "\r" : "", sent, bad, stats.delivered, rate, tty ? "" : "\n");
            last_progress = now;
        }
    }
    free(line);
    if (in != stdin)
        fclose(in);
    while (rd_kafka_outq_len(rk) > 0 && stats.delivered + stats.failed < sent)
        rd_kafka_flush(rk, 1000);
    rd_kafka_destroy(rk);
    double secs = (double)(hsc_mono_us() - start) / 1e6;
    if (tty && !quiet && secs > 1)
        fputc('\n', stderr);
    fprintf(stderr,
            "published %llu events to %s in %.2fs (%.0f/s); %llu bad lines; %llu delivery "
            "failures%s%s\n",
            stats.delivered, topic, secs, secs > 0 ? (double)stats.delivered / secs : 0.0, bad,
            stats.failed, stats.failed ? ": " : "", stats.first_error);
    return (bad || stats.failed) ? 1 : 0;
}
