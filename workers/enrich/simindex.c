/*
 * The similarity index (simindex.h): titles, their tags, an inverted index
 * tag -> titles and each title's SIMILAR_TO top-N, kept exact.
 *
 * Each tag's postings are split into buckets by the titles' total tag
 * weight (aw). A title o reached first through tag t (in the order the
 * search visits a title's tags, rarest first) shares with x at most H, the
 * weight of t and of the tags after it, so
 *     score(x, o) <= g(aw_o) = m / (aw_x + aw_o - m),  m = min(H, aw_o).
 * A whole bucket is skipped when g is below what could still matter: the
 * weakest score x's own list keeps, and (when x may enter others' lists)
 * the lowest floor (the weakest kept score, or min_score while a list is
 * not full) of the bucket's titles, kept as a lower bound. A title skipped
 * at its first shared tag cannot matter, so the lists are exact, not
 * approximate; a genre shared by half the catalogue costs only the buckets
 * whose weights can still reach those thresholds. Where the bound cannot
 * rule out enough (tags on a large share of a large catalogue), a search
 * scores at most fanout titles per tag, from a rotating start in each
 * bucket, and the lists are near-exact (bench_simindex measures how near).
 *
 * Each title also keeps the titles whose lists hold it (its holders), so a
 * title that changes, or whose node is written, reaches them at once: found
 * by a search instead, they cost a scan of most of a tag's postings, which
 * grew with the catalogue (86% of hsc-enrich's time at 100,000 titles).
 * Deleted titles stay as tombstones (their id and version), so slots are
 * never reused and a late older event is refused.
 *
 * One job in ~1,150 lines, on purpose in one file: the search, the lists,
 * the postings and the change sets all work on the same private structures
 * and invariants (the bucket floors, the holders, the snapshots), and the
 * search's inner loop needs its small helpers inlined; split, the exactness
 * argument above would be read across files and its helpers across call
 * boundaries.
 */
#include "simindex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EPS 1e-12
#define TIX(v) ((v) >> 2)
#define TKIND(v) ((v)&3u)
/* Titles with more tags than this are visited on every search, not through triples. */
#define WIDE 12

enum { KIND_GENRE = 0, KIND_THEME = 1, KIND_MOOD = 2 };
/* F_PENDING: its owner's write in this process is still to come (simindex_set_pending). */
enum { F_DELETED = 1, F_REPLACE = 2, F_PENDING = 4 };

struct bucket {
    double aw, minfloor;
    uint32_t *v;
    uint32_t n, cap;
};

struct tag {
    char *key; /* kind digit + name */
    struct bucket *b;
    uint32_t nb, count;
    uint8_t kind;
};

#define INL 7

/* The fields a search reads come first, on one cache line where the array allows. */
struct title {
    double aw;     /* total tag weight */
    double floor;  /* weakest kept score when full, else min_score */
    uint32_t *ext; /* the tags when more than INL */
    uint16_t ntags, nlist;
    uint8_t flags;
    uint32_t nin;      /* how many lists hold this title */
    uint32_t snap;     /* 1 + index of this change set's snapshot, 0 if none */
    uint32_t inl[INL]; /* the tags (sorted: tag index << 2 | kind) when at most INL */
    char *id;
    int64_t version;
    uint32_t *list; /* top_n slots, best first */
    double *scores; /* their scores */
    uint32_t *in;   /* the titles whose list holds this one (nin of them) */
    uint32_t capin;
};

static inline const uint32_t *tags_of(const struct title *T)
{
    return T->ntags <= INL ? T->inl : T->ext;
}

/* A list as it was when the change set first touched it. */
struct snap {
    uint32_t slot, n;
    uint32_t *v;
    double *s;
};

/* The titles holding one set of three tags (key 0: an empty place). */
struct triple {
    uint64_t key;
    uint32_t *v;
    uint32_t n, cap;
};

/* Open addressing: 1 + index into titles or tags, 0 empty. */
struct map {
    uint32_t *v;
    size_t cap, n;
};

struct simindex {
    struct simindex_weights w;
    struct title *t;
    size_t nt, capt, ndeleted;
    struct tag *tags;
    size_t ntags, captags;
    struct map ids, tagmap;
    struct triple *trip; /* open addressing by key */
    size_t ntrip, captrip;
    uint32_t *wide; /* titles with more than WIDE tags */
    uint32_t nwide, capwide;
    int bulk; /* between simindex_bulk_begin and _end */
    uint32_t epoch;
    uint32_t *seen; /* per slot: the last search that visited it */
    struct snap *snaps;
    size_t nsnaps, capsnaps;
    /* the last take's output */
    const char **replace;
    struct simindex_edge *edges;
    size_t capreplace, capedges;
    unsigned long long scored, skipped;
    /* scratch */
    uint32_t *scratch;
    size_t capscratch;
};

/* ---------------- maps ---------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const char *key_of(const simindex *ix, const struct map *m, uint32_t v)
{
    return m == &ix->ids ? ix->t[v - 1].id : ix->tags[v - 1].key;
}

/* The slot of key in m: where it is, or the empty place it would go. */
static size_t map_find(const simindex *ix, const struct map *m, const char *key)
{
    size_t mask = m->cap - 1, i = hash_str(key) & mask;
    while (m->v[i] && strcmp(key_of(ix, m, m->v[i]), key))
        i = (i + 1) & mask;
    return i;
}

