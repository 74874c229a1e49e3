#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: installs what it needs, starts
# a Redis on a free loopback port, builds, runs unit and end-to-end tests, and
# prints "N passed, N failed" last.
#
#   BUILD_DIR=build-asan MESON_ARGS="-Db_sanitize=address,undefined" scripts/test.sh
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
BUILD_DIR="${BUILD_DIR:-build}"
MESON_ARGS="${MESON_ARGS:-}"

bash scripts/deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }

# A Redis of our own on a free port, for the tests that need a real one.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis_dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$redis_dir" \
    --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
cleanup() {
    [[ -f "$redis_dir/redis.pid" ]] && kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null
    rm -rf "$redis_dir"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export TESSERA_TEST_REDIS_URL="redis://127.0.0.1:$port/0"

if [[ ! -d "$BUILD_DIR" ]]; then
    # shellcheck disable=SC2086
    meson setup "$BUILD_DIR" $MESON_ARGS >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD_DIR" >"$BUILD_DIR/build.log" 2>&1; then
    tail -40 "$BUILD_DIR/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

meson test -C "$BUILD_DIR" --print-errorlogs --no-rebuild
status=$?

# Sum the per-test counts from the log: our C runner prints "N passed, N failed",
# pytest prints "N passed, M failed ... in Xs". A test program that died
# without a summary counts as one failure.
/usr/bin/python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    p = f = 0
    found = False
    for m in re.finditer(r"^(\d+) passed, (\d+) failed$", out, re.M):
        p, f, found = int(m.group(1)), int(m.group(2)), True
    if not found:
        tail = out.strip().splitlines()[-1:] or [""]
        mp = re.search(r"(\d+) passed", tail[0]); mf = re.search(r"(\d+) failed", tail[0])
        me = re.search(r"(\d+) errors?", tail[0])
        if mp or mf or me:
            found = True
            p = int(mp.group(1)) if mp else 0
            f = (int(mf.group(1)) if mf else 0) + (int(me.group(1)) if me else 0)
    if t.get("result") not in ("OK", "EXPECTEDFAIL") and f == 0:
        f = 1  # crashed, timed out, or failed without a count
    passed += p; failed += f
print(f"{passed} passed, {failed} failed")
PY
exit $status
