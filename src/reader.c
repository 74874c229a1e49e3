/* GDAL dataset pool, metadata and tile warping (see ts_reader.h). */
#include "ts_reader.h"

#include "ts_blockcache.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <float.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Only the GeoTIFF driver may open user-named files: a file that merely has
 * a .tif name never reaches another driver. */
static const char *const allowed_drivers[] = {"GTiff", NULL};

#define POOL_SIZE 16
#define POOL_TMS 16

typedef struct tms_cache {
    const ts_tms *tms;
    bool zoom_valid;
    int minzoom, maxzoom;
    bool footprint_valid;
    bool footprint_ok;   /* false when the source cannot be transformed to the TMS CRS */
    ts_bbox footprint;   /* extent of the data in the TMS CRS */
    /* The source -> TMS CRS transformer of this handle, kept across tiles:
     * building one costs a PROJ pipeline lookup (proj.db queries), while
     * moving it to the next tile is GDALSetGenImgProjTransformerDstGeoTransform. */
    void *tr;
} tms_cache;

typedef struct pool_entry {
    char path[4096];
    long long size, mtime_ns;
    int ovr;             /* -1 = full resolution, else OVERVIEW_LEVEL */
    GDALDatasetH h;
    uint64_t last_used;
    bool info_valid;
    ts_dataset_info info;
    tms_cache tms[POOL_TMS];
} pool_entry;

typedef struct srs_entry {
    const ts_tms *tms;
    OGRSpatialReferenceH srs;
    /* Where the poles land in the TMS CRS (for the shared-block path). */
    int poles_state; /* 0 = not computed, 1 = pole[] valid, -1 = unknown */
    int npoles;
    double pole[2][2];
} srs_entry;

typedef struct thread_pool {
    pool_entry entries[POOL_SIZE];
    srs_entry srs[POOL_TMS];
    uint64_t tick;
} thread_pool;

static pthread_key_t pool_key;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static long global_cache_mb = 256;
/* Every tile creates one or two MEM datasets: the driver is looked up once. */
static GDALDriverH mem_driver;

/* Releases everything an entry owns and zeroes it. */
static void entry_clear(pool_entry *e)
{
    for (int i = 0; i < POOL_TMS; i++)
        if (e->tms[i].tr)
            GDALDestroyGenImgProjTransformer(e->tms[i].tr);
    if (e->h)
        GDALClose(e->h);
    memset(e, 0, sizeof *e);
}

static void pool_destroy(void *p)
{
    thread_pool *tp = p;
    if (!tp)
        return;
    for (int i = 0; i < POOL_SIZE; i++)
        entry_clear(&tp->entries[i]);
    for (int i = 0; i < POOL_TMS; i++)
        if (tp->srs[i].srs)
            OSRDestroySpatialReference(tp->srs[i].srs);
    free(tp);
}

static void global_init_once(void)
{
    GDALAllRegister();
    mem_driver = GDALGetDriverByName("MEM");
    /* Tiles read through the shared block store (below) use GDAL's own
     * cache only as a staging area while a block is decoded; the other
     * paths (resampling decimation, per-dataset masks, huge blocks) still
     * read through it, per handle. */
    long gdal_mb = global_cache_mb / 4 > 16 ? global_cache_mb / 4 : 16;
    GDALSetCacheMax64((GIntBig)gdal_mb * 1024 * 1024);
    if (ts_blockcache_init((size_t)global_cache_mb * 1024 * 1024) < 0)
        GDALSetCacheMax64((GIntBig)global_cache_mb * 1024 * 1024);
    /* COGs are self-contained: listing the directory for sidecar files on
     * every open costs a syscall storm in folders of thousands of files. */
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
    /* Remote datasets (--allow-remote): a stalled host must not hold a
     * worker for long, and only .tif-like names are fetched. */
    CPLSetConfigOption("GDAL_HTTP_CONNECTTIMEOUT", "5");
    CPLSetConfigOption("GDAL_HTTP_TIMEOUT", "15");
    CPLSetConfigOption("GDAL_HTTP_MAX_RETRY", "1");
    CPLSetConfigOption("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif,.tiff,.TIF,.TIFF");
    pthread_key_create(&pool_key, pool_destroy);
}

void ts_reader_global_init(long gdal_cache_mb)
{
    global_cache_mb = gdal_cache_mb;
    pthread_once(&global_once, global_init_once);
}

static thread_pool *get_pool(void)
{
    pthread_once(&global_once, global_init_once);
    thread_pool *tp = pthread_getspecific(pool_key);
    if (!tp) {
        tp = calloc(1, sizeof *tp);
        if (tp)
            pthread_setspecific(pool_key, tp);
    }
    return tp;
}

void ts_reader_thread_cleanup(void)
{
    thread_pool *tp = pthread_getspecific(pool_key);
    pool_destroy(tp);
    pthread_setspecific(pool_key, NULL);
}

/* GDAL reports errors through a thread-local "last error"; we silence the
 * default stderr handler and copy the message into the request context. */
static int gdal_error(ts_ctx *ctx, ts_err code, const char *what)
{
    const char *msg = CPLGetLastErrorMsg();
    return ts_ctx_error(ctx, code, "%s%s%s", what, msg && msg[0] ? ": " : "",
                        msg ? msg : "");
}

static pool_entry *pool_get(const ts_dataset *ds, int ovr, ts_ctx *ctx)
{
    thread_pool *tp = get_pool();
    if (!tp) {
        ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        return NULL;
    }
    pool_entry *victim = &tp->entries[0];
    for (int i = 0; i < POOL_SIZE; i++) {
        pool_entry *e = &tp->entries[i];
        if (e->h && e->ovr == ovr && strcmp(e->path, ds->path) == 0) {
            if (e->size == ds->size && e->mtime_ns == ds->mtime_ns) {
                e->last_used = ++tp->tick;
                return e;
            }
            /* The file was replaced: its handle (and cached metadata) is stale. */
            victim = e;
            break;
        }
        if (!e->h || e->last_used < victim->last_used)
            victim = e;
    }
    entry_clear(victim);

    char ovr_opt[32];
    const char *open_opts[2] = {NULL, NULL};
    if (ovr >= 0) {
        snprintf(ovr_opt, sizeof ovr_opt, "OVERVIEW_LEVEL=%d", ovr);
        open_opts[0] = ovr_opt;
    }
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH h = GDALOpenEx(ds->path, GDAL_OF_RASTER | GDAL_OF_READONLY, allowed_drivers,
                                open_opts, NULL);
    CPLPopErrorHandler();
    if (!h) {
        gdal_error(ctx, TS_EUNPROCESSABLE, "cannot open dataset as a GeoTIFF");
        return NULL;
    }
    if (GDALGetRasterCount(h) < 1) {
        GDALClose(h);
        ts_ctx_error(ctx, TS_EUNPROCESSABLE, "dataset has no raster bands");
        return NULL;
    }
    snprintf(victim->path, sizeof victim->path, "%s", ds->path);
    victim->size = ds->size;
    victim->mtime_ns = ds->mtime_ns;
    victim->ovr = ovr;
    victim->h = h;
    victim->last_used = ++tp->tick;
    return victim;
}

