/* rio-color operations on 8-bit pixels (see ts_color_formula.h). */
#include "ts_color_formula.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A formula compiles to stages. gamma and sigmoidal act on each channel
 * independently and their uint8 -> uint8 results are exact, so consecutive
 * ones fold into one 3 x 256 table; saturation mixes channels and runs per
 * pixel.
 */
typedef struct stage {
    bool saturation;
    double proportion;
    uint8_t lut[3][256];
} stage;

struct ts_color_formula {
    int nstages;
    stage stages[];
};

/* rio_color.utils.epsilon: numpy.finfo(float64).eps. */
#define EPSILON DBL_EPSILON

/* rio-tiler's scale_dtype: (arr * 255).astype(uint8). The clamp and the NaN
 * case make the out-of-range casts that numpy leaves to the platform defined. */
static uint8_t to_u8(double v)
{
    double s = v * 255;
    if (!(s > 0))
        return 0;
    if (s >= 255)
        return 255;
    return (uint8_t)s;
}

/* rio_color.operations.sigmoidal, for one value; the expression order is kept
 * so that results match numpy bit for bit. */
static double sigmoidal(double arr, double contrast, double bias)
{
    double alpha = bias, beta = contrast;
    if (alpha == 0)
        alpha = EPSILON;
    if (beta == 0)
        return arr;
    if (beta > 0) {
        double numerator = 1 / (1 + exp(beta * (alpha - arr))) - 1 / (1 + exp(beta * alpha));
        double denominator =
            1 / (1 + exp(beta * (alpha - 1))) - 1 / (1 + exp(beta * alpha));
        return numerator / denominator;
    }
    /* Inverse sigmoidal. */
    return ((beta * alpha) - log((1 / ((arr / (1 + exp(beta * alpha - beta))) -
                                       (arr / (1 + exp(beta * alpha))) +
                                       (1 / (1 + exp(beta * alpha))))) -
                                 1)) /
           beta;
}

/* rio-color's colorspace.pyx constants and conversions, transcribed with the
 * same operations (pow rather than cbrt/sqrt) so results agree. */
static const double BINTERCEPT = 4.0 / 29;
static const double DELTA = 6.0 / 29;

static void saturate(uint8_t *px, double satmult)
{
    const double t0 = pow(DELTA, 3);
    const double alpha = pow(DELTA, -2) / 3;
    double r = px[0] / 255.0, g = px[1] / 255.0, b = px[2] / 255.0;

    /* RGB -> XYZ, simplified sRGB (gamma 2.2), D65 white. */
    double rl = pow(r, 2.2), gl = pow(g, 2.2), bl = pow(b, 2.2);
    double x = ((rl * 0.4124) + (gl * 0.3576) + (bl * 0.1805)) / 0.95047;
    double y = ((rl * 0.2126) + (gl * 0.7152) + (bl * 0.0722));
    double z = ((rl * 0.0193) + (gl * 0.1192) + (bl * 0.9505)) / 1.08883;

    /* XYZ -> Lab. */
    double fx = x > t0 ? pow(x, 0.3333333333333333) : (alpha * x) + BINTERCEPT;
    double fy = y > t0 ? pow(y, 0.3333333333333333) : (alpha * y) + BINTERCEPT;
    double fz = z > t0 ? pow(z, 0.3333333333333333) : (alpha * z) + BINTERCEPT;
    double L = (116 * fy) - 16;
    double la = 500 * (fx - fy);
    double lb = 200 * (fy - fz);

    /* Lab -> LCH, scale chroma, back to Lab. */
    double C = pow((la * la) + (lb * lb), 0.5);
    double H = atan2(lb, la);
    C *= satmult;
    la = C * cos(H);
    lb = C * sin(H);

    /* Lab -> XYZ. */
    double tx = ((L + 16) / 116.0) + (la / 500.0);
    x = tx > DELTA ? pow(tx, 3) : 3 * DELTA * DELTA * (tx - BINTERCEPT);
    double ty = (L + 16) / 116.0;
    y = ty > DELTA ? pow(ty, 3) : 3 * DELTA * DELTA * (ty - BINTERCEPT);
    double tz = ((L + 16) / 116.0) - (lb / 200.0);
    z = tz > DELTA ? pow(tz, 3) : 3 * DELTA * DELTA * (tz - BINTERCEPT);

    /* XYZ -> RGB. */
    x = x * 0.95047;
    z = z * 1.08883;
    double lin[3] = {
        (x * 3.2406) + (y * -1.5372) + (z * -0.4986),
        (x * -0.9689) + (y * 1.8758) + (z * 0.0415),
        (x * 0.0557) + (y * -0.2040) + (z * 1.0570),
    };
    for (int c = 0; c < 3; c++) {
        double v = lin[c];
        if (v > 1.0)
            v = 1.0;
        else if (v < 0.0)
            v = 0.0;
        px[c] = to_u8(pow(v, 1 / 2.2));
    }
}

