"""Cache behaviour seen through HTTP: /metrics, Vary, coalescing of concurrent
requests in one instance, and the cross-instance render lock over Redis."""
import json
import re
import threading
import time

import pytest

from test_cache_e2e import redis_url  # noqa: F401  (fixture)

TILE = "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif"
# ~0.2 s to render (1 s under ASan): long enough for concurrent requests to overlap.
SLOW = "/tiles/WebMercatorQuad/5/11/6.png?url=nocog.tif&tilesize=2048&reproject=lanczos"


def metrics(srv, get, headers=None):
    st, h, body = get(srv.url + "/metrics", headers=headers)
    assert st == 200, body
    assert h["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_count_requests_cache_outcomes_and_latency(server, get, fixtures):
    s = server(data_root=fixtures)
    for _ in range(3):
        assert get(s.url + TILE)[0] == 200
    assert get(s.url + "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&rescale=1;2")[0] == 400
    assert get(s.url + "/nope")[0] == 404
    m = metrics(s, get)
    assert m['tessera_requests_total{route="tile",status="200"}'] == 3
    assert m['tessera_requests_total{route="tile",status="400"}'] == 1
    assert m['tessera_requests_total{route="unmatched",status="404"}'] == 1
    assert m['tessera_cache_requests_total{outcome="hit"}'] == 2
    assert m['tessera_cache_requests_total{outcome="miss"}'] == 1
    assert m["tessera_render_duration_seconds_count"] == 1
    assert m["tessera_encode_duration_seconds_count"] == 1
    assert m["tessera_read_duration_seconds_count"] == 1
    assert m['tessera_request_duration_seconds_count{route="tile"}'] == 4
    # Buckets are cumulative and end with +Inf = count.
    buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), v)
                     for k, v in m.items() if k.startswith("tessera_render_duration_seconds_bucket"))
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1][1] == 1
    assert m["tessera_render_duration_seconds_sum"] > 0


def test_private_metrics_need_the_token(server, get, fixtures):
    s = server(data_root=fixtures, env={"CACHE_ADMIN_TOKEN": "tok", "TESSERA_METRICS_PRIVATE": "true"})
    assert get(s.url + "/metrics")[0] == 401
    assert get(s.url + "/metrics", headers={"Authorization": "Bearer bad"})[0] == 401
    metrics(s, get, headers={"Authorization": "Bearer tok"})


def test_vary_names_the_headers_a_document_depends_on(server, get, fixtures):
    s = server(data_root=fixtures)
    for path in ("/tilejson.json?url=cog.tif", "/tileMatrixSets", "/map?url=cog.tif"):
        st, h, _ = get(s.url + path)
        assert st == 200 and "X-Forwarded-Host" in h.get("Vary", ""), path
    # A HIT carries it too.
    st, h, _ = get(s.url + "/tilejson.json?url=cog.tif")
    assert h["X-Cache"] == "HIT" and "Host" in h["Vary"]
    # Tiles do not depend on request headers; a fixed base URL removes the dependency.
    assert "Vary" not in get(s.url + TILE)[1]
    fixed = server(data_root=fixtures, args=["--base-url", "https://tiles.example.com"])
    st, h, body = get(fixed.url + "/tilejson.json?url=cog.tif", headers={"Host": "evil.example"})
    assert "Vary" not in h and json.loads(body)["tiles"][0].startswith("https://tiles.example.com/")


def concurrently(n, fn):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def rendered_or_busy(res):
    """Overlapping slow PNG renders against a bounded queue: each answer is
    the PNG or a 503 with Retry-After, and both occur. Returns the codes."""
    codes = [r[0] for r in res]
    assert set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
    for st, h, body in res:
        if st == 503:
            assert h["Retry-After"] == "1" and "server busy" in json.loads(body)["detail"]
        else:
            assert body[:4] == b"\x89PNG"
    return codes


def test_concurrent_misses_render_once(server, get, fixtures):
    s = server(data_root=fixtures, args=["--threads", "8"])
    res = concurrently(8, lambda i: get(s.url + SLOW, timeout=120))
    assert all(r[0] == 200 for r in res)
    assert len({r[2] for r in res}) == 1
    m = metrics(s, get)
    assert m["tessera_render_duration_seconds_count"] == 1
    # The others waited for that render (or, if libmicrohttpd queued them on a
    # busy thread, found its result stored): none rendered again.
    coalesced, hits = m["tessera_cache_coalesced_total"], m['tessera_cache_requests_total{outcome="hit"}']
    # How many coalesced depends on how libmicrohttpd spread the 8 connections over its
    # threads: on a loaded machine (CI, two cores) (2, 5) is common; at least one did.
    assert coalesced >= 1 and coalesced + hits == 7, (coalesced, hits)
    assert get(s.url + SLOW)[1]["X-Cache"] == "HIT"


