"""Helpers shared by the robustness tests (bad inputs, faults, load): body checks,
keep-alive clients, a thread-pool load driver and a private Redis."""
import http.client
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import numpy as np
from osgeo import gdal

from conftest import free_port

gdal.UseExceptions()

# Seconds of each load phase (TESSERA_LOAD_SECONDS=60 for the long version).
LOAD_SECONDS = float(os.environ.get("TESSERA_LOAD_SECONDS", "15"))

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF",
         "tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "npy": b"\x93NUMPY"}
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "tif": "image/tiff",
        "npy": "application/x-binary"}


def decode(fmt, body):
    """Decodes a tile body fully (GDAL for images, numpy for npy); returns an array or raises."""
    if fmt == "npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    magic = MAGIC[fmt]
    assert body.startswith(magic if isinstance(magic, tuple) else (magic,)), body[:16]
    name = "/vsimem/%s.%s" % (uuid.uuid4().hex, fmt)
    gdal.FileFromMemBuffer(name, body)
    try:
        ds = gdal.Open(name)
        arr = ds.ReadAsArray()
        ds = None
    finally:
        gdal.Unlink(name)
    assert arr is not None and arr.size > 0
    return arr


def is_png(body):
    """A complete PNG: signature first, IEND chunk last (cheap enough for every response)."""
    return body[:8] == MAGIC["png"] and body[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"


def asan_build(binary):
    """True when the server binary is built with AddressSanitizer (slower: time bounds scale)."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out


def time_scale(binary):
    return 3.0 if asan_build(binary) else 1.0


def json_detail(body):
    """The `detail` of a JSON error body, or raises."""
    d = json.loads(body)
    assert isinstance(d, dict) and isinstance(d.get("detail"), str) and d["detail"], d
    return d["detail"]


class Client:
    """One keep-alive HTTP/1.1 connection (http.client), reconnecting when asked."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout = port, timeout
        self.conn = None

    def request(self, path, headers=None, method="GET"):
        """Returns (status, headers dict, body). Raises on connection errors."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, headers=headers or {})
            r = self.conn.getresponse()
            body = r.read()
            h = {k.lower(): v for k, v in r.getheaders()}
            if h.get("connection", "").lower() == "close":
                self.close()
            return r.status, h, body
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """`threads` workers, each with its own keep-alive connection, call
    `job(worker_index, iteration, client)` until `stop` is set or `seconds`
    pass. The job returns None when fine or a string describing a failure;
    exceptions count as failures too. Results are collected in lists."""

    def __init__(self, port, threads, job, seconds, timeout=30):
        self.port, self.job, self.seconds, self.timeout = port, job, seconds, timeout
        self.stop = threading.Event()
        self.failures = []
        self.count = 0
        self.latencies = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def _run(self, i):
        c = Client(self.port, self.timeout)
        it = 0
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                err = self.job(i, it, c)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                err = "%s: %r" % (type(e).__name__, e)
            dt = time.monotonic() - t0
            with self._lock:
                self.count += 1
                self.latencies.append(dt)
                if err:
                    self.failures.append(err)
            it += 1
        c.close()

    def start(self):
        self.t0 = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def join(self):
        for t in self._threads:
            t.join(self.seconds + self.timeout + 30)
        self.elapsed = time.monotonic() - self.t0
        assert not any(t.is_alive() for t in self._threads), "load workers hung"
        return self

    def run(self):
        return self.start().join()

    def summary(self):
        lat = sorted(self.latencies) or [0]
        return "%d requests in %.1fs (%.0f req/s), p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failures" % (
            self.count, self.elapsed, self.count / max(self.elapsed, 1e-9), 1e3 * lat[len(lat) // 2],
            1e3 * lat[int(len(lat) * 0.99)], 1e3 * lat[-1], len(self.failures))


class Redis:
    """A private redis-server on a free port (no persistence), controllable with redis-cli."""

    def __init__(self, *extra):
        self.extra = list(extra)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="tessera-redis-")
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir] + self.extra, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cli(self, *args, check=True, timeout=10):
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("redis-cli %s: %s" % (args, r.stderr))
        return r.stdout

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
