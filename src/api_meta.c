/* JSON documents about a dataset: TileJSON, info, info.geojson. */
#include "ts_api.h"
#include "ts_cache.h"
#include "ts_encode.h"
#include "ts_reader.h"
#include "ts_tms.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Percent-encode for a query string (RFC 3986 unreserved characters kept). */
int ts_api_urlencode(ts_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = ts_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = ts_buf_append(b, e, 3);
        }
    }
    return rc;
}

static int json_response(json_object *o, ts_response *resp, ts_ctx *ctx)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    ts_blob *b = s ? ts_blob_from(s, len) : NULL;
    if (!b)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "application/json", b);
    return 0;
}

static json_object *bbox_array(const double b[4])
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < 4; i++)
        json_object_array_add(a, json_object_new_double(b[i]));
    return a;
}

typedef struct meta_job {
    ts_app *app;
    const ts_request *req;
    const ts_dataset *ds;
    const ts_tms *tms;
    const char *base;
    bool geojson;
} meta_job;

static const char *const tilejson_own[] = {"tile_format", "tile_scale", "minzoom", "maxzoom"};

static int render_tilejson(void *ud, ts_response *resp, ts_ctx *ctx)
{
    meta_job *j = ud;
    ts_dataset_info info;
    int rc = ts_reader_info(j->ds, &info, ctx);
    if (rc < 0)
        return rc;
    int minz, maxz;
    if ((rc = ts_reader_zoom_range(j->ds, j->tms, &minz, &maxz, ctx)) < 0)
        return rc;
    const char *v;
    char *end;
    if ((v = ts_req_query(j->req, "minzoom"))) {
        minz = (int)strtol(v, &end, 10);
        if (*end || !*v)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "minzoom: expected an integer, got '%s'", v);
    }
    if ((v = ts_req_query(j->req, "maxzoom"))) {
        maxz = (int)strtol(v, &end, 10);
        if (*end || !*v)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "maxzoom: expected an integer, got '%s'", v);
    }
    long scale = 1;
    if ((v = ts_req_query(j->req, "tile_scale"))) {
        scale = strtol(v, &end, 10);
        if (*end || scale < 1 || scale > 4)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "tile_scale: expected an integer 1..4, got '%s'", v);
    }
    const char *fmt = ts_req_query(j->req, "tile_format");
    ts_format f;
    if (fmt && ts_format_parse(fmt, &f) < 0)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "tile_format: unknown format '%s' (valid: %s)",
                            fmt, ts_format_list());

    ts_buf url = {0};
    ts_buf_appendf(&url, "%s/tiles/%s/{z}/{x}/{y}@%ldx", j->base, ts_tms_id(j->tms), scale);
    if (fmt)
        ts_buf_appendf(&url, ".%s", fmt);
    int nq = 0;
    for (size_t i = 0; i < j->req->nquery; i++) {
        const char *k = j->req->query[i].key;
        bool own = false;
        for (size_t t = 0; t < sizeof tilejson_own / sizeof tilejson_own[0]; t++)
            own |= strcasecmp(k, tilejson_own[t]) == 0;
        if (own)
            continue;
        ts_buf_append(&url, nq++ ? "&" : "?", 1);
        ts_api_urlencode(&url, k);
        ts_buf_append(&url, "=", 1);
        ts_api_urlencode(&url, j->req->query[i].value);
    }
    if (!url.data) {
        ts_buf_free(&url);
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    }

    const char *slash = strrchr(j->ds->path, '/');
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tilejson", json_object_new_string("3.0.0"));
    json_object_object_add(o, "name", json_object_new_string(slash ? slash + 1 : j->ds->path));
    json_object_object_add(o, "version", json_object_new_string("1.0.0"));
    json_object_object_add(o, "scheme", json_object_new_string("xyz"));
    json_object *tiles = json_object_new_array();
    json_object_array_add(tiles, json_object_new_string((const char *)url.data));
    json_object_object_add(o, "tiles", tiles);
    json_object_object_add(o, "minzoom", json_object_new_int(minz));
    json_object_object_add(o, "maxzoom", json_object_new_int(maxz));
    if (info.has_wgs84_bounds) {
        const double *b = info.wgs84_bounds;
        json_object_object_add(o, "bounds", bbox_array(b));
        json_object *c = json_object_new_array();
        json_object_array_add(c, json_object_new_double((b[0] + b[2]) / 2));
        json_object_array_add(c, json_object_new_double((b[1] + b[3]) / 2));
        json_object_array_add(c, json_object_new_int(minz));
        json_object_object_add(o, "center", c);
    }
    ts_buf_free(&url);
    rc = json_response(o, resp, ctx);
    json_object_put(o);
    return rc;
}

