"""Rendering parameters decoded and checked against values computed from GDAL's own reads."""
import json
import math
import os
import urllib.parse

import numpy as np
import pytest
from osgeo import gdal

import test_tiles_exact as ref

ROOT = ref.ROOT
SPOT = json.load(open(os.path.join(ROOT, "tests", "e2e", "data", "colormaps_expected.json")))["spot"]
WMQ = ref.load_tms("WebMercatorQuad")


@pytest.fixture(scope="module")
def srv(server):
    return server(data_root=ref.FIXTURES)


def tile(srv, get, path, **q):
    items = []
    for k, v in q.items():
        for vv in (v if isinstance(v, list) else [v]):
            items.append((k, vv))
    st, h, body = get(srv.url + path + "?" + urllib.parse.urlencode(items))
    return st, h, body


def raw(name, z, x, y, size=256, bidx=None):
    """Warped source values (float64) and the alpha mask, as gdalwarp gives them."""
    src = gdal.Open(os.path.join(ref.FIXTURES, name))
    if bidx:
        src = gdal.Translate("/vsimem/r.vrt", src, format="VRT", bandList=bidx)
    srs = ref.tms_srs(WMQ)
    srs.SetAxisMappingStrategy(0)
    out = gdal.Warp("", src, format="MEM", outputBounds=ref.tile_bounds(WMQ, z, x, y), width=size,
                    height=size, dstSRS=srs.ExportToWkt(), resampleAlg="near", dstAlpha=True)
    a = out.ReadAsArray().astype(np.float64)
    return a[:-1], a[-1]


def test_bidx_reorders_bands(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/20/219108/400918.png", url="cog_rgb.tif",
                       bidx=["3", "2", "1"])
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("cog_rgb.tif", 20, 219108, 400918)
    valid = alpha > 0
    for out_band, src_band in enumerate([2, 1, 0]):
        np.testing.assert_array_equal(arr[out_band][valid], data[src_band][valid].astype(np.uint8))


