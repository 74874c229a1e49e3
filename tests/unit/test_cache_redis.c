/* Redis backend against real redis-server processes that this test starts
 * on free loopback ports (and always kills: at the end of each test, at
 * exit, and through PR_SET_PDEATHSIG if the test itself dies). */
#include "ts_cache.h"
#include "ts_common.h"
#include "ts_request.h"
#include "ts_test.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_BIN "redis-server"
#define MAX_ARGS 24

/* ---- redis-server processes ---- */

static pid_t servers[32];
static size_t nservers;
static pid_t main_pid;
static int main_port_no;
static char unix_path[108];

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double ms_since(uint64_t t0)
{
    return (double)(ts_now_ns() - t0) / 1e6;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static redisContext *raw_connect(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, (struct timeval){5, 0});
    return c;
}

static void kill_pid(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static void kill_all(void)
{
    for (size_t i = 0; i < nservers; i++)
        kill_pid(servers[i]);
    nservers = 0;
    kill_pid(main_pid);
    main_pid = 0;
    if (unix_path[0])
        unlink(unix_path);
}

/* Starts redis-server on port with extra "--name value" arguments (NULL
 * terminated) and waits until it answers. Returns the pid or -1. */
static pid_t start_redis(int port, ...)
{
    static bool atexit_done;
    if (!atexit_done) {
        atexit(kill_all);
        atexit_done = true;
    }
    const char *argv[MAX_ARGS];
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    int n = 0;
    argv[n++] = REDIS_BIN;
    argv[n++] = "--port";
    argv[n++] = portbuf;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = "/tmp";
    va_list ap;
    va_start(ap, port);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Die with the test, whatever kills it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execvp(REDIS_BIN, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) { /* up to 5 s */
        redisContext *c = raw_connect(port);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            bool up = r != NULL; /* NOAUTH also proves it is up */
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (up)
                return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        sleep_ms(20);
    }
    kill_pid(pid);
    return -1;
}

static pid_t start_tracked(int port, const char *a1, const char *a2, const char *a3, const char *a4)
{
    pid_t pid = start_redis(port, a1, a2, a3, a4, (const char *)NULL);
    if (pid > 0 && nservers < sizeof servers / sizeof servers[0])
        servers[nservers++] = pid;
    return pid;
}

static void stop_tracked(pid_t pid)
{
    for (size_t i = 0; i < nservers; i++)
        if (servers[i] == pid) {
            kill_pid(pid);
            servers[i] = servers[--nservers];
            return;
        }
}

static void stop_since(size_t mark)
{
    while (nservers > mark)
        kill_pid(servers[--nservers]);
}

/* The shared server most tests use (TCP and a unix socket). */
static int main_port(void)
{
    if (main_pid > 0)
        return main_port_no;
    main_port_no = free_port();
    snprintf(unix_path, sizeof unix_path, "/tmp/tessera-cache-test-%d.sock", (int)getpid());
    main_pid = start_redis(main_port_no, "--unixsocket", unix_path, "--unixsocketperm", "700",
                           (const char *)NULL);
    return main_pid > 0 ? main_port_no : -1;
}

static ts_cache_backend *backend_at(int port, const char *extra)
{
    char ep[256];
    snprintf(ep, sizeof ep, "redis://127.0.0.1:%d%s", port, extra ? extra : "/0");
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_cache_backend *b = ts_cache_redis_create(ep, &ctx);
    if (!b)
        fprintf(stderr, "  create(%s): %s\n", ep, ctx.detail);
    return b;
}

/* Each test kills the servers it started, also when a CHECK returns early. */
#define REDIS_TEST(name)                                                                           \
    static void name##_body(void);                                                                 \
    static void name(void)                                                                         \
    {                                                                                              \
        size_t mark = nservers;                                                                    \
        name##_body();                                                                             \
        stop_since(mark);                                                                          \
    }                                                                                              \
    static void name##_body(void)

static int bset(ts_cache_backend *b, const char *key, const void *val, size_t n, unsigned ttl)
{
    ts_blob *v = ts_blob_from(val, n);
    int rc = b->set(b, key, strlen(key), v, ttl);
    ts_blob_unref(v);
    return rc;
}

static int bget_is(ts_cache_backend *b, const char *key, const char *want)
{
    ts_blob *v = NULL;
    int rc = b->get(b, key, strlen(key), &v);
    int ok =
        want ? rc == TS_CGET_HIT && v->size == strlen(want) && memcmp(v->data, want, v->size) == 0
             : rc == TS_CGET_MISS;
    ts_blob_unref(v);
    return ok;
}

static int bget(ts_cache_backend *b, const char *key)
{
    ts_blob *v = NULL;
    int rc = b->get(b, key, strlen(key), &v);
    ts_blob_unref(v);
    return rc;
}

/* ---- tests ---- */

static void endpoint_parsing(void)
{
    static const char *bad[] = {
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:70000",
        "redis://h:12x",
        "redis://h:1/x",
        "redis://h:1/0?foo=1",
        "redis://h:1/0?timeout=abc",
        "redis://h:1/0?timeout=0",
        "redis://h:1/0?timeout",
        "redis://user@h:1",
        "redis://[::1",
        "unix://relative.sock",
        "unix://",
        "unix:///s.sock?db=x",
        "redis://:%zz@h:1/0",
        NULL,
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        ts_ctx ctx;
        ts_ctx_init(&ctx);
        ts_cache_backend *b = ts_cache_redis_create(bad[i], &ctx);
        if (b) {
            fprintf(stderr, "  accepted bad endpoint '%s'\n", bad[i] ? bad[i] : "(null)");
            b->destroy(b);
            CHECK(0);
        }
        CHECK(ctx.code != 0);
        CHECK(strstr(ctx.detail, "cache endpoint") != NULL);
    }
    /* The message never repeats a password. */
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK(ts_cache_redis_create("redis://:s3cret@h:99999/0", &ctx) == NULL);
    CHECK(strstr(ctx.detail, "s3cret") == NULL);

    /* Valid forms create a backend even with nothing listening: an
     * unreachable Redis is an outage, not a configuration error. */
    int dead = free_port();
    char ep[256];
    static const char *good[] = {"redis://127.0.0.1:%d",
                                 "redis://127.0.0.1:%d/",
                                 "redis://127.0.0.1:%d/3?timeout=100&connect_timeout=50",
                                 "redis://:pw@127.0.0.1:%d/0",
                                 "redis://user:p%%40w@127.0.0.1:%d/1",
                                 "redis://[::1]:%d/0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(ep, sizeof ep, good[i], dead);
        ts_ctx_init(&ctx);
        uint64_t t0 = ts_now_ns();
        ts_cache_backend *b = ts_cache_redis_create(ep, &ctx);
        if (!b)
            fprintf(stderr, "  rejected '%s': %s\n", ep, ctx.detail);
        CHECK(b != NULL);
        CHECK(ms_since(t0) < 600);
        CHECK_STR(b->name, "redis");
        CHECK_INT(bget(b, "k"), TS_CGET_ERROR);
        b->destroy(b);
    }
    ts_ctx_init(&ctx);
    ts_cache_backend *b = ts_cache_redis_create("unix:///nonexistent/x.sock?db=2&timeout=50", &ctx);
    CHECK(b != NULL);
    CHECK_INT(bget(b, "k"), TS_CGET_ERROR);
    b->destroy(b);
}

REDIS_TEST(set_get_ttl)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *b = backend_at(port, NULL);
    CHECK(b != NULL);
    CHECK(bget_is(b, "t:missing", NULL));
    CHECK_INT(bset(b, "t:ttl", "v1", 2, 100), 0);
    CHECK(bget_is(b, "t:ttl", "v1"));
    CHECK_INT(bset(b, "t:forever", "v2", 2, 0), 0);
    CHECK(bget_is(b, "t:forever", "v2"));
    redisContext *raw = raw_connect(port);
    CHECK(raw != NULL);
    redisReply *r = redisCommand(raw, "TTL t:ttl");
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 90 && r->integer <= 100);
    freeReplyObject(r);
    r = redisCommand(raw, "TTL t:forever");
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == -1);
    freeReplyObject(r);
    redisFree(raw);
    b->destroy(b);
}

