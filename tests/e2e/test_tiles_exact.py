"""Tiles must match what GDAL itself produces for the same tile.

For each fixture, TileMatrixSet, tile and scale, the expected pixels come from
gdal.Warp(outputBounds=<tile bounds>, width=W, height=H, dstSRS=<tms crs>,
resampleAlg='near', dstAlpha=True) -- the Python form of
`gdalwarp -te ... -ts W H -t_srs ... -r near -dstalpha` -- followed by the
default rendering (8-bit data as is, other types linearly stretched from the
data type's range and truncated, as TiTiler does). Tile bounds are computed
here from the TMS JSON, independently of the server.
"""
import json
import math
import os
import uuid

import numpy as np
import pytest
from osgeo import gdal, osr

gdal.UseExceptions()

ROOT = os.environ.get("TS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures")
TMS_DIR = os.path.join(ROOT, "tms")

DTYPE_RANGE = {
    gdal.GDT_Byte: (0, 255), gdal.GDT_UInt16: (0, 65535), gdal.GDT_Int16: (-32768, 32767),
    gdal.GDT_UInt32: (0, 4294967295), gdal.GDT_Int32: (-2147483648, 2147483647),
    gdal.GDT_Float32: (-float(np.finfo(np.float32).max), float(np.finfo(np.float32).max)),
    gdal.GDT_Float64: (-float(np.finfo(np.float64).max), float(np.finfo(np.float64).max)),
}


def load_tms(tms_id):
    with open(os.path.join(TMS_DIR, tms_id + ".json")) as f:
        return json.load(f)


def tms_srs(doc):
    crs = doc["crs"] if isinstance(doc["crs"], str) else doc["crs"].get("uri")
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    return srs


def swapped(srs):
    """True when the CRS's first axis is northing/latitude."""
    return bool(srs.EPSGTreatsAsLatLong() or srs.EPSGTreatsAsNorthingEasting())


def matrix(doc, z):
    for m in doc["tileMatrices"]:
        if int(m["id"]) == z:
            return m
    raise KeyError(z)


def tile_bounds(doc, z, x, y):
    """morecantile's xy_bounds, with its floating-point evaluation order: a
    tile whose source ratio sits exactly on an overview boundary picks its
    overview from the last bit of these numbers."""
    srs = tms_srs(doc)
    m = matrix(doc, z)
    ox, oy = m["pointOfOrigin"]
    if swapped(srs):
        ox, oy = oy, ox
    res = m["cellSize"]
    tw, th = m["tileWidth"], m["tileHeight"]
    minx = ox + x * res * 1.0 * tw
    maxx = ox + (x + 1) * res * 1.0 * tw
    if m.get("cornerOfOrigin", "topLeft") == "topLeft":
        return minx, oy - (y + 1) * res * th, maxx, oy - y * res * th
    return minx, oy + y * res * th, maxx, oy + (y + 1) * res * th


def tile_for_point(doc, z, px, py):
    srs = tms_srs(doc)
    m = matrix(doc, z)
    ox, oy = m["pointOfOrigin"]
    if swapped(srs):
        ox, oy = oy, ox
    res = m["cellSize"]
    x = int(math.floor((px - ox) / (m["tileWidth"] * res)))
    y = int(math.floor((oy - py) / (m["tileHeight"] * res)))
    x = min(max(x, 0), m["matrixWidth"] - 1)
    y = min(max(y, 0), m["matrixHeight"] - 1)
    return x, y


