/* Milvus's segment state of the newest collection, read from its metrics endpoint. */
#ifndef HSC_BENCH_SEGMENTS_H
#define HSC_BENCH_SEGMENTS_H

/* Entities in sealed segments with and without the vector index built, and in growing
 * segments (searched without the HNSW index). */
struct bench_seg_state {
    double sealed_indexed, sealed_plain, growing;
};

/*
 * Fills st for the newest collection (the largest collection_id: ids are allocated in
 * time order, and the stack lock keeps others from creating one) from Milvus's metrics
 * endpoint; returns 0 (st zeroed) when it cannot be read.
 */
int bench_read_seg_state(const char *metrics_url, struct bench_seg_state *st);

#endif
