/*
 * Redis value decoder (ts_cache_entry_decode): a shared Redis may hold any
 * bytes under our keys, so the decoder must reject garbage without reading
 * past the value. Whatever it accepts must survive a round trip through the
 * encoder byte for byte, and its header fields must be safe to put in an
 * HTTP header.
 */
#include "fuzz_common.h"
#include "ts_cache.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so ASan sees any read past the value. */
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);

    ts_cache_entry e;
    if (ts_cache_entry_decode(copy, size, &e) == 0) {
        if (e.status < 100 || e.status > 599 || e.content_type_len > 255 || e.etag_len > 255)
            abort();
        const unsigned char *end = copy + size;
        if (e.body + e.body_len != end)
            abort(); /* trailing bytes must be rejected */
        for (size_t i = 0; i < e.content_type_len; i++)
            if (e.content_type[i] < 0x20 || e.content_type[i] > 0x7e)
                abort();
        for (size_t i = 0; i < e.etag_len; i++)
            if (e.etag[i] < 0x20 || e.etag[i] > 0x7e)
                abort();

        /* The encoder takes C strings: header bytes are printable, so no NUL. */
        char ctype[256], etag[256];
        memcpy(ctype, e.content_type, e.content_type_len);
        ctype[e.content_type_len] = '\0';
        memcpy(etag, e.etag, e.etag_len);
        etag[e.etag_len] = '\0';
        ts_blob *b = ts_cache_entry_encode(e.status, e.content_type_len ? ctype : NULL,
                                           e.etag_len ? etag : NULL, e.body, e.body_len);
        if (!b || b->size != size || memcmp(b->data, copy, size) != 0)
            abort();
        ts_cache_entry e2;
        if (ts_cache_entry_decode(b->data, b->size, &e2) != 0 || e2.status != e.status ||
            e2.content_type_len != e.content_type_len || e2.etag_len != e.etag_len ||
            e2.body_len != e.body_len)
            abort();
        ts_blob_unref(b);
    }

    /* Encoding arbitrary fields: the input split into content type, ETag and
     * body must either be refused or decode back to the same fields. */
    if (size >= 3) {
        int status = 100 + (int)(((unsigned)data[0] << 8 | data[1]) % 520); /* a few invalid */
        size_t clen = data[2] % 64;
        const uint8_t *p = data + 3;
        size_t left = size - 3;
        if (clen > left)
            clen = left;
        char *ctype = fuzz_strndup(p, clen);
        p += clen;
        left -= clen;
        size_t elen = left ? p[0] % 64 : 0;
        if (left) {
            p++;
            left--;
        }
        if (elen > left)
            elen = left;
        char *etag = fuzz_strndup(p, elen);
        p += elen;
        left -= elen;
        ts_blob *b = ts_cache_entry_encode(status, ctype, etag, p, left);
        if (b) {
            ts_cache_entry d;
            if (ts_cache_entry_decode(b->data, b->size, &d) != 0 || d.status != status ||
                d.content_type_len != strlen(ctype) ||
                memcmp(d.content_type, ctype, d.content_type_len) != 0 ||
                d.etag_len != strlen(etag) || memcmp(d.etag, etag, d.etag_len) != 0 ||
                d.body_len != left || (left && memcmp(d.body, p, left) != 0))
                abort();
            ts_blob_unref(b);
        }
        free(ctype);
        free(etag);
    }
    free(copy);
    return 0;
}
