r"""Barriers whose restoration most improves least-cost links (Linkage Mapper's Barrier Mapper).

The method of McRae, Hall, Beier & Theobald (2012), "Where to restore
ecological connectivity? Detecting barriers and quantifying restoration
benefits", PLoS ONE 7(12): e52604, doi:10.1371/journal.pone.0052604, as
implemented in Linkage Mapper's Barrier Mapper (``toolbox/scripts/s6_barriers.py``
of https://github.com/linkagescape/linkage-mapper, function
``step6_calc_barriers``).

For a detection radius :math:`R` and a link between patches :math:`A` and
:math:`B` of least-cost distance :math:`LCD`, a circle of radius :math:`R` is
moved over the grid.  Restoring the circle lets a path leave the cost surface
of :math:`A` anywhere in the circle, cross it in a straight line (at most its
diameter :math:`2R`) at the restored resistance :math:`r'`, and continue on
the cost surface of :math:`B`, so with :math:`D_R(c)` the cells whose centre
lies within :math:`R` of the centre of cell :math:`c`

.. math::

    LCD'(c) &= \min_{p \in D_R(c)} cwd_A(p) + \min_{q \in D_R(c)} cwd_B(q) + 2R\,r' \\
    \Delta LCD(c) &= \max\bigl(LCD - LCD'(c),\; 0\bigr) \qquad \text{(cost-weighted metres)} \\
    score(c) &= \Delta LCD(c) / 2R \qquad \text{(cost-weighted metres per metre restored)}

Linkage Mapper computes exactly ``(lc_dist - focal1 - focal2 - dia) / dia``
with ``dia = 2 * radius`` (its restored resistance is 1), ``focal1``/``focal2``
the focal minimum of each core's cost-weighted distance with ``"DATA"`` (no
data ignored), negative values set to null, per-link rasters combined by
``MAXIMUM`` (default) or summed (``SUM_BARRIERS``, negatives skipped), and
radii combined by ``MAXIMUM``.  Its default output is this score, the
"improvement per unit distance restored"; ``improvement`` below is
:math:`\Delta LCD` itself.

Two deliberate differences:

* Linkage Mapper takes the focal minimum over a thin annulus
  (``NbrAnnulus(radius - 1, radius, "MAP")``), because the least cost-weighted
  distance in a window lies on its edge (McRae et al. 2012, Fig. 2).  That
  holds for the cells of a disc too unless the disc holds a cell of the patch
  itself (cost 0); here the minimum is over the whole disc, as the formula
  states, so a circle reaching into patch :math:`A` uses cost 0 for it (a
  path can start anywhere in the patch), and the result does not depend on
  how a GIS rasterises an annulus one map unit wide.
* The restored resistance :math:`r'` is a parameter (default: the least
  resistance of the raster; Linkage Mapper assumes 1), and the least-cost
  distance of a link is the least of the graph edge's ``cwd`` and the cost
  distance between the two patches read off the cost rasters, so links from a
  planar graph (whose ``cwd`` may exceed the pairwise distance) are not
  credited with spurious improvements.

Speed: a cell can only improve a link if its circle holds a cell with
:math:`cwd_A < LCD - 2Rr'` and one with :math:`cwd_B < LCD - 2Rr'`, so each
link is computed only in the intersection of the bounding boxes of those two
sets, each grown by :math:`R`.  The disc minimum is a compiled sliding
minimum: per row, running minima over the few distinct half-widths of the
disc's rows (each from the next narrower), then per column the minimum over
the disc's rows of the matching half-width, about :math:`4R` comparisons per
cell (:math:`R` in cells) instead of :math:`\pi R^2`.  Links run in threads
(the kernel releases the GIL) and are merged in a fixed order, so results do
not depend on the number of workers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from numba import njit
from scipy import ndimage

import geopandas as gpd

from leopardgeo.config import Combine, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.executor import available_cores
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance
from leopardgeo.io import RASTERS
from leopardgeo.kernels.costdist import VALID_CONNECTIVITY, cost_distance_many
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs

__all__ = ["TOP_COLUMNS", "BarrierResult", "disc_half_widths", "map_barriers"]

logger = logging.getLogger(__name__)

#: Columns of :attr:`BarrierResult.top`, before ``geometry``.
TOP_COLUMNS = ("rank", "score", "improvement_cwd", "radius_m", "patch_a", "patch_b", "pct_of_lcd")

#: Relative slack when testing whether a cell centre lies on the circle's edge.
_EDGE_TOL = 1e-9


@dataclass(frozen=True)
class BarrierResult:
    """Outputs of :func:`map_barriers`, all rasters on the analysis grid.

    Attributes
    ----------
    score
        float32 improvement score: least-cost distance saved per metre restored
        (cost-weighted metres per metre), combined over links (max or sum) and
        the maximum over radii; 0 where no link improves, NaN on no-data cells.
    radius_m
        float32 detection radius (m) giving that maximum (the smallest on
        ties); NaN where the score is 0 or NaN.
    improvement
        float32 improvement (cost-weighted metres) at that radius, combined
        over links like the score (``score * 2 * radius_m``); 0 where no link
        improves, NaN on no-data cells.
    top
        Point layer of the ``n_top`` best barrier locations, best first:
        ``rank`` (1 = best), ``score``, ``improvement_cwd``, ``radius_m``,
        ``patch_a``, ``patch_b`` (the link the location improves most),
        ``pct_of_lcd`` (that link's improvement as a percentage of its
        least-cost distance) and ``geometry`` (the cell centre).  No two
        points lie within the larger of their two radii of each other
        (greedy non-maximum suppression, best first).
    """

    score: np.ndarray
    radius_m: np.ndarray
    improvement: np.ndarray
    top: gpd.GeoDataFrame


# --------------------------------------------------------------------------- the disc
def disc_half_widths(radius_cells: float) -> np.ndarray:
    """Half-width (in cells) of each row of a disc, rows ``-R .. R`` with ``R = floor(radius_cells)``.

    A cell at offset ``(dr, dc)`` from the centre is in the disc when its centre
    lies within the radius: ``dr**2 + dc**2 <= radius_cells**2`` (with a
    relative slack of 1e-9 for centres exactly on the circle).

    Examples
    --------
    >>> disc_half_widths(1.0).tolist(), disc_half_widths(1.5).tolist()
    ([0, 1, 0], [1, 1, 1])
    >>> disc_half_widths(3.0).tolist()
    [0, 2, 2, 3, 2, 2, 0]
    """
    r2 = float(radius_cells) ** 2 * (1.0 + _EDGE_TOL)
    top = math.isqrt(math.floor(r2))
    widths = []
    for dr in range(-top, top + 1):
        w = math.isqrt(math.floor(r2 - dr * dr))
        widths.append(w)
    return np.array(widths, dtype=np.int64)


@njit(cache=True, nogil=True)
def _padded(x, r0, r1, c0, c1, pad_rows, pad_cols):  # pragma: no cover - compiled
    """Copy of ``x[r0:r1, c0:c1]`` grown by ``pad_rows`` / ``pad_cols``, float64, with NaN and outside = +inf."""
    nr, nc = x.shape
    out = np.empty((r1 - r0 + 2 * pad_rows, c1 - c0 + 2 * pad_cols))
    for i in range(out.shape[0]):
        ii = r0 - pad_rows + i
        for j in range(out.shape[1]):
            jj = c0 - pad_cols + j
            if ii < 0 or ii >= nr or jj < 0 or jj >= nc:
                out[i, j] = np.inf
            else:
                v = x[ii, jj]
                out[i, j] = v if v < np.inf else np.inf  # NaN -> inf
    return out


@njit(cache=True, nogil=True)
def _disc_min(x, widths, row_width, r0, r1, c0, c1):  # pragma: no cover - compiled
    """Minimum of ``x`` over the disc around each cell of rows ``r0:r1``, cols ``c0:c1`` (float64).

    ``widths`` are the distinct half-widths of the disc's rows (ascending) and
    ``row_width[d]`` the index into ``widths`` of row offset ``d - R``.  NaN and
    cells outside ``x`` count as ``+inf``.  Rows are processed top to bottom,
    keeping the running minima of the last ``2R + 1`` rows (one per half-width,
    each grown from the next narrower) in a ring; the inner loops run along
    rows with branch-free selects, so they vectorise.
    """
    n_rows = row_width.size
    rad = (n_rows - 1) // 2
    k = widths.size
    wmax = widths[k - 1]
    xp = _padded(x, r0, r1, c0, c1, rad, wmax)
    ncol = c1 - c0
    ring = np.empty((k, n_rows, ncol))
    out = np.empty((r1 - r0, ncol))
    h = np.empty(ncol)
    for ii in range(xp.shape[0]):
        row = xp[ii]
        for j in range(ncol):
            h[j] = row[j + wmax]
        prev = 0
        for q in range(k):
            w = widths[q]
            for t in range(prev + 1, w + 1):
                for j in range(ncol):
                    a = row[j + wmax - t]
                    b = row[j + wmax + t]
                    m = h[j]
                    m = a if a < m else m
                    h[j] = b if b < m else m
            prev = w
            dst = ring[q, ii % n_rows]
            for j in range(ncol):
                dst[j] = h[j]
        o = ii - 2 * rad  # the output row whose disc ends at padded row ii
        if o >= 0:
            orow = out[o]
            src = ring[row_width[0], o % n_rows]
            for j in range(ncol):
                orow[j] = src[j]
            for d in range(1, n_rows):
                src = ring[row_width[d], (o + d) % n_rows]
                for j in range(ncol):
                    v = src[j]
                    m = orow[j]
                    orow[j] = v if v < m else m
    return out


@njit(cache=True, nogil=True)
def _link_improvement(cwd_a, cwd_b, widths, row_width, r0, r1, c0, c1, lcd, restored):  # pragma: no cover - compiled
    """``max(lcd - minA - minB - restored, 0)`` over the window (float64, cost-weighted metres)."""
    fa = _disc_min(cwd_a, widths, row_width, r0, r1, c0, c1)
    fb = _disc_min(cwd_b, widths, row_width, r0, r1, c0, c1)
    for i in range(fa.shape[0]):
        for j in range(fa.shape[1]):
            v = lcd - fa[i, j] - fb[i, j] - restored
            fa[i, j] = v if v > 0.0 else 0.0
    return fa


@njit(cache=True, nogil=True)
def _merge_link(acc, link_impr, link_idx, impr, r0, c0, k, add):  # pragma: no cover - compiled
    """Add (or take the max of) one link's window into ``acc``; record the link where it gains most so far."""
    for i in range(impr.shape[0]):
        for j in range(impr.shape[1]):
            v = impr[i, j]
            if v > 0.0:
                a = acc[r0 + i, c0 + j]
                acc[r0 + i, c0 + j] = a + v if add else (v if v > a else a)
                if v > link_impr[r0 + i, c0 + j]:
                    link_impr[r0 + i, c0 + j] = v
                    link_idx[r0 + i, c0 + j] = k


