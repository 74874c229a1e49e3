/*
 * Band math (TiTiler/rio-tiler's `expression` parameter): `(b4-b3)/(b4+b3)`,
 * with `;` separating output bands (`b1;b2*2;b3/b1`). Band names are b1..bN,
 * 1-based, case-insensitive (the whole expression is lower-cased, as
 * rio-tiler does). Evaluation is done by muparser; on top of its built-ins
 * (sqrt, abs, min, max, log = natural log, exp, sin, `?:`, `&&`, `||`, ...)
 * the numexpr spellings rio-tiler users write are accepted: `**`, `&`, `|`,
 * where(c,a,b), arcsin/arccos/arctan/arctan2, log1p, expm1, ceil, floor.
 *
 * A compiled ts_expr is immutable and may be evaluated from several threads at
 * once: every evaluation builds its own muparser handle (muparser handles are
 * not thread-safe). See expression.c for the measured cost of that choice.
 */
#ifndef TS_EXPRESSION_H
#define TS_EXPRESSION_H

#include "ts_common.h"
#include "ts_raster.h"

/* Limits on untrusted input: the expression comes straight from the query. */
#define TS_EXPR_MAX_LEN 1024
#define TS_EXPR_MAX_OUTPUTS 32
#define TS_EXPR_MAX_BANDS 64
/* Highest band index accepted in a name (b65535); GDAL datasets never get
 * near it, and it keeps the digits parse overflow-free. */
#define TS_EXPR_MAX_BAND_INDEX 65535

typedef struct ts_expr ts_expr;

/* Parse and validate once. On error records a 400 naming `expression` (with
 * muparser's message for syntax errors) and returns a negative code; *out is
 * then NULL. */
int ts_expr_compile(const char *expr, ts_expr **out, ts_ctx *ctx);
void ts_expr_free(ts_expr *e); /* NULL-safe */

/* Sorted distinct 1-based band indexes the expression references: writes up
 * to max of them to idx and returns how many there are in total. The reader
 * reads only these bands, in this order. */
int ts_expr_bands(const ts_expr *e, int *idx, int max);

/* Number of output bands (non-empty `;`-separated blocks). */
int ts_expr_noutputs(const ts_expr *e);

/* Text of output block i (lower-cased, as evaluated): TiTiler uses the blocks
 * as band names/descriptions. NULL when i is out of range. */
const char *ts_expr_block(const ts_expr *e, int i);

/*
 * Evaluate per pixel. `in` holds bands in the order of in_band_idx (1-based
 * dataset indexes, in->bands entries), which must cover every band the
 * expression references. `out` is allocated here (release with
 * ts_raster_free) with ts_expr_noutputs() bands and the same size,
 * geotransform, buffer and dtype range as `in`.
 *
 * A masked input pixel stays masked; a pixel where any output is NaN or
 * +-Inf (division by zero, log of a negative, float overflow) becomes masked.
 * Masked output pixels hold 0 in every band.
 */
int ts_expr_eval(const ts_expr *e, const ts_raster *in, const int *in_band_idx, ts_raster *out,
                 ts_ctx *ctx);

#endif