static int map_grow(simindex *ix, struct map *m)
{
    if (m->cap && (m->n + 1) * 2 <= m->cap)
        return 0;
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    uint32_t *old = m->v;
    size_t ocap = m->cap;
    m->v = calloc(ncap, sizeof(uint32_t));
    if (!m->v) {
        m->v = old;
        return HSC_ENOMEM;
    }
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            m->v[map_find(ix, m, key_of(ix, m, old[i]))] = old[i];
    free(old);
    return 0;
}

static long find_title(const simindex *ix, const char *id)
{
    if (!ix->ids.cap)
        return -1;
    uint32_t v = ix->ids.v[map_find(ix, &ix->ids, id)];
    return v ? (long)v - 1 : -1;
}

/* ---------------- scores and lists ---------------- */

static double kind_weight(const simindex *ix, uint8_t kind)
{
    return kind == KIND_GENRE ? ix->w.genre : kind == KIND_THEME ? ix->w.theme : ix->w.mood;
}

static double score_of(simindex *ix, const struct title *a, const struct title *b)
{
    unsigned n[3] = {0, 0, 0};
    const uint32_t *at = tags_of(a), *bt = tags_of(b);
    for (uint16_t i = 0, j = 0; i < a->ntags && j < b->ntags;) {
        if (at[i] == bt[j]) {
            n[TKIND(at[i])]++;
            i++;
            j++;
        } else if (at[i] < bt[j]) {
            i++;
        } else {
            j++;
        }
    }
    ix->scored++;
    double shared = n[0] * ix->w.genre + n[1] * ix->w.theme + n[2] * ix->w.mood;
    double uni = a->aw + b->aw - shared;
    return uni > 0 ? shared / uni : 0;
}

/* True if (s1, a) ranks before (s2, b): higher score, then smaller id. */
static int better(const simindex *ix, double s1, uint32_t a, double s2, uint32_t b)
{
    return s1 > s2 || (s1 == s2 && strcmp(ix->t[a].id, ix->t[b].id) < 0);
}

static struct bucket *bucket_of(struct tag *tg, double aw)
{
    for (uint32_t i = 0; i < tg->nb; i++)
        if (tg->b[i].aw == aw)
            return &tg->b[i];
    return NULL;
}

/* Sets o's floor from its list; a lower floor lowers its buckets' bounds. */
static void update_floor(simindex *ix, uint32_t o)
{
    struct title *T = &ix->t[o];
    int top = ix->w.top_n;
    double f = !top ? INFINITY : T->nlist == top ? T->scores[top - 1] : ix->w.min_score;
    if (f < T->floor) {
        for (uint16_t i = 0; i < T->ntags; i++) {
            struct bucket *b = bucket_of(&ix->tags[TIX(tags_of(T)[i])], T->aw);
            if (b && f < b->minfloor)
                b->minfloor = f;
        }
    }
    T->floor = f;
}

/* True if x at score s belongs in o's list. */
static int wants(const simindex *ix, uint32_t o, uint32_t x, double s)
{
    const struct title *T = &ix->t[o];
    int top = ix->w.top_n;
    if (!top || s < ix->w.min_score || s < T->floor)
        return 0;
    return T->nlist < top || better(ix, s, x, T->scores[top - 1], T->list[top - 1]);
}

