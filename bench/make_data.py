#!/usr/bin/python3
"""Benchmark data for bench/run: written to the folder given (bench/out/data).

* aerial.tif: 8192x8192 RGB uint8 Cloud Optimized GeoTIFF in UTM 33N
  (EPSG:32633, 0.5 m pixels, about 15.2-15.3 E / 47.8 N), 512x512 blocks,
  DEFLATE with the horizontal predictor (PREDICTOR=2), internal overviews
  (AVERAGE). The content looks like an aerial photo and compresses about as
  badly: field parcels of different crops with row texture, fBm shading,
  hedges and roads, and Gaussian sensor noise (sigma 5). DEFLATE rather than
  JPEG-in-TIFF: lossless aerial COGs (NAIP, many national orthophotos) use
  DEFLATE or LZW, and decoding it costs more CPU per tile than JPEG, which is
  the conservative choice for a MISS benchmark.
* dem.tif: 4096x4096 Float32 DEM, same CRS, 10 m pixels, DEFLATE with the
  floating-point predictor, internal overviews, nodata -9999 on a lake and
  on a ragged strip along the western edge.

Deterministic (fixed seed). Needs /usr/bin/python3 (Debian's GDAL bindings):

    /usr/bin/python3 bench/make_data.py bench/out/data
"""

import os
import sys
import time

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
SEED = 6061
EPSG = 32633
RGB_SIZE = 8192
RGB_PIXEL = 0.5
RGB_ORIGIN = (540000.0, 5296000.0)
DEM_SIZE = 4096
DEM_PIXEL = 10.0
DEM_ORIGIN = (520000.0, 5310000.0)
NODATA = -9999.0
ROWS = 1024  # rows generated per block


def lattice(rng, cells_x, cells_y):
    return rng.random((cells_y + 2, cells_x + 2), dtype=np.float32)


def value_noise(lat, cell, x0, y0, w, h):
    """Bilinear value noise of lattice `lat` (one value per `cell` pixels),
    for the window x0..x0+w, y0..y0+h, in [0, 1]."""
    xs = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5) / cell
    ys = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5) / cell
    xi = xs.astype(np.int32)
    yi = ys.astype(np.int32)
    fx = xs - xi
    fy = ys - yi
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = lat[yi][:, xi]
    b = lat[yi][:, xi + 1]
    c = lat[yi + 1][:, xi]
    d = lat[yi + 1][:, xi + 1]
    top = a + (b - a) * fx[None, :]
    bot = c + (d - c) * fx[None, :]
    return top + (bot - top) * fy[:, None]


class FBM:
    def __init__(self, rng, size, cell, octaves):
        self.octs = []
        for _ in range(octaves):
            n = int(size / cell) + 2
            self.octs.append((lattice(rng, n, n), cell))
            cell /= 2

    def __call__(self, x0, y0, w, h):
        out = np.zeros((h, w), np.float32)
        amp, norm = 1.0, 0.0
        for lat, cell in self.octs:
            out += amp * value_noise(lat, cell, x0, y0, w, h)
            norm += amp
            amp *= 0.55
        return out / norm


