/* Application setup, the routing table and request dispatch (see ts_app.h). */
#include "ts_app.h"
#include "ts_api.h"
#include "ts_cache.h"
#include "ts_limits.h"
#include "ts_metrics.h"
#include "ts_reader.h"
#include "ts_tms.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longer tile forms come first: a capture at the end of a segment would
 * otherwise swallow "@2x.png". */
static const ts_route routes[] = {
    {"GET", "/healthz", ts_api_healthz, "healthz"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}@{scale}x.{format}", ts_api_tile, "tile"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}.{format}", ts_api_tile, "tile"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}@{scale}x", ts_api_tile, "tile"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}", ts_api_tile, "tile"},
    {"GET", "/tiles/{z}/{x}/{y}@{scale}x.{format}", ts_api_tile, "tile"},
    {"GET", "/tiles/{z}/{x}/{y}.{format}", ts_api_tile, "tile"},
    {"GET", "/tiles/{z}/{x}/{y}@{scale}x", ts_api_tile, "tile"},
    {"GET", "/tiles/{z}/{x}/{y}", ts_api_tile, "tile"},
    {"GET", "/tilejson.json", ts_api_tilejson, "tilejson"},
    {"GET", "/{tms}/tilejson.json", ts_api_tilejson, "tilejson"},
    {"GET", "/info", ts_api_info, "info"},
    {"GET", "/info.geojson", ts_api_info_geojson, "info"},
    {"GET", "/tileMatrixSets", ts_api_tms_list, "tms"},
    {"GET", "/tileMatrixSets/{tileMatrixSetId}", ts_api_tms_get, "tms"},
    {"GET", "/cache/stats", ts_api_cache_stats, "cache"},
    {"GET", "/metrics", ts_api_metrics, "metrics"},
    {"GET", "/static/{pkg}/images/{file}", ts_api_static, "static"},
    {"GET", "/static/{pkg}/{file}", ts_api_static, "static"},
    {"GET", "/map/leaflet", ts_api_map_leaflet, "map"},
    {"GET", "/map", ts_api_map, "map"},
    {"GET", "/{tileMatrixSetId}/map", ts_api_map, "map"},
    {"DELETE", "/cache", ts_api_cache_delete, "cache"},
};

static int find_default_dataset(ts_app *app, char *err, size_t errlen)
{
    const char *name = app->cfg->default_dataset;
    char path[PATH_MAX * 2 + 8];
    if (name && name[0]) {
        if (name[0] == '/')
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s/%s", app->data_root, name);
        if (!realpath(path, app->default_dataset)) {
            snprintf(err, errlen, "default dataset '%s' not found", path);
            return -1;
        }
        return 0;
    }
    /* The first .tif of the data root, by name, so the viewer works out of the box. */
    struct dirent **list = NULL;
    int n = scandir(app->data_root, &list, NULL, alphasort);
    app->default_dataset[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *d = list[i]->d_name;
        size_t l = strlen(d);
        if (!app->default_dataset[0] && d[0] != '.' &&
            ((l > 4 && strcasecmp(d + l - 4, ".tif") == 0) ||
             (l > 5 && strcasecmp(d + l - 5, ".tiff") == 0))) {
            snprintf(path, sizeof path, "%s/%s", app->data_root, d);
            if (!realpath(path, app->default_dataset))
                app->default_dataset[0] = '\0';
        }
        free(list[i]);
    }
    free(list);
    return 0;
}

