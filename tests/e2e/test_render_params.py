"""Rendering parameters decoded and checked against values computed from GDAL's own reads."""
import json
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