@njit(cache=True, nogil=True)
def _merge_radius(  # pragma: no cover - compiled
    acc, link_impr, link_idx, radius_m, score, best_radius, best_impr, best_link, best_link_impr
):
    """Keep, per cell, the radius of the highest score ``acc / 2R`` (strictly higher: earlier radii win ties)."""
    two_r = 2.0 * radius_m
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            a = acc[i, j]
            if a > 0.0:
                sc = a / two_r
                if sc > score[i, j]:
                    score[i, j] = sc
                    best_radius[i, j] = radius_m
                    best_impr[i, j] = a
                    best_link[i, j] = link_idx[i, j]
                    best_link_impr[i, j] = link_impr[i, j]


# --------------------------------------------------------------------------- checks
@dataclass(frozen=True, slots=True)
class _Radius:
    metres: float
    cells: float
    widths: np.ndarray  # distinct half-widths, ascending
    row_width: np.ndarray  # index into widths per row offset -R..R
    reach: int  # R in whole cells


def _radii(radii_m: Iterable[float] | float, cell_size_m: float) -> list[_Radius]:
    values = [radii_m] if isinstance(radii_m, int | float | np.number) else list(radii_m)
    if not values:
        msg = "radii_m: expected at least one detection radius in metres, found none. Pass e.g. radii_m=(1000, 2000)."
        raise ConfigError(msg)
    checked = []
    for raw in values:
        try:
            r = float(raw)
        except (TypeError, ValueError):
            r = math.nan
        if not (math.isfinite(r) and r > 0):
            msg = f"radii_m: expected positive finite radii in metres, found {raw!r}."
            raise ConfigError(msg)
        checked.append(r)
    out = []
    for r in sorted(set(checked)):
        cells = r / cell_size_m
        if cells < 1.0 - _EDGE_TOL:
            msg = (
                f"radii_m: expected radii of at least one cell ({cell_size_m:g} m), found {r:g} m. "
                f"Use radii >= {cell_size_m:g} m or a finer grid."
            )
            raise ConfigError(msg)
        per_row = disc_half_widths(cells)
        widths = np.unique(per_row)
        out.append(_Radius(r, cells, widths, np.searchsorted(widths, per_row).astype(np.int64), (per_row.size - 1) // 2))
    return out


def _combine(combine: Combine | str) -> Combine:
    try:
        return Combine(combine)
    except ValueError:
        msg = f"combine: expected one of {[c.value for c in Combine]}, found {combine!r}. Use 'max' (default) or 'sum'."
        raise ConfigError(msg) from None


def _n_top(n_top: int) -> int:
    if isinstance(n_top, bool) or not isinstance(n_top, int | np.integer) or n_top < 0:
        msg = f"n_top: expected a whole number >= 0 of barrier locations, found {n_top!r}."
        raise ConfigError(msg)
    return int(n_top)


def _restored(restored_resistance: float | None, res: np.ndarray) -> float:
    if restored_resistance is None:
        finite = res[np.isfinite(res)]
        if finite.size == 0:
            msg = "resistance: expected some cells with data, found only no data (NaN). Check the land mask."
            raise DataError(msg)
        v = float(finite.min())
    else:
        try:
            v = float(restored_resistance)
        except (TypeError, ValueError):
            v = math.nan
    if not (math.isfinite(v) and v > 0):
        msg = (
            f"restored_resistance: expected a positive finite resistance, found {restored_resistance!r}. "
            "Give the resistance of restored cells, e.g. the raster's minimum (the default)."
        )
        raise ConfigError(msg)
    return v


def _links(graph: nx.Graph, present: set[int]) -> list[tuple[int, int, float]]:
    """``(patch_a, patch_b, cwd)`` per edge, ``patch_a < patch_b``, sorted."""
    links = []
    for u, v, data in graph.edges(data=True):
        a, b = int(data.get("patch_a", u)), int(data.get("patch_b", v))
        if "cwd" not in data:
            msg = (
                f"graph: expected a 'cwd' (least-cost distance) attribute on every edge, found none on ({a}, {b}). "
                "Build the graph with leopardgeo.stages.graph.build_graph."
            )
            raise DataError(msg)
        d = float(data["cwd"])
        if not (math.isfinite(d) and d >= 0):
            msg = f"graph: expected a finite least-cost distance >= 0 on edge ({a}, {b}), found cwd={data['cwd']!r}."
            raise DataError(msg)
        if a == b:
            continue
        links.append((min(a, b), max(a, b), d))
    missing = sorted({p for a, b, _ in links for p in (a, b)} - present)
    if missing:
        msg = (
            f"graph: expected edges between patches of patch_labels, found patch id(s) {missing[:10]} with no cell. "
            "Use the graph and labels of the same run."
        )
        raise DataError(msg)
    return sorted(links)


def _check_raster(arr: np.ndarray, grid: Grid, what: str) -> None:
    if arr.shape != grid.shape:
        msg = f"{what}: expected the grid's shape {grid.shape}, found {arr.shape}. Read it on the analysis grid."
        raise DataError(msg)


# --------------------------------------------------------------------------- main
def map_barriers(
    resistance: np.ndarray,
    patch_labels: np.ndarray,
    graph: nx.Graph,
    grid: Grid,
    *,
    radii_m: Iterable[float] | float = (1000.0, 2000.0, 3000.0),
    restored_resistance: float | None = None,
    combine: Combine | str = Combine.MAX,
    n_top: int = 20,
    connectivity: int = 8,
    cwd: Mapping[int, np.ndarray] | None = None,
    workers: int | None = None,
    max_restored_cwd: float | None = None,
) -> BarrierResult:
    """Map where restoring a circle of habitat most shortens the least-cost links (Barrier Mapper).

    Parameters
    ----------
    resistance
        Resistance on ``grid`` (> 0; NaN = no data, impassable).
    patch_labels
        Patch id per cell (0 = no patch), the labels the graph was built from.
    graph
        Links as built by :func:`leopardgeo.stages.graph.build_graph`: edges between
        patch ids with their least-cost distance ``cwd`` (cost-weighted metres).
    grid
        The analysis grid.
    radii_m
        Detection radii in metres, each at least one cell; the score is the
        maximum over them.
    restored_resistance
        Resistance of restored cells; ``None`` = the least resistance of the
        raster (Linkage Mapper assumes 1).
    combine
        ``"max"`` (default, as Linkage Mapper) or ``"sum"`` of the improvements
        over links.
    n_top
        Number of barrier locations in :attr:`BarrierResult.top`.
    connectivity
        4, 8 or 16 neighbours for the cost distances (when ``cwd`` is not given).
    cwd
        Optional ``{patch_id: cost raster}`` (cost-weighted metres from each
        patch, ``inf``/NaN unreachable), e.g. from
        :func:`leopardgeo.kernels.costdist.cost_distance_many`, to reuse.  Otherwise
        computed, each patch's search stopped at the largest ``cwd`` of its
        links (farther cells cannot improve them).
    workers
        Threads for the cost distances and the links; ``None`` = the CPU count.
    max_restored_cwd
        Leave out, at each radius, the links whose least-cost distance stays above this (cost-weighted
        metres) even with their best circle restored (``LCD`` minus the link's largest improvement): a
        restoration that leaves a link beyond any dispersal adds no connectivity, however much it saves.
        ``None`` (default) keeps every link, as Linkage Mapper does.

    Returns
    -------
    BarrierResult
        ``score``, ``radius_m`` and ``improvement`` rasters and the ``top`` layer.

    Raises
    ------
    ResistanceError
        If a resistance is <= 0 or infinite.
    DataError
        If a raster is not on the grid, every cell is no data, ``patch_labels`` is not an integer
        raster, an edge has no ``cwd`` or names a patch with no cell, or
        ``cwd`` lacks a patch.
    ConfigError
        For radii below one cell (or not positive), an unknown ``combine``,
        ``n_top`` < 0, ``restored_resistance`` <= 0, a bad ``connectivity`` or
        ``workers``.

    Examples
    --------
    Two patches 8 cells apart along a corridor of resistance 1, blocked by a
    wall of resistance 50 two cells thick:

    >>> g = Grid.from_bounds((0, 0, 900, 100), cell_size_m=100, crs="EPSG:32652")
    >>> res = np.array([[1, 1, 1, 50, 50, 1, 1, 1, 1]], dtype=float)
    >>> labels = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 2]])
    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, cwd=10600.0)  # 5 steps of 100 + 2 of 2550 + 1 of 5000
    >>> out = map_barriers(res, labels, G, g, radii_m=[100], n_top=1)
    >>> out.improvement
    array([[   0.,    0., 2450., 7350., 7350., 2450.,    0.,    0.,    0.]], dtype=float32)

    Centred on the wall, the circle (cells 2..4) is entered at cost 200 from
    patch 1 and left at cost 2850 to patch 2, so the link would cost
    200 + 2850 + 2 * 100 m * 1 = 3250 instead of 10600: 7350 saved over 200 m
    restored.

    >>> out.score
    array([[ 0.  ,  0.  , 12.25, 36.75, 36.75, 12.25,  0.  ,  0.  ,  0.  ]], dtype=float32)
    >>> out.top[["rank", "score", "improvement_cwd", "radius_m", "patch_a", "patch_b"]].to_dict("records")
    [{'rank': 1, 'score': 36.75, 'improvement_cwd': 7350.0, 'radius_m': 100.0, 'patch_a': 1, 'patch_b': 2}]
    """
    res = np.asarray(resistance)
    _check_raster(res, grid, "resistance")
    if not np.issubdtype(res.dtype, np.floating):
        res = res.astype(np.float64)
    check_resistance(res, grid)
    labels = np.asarray(patch_labels)
    _check_raster(labels, grid, "patch_labels")
    if not np.issubdtype(labels.dtype, np.integer):
        msg = f"patch_labels: expected an integer label raster (0 = no patch), found dtype {labels.dtype}."
        raise DataError(msg)
    how = _combine(combine)
    keep = _n_top(n_top)
    if isinstance(connectivity, bool) or connectivity not in VALID_CONNECTIVITY:
        msg = f"connectivity: expected one of {', '.join(map(str, VALID_CONNECTIVITY))}, found {connectivity!r}."
        raise ConfigError(msg)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1):
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    cell = grid.cell_size_m
    radii = _radii(radii_m, cell)
    r_restored = _restored(restored_resistance, res)
    if max_restored_cwd is not None and not (max_restored_cwd > 0):
        msg = f"max_restored_cwd: expected a cost-weighted distance > 0 or None, found {max_restored_cwd!r}."
        raise ConfigError(msg)
    nodata = np.isnan(res)

    objects = ndimage.find_objects(np.where(labels > 0, labels, 0))
    present = {i + 1 for i, sl in enumerate(objects) if sl is not None}
    links = _links(graph, present)
    if not links:
        logger.warning("barrier mapper: the graph has no links; nothing to map")
        return _empty_result(grid, nodata)
    ids = sorted({p for a, b, _ in links for p in (a, b)})
    n_workers = int(workers) if workers is not None else max(1, available_cores())
    costs = _cost_rasters(res, labels, links, ids, cwd, grid, cell, connectivity, n_workers)

    # Least-cost distance per link: the edge's, or less if the cost rasters say so.
    lcds = []
    for a, b, d in links:
        sl = objects[b - 1]
        on_b = costs[a][sl][labels[sl] == b]
        d_raster = float(np.fmin.reduce(on_b)) if on_b.size else math.inf
        lcd = min(d, d_raster) if math.isfinite(d_raster) else d
        if lcd < d * (1 - 1e-9):
            logger.debug("barrier mapper: link %d-%d: cost rasters give LCD %.6g < edge cwd %.6g", a, b, lcd, d)
        lcds.append(lcd)
    row_min = {p: np.fmin.reduce(c, axis=1) for p, c in costs.items()}  # NaN only where a whole row is no data
    col_min = {p: np.fmin.reduce(c, axis=0) for p, c in costs.items()}

    best_score = np.zeros(grid.shape)
    best_radius = np.full(grid.shape, np.nan)
    best_impr = np.zeros(grid.shape)
    best_link = np.full(grid.shape, -1, dtype=np.int32)
    best_link_impr = np.zeros(grid.shape)
    for rad in radii:
        restored_cost = 2.0 * rad.metres * r_restored
        jobs = []
        for k, ((a, b, _), lcd) in enumerate(zip(links, lcds, strict=True)):
            win = _window(row_min[a], col_min[a], row_min[b], col_min[b], lcd - restored_cost, rad.reach, grid.shape)
            if win is not None:
                jobs.append((k, a, b, lcd, win))
        logger.info(
            "barrier mapper: radius %g m: %d of %d links can improve, windows %.1f%% of the grid",
            rad.metres,
            len(jobs),
            len(links),
            100 * sum((w[1] - w[0]) * (w[3] - w[2]) for *_, w in jobs) / best_score.size,
        )
        acc = np.zeros(grid.shape)
        link_impr = np.zeros(grid.shape)
        link_idx = np.full(grid.shape, -1, dtype=np.int32)

        def run(job, rad=rad, restored_cost=restored_cost):
            _, a, b, lcd, (r0, r1, c0, c1) = job
            return _link_improvement(costs[a], costs[b], rad.widths, rad.row_width, r0, r1, c0, c1, lcd, restored_cost)

        for job, impr in _map_in_order(run, jobs, n_workers):  # merged in link order, whatever the threads
            k, _, _, lcd, (r0, _, c0, _) = job
            if max_restored_cwd is not None and (impr.size == 0 or lcd - float(np.nanmax(impr)) > max_restored_cwd):
                continue  # no circle brings this link within dispersal reach
            _merge_link(acc, link_impr, link_idx, impr, r0, c0, k, how is Combine.SUM)
        _merge_radius(acc, link_impr, link_idx, rad.metres, best_score, best_radius, best_impr, best_link, best_link_impr)

    best_score[nodata] = np.nan
    best_impr[nodata] = np.nan
    best_radius[nodata] = np.nan
    top = _top_points(best_score, best_radius, best_impr, best_link, best_link_impr, links, lcds, grid, keep)
    logger.info(
        "barrier mapper: %d cells improve a link; best score %.4g cost-weighted m per m",
        int(np.count_nonzero(best_score > 0)),
        float(np.nanmax(best_score)) if np.isfinite(best_score).any() else math.nan,
    )
    return BarrierResult(
        score=best_score.astype(np.float32),
        radius_m=best_radius.astype(np.float32),
        improvement=best_impr.astype(np.float32),
        top=top,
    )


def _empty_result(grid: Grid, nodata: np.ndarray) -> BarrierResult:
    z = np.where(nodata, np.float32(np.nan), np.float32(0.0)).astype(np.float32)
    return BarrierResult(z, np.full(grid.shape, np.nan, np.float32), z.copy(), _top_frame([], grid))


def _cost_rasters(
    res: np.ndarray,
    labels: np.ndarray,
    links: list[tuple[int, int, float]],
    ids: list[int],
    cwd: Mapping[int, np.ndarray] | None,
    grid: Grid,
    cell: float,
    connectivity: int,
    n_workers: int,
) -> dict[int, np.ndarray]:
    """The cost raster of every linked patch: given, or searched up to the patch's largest link cost."""
    if cwd is not None:
        out = {}
        for p in ids:
            if p not in cwd:
                msg = f"cwd: expected a cost raster for every linked patch, found none for patch {p}. Omit cwd to compute them."
                raise DataError(msg)
            c = np.asarray(cwd[p])
            _check_raster(c, grid, f"cwd[{p}]")
            out[p] = c if c.dtype in (np.float32, np.float64) else c.astype(np.float64)
        return out
    reach = dict.fromkeys(ids, 0.0)
    for a, b, d in links:
        reach[a] = max(reach[a], d)
        reach[b] = max(reach[b], d)

    def one(p: int) -> np.ndarray:
        limit = reach[p] * (1 + 1e-9) if reach[p] > 0 else None
        found = cost_distance_many(res, labels, [p], cell_size_m=cell, connectivity=connectivity, max_cost=limit, workers=1)
        return found[p]

    logger.info("barrier mapper: cost distance from %d patches", len(ids))
    return dict(zip(ids, (c for _, c in _map_in_order(one, ids, n_workers)), strict=True))


def _map_in_order(fn, items, n_workers):
    """``(item, fn(item))`` in the order of ``items``, computed in up to ``n_workers`` threads a few at a time."""
    items = list(items)
    if n_workers <= 1 or len(items) <= 1:
        for it in items:
            yield it, fn(it)
        return
    with ThreadPoolExecutor(max_workers=min(n_workers, len(items))) as pool:
        step = 2 * n_workers  # bound the results held at once
        for i in range(0, len(items), step):
            chunk = items[i : i + step]
            yield from zip(chunk, pool.map(fn, chunk), strict=True)


def _window(
    rows_a: np.ndarray,
    cols_a: np.ndarray,
    rows_b: np.ndarray,
    cols_b: np.ndarray,
    below: float,
    reach: int,
    shape: tuple[int, int],
) -> tuple[int, int, int, int] | None:
    """Centre cells ``(r0, r1, c0, c1)`` whose circle can hold a cell of each surface below ``below``, or None."""
    if not below > 0:
        return None
    spans = []
    for rows, cols in ((rows_a, cols_a), (rows_b, cols_b)):
        r = np.flatnonzero(rows < below)
        c = np.flatnonzero(cols < below)
        if r.size == 0 or c.size == 0:
            return None
        spans.append((r[0] - reach, r[-1] + reach + 1, c[0] - reach, c[-1] + reach + 1))
    r0 = max(0, spans[0][0], spans[1][0])
    r1 = min(shape[0], spans[0][1], spans[1][1])
    c0 = max(0, spans[0][2], spans[1][2])
    c1 = min(shape[1], spans[0][3], spans[1][3])
    if r0 >= r1 or c0 >= c1:
        return None
    return int(r0), int(r1), int(c0), int(c1)


# --------------------------------------------------------------------------- top locations
def _top_frame(records: list[dict], grid: Grid) -> gpd.GeoDataFrame:
    ints = ("rank", "patch_a", "patch_b")
    cols = {name: np.array([r[name] for r in records], dtype=np.int64 if name in ints else np.float64) for name in TOP_COLUMNS}
    x, y = grid.xy(np.array([r["row"] for r in records], dtype=np.int64), np.array([r["col"] for r in records], dtype=np.int64))
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(x, y), crs=grid.crs)


