/*
 * eval_ranking: an offline evaluation of hsc's ranking on planted data, run
 * through the real pipeline and real searches over Kafka.
 *
 * The catalogue has latent taste clusters. Each cluster has its own genres,
 * themes, moods and an embedding centre; a title takes most of its tags
 * from its cluster plus noise tags, its embedding is the centre plus
 * Gaussian noise, a share of titles is mis-embedded (the centre of another
 * cluster) and another share mis-tagged (another cluster's tags), so neither
 * the vectors nor the graph alone tells the whole truth. Popularity follows
 * a Zipf law. Each user has a planted taste: a direction near one cluster's
 * centre and two favourite themes; some have a hard constraint (an excluded
 * genre, or a maturity ceiling). Interactions are drawn with probability
 * sqrt(popularity) x exp(8 cos(taste, embedding)) x 6 per favourite theme,
 * plus 20% uniform noise views; the last `--holdout` likes are held out
 * (never published) and are what a good ranking should find.
 *
 * Each user searches as a client would: the embedding of their recent
 * likes, their most recent like as the seed, their history as exclude_ids.
 * Every strategy runs through hsc-query (one process per fusion and history
 * weight), and the baselines are computed here in the same run: popularity,
 * exact vector search (brute force) and hsc's graph_only. Printed per row:
 * HR@10, NDCG@10, MRR@10, catalogue coverage, the share of tied adjacent
 * scores in top-10 lists, and results violating a hard constraint (or being
 * a seed or an excluded id). Then the "like X" check: a user whose history
 * is in one cluster asks for a title X of another; how many of the 10 are
 * from X's cluster, and whether X itself came back.
 *
 *   eval_ranking [--seed S (1)] [--titles N (600)] [--clusters C (6)] [--users U (300)]
 *                [--history H (12)] [--holdout L (2)] [--dim D (32)]
 *                [--fusions weighted,rrf] [--history-weights W[,W...] (default)] [--check]
 *                [--set key=value[,key=value...]]  (for every hsc-query it starts)
 *                [--baselines-only]  (the planted data's baselines, without the stack)
 * --check exits 1 unless, for the first history weight and weighted fusion, hybrid_parallel
 * beats the best single backend by >= 10% NDCG@10, no result violates a constraint in any
 * row, no search fails and at most 1% come back degraded, < 5% of adjacent top-10 scores
 * tie in every hsc row, and "like X" gives >= 7 of 10 from X's cluster and never X. Deterministic
 * for a seed (the stores' own ties aside). Needs .local/stack.env; run it holding the stack lock
 * (it resets the Neo4j graph).
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"
#include "it_query.h"

static const char *const GENRES[] = {"action",   "comedy",          "drama",     "horror",
                                     "thriller", "romance",         "fantasy",   "animation",
                                     "western",  "science fiction", "crime",     "musical",
                                     "mystery",  "documentary",     "adventure", "war"};
#define NGENRES 16
static const char *const THEMES[] = {
    "space",   "revenge", "family", "heist",    "love",   "survival", "friendship", "time travel",
    "magic",   "sport",   "music",  "politics", "nature", "school",   "haunting",   "robots",
    "pirates", "island",  "desert", "winter",   "ocean",  "city",     "train",      "circus"};
#define NTHEMES 24
static const char *const MOODS[] = {"dark",  "uplifting", "tense",     "whimsical",
                                    "funny", "grim",      "dreamlike", "melancholic"};
#define NMOODS 8
static const int MATURITIES[] = {0, 7, 12, 16, 18};

/* ---------------- deterministic randomness ---------------- */

static uint64_t rng_state;
static uint64_t rnext(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void)
{
    return ((double)(rnext() >> 11) + 0.5) / 9007199254740992.0;
}
static int rint_(int n)
{
    return (int)(rnext() % (uint64_t)n);
}
static double gauss(void)
{
    return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand());
}

/* ---------------- the planted world ---------------- */

struct cluster {
    int genres[2], themes[3], moods[2];
    float *centre;
};

struct title {
    char id[16];
    int cluster;
    int genres[3], ngenres, themes[6], nthemes, mood;
    int maturity;
    double pop;
    float *emb;
};

struct user {
    char id[64];
    int cluster;
    int excluded_genre; /* -1: none */
    int max_maturity;   /* -1: none */
    float *taste;       /* the user's own direction in the embedding space */
    int fav_themes[2];  /* one of the cluster's themes and one from anywhere */
    int *hist, nhist;   /* published, oldest first (a view: -1 - title) */
    int *held, nheld;   /* held out */
};

struct world {
    int ntitles, nclusters, nusers, dim, history, holdout;
    struct cluster *c;
    struct title *t;
    struct user *u;
    int *by_pop; /* title indices, most popular first */
};

static void normalise(float *v, int dim)
{
    double n = 0;
    for (int k = 0; k < dim; k++)
        n += (double)v[k] * v[k];
    n = sqrt(n);
    for (int k = 0; k < dim; k++)
        v[k] = (float)(v[k] / n);
}

