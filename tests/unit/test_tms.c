/* TileMatrixSet loading, validation and tile geometry. */
#include "ts_api.h"
#include "ts_test.h"
#include "ts_tms.h"

#include <json-c/json.h>
#include <ogr_srs_api.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tms_dir[4096];

static ts_tms_registry *load_builtin(void)
{
    const char *root = getenv("TS_SOURCE_ROOT");
    snprintf(tms_dir, sizeof tms_dir, "%s/tms", root ? root : ".");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_tms_registry *reg = NULL;
    if (ts_tms_registry_load(&reg, tms_dir, NULL, &ctx) < 0)
        fprintf(stderr, "  registry: %s\n", ctx.detail);
    return reg;
}

/* Parses doc; returns NULL and copies the error message to err on failure. */
static ts_tms *parse(const char *doc, char *err, size_t errlen)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_tms *tms = NULL;
    int rc = ts_tms_parse(doc, strlen(doc), &tms, &ctx);
    if (err)
        snprintf(err, errlen, "%s", ctx.detail);
    if (rc < 0 && ctx.status != 422)
        snprintf(err, errlen, "unexpected status %d", ctx.status);
    return rc < 0 ? NULL : tms;
}

#define BOUNDS_EQ(b, x0, y0, x1, y1, eps)                                                          \
    do {                                                                                           \
        CHECK_NEAR((b).minx, (x0), (eps));                                                         \
        CHECK_NEAR((b).miny, (y0), (eps));                                                         \
        CHECK_NEAR((b).maxx, (x1), (eps));                                                         \
        CHECK_NEAR((b).maxy, (y1), (eps));                                                         \
    } while (0)

static void loads_all_builtins_sorted(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    static const char *const ids[] = {
        "CDB1GlobalGrid",           "CanadianNAD83_LCC",
        "EuropeanETRS89_LAEAQuad",  "GNOSISGlobalGrid",
        "LINZAntarticaMapTilegrid", "NZTM2000Quad",
        "UPSAntarcticWGS84Quad",    "UPSArcticWGS84Quad",
        "UTM31WGS84Quad",           "WGS1984Quad",
        "WebMercatorQuad",          "WorldCRS84Quad",
        "WorldMercatorWGS84Quad",
    };
    size_t n = ts_tms_registry_count(reg);
    if (n != 13)
        ts_tms_registry_free(reg);
    CHECK_INT(n, 13);
    for (size_t i = 0; i < n; i++) {
        const ts_tms *t = ts_tms_registry_at(reg, i);
        if (strcmp(ts_tms_id(t), ids[i]) != 0) {
            fprintf(stderr, "  #%zu is %s, expected %s\n", i, ts_tms_id(t), ids[i]);
            ts_tms_registry_free(reg);
            CHECK(0);
        }
        if (ts_tms_registry_get(reg, ids[i]) != t) {
            ts_tms_registry_free(reg);
            CHECK(0);
        }
    }
    CHECK(ts_tms_registry_at(reg, 13) == NULL);
    ts_tms_registry_free(reg);
}

/* Every CRS input string must resolve in GDAL, to the EPSG code the
 * document names (CRS84 has none: it must stay lon/lat WGS 84). */
static void crs_inputs_resolve_in_gdal(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    int bad = 0;
    for (size_t i = 0; i < ts_tms_registry_count(reg); i++) {
        const ts_tms *t = ts_tms_registry_at(reg, i);
        const char *in = ts_tms_crs_input(t), *uri = ts_tms_crs_uri(t);
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        if (OSRSetFromUserInput(srs, in) != OGRERR_NONE) {
            fprintf(stderr, "  %s: GDAL rejects '%s'\n", ts_tms_id(t), in);
            bad++;
        } else {
            const char *slash = strrchr(uri, '/'), *colon = strrchr(uri, ':');
            const char *code = slash && (!colon || slash > colon) ? slash + 1 : colon + 1;
            const char *got = OSRGetAuthorityCode(srs, NULL);
            if (strcmp(code, "CRS84") == 0) {
                if (!OSRIsGeographic(srs) || strcmp(in, "urn:ogc:def:crs:OGC:1.3:CRS84") != 0) {
                    fprintf(stderr, "  %s: '%s' is not CRS84\n", ts_tms_id(t), in);
                    bad++;
                }
            } else if (!got || strcmp(got, code) != 0 || strncmp(in, "EPSG:", 5) != 0) {
                fprintf(stderr, "  %s: '%s' resolves to %s, expected %s\n", ts_tms_id(t), in,
                        got ? got : "(none)", code);
                bad++;
            }
        }
        OSRDestroySpatialReference(srs);
    }
    ts_tms_registry_free(reg);
    CHECK_INT(bad, 0);
}

static void unknown_ids_are_null(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *a = ts_tms_registry_get(reg, "NoSuchGrid");
    const ts_tms *b = ts_tms_registry_get(reg, "webmercatorquad"); /* ids are case-sensitive */
    const ts_tms *c = ts_tms_registry_get(reg, "");
    const ts_tms *d = ts_tms_registry_get(reg, NULL);
    ts_tms_registry_free(reg);
    CHECK(!a && !b && !c && !d);
}

