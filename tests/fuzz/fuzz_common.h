/*
 * Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c). Each target
 * defines LLVMFuzzerTestOneInput and, where it needs process-wide state,
 * LLVMFuzzerInitialize. See docs/fuzzing.md.
 */
#ifndef TS_FUZZ_COMMON_H
#define TS_FUZZ_COMMON_H

#include "ts_common.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of the input (embedded NULs are kept, so the string
 * the library sees may be shorter than size). Caller frees. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Every failing call must leave a message behind; every successful one must
 * leave the context untouched (ts_common.h's contract). */
static inline void fuzz_check_ctx(int rc, const ts_ctx *ctx)
{
    if (rc < 0 && (!ctx->code || !ctx->detail[0]))
        abort();
    if (rc == 0 && ctx->code)
        abort();
}

#endif
