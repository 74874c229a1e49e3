/*
 * The cache front: client Cache-Control, lookups, request coalescing,
 * storing complete 200 responses, ETags and counters. Backends only move
 * bytes (see ts_cache.h); everything HTTP-shaped lives here.
 *
 * Coalescing (MapCache's metatile lock, aiocache's cached_stampede): the
 * first request that misses a key registers a "flight" in an in-process
 * table and renders; identical requests arriving meanwhile wait on the
 * flight's condition variable and take the leader's encoded entry, so N
 * concurrent misses cost one render. A flight leaves the table the moment its
 * result is published: later requests find the entry in the backend instead.
 */
#include "ts_cache.h"

#include <xxhash.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FLIGHT_BUCKETS 256
/* A waiter gives up on a leader after this long and renders itself: renders
 * have their own timeouts, this only stops a stuck render from pinning every
 * identical request forever. */
#define COALESCE_WAIT_MAX_NS (30ull * 1000000000ull)
/* Cross-instance lease: long enough for a slow render, short enough that a
 * crashed instance's lock does not stall a tile for long. */
#define DEFAULT_LEASE_MS 3000u
#define POLL_FIRST_MS 10u
#define POLL_MAX_MS 200u
#define LOG_INTERVAL_NS (10ull * 1000000000ull)

typedef struct flight {
    struct flight *next;
    uint64_t hash;
    int refs;       /* leader + waiters; guarded by ts_cache.mu */
    bool done;      /* guarded by ts_cache.mu */
    ts_blob *entry; /* the leader's encoded 200, NULL when it produced none */
    pthread_cond_t cv;
    size_t klen;
    char key[];
} flight;

struct ts_cache {
    ts_cache_backend *backend; /* owned, NULL = caching disabled */
    char *namespace_;
    unsigned ttl_s;
    bool cross_lock;
    unsigned lease_ms;
    pthread_mutex_t mu; /* guards the flight table */
    flight *flights[FLIGHT_BUCKETS];
    /* Counters: __atomic, relaxed; they are statistics, not synchronisation. */
    long long hits, misses, bypasses, errors, stores, coalesced;
    uint64_t last_log_ns;
};

static void count(long long *c)
{
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* At most one log line per interval per cache, whichever thread wins. */
static int log_due(ts_cache *c)
{
    uint64_t now = ts_now_ns();
    uint64_t last = __atomic_load_n(&c->last_log_ns, __ATOMIC_RELAXED);
    if (last && now - last < LOG_INTERVAL_NS)
        return 0;
    return __atomic_compare_exchange_n(&c->last_log_ns, &last, now, false, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
}

void ts_etag_of(const void *body, size_t len, char *buf)
{
    XXH128_hash_t h = XXH3_128bits(len ? body : NULL, len);
    buf[0] = '"';
    ts_hex64(buf + 1, h.high64);
    ts_hex64(buf + 17, h.low64);
    buf[33] = '"';
    buf[34] = '\0';
}

ts_cache *ts_cache_create(ts_cache_backend *backend, const ts_cache_opts *opts)
{
    ts_cache *c = calloc(1, sizeof *c);
    const char *ns = opts && opts->namespace_ ? opts->namespace_ : "tessera";
    if (!c || !(c->namespace_ = strdup(ns)) || pthread_mutex_init(&c->mu, NULL) != 0) {
        if (c)
            free(c->namespace_);
        free(c);
        if (backend)
            backend->destroy(backend);
        return NULL;
    }
    c->backend = backend;
    c->ttl_s = opts ? opts->ttl_s : 0;
    c->cross_lock = opts && opts->cross_instance_lock;
    c->lease_ms = opts && opts->lock_lease_ms ? opts->lock_lease_ms : DEFAULT_LEASE_MS;
    return c;
}

void ts_cache_destroy(ts_cache *c)
{
    if (!c)
        return;
    if (c->backend)
        c->backend->destroy(c->backend);
    pthread_mutex_destroy(&c->mu);
    free(c->namespace_);
    free(c);
}

const char *ts_cache_namespace(const ts_cache *c)
{
    return c ? c->namespace_ : "";
}

/* Request directives. Pragma: no-cache counts only without Cache-Control
 * (RFC 9111 5.4: Cache-Control wins when both are present). */
static void parse_directives(const ts_request *req, bool *no_cache, bool *no_store)
{
    *no_cache = *no_store = false;
    if (!req)
        return;
    const char *cc = ts_req_header(req, "Cache-Control");
    if (!cc) {
        const char *pragma = ts_req_header(req, "Pragma");
        if (pragma && strcasestr(pragma, "no-cache"))
            *no_cache = true;
        return;
    }
    const char *p = cc;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 8 && strncasecmp(start, "no-cache", 8) == 0)
            *no_cache = true;
        else if (n == 8 && strncasecmp(start, "no-store", 8) == 0)
            *no_store = true;
        /* Skip an argument, quoted or not, up to the next directive. */
        bool quoted = false;
        while (*p && (quoted || *p != ',')) {
            if (*p == '"')
                quoted = !quoted;
            p++;
        }
    }
}

