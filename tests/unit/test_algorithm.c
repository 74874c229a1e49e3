/* Algorithms: parameter parsing, DEM algorithms against hand-computed
 * values, encodings round-trip, masks and buffers. */
#include "ts_algorithm.h"
#include "ts_test.h"

static ts_algorithm *parse_ok(const char *name, const char *json)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_algorithm *a = NULL;
    if (ts_algorithm_parse(name, json, &a, &ctx) != 0) {
        fprintf(stderr, "  parse(%s, %s): %s\n", name, json ? json : "NULL", ctx.detail);
        return NULL;
    }
    return a;
}

static int parse_fails(const char *name, const char *json, const char *needle)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    ts_algorithm *a = (ts_algorithm *)1;
    int rc = ts_algorithm_parse(name, json, &a, &ctx);
    if (rc != -TS_EBAD_REQUEST || a != NULL || ctx.status != 400 ||
        (needle && !strstr(ctx.detail, needle))) {
        fprintf(stderr, "  parse(%s, %s) rc=%d detail='%s' (wanted '%s')\n", name,
                json ? json : "NULL", rc, ctx.detail, needle ? needle : "");
        return 0;
    }
    return 1;
}

/* A DEM of w x h with z = gx * x + gy * y in map units, x = col * px and
 * y = row * py (rows run south, as in a north-up raster). */
static int make_plane(ts_raster *r, int w, int h, double px, double py, double gx, double gy)
{
    if (ts_raster_alloc(r, w, h, 1) < 0)
        return -1;
    r->geotransform[0] = 500000;
    r->geotransform[1] = px;
    r->geotransform[3] = 4000000;
    r->geotransform[5] = -py;
    for (int row = 0; row < h; row++)
        for (int c = 0; c < w; c++)
            r->data[row * w + c] = (float)(gx * c * px + gy * row * py);
    return 0;
}

static int apply(const ts_algorithm *a, const ts_raster *in, ts_raster *out)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    int rc = ts_algorithm_apply(a, in, out, &ctx);
    if (rc != 0)
        fprintf(stderr, "  apply: %s\n", ctx.detail);
    return rc;
}

static void parse_names_and_defaults(void)
{
    CHECK(parse_fails("hilshade", NULL, "hillshade, slope, contours"));
    CHECK(parse_fails(NULL, NULL, "unknown algorithm"));
    CHECK(parse_fails("Hillshade", NULL, "unknown algorithm"));

    ts_algorithm *a = parse_ok("hillshade", NULL);
    CHECK(a);
    CHECK_INT(ts_algorithm_buffer(a), 3);
    CHECK_INT(ts_algorithm_input_bands(a), 1);
    CHECK_INT(ts_algorithm_output_bands(a), 1);
    CHECK_STR(ts_algorithm_name(a), "hillshade");
    ts_algorithm_free(a);

    a = parse_ok("slope", "  ");
    CHECK(a);
    CHECK_INT(ts_algorithm_buffer(a), 3);
    ts_algorithm_free(a);

    a = parse_ok("normalizedIndex", "{}");
    CHECK(a);
    CHECK_INT(ts_algorithm_input_bands(a), 2);
    CHECK_INT(ts_algorithm_buffer(a), 0);
    ts_algorithm_free(a);

    const char *rgb[] = {"terrarium", "terrainrgb", "contours"};
    for (int i = 0; i < 3; i++) {
        a = parse_ok(rgb[i], NULL);
        CHECK(a);
        CHECK_INT(ts_algorithm_buffer(a), 0);
        CHECK_INT(ts_algorithm_output_bands(a), 3);
        ts_algorithm_free(a);
    }

    a = parse_ok("hillshade", "{\"buffer\": 5, \"azimuth\": \"270\", \"angle_altitude\": 30.5}");
    CHECK(a);
    CHECK_INT(ts_algorithm_buffer(a), 5);
    ts_algorithm_free(a);
    a = parse_ok("terrarium", "{\"nodata_height\": null}");
    CHECK(a);
    ts_algorithm_free(a);
    ts_algorithm_free(NULL);
}

