/*
 * The in-memory raster that flows between reading and colouring: float32
 * samples, band-sequential, plus one validity mask shared by all bands.
 * Reading fills it; expressions and algorithms turn one raster into another;
 * rescale/colormap turn it into an 8-bit ts_image.
 */
#ifndef TS_RASTER_H
#define TS_RASTER_H

#include "ts_common.h"

#include <stdint.h>

typedef struct ts_raster {
    int width, height;
    int bands;
    float *data;    /* bands * width * height; band b, row r, col c at
                       data[(size_t)b * width * height + (size_t)r * width + c] */
    uint8_t *mask;  /* width * height; 255 = valid, 0 = masked (no data) */
    /* Georeferencing of the pixel grid (GDAL geotransform order), used by
     * algorithms that need the pixel size (hillshade, slope). */
    double geotransform[6];
    /* Value range of the source data type (e.g. 0..65535 for UInt16), used
     * when no rescale is given. */
    double dtype_min, dtype_max;
    /* Buffer pixels around the tile that algorithms may consume. */
    int buffer;
    /* The same samples as bytes (layout as data) when they are untouched
     * Byte source samples, so that an 8-bit tile is interleaved without a
     * float round trip; NULL otherwise. Only the reader sets it: a raster
     * derived from another (expression, algorithm) starts without one. */
    uint8_t *bytes;
} ts_raster;

/* Allocate data and mask (mask all valid). Returns 0 or -TS_ENOMEM. */
int ts_raster_alloc(ts_raster *r, int width, int height, int bands);
void ts_raster_free(ts_raster *r);

static inline float *ts_raster_band(const ts_raster *r, int b)
{
    return r->data + (size_t)b * (size_t)r->width * (size_t)r->height;
}

#endif
