/*
 * PNG encoders: "png" and "pngraw".
 *
 * libpng is the reference (TS_PNG_LIBPNG: libpng + zlib writing into memory
 * through png_set_write_fn), kept for the benchmark and as a fallback. The
 * production path filters rows itself and writes the three chunks (IHDR,
 * one IDAT, IEND) by hand: PNG's container is trivial and nearly all the
 * time goes into deflate, so owning the filter + deflate step lets us pick
 * the compressor per tile (zlib Z_RLE or libdeflate, see ts_png_tuning_for)
 * and keep compressors and scratch buffers per thread instead of libpng's
 * per-call zlib state (~300 KB of allocations for every tile).
 *
 * Everything here is lossless: the tests and the benchmark decode every
 * configuration with libpng and compare pixels exactly.
 */
#include "ts_encode.h"

#include <libdeflate.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---------------------------------------------------------------------- */
/* Configuration                                                           */

ts_png_tuning ts_png_tuning_for(ts_format f, int zlevel)
{
    /*
     * "png" decides by content (TS_PNG_AUTO, see is_photographic()):
     *  - photographic tiles: PAETH + zlib Z_RLE. On synthetic aerial/grey
     *    and real Sentinel-2 / aerial tiles this is 5-12x faster than libpng
     *    level 6 (adaptive filters, Z_FILTERED) at 0.98-1.05x its size.
     *  - everything else: UP + libdeflate level 5: 0.97-1.08x libpng's size
     *    on coloured DEMs and paletted rasters at 3.5-4.8x its speed. Level
     *    4 came within 2% of the 10% size budget on a paletted tile; level
     *    6 is 1.5x slower on smooth DEM tiles for 3-5% of size.
     * No single setting does as well. PAETH + libdeflate 4-6 stays within
     * 10% everywhere but takes 3.0 ms on a 256x256 aerial tile against
     * 1.8 ms for Z_RLE; UP, the best filter on posterised data, is 11-20%
     * larger than libpng on photographs; Z_RLE is 1.4-1.7x larger on
     * posterised data; ISA-L level 1 is the fastest deflate of all but
     * 1.07-1.14x on photographs and 1.2-1.6x on posterised tiles.
     *
     * "pngraw": UP + libdeflate level 1, the fastest setting that still
     * compresses (1.07-1.19x libpng's size); speed is the point of asking.
     *
     * bench/encode_bench.c prints the full table.
     */
    ts_png_tuning t = {
        .backend = f == TS_FMT_PNGRAW ? TS_PNG_LIBDEFLATE : TS_PNG_AUTO,
        .level = f == TS_FMT_PNGRAW ? 1 : 5,
        .filter = TS_PNG_FILTER_UP,
        .strategy = -1,
    };
    /* An explicit zlevel keeps zlib's 0..9 meaning for the libdeflate path
     * (libdeflate's levels 0..9 are calibrated to zlib's); 0 also turns off
     * Z_RLE, storing the image uncompressed. Z_RLE has no levels of its
     * own: on photographs no level of a full match search is much smaller. */
    if (zlevel >= 0)
        t.level = zlevel > 9 ? 9 : zlevel;
    return t;
}

static int colour_type(int channels)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    return types[channels];
}

/* ---------------------------------------------------------------------- */
/* Backend 1: libpng + zlib                                                */

typedef struct libpng_state {
    ts_buf buf;    /* the PNG bytes as libpng writes them */
    char msg[160]; /* libpng's error message, reported after the longjmp */
} libpng_state;