REDIS_TEST(binary_values)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *b = backend_at(port, NULL);
    CHECK(b != NULL);
    size_t n = 1 << 20;
    unsigned char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 131 + (i >> 9));
    big[0] = big[n / 2] = big[n - 1] = 0;
    ts_blob *v = ts_blob_from(big, n);
    static const char key[] = "bin:\0key\r\n with spaces";
    CHECK_INT(b->set(b, key, sizeof key - 1, v, 60), 0);
    ts_blob *out = NULL;
    CHECK_INT(b->get(b, key, sizeof key - 1, &out), TS_CGET_HIT);
    CHECK_INT(out->size, n);
    CHECK(memcmp(out->data, big, n) == 0);
    ts_blob_unref(out);
    out = NULL;
    CHECK_INT(b->get(b, key, 4, &out), TS_CGET_MISS); /* "bin:" alone is another key */
    ts_blob_unref(v);
    free(big);
    /* An empty value is a value. */
    CHECK_INT(bset(b, "bin:empty", "", 0, 60), 0);
    CHECK(bget_is(b, "bin:empty", ""));
    b->destroy(b);
}

REDIS_TEST(del_prefix_scans)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *b = backend_at(port, NULL);
    CHECK(b != NULL);
    char key[64];
    for (int i = 0; i < 2500; i++) {
        snprintf(key, sizeof key, "dp:a:%d", i);
        CHECK_INT(bset(b, key, "v", 1, 300), 0);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "dp:b:%d", i);
        CHECK_INT(bset(b, key, "v", 1, 300), 0);
    }
    /* Glob characters in a prefix are literal. */
    CHECK_INT(bset(b, "dp:[x]*:1", "v", 1, 300), 0);
    CHECK_INT(bset(b, "dp:[x]y:1", "v", 1, 300), 0);
    CHECK_INT(bset(b, "dp:x:1", "v", 1, 300), 0);
    long long del = 0;
    uint64_t t0 = ts_now_ns();
    CHECK_INT(b->del_prefix(b, "dp:a:", 5, &del), 0);
    printf("  del_prefix of 2500 keys: %.1f ms\n", ms_since(t0));
    CHECK_INT(del, 2500);
    CHECK(bget_is(b, "dp:a:7", NULL));
    CHECK(bget_is(b, "dp:b:7", "v"));
    CHECK_INT(b->del_prefix(b, "dp:[x]*:", 8, &del), 0);
    CHECK_INT(del, 1);
    CHECK(bget_is(b, "dp:[x]y:1", "v"));
    CHECK(bget_is(b, "dp:x:1", "v"));
    CHECK_INT(b->del_prefix(b, "dp:", 3, &del), 0);
    CHECK_INT(del, 12);
    b->destroy(b);
}

