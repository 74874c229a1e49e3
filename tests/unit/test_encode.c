/* Encoders: format names, lossless PNG round trips, JPEG/WebP decode checks. */
#include "ts_encode.h"
#include "ts_test.h"

#include <png.h>
#include <pthread.h>
#include <turbojpeg.h>
#include <webp/decode.h>

/* A test image whose rows are `pad` bytes longer than needed, so encoders
 * that ignore the stride are caught. Pixel values mix a gradient with a
 * hash so every filter and every channel sees different bytes. */
static ts_image make_image(int w, int h, int channels, size_t pad)
{
    ts_image img = {w, h, channels, (size_t)w * (size_t)channels + pad, NULL};
    img.data = malloc(img.stride * (size_t)h);
    if (!img.data)
        abort();
    memset(img.data, 0xEE, img.stride * (size_t)h); /* padding must not leak into output */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.data + (size_t)y * img.stride + (size_t)x * (size_t)channels;
            for (int c = 0; c < channels; c++) {
                unsigned v = (unsigned)(x * 3 + y * 2 + c * 50);
                v += ((unsigned)(x * 7919 + y * 104729 + c * 31) * 2654435761u) >> 29;
                p[c] = (uint8_t)v;
            }
            if (channels == 2 || channels == 4)
                p[channels - 1] = (uint8_t)((x + y) % 3 == 0 ? 0 : 40 * ((x + y) % 7));
        }
    }
    return img;
}

/* Smooth image for lossy codecs, whose error on noise would say nothing. */
static ts_image make_smooth(int w, int h, int channels)
{
    ts_image img = {w, h, channels, (size_t)w * (size_t)channels, NULL};
    img.data = malloc(img.stride * (size_t)h);
    if (!img.data)
        abort();
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.data + (size_t)y * img.stride + (size_t)x * (size_t)channels;
            p[0] = (uint8_t)(40 + x * 150 / (w > 1 ? w - 1 : 1));
            if (channels >= 3) {
                p[1] = (uint8_t)(200 - y * 150 / (h > 1 ? h - 1 : 1));
                p[2] = (uint8_t)(100 + (x + y) * 50 / (w + h));
            }
            if (channels == 2 || channels == 4)
                p[channels - 1] = (uint8_t)(x < w / 2 ? 0 : 255);
        }
    }
    return img;
}

/* Decode a PNG with libpng's simplified API into `channels` and compare
 * every pixel with img. Returns 1 when identical. */
static int png_matches(const ts_blob *b, const ts_image *img)
{
    static const png_uint_32 fmts[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                        PNG_FORMAT_RGBA};
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, b->data, b->size))
        return 0;
    /* The file's own colour type must match the input's channel count. */
    int ok = PNG_IMAGE_SAMPLE_CHANNELS(pi.format) == (unsigned)img->channels &&
             (int)pi.width == img->width && (int)pi.height == img->height;
    pi.format = fmts[img->channels];
    uint8_t *px = ok ? malloc(PNG_IMAGE_SIZE(pi)) : NULL;
    ok = ok && px && png_image_finish_read(&pi, NULL, px, 0, NULL);
    const size_t row = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; ok && y < img->height; y++)
        ok = memcmp(px + (size_t)y * row, img->data + (size_t)y * img->stride, row) == 0;
    png_image_free(&pi);
    free(px);
    return ok;
}

static int encode(ts_format f, const ts_image *img, const ts_encode_opts *opts, ts_blob **out)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    int rc = ts_encode(f, img, opts, out, &ctx);
    if (rc < 0)
        fprintf(stderr, "  encode: %s\n", ctx.detail);
    return rc;
}