/* Points resp at the body inside an encoded entry, without a copy. With
 * `take`, resp takes over the caller's reference on success (saving an
 * atomic increment and decrement on a HIT); otherwise it takes a new one.
 * Returns -1 when the bytes are not a usable entry (the caller keeps its
 * reference either way on failure). */
static int fill_from_entry_ref(ts_response *resp, ts_blob *blob, bool take)
{
    ts_cache_entry e;
    /* Only complete 200s are ever stored; anything else under our key was
     * written by someone else and is not served. */
    if (ts_cache_entry_decode(blob->data, blob->size, &e) != 0 || e.status != 200 ||
        e.content_type_len >= sizeof resp->content_type)
        return -1;
    ts_blob_unref(resp->body);
    resp->status = e.status;
    memcpy(resp->content_type, e.content_type, e.content_type_len);
    resp->content_type[e.content_type_len] = '\0';
    resp->body = take ? blob : ts_blob_ref(blob);
    resp->body_off = (size_t)(e.body - blob->data);
    resp->body_len = e.body_len;
    if (e.etag_len) {
        ts_resp_set_header_n(resp, "ETag", e.etag, e.etag_len);
    } else {
        char etag[40];
        ts_etag_of(e.body, e.body_len, etag);
        ts_resp_set_header_str(resp, "ETag", etag);
    }
    return 0;
}

static int fill_from_entry(ts_response *resp, ts_blob *blob)
{
    return fill_from_entry_ref(resp, blob, false);
}

/* Backend get with the ERROR-is-a-MISS rule and corrupt-entry handling.
 * Returns TS_CGET_HIT with resp filled, else TS_CGET_MISS. */
static int lookup(ts_cache *c, const ts_cache_key *key, ts_response *resp)
{
    ts_blob *blob = NULL;
    int rc = c->backend->get(c->backend, key->str, key->len, &blob);
    if (rc == TS_CGET_ERROR) {
        /* The backend logs its own failures (rate-limited). */
        count(&c->errors);
        return TS_CGET_MISS;
    }
    if (rc != TS_CGET_HIT)
        return TS_CGET_MISS;
    if (fill_from_entry_ref(resp, blob, true) != 0) {
        /* Not our framing: a foreign writer in a shared Redis, or a value
         * from an incompatible version. Re-rendering overwrites it. */
        count(&c->errors);
        if (log_due(c))
            ts_log(TS_LOG_WARN, "cache: undecodable entry under key %s (%zu bytes), re-rendering",
                   key->str, blob->size);
        ts_blob_unref(blob);
        return TS_CGET_MISS;
    }
    return TS_CGET_HIT; /* resp owns the backend's reference now */
}

/* lookup()'s rules applied to the answer of an asynchronous get. */
static int prefetched(ts_cache *c, const ts_cache_key *key, const ts_prefetch *pf,
                      ts_response *resp)
{
    if (pf->rc == TS_CGET_ERROR) {
        count(&c->errors);
        return TS_CGET_MISS;
    }
    if (pf->rc != TS_CGET_HIT || !pf->blob)
        return TS_CGET_MISS;
    if (fill_from_entry_ref(resp, pf->blob, false) != 0) {
        count(&c->errors);
        if (log_due(c))
            ts_log(TS_LOG_WARN, "cache: undecodable entry under key %s (%zu bytes), re-rendering",
                   key->str, pf->blob->size);
        return TS_CGET_MISS;
    }
    return TS_CGET_HIT;
}