REDIS_TEST(lock_unlock)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *a = backend_at(port, NULL), *b = backend_at(port, NULL);
    CHECK(a && b);
    CHECK(a->try_lock && a->unlock);
    const char *k = "lk:tile";
    size_t n = strlen(k);
    CHECK_INT(a->try_lock(a, k, n, 5000), 1);
    CHECK_INT(a->try_lock(a, k, n, 5000), 0);
    CHECK_INT(b->try_lock(b, k, n, 5000), 0);
    /* Only the holder's unlock releases it. */
    b->unlock(b, k, n);
    CHECK_INT(b->try_lock(b, k, n, 5000), 0);
    a->unlock(a, k, n);
    CHECK_INT(b->try_lock(b, k, n, 100), 1);
    /* The lease expires on its own (a crashed holder). */
    sleep_ms(250);
    CHECK_INT(a->try_lock(a, k, n, 5000), 1);
    a->unlock(a, k, n);
    /* The lock lives beside the entry, not on it. */
    CHECK(bget_is(a, k, NULL));
    a->destroy(a);
    b->destroy(b);
}

REDIS_TEST(two_instances_share_entries)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *a = backend_at(port, NULL), *b = backend_at(port, NULL);
    CHECK(a && b);
    CHECK_INT(bset(a, "share:1", "from a", 6, 60), 0);
    CHECK(bget_is(b, "share:1", "from a"));
    a->destroy(a);
    b->destroy(b);
}

typedef struct tile_renderer {
    int calls;
} tile_renderer;