int ts_app_init(ts_app *app, const ts_config *cfg, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->routes = routes;
    app->nroutes = sizeof routes / sizeof routes[0];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    app->threads = cfg->threads > 0 ? (int)cfg->threads : (cores > 0 ? (int)cores : 1);

    /* One metrics label per distinct route name, in table order. */
    const char *names[TS_METRICS_MAX_ROUTES];
    size_t nnames = 0;
    for (size_t i = 0; i < app->nroutes; i++) {
        size_t k = 0;
        while (k < nnames && strcmp(names[k], routes[i].name) != 0)
            k++;
        if (k == nnames && nnames < TS_METRICS_MAX_ROUTES)
            names[nnames++] = routes[i].name;
    }
    if (!(app->metrics = ts_metrics_create(names, nnames))) {
        snprintf(err, errlen, "cannot create the metrics");
        return -1;
    }
    /* Resolved once, so a request's label is an array read, not a name search. */
    _Static_assert(sizeof routes / sizeof routes[0] <= sizeof app->route_metric / sizeof app->route_metric[0],
                   "route_metric is too small for the routing table");
    for (size_t i = 0; i < app->nroutes; i++)
        app->route_metric[i] = ts_metrics_route_index(app->metrics, routes[i].name);
    app->metric_unmatched = ts_metrics_route_index(app->metrics, NULL);
    int slots = cfg->max_renders > 0 ? (int)cfg->max_renders : app->threads;
    if (!(app->slots = ts_slots_create(slots, (int)cfg->render_queue))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cfg->rate_limit > 0) {
        app->rate_burst = cfg->rate_burst > 0 ? (double)cfg->rate_burst : 2.0 * (double)cfg->rate_limit;
        if (!(app->ratelimit = ts_ratelimit_create((double)cfg->rate_limit, app->rate_burst))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    if (!realpath(cfg->data_root, app->data_root)) {
        snprintf(err, errlen, "data root '%s' does not exist", cfg->data_root);
        return -1;
    }
    struct stat st;
    if (stat(app->data_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "data root '%s' is not a directory", cfg->data_root);
        return -1;
    }
    if (find_default_dataset(app, err, errlen) < 0)
        return -1;

    ts_reader_global_init(cfg->gdal_cache_mb);

    ts_ctx ctx;
    ts_ctx_init(&ctx);
    if (ts_tms_registry_load(&app->tms, cfg->tms_dir, cfg->tms_extra_dir, &ctx) < 0) {
        snprintf(err, errlen, "TileMatrixSets: %s", ctx.detail);
        return -1;
    }

    /* The cache backend: memory by default, Redis (optionally behind a
     * memory L1) when CACHE_ENDPOINT says so, none when disabled. */
    ts_cache_backend *backend = NULL;
    const char *ep = cfg->cache_endpoint;
    if (strncmp(ep, "redis://", 8) == 0 || strncmp(ep, "unix://", 7) == 0) {
        backend = ts_cache_redis_create(ep, &ctx);
        if (!backend) {
            snprintf(err, errlen, "CACHE_ENDPOINT: %s", ctx.detail);
            return -1;
        }
        if (cfg->cache_l1_mb > 0) {
            ts_cache_backend *l1 =
                ts_cache_memory_create((size_t)cfg->cache_l1_mb * 1024 * 1024, NULL, NULL);
            ts_cache_backend *tiered = l1 ? ts_cache_tiered_create(l1, backend) : NULL;
            if (!tiered) {
                if (l1)
                    l1->destroy(l1);
                backend->destroy(backend);
                snprintf(err, errlen, "out of memory creating the L1 cache");
                return -1;
            }
            backend = tiered;
        }
    } else if (strcmp(ep, "none") != 0) {
        backend = ts_cache_memory_create((size_t)cfg->cache_memory_mb * 1024 * 1024, NULL, NULL);
        if (!backend) {
            snprintf(err, errlen, "out of memory creating the memory cache");
            return -1;
        }
    }
    ts_cache_opts copts = {.namespace_ = cfg->cache_namespace,
                           .ttl_s = (unsigned)cfg->cache_ttl,
                           .cross_instance_lock = true};
    app->cache = ts_cache_create(backend, &copts);
    if (!app->cache) {
        snprintf(err, errlen, "cannot create the cache");
        return -1;
    }
    return 0;
}

void ts_app_destroy(ts_app *app)
{
    if (app->cache)
        ts_cache_destroy(app->cache);
    app->cache = NULL;
    if (app->tms)
        ts_tms_registry_free(app->tms);
    app->tms = NULL;
    ts_metrics_destroy(app->metrics);
    app->metrics = NULL;
    ts_slots_destroy(app->slots);
    app->slots = NULL;
    ts_ratelimit_destroy(app->ratelimit);
    app->ratelimit = NULL;
}

/* Weak-compare an If-None-Match list against our strong ETag. */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag || !etag[0])
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    size_t el = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += el) {
        char after = p[el];
        if (after == '\0' || after == ',' || after == ' ')
            return 1;
    }
    return 0;
}

/* The client a rate limit applies to: the peer address, or with
 * --trust-forwarded-for the first X-Forwarded-For entry (the proxy appends
 * the peer it saw; the first one is the original client). */
