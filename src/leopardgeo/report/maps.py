"""Static maps of a run's outputs (PNG, for reports and notebooks) and an interactive map for Jupyter.

Each ``map_*`` function takes a run folder (``leopardgeo.gpkg`` and the
GeoTIFFs a run writes) and returns a :class:`matplotlib.figure.Figure` drawn
with the Agg backend (no pyplot state, so it works headless and in threads);
show it in a notebook by making it the cell's last expression, or save it with
:func:`save_maps`.  Every map has a title, axes in km, a scale bar, a north
arrow, a legend or colour bar, and the national borders and coastline (or the
study-area outline) of the run for orientation.

* :func:`plot_map` — any map by name (see :data:`MAPS`).
* :func:`save_maps` — every map whose inputs exist, as PNG files.
* :func:`explore` — an interactive folium map of the GeoPackage's layers.
* :func:`add_scale_bar`, :func:`add_north_arrow` — the map furniture, for
  your own axes in a projected CRS (metres).

The north arrow points up: the run's CRS is a Lambert azimuthal equal-area
projection centred on the study area, where grid north is true north along
the central meridian and within a few degrees of it across the region.

Examples
--------
>>> nice_scale_length(100_000), format_km(20_000), format_km(500)
(20000.0, '20 km', '0.5 km')
"""

from __future__ import annotations

import logging
import math
import os
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

import geopandas as gpd
import pyogrio
import rasterio
from rasterio.enums import Resampling

from leopardgeo.core._crs import M_PER_KM, require_projected_metres
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.io import GPKG_NAME

__all__ = [
    "MAPS",
    "MapFigure",
    "add_north_arrow",
    "add_scale_bar",
    "available_maps",
    "explore",
    "raster_overlay",
    "place_labels",
    "add_graticule",
    "graticule_step",
    "format_degrees",
    "format_km",
    "map_barriers",
    "map_border",
    "map_corridors",
    "map_current",
    "map_cwd",
    "map_links",
    "map_patches",
    "map_omniscape",
    "map_pinchpoints",
    "map_resistance",
    "map_sites",
    "map_suitability",
    "map_territories",
    "nice_scale_length",
    "plot_map",
    "save_maps",
]

logger = logging.getLogger(__name__)

#: Largest raster side drawn, in pixels (bigger rasters are read decimated).
MAX_RASTER_PX = 1500
_CROSS_ORANGE = "#ff7f0e"
_BORDER_RED = "#8b0000"
_PA_GREEN = "#2e7d32"
_SEX_COLOURS = {"F": ("#e7298a", "female"), "M": ("#1f78b4", "male")}
_LAND = "#f3f0e8"
_WATER = "#c6dcef"
_WATER_EDGE = "#3a7bbf"
_SOURCE_COLOUR = "#d62728"
#: Candidate label offsets (points) around the anchor, tried in order (centre first for area labels).
_OFFSETS = ((0, 0), (6, 4), (-6, 4), (6, -4), (-6, -4), (0, 9), (0, -9), (12, 0), (-12, 0), (14, 10), (-14, -10))