static int has(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Distinct random picks from 0..n-1 not in avoid. */
static void pick_distinct(int *out, int k, int n, const int *avoid, int navoid)
{
    for (int i = 0; i < k; i++) {
        int x;
        do
            x = rint_(n);
        while (has(out, i, x) || has(avoid, navoid, x));
        out[i] = x;
    }
}

static int cmp_pop(const void *a, const void *b, void *w)
{
    const struct world *W = w;
    double x = W->t[*(const int *)a].pop, y = W->t[*(const int *)b].pop;
    return (x < y) - (x > y);
}

static int title_ok_for(const struct world *W, const struct user *u, int ti)
{
    const struct title *t = &W->t[ti];
    if (u->excluded_genre >= 0 && has(t->genres, t->ngenres, u->excluded_genre))
        return 0;
    if (u->max_maturity >= 0 && t->maturity > u->max_maturity)
        return 0;
    return 1;
}

static void make_world(struct world *W)
{
    int used_g[NGENRES] = {0}, ng = 0, used_t[NTHEMES] = {0}, nt = 0;
    W->c = calloc((size_t)W->nclusters, sizeof(*W->c));
    for (int c = 0; c < W->nclusters; c++) {
        struct cluster *cl = &W->c[c];
        /* clusters get distinct genres and themes while the vocabulary lasts */
        pick_distinct(cl->genres, 2, NGENRES, ng + 2 <= NGENRES ? used_g : NULL,
                      ng + 2 <= NGENRES ? ng : 0);
        used_g[ng++ % NGENRES] = cl->genres[0], used_g[ng++ % NGENRES] = cl->genres[1];
        pick_distinct(cl->themes, 3, NTHEMES, nt + 3 <= NTHEMES ? used_t : NULL,
                      nt + 3 <= NTHEMES ? nt : 0);
        for (int k = 0; k < 3; k++)
            used_t[nt++ % NTHEMES] = cl->themes[k];
        pick_distinct(cl->moods, 2, NMOODS, NULL, 0);
        cl->centre = malloc(sizeof(float) * (size_t)W->dim);
        for (int k = 0; k < W->dim; k++)
            cl->centre[k] = (float)gauss();
        normalise(cl->centre, W->dim);
    }
    W->t = calloc((size_t)W->ntitles, sizeof(*W->t));
    for (int i = 0; i < W->ntitles; i++) {
        struct title *t = &W->t[i];
        snprintf(t->id, sizeof(t->id), "ev%05d", i);
        t->cluster = rint_(W->nclusters);
        double r = urand();
        int tag_cluster = r < 0.10 ? rint_(W->nclusters) : t->cluster; /* mis-tagged */
        int emb_cluster = r > 0.90 ? rint_(W->nclusters) : t->cluster; /* mis-embedded */
        const struct cluster *tc = &W->c[tag_cluster], *ec = &W->c[emb_cluster];
        for (int k = 0; k < 2; k++)
            if (urand() < 0.7)
                t->genres[t->ngenres++] = tc->genres[k];
        if (!t->ngenres)
            t->genres[t->ngenres++] = tc->genres[rint_(2)];
        if (urand() < 0.3) {
            int g = rint_(NGENRES);
            if (!has(t->genres, t->ngenres, g))
                t->genres[t->ngenres++] = g;
        }
        for (int k = 0; k < 3; k++)
            if (urand() < 0.5)
                t->themes[t->nthemes++] = tc->themes[k];
        for (int k = 0; k < 1 + (urand() < 0.5); k++) {
            int th = rint_(NTHEMES);
            if (!has(t->themes, t->nthemes, th))
                t->themes[t->nthemes++] = th;
        }
        t->mood = urand() < 0.7 ? tc->moods[rint_(2)] : rint_(NMOODS);
        t->maturity = MATURITIES[rint_(5)];
        t->emb = malloc(sizeof(float) * (size_t)W->dim);
        double sigma = 1.1 / sqrt((double)W->dim); /* noise of norm about 1.1 */
        for (int k = 0; k < W->dim; k++)
            t->emb[k] = (float)(ec->centre[k] + sigma * gauss());
        normalise(t->emb, W->dim);
    }
    /* Zipf popularity over a random order */
    int *perm = malloc(sizeof(int) * (size_t)W->ntitles);
    for (int i = 0; i < W->ntitles; i++)
        perm[i] = i;
    for (int i = W->ntitles - 1; i > 0; i--) {
        int j = rint_(i + 1), x = perm[i];
        perm[i] = perm[j], perm[j] = x;
    }
    for (int r = 0; r < W->ntitles; r++)
        W->t[perm[r]].pop = 1.0 / pow(r + 1.0, 0.9);
    free(perm);
    W->by_pop = malloc(sizeof(int) * (size_t)W->ntitles);
    for (int i = 0; i < W->ntitles; i++)
        W->by_pop[i] = i;
    qsort_r(W->by_pop, (size_t)W->ntitles, sizeof(int), cmp_pop, W);
}

/* How much user u is drawn to title ti: popularity, closeness to the user's own taste
 * direction, and the user's favourite themes. */
static double affinity(const struct world *W, const struct user *u, int ti)
{
    const struct title *t = &W->t[ti];
    double cos = 0;
    for (int k = 0; k < W->dim; k++)
        cos += (double)u->taste[k] * t->emb[k];
    double theme = 1;
    for (int k = 0; k < t->nthemes; k++)
        theme *= has(u->fav_themes, 2, t->themes[k]) ? 6.0 : 1.0;
    return sqrt(t->pop) * exp(8.0 * cos) * theme;
}

/* A title the user may see and has not used: by affinity, or (noise) uniformly. */
static int draw_for(const struct world *W, const struct user *u, int noise, const int *used,
                    int nused)
{
    double total = 0;
    for (int i = 0; i < W->ntitles; i++)
        if (title_ok_for(W, u, i) && !has(used, nused, i))
            total += noise ? 1.0 : affinity(W, u, i);
    double x = urand() * total;
    int last = -1;
    for (int i = 0; i < W->ntitles; i++) {
        if (!title_ok_for(W, u, i) || has(used, nused, i))
            continue;
        last = i;
        if ((x -= noise ? 1.0 : affinity(W, u, i)) <= 0)
            return i;
    }
    return last;
}

static void make_users(struct world *W, const char *tag)
{
    W->u = calloc((size_t)W->nusers, sizeof(*W->u));
    for (int n = 0; n < W->nusers; n++) {
        struct user *u = &W->u[n];
        snprintf(u->id, sizeof(u->id), "%su%03d", tag, n);
        u->cluster = n % W->nclusters;
        const struct cluster *cl = &W->c[u->cluster];
        /* a taste of their own within the cluster: its centre, moved a little */
        u->taste = malloc(sizeof(float) * (size_t)W->dim);
        double sigma = 0.6 / sqrt((double)W->dim);
        for (int k = 0; k < W->dim; k++)
            u->taste[k] = (float)(cl->centre[k] + sigma * gauss());
        normalise(u->taste, W->dim);
        u->fav_themes[0] = cl->themes[rint_(3)];
        do
            u->fav_themes[1] = rint_(NTHEMES);
        while (u->fav_themes[1] == u->fav_themes[0]);
        u->excluded_genre = -1, u->max_maturity = -1;
        if (n % 3 == 0) /* likes the cluster but never its second genre */
            u->excluded_genre = cl->genres[1];
        else if (n % 3 == 1)
            u->max_maturity = 12;
        int total = W->history + W->holdout;
        int *all = malloc(sizeof(int) * (size_t)total);
        int *kind = malloc(sizeof(int) * (size_t)total);
        int nall = 0;
        while (nall < total) {
            int noise = nall < W->history && urand() < 0.2; /* held-out ones are likes */
            int ti = draw_for(W, u, noise, all, nall);
            if (ti < 0)
                break;
            all[nall] = ti, kind[nall] = noise;
            nall++;
        }
        u->nheld = nall > W->holdout ? W->holdout : 0;
        u->nhist = nall - u->nheld;
        u->hist = malloc(sizeof(int) * (size_t)(u->nhist ? u->nhist : 1));
        u->held = malloc(sizeof(int) * (size_t)(u->nheld ? u->nheld : 1));
        memcpy(u->held, all + u->nhist, sizeof(int) * (size_t)u->nheld);
        /* a noise interaction is a view, stored as -1 - title */
        for (int i = 0; i < u->nhist; i++)
            u->hist[i] = kind[i] ? -1 - all[i] : all[i];
        free(all);
        free(kind);
    }
}

static int hist_title(int h)
{
    return h < 0 ? -1 - h : h;
}

/* ---------------- publishing ---------------- */

static char *write_catalogue(const struct world *W)
{
    size_t cap = (size_t)W->ntitles * (size_t)(W->dim * 12 + 400), len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < W->ntitles; i++) {
        const struct title *t = &W->t[i];
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"id\":\"%s\",\"version\":1,\"title\":\"Planted %d\","
                                "\"kind\":\"movie\",\"genres\":[",
                                t->id, i);
        for (int g = 0; g < t->ngenres; g++)
            len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"", g ? "," : "",
                                    GENRES[t->genres[g]]);
        len += (size_t)snprintf(buf + len, cap - len, "],\"themes\":[");
        for (int g = 0; g < t->nthemes; g++)
            len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"", g ? "," : "",
                                    THEMES[t->themes[g]]);
        len += (size_t)snprintf(buf + len, cap - len,
                                "],\"moods\":[\"%s\"],\"language\":\"en\",\"year\":%d,"
                                "\"maturity\":%d,\"embedding\":[",
                                MOODS[t->mood], 1970 + i % 55, t->maturity);
        for (int k = 0; k < W->dim; k++)
            len += (size_t)snprintf(buf + len, cap - len, "%s%.6f", k ? "," : "", t->emb[k]);
        len += (size_t)snprintf(buf + len, cap - len, "],\"ts\":%lld}\n", 1700000000000LL + i);
    }
    char *path = it_temp_file(buf, len);
    free(buf);
    return path;
}