static void client_id(const ts_app *app, const ts_request *req, char *out, size_t len)
{
    const char *xff = app->cfg->trust_forwarded_for ? ts_req_header(req, "X-Forwarded-For") : NULL;
    if (xff) {
        while (*xff == ' ')
            xff++;
        size_t n = strcspn(xff, ", ");
        if (n > 0 && n < len) {
            memcpy(out, xff, n);
            out[n] = '\0';
            return;
        }
    }
    snprintf(out, len, "%s", req->client_addr ? req->client_addr : "");
}

/* 429 when the client's bucket is empty. Health checks and metrics scrapes
 * are exempt: a load balancer must never be told to go away. */
static int rate_limited(ts_app *app, const ts_request *req, const ts_route *route, ts_ctx *ctx)
{
    if (!app->ratelimit || strcmp(route->name, "healthz") == 0 || strcmp(route->name, "metrics") == 0)
        return 0;
    char who[64];
    client_id(app, req, who, sizeof who);
    double wait = 1;
    bool ok;
    int shared = ts_cache_rate_take(app->cache, who, (double)app->cfg->rate_limit, app->rate_burst);
    if (shared >= 0) /* the instances' shared bucket in Redis */
        ok = shared == 1;
    else /* no shared store, or it failed: this instance's own bucket */
        ok = ts_ratelimit_take(app->ratelimit, who, (uint64_t)(ts_now_s() * 1e9), &wait);
    if (ok)
        return 0;
    ts_metrics_reject(app->metrics, TS_REJECT_RATE_LIMIT);
    ctx->retry_after = wait > 1 ? (int)ceil(wait) : 1;
    return ts_ctx_error(ctx, TS_ETOO_MANY, "rate limit exceeded: at most %ld requests per second",
                        app->cfg->rate_limit);
}

static void finish(ts_app *app, const ts_request *req, ts_response *resp, int metric, double t0);

void ts_app_handle(ts_app *app, const ts_request *req, ts_response *resp)
{
    /* A resumed request's latency includes its wait for the render pool. */
    double t0 = req->resumed && req->start_ns ? (double)req->start_ns / 1e9 : ts_now_s();
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_match m;
    m.route = NULL;
    int rc;
    if (req->query_truncated) {
        rc = ts_ctx_error(&ctx, TS_EBAD_REQUEST, "too many query parameters (at most %d)",
                          TS_MAX_QUERY);
    } else {
        rc = ts_router_find(app->routes, app->nroutes, req->method, req->path, &m);
        if (rc == -TS_ENOT_FOUND)
            ts_ctx_error(&ctx, TS_ENOT_FOUND, "Not Found");
        else if (rc == -TS_EMETHOD)
            ts_ctx_error(&ctx, TS_EMETHOD, "Method Not Allowed");
        else if (req->refuse) {
            ts_metrics_reject(app->metrics, TS_REJECT_OVERLOAD);
            ctx.retry_after = 1;
            rc = ts_ctx_error(&ctx, TS_EUNAVAILABLE,
                              req->refuse == 1
                                  ? "server busy: every render slot is taken and the queue is full; retry shortly"
                                  : "server busy: no render slot became free within %ld ms; retry shortly",
                              app->cfg->render_queue_timeout_ms);
        } else if (req->resumed || (rc = rate_limited(app, req, m.route, &ctx)) == 0)
            rc = m.route->handler(app, req, &m, resp, &ctx);
    }
    int metric = m.route ? app->route_metric[m.route - app->routes] : app->metric_unmatched;
    if (resp->deferred && rc == 0 && !ctx.code) {
        /* Only a later pass answers (and counts) it. Waiting for a lookup,
         * the handler's own headers are kept: a HIT is then finished from
         * them (ts_app_finish_lookup) without handling the request again. */
        bool lookup = resp->lookup;
        if (lookup) {
            ts_blob_unref(resp->body);
            resp->body = NULL;
            resp->body_off = resp->body_len = 0;
            resp->content_type[0] = '\0';
            resp->route_metric = metric;
        } else {
            ts_resp_clear(resp);
        }
        resp->deferred = true;
        resp->lookup = lookup; /* lookup_key is left as the cache wrote it */
        return;
    }
    resp->deferred = false;
    if (rc < 0 || ctx.code) {
        ts_resp_error(resp, ctx.code ? ctx.status : 500,
                      ctx.detail[0] ? ctx.detail : "internal error");
        if (ctx.status == 405)
            ts_resp_set_header(resp, "Allow", "GET, HEAD");
        if (ctx.retry_after > 0)
            ts_resp_set_header(resp, "Retry-After", "%d", ctx.retry_after);
    }
    finish(app, req, resp, metric, t0);
}