static void format_names(void)
{
    static const struct {
        const char *s;
        ts_format f;
    } good[] = {{"png", TS_FMT_PNG},  {"pngraw", TS_FMT_PNGRAW}, {"jpeg", TS_FMT_JPEG},
                {"jpg", TS_FMT_JPEG}, {"webp", TS_FMT_WEBP},     {"tif", TS_FMT_TIF},
                {"tiff", TS_FMT_TIF}, {"npy", TS_FMT_NPY}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ts_format f = TS_FMT_AUTO;
        CHECK_INT(ts_format_parse(good[i].s, &f), 0);
        CHECK_INT(f, good[i].f);
    }
    static const char *bad[] = {"", "PNG", "gif", "pn", "pngg", "jpeg2000", " png", "png "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_format f = TS_FMT_WEBP;
        CHECK_INT(ts_format_parse(bad[i], &f), -1);
        CHECK_INT(f, TS_FMT_WEBP); /* untouched on failure */
    }
    ts_format f;
    CHECK_INT(ts_format_parse(NULL, &f), -1);

    CHECK_STR(ts_format_name(TS_FMT_JPEG), "jpeg");
    CHECK_STR(ts_format_name(TS_FMT_PNGRAW), "pngraw");
    CHECK_STR(ts_format_mime(TS_FMT_PNG), "image/png");
    CHECK_STR(ts_format_mime(TS_FMT_PNGRAW), "image/png");
    CHECK_STR(ts_format_mime(TS_FMT_JPEG), "image/jpeg");
    CHECK_STR(ts_format_mime(TS_FMT_WEBP), "image/webp");
    CHECK_STR(ts_format_mime(TS_FMT_TIF), "image/tiff; application=geotiff");
    CHECK_STR(ts_format_mime(TS_FMT_NPY), "application/x-binary");
    CHECK_STR(ts_format_ext(TS_FMT_JPEG), "jpg");
    CHECK_STR(ts_format_ext(TS_FMT_PNGRAW), "png");
    CHECK_STR(ts_format_ext(TS_FMT_TIF), "tif");
    CHECK_STR(ts_format_list(), "png, pngraw, jpeg, jpg, webp, tif, npy");
    CHECK(ts_format_name(TS_FMT_AUTO) == NULL);
    CHECK(ts_format_mime(TS_FMT_COUNT) == NULL);
}

static void encoder_registry(void)
{
    CHECK(ts_encoder_for(TS_FMT_PNG) != NULL);
    CHECK_STR(ts_encoder_for(TS_FMT_PNGRAW)->name, "pngraw");
    CHECK_STR(ts_encoder_for(TS_FMT_JPEG)->mime, "image/jpeg");
    CHECK_STR(ts_encoder_for(TS_FMT_WEBP)->mime, "image/webp");
    CHECK(ts_encoder_for(TS_FMT_TIF) == NULL);
    CHECK(ts_encoder_for(TS_FMT_NPY) == NULL);
    CHECK(ts_encoder_for(TS_FMT_AUTO) == NULL);

    /* Asking ts_encode for a reader-produced format is an internal error. */
    ts_image img = make_image(4, 4, 3, 0);
    ts_blob *sentinel = ts_blob_new(0);
    ts_blob *b = sentinel; /* must be reset to NULL on failure */
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    int rc = ts_encode(TS_FMT_TIF, &img, NULL, &b, &ctx);
    ts_blob_unref(sentinel);
    free(img.data);
    CHECK(rc < 0);
    CHECK(b == NULL);
    CHECK_INT(ctx.status, 500);
}

static void format_auto(void)
{
    ts_image rgba = make_smooth(8, 8, 4); /* left half transparent */
    ts_image rgb = make_smooth(8, 8, 3);
    int masked = ts_format_resolve(TS_FMT_AUTO, &rgba);
    memset(rgba.data, 255, 8 * 8 * 4);
    int opaque = ts_format_resolve(TS_FMT_AUTO, &rgba);
    int no_alpha = ts_format_resolve(TS_FMT_AUTO, &rgb);
    int explicit_fmt = ts_format_resolve(TS_FMT_WEBP, &rgba);
    free(rgba.data);
    free(rgb.data);
    CHECK_INT(masked, TS_FMT_PNG);
    CHECK_INT(opaque, TS_FMT_JPEG);
    CHECK_INT(no_alpha, TS_FMT_JPEG);
    CHECK_INT(explicit_fmt, TS_FMT_WEBP);
}

