/* Band math: compile, band discovery, evaluation, masks, errors, threads. */
#include "ts_expression.h"
#include "ts_test.h"

#include <pthread.h>
#include <stdint.h>

/* A w x h raster whose band k (0-based) pixel i holds vals[k][i]. */
static int make_raster(ts_raster *r, int w, int h, int bands, const float *vals)
{
    if (ts_raster_alloc(r, w, h, bands) < 0)
        return -1;
    memcpy(r->data, vals, sizeof(float) * (size_t)w * h * bands);
    r->dtype_min = 0;
    r->dtype_max = 255;
    return 0;
}

static ts_expr *compile_ok(const char *s)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_expr *e = NULL;
    if (ts_expr_compile(s, &e, &ctx) != 0) {
        fprintf(stderr, "  compile('%s'): %s\n", s, ctx.detail);
        return NULL;
    }
    return e;
}

/* Compile must fail with 400 and a detail containing `needle`. */
static int compile_fails(const char *s, const char *needle)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_expr *e = (ts_expr *)1;
    int rc = ts_expr_compile(s, &e, &ctx);
    if (rc != -TS_EBAD_REQUEST || e != NULL || ctx.status != 400 ||
        strncmp(ctx.detail, "expression", 10) != 0 || (needle && !strstr(ctx.detail, needle))) {
        fprintf(stderr, "  compile('%.40s') rc=%d detail='%s' (wanted '%s')\n", s, rc, ctx.detail,
                needle ? needle : "");
        return 0;
    }
    return 1;
}

