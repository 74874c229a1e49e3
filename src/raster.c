/* Allocation of ts_raster (see ts_raster.h). */
#include "ts_raster.h"

#include <stdlib.h>
#include <string.h>

int ts_raster_alloc(ts_raster *r, int width, int height, int bands)
{
    memset(r, 0, sizeof *r);
    if (width <= 0 || height <= 0 || bands <= 0)
        return -TS_EINTERNAL;
    size_t px = (size_t)width * (size_t)height;
    r->data = malloc(px * (size_t)bands * sizeof(float));
    r->mask = malloc(px);
    if (!r->data || !r->mask) {
        ts_raster_free(r);
        return -TS_ENOMEM;
    }
    memset(r->mask, 255, px);
    r->width = width;
    r->height = height;
    r->bands = bands;
    r->geotransform[1] = 1.0;
    r->geotransform[5] = -1.0;
    return 0;
}

void ts_raster_free(ts_raster *r)
{
    TS_FREE(r->data);
    TS_FREE(r->mask);
    TS_FREE(r->bytes);
    r->width = r->height = r->bands = 0;
}
