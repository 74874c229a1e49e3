/* GET /tiles/...: the tile route in all its forms. */
#include "ts_api.h"
#include "ts_algorithm.h"
#include "ts_cache.h"
#include "ts_expression.h"
#include "ts_limits.h"
#include "ts_metrics.h"
#include "ts_color_formula.h"
#include "ts_colormap.h"
#include "ts_encode.h"
#include "ts_params.h"
#include "ts_reader.h"
#include "ts_render.h"
#include "ts_tms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Comma-separated ids of every TMS, for error messages. */
static void tms_id_list(const ts_app *app, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t n = ts_tms_registry_count(app->tms), used = 0;
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                         ts_tms_id(ts_tms_registry_at(app->tms, i)));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int ts_api_lookup_tms(const ts_app *app, const char *id, const ts_tms **out, ts_ctx *ctx)
{
    if (!id)
        id = "WebMercatorQuad";
    *out = ts_tms_registry_get(app->tms, id);
    if (!*out) {
        char list[1024];
        tms_id_list(app, list, sizeof list);
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE,
                            "tileMatrixSetId: unknown TileMatrixSet '%s' (valid: %s)", id, list);
    }
    return 0;
}

int ts_api_resolve_dataset(const ts_app *app, const ts_request *req, ts_dataset *ds, ts_ctx *ctx)
{
    const char *url = ts_req_query(req, "url");
    if (!url) {
        if (!app->default_dataset[0])
            return ts_ctx_error(ctx, TS_ENOT_FOUND,
                                "url: no dataset given and the data root has no default dataset");
        url = app->default_dataset;
    }
    if (ts_dataset_is_remote(url)) {
        if (!app->cfg->allow_remote)
            return ts_ctx_error(ctx, TS_EFORBIDDEN,
                                "url: remote datasets are disabled (see --allow-remote and ALLOWED_HOSTS)");
        return ts_dataset_resolve_remote(app->cfg->allowed_hosts, url, ds, ctx);
    }
    return ts_dataset_resolve(app->data_root, url, ds, ctx);
}

static int parse_int_seg(const char *s, const char *name, long lo, long hi, long *out, ts_ctx *ctx)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "%s: expected an integer, got '%s'", name,
                            s ? s : "");
    if (v < lo || v > hi)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "%s: %ld is outside the TileMatrixSet", name, v);
    *out = v;
    return 0;
}

typedef struct tile_job {
    ts_app *app;
    const ts_tms *tms;
    const ts_dataset *ds;
    const ts_params *params;
    int z;
    long x, y;
    int width, height;
    ts_format format;
    double deadline_s; /* monotonic; 0 = no render time limit */
} tile_job;

static int timed_out(const tile_job *j, ts_ctx *ctx)
{
    if (!(j->deadline_s > 0 && ts_now_s() > j->deadline_s))
        return 0;
    ts_metrics_reject(j->app->metrics, TS_REJECT_TIMEOUT);
    ctx->retry_after = 1;
    return ts_ctx_error(ctx, TS_EUNAVAILABLE, "render timed out: the tile took longer than %ld ms",
                        j->app->cfg->render_timeout_ms);
}

