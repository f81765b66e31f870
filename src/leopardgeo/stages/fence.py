"""The border fence: a fence on every national border, patches cut at the border, and what the network loses.

Split from :mod:`leopardgeo.stages.crossborder` (which re-exports these names):

* :func:`fence_resistance` — the border (both sides of it, two cells across) made impassable or given a
  penalty, open at listed gaps; also the ``border_fence`` edit of a scenario
  (:mod:`leopardgeo.stages.scenario`);
* :func:`split_at_border` / :func:`cut_graph` — transboundary patches cut into their national parts;
* :func:`compare_networks` / :func:`compare_fenced` — a network against the same network under a scenario:
  PC / EC lost, links vanished or lengthened, patches newly isolated, capacity reachable.
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

from leopardgeo.core.errors import AlignmentError, ConfigError
from leopardgeo.core.grid import Grid

__all__ = [
    "FenceScenario",
    "border_cells",
    "compare_fenced",
    "compare_networks",
    "cut_graph",
    "fence_resistance",
    "fill_countries",
    "split_at_border",
]

logger = logging.getLogger(__name__)


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


def split_at_border(
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    countries: np.ndarray,
    grid: Grid,
    *,
    country_codes: Sequence[str] | None = None,
    connectivity: int = 8,
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Cut every patch at the national borders: each connected piece of a patch inside one country becomes a patch.

    The border is that of :func:`fill_countries` (cells without a country take the nearest one's), as for the
    fence.  Patches in one country keep their cells (renumbered).  This is what a border fence does to habitat
    that straddles the border; the analysis itself keeps such a patch whole (see
    :func:`leopardgeo.stages.patches.extract_patches`).

    Returns
    -------
    (numpy.ndarray, geopandas.GeoDataFrame)
        Part labels (int32, 0 = none) and the parts: ``patch_id``, ``parent_id``, ``country`` (its code from
        ``country_codes``, else the index as text), ``name`` (the parent's), ``n_cells``, ``area_ha``, ``share``
        (of the parent's cells), ``mean_quality`` and ``protected_frac`` (the parent's), geometry.  Parts are
        numbered by parent, then from the largest.

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 400, 100), cell_size_m=100, crs=TEST_CRS)
    >>> lab = np.array([[1, 1, 1, 0]], dtype="int32")
    >>> p = gpd.GeoDataFrame({"patch_id": [1], "name": ["A"], "n_cells": [3], "area_ha": [3.0]},
    ...                      geometry=[shapely.box(0, 0, 300, 100)], crs=TEST_CRS)
    >>> parts_lab, parts = split_at_border(lab, p, np.array([[0, 0, 1, 1]]), g, country_codes=["CHN", "RUS"])
    >>> parts_lab.tolist(), parts[["patch_id", "parent_id", "country", "area_ha"]].to_dict("records")
    ([[1, 1, 2, 0]], [{'patch_id': 1, 'parent_id': 1, 'country': 'CHN', 'area_ha': 2.0}, \
{'patch_id': 2, 'parent_id': 1, 'country': 'RUS', 'area_ha': 1.0}])
    """
    from leopardgeo.stages.patches import label_cores, patch_polygons

    labels = np.asarray(labels)
    cidx = fill_countries(np.asarray(countries)).astype(np.int64)
    k = int(cidx.max()) + 2 if cidx.size else 2
    raw, n = label_cores(labels > 0, connectivity=connectivity, zones=labels.astype(np.int64) * k + (cidx + 1))
    flat = raw.ravel()
    parent = np.zeros(n + 1, dtype=np.int64)
    parent[flat] = labels.ravel()
    country = np.full(n + 1, -1, dtype=np.int64)
    country[flat] = cidx.ravel()
    size = np.bincount(flat, minlength=n + 1)
    order = sorted(range(1, n + 1), key=lambda i: (parent[i], -size[i], i))
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[order] = np.arange(1, n + 1, dtype=np.int32)
    part_labels = remap[raw]
    by_id = patches.set_index("patch_id")
    par = np.array([parent[i] for i in order], dtype=np.int64)
    cells = np.array([size[i] for i in order], dtype=np.int64)
    parent_cells = by_id["n_cells"].reindex(par).to_numpy(dtype=float) if "n_cells" in by_id else cells.astype(float)
    names = list(country_codes) if country_codes is not None else None
    codes = [(names[c] if names is not None and 0 <= c < len(names) else str(c)) for c in (int(country[i]) for i in order)]
    frame = pd.DataFrame(
        {
            "patch_id": np.arange(1, n + 1, dtype=np.int32),
            "parent_id": par.astype(np.int32),
            "country": codes,
            "name": by_id["name"].reindex(par).fillna("").astype(str).to_numpy() if "name" in by_id else "",
            "n_cells": cells,
            "area_ha": cells * grid.cell_area_ha,
            "share": cells / parent_cells,
        }
    )
    for col in ("mean_quality", "protected_frac"):
        if col in by_id:
            frame[col] = by_id[col].reindex(par).to_numpy()
    polys = patch_polygons(part_labels, grid)
    return part_labels, polys.merge(frame, on="patch_id", how="left")[[*frame.columns, "geometry"]]