# ---------------------------------------------------------------------- furniture
def nice_scale_length(span_m: float, fraction: float = 0.25) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k m) of at most ``fraction`` of ``span_m``.

    Examples
    --------
    >>> nice_scale_length(878_000), nice_scale_length(1_200)
    (200000.0, 200.0)
    """
    target = max(float(span_m) * fraction, 1e-9)
    base = 10.0 ** math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * base <= target * (1 + 1e-9):
            return m * base
    return base  # pragma: no cover - m = 1 always fits


def format_km(length_m: float) -> str:
    """A scale-bar label in km.

    Examples
    --------
    >>> format_km(50_000), format_km(200), format_km(2_500)
    ('50 km', '0.2 km', '2.5 km')
    """
    return f"{length_m / M_PER_KM:g} km"


def add_scale_bar(ax: Axes, length_m: float | None = None, *, loc: tuple[float, float] = (0.05, 0.04), segments: int = 2) -> Text:
    """Draw a scale bar in data units (the axes' CRS must be projected, in metres).

    Call it after the axes' limits are final.

    Parameters
    ----------
    ax
        The map axes.
    length_m
        Bar length in metres; by default a round length of about a quarter of
        the map's width (see :func:`nice_scale_length`).
    loc
        Lower-left corner of the bar, as fractions of the axes.
    segments
        Number of alternating black and white segments.

    Returns
    -------
    matplotlib.text.Text
        The label (``gid="scale_bar"``), e.g. ``"50 km"``.
    """
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = float(length_m) if length_m else nice_scale_length(abs(x1 - x0))
    x = x0 + loc[0] * (x1 - x0)
    y = y0 + loc[1] * (y1 - y0)
    h = 0.012 * abs(y1 - y0)
    step = length / segments
    for i in range(segments):
        ax.add_patch(
            Rectangle(
                (x + i * step, y), step, h, facecolor="black" if i % 2 == 0 else "white", edgecolor="black", lw=0.6, zorder=20
            )
        )
    return ax.text(
        x + length / 2,
        y + 1.6 * h,
        format_km(length),
        ha="center",
        va="bottom",
        fontsize=8,
        zorder=20,
        gid="scale_bar",
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1.0},
    )


def add_north_arrow(ax: Axes, *, loc: tuple[float, float] = (0.95, 0.84), size: float = 0.08) -> Text:
    """Draw a north arrow pointing up, with an "N" above it.

    Up is (grid) north in the run's projected CRS; in the Lambert azimuthal
    equal-area projection of the study area it is within a few degrees of
    true north.

    Parameters
    ----------
    ax
        The map axes.
    loc
        Tip of the arrow, as fractions of the axes.
    size
        Arrow length, as a fraction of the axes' height.

    Returns
    -------
    matplotlib.text.Text
        The "N" (``gid="north_arrow"``).
    """
    x, y = loc
    ax.annotate(
        "",
        xy=(x, y),
        xytext=(x, y - size),
        xycoords="axes fraction",
        textcoords="axes fraction",
        arrowprops={"facecolor": "black", "edgecolor": "white", "width": 3, "headwidth": 9, "headlength": 8, "lw": 0.5},
        zorder=20,
    )
    return ax.text(
        x,
        y + 0.005,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=11,
        fontweight="bold",
        zorder=20,
        gid="north_arrow",
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.0},
    )


# ---------------------------------------------------------------------- run inputs
class _Run:
    """A run folder: which layers and rasters exist, read on demand."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        if not self.dir.is_dir():
            msg = f"{str(self.dir)!r}: expected a run folder (leopardgeo.gpkg and GeoTIFFs), found no folder."
            raise DataError(msg)
        self.gpkg = self.dir / GPKG_NAME
        self.layers: list[str] = []
        if self.gpkg.is_file():
            self.layers = [str(n) for n, g in pyogrio.list_layers(self.gpkg) if g is not None]
        self._cache: dict[str, Any] = {}
        #: Labels a map's own layers add ``(x, y, text, style)``; placed before the patch and protected-area labels.
        self.labels: list[tuple[float, float, str, dict[str, Any]]] = []

    def has(self, name: str) -> bool:
        """Whether the raster exists, or the layer exists and holds a feature (an empty layer draws no map)."""
        return (self.dir / name).is_file() if name.endswith(".tif") else self.layer(name) is not None

    def layer(self, name: str) -> gpd.GeoDataFrame | None:
        """The layer, or None if absent or empty (missing optional layers are skipped)."""
        if name not in self.layers:
            return None
        if name not in self._cache:
            gdf = pyogrio.read_dataframe(self.gpkg, layer=name)
            if gdf.crs is not None:
                require_projected_metres(gdf.crs, f"{GPKG_NAME}:{name}")
            gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
            self._cache[name] = gdf
        gdf = self._cache[name]
        return gdf if len(gdf) else None

    @property
    def crs(self) -> Any:
        """The run's CRS (from its first GeoTIFF, else its first layer), or None."""
        for name in ("suitability.tif", "resistance.tif", "patches.tif", "current.tif"):
            if (self.dir / name).is_file():
                with rasterio.open(self.dir / name) as src:
                    return src.crs
        for name in self.layers:
            gdf = self.layer(name)
            if gdf is not None and gdf.crs is not None:
                return gdf.crs
        return None

    def water_mask(self) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]] | None:
        """(water, inside the study area, extent): no-data cells of the suitability (else resistance) raster."""
        if "_water" in self._cache:
            return self._cache["_water"]
        out = None
        name = next((n for n in ("suitability.tif", "resistance.tif") if (self.dir / n).is_file()), None)
        if name is not None:
            data, extent = self.raster(name)
            water = np.ma.getmaskarray(data)
            inside = np.ones(water.shape, dtype=bool)
            sa = self.layer("study_area")
            if sa is not None:
                from rasterio.features import geometry_mask
                from rasterio.transform import from_bounds

                tr = from_bounds(extent[0], extent[2], extent[1], extent[3], water.shape[1], water.shape[0])
                inside = ~geometry_mask(sa.geometry.to_numpy(), out_shape=water.shape, transform=tr)
            out = (water, inside, extent)
        self._cache["_water"] = out
        return out

    def source(self) -> gpd.GeoDataFrame | None:
        """Protected areas of the source population named in ``sites.json`` (the sites stage), or None."""
        p = self.dir / "sites.json"
        if not p.is_file():
            return None
        import json

        try:
            name = json.loads(p.read_text(encoding="utf-8")).get("source")
        except (json.JSONDecodeError, AttributeError):
            return None
        pa = self.layer("protected_areas")
        col = _name_column(pa) if pa is not None else None
        if not name or pa is None or col is None:
            return None
        hit = pa[pa[col].astype(str).str.casefold().str.contains(str(name).casefold(), regex=False)]
        if not len(hit):
            hit = pa[[str(v).casefold() in str(name).casefold() for v in pa[col]]]
        return hit if len(hit) else None

    def require_layer(self, name: str) -> gpd.GeoDataFrame:
        gdf = self.layer(name)
        if gdf is None:
            found = self.layers if self.layers else f"no {GPKG_NAME}"
            msg = f"{str(self.dir)!r}: expected a non-empty layer {name!r} in {GPKG_NAME}, found {found}."
            raise DataError(msg)
        return gdf

    def raster(self, name: str, *, categorical: bool = False) -> tuple[np.ma.MaskedArray, tuple[float, float, float, float]]:
        """Band 1 of ``name`` (decimated to at most :data:`MAX_RASTER_PX` a side) and its extent (l, r, b, t)."""
        path = self.dir / name
        if not path.is_file():
            msg = f"{str(self.dir)!r}: expected {name}, found none. Run the stage that writes it first."
            raise DataError(msg)
        with rasterio.open(path) as src:
            require_projected_metres(src.crs, name)
            f = max(1.0, max(src.height, src.width) / MAX_RASTER_PX)
            shape = (max(1, round(src.height / f)), max(1, round(src.width / f)))
            resampling = Resampling.nearest if categorical or f == 1.0 else Resampling.average
            arr = src.read(1, out_shape=shape, masked=True, resampling=resampling)
            b = src.bounds
        data = np.ma.masked_invalid(arr.astype(float))
        return data, (b.left, b.right, b.bottom, b.top)


def _figsize(extent: Sequence[float] | None, width: float = 8.5) -> tuple[float, float]:
    """Figure size for a map of ``extent`` (xmin, xmax, ymin, ymax) with a colour bar on the right."""
    aspect = 0.8 if extent is None else (extent[3] - extent[2]) / max(extent[1] - extent[0], 1e-9)
    return width, float(np.clip((width - 1.6) * aspect + 1.0, 4.0, 11.0))


class MapFigure(Figure):
    """A matplotlib figure that shows itself in Jupyter as a PNG (no pyplot, no inline backend needed).

    Our figures are drawn on the Agg canvas without pyplot, so IPython's
    matplotlib display hook is not registered for them; ``_repr_png_`` is
    IPython's generic way for an object to display as an image.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
            self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def _new_figure(ax: Axes | None, extent: Sequence[float] | None = None) -> tuple[Figure, Axes]:
    """A new Agg figure and axes sized for ``extent`` (or ``ax`` and its figure)."""
    if ax is not None:
        return ax.get_figure(), ax  # type: ignore[return-value]
    fig = MapFigure(figsize=_figsize(extent), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _km_axes(ax: Axes) -> None:
    fmt = FuncFormatter(lambda v, _: f"{v / M_PER_KM:g}")
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_formatter(fmt)
    ax.set_xlabel("easting (km)", fontsize=8)
    ax.set_ylabel("northing (km)", fontsize=8)
    ax.tick_params(labelsize=7)


def _extent_of(run: _Run, fallback: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """(xmin, xmax, ymin, ymax): the study area's, else ``fallback`` (same order)."""
    sa = run.layer("study_area")
    if sa is not None:
        x0, y0, x1, y1 = sa.total_bounds
        return float(x0), float(x1), float(y0), float(y1)
    return tuple(fallback) if fallback is not None else None  # type: ignore[return-value]


