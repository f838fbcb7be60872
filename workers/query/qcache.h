/*
 * The result cache's keys. A request is reduced to a canonical text (ids
 * sorted and deduplicated, tags lower-cased, defaults made explicit), so
 * requests that ask for the same thing share an entry. The Redis key is a
 * hash of that text plus the catalogue epoch and the user's policy version:
 * bumping either makes every older entry unreachable without a scan, and
 * TTLs clean them up. The canonical text is stored with the entry and
 * compared on a hit, so a hash collision can never serve wrong results.
 */
#ifndef HSC_QCACHE_H
#define HSC_QCACHE_H

#include <stdint.h>

#include "hsc/search.h"
#include "util.h"

/*
 * Writes the canonical form of r into out. scope names the deployment (its
 * collection and epoch key) so two deployments on one Redis never share
 * entries. Strategies auto and cached_only share a form; a forced strategy
 * is part of it. Returns 0 or HSC_ENOMEM.
 */
int hsc_qcache_canonical(const hsc_search_request *r, const char *scope, hsc_buf *out);

/* 64-bit FNV-1a of n bytes. */
uint64_t hsc_qcache_hash(const void *p, size_t n);

/* Formats prefix + hash (16 hex digits) + ":" + epoch + ":" + policy version into out. */
void hsc_qcache_key(const char *prefix, uint64_t hash, long long epoch, long long policy_version,
                    char *out, size_t cap);

#endif