static void web_mercator_bounds(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *t = ts_tms_registry_get(reg, "WebMercatorQuad");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox b0, b1, b4;
    int r0 = ts_tms_xy_bounds(t, 0, 0, 0, &b0, &ctx);
    int r1 = ts_tms_xy_bounds(t, 1, 1, 0, &b1, &ctx);
    int r4 = ts_tms_xy_bounds(t, 4, 10, 10, &b4, &ctx);
    const char *crs = ts_tms_crs_input(t);
    int minz = ts_tms_minzoom(t), maxz = ts_tms_maxzoom(t);
    ts_bbox all = ts_tms_bbox(t);
    ts_tms_registry_free(reg);
    (void)crs;
    CHECK_INT(r0, 0);
    CHECK_INT(r1, 0);
    CHECK_INT(r4, 0);
    const double e = 20037508.342789244;
    BOUNDS_EQ(b0, -e, -e, e, e, 1e-6);
    BOUNDS_EQ(b1, 0, 0, e, e, 1e-6);
    /* morecantile's documented example for tile 4/10/10. */
    BOUNDS_EQ(b4, 5009377.085697308, -7514065.628545959, 7514065.628545959, -5009377.085697308,
              1e-6);
    BOUNDS_EQ(all, -e, -e, e, e, 1e-6);
    CHECK_INT(minz, 0);
    CHECK_INT(maxz, 24);
}

static void crs84_and_wgs1984_axis_order(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *crs84 = ts_tms_registry_get(reg, "WorldCRS84Quad");
    const ts_tms *wgs = ts_tms_registry_get(reg, "WGS1984Quad");
    const ts_tile_matrix *m84 = ts_tms_matrix(crs84, 0), *mw = ts_tms_matrix(wgs, 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox a, b;
    int ra = ts_tms_xy_bounds(crs84, 0, 1, 0, &a, &ctx);
    int rb = ts_tms_xy_bounds(wgs, 0, 1, 0, &b, &ctx);
    char in84[64], inw[64];
    snprintf(in84, sizeof in84, "%s", ts_tms_crs_input(crs84));
    snprintf(inw, sizeof inw, "%s", ts_tms_crs_input(wgs));
    ts_tile_matrix c84 = *m84, cw = *mw;
    ts_tms_registry_free(reg);
    CHECK_INT(c84.matrix_width, 2);
    CHECK_INT(c84.matrix_height, 1);
    CHECK_NEAR(c84.origin_x, -180, 0);
    CHECK_NEAR(c84.origin_y, 90, 0);
    /* WGS1984Quad writes its origin [90, -180] (lat, lon): swapped on load. */
    CHECK_NEAR(cw.origin_x, -180, 0);
    CHECK_NEAR(cw.origin_y, 90, 0);
    CHECK_INT(ra, 0);
    CHECK_INT(rb, 0);
    BOUNDS_EQ(a, 0, -90, 180, 90, 1e-12);
    BOUNDS_EQ(b, 0, -90, 180, 90, 1e-12);
    CHECK_STR(in84, "urn:ogc:def:crs:OGC:1.3:CRS84");
    CHECK_STR(inw, "EPSG:4326");
}

/* Every CRS input must stay identified after import: an anonymous CRS makes
 * PROJ choose a different datum transformation (GDAL 3.6 anonymises
 * "OGC:CRS84"), which moves high-zoom tiles by metres. */
static void crs_inputs_keep_their_authority(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    int bad = 0;
    for (size_t i = 0; i < ts_tms_registry_count(reg); i++) {
        const ts_tms *t = ts_tms_registry_at(reg, i);
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        OSRSetFromUserInput(srs, ts_tms_crs_input(t));
        if (!OSRGetAuthorityName(srs, NULL) || !OSRGetAuthorityCode(srs, NULL)) {
            fprintf(stderr, "  %s: '%s' has no authority after import\n", ts_tms_id(t),
                    ts_tms_crs_input(t));
            bad++;
        }
        OSRDestroySpatialReference(srs);
    }
    ts_tms_registry_free(reg);
    CHECK_INT(bad, 0);
}

static void northing_first_projected_sets(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *laea = ts_tms_registry_get(reg, "EuropeanETRS89_LAEAQuad");
    const ts_tms *nz = ts_tms_registry_get(reg, "NZTM2000Quad");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox a, b;
    int ra = ts_tms_xy_bounds(laea, 0, 0, 0, &a, &ctx);
    int rb = ts_tms_xy_bounds(nz, 0, 0, 0, &b, &ctx);
    char nzin[32];
    snprintf(nzin, sizeof nzin, "%s", ts_tms_crs_input(nz));
    ts_tms_registry_free(reg);
    CHECK_INT(ra, 0);
    CHECK_INT(rb, 0);
    /* pointOfOrigin [5500000, 2000000] is (northing, easting). */
    BOUNDS_EQ(a, 2000000, 1000000, 6500000, 5500000, 1e-6);
    /* [10438190.1652, -3260586.7284], 256 px of 39135.75848201011. */
    const double span = 256 * 39135.75848201011;
    BOUNDS_EQ(b, -3260586.7284, 10438190.1652 - span, -3260586.7284 + span, 10438190.1652, 1e-6);
    CHECK_STR(nzin, "EPSG:2193");
}

static void non_zero_based_ids(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *utm = ts_tms_registry_get(reg, "UTM31WGS84Quad");
    const ts_tms *cdb = ts_tms_registry_get(reg, "CDB1GlobalGrid");
    int umin = ts_tms_minzoom(utm), umax = ts_tms_maxzoom(utm);
    int cmin = ts_tms_minzoom(cdb), cmax = ts_tms_maxzoom(cdb);
    const ts_tile_matrix *u0 = ts_tms_matrix(utm, 0), *u1 = ts_tms_matrix(utm, 1);
    const ts_tile_matrix *cm = ts_tms_matrix(cdb, -10);
    long cmw = cm ? cm->matrix_width : -1;
    const char *first_id = ts_tms_matrix_at(cdb, 0)->id;
    int first_is_m10 = strcmp(first_id, "-10") == 0;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox b;
    int r = ts_tms_xy_bounds(utm, 0, 0, 0, &b, &ctx);
    ts_tms_registry_free(reg);
    CHECK_INT(umin, 1);
    CHECK_INT(umax, 24);
    CHECK_INT(cmin, -10);
    CHECK_INT(cmax, 21);
    CHECK(u0 == NULL);
    CHECK(u1 != NULL);
    CHECK_INT(cmw, 360);
    CHECK(first_is_m10);
    CHECK_INT(r, -TS_ENOT_FOUND);
    CHECK_INT(ctx.status, 404);
    CHECK(strstr(ctx.detail, "TileMatrix 0") && strstr(ctx.detail, "UTM31WGS84Quad"));
}

static void coalesced_rows(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *g = ts_tms_registry_get(reg, "GNOSISGlobalGrid");
    const ts_tms *cdb = ts_tms_registry_get(reg, "CDB1GlobalGrid");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox polar, polar_same, mid, south, c0, c13, deep;
    int rc = 0;
    /* GNOSIS z2 is 16x8 tiles of 22.5 degrees; rows 0 and 7 coalesce 4. */
    rc |= ts_tms_xy_bounds(g, 2, 5, 0, &polar, &ctx);
    rc |= ts_tms_xy_bounds(g, 2, 4, 0, &polar_same, &ctx);
    rc |= ts_tms_xy_bounds(g, 2, 5, 3, &mid, &ctx);
    rc |= ts_tms_xy_bounds(g, 2, 15, 7, &south, &ctx);
    /* CDB1 -10: 1-degree tiles, row 0 coalesces 12. */
    rc |= ts_tms_xy_bounds(cdb, -10, 5, 0, &c0, &ctx);
    rc |= ts_tms_xy_bounds(cdb, -10, 13, 0, &c13, &ctx);
    /* Deepest GNOSIS row next to the north pole: 2^28 columns coalesce into
     * one tile, a quarter of the world (not exactly 90 degrees: the
     * document rounds this cellSize to 1.3097e-09). */
    rc |= ts_tms_xy_bounds(g, 28, 1073741823, 0, &deep, &ctx);
    long tx = -1, ty = -1;
    int rt = ts_tms_tile_at(g, 2, -10.0, 80.0, &tx, &ty);
    ts_tms_registry_free(reg);
    CHECK_INT(rc, 0);
    BOUNDS_EQ(polar, -90, 67.5, 0, 90, 1e-12);
    BOUNDS_EQ(polar_same, -90, 67.5, 0, 90, 1e-12);
    BOUNDS_EQ(mid, -67.5, 0, -45, 22.5, 1e-12);
    BOUNDS_EQ(south, 90, -90, 180, -67.5, 1e-12);
    BOUNDS_EQ(c0, -180, 89, -168, 90, 1e-12);
    BOUNDS_EQ(c13, -168, 89, -156, 90, 1e-12);
    const double q = 1.3097e-09 * 268435456.0 * 256;
    BOUNDS_EQ(deep, -180 + 3 * q, 90 - 256 * 1.3097e-09, -180 + 4 * q, 90, 1e-9);
    CHECK_INT(rt, 0);
    CHECK_INT(tx, 4); /* column 7 snaps to its group's first column */
    CHECK_INT(ty, 0);
}

static void out_of_range_tiles_are_404(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *t = ts_tms_registry_get(reg, "WebMercatorQuad");
    struct {
        int z;
        long x, y;
    } bad[] = {{1, 2, 0}, {1, 0, 2}, {1, -1, 0}, {1, 0, -1}, {25, 0, 0}, {-1, 0, 0}};
    int fails = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_bbox b;
        int rc = ts_tms_xy_bounds(t, bad[i].z, bad[i].x, bad[i].y, &b, &ctx);
        if (rc != -TS_ENOT_FOUND || ctx.status != 404 || !ctx.detail[0]) {
            fprintf(stderr, "  %d/%ld/%ld gave %d\n", bad[i].z, bad[i].x, bad[i].y, rc);
            fails++;
        }
    }
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox b;
    ts_tms_xy_bounds(t, 1, 2, 0, &b, &ctx);
    ts_tms_registry_free(reg);
    CHECK_INT(fails, 0);
    CHECK(strstr(ctx.detail, "[0, 2)") != NULL);
}

