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
    "format_km",
    "map_barriers",
    "map_border",
    "map_corridors",
    "map_current",
    "map_cwd",
    "map_links",
    "map_patches",
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
        self._cache: dict[str, gpd.GeoDataFrame] = {}

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
) -> None:
    """Borders and coastline / study-area outline on top, limits, km axes, scale bar, north arrow, legend, title."""
    handles = list(handles)
    coast = run.layer("coastline")
    if coast is not None:
        coast.plot(ax=ax, color="#3a7bbf", linewidth=0.6, zorder=8)
        handles.append(Line2D([], [], color="#3a7bbf", lw=0.8, label="coastline"))
    sa = run.layer("study_area")
    if sa is not None:
        sa.boundary.plot(ax=ax, color="#4d4d4d", linewidth=0.7, zorder=8)
        handles.append(Line2D([], [], color="#4d4d4d", lw=0.8, label="study area"))
    borders = run.layer("borders")
    if borders is not None:
        borders.plot(ax=ax, color=_BORDER_RED, linewidth=1.0, linestyle="--", zorder=9)
        handles.append(Line2D([], [], color=_BORDER_RED, lw=1.0, ls="--", label="national border"))
    ext = _extent_of(run, extent)
    if ext is not None:
        x0, x1, y0, y1 = ext
        pad = 0.02 * max(x1 - x0, y1 - y0, 1.0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    _km_axes(ax)
    ax.set_title(title, fontsize=11)
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.85)
    add_scale_bar(ax)
    add_north_arrow(ax)


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
) -> Figure:
    run = _Run(run_dir)
    data, extent = run.raster(name)
    if outside_patches and run.has("patches.tif"):
        labels, _ = run.raster("patches.tif", categorical=True)
        if labels.shape == data.shape:
            data = np.ma.masked_where(labels.filled(0) > 0, data)
    fig, ax = _new_figure(ax, _extent_of(run, extent))
    nrm = norm(data) if norm is not None else Normalize(*_robust_limits(data))
    im = ax.imshow(data, extent=extent, origin="upper", cmap=colormaps[cmap], norm=nrm, interpolation="nearest", zorder=1)
    handles = overlay(run, ax) if overlay is not None else []
    _colorbar(fig, ax, im, label)
    _finish(ax, run, title, extent=extent, handles=handles)
    return fig


def _patch_outlines(run: _Run, ax: Axes, color: str = "#1b5e20") -> list[Any]:
    patches = run.layer("patches")
    if patches is None:
        return []
    patches.boundary.plot(ax=ax, color=color, linewidth=0.5, zorder=5)
    return [Line2D([], [], color=color, lw=0.8, label="habitat patch")]


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
    """Cumulative current density (``current.tif``), log colour scale."""
    return _raster_map(
        run_dir,
        ax,
        "current.tif",
        title="Current density (circuit theory)",
        label="current density (A, log scale)",
        cmap="inferno",
        norm=lambda d: _log_norm(d, 2, 99.5),
        overlay=lambda run, ax: _patch_outlines(run, ax, color="#9ecae1"),
    )


def map_pinchpoints(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Current density inside the corridors outside the patches (``pinchpoints.tif``), with each link's pinch point."""

    def overlay(run: _Run, ax: Axes) -> list[Any]:
        handles = _patch_outlines(run, ax)
        pts = run.layer("pinch_points")
        if pts is not None:
            pts.plot(ax=ax, marker="o", color="white", edgecolor="black", markersize=18, linewidth=0.6, zorder=7)
            handles.append(Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="pinch point"))
        return handles

    return _raster_map(
        run_dir,
        ax,
        "pinchpoints.tif",
        title="Pinch points",
        label="current density in corridor (A for 1 A)",
        cmap="magma_r",  # low current light, so the pinch points (high current) stand out
        overlay=overlay,
        outside_patches=True,  # a patch's cells carry its node's current (up to 1 A) and would hide the corridors
    )