static json_object *info_object(const ts_dataset *ds, const ts_dataset_info *in, int minz, int maxz)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "bounds", bbox_array(in->native_bounds));
    if (in->has_wgs84_bounds)
        json_object_object_add(o, "geographic_bounds", bbox_array(in->wgs84_bounds));
    json_object_object_add(o, "crs", in->crs[0] ? json_object_new_string(in->crs)
                                                : in->has_crs ? json_object_new_string(in->crs_wkt_short)
                                                              : NULL);
    if (minz >= 0) {
        json_object_object_add(o, "minzoom", json_object_new_int(minz));
        json_object_object_add(o, "maxzoom", json_object_new_int(maxz));
    }
    json_object_object_add(o, "width", json_object_new_int(in->width));
    json_object_object_add(o, "height", json_object_new_int(in->height));
    json_object_object_add(o, "count", json_object_new_int(in->bands));
    json_object_object_add(o, "dtype", json_object_new_string(in->band[0].dtype));
    static const char *const ntypes[] = {"None", "Nodata", "Mask", "Alpha"};
    json_object_object_add(o, "nodata_type", json_object_new_string(ntypes[in->nodata_type]));
    if (in->band[0].has_nodata)
        json_object_object_add(o, "nodata_value",
                               isnan(in->band[0].nodata) ? json_object_new_string("nan")
                                                         : json_object_new_double(in->band[0].nodata));
    json_object *descs = json_object_new_array(), *ci = json_object_new_array(),
                *dtypes = json_object_new_array(), *scales = json_object_new_array(),
                *offsets = json_object_new_array();
    bool palette = false;
    for (int i = 0; i < in->nbands_described; i++) {
        const ts_band_info *b = &in->band[i];
        json_object *d = json_object_new_array();
        char name[16];
        snprintf(name, sizeof name, "b%d", i + 1);
        json_object_array_add(d, json_object_new_string(name));
        json_object_array_add(d, json_object_new_string(b->description));
        json_object_array_add(descs, d);
        json_object_array_add(ci, json_object_new_string(b->color_interp));
        json_object_array_add(dtypes, json_object_new_string(b->dtype));
        json_object_array_add(scales, json_object_new_double(b->scale));
        json_object_array_add(offsets, json_object_new_double(b->offset));
        palette |= b->has_palette;
    }
    json_object_object_add(o, "band_descriptions", descs);
    json_object_object_add(o, "colorinterp", ci);
    json_object_object_add(o, "dtypes", dtypes);
    json_object_object_add(o, "scales", scales);
    json_object_object_add(o, "offsets", offsets);
    json_object_object_add(o, "colormap", json_object_new_boolean(palette));
    json_object *ov = json_object_new_array();
    for (int i = 0; i < in->noverviews; i++)
        json_object_array_add(ov, json_object_new_int(in->width / (in->overview_width[i] ? in->overview_width[i] : 1)));
    json_object_object_add(o, "overviews", ov);
    json_object_object_add(o, "driver", json_object_new_string("GTiff"));
    const char *slash = strrchr(ds->path, '/');
    json_object_object_add(o, "name", json_object_new_string(slash ? slash + 1 : ds->path));
    return o;
}

