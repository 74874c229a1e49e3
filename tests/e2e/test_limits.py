"""Protection limits: render time limit, render slots with a bounded queue,
per-client rate limiting (local and shared through Redis), request size
limits, idle/slow connections and connection caps."""
import json
import socket
import threading
import time

import pytest

from test_cache_e2e import redis_url  # noqa: F401  (fixture)
from test_cache_http import concurrently, metrics, rendered_or_busy

TILE = "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif"
# ~0.2 s to render (1 s under ASan).
SLOW = "/tiles/WebMercatorQuad/5/11/6.png?url=nocog.tif&tilesize=2048&reproject=lanczos"


def is_json_error(h, body, status):
    return h["Content-Type"] == "application/json" and "detail" in json.loads(body)


def test_render_time_limit_answers_503_and_is_not_cached(server, get, fixtures):
    s = server(data_root=fixtures, args=["--render-timeout-ms", "60"])
    for _ in range(2):
        st, h, body = get(s.url + SLOW)
        assert st == 503 and h["Retry-After"] == "1" and is_json_error(h, body, st)
        assert "timed out" in json.loads(body)["detail"]
        assert h.get("X-Cache") != "HIT"
    # Cheap tiles still render (the first one per worker also opens the file,
    # which a loaded machine can stretch past the limit).
    assert 200 in [get(s.url + TILE)[0] for _ in range(4)]
    assert metrics(s, get)['tessera_rejected_total{reason="timeout"}'] >= 2


def test_full_render_queue_refuses_at_once_and_hits_keep_flowing(server, get, fixtures):
    s = server(data_root=fixtures, args=["--threads", "8", "--max-renders", "1", "--render-queue", "0",
                                         "--render-queue-timeout-ms", "60000"])
    assert get(s.url + TILE)[0] == 200  # now cached

    # Every render goes to the shared render pool, whichever I/O thread
    # accepted its connection, so the seven overlap and compete for one slot.
    def work(i):
        if i == 7:  # a HIT in the middle of the overload
            time.sleep(0.05)
            return get(s.url + TILE)
        # distinct keys, so coalescing cannot merge them
        return get(s.url + SLOW + "&rescale=0,%d" % (1000 + i), timeout=120)

    res = concurrently(8, work)
    slow = res[:7]
    ok = [r for r in slow if r[0] == 200]
    busy = [r for r in slow if r[0] == 503]
    assert len(ok) + len(busy) == 7 and len(ok) >= 1 and len(busy) >= 1, [r[0] for r in slow]
    for st, h, body in busy:
        assert h["Retry-After"] == "1" and "busy" in json.loads(body)["detail"]
    for st, h, body in ok:
        assert body[:4] == b"\x89PNG"
    assert res[7][0] == 200 and res[7][1]["X-Cache"] == "HIT"
    assert metrics(s, get)['tessera_rejected_total{reason="overload"}'] == len(busy)


def test_render_queue_wait_is_bounded(server, get, fixtures):
    s = server(data_root=fixtures, args=["--threads", "8", "--max-renders", "1", "--render-queue", "8",
                                         "--render-queue-timeout-ms", "20"])
    res = concurrently(4, lambda i: get(s.url + SLOW + "&rescale=0,%d" % (2000 + i), timeout=120))
    codes = sorted(r[0] for r in res)
    assert codes[0] == 200 and codes[-1] == 503 and set(codes) <= {200, 503}, codes
    for st, h, body in res:
        if st == 503:
            assert h["Retry-After"] == "1" and "no render slot" in json.loads(body)["detail"]


def test_rate_limit_per_client(server, get, fixtures):
    s = server(data_root=fixtures, args=["--rate-limit", "2", "--rate-burst", "4"])
    codes = [get(s.url + TILE)[0] for _ in range(8)]
    assert codes[:4] == [200] * 4 and 429 in codes[4:], codes
    st, h, body = get(s.url + TILE)
    assert st == 429 and int(h["Retry-After"]) >= 1 and "rate limit" in json.loads(body)["detail"]
    # Health checks and metrics scrapes are never limited.
    assert all(get(s.url + "/healthz")[0] == 200 for _ in range(10))
    time.sleep(1.1)  # two tokens come back
    assert get(s.url + TILE)[0] == 200
    assert metrics(s, get)['tessera_rejected_total{reason="rate_limit"}'] >= 2


