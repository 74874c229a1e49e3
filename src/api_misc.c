/* Small operational routes: health. */
#include "ts_api.h"

#include <string.h>

int ts_api_healthz(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx)
{
    (void)req;
    (void)m;
    if (app->draining)
        return ts_ctx_error(ctx, TS_EUNAVAILABLE, "shutting down");
    static const char ok[] = "{\"status\":\"ok\"}";
    ts_blob *b = ts_blob_from(ok, sizeof ok - 1);
    if (!b)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "application/json", b);
    ts_resp_set_header(resp, "Cache-Control", "no-store");
    return 0;
}
