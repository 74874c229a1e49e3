/* Parsing and validation of render parameters (see ts_params.h). */
#include "ts_params.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const known[] = {
    "url", "bidx", "expression", "nodata", "unscale", "resampling", "reproject", "rescale",
    "colormap_name", "colormap", "color_formula", "return_mask", "buffer", "padding", "tilesize",
    "algorithm", "algorithm_params", "tile_format", "tile_scale", "minzoom", "maxzoom", "format",
};

bool ts_params_known(const char *name)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(name, known[i]) == 0)
            return true;
    return false;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    if (strcasecmp(s, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcasecmp(s, "inf") == 0 || strcasecmp(s, "+inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcasecmp(s, "-inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no")) {
        *out = false;
        return 0;
    }
    return -1;
}

static int dup_param(const ts_request *req, const char *name, size_t maxlen, char **out,
                     ts_ctx *ctx)
{
    const char *v = ts_req_query(req, name);
    if (!v)
        return 0;
    if (!*v)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "%s: must not be empty", name);
    if (strlen(v) > maxlen)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "%s: longer than %zu characters", name, maxlen);
    *out = strdup(v);
    if (!*out)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    return 0;
}

int ts_params_parse(const ts_request *req, int max_tilesize, ts_params *p, ts_ctx *ctx)
{
    memset(p, 0, sizeof *p);
    p->return_mask = true;
    const char *vals[TS_MAX_BANDS + 1];
    const char *v;

    size_t n = ts_req_query_all(req, "bidx", vals, TS_MAX_BANDS + 1);
    if (n > TS_MAX_BANDS)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "bidx: at most %d bands", TS_MAX_BANDS);
    for (size_t i = 0; i < n; i++) {
        long b;
        if (parse_long(vals[i], 1, 100000, &b) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "bidx: expected a band index (integer >= 1), got '%s'", vals[i]);
        p->bidx[p->nbidx++] = (int)b;
    }

    if ((v = ts_req_query(req, "nodata"))) {
        if (parse_double(v, &p->nodata) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "nodata: expected a number, 'nan', 'inf' or '-inf', got '%s'", v);
        p->nodata_set = true;
    }
    if ((v = ts_req_query(req, "unscale")) && parse_bool(v, &p->unscale) < 0)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "unscale: expected true or false, got '%s'", v);
    if ((v = ts_req_query(req, "return_mask")) && parse_bool(v, &p->return_mask) < 0)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "return_mask: expected true or false, got '%s'",
                            v);

    if ((v = ts_req_query(req, "resampling"))) {
        static const char *const ok[] = {"nearest", "bilinear", "cubic", "cubic_spline", "lanczos",
                                         "average", "mode", "gauss", "rms"};
        bool found = false;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            found |= strcasecmp(v, ok[i]) == 0;
        if (!found || ts_reader_io_resampling_parse(v, &p->resampling) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "resampling: expected one of nearest, bilinear, cubic, cubic_spline, lanczos, average, mode, gauss, rms, got '%s'",
                                v);
    }
    if ((v = ts_req_query(req, "reproject"))) {
        if (strcasecmp(v, "rms") == 0 || ts_reader_resampling_parse(v, &p->reproject) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "reproject: expected one of nearest, bilinear, cubic, cubic_spline, lanczos, average, mode, max, min, med, q1, q3, sum, got '%s'",
                                v);
    }

    n = ts_req_query_all(req, "rescale", vals, TS_MAX_BANDS + 1);
    if (n > TS_MAX_BANDS)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "rescale: at most %d ranges", TS_MAX_BANDS);
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        if (strlen(vals[i]) >= sizeof buf)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "rescale: expected 'min,max', got a value too long");
        strcpy(buf, vals[i]);
        char *comma = strchr(buf, ',');
        double lo, hi;
        if (!comma || strchr(comma + 1, ','))
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "rescale: expected 'min,max', got '%s'", vals[i]);
        *comma = '\0';
        if (parse_double(buf, &lo) < 0 || parse_double(comma + 1, &hi) < 0 || isnan(lo) || isnan(hi))
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "rescale: expected 'min,max', got '%s'", vals[i]);
        p->rescale[p->nrescale][0] = lo;
        p->rescale[p->nrescale][1] = hi;
        p->nrescale++;
    }

    if ((v = ts_req_query(req, "tilesize"))) {
        long t;
        if (parse_long(v, 16, max_tilesize, &t) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "tilesize: expected an integer 16..%d, got '%s'",
                                max_tilesize, v);
        p->tilesize = (int)t;
    }
    if ((v = ts_req_query(req, "buffer"))) {
        double b;
        if (parse_double(v, &b) < 0 || b < 0 || b > 256 || fmod(b * 2, 1.0) != 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                "buffer: expected a multiple of 0.5 between 0 and 256, got '%s'", v);
        p->buffer = b;
    }
    if ((v = ts_req_query(req, "padding"))) {
        long t;
        if (parse_long(v, 0, 256, &t) < 0)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "padding: expected an integer 0..256, got '%s'", v);
        p->padding = (int)t;
    }
    int rc = 0;
    if ((rc = dup_param(req, "expression", 1024, &p->expression, ctx)) < 0 ||
        (rc = dup_param(req, "colormap_name", 64, &p->colormap_name, ctx)) < 0 ||
        (rc = dup_param(req, "colormap", 65536, &p->colormap_json, ctx)) < 0 ||
        (rc = dup_param(req, "color_formula", 1024, &p->color_formula, ctx)) < 0 ||
        (rc = dup_param(req, "algorithm", 64, &p->algorithm, ctx)) < 0 ||
        (rc = dup_param(req, "algorithm_params", 4096, &p->algorithm_params, ctx)) < 0) {
        ts_params_free(p);
        return rc;
    }
    if (p->expression && p->nbidx) {
        ts_params_free(p);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: cannot be combined with bidx");
    }
    return 0;
}

void ts_params_free(ts_params *p)
{
    TS_FREE(p->expression);
    TS_FREE(p->colormap_name);
    TS_FREE(p->colormap_json);
    TS_FREE(p->color_formula);
    TS_FREE(p->algorithm);
    TS_FREE(p->algorithm_params);
}