static int vec_push(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap + *cap / 2 + 4 : 4;
        uint32_t *nv = realloc(*v, nc * sizeof(uint32_t));
        if (!nv)
            return HSC_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static void vec_remove(uint32_t *v, uint32_t *n, uint32_t x)
{
    for (uint32_t e = 0; e < *n; e++) {
        if (v[e] == x) {
            v[e] = v[--*n];
            return;
        }
    }
}

/* Records that o's list holds x. */
static int in_add(simindex *ix, uint32_t x, uint32_t o)
{
    struct title *X = &ix->t[x];
    return vec_push(&X->in, &X->nin, &X->capin, o);
}

/* Records that o's list no longer holds x. */
static void in_remove(simindex *ix, uint32_t x, uint32_t o)
{
    struct title *X = &ix->t[x];
    vec_remove(X->in, &X->nin, o);
}

/* Puts x (score s, which wants() accepted) in its place in o's list. */
static int list_insert(simindex *ix, uint32_t o, uint32_t x, double s)
{
    struct title *T = &ix->t[o];
    uint32_t n = T->nlist, top = (uint32_t)ix->w.top_n;
    if (in_add(ix, x, o))
        return HSC_ENOMEM;
    if (n == top) {
        in_remove(ix, T->list[n - 1], o);
        n--;
    }
    uint32_t pos = n;
    while (pos > 0 && better(ix, s, x, T->scores[pos - 1], T->list[pos - 1]))
        pos--;
    memmove(T->list + pos + 1, T->list + pos, (n - pos) * sizeof(uint32_t));
    memmove(T->scores + pos + 1, T->scores + pos, (n - pos) * sizeof(double));
    T->list[pos] = x;
    T->scores[pos] = s;
    T->nlist = (uint16_t)(n + 1);
    update_floor(ix, o);
    return 0;
}

static void list_remove(simindex *ix, uint32_t o, uint32_t x)
{
    struct title *T = &ix->t[o];
    for (uint16_t i = 0; i < T->nlist; i++) {
        if (T->list[i] != x)
            continue;
        memmove(T->list + i, T->list + i + 1, (T->nlist - i - 1) * sizeof(uint32_t));
        memmove(T->scores + i, T->scores + i + 1, (T->nlist - i - 1) * sizeof(double));
        T->nlist--;
        in_remove(ix, x, o);
        update_floor(ix, o);
        return;
    }
}

static void list_clear(simindex *ix, uint32_t o)
{
    struct title *T = &ix->t[o];
    for (uint16_t i = 0; i < T->nlist; i++)
        in_remove(ix, T->list[i], o);
    T->nlist = 0;
    update_floor(ix, o);
}

/* Records o's list as it is now, once per change set. */
static int touch(simindex *ix, uint32_t o)
{
    struct title *T = &ix->t[o];
    if (T->snap || ix->bulk)
        return 0;
    struct snap *ns = hsc_grow(ix->snaps, ix->nsnaps, &ix->capsnaps, sizeof(*ns), 256);
    if (!ns)
        return HSC_ENOMEM;
    ix->snaps = ns;
    struct snap *s = &ix->snaps[ix->nsnaps];
    s->slot = o;
    s->n = T->nlist;
    s->v = NULL;
    s->s = NULL;
    if (T->nlist) {
        s->v = malloc(T->nlist * sizeof(uint32_t));
        s->s = malloc(T->nlist * sizeof(double));
        if (!s->v || !s->s) {
            free(s->v);
            free(s->s);
            return HSC_ENOMEM;
        }
        memcpy(s->v, T->list, T->nlist * sizeof(uint32_t));
        memcpy(s->s, T->scores, T->nlist * sizeof(double));
    }
    T->snap = (uint32_t)++ix->nsnaps;
    return 0;
}

/* ---------------- search ---------------- */

/* x's tags, rarest first, into ix->scratch; returns the total weight. */
static double tags_by_rarity(simindex *ix, const struct title *X, uint32_t *order)
{
    double H = 0;
    for (uint16_t i = 0; i < X->ntags; i++) {
        uint32_t id = TIX(tags_of(X)[i]);
        uint16_t j = i;
        while (j > 0 && ix->tags[order[j - 1]].count > ix->tags[id].count) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = id;
        H += kind_weight(ix, ix->tags[id].kind);
    }
    return H;
}

/* The bound g of the file comment. */
static double bound(double H, double awx, double awo)
{
    double m = H < awo ? H : awo, den = awx + awo - m;
    return den > 0 ? m / den : 0;
}

/* Scores o against x once per search: into x's list, and x into o's if offers. */
static int visit(simindex *ix, uint32_t x, uint32_t o, int offers)
{
    struct title *X = &ix->t[x], *O = &ix->t[o];
    ix->seen[o] = ix->epoch;
    double s = score_of(ix, X, O);
    if (s < ix->w.min_score)
        return 0;
    if (wants(ix, x, o, s) && list_insert(ix, x, o, s))
        return HSC_ENOMEM;
    if (offers && wants(ix, o, x, s) && (touch(ix, o) || list_insert(ix, o, x, s)))
        return HSC_ENOMEM;
    return 0;
}

static uint64_t triple_key(uint32_t a, uint32_t b, uint32_t c)
{
    return ((uint64_t)(TIX(a) + 1) << 42) | ((uint64_t)(TIX(b) + 1) << 21) | (TIX(c) + 1);
}

/* The triple's postings, or NULL; with create, made if missing. */
static struct triple *triple_find(simindex *ix, uint64_t key, int create)
{
    if (create && (ix->ntrip + 1) * 2 > ix->captrip) {
        size_t nc = ix->captrip ? ix->captrip * 2 : 4096;
        struct triple *ne = calloc(nc, sizeof(*ne)), *old = ix->trip;
        if (!ne)
            return NULL;
        for (size_t i = 0; i < ix->captrip; i++) {
            if (!old[i].key)
                continue;
            size_t j = (size_t)((old[i].key * 0x9E3779B97F4A7C15ull) >> 20) & (nc - 1);
            while (ne[j].key)
                j = (j + 1) & (nc - 1);
            ne[j] = old[i];
        }
        free(old);
        ix->trip = ne;
        ix->captrip = nc;
    }
    if (!ix->captrip)
        return NULL;
    size_t mask = ix->captrip - 1, j = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (ix->trip[j].key && ix->trip[j].key != key)
        j = (j + 1) & mask;
    if (ix->trip[j].key)
        return &ix->trip[j];
    if (!create)
        return NULL;
    ix->trip[j].key = key;
    ix->ntrip++;
    return &ix->trip[j];
}

/* Puts x (add) or takes it out of the postings of each triple of its tags (or the wide list). */
static int triples_update(simindex *ix, uint32_t x, int add)
{
    struct title *X = &ix->t[x];
    if (X->ntags < 3)
        return 0;
    if (X->ntags > WIDE) {
        if (add)
            return vec_push(&ix->wide, &ix->nwide, &ix->capwide, x);
        vec_remove(ix->wide, &ix->nwide, x);
        return 0;
    }
    const uint32_t *xt = tags_of(X);
    for (uint16_t i = 0; i < X->ntags; i++)
        for (uint16_t j = i + 1; j < X->ntags; j++)
            for (uint16_t k = j + 1; k < X->ntags; k++) {
                struct triple *tr = triple_find(ix, triple_key(xt[i], xt[j], xt[k]), add);
                if (add && (!tr || vec_push(&tr->v, &tr->n, &tr->cap, x)))
                    return HSC_ENOMEM;
                if (!add && tr)
                    vec_remove(tr->v, &tr->n, x);
            }
    return 0;
}

/* Visits the titles of one posting list not seen yet, at most *budget of them. */
static int visit_all(simindex *ix, uint32_t x, const uint32_t *v, uint32_t n, uint32_t *budget,
                     int offers, int *cut)
{
    uint32_t ep = ix->epoch, start = n > *budget ? (ep * 2654435761u) % n : 0;
    for (uint32_t e = 0, at = start; e < n; e++, at = at + 1 == n ? 0 : at + 1) {
        uint32_t o = v[at];
        if (ix->seen[o] == ep)
            continue;
        if (!*budget) {
            *cut = 1;
            ix->skipped += n - e;
            return 0;
        }
        --*budget;
        if (visit(ix, x, o, offers))
            return HSC_ENOMEM;
    }
    return 0;
}

/*
 * Builds x's list from scratch (x's list is empty); with offers, also puts
 * x into every other title's list that wants it (touching those).
 *
 * First the titles sharing three or more tags with x (the triple postings,
 * and the wide titles): after them, a title not seen shares at most two, so
 * the bound's H is at most x's two heaviest tags. Then each tag's buckets
 * that the bound cannot rule out.
 */
static int search(simindex *ix, uint32_t x, int offers)
{
    struct title *X = &ix->t[x];
    int top = ix->w.top_n;
    double minsc = ix->w.min_score;
    uint32_t order[3 * HSC_MAX_LIST_LEN];
    if (X->ntags > sizeof(order) / sizeof(order[0]))
        return HSC_EINVAL;
    double H = tags_by_rarity(ix, X, order);
    uint32_t ep = ++ix->epoch, fan = ix->w.fanout > 0 ? (uint32_t)ix->w.fanout : UINT32_MAX;
    ix->seen[x] = ep;
    double cap = INFINITY; /* what a title not seen yet can share with x at most */
    int cut = 0;
    if (X->ntags >= 3 && X->ntags <= WIDE) {
        const uint32_t *xt = tags_of(X);
        double w1 = 0, w2 = 0;
        for (uint16_t i = 0; i < X->ntags; i++) {
            double wt = kind_weight(ix, (uint8_t)TKIND(xt[i]));
            if (wt > w1) {
                w2 = w1;
                w1 = wt;
            } else if (wt > w2) {
                w2 = wt;
            }
            for (uint16_t j = i + 1; j < X->ntags; j++)
                for (uint16_t k = j + 1; k < X->ntags; k++) {
                    struct triple *tr = triple_find(ix, triple_key(xt[i], xt[j], xt[k]), 0);
                    uint32_t budget = fan;
                    if (tr && visit_all(ix, x, tr->v, tr->n, &budget, offers, &cut))
                        return HSC_ENOMEM;
                }
        }
        uint32_t budget = UINT32_MAX;
        if (visit_all(ix, x, ix->wide, ix->nwide, &budget, offers, &cut))
            return HSC_ENOMEM;
        cap = w1 + w2;
    }
    for (uint16_t i = 0; i < X->ntags; i++) {
        struct tag *tg = &ix->tags[order[i]];
        double h = H < cap ? H : cap;
        uint32_t budget = fan;
        /* Buckets by falling bound: the best candidates first, so the list fills early. */
        uint32_t bo[256];
        double bg[256];
        uint32_t nbo = tg->nb < 256 ? tg->nb : 256;
        for (uint32_t k = 0; k < nbo; k++) {
            double g = bound(h, X->aw, tg->b[k].aw);
            uint32_t j = k;
            while (j > 0 && bg[j - 1] < g) {
                bg[j] = bg[j - 1];
                bo[j] = bo[j - 1];
                j--;
            }
            bg[j] = g;
            bo[j] = k;
        }
        for (uint32_t k = 0; k < tg->nb; k++) {
            struct bucket *b = &tg->b[k < nbo ? bo[k] : k];
            if (!b->n)
                continue;
            double g = bound(h, X->aw, b->aw);
            double thr = X->nlist == top ? X->scores[top - 1] : minsc;
            /*
             * Offers through a bucket larger than the fanout are left out: the
             * titles sharing three tags with x had theirs; one sharing at most
             * two takes x only if its own list is weak (near-exact, measured).
             */
            int offer = offers && b->n <= fan;
            if (offer && b->minfloor < thr)
                thr = b->minfloor;
            if (g < thr - EPS || g < minsc - EPS) {
                ix->skipped += b->n;
                continue;
            }
            int bcut = 0;
            if (visit_all(ix, x, b->v, b->n, &budget, offer, &bcut))
                return HSC_ENOMEM;
            if (offer && !bcut) {
                /* Every title of the bucket was seen: its lowest floor is known exactly. */
                double mf = INFINITY;
                for (uint32_t e = 0; e < b->n; e++)
                    if (ix->t[b->v[e]].floor < mf)
                        mf = ix->t[b->v[e]].floor;
                b->minfloor = mf;
            }
        }
        H -= kind_weight(ix, tg->kind);
    }
    (void)cut;
    return 0;
}

static int scratch_push(simindex *ix, size_t *n, uint32_t v)
{
    uint32_t *ns = hsc_grow(ix->scratch, *n, &ix->capscratch, sizeof(*ns), 64);
    if (!ns)
        return HSC_ENOMEM;
    ix->scratch = ns;
    ix->scratch[(*n)++] = v;
    return 0;
}

static int holds(const struct title *T, uint32_t x)
{
    for (uint16_t i = 0; i < T->nlist; i++)
        if (T->list[i] == x)
            return 1;
    return 0;
}

/* The titles whose list holds x, into ix->scratch; *n is how many. */
static int holders(simindex *ix, uint32_t x, size_t *n)
{
    *n = 0;
    for (uint32_t i = 0; i < ix->t[x].nin; i++)
        if (scratch_push(ix, n, ix->t[x].in[i]))
            return HSC_ENOMEM;
    return 0;
}

/* ---------------- postings ---------------- */

static int postings_add(simindex *ix, uint32_t x)
{
    struct title *X = &ix->t[x];
    for (uint16_t i = 0; i < X->ntags; i++) {
        struct tag *tg = &ix->tags[TIX(tags_of(X)[i])];
        struct bucket *b = bucket_of(tg, X->aw);
        if (!b) {
            struct bucket *nb = realloc(tg->b, (tg->nb + 1) * sizeof(*nb));
            if (!nb)
                return HSC_ENOMEM;
            tg->b = nb;
            b = &tg->b[tg->nb++];
            *b = (struct bucket){.aw = X->aw, .minfloor = INFINITY};
        }
        if (b->n == b->cap) {
            uint32_t nc = b->cap ? b->cap + b->cap / 2 + 4 : 4;
            uint32_t *nv = realloc(b->v, nc * sizeof(uint32_t));
            if (!nv)
                return HSC_ENOMEM;
            b->v = nv;
            b->cap = nc;
        }
        b->v[b->n++] = x;
        if (X->floor < b->minfloor)
            b->minfloor = X->floor;
        tg->count++;
    }
    return triples_update(ix, x, 1);
}

static void postings_remove(simindex *ix, uint32_t x)
{
    struct title *X = &ix->t[x];
    for (uint16_t i = 0; i < X->ntags; i++) {
        struct tag *tg = &ix->tags[TIX(tags_of(X)[i])];
        struct bucket *b = bucket_of(tg, X->aw);
        for (uint32_t e = 0; b && e < b->n; e++) {
            if (b->v[e] == x) {
                b->v[e] = b->v[--b->n];
                tg->count--;
                break;
            }
        }
    }
    triples_update(ix, x, 0);
}

/* ---------------- tags ---------------- */

static long tag_id(simindex *ix, uint8_t kind, const char *name)
{
    size_t len = strlen(name);
    char *key = malloc(len + 2);
    if (!key)
        return -1;
    key[0] = (char)('0' + kind);
    memcpy(key + 1, name, len + 1);
    if (map_grow(ix, &ix->tagmap)) {
        free(key);
        return -1;
    }
    size_t at = map_find(ix, &ix->tagmap, key);
    if (ix->tagmap.v[at]) {
        free(key);
        return (long)ix->tagmap.v[at] - 1;
    }
    struct tag *nt = hsc_grow(ix->tags, ix->ntags, &ix->captags, sizeof(*nt), 64);
    if (!nt) {
        free(key);
        return -1;
    }
    ix->tags = nt;
    ix->tags[ix->ntags] = (struct tag){.key = key, .kind = kind};
    ix->tagmap.v[at] = (uint32_t)++ix->ntags;
    ix->tagmap.n++;
    return (long)ix->ntags - 1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted, deduplicated tag ids of three lists (malloc'd), their count and weight. */
static int build_tags(simindex *ix, const hsc_strlist *lists[3], uint32_t **out, uint16_t *n,
                      double *aw)
{
    size_t total = lists[0]->n + lists[1]->n + lists[2]->n;
    *out = NULL;
    *n = 0;
    *aw = 0;
    if (!total)
        return 0;
    if (total > 3 * HSC_MAX_LIST_LEN)
        return HSC_EINVAL;
    uint32_t *v = malloc(total * sizeof(uint32_t));
    if (!v)
        return HSC_ENOMEM;
    size_t k = 0;
    for (uint8_t kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < lists[kind]->n; i++) {
            long id = tag_id(ix, kind, lists[kind]->v[i]);
            if (id < 0) {
                free(v);
                return HSC_ENOMEM;
            }
            v[k++] = (uint32_t)id << 2 | kind;
        }
    }
    qsort(v, k, sizeof(uint32_t), cmp_u32);
    size_t m = 0;
    unsigned cnt[3] = {0, 0, 0};
    for (size_t i = 0; i < k; i++) {
        if (m && v[m - 1] == v[i])
            continue;
        v[m++] = v[i];
        cnt[TKIND(v[i])]++;
    }
    *out = v;
    *n = (uint16_t)m;
    *aw = cnt[0] * ix->w.genre + cnt[1] * ix->w.theme + cnt[2] * ix->w.mood;
    return 0;
}

/* ---------------- public ---------------- */

simindex *simindex_new(const struct simindex_weights *w, hsc_err *err)
{
    if (w->top_n < 0 || w->top_n > 60000 || !(w->genre >= 0) || !(w->theme >= 0) ||
        !(w->mood >= 0) || !(w->min_score >= 0)) {
        hsc_err_set(err, HSC_ECONFIG,
                    "enrich: similarity weights must be >= 0 and similar_top_n 0..60000");
        return NULL;
    }
    simindex *ix = calloc(1, sizeof(*ix));
    if (!ix) {
        hsc_err_set(err, HSC_ENOMEM, "simindex: out of memory");
        return NULL;
    }
    ix->w = *w;
    return ix;
}

static void free_snaps(simindex *ix)
{
    for (size_t i = 0; i < ix->nsnaps; i++) {
        free(ix->snaps[i].v);
        free(ix->snaps[i].s);
    }
    ix->nsnaps = 0;
}

void simindex_free(simindex *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nt; i++) {
        free(ix->t[i].id);
        free(ix->t[i].ext);
        free(ix->t[i].list);
        free(ix->t[i].scores);
        free(ix->t[i].in);
    }
    for (size_t i = 0; i < ix->ntags; i++) {
        for (uint32_t k = 0; k < ix->tags[i].nb; k++)
            free(ix->tags[i].b[k].v);
        free(ix->tags[i].b);
        free(ix->tags[i].key);
    }
    free_snaps(ix);
    free(ix->snaps);
    free(ix->t);
    free(ix->seen);
    for (size_t i = 0; i < ix->captrip; i++)
        free(ix->trip[i].v);
    free(ix->trip);
    free(ix->wide);
    free(ix->tags);
    free(ix->ids.v);
    free(ix->tagmap.v);
    free(ix->replace);
    free(ix->edges);
    free(ix->scratch);
    free(ix);
}

/* A new slot for id (a tombstone until tags are set), or -1. */
static long new_title(simindex *ix, const char *id)
{
    if (map_grow(ix, &ix->ids))
        return -1;
    if (ix->nt == ix->capt) {
        size_t nc = ix->capt ? ix->capt * 2 : 1024;
        struct title *nt = realloc(ix->t, nc * sizeof(*nt));
        if (!nt)
            return -1;
        ix->t = nt;
        uint32_t *ns = realloc(ix->seen, nc * sizeof(uint32_t));
        if (!ns)
            return -1;
        ix->seen = ns;
        ix->capt = nc;
    }
    struct title *T = &ix->t[ix->nt];
    memset(T, 0, sizeof(*T));
    T->id = strdup(id);
    int top = ix->w.top_n;
    T->list = top ? malloc((size_t)top * sizeof(uint32_t)) : NULL;
    T->scores = top ? malloc((size_t)top * sizeof(double)) : NULL;
    if (!T->id || (top && (!T->list || !T->scores))) {
        free(T->id);
        free(T->list);
        free(T->scores);
        return -1;
    }
    T->floor = ix->w.min_score;
    T->flags = F_DELETED;
    ix->seen[ix->nt] = 0;
    size_t at = map_find(ix, &ix->ids, id);
    ix->ids.v[at] = (uint32_t)(ix->nt + 1);
    ix->ids.n++;
    ix->ndeleted++;
    return (long)ix->nt++;
}

/* Takes x out of every list and out of the postings; its old holders into scratch. */
static int detach(simindex *ix, uint32_t x, size_t *nh)
{
    int rc = holders(ix, x, nh);
    for (size_t i = 0; !rc && i < *nh; i++) {
        rc = touch(ix, ix->scratch[i]);
        if (!rc)
            list_remove(ix, ix->scratch[i], x);
    }
    if (!rc)
        rc = touch(ix, x);
    if (rc)
        return rc;
    list_clear(ix, x);
    postings_remove(ix, x);
    return 0;
}

/* Recomputes the lists of the titles in scratch[0..n). */
static int recompute(simindex *ix, size_t n)
{
    uint32_t *v = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!v)
        return HSC_ENOMEM;
    memcpy(v, ix->scratch, n * sizeof(uint32_t));
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (ix->t[v[i]].flags & F_DELETED)
            continue;
        rc = touch(ix, v[i]);
        if (!rc) {
            list_clear(ix, v[i]);
            rc = search(ix, v[i], 0);
        }
    }
    free(v);
    return rc;
}

