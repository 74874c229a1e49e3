/*
 * Redis backend (hiredis 0.14, blocking API with socket timeouts).
 *
 * Connections: a small pool guarded by one mutex rather than thread-locals.
 * The backend then owns every connection, so destroy() can close them all,
 * a worker thread that exits leaks nothing, and two backend instances in one
 * process (tests, tiered setups) never share a socket. The mutex is held for
 * a pointer pop or push; the Redis round trip happens outside it.
 *
 * Outages: a request must never wait long on a dead or stalled Redis, and a
 * dead Redis must not be hammered with connects. Connect and command
 * timeouts are small (200 ms / 300 ms by default, so one request waits at
 * most about 0.5 s: the first timeout ends the operation). The first failure
 * drops the connection, invalidates the pool and marks the backend down;
 * while down, operations fail immediately with ERROR, and once the backoff
 * (100 ms doubling to 5 s) has passed exactly one request probes with a
 * fresh connection. Its success brings the backend back; its failure
 * doubles the backoff. Failures are logged at most once per 10 s.
 *
 * The process must ignore SIGPIPE (hiredis writes with write(2)); main()
 * does, and create() sets SIG_IGN if nobody chose a disposition.
 */
#include "ts_cache.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#define DEFAULT_CONNECT_MS 200u
#define DEFAULT_COMMAND_MS 300u
#define BACKOFF_MIN_NS (100ull * 1000000ull)
#define BACKOFF_MAX_NS (5000ull * 1000000ull)
/* A probe that never reported back (it cannot, but a bug must not leave the
 * backend down forever) is replaced after this long. */
#define PROBE_STALE_NS (3000ull * 1000000ull)
#define LOG_INTERVAL_NS (10ull * 1000000000ull)
/* More idle connections than worker threads would only hold sockets open. */
#define MAX_IDLE 64
#define SCAN_COUNT "1000"

typedef struct endpoint {
    bool is_unix;
    char host[256];
    int port;
    char path[108]; /* sun_path */
    int db;
    char user[128];
    char password[256];
    bool has_password;
    unsigned connect_ms, command_ms;
} endpoint;

typedef struct rconn {
    redisContext *c;
    unsigned gen; /* pool generation at connect time */
    struct rconn *next;
} rconn;

typedef struct redisbackend {
    ts_cache_backend base;
    endpoint ep;
    char desc[300]; /* endpoint for logs, without the password */
    char token[33]; /* lock owner: random per backend instance */

    pthread_mutex_t mu; /* guards everything down to probe_started_ns */
    rconn *idle;
    unsigned nidle;
    unsigned gen; /* bumped on every failure: pooled connections of older
                     generations are presumed dead and dropped */
    bool down;
    bool probing;
    uint64_t retry_at_ns, backoff_ns, probe_started_ns;

    long long errors;     /* __atomic */
    uint64_t last_log_ns; /* __atomic */
    long long suppressed; /* __atomic */

    /* Asynchronous gets (r_get_async): one fetcher thread, started on first
     * use, pipelines whatever has queued up while its last batch was on the
     * wire. amu guards the queue and the flags. */
    pthread_mutex_t amu;
    pthread_cond_t acv;
    struct aget *ahead, *atail;
    bool fetcher_started, fetcher_stop, fetcher_waiting;
    pthread_t fetcher;
    long long async_gets, async_batches; /* __atomic */
} redisbackend;

/* One operation's use of a connection. */
typedef struct session {
    redisbackend *rb;
    rconn *conn;
    bool probe;  /* this operation decides whether the backend is back */
    bool broken; /* I/O error: the connection must not be reused */
} session;

/* Compare-and-delete: only release the lock if we still hold it (after our
 * lease expired, another instance may own it). */