def test_two_instances_render_a_cold_tile_once(server, get, fixtures, redis_url):  # noqa: F811
    env = {"CACHE_ENDPOINT": redis_url, "CACHE_NAMESPACE": "lock%d" % time.time_ns()}
    a = server(data_root=fixtures, env=env, args=["--threads", "4"])
    b = server(data_root=fixtures, env=env, args=["--threads", "4"])
    res = concurrently(8, lambda i: get((a if i % 2 else b).url + SLOW, timeout=120))
    assert all(r[0] == 200 for r in res)
    assert len({r[2] for r in res}) == 1
    renders = metrics(a, get)["tessera_render_duration_seconds_count"] + \
        metrics(b, get)["tessera_render_duration_seconds_count"]
    assert renders == 1


def test_redis_hits_are_pipelined_off_the_io_threads(server, get, fixtures, redis_url):  # noqa: F811
    # One I/O thread and 16 clients: with a blocking GET per request the
    # thread would carry one lookup at a time. Lookups go to the backend's
    # fetcher instead, which sends what queued up together: fewer round
    # trips (batches) than gets, and every answer still the right bytes.
    env = {"CACHE_ENDPOINT": redis_url, "CACHE_NAMESPACE": "pipe%d" % time.time_ns()}
    s = server(data_root=fixtures, env=env, args=["--threads", "1"])
    urls = [TILE + "&rescale=0,%d" % (100 + k) for k in range(24)]
    first, first_h = {}, {}
    for u in urls:
        st, h, body = get(s.url + u)
        assert st == 200 and h["X-Cache"] == "MISS", (u, st)
        first[u] = body
        first_h[u] = h
    before = json.loads(get(s.url + "/cache/stats")[2])

    def client(i):
        out = []
        for k in range(12):
            u = urls[(i + k) % len(urls)]
            st, h, body = get(s.url + u, timeout=60)
            out.append((u, st, h, body))
        return out

    res = [r for rs in concurrently(16, client) for r in rs]
    # A HIT answered from the first pass's headers carries what a MISS did.
    same = ("Content-Type", "ETag", "Cache-Control", "Access-Control-Allow-Origin")
    for u, st, h, body in res:
        assert st == 200 and h.get("X-Cache") == "HIT" and body == first[u], (u, st)
        assert all(h.get(k) == first_h[u].get(k) for k in same), (h, first_h[u])
    after = json.loads(get(s.url + "/cache/stats")[2])
    gets = after["async_gets"] - before["async_gets"]
    batches = after["async_batches"] - before["async_batches"]
    assert after["hits"] - before["hits"] == len(res) == 16 * 12
    assert gets == len(res), (gets, len(res))
    assert 0 < batches < gets, (batches, gets)
    m = metrics(s, get)
    assert m["tessera_cache_async_gets_total"] == after["async_gets"]
    assert m["tessera_cache_async_batches_total"] == after["async_batches"]
    assert m['tessera_requests_total{route="tile",status="200"}'] == len(urls) + len(res)
    # Conditional GET on such a HIT.
    st, h, body = get(s.url + urls[0], headers={"If-None-Match": first_h[urls[0]]["ETag"]})
    assert st == 304 and body == b"" and h["X-Cache"] == "HIT"


def test_redis_misses_go_to_the_bounded_render_pool(server, get, fixtures, redis_url):  # noqa: F811
    # A MISS found by an asynchronous lookup is queued for the render pool
    # from the cache's thread: the queue's bound still holds (503 +
    # Retry-After), nothing hangs, and what rendered is stored.
    env = {"CACHE_ENDPOINT": redis_url, "CACHE_NAMESPACE": "poolq%d" % time.time_ns()}
    s = server(data_root=fixtures, env=env, args=["--threads", "1", "--render-queue", "1",
                                                  "--render-queue-timeout-ms", "50"])
    paths = [SLOW + "&rescale=0,%d" % (4000 + i) for i in range(12)]
    res = concurrently(12, lambda i: get(s.url + paths[i], timeout=120))
    codes = rendered_or_busy(res)
    assert all(h["X-Cache"] == "MISS" for st, h, _ in res if st == 200)
    assert metrics(s, get)['tessera_rejected_total{reason="overload"}'] == codes.count(503)
    for p, (st, _, body) in zip(paths, res):
        if st == 200:
            st2, h2, body2 = get(s.url + p)
            assert st2 == 200 and h2["X-Cache"] == "HIT" and body2 == body