int ts_cache_take_prefetch(ts_cache *c, const ts_prefetch *pf, ts_response *resp)
{
    if (!c || !pf || pf->rc != TS_CGET_HIT || !pf->blob)
        return -1;
    /* fill_from_entry_ref validates before it writes anything. */
    if (fill_from_entry_ref(resp, pf->blob, false) != 0)
        return -1;
    count(&c->hits);
    resp->cache = TS_CACHE_OUT_HIT;
    return 0;
}

int ts_cache_lookup_async(ts_cache *c, const char *key, size_t klen, ts_cache_get_cb cb, void *ud)
{
    if (!c || !c->backend || !c->backend->get_async)
        return -1;
    return c->backend->get_async(c->backend, key, klen, cb, ud) == 0 ? 0 : -1;
}

/* Renders; on a complete 200 sets the strong ETag and, when wanted, encodes
 * the entry (for the backend and/or waiting requests). Returns render's
 * code; *entry_out gets the encoded entry or NULL. */
static int render_once(ts_cache *c, const ts_cache_key *key, bool do_store, bool want_entry,
                       ts_render_fn render, void *ud, ts_response *resp, ts_ctx *ctx,
                       ts_blob **entry_out)
{
    *entry_out = NULL;
    int rc = render(ud, resp, ctx);
    if (rc < 0 || ts_ctx_failed(ctx) || resp->status != 200)
        return rc;
    if (resp->body && resp->body_off + resp->body_len > resp->body->size)
        return rc; /* a malformed slice: serve it as the renderer made it, never store it */
    const unsigned char *body = resp->body ? resp->body->data + resp->body_off : NULL;
    size_t len = resp->body ? resp->body_len : 0;
    char etag[40];
    ts_etag_of(body, len, etag);
    ts_resp_set_header_str(resp, "ETag", etag);
    if (!do_store && !want_entry)
        return rc;
    ts_blob *entry = ts_cache_entry_encode(200, resp->content_type, etag, body, len);
    if (!entry)
        return rc; /* content type too long or out of memory: serve unstored */
    if (do_store && c->backend && key) {
        if (c->backend->set(c->backend, key->str, key->len, entry, c->ttl_s) == 0)
            count(&c->stores);
        else
            count(&c->errors);
    }
    if (want_entry)
        *entry_out = entry;
    else
        ts_blob_unref(entry);
    return rc;
}

static uint64_t key_hash(const ts_cache_key *key)
{
    return XXH3_64bits(key->str, key->len);
}

static void flight_free(flight *f)
{
    pthread_cond_destroy(&f->cv);
    ts_blob_unref(f->entry);
    free(f);
}

/* Caller holds c->mu. */
static flight *flight_find(ts_cache *c, uint64_t h, const ts_cache_key *key)
{
    for (flight *f = c->flights[h % FLIGHT_BUCKETS]; f; f = f->next)
        if (f->hash == h && f->klen == key->len && memcmp(f->key, key->str, key->len) == 0)
            return f;
    return NULL;
}

/* Caller holds c->mu. */
static flight *flight_new(ts_cache *c, uint64_t h, const ts_cache_key *key)
{
    flight *f = calloc(1, sizeof *f + key->len);
    if (!f)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Waits are bounded by a monotonic deadline: wall-clock jumps must not
     * make waiters give up early or hang. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&f->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        free(f);
        return NULL;
    }
    f->hash = h;
    f->refs = 1;
    f->klen = key->len;
    memcpy(f->key, key->str, key->len);
    f->next = c->flights[h % FLIGHT_BUCKETS];
    c->flights[h % FLIGHT_BUCKETS] = f;
    return f;
}

/* Publishes the leader's result (takes ownership of entry), wakes the
 * waiters and drops the leader's reference. */
static void flight_finish(ts_cache *c, flight *f, ts_blob *entry)
{
    pthread_mutex_lock(&c->mu);
    flight **pp = &c->flights[f->hash % FLIGHT_BUCKETS];
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    f->entry = entry;
    f->done = true;
    pthread_cond_broadcast(&f->cv);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        flight_free(f);
}

