/*
 * Encoder benchmark: times every PNG configuration worth considering on
 * synthetic but realistic tiles, checks each PNG decodes to the exact input
 * pixels, and prints ms/tile and bytes relative to libpng level 6 (libpng's
 * defaults: all filters, adaptive per row, Z_FILTERED), which is what the
 * issue measured. JPEG and WebP are listed for scale.
 *
 *   encode_bench [--quick] [--budget SECONDS] [--opt NAME,NAME,...]
 *                [IMAGE-SUBSTRING]
 *
 * --opt limits the table to the named options (the baseline always runs).
 *
 * Synthetic images make the numbers reproducible anywhere: an aerial-like
 * RGB photo (fields with texture, fBm shading, roads, sensor noise), a DEM
 * coloured with a terrain ramp and transparent nodata, the aerial photo's
 * luma as grey, and the aerial photo as RGBA with a transparent dataset edge.
 * When the shared fixtures are present (TS_FIXTURES, or the path compiled
 * in), real tiles are added: Sentinel-2 true colour, a JPEG-compressed
 * aerial photo, and a paletted (colormapped) byte raster, read through GDAL
 * the way a low-zoom tile is (whole extent into a 256 or 512 grid).
 */
#include "ts_encode.h"

#include <gdal.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

/* ---------------------------------------------------------------------- */
/* Deterministic synthetic images                                          */

static uint32_t hash2(int x, int y, uint32_t seed)
{
    uint32_t h = (uint32_t)x * 0x8da6b343u ^ (uint32_t)y * 0xd8163841u ^ seed * 0xcb1ab31fu;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return h;
}

static double lattice(int x, int y, uint32_t seed)
{
    return (hash2(x, y, seed) & 0xffffff) / (double)0xffffff;
}

static double smooth(double t)
{
    return t * t * (3 - 2 * t);
}

/* Value noise in [0, 1] with a cell size of `cell` pixels. */
static double value_noise(double x, double y, double cell, uint32_t seed)
{
    x /= cell;
    y /= cell;
    int xi = (int)x, yi = (int)y;
    double fx = smooth(x - xi), fy = smooth(y - yi);
    double a = lattice(xi, yi, seed), b = lattice(xi + 1, yi, seed);
    double c = lattice(xi, yi + 1, seed), d = lattice(xi + 1, yi + 1, seed);
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
}

/* Fractal Brownian motion: octaves of value noise, in [0, 1]. */
static double fbm(double x, double y, double cell, int octaves, uint32_t seed)
{
    double sum = 0, amp = 1, norm = 0;
    for (int o = 0; o < octaves; o++) {
        sum += amp * value_noise(x, y, cell, seed + (uint32_t)o);
        norm += amp;
        amp *= 0.5;
        cell *= 0.5;
    }
    return sum / norm;
}

static uint8_t clamp8(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
}

static ts_image image_new(int w, int h, int channels)
{
    ts_image img = {w, h, channels, (size_t)w * (size_t)channels, NULL};
    img.data = malloc(img.stride * (size_t)h);
    if (!img.data) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return img;
}

/* Aerial-like RGB: land parcels (a coarse grid warped by noise) each with
 * its own crop colour, fBm shading and texture inside, roads along some
 * parcel borders, and a few grey levels of sensor noise everywhere. */
