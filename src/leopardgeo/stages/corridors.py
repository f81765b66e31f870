r"""Least-cost corridors between linked patches (Linkage Mapper's *Linkage Pathways*).

For a link between patches :math:`A` and :math:`B` of the graph from
:func:`leopardgeo.stages.graph.build_graph`, the corridor value of a cell :math:`x` is
(McRae & Kavanagh 2011, Linkage Mapper)

.. math::

    \mathrm{corridor}_{AB}(x) = cwd_A(x) + cwd_B(x) - LCD_{AB}

where :math:`cwd_A` is the cost distance from patch :math:`A` alone (the other
patches are ordinary cells) and :math:`LCD_{AB}` the least-cost distance
between the two patches, all in cost-weighted metres.  It is 0 on the
least-cost path and grows with the extra cost of detouring through :math:`x`.
A link's *truncated* corridor keeps the cells with a value of at most its width
:math:`W_{AB}` (``width_cwd``, or ``width_fraction`` × :math:`LCD_{AB}`); the
*normalised* corridor map is the minimum over all links of their truncated
corridors.

Bounded searches: a cell of :math:`A`'s truncated corridors has
:math:`cwd_A(x) \le LCD_{AB} + W_{AB}`, so each patch is searched once, with
the cutoff ``max_cost`` = the largest :math:`LCD_{AB} + W_{AB}` over its links
(taking the link's ``cwd`` from the graph), and the work stays local.  A
search learns :math:`LCD_{AB}` when it first reaches :math:`B` (the least-cost
distance is the cost distance from :math:`A` to :math:`B`'s nearest cell), and
from then on needs only that link's true reach: a ``planar`` link's ``cwd`` can
be many times its least-cost distance (on the demo's 500 m grid, up to 30
times), and lowering each link's reach as soon as it is known cuts the cells
the searches expand about threefold there, with the same corridors bit for bit.
With the links stage's cost allocation the search learns an upper bound sooner,
on entering :math:`B`'s allocation: at a cell :math:`x` taken at cost
:math:`d`, :math:`LCD_{AB} \le d + cwd_{all}(x)`.  It also refuses the cells
near a third patch :math:`C` that is far from :math:`B`: a cell allocated to
:math:`C` is at least :math:`LCD_{CB} - cwd_{all}(x)` from :math:`B`, with
:math:`LCD_{CB}` bounded from below before any search by the costs of crossing
from one allocation region to the next on the way from :math:`C` to :math:`B`
(the bottleneck crossing, :func:`_floors`).

:math:`LCD_{AB}` is recomputed from the two searches as
:math:`\min_x (cwd_A(x) + cwd_B(x))`, so corridor values are never negative and
exactly 0 at the best cell.  It equals the graph's ``cwd`` up to rounding,
except for links of the ``planar`` rule whose ``cwd`` is an upper bound (their
path leaves the two cost-allocation regions); the table reports the
recomputed value.  A graph ``cwd`` below the least-cost distance found here
(graph built from another resistance raster or connectivity) is an error, as
the cutoff would then cut the corridor short.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
import shapely.geometry
from affine import Affine
from rasterio.features import shapes

from leopardgeo.config import _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.executor import available_cores, current_executor
from leopardgeo.core.grid import Grid
from leopardgeo.core.memory import available_bytes, check_memory
from leopardgeo.io import RASTERS
from leopardgeo.kernels._costdist_compiled import (
    _corridor_values,
    _descent,
    _least_sums,
    _mosaic_float32,
    _nearest_outside,
)
from leopardgeo.kernels.costdist import (
    NEIGHBOUR_OFFSETS,
    VALID_CONNECTIVITY,
    BoundRasters,
    SearchBound,
    allocation_crossings,
    allocation_exits,
    crossing_floors,
    pack_bound,
    prepare_search,
    single_source_window,
)
from leopardgeo.kernels.windowed import ArrayWindows, cost_distance_window, label_boxes
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs, protected_raster

__all__ = [
    "TABLE_COLUMNS",
    "CorridorResult",
    "CorridorWindow",
    "add_corridor_attributes",
    "least_cost_corridors",
]

logger = logging.getLogger(__name__)

#: Columns of :attr:`CorridorResult.table` (besides ``geometry``), in order.
TABLE_COLUMNS = (
    "patch_a",
    "patch_b",
    "cwd",
    "width_cwd",
    "corridor_width_m",
    "mean_resistance",
    "protected_frac",
    "area_ha",
    "n_cells",
)
_DTYPES = {"patch_a": "int32", "patch_b": "int32", "n_cells": "int64"}

#: Relative slack on the search cutoffs and on "the graph's cwd is the least-cost distance":
#: covers rounding differences between summation orders, far below any real difference.
_REL_TOL = 1e-9


@dataclass(frozen=True)
class CorridorWindow:
    """One link's truncated corridor, stored in its bounding window of the grid.

    Attributes
    ----------
    rows, cols
        Slices of the analysis grid the window covers (the bounding box of the
        corridor's cells).
    mask
        bool, True = cell in the truncated corridor.  Cells of the two end
        patches are included where they satisfy the inequality (those facing
        the other patch), exactly as the formula gives.
    value
        float32 corridor value (cost-weighted metres) inside the window, NaN
        outside ``mask``; empty (0 × 0) from corridors made without their
        measures (``least_cost_corridors(measures=False)``).

    Examples
    --------
    >>> w = CorridorWindow(slice(2, 3), slice(0, 2), np.array([[True, True]]), np.zeros((1, 2), np.float32))
    >>> w.shape, w.n_cells
    ((1, 2), 2)
    """

    rows: slice
    cols: slice
    mask: np.ndarray
    value: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the window."""
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    @property
    def n_cells(self) -> int:
        """Number of cells in the truncated corridor."""
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True)
class CorridorResult:
    """Outputs of :func:`least_cost_corridors`.

    Attributes
    ----------
    normalised
        float32 on the grid: minimum over links of their truncated corridor
        value (cost-weighted metres); NaN where no link's truncated corridor
        reaches (what ``corridors.tif`` holds).
    link_index
        int32 on the grid: 1-based row of ``table`` whose corridor gives the
        minimum (the first such row on ties), 0 where ``normalised`` is NaN.
    table
        One row per link, sorted by ``(patch_a, patch_b)``: ``patch_a`` <
        ``patch_b``, ``cwd`` (least-cost distance, cost-weighted metres),
        ``width_cwd`` (truncation width used, cost-weighted metres),
        ``corridor_width_m`` (narrowest width across the least-cost path, m),
        ``mean_resistance``, ``protected_frac``, ``area_ha``, ``n_cells`` and
        ``geometry`` (MultiPolygon of the corridor's cells), in the grid's CRS.
    windows
        ``{(patch_a, patch_b): CorridorWindow}``, one per table row.
    """

    normalised: np.ndarray
    link_index: np.ndarray
    table: gpd.GeoDataFrame
    windows: dict[tuple[int, int], CorridorWindow]


@dataclass(frozen=True, slots=True)
class _Link:
    a: int
    b: int
    graph_cwd: float
    geometry: object  # shapely geometry of the graph's least-cost path, or None