/* Waits for f (the caller took a reference under c->mu, which it still
 * holds) and returns a new reference to the leader's entry, or NULL. Drops
 * the caller's reference and c->mu. */
static ts_blob *flight_wait(ts_cache *c, flight *f)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t ns = (uint64_t)deadline.tv_nsec + COALESCE_WAIT_MAX_NS;
    deadline.tv_sec += (time_t)(ns / 1000000000ull);
    deadline.tv_nsec = (long)(ns % 1000000000ull);
    int rc = 0;
    while (!f->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&f->cv, &c->mu, &deadline);
    ts_blob *entry = f->done ? ts_blob_ref(f->entry) : NULL;
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        flight_free(f);
    return entry;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Another instance holds the render lock: give it up to the lease to store
 * the entry. Returns a new reference to the entry if it appeared. */
static ts_blob *poll_other_instance(ts_cache *c, const ts_cache_key *key, ts_response *resp)
{
    uint64_t deadline = ts_now_ns() + (uint64_t)c->lease_ms * 1000000ull;
    unsigned delay = POLL_FIRST_MS;
    while (ts_now_ns() < deadline) {
        sleep_ms(delay);
        delay = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
        ts_blob *blob = NULL;
        int rc = c->backend->get(c->backend, key->str, key->len, &blob);
        if (rc == TS_CGET_ERROR) {
            count(&c->errors);
            return NULL;
        }
        if (rc == TS_CGET_HIT) {
            if (fill_from_entry(resp, blob) == 0)
                return blob;
            ts_blob_unref(blob);
            return NULL;
        }
    }
    return NULL;
}

/* The leader's side of a miss: the optional cross-instance lock, then one
 * render. Returns render's code; *entry gets what waiters should take. */
static int lead(ts_cache *c, const ts_cache_key *key, bool do_store, ts_render_fn render, void *ud,
                ts_response *resp, ts_ctx *ctx, ts_blob **entry)
{
    ts_cache_backend *b = c->backend;
    int locked = -1;
    if (c->cross_lock && b->try_lock && b->unlock) {
        locked = b->try_lock(b, key->str, key->len, c->lease_ms);
        if (locked == 0) {
            *entry = poll_other_instance(c, key, resp);
            if (*entry)
                return 0;
            /* The other instance is slow or gone: render anyway, since a
             * duplicate render is cheaper than a failed tile. */
        }
    }
    int rc = render_once(c, key, do_store, true, render, ud, resp, ctx, entry);
    if (locked == 1)
        b->unlock(b, key->str, key->len);
    return rc;
}