static void bad_params(void)
{
    CHECK(parse_fails("hillshade", "{", "invalid JSON"));
    CHECK(parse_fails("hillshade", "{\"azimuth\": }", "invalid JSON"));
    CHECK(parse_fails("hillshade", "{} x", "trailing"));
    CHECK(parse_fails("hillshade", "[1, 2]", "JSON object"));
    CHECK(parse_fails("hillshade", "42", "JSON object"));
    CHECK(parse_fails("hillshade", "{\"azimuth\": 400}", "'azimuth'"));
    CHECK(parse_fails("hillshade", "{\"azimuth\": 1.5}",
                      "'azimuth' for hillshade must be an integer"));
    CHECK(parse_fails("hillshade", "{\"azimuth\": null}", "'azimuth'"));
    CHECK(parse_fails("hillshade", "{\"angle_altitude\": -91}", "'angle_altitude'"));
    CHECK(parse_fails("hillshade", "{\"buffer\": \"three\"}", "'buffer'"));
    CHECK(parse_fails("hillshade", "{\"buffer\": 100}", "'buffer'"));
    CHECK(parse_fails("hillshade", "{\"buffer\": true}", "'buffer'"));
    CHECK(parse_fails("hillshade", "{\"buffer\": NaN}", NULL));
    CHECK(parse_fails("hillshade", "{\"z_exaggeration\": 0}", "'z_exaggeration'"));
    CHECK(parse_fails("hillshade", "{\"azimut\": 90}", "unknown parameter 'azimut'"));
    CHECK(parse_fails("normalizedIndex", "{\"buffer\": 1}", "valid: none"));
    CHECK(parse_fails("terrainrgb", "{\"interval\": 0}", "'interval'"));
    CHECK(parse_fails("terrainrgb", "{\"interval\": 2}", "'interval'"));
    CHECK(parse_fails("contours", "{\"minz\": 10, \"maxz\": 10}", "'minz'"));
    CHECK(parse_fails("contours", "{\"increment\": -1}", "'increment'"));
    CHECK(parse_fails("contours", "{\"thickness\": {\"a\": 1}}", "'thickness'"));
    CHECK(parse_fails("hillshade",
                      "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}", NULL));
    char big[TS_ALGORITHM_PARAMS_MAX + 10];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(parse_fails("hillshade", big, "longer than"));
}

/*
 * A plane rising to the east with gradient s, lit from the direction the
 * TiTiler formula treats as facing it (azimuth 90): aspect = atan2(-s, 0) =
 * -pi/2, cos(rad(360-90) - aspect) = 1, so shaded = sin(alt) cos(t) +
 * cos(alt) sin(t) = sin(alt + t) with t = atan(s). Azimuth 270 gives
 * sin(alt - t). Flat ground gives sin(alt).
 */