static int render_tile(void *ud, ts_response *resp, ts_ctx *ctx)
{
    (void)ctx;
    tile_renderer *t = ud;
    t->calls++;
    ts_resp_set_body(resp, 200, "image/png", ts_blob_from("\x89PNG\0tile", 9));
    return 0;
}

REDIS_TEST(front_over_redis)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache *ca =
        ts_cache_create(backend_at(port, NULL), &(ts_cache_opts){.namespace_ = "t", .ttl_s = 60});
    ts_cache *cb = ts_cache_create(
        backend_at(port, NULL),
        &(ts_cache_opts){.namespace_ = "t", .ttl_s = 60, .cross_instance_lock = true});
    CHECK(ca && cb);
    ts_key_input in = {.namespace_ = "t", .dataset = "/d.tif", .route = "front"};
    ts_cache_key key;
    CHECK_INT(ts_cache_key_build(&in, &key), 0);
    CHECK_INT(ts_cache_delete_prefix(ca, key.str, key.dataset_prefix_len, NULL), 0);
    ts_request req;
    memset(&req, 0, sizeof req);
    tile_renderer t = {0};
    ts_response r;
    ts_ctx ctx;

    ts_resp_init(&r);
    ts_ctx_init(&ctx);
    CHECK_INT(ts_cache_serve(cb, &key, &req, true, render_tile, &t, &r, &ctx), 0);
    CHECK_INT(r.cache, TS_CACHE_OUT_MISS);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", ts_resp_header(&r, "ETag"));
    ts_resp_clear(&r);

    ts_ctx_init(&ctx);
    CHECK_INT(ts_cache_serve(ca, &key, &req, true, render_tile, &t, &r, &ctx), 0);
    CHECK_INT(r.cache, TS_CACHE_OUT_HIT);
    CHECK_INT(t.calls, 1);
    CHECK_INT(r.body_len, 9);
    CHECK(memcmp(r.body->data + r.body_off, "\x89PNG\0tile", 9) == 0);
    CHECK_STR(ts_resp_header(&r, "ETag"), etag);
    CHECK_STR(r.content_type, "image/png");
    ts_resp_clear(&r);

    ts_cache_stats st;
    ts_cache_get_stats(ca, &st);
    CHECK_STR(st.backend, "redis");
    CHECK_INT(st.hits, 1);
    CHECK(st.entries >= 1);
    CHECK(st.bytes > 0);
    ts_cache_destroy(ca);
    ts_cache_destroy(cb);
}

REDIS_TEST(tiered_over_redis)
{
    int port = main_port();
    CHECK(port > 0);
    ts_cache_backend *t1 =
        ts_cache_tiered_create(ts_cache_memory_create(1 << 20, NULL, NULL), backend_at(port, NULL));
    ts_cache_backend *t2 =
        ts_cache_tiered_create(ts_cache_memory_create(1 << 20, NULL, NULL), backend_at(port, NULL));
    CHECK(t1 && t2);
    CHECK(t1->try_lock != NULL);
    CHECK_INT(bset(t1, "tier:1", "x", 1, 60), 0);
    CHECK(bget_is(t2, "tier:1", "x")); /* from L2, now also in t2's L1 */
    long long del = 0;
    CHECK_INT(t1->del_prefix(t1, "tier:", 5, &del), 0);
    CHECK_INT(del, 1);
    CHECK(bget_is(t1, "tier:1", NULL));
    CHECK(bget_is(t2, "tier:1", "x")); /* t2's L1 lags, by design, up to its cap */
    t1->destroy(t1);
    t2->destroy(t2);
}

