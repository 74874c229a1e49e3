/* Cache layer: entry framing, keys, memory and tiered backends, the front
 * (Cache-Control, HIT/MISS/BYPASS, coalescing). No test sleeps to wait for a
 * TTL: the memory backend takes an injected clock. */
#include "ts_cache.h"
#include "ts_common.h"
#include "ts_request.h"
#include "ts_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

typedef struct fake_clock {
    uint64_t now;
} fake_clock;

static uint64_t fake_now(void *ud)
{
    return ((fake_clock *)ud)->now;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ts_blob *blob_str(const char *s)
{
    return ts_blob_from(s, strlen(s));
}

static int blob_is(const ts_blob *b, const char *s)
{
    return b && b->size == strlen(s) && memcmp(b->data, s, b->size) == 0;
}

static int mget_is(ts_cache_backend *b, const char *key, const char *want)
{
    ts_blob *v = NULL;
    int rc = b->get(b, key, strlen(key), &v);
    int ok = want ? (rc == TS_CGET_HIT && blob_is(v, want)) : rc == TS_CGET_MISS;
    ts_blob_unref(v);
    return ok;
}

static int mset(ts_cache_backend *b, const char *key, const char *val, unsigned ttl)
{
    ts_blob *v = blob_str(val);
    int rc = b->set(b, key, strlen(key), v, ttl);
    ts_blob_unref(v);
    return rc;
}

static int mset_size(ts_cache_backend *b, const char *key, size_t size, unsigned ttl)
{
    ts_blob *v = ts_blob_new(size);
    memset(v->data, 'v', size);
    int rc = b->set(b, key, strlen(key), v, ttl);
    ts_blob_unref(v);
    return rc;
}

static int has(ts_cache_backend *b, const char *key)
{
    ts_blob *v = NULL;
    int rc = b->get(b, key, strlen(key), &v);
    ts_blob_unref(v);
    return rc == TS_CGET_HIT;
}

/* ---- entry framing ---- */

static void entry_round_trip(void)
{
    static const unsigned char body[] = {'P', 0, 'N', 'G', 0, 0, 255};
    ts_blob *b = ts_cache_entry_encode(200, "image/png", "\"abc\"", body, sizeof body);
    CHECK(b != NULL);
    CHECK_INT(b->size, 4 + 2 + 1 + 9 + 1 + 5 + 4 + sizeof body);
    CHECK(memcmp(b->data, "TSC1", 4) == 0);
    CHECK_INT(b->data[4], 200); /* little-endian status */
    CHECK_INT(b->data[5], 0);
    ts_cache_entry e;
    CHECK_INT(ts_cache_entry_decode(b->data, b->size, &e), 0);
    CHECK_INT(e.status, 200);
    CHECK_INT(e.content_type_len, 9);
    CHECK(memcmp(e.content_type, "image/png", 9) == 0);
    CHECK_INT(e.etag_len, 5);
    CHECK(memcmp(e.etag, "\"abc\"", 5) == 0);
    CHECK_INT(e.body_len, sizeof body);
    CHECK(memcmp(e.body, body, sizeof body) == 0);
    CHECK(e.body >= b->data && e.body + e.body_len == b->data + b->size);
    ts_blob_unref(b);

    /* Empty body, empty strings. */
    b = ts_cache_entry_encode(204, "", NULL, NULL, 0);
    CHECK(b != NULL);
    CHECK_INT(ts_cache_entry_decode(b->data, b->size, &e), 0);
    CHECK_INT(e.status, 204);
    CHECK_INT(e.content_type_len + e.etag_len + e.body_len, 0);
    ts_blob_unref(b);

    /* What cannot be framed is refused rather than truncated. */
    char longct[300];
    memset(longct, 'a', sizeof longct - 1);
    longct[sizeof longct - 1] = '\0';
    CHECK(ts_cache_entry_encode(200, longct, NULL, "x", 1) == NULL);
    CHECK(ts_cache_entry_encode(200, "text/plain\r\nX-Evil: 1", NULL, "x", 1) == NULL);
    CHECK(ts_cache_entry_encode(99, "a", NULL, "x", 1) == NULL);
}

/* Decodes a heap copy of exactly len bytes, so ASan flags any overread. */
static int decode_copy(const unsigned char *data, size_t len)
{
    unsigned char *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    ts_cache_entry e;
    int rc = ts_cache_entry_decode(copy, len, &e);
    if (rc == 0) {
        /* Every pointer must lie inside the input. */
        const char *end = (const char *)copy + len;
        if ((const char *)e.body + e.body_len > end || e.content_type + e.content_type_len > end ||
            e.etag + e.etag_len > end)
            rc = 99;
    }
    free(copy);
    return rc;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void entry_rejects_bad_input(void)
{
    ts_blob *b = ts_cache_entry_encode(200, "image/webp", "\"e\"", "hello", 5);
    CHECK(b != NULL);
    CHECK_INT(decode_copy(b->data, b->size), 0);
    /* Every truncation fails. */
    for (size_t n = 0; n < b->size; n++)
        CHECK_INT(decode_copy(b->data, n), -1);
    /* Trailing garbage fails. */
    unsigned char *longer = malloc(b->size + 1);
    memcpy(longer, b->data, b->size);
    longer[b->size] = 'x';
    CHECK_INT(decode_copy(longer, b->size + 1), -1);
    free(longer);
    /* Wrong magic, status out of range, CR in the content type. */
    unsigned char *m = malloc(b->size);
    memcpy(m, b->data, b->size);
    m[3] = '2';
    CHECK_INT(decode_copy(m, b->size), -1);
    memcpy(m, b->data, b->size);
    m[4] = 0xff;
    m[5] = 0xff;
    CHECK_INT(decode_copy(m, b->size), -1);
    memcpy(m, b->data, b->size);
    m[7] = '\r';
    CHECK_INT(decode_copy(m, b->size), -1);
    /* A body length larger than what is there. */
    memcpy(m, b->data, b->size);
    m[b->size - 5 - 4 + 3] = 0x7f;
    CHECK_INT(decode_copy(m, b->size), -1);
    CHECK_INT(ts_cache_entry_decode(NULL, 0, &(ts_cache_entry){0}), -1);

    /* Mutation fuzz: flip bytes of a valid entry; random buffers with the
     * magic. Decoding may succeed or fail but must stay in bounds. */
    for (int i = 0; i < 20000; i++) {
        memcpy(m, b->data, b->size);
        int flips = 1 + (int)(rng() % 3);
        for (int f = 0; f < flips; f++)
            m[rng() % b->size] = (unsigned char)rng();
        size_t len = rng() % (b->size + 1);
        CHECK(decode_copy(m, len) != 99);
    }
    unsigned char buf[64];
    for (int i = 0; i < 20000; i++) {
        size_t len = rng() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)rng();
        if (len >= 4)
            memcpy(buf, "TSC1", 4);
        CHECK(decode_copy(buf, len) != 99);
    }
    free(m);
    ts_blob_unref(b);
}

static void etag_is_strong_hash(void)
{
    char a[40], b[40], c[40];
    ts_etag_of("hello", 5, a);
    ts_etag_of("hello", 5, b);
    ts_etag_of("hellp", 5, c);
    CHECK_INT(strlen(a), 34);
    CHECK(a[0] == '"' && a[33] == '"');
    for (int i = 1; i < 33; i++)
        CHECK(strchr("0123456789abcdef", a[i]) != NULL);
    CHECK_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    ts_etag_of(NULL, 0, c);
    CHECK_INT(strlen(c), 34);
}

/* ---- keys ---- */

typedef struct key_fixture {
    ts_key_input in;
    ts_kv path[6];
    ts_kv query[8];
} key_fixture;

static void key_fixture_init(key_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->path[0] = (ts_kv){"tms", "WebMercatorQuad"};
    f->path[1] = (ts_kv){"z", "5"};
    f->path[2] = (ts_kv){"x", "10"};
    f->path[3] = (ts_kv){"y", "12"};
    f->path[4] = (ts_kv){"scale", "1"};
    f->path[5] = (ts_kv){"format", "png"};
    f->query[0] = (ts_kv){"bidx", "1"};
    f->query[1] = (ts_kv){"rescale", "0,255"};
    f->query[2] = (ts_kv){"bidx", "2"};
    f->query[3] = (ts_kv){"colormap_name", "viridis"};
    f->query[4] = (ts_kv){"nodata", "0"};
    f->in.namespace_ = "tessera";
    f->in.dataset = "/data/cog.tif";
    f->in.source_size = 123456;
    f->in.source_mtime_ns = 1700000000123456789LL;
    f->in.route = "tile";
    f->in.path_params = f->path;
    f->in.npath = 6;
    f->in.query = f->query;
    f->in.nquery = 5;
    f->in.base_url = NULL;
}

static void key_build(const key_fixture *f, ts_cache_key *k)
{
    memset(k, 0, sizeof *k);
    if (ts_cache_key_build(&f->in, k) != 0)
        k->len = 0;
}

static void key_format(void)
{
    key_fixture f;
    key_fixture_init(&f);
    ts_cache_key k, p;
    CHECK_INT(ts_cache_key_build(&f.in, &k), 0);
    CHECK_INT(k.len, strlen("tessera") + 1 + 16 + 1 + 32);
    CHECK_INT(strlen(k.str), k.len);
    CHECK(strncmp(k.str, "tessera:", 8) == 0);
    CHECK_INT(k.str[8 + 16], ':');
    for (size_t i = 8; i < k.len; i++)
        CHECK(i == 24 || strchr("0123456789abcdef", k.str[i]) != NULL);
    CHECK_INT(ts_cache_key_dataset_prefix("tessera", "/data/cog.tif", &p), 0);
    CHECK_INT(p.len, k.dataset_prefix_len);
    CHECK(memcmp(p.str, k.str, p.len) == 0);
    CHECK_INT(p.len, 8 + 16 + 1);

    /* Dataset-independent documents share the all-zero dataset part. */
    f.in.dataset = NULL;
    CHECK_INT(ts_cache_key_build(&f.in, &k), 0);
    CHECK(strncmp(k.str, "tessera:0000000000000000:", 25) == 0);

    /* A namespace that cannot fit is an error, not a truncated key. */
    char ns[200];
    memset(ns, 'n', sizeof ns - 1);
    ns[sizeof ns - 1] = '\0';
    f.in.namespace_ = ns;
    CHECK(ts_cache_key_build(&f.in, &k) < 0);
    CHECK(ts_cache_key_dataset_prefix(ns, "/x", &p) < 0);
}

/* Keys are shared between instances and versions through Redis: the same
 * input must give the same key forever (until KEY_VERSION changes). These
 * were produced by the streaming-XXH3 implementation; the buffered one must
 * match, for short inputs (one-shot) and long ones (the streaming fallback). */
static void key_golden_values(void)
{
    ts_kv path[] = {{"tms", "WebMercatorQuad"}, {"z", "18"}, {"x", "142400"},
                    {"y", "91340"}, {"scale", "1"}, {"format", "jpg"}};
    ts_kv q[] = {{"url", "aerial.tif"}, {"Rescale", "0,255"}, {"bidx", "1"}, {"BIDX", "2"},
                 {"flag", NULL}};
    ts_key_input in = {.namespace_ = "tessera", .dataset = "/data/aerial.tif",
                       .source_size = 123456, .source_mtime_ns = 1700000000123456789LL,
                       .route = "tile", .path_params = path, .npath = 6, .query = q,
                       .nquery = 5, .base_url = NULL};
    ts_cache_key k;
    CHECK_INT(ts_cache_key_build(&in, &k), 0);
    CHECK_STR(k.str, "tessera:0b49be2c2919a60a:08e1fc127de9b961800e072f54931259");
    in.base_url = "http://x";
    in.dataset = NULL;
    in.nquery = 0;
    CHECK_INT(ts_cache_key_build(&in, &k), 0);
    CHECK_STR(k.str, "tessera:0000000000000000:298a6488b1d5bbff2c181f48ea6bd84f");
    static char big[3000];
    memset(big, 'a', sizeof big - 1);
    ts_kv q2[] = {{"colormap", big}, {"url", "x"}};
    in.query = q2;
    in.nquery = 2;
    in.dataset = "/d";
    CHECK_INT(ts_cache_key_build(&in, &k), 0);
    CHECK_STR(k.str, "tessera:397393a981c96862:3462a34afee81f7f6f5788204ae589ee");
    char e[40];
    ts_etag_of("hello", 5, e);
    CHECK_STR(e, "\"b5e9c1ad071b3e7fc779cfaa5e523818\"");
}

static void key_order_and_case_of_distinct_names_share(void)
{
    key_fixture a, b;
    key_fixture_init(&a);
    key_fixture_init(&b);
    /* Distinct names shuffled and re-cased; bidx values keep their order. */
    b.query[0] = (ts_kv){"NoData", "0"};
    b.query[1] = (ts_kv){"BIDX", "1"};
    b.query[2] = (ts_kv){"colormap_NAME", "viridis"};
    b.query[3] = (ts_kv){"Bidx", "2"};
    b.query[4] = (ts_kv){"RESCALE", "0,255"};
    ts_cache_key ka, kb;
    key_build(&a, &ka);
    key_build(&b, &kb);
    CHECK(ka.len > 0);
    CHECK_STR(ka.str, kb.str);
}

static void key_differences_never_share(void)
{
    key_fixture base;
    key_fixture_init(&base);
    ts_cache_key keys[40];
    int n = 0;
    key_build(&base, &keys[n++]);

    key_fixture f;
#define VARIANT(...)                                                                               \
    do {                                                                                           \
        key_fixture_init(&f);                                                                      \
        __VA_ARGS__;                                                                               \
        key_build(&f, &keys[n++]);                                                                 \
    } while (0)
    VARIANT(f.query[0].value = "2"; f.query[2].value = "1"); /* repeat order */
    VARIANT(f.query[1].value = "0,254");
    VARIANT(f.query[4].value = "00");
    VARIANT(f.query[3].value = "Viridis"); /* values keep their case */
    VARIANT(f.in.nquery = 4);
    VARIANT(f.query[5] = (ts_kv){"bidx", "3"}; f.in.nquery = 6);
    VARIANT(f.query[5] = (ts_kv){"expression", ""}; f.in.nquery = 6);
    VARIANT(f.query[5] = (ts_kv){"expression", NULL}; f.query[6] = (ts_kv){"", ""};
            f.in.nquery = 7);
    VARIANT(f.in.base_url = "");
    VARIANT(f.in.base_url = "http://a.example");
    VARIANT(f.in.base_url = "https://a.example");
    VARIANT(f.in.source_mtime_ns++);
    VARIANT(f.in.source_size++);
    VARIANT(f.in.dataset = "/data/cog2.tif");
    VARIANT(f.in.dataset = NULL);
    VARIANT(f.in.route = "tilejson");
    VARIANT(f.in.namespace_ = "other");
    VARIANT(f.path[1].value = "6");
    VARIANT(f.path[2].value = "11");
    VARIANT(f.path[3].value = "13");
    VARIANT(f.path[4].value = "2");
    VARIANT(f.path[5].value = "webp");
    VARIANT(f.path[0].value = "WorldCRS84Quad");
    VARIANT(f.path[2] = (ts_kv){"y", "10"}; f.path[3] = (ts_kv){"x", "12"});
    VARIANT(f.in.npath = 5);
    /* Separator smuggling: "a=b&c" against "a=b%26c" (decoded "b&c"). */
    VARIANT(f.query[0] = (ts_kv){"a", "b"}; f.query[1] = (ts_kv){"c", ""}; f.in.nquery = 2);
    VARIANT(f.query[0] = (ts_kv){"a", "b&c"}; f.in.nquery = 1);
    VARIANT(f.query[0] = (ts_kv){"a", "b=c"}; f.in.nquery = 1);
    VARIANT(f.query[0] = (ts_kv){"a=b", "c"}; f.in.nquery = 1);
    /* Moving bytes between a name and its value. */
    VARIANT(f.query[0] = (ts_kv){"ab", "c"}; f.in.nquery = 1);
    VARIANT(f.query[0] = (ts_kv){"a", "bc"}; f.in.nquery = 1);
#undef VARIANT
    for (int i = 0; i < n; i++) {
        CHECK(keys[i].len > 0);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i].str, keys[j].str) == 0) {
                fprintf(stderr, "  variants %d and %d share a key\n", j, i);
                CHECK(0);
            }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Many single-field variations: no two may share a key. */