static void ndvi_one_output(void)
{
    ts_expr *e = compile_ok("(b4-b3)/(b4+b3)");
    CHECK(e);
    int idx[8];
    CHECK_INT(ts_expr_bands(e, idx, 8), 2);
    CHECK_INT(idx[0], 3);
    CHECK_INT(idx[1], 4);
    CHECK_INT(ts_expr_noutputs(e), 1);
    /* The reader supplies only b3 and b4, in ts_expr_bands order. */
    const float v[] = {10, 20, 30, 40, 50, 60, /* b3 */ 30, 20, 10, 80, 150, 0 /* b4 */};
    ts_raster in, out;
    CHECK(make_raster(&in, 3, 2, 2, v) == 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
    CHECK_INT(out.bands, 1);
    CHECK_INT(out.width, 3);
    CHECK_INT(out.height, 2);
    for (int i = 0; i < 6; i++) {
        double expect = (v[6 + i] - v[i]) / (v[6 + i] + v[i]);
        CHECK_INT(out.mask[i], 255);
        CHECK_NEAR(out.data[i], expect, 1e-6);
    }
    CHECK_NEAR(out.dtype_max, 255, 0);
    ts_raster_free(&out);
    ts_raster_free(&in);
    ts_expr_free(e);
}

static void three_outputs(void)
{
    ts_expr *e = compile_ok("b1;b2*2;b3/b1;");
    CHECK(e);
    CHECK_INT(ts_expr_noutputs(e), 3);
    CHECK_STR(ts_expr_block(e, 1), "b2*2");
    CHECK(ts_expr_block(e, 3) == NULL);
    const float v[] = {1, 2, 4, 8, /* b1 */ 3, 5, 7, 9, /* b2 */ 2, 2, 2, 2 /* b3 */};
    int idx[] = {1, 2, 3};
    ts_raster in, out;
    CHECK(make_raster(&in, 2, 2, 3, v) == 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
    CHECK_INT(out.bands, 3);
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(ts_raster_band(&out, 0)[i], v[i], 0);
        CHECK_NEAR(ts_raster_band(&out, 1)[i], v[4 + i] * 2, 0);
        CHECK_NEAR(ts_raster_band(&out, 2)[i], v[8 + i] / v[i], 1e-7);
    }
    ts_raster_free(&out);
    ts_raster_free(&in);
    ts_expr_free(e);
}

/* The reader may hand over bands in any order; in_band_idx says which. */
static void band_order_and_case(void)
{
    ts_expr *e = compile_ok("B2 - b1");
    CHECK(e);
    const float v[] = {100, 7}; /* band 2 first, then band 1 */
    int idx[] = {2, 1};
    ts_raster in, out;
    CHECK(make_raster(&in, 1, 1, 2, v) == 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
    CHECK_NEAR(out.data[0], 93, 0);
    ts_raster_free(&out);

    /* A band the expression needs but the reader did not supply: 500. */
    int wrong[] = {2, 5};
    ts_ctx_init(&ctx);
    CHECK(ts_expr_eval(e, &in, wrong, &out, &ctx) < 0);
    CHECK_INT(ctx.status, 500);
    CHECK(out.data == NULL);
    ts_raster_free(&in);
    ts_expr_free(e);
}

static void zero_denominator_masks(void)
{
    ts_expr *e = compile_ok("(b2-b1)/(b2+b1);b1");
    CHECK(e);
    const float v[] = {1, 0, -3, 2, /* b1 */ 3, 0, 3, 2 /* b2 */};
    int idx[] = {1, 2};
    ts_raster in, out;
    CHECK(make_raster(&in, 4, 1, 2, v) == 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
    CHECK_INT(out.mask[0], 255);
    CHECK_NEAR(out.data[0], 0.5, 1e-7);
    CHECK_INT(out.mask[1], 0); /* 0/0 = NaN */
    CHECK_INT(out.mask[2], 0); /* 6/0 = Inf */
    CHECK_INT(out.mask[3], 255);
    /* Masked pixels are zero in every band, including the valid second one. */
    CHECK_NEAR(ts_raster_band(&out, 1)[2], 0, 0);
    ts_raster_free(&out);
    ts_raster_free(&in);
    ts_expr_free(e);

    /* log of a negative and float overflow are masked too. */
    e = compile_ok("log(b1) * 1e300");
    CHECK(e);
    const float w[] = {-1, 1, 2};
    CHECK(make_raster(&in, 3, 1, 1, w) == 0);
    int one[] = {1};
    CHECK_INT(ts_expr_eval(e, &in, one, &out, &ctx), 0);
    CHECK_INT(out.mask[0], 0);
    CHECK_INT(out.mask[1], 255); /* log(1) = 0 */
    CHECK_INT(out.mask[2], 0);   /* 0.69e300 does not fit a float */
    ts_raster_free(&out);
    ts_raster_free(&in);
    ts_expr_free(e);
}

static void masked_inputs_stay_masked(void)
{
    ts_expr *e = compile_ok("b1 + 1");
    CHECK(e);
    const float v[] = {1, 2, 3, 4};
    int idx[] = {1};
    ts_raster in, out;
    CHECK(make_raster(&in, 2, 2, 1, v) == 0);
    in.mask[1] = 0;
    in.mask[2] = 0;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
    CHECK_INT(out.mask[0], 255);
    CHECK_INT(out.mask[1], 0);
    CHECK_INT(out.mask[2], 0);
    CHECK_INT(out.mask[3], 255);
    CHECK_NEAR(out.data[0], 2, 0);
    CHECK_NEAR(out.data[1], 0, 0);
    CHECK_NEAR(out.data[3], 5, 0);
    ts_raster_free(&out);
    ts_raster_free(&in);
    ts_expr_free(e);
}

static double eval1(const char *expr, float b1, float b2)
{
    ts_expr *e = compile_ok(expr);
    if (!e)
        return NAN;
    const float v[] = {b1, b2};
    int idx[] = {1, 2};
    ts_raster in, out;
    make_raster(&in, 1, 1, 2, v);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    double r = NAN;
    if (ts_expr_eval(e, &in, idx, &out, &ctx) == 0) {
        r = out.mask[0] ? out.data[0] : NAN;
        ts_raster_free(&out);
    }
    ts_raster_free(&in);
    ts_expr_free(e);
    return r;
}

/* muparser built-ins and the numexpr spellings rio-tiler users write. */
static void functions(void)
{
    CHECK_NEAR(eval1("sqrt(b1) + abs(b2)", 16, -3), 7, 1e-6);
    CHECK_NEAR(eval1("min(b1, b2, 0) + max(b1, b2)", 5, 9), 9, 0);
    CHECK_NEAR(eval1("log(b1)", (float)M_E, 0), 1, 1e-6);
    CHECK_NEAR(eval1("b1 > b2 ? b1 : b2", 2, 5), 5, 0);
    CHECK_NEAR(eval1("b1**2 + b2^2", 3, 4), 25, 0);
    CHECK_NEAR(eval1("-b1**2", 3, 0), -9, 0); /* as in Python: -(3**2) */
    CHECK_NEAR(eval1("where(b1 > 1, b1, 0)", 0.5, 0), 0, 0);
    CHECK_NEAR(eval1("where((b1 > 0) & (b2 > 0), 1, 2)", 1, 1), 1, 0);
    CHECK_NEAR(eval1("(b1 > 0) | (b2 > 0)", -1, 1), 1, 0);
    CHECK_NEAR(eval1("arctan2(b1, b2)", 1, 1), M_PI / 4, 1e-6);
    CHECK_NEAR(eval1("floor(b1) + ceil(b2)", 1.5, 1.5), 3, 0);
    CHECK_NEAR(eval1("b1 * _pi", 1, 0), M_PI, 1e-6);
}

static void band_discovery(void)
{
    ts_expr *e = compile_ok("b10 + b2*B10 - sqrt(b7);b2");
    CHECK(e);
    int idx[3] = {0, 0, 0};
    CHECK_INT(ts_expr_bands(e, idx, 3), 3);
    CHECK_INT(idx[0], 2);
    CHECK_INT(idx[1], 7);
    CHECK_INT(idx[2], 10);
    int small[1];
    CHECK_INT(ts_expr_bands(e, small, 1), 3);
    CHECK_INT(small[0], 2);
    ts_expr_free(e);
}

static void syntax_errors(void)
{
    CHECK(compile_fails("b1+", "Unexpected end of expression"));
    CHECK(compile_fails("(b1", "parenthes"));
    CHECK(compile_fails("b1 b2", "Unexpected"));
    CHECK(compile_fails("b1 + nope", "nope"));
    CHECK(compile_fails("b1;b2+*", "band 2"));
    CHECK(compile_fails("sqrt(b1, b2)", NULL));
    CHECK(compile_fails("b1, b2", "';'"));
    CHECK(compile_fails("1 + 2", "could not find any valid bands"));
    CHECK(compile_fails("b0 + 1", "1-based"));
    CHECK(compile_fails("b01", "leading zeros"));
    CHECK(compile_fails("b9999999", "too large"));
    CHECK(compile_fails("", NULL));
    CHECK(compile_fails(";;", NULL));
    CHECK(compile_fails("b1 + \"x\"", "string"));
    CHECK(compile_fails("b1 + \xc3\xa9", "invalid character"));
    CHECK(compile_fails(NULL, "missing"));
}

static void limits(void)
{
    char buf[TS_EXPR_MAX_LEN + 64];
    /* Exactly at the length limit: accepted. */
    memset(buf, ' ', TS_EXPR_MAX_LEN);
    memcpy(buf, "b1", 2);
    buf[TS_EXPR_MAX_LEN] = '\0';
    ts_expr *e = compile_ok(buf);
    CHECK(e);
    ts_expr_free(e);
    buf[TS_EXPR_MAX_LEN] = ' ';
    buf[TS_EXPR_MAX_LEN + 1] = '\0';
    CHECK(compile_fails(buf, "longer than"));

    /* 32 outputs fine, 33 not. */
    buf[0] = '\0';
    for (int i = 0; i < 32; i++)
        strcat(buf, "b1;");
    e = compile_ok(buf);
    CHECK(e);
    CHECK_INT(ts_expr_noutputs(e), 32);
    ts_expr_free(e);
    strcat(buf, "b1");
    CHECK(compile_fails(buf, "output bands"));

    /* 64 distinct bands fine, 65 not. */
    size_t n = 0;
    for (int i = 1; i <= 64; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%sb%d", i > 1 ? "+" : "", i);
    e = compile_ok(buf);
    CHECK(e);
    int idx[TS_EXPR_MAX_BANDS];
    CHECK_INT(ts_expr_bands(e, idx, TS_EXPR_MAX_BANDS), 64);
    CHECK_INT(idx[63], 64);
    ts_expr_free(e);
    snprintf(buf + n, sizeof buf - n, "+b65");
    CHECK(compile_fails(buf, "distinct bands"));

    /* Deep nesting within the length limit parses or fails, but returns. */
    memset(buf, '(', 500);
    memcpy(buf + 500, "b1", 2);
    memset(buf + 502, ')', 500);
    buf[1002] = '\0';
    e = compile_ok(buf);
    CHECK(e);
    ts_expr_free(e);
}

/* Arbitrary bytes and token soup: every input compiles or fails with 400,
 * never crashes, leaks (checked under ASan) or hangs. Deterministic PRNG. */
static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A random, mostly well-formed expression (so muparser's deeper paths,
 * such as ternaries inside multi-argument functions, get exercised). */
static void gen_expr(char *buf, size_t *n, size_t cap, int depth)
{
    static const char *bin[] = {"+",  "-",  "*",  "/",  "^",  "**", "<",
                                ">=", "==", "!=", "&&", "||", "&",  "|"};
    static const char *fn1[] = {"sqrt", "abs", "log", "exp", "sin", "arctan", "floor", "rint"};
    static const char *fnn[] = {"min", "max", "sum", "avg"};
    char tmp[32];
    const char *lit = NULL;
    uint32_t pick = depth > 2 ? rng() % 2 : rng() % 8;
#define EMIT(s)                                                                                    \
    do {                                                                                           \
        const char *_s = (s);                                                                      \
        size_t _l = strlen(_s);                                                                    \
        if (*n + _l < cap) {                                                                       \
            memcpy(buf + *n, _s, _l);                                                              \
            *n += _l;                                                                              \
        }                                                                                          \
    } while (0)
    switch (pick) {
    case 0:
        snprintf(tmp, sizeof tmp, "b%u", 1 + rng() % 5);
        lit = tmp;
        break;
    case 1:
        snprintf(tmp, sizeof tmp, "%g", (double)(rng() % 2000) / 7.0 - 100);
        lit = tmp;
        break;
    case 2:
        EMIT("(");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(bin[rng() % (sizeof bin / sizeof bin[0])]);
        gen_expr(buf, n, cap, depth + 1);
        EMIT(")");
        return;
    case 3:
        EMIT(fn1[rng() % (sizeof fn1 / sizeof fn1[0])]);
        EMIT("(");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(")");
        return;
    case 4: {
        EMIT(fnn[rng() % (sizeof fnn / sizeof fnn[0])]);
        EMIT("(");
        int args = 1 + (int)(rng() % 4);
        for (int i = 0; i < args; i++) {
            if (i)
                EMIT(",");
            gen_expr(buf, n, cap, depth + 1);
        }
        EMIT(")");
        return;
    }
    case 5:
        gen_expr(buf, n, cap, depth + 1);
        EMIT("?");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(":");
        gen_expr(buf, n, cap, depth + 1);
        return;
    case 6:
        EMIT("where(");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(",");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(",");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(")");
        return;
    default:
        EMIT("-(");
        gen_expr(buf, n, cap, depth + 1);
        EMIT(")");
        return;
    }
    EMIT(lit);
#undef EMIT
}

static void garbage_rejected(void)
{
    static const char *tok[] = {
        "b1",  "b2", "B3",   "(",   ")",   "+",   "-",    "*",     "/",     "^",   "?",
        ":",   ",",  ";",    "<",   ">",   "=",   "==",   "&&",    "||",    "&",   "|",
        "**",  "!",  "sqrt", "min", "max", "sum", "avg",  "where", "if",    "0",   "1.5",
        "1e9", ".",  "_pi",  " ",   "b0",  "bx",  "b99",  "log",   "atan2", "\"",  "'",
        "$",   "#",  "{",    "}",   "[",   "]",   "0x1F", "e",     "rint",  "sign"};
    const int ntok = (int)(sizeof tok / sizeof tok[0]);
    char buf[TS_EXPR_MAX_LEN + 200];
    int ok = 0, bad = 0;
    int iters = getenv("TS_FUZZ_ITERS") ? atoi(getenv("TS_FUZZ_ITERS")) : 20000;
    for (int iter = 0; iter < iters; iter++) {
        size_t n = 0;
        if (iter % 4 == 0) {
            /* Raw bytes, NUL-free binary junk. */
            size_t len = rng() % 64;
            for (size_t i = 0; i < len; i++) {
                char c = (char)(rng() & 0xff);
                buf[n++] = c ? c : 'x';
            }
        } else if (iter % 4 == 1) {
            int ntoks = (int)(rng() % 40);
            for (int i = 0; i < ntoks; i++) {
                const char *t = tok[rng() % (uint32_t)ntok];
                size_t tl = strlen(t);
                if (n + tl >= TS_EXPR_MAX_LEN + 100)
                    break;
                memcpy(buf + n, t, tl);
                n += tl;
            }
        } else {
            /* Generated expressions, some with ';' blocks, then a few
             * random single-character mutations. */
            int blocks = 1 + (int)(rng() % 3);
            for (int k = 0; k < blocks; k++) {
                if (k)
                    buf[n++] = ';';
                gen_expr(buf, &n, TS_EXPR_MAX_LEN + 100, 0);
            }
            int muts = iter % 4 == 3 ? (int)(rng() % 4) : 0;
            static const char mchars[] = "()?:,;+-*/^<>=&|!b1 ";
            for (int m = 0; m < muts && n > 0; m++) {
                size_t at = rng() % n;
                if (rng() % 2)
                    buf[at] = mchars[rng() % (sizeof mchars - 1)];
                else
                    memmove(buf + at, buf + at + 1, n-- - at - 1);
            }
        }
        buf[n] = '\0';
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_expr *e = NULL;
        int rc = ts_expr_compile(buf, &e, &ctx);
        if (rc == 0) {
            CHECK(e != NULL);
            /* Whatever compiled must also evaluate without incident. */
            int idx[TS_EXPR_MAX_BANDS];
            int nb = ts_expr_bands(e, idx, TS_EXPR_MAX_BANDS);
            ts_raster in, out;
            CHECK(ts_raster_alloc(&in, 2, 2, nb) == 0);
            for (size_t i = 0; i < (size_t)4 * nb; i++)
                in.data[i] = (float)i - 3;
            ts_ctx_init(&ctx);
            if (ts_expr_eval(e, &in, idx, &out, &ctx) == 0)
                ts_raster_free(&out);
            ts_raster_free(&in);
            ts_expr_free(e);
            ok++;
        } else {
            CHECK(e == NULL);
            CHECK_INT(ctx.status, 400);
            CHECK(strncmp(ctx.detail, "expression", 10) == 0);
            bad++;
        }
    }
    printf("     garbage: %d compiled, %d rejected\n", ok, bad);
    CHECK(ok > iters / 20 && bad > iters / 20);
}

typedef struct thread_arg {
    const ts_expr *e;
    const ts_raster *in;
    const int *idx;
    int failures;
} thread_arg;

static void *eval_thread(void *p)
{
    thread_arg *a = p;
    for (int rep = 0; rep < 40; rep++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_raster out;
        if (ts_expr_eval(a->e, a->in, a->idx, &out, &ctx) != 0) {
            a->failures++;
            continue;
        }
        size_t npx = (size_t)out.width * out.height;
        const float *b3 = a->in->data, *b4 = a->in->data + npx;
        for (size_t i = 0; i < npx; i++) {
            float expect = (b4[i] - b3[i]) / (b4[i] + b3[i]);
            if (fabsf(out.data[i] - expect) > 1e-6f || out.mask[i] != 255 ||
                fabsf(ts_raster_band(&out, 1)[i] - b3[i] * 2) > 0) {
                a->failures++;
                break;
            }
        }
        ts_raster_free(&out);
    }
    return NULL;
}

/* One compiled expression evaluated from two threads at once. */
static void concurrent_eval(void)
{
    ts_expr *e = compile_ok("(b4-b3)/(b4+b3);b3*2");
    CHECK(e);
    int idx[2];
    ts_expr_bands(e, idx, 2);
    ts_raster in;
    CHECK(ts_raster_alloc(&in, 64, 64, 2) == 0);
    for (size_t i = 0; i < 64 * 64; i++) {
        in.data[i] = (float)(i % 97) + 1;
        in.data[64 * 64 + i] = (float)(i % 89) + 2;
    }
    thread_arg args[2] = {{e, &in, idx, 0}, {e, &in, idx, 0}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        CHECK(pthread_create(&th[t], NULL, eval_thread, &args[t]) == 0);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    CHECK_INT(args[0].failures, 0);
    CHECK_INT(args[1].failures, 0);
    ts_raster_free(&in);
    ts_expr_free(e);
}

/* Throughput of a 256x256 NDVI, handle creation included (printed for the
 * record; asserted only loosely so sanitizer builds pass). */
static void bench_ndvi_256(void)
{
    ts_expr *e = compile_ok("(b4-b3)/(b4+b3)");
    CHECK(e);
    int idx[2];
    ts_expr_bands(e, idx, 2);
    ts_raster in;
    CHECK(ts_raster_alloc(&in, 256, 256, 2) == 0);
    for (size_t i = 0; i < 256 * 256; i++) {
        in.data[i] = (float)(i % 1000);
        in.data[256 * 256 + i] = (float)(i % 777) + 1;
    }
    int reps = 20;
    uint64_t t0 = ts_now_ns();
    for (int r = 0; r < reps; r++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_raster out;
        CHECK_INT(ts_expr_eval(e, &in, idx, &out, &ctx), 0);
        ts_raster_free(&out);
    }
    uint64_t t1 = ts_now_ns();
    for (int r = 0; r < 200; r++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_expr *c = NULL;
        CHECK_INT(ts_expr_compile("(b4-b3)/(b4+b3)", &c, &ctx), 0);
        ts_expr_free(c);
    }
    uint64_t t2 = ts_now_ns();
    double mpix = 256.0 * 256.0 * reps / ((double)(t1 - t0) / 1e9) / 1e6;
    printf("     ndvi 256x256: %.1f Mpix/s (%.2f ms/tile); compile: %.1f us\n", mpix,
           (double)(t1 - t0) / 1e6 / reps, (double)(t2 - t1) / 1e3 / 200);
    CHECK(mpix > 0.5);
    ts_raster_free(&in);
    ts_expr_free(e);
}

TS_TEST_MAIN(TEST(ndvi_one_output), TEST(three_outputs), TEST(band_order_and_case),
             TEST(zero_denominator_masks), TEST(masked_inputs_stay_masked), TEST(functions),
             TEST(band_discovery), TEST(syntax_errors), TEST(limits), TEST(garbage_rejected),
             TEST(concurrent_eval), TEST(bench_ndvi_256))
