/*
 * floor-render: the cost of a tile made with the bare library calls, without
 * the server. For each WebMercatorQuad tile of a list: GDAL warps the
 * dataset into the tile (GDALCreateGenImgProjTransformer2 + an approximate
 * transformer at 0.125 px, as gdalwarp does, + GDALChunkAndWarpImage, nearest
 * neighbour, with a destination alpha band for the validity mask) straight
 * into a pixel-interleaved buffer, then the encoder runs:
 *
 *   jpeg          TurboJPEG (tjCompress2, quality 85, 4:2:0, reused handle and
 *                 output buffer), the server's JPEG settings
 *   png, webp     tessera's own encoders (ts_encode), as the server uses them
 *   dem-colormap  Float32 warp, rescale to 0..255, the `terrain` colormap
 *                 (ts_colormap_apply), PNG via ts_encode (RGB when every pixel
 *                 is valid, RGBA otherwise, as the server does)
 *
 * The dataset is opened once per thread and each thread takes a contiguous
 * share of the list (rows of tiles), so that the threads' dataset handles,
 * which each hold their own blocks in GDAL's block cache, overlap little.
 * `--passes` runs the list several times; the last pass is the one reported
 * (warm GDAL block cache, like a server that has seen the tiles before), the
 * first is reported as `cold`. Tiles are at the dataset's native zoom, where
 * gdalwarp reads the full resolution, so no overview is chosen here.
 *
 *   floor_render --dataset PATH --tiles FILE --format jpeg|png|webp|dem-colormap
 *                [--rescale MIN,MAX] [--threads N] [--passes N]
 *
 * FILE has one "z x y" per line. Prints one JSON object on stdout.
 */
#include "ts_colormap.h"
#include "ts_encode.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#define TILE 256
#define WM_ORIGIN 20037508.342789244

typedef struct tile {
    int z;
    long x, y;
} tile;

typedef enum fmt { F_JPEG, F_PNG, F_WEBP, F_DEM } fmt;

static const char *dataset;
static tile *tiles;
static size_t ntiles;
static fmt format;
static double rlo = 0, rhi = 255;
static int nthreads = 1, passes = 2;

typedef struct worker {
    int id;
    int pass;
    size_t done, bytes, failed;
    double seconds, cpu_seconds;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static GDALDatasetH mem_tile(GDALDataType dt, int nb, void *data, size_t pixel_stride,
                             uint8_t *alpha)
{
    GDALDatasetH d = GDALCreate(GDALGetDriverByName("MEM"), "", TILE, TILE, 0, dt, NULL);
    if (!d)
        return NULL;
    int dsz = GDALGetDataTypeSizeBytes(dt);
    char o1[64], o2[64], o3[64];
    for (int b = 0; b <= nb; b++) {
        if (b < nb) {
            snprintf(o1, sizeof o1, "DATAPOINTER=%p", (void *)((char *)data + (size_t)b * dsz));
            snprintf(o2, sizeof o2, "PIXELOFFSET=%zu", pixel_stride);
            snprintf(o3, sizeof o3, "LINEOFFSET=%zu", pixel_stride * TILE);
        } else {
            snprintf(o1, sizeof o1, "DATAPOINTER=%p", (void *)alpha);
            snprintf(o2, sizeof o2, "PIXELOFFSET=1");
            snprintf(o3, sizeof o3, "LINEOFFSET=%d", TILE);
        }
        char *opts[] = {o1, o2, o3, NULL};
        if (GDALAddBand(d, b < nb ? dt : GDT_Byte, opts) != CE_None) {
            GDALClose(d);
            return NULL;
        }
    }
    return d;
}

/* Warp tile t of src into data (nb interleaved bands of dt) + alpha. */
static int warp_tile(GDALDatasetH src, OGRSpatialReferenceH wm, const tile *t, GDALDataType dt,
                     int nb, void *data, uint8_t *alpha)
{
    double size = 2 * WM_ORIGIN / (double)(1L << t->z);
    double gt[6] = {-WM_ORIGIN + t->x * size, size / TILE, 0,
                    WM_ORIGIN - t->y * size,  0,           -size / TILE};
    int dsz = GDALGetDataTypeSizeBytes(dt);
    memset(data, 0, (size_t)TILE * TILE * nb * dsz);
    memset(alpha, 0, (size_t)TILE * TILE);
    GDALDatasetH dst = mem_tile(dt, nb, data, (size_t)nb * dsz, alpha);
    if (!dst)
        return -1;
    GDALSetGeoTransform(dst, gt);
    GDALSetSpatialRef(dst, wm);
    void *tr = GDALCreateGenImgProjTransformer2(src, dst, NULL);
    if (!tr) {
        GDALClose(dst);
        return -1;
    }
    void *approx = GDALCreateApproxTransformer(GDALGenImgProjTransform, tr, 0.125);
    GDALApproxTransformerOwnsSubtransformer(approx, TRUE);
    GDALWarpOptions *wo = GDALCreateWarpOptions();
    wo->hSrcDS = src;
    wo->hDstDS = dst;
    wo->eResampleAlg = GRA_NearestNeighbour;
    wo->nBandCount = nb;
    wo->panSrcBands = CPLMalloc(sizeof(int) * nb);
    wo->panDstBands = CPLMalloc(sizeof(int) * nb);
    for (int i = 0; i < nb; i++)
        wo->panSrcBands[i] = wo->panDstBands[i] = i + 1;
    wo->nDstAlphaBand = nb + 1;
    wo->pfnTransformer = GDALApproxTransform;
    wo->pTransformerArg = approx;
    wo->papszWarpOptions = CSLSetNameValue(NULL, "INIT_DEST", "0");
    int has = 0;
    double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(src, 1), &has);
    if (has) {
        wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * nb);
        for (int i = 0; i < nb; i++)
            wo->padfSrcNoDataReal[i] = nd;
    }
    CPLErr err = CE_Failure;
    GDALWarpOperationH op = GDALCreateWarpOperation(wo);
    if (op) {
        err = GDALChunkAndWarpImage(op, 0, 0, TILE, TILE);
        GDALDestroyWarpOperation(op);
    }
    GDALDestroyWarpOptions(wo);
    GDALDestroyApproxTransformer(approx);
    GDALClose(dst);
    return err == CE_None ? 0 : -1;
}