static void libpng_error(png_structp png, png_const_charp msg)
{
    libpng_state *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void libpng_warning(png_structp png, png_const_charp msg)
{
    /* Warnings concern ancillary data we never write; nothing to report. */
    (void)png;
    (void)msg;
}

static void libpng_write(png_structp png, png_bytep data, size_t len)
{
    libpng_state *st = png_get_io_ptr(png);
    if (ts_buf_reserve(&st->buf, len) < 0)
        png_error(png, "out of memory");
    memcpy(st->buf.data + st->buf.len, data, len);
    st->buf.len += len;
}

static void libpng_flush(png_structp png)
{
    (void)png;
}

static int libpng_filters(ts_png_filter f)
{
    switch (f) {
    case TS_PNG_FILTER_NONE:
        return PNG_FILTER_NONE;
    case TS_PNG_FILTER_SUB:
        return PNG_FILTER_SUB;
    case TS_PNG_FILTER_UP:
        return PNG_FILTER_UP;
    case TS_PNG_FILTER_AVG:
        return PNG_FILTER_AVG;
    case TS_PNG_FILTER_PAETH:
        return PNG_FILTER_PAETH;
    case TS_PNG_FILTER_ADAPTIVE_FAST:
        return PNG_FAST_FILTERS;
    case TS_PNG_FILTER_ADAPTIVE:
    default:
        return PNG_ALL_FILTERS;
    }
}

static int encode_libpng(const ts_image *img, const ts_png_tuning *t, ts_blob **out, ts_ctx *ctx)
{
    /* The state lives outside the setjmp frame's locals that change after
     * setjmp: only its address is used, so the longjmp cannot clobber it. */
    libpng_state st = {0};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, libpng_error, libpng_warning);
    if (!png)
        return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot create the libpng writer");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot create the libpng info");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        ts_buf_free(&st.buf);
        return ts_ctx_error(ctx, TS_EINTERNAL, "png: %s", st.msg);
    }

    /* Noisy tiles barely compress: reserving the raw size plus the filter
     * bytes up front means the buffer is almost never grown. */
    const size_t raw = (size_t)img->height * ((size_t)img->width * (size_t)img->channels + 1);
    if (ts_buf_reserve(&st.buf, raw / 2 + 1024) < 0)
        png_error(png, "out of memory");

    png_set_write_fn(png, &st, libpng_write, libpng_flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 colour_type(img->channels), PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, t->level);
    if (t->strategy >= 0)
        png_set_compression_strategy(png, t->strategy);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, libpng_filters(t->filter));
    /* Bigger IDAT chunks: fewer write callbacks and chunk headers. */
    png_set_compression_buffer_size(png, 1u << 16);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * img->stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);

    *out = ts_buf_to_blob(&st.buf);
    if (!*out)
        return ts_ctx_error(ctx, TS_ENOMEM, "png: out of memory");
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Backends 2-4: our row filters + libdeflate, zlib or the caller's deflate */

/*
 * Per-thread state: one libdeflate compressor per level (each is a few
 * hundred KB of hash tables, too costly to build per tile) and scratch
 * buffers for the filtered rows and the compressed stream. The owner is the
 * thread: `tls` is the fast path, and the same pointer is registered under a
 * pthread key whose destructor frees it when the thread exits (a
 * _Thread_local alone has no destructor). Worker threads live as long as
 * the HTTP daemon, so in practice this is allocated once per worker.
 */
#define MAX_LEVEL 12
/* Scratch above this size is released after the call, so one huge request
 * does not pin memory in every worker thread for the life of the process. */
#define SCRATCH_KEEP ((size_t)8 << 20)

typedef struct deflate_tls {
    struct libdeflate_compressor *comp[MAX_LEVEL + 1];
    z_stream zs; /* TS_PNG_ZLIB: reset per image, so deflateInit's ~270 KB happen once */
    int zs_ready;
    uint8_t *filt; /* height * (1 + rowbytes): filter byte + residuals per row */
    size_t filt_cap;
    uint8_t *z; /* the zlib stream */
    size_t z_cap;
    uint8_t *rows; /* adaptive filtering: zero row + 5 candidate rows */
    size_t rows_cap;
    uint32_t grams[4096]; /* ts_png_is_photographic(): last 4-gram per hash */
} deflate_tls;