static void key_no_collisions_in_sweep(void)
{
    enum { PER_FIELD = 400, FIELDS = 9 };
    char **all = calloc(PER_FIELD * FIELDS, sizeof *all);
    char vals[PER_FIELD][16];
    size_t n = 0;
    for (int field = 0; field < FIELDS; field++) {
        for (int i = 0; i < PER_FIELD; i++) {
            key_fixture f;
            key_fixture_init(&f);
            snprintf(vals[i], sizeof vals[i], "%d", 1000 + i);
            switch (field) {
            case 0:
                f.path[1].value = vals[i];
                break;
            case 1:
                f.path[2].value = vals[i];
                break;
            case 2:
                f.path[3].value = vals[i];
                break;
            case 3:
                f.query[0].value = vals[i];
                break;
            case 4:
                f.query[1].value = vals[i];
                break;
            case 5:
                f.in.source_mtime_ns += i + 1;
                break;
            case 6:
                f.in.source_size += i + 1;
                break;
            case 7:
                f.in.base_url = vals[i];
                break;
            case 8:
                f.query[4].key = vals[i];
                break;
            }
            ts_cache_key k;
            key_build(&f, &k);
            CHECK(k.len > 0);
            all[n++] = strdup(k.str);
        }
    }
    qsort(all, n, sizeof *all, cmp_str);
    size_t dups = 0;
    for (size_t i = 1; i < n; i++)
        dups += strcmp(all[i - 1], all[i]) == 0;
    for (size_t i = 0; i < n; i++)
        free(all[i]);
    free(all);
    CHECK_INT(dups, 0);
}

