/* Resolving user dataset paths safely inside the data root (see ts_reader.h). */
#include "ts_reader.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Strings GDAL would interpret as something other than a local file. */
static bool is_virtual(const char *url)
{
    static const char *const prefixes[] = {"/vsi", "vsi", "http:", "https:", "ftp:", "s3:", "gs:",
                                           "file:", "MEM:::", "GTIFF_DIR:", "GTIFF_RAW:"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncasecmp(url, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    /* Driver-prefixed connection strings ("DRIVER:...") and embedded options. */
    const char *colon = strchr(url, ':');
    return colon != NULL;
}

int ts_dataset_resolve(const char *data_root, const char *url, ts_dataset *out, ts_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    if (!url || !url[0])
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: no url given and no default dataset");
    if (strlen(url) >= 1024)
        return ts_ctx_error(ctx, TS_EBAD_REQUEST, "url: longer than 1024 characters");
    if (is_virtual(url))
        return ts_ctx_error(ctx, TS_EFORBIDDEN, "url: only files under the data root can be served");

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
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    snprintf(out->path, sizeof out->path, "%s", real);
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