static void tile_at_clamps(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *t = ts_tms_registry_get(reg, "WebMercatorQuad");
    long x[5], y[5];
    int rc = 0;
    rc |= ts_tms_tile_at(t, 1, 1.0, 1.0, &x[0], &y[0]);
    rc |= ts_tms_tile_at(t, 1, -1.0, -1.0, &x[1], &y[1]);
    rc |= ts_tms_tile_at(t, 4, 1e12, -1e12, &x[2], &y[2]);
    rc |= ts_tms_tile_at(t, 4, -INFINITY, INFINITY, &x[3], &y[3]);
    rc |= ts_tms_tile_at(t, 4, 17734308.078276414, -5160979.444049781, &x[4], &y[4]);
    int missing = ts_tms_tile_at(t, 30, 0, 0, &x[0], &y[0]);
    int nan = ts_tms_tile_at(t, 1, NAN, 0, &x[0], &y[0]);
    ts_tms_registry_free(reg);
    CHECK_INT(rc, 0);
    CHECK_INT(missing, -TS_ENOT_FOUND);
    CHECK_INT(nan, -TS_EBAD_REQUEST);
    CHECK(x[1] == 0 && y[1] == 1);
    CHECK(x[2] == 15 && y[2] == 15);
    CHECK(x[3] == 0 && y[3] == 0);
    CHECK(x[4] == 15 && y[4] == 10); /* morecantile's tms.tile(159.31, -42, 4) */
}