static int render_info(void *ud, ts_response *resp, ts_ctx *ctx)
{
    meta_job *j = ud;
    ts_dataset_info in;
    int rc = ts_reader_info(j->ds, &in, ctx);
    if (rc < 0)
        return rc;
    int minz = -1, maxz = -1;
    ts_ctx zctx;
    ts_ctx_init(&zctx);
    /* Datasets that cannot be placed in WebMercatorQuad (no CRS, another
     * planet) still have an info document, without zooms. */
    if (ts_reader_zoom_range(j->ds, j->tms, &minz, &maxz, &zctx) < 0)
        minz = maxz = -1;
    json_object *o = info_object(j->ds, &in, minz, maxz);
    if (j->geojson) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "type", json_object_new_string("Feature"));
        if (in.has_wgs84_bounds) {
            const double *b = in.wgs84_bounds;
            json_object *g = json_object_new_object(), *rings = json_object_new_array(),
                        *ring = json_object_new_array();
            double pts[5][2] = {{b[0], b[1]}, {b[2], b[1]}, {b[2], b[3]}, {b[0], b[3]}, {b[0], b[1]}};
            for (int i = 0; i < 5; i++) {
                json_object *pt = json_object_new_array();
                json_object_array_add(pt, json_object_new_double(pts[i][0]));
                json_object_array_add(pt, json_object_new_double(pts[i][1]));
                json_object_array_add(ring, pt);
            }
            json_object_array_add(rings, ring);
            json_object_object_add(g, "type", json_object_new_string("Polygon"));
            json_object_object_add(g, "coordinates", rings);
            json_object_object_add(f, "geometry", g);
            json_object_object_add(f, "bbox", bbox_array(b));
        } else {
            json_object_object_add(f, "geometry", NULL);
        }
        json_object_object_add(f, "properties", o);
        o = f;
    }
    rc = json_response(o, resp, ctx);
    if (rc == 0 && j->geojson)
        snprintf(resp->content_type, sizeof resp->content_type, "application/geo+json");
    json_object_put(o);
    return rc;
}

static int serve_doc(ts_app *app, const ts_request *req, const char *route, const char *tms_id,
                     bool with_base, ts_render_fn fn, bool geojson, ts_response *resp, ts_ctx *ctx)
{
    const ts_tms *tms;
    int rc = ts_api_lookup_tms(app, tms_id, &tms, ctx);
    if (rc < 0)
        return rc;
    ts_dataset ds;
    if ((rc = ts_api_resolve_dataset(app, req, &ds, ctx)) < 0)
        return rc;
    char base[1024] = "";
    if (with_base)
        ts_app_base_url(app, req, base, sizeof base);
    meta_job job = {app, req, &ds, tms, base, geojson};
    ts_kv path[] = {{"tms", ts_tms_id(tms)}};
    ts_key_input ki = {
        .namespace_ = ts_cache_namespace(app->cache), .dataset = ds.path,
        .source_size = ds.size, .source_mtime_ns = ds.mtime_ns, .route = route,
        .path_params = path, .npath = 1, .query = req->query, .nquery = req->nquery,
        .base_url = with_base ? base : NULL,
    };
    ts_cache_key key;
    ts_cache_key_build(&ki, &key);
    rc = ts_cache_serve(app->cache, &key, req, ts_api_all_known(req), fn, &job, resp, ctx);
    if (rc == 0) {
        ts_api_cache_headers(app, resp);
        if (with_base)
            ts_app_vary_base_url(app, resp);
    }
    return rc;
}

int ts_api_tilejson(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                    ts_ctx *ctx)
{
    return serve_doc(app, req, "tilejson", ts_match_get(m, "tms"), true, render_tilejson, false,
                     resp, ctx);
}

int ts_api_info(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                ts_ctx *ctx)
{
    (void)m;
    return serve_doc(app, req, "info", NULL, false, render_info, false, resp, ctx);
}

int ts_api_info_geojson(ts_app *app, const ts_request *req, const ts_match *m,
                        ts_response *resp, ts_ctx *ctx)
{
    (void)m;
    return serve_doc(app, req, "info.geojson", NULL, false, render_info, true, resp, ctx);
}
