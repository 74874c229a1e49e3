/*
 * JPEG encoder (TurboJPEG). JPEG has no alpha: RGBA is read as RGBX (the
 * alpha byte is skipped by TurboJPEG itself, no copy), grey stays grey, and
 * only grey + alpha needs a converted copy.
 */
#include "ts_encode.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <turbojpeg.h>

#define DEFAULT_QUALITY 85
#define JPEG_MAX_DIM 65535
/* An output buffer above this size is released after the call (see below). */
#define OUT_KEEP ((size_t)8 << 20)

/*
 * Per-thread compressor state. A tjhandle is not thread-safe, and creating
 * one per tile costs a libjpeg compressor set-up, so each thread owns one,
 * created on first use. Likewise the output buffer: sized with tjBufSize()
 * and passed with TJFLAG_NOREALLOC, it is reused for every tile, and each
 * result is copied (a few KB) into an exact-size blob.
 *
 * Ownership and lifetime: the thread owns the state. `tls` is the fast path;
 * the same pointer is registered under a pthread key whose destructor
 * (tjDestroy + tjFree) runs when the thread exits, since a _Thread_local
 * variable has no destructor of its own. Worker threads live as long as the
 * HTTP daemon, so this is set up once per worker. The main thread's state is
 * reclaimed by process exit.
 */
typedef struct jpeg_tls {
    tjhandle tj;
    unsigned char *out;
    size_t out_cap;
} jpeg_tls;

static _Thread_local jpeg_tls *tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_free(void *p)
{
    jpeg_tls *s = p;
    if (!s)
        return;
    if (s->tj)
        tjDestroy(s->tj);
    tjFree(s->out);
    free(s);
}

static void tls_key_create(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static jpeg_tls *tls_get(void)
{
    if (tls)
        return tls;
    pthread_once(&tls_once, tls_key_create);
    if (!tls_key_ok)
        return NULL; /* without the key the state would leak at thread exit */
    jpeg_tls *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->tj = tjInitCompress();
    if (!s->tj || pthread_setspecific(tls_key, s) != 0) {
        tls_free(s);
        return NULL;
    }
    tls = s;
    return s;
}

static int encode_jpeg(const ts_image *img, const ts_encode_opts *opts, ts_blob **out, ts_ctx *ctx)
{
    *out = NULL;
    int rc = ts__image_check(img, "jpeg", ctx);
    if (rc < 0)
        return rc;
    if (img->width > JPEG_MAX_DIM || img->height > JPEG_MAX_DIM)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "jpeg: %dx%d exceeds JPEG's %d pixel limit",
                            img->width, img->height, JPEG_MAX_DIM);
    int quality = opts && opts->quality > 0 ? opts->quality : DEFAULT_QUALITY;
    if (quality > 100)
        quality = 100;

    jpeg_tls *s = tls_get();
    if (!s)
        return ts_ctx_error(ctx, TS_ENOMEM, "jpeg: cannot create the TurboJPEG compressor");

    /* Grey + alpha is the one layout TurboJPEG cannot read: drop alpha. */
    ts_image grey = {0};
    const ts_image *src = img;
    if (img->channels == 2) {
        if ((rc = ts__image_convert(img, 1, &grey, ctx)) < 0)
            return rc;
        src = &grey;
    }
    static const int pixel_formats[5] = {0, TJPF_GRAY, TJPF_GRAY, TJPF_RGB, TJPF_RGBX};
    const int pf = pixel_formats[src->channels];
    /* 4:2:0 for colour, as libjpeg's and GDAL's defaults: tiles are viewed
     * at screen resolution, where full-resolution chroma is not visible. */
    const int subsamp = src->channels == 1 ? TJSAMP_GRAY : TJSAMP_420;

    const size_t need = tjBufSize(src->width, src->height, subsamp);
    if (need == (size_t)-1 || need == 0 || need > INT_MAX) {
        rc = ts_ctx_error(ctx, TS_EUNPROCESSABLE, "jpeg: %dx%d image is too large", src->width,
                          src->height);
        goto done;
    }
    if (s->out_cap < need) {
        tjFree(s->out);
        s->out_cap = 0;
        if (!(s->out = tjAlloc((int)need))) {
            rc = ts_ctx_error(ctx, TS_ENOMEM, "jpeg: out of memory");
            goto done;
        }
        s->out_cap = need;
    }

    unsigned char *buf = s->out;
    unsigned long len = (unsigned long)s->out_cap;
    if (tjCompress2(s->tj, src->data, src->width, (int)src->stride, src->height, pf, &buf, &len,
                    subsamp, quality, TJFLAG_NOREALLOC) != 0) {
        rc = ts_ctx_error(ctx, TS_EINTERNAL, "jpeg: %s", tjGetErrorStr2(s->tj));
        goto done;
    }
    if (!(*out = ts_blob_from(buf, len)))
        rc = ts_ctx_error(ctx, TS_ENOMEM, "jpeg: out of memory");

done:
    if (s->out_cap > OUT_KEEP) {
        /* One huge image must not pin its buffer in this thread forever. */
        tjFree(s->out);
        s->out = NULL;
        s->out_cap = 0;
    }
    free(grey.data);
    return rc;
}

const ts_encoder ts__encoder_jpeg = {"jpeg", "image/jpeg", encode_jpeg};