static OGRSpatialReferenceH tms_srs(const ts_tms *tms, ts_ctx *ctx)
{
    thread_pool *tp = get_pool();
    if (!tp) {
        ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        return NULL;
    }
    int free_slot = -1;
    for (int i = 0; i < POOL_TMS; i++) {
        if (tp->srs[i].tms == tms)
            return tp->srs[i].srs;
        if (!tp->srs[i].tms && free_slot < 0)
            free_slot = i;
    }
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    OGRErr err = OSRSetFromUserInput(srs, ts_tms_crs_input(tms));
    CPLPopErrorHandler();
    if (err != OGRERR_NONE) {
        OSRDestroySpatialReference(srs);
        ts_ctx_error(ctx, TS_EINTERNAL, "TileMatrixSet %s: unusable CRS %s", ts_tms_id(tms),
                     ts_tms_crs_input(tms));
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    if (free_slot < 0) {
        /* More TMSs in use than slots: recycle the first (rare; custom sets). */
        OSRDestroySpatialReference(tp->srs[0].srs);
        free_slot = 0;
    }
    tp->srs[free_slot].tms = tms;
    tp->srs[free_slot].srs = srs;
    return srs;
}

/* The TMS CRS coordinates of the points near the poles that GDAL's warper
 * checks (GDALWarpOperation::Initialize, +/-89.9999 degrees): when one falls
 * inside a tile, the warper samples its source window from the source side
 * too, which can read beyond the window source_window() estimates. -1 when
 * the poles cannot be placed (then every tile is treated as polar). */
static int tms_poles(const ts_tms *tms, const double (**pole)[2], int *npoles)
{
    thread_pool *tp = get_pool();
    srs_entry *se = NULL;
    for (int i = 0; tp && i < POOL_TMS; i++)
        if (tp->srs[i].tms == tms)
            se = &tp->srs[i];
    if (!se || !se->srs)
        return -1;
    if (se->poles_state == 0) {
        se->poles_state = -1;
        OGRSpatialReferenceH ll = OSRNewSpatialReference(NULL);
        if (ll && OSRImportFromEPSG(ll, 4326) == OGRERR_NONE) {
            OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
            CPLPushErrorHandler(CPLQuietErrorHandler);
            OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(ll, se->srs);
            if (ct) {
                double x[2] = {0, 0}, y[2] = {-89.9999, 89.9999}, z[2] = {0, 0};
                int ok[2] = {0, 0};
                OCTTransformEx(ct, 2, x, y, z, ok);
                se->npoles = 0;
                for (int i = 0; i < 2; i++)
                    if (ok[i] && isfinite(x[i]) && isfinite(y[i])) {
                        se->pole[se->npoles][0] = x[i];
                        se->pole[se->npoles][1] = y[i];
                        se->npoles++;
                    }
                /* A pole that does not transform cannot be located. */
                if (se->npoles == 2)
                    se->poles_state = 1;
                OCTDestroyCoordinateTransformation(ct);
            }
            CPLPopErrorHandler();
        }
        if (ll)
            OSRDestroySpatialReference(ll);
    }
    if (se->poles_state < 0)
        return -1;
    *pole = (const double (*)[2])se->pole;
    *npoles = se->npoles;
    return 0;
}

static void dtype_range(GDALDataType t, double *lo, double *hi)
{
    switch (t) {
    case GDT_Byte: *lo = 0; *hi = 255; break;
    case GDT_UInt16: *lo = 0; *hi = 65535; break;
    case GDT_Int16: *lo = -32768; *hi = 32767; break;
    case GDT_UInt32: *lo = 0; *hi = 4294967295.0; break;
    case GDT_Int32: *lo = -2147483648.0; *hi = 2147483647.0; break;
    case GDT_Float32: *lo = -FLT_MAX; *hi = FLT_MAX; break;
    default:
        if ((int)t == 14 /* GDT_Int8 (GDAL >= 3.7) */) {
            *lo = -128; *hi = 127;
        } else {
            *lo = -DBL_MAX; *hi = DBL_MAX;
        }
    }
}

static void fill_info(pool_entry *e)
{
    ts_dataset_info *in = &e->info;
    GDALDatasetH h = e->h;
    memset(in, 0, sizeof *in);
    in->width = GDALGetRasterXSize(h);
    in->height = GDALGetRasterYSize(h);
    in->bands = GDALGetRasterCount(h);
    in->nbands_described = in->bands < TS_MAX_BANDS ? in->bands : TS_MAX_BANDS;
    GDALRasterBandH b1 = GDALGetRasterBand(h, 1);
    dtype_range(GDALGetRasterDataType(b1), &in->dtype_min, &in->dtype_max);
    for (int i = 0; i < in->nbands_described; i++) {
        GDALRasterBandH b = GDALGetRasterBand(h, i + 1);
        ts_band_info *bi = &in->band[i];
        snprintf(bi->dtype, sizeof bi->dtype, "%s", GDALGetDataTypeName(GDALGetRasterDataType(b)));
        const char *desc = GDALGetDescription(b);
        snprintf(bi->description, sizeof bi->description, "%s", desc ? desc : "");
        snprintf(bi->color_interp, sizeof bi->color_interp, "%s",
                 GDALGetColorInterpretationName(GDALGetRasterColorInterpretation(b)));
        int has = 0;
        bi->nodata = GDALGetRasterNoDataValue(b, &has);
        bi->has_nodata = has != 0;
        bi->scale = GDALGetRasterScale(b, &has);
        bi->offset = GDALGetRasterOffset(b, &has);
        bi->has_palette = GDALGetRasterColorTable(b) != NULL;
    }
    GDALRasterBandH last = GDALGetRasterBand(h, in->bands);
    in->has_alpha = in->bands > 1 && GDALGetRasterColorInterpretation(last) == GCI_AlphaBand;
    int mflags = GDALGetMaskFlags(b1);
    in->has_mask = (mflags & GMF_PER_DATASET) && !(mflags & GMF_ALPHA) && !(mflags & GMF_NODATA);
    in->nodata_type = in->band[0].has_nodata ? 1 : in->has_alpha ? 3 : in->has_mask ? 2 : 0;
    in->noverviews = GDALGetOverviewCount(b1);
    if (in->noverviews > TS_MAX_OVERVIEWS)
        in->noverviews = TS_MAX_OVERVIEWS;
    for (int i = 0; i < in->noverviews; i++) {
        GDALRasterBandH o = GDALGetOverview(b1, i);
        in->overview_width[i] = o ? GDALGetRasterBandXSize(o) : 0;
        in->overview_height[i] = o ? GDALGetRasterBandYSize(o) : 0;
    }

    OGRSpatialReferenceH srs = GDALGetSpatialRef(h);
    in->has_gcps = GDALGetGCPCount(h) > 0;
    if (!srs && in->has_gcps)
        srs = GDALGetGCPSpatialRef(h);
    in->has_crs = srs != NULL;
    if (srs) {
        const char *auth = OSRGetAuthorityName(srs, NULL);
        const char *code = OSRGetAuthorityCode(srs, NULL);
        if (auth && code)
            snprintf(in->crs, sizeof in->crs, "%s:%s", auth, code);
        const char *name = OSRGetName(srs);
        snprintf(in->crs_wkt_short, sizeof in->crs_wkt_short, "%s", name ? name : "");
    }
    if (GDALGetGeoTransform(h, in->geotransform) != CE_None) {
        in->geotransform[0] = 0; in->geotransform[1] = 1; in->geotransform[2] = 0;
        in->geotransform[3] = 0; in->geotransform[4] = 0; in->geotransform[5] = 1;
    }
    double *gt = in->geotransform;
    double xs[4] = {gt[0], gt[0] + gt[1] * in->width, gt[0] + gt[2] * in->height,
                    gt[0] + gt[1] * in->width + gt[2] * in->height};
    double ys[4] = {gt[3], gt[3] + gt[4] * in->width, gt[3] + gt[5] * in->height,
                    gt[3] + gt[4] * in->width + gt[5] * in->height};
    in->native_bounds[0] = in->native_bounds[2] = xs[0];
    in->native_bounds[1] = in->native_bounds[3] = ys[0];
    for (int i = 1; i < 4; i++) {
        in->native_bounds[0] = fmin(in->native_bounds[0], xs[i]);
        in->native_bounds[2] = fmax(in->native_bounds[2], xs[i]);
        in->native_bounds[1] = fmin(in->native_bounds[1], ys[i]);
        in->native_bounds[3] = fmax(in->native_bounds[3], ys[i]);
    }

    /* WGS84 bounds: the extent of a warp into EPSG:4326 handles GCP sources
     * and densifies the edges, as rio-tiler's transform_bounds does. */
    if (srs) {
        OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(wgs, 4326);
        OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
        char *wkt = NULL;
        OSRExportToWkt(wgs, &wkt);
        char **to = CSLSetNameValue(NULL, "DST_SRS", wkt);
        CPLPushErrorHandler(CPLQuietErrorHandler);
        void *tr = GDALCreateGenImgProjTransformer2(h, NULL, to);
        if (tr) {
            double sgt[6], ext[4];
            int px, ln;
            if (GDALSuggestedWarpOutput2(h, GDALGenImgProjTransform, tr, sgt, &px, &ln, ext, 0) ==
                CE_None) {
                in->wgs84_bounds[0] = fmax(ext[0], -180.0);
                in->wgs84_bounds[1] = fmax(ext[1], -90.0);
                in->wgs84_bounds[2] = fmin(ext[2], 180.0);
                in->wgs84_bounds[3] = fmin(ext[3], 90.0);
                in->has_wgs84_bounds = true;
            }
            GDALDestroyGenImgProjTransformer(tr);
        }
        CPLPopErrorHandler();
        CSLDestroy(to);
        CPLFree(wkt);
        OSRDestroySpatialReference(wgs);
    }
    e->info_valid = true;
}

static pool_entry *entry_with_info(const ts_dataset *ds, ts_ctx *ctx)
{
    pool_entry *e = pool_get(ds, -1, ctx);
    if (e && !e->info_valid)
        fill_info(e);
    return e;
}

int ts_reader_info(const ts_dataset *ds, ts_dataset_info *out, ts_ctx *ctx)
{
    pool_entry *e = entry_with_info(ds, ctx);
    if (!e)
        return -ctx->code;
    *out = e->info;
    return 0;
}

static tms_cache *tms_slot(pool_entry *e, const ts_tms *tms)
{
    for (int i = 0; i < POOL_TMS; i++)
        if (e->tms[i].tms == tms)
            return &e->tms[i];
    for (int i = 0; i < POOL_TMS; i++)
        if (!e->tms[i].tms) {
            e->tms[i].tms = tms;
            return &e->tms[i];
        }
    if (e->tms[0].tr)
        GDALDestroyGenImgProjTransformer(e->tms[0].tr);
    memset(&e->tms[0], 0, sizeof e->tms[0]);
    e->tms[0].tms = tms;
    return &e->tms[0];
}

/* The dataset's extent and natural resolution in the TMS CRS
 * (rasterio's calculate_default_transform == GDALSuggestedWarpOutput2). */
static int suggested_output(pool_entry *e, const ts_tms *tms, double gt[6], int *px, int *ln,
                            double ext[4], ts_ctx *ctx)
{
    OGRSpatialReferenceH srs = tms_srs(tms, ctx);
    if (!srs)
        return -ctx->code;
    if (!e->info.has_crs)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "dataset has no coordinate reference system (no CRS and no GCPs)");
    char *wkt = NULL;
    OSRExportToWkt(srs, &wkt);
    char **to = CSLSetNameValue(NULL, "DST_SRS", wkt);
    CPLFree(wkt);
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    void *tr = GDALCreateGenImgProjTransformer2(e->h, NULL, to);
    CSLDestroy(to);
    int rc = 0;
    if (!tr) {
        rc = gdal_error(ctx, TS_EUNPROCESSABLE, "cannot transform the dataset's CRS to the TileMatrixSet's CRS");
    } else {
        if (GDALSuggestedWarpOutput2(e->h, GDALGenImgProjTransform, tr, gt, px, ln, ext, 0) !=
            CE_None)
            rc = gdal_error(ctx, TS_EUNPROCESSABLE, "cannot compute the dataset's extent in the TileMatrixSet's CRS");
        GDALDestroyGenImgProjTransformer(tr);
    }
    CPLPopErrorHandler();
    return rc;
}

