#!/usr/bin/env bash
# One command from a fresh clone: install, build, and serve the bundled sample
# data. Extra arguments go to `tessera serve` (e.g. --port 9000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/deps.sh
[[ -d build ]] || meson setup build --buildtype=release >&2
ninja -C build >&2
exec ./build/tessera serve --data-root "$root/data" "$@"
