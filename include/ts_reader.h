/*
 * GDAL reading: the only module that knows GDAL. Dataset handles are not
 * thread-safe, so each worker thread keeps its own small pool of open
 * handles keyed by path (and overview level), reopened when the file's size
 * or mtime changes.
 *
 * Tiles are read with the same recipe as `gdalwarp -te <tile bounds> -ts W H
 * -t_srs <tms crs> -r <alg>` (GDAL 3.6 apps/gdalwarp_lib.cpp): the overview is
 * chosen from the source window a 10x10 grid of target points maps to, the
 * transformer is rebuilt on that overview, and an approximate transformer
 * with a 0.125 pixel error threshold drives GDALWarpOperation. The server's
 * pixels therefore match gdalwarp's exactly.
 */
#ifndef TS_READER_H
#define TS_READER_H

#include "ts_common.h"
#include "ts_raster.h"
#include "ts_tms.h"

#include <stdbool.h>
#include <stdint.h>

/* A resolved, confined dataset path plus the identity of its current bytes. */
typedef struct ts_dataset {
    char path[4096];
    long long size;
    long long mtime_ns; /* change stamp: ctime (ns) mixed with the inode number */
} ts_dataset;

/* Resolve a user-supplied `url` against the data root: relative paths are
 * taken from the root, absolute ones must lie inside it, after resolving
 * `..` and symlinks. GDAL virtual paths and URLs are refused. Anything that
 * does not resolve to a regular file under the root is a 404 that does not
 * say whether the file exists elsewhere. */
int ts_dataset_resolve(const char *data_root, const char *url, ts_dataset *out, ts_ctx *ctx);

/* How often local datasets' identities were checked with stat(), and how
 * many reads of the change watch returned events (see src/dataset.c): with
 * the watch, cache HITs make no stat(). */
typedef struct ts_dataset_stats {
    long long stats, change_events;
} ts_dataset_stats;
void ts_dataset_get_stats(ts_dataset_stats *out);

/* True for "http://" and "https://" URLs. */
bool ts_dataset_is_remote(const char *url);
/* A remote dataset (only with --allow-remote): the URL must be plain
 * http(s) with a host (and port) on the comma-separated allow-list, no
 * credentials; it is read through GDAL's /vsicurl/, and its identity (size,
 * Last-Modified) comes from a HEAD request (cached by GDAL). 403 when the
 * host is not allowed, 404 when the file cannot be reached. GDAL follows
 * redirects from an allowed host: list only hosts you trust. */
int ts_dataset_resolve_remote(const char *allowed_hosts, const char *url, ts_dataset *out,
                              ts_ctx *ctx);

/* Sets GDAL's global configuration (block cache, quiet errors) once. */
void ts_reader_global_init(long gdal_cache_mb);
/* Closes this thread's handles (called when a worker thread ends). */
void ts_reader_thread_cleanup(void);

typedef struct ts_band_info {
    char dtype[16];
    char description[128];
    char color_interp[16];
    bool has_nodata;
    double nodata;
    double scale, offset;
    bool has_palette;
} ts_band_info;

#define TS_MAX_BANDS 64
#define TS_MAX_OVERVIEWS 32

typedef struct ts_dataset_info {
    int width, height, bands;
    ts_band_info band[TS_MAX_BANDS];
    int nbands_described;   /* min(bands, TS_MAX_BANDS) */
    char crs[64];           /* "EPSG:32632" or "" when it has no authority code */
    char crs_wkt_short[256];
    bool has_crs;
    bool has_gcps;
    double geotransform[6];
    double native_bounds[4]; /* minx, miny, maxx, maxy in the dataset CRS */
    double wgs84_bounds[4];  /* lon/lat, densified transform */
    bool has_wgs84_bounds;
    int noverviews;
    int overview_width[TS_MAX_OVERVIEWS], overview_height[TS_MAX_OVERVIEWS];
    bool has_alpha;          /* last band is an alpha band */
    bool has_mask;           /* a per-dataset mask band */
    int nodata_type;         /* 0 none, 1 nodata, 2 mask, 3 alpha */
    double dtype_min, dtype_max; /* range of band 1's data type */
} ts_dataset_info;

int ts_reader_info(const ts_dataset *ds, ts_dataset_info *out, ts_ctx *ctx);

/* Zoom range of a dataset in a TMS (rio-tiler's rule). */
int ts_reader_zoom_range(const ts_dataset *ds, const ts_tms *tms, int *minzoom, int *maxzoom,
                         ts_ctx *ctx);

typedef struct ts_read_opts {
    const ts_tms *tms;
    int z;
    long x, y;
    int width, height;         /* output pixels without the buffer */
    double buffer;             /* extra pixels read on each side (multiple of 0.5) */
    const int *bands;          /* 1-based band indexes; NULL = every non-alpha band */
    int nbands;
    bool nodata_override;
    double nodata;
    bool unscale;              /* apply scale/offset to the values */
    int resampling;            /* GDALRIOResampleAlg used to decimate the source; 0 = nearest */
    int reproject;             /* GDALResampleAlg for the warp; 0 = nearest */
    double deadline_s;         /* CLOCK_MONOTONIC seconds after which the read is
                                  abandoned (503); 0 = none */
} ts_read_opts;

/* Reads one tile into out (allocated here, free with ts_raster_free):
 * out->bands = number of bands read, mask from nodata/mask/alpha (255 valid).
 * -TS_ENOT_FOUND when the tile lies outside the dataset's bounds. */
int ts_reader_tile(const ts_dataset *ds, const ts_read_opts *opts, ts_raster *out,
                   ts_ctx *ctx);

/* The dataset's palette (band 1 colour table) as RGBA entries; returns the
 * count (0 = none). */
int ts_reader_palette(const ts_dataset *ds, uint8_t (*rgba)[4], int max, ts_ctx *ctx);

/* Overview/decimation names accepted by `resampling` (GDALRIOResampleAlg values). */
int ts_reader_io_resampling_parse(const char *name, int *alg);
/* Warp-kernel names accepted by `reproject` (GDALResampleAlg values). */
int ts_reader_resampling_parse(const char *name, int *alg);

#endif
