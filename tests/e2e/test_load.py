"""Load: 64 keep-alive connections for TESSERA_LOAD_SECONDS (default 15; the long run is
`TESSERA_LOAD_SECONDS=60`) of mixed cached tiles, distinct tiles and bad requests. Every
response must have exactly the status of its class and a valid body; no connection may
fail; the server exits 0 at teardown (under ASan: no leak, no sanitizer report).

Graceful restart: SIGTERM during a load run with Redis; what was answered is complete,
and a new server on the same Redis serves every stored URL as a HIT equal to a fresh render.

The 60 s soak, under ASan (fault phases follow at 30 s each):
  cd tests/e2e && TESSERA_LOAD_SECONDS=60 TESSERA_BIN=$PWD/../../build-asan/tessera \
      ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../lsan.supp \
      /usr/bin/python3 -m pytest -q -s test_load.py test_faults.py
"""
import json
import signal
import threading
import time
import http.client
from concurrent.futures import ThreadPoolExecutor

from conftest import BIN
from robust_util import LOAD_SECONDS, Load, Redis, decode, is_png, json_detail, time_scale

SCALE = time_scale(BIN)

CONNECTIONS = 64
HOT = ["/tiles/WebMercatorQuad/%s.%s?url=cog.tif%s" % t for t in [
    ("9/175/98", "png", ""), ("9/176/98", "png", ""), ("7/44/25", "png", ""), ("5/11/6", "jpeg", ""),
    ("5/10/6", "webp", ""), ("8/88/49", "png", ""), ("9/175/98", "png", "&rescale=0,2000&colormap_name=terrain"),
    ("7/44/25", "npy", "")]] + ["/tilejson.json?url=cog.tif", "/info?url=cog.tif"]
TILES_Z9 = [(175, 98), (176, 98), (175, 97), (176, 97)]


def miss_path(n):
    """A tile never requested before (rescale is part of the cache key)."""
    x, y = TILES_Z9[n % len(TILES_Z9)]
    fmt = ["png", "jpeg", "webp"][n % 3]
    return "/tiles/WebMercatorQuad/9/%d/%d.%s?url=cog.tif&rescale=0,%d" % (x, y, fmt, 1000 + n)


def classify(i, it, n):
    """Request class and path for a worker's iteration (n: a process-wide counter)."""
    k = (i + it) % 11
    if k < 4:
        return "hit", HOT[(i * 7 + it) % len(HOT)]
    if k < 7:
        return "miss", miss_path(n)
    return [("bad", "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif&rescale=abc"),
            ("outside", "/tiles/WebMercatorQuad/9/0/0.png?url=cog.tif"),
            ("tms", "/tiles/NoSuchTMS/9/175/98.png?url=cog.tif"),
            ("traversal", "/tiles/WebMercatorQuad/9/175/98.png?url=../../etc/passwd")][k - 7]


EXPECTED = {"hit": 200, "miss": 200, "bad": 400, "outside": 404, "tms": 422, "traversal": 404}


def check_response(cls, path, st, h, body, sample):
    if st != EXPECTED[cls]:
        return "%s %s: status %s, expected %s: %r" % (cls, path, st, EXPECTED[cls], body[:150])
    if st != 200:
        json_detail(body)
        if h.get("x-cache") == "HIT":
            return "%s %s: an error came from the cache" % (cls, path)
        return None
    if cls == "hit" and h.get("x-cache") != "HIT":
        return "%s %s: X-Cache %s" % (cls, path, h.get("x-cache"))
    if cls == "miss" and h.get("x-cache") != "MISS":
        return "%s %s: X-Cache %s" % (cls, path, h.get("x-cache"))
    if "/tiles/" in path:
        fmt = path.split("?")[0].rsplit(".", 1)[1]
        if fmt == "png" and not is_png(body):
            return "%s %s: broken PNG" % (cls, path)
        if sample or fmt != "png":
            decode(fmt, body)
    else:
        json.loads(body)
    return None


def test_mixed_load(server, get, fixtures):
    s = server(data_root=fixtures, args=["--no-access-log"])
    for p in HOT:
        assert get(s.url + p)[0] == 200
    counter = iter(range(10**9))
    lock = threading.Lock()
    per_class = {}

    def job(i, it, c):
        with lock:
            n = next(counter)
        cls, path = classify(i, it, n)
        st, h, body = c.request(path)
        with lock:
            per_class[cls] = per_class.get(cls, 0) + 1
        return check_response(cls, path, st, h, body, sample=n % 25 == 0)

    load = Load(s.port, CONNECTIONS, job, LOAD_SECONDS).run()
    print("mixed load, %d connections: %s; by class %s" % (CONNECTIONS, load.summary(), per_class))
    assert not load.failures, load.failures[:5]
    assert all(per_class.get(c, 0) > 0 for c in EXPECTED), per_class
    st, _, body = get(s.url + "/cache/stats")
    stats = json.loads(body)
    assert stats["hits"] >= per_class["hit"] and stats["errors"] == 0, stats
    assert get(s.url + "/healthz")[0] == 200


