/*
 * The request path as the http layer drives it: a raw request line (and a
 * few headers) becomes a ts_request the way libmicrohttpd builds one
 * (path and query percent-decoded, '+' as space, repeated keys kept), then
 *   - the router alone (ts_router_find on the app's table),
 *   - ts_params_parse / ts_params_free and ts_cache_key_build on the query,
 *   - ts_app_handle: the whole app (routing, handlers, the memory cache,
 *     JSON errors, ETag/304) over a temporary data root holding two tiny
 *     GeoTIFFs, so tile renders with fuzzed parameters stay cheap.
 * Every response must be well-formed: a valid status, header names and
 * values without CR/LF, and a JSON body that parses whenever the content
 * type says JSON.
 *
 * Input: "[METHOD ]/path[?query]\nHeader: value\n...".
 */
#include "fuzz_common.h"
#include "ts_app.h"
#include "ts_cache.h"
#include "ts_params.h"
#include "ts_reader.h"
#include "ts_router.h"

#include <cpl_conv.h>
#include <gdal.h>
#include <json-c/json.h>
#include <ogr_srs_api.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static ts_config cfg;
static ts_app app;
static char root[512]; /* $TMPDIR/tessera-fuzz-XXXXXX */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The temporary tree is private to this process: remove it on a normal exit
 * (libFuzzer exits through exit() when -max_total_time/-runs is reached). */
