/* Named colormaps, JSON/palette colormaps and their application. */
#include "ts_colormap.h"
#include "ts_test.h"

#include <json-c/json.h>
#include <stdint.h>

static int expect_rgba(const uint8_t *got, int r, int g, int b, int a)
{
    if (got[0] == r && got[1] == g && got[2] == b && got[3] == a)
        return 1;
    fprintf(stderr, "  got (%d,%d,%d,%d), expected (%d,%d,%d,%d)\n", got[0], got[1], got[2],
            got[3], r, g, b, a);
    return 0;
}
#define CHECK_RGBA(p, r, g, b, a) CHECK(expect_rgba((p), (r), (g), (b), (a)))

/* The generator's expectations (scripts/gen_colormaps.py), computed by
 * matplotlib and numpy independently of the C code. */
static json_object *expected(void)
{
    static json_object *doc;
    if (!doc) {
        const char *root = getenv("TS_SOURCE_ROOT");
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/e2e/data/colormaps_expected.json",
                 root ? root : ".");
        doc = json_object_from_file(path);
        if (!doc)
            fprintf(stderr, "  cannot read %s\n", path);
    }
    return doc;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Parse or fail the test; the caller frees. */
static ts_colormap *parse_ok(const char *json)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_colormap *cm = NULL;
    int rc = ts_colormap_parse_json(json, &cm, &ctx);
    if (rc != 0)
        fprintf(stderr, "  parse of %s failed: %s\n", json, ctx.detail);
    return cm;
}

static void named_count_and_order(void)
{
    size_t n = ts_colormap_names(NULL, 0);
    CHECK_INT(n, 211);
    const char *names[256];
    CHECK_INT(ts_colormap_names(names, 256), 211);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(names[i - 1], names[i]) < 0);
    for (size_t i = 0; i < n; i++)
        CHECK(ts_colormap_named(names[i]) != NULL);

    json_object *doc = expected();
    CHECK(doc != NULL);
    json_object *jn = get(doc, "names");
    CHECK_INT(json_object_array_length(jn), 211);
    for (size_t i = 0; i < n; i++)
        CHECK_STR(names[i], json_object_get_string(json_object_array_get_idx(jn, i)));

    /* A short buffer is filled and the total still reported. */
    const char *two[2] = {NULL, NULL};
    CHECK_INT(ts_colormap_names(two, 2), 211);
    CHECK_STR(two[0], "accent");
    CHECK_STR(two[1], "accent_r");
}

static void named_lookup(void)
{
    const ts_colormap *v = ts_colormap_named("viridis");
    CHECK(v != NULL);
    CHECK(ts_colormap_named("VIRIDIS") == v);
    CHECK(ts_colormap_named("ViRiDiS") == v);
    CHECK(ts_colormap_named("RdYlGn_R") == ts_colormap_named("rdylgn_r"));
    CHECK(ts_colormap_named("cfastie") != NULL);
    CHECK(ts_colormap_named("rplumbo") != NULL);
    CHECK(ts_colormap_named("schwarzwald") != NULL);
    CHECK(ts_colormap_named("cfastie_r") == NULL); /* rio-tiler has none */
    CHECK(ts_colormap_named("viridis_") == NULL);
    CHECK(ts_colormap_named("") == NULL);
    CHECK(ts_colormap_named("nope") == NULL);
    CHECK(ts_colormap_named(NULL) == NULL);
    CHECK(ts_colormap_kind_of(v) == TS_COLORMAP_LUT);
    CHECK(!ts_colormap_has_transparency(v));
    ts_colormap_free((ts_colormap *)v); /* a no-op for static tables */
    CHECK(ts_colormap_lut(ts_colormap_named("viridis")) != NULL);
}

static void named_values_literal(void)
{
    /* matplotlib's viridis starts at (0.267004, 0.004874, 0.329415) and ends
     * at (0.993248, 0.906157, 0.143936); times 255, truncated. */
    const ts_rgba *v = ts_colormap_lut(ts_colormap_named("viridis"));
    CHECK_RGBA(v[0], 68, 1, 84, 255);
    CHECK_RGBA(v[255], 253, 231, 36, 255);
    /* cfastie is rio-tiler 1.x's table minus its first row. */
    const ts_rgba *c = ts_colormap_lut(ts_colormap_named("cfastie"));
    CHECK_RGBA(c[0], 255, 255, 255, 255);
    CHECK_RGBA(c[255], 255, 1, 239, 255);
}

