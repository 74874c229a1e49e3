/*
 * TileMatrixSet documents: ts_tms_parse on the raw input, then the geometry
 * of the sets it accepts (ts_tms_xy_bounds, ts_tms_tile_at,
 * ts_tms_zoom_for_res) on the first, middle and last matrix, including
 * out-of-range tiles and NaN/infinite points. For matrices of sane size a
 * tile's centre must map back to the tile.
 *
 * GDAL resolves the document's CRS. OSRSetFromUserInput also accepts URLs
 * (and file names, read-only); LLVMFuzzerInitialize sends any HTTP fetch to a
 * closed local port so a fuzzed "crs" never waits on the network.
 */
#include "fuzz_common.h"
#include "ts_tms.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* OSRSetFromUserInput fetches http(s) URLs in GDAL 3.6: point any such
     * fetch at a closed local port so it fails at once. */
    CPLSetConfigOption("GDAL_HTTP_PROXY", "127.0.0.1:9");
    CPLSetConfigOption("GDAL_HTTP_TIMEOUT", "1");
    CPLSetConfigOption("GDAL_HTTP_CONNECTTIMEOUT", "1");
    CPLSetConfigOption("GDAL_HTTP_MAX_RETRY", "0");
    CPLPushErrorHandler(CPLQuietErrorHandler);
    return 0;
}

static void check_matrix(const ts_tms *tms, const ts_tile_matrix *m)
{
    ts_ctx ctx;
    ts_bbox b;
    long xs[] = {0, m->matrix_width - 1, m->matrix_width / 2, -1, m->matrix_width, LONG_MAX};
    long ys[] = {0, m->matrix_height - 1, m->matrix_height / 2, -1, m->matrix_height, LONG_MIN};
    double tw = m->cell_size * m->tile_width, th = m->cell_size * m->tile_height;
    /* Tiles small against their distance from the origin lose the last bits
     * of their centre, and coordinates beyond 2^52 tiles are not exact. */
    int sane = tw > 1e-9 && th > 1e-9 && tw < 1e12 && th < 1e12 &&
               fabs(m->origin_x) / tw < 1e12 && fabs(m->origin_y) / th < 1e12 &&
               m->matrix_width < (1L << 36) && m->matrix_height < (1L << 36);
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        for (size_t j = 0; j < sizeof ys / sizeof ys[0]; j++) {
            ts_ctx_init(&ctx);
            int rc = ts_tms_xy_bounds(tms, m->zoom, xs[i], ys[j], &b, &ctx);
            fuzz_check_ctx(rc, &ctx);
            int inside = xs[i] >= 0 && xs[i] < m->matrix_width && ys[j] >= 0 &&
                         ys[j] < m->matrix_height;
            if ((rc == 0) != inside)
                abort();
            if (rc < 0)
                continue;
            if (!(b.minx <= b.maxx) || !(b.miny <= b.maxy))
                abort();
            long tx, ty;
            double cx = b.minx / 2 + b.maxx / 2, cy = b.miny / 2 + b.maxy / 2;
            if (ts_tms_tile_at(tms, m->zoom, cx, cy, &tx, &ty) != 0)
                abort();
            if (tx < 0 || tx >= m->matrix_width || ty < 0 || ty >= m->matrix_height)
                abort();
            if (sane && (ty != ys[j] || tx > xs[i] || xs[i] - tx >= 1L << 31)) {
                fprintf(stderr, "tile %ld/%ld -> centre %.17g,%.17g -> %ld/%ld\n", xs[i], ys[j],
                        cx, cy, tx, ty);
                abort();
            }
        }
    }
    long tx, ty;
    static const double pts[] = {0.0, -1e308, 1e308, INFINITY, -INFINITY, 1e-300};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        if (ts_tms_tile_at(tms, m->zoom, pts[i], pts[5 - i], &tx, &ty) != 0)
            abort();
        if (tx < 0 || tx >= m->matrix_width || ty < 0 || ty >= m->matrix_height)
            abort();
    }
    if (ts_tms_tile_at(tms, m->zoom, NAN, 0.0, &tx, &ty) != -TS_EBAD_REQUEST)
        abort();
    int z = ts_tms_zoom_for_res(tms, m->cell_size, INT_MIN, INT_MAX, "auto");
    if (!ts_tms_matrix(tms, z))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    /* An exact-size, non-terminated copy: the parser gets a length. */
    char *json = malloc(size ? size : 1);
    if (!json)
        abort();
    if (size)
        memcpy(json, data, size);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_tms *tms = NULL;
    int rc = ts_tms_parse(json, size, &tms, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc < 0) {
        if (tms)
            abort();
        free(json);
        return 0;
    }
    size_t n = ts_tms_matrix_count(tms);
    if (!n || !ts_tms_id(tms) || !ts_tms_title(tms) || !ts_tms_uri(tms) || !ts_tms_crs_uri(tms) ||
        !ts_tms_crs_input(tms) || !ts_tms_json(tms) || ts_tms_json_len(tms) != strlen(ts_tms_json(tms)))
        abort();
    ts_bbox bb = ts_tms_bbox(tms);
    if (!(bb.minx <= bb.maxx) || !(bb.miny <= bb.maxy))
        abort();
    for (size_t i = 1; i < n; i++)
        if (!(ts_tms_matrix_at(tms, i)->zoom > ts_tms_matrix_at(tms, i - 1)->zoom))
            abort();
    if (ts_tms_minzoom(tms) != ts_tms_matrix_at(tms, 0)->zoom ||
        ts_tms_maxzoom(tms) != ts_tms_matrix_at(tms, n - 1)->zoom)
        abort();
    size_t pick[] = {0, n / 2, n - 1};
    for (size_t k = 0; k < 3; k++) {
        const ts_tile_matrix *m = ts_tms_matrix_at(tms, pick[k]);
        if (ts_tms_matrix(tms, m->zoom) != m)
            abort();
        check_matrix(tms, m);
    }
    static const double res[] = {0.0, 1e-300, 1.0, 156543.03392804097, 1e300, INFINITY, NAN, -1.0};
    static const char *const strat[] = {"auto", "lower", "upper", NULL};
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        int z = ts_tms_zoom_for_res(tms, res[i], ts_tms_minzoom(tms), ts_tms_maxzoom(tms),
                                    strat[i % 4]);
        if (!ts_tms_matrix(tms, z))
            abort();
    }
    ts_ctx_init(&ctx);
    if (ts_tms_xy_bounds(tms, INT_MIN, 0, 0, &(ts_bbox){0}, &ctx) != -TS_ENOT_FOUND ||
        ctx.status != 404)
        abort();
    ts_tms_free(tms);
    free(json);
    return 0;
}
