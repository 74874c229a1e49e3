/*
 * OGC TileMatrixSet 2.0 documents (see ts_tms.h).
 *
 * The geometry follows morecantile (the library TiTiler uses) so that a tile
 * address means the same ground in tessera and in TiTiler: matrices are
 * sorted by their integer id, the axis order comes from orderedAxes when the
 * document has it and from the CRS otherwise, and coalesced rows
 * (variableMatrixWidths) snap x down to a multiple of the coalesce factor.
 *
 * A loaded set is immutable, so worker threads share the registry without
 * locks. GDAL is only used while loading, to validate the CRS and to learn
 * its axis order.
 */
#include "ts_tms.h"

#include <cpl_error.h>
#include <ogr_srs_api.h>

#include <json-c/json.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A TMS document is a few tens of KiB; anything far larger is a mistake
 * (or not a TMS) and should not be slurped into memory at start-up. */
#define TMS_MAX_FILE_BYTES (16u << 20)

struct ts_tms {
    char *id;
    char *title;
    char *uri;
    char *crs_uri;
    char *crs_input;
    char *json;
    size_t json_len;
    ts_bbox bbox;
    ts_tile_matrix *matrices; /* sorted by zoom */
    size_t nmatrices;
    ts_vmw *vmw; /* every matrix's variableMatrixWidths, back to back */
    size_t nvmw;
};

struct ts_tms_registry {
    ts_tms **items; /* sorted by id, owned */
    size_t n;
};

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void ts_tms_free(ts_tms *tms)
{
    if (!tms)
        return;
    free(tms->id);
    free(tms->title);
    free(tms->uri);
    free(tms->crs_uri);
    free(tms->crs_input);
    free(tms->json);
    free(tms->matrices);
    free(tms->vmw);
    free(tms);
}

/* ---- small json-c accessors, each recording one precise message ---- */

static bool is_number(json_object *o)
{
    return o && (json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double));
}

static int get_number(json_object *o, const char *where, const char *key, double *out, ts_ctx *ctx)
{
    if (!is_number(o))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s must be a number", where, key);
    double v = json_object_get_double(o);
    if (!isfinite(v))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s must be finite", where, key);
    *out = v;
    return 0;
}

/* Integers may be written 256 or 256.0; both mean the same count. */
static int get_long(json_object *o, const char *where, const char *key, long min, long max,
                    long *out, ts_ctx *ctx)
{
    long v;
    if (o && json_object_is_type(o, json_type_int)) {
        int64_t i = json_object_get_int64(o);
        if (i < min || i > max)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s must be between %ld and %ld", where,
                                key, min, max);
        v = (long)i;
    } else if (o && json_object_is_type(o, json_type_double)) {
        double d = json_object_get_double(o);
        if (!(d == floor(d)) || d < (double)min || d > (double)max)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "%s%s must be an integer between %ld and %ld", where, key, min,
                                max);
        v = (long)d;
    } else {
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s must be an integer", where, key);
    }
    *out = v;
    return 0;
}

static int get_point(json_object *o, const char *where, const char *key, double xy[2], ts_ctx *ctx)
{
    if (!o || !json_object_is_type(o, json_type_array) || json_object_array_length(o) != 2)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s must be an array of 2 numbers", where,
                            key);
    for (size_t i = 0; i < 2; i++) {
        if (get_number(json_object_array_get_idx(o, i), where, key, &xy[i], ctx) < 0)
            return -TS_EUNPROCESSABLE;
    }
    return 0;
}

/* Optional string member: NULL when absent, an error when not a string. */
static int get_opt_string(json_object *obj, const char *key, const char **out, ts_ctx *ctx)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "'%s' must be a string", key);
    *out = json_object_get_string(v);
    return 0;
}

/* ---- CRS ---- */

/*
 * Turn an OGC CRS URI or URN into the short AUTH:CODE form GDAL and PROJ
 * resolve from their databases:
 *   http://www.opengis.net/def/crs/EPSG/0/3857   -> EPSG:3857
 *   http://www.opengis.net/def/crs/OGC/1.3/CRS84 -> urn:ogc:def:crs:OGC:1.3:CRS84
 *   urn:ogc:def:crs:EPSG::2193                   -> EPSG:2193
 * Anything else (already AUTH:CODE, WKT, PROJJSON) is returned unchanged.
 * CRS84 keeps its URN: GDAL 3.6 drops the authority of "OGC:CRS84", and
 * without it PROJ picks another datum transformation (metres off at high
 * zooms) than for the identified CRS.
 */
