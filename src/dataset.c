/* Resolving user dataset paths safely inside the data root (see ts_reader.h). */
#include "ts_reader.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <cpl_error.h>
#include <cpl_vsi.h>

/* Strings GDAL would interpret as something other than a local file: its
 * virtual file systems, and anything with a colon, which covers URLs
 * ("http:", "s3:", "file:", ...), driver-prefixed connection strings
 * ("MEM:::", "GTIFF_DIR:", "DRIVER:...") and embedded options. */
static bool is_virtual(const char *url)
{
    return strncasecmp(url, "/vsi", 4) == 0 || strncasecmp(url, "vsi", 3) == 0 ||
           strchr(url, ':') != NULL;
}

bool ts_dataset_is_remote(const char *url)
{
    return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

/* host[:port] of the URL after the scheme, lower-cased; -1 when the
 * authority is not a plain host name or address with an optional port. */
static int url_authority(const char *rest, char *host, size_t hlen, char *hostport, size_t hplen)
{
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= hplen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = rest[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        if (!ok) /* '@' (credentials), '%', spaces, ... */
            return -1;
        hostport[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    hostport[n] = '\0';
    size_t hn = n;
    const char *colon = hostport[0] == '[' ? strstr(hostport, "]:") : strrchr(hostport, ':');
    if (colon) {
        const char *port = hostport[0] == '[' ? colon + 2 : colon + 1;
        if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
            return -1;
        hn = (size_t)((hostport[0] == '[' ? colon + 1 : colon) - hostport);
    }
    if (hn == 0 || hn >= hlen)
        return -1;
    memcpy(host, hostport, hn);
    host[hn] = '\0';
    return 0;
}

static bool host_allowed(const char *list, const char *host, const char *hostport)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && ((strlen(host) == n && strncasecmp(p, host, n) == 0) ||
                  (strlen(hostport) == n && strncasecmp(p, hostport, n) == 0)))
            return true;
        p += n;
    }
    return false;
}

int ts_dataset_resolve_remote(const char *allowed_hosts, const char *url, ts_dataset *out,
                              ts_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    if (strlen(url) >= 1024)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "url: longer than 1024 characters");
    const char *rest = url + (strncasecmp(url, "https://", 8) == 0 ? 8 : 7);
    char host[256], hostport[264];
    if (url_authority(rest, host, sizeof host, hostport, sizeof hostport) < 0)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST,
                            "url: expected http(s)://host[:port]/path without credentials");
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= ' ' || *c == 0x7f)
            return ts_ctx_error(ctx, TS_EBAD_REQUEST, "url: spaces and control characters are not allowed");
    if (!host_allowed(allowed_hosts, host, hostport))
        return ts_ctx_error(ctx, TS_EFORBIDDEN, "url: host '%s' is not in the allowed hosts", hostport);
    snprintf(out->path, sizeof out->path, "/vsicurl/%s", url);
    VSIStatBufL st;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    int rc = VSIStatExL(out->path, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_SIZE_FLAG);
    CPLPopErrorHandler();
    if (rc != 0)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    out->size = (long long)st.st_size;
    out->mtime_ns = (long long)st.st_mtime * 1000000000LL;
    return 0;
}

/*
 * realpath() costs one lstat per path component on every request, cache HITs
 * included. Each worker thread remembers the last resolutions for a second;
 * the file itself is still stat()ed every time, so a replaced file is seen at
 * once (its size/mtime are part of the cache key). Only a symlink swapped
 * inside the data root could be followed for up to that second, which needs
 * write access to the root.
 */
#define RESOLVE_CACHE 32
#define RESOLVE_TTL_NS 1000000000ull
typedef struct resolved {
    const char *root;
    char url[256];
    char real[512];
    uint64_t at_ns;
} resolved;
static __thread resolved resolve_cache[RESOLVE_CACHE];
static __thread unsigned resolve_next;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int finish_resolve(const char *real, const char *url, ts_dataset *out, ts_ctx *ctx)
{
    struct stat st;
    size_t n = strlen(real);
    if (n >= sizeof out->path || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    memcpy(out->path, real, n + 1);
    out->size = (long long)st.st_size;
    /* The identity of the file's current bytes (cache keys, open handles).
     * mtime alone misses a same-size replacement that keeps it (cp -p,
     * rsync -t, tar x): the change time, which no tool can set, moves on
     * every write and rename, and a file renamed over the old one is a new
     * inode. So this "mtime" is the ctime mixed with the inode number. */
    uint64_t ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec;
    out->mtime_ns = (long long)(ctime_ns ^ ((uint64_t)st.st_ino * 0x9E3779B97F4A7C15ull));
    return 0;
}

int ts_dataset_resolve(const char *data_root, const char *url, ts_dataset *out, ts_ctx *ctx)
{
    out->path[0] = '\0'; /* not the whole 4 KiB: this runs on every request */
    out->size = out->mtime_ns = 0;
    if (!url || !url[0])
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: no url given and no default dataset");
    if (strlen(url) >= 1024)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "url: longer than 1024 characters");
    if (is_virtual(url))
        return ts_ctx_error(ctx, TS_EFORBIDDEN, "url: only files under the data root can be served");

    uint64_t now = mono_ns();
    /* Newest first: a client usually asks for the dataset it just asked for. */
    for (unsigned k = 1; k <= RESOLVE_CACHE; k++) {
        resolved *r = &resolve_cache[(resolve_next - k) % RESOLVE_CACHE];
        if (r->root == data_root && now - r->at_ns < RESOLVE_TTL_NS && r->url[0] == url[0] &&
            strcmp(r->url, url) == 0 && strncmp(r->real, data_root, strlen(data_root)) == 0 &&
            r->real[strlen(data_root)] == '/')
            return finish_resolve(r->real, url, out, ctx);
    }

    char joined[PATH_MAX * 2 + 2];
    if (url[0] == '/')
        snprintf(joined, sizeof joined, "%s", url);
    else
        snprintf(joined, sizeof joined, "%s/%s", data_root, url);
    char real[PATH_MAX];
    size_t rl = strlen(data_root);
    /* The same answer for "missing" and "outside the root" so that probing
     * cannot reveal which files exist elsewhere. */
    if (!realpath(joined, real) || strncmp(real, data_root, rl) != 0 || real[rl] != '/')
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    int rc = finish_resolve(real, url, out, ctx);
    if (rc == 0 && strlen(url) < sizeof resolve_cache[0].url && strlen(real) < sizeof resolve_cache[0].real) {
        resolved *r = &resolve_cache[resolve_next++ % RESOLVE_CACHE];
        r->root = data_root;
        strcpy(r->url, url);
        strcpy(r->real, real);
        r->at_ns = now;
    }
    return rc;
}
