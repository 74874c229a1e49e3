/*
 * The cache layer: a front (ts_cache: keys, client Cache-Control, coalescing,
 * statistics, entry framing) over one backend (a struct of function pointers,
 * MapCache-style). Each backend file exports only its *_create().
 *
 * A lookup has three outcomes (MapCache's MISS vs FAILURE): HIT, MISS and
 * ERROR. An ERROR is logged (rate-limited) and served as a MISS, so a Redis
 * outage never becomes a failed request.
 */
#ifndef TS_CACHE_H
#define TS_CACHE_H

#include "ts_common.h"
#include "ts_request.h"

#include <stdbool.h>
#include <stdint.h>

enum { TS_CGET_HIT = 0, TS_CGET_MISS = 1, TS_CGET_ERROR = -1 };

/* Completion of an asynchronous get: rc as get's; on HIT the callee takes
 * the reference to blob (NULL otherwise). */
typedef void (*ts_cache_get_cb)(void *ud, int rc, ts_blob *blob);

typedef uint64_t (*ts_clock_fn)(void *ud); /* nanoseconds, monotonic */

typedef struct ts_cache_stats {
    const char *backend;
    long long entries, bytes;
    long long hits, misses, bypasses, errors, evictions, stores;
    long long coalesced; /* misses served by another request's render */
    /* Asynchronous gets (get_async) and the pipelined batches that carried
     * them: gets / batches is the mean pipeline depth. */
    long long async_gets, async_batches;
} ts_cache_stats;

typedef struct ts_cache_backend ts_cache_backend;
struct ts_cache_backend {
    const char *name;
    /* *out gets a new reference to the stored value on HIT. */
    int (*get)(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out);
    /* Optional (NULL when unsupported; only for backends whose get waits on
     * the network): queues a get and returns 0, after which cb is called
     * exactly once, from another thread and never from inside this call; or
     * returns <0 without queuing (the backend is down, or out of memory), and
     * the caller uses get. Lets the I/O threads keep serving while Redis
     * answers, and lets the backend pipeline many lookups in one round trip. */
    int (*get_async)(ts_cache_backend *b, const char *key, size_t klen, ts_cache_get_cb cb,
                     void *ud);
    /* Optional, with get_async: the part of get that does not touch the
     * network (the tiered backend's L1); same contract as get. */
    int (*get_local)(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out);
    /* ttl_s 0 = no expiry. Returns 0 or a negative code. */
    int (*set)(ts_cache_backend *b, const char *key, size_t klen, ts_blob *value,
               unsigned ttl_s);
    /* Delete every key starting with prefix; *deleted (may be NULL) gets the count. */
    int (*del_prefix)(ts_cache_backend *b, const char *prefix, size_t plen, long long *deleted);
    /* Fills entries/bytes/evictions/errors (and async_gets/async_batches) of
     * the backend; other fields untouched. */
    void (*stats)(ts_cache_backend *b, ts_cache_stats *out);
    /* Optional cross-instance render lock (NULL when unsupported): 1 = acquired,
     * 0 = held elsewhere, <0 = error (treat as acquired). */
    int (*try_lock)(ts_cache_backend *b, const char *key, size_t klen, unsigned lease_ms);
    void (*unlock)(ts_cache_backend *b, const char *key, size_t klen);
    /* Optional shared token bucket (NULL when unsupported): takes one token
     * from the bucket `key` (rate tokens/s, burst size). 1 = allowed,
     * 0 = refused, <0 = error (the caller falls back to a local bucket). */
    int (*rate_take)(ts_cache_backend *b, const char *key, size_t klen, double rate, double burst);
    void (*destroy)(ts_cache_backend *b);
    /* True when a HIT hands out the stored blob itself, so every HIT of a key
     * returns the same pointer until the entry is replaced, evicted or
     * expires (the memory backend), instead of a fresh copy per get (Redis).
     * Per-blob state kept by a caller (src/http.c's prebuilt responses) is
     * then reused rather than churned. budget_bytes is the in-process budget
     * of those blobs, which bounds how much such state may keep alive. */
    bool stable_blobs;
    size_t budget_bytes;
};

/* Backends. clock may be NULL (ts_now_ns). */
ts_cache_backend *ts_cache_memory_create(size_t max_bytes, ts_clock_fn clock, void *clock_ud);
/* At most max_shards shards (rounded down to a power of two): fewer, larger
 * shards keep LRU closer to global for few, large values. */
ts_cache_backend *ts_cache_memory_create_sharded(size_t max_bytes, unsigned max_shards,
                                                 ts_clock_fn clock, void *clock_ud);
/* endpoint: redis://[[user]:password@]host[:port][/db][?timeout=ms&connect_timeout=ms]
 * or unix:///path.sock[?db=N&password=...&timeout=ms]. A malformed endpoint
 * returns NULL with ctx set; an unreachable server does not (see docs/cache.md). */
ts_cache_backend *ts_cache_redis_create(const char *endpoint, ts_ctx *ctx);
/* Takes ownership of l1 and l2 on success (NULL leaves them with the caller). */
ts_cache_backend *ts_cache_tiered_create(ts_cache_backend *l1, ts_cache_backend *l2);

/* Fixed-length keys: "<namespace>:<dataset hash, 16 hex>:<request hash, 32 hex>".
 * The dataset part hashes only the dataset's resolved path, so one dataset's
 * entries can be deleted by prefix; the request part (XXH3-128) covers
 * everything that changes the bytes, including the source's size and mtime. */