static void named_values_match_generator(void)
{
    json_object *spot = get(expected(), "spot");
    CHECK(spot != NULL);
    int checked = 0;
    json_object_object_foreach(spot, name, entries)
    {
        const ts_rgba *lut = ts_colormap_lut(ts_colormap_named(name));
        if (!lut)
            fprintf(stderr, "  missing %s\n", name);
        CHECK(lut != NULL);
        json_object_object_foreach(entries, idx, rgba)
        {
            int i = atoi(idx);
            for (int k = 0; k < 4; k++) {
                int want = json_object_get_int(json_object_array_get_idx(rgba, (size_t)k));
                if (lut[i][k] != want)
                    fprintf(stderr, "  %s[%d][%d] = %d, expected %d\n", name, i, k, lut[i][k],
                            want);
                CHECK_INT(lut[i][k], want);
            }
            checked++;
        }
    }
    CHECK(checked >= 100);
}

static void reversed_tables(void)
{
    /* matplotlib's listed 256-colour maps reverse exactly. */
    const char *exact[] = {"viridis", "magma", "inferno", "plasma", "cividis", "turbo"};
    for (size_t k = 0; k < sizeof exact / sizeof exact[0]; k++) {
        char rname[64];
        snprintf(rname, sizeof rname, "%s_r", exact[k]);
        const ts_rgba *a = ts_colormap_lut(ts_colormap_named(exact[k]));
        const ts_rgba *b = ts_colormap_lut(ts_colormap_named(rname));
        CHECK(a && b);
        for (int i = 0; i < 256; i++)
            CHECK(memcmp(a[i], b[255 - i], 4) == 0);
    }
    /* Segmented maps are resampled by matplotlib's own `_r`, which can differ
     * from a byte reverse by rounding: within 2 units. */
    const char *close[] = {"terrain", "rdylgn", "twilight", "gray", "algae"};
    for (size_t k = 0; k < sizeof close / sizeof close[0]; k++) {
        char rname[64];
        snprintf(rname, sizeof rname, "%s_r", close[k]);
        const ts_rgba *a = ts_colormap_lut(ts_colormap_named(close[k]));
        const ts_rgba *b = ts_colormap_lut(ts_colormap_named(rname));
        CHECK(a && b);
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 4; c++)
                CHECK(abs(a[i][c] - b[255 - i][c]) <= 2);
    }
}

static void apply_lut(void)
{
    const ts_colormap *cm = ts_colormap_named("viridis");
    const ts_rgba *lut = ts_colormap_lut(cm);
    float v[] = {0.0f, 0.5f, 1.7f, -3.0f, 300.0f, NAN, 255.0f, 254.99f, 128.0f};
    int idx[] = {0, 0, 1, 0, 255, 0, 255, 254, 128};
    uint8_t mask[] = {255, 255, 255, 255, 255, 255, 255, 255, 0};
    uint8_t out[9 * 4];
    CHECK_INT(ts_colormap_apply(cm, v, mask, 9, out), 0);
    for (int i = 0; i < 8; i++)
        CHECK_RGBA(out + 4 * i, lut[idx[i]][0], lut[idx[i]][1], lut[idx[i]][2], 255);
    /* Masked: the colour stays, alpha goes to 0 (rio-tiler's bitwise_and). */
    CHECK_RGBA(out + 32, lut[128][0], lut[128][1], lut[128][2], 0);
    /* No mask means all valid. */
    CHECK_INT(ts_colormap_apply(cm, v, NULL, 9, out), 0);
    CHECK_INT(out[35], 255);
    CHECK_INT(ts_colormap_apply(NULL, v, NULL, 9, out), -TS_EINTERNAL);
    CHECK_INT(ts_colormap_apply(cm, NULL, NULL, 0, NULL), 0);
}

