/*
 * libFuzzer target: the commit-metadata parser of hsc-query's revoke
 * hand-over (hsc_kafka_meta_offsets_parse in common/transport/kafka.c), which reads
 * whatever any member of the group committed. Any bytes give a count within
 * the cap and offsets ascending from the base; what it accepts formats back
 * to the same offsets (format then parse is the identity).
 */
#include "fuzz.h"
#include "kafka.h"

#define CAP 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *meta = (const char *)data;
    int64_t base = size ? (int64_t)data[0] * 1000 : 0;
    int64_t out[CAP];
    size_t k = hsc_kafka_meta_offsets_parse(meta, size, base, out, CAP);
    FUZZ_CHECK(k <= CAP);
    for (size_t i = 0; i < k; i++)
        FUZZ_CHECK(out[i] >= base && (i == 0 || out[i] > out[i - 1]));
    if (!k)
        return 0;
    char buf[4096];
    size_t len = 0;
    size_t fit = hsc_kafka_meta_offsets_format(buf, sizeof(buf), base, out, k, &len);
    FUZZ_CHECK(fit == k && len == strlen(buf));
    int64_t again[CAP];
    size_t k2 = hsc_kafka_meta_offsets_parse(buf, len, base, again, CAP);
    FUZZ_CHECK(k2 == k);
    for (size_t i = 0; i < k; i++)
        FUZZ_CHECK(again[i] == out[i]);
    return 0;
}
