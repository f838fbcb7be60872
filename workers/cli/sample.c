/*
 * hsc sample: a deterministic synthetic catalogue and interaction stream as
 * JSON lines, for the demo, the tests and the benchmarks. Embeddings are
 * built from per-genre directions plus noise, so titles that share genres
 * are near each other, as real embeddings of similar titles would be.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sample_vocab.h"

static const char *LANGS[] = {"en", "en", "en", "fr", "de", "es", "ja", "ko"};
static const char *KINDS[] = {"movie", "movie", "series", "episode"};
static const int MATURITY[] = {0, 7, 12, 16, 18};
static const char *ADJ[] = {"Silent",  "Last",    "Hidden", "Broken", "Golden", "Distant",
                            "Crimson", "Endless", "Lost",   "Bright", "Quiet",  "Wild"};
static const char *NOUN[] = {"Planet", "House",   "Summer", "River",  "Signal", "Garden",
                             "Engine", "Kingdom", "Shadow", "Harbor", "Circus", "Orbit"};

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static double frand(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}
static double gauss(void)
{
    double u = frand() + 1e-12, v = frand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void content(long count, int dim, uint64_t seed)
{
    rng_state = seed * 2654435761u + 1;
    float *dirs = malloc(sizeof(float) * HSC_SAMPLE_NGENRES * (size_t)dim);
    for (int g = 0; g < HSC_SAMPLE_NGENRES; g++) {
        double n = 0;
        for (int d = 0; d < dim; d++) {
            dirs[g * dim + d] = (float)gauss();
            n += dirs[g * dim + d] * dirs[g * dim + d];
        }
        for (int d = 0; d < dim; d++)
            dirs[g * dim + d] /= (float)sqrt(n);
    }
    float *v = malloc(sizeof(float) * (size_t)dim);
    for (long i = 1; i <= count; i++) {
        int ng = 1 + (int)(rnd() % 3), gs[3];
        for (int k = 0; k < ng; k++) {
            gs[k] = (int)(rnd() % HSC_SAMPLE_NGENRES);
            for (int j = 0; j < k; j++)
                if (gs[j] == gs[k])
                    gs[k] = (gs[k] + 1) % HSC_SAMPLE_NGENRES;
        }
        double n = 0;
        for (int d = 0; d < dim; d++) {
            double x = 0.35 * gauss() / sqrt((double)dim);
            for (int k = 0; k < ng; k++)
                x += dirs[gs[k] * dim + d];
            v[d] = (float)x;
            n += x * x;
        }
        printf("{\"id\":\"t%06ld\",\"version\":1,\"title\":\"The %s %s %ld\",", i, ADJ[rnd() % 12],
               NOUN[rnd() % 12], i);
        printf("\"description\":\"A %s story about %s.\",", hsc_sample_genres[gs[0]],
               hsc_sample_themes[rnd() % HSC_SAMPLE_NTHEMES]);
        printf("\"kind\":\"%s\",\"genres\":[", KINDS[rnd() % 4]);
        for (int k = 0; k < ng; k++)
            printf("%s\"%s\"", k ? "," : "", hsc_sample_genres[gs[k]]);
        printf("],\"themes\":[\"%s\"],\"moods\":[\"%s\"],",
               hsc_sample_themes[rnd() % HSC_SAMPLE_NTHEMES],
               hsc_sample_moods[rnd() % HSC_SAMPLE_NMOODS]);
        printf("\"language\":\"%s\",\"year\":%d,\"maturity\":%d,\"duration_s\":%d,",
               LANGS[rnd() % 8], 1950 + (int)(rnd() % 76), MATURITY[rnd() % 5],
               1200 + (int)(rnd() % 9000));
        if (i > 10 && rnd() % 4 == 0)
            printf("\"related\":[\"t%06ld\"],", 1 + (long)(rnd() % (uint64_t)(i - 1)));
        printf("\"embedding\":[");
        for (int d = 0; d < dim; d++)
            printf("%s%.6g", d ? "," : "", v[d] / sqrt(n));
        /* No ts: the publish time is when it is published (hsc-ingest takes the
         * Kafka timestamp), so `hsc status` shows the real publish -> searchable. */
        printf("]}\n");
    }
    free(v);
    free(dirs);
}

static void learning(long count, long titles, int users, uint64_t seed)
{
    static const char *KIND[] = {"view", "like", "complete", "rating", "skip", "dislike"};
    rng_state = seed * 40503u + 7;
    for (long i = 0; i < count; i++) {
        int u = 1 + (int)(rnd() % (uint64_t)users);
        const char *k = KIND[rnd() % 6];
        printf("{\"user_id\":\"u%04d\",\"content_id\":\"t%06ld\",\"kind\":\"%s\",", u,
               1 + (long)(rnd() % (uint64_t)titles), k);
        if (!strcmp(k, "rating"))
            printf("\"value\":%d,", (int)(rnd() % 6));
        else if (!strcmp(k, "complete"))
            printf("\"value\":%.2f,", frand());
        printf("\"ts\":%lld}\n", 1700000000000LL + i);
    }
}

const char CLI_SAMPLE_USAGE[] =
    "Usage: hsc sample content [--count N] [--dim D] [--seed S]\n"
    "       hsc sample learning [--count N] [--titles N] [--users N] [--seed S]\n"
    "Writes a deterministic synthetic catalogue or interaction stream as JSON lines.\n";

int cli_sample(hsc_config *cfg, int argc, char **argv)
{
    long count = 1000, titles = 1000;
    int dim = 384, users = 100;
    uint64_t seed = 1;
    const char *what = argc >= 2 ? argv[1] : "";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count"))
            count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--users"))
            users = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--titles"))
            titles = atol(argv[i + 1]);
    }
    if (!strcmp(what, "content") && count > 0 && dim > 0) {
        content(count, dim, seed);
        return 0;
    }
    if (!strcmp(what, "learning") && count > 0 && users > 0 && titles > 0) {
        learning(count, titles, users, seed);
        return 0;
    }
    fputs(CLI_SAMPLE_USAGE, stderr);
    (void)cfg;
    return 2;
}
