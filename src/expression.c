/*
 * Band math on top of muparser's C API (see ts_expression.h).
 *
 * Thread safety and speed. A muparser handle holds the parsed bytecode *and*
 * mutable evaluation state (its value stack, the bound variable pointers), so
 * one handle cannot serve two threads. ts_expr therefore keeps only the
 * validated text, and every ts_expr_eval() builds a private handle, binds the
 * band variables to locals and releases it at the end. Measured on the
 * 2-core build box: creating a handle and parsing one block costs ~17-25 us,
 * against ~1.1 ms to evaluate `(b4-b3)/(b4+b3)` over a 256x256 tile (~60
 * Mpix/s per thread), i.e. about 2%; per-thread cached handles would save
 * that but need thread-local lifetime management tied to each expression.
 *
 * Why mupEval per pixel rather than mupEvalBulk: Debian's libmuparser is built
 * with OpenMP, and mupEvalBulk opens an OpenMP parallel region on every call.
 * On an idle box that uses every core for one tile (~90 Mpix/s on 2 cores),
 * but with the cores already busy (the normal state of a tile server's worker
 * pool) the spinning OpenMP team collapsed to 7-11 Mpix/s in our measurements,
 * and it stacks one team per concurrent request. Per-pixel mupEval on one
 * core is predictable (~60 Mpix/s, the same as bulk with OMP_NUM_THREADS=1),
 * skips masked pixels and needs no float->double band copies.
 *
 * Error handling quirk: mupError() returns *and clears* the handle's error
 * flag, so it is read exactly once per check and the message fetched after.
 */
#include "ts_expression.h"

#include <muParserDLL.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_expr {
    int noutputs;
    int nbands;
    int bands[TS_EXPR_MAX_BANDS];           /* sorted, distinct, 1-based */
    const char *block[TS_EXPR_MAX_OUTPUTS]; /* point into text */
    char text[];                            /* lower-cased copy, ';' replaced by NUL */
};

/* muparser operator precedences (muParserDef.h EOprtPrecedence); the C API
 * header does not export the enum. */
enum { PREC_LOR = 1, PREC_LAND = 2, PREC_POW = 7 };

/* numexpr spellings rio-tiler users are used to. All are pure, so muparser
 * may fold them over constants. */
static muFloat_t fn_where(muFloat_t c, muFloat_t a, muFloat_t b)
{
    return c != 0.0 ? a : b;
}
static muFloat_t op_pow(muFloat_t a, muFloat_t b)
{
    return pow(a, b);
}
static muFloat_t op_and(muFloat_t a, muFloat_t b)
{
    return (a != 0.0 && b != 0.0) ? 1.0 : 0.0;
}
static muFloat_t op_or(muFloat_t a, muFloat_t b)
{
    return (a != 0.0 || b != 0.0) ? 1.0 : 0.0;
}
static muFloat_t fn_asin(muFloat_t v)
{
    return asin(v);
}
static muFloat_t fn_acos(muFloat_t v)
{
    return acos(v);
}
static muFloat_t fn_atan(muFloat_t v)
{
    return atan(v);
}
static muFloat_t fn_asinh(muFloat_t v)
{
    return asinh(v);
}
static muFloat_t fn_acosh(muFloat_t v)
{
    return acosh(v);
}
static muFloat_t fn_atanh(muFloat_t v)
{
    return atanh(v);
}
static muFloat_t fn_log1p(muFloat_t v)
{
    return log1p(v);
}
static muFloat_t fn_expm1(muFloat_t v)
{
    return expm1(v);
}
static muFloat_t fn_ceil(muFloat_t v)
{
    return ceil(v);
}
static muFloat_t fn_floor(muFloat_t v)
{
    return floor(v);
}
static muFloat_t fn_atan2(muFloat_t y, muFloat_t x)
{
    return atan2(y, x);
}

/* A handle with our functions and the expression's band variables bound to
 * vars[0..nbands-1]; the caller releases it with mupRelease. */