def _finish(
    ax: Axes,
    run: _Run,
    title: str,
    *,
    extent: Sequence[float] | None = None,
    handles: Iterable[Any] = (),
    labels: bool = True,
    base: bool = True,
) -> None:
    """The common furniture of every map, in drawing order.

    Land and water under everything (``base``), borders and coastline on
    top, limits, a lon / lat graticule with degree tick labels, patch ids and
    protected-area names placed without overlap and the source population
    marked (``labels``), scale bar, north arrow, legend and title.
    """
    handles = list(handles)
    if base:
        handles += _draw_base(run, ax)
    coast = run.layer("coastline")
    if coast is not None:
        coast.plot(ax=ax, color=_WATER_EDGE, linewidth=0.6, zorder=8)
        handles.append(Line2D([], [], color=_WATER_EDGE, lw=0.8, label="coastline"))
    sa = run.layer("study_area")
    if sa is not None:
        sa.boundary.plot(ax=ax, color="#4d4d4d", linewidth=0.7, zorder=8)
        handles.append(Line2D([], [], color="#4d4d4d", lw=0.8, label="study area"))
    borders = run.layer("borders")
    if borders is not None:
        borders.plot(ax=ax, color="white", linewidth=2.6, zorder=9)  # halo: the border reads on any background
        borders.plot(ax=ax, color=_BORDER_RED, linewidth=1.2, linestyle="--", zorder=9)
        handles.append(Line2D([], [], color=_BORDER_RED, lw=1.2, ls="--", label="national border"))
    ext = _extent_of(run, extent)
    if ext is not None:
        x0, x1, y0, y1 = ext
        pad = 0.02 * max(x1 - x0, y1 - y0, 1.0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    if not add_graticule(ax, run.crs):
        _km_axes(ax)
    ax.set_title(title, fontsize=11)
    source = _draw_source(run, ax) if labels else None
    if source is not None:
        handles.append(source)
    if handles:
        leg = ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.92, facecolor="white", edgecolor="#999999")
        leg.set_zorder(30)
    add_scale_bar(ax)
    add_north_arrow(ax)
    if labels:
        _label_places(run, ax)


# ---------------------------------------------------------------------- graticule, base, labels
def graticule_step(span_deg: float, target: int = 7) -> float:
    """A round graticule interval (degrees) giving about ``target`` lines over ``span_deg``.

    Examples
    --------
    >>> graticule_step(10.5), graticule_step(2.0), graticule_step(0.3)
    (2.0, 0.25, 0.05)
    """
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0):
        if span_deg / step <= target + 1:
            return step
    return 30.0


def format_degrees(value: float, axis: str) -> str:
    """A degree label: ``131°E``, ``43.5°N``, ``12°W``.

    Examples
    --------
    >>> format_degrees(131.0, "lon"), format_degrees(43.5, "lat"), format_degrees(-12, "lon")
    ('131°E', '43.5°N', '12°W')
    """
    hemi = ("E", "W") if axis == "lon" else ("N", "S")
    return f"{abs(round(value, 4)):g}°{hemi[0] if value >= 0 else hemi[1]}"


def add_graticule(ax: Axes, crs: Any, *, step_deg: float | None = None) -> bool:
    """Draw meridians and parallels and label the axes in degrees of longitude and latitude.

    Call it after the axes' limits are final.  The lines are projected from
    WGS 84 into ``crs`` (densified, so they curve as they should); each
    meridian is labelled where it meets the bottom edge, each parallel where
    it meets the left edge.

    Parameters
    ----------
    ax
        The map axes, in a projected CRS.
    crs
        The axes' CRS (anything :class:`pyproj.CRS` accepts).
    step_deg
        Interval between lines, degrees; by default a round interval giving
        about five lines (:func:`graticule_step`).

    Returns
    -------
    bool
        False when ``crs`` is missing or cannot be transformed (nothing drawn).
    """
    if crs is None:
        return False
    from pyproj import CRS, Transformer

    try:
        crs = CRS.from_user_input(crs)
        if crs.is_geographic:
            return False
        inv = Transformer.from_crs(crs, 4326, always_xy=True)
        fwd = Transformer.from_crs(4326, crs, always_xy=True)
    except Exception:  # any CRS pyproj cannot handle: fall back to km axes
        return False
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    t = np.linspace(0.0, 1.0, 41)
    ex = np.r_[x0 + t * (x1 - x0), np.full(41, x1), x0 + t * (x1 - x0), np.full(41, x0)]
    ey = np.r_[np.full(41, y0), y0 + t * (y1 - y0), np.full(41, y1), y0 + t * (y1 - y0)]
    lon, lat = inv.transform(ex, ey)
    lon, lat = np.asarray(lon), np.asarray(lat)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return False
    lon_lo, lon_hi, lat_lo, lat_hi = lon.min(), lon.max(), lat.min(), lat.max()
    step = step_deg or graticule_step(max(lon_hi - lon_lo, lat_hi - lat_lo))
    style = {"color": "#6f6f6f", "lw": 0.45, "ls": (0, (4, 3)), "alpha": 0.7, "zorder": 7.5}
    xt: list[tuple[float, str]] = []
    yt: list[tuple[float, str]] = []
    dense_lat = np.linspace(lat_lo - step, lat_hi + step, 200)
    for lo in np.arange(math.floor(lon_lo / step) * step, lon_hi + step, step):
        xs, ys = (np.asarray(v) for v in fwd.transform(np.full_like(dense_lat, lo), dense_lat))
        ax.plot(xs, ys, **style)
        if ys[0] <= y0 <= ys[-1]:
            x = float(np.interp(y0, ys, xs))
            if x0 <= x <= x1:
                xt.append((x, format_degrees(lo, "lon")))
    dense_lon = np.linspace(lon_lo - step, lon_hi + step, 200)
    for la in np.arange(math.floor(lat_lo / step) * step, lat_hi + step, step):
        xs, ys = (np.asarray(v) for v in fwd.transform(dense_lon, np.full_like(dense_lon, la)))
        ax.plot(xs, ys, **style)
        if xs[0] <= x0 <= xs[-1]:
            y = float(np.interp(x0, xs, ys))
            if y0 <= y <= y1:
                yt.append((y, format_degrees(la, "lat")))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xticks([v for v, _ in xt], [s for _, s in xt])
    ax.set_yticks([v for v, _ in yt], [s for _, s in yt])
    ax.tick_params(labelsize=7, length=3)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return True


def _draw_base(run: _Run, ax: Axes) -> list[Any]:
    """Land (pale) and water (blue) under the map, from the no-data cells of the run's suitability raster.

    Inside the study area, a cell with no suitability is sea, a lake or
    missing input data; the demo's land mask (GSHHG shorelines) makes them
    sea and lakes.  The water's edge is drawn as the coastline.
    """
    base = run.water_mask()
    if base is None:
        return []
    water, inside, extent = base
    img = np.zeros(water.shape, dtype=np.uint8)
    img[inside] = 1
    img[inside & water] = 2
    cmap = ListedColormap(["#ffffff00", _LAND, _WATER])
    ax.imshow(img, extent=extent, origin="upper", cmap=cmap, vmin=-0.5, vmax=2.5, interpolation="nearest", zorder=0)
    handles: list[Any] = []
    if (inside & water).any():
        ny, nx = water.shape
        xs = np.linspace(extent[0], extent[1], nx, endpoint=False) + (extent[1] - extent[0]) / nx / 2
        ys = np.linspace(extent[3], extent[2], ny, endpoint=False) - (extent[3] - extent[2]) / ny / 2
        ax.contour(xs, ys, (inside & water).astype(float), levels=[0.5], colors=_WATER_EDGE, linewidths=0.5, zorder=8)
        handles.append(Patch(facecolor=_WATER, edgecolor=_WATER_EDGE, lw=0.5, label="sea, lakes (no data)"))
    if (inside & ~water).any():
        handles.append(Patch(facecolor=_LAND, edgecolor="#bbbbbb", lw=0.5, label="land"))
    return handles


