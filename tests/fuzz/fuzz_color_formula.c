/*
 * rio-color formulas (the `color_formula` query parameter):
 * ts_color_formula_parse, then ts_color_formula_apply to every byte value
 * as RGB and as RGBA (whose alpha must come back untouched).
 */
#include "fuzz_common.h"
#include "ts_color_formula.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TS_COLOR_FORMULA_MAX_LEN + 16)
        return 0;
    char *s = fuzz_strndup(data, size);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_color_formula *f = NULL;
    int rc = ts_color_formula_parse(s, &f, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc < 0) {
        if (f)
            abort();
        free(s);
        return 0;
    }
    if (!f)
        abort();

    uint8_t rgb[256 * 3], rgba[256 * 4];
    for (int i = 0; i < 256; i++) {
        rgb[3 * i] = (uint8_t)i;
        rgb[3 * i + 1] = (uint8_t)(255 - i);
        rgb[3 * i + 2] = (uint8_t)(i * 7);
        rgba[4 * i] = (uint8_t)i;
        rgba[4 * i + 1] = (uint8_t)(i * 3);
        rgba[4 * i + 2] = (uint8_t)(255 - i);
        rgba[4 * i + 3] = (uint8_t)(i ^ 0x5a);
    }
    ts_color_formula_apply(f, rgb, 256, 3);
    ts_color_formula_apply(f, rgba, 256, 4);
    for (int i = 0; i < 256; i++)
        if (rgba[4 * i + 3] != (uint8_t)(i ^ 0x5a))
            abort();
    uint8_t grey[16] = {0};
    ts_color_formula_apply(f, grey, 16, 1); /* documented no-op */
    for (int i = 0; i < 16; i++)
        if (grey[i])
            abort();
    ts_color_formula_free(f);
    free(s);
    return 0;
}