static int parser_new(const ts_expr *e, double *vars, muParserHandle_t *out, ts_ctx *ctx)
{
    *out = NULL;
    muParserHandle_t h = mupCreate(muBASETYPE_FLOAT);
    if (!h)
        return ts_ctx_error(ctx, TS_ENOMEM, "expression: cannot create parser");
    mupDefineFun3(h, "where", fn_where, 1);
    mupDefineFun1(h, "arcsin", fn_asin, 1);
    mupDefineFun1(h, "arccos", fn_acos, 1);
    mupDefineFun1(h, "arctan", fn_atan, 1);
    mupDefineFun1(h, "arcsinh", fn_asinh, 1);
    mupDefineFun1(h, "arccosh", fn_acosh, 1);
    mupDefineFun1(h, "arctanh", fn_atanh, 1);
    mupDefineFun1(h, "log1p", fn_log1p, 1);
    mupDefineFun1(h, "expm1", fn_expm1, 1);
    mupDefineFun1(h, "ceil", fn_ceil, 1);
    mupDefineFun1(h, "floor", fn_floor, 1);
    mupDefineFun2(h, "arctan2", fn_atan2, 1);
    mupDefineFun2(h, "atan2", fn_atan2, 1);
    mupDefineOprt(h, "**", op_pow, PREC_POW, muOPRT_ASCT_RIGHT, 1);
    mupDefineOprt(h, "&", op_and, PREC_LAND, muOPRT_ASCT_LEFT, 1);
    mupDefineOprt(h, "|", op_or, PREC_LOR, muOPRT_ASCT_LEFT, 1);
    for (int j = 0; j < e->nbands; j++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", e->bands[j]);
        mupDefineVar(h, name, &vars[j]);
    }
    if (mupError(h)) {
        int rc = ts_ctx_error(ctx, TS_EINTERNAL, "expression: parser set-up failed: %s",
                              mupGetErrorMsg(h));
        mupRelease(h);
        return rc;
    }
    *out = h;
    return 0;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Insert v into the sorted set bands[0..*n). Returns 0, or -1 when full. */
static int band_set_add(int *bands, int *n, int v)
{
    int i = 0;
    while (i < *n && bands[i] < v)
        i++;
    if (i < *n && bands[i] == v)
        return 0;
    if (*n >= TS_EXPR_MAX_BANDS)
        return -1;
    memmove(&bands[i + 1], &bands[i], (size_t)(*n - i) * sizeof *bands);
    bands[i] = v;
    (*n)++;
    return 0;
}

/*
 * Find band names in the lower-cased text. rio-tiler's rule is the regex
 * \bb([0-9a-z]+)\b: a whole identifier starting with `b`. Identifiers that
 * start with `b` but are not b<digits> (e.g. `blue`) are left to muparser,
 * which rejects them as unknown tokens.
 */
static int scan_bands(ts_expr *e, const char *s, ts_ctx *ctx)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != 'b' || (i > 0 && is_name_char(s[i - 1])))
            continue;
        size_t j = i + 1;
        while (j < n && is_name_char(s[j]))
            j++;
        size_t len = j - i;
        int digits = len > 1;
        for (size_t k = i + 1; k < j; k++)
            if (s[k] < '0' || s[k] > '9')
                digits = 0;
        if (digits) {
            if (s[i + 1] == '0')
                return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                    "expression: invalid band name '%.*s' (bands are b1..bN, "
                                    "1-based, without leading zeros)",
                                    (int)(len > 16 ? 16 : len), s + i);
            if (len - 1 > 5 || atoi(s + i + 1) > TS_EXPR_MAX_BAND_INDEX)
                return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                    "expression: band index in '%.*s' is too large (max b%d)",
                                    (int)(len > 16 ? 16 : len), s + i, TS_EXPR_MAX_BAND_INDEX);
            if (band_set_add(e->bands, &e->nbands, atoi(s + i + 1)) < 0)
                return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                    "expression: more than %d distinct bands referenced",
                                    TS_EXPR_MAX_BANDS);
        }
        i = j - 1;
    }
    return 0;
}

/* Parse one block with muparser to surface syntax errors at request time,
 * not in the middle of a render. */
static int validate_block(const ts_expr *e, muParserHandle_t h, int k, double *vars, ts_ctx *ctx)
{
    for (int j = 0; j < e->nbands; j++)
        vars[j] = 1.0;
    mupSetExpr(h, e->block[k]);
    int nres = 0;
    mupEvalMulti(h, &nres);
    if (mupError(h)) {
        const char *msg = mupGetErrorMsg(h);
        if (e->noutputs > 1)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: band %d ('%.64s'): %s", k + 1,
                                e->block[k], msg ? msg : "syntax error");
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: '%.64s': %s", e->block[k],
                            msg ? msg : "syntax error");
    }
    if (nres != 1)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "expression: '%.64s' yields %d values; separate output bands "
                            "with ';', not ','",
                            e->block[k], nres);
    return 0;
}

