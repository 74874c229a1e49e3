/*
 * The plain request and response structs that every module below `http`
 * works with. No libmicrohttpd types appear here, so handlers, the cache and
 * the renderer can be tested without a socket.
 */
#ifndef TS_REQUEST_H
#define TS_REQUEST_H

#include "ts_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ts_kv {
    const char *key;
    const char *value;
} ts_kv;

#define TS_MAX_QUERY 64
#define TS_MAX_REQ_HEADERS 16
/* Room for a cache key (ts_cache_key.str), terminator included. */
#define TS_CACHE_KEY_MAX 192

/* The answer of an asynchronous cache lookup made for this request before
 * it was handled again (see ts_response.lookup). */
typedef struct ts_prefetch {
    int rc;         /* TS_CGET_HIT, TS_CGET_MISS or TS_CGET_ERROR (ts_cache.h) */
    ts_blob *blob;  /* the entry on HIT; owned by whoever owns the prefetch */
    size_t klen;
    char key[TS_CACHE_KEY_MAX]; /* the key it answers for */
} ts_prefetch;

typedef struct ts_request {
    const char *method; /* "GET", "HEAD", "DELETE", ... */
    const char *path;   /* URL-decoded path, without the query string */
    ts_kv query[TS_MAX_QUERY]; /* in request order, repeated keys kept */
    size_t nquery;
    bool query_truncated;      /* more than TS_MAX_QUERY arguments were sent */
    ts_kv headers[TS_MAX_REQ_HEADERS]; /* the headers handlers may look at */
    size_t nheaders;
    const char *client_addr; /* textual peer address, may be NULL */
    uint64_t start_ns;
    /* Set by the http layer on its I/O thread: a request that would render
     * (or wait for another's render) is not served but marked deferred, to
     * be handled again on the render pool with `resumed` set. */
    bool may_defer;
    bool resumed;
    /* Set by the http layer when the render pool's queue refused or timed
     * out the request: 1 = queue full, 2 = waited too long. Answered 503. */
    int refuse;
    /* Set by the http layer when a lookup was made asynchronously for this
     * request (NULL otherwise): the cache uses it instead of asking its
     * backend again, if the key still matches. */
    const ts_prefetch *prefetch;
} ts_request;

/* Query names compare case-insensitively (the cache key normalises them too). */
const char *ts_req_query(const ts_request *req, const char *name);
/* All values of a repeated parameter, in order; returns how many exist (may exceed max). */
size_t ts_req_query_all(const ts_request *req, const char *name, const char **out, size_t max);
const char *ts_req_header(const ts_request *req, const char *name);
/* Add a query argument / header (used by the http layer and by tests). */
int ts_req_add_query(ts_request *req, const char *key, const char *value);
int ts_req_add_header(ts_request *req, const char *name, const char *value);

#define TS_MAX_RESP_HEADERS 16

typedef struct ts_header {
    char name[40];
    char value[400];
} ts_header;

typedef enum ts_cache_outcome {
    TS_CACHE_NONE = 0, /* not a cacheable route */
    TS_CACHE_OUT_HIT,
    TS_CACHE_OUT_MISS,
    TS_CACHE_OUT_BYPASS
} ts_cache_outcome;

typedef struct ts_response {
    int status;
    char content_type[80];
    ts_blob *body;       /* owned reference, may be NULL */
    size_t body_off;     /* the body is body->data[body_off .. body_off+body_len) */
    size_t body_len;
    ts_header headers[TS_MAX_RESP_HEADERS];
    size_t nheaders;
    ts_cache_outcome cache;
    bool deferred; /* see ts_request.may_defer: nothing else is filled in */
    /* With deferred: the cache wants lookup_key looked up asynchronously
     * first (a networked backend), and the request handled again with the
     * answer in ts_request.prefetch; without it, it wants the render pool. */
    bool lookup;
    size_t lookup_klen;
    char lookup_key[TS_CACHE_KEY_MAX];
    int route_metric; /* with lookup: the route, for the pass that answers */
} ts_response;

void ts_resp_init(ts_response *resp);
void ts_resp_clear(ts_response *resp); /* releases the body, resets to 200 */
int ts_resp_set_header(ts_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a literal value, without printf (the request path's headers);
 * _n takes value[0..len). Values longer than a header slot are cut like snprintf's. */
int ts_resp_set_header_str(ts_response *resp, const char *name, const char *value);
int ts_resp_set_header_n(ts_response *resp, const char *name, const char *value, size_t len);
const char *ts_resp_header(const ts_response *resp, const char *name);
/* Takes ownership of the blob's reference; the whole blob is the body. */
void ts_resp_set_body(ts_response *resp, int status, const char *content_type, ts_blob *body);
/* {"detail": "..."} with the given status; the detail is JSON-escaped. */
void ts_resp_error(ts_response *resp, int status, const char *detail);
/* JSON-escape s into buf (without quotes); bytes that do not start well-formed
 * UTF-8 become \ufffd, so the result is always valid JSON text. */
int ts_json_escape(ts_buf *buf, const char *s);
const char *ts_cache_outcome_name(ts_cache_outcome o);

#endif
