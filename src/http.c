/*
 * libmicrohttpd front end: converts a connection into a ts_request, lets the
 * app produce a ts_response, and hands the body to libmicrohttpd without a
 * copy (the response holds a blob reference released by MHD's free callback).
 */
#include "ts_http.h"
#include "ts_cache.h"

#include "ts_cache.h"

#include <xxhash.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Render pool. libmicrohttpd's thread pool gives each connection to the
 * thread that accepted it, and a burst of new connections often lands on
 * one thread: served inline, its renders would queue behind each other
 * while the other threads idle (8 connections: 127-282 WebP tiles/s from
 * run to run on 2 cores). So the I/O threads serve cache HITs and cheap
 * routes themselves and suspend any request that must render, which one of
 * a shared pool of render threads then handles (MHD_resume_connection
 * wakes the I/O thread, whose access handler sends the finished response).
 */
typedef struct req_state req_state;

/* Where a suspended request stands. */
enum {
    JOB_LOOKUP, /* waiting for an asynchronous cache lookup (prefetch) */
    JOB_RENDER, /* queued for, or running on, the render pool */
    JOB_AGAIN,  /* back on the I/O thread, to be handled again with the prefetch */
    JOB_DONE    /* resp is the answer */
};

typedef struct render_job {
    struct render_job *next;
    ts_http *h;
    struct MHD_Connection *conn;
    req_state *st;
    uint64_t queued_ns;
    int phase;
    ts_request req; /* points into the suspended connection's memory */
    char addr[64];
    ts_prefetch prefetch; /* owns its blob */
    ts_response resp;
} render_job;

struct ts_http {
    struct MHD_Daemon *daemon;
    ts_app *app;
    int port;
    int inflight; /* requests between first access call and completion (atomic) */
    int lookups;  /* asynchronous lookups not completed yet (atomic) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    render_job *head, *tail;
    int queued, idle; /* jobs waiting for a render thread; threads waiting for a job */
    bool stopping;
    pthread_t *workers;
    int nworkers;
    size_t prebuilt_cap; /* bytes each I/O thread's prebuilt responses may hold; 0 = off */
};

/* Per-request state, owned by libmicrohttpd's con_cls and freed in the
 * completion callback, on every path. */
struct req_state {
    uint64_t start_ns;
    int status;
    size_t bytes;
    ts_cache_outcome cache;
    char method[8];
    char path[256];
    render_job *job; /* set while (and after) the render pool handles it */
};

/* The headers handlers may look at; everything else is ignored. */
static const char *const wanted_headers[] = {
    "Host",          "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix",
    "If-None-Match", "Cache-Control",     "Authorization",    "Pragma",
    "X-Forwarded-For",
    "Accept",
};
#define NWANTED (sizeof wanted_headers / sizeof wanted_headers[0])

/* One pass over the request's headers (instead of one list walk per wanted
 * name): the first occurrence of each wanted header is kept, as
 * MHD_lookup_connection_value would return it. */
typedef struct header_scan {
    ts_request *req;
    unsigned seen; /* bit i: wanted_headers[i] already taken */
} header_scan;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    header_scan *hs = cls;
    if (!key)
        return MHD_YES;
    char c = (char)(key[0] | 0x20); /* ASCII lower case of a letter */
    for (unsigned i = 0; i < NWANTED; i++) {
        if ((hs->seen & (1u << i)) || (char)(wanted_headers[i][0] | 0x20) != c ||
            strcasecmp(key, wanted_headers[i]) != 0)
            continue;
        hs->seen |= 1u << i;
        ts_req_add_header(hs->req, wanted_headers[i], value);
        break;
    }
    return MHD_YES;
}

/* dst gets at most cap - 1 bytes of src, NUL-terminated. */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    ts_request *req = cls;
    if (key)
        ts_req_add_query(req, key, value);
    return MHD_YES;
}

static void release_blob(void *cls)
{
    ts_blob_unref(cls);
}

static void fill_client_addr(struct MHD_Connection *conn, char *buf, size_t len)
{
    buf[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST);
}

static enum MHD_Result send_response(ts_http *h, struct MHD_Connection *conn, req_state *st,
                                     ts_response *resp);

