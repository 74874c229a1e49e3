/* Route handlers (one file per group of routes). Each follows ts_handler. */
#ifndef TS_API_H
#define TS_API_H

#include "ts_app.h"
#include "ts_common.h"

#include <stdbool.h>

struct ts_tms;
struct ts_dataset;

#define TS_HANDLER(name)                                                                   \
    int name(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,     \
             ts_ctx *ctx)

TS_HANDLER(ts_api_tile);
TS_HANDLER(ts_api_tilejson);
TS_HANDLER(ts_api_info);
TS_HANDLER(ts_api_info_geojson);
TS_HANDLER(ts_api_cache_stats);
TS_HANDLER(ts_api_cache_delete);
TS_HANDLER(ts_api_metrics);

/* Shared helpers of the handlers. */
int ts_api_lookup_tms(const ts_app *app, const char *id, const struct ts_tms **out, ts_ctx *ctx);
int ts_api_resolve_dataset(const ts_app *app, const ts_request *req, struct ts_dataset *ds,
                           ts_ctx *ctx);
void ts_api_cache_headers(const ts_app *app, ts_response *resp);
bool ts_api_all_known(const ts_request *req);
int ts_api_urlencode(ts_buf *b, const char *s);

int ts_api_healthz(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx);

/* GET /tileMatrixSets (TiTiler's list with tiling-scheme links) and
 * GET /tileMatrixSets/{tileMatrixSetId} (the OGC TMS 2.0 document). */
int ts_api_tms_list(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                    ts_ctx *ctx);
int ts_api_tms_get(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx);

/* Map viewer (src/api_static.c).
 * GET /static/{pkg}/{file} and /static/{pkg}/images/{file}: allow-listed
 * npm assets from <web_dir>/node_modules, held in memory.
 * GET /map and /{tileMatrixSetId}/map: web/map.html (MapLibre);
 * GET /map/leaflet: web/leaflet.html. Both carry the query string on to
 * /{tileMatrixSetId}/tilejson.json. */
int ts_api_static(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                  ts_ctx *ctx);
int ts_api_map(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
               ts_ctx *ctx);
int ts_api_map_leaflet(ts_app *app, const ts_request *req, const ts_match *m,
                       ts_response *resp, ts_ctx *ctx);

#endif
