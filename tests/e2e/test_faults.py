"""Faults under load: Redis stopped and restarted, Redis stalled (DEBUG SLEEP), Redis
refusing writes (maxmemory + noeviction), and the served file replaced while being
read. Each runs a pool of keep-alive clients doing cached (HIT) and uncached (MISS)
tile requests and checks every single response.

Phases last TESSERA_FAULT_SECONDS (default: half of TESSERA_LOAD_SECONDS, at least 6).
"""
import json
import os
import shutil
import threading
import time

import pytest

from conftest import BIN
from robust_util import LOAD_SECONDS, Load, Redis, is_png, json_detail, time_scale

PHASE = max(6.0, float(os.environ.get("TESSERA_FAULT_SECONDS", LOAD_SECONDS / 2)))
SCALE = time_scale(BIN)
THREADS = 16
HOT = ["/tiles/WebMercatorQuad/%s.png?url=cog.tif" % t
       for t in ["9/175/98", "9/176/98", "7/44/25", "7/45/25", "5/11/6", "5/10/6", "8/88/49", "6/22/12"]]
_unique = iter(range(10**9))
_unique_lock = threading.Lock()


def unique():
    with _unique_lock:
        return next(_unique)


def miss_url(n):
    # A distinct cache key per request (rescale is part of the key), same cheap tile.
    return "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&rescale=0,%d" % (1000 + n)


def mixed_job(outcomes, max_seconds=None):
    """Even iterations: a hot URL; odd: a never-seen URL. Every answer must be a 200 PNG."""
    def job(i, it, c):
        path = HOT[(i + it) % len(HOT)] if it % 2 == 0 else miss_url(unique())
        t0 = time.monotonic()
        st, h, body = c.request(path)
        dt = time.monotonic() - t0
        outcomes.append(h.get("x-cache"))
        if st != 200 or not is_png(body):
            return "%s -> %s %r" % (path, st, body[:120])
        if max_seconds and dt > max_seconds:
            return "%s took %.2fs (X-Cache %s)" % (path, dt, h.get("x-cache"))
        return None
    return job


def warm(s, get):
    for p in HOT:
        assert get(s.url + p)[0] == 200
    for p in HOT:
        assert get(s.url + p)[1]["X-Cache"] == "HIT", p


def wait_for_hits(s, get, timeout=20):
    """After a fault: a new URL is stored and then served as a HIT again."""
    deadline = time.time() + timeout
    url = s.url + miss_url(unique())
    while time.time() < deadline:
        st, h, body = get(url)
        assert st == 200 and is_png(body)
        if h["X-Cache"] == "HIT":
            return time.time() - (deadline - timeout)
        time.sleep(0.2)
    raise AssertionError("HITs did not resume within %ss after the fault" % timeout)


@pytest.fixture
def redis():
    r = Redis("--enable-debug-command", "local")
    yield r
    r.close()


def start(server, fixtures, redis):
    return server(data_root=fixtures, env={"CACHE_ENDPOINT": redis.url, "CACHE_NAMESPACE": "faults"},
                  args=["--no-access-log"])


def test_redis_stopped_and_restarted_under_load(server, get, fixtures, redis):
    s = start(server, fixtures, redis)
    warm(s, get)
    outcomes = []
    load = Load(s.port, THREADS, mixed_job(outcomes), PHASE).start()
    time.sleep(PHASE / 3)
    redis.stop()
    stopped = len(outcomes)
    time.sleep(PHASE / 3)
    redis.start()
    load.join()
    print("redis stop/restart:", load.summary())
    assert not load.failures, load.failures[:5]
    assert "HIT" in outcomes[:stopped], "no HIT before the fault"
    assert len(outcomes) > stopped + THREADS, "requests stalled while Redis was down"
    print("HITs resumed %.1fs after the load" % wait_for_hits(s, get))


