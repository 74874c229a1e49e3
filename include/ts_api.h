/* Route handlers (one file per group of routes). Each follows ts_handler. */
#ifndef TS_API_H
#define TS_API_H

#include "ts_app.h"

int ts_api_healthz(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx);

#endif