static _Thread_local deflate_tls *tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_free(void *p)
{
    deflate_tls *s = p;
    if (!s)
        return;
    for (int i = 0; i <= MAX_LEVEL; i++)
        if (s->comp[i])
            libdeflate_free_compressor(s->comp[i]);
    if (s->zs_ready)
        deflateEnd(&s->zs);
    free(s->filt);
    free(s->z);
    free(s->rows);
    free(s);
}

static void tls_key_create(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static deflate_tls *tls_get(void)
{
    if (tls)
        return tls;
    pthread_once(&tls_once, tls_key_create);
    deflate_tls *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* Without the key the state would leak at thread exit; fail instead. */
    if (!tls_key_ok || pthread_setspecific(tls_key, s) != 0) {
        free(s);
        return NULL;
    }
    tls = s;
    return s;
}

/* Make *p hold at least n bytes; contents are not preserved. */
static int scratch(uint8_t **p, size_t *cap, size_t n)
{
    if (*cap >= n)
        return 0;
    free(*p);
    *p = malloc(n);
    *cap = *p ? n : 0;
    return *p ? 0 : -1;
}

static void scratch_trim(uint8_t **p, size_t *cap)
{
    if (*cap > SCRATCH_KEEP) {
        TS_FREE(*p);
        *cap = 0;
    }
}

/* The filters of PNG spec section 9.2. `x` is the row, `up` the previous row
 * (zeros for the first), `r` receives the residuals, n = rowbytes, bpp =
 * bytes per pixel. Written as plain loops over bytes so the compiler can
 * vectorise the simple ones. */
static void filter_sub(uint8_t *restrict r, const uint8_t *restrict x, size_t n, size_t bpp)
{
    memcpy(r, x, bpp);
    for (size_t i = bpp; i < n; i++)
        r[i] = (uint8_t)(x[i] - x[i - bpp]);
}

static void filter_up(uint8_t *restrict r, const uint8_t *restrict x, const uint8_t *restrict up,
                      size_t n)
{
    for (size_t i = 0; i < n; i++)
        r[i] = (uint8_t)(x[i] - up[i]);
}

static void filter_avg(uint8_t *restrict r, const uint8_t *restrict x, const uint8_t *restrict up,
                       size_t n, size_t bpp)
{
    for (size_t i = 0; i < bpp; i++)
        r[i] = (uint8_t)(x[i] - (up[i] >> 1));
    for (size_t i = bpp; i < n; i++)
        r[i] = (uint8_t)(x[i] - ((x[i - bpp] + up[i]) >> 1));
}

/* Paeth with the distances written out (p - a = b - c, p - b = a - c,
 * p - c = a + b - 2c) and the spec's tie order (a, then b, then c) kept by
 * the strict comparisons: branch-free, this form runs 3x faster than the
 * textbook one at -O2. */
static void filter_paeth(uint8_t *restrict r, const uint8_t *restrict x, const uint8_t *restrict up,
                         size_t n, size_t bpp)
{
    for (size_t i = 0; i < bpp; i++)
        r[i] = (uint8_t)(x[i] - up[i]); /* paeth(0, b, 0) == b */
    const uint8_t *left = x - bpp, *upleft = up - bpp;
    for (size_t i = bpp; i < n; i++) {
        int a = left[i], b = up[i], c = upleft[i];
        int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
        int pred = pb < pa ? b : a;
        int pmin = pb < pa ? pb : pa;
        pred = pc < pmin ? c : pred;
        r[i] = (uint8_t)(x[i] - pred);
    }
}

static void filter_row(int type, uint8_t *r, const uint8_t *x, const uint8_t *up, size_t n,
                       size_t bpp)
{
    switch (type) {
    case TS_PNG_FILTER_SUB:
        filter_sub(r, x, n, bpp);
        break;
    case TS_PNG_FILTER_UP:
        filter_up(r, x, up, n);
        break;
    case TS_PNG_FILTER_AVG:
        filter_avg(r, x, up, n, bpp);
        break;
    case TS_PNG_FILTER_PAETH:
        filter_paeth(r, x, up, n, bpp);
        break;
    default:
        memcpy(r, x, n);
        break;
    }
}

/* libpng's heuristic: residuals read as signed bytes, least sum of
 * magnitudes wins. */
static size_t residual_cost(const uint8_t *r, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (size_t)abs((int)(int8_t)r[i]);
    return sum;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write a chunk's length, type and data already at p + 8, then its CRC.
 * Returns the bytes the chunk occupies. */
static size_t finish_chunk(uint8_t *p, const char type[4], size_t len)
{
    put_be32(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    put_be32(p + 8 + len, (uint32_t)libdeflate_crc32(0, p + 4, len + 4));
    return len + 12;
}

static int encode_filtered(const ts_image *img, const ts_png_tuning *t, ts_blob **out, ts_ctx *ctx)
{
    if (t->level < 0 || t->level > MAX_LEVEL)
        return ts_ctx_error(ctx, TS_EINTERNAL, "png: compression level %d out of range", t->level);
    if (t->backend == TS_PNG_CUSTOM && !t->zlib)
        return ts_ctx_error(ctx, TS_EINTERNAL, "png: custom backend without a compressor");
    if (t->backend == TS_PNG_ZLIB && t->level > 9)
        return ts_ctx_error(ctx, TS_EINTERNAL, "png: zlib level %d out of range", t->level);
    deflate_tls *s = tls_get();
    if (!s)
        return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot allocate encoder state");
    struct libdeflate_compressor *comp = NULL;
    if (t->backend == TS_PNG_LIBDEFLATE) {
        if (!s->comp[t->level] && !(s->comp[t->level] = libdeflate_alloc_compressor(t->level)))
            return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot allocate a deflate compressor");
        comp = s->comp[t->level];
    } else if (t->backend == TS_PNG_ZLIB) {
        if (!s->zs_ready) {
            memset(&s->zs, 0, sizeof s->zs);
            if (deflateInit(&s->zs, Z_DEFAULT_COMPRESSION) != Z_OK)
                return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot initialise zlib");
            s->zs_ready = 1;
        }
        /* On a freshly reset stream deflateParams only records the settings. */
        if (deflateReset(&s->zs) != Z_OK ||
            deflateParams(&s->zs, t->level, t->strategy < 0 ? Z_DEFAULT_STRATEGY : t->strategy) !=
                Z_OK)
            return ts_ctx_error(ctx, TS_EINTERNAL, "png: zlib rejected level %d", t->level);
    }

    const size_t bpp = (size_t)img->channels;
    const size_t rowbytes = (size_t)img->width * bpp;
    const size_t h = (size_t)img->height;
    const size_t filt_len = h * (rowbytes + 1);
    const int adaptive =
        t->filter == TS_PNG_FILTER_ADAPTIVE || t->filter == TS_PNG_FILTER_ADAPTIVE_FAST;
    int rc = 0;

    if (scratch(&s->filt, &s->filt_cap, filt_len) < 0 ||
        scratch(&s->rows, &s->rows_cap, rowbytes * (adaptive ? 6 : 1)) < 0) {
        rc =
            ts_ctx_error(ctx, TS_ENOMEM, "png: out of memory for %zux%zu filter rows", h, rowbytes);
        goto done;
    }
    uint8_t *zero = s->rows; /* the row "above" the first one */
    memset(zero, 0, rowbytes);

    for (size_t y = 0; y < h; y++) {
        const uint8_t *x = img->data + y * img->stride;
        const uint8_t *up = y ? x - img->stride : zero;
        uint8_t *dst = s->filt + y * (rowbytes + 1);
        if (!adaptive) {
            dst[0] = (uint8_t)t->filter;
            filter_row(t->filter, dst + 1, x, up, rowbytes, bpp);
            continue;
        }
        const int last =
            t->filter == TS_PNG_FILTER_ADAPTIVE ? TS_PNG_FILTER_PAETH : TS_PNG_FILTER_UP;
        int best = 0;
        size_t best_cost = (size_t)-1;
        for (int f = TS_PNG_FILTER_NONE; f <= last; f++) {
            uint8_t *cand = s->rows + rowbytes * (size_t)(f + 1);
            filter_row(f, cand, x, up, rowbytes, bpp);
            size_t c = residual_cost(cand, rowbytes);
            if (c < best_cost) {
                best_cost = c;
                best = f;
            }
        }
        dst[0] = (uint8_t)best;
        memcpy(dst + 1, s->rows + rowbytes * (size_t)(best + 1), rowbytes);
    }

    size_t bound = comp                        ? libdeflate_zlib_compress_bound(comp, filt_len)
                   : t->backend == TS_PNG_ZLIB ? deflateBound(&s->zs, (uLong)filt_len)
                                               : filt_len + filt_len / 8 + 4096;
    if (scratch(&s->z, &s->z_cap, bound) < 0) {
        rc = ts_ctx_error(ctx, TS_ENOMEM, "png: out of memory for the compressed stream");
        goto done;
    }
    size_t zlen = 0;
    if (comp) {
        zlen = libdeflate_zlib_compress(comp, s->filt, filt_len, s->z, s->z_cap);
    } else if (t->backend == TS_PNG_ZLIB) {
        /* One call suffices: the output holds deflateBound() bytes. uInt
         * limits a single call to 4 GB, far beyond any tile. */
        s->zs.next_in = s->filt;
        s->zs.avail_in = (uInt)filt_len;
        s->zs.next_out = s->z;
        s->zs.avail_out = (uInt)s->z_cap;
        if (filt_len <= 0xffffffffu && s->z_cap <= 0xffffffffu &&
            deflate(&s->zs, Z_FINISH) == Z_STREAM_END)
            zlen = s->zs.total_out;
    } else {
        zlen = t->zlib(s->filt, filt_len, s->z, s->z_cap, t->level, t->zlib_arg);
    }
    if (zlen == 0 || zlen > 0x7fffffffu) {
        rc = ts_ctx_error(ctx, TS_EINTERNAL, "png: deflate failed (%zu bytes in)", filt_len);
        goto done;
    }

    /* signature + IHDR (13) + one IDAT + IEND, each chunk 12 bytes of
     * framing. One IDAT is valid up to 2^31-1 bytes. */
    ts_blob *b = ts_blob_new(8 + (12 + 13) + (12 + zlen) + 12);
    if (!b) {
        rc = ts_ctx_error(ctx, TS_ENOMEM, "png: out of memory");
        goto done;
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *p = b->data;
    memcpy(p, sig, 8);
    p += 8;
    put_be32(p + 8, (uint32_t)img->width);
    put_be32(p + 12, (uint32_t)img->height);
    p[16] = 8; /* bit depth */
    p[17] = (uint8_t)colour_type(img->channels);
    p[18] = p[19] = p[20] = 0; /* deflate, adaptive filtering, no interlace */
    p += finish_chunk(p, "IHDR", 13);
    memcpy(p + 8, s->z, zlen);
    p += finish_chunk(p, "IDAT", zlen);
    p += finish_chunk(p, "IEND", 0);
    *out = b;

done:
    scratch_trim(&s->filt, &s->filt_cap);
    scratch_trim(&s->z, &s->z_cap);
    scratch_trim(&s->rows, &s->rows_cap);
    return rc;
}

/* ---------------------------------------------------------------------- */

/*
 * Which deflate suits a tile? Photographic data (aerial and satellite
 * imagery, hillshades) is noise at the byte level: after PAETH, deflate's
 * gain is almost all Huffman coding of small residuals, and zlib's Z_RLE
 * (matches at distance 1 only) gives the same size as a full LZ77 search,
 * or smaller, in a fraction of the time. Posterised data (colormapped
 * classes, quantised DEM ramps, palettes) repeats byte strings across rows,
 * which only a real match finder exploits: Z_RLE files there are 1.5x
 * libpng's.
 *
 * The test: PAETH residuals of every 8th row, hashing each 4-byte window
 * that is not all zero (flat areas are runs, which Z_RLE codes well) into a
 * small table, and counting how often the window was seen before. On the
 * benchmark's photographic tiles 15-45% of windows repeat, on posterised
 * ones 80-96%; the cut is at 60%. Too few windows to judge means "not
 * photographic", the choice that is never far from libpng's size.
 */
#define PHOTO_GRAM_BITS 12
#define PHOTO_MIN_GRAMS 256

static int is_photographic(const ts_image *img, deflate_tls *s)
{
    const size_t bpp = (size_t)img->channels;
    const size_t n = (size_t)img->width * bpp;
    if (img->height < 2 || n < 4 || scratch(&s->rows, &s->rows_cap, n) < 0)
        return 0;
    memset(s->grams, 0, sizeof s->grams);
    size_t grams = 0, repeats = 0;
    for (size_t y = 4 < (size_t)img->height ? 4 : 1; y < (size_t)img->height; y += 8) {
        const uint8_t *x = img->data + y * img->stride;
        filter_paeth(s->rows, x, x - img->stride, n, bpp);
        for (size_t i = 0; i + 4 <= n; i++) {
            uint32_t v;
            memcpy(&v, s->rows + i, 4);
            if (!v)
                continue;
            uint32_t h = (v * 2654435761u) >> (32 - PHOTO_GRAM_BITS);
            grams++;
            repeats += s->grams[h] == v;
            s->grams[h] = v;
        }
    }
    scratch_trim(&s->rows, &s->rows_cap);
    return grams >= PHOTO_MIN_GRAMS && repeats * 10 < grams * 6;
}

int ts_png_is_photographic(const ts_image *img)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    deflate_tls *s = tls_get();
    if (!s || ts__image_check(img, "png", &ctx) < 0)
        return 0;
    return is_photographic(img, s);
}

int ts_png_encode_tuned(const ts_image *img, const ts_png_tuning *t, ts_blob **out, ts_ctx *ctx)
{
    *out = NULL;
    int rc = ts__image_check(img, "png", ctx);
    if (rc < 0)
        return rc;
    if ((size_t)img->width > 0x7fffffff / 4 || (size_t)img->height > 0x7fffffff / 4)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "png: %dx%d image is too large", img->width,
                            img->height);
    if (t->backend == TS_PNG_LIBPNG)
        return encode_libpng(img, t, out, ctx);
    if (t->backend != TS_PNG_AUTO)
        return encode_filtered(img, t, out, ctx);

    deflate_tls *s = tls_get();
    if (!s)
        return ts_ctx_error(ctx, TS_ENOMEM, "png: cannot allocate encoder state");
    ts_png_tuning chosen = *t;
    if (t->level > 0 && is_photographic(img, s)) {
        /* Z_RLE ignores the level beyond "not stored". */
        chosen = (ts_png_tuning){TS_PNG_ZLIB, 6, TS_PNG_FILTER_PAETH, Z_RLE, NULL, NULL};
    } else {
        chosen.backend = TS_PNG_LIBDEFLATE;
    }
    return encode_filtered(img, &chosen, out, ctx);
}

static int encode_png(const ts_image *img, const ts_encode_opts *opts, ts_blob **out, ts_ctx *ctx)
{
    ts_png_tuning t = ts_png_tuning_for(TS_FMT_PNG, opts ? opts->zlevel : -1);
    return ts_png_encode_tuned(img, &t, out, ctx);
}

static int encode_pngraw(const ts_image *img, const ts_encode_opts *opts, ts_blob **out,
                         ts_ctx *ctx)
{
    ts_png_tuning t = ts_png_tuning_for(TS_FMT_PNGRAW, opts ? opts->zlevel : -1);
    return ts_png_encode_tuned(img, &t, out, ctx);
}

const ts_encoder ts__encoder_png = {"png", "image/png", encode_png};
const ts_encoder ts__encoder_pngraw = {"pngraw", "image/png", encode_pngraw};
