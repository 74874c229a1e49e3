#!/usr/bin/python3
"""The scenarios of bench/run (see docs/bench.md). bench/run builds, makes the
data and starts Redis, then runs this with /usr/bin/python3:

    bench.py --build DIR --data DIR --out FILE.json [--duration S] [--quick]
             [--only a,b] [--redis-port N] [--soak S] [--fill-keys N] [--starts N]

Every figure of one run comes from this run: ratios divide two numbers
measured minutes apart on the same machine. Nothing here passes or fails:
targets are printed as pass/miss and the exit status is 0 unless the bench
itself broke (a server that does not start, a wrk that cannot run).
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORES = os.cpu_count() or 1

ALL = ["startup", "floor-render", "floor-http", "miss-jpeg", "miss-png", "miss-webp",
       "miss-dem-colormap", "scaling", "hit-memory", "hit-redis", "hit-tiered", "rss", "encode"]

DEM_QUERY = "rescale=600,3600&colormap_name=terrain"

# ---------------------------------------------------------------------------
# processes


class Proc:
    """A child process in its own process group, ended by pid on stop()."""

    live = []

    def __init__(self, argv, log, env=None):
        self.log = open(log, "w")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        Proc.live.append(self)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        if self in Proc.live:
            Proc.live.remove(self)

    @classmethod
    def stop_all(cls):
        for p in list(cls.live):
            p.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def wait_http(port, path="/healthz", timeout=20, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.p.poll() is not None:
            raise RuntimeError("process exited with %s (log %s)" % (proc.p.returncode, proc.log.name))
        try:
            st, _, _ = http_get(port, path, timeout=2)
            if st == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError("no 200 on %s:%d%s within %ds" % ("127.0.0.1", port, path, timeout))


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def idle_cores(seconds=0.5):
    """Cores idle over a short window (from /proc/stat): what the machine's
    other work leaves for the next scenario."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, total
    i0, t0 = read()
    time.sleep(seconds)
    i1, t1 = read()
    return CORES * (i1 - i0) / max(t1 - t0, 1)