static void remove_root(void)
{
    ts_app_destroy(&app);
    ts_config_free(&cfg);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- set-up: two small datasets in a fresh data root ---- */

static void make_dataset(const char *path, int w, int h, int bands, GDALDataType type,
                         const char *srs_input, const double gt[6], int palette)
{
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char *opts[] = {"TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", NULL};
    GDALDatasetH ds = GDALCreate(drv, path, w, h, bands, type, opts);
    if (!ds)
        abort();
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRSetFromUserInput(srs, srs_input);
    char *wkt = NULL;
    OSRExportToWkt(srs, &wkt);
    GDALSetProjection(ds, wkt);
    CPLFree(wkt);
    OSRDestroySpatialReference(srs);
    GDALSetGeoTransform(ds, (double *)gt);
    float *buf = malloc((size_t)w * h * sizeof *buf);
    for (int b = 1; b <= bands; b++) {
        for (int i = 0; i < w * h; i++)
            buf[i] = (float)((i * (b + 3)) % 251) - (b == 1 ? 20.0f : 0.0f);
        if (b == 1 && !palette)
            for (int i = 0; i < w * h; i += 7)
                buf[i] = -9999.0f;
        GDALRasterBandH band = GDALGetRasterBand(ds, b);
        if (GDALRasterIO(band, GF_Write, 0, 0, w, h, buf, w, h, GDT_Float32, 0, 0) != CE_None)
            abort();
        if (!palette)
            GDALSetRasterNoDataValue(band, -9999.0);
    }
    if (palette) {
        GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
        for (int i = 0; i < 256; i++) {
            GDALColorEntry e = {(short)i, (short)(255 - i), (short)(i / 2), (short)(i % 3 ? 255 : 0)};
            GDALSetColorEntry(ct, i, &e);
        }
        GDALSetRasterColorTable(GDALGetRasterBand(ds, 1), ct);
        GDALDestroyColorTable(ct);
    }
    free(buf);
    GDALClose(ds);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

/* The viewer pages, copied from the source tree: their count of markup
 * characters is what every rendered page must have (substitutions are
 * HTML-escaped, so a request can never add a tag or end an attribute). */
static struct page {
    const char *name;
    size_t lt, quot, apos;
} pages[] = {{"map.html", 0, 0, 0}, {"leaflet.html", 0, 0, 0}};

static void count_markup(const char *s, size_t n, size_t *lt, size_t *quot, size_t *apos)
{
    *lt = *quot = *apos = 0;
    for (size_t i = 0; i < n; i++) {
        *lt += s[i] == '<';
        *quot += s[i] == '"';
        *apos += s[i] == '\'';
    }
}

static void copy_page(struct page *pg, const char *dst_dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", TS_DEFAULT_WEB_DIR, pg->name);
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    count_markup(buf, n, &pg->lt, &pg->quot, &pg->apos);
    write_file(dst_dir, pg->name, buf);
    free(buf);
}

static void sub(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", root, rel);
}

/*
 * <root>/data      the data root: a.tif (default), b.tif, sub/c.tif, and
 *                  link.tif, a symlink to ../outside/x.tif
 * <root>/outside   x.tif: a valid GeoTIFF the server must never open
 * <root>/web       a fake viewer install (node_modules with two assets)
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* run.sh points TMPDIR at its own work directory, which it removes even
     * when a crash skips remove_root(). */
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/tessera-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(root))
        abort();
    static const char *const dirs[] = {"data", "data/sub", "outside", "web", "web/node_modules",
                                       "web/node_modules/maplibre-gl",
                                       "web/node_modules/maplibre-gl/dist",
                                       "web/node_modules/leaflet", "web/node_modules/leaflet/dist",
                                       "web/node_modules/leaflet/dist/images"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        sub(path, sizeof path, dirs[i]);
        if (mkdir(path, 0700) != 0)
            abort();
    }
    sub(path, sizeof path, "web");
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        copy_page(&pages[i], path);
    sub(path, sizeof path, "web/node_modules/maplibre-gl/dist");
    write_file(path, "maplibre-gl.js", "/* fake maplibre */\n");
    sub(path, sizeof path, "web/node_modules/leaflet/dist/images");
    write_file(path, "layers.png", "\x89PNG fake\n");

    GDALAllRegister();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    /* a.tif (the default dataset): two Float32 bands with nodata, 2x2 degrees. */
    const double gt_a[6] = {0.0, 2.0 / 48, 0, 2.0, 0, -2.0 / 40};
    sub(path, sizeof path, "data/a.tif");
    make_dataset(path, 48, 40, 2, GDT_Float32, "EPSG:4326", gt_a, 0);
    /* b.tif: one paletted Byte band in Web Mercator. */
    const double gt_b[6] = {-20000.0, 1000.0, 0, 60000.0, 0, -1000.0};
    sub(path, sizeof path, "data/b.tif");
    make_dataset(path, 32, 32, 1, GDT_Byte, "EPSG:3857", gt_b, 1);
    sub(path, sizeof path, "data/sub/c.tif");
    make_dataset(path, 16, 16, 3, GDT_Byte, "EPSG:4326", gt_a, 0);
    sub(path, sizeof path, "outside/x.tif");
    make_dataset(path, 16, 16, 1, GDT_Float32, "EPSG:4326", gt_a, 0);
    CPLPopErrorHandler();
    char link[PATH_MAX];
    sub(link, sizeof link, "data/link.tif");
    if (symlink("../outside/x.tif", link) != 0)
        abort();

    char data_root[PATH_MAX + 16], web_dir[PATH_MAX + 16];
    snprintf(data_root, sizeof data_root, "--data-root=%s/data", root);
    snprintf(web_dir, sizeof web_dir, "--web-dir=%s/web", root);
    char *args[] = {data_root,
                    web_dir,
                    "--env-file=/nonexistent",
                    "--threads=1",
                    "--gdal-cache-mb=16",
                    "--max-tilesize=512",
                    "--cache-endpoint=memory://",
                    "--cache-memory-mb=8",
                    "--cache-admin-token=fuzz-secret",
                    "--no-access-log",
                    "--log-level=off"};
    char err[1024];
    bool help;
    if (ts_config_load(&cfg, (int)(sizeof args / sizeof args[0]), args, err, sizeof err, &help) < 0 ||
        ts_app_init(&app, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_request: set-up failed: %s\n", err);
        abort();
    }
    ts_log_threshold = TS_LOG_OFF;
    atexit(remove_root);
    return 0;
}

/* ---- request building, as libmicrohttpd does it ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* In-place %XX decoding (and '+' -> ' ' in the query); returns the new
 * length. A decoded %00 ends the C string, as it does for MHD's callers. */
static void unescape(char *s, int plus)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval((unsigned char)r[1])) >= 0 &&
            (lo = hexval((unsigned char)r[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else if (plus && *r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static void check_response(const ts_response *resp)
{
    if (resp->status < 100 || resp->status > 599 || resp->nheaders > TS_MAX_RESP_HEADERS)
        abort();
    if (resp->body && resp->body_off + resp->body_len > resp->body->size)
        abort();
    if (strpbrk(resp->content_type, "\r\n"))
        abort();
    for (size_t i = 0; i < resp->nheaders; i++)
        if (!resp->headers[i].name[0] || strpbrk(resp->headers[i].name, "\r\n: ") ||
            strpbrk(resp->headers[i].value, "\r\n"))
            abort();
    if (resp->status >= 400 && !resp->body)
        abort(); /* every error carries {"detail": ...} */
    if (resp->body && resp->body_len && strncmp(resp->content_type, "application/json", 16) == 0) {
        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *o = json_tokener_parse_ex(tok, (const char *)resp->body->data + resp->body_off,
                                               (int)resp->body_len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success || end != resp->body_len) {
            fprintf(stderr, "invalid JSON body (%s): %.*s\n", json_tokener_error_desc(jerr),
                    (int)(resp->body_len > 2000 ? 2000 : resp->body_len),
                    (const char *)resp->body->data + resp->body_off);
            abort();
        }
        json_object_put(o);
    }
    if (resp->status == 200 && strncmp(resp->content_type, "text/html", 9) == 0) {
        size_t lt, quot, apos;
        count_markup((const char *)resp->body->data + resp->body_off, resp->body_len, &lt, &quot,
                     &apos);
        int known = 0;
        for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
            known |= lt == pages[i].lt && quot == pages[i].quot && apos == pages[i].apos;
        if (!known) {
            fprintf(stderr, "page markup changed: %zu '<', %zu '\"', %zu '\\''\n", lt, quot, apos);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0; /* MHD's connection memory limit is 64 KiB for everything */
    char *text = fuzz_strndup(data, size);

    /* Request line, then header lines. */
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line) {
        free(text);
        return 0;
    }
    ts_request req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    static const char *const methods[] = {"GET", "HEAD", "DELETE", "POST", "PUT", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        size_t ml = strlen(methods[i]);
        if (strncmp(line, methods[i], ml) == 0 && line[ml] == ' ') {
            req.method = methods[i];
            line += ml + 1;
            break;
        }
    }
    char *query = strchr(line, '?');
    if (query)
        *query++ = '\0';
    unescape(line, 0);
    req.path = line;
    if (query) {
        char *qsave = NULL;
        for (char *arg = strtok_r(query, "&", &qsave); arg; arg = strtok_r(NULL, "&", &qsave)) {
            char *eq = strchr(arg, '=');
            if (eq)
                *eq++ = '\0';
            unescape(arg, 1);
            if (eq)
                unescape(eq, 1);
            ts_req_add_query(&req, arg, eq); /* a bare "?name" has a NULL value in MHD */
        }
    }
    for (char *h = strtok_r(NULL, "\n", &save); h; h = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(h, ':');
        if (!colon || strchr(h, '\r'))
            continue; /* MHD never hands out a header with CR in it */
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        ts_req_add_header(&req, h, v);
    }
    req.client_addr = "127.0.0.1";
    req.start_ns = ts_now_ns();

    /* The router alone. */
    ts_match m;
    int rc = ts_router_find(app.routes, app.nroutes, req.method, req.path, &m);
    if (rc == 0) {
        if (!m.route || m.n < 0 || m.n > TS_MAX_CAPTURES)
            abort();
        for (int i = 0; i < m.n; i++)
            if (!m.values[i][0] || strlen(m.values[i]) >= sizeof m.values[i])
                abort(); /* captures are never empty */
    } else if (rc != -TS_ENOT_FOUND && rc != -TS_EMETHOD) {
        abort();
    }

    /* Parameters and the cache key, whatever the route. */
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_params p;
    rc = ts_params_parse(&req, 512, &p, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc == 0) {
        if (p.nbidx < 0 || p.nbidx > TS_MAX_BANDS || p.nrescale < 0 || p.nrescale > TS_MAX_BANDS ||
            (p.tilesize && (p.tilesize < 16 || p.tilesize > 512)) || p.padding < 0 ||
            p.padding > 256 || !(p.buffer >= 0 && p.buffer <= 256))
            abort();
        ts_params_free(&p);
    }
    ts_kv path[] = {{"tms", "WebMercatorQuad"}, {"z", "1"}};
    ts_key_input ki = {.namespace_ = "fuzz", .dataset = req.path, .route = "tile",
                       .path_params = path, .npath = 2, .query = req.query,
                       .nquery = req.nquery};
    ts_cache_key key;
    if (ts_cache_key_build(&ki, &key) != 0 || key.len != strlen(key.str) ||
        key.len != 4 + 1 + 16 + 1 + 32)
        abort();
    /* Dataset confinement: whatever `url` says, a resolved dataset is a
     * regular file strictly inside the data root, symlinks resolved. */
    const char *url = ts_req_query(&req, "url");
    if (url) {
        ts_dataset ds;
        ts_ctx_init(&ctx);
        rc = ts_dataset_resolve(app.data_root, url, &ds, &ctx);
        fuzz_check_ctx(rc, &ctx);
        size_t rl = strlen(app.data_root);
        char real[PATH_MAX];
        if (rc == 0 && (strncmp(ds.path, app.data_root, rl) != 0 || ds.path[rl] != '/' ||
                        !realpath(ds.path, real) || strcmp(real, ds.path) != 0 ||
                        strstr(ds.path, "/outside/"))) {
            fprintf(stderr, "url '%s' resolved to '%s'\n", url, ds.path);
            abort();
        }
    }

    char base[512];
    ts_app_base_url(&app, &req, base, sizeof base);
    if (strpbrk(base, "\r\n\"<> "))
        abort();

    /* The whole app. */
    ts_response resp;
    ts_resp_init(&resp);
    ts_app_handle(&app, &req, &resp);
    if (getenv("FUZZ_VERBOSE")) /* to see what the seeds reach */
        fprintf(stderr, "%s %s -> %d %s %.*s\n", req.method, req.path, resp.status,
                resp.content_type,
                strncmp(resp.content_type, "application/json", 16) == 0 && resp.body
                    ? (int)(resp.body_len > 160 ? 160 : resp.body_len)
                    : 0,
                resp.body ? (const char *)resp.body->data + resp.body_off : "");
    check_response(&resp);
    ts_resp_clear(&resp);

    free(text);
    return 0;
}