REDIS_TEST(password_db_and_unix_socket)
{
    int port = free_port();
    pid_t pid = start_tracked(port, "--requirepass", "p@ss:w/rd", NULL, NULL);
    CHECK(pid > 0);
    ts_cache_backend *b = backend_at(port, "/0");
    CHECK(b != NULL);
    CHECK_INT(bget(b, "k"), TS_CGET_ERROR); /* NOAUTH */
    b->destroy(b);

    char ep[256];
    snprintf(ep, sizeof ep, "redis://:wrong@127.0.0.1:%d/0", port);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    b = ts_cache_redis_create(ep, &ctx);
    CHECK(b != NULL);
    CHECK_INT(bget(b, "k"), TS_CGET_ERROR);
    b->destroy(b);

    snprintf(ep, sizeof ep, "redis://:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d/3", port);
    b = ts_cache_redis_create(ep, &ctx);
    CHECK(b != NULL);
    CHECK_INT(bset(b, "pw:k", "secret-v", 8, 60), 0);
    CHECK(bget_is(b, "pw:k", "secret-v"));
    b->destroy(b);
    /* It went to database 3. */
    redisContext *raw = raw_connect(port);
    CHECK(raw != NULL);
    redisReply *r = redisCommand(raw, "AUTH %s", "p@ss:w/rd");
    freeReplyObject(r);
    r = redisCommand(raw, "GET pw:k");
    CHECK(r && r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = redisCommand(raw, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(raw, "GET pw:k");
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "secret-v") == 0);
    freeReplyObject(r);
    redisFree(raw);

    /* unix:// on the shared server, database from the query. */
    CHECK(main_port() > 0);
    snprintf(ep, sizeof ep, "unix://%s?db=2", unix_path);
    b = ts_cache_redis_create(ep, &ctx);
    CHECK(b != NULL);
    CHECK_INT(bset(b, "ux:k", "via unix", 8, 60), 0);
    CHECK(bget_is(b, "ux:k", "via unix"));
    b->destroy(b);
    ts_cache_backend *tcp2 = backend_at(main_port(), "/2");
    CHECK(bget_is(tcp2, "ux:k", "via unix"));
    tcp2->destroy(tcp2);
}

/* Waits until the backend answers again; returns the milliseconds it took or
 * -1. Every call during the wait must itself be quick. */
static double wait_recovered(ts_cache_backend *b, double limit_ms, double *worst_call_ms)
{
    uint64_t t0 = ts_now_ns();
    while (ms_since(t0) < limit_ms) {
        uint64_t c0 = ts_now_ns();
        int rc = bget(b, "outage:k");
        double call = ms_since(c0);
        if (call > *worst_call_ms)
            *worst_call_ms = call;
        if (rc != TS_CGET_ERROR)
            return ms_since(t0);
        sleep_ms(20);
    }
    return -1;
}

REDIS_TEST(outage_and_recovery)
{
    int port = free_port();
    pid_t pid = start_tracked(port, NULL, NULL, NULL, NULL);
    CHECK(pid > 0);
    ts_cache_backend *b = backend_at(port, "/0");
    CHECK(b != NULL);
    CHECK_INT(bset(b, "outage:k", "v", 1, 60), 0);
    CHECK(bget_is(b, "outage:k", "v"));

    stop_tracked(pid);
    uint64_t t0 = ts_now_ns();
    int rc = bget(b, "outage:k");
    double first = ms_since(t0);
    CHECK_INT(rc, TS_CGET_ERROR);
    CHECK(first < 600);
    /* During the backoff: immediate errors, no connect attempts. */
    double worst_fast = 0;
    for (int i = 0; i < 50; i++) {
        uint64_t c0 = ts_now_ns();
        CHECK_INT(bget(b, "outage:k"), TS_CGET_ERROR);
        CHECK(bset(b, "outage:k", "x", 1, 0) < 0);
        double ms = ms_since(c0);
        if (ms > worst_fast)
            worst_fast = ms;
    }
    CHECK(worst_fast < 50);
    /* Keep failing for a while so the backoff grows past its minimum. */
    double worst = 0;
    CHECK(wait_recovered(b, 800, &worst) < 0);
    CHECK(worst < 600);

    pid = start_tracked(port, NULL, NULL, NULL, NULL);
    CHECK(pid > 0);
    double took = wait_recovered(b, 8000, &worst);
    printf("  outage: first error after %.1f ms, backoff errors <= %.2f ms, slowest call %.1f ms, "
           "recovered %.0f ms after restart\n",
           first, worst_fast, worst, took);
    CHECK(took >= 0);
    CHECK(worst < 600);
    CHECK_INT(bset(b, "outage:k", "back", 4, 60), 0);
    CHECK(bget_is(b, "outage:k", "back"));
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK(st.errors > 50);
    b->destroy(b);
}

