r"""Accumulated cost distance from labelled sources over a resistance grid.

A compiled multi-source Dijkstra search over the cells of a resistance raster.
The cost of one step between neighbouring cells :math:`u` and :math:`v` is

.. math::

    c(u, v) = \ell_{uv} \, \frac{r_u + r_v}{2},
    \qquad \ell_{uv} \in \{s,\; s\sqrt{2},\; s\sqrt{5}\}

with :math:`s` the cell size in metres and :math:`r` the resistance, so costs are
in cost-weighted metres.  This is the convention of ArcGIS *Cost Distance*,
Linkage Mapper (which calls it) and :class:`skimage.graph.MCP_Geometric`.  Every cell of
every source starts at cost 0, so distances run edge to edge from the nearest
source cell.  NaN resistance is no data and impassable.

The neighbour offsets, in the order back-links refer to, are
:data:`NEIGHBOUR_OFFSETS`: 4 axial, then 4 diagonal, then 8 knight's moves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import shapely

from leopardgeo.core.errors import ConfigError, DataError, NoPathError
from leopardgeo.core.executor import available_cores
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance, unmasked
from leopardgeo.kernels._costdist_compiled import (
    _MAX_BUCKETS,
    _NO_H32,
    _allocation_exits,
    _edge_flags,
    _fill_allocation,
    _fill_region,
    _group_sources,
    _init_outputs,
    _minimax_rows,
    _pack_bound,
    _region_runs,
    _scan_resistance,
    _scan_sources,
    _search_grid,
    _seed_region,
    _source_labels,
    _take_box,
    _trace,
)

__all__ = [
    "NEIGHBOUR_OFFSETS",
    "VALID_CONNECTIVITY",
    "CostDistanceResult",
    "cost_distance",
    "cost_distance_many",
    "path_to_linestring",
    "BoundRasters",
    "SearchBound",
    "allocation_crossings",
    "allocation_exits",
    "crossing_floors",
    "pack_bound",
    "prepare_search",
    "single_source_cost",
    "single_source_window",
    "trace_path",
]

logger = logging.getLogger(__name__)

#: Neighbourhood sizes :func:`cost_distance` accepts.
VALID_CONNECTIVITY: tuple[int, ...] = (4, 8, 16)

#: ``(d_row, d_col)`` of every neighbour: 4 axial, 4 diagonal, 8 knight's moves.
#: A connectivity of ``k`` uses the first ``k`` rows.  A back-link ``b`` at a
#: cell means its predecessor is ``cell + NEIGHBOUR_OFFSETS[b]``.
NEIGHBOUR_OFFSETS = np.array(
    [
        (-1, 0), (0, 1), (1, 0), (0, -1),
        (-1, 1), (1, 1), (1, -1), (-1, -1),
        (-2, 1), (-1, 2), (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1),
    ],
    dtype=np.int64,
)  # fmt: skip
NEIGHBOUR_OFFSETS.flags.writeable = False
_DROW = np.ascontiguousarray(NEIGHBOUR_OFFSETS[:, 0], dtype=np.int64)
_DCOL = np.ascontiguousarray(NEIGHBOUR_OFFSETS[:, 1], dtype=np.int64)


def _opposite_index() -> np.ndarray:
    opp = np.empty(len(NEIGHBOUR_OFFSETS), dtype=np.int64)
    for k, (dr, dc) in enumerate(NEIGHBOUR_OFFSETS):
        opp[k] = int(np.flatnonzero((NEIGHBOUR_OFFSETS[:, 0] == -dr) & (NEIGHBOUR_OFFSETS[:, 1] == -dc))[0])
    return opp


def _via_cells() -> np.ndarray:
    """The two cells a knight's move crosses, as offsets from its start (zeros otherwise)."""
    via = np.zeros((len(NEIGHBOUR_OFFSETS), 4), dtype=np.int64)
    for k, (dr, dc) in enumerate(NEIGHBOUR_OFFSETS):
        if abs(dc) == 2 and abs(dr) == 1:
            via[k] = (0, dc // 2, dr, dc // 2)
        elif abs(dr) == 2 and abs(dc) == 1:
            via[k] = (dr // 2, 0, dr // 2, dc)
    return via


_OPPOSITE = _opposite_index()
_VIA = _via_cells()
_HAS_VIA = np.abs(NEIGHBOUR_OFFSETS).sum(axis=1) == 3
_UNIT_LENGTH = np.sqrt((NEIGHBOUR_OFFSETS.astype(np.float64) ** 2).sum(axis=1))


# --------------------------------------------------------------------------- validation helpers
def _check_connectivity(connectivity: int) -> int:
    if isinstance(connectivity, bool) or connectivity not in VALID_CONNECTIVITY:
        msg = (
            f"connectivity: expected one of {', '.join(map(str, VALID_CONNECTIVITY))} "
            f"(axial, + diagonal, + knight's moves), found {connectivity!r}."
        )
        raise ConfigError(msg)
    return int(connectivity)


def _check_positive(value: float, name: str, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        msg = f"{name}: expected a positive finite number of {unit}, found {value!r}."
        raise ConfigError(msg)
    return v


@dataclass(frozen=True, slots=True)
class _Inputs:
    """Validated inputs: resistance as the kernel reads it, the label raster as given, and what a scan found."""

    res: np.ndarray  # float32 or float64, C-contiguous, native byte order
    src: np.ndarray  # integer labels (bool viewed as uint8), not copied
    connectivity: int
    cutoff: float
    r_min: float  # least and greatest resistance (not no data)
    r_max: float
    labels: np.ndarray  # sorted positive labels present
    labels_on_data: np.ndarray  # those with at least one cell that is not no data


def _prepare(
    resistance: np.ndarray, sources: np.ndarray, cell_size_m: float, connectivity: int, max_cost: float | None
) -> _Inputs:
    """Validate inputs without copying them when they are float32/float64 and integer rasters."""
    k = _check_connectivity(connectivity)
    _check_positive(cell_size_m, "cell_size_m", "metres")
    cutoff = math.inf if max_cost is None else _check_positive(max_cost, "max_cost", "cost-weighted metres")
    r_in = np.asarray(unmasked(resistance))
    if r_in.ndim != 2:
        msg = f"resistance: expected a 2-D raster, found {r_in.ndim} dimensions (shape {r_in.shape})."
        raise DataError(msg)
    if r_in.dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        res = np.ascontiguousarray(r_in)  # no copy when already contiguous
    else:
        res = np.ascontiguousarray(r_in, dtype=np.float64)
    n_bad, n_nan, r_min, r_max = _scan_resistance(res)
    if n_bad or n_nan == res.size:
        check_resistance(r_in)  # raises, with the count and the first cells
        msg = "resistance: expected values > 0 and finite (NaN = impassable)."  # pragma: no cover - unreachable
        raise DataError(msg)  # pragma: no cover
    src = np.asarray(sources)
    if src.shape != res.shape:
        msg = (
            f"sources: expected the shape of the resistance raster {res.shape}, found {src.shape}. "
            "Rasterize the sources on the analysis grid."
        )
        raise DataError(msg)
    if not (np.issubdtype(src.dtype, np.integer) or src.dtype == np.bool_):
        msg = (
            f"sources: expected an integer label raster (0 = not a source), found dtype {src.dtype}. "
            "Cast it with sources.astype('int32') after replacing no data by 0."
        )
        raise DataError(msg)
    if src.dtype == np.bool_:
        src = src.view(np.uint8)
    elif not src.dtype.isnative:
        src = src.astype(src.dtype.newbyteorder("="))
    out_of_range, n_src, top = _scan_sources(src)
    if out_of_range:
        wide = src.astype(np.int64)  # error path only
        msg = f"sources: expected labels from 0 to {np.iinfo(np.int32).max}, found {wide.min()} to {wide.max()}."
        raise DataError(msg)
    if n_src == 0:
        msg = "sources: expected at least one source cell (label > 0), found none. Check the patch raster."
        raise DataError(msg)
    labels, on_data = _source_labels(src, res, int(top))
    return _Inputs(res, src, k, cutoff, float(r_min), float(r_max), labels, on_data)


def _check_on_data(inp: _Inputs, labels: np.ndarray) -> None:
    """Raise for labels wholly on no data."""
    dead = np.setdiff1d(labels, inp.labels_on_data)
    if dead.size:
        listed = ", ".join(str(int(v)) for v in dead[:10])
        msg = (
            f"sources: expected every source to have a cell with resistance, found label(s) {listed} "
            "wholly on no-data (NaN) cells, so they cannot reach anything. Check the land mask and barriers."
        )
        raise NoPathError(msg)


def _plan_queue(r_min: float, r_max: float, cell_size_m: float, connectivity: int, n_cells: int) -> tuple[float, int]:
    """``(1 / bucket width, number of buckets)`` for the bucket queue, or ``(0.0, 0)`` for the binary heap.

    The width is the least step cost, computed as the kernel computes a step
    (so every step is at least one bucket); the ring spans the largest step plus
    two buckets for rounding.  The heap is used when that ring would be too
    large -- extreme resistance ratios -- or the bucket index could lose
    precision.
    """
    half = _UNIT_LENGTH[:connectivity] * float(cell_size_m) * 0.5
    step_min = float(half[0] * (r_min + r_min))
    step_max = float(half.max() * (r_max + r_max))
    if not (step_min > 0 and math.isfinite(step_max)):
        return 0.0, 0
    inv_width = 1.0 / step_min
    span = step_max * inv_width
    limit = min(_MAX_BUCKETS, max(4096, n_cells))  # small grids: a ring larger than the grid is no gain
    if not (math.isfinite(inv_width) and span + 2 <= limit and (span + 1) * max(n_cells, 1) < 2.0**52):
        return 0.0, 0
    return inv_width, math.ceil(span) + 2


def _offsets(connectivity: int, n_cols: int) -> tuple[np.ndarray, ...]:
    """Flat offsets of the neighbours and of the cells knight's moves cross, for rasters ``n_cols`` wide."""
    k = connectivity
    off = NEIGHBOUR_OFFSETS[:k]
    delta = off[:, 0] * n_cols + off[:, 1]
    via_a = _VIA[:k, 0] * n_cols + _VIA[:k, 1]
    via_b = _VIA[:k, 2] * n_cols + _VIA[:k, 3]
    return delta, np.ascontiguousarray(off[:, 0]), np.ascontiguousarray(off[:, 1]), via_a, via_b


def _search_offsets(k: int, n_cols: int, cell_size_m: float, cutoff: float) -> tuple:
    """The neighbourhood arguments of the compiled search (through ``margin``) and its cutoff."""
    delta, drow, dcol, via_a, via_b = _offsets(k, n_cols)
    return (
        delta,
        drow,
        dcol,
        _UNIT_LENGTH[:k] * float(cell_size_m) * 0.5,
        via_a,
        via_b,
        _HAS_VIA[:k],
        _OPPOSITE[:k].astype(np.int8),
        2 if k == 16 else 1,
        float(cutoff),
    )


def _run(
    inp: _Inputs,
    want: int,
    cell_size_m: float,
    *,
    cutoff: float | None = None,
    allocation: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost, allocation and back-links from the sources labelled ``want`` (0 = every label).

    ``cutoff``: instead of ``inp.cutoff``; ``allocation=False``: a one-label search's allocation is left
    unfilled (the label on the source cells only), for callers that need only the cost.
    """
    res = inp.res
    cost = np.empty(res.shape, dtype=np.float64)
    alloc = np.zeros(res.shape, dtype=np.int32)
    back = np.full(res.shape, -1, dtype=np.int8)
    _init_outputs(res, inp.src, int(want), cost, alloc)
    k = inp.connectivity
    offsets = _search_offsets(k, res.shape[1], float(cell_size_m), float(inp.cutoff if cutoff is None else cutoff))
    inv_width, n_buckets = _plan_queue(inp.r_min, inp.r_max, cell_size_m, k, res.size)
    one = int(want) if want else (int(inp.labels[0]) if inp.labels.size == 1 else 0)  # the only label, or 0
    logger.debug("cost distance: %s queue (%d buckets)", "bucket" if n_buckets else "heap", n_buckets)
    if _search_grid(res, cost, alloc, back, offsets, inv_width, n_buckets, one > 0):  # only with a forced, too small ring
        logger.debug("cost distance: bucket ring overflow, rerunning with the heap")
        back.fill(-1)
        alloc.fill(0)
        _init_outputs(res, inp.src, int(want), cost, alloc)
        _search_grid(res, cost, alloc, back, offsets, 0.0, 0, one > 0)
    if one and allocation:
        _fill_allocation(cost, one, alloc)
    return cost, alloc, back


# --------------------------------------------------------------------------- public API
@dataclass(frozen=True, slots=True)
class CostDistanceResult:
    """Outputs of :func:`cost_distance`, all on the grid of the resistance raster.

    Attributes
    ----------
    cost
        Accumulated cost in cost-weighted metres (float64); 0 on source cells,
        ``inf`` where no source is reachable (or beyond ``max_cost``), NaN on
        no-data cells.
    allocation
        Label of the source that reaches each cell at least cost (int32); 0 where
        unreachable or no data.  Where two sources tie, either label may appear.
    backlink
        Index into :data:`NEIGHBOUR_OFFSETS` of the neighbour each cell was reached
        from (int8); -1 on source cells, unreached and no-data cells.
    connectivity
        Neighbourhood used: 4, 8 or 16.
    cell_size_m
        Cell side length in metres.
    crossings
        :func:`allocation_crossings` of this search (its cost and allocation, the labels and resistance it ran
        from) when the caller that ran it made them as well, else None.  Set by
        :func:`leopardgeo.stages.graph.build_graph` with the ``planar`` rule, whose links are those crossings.
    """

    cost: np.ndarray
    allocation: np.ndarray
    backlink: np.ndarray
    connectivity: int
    cell_size_m: float
    crossings: np.ndarray | None = None


def cost_distance(
    resistance: np.ndarray,
    sources: np.ndarray,
    *,
    cell_size_m: float,
    connectivity: int = 8,
    max_cost: float | None = None,
) -> CostDistanceResult:
    r"""Accumulated cost distance, allocation and back-links from labelled sources.

    Parameters
    ----------
    resistance
        2-D resistance raster (float32 or float64), unitless cost per metre,
        > 0 and finite; NaN = no data = impassable.
    sources
        Integer raster of the same shape: 0 = not a source, ``k > 0`` = a cell of
        source ``k``.  All cells of a source start at cost 0.  Source cells on no
        data are ignored.
    cell_size_m
        Cell side length in metres (square cells).
    connectivity
        4 (axial moves), 8 (+ diagonals, default) or 16 (+ knight's moves).
    max_cost
        Stop the search at this accumulated cost (cost-weighted metres); cells
        beyond it are ``inf`` with allocation 0.  ``None`` searches everything.

    Returns
    -------
    CostDistanceResult
        ``cost`` (float64, cost-weighted metres), ``allocation`` (int32) and
        ``backlink`` (int8) rasters.

    Raises
    ------
    ResistanceError
        If resistance is <= 0 or infinite anywhere (with the count of such cells).
    ConfigError
        If ``connectivity`` is not 4, 8 or 16, or ``cell_size_m`` / ``max_cost``
        is not a positive finite number.
    DataError
        If the shapes differ, ``sources`` is not an integer raster, it has no
        source cell, or every resistance cell is no data.
    NoPathError
        If every cell of a source label lies on no data (naming the label).

    Notes
    -----
    The step cost is :math:`\ell (r_u + r_v) / 2` with :math:`\ell` = cell size,
    cell size × √2 (diagonals) or cell size × √5 (knight's moves), as in ArcGIS
    *Cost Distance*, Linkage Mapper and :class:`skimage.graph.MCP_Geometric`.
    ArcGIS *Cost Distance* has 8 neighbours only (no knight's moves).  For
    knight's moves we keep the same two-cell mean with length s√5; GRASS
    ``r.cost -k`` instead averages the four cells the move crosses (start, end
    and the two cells between them), so its 16-neighbour costs differ slightly.
    Like GRASS, a knight's move is not allowed if either cell it crosses is no
    data, so it cannot jump over a no-data barrier one cell wide.  Diagonal moves
    may pass between two no-data cells that touch only at a corner (as in ArcGIS
    and scikit-image); make impassable barriers 4-connected, e.g. by rasterizing
    them with ``all_touched=True``.

    Examples
    --------
    >>> r = np.ones((3, 4))
    >>> src = np.zeros((3, 4), dtype=int)
    >>> src[1, 0] = 1
    >>> res = cost_distance(r, src, cell_size_m=100, connectivity=4)
    >>> res.cost
    array([[100., 200., 300., 400.],
           [  0., 100., 200., 300.],
           [100., 200., 300., 400.]])
    >>> round(float(cost_distance(r, src, cell_size_m=100).cost[0, 1]), 3)  # one diagonal step
    141.421
    >>> r[:, 2] = np.nan
    >>> src[1, 3] = 2
    >>> res = cost_distance(r, src, cell_size_m=100, max_cost=150)
    >>> res.allocation
    array([[1, 1, 0, 2],
           [1, 1, 0, 2],
           [1, 1, 0, 2]], dtype=int32)
    >>> res.cost[:, 2]
    array([nan, nan, nan])
    """
    inp = _prepare(resistance, sources, cell_size_m, connectivity, max_cost)
    k = inp.connectivity
    _check_on_data(inp, inp.labels)
    cost, alloc, back = _run(inp, 0, float(cell_size_m))
    logger.debug("cost distance: %d sources, %d-neighbour", inp.labels.size, k)
    return CostDistanceResult(cost=cost, allocation=alloc, backlink=back, connectivity=k, cell_size_m=float(cell_size_m))


def cost_distance_many(
    resistance: np.ndarray,
    sources: np.ndarray,
    labels: Iterable[int] | None = None,
    *,
    cell_size_m: float,
    connectivity: int = 8,
    max_cost: float | None = None,
    workers: int | None = None,
) -> dict[int, np.ndarray]:
    """Cost distance from each source label on its own, searched in parallel threads.

    Each label gets a single-source search (the other labels are ordinary
    cells), as Linkage Mapper needs for corridors.  The compiled search releases
    the GIL, so the threads run at once.

    Parameters
    ----------
    resistance
        2-D resistance raster, > 0 and finite; NaN = no data = impassable.
    sources
        Integer label raster of the same shape (0 = not a source).
    labels
        Labels to search from; ``None`` = every label in ``sources``.
    cell_size_m
        Cell side length in metres.
    connectivity
        4, 8 (default) or 16 neighbours.
    max_cost
        Stop each search at this cost (cost-weighted metres); ``None`` = no limit.
    workers
        Number of threads; ``None`` = one per label, at most the CPU count.

    Returns
    -------
    dict of int to numpy.ndarray
        ``{label: cost}``, each a float64 raster in cost-weighted metres
        (``inf`` unreachable, NaN no data), in the order of ``labels``.

    Raises
    ------
    ResistanceError, ConfigError, DataError, NoPathError
        As :func:`cost_distance`; also ``DataError`` if a requested label has no
        cell and ``ConfigError`` if ``workers`` is not a positive integer.

    Examples
    --------
    >>> r = np.ones((1, 4))
    >>> src = np.array([[1, 0, 0, 2]])
    >>> out = cost_distance_many(r, src, cell_size_m=10, connectivity=4)
    >>> out[1], out[2]
    (array([[ 0., 10., 20., 30.]]), array([[30., 20., 10.,  0.]]))
    """
    inp = _prepare(resistance, sources, cell_size_m, connectivity, max_cost)
    present = inp.labels
    if labels is None:
        wanted = [int(v) for v in present]
    else:
        wanted = list(dict.fromkeys(int(v) for v in labels))
        missing = sorted(set(wanted) - {int(v) for v in present})
        if missing or not wanted:
            msg = (
                f"labels: expected labels present in sources, found {missing or 'none'} missing. "
                f"Labels present: {present[:20].tolist()}."
            )
            raise DataError(msg)
    if workers is None:
        n_workers = max(1, min(len(wanted), available_cores()))
    elif isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    else:
        n_workers = int(workers)
    for lab in wanted:
        _check_on_data(inp, np.array([lab], dtype=np.int64))

    def one(lab: int) -> np.ndarray:
        return _run(inp, lab, float(cell_size_m), allocation=False)[0]

    if n_workers == 1:
        return {lab: one(lab) for lab in wanted}
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        costs = list(pool.map(one, wanted))
    return dict(zip(wanted, costs, strict=True))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Rasters validated and scanned once for many single-source searches, with each label's source cells."""

    inp: _Inputs
    labels: np.ndarray  # sorted labels with a source cell on data (int64)
    start: np.ndarray  # cells of labels[i]: cells[start[i]:start[i + 1]] (flat ids, ascending)
    cells: np.ndarray
    _laid_out: list[np.ndarray] = field(default_factory=list, compare=False, repr=False)

    def source_layout(self) -> np.ndarray:
        """The source labels as the searches with partners and no bound read them (:func:`_pack_bound`), made once."""
        if not self._laid_out:  # two threads may both make it: the same values
            out = np.empty(2 * self.inp.src.size, dtype=np.int32)
            _pack_bound(np.empty(0), np.ascontiguousarray(self.inp.src).reshape(-1), out)
            self._laid_out.append(out)
        return self._laid_out[0]

    def sources(self, label: int) -> np.ndarray:
        """Flat ids of the cells of ``label`` that are not no data, ascending (empty if none)."""
        i = int(np.searchsorted(self.labels, label))
        if i == self.labels.size or self.labels[i] != label:
            return np.empty(0, dtype=np.int64)
        return self.cells[self.start[i] : self.start[i + 1]]


def prepare_search(
    resistance: np.ndarray, sources: np.ndarray, *, cell_size_m: float, connectivity: int = 8
) -> _Prepared:
    """Validate and scan the rasters once for many :func:`single_source_cost` / :func:`single_source_window` searches.

    Raises
    ------
    ResistanceError, ConfigError, DataError
        As :func:`cost_distance`.
    """
    inp = _prepare(resistance, sources, cell_size_m, connectivity, None)
    labels = inp.labels_on_data
    top = int(inp.labels[-1])  # the largest label present (there is at least one source cell)
    if top <= max(1 << 20, inp.src.size):  # labels 1..n: a counting sort (as _source_labels flags them)
        start = np.zeros(top + 2, dtype=np.int64)
        cells = _group_sources(inp.src, inp.res, start)
        return _Prepared(inp, labels, np.append(start[labels], cells.size), cells)
    flat = inp.src.reshape(-1)
    cells = np.flatnonzero(flat > 0)
    cells = cells[~np.isnan(inp.res.reshape(-1)[cells])]
    lab = flat[cells]
    order = np.argsort(lab, kind="stable")  # by label, ascending cell ids within each
    cells, lab = cells[order].astype(np.int64), lab[order].astype(np.int64)
    labels, first = np.unique(lab, return_index=True)
    return _Prepared(inp, labels, np.append(first, cells.size).astype(np.int64), cells)


def _check_label(prepared: _Prepared, label: int) -> int:
    lab = int(label)
    present = prepared.inp.labels
    i = int(np.searchsorted(present, lab))
    if i == present.size or int(present[i]) != lab:
        msg = f"label: expected a label present in sources, found {lab}. Labels present: {prepared.inp.labels[:20].tolist()}."
        raise DataError(msg)
    if prepared.sources(lab).size == 0:
        _check_on_data(prepared.inp, np.array([lab], dtype=np.int64))  # raises: every cell on no data
    return lab


def single_source_cost(prepared: _Prepared, label: int, *, cell_size_m: float, max_cost: float | None = None) -> np.ndarray:
    """Cost distance from one source label (the other labels are ordinary cells) on rasters scanned once.

    The same costs as ``cost_distance_many(resistance, sources, [label], max_cost=max_cost)[label]``, without
    scanning the rasters again for each label (:func:`prepare_search`) or filling an allocation raster.

    Parameters
    ----------
    prepared
        From :func:`prepare_search`.
    label
        The source label.
    cell_size_m
        Cell side length in metres (that of :func:`prepare_search`).
    max_cost
        Stop at this cost (cost-weighted metres); None = no limit.

    Returns
    -------
    numpy.ndarray
        float64 cost (cost-weighted metres): 0 on the source, inf where not reached, NaN on no data.

    Raises
    ------
    ConfigError
        If ``max_cost`` is not a positive finite number.
    DataError
        If ``label`` is not in the sources.
    NoPathError
        If every cell of ``label`` lies on no data.

    Examples
    --------
    >>> inp = prepare_search(np.ones((1, 4)), np.array([[1, 0, 0, 2]]), cell_size_m=10, connectivity=4)
    >>> single_source_cost(inp, 2, cell_size_m=10, max_cost=25).tolist()
    [[inf, 20.0, 10.0, 0.0]]
    """
    lab = _check_label(prepared, label)
    cell = _check_positive(cell_size_m, "cell_size_m", "metres")  # <= 0 would grow the queue without end
    cut = math.inf if max_cost is None else _check_positive(max_cost, "max_cost", "cost-weighted metres")
    return _run(prepared.inp, lab, cell, cutoff=cut, allocation=False)[0]


@dataclass(frozen=True, slots=True)
class BoundRasters:
    """A bound's ``h1`` and ``allocation`` laid out once for many pruned searches (:func:`pack_bound`).

    Attributes
    ----------
    h1, allocation
        The rasters it was made from (the same arrays: :class:`SearchBound` checks that it is given with them).
    packed
        int32, two per cell: ``h1`` rounded down to float32 (its bits), then the allocation's label (8 bytes
        per cell).  A search reads both values of each cell it takes, and so reads one cache line, not two; it
        takes the rounded value where it needs a lower bound and the next float32 up where it needs an upper
        one, so the layout changes no corridor (see :func:`~leopardgeo.kernels._costdist_compiled._pack_bound`).
    """

    h1: np.ndarray
    allocation: np.ndarray
    packed: np.ndarray
    _regions: dict = field(default_factory=dict, compare=False, repr=False)

    def regions(self, connectivity: int) -> tuple[np.ndarray, ...]:
        """The allocation's regions as :func:`_allocation_regions` lists them, made once per connectivity."""
        k = _check_connectivity(connectivity)
        if k not in self._regions:  # two threads may both make it: the same values
            alloc = np.ascontiguousarray(self.allocation).reshape(self.allocation.shape[0], -1)
            self._regions[k] = _allocation_regions(alloc, k)
        return self._regions[k]


def _allocation_regions(alloc: np.ndarray, connectivity: int) -> tuple[np.ndarray, ...]:
    """The cells of each label's region in ``alloc`` as runs along the rows, and its edge cells.

    ``(run_start, runs, edge_start, edges)``: label ``a``'s runs ``(row, first column, end column)`` are
    ``runs[run_start[a] : run_start[a + 1]]`` and its edge cells (flat ids, ascending: cells with a neighbour, of
    this connectivity, of another label or of none) ``edges[edge_start[a] : edge_start[a + 1]]``.  Three compiled
    passes (:func:`_edge_flags`, :func:`_region_runs`); runs as int32, edge ids int32 below 2**31 cells.

    Examples
    --------
    >>> run_start, runs, edge_start, edges = _allocation_regions(np.array([[1, 1, 1, 2], [2, 1, 1, 2]]), 4)
    >>> runs[run_start[1] : run_start[2]].tolist(), edges[edge_start[1] : edge_start[2]].tolist()
    ([[0, 0, 3], [1, 1, 3]], [0, 2, 5, 6])
    """
    flat = np.ascontiguousarray(alloc).reshape(-1)
    n_cols = alloc.shape[1]
    top = int(flat.max(initial=0))
    edge = np.zeros(flat.size, dtype=np.uint8)
    off = NEIGHBOUR_OFFSETS[:connectivity]
    ahead = off[(off[:, 0] > 0) | ((off[:, 0] == 0) & (off[:, 1] > 0))]  # each pair of neighbours once
    _edge_flags(flat, n_cols, np.ascontiguousarray(ahead[:, 0]), np.ascontiguousarray(ahead[:, 1]), edge)
    run_start = np.zeros(max(top, 0) + 2, dtype=np.int64)
    edge_start = np.zeros_like(run_start)
    ids = np.int32 if flat.size < 2**31 else np.int64
    _region_runs(flat, edge, n_cols, run_start, edge_start, np.empty((0, 3), dtype=np.int32), np.empty(0, dtype=ids))
    np.cumsum(run_start, out=run_start)
    np.cumsum(edge_start, out=edge_start)
    runs, edges = np.empty((run_start[-1], 3), dtype=np.int32), np.empty(edge_start[-1], dtype=ids)
    _region_runs(flat, edge, n_cols, run_start, edge_start, runs, edges)
    return run_start, runs, edge_start, edges


def pack_bound(h1: np.ndarray, allocation: np.ndarray) -> BoundRasters:
    """Lay a bound's ``h1`` and ``allocation`` out once for the searches that share them (:class:`SearchBound`).

    Each search with that bound would otherwise lay them out itself (one pass over the grid).  The values are
    copied: changing ``h1`` or ``allocation`` afterwards does not change the layout, so make a new one then.

    Raises
    ------
    DataError
        If ``h1`` is not a float raster, or ``allocation`` not an integer raster of its shape with int32 labels.

    Examples
    --------
    >>> h1 = np.array([[0.0, 10.0, 0.1]])
    >>> rasters = pack_bound(h1, np.array([[1, 1, 2]]))
    >>> rasters.packed.view(np.float32)[0::2].tolist(), rasters.packed[1::2].tolist()  # 0.1 rounded down
    ([0.0, 10.0, 0.09999999403953552], [1, 1, 2])
    """
    h = np.asarray(h1)
    alloc = np.asarray(allocation)
    if not np.issubdtype(h.dtype, np.floating) or alloc.shape != h.shape or not np.issubdtype(alloc.dtype, np.integer):
        msg = (
            f"pack_bound: expected a float h1 and an integer allocation of its shape, found {h.dtype} of shape "
            f"{h.shape} and {alloc.dtype} of shape {alloc.shape}. Give the cost and the allocation of one search."
        )
        raise DataError(msg)
    wide = not np.can_cast(alloc.dtype, np.int32)  # int32 and narrower hold int32 labels: no scan
    if wide and alloc.size and (int(alloc.min()) < np.iinfo(np.int32).min or int(alloc.max()) > np.iinfo(np.int32).max):
        msg = f"pack_bound: expected int32 labels, found {int(alloc.min())} to {int(alloc.max())}. Number the sources from 1."
        raise DataError(msg)
    out = np.empty(2 * h.size, dtype=np.int32)
    _pack_bound(np.ascontiguousarray(h, dtype=np.float64).reshape(-1), np.ascontiguousarray(alloc).reshape(-1), out)
    return BoundRasters(h1, allocation, out)


@dataclass(frozen=True, slots=True)
class SearchBound:
    r"""Which cells a :func:`single_source_window` search expands: a pruning of the search.

    A cell :math:`u` reached at cost :math:`d` is expanded (gives costs to its neighbours) only if
    :math:`d + h_1(u) \le r_1`, or :math:`u` lies in the rectangle of ``h2`` (first cell at
    ``origin``) and :math:`d + h_2(u) \le 0`, or :math:`u` lies in the box of one of the ``parts``
    :math:`(g, o, b, r)` and :math:`d + (g(u) - r) \le 0`.

    Attributes
    ----------
    h1
        float64 raster of the grid, or None for :math:`h_1 = 0`.
    r1
        The bound of the first test (cost-weighted metres; ``-inf``: no cell passes it).
    h2
        float64 rectangle of the grid, or None for no second test (NaN / inf: the test fails).
    origin
        ``(row, col)`` of the first cell of ``h2``.
    parts
        ``(g, (row, col), (row0, row1, col0, col1), r)``: a float rectangle of the grid with its first cell,
        the box of grid cells (ends exclusive) where it is tested, and its reach :math:`r`.  Tested in
        place, cell by cell: the same test as an ``h2`` that holds :math:`\min (g - r)` over the parts,
        without building that raster (a search tests few of its cells).
    allocation
        Integer raster of the grid, or None: when ``h1`` is exactly the cost distance from labelled
        sources (such as the links stage's search from all patches), the label of the source each cell's
        cost comes from (that search's allocation).  Only the search's ``partners`` read it: a cell of
        partner :math:`q`'s allocation taken at cost :math:`d` shows that a path to :math:`q` costs at
        most :math:`d + h_1`, so a partner's cost comes down as soon as the search enters its allocation.
        With an ``h1`` that is only a lower bound this would cut corridors short: leave it None then.
    rasters
        :func:`pack_bound` of this ``h1`` and ``allocation`` (the same arrays), made once for the searches
        that share them, or None: each search lays them out itself.  The same searches either way.
    """

    h1: np.ndarray | None
    r1: float
    h2: np.ndarray | None = None
    origin: tuple[int, int] = (0, 0)
    parts: Sequence[tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int], float]] = ()
    allocation: np.ndarray | None = None
    rasters: BoundRasters | None = None

    def _layout(self, labels: np.ndarray | None) -> np.ndarray:
        """``h1`` and the labels (``labels`` flat, or the allocation) as the kernel reads them (:func:`_pack_bound`)."""
        if self.rasters is not None:
            if not isinstance(self.rasters, BoundRasters):
                msg = (
                    f"bound.rasters: expected the BoundRasters of pack_bound(h1, allocation), found "
                    f"{type(self.rasters).__name__}. Make it with pack_bound, or leave it out."
                )
                raise DataError(msg)
            if self.rasters.h1 is not self.h1 or self.rasters.allocation is not self.allocation:
                msg = (
                    "bound.rasters: expected pack_bound of this bound's h1 and allocation (the same arrays), found "
                    "the layout of other rasters. Make it with pack_bound(h1, allocation) of this bound, or leave it out."
                )
                raise DataError(msg)
            return self.rasters.packed
        h1 = np.empty(0) if self.h1 is None else np.ascontiguousarray(self.h1, dtype=np.float64).reshape(-1)
        if labels is None:
            labels = np.zeros(h1.size, dtype=np.int32)
        out = np.empty(2 * labels.size, dtype=np.int32)
        _pack_bound(h1, labels, out)
        return out

    def _allocation(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The flat allocation raster the kernel reads with ``h1`` (None without one)."""
        if self.allocation is None:
            return None
        alloc = np.asarray(self.allocation)
        if self.h1 is None or alloc.shape != shape or not np.issubdtype(alloc.dtype, np.integer):
            msg = (
                f"bound.allocation: expected an integer raster of the grid's shape {shape} beside an h1, found "
                f"{alloc.dtype} of shape {alloc.shape}{' and no h1' if self.h1 is None else ''}. Give the allocation "
                "of the search whose costs are h1, or leave it out."
            )
            raise DataError(msg)
        return np.ascontiguousarray(alloc).reshape(-1)

    def _kernel_args(self, shape: tuple[int, ...]) -> tuple[tuple, list[np.ndarray]]:
        """The kernel's ``(h1, r1, pt_addr, pt_geo, pt_reach)`` and the arrays it reads by address (keep them)."""
        if self.h1 is None:
            h1 = np.empty(0)
        else:
            h1 = np.ascontiguousarray(self.h1, dtype=np.float64)
            if h1.shape != shape:
                msg = f"bound.h1: expected the grid's shape {shape}, found {h1.shape}."
                raise DataError(msg)
            h1 = h1.reshape(-1)
        parts = list(self.parts)
        if self.h2 is not None and np.size(self.h2) > 0:
            if np.ndim(self.h2) != 2:
                msg = f"bound.h2: expected a 2-D rectangle of the grid, found {np.ndim(self.h2)} dimensions."
                raise DataError(msg)
            (o_r, o_c), (nr, nc) = self.origin, np.shape(self.h2)
            parts.append((self.h2, (o_r, o_c), (o_r, o_r + nr, o_c, o_c + nc), 0.0))
        keep, addr, geo, reach = [], [], [], []
        for part in parts:
            try:
                g, (o_r, o_c), (b0, b1, b2, b3), r = part
                arr = np.ascontiguousarray(g, dtype=np.float64)
                o_r, o_c, b0, b1, b2, b3, r = int(o_r), int(o_c), int(b0), int(b1), int(b2), int(b3), float(r)
            except (TypeError, ValueError) as exc:
                msg = (
                    "bound.parts: expected (rectangle, (row, col), (row0, row1, col0, col1), reach) per part, found "
                    f"{type(part).__name__} that is not ({exc}). Give each part as that tuple."
                )
                raise DataError(msg) from None
            if arr.ndim != 2:
                msg = f"bound.parts: expected 2-D rectangles of the grid, found {arr.ndim} dimensions."
                raise DataError(msg)
            # the box, inside the rectangle (the kernel reads by address)
            b0, b1 = max(b0, o_r), min(b1, o_r + arr.shape[0])
            b2, b3 = max(b2, o_c), min(b3, o_c + arr.shape[1])
            if b0 >= b1 or b2 >= b3:
                continue
            keep.append(arr)
            addr.append(arr.ctypes.data)
            geo.append((o_r, o_c, arr.shape[0], arr.shape[1], b0, b1, b2, b3))
            reach.append(r)
        args = (
            h1,
            float(self.r1),
            np.array(addr, dtype=np.int64),
            np.array(geo, dtype=np.int64).reshape(-1, 8),
            np.array(reach, dtype=np.float64),
        )
        return args, keep


def _forward_steps(connectivity: int, cell_size_m: float) -> tuple[np.ndarray, ...]:
    """``(offsets, step_len, via, has_via)`` of the neighbour steps that point forward (each cell pair once).

    For the compiled scans over region edges (:func:`_allocation_exits`, the links stage's planar proposals).
    """
    k = np.flatnonzero([tuple(o) > (0, 0) for o in NEIGHBOUR_OFFSETS[:connectivity]])
    offsets = np.ascontiguousarray(NEIGHBOUR_OFFSETS[k])
    step_len = np.hypot(offsets[:, 0], offsets[:, 1]).astype(np.float64) * float(cell_size_m)
    return offsets, step_len, np.ascontiguousarray(_VIA[k]), np.ascontiguousarray(_HAS_VIA[k])


def _crossings(
    cost: np.ndarray, allocation: np.ndarray, labels: np.ndarray, resistance: np.ndarray, cell_size_m: float,
    connectivity: int, pairs: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_allocation_exits` on checked rasters: ``(exits, pairs)`` (``pairs`` empty unless asked)."""
    shape = np.shape(resistance)
    for name, arr in (("cost", cost), ("allocation", allocation), ("labels", labels)):
        if np.shape(arr) != shape:
            msg = f"{name}: expected the resistance raster's shape {shape}, found {np.shape(arr)}. Give rasters of one grid."
            raise DataError(msg)
    for name, arr in (("allocation", allocation), ("labels", labels)):
        if not np.issubdtype(np.asarray(arr).dtype, np.integer):
            msg = f"{name}: expected an integer raster of labels, found {np.asarray(arr).dtype}. Give the search's labels."
            raise DataError(msg)
    connectivity = _check_connectivity(connectivity)
    cell_size_m = _check_positive(cell_size_m, "cell_size_m", "metres")
    res = np.asarray(resistance)
    if res.dtype not in (np.float32, np.float64):
        res = res.astype(np.float64)
    exits, bad, between = _allocation_exits(
        np.asarray(cost, dtype=np.float64), np.asarray(allocation), np.asarray(labels), res,
        *_forward_steps(connectivity, cell_size_m), pairs,
    )  # fmt: skip
    if bad:
        msg = (
            f"allocation: expected each labelled cell on data allocated to its own label at cost 0, found {bad} that are "
            "not. Give the cost and allocation of one search from these labels."
        )
        raise DataError(msg)
    return exits, between


def allocation_exits(
    cost: np.ndarray, allocation: np.ndarray, labels: np.ndarray, resistance: np.ndarray, *, cell_size_m: float, connectivity: int
) -> np.ndarray:
    """Per label, a lower bound on the least cost between its sources and any other label's: the cost of leaving its region.

    ``cost`` and ``allocation`` are one multi-source search from every label of ``labels`` on ``resistance`` with
    this cell size and connectivity (:func:`cost_distance`).  A least-cost path from label :math:`a`'s sources to
    another label's leaves :math:`a`'s allocation region by a step from a cell :math:`y` to a cell :math:`z` of
    another region; the path costs at least :math:`cost(y) + step(y, z) + cost(z)` (the cost from :math:`a`'s
    sources to :math:`y`, the step, and from :math:`z` to the nearest sources, which are no farther than the
    path's end).  So the least of these over :math:`a`'s region's edge bounds every such path: also from the
    other end, so the least cost between labels :math:`a` and :math:`b` is at least the larger of their values
    (:func:`allocation_crossings` gives more).

    Returns
    -------
    numpy.ndarray
        float64, index = label (0 .. the largest label): inf for labels without a neighbouring region.

    Raises
    ------
    DataError
        If a raster's shape is not that of ``resistance``, or a labelled cell on data is not allocated to its own
        label at cost 0 (the rasters of another search).

    Examples
    --------
    >>> labels = np.array([[1, 0, 0, 2]])
    >>> one = cost_distance(np.ones((1, 4)), labels, cell_size_m=10, connectivity=4)
    >>> allocation_exits(one.cost, one.allocation, labels, np.ones((1, 4)), cell_size_m=10, connectivity=4).tolist()
    [inf, 30.0, 30.0]
    """
    return _crossings(cost, allocation, labels, resistance, cell_size_m, connectivity, False)[0]


def allocation_crossings(
    cost: np.ndarray, allocation: np.ndarray, labels: np.ndarray, resistance: np.ndarray, *, cell_size_m: float, connectivity: int
) -> np.ndarray:
    """Between each two touching allocation regions, the least cost of a path across their common edge.

    As :func:`allocation_exits`, per pair of labels :math:`(a, b)`: the least :math:`cost(y) + step(y, z) + cost(z)`
    over neighbouring cells :math:`y`, :math:`z` allocated to :math:`a` and :math:`b` (a planar graph's link costs,
    Linkage Mapper's "adjacent" cores).  Any path between two labels' sources leaves every set of regions holding
    one and not the other across such an edge, so the least cost between labels :math:`a` and :math:`t` is at least
    the largest crossing on the best path between them in this graph: :func:`crossing_floors`.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float64, ``n`` = the largest label + 1, symmetric; inf where two regions do not touch.

    Raises
    ------
    DataError
        As :func:`allocation_exits`.

    Examples
    --------
    >>> labels = np.array([[1, 0, 0, 2, 0, 3]])
    >>> one = cost_distance(np.ones((1, 6)), labels, cell_size_m=10, connectivity=4)
    >>> allocation_crossings(one.cost, one.allocation, labels, np.ones((1, 6)), cell_size_m=10, connectivity=4)[1:, 1:]
    array([[inf, 30., inf],
           [30., inf, 20.],
           [inf, 20., inf]])
    """
    return _crossings(cost, allocation, labels, resistance, cell_size_m, connectivity, True)[1]


def crossing_floors(crossings: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Per label, a lower bound on the least cost between its sources and each of ``labels``': the bottleneck crossing.

    ``crossings`` from :func:`allocation_crossings`.  For every set of regions holding :math:`a` and not :math:`t`
    a path between them crosses one of the set's edges, so it costs at least the least crossing over that edge; the
    largest such bound over all sets is the least, over paths in the graph of touching regions, of their largest
    crossing (max-min cut, min-max path): the crossing at which Kruskal's algorithm first joins the two regions,
    one compiled pass over the crossings in ascending order.  By hand, not scipy's minimum spanning tree: a sparse
    matrix has no edge of weight 0 (a crossing of cost 0 would be lost and the bound made too high), and a
    breadth-first walk of the tree per label costs more in scipy's checks than the whole pass.

    Returns
    -------
    numpy.ndarray
        ``(len(labels), n)`` float64, row ``k`` for ``labels[k]`` (column = label): 0 at that label itself, inf
        where no chain of touching regions leads to it (and for a label outside ``0 .. n - 1``).

    Examples
    --------
    >>> inf = np.inf
    >>> w = np.array([[inf, inf, inf, inf], [inf, inf, 30.0, inf], [inf, 30.0, inf, 20.0], [inf, inf, 20.0, inf]])
    >>> crossing_floors(w, [3, 1]).tolist()
    [[inf, 30.0, 20.0, 0.0], [inf, 0.0, 30.0, 30.0]]
    """
    w = np.asarray(crossings, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or (w < 0).any():
        msg = (
            f"crossings: expected a square matrix of crossing costs >= 0 (allocation_crossings), found shape {w.shape}"
            f"{' with negative values' if w.ndim == 2 and (w < 0).any() else ''}. Give allocation_crossings' result."
        )
        raise DataError(msg)
    n = w.shape[0]
    want = np.asarray([int(v) for v in labels], dtype=np.int64)
    inside = (want >= 0) & (want < n)
    row_of = np.full(n, -1, dtype=np.int64)
    rows = np.unique(want[inside])
    row_of[rows] = np.arange(rows.size)
    ea, eb = np.nonzero(np.isfinite(w))  # no crossing (inf): no edge; both triangles, as w need not be symmetric
    ew = w[ea, eb]
    by = np.argsort(ew, kind="stable")
    found = np.full((rows.size, n), np.inf)
    _minimax_rows(ea[by].astype(np.int64), eb[by].astype(np.int64), ew[by], row_of, found)
    out = np.full((want.size, n), np.inf)
    out[inside] = found[row_of[want[inside]]]
    return out


def _check_floors(floors: np.ndarray | None, alloc: np.ndarray | None, n_partners: int) -> np.ndarray:
    """``floors`` as a C-contiguous float64 array for the kernel (empty: none)."""
    if floors is None:
        return np.zeros((0, 0))
    fl = np.asarray(floors, dtype=np.float64)
    if alloc is None or fl.ndim != 2 or fl.shape[1] != n_partners or fl.shape[0] < 1 or not (fl >= 0).all():
        msg = (
            f"floors: expected a bound with an allocation and an array of lower bounds >= 0, one column per partner "
            f"({n_partners}), found {'no allocation and ' if alloc is None else ''}{fl.dtype} of shape {fl.shape}. "
            "Give the bound's allocation and one row per label, or leave floors out."
        )
        raise DataError(msg)
    return np.ascontiguousarray(fl)


def single_source_window(
    prepared: _Prepared,
    label: int,
    *,
    cell_size_m: float,
    max_cost: float,
    bound: SearchBound | None = None,
    work: np.ndarray | None = None,
    within: Sequence[float] = (),
    partners: Sequence[int] = (),
    tighten: tuple[float, float] = (1.0, 0.0),
    rest: Sequence[bool] = (),
    reached: list[float] | None = None,
    floors: np.ndarray | None = None,
    learned: dict[str, Any] | None = None,
    own_region: bool = False,
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int], list[tuple[int, int, int, int] | None]]:
    r"""Cost distance from one source label within ``max_cost``, in the box of the cells it reached; optionally pruned.

    The search touches only the cells it reaches (no pass over the whole grid): its sources come
    from :func:`prepare_search`, it writes no allocation or back-links, and it runs in ``work``,
    which it leaves as it found it.

    With ``bound``, cells that fail its tests (:class:`SearchBound`) are not expanded.  Why the costs
    that matter stay exact: if a set :math:`S` of cells is closed along least-cost paths from the
    source (every cell of a least-cost path to a cell of :math:`S` is in :math:`S`) and every cell of
    :math:`S` passes the tests, every cell of :math:`S` gets its least cost, bit for bit (the search
    reaches the same fixed point there: see :mod:`leopardgeo.kernels._costdist_compiled`).  Every
    other cell reached holds a cost no lower than its least cost.  For
    :math:`S = \{x : d(x) + g(x) \le r\}` with :math:`g` the cost distance to some other set of cells,
    :math:`S` is closed, and it passes :math:`d + h_1 \le r` for any lower bound :math:`h_1 \le g`
    (such as the cost distance from all patches) and :math:`d + g - r \le 0` (``h2`` = :math:`g - r`).

    Parameters
    ----------
    prepared
        From :func:`prepare_search`.
    label
        The source label.
    cell_size_m
        Cell side length in metres (that of :func:`prepare_search`).
    max_cost
        Stop at this cost (cost-weighted metres).
    bound
        The pruning tests, or None.
    work
        float64 raster of the grid's shape, inf everywhere, to search in (left so), or None for a new one.
    within
        Costs (cost-weighted metres) for which to return the box of the cells expanded within them.
    partners
        Empty, or one source label per ``within`` cost (distinct): the search lowers that cost as soon as
        it learns how far the label is.  When it takes a cell of ``partners[k]`` from its queue, at cost
        :math:`d` (no lower than the least cost from ``label`` to that label), or with the ``bound``'s
        ``allocation`` a cell of that label's allocation, at cost :math:`d` with :math:`d + h_1` no lower
        than that least cost, ``within[k]`` becomes ``min(within[k], a * u + b)`` with ``(a, b) = tighten``
        and :math:`u` that upper bound.  With partners the search's cutoff is
        ``min(max_cost, max(within))`` throughout, so it comes down with them, and with ``bound`` its
        ``r1`` is ``min(r1, max(within[k]))`` over the ``k`` with ``rest[k]``.  A least-cost corridor's
        reach is its least-cost distance plus its width, and the search learns that distance when it
        reaches the other patch.  Cells given a cost before the cutoff came down keep it (a cost no lower
        than their least cost, above the final cutoff); every cell whose least cost lies within the final
        cutoff gets it.
    tighten
        ``(a, b)`` of ``partners`` (``a >= 1``, ``b >= 0``).
    rest
        With ``partners`` and ``bound``: which ``within`` costs ``r1`` stands for.
    reached
        A list that gets, per partner, the least of those upper bounds on the least cost to it (inf if none).
    floors
        With ``partners``, ``rest`` and the ``bound``'s ``allocation``: a float array, one row per label
        (rows ``0 .. n - 1``, ``n`` above every label of the allocation) and one column per partner, of
        lower bounds on the least cost between that label's sources and the partner's (0: none known).
        A cell :math:`x` allocated to label :math:`a`, taken at cost :math:`d`, is then expanded only if
        also :math:`d - h_1(x) \le \max_k (w_k - f_{a,k})` over the partners :math:`k` with ``rest``
        (:math:`w_k` their ``within`` costs).  Why no corridor cell fails it: a cell :math:`x` of the
        corridor of a rest partner :math:`k` has :math:`d(x) + d_k(x) \le w_k`, and (costs being
        symmetric) :math:`d_a(x) + d_k(x)` is the cost of a path between :math:`a`'s and :math:`k`'s
        sources, so :math:`d_k(x) \ge f_{a,k} - d_a(x)`, with :math:`d_a(x) = h_1(x)` for the label
        :math:`x` is allocated to.
    learned
        A dict that gets what the search shows of the least costs to the other labels: ``"floor"`` (the
        least :math:`d + h_1` over the cells it did not expand for failing the tests, or its final cutoff if
        lower) and ``"at"``, per label (index = label), the least cost at which it took one of that label's
        cells (inf if none).  The least cost from
        ``label`` to label :math:`l` is at least ``min(floor, at[l])``: a least-cost path to :math:`l`
        either has every cell expanded, so its end was taken at its least cost, or has a first cell
        :math:`z` not expanded, taken at its least cost :math:`d_z` and refused (then the path costs at
        least :math:`d_z + h_1(z)`) or never given a cost within the cutoff.  Needs ``partners`` and the
        ``bound``'s ``h1`` (the exact cost distance from all sources).
    own_region
        With the ``bound``'s ``h1`` and ``allocation`` (``h1`` exactly the cost distance from all the labelled
        sources, as for ``partners``): the cells allocated to ``label`` are not searched.  Their least cost from
        ``label`` is their ``h1``, bit for bit (both are the least over the same paths, summed alike), and a
        least-cost path from ``label`` to any other cell leaves that region last from a cell with a neighbour
        outside it.  So the search starts from those edge cells, each at its ``h1``, as if it had come to them
        (they and their neighbours in the region get their ``h1`` first, so that no step goes into the region):
        the same costs outside the region, without the expansions inside it.  After the search the region's
        cells that pass the ``bound``'s tests at :math:`d = h_1` (with ``r1`` and the cutoff as the search
        lowered them) get their ``h1`` (the cells the search would have expanded, at their least costs), and
        the ``within`` boxes hold those with :math:`2 h_1` within each cost.  So a region cell :math:`x` of a
        set :math:`\{x : d(x) + g(x) \le r\}` (:math:`g` the cost distance to other labels' sources, such as a
        corridor) has its least cost wherever the plain search would give it: there :math:`g(x) \ge h_1(x) =
        d(x)`, so it passes the ``h1`` test with :math:`2 h_1 \le r`, or a part's test, at :math:`d = h_1`.
        ``learned``'s floor still bounds the least costs to the other labels (their paths leave the region
        through an edge cell, which the search takes at its least cost).

    Returns
    -------
    cost : numpy.ndarray
        float64 cost (cost-weighted metres) in the box: 0 on the source, inf where not reached and on no data.
    origin : tuple of int
        ``(row, col)`` of its first cell.
    box : tuple of int
        ``(row0, row1, col0, col1)`` (ends exclusive) of ``cost`` in the grid: it holds every cell reached.
    within_boxes : list
        For each cost of ``within``, the grid box (as ``box``) of the cells expanded at a cost no higher, or None.

    Raises
    ------
    ConfigError
        If ``max_cost`` is not a positive finite number.
    DataError
        If ``label`` is not in the sources, or ``work`` or a raster of ``bound`` has the wrong shape.
    NoPathError
        If every cell of ``label`` lies on no data.

    Examples
    --------
    >>> inp = prepare_search(np.ones((2, 6)), np.array([[1, 0, 0, 0, 0, 2], [0] * 6]), cell_size_m=10, connectivity=4)
    >>> cost, origin, box, within = single_source_window(inp, 2, cell_size_m=10, max_cost=15, within=[5, 10])
    >>> cost.tolist(), origin, box, within
    ([[inf, 10.0, 0.0], [inf, inf, 10.0]], (0, 3), (0, 2, 3, 6), [(0, 1, 5, 6), (0, 2, 4, 6)])
    >>> g = np.array([[0.0, 10, 20, 30, 40, 50], [10, 20, 30, 40, 50, 60]])  # the cost distance to label 1
    >>> single_source_window(inp, 2, cell_size_m=10, max_cost=100, bound=SearchBound(g, 50.0))[0].tolist()  # row 1 fails
    [[50.0, 40.0, 30.0, 20.0, 10.0, 0.0], [60.0, 50.0, 40.0, 30.0, 20.0, 10.0]]
    >>> single_source_window(inp, 2, cell_size_m=10, max_cost=100, bound=SearchBound(None, 10.0))[0].tolist()
    [[20.0, 10.0, 0.0], [inf, 20.0, 10.0]]
    """
    inp = prepared.inp
    lab = _check_label(prepared, label)
    cell_size_m = _check_positive(cell_size_m, "cell_size_m", "metres")  # <= 0 would grow the queue without end
    cut = _check_positive(max_cost, "max_cost", "cost-weighted metres")
    res = inp.res
    if work is None:
        work = np.full(res.shape, np.inf)
    elif work.shape != res.shape or work.dtype != np.float64 or not work.flags.c_contiguous:
        msg = f"work: expected a C-contiguous float64 raster of the grid's shape {res.shape}, found {work.dtype} {work.shape}."
        raise DataError(msg)
    args, keep = (None, []) if bound is None else bound._kernel_args(res.shape)  # keep: read by address
    srcs = prepared.sources(lab)
    k = inp.connectivity
    offsets = _search_offsets(k, res.shape[1], cell_size_m, cut)
    inv_width, n_buckets = _plan_queue(inp.r_min, inp.r_max, cell_size_m, k, res.size)
    dummy_alloc, dummy_back = np.zeros((1, 1), dtype=np.int32), np.zeros((1, 1), dtype=np.int8)
    box = [0, 0, 0, 0]
    thresholds = np.array([float(t) for t in within], dtype=np.float64)
    empty = np.array([res.shape[0], -1, res.shape[1], -1], dtype=np.int64)
    thr_box = np.tile(empty, (thresholds.size, 1))
    region = _own_region(bound, res.shape, k, lab, srcs, cut) if own_region else None
    flat = work.reshape(-1)
    flat[srcs] = 0.0
    tg = alloc = None
    if len(partners):
        if len(partners) != thresholds.size or (len(rest) and len(rest) != thresholds.size):
            msg = (
                f"partners, rest: expected one per within cost ({thresholds.size}), found {len(partners)} and "
                f"{len(rest)}. Give a partner label (and a rest flag) for each cost of within."
            )
            raise DataError(msg)
        if lab in {int(q) for q in partners}:
            msg = (
                f"partners: expected the labels of other sources, found the search's own label {lab}, which it "
                "reaches at cost 0. Leave it out of partners."
            )
            raise DataError(msg)
        tg_labels = np.asarray(partners, dtype=np.int64)
        if (tg_labels <= 0).any() or np.unique(tg_labels).size != tg_labels.size:
            msg = f"partners: expected distinct source labels (> 0), found {tg_labels.tolist()}. Give each other label once."
            raise DataError(msg)
        a, b = (float(v) for v in tighten)
        if not (a >= 1.0 and b >= 0.0 and math.isfinite(a) and math.isfinite(b)):
            msg = f"tighten: expected (a >= 1, b >= 0), finite, found {tighten!r}. A reach is never below the distance."
            raise ConfigError(msg)
        alloc = bound._allocation(res.shape) if bound is not None else None
        labf = np.ascontiguousarray(inp.src).reshape(-1) if alloc is None else alloc
        slot = np.full(int(tg_labels.max()) + 1, -1, dtype=np.int64)
        slot[tg_labels] = np.arange(tg_labels.size)
        rest_a = np.zeros(thresholds.size, dtype=np.bool_) if not len(rest) else np.asarray(rest, dtype=np.bool_)
        found = np.full(thresholds.size, np.inf)
        fl = _check_floors(floors, alloc, thresholds.size)
        n_lab = int(inp.labels.max()) + 1 if inp.labels.size else 1
        if learned is not None and (bound is None or bound.h1 is None):
            msg = (
                "learned: expected a bound with h1 (the cost distance from all sources), found none. "
                "Give one, or leave learned out."
            )
            raise DataError(msg)
        learn = np.full(1 + n_lab, np.inf) if learned is not None else np.empty(0)
        tg = (labf, slot, alloc is not None, a, b, rest_a, found, fl, np.empty(fl.shape[0]), learn)
    elif floors is not None or learned is not None:
        msg = "floors, learned: expected partners with them, found none. Give the partners, or leave floors and learned out."
        raise DataError(msg)
    has_h1 = args is not None and args[0].size > 0
    h1_flat = args[0] if has_h1 else None
    if has_h1 or tg is not None:  # h1 and the labels in one 8-byte slot per cell: one cache line per cell taken
        layout = bound._layout(tg[0] if tg is not None else None) if has_h1 else prepared.source_layout()
        args = None if args is None else (layout.view(np.float32) if has_h1 else _NO_H32, *args[1:])
        if tg is not None:
            tg = (layout, *tg[1:])
    start = thresholds.copy()
    filled = np.array([res.shape[0], -1, res.shape[1], -1], dtype=np.int64)  # the region's cells given their h1
    if region is None:
        search = (srcs, False, args, box, thresholds, thr_box, tg)
    else:
        seeds, seed_cost = _region_seeds(region, h1_flat, flat, res.shape[1], k, filled)
        search = (seeds, False, args, box, thresholds, thr_box, tg, seed_cost)
    if _search_grid(res, work, dummy_alloc, dummy_back, offsets, inv_width, n_buckets, True, *search):
        work.fill(np.inf)  # only with a forced, too small ring: rerun with the heap
        flat[srcs] = 0.0
        if region is not None:
            _region_seeds(region, h1_flat, flat, res.shape[1], k, filled)
        thr_box[:] = empty
        thresholds[:] = start
        if tg is not None:
            found[:] = np.inf
            tg[-1][:] = np.inf
        _search_grid(res, work, dummy_alloc, dummy_back, offsets, 0.0, 0, True, *search)
    if region is not None:  # the region's cells that pass the tests at their h1 get it (the search did not go in)
        final_cut, r1 = cut, float(args[1])
        if tg is not None:  # as the search lowered them (_tightened)
            final_cut = min(cut, float(thresholds.max()))
            r1 = min(r1, float(thresholds[rest_a].max())) if rest_a.any() else r1
        _region_costs(region, h1_flat, flat, res.shape[1], final_cut, r1, args[2:], thresholds, thr_box, filled)
    del keep  # the kernel (and _region_costs) have read the bound's parts by address
    if reached is not None:
        reached[:] = [float(v) for v in found] if tg is not None else [math.inf] * thresholds.size
    if learned is not None and tg is not None:
        final_cut = min(cut, float(thresholds.max())) if thresholds.size else cut
        learned["floor"] = min(float(tg[-1][0]), final_cut)
        learned["at"] = tg[-1][1:].copy()
        if region is not None and lab < learned["at"].size:
            learned["at"][lab] = 0.0  # its own sources, at 0 (given, not taken)
    # the cells given a cost: the sources (expanded or not), and those within the margin of the expanded cells
    rows, cols = np.divmod(srcs, res.shape[1])
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    if box[1] > 0:
        m = offsets[8]
        r0, r1 = min(r0, max(box[0] - m, 0)), max(r1, min(box[1] + m, res.shape[0]))
        c0, c1 = min(c0, max(box[2] - m, 0)), max(c1, min(box[3] + m, res.shape[1]))
    if filled[1] >= 0:  # and the region's cells given their h1
        r0, r1 = min(r0, int(filled[0])), max(r1, int(filled[1]) + 1)
        c0, c1 = min(c0, int(filled[2])), max(c1, int(filled[3]) + 1)
    cost = _take_box(work, r0, r1, c0, c1)  # the costs out, the raster back to inf
    boxes = [(int(b[0]), int(b[1]) + 1, int(b[2]), int(b[3]) + 1) if b[1] >= 0 else None for b in thr_box]
    return cost, (r0, c0), (r0, r1, c0, c1), boxes


def _own_region(
    bound: SearchBound | None,
    shape: tuple[int, ...],
    connectivity: int,
    label: int,
    srcs: np.ndarray,
    cut: float,
) -> tuple:
    """``(runs, edge cells, allocation, label, max_cost)`` of ``label``'s allocation region (``own_region``)."""
    alloc = None if bound is None or bound.h1 is None else bound._allocation(shape)
    if alloc is None:
        msg = (
            "own_region: expected a bound with h1 and its allocation (the cost distance from all the labelled sources), "
            f"found {'no bound' if bound is None else 'no h1' if bound.h1 is None else 'no allocation'}. Give them, "
            "or leave own_region out."
        )
        raise DataError(msg)
    h1 = np.asarray(bound.h1).reshape(-1)
    wrong = int(np.count_nonzero((alloc[srcs] != label) | (h1[srcs] != 0.0)))
    if wrong:
        msg = (
            f"own_region: expected the bound's allocation to give each source cell its own label at cost 0, found "
            f"{wrong} of label {label}'s {srcs.size} that it does not. Give the cost and allocation of one search from "
            "all the labels."
        )
        raise DataError(msg)
    if bound.rasters is not None:
        bound._layout(None)  # checks that the rasters are those of this h1 and allocation
        run_start, runs, edge_start, edges = bound.rasters.regions(connectivity)
    else:
        run_start, runs, edge_start, edges = _allocation_regions(alloc.reshape(shape), connectivity)
    if label + 1 >= run_start.size:
        runs, edges = runs[:0], edges[:0]
    else:
        runs, edges = runs[run_start[label] : run_start[label + 1]], edges[edge_start[label] : edge_start[label + 1]]
    return runs, edges, alloc, label, cut


def _region_seeds(region: tuple, h1: np.ndarray, flat: np.ndarray, n_cols: int, connectivity: int, filled: np.ndarray) -> tuple:
    """Before the search: the region's edge cells and their neighbours in it get their ``h1`` (:func:`_seed_region`).

    Returns ``(seeds, their costs)``; ``filled`` (rows, columns, ends inclusive) grows to hold the cells set.
    """
    _, edges, alloc, label, cut = region
    off = NEIGHBOUR_OFFSETS[:connectivity]
    seeds, seed_cost = np.empty(edges.size, dtype=np.int64), np.empty(edges.size)
    box = filled.reshape(1, 4)
    drow, dcol = off[:, 0].copy(), off[:, 1].copy()
    n = _seed_region(edges, alloc, label, h1, cut, flat, n_cols, drow, dcol, seeds, seed_cost, box)
    return seeds[:n], seed_cost[:n]


def _region_costs(
    region: tuple, h1: np.ndarray, flat: np.ndarray, n_cols: int, cut: float, r1: float, parts: tuple,
    within: np.ndarray, thr_box: np.ndarray, filled: np.ndarray,
) -> None:  # fmt: skip
    """After the search: the region's cells that pass its tests at their ``h1`` get it (:func:`_fill_region`).

    ``cut``, ``r1``: the final cutoff and ``r1``; ``parts``: the kernel's ``(pt_addr, pt_geo, pt_reach)``;
    ``within``: the final costs.  ``thr_box[k]`` grows to hold the cells set with ``2 h1 <= within[k]``,
    ``filled`` all of them (ends inclusive).
    """
    order = np.argsort(within, kind="stable")
    levels = np.tile(np.array([flat.size, -1, flat.size, -1], dtype=np.int64), (within.size + 1, 1))
    _fill_region(region[0], h1, cut, r1, *parts, flat, n_cols, within[order], levels)
    # a cell within the k-th least cost is within every larger one: the boxes are unions of the levels up to k
    union = np.empty_like(levels)
    for j, accumulate in enumerate((np.minimum, np.maximum, np.minimum, np.maximum)):  # rows, columns: ends inclusive
        union[:, j] = accumulate.accumulate(levels[:, j])
    for j, keep in enumerate((np.minimum, np.maximum, np.minimum, np.maximum)):
        thr_box[order, j] = keep(thr_box[order, j], union[:-1, j])
        filled[j] = keep(filled[j], union[-1, j])


def trace_path(
    backlink: np.ndarray,
    cell: tuple[int, int],
    *,
    connectivity: int,
    allocation: np.ndarray | None = None,
) -> np.ndarray:
    """Least-cost path from the source to ``cell``, following back-links.

    Parameters
    ----------
    backlink
        Back-link raster of a :class:`CostDistanceResult`.
    cell
        ``(row, col)`` of the end cell.
    connectivity
        Connectivity the back-links were computed with (4, 8 or 16).
    allocation
        Optional allocation raster; if given, an unreachable ``cell``
        (allocation 0) raises :class:`NoPathError` instead of returning a
        one-cell path.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` int64 array of ``(row, col)``, from the source cell to ``cell``.

    Raises
    ------
    ConfigError
        If ``connectivity`` is not 4, 8 or 16.
    DataError
        If ``cell`` is outside the raster, or the back-links are not valid for
        this connectivity (out-of-range index, leaving the raster, or a cycle).
    NoPathError
        If ``allocation`` is given and ``cell`` is not reached from any source.

    Examples
    --------
    >>> src = np.zeros((3, 3), dtype=int)
    >>> src[0, 0] = 1
    >>> res = cost_distance(np.ones((3, 3)), src, cell_size_m=10, connectivity=4)
    >>> trace_path(res.backlink, (0, 2), connectivity=4).tolist()
    [[0, 0], [0, 1], [0, 2]]
    """
    k = _check_connectivity(connectivity)
    back = np.asarray(backlink)
    nr, nc = back.shape
    r, c = (int(v) for v in cell)
    if not (0 <= r < nr and 0 <= c < nc):
        msg = f"cell: expected a (row, col) inside the raster of shape {back.shape}, found {cell!r}."
        raise DataError(msg)
    if allocation is not None and np.asarray(allocation)[r, c] == 0:
        msg = f"cell ({r}, {c}): expected a cell reached from a source, found it unreachable (allocation 0)."
        raise NoPathError(msg)
    if back.dtype.kind not in "iu":
        back = back.astype(np.int64)
    cells, status, r, c = _trace(back, r, c, _DROW[:k], _DCOL[:k])  # compiled: a path has thousands of cells
    if status == 0:
        return cells[::-1].copy()
    if status == 1:
        msg = f"backlink: expected -1..{k - 1} for connectivity {k}, found {int(back[r, c])} at ({r}, {c})."
    elif status == 2:
        msg = f"backlink: expected links inside the raster, found one leaving it at ({r}, {c})."
    else:
        msg = "backlink: expected links that end at a source, found a cycle. Use the back-links of one cost_distance run."
    raise DataError(msg)


def path_to_linestring(cells: np.ndarray, grid: Grid) -> shapely.LineString:
    """Line through the centres of path cells, in the grid's map coordinates (metres).

    Parameters
    ----------
    cells
        ``(n, 2)`` array of ``(row, col)``, e.g. from :func:`trace_path`, n >= 2.
    grid
        The analysis grid the cells index.

    Returns
    -------
    shapely.LineString
        In ``grid.crs``.

    Raises
    ------
    DataError
        If there are fewer than two cells or a cell lies outside the grid.

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 300, 300), cell_size_m=100, crs="EPSG:32652")
    >>> path_to_linestring(np.array([[0, 0], [1, 1], [1, 2]]), g).wkt
    'LINESTRING (50 250, 150 150, 250 150)'
    """
    a = np.asarray(cells)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2:
        msg = (
            f"cells: expected an (n, 2) array of (row, col) with n >= 2, found shape {a.shape}. A one-cell path is a source cell."
        )
        raise DataError(msg)
    rows, cols = a[:, 0], a[:, 1]
    if rows.min() < 0 or cols.min() < 0 or rows.max() >= grid.height or cols.max() >= grid.width:
        msg = f"cells: expected (row, col) inside the grid of shape {grid.shape}, found some outside."
        raise DataError(msg)
    x, y = grid.xy(rows, cols)
    return shapely.LineString(np.column_stack([x, y]))