static int ensure_footprint(pool_entry *e, tms_cache *tc, ts_ctx *ctx)
{
    if (tc->footprint_valid) {
        if (!tc->footprint_ok)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "cannot transform the dataset's CRS to the TileMatrixSet's CRS");
        return 0;
    }
    double gt[6], ext[4];
    int px, ln;
    int rc = suggested_output(e, tc->tms, gt, &px, &ln, ext, ctx);
    tc->footprint_valid = true;
    tc->footprint_ok = rc == 0;
    if (rc < 0)
        return rc;
    tc->footprint.minx = ext[0];
    tc->footprint.miny = ext[1];
    tc->footprint.maxx = ext[2];
    tc->footprint.maxy = ext[3];
    return 0;
}

int ts_reader_zoom_range(const ts_dataset *ds, const ts_tms *tms, int *minzoom, int *maxzoom,
                         ts_ctx *ctx)
{
    pool_entry *e = entry_with_info(ds, ctx);
    if (!e)
        return -ctx->code;
    tms_cache *tc = tms_slot(e, tms);
    if (!tc->zoom_valid) {
        double gt[6], ext[4];
        int px, ln;
        int rc = suggested_output(e, tms, gt, &px, &ln, ext, ctx);
        if (rc < 0)
            return rc;
        double res = fmax(fabs(gt[1]), fabs(gt[5]));
        /* rio-tiler: maxzoom fits the native resolution; minzoom fits the
         * coarsest overview a COG of this size would have (256 px minimum). */
        int level = 0, factor = 1;
        while ((px / factor < ln / factor ? px / factor : ln / factor) > 256) {
            factor *= 2;
            level++;
        }
        int tmin = ts_tms_minzoom(tms), tmax = ts_tms_maxzoom(tms);
        tc->maxzoom = ts_tms_zoom_for_res(tms, res, tmin, tmax, "auto");
        tc->minzoom = ts_tms_zoom_for_res(tms, res * (double)(1 << level), tmin, tmax, "auto");
        tc->zoom_valid = true;
    }
    *minzoom = tc->minzoom;
    *maxzoom = tc->maxzoom;
    return 0;
}