static void zoom_for_res_matches_morecantile(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *t = ts_tms_registry_get(reg, "WebMercatorQuad");
    const ts_tms *cdb = ts_tms_registry_get(reg, "CDB1GlobalGrid");
    const ts_tms *utm = ts_tms_registry_get(reg, "UTM31WGS84Quad");
    int z[12];
    /* z10 is 152.87 m, z11 76.44 m: 100 m is closer (by ratio) to z11. */
    z[0] = ts_tms_zoom_for_res(t, 100.0, 0, 24, "auto");
    z[1] = ts_tms_zoom_for_res(t, 100.0, 0, 24, "lower");
    z[2] = ts_tms_zoom_for_res(t, 100.0, 0, 24, "upper");
    /* 140 m is closer to z10. */
    z[3] = ts_tms_zoom_for_res(t, 140.0, 0, 24, "auto");
    /* Exact match (within 1e-8) never moves. */
    z[4] = ts_tms_zoom_for_res(t, 152.8740565703525 * (1 + 1e-9), 0, 24, "lower");
    /* Coarser than z0, finer than z24, and a clamped max_z. */
    z[5] = ts_tms_zoom_for_res(t, 1e9, 0, 24, "auto");
    z[6] = ts_tms_zoom_for_res(t, 1e-6, 0, 24, "auto");
    z[7] = ts_tms_zoom_for_res(t, 1e-6, 0, 12, "auto");
    z[8] = ts_tms_zoom_for_res(t, 1e-6, 0, 99, "auto");
    /* CDB1: 0.04 falls between -6 (0.0625) and -5 (0.03125); "lower" would
     * pick -6, but morecantile never adjusts (its test is
     * zoom_level > 0, not > min_z). */
    z[9] = ts_tms_zoom_for_res(cdb, 0.04, -10, 21, "lower");
    z[10] = ts_tms_zoom_for_res(utm, 1e9, 1, 24, "auto");
    z[11] = ts_tms_zoom_for_res(t, 100.0, 0, 24, "bogus");
    ts_tms_registry_free(reg);
    CHECK_INT(z[0], 11);
    CHECK_INT(z[1], 10);
    CHECK_INT(z[2], 11);
    CHECK_INT(z[3], 10);
    CHECK_INT(z[4], 10);
    CHECK_INT(z[5], 0);
    CHECK_INT(z[6], 24);
    CHECK_INT(z[7], 12);
    CHECK_INT(z[8], 24);
    CHECK_INT(z[9], -5);
    CHECK_INT(z[10], 1);
    CHECK_INT(z[11], 11);
}

/* ---- documents built by hand ---- */

#define MATRIX(id, cs, extra)                                                                      \
    "{\"id\":\"" id "\",\"scaleDenominator\":" #cs "e3,\"cellSize\":" #cs                          \
    ",\"pointOfOrigin\":[0,0],\"tileWidth\":256,\"tileHeight\":256,\"matrixWidth\":2,"             \
    "\"matrixHeight\":2" extra "}"

static void rejects_invalid_documents(void)
{
    static const struct {
        const char *doc;
        const char *msg;
    } cases[] = {
        {"{\"id\":\"X\",", "invalid JSON"},
        {"{\"id\":\"X\"} trailing", "trailing"},
        {"[1,2]", "JSON object"},
        {"{\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("0", 10, "") "]}", "'id' is missing"},
        {"{\"id\":\"X\",\"tileMatrices\":[" MATRIX("0", 10, "") "]}", "'crs' is missing"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\"}", "'tileMatrices' is missing"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[]}", "non-empty"},
        {"{\"id\":\"X Y\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("0", 10, "") "]}",
         "id 'X Y'"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:999999\",\"tileMatrices\":[" MATRIX("0", 10, "") "]}",
         "not understood by GDAL"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("0", 10, "") "," MATRIX(
             "1", 10, "") "]}",
         "cellSize must decrease"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("0", 10, "") "," MATRIX(
             "1", 20, "") "]}",
         "cellSize must decrease"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("0", 10, "") "," MATRIX(
             "0", 5, "") "]}",
         "appears twice"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX("a", 10, "") "]}",
         "integer string"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX(
             "0", 10, ",\"cornerOfOrigin\":\"center\"") "]}",
         "cornerOfOrigin"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX(
             "0", 10,
             ",\"variableMatrixWidths\":[{\"coalesce\":1,\"minTileRow\":0,"
             "\"maxTileRow\":0}]") "]}",
         "coalesce"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[" MATRIX(
             "0", 10,
             ",\"variableMatrixWidths\":[{\"coalesce\":2,\"minTileRow\":0,"
             "\"maxTileRow\":2}]") "]}",
         "maxTileRow"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\",\"cellSize\":1,"
         "\"pointOfOrigin\":[0,0],\"tileWidth\":256,\"tileHeight\":256,\"matrixWidth\":1,"
         "\"matrixHeight\":1}]}",
         "scaleDenominator is missing"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\",\"cellSize\":1,"
         "\"scaleDenominator\":1,\"pointOfOrigin\":[0],\"tileWidth\":256,\"tileHeight\":256,"
         "\"matrixWidth\":1,\"matrixHeight\":1}]}",
         "pointOfOrigin must be an array of 2"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\",\"cellSize\":1,"
         "\"scaleDenominator\":1,\"pointOfOrigin\":[0,0],\"tileWidth\":0,\"tileHeight\":256,"
         "\"matrixWidth\":1,\"matrixHeight\":1}]}",
         "tileWidth must be"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\",\"cellSize\":1,"
         "\"scaleDenominator\":1,\"pointOfOrigin\":[0,0],\"tileWidth\":2.5,\"tileHeight\":256,"
         "\"matrixWidth\":1,\"matrixHeight\":1}]}",
         "tileWidth must be an integer"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\",\"cellSize\":\"1\","
         "\"scaleDenominator\":1,\"pointOfOrigin\":[0,0],\"tileWidth\":256,\"tileHeight\":256,"
         "\"matrixWidth\":1,\"matrixHeight\":1}]}",
         "cellSize must be a number"},
        {"{\"id\":\"X\",\"crs\":\"EPSG:3857\",\"orderedAxes\":[\"X\"],\"tileMatrices\":[" MATRIX(
             "0", 10, "") "]}",
         "orderedAxes"},
        {"{\"id\":\"X\",\"crs\":{\"referenceSystem\":{}},\"tileMatrices\":[" MATRIX("0", 10,
                                                                                    "") "]}",
         "referenceSystem"},
        {"{\"identifier\":\"X\",\"supportedCRS\":\"EPSG:3857\",\"tileMatrix\":[]}", "TMS 1.0"},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[TS_DETAIL_MAX];
        ts_tms *t = parse(cases[i].doc, err, sizeof err);
        if (t || !strstr(err, cases[i].msg)) {
            fprintf(stderr, "  case %zu: %s (error \"%s\", expected \"%s\")\n", i,
                    t ? "accepted" : "wrong message", err, cases[i].msg);
            fails++;
        }
        ts_tms_free(t);
    }
    CHECK_INT(fails, 0);
}

