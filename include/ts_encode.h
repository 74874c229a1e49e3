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

/* Resolve TS_FMT_AUTO for an image: JPEG when it has no alpha channel or
 * every pixel is opaque, PNG otherwise. Any other format is returned as is. */
ts_format ts_format_resolve(ts_format f, const ts_image *img);

/* Convenience: look up the encoder and run it. JPEG drops alpha (and grey+alpha
 * becomes grey); WebP expands grey to RGB. */
int ts_encode(ts_format f, const ts_image *img, const ts_encode_opts *opts, ts_blob **out,
              ts_ctx *ctx);

/*
 * PNG tuning, exposed so bench/encode_bench.c measures the production code
 * path rather than a copy of it. ts_encoder_for(TS_FMT_PNG/PNGRAW) use the
 * configurations returned by ts_png_tuning_for(); see encode_png.c for why
 * those were chosen.
 */
typedef enum ts_png_backend {
    TS_PNG_LIBPNG = 0,   /* libpng + zlib, libpng's row filtering */
    TS_PNG_LIBDEFLATE,   /* our row filtering + libdeflate, chunks written by hand */
    TS_PNG_ZLIB,         /* our row filtering + zlib with a reused per-thread stream */
    TS_PNG_CUSTOM,       /* our row filtering + the caller's zlib compressor (benchmarks) */
    TS_PNG_AUTO,         /* by content: photographic tiles get zlib Z_RLE + PAETH,
                            others libdeflate at `level` with `filter` */
} ts_png_backend;

/* A whole-buffer zlib (RFC 1950) compressor for TS_PNG_CUSTOM: returns the
 * bytes written to out, or 0 on failure or when out_cap is too small. */
typedef size_t (*ts_png_zlib_fn)(const uint8_t *in, size_t in_len, uint8_t *out,
                                 size_t out_cap, int level, void *arg);

typedef enum ts_png_filter {
    TS_PNG_FILTER_NONE = 0, /* values are the PNG filter type bytes */
    TS_PNG_FILTER_SUB = 1,
    TS_PNG_FILTER_UP = 2,
    TS_PNG_FILTER_AVG = 3,
    TS_PNG_FILTER_PAETH = 4,
    TS_PNG_FILTER_ADAPTIVE = 5, /* per row, least sum of absolute residuals */
    TS_PNG_FILTER_ADAPTIVE_FAST = 6, /* the same among NONE, SUB and UP only */
} ts_png_filter;

typedef struct ts_png_tuning {
    ts_png_backend backend;
    int level;          /* zlib 0..9 or libdeflate 0..12 */
    ts_png_filter filter;
    int strategy;       /* zlib strategy (Z_FILTERED, Z_RLE, ...), or -1 for the
                           default (libpng: Z_FILTERED when filtering); zlib backends */
    ts_png_zlib_fn zlib; /* TS_PNG_CUSTOM only */
    void *zlib_arg;
} ts_png_tuning;

/* The tuning behind a format (TS_FMT_PNG or TS_FMT_PNGRAW) and a zlevel
 * (-1 = the format's default; otherwise 0..9 on zlib's scale). */
ts_png_tuning ts_png_tuning_for(ts_format f, int zlevel);
int ts_png_encode_tuned(const ts_image *img, const ts_png_tuning *t, ts_blob **out, ts_ctx *ctx);
/* The content test behind TS_PNG_AUTO: 1 when the image looks photographic
 * (noisy, few repeated byte strings), 0 otherwise (or when unsure). */
int ts_png_is_photographic(const ts_image *img);

/*
 * Typed arrays for the data formats (`tif`, `npy`): band-sequential samples
 * of one data type, as TiTiler returns them (the source's type unless
 * rescaling or colouring made them 8-bit), with the validity mask appended
 * as a last band by the caller when asked for.
 */
typedef enum ts_dtype {
    TS_DT_U8 = 0,
    TS_DT_U16,
    TS_DT_I16,
    TS_DT_U32,
    TS_DT_I32,
    TS_DT_F32,
} ts_dtype;

typedef struct ts_array {
    int width, height, bands;
    ts_dtype dtype;
    void *data;              /* bands * height * width samples */
    double geotransform[6];  /* GDAL order, in the CRS below */
    const char *crs;         /* anything OSRSetFromUserInput takes ("EPSG:3857", a URI) */
    bool last_band_is_mask;  /* written as an alpha band in GeoTIFF */
} ts_array;

size_t ts_dtype_size(ts_dtype t);
/* NumPy's .npy (format 1.0): the array as shape (bands, height, width). */
int ts_encode_npy(const ts_array *a, ts_blob **out, ts_ctx *ctx);
/* A georeferenced, DEFLATE-compressed GeoTIFF written in memory by GDAL. */
int ts_encode_gtiff(const ts_array *a, ts_blob **out, ts_ctx *ctx);

/* Shared by the encoder files (double underscore: internal). */
int ts__image_check(const ts_image *img, const char *who, ts_ctx *ctx);
/* Convert img to `channels` (1..4) into a new malloc'd image *dst (caller frees
 * dst->data). Alpha is dropped or set opaque; grey is replicated into RGB. */
int ts__image_convert(const ts_image *img, int channels, ts_image *dst, ts_ctx *ctx);

#endif
