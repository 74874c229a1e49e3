#!/usr/bin/python3
"""Generate data/sample_dem.tif, the synthetic terrain the viewer shows out of the box.

The DEM is made up, but shaped like an Alpine landscape so that rescaling,
colormaps and hillshade-style expressions look plausible:

* multi-octave gradient (Perlin) noise, domain-warped, for the general relief;
* ridged noise for sharp crests, stronger where the relief is high;
* a main glacial valley (U-shaped, meandering, west to east) with tributaries;
* a lowland basin in the south-east holding a lake whose surface is nodata.

It is written as a Cloud Optimized GeoTIFF: Float32 metres, UTM zone 32N
(EPSG:32632, deliberately not Web Mercator so every tile request is a real
warp), 1800x1800 pixels of 30 m, 512x512 tiles, DEFLATE with the floating-point predictor,
internal overviews, nodata -9999 and band statistics in the GDAL metadata.

The output is deterministic: a fixed seed, no timestamps. Run it with the
system interpreter, which has Debian's GDAL bindings:

    /usr/bin/python3 scripts/make_sample_data.py [output.tif]
"""

import os
import sys

import numpy as np
from osgeo import gdal, osr

SEED = 20240611
WIDTH = HEIGHT = 1800
PIXEL = 30.0  # metres
# 1800 x 30 m = 54 km. A 2000-pixel square would not fit the 3 MB budget of a
# committed sample with realistic Alpine slopes (see QUANTUM).
# Upper-left corner in UTM 32N; the square spans about 7.61-8.31 E, 45.98-46.47 N.
ORIGIN_X = 393000.0
ORIGIN_Y = 5147000.0
EPSG = 32632
NODATA = -9999.0
# Elevations are rounded to 2 m (a power of two, so exactly representable).
# That keeps the low mantissa bits zero, and the floating-point predictor +
# DEFLATE then compress the Float32 data to well under half; unrounded floats
# or 1 m steps make the file 1.5-2x larger. 2 m steps are below what a 30 m
# hillshade shows except on the flattest valley floors.
QUANTUM = 2.0

gdal.UseExceptions()


def _perlin_at(gx, gy, x, y):
    """Perlin noise from lattice gradients (gx, gy), evaluated at points (x, y).

    The lattice wraps around, so domain-warped coordinates that stray outside
    the grid never get clamped into streaks along the edges."""
    n = gx.shape[0]
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    x0 %= n
    y0 %= n
    x1 = (x0 + 1) % n
    y1 = (y0 + 1) % n

    def dot(ix, iy, dx, dy):
        return gx[iy, ix] * dx + gy[iy, ix] * dy

    n00 = dot(x0, y0, fx, fy)
    n10 = dot(x1, y0, fx - 1.0, fy)
    n01 = dot(x0, y1, fx, fy - 1.0)
    n11 = dot(x1, y1, fx - 1.0, fy - 1.0)
    # Quintic fade gives continuous second derivatives (no grid artefacts in hillshade).
    ux = fx * fx * fx * (fx * (fx * 6.0 - 15.0) + 10.0)
    uy = fy * fy * fy * (fy * (fy * 6.0 - 15.0) + 10.0)
    nx0 = n00 + ux * (n10 - n00)
    nx1 = n01 + ux * (n11 - n01)
    return (nx0 + uy * (nx1 - nx0)) * 1.41421356


def noise(rng, x, y, cells):
    """One octave of gradient noise, in about [-1, 1], on a cells x cells lattice
    over the unit square (x, y in [0, 1), warped coordinates may go outside)."""
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(cells, cells))
    return _perlin_at(np.cos(angles), np.sin(angles), x * cells, y * cells)


def fbm(rng, x, y, base_cells, octaves, gain=0.5):
    """Fractal Brownian motion: a plain sum of octaves, normalised to about [-1, 1]."""
    total = np.zeros_like(x)
    amp, norm, cells = 1.0, 0.0, base_cells
    for _ in range(octaves):
        total += amp * noise(rng, x, y, cells)
        norm += amp
        amp *= gain
        cells *= 2
    return total / norm


def ridged_multifractal(rng, x, y, base_cells, octaves, gain=2.0, offset=1.0, h=0.9):
    """Musgrave's ridged multifractal: sharp crests, and each octave weighted by
    the previous one, so high ground is rough while valleys stay smooth like
    sediment-filled floors. Returns values in about [0, 1]."""
    signal = offset - np.abs(noise(rng, x, y, base_cells))
    signal *= signal
    total = signal.copy()
    norm = 1.0
    cells = base_cells
    for i in range(1, octaves):
        cells *= 2
        weight = np.clip(signal * gain, 0.0, 1.0)
        signal = offset - np.abs(noise(rng, x, y, cells))
        signal = signal * signal * weight
        amp = 2.0 ** (-h * i)
        total += signal * amp
        norm += amp
    return total / norm