def test_rate_limit_trusts_forwarded_for_only_when_told(server, get, fixtures):
    s = server(data_root=fixtures, args=["--rate-limit", "1", "--rate-burst", "2", "--trust-forwarded-for"])
    a = [get(s.url + TILE, headers={"X-Forwarded-For": "10.0.0.1"})[0] for _ in range(4)]
    b = [get(s.url + TILE, headers={"X-Forwarded-For": "10.0.0.2, 127.0.0.1"})[0] for _ in range(2)]
    assert a[:2] == [200, 200] and 429 in a[2:] and b == [200, 200]
    plain = server(data_root=fixtures, args=["--rate-limit", "1", "--rate-burst", "2"])
    codes = [get(plain.url + TILE, headers={"X-Forwarded-For": "10.0.0.%d" % i})[0] for i in range(4)]
    assert 429 in codes, "a spoofed X-Forwarded-For must not buy fresh buckets"


def test_rate_limit_is_shared_through_redis(server, get, fixtures, redis_url):  # noqa: F811
    env = {"CACHE_ENDPOINT": redis_url, "CACHE_NAMESPACE": "rl%d" % time.time_ns()}
    args = ["--rate-limit", "1", "--rate-burst", "4"]
    a = server(data_root=fixtures, env=env, args=args)
    b = server(data_root=fixtures, env=env, args=args)
    codes = [get((a if i % 2 else b).url + TILE)[0] for i in range(8)]
    # One bucket of 4 for both instances, not 4 each.
    assert codes.count(200) <= 5 and codes[:4] == [200] * 4 and codes.count(429) >= 3, codes


def test_request_size_limits(server, get, fixtures):
    s = server(data_root=fixtures)
    assert get(s.url + TILE + "&x=" + "a" * 100000)[0] == 414
    assert get(s.url + "/healthz", headers={"X-Big": "b" * 70000})[0] == 431
    assert get(s.url + "/healthz")[0] == 200


def test_idle_and_slow_connections_are_cut_and_do_not_block(server, get, fixtures):
    s = server(data_root=fixtures, args=["--connection-timeout", "1"])
    idle = []
    for _ in range(50):
        c = socket.create_connection(("127.0.0.1", s.port))
        idle.append(c)
    slow = socket.create_connection(("127.0.0.1", s.port))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    t0 = time.monotonic()
    assert get(s.url + TILE, timeout=5)[0] == 200  # served despite 51 stalled sockets
    assert time.monotonic() - t0 < 2
    slow.settimeout(5)
    t0 = time.monotonic()
    data = slow.recv(4096)  # the server closes it after the timeout
    assert time.monotonic() - t0 < 4
    assert data == b"" or data.startswith(b"HTTP/1.1 4")
    for c in idle:
        c.close()
    slow.close()


def test_connections_per_ip_cap(server, get, fixtures):
    s = server(data_root=fixtures, args=["--max-connections-per-ip", "2"])
    # The fixture's readiness probe may still be counted until the server
    # notices its close: hold two connections once both are surely accepted.
    deadline = time.monotonic() + 10
    while True:
        held = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
        replies = []
        for c in held:  # a keep-alive request on each: accepted and counted
            c.settimeout(10)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                replies.append(c.recv(4096))
            except OSError:
                replies.append(b"")
        if all(r.startswith(b"HTTP/1.1 200") for r in replies):
            break
        for c in held:
            c.close()
        assert time.monotonic() < deadline, replies
        time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", s.port))
    extra.settimeout(3)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = extra.recv(4096)
    except OSError:
        data = b""
    assert data == b"", "a third connection from one address must be refused"
    extra.close()
    for c in held:
        c.close()
    time.sleep(0.2)
    assert get(s.url + "/healthz")[0] == 200


def test_render_pool_queue_is_bounded_in_time(server, get, fixtures):
    # One I/O thread, so four render threads and one render slot: twelve
    # overlapping slow renders cannot all wait. Each is answered: rendered,
    # or 503 with Retry-After once it waited past the 50 ms bound, whether
    # it waited for a render thread or for the slot.
    s = server(data_root=fixtures, args=["--threads", "1", "--render-queue", "8",
                                         "--render-queue-timeout-ms", "50"])
    res = concurrently(12, lambda i: get(s.url + SLOW + "&rescale=0,%d" % (3000 + i), timeout=120))
    codes = rendered_or_busy(res)
    assert metrics(s, get)['tessera_rejected_total{reason="overload"}'] == codes.count(503)