def map_barriers(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Barrier Mapper score (``barriers.tif``) and the top barrier locations (layer ``barriers``)."""
    run = _Run(run_dir)
    if not run.has("barriers.tif"):
        pts = run.require_layer("barriers")
        fig, ax = _new_figure(ax, _extent_of(run, _bounds(pts)))
        handles = _patch_outlines(run, ax)
        _plot_ranked_points(pts, ax, handles)
        _finish(ax, run, "Barriers: top restoration sites", extent=_bounds(pts))
        return fig

    def overlay(run: _Run, ax: Axes) -> list[Any]:
        handles = _patch_outlines(run, ax)
        pts = run.layer("barriers")
        if pts is not None:
            _plot_ranked_points(pts, ax, handles)
        return handles

    return _raster_map(
        run_dir,
        ax,
        "barriers.tif",
        title="Barriers: improvement from restoration",
        label="least-cost distance saved per metre restored",
        cmap="Reds",
        overlay=overlay,
    )


def _plot_ranked_points(pts: gpd.GeoDataFrame, ax: Axes, handles: list[Any]) -> None:
    pts.plot(ax=ax, marker="D", color="#ffd92f", edgecolor="black", markersize=22, linewidth=0.6, zorder=7)
    handles.append(Line2D([], [], marker="D", ls="", mfc="#ffd92f", mec="black", label="top barrier"))
    if "rank" in pts.columns:
        for geom, rank in zip(pts.geometry, pts["rank"], strict=True):
            ax.annotate(str(rank), (geom.x, geom.y), xytext=(3, 3), textcoords="offset points", fontsize=6, zorder=7)


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


def map_links(run_dir: str | Path, *, ax: Axes | None = None) -> Figure:
    """Least-cost links coloured and sized by ``score`` (else by ``cwd``); cross-border links highlighted."""
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
    links.plot(ax=ax, color=colours, linewidth=widths, zorder=6)
    nodes = run.layer("graph_nodes")
    if nodes is not None:
        nodes.plot(ax=ax, color="black", markersize=8, zorder=7)
        handles.append(Line2D([], [], marker="o", ls="", color="black", ms=3, label="patch (graph node)"))
    _colorbar(fig, ax, ScalarMappable(norm=nrm, cmap=colormaps[cmap]), label)
    _finish(ax, run, f"Least-cost links ({len(links)})", extent=_bounds(links), handles=handles)
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
        handles.append(Line2D([], [], marker="*", ls="", mfc=_CROSS_ORANGE, mec="black", ms=11, label="border crossing"))
    _finish(ax, run, "Cross-border connectivity", handles=handles, extent=_bounds(perm if perm is not None else cross))
    if perm is not None and profile_ax is not None:
        _border_profile(perm, profile_ax)
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
        text = f"{name} (#{rank})" if rank is not None and pd.notna(rank) else name
        ax.annotate(
            text,
            (p.x, p.y),
            ha="center",
            va="center",
            fontsize=7,
            zorder=12,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1.0},
        )
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


def explore(gpkg_path: str | Path, layers: Sequence[str] | None = None) -> Any:
    """Interactive map of a run's GeoPackage layers for Jupyter (folium).

    Uses :meth:`geopandas.GeoDataFrame.explore` (colour maps with legends)
    when mapclassify is installed too, else plain folium GeoJSON overlays
    coloured the same way.  Each layer is an overlay that can be switched on
    and off, with its attributes as a tooltip.

    Parameters
    ----------
    gpkg_path
        The GeoPackage, or a run folder holding ``leopardgeo.gpkg``.
    layers
        Layers to show, bottom first; default every layer with geometry.

    Returns
    -------
    folium.Map
        Show it as a notebook cell's last expression, or ``.save("map.html")``.

    Raises
    ------
    DataError
        If folium is not installed (``pip install folium``), the file does
        not exist, or a requested layer is missing.
    """
    try:
        import folium
    except ImportError as exc:
        msg = "explore() needs folium for interactive maps, found it not installed. Install it: `pip install folium`."
        raise DataError(msg) from exc
    try:
        import mapclassify  # noqa: F401  (GeoDataFrame.explore needs it)

        use_geopandas = True
    except ImportError:
        use_geopandas = False
        logger.info("mapclassify not installed: explore() draws plain folium layers (pip install mapclassify for legends)")
    path = Path(gpkg_path)
    if path.is_dir():
        path = path / GPKG_NAME
    if not path.is_file():
        msg = f"{str(path)!r}: expected a GeoPackage, found no file."
        raise DataError(msg)
    present = [str(n) for n, g in pyogrio.list_layers(path) if g is not None]
    names = present if layers is None else list(layers)
    missing = [n for n in names if n not in present]
    if missing:
        msg = f"{path.name}: expected layers {missing}, found {present}."
        raise DataError(msg)
    m = folium.Map(tiles="OpenStreetMap", control_scale=True)
    bounds: np.ndarray | None = None
    for name in names:
        gdf = pyogrio.read_dataframe(path, layer=name)
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
        if not len(gdf):
            continue
        gdf = gdf.to_crs(4326)
        keep = [c for c in gdf.columns if c == gdf.geometry.name or gdf[c].dtype.kind in "biufOUS"]
        gdf = gdf[keep]
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
