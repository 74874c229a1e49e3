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

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bumped whenever the serialisation changes, so old entries simply miss. */
#define KEY_VERSION "tskey1"

enum { TAG_DATASET = 1, TAG_SOURCE, TAG_ROUTE, TAG_PATH, TAG_QUERY, TAG_BASE_URL };

/*
 * The serialisation is hashed through a buffer: a key is a few hundred bytes,
 * and XXH3's one-shot over them costs a fraction of ~25 streaming updates of
 * 1-16 bytes each. Only an input larger than the buffer (a long colormap)
 * falls back to streaming. XXH3 gives the same hash for the same bytes
 * either way, so keys do not depend on which path was taken.
 */
typedef struct khash {
    size_t n;
    bool streaming;
    unsigned char buf[1024];
    XXH3_state_t st; /* used only once the buffer overflows */
} khash;

static void kh_spill(khash *h, const void *p, size_t n);

/* Inline so that the fixed-size writes (tags, lengths) become plain stores. */
static inline void kh_write(khash *h, const void *p, size_t n)
{
    if (__builtin_expect(n <= sizeof h->buf - h->n, 1)) {
        memcpy(h->buf + h->n, p, n);
        h->n += n;
        return;
    }
    kh_spill(h, p, n);
}

static void kh_spill(khash *h, const void *p, size_t n)
{
    if (!h->streaming) {
        XXH3_128bits_reset(&h->st);
        h->streaming = true;
    }
    XXH3_128bits_update(&h->st, h->buf, h->n);
    h->n = 0;
    if (n >= sizeof h->buf) {
        XXH3_128bits_update(&h->st, p, n);
        return;
    }
    memcpy(h->buf, p, n);
    h->n = n;
}

static XXH128_hash_t kh_digest(khash *h)
{
    if (!h->streaming)
        return XXH3_128bits(h->buf, h->n);
    XXH3_128bits_update(&h->st, h->buf, h->n);
    return XXH3_128bits_digest(&h->st);
}

static void put_u64(khash *st, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    kh_write(st, b, sizeof b);
}

static void put_tag(khash *st, unsigned char tag)
{
    kh_write(st, &tag, 1);
}

/* NULL and "" are distinct (a document without base_url is not one with an
 * empty base_url), hence the presence byte before the length. */
static void put_str(khash *st, const char *s)
{
    unsigned char present = s != NULL;
    kh_write(st, &present, 1);
    size_t n = s ? strlen(s) : 0;
    put_u64(st, n);
    if (n)
        kh_write(st, s, n);
}

static unsigned char lower(unsigned char c)
{
    /* ASCII only: the locale must not change keys between hosts. */
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static void put_lower(khash *st, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    unsigned char present = 1;
    kh_write(st, &present, 1);
    put_u64(st, n);
    unsigned char chunk[64];
    for (size_t off = 0; off < n;) {
        size_t k = n - off < sizeof chunk ? n - off : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = lower((unsigned char)s[off + i]);
        kh_write(st, chunk, k);
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
    size_t n = strlen(ns);
    memcpy(out->str, ns, n);
    out->str[n++] = ':';
    ts_hex64(out->str + n, dataset_hash(dataset));
    n += 16;
    out->str[n++] = ':';
    out->str[n] = '\0';
    out->len = n;
    out->dataset_prefix_len = n;
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

    khash st;
    st.n = 0;
    st.streaming = false;
    kh_write(&st, KEY_VERSION, sizeof KEY_VERSION - 1);
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
    XXH128_hash_t h = kh_digest(&st);
    if (idx != stack_idx)
        free(idx);

    /* format_prefix left room for the 32 digits and the NUL. */
    ts_hex64(out->str + out->len, h.high64);
    ts_hex64(out->str + out->len + 16, h.low64);
    out->len += 32;
    out->str[out->len] = '\0';
    return 0;
}
