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

import logging
import math

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
import shapely.ops
from rasterio.features import rasterize

from leopardgeo.errors import ConfigError
from leopardgeo.grid import Grid

__all__ = ["border_crossings", "border_permeability", "mark_crosses_border"]

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


def _points(geom: shapely.Geometry) -> list[shapely.Point]:
    if geom is None or geom.is_empty:
        return []
    parts = shapely.get_parts(shapely.extract_unique_points(geom))
    return list(parts)


def _sample(raster: np.ndarray | None, grid: Grid, pt: shapely.Point) -> float:
    if raster is None:
        return math.nan
    col, row = ~grid.transform * (pt.x, pt.y)
    r, c = math.floor(row), math.floor(col)
    if 0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]:
        return float(raster[r, c])
    return math.nan


def border_crossings(
    graph: nx.Graph,
    borders: gpd.GeoDataFrame,
    grid: Grid,
    *,
    corridors: gpd.GeoDataFrame | None = None,
    current: np.ndarray | None = None,
    border_field: str = "pair",
) -> gpd.GeoDataFrame:
    """Points where the links' least-cost paths cross the border lines.

    Parameters
    ----------
    graph
        Patch graph whose edges carry ``geometry`` (the least-cost path), ``cwd``, ``patch_a``, ``patch_b``.
    borders
        Border lines in the grid's CRS (e.g. the ``borders`` layer, ``pair`` = "CN-RU").
    grid
        The analysis grid (for sampling ``current``).
    corridors
        Optional truncated corridor polygons (``patch_a``, ``patch_b``, geometry): the length of border
        inside the link's corridor, in the piece touching the crossing, is its ``corridor_width_m`` there.
    current
        Optional cumulative current density raster on ``grid``; sampled at the crossing.
    border_field
        Column naming each border line.

    Returns
    -------
    geopandas.GeoDataFrame
        Points with ``patch_a``, ``patch_b``, ``cwd``, ``border``, ``corridor_width_m``, ``current``.

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=100, crs=TEST_CRS)
    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, patch_a=1, patch_b=2, cwd=900.0, geometry=shapely.LineString([(50, 550), (950, 550)]))
    >>> b = gpd.GeoDataFrame({"pair": ["A-B"]}, geometry=[shapely.LineString([(500, 0), (500, 1000)])], crs=TEST_CRS)
    >>> border_crossings(G, b, g)[["patch_a", "patch_b", "border"]].to_dict("records")
    [{'patch_a': 1, 'patch_b': 2, 'border': 'A-B'}]
    """
    rows = []
    cor = {}
    if corridors is not None and len(corridors):
        cor = {(int(r.patch_a), int(r.patch_b)): r.geometry for r in corridors.itertuples()}
    names = borders[border_field].astype(str).to_numpy() if border_field in borders.columns else np.full(len(borders), "")
    lines = borders.geometry.to_numpy()
    tree = shapely.STRtree(lines)
    for u, v, d in graph.edges(data=True):
        path = d.get("geometry")
        if path is None or path.is_empty:
            continue
        a, b = min(u, v), max(u, v)
        for j in tree.query(path, predicate="intersects"):
            for pt in _points(shapely.intersection(path, lines[j])):
                width = math.nan
                poly = cor.get((a, b))
                if poly is not None and not poly.is_empty:
                    inside = shapely.intersection(lines[j], poly)
                    pieces = [p for p in shapely.get_parts(inside) if p.distance(pt) < grid.cell_size_m]
                    width = float(sum(p.length for p in pieces)) if pieces else math.nan
                rows.append(
                    {
                        "patch_a": a,
                        "patch_b": b,
                        "cwd": float(d.get("cwd", math.nan)),
                        "border": str(names[j]),
                        "corridor_width_m": width,
                        "current": _sample(current, grid, pt),
                        "geometry": pt,
                    }
                )
    cols = ["patch_a", "patch_b", "cwd", "border", "corridor_width_m", "current"]
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