def test_rescale_is_linear_clipped_and_truncated(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif", rescale="0,1000")
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("cog.tif", 9, 175, 98)
    exp = (np.clip(data[0], 0, 1000) / 1000.0 * 255.0).astype(np.uint8)
    valid = alpha > 0
    np.testing.assert_array_equal(arr[0][valid], exp[valid])


def test_named_colormap_is_a_lookup_of_8bit_values(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/10/579/416.png", url="titiler_TCI.tif",
                       bidx="1", colormap_name="viridis")
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("titiler_TCI.tif", 10, 579, 416, bidx=[1])
    checked = 0
    for k, rgba in SPOT["viridis"].items():
        sel = (data[0] == int(k)) & (alpha > 0)
        if sel.any():
            for c in range(3):
                assert (arr[c][sel] == rgba[c]).all()
            checked += 1
    assert checked >= 2


def test_dataset_palette_applies_by_default(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/14/4578/6211.png", url="cog_cmap.tif")
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("cog_cmap.tif", 14, 4578, 6211)
    ds = gdal.Open(os.path.join(ref.FIXTURES, "cog_cmap.tif"))  # keeps the colour table alive
    ct = ds.GetRasterBand(1).GetColorTable()
    vals = np.unique(data[0][alpha > 0]).astype(int)
    assert len(vals) >= 2
    for v in vals[:10]:
        sel = (data[0] == v) & (alpha > 0)
        entry = ct.GetColorEntry(int(v))
        for c in range(3):
            assert (arr[c][sel] == entry[c]).all(), (v, c)


def test_interval_colormap_is_half_open(srv, get):
    cmap = json.dumps([[[0, 250], [255, 0, 0, 255]], [[250, 256], [0, 0, 255, 255]]])
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/10/579/416.png", url="titiler_TCI.tif",
                       bidx="1", colormap=cmap)
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("titiler_TCI.tif", 10, 579, 416, bidx=[1])
    valid = alpha > 0
    low, high = valid & (data[0] < 250), valid & (data[0] >= 250)
    assert low.any() and high.any()
    assert (arr[0][low] == 255).all() and (arr[2][low] == 0).all()
    assert (arr[0][high] == 0).all() and (arr[2][high] == 255).all()
    on_edge = valid & (data[0] == 250)
    if on_edge.any():
        assert (arr[2][on_edge] == 255).all()


def test_return_mask_false_drops_alpha(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog_ovr.tif", return_mask="false")
    assert st == 200 and ref.decode_png(body).shape[0] == 1


def test_tilesize_and_buffer(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif", tilesize="512")
    assert ref.decode_png(body).shape[1:] == (512, 512)
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif", buffer="2")
    assert ref.decode_png(body).shape[1:] == (260, 260)


BAD = [
    ("bidx", "0"), ("bidx", "x"), ("rescale", "1;2"), ("rescale", "1,2,3"), ("nodata", "abc"),
    ("unscale", "maybe"), ("resampling", "foo"), ("reproject", "foo"), ("return_mask", "x"),
    ("buffer", "0.3"), ("padding", "-1"), ("tilesize", "5"), ("colormap_name", "nope"),
    ("colormap", "{bad"), ("color_formula", "foo 1"),
]


@pytest.mark.parametrize("name,value", BAD, ids=["%s=%s" % b for b in BAD])
def test_bad_values_are_400_naming_the_parameter(srv, get, name, value):
    st, h, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif", **{name: value})
    assert st == 400, body
    assert h["Content-Type"] == "application/json"
    assert json.loads(body)["detail"].startswith(name), body


def test_expression_one_and_three_bands(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif",
                       expression="b1*2", rescale="0,2000")
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("cog.tif", 9, 175, 98)
    exp = (np.clip(data[0].astype(np.float32) * 2, 0, 2000) / 2000.0 * 255.0).astype(np.uint8)
    valid = alpha > 0
    assert np.abs(arr[0][valid].astype(int) - exp[valid].astype(int)).max() <= 1
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif",
                       expression="b1;b1/2;b1/4", rescale="0,1000")
    assert st == 200 and ref.decode_png(body).shape[0] in (3, 4)


def test_terrainrgb_round_trips_elevation(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/14/8515/5834.png", url="titiler_dem.tif",
                       algorithm="terrainrgb")
    assert st == 200
    arr = ref.decode_png(body).astype(np.float64)
    data, alpha = raw("titiler_dem.tif", 14, 8515, 5834)
    elev = -10000 + (arr[0] * 256 * 256 + arr[1] * 256 + arr[2]) * 0.1
    valid = alpha > 0
    assert valid.sum() > 1000
    assert np.abs(elev[valid] - data[0][valid]).max() <= 0.1 + 1e-6


def test_hillshade_renders(srv, get):
    st, h, body = tile(srv, get, "/tiles/WebMercatorQuad/14/8515/5834.png", url="titiler_dem.tif",
                       algorithm="hillshade", algorithm_params='{"azimuth": 315}')
    assert st == 200 and h["Content-Type"] == "image/png"
    assert ref.decode_png(body).shape[1:] == (256, 256)


@pytest.mark.parametrize("q", [
    {"expression": "b1+"}, {"expression": "b99"}, {"algorithm": "nope"},
    {"algorithm": "hillshade", "algorithm_params": "{bad"}, {"algorithm_params": "{}"},
])
def test_bad_expression_and_algorithm_are_400(srv, get, q):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/9/175/98.png", url="cog.tif", **q)
    assert st == 400, body
    assert json.loads(body)["detail"].split(":")[0] in ("expression", "algorithm", "algorithm_params", "bidx")


def warped(name, z, x, y, size=256, **kw):
    """gdal.Warp of a fixture onto a WebMercatorQuad tile with extra Warp options."""
    src = gdal.Open(os.path.join(ref.FIXTURES, name))
    srs = ref.tms_srs(WMQ)
    srs.SetAxisMappingStrategy(0)
    kw.setdefault("resampleAlg", "near")
    out = gdal.Warp("", src, format="MEM", outputBounds=ref.tile_bounds(WMQ, z, x, y), width=size,
                    height=size, dstSRS=srs.ExportToWkt(), dstAlpha=True, **kw)
    a = out.ReadAsArray().astype(np.float64)
    return a[:-1], a[-1]


def test_reproject_uses_the_warp_kernel(srv, get):
    # The tile grid is finer than the source here, so the kernel shows.
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/12/2317/1663.png", url="titiler_TCI.tif",
                       reproject="bilinear")
    assert st == 200
    arr = ref.decode_png(body).astype(int)
    data, alpha = warped("titiler_TCI.tif", 12, 2317, 1663, resampleAlg="bilinear")
    valid = alpha > 0
    assert valid.sum() > 10000
    assert np.abs(arr[:3][:, valid] - data[:, valid].astype(np.uint8)).max() <= 1
    near = ref.decode_png(tile(srv, get, "/tiles/WebMercatorQuad/12/2317/1663.png", url="titiler_TCI.tif")[2])
    assert (near[:3].astype(int) != arr[:3]).any()


def test_resampling_decimates_the_source(srv, get):
    """At a zoom coarser than the source, `resampling=average` (RasterIO decimation)
    must come out much closer to a true area average than nearest does."""
    path = "/tiles/WebMercatorQuad/7/72/51.png"
    bodies = {r: tile(srv, get, path, url="titiler_TCI.tif", resampling=r)[2]
              for r in ("nearest", "average")}
    default = tile(srv, get, path, url="titiler_TCI.tif")[2]
    assert bodies["nearest"] == default
    near = ref.decode_png(bodies["nearest"]).astype(float)
    avg = ref.decode_png(bodies["average"]).astype(float)
    exp, alpha = warped("titiler_TCI.tif", 7, 72, 51, resampleAlg="average")
    valid = (alpha > 0) & (near[-1] > 0) & (avg[-1] > 0)
    assert valid.sum() > 3000
    err_near = np.abs(near[:3][:, valid] - exp[:, valid]).mean()
    err_avg = np.abs(avg[:3][:, valid] - exp[:, valid]).mean()
    assert err_avg < 0.85 * err_near, (err_avg, err_near)
    # Away from the edges (where the warp's and the decimation's windows
    # differ), every pixel stays within the block's range, unlike a wrong read.
    assert err_avg < 6, err_avg


def test_nodata_nan_override(srv, get):
    z, x, y = 11, 328, 717
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/%d/%d/%d.png" % (z, x, y),
                       url="cog_nodata_nan.tif", nodata="nan", rescale="0,30")
    assert st == 200
    arr = ref.decode_png(body)
    _, alpha_nan = warped("cog_nodata_nan.tif", z, x, y, srcNodata="nan")
    _, alpha_default = warped("cog_nodata_nan.tif", z, x, y)
    # With nan as nodata, the file's own nodata (0) is data again.
    assert (alpha_nan > 0).sum() > (alpha_default > 0).sum()
    server_alpha = arr[-1] if arr.shape[0] in (2, 4) else np.full(arr.shape[1:], 255)
    np.testing.assert_array_equal(server_alpha > 0, alpha_nan > 0)


