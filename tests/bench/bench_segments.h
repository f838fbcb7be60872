/* Milvus's segment state of the newest collection, read from its metrics endpoint. */
#ifndef HSC_BENCH_SEGMENTS_H
#define HSC_BENCH_SEGMENTS_H

/*
 * Entities in sealed segments with and without the vector index built, and in growing
 * segments (searched without the HNSW index), as the querynode's gauge says; and the
 * index builds datacoord counts for the collection. The gauge is set when a segment is
 * loaded and not when its index is handed off later (Milvus 2.3.5: a collection loaded
 * before its index was built stays "sealed without the index"), so whether the
 * catalogue is indexed is read from the builds: none pending, at least one finished.
 */
struct bench_seg_state {
    double sealed_indexed, sealed_plain, growing;
    double index_pending, index_finished; /* builds unissued or in progress; finished */
};

/*
 * Fills st for the newest collection (the largest collection_id: ids are allocated in
 * time order, and the stack lock keeps others from creating one) from Milvus's metrics
 * endpoint; returns 0 (st zeroed) when it cannot be read.
 */
int bench_read_seg_state(const char *metrics_url, struct bench_seg_state *st);

/*
 * Waits (at most max_s seconds) until the newest collection is settled: nothing in
 * growing segments, no index build pending, at least one finished. Prints what it
 * found, with a warning when it gave up. Returns 1 when settled.
 */
int bench_wait_milvus_settled(int max_s);

#endif