typedef struct sleeper {
    int port;
    int ok;
} sleeper;

static void *debug_sleep(void *p)
{
    sleeper *s = p;
    redisContext *raw = raw_connect(s->port);
    if (!raw)
        return NULL;
    redisReply *r = redisCommand(raw, "DEBUG SLEEP 2");
    s->ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(raw);
    return NULL;
}

REDIS_TEST(stalled_server_times_out)
{
    int port = free_port();
    pid_t pid = start_tracked(port, "--enable-debug-command", "yes", NULL, NULL);
    CHECK(pid > 0);
    ts_cache_backend *b = backend_at(port, "/0");
    CHECK(b != NULL);
    CHECK_INT(bset(b, "stall:k", "v", 1, 60), 0);
    CHECK(bget_is(b, "stall:k", "v"));

    sleeper s = {port, 0};
    pthread_t th;
    pthread_create(&th, NULL, debug_sleep, &s);
    sleep_ms(300); /* let DEBUG SLEEP reach the server, even on a loaded machine */
    uint64_t t0 = ts_now_ns();
    int rc = bget(b, "stall:k");
    double first = ms_since(t0);
    CHECK_INT(rc, TS_CGET_ERROR);
    CHECK(first >= 250 && first < 600);
    /* Keep asking while the server sleeps: never longer than connect +
     * command timeout, mostly immediate. */
    double worst = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t c0 = ts_now_ns();
        bget(b, "stall:k");
        double ms = ms_since(c0);
        if (ms > worst)
            worst = ms;
        sleep_ms(10);
    }
    pthread_join(th, NULL);
    CHECK(s.ok);
    printf("  stalled server: first error after %.1f ms, slowest call %.1f ms\n", first, worst);
    CHECK(worst < 600);
    double worst2 = 0;
    CHECK(wait_recovered(b, 8000, &worst2) >= 0);
    CHECK(bget_is(b, "stall:k", "v"));
    b->destroy(b);
}