static int render_tile_body(void *ud, ts_response *resp, ts_ctx *ctx)
{
    tile_job *j = ud;
    const ts_params *p = j->params;
    int rc = 0;

    /* Compile what the URL asks for before any I/O: a bad expression or
     * algorithm is a 400 whatever the tile. */
    ts_expr *expr = NULL;
    ts_algorithm *algo = NULL;
    int ebands[TS_MAX_BANDS];
    int nebands = 0;
    if (p->expression) {
        if ((rc = ts_expr_compile(p->expression, &expr, ctx)) < 0)
            return rc;
        nebands = ts_expr_bands(expr, ebands, TS_MAX_BANDS);
        if (nebands > TS_MAX_BANDS) {
            ts_expr_free(expr);
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "expression: at most %d distinct bands", TS_MAX_BANDS);
        }
    }
    if (p->algorithm && (rc = ts_algorithm_parse(p->algorithm, p->algorithm_params, &algo, ctx)) < 0) {
        ts_expr_free(expr);
        return rc;
    }
    if (!p->algorithm && p->algorithm_params) {
        ts_expr_free(expr);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "algorithm_params: given without algorithm");
    }
    int abuf = algo ? ts_algorithm_buffer(algo) : 0;

    ts_read_opts ro = {
        .tms = j->tms, .z = j->z, .x = j->x, .y = j->y,
        .width = j->width, .height = j->height,
        .buffer = p->buffer + p->padding + abuf,
        .bands = expr ? ebands : (p->nbidx ? p->bidx : NULL),
        .nbands = expr ? nebands : p->nbidx,
        .nodata_override = p->nodata_set, .nodata = p->nodata,
        .unscale = p->unscale, .resampling = p->resampling, .reproject = p->reproject,
        .deadline_s = j->deadline_s,
    };
    ts_raster r;
    double t_read = ts_now_s();
    rc = ts_reader_tile(j->ds, &ro, &r, ctx);
    if (rc == 0)
        ts_metrics_observe(j->app->metrics, TS_HIST_READ, ts_now_s() - t_read);
    else if (ctx->status == 503)
        ts_metrics_reject(j->app->metrics, TS_REJECT_TIMEOUT);
    if (rc == 0 && (rc = timed_out(j, ctx)) < 0)
        ts_raster_free(&r);
    if (rc == 0 && expr) {
        ts_raster e = {0};
        rc = ts_expr_eval(expr, &r, ebands, &e, ctx);
        ts_raster_free(&r);
        r = e;
    }
    if (rc == 0 && algo) {
        if (r.bands < ts_algorithm_input_bands(algo)) {
            rc = ts_ctx_error(ctx, TS_EBAD_REQUEST, "algorithm: %s needs %d input bands, got %d",
                              ts_algorithm_name(algo), ts_algorithm_input_bands(algo), r.bands);
        } else {
            ts_raster a = {0};
            r.buffer = abuf; /* the algorithm consumes its own margin only */
            rc = ts_algorithm_apply(algo, &r, &a, ctx);
            ts_raster_free(&r);
            r = a;
        }
    }
    ts_expr_free(expr);
    ts_algorithm_free(algo);
    if (rc == 0)
        rc = timed_out(j, ctx);
    if (rc < 0) {
        ts_raster_free(&r);
        return rc;
    }

    /* Colouring: the request's colormap, else the dataset's own palette. */
    ts_colormap *owned = NULL;
    const ts_colormap *cm = NULL;
    ts_color_formula *formula = NULL;
    if (p->colormap_name) {
        cm = ts_colormap_named(p->colormap_name);
        if (!cm)
            rc = ts_ctx_error(ctx, TS_EBAD_REQUEST,
                              "colormap_name: unknown colormap '%s' (e.g. viridis, magma, terrain, rdylgn, cfastie; %zu in all, '_r' reverses)",
                              p->colormap_name, ts_colormap_names(NULL, 0));
    } else if (p->colormap_json) {
        rc = ts_colormap_parse_json(p->colormap_json, &owned, ctx);
        cm = owned;
    } else if (!p->expression && r.bands == 1 && (!p->nbidx || p->bidx[0] == 1)) {
        ts_rgba pal[256];
        int n = ts_reader_palette(j->ds, pal, 256, ctx);
        if (n > 0) {
            owned = ts_colormap_from_palette((const ts_rgba *)pal, n);
            cm = owned;
        } else if (n < 0) {
            rc = n;
        }
    }
    if (rc == 0 && p->color_formula)
        rc = ts_color_formula_parse(p->color_formula, &formula, ctx);
    ts_image img = {0};
    ts_array arr = {0};
    bool data_format = j->format == TS_FMT_TIF || j->format == TS_FMT_NPY;
    if (rc == 0) {
        ts_render_opts opts = {.params = p, .crop = p->padding, .colormap = cm, .formula = formula,
                               .float_values = p->expression && !p->algorithm};
        rc = data_format ? ts_render_array(&r, &opts, ts_tms_crs_input(j->tms), &arr, ctx)
                         : ts_render_image(&r, &opts, &img, ctx);
    }
    ts_raster_free(&r);
    ts_colormap_free(owned);
    ts_color_formula_free(formula);
    if (rc < 0)
        return rc;
    if (data_format) {
        ts_blob *body = NULL;
        double t_enc = ts_now_s();
        rc = j->format == TS_FMT_TIF ? ts_encode_gtiff(&arr, &body, ctx) : ts_encode_npy(&arr, &body, ctx);
        ts_metrics_observe(j->app->metrics, TS_HIST_ENCODE, ts_now_s() - t_enc);
        free(arr.data);
        if (rc < 0)
            return rc;
        ts_resp_set_body(resp, 200, ts_format_mime(j->format), body);
        return 0;
    }

    ts_format f = j->format;
    if (f == TS_FMT_AUTO)
        f = (img.channels == 2 || img.channels == 4) ? TS_FMT_PNG : TS_FMT_JPEG;
    ts_blob *body = NULL;
    ts_encode_opts eo = {.quality = 0, .zlevel = -1};
    double t_enc = ts_now_s();
    rc = ts_encode(f, &img, &eo, &body, ctx);
    ts_metrics_observe(j->app->metrics, TS_HIST_ENCODE, ts_now_s() - t_enc);
    free(img.data);
    if (rc < 0)
        return rc;
    ts_resp_set_body(resp, 200, ts_format_mime(f), body);
    return 0;
}

