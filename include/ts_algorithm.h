/*
 * Post-processing algorithms (TiTiler's `algorithm` + `algorithm_params`):
 * hillshade, slope, contours, terrarium, terrainrgb, normalizedIndex, with
 * TiTiler's parameter names, defaults and bounds.
 *
 * Buffers: neighbourhood algorithms (hillshade, slope) ask the reader for
 * ts_algorithm_buffer() extra pixels on each side; ts_algorithm_apply() reads
 * in->buffer and always returns the raster without it (output size = input
 * size - 2 * in->buffer, geotransform shifted accordingly, out->buffer = 0).
 *
 * Output ranges (out->dtype_min/max, used as the default stretch):
 *   hillshade, contours, terrarium, terrainrgb: uint8 values 0..255 (RGB for
 *     the last three), dtype range 0..255 so no stretch changes them;
 *   slope: degrees as float, dtype range 0..90 (TiTiler's output_min/max);
 *   normalizedIndex: float -1..1, dtype range -1..1.
 *
 * Masks: masked input pixels are masked in the output. For hillshade and
 * slope an output pixel is also masked when any sample its gradient uses is
 * masked (what numpy.gradient on a masked array does in TiTiler). terrarium
 * and terrainrgb accept `nodata_height`, which encodes masked pixels with that
 * height and makes them valid (as in TiTiler).
 *
 * A parsed ts_algorithm is immutable; apply it from any number of threads.
 */
#ifndef TS_ALGORITHM_H
#define TS_ALGORITHM_H

#include "ts_common.h"
#include "ts_raster.h"

typedef struct ts_algorithm ts_algorithm;

/* Longest algorithm_params JSON accepted (it comes from the query string). */
#define TS_ALGORITHM_PARAMS_MAX 4096

/* Look up `name` (case-sensitive, as TiTiler) and parse params_json (a JSON
 * object; NULL or "" = defaults). 400 for unknown names (listing the valid
 * ones), malformed JSON, unknown parameters and out-of-range values (naming
 * the parameter). */
int ts_algorithm_parse(const char *name, const char *params_json, ts_algorithm **out, ts_ctx *ctx);
void ts_algorithm_free(ts_algorithm *a); /* NULL-safe */

const char *ts_algorithm_name(const ts_algorithm *a);
/* Pixels of extra data to read around the tile on each side (0 for per-pixel
 * algorithms). */
int ts_algorithm_buffer(const ts_algorithm *a);
/* Input bands used: the first N bands of `in` (1 for DEM algorithms, 2 for
 * normalizedIndex); extra bands are ignored, as in TiTiler. */
int ts_algorithm_input_bands(const ts_algorithm *a);
int ts_algorithm_output_bands(const ts_algorithm *a);

/* Run the algorithm. `out` is allocated here (release with ts_raster_free). */
int ts_algorithm_apply(const ts_algorithm *a, const ts_raster *in, ts_raster *out, ts_ctx *ctx);

/* Comma-separated list of algorithm names, for error messages and docs. */
const char *ts_algorithm_names(void);

#endif
