#!/usr/bin/env bash
# Runs the (non-ASan) server under valgrind's memcheck, sends ~25 varied requests
# (tiles in every format, expression, colormaps, algorithm, colour formula,
# resampling, documents, errors), SIGTERMs it and fails on any invalid read or
# write, use of uninitialised values or bad free. Leaks are LSan's job (the ASan
# CI run), so they are not errors here. Third-party noise is suppressed in
# tests/valgrind.supp (only frames outside tessera's own code).
#
#   bash tests/valgrind.sh [path/to/tessera]      # default: build/tessera
# Exit: 0 clean, 1 errors or wrong answers, 77 skipped (no valgrind, or an ASan binary).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-${TESSERA_BIN:-$root/build/tessera}}"
fixtures="$root/../shared/fixtures"

command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
if ldd "$bin" 2>/dev/null | grep -q libasan; then
    echo "$bin is an ASan build (valgrind cannot run it): skipped"
    exit 77
fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
log="$work/valgrind.log"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
TESSERA_ENV_FILE=/nonexistent valgrind --error-exitcode=99 --errors-for-leak-kinds=none --leak-check=no \
    --track-origins=no --suppressions="$root/tests/valgrind.supp" --log-file="$log" \
    "$bin" serve --host 127.0.0.1 --port "$port" --data-root "$fixtures" --threads 2 \
    --no-access-log >"$work/server.out" 2>&1 &
pid=$!

base="http://127.0.0.1:$port"
for _ in $(seq 600); do
    curl -fs -o /dev/null "$base/healthz" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done

fail=0
check() { # expected-status path
    local got
    got=$(curl -s -o "$work/body" -w '%{http_code}' --max-time 120 "$base$2")
    if [[ "$got" != "$1" ]]; then
        echo "FAIL $2: $got, expected $1: $(head -c 200 "$work/body")"
        fail=1
    fi
}
t=/tiles/WebMercatorQuad
check 200 "/healthz"
check 200 "$t/9/175/98.png?url=cog.tif"
check 200 "$t/9/175/98.png?url=cog.tif"                                   # HIT
check 200 "$t/9/176/98.jpeg?url=cog.tif&rescale=0,2000"
check 200 "$t/9/176/98.webp?url=cog.tif&rescale=0,2000"
check 200 "$t/7/44/25.tif?url=cog.tif"
check 200 "$t/7/44/25.npy?url=cog.tif"
check 200 "$t/9/175/98@2x.pngraw?url=cog.tif&rescale=0,3000&colormap_name=terrain"
check 200 "$t/20/219108/400918.png?url=cog_rgb.tif&expression=(b1-b2)/(b1%2Bb2)&rescale=-1,1&colormap_name=rdylgn"
check 200 "$t/10/579/416.png?url=titiler_TCI.tif&bidx=1&colormap=%7B%220%22:%5B0,0,0,0%5D,%22255%22:%5B255,0,0,255%5D%7D"
check 200 "$t/10/579/416.png?url=titiler_TCI.tif&color_formula=gamma%20RGB%201.5%20sigmoidal%20RGB%2010%200.3"
check 200 "$t/9/175/98.png?url=cog.tif&algorithm=hillshade&algorithm_params=%7B%22azimuth%22:315%7D&buffer=2"
check 200 "$t/9/175/98.png?url=cog.tif&algorithm=terrainrgb"
check 200 "$t/7/72/51.png?url=titiler_TCI.tif&resampling=average&reproject=bilinear"
check 200 "$t/12/1144/1553.png?url=cog_cmap.tif"
check 200 "/WorldCRS84Quad/tilejson.json?url=cog.tif"
check 200 "/info?url=cog_gcps.tif"
check 200 "/info.geojson?url=cog.tif"
check 200 "/tileMatrixSets/WebMercatorQuad"
check 200 "/cache/stats"
check 200 "/metrics"
check 400 "$t/9/175/98.png?url=cog.tif&rescale=abc"
check 400 "$t/9/175/98.png?url=cog.tif&expression=b1%2B%2B"
check 404 "$t/9/0/0.png?url=cog.tif"
check 404 "$t/9/175/98.png?url=../../etc/passwd"
check 422 "/tiles/NoSuchTMS/9/175/98.png?url=cog.tif"
check 422 "$t/5/11/6.png?url=cog_nonearth.tif"

kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
echo "valgrind run: $(( $(date +%s) - start ))s, server exit code $rc"
if [[ $rc -ne 0 ]]; then
    grep -E -A25 "Invalid|uninitialised|Mismatched|Conditional|Syscall param|free\(\)" "$log" | head -120
    [[ $rc -eq 99 ]] && echo "valgrind reported errors (log above)" || echo "server exited with $rc"
    tail -20 "$log"
    fail=1
fi
grep -E "ERROR SUMMARY" "$log" | tail -1
if [[ $fail -ne 0 ]]; then
    echo "0 passed, 1 failed"
    exit 1
fi
echo "1 passed, 0 failed"
