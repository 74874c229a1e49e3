/*
 * GeoTIFF output through GDAL's GTiff driver into a /vsimem/ file: no
 * temporary files, and the bytes are moved out of GDAL's memory file into a
 * blob. The mask band, when present, is written as an alpha band so that
 * QGIS and GDAL treat masked pixels as transparent.
 */
#include "ts_encode.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <string.h>

static GDALDataType gdal_type(ts_dtype t)
{
    switch (t) {
    case TS_DT_U8: return GDT_Byte;
    case TS_DT_U16: return GDT_UInt16;
    case TS_DT_I16: return GDT_Int16;
    case TS_DT_U32: return GDT_UInt32;
    case TS_DT_I32: return GDT_Int32;
    case TS_DT_F32: return GDT_Float32;
    }
    return GDT_Unknown;
}

int ts_encode_gtiff(const ts_array *a, ts_blob **out, ts_ctx *ctx)
{
    *out = NULL;
    GDALDataType dt = gdal_type(a->dtype);
    if (dt == GDT_Unknown || a->width <= 0 || a->height <= 0 || a->bands <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "tif: invalid array");
    static unsigned long counter;
    char name[96];
    snprintf(name, sizeof name, "/vsimem/tessera-out-%lu.tif",
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));

    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **opts = NULL;
    opts = CSLSetNameValue(opts, "COMPRESS", "DEFLATE");
    opts = CSLSetNameValue(opts, "PREDICTOR", a->dtype == TS_DT_F32 ? "3" : "2");
    opts = CSLSetNameValue(opts, "INTERLEAVE", "BAND");
    if (a->last_band_is_mask && a->bands > 1)
        opts = CSLSetNameValue(opts, "ALPHA", "YES");
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = drv ? GDALCreate(drv, name, a->width, a->height, a->bands, dt, opts) : NULL;
    CSLDestroy(opts);
    int rc = 0;
    if (!ds) {
        rc = ts_ctx_error(ctx, TS_EINTERNAL, "tif: cannot create the GeoTIFF (%s)", CPLGetLastErrorMsg());
        goto done;
    }
    GDALSetGeoTransform(ds, (double *)a->geotransform);
    if (a->crs && a->crs[0]) {
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        if (OSRSetFromUserInput(srs, a->crs) == OGRERR_NONE) {
            OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
            GDALSetSpatialRef(ds, srs);
        }
        OSRDestroySpatialReference(srs);
    }
    size_t band_bytes = (size_t)a->width * a->height * ts_dtype_size(a->dtype);
    for (int b = 0; b < a->bands && rc == 0; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (GDALRasterIO(band, GF_Write, 0, 0, a->width, a->height,
                         (char *)a->data + band_bytes * (size_t)b, a->width, a->height, dt, 0,
                         0) != CE_None)
            rc = ts_ctx_error(ctx, TS_EINTERNAL, "tif: cannot write band %d", b + 1);
    }
    CPLErrorReset();
    GDALClose(ds); /* void in GDAL 3.6: a failed flush shows as the last error */
    if (CPLGetLastErrorType() >= CE_Failure && rc == 0)
        rc = ts_ctx_error(ctx, TS_EINTERNAL, "tif: cannot finish the GeoTIFF");
    if (rc == 0) {
        vsi_l_offset len = 0;
        GByte *bytes = VSIGetMemFileBuffer(name, &len, FALSE);
        if (!bytes) {
            rc = ts_ctx_error(ctx, TS_EINTERNAL, "tif: no output");
        } else if (!(*out = ts_blob_from(bytes, (size_t)len))) {
            rc = ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        }
    }
done:
    VSIUnlink(name);
    CPLPopErrorHandler();
    return rc;
}
