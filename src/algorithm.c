/*
 * TiTiler's algorithms (titiler.core.algorithm dem.py / index.py) in C. The
 * formulas, defaults and parameter bounds follow TiTiler so that a tile asked
 * for with the same algorithm_params renders the same; deviations are noted
 * where they are made. One declarative table describes every algorithm and
 * its parameters; ts_algorithm_parse() validates JSON against it.
 */
#include "ts_algorithm.h"

#include <json-c/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 4

typedef enum { P_INT, P_FLOAT } param_type;

typedef struct param_spec {
    const char *name;
    param_type type;
    double min, max, def;
    int min_exclusive; /* value must be > min, not >= min */
    int optional;      /* JSON null / absent = "not set" (TiTiler's Optional) */
} param_spec;

typedef int (*apply_fn)(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx);

typedef struct algo_def {
    const char *name;
    int input_bands, output_bands;
    const param_spec *params;
    int nparams;
    int buffer_param; /* index of the `buffer` parameter, or -1 */
    apply_fn apply;
} algo_def;

struct ts_algorithm {
    const algo_def *def;
    double p[MAX_PARAMS];
    int set[MAX_PARAMS];
};

/* Parameter indexes, in table order. */
enum { HS_AZIMUTH, HS_ALTITUDE, HS_BUFFER, HS_ZEXAG };
enum { SL_BUFFER, SL_ZEXAG };
enum { CT_INCREMENT, CT_THICKNESS, CT_MINZ, CT_MAXZ };
enum { TM_NODATA };
enum { TR_INTERVAL, TR_BASEVAL, TR_NODATA };

/* TiTiler's current defaults and pydantic Field bounds. Note the hillshade
 * defaults: TiTiler moved from azimuth=90/angle_altitude=90 to 45/45 when it
 * started using the pixel size and 360-azimuth; we follow the current code. */
static const param_spec hillshade_params[] = {
    [HS_AZIMUTH] = {"azimuth", P_INT, 0, 360, 45, 0, 0},
    [HS_ALTITUDE] = {"angle_altitude", P_FLOAT, -90, 90, 45, 0, 0},
    [HS_BUFFER] = {"buffer", P_INT, 0, 99, 3, 0, 0},
    [HS_ZEXAG] = {"z_exaggeration", P_FLOAT, 1e-6, 1e6, 1, 0, 0},
};
static const param_spec slope_params[] = {
    [SL_BUFFER] = {"buffer", P_INT, 0, 99, 3, 0, 0},
    [SL_ZEXAG] = {"z_exaggeration", P_FLOAT, 1e-6, 1e6, 1, 0, 0},
};
static const param_spec contours_params[] = {
    [CT_INCREMENT] = {"increment", P_INT, 0, 999, 35, 0, 0},
    [CT_THICKNESS] = {"thickness", P_INT, 0, 10, 1, 0, 0},
    [CT_MINZ] = {"minz", P_INT, -99999, 99999, -12000, 0, 0},
    [CT_MAXZ] = {"maxz", P_INT, -99999, 99999, 8000, 0, 0},
};
static const param_spec terrarium_params[] = {
    [TM_NODATA] = {"nodata_height", P_FLOAT, -99999, 99999, 0, 0, 1},
};
/* TiTiler allows interval=0 and then divides by it; we require > 0. */
static const param_spec terrainrgb_params[] = {
    [TR_INTERVAL] = {"interval", P_FLOAT, 0, 1, 0.1, 1, 0},
    [TR_BASEVAL] = {"baseval", P_FLOAT, -99999, 99999, -10000, 0, 0},
    [TR_NODATA] = {"nodata_height", P_FLOAT, -99999, 99999, 0, 0, 1},
};

static int apply_hillshade(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);
static int apply_slope(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);
static int apply_contours(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);
static int apply_terrarium(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);
static int apply_terrainrgb(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);
static int apply_normalized_index(const ts_algorithm *, const ts_raster *, ts_raster *, ts_ctx *);

#define NPARAMS(t) ((int)(sizeof(t) / sizeof((t)[0])))