/* Gives T these tags (taking tags over). */
static void set_tags(struct title *T, uint32_t *tags, uint16_t ntags, double aw)
{
    free(T->ext);
    T->ext = NULL;
    if (ntags <= INL) {
        if (ntags)
            memcpy(T->inl, tags, ntags * sizeof(uint32_t));
        free(tags);
    } else {
        T->ext = tags;
    }
    T->ntags = ntags;
    T->aw = aw;
}

void simindex_bulk_begin(simindex *ix)
{
    ix->bulk = 1;
}

int simindex_bulk_end(simindex *ix)
{
    ix->bulk = 0;
    return 0;
}

int simindex_upsert(simindex *ix, const char *id, int64_t version, const hsc_strlist *genres,
                    const hsc_strlist *themes, const hsc_strlist *moods)
{
    long x = find_title(ix, id);
    if (x >= 0) {
        struct title *T = &ix->t[x];
        if (version < T->version || ((T->flags & F_DELETED) && version <= T->version))
            return 0;
    }
    const hsc_strlist *lists[3] = {genres, themes, moods};
    uint32_t *tags;
    uint16_t ntags;
    double aw;
    int rc = build_tags(ix, lists, &tags, &ntags, &aw);
    if (rc)
        return rc;
    if (x < 0 && (x = new_title(ix, id)) < 0) {
        free(tags);
        return HSC_ENOMEM;
    }
    struct title *T = &ix->t[x];
    size_t nh = 0;
    if (!(T->flags & F_DELETED)) {
        if (T->ntags == ntags && aw == T->aw &&
            (!ntags || !memcmp(tags_of(T), tags, ntags * sizeof(uint32_t)))) {
            T->version = version;
            free(tags);
            return 1;
        }
        if ((rc = detach(ix, (uint32_t)x, &nh))) {
            free(tags);
            return rc;
        }
    } else {
        ix->ndeleted--;
        if ((rc = touch(ix, (uint32_t)x))) {
            free(tags);
            return rc;
        }
    }
    T = &ix->t[x];
    set_tags(T, tags, ntags, aw);
    T->version = version;
    T->flags &= (uint8_t)~F_DELETED;
    T->floor = ix->w.min_score;
    if (ix->w.top_n == 0)
        return postings_add(ix, (uint32_t)x) ? HSC_ENOMEM : 1;
    /* The old holders are kept aside: search() reuses no scratch. */
    uint32_t *old = NULL;
    if (nh) {
        if (!(old = malloc(nh * sizeof(uint32_t))))
            return HSC_ENOMEM;
        memcpy(old, ix->scratch, nh * sizeof(uint32_t));
    }
    rc = postings_add(ix, (uint32_t)x);
    if (!rc)
        rc = search(ix, (uint32_t)x, 1);
    if (!rc && nh) {
        memcpy(ix->scratch, old, nh * sizeof(uint32_t));
        rc = recompute(ix, nh);
    }
    free(old);
    return rc ? rc : 1;
}

