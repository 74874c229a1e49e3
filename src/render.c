/* Rescaling, colouring and masking into an 8-bit image (see ts_render.h). */
#include "ts_render.h"
#include "ts_color_formula.h"
#include "ts_colormap.h"

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

/* Grey images become RGB(A) so that a colour formula has three channels. */
static int apply_formula(const ts_render_opts *o, ts_image *img, ts_ctx *ctx)
{
    if (!o->formula)
        return 0;
    if (img->channels <= 2) {
        int ch = img->channels + 2;
        size_t npx = (size_t)img->width * img->height;
        uint8_t *d = malloc(npx * (size_t)ch);
        if (!d)
            return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        for (size_t i = 0; i < npx; i++) {
            const uint8_t *sp = img->data + i * (size_t)img->channels;
            uint8_t *dp = d + i * (size_t)ch;
            dp[0] = dp[1] = dp[2] = sp[0];
            if (ch == 4)
                dp[3] = sp[1];
        }
        free(img->data);
        img->data = d;
        img->channels = ch;
        img->stride = (size_t)img->width * ch;
    }
    ts_color_formula_apply(o->formula, img->data, (size_t)img->width * img->height, img->channels);
    return 0;
}

/* One band through a colormap. Without rescale the raw values are looked up
 * (TiTiler does not stretch data it colours); with rescale the 0-255 result is. */