static const algo_def algorithms[] = {
    {"hillshade", 1, 1, hillshade_params, NPARAMS(hillshade_params), HS_BUFFER, apply_hillshade},
    {"slope", 1, 1, slope_params, NPARAMS(slope_params), SL_BUFFER, apply_slope},
    {"contours", 1, 3, contours_params, NPARAMS(contours_params), -1, apply_contours},
    {"terrarium", 1, 3, terrarium_params, NPARAMS(terrarium_params), -1, apply_terrarium},
    {"terrainrgb", 1, 3, terrainrgb_params, NPARAMS(terrainrgb_params), -1, apply_terrainrgb},
    {"normalizedIndex", 2, 1, NULL, 0, -1, apply_normalized_index},
};
#define NALGORITHMS ((int)(sizeof algorithms / sizeof algorithms[0]))

const char *ts_algorithm_names(void)
{
    return "hillshade, slope, contours, terrarium, terrainrgb, normalizedIndex";
}

/* ---- parameters ------------------------------------------------------- */

static int param_error(const char *algo, const param_spec *ps, ts_ctx *ctx)
{
    if (ps->type == P_INT)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm_params: '%s' for %s must be an integer between %g and %g",
                            ps->name, algo, ps->min, ps->max);
    return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                        "algorithm_params: '%s' for %s must be a number %s %g and <= %g%s",
                        ps->name, algo, ps->min_exclusive ? ">" : ">=", ps->min, ps->max,
                        ps->optional ? " (or null)" : "");
}

/* Accept what pydantic's lax mode accepts for numbers: JSON numbers and
 * numeric strings; integers must have no fractional part. */
static int param_set(ts_algorithm *a, int k, json_object *v, ts_ctx *ctx)
{
    const param_spec *ps = &a->def->params[k];
    double d;
    switch (json_object_get_type(v)) {
    case json_type_null:
        if (!ps->optional)
            return param_error(a->def->name, ps, ctx);
        a->set[k] = 0;
        return 0;
    case json_type_int:
    case json_type_double:
        d = json_object_get_double(v);
        break;
    case json_type_string: {
        const char *s = json_object_get_string(v);
        char *end = NULL;
        d = strtod(s, &end);
        if (end == s || *end != '\0')
            return param_error(a->def->name, ps, ctx);
        break;
    }
    default:
        return param_error(a->def->name, ps, ctx);
    }
    if (!isfinite(d) || d > ps->max || d < ps->min || (ps->min_exclusive && d <= ps->min) ||
        (ps->type == P_INT && d != floor(d)))
        return param_error(a->def->name, ps, ctx);
    a->p[k] = d;
    a->set[k] = 1;
    return 0;
}

static int parse_params(ts_algorithm *a, const char *json, ts_ctx *ctx)
{
    size_t len = strnlen(json, TS_ALGORITHM_PARAMS_MAX + 1);
    if (len > TS_ALGORITHM_PARAMS_MAX)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "algorithm_params: longer than %d characters",
                            TS_ALGORITHM_PARAMS_MAX);
    size_t first = strspn(json, " \t\r\n");
    if (first == len)
        return 0;

    /* A shallow depth limit: parameters are a flat object. */
    struct json_tokener *tok = json_tokener_new_ex(8);
    if (!tok)
        return ts_ctx_error(ctx, TS_ENOMEM, "algorithm_params: out of memory");
    /* Passing the terminating NUL tells json-c the input is complete, so a
     * bare number such as "42" is parsed rather than awaiting more digits. */
    json_object *obj = json_tokener_parse_ex(tok, json, (int)len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!obj || jerr != json_tokener_success) {
        json_object_put(obj);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "algorithm_params: invalid JSON: %s",
                            jerr == json_tokener_continue ? "unexpected end of input"
                                                          : json_tokener_error_desc(jerr));
    }
    if (end < len && strspn(json + end, " \t\r\n") != len - end) {
        json_object_put(obj);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm_params: invalid JSON: trailing characters at %zu", end);
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm_params: expected a JSON object such as {\"buffer\": 3}");
    }

    int rc = 0;
    json_object_object_foreach(obj, key, val)
    {
        int k = -1;
        for (int i = 0; i < a->def->nparams && k < 0; i++)
            if (strcmp(a->def->params[i].name, key) == 0)
                k = i;
        /* TiTiler silently ignores unknown keys; a typo there would render
         * with defaults and be cached, so we name it instead. */
        if (k < 0) {
            char valid[256] = "";
            for (int i = 0; i < a->def->nparams; i++) {
                size_t used = strlen(valid);
                snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "",
                         a->def->params[i].name);
            }
            rc = ts_ctx_error(ctx, TS_EBAD_REQUEST,
                              "algorithm_params: unknown parameter '%.64s' for %s (valid: %s)", key,
                              a->def->name, a->def->nparams ? valid : "none");
            break;
        }
        rc = param_set(a, k, val, ctx);
        if (rc < 0)
            break;
    }
    json_object_put(obj);
    return rc;
}

