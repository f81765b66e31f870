r"""Accumulated cost distance from labelled sources over a resistance grid.

A compiled multi-source Dijkstra search over the cells of a resistance raster.
The cost of one step between neighbouring cells :math:`u` and :math:`v` is

.. math::

    c(u, v) = \ell_{uv} \, \frac{r_u + r_v}{2},
    \qquad \ell_{uv} \in \{s,\; s\sqrt{2},\; s\sqrt{5}\}

with :math:`s` the cell size in metres and :math:`r` the resistance, so costs are
in cost-weighted metres.  This is the convention of ArcGIS *Cost Distance*,
Linkage Mapper (which calls it) and :class:`skimage.graph.MCP_Geometric`
(see ``/work/shared/reference/algorithms.md``, "Cost distance").  Every cell of
every source starts at cost 0, so distances run edge to edge from the nearest
source cell.  NaN resistance is no data and impassable.

The neighbour offsets, in the order back-links refer to, are
:data:`NEIGHBOUR_OFFSETS`: 4 axial, then 4 diagonal, then 8 knight's moves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

import shapely

from leopardgeo.core.errors import ConfigError, DataError, NoPathError
from leopardgeo.core.executor import available_cores
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance

__all__ = [
    "NEIGHBOUR_OFFSETS",
    "VALID_CONNECTIVITY",
    "CostDistanceResult",
    "cost_distance",
    "cost_distance_many",
    "path_to_linestring",
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


# --------------------------------------------------------------------------- compiled kernel
# No library offers what this needs as a dependency we can use: a compiled grid
# Dijkstra that takes labelled multi-cell sources and returns allocation and
# back-links, runs without the GIL, and supports knight's moves with no-data
# checks.  scipy.sparse.csgraph needs an explicit graph (too much memory at 10^7
# cells); skimage.graph.MCP_Geometric has no labelled allocation and is only a
# test dependency.  Both serve as independent checks in tests/test_costdist.py.
#
# The search works on the resistance raster as given (float32 or float64, no
# copy) and writes straight into the output rasters; its only other memory is
# the priority queue, which holds the search front (a few cells per cell of
# its perimeter), not one slot per cell.
#
# Why the result is exact whatever the queue
# ------------------------------------------
# Let fl(a + w) be the floating-point sum.  It is monotone in ``a`` and
# fl(a + w) >= a for w >= 0, so the least cost D(v) over all paths, each summed
# step by step from its source, satisfies D(v) = min_u fl(D(u) + w(u, v)), and
# two searches that both stop at that fixed point give bit-identical costs:
#
# * the binary heap (the fallback) pops cells in order of cost, so a cell's cost
#   is final when it is popped -- Dijkstra's argument holds with fl(a + w);
# * the bucket queue is a label-correcting search: a cell is (re)expanded each
#   time its cost goes down (lazy deletion: an entry whose cell's current cost
#   lies in another bucket is stale and skipped), so it ends at the same fixed
#   point whatever the order of the cells; the bucket order only makes it fast.
#
# The bucket queue (Dial 1969, "Algorithm 360: shortest-path forest with
# topological ordering", CACM 12:632) keys a cell by floor(cost / W) with the
# bucket width W = the smallest possible step, s * r_min (an axial step between
# two cells of least resistance; every step costs at least that, also after
# rounding, as fl is monotone).  A cell expanded from bucket b gives its
# neighbours costs >= (b + 1) W, so nothing expanded later improves a cell of
# bucket b: each cell is expanded once, up to rare rounding at bucket edges,
# which the label-correcting rule above absorbs.  Order within a bucket does not
# matter, so each bucket is a stack of fixed-size blocks of cell ids taken from
# a free list -- sequential, cache-friendly memory, no per-cell index.  All live
# entries lie within one largest step, s * sqrt(2 or 5) * r_max, of the current
# bucket, so ceil(r_max / r_min * sqrt(2 or 5)) + 2 buckets in a ring suffice.
# For extreme resistance ratios (too many buckets) the search uses a binary
# min-heap with lazy deletion (entries: cost, cell id), exact Dijkstra order.
#
# Speed: the kernel allocates nothing in its loop (it returns to have its queue
# grown, then resumes), so there is no reference counting there; it indexes with
# unsigned integers, which spares numba's negative-index wrap-around; it tests
# all neighbours of a cell first and branches only on the bit mask of those it
# improves (the tests are unpredictable); and it prefetches the cells a few pops
# ahead in the current bucket, hiding the cache misses of the scattered front.
# With a single source label the loop leaves the allocation raster alone and it
# is filled in one pass afterwards (label where the cost is finite).

#: Cell ids per block of a bucket's stack.
_BLOCK = 256
#: Most buckets for the bucket queue; beyond, the binary heap is used.  Even at
#: 10^6 buckets the bucket queue beats the heap (2000 x 2000 cells, resistance
#: ratio 1e6: 0.7 s against 1.2 s).
_MAX_BUCKETS = 1 << 21
#: Pops ahead for which the cells are prefetched.
_AHEAD = 4


@intrinsic
def _prefetch(typingctx, arr, idx):  # pragma: no cover - compiled
    """Hint the CPU to fetch ``arr[idx]`` into the cache (never faults; ``idx`` may be out of range)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])  # no "inbounds": an address outside the array is allowed
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