/* Every channel count, odd sizes and odd strides, both PNG formats and an
 * explicit zlevel: decoded pixels must equal the input exactly. */
static void png_roundtrip(void)
{
    static const ts_format fmts[] = {TS_FMT_PNG, TS_FMT_PNGRAW};
    static const int zlevels[] = {-1, 0, 9};
    for (int c = 1; c <= 4; c++) {
        ts_image img = make_image(37, 23, c, (size_t)(c * 3 + 1));
        for (size_t f = 0; f < 2; f++) {
            for (size_t z = 0; z < 3; z++) {
                ts_encode_opts o = {.quality = 0, .zlevel = zlevels[z]};
                ts_blob *b = NULL;
                CHECK_INT(encode(fmts[f], &img, &o, &b), 0);
                CHECK(b->size > 8 && memcmp(b->data, "\x89PNG\r\n\x1a\n", 8) == 0);
                int ok = png_matches(b, &img);
                ts_blob_unref(b);
                if (!ok)
                    fprintf(stderr, "  channels %d format %zu zlevel %d\n", c, f, zlevels[z]);
                CHECK(ok);
            }
        }
        free(img.data);
    }
}

/* Every filter on every backend (the benchmark relies on these). */
static void png_tunings_roundtrip(void)
{
    for (int c = 1; c <= 4; c++) {
        ts_image img = make_image(29, 17, c, 3);
        static const ts_png_backend backends[] = {TS_PNG_LIBPNG, TS_PNG_LIBDEFLATE, TS_PNG_ZLIB,
                                                  TS_PNG_AUTO};
        for (size_t k = 0; k < sizeof backends / sizeof backends[0]; k++) {
            const ts_png_backend backend = backends[k];
            for (int filt = TS_PNG_FILTER_NONE; filt <= TS_PNG_FILTER_ADAPTIVE_FAST; filt++) {
                ts_png_tuning t = {backend, 6, (ts_png_filter)filt, -1, NULL, NULL};
                ts_blob *b = NULL;
                ts_ctx ctx;
                ts_ctx_init(&ctx);
                CHECK_INT(ts_png_encode_tuned(&img, &t, &b, &ctx), 0);
                int ok = png_matches(b, &img);
                ts_blob_unref(b);
                if (!ok)
                    fprintf(stderr, "  channels %d backend %d filter %d\n", c, backend, filt);
                CHECK(ok);
            }
        }
        free(img.data);
    }
}

/* Defaults are what the interface promises: `png` level 6, `pngraw` level 1. */
static void png_default_levels(void)
{
    ts_png_tuning png = ts_png_tuning_for(TS_FMT_PNG, -1);
    ts_png_tuning raw = ts_png_tuning_for(TS_FMT_PNGRAW, -1);
    CHECK(png.level >= 3 && png.level <= 6);
    CHECK_INT(raw.level, 1);
    CHECK_INT(ts_png_tuning_for(TS_FMT_PNG, 2).level, 2);
    CHECK_INT(ts_png_tuning_for(TS_FMT_PNGRAW, 42).level, 9);

    /* pngraw trades size for speed: never smaller than png on real data. */
    ts_image img = make_smooth(128, 128, 4);
    ts_blob *a = NULL, *b = NULL;
    CHECK_INT(encode(TS_FMT_PNG, &img, NULL, &a), 0);
    CHECK_INT(encode(TS_FMT_PNGRAW, &img, NULL, &b), 0);
    CHECK(a->size <= b->size);
    ts_blob_unref(a);
    ts_blob_unref(b);
    free(img.data);
}

