/* rio-color's formula language: parsing, arithmetic and errors. */
#include "ts_color_formula.h"
#include "ts_test.h"

#include <json-c/json.h>
#include <stdint.h>

static ts_color_formula *parse_ok(const char *s)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_color_formula *f = NULL;
    if (ts_color_formula_parse(s, &f, &ctx) != 0)
        fprintf(stderr, "  parse of '%s' failed: %s\n", s, ctx.detail);
    return f;
}

/* Apply formula to one RGB pixel. */
static void apply1(const char *formula, int r, int g, int b, uint8_t out[3])
{
    out[0] = (uint8_t)r;
    out[1] = (uint8_t)g;
    out[2] = (uint8_t)b;
    ts_color_formula *f = parse_ok(formula);
    ts_color_formula_apply(f, out, 1, 3);
    ts_color_formula_free(f);
}

/* The generator (scripts/gen_colormaps.py) re-implements rio-color and
 * rio-tiler's apply_color_formula in numpy and records, for 768 pixels (every
 * grey level, a ramp, random colours), the output of each formula. */
static void matches_numpy_reference(void)
{
    const char *root = getenv("TS_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/e2e/data/colormaps_expected.json", root ? root : ".");
    json_object *doc = json_object_from_file(path);
    CHECK(doc != NULL);
    json_object *cf = NULL, *input = NULL, *cases = NULL;
    CHECK(json_object_object_get_ex(doc, "color_formula", &cf));
    CHECK(json_object_object_get_ex(cf, "input", &input));
    CHECK(json_object_object_get_ex(cf, "cases", &cases));
    size_t nval = json_object_array_length(input);
    size_t npix = nval / 3;
    uint8_t *rgb = malloc(nval), *rgba = malloc(npix * 4);
    int failed = 0;
    for (size_t c = 0; c < json_object_array_length(cases) && !failed; c++) {
        json_object *cs = json_object_array_get_idx(cases, c), *jf, *jout;
        json_object_object_get_ex(cs, "formula", &jf);
        json_object_object_get_ex(cs, "output", &jout);
        const char *formula = json_object_get_string(jf);
        for (size_t i = 0; i < npix; i++) {
            for (int k = 0; k < 3; k++) {
                int v = json_object_get_int(json_object_array_get_idx(input, i * 3 + (size_t)k));
                rgb[i * 3 + (size_t)k] = (uint8_t)v;
                rgba[i * 4 + (size_t)k] = (uint8_t)v;
            }
            rgba[i * 4 + 3] = (uint8_t)(i * 37);
        }
        ts_color_formula *f = parse_ok(formula);
        if (!f) {
            failed = 1;
            break;
        }
        ts_color_formula_apply(f, rgb, npix, 3);
        ts_color_formula_apply(f, rgba, npix, 4);
        ts_color_formula_free(f);
        int mismatches = 0;
        for (size_t i = 0; i < npix; i++) {
            for (int k = 0; k < 3; k++) {
                int want = json_object_get_int(json_object_array_get_idx(jout, i * 3 + (size_t)k));
                if (rgb[i * 3 + (size_t)k] != want || rgba[i * 4 + (size_t)k] != want) {
                    if (mismatches++ < 5)
                        fprintf(stderr, "  '%s' pixel %zu band %d: got %d/%d, expected %d\n",
                                formula, i, k, rgb[i * 3 + (size_t)k], rgba[i * 4 + (size_t)k],
                                want);
                }
            }
            if (rgba[i * 4 + 3] != (uint8_t)(i * 37))
                mismatches++; /* alpha must be untouched */
        }
        failed = mismatches != 0;
    }
    free(rgb);
    free(rgba);
    json_object_put(doc);
    CHECK(!failed);
}

/* Values worked out by hand from rio-color's formulas; each operation reads
 * v / 255 and writes trunc(result * 255). */