static void json_discrete(void)
{
    ts_colormap *cm = parse_ok("{\"1\": [255, 0, 0, 255], \"2\": \"#00ff00\", \"3.5\": [0, 0, 255],"
                               " \"-7\": \"#abc\", \"1e2\": \"#11223344\", \"300\": \"#FFF8\"}");
    CHECK(cm != NULL);
    CHECK(ts_colormap_kind_of(cm) == TS_COLORMAP_DISCRETE);
    CHECK(ts_colormap_has_transparency(cm));
    CHECK(ts_colormap_lut(cm) == NULL);
    float v[] = {1, 2, 3.5f, -7, 100, 300, 1.0001f, 4, 0, NAN, 2};
    uint8_t mask[] = {255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0};
    uint8_t out[11 * 4];
    CHECK_INT(ts_colormap_apply(cm, v, mask, 11, out), 0);
    CHECK_RGBA(out + 0, 255, 0, 0, 255);
    CHECK_RGBA(out + 4, 0, 255, 0, 255);
    CHECK_RGBA(out + 8, 0, 0, 255, 255);
    CHECK_RGBA(out + 12, 0xaa, 0xbb, 0xcc, 255);
    CHECK_RGBA(out + 16, 0x11, 0x22, 0x33, 0x44);
    CHECK_RGBA(out + 20, 255, 255, 255, 0x88);
    CHECK_RGBA(out + 24, 0, 0, 0, 0); /* exact matches only */
    CHECK_RGBA(out + 28, 0, 0, 0, 0);
    CHECK_RGBA(out + 32, 0, 0, 0, 0);
    CHECK_RGBA(out + 36, 0, 0, 0, 0);
    CHECK_RGBA(out + 40, 0, 255, 0, 0);
    ts_colormap_free(cm);

    /* A key compares as float32, like numpy's float32 == Python float. */
    cm = parse_ok("{\"0.1\": [1, 2, 3]}");
    CHECK(cm != NULL);
    float tenth = 0.1f;
    CHECK_INT(ts_colormap_apply(cm, &tenth, NULL, 1, out), 0);
    CHECK_RGBA(out, 1, 2, 3, 255);
    ts_colormap_free(cm);

    /* Equal keys: the last one wins, as when building a Python dict. */
    cm = parse_ok("{\"5\": [1, 1, 1], \"5.0\": [2, 2, 2]}");
    CHECK(cm != NULL);
    float five = 5;
    CHECK_INT(ts_colormap_apply(cm, &five, NULL, 1, out), 0);
    CHECK_RGBA(out, 2, 2, 2, 255);
    ts_colormap_free(cm);
}

static const char *lut_json(int nkeys, int float_key, int alpha)
{
    static char s[65536];
    size_t n = 0;
    n += (size_t)snprintf(s + n, sizeof s - n, "{");
    for (int i = 0; i < nkeys; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s\"%d%s\": [%d, %d, %d, %d]", i ? ", " : "",
                              i, (float_key && i == 7) ? ".0" : "", i, 255 - i, i / 2, alpha);
    snprintf(s + n, sizeof s - n, "}");
    return s;
}

static void json_lut_vs_discrete(void)
{
    /* Exactly the integers 0..255: a lookup table, so 3.7 is entry 3. */
    const char *s = lut_json(256, 0, 255);
    ts_colormap *cm = parse_ok(s);
    CHECK(cm != NULL);
    CHECK(ts_colormap_kind_of(cm) == TS_COLORMAP_LUT);
    CHECK(!ts_colormap_has_transparency(cm));
    float v[] = {3.7f, 255, 0};
    uint8_t out[12];
    CHECK_INT(ts_colormap_apply(cm, v, NULL, 3, out), 0);
    CHECK_RGBA(out, 3, 252, 1, 255);
    CHECK_RGBA(out + 4, 255, 0, 127, 255);
    CHECK_RGBA(out + 8, 0, 255, 0, 255);
    ts_colormap_free(cm);

    s = lut_json(256, 0, 128);
    cm = parse_ok(s);
    CHECK(cm && ts_colormap_has_transparency(cm));
    ts_colormap_free(cm);

    /* 255 keys, or a key written with a fraction: matched value by value. */
    s = lut_json(255, 0, 255);
    cm = parse_ok(s);
    CHECK(cm && ts_colormap_kind_of(cm) == TS_COLORMAP_DISCRETE);
    CHECK_INT(ts_colormap_apply(cm, v, NULL, 1, out), 0);
    CHECK_RGBA(out, 0, 0, 0, 0);
    ts_colormap_free(cm);

    s = lut_json(256, 1, 255);
    cm = parse_ok(s);
    CHECK(cm && ts_colormap_kind_of(cm) == TS_COLORMAP_DISCRETE);
    ts_colormap_free(cm);
}

