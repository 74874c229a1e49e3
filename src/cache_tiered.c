/*
 * Two-level backend: an in-process L1 (memory) in front of a shared L2
 * (Redis). Hot tiles are served without a network round trip while every
 * instance still shares one L2.
 *
 * An L1 entry filled from L2 lives at most L1_MAX_TTL_S: DELETE /cache on
 * one instance clears its own L1 and the shared L2 but cannot reach other
 * instances' L1, so their staleness is bounded by this cap. (Replaced source
 * files need no invalidation at all: size and mtime are part of the key.)
 */
#include "ts_cache.h"

#include <stdlib.h>
#include <string.h>

#define L1_MAX_TTL_S 60u

typedef struct tiered {
    ts_cache_backend base;
    ts_cache_backend *l1, *l2;
} tiered;

static unsigned l1_ttl(unsigned ttl_s)
{
    return (ttl_s == 0 || ttl_s > L1_MAX_TTL_S) ? L1_MAX_TTL_S : ttl_s;
}

static int t_get(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out)
{
    tiered *t = (tiered *)b;
    if (t->l1->get(t->l1, key, klen, out) == TS_CGET_HIT)
        return TS_CGET_HIT;
    int rc = t->l2->get(t->l2, key, klen, out);
    if (rc == TS_CGET_HIT)
        /* The remaining L2 TTL is unknown here; the cap bounds any overshoot. */
        (void)t->l1->set(t->l1, key, klen, *out, L1_MAX_TTL_S);
    return rc;
}

static int t_get_local(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out)
{
    tiered *t = (tiered *)b;
    return t->l1->get(t->l1, key, klen, out) == TS_CGET_HIT ? TS_CGET_HIT : TS_CGET_MISS;
}

/* An L2 answer on its way back: promoted into L1 like t_get's. */
typedef struct promote {
    tiered *t;
    ts_cache_get_cb cb;
    void *ud;
    size_t klen;
    char key[];
} promote;

static void promote_done(void *ud, int rc, ts_blob *blob)
{
    promote *p = ud;
    if (rc == TS_CGET_HIT)
        (void)p->t->l1->set(p->t->l1, p->key, p->klen, blob, L1_MAX_TTL_S);
    ts_cache_get_cb cb = p->cb;
    void *cb_ud = p->ud;
    free(p);
    cb(cb_ud, rc, blob);
}

/* Only L2's part: the cache front asks get_local (L1) first. */
static int t_get_async(ts_cache_backend *b, const char *key, size_t klen, ts_cache_get_cb cb,
                       void *ud)
{
    tiered *t = (tiered *)b;
    promote *p = malloc(sizeof *p + klen);
    if (!p)
        return -TS_ENOMEM;
    p->t = t;
    p->cb = cb;
    p->ud = ud;
    p->klen = klen;
    memcpy(p->key, key, klen);
    int rc = t->l2->get_async(t->l2, key, klen, promote_done, p);
    if (rc != 0)
        free(p);
    return rc;
}

static int t_set(ts_cache_backend *b, const char *key, size_t klen, ts_blob *value, unsigned ttl_s)
{
    tiered *t = (tiered *)b;
    int r1 = t->l1->set(t->l1, key, klen, value, l1_ttl(ttl_s));
    int r2 = t->l2->set(t->l2, key, klen, value, ttl_s);
    /* L2 is the shared truth: its failure is the one worth reporting. */
    return r2 < 0 ? r2 : r1;
}

static int t_del_prefix(ts_cache_backend *b, const char *prefix, size_t plen, long long *deleted)
{
    tiered *t = (tiered *)b;
    long long d1 = 0, d2 = 0;
    int r1 = t->l1->del_prefix(t->l1, prefix, plen, &d1);
    int r2 = t->l2->del_prefix(t->l2, prefix, plen, &d2);
    /* L1 holds a subset of L2, so L2's count is the number of entries gone;
     * L1's is the fallback when L2 could not answer. */
    if (deleted)
        *deleted = r2 == 0 ? d2 : d1;
    return r2 < 0 ? r2 : r1;
}

static void t_stats(ts_cache_backend *b, ts_cache_stats *out)
{
    tiered *t = (tiered *)b;
    ts_cache_stats s1 = {0}, s2 = {0};
    t->l1->stats(t->l1, &s1);
    t->l2->stats(t->l2, &s2);
    /* entries come from the shared level; bytes and evictions describe this
     * process's memory, which is what an operator sizes CACHE_L1_MB by. */
    out->entries = s2.entries;
    out->bytes = s1.bytes;
    out->evictions = s1.evictions;
    out->errors = s1.errors + s2.errors;
    out->async_gets = s2.async_gets;
    out->async_batches = s2.async_batches;
}

static int t_try_lock(ts_cache_backend *b, const char *key, size_t klen, unsigned lease_ms)
{
    tiered *t = (tiered *)b;
    return t->l2->try_lock(t->l2, key, klen, lease_ms);
}

static int t_rate_take(ts_cache_backend *b, const char *key, size_t klen, double rate,
                       double burst)
{
    tiered *t = (tiered *)b;
    return t->l2->rate_take(t->l2, key, klen, rate, burst);
}

static void t_unlock(ts_cache_backend *b, const char *key, size_t klen)
{
    tiered *t = (tiered *)b;
    t->l2->unlock(t->l2, key, klen);
}

static void t_destroy(ts_cache_backend *b)
{
    tiered *t = (tiered *)b;
    if (!t)
        return;
    t->l1->destroy(t->l1);
    t->l2->destroy(t->l2);
    free(t);
}

ts_cache_backend *ts_cache_tiered_create(ts_cache_backend *l1, ts_cache_backend *l2)
{
    if (!l1 || !l2)
        return NULL;
    tiered *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->base.name = "tiered";
    t->base.get = t_get;
    t->base.set = t_set;
    if (l2->get_async) {
        t->base.get_async = t_get_async;
        t->base.get_local = t_get_local;
    }
    t->base.del_prefix = t_del_prefix;
    t->base.stats = t_stats;
    if (l2->try_lock && l2->unlock) {
        t->base.try_lock = t_try_lock;
        t->base.unlock = t_unlock;
    }
    if (l2->rate_take) {
        t->base.rate_take = t_rate_take;
    }
    t->base.destroy = t_destroy;
    /* An L2 HIT's fresh blob is stored in L1 as it is, so the next HIT of
     * the key returns that same pointer from L1. */
    t->base.stable_blobs = l1->stable_blobs;
    t->base.budget_bytes = l1->budget_bytes;
    t->l1 = l1;
    t->l2 = l2;
    return &t->base;
}