def test_redis_stalled_degrades_to_fast_misses(server, get, fixtures, redis):
    s = start(server, fixtures, redis)
    warm(s, get)
    outcomes = []
    # The command timeout (300 ms) bounds each Redis call; one request makes a few.
    load = Load(s.port, THREADS, mixed_job(outcomes, max_seconds=1.5 * SCALE), PHASE).start()
    time.sleep(PHASE / 4)
    redis.cli("DEBUG", "SLEEP", "2")  # blocks Redis (and this call) for 2 s
    time.sleep(0.5)
    redis.cli("DEBUG", "SLEEP", "2")
    load.join()
    print("redis DEBUG SLEEP:", load.summary())
    assert not load.failures, load.failures[:5]
    assert "HIT" in outcomes
    print("HITs resumed %.1fs after the load" % wait_for_hits(s, get))


def test_redis_refusing_writes(server, get, fixtures, redis):
    s = start(server, fixtures, redis)
    warm(s, get)
    redis.cli("CONFIG", "SET", "maxmemory", "1mb")
    redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    redis.cli("DEBUG", "POPULATE", "20000", "filler", "200")  # far past 1 MB: every write is refused
    assert "OOM" in redis.cli("SET", "probe", "x", check=False)
    errors_before = json.loads(get(s.url + "/cache/stats")[2])["errors"]
    outcomes = []
    load = Load(s.port, THREADS, mixed_job(outcomes), PHASE).start()
    load.join()
    print("redis OOM:", load.summary())
    assert not load.failures, load.failures[:5]
    # Reads still work: hot tiles stay HITs; every new tile is a MISS whose store failed.
    assert outcomes.count("HIT") >= len(outcomes) // 2 - THREADS
    stats = json.loads(get(s.url + "/cache/stats")[2])
    assert stats["errors"] > errors_before
    redis.cli("CONFIG", "SET", "maxmemory", "0")
    print("HITs resumed %.1fs after the fault" % wait_for_hits(s, get))


# ---- the served file replaced under load ----

VERSIONS = ["cog.tif", "cog_ovr.tif", "cog_nodata.tif", "cog_int16.tif"]  # one footprint, four contents
FILE_TILES = ["9/175/98", "9/176/98", "7/44/25", "5/11/6"]


def test_file_replaced_while_served(server, get, fixtures, tmp_path):
    """Atomic replacement (rename over) must never show anything but a complete version.
    In-place overwrite (shutil.copy: truncate, then write) exposes a half-written file to
    any reader; there a clear JSON 422 ("cannot open"/"cannot read") is acceptable, a 5xx,
    a broken body or a crash are not. After each replacement the new content is served."""
    root = str(tmp_path)
    sizes = set()
    for i, v in enumerate(VERSIONS):
        shutil.copy(os.path.join(fixtures, v), os.path.join(root, "v%d.tif" % i))
        sizes.add(os.path.getsize(os.path.join(root, "v%d.tif" % i)))
    assert len(sizes) == len(VERSIONS)
    shutil.copy(os.path.join(fixtures, VERSIONS[0]), os.path.join(root, "d.tif"))
    s = server(data_root=root, args=["--no-access-log"])
    ref = {}  # (version, tile) -> PNG bytes from an untouched copy
    for i in range(len(VERSIONS)):
        for t in FILE_TILES:
            st, _, body = get(s.url + "/tiles/WebMercatorQuad/%s.png?url=v%d.tif" % (t, i))
            assert st == 200
            ref[i, t] = body
    known = {}
    for (i, t), b in ref.items():
        known.setdefault(t, set()).add(b)

    windows = []  # (t0, t1) of in-place overwrites
    results = []  # (t0, t1, path, status, body)

    def job(i, it, c):
        t = FILE_TILES[(i + it) % len(FILE_TILES)]
        path = "/tiles/WebMercatorQuad/%s.png?url=d.tif" % t
        if it % 3 == 2:
            path += "&rescale=0,%d" % (1000 + unique())
        t0 = time.monotonic()
        st, h, body = c.request(path)
        results.append((t0, time.monotonic(), t, path, st, body))
        return None

    load = Load(s.port, THREADS, job, PHASE).start()
    current = 0
    changes = 0
    deadline = time.monotonic() + PHASE - 1.0
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = (current + 1) % len(VERSIONS)
        dst = os.path.join(root, "d.tif")
        if changes % 2 == 0:
            tmp = os.path.join(root, ".d.tif.tmp")
            shutil.copy(os.path.join(fixtures, VERSIONS[current]), tmp)
            os.replace(tmp, dst)
        else:
            t0 = time.monotonic()
            shutil.copy(os.path.join(fixtures, VERSIONS[current]), dst)
            windows.append((t0, time.monotonic()))
        changes += 1
        # The new content is served at once, for every tile (no stale cache entry or handle).
        for t in FILE_TILES:
            st, h, body = get(s.url + "/tiles/WebMercatorQuad/%s.png?url=d.tif" % t)
            assert st == 200 and body == ref[current, t], \
                "change %d (%s): tile %s is not the new content (X-Cache %s)" % (
                    changes, "rename" if changes % 2 else "in place", t, h.get("X-Cache"))
    load.join()
    print("file replaced %d times under load: %s" % (changes, load.summary()))
    assert not load.failures, load.failures[:5]

    def in_window(t0, t1):
        return any(t0 <= w1 and t1 >= w0 for w0, w1 in windows)

    bad, tolerated = [], {}
    for t0, t1, t, path, st, body in results:
        if st == 200 and is_png(body) and ("rescale" in path or body in known[t]):
            continue
        if in_window(t0, t1) and (st == 422 and json_detail(body) or st == 200 and is_png(body)):
            kind = json_detail(body)[:40] if st == 422 else "200, another PNG"
            tolerated[kind] = tolerated.get(kind, 0) + 1
            continue
        bad.append((path, st, body[:150], in_window(t0, t1)))
    print("in-place overwrites: %d windows, %.1f ms in all; responses tolerated in them: %s" % (
        len(windows), 1e3 * sum(w1 - w0 for w0, w1 in windows), tolerated))
    assert not bad, bad[:5]
    assert changes >= 4


