/* Dataset resolution: a changed file must be seen by the very next call even
 * though its identity is memoised behind an inotify watch (src/dataset.c). */
#include "ts_reader.h"
#include "ts_test.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static char root[PATH_MAX];

/* A fresh directory per test, resolved like the server resolves its root. */
static bool make_root(void)
{
    char tmpl[] = "/tmp/ts-dataset-XXXXXX";
    return mkdtemp(tmpl) && realpath(tmpl, root);
}

static bool rm_rf(const char *dir)
{
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0;
}

static void remove_root(void)
{
    if (!rm_rf(root))
        fprintf(stderr, "  could not remove %s\n", root);
}

/* Whether the memo can be used here at all (the same list as src/dataset.c):
 * elsewhere every call stat()s and the "no stat" checks do not apply. */
static bool watchable(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return false;
    switch ((unsigned)sf.f_type) {
    case 0xEF53u:
    case 0x58465342u:
    case 0x9123683Eu:
    case 0x01021994u:
    case 0x794C7630u:
    case 0xF2F52010u:
    case 0x2FC12FC1u:
    case 0x858458F6u:
        return true;
    default:
        return false;
    }
}

static bool write_file(const char *path, int flags, size_t n)
{
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    if (fd < 0)
        return false;
    bool ok = n <= sizeof buf && write(fd, buf, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

static bool replace_by_rename(const char *name, size_t n)
{
    char tmp[PATH_MAX + 8], dst[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s/.tmp", root);
    snprintf(dst, sizeof dst, "%s/%s", root, name);
    return write_file(tmp, O_TRUNC, n) && rename(tmp, dst) == 0;
}

static long long resolve_size(const char *url)
{
    ts_dataset ds;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    if (ts_dataset_resolve(root, url, &ds, &ctx) < 0)
        return ctx.status == 404 ? -404 : -1;
    return ds.size;
}

static long long stats_now(void)
{
    ts_dataset_stats s;
    ts_dataset_get_stats(&s);
    return s.stats;
}

static void quiet_hits_do_not_stat(void)
{
    CHECK(make_root());
    bool memo = watchable(root);
    CHECK(replace_by_rename("d.tif", 100));
    CHECK_INT(resolve_size("d.tif"), 100);
    long long before = stats_now();
    for (int i = 0; i < 1000; i++)
        CHECK_INT(resolve_size("d.tif"), 100);
    /* The one-second memo may expire once on a slow (sanitised) run. */
    if (memo)
        CHECK(stats_now() - before <= 2);
    else
        fprintf(stderr, "  %s is not a watched file system: stat() per call\n", root);
    remove_root();
}

/* Each kind of change, immediately followed by a resolution. */
static void every_change_is_seen_at_once(void)
{
    CHECK(make_root());
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/d.tif", root);
    CHECK(replace_by_rename("d.tif", 100));
    for (int i = 0; i < 200; i++) {
        CHECK_INT(resolve_size("d.tif"), 100);
        CHECK(replace_by_rename("d.tif", 101));
        CHECK_INT(resolve_size("d.tif"), 101);
        CHECK(write_file(path, O_APPEND, 1)); /* in place, same inode */
        CHECK_INT(resolve_size("d.tif"), 102);
        CHECK(chmod(path, i % 2 ? 0644 : 0600) == 0);
        CHECK_INT(resolve_size("d.tif"), 102);
        CHECK(truncate(path, 100) == 0);
        CHECK_INT(resolve_size("d.tif"), 100);
        CHECK(unlink(path) == 0);
        CHECK_INT(resolve_size("d.tif"), -404);
        CHECK(write_file(path, O_TRUNC, 100));
    }
    remove_root();
}

/* A grandparent directory swapped under a memoised path: no event reaches
 * the file's own directory, it is in the root, which is watched too. */
static void swapped_parent_directory_is_seen(void)
{
    CHECK(make_root());
    char a[PATH_MAX + 8], b[PATH_MAX + 8], old[PATH_MAX + 8], file[PATH_MAX + 16];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/a/b", root);
    snprintf(old, sizeof old, "%s/old", root);
    snprintf(file, sizeof file, "%s/a/b/d.tif", root);
    CHECK(mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0);
    CHECK(write_file(file, O_TRUNC, 100));
    for (int i = 0; i < 50; i++) {
        size_t n = 100 + (size_t)(i % 2);
        CHECK_INT(resolve_size("a/b/d.tif"), (long long)n);
        CHECK_INT(resolve_size("a/b/d.tif"), (long long)n);
        CHECK(rename(a, old) == 0);
        CHECK(mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0);
        CHECK(write_file(file, O_TRUNC, 201 - n));
        CHECK_INT(resolve_size("a/b/d.tif"), (long long)(201 - n));
        CHECK(rm_rf(old));
    }
    remove_root();
}

/* Threads resolve while the file grows one byte per version, replaced by
 * rename or appended to in place. A resolution that starts after version v
 * was published must never see an older one: this is where an event read by
 * one thread but not yet counted would let another reuse a stale identity. */
static unsigned published; /* __atomic */
static bool stop_readers;  /* __atomic */
static int stale;          /* __atomic */

static void *reader(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE)) {
        unsigned v = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
        long long size = resolve_size("d.tif");
        if (size < 100 + (long long)v) {
            fprintf(stderr, "  version %u published, size %lld resolved\n", v, size);
            __atomic_store_n(&stale, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void concurrent_readers_never_see_an_old_version(void)
{
    CHECK(make_root());
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/d.tif", root);
    CHECK(replace_by_rename("d.tif", 100));
    enum { READERS = 3, VERSIONS = 3000 };
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        CHECK(pthread_create(&t[i], NULL, reader, NULL) == 0);
    bool ok = true;
    for (unsigned v = 1; v <= VERSIONS && ok; v++) {
        ok = v % 2 ? replace_by_rename("d.tif", 100 + v) : write_file(path, O_APPEND, 1);
        __atomic_store_n(&published, v, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&stop_readers, true, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    CHECK(ok);
    CHECK_INT(__atomic_load_n(&stale, __ATOMIC_RELAXED), 0);
    remove_root();
}

TS_TEST_MAIN(TEST(quiet_hits_do_not_stat), TEST(every_change_is_seen_at_once),
             TEST(swapped_parent_directory_is_seen),
             TEST(concurrent_readers_never_see_an_old_version))
