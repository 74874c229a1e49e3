/*
 * In-process cache backend: bounded by bytes and TTL, LRU-evicted, sharded.
 *
 * Worker threads hit the cache on every tile request, so one global mutex
 * would serialise them. Keys are spread over up to 16 shards by hash; each
 * shard has its own mutex, chained hash table and LRU list, so two requests
 * contend only when their keys land in the same shard. A shard owns an equal
 * slice of the budget: LRU order is per shard, which is the usual price of
 * sharding (memcached, Caffeine) and invisible at tile sizes.
 *
 * Values are refcounted blobs. A shard holds one reference per entry and
 * get() hands out another, so a value evicted or replaced while a response is
 * still streaming it stays alive until that response releases it.
 */
#include "ts_cache.h"

#include <xxhash.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A shard slice below this would refuse ordinary tiles (a large WebP or a
 * 512px PNG is a few hundred KiB), so small budgets use fewer shards. */
#define MIN_SHARD_BYTES (1u << 20)
#define MAX_SHARDS 16
#define INITIAL_BUCKETS 64
/* Expired entries popped from the LRU tail per set(): bounded so a set never
 * does unbounded work under the shard lock. */
#define EXPIRE_SCAN 8

typedef struct mentry {
    struct mentry *hnext;       /* hash chain; reused as the free list link */
    struct mentry *prev, *next; /* LRU list, head = most recently used */
    uint64_t hash;
    uint64_t expires_ns; /* 0 = never */
    ts_blob *value;      /* one reference owned by the entry */
    size_t cost;
    size_t klen;
    char key[];
} mentry;

/* The entry struct, the blob header and its trailing NUL, and allocator
 * headers: charged so that a flood of tiny values cannot exceed the budget
 * by an order of magnitude. */
#define ENTRY_OVERHEAD (sizeof(mentry) + sizeof(ts_blob) + 1 + 32)

typedef struct shard {
    pthread_mutex_t mu;
    mentry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    mentry *head, *tail;
    size_t bytes, max_bytes;
} __attribute__((aligned(64))) shard; /* no false sharing between shard locks */

typedef struct membackend {
    ts_cache_backend base;
    ts_clock_fn clock;
    void *clock_ud;
    unsigned nshards;
    long long evictions; /* __atomic */
    shard *shards;
} membackend;

static uint64_t default_clock(void *ud)
{
    (void)ud;
    return ts_now_ns();
}

static shard *shard_of(membackend *m, uint64_t h)
{
    /* Top bits pick the shard, low bits the bucket, so they are independent. */
    return &m->shards[(h >> 56) & (m->nshards - 1)];
}

static mentry **bucket_of(shard *s, uint64_t h)
{
    return &s->buckets[h & (s->nbuckets - 1)];
}

