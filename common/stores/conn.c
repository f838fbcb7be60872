/*
 * One small table of backends by name: up or down, since when, and an
 * epoch bumped on every recorded loss. Processes talk to at most a handful
 * of backends, so a linear search is plenty.
 */
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct backend_state {
    char name[32];
    int down;
    unsigned epoch;
    int64_t down_since_us;
};

static struct backend_state g_states[16];
static int g_nstates;
static hsc_metrics *g_metrics;

static struct backend_state *state_of(const char *backend)
{
    for (int i = 0; i < g_nstates; i++)
        if (!strcmp(g_states[i].name, backend))
            return &g_states[i];
    if (g_nstates == (int)(sizeof(g_states) / sizeof(g_states[0])))
        return NULL;
    struct backend_state *s = &g_states[g_nstates++];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", backend);
    return s;
}

static void count(const char *backend, const char *name)
{
    hsc_metrics *m = g_metrics ? g_metrics : hsc_metrics_backend_registry();
    if (!m)
        return;
    char labels[64];
    snprintf(labels, sizeof(labels), "backend=\"%s\"", backend);
    hsc_metrics_inc(m, name, labels, 1);
}

unsigned hsc_conn_epoch(const char *backend)
{
    struct backend_state *s = state_of(backend);
    return s ? s->epoch : 0;
}

unsigned hsc_conn_up(const char *backend)
{
    struct backend_state *s = state_of(backend);
    if (!s)
        return 0;
    if (s->down) {
        s->down = 0;
        s->epoch++; /* a call started during the outage that fails late is part of it */
        char msg[64], ms[24];
        snprintf(msg, sizeof(msg), "%s connection recovered", backend);
        snprintf(ms, sizeof(ms), "%lld", (long long)((hsc_mono_us() - s->down_since_us) / 1000));
        hsc_log_info(msg, "down_ms", ms, NULL);
        count(backend, "hsc_backend_reconnects_total");
    }
    return s->epoch;
}

void hsc_conn_lost(const char *backend, unsigned epoch, const char *reason)
{
    struct backend_state *s = state_of(backend);
    if (!s || epoch != s->epoch)
        return; /* opened before the loss already recorded: the same outage */
    s->epoch++;
    if (s->down)
        return;
    s->down = 1;
    s->down_since_us = hsc_mono_us();
    char msg[64];
    snprintf(msg, sizeof(msg), "%s connection lost", backend);
    hsc_log_warn(msg, "reason", reason && *reason ? reason : "unknown", NULL);
    count(backend, "hsc_backend_connection_lost_total");
}

int hsc_conn_is_down(const char *backend)
{
    struct backend_state *s = state_of(backend);
    return s && s->down;
}

void hsc_conn_set_metrics(hsc_metrics *m)
{
    g_metrics = m;
}

void hsc_conn_reset(void)
{
    g_nstates = 0;
    g_metrics = NULL;
}