/* Without orderedAxes the CRS decides: EPSG:4326 and EPSG:3035 are
 * northing-first, EPSG:3857 and CRS84 are not. */
static void axis_order_from_gdal(void)
{
    static const struct {
        const char *crs;
        double ox, oy;
    } cases[] = {
        {"\"http://www.opengis.net/def/crs/EPSG/0/4326\"", 2, 1},
        {"\"urn:ogc:def:crs:EPSG::3035\"", 2, 1},
        {"{\"uri\":\"http://www.opengis.net/def/crs/EPSG/0/3857\"}", 1, 2},
        {"\"http://www.opengis.net/def/crs/OGC/1.3/CRS84\"", 1, 2},
        {"\"EPSG:5482\"", 2, 1},
        {"\"EPSG:5041\"", 1, 2},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[1024], err[TS_DETAIL_MAX];
        snprintf(doc, sizeof doc,
                 "{\"id\":\"X\",\"crs\":%s,\"tileMatrices\":[{\"id\":\"0\",\"scaleDenominator\":1,"
                 "\"cellSize\":1,\"pointOfOrigin\":[1,2],\"tileWidth\":1,\"tileHeight\":1,"
                 "\"matrixWidth\":1,\"matrixHeight\":1}]}",
                 cases[i].crs);
        ts_tms *t = parse(doc, err, sizeof err);
        const ts_tile_matrix *m = t ? ts_tms_matrix(t, 0) : NULL;
        if (!m || m->origin_x != cases[i].ox || m->origin_y != cases[i].oy) {
            fprintf(stderr, "  %s: %s\n", cases[i].crs, t ? "wrong axis order" : err);
            fails++;
        }
        ts_tms_free(t);
    }
    CHECK_INT(fails, 0);
}

static void crs_object_forms(void)
{
    char err[TS_DETAIL_MAX];
    static const char wkt_doc[] =
        "{\"id\":\"W\",\"crs\":{\"wkt\":\"GEOGCS[\\\"WGS 84\\\",DATUM[\\\"WGS_1984\\\","
        "SPHEROID[\\\"WGS 84\\\",6378137,298.257223563]],PRIMEM[\\\"Greenwich\\\",0],"
        "UNIT[\\\"degree\\\",0.0174532925199433],AXIS[\\\"Longitude\\\",EAST],"
        "AXIS[\\\"Latitude\\\",NORTH]]\"},\"tileMatrices\":[" MATRIX("0", 1, "") "]}";
    ts_tms *w = parse(wkt_doc, err, sizeof err);
    if (!w)
        fprintf(stderr, "  wkt: %s\n", err);
    CHECK(w);
    int wkt_ok = strncmp(ts_tms_crs_input(w), "GEOGCS[", 7) == 0;
    ts_tms_free(w);
    CHECK(wkt_ok);

    static const char projjson_doc[] =
        "{\"id\":\"P\",\"crs\":{\"wkt\":{\"type\":\"GeographicCRS\",\"name\":\"WGS 84\","
        "\"datum\":{\"type\":\"GeodeticReferenceFrame\",\"name\":\"World Geodetic System 1984\","
        "\"ellipsoid\":{\"name\":\"WGS 84\",\"semi_major_axis\":6378137,"
        "\"inverse_flattening\":298.257223563}},\"coordinate_system\":{\"subtype\":"
        "\"ellipsoidal\",\"axis\":[{\"name\":\"Geodetic latitude\",\"abbreviation\":\"Lat\","
        "\"direction\":\"north\",\"unit\":\"degree\"},{\"name\":\"Geodetic longitude\","
        "\"abbreviation\":\"Lon\",\"direction\":\"east\",\"unit\":\"degree\"}]},"
        "\"id\":{\"authority\":\"EPSG\",\"code\":4326}}},\"tileMatrices\":[{\"id\":\"0\","
        "\"scaleDenominator\":1,\"cellSize\":1,\"pointOfOrigin\":[90,-180],\"tileWidth\":1,"
        "\"tileHeight\":1,\"matrixWidth\":1,\"matrixHeight\":1}]}";
    ts_tms *p = parse(projjson_doc, err, sizeof err);
    if (!p)
        fprintf(stderr, "  projjson: %s\n", err);
    CHECK(p);
    const ts_tile_matrix *m = ts_tms_matrix(p, 0);
    double ox = m->origin_x, oy = m->origin_y;
    char uri[128];
    snprintf(uri, sizeof uri, "%s", ts_tms_crs_uri(p));
    int is_json = ts_tms_crs_input(p)[0] == '{';
    ts_tms_free(p);
    CHECK(is_json);
    CHECK_NEAR(ox, -180, 0);
    CHECK_NEAR(oy, 90, 0);
    CHECK_STR(uri, "http://www.opengis.net/def/crs/EPSG/0/4326");
}

