/*
 * The commit metadata hsc writes with an offset ("hsc1:0,3,4"): the offsets
 * above the committed one that a member already answered, parsed from and
 * formatted into the bytes the broker keeps.
 */
#include "kafka.h"

#include <string.h>

#define META_PREFIX "hsc1:"

size_t hsc_kafka_meta_offsets_parse(const char *meta, size_t n, int64_t base, int64_t *out,
                                    size_t cap)
{
    size_t plen = strlen(META_PREFIX);
    if (!meta || n <= plen || memcmp(meta, META_PREFIX, plen) || base < 0)
        return 0;
    size_t k = 0, i = plen;
    int64_t prev = -1;
    while (i < n && k < cap) {
        int64_t d = 0;
        size_t start = i;
        while (i < n && meta[i] >= '0' && meta[i] <= '9' && i - start < 12)
            d = d * 10 + (meta[i++] - '0');
        /* digits, ascending, then a comma or the end; anything else: not ours */
        if (i == start || d <= prev || (i < n && meta[i] != ',') || base > INT64_MAX - d)
            return 0;
        out[k++] = base + d;
        prev = d;
        if (i < n && ++i == n)
            return 0; /* a trailing comma */
    }
    return k;
}

size_t hsc_kafka_meta_offsets_format(char *buf, size_t cap, int64_t base, const int64_t *offs,
                                     size_t n, size_t *len)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", META_PREFIX);
    if (used >= cap) {
        *len = 0;
        return 0;
    }
    size_t k = 0;
    for (; k < n; k++) {
        char one[24];
        int m = snprintf(one, sizeof(one), "%s%lld", k ? "," : "", (long long)(offs[k] - base));
        if (used + (size_t)m >= cap)
            break;
        memcpy(buf + used, one, (size_t)m + 1);
        used += (size_t)m;
    }
    *len = k ? used : 0;
    return k;
}
