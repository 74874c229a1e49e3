/*
 * Shared vocabulary of every tessera module: error codes, the per-request
 * error context, refcounted byte blobs and logging.
 *
 * Errors follow MapCache's convention: the module that detects a problem
 * records it once in the caller's ts_ctx (HTTP status + message) and returns a
 * negative code; everything above only propagates the return value. There is
 * no global error state, so worker threads never see each other's errors.
 */
#ifndef TS_COMMON_H
#define TS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* One table gives the enum, its name and the HTTP status it maps to
 * (libuv's UV_ERRNO_MAP pattern). */
#define TS_ERRNO_MAP(X)                                                                    \
    X(BAD_REQUEST, 400, "bad request")                                                     \
    X(UNAUTHORIZED, 401, "unauthorized")                                                   \
    X(FORBIDDEN, 403, "forbidden")                                                         \
    X(NOT_FOUND, 404, "not found")                                                         \
    X(METHOD, 405, "method not allowed")                                                   \
    X(UNPROCESSABLE, 422, "unprocessable entity")                                          \
    X(TOO_MANY, 429, "too many requests")                                                  \
    X(INTERNAL, 500, "internal error")                                                     \
    X(NOMEM, 500, "out of memory")                                                         \
    X(IO, 500, "i/o error")                                                                \
    X(UNAVAILABLE, 503, "service unavailable")                                             \
    X(TIMEOUT, 504, "timeout")

typedef enum ts_err {
    TS_OK = 0,
#define TS_ERR_ENUM(name, status, text) TS_E##name,
    TS_ERRNO_MAP(TS_ERR_ENUM)
#undef TS_ERR_ENUM
        TS_E_COUNT
} ts_err;

/* Name and HTTP status of an error code (positive or negated). */
const char *ts_err_name(int code);
int ts_err_status(int code);

#define TS_DETAIL_MAX 512

/* Per-request error context. Zero-initialise it (or call ts_ctx_init). */
typedef struct ts_ctx {
    int code;                    /* 0, or a TS_E* code */
    int status;                  /* HTTP status of the first error */
    char detail[TS_DETAIL_MAX];  /* human-readable message for {"detail": ...} */
    int retry_after;             /* > 0: seconds for a Retry-After header (429/503) */
} ts_ctx;

void ts_ctx_init(ts_ctx *ctx);

/* Record an error (the first one wins: later calls keep the original message,
 * because the deepest detector knows best) and return -code, so callers can
 * write `return ts_ctx_error(ctx, TS_ENOT_FOUND, "...")`. */
int ts_ctx_error(ts_ctx *ctx, ts_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ts_ctx_verror(ts_ctx *ctx, ts_err code, const char *fmt, va_list ap);

static inline int ts_ctx_failed(const ts_ctx *ctx)
{
    return ctx->code != 0;
}

/*
 * Refcounted, immutable-after-fill byte blob. Cached values and response
 * bodies are blobs so that a cache HIT hands the same bytes to libmicrohttpd
 * without copying, and an evicted entry is freed only when its last reader is
 * done (h2o's cache fetch/release discipline).
 */
typedef struct ts_blob {
    size_t size;
    int refcount; /* accessed with __atomic builtins */
    unsigned char data[];
} ts_blob;

ts_blob *ts_blob_new(size_t size);                   /* refcount 1, contents uninitialised */
ts_blob *ts_blob_from(const void *data, size_t size); /* copy */
ts_blob *ts_blob_ref(ts_blob *b);                    /* returns b; NULL-safe */
void ts_blob_unref(ts_blob *b);                      /* NULL-safe */
/* Unref and null the pointer, like libvips's VIPS_UNREF. */
#define TS_BLOB_RELEASE(b)                                                                 \
    do {                                                                                   \
        ts_blob_unref(b);                                                                  \
        (b) = NULL;                                                                        \
    } while (0)

/* Free and null, like libvips's VIPS_FREE. */
#define TS_FREE(p)                                                                         \
    do {                                                                                   \
        free(p);                                                                           \
        (p) = NULL;                                                                        \
    } while (0)

/* Growable byte buffer for building bodies (JSON, encoder output). */
typedef struct ts_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
} ts_buf;

int ts_buf_reserve(ts_buf *b, size_t extra);
int ts_buf_append(ts_buf *b, const void *data, size_t n);
int ts_buf_appendf(ts_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ts_buf_free(ts_buf *b);
/* Move the buffer's bytes into a new blob and reset the buffer. */
ts_blob *ts_buf_to_blob(ts_buf *b);

/* Logging. The level check happens before any formatting (Redis serverLog). */
typedef enum ts_log_level {
    TS_LOG_DEBUG = 0,
    TS_LOG_INFO = 1,
    TS_LOG_WARN = 2,
    TS_LOG_ERROR = 3,
    TS_LOG_OFF = 4
} ts_log_level;

extern int ts_log_threshold;
void ts_log_raw(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ts_log_level_parse(const char *s); /* -1 when unknown */

#define ts_log(level, ...)                                                                 \
    do {                                                                                   \
        if ((level) >= ts_log_threshold)                                                   \
            ts_log_raw((level), __VA_ARGS__);                                              \
    } while (0)

/* Monotonic clock in nanoseconds and wall clock in seconds. */
uint64_t ts_now_ns(void);
int64_t ts_wall_s(void);

/* Formatting without printf, for the request path (a cache HIT formats a few
 * numbers and hashes per request; snprintf costs hundreds of instructions a
 * call). */
static inline void ts_hex64(char *out, uint64_t v) /* 16 lower-case hex digits, no NUL */
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

/* Decimal text of v into out (at least 21 bytes), NUL-terminated; returns the length. */
static inline size_t ts_fmt_long(char *out, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

#endif