bool ts_app_finish_lookup(ts_app *app, const ts_request *req, ts_response *resp)
{
    if (ts_cache_take_prefetch(app->cache, req->prefetch, resp) != 0)
        return false;
    resp->deferred = resp->lookup = false;
    finish(app, req, resp, resp->route_metric,
           req->start_ns ? (double)req->start_ns / 1e9 : ts_now_s());
    return true;
}

/* What every answer gets: CORS, X-Cache, conditional GET, the metrics. */
static void finish(ts_app *app, const ts_request *req, ts_response *resp, int metric, double t0)
{
    ts_resp_set_header_str(resp, "Access-Control-Allow-Origin", "*");
    if (resp->cache != TS_CACHE_NONE)
        ts_resp_set_header_str(resp, "X-Cache", ts_cache_outcome_name(resp->cache));

    /* Conditional GET works from cache or not: the ETag is a hash of the body. */
    const char *etag = ts_resp_header(resp, "ETag");
    if (resp->status == 200 && etag_matches(ts_req_header(req, "If-None-Match"), etag)) {
        ts_blob_unref(resp->body);
        resp->body = NULL;
        resp->body_off = resp->body_len = 0;
        resp->status = 304;
    }
    ts_metrics_request(app->metrics, metric, resp->status, ts_now_s() - t0);
}

/* ---- public base URL (absolute links in JSON documents) ---- */

/* First comma-separated element of a header, trimmed: proxies append their
 * own value to X-Forwarded-* lists, and the first one is the client's. */
static void base_url_token(const char *v, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!v)
        return;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ",");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= outlen)
        return; /* an oversized value is ignored rather than cut */
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Header values end up inside URLs in JSON and HTML; anything that is not
 * plausible URL text is ignored so a client cannot inject markup or paths. */
static int base_url_text_ok(const char *s, const char *extra)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int alnum = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z');
        if (!(alnum || *p == '.' || *p == '-' || *p == '_' || *p == '~' || *p == '%' ||
              strchr(extra, *p)))
            return 0;
    }
    return 1;
}

void ts_app_vary_base_url(const ts_app *app, ts_response *resp)
{
    if (!(app->cfg->base_url && app->cfg->base_url[0]))
        ts_resp_set_header(resp, "Vary", "Host, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Prefix");
}

int ts_app_base_url(const ts_app *app, const ts_request *req, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    const char *cfg = app && app->cfg ? app->cfg->base_url : NULL;
    if (cfg && cfg[0]) {
        size_t n = strlen(cfg);
        while (n > 0 && cfg[n - 1] == '/')
            n--;
        if (n >= outlen)
            return -1;
        memcpy(out, cfg, n);
        out[n] = '\0';
        return 0;
    }

    char proto[16], host[256], raw_prefix[256], prefix[256];
    base_url_token(req ? ts_req_header(req, "X-Forwarded-Proto") : NULL, proto, sizeof proto);
    if (strcasecmp(proto, "https") == 0)
        strcpy(proto, "https");
    else
        strcpy(proto, "http");

    base_url_token(req ? ts_req_header(req, "X-Forwarded-Host") : NULL, host, sizeof host);
    if (!host[0] || !base_url_text_ok(host, ":[]"))
        base_url_token(req ? ts_req_header(req, "Host") : NULL, host, sizeof host);
    if (!host[0] || !base_url_text_ok(host, ":[]"))
        strcpy(host, "localhost");

    /* The prefix becomes "/a/b": one leading slash, no empty segments, no
     * trailing slash ("/" alone means no prefix). */
    base_url_token(req ? ts_req_header(req, "X-Forwarded-Prefix") : NULL, raw_prefix,
                   sizeof raw_prefix);
    size_t pl = 0;
    prefix[0] = '\0';
    if (base_url_text_ok(raw_prefix, "/")) {
        for (const char *s = raw_prefix; *s;) {
            while (*s == '/')
                s++;
            size_t seg = strcspn(s, "/");
            if (seg == 0)
                break;
            if (pl + 1 + seg >= sizeof prefix) {
                pl = 0;
                break;
            }
            prefix[pl++] = '/';
            memcpy(prefix + pl, s, seg);
            pl += seg;
            s += seg;
        }
        prefix[pl] = '\0';
    }

    int n = snprintf(out, outlen, "%s://%s%s", proto, host, prefix);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