# ---- SIGTERM under load, then a restart on the same Redis ----

def test_sigterm_under_load_then_restart_on_same_redis(server, get, fixtures):
    """Allowed for a request around shutdown: a complete response (the status of its class,
    a valid body), or a connection failure *before any byte of the response*: a refused
    connect once the listening socket is closed, or a keep-alive connection closed or reset
    by the server before it answered (a client retries these; an idempotent GET is safe to
    retry). Not allowed: a truncated body, a 5xx, a hang, an exit code other than 0."""
    redis = Redis()
    try:
        env = {"CACHE_ENDPOINT": redis.url, "CACHE_NAMESPACE": "restart"}
        s = server(data_root=fixtures, env=env, args=["--no-access-log"])
        for p in HOT:
            get(s.url + p)
        answered = {}  # path -> body of a 200 (MISS or HIT)
        outcomes = {"complete": 0, "refused": 0, "closed_before_response": 0}
        refused_workers = {}
        lock = threading.Lock()
        counter = iter(range(10**9))
        shutdown = threading.Event()

        def job(i, it, c):
            if shutdown.is_set() and refused_workers.get(i):
                time.sleep(0.05)  # this client saw the closed socket: it would go elsewhere
                return None
            with lock:
                n = next(counter)
            # Hot and distinct tiles only.
            path = HOT[n % len(HOT)] if n % 2 else miss_path(n)
            try:
                if c.conn is None:
                    c.conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=c.timeout)
                c.conn.request("GET", path)
                r = c.conn.getresponse()
            except ConnectionRefusedError:
                c.close()
                with lock:
                    outcomes["refused"] += 1
                    refused_workers[i] = True
                return None if shutdown.is_set() else "connection refused before shutdown"
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                c.close()
                with lock:
                    outcomes["closed_before_response"] += 1
                return None if shutdown.is_set() else "connection closed before shutdown: %r" % e
            try:
                body = r.read()  # a failure here is a truncated response: never allowed
            except Exception as e:  # noqa: BLE001
                c.close()
                return "truncated response for %s: %r" % (path, e)
            h = {k.lower(): v for k, v in r.getheaders()}
            if h.get("connection", "").lower() == "close":
                c.close()
            with lock:
                outcomes["complete"] += 1
            if r.status != 200:
                return "%s: %s %r" % (path, r.status, body[:150])
            fmt = path.split("?")[0].rsplit(".", 1)[-1]
            if "/tiles/" in path:
                if fmt == "png" and not is_png(body):
                    return "%s: broken PNG" % path
                decode(fmt, body) if fmt != "png" else None
            else:
                json.loads(body)
            with lock:
                answered[path] = body
            return None

        load = Load(s.port, 32, job, LOAD_SECONDS).start()
        time.sleep(min(4.0, LOAD_SECONDS / 3))
        t0 = time.monotonic()
        shutdown.set()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.proc.wait(30)
        drain = time.monotonic() - t0
        load.stop.set()
        load.join()
        print("SIGTERM under load: %s; drain %.2fs; outcomes %s" % (load.summary(), drain, outcomes))
        assert rc == 0, "exit code %s" % rc
        assert not load.failures, load.failures[:5]
        # In-flight renders take milliseconds: the drain must not wait for its 10 s timeout
        # (keep-alive clients are told "Connection: close" and cannot come back).
        assert drain < 3.0 * SCALE, "shutdown took %.1fs" % drain

        # A new instance on the same Redis: everything answered before is a HIT with the same
        # bytes as a fresh render; no entry is undecodable.
        s2 = server(data_root=fixtures, env=env, args=["--no-access-log"])
        paths = sorted(answered)

        # A store that failed (a Redis timeout on a starved machine) is logged; then a MISS
        # is an unstored tile, not a half-written one, and is tolerated.
        with open(s.log.name) as f:
            redis_trouble = "cache redis" in f.read()
        misses = []

        def verify(path):
            st, h, body = get(s2.url + path)
            if st == 200 and h["X-Cache"] == "MISS" and redis_trouble:
                misses.append(path)
            elif st != 200 or h["X-Cache"] != "HIT":
                return "%s: %s %s after the restart" % (path, st, h.get("X-Cache"))
            st2, h2, fresh = get(s2.url + path, headers={"Cache-Control": "no-cache"})
            if h2["X-Cache"] != "BYPASS" or fresh != body or body != answered[path]:
                return "%s: cached bytes differ from a fresh render" % path
            return None

        with ThreadPoolExecutor(8) as ex:
            errors = [e for e in ex.map(verify, paths) if e]
        print("after the restart: %d stored URLs checked, %d MISSes (Redis errors logged: %s)" % (
            len(paths), len(misses), redis_trouble))
        assert not errors, errors[:5]
        stats = json.loads(get(s2.url + "/cache/stats")[2])
        assert stats["errors"] == 0, stats
        assert len(paths) > 50
    finally:
        redis.close()
