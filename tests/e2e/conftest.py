"""Shared fixtures: start the real tessera binary on a free port and talk HTTP to it."""
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.environ.get("TS_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("TESSERA_BIN", os.path.join(ROOT, "build", "tessera"))
FIXTURES = os.path.abspath(os.path.join(ROOT, "..", "shared", "fixtures"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, headers=None, method="GET", timeout=30):
    """Returns (status, headers, body) without raising on HTTP errors."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Server:
    def __init__(self, data_root=None, args=(), env=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        e = dict(os.environ)
        e.setdefault("TESSERA_ENV_FILE", "/nonexistent/.env")
        e.update(env or {})
        cmd = [BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--data-root", data_root or os.path.join(ROOT, "data")] + list(args)
        self.log = open(os.path.join("/tmp", "tessera-test-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError("server exited: " + self.log.read())
            try:
                if http_get(self.url + "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become healthy")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    """Factory: server(data_root=..., args=[...], env={...}) -> Server (stopped at teardown)."""
    started = []

    def start(**kw):
        s = Server(**kw)
        started.append(s)
        return s

    yield start
    # Every server is stopped before any exit status is judged: a failing
    # one must not leave the others running.
    codes = [(s.port, s.stop()) for s in started]
    bad = [(port, rc) for port, rc in codes if rc != 0]
    assert not bad, "servers exited with %s (sanitizer report or crash? logs: /tmp/tessera-test-PORT.log)" % bad


@pytest.fixture(scope="session")
def get():
    return http_get


@pytest.fixture(scope="session")
def fixtures():
    return FIXTURES
