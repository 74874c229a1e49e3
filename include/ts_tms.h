/*
 * OGC TileMatrixSet 2.0 documents: loading, validation and tile geometry.
 *
 * All coordinates handed out by this module are in the TMS CRS in
 * east/north ("traditional GIS") order, whatever the CRS's own axis order
 * is: pointOfOrigin of a lat/lon CRS such as EPSG:4326 ([90,-180]) is swapped
 * on load. Callers that build an OGRSpatialReference from ts_tms_crs() must
 * therefore set OAMS_TRADITIONAL_GIS_ORDER.
 */
#ifndef TS_TMS_H
#define TS_TMS_H

#include "ts_common.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct ts_bbox {
    double minx, miny, maxx, maxy;
} ts_bbox;

typedef struct ts_vmw {
    int coalesce;     /* tiles merged into one along x */
    long min_row;     /* inclusive */
    long max_row;     /* inclusive */
} ts_vmw;

typedef struct ts_tile_matrix {
    char id[32];
    int zoom;                  /* numeric value of id */
    double scale_denominator;
    double cell_size;          /* CRS units per pixel */
    double origin_x, origin_y; /* corner of origin, east/north order */
    bool bottom_left;          /* cornerOfOrigin == bottomLeft (rows grow northwards) */
    int tile_width, tile_height;
    long matrix_width, matrix_height;
    const ts_vmw *vmw;         /* variableMatrixWidths, may be NULL */
    size_t nvmw;
} ts_tile_matrix;

typedef struct ts_tms ts_tms;
typedef struct ts_tms_registry ts_tms_registry;

/* Parse and validate one TMS document. */
int ts_tms_parse(const char *json, size_t len, ts_tms **out, ts_ctx *ctx);
void ts_tms_free(ts_tms *tms);

/* Load every *.json of builtin_dir, then of extra_dir (may be NULL or ""):
 * a custom TMS with the id of a built-in one replaces it. Fails on any
 * invalid file, naming it. */
int ts_tms_registry_load(ts_tms_registry **out, const char *builtin_dir, const char *extra_dir,
                         ts_ctx *ctx);
void ts_tms_registry_free(ts_tms_registry *reg);
size_t ts_tms_registry_count(const ts_tms_registry *reg);
const ts_tms *ts_tms_registry_at(const ts_tms_registry *reg, size_t i); /* sorted by id */
const ts_tms *ts_tms_registry_get(const ts_tms_registry *reg, const char *id);

const char *ts_tms_id(const ts_tms *tms);
const char *ts_tms_title(const ts_tms *tms); /* may be "" */
const char *ts_tms_uri(const ts_tms *tms);   /* the document's uri, may be "" */
/* CRS as given in the document (URI/URN string, or the uri of a CRS object);
 * for a WKT CRS, the authority URI GDAL finds for it, else "". */
const char *ts_tms_crs_uri(const ts_tms *tms);
/* CRS in a form OSRSetFromUserInput accepts ("EPSG:3857", "urn:ogc:def:crs:OGC:1.3:CRS84", or WKT). */
const char *ts_tms_crs_input(const ts_tms *tms);
/* The document as loaded (served by GET /tileMatrixSets/{id}). */
const char *ts_tms_json(const ts_tms *tms);
size_t ts_tms_json_len(const ts_tms *tms);
/* Bounding box of the whole set (from boundingBox, else the extent of the
 * lowest matrix). */
ts_bbox ts_tms_bbox(const ts_tms *tms);

size_t ts_tms_matrix_count(const ts_tms *tms);
/* Matrices are sorted by numeric id (as morecantile sorts them), which is the
 * order of every built-in document. */
const ts_tile_matrix *ts_tms_matrix_at(const ts_tms *tms, size_t i);
const ts_tile_matrix *ts_tms_matrix(const ts_tms *tms, int zoom);   /* by id; NULL if none */
int ts_tms_minzoom(const ts_tms *tms);
int ts_tms_maxzoom(const ts_tms *tms);

/* Bounds of tile (zoom, x, y) in the TMS CRS (east/north), honouring
 * cornerOfOrigin and variableMatrixWidths. -TS_ENOT_FOUND (recorded in ctx)
 * when zoom is not a matrix of the set or x/y are outside it. */
int ts_tms_xy_bounds(const ts_tms *tms, int zoom, long x, long y, ts_bbox *out, ts_ctx *ctx);

/* The tile containing CRS point (px, py) at zoom, clamped to the matrix; in a
 * coalesced row x is the first column of its group. Returns 0, -TS_ENOT_FOUND
 * when zoom is not a matrix, -TS_EBAD_REQUEST for a NaN coordinate. */
int ts_tms_tile_at(const ts_tms *tms, int zoom, double px, double py, long *x, long *y);

/* morecantile's zoom_for_res: the zoom whose cell size best fits `res`
 * (CRS units per pixel) between min_z and max_z. strategy: "auto"
 * (closest), "lower" or "upper"; anything else acts as "auto". min_z and
 * max_z are clamped to the set's ids (morecantile would invent matrices
 * past maxzoom, which no tile route can serve). */
int ts_tms_zoom_for_res(const ts_tms *tms, double res, int min_z, int max_z,
                        const char *strategy);

#endif
