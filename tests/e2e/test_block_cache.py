"""The decoded-block store shared by all worker threads (src/blockcache.c):
a block is inflated once for the whole server, whichever thread asks, and
tiles read through it equal the direct read."""
import io

import numpy as np
from PIL import Image

from test_cache_http import concurrently, metrics

TILE = "/tiles/WebMercatorQuad/9/175/98.png?url=cog.tif"
NOCACHE = {"Cache-Control": "no-cache"}  # skip the response cache: render every time


def block_counts(s, get):
    m = metrics(s, get)
    return (m['tessera_block_cache_requests_total{outcome="hit"}'],
            m['tessera_block_cache_requests_total{outcome="miss"}'])


def test_blocks_are_decoded_once_for_all_threads(server, get, fixtures):
    s = server(data_root=fixtures, args=["--threads", "4"])
    st, h, first = get(s.url + TILE, headers=NOCACHE)
    assert st == 200
    hits0, misses0 = block_counts(s, get)
    assert misses0 >= 1, "the first render decodes its blocks"
    res = concurrently(12, lambda i: get(s.url + TILE, headers=NOCACHE))
    assert all(r[0] == 200 and r[1]["X-Cache"] == "BYPASS" for r in res)
    hits1, misses1 = block_counts(s, get)
    assert misses1 == misses0, "another worker decoded a block again"
    assert hits1 - hits0 >= 12 * misses0
    # Same pixels from shared blocks as from the first, decoding, render.
    a = np.asarray(Image.open(io.BytesIO(first)))
    for st, h, body in res:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), a)


def test_budget_bounds_the_store(server, get, fixtures):
    # 8 MiB against a 14 MB raster read tile by tile at its native zoom:
    # the store evicts instead of growing, and every tile still renders.
    s = server(data_root=fixtures, args=["--gdal-cache-mb", "8"])
    codes = [get(s.url + "/tiles/WebMercatorQuad/9/%d/%d.png?url=cog.tif" % (x, y))[0]
             for x in range(170, 183) for y in range(92, 105)]
    assert set(codes) <= {200, 404} and codes.count(200) >= 50
    m = metrics(s, get)
    assert m["tessera_block_cache_evictions_total"] > 0
    assert 0 < m["tessera_block_cache_bytes"] <= 8 * 1024 * 1024