def _end_cell_in(path: shapely.Geometry, labels: np.ndarray, patch: int, grid: Grid) -> tuple[int, int] | None:
    """(row, col) of the end of a least-cost path that lies in ``patch``."""
    xy = shapely.get_coordinates(path)
    if len(xy) == 0:
        return None
    for x, y in (xy[0], xy[-1]):
        c, r = ~grid.transform * (x, y)
        r, c = int(np.floor(r)), int(np.floor(c))
        if 0 <= r < grid.height and 0 <= c < grid.width and labels[r, c] == patch:
            return r, c
    return None


def cut_graph(
    graph: nx.Graph,
    patch_id: int,
    labels: np.ndarray,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    *,
    attribute: str = "area_ha",
) -> nx.Graph:
    """The graph with one transboundary patch cut at the border and no passage between its national parts.

    The patch's node is replaced by one node per country it holds, weighted by ``area_ha_<code>`` (for
    ``attribute = "area_ha"``) or by ``attribute`` × ``frac_<code>``; each of its links moves to the part
    where its least-cost path ends.  Nothing is recomputed on the grid: this is the network's view of closing
    the border inside that patch, used for the patch's importance (:func:`crossing_routes`).

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs=TEST_CRS)
    >>> lab = np.array([[1, 1, 0, 0, 2]], dtype="int32")
    >>> G = nx.Graph()
    >>> G.add_node(1, area_ha=2.0, area_ha_chn=1.0, area_ha_rus=1.0, frac_chn=.5, frac_rus=.5, countries="CHN;RUS")
    >>> G.add_node(2, area_ha=1.0, countries="RUS")
    >>> G.add_edge(1, 2, cwd=300.0, geometry=shapely.LineString([(150, 50), (450, 50)]))
    >>> H = cut_graph(G, 1, lab, np.array([[0, 1, 1, 1, 1]]), ["CHN", "RUS"], g)
    >>> sorted(H.nodes(data="area_ha")), sorted(H.edges)
    ([(2, 1.0), (3, 1.0), (4, 1.0)], [(2, 4)])
    """
    H = graph.copy()
    d = graph.nodes[patch_id]
    present = [c for c in str(d.get("countries") or "").split(";") if c]
    if len(present) < 2:
        return H
    base = max(int(n) for n in graph.nodes) + 1
    part_of = {code: base + i for i, code in enumerate(present)}
    for code, node in part_of.items():
        lc = code.lower()
        if attribute == "area_ha" and f"area_ha_{lc}" in d:
            a = float(d[f"area_ha_{lc}"])
        else:
            a = float(d.get(attribute, 0.0)) * float(d.get(f"frac_{lc}", 0.0))
        H.add_node(node, **{**{k: v for k, v in d.items() if k != "geometry"}, attribute: a, "country": code,
                            "countries": code, "parent_id": patch_id, "transboundary": False})
    cidx = fill_countries(np.asarray(countries))
    for u, v, e in graph.edges(patch_id, data=True):
        other = v if u == patch_id else u
        cell = _end_cell_in(e.get("geometry"), labels, patch_id, grid) if e.get("geometry") is not None else None
        code = country_codes[int(cidx[cell])] if cell is not None and cidx[cell] >= 0 else present[0]
        H.add_edge(part_of.get(code, part_of[present[0]]), other, **e)
    H.remove_node(patch_id)
    return H


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


def _component_capacity(graph: nx.Graph, adults: dict[int, float]) -> tuple[float, float]:
    """(adults in the largest component, adults in components holding habitat in two or more countries)."""
    largest = cross = 0.0
    for comp in nx.connected_components(graph):
        total = float(sum(adults.get(int(n), 0.0) for n in comp))
        codes = {
            c for n in comp for c in str(graph.nodes[n].get("countries") or graph.nodes[n].get("country") or "").split(";") if c
        }
        largest = max(largest, total)
        if len(codes) > 1:
            cross += total
    return largest, cross