def test_unscale_applies_scale_and_offset(srv, get):
    src = gdal.Open(os.path.join(ref.FIXTURES, "cog_scale.tif"))
    b = src.GetRasterBand(1)
    scale, offset = b.GetScale(), b.GetOffset()
    info = json.loads(get(srv.url + "/tilejson.json?url=cog_scale.tif")[2])
    w, s, e, n = info["bounds"]
    z = info["maxzoom"]
    x = int(((w + e) / 2 + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians((s + n) / 2))) / math.pi) / 2 * 2 ** z)
    lo, hi = offset, offset + 13413 * scale
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/%d/%d/%d.png" % (z, x, y), url="cog_scale.tif",
                       unscale="true", rescale="%r,%r" % (lo, hi))
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = warped("cog_scale.tif", z, x, y)
    phys = data[0] * scale + offset
    exp = (np.clip(phys, lo, hi) - lo) / (hi - lo) * 255.0
    valid = alpha > 0
    assert valid.sum() > 1000
    assert np.abs(arr[0][valid].astype(int) - exp[valid].astype(np.uint8).astype(int)).max() <= 1
    # Without unscale the same range saturates the raw integers to 0 or 255.
    raw_arr = ref.decode_png(tile(srv, get, "/tiles/WebMercatorQuad/%d/%d/%d.png" % (z, x, y),
                                  url="cog_scale.tif", rescale="%r,%r" % (lo, hi))[2])
    assert np.isin(raw_arr[0][valid], [0, 255]).mean() > 0.99
    assert (raw_arr[0][valid] != arr[0][valid]).mean() > 0.5


