/*
 * Structured logs: one line per event on stderr, logfmt or JSON, with the
 * level, the worker, a message and key/value fields. Values that look like
 * connection strings have their passwords masked before they are written.
 */
#ifndef HSC_LOG_H
#define HSC_LOG_H

#include <stdio.h>

/* Log levels, lowest first. */
enum hsc_log_level { HSC_LOG_DEBUG, HSC_LOG_INFO, HSC_LOG_WARN, HSC_LOG_ERROR };

/* Sets the worker name, minimum level ("info") and format ("logfmt"|"json"). */
void hsc_log_setup(const char *worker, const char *level, const char *format);

/* Sends log lines to f instead of stderr (tests capture them). */
void hsc_log_set_stream(FILE *f);

/* True if a line at level would be written (skip building costly fields). */
int hsc_log_enabled(enum hsc_log_level level);

/* Writes one line: msg, then NULL-terminated key, value string pairs. */
void hsc_log(enum hsc_log_level level, const char *msg, ...) __attribute__((sentinel));

/* One field of a log line whose value is a count. */
struct hsc_log_count {
    const char *key;
    unsigned long long value;
};

/*
 * Writes one info line: msg, the field key = value (key NULL: none), then n
 * counts; a process's closing tallies, without formatting each by hand.
 */
void hsc_log_counts(const char *msg, const char *key, const char *value,
                    const struct hsc_log_count *counts, size_t n);

#define hsc_log_debug(...) hsc_log(HSC_LOG_DEBUG, __VA_ARGS__)
#define hsc_log_info(...) hsc_log(HSC_LOG_INFO, __VA_ARGS__)
#define hsc_log_warn(...) hsc_log(HSC_LOG_WARN, __VA_ARGS__)
#define hsc_log_error(...) hsc_log(HSC_LOG_ERROR, __VA_ARGS__)

#endif