static void hand_computed(void)
{
    uint8_t o[3];
    /* gamma 2: (64/255)^(1/2) = 0.50098 -> 127.75 -> 127; 0 and 255 are fixed
     * points; the band list limits the change to R. */
    apply1("gamma r 2", 64, 64, 255, o);
    CHECK_INT(o[0], 127);
    CHECK_INT(o[1], 64);
    CHECK_INT(o[2], 255);
    apply1("gamma RGB 2", 0, 255, 64, o);
    CHECK_INT(o[0], 0);
    CHECK_INT(o[1], 255);
    CHECK_INT(o[2], 127);
    /* gamma 0.5: (128/255)^2 = 0.25197 -> 64.25 -> 64. */
    apply1("gamma G 0.5", 0, 128, 0, o);
    CHECK_INT(o[1], 64);
    /* sigmoidal contrast 0 is the identity, and the curve keeps 0 and 1. */
    apply1("sigmoidal RGB 0 0.5", 12, 130, 250, o);
    CHECK_INT(o[0], 12);
    CHECK_INT(o[1], 130);
    CHECK_INT(o[2], 250);
    apply1("sigmoidal RGB 10 0.5", 0, 255, 0, o);
    CHECK_INT(o[0], 0);
    CHECK_INT(o[1], 255);
    /* sigmoidal 10 at 0.5, x = 1/255: (1/(1+e^(10(0.5-x))) - 1/(1+e^5)) /
     * (1/(1+e^-5) - 1/(1+e^5)) = (0.0069594 - 0.0066929) / 0.9866143 =
     * 0.00027 -> 0.069 -> 0: a dark pixel gets darker. */
    apply1("sigmoidal RGB 10 0.5", 1, 1, 1, o);
    CHECK_INT(o[0], 0);
    /* saturation 0 removes chroma: R, G and B end up equal but for the
     * rounding of rio-color's XYZ matrices (within one unit). */
    apply1("saturation 0", 200, 40, 90, o);
    CHECK(abs(o[0] - o[1]) <= 1 && abs(o[1] - o[2]) <= 1);
    /* A grey pixel has no chroma to scale. */
    apply1("saturation 3", 128, 128, 128, o);
    CHECK(abs(o[0] - 128) <= 1 && abs(o[1] - 128) <= 1 && abs(o[2] - 128) <= 1);
}

static void same_result(const char *a, const char *b)
{
    uint8_t pa[256 * 3], pb[256 * 3];
    for (int i = 0; i < 256 * 3; i++)
        pa[i] = pb[i] = (uint8_t)((i * 73) % 256);
    ts_color_formula *fa = parse_ok(a), *fb = parse_ok(b);
    ts_color_formula_apply(fa, pa, 256, 3);
    ts_color_formula_apply(fb, pb, 256, 3);
    ts_color_formula_free(fa);
    ts_color_formula_free(fb);
    if (memcmp(pa, pb, sizeof pa) != 0) {
        fprintf(stderr, "  '%s' and '%s' differ\n", a, b);
        ts_test_failed_flag = 1;
    }
}

static void syntax_like_rio_color(void)
{
    /* Commas are deleted, not turned into separators. */
    same_result("gamma r 1.5, gamma g 2", "gamma r 1.5 gamma g 2");
    same_result("gamma RGB 1,5", "gamma RGB 15");
    /* Names any case, bands any case and order, digits for bands. */
    same_result("GAMMA rgb 1.5", "gamma BGR 1.5");
    same_result("gamma 123 1.5", "gamma rgb 1.5");
    same_result("Sigmoidal Rg 10 0.3", "sigmoidal 12 10 0.3");
    /* Extra whitespace is harmless. */
    same_result("  gamma \t r   1.5\n ", "gamma r 1.5");
    /* Each operation truncates to uint8 before the next, so two gammas are
     * not one gamma of the product. */
    uint8_t o1[3], o2[3];
    apply1("gamma r 1.5 gamma r 1.5", 100, 0, 0, o1);
    apply1("gamma r 1.5", 100, 0, 0, o2);
    apply1("gamma r 1.5", o2[0], 0, 0, o2);
    CHECK_INT(o1[0], o2[0]);
    /* The chain survives a saturation between per-channel stages. */
    apply1("gamma r 1.5 saturation 1.3 gamma r 1.5", 100, 50, 20, o1);
    apply1("gamma r 1.5", 100, 50, 20, o2);
    apply1("saturation 1.3", o2[0], o2[1], o2[2], o2);
    apply1("gamma r 1.5", o2[0], o2[1], o2[2], o2);
    CHECK(memcmp(o1, o2, 3) == 0);
}