# ---------------------------------------------------------------------- checks
def _check_inputs(
    resistance: np.ndarray, patch_labels: np.ndarray, grid: Grid, protected: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    res = np.asarray(resistance)
    if res.shape != grid.shape:
        msg = f"resistance: expected the grid's shape {grid.shape}, found {res.shape}. Read it on the analysis grid."
        raise DataError(msg)
    if res.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        res = res.astype(np.float64)
    res = np.ascontiguousarray(res)
    labels = np.asarray(patch_labels)
    if labels.shape != grid.shape:
        msg = (
            f"patch_labels: expected the grid's shape {grid.shape}, found {labels.shape}. "
            "Use the labels of extract_patches on the same grid."
        )
        raise DataError(msg)
    if not np.issubdtype(labels.dtype, np.integer):
        msg = (
            f"patch_labels: expected an integer raster of patch ids (0 = no patch), found dtype {labels.dtype}. "
            "Use the int32 labels of extract_patches."
        )
        raise DataError(msg)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    prot = None
    if protected is not None:
        p = np.asarray(protected)
        if p.shape != grid.shape:
            msg = (
                f"protected: expected a bool raster of the grid's shape {grid.shape}, found {p.shape}. "
                "Rasterize the protected areas on the analysis grid."
            )
            raise DataError(msg)
        if p.dtype != np.bool_:
            if not np.isin(p, (0, 1)).all():
                msg = (
                    f"protected: expected a bool raster (True = inside a protected area), found dtype {p.dtype} "
                    "with values other than 0 and 1. Rasterize the protected areas to a 0/1 mask."
                )
                raise DataError(msg)
            p = p.astype(bool)
        prot = p
    return res, labels, prot


def _check_widths(width_cwd: float | None, width_fraction: float) -> None:
    checks = [("width_fraction", width_fraction, "(a share of each link's least-cost distance)")]
    if width_cwd is not None:
        checks.insert(0, ("width_cwd", width_cwd, "cost-weighted metres"))
    for name, value, unit in checks:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if isinstance(value, bool) or not (v > 0 and math.isfinite(v)):
            msg = f"[corridors] {name}: expected a positive finite number {unit}, found {value!r}. Set a value > 0."
            raise ConfigError(msg)


def _n_workers(workers: int | None, n_tasks: int) -> int:
    if workers is None:
        return max(1, min(n_tasks, available_cores()))
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    return int(workers)


def _graph_links(graph: nx.Graph, labels: np.ndarray) -> list[_Link]:
    """The graph's links with a finite ``cwd``, as ``patch_a < patch_b``, sorted; checks their patch ids."""
    present = np.zeros(int(labels.max(initial=0)) + 1, dtype=bool)
    present[labels[labels > 0]] = True
    links, bad_ids, skipped = [], set(), 0
    for u, v, d in graph.edges(data=True):
        a, b = sorted((int(u), int(v)))
        if a == b:  # a self-loop is no link
            continue
        for p in (a, b):
            if not (0 < p < present.size and present[p]):
                bad_ids.add(p)
        try:
            cwd = float(d.get("cwd", math.nan))
        except (TypeError, ValueError):
            cwd = math.nan
        if not math.isfinite(cwd):
            skipped += 1
            continue
        links.append(_Link(a, b, cwd, d.get("geometry")))
    if bad_ids:
        listed = ", ".join(str(p) for p in sorted(bad_ids)[:10])
        msg = (
            f"graph: expected links between patch ids of patch_labels, found link(s) to patch id(s) {listed} "
            "absent from the raster. Use the graph built from these patch labels (build_graph)."
        )
        raise DataError(msg)
    if skipped:
        logger.warning("%d link(s) with a non-finite cwd have no corridor", skipped)
    return sorted(links, key=lambda link: (link.a, link.b))


# ---------------------------------------------------------------------- paths
def _crossed(dr: int, dc: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The two cells a knight's move crosses, as offsets from its start (None for other moves)."""
    if abs(dr) + abs(dc) != 3:
        return None
    if abs(dc) == 2:
        return (0, dc // 2), (dr, dc // 2)
    return (dr // 2, 0), (dr // 2, dc)


@functools.lru_cache(maxsize=16)
def _descent_steps(connectivity: int, cell_size_m: float) -> tuple[np.ndarray, ...]:
    """``(drow, dcol, half, via, has_via)`` of :func:`~leopardgeo.kernels._costdist_compiled._descent`, made once.

    Shared by every call (not to be modified; left writable so that the compiled descent keeps its one signature).
    """
    off = NEIGHBOUR_OFFSETS[:connectivity]
    via = np.zeros((connectivity, 4), dtype=np.int64)
    has_via = np.zeros(connectivity, dtype=np.bool_)
    for k, (dr, dc) in enumerate(off):
        crossed = _crossed(int(dr), int(dc))
        if crossed is not None:
            via[k] = (*crossed[0], *crossed[1])
            has_via[k] = True
    half = np.array([math.hypot(dr, dc) * cell_size_m * 0.5 for dr, dc in off])
    return np.ascontiguousarray(off[:, 0]), np.ascontiguousarray(off[:, 1]), half, via, has_via


def _descend(cost: np.ndarray, res: np.ndarray, start: tuple[int, int], connectivity: int, cell_size_m: float) -> np.ndarray:
    """Cells from ``start`` down to a source (cost 0), each step to the predecessor of least ``cost + step``.

    ``(n, 2)`` rows and columns.  The search sets every reached cell's cost to the least ``cost(p) + step(p, x)``
    over its neighbours ``p``, so this retraces a least-cost path (compiled:
    :func:`leopardgeo.kernels._costdist_compiled._descent`).
    """
    drow, dcol, half, via, has_via = _descent_steps(int(connectivity), float(cell_size_m))
    cells = _descent(cost, res, int(start[0]), int(start[1]), drow, dcol, half, via, has_via)
    if cells.shape[0] == 0:  # pragma: no cover - cannot happen on a search's own costs
        msg = f"cost: expected the costs of one cost-distance search, found no descent to a source from {start}."
        raise DataError(msg)
    return cells


def _descend_found(
    found: _Found, res: np.ndarray, start: tuple[int, int], connectivity: int, cell_size_m: float
) -> np.ndarray:
    """:func:`_descend` on a search's cost (whole grid or window), in grid indices."""
    cost, (o_r, o_c), _ = found
    res_w = res[o_r : o_r + cost.shape[0], o_c : o_c + cost.shape[1]]
    cells = _descend(cost, res_w, (start[0] - o_r, start[1] - o_c), connectivity, cell_size_m)
    return cells + np.array([o_r, o_c], dtype=np.int64)


def _geometry_cells(geom: object, grid: Grid) -> np.ndarray | None:
    """``(row, col)`` of the vertices of a path through cell centres, or None if it is not one."""
    if geom is None or not isinstance(geom, shapely.Geometry) or geom.is_empty:
        return None
    xy = shapely.get_coordinates(geom)
    t = grid.transform
    cols = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    rows = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    if rows.min() < 0 or cols.min() < 0 or rows.max() >= grid.height or cols.max() >= grid.width:
        return None
    return np.column_stack([rows, cols])


def _narrowest_width(
    mask: np.ndarray, path: np.ndarray, labels_win: np.ndarray, ends: tuple[int, int], cell_size_m: float
) -> float:
    r"""Least ``2 × edt − cell`` over the path cells (window indices) inside the corridor and outside both end patches.

    ``edt`` is that of ``scipy.ndimage.distance_transform_edt(np.pad(mask, 1), sampling=cell_size_m)`` (the grid's
    edge counts as outside), found only at those cells and only as far as it can still lower the least
    (:func:`leopardgeo.kernels._costdist_compiled._nearest_outside`: rings of growing radius around each cell), with
    the distance as scipy computes it from the offset, :math:`\sqrt{(\Delta r\, s)^2 + (\Delta c\, s)^2}`.
    """
    h, w = mask.shape
    path = path[(path[:, 0] >= 0) & (path[:, 0] < h) & (path[:, 1] >= 0) & (path[:, 1] < w)]
    pr, pc = path[:, 0], path[:, 1]
    on = labels_win[pr, pc]
    keep = mask[pr, pc] & (on != ends[0]) & (on != ends[1])  # outside both end patches
    if not keep.any():
        return math.nan
    rows, cols = np.ascontiguousarray(pr[keep], dtype=np.int64), np.ascontiguousarray(pc[keep], dtype=np.int64)
    edt = _nearest_outside(np.ascontiguousarray(mask), rows, cols, float(cell_size_m))
    return float(2.0 * edt - cell_size_m)


# ---------------------------------------------------------------------- geometry
_SHAPES_LOCK = threading.Lock()


def _window_polygon(mask: np.ndarray, grid: Grid, row0: int, col0: int) -> shapely.MultiPolygon:
    """Exact cell outlines of the True cells of a window, dissolved into one MultiPolygon."""
    t = grid.transform
    sub = Affine(t.a, 0.0, t.c + col0 * t.a, 0.0, t.e, t.f + row0 * t.e)
    with _SHAPES_LOCK:  # one at a time: rasterio hides a warning of its in-memory datasets with catch_warnings,
        # which is not thread-safe (ensemble draws on threads)
        polys_in = list(shapes(mask.astype(np.uint8), mask=mask, connectivity=4, transform=sub))
    parts = [shapely.geometry.shape(g) for g, _ in polys_in]
    merged = shapely.union_all(parts)
    polys = [p for p in shapely.get_parts(merged) if isinstance(p, shapely.Polygon)]
    return shapely.MultiPolygon(polys)


def _empty_table(grid: Grid) -> gpd.GeoDataFrame:
    cols = {c: pd.Series([], dtype=_DTYPES.get(c, "float64")) for c in TABLE_COLUMNS}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=grid.crs), crs=grid.crs)


# ---------------------------------------------------------------------- searches
def _bbox(finite: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(row0, row1, col0, col1)`` (ends exclusive) of the True cells, or None."""
    rows = np.flatnonzero(finite.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(finite.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


#: What a search leaves for the corridors: the cost (whole grid, or its window), the grid cell of its first
#: cell, and the bounding box of its finite cells in grid indices (None when nothing is reached).
_Found = tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int] | None]


#: Largest work raster (bytes) a thread keeps from one :func:`least_cost_corridors` call for its next (8 M cells):
#: ensemble draws on a thread then reuse it instead of filling a new one each (2.2 M cells: ~4 ms a draw).
_KEEP_WORK_BYTES = 64 * 2**20
_KEPT = threading.local()


class _WorkPool:
    """Full-grid float64 rasters, inf everywhere, that one call's searches run in (each running search takes one)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self) -> np.ndarray:
        with self._lock:
            if self._free:
                return self._free.pop()
        kept = getattr(_KEPT, "work", None)  # the raster this thread's previous call left (all inf)
        if kept is not None and kept.shape == self.shape:
            _KEPT.work = None
            return kept
        return np.full(self.shape, np.inf)

    def give(self, work: np.ndarray) -> None:
        with self._lock:
            self._free.append(work)

    def keep_one(self) -> None:
        """Leave one of the rasters (all inf: only a finished search gives one back) to this thread's next call."""
        with self._lock:
            if self._free and self._free[-1].nbytes <= _KEEP_WORK_BYTES:
                _KEPT.work = self._free.pop()


def _whole_search(item: tuple) -> tuple[_Found, dict[int, tuple[int, int, int, int] | None], dict[int, float], Any]:
    """One patch's search on the whole grid (an executor task: module level, the scanned rasters through a shared handle).

    ``pool``: a :class:`_WorkPool` (local executors) or None; ``bound``: ``(handle or None, r1, parts)`` of
    :class:`~leopardgeo.kernels.costdist.SearchBound`, the handle's value ``h1`` or, with the allocation, their
    :class:`~leopardgeo.kernels.costdist.BoundRasters`; or None; ``ends``:
    ``(other patch, reach, rest)`` of the patch's links (``rest``: whether the bound's ``r1`` covers the link, i.e.
    its other patch was not searched before); ``tighten``: ``(a, b)`` such that a link whose other patch is at most
    ``d`` away has the reach ``a * d + b`` at most.  Returns the search; per other patch, the grid box of the cells
    expanded within the link's (slackened) reach, None if none (where the patch's costs can bound the other's
    search, :func:`_search_bound`); per other patch, the least upper bound the search found on its least-cost
    distance (the cost at which it reached the patch, or less with the bound's allocation; inf if none); and with
    the allocation what the search showed of the least costs to the other patches (``learned`` of
    :func:`~leopardgeo.kernels.costdist.single_source_window`), else None.  ``floors``: that function's ``floors``
    (one column per link), or None.  With the allocation the search also leaves the patch's own allocation region
    to the bound (``own_region``): those cells take their cost from the search from all patches where the bound's
    tests pass at it.
    """
    inp_h, p, cut, cell_size_m, pool, bound, ends, tighten, floors = item
    sb = None
    learned = None
    if bound is not None:
        low_h, r1, parts = bound
        low = low_h.get() if low_h is not None else None
        if isinstance(low, BoundRasters):  # h1 with its allocation, laid out once for all searches
            sb = SearchBound(low.h1, r1, parts=parts, allocation=low.allocation, rasters=low)
            learned = {}
        else:
            sb = SearchBound(low, r1, parts=parts)
    work = pool.take() if pool is not None else None
    reach = [r * (1.0 + _PRUNE_SLACK) for _, r, _ in ends]
    reached: list[float] = []
    cost, origin, box, boxes = single_source_window(
        inp_h.get(), p, cell_size_m=cell_size_m, max_cost=cut, bound=sb, work=work, within=reach,
        partners=[q for q, _, _ in ends], tighten=tighten, rest=[r for _, _, r in ends], reached=reached,
        floors=floors if learned is not None else None, learned=learned, own_region=learned is not None,
    )  # fmt: skip
    if pool is not None:  # not on an error: the raster may then not be all inf
        pool.give(work)
    others = [q for q, _, _ in ends]
    return (cost, origin, box), dict(zip(others, boxes, strict=True)), dict(zip(others, reached, strict=True)), learned


def _window_search(item: tuple) -> _Found:
    """One patch's search in a window around it (:func:`leopardgeo.kernels.windowed.cost_distance_window`)."""
    res_r, lab_r, p, box, cut, cell_size_m, connectivity, limit = item
    w = cost_distance_window(
        res_r, lab_r, p, cell_size_m=cell_size_m, max_cost=cut, connectivity=connectivity, box=box, limit_bytes=limit
    )
    found = _bbox(np.isfinite(w.cost))
    r0, c0 = w.offset
    box_grid = None if found is None else (found[0] + r0, found[1] + r0, found[2] + c0, found[3] + c0)
    return w.cost, (r0, c0), box_grid


def _at(found: _Found, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The search's cost on grid rows ``r0:r1``, columns ``c0:c1`` (inside its finite box, so inside its window)."""
    cost, (o_r, o_c), _ = found
    return cost[r0 - o_r : r1 - o_r, c0 - o_c : c1 - o_c]


#: Bytes a cell of one whole-grid per-patch search task: its cost raster 8, and the costs of patches kept for their
#: pending links and a pruning bound (8 each; in their boxes, counted as if two were whole-grid), with room to spare;
#: the bound with its allocation laid out for the kernel (8: :func:`~leopardgeo.kernels.costdist.pack_bound`), and the
#: edge flags while its regions are listed (1: :meth:`~leopardgeo.kernels.costdist.BoundRasters.regions`; the runs
#: and edge cells are few).
WHOLE_SEARCH_BYTES_PER_CELL = 13 + 2 * 8 + 8 + 1


#: Slack on the pruning bounds (relative): they hold to rounding, which this covers many times over.
_PRUNE_SLACK = 1e-9

#: No protected-area window (``_corridor_values``' ``prot`` without a protected raster).
_NO_PROTECTED = np.zeros((0, 0), dtype=np.bool_)


def _reach_line(width_cwd: float | None, width_fraction: float) -> tuple[float, float]:
    r"""``(a, b)`` such that ``a * d + b`` is at least a link's slackened reach when its least-cost distance is ``<= d``.

    The reach of a link of least-cost distance :math:`L` is :math:`(L + W(L))(1 + \epsilon)` (:data:`_REL_TOL`),
    with :math:`W(L)` the width (``width_cwd``, or ``width_fraction`` :math:`\times L`), and the searches' boxes use
    it times :math:`1 + \epsilon'` (:data:`_PRUNE_SLACK`).  The line's slope and intercept take both slacks once
    more, for the rounding of ``a * d + b`` itself.

    Examples
    --------
    >>> a, b = _reach_line(None, 0.1)
    >>> a > 1.1, b
    (True, 0.0)
    """
    grow = (1.0 + _REL_TOL) ** 2 * (1.0 + _PRUNE_SLACK) ** 2
    if width_cwd is not None:
        return grow, float(width_cwd) * grow
    return (1.0 + float(width_fraction)) * grow, 0.0


def _check_lower_bound(lower_bound: np.ndarray | None, grid: Grid) -> np.ndarray | None:
    """``lower_bound`` as a float64 raster of the grid (None stays None)."""
    if lower_bound is None:
        return None
    low = np.asarray(lower_bound)
    if low.shape != grid.shape or not np.issubdtype(low.dtype, np.floating):
        msg = (
            f"lower_bound: expected a float raster of the grid's shape {grid.shape} (the cost distance from all "
            f"patches, e.g. the links stage's cwd.cost), found {low.dtype} of shape {low.shape}. Leave it out or pass that."
        )
        raise DataError(msg)
    return np.ascontiguousarray(low, dtype=np.float64)


#: Most patch ids for which the corridors keep the least crossing between each two allocation regions (a dense
#: matrix: 8 bytes per pair, 32 MB at this size); beyond, each region's least crossing alone (looser bounds).
_MAX_CROSSING_IDS = 2048


def _check_allocation(
    allocation: np.ndarray | None,
    low: np.ndarray | None,
    labels: np.ndarray,
    res: np.ndarray,
    cell: float,
    connectivity: int,
    linked: list[int],
    crossings: np.ndarray | None = None,
) -> tuple[np.ndarray, Callable[[int], np.ndarray]] | None:
    """``lower_bound_allocation`` as an int32 raster, and ``bounds(q)``: per patch id, a lower bound on its least cost to q.

    None without it or without ``lower_bound``.  The bounds: the bottleneck crossing between the allocation regions
    (:func:`~leopardgeo.kernels.costdist.crossing_floors`, for the ``linked`` patches at once: one spanning tree),
    or beyond :data:`_MAX_CROSSING_IDS` ids the larger of the two regions' least crossings
    (:func:`~leopardgeo.kernels.costdist.allocation_exits`).  The search from all patches allocates each patch
    cell to its own patch at cost 0: a raster that does not is the allocation of other sources or of another
    search, and would give the partners wrong distances.  ``crossings``: those of
    :func:`~leopardgeo.kernels.costdist.allocation_crossings` when the caller has them (checked for shape only).
    """
    if allocation is None or low is None:
        return None
    alloc = np.asarray(allocation)
    if alloc.shape != labels.shape or not np.issubdtype(alloc.dtype, np.integer):
        found = f"{alloc.dtype} of shape {alloc.shape}"
    else:
        alloc = np.ascontiguousarray(alloc, dtype=np.int32)
        args = (low, alloc, labels, res)
        top = int(labels.max(initial=0))
        if crossings is not None and top < _MAX_CROSSING_IDS and np.shape(crossings) != (top + 1, top + 1):
            msg = (
                f"lower_bound_crossings: expected the ({top + 1}, {top + 1}) matrix of allocation_crossings for these "
                f"labels, found shape {np.shape(crossings)}. Leave it out or pass that search's crossings."
            )
            raise DataError(msg)
        try:
            if top >= _MAX_CROSSING_IDS:
                ex = allocation_exits(*args, cell_size_m=cell, connectivity=connectivity)
            elif crossings is None:
                crossings = allocation_crossings(*args, cell_size_m=cell, connectivity=connectivity)
        except DataError:
            found = "a raster that does not allocate each patch cell to its own patch at cost 0"
        else:
            if top >= _MAX_CROSSING_IDS:

                def bounds(q: int) -> np.ndarray:
                    return np.maximum(ex, ex[q]) if q < ex.size else np.zeros_like(ex)
            else:
                crossings = np.asarray(crossings, dtype=np.float64)
                rows = dict(zip(linked, crossing_floors(crossings, linked), strict=True))

                def bounds(q: int) -> np.ndarray:
                    return rows[q] if q in rows else np.zeros(crossings.shape[0])
            return alloc, bounds
    msg = (
        f"lower_bound_allocation: expected the allocation of the search whose costs are lower_bound (the links stage's "
        f"cwd.allocation, an integer raster of the grid's shape {labels.shape}), found {found}. Leave it out or pass that."
    )
    raise DataError(msg)


def _search_bound(
    ends: list[tuple[int, float]],
    searched: dict[int, _Found],
    low_h: Any,
    within: dict[int, dict[int, Any]],
    p: int,
    allocated: bool = False,
) -> tuple:
    r"""The pruning of patch ``p``'s search: :class:`~leopardgeo.kernels.costdist.SearchBound` as a task's tuple.

    A cell :math:`x` is in the truncated corridor of link :math:`(p, q)` only if
    :math:`d_p(x) + d_q(x) \le R_{pq}` (:math:`R_{pq}` = the link's reach, its cwd plus the width, and the
    corridor's own least-cost distance is no larger), and the cells with :math:`d_p + d_q \le R_{pq}` are closed
    along least-cost paths from :math:`p` (and from :math:`q`).  So the search from :math:`p` need only expand the
    cells that pass this test for one of its links, with :math:`d_q` replaced by

    * :math:`q`'s costs when :math:`q` was searched before (``searched``): exact wherever the test can hold, since
      :math:`q`'s own search expanded every cell with :math:`d_q + h \le R_{pq}` for a lower bound :math:`h` of
      :math:`d_p` -- the test of the bound's ``parts``, :math:`d_p + (d_q - R_{pq}) \le 0` for one such
      :math:`q`, made in place by the search over the box of the cells :math:`q`'s search expanded at
      :math:`d_q \le R_{pq}` (``within[q][p]``: every cell where the test is needed is one of them; elsewhere
      it fails);
    * else a lower bound: the cost distance from all patches (``low_h``, the links stage's one-pass search, with
      ``allocated`` its :func:`~leopardgeo.kernels.costdist.pack_bound` with the allocation) or 0
      -- the ``h1`` test with :math:`r_1 = \max R_{pq}` over those links.  With that search's allocation
      the search also learns upper bounds on those links' least-cost distances as it goes
      (:class:`~leopardgeo.kernels.costdist.SearchBound`'s ``allocation``), so :math:`r_1` comes down sooner,
      and the task gets lower bounds on the least cost between each patch and those other ends (:func:`_floors`)
      that refuse cells allocated to a patch far from all of them.  With the allocation the bound keeps ``h1``
      also when every partner was searched before (:math:`r_1 = -\infty`), so that the search can tell what it
      showed of the least costs to the other patches.

    :func:`~leopardgeo.kernels.costdist.single_source_window` then gives every corridor cell, and every cell of a
    least-cost path to one, its exact cost: the corridors do not change, bit for bit.  Both bounds get a relative
    slack (:data:`_PRUNE_SLACK`) for rounding.
    """
    rest = [r for q, r in ends if q not in searched]
    r1 = max(rest) * (1.0 + _PRUNE_SLACK) if rest else -math.inf
    parts = []
    for q, reach in ends:  # q's costs, tested in q's own box (elsewhere the test fails): no cell within it, none
        box = within[q][p] if q in searched else None
        if box is not None:
            cost, origin, _ = searched[q]
            parts.append((cost, origin, box, reach * (1.0 + _PRUNE_SLACK)))
    return (low_h, r1, tuple(parts)) if rest or allocated else (None, r1, tuple(parts))


def _floors(
    bounds: Callable[[int], np.ndarray], learned: dict[int, dict[str, Any]], rest: list[int], others: list[int]
) -> np.ndarray:
    r"""Lower bounds on the least cost between each patch (row, index = patch id) and each other end (column).

    For a patch :math:`a` and a link's other end :math:`q` still to be searched (``rest``; other columns 0): the
    bound from the allocation regions' crossings (``bounds(q)``, :func:`_check_allocation`), and, when :math:`a`
    was searched, what its search showed (``learned``: ``min(floor, at[q])``); 0 for :math:`a = q` and for row 0
    (inf, no chain of regions, is claimed as 0).  Shrunk by
    :data:`_PRUNE_SLACK` for rounding.  :func:`~leopardgeo.kernels.costdist.single_source_window` then refuses
    a cell allocated to :math:`a` at cost :math:`d` when :math:`d - cwd_{all}` exceeds every such link's reach
    less :math:`a`'s bound: that cell cannot lie in the corridor of any of those links.
    """
    out = None
    for k, q in enumerate(others):
        if q not in rest:
            continue
        col = bounds(q)
        col = np.where(np.isfinite(col), col, 0.0)  # no chain of regions: no path, but claim nothing
        if out is None:
            out = np.zeros((col.size, len(others)))
        for a, known in learned.items():
            if a < col.size:
                at = known["at"][q] if q < known["at"].size else math.inf
                seen = min(known["floor"], at)
                if math.isfinite(seen):
                    col[a] = max(col[a], seen)
        if q < col.size:
            col[q] = 0.0
        col[0] = 0.0
        out[:, k] = col * (1.0 - _PRUNE_SLACK)
    return out if out is not None else np.zeros((1, len(others)))


def windowed_search_fits(n_cells: int, task_bytes: int) -> bool:
    """Whether a whole-grid per-patch search task fits in ``task_bytes`` (:data:`WHOLE_SEARCH_BYTES_PER_CELL`).

    Examples
    --------
    >>> windowed_search_fits(1_000_000, 10**9), windowed_search_fits(10**9, 10**9)
    (True, False)
    """
    return WHOLE_SEARCH_BYTES_PER_CELL * int(n_cells) <= int(task_bytes)


# ---------------------------------------------------------------------- public API
def least_cost_corridors(
    resistance: np.ndarray,
    patch_labels: np.ndarray,
    graph: nx.Graph,
    grid: Grid,
    *,
    connectivity: int = 8,
    width_cwd: float | None = None,
    width_fraction: float = 0.1,
    protected: np.ndarray | None = None,
    workers: int | None = None,
    windowed: bool | None = None,
    executor: Any = None,
    polygons: bool = True,
    measures: bool = True,
    lower_bound: np.ndarray | None = None,
    lower_bound_allocation: np.ndarray | None = None,
    lower_bound_crossings: np.ndarray | None = None,
) -> CorridorResult:
    r"""Truncated least-cost corridors of every link of ``graph`` and their normalised mosaic.

    Parameters
    ----------
    resistance
        Resistance on ``grid`` (> 0; NaN = impassable), as given to
        :func:`leopardgeo.stages.graph.build_graph`.
    patch_labels
        Patch id per cell (0 = no patch).
    graph
        Links from :func:`leopardgeo.stages.graph.build_graph` (edge attribute ``cwd``,
        optionally ``geometry``).  Links with a non-finite ``cwd`` get no corridor.
    grid
        The analysis grid.
    connectivity
        4, 8 or 16 neighbours; use the graph's.
    width_cwd
        Truncation width in cost-weighted metres: keep cells whose corridor value
        is at most this.  ``None`` = ``width_fraction`` × each link's least-cost
        distance.
    width_fraction
        Truncation width as a share of each link's least-cost distance (used
        when ``width_cwd`` is ``None``).
    protected
        Optional bool raster, True = inside a protected area; gives
        ``protected_frac``.
    workers
        Threads for the per-patch searches; ``None`` = the run's executor
        (:func:`leopardgeo.core.executor.current_executor`).
    windowed
        Search each patch in a window around it, read with a halo of its
        cutoff (:mod:`leopardgeo.kernels.windowed`), instead of on the whole
        grid: the same corridors bit for bit, with a search's memory that of
        its window.  ``None`` (default): windowed when whole-grid searches
        would not fit in one task's memory (:func:`windowed_search_fits`).
    executor
        Runs the per-patch searches (``map`` in item order, ``share``); default
        from ``workers``.  The result does not depend on it.
    polygons
        Outline each corridor (the table's ``geometry``); False leaves it None
        (everything else the same), for callers that use only the maps and
        measures (ensemble draws).
    measures
        Give each corridor its ``mean_resistance`` and ``protected_frac`` and
        its window its values; False leaves them NaN and the windows' values
        empty (the masks, the mosaic, the widths, areas and cwd the same), for
        callers that use none of them (ensemble draws): one pass over each
        window with half the memory traffic.
    lower_bound
        The cost distance from all patches together on this resistance with
        this connectivity (``cost_distance(resistance, patch_labels).cost``:
        the links stage's ``cwd``), or None.  Given, the whole-grid searches
        expand fewer cells (:func:`_search_bound`): the same corridors, sooner.
        It must be that raster (or lower): a larger one cuts corridors short.
    lower_bound_allocation
        That search's allocation (``cwd.allocation``), or None.  Given, with
        ``lower_bound`` exactly that search's cost, a search that takes a cell
        allocated to the other patch of one of its links at cost :math:`d`
        learns that the link's least-cost distance is at most :math:`d` plus
        the cell's ``lower_bound``, and its reach comes down then, not only
        when the search reaches that patch: the same corridors, sooner.
    lower_bound_crossings
        That search's :func:`~leopardgeo.kernels.costdist.allocation_crossings` with these labels and this
        resistance (``cwd.crossings`` of a ``planar`` graph), or None: computed here.  Given, it must be that
        matrix (it bounds the searches as ``lower_bound`` does; only its shape is checked), and the allocation is
        not scanned again.

    Returns
    -------
    CorridorResult
        The normalised corridor map (float32, NaN outside every truncated
        corridor), the index of the link giving it, the per-link table and the
        per-link windows.

    Raises
    ------
    DataError
        If a raster's shape is not the grid's, ``patch_labels`` is not an
        integer raster, ``lower_bound_allocation`` does not allocate each patch
        cell to its own patch, ``protected`` is not 0/1, a link names a patch id absent
        from ``patch_labels``, or a link's ``cwd`` is below the least-cost
        distance found here (graph from another resistance or connectivity).
    ConfigError
        If ``width_cwd`` or ``width_fraction`` is not a positive finite
        number, or ``connectivity`` / ``workers`` is invalid.
    ResistanceError, NoPathError
        As :func:`leopardgeo.kernels.costdist.cost_distance`.

    Notes
    -----
    Table columns: ``mean_resistance`` is the mean resistance over the
    corridor's cells; ``protected_frac`` the share of them inside protected
    areas (NaN without ``protected``); ``area_ha`` = ``n_cells`` × cell area.
    ``corridor_width_m`` is the width at the narrowest point across the
    least-cost path: with ``edt`` the Euclidean distance (m) from each corridor
    cell to the nearest cell outside the corridor (the grid's edge counts as
    outside), the local width at a path cell is :math:`2\,edt - s` (cell size
    :math:`s`; a straight corridor ``n`` cells wide gives :math:`n s`), and the
    link's width is its minimum over the path cells outside the two end
    patches (NaN if there is none, e.g. for touching patches).  The path is the
    graph edge's ``geometry`` (cell centres) when it is a least-cost path here;
    otherwise (a ``planar`` upper-bound link, no geometry) a least-cost path is
    retraced from the cost distances.

    Corridor values are exact sums of two searches, so on the least-cost path
    they are 0 up to rounding (a few ulps of the least-cost distance).  A
    search's costs are kept, in the box of the cells it reached, while the
    patch has links pending; each corridor is stored in its bounding window.

    On local threads the patches with the farthest reach are searched first
    (that reach as the searches so far have lowered it)
    and each search is pruned to the cells that can lie in one of its
    corridors (:func:`_search_bound`); the corridors are those of the
    unpruned searches, bit for bit.

    Examples
    --------
    >>> from leopardgeo.stages.graph import build_graph
    >>> from leopardgeo.stages.patches import extract_patches
    >>> g = Grid.from_bounds((0, 0, 500, 300), cell_size_m=100, crs="EPSG:32652")
    >>> s = np.zeros((3, 5))
    >>> s[:, [0, 4]] = 0.9  # two patches, one column each
    >>> r = np.array([[2.0] * 5, [1.0] * 5, [2.0] * 5])  # a cheap middle row
    >>> labels, p = extract_patches(s, g, min_area_ha=0)
    >>> G, _ = build_graph(r, labels, p, g)
    >>> out = least_cost_corridors(r, labels, G, g, width_cwd=150)
    >>> out.normalised.round(1)
    array([[112.1,   nan,   nan,   nan, 112.1],
           [  0. ,   0. ,   0. ,   0. ,   0. ],
           [112.1,   nan,   nan,   nan, 112.1]], dtype=float32)
    >>> out.table[["patch_a", "patch_b", "cwd", "n_cells", "area_ha", "corridor_width_m"]].to_dict("records")
    [{'patch_a': 1, 'patch_b': 2, 'cwd': 400.0, 'n_cells': 9, 'area_ha': 9.0, 'corridor_width_m': 100.0}]
    >>> wide = least_cost_corridors(r, labels, G, g, width_fraction=1.0)  # width 400: the whole strip
    >>> float(wide.table.loc[0, "corridor_width_m"]), round(float(wide.table.loc[0, "mean_resistance"]), 3)
    (300.0, 1.667)
    """
    res, labels, prot = _check_inputs(resistance, patch_labels, grid, protected)
    _check_widths(width_cwd, width_fraction)
    if isinstance(connectivity, bool) or connectivity not in VALID_CONNECTIVITY:
        msg = (
            f"connectivity: expected one of {', '.join(map(str, VALID_CONNECTIVITY))}, found {connectivity!r}. "
            "Use the connectivity the graph was built with."
        )
        raise ConfigError(msg)
    if graph.graph.get("connectivity", connectivity) != connectivity:
        logger.warning("corridors use %s neighbours but the graph was built with %s", connectivity, graph.graph["connectivity"])
    links = _graph_links(graph, labels)
    cell = grid.cell_size_m

    def width_of(lcd: float) -> float:
        return float(width_cwd) if width_cwd is not None else float(width_fraction) * lcd

    best = np.full(grid.shape, np.inf)
    link_index = np.zeros(grid.shape, dtype=np.int32)
    if not links:
        logger.info("no link with a finite cwd: no corridor")
        return CorridorResult(np.full(grid.shape, np.nan, np.float32), link_index, _empty_table(grid), {})

    # Each patch is searched once, up to the farthest reach of its links' truncated corridors.
    cutoffs: dict[int, float] = {}
    uses: dict[int, int] = {}
    ends: dict[int, list[tuple[int, float]]] = {}  # patch -> (other patch, reach) of each of its links
    need_order: list[int] = []  # patches in the order the links first need them
    for link in links:
        reach = (link.graph_cwd + width_of(link.graph_cwd)) * (1.0 + _REL_TOL)
        for p, q in ((link.a, link.b), (link.b, link.a)):
            if p not in cutoffs:
                need_order.append(p)
            cutoffs[p] = max(cutoffs.get(p, 0.0), reach)
            uses[p] = uses.get(p, 0) + 1
            ends.setdefault(p, []).append((q, reach))
    ex = executor if executor is not None else current_executor(None if workers is None else _n_workers(workers, 1))
    n_batch = max(1, min(int(getattr(ex, "slots", 1)), len(need_order)))
    task_bytes = int(ex.task_memory_bytes()) if hasattr(ex, "task_memory_bytes") else available_bytes()
    if windowed is None:
        windowed = not windowed_search_fits(res.size, task_bytes)
    cache: dict[int, _Found] = {}
    handles: list[Any] = []
    pool: _WorkPool | None = None
    order = need_order
    if windowed:
        res_h, lab_h = ex.share(res), ex.share(labels)  # on Dask: sent to each worker once
        handles += [res_h, lab_h]
        boxes = label_boxes(labels)
        res_r, lab_r = ArrayWindows(res_h), ArrayWindows(lab_h)

        def item(p: int) -> tuple:
            return (res_r, lab_r, p, boxes[p], cutoffs[p], cell, connectivity, task_bytes)

        task: Callable[[tuple], Any] = _window_search
    else:
        check_memory(
            WHOLE_SEARCH_BYTES_PER_CELL * res.size,
            what=f"a whole-grid cost-distance search of the corridors ({res.size:,} cells)",
            fix="Leave [corridors] windowed unset or set it to true (searches in windows around each patch).",
            limit_bytes=task_bytes,
        )
        # validated and scanned once for all searches (not once per search), sent to each worker once
        inp_h = ex.share(prepare_search(res, labels, cell_size_m=cell, connectivity=connectivity))
        low = _check_lower_bound(lower_bound, grid)
        checked = _check_allocation(
            lower_bound_allocation, low, labels, res, cell, connectivity, sorted(ends), lower_bound_crossings
        )
        alloc, bounds = (None, None) if checked is None else checked
        # with the allocation, the two laid out once for all searches (pack_bound), not by each, and its regions listed
        # (each search leaves its own patch's region to the bound: own_region)
        laid = None if low is None or alloc is None else pack_bound(low, alloc)
        if laid is not None:
            laid.regions(connectivity)
        low_h = None if low is None else ex.share(low if laid is None else laid)
        handles += [h for h in (inp_h, low_h) if h is not None]
        # local threads: the searches run in reused rasters, and a patch's search is pruned with the costs of the
        # patches searched before it (in memory here); the patches with the farthest reach first, as they gain most
        local = getattr(ex, "kind", None) == "threads"
        pool = _WorkPool(res.shape) if local else None
        order = sorted(need_order, key=lambda p: -cutoffs[p]) if local else need_order

        within: dict[int, dict[int, Any]] = {}  # patch -> other patch -> box of its cells within the link's reach
        # a link's reach as first known from its cwd in the graph, then from the least upper bound on its least-cost
        # distance that a search from one end found (on reaching the other, or its allocation): the corridor needs
        # only the cells within the latter
        tight: dict[tuple[int, int], float] = {}
        tighten = _reach_line(width_cwd, width_fraction)

        # per searched patch, what its search showed of the least costs to the others (with the allocation)
        learned: dict[int, dict[str, Any]] = {}

        def item(p: int) -> tuple:
            searched = cache if local else {}
            now = [(q, min(r, tight.get((min(p, q), max(p, q)), math.inf))) for q, r in ends[p]]
            bound = _search_bound(now, searched, low_h, within, p, alloc is not None)
            cut = max(r for _, r in now)
            rest = [q for q, _ in now if q not in searched]
            fl = None if bounds is None else _floors(bounds, learned, rest, [q for q, _ in now])
            return (inp_h, p, cut, cell, pool, bound, [(q, r, q not in searched) for q, r in now], tighten, fl)

        task = _whole_search
    logger.debug("corridors: %s searches, %d at a time", "windowed" if windowed else "whole-grid", n_batch)
    reach_now = dict(cutoffs)  # per patch, the farthest reach of its links as the searches so far have lowered it
    next_patch = 0
    made: list[tuple[CorridorWindow, dict, np.ndarray] | None] = [None] * len(links)
    pending = list(range(len(links)))
    try:
        while pending:  # the next few patches as tasks of the executor, then every link with both ends searched
            if not windowed and local and next_patch:  # the farthest reach first, as the searches so far have lowered it
                left = order[next_patch:]
                left.sort(key=lambda p: -reach_now[p])
                order[next_patch:] = left
            batch = order[next_patch : next_patch + n_batch]
            if not batch:  # pragma: no cover - every patch of a link is in the order
                msg = f"corridors: links {[(links[i].a, links[i].b) for i in pending]} left without their searches."
                raise RuntimeError(msg)
            next_patch += len(batch)
            found = ex.map(task, [item(p) for p in batch])
            if not windowed:
                within.update(zip(batch, (w for _, w, _, _ in found), strict=True))
                for p, (_, _, reached, known) in zip(batch, found, strict=True):
                    if known is not None and local:
                        learned[p] = known
                    for q, d in reached.items():
                        if math.isfinite(d):  # the least-cost distance of the link is at most d
                            key = (min(p, q), max(p, q))
                            t = (d + width_of(d)) * (1.0 + _REL_TOL)
                            if t < tight.get(key, math.inf):
                                tight[key] = t
                                for e in key:  # the farthest reach of each end, as its tightened links now have it
                                    reach_now[e] = max(min(r, tight.get((min(e, o), max(e, o)), math.inf)) for o, r in ends[e])
                found = [f for f, _, _, _ in found]
            cache.update(zip(batch, found, strict=True))
            still = []
            for i in pending:
                link = links[i]
                a, b = link.a, link.b
                if a not in cache or b not in cache:
                    still.append(i)
                    continue
                reached = None if windowed else (within[a][b], within[b][a])
                win, record = _one_corridor(
                    link, cache[a], cache[b], res, labels, prot, grid, connectivity, width_of, cutoffs, polygons=polygons,
                    measures=measures, within=reached, mosaic=(best, link_index), index=i + 1,
                )
                made[i] = (win, record)
                for p in (a, b):
                    uses[p] -= 1
                    if uses[p] == 0:
                        del cache[p]  # release the patch's cost array
            pending = still
    finally:
        for h in handles:
            ex.release(h)
        if executor is None and workers is not None:
            ex.close()
        if pool is not None:
            pool.keep_one()

    rows, windows = [], {}
    for link, one in zip(links, made, strict=True):  # in link order (the mosaic took each link as it came)
        win, record = one
        rows.append(record)
        windows[(link.a, link.b)] = win

    normalised = _mosaic_float32(best)  # NaN outside every corridor
    del best
    table = gpd.GeoDataFrame(pd.DataFrame.from_records(rows), geometry="geometry", crs=grid.crs)
    for col, dtype in _DTYPES.items():
        table[col] = table[col].astype(dtype)
    table = table[[*TABLE_COLUMNS, "geometry"]]
    logger.info(
        "%d least-cost corridors (%s), %d cells in the mosaic",
        len(table),
        f"width {width_cwd:g} cost-weighted m" if width_cwd is not None else f"width {width_fraction:g} × LCD",
        int(np.count_nonzero(link_index)),
    )
    return CorridorResult(normalised, link_index, table, windows)


def _within_box(row: np.ndarray, col: np.ndarray, lcd: float, width: float) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` of the cells with ``(a + b) - lcd <= width``, from the least sums by line.

    ``row`` and ``col`` are the least ``a + b`` of each row and column (``_least_sums``); ``(0, 0, 0, 0)`` if no cell
    qualifies.

    Examples
    --------
    >>> a = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    >>> lcd, row, col, _, _ = _least_sums(a, a[:, ::-1])
    >>> float(lcd), _within_box(row, col, lcd, 0.0), _within_box(row, col, lcd, 2.0)
    (2.0, (0, 1, 0, 3), (0, 2, 0, 3))
    """
    rows = np.flatnonzero((row - lcd) <= width)
    cols = np.flatnonzero((col - lcd) <= width)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _one_corridor(
    link: _Link,
    found_a: _Found,
    found_b: _Found,
    res: np.ndarray,
    labels: np.ndarray,
    prot: np.ndarray | None,
    grid: Grid,
    connectivity: int,
    width_of: Callable[[float], float],
    cutoffs: dict[int, float],
    *,
    polygons: bool = True,
    measures: bool = True,
    within: tuple[Any, Any] | None = None,
    mosaic: tuple[np.ndarray, np.ndarray],
    index: int,
) -> tuple[CorridorWindow, dict]:
    """The truncated corridor of one link, its window and its table record; it enters the mosaic as link ``index``.

    ``mosaic``: ``(best, link_index)`` of :func:`least_cost_corridors`, updated in place (the least value, the first
    link in link order on a tie: :func:`~leopardgeo.kernels._costdist_compiled._corridor_values`).

    ``within``: the boxes of the cells each search expanded within the link's reach (:func:`_whole_search`), which
    hold the link's corridor and its least-cost cell: the two passes over the searches' overlap are confined to
    them (the same results); None: the overlap of the searches' boxes.
    """
    a, b = link.a, link.b
    box_a, box_b = (found_a[2], found_b[2]) if within is None else within
    lcd = math.inf
    r0 = r1 = c0 = c1 = 0
    if box_a is not None and box_b is not None:
        r0, r1 = max(box_a[0], box_b[0]), min(box_a[1], box_b[1])
        c0, c1 = max(box_a[2], box_b[2]), min(box_a[3], box_b[3])
        if r0 < r1 and c0 < c1:
            cost_a, cost_b = _at(found_a, r0, r1, c0, c1), _at(found_b, r0, r1, c0, c1)  # NaN on no data, inf beyond a cutoff
            lcd, row_least, col_least, at_r, at_c = _least_sums(cost_a, cost_b)  # the least finite cwd_a + cwd_b
            lcd = float(lcd)
    width = width_of(lcd)
    # the link's own reach (its cwd plus the width): a corridor beyond it means a graph from other rasters, and the
    # searches, pruned to each link's reach, would not hold it whole
    if not (lcd + width <= (link.graph_cwd + width_of(link.graph_cwd)) * (1.0 + _REL_TOL) <= min(cutoffs[a], cutoffs[b])):
        msg = (
            f"graph: expected link {a}-{b} to have cwd >= the least-cost distance between the patches, found cwd "
            f"{link.graph_cwd:.6g} but {'no path' if math.isinf(lcd) else f'a least-cost distance of {lcd:.6g}'} on "
            f"this resistance raster with {connectivity} neighbours. Build the graph from the same resistance, patch "
            "labels and connectivity."
        )
        raise DataError(msg)
    # the corridor's bounding window first (never empty: the least-cost cell has value 0), then its values there
    w0, w1, v0, v1 = _within_box(row_least, col_least, lcd, width)
    rows, cols = slice(r0 + w0, r0 + w1), slice(c0 + v0, c0 + v1)
    win_a, win_b = cost_a[w0:w1, v0:v1], cost_b[w0:w1, v0:v1]
    prot_win = _NO_PROTECTED if prot is None else prot[rows, cols]
    inside, value32, n, res_in, n_prot = _corridor_values(
        win_a, win_b, lcd, width, *mosaic, rows.start, cols.start, index, res[rows, cols], prot_win, measures
    )
    win = CorridorWindow(rows, cols, inside, value32)
    labels_win = labels[rows, cols]
    path = _path_cells(link, lcd, found_a, found_b, res, grid, connectivity, rows, cols, (win_a, win_b), (at_r - w0, at_c - v0))
    record = {
        "patch_a": a,
        "patch_b": b,
        "cwd": lcd,
        "width_cwd": width,
        "corridor_width_m": _narrowest_width(inside, path, labels_win, (a, b), grid.cell_size_m),
        # res_in: res[rows, cols][inside]
        "mean_resistance": float(np.mean(res_in, dtype=np.float64)) if measures else math.nan,
        "protected_frac": float(n_prot) / n if prot is not None and measures else math.nan,
        "area_ha": n * grid.cell_area_ha,
        "n_cells": n,
        "geometry": _window_polygon(inside, grid, rows.start, cols.start) if polygons else None,
    }
    if link.graph_cwd > lcd * (1.0 + _REL_TOL):
        logger.debug("link %d-%d: graph cwd %.6g above the least-cost distance %.6g", a, b, link.graph_cwd, lcd)
    return win, record


def _path_cells(
    link: _Link,
    lcd: float,
    found_a: _Found,
    found_b: _Found,
    res: np.ndarray,
    grid: Grid,
    connectivity: int,
    rows: slice,
    cols: slice,
    costs: tuple[np.ndarray, np.ndarray],
    least: tuple[int, int],
) -> np.ndarray:
    """A least-cost path's cells in window indices: the edge's own path when it is one, else retraced.

    The edge's path is taken when its ``cwd`` is the least-cost distance and the corridor value
    ``(cwd_a + cwd_b) - lcd`` is 0 (up to rounding) on each of its cells; ``costs``: the two searches' costs in
    the window; ``least``: the window cell of the least sum (first in row-major order), where a retraced path
    starts.
    """
    cells = _geometry_cells(link.geometry, grid) if link.graph_cwd <= lcd * (1.0 + _REL_TOL) else None
    if cells is not None:
        wr, wc = cells[:, 0] - rows.start, cells[:, 1] - cols.start
        win_a, win_b = costs
        h, w = win_a.shape
        ok = (wr >= 0) & (wr < h) & (wc >= 0) & (wc < w)
        if ok.all() and (((win_a[wr, wc] + win_b[wr, wc]) - lcd) <= _REL_TOL * lcd).all():
            return np.column_stack([wr, wc])
    # retrace from a cell of least cwd_a + cwd_b, down to each patch
    start = (least[0] + rows.start, least[1] + cols.start)
    to_a = _descend_found(found_a, res, start, connectivity, grid.cell_size_m)
    to_b = _descend_found(found_b, res, start, connectivity, grid.cell_size_m)
    full = np.concatenate([to_a[::-1], to_b[1:]])
    return full - np.array([rows.start, cols.start], dtype=np.int64)


def add_corridor_attributes(graph: nx.Graph, result: CorridorResult) -> None:
    """Copy the corridor measures onto the graph's edges, in place.

    Sets ``corridor_width_m``, ``protected_frac``, ``corridor_mean_resistance``
    and ``corridor_area_ha`` on every edge (NaN for links without a corridor,
    e.g. a non-finite ``cwd``).

    Parameters
    ----------
    graph
        The graph given to :func:`least_cost_corridors`.
    result
        Its result.

    Raises
    ------
    DataError
        If the result has a corridor for a pair of patches that is not a link
        of ``graph``.

    Examples
    --------
    >>> from leopardgeo.stages.graph import build_graph
    >>> from leopardgeo.stages.patches import extract_patches
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs="EPSG:32652")
    >>> labels, p = extract_patches(np.array([[0.9, 0, 0, 0, 0.9]]), g, min_area_ha=0)
    >>> r = np.ones((1, 5))
    >>> G, _ = build_graph(r, labels, p, g)
    >>> add_corridor_attributes(G, least_cost_corridors(r, labels, G, g))
    >>> G.edges[1, 2]["corridor_width_m"], G.edges[1, 2]["corridor_area_ha"]
    (100.0, 5.0)
    """
    table = result.table
    pairs = list(zip(table["patch_a"].astype(int), table["patch_b"].astype(int), strict=True))
    missing = [(a, b) for a, b in pairs if not graph.has_edge(a, b)]
    if missing:
        listed = ", ".join(f"{a}-{b}" for a, b in missing[:10])
        msg = (
            f"result: expected corridors of this graph's links, found corridor(s) {listed} that are not links. "
            "Use the result of least_cost_corridors on this graph."
        )
        raise DataError(msg)
    names = {
        "corridor_width_m": "corridor_width_m",
        "protected_frac": "protected_frac",
        "corridor_mean_resistance": "mean_resistance",
        "corridor_area_ha": "area_ha",
    }
    for _, _, d in graph.edges(data=True):
        for attr in names:
            d[attr] = math.nan
    values = {attr: table[col].to_numpy(dtype=np.float64) for attr, col in names.items()}  # columns read once
    for i, (a, b) in enumerate(pairs):
        d = graph.edges[a, b]
        for attr, v in values.items():
            d[attr] = float(v[i])


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class CorridorConfig:
    """Least-cost corridors between linked patches (Linkage Mapper's Linkage Pathways)."""

    enabled: bool = _f(True, doc="map corridors in `leopardgeo run` (needs [links] enabled)")
    width_cwd: float | None = _f(
        None,
        doc="truncation width: keep cells whose corridor value (cwd_a + cwd_b - LCD) is at most this, cost-weighted metres",
    )
    width_fraction: float = _f(
        0.1,
        doc="truncation width as a fraction of each link's least-cost distance (used when width_cwd is not set)",
    )
    windowed: bool | None = _f(
        None,
        doc="search each patch in a window around it (halo of its cutoff) instead of on the whole grid: the same "
        "corridors, less memory; default: windowed when whole-grid searches would not fit in a task's memory",
    )

    def __post_init__(self) -> None:
        _normalise(self, "corridors")
        if self.windowed is not None and not isinstance(self.windowed, bool):
            msg = f"[corridors] windowed: expected true or false (or leave it out), found {self.windowed!r}."
            raise ConfigError(msg)
        if self.width_cwd is not None:
            _positive(self.width_cwd, "corridors.width_cwd")
        _positive(self.width_fraction, "corridors.width_fraction")


# ---------------------------------------------------------------------- the stage
#: ``compute_corridors(protected=)`` left out: rasterised from the inputs.
_FROM_INPUTS: Any = object()


def compute_corridors(
    cfg: RunConfigLike,
    inputs: Inputs,
    resistance: np.ndarray,
    labels: np.ndarray,
    graph: nx.Graph,
    *,
    polygons: bool = True,
    measures: bool = True,
    cwd: Any = None,
    protected: Any = _FROM_INPUTS,
) -> CorridorResult:
    """Least-cost corridors of the graph's links; sets their corridor attributes on ``graph``.

    ``polygons=False``: no corridor outlines in the table; ``measures=False``: no ``mean_resistance``,
    ``protected_frac`` or window values (see :func:`least_cost_corridors`).  ``cwd``: the links
    stage's one-pass cost distance from all patches on this resistance (its ``cwd``), which prunes the searches
    (used only when its connectivity and cell size are those of this run).  ``protected``: the protected-area
    raster (:func:`leopardgeo.stages.inputs.protected_raster`) when the caller has it already.
    """
    c = cfg.corridors
    low = None
    if (
        cwd is not None
        and getattr(cwd, "connectivity", None) == cfg.links.connectivity
        and getattr(cwd, "cell_size_m", None) == inputs.grid.cell_size_m
        and np.shape(getattr(cwd, "cost", None)) == inputs.grid.shape
    ):
        low = cwd.cost
    result = least_cost_corridors(
        resistance,
        labels,
        graph,
        inputs.grid,
        connectivity=cfg.links.connectivity,
        width_cwd=c.width_cwd,
        width_fraction=c.width_fraction,
        protected=protected_raster(inputs) if protected is _FROM_INPUTS else protected,
        workers=cfg.links.workers,
        windowed=c.windowed,
        polygons=polygons,
        measures=measures,
        lower_bound=low,
        lower_bound_allocation=None if low is None else getattr(cwd, "allocation", None),
        lower_bound_crossings=None if low is None else getattr(cwd, "crossings", None),
    )
    add_corridor_attributes(graph, result)
    return result


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    corr = ctx["corridors"]
    writer.raster("corridors.tif", corr.normalised, ctx["inputs"].grid, nodata=np.nan, description=RASTERS["corridors.tif"])


STAGE = Stage(
    "corridors",
    "least-cost corridors",
    lambda cfg, c: {
        "corridors": compute_corridors(cfg, c["inputs"], c["resistance"], c["labels"], c["graph"], cwd=c.get("cwd"))
    },
    config=(Section("corridors", CorridorConfig, "least-cost corridors"),),
    needs=("inputs", "resistance", "patches", "links"),
    produces=("corridors",),
    mutates=("graph",),
    enabled=lambda cfg: cfg.corridors.enabled,
    outputs=("corridors.tif",),
    layers=lambda cfg, c: {"corridors": c["corridors"].table},
    write=_write,
)