def compare_fenced(
    before: nx.Graph,
    after: nx.Graph,
    parts: gpd.GeoDataFrame,
    metrics_before: dict,
    metrics_after: dict,
    *,
    crs: object = None,
    capacity: pd.DataFrame | None = None,
) -> FenceScenario:
    """The fence scenario: the network before, and after cutting patches at the border (:func:`split_at_border`).

    ``after`` is the graph of the parts (node ids of ``parts``, links recomputed on the fenced resistance).
    Each link of ``before`` is compared with the cheapest link between any parts of its two patches
    (:func:`compare_networks`); each transboundary patch adds a row ``patch_a == patch_b`` with status ``cut``,
    ``cwd_before`` 0 and ``cwd_after`` the cheapest link left between its own parts in different countries
    (NaN: none).  The summary adds
    ``transboundary_cut`` and ``transboundary_rejoined`` (patch ids), and with ``capacity`` (``patch_id``,
    ``country``, ``adults``: territories per patch and country) the adults in the largest network component and
    in components spanning two or more countries, before and after (``capacity_largest_before`` …
    ``capacity_cross_border_after``).

    Examples
    --------
    One transboundary patch (1) linked to a Russian patch (2); the fence cuts 1 into parts 1 (CHN) and 2 (RUS).

    >>> b = nx.Graph(); b.add_node(1, countries="CHN;RUS"); b.add_node(2, countries="RUS")
    >>> b.add_edge(1, 2, cwd=10.0)
    >>> parts = pd.DataFrame({"patch_id": [1, 2, 3], "parent_id": [1, 1, 2], "country": ["CHN", "RUS", "RUS"]})
    >>> a = nx.Graph(); a.add_nodes_from([1, 2, 3]); a.add_edge(2, 3, cwd=10.0)
    >>> s = compare_fenced(b, a, parts, {"PC": .5, "EC_ha": 1.0}, {"PC": .4, "EC_ha": .9})
    >>> s.links[["patch_a", "patch_b", "status"]].to_dict("records"), s.summary["transboundary_cut"]
    ([{'patch_a': 1, 'patch_b': 1, 'status': 'cut'}, {'patch_a': 1, 'patch_b': 2, 'status': 'unchanged'}], [1])
    """
    parent = dict(zip(parts["patch_id"].astype(int), parts["parent_id"].astype(int), strict=True))
    country = dict(zip(parts["patch_id"].astype(int), parts["country"].astype(str), strict=True))
    agg = nx.Graph()
    agg.add_nodes_from((n, d) for n, d in before.nodes(data=True))
    rejoin: dict[int, float] = {}
    for u, v, d in after.edges(data=True):
        pu, pv = parent.get(int(u), int(u)), parent.get(int(v), int(v))
        c = float(d.get("cwd", math.nan))
        if pu == pv:  # two parts of one patch: across the fence only if in different countries
            if country.get(int(u)) != country.get(int(v)):
                rejoin[pu] = min(rejoin.get(pu, math.inf), c)
        elif not agg.has_edge(pu, pv) or c < agg.edges[pu, pv]["cwd"]:
            agg.add_edge(pu, pv, **d)
    base = compare_networks(before, agg, metrics_before, metrics_after, crs=crs)
    cut = sorted(
        int(n) for n, d in before.nodes(data=True) if len([c for c in str(d.get("countries") or "").split(";") if c]) > 1
    )
    extra = [
        {
            "patch_a": p,
            "patch_b": p,
            "cwd_before": 0.0,
            "cwd_after": rejoin.get(p, math.nan),
            "change_pct": math.nan,
            "status": "cut",
            "crosses_border": True,
            "geometry": None,
        }
        for p in cut
    ]
    links = base.links
    if extra:
        links = gpd.GeoDataFrame(pd.concat([gpd.GeoDataFrame(extra, geometry="geometry", crs=crs), links], ignore_index=True),
                                 geometry="geometry", crs=crs)
        links = links.sort_values(["patch_a", "patch_b"], kind="stable").reset_index(drop=True)
    summary = dict(base.summary)
    summary["links_before"] = before.number_of_edges()
    summary["links_after"] = after.number_of_edges()
    summary["transboundary_cut"] = cut
    summary["transboundary_rejoined"] = sorted(p for p in cut if p in rejoin)
    if capacity is not None and len(capacity):
        cap = capacity.groupby(["patch_id", "country"])["adults"].sum()
        adults_before = capacity.groupby("patch_id")["adults"].sum().to_dict()
        pc = pd.DataFrame(parts)[["patch_id", "parent_id", "country"]].copy()
        pc["n"] = pd.DataFrame(parts)["n_cells"].to_numpy() if "n_cells" in parts else 1.0
        pc["w"] = pc["n"] / pc.groupby(["parent_id", "country"])["n"].transform("sum")
        pc["adults"] = [
            float(cap.get((int(p), str(c)), 0.0)) * w for p, c, w in zip(pc["parent_id"], pc["country"], pc["w"], strict=True)
        ]
        adults_after = dict(zip(pc["patch_id"].astype(int), pc["adults"], strict=True))
        lb, cb_ = _component_capacity(before, {int(k): float(v) for k, v in adults_before.items()})
        la, ca_ = _component_capacity(after, adults_after)
        summary |= {
            "capacity_largest_before": lb,
            "capacity_largest_after": la,
            "capacity_cross_border_before": cb_,
            "capacity_cross_border_after": ca_,
        }
    return FenceScenario(summary=summary, links=links, graph=after)
