/* Resolving user dataset paths safely inside the data root (see ts_reader.h). */
#include "ts_reader.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

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
 * Two per-thread memos keep cache HITs off the file system.
 *
 * realpath() costs one lstat per path component: each worker thread
 * remembers its last resolutions for a second. Only a symlink swapped inside
 * the data root can be followed for up to that second, which needs write
 * access to the root.
 *
 * The file's identity (size and change stamp) is part of every cache key, so
 * a replaced file must be seen by the very next request. A stat() per request
 * did that; instead, one inotify instance watches the directories of the
 * files served, from the file's own up to the data root (a renamed or
 * replaced parent directory is an event in its parent). Every read() that
 * returns events bumps a process-wide generation, and a thread reuses the
 * identity it stat()ed only while the generation has not moved since before
 * it added the watches and made that stat(). A HIT then costs one
 * non-blocking read() of an empty queue instead of a path walk.
 *
 * The kernel queues an event inside the syscall that changes the directory
 * entry or the file, so a request that starts after that syscall returned
 * finds the event in the queue, or finds it taken by another thread. That
 * thread counts itself in `watch_draining` before its read() and only leaves
 * after bumping the generation; the queue's lock orders its read() before our
 * empty one, so we see the count (and stat()) or the new generation.
 *
 * Where inotify cannot be trusted the file is stat()ed on every request, as
 * before: without an instance or a watch (limits reached, no read access to
 * a directory), and on file systems missing from local_fs(). On NFS, CIFS,
 * 9p or FUSE (sshfs, Docker Desktop's file sharing, ...) another machine's
 * writes raise no event here.
 *
 * Known limits, each one bounded by the one-second memo (the full resolution
 * and stat() run again when it expires), and each needing write access to
 * the files served: a write through a hard link in another directory, or
 * through a shared mmap, raises no event in the watched directories, and
 * neither does a file system mounted over one of them (the limits of any
 * inotify-based server).
 *
 * Cost: any event in a watched directory, even about another file, costs
 * each thread one stat() (and the watches re-added) per dataset it serves; a
 * directory written to all the time brings back a stat() per request and a
 * little more. The watches stay until their directory goes (at most one per
 * directory holding a served file, and each of its parents up to the root).
 * The instance lives as long as the process (the kernel closes it at exit).
 */
#define RESOLVE_CACHE 32
#define RESOLVE_TTL_NS 1000000000ull
typedef struct resolved {
    const char *root;
    char url[256];
    char real[512];
    size_t real_len;
    uint64_t at_ns;
    bool watch; /* every directory up to the root is on a local fs and watched */
    bool known; /* size/mtime_ns hold while watch_gen == gen */
    uint64_t gen;
    long long size, mtime_ns;
} resolved;
static __thread resolved resolve_cache[RESOLVE_CACHE];
static __thread unsigned resolve_next;

#define WATCH_MASK                                                                                 \
    (IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM |              \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
static int watch_fd = -1;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static uint64_t watch_gen;           /* __atomic: reads that returned events */
static unsigned watch_draining;      /* __atomic: threads between read() and the gen bump */
static long long stat_calls, events; /* __atomic, for /metrics */

static void watch_init(void)
{
    watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

/* File systems whose every change goes through this kernel's VFS, so it
 * raises inotify events. Network and FUSE file systems are missing on
 * purpose: another machine's writes raise none here. */
static bool local_fs(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return false;
    switch ((uint32_t)sf.f_type) {
    case 0xEF53u:     /* ext2/3/4 */
    case 0x58465342u: /* xfs */
    case 0x9123683Eu: /* btrfs */
    case 0x01021994u: /* tmpfs */
    case 0x794C7630u: /* overlayfs */
    case 0xF2F52010u: /* f2fs */
    case 0x2FC12FC1u: /* zfs */
    case 0x858458F6u: /* ramfs */
        return true;
    default:
        return false;
    }
}

/* Watches every directory from real's up to the root (rl: the root's
 * length); check_fs also requires each to be on a local file system, which
 * only a fresh resolution asks (a mount over one is a documented limit).
 * Adding a watch that exists returns it, and re-adding after a gen change
 * replaces one the kernel dropped with its directory. */
static bool watch_dirs(const char *real, size_t real_len, size_t rl, bool check_fs)
{
    pthread_once(&watch_once, watch_init);
    if (watch_fd < 0)
        return false;
    char dir[sizeof((resolved *)0)->real];
    if (real_len >= sizeof dir)
        return false;
    memcpy(dir, real, real_len + 1);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < rl)
            return true;
        *slash = '\0';
        if ((check_fs && !local_fs(dir)) || inotify_add_watch(watch_fd, dir, WATCH_MASK) < 0)
            return false;
    }
}

/* Empties the event queue; false when an identity must not be reused: a
 * read failed, events keep coming, or another thread holds events it has
 * not counted in watch_gen yet. */
static bool watch_quiet(void)
{
    /* Fits any single event (a name is at most NAME_MAX) and a burst of them. */
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int i = 0; i < 8; i++) {
        __atomic_add_fetch(&watch_draining, 1, __ATOMIC_SEQ_CST);
        ssize_t n = read(watch_fd, buf, sizeof buf);
        int err = errno;
        if (n > 0) {
            __atomic_add_fetch(&watch_gen, 1, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&events, 1, __ATOMIC_RELAXED);
        }
        __atomic_sub_fetch(&watch_draining, 1, __ATOMIC_SEQ_CST);
        if (n <= 0)
            return n < 0 && err == EAGAIN &&
                   __atomic_load_n(&watch_draining, __ATOMIC_SEQ_CST) == 0;
    }
    return false;
}

