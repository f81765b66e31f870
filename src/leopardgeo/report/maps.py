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
import os
import uuid
import warnings
from collections.abc import Callable, Sequence
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
from matplotlib.patches import Patch

import geopandas as gpd

from leopardgeo.core._crs import M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError

# The shared drawing and the interactive map live beside this module; their names are importable from here too.
from leopardgeo.report.interactive import (  # noqa: F401
    _EXPLORE_STYLE,
    EXPLORE_RASTER_PX,
    EXPLORE_RASTERS,
    EXPLORE_SKIP,
    _feature_colours,
    _folium_layer,
    _folium_map,
    explore,
    raster_overlay,
)
from leopardgeo.report.mapbase import (  # noqa: F401
    _BORDER_RED,
    _CROSS_ORANGE,
    _LAND,
    _OFFSETS,
    _PA_GREEN,
    _SEX_COLOURS,
    _SOURCE_COLOUR,
    _WATER,
    _WATER_EDGE,
    MAX_RASTER_PX,
    MapFigure,
    _colorbar,
    _draw_base,
    _draw_source,
    _extent_of,
    _figsize,
    _finish,
    _full_shape,
    _km_axes,
    _label_places,
    _log_norm,
    _name_column,
    _new_figure,
    _patch_outlines,
    _raster_map,
    _robust_limits,
    _Run,
    _short_name,
    add_graticule,
    add_north_arrow,
    add_scale_bar,
    format_degrees,
    format_km,
    graticule_step,
    nice_scale_length,
    place_labels,
)

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