static void json_colour_forms(void)
{
    struct {
        const char *colour;
        int r, g, b, a;
    } cases[] = {
        {"[1, 2, 3]", 1, 2, 3, 255},
        {"[1, 2, 3, 4]", 1, 2, 3, 4},
        {"[0, 0, 0, 0]", 0, 0, 0, 0},
        {"[255.0, 0, 0]", 255, 0, 0, 255},
        {"\"#FF8000\"", 255, 128, 0, 255},
        {"\"#ff800080\"", 255, 128, 0, 128},
        {"\"#f80\"", 0xff, 0x88, 0x00, 255},
        {"\"#F808\"", 0xff, 0x88, 0x00, 0x88},
        {"\"#aBcDeF\"", 0xab, 0xcd, 0xef, 255},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"9\": %s}", cases[i].colour);
        ts_colormap *cm = parse_ok(json);
        CHECK(cm != NULL);
        float nine = 9;
        uint8_t out[4];
        CHECK_INT(ts_colormap_apply(cm, &nine, NULL, 1, out), 0);
        ts_colormap_free(cm);
        CHECK_RGBA(out, cases[i].r, cases[i].g, cases[i].b, cases[i].a);
    }
}

static void json_intervals(void)
{
    ts_colormap *cm = parse_ok("[[[0, 10], [255, 0, 0, 255]], [[10, 20.5], \"#00FF0080\"],"
                               " [[30, 40], [0, 0, 255]]]");
    CHECK(cm != NULL);
    CHECK(ts_colormap_kind_of(cm) == TS_COLORMAP_INTERVALS);
    CHECK(ts_colormap_has_transparency(cm));
    float v[] = {0, 9.999f, 10, 20.4f, 20.5f, -0.1f, 25, 30, 39.9f, 40, NAN};
    uint8_t mask[11] = {255, 255, 255, 0, 255, 255, 255, 255, 255, 255, 255};
    uint8_t out[11 * 4];
    CHECK_INT(ts_colormap_apply(cm, v, mask, 11, out), 0);
    CHECK_RGBA(out + 0, 255, 0, 0, 255);
    CHECK_RGBA(out + 4, 255, 0, 0, 255);
    CHECK_RGBA(out + 8, 0, 255, 0, 128); /* 10 is in [10, 20.5), not [0, 10) */
    CHECK_RGBA(out + 12, 0, 255, 0, 0);  /* masked */
    CHECK_RGBA(out + 16, 0, 0, 0, 0);    /* max is excluded */
    CHECK_RGBA(out + 20, 0, 0, 0, 0);
    CHECK_RGBA(out + 24, 0, 0, 0, 0);    /* gap */
    CHECK_RGBA(out + 28, 0, 0, 255, 255);
    CHECK_RGBA(out + 32, 0, 0, 255, 255);
    CHECK_RGBA(out + 36, 0, 0, 0, 0);
    CHECK_RGBA(out + 40, 0, 0, 0, 0);
    ts_colormap_free(cm);

    /* Overlaps: the later interval wins, in either order. */
    cm = parse_ok("[[[0, 100], \"#ff0000\"], [[50, 60], \"#0000ff\"]]");
    CHECK(cm != NULL);
    float w[] = {55, 70, 60};
    CHECK_INT(ts_colormap_apply(cm, w, NULL, 3, out), 0);
    CHECK_RGBA(out, 0, 0, 255, 255);
    CHECK_RGBA(out + 4, 255, 0, 0, 255);
    CHECK_RGBA(out + 8, 255, 0, 0, 255);
    ts_colormap_free(cm);
    cm = parse_ok("[[[50, 60], \"#0000ff\"], [[0, 100], \"#ff0000\"]]");
    CHECK(cm != NULL);
    CHECK_INT(ts_colormap_apply(cm, w, NULL, 1, out), 0);
    CHECK_RGBA(out, 255, 0, 0, 255);
    ts_colormap_free(cm);

    /* Unsorted but disjoint, empty and unbounded intervals. */
    cm = parse_ok("[[[10, 20], [1, 1, 1]], [[0, 10], [2, 2, 2]], [[5, 5], [3, 3, 3]],"
                  " [[20, 1e300], [4, 4, 4]]]");
    CHECK(cm != NULL);
    float u[] = {5, 15, 1e30f, INFINITY};
    CHECK_INT(ts_colormap_apply(cm, u, NULL, 4, out), 0);
    CHECK_RGBA(out, 2, 2, 2, 255);
    CHECK_RGBA(out + 4, 1, 1, 1, 255);
    CHECK_RGBA(out + 8, 4, 4, 4, 255);
    CHECK_RGBA(out + 12, 0, 0, 0, 0); /* float32(1e300) is inf, excluded as max */
    ts_colormap_free(cm);

    /* Integer bounds past INT64_MAX (found by fuzz_colormap): json-c holds
     * them as uint64, which must not be clamped to INT64_MAX. */
    cm = parse_ok("[[[0, 10000000000000000000], [5, 5, 5]]]");
    CHECK(cm != NULL);
    float big[] = {9.5e18f};
    CHECK_INT(ts_colormap_apply(cm, big, NULL, 1, out), 0);
    CHECK_RGBA(out, 5, 5, 5, 255);
    ts_colormap_free(cm);
}