/* Learning events, a day apart (so the preference half-life matters), newest last. */
static char *write_learning(const struct world *W, long *count)
{
    size_t cap = (size_t)W->nusers * (size_t)W->history * 160 + 64, len = 0;
    char *buf = malloc(cap);
    *count = 0;
    for (int n = 0; n < W->nusers; n++) {
        const struct user *u = &W->u[n];
        for (int i = 0; i < u->nhist; i++) {
            int view = u->hist[i] < 0;
            long long ts = 1700000000000LL + (long long)i * 86400000LL;
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"user_id\":\"%s\",\"content_id\":\"%s\",\"kind\":\"%s\","
                                    "\"ts\":%lld}\n",
                                    u->id, W->t[hist_title(u->hist[i])].id, view ? "view" : "like",
                                    ts);
            (*count)++;
        }
    }
    char *path = it_temp_file(buf, len);
    free(buf);
    return path;
}

static void write_policies(struct it *t, const struct world *W)
{
    for (int n = 0; n < W->nusers; n++) {
        const struct user *u = &W->u[n];
        if (u->excluded_genre < 0 && u->max_maturity < 0)
            continue;
        char sql[512];
        if (u->excluded_genre >= 0)
            snprintf(sql, sizeof(sql),
                     "INSERT INTO user_policies (user_id, excluded_genres) VALUES ('%s', "
                     "ARRAY['%s'])",
                     u->id, GENRES[u->excluded_genre]);
        else
            snprintf(sql, sizeof(sql),
                     "INSERT INTO user_policies (user_id, max_maturity) VALUES ('%s', %d)", u->id,
                     u->max_maturity);
        PGresult *r = PQexec(t->pg, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "policy of %s: %s\n", u->id, PQerrorMessage(t->pg));
            exit(1);
        }
        PQclear(r);
    }
}