int ts_algorithm_parse(const char *name, const char *params_json, ts_algorithm **out, ts_ctx *ctx)
{
    *out = NULL;
    const algo_def *def = NULL;
    for (int i = 0; name && i < NALGORITHMS && !def; i++)
        if (strcmp(algorithms[i].name, name) == 0)
            def = &algorithms[i];
    if (!def)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm: unknown algorithm '%.64s' (valid: %s)", name ? name : "",
                            ts_algorithm_names());

    ts_algorithm *a = calloc(1, sizeof *a);
    if (!a)
        return ts_ctx_error(ctx, TS_ENOMEM, "algorithm: out of memory");
    a->def = def;
    for (int i = 0; i < def->nparams; i++) {
        a->p[i] = def->params[i].def;
        a->set[i] = !def->params[i].optional;
    }
    int rc = params_json ? parse_params(a, params_json, ctx) : 0;
    if (rc == 0 && def->apply == apply_contours && !(a->p[CT_MINZ] < a->p[CT_MAXZ]))
        rc = ts_ctx_error(ctx, TS_EBAD_REQUEST,
                          "algorithm_params: 'minz' (%g) must be less than 'maxz' (%g)",
                          a->p[CT_MINZ], a->p[CT_MAXZ]);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void ts_algorithm_free(ts_algorithm *a)
{
    free(a);
}

const char *ts_algorithm_name(const ts_algorithm *a)
{
    return a->def->name;
}

int ts_algorithm_buffer(const ts_algorithm *a)
{
    return a->def->buffer_param >= 0 ? (int)a->p[a->def->buffer_param] : 0;
}

int ts_algorithm_input_bands(const ts_algorithm *a)
{
    return a->def->input_bands;
}

int ts_algorithm_output_bands(const ts_algorithm *a)
{
    return a->def->output_bands;
}

int ts_algorithm_apply(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->data || !in->mask || in->width <= 0 || in->height <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "algorithm: invalid input raster");
    if (in->buffer < 0 || in->width <= 2 * in->buffer || in->height <= 2 * in->buffer)
        return ts_ctx_error(ctx, TS_EINTERNAL,
                            "algorithm: %dx%d input too small for a %d-pixel buffer", in->width,
                            in->height, in->buffer);
    if (in->bands < a->def->input_bands)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm: %s needs %d input band%s, got %d (select them with bidx "
                            "or expression)",
                            a->def->name, a->def->input_bands, a->def->input_bands > 1 ? "s" : "",
                            in->bands);
    return a->def->apply(a, in, out, ctx);
}

/* ---- shared helpers --------------------------------------------------- */

/* Allocate the output without the buffer: shifted geotransform, cropped
 * mask, given output range. */
static int out_alloc(const ts_raster *in, int bands, double dmin, double dmax, ts_raster *out,
                     ts_ctx *ctx)
{
    int b = in->buffer;
    int w = in->width - 2 * b, h = in->height - 2 * b;
    if (ts_raster_alloc(out, w, h, bands) < 0)
        return ts_ctx_error(ctx, TS_ENOMEM, "algorithm: out of memory");
    const double *g = in->geotransform;
    memcpy(out->geotransform, g, sizeof out->geotransform);
    out->geotransform[0] = g[0] + b * g[1] + b * g[2];
    out->geotransform[3] = g[3] + b * g[4] + b * g[5];
    out->dtype_min = dmin;
    out->dtype_max = dmax;
    out->buffer = 0;
    for (int r = 0; r < h; r++)
        memcpy(out->mask + (size_t)r * w, in->mask + (size_t)(r + b) * in->width + b, (size_t)w);
    return 0;
}

/* Input pixel index of output pixel i. */
static inline size_t in_index(const ts_raster *in, int w, size_t i)
{
    size_t r = i / (size_t)w, c = i % (size_t)w;
    return (r + (size_t)in->buffer) * (size_t)in->width + c + (size_t)in->buffer;
}

