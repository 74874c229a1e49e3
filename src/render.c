/* Rescaling, colouring and masking into an 8-bit image (see ts_render.h). */
#include "ts_render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* rio-tiler's linear_rescale followed by astype(uint8): clip, scale,
 * truncate toward zero. */
static inline uint8_t rescale_px(float v, double lo, double hi)
{
    double x = v;
    if (x < lo)
        x = lo;
    if (x > hi)
        x = hi;
    double span = hi - lo;
    double out = span > 0 && isfinite(span) ? (x - lo) / span * 255.0 : 0.0;
    if (!(out >= 0))
        out = 0;
    if (out > 255)
        out = 255;
    return (uint8_t)out;
}

int ts_render_image(const ts_raster *r, const ts_render_opts *o, ts_image *img, ts_ctx *ctx)
{
    const ts_params *p = o->params;
    memset(img, 0, sizeof *img);
    if (r->bands != 1 && r->bands != 3)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "cannot render %d bands as an image: select 1 or 3 bands with bidx or expression",
                            r->bands);
    int w = r->width - 2 * o->crop, h = r->height - 2 * o->crop;
    if (w <= 0 || h <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "tile smaller than its padding");

    bool any_masked = false;
    for (int y = 0; y < h && !any_masked; y++) {
        const uint8_t *m = r->mask + (size_t)(y + o->crop) * r->width + o->crop;
        for (int x = 0; x < w; x++)
            if (m[x] != 255) {
                any_masked = true;
                break;
            }
    }
    bool alpha = p->return_mask && (any_masked || o->force_alpha);
    int color = r->bands;
    int ch = color + (alpha ? 1 : 0);
    img->width = w;
    img->height = h;
    img->channels = ch;
    img->stride = (size_t)w * ch;
    img->data = malloc(img->stride * h);
    if (!img->data)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");

    for (int b = 0; b < color; b++) {
        double lo, hi;
        if (p->nrescale > 0) {
            int k = p->nrescale == 1 ? 0 : (b < p->nrescale ? b : p->nrescale - 1);
            lo = p->rescale[k][0];
            hi = p->rescale[k][1];
        } else {
            lo = r->dtype_min;
            hi = r->dtype_max;
        }
        bool identity = lo == 0 && hi == 255;
        const float *src = ts_raster_band(r, b);
        for (int y = 0; y < h; y++) {
            const float *s = src + (size_t)(y + o->crop) * r->width + o->crop;
            uint8_t *d = img->data + (size_t)y * img->stride + b;
            if (identity) {
                for (int x = 0; x < w; x++, d += ch) {
                    float v = s[x];
                    *d = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
                }
            } else {
                for (int x = 0; x < w; x++, d += ch)
                    *d = rescale_px(s[x], lo, hi);
            }
        }
    }
    if (alpha) {
        for (int y = 0; y < h; y++) {
            const uint8_t *m = r->mask + (size_t)(y + o->crop) * r->width + o->crop;
            uint8_t *d = img->data + (size_t)y * img->stride + color;
            for (int x = 0; x < w; x++, d += ch)
                *d = m[x];
        }
    }
    return 0;
}