def smoothstep(e0, e1, v):
    t = np.clip((v - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def trough(x, y, path_y, width):
    """U-shaped glacial trough along the curve y = path_y(x): 1 on its flat
    floor, falling steeply to 0 on the walls."""
    d = np.abs(y - path_y(x)) / width
    return np.exp(-(d ** 4))


def make_dem():
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x /= WIDTH
    y /= HEIGHT

    # Domain warp: displace the sampling grid by low-frequency noise so ridges
    # bend and branch instead of following the lattice.
    xs = x + 0.06 * fbm(rng, x, y, 3, 3)
    ys = y + 0.06 * fbm(rng, x, y, 3, 3)

    # Large-scale massif: high ground almost everywhere, falling towards a
    # pre-alpine lowland in the south-east corner.
    massif = 0.75 + 0.25 * fbm(rng, xs, ys, 2, 2)
    lowland = smoothstep(0.55, 1.05, np.hypot((x - 1.0) * 0.9, (y - 1.0) * 1.2) * -1.0 + 1.5)
    massif *= 1.0 - 0.8 * lowland

    # Six octaves stop at a ~10-pixel wavelength: a 30 m survey DEM is smooth
    # at the pixel scale, and finer noise would only bloat the file.
    ridges = ridged_multifractal(rng, xs, ys, 6, 6, h=1.2)
    hills = fbm(rng, xs, ys, 8, 4)
    relief = ridges ** 1.6 * massif + 0.05 * hills
    # Basins between the ridges sit at alpine-pasture height, not at sea level.
    elev = 250.0 + 900.0 * massif + 3800.0 * np.clip(relief, 0.0, None)

    # A main west-east valley that meanders across the middle and two
    # tributaries from the north. Their floors rise away from the main
    # valley, and the tributaries fade out instead of ending in a cliff.
    main = trough(xs, ys, lambda u: 0.50 + 0.05 * np.sin(u * 7.0) + 0.02 * np.sin(u * 17.0),
                  0.03)
    upper = 1.0 - smoothstep(0.40, 0.55, ys)
    trib1 = trough(ys, xs, lambda v: 0.28 + 0.04 * np.sin(v * 9.0), 0.018) * upper
    trib2 = trough(ys, xs, lambda v: 0.70 + 0.05 * np.sin(v * 6.0 + 1.0), 0.02) * upper
    floor = 420.0 + 200.0 * x + 1500.0 * np.clip(0.5 - ys, 0.0, None) ** 1.3 + 40.0 * hills
    carve = np.maximum(main, 0.8 * np.maximum(trib1, trib2))
    elev = elev * (1.0 - carve) + floor * carve

    # A long glacial lake in the lowland, running north-north-east to
    # south-south-west like the Italian lakes. Its basin is carved below the
    # lake level and the shoreline is wherever the terrain crosses that level,
    # so bays and headlands follow the relief.
    lake_path = lambda v: 0.80 - 0.18 * (v - 0.65) + 0.025 * np.sin(v * 20.0)
    basin = trough(ys, xs, lake_path, 0.035) * smoothstep(0.60, 0.68, ys)
    lake_level = 193.0
    elev = elev * (1.0 - basin) + (lake_level - 150.0) * basin
    lake = (elev < lake_level) & (basin > 0.05)
    elev = np.maximum(elev, lake_level + 1.0)

    elev = np.round(elev / QUANTUM) * QUANTUM
    elev[lake] = NODATA
    return elev.astype(np.float32)


def write_cog(dem, out_path):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    mem = gdal.GetDriverByName("MEM").Create("", WIDTH, HEIGHT, 1, gdal.GDT_Float32)
    mem.SetGeoTransform((ORIGIN_X, PIXEL, 0.0, ORIGIN_Y, 0.0, -PIXEL))
    mem.SetProjection(srs.ExportToWkt())
    band = mem.GetRasterBand(1)
    band.SetNoDataValue(NODATA)
    band.WriteArray(dem)
    band.SetDescription("elevation")
    band.SetUnitType("m")
    # Exact statistics over all valid pixels; they travel into the COG's
    # GDAL_METADATA tag so the viewer can pick a rescale range without a scan.
    band.ComputeStatistics(False)
    mem.SetMetadataItem("TITLE", "tessera synthetic Alpine DEM (sample data, not a real survey)")
    mem.SetMetadataItem("SOURCE", "scripts/make_sample_data.py seed %d" % SEED)

    # Overviews are built here rather than by the COG driver so that they can
    # be rounded to QUANTUM like the full resolution: averaged, unrounded
    # floats would compress worse than the whole base level.
    staging = "/vsimem/sample_dem_staging.tif"
    gdal.Translate(staging, mem, format="GTiff",
                   creationOptions=["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512"])
    st = gdal.Open(staging, gdal.GA_Update)
    factors = []
    size = max(WIDTH, HEIGHT)
    while size > 512:  # the COG driver's default: stop once a level fits a tile
        size = (size + 1) // 2
        factors.append(2 ** (len(factors) + 1))
    st.BuildOverviews("AVERAGE", factors)
    sb = st.GetRasterBand(1)
    for i in range(sb.GetOverviewCount()):
        ov = sb.GetOverview(i)
        a = ov.ReadAsArray()
        valid = a != NODATA
        a[valid] = np.round(a[valid] / QUANTUM) * QUANTUM
        ov.WriteArray(a)
    st.FlushCache()

    tmp = out_path + ".tmp.tif"
    gdal.Translate(tmp, st, format="COG", creationOptions=[
        "BLOCKSIZE=512",
        "COMPRESS=DEFLATE",
        "PREDICTOR=YES",  # floating-point predictor (3) for Float32
        "LEVEL=9",
        "OVERVIEWS=FORCE_USE_EXISTING",
        "NUM_THREADS=1",  # deterministic output
    ])
    st = None
    gdal.Unlink(staging)
    os.replace(tmp, out_path)
    aux = out_path + ".aux.xml"
    if os.path.exists(aux):
        os.remove(aux)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "data", "sample_dem.tif")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    dem = make_dem()
    write_cog(dem, out)
    valid = dem[dem != NODATA]
    print("%s: %dx%d, %.0f..%.0f m, %.1f%% nodata, %d bytes" % (
        out, WIDTH, HEIGHT, valid.min(), valid.max(),
        100.0 * (1.0 - valid.size / dem.size), os.path.getsize(out)))


if __name__ == "__main__":
    main()