static void channels(void)
{
    ts_color_formula *f = parse_ok("gamma rgb 2 saturation 1.5");
    CHECK(f != NULL);
    uint8_t px[8] = {64, 64, 64, 7, 10, 20, 30, 200};
    ts_color_formula_apply(f, px, 2, 4);
    CHECK_INT(px[0], 127);
    CHECK_INT(px[3], 7);
    CHECK_INT(px[7], 200);
    /* Grey or grey+alpha must be expanded by the caller: left unchanged. */
    uint8_t grey[2] = {64, 64};
    ts_color_formula_apply(f, grey, 2, 1);
    ts_color_formula_apply(f, grey, 1, 2);
    CHECK_INT(grey[0], 64);
    CHECK_INT(grey[1], 64);
    ts_color_formula_apply(NULL, grey, 2, 3);
    ts_color_formula_apply(f, NULL, 2, 3);
    ts_color_formula_free(f);
    ts_color_formula_free(NULL);
}

static void errors(void)
{
    static const char *bad[] = {
        "",
        "   ",
        ",,,",
        "foo",
        "foo 1 2",
        "1.5 gamma RGB",
        "gamma",
        "gamma RGB",
        "gamma 1.5",
        "gamma RGB x",
        "gamma RGBA 1.5",
        "gamma 4 1.5",
        "gamma 0 1.5",
        "gamma R-G 1.5",
        "gamma RGB 0",
        "gamma RGB -1",
        "gamma RGB 1.5 2",
        "gamma RGB nan",
        "gamma RGB inf",
        "gamma RGB 0x10",
        "gamma RGB 1e999",
        "gamma RGB 1.5x",
        "sigmoidal RGB 10",
        "sigmoidal RGB 10 0.5 1",
        "sigmoidal RGB 10 1.5",
        "sigmoidal RGB 10 -0.1",
        "sigmoidal 10 0.5",
        "saturation",
        "saturation 1 2",
        "saturation RGB 1.2",
        "saturation x",
        "gamma RGB 1.5 saturation",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_color_formula *f = (ts_color_formula *)1;
        int rc = ts_color_formula_parse(bad[i], &f, &ctx);
        if (rc != -TS_EBAD_REQUEST)
            fprintf(stderr, "  accepted '%s'\n", bad[i]);
        CHECK_INT(rc, -TS_EBAD_REQUEST);
        CHECK(f == NULL);
        CHECK_INT(ctx.status, 400);
        CHECK(strncmp(ctx.detail, "color_formula: ", 15) == 0);
    }

    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_color_formula *f = NULL;
    ts_color_formula_parse("gamma RGB 0", &f, &ctx);
    CHECK_STR(ctx.detail, "color_formula: gamma must be > 0, got 0");
    ts_ctx_init(&ctx);
    ts_color_formula_parse("contrast RGB 2", &f, &ctx);
    CHECK_STR(ctx.detail, "color_formula: 'contrast' is not a valid operation (expected gamma, "
                          "sigmoidal or saturation)");
    ts_ctx_init(&ctx);
    ts_color_formula_parse("gamma 4 1.5", &f, &ctx);
    CHECK_STR(ctx.detail, "color_formula: gamma BAND must be between 1 and 3, got '4'");
    ts_ctx_init(&ctx);
    CHECK_INT(ts_color_formula_parse(NULL, &f, &ctx), -TS_EBAD_REQUEST);

    /* Limits: length and operation count. */
    char *s = malloc(TS_COLOR_FORMULA_MAX_LEN + 2);
    memset(s, ' ', TS_COLOR_FORMULA_MAX_LEN + 1);
    s[TS_COLOR_FORMULA_MAX_LEN + 1] = '\0';
    ts_ctx_init(&ctx);
    CHECK_INT(ts_color_formula_parse(s, &f, &ctx), -TS_EBAD_REQUEST);
    s[0] = '\0';
    for (int i = 0; i < TS_COLOR_FORMULA_MAX_OPS; i++)
        strcat(s, "gamma r 1.1 ");
    f = parse_ok(s);
    CHECK(f != NULL);
    ts_color_formula_free(f);
    strcat(s, "gamma r 1.1");
    ts_ctx_init(&ctx);
    CHECK_INT(ts_color_formula_parse(s, &f, &ctx), -TS_EBAD_REQUEST);
    free(s);
}