static ts_image make_aerial(int size)
{
    static const double crops[6][3] = {{92, 112, 60}, {130, 140, 80},  {150, 120, 90},
                                       {70, 95, 55},  {180, 170, 130}, {110, 100, 85}};
    ts_image img = image_new(size, size, 3);
    /* Scale the scene with the tile so 512 looks like 256 at a finer zoom. */
    const double s = size / 256.0;
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            double wx = x + 18 * s * (fbm(x, y, 90 * s, 2, 7) - 0.5);
            double wy = y + 18 * s * (fbm(x, y, 90 * s, 2, 11) - 0.5);
            int px = (int)(wx / (70 * s)), py = (int)(wy / (55 * s));
            const double *c = crops[hash2(px, py, 3) % 6];
            double shade = 0.75 + 0.5 * fbm(x, y, 48 * s, 5, 19);
            double texture = 24 * (value_noise(x, y, 2.5, (uint32_t)(px * 31 + py)) - 0.5);
            double rgb[3];
            for (int k = 0; k < 3; k++)
                rgb[k] = c[k] * shade + texture;
            /* Roads: 3 px grey bands on parcel borders. */
            double bx = wx - px * 70 * s, by = wy - py * 55 * s;
            if ((bx < 3 * s && hash2(px, 0, 5) % 3 == 0) ||
                (by < 3 * s && hash2(0, py, 6) % 3 == 0))
                rgb[0] = rgb[1] = rgb[2] = 150 + 10 * shade;
            uint8_t *p = img.data + (size_t)y * img.stride + (size_t)x * 3;
            for (int k = 0; k < 3; k++)
                p[k] = clamp8(rgb[k] + 6 * (lattice(x, y, 100 + (uint32_t)k) - 0.5));
        }
    }
    return img;
}

/* A DEM rendered with a terrain colormap: smooth, few distinct colours per
 * neighbourhood, and nodata (transparent, RGB 0) in a sea and a lake. */
static ts_image make_dem(int size)
{
    static const struct {
        double at;
        double rgb[3];
    } ramp[] = {{0.0, {51, 51, 153}},   {0.15, {0, 153, 255}}, {0.25, {0, 204, 102}},
                {0.5, {255, 255, 153}}, {0.75, {128, 92, 84}}, {1.0, {255, 255, 255}}};
    ts_image img = image_new(size, size, 4);
    const double s = size / 256.0;
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            double e = fbm(x, y, 128 * s, 6, 42);
            uint8_t *p = img.data + (size_t)y * img.stride + (size_t)x * 4;
            if (e < 0.38 ||
                (x - 180 * s) * (x - 180 * s) + (y - 60 * s) * (y - 60 * s) < 400 * s * s) {
                p[0] = p[1] = p[2] = p[3] = 0;
                continue;
            }
            /* Stretch the land's elevation range over the ramp, then
             * quantise to 256 classes as an 8-bit rescale would. */
            double t = (e - 0.38) / 0.35;
            t = (t > 1 ? 1 : t);
            t = (int)(t * 255) / 255.0;
            size_t i = 0;
            while (i + 2 < sizeof ramp / sizeof ramp[0] && t > ramp[i + 1].at)
                i++;
            double f = (t - ramp[i].at) / (ramp[i + 1].at - ramp[i].at);
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            for (int k = 0; k < 3; k++)
                p[k] = clamp8(ramp[i].rgb[k] + (ramp[i + 1].rgb[k] - ramp[i].rgb[k]) * f);
            p[3] = 255;
        }
    }
    return img;
}

static ts_image make_grey(int size)
{
    ts_image rgb = make_aerial(size);
    ts_image img = image_new(size, size, 1);
    for (size_t i = 0; i < (size_t)size * (size_t)size; i++) {
        const uint8_t *p = rgb.data + 3 * i;
        img.data[i] = (uint8_t)((77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
    }
    free(rgb.data);
    return img;
}

/* The aerial photo as a tile at the edge of its dataset: RGBA, with the
 * part beyond a diagonal edge transparent (RGB 0, as the renderer writes
 * masked pixels). */
static ts_image make_aerial_edge(int size)
{
    ts_image rgb = make_aerial(size);
    ts_image img = image_new(size, size, 4);
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            const uint8_t *s = rgb.data + (size_t)y * rgb.stride + (size_t)x * 3;
            uint8_t *d = img.data + (size_t)y * img.stride + (size_t)x * 4;
            int inside = x + y / 2 < size * 3 / 4;
            d[0] = inside ? s[0] : 0;
            d[1] = inside ? s[1] : 0;
            d[2] = inside ? s[2] : 0;
            d[3] = inside ? 255 : 0;
        }
    }
    free(rgb.data);
    return img;
}