int simindex_delete(simindex *ix, const char *id, int64_t version)
{
    long x = find_title(ix, id);
    if (x < 0) {
        if ((x = new_title(ix, id)) < 0)
            return HSC_ENOMEM;
        ix->t[x].version = version;
        return 1;
    }
    struct title *T = &ix->t[x];
    if (version < T->version || (T->flags & F_DELETED))
        return 0;
    size_t nh = 0;
    int rc = detach(ix, (uint32_t)x, &nh);
    if (rc)
        return rc;
    T = &ix->t[x];
    free(T->ext);
    T->ext = NULL;
    T->ntags = 0;
    T->aw = 0;
    T->version = version;
    T->flags |= F_DELETED;
    ix->ndeleted++;
    rc = recompute(ix, nh);
    return rc ? rc : 1;
}

/* simindex_mark_written by slot; it also ends the wait of simindex_set_pending. */
static int mark_written(simindex *ix, uint32_t x)
{
    if (ix->bulk)
        return 0;
    ix->t[x].flags &= (uint8_t)~F_PENDING;
    if (ix->t[x].flags & F_DELETED)
        return 0;
    int rc = touch(ix, x);
    if (rc)
        return rc;
    ix->t[x].flags |= F_REPLACE;
    size_t nh = 0;
    if ((rc = holders(ix, x, &nh)))
        return rc;
    for (size_t i = 0; i < nh; i++) {
        uint32_t o = ix->scratch[i];
        if ((rc = touch(ix, o)))
            return rc;
        /* Give x a score no list holds in the recorded list, so the edge o -> x is
         * written again if o still holds x at the take, and removed if o has dropped
         * x by then (taking x out of the record lost that removal: the edge, sent
         * earlier and still pending, stayed in the graph). */
        struct snap *s = &ix->snaps[ix->t[o].snap - 1];
        for (uint32_t k = 0; k < s->n; k++) {
            if (s->v[k] == x) {
                s->s[k] = -1;
                break;
            }
        }
    }
    return 0;
}

