"""Memory-cache HITs reuse a prebuilt libmicrohttpd response per blob and I/O
thread (src/http.c, "Prebuilt responses"). Clients must not be able to tell:
every HIT, over keep-alive or new connections, HTTP/1.1 or 1.0, GET or HEAD,
from several threads at once, carries the bytes and headers of the first
HIT; DELETE /cache still forces a fresh render; and with a cache too small
for the tiles (blobs evicted while a slot still holds them, slots dropped
by the per-thread byte cap) every URL keeps its own bytes."""
import http.client
import json
import socket
import threading

TOKEN = "s3cret"


def tile(z, x, y, ext, extra=""):
    return "/tiles/WebMercatorQuad/%d/%d/%d.%s?url=cog.tif%s" % (z, x, y, ext, extra)


# Distinct entries of different sizes and content types (cog.tif covers
# z9 x 169..181, y 93..104).
TILES = [tile(9, 175, 98, "png"), tile(9, 176, 98, "jpg"), tile(9, 175, 97, "webp"),
         tile(9, 176, 97, "tif"), tile(8, 88, 49, "png"), tile(9, 175, 98, "png", "&tilesize=512")]


class Conn:
    """One keep-alive HTTP/1.1 connection; headers as an ordered list without Date."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def req(self, path, method="GET", headers=None):
        self.c.request(method, path, headers=headers or {})
        r = self.c.getresponse()
        body = r.read()
        return r.status, [(k, v) for k, v in r.getheaders() if k != "Date"], body

    def close(self):
        self.c.close()


def once(port, path, method="GET", headers=None):
    c = Conn(port)
    try:
        return c.req(path, method, headers)
    finally:
        c.close()


def http10(port, path):
    """A bare HTTP/1.0 request: libmicrohttpd answers it with Connection: close
    and closes, per connection, while the response object is shared."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    return int(lines[0].split()[1]), [h for h in headers if h[0] != "Date"], body


def without(headers, name):
    return [h for h in headers if h[0] != name]


def first_hits(port, paths):
    """MISS then first HIT of each path: {path: (headers, body)} of the HIT."""
    ref = {}
    for p in paths:
        st, h, body = once(port, p)
        assert st == 200 and ("X-Cache", "MISS") in h, (p, h)
        st, h2, body2 = once(port, p)
        assert st == 200 and ("X-Cache", "HIT") in h2 and body2 == body, (p, h2)
        assert without(h2, "X-Cache") == without(h, "X-Cache"), p
        ref[p] = (h2, body2)
    return ref


def test_hits_are_identical_to_the_first_hit(server, fixtures):
    s = server(data_root=fixtures, args=["--threads", "2"], env={"CACHE_ADMIN_TOKEN": TOKEN})
    ref = first_hits(s.port, TILES)
    errors = []

    def check(what, p, st, h, body, head=False):
        want_h, want_body = ref[p]
        if st != 200 or h != want_h or body != (b"" if head else want_body):
            errors.append("%s %s: %s %r (%d bytes)" % (what, p, st, h, len(body)))

    def worker(i):
        keep = Conn(s.port)
        try:
            for it in range(40):
                p = TILES[(i * 5 + it) % len(TILES)]
                k = it % 5
                if k == 0:
                    check("keep-alive GET", p, *keep.req(p))
                elif k == 1:
                    check("keep-alive HEAD", p, *keep.req(p, "HEAD"), head=True)
                elif k == 2:
                    check("new connection GET", p, *once(s.port, p))
                elif k == 3:
                    st, h, body = once(s.port, p, headers={"Connection": "close"})
                    if ("Connection", "close") not in h:
                        errors.append("Connection: close missing for %s: %r" % (p, h))
                    check("Connection: close GET", p, st, without(h, "Connection"), body)
                else:
                    st, h, body = http10(s.port, p)
                    check("HTTP/1.0 GET", p, st, without(h, "Connection"), body)
        except Exception as e:  # noqa: BLE001 - reported with the rest
            errors.append("worker %d: %r" % (i, e))
        finally:
            keep.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]

    # A deleted entry is rendered again (MISS) even though the I/O threads
    # still hold responses built for the old blob, then served as HITs.
    keep = Conn(s.port)
    assert keep.req(TILES[0])[1] == ref[TILES[0]][0]
    st, _, body = once(s.port, "/cache?url=cog.tif", "DELETE",
                       headers={"Authorization": "Bearer " + TOKEN})
    assert st == 200 and json.loads(body)["deleted"] >= len(TILES)
    for p in TILES:
        st, h, body = keep.req(p)
        assert st == 200 and ("X-Cache", "MISS") in h and body == ref[p][1], (p, h)
        for _ in range(3):
            st, h, body = keep.req(p)
            assert st == 200 and h == ref[p][0] and body == ref[p][1], (p, h)
            st, h, body = once(s.port, p)
            assert st == 200 and h == ref[p][0] and body == ref[p][1], (p, h)
    keep.close()


def test_tiny_cache_keeps_every_url_on_its_own_bytes(server, fixtures):
    # 1 MiB of cache cannot hold these (~0.6 MB of PNGs and 512 px GeoTIFFs,
    # and 256 KB per NumPy tile), and each I/O thread may keep 128 KiB of
    # prebuilt responses: a few tiles, never a NumPy one.
    paths = []
    for i in range(24):
        x, y = 170 + i % 12, 97 + i // 12  # no blank (identical) tiles among them
        paths.append(tile(9, x, y, "tif", "&tilesize=512"))
        paths.append(tile(9, x, y, "png"))
        if i % 6 == 0:
            paths.append(tile(9, x, y, "npy"))
    s = server(data_root=fixtures, args=["--threads", "2", "--cache-memory-mb", "1"])
    ref = {}
    errors = []
    lock = threading.Lock()

    def worker(i):
        keep = Conn(s.port)
        try:
            for rnd in range(2):
                for j in range(len(paths)):
                    p = paths[(j + i * len(paths) // 2) % len(paths)]
                    for _ in range(3):  # a MISS or HIT, then HITs
                        st, h, body = keep.req(p)
                        h = without(h, "X-Cache")
                        with lock:
                            want = ref.setdefault(p, (h, body))
                        if st != 200 or (h, body) != want:
                            errors.append("%s round %d: %s %r (%d bytes)" % (p, rnd, st, h, len(body)))
        except Exception as e:  # noqa: BLE001 - reported with the rest
            errors.append("worker %d: %r" % (i, e))
        finally:
            keep.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert len({b for _, b in ref.values()}) == len(paths)  # distinct tiles, distinct bytes
    stats = json.loads(once(s.port, "/cache/stats")[2])
    assert stats["evictions"] > 0 and stats["hits"] > 0, stats