typedef struct ts_cache_key {
    char str[TS_CACHE_KEY_MAX];
    size_t len;
    size_t dataset_prefix_len; /* str[0..dataset_prefix_len) is the per-dataset prefix */
} ts_cache_key;

typedef struct ts_key_input {
    const char *namespace_;
    const char *dataset;     /* resolved path, or NULL for dataset-independent docs */
    long long source_size;   /* identity of the source file (0 when no dataset) */
    long long source_mtime_ns;
    const char *route;       /* route name, e.g. "tile" */
    const ts_kv *path_params; /* normalised path values (tms, z, x, y, scale, format) */
    size_t npath;
    const ts_kv *query;      /* request query, in request order */
    size_t nquery;
    const char *base_url;    /* for documents that embed absolute URLs, else NULL */
} ts_key_input;

/* Canonical form: query names lower-cased, distinct names sorted, values of
 * a repeated name kept in request order. */
int ts_cache_key_build(const ts_key_input *in, ts_cache_key *out);
/* Prefix of all keys of one dataset (for DELETE /cache?url=). */
int ts_cache_key_dataset_prefix(const char *namespace_, const char *dataset, ts_cache_key *out);

/* Entry framing stored in backends (documented in docs/cache.md):
 * "TSC1" | u16 status | u8 ctype_len | ctype | u8 etag_len | etag | u32 body_len | body,
 * integers little-endian. */
typedef struct ts_cache_entry {
    int status;
    const char *content_type; size_t content_type_len;
    const char *etag; size_t etag_len;
    const unsigned char *body; size_t body_len;
} ts_cache_entry;
ts_blob *ts_cache_entry_encode(int status, const char *content_type, const char *etag,
                               const void *body, size_t body_len);
/* Validates the framing; pointers refer into blob. Returns 0 or -1. */
int ts_cache_entry_decode(const unsigned char *data, size_t len, ts_cache_entry *out);

typedef struct ts_cache ts_cache;

typedef struct ts_cache_opts {
    const char *namespace_;
    unsigned ttl_s;
    bool cross_instance_lock; /* use backend try_lock when available */
    unsigned lock_lease_ms;   /* cross-instance lock lease, 0 = 3000 */
} ts_cache_opts;

/* Takes ownership of backend (NULL = caching disabled: every request is a MISS),
 * also when it fails and returns NULL. opts may be NULL (namespace "tessera"). */
ts_cache *ts_cache_create(ts_cache_backend *backend, const ts_cache_opts *opts);
void ts_cache_destroy(ts_cache *c);
const char *ts_cache_namespace(const ts_cache *c);

/* Produces a complete response for `req`: fills resp with status, body and
 * headers. Returns 0, or a negative code with ctx set (the caller turns it
 * into a JSON error). Must never be called with a response it already filled. */
typedef int (*ts_render_fn)(void *ud, ts_response *resp, ts_ctx *ctx);

/* The whole cache path of one request:
 *  - request Cache-Control: no-cache skips the read (X-Cache: BYPASS),
 *    no-store skips the write;
 *  - HIT: resp takes a reference to the cached bytes (no copy), X-Cache: HIT;
 *  - MISS: concurrent callers with the same key wait for one render
 *    (coalescing); a complete 200 gets a strong ETag and is stored;
 *    X-Cache: MISS. Errors are never stored.
 * `store` false: render without storing (X-Cache: BYPASS). */
int ts_cache_serve(ts_cache *c, const ts_cache_key *key, const ts_request *req, bool store,
                   ts_render_fn render, void *ud, ts_response *resp, ts_ctx *ctx);

/* Starts the asynchronous lookup a deferred response asked for
 * (ts_response.lookup): 0 = queued, cb follows from another thread; <0 =
 * not queued (no asynchronous backend, or it is down): handle the request
 * again without a prefetch. */
int ts_cache_lookup_async(ts_cache *c, const char *key, size_t klen, ts_cache_get_cb cb, void *ud);

/* Fills resp from a prefetched HIT (status, content type, ETag, body; counts
 * the hit, X-Cache outcome HIT). Returns -1, resp untouched, when pf is no
 * HIT or not a usable entry (the caller then handles the request anew). */
int ts_cache_take_prefetch(ts_cache *c, const ts_prefetch *pf, ts_response *resp);

/* 0 when HITs return a fresh blob per request (or caching is off); else the
 * in-process budget of the backend whose HITs hand out the stored blob
 * itself (ts_cache_backend.stable_blobs). */
size_t ts_cache_stable_bytes(const ts_cache *c);

int ts_cache_delete_prefix(ts_cache *c, const char *prefix, size_t plen, long long *deleted);
/* entries/bytes/evictions come from the backend; errors counts cache
 * failures on the request path (each served as a MISS). */
void ts_cache_get_stats(ts_cache *c, ts_cache_stats *out);
/* A token from the shared rate-limit bucket of `client` under the namespace:
 * 1 allowed, 0 refused, -1 when the backend has no shared buckets or failed. */
int ts_cache_rate_take(ts_cache *c, const char *client, double rate, double burst);

/* Strong ETag of a body: "\"<32 hex of XXH3-128>\"". buf must hold 40 bytes. */
void ts_etag_of(const void *body, size_t len, char *buf);

#endif