static void key_many_query_args(void)
{
    /* More arguments than a request can hold still work (heap path). */
    ts_kv q[100];
    char names[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "p%d", 99 - i);
        q[i] = (ts_kv){names[i], "v"};
    }
    ts_key_input in = {.namespace_ = "t", .route = "tile", .query = q, .nquery = 100};
    ts_cache_key k1, k2;
    CHECK_INT(ts_cache_key_build(&in, &k1), 0);
    ts_kv tmp = q[0];
    q[0] = q[99];
    q[99] = tmp;
    CHECK_INT(ts_cache_key_build(&in, &k2), 0);
    CHECK_STR(k1.str, k2.str);
}

/* ---- memory backend ---- */

static void memory_basic_and_replace(void)
{
    ts_cache_backend *b = ts_cache_memory_create(1 << 20, NULL, NULL);
    CHECK(b != NULL);
    CHECK_STR(b->name, "memory");
    CHECK(b->try_lock == NULL);
    CHECK(mget_is(b, "k", NULL));
    CHECK_INT(mset(b, "k", "v1", 0), 0);
    CHECK(mget_is(b, "k", "v1"));
    CHECK_INT(mset(b, "k", "v2", 0), 0);
    CHECK(mget_is(b, "k", "v2"));
    /* Binary keys and values. */
    ts_blob *v = ts_blob_from("a\0b", 3);
    CHECK_INT(b->set(b, "x\0y", 3, v, 0), 0);
    ts_blob *out = NULL;
    CHECK_INT(b->get(b, "x\0y", 3, &out), TS_CGET_HIT);
    CHECK(out->size == 3 && memcmp(out->data, "a\0b", 3) == 0);
    CHECK_INT(b->get(b, "x\0z", 3, &out) == TS_CGET_MISS, 1);
    ts_blob_unref(out);
    ts_blob_unref(v);
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK_INT(st.entries, 2);
    CHECK(st.bytes > 5);
    b->destroy(b);
}

