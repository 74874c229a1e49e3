"""Corrupt and odd inputs: every route answers each of them quickly with a decodable
tile or a JSON error, never caches an error, and the server stays healthy (and, at
teardown, exits 0: under ASan that also means no leak or sanitizer report).

The inputs are made here in a temporary data root: truncated COGs, files that are
not TIFFs, a TIFF without georeferencing, GCPs only, 31 bands, Int8 (GDAL 3.6:
Byte + PIXELTYPE=SIGNEDBYTE), Int64/UInt64, CInt16/CFloat32, 1x1, a sparse
1,000,000 x 1,000,000 raster without overviews, non-Earth CRSs, a directory named
x.tif, symlinks leaving the data root and an unreadable file."""
import json
import math
import os
import random
import shutil
import time

import numpy as np
import pytest
from osgeo import gdal, osr

from robust_util import decode, json_detail

gdal.UseExceptions()

FORMATS = ["png", "jpeg", "webp", "tif", "npy"]
IMAGE_FORMATS = {"png", "jpeg", "webp"}
# Any single request on these inputs must answer within this (ASan builds included).
TIME_LIMIT = float(os.environ.get("TESSERA_BAD_INPUT_SECONDS", "10"))
ERRORS = {400, 404, 422}
ANY = {200} | ERRORS


def _write_tif(root, name, w, h, nb, dt, opts=(), geo=True, gt=None, fill=None):
    d = gdal.GetDriverByName("GTiff").Create(os.path.join(root, name), w, h, nb, dt, list(opts))
    if geo:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(3857)
        d.SetGeoTransform(gt or [1000000, 100, 0, 6000000, 0, -100])
        d.SetSpatialRef(srs)
    if fill is not None:
        for b in range(nb):
            d.GetRasterBand(b + 1).WriteArray(fill(b))
    d = None


# name -> (expected /info statuses, /tilejson.json statuses, tile statuses by format or for all)
CASES = {}


def case(name, info, tilejson, tiles):
    CASES[name] = (info, tilejson, tiles)


def url_of(name):
    # A file reached through a symlinked directory that leaves the data root.
    return "link_dir/cog.tif" if name == "link_dir_outside" else name + ".tif"


NOT_TIFF = ({422}, {422}, {422})
NOT_FOUND = ({404}, {404}, {404})
for n in ["trunc_header", "random", "empty", "text", "png"]:
    case(n, *NOT_TIFF)
# GDAL is lenient with a directory cut short: it may open with what it read.
case("trunc_ifd", {200, 422}, {200, 422}, {200, 422})
for n in ["trunc10", "trunc50", "trunc90"]:
    # The header and the small overviews (first in a COG) survive: low zooms may render,
    # reads past the cut fail with a 422.
    case(n, {200}, {200}, {200, 422})
case("nogeo", {200}, {422}, {422})
case("gcps", {200}, {200}, {200})
case("bands31", {200}, {200}, {fmt: ({400} if fmt in IMAGE_FORMATS else {200}) for fmt in FORMATS})
for n in ["int8", "int64", "uint64", "cint16", "cfloat32", "one"]:
    case(n, {200}, {200}, {200})
case("nonearth", {200}, {422}, {422})
case("mars", {200}, {422}, {422})
for n in ["dir", "link_outside", "link_passwd", "link_dir_outside"]:
    case(n, *NOT_FOUND)