/* Real rasters, read like a low-zoom tile: the whole extent into a size x
 * size grid (GDAL picks the overview). Paletted bands are expanded to RGBA
 * with nodata transparent, as a colormap render would. Returns an image
 * with data NULL when the file is not there. */
static const char *fixtures_dir(void)
{
    const char *d = getenv("TS_FIXTURES");
#ifdef TS_BENCH_FIXTURES
    if (!d)
        d = TS_BENCH_FIXTURES;
#endif
    return d;
}

static ts_image load_fixture(const char *file, int size)
{
    ts_image img = {0};
    const char *dir = fixtures_dir();
    if (!dir)
        return img;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds)
        return img;
    const int bands = GDALGetRasterCount(ds) > 3 ? 3 : GDALGetRasterCount(ds);
    GDALRasterBandH b1 = GDALGetRasterBand(ds, 1);
    GDALColorTableH ct = bands == 1 ? GDALGetRasterColorTable(b1) : NULL;
    int has_nodata = 0;
    double nodata = GDALGetRasterNoDataValue(b1, &has_nodata);
    uint8_t *raw = malloc((size_t)size * size * (size_t)bands);
    int ok = raw && GDALDatasetRasterIO(ds, GF_Read, 0, 0, GDALGetRasterXSize(ds),
                                        GDALGetRasterYSize(ds), raw, size, size, GDT_Byte, bands,
                                        NULL, bands, bands * size, 1) == CE_None;
    if (ok && ct) {
        img = image_new(size, size, 4);
        for (size_t i = 0; i < (size_t)size * size; i++) {
            const GDALColorEntry *e = GDALGetColorEntry(ct, raw[i]);
            uint8_t *d = img.data + 4 * i;
            int masked = !e || (has_nodata && raw[i] == (int)nodata);
            d[0] = masked ? 0 : (uint8_t)e->c1;
            d[1] = masked ? 0 : (uint8_t)e->c2;
            d[2] = masked ? 0 : (uint8_t)e->c3;
            d[3] = masked ? 0 : 255;
        }
        free(raw);
    } else if (ok) {
        img = (ts_image){size, size, bands, (size_t)size * (size_t)bands, raw};
    } else {
        free(raw);
    }
    GDALClose(ds);
    return img;
}

static ts_image load_tci(int size)
{
    return load_fixture("titiler_TCI.tif", size);
}

static ts_image load_aerial_jpeg(int size)
{
    return load_fixture("cog_rgb.tif", size);
}

static ts_image load_cmap(int size)
{
    return load_fixture("cog_cmap.tif", size);
}

/* ---------------------------------------------------------------------- */
/* Options                                                                 */

#ifdef HAVE_ISAL
/* ISA-L's igzip as a TS_PNG_CUSTOM compressor (levels 0..3). Single-threaded
 * benchmark, so one static work buffer per level is enough. */
static size_t isal_zlib(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, int level,
                        void *arg)
{
    static const uint32_t sizes[4] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                      ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    static uint8_t *bufs[4];
    (void)arg;
    if (level < 0 || level > 3)
        return 0;
    if (sizes[level] && !bufs[level] && !(bufs[level] = malloc(sizes[level])))
        return 0;
    struct isal_zstream z;
    isal_deflate_stateless_init(&z);
    z.level = (uint32_t)level;
    z.level_buf = bufs[level];
    z.level_buf_size = sizes[level];
    z.gzip_flag = IGZIP_ZLIB;
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    z.next_in = (uint8_t *)in;
    z.avail_in = (uint32_t)in_len;
    z.next_out = out;
    z.avail_out = (uint32_t)out_cap;
    if (isal_deflate_stateless(&z) != COMP_OK)
        return 0;
    return z.total_out;
}
#define ISAL(n, lvl, filt)                                                                         \
    {                                                                                              \
        n, 1, {TS_PNG_CUSTOM, lvl, filt, -1, isal_zlib, NULL}, 0                                   \
    }
#endif

typedef struct option {
    const char *name;
    int is_png;
    ts_png_tuning png;
    ts_format fmt; /* when !is_png */
} option;