def _draw_source(run: _Run, ax: Axes) -> Any:
    """Mark the source population (the sites stage's source) with a star; its legend handle, or None."""
    src = run.source()
    if src is None:
        return None
    p = src.union_all().representative_point()
    ax.plot([p.x], [p.y], marker="*", ms=15, mfc=_SOURCE_COLOUR, mec="white", mew=1.2, ls="", zorder=13, gid="source")
    return Line2D([], [], marker="*", ls="", ms=11, mfc=_SOURCE_COLOUR, mec="white", label="source population")


def _name_column(gdf: gpd.GeoDataFrame) -> str | None:
    return next((c for c in ("NAME", "name", "ORIG_NAME", "NAME_ENG") if c in gdf.columns), None)


def _label_places(run: _Run, ax: Axes) -> list[Text]:
    """Label the source population, protected areas (names) and patches (ids) without overlap."""
    items: list[tuple[float, float, str, dict[str, Any]]] = list(run.labels)
    src = run.source()
    if src is not None:
        p = src.union_all().representative_point()
        items.append((p.x, p.y, "source", {"color": _SOURCE_COLOUR, "fontsize": 7.5, "fontweight": "bold", "centre": False}))
    pa = run.layer("protected_areas")
    col = _name_column(pa) if pa is not None else None
    if pa is not None and col is not None:
        pa = pa.assign(_a=pa.geometry.area).sort_values("_a", ascending=False)
        for geom, name in zip(pa.geometry, pa[col].astype(str), strict=True):
            p = geom.representative_point()
            items.append((p.x, p.y, _short_name(name), {"color": "#1b5e20", "fontsize": 6.5, "fontstyle": "italic"}))
    patches = run.layer("patches")
    if patches is not None and "patch_id" in patches.columns:
        patches = patches.assign(_a=patches.geometry.area).sort_values("_a", ascending=False)
        for geom, pid in zip(patches.geometry, patches["patch_id"], strict=True):
            p = geom.representative_point()
            items.append((p.x, p.y, str(int(pid)), {"color": "black", "fontsize": 7, "fontweight": "bold"}))
    return place_labels(ax, items)


def _short_name(name: str, width: int = 22) -> str:
    """A protected-area name on at most two lines (long names wrap at a space)."""
    import textwrap

    lines = textwrap.wrap(name, width)
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


def place_labels(ax: Axes, items: Sequence[tuple[float, float, str, dict[str, Any]]], *, gid: str = "label") -> list[Text]:
    """Place text labels so that none overlaps another, the legend, the scale bar or the north arrow.

    Items are placed in the order given (most important first); each tries
    the anchor itself (unless its style has ``centre=False``), then offsets
    around it (:data:`_OFFSETS`), and is left out when every position
    collides or falls outside the axes.  Positions are measured on the
    figure's final layout (a constrained layout is computed, then frozen).

    This is a greedy candidate-position labeller in the spirit of QGIS's PAL;
    adjustText moves labels iteratively with no guarantee that overlaps are
    gone, which is the one property a map label must have.

    Parameters
    ----------
    ax
        Map axes whose limits are final.
    items
        ``(x, y, text, style)`` in data units; ``style`` holds Text keywords.
    gid
        ``gid`` of the labels placed (to find them in the figure).

    Returns
    -------
    list of matplotlib.text.Text
        The labels placed.
    """
    import matplotlib.patheffects as pe

    fig = ax.get_figure()
    if fig is None or not items:
        return []
    engine = fig.get_layout_engine()
    if engine is not None and getattr(engine, "adjust_compatible", True) is False:
        engine.execute(fig)
        fig.set_layout_engine("none")  # freeze the layout the labels were measured on
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)  # a bare Figure() has no renderer to measure text with
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    taken = [a.get_window_extent(renderer) for a in ax.texts if a.get_visible() and a.get_text()]
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    taken += [p.get_window_extent(renderer) for p in ax.patches if p.get_zorder() >= 20]
    placed: list[Text] = []
    halo = [pe.withStroke(linewidth=2.2, foreground="white", alpha=0.9)]
    for x, y, text, style in items:
        style = dict(style)
        centre = style.pop("centre", True)
        offsets = _OFFSETS if centre else _OFFSETS[1:]
        for dx, dy in offsets:
            ha = "center" if dx == 0 else ("left" if dx > 0 else "right")
            va = "center" if dy == 0 else ("bottom" if dy > 0 else "top")
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, zorder=14,
                            annotation_clip=True, path_effects=halo, gid=gid, **style)  # fmt: skip
            bb = t.get_window_extent(renderer).expanded(1.06, 1.12)
            inside = frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0 and bb.y1 <= frame.y1
            if inside and not any(bb.overlaps(o) for o in taken):
                taken.append(bb)
                placed.append(t)
                break
            t.remove()
        else:
            logger.debug("label %r left out: no free position", text)
    return placed


def _colorbar(fig: Figure, ax: Axes, mappable: Any, label: str) -> None:
    cb = fig.colorbar(mappable, ax=ax, shrink=0.7, pad=0.02)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)


def _robust_limits(data: np.ma.MaskedArray | np.ndarray, lo: float = 2, hi: float = 98) -> tuple[float, float]:
    v = np.ma.compressed(data) if np.ma.isMaskedArray(data) else np.asarray(data).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    a, b = (float(x) for x in np.percentile(v, [lo, hi]))
    if not b > a:
        a, b = float(v.min()), float(v.max())
    if not b > a:
        b = a + (abs(a) * 0.01 or 1.0)
    return a, b


def _log_norm(data: np.ma.MaskedArray, lo: float = 2, hi: float = 98, decades: float = 4.0) -> Normalize:
    """LogNorm over the robust range of the positive values, at most ``decades`` wide (linear if none are positive)."""
    pos = np.ma.masked_less_equal(data, 0)
    if np.ma.count(pos) == 0:
        return Normalize(*_robust_limits(data, lo, hi))
    a, b = _robust_limits(pos, lo, hi)
    a = max(a, b * 10.0**-decades)
    return LogNorm(vmin=a, vmax=b) if b > a > 0 else Normalize(a, b)