/* ---------------- measuring ---------------- */

/* What one row of the table accumulates. */
struct score {
    char label[160];
    double hr, ndcg, mrr;
    long lists, pairs, ties, violations, errors, degraded; /* degraded: ok, a part cut */
    char *seen;                                            /* ntitles flags, for coverage */
};

static void score_init(struct score *s, const struct world *W, const char *label)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->label, sizeof(s->label), "%s", label);
    s->seen = calloc((size_t)W->ntitles, 1);
}

static int title_index(const struct world *W, const char *id)
{
    int i;
    if (sscanf(id, "ev%d", &i) != 1 || i < 0 || i >= W->ntitles)
        return -1;
    return strcmp(W->t[i].id, id) ? -1 : i;
}

/* Scores one top-k list (title indices, scores or NULL) for user u against its held-out titles. */
static void score_list(struct score *s, const struct world *W, const struct user *u, int seed,
                       const int *ids, const double *scores, int n)
{
    double dcg = 0, idcg = 0, rr = 0;
    int hit = 0;
    for (int i = 0; i < u->nheld && i < 10; i++)
        idcg += 1.0 / log2(i + 2.0);
    for (int i = 0; i < n && i < 10; i++) {
        int ti = ids[i];
        if (ti < 0) {
            s->violations++;
            continue;
        }
        s->seen[ti] = 1;
        int excluded = ti == seed;
        for (int h = 0; h < u->nhist && !excluded; h++)
            excluded = hist_title(u->hist[h]) == ti;
        if (!title_ok_for(W, u, ti) || excluded)
            s->violations++;
        if (has(u->held, u->nheld, ti)) {
            dcg += 1.0 / log2(i + 2.0);
            if (!hit)
                rr = 1.0 / (i + 1);
            hit = 1;
        }
        if (scores && i > 0) {
            s->pairs++;
            double a = scores[i - 1], b = scores[i];
            if (fabs(a - b) <= 1e-9 * (fabs(a) > 1 ? fabs(a) : 1))
                s->ties++;
        }
    }
    s->lists++;
    s->hr += hit;
    s->ndcg += idcg > 0 ? dcg / idcg : 0;
    s->mrr += rr;
}

static double ndcg_of(const struct score *s)
{
    return s->lists ? s->ndcg / (double)s->lists : 0;
}

static void print_score(const struct score *s, const struct world *W)
{
    long cov = 0;
    for (int i = 0; i < W->ntitles; i++)
        cov += s->seen[i];
    double l = s->lists ? (double)s->lists : 1;
    printf("%-34s HR@10 %.3f  NDCG@10 %.3f  MRR %.3f  coverage %5.1f%%  ties %5.1f%%  "
           "violations %ld%s",
           s->label, s->hr / l, s->ndcg / l, s->mrr / l, 100.0 * (double)cov / W->ntitles,
           s->pairs ? 100.0 * (double)s->ties / (double)s->pairs : 0.0, s->violations,
           s->errors ? "  (searches failed!)" : "");
    if (s->degraded)
        printf("  (%ld degraded)", s->degraded);
    printf("\n");
}