int ts_reader_resampling_parse(const char *name, int *alg)
{
    static const struct {
        const char *name;
        GDALResampleAlg alg;
    } algs[] = {
        {"nearest", GRA_NearestNeighbour}, {"bilinear", GRA_Bilinear},
        {"cubic", GRA_Cubic},              {"cubic_spline", GRA_CubicSpline},
        {"lanczos", GRA_Lanczos},          {"average", GRA_Average},
        {"mode", GRA_Mode},                {"max", GRA_Max},
        {"min", GRA_Min},                  {"med", GRA_Med},
        {"q1", GRA_Q1},                    {"q3", GRA_Q3},
        {"sum", GRA_Sum},                  {"rms", GRA_RMS},
    };
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcasecmp(name, algs[i].name) == 0) {
            *alg = (int)algs[i].alg;
            return 0;
        }
    return -1;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* GDAL reports progress per warped row and per RasterIO chunk; answering
 * FALSE aborts the operation, which is how a render deadline stops GDAL. */
static int CPL_STDCALL deadline_progress(double done, const char *msg, void *arg)
{
    (void)done;
    (void)msg;
    const double *deadline = arg;
    return !(*deadline > 0 && mono_now() > *deadline);
}

int ts_reader_io_resampling_parse(const char *name, int *alg)
{
    static const struct {
        const char *name;
        GDALRIOResampleAlg alg;
    } algs[] = {
        {"nearest", GRIORA_NearestNeighbour}, {"bilinear", GRIORA_Bilinear},
        {"cubic", GRIORA_Cubic},              {"cubic_spline", GRIORA_CubicSpline},
        {"lanczos", GRIORA_Lanczos},          {"average", GRIORA_Average},
        {"mode", GRIORA_Mode},                {"gauss", GRIORA_Gauss},
        {"rms", GRIORA_RMS},
    };
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcasecmp(name, algs[i].name) == 0) {
            *alg = (int)algs[i].alg;
            return 0;
        }
    return -1;
}

/* The source pixel window (x0, y0, x1, y1, unclamped) that a dst_w x dst_h
 * target maps to, from sample points through the exact transformer. Shared by the
 * read budget and the `resampling` decimation. -1 when nothing maps. */
static int source_window(void *tr, int dst_w, int dst_h, double win[4], int *failed)
{
    /* The warper's own edge points (21 per edge, ComputeSourceWindow's
     * default SAMPLE_STEPS), plus a 7x7 interior grid for transforms whose
     * extremes are not on the edges. */
    enum { E = 21, G = 7, N = 4 * E + G * G };
    double x[N], y[N], z[N];
    int ok[N];
    int k = 0;
    for (int i = 0; i < E; i++) {
        double t = (double)i / (E - 1);
        double ex[4] = {t * dst_w, t * dst_w, 0, dst_w}, ey[4] = {0, dst_h, t * dst_h, t * dst_h};
        for (int e = 0; e < 4; e++, k++) {
            x[k] = ex[e];
            y[k] = ey[e];
        }
    }
    for (int ix = 1; ix <= G; ix++)
        for (int iy = 1; iy <= G; iy++, k++) {
            x[k] = dst_w * (double)ix / (G + 1);
            y[k] = dst_h * (double)iy / (G + 1);
        }
    memset(z, 0, sizeof z);
    if (!GDALGenImgProjTransform(tr, TRUE, N, x, y, z, ok))
        return -1;
    win[0] = win[1] = INFINITY;
    win[2] = win[3] = -INFINITY;
    *failed = 0;
    for (int i = 0; i < N; i++)
        if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i]))
            (*failed)++;
        else {
            win[0] = fmin(win[0], x[i]);
            win[1] = fmin(win[1], y[i]);
            win[2] = fmax(win[2], x[i]);
            win[3] = fmax(win[3], y[i]);
        }
    return win[2] > win[0] && win[3] > win[1] ? 0 : -1;
}

/*
 * `resampling` (rio-tiler's io resampling): when the tile is coarser than the
 * source level gdalwarp picked, first decimate the source window to about the
 * tile's resolution with GDAL's RasterIO resampling (as rio-tiler reads a
 * native-resolution WarpedVRT with out_shape), then let the warp kernel
 * (`reproject`) map that onto the tile grid. Returns a MEM dataset holding
 * the selected bands (1..nb), then the alpha band when the source has one,
 * with the source's nodata and per-dataset mask; NULL when no decimation is
 * needed or possible (GCP-only sources, upsampling).
 */
static GDALDatasetH decimated_source(GDALDatasetH src, const double win[4], int dst_w, int dst_h,
                                     const int *bands, int nb, int alpha_band, int alg,
                                     const double *deadline)
{
    double sgt[6];
    if (GDALGetGeoTransform(src, sgt) != CE_None || sgt[2] != 0 || sgt[4] != 0)
        return NULL;
    double x0 = win[0], y0 = win[1], x1 = win[2], y1 = win[3];
    double ratio = fmax((x1 - x0) / dst_w, (y1 - y0) / dst_h);
    if (!(ratio > 1.0))
        return NULL;
    /* A margin for the kernels, clamped to the raster. */
    int sx = GDALGetRasterXSize(src), sy = GDALGetRasterYSize(src);
    int margin = (int)ceil(2 * ratio);
    int wx0 = (int)fmax(0, floor(x0) - margin), wy0 = (int)fmax(0, floor(y0) - margin);
    int wx1 = (int)fmin(sx, ceil(x1) + margin), wy1 = (int)fmin(sy, ceil(y1) + margin);
    if (wx1 <= wx0 || wy1 <= wy0)
        return NULL;
    int ww = wx1 - wx0, wh = wy1 - wy0;
    int ow = (int)ceil(ww / ratio), oh = (int)ceil(wh / ratio);
    if (ow < 1)
        ow = 1;
    if (oh < 1)
        oh = 1;

    GDALDataType dt = GDALGetRasterDataType(GDALGetRasterBand(src, bands[0]));
    GDALDatasetH mem = GDALCreate(mem_driver, "", ow, oh, 0, dt, NULL);
    if (!mem)
        return NULL;
    double mgt[6] = {sgt[0] + wx0 * sgt[1], sgt[1] * ww / ow, 0,
                     sgt[3] + wy0 * sgt[5], 0, sgt[5] * wh / oh};
    GDALSetGeoTransform(mem, mgt);
    GDALSetSpatialRef(mem, GDALGetSpatialRef(src));
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    extra.eResampleAlg = (GDALRIOResampleAlg)alg;
    extra.pfnProgress = deadline_progress;
    extra.pProgressData = (void *)deadline;
    int total = nb + (alpha_band ? 1 : 0);
    for (int i = 0; i < total; i++) {
        GDALRasterBandH sb = GDALGetRasterBand(src, i < nb ? bands[i] : alpha_band);
        GDALDataType bdt = i < nb ? dt : GDALGetRasterDataType(sb);
        if (GDALAddBand(mem, bdt, NULL) != CE_None)
            goto fail;
        GDALRasterBandH mb = GDALGetRasterBand(mem, i + 1);
        int has = 0;
        double nd = GDALGetRasterNoDataValue(sb, &has);
        if (has)
            GDALSetRasterNoDataValue(mb, nd);
        if (i == nb)
            GDALSetRasterColorInterpretation(mb, GCI_AlphaBand);
        void *buf = VSIMalloc3((size_t)ow, (size_t)oh, (size_t)GDALGetDataTypeSizeBytes(bdt));
        if (!buf)
            goto fail;
        /* The alpha band is read with nearest: averaging it would half-mask edges. */
        GDALRasterIOExtraArg *ea = i < nb ? &extra : NULL;
        CPLErr err = GDALRasterIOEx(sb, GF_Read, wx0, wy0, ww, wh, buf, ow, oh, bdt, 0, 0, ea);
        if (err == CE_None)
            err = GDALRasterIO(mb, GF_Write, 0, 0, ow, oh, buf, ow, oh, bdt, 0, 0);
        VSIFree(buf);
        if (err != CE_None)
            goto fail;
    }
    /* A per-dataset mask (not nodata, not alpha) travels as a MEM mask band. */
    GDALRasterBandH sb1 = GDALGetRasterBand(src, bands[0]);
    if (!alpha_band && GDALGetMaskFlags(sb1) == GMF_PER_DATASET) {
        if (GDALCreateDatasetMaskBand(mem, GMF_PER_DATASET) != CE_None)
            goto fail;
        uint8_t *m = VSIMalloc2((size_t)ow, (size_t)oh);
        if (!m)
            goto fail;
        CPLErr err = GDALRasterIO(GDALGetMaskBand(sb1), GF_Read, wx0, wy0, ww, wh, m, ow, oh,
                                  GDT_Byte, 0, 0);
        if (err == CE_None)
            err = GDALRasterIO(GDALGetMaskBand(GDALGetRasterBand(mem, 1)), GF_Write, 0, 0, ow,
                               oh, m, ow, oh, GDT_Byte, 0, 0);
        VSIFree(m);
        if (err != CE_None)
            goto fail;
    }
    return mem;
fail:
    GDALClose(mem);
    return NULL;
}

