"""The interactive map of a run for Jupyter: :func:`explore` (folium, or lonboard) and :func:`raster_overlay`.

Rasters are warped to Web Mercator as image overlays; vectors are simplified to a
cell and rounded to ~10 m before they are sent to the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize

import geopandas as gpd
import pyogrio
import rasterio
from rasterio.enums import Resampling

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.io import GPKG_NAME
from leopardgeo.report.mapbase import (
    _BORDER_RED,
    _CROSS_ORANGE,
    _PA_GREEN,
    _SEX_COLOURS,
    _log_norm,
    _robust_limits,
    _Run,
)

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------- interactive
#: Per layer: a fixed ``color`` or a ``column`` coloured with ``cmap``, and Leaflet path options ``style``.
_EXPLORE_STYLE: dict[str, dict[str, Any]] = {
    "study_area": {"color": "#4d4d4d", "style": {"fill": False, "weight": 1.5}},
    "borders": {"color": _BORDER_RED, "style": {"dashArray": "6 4", "weight": 2}},
    "protected_areas": {"color": _PA_GREEN, "style": {"fillOpacity": 0.15, "weight": 1}},
    "patches": {"color": "#41ab5d", "column": "mean_quality", "cmap": "YlGn"},
    "links": {"color": "#31688e", "column": "score", "cmap": "viridis_r", "style": {"weight": 3}},
    "corridors": {"color": "#31688e", "column": "cwd", "cmap": "viridis_r", "style": {"fillOpacity": 0.4, "weight": 0}},
    "pinch_points": {"color": "black"},
    "barriers": {"color": "#de2d26"},
    "border_crossings": {"color": _CROSS_ORANGE},
    "border_permeability": {"color": "#8b0000", "column": "current_sum", "cmap": "magma_r", "style": {"weight": 4}},
    "territories": {"color": "#999999", "column": "sex", "categories": {k: c for k, (c, _) in _SEX_COLOURS.items()}},
    "sites": {"color": "#6a1b9a", "style": {"fill": False, "weight": 3}},
}


def _feature_colours(gdf: gpd.GeoDataFrame, spec: dict[str, Any]) -> list[str]:
    """One hex colour per feature: by ``spec``'s column (categories or colour map), else its fixed colour."""
    col = spec.get("column")
    default = spec.get("color", "#3388ff")
    if col not in gdf.columns:
        return [default] * len(gdf)
    if "categories" in spec:
        return [spec["categories"].get(str(v), default) for v in gdf[col]]
    v = pd.to_numeric(gdf[col], errors="coerce").astype(float).to_numpy()
    if not np.isfinite(v).any():
        return [default] * len(gdf)
    nrm = Normalize(*_robust_limits(v, 0, 100))
    rgba = colormaps[spec.get("cmap", "viridis")](nrm(np.nan_to_num(v, nan=float(nrm.vmin))))
    return ["#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in row[:3])) for row in rgba]


def _folium_layer(folium: Any, m: Any, gdf: gpd.GeoDataFrame, name: str, spec: dict[str, Any]) -> None:
    """A GeoJSON overlay coloured per feature, with a tooltip of the attributes (folium only)."""
    fields = [c for c in gdf.columns if c != gdf.geometry.name][:15]
    gdf = gdf.assign(_colour=_feature_colours(gdf, spec))
    extra = dict(spec.get("style", {}))

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        c = feature["properties"]["_colour"]
        return {"color": c, "fillColor": c, "weight": 2, "fillOpacity": 0.5, **extra}

    kw: dict[str, Any] = {"name": name, "style_function": style}
    if fields:
        kw["tooltip"] = folium.GeoJsonTooltip(fields=fields)
    if gdf.geom_type.isin(["Point", "MultiPoint"]).all():
        kw["marker"] = folium.CircleMarker(radius=6, fill=True, fill_opacity=0.9)
    folium.GeoJson(gdf.to_json(), **kw).add_to(m)


#: Rasters :func:`explore` shows as image overlays: file -> (colour map, log scale, legend caption).
EXPLORE_RASTERS: dict[str, tuple[str, bool, str]] = {
    "suitability.tif": ("viridis", False, "habitat suitability 0-1 (modelled)"),
    "current.tif": ("magma_r", True, "current density between patches (A, log scale)"),
}
#: Largest side of a raster overlay, pixels (a few hundred kB of PNG each).
EXPLORE_RASTER_PX = 900
#: Layers :func:`explore` leaves out unless asked for (thousands of features each; open them in QGIS).
EXPLORE_SKIP = ("territories", "corridors", "fence_links")


def raster_overlay(
    path: str | Path, *, cmap: str = "viridis", log: bool = False, max_px: int = EXPLORE_RASTER_PX,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, list[list[float]], Normalize]:
    """A GeoTIFF as an RGBA image in Web Mercator for a web map, with its lat / lon bounds.

    The raster is read decimated (average) to at most ``max_px`` a side,
    warped to EPSG:3857 (the web map's own projection, so the pixels line up
    with the tiles) and coloured with ``cmap``; no-data is transparent.

    Parameters
    ----------
    path
        A single-band GeoTIFF in a projected CRS.
    cmap
        Matplotlib colour map name.
    log
        Colour on a log scale (positive values, 5th-99.5th percentile, at most three decades).
    max_px
        Largest side of the image.
    mask
        Cells to leave transparent, on the decimated grid (e.g. the patches under the current).

    Returns
    -------
    rgba : numpy.ndarray
        ``(rows, cols, 4)`` uint8.
    bounds : list
        ``[[south, west], [north, east]]`` in degrees (Leaflet's order).
    norm : matplotlib.colors.Normalize
        The colour scale (for a legend).
    """
    from rasterio.warp import Resampling as WarpResampling
    from rasterio.warp import calculate_default_transform, reproject, transform_bounds

    with rasterio.open(path) as src:
        f = max(1.0, max(src.height, src.width) / max_px)
        shape = (max(1, round(src.height / f)), max(1, round(src.width / f)))
        data = src.read(1, out_shape=shape, masked=True, resampling=Resampling.average).astype("float64").filled(np.nan)
        t = src.transform * src.transform.scale(src.width / shape[1], src.height / shape[0])
        crs, bounds = src.crs, src.bounds
    if mask is not None and mask.shape == data.shape:
        data[mask] = np.nan
    dst_crs = "EPSG:3857"
    dt, w, h = calculate_default_transform(crs, dst_crs, shape[1], shape[0], *bounds)
    out = np.full((h, w), np.nan)
    reproject(data, out, src_transform=t, src_crs=crs, dst_transform=dt, dst_crs=dst_crs, resampling=WarpResampling.nearest,
              src_nodata=np.nan, dst_nodata=np.nan)  # fmt: skip
    masked = np.ma.masked_invalid(out)
    norm = _log_norm(masked, 5, 99.5, decades=3.0) if log else Normalize(*_robust_limits(masked, 1, 99))
    rgba = colormaps[cmap](norm(masked), bytes=True)
    rgba[..., 3] = np.where(np.ma.getmaskarray(masked), 0, 200)
    left, top = dt.c, dt.f
    right, bottom = left + dt.a * w, top + dt.e * h
    west, south, east, north = transform_bounds(dst_crs, "EPSG:4326", left, bottom, right, top)
    return rgba, [[south, west], [north, east]], norm


def explore(
    gpkg_path: str | Path,
    layers: Sequence[str] | None = None,
    *,
    rasters: Sequence[str] | None = None,
    simplify_m: float | None = None,
    backend: str = "folium",
) -> Any:
    """Interactive map of a run: rasters as image overlays, vector layers simplified for display.

    With folium (default) every layer is an overlay that can be switched on
    and off, with its attributes as a tooltip; suitability and current
    (:data:`EXPLORE_RASTERS`) are warped to Web Mercator and drawn as
    semi-transparent images, the vectors simplified to about one cell and
    rounded to ~10 m, so the demo page stays at a few MB.  Uses
    :meth:`geopandas.GeoDataFrame.explore` (colour maps with legends) when
    mapclassify is installed too, else plain folium GeoJSON overlays
    coloured the same way.  ``backend="lonboard"`` draws the vector layers
    with lonboard (deck.gl, GPU; for layers of many thousand features),
    without simplifying them.

    Parameters
    ----------
    gpkg_path
        The GeoPackage, or a run folder holding ``leopardgeo.gpkg``.
    layers
        Vector layers to show, bottom first; default every layer with
        geometry except the large ones in :data:`EXPLORE_SKIP`.
    rasters
        GeoTIFFs of the run folder to overlay; default those of
        :data:`EXPLORE_RASTERS` that exist.  ``[]`` for none.
    simplify_m
        Simplification tolerance in metres (Douglas-Peucker, topology kept
        per feature); default the run's cell size.  ``0`` keeps every vertex.
    backend
        ``"folium"`` or ``"lonboard"``.

    Returns
    -------
    folium.Map or lonboard.Map
        Show it as a notebook cell's last expression; a folium map saves with
        ``.save("map.html")``.

    Raises
    ------
    DataError
        If the backend's package is not installed (``pip install folium`` /
        ``pip install lonboard``), the file does not exist, or a requested
        layer or raster is missing.
    ConfigError
        If ``backend`` is not one of the two.
    """
    if backend not in ("folium", "lonboard"):
        msg = f"explore(backend={backend!r}): expected 'folium' or 'lonboard'."
        raise ConfigError(msg)
    try:
        lib = __import__(backend)
    except ImportError as exc:
        msg = (f"explore(backend={backend!r}) needs {backend}, found it not installed. Install it: `pip install {backend}`.")
        raise DataError(msg) from exc
    path = Path(gpkg_path)
    if path.is_dir():
        path = path / GPKG_NAME
    if not path.is_file():
        msg = f"{str(path)!r}: expected a GeoPackage, found no file."
        raise DataError(msg)
    present = [str(n) for n, g in pyogrio.list_layers(path) if g is not None]
    names = [n for n in present if n not in EXPLORE_SKIP] if layers is None else list(layers)
    missing = [n for n in names if n not in present]
    if missing:
        msg = f"{path.name}: expected layers {missing}, found {present}."
        raise DataError(msg)
    run = _Run(path.parent)
    tifs = [n for n in EXPLORE_RASTERS if run.has(n)] if rasters is None else list(rasters)
    absent = [n for n in tifs if not run.has(n)]
    if absent:
        msg = f"{str(path.parent)!r}: expected rasters {absent}, found {sorted(p.name for p in path.parent.glob('*.tif'))}."
        raise DataError(msg)
    tol = simplify_m
    if tol is None:
        tol = 0.0
        for n in ("suitability.tif", "resistance.tif", "patches.tif"):
            if run.has(n):
                with rasterio.open(run.dir / n) as src:
                    tol = float(abs(src.transform.a))
                break
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name in names:
        gdf = pyogrio.read_dataframe(path, layer=name)
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
        if not len(gdf):
            continue
        if backend == "folium" and tol > 0 and not gdf.geom_type.isin(["Point", "MultiPoint"]).all():
            gdf = gdf.set_geometry(gdf.geometry.simplify(tol, preserve_topology=True))
        gdf = gdf.to_crs(4326)
        if backend == "folium":
            import shapely

            gdf = gdf.set_geometry(shapely.set_precision(gdf.geometry.to_numpy(), 1e-4))  # ~10 m
            gdf = gdf[~gdf.geometry.is_empty]
        keep = [c for c in gdf.columns if c == gdf.geometry.name or gdf[c].dtype.kind in "biufOUS"]
        frames[name] = gdf[keep]
    if backend == "lonboard":
        return lib.viz(list(frames.values()))
    return _folium_map(lib, run, frames, tifs)


def _folium_map(folium: Any, run: _Run, frames: dict[str, gpd.GeoDataFrame], tifs: Sequence[str]) -> Any:
    try:
        import mapclassify  # noqa: F401  (GeoDataFrame.explore needs it)

        use_geopandas = True
    except ImportError:
        use_geopandas = False
        logger.info("mapclassify not installed: explore() draws plain folium layers (pip install mapclassify for legends)")
    m = folium.Map(tiles="OpenStreetMap", control_scale=True)
    bounds: np.ndarray | None = None
    patches_mask = None
    for tif in tifs:
        cmap, log, caption = EXPLORE_RASTERS.get(tif, ("viridis", False, tif))
        mask = None
        if tif == "current.tif" and run.has("patches.tif"):  # as on the static map: patches carry every solve's current
            if patches_mask is None:
                with rasterio.open(run.dir / "current.tif") as src:
                    f = max(1.0, max(src.height, src.width) / EXPLORE_RASTER_PX)
                    shape = (max(1, round(src.height / f)), max(1, round(src.width / f)))
                with rasterio.open(run.dir / "patches.tif") as src:
                    patches_mask = src.read(1, out_shape=shape, resampling=Resampling.nearest) > 0
            mask = patches_mask
        rgba, bb, _ = raster_overlay(run.dir / tif, cmap=cmap, log=log, mask=mask)
        folium.raster_layers.ImageOverlay(image=rgba, bounds=bb, name=f"{Path(tif).stem}: {caption}", opacity=0.8,
                                          show=tif == tifs[0]).add_to(m)  # fmt: skip
        b = np.array([bb[0][1], bb[0][0], bb[1][1], bb[1][0]])
        bounds = b if bounds is None else np.r_[np.minimum(bounds[:2], b[:2]), np.maximum(bounds[2:], b[2:])]
    for name, gdf in frames.items():
        spec = _EXPLORE_STYLE.get(name, {})
        if use_geopandas:
            kw: dict[str, Any] = {"style_kwds": dict(spec.get("style", {}))}
            if spec.get("column") in gdf.columns:
                kw["column"] = spec["column"]
                if "categories" in spec:
                    kw["categorical"] = True
                    cats = sorted(gdf[spec["column"]].astype(str).unique())
                    kw["cmap"] = [spec["categories"].get(c, spec["color"]) for c in cats]
                else:
                    kw["cmap"] = spec.get("cmap", "viridis")
            else:
                kw["color"] = spec.get("color", "#3388ff")
            gdf.explore(m=m, name=name, **kw)
        else:
            _folium_layer(folium, m, gdf, name, spec)
        b = np.asarray(gdf.total_bounds, dtype=float)
        bounds = b if bounds is None else np.r_[np.minimum(bounds[:2], b[:2]), np.maximum(bounds[2:], b[2:])]
    folium.LayerControl(collapsed=False).add_to(m)
    if bounds is not None:
        m.fit_bounds([[float(bounds[1]), float(bounds[0])], [float(bounds[3]), float(bounds[2])]])
    return m
