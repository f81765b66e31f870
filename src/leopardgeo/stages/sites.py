r"""Reintroduction site evaluation: capacity, connection to the source population, pressure, score, rank stability.

The question of a reintroduction programme -- is a candidate site big enough,
good enough and connected enough, and how does it rank against the
alternatives? -- answered on the outputs of the earlier stages (suitability,
resistance, patches, the link graph, corridors, territories).

Candidates
    The run's ``sites`` layer, a user's polygons (any CRS, any attribute
    names), or ``auto``: habitat patches that neither hold nor touch the source
    and hold at least ``min_females`` female territories
    (:func:`prepare_sites`, :func:`auto_candidates`).

Per site (:func:`evaluate_sites`)
    * ``habitat_area_ha``, ``mean_quality``: the site's habitat cells (patch
      cells, or suitability >= the patch threshold) and their mean suitability.
    * ``capacity_*``: territories packed inside the site with
      :func:`leopardgeo.stages.territories.pack_territories` (females, males, adults;
      replicate 0 and the min / max over replicates).
    * ``cwd_to_source``: least-cost distance (cost-weighted metres) from the
      source population (by default the protected area named like "Land of the
      Leopard"), ``euclid_to_source_m``: edge-to-edge distance.
    * ``eff_resistance``: effective resistance (ohms) between the site and the
      source, each short-circuited, over the resistance raster
      (:func:`leopardgeo.kernels.circuit.circuit_flow`, a 2-node circuit; McRae et al.
      2008), solved in a window around both (an upper bound on the
      whole-landscape value: removing conductors can only raise it).
    * ``n_corridors``, ``best_corridor_score``: the run's links whose least-cost
      path or corridor passes through the site, and the best corridor score
      among them (0--100, :mod:`leopardgeo.stages.score`).
    * ``dPC_gain_pct``, ``dEC_gain_ha``: Graphab's add-patch idea (Foltête et
      al. 2012, *Environ. Model. Softw.* 38:316): the site becomes a node of its
      own (area = its habitat area; patch areas lose the cells the site takes
      from them) with a link of least cost to every patch it reaches; PC and EC
      (:func:`leopardgeo.stages.metrics.connectivity_metrics`, same kernel as the
      ``[metrics]`` stage) are compared with and without the site node.
    * ``cropland_frac``, ``urban_frac`` (land-cover classes of ``[habitat]``),
      ``road_density_km_per_km2`` (when a roads layer is given),
      ``protected_frac``.
    * ``dist_to_territory_m``: distance to the nearest existing territory in
      the source -- one with at least half its area there -- (or to the source
      itself when no territories are given).

Score (:func:`score_sites`)
    Each criterion is min-max normalised over the candidates to 0..1 (1 =
    best; *benefit* criteria rise with the value, *cost* criteria fall), a
    weighted mean gives ``score`` = 100 · Σ w·n / Σ w, ``rank`` 1 = best
    (ties: the earlier site).  A criterion on which every site is equal gives
    every site 1; a site missing a value gets 0 on that criterion; a criterion
    no site has is left out of the sum.

Rank stability (:func:`rank_stability`)
    Monte Carlo: every weight is multiplied by an independent
    :math:`U(1 - s, 1 + s)` factor, the scores recomputed, and for each site
    the share of draws in which it ranks first and its mean rank are reported.

Examples
--------
>>> t = pd.DataFrame({"site_id": [1, 2], "name": ["A", "B"], "capacity_females": [10.0, 4.0],
...                   "cwd_to_source": [50_000.0, 20_000.0]})
>>> s = score_sites(t, {"capacity_females": 3.0, "cwd_to_source": 1.0})
>>> s[["name", "n_capacity_females", "n_cwd_to_source", "score", "rank"]].to_dict("records")
[{'name': 'A', 'n_capacity_females': 1.0, 'n_cwd_to_source': 0.0, 'score': 75.0, 'rank': 1},
 {'name': 'B', 'n_capacity_females': 0.0, 'n_cwd_to_source': 1.0, 'score': 25.0, 'rank': 2}]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely

from leopardgeo.config import MAX_DRAWS, MAX_REPLICATES, MAX_SIMULATION_RUNS, VectorInput, _f, _normalise, _positive
from leopardgeo.core._crs import M2_PER_HA, M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError, NoPathError
from leopardgeo.core.grid import Grid
from leopardgeo.io import OutputWriter, json_records, read_raster, read_vector
from leopardgeo.kernels.circuit import circuit_flow
from leopardgeo.kernels.costdist import cost_distance, trace_path
from leopardgeo.stages.base import RunConfigLike, Section, Stage
from leopardgeo.stages.corridors import CorridorResult
from leopardgeo.stages.inputs import Inputs, protected_raster
from leopardgeo.stages.metrics import connectivity_metrics
from leopardgeo.stages.site_candidates import (  # the candidates and the source, re-exported
    DEFAULT_SOURCE,
    SourceRegion,
    _subgrid,
    _window,
    find_source,
    prepare_sites,
    site_masks,
)
from leopardgeo.stages.site_simulation import (  # the population simulation of the sites, re-exported
    plot_simulations,
    simulate,
    simulate_sites,
    simulation_columns,
    simulation_report,
    simulation_table,
)
from leopardgeo.stages.territories import pack_territories, territory_quality

__all__ = [
    "CRITERIA",
    "DEFAULT_SOURCE",
    "DEFAULT_WEIGHTS",
    "SiteResult",
    "SourceRegion",
    "add_patch_gain",
    "auto_candidates",
    "effective_resistance",
    "evaluate_sites",
    "find_source",
    "prepare_sites",
    "rank_stability",
    "plot_simulations",
    "score_sites",
    "simulate",
    "simulate_sites",
    "simulation_columns",
    "simulation_report",
    "simulation_table",
    "site_capacity",
    "site_masks",
]

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------- per-site measures
def site_capacity(
    quality: np.ndarray,
    resistance: np.ndarray,
    grid: Grid,
    mask: np.ndarray,
    *,
    replicates: int = 5,
    seed: int = 0,
    **territory: Any,
) -> dict[str, float]:
    """Territories packed inside a site (see :func:`leopardgeo.stages.territories.pack_territories`).

    ``territory`` holds the packing parameters (min_area_ha, max_area_ha,
    female_need_ha, male_multiple, min_quality, max_cost_m, connectivity);
    their defaults are pack_territories'.  Only the site's cells are used.

    Returns
    -------
    dict
        ``capacity_females``, ``capacity_males``, ``capacity_adults``
        (replicate 0) and ``capacity_<x>_min`` / ``_max`` over replicates.

    Examples
    --------
    A uniform site of 100 one-hectare cells with a need of 10 ha: 10 females would
    tile it exactly, the greedy packing leaves gaps for one:

    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=100, crs="EPSG:32652")
    >>> c = site_capacity(np.ones(g.shape), np.ones(g.shape), g, np.ones(g.shape, bool),
    ...                   min_area_ha=5, max_area_ha=40, female_need_ha=10, replicates=2)
    >>> c["capacity_females"], c["capacity_males"]
    (9, 5)
    """
    sub, win = _subgrid(grid, mask)
    q = np.where(mask[win], np.asarray(quality, dtype=np.float64)[win], np.nan)
    r = np.asarray(resistance, dtype=np.float64)[win]
    habitat = mask[win] & np.isfinite(q) & np.isfinite(r)
    out: dict[str, float] = {}
    if not habitat.any():
        for what in ("females", "males", "adults"):
            out[f"capacity_{what}"] = 0
            out[f"capacity_{what}_min"] = 0
            out[f"capacity_{what}_max"] = 0
        return out
    q = np.where(habitat, q, np.nan)
    res = pack_territories(q, r, sub, habitat=habitat, replicates=replicates, seed=seed, **territory)
    reps = res.replicates
    for what in ("females", "males", "adults"):
        out[f"capacity_{what}"] = int(reps[what].iloc[0])
        out[f"capacity_{what}_min"] = int(reps[what].min())
        out[f"capacity_{what}_max"] = int(reps[what].max())
    return out


def effective_resistance(
    resistance: np.ndarray,
    site: np.ndarray,
    source: np.ndarray,
    *,
    cell_size_m: float,
    margin_m: float | None = 50_000.0,
    connectivity: int = 8,
) -> float:
    """Effective resistance (ohms) between a site and the source, both short-circuited.

    A 2-node circuit over the resistance raster (:func:`leopardgeo.kernels.circuit.circuit_flow`,
    Circuitscape's conventions).  With ``margin_m`` the circuit is cut to the
    bounding box of both regions plus that margin: fewer conductors, so the
    value is an upper bound on the whole raster's (``None`` = whole raster).
    0 when they overlap, ``inf`` when no path joins them.

    Examples
    --------
    A uniform strip 3 cells wide, the two ends 7 cells apart (closed form (N - 1) r / W):

    >>> r = np.full((3, 7), 4.0)
    >>> a = np.zeros((3, 7), bool); a[:, 0] = True
    >>> b = np.zeros((3, 7), bool); b[:, -1] = True
    >>> round(effective_resistance(r, a, b, cell_size_m=100, connectivity=4), 9)
    8.0
    """
    if (site & source).any():
        return 0.0
    both = site | source
    if margin_m is not None:
        win = _window(both, math.ceil(margin_m / cell_size_m))
    else:
        win = (slice(None), slice(None))
    res = np.asarray(resistance)[win]
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[source[win]] = 1
    focal[site[win]] = 2
    focal[~np.isfinite(res)] = 0
    if not (focal == 1).any() or not (focal == 2).any():
        return math.inf
    out = circuit_flow(res, focal, pairs=[(1, 2)], connectivity=connectivity, workers=1)
    return float(out.resistances["eff_resistance"].iloc[0])


def add_patch_gain(
    graph: nx.Graph,
    labels: np.ndarray,
    site_habitat: np.ndarray,
    resistance: np.ndarray,
    *,
    cell_size_m: float,
    landscape_area_ha: float,
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    connectivity: int = 8,
    max_cwd: float | None = None,
) -> dict[str, float]:
    """Gain in PC and EC when the site's habitat joins the patch network as a node (Graphab's add-patch).

    The "before" network is the run's graph with each patch's area reduced by
    the cells the site takes from it (a patch wholly inside the site leaves);
    "after" adds the site as a node of area = its habitat area, linked to every
    patch it reaches at the least-cost distance (cost-weighted metres, the
    minimum over the patch's remaining cells), up to ``max_cwd`` (default: the
    cost at which the dispersal probability drops below 1e-6).  Links between
    patches are kept as they are.  PC and EC use
    :func:`leopardgeo.stages.metrics.connectivity_metrics` with node weight
    ``area_ha`` and link distance ``cwd``.

    Returns
    -------
    dict
        ``PC_before``, ``PC_after``, ``dPC_gain_pct`` = 100 (after - before) / before,
        ``EC_before_ha``, ``EC_after_ha``, ``dEC_gain_ha``, ``site_links``.

    Examples
    --------
    Two 1-ha patches 100 m apart; a 1-ha site between them, 0 cost away from both:

    >>> G = nx.Graph()
    >>> G.add_node(1, area_ha=1.0); G.add_node(2, area_ha=1.0); G.add_edge(1, 2, cwd=100.0)
    >>> lab = np.array([[1, 0, 2]], dtype="int32")
    >>> site = np.array([[False, True, False]])
    >>> g = add_patch_gain(G, lab, site, np.full((1, 3), 1e-9), cell_size_m=100, landscape_area_ha=3.0,
    ...                    median_distance=100.0)
    >>> round(g["PC_before"] * 9, 6), round(g["PC_after"] * 9, 6)   # (1+1+2*0.5) -> 9 (all p* = 1)
    (3.0, 9.0)
    """
    cell_ha = cell_size_m**2 / M2_PER_HA
    ids = np.array(sorted(int(n) for n in graph.nodes), dtype=np.int64)
    taken = ndimage.sum(site_habitat, labels, index=ids) * cell_ha if ids.size else np.zeros(0)
    H = nx.Graph()
    for pid, lost in zip(ids.tolist(), np.atleast_1d(taken).tolist(), strict=True):
        area = float(graph.nodes[pid].get("area_ha", 0.0)) - lost
        if area > 1e-9:
            H.add_node(pid, area_ha=area)
    for u, v, d in graph.edges(data=True):
        if u in H and v in H and math.isfinite(float(d.get("cwd", math.nan))):
            H.add_edge(u, v, cwd=float(d["cwd"]))
    site_area = float(site_habitat.sum()) * cell_ha
    k = -math.log(probability) / median_distance
    cap = max_cwd if max_cwd is not None else math.log(1e6) / k
    res = np.asarray(resistance)
    src = site_habitat & np.isfinite(res)
    out = {"PC_before": math.nan, "PC_after": math.nan, "dPC_gain_pct": math.nan, "EC_before_ha": math.nan,
           "EC_after_ha": math.nan, "dEC_gain_ha": math.nan, "site_links": 0}  # fmt: skip
    if not src.any() or site_area <= 0:
        return out
    cd = cost_distance(res, src.astype(np.int32), cell_size_m=cell_size_m, connectivity=connectivity, max_cost=cap)
    cost = np.where(np.isfinite(cd.cost), cd.cost, np.inf)
    remaining = np.where(site_habitat, 0, labels)
    kept = np.array(sorted(H.nodes), dtype=np.int64)
    d = ndimage.minimum(cost, remaining, index=kept) if kept.size else np.zeros(0)
    new = int(ids.max()) + 1 if ids.size else 1
    after = H.copy()
    after.add_node(new, area_ha=site_area)
    n_links = 0
    for pid, dist in zip(kept.tolist(), np.atleast_1d(d).tolist(), strict=True):
        if math.isfinite(dist) and dist <= cap:
            after.add_edge(new, pid, cwd=max(float(dist), 0.0))
            n_links += 1
    kw = {"median_distance": median_distance, "probability": probability, "landscape_area": landscape_area_ha}
    if H.number_of_nodes():
        before = connectivity_metrics(H, **kw).summary
    else:
        before = {"PC": 0.0, "EC_ha": 0.0}
    aft = connectivity_metrics(after, **kw).summary
    out.update(
        PC_before=before["PC"],
        PC_after=aft["PC"],
        dPC_gain_pct=100.0 * (aft["PC"] - before["PC"]) / before["PC"] if before["PC"] > 0 else math.inf,
        EC_before_ha=before["EC_ha"],
        EC_after_ha=aft["EC_ha"],
        dEC_gain_ha=aft["EC_ha"] - before["EC_ha"],
        site_links=n_links,
    )
    return out


def _territories_in(geoms: np.ndarray, region: Any, share: float = 0.5) -> np.ndarray:
    """The territories with at least ``share`` of their area inside ``region`` (the residents of the source)."""
    geoms = np.asarray(geoms)
    hit = shapely.intersects(geoms, region)
    cand = geoms[hit]
    if cand.size == 0:
        return cand
    inside = shapely.area(shapely.intersection(cand, region)) >= share * shapely.area(cand)
    return cand[inside]


def _class_share(landcover: np.ndarray | None, mask: np.ndarray, classes: Sequence[int]) -> float:
    if landcover is None:
        return math.nan
    lc = landcover[mask]
    lc = lc[np.isfinite(lc)]
    if lc.size == 0:
        return math.nan
    return float(np.isin(lc, list(classes)).mean())


def _road_density(roads: gpd.GeoDataFrame | None, geom: Any, area_ha: float) -> float:
    if roads is None or area_ha <= 0:
        return math.nan
    length_m = float(shapely.length(shapely.intersection(roads.geometry.to_numpy(), geom)).sum())
    return (length_m / M_PER_KM) / (area_ha / 100.0)


def _corridors_through(geom: Any, graph: nx.Graph | None, corridors: gpd.GeoDataFrame | None) -> tuple[int, float]:
    """Links whose least-cost path or corridor polygon intersects ``geom``, and their best ``score``."""
    if graph is None:
        return 0, math.nan
    hit: set[tuple[int, int]] = set()
    for u, v, d in graph.edges(data=True):
        g = d.get("geometry")
        if g is not None and shapely.intersects(g, geom):
            hit.add((min(u, v), max(u, v)))
    if corridors is not None and len(corridors):
        inter = corridors.geometry.intersects(geom).to_numpy()
        for a, b in zip(corridors["patch_a"].to_numpy()[inter], corridors["patch_b"].to_numpy()[inter], strict=True):
            hit.add((min(int(a), int(b)), max(int(a), int(b))))
    scores = [float(graph.edges[e].get("score", math.nan)) for e in hit if graph.has_edge(*e)]
    scores = [s for s in scores if math.isfinite(s)]
    return len(hit), (max(scores) if scores else math.nan)


def auto_candidates(
    quality: np.ndarray,
    resistance: np.ndarray,
    grid: Grid,
    *,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    source: SourceRegion,
    min_females: int = 5,
    seed: int = 0,
    **territory: Any,
) -> gpd.GeoDataFrame:
    """Habitat patches away from the source population that hold at least ``min_females`` female territories.

    A patch qualifies if none of its cells lies in the source, its outline
    does not touch a source patch, and one packing of its cells
    (:func:`site_capacity`) holds ``>= min_females`` female territories.

    Raises
    ------
    DataError
        If no patch qualifies (naming the best one found).
    """
    src_geoms = patches[patches["patch_id"].isin(source.patch_ids)].geometry.to_numpy()
    near = shapely.union_all(np.r_[src_geoms, [source.geometry]]) if len(src_geoms) else source.geometry
    rows, best = [], (0, "")
    for p in patches.sort_values("patch_id").itertuples():
        pid = int(p.patch_id)
        if pid in source.patch_ids or shapely.intersects(p.geometry, near):
            continue
        mask = labels == pid
        if (mask & source.mask).any():
            continue
        cap = site_capacity(quality, resistance, grid, mask, replicates=1, seed=seed, **territory)
        name = str(getattr(p, "name", "") or "") or f"patch {pid}"
        best = max(best, (cap["capacity_females"], name))
        if cap["capacity_females"] >= min_females:
            rows.append({"name": name, "patch_id": pid, "geometry": p.geometry})
    if not rows:
        msg = (
            f"auto sites: expected habitat patches away from the source {source.name!r} holding >= {min_females} "
            f"female territories, found none (best: {best[1] or 'none'} with {best[0]}). Lower [sites] min_females, "
            "or give candidate polygons ([sites] candidates = {path = ...})."
        )
        raise DataError(msg)
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)
    gdf.insert(0, "site_id", np.arange(1, len(gdf) + 1, dtype="int64"))
    return gdf


# --------------------------------------------------------------------------- evaluation
def weakest_section(
    resistance: np.ndarray,
    backlink: np.ndarray,
    cost: np.ndarray,
    target: np.ndarray,
    grid: Grid,
    *,
    connectivity: int = 8,
    section_m: float = 5000.0,
) -> dict[str, float]:
    """The least-cost path from the sources of a cost-distance run to ``target``, and its most resistant section.

    The path ends at the cheapest cell of ``target``.  Its resistance is
    averaged over a moving window of ``section_m`` along the path (cells); the
    section with the highest mean is the weakest point of the connection.

    Returns
    -------
    dict
        ``lcp_max_resistance`` (highest single-cell resistance on the path),
        ``weakest_mean_resistance`` (the section's mean), ``weakest_lat``,
        ``weakest_lon`` (WGS84 degrees of the section's middle cell) and
        ``lcp_length_m``; NaN when no path reaches ``target``.

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs="EPSG:32652")
    >>> res = np.array([[1.0, 1.0, 9.0, 1.0, 1.0]])
    >>> src = np.zeros(g.shape, dtype=np.int32); src[0, 0] = 1
    >>> cd = cost_distance(res, src, cell_size_m=100)
    >>> tgt = np.zeros(g.shape, bool); tgt[0, 4] = True
    >>> w = weakest_section(res, cd.backlink, cd.cost, tgt, g, section_m=100)
    >>> w["lcp_max_resistance"], w["weakest_mean_resistance"], w["lcp_length_m"]
    (9.0, 9.0, 400.0)
    """
    nan = dict.fromkeys(("lcp_max_resistance", "weakest_mean_resistance", "weakest_lat", "weakest_lon", "lcp_length_m"), math.nan)
    c = np.where(np.asarray(target, bool), np.asarray(cost, dtype="float64"), np.inf)
    if not np.isfinite(c).any():
        return nan
    end = np.unravel_index(int(np.argmin(c)), c.shape)
    cells = trace_path(backlink, (int(end[0]), int(end[1])), connectivity=connectivity)
    r = np.asarray(resistance, dtype="float64")[cells[:, 0], cells[:, 1]]
    steps = np.hypot(*np.diff(cells, axis=0).T) * grid.cell_size_m
    n = max(1, min(len(r), round(section_m / grid.cell_size_m)))
    means = np.convolve(r, np.ones(n) / n, mode="valid")
    k = int(np.argmax(means))
    mid = cells[k + n // 2]
    x, y = grid.xy(np.array([mid[0]]), np.array([mid[1]]))
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x[0], y[0])
    return {
        "lcp_max_resistance": float(r.max()),
        "weakest_mean_resistance": float(means[k]),
        "weakest_lat": round(float(lat), 4),
        "weakest_lon": round(float(lon), 4),
        "lcp_length_m": float(steps.sum()),
    }


def evaluate_sites(
    sites: gpd.GeoDataFrame,
    *,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    grid: Grid,
    source: SourceRegion,
    valid: np.ndarray | None = None,
    graph: nx.Graph | None = None,
    corridors: gpd.GeoDataFrame | None = None,
    protected: np.ndarray | None = None,
    landcover: np.ndarray | None = None,
    roads: gpd.GeoDataFrame | None = None,
    territories: gpd.GeoDataFrame | None = None,
    quality: np.ndarray | None = None,
    min_suitability: float = 0.5,
    cropland_classes: Sequence[int] = (12, 14),
    urban_classes: Sequence[int] = (13,),
    territory: Mapping[str, Any] | None = None,
    capacity_replicates: int = 5,
    seed: int = 0,
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    landscape_area_ha: float | None = None,
    circuit_margin_m: float | None = 50_000.0,
    connectivity: int = 8,
    circuit_connectivity: int = 8,
) -> gpd.GeoDataFrame:
    """Every criterion of every site (see the module docstring); one row per site, in the grid CRS.

    Parameters
    ----------
    sites
        From :func:`prepare_sites` or :func:`auto_candidates`.
    suitability, resistance, labels, patches, grid
        The run's rasters and patches.
    source
        From :func:`find_source`.
    valid
        Cells of the study area (default: finite resistance).
    graph, corridors
        The run's link graph and corridor polygons (``corridors.table``), if built.
    protected
        Boolean raster of protected cells (``protected_frac``); None gives NaN.
    landcover
        Land-cover class raster (``cropland_frac``, ``urban_frac``); None gives NaN.
    roads
        Road lines in the grid CRS (``road_density_km_per_km2``); None gives NaN.
    territories
        Existing territory polygons (``dist_to_territory_m``: the nearest one
        with at least half its area in the source); None, or none in the
        source: the distance to the source itself.
    quality
        Habitat quality 0..1 the territories are packed on (default: suitability).
    min_suitability
        Threshold of a habitat cell outside patches (the ``[patches]`` one).
    cropland_classes, urban_classes
        Land-cover codes of cropland and urban land.
    territory
        Packing parameters for :func:`site_capacity`.
    capacity_replicates, seed
        Packings per site and the seed of the first.
    median_distance, probability, landscape_area_ha
        PC kernel and A_L (``[metrics]``); A_L defaults to the valid area.
    circuit_margin_m
        Margin of the effective-resistance window (None: whole raster).
    connectivity, circuit_connectivity
        Neighbours of the cost-distance searches and of the circuit.

    Raises
    ------
    DataError
        If a site covers no valid cell.
    """
    res = np.asarray(resistance)
    valid = np.isfinite(res) if valid is None else np.asarray(valid, bool)
    suit = np.asarray(suitability, dtype=np.float64)
    qual = suit if quality is None else np.asarray(quality, dtype=np.float64)
    cell_ha = grid.cell_area_ha
    masks = site_masks(sites, grid, valid)
    if landscape_area_ha is None:
        landscape_area_ha = float(valid.sum()) * cell_ha
    territory = dict(territory or {})
    # one search from the source gives every site's least-cost distance
    src_cells = source.mask & np.isfinite(res)
    cwd_src = None
    if src_cells.any():
        cd_src = cost_distance(res, src_cells.astype(np.int32), cell_size_m=grid.cell_size_m, connectivity=connectivity)
        cwd_src = cd_src.cost
    targets = source.geometry
    if territories is not None and len(territories):
        resident = _territories_in(territories.geometry.to_numpy(), source.geometry)
        if resident.size:
            targets = shapely.union_all(resident)
    rows = []
    for i, (sid, name, geom) in enumerate(zip(sites["site_id"], sites["name"], sites.geometry, strict=True)):
        m = masks[i]
        habitat = m & ((labels > 0) | (np.nan_to_num(suit, nan=-1.0) >= min_suitability)) & np.isfinite(suit)
        row: dict[str, Any] = {"site_id": int(sid), "name": name}
        row["site_area_ha"] = float(m.sum()) * cell_ha
        row["habitat_area_ha"] = float(habitat.sum()) * cell_ha
        row["mean_quality"] = float(suit[habitat].mean()) if habitat.any() else math.nan
        row |= site_capacity(
            qual, res, grid, habitat if habitat.any() else m, replicates=capacity_replicates, seed=seed, **territory
        )
        if cwd_src is not None:
            c = cwd_src[m]
            c = c[np.isfinite(c)]
            row["cwd_to_source"] = float(c.min()) if c.size else math.inf
        else:
            row["cwd_to_source"] = math.inf
        row["euclid_to_source_m"] = float(shapely.distance(geom, source.geometry))
        if cwd_src is not None:
            row |= weakest_section(res, cd_src.backlink, cwd_src, m, grid, connectivity=connectivity)
        row["eff_resistance"] = effective_resistance(
            res, m, source.mask, cell_size_m=grid.cell_size_m, margin_m=circuit_margin_m, connectivity=circuit_connectivity
        )
        row["n_corridors"], row["best_corridor_score"] = _corridors_through(geom, graph, corridors)
        if graph is not None and graph.number_of_nodes():
            gain = add_patch_gain(
                graph, labels, habitat, res, cell_size_m=grid.cell_size_m, landscape_area_ha=landscape_area_ha,
                median_distance=median_distance, probability=probability, connectivity=connectivity,
            )  # fmt: skip
            row["dPC_gain_pct"] = gain["dPC_gain_pct"]
            row["dEC_gain_ha"] = gain["dEC_gain_ha"]
            row["site_links"] = gain["site_links"]
        else:
            row["dPC_gain_pct"] = row["dEC_gain_ha"] = math.nan
            row["site_links"] = 0
        row["cropland_frac"] = _class_share(landcover, m, cropland_classes)
        row["urban_frac"] = _class_share(landcover, m, urban_classes)
        row["road_density_km_per_km2"] = _road_density(roads, geom, row["site_area_ha"])
        row["protected_frac"] = float(protected[m].mean()) if protected is not None else math.nan
        row["dist_to_territory_m"] = float(shapely.distance(geom, targets))
        row["source"] = source.name
        rows.append(row)
        logger.info("site %s: %d female territories, cwd to source %.0f", name, row["capacity_females"], row["cwd_to_source"])
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(sites.geometry), crs=grid.crs)


# --------------------------------------------------------------------------- score
def _check_weights(weights: Mapping[str, float], directions: Mapping[str, str] | None) -> tuple[dict[str, float], dict[str, str]]:
    dirs = {c: d for c, (d, _) in CRITERIA.items()} | dict(directions or {})
    bad_dir = {c: d for c, d in dirs.items() if d not in (BENEFIT, COST)}
    if bad_dir:
        c, d = next(iter(bad_dir.items()))
        msg = f"[sites] directions: expected 'benefit' or 'cost' for {c!r}, found {d!r}."
        raise ConfigError(msg)
    w = {}
    for c, v in weights.items():
        if c not in dirs:
            msg = f"[sites] weights: unknown criterion {c!r}; expected one of {sorted(dirs)}."
            raise ConfigError(msg)
        try:
            fv = float(v)
        except (TypeError, ValueError):
            fv = math.nan
        if not (fv >= 0 and math.isfinite(fv)):
            msg = f"[sites] weights: expected a finite weight >= 0 for {c!r}, found {v!r}."
            raise ConfigError(msg)
        w[c] = fv
    if not any(v > 0 for v in w.values()):
        msg = "[sites] weights: expected at least one weight > 0, found none. Set e.g. capacity_females = 1."
        raise ConfigError(msg)
    return w, dirs


def _normalised(table: pd.DataFrame, weights: Mapping[str, float], dirs: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Min-max normalised criteria (1 = best) and the criteria that count (weight > 0, some finite value)."""
    norm = {}
    used = []
    for c in weights:
        if c not in table.columns:
            continue
        x = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
        fin = np.isfinite(x)
        if not fin.any():
            continue
        lo, hi = float(x[fin].min()), float(x[fin].max())
        if hi > lo:
            n = (x - lo) / (hi - lo) if dirs[c] == BENEFIT else (hi - x) / (hi - lo)
        else:
            n = np.ones_like(x)
        norm[c] = np.where(fin, n, 0.0)
        if weights[c] > 0:
            used.append(c)
    return pd.DataFrame(norm, index=table.index), used


def score_sites(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Multi-criteria score 0..100 and rank of each site; the normalised criteria as ``n_<criterion>``.

    Parameters
    ----------
    table
        One row per site, criteria as columns (from :func:`evaluate_sites`).
    weights
        ``{criterion: weight >= 0}``; default :data:`DEFAULT_WEIGHTS`.
        Criteria missing from ``table`` or without any finite value are left out.
    directions
        Override ``benefit`` / ``cost`` of :data:`CRITERIA` (or give those of
        extra columns).

    Returns
    -------
    pandas.DataFrame
        ``table`` in rank order with ``n_<criterion>`` (0..1, 1 = best),
        ``score`` and ``rank`` (1 = best; ties go to the earlier row).

    Raises
    ------
    ConfigError
        Unknown criterion, a negative or non-finite weight, all weights 0,
        or a direction other than benefit / cost.
    DataError
        If no weighted criterion has a value.
    """
    w, dirs = _check_weights(DEFAULT_WEIGHTS if weights is None else weights, directions)
    norm, used = _normalised(table, w, dirs)
    if not used:
        wanted = sorted(c for c in w if w[c] > 0)
        msg = f"sites score: expected values for at least one weighted criterion, found none of {wanted}."
        raise DataError(msg)
    wv = np.array([w[c] for c in used])
    score = 100.0 * norm[used].to_numpy() @ wv / wv.sum()
    out = table.copy()
    for c in norm.columns:
        out[f"n_{c}"] = norm[c].to_numpy()
    out["score"] = np.round(score, 10)
    order = np.argsort(-out["score"].to_numpy(), kind="stable")
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    out["rank"] = rank
    return out.iloc[order].reset_index(drop=True)


def rank_stability(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    directions: Mapping[str, str] | None = None,
    *,
    n: int = 1000,
    spread: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Monte Carlo rank stability: how often each site ranks first when the weights are perturbed.

    Each of ``n`` draws multiplies every weight by an independent factor
    :math:`U(1 - \text{spread}, 1 + \text{spread})` (weights 0 stay 0), then
    scores and ranks the sites as :func:`score_sites` does.

    Returns
    -------
    pandas.DataFrame
        One row per site in the input order: ``site_id`` and ``name`` (when
        present), ``first_share`` (share of draws ranked first; the shares sum
        to 1), ``mean_rank``, ``best_rank``, ``worst_rank``.

    Raises
    ------
    ConfigError
        Bad weights, ``n < 1`` or ``spread`` outside [0, 1).

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["big", "small"], "capacity_females": [10, 2], "cwd_to_source": [1e4, 9e4]})
    >>> rank_stability(t, {"capacity_females": 1, "cwd_to_source": 1}, n=200)[["name", "first_share", "mean_rank"]]
        name  first_share  mean_rank
    0    big          1.0        1.0
    1  small          0.0        2.0
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        msg = f"[sites] rank_stability_draws: expected an integer >= 1, found {n!r}."
        raise ConfigError(msg)
    if not (isinstance(spread, int | float) and 0 <= spread < 1):
        msg = f"[sites] weight_spread: expected a fraction in [0, 1), found {spread!r}."
        raise ConfigError(msg)
    w, dirs = _check_weights(DEFAULT_WEIGHTS if weights is None else weights, directions)
    norm, used = _normalised(table, w, dirs)
    if not used:
        msg = "rank stability: expected values for at least one weighted criterion, found none."
        raise DataError(msg)
    mat = norm[used].to_numpy()  # sites x criteria
    base = np.array([w[c] for c in used])
    rng = np.random.default_rng(seed)
    draws = base * rng.uniform(1 - spread, 1 + spread, size=(n, base.size))
    scores = np.round(100.0 * draws @ mat.T / draws.sum(axis=1, keepdims=True), 10)  # draws x sites
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(n)[:, None], order] = np.arange(1, mat.shape[0] + 1)
    out = pd.DataFrame(index=table.index)
    for c in ("site_id", "name"):
        if c in table.columns:
            out[c] = table[c].to_numpy()
    out["first_share"] = (ranks == 1).mean(axis=0)
    out["mean_rank"] = ranks.mean(axis=0)
    out["best_rank"] = ranks.min(axis=0)
    out["worst_rank"] = ranks.max(axis=0)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- result
@dataclass
class SiteResult:
    """Output of the sites stage.

    Attributes
    ----------
    table
        Ranked sites (GeoDataFrame in the grid CRS): every criterion, the
        normalised criteria ``n_*``, ``score``, ``rank``, ``first_share``,
        ``mean_rank`` and, when simulated, ``persistence_25y``,
        ``persistence_50y``, ``dispersers_to_source``, ``dispersers_from_source``.
    stability
        Output of :func:`rank_stability`.
    source
        The source population used.
    weights
        Weights used (criteria with a value and weight > 0).
    simulation
        Per simulated site name: the simulation's summary (``to_dict``).
    simulation_results
        Per simulated site name: the :class:`leopardgeo.stages.simulate.SimulationResult`.
    """

    table: gpd.GeoDataFrame
    stability: pd.DataFrame
    source: SourceRegion
    weights: dict[str, float]
    simulation: dict[str, Any] = field(default_factory=dict)
    simulation_results: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """``sites.json``: the source, the weights, every site's row (no geometry) and the rank stability."""
        rows = pd.DataFrame(self.table.drop(columns="geometry"))
        return {
            "source": self.source.name,
            "source_kind": self.source.kind,
            "weights": self.weights,
            "directions": {c: CRITERIA[c][0] for c in self.weights if c in CRITERIA},
            "sites": json_records(rows),
            "rank_stability": json_records(self.stability),
        }


# ---------------------------------------------------------------------- config section
BENEFIT, COST = "benefit", "cost"


#: Scoring criteria: column -> (direction, description).  ``benefit``: higher is better; ``cost``: lower is better.
CRITERIA: dict[str, tuple[str, str]] = {
    "capacity_females": (BENEFIT, "female territories the site holds (replicate 0)"),
    "habitat_area_ha": (BENEFIT, "habitat area inside the site, ha"),
    "mean_quality": (BENEFIT, "mean suitability of the site's habitat, 0..1"),
    "cwd_to_source": (COST, "least-cost distance to the source population, cost-weighted metres"),
    "eff_resistance": (COST, "effective resistance between the site and the source, ohms"),
    "n_corridors": (BENEFIT, "links of the run whose path or corridor passes through the site"),
    "best_corridor_score": (BENEFIT, "best corridor score (0-100) of those links"),
    "dPC_gain_pct": (BENEFIT, "gain in PC when the site joins the network as a node, %"),
    "cropland_frac": (COST, "share of the site's cells in cropland classes"),
    "urban_frac": (COST, "share of the site's cells in urban classes"),
    "road_density_km_per_km2": (COST, "road length per site area, km/km2"),
    "protected_frac": (BENEFIT, "share of the site's cells in protected areas"),
    "dist_to_territory_m": (COST, "distance to the nearest existing leopard territory, m (closer = exchange with residents)"),
}


#: Default weights (modelling choices, not published values: no weighting of these criteria for Amur
#: leopard reintroduction was found).  Capacity and habitat quality weigh most ("big and good enough"),
#: connection second (least cost, effective resistance, corridors, dPC gain), human pressure and protection
#: third; they follow the habitat selection of Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): high prey,
#: forest, far from human activity.  Distance to resident territories is shown but not weighted.
DEFAULT_WEIGHTS: dict[str, float] = {
    "capacity_females": 0.20,
    "habitat_area_ha": 0.05,
    "mean_quality": 0.10,
    "cwd_to_source": 0.10,
    "eff_resistance": 0.10,
    "n_corridors": 0.05,
    "best_corridor_score": 0.05,
    "dPC_gain_pct": 0.10,
    "cropland_frac": 0.05,
    "urban_frac": 0.05,
    "road_density_km_per_km2": 0.05,
    "protected_frac": 0.10,
    "dist_to_territory_m": 0.0,
}


def _default_site_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    """Reintroduction site evaluation (see :mod:`leopardgeo.stages.sites`)."""

    enabled: bool = _f(True, doc="evaluate reintroduction sites in `leopardgeo run` (needs candidates: [inputs] sites or 'auto')")
    candidates: str | VectorInput = _f(
        "layer",
        doc=(
            "'layer' ([inputs] sites: the demo's southern Sikhote-Alin sites), 'auto' (habitat patches away from the "
            "source holding >= min_females female territories) or a vector {path = ..., layer = ...} in any CRS"
        ),
    )
    name_field: str | None = _f(None, doc="column of the site names; default 'name' (any case), else the first text column")
    source: str = _f(
        "Land of the Leopard",
        doc=(
            "source population: protected area(s) whose NAME contains this (case-insensitive); the largest patch if none "
            "does. Land of the Leopard NP holds the remaining wild Amur leopards (Vitkalova et al. 2018)"
        ),
    )
    min_females: int = _f(
        5,
        doc="candidates = 'auto': least number of female territories a patch must hold (modelling choice, not a published value)",
    )
    weights: dict[str, float] = _f(
        doc=(
            "weight of each criterion of the score (>= 0; renormalised over the criteria that have values). Modelling "
            "choices, no published weighting exists: capacity and quality first, connection (cwd_to_source, "
            "eff_resistance, n_corridors, best_corridor_score, dPC_gain_pct) second, human pressure (cropland_frac, "
            "urban_frac, road_density_km_per_km2; Hebblewhite et al. 2011: far from human activity) and protected_frac "
            "third; dist_to_territory_m is shown, weight 0"
        ),
        factory=_default_site_weights,
    )
    directions: dict[str, str] = _f(
        doc="override 'benefit' (higher = better) or 'cost' (lower = better) of a criterion, e.g. dist_to_territory_m",
        factory=dict,
    )
    rank_stability_draws: int = _f(1000, doc="Monte Carlo draws of perturbed weights for the rank stability")
    weight_spread: float = _f(0.5, doc="each weight is multiplied by U(1 - spread, 1 + spread) in every draw")
    seed: int = _f(0, doc="seed of the rank-stability draws, the capacity packings and the simulation")
    capacity_replicates: int = _f(5, doc="territory packings per site (capacity min / max over them)")
    circuit_margin_m: float | None = _f(
        50_000.0,
        doc=(
            "effective resistance site-source is solved in their bounding box plus this margin, metres (an upper "
            "bound on the whole-raster value; leave unset for the whole raster, slower)"
        ),
    )
    roads: VectorInput | None = _f(None, doc="road lines for road_density_km_per_km2 (none in the demo)")
    simulate: bool = _f(True, doc="run the population simulation (leopardgeo.stages.simulate) for the simulated sites")
    simulate_sites: str = _f("all", doc="'all' sites or only the 'top' ranked one")
    simulation_runs: int = _f(500, doc="simulation replicates per site")
    simulation_years: int = _f(100, doc="years simulated (persistence and genetics are reported at 25, 50 and 100 years)")
    simulation_compare_corridors: bool = _f(
        True,
        doc=(
            "also simulate every site with no corridor to the source (same seeds), so the report shows what today's "
            "corridor buys in persistence and heterozygosity retained"
        ),
    )
    simulation_corridor_resistance: str | None = _f(
        None,
        doc=(
            "a scenario's resistance raster (GeoTIFF on the run's grid, or any raster reprojected onto it) simulated "
            "as a third corridor (the 'scenario' rows)"
        ),
    )
    simulation_params: dict[str, Any] = _f(
        doc=(
            "any other parameter of leopardgeo.stages.simulate.SimulationParams, e.g. {lethal_equivalents = 6.29, "
            "catastrophes = [[0.05, 0.3, 0.0]], ev_survival_sd = 0.05} (see docs/parameters.md)"
        ),
        factory=dict,
    )
    founders_female: int = _f(
        2,
        doc=(
            "females released at year 0: the Ussuriysky translocations released 2 females and 4 males in 2023-2025 "
            "(RIA Novosti 20 Oct 2025; TASS 13 Oct 2025)"
        ),
    )
    founders_male: int = _f(4, doc="males released at year 0 (see founders_female)")
    simulation_margin_m: float = _f(
        25_000.0,
        doc=(
            "without the territories stage, the simulation packs territories in the bounding box of the site and the "
            "source plus this margin, metres (modelling choice: beyond it dispersal from either is rare)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "sites")
        if isinstance(self.candidates, str) and self.candidates not in ("layer", "auto"):
            msg = (
                f"[sites] candidates: expected 'layer', 'auto' or a table {{path = ..., layer = ...}}, found "
                f"{self.candidates!r}. Write candidates = {{path = {self.candidates!r}}} for a file."
            )
            raise ConfigError(msg)
        if isinstance(self.candidates, dict):
            object.__setattr__(self, "candidates", VectorInput(**self.candidates))
        for key, table in (("weights", self.weights), ("directions", self.directions)):
            unknown = [k for k in table if k not in CRITERIA]
            if unknown:
                msg = f"[sites] {key}: unknown criterion {unknown[0]!r}; valid criteria: {', '.join(CRITERIA)}."
                raise ConfigError(msg)
        for k, v in self.weights.items():
            _positive(v, f"sites.weights.{k}", allow_zero=True)
        if not any(v > 0 for v in self.weights.values()):
            msg = "[sites] weights: expected at least one weight > 0, found none. Set e.g. capacity_females = 1."
            raise ConfigError(msg)
        for k, v in self.directions.items():
            if v not in ("benefit", "cost"):
                msg = f"[sites] directions: expected 'benefit' or 'cost' for {k!r}, found {v!r}."
                raise ConfigError(msg)
        for name, low in (("min_females", 1), ("rank_stability_draws", 1), ("capacity_replicates", 1),
                          ("simulation_runs", 1), ("simulation_years", 1), ("founders_female", 0),
                          ("founders_male", 0), ("seed", 0)):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                msg = f"[sites] {name}: expected an integer >= {low}, found {v!r}."
                raise ConfigError(msg)
        from leopardgeo.core.memory import check_count

        for name, limit in (("rank_stability_draws", MAX_DRAWS), ("capacity_replicates", MAX_REPLICATES),
                            ("simulation_runs", MAX_SIMULATION_RUNS), ("simulation_years", 1000)):  # fmt: skip
            check_count(getattr(self, name), name=f"[sites] {name}", limit=limit,
                        fix="A count this large would run for days; the defaults are enough for stable results.")  # fmt: skip
        if not 0 <= self.weight_spread < 1:
            msg = f"[sites] weight_spread: expected a fraction in [0, 1), found {self.weight_spread!r}."
            raise ConfigError(msg)
        if self.circuit_margin_m is not None:
            _positive(self.circuit_margin_m, "sites.circuit_margin_m")
        _positive(self.simulation_margin_m, "sites.simulation_margin_m", allow_zero=True)
        if self.simulate_sites not in ("all", "top"):
            msg = f"[sites] simulate_sites: expected 'all' or 'top', found {self.simulate_sites!r}."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def _sites_run(cfg: RunConfigLike) -> bool:
    """Whether the sites stage runs: enabled, with candidates (a layer given, a file, or 'auto')."""
    s = cfg.sites
    return s.enabled and (s.candidates != "layer" or cfg.inputs.sites is not None)


def site_files(cfg: RunConfigLike) -> tuple[str, ...]:
    """Files of the sites stages (the ``sites`` layer goes into the GeoPackage)."""
    if not _sites_run(cfg):
        return ()
    return ("sites.csv", "sites.json") + (("simulation.json", "simulation.png") if cfg.sites.simulate else ())


#: ``[sites]`` keys only the ranking reads (a change reruns the ranking alone, not the evaluation or the simulation).
RANKING_KEYS = ("rank_stability_draws", "weight_spread")
#: ``[sites]`` keys of the score (read by the ranking, and by the simulation for its order of sites).
SCORE_KEYS = ("weights", "directions")
#: ``[sites]`` keys only the population simulation reads.
SIMULATION_KEYS = (
    "simulate", "simulate_sites", "simulation_runs", "simulation_years", "simulation_compare_corridors",
    "simulation_corridor_resistance", "simulation_params", "founders_female", "founders_male", "simulation_margin_m",
)  # fmt: skip


def _site_keys(*leave_out: tuple[str, ...]) -> tuple[str, ...]:
    """``sites.<key>`` for every ``[sites]`` key except those in ``leave_out`` (a stage's hash covers these)."""
    out = {k for group in leave_out for k in group}
    return tuple(f"sites.{f.name}" for f in dataclasses.fields(SiteConfig) if f.name not in out)


@dataclass
class SiteEvaluation:
    """The candidates and every criterion of each (the costly part of the sites stage, before any score).

    Attributes
    ----------
    candidates
        The candidate sites (:func:`prepare_sites`, :func:`auto_candidates`).
    source
        The source population.
    table
        :func:`evaluate_sites`'s table, one row per candidate.
    quality
        The territory quality surface the capacity packing used (and the simulation uses).
    timings_s
        Run times by part.
    """

    candidates: gpd.GeoDataFrame
    source: SourceRegion
    table: pd.DataFrame
    quality: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)


def evaluate_candidates(
    cfg: RunConfigLike,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    graph: nx.Graph | None = None,
    corridors: CorridorResult | None = None,
    territories: Any = None,
) -> SiteEvaluation:
    """The candidates of ``[sites] candidates`` and every criterion of each (:func:`evaluate_sites`); no score yet.

    Parameters and errors as :func:`compute_sites`, which runs this, :func:`simulate_candidates` and
    :func:`rank_candidates` in turn.
    """
    from leopardgeo.stages import sites as st

    sc = cfg.sites
    grid = inputs.grid
    t = time.perf_counter()
    src = st.find_source(
        grid, labels=labels, patches=patches, protected_areas=inputs.protected_areas, name=sc.source, valid=inputs.valid
    )
    tp = _territory_params(cfg)
    quality = territory_quality(cfg, inputs, suitability)
    if sc.candidates == "auto":
        cand = st.auto_candidates(
            quality, resistance, grid, labels=labels, patches=patches, source=src, min_females=sc.min_females,
            seed=sc.seed, **tp,
        )  # fmt: skip
    elif sc.candidates == "layer":
        if inputs.sites is None:
            msg = (
                "[sites] candidates = 'layer': expected [inputs] sites = {path = ..., layer = ...}, found none. "
                "Set it, or use candidates = 'auto'."
            )
            raise ConfigError(msg)
        cand = st.prepare_sites(inputs.sites, grid, name_field=sc.name_field)
    else:
        v = sc.candidates
        gdf = read_vector(cfg.resolve(v.path), v.layer, grid=grid, what="[sites] candidates")  # type: ignore[union-attr]
        cand = st.prepare_sites(gdf, grid, name_field=sc.name_field, what="[sites] candidates")
    roads = None
    if sc.roads is not None:
        roads = read_vector(cfg.resolve(sc.roads.path), sc.roads.layer, grid=grid, what="[sites] roads")
    terr_table = getattr(territories, "table", None)
    m = cfg.metrics
    area = m.landscape_area_ha if m.landscape_area_ha is not None else float(inputs.valid.sum()) * grid.cell_area_ha
    table = st.evaluate_sites(
        cand,
        suitability=suitability,
        resistance=resistance,
        labels=labels,
        patches=patches,
        grid=grid,
        source=src,
        valid=inputs.valid,
        graph=graph,
        corridors=corridors.table if corridors is not None else None,
        protected=protected_raster(inputs),
        landcover=inputs.rasters.get("landcover"),
        roads=roads,
        territories=terr_table,
        quality=quality,
        min_suitability=cfg.patches.min_suitability,
        cropland_classes=cfg.habitat.cropland_classes,
        urban_classes=cfg.habitat.urban_classes,
        territory=tp,
        capacity_replicates=sc.capacity_replicates,
        seed=sc.seed,
        median_distance=m.median_dispersal,
        probability=m.probability,
        landscape_area_ha=area,
        circuit_margin_m=sc.circuit_margin_m,
        connectivity=cfg.links.connectivity,
        circuit_connectivity=cfg.circuit.connectivity,
    )
    return SiteEvaluation(cand, src, table, quality, {"evaluate": time.perf_counter() - t})


def _scored(cfg: RunConfigLike, evaluation: SiteEvaluation) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Mask of the unreachable sites, the reachable ones, and those scored and sorted by rank."""
    sc = cfg.sites
    table = evaluation.table
    cut = _unreachable_sites(table, evaluation.source.name)
    ranked = table[~cut].reset_index(drop=True)
    from leopardgeo.stages import sites as st

    return cut, ranked, st.score_sites(ranked, sc.weights, sc.directions)


@dataclass
class SiteSimulation:
    """The population simulation of the sites: ``simulation.json``'s content, each site's result, the run time."""

    report: dict[str, Any]
    results: dict[str, Any]
    columns: pd.DataFrame
    timings_s: dict[str, float] = field(default_factory=dict)


def simulate_candidates(
    cfg: RunConfigLike,
    evaluation: SiteEvaluation,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    territories: Any = None,
) -> SiteSimulation:
    """The population simulation (``[sites] simulate``) of every site in rank order, or of the top one.

    Raises
    ------
    ConfigError
        A ``[sites] simulation_params`` key that is not a parameter, or one set by another ``[sites]`` key.
    """
    from leopardgeo.stages import sites as st
    from leopardgeo.stages.simulate import SimulationParams

    sc = cfg.sites
    grid = inputs.grid
    t = time.perf_counter()
    extra = dict(sc.simulation_params)
    fixed = {"years", "n_runs", "seed", "founders_female", "founders_male"} & set(extra)
    if fixed:
        msg = (
            f"[sites] simulation_params: {sorted(fixed)} are set by [sites] simulation_years, simulation_runs, seed, "
            "founders_female and founders_male; set them there."
        )
        raise ConfigError(msg)
    try:
        params = SimulationParams(
            years=sc.simulation_years,
            n_runs=sc.simulation_runs,
            seed=sc.seed,
            founders_female=sc.founders_female,
            founders_male=sc.founders_male,
            **{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
               for k, v in extra.items()},
        )  # fmt: skip
    except TypeError as exc:
        msg = f"[sites] simulation_params: {exc}. See leopardgeo.stages.simulate.SimulationParams for the parameter names."
        raise ConfigError(msg) from None
    scen = None
    if sc.simulation_corridor_resistance:
        scen = read_raster(
            cfg.resolve(sc.simulation_corridor_resistance), grid, resampling="nearest",
            what="[sites] simulation_corridor_resistance",
        )  # fmt: skip
    cut, _, scored = _scored(cfg, evaluation)
    if cut.any():  # after the ranked sites, as in the sites table
        scored = pd.concat([scored, evaluation.table[cut]], ignore_index=True)
    chosen = scored if sc.simulate_sites == "all" else scored.iloc[:1]
    cand = evaluation.candidates
    masks = dict(zip(cand["site_id"].astype(int), st.site_masks(cand, grid, inputs.valid), strict=True))
    results = st.simulate_sites(
        chosen, masks, suitability=suitability, resistance=resistance, labels=labels, grid=grid,
        source=evaluation.source, params=params, territories=territories, quality=evaluation.quality,
        min_suitability=cfg.patches.min_suitability, territory=_territory_params(cfg), margin_m=sc.simulation_margin_m,
        seed=sc.seed, compare_corridors=sc.simulation_compare_corridors, scenario_resistance=scen,
    )  # fmt: skip
    report = st.simulation_report(results, dict(zip(scored["name"], scored["site_id"].astype(int), strict=True)))
    return SiteSimulation(report, results, st.simulation_columns(results), {"simulation": time.perf_counter() - t})


def rank_candidates(cfg: RunConfigLike, evaluation: SiteEvaluation, simulation: SiteSimulation | None = None) -> SiteResult:
    """The score, rank and rank stability of the evaluated sites, with the simulation's columns when given."""
    from leopardgeo.stages import sites as st

    sc = cfg.sites
    table = evaluation.table
    cut, ranked, scored = _scored(cfg, evaluation)
    stab = st.rank_stability(
        ranked, sc.weights, sc.directions, n=sc.rank_stability_draws, spread=sc.weight_spread, seed=sc.seed
    )
    scored = scored.merge(stab[["site_id", "first_share", "mean_rank"]], on="site_id", how="left")
    if cut.any():  # listed after the ranked sites, without score or rank
        unranked = table[cut].assign(score=np.nan, rank=np.nan, first_share=np.nan, mean_rank=np.nan)
        scored = pd.concat([scored, unranked], ignore_index=True)
    timings = dict(evaluation.timings_s)
    if simulation is not None:
        scored = scored.merge(simulation.columns, on="name", how="left")
        timings |= simulation.timings_s
    scored = gpd.GeoDataFrame(scored, geometry="geometry", crs=evaluation.candidates.crs)
    used = {c: float(w) for c, w in sc.weights.items() if w > 0 and c in table.columns and table[c].notna().any()}
    return SiteResult(
        table=scored, stability=stab, source=evaluation.source, weights=used,
        simulation=simulation.report if simulation is not None else {},
        simulation_results=simulation.results if simulation is not None else {}, timings_s=timings,
    )  # fmt: skip


def compute_sites(
    cfg: RunConfigLike,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    graph: nx.Graph | None = None,
    corridors: CorridorResult | None = None,
    territories: Any = None,
) -> SiteResult:
    """Reintroduction sites: every criterion, the score, the rank stability (see :mod:`leopardgeo.stages.sites`).

    Candidates come from ``[sites] candidates``: the ``[inputs] sites`` layer,
    a vector file, or ``auto``.  ``territories`` (a
    :class:`leopardgeo.stages.territories.TerritoryResult`) gives the existing
    territories for ``dist_to_territory_m`` and the simulation's landscape;
    without it the distance runs to the source and the simulation packs its
    own territories around the site and the source.  Capacity packs with the
    parameters and the quality surface of ``[territories]``.

    The run computes the three parts as three stages (:func:`evaluate_candidates`,
    :func:`simulate_candidates`, :func:`rank_candidates`), so a change of the ranking's
    keys alone reuses the evaluation and the simulation.

    Raises
    ------
    ConfigError
        If ``candidates = 'layer'`` and ``[inputs] sites`` is not set.
    DataError
        Empty or invalid candidates, a site on no valid cell, no source.
    """
    ev = evaluate_candidates(cfg, inputs, suitability, resistance, labels, patches, graph, corridors, territories)
    sim = simulate_candidates(cfg, ev, inputs, suitability, resistance, labels, territories) if cfg.sites.simulate else None
    return rank_candidates(cfg, ev, sim)


def _unreachable_sites(table: pd.DataFrame, source: str) -> np.ndarray:
    """Mask of the sites that cannot reach the source population (infinite ``cwd_to_source``); they are not ranked.

    Raises
    ------
    NoPathError
        If no site can reach the source.
    """
    if "cwd_to_source" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    cut = ~np.isfinite(table["cwd_to_source"].to_numpy(dtype=float))
    if cut.any():
        names = ", ".join(str(n) for n in table.loc[cut, "name"])
        hint = (
            "No-data cells (outside an input raster, water, impassable barriers) separate them from it: check that "
            "every input covers the study area (see any NodataWarning) and the barriers."
        )
        if cut.all():
            msg = f"sites: expected a site that can reach the source population {source!r}, found none ({names}). {hint}"
            raise NoPathError(msg)
        logger.warning("sites: %s cannot reach the source population %r and are not ranked. %s", names, source, hint)
    return cut


def _territory_params(cfg: RunConfigLike) -> dict[str, Any]:
    """Packing parameters of ``[territories]`` when the config has that section (else the packing defaults)."""
    t = getattr(cfg, "territories", None)
    keys = ("min_area_ha", "max_area_ha", "female_need_ha", "male_multiple", "min_quality", "max_cost_m", "connectivity")
    return {k: getattr(t, k) for k in keys if t is not None and getattr(t, k, None) is not None}


def site_layer(result: SiteResult) -> gpd.GeoDataFrame:
    """The ``sites`` GeoPackage layer: one polygon per site with every criterion, score, rank and stability."""
    return result.table


#: Keys of the simulation's summaries that hold run times: they go to ``manifest.json``, not ``simulation.json``.
TIME_KEYS = frozenset({"elapsed_s", "build_s"})


def split_times(obj: Any, prefix: str = "") -> tuple[Any, dict[str, float]]:
    """``obj`` without its run-time keys (:data:`TIME_KEYS`, at any depth), and those times by dotted key.

    Result files hold no run times, so two runs of one configuration write identical files; the times
    are kept in ``manifest.json``.

    Examples
    --------
    >>> split_times({"a": 1, "elapsed_s": 2.5, "landscape": {"build_s": 0.1, "n": 3}})
    ({'a': 1, 'landscape': {'n': 3}}, {'elapsed_s': 2.5, 'landscape.build_s': 0.1})
    """
    times: dict[str, float] = {}
    if isinstance(obj, dict):
        clean = {}
        for k, v in obj.items():
            if k in TIME_KEYS and isinstance(v, int | float):
                times[prefix + k] = float(v)
            else:
                clean[k], sub = split_times(v, f"{prefix}{k}.")
                times |= sub
        return clean, times
    if isinstance(obj, list):
        items = [split_times(v, f"{prefix}{i}.") for i, v in enumerate(obj)]
        for _, sub in items:
            times |= sub
        return [c for c, _ in items], times
    return obj, times


def write_sites(writer: OutputWriter, result: SiteResult) -> dict[str, float]:
    """``sites.csv``, ``sites.json`` and, when simulated, ``simulation.json`` and ``simulation.png``.

    The tables are :func:`write_site_tables`' and the simulation's files :func:`write_simulation`'s.
    Returns the simulation's run times (for ``manifest.json``), which ``simulation.json`` leaves out.
    """
    write_site_tables(writer, result)
    if not result.simulation:
        return {}
    return write_simulation(writer, result.simulation, result.simulation_results)


def write_site_tables(writer: OutputWriter, result: SiteResult) -> None:
    """``sites.csv`` (the ranked table without geometry) and ``sites.json`` (source, weights, sites, stability)."""
    table = pd.DataFrame(result.table.drop(columns="geometry"))
    writer.text("sites.csv", table.to_csv(index=False, float_format="%.6g"))
    writer.text("sites.json", json.dumps(result.summary(), indent=1, ensure_ascii=False))


def write_simulation(writer: OutputWriter, report: dict[str, Any], results: dict[str, Any]) -> dict[str, float]:
    """``simulation.json`` (without run times) and ``simulation.png``; returns the run times for ``manifest.json``."""
    from leopardgeo.stages.sites import plot_simulations

    simulation, times = split_times(report)
    writer.text("simulation.json", json.dumps(simulation, indent=1, ensure_ascii=False))
    plot_simulations(results, writer.path("simulation.png"))
    return {f"simulation.{k}": v for k, v in times.items()}


def _simulated(cfg: RunConfigLike) -> bool:
    return _sites_run(cfg) and cfg.sites.simulate


#: The costly part of the sites: the candidates and their criteria.  Its hash covers the ``[sites]`` keys
#: the evaluation reads, not the ranking's, the score's or the simulation's.
EVALUATION_STAGE = Stage(
    "site_evaluation",
    "reintroduction sites: candidates and criteria",
    lambda cfg, c: {
        "site_evaluation": evaluate_candidates(
            cfg, c["inputs"], c["suitability"], c["resistance"], c["labels"], c["patches"], c.get("graph"),
            c.get("corridors"), c.get("territories"),
        )
    },
    sections=(*_site_keys(RANKING_KEYS, SCORE_KEYS, SIMULATION_KEYS), "territories", "patches"),
    needs=("inputs", "habitat", "resistance", "patches"),
    uses=("links", "corridors", "scores", "territories"),  # corridors through a site and their scores, residents
    after=("circuit", "pinch_points", "barriers", "metrics", "crossborder"),  # the graph as the run leaves it
    produces=("site_evaluation",),
    enabled=_sites_run,
)

#: The population simulation of the sites (``[sites] simulate``), in the order of their score.
SIMULATION_STAGE = Stage(
    "site_simulation",
    "reintroduction sites: population simulation",
    lambda cfg, c: {
        "site_simulation": simulate_candidates(
            cfg, c["site_evaluation"], c["inputs"], c["suitability"], c["resistance"], c["labels"], c.get("territories")
        )
    },
    sections=(*_site_keys(RANKING_KEYS), "territories", "patches"),
    needs=("site_evaluation", "inputs", "habitat", "resistance", "patches"),
    uses=("territories",),
    produces=("site_simulation",),
    enabled=_simulated,
    outputs=("simulation.json", "simulation.png"),
    write=lambda writer, cfg, c: write_simulation(writer, c["site_simulation"].report, c["site_simulation"].results),
)

STAGE = Stage(
    "sites",
    "reintroduction sites",
    lambda cfg, c: {"sites": rank_candidates(cfg, c["site_evaluation"], c.get("site_simulation"))},
    config=(Section("sites", SiteConfig, "reintroduction site evaluation"),),
    sections=("sites",),
    needs=("site_evaluation",),
    uses=("site_simulation",),
    produces=("sites",),
    enabled=_sites_run,
    reads_inputs=False,  # the evaluation and the simulation read them
    outputs=("sites.csv", "sites.json"),
    layers=lambda cfg, c: {"sites": site_layer(c["sites"])},
    write=lambda writer, cfg, c: write_site_tables(writer, c["sites"]),
)