static void hillshade_tilted_plane(void)
{
    double s = 0.5, alt = 30.0;
    ts_raster in, out;
    CHECK(make_plane(&in, 16, 16, 30.0, 30.0, s, 0.0) == 0);
    in.buffer = 3;

    ts_algorithm *a = parse_ok("hillshade", "{\"azimuth\": 90, \"angle_altitude\": 30}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 10);
    CHECK_INT(out.height, 10);
    CHECK_INT(out.bands, 1);
    CHECK_INT(out.buffer, 0);
    CHECK_NEAR(out.dtype_min, 0, 0);
    CHECK_NEAR(out.dtype_max, 255, 0);
    double t = atan(s), ar = alt * M_PI / 180;
    double lit = floor((sin(ar + t) + 1) * 127.5);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(out.mask[i], 255);
        CHECK_NEAR(out.data[i], lit, 0);
    }
    ts_raster_free(&out);
    ts_algorithm_free(a);

    a = parse_ok("hillshade", "{\"azimuth\": 270, \"angle_altitude\": 30}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    double shadow = floor((sin(ar - t) + 1) * 127.5);
    CHECK(shadow < lit);
    for (int i = 0; i < 100; i++)
        CHECK_NEAR(out.data[i], shadow, 0);
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* Pixel size matters: the same DEM values with 60 m pixels halve s. */
    in.geotransform[1] = 60.0;
    a = parse_ok("hillshade", "{\"azimuth\": 90, \"angle_altitude\": 30}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_NEAR(out.data[0], floor((sin(ar + atan(s / 2)) + 1) * 127.5), 0);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);

    /* Flat ground with the defaults (altitude 45): floor(1.7071 * 127.5). */
    CHECK(make_plane(&in, 8, 8, 10, 10, 0, 0) == 0);
    in.buffer = 3;
    a = parse_ok("hillshade", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 2);
    CHECK_NEAR(out.data[3], floor((sin(M_PI / 4) + 1) * 127.5), 0);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

/* Slope of a plane with known gradients, with non-square pixels so each axis
 * must be divided by its own pixel size. */
static void slope_plane(void)
{
    double gx = 0.5, gy = 0.25;
    ts_raster in, out;
    CHECK(make_plane(&in, 12, 9, 10.0, 20.0, gx, gy) == 0);
    in.buffer = 3;
    ts_algorithm *a = parse_ok("slope", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 6);
    CHECK_INT(out.height, 3);
    CHECK_NEAR(out.dtype_min, 0, 0);
    CHECK_NEAR(out.dtype_max, 90, 0);
    double expect = atan(sqrt(gx * gx + gy * gy)) * 180 / M_PI;
    for (int i = 0; i < 18; i++)
        CHECK_NEAR(out.data[i], expect, 1e-3);
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* 45 degrees exactly, z_exaggeration doubling it. */
    ts_raster_free(&in);
    CHECK(make_plane(&in, 8, 8, 5.0, 5.0, 1.0, 0.0) == 0);
    in.buffer = 1;
    a = parse_ok("slope", "{\"buffer\": 1, \"z_exaggeration\": 2}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_NEAR(out.data[0], atan(2.0) * 180 / M_PI, 1e-3);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

/* Output = input minus the buffer on each side, geotransform shifted; with
 * no buffer the edges use one-sided differences (numpy.gradient) so a plane
 * still shades uniformly. */
static void buffer_handling(void)
{
    ts_raster in, out;
    CHECK(make_plane(&in, 20, 14, 2.0, 2.0, 0.3, 0.1) == 0);
    in.buffer = 4;
    ts_algorithm *a = parse_ok("hillshade", "{\"buffer\": 4}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 12);
    CHECK_INT(out.height, 6);
    CHECK_NEAR(out.geotransform[0], 500000 + 4 * 2.0, 1e-9);
    CHECK_NEAR(out.geotransform[3], 4000000 - 4 * 2.0, 1e-9);
    CHECK_NEAR(out.geotransform[1], 2.0, 0);
    float v0 = out.data[0];
    ts_raster_free(&out);
    ts_algorithm_free(a);

    in.buffer = 0;
    a = parse_ok("hillshade", "{\"buffer\": 0}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 20);
    CHECK_INT(out.height, 14);
    for (int i = 0; i < 20 * 14; i++)
        CHECK_NEAR(out.data[i], v0, 0);
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* Per-pixel algorithms crop a buffer too. */
    in.buffer = 2;
    a = parse_ok("terrarium", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 16);
    CHECK_INT(out.height, 10);
    ts_raster_free(&out);

    /* A buffer that eats the whole input is a programming error: 500. */
    in.buffer = 7;
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK(ts_algorithm_apply(a, &in, &out, &ctx) < 0);
    CHECK_INT(ctx.status, 500);
    CHECK(out.data == NULL);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

/* A masked DEM pixel masks itself and every output whose gradient reads it. */
static void neighbourhood_masks(void)
{
    ts_raster in, out;
    CHECK(make_plane(&in, 9, 9, 1, 1, 0.2, 0.2) == 0);
    in.buffer = 1;
    in.mask[4 * 9 + 4] = 0; /* centre */
    in.data[4 * 9 + 4] = -99999.0f;
    ts_algorithm *a = parse_ok("slope", "{\"buffer\": 1}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.width, 7);
    int masked = 0;
    for (int r = 0; r < 7; r++) {
        for (int c = 0; c < 7; c++) {
            int ir = r + 1, ic = c + 1;
            int near = (ir == 4 && ic == 4) || (ir == 4 && abs(ic - 4) == 1) ||
                       (ic == 4 && abs(ir - 4) == 1);
            CHECK_INT(out.mask[r * 7 + c], near ? 0 : 255);
            if (near) {
                CHECK_NEAR(out.data[r * 7 + c], 0, 0);
                masked++;
            } else {
                CHECK_NEAR(out.data[r * 7 + c], atan(sqrt(0.08)) * 180 / M_PI, 1e-3);
            }
        }
    }
    CHECK_INT(masked, 5);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

static ts_raster elevations(const float *h, int n)
{
    ts_raster r;
    ts_raster_alloc(&r, n, 1, 1);
    memcpy(r.data, h, sizeof(float) * (size_t)n);
    return r;
}

static void terrainrgb_round_trip(void)
{
    const float h[] = {-100.0f, 0.0f, 1234.5f, 8848.8f, -10000.0f, 0.05f};
    ts_raster in = elevations(h, 6), out;
    ts_algorithm *a = parse_ok("terrainrgb", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.bands, 3);
    CHECK_NEAR(out.dtype_max, 255, 0);
    for (int i = 0; i < 6; i++) {
        double R = ts_raster_band(&out, 0)[i], G = ts_raster_band(&out, 1)[i],
               B = ts_raster_band(&out, 2)[i];
        CHECK(R == floor(R) && R >= 0 && R <= 255 && G >= 0 && G <= 255 && B >= 0 && B <= 255);
        double back = -10000 + ((R * 256 * 256 + G * 256 + B) * 0.1);
        CHECK_NEAR(back, h[i], 0.1);
    }
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* A custom base and interval decode with the same formula. */
    a = parse_ok("terrainrgb", "{\"baseval\": -500, \"interval\": 0.5}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    for (int i = 0; i < 4; i++) {
        double R = ts_raster_band(&out, 0)[i], G = ts_raster_band(&out, 1)[i],
               B = ts_raster_band(&out, 2)[i];
        CHECK_NEAR(-500 + (R * 65536 + G * 256 + B) * 0.5, h[i], 0.25);
    }
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);

    /* More than 256**3 steps between min and max: refused, not wrapped. */
    const float wide[] = {-1e6f, 1e6f};
    in = elevations(wide, 2);
    a = parse_ok("terrainrgb", NULL);
    CHECK(a);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK(ts_algorithm_apply(a, &in, &out, &ctx) < 0);
    CHECK_INT(ctx.status, 400);
    CHECK(strstr(ctx.detail, "256**3") != NULL);
    CHECK(out.data == NULL);
    /* ... unless the outlier is masked. */
    in.mask[0] = 0;
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.mask[0], 0);
    CHECK_INT(out.mask[1], 255);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

static void terrarium_round_trip(void)
{
    const float h[] = {-100.0f, 0.0f, 1234.5f, 8848.8f, -11034.25f, 0.3f};
    ts_raster in = elevations(h, 6), out;
    in.mask[5] = 0;
    ts_algorithm *a = parse_ok("terrarium", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    for (int i = 0; i < 5; i++) {
        double R = ts_raster_band(&out, 0)[i], G = ts_raster_band(&out, 1)[i],
               B = ts_raster_band(&out, 2)[i];
        CHECK_INT(out.mask[i], 255);
        CHECK_NEAR((R * 256 + G + B / 256) - 32768, h[i], 1.0 / 256);
    }
    CHECK_INT(out.mask[5], 0);
    CHECK_NEAR(ts_raster_band(&out, 0)[5], 0, 0);
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* nodata_height encodes masked pixels and makes them valid. */
    a = parse_ok("terrarium", "{\"nodata_height\": -5}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.mask[5], 255);
    double R = ts_raster_band(&out, 0)[5], G = ts_raster_band(&out, 1)[5],
           B = ts_raster_band(&out, 2)[5];
    CHECK_NEAR((R * 256 + G + B / 256) - 32768, -5, 1.0 / 256);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

static void normalized_index(void)
{
    /* band 1 = red, band 2 = nir; (nir - red) / (nir + red). */
    const float v[] = {10, 0, 30, 5, 1, /* b1 */ 30, 0, 10, -5, 1 /* b2 */};
    ts_raster in, out;
    CHECK(ts_raster_alloc(&in, 5, 1, 2) == 0);
    memcpy(in.data, v, sizeof v);
    in.mask[4] = 0;
    ts_algorithm *a = parse_ok("normalizedIndex", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.bands, 1);
    CHECK_NEAR(out.dtype_min, -1, 0);
    CHECK_NEAR(out.dtype_max, 1, 0);
    CHECK_NEAR(out.data[0], 0.5, 1e-7);
    CHECK_INT(out.mask[1], 0); /* 0 / 0 */
    CHECK_NEAR(out.data[2], -0.5, 1e-7);
    CHECK_INT(out.mask[3], 0); /* -10 / 0 */
    CHECK_INT(out.mask[4], 0); /* masked input */
    CHECK_INT(out.mask[0], 255);
    ts_raster_free(&out);

    /* One band is not enough. */
    ts_raster one;
    CHECK(ts_raster_alloc(&one, 2, 2, 1) == 0);
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK(ts_algorithm_apply(a, &one, &out, &ctx) < 0);
    CHECK_INT(ctx.status, 400);
    CHECK(strstr(ctx.detail, "normalizedIndex needs 2 input bands") != NULL);
    ts_raster_free(&one);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

/* Lines (black) exactly where elevation % increment < thickness, the
 * terrain colormap elsewhere, extremes at the colormap ends. */
static void contours_lines(void)
{
    const float h[] = {0, 5, 10, 10.5f, 11, 19.99f, 20, -10, -9.5f, -12000, 8005, 8000};
    int n = 12;
    ts_raster in = elevations(h, n), out;
    ts_algorithm *a = parse_ok("contours", "{\"increment\": 10, \"thickness\": 1}");
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_INT(out.bands, 3);
    for (int i = 0; i < n; i++) {
        double m = fmod(h[i], 10.0);
        if (m < 0)
            m += 10;
        int line = m < 1.0;
        float R = ts_raster_band(&out, 0)[i], G = ts_raster_band(&out, 1)[i],
              B = ts_raster_band(&out, 2)[i];
        CHECK_INT(out.mask[i], 255);
        if (line)
            CHECK(R == 0 && G == 0 && B == 0);
        else
            CHECK(R + G + B > 0);
    }
    ts_raster_free(&out);
    ts_algorithm_free(a);

    /* With the defaults (increment 35), 8005 is off-line and at/above maxz:
     * colormap entry 255, white; -11995 (off-line) is entry 1, deep blue. */
    const float ends[] = {8005, -11995};
    ts_raster_free(&in);
    in = elevations(ends, 2);
    a = parse_ok("contours", NULL);
    CHECK(a);
    CHECK_INT(apply(a, &in, &out), 0);
    CHECK_NEAR(ts_raster_band(&out, 0)[0], 255, 0);
    CHECK_NEAR(ts_raster_band(&out, 1)[0], 255, 0);
    CHECK_NEAR(ts_raster_band(&out, 2)[0], 255, 0);
    CHECK(ts_raster_band(&out, 2)[1] > ts_raster_band(&out, 0)[1]);
    CHECK_NEAR(ts_raster_band(&out, 0)[1], 50, 1);
    ts_raster_free(&out);
    ts_algorithm_free(a);
    ts_raster_free(&in);
}

TS_TEST_MAIN(TEST(parse_names_and_defaults), TEST(bad_params), TEST(hillshade_tilted_plane),
             TEST(slope_plane), TEST(buffer_handling), TEST(neighbourhood_masks),
             TEST(terrainrgb_round_trip), TEST(terrarium_round_trip), TEST(normalized_index),
             TEST(contours_lines))