static int render_colormap(const ts_raster *r, const ts_render_opts *o, int w, int h,
                           ts_image *img, ts_ctx *ctx)
{
    const ts_params *p = o->params;
    size_t npx = (size_t)w * h;
    float *vals = malloc(npx * sizeof(float));
    uint8_t *mask = malloc(npx);
    uint8_t *rgba = malloc(npx * 4);
    if (!vals || !mask || !rgba) {
        free(vals);
        free(mask);
        free(rgba);
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    }
    const float *src = ts_raster_band(r, 0);
    for (int y = 0; y < h; y++) {
        const float *sr = src + (size_t)(y + o->crop) * r->width + o->crop;
        const uint8_t *mr = r->mask + (size_t)(y + o->crop) * r->width + o->crop;
        for (int x = 0; x < w; x++) {
            float v = sr[x];
            if (p->nrescale > 0)
                v = rescale_px(v, p->rescale[0][0], p->rescale[0][1]);
            vals[(size_t)y * w + x] = v;
            mask[(size_t)y * w + x] = p->return_mask ? mr[x] : 255;
        }
    }
    /* TiTiler's order is rescale -> color_formula -> colormap: an 8-bit band
     * (rescaled, or 8-bit data) goes through the formula as grey (R = G = B)
     * and its first channel is what the colormap looks up. Data that is not
     * 8-bit is looked up raw, so the formula can only follow the colormap. */
    bool formula_first = o->formula && (p->nrescale > 0 || (r->dtype_min >= 0 && r->dtype_max <= 255));
    if (formula_first) {
        uint8_t *grey = malloc(npx * 3);
        if (!grey) {
            free(vals);
            free(mask);
            free(rgba);
            return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < npx; i++) {
            float v = vals[i];
            grey[i * 3] = grey[i * 3 + 1] = grey[i * 3 + 2] =
                !(v > 0) ? 0 : v >= 255 ? 255 : (uint8_t)v;
        }
        ts_color_formula_apply(o->formula, grey, npx, 3);
        for (size_t i = 0; i < npx; i++)
            vals[i] = grey[i * 3];
        free(grey);
    }
    int rc = ts_colormap_apply(o->colormap, vals, mask, npx, rgba);
    free(vals);
    free(mask);
    if (rc < 0) {
        free(rgba);
        return ts_ctx_error(ctx, TS_EINTERNAL, "colormap: cannot be applied");
    }
    bool opaque = true;
    for (size_t i = 0; i < npx && opaque; i++)
        opaque = rgba[i * 4 + 3] == 255;
    img->width = w;
    img->height = h;
    if (opaque && !o->force_alpha) {
        /* Fully opaque: drop alpha so the automatic format can be JPEG. */
        for (size_t i = 0; i < npx; i++)
            memmove(rgba + i * 3, rgba + i * 4, 3);
        img->channels = 3;
    } else {
        img->channels = 4;
    }
    img->stride = (size_t)w * img->channels;
    img->data = rgba;
    return formula_first ? 0 : apply_formula(o, img, ctx);
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

    if (o->colormap && r->bands != 1)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "colormap: can only be applied to one band, the output has %d", r->bands);
    if (o->colormap)
        return render_colormap(r, o, w, h, img, ctx);

    bool any_masked = false;
    for (int y = 0; y < h && !any_masked; y++) {
        const uint8_t *m = r->mask + (size_t)(y + o->crop) * r->width + o->crop;
        /* AND of the row: 255 only if every pixel is valid (vectorises). */
        uint8_t all = 255;
        for (int x = 0; x < w; x++)
            all &= m[x];
        any_masked = all != 255;
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

    /* Untouched RGB bytes without alpha: one interleaving pass. */
    bool rgb_bytes = r->bytes && color == 3 && ch == 3 && p->nrescale == 0 && r->dtype_min == 0 &&
                     r->dtype_max == 255;
    if (rgb_bytes) {
        size_t plane = (size_t)r->width * r->height;
        for (int y = 0; y < h; y++) {
            size_t row = (size_t)(y + o->crop) * r->width + o->crop;
            const uint8_t *s0 = r->bytes + row, *s1 = s0 + plane, *s2 = s1 + plane;
            uint8_t *d = img->data + (size_t)y * img->stride;
            for (int x = 0; x < w; x++, d += 3) {
                d[0] = s0[x];
                d[1] = s1[x];
                d[2] = s2[x];
            }
        }
    }
    for (int b = 0; b < color && !rgb_bytes; b++) {
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
        const uint8_t *bsrc = r->bytes ? r->bytes + (size_t)b * r->width * r->height : NULL;
        for (int y = 0; y < h; y++) {
            const float *s = src + (size_t)(y + o->crop) * r->width + o->crop;
            uint8_t *d = img->data + (size_t)y * img->stride + b;
            if (identity && bsrc) {
                const uint8_t *sb = bsrc + (size_t)(y + o->crop) * r->width + o->crop;
                for (int x = 0; x < w; x++, d += ch)
                    *d = sb[x];
            } else if (identity) {
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
    return apply_formula(o, img, ctx);
}

/* The integer type whose range the raster carries, else float32. */
static ts_dtype raster_dtype(const ts_raster *r)
{
    static const struct {
        double lo, hi;
        ts_dtype t;
    } types[] = {
        {0, 255, TS_DT_U8},
        {0, 65535, TS_DT_U16},
        {-32768, 32767, TS_DT_I16},
        {0, 4294967295.0, TS_DT_U32},
        {-2147483648.0, 2147483647.0, TS_DT_I32},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (r->dtype_min == types[i].lo && r->dtype_max == types[i].hi)
            return types[i].t;
    return TS_DT_F32;
}

static void store_sample(void *dst, size_t i, ts_dtype t, double v)
{
    switch (t) {
    case TS_DT_U8: ((uint8_t *)dst)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
    case TS_DT_U16: ((uint16_t *)dst)[i] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v); break;
    case TS_DT_I16: ((int16_t *)dst)[i] = (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v); break;
    case TS_DT_U32: ((uint32_t *)dst)[i] = (uint32_t)(v < 0 ? 0 : v > 4294967295.0 ? 4294967295.0 : v); break;
    case TS_DT_I32:
        ((int32_t *)dst)[i] = (int32_t)(v < -2147483648.0 ? -2147483648.0 : v > 2147483647.0 ? 2147483647.0 : v);
        break;
    case TS_DT_F32: ((float *)dst)[i] = (float)v; break;
    }
}

int ts_render_array(const ts_raster *r, const ts_render_opts *o, const char *crs, ts_array *out,
                    ts_ctx *ctx)
{
    const ts_params *p = o->params;
    memset(out, 0, sizeof *out);
    int w = r->width - 2 * o->crop, h = r->height - 2 * o->crop;
    if (w <= 0 || h <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "tile smaller than its padding");
    size_t npx = (size_t)w * h;
    memcpy(out->geotransform, r->geotransform, sizeof out->geotransform);
    out->geotransform[0] += o->crop * r->geotransform[1];
    out->geotransform[3] += o->crop * r->geotransform[5];
    out->crs = crs;
    out->width = w;
    out->height = h;

    if (p->nrescale > 0 || o->colormap || o->formula) {
        ts_image img;
        int rc = ts_render_image(r, o, &img, ctx);
        if (rc < 0)
            return rc;
        bool has_alpha = img.channels == 2 || img.channels == 4;
        int color = has_alpha ? img.channels - 1 : img.channels;
        out->bands = color + (p->return_mask ? 1 : 0);
        out->dtype = TS_DT_U8;
        out->last_band_is_mask = p->return_mask;
        uint8_t *d = malloc(npx * (size_t)out->bands);
        if (!d) {
            free(img.data);
            return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        }
        for (int b = 0; b < out->bands; b++)
            for (int y = 0; y < h; y++) {
                const uint8_t *s = img.data + (size_t)y * img.stride;
                uint8_t *dd = d + (size_t)b * npx + (size_t)y * w;
                for (int x = 0; x < w; x++)
                    dd[x] = b < color ? s[(size_t)x * img.channels + b]
                                      : has_alpha ? s[(size_t)x * img.channels + color] : 255;
            }
        free(img.data);
        out->data = d;
        return 0;
    }

    out->dtype = o->float_values ? TS_DT_F32 : raster_dtype(r);
    out->bands = r->bands + (p->return_mask ? 1 : 0);
    out->last_band_is_mask = p->return_mask;
    size_t es = ts_dtype_size(out->dtype);
    void *d = malloc(npx * (size_t)out->bands * es);
    if (!d)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    for (int b = 0; b < out->bands; b++) {
        void *band = (char *)d + (size_t)b * npx * es;
        for (int y = 0; y < h; y++) {
            size_t row = (size_t)(y + o->crop) * r->width + o->crop;
            for (int x = 0; x < w; x++) {
                double v = b < r->bands ? ts_raster_band(r, b)[row + x] : r->mask[row + x];
                store_sample(band, (size_t)y * w + x, out->dtype, v);
            }
        }
    }
    out->data = d;
    return 0;
}