/* `png` picks its compressor by content (Z_RLE for photographs, libdeflate
 * for posterised data): the test must classify the obvious cases, and both
 * branches must round-trip. */
static void png_auto_branches(void)
{
    ts_image noisy = make_image(128, 96, 3, 2);
    for (int y = 0; y < noisy.height; y++)
        for (int x = 0; x < noisy.width * 3; x++) {
            uint8_t *p = noisy.data + (size_t)y * noisy.stride + (size_t)x;
            uint32_t h = (uint32_t)x * 0x9E3779B1u ^ (uint32_t)y * 0x85EBCA77u;
            h ^= h >> 15;
            h *= 0x2C1B3C6Du;
            h ^= h >> 12;
            *p = (uint8_t)(x / 3 + y + (h & 31)); /* gradient + sensor-like noise */
        }
    static const uint8_t palette[6][4] = {{0, 0, 0, 0},         {10, 120, 30, 255},
                                          {200, 180, 40, 255},  {90, 60, 30, 255},
                                          {240, 240, 240, 255}, {20, 60, 200, 255}};
    ts_image poster = make_image(128, 96, 4, 0);
    for (int y = 0; y < poster.height; y++)
        for (int x = 0; x < poster.width; x++)
            memcpy(poster.data + (size_t)y * poster.stride + (size_t)x * 4,
                   palette[((x + 2 * y) / 9 + (x * x + y) / 300) % 6], 4);
    ts_image one_row = make_image(300, 1, 3, 0);

    int noisy_photo = ts_png_is_photographic(&noisy);
    int poster_photo = ts_png_is_photographic(&poster);
    int row_photo = ts_png_is_photographic(&one_row);
    ts_blob *a = NULL, *b = NULL;
    int ok = encode(TS_FMT_PNG, &noisy, NULL, &a) == 0 && png_matches(a, &noisy) &&
             encode(TS_FMT_PNG, &poster, NULL, &b) == 0 && png_matches(b, &poster);
    ts_blob_unref(a);
    ts_blob_unref(b);
    free(noisy.data);
    free(poster.data);
    free(one_row.data);
    CHECK_INT(noisy_photo, 1);
    CHECK_INT(poster_photo, 0);
    CHECK_INT(row_photo, 0); /* too little to judge: the safe branch */
    CHECK(ok);
}

/* Mean absolute difference between decoded and source samples. */
static double mean_abs_diff(const uint8_t *dec, const ts_image *src, int dec_channels,
                            int compare_channels)
{
    double sum = 0;
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < src->width; x++)
            for (int c = 0; c < compare_channels; c++) {
                const uint8_t *s =
                    src->data + (size_t)y * src->stride + (size_t)x * (size_t)src->channels;
                const uint8_t *d =
                    dec + ((size_t)y * (size_t)src->width + (size_t)x) * (size_t)dec_channels;
                sum += fabs((double)d[c] - (double)s[c]);
            }
    return sum / ((double)src->width * src->height * compare_channels);
}

/* Decode a JPEG with TurboJPEG; returns a malloc'd buffer in pixel format pf
 * and the header facts, or NULL. */
static uint8_t *jpeg_decode(const ts_blob *b, int pf, int *w, int *h, int *subsamp, int *colorspace)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return NULL;
    uint8_t *px = NULL;
    if (tjDecompressHeader3(tj, b->data, b->size, w, h, subsamp, colorspace) == 0) {
        px = malloc((size_t)*w * (size_t)*h * (size_t)tjPixelSize[pf]);
        if (px && tjDecompress2(tj, b->data, b->size, px, *w, 0, *h, pf, 0) != 0)
            TS_FREE(px);
    }
    tjDestroy(tj);
    return px;
}

