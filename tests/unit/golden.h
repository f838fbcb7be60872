/* Reading schemas/golden examples in unit tests (include after cmocka.h and util.h). */
#ifndef HSC_TEST_GOLDEN_H
#define HSC_TEST_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>

/* Reads schemas/golden/REL whole; malloc'd. */
static char *slurp(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/golden/%s", HSC_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    hsc_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        hsc_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data;
}

/* Decodes a .msgpack.hex golden file to bytes; malloc'd. */
static unsigned char *golden_bytes(const char *name, size_t *len)
{
    size_t tlen;
    char *hex = slurp(name, &tlen);
    unsigned char *out = malloc(tlen / 2 + 1);
    size_t n = 0;
    for (size_t i = 0; i + 1 < tlen;) {
        if (hex[i] == '\n' || hex[i] == ' ') {
            i++;
            continue;
        }
        unsigned v;
        sscanf(hex + i, "%2x", &v);
        out[n++] = (unsigned char)v;
        i += 2;
    }
    free(hex);
    *len = n;
    return out;
}

#endif
