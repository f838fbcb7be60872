/* hsc-query: the query engine behind the search request topic, as a process (serve.c). */
#include "serve.h"
#include "worker.h"

static const char USAGE[] =
    "Usage: hsc-query [options]\n"
    "Answers search requests from the request topic: plans a strategy, queries Redis,\n"
    "Milvus, Neo4j and PostgreSQL concurrently, ranks, and replies to the topic and\n"
    "partition named in each request's headers. Stops gracefully on SIGINT/SIGTERM.\n\n";

int main(int argc, char **argv)
{
    hsc_config *cfg;
    int rc = hsc_worker_start(argc, argv, "hsc-query", USAGE, &cfg);
    if (rc >= 0)
        return rc;
    rc = query_serve(cfg);
    hsc_config_free(cfg);
    return rc;
}