/* Masked output pixels hold 0 in every band. */
static void zero_masked(ts_raster *out)
{
    size_t npx = (size_t)out->width * (size_t)out->height;
    for (size_t i = 0; i < npx; i++)
        if (!out->mask[i])
            for (int k = 0; k < out->bands; k++)
                ts_raster_band(out, k)[i] = 0.0f;
}

/*
 * numpy.gradient at (r, c) with unit spacing: central differences inside,
 * one-sided first differences at the raster edge, 0 along an axis of length
 * 1. Returns 0 when the pixel or any sample the differences use is masked.
 */
static int gradient_at(const ts_raster *in, int r, int c, double *dzdc, double *dzdr)
{
    const float *z = in->data;
    const uint8_t *m = in->mask;
    size_t w = (size_t)in->width;
    if (!m[r * w + c])
        return 0;
    int c0 = c > 0 ? c - 1 : c, c1 = c < in->width - 1 ? c + 1 : c;
    int r0 = r > 0 ? r - 1 : r, r1 = r < in->height - 1 ? r + 1 : r;
    if (!m[r * w + c0] || !m[r * w + c1] || !m[r0 * w + c] || !m[r1 * w + c])
        return 0;
    *dzdc = c1 > c0 ? ((double)z[r * w + c1] - z[r * w + c0]) / (c1 - c0) : 0.0;
    *dzdr = r1 > r0 ? ((double)z[r1 * w + c] - z[r0 * w + c]) / (r1 - r0) : 0.0;
    return 1;
}

/* Pixel size from the geotransform; 1 when it is missing or degenerate. As
 * in TiTiler, geographic CRSs are not corrected (degrees vs metres). */
static void pixel_size(const ts_raster *in, double *px, double *py)
{
    *px = fabs(in->geotransform[1]);
    *py = fabs(in->geotransform[5]);
    if (!(*px > 0) || !isfinite(*px))
        *px = 1.0;
    if (!(*py > 0) || !isfinite(*py))
        *py = 1.0;
}

/* ---- DEM algorithms ---------------------------------------------------- */

/*
 * TiTiler's HillShade: x, y = gradient along columns and rows divided by the
 * pixel size (times z_exaggeration); slope = pi/2 - atan(|grad|); aspect =
 * atan2(-x, y); shaded = sin(alt) sin(slope) + cos(alt) cos(slope)
 * cos(rad(360 - azimuth) - aspect); value = (shaded + 1) * 127.5 clipped at 0
 * and truncated to uint8.
 */
static int apply_hillshade(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    int rc = out_alloc(in, 1, 0, 255, out, ctx);
    if (rc < 0)
        return rc;
    double px, py;
    pixel_size(in, &px, &py);
    double zex = a->p[HS_ZEXAG];
    double az = (360.0 - a->p[HS_AZIMUTH]) * M_PI / 180.0;
    double alt = a->p[HS_ALTITUDE] * M_PI / 180.0;
    double sa = sin(alt), ca = cos(alt);
    float *dst = out->data;
    int b = in->buffer;
    for (int r = 0; r < out->height; r++) {
        for (int c = 0; c < out->width; c++) {
            size_t i = (size_t)r * out->width + c;
            double gc, gr;
            if (!out->mask[i] || !gradient_at(in, r + b, c + b, &gc, &gr)) {
                out->mask[i] = 0;
                continue;
            }
            double x = gc / px * zex, y = gr / py * zex;
            double slope = M_PI / 2.0 - atan(sqrt(x * x + y * y));
            double aspect = atan2(-x, y);
            double shaded = sa * sin(slope) + ca * cos(slope) * cos(az - aspect);
            double v = (shaded + 1.0) * 127.5;
            if (!isfinite(v)) {
                out->mask[i] = 0;
                continue;
            }
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            dst[i] = (float)floor(v);
        }
    }
    zero_masked(out);
    return 0;
}

/*
 * TiTiler's Slope: degrees = atan(|grad|) with the gradient divided by the
 * pixel size. TiTiler divides the row gradient by the x pixel size and vice
 * versa; we pair each axis with its own size (identical for square pixels).
 */