/*
 * What an I/O thread keeps between requests: spare jobs and its prebuilt
 * responses (see "Prebuilt responses"). Created by the thread itself on
 * first use; a pthread key destructor frees it when libmicrohttpd ends the
 * thread. Any other thread (none should) gets NULL and allocates plainly.
 *
 * Spare jobs: a job is ~9 KB (a request and a response with their fixed
 * arrays), too big for malloc's per-thread caches, and every Redis HIT and
 * every render needs one; the thread that allocates it is the one that
 * frees it (libmicrohttpd completes a connection on its thread).
 */
#define SPARE_JOBS 32
typedef struct prebuilt_table prebuilt_table;
typedef struct io_state {
    int nspare;
    render_job *spare[SPARE_JOBS];
    prebuilt_table *prebuilt; /* NULL until a HIT may use one */
} io_state;
static __thread io_state *tls_io;
static pthread_key_t io_key;
static bool io_key_ok;
static pthread_once_t io_once = PTHREAD_ONCE_INIT;

static void prebuilt_table_free(prebuilt_table *t);

static void io_state_free(void *p)
{
    io_state *io = p;
    for (int i = 0; i < io->nspare; i++)
        free(io->spare[i]);
    if (io->prebuilt)
        prebuilt_table_free(io->prebuilt);
    free(io);
    tls_io = NULL;
}

static void io_key_init(void)
{
    io_key_ok = pthread_key_create(&io_key, io_state_free) == 0;
}

/* Only the thread's own calls create it (job_new, send_response: I/O
 * threads); job_free on a thread without one frees. */
static io_state *io_state_get(void)
{
    io_state *io = tls_io;
    if (io)
        return io;
    pthread_once(&io_once, io_key_init);
    if (io_key_ok && (io = calloc(1, sizeof *io)) && pthread_setspecific(io_key, io) != 0)
        TS_FREE(io); /* nothing would free it at thread exit */
    tls_io = io;
    return io;
}

static void job_free(render_job *job)
{
    io_state *io = tls_io;
    if (io && io->nspare < SPARE_JOBS)
        io->spare[io->nspare++] = job;
    else
        free(job);
}

static render_job *job_new(ts_http *h, struct MHD_Connection *conn, req_state *st,
                           const ts_request *req)
{
    io_state *io = io_state_get();
    render_job *job = io && io->nspare ? io->spare[--io->nspare] : malloc(sizeof *job);
    if (!job)
        return NULL;
    job->next = NULL;
    job->h = h;
    job->conn = conn;
    job->st = st;
    job->phase = JOB_RENDER;
    job->req = *req;
    job->req.may_defer = false;
    job->req.resumed = true;
    job->req.prefetch = NULL;
    if (req->client_addr) {
        copy_trunc(job->addr, sizeof job->addr, req->client_addr);
        job->req.client_addr = job->addr;
    }
    job->prefetch.rc = TS_CGET_ERROR;
    job->prefetch.blob = NULL;
    job->prefetch.klen = 0;
    ts_resp_init(&job->resp);
    job->queued_ns = ts_now_ns();
    return job;
}

/* Appends a job to the render pool's queue, unless it is full (the same
 * bound as the render slots' queue). With `suspend`, suspends the
 * connection first, under the lock, so a worker cannot resume it before. */