int ts_expr_compile(const char *expr, ts_expr **out, ts_ctx *ctx)
{
    *out = NULL;
    if (!expr)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: missing");
    size_t len = strnlen(expr, TS_EXPR_MAX_LEN + 1);
    if (len > TS_EXPR_MAX_LEN)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: longer than %d characters",
                            TS_EXPR_MAX_LEN);
    /* Only printable ASCII reaches muparser: it is never going to be valid
     * band math otherwise, and it keeps muparser's character handling on the
     * well-trodden path. String literals are refused for the same reason
     * (no string functions exist here). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)expr[i];
        if ((c < 0x20 && c != '\t') || c > 0x7e)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "expression: invalid character 0x%02x at position %zu", c, i);
        if (c == '"')
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "expression: string literals are not supported");
    }

    ts_expr *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return ts_ctx_error(ctx, TS_ENOMEM, "expression: out of memory");
    for (size_t i = 0; i < len; i++) {
        char c = expr[i];
        e->text[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    e->text[len] = '\0';

    int rc = scan_bands(e, e->text, ctx);
    if (rc < 0)
        goto fail;
    if (e->nbands == 0) {
        rc = ts_ctx_error(ctx, TS_EBAD_REQUEST,
                          "expression: could not find any valid bands in '%.64s' (use b1, b2, ...)",
                          expr);
        goto fail;
    }

    /* Split on ';' in place; empty blocks are skipped as rio-tiler does. */
    char *p = e->text;
    for (;;) {
        char *semi = strchr(p, ';');
        if (semi)
            *semi = '\0';
        if (*p) {
            if (e->noutputs >= TS_EXPR_MAX_OUTPUTS) {
                rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: more than %d output bands",
                                  TS_EXPR_MAX_OUTPUTS);
                goto fail;
            }
            e->block[e->noutputs++] = p;
        }
        if (!semi)
            break;
        p = semi + 1;
    }
    if (e->noutputs == 0) {
        rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: empty");
        goto fail;
    }

    double vars[TS_EXPR_MAX_BANDS];
    muParserHandle_t h;
    rc = parser_new(e, vars, &h, ctx);
    if (rc < 0)
        goto fail;
    for (int k = 0; k < e->noutputs && rc == 0; k++)
        rc = validate_block(e, h, k, vars, ctx);
    mupRelease(h);
    if (rc < 0)
        goto fail;

    *out = e;
    return 0;
fail:
    free(e);
    return rc;
}

void ts_expr_free(ts_expr *e)
{
    free(e);
}

int ts_expr_bands(const ts_expr *e, int *idx, int max)
{
    for (int j = 0; j < e->nbands && j < max; j++)
        idx[j] = e->bands[j];
    return e->nbands;
}

int ts_expr_noutputs(const ts_expr *e)
{
    return e->noutputs;
}

const char *ts_expr_block(const ts_expr *e, int i)
{
    return (i >= 0 && i < e->noutputs) ? e->block[i] : NULL;
}

int ts_expr_eval(const ts_expr *e, const ts_raster *in, const int *in_band_idx, ts_raster *out,
                 ts_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->data || !in->mask || in->width <= 0 || in->height <= 0 || !in_band_idx)
        return ts_ctx_error(ctx, TS_EINTERNAL, "expression: invalid input raster");

    size_t npx = (size_t)in->width * (size_t)in->height;
    const float *src[TS_EXPR_MAX_BANDS];
    for (int j = 0; j < e->nbands; j++) {
        int pos = -1;
        for (int b = 0; b < in->bands && pos < 0; b++)
            if (in_band_idx[b] == e->bands[j])
                pos = b;
        if (pos < 0)
            return ts_ctx_error(ctx, TS_EINTERNAL, "expression: band b%d was not read",
                                e->bands[j]);
        src[j] = ts_raster_band(in, pos);
    }

    if (ts_raster_alloc(out, in->width, in->height, e->noutputs) < 0)
        return ts_ctx_error(ctx, TS_ENOMEM, "expression: out of memory");
    memcpy(out->geotransform, in->geotransform, sizeof out->geotransform);
    /* Band reordering (`b3;b2;b1`) is the common case, so the source range
     * stays the default stretch; computed indexes come with a rescale. */
    out->dtype_min = in->dtype_min;
    out->dtype_max = in->dtype_max;
    out->buffer = in->buffer;
    memcpy(out->mask, in->mask, npx);

    double vars[TS_EXPR_MAX_BANDS];
    muParserHandle_t h;
    int rc = parser_new(e, vars, &h, ctx);
    if (rc < 0) {
        ts_raster_free(out);
        return rc;
    }

    for (int k = 0; k < e->noutputs && rc == 0; k++) {
        mupSetExpr(h, e->block[k]);
        float *dst = ts_raster_band(out, k);
        uint8_t *mask = out->mask;
        for (size_t i = 0; i < npx; i++) {
            if (!mask[i])
                continue;
            for (int j = 0; j < e->nbands; j++)
                vars[j] = src[j][i];
            double v = mupEval(h);
            /* Also catches NaN; the range test keeps the float conversion
             * defined and turns float overflow into a masked pixel. */
            if (!(fabs(v) <= FLT_MAX)) {
                mask[i] = 0;
                continue;
            }
            dst[i] = (float)v;
        }
        /* The error flag is sticky until read, so one check per block
         * catches a failure on any pixel. */
        if (mupError(h)) {
            const char *msg = mupGetErrorMsg(h);
            rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: '%.64s': %s", e->block[k],
                              msg ? msg : "evaluation failed");
        }
    }
    mupRelease(h);
    if (rc < 0) {
        ts_raster_free(out);
        return rc;
    }

    /* Masked pixels hold 0 in every band, including bands computed before a
     * later band turned the pixel invalid. */
    for (size_t i = 0; i < npx; i++)
        if (!out->mask[i])
            for (int k = 0; k < e->noutputs; k++)
                ts_raster_band(out, k)[i] = 0.0f;
    return 0;
}