static void jpeg_rgb(void)
{
    ts_image img = make_smooth(64, 48, 3);
    ts_blob *b = NULL;
    CHECK_INT(encode(TS_FMT_JPEG, &img, NULL, &b), 0);
    CHECK(b->size > 2 && b->data[0] == 0xFF && b->data[1] == 0xD8);
    int w, h, ss, cs;
    uint8_t *px = jpeg_decode(b, TJPF_RGB, &w, &h, &ss, &cs);
    CHECK(px != NULL);
    CHECK_INT(w, 64);
    CHECK_INT(h, 48);
    CHECK_INT(cs, TJCS_YCbCr);
    double err = mean_abs_diff(px, &img, 3, 3);
    free(px);

    /* Higher quality is bigger; quality 100 is accepted, >100 clamped. */
    ts_blob *lo = NULL, *hi = NULL, *over = NULL;
    CHECK_INT(encode(TS_FMT_JPEG, &img, &(ts_encode_opts){.quality = 20}, &lo), 0);
    CHECK_INT(encode(TS_FMT_JPEG, &img, &(ts_encode_opts){.quality = 100}, &hi), 0);
    CHECK_INT(encode(TS_FMT_JPEG, &img, &(ts_encode_opts){.quality = 250}, &over), 0);
    int sizes_ok = lo->size < b->size && b->size < hi->size && over->size == hi->size;
    ts_blob_unref(lo);
    ts_blob_unref(hi);
    ts_blob_unref(over);
    ts_blob_unref(b);
    free(img.data);
    CHECK(err < 2.5);
    CHECK(sizes_ok);
}

/* RGBA: alpha is dropped (three-component YCbCr file), colours survive. */
static void jpeg_drops_alpha(void)
{
    ts_image img = make_smooth(40, 40, 4);
    ts_blob *b = NULL;
    CHECK_INT(encode(TS_FMT_JPEG, &img, NULL, &b), 0);
    int w, h, ss, cs;
    uint8_t *px = jpeg_decode(b, TJPF_RGB, &w, &h, &ss, &cs);
    ts_blob_unref(b);
    CHECK(px != NULL);
    int header_ok = w == 40 && h == 40 && cs == TJCS_YCbCr && ss == TJSAMP_420;
    /* Transparent pixels keep their colour: alpha is ignored, not applied. */
    double err = mean_abs_diff(px, &img, 3, 3);
    free(px);
    free(img.data);
    CHECK(header_ok);
    CHECK(err < 2.5);
}

/* Grey and grey + alpha both become single-component greyscale JPEGs. */
static void jpeg_grey(void)
{
    for (int c = 1; c <= 2; c++) {
        ts_image img = make_smooth(33, 17, c);
        ts_blob *b = NULL;
        CHECK_INT(encode(TS_FMT_JPEG, &img, NULL, &b), 0);
        int w, h, ss, cs;
        uint8_t *px = jpeg_decode(b, TJPF_GRAY, &w, &h, &ss, &cs);
        ts_blob_unref(b);
        CHECK(px != NULL);
        int header_ok = w == 33 && h == 17 && cs == TJCS_GRAY && ss == TJSAMP_GRAY;
        double err = mean_abs_diff(px, &img, 1, 1);
        free(px);
        free(img.data);
        CHECK(header_ok);
        CHECK(err < 2.0);
    }
}