int simindex_mark_written(simindex *ix, const char *id)
{
    long x = find_title(ix, id);
    return x < 0 ? 0 : mark_written(ix, (uint32_t)x);
}

int simindex_set_pending(simindex *ix, const char *id)
{
    long x = find_title(ix, id);
    if (x >= 0 && !(ix->t[x].flags & F_DELETED) && !ix->bulk)
        ix->t[x].flags |= F_PENDING;
    return 0;
}

int simindex_release_pending(simindex *ix)
{
    int rc = 0;
    for (size_t x = 0; x < ix->nt && !rc; x++)
        if (ix->t[x].flags & F_PENDING)
            rc = mark_written(ix, (uint32_t)x);
    return rc;
}

static int push_edge(simindex *ix, size_t *n, const char *src, const char *dst, double score)
{
    struct simindex_edge *ne = hsc_grow(ix->edges, *n, &ix->capedges, sizeof(*ne), 256);
    if (!ne)
        return HSC_ENOMEM;
    ix->edges = ne;
    ix->edges[(*n)++] = (struct simindex_edge){.src = src, .dst = dst, .score = score};
    return 0;
}

int simindex_take(simindex *ix, struct simindex_changes *out)
{
    size_t nr = 0, ne = 0;
    int rc = 0;
    for (size_t i = 0; i < ix->nsnaps && !rc; i++) {
        struct snap *s = &ix->snaps[i];
        struct title *T = &ix->t[s->slot];
        if (T->flags & F_DELETED)
            continue;
        if (T->flags & F_REPLACE) {
            const char **nrp = hsc_grow(ix->replace, nr, &ix->capreplace, sizeof(*nrp), 256);
            if (!nrp) {
                rc = HSC_ENOMEM;
                break;
            }
            ix->replace = nrp;
            ix->replace[nr++] = T->id;
            continue;
        }
        /* An edge from or to a title whose owner's write is still to come is left out:
         * that write sends it (the list whole, and every edge to the title), and
         * before it, the title's node may not exist. Removals are kept: an older
         * version's node may hold the edge. */
        for (uint16_t k = 0; k < T->nlist && !rc; k++) {
            if ((T->flags | ix->t[T->list[k]].flags) & F_PENDING)
                continue;
            int same = 0;
            for (uint32_t j = 0; j < s->n && !same; j++)
                same = s->v[j] == T->list[k] && s->s[j] == T->scores[k];
            if (!same)
                rc = push_edge(ix, &ne, T->id, ix->t[T->list[k]].id, T->scores[k]);
        }
        for (uint32_t j = 0; j < s->n && !rc; j++)
            if (!holds(T, s->v[j]))
                rc = push_edge(ix, &ne, T->id, ix->t[s->v[j]].id, -1);
    }
    for (size_t i = 0; i < ix->nsnaps; i++) {
        ix->t[ix->snaps[i].slot].snap = 0;
        ix->t[ix->snaps[i].slot].flags &= (uint8_t)~F_REPLACE;
    }
    free_snaps(ix);
    out->replace = ix->replace;
    out->nreplace = rc ? 0 : nr;
    out->edges = ix->edges;
    out->nedges = rc ? 0 : ne;
    return rc;
}