static void *run(void *arg)
{
    worker *w = arg;
    GDALDatasetH src = GDALOpenEx(dataset, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!src) {
        fprintf(stderr, "floor_render: cannot open %s\n", dataset);
        w->failed = ntiles;
        return NULL;
    }
    OGRSpatialReferenceH wm = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(wm, 3857);
    OSRSetAxisMappingStrategy(wm, OAMS_TRADITIONAL_GIS_ORDER);
    const ts_colormap *terrain = ts_colormap_named("terrain");
    tjhandle tj = tjInitCompress();
    unsigned long jcap = tjBufSize(TILE, TILE, TJSAMP_420);
    unsigned char *jbuf = tjAlloc((int)jcap);
    int nb = format == F_DEM ? 1 : 3;
    GDALDataType dt = format == F_DEM ? GDT_Float32 : GDT_Byte;
    void *data = malloc((size_t)TILE * TILE * nb * GDALGetDataTypeSizeBytes(dt));
    uint8_t *alpha = malloc((size_t)TILE * TILE);
    uint8_t *rgba = malloc((size_t)TILE * TILE * 4);
    float *vals = malloc((size_t)TILE * TILE * sizeof(float));

    for (int pass = 0; pass < passes; pass++) {
        size_t done = 0, bytes = 0, failed = 0;
        double t0 = now_s(), c0 = cpu_s();
        size_t lo = ntiles * (size_t)w->id / (size_t)nthreads;
        size_t hi = ntiles * (size_t)(w->id + 1) / (size_t)nthreads;
        for (size_t i = lo; i < hi; i++) {
            if (warp_tile(src, wm, &tiles[i], dt, nb, data, alpha) < 0) {
                failed++;
                continue;
            }
            ts_ctx ctx;
            ts_ctx_init(&ctx);
            ts_blob *out = NULL;
            size_t len = 0;
            if (format == F_JPEG) {
                unsigned char *b = jbuf;
                unsigned long l = jcap;
                if (tjCompress2(tj, data, TILE, TILE * 3, TILE, TJPF_RGB, &b, &l, TJSAMP_420, 85,
                                TJFLAG_NOREALLOC) == 0)
                    len = l;
            } else if (format == F_PNG || format == F_WEBP) {
                ts_image img = {TILE, TILE, 3, TILE * 3, data};
                if (ts_encode(format == F_PNG ? TS_FMT_PNG : TS_FMT_WEBP, &img, NULL, &out, &ctx) ==
                    0)
                    len = out->size;
            } else {
                const float *f = data;
                size_t npx = (size_t)TILE * TILE;
                double span = rhi - rlo;
                for (size_t k = 0; k < npx; k++) {
                    double x = f[k] < rlo ? rlo : f[k] > rhi ? rhi : f[k];
                    vals[k] = (float)(uint8_t)((x - rlo) / span * 255.0);
                }
                ts_colormap_apply(terrain, vals, alpha, npx, rgba);
                int opaque = 1;
                for (size_t k = 0; k < npx && opaque; k++)
                    opaque = alpha[k] == 255;
                if (opaque)
                    for (size_t k = 0; k < npx; k++)
                        memmove(rgba + k * 3, rgba + k * 4, 3);
                ts_image img = {TILE, TILE, opaque ? 3 : 4, (size_t)TILE * (opaque ? 3 : 4), rgba};
                if (ts_encode(TS_FMT_PNG, &img, NULL, &out, &ctx) == 0)
                    len = out->size;
            }
            ts_blob_unref(out);
            if (!len)
                failed++;
            done++;
            bytes += len;
        }
        w->seconds = now_s() - t0;
        w->cpu_seconds = cpu_s() - c0;
        w->done = done;
        w->bytes = bytes;
        w->failed = failed;
        w->pass = pass;
        if (pass == 0 && passes > 1) {
            /* Keep the cold pass's figures in the upper half of the struct. */
            w[nthreads].seconds = w->seconds;
            w[nthreads].cpu_seconds = w->cpu_seconds;
            w[nthreads].done = done;
            w[nthreads].bytes = bytes;
            w[nthreads].failed = failed;
        }
    }
    free(vals);
    free(rgba);
    free(alpha);
    free(data);
    tjFree(jbuf);
    tjDestroy(tj);
    OSRDestroySpatialReference(wm);
    GDALClose(src);
    return NULL;
}