#: Slots of the search state kept between calls of :func:`_search` (it returns to grow its queue).
_ST_SCAN, _ST_CUR, _ST_SLOT, _ST_FREE, _ST_NFREE, _ST_LIVE, _ST_SIZE = range(7)


@njit(cache=True, nogil=True)
def _search(
    res,
    cost,
    alloc,
    back,
    data,
    link,
    head,
    fill,
    hkey,
    hnode,
    state,
    delta,
    drow,
    dcol,
    half_len,
    via_a,
    via_b,
    has_via,
    opposite,
    margin,
    max_cost,
    inv_width,
    n_buckets,
    one_label,
):  # pragma: no cover - compiled
    """Multi-source least-cost search; fills ``cost``, ``alloc`` and ``back`` in place.

    On the first call ``cost`` is 0 on source cells, NaN on no data and inf
    elsewhere, ``alloc`` holds the labels of the source cells, ``back`` is -1
    and ``state`` is set up by :func:`_search_grid`.  Offsets are flat
    (``delta``, ``via_a``, ``via_b``) and by row / column (``drow``, ``dcol``,
    for cells within ``margin`` of the edge).  ``n_buckets > 0`` selects the
    bucket queue (ring ``head`` / ``fill``, block pool ``data`` / ``link``) of
    width ``1 / inv_width``, else the binary heap ``hkey`` / ``hnode``.

    Returns 0 when done; 2 when the queue may not have room for the next
    expansion (the caller grows it and calls again: the search resumes from
    ``state``); 1 if a step would leave the bucket ring (cannot happen when
    ``n_buckets`` covers the largest step; the caller then reruns with the heap).
    With ``one_label`` (all sources share one label) ``alloc`` is left alone:
    the caller fills it after the search, which spares the loop a raster.

    Array indices are cast to unsigned integers so that numba leaves out the
    negative-index wrap-around.
    """
    nr, nc = res.shape
    n = nr * nc
    rf = res.reshape(-1)
    cf = cost.reshape(-1)
    af = alloc.reshape(-1)
    bf = back.reshape(-1)
    n_off = delta.size
    use_buckets = n_buckets > 0
    cap = hkey.size
    scan = state[_ST_SCAN]
    cur = state[_ST_CUR]  # absolute index of the current bucket
    slot = state[_ST_SLOT]  # its place in the ring
    free = state[_ST_FREE]  # first free block
    n_free = state[_ST_NFREE]
    live = state[_ST_LIVE]  # entries in the buckets
    size = state[_ST_SIZE]  # entries in the heap
    cand = np.empty(n_off, dtype=np.float64)  # costs offered to the neighbours
    status = 0
    while True:
        # Room for one expansion: at most n_off entries, each needing at most one new block.
        if (n_free < n_off) if use_buckets else (size + n_off > cap):
            status = 2
            break
        if scan < n:  # sources are expanded first, found by a scan for cost 0
            while scan < n and cf[np.uint64(scan)] != 0.0:
                scan += 1
            if scan == n:
                continue
            u = np.int64(scan)
            scan += 1
            d = 0.0
        elif use_buckets:
            if live == 0:
                break
            while head[np.uint64(slot)] < 0:
                cur += 1
                slot += 1
                if slot == n_buckets:
                    slot = 0
            blk = np.int64(head[np.uint64(slot)])
            f = np.int64(fill[np.uint64(slot)]) - 1
            u = np.int64(data[np.uint64(blk * _BLOCK + f)])
            if f == 0:
                head[np.uint64(slot)] = link[np.uint64(blk)]
                fill[np.uint64(slot)] = _BLOCK
                link[np.uint64(blk)] = free
                free = blk
                n_free += 1
            else:
                fill[np.uint64(slot)] = f
                if f >= _AHEAD:  # warm the cache for the cell popped _AHEAD pops from now
                    w = np.int64(data[np.uint64(blk * _BLOCK + f - _AHEAD)])
                    _prefetch(cf, w - nc)
                    _prefetch(cf, w)
                    _prefetch(cf, w + nc)
                    _prefetch(rf, w - nc)
                    _prefetch(rf, w)
                    _prefetch(rf, w + nc)
            live -= 1
            d = cf[np.uint64(u)]
            if np.int64(d * inv_width) != cur:
                continue  # stale: the cell has since been improved into an earlier bucket
        else:
            if size == 0:
                break
            u = np.int64(hnode[0])
            d = hkey[0]
            size -= 1
            if size > 0:
                key = hkey[np.uint64(size)]
                node = hnode[np.uint64(size)]
                i = 0
                while True:
                    c = 2 * i + 1
                    if c >= size:
                        break
                    if c + 1 < size and hkey[np.uint64(c + 1)] < hkey[np.uint64(c)]:
                        c += 1
                    if hkey[np.uint64(c)] >= key:
                        break
                    hkey[np.uint64(i)] = hkey[np.uint64(c)]
                    hnode[np.uint64(i)] = hnode[np.uint64(c)]
                    i = c
                hkey[np.uint64(i)] = key
                hnode[np.uint64(i)] = node
            if d != cf[np.uint64(u)]:
                continue  # stale: a cheaper entry of this cell was popped before

        # Expand u: relax its neighbours.
        ur = u // nc
        uc = u - ur * nc
        ru = np.float64(rf[np.uint64(u)])
        lab = 0 if one_label else af[np.uint64(u)]
        # First the tests, without branches (they are unpredictable): bit k of
        # ``better`` is set if neighbour k gets a lower cost, cand[k].
        better = 0
        if ur >= margin and ur < nr - margin and uc >= margin and uc < nc - margin:
            for k in range(n_off):
                v = u + delta[k]
                # = d + len * ((r_u + r_v) / 2) exactly (halving is exact); NaN r_v gives NaN, failing the test
                nd = d + half_len[k] * (ru + np.float64(rf[np.uint64(v)]))
                cand[k] = nd
                # also false on no-data cells, whose cost is NaN
                better |= np.int64((nd < cf[np.uint64(v)]) & (nd <= max_cost)) << k
        else:
            for k in range(n_off):
                vr = ur + drow[k]
                vc = uc + dcol[k]
                if vr < 0 or vr >= nr or vc < 0 or vc >= nc:
                    continue
                v = u + delta[k]
                nd = d + half_len[k] * (ru + np.float64(rf[np.uint64(v)]))
                cand[k] = nd
                better |= np.int64((nd < cf[np.uint64(v)]) & (nd <= max_cost)) << k
        while better:
            k = trailing_zeros(better)
            better &= better - 1
            if has_via[k] and (math.isnan(rf[np.uint64(u + via_a[k])]) or math.isnan(rf[np.uint64(u + via_b[k])])):
                continue
            v = u + delta[k]
            nd = cand[k]
            cf[np.uint64(v)] = nd
            if not one_label:
                af[np.uint64(v)] = lab
            bf[np.uint64(v)] = opposite[k]
            if use_buckets:
                b = np.int64(nd * inv_width) - cur  # >= 0 as nd >= d and the key is monotone
                if b >= n_buckets:
                    return 1
                s = slot + b
                if s >= n_buckets:
                    s -= n_buckets
                h = np.int64(head[np.uint64(s)])
                fs = np.int64(fill[np.uint64(s)])
                if h < 0 or fs == _BLOCK:  # start a new block on top of this bucket's stack
                    nb = free
                    free = np.int64(link[np.uint64(nb)])
                    n_free -= 1
                    link[np.uint64(nb)] = h
                    head[np.uint64(s)] = nb
                    h = nb
                    fs = 0
                data[np.uint64(h * _BLOCK + fs)] = v
                fill[np.uint64(s)] = fs + 1
                live += 1
            else:
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) >> 1
                    if hkey[np.uint64(p)] <= nd:
                        break
                    hkey[np.uint64(i)] = hkey[np.uint64(p)]
                    hnode[np.uint64(i)] = hnode[np.uint64(p)]
                    i = p
                hkey[np.uint64(i)] = nd
                hnode[np.uint64(i)] = v
    state[_ST_SCAN] = scan
    state[_ST_CUR] = cur
    state[_ST_SLOT] = slot
    state[_ST_FREE] = free
    state[_ST_NFREE] = n_free
    state[_ST_LIVE] = live
    state[_ST_SIZE] = size
    return status