static void memory_lru_eviction_by_bytes(void)
{
    /* Below 2 MiB the backend is a single shard, so LRU order is global. */
    ts_cache_backend *b = ts_cache_memory_create(100000, NULL, NULL);
    CHECK(b != NULL);
    CHECK_INT(mset_size(b, "k1", 20000, 0), 0);
    CHECK_INT(mset_size(b, "k2", 20000, 0), 0);
    CHECK_INT(mset_size(b, "k3", 20000, 0), 0);
    CHECK_INT(mset_size(b, "k4", 20000, 0), 0);
    CHECK(has(b, "k1")); /* k1 becomes the most recently used */
    CHECK_INT(mset_size(b, "k5", 20000, 0), 0);
    CHECK(!has(b, "k2"));
    CHECK(has(b, "k3") && has(b, "k4") && has(b, "k1") && has(b, "k5"));
    /* Order now (LRU first): k3 k4 k1 k5. A 60 kB value needs three to go. */
    CHECK_INT(mset_size(b, "big", 60000, 0), 0);
    CHECK(!has(b, "k3") && !has(b, "k4") && !has(b, "k1"));
    CHECK(has(b, "k5") && has(b, "big"));
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK_INT(st.entries, 2);
    CHECK_INT(st.evictions, 4);
    CHECK(st.bytes <= 100000 && st.bytes > 80000);
    /* Bigger than the whole budget: not stored, and the old value of the
     * key is dropped (it is no longer current). */
    CHECK_INT(mset_size(b, "k5", 200000, 0), 0);
    CHECK(!has(b, "k5"));
    CHECK(has(b, "big"));
    b->destroy(b);
}

static void memory_ttl_with_injected_clock(void)
{
    fake_clock clk = {1000000000ull};
    ts_cache_backend *b = ts_cache_memory_create(1 << 20, fake_now, &clk);
    CHECK_INT(mset(b, "short", "s", 10), 0);
    CHECK_INT(mset(b, "forever", "f", 0), 0);
    clk.now += 10ull * 1000000000ull - 1;
    CHECK(mget_is(b, "short", "s"));
    clk.now += 1;
    CHECK(mget_is(b, "short", NULL));
    clk.now += 1000000ull * 1000000000ull;
    CHECK(mget_is(b, "forever", "f"));
    /* Expired entries at the LRU tail are reclaimed by later sets. */
    CHECK_INT(mset(b, "e1", "x", 1), 0);
    CHECK(mget_is(b, "forever", "f")); /* e1 is now the LRU tail */
    clk.now += 2000000000ull;
    CHECK_INT(mset(b, "fresh", "y", 0), 0);
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK_INT(st.entries, 2); /* forever, fresh */
    CHECK_INT(st.evictions, 0);
    b->destroy(b);
}

static void memory_reader_outlives_eviction(void)
{
    ts_cache_backend *b = ts_cache_memory_create(100000, NULL, NULL);
    CHECK_INT(mset(b, "k", "held value", 0), 0);
    ts_blob *held = NULL;
    CHECK_INT(b->get(b, "k", 1, &held), TS_CGET_HIT);
    /* Replace, evict by pressure, delete by prefix, destroy: the reader's
     * reference keeps the bytes valid throughout (ASan checks this). */
    CHECK_INT(mset(b, "k", "replacement", 0), 0);
    CHECK(blob_is(held, "held value"));
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "fill%d", i);
        CHECK_INT(mset_size(b, key, 20000, 0), 0);
    }
    CHECK(!has(b, "k"));
    CHECK(blob_is(held, "held value"));
    ts_blob *held2 = NULL;
    CHECK_INT(b->get(b, "fill19", 6, &held2), TS_CGET_HIT);
    long long del = 0;
    CHECK_INT(b->del_prefix(b, "fill", 4, &del), 0);
    CHECK(del >= 1);
    b->destroy(b);
    CHECK(blob_is(held, "held value"));
    CHECK_INT(held2->size, 20000);
    CHECK_INT(held2->data[19999], 'v');
    CHECK_INT(held->refcount, 1);
    ts_blob_unref(held);
    ts_blob_unref(held2);
}

static void memory_del_prefix_across_shards(void)
{
    ts_cache_backend *b = ts_cache_memory_create(64u << 20, NULL, NULL);
    char key[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "ns:%s:%d", i % 2 ? "aaaa" : "bbbb", i);
        CHECK_INT(mset(b, key, "v", 0), 0);
    }
    CHECK_INT(mset(b, "ns:aaa", "v", 0), 0); /* shorter than the prefix */
    long long del = -1;
    CHECK_INT(b->del_prefix(b, "ns:aaaa:", 8, &del), 0);
    CHECK_INT(del, 500);
    CHECK(!has(b, "ns:aaaa:1"));
    CHECK(has(b, "ns:bbbb:2"));
    CHECK(has(b, "ns:aaa"));
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK_INT(st.entries, 501);
    CHECK_INT(b->del_prefix(b, "", 0, NULL), 0);
    b->stats(b, &st);
    CHECK_INT(st.entries, 0);
    CHECK_INT(st.bytes, 0);
    b->destroy(b);
}

typedef struct hammer_arg {
    ts_cache_backend *b;
    int thread;
    long ops;
    int bad;
    double secs;
} hammer_arg;

/* Keys and values agree ("k<n>" holds "v<n>..."), so a torn or mixed-up
 * entry shows as a mismatch. */
static void *hammer(void *p)
{
    hammer_arg *a = p;
    uint64_t s = 88172645463325252ull ^ (uint64_t)(a->thread + 1) * 0x9e3779b97f4a7c15ull;
    char key[32], val[64];
    uint64_t t0 = ts_now_ns();
    for (long i = 0; i < a->ops; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        unsigned k = (unsigned)(s % 4096);
        int klen = snprintf(key, sizeof key, "k%u", k);
        if (s % 10 < 2) { /* 20 % writes */
            int vlen = snprintf(val, sizeof val, "v%u-%d", k, a->thread);
            ts_blob *v = ts_blob_from(val, (size_t)vlen);
            a->b->set(a->b, key, (size_t)klen, v, 0);
            ts_blob_unref(v);
        } else {
            ts_blob *v = NULL;
            if (a->b->get(a->b, key, (size_t)klen, &v) == TS_CGET_HIT) {
                int vlen = snprintf(val, sizeof val, "v%u-", k);
                if (v->size < (size_t)vlen || memcmp(v->data, val, (size_t)vlen) != 0)
                    a->bad++;
                ts_blob_unref(v);
            }
        }
    }
    a->secs = (double)(ts_now_ns() - t0) / 1e9;
    return NULL;
}