void ts_dataset_get_stats(ts_dataset_stats *out)
{
    out->stats = __atomic_load_n(&stat_calls, __ATOMIC_RELAXED);
    out->change_events = __atomic_load_n(&events, __ATOMIC_RELAXED);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int finish_resolve(const char *real, size_t n, const char *url, ts_dataset *out, ts_ctx *ctx)
{
    struct stat st;
    if (n >= sizeof out->path)
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    __atomic_add_fetch(&stat_calls, 1, __ATOMIC_RELAXED);
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
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

/* Identity of a memoised path: reused while no event came, else stat()ed
 * (after re-adding the watches, with the generation read before both). */
static int memo_identity(resolved *r, size_t rl, const char *url, ts_dataset *out, ts_ctx *ctx)
{
    if (r->known && watch_quiet() && __atomic_load_n(&watch_gen, __ATOMIC_SEQ_CST) == r->gen) {
        memcpy(out->path, r->real, r->real_len + 1);
        out->size = r->size;
        out->mtime_ns = r->mtime_ns;
        return 0;
    }
    if (!r->watch)
        return finish_resolve(r->real, r->real_len, url, out, ctx);
    uint64_t g0 = __atomic_load_n(&watch_gen, __ATOMIC_SEQ_CST);
    r->watch = watch_dirs(r->real, r->real_len, rl, false);
    int rc = finish_resolve(r->real, r->real_len, url, out, ctx);
    r->known = r->watch && rc == 0;
    r->gen = g0;
    r->size = out->size;
    r->mtime_ns = out->mtime_ns;
    return rc;
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
    size_t rl = strlen(data_root);
    /* Newest first: a client usually asks for the dataset it just asked for. */
    for (unsigned k = 1; k <= RESOLVE_CACHE; k++) {
        resolved *r = &resolve_cache[(resolve_next - k) % RESOLVE_CACHE];
        if (r->root == data_root && now - r->at_ns < RESOLVE_TTL_NS && r->url[0] == url[0] &&
            strcmp(r->url, url) == 0 && strncmp(r->real, data_root, rl) == 0 && r->real[rl] == '/')
            return memo_identity(r, rl, url, out, ctx);
    }

    char joined[PATH_MAX * 2 + 2];
    if (url[0] == '/')
        snprintf(joined, sizeof joined, "%s", url);
    else
        snprintf(joined, sizeof joined, "%s/%s", data_root, url);
    char real[PATH_MAX];
    /* The same answer for "missing" and "outside the root" so that probing
     * cannot reveal which files exist elsewhere. */
    if (!realpath(joined, real) || strncmp(real, data_root, rl) != 0 || real[rl] != '/')
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "dataset not found: %s", url);
    size_t n = strlen(real);
    bool fits = strlen(url) < sizeof resolve_cache[0].url && n < sizeof resolve_cache[0].real;
    uint64_t g0 = __atomic_load_n(&watch_gen, __ATOMIC_SEQ_CST);
    bool watch = fits && watch_dirs(real, n, rl, true);
    int rc = finish_resolve(real, n, url, out, ctx);
    if (rc == 0 && fits) {
        resolved *r = &resolve_cache[resolve_next++ % RESOLVE_CACHE];
        r->root = data_root;
        strcpy(r->url, url);
        memcpy(r->real, real, n + 1);
        r->real_len = n;
        r->at_ns = now;
        r->watch = r->known = watch;
        r->gen = g0;
        r->size = out->size;
        r->mtime_ns = out->mtime_ns;
    }
    return rc;
}