/* The query embedding of a user: their last three likes, averaged. */
static void query_embedding(const struct world *W, const struct user *u, float *out)
{
    memset(out, 0, sizeof(float) * (size_t)W->dim);
    int used = 0;
    for (int i = u->nhist - 1; i >= 0 && used < 3; i--)
        if (u->hist[i] >= 0) {
            for (int k = 0; k < W->dim; k++)
                out[k] += W->t[u->hist[i]].emb[k];
            used++;
        }
    normalise(out, W->dim);
}

static int last_like(const struct user *u)
{
    for (int i = u->nhist - 1; i >= 0; i--)
        if (u->hist[i] >= 0)
            return u->hist[i];
    return hist_title(u->hist[u->nhist - 1]);
}

static int excluded_for(const struct world *W, const struct user *u, int seed, int ti)
{
    if (ti == seed || !title_ok_for(W, u, ti))
        return 1;
    for (int h = 0; h < u->nhist; h++)
        if (hist_title(u->hist[h]) == ti)
            return 1;
    return 0;
}

static void baseline_popularity(const struct world *W, struct score *s)
{
    for (int n = 0; n < W->nusers; n++) {
        const struct user *u = &W->u[n];
        int seed = last_like(u), ids[10], k = 0;
        for (int i = 0; i < W->ntitles && k < 10; i++)
            if (!excluded_for(W, u, seed, W->by_pop[i]))
                ids[k++] = W->by_pop[i];
        score_list(s, W, u, seed, ids, NULL, k);
    }
}

/* The exact top 10 by cosine to v, skipping what fn excludes for u. */
static int exact_top(const struct world *W, const struct user *u, int seed, const float *v,
                     int *ids, double *sc)
{
    int k = 0;
    for (int i = 0; i < W->ntitles; i++) {
        if (u && excluded_for(W, u, seed, i))
            continue;
        double d = 0;
        for (int j = 0; j < W->dim; j++)
            d += (double)v[j] * W->t[i].emb[j];
        int p = k < 10 ? k++ : 10;
        if (p == 10 && d <= sc[9])
            continue;
        if (p == 10)
            p = 9;
        while (p > 0 && sc[p - 1] < d) {
            sc[p] = sc[p - 1], ids[p] = ids[p - 1];
            p--;
        }
        sc[p] = d, ids[p] = i;
    }
    return k;
}

static void baseline_exact_vector(const struct world *W, struct score *s)
{
    float *q = malloc(sizeof(float) * (size_t)W->dim);
    for (int n = 0; n < W->nusers; n++) {
        const struct user *u = &W->u[n];
        int seed = last_like(u), ids[10];
        double sc[10];
        query_embedding(W, u, q);
        int k = exact_top(W, u, seed, q, ids, sc);
        score_list(s, W, u, seed, ids, sc, k);
    }
    free(q);
}

static void user_request(const struct world *W, const struct user *u, hsc_strategy st,
                         hsc_search_request *req)
{
    hsc_search_request_init(req);
    req->user_id = strdup(u->id);
    req->embedding = malloc(sizeof(float) * (size_t)W->dim);
    req->dim = (size_t)W->dim;
    query_embedding(W, u, req->embedding);
    const char *seed = W->t[last_like(u)].id;
    hsc_strlist_push(&req->seed_ids, seed, strlen(seed));
    for (int h = 0; h < u->nhist; h++) {
        const char *id = W->t[hist_title(u->hist[h])].id;
        if (strcmp(id, seed))
            hsc_strlist_push(&req->filters.exclude_ids, id, strlen(id));
    }
    req->strategy = st;
    req->cache = false;
    req->k = 10;
}

static void reply_list(const struct world *W, const hsc_search_reply *r, int *ids, double *sc,
                       int *n)
{
    *n = 0;
    for (size_t i = 0; i < r->nresults && i < 10; i++) {
        ids[*n] = title_index(W, r->results[i].id);
        sc[*n] = r->results[i].score;
        (*n)++;
    }
}

static const hsc_strategy STRATS[] = {HSC_STRATEGY_VECTOR_ONLY, HSC_STRATEGY_GRAPH_ONLY,
                                      HSC_STRATEGY_HYBRID_PARALLEL, HSC_STRATEGY_HYBRID_SEQUENTIAL};
static const char *const STRAT_NAME[] = {"vector_only", "graph_only", "hybrid_parallel",
                                         "hybrid_sequential"};
#define NSTRATS 4

