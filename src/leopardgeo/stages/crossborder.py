"""Cross-border evaluation: where least-cost paths cross national borders, and how permeable each border stretch is.

* :func:`border_crossings` — one point where each link's least-cost path
  crosses a border line, with the link, its ``cwd``, the border pair, the width
  of the link's truncated corridor along the border there (m) and the
  cumulative current density at the crossing cell.
* :func:`border_permeability` — the border cut into segments of equal length
  (default 5 km), each with the current density summed over the cells the
  segment passes through, the largest current density, and the number of
  truncated corridors crossing it.
* :func:`mark_crosses_border` — the ``crosses_border`` edge attribute (the
  path passes through more than one country).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely
import shapely.ops
from rasterio.features import rasterize

from leopardgeo.config import FenceMode, _f, _normalise, _positive
from leopardgeo.core.errors import AlignmentError, ConfigError
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS, OutputWriter, json_records
from leopardgeo.kernels.circuit import CircuitResult
from leopardgeo.stages.base import RunConfigLike, Section, Stage
from leopardgeo.stages.corridors import CorridorResult, CorridorWindow
from leopardgeo.stages.fence import (
    FenceScenario,
    border_cells,
    compare_fenced,
    compare_networks,
    cut_graph,
    fence_resistance,
    fill_countries,
    split_at_border,
)
from leopardgeo.stages.graph import compute_links
from leopardgeo.stages.inputs import Inputs
from leopardgeo.stages.metrics import MetricsResult, _landscape_area, compute_metrics
from leopardgeo.stages.patches import country_raster
from leopardgeo.stages.territories import TerritoryResult

__all__ = [
    "CROSSBORDER_COLUMNS",
    "ROUTE_COLUMNS",
    "TRANSBOUNDARY_COLUMNS",
    "CrossBorderResult",
    "FenceScenario",
    "border_cells",
    "border_crossings",
    "border_current",
    "border_permeability",
    "compare_fenced",
    "compare_networks",
    "crossborder_corridors",
    "crossing_importance",
    "crossing_routes",
    "crossing_table",
    "cut_graph",
    "fence_resistance",
    "fill_countries",
    "mark_crosses_border",
    "split_at_border",
    "transboundary_patches",
]

logger = logging.getLogger(__name__)


def mark_crosses_border(graph: nx.Graph) -> None:
    """Set ``crosses_border`` on every edge: True when its ``countries`` list holds two or more codes.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, countries="CHN;RUS"); G.add_edge(2, 3, countries="RUS")
    >>> mark_crosses_border(G); [G.edges[e]["crosses_border"] for e in G.edges]
    [True, False]
    """
    for _, _, d in graph.edges(data=True):
        codes = [c for c in str(d.get("countries") or "").split(";") if c]
        d["crosses_border"] = len(codes) > 1


def _path_cells(path: shapely.Geometry, grid: Grid) -> np.ndarray:
    """(row, col) of the cell centres a least-cost path line runs through, in order."""
    xy = shapely.get_coordinates(path)
    cols, rows = ~grid.transform * (xy[:, 0], xy[:, 1])
    rc = np.column_stack([np.floor(rows), np.floor(cols)]).astype(np.int64)
    keep = np.ones(len(rc), dtype=bool)
    keep[1:] = np.any(rc[1:] != rc[:-1], axis=1)
    rc = rc[keep]
    inside = (rc[:, 0] >= 0) & (rc[:, 0] < grid.height) & (rc[:, 1] >= 0) & (rc[:, 1] < grid.width)
    return rc[inside]


def _nearest_border(borders: gpd.GeoDataFrame | None, field: str, pt: shapely.Point) -> tuple[str, float]:
    if borders is None or borders.empty:
        return "", math.nan
    d = borders.geometry.distance(pt).to_numpy()
    i = int(np.argmin(d))
    name = str(borders[field].iloc[i]) if field in borders.columns else ""
    return name, float(d[i])


def _width_along_border(window: CorridorWindow | None, countries: np.ndarray, r: int, c: int, ca: int, cb: int) -> float:
    """Cells of the link's corridor on the border between countries ``ca`` and ``cb`` in the run through (r, c).

    Counts, on each side, the corridor cells that touch the other country (4-neighbours), in the 8-connected run
    containing the crossing; returns the smaller side (the corridor must pass both), in cells.
    """
    if window is None:
        return math.nan
    r0, c0 = window.rows.start, window.cols.start
    h, w = window.mask.shape
    sub = np.full((h + 2, w + 2), -1, dtype=np.int64)  # one cell of context around the window
    rr0, cc0 = max(r0 - 1, 0), max(c0 - 1, 0)
    rr1, cc1 = min(r0 + h + 1, countries.shape[0]), min(c0 + w + 1, countries.shape[1])
    sub[rr0 - r0 + 1 : rr1 - r0 + 1, cc0 - c0 + 1 : cc1 - c0 + 1] = countries[rr0:rr1, cc0:cc1]
    mask = np.zeros_like(sub, dtype=bool)
    mask[1:-1, 1:-1] = window.mask
    sides = []
    for me, other in ((ca, cb), (cb, ca)):
        touch = np.zeros_like(mask)
        core = sub[1:-1, 1:-1] == me
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            touch[1:-1, 1:-1] |= core & (sub[1 + dr : h + 1 + dr, 1 + dc : w + 1 + dc] == other)
        sides.append(touch & mask)
    band = sides[0] | sides[1]
    lab, _ = ndimage.label(band, structure=np.ones((3, 3), dtype=bool))
    best = 0
    for dr in (-1, 0, 1):  # the run the crossing cell (or its neighbour on the path) belongs to
        for dc in (-1, 0, 1):
            rr, cc = r - r0 + 1 + dr, c - c0 + 1 + dc
            if 0 <= rr < lab.shape[0] and 0 <= cc < lab.shape[1] and lab[rr, cc] > 0:
                best = lab[rr, cc]
                break
        if best:
            break
    if not best:
        return math.nan
    run = lab == best
    return float(min((run & sides[0]).sum(), (run & sides[1]).sum()))


def border_crossings(
    graph: nx.Graph,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    *,
    borders: gpd.GeoDataFrame | None = None,
    corridors: CorridorResult | None = None,
    current: np.ndarray | None = None,
    border_field: str = "pair",
) -> gpd.GeoDataFrame:
    """Points where the links' least-cost paths pass from one country to another.

    The border is the one the patches were split on: the change of country between two consecutive cells of the
    path on the country raster.  The point lies midway between the two cell centres.  Where a border line layer is
    given, the nearest line's name and its distance are added (``border_line``, ``border_line_m``) — national border
    lines and country polygons from different sources can disagree by kilometres.

    Parameters
    ----------
    graph
        Patch graph whose edges carry ``geometry`` (the least-cost path through cell centres) and ``cwd``.
    countries, country_codes
        Country index raster (-1 = none) and its codes, from :func:`leopardgeo.stages.patches.country_raster`.
    grid
        The analysis grid.
    borders
        Optional border lines in the grid's CRS (``border_field`` names each line).
    corridors
        Optional :class:`~leopardgeo.stages.corridors.CorridorResult`: ``corridor_at_border_m`` is then the length
        of border (cells × cell size) inside the link's truncated corridor at the crossing (not the corridor's
        narrowest width, ``corridor_width_m`` of the links, which is a different quantity).
    current
        Optional cumulative current density raster; ``current`` is the larger value of the two cells.

    Returns
    -------
    geopandas.GeoDataFrame
        Points with ``patch_a``, ``patch_b``, ``cwd``, ``border`` (e.g. ``CHN-RUS``), ``from_country``,
        ``to_country`` (in the direction patch_a → patch_b), ``corridor_at_border_m``, ``current``, ``border_line``,
        ``border_line_m``.

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 400, 100), cell_size_m=100, crs=TEST_CRS)
    >>> ctry = np.array([[0, 0, 1, 1]])
    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, patch_a=1, patch_b=2, cwd=300.0, geometry=shapely.LineString([(50, 50), (350, 50)]))
    >>> x = border_crossings(G, ctry, ["CHN", "RUS"], g)
    >>> x[["border", "from_country", "to_country"]].to_dict("records"), x.geometry.iloc[0].wkt
    ([{'border': 'CHN-RUS', 'from_country': 'CHN', 'to_country': 'RUS'}], 'POINT (200 50)')
    """
    countries = np.asarray(countries)
    if countries.shape != grid.shape:
        msg = f"countries: expected a raster of the grid's shape {grid.shape}, found {countries.shape}."
        raise AlignmentError(msg)
    rows = []
    for u, v, d in graph.edges(data=True):
        path = d.get("geometry")
        if path is None or path.is_empty:
            continue
        a, b = min(u, v), max(u, v)
        cells = _path_cells(path, grid)
        if len(cells) and d.get("patch_a", a) != a:  # geometry runs from patch_a; report in the a -> b direction
            cells = cells[::-1]
        window = corridors.windows.get((a, b)) if corridors is not None else None
        last = None
        for r, c in cells:
            k = int(countries[r, c])
            if k < 0:
                continue
            if last is not None and k != last[2]:
                pr, pc, pk = last
                x0, y0 = grid.xy(np.array([pr]), np.array([pc]))
                x1, y1 = grid.xy(np.array([r]), np.array([c]))
                pt = shapely.Point((x0[0] + x1[0]) / 2, (y0[0] + y1[0]) / 2)
                name, dist = _nearest_border(borders, border_field, pt)
                cur = math.nan
                if current is not None:
                    cur = float(np.nanmax([current[pr, pc], current[r, c], -np.inf]))
                    cur = cur if math.isfinite(cur) else math.nan
                width = _width_along_border(window, countries, int(r), int(c), pk, k)
                rows.append(
                    {
                        "patch_a": a,
                        "patch_b": b,
                        "cwd": float(d.get("cwd", math.nan)),
                        "border": "-".join(sorted((country_codes[pk], country_codes[k]))),
                        "from_country": country_codes[pk],
                        "to_country": country_codes[k],
                        "corridor_at_border_m": width * grid.cell_size_m,
                        "current": cur,
                        "border_line": name,
                        "border_line_m": dist,
                        "geometry": pt,
                    }
                )
            last = (int(r), int(c), k)
    cols = [
        "patch_a",
        "patch_b",
        "cwd",
        "border",
        "from_country",
        "to_country",
        "corridor_at_border_m",
        "current",
        "border_line",
        "border_line_m",
    ]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=grid.crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)


def border_permeability(
    borders: gpd.GeoDataFrame,
    grid: Grid,
    *,
    current: np.ndarray | None = None,
    corridors: gpd.GeoDataFrame | None = None,
    segment_m: float = 5000.0,
    border_field: str = "pair",
) -> gpd.GeoDataFrame:
    """The border in segments of ``segment_m`` with the current crossing them and the corridors they carry.

    ``current_sum`` is the cumulative current density summed over the grid cells each segment passes
    through (cells touched by the line), ``current_max`` its largest value there, ``n_corridors`` the
    number of truncated corridors the segment intersects.

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=100, crs=TEST_CRS)
    >>> b = gpd.GeoDataFrame({"pair": ["A-B"]}, geometry=[shapely.LineString([(505, 0), (505, 1000)])], crs=TEST_CRS)
    >>> cur = np.zeros((10, 10)); cur[4, 5] = 1.0
    >>> seg = border_permeability(b, g, current=cur, segment_m=500)
    >>> seg[["segment", "length_m", "current_sum"]].to_dict("records")
    [{'segment': 0, 'length_m': 500.0, 'current_sum': 0.0}, {'segment': 1, 'length_m': 500.0, 'current_sum': 1.0}]
    """
    if not (segment_m > 0 and math.isfinite(segment_m)):
        msg = f"segment_m: expected a length > 0 in metres, found {segment_m!r}."
        raise ConfigError(msg)
    names = borders[border_field].astype(str).to_numpy() if border_field in borders.columns else np.full(len(borders), "")
    cor_geoms = corridors.geometry.to_numpy() if corridors is not None and len(corridors) else np.array([])
    cor_tree = shapely.STRtree(cor_geoms) if len(cor_geoms) else None
    rows = []
    for name, geom in zip(names, borders.geometry.to_numpy(), strict=True):
        for line in shapely.get_parts(geom):
            if line.is_empty or line.length == 0:
                continue
            n = max(1, math.ceil(line.length / segment_m - 1e-9))
            for i in range(n):
                seg = shapely.ops.substring(line, i * segment_m, min((i + 1) * segment_m, line.length))
                rows.append({"border": str(name), "segment": len(rows), "length_m": float(seg.length), "geometry": seg})
    out = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)
        if rows
        else gpd.GeoDataFrame({"border": [], "segment": [], "length_m": []}, geometry=[], crs=grid.crs)
    )
    sums, maxes, ncor = [], [], []
    for seg in out.geometry.to_numpy():
        if current is not None:
            cells = rasterize([(seg, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, all_touched=True, dtype="uint8")
            vals = current[cells.astype(bool)]
            vals = vals[np.isfinite(vals)]
            sums.append(float(vals.sum()) if vals.size else 0.0)
            maxes.append(float(vals.max()) if vals.size else 0.0)
        else:
            sums.append(math.nan)
            maxes.append(math.nan)
        if cor_tree is not None:  # corridors the segment runs through (touching at one point does not count)
            hits = cor_geoms[cor_tree.query(seg, predicate="intersects")]
            ncor.append(int((shapely.length(shapely.intersection(seg, hits)) > 0).sum()))
        else:
            ncor.append(0)
    out["current_sum"] = sums
    out["current_max"] = maxes
    out["n_corridors"] = ncor
    return out


def crossing_table(crossings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Crossings with longitude / latitude (WGS 84) for reports."""
    ll = crossings.to_crs("EPSG:4326")
    return pd.DataFrame(crossings.drop(columns="geometry")).assign(lon=ll.geometry.x.round(4), lat=ll.geometry.y.round(4))


