/*
 * The map viewer: its two HTML pages (/map, /{tileMatrixSetId}/map,
 * /map/leaflet) and the npm-installed assets they load (/static/...).
 *
 * Assets come only from an allow-list inside <web_dir>/node_modules, so a
 * request can never name an arbitrary file. Each asset is read once and kept
 * as a blob; every response takes a new reference, so serving it copies
 * nothing. A file that is missing is not remembered as missing: after an
 * operator runs `npm ci --prefix web` the next request finds it, no restart.
 */
#include "ts_api.h"
#include "ts_cache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest asset we agree to hold in memory (maplibre-gl.js is about 1 MB). */
#define ASSET_MAX_BYTES (16u << 20)
/* Loaded assets: the fixed list plus Leaflet's few images. The bound keeps a
 * client from growing the table; real installs need well under half. */
#define ASSET_SLOTS 32

typedef struct asset_rule {
    const char *url;  /* the part after /static/ */
    const char *file; /* relative to node_modules */
    const char *content_type;
} asset_rule;

static const asset_rule asset_rules[] = {
    {"maplibre-gl/maplibre-gl.js", "maplibre-gl/dist/maplibre-gl.js",
     "application/javascript; charset=utf-8"},
    {"maplibre-gl/maplibre-gl.css", "maplibre-gl/dist/maplibre-gl.css", "text/css; charset=utf-8"},
    {"leaflet/leaflet.js", "leaflet/dist/leaflet.js", "application/javascript; charset=utf-8"},
    {"leaflet/leaflet.css", "leaflet/dist/leaflet.css", "text/css; charset=utf-8"},
};

/* leaflet.css refers to its images (images/NAME.png) relative to itself. */
static const char leaflet_images_url[] = "leaflet/images/";
static const char leaflet_images_dir[] = "leaflet/dist/images/";

typedef struct asset_slot {
    char path[PATH_MAX]; /* absolute file path: the key, so two apps with
                            different web dirs (tests) never share an entry */
    ts_blob *blob;
    char etag[40];
} asset_slot;

static pthread_mutex_t assets_mu = PTHREAD_MUTEX_INITIALIZER;
static asset_slot assets[ASSET_SLOTS];
static size_t nassets;

/* A Leaflet image name: letters, digits, '-', '_' and a ".png" suffix. */
static int png_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || n > 64 || strcmp(s + n - 4, ".png") != 0)
        return 0;
    for (size_t i = 0; i < n - 4; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Maps the URL tail to a node_modules-relative file and a content type.
 * Returns 0, or -1 when the name is not on the allow-list. */
static int asset_lookup(const char *tail, char *file, size_t filelen, const char **ctype)
{
    for (size_t i = 0; i < sizeof asset_rules / sizeof asset_rules[0]; i++) {
        if (strcmp(tail, asset_rules[i].url) == 0) {
            snprintf(file, filelen, "%s", asset_rules[i].file);
            *ctype = asset_rules[i].content_type;
            return 0;
        }
    }
    size_t pl = sizeof leaflet_images_url - 1;
    if (strncmp(tail, leaflet_images_url, pl) == 0 && png_name_ok(tail + pl)) {
        snprintf(file, filelen, "%s%s", leaflet_images_dir, tail + pl);
        *ctype = "image/png";
        return 0;
    }
    return -1;
}

/* Reads a whole regular file into a new blob; NULL with errno set on failure. */
static ts_blob *read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        fclose(f);
        errno = EFBIG;
        return NULL;
    }
    ts_blob *b = ts_blob_new((size_t)st.st_size);
    if (b && st.st_size > 0 && fread(b->data, 1, b->size, f) != b->size) {
        TS_BLOB_RELEASE(b);
        errno = EIO;
    }
    fclose(f);
    return b;
}

/* Returns a new reference to the asset at path (loading it on first use) and
 * copies its ETag, or NULL when the file cannot be read. */