static char *crs_short_form(const char *s)
{
    if (strcasecmp(s, "OGC:CRS84") == 0 || strcasestr(s, "/OGC/1.3/CRS84") ||
        strcasestr(s, ":OGC:1.3:CRS84"))
        return xstrdup("urn:ogc:def:crs:OGC:1.3:CRS84");
    static const char *const url_prefixes[] = {"http://www.opengis.net/def/crs/",
                                               "https://www.opengis.net/def/crs/"};
    for (size_t i = 0; i < 2; i++) {
        size_t pl = strlen(url_prefixes[i]);
        if (strncasecmp(s, url_prefixes[i], pl) != 0)
            continue;
        /* AUTH/VERSION/CODE */
        const char *auth = s + pl;
        const char *slash1 = strchr(auth, '/');
        const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
        const char *code = slash2 ? slash2 + 1 : NULL;
        if (!code || !*code || strchr(code, '/') || slash1 == auth)
            break;
        size_t al = (size_t)(slash1 - auth), cl = strlen(code);
        char *out = malloc(al + 1 + cl + 1);
        if (out)
            sprintf(out, "%.*s:%s", (int)al, auth, code);
        return out;
    }
    static const char urn[] = "urn:ogc:def:crs:";
    if (strncasecmp(s, urn, sizeof urn - 1) == 0) {
        /* AUTH:[VERSION]:CODE */
        const char *auth = s + sizeof urn - 1;
        const char *c1 = strchr(auth, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        const char *code = c2 ? c2 + 1 : NULL;
        if (code && *code && !strchr(code, ':') && c1 != auth) {
            size_t al = (size_t)(c1 - auth), cl = strlen(code);
            char *out = malloc(al + 1 + cl + 1);
            if (out)
                sprintf(out, "%.*s:%s", (int)al, auth, code);
            return out;
        }
    }
    return xstrdup(s);
}

/* Reads `crs` (a string, or an object with uri or wkt) into tms->crs_uri and
 * tms->crs_input. */
static int parse_crs(ts_tms *tms, json_object *crs, ts_ctx *ctx)
{
    const char *uri = NULL, *input = NULL;
    char *owned_input = NULL;
    if (json_object_is_type(crs, json_type_string)) {
        uri = json_object_get_string(crs);
    } else if (json_object_is_type(crs, json_type_object)) {
        json_object *v;
        if (json_object_object_get_ex(crs, "uri", &v)) {
            if (!json_object_is_type(v, json_type_string))
                return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "crs.uri must be a string");
            uri = json_object_get_string(v);
        } else if (json_object_object_get_ex(crs, "wkt", &v)) {
            /* TMS 2.0 allows WKT text or its PROJJSON encoding; GDAL reads both. */
            if (json_object_is_type(v, json_type_string))
                input = json_object_get_string(v);
            else if (json_object_is_type(v, json_type_object))
                input = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
            else
                return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                    "crs.wkt must be a WKT string or a PROJJSON object");
        } else if (json_object_object_get_ex(crs, "referenceSystem", &v)) {
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "crs.referenceSystem (ISO 19115) is not supported; use uri or wkt");
        } else {
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "crs object needs 'uri' or 'wkt'");
        }
    } else {
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "crs must be a URI string or an object with 'uri' or 'wkt'");
    }
    if (uri) {
        if (!uri[0])
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "crs is empty");
        owned_input = crs_short_form(uri);
        if (!owned_input)
            return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        input = owned_input;
    }
    tms->crs_input = owned_input ? owned_input : xstrdup(input);
    tms->crs_uri = xstrdup(uri ? uri : "");
    if (!tms->crs_input || !tms->crs_uri)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    return 0;
}

static bool name_is_northing(const char *name)
{
    return strcasecmp(name, "Y") == 0 || strcasecmp(name, "N") == 0 ||
           strncasecmp(name, "lat", 3) == 0 || strcasecmp(name, "northing") == 0 ||
           strcasecmp(name, "geodetic latitude") == 0;
}

/*
 * Resolves the CRS with GDAL (so a typo fails at start-up, not on the first
 * tile) and, when the document has no orderedAxes, tells whether its first
 * axis is northing/latitude.
 */
