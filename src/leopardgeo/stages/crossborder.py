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
from collections.abc import Sequence
from dataclasses import dataclass

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

__all__ = [
    "CROSSBORDER_COLUMNS",
    "CrossBorderResult",
    "FenceScenario",
    "border_cells",
    "border_crossings",
    "border_permeability",
    "compare_networks",
    "crossborder_corridors",
    "crossing_table",
    "fence_resistance",
    "fill_countries",
    "mark_crosses_border",
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


def border_cells(countries: np.ndarray) -> np.ndarray:
    """Cells with a country (index >= 0) that have a 4-neighbour in another country: the border as the grid sees it.

    Both sides are marked, so the band is two cells wide and no 8-neighbour (or knight's) move crosses it
    without touching a marked cell.

    Examples
    --------
    >>> c = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [-1, -1, -1, -1]])
    >>> border_cells(c).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    c = np.asarray(countries)
    valid = c >= 0
    out = np.zeros(c.shape, dtype=bool)
    for a, b, sa, sb in (
        (c[:, :-1], c[:, 1:], np.s_[:, :-1], np.s_[:, 1:]),
        (c[:-1, :], c[1:, :], np.s_[:-1, :], np.s_[1:, :]),
    ):
        diff = (a != b) & valid[sa] & valid[sb]
        out[sa] |= diff
        out[sb] |= diff
    return out


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
        Optional :class:`~leopardgeo.stages.corridors.CorridorResult`: ``corridor_width_m`` is then the length of border
        (cells × cell size) inside the link's truncated corridor at the crossing.
    current
        Optional cumulative current density raster; ``current`` is the larger value of the two cells.

    Returns
    -------
    geopandas.GeoDataFrame
        Points with ``patch_a``, ``patch_b``, ``cwd``, ``border`` (e.g. ``CHN-RUS``), ``from_country``,
        ``to_country`` (in the direction patch_a → patch_b), ``corridor_width_m``, ``current``, ``border_line``,
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
                        "corridor_width_m": width * grid.cell_size_m,
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
        "corridor_width_m",
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


def fill_countries(countries: np.ndarray) -> np.ndarray:
    """Give cells without a country (-1) the country of the nearest cell that has one.

    Country polygons from one source rarely tile the land exactly (slivers between neighbours, lakes and
    rivers on the border); a fence must not leave those cells open.

    Examples
    --------
    >>> fill_countries(np.array([[0, -1, -1, 1]]))
    array([[0, 0, 1, 1]])
    """
    c = np.asarray(countries)
    missing = c < 0
    if not missing.any() or missing.all():
        return c.copy()
    idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    return c[tuple(idx)]


def fence_resistance(
    resistance: np.ndarray,
    countries: np.ndarray,
    grid: Grid,
    *,
    mode: str = "impassable",
    penalty: float = 1000.0,
    gaps_xy: Sequence[tuple[float, float]] = (),
    gap_width_m: float = 1000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resistance with a fence on every national border of the country raster, open at the gaps.

    The fence is :func:`border_cells` of the country raster with gaps between countries filled
    (:func:`fill_countries`), two cells wide, so no diagonal or knight's move slips through.  Each gap
    is snapped to the nearest fence cell; fence cells within ``gap_width_m / 2`` of that cell stay open, and at
    least those within √2 cells, so that an opening always spans both sides of the band.

    Parameters
    ----------
    resistance
        Resistance on ``grid`` (NaN = no data).
    countries
        Country index raster (-1 = none).
    grid
        The analysis grid.
    mode
        ``"impassable"`` (fence cells become NaN) or ``"penalty"`` (``penalty`` added to their resistance).
    gaps_xy
        Openings as (x, y) in the grid's CRS.
    gap_width_m
        Width of each opening, metres.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The fenced resistance (a copy) and the bool mask of fence cells (open gaps excluded).

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 400, 500), cell_size_m=100, crs=TEST_CRS)
    >>> ctry = np.array([[0, 0, 1, 1]] * 5)
    >>> res, fence = fence_resistance(np.ones((5, 4)), ctry, g, gaps_xy=[(210, 250)], gap_width_m=100)
    >>> fence.astype(int)
    array([[0, 1, 1, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 1, 1, 0]])
    >>> int(np.isnan(res).sum())
    4
    """
    if mode not in ("impassable", "penalty"):
        msg = f"fence mode: expected 'impassable' or 'penalty', found {mode!r}."
        raise ConfigError(msg)
    res = np.asarray(resistance)
    if res.shape != grid.shape or np.shape(countries) != grid.shape:
        msg = (
            f"fence: expected resistance and countries of the grid's shape {grid.shape}, "
            f"found {res.shape} and {np.shape(countries)}."
        )
        raise AlignmentError(msg)
    fence = border_cells(fill_countries(countries)) & np.isfinite(res)
    if len(gaps_xy) and fence.any():
        fr, fc = np.nonzero(fence)
        fx, fy = grid.xy(fr, fc)
        for gx, gy in gaps_xy:
            d2 = (fx - gx) ** 2 + (fy - gy) ** 2
            i = int(np.argmin(d2))
            logger.info("fence gap at (%.0f, %.0f) snapped %.0f m to the border", gx, gy, math.sqrt(d2[i]))
            radius = max(gap_width_m / 2, math.sqrt(2) * grid.cell_size_m)
            open_ = (fx - fx[i]) ** 2 + (fy - fy[i]) ** 2 <= radius**2 * (1 + 1e-9)
            fence[fr[open_], fc[open_]] = False
    out = res.astype(np.float64 if res.dtype == np.float64 else np.float32, copy=True)
    if mode == "impassable":
        out[fence] = np.nan
    else:
        out[fence] += penalty
    return out, fence


@dataclass(frozen=True)
class FenceScenario:
    """What a border fence costs the network (:func:`compare_networks`).

    Attributes
    ----------
    summary
        ``PC_before``, ``PC_after``, ``PC_loss_pct``, ``EC_before_ha``, ``EC_after_ha``, ``EC_loss_pct``,
        ``components_before``, ``components_after``, ``links_before``, ``links_after``, ``links_vanished``,
        ``links_lengthened``, ``newly_isolated`` (patch ids).
    links
        One row per link of either network: ``patch_a``, ``patch_b``, ``cwd_before``, ``cwd_after``,
        ``change_pct``, ``status`` (vanished, lengthened, unchanged, shortened or new), ``crosses_border``, geometry
        (the path before, or after for new links).
    graph
        The network with the fence.
    """

    summary: dict
    links: gpd.GeoDataFrame
    graph: nx.Graph


def compare_networks(
    before: nx.Graph, after: nx.Graph, metrics_before: dict, metrics_after: dict, *, crs: object = None, rtol: float = 1e-6
) -> FenceScenario:
    """Compare a network with the same network under a scenario: PC / EC lost, links vanished or lengthened, isolation.

    Examples
    --------
    >>> b = nx.Graph(); b.add_edge(1, 2, cwd=10.0); b.add_edge(2, 3, cwd=5.0)
    >>> a = nx.Graph(); a.add_nodes_from([1, 2, 3]); a.add_edge(2, 3, cwd=8.0)
    >>> s = compare_networks(b, a, {"PC": 0.5, "EC_ha": 10.0, "components": 1}, {"PC": 0.4, "EC_ha": 9.0, "components": 2})
    >>> round(s.summary["PC_loss_pct"], 6), s.summary["newly_isolated"], s.links["status"].tolist()
    (20.0, [1], ['vanished', 'lengthened'])
    """
    keys = sorted({(min(u, v), max(u, v)) for u, v in before.edges} | {(min(u, v), max(u, v)) for u, v in after.edges})
    rows = []
    for a, b in keys:
        d0 = before.edges[a, b] if before.has_edge(a, b) else None
        d1 = after.edges[a, b] if after.has_edge(a, b) else None
        c0 = float(d0["cwd"]) if d0 is not None else math.nan
        c1 = float(d1["cwd"]) if d1 is not None else math.nan
        if d1 is None:
            status = "vanished"
        elif d0 is None:
            status = "new"
        elif c1 > c0 * (1 + rtol):
            status = "lengthened"
        elif c1 < c0 * (1 - rtol):
            status = "shortened"
        else:
            status = "unchanged"
        src = d0 if d0 is not None else d1
        rows.append(
            {
                "patch_a": a,
                "patch_b": b,
                "cwd_before": c0,
                "cwd_after": c1,
                "change_pct": 100.0 * (c1 - c0) / c0 if d0 is not None and d1 is not None and c0 > 0 else math.nan,
                "status": status,
                "crosses_border": bool(src.get("crosses_border", False)),
                "geometry": src.get("geometry"),
            }
        )
    cols = ["patch_a", "patch_b", "cwd_before", "cwd_after", "change_pct", "status", "crosses_border"]
    links = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
        if rows
        else gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=crs)
    )
    isolated = sorted(int(n) for n in after.nodes if after.degree(n) == 0 and before.has_node(n) and before.degree(n) > 0)

    def loss(x0: float, x1: float) -> float:
        return 100.0 * (x0 - x1) / x0 if x0 > 0 else 0.0

    pc0, pc1 = float(metrics_before["PC"]), float(metrics_after["PC"])
    ec0, ec1 = float(metrics_before["EC_ha"]), float(metrics_after["EC_ha"])
    summary = {
        "PC_before": pc0,
        "PC_after": pc1,
        "PC_loss_pct": loss(pc0, pc1),
        "EC_before_ha": ec0,
        "EC_after_ha": ec1,
        "EC_loss_pct": loss(ec0, ec1),
        "components_before": int(metrics_before.get("components", nx.number_connected_components(before))),
        "components_after": int(metrics_after.get("components", nx.number_connected_components(after))),
        "links_before": before.number_of_edges(),
        "links_after": after.number_of_edges(),
        "links_vanished": int((links["status"] == "vanished").sum()),
        "links_lengthened": int((links["status"] == "lengthened").sum()),
        "newly_isolated": isolated,
    }
    return FenceScenario(summary=summary, links=links, graph=after)


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
        The fence scenario (:func:`compare_networks`), or None when ``fence = "none"``.
    fence_mask
        bool raster of fence cells (None without a scenario).
    """

    crossings: gpd.GeoDataFrame
    permeability: gpd.GeoDataFrame
    fence: FenceScenario | None = None
    fence_mask: np.ndarray | None = None


#: Columns of the ranked cross-border corridor table, in order.
CROSSBORDER_COLUMNS = (
    "rank",
    "from_id",
    "from_name",
    "to_id",
    "to_name",
    "countries",
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
    """The cross-border corridors ranked by ``score`` (then ``cwd``): one row per link with ``crosses_border``.

    ``crossing_lon`` / ``crossing_lat`` (WGS 84) are the link's first border crossing; ``protected_areas`` the
    protected-area names of the two patches it joins (patch attribute ``name``).  ``corridor_width_m`` is the
    corridor's narrowest width across its path outside the patches; for patches that touch across the border
    (no path outside them) it is the width of the corridor along the border at the crossing.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_node(1, name="Land of the Leopard"); G.add_node(2, name="NE China Tiger and Leopard")
    >>> G.add_edge(1, 2, cwd=500.0, countries="CHN;RUS", crosses_border=True, score=80.0)
    >>> crossborder_corridors(G)[["rank", "from_name", "to_name", "countries"]].to_dict("records")
    [{'rank': 1, 'from_name': 'Land of the Leopard', 'to_name': 'NE China Tiger and Leopard', 'countries': 'CHN;RUS'}]
    """
    first: dict[tuple[int, int], tuple[float, float, str, float]] = {}
    if crossings is not None and len(crossings):
        ll = crossings.to_crs("EPSG:4326") if crossings.crs is not None else crossings
        for row, pt in zip(crossings.itertuples(index=False), ll.geometry, strict=True):
            key = (int(row.patch_a), int(row.patch_b))
            first.setdefault(key, (round(pt.x, 4), round(pt.y, 4), str(row.border), float(row.corridor_width_m)))
    rows = []
    for u, v, d in graph.edges(data=True):
        if not d.get("crosses_border"):
            continue
        a, b = min(u, v), max(u, v)
        na, nb = (str(graph.nodes[n].get("name") or "") for n in (a, b))
        lon, lat, border, border_width = first.get((a, b), (math.nan, math.nan, "", math.nan))
        width = float(d.get("corridor_width_m", math.nan))
        rows.append(
            {
                "from_id": a,
                "from_name": na,
                "to_id": b,
                "to_name": nb,
                "countries": str(d.get("countries", "")),
                "score": float(d.get("score", math.nan)),
                "cwd": float(d.get("cwd", math.nan)),
                "corridor_width_m": width if math.isfinite(width) else border_width,
                "pinch_current": float(d.get("pinch_current", math.nan)),
                "dPC_link": float(d.get("dPC_link", math.nan)),
                "crossing_lon": lon,
                "crossing_lat": lat,
                "border": border,
                "protected_areas": "; ".join(x for x in (na, nb) if x),
            }
        )
    t = pd.DataFrame(rows, columns=[c for c in CROSSBORDER_COLUMNS if c != "rank"])
    t["score_key"] = t["score"].fillna(-math.inf)
    t = t.sort_values(["score_key", "cwd"], ascending=[False, True], kind="stable").drop(columns="score_key")
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t.reset_index(drop=True)