static bool pool_push(ts_http *h, render_job *job, bool suspend)
{
    pthread_mutex_lock(&h->mu);
    bool full = h->idle == 0 && h->queued >= (int)h->app->cfg->render_queue;
    if (!full) {
        if (suspend)
            MHD_suspend_connection(job->conn);
        ts_resp_init(&job->resp); /* may hold the deferred pass's marks */
        job->phase = JOB_RENDER;
        job->next = NULL;
        job->queued_ns = ts_now_ns();
        if (h->tail)
            h->tail->next = job;
        else
            h->head = job;
        h->tail = job;
        h->queued++;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return !full;
}

/* An asynchronous lookup's answer, on the cache's thread. A HIT goes back
 * to the I/O thread, which sends it; anything else must render, so it goes
 * straight to the render pool with the answer (no second lookup there). */
static void lookup_done(void *ud, int rc, ts_blob *blob)
{
    render_job *job = ud;
    ts_http *h = job->h;
    job->prefetch.rc = rc;
    job->prefetch.blob = blob;
    if (rc == TS_CGET_HIT || !pool_push(h, job, false)) {
        if (rc != TS_CGET_HIT)
            job->req.refuse = 1; /* the render queue is full: 503 */
        job->phase = JOB_AGAIN;
        MHD_resume_connection(job->conn);
    }
    /* Last: ts_http_stop waits for this count before the connections go. */
    __atomic_sub_fetch(&h->lookups, 1, __ATOMIC_RELEASE);
}

/* A deferred response: start its asynchronous lookup, or queue it for the
 * render pool. Returns true when the request is suspended and will come
 * back; false when it must be answered now with job->req (refuse set when
 * the queue is full), on this thread. */
static bool defer(ts_http *h, render_job *job, const ts_response *deferred)
{
    if (deferred->lookup && job->req.prefetch == NULL) {
        /* The handler's headers, for ts_app_finish_lookup (no body yet). */
        job->resp.status = deferred->status;
        job->resp.nheaders = deferred->nheaders;
        memcpy(job->resp.headers, deferred->headers, deferred->nheaders * sizeof *deferred->headers);
        job->resp.route_metric = deferred->route_metric;
        job->phase = JOB_LOOKUP;
        job->req.may_defer = true; /* a HIT is sent by the I/O thread */
        job->req.prefetch = &job->prefetch;
        memcpy(job->prefetch.key, deferred->lookup_key, deferred->lookup_klen);
        job->prefetch.klen = deferred->lookup_klen;
        /* Suspended before the lookup starts: its answer may come at once. */
        MHD_suspend_connection(job->conn);
        __atomic_add_fetch(&h->lookups, 1, __ATOMIC_RELAXED);
        if (ts_cache_lookup_async(h->app->cache, job->prefetch.key, job->prefetch.klen,
                                  lookup_done, job) == 0)
            return true;
        __atomic_sub_fetch(&h->lookups, 1, __ATOMIC_RELAXED);
        /* Not queued (the backend is down): the render pool asks it the
         * blocking way, which fails fast during an outage. */
        job->req.prefetch = NULL;
        job->req.may_defer = false;
        if (pool_push(h, job, false))
            return true;
        job->req.refuse = 1;
        job->phase = JOB_AGAIN;
        MHD_resume_connection(job->conn);
        return true;
    }
    job->req.may_defer = false;
    return pool_push(h, job, true);
}

/* A deferred request that cannot be deferred: handled again on this thread,
 * refused (503 + Retry-After) when refuse is set, rendered here otherwise. */
static void answer_now(ts_http *h, ts_request *req, ts_response *resp, int refuse)
{
    req->may_defer = false;
    req->resumed = true;
    req->refuse = refuse;
    ts_resp_init(resp);
    ts_app_handle(h->app, req, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    ts_http *h = cls;
    if (*con_cls == NULL) {
        /* Queuing a response on the first call makes libmicrohttpd close the
         * connection after it (no keep-alive): allocate state and return, and
         * answer on the next call. */
        req_state *st = malloc(sizeof *st);
        if (!st)
            return MHD_NO;
        st->start_ns = ts_now_ns();
        st->status = 0;
        st->bytes = 0;
        st->cache = TS_CACHE_NONE;
        st->job = NULL;
        copy_trunc(st->method, sizeof st->method, method);
        copy_trunc(st->path, sizeof st->path, url);
        *con_cls = st;
        __atomic_add_fetch(&h->inflight, 1, __ATOMIC_RELAXED);
        return MHD_YES;
    }
    req_state *st = *con_cls;
    if (*upload_data_size) {
        /* Bodies are not used by any route: discard them. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    render_job *job = st->job;
    if (job && job->phase == JOB_DONE) /* back from the render pool */
        return send_response(h, conn, st, &job->resp);
    if (job) {
        /* Back from an asynchronous lookup (JOB_AGAIN). A HIT is finished
         * from the first pass's headers; anything else (a refusal, an
         * undecodable entry) is handled again with the answer, and a
         * MISS can still go to the render pool. */
        if (!job->req.refuse && ts_app_finish_lookup(h->app, &job->req, &job->resp))
            return send_response(h, conn, st, &job->resp);
        job->req.may_defer = h->nworkers > 0 && !job->req.refuse;
        ts_resp_init(&job->resp);
        ts_app_handle(h->app, &job->req, &job->resp);
        if (job->resp.deferred && defer(h, job, &job->resp))
            return MHD_YES;
        if (job->resp.deferred) /* the render queue is full */
            answer_now(h, &job->req, &job->resp, 1);
        return send_response(h, conn, st, &job->resp);
    }

    /* Not memset: the query and header arrays are read only up to their counts. */
    ts_request req;
    req.method = method;
    req.path = url;
    req.nquery = 0;
    req.query_truncated = false;
    req.nheaders = 0;
    req.client_addr = NULL;
    req.start_ns = st->start_ns;
    req.prefetch = NULL;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &req);
    header_scan hs = {&req, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hs);
    /* The peer's address only identifies a client for rate limiting;
     * getnameinfo costs too much to run on every request for nothing. */
    char addr[64];
    if (h->app->ratelimit) {
        fill_client_addr(conn, addr, sizeof addr);
        req.client_addr = addr;
    }

    req.may_defer = h->nworkers > 0;
    req.resumed = false;
    req.refuse = 0;

    ts_response resp;
    ts_resp_init(&resp);
    ts_app_handle(h->app, &req, &resp);
    if (resp.deferred) {
        job = job_new(h, conn, st, &req);
        bool full = job != NULL; /* defer() fails only when the queue is full */
        if (job) {
            st->job = job;
            if (defer(h, job, &resp))
                return MHD_YES;
            st->job = NULL;
            job_free(job);
        }
        /* The queue is full (503), or no memory for a job (render here). */
        answer_now(h, &req, &resp, full ? 1 : 0);
    }
    return send_response(h, conn, st, &resp);
}

static void *render_worker(void *arg)
{
    ts_http *h = arg;
    pthread_setname_np(pthread_self(), "render"); /* for top -H and perf */
    for (;;) {
        pthread_mutex_lock(&h->mu);
        h->idle++;
        while (!h->head && !h->stopping)
            pthread_cond_wait(&h->cv, &h->mu);
        h->idle--;
        bool stopping = h->stopping;
        render_job *job = h->head;
        if (job) {
            h->head = job->next;
            if (!h->head)
                h->tail = NULL;
            h->queued--;
        }
        pthread_mutex_unlock(&h->mu);
        if (!job)
            break; /* stopping, and nothing left */
        /* Past the queue's time bound, or still queued when the drain
         * timed out: 503 + Retry-After instead of a render. */
        uint64_t waited_ms = (ts_now_ns() - job->queued_ns) / 1000000u;
        if (waited_ms > (uint64_t)h->app->cfg->render_queue_timeout_ms || stopping)
            job->req.refuse = 2;
        job->req.may_defer = false; /* this pass answers, whatever it takes */
        ts_app_handle(h->app, &job->req, &job->resp);
        job->phase = JOB_DONE;
        MHD_resume_connection(job->conn);
    }
    return NULL;
}

/*
 * Prebuilt responses. Building a libmicrohttpd response costs a malloc and a
 * mutex init, and each header added to it a few string scans and mallocs
 * (then as many frees): about 0.5 us of a cache HIT's ~15 us on the server.
 * A HIT of the memory cache hands out the same blob every time, so each I/O
 * thread keeps the response it built for a blob and queues it again:
 * libmicrohttpd counts a response's references (MHD_queue_response takes
 * one, the connection's cleanup drops it) and only reads a response with a
 * body buffer while sending it; the status line, Date, Connection and
 * Content-Length are written per connection (connection.c of 0.9.75).
 *
 * The key is the blob pointer plus a hash of everything else that goes into
 * the response (status, content type, headers, body slice). The pointer is a
 * sound identity: a slot holds a reference to its response, whose free
 * callback holds a reference to the blob, so the blob cannot be freed, and
 * its address cannot be reused by another blob, while the slot exists; and
 * a blob's bytes never change once filled. Whether the entry is still
 * current is the cache's business: the request looked it up and got this
 * very blob back before its slot is consulted, so TTLs and DELETE /cache
 * apply as before.
 *
 * Memory: a slot keeps its blob alive after the cache has dropped it
 * (eviction, expiry, deletion). Each thread's slots together hold at most
 * prebuilt_cap bytes (blob sizes plus an estimate of libmicrohttpd's
 * per-response allocations); the cap is a quarter of the memory cache's
 * budget split over the I/O threads, so the process never keeps more than
 * budget / 4 beyond the cache's own bound. Past the cap, a clock hand drops
 * the slots not hit since it last passed.
 *
 * The tables are thread-local: libmicrohttpd's threads are the only ones
 * that queue responses, and a pthread key destructor frees a thread's table
 * when MHD_stop_daemon ends the thread.
 */
/* Set-associative rather than direct-mapped: cycling over 1560 tiles (the
 * bench's list), a third of them would share a direct-mapped slot of 4096
 * with another and evict each other on every pass. */
#define PREBUILT_WAYS 4
#define PREBUILT_SETS 1024
#define PREBUILT_SLOTS (PREBUILT_WAYS * PREBUILT_SETS) /* a multiple of 64 */
/* libmicrohttpd's allocations for one response: the response struct and,
 * per header, an entry and copies of name and value. */
#define PREBUILT_OVERHEAD 1024

typedef struct prebuilt {
    const ts_blob *blob;    /* identity only: r's free callback holds the reference */
    uint64_t tag;           /* response_tag() of what r was built from */
    struct MHD_Response *r; /* our reference; NULL = empty slot */
    size_t cost;            /* blob->size + PREBUILT_OVERHEAD */
    bool used;              /* hit since the clock hand last passed */
} prebuilt;

struct prebuilt_table {
    size_t bytes; /* sum of cost over the occupied slots */
    size_t hand;  /* the clock hand, an index into slot[] */
    /* Bit i: slot[i] is occupied. With a small cap the table is mostly
     * empty, and the hand skips 64 empty slots a step. */
    uint64_t occupied[PREBUILT_SLOTS / 64];
    prebuilt slot[PREBUILT_SLOTS];
};

static void prebuilt_table_free(prebuilt_table *t)
{
    for (size_t i = 0; i < PREBUILT_SLOTS; i++)
        if (t->slot[i].r)
            MHD_destroy_response(t->slot[i].r); /* connections may still hold it */
    free(t);
}

/* This thread's table, created on first use; NULL when it cannot be (then
 * responses are built per request, as without the table). */
static prebuilt_table *prebuilt_table_get(void)
{
    io_state *io = io_state_get();
    if (io && !io->prebuilt)
        io->prebuilt = calloc(1, sizeof *io->prebuilt);
    return io ? io->prebuilt : NULL;
}

static prebuilt *prebuilt_set(prebuilt_table *t, const ts_blob *blob)
{
    /* Fibonacci hashing: malloc'd addresses differ mostly in middle bits. */
    uint64_t h = (uint64_t)(uintptr_t)blob * 0x9E3779B97F4A7C15ull;
    return &t->slot[(size_t)(h >> 54) % PREBUILT_SETS * PREBUILT_WAYS];
}

/* Appends s with its NUL, which cannot occur inside any field: the
 * concatenation determines the fields. */
static size_t put_cstr(unsigned char *buf, size_t n, const char *s)
{
    size_t len = strlen(s) + 1;
    memcpy(buf + n, s, len);
    return n + len;
}

/* A hash of everything besides the blob that send_response() puts into a
 * libmicrohttpd response. */
static uint64_t response_tag(const ts_response *resp)
{
    unsigned char buf[sizeof resp->content_type + sizeof resp->headers + 4 * sizeof(size_t)];
    size_t n = 0;
    memcpy(buf + n, &resp->status, sizeof resp->status);
    n += sizeof resp->status;
    memcpy(buf + n, &resp->body_off, sizeof resp->body_off);
    n += sizeof resp->body_off;
    memcpy(buf + n, &resp->body_len, sizeof resp->body_len);
    n += sizeof resp->body_len;
    n = put_cstr(buf, n, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++) {
        n = put_cstr(buf, n, resp->headers[i].name);
        n = put_cstr(buf, n, resp->headers[i].value);
    }
    return XXH3_64bits(buf, n);
}

static void prebuilt_drop(prebuilt_table *t, prebuilt *p)
{
    size_t i = (size_t)(p - t->slot);
    t->occupied[i / 64] &= ~(1ull << (i % 64));
    MHD_destroy_response(p->r);
    t->bytes -= p->cost;
    p->r = NULL;
    p->blob = NULL;
    p->used = false;
}

/* CLOCK over the whole table until `need` more bytes fit under cap. Two
 * turns at most: the first clears every used bit. */
static void prebuilt_make_room(prebuilt_table *t, size_t cap, size_t need)
{
    for (size_t steps = 0; t->bytes + need > cap && steps < 2 * PREBUILT_SLOTS;) {
        size_t off = t->hand % 64;
        uint64_t bits = t->occupied[t->hand / 64] >> off;
        if (!bits) {
            steps += 64 - off;
            t->hand = (t->hand - off + 64) % PREBUILT_SLOTS;
            continue;
        }
        size_t skip = (size_t)__builtin_ctzll(bits);
        prebuilt *p = &t->slot[t->hand + skip];
        steps += skip + 1;
        t->hand = (t->hand + skip + 1) % PREBUILT_SLOTS;
        if (p->used)
            p->used = false;
        else
            prebuilt_drop(t, p);
    }
}

/* Keeps r (taking over the caller's reference) as the response for
 * (blob, tag). Returns false when it does not fit: the caller still owns r. */
static bool prebuilt_install(prebuilt_table *t, size_t cap, const ts_blob *blob, uint64_t tag,
                             struct MHD_Response *r)
{
    size_t cost = blob->size + PREBUILT_OVERHEAD;
    if (cost > cap)
        return false;
    /* Within the set: the slot of an older response for the same blob,
     * else an empty one, else one not hit lately, else any. */
    prebuilt *set = prebuilt_set(t, blob), *victim = NULL;
    for (int i = 0; i < PREBUILT_WAYS && !victim; i++)
        if (set[i].r && set[i].blob == blob)
            victim = &set[i];
    for (int i = 0; i < PREBUILT_WAYS && !victim; i++)
        if (!set[i].r)
            victim = &set[i];
    for (int i = 0; i < PREBUILT_WAYS && !victim; i++)
        if (!set[i].used)
            victim = &set[i];
    if (!victim)
        victim = &set[tag % PREBUILT_WAYS];
    if (victim->r)
        prebuilt_drop(t, victim);
    prebuilt_make_room(t, cap, cost);
    if (t->bytes + cost > cap)
        return false;
    size_t i = (size_t)(victim - t->slot);
    t->occupied[i / 64] |= 1ull << (i % 64);
    victim->blob = blob;
    victim->tag = tag;
    victim->r = r;
    victim->cost = cost;
    victim->used = false;
    t->bytes += cost;
    return true;
}

/* Queues resp (consumed) on conn; with keep-alive unless draining. */
static enum MHD_Result send_response(ts_http *h, struct MHD_Connection *conn, req_state *st,
                                     ts_response *resp)
{
    st->status = resp->status;
    st->bytes = resp->body_len;
    st->cache = resp->cache;

    /* Only HITs of a backend that hands out the same blob each time are
     * worth keeping (see "Prebuilt responses"); a draining server's
     * responses carry Connection: close and are never kept. */
    prebuilt_table *t = NULL;
    uint64_t tag = 0;
    const ts_blob *blob = resp->body;
    if (h->prebuilt_cap && resp->status == 200 && resp->cache == TS_CACHE_OUT_HIT && blob &&
        resp->body_len && !h->app->draining && (t = prebuilt_table_get())) {
        tag = response_tag(resp);
        prebuilt *set = prebuilt_set(t, blob);
        for (int i = 0; i < PREBUILT_WAYS; i++) {
            if (set[i].r && set[i].blob == blob && set[i].tag == tag) {
                set[i].used = true;
                enum MHD_Result ret = MHD_queue_response(conn, 200, set[i].r);
                ts_resp_clear(resp); /* the slot's response holds the blob */
                return ret;
            }
        }
    }

    struct MHD_Response *r;
    if (resp->body && resp->body_len) {
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            resp->body_len, resp->body->data + resp->body_off, release_blob, resp->body);
        if (r)
            resp->body = NULL; /* the MHD response owns the reference now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        ts_resp_clear(resp);
        return MHD_NO;
    }
    if (resp->content_type[0] && resp->status != 304)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    /* Draining: keep-alive clients must leave (new connections are refused),
     * or their next requests keep the drain busy until its timeout. */
    if (h->app->draining)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    /* A kept response stays referenced by its slot (r's free callback keeps
     * the blob alive, which is what makes `blob` a sound key). */
    if (!t || !prebuilt_install(t, h->prebuilt_cap, blob, tag, r))
        MHD_destroy_response(r);
    ts_resp_clear(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    ts_http *h = cls;
    req_state *st = *con_cls;
    if (!st)
        return;
    if (h->app->cfg->access_log) {
        double ms = (double)(ts_now_ns() - st->start_ns) / 1e6;
        ts_log(TS_LOG_INFO, "%s %s %d %zu %.2fms cache=%s%s", st->method, st->path, st->status,
               st->bytes, ms, ts_cache_outcome_name(st->cache),
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    }
    if (st->job) {
        ts_blob_unref(st->job->prefetch.blob);
        job_free(st->job);
    }
    free(st);
    *con_cls = NULL;
    __atomic_sub_fetch(&h->inflight, 1, __ATOMIC_RELAXED);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (TS_LOG_WARN < ts_log_threshold)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ts_log_raw(TS_LOG_WARN, "http: %s", msg);
}

static void stop_workers(ts_http *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    free(h->workers);
    h->workers = NULL;
    h->nworkers = 0;
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

ts_http *ts_http_start(ts_app *app, char *err, size_t errlen)
{
    ts_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->app = app;
    /* A quarter of the memory cache's budget over all I/O threads (see
     * "Prebuilt responses"); off without a backend whose HITs share blobs. */
    h->prebuilt_cap =
        ts_cache_stable_bytes(app->cache) / 4 / (size_t)(app->threads > 0 ? app->threads : 1);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    /* Twice as many render threads as I/O threads: render slots
     * (--max-renders, default one per I/O thread) bound how many renders run
     * at once, and the other threads wait for a slot or for another
     * request's render (coalescing) without holding up the rest. */
    int nworkers = app->threads * 2 < 4 ? 4 : app->threads * 2;
    h->workers = calloc((size_t)nworkers, sizeof *h->workers);
    for (int i = 0; h->workers && i < nworkers; i++) {
        if (pthread_create(&h->workers[i], NULL, render_worker, h) != 0)
            break;
        h->nworkers++;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%ld", app->cfg->port);
    const char *host = app->cfg->host[0] ? app->cfg->host : NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", app->cfg->host,
                 gai_strerror(gai));
        stop_workers(h);
        free(h);
        return NULL;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)app->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)app->cfg->connection_timeout,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        /* The request line and headers must fit in this per-connection
         * arena: a longer URL gets 414, longer headers 431, from
         * libmicrohttpd itself before any of our code runs. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)app->cfg->max_connections,
        /* 0 means "no limit" to us; libmicrohttpd takes 0 the same way. */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)app->cfg->max_connections_per_ip,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%ld (address in use or not permitted?)",
                 app->cfg->host, app->cfg->port);
        stop_workers(h);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : (int)app->cfg->port;
    return h;
}

int ts_http_port(const ts_http *h)
{
    return h->port;
}

void ts_http_stop(ts_http *h, int timeout_ms)
{
    if (!h)
        return;
    /* Stop accepting, then give in-flight requests time to complete before
     * the daemon closes idle keep-alive connections. */
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (__atomic_load_n(&h->inflight, __ATOMIC_RELAXED) == 0)
            break;
        usleep(10 * 1000);
    }
    /* Asynchronous lookups end within the cache's timeouts; their
     * connections stay suspended (so never time out) until they do, and
     * an answer must not resume a connection the daemon freed. */
    while (__atomic_load_n(&h->lookups, __ATOMIC_ACQUIRE) != 0)
        usleep(1000);
    /* The render threads finish what is queued (resuming each connection)
     * before the daemon goes: libmicrohttpd frees connections on stop, and
     * a render must not resume a freed one. */
    stop_workers(h);
    MHD_stop_daemon(h->daemon);
    free(h);
}