size_t simindex_list(simindex *ix, const char *id, struct simindex_neighbour *out, size_t cap)
{
    long x = find_title(ix, id);
    if (x < 0 || (ix->t[x].flags & F_DELETED))
        return 0;
    const struct title *T = &ix->t[x];
    size_t n = T->nlist < cap ? T->nlist : cap;
    for (size_t i = 0; i < n; i++)
        out[i] = (struct simindex_neighbour){.id = ix->t[T->list[i]].id, .score = T->scores[i]};
    return T->nlist;
}

size_t simindex_list_to_write(simindex *ix, const char *id, struct simindex_neighbour *out,
                              size_t cap)
{
    long x = find_title(ix, id);
    if (x < 0 || (ix->t[x].flags & F_DELETED))
        return 0;
    const struct title *T = &ix->t[x];
    size_t n = 0;
    for (uint16_t i = 0; i < T->nlist && n < cap; i++)
        if (!(ix->t[T->list[i]].flags & F_PENDING))
            out[n++] =
                (struct simindex_neighbour){.id = ix->t[T->list[i]].id, .score = T->scores[i]};
    return n;
}

int simindex_version(const simindex *ix, const char *id, int64_t *version, int *deleted)
{
    long x = find_title(ix, id);
    if (x < 0)
        return 0;
    *version = ix->t[x].version;
    *deleted = !!(ix->t[x].flags & F_DELETED);
    return 1;
}

