#!/usr/bin/env bash
# Uncached (MISS) and cached (HIT, memory) tile throughput of the sample
# dataset with all cores busy, driven by wrk over a list of distinct tiles.
#   bash bench/tiles.sh [duration_s]      (prints a table and bench/out/tiles.json)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dur="${1:-10}"
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
[[ -d build-release ]] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release tessera >/dev/null
mkdir -p bench/out
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Every tile of the sample DEM at its native zoom (and one above), from its TileJSON.
start() { ./build-release/tessera serve --port "$port" --host 127.0.0.1 --no-access-log --data-root data "$@" >/dev/null 2>&1 & pid=$!; for _ in $(seq 100); do curl -sf "localhost:$port/healthz" >/dev/null && return; sleep 0.05; done; }
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

run() { # name, query, cache endpoint
    start --cache-endpoint "$3"
    /usr/bin/python3 - "$port" "$2" > bench/out/urls.txt <<'PY'
import json, math, sys, urllib.request
port, q = sys.argv[1], sys.argv[2]
tj = json.load(urllib.request.urlopen("http://127.0.0.1:%s/tilejson.json" % port))
w, s, e, n = tj["bounds"]
def tile(lon, lat, z):
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    return x, y
for z in (tj["maxzoom"], tj["maxzoom"] - 1):
    x0, y0 = tile(w, n, z); x1, y1 = tile(e, s, z)
    for x in range(x0 + 1, x1):
        for y in range(y0 + 1, y1):
            print("/tiles/WebMercatorQuad/%d/%d/%d%s" % (z, x, y, q))
PY
    n=$(wc -l < bench/out/urls.txt)
    if [[ "$1" == hit* ]]; then  # pre-warm
        while read -r u; do curl -s -o /dev/null "localhost:$port$u"; done < bench/out/urls.txt
    fi
    cat > bench/out/urls.lua <<'LUA'
local urls, i = {}, 0
for line in io.lines("bench/out/urls.txt") do urls[#urls + 1] = line end
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
LUA
    out=$(wrk -t2 -c"$4" -d"${dur}s" --latency -s bench/out/urls.lua "http://127.0.0.1:$port" 2>&1)
    stop
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs=${errs:-0}
    printf '| %-22s | %6d | %10s | %8s | %8s | %6s |\n' "$1" "$n" "$rps" "$p50" "$p99" "$errs"
    echo "{\"scenario\":\"$1\",\"urls\":$n,\"rps\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"non2xx\":$errs}" >> bench/out/tiles.jsonl
}

rm -f bench/out/tiles.jsonl
echo "| scenario               |  tiles |      req/s |      p50 |      p99 | non2xx |"
echo "|------------------------|--------|------------|----------|----------|--------|"
# Distinct tiles with the cache off: each request is a full read+warp+render+encode.
run miss-png ".png?rescale=200,4500&colormap_name=terrain" none 4
run miss-jpeg-grey ".jpg?rescale=200,4500" none 4
run hit-memory ".png?rescale=200,4500&colormap_name=terrain" memory:// 32
echo "json: bench/out/tiles.jsonl"