# ---------------------------------------------------------------------- transboundary patches


def _conductance(ra: np.ndarray, rb: np.ndarray, diagonal: bool, avg_resistances: bool) -> np.ndarray:
    """Branch conductance between neighbouring cells, as Circuitscape (see :mod:`leopardgeo.kernels.circuit`)."""
    f = math.sqrt(2.0) if diagonal else 1.0
    if avg_resistances:
        return 1.0 / ((ra + rb) / 2.0 * f)
    return (1.0 / ra + 1.0 / rb) / 2.0 / f


def _border_edges(cidx: np.ndarray, connectivity: int) -> Iterator[tuple[tuple[slice, slice], tuple[slice, slice], bool]]:
    """Yield (slices of u, slices of v, diagonal) for each neighbour offset; the caller masks the pairs it wants."""
    offsets = [((0, 1), False), ((1, 0), False)]
    if connectivity == 8:
        offsets += [((1, 1), True), ((1, -1), True)]
    h, w = cidx.shape
    for (dr, dc), diag in offsets:
        r0, r1 = 0, h - dr
        if dc >= 0:
            su, sv = np.s_[r0:r1, 0 : w - dc], np.s_[r0 + dr : r1 + dr, dc:w]
        else:
            su, sv = np.s_[r0:r1, -dc:w], np.s_[r0 + dr : r1 + dr, 0 : w + dc]
        yield su, sv, diag