/* The cache's render callback: only the request that renders (a coalesced
 * waiter or a HIT never gets here) takes a render slot, and its time limit
 * starts once it has one. */
static int render_tile(void *ud, ts_response *resp, ts_ctx *ctx)
{
    tile_job *j = ud;
    ts_app *app = j->app;
    ts_metrics_gauge_add(app->metrics, TS_GAUGE_RENDERS_WAITING, 1);
    int got = ts_slots_acquire(app->slots, (unsigned)app->cfg->render_queue_timeout_ms);
    ts_metrics_gauge_add(app->metrics, TS_GAUGE_RENDERS_WAITING, -1);
    if (got < 0) {
        ts_metrics_reject(app->metrics, TS_REJECT_OVERLOAD);
        ctx->retry_after = 1;
        return ts_ctx_error(ctx, TS_EUNAVAILABLE,
                            got == -1 ? "server busy: every render slot is taken and the queue is full; retry shortly"
                                      : "server busy: no render slot became free within %ld ms; retry shortly",
                            app->cfg->render_queue_timeout_ms);
    }
    ts_metrics_gauge_add(app->metrics, TS_GAUGE_RENDERS_ACTIVE, 1);
    double t0 = ts_now_s();
    j->deadline_s = app->cfg->render_timeout_ms > 0 ? t0 + app->cfg->render_timeout_ms / 1000.0 : 0;
    int rc = render_tile_body(ud, resp, ctx);
    ts_metrics_gauge_add(app->metrics, TS_GAUGE_RENDERS_ACTIVE, -1);
    ts_slots_release(app->slots);
    if (rc == 0)
        ts_metrics_observe(app->metrics, TS_HIST_RENDER, ts_now_s() - t0);
    return rc;
}

/* Cache-Control for successful, cacheable responses. */
void ts_api_cache_headers(const ts_app *app, ts_response *resp)
{
    if (resp->status == 200) {
        static const char prefix[] = "public, max-age=";
        char v[sizeof prefix + 24];
        memcpy(v, prefix, sizeof prefix - 1);
        size_t n = sizeof prefix - 1 + ts_fmt_long(v + sizeof prefix - 1, app->cfg->cache_max_age);
        ts_resp_set_header_n(resp, "Cache-Control", v, n);
    }
}

