/* Refcounted blobs and growable buffers (see ts_common.h). */
#include "ts_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ts_blob *ts_blob_new(size_t size)
{
    ts_blob *b = malloc(sizeof *b + size + 1);
    if (!b)
        return NULL;
    b->size = size;
    b->refcount = 1;
    /* A trailing NUL lets text bodies be used as C strings without a copy. */
    b->data[size] = '\0';
    return b;
}

ts_blob *ts_blob_from(const void *data, size_t size)
{
    ts_blob *b = ts_blob_new(size);
    if (b && size)
        memcpy(b->data, data, size);
    return b;
}

ts_blob *ts_blob_ref(ts_blob *b)
{
    if (b)
        __atomic_add_fetch(&b->refcount, 1, __ATOMIC_RELAXED);
    return b;
}

void ts_blob_unref(ts_blob *b)
{
    if (b && __atomic_sub_fetch(&b->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        free(b);
}

int ts_buf_reserve(ts_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d)
        return -TS_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int ts_buf_append(ts_buf *b, const void *data, size_t n)
{
    if (ts_buf_reserve(b, n + 1) < 0)
        return -TS_ENOMEM;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ts_buf_appendf(ts_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -TS_EINTERNAL;
    if (ts_buf_reserve(b, (size_t)n + 1) < 0)
        return -TS_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void ts_buf_free(ts_buf *b)
{
    TS_FREE(b->data);
    b->len = b->cap = 0;
}

ts_blob *ts_buf_to_blob(ts_buf *b)
{
    ts_blob *blob = ts_blob_from(b->data, b->len);
    ts_buf_free(b);
    return blob;
}