void simindex_get_stats(const simindex *ix, struct simindex_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->titles = ix->nt - ix->ndeleted;
    out->deleted = ix->ndeleted;
    out->tags = ix->ntags;
    out->scored = ix->scored;
    out->skipped = ix->skipped;
    /* malloc's own overhead (about 16 bytes a block) is counted too. */
    size_t b = sizeof(*ix) + ix->capt * (sizeof(struct title) + sizeof(uint32_t)) +
               (ix->ids.cap + ix->tagmap.cap) * 4;
    size_t top = (size_t)ix->w.top_n;
    for (size_t i = 0; i < ix->nt; i++) {
        const struct title *T = &ix->t[i];
        b += strlen(T->id) + 1 + 16;
        if (T->ext)
            b += T->ntags * sizeof(uint32_t) + 16;
        if (top)
            b += top * (sizeof(uint32_t) + sizeof(double)) + 32;
        if (T->in)
            b += T->capin * sizeof(uint32_t) + 16;
    }
    for (size_t i = 0; i < ix->ntags; i++) {
        b += sizeof(struct tag) + strlen(ix->tags[i].key) + 1 + 16;
        for (uint32_t k = 0; k < ix->tags[i].nb; k++)
            b += sizeof(struct bucket) + ix->tags[i].b[k].cap * sizeof(uint32_t) + 16;
    }
    b += ix->captrip * sizeof(struct triple) + ix->capwide * sizeof(uint32_t);
    for (size_t i = 0; i < ix->captrip; i++)
        if (ix->trip[i].key)
            b += ix->trip[i].cap * sizeof(uint32_t) + 16;
    out->bytes = b;
}
