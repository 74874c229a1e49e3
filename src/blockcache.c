/* Shared decoded-block store (see ts_blockcache.h): the memory cache backend
 * with few shards, since values are large (hundreds of KiB) and a sharded
 * LRU with a small slice per shard evicts early when blocks hash unevenly. */
#include "ts_blockcache.h"

#include "ts_cache.h"

#define BLOCK_SHARDS 4

static ts_cache_backend *store;
static size_t budget;
static long long hits, misses; /* __atomic */

int ts_blockcache_init(size_t max_bytes)
{
    ts_blockcache_shutdown();
    if (max_bytes == 0)
        return 0;
    store = ts_cache_memory_create_sharded(max_bytes, BLOCK_SHARDS, NULL, NULL);
    if (!store)
        return -TS_ENOMEM;
    budget = max_bytes;
    return 0;
}

void ts_blockcache_shutdown(void)
{
    if (store)
        store->destroy(store);
    store = NULL;
    budget = 0;
}

bool ts_blockcache_enabled(void)
{
    return store != NULL;
}

size_t ts_blockcache_max_block_bytes(void)
{
    return budget / BLOCK_SHARDS / 8;
}

ts_blob *ts_blockcache_get(const void *key, size_t klen)
{
    ts_blob *b = NULL;
    if (store && store->get(store, key, klen, &b) == TS_CGET_HIT) {
        __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
        return b;
    }
    __atomic_add_fetch(&misses, 1, __ATOMIC_RELAXED);
    return NULL;
}

void ts_blockcache_put(const void *key, size_t klen, ts_blob *value)
{
    if (store)
        store->set(store, key, klen, value, 0);
}

void ts_blockcache_get_stats(ts_blockcache_stats *out)
{
    *out = (ts_blockcache_stats){0};
    out->hits = __atomic_load_n(&hits, __ATOMIC_RELAXED);
    out->misses = __atomic_load_n(&misses, __ATOMIC_RELAXED);
    out->max_bytes = (long long)budget;
    if (store) {
        ts_cache_stats cs = {0};
        store->stats(store, &cs);
        out->entries = cs.entries;
        out->bytes = cs.bytes;
        out->evictions = cs.evictions;
    }
}