/* Copies the window (x0, y0, w, h) of band `bandno` of `src` into dst (rows
 * of w pixels) block by block through the shared store, decoding on this
 * thread's handle the blocks no worker has decoded yet. key holds the file
 * version and level (klen bytes) with room for the block address after it. */
static int read_band_window(GDALDatasetH src, int bandno, char *key, size_t klen, int x0, int y0,
                            int w, int h, unsigned char *dst, const double *deadline)
{
    GDALRasterBandH b = GDALGetRasterBand(src, bandno);
    GDALDataType dt = GDALGetRasterDataType(b);
    int dts = GDALGetDataTypeSizeBytes(dt);
    int bw = 0, bh = 0;
    GDALGetBlockSize(b, &bw, &bh);
    int X = GDALGetRasterBandXSize(b), Y = GDALGetRasterBandYSize(b);
    if (bw < 1 || bh < 1)
        return -1;
    for (int by = y0 / bh; by <= (y0 + h - 1) / bh; by++)
        for (int bx = x0 / bw; bx <= (x0 + w - 1) / bw; bx++) {
            if (*deadline > 0 && mono_now() > *deadline)
                return -1;
            int addr[3] = {bandno, bx, by};
            memcpy(key + klen, addr, sizeof addr);
            int cw = bw < X - bx * bw ? bw : X - bx * bw;
            int ch = bh < Y - by * bh ? bh : Y - by * bh;
            ts_blob *blk = ts_blockcache_get(key, klen + sizeof addr);
            if (!blk) {
                blk = ts_blob_new((size_t)cw * ch * dts);
                if (!blk)
                    return -1;
                if (GDALRasterIO(b, GF_Read, bx * bw, by * bh, cw, ch, blk->data, cw, ch, dt, 0,
                                 0) != CE_None) {
                    ts_blob_unref(blk);
                    return -1;
                }
                ts_blockcache_put(key, klen + sizeof addr, blk);
            }
            int ix0 = x0 > bx * bw ? x0 : bx * bw;
            int ix1 = x0 + w < bx * bw + cw ? x0 + w : bx * bw + cw;
            int iy0 = y0 > by * bh ? y0 : by * bh;
            int iy1 = y0 + h < by * bh + ch ? y0 + h : by * bh + ch;
            for (int r = iy0; r < iy1; r++)
                memcpy(dst + ((size_t)(r - y0) * w + (ix0 - x0)) * dts,
                       blk->data + ((size_t)(r - by * bh) * cw + (ix0 - bx * bw)) * dts,
                       (size_t)(ix1 - ix0) * dts);
            ts_blob_unref(blk);
        }
    return 0;
}

/* Largest window buffer read through the shared store; bigger reads (low
 * zooms without overviews) go through GDAL in the warper's chunks. */
#define MAX_SHARED_WINDOW_BYTES ((size_t)64 * 1024 * 1024)

/*
 * The tile's source through the shared block store: the window the warper
 * will read, plus a margin, copied from shared blocks into one buffer
 * (*buf_out, freed by the caller after the warp), presented as a MEM
 * dataset of the level's full size whose bands point into that buffer. The
 * warper then sees the same raster size, bands, nodata and alpha as the
 * GTiff handle and keeps the same transformer, so its pixels are the direct
 * path's, while the blocks it needed were inflated once for all threads.
 *
 * MEM addresses pixel (x, y) at DATAPOINTER + y * LINEOFFSET + x *
 * PIXELOFFSET; the warper reads only its source window
 * (GDALWarpOperation::ComputeSourceWindow: the tile's edge points through
 * the approximate transformer, plus the kernel radius scaled by the
 * downsampling ratio, plus 10 pixels when a point fails; the whole width
 * or height once it covers 90% of it). The buffer covers the
 * window of source_window()'s points plus 16 pixels plus four times the ratio
 * (whole rows/columns past 85%), and the cases where the warper samples more widely are
 * sent down the direct path instead: a grid point that fails to transform,
 * and a pole inside the tile. NULL when this path does not apply.
 */
