"""Tile bounds of every built-in TileMatrixSet, checked against an independent
computation.

tessera's geometry (src/tms.c, queried through tests/tools/tms_tool) is
compared with bounds computed here straight from the JSON documents. The
axis order is deliberately taken from GDAL's description of the CRS (the
name of its first axis), not from the documents' orderedAxes, so a document
whose orderedAxes disagreed with its CRS would show up as a failure rather
than be trusted on both sides.

Environment: TS_SOURCE_ROOT (repository root) and TESSERA_BIN (the server
binary; the tool sits at tests/tools/tms_tool next to it).
"""

import glob
import json
import math
import os
import subprocess

import pytest
from osgeo import osr

osr.UseExceptions()

ROOT = os.environ.get("TS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
TMS_DIR = os.path.join(ROOT, "tms")
BIN = os.environ.get("TESSERA_BIN", os.path.join(ROOT, "build", "tessera"))
TOOL = os.path.join(os.path.dirname(BIN), "tests", "tools", "tms_tool")

EXPECTED_IDS = sorted([
    "WebMercatorQuad", "WorldCRS84Quad", "WGS1984Quad", "WorldMercatorWGS84Quad",
    "EuropeanETRS89_LAEAQuad", "CanadianNAD83_LCC", "NZTM2000Quad", "UTM31WGS84Quad",
    "UPSArcticWGS84Quad", "UPSAntarcticWGS84Quad", "LINZAntarticaMapTilegrid",
    "CDB1GlobalGrid", "GNOSISGlobalGrid",
])


def load_docs():
    docs = {}
    for path in sorted(glob.glob(os.path.join(TMS_DIR, "*.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        docs[doc["id"]] = doc
    return docs


DOCS = load_docs()


def tool_lines(*args):
    p = subprocess.run([TOOL, TMS_DIR, *map(str, args)], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines() if line.strip()], \
        p.stderr


def tool(*args):
    rc, out, err = tool_lines(*args)
    return rc, (out[0] if out else None), err


def crs_string(doc):
    crs = doc["crs"]
    if isinstance(crs, dict):
        return crs.get("uri") or (crs["wkt"] if isinstance(crs["wkt"], str)
                                  else json.dumps(crs["wkt"]))
    return crs


def srs_from(text):
    srs = osr.SpatialReference()
    srs.SetFromUserInput(text)
    return srs


def gdal_axis_inverted(doc):
    """True when GDAL says the CRS's first axis is a northing or latitude."""
    srs = srs_from(crs_string(doc))
    name = (srs.GetAxisName(None, 0) or "").lower()
    return name.startswith("north") or "latitude" in name or name in ("y", "n", "lat")


def identity(srs):
    """(authority, code) of a CRS, asking GDAL to match one when the object
    carries none (GDAL 3.6 drops the OGC:CRS84 identifier on import)."""
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    if name and code:
        return name.upper(), code
    matches = [m for m in srs.FindMatches() if m[1] >= 70]
    if matches:
        m = matches[0][0]
        return m.GetAuthorityName(None).upper(), m.GetAuthorityCode(None)
    return None


def sorted_matrices(doc):
    return sorted(doc["tileMatrices"], key=lambda m: int(m["id"]))


def coalesce(matrix, row):
    for v in matrix.get("variableMatrixWidths") or []:
        if v["minTileRow"] <= row <= v["maxTileRow"]:
            return v["coalesce"]
    return 1


def expected_bounds(doc, matrix, x, y):
    inverted = gdal_axis_inverted(doc)
    a, b = matrix["pointOfOrigin"]
    ox, oy = (b, a) if inverted else (a, b)
    tw = matrix["cellSize"] * matrix["tileWidth"]
    th = matrix["cellSize"] * matrix["tileHeight"]
    cf = coalesce(matrix, y)
    first = (x // cf) * cf
    minx = ox + first * tw
    maxx = ox + (first + cf) * tw
    if matrix.get("cornerOfOrigin", "topLeft") == "bottomLeft":
        miny, maxy = oy + y * th, oy + (y + 1) * th
    else:
        miny, maxy = oy - (y + 1) * th, oy - y * th
    return {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy}


def sample_tiles(matrix):
    """Corners, the middle, and tiles inside coalesced rows (off the start of
    their group, so the snap to floor(x / cf) * cf is exercised)."""
    w, h = matrix["matrixWidth"], matrix["matrixHeight"]
    tiles = {(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2, h // 2)}
    for v in matrix.get("variableMatrixWidths") or []:
        cf = v["coalesce"]
        for row in (v["minTileRow"], v["maxTileRow"]):
            tiles.add((min(w - 1, cf + 1), row))
            tiles.add((min(w - 1, w // 2 + cf // 2), row))
    return sorted(tiles)


def pick_matrices(doc):
    ms = sorted_matrices(doc)
    picked = [ms[0], ms[len(ms) // 2], ms[-1]]
    # A shallow coalesced matrix as well: the deep ones' groups are huge.
    for m in ms:
        if m.get("variableMatrixWidths") and m not in picked:
            picked.append(m)
            break
    return picked


def close(a, b, scale):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


def test_all_thirteen_sets_are_shipped():
    assert sorted(DOCS) == EXPECTED_IDS
    rc, ids, err = tool()
    assert rc == 0, err
    assert ids == EXPECTED_IDS


@pytest.mark.parametrize("tms_id", EXPECTED_IDS)
def test_tile_bounds(tms_id):
    doc = DOCS[tms_id]
    cases = [(m, x, y) for m in pick_matrices(doc) for x, y in sample_tiles(m)]
    args = [v for m, x, y in cases for v in (m["id"], x, y)]
    rc, results, err = tool_lines(tms_id, *args)
    assert rc == 0, err or results
    assert len(results) == len(cases)
    for (matrix, x, y), got in zip(cases, results):
        scale = matrix["cellSize"] * max(matrix["tileWidth"], matrix["tileHeight"]) * max(
            matrix["matrixWidth"], matrix["matrixHeight"])
        want = expected_bounds(doc, matrix, x, y)
        for k in ("minx", "miny", "maxx", "maxy"):
            assert close(got[k], want[k], scale), (
                f"{tms_id} {matrix['id']}/{x}/{y} {k}: tessera {got[k]!r}, expected {want[k]!r}")
        assert got["minx"] < got["maxx"] and got["miny"] < got["maxy"]
    assert len(cases) >= 9


@pytest.mark.parametrize("tms_id", EXPECTED_IDS)
def test_out_of_range_tiles_are_404(tms_id):
    ms = sorted_matrices(DOCS[tms_id])
    m = ms[0]
    w, h = m["matrixWidth"], m["matrixHeight"]
    bad = [(m["id"], w, 0), (m["id"], 0, h), (m["id"], -1, 0), (m["id"], 0, -1),
           (int(ms[-1]["id"]) + 1, 0, 0), (int(ms[0]["id"]) - 1, 0, 0)]
    rc, results, _ = tool_lines(tms_id, *[v for t in bad for v in t])
    assert rc == 1 and len(results) == len(bad)
    for t, got in zip(bad, results):
        assert got["status"] == 404 and got["detail"], (tms_id, t, got)


@pytest.mark.parametrize("tms_id", EXPECTED_IDS)
def test_crs_input_resolves_to_the_document_crs(tms_id):
    doc = DOCS[tms_id]
    rc, got, err = tool(tms_id, sorted_matrices(doc)[0]["id"], 0, 0)
    assert rc == 0, err
    ours, theirs = srs_from(got["crs"]), srs_from(crs_string(doc))
    assert identity(theirs) is not None
    assert identity(ours) == identity(theirs), (got["crs"], crs_string(doc))
    # Same definition, not only the same label.
    assert ours.IsSame(theirs)


@pytest.mark.parametrize("tms_id", EXPECTED_IDS)
def test_matrix_listing_matches_document(tms_id):
    doc = DOCS[tms_id]
    rc, got, err = tool(tms_id)
    assert rc == 0, err
    ms = sorted_matrices(doc)
    assert [m["id"] for m in got["tileMatrices"]] == [m["id"] for m in ms]
    assert got["minzoom"] == int(ms[0]["id"]) and got["maxzoom"] == int(ms[-1]["id"])
    inverted = gdal_axis_inverted(doc)
    for mine, m in zip(got["tileMatrices"], ms):
        a, b = m["pointOfOrigin"]
        assert (mine["originX"], mine["originY"]) == ((b, a) if inverted else (a, b))
        assert mine["matrixWidth"] == m["matrixWidth"]
        assert len(mine["variableMatrixWidths"]) == len(m.get("variableMatrixWidths") or [])


@pytest.mark.parametrize("tms_id", EXPECTED_IDS)
def test_ordered_axes_agree_with_gdal(tms_id):
    """The documents' orderedAxes (what tessera reads first) must tell the
    same story as the CRS definition (what this test computes with)."""
    doc = DOCS[tms_id]
    axes = doc.get("orderedAxes")
    if not axes:
        pytest.skip("no orderedAxes")
    assert (axes[0].upper() in ("Y", "LAT", "N")) == gdal_axis_inverted(doc)