def proc_status(pid):
    """VmRSS and VmHWM in MiB from /proc/<pid>/status."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024.0
    except OSError:
        pass
    return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.build = a.build
        self.data = os.path.abspath(a.data)
        self.work = os.path.join(os.path.dirname(os.path.abspath(a.out)), "work")
        os.makedirs(self.work, exist_ok=True)
        self.results = {}
        self.errors = []
        self.urls = {}
        self.tiles = {}
        self.tjson = {}
        self.dur = a.duration
        self.lua = os.path.join(HERE, "urls.lua")
        self.load = {}  # scenario: 1-minute load average before and after
        self.idle = {}  # scenario: idle cores just before it

    # -- server -------------------------------------------------------------

    def server(self, name, *args, env_extra=None):
        port = free_port()
        argv = [os.path.join(self.build, "tessera"), "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data-root", self.data, "--no-access-log",
                "--log-level", "warn"] + list(args)
        env = dict(os.environ)
        env.update(env_extra or {})
        p = Proc(argv, os.path.join(self.work, "server-%s.log" % name), env=env)
        p.port = port
        wait_http(port, proc=p)
        return p

    # -- URL lists ------------------------------------------------------------

    def tile_lists(self):
        """Every tile strictly inside each dataset at its native zoom (and, for
        the smaller DEM, one zoom above), from the server's own TileJSON."""
        if self.tiles:
            return
        s = self.server("tilejson", "--cache-endpoint", "none")
        try:
            for ds, zooms in (("aerial.tif", (0,)), ("dem.tif", (0, 1))):
                st, _, body = http_get(s.port, "/tilejson.json?url=" + ds)
                if st != 200:
                    raise RuntimeError("tilejson %s: %d %s" % (ds, st, body[:200]))
                tj = json.loads(body)
                self.tjson[ds] = tj
                w, so, e, n = tj["bounds"]
                out = []
                for dz in zooms:
                    z = tj["maxzoom"] - dz
                    x0, y0 = lonlat_tile(w, n, z)
                    x1, y1 = lonlat_tile(e, so, z)
                    for y in range(y0 + 1, y1):
                        for x in range(x0 + 1, x1):
                            out.append((z, x, y))
                if self.a.quick:
                    out = spread(out, 300)
                self.tiles[ds] = out
        finally:
            s.stop()
        for name, ds, ext, q in (("jpeg", "aerial.tif", "jpg", ""), ("png", "aerial.tif", "png", ""),
                                 ("webp", "aerial.tif", "webp", ""),
                                 ("dem", "dem.tif", "png", "&" + DEM_QUERY)):
            urls = ["/tiles/WebMercatorQuad/%d/%d/%d.%s?url=%s%s" % (z, x, y, ext, ds, q)
                    for z, x, y in self.tiles[ds]]
            path = os.path.join(self.work, "urls-%s.txt" % name)
            with open(path, "w") as f:
                f.write("\n".join(urls) + "\n")
            self.urls[name] = path
        for ds in self.tiles:
            with open(os.path.join(self.work, "tiles-%s.txt" % ds), "w") as f:
                for t in self.tiles[ds]:
                    f.write("%d %d %d\n" % t)

    # -- wrk -----------------------------------------------------------------

    def wrk(self, port, urls, threads, conns, duration, mode="cycle", prefix="", offset=0):
        env = dict(os.environ, BENCH_URLS=urls or "", BENCH_MODE=mode, BENCH_OFFSET=str(offset),
                   BENCH_PREFIX=prefix, BENCH_THREADS=str(threads))
        argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
                "--timeout", "10s", "-s", self.lua, "http://127.0.0.1:%d" % port]
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 120)
        out = r.stdout + r.stderr
        m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
        if r.returncode != 0 or not m:
            raise RuntimeError("wrk failed (%d): %s" % (r.returncode, out[-2000:]))
        res = json.loads(m.group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
        res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
        res["errors_total"] = sum(res["errors"].values())
        res["raw"] = out
        self.nwrk = getattr(self, "nwrk", 0) + 1
        with open(os.path.join(self.work, "wrk-%02d-%d.txt" % (self.nwrk, port)), "w") as f:
            f.write(" ".join(argv) + "\n" + out)
        return res

    def measure(self, proc, urls, threads, conns, duration):
        """wrk against proc, with the server's CPU time per request."""
        c0 = cpu_seconds(proc.pid)
        w = self.wrk(proc.port, urls, threads, conns, duration)
        c1 = cpu_seconds(proc.pid)
        if c0 is not None and c1 is not None and w["requests"]:
            w["cpu_ms_per_req"] = (c1 - c0) * 1000 / w["requests"]
            w["cpu_cores_used"] = (c1 - c0) / (w["duration_us"] / 1e6)
        return w

    def check(self, name, w):
        """Non-2xx responses or socket errors make the scenario's figure invalid."""
        bad = []
        if w["non2xx"]:
            bad.append("%d non-2xx responses" % w["non2xx"])
        for k, v in w["errors"].items():
            if v and k != "status":
                bad.append("%d socket %s errors" % (v, k))
        if bad:
            msg = "%s: %s" % (name, ", ".join(bad))
            self.errors.append(msg)
            return msg
        return None

    def warm(self, port, urls, conns=4):
        """One pass over every URL, `conns` keep-alive connections (wrk cannot
        stop before its duration, so this is plain Python)."""
        with open(urls) as f:
            todo = [u.strip() for u in f if u.strip()]
        bad = []

        def worker(k):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for u in todo[k::conns]:
                c.request("GET", u)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    bad.append((u, r.status))
            c.close()

        with concurrent.futures.ThreadPoolExecutor(conns) as ex:
            list(ex.map(worker, range(conns)))
        if bad:
            self.errors.append("warm-up %s: %d non-200, e.g. %s" % (os.path.basename(urls), len(bad), bad[0]))

    # -- scenarios -------------------------------------------------------------

    def run_startup(self):
        tile = "/tiles/WebMercatorQuad/%d/%d/%d.jpg?url=aerial.tif" % self.tiles["aerial.tif"][0]
        health, first_tile, ntms = [], [], None
        n = self.a.starts
        for i in range(n):
            port = free_port()
            argv = [os.path.join(self.build, "tessera"), "serve", "--host", "127.0.0.1", "--port",
                    str(port), "--data-root", self.data, "--no-access-log", "--log-level", "warn"]
            t0 = time.monotonic()
            p = Proc(argv, os.path.join(self.work, "server-startup.log"))
            try:
                t1 = wait_http(port, "/healthz", proc=p)
                health.append((t1 - t0) * 1000)
                st, _, _ = http_get(port, tile)
                if st != 200:
                    raise RuntimeError("startup tile: %d" % st)
                first_tile.append((time.monotonic() - t0) * 1000)
                if i == 0:
                    st, _, body = http_get(port, "/tileMatrixSets")
                    ntms = len(json.loads(body).get("tileMatrixSets", []))
            finally:
                p.stop()
        self.results["startup"] = {
            "starts": n, "tms_loaded": ntms,
            "healthz_ms_median": statistics.median(health), "healthz_ms_all": health,
            "first_tile_ms_median": statistics.median(first_tile), "first_tile_ms_all": first_tile,
        }

    def run_floor_render(self):
        exe = os.path.join(self.build, "bench", "floor_render")
        out = {}
        jobs = [("jpeg", "aerial.tif", 1, []), ("png", "aerial.tif", 1, []),
                ("webp", "aerial.tif", 1, []),
                ("dem-colormap", "dem.tif", 1, ["--rescale", "600,3600"]),
                ("jpeg", "aerial.tif", CORES, [])]
        for fmt, ds, threads, extra in jobs:
            argv = [exe, "--dataset", os.path.join(self.data, ds), "--tiles",
                    os.path.join(self.work, "tiles-%s.txt" % ds), "--format", fmt, "--threads",
                    str(threads), "--passes", "2"] + extra
            r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                raise RuntimeError("floor_render %s: %s %s" % (fmt, r.stdout, r.stderr))
            res = json.loads(r.stdout)
            key = fmt if threads == 1 else "%s-%dthreads" % (fmt, threads)
            out[key] = res
        self.results["floor-render"] = out

    def median_tile(self, port):
        """The bytes of the median-sized JPEG tile of the HIT URL set."""
        with open(self.urls["jpeg"]) as f:
            urls = [u.strip() for u in f if u.strip()]
        sample = spread(urls, 25)
        bodies = []
        for u in sample:
            st, _, b = http_get(port, u)
            if st == 200:
                bodies.append(b)
        bodies.sort(key=len)
        return bodies[len(bodies) // 2]

    def run_floor_http(self):
        s = self.server("floor-http-sample", "--cache-endpoint", "none")
        try:
            body = self.median_tile(s.port)
            bodies = self.fetch_all(s.port, self.urls["jpeg"])
        finally:
            s.stop()
        path = os.path.join(self.work, "floor-tile.jpg")
        with open(path, "wb") as f:
            f.write(body)
        w, ka, st, err = self.floor_http_run("floor-http", ["--file", path])
        self.results["floor-http"] = dict(wrk_summary(w), body_bytes=len(body), keepalive=ka,
                                          rss_mb=st.get("VmHWM"), error=err)

        # The same floor serving each URL its own tile (the bytes a HIT run
        # sends): copying 1560 distinct bodies instead of one cache-hot
        # buffer costs the kernel more, and that is not the server's doing.
        path = os.path.join(self.work, "floor-bodies.bin")
        with open(path, "wb") as f:
            for uri, b in bodies:
                u = uri.encode()
                f.write(struct.pack("<I", len(u)) + u + struct.pack("<I", len(b)) + b)
        w, _, st, err = self.floor_http_run("floor-http-set", ["--bodies", path], bodies[0])
        self.results["floor-http-set"] = dict(
            wrk_summary(w), bodies=len(bodies),
            body_bytes_mean=sum(len(b) for _, b in bodies) / max(len(bodies), 1),
            rss_mb=st.get("VmHWM"), error=err)

    def floor_http_run(self, name, args, expect=None):
        """bench/floor_http with args under wrk; expect = (uri, body) it must serve."""
        port = free_port()
        p = Proc([os.path.join(self.build, "bench", "floor_http"), "--port", str(port),
                  "--threads", str(CORES)] + args, os.path.join(self.work, name + ".log"))
        p.port = port
        try:
            wait_http(port, "/", proc=p)
            if expect:
                st0, _, b0 = http_get(port, expect[0])
                if st0 != 200 or b0 != expect[1]:
                    raise RuntimeError("%s served the wrong bytes for %s" % (name, expect[0]))
            ka = keepalive(port, "/")
            w = self.measure(p, self.urls["jpeg"], 2, 32, self.dur)
            err = self.check(name, w)
            st = proc_status(p.pid)
        finally:
            p.stop()
        return w, ka, st, err

    def fetch_all(self, port, urls, conns=4):
        """(uri, body) of every URL in the list, rendered by a cache-less server."""
        with open(urls) as f:
            todo = [u.strip() for u in f if u.strip()]
        out = [None] * len(todo)

        def worker(k):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(k, len(todo), conns):
                c.request("GET", todo[i])
                r = c.getresponse()
                out[i] = (todo[i], r.read())
            c.close()

        with concurrent.futures.ThreadPoolExecutor(conns) as ex:
            list(ex.map(worker, range(conns)))
        return out

    def run_miss(self, which):
        """miss-jpeg/png/webp share one server on the aerial COG and
        miss-dem-colormap has its own, cache off, each warmed with one pass
        over its dataset's tiles so the GDAL block cache and the per-thread
        dataset handles are as warm as floor_render's measured pass."""
        ds = "dem" if which == "dem-colormap" else "jpeg"
        if getattr(self, "miss_ds", None) != ds:
            self.stop_miss()
            s = self.server("miss-" + ds, "--cache-endpoint", "none")
            self.miss_server, self.miss_ds = s, ds
            self.warm(s.port, self.urls[ds])
        s = self.miss_server
        name = "miss-" + which
        urls = self.urls["dem" if which == "dem-colormap" else which]
        w = self.measure(s, urls, 2, 4 * CORES, self.dur)
        err = self.check(name, w)
        st = proc_status(s.pid)
        self.results[name] = dict(wrk_summary(w), threads=CORES, connections=4 * CORES,
                                  rss_mb=st.get("VmRSS"), hwm_mb=st.get("VmHWM"), error=err)

    def stop_miss(self):
        if getattr(self, "miss_server", None):
            self.miss_server.stop()
        self.miss_server, self.miss_ds = None, None

    def run_scaling(self):
        """MISS JPEG with --threads 1, then 2, alternated twice (t1 t2 t1 t2),
        each figure the better of its two runs: a burst of load from elsewhere
        on the machine then spoils one run, not the ratio. A third variant,
        2 threads with the GDAL block cache doubled, shows how much of the gap
        is each thread's dataset handle caching its own copy of the blocks."""
        out = {}
        variants = [("threads1", ["--threads", "1"]), ("threads2", ["--threads", "2"]),
                    ("threads2-gdal512", ["--threads", "2", "--gdal-cache-mb", "512"])]
        for rnd in range(2):
            for name, args in variants:
                s = self.server("scaling-" + name, "--cache-endpoint", "none", *args)
                try:
                    self.warm(s.port, self.urls["jpeg"])
                    w = self.measure(s, self.urls["jpeg"], 2, 8, self.dur)
                    err = self.check("scaling-" + name, w)
                finally:
                    s.stop()
                r = dict(wrk_summary(w), error=err, runs=[w["rps"]], args=args)
                if name in out:
                    r["runs"] = out[name]["runs"] + r["runs"]
                    if out[name]["rps"] >= r["rps"]:
                        out[name]["runs"] = r["runs"]
                        continue
                out[name] = r
        self.results["scaling"] = out

    def run_hit(self, which):
        name = "hit-" + which
        ns = "bench-%d-%s-%d" % (os.getpid(), which, int(time.time()))
        redis = "redis://127.0.0.1:%d/0" % self.a.redis_port
        args = {"memory": ["--cache-endpoint", "memory://"],
                "redis": ["--cache-endpoint", redis, "--cache-namespace", ns],
                "tiered": ["--cache-endpoint", redis, "--cache-namespace", ns, "--cache-l1-mb", "64"]}
        if which != "memory" and not self.a.redis_port:
            raise RuntimeError("no Redis (bench/run starts one)")
        s = self.server(name, *args[which])
        try:
            self.warm(s.port, self.urls["jpeg"])
            before = cache_stats(s.port)
            ka = keepalive(s.port, first_line(self.urls["jpeg"]))
            w = self.measure(s, self.urls["jpeg"], 2, 32, self.dur)
            err = self.check(name, w)
            after = cache_stats(s.port)
            st = proc_status(s.pid)
        finally:
            s.stop()
        hits = after.get("hits", 0) - before.get("hits", 0)
        misses = after.get("misses", 0) - before.get("misses", 0)
        ratio = hits / (hits + misses) if hits + misses else None
        if ratio is not None and ratio < 0.99:
            self.errors.append("%s: cache hit ratio %.3f during the run" % (name, ratio))
        gets = after.get("async_gets", 0) - before.get("async_gets", 0)
        batches = after.get("async_batches", 0) - before.get("async_batches", 0)
        self.results[name] = dict(wrk_summary(w), hit_ratio=ratio, keepalive=ka,
                                  async_gets=gets, async_batches=batches,
                                  pipeline_depth=gets / batches if batches else None,
                                  cache_after=after, rss_mb=st.get("VmRSS"),
                                  hwm_mb=st.get("VmHWM"), error=err)

    def run_rss(self):
        """A 256 MiB memory cache filled with N distinct cheap cacheable keys
        (TileJSON with a distinct rescale, a known parameter, so it is stored),
        then a soak that keeps adding distinct keys, sampling RSS."""
        budget = self.a.cache_mb
        s = self.server("rss", "--cache-endpoint", "memory://", "--cache-memory-mb", str(budget))
        samples = []
        wp = None
        try:
            base = proc_status(s.pid)
            n = self.a.fill_keys
            t0 = time.monotonic()
            # wrk runs for its whole duration, so fill in chunks until the
            # cache has stored n distinct keys (each chunk its own key range).
            chunk, reqs, errs = 0, 0, []
            def filled():
                st = cache_stats(s.port)
                return st.get("stores", 0) >= n and st.get("evictions", 0) > 0

            while not filled() and chunk < 1000:
                w = self.wrk(s.port, None, 2, 16, 3 if self.a.quick else 10, mode="fill",
                             prefix="/tilejson.json?url=dem.tif&rescale=0,",
                             offset=chunk * 10**9)
                reqs += w["requests"]
                errs.append(self.check("rss-fill", w))
                chunk += 1
            err = "; ".join(e for e in errs if e) or None
            fill_s = time.monotonic() - t0
            after_fill = proc_status(s.pid)
            stats_fill = cache_stats(s.port)
            # Soak: keys after the fill's range, so every request is another insert + eviction.
            soak = self.a.soak
            step = 5 if soak >= 20 else 1
            t1 = time.monotonic()
            wp = subprocess.Popen(
                ["wrk", "-t2", "-c16", "-d%ds" % soak, "--latency", "--timeout", "10s", "-s",
                 self.lua, "http://127.0.0.1:%d" % s.port],
                env=dict(os.environ, BENCH_MODE="fill", BENCH_OFFSET=str(10**12), BENCH_THREADS="2",
                         BENCH_PREFIX="/tilejson.json?url=dem.tif&rescale=0,"),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            while wp.poll() is None:
                time.sleep(step)
                st = proc_status(s.pid)
                samples.append([round(time.monotonic() - t1, 1), st.get("VmRSS")])
            soak_out = wp.stdout.read()
            m = re.search(r"^BENCH_JSON (.*)$", soak_out, re.M)
            soak_w = json.loads(m.group(1)) if m else {}
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", soak_out)
            if non2xx:
                self.errors.append("rss-soak: %s non-2xx" % non2xx.group(1))
            end = proc_status(s.pid)
            stats_end = cache_stats(s.port)
        finally:
            if wp is not None and wp.poll() is None:
                wp.kill()
                wp.wait()
            s.stop()
        rss = [v for _, v in samples if v]
        # Growth: the last quarter's mean against the first quarter's (after the fill).
        q = max(1, len(rss) // 4)
        growth = (statistics.mean(rss[-q:]) - statistics.mean(rss[:q])) if rss else None
        self.results["rss"] = {
            "budget_mb": budget, "keys_requested": n, "fill_requests": reqs,
            "fill_seconds": fill_s, "fill_rps": reqs / fill_s, "fill_error": err,
            "rss_start_mb": base.get("VmRSS"), "rss_after_fill_mb": after_fill.get("VmRSS"),
            "hwm_after_fill_mb": after_fill.get("VmHWM"), "cache_after_fill": stats_fill,
            "soak_seconds": soak, "soak_requests": soak_w.get("requests"),
            "rss_end_mb": end.get("VmRSS"), "hwm_end_mb": end.get("VmHWM"),
            "soak_growth_mb": growth, "soak_samples": samples, "cache_end": stats_end,
        }

    def run_encode(self):
        exe = os.path.join(self.build, "bench", "encode_bench")
        r = subprocess.run([exe, "--quick", "--opt",
                            "png (production),pngraw (production),jpeg q85,webp q75"],
                           capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, TS_FIXTURES=os.path.join(ROOT, "..", "shared", "fixtures")))
        rows, image = [], None
        for line in r.stdout.splitlines():
            m = re.match(r"^(\S+) \((\d) channels", line)
            if m:
                image = m.group(1)
                continue
            m = re.match(r"^(.+?)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)x\s+(\S+)$", line)
            if m and image:
                rows.append({"image": image, "option": m.group(1).strip(), "ms": float(m.group(2)),
                             "bytes": int(m.group(3)), "size_vs_libpng6": float(m.group(4)),
                             "speed_vs_libpng6": float(m.group(5))})
        self.results["encode"] = {"rows": rows, "command": "build-release/bench/encode_bench --quick"}

    # -- driver --------------------------------------------------------------

    def run(self, only):
        t0 = time.monotonic()
        self.tile_lists()
        order = [s for s in ALL if s in only]
        for sc in order:
            ts = time.monotonic()
            load0 = os.getloadavg()[0]
            self.idle[sc] = round(idle_cores(), 2)
            print("bench: %s ..." % sc, file=sys.stderr, flush=True)
            try:
                if sc.startswith("miss-"):
                    self.run_miss(sc[5:])
                else:
                    self.stop_miss()
                    if sc.startswith("hit-"):
                        self.run_hit(sc[4:])
                    else:
                        getattr(self, "run_" + sc.replace("-", "_"))()
            except Exception as e:  # one broken scenario does not hide the others
                self.errors.append("%s: %s" % (sc, e))
                self.results.setdefault(sc, {})["error"] = str(e)
            self.load[sc] = [round(load0, 2), round(os.getloadavg()[0], 2)]
            print("bench: %s done in %.1f s (load average %.1f -> %.1f, %.2f of %d cores idle before)" % (
                sc, time.monotonic() - ts, *self.load[sc], self.idle[sc], CORES), file=sys.stderr,
                flush=True)
        self.stop_miss()
        self.elapsed = time.monotonic() - t0


# ---------------------------------------------------------------------------
# helpers


def lonlat_tile(lon, lat, z):
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    return x, y


def spread(items, n):
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def count_lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def first_line(path):
    with open(path) as f:
        return f.readline().strip()


def cache_stats(port):
    try:
        st, _, body = http_get(port, "/cache/stats")
        return json.loads(body) if st == 200 else {}
    except OSError:
        return {}


def keepalive(port, path):
    """Two requests on one connection: is it kept open?"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        conn_hdr = r.getheader("Connection", "")
        sock = c.sock
        c.request("GET", path)
        r2 = c.getresponse()
        r2.read()
        return {"kept": sock is not None and c.sock is sock and conn_hdr.lower() != "close",
                "connection_header": conn_hdr, "status": [r.status, r2.status],
                "x_cache": r2.getheader("X-Cache")}
    finally:
        c.close()


def wrk_summary(w):
    return {"rps": w["rps"], "requests": w["requests"], "seconds": w["duration_us"] / 1e6,
            "p50_ms": w["p50_us"] / 1000, "p90_ms": w["p90_us"] / 1000,
            "p99_ms": w["p99_us"] / 1000, "max_ms": w["max_us"] / 1000,
            "non2xx": w["non2xx"], "socket_errors": w["errors"],
            "cpu_ms_per_req": w.get("cpu_ms_per_req"), "cpu_cores_used": w.get("cpu_cores_used"),
            "mb_per_s": w["bytes"] / (w["duration_us"] / 1e6) / 1e6}


# ---------------------------------------------------------------------------
# report


def cores_note(r):
    """How much CPU the server got: on a shared machine a MISS figure with the
    server well below its thread count measures the neighbours, not tessera."""
    c = r.get("cpu_cores_used")
    if c is None:
        return None
    return "server used %.2f cores" % c


def report(b, a):
    R = b.results
    fr = R.get("floor-render", {})
    fh = R.get("floor-http", {})
    fs = R.get("floor-http-set", {})

    def g(d, *ks):
        for k in ks:
            if not isinstance(d, dict) or d.get(k) is None:
                return None
            d = d[k]
        return d

    def ratio(x, y):
        return x / y if x is not None and y else None

    COLS = ["scenario", "value", "unit", "p50_ms", "p99_ms", "cpu_ms", "peak_rss_mb", "floor",
            "floor_is", "ratio", "cpu_ratio", "notes"]
    rows = []

    def row(**kw):
        rows.append({c: kw.get(c) for c in COLS})

    def floor_tps(fmt):
        f = fr.get(fmt)
        return f["tiles_per_s"] * CORES if f else None

    for fmt in ("jpeg", "png", "webp", "dem-colormap"):
        sc = "miss-" + fmt
        r = R.get(sc)
        if not r:
            continue
        fl = floor_tps(fmt)
        row(scenario=sc, value=g(r, "rps"), unit="tiles/s", p50_ms=g(r, "p50_ms"), p99_ms=g(r, "p99_ms"),
            cpu_ms=g(r, "cpu_ms_per_req"), peak_rss_mb=g(r, "hwm_mb"), floor=fl,
            floor_is="floor-render x %d cores" % CORES, ratio=ratio(g(r, "rps"), fl),
            cpu_ratio=ratio(g(fr, fmt, "cpu_ms_per_tile"), g(r, "cpu_ms_per_req")),
            notes=r.get("error") or cores_note(r))
    for w in ("memory", "redis", "tiered"):
        sc = "hit-" + w
        r = R.get(sc)
        if not r:
            continue
        note = r.get("error") or "; ".join(x for x in (
            "hit ratio %.3f" % r["hit_ratio"] if r.get("hit_ratio") is not None else None,
            "%.1f GETs per Redis round trip" % r["pipeline_depth"] if r.get("pipeline_depth") else None,
            "%.2fx floor-http-set" % (g(r, "rps") / g(fs, "rps")) if g(r, "rps") and g(fs, "rps") else None,
            cores_note(r)) if x)
        row(scenario=sc, value=g(r, "rps"), unit="req/s", p50_ms=g(r, "p50_ms"), p99_ms=g(r, "p99_ms"),
            cpu_ms=g(r, "cpu_ms_per_req"), peak_rss_mb=g(r, "hwm_mb"), floor=g(fh, "rps"),
            floor_is="floor-http", ratio=ratio(g(r, "rps"), g(fh, "rps")),
            cpu_ratio=ratio(g(fh, "cpu_ms_per_req"), g(r, "cpu_ms_per_req")), notes=note)
    if fh and fh.get("rps"):
        row(scenario="floor-http", value=g(fh, "rps"), unit="req/s", p50_ms=g(fh, "p50_ms"),
            p99_ms=g(fh, "p99_ms"), cpu_ms=g(fh, "cpu_ms_per_req"), peak_rss_mb=g(fh, "rss_mb"),
            notes=fh.get("error") or "%d-byte body; %s" % (fh.get("body_bytes", 0), cores_note(fh)))
    if fs and fs.get("rps"):
        row(scenario="floor-http-set", value=g(fs, "rps"), unit="req/s", p50_ms=g(fs, "p50_ms"),
            p99_ms=g(fs, "p99_ms"), cpu_ms=g(fs, "cpu_ms_per_req"), peak_rss_mb=g(fs, "rss_mb"),
            notes=fs.get("error") or "each URL its own tile: %d bodies, %.0f bytes mean; %s" % (
                fs.get("bodies", 0), fs.get("body_bytes_mean", 0), cores_note(fs)))
    for fmt in ("jpeg", "png", "webp", "dem-colormap"):
        f = fr.get(fmt)
        if f:
            row(scenario="floor-render " + fmt, value=f["tiles_per_s"], unit="tiles/s, 1 thread",
                cpu_ms=f.get("cpu_ms_per_tile"),
                notes="%.2f ms/tile; cold first pass %.0f tiles/s; %.0f bytes/tile" % (
                    f["ms_per_tile"], f["cold_tiles_per_s"], f["avg_bytes"]))
    f2 = fr.get("jpeg-%dthreads" % CORES)
    if f2:
        row(scenario="floor-render jpeg x%d" % CORES, value=f2["tiles_per_s"],
            unit="tiles/s, %d threads" % CORES, cpu_ms=f2.get("cpu_ms_per_tile"))
    sc = R.get("scaling", {})
    for name, label in (("threads1", "miss-jpeg --threads 1"), ("threads2", "miss-jpeg --threads 2"),
                        ("threads2-gdal512", "miss-jpeg --threads 2 --gdal-cache-mb 512")):
        r = sc.get(name)
        if r and r.get("rps"):
            row(scenario=label, value=r.get("rps"), unit="tiles/s",
                p50_ms=r.get("p50_ms"), p99_ms=r.get("p99_ms"), cpu_ms=r.get("cpu_ms_per_req"),
                notes=r.get("error") or "best of runs %s; %s" % (
                    ", ".join("%.0f" % x for x in r.get("runs", [])), cores_note(r)))
    rs = R.get("rss")
    if rs and rs.get("rss_after_fill_mb"):
        row(scenario="rss fill", value=rs["fill_rps"], unit="req/s", peak_rss_mb=rs["hwm_after_fill_mb"],
            notes="%d distinct keys into a %d MiB memory cache: RSS %.0f MiB (%.0f at start), %s entries "
                  "holding %.0f MiB, %s evictions" % (
                rs["fill_requests"], rs["budget_mb"], rs["rss_after_fill_mb"], rs["rss_start_mb"],
                g(rs, "cache_after_fill", "entries"), (g(rs, "cache_after_fill", "bytes") or 0) / 2**20,
                g(rs, "cache_after_fill", "evictions")))
        row(scenario="rss soak", value=(rs.get("soak_requests") or 0) / max(rs["soak_seconds"], 1),
            unit="req/s", peak_rss_mb=rs["hwm_end_mb"],
            notes="%d s of further distinct keys: RSS %.0f -> %.0f MiB (growth %+.1f MiB)" % (
                rs["soak_seconds"], rs["rss_after_fill_mb"], rs["rss_end_mb"], rs["soak_growth_mb"] or 0))
    su = R.get("startup")
    if su and su.get("healthz_ms_median") is not None:
        row(scenario="startup", value=su["healthz_ms_median"], unit="ms to 200 /healthz",
            notes="median of %d starts; first tile %.1f ms; %d TMS loaded" % (
                su["starts"], su["first_tile_ms_median"], su["tms_loaded"]))

    def fmt(v, nd=1):
        if v is None:
            return "-"
        if isinstance(v, str):
            return v
        if abs(v) >= 100:
            return "%.0f" % v
        return ("%%.%df" % nd) % v

    lines = []
    lines.append("| scenario | value | unit | p50 ms | p99 ms | CPU ms/req | peak RSS MiB | floor | floor is "
                 "| server/floor | CPU floor/server | notes |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for r in rows:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["scenario"], fmt(r["value"]), r["unit"], fmt(r["p50_ms"], 2), fmt(r["p99_ms"], 2),
            fmt(r["cpu_ms"], 3), fmt(r["peak_rss_mb"]), fmt(r["floor"]), r["floor_is"] or "",
            fmt(r["ratio"], 2), fmt(r["cpu_ratio"], 2), r["notes"] or ""))

    # Targets
    targets = []

    def target(name, measured, goal, ok, detail=""):
        targets.append({"target": name, "measured": measured, "goal": goal,
                        "result": None if ok is None else ("pass" if ok else "miss"), "detail": detail})

    hm = R.get("hit-memory", {})
    x = ratio(g(hm, "rps"), g(fh, "rps"))
    target("hit-memory req/s >= 0.8x floor-http", x, 0.8, None if x is None else x >= 0.8,
           "%s / %s req/s" % (fmt(g(hm, "rps")), fmt(g(fh, "rps"))))
    p99 = g(hm, "p99_ms")
    target("hit-memory p99 <= 5 ms at 32 conns", p99, 5.0, None if p99 is None else p99 <= 5.0)
    x = ratio(g(R, "hit-redis", "rps"), g(hm, "rps"))
    target("hit-redis >= 0.5x hit-memory", x, 0.5, None if x is None else x >= 0.5)
    def starved(r, threads):
        c = g(r, "cpu_cores_used")
        if c is not None and c < 0.8 * threads:
            return "; machine busy: the server got %.2f of its %d threads' cores" % (c, threads)
        return ""

    x = ratio(g(R, "miss-jpeg", "rps"), floor_tps("jpeg"))
    target("miss-jpeg >= 0.8x floor-render x cores", x, 0.8, None if x is None else x >= 0.8,
           "%s tiles/s vs %s x %d; CPU per tile: floor %s ms, server %s ms%s" % (
               fmt(g(R, "miss-jpeg", "rps")), fmt(g(fr, "jpeg", "tiles_per_s")), CORES,
               fmt(g(fr, "jpeg", "cpu_ms_per_tile"), 2), fmt(g(R, "miss-jpeg", "cpu_ms_per_req"), 2),
               starved(R.get("miss-jpeg"), CORES)))
    t1, t2 = g(sc, "threads1", "rps"), g(sc, "threads2", "rps")
    x = ratio(t2, t1)
    target("MISS jpeg 2 threads >= 1.8x 1 thread", x, 1.8, None if x is None else x >= 1.8,
           "%s vs %s tiles/s; CPU per tile %s vs %s ms%s" % (
               fmt(t2), fmt(t1), fmt(g(sc, "threads2", "cpu_ms_per_req"), 2),
               fmt(g(sc, "threads1", "cpu_ms_per_req"), 2), starved(sc.get("threads2"), 2)))
    if rs and rs.get("rss_after_fill_mb"):
        peak = max(rs["hwm_end_mb"], rs["hwm_after_fill_mb"])
        keys = rs["fill_requests"]
        target("RSS <= cache budget + 100 MiB after %d distinct keys" % keys, peak,
               rs["budget_mb"] + 100, peak <= rs["budget_mb"] + 100,
               "peak RSS (VmHWM) %.0f MiB, budget %d MiB%s" % (
                   peak, rs["budget_mb"], "" if keys >= 1000000 else " (fewer than 1M keys: --quick)"))
        gr = rs["soak_growth_mb"]
        target("no RSS growth over the soak (%d s)" % rs["soak_seconds"], gr, 10.0,
               None if gr is None else gr <= 10.0, "last quarter vs first quarter mean, MiB; goal <= 10")
    if su and su.get("healthz_ms_median") is not None:
        target("start-up to first 200 (median of %d)" % su["starts"], su["healthz_ms_median"], None, None,
               "measured only: /healthz %.1f ms, first tile %.1f ms" % (
                   su["healthz_ms_median"], su["first_tile_ms_median"]))
    enc = R.get("encode", {}).get("rows")
    if enc:
        target("MISS PNG encode options", None, None, None,
               "see the encode table (bench/encode_bench.c)")

    lines.append("")
    lines.append("| target | measured | goal | result | detail |")
    lines.append("|---|---:|---:|---|---|")
    for t in targets:
        lines.append("| %s | %s | %s | %s | %s |" % (t["target"], fmt(t["measured"], 2), fmt(t["goal"], 2),
                                                   t["result"] or "-", t["detail"]))
    if enc:
        lines.append("")
        lines.append("Encoders on synthetic and fixture tiles (bench/encode_bench --quick; ms/tile, bytes, size vs libpng level 6):")
        lines.append("")
        lines.append("| image | option | ms/tile | bytes | size vs libpng-6 |")
        lines.append("|---|---|---:|---:|---:|")
        for e in enc:
            if e["image"].endswith("-256") and not e["option"].startswith("libpng"):
                lines.append("| %s | %s | %.3f | %d | %.3f |" % (e["image"], e["option"], e["ms"], e["bytes"],
                                                            e["size_vs_libpng6"]))
    if b.errors:
        lines.append("")
        lines.append("ERRORS (figures marked above are not valid):")
        for e in b.errors:
            lines.append("- " + e)
    table = "\n".join(lines)

    doc = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"cores": CORES, "kernel": platform.release(), "machine": platform.machine(),
                 "loadavg_at_end": os.getloadavg()},
        "options": {"duration_s": a.duration, "quick": a.quick, "soak_s": a.soak,
                    "fill_keys": a.fill_keys, "starts": a.starts, "cache_mb": a.cache_mb},
        "elapsed_s": b.elapsed,
        "loadavg_1m_per_scenario": b.load,
        "idle_cores_before_scenario": b.idle,
        "urls": {k: count_lines(v) for k, v in b.urls.items()},
        "scenarios": strip_raw(R),
        "table": rows,
        "targets": targets,
        "errors": b.errors,
    }
    return table, doc


def strip_raw(d):
    if isinstance(d, dict):
        return {k: strip_raw(v) for k, v in d.items() if k != "raw"}
    if isinstance(d, list):
        return [strip_raw(v) for v in d]
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--redis-port", type=int, default=0)
    ap.add_argument("--soak", type=int, default=60)
    ap.add_argument("--fill-keys", type=int, default=1000000)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--cache-mb", type=int, default=256, help="memory cache budget of the rss scenario")
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(",") if s.strip()] or ALL
    unknown = [s for s in only if s not in ALL]
    if unknown:
        print("bench: unknown scenario(s) %s (known: %s)" % (", ".join(unknown), ", ".join(ALL)),
              file=sys.stderr)
        return 2
    # floor-http and hit-* ratios need each other; miss-* need floor-render:
    # --only runs exactly what it names, and the ratios of missing pairs print "-".
    b = Bench(a)

    def on_signal(sig, frame):
        Proc.stop_all()
        sys.exit(130)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        b.run(only)
    finally:
        Proc.stop_all()
    table, doc = report(b, a)
    print(table)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    md = os.path.splitext(a.out)[0] + ".md"
    with open(md, "w") as f:
        f.write(table + "\n")
    print("\njson: %s  table: %s  (%.0f s)" % (a.out, md, b.elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
