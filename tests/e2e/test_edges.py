"""A slanted dataset edge stays continuous across tile seams (no per-tile staircase).

The sample DEM is in UTM 32N, so its south edge is slightly slanted in Web
Mercator. Each tile is warped on its own; if tiles disagreed on where the edge
is, the viewer would show a step at every seam.
"""
import numpy as np

import test_tiles_exact as ref


def alpha(srv, get, z, x, y):
    st, _, body = get("%s/tiles/WebMercatorQuad/%d/%d/%d.png?rescale=200,4500" % (srv.url, z, x, y))
    if st == 404:
        return np.zeros((256, 256), bool)
    assert st == 200, body
    a = ref.decode_png(body)
    return a[-1] > 0 if a.shape[0] in (2, 4) else np.ones(a.shape[1:], bool)


def last_valid_row(srv, get, z, xs, ys):
    m = np.concatenate([np.concatenate([alpha(srv, get, z, x, y) for x in xs], axis=1) for y in ys])
    return np.array([np.nonzero(m[:, c])[0].max() if m[:, c].any() else -1 for c in range(m.shape[1])])


def test_south_edge_is_continuous_across_seams(server, get):
    srv = server()
    # West of the lake (a nodata hole that reaches the south edge near x=2140).
    last = last_valid_row(srv, get, 12, range(2136, 2140), (1457,))
    inside = last >= 0
    assert inside.all()
    # The edge rises by one row every ~85 columns: never by more than one
    # between neighbouring columns, at seams (multiples of 256) included.
    cols = np.nonzero(inside)[0]
    for c in range(cols[0] + 1, cols[-1] + 1):
        if inside[c] and inside[c - 1]:
            assert abs(int(last[c]) - int(last[c - 1])) <= 1, (c, last[c - 1], last[c])
    steps = np.nonzero(np.diff(last[inside]))[0]
    assert len(steps) >= 3
