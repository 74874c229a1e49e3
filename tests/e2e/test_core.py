"""The foundation: health, errors, HEAD, CORS, CLI and graceful shutdown of the real binary."""
import json
import signal
import subprocess
import threading

from conftest import BIN


def test_healthz_404_head_cors(server, get):
    s = server()
    st, h, body = get(s.url + "/healthz")
    assert st == 200 and json.loads(body) == {"status": "ok"}
    assert h["Access-Control-Allow-Origin"] == "*"
    st, h, body = get(s.url + "/no/such/route")
    assert st == 404 and h["Content-Type"] == "application/json"
    assert json.loads(body)["detail"] == "Not Found"
    st, h, body = get(s.url + "/healthz", method="HEAD")
    assert st == 200 and body == b"" and h["Content-Length"] == "15"
    st, h, body = get(s.url + "/healthz", method="POST")
    assert st == 405 and "detail" in json.loads(body)


def test_sample_dataset_is_served_by_default(server, get):
    s = server()
    st, _, body = get(s.url + "/tilejson.json")
    tj = json.loads(body)
    assert st == 200 and tj["name"] == "sample_dem.tif" and tj["tiles"][0].startswith(s.url + "/tiles/")
    st, h, body = get(s.url + "/info")
    info = json.loads(body)
    assert info["crs"] != "EPSG:3857" and info["nodata_type"] == "Nodata" and info["overviews"]


def test_help_lists_every_setting_and_bad_values_exit_2():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for name in ["--host", "--port", "--threads", "--data-root", "CACHE_ENDPOINT", "CACHE_TTL",
                 "CACHE_NAMESPACE", "CACHE_MEMORY_MB", "--log-level", "TESSERA_PORT"]:
        assert name in out.stdout, name
    bad = subprocess.run([BIN, "--port", "0x"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "--port" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = subprocess.run([BIN, "serve", "--nope"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2


def test_sigterm_finishes_in_flight_requests(server, get, fixtures):
    """A request still rendering when SIGTERM arrives gets its full answer."""
    import time
    s = server(data_root=fixtures, env={"CACHE_ENDPOINT": "none"})
    # A 2048 px Lanczos tile of a strip-organised GeoTIFF: ~0.2 s to render
    # (~1 s under ASan), far longer than the delay before the signal.
    path = "/tiles/WebMercatorQuad/5/11/6.png?url=nocog.tif&tilesize=2048&reproject=lanczos"
    results = []

    def fetch():
        t0 = time.monotonic()
        r = get(s.url + path)
        results.append((r, time.monotonic() - t0))

    t = threading.Thread(target=fetch)
    t.start()
    time.sleep(0.03)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    (st, _, body), elapsed = results[0]
    assert elapsed > 0.03, "the request finished before the signal: the test proves nothing"
    assert st == 200 and body[:4] == b"\x89PNG" and len(body) > 10000
    assert s.proc.wait(15) == 0
    # Stopped: it no longer accepts connections.
    try:
        get(s.url + "/healthz", timeout=1)
        raise AssertionError("server still answering after SIGTERM")
    except OSError:
        pass
