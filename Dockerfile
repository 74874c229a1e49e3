# tessera: raster tile server for Cloud-Optimized GeoTIFFs.
#
#   docker build -t tessera .
#   docker run -p 8080:8080 -v /path/to/cogs:/data tessera
#   open http://localhost:8080/map            (without -v: the bundled sample DEM)
#
# Two stages: the build stage has compilers, -dev packages and npm; the
# runtime stage has only the shared libraries, the binary and the assets.
# See docs/docker.md.

ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------- build ----
FROM debian:${DEBIAN_RELEASE}-slim AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc meson ninja-build pkg-config \
      libgdal-dev libproj-dev libmicrohttpd-dev libpng-dev libdeflate-dev zlib1g-dev \
      libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libhiredis-dev libjson-c-dev \
      libxxhash-dev libmuparser-dev nodejs npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The viewer's npm packages first, pinned by the lock file: this layer is
# reused as long as web/package*.json do not change.
COPY web/package.json web/package-lock.json web/
RUN npm ci --prefix web --no-audit --no-fund --loglevel=error

# The rest of the tree (.dockerignore keeps build dirs and node_modules out).
COPY . .

# Only the server is built; the test helpers under tests/ are configured but
# not compiled. /out mirrors the runtime image's file system. Of the npm
# packages only the files /static serves are kept (their dist/ folders also
# hold ~40 MB of source maps and dev builds), plus their licences.
ARG WEB=/out/usr/share/tessera/web
RUN meson setup build --buildtype=release -Dprefix=/usr \
 && ninja -C build tessera \
 && install -D -m 0755 build/tessera /out/usr/bin/tessera \
 && mkdir -p /out/usr/share/tessera /out/data \
 && cp -r tms /out/usr/share/tessera/tms \
 && install -D -m 0644 -t $WEB web/map.html web/leaflet.html \
 && nm=web/node_modules \
 && install -D -m 0644 -t $WEB/node_modules/maplibre-gl/dist \
      $nm/maplibre-gl/dist/maplibre-gl.js $nm/maplibre-gl/dist/maplibre-gl.css \
 && install -D -m 0644 -t $WEB/node_modules/maplibre-gl $nm/maplibre-gl/LICENSE.txt \
 && install -D -m 0644 -t $WEB/node_modules/leaflet/dist \
      $nm/leaflet/dist/leaflet.js $nm/leaflet/dist/leaflet.css \
 && install -D -m 0644 -t $WEB/node_modules/leaflet/dist/images $nm/leaflet/dist/images/*.png \
 && install -D -m 0644 -t $WEB/node_modules/leaflet $nm/leaflet/LICENSE \
 && install -D -m 0644 -t /out/data data/sample_dem.tif \
 && /out/usr/bin/tessera --version

# -------------------------------------------------------------- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim

# Runtime libraries only (libgdal32 pulls in PROJ, gdal-data and proj-data).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl \
      libgdal32 libmicrohttpd12 libpng16-16 libdeflate0 zlib1g libturbojpeg0 libwebp7 \
      libhiredis0.14 libjson-c5 libxxhash0 libmuparser2v5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tessera

COPY --from=build /out/ /

ENV TESSERA_TMS_DIR=/usr/share/tessera/tms \
    TESSERA_WEB_DIR=/usr/share/tessera/web \
    TESSERA_DATA_ROOT=/data \
    TESSERA_HOST=0.0.0.0 \
    TESSERA_PORT=8080

# The sample DEM lives in the image's /data: a run without -v seeds the
# anonymous volume with it; `-v /path/to/cogs:/data` serves that folder instead.
VOLUME /data
# The working directory is where an optional .env is read from (mount one at
# /usr/share/tessera/.env, or set TESSERA_ENV_FILE); not /data, so a .env in
# the served folder is never picked up by accident.
WORKDIR /usr/share/tessera
USER tessera
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${TESSERA_PORT:-8080}/healthz" || exit 1

# Arguments after the image name go to `tessera serve`, e.g. `--cache-endpoint redis://redis:6379/0`.
ENTRYPOINT ["/usr/bin/tessera", "serve"]