static int inspect_crs(ts_tms *tms, bool need_axes, bool *swapped, ts_ctx *ctx)
{
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (!srs)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    int rc = 0;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
    OGRErr err = OSRSetFromUserInput(srs, tms->crs_input);
    CPLPopErrorHandler();
    if (err != OGRERR_NONE) {
        const char *why = CPLGetLastErrorMsg();
        rc = ts_ctx_error(ctx, TS_EUNPROCESSABLE, "crs '%.200s' is not understood by GDAL%s%s",
                          tms->crs_uri[0] ? tms->crs_uri : tms->crs_input,
                          why && why[0] ? ": " : "", why ? why : "");
        goto done;
    }
    if (need_axes) {
        /* The EPSG tests cover EPSG codes whose database axis order is
         * lat/lon or northing/easting (4326, 3035, 2193, 5482, ...). */
        if (OSREPSGTreatsAsLatLong(srs) || OSREPSGTreatsAsNorthingEasting(srs)) {
            *swapped = true;
        } else {
            /* Not EPSG (WKT without authority, OGC:CRS84, ...): look at the
             * first axis itself. The name test comes first because polar
             * stereographic eastings point "south" or "north". */
            OGRAxisOrientation orient = OAO_Other;
            const char *name = OSRGetAxis(srs, NULL, 0, &orient);
            const char *auth = OSRGetAuthorityName(srs, NULL);
            if (auth && strcasecmp(auth, "EPSG") == 0)
                *swapped = false;
            else if (name && name_is_northing(name))
                *swapped = true;
            else
                *swapped = name && strcasestr(name, "east") == NULL &&
                           strcasestr(name, "lon") == NULL &&
                           (orient == OAO_North || orient == OAO_South);
        }
    }
    /* A WKT CRS has no URI in the document; give list clients the
     * authority URI when GDAL can name one. */
    if (!tms->crs_uri[0]) {
        const char *auth = OSRGetAuthorityName(srs, NULL);
        const char *code = OSRGetAuthorityCode(srs, NULL);
        if (auth && code) {
            char buf[256];
            snprintf(buf, sizeof buf, "http://www.opengis.net/def/crs/%s/0/%s", auth, code);
            char *u = xstrdup(buf);
            if (!u) {
                rc = ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
                goto done;
            }
            free(tms->crs_uri);
            tms->crs_uri = u;
        }
    }
done:
    OSRDestroySpatialReference(srs);
    return rc;
}

/* morecantile's rule: the first named axis decides. */
static int ordered_axes_swapped(json_object *axes, const char *where, bool *swapped, ts_ctx *ctx)
{
    if (!json_object_is_type(axes, json_type_array) || json_object_array_length(axes) != 2)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%sorderedAxes must be an array of 2 strings",
                            where);
    for (size_t i = 0; i < 2; i++) {
        json_object *a = json_object_array_get_idx(axes, i);
        if (!json_object_is_type(a, json_type_string) || json_object_get_string_len(a) == 0)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "%sorderedAxes must be an array of 2 non-empty strings", where);
    }
    const char *first = json_object_get_string(json_object_array_get_idx(axes, 0));
    *swapped =
        strcasecmp(first, "Y") == 0 || strcasecmp(first, "LAT") == 0 || strcasecmp(first, "N") == 0;
    return 0;
}

/* ---- tile matrices ---- */

static bool id_is_valid(const char *s)
{
    if (!s[0] || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
            return false;
    return true;
}

static int parse_matrix_id(const char *s, int *zoom)
{
    const char *p = s + (s[0] == '-');
    if (!*p)
        return -1;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno || v < INT_MIN || v > INT_MAX)
        return -1;
    *zoom = (int)v;
    return 0;
}

static int cmp_vmw(const void *a, const void *b)
{
    const ts_vmw *x = a, *y = b;
    return (x->min_row > y->min_row) - (x->min_row < y->min_row);
}

/* Parses variableMatrixWidths of m into out (room for n entries). */
static int parse_vmw(json_object *arr, ts_tile_matrix *m, ts_vmw *out, const char *where,
                     ts_ctx *ctx)
{
    size_t n = json_object_array_length(arr);
    if (n == 0)
        return 0; /* and out may be NULL: nothing to sort */
    for (size_t j = 0; j < n; j++) {
        json_object *v = json_object_array_get_idx(arr, j), *f;
        char w[160];
        snprintf(w, sizeof w, "%svariableMatrixWidths[%zu].", where, j);
        if (!json_object_is_type(v, json_type_object))
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s must be an object", w);
        long coalesce, min_row, max_row;
        if (get_long(json_object_object_get_ex(v, "coalesce", &f) ? f : NULL, w, "coalesce", 2,
                     INT_MAX, &coalesce, ctx) < 0 ||
            get_long(json_object_object_get_ex(v, "minTileRow", &f) ? f : NULL, w, "minTileRow", 0,
                     m->matrix_height - 1, &min_row, ctx) < 0 ||
            get_long(json_object_object_get_ex(v, "maxTileRow", &f) ? f : NULL, w, "maxTileRow",
                     min_row, m->matrix_height - 1, &max_row, ctx) < 0)
            return -TS_EUNPROCESSABLE;
        out[j] = (ts_vmw){.coalesce = (int)coalesce, .min_row = min_row, .max_row = max_row};
    }
    /* Overlapping ranges would make the coalesce factor of a row depend on
     * list order; no real grid needs that, so reject it. */
    qsort(out, n, sizeof *out, cmp_vmw);
    for (size_t j = 1; j < n; j++)
        if (out[j].min_row <= out[j - 1].max_row)
            return ts_ctx_error(
                ctx, TS_EUNPROCESSABLE, "%svariableMatrixWidths rows %ld-%ld and %ld-%ld overlap",
                where, out[j - 1].min_row, out[j - 1].max_row, out[j].min_row, out[j].max_row);
    return 0;
}