static ts_blob *asset_get(const char *path, char etag[40])
{
    ts_blob *out = NULL;
    pthread_mutex_lock(&assets_mu);
    for (size_t i = 0; i < nassets; i++) {
        if (strcmp(assets[i].path, path) == 0) {
            out = ts_blob_ref(assets[i].blob);
            memcpy(etag, assets[i].etag, 40);
            break;
        }
    }
    if (!out) {
        /* Read under the lock: it happens once per asset, and a second
         * thread asking for the same file waits instead of reading it too. */
        ts_blob *b = read_file(path, ASSET_MAX_BYTES);
        if (b) {
            ts_etag_of(b->data, b->size, etag);
            if (nassets < ASSET_SLOTS) {
                asset_slot *s = &assets[nassets++];
                snprintf(s->path, sizeof s->path, "%s", path);
                s->blob = ts_blob_ref(b);
                memcpy(s->etag, etag, 40);
            }
            out = b;
        }
    }
    pthread_mutex_unlock(&assets_mu);
    return out;
}

int ts_api_static(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                  ts_ctx *ctx)
{
    (void)m;
    /* The whole path is used rather than the captures, so the route table
     * may add /static/{pkg}/images/{file} without changes here. */
    static const char prefix[] = "/static/";
    const char *path = req->path;
    if (strncmp(path, prefix, sizeof prefix - 1) != 0 || strstr(path, "..") ||
        strchr(path, '\\'))
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "Not Found");
    const char *tail = path + sizeof prefix - 1;

    char rel[128];
    const char *ctype;
    if (strlen(tail) >= sizeof rel || asset_lookup(tail, rel, sizeof rel, &ctype) < 0)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "static asset '%s' not found", tail);

    const char *web = app->cfg->web_dir;
    char file[PATH_MAX];
    int n = snprintf(file, sizeof file, "%s/node_modules/%s", web, rel);
    if (n < 0 || (size_t)n >= sizeof file)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "static asset '%s' not found", tail);

    char etag[40];
    ts_blob *b = asset_get(file, etag);
    if (!b) {
        char nm[PATH_MAX];
        snprintf(nm, sizeof nm, "%s/node_modules", web);
        struct stat st;
        if (stat(nm, &st) != 0 || !S_ISDIR(st.st_mode))
            return ts_ctx_error(ctx, TS_ENOT_FOUND,
                                "viewer assets are not installed: %s is missing; run "
                                "`npm ci --prefix web` in the source tree (or point "
                                "--web-dir/TESSERA_WEB_DIR at an installed web folder)",
                                nm);
        return ts_ctx_error(ctx, TS_ENOT_FOUND,
                            "static asset '%s' not found in %s; run `npm ci --prefix web` "
                            "to install the viewer's packages",
                            tail, nm);
    }
    ts_resp_set_body(resp, 200, ctype, b);
    ts_resp_set_header(resp, "Cache-Control", "public, max-age=86400");
    ts_resp_set_header(resp, "ETag", "%s", etag);
    return 0;
}

/* ---- the viewer pages ---- */

/* Appends s escaped for an HTML attribute value or element content. */
static int html_escape(ts_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '&': rc = ts_buf_append(b, "&amp;", 5); break;
        case '<': rc = ts_buf_append(b, "&lt;", 4); break;
        case '>': rc = ts_buf_append(b, "&gt;", 4); break;
        case '"': rc = ts_buf_append(b, "&quot;", 6); break;
        case '\'': rc = ts_buf_append(b, "&#39;", 5); break;
        default: rc = ts_buf_append(b, s, 1); break;
        }
    }
    return rc;
}

