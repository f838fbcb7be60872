/* hsc-query's request loop: search requests in, replies out, offsets stored as they finish. */
#ifndef HSC_QUERY_SERVE_H
#define HSC_QUERY_SERVE_H

#include "config.h"

/* Answers search requests on cfg's topics until SIGINT/SIGTERM; returns the exit status. */
int query_serve(hsc_config *cfg);

#endif
