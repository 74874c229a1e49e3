/*
 * Image encoders behind one interface (libvips's one-file-per-saver): each
 * encoder is one file exporting a ts_encoder, listed in encode.c's registry.
 */
#ifndef TS_ENCODE_H
#define TS_ENCODE_H

#include "ts_common.h"

#include <stdbool.h>
#include <stdint.h>

/* An 8-bit image, pixel-interleaved, `channels` bytes per pixel:
 * 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA. Rows are `stride` bytes apart. */
typedef struct ts_image {
    int width, height;
    int channels;
    size_t stride;
    uint8_t *data;
} ts_image;

typedef enum ts_format {
    TS_FMT_PNG = 0,
    TS_FMT_PNGRAW,
    TS_FMT_JPEG,
    TS_FMT_WEBP,
    TS_FMT_TIF,  /* typed GeoTIFF: produced by the reader, not by an ts_encoder */
    TS_FMT_NPY,  /* raw array: produced by the reader, not by an ts_encoder */
    TS_FMT_COUNT,
    TS_FMT_AUTO = -1 /* JPEG when every pixel is valid, PNG otherwise */
} ts_format;

typedef struct ts_encode_opts {
    int quality;      /* JPEG/WebP quality; 0 = the format's default (85 / 75) */
    int zlevel;       /* PNG deflate level; -1 = the format's default (6, pngraw 1) */
} ts_encode_opts;

typedef struct ts_encoder {
    const char *name;         /* "png" */
    const char *mime;         /* "image/png" */
    /* Encode img into a new blob (*out, refcount 1). Must not keep img. */
    int (*encode)(const ts_image *img, const ts_encode_opts *opts, ts_blob **out, ts_ctx *ctx);
} ts_encoder;

/* "png", "pngraw", "jpeg"/"jpg", "webp", "tif"/"tiff", "npy". Returns 0 or -1. */
int ts_format_parse(const char *s, ts_format *out);
const char *ts_format_name(ts_format f);
const char *ts_format_mime(ts_format f);
const char *ts_format_ext(ts_format f);
/* Comma-separated list of accepted names for error messages. */
const char *ts_format_list(void);

/* The encoder for an image format (PNG, PNGRAW, JPEG, WEBP), NULL otherwise. */
const ts_encoder *ts_encoder_for(ts_format f);

/* Convenience: look up the encoder and run it. JPEG drops alpha (and grey+alpha
 * becomes grey); WebP expands grey to RGB. */
int ts_encode(ts_format f, const ts_image *img, const ts_encode_opts *opts, ts_blob **out,
              ts_ctx *ctx);

#endif