/* Runs every user's search with each strategy; s[NSTRATS] filled. */
static void run_strategies(struct itq *Q, const struct world *W, const char *cfg_label,
                           struct score *s, double *vector_recall)
{
    long rec_hit = 0, rec_want = 0;
    for (int k = 0; k < NSTRATS; k++) {
        char label[160];
        snprintf(label, sizeof(label), "hsc %s (%s)", STRAT_NAME[k], cfg_label);
        score_init(&s[k], W, label);
        for (int n = 0; n < W->nusers; n++) {
            const struct user *u = &W->u[n];
            hsc_search_request req;
            user_request(W, u, STRATS[k], &req);
            struct itq_result res;
            int ids[10], nids;
            double sc[10];
            if (itq_search(Q, &req, 10000, &res) || !res.reply.ok || res.reply.degraded.n) {
                char parts[128] = "";
                for (size_t d = 0, len = 0; d < res.reply.degraded.n && len < sizeof(parts); d++)
                    len += (size_t)snprintf(parts + len, sizeof(parts) - len, " %s",
                                            res.reply.degraded.v[d]);
                fprintf(stderr, "%s for %s: %s %s%s%s (plan: %s)\n", label, u->id,
                        res.code               ? "timeout"
                        : res.reply.error_code ? res.reply.error_code
                                               : "",
                        res.reply.error_message ? res.reply.error_message : "",
                        res.reply.degraded.n ? " degraded:" : "", parts,
                        res.reply.plan ? res.reply.plan : "");
                if (!res.code && res.reply.ok)
                    s[k].degraded++;
                else
                    s[k].errors++;
            }
            reply_list(W, &res.reply, ids, sc, &nids);
            score_list(&s[k], W, u, last_like(u), ids, sc, nids);
            if (STRATS[k] == HSC_STRATEGY_VECTOR_ONLY && res.reply.ok) {
                /* overlap with the exact top 10 under the same exclusions (ANN recall) */
                int eids[10];
                double esc[10];
                int ek = exact_top(W, u, last_like(u), req.embedding, eids, esc);
                for (int i = 0; i < ek; i++)
                    rec_hit += has(ids, nids, eids[i]);
                rec_want += ek;
            }
            hsc_search_reply_clear(&res.reply);
            hsc_search_request_clear(&req);
        }
    }
    if (vector_recall)
        *vector_recall = rec_want ? (double)rec_hit / (double)rec_want : 0;
}

/* "like X": user 0 (history in its cluster) asks for a popular title of another cluster. */
struct like_x {
    int from_cluster, got, returned_x, errors;
};

static void run_like_x(struct itq *Q, const struct world *W, hsc_strategy st, struct like_x *out)
{
    memset(out, 0, sizeof(*out));
    const struct user *u = &W->u[2]; /* n % 3 == 2: no hard constraint */
    int target = (u->cluster + 1) % W->nclusters, x = -1;
    for (int i = 0; i < W->ntitles && x < 0; i++) {
        int ti = W->by_pop[i];
        if (W->t[ti].cluster == target && !excluded_for(W, u, -1, ti))
            x = ti;
    }
    hsc_search_request req;
    hsc_search_request_init(&req);
    req.user_id = strdup(u->id);
    req.embedding = malloc(sizeof(float) * (size_t)W->dim);
    memcpy(req.embedding, W->t[x].emb, sizeof(float) * (size_t)W->dim);
    req.dim = (size_t)W->dim;
    hsc_strlist_push(&req.seed_ids, W->t[x].id, strlen(W->t[x].id));
    req.strategy = st;
    req.cache = false;
    struct itq_result res;
    if (itq_search(Q, &req, 10000, &res) || !res.reply.ok) {
        out->errors++;
    } else {
        for (size_t i = 0; i < res.reply.nresults && i < 10; i++) {
            int ti = title_index(W, res.reply.results[i].id);
            out->got++;
            if (ti == x)
                out->returned_x = 1;
            else if (ti >= 0 && W->t[ti].cluster == target)
                out->from_cluster++;
        }
    }
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
}

static const char *extra_sets = ""; /* --set key=value,... for every hsc-query */

static pid_t start_query(struct it *t, struct itq *Q, const struct world *W, const char *fusion,
                         const char *hw, int n)
{
    char group[64], dim[48], fu[48], hws[64];
    snprintf(group, sizeof(group), "query.group=eval-query-%d", n);
    snprintf(dim, sizeof(dim), "milvus.dimension=%d", W->dim);
    snprintf(fu, sizeof(fu), "query.fusion=%s", fusion);
    snprintf(hws, sizeof(hws), "query.history_weight=%s", hw);
    const char *qa[32] = {"--set", group, "--set", dim, "--set", fu, "--set", "log.level=warn"};
    int na = 8;
    if (strcmp(hw, "default")) { /* "default": hsc's own query.history_weight */
        qa[na++] = "--set";
        qa[na++] = hws;
    }
    static char extra[512];
    snprintf(extra, sizeof(extra), "%s", extra_sets);
    for (char *es = NULL, *e = strtok_r(extra, ",", &es); e && na < 30;
         e = strtok_r(NULL, ",", &es)) {
        qa[na++] = "--set";
        qa[na++] = e;
    }
    qa[na] = NULL;
    pid_t p = it_spawn(t, "hsc-query", qa);
    /* warm-up: a clean answer from the vector side and the graph side */
    hsc_search_request req;
    user_request(W, &W->u[0], HSC_STRATEGY_HYBRID_PARALLEL, &req);
    struct itq_result res;
    itq_search_ok(Q, &req, &res);
    hsc_search_reply_clear(&res.reply);
    hsc_search_request_clear(&req);
    return p;
}

