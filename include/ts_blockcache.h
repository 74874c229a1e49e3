/*
 * Decoded source blocks shared by every worker thread.
 *
 * GDAL dataset handles are not thread-safe, so each worker keeps its own
 * (src/reader.c), and GDAL's block cache belongs to a handle: with N workers
 * the same compressed block is inflated N times and held N times, and a
 * working set that fits GDAL_CACHEMAX once thrashes it with two threads
 * (docs/bench.md, "Findings"). This store sits above the handles: a block
 * decoded by one worker is copied out by all of them. Values are immutable
 * blobs keyed by (file version, overview level, band, block column, block
 * row), built by the reader; this module only stores, bounds and counts.
 */
#ifndef TS_BLOCKCACHE_H
#define TS_BLOCKCACHE_H

#include "ts_common.h"

#include <stdbool.h>
#include <stddef.h>

/* max_bytes 0 disables the store. Not thread-safe; call once at start-up. */
int ts_blockcache_init(size_t max_bytes);
void ts_blockcache_shutdown(void);
bool ts_blockcache_enabled(void);
/* Blocks larger than this are not stored (a whole-image strip, say): they
 * would evict everything else for one reader. */
size_t ts_blockcache_max_block_bytes(void);

/* A new reference to the stored block, or NULL. */
ts_blob *ts_blockcache_get(const void *key, size_t klen);
/* Stores value (takes a reference of its own; the caller keeps theirs). */
void ts_blockcache_put(const void *key, size_t klen, ts_blob *value);

typedef struct ts_blockcache_stats {
    long long hits, misses, entries, bytes, max_bytes, evictions;
} ts_blockcache_stats;
void ts_blockcache_get_stats(ts_blockcache_stats *out);

#endif