def make_rgb(path_tmp):
    rng = np.random.default_rng(SEED)
    n = RGB_SIZE
    # Parcels: a jittered grid of about 180-pixel cells (90 m fields).
    pc = 180
    npc = n // pc + 3
    palette = np.array([
        [92, 120, 58], [120, 142, 70], [150, 160, 88], [180, 168, 110], [139, 115, 85],
        [110, 98, 72], [70, 96, 50], [200, 190, 140], [160, 130, 95], [85, 110, 75],
    ], np.float32)
    parcel_color = palette[rng.integers(0, len(palette), (npc, npc))]
    parcel_color += rng.normal(0, 8, parcel_color.shape).astype(np.float32)
    parcel_angle = rng.uniform(0, np.pi, (npc, npc)).astype(np.float32)
    parcel_freq = rng.uniform(0.15, 0.6, (npc, npc)).astype(np.float32)
    parcel_amp = rng.uniform(2, 14, (npc, npc)).astype(np.float32)
    warp_x = FBM(rng, n, 700, 3)
    warp_y = FBM(rng, n, 700, 3)
    shade = FBM(rng, n, 1200, 6)
    detail = FBM(rng, n, 24, 3)
    road_mask_rows = rng.random(npc) < 0.25
    road_mask_cols = rng.random(npc) < 0.25

    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path_tmp, n, n, 3, gdal.GDT_Byte, ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512"])
    ds.SetGeoTransform([RGB_ORIGIN[0], RGB_PIXEL, 0, RGB_ORIGIN[1], 0, -RGB_PIXEL])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    ds.SetSpatialRef(srs)
    for y0 in range(0, n, ROWS):
        h = min(ROWS, n - y0)
        yy, xx = np.mgrid[y0:y0 + h, 0:n].astype(np.float32)
        wx = xx + (warp_x(0, y0, n, h) - 0.5) * 160
        wy = yy + (warp_y(0, y0, n, h) - 0.5) * 160
        cx = np.clip((wx / pc).astype(np.int32) + 1, 0, npc - 1)
        cy = np.clip((wy / pc).astype(np.int32) + 1, 0, npc - 1)
        col = parcel_color[cy, cx]  # h, n, 3
        ang = parcel_angle[cy, cx]
        rows = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * parcel_freq[cy, cx])
        tex = rows * parcel_amp[cy, cx] + (detail(0, y0, n, h) - 0.5) * 40
        light = 0.75 + 0.5 * shade(0, y0, n, h)
        img = col * light[..., None] + tex[..., None]
        # Hedges/roads along some parcel boundaries.
        fx = wx / pc - np.floor(wx / pc)
        fy = wy / pc - np.floor(wy / pc)
        edge_x = (np.minimum(fx, 1 - fx) * pc < 3) & road_mask_cols[cx]
        edge_y = (np.minimum(fy, 1 - fy) * pc < 3) & road_mask_rows[cy]
        road = edge_x | edge_y
        img[road] = np.array([168, 166, 160], np.float32) + (detail(0, y0, n, h)[road, None] - 0.5) * 30
        hedge = ((np.minimum(fx, 1 - fx) * pc < 6) | (np.minimum(fy, 1 - fy) * pc < 6)) & ~road
        img[hedge] = img[hedge] * 0.55
        img += rng.normal(0, 5, img.shape).astype(np.float32)
        img = np.clip(img, 0, 255).astype(np.uint8)
        for b in range(3):
            ds.GetRasterBand(b + 1).WriteArray(img[..., b], 0, y0)
    for b, ci in enumerate((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)):
        ds.GetRasterBand(b + 1).SetColorInterpretation(ci)
    ds = None


def make_dem(path_tmp):
    rng = np.random.default_rng(SEED + 1)
    n = DEM_SIZE
    relief = FBM(rng, n, 1024, 8)
    ridge = FBM(rng, n, 300, 5)
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path_tmp, n, n, 1, gdal.GDT_Float32, ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512"])
    ds.SetGeoTransform([DEM_ORIGIN[0], DEM_PIXEL, 0, DEM_ORIGIN[1], 0, -DEM_PIXEL])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    ds.SetSpatialRef(srs)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(NODATA)
    edge = FBM(rng, n, 256, 4)
    for y0 in range(0, n, ROWS):
        h = min(ROWS, n - y0)
        yy, xx = np.mgrid[y0:y0 + h, 0:n].astype(np.float32)
        r = relief(0, y0, n, h)
        rd = 1 - np.abs(ridge(0, y0, n, h) * 2 - 1)
        z = 300 + 3200 * r ** 1.6 + 900 * rd ** 3 * r
        z = np.round(z * 4) / 4  # 0.25 m steps, like a real product
        lake = (xx - 2900) ** 2 / 500 ** 2 + (yy - 3000) ** 2 / 300 ** 2 < 1
        strip = xx < 60 + edge(0, y0, n, h) * 260
        z[lake | strip] = NODATA
        band.WriteArray(z.astype(np.float32), 0, y0)
    ds = None


def to_cog(src, dst, predictor):
    gdal.Translate(dst, src, format="COG", creationOptions=[
        "COMPRESS=DEFLATE", "PREDICTOR=%d" % predictor, "BLOCKSIZE=512",
        "OVERVIEW_RESAMPLING=AVERAGE", "NUM_THREADS=ALL_CPUS", "BIGTIFF=NO"])
    os.unlink(src)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bench/out/data"
    os.makedirs(out, exist_ok=True)
    t = time.time()
    if not os.path.exists(os.path.join(out, "aerial.tif")):
        tmp = os.path.join(out, "aerial.tmp.tif")
        make_rgb(tmp)
        to_cog(tmp, os.path.join(out, "aerial.tif"), 2)
        print("aerial.tif: %.1f s" % (time.time() - t), flush=True)
    t = time.time()
    if not os.path.exists(os.path.join(out, "dem.tif")):
        tmp = os.path.join(out, "dem.tmp.tif")
        make_dem(tmp)
        to_cog(tmp, os.path.join(out, "dem.tif"), 3)
        print("dem.tif: %.1f s" % (time.time() - t), flush=True)


if __name__ == "__main__":
    main()
