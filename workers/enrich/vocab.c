/*
 * hsc-enrich's pure half: the tag vocabulary (loaded once), the tags found in
 * a title's own text, and the weighted Jaccard similarity of two titles'
 * genres, themes and moods (enrich.h). No I/O but reading the vocabulary.
 */
#include "enrich.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"
#include "util.h"

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int enrich_vocab_load(const char *path, struct enrich_vocab *v, hsc_err *err)
{
    memset(v, 0, sizeof(*v));
    FILE *f = fopen(path, "r");
    if (!f)
        return hsc_err_set(err, HSC_ECONFIG, "enrich.vocabulary: cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = HSC_OK;
    while (!rc && getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *kind = line, *name = strchr(kind, '\t'), *kws = name ? strchr(name + 1, '\t') : NULL;
        if (!kws) {
            rc = hsc_err_set(err, HSC_ECONFIG, "%s:%d: expected kind<TAB>name<TAB>keywords", path,
                             lineno);
            break;
        }
        *name++ = '\0';
        *kws++ = '\0';
        if (strcmp(kind, "theme") && strcmp(kind, "mood")) {
            rc = hsc_err_set(err, HSC_ECONFIG, "%s:%d: kind '%s' is not theme or mood", path,
                             lineno, kind);
            break;
        }
        struct enrich_term *nt = realloc(v->terms, (v->n + 1) * sizeof(*nt));
        if (!nt) {
            rc = hsc_err_set(err, HSC_ENOMEM, "out of memory");
            break;
        }
        v->terms = nt;
        struct enrich_term *t = &v->terms[v->n++];
        memset(t, 0, sizeof(*t));
        t->is_mood = !strcmp(kind, "mood");
        t->name = strdup(name);
        hsc_normalize_tag(t->name);
        for (char *save = NULL, *k = strtok_r(kws, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            hsc_trim(k);
            if (!*k)
                continue;
            char **nk = realloc(t->keywords, (t->nkeywords + 1) * sizeof(char *));
            if (!nk)
                break;
            t->keywords = nk;
            t->keywords[t->nkeywords] = strdup(k);
            lower(t->keywords[t->nkeywords++]);
        }
    }
    free(line);
    fclose(f);
    if (rc)
        enrich_vocab_free(v);
    return rc;
}

void enrich_vocab_free(struct enrich_vocab *v)
{
    for (size_t i = 0; i < v->n; i++) {
        for (size_t k = 0; k < v->terms[i].nkeywords; k++)
            free(v->terms[i].keywords[k]);
        free(v->terms[i].keywords);
        free(v->terms[i].name);
    }
    free(v->terms);
    memset(v, 0, sizeof(*v));
}

/* True if word occurs in text (both lower case) with no letter or digit either side. */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        int before = p == text || !isalnum((unsigned char)p[-1]);
        int after = !isalnum((unsigned char)p[wl]);
        if (before && after)
            return 1;
    }
    return 0;
}

static int list_has(const hsc_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 1;
    return 0;
}

size_t enrich_extract(const struct enrich_vocab *v, hsc_content_event *ev)
{
    if (ev->op == HSC_OP_DELETE)
        return 0;
    hsc_buf text = {0};
    hsc_buf_printf(&text, "%s %s", ev->title ? ev->title : "",
                   ev->description ? ev->description : "");
    if (hsc_buf_append(&text, "", 1)) {
        hsc_buf_free(&text);
        return 0;
    }
    lower(text.data);
    size_t added = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct enrich_term *t = &v->terms[i];
        hsc_strlist *l = t->is_mood ? &ev->moods : &ev->themes;
        if (list_has(l, t->name) || l->n >= HSC_MAX_LIST_LEN)
            continue;
        for (size_t k = 0; k < t->nkeywords; k++) {
            if (has_word(text.data, t->keywords[k])) {
                if (!hsc_strlist_push(l, t->name, strlen(t->name)))
                    added++;
                break;
            }
        }
    }
    hsc_buf_free(&text);
    return added;
}

double enrich_attr_weight(const hsc_content_event *e, const struct enrich_weights *w)
{
    return (double)e->genres.n * w->genre + (double)e->themes.n * w->theme +
           (double)e->moods.n * w->mood;
}

double enrich_similarity(const hsc_content_event *a, const hsc_content_event *b,
                         const struct enrich_weights *w)
{
    double shared = 0;
    for (size_t i = 0; i < a->genres.n; i++)
        shared += list_has(&b->genres, a->genres.v[i]) ? w->genre : 0;
    for (size_t i = 0; i < a->themes.n; i++)
        shared += list_has(&b->themes, a->themes.v[i]) ? w->theme : 0;
    for (size_t i = 0; i < a->moods.n; i++)
        shared += list_has(&b->moods, a->moods.v[i]) ? w->mood : 0;
    double uni = enrich_attr_weight(a, w) + enrich_attr_weight(b, w) - shared;
    return uni > 0 ? shared / uni : 0;
}