static void json_errors(void)
{
    static const char *bad[] = {
        "",
        "   ",
        "null",
        "1",
        "\"viridis\"",
        "{}",
        "[]",
        "{",
        "{\"1\": [1, 2, 3]",
        "{\"1\": [1, 2, 3]} x",
        "{\"1\": [1, 2, 3]}{}",
        "{'1': [1, 2, 3]}",
        "{\"1\": [1, 2, 3],}",
        "NaN",
        "{\"a\": [1, 2, 3]}",
        "{\"\": [1, 2, 3]}",
        "{\"0x10\": [1, 2, 3]}",
        "{\"nan\": [1, 2, 3]}",
        "{\"inf\": [1, 2, 3]}",
        "{\" 1\": [1, 2, 3]}",
        "{\"1 \": [1, 2, 3]}",
        "{\"+1\": [1, 2, 3]}",
        "{\"1.\": [1, 2, 3]}",
        "{\".5\": [1, 2, 3]}",
        "{\"1e\": [1, 2, 3]}",
        "{\"1e999\": [1, 2, 3]}",
        "{\"1\": [1, 2]}",
        "{\"1\": [1, 2, 3, 4, 5]}",
        "{\"1\": [256, 0, 0]}",
        "{\"1\": [-1, 0, 0]}",
        "{\"1\": [1.5, 0, 0]}",
        "{\"1\": [1, 2, \"3\"]}",
        "{\"1\": [1, 2, null]}",
        "{\"1\": [1, 2, [3]]}",
        "{\"1\": null}",
        "{\"1\": 7}",
        "{\"1\": {}}",
        "{\"1\": \"red\"}",
        "{\"1\": \"#12\"}",
        "{\"1\": \"#12345\"}",
        "{\"1\": \"#123456789\"}",
        "{\"1\": \"#GGGGGG\"}",
        "{\"1\": \"FF0000\"}",
        "{\"1\": \"#ff0000 \"}",
        "{\"1\": \"#ff\\u000000\"}",
        "[[[0, 1]]]",
        "[[0, 1], [1, 2, 3]]",
        "[[[0, 1], [1, 2, 3], 5]]",
        "[[[0, 1, 2], [1, 2, 3]]]",
        "[[[1, 0], [1, 2, 3]]]",
        "[[[0, \"a\"], [1, 2, 3]]]",
        "[[[0, null], [1, 2, 3]]]",
        "[[[0, 1], \"#xyz\"]]",
        "[[[0, 1], [1, 2, 3]], 5]",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
        "{\"1\": [1, 2, 3e999]}",
        /* Beyond 64 bits json-c saturates integer literals: refused. */
        "[[[30, 222222222222222222222222222240], [0, 0, 255]]]",
        "[[[-100000000000000000000000, 0], [0, 0, 255]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_colormap *cm = (ts_colormap *)1;
        int rc = ts_colormap_parse_json(bad[i], &cm, &ctx);
        if (rc != -TS_EBAD_REQUEST)
            fprintf(stderr, "  accepted or wrong error for %s (rc %d)\n", bad[i], rc);
        CHECK_INT(rc, -TS_EBAD_REQUEST);
        CHECK(cm == NULL);
        CHECK_INT(ctx.status, 400);
        CHECK(strncmp(ctx.detail, "colormap: ", 10) == 0);
    }
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_colormap *cm = NULL;
    CHECK_INT(ts_colormap_parse_json(NULL, &cm, &ctx), -TS_EBAD_REQUEST);

    /* Trailing whitespace is fine. */
    cm = parse_ok(" {\"1\": [1, 2, 3]} \n");
    CHECK(cm != NULL);
    ts_colormap_free(cm);
}