static const char USAGE[] =
    "usage: eval_ranking [--seed S] [--titles N] [--clusters C] [--users U]\n"
    "                    [--history H] [--holdout L] [--dim D] [--fusions a,b]\n"
    "                    [--history-weights W[,W...]] [--check] [--help]\n"
    "Builds a planted catalogue and users in a fresh namespace of the local stack\n"
    "(resets the Neo4j graph), searches through hsc-query over Kafka and prints\n"
    "ranking quality beside baselines. Defaults: --seed 1 --titles 600 --clusters 6\n"
    "--users 300 --history 12 --holdout 2 --dim 32 --fusions weighted,rrf\n"
    "--history-weights default (hsc's query.history_weight). Needs .local/stack.env and "
    "the stack lock.\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

int main(int argc, char **argv)
{
    bench_args_help(argc, argv, USAGE);
    struct world W = {
        .ntitles = 600, .nclusters = 6, .nusers = 300, .dim = 32, .history = 12, .holdout = 2};
    unsigned long long seed = 1;
    int check = 0, baselines_only = 0;
    char fusions[64] = "weighted,rrf", weights[128] = "default";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--check")) {
            check = 1;
            continue;
        }
        if (!strcmp(a, "--baselines-only")) {
            baselines_only = 1;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--titles"))
            W.ntitles = atoi(v);
        else if (!strcmp(a, "--clusters"))
            W.nclusters = atoi(v);
        else if (!strcmp(a, "--users"))
            W.nusers = atoi(v);
        else if (!strcmp(a, "--history"))
            W.history = atoi(v);
        else if (!strcmp(a, "--holdout"))
            W.holdout = atoi(v);
        else if (!strcmp(a, "--dim"))
            W.dim = atoi(v);
        else if (!strcmp(a, "--fusions"))
            snprintf(fusions, sizeof(fusions), "%s", v);
        else if (!strcmp(a, "--set"))
            extra_sets = v;
        else if (!strcmp(a, "--history-weights"))
            snprintf(weights, sizeof(weights), "%s", v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (W.ntitles < 50 || W.nclusters < 2 || W.nusers < 3 || W.history < 3 || W.holdout < 1 ||
        W.dim < 4 || W.dim > 4096 || W.history + W.holdout > 200) {
        usage(stderr);
        return 2;
    }
    rng_state = 0x9E3779B97F4A7C15ULL ^ (seed * 0xBF58476D1CE4E5B9ULL);
    if (!rng_state)
        rng_state = 1;
    make_world(&W);

    char tag[48];
    snprintf(tag, sizeof(tag), "ev%llu-%d-", seed, (int)getpid());
    make_users(&W, tag);
    if (baselines_only) { /* the planted data and its baselines, without the stack */
        struct score pop, exact;
        score_init(&pop, &W, "baseline popularity");
        score_init(&exact, &W, "baseline exact vector (brute force)");
        baseline_popularity(&W, &pop);
        baseline_exact_vector(&W, &exact);
        print_score(&pop, &W);
        print_score(&exact, &W);
        return 0;
    }
    struct it t;
    it_setup(&t);
    putenv(t.env_prefix), putenv(t.env_pg), putenv(t.env_brokers), putenv(t.env_cfg);
    putenv(t.env_coll), putenv(t.env_epoch);
    long long t0 = it_ms();
    struct itq Q;
    memset(&Q, 0, sizeof(Q));
    Q.t = &t;
    it_neo4j_reset();
    char dimset[48];
    snprintf(dimset, sizeof(dimset), "milvus.dimension=%d", W.dim);
    const char *ia[] = {"--set", "ingest.group=eval-ingest", "--set", "log.level=warn", NULL};
    const char *ea[] = {"--set", "enrich.group=eval-enrich", "--set", "log.level=warn", NULL};
    const char *xa[] = {
        "--set", "embed_index.group=eval-index", "--set", dimset, "--set", "log.level=warn", NULL};
    Q.ingest = it_spawn(&t, "hsc-ingest", ia);
    Q.enrich = it_spawn(&t, "hsc-enrich", ea);
    Q.index = it_spawn(&t, "hsc-embed-index", xa);
    write_policies(&t, &W);
    char *cat = write_catalogue(&W);
    if (it_publish(&t, "content", cat) != 0)
        return 1;
    itq_wait_stores(&t, W.ntitles);
    long nev = 0;
    char *learn = write_learning(&W, &nev);
    if (it_publish(&t, "learning", learn) != 0)
        return 1;
    if (it_pg_wait(&t, "SELECT count(*) FROM learning_events", nev, 120000) != nev) {
        fprintf(stderr, "the learning events did not all reach PostgreSQL\n");
        return 1;
    }
    itq_client(&Q);
    printf("eval_ranking: seed %llu, %d titles in %d planted clusters (dim %d; 10%% mis-tagged, "
           "10%% mis-embedded, Zipf popularity), %d users (a third exclude a genre, a third a "
           "maturity ceiling of 12), %d interactions each published, %d held out; set up in "
           "%.0f s\n",
           seed, W.ntitles, W.nclusters, W.dim, W.nusers, W.history, W.holdout,
           (double)(it_ms() - t0) / 1000);
    printf("each user searches with the embedding of their last 3 likes, their last like as the "
           "seed and their history as exclude_ids; k=10, cache off\n\n");

    struct score pop, exact;
    score_init(&pop, &W, "baseline popularity");
    score_init(&exact, &W, "baseline exact vector (brute force)");
    baseline_popularity(&W, &pop);
    baseline_exact_vector(&W, &exact);
    print_score(&pop, &W);
    print_score(&exact, &W);

    int failed = 0, nproc = 0, first = 1;
    char fl[64];
    snprintf(fl, sizeof(fl), "%s", fusions);
    for (char *fs = NULL, *f = strtok_r(fl, ",", &fs); f; f = strtok_r(NULL, ",", &fs)) {
        char wl[128];
        snprintf(wl, sizeof(wl), "%s", weights);
        for (char *ws = NULL, *w = strtok_r(wl, ",", &ws); w; w = strtok_r(NULL, ",", &ws)) {
            pid_t qp = start_query(&t, &Q, &W, f, w, nproc++);
            char label[64];
            snprintf(label, sizeof(label), "%s, history %s", f, w);
            struct score s[NSTRATS];
            double recall = 0;
            run_strategies(&Q, &W, label, s, &recall);
            for (int k = 0; k < NSTRATS; k++)
                print_score(&s[k], &W);
            /* the best single backend: hsc's vector_only and graph_only, exact vectors,
             * popularity */
            const struct score *best = &s[0];
            if (ndcg_of(&s[1]) > ndcg_of(best))
                best = &s[1];
            if (ndcg_of(&exact) > ndcg_of(best))
                best = &exact;
            if (ndcg_of(&pop) > ndcg_of(best))
                best = &pop;
            double ratio = ndcg_of(best) > 0 ? ndcg_of(&s[2]) / ndcg_of(best) : 0;
            printf("headline (%s): hybrid_parallel NDCG@10 %.3f / best single backend %.3f "
                   "(%s) = %.2fx; hsc vector_only overlap with exact top 10: %.3f\n",
                   label, ndcg_of(&s[2]), ndcg_of(best), best->label, ratio, recall);
            struct like_x lx[2];
            run_like_x(&Q, &W, HSC_STRATEGY_HYBRID_PARALLEL, &lx[0]);
            run_like_x(&Q, &W, HSC_STRATEGY_AUTO, &lx[1]);
            for (int k = 0; k < 2; k++)
                printf("like X (%s, %s): %d of %d from X's cluster, X itself %s%s\n", label,
                       k ? "auto" : "hybrid_parallel", lx[k].from_cluster, lx[k].got,
                       lx[k].returned_x ? "RETURNED" : "not returned",
                       lx[k].errors ? " (search failed)" : "");
            int ties_ok = 1, viol = 0, errs = 0;
            long degraded = 0, lists = 0;
            for (int k = 0; k < NSTRATS; k++) {
                ties_ok &= !s[k].pairs || (double)s[k].ties < 0.05 * (double)s[k].pairs;
                viol += (int)s[k].violations;
                errs += (int)s[k].errors;
                degraded += s[k].degraded;
                lists += s[k].lists;
            }
            /* A reply with a leg cut at its budget is a latency event, scored as it came; a
             * few are tolerated (they are printed), more would say the ranking was not tried */
            if (100 * degraded > lists)
                errs += (int)degraded;
            if (check) {
                int ok = viol == 0 && errs == 0 && ties_ok && lx[0].returned_x == 0 &&
                         lx[1].returned_x == 0 && lx[0].errors + lx[1].errors == 0;
                if (first && !strcmp(f, "weighted"))
                    ok = ok && ratio >= 1.10 && lx[0].from_cluster >= 7 && lx[1].from_cluster >= 7;
                if (!ok) {
                    printf("CHECK FAILED (%s): ratio %.2f (>= 1.10 for weighted), violations "
                           "%d, errors %d, ties %s, like X %d/%d\n",
                           label, ratio, viol, errs, ties_ok ? "ok" : "over 5%", lx[0].from_cluster,
                           lx[1].from_cluster);
                    failed = 1;
                }
            }
            first = 0;
            for (int k = 0; k < NSTRATS; k++)
                free(s[k].seen);
            printf("\n");
            fflush(stdout);
            if (it_stop(qp, SIGTERM, 30000) != 0) {
                fprintf(stderr, "hsc-query did not stop cleanly\n");
                failed = 1;
            }
        }
    }
    itq_done(&Q);
    free(pop.seen);
    free(exact.seen);
    unlink(cat);
    unlink(learn);
    free(cat);
    free(learn);
    it_neo4j_reset();
    it_teardown(&t);
    for (int i = 0; i < W.ntitles; i++)
        free(W.t[i].emb);
    for (int c = 0; c < W.nclusters; c++)
        free(W.c[c].centre);
    for (int n = 0; n < W.nusers; n++)
        free(W.u[n].hist), free(W.u[n].held), free(W.u[n].taste);
    free(W.t), free(W.c), free(W.u), free(W.by_pop);
    if (check)
        printf("eval_ranking --check: %s\n", failed ? "FAILED" : "passed");
    return failed;
}
