/*
 * Colormap JSON (the `colormap` query parameter): ts_colormap_parse_json,
 * then ts_colormap_apply on values around every key and bound. Accepted maps
 * are checked against a straightforward reference built from the same JSON:
 * a linear "last match wins" scan, which is what rio-tiler does and what the
 * parser's sorting, de-duplication and bisection must preserve.
 */
#include "fuzz_common.h"
#include "ts_colormap.h"

#include <float.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

/* Reference colour parser (same grammar as ts_colormap.h documents). */
static int ref_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void ref_color(json_object *v, uint8_t out[4])
{
    out[3] = 255;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v) + 1;
        size_t nd = strlen(s);
        int w = (nd == 6 || nd == 8) ? 2 : 1;
        size_t nc = nd / (size_t)w;
        for (size_t i = 0; i < nc; i++) {
            int hi = ref_hex((unsigned char)s[i * w]);
            int lo = w == 2 ? ref_hex((unsigned char)s[i * w + 1]) : hi;
            out[i] = (uint8_t)(hi * 16 + lo);
        }
        return;
    }
    for (size_t i = 0; i < json_object_array_length(v) && i < 4; i++)
        out[i] = (uint8_t)json_object_get_double(json_object_array_get_idx(v, i));
}

static float ref_float(double d)
{
    if (d > FLT_MAX)
        return INFINITY;
    if (d < -FLT_MAX)
        return -INFINITY;
    return (float)d;
}

typedef struct ref_entry {
    float lo, hi; /* discrete: lo == key */
    uint8_t rgba[4];
} ref_entry;

#define MAX_VALUES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) /* the params layer caps the query value at 64 KiB */
        return 0;
    char *json = fuzz_strndup(data, size);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_colormap *cm = NULL;
    int rc = ts_colormap_parse_json(json, &cm, &ctx);
    fuzz_check_ctx(rc, &ctx);
    if (rc < 0) {
        if (cm)
            abort();
        free(json);
        return 0;
    }
    if (!cm)
        abort();

    /* The same document through json-c directly, for the reference. */
    json_object *root = json_tokener_parse(json);
    if (!root)
        abort(); /* the library accepted what json-c rejects? */
    bool intervals = json_object_is_type(root, json_type_array);
    size_t n = intervals ? json_object_array_length(root)
                         : (size_t)json_object_object_length(root);
    ref_entry *ref = calloc(n ? n : 1, sizeof *ref);
    if (!ref)
        abort();
    size_t i = 0;
    if (intervals) {
        for (i = 0; i < n; i++) {
            json_object *item = json_object_array_get_idx(root, i);
            json_object *range = json_object_array_get_idx(item, 0);
            ref[i].lo = ref_float(json_object_get_double(json_object_array_get_idx(range, 0)));
            ref[i].hi = ref_float(json_object_get_double(json_object_array_get_idx(range, 1)));
            ref_color(json_object_array_get_idx(item, 1), ref[i].rgba);
        }
    } else {
        json_object_object_foreach(root, key, val)
        {
            ref[i].lo = ref[i].hi = ref_float(strtod(key, NULL));
            ref_color(val, ref[i].rgba);
            i++;
        }
    }

    /* Values: every key/bound and its float neighbours, plus the usual suspects. */
    float *values = malloc(MAX_VALUES * sizeof *values);
    uint8_t *mask = malloc(MAX_VALUES);
    uint8_t *out = malloc(MAX_VALUES * 4);
    if (!values || !mask || !out)
        abort();
    size_t nv = 0;
    static const float fixed[] = {0.0f, -0.0f, 0.5f, 1.0f, 254.5f, 255.0f, 256.0f, -1.0f,
                                  1e30f, -1e30f, INFINITY, -INFINITY, NAN};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        values[nv++] = fixed[k];
    for (size_t k = 0; k < n && nv + 6 <= MAX_VALUES; k++) {
        values[nv++] = ref[k].lo;
        values[nv++] = nextafterf(ref[k].lo, -INFINITY);
        values[nv++] = nextafterf(ref[k].lo, INFINITY);
        values[nv++] = ref[k].hi;
        values[nv++] = nextafterf(ref[k].hi, -INFINITY);
        values[nv++] = nextafterf(ref[k].hi, INFINITY);
    }
    for (size_t k = 0; k < nv; k++)
        mask[k] = (k % 3 == 0) ? 0 : 255;

    if (ts_colormap_apply(cm, values, mask, nv, out) != 0)
        abort();
    ts_colormap_kind kind = ts_colormap_kind_of(cm);
    if (intervals != (kind == TS_COLORMAP_INTERVALS))
        abort();
    if (!ts_colormap_has_transparency(cm) && kind != TS_COLORMAP_LUT)
        abort();

    for (size_t k = 0; k < nv; k++) {
        float v = values[k];
        uint8_t want[4] = {0, 0, 0, 0};
        if (kind == TS_COLORMAP_LUT) {
            /* Keys are exactly 0..255: only check the integers. */
            if (!(v >= 0.0f && v <= 255.0f) || v != floorf(v))
                continue;
        }
        for (size_t e = n; e-- > 0;) {
            bool hit = intervals ? (v >= ref[e].lo && v < ref[e].hi) : (v == ref[e].lo);
            if (hit) {
                memcpy(want, ref[e].rgba, 4);
                break;
            }
        }
        want[3] &= mask[k];
        if (memcmp(out + 4 * k, want, 4) != 0) {
            fprintf(stderr, "value %.9g: got %d,%d,%d,%d want %d,%d,%d,%d\n", (double)v,
                    out[4 * k], out[4 * k + 1], out[4 * k + 2], out[4 * k + 3], want[0], want[1],
                    want[2], want[3]);
            abort();
        }
    }
    /* Without a mask, alpha is the colour's own. */
    if (ts_colormap_apply(cm, values, NULL, nv, out) != 0)
        abort();

    free(values);
    free(mask);
    free(out);
    free(ref);
    json_object_put(root);
    ts_colormap_free(cm);
    free(json);
    return 0;
}
