/*
 * libFuzzer target: the embeddings response parser (common/stores/embeddings.c)
 * asked for 1, 2 and 3 vectors of dimension 1 and 3. It either parses or
 * fails with a message; what parses is as the caller uses it: every vector
 * there and as long as the dimension (ASan checks the reads), and a failure
 * leaves none.
 */
#include "embeddings.h"
#include "fuzz.h"

static void parse(const char *body, size_t len, size_t n, int dim)
{
    float *out[3];
    hsc_err err = {0};
    int rc = hsc_embeddings_parse(body, len, n, dim, out, &err);
    if (rc) {
        FUZZ_CHECK(err.code == rc && err.msg[0]);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!out[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(out[i]);
        float sum = 0;
        for (int k = 0; k < dim; k++)
            sum += out[i][k];
        (void)sum;
        free(out[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t n = 1; n <= 3; n++) {
        parse((const char *)data, size, n, 1);
        parse((const char *)data, size, n, 3);
    }
    return 0;
}