static GDALDatasetH shared_source(const pool_entry *we, GDALDatasetH src, const double win[4],
                                  int dst_w, int dst_h, const int *bands, int nb, int alpha_band,
                                  const double *deadline, void **buf_out)
{
    *buf_out = NULL;
    GDALRasterBandH b1 = GDALGetRasterBand(src, bands[0]);
    int mflags = GDALGetMaskFlags(b1);
    /* A per-dataset mask band would need a full-size MEM mask. */
    if ((mflags & GMF_PER_DATASET) && !(mflags & GMF_ALPHA))
        return NULL;
    if ((mflags & GMF_ALPHA) && !alpha_band)
        return NULL;
    int X = GDALGetRasterXSize(src), Y = GDALGetRasterYSize(src);
    double ratio = fmax(fmax((win[2] - win[0]) / dst_w, (win[3] - win[1]) / dst_h), 1.0);
    double m = 16 + ceil(4 * ratio);
    double fx0 = fmax(0, floor(win[0]) - m), fy0 = fmax(0, floor(win[1]) - m);
    double fx1 = fmin(X, ceil(win[2]) + m), fy1 = fmin(Y, ceil(win[3]) + m);
    /* The warper reads whole rows or columns once its window spans 90% of
     * them (for antimeridian seams); 85% leaves room for its approximation. */
    if (fmin(X, ceil(win[2])) - fmax(0, floor(win[0])) > 0.85 * X) {
        fx0 = 0;
        fx1 = X;
    }
    if (fmin(Y, ceil(win[3])) - fmax(0, floor(win[1])) > 0.85 * Y) {
        fy0 = 0;
        fy1 = Y;
    }
    if (!(fx1 > fx0 && fy1 > fy0))
        return NULL;
    int wx0 = (int)fx0, wy0 = (int)fy0, ww = (int)(fx1 - fx0), wh = (int)(fy1 - fy0);

    int total = nb + (alpha_band ? 1 : 0);
    int srcb[TS_MAX_BANDS + 1];
    size_t off[TS_MAX_BANDS + 2];
    off[0] = 0;
    for (int i = 0; i < total; i++) {
        srcb[i] = i < nb ? bands[i] : alpha_band;
        GDALRasterBandH b = GDALGetRasterBand(src, srcb[i]);
        int dts = GDALGetDataTypeSizeBytes(GDALGetRasterDataType(b));
        int bw = 0, bh = 0;
        GDALGetBlockSize(b, &bw, &bh);
        if ((size_t)bw * bh * dts > ts_blockcache_max_block_bytes())
            return NULL;
        off[i + 1] = off[i] + (size_t)ww * wh * dts;
        if (off[i + 1] > MAX_SHARED_WINDOW_BYTES)
            return NULL;
    }
    unsigned char *buf = malloc(off[total]);
    if (!buf)
        return NULL;
    /* Key: path, NUL, size, change stamp, level; then band and block. */
    char key[sizeof we->path + 64];
    size_t plen = strlen(we->path) + 1;
    size_t klen = plen;
    memcpy(key, we->path, plen);
    memcpy(key + klen, &we->size, sizeof we->size);
    klen += sizeof we->size;
    memcpy(key + klen, &we->mtime_ns, sizeof we->mtime_ns);
    klen += sizeof we->mtime_ns;
    memcpy(key + klen, &we->ovr, sizeof we->ovr);
    klen += sizeof we->ovr;
    for (int i = 0; i < total; i++)
        if (read_band_window(src, srcb[i], key, klen, wx0, wy0, ww, wh, buf + off[i],
                             deadline) < 0) {
            free(buf);
            return NULL;
        }

    GDALDatasetH mem = GDALCreate(mem_driver, "", X, Y, 0, GDT_Byte, NULL);
    if (!mem) {
        free(buf);
        return NULL;
    }
    for (int i = 0; i < total; i++) {
        GDALRasterBandH sb = GDALGetRasterBand(src, srcb[i]);
        GDALDataType dt = GDALGetRasterDataType(sb);
        int dts = GDALGetDataTypeSizeBytes(dt);
        /* Integer arithmetic: the origin lies before the buffer, and only
         * MEM's reads inside the window ever dereference it. */
        uintptr_t origin = (uintptr_t)(buf + off[i]) -
                           ((uintptr_t)wy0 * (uintptr_t)ww + (uintptr_t)wx0) * (uintptr_t)dts;
        char o1[64], o2[48], o3[48];
        snprintf(o1, sizeof o1, "DATAPOINTER=%p", (void *)origin);
        snprintf(o2, sizeof o2, "PIXELOFFSET=%d", dts);
        snprintf(o3, sizeof o3, "LINEOFFSET=%lld", (long long)ww * dts);
        char *opts[] = {o1, o2, o3, NULL};
        if (GDALAddBand(mem, dt, opts) != CE_None) {
            GDALClose(mem);
            free(buf);
            return NULL;
        }
        GDALRasterBandH mb = GDALGetRasterBand(mem, i + 1);
        int has = 0;
        double nd = GDALGetRasterNoDataValue(sb, &has);
        if (has)
            GDALSetRasterNoDataValue(mb, nd);
        GDALSetRasterColorInterpretation(mb, GDALGetRasterColorInterpretation(sb));
    }
    *buf_out = buf;
    return mem;
}

static int approx_no_probe(void *arg, int dst_to_src, int n, double *x, double *y, double *z,
                           int *ok)
{
    return GDALApproxTransform(arg, dst_to_src, n, x, y, z, ok);
}

/* The entry's transformer to the TMS of `tc`, moved onto this tile's grid.
 * Created from the tile's MEM dataset the first time, exactly as gdalwarp
 * creates it; later tiles only change the destination geotransform, which
 * is all that differs between two tiles of one TMS. */
static void *entry_transformer(pool_entry *e, tms_cache *tc, GDALDatasetH dst, const double gt[6])
{
    if (!tc->tr) {
        tc->tr = GDALCreateGenImgProjTransformer2(e->h, dst, NULL);
        return tc->tr;
    }
    GDALSetGenImgProjTransformerDstGeoTransform(tc->tr, gt);
    return tc->tr;
}

/* gdalwarp 3.6's automatic overview choice for an explicit target window. */
static int choose_overview(GDALDatasetH src, void *tr, int dst_w, int dst_h)
{
    GDALRasterBandH b1 = GDALGetRasterBand(src, 1);
    int nov = GDALGetOverviewCount(b1);
    if (nov <= 0)
        return -1;
    enum { N1 = 10, N = N1 * N1 };
    double x[N], y[N], z[N];
    int ok[N];
    int k = 0;
    for (int ix = 0; ix < N1; ix++)
        for (int iy = 0; iy < N1; iy++) {
            x[k] = dst_w * (double)ix / (N1 - 1);
            y[k] = dst_h * (double)iy / (N1 - 1);
            z[k] = 0;
            k++;
        }
    double ratio = 0;
    if (GDALGenImgProjTransform(tr, TRUE, N, x, y, z, ok)) {
        double mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < N; i++)
            if (ok[i]) {
                mn = fmin(mn, x[i]);
                mx = fmax(mx, x[i]);
            }
        if (mx > mn)
            ratio = (mx - mn) / dst_w;
    }
    if (!(ratio > 1.0))
        return -1;
    int sx = GDALGetRasterXSize(src);
    int i = -1;
    for (; i < nov - 1; i++) {
        double r = i < 0 ? 1.0 : (double)sx / GDALGetRasterBandXSize(GDALGetOverview(b1, i));
        double next = (double)sx / GDALGetRasterBandXSize(GDALGetOverview(b1, i + 1));
        if (r < ratio && next > ratio)
            break;
        if (fabs(r - ratio) < 1e-1)
            break;
    }
    return i;
}

/* GDAL warps from the source window at the chosen level's full resolution.
 * Without an overview fine enough for the tile (a big GeoTIFF without
 * overviews, at a low zoom) that window can be the whole raster: 10^12
 * pixels for a 1,000,000 x 1,000,000 one, minutes of reading per tile.
 * Reads are refused beyond this many samples (pixels x bands; about 1 to 3 s
 * of decoding) unless they stay within 16 times the tile itself (a large
 * tile of many bands read from a well-chosen overview). */
#define MAX_READ_SAMPLES (256.0 * 1024 * 1024)

/* A MEM dataset whose bands write straight into caller buffers (no copy):
 * nbands data bands of type dt in `data` (band-sequential), then a Byte
 * alpha band in `alpha`. The data type matches the source's so that GDAL
 * picks the same working type (and specialised kernels) as gdalwarp does. */
