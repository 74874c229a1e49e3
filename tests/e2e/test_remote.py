"""Remote datasets: refused by default, and with --allow-remote only from the
hosts in ALLOWED_HOSTS; an allowed host's COG is served through /vsicurl/."""
import http.server
import json
import os
import threading

import pytest

import test_tiles_exact as ref

TILE = "/tiles/WebMercatorQuad/9/175/98.png?url="


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges, as GDAL's /vsicurl/ reads them."""

    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ref.FIXTURES, **kw)

    def log_message(self, *a):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, _, end = rng.replace("bytes=", "").partition("-")
        start, end = int(start), min(int(end) if end else size - 1, size - 1)
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(f.read(end - start + 1))
        f.close()
        return None


@pytest.fixture(scope="module")
def origin():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield "127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


def test_remote_urls_refused_by_default(server, get, fixtures, origin):
    s = server(data_root=fixtures)
    for url in ("http://%s/cog.tif" % origin, "/vsicurl/http://%s/cog.tif" % origin,
                "https://example.com/x.tif", "/vsis3/bucket/x.tif"):
        st, h, body = get(s.url + TILE + url)
        assert st in (403, 404) and "detail" in json.loads(body), url


def test_only_allowed_hosts(server, get, fixtures, origin):
    host, port = origin.split(":")
    s = server(data_root=fixtures, args=["--allow-remote"], env={"ALLOWED_HOSTS": "tiles.example.com, " + origin})
    st, h, body = get(s.url + TILE + "http://%s/cog.tif" % origin)
    assert st == 200, body
    local = get(s.url + TILE + "cog.tif")[2]
    assert ref.decode_png(body).tolist() == ref.decode_png(local).tolist()
    assert get(s.url + TILE + "http://%s/cog.tif" % origin)[1]["X-Cache"] == "HIT"
    # Same host on another port, a lookalike name, credentials, other schemes: refused.
    for url, code in (("http://%s:1/cog.tif" % host, 403), ("http://%s.evil.com/cog.tif" % host, 403),
                      ("http://user@%s/cog.tif" % origin, 400), ("ftp://%s/cog.tif" % origin, 403),
                      ("http://%s/missing.tif" % origin, 404)):
        st, _, body = get(s.url + TILE + url)
        assert st == code, (url, st, body)
    # TileJSON and info work on remote datasets too.
    st, _, body = get(s.url + "/info?url=http://%s/cog.tif" % origin)
    assert st == 200 and json.loads(body)["width"] > 0
