/* The catalogue load of hsc-enrich at start: PostgreSQL's content rows into the similarity index.
 */
#ifndef HSC_ENRICH_PGLOAD_H
#define HSC_ENRICH_PGLOAD_H

#include <stddef.h>

#include "enrich.h"
#include "simindex.h"

/*
 * Loads every content row (deleted ones as tombstones) into ix, with the
 * vocabulary's keywords added as for an event. *loaded counts the rows.
 * Blocking; call before the loop runs.
 */
int enrich_pgload(const char *url, const struct enrich_vocab *vocab, simindex *ix, size_t *loaded,
                  hsc_err *err);

#endif
