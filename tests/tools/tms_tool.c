/*
 * tms_tool: inspect the TileMatrixSet registry from the command line. The
 * end-to-end tests use it to compare tessera's tile geometry with bounds
 * computed independently in Python, so its output is plain JSON.
 *
 *   tms_tool DIR                   ids of the sets in DIR
 *   tms_tool DIR TMSID             the set's CRS and matrices
 *   tms_tool DIR TMSID Z X Y [Z X Y ...]
 *                                  bounds of each tile, one JSON object a line
 *
 * Errors print {"status": N, "detail": "..."} (in the tile's place for a bad
 * tile) and exit 1; usage errors exit 2. Several tiles per run keep the
 * end-to-end tests from paying the registry load hundreds of times.
 */
#include "ts_tms.h"

#include <json-c/json.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_json(json_object *o)
{
    puts(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static int fail(int status, const char *detail)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_int(status));
    json_object_object_add(o, "detail", json_object_new_string(detail));
    print_json(o);
    return 1;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static json_object *matrix_json(const ts_tile_matrix *m)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "zoom", json_object_new_int(m->zoom));
    json_object_object_add(o, "scaleDenominator", json_object_new_double(m->scale_denominator));
    json_object_object_add(o, "cellSize", json_object_new_double(m->cell_size));
    json_object_object_add(o, "originX", json_object_new_double(m->origin_x));
    json_object_object_add(o, "originY", json_object_new_double(m->origin_y));
    json_object_object_add(o, "cornerOfOrigin",
                           json_object_new_string(m->bottom_left ? "bottomLeft" : "topLeft"));
    json_object_object_add(o, "tileWidth", json_object_new_int(m->tile_width));
    json_object_object_add(o, "tileHeight", json_object_new_int(m->tile_height));
    json_object_object_add(o, "matrixWidth", json_object_new_int64(m->matrix_width));
    json_object_object_add(o, "matrixHeight", json_object_new_int64(m->matrix_height));
    json_object *v = json_object_new_array();
    for (size_t i = 0; i < m->nvmw; i++) {
        json_object *w = json_object_new_object();
        json_object_object_add(w, "coalesce", json_object_new_int(m->vmw[i].coalesce));
        json_object_object_add(w, "minTileRow", json_object_new_int64(m->vmw[i].min_row));
        json_object_object_add(w, "maxTileRow", json_object_new_int64(m->vmw[i].max_row));
        json_object_array_add(v, w);
    }
    json_object_object_add(o, "variableMatrixWidths", v);
    return o;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (argc > 3 && (argc - 3) % 3 != 0)) {
        fprintf(stderr, "usage: %s DIR [TMSID [Z X Y]...]\n", argv[0]);
        return 2;
    }
    ts_log_threshold = TS_LOG_WARN;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_tms_registry *reg = NULL;
    if (ts_tms_registry_load(&reg, argv[1], NULL, &ctx) < 0)
        return fail(ctx.status, ctx.detail);

    int rc = 0;
    if (argc == 2) {
        json_object *ids = json_object_new_array();
        for (size_t i = 0; i < ts_tms_registry_count(reg); i++)
            json_object_array_add(ids,
                                  json_object_new_string(ts_tms_id(ts_tms_registry_at(reg, i))));
        print_json(ids);
        goto out;
    }

    const ts_tms *tms = ts_tms_registry_get(reg, argv[2]);
    if (!tms) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown TileMatrixSet '%.200s'", argv[2]);
        rc = fail(404, msg);
        goto out;
    }

    if (argc == 3) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(ts_tms_id(tms)));
        json_object_object_add(o, "crs", json_object_new_string(ts_tms_crs_input(tms)));
        json_object_object_add(o, "crsUri", json_object_new_string(ts_tms_crs_uri(tms)));
        json_object_object_add(o, "minzoom", json_object_new_int(ts_tms_minzoom(tms)));
        json_object_object_add(o, "maxzoom", json_object_new_int(ts_tms_maxzoom(tms)));
        ts_bbox b = ts_tms_bbox(tms);
        json_object *bb = json_object_new_array();
        json_object_array_add(bb, json_object_new_double(b.minx));
        json_object_array_add(bb, json_object_new_double(b.miny));
        json_object_array_add(bb, json_object_new_double(b.maxx));
        json_object_array_add(bb, json_object_new_double(b.maxy));
        json_object_object_add(o, "bbox", bb);
        json_object *ms = json_object_new_array();
        for (size_t i = 0; i < ts_tms_matrix_count(tms); i++)
            json_object_array_add(ms, matrix_json(ts_tms_matrix_at(tms, i)));
        json_object_object_add(o, "tileMatrices", ms);
        print_json(o);
        goto out;
    }

    for (int a = 3; a + 2 < argc; a += 3) {
        long z, x, y;
        if (parse_long(argv[a], &z) < 0 || z < INT_MIN || z > INT_MAX ||
            parse_long(argv[a + 1], &x) < 0 || parse_long(argv[a + 2], &y) < 0) {
            rc = fail(400, "Z, X and Y must be integers");
            continue;
        }
        ts_bbox b;
        ts_ctx_init(&ctx);
        if (ts_tms_xy_bounds(tms, (int)z, x, y, &b, &ctx) < 0) {
            rc = fail(ctx.status, ctx.detail);
            continue;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "minx", json_object_new_double(b.minx));
        json_object_object_add(o, "miny", json_object_new_double(b.miny));
        json_object_object_add(o, "maxx", json_object_new_double(b.maxx));
        json_object_object_add(o, "maxy", json_object_new_double(b.maxy));
        json_object_object_add(o, "crs", json_object_new_string(ts_tms_crs_input(tms)));
        print_json(o);
    }
out:
    ts_tms_registry_free(reg);
    return rc;
}
