/*
 * Cache keys: "<namespace>:<dataset hash, 16 hex>:<request hash, 32 hex>".
 *
 * The request hash is XXH3-128 over a canonical serialisation in which every
 * component is tagged and length-prefixed, so no choice of bytes inside one
 * component can imitate a boundary ("a=b&c" and "a=b%26c" decode to
 * different component lists and therefore different byte streams). Keys are
 * fixed-length so a backend never sees a key longer than the namespace allows
 * for, whatever the client sends.
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no malloc per key */
#include <xxhash.h>

#include "ts_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bumped whenever the serialisation changes, so old entries simply miss. */
#define KEY_VERSION "tskey1"

enum { TAG_DATASET = 1, TAG_SOURCE, TAG_ROUTE, TAG_PATH, TAG_QUERY, TAG_BASE_URL };

static void put_u64(XXH3_state_t *st, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    XXH3_128bits_update(st, b, sizeof b);
}

static void put_tag(XXH3_state_t *st, unsigned char tag)
{
    XXH3_128bits_update(st, &tag, 1);
}

/* NULL and "" are distinct (a document without base_url is not one with an
 * empty base_url), hence the presence byte before the length. */
static void put_str(XXH3_state_t *st, const char *s)
{
    unsigned char present = s != NULL;
    XXH3_128bits_update(st, &present, 1);
    size_t n = s ? strlen(s) : 0;
    put_u64(st, n);
    if (n)
        XXH3_128bits_update(st, s, n);
}

static unsigned char lower(unsigned char c)
{
    /* ASCII only: the locale must not change keys between hosts. */
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static void put_lower(XXH3_state_t *st, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    unsigned char present = 1;
    XXH3_128bits_update(st, &present, 1);
    put_u64(st, n);
    unsigned char chunk[64];
    for (size_t off = 0; off < n;) {
        size_t k = n - off < sizeof chunk ? n - off : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = lower((unsigned char)s[off + i]);
        XXH3_128bits_update(st, chunk, k);
        off += k;
    }
}

static int name_cmp(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    for (;; a++, b++) {
        unsigned char ca = lower((unsigned char)*a), cb = lower((unsigned char)*b);
        if (ca != cb || ca == 0)
            return (int)ca - (int)cb;
    }
}

static uint64_t dataset_hash(const char *dataset)
{
    /* Documents that do not depend on a dataset share one all-zero prefix. */
    return dataset ? XXH3_64bits(dataset, strlen(dataset)) : 0;
}

static int format_prefix(const char *ns, const char *dataset, ts_cache_key *out)
{
    ns = ns ? ns : "";
    /* Leave room for ":<16>:<32>" and the NUL. */
    if (strlen(ns) > sizeof out->str - 1 - (1 + 16 + 1 + 32))
        return -TS_EINTERNAL;
    int n = snprintf(out->str, sizeof out->str, "%s:%016llx:", ns,
                     (unsigned long long)dataset_hash(dataset));
    if (n < 0 || (size_t)n >= sizeof out->str)
        return -TS_EINTERNAL;
    out->len = (size_t)n;
    out->dataset_prefix_len = (size_t)n;
    return 0;
}

int ts_cache_key_dataset_prefix(const char *namespace_, const char *dataset, ts_cache_key *out)
{
    if (!out)
        return -TS_EINTERNAL;
    return format_prefix(namespace_, dataset, out);
}

int ts_cache_key_build(const ts_key_input *in, ts_cache_key *out)
{
    if (!in || !out || (in->npath && !in->path_params) || (in->nquery && !in->query))
        return -TS_EINTERNAL;
    int rc = format_prefix(in->namespace_, in->dataset, out);
    if (rc < 0)
        return rc;

    /* Stable insertion sort of indices by lower-cased name: distinct names
     * end up sorted while the values of one name keep their request order.
     * Query strings are capped at TS_MAX_QUERY, so this is at most 64^2/2
     * comparisons; longer inputs (only from tests or future callers) spill
     * to the heap. */
    size_t stack_idx[TS_MAX_QUERY];
    size_t *idx = stack_idx;
    if (in->nquery > TS_MAX_QUERY) {
        idx = malloc(in->nquery * sizeof *idx);
        if (!idx)
            return -TS_ENOMEM;
    }
    for (size_t i = 0; i < in->nquery; i++) {
        size_t j = i;
        while (j > 0 && name_cmp(in->query[idx[j - 1]].key, in->query[i].key) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }

    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, KEY_VERSION, sizeof KEY_VERSION - 1);
    put_tag(&st, TAG_DATASET);
    put_str(&st, in->dataset);
    put_tag(&st, TAG_SOURCE);
    put_u64(&st, (uint64_t)in->source_size);
    put_u64(&st, (uint64_t)in->source_mtime_ns);
    put_tag(&st, TAG_ROUTE);
    put_str(&st, in->route);
    put_tag(&st, TAG_PATH);
    put_u64(&st, in->npath);
    for (size_t i = 0; i < in->npath; i++) {
        put_str(&st, in->path_params[i].key);
        put_str(&st, in->path_params[i].value ? in->path_params[i].value : "");
    }
    put_tag(&st, TAG_QUERY);
    put_u64(&st, in->nquery);
    for (size_t i = 0; i < in->nquery; i++) {
        const ts_kv *kv = &in->query[idx[i]];
        put_lower(&st, kv->key);
        /* A bare "?name" and "?name=" mean the same to every parser. */
        put_str(&st, kv->value ? kv->value : "");
    }
    put_tag(&st, TAG_BASE_URL);
    put_str(&st, in->base_url);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    if (idx != stack_idx)
        free(idx);

    int n = snprintf(out->str + out->len, sizeof out->str - out->len, "%016llx%016llx",
                     (unsigned long long)h.high64, (unsigned long long)h.low64);
    if (n != 32)
        return -TS_EINTERNAL;
    out->len += 32;
    return 0;
}
