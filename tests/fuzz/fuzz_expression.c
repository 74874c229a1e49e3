/*
 * Band math (the `expression` query parameter): ts_expr_compile on the raw
 * input, then, when it compiles, ts_expr_eval over a small raster holding
 * the bands it references (ordinary values, zeros, negatives, NaN and masked
 * pixels), checking the documented output shape and masking.
 */
#include "fuzz_common.h"
#include "ts_expression.h"

#include <math.h>
#include <stdio.h>

#define W 4
#define H 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TS_EXPR_MAX_LEN + 16)
        return 0; /* rejected by length alone; keep the corpus on real inputs */
    char *text = fuzz_strndup(data, size);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_expr *e = NULL;
    int rc = ts_expr_compile(text, &e, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc < 0) {
        if (e)
            abort();
        free(text);
        return 0;
    }

    int bands[TS_EXPR_MAX_BANDS];
    int nb = ts_expr_bands(e, bands, TS_EXPR_MAX_BANDS);
    int nout = ts_expr_noutputs(e);
    if (nb < 1 || nb > TS_EXPR_MAX_BANDS || nout < 1 || nout > TS_EXPR_MAX_OUTPUTS)
        abort();
    for (int j = 0; j < nb; j++)
        if (bands[j] < 1 || bands[j] > TS_EXPR_MAX_BAND_INDEX || (j && bands[j] <= bands[j - 1]))
            abort();
    for (int k = 0; k < nout; k++)
        if (!ts_expr_block(e, k) || !ts_expr_block(e, k)[0])
            abort();
    if (ts_expr_block(e, nout) || ts_expr_block(e, -1))
        abort();

    /* Bands in reverse order, as a reader may deliver them. */
    ts_raster in = {0};
    if (ts_raster_alloc(&in, W, H, nb) < 0)
        abort();
    int idx[TS_EXPR_MAX_BANDS];
    static const float samples[] = {1.0f, 0.0f, -1.0f, 1000.0f, 0.5f, NAN, 65535.0f, -3.25f,
                                    1e-30f, 2.0f, 1e30f, 7.0f};
    for (int b = 0; b < nb; b++) {
        idx[b] = bands[nb - 1 - b];
        float *d = ts_raster_band(&in, b);
        for (int i = 0; i < W * H; i++)
            d[i] = samples[(i + b) % (int)(sizeof samples / sizeof samples[0])];
    }
    in.mask[1] = 0;
    in.mask[W * H - 1] = 0;
    in.dtype_min = 0;
    in.dtype_max = 65535;

    ts_raster out;
    ts_ctx_init(&ctx);
    rc = ts_expr_eval(e, &in, idx, &out, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc == 0) {
        if (out.width != W || out.height != H || out.bands != nout)
            abort();
        for (int i = 0; i < W * H; i++) {
            if (!in.mask[i] && out.mask[i])
                abort(); /* a masked input pixel stays masked */
            for (int k = 0; k < nout; k++) {
                float v = ts_raster_band(&out, k)[i];
                if (!isfinite(v) || (!out.mask[i] && v != 0.0f))
                    abort();
            }
        }
        ts_raster_free(&out);
    } else if (out.data || out.mask) {
        abort();
    }
    ts_raster_free(&in);
    ts_expr_free(e);
    free(text);
    return 0;
}