def _search_grid(
    res: np.ndarray,
    cost: np.ndarray,
    alloc: np.ndarray,
    back: np.ndarray,
    offsets: tuple,
    inv_width: float,
    n_buckets: int,
    one_label: bool,
) -> int:
    """Run :func:`_search` with a bucket queue (``n_buckets > 0``) or the heap, growing the queue as needed."""
    ids = np.int32 if res.size < 2**31 else np.int64  # cell ids in the queue
    state = np.zeros(7, dtype=np.int64)
    none32 = np.empty(0, dtype=np.int32)
    if n_buckets:
        n_blocks = 64
        data = np.empty(n_blocks * _BLOCK, dtype=ids)
        link = np.arange(1, n_blocks + 1, dtype=np.int32)  # the free list
        link[-1] = -1
        head = np.full(n_buckets, -1, dtype=np.int32)
        fill = np.zeros(n_buckets, dtype=np.int32)
        hkey, hnode = np.empty(0), np.empty(0, dtype=ids)
        state[_ST_NFREE] = n_blocks
    else:
        data, link, head, fill = np.empty(0, dtype=ids), none32, none32, none32
        hkey, hnode = np.empty(1024), np.empty(1024, dtype=ids)
    while True:
        status = _search(
            res, cost, alloc, back, data, link, head, fill, hkey, hnode, state, *offsets, inv_width, n_buckets, one_label
        )
        if status != 2:
            return status
        if n_buckets:  # double the block pool; the new blocks go on top of the free list
            old = link.size
            data = np.concatenate([data, np.empty_like(data)])
            link = np.concatenate([link, np.arange(old + 1, 2 * old + 1, dtype=np.int32)])
            link[-1] = state[_ST_FREE]
            state[_ST_FREE] = old
            state[_ST_NFREE] += old
        else:
            hkey = np.concatenate([hkey, np.empty_like(hkey)])
            hnode = np.concatenate([hnode, np.empty_like(hnode)])