def border_current(
    resistance: np.ndarray,
    voltage: np.ndarray,
    countries: np.ndarray,
    ca: int,
    cb: int,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Branch currents from country ``ca`` to ``cb`` across every grid edge between them (Ohm's law on a solved circuit).

    ``I_uv = g_uv (V_u − V_v)`` with Circuitscape's conductances (mean conductance, diagonals over √2;
    ``avg_resistances``: one over the mean resistance).  By Kirchhoff's current law the currents across a cut
    that separates a source from its ground sum to the current injected.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Per border edge: the current (A, positive from ``ca`` to ``cb``), the (row, col) of its ``ca`` cell and of
        its ``cb`` cell.

    Examples
    --------
    A 1 × 4 strip of 1-ohm cells, 1 V to 0 V over three branches: 1/3 A crosses the border in the middle.

    >>> I, a, b = border_current(np.ones((1, 4)), np.array([[1, 2/3, 1/3, 0]]), np.array([[0, 0, 1, 1]]), 0, 1)
    >>> I.round(6).tolist(), a.tolist(), b.tolist()
    ([0.333333], [[0, 1]], [[0, 2]])
    """
    res = np.asarray(resistance, dtype=float)
    v = np.asarray(voltage, dtype=float)
    c = np.asarray(countries)
    rows = np.indices(c.shape)
    cur, ua, ub = [], [], []
    for su, sv, diag in _border_edges(c, connectivity):
        ok = np.isfinite(res[su]) & np.isfinite(res[sv]) & np.isfinite(v[su]) & np.isfinite(v[sv])
        for first_is_a in (True, False):
            m = ok & ((c[su] == ca) & (c[sv] == cb) if first_is_a else (c[su] == cb) & (c[sv] == ca))
            if not m.any():
                continue
            g = _conductance(res[su][m], res[sv][m], diag, avg_resistances)
            i_uv = g * (v[su][m] - v[sv][m])
            cur.append(i_uv if first_is_a else -i_uv)
            pu = np.column_stack([rows[0][su][m], rows[1][su][m]])
            pv = np.column_stack([rows[0][sv][m], rows[1][sv][m]])
            ua.append(pu if first_is_a else pv)
            ub.append(pv if first_is_a else pu)
    if not cur:
        return np.empty(0), np.empty((0, 2), dtype=np.int64), np.empty((0, 2), dtype=np.int64)
    return np.concatenate(cur), np.vstack(ua), np.vstack(ub)


#: Columns of :func:`transboundary_patches`, in order (geometry last).
TRANSBOUNDARY_COLUMNS = (
    "patch_id",
    "name",
    "border",
    "country_a",
    "country_b",
    "area_ha_a",
    "area_ha_b",
    "border_length_m",
    "eff_resistance",
    "current_share",
    "peak_current",
    "border_line",
    "border_line_m",
    "protected_a",
    "protected_b",
)


def _side_names(
    protected_areas: gpd.GeoDataFrame | None, region: shapely.Geometry | None, min_area_m2: float
) -> str:
    """Protected areas with at least ``patches.PA_SHARE`` of their area (and one cell) in ``region``."""
    from leopardgeo.stages.patches import PA_SHARE

    if protected_areas is None or protected_areas.empty or region is None or region.is_empty:
        return ""
    geoms = protected_areas.geometry.to_numpy()
    inter = shapely.area(shapely.intersection(geoms, region))
    hit = (inter >= min_area_m2) & (inter >= PA_SHARE * shapely.area(geoms))
    return "; ".join(sorted(set(protected_areas["NAME"].astype(str).to_numpy()[hit])))


def transboundary_patches(
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    resistance: np.ndarray,
    *,
    band_m: float = 5000.0,
    connectivity: int = 8,
    avg_resistances: bool = False,
    tolerance: float = 1e-8,
    borders: gpd.GeoDataFrame | None = None,
    border_field: str = "pair",
    protected_areas: gpd.GeoDataFrame | None = None,
    country_polygons: gpd.GeoDataFrame | None = None,
    country_field: str = "iso3",
) -> gpd.GeoDataFrame:
    r"""Habitat that straddles a border: one row per transboundary patch and pair of countries sharing a border in it.

    * ``border_length_m``: length of the border through the patch (grid edges between the two countries with
      both cells in the patch, × cell size; the border of :func:`fill_countries`);
    * a pairwise circuit (Circuitscape's conventions, :func:`leopardgeo.kernels.circuit.circuit_flow`) on the cells within
      3 × ``band_m`` of that border inside the patch: 1 A between the patch's cells in country a and in country b
      that lie farther than ``band_m`` from the border (all of a side's cells off the border when none lies that
      far).  Cells outside the patch conduct too; farther cells are left out, since the parts beyond ``band_m``
      are short-circuited anyway (this keeps the solve to a strip along the border, not the patch's extent).
      ``eff_resistance`` is the resistance between the two parts (ohms), ``current_share`` the share of the
      current that crosses the border inside the patch (:func:`border_current` summed over the edges in the
      patch), ``peak_current`` the largest current over one grid edge there; the point geometry is that edge's
      midpoint, the patch's main crossing;
    * ``border_line`` / ``border_line_m``: the nearest border line and its distance;
    * ``protected_a`` / ``protected_b``: protected areas (``NAME``) in the patch on each side (at least
      :data:`leopardgeo.stages.patches.PA_SHARE` of a protected area's area, and one cell, in the patch's part in that
      country; the rule that names patches).

    Examples
    --------
    A uniform 4 × 6 patch across a north-south border: the whole current crosses inside it.

    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 600, 400), cell_size_m=100, crs=TEST_CRS)
    >>> lab = np.ones((4, 6), dtype="int32")
    >>> p = gpd.GeoDataFrame({"patch_id": [1], "name": [""], "transboundary": [True], "countries": ["CHN;RUS"],
    ...                       "area_ha_chn": [12.0], "area_ha_rus": [12.0]}, geometry=[shapely.box(0, 0, 600, 400)],
    ...                      crs=TEST_CRS)
    >>> ctry = np.array([[0, 0, 0, 1, 1, 1]] * 4)
    >>> t = transboundary_patches(lab, p, ctry, ["CHN", "RUS"], g, np.ones((4, 6)), band_m=100)
    >>> t[["border", "border_length_m", "current_share"]].round(6).to_dict("records")
    [{'border': 'CHN-RUS', 'border_length_m': 400.0, 'current_share': 1.0}]
    """
    from leopardgeo.core.errors import LeopardGeoError
    from leopardgeo.kernels.circuit import circuit_flow

    labels = np.asarray(labels)
    cidx = fill_countries(np.asarray(countries))
    res = np.asarray(resistance, dtype=float)
    cell = grid.cell_size_m
    reach_m = 3.0 * band_m
    pad = math.ceil(reach_m / cell) + 1
    rows = []
    tb = patches[patches["transboundary"].astype(bool)] if "transboundary" in patches.columns else patches.iloc[:0]
    for prow in tb.itertuples(index=False):
        pid = int(prow.patch_id)
        rr, cc = np.nonzero(labels == pid)
        if len(rr) == 0:
            continue
        wr0, wr1 = max(rr.min() - pad, 0), min(rr.max() + pad + 1, grid.height)
        wc0, wc1 = max(cc.min() - pad, 0), min(cc.max() + pad + 1, grid.width)
        win = np.s_[wr0:wr1, wc0:wc1]
        lab_win, cty_win, res_win = labels[win], cidx[win], res[win]
        inside_win = lab_win == pid
        present = sorted({int(k) for k in np.unique(cty_win[inside_win]) if k >= 0})
        for i, ca in enumerate(present):
            for cb in present[i + 1 :]:
                edges = 0
                bmask = np.zeros(lab_win.shape, dtype=bool)  # cells on this border inside the patch
                for su, sv, _ in _border_edges(cty_win, 4):
                    pair = ((cty_win[su] == ca) & (cty_win[sv] == cb)) | ((cty_win[su] == cb) & (cty_win[sv] == ca))
                    m = pair & inside_win[su] & inside_win[sv]
                    edges += int(m.sum())
                    bmask[su] |= m
                    bmask[sv] |= m
                if edges == 0:
                    continue
                # the circuit runs on the cells within reach_m of this border inside the patch (cropped)
                strip = ndimage.distance_transform_edt(~bmask) * cell <= reach_m
                sr, sc = np.nonzero(strip)
                crop = np.s_[sr.min() : sr.max() + 1, sc.min() : sc.max() + 1]
                r0, c0 = wr0 + sr.min(), wc0 + sc.min()
                cty_w, inside = cty_win[crop], inside_win[crop]
                res_w = np.where(strip[crop], res_win[crop], np.nan)
                focal = np.zeros(cty_w.shape, dtype=np.int32)
                for k, (me, other) in enumerate(((ca, cb), (cb, ca)), start=1):
                    side = inside & (cty_w == me) & np.isfinite(res_w)
                    far = side & (ndimage.distance_transform_edt(cty_w != other) * cell > band_m)
                    if not far.any():
                        far = side & ~border_cells(np.where(np.isin(cty_w, (ca, cb)), cty_w, -1))
                    focal[far] = k
                r_eff = share = peak = math.nan
                pt = None
                if (focal == 1).any() and (focal == 2).any():
                    try:
                        out = circuit_flow(
                            res_w, focal, pairs=[(1, 2)], connectivity=connectivity, avg_resistances=avg_resistances,
                            tolerance=tolerance, voltage_maps=True, workers=1,
                        )
                    except LeopardGeoError as exc:
                        logger.info("patch %d: no circuit across the border (%s)", pid, exc)
                        out = None
                    if out is not None and len(out.resistances) and out.voltages:
                        r_eff = float(out.resistances["eff_resistance"].iloc[0])
                        volts = next(iter(out.voltages.values()))
                        cur, ua, ub = border_current(
                            res_w, volts, cty_w, ca, cb, connectivity=connectivity, avg_resistances=avg_resistances
                        )
                        total = float(cur.sum())
                        if cur.size and math.isfinite(r_eff) and abs(total) > 0:
                            # from a to b; the total is 1 A, less what flows round through a third country
                            cur = cur / total * min(abs(total), 1.0)
                            in_p = inside[ua[:, 0], ua[:, 1]] & inside[ub[:, 0], ub[:, 1]]
                            share = float(cur[in_p].sum())
                            if in_p.any():
                                j = int(np.argmax(np.where(in_p, cur, -np.inf)))
                                peak = float(cur[j])
                                xa, ya = grid.xy(np.array([ua[j, 0] + r0]), np.array([ua[j, 1] + c0]))
                                xb, yb = grid.xy(np.array([ub[j, 0] + r0]), np.array([ub[j, 1] + c0]))
                                pt = shapely.Point((xa[0] + xb[0]) / 2, (ya[0] + yb[0]) / 2)
                if pt is None:  # no circuit: a border cell in the middle of the border's cells inside the patch
                    br, bc = np.nonzero(bmask)
                    j = len(br) // 2
                    x, y = grid.xy(np.array([br[j] + wr0]), np.array([bc[j] + wc0]))
                    pt = shapely.Point(x[0], y[0])
                code_a, code_b = country_codes[ca], country_codes[cb]
                name, dist = _nearest_border(borders, border_field, pt)
                sides = []
                for code in (code_a, code_b):
                    region = None
                    if country_polygons is not None and country_field in country_polygons.columns:
                        poly = shapely.union_all(
                            country_polygons.geometry[country_polygons[country_field].astype(str) == code].to_numpy()
                        )
                        region = shapely.intersection(prow.geometry, poly)
                    sides.append(_side_names(protected_areas, region, grid.cell_size_m**2))
                rows.append(
                    {
                        "patch_id": pid,
                        "name": str(getattr(prow, "name", "") or ""),
                        "border": "-".join(sorted((code_a, code_b))),
                        "country_a": code_a,
                        "country_b": code_b,
                        "area_ha_a": float(getattr(prow, f"area_ha_{code_a.lower()}", math.nan)),
                        "area_ha_b": float(getattr(prow, f"area_ha_{code_b.lower()}", math.nan)),
                        "border_length_m": edges * cell,
                        "eff_resistance": r_eff,
                        "current_share": share,
                        "peak_current": peak,
                        "border_line": name,
                        "border_line_m": dist,
                        "protected_a": sides[0],
                        "protected_b": sides[1],
                        "geometry": pt,
                    }
                )
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in TRANSBOUNDARY_COLUMNS}, geometry=[], crs=grid.crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)


@dataclass(frozen=True)
class CrossBorderResult:
    """Outputs of the cross-border stage.

    Attributes
    ----------
    crossings
        :func:`border_crossings` points.
    permeability
        :func:`border_permeability` segments (empty without border lines).
    fence
        The fence scenario (:func:`compare_fenced`), or None when ``fence = "none"``.
    fence_mask
        bool raster of fence cells (None without a scenario).
    transboundary
        :func:`transboundary_patches` (empty when no patch straddles a border).
    routes
        :func:`crossing_routes`: every crossing route, ranked.
    """

    crossings: gpd.GeoDataFrame
    permeability: gpd.GeoDataFrame
    fence: FenceScenario | None = None
    fence_mask: np.ndarray | None = None
    transboundary: gpd.GeoDataFrame | None = None
    routes: gpd.GeoDataFrame | None = None


#: Columns of the ranked cross-border corridor table, in order.
CROSSBORDER_COLUMNS = (
    "rank",
    "from_id",
    "from_name",
    "to_id",
    "to_name",
    "countries",
    "kind",
    "score",
    "cwd",
    "corridor_width_m",
    "pinch_current",
    "dPC_link",
    "crossing_lon",
    "crossing_lat",
    "border",
    "protected_areas",
)


def crossborder_corridors(graph: nx.Graph, crossings: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """The cross-border links ranked by ``score`` (then ``cwd``): one row per link with ``crosses_border``.

    ``crossing_lon`` / ``crossing_lat`` (WGS 84) are the link's first border crossing; ``protected_areas`` the
    protected-area names of the two patches it joins (patch attribute ``name``).  ``corridor_width_m`` is the
    link's own (the corridor's narrowest width, as in the links table; NaN where the link has none).  Seams
    (``kind = "touching"``, patches that touch) have no score and come last.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_node(1, name="Land of the Leopard"); G.add_node(2, name="NE China Tiger and Leopard")
    >>> G.add_edge(1, 2, cwd=500.0, countries="CHN;RUS", crosses_border=True, score=80.0)
    >>> crossborder_corridors(G)[["rank", "from_name", "to_name", "countries"]].to_dict("records")
    [{'rank': 1, 'from_name': 'Land of the Leopard', 'to_name': 'NE China Tiger and Leopard', 'countries': 'CHN;RUS'}]
    """
    from leopardgeo.stages.graph import CORRIDOR, link_kind

    first: dict[tuple[int, int], tuple[float, float, str]] = {}
    if crossings is not None and len(crossings):
        ll = crossings.to_crs("EPSG:4326") if crossings.crs is not None else crossings
        for row, pt in zip(crossings.itertuples(index=False), ll.geometry, strict=True):
            key = (int(row.patch_a), int(row.patch_b))
            first.setdefault(key, (round(pt.x, 4), round(pt.y, 4), str(row.border)))
    rows = []
    for u, v, d in graph.edges(data=True):
        if not d.get("crosses_border"):
            continue
        a, b = min(u, v), max(u, v)
        na, nb = (str(graph.nodes[n].get("name") or "") for n in (a, b))
        lon, lat, border = first.get((a, b), (math.nan, math.nan, ""))
        rows.append(
            {
                "from_id": a,
                "from_name": na,
                "to_id": b,
                "to_name": nb,
                "countries": str(d.get("countries", "")),
                "kind": link_kind(d),
                "score": float(d.get("score", math.nan)),
                "cwd": float(d.get("cwd", math.nan)),
                "corridor_width_m": float(d.get("corridor_width_m", math.nan)),
                "pinch_current": float(d.get("pinch_current", math.nan)),
                "dPC_link": float(d.get("dPC_link", math.nan)),
                "crossing_lon": lon,
                "crossing_lat": lat,
                "border": border,
                "protected_areas": "; ".join(x for x in (na, nb) if x),
            }
        )
    t = pd.DataFrame(rows, columns=[c for c in CROSSBORDER_COLUMNS if c != "rank"])
    t["seam"] = t["kind"] != CORRIDOR
    t["score_key"] = t["score"].fillna(-math.inf)
    t = t.sort_values(["seam", "score_key", "cwd"], ascending=[True, False, True], kind="stable")
    t = t.drop(columns=["score_key", "seam"])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t.reset_index(drop=True)


#: Columns of :func:`crossing_routes`, in order.
ROUTE_COLUMNS = (
    "rank",
    "route",
    "route_id",
    "importance_dpc",
    "country_a",
    "patch_a",
    "protected_a",
    "country_b",
    "patch_b",
    "protected_b",
    "crossing_lon",
    "crossing_lat",
    "border",
    "border_segment",
    "border_line_m",
    "cwd",
    "corridor_width_m",
    "border_length_m",
    "current",
    "current_share",
)


def crossing_importance(
    graph: nx.Graph,
    patch_ids: Sequence[int],
    labels: np.ndarray,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    *,
    attribute: str = "area_ha",
    weight: str = "cwd",
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    landscape_area: float | None = None,
    min_probability: float | None = None,
) -> dict[int, float]:
    r"""Importance of each transboundary patch as a crossing: % of PC lost when it is cut at the border.

    .. math:: \mathrm{dPC_{cut}} = 100\,(PC - PC_{cut}) / PC

    with :math:`PC_{cut}` the probability of connectivity (Saura & Pascual-Hortal 2007) of :func:`cut_graph`, the
    patch's national parts with no passage between them, on the same kernel and landscape area.  It is the
    transboundary patch's counterpart of a link's ``dPC_link`` (PC lost without the link), so links and
    patches rank on one scale (:func:`crossing_routes`).

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 200, 100), cell_size_m=100, crs=TEST_CRS)
    >>> G = nx.Graph(); G.add_node(1, area_ha=2.0, area_ha_chn=1.0, area_ha_rus=1.0, countries="CHN;RUS")
    >>> crossing_importance(G, [1], np.ones((1, 2), "int32"), np.array([[0, 1]]), ["CHN", "RUS"], g)  # 4 -> 2
    {1: 50.0}
    """
    from leopardgeo.stages.metrics import connectivity_metrics

    kw = {
        "attribute": attribute,
        "weight": weight,
        "median_distance": median_distance,
        "probability": probability,
        "min_probability": min_probability,
        "links": False,  # PC alone: no link importance needed
    }
    if landscape_area is None:
        landscape_area = float(sum(float(d.get(attribute, 0.0)) for _, d in graph.nodes(data=True)))
    pc = connectivity_metrics(graph, landscape_area=landscape_area, **kw).summary["PC"]
    out = {}
    for pid in patch_ids:
        cut = cut_graph(graph, int(pid), labels, countries, country_codes, grid, attribute=attribute)
        pc_cut = connectivity_metrics(cut, landscape_area=landscape_area, **kw).summary["PC"]
        out[int(pid)] = 100.0 * (pc - pc_cut) / pc if pc > 0 else 0.0
    return out


def _nearest_segment(permeability: gpd.GeoDataFrame | None, pts: np.ndarray) -> list[float]:
    if permeability is None or permeability.empty or len(pts) == 0:
        return [math.nan] * len(pts)
    tree = shapely.STRtree(permeability.geometry.to_numpy())
    idx = tree.nearest(pts)
    return [float(permeability["segment"].iloc[int(i)]) for i in idx]


def crossing_routes(
    graph: nx.Graph,
    crossings: gpd.GeoDataFrame | None,
    transboundary: gpd.GeoDataFrame | None,
    *,
    importance: dict[int, float] | None = None,
    permeability: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Every route leopards can take across a border, ranked: where they cross, and what closing it would cost.

    Two kinds of route, one row each:

    * ``link``: a least-cost link whose path crosses a border (``crosses_border``, seams excluded), at its first
      crossing; sides a and b are the countries before and after the crossing, with the patch and its
      protected areas (patch ``name``) on each side; ``current`` is the cumulative current density at the
      crossing cell (circuit stage);
    * ``transboundary patch``: habitat straddling the border (:func:`transboundary_patches`), at its main
      crossing; ``border_length_m`` of border through habitat, ``current_share`` of the current between its
      national parts that crosses inside it.

    ``importance_dpc`` is the % of the network's probability of connectivity lost if the route were closed:
    ``dPC_link`` for a link (the link removed), :func:`crossing_importance` for a transboundary patch (cut at
    every border it straddles, with no passage).  Routes rank by it (NaN last, then by ``cwd``); the rows of a
    patch across several borders share its importance and follow each other, the border carrying most
    (``border_length_m`` × ``current_share``) first.  ``border_segment`` is the
    nearest segment of the border-permeability profile.  Point geometry: the crossing.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node(1, name="A", countries="CHN"); G.add_node(2, name="B", countries="RUS")
    >>> G.add_edge(1, 2, cwd=900.0, euclid_m=500.0, crosses_border=True, dPC_link=3.0)
    >>> x = gpd.GeoDataFrame({"patch_a": [1], "patch_b": [2], "border": ["CHN-RUS"], "from_country": ["CHN"],
    ...                       "to_country": ["RUS"], "current": [0.2], "border_line_m": [40.0]},
    ...                      geometry=[shapely.Point(0, 0)], crs="EPSG:32652")
    >>> crossing_routes(G, x, None)[["rank", "route", "route_id", "importance_dpc", "patch_a", "patch_b"]].to_dict("records")
    [{'rank': 1, 'route': 'link', 'route_id': '1-2', 'importance_dpc': 3.0, 'patch_a': 'A', 'patch_b': 'B'}]
    """
    from leopardgeo.stages.graph import CORRIDOR, link_kind

    importance = importance or {}
    rows = []
    first: dict[tuple[int, int], object] = {}
    if crossings is not None and len(crossings):
        for row in crossings.itertuples(index=False):
            first.setdefault((int(row.patch_a), int(row.patch_b)), row)
    for u, v, d in graph.edges(data=True):
        if not d.get("crosses_border") or link_kind(d) != CORRIDOR:
            continue
        a, b = min(u, v), max(u, v)
        x = first.get((a, b))
        name = {n: str(graph.nodes[n].get("name") or "") for n in (a, b)}
        rows.append(
            {
                "route": "link",
                "route_id": f"{a}-{b}",
                "importance_dpc": float(d.get("dPC_link", math.nan)),
                "country_a": str(x.from_country) if x is not None else "",
                "patch_a": name[a] or f"patch {a}",
                "protected_a": name[a],
                "country_b": str(x.to_country) if x is not None else "",
                "patch_b": name[b] or f"patch {b}",
                "protected_b": name[b],
                "border": str(x.border) if x is not None else "",
                "border_line_m": float(getattr(x, "border_line_m", math.nan)) if x is not None else math.nan,
                "cwd": float(d.get("cwd", math.nan)),
                "corridor_width_m": float(d.get("corridor_width_m", math.nan)),
                "border_length_m": math.nan,
                "current": float(getattr(x, "current", math.nan)) if x is not None else math.nan,
                "current_share": math.nan,
                "geometry": x.geometry if x is not None else None,
            }
        )
    if transboundary is not None:
        for t in transboundary.itertuples(index=False):
            label = str(t.name) or f"patch {int(t.patch_id)}"
            rows.append(
                {
                    "route": "transboundary patch",
                    "route_id": str(int(t.patch_id)),
                    "importance_dpc": float(importance.get(int(t.patch_id), math.nan)),
                    "country_a": str(t.country_a),
                    "patch_a": label,
                    "protected_a": str(t.protected_a),
                    "country_b": str(t.country_b),
                    "patch_b": label,
                    "protected_b": str(t.protected_b),
                    "border": str(t.border),
                    "border_line_m": float(t.border_line_m),
                    "cwd": math.nan,
                    "corridor_width_m": math.nan,
                    "border_length_m": float(t.border_length_m),
                    "current": float(t.peak_current),
                    "current_share": float(t.current_share),
                    "geometry": t.geometry,
                }
            )
    crs = crossings.crs if crossings is not None else (transboundary.crs if transboundary is not None else None)
    cols = [c for c in ROUTE_COLUMNS if c not in ("rank", "crossing_lon", "crossing_lat", "border_segment")]
    if not rows:
        empty = {c: [] for c in ROUTE_COLUMNS}
        return gpd.GeoDataFrame(empty, geometry=[], crs=crs)
    t = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)[[*cols, "geometry"]]
    has = t.geometry.notna() & ~t.geometry.is_empty
    lon = np.full(len(t), np.nan)
    lat = np.full(len(t), np.nan)
    if has.any() and crs is not None:
        ll = t[has].to_crs("EPSG:4326").geometry
        lon[has.to_numpy()] = ll.x.round(4).to_numpy()
        lat[has.to_numpy()] = ll.y.round(4).to_numpy()
    t["crossing_lon"] = lon
    t["crossing_lat"] = lat
    seg = np.full(len(t), np.nan)
    seg[has.to_numpy()] = _nearest_segment(permeability, t.geometry[has].to_numpy())
    t["border_segment"] = seg
    t["key"] = t["importance_dpc"].fillna(-math.inf)
    t["cwd_key"] = t["cwd"].fillna(0.0)
    t["flow_key"] = (t["border_length_m"] * t["current_share"]).fillna(0.0)
    t = t.sort_values(["key", "cwd_key", "flow_key"], ascending=[False, True, False], kind="stable")
    t = t.drop(columns=["key", "cwd_key", "flow_key"])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return gpd.GeoDataFrame(t[[*ROUTE_COLUMNS, "geometry"]].reset_index(drop=True), geometry="geometry", crs=crs)


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class CrossBorderConfig:
    """Where links cross national borders and how permeable each border stretch is."""

    enabled: bool = _f(True, doc="map border crossings and border permeability in `leopardgeo run` (needs [inputs] borders)")
    segment_m: float = _f(5000.0, doc="length of the border segments of the permeability profile, metres")
    fence: FenceMode = _f(
        FenceMode.IMPASSABLE,
        doc=(
            "border-fence scenario: none, impassable (border cells become no data except at fence_gaps) or penalty "
            "(fence_penalty added to their resistance); links and metrics are recomputed and the losses reported"
        ),
    )
    fence_penalty: float = _f(1000.0, doc="resistance added to border cells when fence = 'penalty'")
    fence_gaps: tuple[tuple[float, float], ...] = _f(
        (), doc="openings in the fence as [longitude, latitude] pairs (WGS 84), e.g. river crossings or wildlife passages"
    )
    gap_width_m: float = _f(1000.0, doc="width of each fence opening, metres (border cells within half of it stay open)")
    band_m: float = _f(
        5000.0,
        doc=(
            "current across the border inside a transboundary patch flows between its national parts farther than "
            "this from the border, metres"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "crossborder")
        _positive(self.band_m, "crossborder.band_m")
        _positive(self.segment_m, "crossborder.segment_m")
        _positive(self.fence_penalty, "crossborder.fence_penalty")
        _positive(self.gap_width_m, "crossborder.gap_width_m")
        gaps = tuple(tuple(float(v) for v in g) for g in self.fence_gaps)
        bad = [g for g in gaps if len(g) != 2 or not (-180 <= g[0] <= 180 and -90 <= g[1] <= 90)]
        if bad:
            msg = (
                f"[crossborder] fence_gaps: expected [longitude, latitude] pairs in degrees, found {list(bad[0])!r}. "
                "Write e.g. fence_gaps = [[130.95, 42.95]]."
            )
            raise ConfigError(msg)
        object.__setattr__(self, "fence_gaps", gaps)


# ---------------------------------------------------------------------- the stage
def compute_crossborder(
    cfg: RunConfigLike,
    inputs: Inputs,
    graph: nx.Graph,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    corridors: CorridorResult | None = None,
    circuit: CircuitResult | None = None,
    metrics: MetricsResult | None = None,
    territories: TerritoryResult | None = None,
) -> CrossBorderResult:
    """Cross-border connectivity: links across borders, transboundary patches, every crossing route ranked, the fence.

    (a) links whose least-cost path crosses a border, with the crossing point; (b) patches that straddle a border
    (:func:`leopardgeo.stages.crossborder.transboundary_patches`: border length through habitat and the current across
    it); both ranked by the PC lost if closed (:func:`leopardgeo.stages.crossborder.crossing_routes`).  (c) The fence
    scenario cuts the patches at the border (:func:`leopardgeo.stages.crossborder.split_at_border`), fences the border
    on the resistance, reruns the links and the metrics with the same parameters, and compares (PC / EC,
    capacity reachable, links lost or lengthened; :func:`leopardgeo.stages.crossborder.compare_fenced`).
    """
    cb = cfg.crossborder
    mark_crosses_border(graph)
    grid = inputs.grid
    cidx, codes = country_raster(inputs.countries, grid, cfg.inputs.country_field)
    cur = circuit.cum_current if circuit is not None else None
    borders = None
    if inputs.borders is not None and not inputs.borders.empty:
        extent = shapely.box(*grid.bounds)
        borders = inputs.borders.assign(geometry=inputs.borders.geometry.intersection(extent))
        borders = borders[~borders.geometry.is_empty]
    crossings = border_crossings(graph, cidx, codes, grid, borders=borders, corridors=corridors, current=cur)
    if borders is not None:
        cor = corridors.table if corridors is not None else None
        perm = border_permeability(borders, grid, current=cur, corridors=cor, segment_m=cb.segment_m)
    else:
        perm = gpd.GeoDataFrame({"border": [], "segment": [], "length_m": []}, geometry=[], crs=grid.crs)
    tb = None
    importance: dict[int, float] = {}
    if codes:
        tb = transboundary_patches(
            labels, patches, cidx, codes, grid, resistance,
            band_m=cb.band_m, connectivity=cfg.circuit.connectivity, avg_resistances=cfg.circuit.avg_resistances,
            tolerance=cfg.circuit.tolerance, borders=borders, protected_areas=inputs.protected_areas,
            country_polygons=inputs.countries, country_field=cfg.inputs.country_field,
        )  # fmt: skip
        if len(tb):
            m = cfg.metrics
            importance = crossing_importance(
                graph, sorted(set(tb["patch_id"].astype(int))), labels, cidx, codes, grid,
                attribute=m.attribute, weight=m.distance, median_distance=m.median_dispersal,
                probability=m.probability, landscape_area=_landscape_area(cfg, inputs), min_probability=m.min_probability,
            )  # fmt: skip
    routes = crossing_routes(graph, crossings, tb, importance=importance, permeability=perm if len(perm) else None)
    if cb.fence is FenceMode.NONE or not codes:
        return CrossBorderResult(crossings, perm, transboundary=tb, routes=routes)
    # the fence is the scenario edit `border_fence` (leopardgeo.stages.scenario), here with [crossborder]'s settings
    from leopardgeo.config.scenario import EditConfig, EditKind
    from leopardgeo.stages.scenario import apply_resistance_edits, edit_frame

    fence = EditConfig(
        kind=EditKind.BORDER_FENCE, name="border fence", mode=str(cb.fence), penalty=cb.fence_penalty,
        width_m=cb.gap_width_m, coords=cb.fence_gaps,
    )  # fmt: skip
    fenced, where = apply_resistance_edits(resistance, grid, [(fence, edit_frame(fence, grid))], countries=cidx)
    mask = where.barrier
    part_labels, parts = split_at_border(
        labels, patches, cidx, grid, country_codes=codes, connectivity=cfg.patches.connectivity
    )
    attr = cfg.metrics.attribute
    if attr not in parts.columns and attr in patches.columns:  # a quality-weighted area: the part's share of it
        parts[attr] = patches.set_index("patch_id")[attr].reindex(parts["parent_id"]).to_numpy() * parts["share"]
    # parts lying wholly under the fence (slivers between the fence band and the border) cannot start a link:
    # they stay in the network as isolated nodes, so their habitat counts in PC / EC after the fence
    passable = np.bincount(part_labels.ravel(), weights=np.isfinite(fenced).ravel(), minlength=len(parts) + 1)[1:]
    blocked = parts["patch_id"].to_numpy()[passable[parts["patch_id"].to_numpy() - 1] == 0]
    run_labels = np.where(np.isin(part_labels, blocked), 0, part_labels).astype(part_labels.dtype)
    after, _ = compute_links(
        cfg, inputs, fenced, run_labels, parts[~parts["patch_id"].isin(blocked)], stage="border-fence scenario",
        isolated_hint="Expected when the fence cuts them off: see the fence_links layer and newly_isolated in fence.json.",
    )  # fmt: skip
    for row in parts[parts["patch_id"].isin(blocked)].itertuples(index=False):
        after.add_node(int(row.patch_id), **row._asdict())
    mark_crosses_border(after)
    if metrics is None:
        metrics = compute_metrics(cfg, inputs, graph)
    after_metrics = compute_metrics(cfg, inputs, after)
    capacity = None
    if territories is not None and len(territories.table) and codes and "country" in territories.table.columns:
        t = territories.table
        capacity = pd.DataFrame(
            {
                "patch_id": t["patch"].astype(int),
                "country": [codes[int(c) - 1] if int(c) > 0 else "" for c in t["country"]],
                "adults": 1.0,
            }
        )
    scenario = compare_fenced(graph, after, parts, metrics.summary, after_metrics.summary, crs=grid.crs, capacity=capacity)
    scenario.summary.update({"fence": str(cb.fence), "fence_cells": int(mask.sum()), "gaps": [list(g) for g in cb.fence_gaps]})
    return CrossBorderResult(crossings, perm, scenario, mask, transboundary=tb, routes=routes)


def crossborder_layers(xb: CrossBorderResult) -> dict[str, gpd.GeoDataFrame]:
    """GeoPackage layers of the cross-border stage: crossings, permeability, transboundary patches, routes, fence links."""
    layers = {"border_crossings": xb.crossings, "border_permeability": xb.permeability}
    if xb.transboundary is not None:
        layers["transboundary_patches"] = xb.transboundary
    if xb.routes is not None:
        layers["crossing_routes"] = xb.routes[xb.routes.geometry.notna()]
    if xb.fence is not None:
        layers["fence_links"] = xb.fence.links[xb.fence.links.geometry.notna()]
    return layers


def fence_report(xb: CrossBorderResult) -> dict[str, Any]:
    """``fence.json``: the fence scenario's summary and every link's status."""
    if xb.fence is None:
        return {}
    return {"summary": xb.fence.summary, "links": json_records(pd.DataFrame(xb.fence.links.drop(columns="geometry")))}


def _write_crossborder(writer: OutputWriter, xb: CrossBorderResult, grid: Grid) -> None:
    if xb.fence is not None and xb.fence_mask is not None:
        writer.text("fence.json", json.dumps(fence_report(xb), indent=1, ensure_ascii=False))
        writer.raster("fence.tif", xb.fence_mask.astype("uint8"), grid, nodata=None, description=RASTERS["fence.tif"])


STAGE = Stage(
    "crossborder",
    "cross-border evaluation and fence scenario",
    lambda cfg, c: {
        "crossborder": compute_crossborder(
            cfg,
            c["inputs"],
            c["graph"],
            c["resistance"],
            c["labels"],
            c["patches"],
            c.get("corridors"),
            c.get("circuit"),
            c.get("metrics"),
            c.get("territories"),
        )
    },
    config=(Section("crossborder", CrossBorderConfig, "cross-border evaluation"),),
    needs=("inputs", "resistance", "patches", "links"),
    # corridors and current at the crossings, the metrics before the fence, the adults the fence separates
    uses=("corridors", "circuit", "metrics", "territories"),
    after=("pinch_points", "barriers"),  # the graph's in-place chain
    produces=("crossborder",),
    mutates=("graph", "patches"),
    enabled=lambda cfg: cfg.crossborder.enabled,
    outputs=("fence.tif", "fence.json"),
    files=lambda cfg: ("fence.json", "fence.tif") if cfg.crossborder.fence is not FenceMode.NONE else (),
    layers=lambda cfg, c: crossborder_layers(c["crossborder"]),
    write=lambda writer, cfg, c: _write_crossborder(writer, c["crossborder"], c["inputs"].grid),
)
