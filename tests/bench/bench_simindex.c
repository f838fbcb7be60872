/*
 * bench_simindex: hsc-enrich's similarity index alone (no servers): inserts
 * T titles with tags drawn like `hsc sample` (1-3 of 12 genres, 1-3 of 12
 * themes, 0-2 of 6 moods; with --sample, `hsc sample`'s own: 1-3 genres, one
 * theme, one mood; with --hot, "drama" on half the titles as well),
 * then measures N more inserts (each followed by simindex_mark_written, as
 * the owner's write of a title does), N re-tags and N deletes on top, and prints
 * titles/s for each, the pairs scored per title, the change-set size per
 * title and the index's bytes per title (its own count and the process's
 * RSS growth). With --fanout F (titles scored per tag, enrich.similar_fanout;
 * 0 = exact) it also measures how near-exact the lists are: for 200 titles
 * of the catalogue, each rank's score against the true top K computed by
 * brute force over the whole catalogue.
 *
 *   bench_simindex [--titles T (100000)] [--ops N (10000)] [--hot] [--sample] [--top K (10)]
 *                  [--fanout F (2000)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_args.h"
#include "cli/sample_vocab.h"
#include "enrich/simindex.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int hot, sample;
/* The titles' tags as bit sets (genre, theme, mood), for the brute force. */
static uint32_t (*bits)[3];

static void pick(hsc_strlist *l, const char *const *from, unsigned n, unsigned lo, unsigned hi,
                 uint32_t *set)
{
    unsigned k = lo + rnd(hi - lo + 1);
    for (unsigned i = 0; i < k; i++) {
        unsigned r = rnd(n);
        const char *s = from[r];
        *set |= 1u << r;
        int dup = 0;
        for (size_t j = 0; j < l->n; j++)
            dup |= !strcmp(l->v[j], s);
        if (!dup)
            hsc_strlist_push(l, s, strlen(s));
    }
}

static void draw(hsc_strlist *g, hsc_strlist *t, hsc_strlist *m, uint32_t set[3])
{
    hsc_strlist_clear(g);
    hsc_strlist_clear(t);
    hsc_strlist_clear(m);
    set[0] = set[1] = set[2] = 0;
    if (hot && rnd(2)) {
        hsc_strlist_push(g, "drama", 5);
        set[0] |= 1u << 3; /* hsc_sample_genres[3] */
    }
    pick(g, hsc_sample_genres, HSC_SAMPLE_NGENRES, 1, 3, &set[0]);
    pick(t, hsc_sample_themes, HSC_SAMPLE_NTHEMES, 1, sample ? 1 : 3, &set[1]);
    pick(m, hsc_sample_moods, HSC_SAMPLE_NMOODS, sample ? 1 : 0, sample ? 1 : 2, &set[2]);
}