static const char UNLOCK_SCRIPT[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

/* A token bucket shared by every instance: tokens and the last refill time
 * in one hash, refilled from Redis's own clock (instances' clocks may
 * disagree), expiring once a full refill has passed. ARGV: rate/s, burst. */
static const char RATE_SCRIPT[] =
    "local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]) "
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local v = redis.call('HMGET', KEYS[1], 't', 'ts') "
    "local tok, ts = tonumber(v[1]) or burst, tonumber(v[2]) or now "
    "if now > ts then tok = math.min(burst, tok + (now - ts) * rate / 1000) end "
    "local ok = 0 if tok >= 1 then tok = tok - 1 ok = 1 end "
    "redis.call('HSET', KEYS[1], 't', tostring(tok), 'ts', now) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000) "
    "return ok";

/* ---- endpoint parsing ---- */

static int parse_num(const char *s, long min, long max, long *out)
{
    if (!*s)
        return -1;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src into dst (passwords may contain '@', ':' or '/'). */
static int pct_decode(const char *src, char *dst, size_t dstlen)
{
    size_t n = 0;
    for (const char *p = src; *p; p++) {
        int ch = (unsigned char)*p;
        if (ch == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            p += 2;
        }
        if (ch == 0 || n + 1 >= dstlen)
            return -1;
        dst[n++] = (char)ch;
    }
    dst[n] = '\0';
    return 0;
}

/* The endpoint is never echoed back: it may hold a password. */
static int parse_endpoint(const char *spec, endpoint *e, ts_ctx *ctx)
{
#define BAD(...) ts_ctx_error(ctx, TS_EINTERNAL, "invalid cache endpoint: " __VA_ARGS__)
    memset(e, 0, sizeof *e);
    e->port = 6379;
    e->connect_ms = DEFAULT_CONNECT_MS;
    e->command_ms = DEFAULT_COMMAND_MS;
    if (!spec)
        return BAD("missing");
    const char *rest;
    if (strncmp(spec, "redis://", 8) == 0) {
        rest = spec + 8;
    } else if (strncmp(spec, "unix://", 7) == 0) {
        rest = spec + 7;
        e->is_unix = true;
    } else {
        return BAD("expected redis://[:password@]host:port/db or unix:///path.sock");
    }
    char buf[1024];
    if (strlen(rest) >= sizeof buf)
        return BAD("too long");
    strcpy(buf, rest);

    char *query = strchr(buf, '?');
    if (query)
        *query++ = '\0';
    char *hostpart = buf;
    /* The last '@' ends the userinfo, so a raw '@' in a password still works. */
    char *at = strrchr(buf, '@');
    if (at) {
        *at = '\0';
        hostpart = at + 1;
        char *colon = strchr(buf, ':');
        if (!colon)
            return BAD("credentials must be written [user]:password@");
        *colon = '\0';
        if (pct_decode(buf, e->user, sizeof e->user) != 0 ||
            pct_decode(colon + 1, e->password, sizeof e->password) != 0)
            return BAD("bad percent-encoding or length in credentials");
        e->has_password = true;
    }

    if (e->is_unix) {
        if (hostpart[0] != '/' || hostpart[1] == '\0')
            return BAD("unix:// needs an absolute socket path");
        if (strlen(hostpart) >= sizeof e->path)
            return BAD("socket path too long");
        strcpy(e->path, hostpart);
    } else {
        char *p = hostpart, *hend;
        if (*p == '[') { /* [IPv6 literal] */
            hend = strchr(p, ']');
            if (!hend)
                return BAD("unterminated [ in host");
            p++;
        } else {
            hend = p + strcspn(p, ":/");
        }
        size_t hlen = (size_t)(hend - p);
        if (hlen == 0 || hlen >= sizeof e->host)
            return BAD("missing or too long host");
        memcpy(e->host, p, hlen);
        e->host[hlen] = '\0';
        p = hend + (*hend == ']');
        long v;
        if (*p == ':') {
            char *pend = p + 1 + strcspn(p + 1, "/");
            char save = *pend;
            *pend = '\0';
            int bad = parse_num(p + 1, 1, 65535, &v);
            *pend = save;
            if (bad)
                return BAD("port must be 1..65535");
            e->port = (int)v;
            p = pend;
        }
        if (*p == '/') {
            p++;
            if (*p) {
                if (parse_num(p, 0, 1000000, &v) != 0)
                    return BAD("database must be a non-negative integer");
                e->db = (int)v;
            }
        } else if (*p) {
            return BAD("unexpected text after host");
        }
    }

    for (char *kv = query; kv && *kv;) {
        char *amp = strchr(kv, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(kv, '=');
        if (!eq)
            return BAD("query parameter without a value");
        *eq = '\0';
        const char *val = eq + 1;
        long v;
        if (strcmp(kv, "timeout") == 0) {
            if (parse_num(val, 1, 60000, &v) != 0)
                return BAD("timeout must be 1..60000 ms");
            e->command_ms = (unsigned)v;
        } else if (strcmp(kv, "connect_timeout") == 0) {
            if (parse_num(val, 1, 60000, &v) != 0)
                return BAD("connect_timeout must be 1..60000 ms");
            e->connect_ms = (unsigned)v;
        } else if (strcmp(kv, "db") == 0) {
            if (parse_num(val, 0, 1000000, &v) != 0)
                return BAD("db must be a non-negative integer");
            e->db = (int)v;
        } else if (strcmp(kv, "password") == 0) {
            if (pct_decode(val, e->password, sizeof e->password) != 0)
                return BAD("bad percent-encoding or length in password");
            e->has_password = true;
        } else {
            return BAD(
                "unknown parameter '%.40s' (expected timeout, connect_timeout, db, password)", kv);
        }
        kv = amp ? amp + 1 : NULL;
    }
    return 0;
#undef BAD
}

/* ---- failure reporting and outage state ---- */

static void count_error(redisbackend *rb)
{
    __atomic_add_fetch(&rb->errors, 1, __ATOMIC_RELAXED);
}

static void report(redisbackend *rb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs at most once per LOG_INTERVAL_NS; the next line says how many were
 * swallowed. During an outage every request fails, and one line per request
 * would bury everything else. */
static void report(redisbackend *rb, const char *fmt, ...)
{
    if (TS_LOG_WARN < ts_log_threshold)
        return;
    uint64_t now = ts_now_ns();
    uint64_t last = __atomic_load_n(&rb->last_log_ns, __ATOMIC_RELAXED);
    if ((last && now - last < LOG_INTERVAL_NS) ||
        !__atomic_compare_exchange_n(&rb->last_log_ns, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&rb->suppressed, 1, __ATOMIC_RELAXED);
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long long sup = __atomic_exchange_n(&rb->suppressed, 0, __ATOMIC_RELAXED);
    if (sup)
        ts_log(TS_LOG_WARN, "cache %s: %s (%lld similar messages suppressed)", rb->desc, msg, sup);
    else
        ts_log(TS_LOG_WARN, "cache %s: %s", rb->desc, msg);
}

static void conn_free(rconn *rc)
{
    while (rc) {
        rconn *next = rc->next;
        redisFree(rc->c);
        free(rc);
        rc = next;
    }
}

/* A connection broke or could not be made. */
static void mark_failed(redisbackend *rb, session *s)
{
    uint64_t now = ts_now_ns();
    pthread_mutex_lock(&rb->mu);
    rb->gen++;
    rconn *stale = rb->idle;
    rb->idle = NULL;
    rb->nidle = 0;
    if (!rb->down) {
        rb->down = true;
        rb->backoff_ns = BACKOFF_MIN_NS;
        rb->retry_at_ns = now + rb->backoff_ns;
    } else if (s->probe) {
        /* Only the probe grows the backoff: the other requests that were
         * in flight when Redis died fail too, and must not each double it. */
        rb->backoff_ns = rb->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : rb->backoff_ns * 2;
        rb->retry_at_ns = now + rb->backoff_ns;
    }
    if (s->probe)
        rb->probing = false;
    pthread_mutex_unlock(&rb->mu);
    s->probe = false;
    conn_free(stale);
}

static void mark_up(redisbackend *rb)
{
    bool was_down;
    pthread_mutex_lock(&rb->mu);
    was_down = rb->down;
    rb->down = false;
    rb->probing = false;
    rb->backoff_ns = 0;
    pthread_mutex_unlock(&rb->mu);
    if (was_down)
        ts_log(TS_LOG_INFO, "cache %s: reachable again", rb->desc);
}

/* ---- connections and sessions ---- */

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* A status reply "OK", or a description of what came back instead. */
static int expect_ok(redisReply *r, const char *what, char *why, size_t whylen)
{
    if (r && r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0)
        return 0;
    snprintf(
        why, whylen, "%s failed: %.*s", what,
        r && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) ? (int)r->len : 14,
        r && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) ? r->str
                                                                             : "unexpected reply");
    return -1;
}

static redisContext *connect_redis(redisbackend *rb, char *why, size_t whylen)
{
    const endpoint *e = &rb->ep;
    struct timeval ctv = ms_tv(e->connect_ms);
    redisContext *c = e->is_unix ? redisConnectUnixWithTimeout(e->path, ctv)
                                 : redisConnectWithTimeout(e->host, e->port, ctv);
    if (!c) {
        snprintf(why, whylen, "connect: out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, whylen, "connect: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, ms_tv(e->command_ms)) != REDIS_OK) {
        snprintf(why, whylen, "setting the command timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (e->has_password) {
        redisReply *r = e->user[0] ? redisCommand(c, "AUTH %s %s", e->user, e->password)
                                   : redisCommand(c, "AUTH %s", e->password);
        int bad = r ? expect_ok(r, "AUTH", why, whylen)
                    : (snprintf(why, whylen, "AUTH: %s", c->errstr), -1);
        if (r)
            freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    if (e->db) {
        redisReply *r = redisCommand(c, "SELECT %d", e->db);
        int bad = r ? expect_ok(r, "SELECT", why, whylen)
                    : (snprintf(why, whylen, "SELECT: %s", c->errstr), -1);
        if (r)
            freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Returns 0 with a connection, or -1 (counted, and logged unless this is the
 * fast path of an outage) without one. */
static int session_open(redisbackend *rb, session *s)
{
    memset(s, 0, sizeof *s);
    s->rb = rb;
    uint64_t now = ts_now_ns();
    rconn *stale = NULL;
    pthread_mutex_lock(&rb->mu);
    if (rb->down) {
        bool probe_running = rb->probing && now - rb->probe_started_ns < PROBE_STALE_NS;
        if (probe_running || now < rb->retry_at_ns) {
            pthread_mutex_unlock(&rb->mu);
            count_error(rb);
            return -1;
        }
        rb->probing = true;
        rb->probe_started_ns = now;
        s->probe = true;
    }
    while (rb->idle && !s->conn) {
        rconn *rc = rb->idle;
        rb->idle = rc->next;
        rb->nidle--;
        rc->next = NULL;
        if (rc->gen == rb->gen) {
            s->conn = rc;
        } else {
            rc->next = stale;
            stale = rc;
        }
    }
    unsigned gen = rb->gen;
    pthread_mutex_unlock(&rb->mu);
    conn_free(stale);
    if (s->conn)
        return 0;

    char why[200];
    redisContext *c = connect_redis(rb, why, sizeof why);
    rconn *rc = c ? malloc(sizeof *rc) : NULL;
    if (!rc) {
        if (c) {
            redisFree(c);
            snprintf(why, sizeof why, "out of memory");
        }
        report(rb, "%s", why);
        count_error(rb);
        mark_failed(rb, s);
        return -1;
    }
    rc->c = c;
    rc->gen = gen;
    rc->next = NULL;
    s->conn = rc;
    return 0;
}

static void session_close(session *s)
{
    redisbackend *rb = s->rb;
    rconn *rc = s->conn;
    if (!rc)
        return;
    s->conn = NULL;
    if (s->broken) {
        conn_free(rc);
        mark_failed(rb, s);
        return;
    }
    if (s->probe) /* the probe ended without an I/O error */
        mark_up(rb);
    pthread_mutex_lock(&rb->mu);
    bool keep = rc->gen == rb->gen && rb->nidle < MAX_IDLE;
    if (keep) {
        rc->next = rb->idle;
        rb->idle = rc;
        rb->nidle++;
    }
    pthread_mutex_unlock(&rb->mu);
    if (!keep)
        conn_free(rc);
}

/* Classifies a reply: NULL (I/O error: the connection is broken) and error
 * replies (OOM under maxmemory noeviction, a wrong password...) are counted,
 * logged and turned into NULL; anything else is the caller's to free. */
static redisReply *finish(session *s, const char *what, redisReply *r)
{
    redisbackend *rb = s->rb;
    if (!r) {
        s->broken = true;
        report(rb, "%s: %s", what, s->conn->c->errstr[0] ? s->conn->c->errstr : "I/O error");
        count_error(rb);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        report(rb, "%s: %.*s", what, (int)r->len, r->str);
        count_error(rb);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static redisReply *cmd(session *s, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->conn->c, fmt, ap);
    va_end(ap);
    return finish(s, what, r);
}

/* ---- operations ---- */

/* GET's reply as get's outcome: *out gets a new blob on HIT. */
static int get_outcome(redisbackend *rb, redisReply *r, ts_blob **out)
{
    *out = NULL;
    if (r->type == REDIS_REPLY_NIL)
        return TS_CGET_MISS;
    if (r->type == REDIS_REPLY_STRING) {
        /* One copy out of hiredis's reply buffer into a blob we can
         * refcount; a reader holding it outlives the reply. */
        *out = ts_blob_from(r->str, r->len);
        return *out ? TS_CGET_HIT : TS_CGET_ERROR;
    }
    report(rb, "GET: unexpected reply type %d", r->type);
    count_error(rb);
    return TS_CGET_ERROR;
}

static int r_get(ts_cache_backend *b, const char *key, size_t klen, ts_blob **out)
{
    redisbackend *rb = (redisbackend *)b;
    session s;
    if (session_open(rb, &s) != 0)
        return TS_CGET_ERROR;
    int rc = TS_CGET_ERROR;
    redisReply *r = cmd(&s, "GET", "GET %b", key, klen);
    if (r) {
        ts_blob *blob;
        rc = get_outcome(rb, r, &blob);
        if (rc == TS_CGET_HIT)
            *out = blob;
        freeReplyObject(r);
    }
    session_close(&s);
    return rc;
}

/* ---- asynchronous, pipelined gets ----
 *
 * A blocking GET per request holds an I/O thread for a whole round trip and
 * costs Redis a read and a write system call per key. Here the I/O threads
 * only queue the key (the http layer suspends the connection meanwhile);
 * the fetcher takes everything queued, writes all the GETs at once, reads
 * the replies in order and completes each one. Under load the batches grow
 * by themselves (more queues up while one is on the wire), so Redis and the
 * fetcher pay their system calls per batch instead of per request. Outages
 * follow the blocking path's rules (session_open): while the backend is
 * down, a batch fails at once, every key counted as an error (a MISS). */
#define PIPELINE_MAX 256

typedef struct aget {
    struct aget *next;
    ts_cache_get_cb cb;
    void *ud;
    int rc;        /* the answer, once read */
    ts_blob *blob; /* on HIT */
    size_t klen;
    char key[];
} aget;

/* Reply objects for the fetcher's GETs. hiredis's own reply copies a bulk
 * string out of its read buffer, and get_outcome copies it again into a
 * blob; these functions build the blob from the read buffer directly (one
 * 12 KB copy and two allocations less per HIT). Only top-level replies are
 * kept: GET never answers with an array, and elements of one, should it
 * come, are dropped (the shared `ignored` object). */
typedef struct fobj {
    int type;
    ts_blob *blob; /* REDIS_REPLY_STRING */
    char msg[96];  /* REDIS_REPLY_ERROR / STATUS, cut */
} fobj;
static fobj ignored;

static void *fobj_new(const redisReadTask *task)
{
    if (task->parent)
        return &ignored;
    fobj *o = malloc(sizeof *o);
    if (!o)
        return NULL;
    o->type = task->type;
    o->blob = NULL;
    o->msg[0] = '\0';
    return o;
}

static void *f_string(const redisReadTask *task, char *str, size_t len)
{
    fobj *o = fobj_new(task);
    if (!o || o == &ignored)
        return o;
    if (task->type == REDIS_REPLY_STRING) {
        if (!(o->blob = ts_blob_from(str, len))) {
            free(o);
            return NULL;
        }
    } else {
        size_t n = len < sizeof o->msg - 1 ? len : sizeof o->msg - 1;
        memcpy(o->msg, str, n);
        o->msg[n] = '\0';
    }
    return o;
}

static void *f_array(const redisReadTask *task, int elements)
{
    (void)elements;
    return fobj_new(task);
}

static void *f_integer(const redisReadTask *task, long long v)
{
    (void)v;
    return fobj_new(task);
}

static void *f_nil(const redisReadTask *task)
{
    return fobj_new(task);
}

static void f_free(void *p)
{
    fobj *o = p;
    if (!o || o == &ignored)
        return;
    ts_blob_unref(o->blob);
    free(o);
}

static redisReplyObjectFunctions fetch_fns = {f_string, f_array, f_integer, f_nil, f_free};

/* One reply of a batch as get's outcome (*out gets the blob on HIT). */
static int fetch_reply(redisbackend *rb, session *s, ts_blob **out)
{
    *out = NULL;
    void *reply = NULL;
    if (redisGetReply(s->conn->c, &reply) != REDIS_OK || !reply) {
        f_free(reply);
        s->broken = true;
        report(rb, "GET: %s", s->conn->c->errstr[0] ? s->conn->c->errstr : "I/O error");
        count_error(rb);
        return TS_CGET_ERROR;
    }
    fobj *o = reply;
    int rc = TS_CGET_ERROR;
    if (o->type == REDIS_REPLY_NIL) {
        rc = TS_CGET_MISS;
    } else if (o->type == REDIS_REPLY_STRING) {
        *out = o->blob;
        o->blob = NULL;
        rc = TS_CGET_HIT;
    } else {
        if (o->type == REDIS_REPLY_ERROR)
            report(rb, "GET: %s", o->msg);
        else
            report(rb, "GET: unexpected reply type %d", o->type);
        count_error(rb);
    }
    f_free(o);
    return rc;
}

static void run_batch(redisbackend *rb, aget *batch)
{
    session s;
    bool open = session_open(rb, &s) == 0;
    aget *a = batch;
    size_t sent = 0;
    /* A pooled connection between commands holds no partial reply, so the
     * reader's object functions can be swapped for the batch. A connection
     * that breaks keeps ours: it is freed with whatever partial reply its
     * reader holds, which ours must free. */
    redisReplyObjectFunctions *saved = open ? s.conn->c->reader->fn : NULL;
    if (open) {
        s.conn->c->reader->fn = &fetch_fns;
        for (aget *q = batch; q; q = q->next, sent++) {
            /* Argv form: no printf-style formatting per key. */
            const char *argv[2] = {"GET", q->key};
            size_t lens[2] = {3, q->klen};
            if (redisAppendCommandArgv(s.conn->c, 2, argv, lens) != REDIS_OK)
                break;
        }
    }
    for (size_t i = 0; i < sent; i++, a = a->next) {
        a->rc = TS_CGET_ERROR;
        a->blob = NULL;
        if (s.broken)
            count_error(rb);
        else
            a->rc = fetch_reply(rb, &s, &a->blob);
    }
    if (open && !s.broken)
        s.conn->c->reader->fn = saved;
    /* Never sent (no connection, or out of memory while queuing them).
     * session_open counted its own failure once: as many errors as keys,
     * like the blocking path. */
    for (bool first = true; a; a = a->next, first = false) {
        if (open || !first)
            count_error(rb);
        a->rc = TS_CGET_ERROR;
        a->blob = NULL;
    }
    if (open)
        session_close(&s);
    /* Completions last, back to back: the requests they resume wake their
     * I/O threads once for the batch rather than once per reply. */
    while (batch) {
        aget *next = batch->next;
        batch->cb(batch->ud, batch->rc, batch->blob);
        free(batch);
        batch = next;
    }
}

static void *fetcher_main(void *arg)
{
    redisbackend *rb = arg;
    pthread_setname_np(pthread_self(), "redis-fetch"); /* for top -H and perf */
    for (;;) {
        pthread_mutex_lock(&rb->amu);
        while (!rb->ahead && !rb->fetcher_stop) {
            rb->fetcher_waiting = true;
            pthread_cond_wait(&rb->acv, &rb->amu);
            rb->fetcher_waiting = false;
        }
        aget *batch = rb->ahead;
        if (!batch) { /* stopping, and nothing left */
            pthread_mutex_unlock(&rb->amu);
            break;
        }
        aget *last = batch;
        for (unsigned n = 1; n < PIPELINE_MAX && last->next; n++)
            last = last->next;
        rb->ahead = last->next;
        if (!rb->ahead)
            rb->atail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&rb->amu);
        __atomic_add_fetch(&rb->async_batches, 1, __ATOMIC_RELAXED);
        run_batch(rb, batch);
    }
    return NULL;
}

static int r_get_async(ts_cache_backend *b, const char *key, size_t klen, ts_cache_get_cb cb,
                       void *ud)
{
    redisbackend *rb = (redisbackend *)b;
    aget *a = malloc(sizeof *a + klen);
    if (!a)
        return -TS_ENOMEM;
    a->next = NULL;
    a->cb = cb;
    a->ud = ud;
    a->klen = klen;
    memcpy(a->key, key, klen);
    pthread_mutex_lock(&rb->amu);
    if (!rb->fetcher_started && !rb->fetcher_stop)
        rb->fetcher_started = pthread_create(&rb->fetcher, NULL, fetcher_main, rb) == 0;
    if (!rb->fetcher_started || rb->fetcher_stop) {
        pthread_mutex_unlock(&rb->amu);
        free(a);
        return -TS_EUNAVAILABLE;
    }
    if (rb->atail)
        rb->atail->next = a;
    else
        rb->ahead = a;
    rb->atail = a;
    __atomic_add_fetch(&rb->async_gets, 1, __ATOMIC_RELAXED);
    /* A busy fetcher takes this with its next batch: no wake-up needed. */
    bool wake = rb->fetcher_waiting;
    pthread_mutex_unlock(&rb->amu);
    if (wake)
        pthread_cond_signal(&rb->acv);
    return 0;
}

static int r_set(ts_cache_backend *b, const char *key, size_t klen, ts_blob *value, unsigned ttl_s)
{
    redisbackend *rb = (redisbackend *)b;
    if (!value)
        return -TS_EINTERNAL;
    session s;
    if (session_open(rb, &s) != 0)
        return -TS_EUNAVAILABLE;
    redisReply *r =
        ttl_s ? cmd(&s, "SET", "SET %b %b EX %u", key, klen, value->data, value->size, ttl_s)
              : cmd(&s, "SET", "SET %b %b", key, klen, value->data, value->size);
    int rc = -TS_EIO;
    if (r) {
        char why[120];
        if (expect_ok(r, "SET", why, sizeof why) == 0) {
            rc = 0;
        } else {
            report(rb, "%s", why);
            count_error(rb);
        }
        freeReplyObject(r);
    }
    session_close(&s);
    return rc;
}

/* SCAN MATCH treats *?[]\ as glob syntax; keys may contain them (the
 * namespace is free text). */
static char *glob_escape(const char *prefix, size_t plen, size_t *outlen)
{
    char *pat = malloc(2 * plen + 2);
    if (!pat)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        char ch = prefix[i];
        if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
            pat[n++] = '\\';
        pat[n++] = ch;
    }
    pat[n++] = '*';
    pat[n] = '\0';
    *outlen = n;
    return pat;
}

/* SCAN rather than a per-dataset generation counter: a counter would cost an
 * extra round trip on every lookup to learn the current generation, while
 * deletion is a rare admin action that can afford a keyspace walk. SCAN is
 * incremental, so Redis keeps serving other clients between batches, and
 * UNLINK frees the values in a background thread. */
static int r_del_prefix(ts_cache_backend *b, const char *prefix, size_t plen, long long *deleted)
{
    redisbackend *rb = (redisbackend *)b;
    long long n = 0;
    if (deleted)
        *deleted = 0;
    size_t patlen;
    char *pat = glob_escape(prefix, plen, &patlen);
    if (!pat)
        return -TS_ENOMEM;
    session s;
    if (session_open(rb, &s) != 0) {
        free(pat);
        return -TS_EUNAVAILABLE;
    }
    int rc = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = cmd(&s, "SCAN", "SCAN %s MATCH %b COUNT " SCAN_COUNT, cursor, pat, patlen);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r) {
                report(rb, "SCAN: unexpected reply");
                count_error(rb);
                freeReplyObject(r);
            }
            rc = -TS_EIO;
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        redisReply *keys = r->element[1];
        if (keys->elements) {
            size_t argc = keys->elements + 1;
            const char **argv = malloc(argc * sizeof *argv);
            size_t *lens = malloc(argc * sizeof *lens);
            if (!argv || !lens || argc > INT_MAX) {
                free(argv);
                free(lens);
                freeReplyObject(r);
                rc = -TS_ENOMEM;
                break;
            }
            argv[0] = "UNLINK";
            lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            redisReply *u =
                finish(&s, "UNLINK", redisCommandArgv(s.conn->c, (int)argc, argv, lens));
            free(argv);
            free(lens);
            if (!u) {
                freeReplyObject(r);
                rc = -TS_EIO;
                break;
            }
            if (u->type == REDIS_REPLY_INTEGER)
                n += u->integer;
            freeReplyObject(u);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    session_close(&s);
    free(pat);
    if (deleted)
        *deleted = n;
    return rc;
}

/* Lock keys live next to the entry ("<key>:lock"): entry keys are
 * fixed-length hex, so no entry key can end that way. */
static char *lock_key(const char *key, size_t klen, char *stackbuf, size_t stacklen, size_t *outlen)
{
    char *k = klen + 6 <= stacklen ? stackbuf : malloc(klen + 6);
    if (!k)
        return NULL;
    memcpy(k, key, klen);
    memcpy(k + klen, ":lock", 5);
    *outlen = klen + 5;
    return k;
}

static int r_try_lock(ts_cache_backend *b, const char *key, size_t klen, unsigned lease_ms)
{
    redisbackend *rb = (redisbackend *)b;
    char buf[256];
    size_t lklen;
    char *lk = lock_key(key, klen, buf, sizeof buf, &lklen);
    if (!lk)
        return -TS_ENOMEM;
    session s;
    int rc = -TS_EUNAVAILABLE;
    if (session_open(rb, &s) == 0) {
        redisReply *r =
            cmd(&s, "SET NX", "SET %b %s NX PX %u", lk, lklen, rb->token, lease_ms ? lease_ms : 1);
        if (r) {
            if (r->type == REDIS_REPLY_STATUS)
                rc = 1;
            else if (r->type == REDIS_REPLY_NIL)
                rc = 0;
            else
                rc = -TS_EIO;
            freeReplyObject(r);
        } else {
            rc = -TS_EIO;
        }
        session_close(&s);
    }
    if (lk != buf)
        free(lk);
    return rc;
}

static int r_rate_take(ts_cache_backend *b, const char *key, size_t klen, double rate,
                       double burst)
{
    redisbackend *rb = (redisbackend *)b;
    session s;
    if (session_open(rb, &s) != 0)
        return -TS_EUNAVAILABLE;
    char rs[32], bs[32];
    snprintf(rs, sizeof rs, "%.6g", rate);
    snprintf(bs, sizeof bs, "%.6g", burst);
    /* EVAL rather than EVALSHA: the script is short and a Redis restart
     * would flush the script cache under us. */
    redisReply *r = cmd(&s, "EVAL rate", "EVAL %s 1 %b %s %s", RATE_SCRIPT, key, klen, rs, bs);
    int rc = -TS_EIO;
    if (r) {
        if (r->type == REDIS_REPLY_INTEGER)
            rc = r->integer == 1;
        freeReplyObject(r);
    }
    session_close(&s);
    return rc;
}

static void r_unlock(ts_cache_backend *b, const char *key, size_t klen)
{
    redisbackend *rb = (redisbackend *)b;
    char buf[256];
    size_t lklen;
    char *lk = lock_key(key, klen, buf, sizeof buf, &lklen);
    if (!lk)
        return; /* the lease expires on its own */
    session s;
    if (session_open(rb, &s) == 0) {
        redisReply *r =
            cmd(&s, "EVAL unlock", "EVAL %s 1 %b %s", UNLOCK_SCRIPT, lk, lklen, rb->token);
        if (r)
            freeReplyObject(r);
        session_close(&s);
    }
    if (lk != buf)
        free(lk);
}

static long long info_field(const redisReply *r, const char *field)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return 0;
    size_t flen = strlen(field);
    for (const char *p = r->str; p && p < r->str + r->len; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, field, flen) == 0 && p[flen] == ':')
            return strtoll(p + flen + 1, NULL, 10);
    }
    return 0;
}

static void r_stats(ts_cache_backend *b, ts_cache_stats *out)
{
    redisbackend *rb = (redisbackend *)b;
    out->entries = out->bytes = out->evictions = 0;
    out->async_gets = __atomic_load_n(&rb->async_gets, __ATOMIC_RELAXED);
    out->async_batches = __atomic_load_n(&rb->async_batches, __ATOMIC_RELAXED);
    session s;
    if (session_open(rb, &s) == 0) {
        /* DBSIZE counts the whole database, other namespaces included:
         * counting ours would need a SCAN, too slow for a stats call. */
        redisReply *r = cmd(&s, "DBSIZE", "DBSIZE");
        if (r && r->type == REDIS_REPLY_INTEGER)
            out->entries = r->integer;
        if (r)
            freeReplyObject(r);
        if (!s.broken) {
            r = cmd(&s, "INFO", "INFO memory");
            out->bytes = info_field(r, "used_memory");
            if (r)
                freeReplyObject(r);
        }
        if (!s.broken) {
            r = cmd(&s, "INFO", "INFO stats");
            out->evictions = info_field(r, "evicted_keys");
            if (r)
                freeReplyObject(r);
        }
        session_close(&s);
    }
    out->errors = __atomic_load_n(&rb->errors, __ATOMIC_RELAXED);
}

static void r_destroy(ts_cache_backend *b)
{
    redisbackend *rb = (redisbackend *)b;
    if (!rb)
        return;
    /* The fetcher completes what is queued before it exits. */
    pthread_mutex_lock(&rb->amu);
    rb->fetcher_stop = true;
    bool started = rb->fetcher_started;
    pthread_cond_signal(&rb->acv);
    pthread_mutex_unlock(&rb->amu);
    if (started)
        pthread_join(rb->fetcher, NULL);
    pthread_cond_destroy(&rb->acv);
    pthread_mutex_destroy(&rb->amu);
    conn_free(rb->idle);
    pthread_mutex_destroy(&rb->mu);
    /* The password sat in this struct. */
    memset(&rb->ep, 0, sizeof rb->ep);
    free(rb);
}

static void make_token(char *out)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        /* Uniqueness, not secrecy, is what matters: mix what we have. */
        uint64_t a = ts_now_ns() ^ ((uint64_t)getpid() << 32), c = (uint64_t)(uintptr_t)out;
        memcpy(rnd, &a, 8);
        memcpy(rnd + 8, &c, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

ts_cache_backend *ts_cache_redis_create(const char *endpoint_spec, ts_ctx *ctx)
{
    endpoint ep;
    if (parse_endpoint(endpoint_spec, &ep, ctx) < 0)
        return NULL;
    redisbackend *rb = calloc(1, sizeof *rb);
    if (!rb) {
        ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&rb->mu, NULL) != 0) {
        free(rb);
        ts_ctx_error(ctx, TS_EINTERNAL, "cannot initialise a mutex");
        return NULL;
    }
    if (pthread_mutex_init(&rb->amu, NULL) != 0) {
        pthread_mutex_destroy(&rb->mu);
        free(rb);
        ts_ctx_error(ctx, TS_EINTERNAL, "cannot initialise a mutex");
        return NULL;
    }
    if (pthread_cond_init(&rb->acv, NULL) != 0) {
        pthread_mutex_destroy(&rb->amu);
        pthread_mutex_destroy(&rb->mu);
        free(rb);
        ts_ctx_error(ctx, TS_EINTERNAL, "cannot initialise a mutex");
        return NULL;
    }
    rb->ep = ep;
    memset(&ep, 0, sizeof ep);
    if (rb->ep.is_unix)
        snprintf(rb->desc, sizeof rb->desc, "redis unix:%s db %d", rb->ep.path, rb->ep.db);
    else
        snprintf(rb->desc, sizeof rb->desc,
                 strchr(rb->ep.host, ':') ? "redis [%s]:%d/%d" : "redis %s:%d/%d", rb->ep.host,
                 rb->ep.port, rb->ep.db);
    make_token(rb->token);
    rb->base.name = "redis";
    rb->base.get = r_get;
    rb->base.get_async = r_get_async;
    rb->base.set = r_set;
    rb->base.del_prefix = r_del_prefix;
    rb->base.stats = r_stats;
    rb->base.try_lock = r_try_lock;
    rb->base.unlock = r_unlock;
    rb->base.rate_take = r_rate_take;
    rb->base.destroy = r_destroy;

    /* A write to a socket the server closed raises SIGPIPE; its default
     * action would kill the whole server over a cache outage. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
        ts_log(TS_LOG_DEBUG, "cache: SIGPIPE was at its default action, now ignored");
    }

    /* Connect once now so a wrong password or address shows up in the
     * start-up log; an unreachable Redis is not fatal (served as MISS). */
    session s;
    if (session_open(rb, &s) == 0) {
        redisReply *r = cmd(&s, "PING", "PING");
        if (r)
            freeReplyObject(r);
        session_close(&s);
    }
    return &rb->base;
}