@njit(cache=True, nogil=True)
def _scan_resistance(res):  # pragma: no cover - compiled
    """``(bad, nan, lo, hi)``: cells that fail :func:`check_resistance` (judged as float32 like it), NaN cells, range."""
    nr, nc = res.shape
    bad = 0
    nan = 0
    lo = np.inf
    hi = -np.inf
    for i in range(nr):
        for j in range(nc):
            v = np.float64(res[i, j])
            if math.isnan(v):
                nan += 1
                continue
            f = np.float32(v)
            if not (f > 0 and f < np.inf):
                bad += 1
                continue
            lo = min(lo, v)
            hi = max(hi, v)
    return bad, nan, lo, hi


@njit(cache=True, nogil=True)
def _scan_sources(src):  # pragma: no cover - compiled
    """``(out_of_range, n_sources, max_label)`` of a label raster, without a copy of it.

    ``out_of_range``: some label is < 0 or > 2**31 - 1.
    """
    nr, nc = src.shape
    limit = 2147483647
    out_of_range = False
    count = 0
    top = 0
    for i in range(nr):
        for j in range(nc):
            x = src[i, j]
            if x <= 0:
                if x < 0:
                    out_of_range = True
                continue
            if x > limit:
                out_of_range = True
                continue
            count += 1
            if np.int64(x) > top:
                top = np.int64(x)
    return out_of_range, count, top


@njit(cache=True, nogil=True)
def _mark_labels(src, res, present, on_data):  # pragma: no cover - compiled
    """Flag each positive label that occurs, and each that has a cell with resistance (not NaN)."""
    nr, nc = src.shape
    for i in range(nr):
        for j in range(nc):
            x = src[i, j]
            if x > 0:
                present[x] = True
                if not math.isnan(res[i, j]):
                    on_data[x] = True