static void json_messages(void)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_colormap *cm = NULL;
    ts_colormap_parse_json("{\"4\": [1, 2, 300]}", &cm, &ctx);
    CHECK_STR(ctx.detail, "colormap: entry \"4\": colour component 300 is not an integer in 0..255");
    ts_ctx_init(&ctx);
    ts_colormap_parse_json("[[[2, 1], [1, 2, 3]]]", &cm, &ctx);
    CHECK_STR(ctx.detail, "colormap: interval 0 has min 2 > max 1");
    ts_ctx_init(&ctx);
    ts_colormap_parse_json("{\"x\": [1, 2, 3]}", &cm, &ctx);
    CHECK_STR(ctx.detail, "colormap: key \"x\" is not a finite decimal number");
}

static void json_limits(void)
{
    /* TS_COLORMAP_MAX_ENTRIES entries parse; one more is refused. */
    size_t cap = 64 * (TS_COLORMAP_MAX_ENTRIES + 2);
    char *s = malloc(cap);
    CHECK(s != NULL);
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        n += (size_t)snprintf(s + n, cap - n, "{");
        for (int i = 0; i < TS_COLORMAP_MAX_ENTRIES + extra; i++)
            n += (size_t)snprintf(s + n, cap - n, "%s\"%d\": [1, 2, 3]", i ? "," : "", i * 3);
        snprintf(s + n, cap - n, "}");
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_colormap *cm = NULL;
        int rc = ts_colormap_parse_json(s, &cm, &ctx);
        CHECK_INT(rc, extra ? -TS_EBAD_REQUEST : 0);
        CHECK(extra ? cm == NULL : cm != NULL);
        if (cm) {
            float v = 3.0f * 4095;
            uint8_t out[4];
            ts_colormap_apply(cm, &v, NULL, 1, out);
            CHECK_RGBA(out, 1, 2, 3, 255);
        }
        ts_colormap_free(cm);
    }
    free(s);
}

