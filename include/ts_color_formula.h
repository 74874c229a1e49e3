/*
 * rio-color's colour formula language (TiTiler's `color_formula`), applied to
 * 8-bit RGB(A) pixels.
 *
 *   "gamma RGB 1.5"              x -> x^(1/1.5) on R, G and B
 *   "sigmoidal RGB 10 0.3"       sigmoidal contrast 10 centred on 0.3
 *   "saturation 1.2"             chroma x 1.2 in rio-color's LCH space
 *   "gamma b 1.85, gamma rg 1.95 sigmoidal rgb 35 0.13 saturation 1.15"
 *
 * Parsing follows rio-color's parse_operations: commas are deleted (not
 * turned into spaces), tokens are separated by whitespace, an operation name
 * (any case) starts a new operation, and a band list is any combination of
 * R, G, B or 1, 2, 3. Unlike rio-color, repeated whitespace is harmless and
 * the argument count must be exact (rio-color silently drops extras).
 *
 * Values are computed as rio-tiler does: each operation sees the pixels as
 * float64 in 0..1 (v / 255) and its result is truncated back to uint8 (v *
 * 255, clamped to 0..255; NaN becomes 0) before the next operation.
 */
#ifndef TS_COLOR_FORMULA_H
#define TS_COLOR_FORMULA_H

#include "ts_common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ts_color_formula ts_color_formula;

/* Bounds on user input. */
#define TS_COLOR_FORMULA_MAX_LEN 4096
#define TS_COLOR_FORMULA_MAX_OPS 32

/* Parse s. On success *out owns a new formula; on error returns
 * -TS_EBAD_REQUEST with a message naming `color_formula` in ctx and *out is
 * NULL. */
int ts_color_formula_parse(const char *s, ts_color_formula **out, ts_ctx *ctx);

/* Apply in place to npix interleaved pixels of `channels` bytes: 3 (RGB) or 4
 * (RGBA, alpha untouched). Other channel counts are left unchanged: expand a
 * grey image to RGB before calling, as rio-color's operations need three
 * bands. Thread-safe on a shared formula. */
void ts_color_formula_apply(const ts_color_formula *f, uint8_t *pixels, size_t npix,
                            int channels);

/* NULL-safe. */
void ts_color_formula_free(ts_color_formula *f);

#endif
