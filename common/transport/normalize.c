/*
 * Content normalisation. Tags are compared after normalising, so "Sci-Fi ",
 * "sci-fi" and "SCI-FI" are one genre everywhere (PostgreSQL, Neo4j, Milvus
 * filters). Only ASCII letters are folded: folding other scripts needs locale
 * tables, and names in them pass through unchanged.
 */
#include "normalize.h"

#include "hsc/codec.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void hsc_trim(char *s)
{
    if (!s)
        return;
    size_t n = strlen(s), a = 0;
    while (a < n && is_space(s[a]))
        a++;
    while (n > a && is_space(s[n - 1]))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

void hsc_normalize_tag(char *s)
{
    size_t j = 0;
    int pending_space = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (is_space(c)) {
            pending_space = (j > 0);
            continue;
        }
        if (pending_space) {
            s[j++] = ' ';
            pending_space = 0;
        }
        s[j++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    s[j] = '\0';
}

/* Keeps the first occurrence of each entry, drops empty ones; preserves order. */
static void dedupe(hsc_strlist *l, const char *drop)
{
    size_t j = 0;
    for (size_t i = 0; i < l->n; i++) {
        char *s = l->v[i];
        int dup = (*s == '\0') || (drop && !strcmp(s, drop));
        for (size_t k = 0; k < j && !dup; k++)
            dup = !strcmp(l->v[k], s);
        if (dup)
            free(s);
        else
            l->v[j++] = s;
    }
    l->n = j;
}

static void normalize_tags(hsc_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        hsc_normalize_tag(l->v[i]);
    dedupe(l, NULL);
}

int hsc_normalize_content(hsc_content_event *ev, hsc_err *err)
{
    hsc_trim(ev->title);
    hsc_trim(ev->description);
    if (ev->description && !*ev->description) {
        free(ev->description);
        ev->description = NULL;
    }
    if (ev->op == HSC_OP_UPSERT && ev->title && !*ev->title)
        return hsc_err_set(err, HSC_EINVAL, "title: only whitespace (required for upsert)");
    if (ev->language)
        for (char *p = ev->language; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    normalize_tags(&ev->genres);
    normalize_tags(&ev->themes);
    normalize_tags(&ev->moods);
    dedupe(&ev->related, ev->id);
    return HSC_OK;
}

int hsc_content_supersedes(const hsc_content_event *a, const hsc_content_event *b)
{
    if (a->version != b->version)
        return a->version > b->version;
    return a->op == HSC_OP_DELETE && b->op != HSC_OP_DELETE;
}

void hsc_content_pick_winners(const hsc_content_event *const *evs, size_t n, int *winner)
{
    for (size_t i = 0; i < n; i++) {
        winner[i] = 0;
        if (!evs[i])
            continue;
        int keep = 1;
        for (size_t j = 0; j < n && keep; j++) {
            if (j == i || !evs[j] || strcmp(evs[j]->id, evs[i]->id))
                continue;
            if (hsc_content_supersedes(evs[j], evs[i]) ||
                (j > i && !hsc_content_supersedes(evs[i], evs[j])))
                keep = 0;
        }
        winner[i] = keep;
    }
}

int hsc_content_from_message(const void *buf, size_t len, size_t max, const char *max_key,
                             hsc_content_event **out, hsc_err *err)
{
    if (len > max)
        return hsc_err_set(err, HSC_EINVAL, "message: %zu bytes is more than %s (%zu)", len,
                           max_key, max);
    hsc_content_event *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return hsc_err_set(err, HSC_ENOMEM, "out of memory");
    int rc = hsc_codec_decode_content(buf, len, ev, err);
    if (!rc)
        rc = hsc_normalize_content(ev, err);
    if (rc) {
        hsc_content_free(ev);
        return rc;
    }
    *out = ev;
    return HSC_OK;
}

void hsc_content_free(hsc_content_event *ev)
{
    if (ev) {
        hsc_content_event_clear(ev);
        free(ev);
    }
}