/* "<base>/<tms>/tilejson.json?<the request's query, re-encoded>" */
static int tilejson_url(const char *base, const ts_request *req, const char *tms, ts_buf *out)
{
    int rc = ts_buf_appendf(out, "%s/", base);
    rc |= ts_api_urlencode(out, tms);
    rc |= ts_buf_append(out, "/tilejson.json", 14);
    for (size_t i = 0; i < req->nquery && rc == 0; i++) {
        rc |= ts_buf_append(out, i ? "&" : "?", 1);
        rc |= ts_api_urlencode(out, req->query[i].key);
        if (req->query[i].value) {
            rc |= ts_buf_append(out, "=", 1);
            rc |= ts_api_urlencode(out, req->query[i].value);
        }
    }
    rc |= ts_buf_append(out, "", 1); /* NUL-terminate */
    return rc ? -1 : 0;
}

/* Renders <web_dir>/<page> with {{TILEJSON_URL}} and {{STATIC}} replaced. */
static int render_page(ts_app *app, const ts_request *req, const char *page, const char *tms,
                       ts_response *resp, ts_ctx *ctx)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", app->cfg->web_dir, page);
    if (n < 0 || (size_t)n >= sizeof path)
        return ts_ctx_error(ctx, TS_EINTERNAL, "web dir path too long");
    /* The page is a few KB and read per request, so edits show without a
     * restart; only the large assets are kept in memory. */
    ts_blob *tpl = read_file(path, 1u << 20);
    if (!tpl)
        return ts_ctx_error(ctx, TS_ENOT_FOUND,
                            "map viewer page %s is missing (set --web-dir/TESSERA_WEB_DIR to "
                            "the folder holding map.html and leaflet.html)",
                            path);

    ts_buf tj = {0}, st = {0}, out = {0};
    char base[1024];
    if (ts_app_base_url(app, req, base, sizeof base) < 0)
        base[0] = '\0';
    int rc = tilejson_url(base, req, tms, &tj);
    rc |= ts_buf_appendf(&st, "%s/static", base);
    rc |= ts_buf_append(&st, "", 1);

    static const char k_tj[] = "{{TILEJSON_URL}}", k_st[] = "{{STATIC}}";
    const char *s = (const char *)tpl->data, *end = s + tpl->size;
    while (rc == 0 && s < end) {
        const char *open = memchr(s, '{', (size_t)(end - s));
        if (!open) {
            rc |= ts_buf_append(&out, s, (size_t)(end - s));
            break;
        }
        rc |= ts_buf_append(&out, s, (size_t)(open - s));
        size_t left = (size_t)(end - open);
        if (left >= sizeof k_tj - 1 && memcmp(open, k_tj, sizeof k_tj - 1) == 0) {
            rc |= html_escape(&out, (const char *)tj.data);
            s = open + sizeof k_tj - 1;
        } else if (left >= sizeof k_st - 1 && memcmp(open, k_st, sizeof k_st - 1) == 0) {
            rc |= html_escape(&out, (const char *)st.data);
            s = open + sizeof k_st - 1;
        } else {
            rc |= ts_buf_append(&out, open, 1);
            s = open + 1;
        }
    }
    ts_blob_unref(tpl);
    ts_buf_free(&tj);
    ts_buf_free(&st);
    ts_blob *body = rc == 0 ? ts_buf_to_blob(&out) : NULL;
    ts_buf_free(&out);
    if (!body)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "text/html; charset=utf-8", body);
    ts_app_vary_base_url(app, resp);
    ts_resp_set_header(resp, "Cache-Control", "no-cache");
    return 0;
}

int ts_api_map(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
               ts_ctx *ctx)
{
    /* An unknown TMS still gets the page; its TileJSON request answers 422
     * and the page shows that error. */
    const char *tms = ts_match_get(m, "tileMatrixSetId");
    return render_page(app, req, "map.html", tms && tms[0] ? tms : "WebMercatorQuad", resp, ctx);
}

int ts_api_map_leaflet(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                       ts_ctx *ctx)
{
    (void)m;
    return render_page(app, req, "leaflet.html", "WebMercatorQuad", resp, ctx);
}