static int apply_slope(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    int rc = out_alloc(in, 1, 0, 90, out, ctx);
    if (rc < 0)
        return rc;
    double px, py;
    pixel_size(in, &px, &py);
    double zex = a->p[SL_ZEXAG];
    float *dst = out->data;
    int b = in->buffer;
    for (int r = 0; r < out->height; r++) {
        for (int c = 0; c < out->width; c++) {
            size_t i = (size_t)r * out->width + c;
            double gc, gr;
            if (!out->mask[i] || !gradient_at(in, r + b, c + b, &gc, &gr)) {
                out->mask[i] = 0;
                continue;
            }
            double dx = gc * zex / px, dy = gr * zex / py;
            double deg = atan(sqrt(dx * dx + dy * dy)) * (180.0 / M_PI);
            if (!isfinite(deg)) {
                out->mask[i] = 0;
                continue;
            }
            dst[i] = (float)deg;
        }
    }
    zero_masked(out);
    return 0;
}

/*
 * matplotlib's "terrain" colormap (the one rio-tiler ships), rebuilt from its
 * six control points the way matplotlib samples a LinearSegmentedColormap
 * into 256 entries, then scaled to uint8 by truncation as rio-tiler's cmap
 * files were. Generating it keeps this module free of the colormap tables.
 */
static void terrain_lut(uint8_t lut[256][3])
{
    static const double x[6] = {0.0, 0.15, 0.25, 0.50, 0.75, 1.0};
    static const double y[6][3] = {{0.2, 0.2, 0.6}, {0.0, 0.6, 1.0},   {0.0, 0.8, 0.4},
                                   {1.0, 1.0, 0.6}, {0.5, 0.36, 0.24}, {1.0, 1.0, 1.0}};
    for (int i = 0; i < 256; i++) {
        double t = i / 255.0;
        int k = 0;
        while (k < 4 && t > x[k + 1])
            k++;
        double f = (t - x[k]) / (x[k + 1] - x[k]);
        for (int ch = 0; ch < 3; ch++) {
            double v = y[k][ch] + f * (y[k + 1][ch] - y[k][ch]);
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            lut[i][ch] = (uint8_t)(v * 255.0);
        }
    }
}

/* Python's float %: the result takes the sign of the divisor. */
static double py_mod(double a, double b)
{
    double m = fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0)))
        m += b;
    return m;
}

/*
 * TiTiler's Contours: elevation rescaled from [minz, maxz] to 1..255
 * (clipped, truncated), coloured with "terrain", and black where
 * elevation % increment < thickness. increment = 0 draws no lines (in numpy
 * x % 0 is NaN and the comparison is false).
 */
static int apply_contours(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    int rc = out_alloc(in, 3, 0, 255, out, ctx);
    if (rc < 0)
        return rc;
    uint8_t lut[256][3];
    terrain_lut(lut);
    double minz = a->p[CT_MINZ], maxz = a->p[CT_MAXZ];
    double inc = a->p[CT_INCREMENT], thick = a->p[CT_THICKNESS];
    size_t npx = (size_t)out->width * (size_t)out->height;
    float *R = ts_raster_band(out, 0), *G = ts_raster_band(out, 1), *B = ts_raster_band(out, 2);
    for (size_t i = 0; i < npx; i++) {
        double v = in->data[in_index(in, out->width, i)];
        if (!out->mask[i] || !isfinite(v)) {
            out->mask[i] = 0;
            continue;
        }
        double t = (v < minz ? minz : v > maxz ? maxz : v) - minz;
        int idx = (int)(t / (maxz - minz) * 254.0 + 1.0);
        idx = idx < 0 ? 0 : idx > 255 ? 255 : idx;
        if (inc > 0 && py_mod(v, inc) < thick) {
            R[i] = G[i] = B[i] = 0.0f;
        } else {
            R[i] = lut[idx][0];
            G[i] = lut[idx][1];
            B[i] = lut[idx][2];
        }
    }
    zero_masked(out);
    return 0;
}

/*
 * Mapzen Terrarium: h + 32768 clipped to 0..65535, R = v / 256, G = v % 256,
 * B = (v * 256) % 256, each truncated to uint8. Decoding is
 * R * 256 + G + B / 256 - 32768.
 */
