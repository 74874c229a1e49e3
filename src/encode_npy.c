/*
 * NumPy .npy writer (format version 1.0, as numpy.save writes it): a magic
 * string, a little-endian header length and a Python dict literal padded so
 * that the data starts on a 64-byte boundary, then the raw C-order samples.
 * The format is a header around a raw array, not a codec, and has no C
 * library in Debian.
 */
#include "ts_encode.h"

#include <stdio.h>
#include <string.h>

size_t ts_dtype_size(ts_dtype t)
{
    static const size_t sz[] = {[TS_DT_U8] = 1, [TS_DT_U16] = 2, [TS_DT_I16] = 2,
                                [TS_DT_U32] = 4, [TS_DT_I32] = 4, [TS_DT_F32] = 4};
    return (unsigned)t < sizeof sz / sizeof sz[0] ? sz[t] : 0;
}

int ts_encode_npy(const ts_array *a, ts_blob **out, ts_ctx *ctx)
{
    static const char *const descr[] = {[TS_DT_U8] = "|u1", [TS_DT_U16] = "<u2",
                                        [TS_DT_I16] = "<i2", [TS_DT_U32] = "<u4",
                                        [TS_DT_I32] = "<i4", [TS_DT_F32] = "<f4"};
    *out = NULL;
    size_t es = ts_dtype_size(a->dtype);
    if (!es || a->width <= 0 || a->height <= 0 || a->bands <= 0)
        return ts_ctx_error(ctx, TS_EINTERNAL, "npy: invalid array");
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ts_encode_npy writes native samples and declares them little-endian"
#endif
    char dict[160];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d, %d), }",
                     descr[a->dtype], a->bands, a->height, a->width);
    if (n < 0 || (size_t)n >= sizeof dict)
        return ts_ctx_error(ctx, TS_EINTERNAL, "npy: header too long");
    /* magic(6) + version(2) + len(2) + dict + padding + '\n' = multiple of 64 */
    size_t hlen = (size_t)n + 1;
    size_t total_head = 10 + hlen;
    size_t pad = (64 - total_head % 64) % 64;
    hlen += pad;
    size_t data_len = (size_t)a->width * a->height * a->bands * es;
    ts_blob *b = ts_blob_new(10 + hlen + data_len);
    if (!b)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    uint8_t *p = b->data;
    memcpy(p, "\x93NUMPY\x01\x00", 8);
    p[8] = (uint8_t)(hlen & 0xff);
    p[9] = (uint8_t)(hlen >> 8);
    memcpy(p + 10, dict, (size_t)n);
    memset(p + 10 + n, ' ', pad);
    p[10 + hlen - 1] = '\n';
    memcpy(p + 10 + hlen, a->data, data_len);
    *out = b;
    return 0;
}
