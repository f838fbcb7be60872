/*
 * A main() for the fuzz targets without libFuzzer: feeds every file named
 * on the command line (or found in a named directory) to the target once.
 * With no arguments it replays the target's seed corpus and its regression
 * cases (tests/fuzz/corpus/<target>, tests/fuzz/regressions/<target>), which
 * is how the unit suite (ASan, UBSan, valgrind) keeps every crash found fixed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        return 1;
    /* An exact-size copy, so ASan sees a read past the input's end. */
    unsigned char *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays path (a file, or every regular file of a directory in name order); counts into *runs. */
static int replay(const char *path, int *runs)
{
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "%s: not found\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++*runs;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    if (!d)
        return 1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        if (!stat(full, &st) && S_ISREG(st.st_mode)) {
            ++*runs;
            rc |= replay_file(full);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0, runs = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            rc |= replay(argv[i], &runs);
    } else {
        static const char *dirs[] = {"corpus", "regressions"};
        for (size_t i = 0; i < 2; i++) {
            char dir[4096];
            snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s", HSC_SOURCE_DIR, dirs[i],
                     HSC_FUZZ_TARGET);
            struct stat st;
            if (!stat(dir, &st))
                rc |= replay(dir, &runs);
        }
    }
    printf("%s: %d inputs replayed\n", HSC_FUZZ_TARGET, runs);
    return rc;
}