static void bottom_left_origin(void)
{
    static const char doc[] =
        "{\"id\":\"BL\",\"crs\":\"EPSG:3857\",\"tileMatrices\":[{\"id\":\"0\","
        "\"scaleDenominator\":1,\"cellSize\":10,\"cornerOfOrigin\":\"bottomLeft\","
        "\"pointOfOrigin\":[100,200],\"tileWidth\":10,\"tileHeight\":5,\"matrixWidth\":3,"
        "\"matrixHeight\":4}]}";
    char err[TS_DETAIL_MAX];
    ts_tms *t = parse(doc, err, sizeof err);
    if (!t)
        fprintf(stderr, "  %s\n", err);
    CHECK(t);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_bbox b, all = ts_tms_bbox(t);
    int rc = ts_tms_xy_bounds(t, 0, 1, 2, &b, &ctx);
    long x = -1, y = -1;
    int rt = ts_tms_tile_at(t, 0, 255.0, 301.0, &x, &y);
    ts_tms_free(t);
    CHECK_INT(rc, 0);
    /* Row 2 counts up from the bottom edge y=200 in 50-unit rows. */
    BOUNDS_EQ(b, 200, 300, 300, 350, 0);
    BOUNDS_EQ(all, 100, 200, 400, 400, 0);
    CHECK_INT(rt, 0);
    CHECK(x == 1 && y == 2);
}

static void bounding_box_is_swapped(void)
{
    static const char doc[] =
        "{\"id\":\"B\",\"crs\":\"EPSG:4326\",\"orderedAxes\":[\"Lat\",\"Lon\"],"
        "\"boundingBox\":{\"lowerLeft\":[-10,-20],\"upperRight\":[30,40]},"
        "\"tileMatrices\":[{\"id\":\"0\",\"scaleDenominator\":1,\"cellSize\":1,"
        "\"pointOfOrigin\":[90,-180],\"tileWidth\":1,\"tileHeight\":1,\"matrixWidth\":1,"
        "\"matrixHeight\":1}]}";
    char err[TS_DETAIL_MAX];
    ts_tms *t = parse(doc, err, sizeof err);
    CHECK(t);
    ts_bbox b = ts_tms_bbox(t);
    ts_tms_free(t);
    BOUNDS_EQ(b, -20, -10, 40, 30, 0);
}

static void json_is_kept(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    const ts_tms *t = ts_tms_registry_get(reg, "WebMercatorQuad");
    const char *j = ts_tms_json(t);
    int ok = j && ts_tms_json_len(t) == strlen(j) && j[0] == '{' &&
             strstr(j, "\"id\":\"WebMercatorQuad\"") &&
             strstr(j, "156543.03392804097") && /* numbers keep their spelling */
             strstr(j, "http://www.opengis.net/def/crs/EPSG/0/3857");
    char title[128];
    snprintf(title, sizeof title, "%s", ts_tms_title(t));
    ts_tms_registry_free(reg);
    CHECK(ok);
    CHECK_STR(title, "Google Maps Compatible for the World");
}

/* ---- registry with an extra folder ---- */

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

#define CUSTOM(id, title)                                                                          \
    "{\"id\":\"" id "\",\"title\":\"" title "\",\"crs\":\"EPSG:3857\",\"tileMatrices\":["          \
    "{\"id\":\"0\",\"scaleDenominator\":1,\"cellSize\":1,\"pointOfOrigin\":[0,0],"                 \
    "\"tileWidth\":256,\"tileHeight\":256,\"matrixWidth\":1,\"matrixHeight\":1}]}"

