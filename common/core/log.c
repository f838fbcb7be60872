/*
 * The log writer. Lines are built in a local buffer and written with one
 * fwrite, so lines from librdkafka's threads (which log through us) never
 * interleave mid-line.
 */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util.h"

static const char *g_worker = "hsc";
static enum hsc_log_level g_level = HSC_LOG_INFO;
static int g_json;
static FILE *g_stream;

static const char *LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void hsc_log_setup(const char *worker, const char *level, const char *format)
{
    if (worker)
        g_worker = worker;
    for (int i = 0; level && i < 4; i++)
        if (!strcmp(level, LEVEL_NAMES[i]))
            g_level = (enum hsc_log_level)i;
    g_json = format && !strcmp(format, "json");
}

void hsc_log_set_stream(FILE *f)
{
    g_stream = f;
}

int hsc_log_enabled(enum hsc_log_level level)
{
    return level >= g_level;
}

static void put_logfmt_value(hsc_buf *b, const char *v)
{
    int quote = (*v == '\0');
    for (const char *p = v; *p && !quote; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            quote = 1;
    if (!quote) {
        hsc_buf_append(b, v, strlen(v));
        return;
    }
    hsc_buf_append(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            hsc_buf_append(b, "\\", 1);
            hsc_buf_append(b, p, 1);
        } else if (*p == '\n') {
            hsc_buf_append(b, "\\n", 2);
        } else if ((unsigned char)*p < 0x20) {
            hsc_buf_printf(b, "\\x%02x", (unsigned char)*p);
        } else {
            hsc_buf_append(b, p, 1);
        }
    }
    hsc_buf_append(b, "\"", 1);
}

static void put_json_string(hsc_buf *b, const char *v)
{
    /* Bytes of a value that is not UTF-8 (a poison message's text) are written
     * as code points, so a line is always valid JSON. */
    int latin1 = !hsc_utf8_valid(v, strlen(v));
    hsc_buf_append(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (latin1 && c >= 0x80) {
            hsc_buf_printf(b, "\\u%04x", c);
        } else if (c == '"' || c == '\\') {
            hsc_buf_append(b, "\\", 1);
            hsc_buf_append(b, p, 1);
        } else if (c == '\n') {
            hsc_buf_append(b, "\\n", 2);
        } else if (c < 0x20) {
            hsc_buf_printf(b, "\\u%04x", c);
        } else {
            hsc_buf_append(b, p, 1);
        }
    }
    hsc_buf_append(b, "\"", 1);
}

static void put_field(hsc_buf *b, const char *k, const char *v, int first)
{
    char masked[2048];
    hsc_mask_secrets(v, masked, sizeof(masked)); /* every value: an error may quote a URL */
    if (g_json) {
        if (!first)
            hsc_buf_append(b, ",", 1);
        put_json_string(b, k);
        hsc_buf_append(b, ":", 1);
        put_json_string(b, masked);
    } else {
        if (!first)
            hsc_buf_append(b, " ", 1);
        hsc_buf_printf(b, "%s=", k);
        put_logfmt_value(b, masked);
    }
}

/* Starts a line in b: the time, the level, the worker and msg. */
static void begin_line(hsc_buf *b, enum hsc_log_level level, const char *msg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    if (g_json)
        hsc_buf_append(b, "{", 1);
    put_field(b, "ts", ts, 1);
    put_field(b, "level", LEVEL_NAMES[level], 0);
    put_field(b, "worker", g_worker, 0);
    put_field(b, "msg", msg, 0);
}

/* Ends the line in b and writes it with one fwrite, then frees b. */
static void end_line(hsc_buf *b)
{
    if (g_json)
        hsc_buf_append(b, "}", 1);
    hsc_buf_append(b, "\n", 1);
    if (b->data) {
        FILE *out = g_stream ? g_stream : stderr;
        fwrite(b->data, 1, b->len, out);
        fflush(out);
    }
    hsc_buf_free(b);
}

void hsc_log(enum hsc_log_level level, const char *msg, ...)
{
    if (level < g_level)
        return;
    hsc_buf b = {0};
    begin_line(&b, level, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_field(&b, k, v ? v : "", 0);
    }
    va_end(ap);
    end_line(&b);
}

void hsc_log_counts(const char *msg, const char *key, const char *value,
                    const struct hsc_log_count *counts, size_t n)
{
    if (HSC_LOG_INFO < g_level)
        return;
    hsc_buf b = {0};
    begin_line(&b, HSC_LOG_INFO, msg);
    if (key)
        put_field(&b, key, value ? value : "", 0);
    for (size_t i = 0; i < n; i++) {
        char v[24];
        snprintf(v, sizeof(v), "%llu", counts[i].value);
        put_field(&b, counts[i].key, v, 0);
    }
    end_line(&b);
}