static void palette(void)
{
    ts_rgba pal[256];
    for (int i = 0; i < 256; i++) {
        pal[i][0] = (uint8_t)i;
        pal[i][1] = 0;
        pal[i][2] = (uint8_t)(255 - i);
        pal[i][3] = i == 0 ? 0 : 255;
    }
    ts_colormap *cm = ts_colormap_from_palette(pal, 256);
    CHECK(cm && ts_colormap_kind_of(cm) == TS_COLORMAP_LUT);
    CHECK(ts_colormap_has_transparency(cm));
    float v[] = {0, 10, 10.9f, 300};
    uint8_t out[16];
    CHECK_INT(ts_colormap_apply(cm, v, NULL, 4, out), 0);
    CHECK_RGBA(out, 0, 0, 255, 0);
    CHECK_RGBA(out + 4, 10, 0, 245, 255);
    CHECK_RGBA(out + 8, 10, 0, 245, 255);
    CHECK_RGBA(out + 12, 255, 0, 0, 255);
    ts_colormap_free(cm);

    /* Any other size is a discrete map: values without an entry vanish. */
    cm = ts_colormap_from_palette(pal, 4);
    CHECK(cm && ts_colormap_kind_of(cm) == TS_COLORMAP_DISCRETE);
    float w[] = {3, 4, 2.5f};
    CHECK_INT(ts_colormap_apply(cm, w, NULL, 3, out), 0);
    CHECK_RGBA(out, 3, 0, 252, 255);
    CHECK_RGBA(out + 4, 0, 0, 0, 0);
    CHECK_RGBA(out + 8, 0, 0, 0, 0);
    ts_colormap_free(cm);

    CHECK(ts_colormap_from_palette(pal, 0) == NULL);
    CHECK(ts_colormap_from_palette(pal, -1) == NULL);
    CHECK(ts_colormap_from_palette(NULL, 4) == NULL);
    CHECK(ts_colormap_from_palette(pal, TS_COLORMAP_MAX_PALETTE + 1) == NULL);
    ts_colormap_free(NULL);
}

/* Small deterministic PRNG so failures reproduce. */
static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void fuzz_parse(void)
{
    static const char *seeds[] = {
        "{\"1\": [255, 0, 0, 255], \"2.5\": \"#00ff00\", \"-3\": \"#abc\"}",
        "[[[0, 10], [255, 0, 0, 255]], [[10, 20], \"#00FF0080\"]]",
        "{\"0\": \"#FFF\", \"255\": [1, 2, 3]}",
    };
    static const char alphabet[] = "{}[]\",:0123456789.-e#abcfFnul \\tr";
    char buf[256];
    int accepted = 0;
    for (int it = 0; it < 30000; it++) {
        size_t n;
        if (it % 3 == 0) {
            /* Arbitrary bytes, including high ones. */
            n = rnd() % 64;
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)(rnd() % 255 + 1);
        } else {
            /* Mutations of valid documents hit deeper paths. */
            const char *seed = seeds[rnd() % 3];
            n = strlen(seed);
            memcpy(buf, seed, n);
            int muts = 1 + (int)(rnd() % 4);
            for (int m = 0; m < muts; m++) {
                size_t pos = rnd() % (n + 1);
                int kind = (int)(rnd() % 3);
                if (kind == 0 && pos < n) {
                    buf[pos] = alphabet[rnd() % (sizeof alphabet - 1)];
                } else if (kind == 1 && n + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = alphabet[rnd() % (sizeof alphabet - 1)];
                    n++;
                } else if (pos < n) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
            }
        }
        buf[n] = '\0';
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_colormap *cm = NULL;
        int rc = ts_colormap_parse_json(buf, &cm, &ctx);
        CHECK(rc == 0 || rc == -TS_EBAD_REQUEST);
        CHECK((rc == 0) == (cm != NULL));
        if (cm) {
            accepted++;
            float v[4] = {0, 2.5f, -3, NAN};
            uint8_t out[16];
            CHECK_INT(ts_colormap_apply(cm, v, NULL, 4, out), 0);
        } else {
            CHECK(strncmp(ctx.detail, "colormap: ", 10) == 0);
        }
        ts_colormap_free(cm);
    }
    CHECK(accepted > 100);
}

TS_TEST_MAIN(TEST(named_count_and_order), TEST(named_lookup), TEST(named_values_literal),
             TEST(named_values_match_generator), TEST(reversed_tables), TEST(apply_lut),
             TEST(json_discrete), TEST(json_lut_vs_discrete), TEST(json_colour_forms),
             TEST(json_intervals), TEST(json_errors), TEST(json_messages), TEST(json_limits),
             TEST(palette), TEST(fuzz_parse))