#define LIBPNG(n, lvl, filt, strat)                                                                \
    {                                                                                              \
        n, 1, {TS_PNG_LIBPNG, lvl, filt, strat, NULL, NULL}, 0                                     \
    }
#define ZLIB(n, lvl, filt, strat)                                                                  \
    {                                                                                              \
        n, 1, {TS_PNG_ZLIB, lvl, filt, strat, NULL, NULL}, 0                                       \
    }
#define AUTO(n, lvl, filt)                                                                         \
    {                                                                                              \
        n, 1, {TS_PNG_AUTO, lvl, filt, -1, NULL, NULL}, 0                                          \
    }
#define DEFL(n, lvl, filt)                                                                         \
    {                                                                                              \
        n, 1, {TS_PNG_LIBDEFLATE, lvl, filt, -1, NULL, NULL}, 0                                    \
    }

static const option options[] = {
    LIBPNG("libpng-6 (baseline)", 6, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-1", 1, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-2", 2, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-3", 3, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-4", 4, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-5", 5, TS_PNG_FILTER_ADAPTIVE, -1),
    LIBPNG("libpng-6 none", 6, TS_PNG_FILTER_NONE, -1),
    LIBPNG("libpng-6 sub", 6, TS_PNG_FILTER_SUB, -1),
    LIBPNG("libpng-6 up", 6, TS_PNG_FILTER_UP, -1),
    LIBPNG("libpng-6 avg", 6, TS_PNG_FILTER_AVG, -1),
    LIBPNG("libpng-6 paeth", 6, TS_PNG_FILTER_PAETH, -1),
    LIBPNG("libpng-6 fast-filters", 6, TS_PNG_FILTER_ADAPTIVE_FAST, -1),
    LIBPNG("libpng-6 default-strategy", 6, TS_PNG_FILTER_ADAPTIVE, Z_DEFAULT_STRATEGY),
    LIBPNG("libpng-6 Z_RLE", 6, TS_PNG_FILTER_ADAPTIVE, Z_RLE),
    LIBPNG("libpng-6 up Z_RLE", 6, TS_PNG_FILTER_UP, Z_RLE),
    LIBPNG("libpng-6 paeth Z_RLE", 6, TS_PNG_FILTER_PAETH, Z_RLE),
    LIBPNG("libpng-3 up", 3, TS_PNG_FILTER_UP, -1),
    LIBPNG("libpng-1 up", 1, TS_PNG_FILTER_UP, -1),
    LIBPNG("libpng-1 Z_RLE", 1, TS_PNG_FILTER_ADAPTIVE, Z_RLE),
    ZLIB("zlib-6 paeth Z_RLE", 6, TS_PNG_FILTER_PAETH, Z_RLE),
    ZLIB("zlib-6 adaptive Z_RLE", 6, TS_PNG_FILTER_ADAPTIVE, Z_RLE),
    ZLIB("zlib-6 up Z_RLE", 6, TS_PNG_FILTER_UP, Z_RLE),
    ZLIB("zlib-6 paeth", 6, TS_PNG_FILTER_PAETH, -1),
    ZLIB("zlib-6 paeth Z_FILTERED", 6, TS_PNG_FILTER_PAETH, Z_FILTERED),
    ZLIB("zlib-4 paeth", 4, TS_PNG_FILTER_PAETH, -1),
    ZLIB("zlib-1 paeth", 1, TS_PNG_FILTER_PAETH, -1),
    DEFL("libdeflate-1 up", 1, TS_PNG_FILTER_UP),
    DEFL("libdeflate-2 up", 2, TS_PNG_FILTER_UP),
    DEFL("libdeflate-3 up", 3, TS_PNG_FILTER_UP),
    DEFL("libdeflate-4 up", 4, TS_PNG_FILTER_UP),
    DEFL("libdeflate-5 up", 5, TS_PNG_FILTER_UP),
    DEFL("libdeflate-6 up", 6, TS_PNG_FILTER_UP),
    DEFL("libdeflate-6 none", 6, TS_PNG_FILTER_NONE),
    DEFL("libdeflate-6 sub", 6, TS_PNG_FILTER_SUB),
    DEFL("libdeflate-6 avg", 6, TS_PNG_FILTER_AVG),
    DEFL("libdeflate-6 paeth", 6, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-6 adaptive", 6, TS_PNG_FILTER_ADAPTIVE),
    DEFL("libdeflate-6 fast-filters", 6, TS_PNG_FILTER_ADAPTIVE_FAST),
    DEFL("libdeflate-1 adaptive", 1, TS_PNG_FILTER_ADAPTIVE),
    DEFL("libdeflate-3 adaptive", 3, TS_PNG_FILTER_ADAPTIVE),
    DEFL("libdeflate-4 adaptive", 4, TS_PNG_FILTER_ADAPTIVE),
    DEFL("libdeflate-4 paeth", 4, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-1 paeth", 1, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-2 paeth", 2, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-3 paeth", 3, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-5 paeth", 5, TS_PNG_FILTER_PAETH),
    DEFL("libdeflate-2 adaptive", 2, TS_PNG_FILTER_ADAPTIVE),
    DEFL("libdeflate-3 fast-filters", 3, TS_PNG_FILTER_ADAPTIVE_FAST),
    DEFL("libdeflate-4 fast-filters", 4, TS_PNG_FILTER_ADAPTIVE_FAST),
#ifdef HAVE_ISAL
    ISAL("isa-l-1 up", 1, TS_PNG_FILTER_UP),
    ISAL("isa-l-3 up", 3, TS_PNG_FILTER_UP),
    ISAL("isa-l-1 paeth", 1, TS_PNG_FILTER_PAETH),
    ISAL("isa-l-2 paeth", 2, TS_PNG_FILTER_PAETH),
    ISAL("isa-l-3 paeth", 3, TS_PNG_FILTER_PAETH),
    ISAL("isa-l-3 adaptive", 3, TS_PNG_FILTER_ADAPTIVE),
#endif
    AUTO("auto l3 up", 3, TS_PNG_FILTER_UP),
    AUTO("auto l4 up", 4, TS_PNG_FILTER_UP),
    AUTO("auto l5 up", 5, TS_PNG_FILTER_UP),
    AUTO("auto l6 up", 6, TS_PNG_FILTER_UP),
    AUTO("auto l4 paeth", 4, TS_PNG_FILTER_PAETH),
    AUTO("auto l4 fast-filters", 4, TS_PNG_FILTER_ADAPTIVE_FAST),
    AUTO("auto l6 fast-filters", 6, TS_PNG_FILTER_ADAPTIVE_FAST),
    {"png (production)", 0, {0}, TS_FMT_PNG},
    {"pngraw (production)", 0, {0}, TS_FMT_PNGRAW},
    {"jpeg q85", 0, {0}, TS_FMT_JPEG},
    {"webp q75", 0, {0}, TS_FMT_WEBP},
};

static int run(const option *o, const ts_image *img, ts_blob **out)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    int rc = o->is_png ? ts_png_encode_tuned(img, &o->png, out, &ctx)
                       : ts_encode(o->fmt, img, NULL, out, &ctx);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", o->name, ctx.detail);
    return rc;
}

/* Decode with libpng's simplified API and compare every byte. */
static int png_roundtrip_ok(const ts_blob *b, const ts_image *img)
{
    static const png_uint_32 fmts[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                        PNG_FORMAT_RGBA};
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, b->data, b->size))
        return 0;
    pi.format = fmts[img->channels];
    uint8_t *px = malloc(PNG_IMAGE_SIZE(pi));
    int ok = px && (int)pi.width == img->width && (int)pi.height == img->height &&
             png_image_finish_read(&pi, NULL, px, 0, NULL);
    for (int y = 0; ok && y < img->height; y++)
        ok = memcmp(px + (size_t)y * img->width * img->channels,
                    img->data + (size_t)y * img->stride, (size_t)img->width * img->channels) == 0;
    png_image_free(&pi);
    free(px);
    return ok;
}

