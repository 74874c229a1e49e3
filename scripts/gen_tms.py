#!/usr/bin/python3
"""Generate tms/*.json from reference OGC TileMatrixSet 2.0 documents.

Usage: /usr/bin/python3 scripts/gen_tms.py [SOURCE_DIR] [--out DIR] [--check]

SOURCE_DIR defaults to ../shared/reference/tms relative to the repository
root. Every document is validated with the same rules src/tms.c enforces at
start-up, so a broken definition fails here, at generation time, rather than
when the server boots. The output is normalised (2-space indent, key order
kept, one trailing newline) so regenerating produces no diff unless the
definitions really changed. --check compares instead of writing and exits 1 on
any difference, which is what CI wants.
"""

import argparse
import json
import math
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The 13 sets the server ships; a missing one is an error because the API
# documentation promises them.
EXPECTED = [
    "CDB1GlobalGrid",
    "CanadianNAD83_LCC",
    "EuropeanETRS89_LAEAQuad",
    "GNOSISGlobalGrid",
    "LINZAntarticaMapTilegrid",
    "NZTM2000Quad",
    "UPSAntarcticWGS84Quad",
    "UPSArcticWGS84Quad",
    "UTM31WGS84Quad",
    "WGS1984Quad",
    "WebMercatorQuad",
    "WorldCRS84Quad",
    "WorldMercatorWGS84Quad",
]

ID_RE = re.compile(r"^[\w\-]+$")
MATRIX_ID_RE = re.compile(r"^-?[0-9]+$")


class Invalid(Exception):
    pass


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v):
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and v.is_integer()
    )


def check_point(v, what):
    if not (isinstance(v, list) and len(v) == 2 and all(is_number(c) for c in v)):
        raise Invalid(f"{what} must be an array of 2 finite numbers")


def check_crs(crs, what):
    if isinstance(crs, str):
        if not crs:
            raise Invalid(f"{what} is empty")
        return
    if isinstance(crs, dict):
        if isinstance(crs.get("uri"), str) and crs["uri"]:
            return
        if isinstance(crs.get("wkt"), (str, dict)) and crs["wkt"]:
            return
        raise Invalid(f"{what} object needs a non-empty 'uri' or 'wkt'")
    raise Invalid(f"{what} must be a string or an object with 'uri' or 'wkt'")


def check_matrix(m, i):
    where = f"tileMatrices[{i}]"
    if not isinstance(m, dict):
        raise Invalid(f"{where} is not an object")
    for key in ("id", "scaleDenominator", "cellSize", "pointOfOrigin", "tileWidth",
                "tileHeight", "matrixWidth", "matrixHeight"):
        if key not in m:
            raise Invalid(f"{where}: missing '{key}'")
    if "topLeftCorner" in m:
        raise Invalid(f"{where}: 'topLeftCorner' is TMS 1.0; use pointOfOrigin (TMS 2.0)")
    if not isinstance(m["id"], str) or not MATRIX_ID_RE.match(m["id"]):
        raise Invalid(f"{where}: id must be an integer string, got {m['id']!r}")
    where = f"tileMatrix '{m['id']}'"
    for key in ("scaleDenominator", "cellSize"):
        if not is_number(m[key]) or m[key] <= 0:
            raise Invalid(f"{where}: {key} must be a positive number")
    for key in ("tileWidth", "tileHeight", "matrixWidth", "matrixHeight"):
        if not is_int(m[key]) or m[key] < 1:
            raise Invalid(f"{where}: {key} must be an integer >= 1")
    check_point(m["pointOfOrigin"], f"{where}: pointOfOrigin")
    if m.get("cornerOfOrigin", "topLeft") not in ("topLeft", "bottomLeft"):
        raise Invalid(f"{where}: cornerOfOrigin must be topLeft or bottomLeft")
    vmw = m.get("variableMatrixWidths")
    if vmw is not None:
        if not isinstance(vmw, list):
            raise Invalid(f"{where}: variableMatrixWidths must be an array")
        ranges = []
        for j, v in enumerate(vmw):
            w = f"{where}: variableMatrixWidths[{j}]"
            if not isinstance(v, dict):
                raise Invalid(f"{w} is not an object")
            for key in ("coalesce", "minTileRow", "maxTileRow"):
                if not is_int(v.get(key)):
                    raise Invalid(f"{w}: '{key}' must be an integer")
            if v["coalesce"] < 2:
                raise Invalid(f"{w}: coalesce must be >= 2")
            if not 0 <= v["minTileRow"] <= v["maxTileRow"] < m["matrixHeight"]:
                raise Invalid(f"{w}: rows must satisfy 0 <= minTileRow <= maxTileRow < matrixHeight")
            ranges.append((v["minTileRow"], v["maxTileRow"]))
        ranges.sort()
        for a, b in zip(ranges, ranges[1:]):
            if b[0] <= a[1]:
                raise Invalid(f"{where}: variableMatrixWidths rows {a} and {b} overlap")


