/* Milvus's segment state of the newest collection, read from its metrics endpoint. */
#include "bench_segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

int bench_read_seg_state(const char *metrics_url, struct bench_seg_state *st)
{
    long status = 0;
    char *body = it_http("GET", metrics_url, NULL, &status);
    memset(st, 0, sizeof(*st));
    if (!body || status != 200) {
        free(body);
        return 0;
    }
    const char *key = "milvus_querynode_entity_num{";
    unsigned long long newest = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const char *l = strstr(body, key); l; l = strstr(l + 1, key)) {
            const char *c = strstr(l, "collection_id=\"");
            const char *eol = strchr(l, '\n');
            if (!c || (eol && c > eol))
                continue;
            unsigned long long id = strtoull(c + 15, NULL, 10);
            if (pass == 0) {
                if (id > newest)
                    newest = id;
                continue;
            }
            if (id != newest)
                continue;
            const char *close = strchr(l, '}');
            if (!close)
                continue;
            double v = atof(close + 1);
            int indexed = strstr(l, "indexed_field_count=\"0\"") == NULL ||
                          (eol && strstr(l, "indexed_field_count=\"0\"") > eol);
            if (strstr(l, "segment_state=\"Growing\"") &&
                (!eol || strstr(l, "segment_state=\"Growing\"") < eol))
                st->growing += v;
            else if (indexed)
                st->sealed_indexed += v;
            else
                st->sealed_plain += v;
        }
    /* the index builds datacoord has for it (present once one was asked for) */
    const char *task = "milvus_datacoord_index_task_count{";
    char want[64];
    snprintf(want, sizeof(want), "collection_id=\"%llu\"", newest);
    for (const char *l = strstr(body, task); newest && l; l = strstr(l + 1, task)) {
        const char *close = strchr(l, '}');
        const char *c = strstr(l, want);
        if (!close || !c || c > close)
            continue;
        double v = atof(close + 1);
        const char *st_at = strstr(l, "index_task_status=\"");
        if (!st_at || st_at > close)
            continue;
        st_at += strlen("index_task_status=\"");
        if (!strncmp(st_at, "finished\"", 9))
            st->index_finished += v;
        else if (!strncmp(st_at, "in-progress\"", 12) || !strncmp(st_at, "unissued\"", 9))
            st->index_pending += v;
    }
    free(body);
    return newest != 0;
}

int bench_wait_milvus_settled(int max_s)
{
    /* Milvus seals segments and builds their HNSW index in the background for minutes
     * after a load (CPU a measurement would share, and growing segments searched without
     * the index): figures are of a settled catalogue, as a served one mostly is. */
    const char *metrics = getenv("HSC_MILVUS_METRICS_URL") ? getenv("HSC_MILVUS_METRICS_URL")
                                                           : "http://127.0.0.1:9091/metrics";
    struct bench_seg_state seg = {0};
    long long w0 = it_ms(), still_since = w0;
    double last_growing = -1;
    int unsettled = 1, idle = 0;
    /* Milvus seals an idle growing segment only above dataCoord.segment.
     * minSizeFromIdleToSealed (16 MB, ~10,000 vectors of 384 dims): a smaller catalogue
     * stays growing for good, so no build pending and no change for 2 minutes is as
     * settled as it gets (it waited the whole --index-wait before). */
    while (bench_read_seg_state(metrics, &seg) && it_ms() - w0 < (long long)max_s * 1000) {
        if (seg.growing != last_growing || seg.index_pending > 0)
            still_since = it_ms(), last_growing = seg.growing;
        idle = seg.index_pending == 0 && it_ms() - still_since >= 120000;
        unsettled = (seg.growing > 0 || seg.index_pending > 0 || seg.index_finished < 1) && !idle;
        if (!unsettled)
            break;
        sleep(5);
    }
    printf("milvus after %.0f s of waiting: %.0f entities in growing segments, index builds "
           "%.0f pending and %.0f finished%s\n",
           (double)(it_ms() - w0) / 1000.0, seg.growing, seg.index_pending, seg.index_finished,
           unsettled ? " (NOT SETTLED: the figures below share the machine with them)"
           : idle && seg.growing > 0 ? " (the growing segment is too small for Milvus to seal)"
                                     : "");
    return !unsettled;
}
