/* The metrics registry: counters, gauges and histograms, rendered for Prometheus (metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS[HSC_METRICS_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* Buckets for counts (batch sizes) rather than seconds. */
const double HSC_METRICS_SIZE_BUCKETS[HSC_METRICS_NBUCKETS] = {1,   2,   5,   10,   25,   50,
                                                               100, 250, 500, 1000, 2500, 10000};

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

/* One time series. */
struct series {
    char *name, *labels;
    int type;
    double value, sum;
    unsigned long long count, buckets[HSC_METRICS_NBUCKETS];
    const double *bounds; /* a histogram's upper bounds */
};

/* One family's help text. */
struct help {
    char *name, *text;
};

struct hsc_metrics {
    struct series *s;
    size_t n, cap;
    struct help *h;
    size_t nh;
};

hsc_metrics *hsc_metrics_new(void)
{
    return calloc(1, sizeof(hsc_metrics));
}

void hsc_metrics_free(hsc_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->s[i].name), free(m->s[i].labels);
    for (size_t i = 0; i < m->nh; i++)
        free(m->h[i].name), free(m->h[i].text);
    free(m->s);
    free(m->h);
    free(m);
}

static struct series *get(hsc_metrics *m, const char *name, const char *labels, int type)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return &m->s[i];
    struct series *ns = hsc_grow(m->s, m->n, &m->cap, sizeof(*ns), 32);
    if (!ns)
        return NULL;
    m->s = ns;
    struct series *s = &m->s[m->n];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->type = type;
    if (!s->name || !s->labels) {
        free(s->name), free(s->labels);
        return NULL;
    }
    m->n++;
    return s;
}

void hsc_metrics_drop(hsc_metrics *m, const char *name, const char *label_prefix)
{
    if (!m)
        return;
    size_t k = 0, plen = strlen(label_prefix);
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->s[i].name, name) && !strncmp(m->s[i].labels, label_prefix, plen)) {
            free(m->s[i].name), free(m->s[i].labels);
            continue;
        }
        m->s[k++] = m->s[i];
    }
    m->n = k;
}

void hsc_metrics_inc(hsc_metrics *m, const char *name, const char *labels, double v)
{
    struct series *s = m ? get(m, name, labels, M_COUNTER) : NULL;
    if (s)
        s->value += v;
}

void hsc_metrics_count(hsc_metrics *m, const char *name, const char *labels, double total)
{
    struct series *s = m ? get(m, name, labels, M_COUNTER) : NULL;
    if (s)
        s->value = total;
}

void hsc_metrics_set(hsc_metrics *m, const char *name, const char *labels, double v)
{
    struct series *s = m ? get(m, name, labels, M_GAUGE) : NULL;
    if (s)
        s->value = v;
}

void hsc_metrics_observe_in(hsc_metrics *m, const char *name, const char *labels, double v,
                            const double *bounds)
{
    struct series *s = m ? get(m, name, labels, M_HISTOGRAM) : NULL;
    if (!s)
        return;
    if (!s->bounds)
        s->bounds = bounds;
    s->count++;
    s->sum += v;
    for (int i = 0; i < HSC_METRICS_NBUCKETS; i++)
        if (v <= s->bounds[i])
            s->buckets[i]++;
}

void hsc_metrics_observe(hsc_metrics *m, const char *name, const char *labels, double seconds)
{
    hsc_metrics_observe_in(m, name, labels, seconds, BUCKETS);
}

static hsc_metrics *g_backend_metrics;

void hsc_metrics_set_backend_registry(hsc_metrics *m)
{
    g_backend_metrics = m;
}

hsc_metrics *hsc_metrics_backend_registry(void)
{
    return g_backend_metrics;
}

/* Labels are built here so every client spells them the same way. */
void hsc_metrics_backend_call(const char *backend, const char *op, double seconds)
{
    if (!g_backend_metrics)
        return;
    char labels[160];
    snprintf(labels, sizeof(labels), "backend=\"%s\",op=\"%s\"", backend, op ? op : "call");
    hsc_metrics_observe(g_backend_metrics, "hsc_backend_request_duration_seconds", labels, seconds);
}

void hsc_metrics_backend_retry(const char *backend, double delay_s)
{
    if (!g_backend_metrics)
        return;
    char labels[96];
    snprintf(labels, sizeof(labels), "backend=\"%s\"", backend);
    hsc_metrics_inc(g_backend_metrics, "hsc_backend_retries_total", labels, 1);
    hsc_metrics_inc(g_backend_metrics, "hsc_backend_backoff_seconds_total", labels, delay_s);
}

void hsc_metrics_help(hsc_metrics *m, const char *name, const char *help)
{
    struct help *h = realloc(m->h, (m->nh + 1) * sizeof(*h));
    if (!h)
        return;
    m->h = h;
    h[m->nh].name = strdup(name);
    h[m->nh].text = strdup(help);
    m->nh++;
}

double hsc_metrics_value(const hsc_metrics *m, const char *name, const char *labels)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return m->s[i].type == M_HISTOGRAM ? (double)m->s[i].count : m->s[i].value;
    return 0;
}

static const char *TYPE_NAMES[] = {"counter", "gauge", "histogram"};

int hsc_metrics_render(const hsc_metrics *m, hsc_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        const struct series *s = &m->s[i];
        int first = 1; /* the first series of its family prints the family's header */
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(m->s[j].name, s->name) != 0;
        if (!first)
            continue;
        for (size_t h = 0; h < m->nh && !rc; h++)
            if (!strcmp(m->h[h].name, s->name))
                rc = hsc_buf_printf(out, "# HELP %s %s\n", s->name, m->h[h].text);
        rc = rc ? rc : hsc_buf_printf(out, "# TYPE %s %s\n", s->name, TYPE_NAMES[s->type]);
        for (size_t j = i; j < m->n && !rc; j++) {
            const struct series *x = &m->s[j];
            if (strcmp(x->name, s->name))
                continue;
            const char *sep = x->labels[0] ? "," : "";
            if (x->type != M_HISTOGRAM) {
                rc = hsc_buf_printf(out, "%s%s%s%s %.17g\n", x->name, x->labels[0] ? "{" : "",
                                    x->labels, x->labels[0] ? "}" : "", x->value);
                continue;
            }
            for (int b = 0; b < HSC_METRICS_NBUCKETS && !rc; b++)
                rc = hsc_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", x->name, x->labels, sep,
                                    x->bounds[b], x->buckets[b]);
            rc = rc ? rc
                    : hsc_buf_printf(out,
                                     "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s%s%s %.17g\n"
                                     "%s_count%s%s%s %llu\n",
                                     x->name, x->labels, sep, x->count, x->name,
                                     x->labels[0] ? "{" : "", x->labels, x->labels[0] ? "}" : "",
                                     x->sum, x->name, x->labels[0] ? "{" : "", x->labels,
                                     x->labels[0] ? "}" : "", x->count);
        }
    }
    return rc;
}