static mentry *find(shard *s, uint64_t h, const char *key, size_t klen)
{
    for (mentry *e = *bucket_of(s, h); e; e = e->hnext)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static void lru_unlink(shard *s, mentry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(shard *s, mentry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    s->head = e;
    if (!s->tail)
        s->tail = e;
}

/* Removes e from the table and the LRU list; the caller frees it after
 * unlocking (see free_list). */
static void remove_entry(shard *s, mentry *e)
{
    mentry **pp = bucket_of(s, e->hash);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(s, e);
    s->count--;
    s->bytes -= e->cost;
}

static void grow(shard *s)
{
    size_t n = s->nbuckets * 2;
    mentry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains are slower, not wrong */
    for (size_t i = 0; i < s->nbuckets; i++) {
        mentry *e = s->buckets[i];
        while (e) {
            mentry *next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

/* Entries are unlinked under the lock and released after it: dropping the
 * last reference of a large blob is a free() we keep out of the critical
 * section. */
static void free_list(mentry *e)
{
    while (e) {
        mentry *next = e->hnext;
        ts_blob_unref(e->value);
        free(e);
        e = next;
    }
}

static int mem_get(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out)
{
    membackend *m = (membackend *)b;
    uint64_t now = m->clock(m->clock_ud);
    uint64_t h = XXH3_64bits(key, klen);
    shard *s = shard_of(m, h);
    mentry *dead = NULL;
    int rc = TS_CGET_MISS;

    pthread_mutex_lock(&s->mu);
    mentry *e = find(s, h, key, klen);
    if (e && e->expires_ns && now >= e->expires_ns) {
        remove_entry(s, e);
        dead = e;
    } else if (e) {
        lru_unlink(s, e);
        lru_push_head(s, e);
        *out = ts_blob_ref(e->value);
        rc = TS_CGET_HIT;
    }
    pthread_mutex_unlock(&s->mu);
    free_list(dead);
    return rc;
}

static int mem_set(ts_cache_backend *b, const char *key, size_t klen, ts_blob *value,
                   unsigned ttl_s)
{
    membackend *m = (membackend *)b;
    if (!value)
        return -TS_EINTERNAL;
    uint64_t now = m->clock(m->clock_ud);
    uint64_t h = XXH3_64bits(key, klen);
    shard *s = shard_of(m, h);
    size_t cost = klen + value->size + ENTRY_OVERHEAD;
    mentry *e = NULL;

    /* A value larger than the shard cannot be kept; the old value under the
     * same key is still dropped below, since it is no longer current. */
    if (cost <= s->max_bytes) {
        e = malloc(sizeof *e + klen);
        if (!e)
            return -TS_ENOMEM;
        memset(e, 0, sizeof *e);
        e->hash = h;
        e->expires_ns = ttl_s ? now + (uint64_t)ttl_s * 1000000000ull : 0;
        e->value = ts_blob_ref(value);
        e->cost = cost;
        e->klen = klen;
        memcpy(e->key, key, klen);
    }

    mentry *dead = NULL;
    long long evicted = 0;
    pthread_mutex_lock(&s->mu);
    mentry *old = find(s, h, key, klen);
    if (old) {
        remove_entry(s, old);
        old->hnext = dead;
        dead = old;
    }
    if (e) {
        mentry **bp = bucket_of(s, h);
        e->hnext = *bp;
        *bp = e;
        lru_push_head(s, e);
        s->count++;
        s->bytes += cost;
        /* TTLs are mostly uniform, so the LRU tail is where expired entries
         * collect: reclaim them before evicting live ones. */
        for (int i = 0; i < EXPIRE_SCAN && s->tail && s->tail != e; i++) {
            mentry *t = s->tail;
            if (!t->expires_ns || now < t->expires_ns)
                break;
            remove_entry(s, t);
            t->hnext = dead;
            dead = t;
        }
        while (s->bytes > s->max_bytes && s->tail && s->tail != e) {
            mentry *t = s->tail;
            remove_entry(s, t);
            t->hnext = dead;
            dead = t;
            evicted++;
        }
        if (s->count > s->nbuckets)
            grow(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (evicted)
        __atomic_add_fetch(&m->evictions, evicted, __ATOMIC_RELAXED);
    free_list(dead);
    return 0;
}

static int mem_del_prefix(ts_cache_backend *b, const char *prefix, size_t plen, long long *deleted)
{
    membackend *m = (membackend *)b;
    long long n = 0;
    for (unsigned i = 0; i < m->nshards; i++) {
        shard *s = &m->shards[i];
        mentry *dead = NULL;
        pthread_mutex_lock(&s->mu);
        for (mentry *e = s->head; e;) {
            mentry *next = e->next;
            if (e->klen >= plen && memcmp(e->key, prefix, plen) == 0) {
                remove_entry(s, e);
                e->hnext = dead;
                dead = e;
                n++;
            }
            e = next;
        }
        pthread_mutex_unlock(&s->mu);
        free_list(dead);
    }
    if (deleted)
        *deleted = n;
    return 0;
}

static void mem_stats(ts_cache_backend *b, ts_cache_stats *out)
{
    membackend *m = (membackend *)b;
    long long entries = 0, bytes = 0;
    for (unsigned i = 0; i < m->nshards; i++) {
        shard *s = &m->shards[i];
        pthread_mutex_lock(&s->mu);
        entries += (long long)s->count;
        bytes += (long long)s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
    out->entries = entries;
    out->bytes = bytes;
    out->evictions = __atomic_load_n(&m->evictions, __ATOMIC_RELAXED);
    out->errors = 0;
}

static void mem_destroy(ts_cache_backend *b)
{
    membackend *m = (membackend *)b;
    if (!m)
        return;
    for (unsigned i = 0; i < m->nshards; i++) {
        shard *s = &m->shards[i];
        mentry *e = s->head;
        while (e) {
            mentry *next = e->next;
            ts_blob_unref(e->value);
            free(e);
            e = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(m->shards);
    free(m);
}

ts_cache_backend *ts_cache_memory_create(size_t max_bytes, ts_clock_fn clock, void *clock_ud)
{
    return ts_cache_memory_create_sharded(max_bytes, MAX_SHARDS, clock, clock_ud);
}

ts_cache_backend *ts_cache_memory_create_sharded(size_t max_bytes, unsigned max_shards,
                                                 ts_clock_fn clock, void *clock_ud)
{
    membackend *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.name = "memory";
    m->base.get = mem_get;
    m->base.set = mem_set;
    m->base.del_prefix = mem_del_prefix;
    m->base.stats = mem_stats;
    m->base.destroy = mem_destroy;
    /* get() hands out a reference to the entry's own blob. */
    m->base.stable_blobs = true;
    m->base.budget_bytes = max_bytes;
    m->clock = clock ? clock : default_clock;
    m->clock_ud = clock ? clock_ud : NULL;
    m->nshards = 1;
    if (max_shards > MAX_SHARDS)
        max_shards = MAX_SHARDS;
    while (m->nshards < max_shards && max_bytes / (m->nshards * 2) >= MIN_SHARD_BYTES)
        m->nshards *= 2;

    size_t sz = sizeof(shard) * m->nshards;
    m->shards = aligned_alloc(64, (sz + 63) & ~(size_t)63);
    if (!m->shards) {
        free(m);
        return NULL;
    }
    memset(m->shards, 0, sz);
    for (unsigned i = 0; i < m->nshards; i++) {
        shard *s = &m->shards[i];
        s->max_bytes = max_bytes / m->nshards;
        s->nbuckets = INITIAL_BUCKETS;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            /* Shards before i are fully initialised; tear those down. */
            m->nshards = i;
            mem_destroy(&m->base);
            return NULL;
        }
    }
    return &m->base;
}
