/* Error codes and the per-request error context (see ts_common.h). */
#include "ts_common.h"

#include <stdio.h>
#include <string.h>

static const char *const err_names[TS_E_COUNT] = {
    [TS_OK] = "ok",
#define TS_ERR_NAME(name, status, text) [TS_E##name] = text,
    TS_ERRNO_MAP(TS_ERR_NAME)
#undef TS_ERR_NAME
};

static const int err_status[TS_E_COUNT] = {
    [TS_OK] = 200,
#define TS_ERR_STATUS(name, status, text) [TS_E##name] = status,
    TS_ERRNO_MAP(TS_ERR_STATUS)
#undef TS_ERR_STATUS
};

static int normalise(int code)
{
    if (code < 0)
        code = -code;
    return (code >= 0 && code < TS_E_COUNT) ? code : TS_EINTERNAL;
}

const char *ts_err_name(int code)
{
    return err_names[normalise(code)];
}

int ts_err_status(int code)
{
    return err_status[normalise(code)];
}

void ts_ctx_init(ts_ctx *ctx)
{
    ctx->code = 0;
    ctx->status = 200;
    ctx->detail[0] = '\0';
    ctx->retry_after = 0;
}

int ts_ctx_verror(ts_ctx *ctx, ts_err code, const char *fmt, va_list ap)
{
    int c = normalise((int)code);
    if (ctx->code == 0) {
        ctx->code = c;
        ctx->status = err_status[c];
        vsnprintf(ctx->detail, sizeof ctx->detail, fmt, ap);
    }
    return -c;
}

int ts_ctx_error(ts_ctx *ctx, ts_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = ts_ctx_verror(ctx, code, fmt, ap);
    va_end(ap);
    return r;
}
