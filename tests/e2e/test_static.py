"""The map viewer: /static assets from web/node_modules and the /map pages.

Needs `npm ci --prefix web` to have been run in the source tree (the assets
are the npm packages themselves).
"""
import html
import json
import os
import re
import shutil

import pytest

ROOT = os.environ.get("TS_SOURCE_ROOT",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
WEB = os.path.join(ROOT, "web")


@pytest.fixture(scope="module")
def srv(server):
    return server(args=["--web-dir", WEB])


def attr(body, name):
    """The HTML-unescaped value of the first `name="..."` attribute in body."""
    m = re.search(r'\b%s="([^"]*)"' % re.escape(name), body)
    assert m, "no %s attribute in the page" % name
    return html.unescape(m.group(1))


def assert_json_404(status, headers, body):
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert "detail" in json.loads(body)


@pytest.mark.parametrize("path,ctype,min_size", [
    ("/static/maplibre-gl/maplibre-gl.js", "application/javascript", 100_000),
    ("/static/maplibre-gl/maplibre-gl.css", "text/css", 1_000),
    ("/static/leaflet/leaflet.js", "application/javascript", 100_000),
    ("/static/leaflet/leaflet.css", "text/css", 1_000),
    ("/static/leaflet/images/layers.png", "image/png", 100),
    ("/static/leaflet/images/marker-icon.png", "image/png", 100),
])
def test_static_assets(srv, get, path, ctype, min_size):
    status, headers, body = get(srv.url + path)
    assert status == 200, body[:200]
    assert headers["Content-Type"].startswith(ctype)
    assert len(body) > min_size
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Cache-Control"] == "public, max-age=86400"
    rel = {"maplibre-gl/maplibre-gl.js": "maplibre-gl/dist/maplibre-gl.js"}.get(
        path[len("/static/"):])
    if rel:
        with open(os.path.join(WEB, "node_modules", rel), "rb") as f:
            assert body == f.read()
    if ctype == "image/png":
        assert body[:8] == b"\x89PNG\r\n\x1a\n"


def test_static_etag_revalidates(srv, get):
    url = srv.url + "/static/maplibre-gl/maplibre-gl.css"
    status, headers, _ = get(url)
    assert status == 200
    etag = headers["ETag"]
    assert etag
    status, _, body = get(url, headers={"If-None-Match": etag})
    assert status == 304
    assert body == b""


def test_static_is_served_repeatedly(srv, get):
    # Served from memory after the first read; every response must be whole.
    url = srv.url + "/static/leaflet/leaflet.js"
    sizes = {len(get(url)[2]) for _ in range(5)}
    assert len(sizes) == 1


@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd",
    "/static/maplibre-gl/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/maplibre-gl/..%2f..%2fpackage.json",
    "/static/leaflet/images/..%2f..%2fpackage.json",
    "/static/leaflet/images/../leaflet.js",
    "/static/maplibre-gl/package.json",
    "/static/maplibre-gl/maplibre-gl.js.map",
    "/static/maplibre-gl/maplibre-gl-dev.js",
    "/static/maplibre-gl/dist",
    "/static/leaflet/leaflet-src.js",
    "/static/leaflet/images/missing.png",
    "/static/leaflet/images/layers.png.txt",
    "/static/earcut/earcut.js",
    "/static/map.html",
])
def test_static_rejects_unlisted(srv, get, path):
    assert_json_404(*get(srv.url + path))


def test_static_without_node_modules(server, get, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    for page in ("map.html", "leaflet.html"):
        shutil.copy(os.path.join(WEB, page), web / page)
    s = server(args=["--web-dir", str(web)])
    status, headers, body = get(s.url + "/static/maplibre-gl/maplibre-gl.js")
    assert_json_404(status, headers, body)
    assert "npm ci --prefix web" in json.loads(body)["detail"]
    # The pages themselves still render.
    assert get(s.url + "/map")[0] == 200


def test_map_carries_query_to_tilejson(srv, get):
    status, headers, body = get(srv.url + "/map?url=sample_dem.tif&rescale=0,4000")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    page = body.decode("utf-8")
    assert "{{TILEJSON_URL}}" not in page and "{{STATIC}}" not in page
    expected = srv.url + "/WebMercatorQuad/tilejson.json?url=sample_dem.tif&rescale=0%2C4000"
    assert attr(page, "data-tilejson") == expected
    # In the markup the '&' is escaped, as HTML attributes require.
    assert "tilejson.json?url=sample_dem.tif&amp;rescale=0%2C4000" in page
    static = attr(page, "data-static")
    assert static.endswith("/static")
    assert 'src="%s/maplibre-gl/maplibre-gl.js"' % static in page
    assert 'href="%s/maplibre-gl/maplibre-gl.css"' % static in page

    # The URL the page will fetch is a working TileJSON.
    status, headers, body = get(expected)
    assert status == 200, body[:300]
    tj = json.loads(body)
    assert tj["tiles"] and "rescale=0%2C4000" in tj["tiles"][0]


def test_map_keeps_repeated_and_odd_parameters(srv, get):
    status, _, body = get(srv.url + "/map?bidx=1&bidx=1&colormap_name=terrain&expression=b1%2Fb1%20%2B%201")
    assert status == 200
    url = attr(body.decode(), "data-tilejson")
    assert url.endswith("/WebMercatorQuad/tilejson.json?bidx=1&bidx=1&colormap_name=terrain"
                        "&expression=b1%2Fb1%20%2B%201")


def test_map_without_query(srv, get):
    status, _, body = get(srv.url + "/map")
    assert status == 200
    assert attr(body.decode(), "data-tilejson") == srv.url + "/WebMercatorQuad/tilejson.json"


def test_map_other_tms(srv, get):
    status, _, body = get(srv.url + "/WorldCRS84Quad/map?url=sample_dem.tif")
    assert status == 200
    assert attr(body.decode(), "data-tilejson") == (
        srv.url + "/WorldCRS84Quad/tilejson.json?url=sample_dem.tif")
    # An unknown TMS still renders; its TileJSON answers the error.
    status, _, body = get(srv.url + "/NoSuchTMS/map")
    assert status == 200
    assert "/NoSuchTMS/tilejson.json" in attr(body.decode(), "data-tilejson")


def test_map_leaflet(srv, get):
    status, headers, body = get(srv.url + "/map/leaflet?url=sample_dem.tif&rescale=0,4000")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert "{{TILEJSON_URL}}" not in page and "{{STATIC}}" not in page
    assert attr(page, "data-tilejson") == (
        srv.url + "/WebMercatorQuad/tilejson.json?url=sample_dem.tif&rescale=0%2C4000")
    static = attr(page, "data-static")
    assert 'src="%s/leaflet/leaflet.js"' % static in page
    assert 'href="%s/leaflet/leaflet.css"' % static in page


def test_map_escapes_markup(srv, get):
    # Query values are percent-encoded into the URL, so nothing can break out
    # of the attribute.
    status, _, body = get(srv.url + "/map?url=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 200
    page = body.decode()
    assert "<script>alert" not in page
    assert "%3Cscript%3E" in attr(page, "data-tilejson")


def test_map_uses_forwarded_base_url(srv, get):
    status, _, body = get(srv.url + "/map?url=sample_dem.tif", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "tiles.example.org",
        "X-Forwarded-Prefix": "/raster"})
    assert status == 200
    page = body.decode()
    assert attr(page, "data-tilejson") == (
        "https://tiles.example.org/raster/WebMercatorQuad/tilejson.json?url=sample_dem.tif")
    assert attr(page, "data-static") == "https://tiles.example.org/raster/static"
