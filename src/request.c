/* Request accessors and response helpers (see ts_request.h). */
#include "ts_request.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* strcasecmp(a, b) == 0, with the first bytes compared inline: most
 * comparisons on the request path (a parameter or header name against each
 * one present) fail there. x | 0x20 maps both cases of a letter to one value
 * and keeps every other byte distinct from the letters, so this never
 * rejects a pair strcasecmp would accept. */
static inline bool name_eq(const char *a, const char *b)
{
    return (a[0] | 0x20) == (b[0] | 0x20) && strcasecmp(a, b) == 0;
}

const char *ts_req_query(const ts_request *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (name_eq(req->query[i].key, name))
            return req->query[i].value;
    return NULL;
}

size_t ts_req_query_all(const ts_request *req, const char *name, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nquery; i++) {
        if (name_eq(req->query[i].key, name)) {
            if (n < max)
                out[n] = req->query[i].value;
            n++;
        }
    }
    return n;
}

const char *ts_req_header(const ts_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (name_eq(req->headers[i].key, name))
            return req->headers[i].value;
    return NULL;
}

int ts_req_add_query(ts_request *req, const char *key, const char *value)
{
    if (req->nquery >= TS_MAX_QUERY) {
        req->query_truncated = true;
        return -TS_EBAD_REQUEST;
    }
    req->query[req->nquery].key = key;
    req->query[req->nquery].value = value ? value : "";
    req->nquery++;
    return 0;
}

int ts_req_add_header(ts_request *req, const char *name, const char *value)
{
    if (req->nheaders >= TS_MAX_REQ_HEADERS)
        return -TS_EBAD_REQUEST;
    req->headers[req->nheaders].key = name;
    req->headers[req->nheaders].value = value ? value : "";
    req->nheaders++;
    return 0;
}

void ts_resp_init(ts_response *resp)
{
    /* Field by field: the header array is ~7 KB and only headers[0..nheaders)
     * is ever read, so zeroing the whole struct (twice per request) is waste. */
    resp->status = 200;
    resp->content_type[0] = '\0';
    resp->body = NULL;
    resp->body_off = resp->body_len = 0;
    resp->nheaders = 0;
    resp->cache = TS_CACHE_NONE;
    resp->deferred = false;
    resp->lookup = false;
}

void ts_resp_clear(ts_response *resp)
{
    ts_blob_unref(resp->body);
    ts_resp_init(resp);
}

/* Copies at most cap - 1 bytes of s[0..n) and terminates, like snprintf's "%.*s". */
static void copy_trunc(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The header named `name`, added when missing (NULL when the array is full). */
static ts_header *header_slot(ts_response *resp, const char *name)
{
    ts_header *h = NULL;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (name_eq(resp->headers[i].name, name))
            h = &resp->headers[i];
    if (!h) {
        if (resp->nheaders >= TS_MAX_RESP_HEADERS)
            return NULL;
        h = &resp->headers[resp->nheaders++];
        copy_trunc(h->name, sizeof h->name, name, strlen(name));
    }
    return h;
}

int ts_resp_set_header(ts_response *resp, const char *name, const char *fmt, ...)
{
    ts_header *h = header_slot(resp, name);
    if (!h)
        return -TS_EINTERNAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->value, sizeof h->value, fmt, ap);
    va_end(ap);
    return 0;
}

int ts_resp_set_header_n(ts_response *resp, const char *name, const char *value, size_t len)
{
    ts_header *h = header_slot(resp, name);
    if (!h)
        return -TS_EINTERNAL;
    copy_trunc(h->value, sizeof h->value, value, len);
    return 0;
}

int ts_resp_set_header_str(ts_response *resp, const char *name, const char *value)
{
    return ts_resp_set_header_n(resp, name, value, strlen(value));
}

const char *ts_resp_header(const ts_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (name_eq(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

void ts_resp_set_body(ts_response *resp, int status, const char *content_type, ts_blob *body)
{
    ts_blob_unref(resp->body);
    resp->status = status;
    copy_trunc(resp->content_type, sizeof resp->content_type, content_type, strlen(content_type));
    resp->body = body;
    resp->body_off = 0;
    resp->body_len = body ? body->size : 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) /* a NUL stops here: it is not a continuation byte */
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Details echo request values, which may hold any byte after percent
 * decoding (and messages may cut a character in half). JSON text must be
 * UTF-8, so each byte that does not start a well-formed sequence becomes
 * U+FFFD instead of making the whole body unparsable for strict clients. */
int ts_json_escape(ts_buf *buf, const char *s)
{
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        switch (*p) {
        case '"': rc = ts_buf_append(buf, "\\\"", 2); break;
        case '\\': rc = ts_buf_append(buf, "\\\\", 2); break;
        case '\n': rc = ts_buf_append(buf, "\\n", 2); break;
        case '\r': rc = ts_buf_append(buf, "\\r", 2); break;
        case '\t': rc = ts_buf_append(buf, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                rc = ts_buf_appendf(buf, "\\u%04x", *p);
            } else if (*p < 0x80) {
                rc = ts_buf_append(buf, p, 1);
            } else {
                size_t n = utf8_len(p);
                if (n) {
                    rc = ts_buf_append(buf, p, n);
                    p += n - 1;
                } else {
                    rc = ts_buf_append(buf, "\\ufffd", 6);
                }
            }
        }
    }
    return rc;
}

void ts_resp_error(ts_response *resp, int status, const char *detail)
{
    ts_buf b = {0};
    ts_blob *blob = NULL;
    if (ts_buf_append(&b, "{\"detail\":\"", 11) == 0 && ts_json_escape(&b, detail) == 0 &&
        ts_buf_append(&b, "\"}", 2) == 0)
        blob = ts_buf_to_blob(&b);
    ts_buf_free(&b);
    /* Headers set by a handler before it failed (ETag, cache state) do not
     * describe an error body: drop them. */
    ts_cache_outcome keep = resp->cache;
    ts_resp_clear(resp);
    resp->cache = keep;
    ts_resp_set_body(resp, status, "application/json", blob);
}

const char *ts_cache_outcome_name(ts_cache_outcome o)
{
    switch (o) {
    case TS_CACHE_OUT_HIT: return "HIT";
    case TS_CACHE_OUT_MISS: return "MISS";
    case TS_CACHE_OUT_BYPASS: return "BYPASS";
    default: return "-";
    }
}
