"""`tif` (georeferenced GeoTIFF) and `npy` (NumPy array) tiles, checked against gdal.Warp."""
import io
import json
import urllib.parse

import numpy as np
import pytest
from osgeo import gdal, osr

import test_tiles_exact as ref
from test_render_params import raw

WMQ = ref.load_tms("WebMercatorQuad")
TILE = (9, 175, 98)


@pytest.fixture(scope="module")
def srv(server):
    return server(data_root=ref.FIXTURES)


def fetch(srv, get, fmt, tms="WebMercatorQuad", tile=TILE, **q):
    z, x, y = tile
    q.setdefault("url", "cog.tif")
    return get("%s/tiles/%s/%d/%d/%d.%s?%s" % (srv.url, tms, z, x, y, fmt, urllib.parse.urlencode(q)))


def open_tif(body):
    gdal.FileFromMemBuffer("/vsimem/t.tif", body)
    ds = gdal.Open("/vsimem/t.tif")
    arr = ds.ReadAsArray()
    gt, srs = ds.GetGeoTransform(), ds.GetSpatialRef()
    types = [ds.GetRasterBand(i + 1).DataType for i in range(ds.RasterCount)]
    alpha = ds.GetRasterBand(ds.RasterCount).GetColorInterpretation() == gdal.GCI_AlphaBand
    ds = None
    gdal.Unlink("/vsimem/t.tif")
    return arr, gt, srs, types, alpha


def test_tif_is_georeferenced_source_typed_with_alpha(srv, get):
    st, h, body = fetch(srv, get, "tif")
    assert st == 200, body
    assert h["Content-Type"].startswith("image/tiff")
    arr, gt, srs, types, alpha = open_tif(body)
    data, mask = raw("cog.tif", *TILE)
    assert arr.shape == (2, 256, 256)
    assert types == [gdal.GDT_UInt16, gdal.GDT_UInt16] and alpha
    minx, miny, maxx, maxy = ref.tile_bounds(WMQ, *TILE)
    np.testing.assert_allclose(gt, (minx, (maxx - minx) / 256, 0, maxy, 0, -(maxy - miny) / 256), rtol=1e-12)
    assert srs.GetAuthorityCode(None) == "3857"
    valid = mask > 0
    np.testing.assert_array_equal(arr[0][valid], data[0][valid])
    np.testing.assert_array_equal(arr[1] > 0, valid)


def test_npy_is_bands_then_mask(srv, get):
    st, h, body = fetch(srv, get, "npy")
    assert st == 200, body
    a = np.load(io.BytesIO(body))
    assert a.dtype == np.uint16 and a.shape == (2, 256, 256)
    data, mask = raw("cog.tif", *TILE)
    valid = mask > 0
    np.testing.assert_array_equal(a[0][valid], data[0][valid])
    np.testing.assert_array_equal(a[1], np.where(valid, 255, 0))
    st, _, body = fetch(srv, get, "npy", return_mask="false")
    assert np.load(io.BytesIO(body)).shape == (1, 256, 256)


def test_rescaled_data_formats_are_uint8_like_the_png(srv, get):
    png = ref.decode_png(fetch(srv, get, "png", rescale="0,1000")[2])
    a = np.load(io.BytesIO(fetch(srv, get, "npy", rescale="0,1000")[2]))
    assert a.dtype == np.uint8 and a.shape == (2, 256, 256)
    # This tile has no masked pixel, so the PNG has no alpha; the mask band is all 255.
    assert png.shape[0] == 1
    np.testing.assert_array_equal(a[0], png[0])
    assert (a[1] == 255).all()
    arr, _, _, types, _ = open_tif(fetch(srv, get, "tif", rescale="0,1000")[2])
    np.testing.assert_array_equal(arr, a)
    assert types == [gdal.GDT_Byte] * 2


def test_float_expression_is_float32(srv, get):
    a = np.load(io.BytesIO(fetch(srv, get, "npy", expression="b1/3")[2]))
    data, mask = raw("cog.tif", *TILE)
    assert a.dtype == np.float32
    valid = mask > 0
    np.testing.assert_allclose(a[0][valid], (data[0][valid] / 3).astype(np.float32), rtol=1e-6)


def test_tif_in_a_lat_lon_tms(srv, get):
    doc = ref.load_tms("WorldCRS84Quad")
    tj = json.loads(get(srv.url + "/WorldCRS84Quad/tilejson.json?url=cog.tif")[2])
    w, s, e, n = tj["bounds"]
    z = tj["maxzoom"]
    x, y = ref.tile_for_point(doc, z, (w + e) / 2, (s + n) / 2)
    st, _, body = fetch(srv, get, "tif", tms="WorldCRS84Quad", tile=(z, x, y))
    assert st == 200, body
    arr, gt, srs, _, _ = open_tif(body)
    minx, miny, maxx, maxy = ref.tile_bounds(doc, z, x, y)
    assert abs(gt[0] - minx) < 1e-9 and abs(gt[3] - maxy) < 1e-9
    ref_srs = ref.tms_srs(doc)
    assert srs.IsSame(ref_srs) or srs.GetAuthorityCode(None) in ("4326", "CRS84")


def test_paletted_dataset_gives_rgb_plus_mask(srv, get):
    st, _, body = fetch(srv, get, "npy", url="cog_cmap.tif", tile=(14, 4578, 6211))
    assert st == 200
    a = np.load(io.BytesIO(body))
    png = ref.decode_png(fetch(srv, get, "png", url="cog_cmap.tif", tile=(14, 4578, 6211))[2])
    assert a.dtype == np.uint8 and a.shape == (4, 256, 256)
    np.testing.assert_array_equal(a[:3], png[:3])
