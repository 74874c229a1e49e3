/*
 * WebP encoder (libwebp, lossy). WebP has no grey mode: grey becomes RGB and
 * grey + alpha becomes RGBA through one converted copy.
 */
#include "ts_encode.h"

#include <limits.h>
#include <stdlib.h>
#include <webp/encode.h>

#define DEFAULT_QUALITY 75
#define WEBP_MAX_DIM 16383 /* the format stores dimensions in 14 bits */

static int encode_webp(const ts_image *img, const ts_encode_opts *opts, ts_blob **out, ts_ctx *ctx)
{
    *out = NULL;
    int rc = ts__image_check(img, "webp", ctx);
    if (rc < 0)
        return rc;
    if (img->width > WEBP_MAX_DIM || img->height > WEBP_MAX_DIM)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "webp: %dx%d exceeds WebP's %d pixel limit",
                            img->width, img->height, WEBP_MAX_DIM);
    int quality = opts && opts->quality > 0 ? opts->quality : DEFAULT_QUALITY;
    if (quality > 100)
        quality = 100;

    ts_image rgb = {0};
    const ts_image *src = img;
    if (img->channels < 3) {
        if ((rc = ts__image_convert(img, img->channels + 2, &rgb, ctx)) < 0)
            return rc;
        src = &rgb;
    }
    if (src->stride > INT_MAX) {
        free(rgb.data);
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "webp: row stride too large");
    }

    /* libwebp allocates the output itself (WebPFree owns it); the copy into
     * an exact-size blob is small next to the encode. */
    uint8_t *webp = NULL;
    size_t len = src->channels == 4 ? WebPEncodeRGBA(src->data, src->width, src->height,
                                                     (int)src->stride, (float)quality, &webp)
                                    : WebPEncodeRGB(src->data, src->width, src->height,
                                                    (int)src->stride, (float)quality, &webp);
    free(rgb.data);
    if (len == 0 || !webp) {
        WebPFree(webp);
        return ts_ctx_error(ctx, TS_EINTERNAL, "webp: encoding a %dx%d image failed", img->width,
                            img->height);
    }
    *out = ts_blob_from(webp, len);
    WebPFree(webp);
    if (!*out)
        return ts_ctx_error(ctx, TS_ENOMEM, "webp: out of memory");
    return 0;
}

const ts_encoder ts__encoder_webp = {"webp", "image/webp", encode_webp};
