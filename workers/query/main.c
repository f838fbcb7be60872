/* hsc-query: the query engine behind the search request topic, as a process (serve.c). */
#include <malloc.h>

#include "serve.h"
#include "worker.h"

static const char USAGE[] =
    "Usage: hsc-query [options]\n"
    "Answers search requests from the request topic: plans a strategy, queries Redis,\n"
    "Milvus, Neo4j and PostgreSQL concurrently, ranks, and replies to the topic and\n"
    "partition named in each request's headers. Stops gracefully on SIGINT/SIGTERM.\n\n";

/*
 * glibc's malloc raises its mmap threshold after each large free and gives
 * every librdkafka thread an arena: both keep a drained backlog's buffers
 * resident. A fixed threshold and two arenas return them.
 */
static void limit_malloc(void)
{
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char **argv)
{
    limit_malloc();
    hsc_config *cfg;
    int rc = hsc_worker_start(argc, argv, "hsc-query", USAGE, &cfg);
    if (rc >= 0)
        return rc;
    rc = query_serve(cfg);
    hsc_config_free(cfg);
    return rc;
}