static double run_hammer(ts_cache_backend *b, int nthreads, long ops, int *bad)
{
    pthread_t th[8];
    hammer_arg args[8];
    for (int i = 0; i < nthreads; i++) {
        args[i] = (hammer_arg){b, i, ops, 0, 0};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    double maxs = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        *bad += args[i].bad;
        if (args[i].secs > maxs)
            maxs = args[i].secs;
    }
    return (double)ops * nthreads / (maxs > 0 ? maxs : 1e-9);
}

static void memory_sharded_threads(void)
{
    /* 64 MiB: 16 shards. Budget small enough relative to nothing: all fit,
     * so every read after the first write of a key must hit. */
    ts_cache_backend *b = ts_cache_memory_create(64u << 20, NULL, NULL);
    int bad = 0;
    double one = run_hammer(b, 1, 400000, &bad);
    double two = run_hammer(b, 2, 400000, &bad);
    double four = run_hammer(b, 4, 200000, &bad);
    CHECK_INT(bad, 0);
    printf("  memory backend, 80%% get / 20%% set: %.2f Mops/s 1 thread, %.2f Mops/s 2 threads, "
           "%.2f Mops/s 4 threads\n",
           one / 1e6, two / 1e6, four / 1e6);
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK(st.entries > 0 && st.entries <= 4096);
    b->destroy(b);

    /* Same under eviction pressure (one small shard, constant evictions). */
    b = ts_cache_memory_create(64 * 1024, NULL, NULL);
    run_hammer(b, 4, 100000, &bad);
    CHECK_INT(bad, 0);
    b->stats(b, &st);
    CHECK(st.evictions > 0);
    CHECK(st.bytes <= 64 * 1024);
    b->destroy(b);
}

typedef struct getbench_arg {
    ts_cache_backend *b;
    char (*keys)[16];
    int nkeys;
    long ops;
    int thread;
    double secs;
} getbench_arg;

static void *getbench(void *p)
{
    getbench_arg *a = p;
    uint64_t t0 = ts_now_ns();
    for (long i = 0; i < a->ops; i++) {
        const char *k = a->keys[(i * 7 + a->thread * 131) % a->nkeys];
        ts_blob *v = NULL;
        if (a->b->get(a->b, k, strlen(k), &v) == TS_CGET_HIT)
            ts_blob_unref(v);
    }
    a->secs = (double)(ts_now_ns() - t0) / 1e9;
    return NULL;
}

/* Pure HIT path (no allocation in the loop): the figure a tile HIT pays. */
static void memory_get_throughput(void)
{
    enum { NKEYS = 4096 };
    static char keys[NKEYS][16];
    ts_cache_backend *b = ts_cache_memory_create(64u << 20, NULL, NULL);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "key%d", i);
        CHECK_INT(mset(b, keys[i], "value", 0), 0);
    }
    double rate[3] = {0};
    int threads[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        pthread_t th[4];
        getbench_arg args[4];
        double maxs = 0;
        for (int i = 0; i < threads[t]; i++) {
            args[i] = (getbench_arg){b, keys, NKEYS, 1000000, i, 0};
            pthread_create(&th[i], NULL, getbench, &args[i]);
        }
        for (int i = 0; i < threads[t]; i++) {
            pthread_join(th[i], NULL);
            if (args[i].secs > maxs)
                maxs = args[i].secs;
        }
        rate[t] = 1e6 * threads[t] / maxs;
    }
    printf("  memory backend, get (HIT) only: %.2f Mops/s 1 thread, %.2f Mops/s 2 threads, "
           "%.2f Mops/s 4 threads\n",
           rate[0] / 1e6, rate[1] / 1e6, rate[2] / 1e6);
    b->destroy(b);
}

/* ---- tiered ---- */

static void tiered_levels(void)
{
    ts_cache_backend *l1 = ts_cache_memory_create(1 << 20, NULL, NULL);
    ts_cache_backend *l2 = ts_cache_memory_create(1 << 20, NULL, NULL);
    ts_cache_backend *t = ts_cache_tiered_create(l1, l2);
    CHECK(t != NULL);
    CHECK(t->try_lock == NULL); /* L2 (memory here) has none */
    CHECK_INT(mset(t, "a", "1", 0), 0);
    CHECK(mget_is(l1, "a", "1") && mget_is(l2, "a", "1"));
    CHECK_INT(mset(l2, "b", "2", 0), 0);
    CHECK(mget_is(l1, "b", NULL));
    CHECK(mget_is(t, "b", "2"));
    CHECK(mget_is(l1, "b", "2")); /* populated on the L2 hit */
    long long del = 0;
    CHECK_INT(t->del_prefix(t, "", 0, &del), 0);
    CHECK_INT(del, 2);
    CHECK(mget_is(l1, "a", NULL) && mget_is(l2, "b", NULL));
    CHECK(ts_cache_tiered_create(NULL, l2) == NULL);
    t->destroy(t);
}

/* What src/http.c's prebuilt responses rely on: the memory backend (and
 * the tiered one, through L1) hands out the stored blob itself, so HITs of
 * a key return one pointer; a backend without the flag turns it off. */
static void stable_blobs_flag(void)
{
    ts_cache_backend *l1 = ts_cache_memory_create(1 << 20, NULL, NULL);
    ts_cache_backend *l2 = ts_cache_memory_create(2 << 20, NULL, NULL);
    CHECK(l1->stable_blobs && l1->budget_bytes == 1 << 20);
    CHECK_INT(mset(l2, "k", "v", 0), 0);
    l2->stable_blobs = false; /* as Redis: every get a fresh blob */
    ts_cache_backend *t = ts_cache_tiered_create(l1, l2);
    CHECK(t->stable_blobs && t->budget_bytes == 1 << 20);
    ts_blob *a = NULL, *b = NULL, *c = NULL;
    CHECK_INT(t->get(t, "k", 1, &a), TS_CGET_HIT); /* from L2, stored in L1 */
    CHECK_INT(t->get(t, "k", 1, &b), TS_CGET_HIT); /* from L1 */
    CHECK_INT(t->get(t, "k", 1, &c), TS_CGET_HIT);
    CHECK(a == b && b == c);
    ts_blob_unref(a);
    ts_blob_unref(b);
    ts_blob_unref(c);

    ts_cache *cache = ts_cache_create(t, NULL);
    CHECK(ts_cache_stable_bytes(cache) == 1 << 20);
    ts_cache_destroy(cache);
    ts_cache_backend *m = ts_cache_memory_create(1 << 20, NULL, NULL);
    m->stable_blobs = false;
    cache = ts_cache_create(m, NULL);
    CHECK(ts_cache_stable_bytes(cache) == 0);
    ts_cache_destroy(cache);
    cache = ts_cache_create(NULL, NULL);
    CHECK(ts_cache_stable_bytes(cache) == 0 && ts_cache_stable_bytes(NULL) == 0);
    ts_cache_destroy(cache);
}

