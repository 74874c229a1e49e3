/*
 * Post-processing algorithms (`algorithm` + `algorithm_params`).
 * Input: "<name>\n<params JSON>\n<raster bytes>"; the raster bytes fill a
 * small float raster (with the algorithm's buffer around it) and pick its
 * geotransform and mask, so odd samples (NaN, infinities, huge values) and
 * degenerate pixel sizes reach the algorithms.
 */
#include "fuzz_common.h"
#include "ts_algorithm.h"

#include <math.h>

static size_t take_line(const uint8_t **p, size_t *left, char **out)
{
    const uint8_t *nl = memchr(*p, '\n', *left);
    size_t n = nl ? (size_t)(nl - *p) : *left;
    *out = fuzz_strndup(*p, n);
    *p += n + (nl ? 1 : 0);
    *left -= n + (nl ? 1 : 0);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TS_ALGORITHM_PARAMS_MAX + 4096)
        return 0;
    const uint8_t *p = data;
    size_t left = size;
    char *name, *params;
    take_line(&p, &left, &name);
    size_t plen = take_line(&p, &left, &params);

    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_algorithm *a = NULL;
    int rc = ts_algorithm_parse(name, plen ? params : NULL, &a, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc < 0) {
        if (a)
            abort();
        goto out;
    }
    int buf = ts_algorithm_buffer(a);
    if (buf < 0 || buf > 99 || ts_algorithm_input_bands(a) < 1 || ts_algorithm_output_bands(a) < 1)
        abort();

    /* 5x4 output pixels plus the buffer; samples cycle through the rest of
     * the input (or a default ramp when there is none). */
    int w = 5 + 2 * buf, h = 4 + 2 * buf, nb = ts_algorithm_input_bands(a) + (left & 1);
    ts_raster in;
    if (ts_raster_alloc(&in, w, h, nb) < 0)
        abort();
    size_t nfl = left / 4;
    size_t total = (size_t)w * h * nb;
    for (size_t i = 0; i < total; i++) {
        if (nfl) {
            memcpy(&in.data[i], p + 4 * (i % nfl), 4);
        } else {
            in.data[i] = (float)((i * 37) % 101) - 20.0f;
        }
    }
    for (size_t i = 0; i < (size_t)w * h; i++)
        in.mask[i] = (left && p[i % left] == 0xff) ? 0 : 255;
    static const double sizes[] = {30.0, 1.0, 0.0, -0.5, 1e-300, 1e300, NAN, INFINITY};
    unsigned sel = left ? p[0] : 0;
    in.geotransform[1] = sizes[sel & 7];
    in.geotransform[5] = -sizes[(sel >> 3) & 7];
    in.buffer = buf;

    ts_raster out;
    ts_ctx_init(&ctx);
    rc = ts_algorithm_apply(a, &in, &out, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc == 0) {
        if (out.width != 5 || out.height != 4 || out.bands != ts_algorithm_output_bands(a) ||
            out.buffer != 0)
            abort();
        for (size_t i = 0; i < 20; i++)
            for (int k = 0; k < out.bands; k++) {
                float v = ts_raster_band(&out, k)[i];
                if (!isfinite(v) || (!out.mask[i] && v != 0.0f))
                    abort();
                /* normalizedIndex of mixed-sign data leaves -1..1, as in TiTiler. */
                if (out.mask[i] && strcmp(ts_algorithm_name(a), "normalizedIndex") != 0 &&
                    !(v >= out.dtype_min && v <= out.dtype_max))
                    abort(); /* outside the documented output range */
            }
        ts_raster_free(&out);
    } else if (out.data || out.mask) {
        abort();
    }
    ts_raster_free(&in);
    ts_algorithm_free(a);
out:
    free(name);
    free(params);
    return 0;
}