static void extra_dir_overrides_and_adds(void)
{
    ts_log_threshold = TS_LOG_WARN; /* the expected "replaces" notices */
    char dir[] = "/tmp/ts_tms_test_XXXXXX";
    CHECK(mkdtemp(dir));
    int w = write_file(dir, "a.json", CUSTOM("WebMercatorQuad", "Custom WMQ")) |
            write_file(dir, "b.json", CUSTOM("AAA_Custom", "Mine")) |
            write_file(dir, "notes.txt", "ignored");
    if (w) {
        remove_dir(dir);
        CHECK(0);
    }
    const char *root = getenv("TS_SOURCE_ROOT");
    char builtin[4096];
    snprintf(builtin, sizeof builtin, "%s/tms", root ? root : ".");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_tms_registry *reg = NULL;
    int rc = ts_tms_registry_load(&reg, builtin, dir, &ctx);
    if (rc < 0)
        fprintf(stderr, "  %s\n", ctx.detail);
    size_t n = ts_tms_registry_count(reg);
    const char *first = n ? ts_tms_id(ts_tms_registry_at(reg, 0)) : "";
    int first_ok = strcmp(first, "AAA_Custom") == 0;
    const ts_tms *wmq = ts_tms_registry_get(reg, "WebMercatorQuad");
    int replaced = wmq && strcmp(ts_tms_title(wmq), "Custom WMQ") == 0;
    ts_tms_registry_free(reg);

    /* Two custom files with one id are a configuration mistake. */
    write_file(dir, "c.json", CUSTOM("AAA_Custom", "Again"));
    ts_ctx ctx2;
    ts_ctx_init(&ctx2);
    ts_tms_registry *reg2 = NULL;
    int rc2 = ts_tms_registry_load(&reg2, builtin, dir, &ctx2);
    ts_tms_registry_free(reg2);

    /* An invalid file fails the whole load and is named. */
    unlink(strcat(strcpy((char[4200]){0}, dir), "/c.json"));
    write_file(dir, "broken.json", "{\"id\":\"Broken\"");
    ts_ctx ctx3;
    ts_ctx_init(&ctx3);
    ts_tms_registry *reg3 = NULL;
    int rc3 = ts_tms_registry_load(&reg3, builtin, dir, &ctx3);
    ts_tms_registry_free(reg3);

    ts_ctx ctx4;
    ts_ctx_init(&ctx4);
    ts_tms_registry *reg4 = NULL;
    int rc4 = ts_tms_registry_load(&reg4, "/nonexistent/tms", NULL, &ctx4);
    remove_dir(dir);

    CHECK_INT(rc, 0);
    CHECK_INT(n, 14);
    CHECK(first_ok);
    CHECK(replaced);
    CHECK(rc2 < 0);
    CHECK(strstr(ctx2.detail, "both define") && strstr(ctx2.detail, "AAA_Custom"));
    CHECK(rc3 < 0);
    CHECK(strstr(ctx3.detail, "broken.json") && strstr(ctx3.detail, "invalid JSON"));
    CHECK(rc4 < 0 && reg4 == NULL);
    CHECK(strstr(ctx4.detail, "/nonexistent/tms") != NULL);
}

/* ---- HTTP handlers and the public base URL ---- */

static ts_config api_cfg;

static void api_app(ts_app *app, ts_tms_registry *reg, const char *base_url)
{
    memset(app, 0, sizeof *app);
    memset(&api_cfg, 0, sizeof api_cfg);
    api_cfg.base_url = (char *)base_url;
    api_cfg.cache_max_age = 3600;
    app->cfg = &api_cfg;
    app->tms = reg;
}