static int parse_matrix(json_object *o, size_t i, bool swapped, ts_tile_matrix *m, ts_vmw *vmw_slot,
                        size_t *nvmw, ts_ctx *ctx)
{
    char where[64];
    snprintf(where, sizeof where, "tileMatrices[%zu].", i);
    if (!json_object_is_type(o, json_type_object))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "tileMatrices[%zu] must be an object", i);
    json_object *v;
    if (json_object_object_get_ex(o, "topLeftCorner", &v))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "%stopLeftCorner is TMS 1.0; use pointOfOrigin (TMS 2.0)", where);
    static const char *const required[] = {
        "id",        "scaleDenominator", "cellSize",    "pointOfOrigin",
        "tileWidth", "tileHeight",       "matrixWidth", "matrixHeight"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
        if (!json_object_object_get_ex(o, required[k], &v))
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s%s is missing", where, required[k]);

    json_object_object_get_ex(o, "id", &v);
    const char *id = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (!id || strlen(id) >= sizeof m->id || parse_matrix_id(id, &m->zoom) < 0)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%sid must be an integer string", where);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(where, sizeof where, "tileMatrix '%s': ", id);

    long tw, th, mw, mh;
    double origin[2];
    json_object *f;
#define MEMBER(key) (json_object_object_get_ex(o, key, &f) ? f : NULL)
    if (get_number(MEMBER("scaleDenominator"), where, "scaleDenominator", &m->scale_denominator,
                   ctx) < 0 ||
        get_number(MEMBER("cellSize"), where, "cellSize", &m->cell_size, ctx) < 0 ||
        get_point(MEMBER("pointOfOrigin"), where, "pointOfOrigin", origin, ctx) < 0 ||
        get_long(MEMBER("tileWidth"), where, "tileWidth", 1, 1 << 16, &tw, ctx) < 0 ||
        get_long(MEMBER("tileHeight"), where, "tileHeight", 1, 1 << 16, &th, ctx) < 0 ||
        get_long(MEMBER("matrixWidth"), where, "matrixWidth", 1, 1L << 40, &mw, ctx) < 0 ||
        get_long(MEMBER("matrixHeight"), where, "matrixHeight", 1, 1L << 40, &mh, ctx) < 0)
        return -TS_EUNPROCESSABLE;
    if (m->scale_denominator <= 0 || m->cell_size <= 0)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "%sscaleDenominator and cellSize must be positive", where);
    m->tile_width = (int)tw;
    m->tile_height = (int)th;
    m->matrix_width = mw;
    m->matrix_height = mh;
    m->origin_x = swapped ? origin[1] : origin[0];
    m->origin_y = swapped ? origin[0] : origin[1];

    m->bottom_left = false;
    if ((v = MEMBER("cornerOfOrigin")) != NULL) {
        const char *c = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (strcmp(c, "bottomLeft") == 0)
            m->bottom_left = true;
        else if (strcmp(c, "topLeft") != 0)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "%scornerOfOrigin must be \"topLeft\" or \"bottomLeft\"", where);
    }
    m->vmw = NULL;
    m->nvmw = 0;
    *nvmw = 0;
    if ((v = MEMBER("variableMatrixWidths")) != NULL && !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_array))
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%svariableMatrixWidths must be an array",
                                where);
        if (parse_vmw(v, m, vmw_slot, where, ctx) < 0)
            return -TS_EUNPROCESSABLE;
        *nvmw = json_object_array_length(v);
    }
#undef MEMBER
    return 0;
}

static int cmp_matrix(const void *a, const void *b)
{
    const ts_tile_matrix *x = a, *y = b;
    return (x->zoom > y->zoom) - (x->zoom < y->zoom);
}

/* Coalesce factor of a row (1 outside every range). */
static long coalesce_of(const ts_tile_matrix *m, long row)
{
    for (size_t i = 0; i < m->nvmw; i++)
        if (row >= m->vmw[i].min_row && row <= m->vmw[i].max_row)
            return m->vmw[i].coalesce;
    return 1;
}