def _raster_map(
    run_dir: str | Path,
    ax: Axes | None,
    name: str,
    *,
    title: str,
    label: str,
    cmap: str,
    norm: Callable[[np.ma.MaskedArray], Normalize] | None = None,
    overlay: Callable[[_Run, Axes], list[Any]] | None = None,
    outside_patches: bool = False,
    transform: Callable[[np.ma.MaskedArray], np.ma.MaskedArray] | None = None,
) -> Figure:
    run = _Run(run_dir)
    data, extent = run.raster(name)
    if transform is not None:
        data = transform(data)
    if outside_patches and run.has("patches.tif"):
        labels, _ = run.raster("patches.tif", categorical=True)
        if labels.shape == data.shape:
            inside = labels.filled(0) > 0
            if data.shape != _full_shape(run.dir / name):
                # decimated by averaging: a cell on a patch edge mixes in the patch's current; leave those out too
                from scipy.ndimage import binary_dilation

                inside = binary_dilation(inside)
            data = np.ma.masked_where(inside, data)
    fig, ax = _new_figure(ax, _extent_of(run, extent))
    nrm = norm(data) if norm is not None else Normalize(*_robust_limits(data))
    im = ax.imshow(data, extent=extent, origin="upper", cmap=colormaps[cmap], norm=nrm, interpolation="nearest", zorder=1)
    handles = overlay(run, ax) if overlay is not None else []
    _colorbar(fig, ax, im, label)
    _finish(ax, run, title, extent=extent, handles=handles)
    return fig


def _full_shape(path: Path) -> tuple[int, int]:
    with rasterio.open(path) as src:
        return int(src.height), int(src.width)


def _patch_outlines(run: _Run, ax: Axes, color: str = "#1b5e20", lw: float = 0.5) -> list[Any]:
    patches = run.layer("patches")
    if patches is None:
        return []
    import matplotlib.patheffects as pe

    patches.boundary.plot(ax=ax, color=color, linewidth=lw, zorder=5)
    halo = [pe.withStroke(linewidth=2.4, foreground="#555555")] if color == "white" else None  # visible on the legend
    return [Line2D([], [], color=color, lw=max(lw, 0.8), label="habitat patch (id labelled)", path_effects=halo)]