static void webp_rgba_keeps_alpha(void)
{
    ts_image img = make_smooth(50, 30, 4);
    ts_blob *b = NULL;
    CHECK_INT(encode(TS_FMT_WEBP, &img, NULL, &b), 0);
    CHECK(b->size > 12 && memcmp(b->data, "RIFF", 4) == 0 && memcmp(b->data + 8, "WEBP", 4) == 0);
    WebPBitstreamFeatures feat;
    CHECK_INT(WebPGetFeatures(b->data, b->size, &feat), VP8_STATUS_OK);
    CHECK(feat.has_alpha);
    int w = 0, h = 0;
    uint8_t *px = WebPDecodeRGBA(b->data, b->size, &w, &h);
    ts_blob_unref(b);
    CHECK(px != NULL);
    int alpha_ok = w == 50 && h == 30;
    for (int i = 0; alpha_ok && i < w * h; i++)
        alpha_ok = px[4 * i + 3] == img.data[4 * i + 3];
    /* Colour is only compared where opaque: lossy WebP may rewrite the RGB
     * of fully transparent pixels. */
    double sum = 0;
    int n = 0;
    for (int i = 0; i < w * h; i++)
        if (img.data[4 * i + 3] == 255)
            for (int c = 0; c < 3; c++, n++)
                sum += fabs((double)px[4 * i + c] - img.data[4 * i + c]);
    WebPFree(px);
    free(img.data);
    CHECK(alpha_ok);
    CHECK(n > 0 && sum / n < 4.0);
}

/* Grey is expanded to RGB (no alpha), grey + alpha to RGBA. */
static void webp_grey(void)
{
    for (int c = 1; c <= 2; c++) {
        ts_image img = make_smooth(24, 20, c);
        ts_blob *b = NULL;
        CHECK_INT(encode(TS_FMT_WEBP, &img, NULL, &b), 0);
        WebPBitstreamFeatures feat;
        CHECK_INT(WebPGetFeatures(b->data, b->size, &feat), VP8_STATUS_OK);
        int w = 0, h = 0;
        uint8_t *px = WebPDecodeRGBA(b->data, b->size, &w, &h);
        ts_blob_unref(b);
        CHECK(px != NULL);
        int ok = w == 24 && h == 20 && feat.has_alpha == (c == 2);
        double sum = 0;
        int n = 0;
        for (int i = 0; ok && i < w * h; i++) {
            uint8_t alpha = c == 2 ? img.data[2 * i + 1] : 255;
            ok = px[4 * i + 3] == alpha;
            if (alpha == 255)
                for (int k = 0; k < 3; k++, n++)
                    sum += fabs((double)px[4 * i + k] - img.data[c * i]);
        }
        WebPFree(px);
        free(img.data);
        CHECK(ok);
        CHECK(n > 0 && sum / n < 4.0);
    }
}

/* Degenerate shapes: a single pixel, one long row, one long column. */
static void tiny_and_thin_images(void)
{
    static const int shapes[][2] = {{1, 1}, {4096, 1}, {1, 4096}};
    static const ts_format fmts[] = {TS_FMT_PNG, TS_FMT_PNGRAW, TS_FMT_JPEG, TS_FMT_WEBP};
    for (size_t s = 0; s < 3; s++) {
        for (int c = 1; c <= 4; c++) {
            ts_image img = make_image(shapes[s][0], shapes[s][1], c, 1);
            for (size_t f = 0; f < 4; f++) {
                ts_blob *b = NULL;
                CHECK_INT(encode(fmts[f], &img, NULL, &b), 0);
                int ok = b->size > 0;
                if (fmts[f] == TS_FMT_PNG || fmts[f] == TS_FMT_PNGRAW) {
                    ok = png_matches(b, &img);
                } else if (fmts[f] == TS_FMT_JPEG) {
                    int w, h, ss, cs;
                    uint8_t *px = jpeg_decode(b, TJPF_RGB, &w, &h, &ss, &cs);
                    ok = px && w == img.width && h == img.height;
                    free(px);
                } else {
                    int w = 0, h = 0;
                    ok = WebPGetInfo(b->data, b->size, &w, &h) && w == img.width && h == img.height;
                }
                ts_blob_unref(b);
                if (!ok)
                    fprintf(stderr, "  %dx%d channels %d format %s\n", img.width, img.height, c,
                            ts_format_name(fmts[f]));
                CHECK(ok);
            }
            free(img.data);
        }
    }
}