def test_color_formula_gamma_matches_rio_color(srv, get):
    path = "/tiles/WebMercatorQuad/10/579/416.png"
    st, _, body = tile(srv, get, path, url="titiler_TCI.tif", color_formula="gamma RGB 2")
    assert st == 200
    arr = ref.decode_png(body).astype(np.float64)
    data, alpha = raw("titiler_TCI.tif", 10, 579, 416)
    exp = np.clip((data / 255.0) ** (1 / 2.0) * 255.0, 0, 255).astype(np.uint8)
    valid = alpha > 0
    np.testing.assert_array_equal(arr[:3][:, valid], exp[:, valid])


def test_color_formula_runs_before_the_colormap(srv, get):
    """rescale -> color_formula -> colormap: the colormap looks up the formula's output."""
    cmap = json.dumps({str(i): [i, 255 - i, 0, 255] for i in range(256)})
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/10/579/416.png", url="titiler_TCI.tif",
                       bidx="1", rescale="0,255", color_formula="gamma R 2", colormap=cmap)
    assert st == 200
    arr = ref.decode_png(body).astype(int)
    data, alpha = raw("titiler_TCI.tif", 10, 579, 416, bidx=[1])
    v = np.clip((data[0] / 255.0) ** 0.5 * 255.0, 0, 255).astype(np.uint8).astype(int)
    valid = alpha > 0
    np.testing.assert_array_equal(arr[0][valid], v[valid])
    np.testing.assert_array_equal(arr[1][valid], 255 - v[valid])


def test_dem_rescale_terrain_colormap(srv, get):
    st, _, body = tile(srv, get, "/tiles/WebMercatorQuad/14/8515/5834.png", url="titiler_dem.tif",
                       rescale="1000,3000", colormap_name="terrain")
    assert st == 200
    arr = ref.decode_png(body)
    data, alpha = raw("titiler_dem.tif", 14, 8515, 5834)
    idx = (np.clip(data[0], 1000, 3000) - 1000) / 2000.0 * 255.0
    idx = idx.astype(np.uint8)
    valid = alpha > 0
    assert valid.sum() > 1000
    checked = 0
    for k, rgba in SPOT["terrain"].items():
        sel = valid & (idx == int(k))
        if sel.any():
            for c in range(3):
                assert (arr[c][sel] == rgba[c]).all(), (k, c)
            checked += 1
    assert checked >= 1, "no spot value of terrain in this tile"


def test_padding_keeps_size_and_near_pixels(srv, get):
    path = "/tiles/WebMercatorQuad/9/175/98.png"
    a = ref.decode_png(tile(srv, get, path, url="cog.tif", rescale="0,1000")[2])
    b = ref.decode_png(tile(srv, get, path, url="cog.tif", rescale="0,1000", padding="4")[2])
    assert a.shape == b.shape
    # With nearest, padding reads more but the tile's own pixels stay put.
    np.testing.assert_array_equal(a, b)