int ts_cache_serve(ts_cache *c, const ts_cache_key *key, const ts_request *req, bool store,
                   ts_render_fn render, void *ud, ts_response *resp, ts_ctx *ctx)
{
    ts_blob *entry = NULL;
    /* Whatever renders or waits for a render goes to the render pool (see
     * ts_request.may_defer); only a HIT is served on the I/O thread. */
    bool defer = req && req->may_defer;
    if (defer && (!c || !c->backend || !key || !store)) {
        resp->deferred = true;
        return 0;
    }
    if (!c || !c->backend || !key) {
        /* Caching disabled: every request renders. */
        if (c)
            count(&c->misses);
        resp->cache = TS_CACHE_OUT_MISS;
        return render_once(c, NULL, false, false, render, ud, resp, ctx, &entry);
    }
    if (!store) {
        count(&c->bypasses);
        resp->cache = TS_CACHE_OUT_BYPASS;
        return render_once(c, key, false, false, render, ud, resp, ctx, &entry);
    }

    bool no_cache, no_store;
    parse_directives(req, &no_cache, &no_store);
    if (no_cache && defer) {
        resp->deferred = true;
        return 0;
    }
    if (no_cache) {
        /* A forced refresh: skip the read (and coalescing, which could hand
         * back a render that started before this request), store the fresh
         * result unless no-store says otherwise. */
        count(&c->bypasses);
        resp->cache = TS_CACHE_OUT_BYPASS;
        return render_once(c, key, !no_store, false, render, ud, resp, ctx, &entry);
    }

    /* A networked backend is asked asynchronously (see get_async), unless
     * this pass already carries its answer. A prefetch for another key (the
     * source file changed in between) is ignored, and then the backend is
     * asked here: a second asynchronous round could chase a file that keeps
     * changing forever. */
    const ts_prefetch *pf = req ? req->prefetch : NULL;
    bool pf_ok = pf && pf->klen == key->len && memcmp(pf->key, key->str, key->len) == 0;
    int got;
    if (pf_ok) {
        got = prefetched(c, key, pf, resp);
    } else if (defer && !pf && c->backend->get_async) {
        ts_blob *blob = NULL;
        got = c->backend->get_local ? c->backend->get_local(c->backend, key->str, key->len, &blob)
                                    : TS_CGET_MISS;
        if (got == TS_CGET_HIT && fill_from_entry_ref(resp, blob, true) != 0) {
            ts_blob_unref(blob);
            got = TS_CGET_MISS;
        }
        if (got != TS_CGET_HIT) {
            resp->deferred = true;
            resp->lookup = true;
            memcpy(resp->lookup_key, key->str, key->len);
            resp->lookup_klen = key->len;
            return 0;
        }
    } else {
        got = lookup(c, key, resp);
    }
    if (got == TS_CGET_HIT) {
        count(&c->hits);
        resp->cache = TS_CACHE_OUT_HIT;
        return 0;
    }
    if (defer) {
        resp->deferred = true;
        return 0;
    }
    count(&c->misses);
    resp->cache = TS_CACHE_OUT_MISS;

    uint64_t h = key_hash(key);
    pthread_mutex_lock(&c->mu);
    flight *f = flight_find(c, h, key);
    if (f) {
        f->refs++;
        entry = flight_wait(c, f); /* unlocks */
        if (entry) {
            int ok = fill_from_entry(resp, entry);
            ts_blob_unref(entry);
            if (ok == 0) {
                count(&c->coalesced);
                return 0;
            }
        }
        /* The leader produced no 200 (an error is not shared: it may be
         * transient) or timed out: render on our own. */
        return render_once(c, key, !no_store, false, render, ud, resp, ctx, &entry);
    }
    f = flight_new(c, h, key);
    pthread_mutex_unlock(&c->mu);
    if (!f) /* out of memory: still serve, just uncoalesced */
        return render_once(c, key, !no_store, false, render, ud, resp, ctx, &entry);

    int rc = lead(c, key, !no_store, render, ud, resp, ctx, &entry);
    flight_finish(c, f, entry);
    return rc;
}

size_t ts_cache_stable_bytes(const ts_cache *c)
{
    return c && c->backend && c->backend->stable_blobs ? c->backend->budget_bytes : 0;
}

int ts_cache_delete_prefix(ts_cache *c, const char *prefix, size_t plen, long long *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!c || !c->backend)
        return 0;
    return c->backend->del_prefix(c->backend, prefix, plen, deleted);
}

int ts_cache_rate_take(ts_cache *c, const char *client, double rate, double burst)
{
    if (!c || !c->backend || !c->backend->rate_take)
        return -1;
    char key[256];
    int n = snprintf(key, sizeof key, "%s:rl:%s", c->namespace_, client);
    if (n < 0 || (size_t)n >= sizeof key)
        return -1;
    int rc = c->backend->rate_take(c->backend, key, (size_t)n, rate, burst);
    return rc < 0 ? -1 : rc;
}

void ts_cache_get_stats(ts_cache *c, ts_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->backend = "none";
    if (!c)
        return;
    if (c->backend) {
        out->backend = c->backend->name;
        c->backend->stats(c->backend, out);
    }
    out->hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
    out->misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
    out->bypasses = __atomic_load_n(&c->bypasses, __ATOMIC_RELAXED);
    out->stores = __atomic_load_n(&c->stores, __ATOMIC_RELAXED);
    out->coalesced = __atomic_load_n(&c->coalesced, __ATOMIC_RELAXED);
    /* The request path's view (each failure served as a MISS). The backend's
     * own count would count the same failed gets a second time. */
    out->errors = __atomic_load_n(&c->errors, __ATOMIC_RELAXED);
}