def validate(doc):
    """Raise Invalid with a precise message when doc is not a usable TMS 2.0."""
    if not isinstance(doc, dict):
        raise Invalid("document is not a JSON object")
    if "supportedCRS" in doc:
        raise Invalid("'supportedCRS' is TMS 1.0; this server reads TMS 2.0 documents")
    for key in ("id", "crs", "tileMatrices"):
        if key not in doc:
            raise Invalid(f"missing '{key}'")
    if not isinstance(doc["id"], str) or not ID_RE.match(doc["id"]):
        raise Invalid(f"id must match [A-Za-z0-9_-]+, got {doc['id']!r}")
    for key in ("title", "uri", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise Invalid(f"'{key}' must be a string")
    check_crs(doc["crs"], "crs")
    axes = doc.get("orderedAxes")
    if axes is not None and not (
        isinstance(axes, list) and len(axes) == 2 and all(isinstance(a, str) and a for a in axes)
    ):
        raise Invalid("orderedAxes must be an array of 2 non-empty strings")
    bbox = doc.get("boundingBox")
    if bbox is not None:
        if not isinstance(bbox, dict):
            raise Invalid("boundingBox must be an object")
        check_point(bbox.get("lowerLeft"), "boundingBox.lowerLeft")
        check_point(bbox.get("upperRight"), "boundingBox.upperRight")
    tms = doc["tileMatrices"]
    if not isinstance(tms, list) or not tms:
        raise Invalid("tileMatrices must be a non-empty array")
    for i, m in enumerate(tms):
        check_matrix(m, i)
    ids = [int(m["id"]) for m in tms]
    if len(set(ids)) != len(ids):
        raise Invalid("tileMatrices ids are not unique")
    # Zoom order is id order (morecantile sorts by int(id)); finer zooms must
    # have strictly smaller cells or zoom_for_res has no answer.
    ordered = sorted(tms, key=lambda m: int(m["id"]))
    for a, b in zip(ordered, ordered[1:]):
        if not b["cellSize"] < a["cellSize"]:
            raise Invalid(
                f"cellSize must decrease with the matrix id: '{a['id']}' has {a['cellSize']}, "
                f"'{b['id']}' has {b['cellSize']}"
            )
        if not b["scaleDenominator"] < a["scaleDenominator"]:
            raise Invalid(
                f"scaleDenominator must decrease with the matrix id: '{a['id']}' then '{b['id']}'"
            )


def normalise(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?",
                    default=os.path.join(REPO, "..", "shared", "reference", "tms"),
                    help="folder of reference TMS 2.0 JSON documents")
    ap.add_argument("--out", default=os.path.join(REPO, "tms"), help="output folder")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 when the output folder is not up to date")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.source):
        print(f"gen_tms: source folder {args.source} does not exist", file=sys.stderr)
        return 2
    names = sorted(n for n in os.listdir(args.source) if n.endswith(".json"))
    outputs = {}
    errors = 0
    for name in names:
        path = os.path.join(args.source, name)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            validate(doc)
            if doc["id"] + ".json" != name:
                raise Invalid(f"file name does not match id '{doc['id']}'")
        except (ValueError, Invalid) as e:
            print(f"gen_tms: {path}: {e}", file=sys.stderr)
            errors += 1
            continue
        outputs[name] = normalise(doc)
    missing = [i for i in EXPECTED if i + ".json" not in outputs]
    if missing and not errors:
        print(f"gen_tms: missing TileMatrixSets: {', '.join(missing)}", file=sys.stderr)
        errors += 1
    if errors:
        return 1

    stale = []
    for name, text in outputs.items():
        dest = os.path.join(args.out, name)
        try:
            with open(dest, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(name)
            if not args.check:
                os.makedirs(args.out, exist_ok=True)
                tmp = dest + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, dest)
    if args.check:
        if stale:
            print(f"gen_tms: out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"gen_tms: {len(outputs)} TileMatrixSets up to date")
        return 0
    print(f"gen_tms: {len(outputs)} TileMatrixSets validated, {len(stale)} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