/* ---- the front ---- */

typedef struct renderer {
    int calls; /* __atomic */
    int sleep_ms;
    int status;     /* 200 by default */
    int fail;       /* return a ctx error */
    int fail_first; /* only the first call fails */
    const char *body;
} renderer;

static int render_fn(void *ud, ts_response *resp, ts_ctx *ctx)
{
    renderer *r = ud;
    int n = __atomic_add_fetch(&r->calls, 1, __ATOMIC_SEQ_CST);
    if (r->sleep_ms)
        sleep_ms((unsigned)r->sleep_ms);
    if (r->fail || (r->fail_first && n == 1))
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "tile outside bounds");
    char body[128];
    snprintf(body, sizeof body, "%s#%d", r->body ? r->body : "tile", n);
    ts_resp_set_body(resp, r->status ? r->status : 200, "image/png", blob_str(body));
    return 0;
}

typedef struct serve_result {
    int rc;
    ts_response resp;
    ts_ctx ctx;
} serve_result;

static void serve(ts_cache *c, const ts_cache_key *k, const char *cc, const char *pragma,
                  bool store, renderer *r, serve_result *out)
{
    ts_request req;
    memset(&req, 0, sizeof req);
    if (cc)
        ts_req_add_header(&req, "Cache-Control", cc);
    if (pragma)
        ts_req_add_header(&req, "Pragma", pragma);
    ts_resp_init(&out->resp);
    ts_ctx_init(&out->ctx);
    out->rc = ts_cache_serve(c, k, &req, store, render_fn, r, &out->resp, &out->ctx);
}

static int body_is(const ts_response *resp, const char *s)
{
    return resp->body && resp->body_len == strlen(s) &&
           memcmp(resp->body->data + resp->body_off, s, resp->body_len) == 0;
}

static void test_key(ts_cache_key *k, const char *route)
{
    ts_key_input in = {.namespace_ = "t", .dataset = "/d.tif", .route = route};
    ts_cache_key_build(&in, k);
}

static void serve_miss_then_hit(void)
{
    ts_cache_opts o = {.namespace_ = "t", .ttl_s = 60};
    ts_cache *c = ts_cache_create(ts_cache_memory_create(1 << 20, NULL, NULL), &o);
    CHECK(c != NULL);
    CHECK_STR(ts_cache_namespace(c), "t");
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {0};
    serve_result a, b;
    serve(c, &k, NULL, NULL, true, &r, &a);
    CHECK_INT(a.rc, 0);
    CHECK_INT(a.resp.cache, TS_CACHE_OUT_MISS);
    CHECK(body_is(&a.resp, "tile#1"));
    const char *etag = ts_resp_header(&a.resp, "ETag");
    CHECK(etag != NULL);
    char want[40];
    ts_etag_of("tile#1", 6, want);
    CHECK_STR(etag, want);

    serve(c, &k, NULL, NULL, true, &r, &b);
    CHECK_INT(b.rc, 0);
    CHECK_INT(b.resp.cache, TS_CACHE_OUT_HIT);
    CHECK_INT(r.calls, 1);
    CHECK_INT(b.resp.status, 200);
    CHECK_STR(b.resp.content_type, "image/png");
    CHECK(body_is(&b.resp, "tile#1"));
    CHECK_STR(ts_resp_header(&b.resp, "ETag"), want);
    /* Zero copy: the body is a slice of the cached entry blob. */
    CHECK(b.resp.body != a.resp.body);
    CHECK(b.resp.body_off > 0);
    CHECK(memcmp(b.resp.body->data, "TSC1", 4) == 0);
    ts_resp_clear(&a.resp);
    ts_resp_clear(&b.resp);

    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_STR(st.backend, "memory");
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.misses, 1);
    CHECK_INT(st.stores, 1);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.errors, 0);

    long long del = 0;
    ts_cache_key pre;
    ts_cache_key_dataset_prefix("t", "/d.tif", &pre);
    CHECK_INT(ts_cache_delete_prefix(c, pre.str, pre.len, &del), 0);
    CHECK_INT(del, 1);
    serve(c, &k, NULL, NULL, true, &r, &a);
    CHECK_INT(a.resp.cache, TS_CACHE_OUT_MISS);
    CHECK_INT(r.calls, 2);
    ts_resp_clear(&a.resp);
    ts_cache_destroy(c);
}