/* Extent of a whole matrix, the same rectangle morecantile's xy_bbox gives. */
static ts_bbox matrix_extent(const ts_tile_matrix *m)
{
    double w = m->cell_size * (double)m->tile_width * (double)m->matrix_width;
    double h = m->cell_size * (double)m->tile_height * (double)m->matrix_height;
    ts_bbox b;
    b.minx = m->origin_x;
    b.maxx = m->origin_x + w;
    if (m->bottom_left) {
        b.miny = m->origin_y;
        b.maxy = m->origin_y + h;
    } else {
        b.miny = m->origin_y - h;
        b.maxy = m->origin_y;
    }
    return b;
}

static int parse_bbox(ts_tms *tms, json_object *bb, bool swapped, ts_ctx *ctx)
{
    if (!json_object_is_type(bb, json_type_object))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "boundingBox must be an object");
    json_object *v;
    double ll[2], ur[2];
    if (get_point(json_object_object_get_ex(bb, "lowerLeft", &v) ? v : NULL, "boundingBox.",
                  "lowerLeft", ll, ctx) < 0 ||
        get_point(json_object_object_get_ex(bb, "upperRight", &v) ? v : NULL, "boundingBox.",
                  "upperRight", ur, ctx) < 0)
        return -TS_EUNPROCESSABLE;
    /* The box may state its own axis order; otherwise it shares the set's. */
    if (json_object_object_get_ex(bb, "orderedAxes", &v) &&
        ordered_axes_swapped(v, "boundingBox.", &swapped, ctx) < 0)
        return -TS_EUNPROCESSABLE;
    int a = swapped ? 1 : 0, b = 1 - a;
    tms->bbox =
        (ts_bbox){fmin(ll[a], ur[a]), fmin(ll[b], ur[b]), fmax(ll[a], ur[a]), fmax(ll[b], ur[b])};
    return 0;
}

static int parse_doc(ts_tms *tms, json_object *root, ts_ctx *ctx)
{
    json_object *v;
    if (!json_object_is_type(root, json_type_object))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "a TileMatrixSet must be a JSON object");
    if (json_object_object_get_ex(root, "supportedCRS", &v))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "supportedCRS is TMS 1.0; only TMS 2.0 documents are supported");

    const char *id, *title;
    if (get_opt_string(root, "id", &id, ctx) < 0 || get_opt_string(root, "title", &title, ctx) < 0)
        return -TS_EUNPROCESSABLE;
    if (!id)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "'id' is missing");
    if (!id_is_valid(id))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "id '%.80s' must be 1-64 characters of [A-Za-z0-9_-]", id);
    tms->id = xstrdup(id);
    tms->title = xstrdup(title ? title : "");
    if (!tms->id || !tms->title)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    const char *uri;
    if (get_opt_string(root, "uri", &uri, ctx) < 0)
        return -TS_EUNPROCESSABLE;
    if (!(tms->uri = xstrdup(uri ? uri : "")))
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");

    if (!json_object_object_get_ex(root, "crs", &v))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "'crs' is missing");
    if (parse_crs(tms, v, ctx) < 0)
        return -TS_EUNPROCESSABLE;

    bool swapped = false, have_axes = false;
    if (json_object_object_get_ex(root, "orderedAxes", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (ordered_axes_swapped(v, "", &swapped, ctx) < 0)
            return -TS_EUNPROCESSABLE;
        have_axes = true;
    }
    if (inspect_crs(tms, !have_axes, &swapped, ctx) < 0)
        return ctx->code ? -ctx->code : -TS_EUNPROCESSABLE;

    json_object *arr;
    if (!json_object_object_get_ex(root, "tileMatrices", &arr))
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "'tileMatrices' is missing");
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "tileMatrices must be a non-empty array");
    size_t n = json_object_array_length(arr);

    /* Size the shared variableMatrixWidths array first so the matrices can
     * point into it without reallocation moving it. */
    size_t total_vmw = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *w;
        if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "variableMatrixWidths",
                                      &w) &&
            json_object_is_type(w, json_type_array))
            total_vmw += json_object_array_length(w);
    }
    tms->matrices = calloc(n, sizeof *tms->matrices);
    tms->vmw = total_vmw ? calloc(total_vmw, sizeof *tms->vmw) : NULL;
    if (!tms->matrices || (total_vmw && !tms->vmw))
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    tms->nmatrices = n;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        /* No set-wide vmw array when no matrix has one (NULL + 0 is UB). */
        if (parse_matrix(json_object_array_get_idx(arr, i), i, swapped, &tms->matrices[i],
                         tms->vmw ? tms->vmw + used : NULL, &k, ctx) < 0)
            return -TS_EUNPROCESSABLE;
        if (k) {
            tms->matrices[i].vmw = tms->vmw + used;
            tms->matrices[i].nvmw = k;
        }
        used += k;
    }
    tms->nvmw = used;

    /* Zoom order is id order, as in morecantile; the pointers into tms->vmw
     * travel with their matrices. */
    qsort(tms->matrices, n, sizeof *tms->matrices, cmp_matrix);
    for (size_t i = 1; i < n; i++) {
        const ts_tile_matrix *a = &tms->matrices[i - 1], *b = &tms->matrices[i];
        if (a->zoom == b->zoom)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "tileMatrix id '%s' appears twice", b->id);
        /* zoom_for_res walks the ids expecting ever finer cells. */
        if (!(b->cell_size < a->cell_size))
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "cellSize must decrease as the tileMatrix id grows: '%s' has "
                                "%.17g, '%s' has %.17g",
                                a->id, a->cell_size, b->id, b->cell_size);
        if (!(b->scale_denominator < a->scale_denominator))
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "scaleDenominator must decrease as the tileMatrix id grows: "
                                "'%s' then '%s'",
                                a->id, b->id);
    }

    if (json_object_object_get_ex(root, "boundingBox", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (parse_bbox(tms, v, swapped, ctx) < 0)
            return -TS_EUNPROCESSABLE;
    } else {
        tms->bbox = matrix_extent(&tms->matrices[0]);
    }
    return 0;
}

