/* Route handlers (one file per group of routes). Each follows ts_handler. */
#ifndef TS_API_H
#define TS_API_H

#include "ts_app.h"

int ts_api_healthz(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx);

/* GET /tileMatrixSets (TiTiler's list with tiling-scheme links) and
 * GET /tileMatrixSets/{tileMatrixSetId} (the OGC TMS 2.0 document). */
int ts_api_tms_list(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                    ts_ctx *ctx);
int ts_api_tms_get(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx);

#endif
