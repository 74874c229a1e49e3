"""The cache layer through the real binary: memory and a real Redis."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import free_port

TILE = "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif"


def test_miss_then_hit_with_etag_and_304(server, get, fixtures):
    s = server(data_root=fixtures)
    st1, h1, b1 = get(s.url + TILE)
    st2, h2, b2 = get(s.url + TILE)
    assert (st1, h1["X-Cache"], st2, h2["X-Cache"]) == (200, "MISS", 200, "HIT")
    assert b1 == b2 and b1[:8] == b"\x89PNG\r\n\x1a\n"
    assert h1["ETag"] == h2["ETag"] and h1["ETag"].startswith('"')
    assert "max-age=" in h2["Cache-Control"]
    st3, h3, b3 = get(s.url + TILE, headers={"If-None-Match": h1["ETag"]})
    assert st3 == 304 and b3 == b""
    # Parameter order and name case share an entry; a different value does not.
    st, h, _ = get(s.url + "/tiles/WebMercatorQuad/9/175/98.png?rescale=0,1000&URL=cog.tif")
    assert h["X-Cache"] == "MISS"
    st, h, _ = get(s.url + "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&Rescale=0,1000")
    assert h["X-Cache"] == "HIT"
    st, h, _ = get(s.url + "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&rescale=0,1001")
    assert h["X-Cache"] == "MISS"


def test_client_cache_control_and_errors_not_stored(server, get, fixtures):
    s = server(data_root=fixtures)
    st, h, _ = get(s.url + TILE, headers={"Cache-Control": "no-store"})
    assert h["X-Cache"] == "MISS"
    st, h, _ = get(s.url + TILE)
    assert h["X-Cache"] == "MISS", "no-store must not have written"
    st, h, _ = get(s.url + TILE, headers={"Cache-Control": "no-cache"})
    assert h["X-Cache"] == "BYPASS"
    st, h, _ = get(s.url + TILE)
    assert h["X-Cache"] == "HIT"
    bad = "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&rescale=1;2"
    for _ in range(2):
        st, h, body = get(s.url + bad)
        assert st == 400 and "rescale" in json.loads(body)["detail"]
        assert "ETag" not in h
    # Unknown parameters are served but never stored.
    st, h, _ = get(s.url + TILE + "&utm_source=x")
    st2, h2, _ = get(s.url + TILE + "&utm_source=x")
    assert (h["X-Cache"], h2["X-Cache"]) == ("BYPASS", "BYPASS")


def test_replaced_file_is_not_served_stale(server, get, fixtures, tmp_path):
    shutil.copy(os.path.join(fixtures, "cog.tif"), tmp_path / "d.tif")
    s = server(data_root=str(tmp_path))
    url = s.url + "/tiles/WebMercatorQuad/9/175/98.png?url=d.tif"
    _, h1, b1 = get(url)
    _, h2, _ = get(url)
    assert h2["X-Cache"] == "HIT"
    time.sleep(0.01)
    shutil.copy(os.path.join(fixtures, "cog_ovr.tif"), tmp_path / "d.tif")
    _, h3, b3 = get(url)
    assert h3["X-Cache"] == "MISS" and b3 != b1


def _same_size_pair(tmp_path):
    """Two uncompressed GeoTIFFs of the same size whose pixels are 10 and 200."""
    from osgeo import gdal, osr
    import numpy as np
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    paths = {}
    for value in (10, 200):
        p = str(tmp_path / ("src%d.tif" % value))
        d = gdal.GetDriverByName("GTiff").Create(p, 256, 256, 1, gdal.GDT_Byte, ["TILED=YES"])
        d.SetGeoTransform([1000000, 100, 0, 6000000, 0, -100])
        d.SetSpatialRef(srs)
        d.GetRasterBand(1).WriteArray(np.full((256, 256), value, np.uint8))
        d = None
        with open(p, "rb") as f:
            paths[value] = f.read()
        os.unlink(p)
    assert len(paths[10]) == len(paths[200])
    return paths


def test_every_change_is_seen_by_the_next_request(server, get, tmp_path):
    """The file's identity is memoised behind an inotify watch of its directory (no stat()
    per HIT): a rename over it, a same-size in-place rewrite keeping the mtime, a chmod and
    a delete must each be seen by the request that follows, with no pause in between."""
    import io
    import numpy as np
    content = _same_size_pair(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    d = root / "d.tif"
    d.write_bytes(content[10])
    s = server(data_root=str(root), args=["--no-access-log"])
    url = s.url + "/tiles/WebMercatorQuad/11/1075/718.npy?url=d.tif"

    def fetch(cache):
        st, h, body = get(url)
        assert st == 200, body
        assert h["X-Cache"] in cache, (h["X-Cache"], cache)
        a = np.load(io.BytesIO(body))
        return int(a[0][a[-1] > 0].max())

    cur = 10
    fetch(("MISS",))
    for i in range(50):
        assert fetch(("HIT",)) == cur
        # (a) atomic replacement: a new inode.
        cur = 210 - cur
        (root / ".d.tmp").write_bytes(content[cur])
        os.replace(root / ".d.tmp", d)
        assert fetch(("MISS",)) == cur, "stale after a rename over the file (iteration %d)" % i
        assert fetch(("HIT",)) == cur
        # (b) in place, same size, the mtime put back: only the ctime moves.
        st = os.stat(d)
        cur = 210 - cur
        with open(d, "r+b") as f:
            f.write(content[cur])
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert fetch(("MISS",)) == cur, "stale after an in-place rewrite (iteration %d)" % i
        # (c) metadata only: a new identity is allowed, not a wrong answer.
        os.chmod(d, 0o600 if i % 2 else 0o644)
        assert fetch(("HIT", "MISS")) == cur
        # (d) gone: never the cached tile.
        os.unlink(d)
        st, _, body = get(url)
        assert st == 404, "iteration %d: %d after the file was deleted" % (i, st)
        d.write_bytes(content[cur])
        assert fetch(("MISS",)) == cur


def _local_fs(path):
    """Whether src/dataset.c trusts inotify there (its list of local file systems)."""
    try:
        t = subprocess.run(["stat", "-f", "-c", "%t", str(path)], capture_output=True, text=True,
                           check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return int(t, 16) in (0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x794C7630, 0xF2F52010,
                          0x2FC12FC1, 0x858458F6)


def _dataset_stats(s, get):
    st, _, body = get(s.url + "/metrics")
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith("tessera_dataset_stats_total "):
            return int(line.split()[1])
    raise AssertionError("no tessera_dataset_stats_total in /metrics")


def test_hits_do_not_stat_the_file(server, get, fixtures):
    if not _local_fs(fixtures):
        pytest.skip("the fixtures are not on a local file system: stat() per request there")
    s = server(data_root=fixtures, args=["--threads", "2"])
    assert get(s.url + TILE)[1]["X-Cache"] == "MISS"
    assert get(s.url + TILE)[1]["X-Cache"] == "HIT"
    before = _dataset_stats(s, get)
    t0 = time.monotonic()
    for _ in range(100):
        assert get(s.url + TILE)[1]["X-Cache"] == "HIT"
    elapsed = time.monotonic() - t0
    stats = _dataset_stats(s, get) - before
    # Each thread resolves afresh (one stat) when its one-second memo expires; a stat() per
    # request would be 100.
    assert stats <= 2 * (int(elapsed) + 2), "%d stat() calls for 100 HITs in %.2fs" % (stats, elapsed)


def test_stats_and_admin_invalidation(server, get, fixtures):
    s = server(data_root=fixtures, env={"CACHE_ADMIN_TOKEN": "s3cret"})
    get(s.url + TILE)
    get(s.url + TILE)
    st, _, body = get(s.url + "/cache/stats")
    stats = json.loads(body)
    assert st == 200 and stats["backend"] == "memory" and stats["hits"] >= 1 and stats["entries"] >= 1
    assert get(s.url + "/cache", method="DELETE")[0] == 401
    assert get(s.url + "/cache", method="DELETE", headers={"Authorization": "Bearer nope"})[0] == 401
    st, _, body = get(s.url + "/cache?url=cog.tif", method="DELETE",
                      headers={"Authorization": "Bearer s3cret"})
    assert st == 200 and json.loads(body)["deleted"] >= 1
    _, h, _ = get(s.url + TILE)
    assert h["X-Cache"] == "MISS"


def test_admin_endpoint_off_without_token(server, get, fixtures):
    s = server(data_root=fixtures)
    assert get(s.url + "/cache", method="DELETE", headers={"Authorization": "Bearer x"})[0] == 404


@pytest.fixture
def redis_url():
    url = os.environ.get("TESSERA_TEST_REDIS_URL")
    if url:
        yield url  # the suite's Redis (scripts/test.sh)
        return
    # Running outside scripts/test.sh: start one.
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    yield "redis://127.0.0.1:%d/0" % port
    p.terminate()
    p.wait()


def test_two_instances_share_redis(server, get, fixtures, redis_url):
    ns = "t%d" % time.time_ns()
    env = {"CACHE_ENDPOINT": redis_url, "CACHE_NAMESPACE": ns}
    a = server(data_root=fixtures, env=env)
    b = server(data_root=fixtures, env=env)
    st, h, body_a = get(a.url + TILE)
    assert st == 200 and h["X-Cache"] == "MISS"
    st, h, body_b = get(b.url + TILE)
    assert st == 200 and h["X-Cache"] == "HIT" and body_a == body_b
    st, _, body = get(b.url + "/cache/stats")
    assert json.loads(body)["backend"] == "redis"


def test_redis_outage_degrades_to_uncached(server, get, fixtures):
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    r = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        s = server(data_root=fixtures, env={"CACHE_ENDPOINT": "redis://127.0.0.1:%d/0" % port})
        assert get(s.url + TILE)[1]["X-Cache"] == "MISS"
        assert get(s.url + TILE)[1]["X-Cache"] == "HIT"
        r.terminate()
        r.wait()
        for _ in range(5):
            t0 = time.time()
            st, h, _ = get(s.url + TILE)
            assert st == 200 and h["X-Cache"] == "MISS"
            assert time.time() - t0 < 2.0
        r = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        deadline = time.time() + 15
        seen_hit = False
        while time.time() < deadline and not seen_hit:
            st, h, _ = get(s.url + TILE)
            assert st == 200
            seen_hit = h["X-Cache"] == "HIT"
            time.sleep(0.2)
        assert seen_hit, "the cache did not resume after Redis came back"
    finally:
        r.terminate()
        r.wait()
