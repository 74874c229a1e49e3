/*
 * Application state shared by every worker thread, and the one entry point
 * the http layer calls: ts_app_handle() turns a ts_request into a complete
 * ts_response (routing, handler, JSON errors, CORS, ETag/304).
 */
#ifndef TS_APP_H
#define TS_APP_H

#include "ts_config.h"
#include "ts_request.h"
#include "ts_router.h"

#include <limits.h>

struct ts_tms_registry;
struct ts_cache;
struct ts_metrics;

typedef struct ts_app {
    const ts_config *cfg;
    struct ts_tms_registry *tms;
    struct ts_cache *cache;
    struct ts_metrics *metrics;
    struct ts_slots *slots;         /* render slots (ts_limits.h) */
    struct ts_ratelimit *ratelimit; /* NULL when rate limiting is off */
    double rate_burst;              /* token bucket size in use */
    int route_metric[32];           /* routes[i] -> its metrics label index */
    int metric_unmatched;           /* label index of requests no route matched */
    char data_root[PATH_MAX];       /* realpath of cfg->data_root */
    char default_dataset[PATH_MAX]; /* realpath, "" when there is none */
    int threads;
    const ts_route *routes;
    size_t nroutes;
    volatile int draining; /* set on shutdown: /healthz answers 503 */
} ts_app;

/* Builds the application from settings; on failure returns -1 with a message. */
int ts_app_init(ts_app *app, const ts_config *cfg, char *err, size_t errlen);
void ts_app_destroy(ts_app *app);

/* Routes, dispatches and post-processes one request. Never fails: every
 * error becomes a JSON response. resp must be initialised. */
void ts_app_handle(ts_app *app, const ts_request *req, ts_response *resp);
/* The pass after an asynchronous lookup (ts_response.lookup): resp is what
 * ts_app_handle left deferred (the handler's headers), req->prefetch the
 * answer. On a usable HIT completes resp and returns true; otherwise
 * returns false and the caller handles the request again from scratch. The
 * HIT answers for the file identity the first pass keyed it with, current
 * when the request arrived, so it is not checked again. */
bool ts_app_finish_lookup(ts_app *app, const ts_request *req, ts_response *resp);

/* The public base URL for absolute links, without a trailing '/': the
 * --base-url setting when set, else scheme://host[/prefix] from
 * X-Forwarded-Proto/-Host/-Prefix and Host (defaults http and localhost).
 * Returns 0, or -1 (and "") when it does not fit in out. */
int ts_app_base_url(const ts_app *app, const ts_request *req, char *out, size_t outlen);
/* A response built from ts_app_base_url depends on those request headers
 * unless --base-url is set: say so in Vary, for shared caches in front. */
void ts_app_vary_base_url(const ts_app *app, ts_response *resp);

#endif