static uint32_t rng_state = 99;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void fuzz_parse(void)
{
    static const char *words[] = {"gamma", "sigmoidal", "saturation", "rgb", "R", "gb", "13",
                                  "1.5", "0.3", "-2", "10", "0", ",", " ", "\t", "x", "1e3",
                                  "nan", "4", "", "1,5", "GAMMA", "9e307"};
    char buf[512];
    uint8_t px[4 * 16];
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = 0;
        if (it % 4 == 0) {
            size_t len = rnd() % 80;
            for (size_t i = 0; i < len; i++)
                buf[n++] = (char)(rnd() % 255 + 1);
        } else if (it % 4 == 1) {
            /* Mostly well-formed chains with occasional bad values. */
            static const char *ops[] = {"gamma %s %s ", "sigmoidal %s %s %s ", "saturation %s "};
            static const char *bands[] = {"rgb", "R", "gb", "13", "b"};
            static const char *nums[] = {"1.5", "0.3", "10", "0", "-3", "0.5", "1", "2.2"};
            int nops = 1 + (int)(rnd() % 4);
            for (int k = 0; k < nops && n < sizeof buf - 64; k++) {
                int op = (int)(rnd() % 3);
                const char *b = bands[rnd() % 5];
                const char *a1 = nums[rnd() % 8], *a2 = nums[rnd() % 8];
                if (op == 0)
                    n += (size_t)snprintf(buf + n, sizeof buf - n, ops[0], b, a1);
                else if (op == 1)
                    n += (size_t)snprintf(buf + n, sizeof buf - n, ops[1], b, a1, a2);
                else
                    n += (size_t)snprintf(buf + n, sizeof buf - n, ops[2], a1);
            }
        } else {
            int nw = (int)(rnd() % 12);
            for (int w = 0; w < nw; w++) {
                const char *word = words[rnd() % (sizeof words / sizeof words[0])];
                size_t l = strlen(word);
                if (n + l + 2 >= sizeof buf)
                    break;
                memcpy(buf + n, word, l);
                n += l;
                buf[n++] = ' ';
            }
        }
        buf[n] = '\0';
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_color_formula *f = NULL;
        int rc = ts_color_formula_parse(buf, &f, &ctx);
        CHECK(rc == 0 || rc == -TS_EBAD_REQUEST);
        CHECK((rc == 0) == (f != NULL));
        if (f) {
            accepted++;
            for (size_t i = 0; i < sizeof px; i++)
                px[i] = (uint8_t)rnd();
            ts_color_formula_apply(f, px, 16, 4);
        }
        ts_color_formula_free(f);
    }
    CHECK(accepted > 100);
}

TS_TEST_MAIN(TEST(matches_numpy_reference), TEST(hand_computed), TEST(syntax_like_rio_color),
             TEST(channels), TEST(errors), TEST(fuzz_parse))