static json_object *parse_json_n(const char *s, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The response body as parsed JSON (NULL when it is not JSON). */
static json_object *body_json(const ts_response *resp)
{
    if (!resp->body)
        return NULL;
    return parse_json_n((const char *)resp->body->data + resp->body_off, resp->body_len);
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void api_list_shape(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    ts_app app;
    api_app(&app, reg, "");
    ts_request req = {.method = "GET", .path = "/tileMatrixSets"};
    ts_req_add_header(&req, "Host", "example.com:8080");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_response resp;
    ts_resp_init(&resp);
    ts_match m = {0};
    int rc = ts_api_tms_list(&app, &req, &m, &resp, &ctx);
    json_object *doc = body_json(&resp);
    json_object *list = NULL;
    if (doc)
        json_object_object_get_ex(doc, "tileMatrixSets", &list);
    size_t n = list ? json_object_array_length(list) : 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i), *links, *l;
        const char *id = jstr(e, "id");
        char href[256];
        snprintf(href, sizeof href, "http://example.com:8080/tileMatrixSets/%s", id ? id : "");
        if (!id || strcmp(id, ts_tms_id(ts_tms_registry_at(reg, i))) != 0 || !jstr(e, "title") ||
            !jstr(e, "crs") || !json_object_object_get_ex(e, "links", &links) ||
            json_object_array_length(links) != 1 || !(l = json_object_array_get_idx(links, 0)) ||
            !jstr(l, "href") || strcmp(jstr(l, "href"), href) != 0 ||
            strcmp(jstr(l, "rel"), "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme") != 0 ||
            strcmp(jstr(l, "type"), "application/json") != 0 || !jstr(l, "title")) {
            fprintf(stderr, "  entry %zu: %s\n", i, json_object_to_json_string(e));
            bad++;
        }
    }
    json_object *wmq = n > 10 ? json_object_array_get_idx(list, 10) : NULL;
    json_object *nz = n > 5 ? json_object_array_get_idx(list, 5) : NULL;
    int wmq_ok = wmq && strcmp(jstr(wmq, "id"), "WebMercatorQuad") == 0 &&
                 strcmp(jstr(wmq, "uri"),
                        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad") == 0 &&
                 strcmp(jstr(wmq, "crs"), "http://www.opengis.net/def/crs/EPSG/0/3857") == 0 &&
                 strcmp(jstr(wmq, "title"), "Google Maps Compatible for the World") == 0;
    /* NZTM2000Quad's document has no uri: the key is left out, not null. */
    int nz_ok = nz && strcmp(jstr(nz, "id"), "NZTM2000Quad") == 0 && !jstr(nz, "uri");
    int status = resp.status;
    char ctype[80];
    snprintf(ctype, sizeof ctype, "%s", resp.content_type);
    json_object_put(doc);
    ts_resp_clear(&resp);
    ts_tms_registry_free(reg);
    CHECK_INT(rc, 0);
    CHECK_INT(status, 200);
    CHECK_STR(ctype, "application/json");
    CHECK_INT(n, 13);
    CHECK_INT(bad, 0);
    CHECK(wmq_ok);
    CHECK(nz_ok);
}

static void api_get_document_and_404(void)
{
    ts_tms_registry *reg = load_builtin();
    CHECK(reg);
    ts_app app;
    api_app(&app, reg, "");
    ts_request req = {.method = "GET", .path = "/tileMatrixSets/WGS1984Quad"};
    ts_match m = {0};
    int matched = ts_route_match_path("/tileMatrixSets/{tileMatrixSetId}", req.path, &m);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_response resp;
    ts_resp_init(&resp);
    int rc = ts_api_tms_get(&app, &req, &m, &resp, &ctx);
    const ts_tms *t = ts_tms_registry_get(reg, "WGS1984Quad");
    int same = resp.body && resp.body_len == ts_tms_json_len(t) &&
               memcmp(resp.body->data + resp.body_off, ts_tms_json(t), resp.body_len) == 0;
    json_object *doc = body_json(&resp);
    int doc_ok = doc && jstr(doc, "id") && strcmp(jstr(doc, "id"), "WGS1984Quad") == 0;
    json_object_put(doc);
    int status = resp.status;
    ts_resp_clear(&resp);

    ts_match bad = {0};
    ts_route_match_path("/tileMatrixSets/{tileMatrixSetId}", "/tileMatrixSets/NoSuchSet", &bad);
    ts_ctx ctx2;
    ts_ctx_init(&ctx2);
    int rc2 = ts_api_tms_get(&app, &req, &bad, &resp, &ctx2);
    ts_resp_clear(&resp);
    ts_tms_registry_free(reg);
    CHECK(matched);
    CHECK_INT(rc, 0);
    CHECK_INT(status, 200);
    CHECK(same);
    CHECK(doc_ok);
    CHECK_INT(rc2, -TS_ENOT_FOUND);
    CHECK_INT(ctx2.status, 404);
    CHECK(strstr(ctx2.detail, "NoSuchSet") && strstr(ctx2.detail, "WebMercatorQuad") &&
          strstr(ctx2.detail, "CDB1GlobalGrid") && strstr(ctx2.detail, "WorldMercatorWGS84Quad"));
}

static void base_url_sources(void)
{
    ts_app app;
    char out[256];
    int rc;

    api_app(&app, NULL, "https://tiles.example.org/prefix//");
    ts_request r1 = {.method = "GET", .path = "/"};
    ts_req_add_header(&r1, "Host", "ignored.example");
    rc = ts_app_base_url(&app, &r1, out, sizeof out);
    CHECK_INT(rc, 0);
    CHECK_STR(out, "https://tiles.example.org/prefix");

    api_app(&app, NULL, "");
    ts_request r2 = {.method = "GET", .path = "/"};
    rc = ts_app_base_url(&app, &r2, out, sizeof out);
    CHECK_INT(rc, 0);
    CHECK_STR(out, "http://localhost");

    ts_request r3 = {.method = "GET", .path = "/"};
    ts_req_add_header(&r3, "Host", "internal:8080");
    ts_req_add_header(&r3, "X-Forwarded-Proto", "HTTPS, http");
    ts_req_add_header(&r3, "X-Forwarded-Host", " maps.example.com , proxy2");
    ts_req_add_header(&r3, "X-Forwarded-Prefix", "//api//v1/");
    rc = ts_app_base_url(&app, &r3, out, sizeof out);
    CHECK_INT(rc, 0);
    CHECK_STR(out, "https://maps.example.com/api/v1");

    /* Implausible header values are ignored, never pasted into links. */
    ts_request r4 = {.method = "GET", .path = "/"};
    ts_req_add_header(&r4, "Host", "good.example:81");
    ts_req_add_header(&r4, "X-Forwarded-Host", "evil\"><script>");
    ts_req_add_header(&r4, "X-Forwarded-Proto", "javascript");
    ts_req_add_header(&r4, "X-Forwarded-Prefix", "/");
    rc = ts_app_base_url(&app, &r4, out, sizeof out);
    CHECK_INT(rc, 0);
    CHECK_STR(out, "http://good.example:81");

    char tiny[8];
    rc = ts_app_base_url(&app, &r4, tiny, sizeof tiny);
    CHECK_INT(rc, -1);
    CHECK_STR(tiny, "");
}

TS_TEST_MAIN(TEST(loads_all_builtins_sorted), TEST(crs_inputs_resolve_in_gdal),
             TEST(unknown_ids_are_null), TEST(web_mercator_bounds),
             TEST(crs84_and_wgs1984_axis_order), TEST(crs_inputs_keep_their_authority), TEST(northing_first_projected_sets),
             TEST(non_zero_based_ids), TEST(coalesced_rows), TEST(out_of_range_tiles_are_404),
             TEST(tile_at_clamps), TEST(zoom_for_res_matches_morecantile),
             TEST(rejects_invalid_documents), TEST(axis_order_from_gdal), TEST(crs_object_forms),
             TEST(bottom_left_origin), TEST(bounding_box_is_swapped), TEST(json_is_kept),
             TEST(extra_dir_overrides_and_adds), TEST(api_list_shape),
             TEST(api_get_document_and_404), TEST(base_url_sources))
