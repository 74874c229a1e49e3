/*
 * TileMatrixSet routes: the list (TiTiler's TileMatrixSetList shape, with
 * one OGC "tiling-scheme" link per set) and each set's TMS 2.0 document.
 */
#include "ts_api.h"
#include "ts_tms.h"

#include <json-c/json.h>

#include <stdio.h>
#include <string.h>

#define TILING_SCHEME_REL "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"

/* The sets only change when the server restarts, so clients and proxies may
 * keep them as long as any other response. */
static void set_cache_control(const ts_app *app, ts_response *resp)
{
    long max_age = app->cfg ? app->cfg->cache_max_age : 0;
    ts_resp_set_header(resp, "Cache-Control", "public, max-age=%ld", max_age);
}

/* json-c reports allocation failure by returning NULL from its
 * constructors; adding a NULL member would silently emit `null`, so every
 * add goes through here and the first failure spoils the whole document. */
static int add(json_object *obj, const char *key, json_object *val, int *ok)
{
    if (!val || !obj || json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        *ok = 0;
        return -1;
    }
    return 0;
}

static json_object *tms_ref(const ts_tms *tms, const char *base, int *ok)
{
    json_object *o = json_object_new_object();
    if (!o) {
        *ok = 0;
        return NULL;
    }
    const char *id = ts_tms_id(tms);
    const char *title = ts_tms_title(tms)[0] ? ts_tms_title(tms) : id;
    add(o, "id", json_object_new_string(id), ok);
    add(o, "title", json_object_new_string(title), ok);
    if (ts_tms_uri(tms)[0])
        add(o, "uri", json_object_new_string(ts_tms_uri(tms)), ok);
    if (ts_tms_crs_uri(tms)[0])
        add(o, "crs", json_object_new_string(ts_tms_crs_uri(tms)), ok);

    /* Ids are [A-Za-z0-9_-] (checked on load), so they need no escaping in
     * a URL path. */
    char href[1400], link_title[160];
    snprintf(href, sizeof href, "%s/tileMatrixSets/%s", base, id);
    snprintf(link_title, sizeof link_title, "Definition of %s tileMatrixSet", id);
    json_object *link = json_object_new_object();
    add(link, "href", json_object_new_string(href), ok);
    add(link, "rel", json_object_new_string(TILING_SCHEME_REL), ok);
    add(link, "type", json_object_new_string("application/json"), ok);
    add(link, "title", json_object_new_string(link_title), ok);
    json_object *links = json_object_new_array();
    if (!links || json_object_array_add(links, link) != 0) {
        json_object_put(link);
        *ok = 0;
    }
    add(o, "links", links, ok);
    return o;
}

int ts_api_tms_list(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                    ts_ctx *ctx)
{
    (void)m;
    if (!app->tms)
        return ts_ctx_error(ctx, TS_EUNAVAILABLE, "TileMatrixSets are not loaded");
    char base[1024];
    if (ts_app_base_url(app, req, base, sizeof base) < 0)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "the public base URL is too long");

    int ok = 1;
    json_object *root = json_object_new_object();
    json_object *list = json_object_new_array();
    for (size_t i = 0; list && i < ts_tms_registry_count(app->tms); i++) {
        json_object *ref = tms_ref(ts_tms_registry_at(app->tms, i), base, &ok);
        if (!ref || json_object_array_add(list, ref) != 0) {
            json_object_put(ref);
            ok = 0;
        }
    }
    if (!list)
        ok = 0;
    add(root, "tileMatrixSets", list, &ok);
    const char *text = ok ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
    ts_blob *body = text ? ts_blob_from(text, strlen(text)) : NULL;
    json_object_put(root);
    if (!body)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "application/json", body);
    ts_app_vary_base_url(app, resp);
    set_cache_control(app, resp);
    /* The links embed the host the client asked for. */
    ts_resp_set_header(resp, "Vary",
                       "Host, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Prefix");
    return 0;
}

int ts_api_tms_get(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx)
{
    (void)req;
    if (!app->tms)
        return ts_ctx_error(ctx, TS_EUNAVAILABLE, "TileMatrixSets are not loaded");
    /* The route names its capture tileMatrixSetId; fall back to the only
     * capture so a differently named pattern still works. */
    const char *id = ts_match_get(m, "tileMatrixSetId");
    if (!id && m && m->n > 0)
        id = m->values[0];
    const ts_tms *tms = id ? ts_tms_registry_get(app->tms, id) : NULL;
    if (!tms) {
        char valid[TS_DETAIL_MAX];
        size_t len = 0;
        valid[0] = '\0';
        for (size_t i = 0; i < ts_tms_registry_count(app->tms); i++) {
            const char *v = ts_tms_id(ts_tms_registry_at(app->tms, i));
            int n = snprintf(valid + len, sizeof valid - len, "%s%s", i ? ", " : "", v);
            if (n < 0 || (size_t)n >= sizeof valid - len) {
                /* Too many custom sets to list: say so rather than cut an id. */
                snprintf(valid + len, sizeof valid - len, ", ...");
                break;
            }
            len += (size_t)n;
        }
        return ts_ctx_error(ctx, TS_ENOT_FOUND,
                            "Unknown TileMatrixSet '%.64s'. Valid tileMatrixSetId values: %s",
                            id ? id : "", valid);
    }
    ts_blob *body = ts_blob_from(ts_tms_json(tms), ts_tms_json_len(tms));
    if (!body)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "application/json", body);
    set_cache_control(app, resp);
    return 0;
}