static int load_tiles(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap = 1024;
    tiles = malloc(cap * sizeof *tiles);
    tile t;
    while (fscanf(f, "%d %ld %ld", &t.z, &t.x, &t.y) == 3) {
        if (ntiles == cap)
            tiles = realloc(tiles, (cap *= 2) * sizeof *tiles);
        tiles[ntiles++] = t;
    }
    fclose(f);
    return ntiles ? 0 : -1;
}

static void summarise(const worker *w, double *secs, double *cpu, size_t *done, size_t *bytes,
                      size_t *failed)
{
    *secs = *cpu = 0;
    *done = *bytes = *failed = 0;
    for (int i = 0; i < nthreads; i++) {
        if (w[i].seconds > *secs)
            *secs = w[i].seconds; /* wall time: the slowest thread */
        *cpu += w[i].cpu_seconds;
        *done += w[i].done;
        *bytes += w[i].bytes;
        *failed += w[i].failed;
    }
}

int main(int argc, char **argv)
{
    const char *tiles_path = NULL, *fmt_name = "jpeg";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dataset") == 0 && i + 1 < argc)
            dataset = argv[++i];
        else if (strcmp(argv[i], "--tiles") == 0 && i + 1 < argc)
            tiles_path = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            fmt_name = argv[++i];
        else if (strcmp(argv[i], "--rescale") == 0 && i + 1 < argc)
            sscanf(argv[++i], "%lf,%lf", &rlo, &rhi);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
            passes = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: floor_render --dataset PATH --tiles FILE "
                            "--format jpeg|png|webp|dem-colormap [--rescale MIN,MAX] "
                            "[--threads N] [--passes N]\n");
            return 2;
        }
    }
    if (strcmp(fmt_name, "jpeg") == 0)
        format = F_JPEG;
    else if (strcmp(fmt_name, "png") == 0)
        format = F_PNG;
    else if (strcmp(fmt_name, "webp") == 0)
        format = F_WEBP;
    else if (strcmp(fmt_name, "dem-colormap") == 0)
        format = F_DEM;
    else {
        fprintf(stderr, "floor_render: unknown format %s\n", fmt_name);
        return 2;
    }
    if (!dataset || !tiles_path || nthreads < 1 || passes < 1 || load_tiles(tiles_path) < 0) {
        fprintf(stderr,
                "floor_render: need --dataset, a non-empty --tiles file, threads/passes >= 1\n");
        return 2;
    }
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)256 * 1024 * 1024); /* the server's default --gdal-cache-mb */
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");

    worker *w = calloc((size_t)nthreads * 2, sizeof *w);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    for (int i = 0; i < nthreads; i++) {
        w[i].id = i;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);

    double secs, csecs, cpu, ccpu;
    size_t done, bytes, failed, cdone, cbytes, cfailed;
    summarise(w, &secs, &cpu, &done, &bytes, &failed);
    summarise(w + nthreads, &csecs, &ccpu, &cdone, &cbytes, &cfailed);
    if (passes == 1) {
        csecs = secs;
        cdone = done;
    }
    printf("{\"format\": \"%s\", \"threads\": %d, \"tiles\": %zu, \"failed\": %zu, "
           "\"seconds\": %.4f, \"tiles_per_s\": %.2f, \"ms_per_tile\": %.4f, "
           "\"ms_per_tile_per_thread\": %.4f, \"cpu_ms_per_tile\": %.4f, \"avg_bytes\": %.0f, "
           "\"cold_tiles_per_s\": %.2f}\n",
           fmt_name, nthreads, done, failed, secs, secs > 0 ? done / secs : 0,
           done ? secs * 1000 / done : 0, done ? secs * 1000 * nthreads / done : 0,
           done ? cpu * 1000 / done : 0, done ? (double)bytes / done : 0,
           csecs > 0 ? cdone / csecs : 0);
    free(w);
    free(th);
    free(tiles);
    GDALDestroyDriverManager();
    return failed ? 1 : 0;
}
