/*
 * Format names and the encoder registry (see ts_encode.h). Adding an encoder
 * is one new file exporting a ts_encoder plus one line in `encoders` below.
 */
#include "ts_encode.h"

#include <stdlib.h>
#include <string.h>

extern const ts_encoder ts__encoder_png;
extern const ts_encoder ts__encoder_pngraw;
extern const ts_encoder ts__encoder_jpeg;
extern const ts_encoder ts__encoder_webp;

typedef struct format_info {
    const char *name; /* canonical name, as in ts_format_name() */
    const char *mime;
    const char *ext;
    const ts_encoder *encoder; /* NULL: the bytes come from the reader */
} format_info;

static const format_info formats[TS_FMT_COUNT] = {
    [TS_FMT_PNG] = {"png", "image/png", "png", &ts__encoder_png},
    [TS_FMT_PNGRAW] = {"pngraw", "image/png", "png", &ts__encoder_pngraw},
    [TS_FMT_JPEG] = {"jpeg", "image/jpeg", "jpg", &ts__encoder_jpeg},
    [TS_FMT_WEBP] = {"webp", "image/webp", "webp", &ts__encoder_webp},
    [TS_FMT_TIF] = {"tif", "image/tiff; application=geotiff", "tif", NULL},
    [TS_FMT_NPY] = {"npy", "application/x-binary", "npy", NULL},
};

/* Accepted spellings. Matching is exact (lower case, like TiTiler's
 * ImageType), so "PNG" and "png" never become two cache entries for the
 * same bytes. */
static const struct {
    const char *name;
    ts_format fmt;
} aliases[] = {
    {"png", TS_FMT_PNG},   {"pngraw", TS_FMT_PNGRAW}, {"jpeg", TS_FMT_JPEG}, {"jpg", TS_FMT_JPEG},
    {"webp", TS_FMT_WEBP}, {"tif", TS_FMT_TIF},       {"tiff", TS_FMT_TIF},  {"npy", TS_FMT_NPY},
};

int ts_format_parse(const char *s, ts_format *out)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(s, aliases[i].name) == 0) {
            *out = aliases[i].fmt;
            return 0;
        }
    }
    return -1;
}

static const format_info *info(ts_format f)
{
    return ((int)f >= 0 && f < TS_FMT_COUNT) ? &formats[f] : NULL;
}

const char *ts_format_name(ts_format f)
{
    const format_info *i = info(f);
    return i ? i->name : NULL;
}

const char *ts_format_mime(ts_format f)
{
    const format_info *i = info(f);
    return i ? i->mime : NULL;
}

const char *ts_format_ext(ts_format f)
{
    const format_info *i = info(f);
    return i ? i->ext : NULL;
}

const char *ts_format_list(void)
{
    /* "tiff" is accepted but not advertised, as in TiTiler. */
    return "png, pngraw, jpeg, jpg, webp, tif, npy";
}

const ts_encoder *ts_encoder_for(ts_format f)
{
    const format_info *i = info(f);
    return i ? i->encoder : NULL;
}

ts_format ts_format_resolve(ts_format f, const ts_image *img)
{
    if (f != TS_FMT_AUTO)
        return f;
    if (!img || !img->data || (img->channels != 2 && img->channels != 4))
        return TS_FMT_JPEG;
    const int c = img->channels;
    for (int y = 0; y < img->height; y++) {
        const uint8_t *a = img->data + (size_t)y * img->stride + (c - 1);
        for (int x = 0; x < img->width; x++, a += c)
            if (*a != 255)
                return TS_FMT_PNG;
    }
    return TS_FMT_JPEG;
}

int ts_encode(ts_format f, const ts_image *img, const ts_encode_opts *opts, ts_blob **out,
              ts_ctx *ctx)
{
    static const ts_encode_opts defaults = {.quality = 0, .zlevel = -1};
    *out = NULL;
    const ts_encoder *enc = ts_encoder_for(f);
    if (!enc)
        return ts_ctx_error(ctx, TS_EINTERNAL, "no image encoder for format '%s'",
                            ts_format_name(f) ? ts_format_name(f) : "?");
    /* Channel conversion (JPEG drops alpha, WebP expands grey) happens inside
     * each encoder, so calling an encoder from ts_encoder_for() directly is
     * just as safe; the encoders avoid a copy where their library can read
     * the layout as is (TurboJPEG's RGBX, for instance). */
    return enc->encode(img, opts ? opts : &defaults, out, ctx);
}

int ts__image_check(const ts_image *img, const char *who, ts_ctx *ctx)
{
    if (!img || !img->data || img->width <= 0 || img->height <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "%s: empty image", who);
    if (img->channels < 1 || img->channels > 4)
        return ts_ctx_error(ctx, TS_EINTERNAL, "%s: unsupported channel count %d", who,
                            img->channels);
    if (img->stride < (size_t)img->width * (size_t)img->channels)
        return ts_ctx_error(ctx, TS_EINTERNAL, "%s: stride %zu shorter than a row", who,
                            img->stride);
    return 0;
}

int ts__image_convert(const ts_image *img, int channels, ts_image *dst, ts_ctx *ctx)
{
    memset(dst, 0, sizeof *dst);
    if (channels < 1 || channels > 4)
        return ts_ctx_error(ctx, TS_EINTERNAL, "image conversion to %d channels", channels);
    const int w = img->width, h = img->height, sc = img->channels;
    const size_t stride = (size_t)w * (size_t)channels;
    uint8_t *data = malloc(stride * (size_t)h);
    if (!data)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory converting a %dx%d image", w, h);

    const int src_colour = sc >= 3 ? 3 : 1; /* colour samples per source pixel */
    const int src_alpha = (sc == 2 || sc == 4);
    const int dst_colour = channels >= 3 ? 3 : 1;
    const int dst_alpha = (channels == 2 || channels == 4);
    for (int y = 0; y < h; y++) {
        const uint8_t *s = img->data + (size_t)y * img->stride;
        uint8_t *d = data + (size_t)y * stride;
        for (int x = 0; x < w; x++, s += sc, d += channels) {
            if (dst_colour == src_colour) {
                memcpy(d, s, (size_t)dst_colour);
            } else if (dst_colour == 3) {
                d[0] = d[1] = d[2] = s[0];
            } else {
                /* Rec. 601 luma in fixed point, rounded: what libjpeg does. */
                d[0] = (uint8_t)((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 32768u) >> 16);
            }
            if (dst_alpha)
                d[dst_colour] = src_alpha ? s[src_colour] : 255;
        }
    }
    dst->width = w;
    dst->height = h;
    dst->channels = channels;
    dst->stride = stride;
    dst->data = data;
    return 0;
}
