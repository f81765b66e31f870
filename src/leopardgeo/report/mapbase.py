"""The shared drawing of the run maps: map furniture, the run's layers, base, graticule, labels, colour scales.

:func:`add_scale_bar` and :func:`add_north_arrow` work on any axes in a projected
CRS (metres); :func:`add_graticule` draws lon / lat lines projected with pyproj;
:func:`place_labels` places labels without overlaps (a label that cannot go
anywhere free is left out). ``_Run`` reads a run folder's layers and rasters once
for every map; ``_finish`` adds the furniture, the base and the legend.
:mod:`leopardgeo.report.maps` draws the maps with these.

Examples
--------
>>> nice_scale_length(100_000), format_km(20_000), format_km(500)
(20000.0, '20 km', '0.5 km')
>>> graticule_step(3.0), format_degrees(131.5, "lon")
(0.5, '131.5°E')
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
from leopardgeo.core.errors import DataError
from leopardgeo.io import GPKG_NAME

logger = logging.getLogger(__name__)

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


