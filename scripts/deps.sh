#!/usr/bin/env bash
# Installs what tessera needs on Debian 12 (bookworm): build tools, libraries,
# and (with --test) what the test suite needs. Skips apt entirely when every
# package is already there, so repeated runs are fast.
set -euo pipefail

BUILD_PKGS=(meson ninja-build pkg-config gcc libgdal-dev gdal-bin libproj-dev libmicrohttpd-dev
            libpng-dev libdeflate-dev zlib1g-dev libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libhiredis-dev
            libjson-c-dev libxxhash-dev libmuparser-dev ca-certificates)
# clang + libFuzzer/sanitizer runtimes + llvm-symbolizer: tests/fuzz/run.sh (CI runs it).
TEST_PKGS=(redis-server python3 python3-pytest python3-gdal python3-numpy
           clang libclang-rt-14-dev llvm-14)

pkgs=("${BUILD_PKGS[@]}")
# Node.js may come from elsewhere (e.g. NodeSource, with npm bundled): Debian's
# npm would conflict with it, so only install it when there is none.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [[ "${1:-}" == "--test" ]]; then
    pkgs+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    echo "deps: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The map viewer's JavaScript comes from the npm registry (pinned by the lock file).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -f "$root/web/package-lock.json" && ! -d "$root/web/node_modules/maplibre-gl" ]]; then
    (cd "$root/web" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