# ---------------------------------------------------------------------- maps
def map_suitability(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Habitat suitability (``suitability.tif``, 0–1), with the patches outlined."""
    return _raster_map(
        run_dir,
        ax,
        "suitability.tif",
        title="Habitat suitability",
        label="suitability (0–1)",
        cmap="viridis",
        norm=lambda d: Normalize(0.0, 1.0),
        overlay=lambda run, ax: _patch_outlines(run, ax, color="white"),
    )


def map_resistance(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Resistance to movement (``resistance.tif``), log colour scale."""
    return _raster_map(
        run_dir,
        ax,
        "resistance.tif",
        title="Resistance to movement",
        label="resistance (log scale; blank = impassable)",
        cmap="magma_r",
        norm=_log_norm,
    )


def map_cwd(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Cost-weighted distance to the nearest patch (``cwd.tif``)."""
    return _raster_map(
        run_dir,
        ax,
        "cwd.tif",
        title="Cost-weighted distance to the nearest patch",
        label="cost-weighted distance (cost-weighted m)",
        cmap="viridis",
        overlay=lambda run, ax: _patch_outlines(run, ax, color="white"),
    )


def map_corridors(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Normalised least-cost corridors (``corridors.tif``): low values (bright) are the best routes."""

    def norm(d: np.ma.MaskedArray) -> Normalize:
        lo, hi = _robust_limits(d, 0, 98)
        return Normalize(lo, hi)

    return _raster_map(
        run_dir,
        ax,
        "corridors.tif",
        title="Least-cost corridors (normalised, truncated)",
        label="cost above the least-cost path (cost-weighted m; low = best)",
        cmap="viridis_r",
        norm=norm,
        overlay=_patch_outlines,
    )


def map_current(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Cumulative current density between the patches (``current.tif``), log colour scale; patches as outlines.

    A patch is one short-circuited node carrying the full current of every
    solve, so its cells would take the top of any colour scale; they are left
    out of the raster and drawn as outlines, and the log scale is stretched
    over the cells between patches, where the flow is the point of the map.
    """
    return _raster_map(
        run_dir,
        ax,
        "current.tif",
        title="Current density between patches (circuit theory)",
        label="current density (A, log scale; darker = more movement)",
        cmap="magma_r",
        norm=lambda d: _log_norm(d, 5, 99.5, decades=3.0),
        overlay=lambda run, ax: _patch_outlines(run, ax, color="#1b5e20", lw=0.9),
        outside_patches=True,
    )


def map_pinchpoints(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Current density inside the corridors outside the patches (``pinchpoints.tif``), with each link's pinch point."""

    def overlay(run: _Run, ax: Axes) -> list[Any]:
        handles = _patch_outlines(run, ax)
        pts = run.layer("pinch_points")
        if pts is not None:
            pts.plot(ax=ax, marker="o", color="#00bcd4", edgecolor="black", markersize=26, linewidth=0.7, zorder=11)
            handles.append(Line2D([], [], marker="o", ls="", mfc="#00bcd4", mec="black", label="pinch point (link a-b)"))
            run.labels += [(g.x, g.y, lab, {"fontsize": 6.5, "color": "#004d57", "centre": False})
                           for g, lab in zip(pts.geometry, _link_labels(pts), strict=True)]  # fmt: skip
        return handles

    return _raster_map(
        run_dir,
        ax,
        "pinchpoints.tif",
        title="Pinch points: current through each corridor",
        label="current density in corridor (A for 1 A; log scale)",
        cmap="magma_r",  # low current light, so the pinch points (high current) stand out
        norm=lambda d: _log_norm(d, 5, 99.5, decades=3.0),
        overlay=overlay,
        outside_patches=True,  # a patch's cells carry its node's current (up to 1 A) and would hide the corridors
    )


def map_omniscape(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Omniscape's normalised current (``omniscape_normalized.tif``; else the cumulative current), patches as outlines.

    Normalised current = cumulative current / flow potential: blue where the
    landscape impedes movement (< 1), pale yellow where current flows as the
    geometry alone would give (1), red where it is channelled (> 1), on a
    log scale centred at 1.
    """
    run = _Run(run_dir)
    if run.has("omniscape_normalized.tif"):

        def norm(d: np.ma.MaskedArray) -> Normalize:
            vals = d.compressed()
            vals = vals[vals > 0]
            lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.5, 2.0)
            span = max(abs(np.log10(max(lo, 1e-6))), abs(np.log10(max(hi, 1e-6))), 0.05)
            return LogNorm(10**-span, 10**span)

        return _raster_map(
            run_dir,
            ax,
            "omniscape_normalized.tif",
            title="Omnidirectional connectivity (Omniscape, normalised current)",
            label="current / flow potential (log scale; < 1 impeded, > 1 channelled)",
            cmap="RdYlBu_r",
            norm=norm,
            overlay=lambda run, ax: _patch_outlines(run, ax, color="#1b5e20", lw=0.9),
        )
    return _raster_map(
        run_dir,
        ax,
        "omniscape_current.tif",
        title="Omnidirectional connectivity (Omniscape, cumulative current)",
        label="cumulative current (A, log scale)",
        cmap="magma_r",
        norm=lambda d: _log_norm(d, 5, 99.5, decades=3.0),
        overlay=lambda run, ax: _patch_outlines(run, ax, color="#1b5e20", lw=0.9),
    )


def _link_labels(gdf: gpd.GeoDataFrame) -> list[str]:
    """``"a-b"`` for rows with ``patch_a`` / ``patch_b`` (or ``from_id`` / ``to_id``), else the row number."""
    for a, b in (("patch_a", "patch_b"), ("from_id", "to_id")):
        if a in gdf.columns and b in gdf.columns:
            return [f"{int(x)}-{int(y)}" if pd.notna(x) and pd.notna(y) else "" for x, y in zip(gdf[a], gdf[b], strict=True)]
    return [str(i + 1) for i in range(len(gdf))]


def map_barriers(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Barrier Mapper score (``barriers.tif``) and the top barrier locations (layer ``barriers``)."""
    run = _Run(run_dir)
    if not run.has("barriers.tif"):
        pts = run.require_layer("barriers")
        fig, ax = _new_figure(ax, _extent_of(run, _bounds(pts)))
        handles = _patch_outlines(run, ax)
        _plot_ranked_points(pts, ax, handles, run)
        _finish(ax, run, "Barriers: top restoration sites", extent=_bounds(pts), handles=handles)
        return fig

    def overlay(run: _Run, ax: Axes) -> list[Any]:
        handles = _patch_outlines(run, ax)
        pts = run.layer("barriers")
        if pts is not None:
            _plot_ranked_points(pts, ax, handles, run)
        return handles

    def scored(d: np.ma.MaskedArray) -> np.ma.MaskedArray:
        return np.ma.masked_less_equal(d, 0)  # most cells improve nothing: the stretch covers the cells that do

    return _raster_map(
        run_dir,
        ax,
        "barriers.tif",
        title="Barriers: where restoration shortens links most",
        label="cost-weighted m saved per m restored (cells with a score)",
        cmap="YlOrRd",
        norm=lambda d: Normalize(*_robust_limits(d, 2, 99)),
        overlay=overlay,
        transform=scored,
    )


def _plot_ranked_points(pts: gpd.GeoDataFrame, ax: Axes, handles: list[Any], run: _Run | None = None, top: int = 10) -> None:
    if "rank" in pts.columns:
        pts = pts.sort_values("rank").head(top)
    pts.plot(ax=ax, marker="D", color="#2b8cbe", edgecolor="white", markersize=30, linewidth=0.8, zorder=11)
    label = f"top {len(pts)} restoration sites (rank)"
    handles.append(Line2D([], [], marker="D", ls="", mfc="#2b8cbe", mec="white", label=label))
    if "rank" in pts.columns and run is not None:
        run.labels += [(g.x, g.y, f"#{int(r)}", {"fontsize": 7, "fontweight": "bold", "color": "#08519c", "centre": False})
                       for g, r in zip(pts.geometry, pts["rank"], strict=True)]  # fmt: skip


def _bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in gdf.total_bounds)
    return x0, x1, y0, y1


def _protected_areas(run: _Run, ax: Axes) -> list[Any]:
    pa = run.layer("protected_areas")
    if pa is None:
        return []
    pa.plot(ax=ax, facecolor="none", edgecolor=_PA_GREEN, hatch="////", linewidth=0.7, zorder=4)
    return [Patch(facecolor="none", edgecolor=_PA_GREEN, hatch="////", label="protected area")]


def map_patches(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Habitat patches (layer ``patches``, coloured by ``mean_quality``) and protected areas."""
    run = _Run(run_dir)
    patches = run.require_layer("patches")
    fig, ax = _new_figure(ax, _extent_of(run, _bounds(patches)))
    if "mean_quality" in patches.columns and patches["mean_quality"].notna().any():
        q = patches["mean_quality"].astype(float)
        nrm = Normalize(float(np.nanmin(q)), max(float(np.nanmax(q)), float(np.nanmin(q)) + 1e-9))
        patches.plot(ax=ax, column="mean_quality", cmap="YlGn", norm=nrm, edgecolor="#1b5e20", linewidth=0.3, zorder=3)
        _colorbar(fig, ax, ScalarMappable(norm=nrm, cmap=colormaps["YlGn"]), "patch mean suitability")
        handles: list[Any] = []
    else:
        patches.plot(ax=ax, color="#66bb6a", edgecolor="#1b5e20", linewidth=0.3, zorder=3)
        handles = [Patch(facecolor="#66bb6a", edgecolor="#1b5e20", label="habitat patch")]
    handles += _protected_areas(run, ax)
    _finish(ax, run, f"Habitat patches ({len(patches)})", extent=_bounds(patches), handles=handles)
    return fig


_DETOUR_GREY = "#8c8c8c"


def _detour_links(links: Any) -> np.ndarray:
    """Links whose patches other links join more cheaply (:func:`leopardgeo.stages.graph.redundant_links`)."""
    if not {"patch_a", "patch_b", "cwd"} <= set(links.columns) or not len(links):
        return np.zeros(len(links), dtype=bool)
    from leopardgeo.stages.graph import redundant_links

    return redundant_links(links["patch_a"], links["patch_b"], links["cwd"].astype(float))


def map_links(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Least-cost links coloured and sized by ``score`` (else by ``cwd``); cross-border links highlighted.

    Detour links, whose two patches a chain of other links joins more cheaply (planar links that run around a
    third patch's allocation region, :func:`leopardgeo.stages.graph.redundant_links`), are dotted grey.
    """
    run = _Run(run_dir)
    links = run.require_layer("links")
    fig, ax = _new_figure(ax, _extent_of(run, _bounds(links)))
    handles: list[Any] = []
    patches = run.layer("patches")
    if patches is not None:
        patches.plot(ax=ax, color="#d9d9d9", edgecolor="#969696", linewidth=0.3, zorder=2)
        handles.append(Patch(facecolor="#d9d9d9", edgecolor="#969696", label="habitat patch"))
    if "score" in links.columns and links["score"].notna().any():
        value = links["score"].astype(float).to_numpy()
        nrm: Normalize = Normalize(0.0, 100.0)
        cmap, label = "viridis_r", "corridor score (0–100, higher = better)"
        worst = 0.0
        strength = np.clip(np.nan_to_num(value, nan=worst) / 100.0, 0, 1)
    else:
        value = links["cwd"].astype(float).to_numpy() if "cwd" in links.columns else np.zeros(len(links))
        nrm = Normalize(*_robust_limits(value, 0, 100))
        cmap, label = "viridis", "cost-weighted distance (cost-weighted m; lower = better)"
        worst = float(nrm.vmax)
        strength = 1.0 - np.clip(nrm(np.nan_to_num(value, nan=worst)), 0, 1)
    widths = 0.8 + 2.4 * np.asarray(strength, dtype=float)
    if "crosses_border" in links.columns:
        cross = np.array([bool(v) if pd.notna(v) else False for v in links["crosses_border"]], dtype=bool)
        if cross.any():
            links[cross].plot(ax=ax, color=_CROSS_ORANGE, linewidth=widths[cross] + 3.0, linestyle="--", zorder=5)
            handles.append(Line2D([], [], color=_CROSS_ORANGE, lw=3, ls="--", label="crosses a border"))
    colours = colormaps[cmap](nrm(np.nan_to_num(value, nan=worst)))  # missing values drawn as the worst
    detour = _detour_links(links)
    if detour.any():  # planar links around a third patch's region: drawn apart, they carry no connectivity
        links[detour].plot(ax=ax, color=_DETOUR_GREY, linewidth=0.7, linestyle=":", zorder=4)
        handles.append(Line2D([], [], color=_DETOUR_GREY, lw=1, ls=":", label="detour link (cheaper via other patches)"))
    links[~detour].plot(ax=ax, color=colours[~detour], linewidth=widths[~detour], zorder=6)
    nodes = run.layer("graph_nodes")
    if nodes is not None:
        nodes.plot(ax=ax, color="black", markersize=8, zorder=7)
        handles.append(Line2D([], [], marker="o", ls="", color="black", ms=3, label="patch (graph node)"))
    _colorbar(fig, ax, ScalarMappable(norm=nrm, cmap=colormaps[cmap]), label)
    title = f"Least-cost links ({len(links)}" + (f"; {int(detour.sum())} detour links dotted)" if detour.any() else ")")
    _finish(ax, run, title, extent=_bounds(links[~detour] if (~detour).any() else links), handles=handles)
    return fig


def map_border(run_dir: str | Path, *, ax: Axes | None = None, profile_ax: Axes | None = None) -> Figure:
    """Border crossings of the least-cost paths and border permeability, with a profile along each border.

    Draws the layers ``border_permeability`` (segments coloured and sized by
    ``current_sum``) and ``border_crossings`` (stars), whichever exist, and,
    as a second panel, ``current_sum`` by segment along each border.  With
    ``ax`` given, the profile is drawn only into ``profile_ax``.
    """
    run = _Run(run_dir)
    perm = run.layer("border_permeability")
    cross = run.layer("border_crossings")
    if perm is None and cross is None:
        msg = f"{str(run.dir)!r}: expected a layer 'border_permeability' or 'border_crossings', found layers {run.layers}."
        raise DataError(msg)
    if ax is None:
        w, h = _figsize(_extent_of(run, _bounds(perm if perm is not None else cross)))
        fig = MapFigure(figsize=(w * 1.75, h) if perm is not None else (w, h), layout="constrained")
        FigureCanvasAgg(fig)
        if perm is not None:
            ax, profile_ax = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
        else:
            ax = fig.add_subplot()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    handles: list[Any] = []
    links = run.layer("links")
    if links is not None:
        links.plot(ax=ax, color="#bdbdbd", linewidth=0.6, zorder=3)
        handles.append(Line2D([], [], color="#bdbdbd", lw=0.8, label="least-cost link"))
    if perm is not None:
        v = perm["current_sum"].astype(float).to_numpy() if "current_sum" in perm.columns else np.zeros(len(perm))
        nrm = Normalize(*_robust_limits(v, 0, 100))
        scaled = np.clip(nrm(np.nan_to_num(v, nan=0.0)), 0, 1)
        perm.plot(ax=ax, color=colormaps["magma_r"](scaled), linewidth=1.0 + 3.0 * np.asarray(scaled), zorder=10)
        _colorbar(fig, ax, ScalarMappable(norm=nrm, cmap=colormaps["magma_r"]), "current summed over border segment (A)")
    if cross is not None:
        cross.plot(ax=ax, marker="*", color=_CROSS_ORANGE, edgecolor="black", markersize=120, linewidth=0.6, zorder=11)
        run.labels += [(g.x, g.y, lab, {"fontsize": 6.5, "color": "#7f3b08", "centre": False})
                       for g, lab in zip(cross.geometry, _link_labels(cross), strict=True)]  # fmt: skip
        handles.append(Line2D([], [], marker="*", ls="", mfc=_CROSS_ORANGE, mec="black", ms=11, label="border crossing"))
    if perm is not None and profile_ax is not None:
        _border_profile(perm, profile_ax)  # before _finish, which freezes the layout to place the labels
    _finish(ax, run, "Cross-border connectivity", handles=handles, extent=_bounds(perm if perm is not None else cross))
    return fig


def _border_profile(perm: gpd.GeoDataFrame, ax: Axes) -> None:
    """Bars of ``current_sum`` by segment, one run of bars per border, along the border in km."""
    by = "border" if "border" in perm.columns else None
    groups = perm.groupby(by, sort=True) if by else [("border", perm)]
    offset = 0.0
    colours = colormaps["tab10"]
    for i, (name, g) in enumerate(groups):
        g = g.sort_values("segment") if "segment" in g.columns else g
        length_m = g["length_m"].astype(float).to_numpy() if "length_m" in g.columns else g.geometry.length.to_numpy()
        length_km = length_m / M_PER_KM
        start = offset + np.concatenate([[0.0], np.cumsum(length_km)[:-1]])
        current = g["current_sum"].astype(float).fillna(0.0).to_numpy() if "current_sum" in g.columns else np.zeros(len(g))
        ax.bar(start, current, width=length_km, align="edge", color=colours(i % 10), label=str(name), edgecolor="none")
        offset += float(length_km.sum()) * 1.03
    ax.set_xlabel("distance along the border (km; borders one after another)", fontsize=8)
    ax.set_ylabel("current summed over segment (A)", fontsize=8)
    ax.set_title("Border permeability profile", fontsize=11)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, title="border", title_fontsize=7)


def map_territories(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Simulated territories: layer ``territories`` by sex (else ``territories.tif``), over the patches."""
    run = _Run(run_dir)
    terr = run.layer("territories")
    if terr is None and not run.has("territories.tif"):
        msg = f"{str(run.dir)!r}: expected a layer 'territories' or territories.tif, found neither."
        raise DataError(msg)
    raster = None if terr is not None else run.raster("territories.tif", categorical=True)
    extent = _bounds(terr) if terr is not None else raster[1]  # type: ignore[index]
    fig, ax = _new_figure(ax, _extent_of(run, extent))
    handles = _patch_outlines(run, ax)
    if terr is not None:
        sex = terr["sex"].astype(str).str.upper() if "sex" in terr.columns else pd.Series("", index=terr.index)
        for code, (colour, label) in _SEX_COLOURS.items():
            part = terr[sex == code]
            if len(part):
                part.plot(ax=ax, facecolor=colour, alpha=0.35, edgecolor=colour, linewidth=0.6, zorder=4)
                handles.append(Patch(facecolor=colour, alpha=0.5, edgecolor=colour, label=f"{label} territory"))
        other = terr[~sex.isin(list(_SEX_COLOURS))]
        if len(other):
            other.plot(ax=ax, facecolor="#999999", alpha=0.35, edgecolor="#666666", linewidth=0.6, zorder=4)
            handles.append(Patch(facecolor="#999999", alpha=0.5, label="territory"))
        title = f"Territories ({len(terr)})"
    else:
        data = raster[0]  # type: ignore[index]
        colours = ["#ffffff00", "#e7298a", "#1f78b4", "#7b3294"]
        im_kw = {"cmap": ListedColormap(colours), "vmin": -0.5, "vmax": 3.5, "interpolation": "nearest", "zorder": 3}
        ax.imshow(np.ma.masked_equal(data, 0), extent=extent, **im_kw)
        for code, label in ((1, "female only"), (2, "male only"), (3, "female and male")):
            handles.append(Patch(facecolor=colours[code], label=label))
        title = "Territories"
    _finish(ax, run, title, extent=extent, handles=handles)
    return fig


def map_sites(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Candidate or release sites (layer ``sites``): outlines coloured by ``score``, labelled by name and rank."""
    run = _Run(run_dir)
    sites = run.require_layer("sites")
    fig, ax = _new_figure(ax, _extent_of(run, _bounds(sites)))
    handles: list[Any] = []
    patches = run.layer("patches")
    if patches is not None:
        patches.plot(ax=ax, color="#c7e9c0", edgecolor="none", zorder=2)
        handles.append(Patch(facecolor="#c7e9c0", label="habitat patch"))
    handles += _protected_areas(run, ax)
    if "score" in sites.columns and sites["score"].notna().any():
        nrm = Normalize(*_robust_limits(sites["score"].astype(float).to_numpy(), 0, 100))
        colours = colormaps["viridis_r"](nrm(sites["score"].astype(float).fillna(float(nrm.vmin)).to_numpy()))
        sites.plot(ax=ax, facecolor="none", edgecolor=colours, linewidth=2.0, zorder=6)
        _colorbar(fig, ax, ScalarMappable(norm=nrm, cmap=colormaps["viridis_r"]), "site score (higher = better)")
    else:
        sites.plot(ax=ax, facecolor="none", edgecolor="#6a1b9a", linewidth=2.0, zorder=6)
        handles.append(Patch(facecolor="none", edgecolor="#6a1b9a", lw=2, label="site"))
    names = sites["name"].astype(str) if "name" in sites.columns else [str(i + 1) for i in range(len(sites))]
    ranks = sites["rank"] if "rank" in sites.columns else [None] * len(sites)
    for geom, name, rank in zip(sites.geometry, names, ranks, strict=True):
        p = geom.representative_point()
        text = f"#{int(rank)} {name}" if rank is not None and pd.notna(rank) else name
        run.labels.append((p.x, p.y, _short_name(text, 26), {"fontsize": 7.5, "fontweight": "bold", "color": "#4a148c"}))
    _finish(ax, run, f"Sites ({len(sites)})", handles=handles, extent=_bounds(sites))
    return fig


#: Map name -> (function, inputs: the map is drawn when any of them exists; ``*.tif`` files or GeoPackage layers).
MAPS: dict[str, tuple[Callable[..., Figure], tuple[str, ...]]] = {
    "suitability": (map_suitability, ("suitability.tif",)),
    "resistance": (map_resistance, ("resistance.tif",)),
    "patches": (map_patches, ("patches",)),
    "cwd": (map_cwd, ("cwd.tif",)),
    "links": (map_links, ("links",)),
    "corridors": (map_corridors, ("corridors.tif",)),
    "current": (map_current, ("current.tif",)),
    "pinchpoints": (map_pinchpoints, ("pinchpoints.tif",)),
    "omniscape": (map_omniscape, ("omniscape_normalized.tif", "omniscape_current.tif")),
    "barriers": (map_barriers, ("barriers.tif", "barriers")),
    "border": (map_border, ("border_permeability", "border_crossings")),
    "territories": (map_territories, ("territories", "territories.tif")),
    "sites": (map_sites, ("sites",)),
}


def plot_map(run_dir: str | Path, what: str, *, ax: Axes | None = None) -> Figure:
    """Draw map ``what`` (a key of :data:`MAPS`) of a run folder.

    Parameters
    ----------
    run_dir
        The run folder (``leopardgeo.gpkg`` and GeoTIFFs).
    what
        Map name, e.g. ``"links"``.
    ax
        Axes to draw into (its figure is returned); by default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ConfigError
        If ``what`` is not a known map.
    DataError
        If the map's inputs are missing.
    """
    if what not in MAPS:
        msg = f"map {what!r}: expected one of {sorted(MAPS)}."
        raise ConfigError(msg)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
        return MAPS[what][0](run_dir, ax=ax)


def _save_png(fig: Figure, path: Path, dpi: float) -> Path:
    """Write ``fig`` as PNG atomically (a temporary file in the same folder, then a rename)."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.png")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
            fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def available_maps(run_dir: str | Path) -> list[str]:
    """Names of the maps whose inputs exist in a run folder."""
    run = _Run(run_dir)
    return [name for name, (_, needs) in MAPS.items() if any(run.has(n) for n in needs)]


def save_maps(
    out_dir: str | Path, png_dir: str | Path | None = None, *, maps: Sequence[str] | None = None, dpi: float = 150
) -> dict[str, Path]:
    """Draw every map whose inputs exist in a run folder and save each as ``<name>.png``.

    Maps whose inputs are missing are skipped (logged), not errors.  Each PNG
    is written atomically, replacing an earlier one.

    Parameters
    ----------
    out_dir
        The run folder (``leopardgeo.gpkg`` and GeoTIFFs).
    png_dir
        Where to write the PNGs (created if needed); default ``out_dir/maps``.
    maps
        Map names to draw (keys of :data:`MAPS`); default all.
    dpi
        Resolution of the PNGs.

    Returns
    -------
    dict of str to pathlib.Path
        Map name -> PNG written, in the order of :data:`MAPS`.

    Raises
    ------
    DataError
        If ``out_dir`` is not a folder.
    ConfigError
        If ``maps`` names an unknown map.
    """
    out = Path(out_dir)
    names = list(MAPS) if maps is None else list(maps)
    unknown = [n for n in names if n not in MAPS]
    if unknown:
        msg = f"maps {unknown}: expected names among {sorted(MAPS)}."
        raise ConfigError(msg)
    ready = set(available_maps(out))
    target = Path(png_dir) if png_dir is not None else out / "maps"
    written: dict[str, Path] = {}
    for name in names:
        if name not in ready:
            logger.info("map %s skipped: none of %s in %s", name, ", ".join(MAPS[name][1]), out)
            continue
        target.mkdir(parents=True, exist_ok=True)
        fig = plot_map(out, name)
        written[name] = _save_png(fig, target / f"{name}.png", dpi)
        logger.info("map %s -> %s", name, written[name])
    return written


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