def test_same_size_replacement_keeping_mtime_is_not_stale(server, get, tmp_path):
    """`cp -p`, `rsync -t`, `tar x` and `install -p` replace a file keeping its mtime; two
    versions of an uncompressed GeoTIFF have the same size. The new content must be served
    (every worker thread's open handle and the cache must notice), not the old one."""
    from osgeo import gdal, osr
    import io
    import numpy as np
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    for name, value in [("a.tif", 10), ("b.tif", 200)]:
        d = gdal.GetDriverByName("GTiff").Create(str(tmp_path / name), 256, 256, 1, gdal.GDT_Byte, ["TILED=YES"])
        d.SetGeoTransform([1000000, 100, 0, 6000000, 0, -100])
        d.SetSpatialRef(srs)
        d.GetRasterBand(1).WriteArray(np.full((256, 256), value, np.uint8))
        d = None
    assert os.path.getsize(tmp_path / "a.tif") == os.path.getsize(tmp_path / "b.tif")
    shutil.copy(tmp_path / "a.tif", tmp_path / "d.tif")
    s = server(data_root=str(tmp_path), args=["--no-access-log"])
    url = s.url + "/tiles/WebMercatorQuad/11/1075/718.npy?url=d.tif"

    def value(extra=""):
        st, h, body = get(url + extra)
        assert st == 200, body
        a = np.load(io.BytesIO(body))
        return int(a[0][a[-1] > 0].max())

    # Open the file on every worker thread (2 by default, more with --threads) and cache it.
    assert {value("&rescale=0,%d" % (255 - i)) for i in range(8)} and value() == 10
    st = os.stat(tmp_path / "d.tif")
    # Atomic: copy with the old times, rename over (rsync's way).
    shutil.copy(tmp_path / "b.tif", tmp_path / ".d.tmp")
    os.utime(tmp_path / ".d.tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp_path / ".d.tmp", tmp_path / "d.tif")
    assert os.stat(tmp_path / "d.tif").st_mtime_ns == st.st_mtime_ns
    assert value() == 200, "the old content was served after a same-size, same-mtime replacement"
    assert all(value("&rescale=0,%d" % (255 - i)) >= 200 for i in range(8))
    # In place (cp -p's way): overwrite, then restore the old mtime.
    st = os.stat(tmp_path / "d.tif")
    shutil.copy(tmp_path / "a.tif", tmp_path / "d.tif")
    os.utime(tmp_path / "d.tif", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert value() == 10, "the old content was served after an in-place same-size replacement"