/* Every query parameter must be one we know, or the response is not stored
 * (an unknown parameter could be a cache-busting or poisoning attempt). */
bool ts_api_all_known(const ts_request *req)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (!ts_params_known(req->query[i].key))
            return false;
    return true;
}

int ts_api_tile(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                ts_ctx *ctx)
{
    const ts_tms *tms;
    int rc = ts_api_lookup_tms(app, ts_match_get(m, "tms"), &tms, ctx);
    if (rc < 0)
        return rc;
    long z, x, y, scale = 1;
    if ((rc = parse_int_seg(ts_match_get(m, "z"), "z", ts_tms_minzoom(tms), ts_tms_maxzoom(tms), &z, ctx)) < 0)
        return rc;
    const ts_tile_matrix *mx = ts_tms_matrix(tms, (int)z);
    if (!mx)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "z: %ld is not a matrix of %s", z, ts_tms_id(tms));
    if ((rc = parse_int_seg(ts_match_get(m, "x"), "x", 0, mx->matrix_width - 1, &x, ctx)) < 0 ||
        (rc = parse_int_seg(ts_match_get(m, "y"), "y", 0, mx->matrix_height - 1, &y, ctx)) < 0)
        return rc;
    const char *s = ts_match_get(m, "scale");
    if (s) {
        char *end;
        scale = strtol(s, &end, 10);
        if (*end || scale < 1 || scale > 4)
            return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "scale: expected an integer 1..4, got '%s'", s);
    }
    ts_format fmt = TS_FMT_AUTO;
    const char *fs = ts_match_get(m, "format");
    if (fs && ts_format_parse(fs, &fmt) < 0)
        return ts_ctx_error(ctx, TS_EUNPROCESSABLE, "format: unknown format '%s' (valid: %s)", fs,
                            ts_format_list());

    ts_params p;
    if ((rc = ts_params_parse(req, (int)app->cfg->max_tilesize, &p, ctx)) < 0)
        return rc;
    ts_dataset ds;
    if ((rc = ts_api_resolve_dataset(app, req, &ds, ctx)) < 0) {
        ts_params_free(&p);
        return rc;
    }
    int tw = p.tilesize ? p.tilesize : (int)scale * mx->tile_width;
    int th = p.tilesize ? p.tilesize : (int)scale * mx->tile_height;
    if (tw > app->cfg->max_tilesize || th > app->cfg->max_tilesize) {
        ts_params_free(&p);
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "tilesize: %dx%d exceeds the limit of %ld", tw,
                            th, app->cfg->max_tilesize);
    }

    tile_job job = {app, tms, &ds, &p, (int)z, x, y, tw, th, fmt, 0};
    char zs[24], xs[24], ys[24], ss[24];
    ts_fmt_long(zs, z); /* z <= the TMS's maxzoom, scale 1..4: both fit */
    ts_fmt_long(xs, x);
    ts_fmt_long(ys, y);
    ts_fmt_long(ss, scale);
    ts_kv path[] = {{"tms", ts_tms_id(tms)}, {"z", zs}, {"x", xs}, {"y", ys}, {"scale", ss},
                    {"format", fmt == TS_FMT_AUTO ? "auto" : ts_format_name(fmt)}};
    ts_key_input ki = {
        .namespace_ = ts_cache_namespace(app->cache), .dataset = ds.path,
        .source_size = ds.size, .source_mtime_ns = ds.mtime_ns, .route = "tile",
        .path_params = path, .npath = sizeof path / sizeof path[0],
        .query = req->query, .nquery = req->nquery, .base_url = NULL,
    };
    ts_cache_key key;
    ts_cache_key_build(&ki, &key);
    rc = ts_cache_serve(app->cache, &key, req, ts_api_all_known(req), render_tile, &job, resp, ctx);
    ts_params_free(&p);
    if (rc == 0)
        ts_api_cache_headers(app, resp);
    return rc;
}