static void serve_client_directives(void)
{
    ts_cache *c = ts_cache_create(ts_cache_memory_create(1 << 20, NULL, NULL),
                                  &(ts_cache_opts){.namespace_ = "t"});
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {0};
    serve_result s;

    /* no-store: read allowed, nothing written. */
    serve(c, &k, "no-store", NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
    CHECK(ts_resp_header(&s.resp, "ETag") != NULL);
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
    CHECK(body_is(&s.resp, "tile#2"));
    ts_resp_clear(&s.resp);
    CHECK_INT(r.calls, 2);

    /* no-cache: skip the read, store the fresh result (a refresh). */
    serve(c, &k, "max-age=0, No-Cache", NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_BYPASS);
    CHECK(body_is(&s.resp, "tile#3"));
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_HIT);
    CHECK(body_is(&s.resp, "tile#3"));
    ts_resp_clear(&s.resp);

    /* no-cache + no-store: neither read nor write. */
    serve(c, &k, "no-cache,no-store", NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_BYPASS);
    CHECK(body_is(&s.resp, "tile#4"));
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK(body_is(&s.resp, "tile#3"));
    ts_resp_clear(&s.resp);

    /* Pragma: no-cache without Cache-Control. */
    serve(c, &k, NULL, "no-cache", true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_BYPASS);
    ts_resp_clear(&s.resp);
    /* A quoted argument containing a directive name is not that directive. */
    serve(c, &k, "private=\"no-cache\"", NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_HIT);
    ts_resp_clear(&s.resp);

    /* store == false: render, never store. */
    ts_cache_key k2;
    test_key(&k2, "other");
    serve(c, &k2, NULL, NULL, false, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_BYPASS);
    CHECK(ts_resp_header(&s.resp, "ETag") != NULL);
    ts_resp_clear(&s.resp);
    serve(c, &k2, NULL, NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
    ts_resp_clear(&s.resp);

    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_INT(st.bypasses, 4);
    ts_cache_destroy(c);
}

static void serve_errors_not_stored(void)
{
    ts_cache *c = ts_cache_create(ts_cache_memory_create(1 << 20, NULL, NULL), NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {.fail = 1};
    serve_result s;
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK(s.rc < 0);
    CHECK_INT(s.ctx.status, 404);
    CHECK(ts_resp_header(&s.resp, "ETag") == NULL);
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK(s.rc < 0);
    CHECK_INT(r.calls, 2);
    ts_resp_clear(&s.resp);

    /* A non-200 that the renderer built itself is not stored either. */
    renderer r2 = {.status = 500};
    serve(c, &k, NULL, NULL, true, &r2, &s);
    CHECK_INT(s.rc, 0);
    CHECK_INT(s.resp.status, 500);
    CHECK(ts_resp_header(&s.resp, "ETag") == NULL);
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r2, &s);
    CHECK_INT(r2.calls, 2);
    ts_resp_clear(&s.resp);
    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_INT(st.stores, 0);
    CHECK_INT(st.entries, 0);
    ts_cache_destroy(c);
}

static void serve_without_backend(void)
{
    ts_cache *c = ts_cache_create(NULL, NULL);
    CHECK(c != NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {0};
    serve_result s;
    for (int i = 0; i < 3; i++) {
        serve(c, &k, NULL, NULL, true, &r, &s);
        CHECK_INT(s.rc, 0);
        CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
        CHECK(ts_resp_header(&s.resp, "ETag") != NULL);
        ts_resp_clear(&s.resp);
    }
    CHECK_INT(r.calls, 3);
    long long del = 5;
    CHECK_INT(ts_cache_delete_prefix(c, "t", 1, &del), 0);
    CHECK_INT(del, 0);
    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_STR(st.backend, "none");
    CHECK_INT(st.misses, 3);
    ts_cache_destroy(c);
}

/* A backend whose every operation fails, like Redis during an outage. */
static int broken_get(ts_cache_backend *b, const char *k, size_t n, ts_blob **out)
{
    (void)b, (void)k, (void)n, (void)out;
    return TS_CGET_ERROR;
}
static int broken_set(ts_cache_backend *b, const char *k, size_t n, ts_blob *v, unsigned t)
{
    (void)b, (void)k, (void)n, (void)v, (void)t;
    return -TS_EUNAVAILABLE;
}
static int broken_del(ts_cache_backend *b, const char *p, size_t n, long long *d)
{
    (void)b, (void)p, (void)n, (void)d;
    return -TS_EUNAVAILABLE;
}
static void broken_stats(ts_cache_backend *b, ts_cache_stats *out)
{
    (void)b, (void)out;
}
static void broken_destroy(ts_cache_backend *b)
{
    free(b);
}

static void serve_backend_errors_are_misses(void)
{
    ts_cache_backend *b = calloc(1, sizeof *b);
    *b = (ts_cache_backend){.name = "broken",
                            .get = broken_get,
                            .set = broken_set,
                            .del_prefix = broken_del,
                            .stats = broken_stats,
                            .destroy = broken_destroy};
    ts_cache *c = ts_cache_create(b, NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {0};
    serve_result s;
    for (int i = 0; i < 2; i++) {
        serve(c, &k, NULL, NULL, true, &r, &s);
        CHECK_INT(s.rc, 0);
        CHECK_INT(s.resp.status, 200);
        CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
        ts_resp_clear(&s.resp);
    }
    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_INT(st.errors, 4); /* two failed gets, two failed sets */
    CHECK_INT(st.misses, 2);
    CHECK_INT(st.stores, 0);
    CHECK(ts_cache_delete_prefix(c, "x", 1, NULL) < 0);
    ts_cache_destroy(c);
}

static void serve_corrupt_entry_is_rerendered(void)
{
    ts_cache_backend *m = ts_cache_memory_create(1 << 20, NULL, NULL);
    ts_cache *c = ts_cache_create(m, NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    ts_blob *junk = blob_str("TSC1 but not really");
    m->set(m, k.str, k.len, junk, 0);
    ts_blob_unref(junk);
    renderer r = {0};
    serve_result s;
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
    CHECK(body_is(&s.resp, "tile#1"));
    ts_resp_clear(&s.resp);
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_HIT);
    ts_resp_clear(&s.resp);
    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_INT(st.errors, 1);
    ts_cache_destroy(c);
}

typedef struct coalesce_arg {
    ts_cache *c;
    const ts_cache_key *k;
    renderer *r;
    pthread_barrier_t *bar;
    serve_result res;
} coalesce_arg;

static void *coalesce_thread(void *p)
{
    coalesce_arg *a = p;
    pthread_barrier_wait(a->bar);
    serve(a->c, a->k, NULL, NULL, true, a->r, &a->res);
    return NULL;
}

static int run_coalesce(ts_cache *c, const ts_cache_key *k, renderer *r, coalesce_arg *args, int n)
{
    pthread_t th[16];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        args[i] = (coalesce_arg){.c = c, .k = k, .r = r, .bar = &bar};
        pthread_create(&th[i], NULL, coalesce_thread, &args[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    return 0;
}

static void coalescing_one_render_for_eight(void)
{
    ts_cache *c = ts_cache_create(ts_cache_memory_create(1 << 20, NULL, NULL), NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {.sleep_ms = 50};
    coalesce_arg args[8];
    run_coalesce(c, &k, &r, args, 8);
    CHECK_INT(r.calls, 1);
    int misses = 0;
    for (int i = 0; i < 8; i++) {
        CHECK_INT(args[i].res.rc, 0);
        CHECK_INT(args[i].res.resp.status, 200);
        CHECK(body_is(&args[i].res.resp, "tile#1"));
        CHECK(ts_resp_header(&args[i].res.resp, "ETag") != NULL);
        misses += args[i].res.resp.cache == TS_CACHE_OUT_MISS;
        ts_resp_clear(&args[i].res.resp);
    }
    ts_cache_stats st;
    ts_cache_get_stats(c, &st);
    CHECK_INT(st.stores, 1);
    CHECK_INT(st.misses, misses);
    CHECK_INT(st.coalesced + st.hits, 7);
    CHECK_INT(misses, 8); /* the barrier makes every request arrive mid-render */
    ts_cache_destroy(c);
}

static void coalescing_leader_failure_is_not_shared(void)
{
    ts_cache *c = ts_cache_create(ts_cache_memory_create(1 << 20, NULL, NULL), NULL);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {.sleep_ms = 50, .fail_first = 1};
    coalesce_arg args[4];
    run_coalesce(c, &k, &r, args, 4);
    int failed = 0, ok = 0;
    for (int i = 0; i < 4; i++) {
        failed += args[i].res.rc < 0;
        ok += args[i].res.rc == 0 && args[i].res.resp.status == 200;
        ts_resp_clear(&args[i].res.resp);
    }
    CHECK_INT(failed, 1);
    CHECK_INT(ok, 3);
    ts_cache_destroy(c);
}

/* A memory backend with a scripted cross-instance lock: "another instance"
 * holds it, and optionally stores the entry after a delay. */
typedef struct lockbackend {
    ts_cache_backend base;
    ts_cache_backend *mem;
    int lock_result;
    int unlocks;
} lockbackend;

static int lb_get(ts_cache_backend *b, const char *k, size_t n, ts_blob **out)
{
    ts_cache_backend *m = ((lockbackend *)b)->mem;
    return m->get(m, k, n, out);
}
static int lb_set(ts_cache_backend *b, const char *k, size_t n, ts_blob *v, unsigned t)
{
    ts_cache_backend *m = ((lockbackend *)b)->mem;
    return m->set(m, k, n, v, t);
}
static int lb_del(ts_cache_backend *b, const char *p, size_t n, long long *d)
{
    ts_cache_backend *m = ((lockbackend *)b)->mem;
    return m->del_prefix(m, p, n, d);
}
static void lb_stats(ts_cache_backend *b, ts_cache_stats *out)
{
    ts_cache_backend *m = ((lockbackend *)b)->mem;
    m->stats(m, out);
}
static int lb_try_lock(ts_cache_backend *b, const char *k, size_t n, unsigned lease)
{
    (void)k, (void)n, (void)lease;
    return ((lockbackend *)b)->lock_result;
}
static void lb_unlock(ts_cache_backend *b, const char *k, size_t n)
{
    (void)k, (void)n;
    ((lockbackend *)b)->unlocks++;
}
static void lb_destroy(ts_cache_backend *b)
{
    (void)b; /* the test owns it */
}

typedef struct other_instance {
    ts_cache_backend *mem;
    const ts_cache_key *k;
} other_instance;

static void *other_instance_render(void *p)
{
    other_instance *o = p;
    sleep_ms(60);
    char etag[40];
    ts_etag_of("theirs", 6, etag);
    ts_blob *e = ts_cache_entry_encode(200, "image/png", etag, "theirs", 6);
    o->mem->set(o->mem, o->k->str, o->k->len, e, 0);
    ts_blob_unref(e);
    return NULL;
}

static void cross_instance_lock(void)
{
    lockbackend lb = {.base = {.name = "locky",
                               .get = lb_get,
                               .set = lb_set,
                               .del_prefix = lb_del,
                               .stats = lb_stats,
                               .try_lock = lb_try_lock,
                               .unlock = lb_unlock,
                               .destroy = lb_destroy},
                      .mem = ts_cache_memory_create(1 << 20, NULL, NULL)};
    ts_cache_opts o = {.cross_instance_lock = true, .lock_lease_ms = 1000};
    ts_cache *c = ts_cache_create(&lb.base, &o);
    ts_cache_key k;
    test_key(&k, "tile");
    renderer r = {0};
    serve_result s;

    /* Acquired: render, then release. */
    lb.lock_result = 1;
    serve(c, &k, NULL, NULL, true, &r, &s);
    CHECK_INT(r.calls, 1);
    CHECK_INT(lb.unlocks, 1);
    ts_resp_clear(&s.resp);

    /* Held elsewhere, and the other instance stores within the lease:
     * take its entry without rendering. */
    ts_cache_key k2;
    test_key(&k2, "tile2");
    lb.lock_result = 0;
    other_instance oi = {lb.mem, &k2};
    pthread_t th;
    pthread_create(&th, NULL, other_instance_render, &oi);
    serve(c, &k2, NULL, NULL, true, &r, &s);
    pthread_join(th, NULL);
    CHECK_INT(r.calls, 1);
    CHECK_INT(s.rc, 0);
    CHECK(body_is(&s.resp, "theirs"));
    CHECK_INT(s.resp.cache, TS_CACHE_OUT_MISS);
    ts_resp_clear(&s.resp);

    /* Held elsewhere and nothing appears within the lease: render anyway. */
    ts_cache_key k3;
    test_key(&k3, "tile3");
    uint64_t t0 = ts_now_ns();
    serve(c, &k3, NULL, NULL, true, &r, &s);
    double ms = (double)(ts_now_ns() - t0) / 1e6;
    CHECK_INT(r.calls, 2);
    CHECK(ms >= 900 && ms < 3000);
    CHECK_INT(lb.unlocks, 1); /* never held it */
    ts_resp_clear(&s.resp);

    /* Lock error: treated as acquired (render), nothing to release. */
    ts_cache_key k4;
    test_key(&k4, "tile4");
    lb.lock_result = -TS_EIO;
    serve(c, &k4, NULL, NULL, true, &r, &s);
    CHECK_INT(r.calls, 3);
    CHECK_INT(lb.unlocks, 1);
    ts_resp_clear(&s.resp);

    ts_cache_destroy(c);
    lb.mem->destroy(lb.mem);
}

TS_TEST_MAIN(TEST(entry_round_trip), TEST(entry_rejects_bad_input), TEST(etag_is_strong_hash),
             TEST(key_format), TEST(key_golden_values), TEST(key_order_and_case_of_distinct_names_share),
             TEST(key_differences_never_share), TEST(key_no_collisions_in_sweep),
             TEST(key_many_query_args), TEST(memory_basic_and_replace),
             TEST(memory_lru_eviction_by_bytes), TEST(memory_ttl_with_injected_clock),
             TEST(memory_reader_outlives_eviction), TEST(memory_del_prefix_across_shards),
             TEST(memory_sharded_threads), TEST(memory_get_throughput), TEST(tiered_levels),
             TEST(stable_blobs_flag),
             TEST(serve_miss_then_hit), TEST(serve_client_directives),
             TEST(serve_errors_not_stored), TEST(serve_without_backend),
             TEST(serve_backend_errors_are_misses), TEST(serve_corrupt_entry_is_rerendered),
             TEST(coalescing_one_render_for_eight), TEST(coalescing_leader_failure_is_not_shared),
             TEST(cross_instance_lock))