static GDALDatasetH mem_dataset(int w, int h, GDALDataType dt, void *data, int nbands,
                                uint8_t *alpha)
{
    GDALDatasetH d = GDALCreate(mem_driver, "", w, h, 0, dt, NULL);
    if (!d)
        return NULL;
    size_t band_bytes = (size_t)w * h * (size_t)GDALGetDataTypeSizeBytes(dt);
    char opt[64];
    for (int b = 0; b <= nbands; b++) {
        void *ptr = b < nbands ? (void *)((char *)data + band_bytes * b) : (void *)alpha;
        snprintf(opt, sizeof opt, "DATAPOINTER=%p", ptr);
        char *opts[] = {opt, NULL};
        if (GDALAddBand(d, b < nbands ? dt : GDT_Byte, opts) != CE_None) {
            GDALClose(d);
            return NULL;
        }
    }
    return d;
}

int ts_reader_tile(const ts_dataset *ds, const ts_read_opts *o, ts_raster *out, ts_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    pool_entry *e = entry_with_info(ds, ctx);
    if (!e)
        return -ctx->code;
    const ts_dataset_info *info = &e->info;

    ts_bbox tb;
    int rc = ts_tms_xy_bounds(o->tms, o->z, o->x, o->y, &tb, ctx);
    if (rc < 0)
        return rc;
    tms_cache *tc = tms_slot(e, o->tms);
    if ((rc = ensure_footprint(e, tc, ctx)) < 0)
        return rc;
    if (tb.minx >= tc->footprint.maxx || tb.maxx <= tc->footprint.minx ||
        tb.miny >= tc->footprint.maxy || tb.maxy <= tc->footprint.miny)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "Tile(x=%ld, y=%ld, z=%d) is outside bounds",
                            o->x, o->y, o->z);

    /* Band list: the request's, else every band but an alpha band. */
    int bands[TS_MAX_BANDS];
    int nb = 0;
    if (o->bands && o->nbands > 0) {
        if (o->nbands > TS_MAX_BANDS)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "bidx: at most %d bands", TS_MAX_BANDS);
        for (int i = 0; i < o->nbands; i++) {
            if (o->bands[i] < 1 || o->bands[i] > info->bands)
                return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                                    "bidx: band %d does not exist (the dataset has %d bands)",
                                    o->bands[i], info->bands);
            bands[nb++] = o->bands[i];
        }
    } else {
        int n = info->has_alpha ? info->bands - 1 : info->bands;
        if (n > TS_MAX_BANDS)
            n = TS_MAX_BANDS;
        for (int i = 0; i < n; i++)
            bands[nb++] = i + 1;
    }

    OGRSpatialReferenceH srs = tms_srs(o->tms, ctx);
    if (!srs)
        return -ctx->code;
    if (!info->has_crs)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "dataset has no coordinate reference system (no CRS and no GCPs)");

    int W = o->width + (int)(2 * o->buffer), H = o->height + (int)(2 * o->buffer);
    if ((rc = ts_raster_alloc(out, W, H, nb)) < 0)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory for a %dx%dx%d tile", W, H, nb);
    memset(out->mask, 0, (size_t)W * H);
    double rx = (tb.maxx - tb.minx) / o->width, ry = (tb.maxy - tb.miny) / o->height;
    double gt[6] = {tb.minx - o->buffer * rx, rx, 0, tb.maxy + o->buffer * ry, 0, -ry};
    memcpy(out->geotransform, gt, sizeof gt);
    out->buffer = (int)o->buffer;
    GDALDataType dt = GDALGetRasterDataType(GDALGetRasterBand(e->h, bands[0]));
    dtype_range(dt, &out->dtype_min, &out->dtype_max);
    /* Float32 sources warp straight into the raster; other types go through
     * a typed buffer converted afterwards. */
    void *typed = NULL;
    if (dt != GDT_Float32) {
        typed = calloc((size_t)W * H * nb, (size_t)GDALGetDataTypeSizeBytes(dt));
        if (!typed) {
            ts_raster_free(out);
            return ts_ctx_error(ctx, TS_ENOMEM, "out of memory for a %dx%dx%d tile", W, H, nb);
        }
    } else {
        /* Chunks without source data are never written by the warper. */
        memset(out->data, 0, (size_t)W * H * nb * sizeof(float));
    }
    GDALDatasetH dst = mem_dataset(W, H, dt, typed ? typed : (void *)out->data, nb, out->mask);
    if (!dst) {
        free(typed);
        ts_raster_free(out);
        return gdal_error(ctx, TS_EINTERNAL, "cannot create the tile buffer");
    }
    GDALSetGeoTransform(dst, gt);
    GDALSetSpatialRef(dst, srs);

    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    /* Transformers are owned by the pool entries' TMS slots, except the one
     * built for a decimated source (owned_tr). */
    void *tr = entry_transformer(e, tc, dst, gt);
    void *owned_tr = NULL;
    GDALDatasetH wrk = e->h;
    const pool_entry *we = e; /* the entry wrk belongs to */
    if (tr) {
        int ovr = choose_overview(e->h, tr, W, H);
        if (ovr >= 0) {
            pool_entry *oe = pool_get(ds, ovr, ctx);
            /* The full-resolution entry (and its transformer) may have been
             * recycled by pool_get: neither is used from here on. */
            tr = NULL;
            we = NULL;
            if (oe) {
                wrk = oe->h;
                we = oe;
                tr = entry_transformer(oe, tms_slot(oe, o->tms), dst, gt);
            }
        }
    }
    if (!tr) {
        CPLPopErrorHandler();
        GDALClose(dst);
        free(typed);
        ts_raster_free(out);
        if (ctx->code)
            return -ctx->code;
        return gdal_error(ctx, TS_EUNPROCESSABLE,
                          "cannot transform the dataset's CRS to the TileMatrixSet's CRS");
    }
    /* One window estimate for the read budget and the decimation. */
    double win[4] = {0, 0, 0, 0};
    int win_failed = 0;
    bool have_win = source_window(tr, W, H, win, &win_failed) == 0;
    double samples = 0;
    if (have_win) {
        double cw = fmin(win[2], GDALGetRasterXSize(wrk)) - fmax(win[0], 0);
        double ch = fmin(win[3], GDALGetRasterYSize(wrk)) - fmax(win[1], 0);
        samples = cw > 0 && ch > 0 ? cw * ch * nb : 0;
    }
    if (samples > MAX_READ_SAMPLES && samples > 16.0 * W * H * nb) {
        CPLPopErrorHandler(); /* tr belongs to the pool entry */
        GDALClose(dst);
        free(typed);
        ts_raster_free(out);
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "Tile(x=%ld, y=%ld, z=%d) would read %.0f million source pixels "
                            "(limit %.0f million): the dataset has no overview for this zoom; "
                            "zoom in or add overviews",
                            o->x, o->y, o->z, samples / 1e6, MAX_READ_SAMPLES / 1e6);
    }
    int src_bands[TS_MAX_BANDS];
    memcpy(src_bands, bands, sizeof(int) * nb);
    int nsrc = GDALGetRasterCount(wrk);
    int src_alpha = GDALGetRasterColorInterpretation(GDALGetRasterBand(wrk, nsrc)) == GCI_AlphaBand &&
                    nsrc > 1 ? nsrc : 0;
    GDALDatasetH dec = NULL;
    if (o->resampling != 0 && have_win &&
        (dec = decimated_source(wrk, win, W, H, bands, nb, src_alpha, o->resampling,
                                &o->deadline_s))) {
        void *tr2 = GDALCreateGenImgProjTransformer2(dec, dst, NULL);
        if (tr2) {
            tr = owned_tr = tr2;
            wrk = dec;
            for (int i = 0; i < nb; i++)
                src_bands[i] = i + 1;
            src_alpha = src_alpha ? nb + 1 : 0;
        } else {
            GDALClose(dec);
            dec = NULL;
        }
    }
    void *shared_buf = NULL;
    GDALDatasetH shared = NULL;
    if (!dec && have_win && win_failed == 0 && we && ts_blockcache_enabled()) {
        const double(*pole)[2] = NULL;
        int npoles = 0;
        bool polar = tms_poles(o->tms, &pole, &npoles) < 0;
        /* A quarter tile of slack: the warper places the poles through the
         * source's own datum, not WGS84. */
        double mx = gt[1] * (W / 4 + 1), my = -gt[5] * (H / 4 + 1);
        for (int i = 0; i < npoles && !polar; i++)
            polar = pole[i][0] >= gt[0] - mx && pole[i][0] <= gt[0] + gt[1] * W + mx &&
                    pole[i][1] <= gt[3] + my && pole[i][1] >= gt[3] + gt[5] * H - my;
        if (!polar &&
            (shared = shared_source(we, wrk, win, W, H, src_bands, nb, src_alpha,
                                    &o->deadline_s, &shared_buf))) {
            wrk = shared;
            for (int i = 0; i < nb; i++)
                src_bands[i] = i + 1;
            src_alpha = src_alpha ? nb + 1 : 0;
        }
    }
    void *approx = GDALCreateApproxTransformer(GDALGenImgProjTransform, tr, 0.125);

    GDALWarpOptions *wo = GDALCreateWarpOptions();
    wo->hSrcDS = wrk;
    wo->hDstDS = dst;
    wo->eResampleAlg = (GDALResampleAlg)o->reproject;
    wo->nBandCount = nb;
    wo->panSrcBands = CPLMalloc(sizeof(int) * nb);
    wo->panDstBands = CPLMalloc(sizeof(int) * nb);
    for (int i = 0; i < nb; i++) {
        wo->panSrcBands[i] = src_bands[i];
        wo->panDstBands[i] = i + 1;
    }
    if (src_alpha)
        wo->nSrcAlphaBand = src_alpha;
    wo->nDstAlphaBand = nb + 1;
    /* GDALWarpOperation::Initialize places the poles in the destination
     * (a PROJ pipeline built per operation, ~8% of a tile) when the
     * transformer is GDAL's own, to sample polar tiles more densely, and
     * detects translations on pixel boundaries, which only change the
     * kernel of non-nearest resampling. A shared-source tile has no pole
     * near it (checked above): a nearest one calls the same function
     * through a pointer GDAL does not recognise. */
    wo->pfnTransformer = shared && o->reproject == GRA_NearestNeighbour ? approx_no_probe
                                                                        : GDALApproxTransform;
    if (o->deadline_s > 0) {
        wo->pfnProgress = deadline_progress;
        wo->pProgressArg = (void *)&o->deadline_s;
    }
    wo->pTransformerArg = approx;
    wo->papszWarpOptions = CSLSetNameValue(NULL, "INIT_DEST", "0");
    if (o->nodata_override) {
        wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * nb);
        for (int i = 0; i < nb; i++)
            wo->padfSrcNoDataReal[i] = o->nodata;
        if (nb > 1)
            wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "UNIFIED_SRC_NODATA", "YES");
    } else {
        int any = 0;
        for (int i = 0; i < nb && !any; i++)
            GDALGetRasterNoDataValue(GDALGetRasterBand(wrk, src_bands[i]), &any);
        if (any) {
            wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * nb);
            for (int i = 0; i < nb; i++) {
                int has = 0;
                double v = GDALGetRasterNoDataValue(GDALGetRasterBand(wrk, src_bands[i]), &has);
                /* gdalwarp's filler for bands without a nodata value. */
                wo->padfSrcNoDataReal[i] = has ? v : -123456.789;
            }
        }
    }

    CPLErr err = CE_Failure;
    GDALWarpOperationH op = GDALCreateWarpOperation(wo);
    if (op) {
        err = GDALChunkAndWarpImage(op, 0, 0, W, H);
        GDALDestroyWarpOperation(op);
    }
    if (err != CE_None && o->deadline_s > 0 && mono_now() > o->deadline_s) {
        ts_ctx_error(ctx, TS_EUNAVAILABLE, "render timed out: the tile took longer than the server's limit");
        ctx->retry_after = 1;
    } else if (err != CE_None) {
        gdal_error(ctx, TS_EUNPROCESSABLE, "cannot read the tile");
    }
    CPLPopErrorHandler();
    GDALDestroyWarpOptions(wo); /* also destroys nothing of the transformer */
    GDALDestroyApproxTransformer(approx);
    if (owned_tr)
        GDALDestroyGenImgProjTransformer(owned_tr);
    GDALClose(dst);
    if (dec)
        GDALClose(dec);
    if (shared)
        GDALClose(shared);
    free(shared_buf);
    if (err != CE_None) {
        free(typed);
        ts_raster_free(out);
        return -ctx->code;
    }
    if (typed) {
        GDALCopyWords64(typed, dt, GDALGetDataTypeSizeBytes(dt), out->data, GDT_Float32,
                        (int)sizeof(float), (GPtrDiff_t)W * H * nb);
        if (dt == GDT_Byte && !o->unscale)
            out->bytes = typed;
        else
            free(typed);
    }

    if (o->unscale) {
        for (int b = 0; b < nb; b++) {
            int has = 0;
            GDALRasterBandH band = GDALGetRasterBand(e->h, bands[b]);
            double scale = GDALGetRasterScale(band, &has);
            double offset = GDALGetRasterOffset(band, &has);
            float *p = ts_raster_band(out, b);
            for (size_t i = 0; i < (size_t)W * H; i++)
                p[i] = (float)(p[i] * scale + offset);
        }
        out->dtype_min = -FLT_MAX;
        out->dtype_max = FLT_MAX;
    }
    return 0;
}

int ts_reader_palette(const ts_dataset *ds, uint8_t (*rgba)[4], int max, ts_ctx *ctx)
{
    pool_entry *e = pool_get(ds, -1, ctx);
    if (!e)
        return -ctx->code;
    GDALColorTableH ct = GDALGetRasterColorTable(GDALGetRasterBand(e->h, 1));
    if (!ct)
        return 0;
    int n = GDALGetColorEntryCount(ct);
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++) {
        GDALColorEntry c;
        GDALGetColorEntryAsRGB(ct, i, &c);
        rgba[i][0] = (uint8_t)c.c1;
        rgba[i][1] = (uint8_t)c.c2;
        rgba[i][2] = (uint8_t)c.c3;
        rgba[i][3] = (uint8_t)c.c4;
    }
    return n;
}