def _source_labels(src: np.ndarray, res: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted labels present, and those with a cell on data (int64).

    Flags in arrays of ``top + 1`` booleans when that is small (the usual case:
    patch ids 1..n); a sort of the source cells otherwise.  (``np.unique``
    inside the compiled scan compiled for seconds; this compiles in well
    under one.)
    """
    if top <= max(1 << 20, src.size):
        present = np.zeros(top + 1, dtype=np.bool_)
        on_data = np.zeros(top + 1, dtype=np.bool_)
        _mark_labels(src, res, present, on_data)
        return np.flatnonzero(present).astype(np.int64), np.flatnonzero(on_data).astype(np.int64)
    cells = src > 0
    labels = np.unique(src[cells]).astype(np.int64)
    return labels, np.unique(src[cells & ~np.isnan(res)]).astype(np.int64)


@njit(cache=True, nogil=True)
def _init_outputs(res, src, want, cost, alloc):  # pragma: no cover - compiled
    """Cost 0 and the label on source cells (label ``want``, or any if 0), NaN on no data, inf elsewhere."""
    nr, nc = res.shape
    for i in range(nr):
        for j in range(nc):
            if math.isnan(res[i, j]):
                cost[i, j] = np.nan
                continue
            lab = np.int64(src[i, j])
            if lab > 0 and (want == 0 or lab == want):
                cost[i, j] = 0.0
                alloc[i, j] = lab
            else:
                cost[i, j] = np.inf


@njit(cache=True, nogil=True)
def _fill_allocation(cost, label, alloc):  # pragma: no cover - compiled
    """``label`` where the cost is finite (reached), else 0: the allocation of a one-label search."""
    nr, nc = cost.shape
    for i in range(nr):
        for j in range(nc):
            alloc[i, j] = label if math.isfinite(cost[i, j]) else 0


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
    r_in = np.asarray(resistance)
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


def _run(inp: _Inputs, want: int, cell_size_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost, allocation and back-links from the sources labelled ``want`` (0 = every label)."""
    res = inp.res
    cost = np.empty(res.shape, dtype=np.float64)
    alloc = np.zeros(res.shape, dtype=np.int32)
    back = np.full(res.shape, -1, dtype=np.int8)
    _init_outputs(res, inp.src, int(want), cost, alloc)
    k = inp.connectivity
    delta, drow, dcol, via_a, via_b = _offsets(k, res.shape[1])
    offsets = (
        delta,
        drow,
        dcol,
        _UNIT_LENGTH[:k] * float(cell_size_m) * 0.5,
        via_a,
        via_b,
        _HAS_VIA[:k],
        _OPPOSITE[:k].astype(np.int8),
        2 if k == 16 else 1,
        float(inp.cutoff),
    )
    inv_width, n_buckets = _plan_queue(inp.r_min, inp.r_max, cell_size_m, k, res.size)
    one = int(want) if want else (int(inp.labels[0]) if inp.labels.size == 1 else 0)  # the only label, or 0
    logger.debug("cost distance: %s queue (%d buckets)", "bucket" if n_buckets else "heap", n_buckets)
    if _search_grid(res, cost, alloc, back, offsets, inv_width, n_buckets, one > 0):  # only with a forced, too small ring
        logger.debug("cost distance: bucket ring overflow, rerunning with the heap")
        back.fill(-1)
        alloc.fill(0)
        _init_outputs(res, inp.src, int(want), cost, alloc)
        _search_grid(res, cost, alloc, back, offsets, 0.0, 0, one > 0)
    if one:
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
    """

    cost: np.ndarray
    allocation: np.ndarray
    backlink: np.ndarray
    connectivity: int
    cell_size_m: float


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
        return _run(inp, lab, float(cell_size_m))[0]

    if n_workers == 1:
        return {lab: one(lab) for lab in wanted}
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        costs = list(pool.map(one, wanted))
    return dict(zip(wanted, costs, strict=True))


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
    path = [(r, c)]
    for _ in range(back.size):
        b = int(back[r, c])
        if b == -1:
            return np.array(path[::-1], dtype=np.int64)
        if not 0 <= b < k:
            msg = f"backlink: expected -1..{k - 1} for connectivity {k}, found {b} at ({r}, {c})."
            raise DataError(msg)
        r += int(NEIGHBOUR_OFFSETS[b, 0])
        c += int(NEIGHBOUR_OFFSETS[b, 1])
        if not (0 <= r < nr and 0 <= c < nc):
            msg = f"backlink: expected links inside the raster, found one leaving it at ({r}, {c})."
            raise DataError(msg)
        path.append((r, c))
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
