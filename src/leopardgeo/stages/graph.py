r"""Least-cost links between habitat patches, as a :class:`networkx.Graph`.

Nodes are patches (attributes from the patches layer); edges are least-cost
links with their path.  Three linking rules, as Linkage Mapper and Graphab
offer them:

``planar``
    The minimum planar graph of Fall et al. 2007 (Ecosystems 10:448–461;
    grainscape, Graphab "planar"): ONE labelled cost-distance run from all
    patches; every pair of neighbouring cells ``i, j`` allocated to different
    patches proposes a link of cost

    .. math:: c_{ab} = cwd(i) + \ell_{ij} \frac{r_i + r_j}{2} + cwd(j)

    and the cheapest proposal per pair of patches is kept; its path is traced
    back from both cells.  When the least-cost path between two patches stays
    inside their two cost-allocation regions, this equals their pairwise
    least-cost distance; otherwise it is an upper bound (and the pair is usually
    better linked through the patch in between).
``cutoff``
    All pairs within a maximum cost-weighted distance (``max_cwd``) and/or a
    maximum edge-to-edge Euclidean distance (``max_euclid_m``), from one
    cost-distance run per patch (on threads).
``knn``
    Each patch linked to its ``k_nearest`` patches by least-cost distance.

Edge attributes: ``cwd`` (cost-weighted metres), ``lcp_length_m`` (length of
the least-cost path through cell centres), ``euclid_m`` (edge-to-edge distance
between the patch polygons), ``cwd_to_euclid`` and ``cwd_to_lcp_length``
(NaN where the denominator is 0, e.g. patches touching across a border),
``countries`` (codes of the countries the path passes through, ``;``-joined),
``through_patches`` (ids of other patches the path crosses), ``kind``
(``corridor``, or ``touching`` when the two patch polygons touch: a seam
between adjacent patches, not a movement route, which the corridor score
leaves out, see :mod:`leopardgeo.stages.score`) and ``geometry``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from numba import njit
from scipy import ndimage

import geopandas as gpd
import shapely

from leopardgeo.config import LinkRule, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError, NoPathError
from leopardgeo.core.executor import current_executor
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import unmasked
from leopardgeo.io import RASTERS
from leopardgeo.kernels._costdist_compiled import _block_has_edge, _crossing, _flat_deltas, _source_labels
from leopardgeo.kernels.costdist import (
    CostDistanceResult,
    _forward_steps,
    cost_distance,
    trace_path,
)
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs
from leopardgeo.stages.patches import country_raster

__all__ = [
    "CORRIDOR",
    "EDGE_COLUMNS",
    "TOUCHING",
    "LinkRule",
    "PatchGaps",
    "build_graph",
    "gdfs_to_graph",
    "graph_layers",
    "graph_to_gdfs",
    "isolated_patches",
    "link_kind",
    "redundant_links",
]

logger = logging.getLogger(__name__)

#: Edge attributes, in the order of the ``links`` layer.
EDGE_COLUMNS = (
    "patch_a",
    "patch_b",
    "cwd",
    "lcp_length_m",
    "euclid_m",
    "cwd_to_euclid",
    "cwd_to_lcp_length",
    "countries",
    "through_patches",
    "kind",
)

#: ``kind`` of a link whose two patches touch (edge-to-edge distance 0): a seam, not a corridor.
TOUCHING = "touching"
#: ``kind`` of every other link.
CORRIDOR = "corridor"


# ---------------------------------------------------------------------- one pass
#: Least room for proposals of :func:`_planar_proposals` (and one per 16 cells): the kernel runs again when short.
_PROPOSALS_MIN = 4096

@njit(cache=True, nogil=True)
def _planar_kernel(cost, alloc, res, offsets, step_len, via, has_via, pa, pb, pc, pi, pj, least, at):  # pragma: no cover
    """Proposals ``cwd[i] + step(i, j) + cwd[j]`` of the neighbouring cells ``i, j`` in different regions.

    Compiled because only the few cells on region boundaries propose links, and
    numpy would need several grid-sized temporaries per neighbour offset.  Fills
    the output arrays up to their length and returns the number of proposals:
    when that is more, the caller runs it again with arrays that long (no growing
    containers, so it compiles fast).  With ``least`` not empty (``(n, n)``, inf, ``n`` above every
    label; ``at`` ``(n, n, 2)``) only each pair's least proposal is kept, in ``least[a, b]`` and its cells in
    ``at[a, b]`` (``a < b``; the first found of equal ones), and 0 is returned.  ``offsets`` point forward (row > 0,
    or row 0 and col > 0).  Blocks of cells are first tested branch-free for a neighbour in
    another region (flat offsets, wrapping rows: a false alarm only sends the block
    on), and only those blocks are scanned cell by cell, in the same order as a scan
    of every cell.
    """
    nr, nc = alloc.shape
    n_cells = nr * nc
    n_off = offsets.shape[0]
    delta, top = _flat_deltas(offsets, nc)
    af = alloc.reshape(-1)
    cap = pa.size
    dense = least.size > 0
    n = 0
    blk = 32
    for s0 in range(0, n_cells, blk):
        e = min(s0 + blk, n_cells)
        if e + top <= n_cells and not _block_has_edge(af, delta, s0, e):  # every neighbour id in range: tested
            continue
        for i in range(s0, e):
            r = i // nc
            c = i - r * nc
            a = alloc[r, c]
            if a <= 0:
                continue
            for k in range(n_off):
                vr = r + offsets[k, 0]
                vc = c + offsets[k, 1]
                if vr < 0 or vr >= nr or vc < 0 or vc >= nc:
                    continue
                b = alloc[vr, vc]
                if b <= 0 or b == a:
                    continue
                w = _crossing(cost, res, r, c, vr, vc, k, step_len, via, has_via)
                if np.isnan(w):  # a knight's move across no data
                    continue
                lo, hi, ci, cj = (a, b, r * nc + c, vr * nc + vc) if a < b else (b, a, vr * nc + vc, r * nc + c)
                if dense:
                    if w < least[lo, hi]:
                        least[lo, hi] = w
                        at[lo, hi, 0], at[lo, hi, 1] = ci, cj
                    continue
                if n < cap:
                    pc[n] = w
                    pa[n], pb[n], pi[n], pj[n] = lo, hi, ci, cj
                n += 1
    return n


#: Most labels for which the planar proposals are reduced in the scan, to a dense ``(n, n)`` matrix of each pair's
#: least (8 bytes and two cell ids per pair: 100 MB at this size); beyond, the proposals are collected and sorted.
_MAX_DENSE_LABELS = 2048


def _planar_proposals(res: CostDistanceResult, resistance: np.ndarray, top: int) -> dict[str, np.ndarray]:
    """The cheapest ``cwd[i] + step(i, j) + cwd[j]`` per pair of touching allocation regions, sorted by pair.

    Columns ``a``, ``b``, ``cwd``, ``i``, ``j`` (flat cell ids); of the proposals of a pair with the least ``cwd``, the
    first the kernel found: kept in the scan (``top``, the largest label, below :data:`_MAX_DENSE_LABELS`), else a
    stable sort by pair and ``cwd`` and the first of each pair.
    """
    r = np.asarray(resistance)
    if r.dtype not in (np.float32, np.float64):
        r = r.astype(np.float64)
    grid_args = (res.cost, res.allocation, r, *_forward_steps(res.connectivity, res.cell_size_m))
    none_i, none_f = np.empty(0, np.int64), np.empty(0, np.float64)
    if top < _MAX_DENSE_LABELS:
        least = np.full((top + 1, top + 1), np.inf)
        at = np.zeros((top + 1, top + 1, 2), np.int64)
        _planar_kernel(*grid_args, none_i, none_i, none_f, none_i, none_i, least, at)
        a, b = np.nonzero(np.isfinite(least))  # row-major: by a, then b
        return {"a": a.astype(np.int64), "b": b.astype(np.int64), "cwd": least[a, b], "i": at[a, b, 0], "j": at[a, b, 1]}
    n = cap = max(_PROPOSALS_MIN, res.allocation.size // 16)  # room for all on the demo (1 per ~60 cells): one pass
    no_least, no_at = np.empty((0, 0)), np.empty((0, 0, 2), np.int64)
    while True:
        out = {name: np.empty(n, np.float64 if name == "cwd" else np.int64) for name in ("a", "b", "cwd", "i", "j")}
        n = _planar_kernel(*grid_args, out["a"], out["b"], out["cwd"], out["i"], out["j"], no_least, no_at)
        if n <= cap:
            break
        cap = n  # more proposals than room: again, with room for them all
    order = np.lexsort((out["cwd"][:n], out["b"][:n], out["a"][:n]))  # by a, b, cwd; stable
    a, b = out["a"][order], out["b"][order]
    first = np.ones(n, dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return {name: v[order[first]] for name, v in out.items()}


def _crossing_matrix(best: dict[str, np.ndarray], top: int) -> np.ndarray:
    """The least crossing of each pair as :func:`~leopardgeo.kernels.costdist.allocation_crossings` gives it.

    ``(top + 1, top + 1)``, symmetric, inf where two regions do not touch: the planar proposals are its values (the
    same forward neighbour pairs, the same sum in the same order: :func:`_planar_kernel`), ``top`` the largest label.
    """
    out = np.full((top + 1, top + 1), np.inf)
    out[best["a"], best["b"]] = best["cwd"]
    out[best["b"], best["a"]] = best["cwd"]
    return out


def _planar_links(res: CostDistanceResult, resistance: np.ndarray, grid: Grid, top: int) -> tuple[list[dict], np.ndarray]:
    """The planar links (their least crossing, traced both ways), and :func:`_crossing_matrix`."""
    best = _planar_proposals(res, resistance, top)
    links = []
    nc = grid.width
    for a, b, cwd, i, j in zip(*(best[k].tolist() for k in ("a", "b", "cwd", "i", "j")), strict=True):  # a trace per link
        path_a = trace_path(res.backlink, divmod(i, nc), connectivity=res.connectivity)
        path_b = trace_path(res.backlink, divmod(j, nc), connectivity=res.connectivity)
        cells = np.vstack([path_a, path_b[::-1]])
        links.append({"patch_a": a, "patch_b": b, "cwd": cwd, "cells": cells})
    return links, _crossing_matrix(best, top)


# ---------------------------------------------------------------------- per-patch runs
def _links_from_patch(
    a: int,
    resistance: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    *,
    cell_size_m: float,
    connectivity: int,
    max_cwd: float | None,
) -> list[dict]:
    """Least-cost distance from patch ``a`` to every patch with a larger id that it reaches, with paths."""
    res = cost_distance(
        resistance, np.where(labels == a, a, 0), cell_size_m=cell_size_m, connectivity=connectivity, max_cost=max_cwd
    )
    cost = np.where(np.isfinite(res.cost), res.cost, np.inf)
    mins = np.asarray(ndimage.minimum(cost, labels, index=ids))
    where = ndimage.minimum_position(cost, labels, index=ids)
    out = []
    for b, d, cell in zip(ids, mins, where, strict=True):
        if b <= a or not np.isfinite(d):  # cost is symmetric: each pair once, from its smaller id
            continue
        cells = trace_path(res.backlink, cell, connectivity=connectivity)
        out.append({"patch_a": int(a), "patch_b": int(b), "cwd": float(d), "cells": cells})
    return out


def _pairwise_links(
    resistance: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    *,
    cell_size_m: float,
    connectivity: int,
    max_cwd: float | None,
    workers: int | None,
) -> list[dict]:
    """Each patch's bounded search as a task of the run's executor (``workers``: that many local threads)."""
    ex = current_executor(workers)
    res_h, lab_h = ex.share(resistance), ex.share(labels)  # on Dask: sent to each worker once
    try:
        items = [(res_h, lab_h, int(a), ids, float(cell_size_m), int(connectivity), max_cwd) for a in ids]
        runs = ex.map(_links_task, items)
    finally:
        ex.release(res_h)
        ex.release(lab_h)
    found = [link for run in runs for link in run]
    return sorted(found, key=lambda link: (link["patch_a"], link["patch_b"]))


def _links_task(item: tuple) -> list[dict]:
    """One executor task: :func:`_links_from_patch` on the shared rasters (module level, so workers can import it)."""
    res_h, lab_h, a, ids, cell_size_m, connectivity, max_cwd = item
    return _links_from_patch(
        a, res_h.get(), lab_h.get(), ids, cell_size_m=cell_size_m, connectivity=connectivity, max_cwd=max_cwd
    )


# ---------------------------------------------------------------------- the graph
_ISOLATED_HINT = (
    "They count as isolated in the metrics. If that is unexpected, check the resistance (no data) around them, or relax "
    "[links] max_cwd / max_euclid_m / drop_through_patches."
)


def build_graph(
    resistance: np.ndarray,
    patch_labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    grid: Grid,
    *,
    rule: LinkRule | str = LinkRule.PLANAR,
    connectivity: int = 8,
    max_cwd: float | None = None,
    max_euclid_m: float | None = None,
    k_nearest: int = 3,
    drop_through_patches: bool = False,
    countries: np.ndarray | None = None,
    country_codes: Sequence[str] = (),
    workers: int | None = None,
    stage: str = "least-cost links",
    isolated_hint: str | None = None,
    gaps: PatchGaps | None = None,
) -> tuple[nx.Graph, CostDistanceResult]:
    """Least-cost links between patches as a :class:`networkx.Graph`.

    Parameters
    ----------
    resistance
        Resistance on ``grid`` (> 0; NaN = impassable).
    patch_labels
        Patch id per cell (0 = no patch), e.g. from
        :func:`leopardgeo.stages.patches.extract_patches`.
    patches
        Patch polygons with ``patch_id`` and attributes (become node attributes).
    grid
        The analysis grid.
    rule
        ``"planar"`` (one pass, default), ``"cutoff"`` or ``"knn"``.
    connectivity
        4, 8 or 16 neighbours.
    max_cwd
        Keep links up to this cost-weighted distance (cost-weighted metres); for
        ``cutoff`` / ``knn`` it also stops each search early.
    max_euclid_m
        Keep links between patches at most this far apart edge to edge (m).
    k_nearest
        Links per patch for ``knn``.
    drop_through_patches
        Drop links whose path crosses another patch (otherwise they are kept and
        the crossed patch ids listed in ``through_patches``).
    countries, country_codes
        Country index per cell (-1 = none) and the codes it indexes, e.g. from
        :func:`leopardgeo.stages.patches.country_raster`; fills the ``countries``
        edge attribute.
    workers
        Threads for the per-patch searches (``cutoff`` / ``knn``); ``None``: the
        run's executor (:func:`leopardgeo.core.executor.current_executor`), whose
        tasks they are.  The graph does not depend on it.
    stage, isolated_hint
        Name of the calling stage and what to do about patches left without a
        link, for the warning that lists them.
    gaps
        A :class:`PatchGaps` of these patches, or None.  A link's ``euclid_m``
        is read from it, and a pair it lacks is measured and added: graphs of
        the same patches on other resistance rasters (ensemble draws) share one
        and measure each pair once.

    Returns
    -------
    graph : networkx.Graph
        Nodes keyed by ``patch_id``; ``graph.graph["isolated"]`` lists patches
        with no link; ``graph.graph["crs"]`` the CRS.
    cwd : CostDistanceResult
        The one-pass cost distance from all patches (for ``cwd.tif``); with the ``planar`` rule it carries the
        allocation regions' least crossings (``cwd.crossings``, the links' costs), which the corridors take.

    Raises
    ------
    ConfigError
        Unknown rule, or ``k_nearest`` < 1.
    DataError
        If ``patch_labels`` and ``patches`` disagree, or ``gaps`` is not a
        :class:`PatchGaps` of these patches.
    NoPathError
        If a patch lies wholly on no-data (naming it).

    Examples
    --------
    >>> from leopardgeo.stages.patches import extract_patches
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs="EPSG:32652")
    >>> s = np.array([[0.9, 0.1, 0.1, 0.1, 0.9]])
    >>> labels, p = extract_patches(s, g, min_area_ha=0)
    >>> G, _ = build_graph(np.ones(g.shape), labels, p, g)
    >>> G.edges[1, 2]["cwd"], G.edges[1, 2]["lcp_length_m"], G.edges[1, 2]["euclid_m"]
    (400.0, 400.0, 300.0)
    """
    try:
        rule = LinkRule(rule)
    except ValueError:
        msg = f"[links] rule: expected one of {[r.value for r in LinkRule]}, found {rule!r}."
        raise ConfigError(msg) from None
    if rule is LinkRule.KNN and k_nearest < 1:
        msg = f"[links] k_nearest: expected an integer >= 1, found {k_nearest!r}."
        raise ConfigError(msg)
    labels = np.asarray(patch_labels, dtype="int32")
    ids = np.asarray(sorted(int(v) for v in patches["patch_id"]), dtype="int32")
    res_in = np.asarray(unmasked(resistance))  # masked cells are no data, as cost_distance takes them
    if res_in.shape != labels.shape:
        msg = (
            f"resistance: expected the shape of the patch labels {labels.shape}, found {res_in.shape}. "
            "Use rasters of the same grid."
        )
        raise DataError(msg)
    # the patch ids in the raster, and those with a cell on data (not NaN): one compiled pass, no sort
    top = max(int(labels.max(initial=0)), 0)
    present, has_cells = _source_labels(labels, res_in, top)
    if not np.array_equal(present, ids):
        msg = (
            f"patches: expected the same patch ids in the label raster and the layer, found {len(present)} in the raster "
            f"and {len(ids)} in the layer. Use the labels and layer of the same extract_patches run."
        )
        raise DataError(msg)
    passable = np.isin(ids, has_cells)  # a patch can start a link if one of its cells is passable
    if not passable.all():
        dead = ids[~passable]
        names = patches.set_index("patch_id").get("name", pd.Series(dtype=str))
        listed = ", ".join(f"{int(p)}" + (f" ({names.get(p)})" if names.get(p) else "") for p in dead[:10])
        msg = (
            f"patch {listed}: expected passable cells, found every cell of the patch on no-data resistance, "
            "so no link can start there. Check the land mask, barriers and the resistance raster."
        )
        raise NoPathError(msg)
    one_pass = cost_distance(resistance, labels, cell_size_m=grid.cell_size_m, connectivity=connectivity)
    if rule is LinkRule.PLANAR:
        links, crossings = _planar_links(one_pass, resistance, grid, top)
        one_pass = dataclasses.replace(one_pass, crossings=crossings)  # for the corridors' bounds
    else:
        links = _pairwise_links(
            resistance,
            labels,
            ids,
            cell_size_m=grid.cell_size_m,
            connectivity=connectivity,
            max_cwd=max_cwd,
            workers=workers,
        )
    G = nx.Graph(crs=grid.crs, rule=rule.value, connectivity=connectivity)
    by_id = patches.set_index("patch_id")
    G.add_nodes_from((int(pid), {"patch_id": int(pid), **attrs}) for pid, attrs in by_id.to_dict("index").items())
    if not links:
        G.graph["isolated"] = sorted(G.nodes)
        logger.warning("%s: no link found between any of %d patches. %s", stage, len(ids), isolated_hint or _ISOLATED_HINT)
        return G, one_pass

    coords = [_centres(link["cells"], grid) for link in links]
    geoms = shapely.linestrings(np.vstack(coords), indices=np.repeat(np.arange(len(coords)), [len(c) for c in coords]))
    a_idx = np.array([link["patch_a"] for link in links])
    b_idx = np.array([link["patch_b"] for link in links])
    if gaps is not None and not isinstance(gaps, PatchGaps):
        msg = f"gaps: expected PatchGaps(patches) or None, found {type(gaps).__name__}. Make one from this patch layer."
        raise DataError(msg)
    euclid = _gaps(by_id.geometry, a_idx, b_idx, PatchGaps(patches) if gaps is None else gaps.of(patches))
    lcp_len = shapely.length(geoms)
    cwd = np.array([link["cwd"] for link in links])
    frame = pd.DataFrame({"patch_a": a_idx, "patch_b": b_idx, "cwd": cwd, "lcp_length_m": lcp_len, "euclid_m": euclid})
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["cwd_to_euclid"] = np.where(euclid > 0, cwd / euclid, np.nan)
        frame["cwd_to_lcp_length"] = np.where(lcp_len > 0, cwd / lcp_len, np.nan)
    codes = np.asarray([*country_codes, ""])
    country_names, through = [], []
    for link in links:
        rr, cc = link["cells"][:, 0], link["cells"][:, 1]
        if countries is not None and len(country_codes):
            idx = np.unique(np.asarray(countries)[rr, cc])
            country_names.append(";".join(sorted(c for c in codes[idx] if c)))
        else:
            country_names.append("")
        crossed = np.unique(labels[rr, cc])
        through.append(";".join(str(int(p)) for p in crossed if p not in (0, link["patch_a"], link["patch_b"])))
    frame["countries"] = country_names
    frame["through_patches"] = through
    frame["kind"] = np.where(euclid > 0, CORRIDOR, TOUCHING)
    keep = np.ones(len(frame), bool)
    if max_cwd is not None:
        keep &= frame["cwd"].to_numpy() <= max_cwd
    if max_euclid_m is not None:
        keep &= frame["euclid_m"].to_numpy() <= max_euclid_m
    if drop_through_patches:
        keep &= frame["through_patches"].to_numpy() == ""
    if rule is LinkRule.KNN:
        keep &= _knn_mask(frame, k_nearest)
    frame = frame[keep]
    for row, geom in zip(frame.itertuples(index=False), geoms[keep], strict=True):
        G.add_edge(int(row.patch_a), int(row.patch_b), **{c: getattr(row, c) for c in EDGE_COLUMNS}, geometry=geom)
    G.graph["isolated"] = isolated_patches(G)
    if G.graph["isolated"]:
        logger.warning(
            "%s: %d patch(es) have no link: %s. %s", stage, len(G.graph["isolated"]), G.graph["isolated"],
            isolated_hint or _ISOLATED_HINT,
        )
    logger.info("%d links between %d patches (%s rule)", G.number_of_edges(), G.number_of_nodes(), rule.value)
    return G, one_pass


class PatchGaps(dict):
    """Edge-to-edge distances (m) between the patches of one layer, keyed by ``(patch_a, patch_b)`` as links name them.

    Filled by :func:`build_graph` as it measures pairs (``shapely.distance``); graphs of the same patches on other
    resistance rasters read them back instead of measuring again (an ensemble's draws share one).  It remembers
    which patches it measured (their ids and bounding boxes), so that distances between other patches are refused,
    not given to the wrong links.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> p = gpd.GeoDataFrame({"patch_id": [1, 2]}, geometry=[box(0, 0, 1, 1), box(4, 0, 5, 1)], crs="EPSG:32652")
    >>> gaps = PatchGaps(p)
    >>> gaps.of(p) is gaps, len(gaps)
    (True, 0)
    """

    def __init__(self, patches: gpd.GeoDataFrame) -> None:
        super().__init__()
        self.fingerprint = _patch_fingerprint(patches)

    def of(self, patches: gpd.GeoDataFrame) -> PatchGaps:
        """Itself, if it belongs to ``patches``.

        Raises
        ------
        DataError
            If it was made from other patches.
        """
        if _patch_fingerprint(patches) != self.fingerprint:
            msg = (
                f"gaps: expected the distances between these {len(patches)} patches, found a PatchGaps made from "
                "other patches (other ids or outlines). Make one with PatchGaps(patches) for this layer, or leave it out."
            )
            raise DataError(msg)
        return self


def _patch_fingerprint(patches: gpd.GeoDataFrame) -> tuple[bytes, bytes]:
    """The patch ids and each patch's bounding box, in id order."""
    by_id = patches.sort_values("patch_id")
    ids = np.asarray(by_id["patch_id"], dtype=np.int64)
    return ids.tobytes(), shapely.bounds(np.asarray(by_id.geometry.values)).tobytes()


def _gaps(poly: gpd.GeoSeries, a_idx: np.ndarray, b_idx: np.ndarray, known: PatchGaps) -> np.ndarray:
    """Edge-to-edge distance (m) of each pair ``(a_idx[i], b_idx[i])`` of patches (``poly`` by patch id).

    Read from ``known``; the pairs it lacks are measured (``shapely.distance``) and added to it.
    """
    keys = [(int(a), int(b)) for a, b in zip(a_idx, b_idx, strict=True)]
    new = [i for i, k in enumerate(keys) if k not in known]
    if new:
        d = shapely.distance(poly.loc[a_idx[new]].to_numpy(), poly.loc[b_idx[new]].to_numpy())
        known.update({keys[i]: float(v) for i, v in zip(new, d, strict=True)})
    return np.array([known[k] for k in keys], dtype=np.float64)


def _centres(cells: np.ndarray, grid: Grid) -> np.ndarray:
    x, y = grid.xy(cells[:, 0], cells[:, 1])
    xy = np.column_stack([x, y])
    return xy if len(xy) > 1 else np.vstack([xy, xy])


def _knn_mask(frame: pd.DataFrame, k: int) -> np.ndarray:
    """Rows that are among the ``k`` cheapest links of either end patch."""
    n = len(frame)
    ends = pd.DataFrame(
        {
            "node": np.concatenate([frame["patch_a"].to_numpy(), frame["patch_b"].to_numpy()]),
            "cwd": np.tile(frame["cwd"].to_numpy(), 2),
            "row": np.tile(np.arange(n), 2),
        }
    ).sort_values(["node", "cwd"], kind="stable")
    chosen = ends.loc[ends.groupby("node").cumcount().to_numpy() < k, "row"].to_numpy()
    mask = np.zeros(n, bool)
    mask[chosen] = True
    return mask


def link_kind(data: dict) -> str:
    """``touching`` for a seam between touching patches or a zero-length link, else ``corridor``.

    A link is a seam when its ``kind`` says so, or when its edge-to-edge distance (``euclid_m``), its path length
    (``lcp_length_m``) or its cost (``cwd``) is 0: then no movement route lies between the patches.

    Examples
    --------
    >>> link_kind({"cwd": 250.0, "euclid_m": 0.0}), link_kind({"cwd": 5000.0, "euclid_m": 1500.0})
    ('touching', 'corridor')
    """
    if data.get("kind") == TOUCHING:
        return TOUCHING
    for key in ("euclid_m", "lcp_length_m", "cwd"):
        v = data.get(key)
        if v is not None and np.isfinite(float(v)) and float(v) <= 0:
            return TOUCHING
    return CORRIDOR


def redundant_links(patch_a: Sequence[int], patch_b: Sequence[int], cwd: Sequence[float]) -> np.ndarray:
    """True for each link whose two patches are joined more cheaply by a chain of the other links.

    A planar link runs inside the two patches' cost-allocation regions
    (Fall et al. 2007); where those regions touch only far from both patches,
    for example along the edge of the grid around a third patch's region,
    the link's path makes that detour, and its cost-weighted distance is an
    upper bound: the pair is better connected through the patches between
    them.  Such a link carries no connectivity of its own (the metrics use
    the cheapest chain), so maps draw it apart.

    Parameters
    ----------
    patch_a, patch_b
        Patch ids of each link.
    cwd
        Cost-weighted distance of each link (NaN: never redundant).

    Returns
    -------
    numpy.ndarray
        bool, one per link: the shortest chain between its patches over all
        links costs less than the link itself (relative tolerance 1e-9).

    Examples
    --------
    >>> redundant_links([1, 2, 1], [2, 3, 3], [10.0, 10.0, 50.0]).tolist()  # 1-3 direct costs 50, via 2 costs 20
    [False, False, True]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    a = np.asarray(patch_a, dtype=np.int64)
    b = np.asarray(patch_b, dtype=np.int64)
    w = np.asarray(cwd, dtype=np.float64)
    out = np.zeros(a.size, dtype=bool)
    ok = np.isfinite(w) & (w > 0)
    if not ok.any():
        return out
    ids, inv = np.unique(np.concatenate([a[ok], b[ok]]), return_inverse=True)
    ia, ib = inv[: ok.sum()], inv[ok.sum() :]
    n = ids.size
    order = np.lexsort((w[ok], ib, ia))
    first = np.ones(order.size, bool)
    first[1:] = (ia[order][1:] != ia[order][:-1]) | (ib[order][1:] != ib[order][:-1])
    keep = order[first]  # the cheapest of duplicate pairs (coo_matrix would sum them)
    m = coo_matrix((w[ok][keep], (ia[keep], ib[keep])), shape=(n, n)).tocsr()
    sources, where = np.unique(ia, return_inverse=True)
    dist = dijkstra(m, directed=False, indices=sources)
    shortest = dist[where, ib]
    out[np.flatnonzero(ok)] = shortest < w[ok] * (1 - 1e-9)
    return out


def isolated_patches(G: nx.Graph) -> list[int]:
    """Patches with no link (cut off by no-data, or beyond every cutoff)."""
    return sorted(n for n, d in G.degree() if d == 0)


# ---------------------------------------------------------------------- frames
def graph_to_gdfs(G: nx.Graph) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Nodes (patch polygons with ``degree``) and edges (link paths) as GeoDataFrames.

    Examples
    --------
    >>> G = nx.Graph(crs="EPSG:32652")
    >>> G.add_node(1, patch_id=1, geometry=shapely.box(0, 0, 1, 1))
    >>> G.add_node(2, patch_id=2, geometry=shapely.box(3, 0, 4, 1))
    >>> G.add_edge(1, 2, patch_a=1, patch_b=2, cwd=2.0, geometry=shapely.LineString([(1, 0), (3, 0)]))
    >>> nodes, edges = graph_to_gdfs(G)
    >>> nodes["degree"].tolist(), edges["cwd"].tolist()
    ([1, 1], [2.0])
    >>> gdfs_to_graph(nodes, edges).edges[1, 2]["cwd"]
    2.0
    """
    crs = G.graph.get("crs")
    nodes = gpd.GeoDataFrame([dict(d) for _, d in G.nodes(data=True)], geometry="geometry", crs=crs)
    nodes["degree"] = [d for _, d in G.degree()]
    rows = [dict(d) for _, _, d in G.edges(data=True)]
    if rows:
        edges = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    else:
        edges = gpd.GeoDataFrame({c: [] for c in EDGE_COLUMNS}, geometry=[], crs=crs)
    edges = edges.sort_values("cwd").reset_index(drop=True) if len(edges) else edges
    return nodes, edges


def gdfs_to_graph(nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame) -> nx.Graph:
    """The inverse of :func:`graph_to_gdfs` (nodes need ``patch_id``; edges ``patch_a``, ``patch_b``)."""
    G = nx.Graph(crs=nodes.crs)
    for row in nodes.drop(columns=["degree"], errors="ignore").to_dict("records"):
        G.add_node(int(row["patch_id"]), **row)
    for row in edges.to_dict("records"):
        G.add_edge(int(row["patch_a"]), int(row["patch_b"]), **row)
    G.graph["isolated"] = isolated_patches(G)
    return G


def graph_layers(G: nx.Graph) -> dict[str, gpd.GeoDataFrame]:
    """The ``graph_nodes`` (a point per patch, with ``degree`` and ``isolated``) and ``links`` layers."""
    nodes, edges = graph_to_gdfs(G)
    points = nodes.assign(
        geometry=shapely.point_on_surface(nodes.geometry.to_numpy()),
        isolated=nodes["degree"] == 0,
    )
    return {"graph_nodes": points, "links": edges}


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Least-cost links between patches (the connectivity graph)."""

    enabled: bool = _f(True, doc="build the graph in `leopardgeo run`")
    rule: LinkRule = _f(
        LinkRule.PLANAR,
        doc=(
            "planar (cost-Voronoi neighbours in one pass, Fall et al. 2007; Graphab 'planar'), "
            "cutoff (all pairs within max_cwd / max_euclid_m) or knn (k_nearest per patch)"
        ),
    )
    connectivity: int = _f(8, doc="neighbours per cell: 4, 8 (ArcGIS / Linkage Mapper default) or 16 (knight's moves)")
    max_cwd: float | None = _f(None, doc="longest link kept, cost-weighted metres (resistance x m)")
    max_euclid_m: float | None = _f(None, doc="largest edge-to-edge gap between linked patches, metres")
    k_nearest: int = _f(3, doc="links per patch for rule = 'knn'")
    drop_through_patches: bool = _f(False, doc="drop links whose path crosses another patch")
    workers: int | None = _f(
        None, doc="threads for per-patch searches (cutoff / knn rules, corridors); default: the run's executor (all cores)"
    )

    def __post_init__(self) -> None:
        _normalise(self, "links")
        if self.connectivity not in (4, 8, 16):
            msg = f"[links] connectivity: expected 4, 8 or 16, found {self.connectivity!r}."
            raise ConfigError(msg)
        for name in ("max_cwd", "max_euclid_m"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), f"links.{name}")
        if self.k_nearest < 1:
            msg = f"[links] k_nearest: expected an integer >= 1, found {self.k_nearest!r}."
            raise ConfigError(msg)
        if self.workers is not None and self.workers < 1:
            msg = f"[links] workers: expected an integer >= 1, found {self.workers!r}."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
LINK_FILES = ("cwd.tif", "allocation.tif")


def compute_links(
    cfg: RunConfigLike,
    inputs: Inputs,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    *,
    countries: tuple[np.ndarray, list[str]] | None = None,
    gaps: PatchGaps | None = None,
    **log: str,
) -> tuple[nx.Graph, CostDistanceResult]:
    """The least-cost graph (:func:`leopardgeo.stages.graph.build_graph`; ``log``: its ``stage`` and ``isolated_hint``).

    ``countries``: ``country_raster(inputs.countries, inputs.grid, cfg.inputs.country_field)`` when the caller
    already has it (it does not depend on the resistance: ensemble draws make it once); None makes it here.
    ``gaps``: a :class:`PatchGaps` of ``patches``, as :func:`build_graph` (ensemble draws share one).
    """
    lc = cfg.links
    cidx, codes = countries if countries is not None else country_raster(inputs.countries, inputs.grid, cfg.inputs.country_field)
    return build_graph(
        resistance,
        labels,
        patches,
        inputs.grid,
        rule=lc.rule,
        connectivity=lc.connectivity,
        max_cwd=lc.max_cwd,
        max_euclid_m=lc.max_euclid_m,
        k_nearest=lc.k_nearest,
        drop_through_patches=lc.drop_through_patches,
        countries=cidx if codes else None,
        country_codes=codes,
        workers=lc.workers,
        gaps=gaps,
        **log,
    )


def link_rasters(cwd: CostDistanceResult) -> dict[str, tuple[np.ndarray, float | int]]:
    """``cwd.tif`` (float32, NaN where unreachable or no data) and ``allocation.tif`` (int32, 0 = none)."""
    cost = np.where(np.isfinite(cwd.cost), cwd.cost, np.nan).astype("float32")
    return {"cwd.tif": (cost, np.nan), "allocation.tif": (cwd.allocation.astype("int32"), 0)}


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    for name, (array, nodata) in link_rasters(ctx["cwd"]).items():
        writer.raster(name, array, ctx["inputs"].grid, nodata=nodata, description=RASTERS[name])


STAGE = Stage(
    "links",
    "least-cost links",
    lambda cfg, c: dict(
        zip(("graph", "cwd"), compute_links(cfg, c["inputs"], c["resistance"], c["labels"], c["patches"]), strict=True)
    ),
    config=(Section("links", LinkConfig, "least-cost links"),),
    needs=("inputs", "resistance", "patches"),
    produces=("graph", "cwd"),
    enabled=lambda cfg: cfg.links.enabled,
    outputs=LINK_FILES,
    layers=lambda cfg, c: graph_layers(c["graph"]),
    write=_write,
)