/* Does `name` equal one of the comma-separated entries of `list`? */
static int name_in_list(const char *name, const char *list)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fastest call out of enough calls to fill ~budget seconds: the minimum is
 * the cost without interference from other processes on the machine, which
 * is what we compare options by. */
static double time_option(const option *o, const ts_image *img, double budget, size_t *bytes)
{
    ts_blob *b = NULL;
    uint64_t t0 = ts_now_ns();
    if (run(o, img, &b) < 0)
        exit(2);
    double first = (ts_now_ns() - t0) / 1e6;
    *bytes = b->size;
    ts_blob_unref(b);
    int n = (int)(budget * 1e3 / (first > 0.01 ? first : 0.01));
    n = n < 5 ? 5 : n > 400 ? 400 : n;
    double *ms = malloc(sizeof *ms * (size_t)n);
    if (!ms)
        exit(2);
    for (int i = 0; i < n; i++) {
        t0 = ts_now_ns();
        if (run(o, img, &b) < 0)
            exit(2);
        ms[i] = (ts_now_ns() - t0) / 1e6;
        ts_blob_unref(b);
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    double best = ms[0];
    free(ms);
    return best;
}

int main(int argc, char **argv)
{
    double budget = 0.25;
    const char *only = NULL, *only_opt = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            budget = 0.03;
        else if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (strcmp(argv[i], "--opt") == 0 && i + 1 < argc)
            only_opt = argv[++i];
        else
            only = argv[i];
    }
    struct {
        const char *name;
        ts_image (*make)(int);
        int size;
    } images[] = {
        {"aerial-rgb-256", make_aerial, 256},
        {"aerial-rgb-512", make_aerial, 512},
        {"dem-rgba-256", make_dem, 256},
        {"dem-rgba-512", make_dem, 512},
        {"grey-256", make_grey, 256},
        {"grey-512", make_grey, 512},
        {"aerial-edge-rgba-256", make_aerial_edge, 256},
        {"aerial-edge-rgba-512", make_aerial_edge, 512},
        {"real-s2-tci-256", load_tci, 256},
        {"real-s2-tci-512", load_tci, 512},
        {"real-aerial-jpeg-256", load_aerial_jpeg, 256},
        {"real-cmap-rgba-256", load_cmap, 256},
        {"real-cmap-rgba-512", load_cmap, 512},
    };
    GDALAllRegister();
    int failures = 0;
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        if (only && !strstr(images[i].name, only))
            continue;
        ts_image img = images[i].make(images[i].size);
        if (!img.data) {
            printf("\n%s: fixture not found, skipped\n", images[i].name);
            continue;
        }
        size_t raw = (size_t)img.width * img.height * img.channels;
        printf("\n%s (%d channels, %zu raw bytes, %s)\n", images[i].name, img.channels, raw,
               ts_png_is_photographic(&img) ? "photographic" : "not photographic");
        printf("%-28s %9s %9s %7s %7s  %s\n", "option", "ms/tile", "bytes", "size", "speed",
               "lossless");
        double base_ms = 0;
        size_t base_bytes = 0;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++) {
            const option *o = &options[k];
            /* The baseline always runs: every ratio is relative to it. */
            if (k > 0 && only_opt && !name_in_list(o->name, only_opt))
                continue;
            size_t bytes;
            double ms = time_option(o, &img, budget, &bytes);
            if (k == 0) {
                base_ms = ms;
                base_bytes = bytes;
            }
            const char *check = "-";
            if (o->is_png || o->fmt == TS_FMT_PNG || o->fmt == TS_FMT_PNGRAW) {
                ts_blob *b = NULL;
                run(o, &img, &b);
                int ok = png_roundtrip_ok(b, &img);
                ts_blob_unref(b);
                check = ok ? "yes" : "MISMATCH";
                failures += !ok;
            }
            printf("%-28s %9.3f %9zu %7.3f %6.2fx  %s\n", o->name, ms, bytes,
                   (double)bytes / (double)base_bytes, base_ms / ms, check);
        }
        free(img.data);
    }
    if (failures)
        fprintf(stderr, "%d PNG configurations did not round-trip\n", failures);
    return failures ? 1 : 0;
}