int ts_tms_parse(const char *json, size_t len, ts_tms **out, ts_ctx *ctx)
{
    *out = NULL;
    if (len > INT_MAX)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "document too large");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t off = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        if (jerr == json_tokener_continue)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "invalid JSON: unexpected end of input");
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "invalid JSON at byte %zu: %s", off,
                            json_tokener_error_desc(jerr));
    }
    for (size_t i = off; i < len; i++) {
        if (!isspace((unsigned char)json[i]) && json[i] != '\0') {
            json_object_put(root);
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                                "invalid JSON: trailing characters at byte %zu", i);
        }
    }

    ts_tms *tms = calloc(1, sizeof *tms);
    if (!tms) {
        json_object_put(root);
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    }
    int rc = parse_doc(tms, root, ctx);
    if (rc == 0) {
        /* Served as-is by GET /tileMatrixSets/{id}; json-c keeps the original
         * spelling of every number, so nothing is rounded on the way. */
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        tms->json = s ? xstrdup(s) : NULL;
        if (!tms->json)
            rc = ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        else
            tms->json_len = strlen(tms->json);
    }
    json_object_put(root);
    if (rc < 0) {
        ts_tms_free(tms);
        return rc;
    }
    *out = tms;
    return 0;
}

/* ---- accessors ---- */

const char *ts_tms_id(const ts_tms *tms)
{
    return tms->id;
}

const char *ts_tms_title(const ts_tms *tms)
{
    return tms->title;
}

const char *ts_tms_uri(const ts_tms *tms)
{
    return tms->uri;
}

const char *ts_tms_crs_uri(const ts_tms *tms)
{
    return tms->crs_uri;
}

const char *ts_tms_crs_input(const ts_tms *tms)
{
    return tms->crs_input;
}

const char *ts_tms_json(const ts_tms *tms)
{
    return tms->json;
}

size_t ts_tms_json_len(const ts_tms *tms)
{
    return tms->json_len;
}

ts_bbox ts_tms_bbox(const ts_tms *tms)
{
    return tms->bbox;
}

size_t ts_tms_matrix_count(const ts_tms *tms)
{
    return tms->nmatrices;
}

const ts_tile_matrix *ts_tms_matrix_at(const ts_tms *tms, size_t i)
{
    return i < tms->nmatrices ? &tms->matrices[i] : NULL;
}