REDIS_TEST(maxmemory_noeviction_is_an_error)
{
    int port = free_port();
    pid_t pid = start_tracked(port, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction");
    CHECK(pid > 0);
    ts_cache_backend *b = backend_at(port, "/0");
    CHECK(b != NULL);
    size_t n = 200 * 1024;
    unsigned char *val = malloc(n);
    memset(val, 'm', n);
    int failed_at = -1;
    char key[32];
    for (int i = 0; i < 40 && failed_at < 0; i++) {
        snprintf(key, sizeof key, "oom:%d", i);
        if (bset(b, key, val, n, 0) < 0)
            failed_at = i;
    }
    free(val);
    CHECK(failed_at >= 0);
    /* The connection is fine and reads still work: not an outage. */
    uint64_t t0 = ts_now_ns();
    int rc = bget(b, "oom:0");
    CHECK(rc == TS_CGET_HIT || (failed_at == 0 && rc == TS_CGET_MISS));
    CHECK(ms_since(t0) < 100);
    ts_cache_stats st = {0};
    b->stats(b, &st);
    CHECK(st.errors >= 1);

    /* Through the front: the failed store is counted, the response is fine. */
    ts_cache *c = ts_cache_create(b, &(ts_cache_opts){.namespace_ = "t"});
    ts_key_input in = {.namespace_ = "t", .route = "oom"};
    ts_cache_key k;
    ts_cache_key_build(&in, &k);
    ts_request req;
    memset(&req, 0, sizeof req);
    ts_response r;
    ts_ctx ctx;
    ts_resp_init(&r);
    ts_ctx_init(&ctx);
    tile_renderer t = {0};
    /* Fill the rest so that even this small entry cannot be stored. */
    redisContext *raw = raw_connect(port);
    for (int i = 0; raw && i < 100; i++) {
        redisReply *rr = redisCommand(raw, "SET fill:%d %s", i,
                                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        bool oom = rr && rr->type == REDIS_REPLY_ERROR;
        if (rr)
            freeReplyObject(rr);
        if (oom)
            break;
    }
    if (raw)
        redisFree(raw);
    CHECK_INT(ts_cache_serve(c, &k, &req, true, render_tile, &t, &r, &ctx), 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.cache, TS_CACHE_OUT_MISS);
    ts_resp_clear(&r);
    ts_cache_stats cs;
    ts_cache_get_stats(c, &cs);
    CHECK_INT(cs.stores, 0);
    CHECK(cs.errors >= 1);
    ts_cache_destroy(c);
}

typedef struct pool_arg {
    ts_cache_backend *b;
    int thread;
    int ops;
    int bad;
    volatile int *stop; /* when set, loop until *stop instead of ops */
    double worst_ms;
    long calls;
} pool_arg;

static void *pool_worker(void *p)
{
    pool_arg *a = p;
    char key[32], val[32];
    for (long i = 0; a->stop ? !__atomic_load_n(a->stop, __ATOMIC_RELAXED) : i < a->ops; i++) {
        int k = (int)(i % 64);
        snprintf(key, sizeof key, "pool:%d:%d", a->thread, k);
        int vlen = snprintf(val, sizeof val, "v%d-%d", a->thread, k);
        uint64_t t0 = ts_now_ns();
        if (i % 4 == 0) {
            bset(a->b, key, val, (size_t)vlen, 60);
        } else {
            ts_blob *v = NULL;
            if (a->b->get(a->b, key, strlen(key), &v) == TS_CGET_HIT &&
                (v->size != (size_t)vlen || memcmp(v->data, val, v->size) != 0))
                a->bad++;
            ts_blob_unref(v);
        }
        double ms = ms_since(t0);
        if (ms > a->worst_ms)
            a->worst_ms = ms;
        a->calls++;
    }
    return NULL;
}

static void run_pool(ts_cache_backend *b, pool_arg *args, int n, int ops, volatile int *stop,
                     unsigned stop_after_ms, pid_t kill_at_start)
{
    pthread_t th[8];
    for (int i = 0; i < n; i++) {
        args[i] = (pool_arg){.b = b, .thread = i, .ops = ops, .stop = stop};
        pthread_create(&th[i], NULL, pool_worker, &args[i]);
    }
    if (stop) {
        if (kill_at_start > 0) {
            sleep_ms(100);
            stop_tracked(kill_at_start);
        }
        sleep_ms(stop_after_ms);
        __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

REDIS_TEST(threads_share_the_pool)
{
    int port = free_port();
    pid_t pid = start_tracked(port, NULL, NULL, NULL, NULL);
    CHECK(pid > 0);
    ts_cache_backend *b = backend_at(port, "/0");
    CHECK(b != NULL);
    pool_arg args[4];
    uint64_t t0 = ts_now_ns();
    run_pool(b, args, 1, 20000, NULL, 0, 0);
    double one = 20000 / (ms_since(t0) / 1e3);
    t0 = ts_now_ns();
    run_pool(b, args, 4, 10000, NULL, 0, 0);
    double four = 40000 / (ms_since(t0) / 1e3);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        bad += args[i].bad;
    CHECK_INT(bad, 0);
    printf("  redis backend over loopback, 75%% get / 25%% set: %.0f ops/s 1 thread, "
           "%.0f ops/s 4 threads\n",
           one, four);

    /* Kill Redis under load: no call may wait longer than the timeouts. */
    volatile int stop = 0;
    run_pool(b, args, 4, 0, &stop, 1000, pid);
    double worst = 0;
    long calls = 0;
    for (int i = 0; i < 4; i++) {
        calls += args[i].calls;
        if (args[i].worst_ms > worst)
            worst = args[i].worst_ms;
    }
    printf("  outage under 4 threads: %ld calls in 1.1 s, slowest %.1f ms\n", calls, worst);
    CHECK(worst < 600);
    b->destroy(b);
}

TS_TEST_MAIN(TEST(endpoint_parsing), TEST(set_get_ttl), TEST(binary_values), TEST(del_prefix_scans),
             TEST(lock_unlock), TEST(two_instances_share_entries), TEST(front_over_redis),
             TEST(tiered_over_redis), TEST(password_db_and_unix_socket), TEST(outage_and_recovery),
             TEST(stalled_server_times_out), TEST(maxmemory_noeviction_is_an_error),
             TEST(threads_share_the_pool))
