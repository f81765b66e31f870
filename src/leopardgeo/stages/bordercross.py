"""Where least-cost paths cross national borders, and how permeable each border stretch is.

* :func:`border_crossings` — one point where each link's least-cost path
  crosses a border line, with the link, its ``cwd``, the border pair, the width
  of the link's truncated corridor along the border there (m) and the
  cumulative current density at the crossing cell.
* :func:`border_permeability` — the border cut into segments of equal length
  (default 5 km), each with the current density summed over the cells the
  segment passes through, the largest current density, and the number of
  truncated corridors crossing it.
* :func:`border_current` — current through the border edges of the circuit.
* :func:`mark_crosses_border` — the ``crosses_border`` edge attribute (the
  path passes through more than one country).

The ``crossborder`` stage (:mod:`leopardgeo.stages.crossborder`) calls these.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import networkx as nx
import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely
import shapely.ops
from rasterio.features import rasterize

from leopardgeo.core.errors import AlignmentError, ConfigError
from leopardgeo.core.grid import Grid
from leopardgeo.stages.corridors import CorridorResult, CorridorWindow


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
