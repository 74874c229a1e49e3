/*
 * From a float raster to an 8-bit image: rescale (explicit ranges, or the
 * data type's range as TiTiler does for non-8-bit data), colormap, colour
 * formula, and the alpha channel from the mask.
 */
#ifndef TS_RENDER_H
#define TS_RENDER_H

#include "ts_encode.h"
#include "ts_params.h"
#include "ts_raster.h"

struct ts_colormap;
struct ts_color_formula;

typedef struct ts_render_opts {
    const ts_params *params;
    int crop;                            /* pixels removed on each side (padding) */
    const struct ts_colormap *colormap;  /* NULL = none */
    const struct ts_color_formula *formula;
    bool force_alpha;                    /* PNG/WebP of a colormap with transparent entries */
    bool float_values;                   /* data formats: values were computed (expression) */
} ts_render_opts;

/* Fills img (data malloc'ed, free with free(img->data)). img->channels is 1, 2,
 * 3 or 4: an alpha channel is added only when some pixel is masked (and
 * return_mask is true). */
int ts_render_image(const ts_raster *r, const ts_render_opts *o, ts_image *img, ts_ctx *ctx);

/* For the data formats (tif, npy): the raster as a typed array, TiTiler's
 * way. With rescale, a colormap or a colour formula the rendered 8-bit image
 * is returned (colour channels as bands); otherwise the values themselves in
 * the source's data type (float32 once unscaled or computed). The mask
 * (0/255) is appended as a last band when return_mask is true. `crs` is the
 * TileMatrixSet's CRS. out->data is malloc'ed (free with free(out->data)). */
int ts_render_array(const ts_raster *r, const ts_render_opts *o, const char *crs, ts_array *out,
                    ts_ctx *ctx);

#endif