def _top_points(
    score: np.ndarray,
    radius_m: np.ndarray,
    improvement: np.ndarray,
    link: np.ndarray,
    link_impr: np.ndarray,
    links: list[tuple[int, int, float]],
    lcds: list[float],
    grid: Grid,
    n_top: int,
) -> gpd.GeoDataFrame:
    """Greedy non-maximum suppression: best cells first, skipping any within max(radius) of one kept."""
    if n_top == 0:
        return _top_frame([], grid)
    flat = score.ravel()
    cand = np.flatnonzero(flat > 0)  # NaN > 0 is False
    order = cand[np.argsort(-flat[cand], kind="stable")]  # ties: row-major order
    nc = grid.shape[1]
    cell = grid.cell_size_m
    rad_flat = radius_m.ravel()
    kept_r: list[int] = []
    kept_c: list[int] = []
    kept_rad: list[float] = []
    block = 4096
    for start in range(0, order.size, block):
        if len(kept_r) >= n_top:
            break
        idx = order[start : start + block]
        rr, cc, rad = idx // nc, idx % nc, rad_flat[idx]
        if kept_r:
            d2 = ((rr[:, None] - np.array(kept_r)) * cell) ** 2 + ((cc[:, None] - np.array(kept_c)) * cell) ** 2
            near = d2 <= np.maximum(rad[:, None], np.array(kept_rad)) ** 2
            alive = np.flatnonzero(~near.any(axis=1))
        else:
            alive = np.arange(idx.size)
        first_new = len(kept_r)
        for i in alive:
            ok = True
            for j in range(first_new, len(kept_r)):  # only points kept in this block remain to check
                d2 = ((rr[i] - kept_r[j]) * cell) ** 2 + ((cc[i] - kept_c[j]) * cell) ** 2
                if d2 <= max(rad[i], kept_rad[j]) ** 2:
                    ok = False
                    break
            if ok:
                kept_r.append(int(rr[i]))
                kept_c.append(int(cc[i]))
                kept_rad.append(float(rad[i]))
                if len(kept_r) >= n_top:
                    break
    records = []
    for rank, (r, c) in enumerate(zip(kept_r, kept_c, strict=True), start=1):
        k = int(link[r, c])
        a, b, _ = links[k]
        records.append(
            {
                "rank": rank,
                "row": r,
                "col": c,
                "score": float(np.float32(score[r, c])),  # as in the rasters
                "improvement_cwd": float(np.float32(improvement[r, c])),
                "radius_m": float(radius_m[r, c]),
                "patch_a": a,
                "patch_b": b,
                "pct_of_lcd": 100.0 * float(link_impr[r, c]) / lcds[k] if lcds[k] > 0 else math.nan,
            }
        )
    return _top_frame(records, grid)


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierMapperConfig:
    """Barriers whose removal most improves links (Linkage Mapper's Barrier Mapper; McRae et al. 2012)."""

    enabled: bool = _f(True, doc="map restoration opportunities in `leopardgeo run` (needs [links] enabled)")
    min_radius_m: float = _f(1000.0, doc="smallest detection radius, metres")
    max_radius_m: float = _f(3000.0, doc="largest detection radius, metres")
    radius_step_m: float = _f(1000.0, doc="step between radii, metres")
    restored_resistance: float | None = _f(None, doc="resistance of restored cells; default: the raster's minimum")
    combine: Combine = _f(Combine.MAX, doc="max | sum over links of the improvement score")
    n_top: int = _f(20, doc="number of top barrier locations in the `barriers` layer")
    min_restored_probability: float = _f(
        0.0,
        doc=(
            "leave out links whose dispersal probability ([metrics] kernel on cwd, as the report rates the places) "
            "stays below this even with their best circle restored: restoring them adds no connectivity. 0 keeps "
            "every link (Linkage Mapper's Barrier Mapper ranks by cost saved alone)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "barrier_mapper")
        for name in ("min_radius_m", "max_radius_m", "radius_step_m"):
            _positive(getattr(self, name), f"barrier_mapper.{name}")
        if self.max_radius_m < self.min_radius_m:
            msg = f"[barrier_mapper] max_radius_m: expected >= min_radius_m ({self.min_radius_m}), found {self.max_radius_m!r}."
            raise ConfigError(msg)
        if self.restored_resistance is not None:
            _positive(self.restored_resistance, "barrier_mapper.restored_resistance")
        if self.n_top < 0:
            msg = f"[barrier_mapper] n_top: expected an integer >= 0, found {self.n_top!r}."
            raise ConfigError(msg)
        if not 0 <= self.min_restored_probability < 1:
            msg = (
                f"[barrier_mapper] min_restored_probability: expected a value in [0, 1), found "
                f"{self.min_restored_probability!r}. 0 keeps every link."
            )
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def barrier_radii_m(cfg: RunConfigLike) -> tuple[float, ...]:
    """Detection radii from ``[barrier_mapper]`` min, max and step (metres)."""
    b = cfg.barrier_mapper
    n = int(np.floor((b.max_radius_m - b.min_radius_m) / b.radius_step_m + 1e-9)) + 1
    return tuple(float(b.min_radius_m + i * b.radius_step_m) for i in range(n))


def compute_barriers(
    cfg: RunConfigLike, inputs: Inputs, resistance: np.ndarray, labels: np.ndarray, graph: nx.Graph
) -> BarrierResult:
    """Barrier Mapper: improvement in least-cost distance per metre restored (see :mod:`leopardgeo.stages.barrier_mapper`)."""
    b = cfg.barrier_mapper
    max_cwd = None
    if b.min_restored_probability > 0:  # p = exp(-k d) >= p_min  <=>  d <= ln(1 / p_min) / k
        from leopardgeo.stages.metrics import dispersal_k

        max_cwd = -math.log(b.min_restored_probability) / dispersal_k(cfg.metrics.median_dispersal, cfg.metrics.probability)
    return map_barriers(
        resistance,
        labels,
        graph,
        inputs.grid,
        radii_m=barrier_radii_m(cfg),
        restored_resistance=b.restored_resistance,
        combine=b.combine,
        n_top=b.n_top,
        connectivity=cfg.links.connectivity,
        workers=cfg.links.workers,
        max_restored_cwd=max_cwd,
    )


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    barr = ctx["barriers"]
    writer.raster("barriers.tif", barr.score, ctx["inputs"].grid, nodata=np.nan, description=RASTERS["barriers.tif"])


STAGE = Stage(
    "barriers",
    "barriers",
    lambda cfg, c: {"barriers": compute_barriers(cfg, c["inputs"], c["resistance"], c["labels"], c["graph"])},
    config=(Section("barrier_mapper", BarrierMapperConfig, "barrier (restoration) mapping"),),
    needs=("inputs", "resistance", "patches", "links"),
    after=("corridors", "circuit", "pinch_points"),  # the graph's in-place chain
    produces=("barriers",),
    mutates=("graph",),
    enabled=lambda cfg: cfg.barrier_mapper.enabled,
    outputs=("barriers.tif",),
    layers=lambda cfg, c: {"barriers": c["barriers"].top},
    write=_write,
)