static double formula(const uint32_t a[3], const uint32_t b[3])
{
    const double w[3] = {1.0, 0.7, 0.5};
    double shared = 0, wa = 0, wb = 0;
    for (int k = 0; k < 3; k++) {
        shared += __builtin_popcount(a[k] & b[k]) * w[k];
        wa += __builtin_popcount(a[k]) * w[k];
        wb += __builtin_popcount(b[k]) * w[k];
    }
    return wa + wb - shared > 0 ? shared / (wa + wb - shared) : 0;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static const char USAGE[] =
    "Usage: bench_simindex [--titles T (100000)] [--ops N (10000)] [--hot] [--sample]\n"
    "                      [--top K (10)] [--fanout F (2000)]\n"
    "hsc-enrich's similarity index alone (no servers): inserts, re-tags and deletes per\n"
    "second, pairs scored and bytes per title, and near-exactness with --fanout.\n";

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    long titles = 100000, ops = 10000;
    int top = 10, fanout = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--titles") && i + 1 < argc)
            titles = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = atol(argv[++i]);
        else if (!strcmp(argv[i], "--top") && i + 1 < argc)
            top = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fanout") && i + 1 < argc)
            fanout = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hot"))
            hot = 1;
        else if (!strcmp(argv[i], "--sample"))
            sample = 1;
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    struct simindex_weights w = {
        .genre = 1.0, .theme = 0.7, .mood = 0.5, .min_score = 0.2, .top_n = top, .fanout = fanout};
    bits = calloc((size_t)titles, sizeof(*bits));
    hsc_err err = {0};
    long rss0 = rss_kb();
    simindex *ix = simindex_new(&w, &err);
    if (!ix) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    hsc_strlist g = {0}, t = {0}, m = {0};
    char id[32];
    struct simindex_changes ch;
    struct simindex_stats st;
    double t0 = now();
    simindex_bulk_begin(ix); /* as hsc-enrich loads PostgreSQL at start */
    for (long i = 0; i < titles; i++) {
        snprintf(id, sizeof(id), "bench-%ld", i);
        draw(&g, &t, &m, bits[i]);
        if (simindex_upsert(ix, id, 1, &g, &t, &m) != 1)
            return 1;
    }
    if (simindex_bulk_end(ix))
        return 1;
    simindex_take(ix, &ch);
    double load = now() - t0;
    simindex_get_stats(ix, &st);
    long rss1 = rss_kb();
    printf(
        "catalogue: %ld titles (%s) bulk-loaded in %.2f s (%.0f titles/s); index %zu bytes/title "
        "(own count), RSS growth %.0f bytes/title\n",
        titles,
        hot      ? "hot genre on half"
        : sample ? "hsc sample's tags"
                 : "wider tags",
        load, (double)titles / load, st.bytes / st.titles,
        (double)(rss1 - rss0) * 1024.0 / (double)titles);
    if (top > 0 && top <= 64) {
        /* How near the lists are to the true top K (brute force over the catalogue). */
        size_t ranks = 0, match = 0, same_lists = 0, samples = 200;
        double shortfall = 0, all[64];
        struct simindex_neighbour nb[64];
        double *sc = malloc((size_t)titles * sizeof(double));
        for (size_t k = 0; k < samples; k++) {
            long a = (long)((k * 7919) % (size_t)titles);
            size_t n = 0;
            for (long b = 0; b < titles; b++)
                if (b != a && (sc[n] = formula(bits[a], bits[b])) >= w.min_score)
                    n++;
            qsort(sc, n, sizeof(double), cmp_desc);
            snprintf(id, sizeof(id), "bench-%ld", a);
            size_t got = simindex_list(ix, id, nb, 64);
            size_t want = n < (size_t)top ? n : (size_t)top, ok = 0;
            for (size_t r = 0; r < want; r++) {
                all[r] = r < got ? nb[r].score : 0;
                ok += all[r] >= sc[r] - 1e-12;
                shortfall += sc[r] - all[r];
            }
            ranks += want;
            match += ok;
            same_lists += ok == want && got == want;
        }
        free(sc);
        printf("near-exact (fanout %d): %.2f%% of ranks hold the true score, %.1f%% of lists "
               "fully exact, mean shortfall %.4f per rank (%zu titles sampled)\n",
               fanout, 100.0 * (double)match / (double)ranks,
               100.0 * (double)same_lists / (double)samples, shortfall / (double)ranks, samples);
    }
    const char *what[] = {"insert", "re-tag", "delete"};
    uint32_t scratch[3];
    for (int phase = 0; phase < 3; phase++) {
        simindex_get_stats(ix, &st);
        unsigned long long scored0 = st.scored;
        size_t changes = 0;
        t0 = now();
        for (long i = 0; i < ops; i++) {
            int rc;
            if (phase == 0) {
                snprintf(id, sizeof(id), "new-%ld", i);
                draw(&g, &t, &m, scratch);
                rc = simindex_upsert(ix, id, 1, &g, &t, &m);
                if (rc >= 0)
                    rc = simindex_mark_written(ix, id);
            } else if (phase == 1) {
                snprintf(id, sizeof(id), "bench-%ld", i * 7 % titles);
                draw(&g, &t, &m, scratch);
                rc = simindex_upsert(ix, id, 2 + i, &g, &t, &m);
            } else {
                snprintf(id, sizeof(id), "bench-%ld", (i * 7 + 3) % titles);
                rc = simindex_delete(ix, id, 1000000 + i);
            }
            if (rc < 0)
                return 1;
            if (i % 2000 == 1999 || i == ops - 1) {
                simindex_take(ix, &ch);
                changes += ch.nreplace + ch.nedges;
            }
        }
        double el = now() - t0;
        simindex_get_stats(ix, &st);
        printf("%-7s %ld titles in %.3f s: %.0f titles/s, %.0f pairs scored/title, %.1f edge "
               "changes/title\n",
               what[phase], ops, el, (double)ops / el, (double)(st.scored - scored0) / (double)ops,
               (double)changes / (double)ops);
    }
    simindex_free(ix);
    free(bits);
    hsc_strlist_clear(&g);
    hsc_strlist_clear(&t);
    hsc_strlist_clear(&m);
    return 0;
}