@pytest.fixture(scope="module")
def root(tmp_path_factory, fixtures):
    root = str(tmp_path_factory.mktemp("bad_inputs"))
    cog = open(os.path.join(fixtures, "cog.tif"), "rb").read()
    for name, n in [("trunc_header", 16), ("trunc_ifd", 300), ("trunc10", len(cog) // 10),
                    ("trunc50", len(cog) // 2), ("trunc90", len(cog) * 9 // 10)]:
        with open(os.path.join(root, name + ".tif"), "wb") as f:
            f.write(cog[:n])
    rnd = random.Random(7)
    with open(os.path.join(root, "random.tif"), "wb") as f:
        f.write(bytes(rnd.getrandbits(8) for _ in range(4096)))
    open(os.path.join(root, "empty.tif"), "wb").close()
    with open(os.path.join(root, "text.tif"), "w") as f:
        f.write("this is not a TIFF\n" * 10)
    gdal.GetDriverByName("PNG").CreateCopy(os.path.join(root, "png.tif"),
                                           gdal.GetDriverByName("MEM").Create("", 16, 16, 1))

    ramp = (np.arange(64 * 64).reshape(64, 64) % 200).astype(np.int64)
    _write_tif(root, "nogeo.tif", 64, 64, 1, gdal.GDT_Byte, geo=False, fill=lambda b: ramp.astype(np.uint8))
    _write_tif(root, "int8.tif", 64, 64, 1, gdal.GDT_Byte, ["PIXELTYPE=SIGNEDBYTE"],
               fill=lambda b: (ramp - 100).astype(np.int8).view(np.uint8))
    # GDAL >= 3.5 has 64-bit integer rasters (the GTiff driver writes them).
    _write_tif(root, "int64.tif", 64, 64, 1, gdal.GDT_Int64, fill=lambda b: ramp * 10**12 - 10**14)
    _write_tif(root, "uint64.tif", 64, 64, 1, gdal.GDT_UInt64, fill=lambda b: ramp.astype(np.uint64) * 10**12)
    cplx = (ramp + 1j * (200 - ramp)).astype(np.complex64)
    _write_tif(root, "cint16.tif", 64, 64, 1, gdal.GDT_CInt16, fill=lambda b: cplx)
    _write_tif(root, "cfloat32.tif", 64, 64, 1, gdal.GDT_CFloat32, fill=lambda b: cplx)
    _write_tif(root, "one.tif", 1, 1, 1, gdal.GDT_Byte, fill=lambda b: np.array([[7]], np.uint8))
    # 10^12 pixels of 10 m over +-5000 km in EPSG:3857, no block written, no overviews.
    _write_tif(root, "huge.tif", 1000000, 1000000, 1, gdal.GDT_Byte,
               ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=YES", "BLOCKXSIZE=1024", "BLOCKYSIZE=1024"],
               gt=[-5000000, 10, 0, 5000000, 0, -10])
    for name, src in [("gcps", "cog_gcps.tif"), ("bands31", "titiler_above_cog.tif"),
                      ("nonearth", "cog_nonearth.tif"), ("mars", "cog_hirise_mars.tif"),
                      ("good", "cog.tif")]:
        shutil.copy(os.path.join(fixtures, src), os.path.join(root, name + ".tif"))
    os.mkdir(os.path.join(root, "dir.tif"))
    os.symlink(os.path.join(fixtures, "cog.tif"), os.path.join(root, "link_outside.tif"))
    os.symlink("/etc/passwd", os.path.join(root, "link_passwd.tif"))
    os.symlink(fixtures, os.path.join(root, "link_dir"))
    shutil.copy(os.path.join(fixtures, "cog.tif"), os.path.join(root, "noperm.tif"))
    os.chmod(os.path.join(root, "noperm.tif"), 0)
    return root


@pytest.fixture(scope="module")
def srv(server, root):
    # "good.tif" sorts after nothing in particular: name the default explicitly.
    return server(data_root=root, args=["--default-dataset", "good.tif"])


def timed_get(get, url):
    t0 = time.monotonic()
    st, h, body = get(url, timeout=TIME_LIMIT + 5)
    dt = time.monotonic() - t0
    assert dt < TIME_LIMIT, "%s took %.1fs" % (url, dt)
    return st, h, body


def check(get, url, allowed, fmt=None):
    """Requests url twice; checks the status, the body, the time and that errors are never HITs."""
    results = []
    for attempt in range(2):
        st, h, body = timed_get(get, url)
        assert st in allowed, "%s: %s %r (allowed %s)" % (url, st, body[:200], sorted(allowed))
        assert st < 500
        if st == 200:
            if fmt:
                assert h["Content-Type"].split(";")[0] == {"png": "image/png", "jpeg": "image/jpeg",
                                                           "webp": "image/webp", "tif": "image/tiff",
                                                           "npy": "application/x-binary"}[fmt]
                decode(fmt, body)
            else:
                assert h["Content-Type"].split(";")[0] in ("application/json", "application/geo+json")
                json.loads(body)
        else:
            assert h["Content-Type"].startswith("application/json"), h["Content-Type"]
            json_detail(body)
            assert h.get("X-Cache") != "HIT", "an error was served from the cache: " + url
            assert "ETag" not in h and "max-age" not in h.get("Cache-Control", "")
        results.append((st, body))
    assert results[0][0] == results[1][0], url
    return results[0]


def tile_of(lon, lat, z):
    n = 2 ** z
    lat = max(min(lat, 85.0), -85.0)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def zooms_and_center(srv, get, url):
    """Zooms to try and a point inside the data (from /info when it answers)."""
    st, _, body = get(srv.url + "/info?url=" + url)
    if st != 200:
        return [0, 5, 12], (0.0, 0.0)
    info = json.loads(body)
    gb = info.get("geographic_bounds") or [-1, -1, 1, 1]
    lo, hi = info.get("minzoom", 0), info.get("maxzoom", 12)
    return sorted({0, lo, hi, min(hi + 2, 24)}), ((gb[0] + gb[2]) / 2, (gb[1] + gb[3]) / 2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_route_answers_cleanly(srv, get, name):
    info_ok, tj_ok, tiles_ok = CASES[name]
    url = url_of(name)
    check(get, srv.url + "/info?url=" + url, info_ok)
    check(get, srv.url + "/info.geojson?url=" + url, info_ok)
    check(get, srv.url + "/tilejson.json?url=" + url, tj_ok)
    check(get, srv.url + "/WorldCRS84Quad/tilejson.json?url=" + url, tj_ok)
    zooms, (lon, lat) = zooms_and_center(srv, get, url)
    for z in zooms:
        x, y = tile_of(lon, lat, z)
        for fmt in FORMATS:
            allowed = tiles_ok.get(fmt) if isinstance(tiles_ok, dict) else tiles_ok
            if z > max(zooms[:-1]) and 200 in allowed:
                allowed = allowed | {404}  # past the native zoom the center tile may still be inside
            check(get, srv.url + "/tiles/WebMercatorQuad/%d/%d/%d.%s?url=%s" % (z, x, y, fmt, url),
                  allowed, fmt)
    assert get(srv.url + "/healthz")[0] == 200


def test_values_of_odd_data_types(srv, get):
    """Int8 is signed, 64-bit integers and complex values come through as numbers."""
    z = 11
    x, y = tile_of(9.0119, 47.3342, z)
    for name in ["int8", "int64", "uint64", "cint16", "cfloat32", "one"]:
        st, _, body = get(srv.url + "/tiles/WebMercatorQuad/%d/%d/%d.npy?url=%s.tif" % (z, x, y, name))
        assert st == 200, (name, body[:200])
        a = decode("npy", body)
        data, mask = a[:-1], a[-1]
        assert mask.any(), name
        assert np.isfinite(data[:, mask > 0].astype(np.float64)).all(), name


def test_huge_sparse_raster_without_overviews_is_bounded(srv, get):
    """10^12 pixels, no overviews: a low-zoom tile would make GDAL read a window of up to
    10^12 pixels. Every zoom must answer within the limit (a tile or a JSON error), and
    the server must go on answering."""
    st, _, body = get(srv.url + "/tilejson.json?url=huge.tif")
    assert st == 200
    tj = json.loads(body)
    seen = {}
    for z in sorted({0, tj["minzoom"], 3, 4, 5, 6, 8, 10, tj["maxzoom"]}):
        x, y = tile_of(0.0001, 0.0001, z)
        for fmt in ["png", "npy"]:
            t0 = time.monotonic()
            st, body = check(get, srv.url + "/tiles/WebMercatorQuad/%d/%d/%d.%s?url=huge.tif" % (z, x, y, fmt),
                             {200, 422}, fmt)
            seen["z%d.%s" % (z, fmt)] = "%d in %.2fs" % (st, (time.monotonic() - t0) / 2)
    print("huge.tif:", seen)
    # At the native resolution the tile is a plain read.
    assert seen["z%d.png" % tj["maxzoom"]].startswith("200")
    assert get(srv.url + "/healthz")[0] == 200


def test_unreadable_file(srv, get, root):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions are not enforced")
    for route in ["/info?url=noperm.tif", "/tilejson.json?url=noperm.tif",
                  "/tiles/WebMercatorQuad/9/175/98.png?url=noperm.tif"]:
        check(get, srv.url + route, {404, 422})


def test_still_healthy_and_serving(srv, get):
    assert get(srv.url + "/healthz")[0] == 200
    st, h, body = get(srv.url + "/tiles/WebMercatorQuad/9/175/98.png?url=good.tif")
    assert st == 200 and decode("png", body).shape[-2:] == (256, 256)
    st, _, body = get(srv.url + "/tiles/WebMercatorQuad/9/175/98.png")  # the default dataset
    assert st == 200