const ts_tile_matrix *ts_tms_matrix(const ts_tms *tms, int zoom)
{
    size_t lo = 0, hi = tms->nmatrices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int z = tms->matrices[mid].zoom;
        if (z == zoom)
            return &tms->matrices[mid];
        if (z < zoom)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int ts_tms_minzoom(const ts_tms *tms)
{
    return tms->matrices[0].zoom;
}

int ts_tms_maxzoom(const ts_tms *tms)
{
    return tms->matrices[tms->nmatrices - 1].zoom;
}

/* ---- geometry ---- */

int ts_tms_xy_bounds(const ts_tms *tms, int zoom, long x, long y, ts_bbox *out, ts_ctx *ctx)
{
    const ts_tile_matrix *m = ts_tms_matrix(tms, zoom);
    if (!m)
        return ts_ctx_error(ctx, TS_ENOT_FOUND,
                            "TileMatrix %d does not exist in TileMatrixSet %s (ids %d to %d)", zoom,
                            tms->id, ts_tms_minzoom(tms), ts_tms_maxzoom(tms));
    if (x < 0 || x >= m->matrix_width || y < 0 || y >= m->matrix_height)
        return ts_ctx_error(ctx, TS_ENOT_FOUND,
                            "tile %d/%ld/%ld is outside TileMatrix %s of %s: x must be in [0, "
                            "%ld) and y in [0, %ld)",
                            zoom, x, y, m->id, tms->id, m->matrix_width, m->matrix_height);
    /* A coalesced row has one tile per cf columns; every x of the group
     * names that tile (morecantile's floor(x / cf) * cf). The products are
     * written in morecantile's order so both give the same last bit. */
    long cf = coalesce_of(m, y);
    double col = (double)(x / cf);
    out->minx = m->origin_x + col * m->cell_size * (double)cf * (double)m->tile_width;
    out->maxx = m->origin_x + (col + 1) * m->cell_size * (double)cf * (double)m->tile_width;
    if (m->bottom_left) {
        /* Rows count northwards from the bottom edge. */
        out->miny = m->origin_y + (double)y * m->cell_size * (double)m->tile_height;
        out->maxy = m->origin_y + (double)(y + 1) * m->cell_size * (double)m->tile_height;
    } else {
        out->maxy = m->origin_y - (double)y * m->cell_size * (double)m->tile_height;
        out->miny = m->origin_y - (double)(y + 1) * m->cell_size * (double)m->tile_height;
    }
    return 0;
}

/* floor(v) clamped to [0, n-1]; infinities clamp like any far-away value. */
static long clamp_index(double v, long n)
{
    double f = floor(v);
    if (!(f > 0))
        return 0;
    if (f >= (double)(n - 1))
        return n - 1;
    return (long)f;
}

int ts_tms_tile_at(const ts_tms *tms, int zoom, double px, double py, long *x, long *y)
{
    const ts_tile_matrix *m = ts_tms_matrix(tms, zoom);
    if (!m)
        return -TS_ENOT_FOUND;
    if (isnan(px) || isnan(py))
        return -TS_EBAD_REQUEST;
    double tw = m->cell_size * (double)m->tile_width;
    double th = m->cell_size * (double)m->tile_height;
    long tx = clamp_index((px - m->origin_x) / tw, m->matrix_width);
    long ty = clamp_index(m->bottom_left ? (py - m->origin_y) / th : (m->origin_y - py) / th,
                          m->matrix_height);
    long cf = coalesce_of(m, ty);
    *x = tx - tx % cf;
    *y = ty;
    return 0;
}

/*
 * morecantile's TileMatrixSet.zoom_for_res, itself GDAL's COG driver logic:
 * walk from coarse to fine and stop at the first matrix whose cell is not
 * larger than res (with a 1e-8 relative tolerance), then let the strategy
 * choose between that matrix and the one before it.
 *
 * Two deliberate differences, both only outside the set's range: min_z and
 * max_z are clamped to the set (morecantile extrapolates matrices deeper than
 * maxzoom, which this server could not serve), and ids missing from a
 * non-contiguous custom set are skipped. An unknown strategy acts as "auto";
 * callers validate the parameter.
 */
int ts_tms_zoom_for_res(const ts_tms *tms, double res, int min_z, int max_z, const char *strategy)
{
    const ts_tile_matrix *ms = tms->matrices;
    size_t n = tms->nmatrices;
    if (min_z < ms[0].zoom)
        min_z = ms[0].zoom;
    if (max_z > ms[n - 1].zoom)
        max_z = ms[n - 1].zoom;
    size_t lo = 0;
    while (lo < n && ms[lo].zoom < min_z)
        lo++;
    size_t hi = n;
    while (hi > 0 && ms[hi - 1].zoom > max_z)
        hi--;
    if (lo >= hi) /* empty range: the nearest bound that exists */
        return lo < n ? ms[lo].zoom : ms[n - 1].zoom;
    hi--; /* inclusive */

    size_t i = lo;
    for (;; i++) {
        double mr = ms[i].cell_size;
        if (res > mr || fabs(res - mr) / mr <= 1e-8 || i == hi)
            break;
    }
    double mr = ms[i].cell_size;
    /* morecantile tests `zoom_level > 0`, not `> min_z`: sets whose ids go
     * negative (CDB1GlobalGrid) keep the matched level at ids <= 0. */
    if (ms[i].zoom > 0 && fabs(res - mr) / mr > 1e-8) {
        size_t prev = i > lo ? i - 1 : lo;
        if (strategy && strcasecmp(strategy, "lower") == 0)
            i = prev;
        else if (strategy && strcasecmp(strategy, "upper") == 0)
            ; /* the finer matrix found by the walk */
        else if (ms[prev].cell_size / res < res / mr)
            i = prev;
    }
    return ms[i].zoom;
}

/* ---- registry ---- */

void ts_tms_registry_free(ts_tms_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        ts_tms_free(reg->items[i]);
    free(reg->items);
    free(reg);
}

size_t ts_tms_registry_count(const ts_tms_registry *reg)
{
    return reg ? reg->n : 0;
}

const ts_tms *ts_tms_registry_at(const ts_tms_registry *reg, size_t i)
{
    return reg && i < reg->n ? reg->items[i] : NULL;
}

const ts_tms *ts_tms_registry_get(const ts_tms_registry *reg, const char *id)
{
    if (!reg || !id)
        return NULL;
    size_t lo = 0, hi = reg->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->items[mid]->id, id);
        if (c == 0)
            return reg->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int read_file(const char *path, char **data, size_t *len, ts_ctx *ctx)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ts_ctx_error(ctx, TS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > TMS_MAX_FILE_BYTES) {
        fclose(f);
        return ts_ctx_error(ctx, TS_EIO, "%s: not a regular file of at most %u bytes", path,
                            TMS_MAX_FILE_BYTES);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    }
    size_t got = fread(buf, 1, n, f);
    int ioerr = ferror(f);
    fclose(f);
    if (got != n || ioerr) {
        free(buf);
        return ts_ctx_error(ctx, TS_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int json_name(const struct dirent *d)
{
    size_t l = strlen(d->d_name);
    return d->d_name[0] != '.' && l > 5 && strcasecmp(d->d_name + l - 5, ".json") == 0;
}

static int cmp_tms_ptr(const void *a, const void *b)
{
    const ts_tms *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* The file each loaded set came from, for error messages about duplicates. */
typedef struct origin {
    char path[PATH_MAX];
    bool custom;
} origin;

static int load_dir(ts_tms_registry *reg, origin **origins, size_t *cap, const char *dir,
                    bool custom, ts_ctx *ctx)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, json_name, alphasort);
    if (n < 0)
        return ts_ctx_error(ctx, TS_EIO, "TileMatrixSet folder %s: %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        char *data = NULL;
        size_t len = 0;
        if ((rc = read_file(path, &data, &len, ctx)) < 0)
            break;
        ts_ctx local;
        ts_ctx_init(&local);
        ts_tms *tms = NULL;
        rc = ts_tms_parse(data, len, &tms, &local);
        free(data);
        if (rc < 0) {
            rc = ts_ctx_error(ctx, (ts_err)local.code, "%s: %s", path, local.detail);
            break;
        }
        size_t k = 0;
        while (k < reg->n && strcmp(reg->items[k]->id, tms->id) != 0)
            k++;
        if (k < reg->n) {
            if (!custom || (*origins)[k].custom) {
                rc =
                    ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s and %s both define TileMatrixSet '%s'",
                                 (*origins)[k].path, path, tms->id);
                ts_tms_free(tms);
                break;
            }
            ts_log(TS_LOG_INFO, "TileMatrixSet %s from %s replaces the built-in one", tms->id,
                   path);
            ts_tms_free(reg->items[k]);
            reg->items[k] = tms;
        } else {
            if (reg->n == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                ts_tms **items = realloc(reg->items, nc * sizeof *items);
                if (items)
                    reg->items = items;
                origin *o = items ? realloc(*origins, nc * sizeof *o) : NULL;
                if (!items || !o) {
                    ts_tms_free(tms);
                    rc = ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
                    break;
                }
                *origins = o;
                *cap = nc;
            }
            reg->items[reg->n] = tms;
            k = reg->n++;
        }
        snprintf((*origins)[k].path, sizeof(*origins)[k].path, "%s", path);
        (*origins)[k].custom = custom;
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

int ts_tms_registry_load(ts_tms_registry **out, const char *builtin_dir, const char *extra_dir,
                         ts_ctx *ctx)
{
    *out = NULL;
    ts_tms_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    origin *origins = NULL;
    size_t cap = 0;
    int rc = load_dir(reg, &origins, &cap, builtin_dir, false, ctx);
    if (rc == 0 && extra_dir && extra_dir[0])
        rc = load_dir(reg, &origins, &cap, extra_dir, true, ctx);
    free(origins);
    if (rc == 0 && reg->n == 0)
        rc = ts_ctx_error(ctx, TS_EUNPROCESSABLE, "no TileMatrixSet (*.json) found in %s%s%s",
                          builtin_dir, extra_dir && extra_dir[0] ? " or " : "",
                          extra_dir && extra_dir[0] ? extra_dir : "");
    if (rc < 0) {
        ts_tms_registry_free(reg);
        return rc;
    }
    qsort(reg->items, reg->n, sizeof *reg->items, cmp_tms_ptr);
    *out = reg;
    return 0;
}