static void bad_images(void)
{
    uint8_t px[64] = {0};
    const ts_image bad[] = {
        {0, 4, 3, 12, px},  /* no width */
        {4, 4, 5, 20, px},  /* five channels */
        {4, 4, 3, 11, px},  /* stride shorter than a row */
        {4, 4, 3, 12, NULL} /* no pixels */
    };
    static const ts_format fmts[] = {TS_FMT_PNG, TS_FMT_PNGRAW, TS_FMT_JPEG, TS_FMT_WEBP};
    ts_blob *sentinel = ts_blob_new(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t f = 0; f < 4; f++) {
            ts_blob *b = sentinel; /* must be reset to NULL on failure */
            ts_ctx ctx;
            ts_ctx_init(&ctx);
            int rc = ts_encode(fmts[f], &bad[i], NULL, &b, &ctx);
            if (rc >= 0 || b != NULL || !ts_ctx_failed(&ctx) || !ctx.detail[0]) {
                ts_blob_unref(sentinel);
                CHECK(!"a bad image was accepted");
            }
        }
    }
    ts_blob_unref(sentinel);
    /* Beyond WebP's 16383-pixel limit: a client error, not a crash. */
    ts_image wide = {20000, 1, 1, 20000, malloc(20000)};
    CHECK(wide.data != NULL);
    memset(wide.data, 7, 20000);
    ts_blob *b = NULL;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    int rc = ts_encode(TS_FMT_WEBP, &wide, NULL, &b, &ctx);
    free(wide.data);
    CHECK_INT(rc, -TS_EUNPROCESSABLE);
    CHECK(b == NULL);
}

/* The JPEG and PNG encoders keep per-thread state: concurrent encodes must
 * produce exactly the bytes a single thread does, and thread exit must free
 * the state (run under ASan/valgrind to see the latter). */
typedef struct thread_arg {
    const ts_image *img;
    const ts_blob *png, *jpeg;
    int failures;
} thread_arg;

static void *encode_thread(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 20; i++) {
        ts_blob *png = NULL, *jpeg = NULL;
        if (encode(TS_FMT_PNG, a->img, NULL, &png) < 0 ||
            encode(TS_FMT_JPEG, a->img, NULL, &jpeg) < 0 || png->size != a->png->size ||
            memcmp(png->data, a->png->data, png->size) != 0 || jpeg->size != a->jpeg->size ||
            memcmp(jpeg->data, a->jpeg->data, jpeg->size) != 0)
            a->failures++;
        ts_blob_unref(png);
        ts_blob_unref(jpeg);
    }
    return NULL;
}

static void concurrent_encoders(void)
{
    ts_image img = make_image(256, 256, 4, 0);
    ts_blob *png = NULL, *jpeg = NULL;
    CHECK_INT(encode(TS_FMT_PNG, &img, NULL, &png), 0);
    CHECK_INT(encode(TS_FMT_JPEG, &img, NULL, &jpeg), 0);
    enum { N = 4 };
    pthread_t th[N];
    thread_arg args[N];
    int started = 0;
    for (int i = 0; i < N; i++) {
        args[i] = (thread_arg){&img, png, jpeg, 0};
        if (pthread_create(&th[i], NULL, encode_thread, &args[i]) == 0)
            started++;
    }
    int failures = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        failures += args[i].failures;
    }
    ts_blob_unref(png);
    ts_blob_unref(jpeg);
    free(img.data);
    CHECK_INT(started, N);
    CHECK_INT(failures, 0);
}

TS_TEST_MAIN(TEST(format_names), TEST(encoder_registry), TEST(format_auto), TEST(png_roundtrip),
             TEST(png_tunings_roundtrip), TEST(png_auto_branches), TEST(png_default_levels),
             TEST(jpeg_rgb), TEST(jpeg_drops_alpha), TEST(jpeg_grey), TEST(webp_rgba_keeps_alpha),
             TEST(webp_grey), TEST(tiny_and_thin_images), TEST(bad_images),
             TEST(concurrent_encoders))
