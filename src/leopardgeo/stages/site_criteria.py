"""The criteria of each reintroduction site: capacity, connection to the source, add-patch gain, pressure.

The costly part of the sites stage (:mod:`leopardgeo.stages.sites` re-exports its public names):
:func:`evaluate_sites` measures every candidate on the run's rasters, patches, graph and corridors;
:func:`auto_candidates` proposes candidates from the habitat patches.  See the module docstring of
:mod:`leopardgeo.stages.sites` for what each criterion means and the sources.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely

from leopardgeo.core._crs import M2_PER_HA, M_PER_KM
from leopardgeo.core.errors import DataError
from leopardgeo.core.grid import Grid
from leopardgeo.kernels.circuit import circuit_flow
from leopardgeo.kernels.costdist import cost_distance, trace_path
from leopardgeo.stages.metrics import connectivity_metrics
from leopardgeo.stages.site_candidates import (  # the candidates and the source, re-exported
    SourceRegion,
    _subgrid,
    _window,
    site_masks,
)
from leopardgeo.stages.territories import pack_territories

__all__ = [
    "add_patch_gain",
    "auto_candidates",
    "effective_resistance",
    "evaluate_sites",
    "site_capacity",
    "weakest_section",
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