def expected_tile(path, doc, z, x, y, size, bidx=None):
    srs = tms_srs(doc)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    b = tile_bounds(doc, z, x, y)
    src = gdal.Open(path)
    if bidx:
        src = gdal.Translate("/vsimem/%s.vrt" % uuid.uuid4().hex, src, format="VRT", bandList=bidx)
    out = gdal.Warp("", src, format="MEM", outputBounds=b, width=size, height=size,
                    dstSRS=srs.ExportToWkt(), resampleAlg="near", dstAlpha=True)
    arr = out.ReadAsArray()
    if arr.ndim == 2:
        arr = arr[None]
    data, alpha = arr[:-1].astype(np.float64), arr[-1].astype(np.uint8)
    ct = src.GetRasterBand(1).GetColorTable()
    if ct is not None and data.shape[0] == 1:
        # A paletted dataset is rendered through its own colour table.
        lut = np.zeros((256, 4), np.uint8)
        for i in range(min(256, ct.GetCount())):
            lut[i] = ct.GetColorEntry(i)
        rgba = lut[np.clip(data[0], 0, 255).astype(np.uint8)]
        alpha = np.minimum(alpha, rgba[..., 3])
        return np.moveaxis(rgba[..., :3], -1, 0), alpha
    lo, hi = DTYPE_RANGE[src.GetRasterBand(1).DataType]
    if (lo, hi) == (0, 255):
        img = np.clip(data, 0, 255).astype(np.uint8)
    else:
        # Data are float32 in the server; compare on the same precision.
        d = data.astype(np.float32).astype(np.float64)
        img = np.clip((np.clip(d, lo, hi) - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    return img, alpha


def decode_png(body):
    name = "/vsimem/%s.png" % uuid.uuid4().hex
    gdal.FileFromMemBuffer(name, body)
    try:
        ds = gdal.Open(name)
        arr = ds.ReadAsArray()
    finally:
        gdal.Unlink(name)
    return arr if arr.ndim == 3 else arr[None]


def compare(body, exp_img, exp_alpha):
    arr = decode_png(body)
    nb = exp_img.shape[0]
    assert arr.shape[1:] == exp_img.shape[1:]
    if arr.shape[0] == nb + 1:
        alpha = arr[nb]
    else:
        assert arr.shape[0] == nb, "unexpected band count %d" % arr.shape[0]
        alpha = np.full(arr.shape[1:], 255, np.uint8)
    np.testing.assert_array_equal(alpha, exp_alpha)
    valid = exp_alpha > 0
    for i in range(nb):
        np.testing.assert_array_equal(arr[i][valid], exp_img[i][valid])


# (fixture, extra bidx) for every fixture with an Earth CRS that renders as
# 1 or 3 bands.
CASES = [
    ("blue.tif", None), ("cog.tif", None), ("cog_cmap.tif", None), ("cog_dateline.tif", None),
    ("cog_fullearth.tif", None), ("cog_gcps.tif", None), ("cog_gradient.tif", None),
    ("cog_int16.tif", None), ("cog_name.tif", None), ("cog_nodata.tif", None),
    ("cog_nodata_nan.tif", None), ("cog_ovr.tif", None), ("cog_rgb.tif", None),
    ("cog_rgb_mask.tif", None), ("cog_rgba.tif", None), ("cog_scale.tif", None),
    ("cog_scale_epsg4326.tif", [1]), ("cog_tags.tif", None), ("cog_uint8_rgb_mask.tif", None),
    ("cog_uint8_rgb_nodata.tif", None), ("cog_uint8_rgba.tif", None), ("cog_world.tif", None),
    ("green.tif", None), ("inverted_lat.tif", None), ("lowres.tif", None),
    ("mosaic_cog1.tif", None), ("nocog.tif", None), ("noweb.tif", None), ("rgb.tif", None),
    ("scene_band1.tif", None), ("titiler_B01.tif", None), ("titiler_TCI.tif", None),
    ("titiler_dem.tif", None), ("web.tif", None),
]
TMS_IDS = ["WebMercatorQuad", "WorldCRS84Quad", "WGS1984Quad", "EuropeanETRS89_LAEAQuad",
           "UPSArcticWGS84Quad"]


@pytest.fixture(scope="module")
def srv(server):
    return server(data_root=FIXTURES)


def tiles_to_test(srv, get, name, doc, tms_id, bidx):
    """The tile at the data's centre at maxzoom and minzoom, plus a neighbour."""
    q = "url=%s%s" % (name, "".join("&bidx=%d" % b for b in bidx or []))
    st, _, body = get(srv.url + "/%s/tilejson.json?%s" % (tms_id, q))
    if st != 200:
        return None, q
    tj = json.loads(body)
    lon = (tj["bounds"][0] + tj["bounds"][2]) / 2
    lat = (tj["bounds"][1] + tj["bounds"][3]) / 2
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = tms_srs(doc)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    px, py, _ = osr.CoordinateTransformation(wgs, dst).TransformPoint(lon, lat)
    if not (math.isfinite(px) and math.isfinite(py)):
        return [], q
    out = []
    for z in sorted({tj["maxzoom"], tj["minzoom"]}):
        x, y = tile_for_point(doc, z, px, py)
        out.append((z, x, y))
    z, x, y = out[-1]
    if x + 1 < matrix(doc, z)["matrixWidth"]:
        out.append((z, x + 1, y))
    return out, q


@pytest.mark.parametrize("name,bidx", CASES, ids=[c[0] for c in CASES])
def test_tiles_match_gdalwarp(srv, get, name, bidx):
    path = os.path.join(FIXTURES, name)
    checked = 0
    for tms_id in TMS_IDS:
        doc = load_tms(tms_id)
        tiles, q = tiles_to_test(srv, get, name, doc, tms_id, bidx)
        if tiles is None:
            continue  # the dataset cannot be placed in this TMS (e.g. polar sets)
        for (z, x, y) in tiles:
            for scale in (1, 2):
                size = 256 * scale if tms_id != "EuropeanETRS89_LAEAQuad" else matrix(doc, z)["tileWidth"] * scale
                st, hdr, body = get(srv.url + "/tiles/%s/%d/%d/%d@%dx.png?%s" % (tms_id, z, x, y, scale, q))
                exp_img, exp_alpha = expected_tile(path, doc, z, x, y, size, bidx)
                if st == 404:
                    # Outside the data: GDAL must agree that nothing is there.
                    assert not exp_alpha.any(), "%s %s/%d/%d/%d: 404 but gdalwarp has data" % (name, tms_id, z, x, y)
                    continue
                assert st == 200, body[:300]
                assert hdr["Content-Type"] == "image/png"
                compare(body, exp_img, exp_alpha)
                checked += 1
    assert checked >= 4, "too few tiles compared for %s" % name


def test_web_mercator_512_png_for_every_fixture_with_a_crs(srv, get):
    """The README's example tiles of each fixture answer a 512x512 PNG."""
    examples = {"cog.tif": (9, 175, 98), "blue.tif": (7, 35, 51), "cog_world.tif": (2, 2, 2),
                "cog_dateline.tif": (4, 0, 5), "cog_gcps.tif": (8, 182, 120),
                "titiler_TCI.tif": (10, 579, 416), "cog_rgb.tif": (20, 219108, 400918)}
    for name, (z, x, y) in examples.items():
        st, hdr, body = get(srv.url + "/tiles/WebMercatorQuad/%d/%d/%d@2x.png?url=%s" % (z, x, y, name))
        assert st == 200, (name, body[:200])
        arr = decode_png(body)
        assert arr.shape[1:] == (512, 512)