/* ------------------------------------------------------------------------ */
/* Parsing */

enum op { OP_GAMMA, OP_SIGMOIDAL, OP_SATURATION, OP_NONE };

static enum op op_of(const char *tok)
{
    if (strcasecmp(tok, "gamma") == 0)
        return OP_GAMMA;
    if (strcasecmp(tok, "sigmoidal") == 0)
        return OP_SIGMOIDAL;
    if (strcasecmp(tok, "saturation") == 0)
        return OP_SATURATION;
    return OP_NONE;
}

static const char *const op_names[] = {"gamma", "sigmoidal", "saturation"};
static const char *const op_usage[] = {"gamma <bands> <g>, e.g. 'gamma RGB 1.5'",
                                       ("sigmoidal <bands> <contrast> <bias>, e.g. "
                                        "'sigmoidal RGB 10 0.3'"),
                                       "saturation <proportion>, e.g. 'saturation 1.2'"};

static bool parse_number(const char *tok, double *out)
{
    char *end;
    /* strtod would also read hex and "inf"/"nan"; rio-color's float() takes
     * the latter but they never produce a usable image. */
    for (const char *p = tok; *p; p++)
        if (!(isdigit((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+' || *p == 'e' ||
              *p == 'E'))
            return false;
    double d = strtod(tok, &end);
    if (end == tok || *end != '\0' || !isfinite(d))
        return false;
    *out = d;
    return true;
}

/* "rgb", "RG", "13", ...: a set of channels 0..2. */
static int parse_bands(const char *tok, bool bands[3], ts_ctx *ctx, const char *opname)
{
    bands[0] = bands[1] = bands[2] = false;
    for (const char *p = tok; *p; p++) {
        int c = tolower((unsigned char)*p), b;
        if (c == 'r' || c == '1')
            b = 0;
        else if (c == 'g' || c == '2')
            b = 1;
        else if (c == 'b' || c == '3')
            b = 2;
        else if (isdigit(c))
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "color_formula: %s BAND must be between 1 and 3, got '%c'",
                                opname, c);
        else
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "color_formula: %s: invalid band list '%.32s' (use R, G, B or "
                                "1, 2, 3)",
                                opname, tok);
        bands[b] = true;
    }
    return 0;
}

/* Build the per-channel table of a gamma or sigmoidal operation, composed
 * after whatever the stage already does. */
static void compose_lut(stage *st, enum op op, const bool bands[3], const double *args)
{
    uint8_t f[256];
    for (int i = 0; i < 256; i++) {
        double x = i / 255.0;
        double y = op == OP_GAMMA ? pow(x, 1.0 / args[0]) : sigmoidal(x, args[0], args[1]);
        f[i] = to_u8(y);
    }
    for (int c = 0; c < 3; c++)
        if (bands[c])
            for (int i = 0; i < 256; i++)
                st->lut[c][i] = f[st->lut[c][i]];
}

typedef struct parsed_op {
    enum op op;
    bool bands[3];
    double args[2];
} parsed_op;

/* Check one operation's tokens (tok[0] is its name) and fill *po. */
static int parse_op(char **tok, int ntok, parsed_op *po, ts_ctx *ctx)
{
    enum op op = op_of(tok[0]);
    if (op == OP_NONE)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "color_formula: '%.32s' is not a valid operation (expected gamma, "
                            "sigmoidal or saturation)",
                            tok[0]);
    const char *name = op_names[op];
    int nargs = op == OP_SIGMOIDAL ? 2 : 1;
    int first = op == OP_SATURATION ? 1 : 2; /* saturation takes no band list */
    if (ntok != first + nargs)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: %s expects %s", name,
                            op_usage[op]);
    po->op = op;
    if (op == OP_SATURATION) {
        po->bands[0] = po->bands[1] = po->bands[2] = true;
    } else {
        int rc = parse_bands(tok[1], po->bands, ctx, name);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < nargs; i++)
        if (!parse_number(tok[first + i], &po->args[i]))
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "color_formula: %s: '%.32s' is not a number (expected %s)",
                                name, tok[first + i], op_usage[op]);
    /* rio-color fails on these (division by zero, output outside 0..1, or its
     * explicit bias check), so they are request errors rather than images. */
    if (op == OP_GAMMA && !(po->args[0] > 0))
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: gamma must be > 0, got %g",
                            po->args[0]);
    if (op == OP_SIGMOIDAL && (po->args[1] > 1.0 + EPSILON || po->args[1] < 0 - EPSILON))
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "color_formula: sigmoidal bias must be between 0 and 1, got %g",
                            po->args[1]);
    return 0;
}