static int apply_terrarium(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    int rc = out_alloc(in, 3, 0, 255, out, ctx);
    if (rc < 0)
        return rc;
    int fill = a->set[TM_NODATA];
    size_t npx = (size_t)out->width * (size_t)out->height;
    float *R = ts_raster_band(out, 0), *G = ts_raster_band(out, 1), *B = ts_raster_band(out, 2);
    for (size_t i = 0; i < npx; i++) {
        double h = in->data[in_index(in, out->width, i)];
        if (!out->mask[i] || !isfinite(h)) {
            if (!fill) {
                out->mask[i] = 0;
                continue;
            }
            h = a->p[TM_NODATA];
            out->mask[i] = 255;
        }
        double v = h + 32768.0;
        v = v < 0 ? 0 : v > 65535.0 ? 65535.0 : v;
        R[i] = (float)floor(v / 256.0);
        G[i] = (float)floor(fmod(v, 256.0));
        B[i] = (float)floor(fmod(v * 256.0, 256.0));
    }
    zero_masked(out);
    return 0;
}

/*
 * Mapbox Terrain-RGB (rio-rgbify via TiTiler): v = round((h - baseval) /
 * interval) (numpy rounds half to even, as nearbyint does), refused when the
 * valid range exceeds 256**3 steps, then the int32 bytes R = v >> 16, G = v >>
 * 8, B = v. Decoding is baseval + (R * 65536 + G * 256 + B) * interval.
 */
static int apply_terrainrgb(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx)
{
    int rc = out_alloc(in, 3, 0, 255, out, ctx);
    if (rc < 0)
        return rc;
    double base = a->p[TR_BASEVAL], interval = a->p[TR_INTERVAL];
    size_t npx = (size_t)out->width * (size_t)out->height;
    float *R = ts_raster_band(out, 0), *G = ts_raster_band(out, 1), *B = ts_raster_band(out, 2);

    /* Rounded values go to R for the range check, then get encoded. */
    double vmin = INFINITY, vmax = -INFINITY;
    for (size_t i = 0; i < npx; i++) {
        double h = in->data[in_index(in, out->width, i)];
        double v = nearbyint((h - base) / interval);
        if (!out->mask[i] || !isfinite(v)) {
            R[i] = NAN;
            continue;
        }
        R[i] = 0.0f; /* placeholder; valid */
        if (v < vmin)
            vmin = v;
        if (v > vmax)
            vmax = v;
    }
    if (vmax >= vmin && vmax - vmin > 16777216.0) {
        ts_raster_free(out);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "algorithm: terrainrgb: data range of %g steps exceeds 256**3; "
                            "raise 'interval'",
                            vmax - vmin);
    }

    int fill = a->set[TR_NODATA];
    for (size_t i = 0; i < npx; i++) {
        double v;
        if (isnan(R[i])) {
            if (!fill) {
                out->mask[i] = 0;
                continue;
            }
            /* TiTiler assigns the unrounded value; the int32 cast truncates. */
            v = (a->p[TR_NODATA] - base) / interval;
            out->mask[i] = 255;
        } else {
            v = nearbyint((in->data[in_index(in, out->width, i)] - base) / interval);
        }
        v = v < -2147483648.0 ? -2147483648.0 : v > 2147483647.0 ? 2147483647.0 : v;
        uint32_t u = (uint32_t)(int32_t)v;
        R[i] = (float)((u >> 16) & 0xFF);
        G[i] = (float)((u >> 8) & 0xFF);
        B[i] = (float)(u & 0xFF);
    }
    zero_masked(out);
    return 0;
}

/* ---- index algorithms --------------------------------------------------- */

/* TiTiler's NormalizedIndex: (b2 - b1) / (b2 + b1) in float32. numpy's masked
 * division masks a zero denominator; so do we, and any non-finite result. */
static int apply_normalized_index(const ts_algorithm *a, const ts_raster *in, ts_raster *out,
                                  ts_ctx *ctx)
{
    (void)a;
    int rc = out_alloc(in, 1, -1, 1, out, ctx);
    if (rc < 0)
        return rc;
    const float *b1 = ts_raster_band(in, 0), *b2 = ts_raster_band(in, 1);
    size_t npx = (size_t)out->width * (size_t)out->height;
    for (size_t i = 0; i < npx; i++) {
        size_t j = in_index(in, out->width, i);
        float den = b2[j] + b1[j];
        float v = den != 0.0f ? (b2[j] - b1[j]) / den : NAN;
        if (!out->mask[i] || !isfinite(v)) {
            out->mask[i] = 0;
            continue;
        }
        out->data[i] = v;
    }
    zero_masked(out);
    return 0;
}
