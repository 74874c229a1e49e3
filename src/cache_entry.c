/*
 * Entry framing: the bytes a backend stores for one cached response.
 *
 *   "TSC1" | u16 status | u8 ctype_len | ctype | u8 etag_len | etag | u32 body_len | body
 *
 * Integers are little-endian so an entry written by one host decodes on any
 * other (Redis is shared between instances). The decoder treats its input as
 * hostile: a shared Redis may hold anything under our keys (a foreign writer,
 * a truncated value after maxmemory trouble), so every length is checked
 * against what remains, and header bytes that would let a value smuggle CR/LF
 * into a response header are rejected.
 */
#include "ts_cache.h"

#include <stdint.h>
#include <string.h>

#define MAGIC "TSC1"
#define MAGIC_LEN 4

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static unsigned get_u16(const unsigned char *p)
{
    return (unsigned)p[0] | ((unsigned)p[1] << 8);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Header values end up verbatim in HTTP headers: printable ASCII only. */
static int header_safe(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

ts_blob *ts_cache_entry_encode(int status, const char *content_type, const char *etag,
                               const void *body, size_t body_len)
{
    size_t clen = content_type ? strlen(content_type) : 0;
    size_t elen = etag ? strlen(etag) : 0;
    if (status < 100 || status > 599 || clen > 255 || elen > 255 || body_len > UINT32_MAX)
        return NULL;
    if (!header_safe((const unsigned char *)content_type, clen) ||
        !header_safe((const unsigned char *)etag, elen) || (body_len && !body))
        return NULL;
    size_t total = MAGIC_LEN + 2 + 1 + clen + 1 + elen + 4 + body_len;
    ts_blob *b = ts_blob_new(total);
    if (!b)
        return NULL;
    unsigned char *p = b->data;
    memcpy(p, MAGIC, MAGIC_LEN);
    p += MAGIC_LEN;
    put_u16(p, (unsigned)status);
    p += 2;
    *p++ = (unsigned char)clen;
    if (clen)
        memcpy(p, content_type, clen);
    p += clen;
    *p++ = (unsigned char)elen;
    if (elen)
        memcpy(p, etag, elen);
    p += elen;
    put_u32(p, (uint32_t)body_len);
    p += 4;
    if (body_len)
        memcpy(p, body, body_len);
    return b;
}

int ts_cache_entry_decode(const unsigned char *data, size_t len, ts_cache_entry *out)
{
    size_t pos = 0;
    if (!data || !out || len < MAGIC_LEN + 2 + 1 || memcmp(data, MAGIC, MAGIC_LEN) != 0)
        return -1;
    pos = MAGIC_LEN;
    unsigned status = get_u16(data + pos);
    pos += 2;
    if (status < 100 || status > 599)
        return -1;

    size_t clen = data[pos++];
    if (len - pos < clen + 1) /* ctype plus the etag length byte */
        return -1;
    const unsigned char *ctype = data + pos;
    pos += clen;

    size_t elen = data[pos++];
    if (len - pos < elen + 4) /* etag plus the body length */
        return -1;
    const unsigned char *etag = data + pos;
    pos += elen;

    size_t blen = get_u32(data + pos);
    pos += 4;
    /* Exact length: trailing bytes mean the value is not one of ours. */
    if (len - pos != blen)
        return -1;
    if (!header_safe(ctype, clen) || !header_safe(etag, elen))
        return -1;

    out->status = (int)status;
    out->content_type = (const char *)ctype;
    out->content_type_len = clen;
    out->etag = (const char *)etag;
    out->etag_len = elen;
    out->body = data + pos;
    out->body_len = blen;
    return 0;
}