int ts_color_formula_parse(const char *s, ts_color_formula **out, ts_ctx *ctx)
{
    *out = NULL;
    if (!s)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: missing value");
    size_t len = strnlen(s, TS_COLOR_FORMULA_MAX_LEN + 1);
    if (len > TS_COLOR_FORMULA_MAX_LEN)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: too long (max %d bytes)",
                            TS_COLOR_FORMULA_MAX_LEN);

    /* rio-color deletes commas before splitting, so "gamma r 1.5, gamma g 2"
     * is two operations but "1,5" reads as "15". */
    char *buf = malloc(len + 1);
    /* Every token is at least one byte plus a separator. */
    char **tok = calloc(len / 2 + 2, sizeof *tok);
    parsed_op *ops = calloc(TS_COLOR_FORMULA_MAX_OPS, sizeof *ops);
    ts_color_formula *f = NULL;
    int rc = 0;
    if (!buf || !tok || !ops) {
        rc = ts_ctx_error(ctx, TS_ENOMEM, "color_formula: out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != ',')
            buf[k++] = s[i];
    buf[k] = '\0';

    int ntok = 0;
    for (char *p = buf; *p;) {
        while (*p && isspace((unsigned char)*p))
            *p++ = '\0';
        if (!*p)
            break;
        tok[ntok++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    if (ntok == 0) {
        rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: empty formula");
        goto done;
    }

    int nops = 0;
    for (int start = 0; start < ntok;) {
        int end = start + 1;
        while (end < ntok && op_of(tok[end]) == OP_NONE)
            end++;
        if (nops == TS_COLOR_FORMULA_MAX_OPS) {
            rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "color_formula: too many operations (max %d)",
                              TS_COLOR_FORMULA_MAX_OPS);
            goto done;
        }
        if ((rc = parse_op(tok + start, end - start, &ops[nops], ctx)) < 0)
            goto done;
        nops++;
        start = end;
    }

    /* Compile: one LUT stage per run of per-channel operations. */
    int nstages = 0;
    for (int i = 0; i < nops; i++)
        if (ops[i].op == OP_SATURATION || i == 0 || ops[i - 1].op == OP_SATURATION)
            nstages++;
    f = calloc(1, sizeof *f + (size_t)nstages * sizeof(stage));
    if (!f) {
        rc = ts_ctx_error(ctx, TS_ENOMEM, "color_formula: out of memory");
        goto done;
    }
    stage *st = NULL;
    for (int i = 0; i < nops; i++) {
        if (ops[i].op == OP_SATURATION) {
            st = &f->stages[f->nstages++];
            st->saturation = true;
            st->proportion = ops[i].args[0];
            st = NULL;
            continue;
        }
        if (!st) {
            st = &f->stages[f->nstages++];
            for (int c = 0; c < 3; c++)
                for (int v = 0; v < 256; v++)
                    st->lut[c][v] = (uint8_t)v;
        }
        compose_lut(st, ops[i].op, ops[i].bands, ops[i].args);
    }
    *out = f;
    f = NULL;
done:
    free(f);
    free(ops);
    free(tok);
    free(buf);
    return rc;
}

void ts_color_formula_apply(const ts_color_formula *f, uint8_t *pixels, size_t npix,
                            int channels)
{
    if (!f || !pixels || (channels != 3 && channels != 4))
        return;
    for (int s = 0; s < f->nstages; s++) {
        const stage *st = &f->stages[s];
        uint8_t *px = pixels;
        if (st->saturation) {
            for (size_t i = 0; i < npix; i++, px += channels)
                saturate(px, st->proportion);
        } else {
            for (size_t i = 0; i < npix; i++, px += channels) {
                px[0] = st->lut[0][px[0]];
                px[1] = st->lut[1][px[1]];
                px[2] = st->lut[2][px[2]];
            }
        }
    }
}

void ts_color_formula_free(ts_color_formula *f)
{
    free(f);
}
