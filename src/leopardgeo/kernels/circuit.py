r"""Circuit-theory current flow between patches (Circuitscape; McRae et al. 2008).

Each valid cell is a node joined to its 4 or 8 neighbours by a conductance; each
focal region (a patch) is short-circuited into one node.  Driving 1 A between
patches gives voltages, branch currents and the effective resistance
(McRae, Dickson, Keitt & Shah 2008, *Ecology* 89:2712-2724).

Conventions follow Circuitscape (``compute.py`` / ``Circuitscape.jl``):

* conductance of a cell :math:`c = 1/r`; between neighbours
  :math:`g_{uv} = (c_u + c_v)/2` (axial) and :math:`(c_u + c_v)/(2\sqrt2)`
  (diagonal), or with ``avg_resistances`` :math:`g_{uv} = 1/(\ell (r_u + r_v)/2)`
  with :math:`\ell` = 1 or √2;
* branch current :math:`I_{uv} = g_{uv}(v_u - v_v)`; current density of a node =
  half the sum of the absolute currents of its branches plus half the absolute
  current injected or taken out there (= the current passing through it); every
  cell of a short-circuited patch shows its patch node's value;
* modes ``pairwise`` (1 A from a to b for each pair), ``one_to_all`` (1 A into
  one patch, all others grounded) and ``all_to_one`` (1 A into every other
  patch, one grounded); cumulative current = the sum of the solves' maps.

Focal regions in pairwise mode
------------------------------
By default (``focal_shorting="pair"``) each pairwise solve short-circuits only
the pair's two patches, as Circuitscape does; the other patches' cells are
ordinary cells, so every pair has its own network and factor.  With
``focal_shorting="all"`` every patch is short-circuited in every solve (what
Circuitscape computes with the patches also given as short-circuit regions);
one-to-all and all-to-one always short-circuit every patch.  docs/circuit.md
shows where the two conventions differ.

How the solves are shared
-------------------------
With every patch of a network short-circuited, one patch per connected
component is the ground; the reduced Laplacian is then symmetric positive
definite and the same for every solve, so its factor (PARDISO, CHOLMOD or
SuperLU) or AMG preconditioner is built once (:func:`choose_solver`).  With
``m`` patches in a component, the ``m - 1`` unit-injection solutions
:math:`x_k` (1 A into patch k, out at the ground; one block solve with a
factor) give every mode by superposition: pairwise a-b is :math:`x_a - x_b`;
one-to-all and all-to-one solve an ``m``-by-``m`` system for the injections
(exact linear algebra, not an approximation).  When storing the :math:`x_k`
would not fit in memory, pairwise and all-to-one fall back to solving in blocks
with the same factor or preconditioner.  The current maps of all solves come
from one compiled pass over the grid (each branch visited once), on threads.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import cg, splu
from threadpoolctl import threadpool_limits

from leopardgeo.config import CircuitMode, CircuitSolver, FocalShorting
from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError, NoPathError
from leopardgeo.core.executor import available_cores
from leopardgeo.core.validation import check_resistance

__all__ = [
    "CircuitNetwork",
    "CircuitResult",
    "LaplacianSolver",
    "build_network",
    "choose_solver",
    "circuit_flow",
    "current_density",
    "direct_backend",
    "estimate_memory_bytes",
    "network_resistances",
    "solve_nodes",
]

logger = logging.getLogger(__name__)

#: All 8 neighbour offsets: 4 axial first, then 4 diagonal.
_OFFSETS = np.array([(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)], dtype=np.int64)
#: Unknowns up to which ``solver = "auto"`` always factorises (see :func:`choose_solver`).
DIRECT_ALWAYS_NODES = 100_000
#: Unknowns up to which ``auto`` uses SciPy's SuperLU: no thread start-up, faster than PARDISO / CHOLMOD this small.
SMALL_NODES = 20_000
#: Cells below which the current maps are computed on the calling thread (a pool costs more than it saves).
SERIAL_CELLS = 250_000
#: Unknowns up to which ``auto`` factorises when there are :data:`DIRECT_MIN_RHS` right-hand sides or more.
DIRECT_MAX_NODES = 1_500_000
#: Right-hand sides from which a factor pays off on a large grid (a factor costs about as much as 3-4 AMG solves).
DIRECT_MIN_RHS = 4
#: Right-hand sides handed to a factor at once when solves are not stored (memory: 16 bytes per node each).
DIRECT_BLOCK_RHS = 16
#: Levels larger than this are coarsened geometrically (see :class:`LaplacianSolver`).
GEOMETRIC_MIN_NODES = 100_000
#: Bytes per grid cell and per solve node of a circuit run, measured with
#: ``benchmarks/bench_circuit.py`` (peak RSS minus interpreter, with headroom).
BYTES_PER_CELL = 40
BYTES_PER_NODE = 260
#: Bytes per node of a direct solve besides the factor (matrix, its upper triangle, permutations).
BYTES_PER_NODE_MATRIX = 100
#: Bytes of factor per node and per doubling of the node count (fill ~ n log2 n; 1.6 GB peak at 690,002 nodes).
FACTOR_BYTES_PER_NODE_LOG2 = 100


# --------------------------------------------------------------------------- compiled kernels
@numba.njit(cache=True, nogil=True, inline="always")
def _g(ca, cb, ra, rb, diagonal, avg_res):  # pragma: no cover - compiled
    w = 0.7071067811865476 if diagonal else 1.0
    if avg_res:
        return w / (0.5 * (ra + rb))
    return w * 0.5 * (ca + cb)


@numba.njit(cache=True, nogil=True)
def _cell_rows(res, node, n_cell, n_solve, k, avg_res, extra):  # pragma: no cover - compiled
    """CSR rows of the cell nodes (ids < n_cell), columns sorted, diagonal included; ``extra`` spare entries at the end."""
    nr, nc = res.shape
    indptr = np.zeros(n_cell + 1, np.int64)
    buf = np.empty(9, np.int64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0 or a >= n_cell:
                continue
            m = 0
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                    continue
                b = node[rr, cc]
                if b < 0 or b >= n_solve:
                    continue
                dup = False
                for q in range(m):
                    if buf[q] == b:
                        dup = True
                if not dup:
                    buf[m] = b
                    m += 1
            indptr[a + 1] = m + 1
    for i in range(n_cell):
        indptr[i + 1] += indptr[i]
    nnz = indptr[n_cell]
    indices = np.empty(nnz + extra, np.int32)
    data = np.empty(nnz + extra, np.float64)
    vals = np.empty(9, np.float64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0 or a >= n_cell:
                continue
            ra = res[r, c]
            ca = 1.0 / ra
            buf[0] = a
            vals[0] = 0.0
            m = 1
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                    continue
                b = node[rr, cc]
                if b < 0:
                    continue
                rb = res[rr, cc]
                g = _g(ca, 1.0 / rb, ra, rb, o >= 4, avg_res)
                vals[0] += g
                if b >= n_solve:  # a ground node: diagonal only
                    continue
                q = 1
                while q < m and buf[q] != b:
                    q += 1
                if q < m:
                    vals[q] -= g
                else:
                    buf[m] = b
                    vals[m] = -g
                    m += 1
            # insertion sort by column
            for i in range(1, m):
                bi = buf[i]
                vi = vals[i]
                j = i - 1
                while j >= 0 and buf[j] > bi:
                    buf[j + 1] = buf[j]
                    vals[j + 1] = vals[j]
                    j -= 1
                buf[j + 1] = bi
                vals[j + 1] = vi
            p = indptr[a]
            for i in range(m):
                indices[p + i] = buf[i]
                data[p + i] = vals[i]
    return indptr, indices, data


@numba.njit(cache=True, nogil=True)
def _region_entries(res, node, n_cell, n_solve, k, avg_res):  # pragma: no cover - compiled
    """Branches leaving region nodes: (row, col, g) triples (col may repeat) and each region's diagonal."""
    nr, nc = res.shape
    n_reg = n_solve - n_cell
    cnt = 0
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < n_cell or a >= n_solve:
                continue
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if 0 <= rr < nr and 0 <= cc < nc:
                    b = node[rr, cc]
                    if 0 <= b < n_solve and b != a:
                        cnt += 1
    rows = np.empty(cnt, np.int64)
    cols = np.empty(cnt, np.int64)
    gs = np.empty(cnt, np.float64)
    diag = np.zeros(n_reg, np.float64)
    p = 0
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < n_cell or a >= n_solve:
                continue
            ra = res[r, c]
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0 or b == a:
                    continue
                rb = res[rr, cc]
                g = _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res)
                diag[a - n_cell] += g
                if b < n_solve:
                    rows[p] = a - n_cell
                    cols[p] = b
                    gs[p] = g
                    p += 1
    return rows, cols, gs, diag


@numba.njit(cache=True, nogil=True)
def _branch_sums(res, node, volts, n_total, k, avg_res):  # pragma: no cover - compiled
    """Sum of |branch current| at every node (each branch counted at both its ends)."""
    nr, nc = res.shape
    acc = np.zeros(n_total, np.float64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0:
                continue
            ra = res[r, c]
            va = volts[a]
            s = 0.0
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0 or b == a:
                    continue
                rb = res[rr, cc]
                s += _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res) * abs(va - volts[b])
            acc[a] += s
    return acc


@numba.njit(cache=True, nogil=True)
def _solve_currents(res, node, x, w_ptr, w_idx, w_val, k, avg_res, r0, r1):  # pragma: no cover - compiled
    """Sum over solves of the |branch currents| at each cell of rows ``r0:r1``, voltages combining columns of ``x``.

    Solve ``p`` has voltages ``sum_q w_val[q] * x[:, w_idx[q]]`` for ``q`` in
    ``w_ptr[p]:w_ptr[p + 1]``; one pass over the rows serves every solve.
    Returns the ``r1 - r0`` rows (each cell writes only its own entry).
    """
    nr, nc = res.shape
    m = x.shape[1]
    n_solves = len(w_ptr) - 1
    out = np.zeros((r1 - r0, nc), np.float64)
    d = np.empty(m, np.float64)
    for r in range(r0, r1):
        for c in range(nc):
            a = node[r, c]
            if a < 0:
                continue
            ra = res[r, c]
            s = 0.0
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0 or b == a:
                    continue
                rb = res[rr, cc]
                g = _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res)
                for j in range(m):
                    d[j] = x[a, j] - x[b, j]
                t_sum = 0.0
                for p in range(n_solves):
                    t = 0.0
                    for q in range(w_ptr[p], w_ptr[p + 1]):
                        t += w_val[q] * d[w_idx[q]]
                    t_sum += abs(t)
                s += g * t_sum
            out[r - r0, c] = s
    return out


@numba.njit(cache=True, nogil=True)
def _max_currents(res, node, x, w_ptr, w_idx, w_val, k, avg_res, n_cell, r0, r1):  # pragma: no cover - compiled
    """Largest current over the solves at each plain cell of rows ``r0:r1``; per-solve branch sums of the regions.

    Returns the rows' maxima (half the sum of |branch currents|: no current is
    injected at a plain cell) and the region nodes' per-solve sums of |branch
    currents| (``n_total - n_cell`` by solves) from their cells in those rows.
    """
    nr, nc = res.shape
    m = x.shape[1]
    n_solves = len(w_ptr) - 1
    n_reg = x.shape[0] - n_cell
    cell_max = np.zeros((r1 - r0, nc), np.float64)
    reg = np.zeros((n_reg, n_solves), np.float64)
    d = np.empty(m, np.float64)
    acc = np.empty(n_solves, np.float64)
    for r in range(r0, r1):
        for c in range(nc):
            a = node[r, c]
            if a < 0:
                continue
            ra = res[r, c]
            acc[:] = 0.0
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0 or b == a:
                    continue
                rb = res[rr, cc]
                g = _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res)
                for j in range(m):
                    d[j] = x[a, j] - x[b, j]
                for p in range(n_solves):
                    t = 0.0
                    for q in range(w_ptr[p], w_ptr[p + 1]):
                        t += w_val[q] * d[w_idx[q]]
                    acc[p] += g * abs(t)
            if a < n_cell:
                best = 0.0
                for p in range(n_solves):
                    if acc[p] > best:
                        best = acc[p]
                cell_max[r - r0, c] = 0.5 * best
            else:
                for p in range(n_solves):
                    reg[a - n_cell, p] += acc[p]
    return cell_max, reg


#: Offsets of the "forward" neighbours (each undirected branch once): right, down, down-right, down-left.
_FORWARD = np.array([1, 2, 5, 6], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _pair_currents(res, node, x, ia, ib, k, avg_res, r0, r1):  # pragma: no cover - compiled
    """Sum over solves of the |branch currents| at each cell, from the branches leaving rows ``r0:r1`` forwards.

    Solve ``p`` has voltages ``x[:, ia[p]] - x[:, ib[p]]``; a column index
    equal to ``x.shape[1]`` stands for zero volts (a ground).  Each branch is
    visited once (right, down, down-right, down-left) and counted at both its
    cells, so the block returned holds rows ``r0 : r1 + 1`` (the last one shared
    with the next block; the caller adds the blocks up).
    """
    nr, nc = res.shape
    m = x.shape[1]
    n_solves = len(ia)
    n_fwd = 2 if k == 4 else 4
    out = np.zeros((r1 - r0 + 1, nc), np.float64)
    d = np.zeros(m + 1, np.float64)
    for r in range(r0, r1):
        for c in range(nc):
            a = node[r, c]
            if a < 0:
                continue
            ra = res[r, c]
            for f in range(n_fwd):
                o = _FORWARD[f]
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0 or b == a:
                    continue
                rb = res[rr, cc]
                g = _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res)
                for j in range(m):
                    d[j] = x[a, j] - x[b, j]
                t = 0.0
                for p in range(n_solves):
                    t += abs(d[ia[p]] - d[ib[p]])
                t *= g
                out[r - r0, c] += t
                out[rr - r0, cc] += t
    return out


@numba.njit(cache=True, nogil=True)
def _paint(node, node_current, out, weight):  # pragma: no cover - compiled
    nr, nc = node.shape
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a >= 0:
                out[r, c] += weight * node_current[a]


@numba.njit(cache=True, nogil=True)
def _fix_orphans(indptr, indices, is_c):  # pragma: no cover - compiled
    """Make every F node without a C neighbour a C node (it could not be interpolated)."""
    for i in range(len(is_c)):
        if not is_c[i]:
            has = False
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j != i and is_c[j]:
                    has = True
                    break
            if not has:
                is_c[i] = True


@numba.njit(cache=True, nogil=True)
def _direct_interpolation(indptr, indices, data, is_c):  # pragma: no cover - compiled
    """Classical direct interpolation (Ruge & Stüben 1987; Stüben 2001 eq. A.4.9) from every C neighbour."""
    n = len(is_c)
    cidx = np.full(n, -1, np.int64)
    nc = 0
    for i in range(n):
        if is_c[i]:
            cidx[i] = nc
            nc += 1
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        if is_c[i]:
            ptr[i + 1] = 1
        else:
            m = 0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j != i and is_c[j]:
                    m += 1
            ptr[i + 1] = m
    for i in range(n):
        ptr[i + 1] += ptr[i]
    pidx = np.empty(ptr[n], np.int32)
    pval = np.empty(ptr[n], np.float64)
    for i in range(n):
        q = ptr[i]
        if is_c[i]:
            pidx[q] = cidx[i]
            pval[q] = 1.0
            continue
        aii = 0.0
        s_all = 0.0
        s_c = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j == i:
                aii = data[p]
            else:
                s_all += data[p]
                if is_c[j]:
                    s_c += data[p]
        alpha = s_all / s_c
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and is_c[j]:
                pidx[q] = cidx[j]
                pval[q] = -alpha * data[p] / aii
                q += 1
    return ptr, pidx, pval, nc


@numba.njit(cache=True, nogil=True)
def _galerkin(a_ptr, a_idx, a_val, p_ptr, p_idx, p_val, r_ptr, r_idx, r_val, nc):  # pragma: no cover - compiled
    """Coarse operator R A P row by row (Gustavson), without the n-by-nc intermediate A P; columns sorted."""
    marker = np.full(nc, -1, np.int64)
    acc = np.zeros(nc, np.float64)
    cap = 10 * nc + 16
    out_idx = np.empty(cap, np.int32)
    out_val = np.empty(cap, np.float64)
    out_ptr = np.zeros(nc + 1, np.int64)
    cols = np.empty(nc, np.int64)
    nnz = 0
    for ci in range(nc):
        m = 0
        for q in range(r_ptr[ci], r_ptr[ci + 1]):
            k = r_idx[q]
            rk = r_val[q]
            for pa in range(a_ptr[k], a_ptr[k + 1]):
                l_ = a_idx[pa]
                w = rk * a_val[pa]
                for pp in range(p_ptr[l_], p_ptr[l_ + 1]):
                    cj = p_idx[pp]
                    if marker[cj] != ci:
                        marker[cj] = ci
                        acc[cj] = 0.0
                        cols[m] = cj
                        m += 1
                    acc[cj] += w * p_val[pp]
        if nnz + m > cap:
            cap = max(2 * cap, nnz + m)
            ni = np.empty(cap, np.int32)
            nv = np.empty(cap, np.float64)
            ni[:nnz] = out_idx[:nnz]
            nv[:nnz] = out_val[:nnz]
            out_idx = ni
            out_val = nv
        srt = np.sort(cols[:m])
        for t in range(m):
            out_idx[nnz + t] = srt[t]
            out_val[nnz + t] = acc[srt[t]]
        nnz += m
        out_ptr[ci + 1] = nnz
    return out_ptr, out_idx[:nnz].copy(), out_val[:nnz].copy()


# --------------------------------------------------------------------------- the network
@dataclass(frozen=True)
class CircuitNetwork:
    """The conductance graph of a resistance grid with focal patches short-circuited.

    Attributes
    ----------
    node
        int32 raster: node id of each cell; -1 for no data and for cells in a
        connected component holding fewer than two focal patches.
    laplacian
        Reduced Laplacian (scipy CSR, float64) over the ``n_solve`` non-ground
        nodes: cell nodes first (raster order), then non-ground patch nodes.
    focal_ids
        Patch ids, sorted.
    focal_node
        Node id of each patch (same order); ``-1`` when the patch is alone in
        its component (not solved).  Ground patches have ids ``>= n_solve``.
    component
        Component number of each patch (same order), ``-1`` when not solved.
    n_cell, n_solve, n_total
        Number of cell nodes, of unknowns and of nodes including grounds.
    connectivity, avg_resistances
        Graph options used.
    """

    node: np.ndarray
    laplacian: sp.csr_matrix
    focal_ids: np.ndarray
    focal_node: np.ndarray
    component: np.ndarray
    n_cell: int
    n_solve: int
    n_total: int
    connectivity: int
    avg_resistances: bool
    resistance: np.ndarray = field(repr=False)

    def node_of(self, patch_id: int) -> int:
        """Node id of a patch (-1 when it is not solved)."""
        i = int(np.searchsorted(self.focal_ids, patch_id))
        if i >= len(self.focal_ids) or self.focal_ids[i] != patch_id:
            msg = f"patch {patch_id}: expected one of the focal patches {self.focal_ids.tolist()[:20]}, found none."
            raise DataError(msg)
        return int(self.focal_node[i])

    def connected(self, a: int, b: int) -> bool:
        """Whether two patches lie in the same connected component."""
        ia, ib = np.searchsorted(self.focal_ids, [a, b])
        return bool(self.component[ia] >= 0 and self.component[ia] == self.component[ib])


def solve_nodes(net: CircuitNetwork) -> np.ndarray:
    """Raster of unknown ids of the cell nodes (-1 elsewhere, incl. patches), for geometric coarsening."""
    return np.where(net.node < net.n_cell, net.node, np.int32(-1))


def _check_inputs(resistance: np.ndarray, focal: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    res = np.asarray(resistance)
    lab = np.asarray(focal)
    if res.ndim != 2 or lab.shape != res.shape:
        msg = f"focal patches: expected a raster of the resistance's shape {res.shape}, found {lab.shape}."
        raise DataError(msg)
    if not np.issubdtype(lab.dtype, np.integer):
        msg = f"focal patches: expected an integer raster of patch ids (0 = none), found dtype {lab.dtype}."
        raise DataError(msg)
    if connectivity not in (4, 8):
        msg = f"connectivity: expected 4 or 8 neighbours (Circuitscape's options), found {connectivity!r}."
        raise ConfigError(msg)
    res = np.ascontiguousarray(res, dtype=np.float32 if res.dtype == np.float32 else np.float64)
    check_resistance(res)  # ResistanceError naming the count, range and first cells
    return res, np.ascontiguousarray(lab, dtype=np.int32 if lab.dtype.itemsize < 4 or lab.dtype == np.int32 else np.int64)


def build_network(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
) -> CircuitNetwork:
    """Build the reduced conductance Laplacian with every focal patch short-circuited.

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data, not part of the circuit).
    focal
        Integer raster of patch ids (0 = none); each id's cells form one node.
    connectivity
        4 or 8 neighbours.
    avg_resistances
        Circuitscape's ``connect_using_avg_resistances``.

    Returns
    -------
    CircuitNetwork

    Raises
    ------
    DataError
        Shape or dtype mismatch, or fewer than two patches.
    NoPathError
        If a patch lies wholly on no data.
    ResistanceError
        If resistance is <= 0 or infinite.

    Examples
    --------
    Three cells in a row, a patch at each end: two 1-ohm... resistances in series.

    >>> r = np.array([[1.0, 1.0, 1.0]])
    >>> net = build_network(r, np.array([[1, 0, 2]]), connectivity=4)
    >>> net.laplacian.toarray()   # middle cell, then patch 1 (patch 2 is the ground)
    array([[ 2., -1.],
           [-1.,  1.]])
    """
    res, lab = _check_inputs(resistance, focal, connectivity)
    valid = ~np.isnan(res)
    ids = np.unique(lab[lab > 0])
    if len(ids) < 2:
        msg = f"focal patches: expected at least two patch ids, found {ids.tolist()}."
        raise DataError(msg)
    on_data = np.unique(lab[(lab > 0) & valid])
    off = np.setdiff1d(ids, on_data)
    if len(off):
        msg = f"patch {int(off[0])}: expected cells with data, found all of its cells on no data. Fix the resistance raster."
        raise NoPathError(msg)
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    comp, n_comp = ndimage.label(valid, structure=structure)
    # patches join the components they touch (a short circuit): union-find over component labels
    parent = np.arange(n_comp + 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    first_comp = {}
    for pid in ids:
        cs = np.unique(comp[(lab == pid) & valid])
        root = find(int(cs[0]))
        for c in cs[1:]:
            rc = find(int(c))
            if rc != root:
                parent[rc] = root
        first_comp[int(pid)] = root
    roots = np.array([find(i) for i in range(n_comp + 1)])
    patch_root = np.array([roots[first_comp[int(p)]] for p in ids])
    counts = pd.Series(patch_root).value_counts()
    solved_roots = np.sort(counts.index[counts >= 2].to_numpy())
    keep_comp = np.isin(roots, solved_roots)
    keep_comp[0] = False
    in_circuit = keep_comp[comp] & valid
    solved = np.isin(patch_root, solved_roots)
    # numbering: cell nodes (raster order), non-ground patches, grounds (first patch of each component)
    is_patch = (lab > 0) & in_circuit
    plain = in_circuit & ~is_patch
    n_cell = int(plain.sum())
    node = np.full(res.shape, -1, dtype=np.int32)
    node[plain] = np.arange(n_cell, dtype=np.int32)
    focal_node = np.full(len(ids), -1, dtype=np.int64)
    component = np.full(len(ids), -1, dtype=np.int64)
    comp_index = {int(r): i for i, r in enumerate(solved_roots)}
    ground_of: dict[int, int] = {}
    order = []
    for i in range(len(ids)):
        if not solved[i]:
            continue
        ci = comp_index[int(patch_root[i])]
        component[i] = ci
        if ci not in ground_of:
            ground_of[ci] = i
        else:
            order.append(i)
    nxt = n_cell
    for i in order:
        focal_node[i] = nxt
        nxt += 1
    n_solve = nxt
    for ci in sorted(ground_of):
        focal_node[ground_of[ci]] = nxt
        nxt += 1
    n_total = nxt
    node[is_patch] = focal_node[np.searchsorted(ids, lab[is_patch])].astype(np.int32)
    k = connectivity
    rows, cols, gs, rdiag = _region_entries(res, node, n_cell, n_solve, k, avg_resistances)
    n_reg = n_solve - n_cell
    reg = sp.coo_matrix((-gs, (rows, cols)), shape=(n_reg, n_solve)).tocsr()
    reg = (reg + sp.csr_matrix((rdiag, (np.arange(n_reg), np.arange(n_cell, n_solve))), shape=(n_reg, n_solve))).tocsr()
    reg.sort_indices()
    # the region rows go into spare room at the end of the cell rows' arrays (no copy of the big arrays)
    indptr, all_indices, all_data = _cell_rows(res, node, n_cell, n_solve, k, avg_resistances, reg.nnz)
    n_cell_nnz = int(indptr[-1])
    all_indices[n_cell_nnz:] = reg.indices
    all_data[n_cell_nnz:] = reg.data
    all_indptr = np.concatenate([indptr, reg.indptr[1:].astype(np.int64) + n_cell_nnz])
    nnz = int(all_indptr[-1])
    if nnz >= 2**31 - 1:  # pragma: no cover - beyond ~200 M cells
        msg = f"circuit: expected fewer than 2**31 matrix entries, found {nnz:,}. Use coarser cells or clip the grid."
        raise MemoryLimitError(msg)
    all_indptr = all_indptr.astype(np.int32)
    lap = sp.csr_matrix((all_data, all_indices, all_indptr), shape=(n_solve, n_solve))
    lap.has_sorted_indices = True
    logger.debug("circuit network: %d cell nodes, %d patch nodes, %d grounds, %d non-zeros", n_cell, n_reg, len(ground_of), nnz)
    return CircuitNetwork(
        node=node,
        laplacian=lap,
        focal_ids=ids.astype(np.int64),
        focal_node=focal_node,
        component=component,
        n_cell=n_cell,
        n_solve=n_solve,
        n_total=n_total,
        connectivity=connectivity,
        avg_resistances=bool(avg_resistances),
        resistance=res,
    )


# --------------------------------------------------------------------------- solver
def _pardiso() -> object | None:
    """The ``pypardiso`` module (MKL PARDISO), or None when it is not installed or MKL cannot be loaded."""
    try:
        import pypardiso  # type: ignore[import-not-found]
    except (ImportError, OSError):
        return None
    return pypardiso


def _cholespy() -> object | None:
    """The ``cholespy`` module (CHOLMOD in a self-contained wheel), or None."""
    try:
        import cholespy  # type: ignore[import-not-found]
    except ImportError:
        return None
    return cholespy


def direct_backend() -> str:
    """The direct solver ``auto`` uses on this machine: ``pardiso``, ``cholmod`` or ``superlu``.

    MKL PARDISO (the ``pypardiso`` wheel) factors the demo's 690,002-unknown
    Laplacian in 2.0 s on 2 cores, CHOLMOD (``cholespy``) in 5.1 s, SciPy's
    SuperLU in 5.8 s (docs/performance.md); the first one installed wins.

    Examples
    --------
    >>> direct_backend() in ("pardiso", "cholmod", "superlu")
    True
    """
    if _pardiso() is not None:
        return "pardiso"
    if _cholespy() is not None:
        return "cholmod"
    return "superlu"


def choose_solver(n_unknowns: int, n_rhs: int, method: CircuitSolver | str = "auto") -> str:
    """The solver used for ``n_rhs`` right-hand sides on ``n_unknowns`` unknowns.

    ``auto`` factorises (:func:`direct_backend`) up to :data:`DIRECT_ALWAYS_NODES`
    unknowns, and up to :data:`DIRECT_MAX_NODES` when there are at least
    :data:`DIRECT_MIN_RHS` right-hand sides (the factor's cost is then shared);
    above, or for one or two solves on a large grid, AMG-preconditioned conjugate
    gradients is faster and needs far less memory (the factor's fill grows as
    ``n log n``: 5 GB at 3.6 M unknowns).  Up to :data:`SMALL_NODES` unknowns
    SciPy's SuperLU is used (no thread start-up); without PARDISO or CHOLMOD,
    SuperLU is used up to :data:`DIRECT_ALWAYS_NODES`.

    Examples
    --------
    >>> choose_solver(690_002, 15) in ("pardiso", "cholmod")  # the demo, with a direct backend installed
    True
    >>> choose_solver(3_600_000, 1)
    'amg'
    >>> choose_solver(5_000, 1)
    'superlu'
    """
    method = CircuitSolver(method)
    if method is not CircuitSolver.AUTO:
        return str(method)
    if n_unknowns <= SMALL_NODES:
        return "superlu"
    backend = direct_backend()
    if n_unknowns <= DIRECT_ALWAYS_NODES:
        return backend
    if backend != "superlu" and n_unknowns <= DIRECT_MAX_NODES and n_rhs >= DIRECT_MIN_RHS:
        return backend
    return "amg"


class LaplacianSolver:
    """Solve ``L x = b`` repeatedly for one reduced Laplacian, reusing its factor or preconditioner.

    Parameters
    ----------
    laplacian
        Symmetric positive definite CSR matrix (a grounded Laplacian).
    method
        ``"auto"`` (see :func:`choose_solver`), ``"amg"``, ``"pardiso"``,
        ``"cholmod"`` or ``"superlu"``.
    tolerance
        Relative residual at which conjugate gradients stop (AMG only).
    node_raster
        Optional raster of unknown ids per cell (-1 none), e.g. from
        :func:`solve_nodes`; enables geometric coarsening of the large levels.
    n_rhs
        How many right-hand sides are expected (guides ``auto``).

    Notes
    -----
    Direct solvers: MKL PARDISO (``pypardiso``; real symmetric positive
    definite, upper triangle, METIS nested dissection), CHOLMOD (``cholespy``;
    supernodal Cholesky) or SciPy's SuperLU.  All right-hand sides go to the
    factor in one block (:meth:`solve_many`).

    AMG is a classical (Ruge-Stüben) hierarchy used as the preconditioner of
    conjugate gradients, with forward Gauss-Seidel before and backward after
    (a symmetric V-cycle).  Classical AMG suits graph Laplacians (M-matrices)
    with high-contrast conductances: on the benchmark grids it needs about half
    the iterations of smoothed aggregation.  The finest level, which holds
    three quarters of the work, is coarsened geometrically (every other row
    and column, plus patches and any node without a coarse neighbour) with
    classical direct interpolation, compiled here because pyamg's generic
    strength / splitting / interpolation passes take most of its setup time on
    grids this size; the coarser levels are pyamg's ``ruge_stuben_solver``.

    Examples
    --------
    >>> L = sp.csr_matrix(np.array([[2.0, -1.0], [-1.0, 1.0]]))
    >>> LaplacianSolver(L).solve(np.array([0.0, 1.0]))
    array([1., 2.])
    >>> LaplacianSolver(L, "amg").solve_many(np.eye(2)).round(6)
    array([[1., 1.],
           [1., 2.]])
    """

    def __init__(
        self,
        laplacian: sp.csr_matrix,
        method: CircuitSolver | str = "auto",
        tolerance: float = 1e-8,
        node_raster: np.ndarray | None = None,
        n_rhs: int = 1,
    ) -> None:
        n = laplacian.shape[0]
        self.matrix = laplacian
        self.tolerance = float(tolerance)
        self.iterations: list[int] = []
        self.method = choose_solver(n, n_rhs, method)
        t = time.perf_counter()
        if self.method == "pardiso":
            mod = _pardiso()
            if mod is None:
                msg = (
                    "solver = 'pardiso': expected pypardiso (MKL) to be installed, found it missing. "
                    "pip install pypardiso, or use 'auto'."
                )
                raise ConfigError(msg)
            self._upper = sp.triu(laplacian, format="csr")
            self._upper.sort_indices()
            self._factor = mod.PyPardisoSolver(mtype=2)  # real symmetric positive definite
            self._factor.set_statistical_info_off()
            self._factor.factorize(self._upper)
        elif self.method == "cholmod":
            mod = _cholespy()
            if mod is None:
                msg = (
                    "solver = 'cholmod': expected cholespy to be installed, found it missing. "
                    "pip install cholespy, or use 'auto'."
                )
                raise ConfigError(msg)
            csr = laplacian.tocsr()
            self._factor = mod.CholeskySolverD(
                n,
                csr.indptr.astype(np.int32),
                csr.indices.astype(np.int32),
                np.ascontiguousarray(csr.data, dtype=np.float64),
                mod.MatrixType.CSR,
            )
        elif self.method == "superlu":
            self._factor = splu(laplacian.tocsc(), permc_spec="MMD_AT_PLUS_A")
        else:
            self._ml = _grid_amg(laplacian, node_raster)
            self._precond = self._ml.aspreconditioner(cycle="V")
        self.setup_s = time.perf_counter() - t

    @property
    def direct(self) -> bool:
        """Whether the solver holds a factor (no iterations)."""
        return self.method != "amg"

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Solution of ``L x = b`` (float64) for one right-hand side."""
        if self.direct:
            return self.solve_many(np.asarray(b, dtype=np.float64).reshape(-1, 1))[:, 0]
        count = [0]

        def cb(_: np.ndarray) -> None:
            count[0] += 1

        x, info = cg(self.matrix, b, rtol=self.tolerance, atol=0.0, M=self._precond, callback=cb, maxiter=1000)
        self.iterations.append(count[0])
        if info != 0:  # pragma: no cover - a symmetric positive definite system converges
            logger.warning("conjugate gradients stopped after %d iterations above tolerance %g", count[0], self.tolerance)
        return x

    def solve_many(self, b: np.ndarray, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
        """Solutions of ``L X = B`` for the columns of ``B`` (n-by-k, float64).

        Direct solvers take the whole block at once; AMG solves the columns one by
        one, on ``pool``'s threads when given.
        """
        b = np.asarray(b, dtype=np.float64)
        k = b.shape[1]
        if k == 0:
            return np.zeros_like(b)
        if self.method == "pardiso":
            x = np.asarray(self._factor.solve(self._upper, np.ascontiguousarray(b)))
            x = x.reshape(b.shape)
        elif self.method == "cholmod":
            bc = np.ascontiguousarray(b)
            x = np.empty_like(bc)
            self._factor.solve(bc, x)
        elif self.method == "superlu":
            x = self._factor.solve(np.asfortranarray(b))
        else:
            cols = (b[:, j] for j in range(k))
            if pool is None:
                return np.column_stack(list(map(self.solve, cols)))
            # one CG per thread: numpy's BLAS threads (dot products) would take the other threads' cores
            with threadpool_limits(limits=1, user_api="blas"):
                return np.column_stack(list(pool.map(self.solve, cols)))
        self.iterations.extend([0] * k)
        return x

    def close(self) -> None:
        """Release the factor's memory (PARDISO keeps it outside Python)."""
        if self.method == "pardiso":
            self._factor.free_memory(everything=True)
        self._factor = None


def _grid_amg(laplacian: sp.csr_matrix, node_raster: np.ndarray | None) -> object:
    """Pyamg MultilevelSolver: geometric levels with direct interpolation on the grid, Ruge-Stüben below.

    ``node_raster`` holds the unknown's id per cell (-1 none); every level keeps
    the cells on even rows and columns, plus every node not on the lattice
    (patches, and nodes left without a coarse neighbour).
    """
    import pyamg
    from pyamg.multilevel import MultilevelSolver
    from pyamg.relaxation.smoothing import change_smoothers

    smoothers = {"presmoother": ("gauss_seidel", {"sweep": "forward"}), "postsmoother": ("gauss_seidel", {"sweep": "backward"})}
    levels = []
    A = laplacian
    nodes = node_raster
    while nodes is not None and A.shape[0] > GEOMETRIC_MIN_NODES:
        n = A.shape[0]
        is_c = np.ones(n, dtype=bool)
        is_c[nodes[nodes >= 0]] = False  # lattice cells first become F ...
        sub = nodes[::2, ::2]
        is_c[sub[sub >= 0]] = True  # ... except the even rows and columns
        _fix_orphans(A.indptr, A.indices, is_c)
        ptr, pidx, pval, nc = _direct_interpolation(A.indptr, A.indices, A.data, is_c)
        if nc > 0.6 * n:  # coarsening stalls (a very fragmented grid): let Ruge-Stüben take over
            break
        P = sp.csr_matrix((pval, pidx, ptr.astype(np.int32)), shape=(n, nc))
        R = P.T.tocsr()
        cptr, cidx, cval = _galerkin(A.indptr, A.indices, A.data, P.indptr, P.indices, P.data, R.indptr, R.indices, R.data, nc)
        del R  # the cycle restricts with P.T (a CSC view of P, no copy)
        level = MultilevelSolver.Level()
        level.A, level.P, level.R = A, P, P.T
        levels.append(level)
        A = sp.csr_matrix((cval, cidx, cptr.astype(np.int32)), shape=(nc, nc))
        A.has_sorted_indices = True
        coarse_id = np.cumsum(is_c) - 1
        nodes = np.where(sub >= 0, coarse_id[np.maximum(sub, 0)], -1)
    rest = pyamg.ruge_stuben_solver(A, max_coarse=500, **smoothers)
    if not levels:
        return rest
    ml = MultilevelSolver([*levels, *rest.levels], coarse_solver="pinv")
    change_smoothers(ml, **smoothers)
    return ml

# --------------------------------------------------------------------------- currents
def current_density(net: CircuitNetwork, volts: np.ndarray, injected: np.ndarray | None = None) -> np.ndarray:
    """Circuitscape's current map: current through each node, painted on its cells.

    Parameters
    ----------
    net
        The network.
    volts
        Voltage of every node (length ``n_total``, grounds included).
    injected
        Current injected (+) or taken out (-) at each node, length ``n_total``.

    Returns
    -------
    numpy.ndarray
        float64 raster, amperes; NaN where the cell is not in the circuit.

    Examples
    --------
    >>> net = build_network(np.ones((1, 3)), np.array([[1, 0, 2]]), connectivity=4)
    >>> v = np.array([1.0, 2.0, 0.0])          # middle, patch 1, patch 2 (ground)
    >>> current_density(net, v, np.array([0.0, 1.0, -1.0]))
    array([[1., 1., 1.]])
    """
    acc = _branch_sums(
        net.resistance,
        net.node,
        np.ascontiguousarray(volts, dtype=np.float64),
        net.n_total,
        net.connectivity,
        net.avg_resistances,
    )
    if injected is not None:
        acc += np.abs(injected)
    acc *= 0.5
    out = np.zeros(net.node.shape, dtype=np.float64)
    _paint(net.node, acc, out, 1.0)
    out[net.node < 0] = np.nan
    return out


# --------------------------------------------------------------------------- memory
def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def estimate_memory_bytes(n_cells: int, n_nodes: int, n_stored: int = 0, method: str = "amg") -> int:
    """Rough peak memory of a circuit run (bytes): grid rasters, matrix, AMG hierarchy or factor, stored solutions.

    The factor of a direct solver grows as ``n log n`` on a grid (nested
    dissection): 1.6 GB peak for the demo's 690,002 unknowns with PARDISO,
    measured with ``benchmarks/bench_circuit.py --demo``.  A direct solver holds
    the right-hand sides and the solutions of a block together (16 bytes per
    stored value and node instead of 8).

    Examples
    --------
    >>> round(estimate_memory_bytes(4_000_000, 3_600_000) / 1e9, 2)
    1.1
    >>> round(estimate_memory_bytes(2_195_000, 690_002, 15, "pardiso") / 1e9, 2)  # the demo: 1.50 GB measured
    1.66
    """
    base = n_cells * BYTES_PER_CELL
    if method == "amg":
        return int(base + n_nodes * BYTES_PER_NODE + n_stored * n_nodes * 8)
    fill = FACTOR_BYTES_PER_NODE_LOG2 * math.log2(max(n_nodes, 2))
    return int(base + n_nodes * (BYTES_PER_NODE_MATRIX + fill) + n_stored * n_nodes * 16)


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def _check_memory(n_cells: int, n_nodes: int, n_stored: int, limit_gb: float | None, method: str = "amg") -> None:
    need = estimate_memory_bytes(n_cells, n_nodes, n_stored, method)
    have = int(limit_gb * 1e9) if limit_gb is not None else _available_bytes()
    if need > have:
        what = "the limit max_memory_gb" if limit_gb is not None else "available memory"
        msg = (
            f"circuit: expected to need about {_fmt_bytes(need)} for {n_nodes:,} nodes ({method}), found {_fmt_bytes(have)} "
            f"({what}). Use coarser cells ([grid] cell_size_m), clip to corridors, fewer patches or pairs "
            "([circuit] include_pairs), or a machine with more memory."
        )
        raise MemoryLimitError(msg)


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class CircuitResult:
    """Outputs of :func:`circuit_flow`.

    Attributes
    ----------
    mode
        ``pairwise``, ``one_to_all`` or ``all_to_one``.
    resistances
        pairwise: one row per requested pair (``patch_a``, ``patch_b``,
        ``eff_resistance`` in ohms; ``inf`` when not connected, written as
        ``-1`` in ``circuit.csv`` as Circuitscape does).  one_to_all /
        all_to_one: one row per patch (``patch``, ``voltage``: the source's
        voltage for one_to_all, the mean source voltage for all_to_one).
    cum_current
        Sum of the solves' current maps (float32, A; NaN outside the circuit).
    voltages
        ``{key: voltage raster}`` (float32, V) when asked for; key = pair or patch.
    currents
        ``{key: current raster}`` (float32, A), one per solve, when asked for.
    solver
        ``amg``, ``pardiso``, ``cholmod`` or ``superlu``.
    iterations
        CG iterations per solve (0 for direct solvers).
    timings_s
        Seconds per phase: network, setup, solves, maps.
    focal_shorting
        ``pair`` (only the pair's two patches short-circuited in each solve) or
        ``all`` (every patch short-circuited in every solve).
    max_current
        Largest current over the solves at each cell (float32, A; Circuitscape's
        max-current map) when asked for, else None.
    """

    mode: str
    resistances: pd.DataFrame
    cum_current: np.ndarray
    voltages: dict = field(default_factory=dict)
    solver: str = ""
    iterations: list = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)
    currents: dict = field(default_factory=dict)
    focal_shorting: str = "all"
    max_current: np.ndarray | None = None


def _workers(workers: int | None) -> int:
    if workers is None:
        return max(1, available_cores())
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    return int(workers)


def _requested_pairs(
    ids: np.ndarray, pairs: Iterable[Sequence[int]] | None, exclude: Iterable[Sequence[int]]
) -> list[tuple[int, int]]:
    known = {int(i) for i in ids}
    if pairs is None:
        out = [(int(a), int(b)) for a, b in combinations(ids, 2)]
    else:
        out = []
        for p in pairs:
            a, b = sorted(int(v) for v in p)
            for v in (a, b):
                if v not in known:
                    msg = f"pair ({a}, {b}): expected patch ids among {sorted(known)[:20]}, found {v}."
                    raise DataError(msg)
            if a != b:
                out.append((a, b))
    drop = {tuple(sorted(int(v) for v in p)) for p in exclude}
    return list(dict.fromkeys(p for p in out if p not in drop))


def _voltage_raster(net: CircuitNetwork, v: np.ndarray) -> np.ndarray:
    vm = v[net.node].astype(np.float32)
    vm[net.node < 0] = np.nan
    return vm


@dataclass
class _Solve:
    """One solve of a run: its key, the columns it combines, the injected currents and a voltage shift."""

    key: object
    weights: dict[int, float]  # column -> weight (superposition) or {own column: 1.0}
    injected: dict[int, float]  # node -> amperes in (+) or out (-)
    shift: float = 0.0


def _row_blocks(kernel: Callable, args: tuple, shape: tuple[int, int], workers: int, overlap: int) -> np.ndarray:
    """Run a compiled row kernel over blocks of rows on ``workers`` threads (nogil) and add the blocks up."""
    nr, nc = shape
    if nr * nc < SERIAL_CELLS:
        workers = 1
    n_blocks = max(1, min(nr, 4 * workers))
    edges = np.linspace(0, nr, n_blocks + 1).astype(int)
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
    out = np.zeros((nr + overlap, nc))
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            blocks = list(pool.map(lambda ab: kernel(*args, ab[0], ab[1]), spans))
    else:
        blocks = [kernel(*args, a, b) for a, b in spans]
    for (a, b), blk in zip(spans, blocks, strict=True):
        out[a : b + overlap] += blk
    return out[:nr]


def _add_max(net: CircuitNetwork, x_full: np.ndarray, solves: list[_Solve], workers: int, max_node: np.ndarray) -> None:
    """Raise ``max_node`` to each node's largest current over ``solves`` (Circuitscape's max-current map)."""
    ptr = np.zeros(len(solves) + 1, np.int64)
    idx: list[int] = []
    val: list[float] = []
    for p, s in enumerate(solves):
        idx.extend(s.weights)
        val.extend(s.weights.values())
        ptr[p + 1] = len(idx)
    args = (net.resistance, net.node, x_full, ptr, np.asarray(idx, np.int64), np.asarray(val, np.float64),
            net.connectivity, net.avg_resistances, net.n_cell)  # fmt: skip
    nr = net.node.shape[0]
    if net.node.size < SERIAL_CELLS:
        workers = 1
    edges = np.linspace(0, nr, max(1, min(nr, 4 * workers)) + 1).astype(int)
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda ab: _max_currents(*args, ab[0], ab[1]), spans))
    else:
        parts = [_max_currents(*args, a, b) for a, b in spans]
    cell_max = np.concatenate([p[0] for p in parts])
    reg = np.sum([p[1] for p in parts], axis=0)
    for p, s in enumerate(solves):
        for n_, w in s.injected.items():
            reg[n_ - net.n_cell, p] += abs(w)
    plain = (net.node >= 0) & (net.node < net.n_cell)
    np.maximum.at(max_node, net.node[plain], cell_max[plain])
    if reg.size:
        np.maximum(max_node[net.n_cell :], 0.5 * reg.max(axis=1), out=max_node[net.n_cell :])


def _fill_maps(
    net: CircuitNetwork,
    x_full: np.ndarray,
    solves: list[_Solve],
    workers: int,
    cum_node: np.ndarray,
    voltage_maps: bool,
    current_maps: bool,
    volts_out: dict,
    currents_out: dict,
    max_node: np.ndarray | None = None,
) -> None:
    """Add the solves' current through every node to ``cum_node``; per-solve rasters and the maximum when asked for."""
    m = x_full.shape[1]
    if all(len(s.weights) <= 2 and sorted(s.weights.values()) in ([-1.0, 1.0], [1.0], [-1.0], []) for s in solves):
        # differences of two columns (pairwise; one column per solve): the compiled pass with one gather per solve
        ia = np.full(len(solves), m, np.int64)
        ib = np.full(len(solves), m, np.int64)
        for p, s in enumerate(solves):
            for j, w in s.weights.items():
                if w > 0:
                    ia[p] = j
                else:
                    ib[p] = j
        args = (net.resistance, net.node, x_full, ia, ib, net.connectivity, net.avg_resistances)
        cells = _row_blocks(_pair_currents, args, net.node.shape, workers, overlap=1)
    else:
        ptr = np.zeros(len(solves) + 1, np.int64)
        idx: list[int] = []
        val: list[float] = []
        for p, s in enumerate(solves):
            idx.extend(s.weights)
            val.extend(s.weights.values())
            ptr[p + 1] = len(idx)
        args = (
            net.resistance,
            net.node,
            x_full,
            ptr,
            np.asarray(idx, np.int64),
            np.asarray(val, np.float64),
            net.connectivity,
            net.avg_resistances,
        )
        cells = _row_blocks(_solve_currents, args, net.node.shape, workers, overlap=0)
    live = net.node >= 0
    acc = np.bincount(net.node[live], weights=cells[live], minlength=net.n_total)
    for s in solves:
        for n_, w in s.injected.items():
            acc[n_] += abs(w)
    cum_node += 0.5 * acc
    if max_node is not None:
        _add_max(net, x_full, solves, workers, max_node)
    if voltage_maps or current_maps:
        for s in solves:
            v = np.zeros(net.n_total)
            for j, w in s.weights.items():
                v += w * x_full[:, j]
            v += s.shift
            if voltage_maps:
                volts_out[s.key] = _voltage_raster(net, v)
            if current_maps:
                inj = np.zeros(net.n_total)
                for n_, w in s.injected.items():
                    inj[n_] = w
                currents_out[s.key] = current_density(net, v, inj).astype(np.float32)


def circuit_flow(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    mode: CircuitMode | str = CircuitMode.PAIRWISE,
    pairs: Iterable[Sequence[int]] | None = None,
    exclude_pairs: Iterable[Sequence[int]] = (),
    focal_shorting: FocalShorting | str = FocalShorting.PAIR,
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: CircuitSolver | str = CircuitSolver.AUTO,
    tolerance: float = 1e-8,
    max_memory_gb: float | None = None,
    voltage_maps: bool = False,
    current_maps: bool = False,
    max_current: bool = False,
    workers: int | None = None,
) -> CircuitResult:
    """Current flow between patches, in Circuitscape's modes, with a cumulative current map.

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data).
    focal
        Integer raster of patch ids (0 = none).
    mode
        ``pairwise``, ``one_to_all`` or ``all_to_one``.
    pairs
        pairwise: the pairs to solve (default: all pairs of patches).
    exclude_pairs
        pairwise: pairs to skip.
    focal_shorting
        pairwise: ``pair`` (Circuitscape: only the pair's two patches are
        short-circuited in each solve; the other patches' cells are ordinary
        cells) or ``all`` (every patch short-circuited in every solve: one
        matrix and one factor for all pairs, much faster with many patches; the
        same as Circuitscape with the patches also given as short-circuit
        regions).  one_to_all and all_to_one short-circuit every patch, as
        Circuitscape does.
    connectivity
        4 or 8 neighbours.
    avg_resistances
        Circuitscape's ``connect_using_avg_resistances``.
    solver
        ``auto``, ``amg``, ``pardiso``, ``cholmod`` or ``superlu`` (see
        :func:`choose_solver`).
    tolerance
        Relative residual of the iterative solver.
    max_memory_gb
        Refuse runs estimated to need more (default: the memory available).
    voltage_maps
        Keep each solve's voltage raster in ``result.voltages``.
    current_maps
        Keep each solve's current raster in ``result.currents``.
    max_current
        Also return the largest current over the solves at each cell
        (``result.max_current``).
    workers
        Threads for the current maps and independent iterative solves (default:
        all cores).

    Returns
    -------
    CircuitResult

    Raises
    ------
    DataError, NoPathError, ResistanceError, ConfigError
        Bad inputs (messages say what was expected and found).
    MemoryLimitError
        If the run is estimated not to fit in memory (before any solve).

    Examples
    --------
    Two 1-ohm... cells in series between two patches of a 1 x 4 strip:

    >>> r = np.ones((1, 4))
    >>> out = circuit_flow(r, np.array([[1, 0, 0, 2]]), connectivity=4)
    >>> out.resistances
       patch_a  patch_b  eff_resistance
    0        1        2             3.0
    >>> out.cum_current
    array([[1., 1., 1., 1.]], dtype=float32)
    """
    mode = CircuitMode(mode)
    shorting = FocalShorting(focal_shorting)
    opts = {
        "connectivity": connectivity,
        "avg_resistances": avg_resistances,
        "solver": solver,
        "tolerance": tolerance,
        "max_memory_gb": max_memory_gb,
        "voltage_maps": voltage_maps,
        "current_maps": current_maps,
        "max_current": max_current,
        "workers": _workers(workers),
    }
    if mode is CircuitMode.PAIRWISE and shorting is FocalShorting.PAIR:
        res, lab = _check_inputs(resistance, focal, connectivity)
        ids = np.unique(lab[lab > 0])
        if len(ids) > 2:
            return _pairwise_each_pair(res, lab, ids, pairs, exclude_pairs, opts)
    return _circuit_shorted(resistance, focal, mode, pairs, exclude_pairs, **opts)


def _pairwise_each_pair(
    res: np.ndarray,
    lab: np.ndarray,
    ids: np.ndarray,
    pairs: Iterable[Sequence[int]] | None,
    exclude_pairs: Iterable[Sequence[int]],
    opts: dict,
) -> CircuitResult:
    """Circuitscape's pairwise convention: one network per pair, only its two patches short-circuited."""
    todo = _requested_pairs(ids, pairs, exclude_pairs)
    # every patch must touch data, as in the all-shorted network (the same error, before any solve)
    on_data = np.unique(lab[(lab > 0) & ~np.isnan(res)])
    off = np.setdiff1d(ids, on_data)
    if len(off):
        msg = f"patch {int(off[0])}: expected cells with data, found all of its cells on no data. Fix the resistance raster."
        raise NoPathError(msg)
    cum = np.zeros(res.shape)
    seen = np.zeros(res.shape, dtype=bool)
    peak = np.full(res.shape, np.nan, dtype=np.float32) if opts["max_current"] else None
    r_of: dict[tuple[int, int], float] = {}
    volts: dict = {}
    currents: dict = {}
    timings: dict[str, float] = {}
    iterations: list[int] = []
    methods: set[str] = set()
    for a, b in todo:
        lab_ab = np.where((lab == a) | (lab == b), lab, 0)
        one = _circuit_shorted(res, lab_ab, CircuitMode.PAIRWISE, [(a, b)], (), **opts)
        r_of[(a, b)] = float(one.resistances.eff_resistance.iloc[0])
        live = ~np.isnan(one.cum_current)
        cum[live] += one.cum_current[live]
        seen |= live
        if peak is not None and one.max_current is not None:
            np.fmax(peak, one.max_current, out=peak)
        volts.update(one.voltages)
        currents.update(one.currents)
        iterations += one.iterations
        if one.solver:
            methods.add(one.solver)
        for k, v in one.timings_s.items():
            timings[k] = timings.get(k, 0.0) + v
    rows = [{"patch_a": a, "patch_b": b, "eff_resistance": r_of[(a, b)]} for a, b in todo]
    cur32 = cum.astype(np.float32)
    cur32[~seen] = np.nan
    return CircuitResult(
        mode=str(CircuitMode.PAIRWISE),
        resistances=pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"]),
        cum_current=cur32,
        voltages=volts,
        solver="+".join(sorted(methods)),
        iterations=iterations,
        timings_s=timings,
        currents=currents,
        focal_shorting=str(FocalShorting.PAIR),
        max_current=peak,
    )


def _circuit_shorted(
    resistance: np.ndarray,
    focal: np.ndarray,
    mode: CircuitMode,
    pairs: Iterable[Sequence[int]] | None,
    exclude_pairs: Iterable[Sequence[int]],
    *,
    connectivity: int,
    avg_resistances: bool,
    solver: CircuitSolver | str,
    tolerance: float,
    max_memory_gb: float | None,
    voltage_maps: bool,
    current_maps: bool,
    max_current: bool,
    workers: int,
) -> CircuitResult:
    """Every patch of ``focal`` short-circuited in every solve: one matrix, one factor or hierarchy."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    net = build_network(resistance, focal, connectivity=connectivity, avg_resistances=avg_resistances)
    timings["network"] = time.perf_counter() - t
    ids = net.focal_ids
    n_solve = net.n_solve
    todo: list[tuple[int, int]] = []
    solvable: list[tuple[int, int]] = []
    if mode is CircuitMode.PAIRWISE:
        todo = _requested_pairs(ids, pairs, exclude_pairs)
        solvable = [p for p in todo if net.connected(*p)]
        wanted = sorted({net.node_of(v) for p in solvable for v in p} - set(range(n_solve, net.n_total)))
        superpose = len(solvable) > len(wanted)
        n_per_run = len(solvable)
    else:
        wanted = sorted(int(n) for n in net.focal_node if 0 <= n < n_solve)
        superpose = True
        n_per_run = len(ids)
    nothing = n_solve == 0 or (mode is CircuitMode.PAIRWISE and not solvable)
    method = ""
    if not nothing:
        method, superpose = _plan_memory(net, solver, len(wanted), n_per_run, superpose, mode, max_memory_gb)
    cum_node = np.zeros(net.n_total)
    max_node = np.zeros(net.n_total) if max_current else None
    volts_out: dict = {}
    currents_out: dict = {}
    rows: list[dict] = []
    lin: LaplacianSolver | None = None
    t_solve = t_maps = 0.0
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and method == "amg" and net.node.size >= SERIAL_CELLS else None
    try:
        if not nothing:
            t = time.perf_counter()
            lin = LaplacianSolver(net.laplacian, method, tolerance, node_raster=solve_nodes(net))
            timings["setup"] = time.perf_counter() - t
        col_of: dict[int, int] = {}
        x_units = np.zeros((net.n_total, 0))
        if superpose and lin is not None:
            t = time.perf_counter()
            b = np.zeros((n_solve, len(wanted)))
            b[wanted, np.arange(len(wanted))] = 1.0
            x_units = np.zeros((net.n_total, len(wanted)))
            x_units[:n_solve] = lin.solve_many(b, pool)
            del b
            col_of = {n_: j for j, n_ in enumerate(wanted)}
            t_solve += time.perf_counter() - t

        def unit_value(n_: int, at: int) -> float:
            j = col_of.get(n_, -1)
            return 0.0 if j < 0 else float(x_units[at, j])

        maps = (workers, cum_node, voltage_maps, current_maps, volts_out, currents_out, max_node)
        if mode is CircuitMode.PAIRWISE:
            solves = []
            r_of: dict[tuple[int, int], float] = {}
            for a, b_ in solvable:
                na, nb = net.node_of(a), net.node_of(b_)
                w = {col_of[n_]: s for n_, s in ((na, 1.0), (nb, -1.0)) if n_ in col_of}
                solves.append(_Solve((a, b_), w, {na: 1.0, nb: -1.0}))
                if superpose:
                    r_of[(a, b_)] = unit_value(na, na) - unit_value(nb, na) - unit_value(na, nb) + unit_value(nb, nb)
            if superpose:
                t = time.perf_counter()
                _fill_maps(net, x_units, solves, *maps)
                t_maps += time.perf_counter() - t
            elif lin is not None:

                def drop(s: _Solve, v: np.ndarray) -> float:
                    na, nb = s.injected
                    return float(v[na] - v[nb])

                ts, tm, values = _solve_each(net, lin, solves, pool, workers, drop, maps)
                t_solve += ts
                t_maps += tm
                r_of.update(zip((s.key for s in solves), values, strict=True))  # type: ignore[misc]
            rows = [{"patch_a": a, "patch_b": b_, "eff_resistance": r_of.get((a, b_), math.inf)} for a, b_ in todo]
            table = pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"])
        else:
            solves, rows = _multi_patch_solves(net, mode, x_units, col_of, superpose)
            if superpose:
                t = time.perf_counter()
                _fill_maps(net, x_units, solves, *maps)
                t_maps += time.perf_counter() - t
            elif lin is not None:  # all_to_one, one solve per patch: the ground's share is implied by the others

                def mean_source(s: _Solve, v: np.ndarray) -> float:
                    src = next(n_ for n_, w in s.injected.items() if w < 0)
                    s.shift = -float(v[src])
                    return float(np.mean([v[n_] for n_, w in s.injected.items() if w > 0])) + s.shift

                ts, tm, values = _solve_each(net, lin, solves, pool, workers, mean_source, maps)
                t_solve += ts
                t_maps += tm
                by_patch = dict(zip((s.key for s in solves), values, strict=True))
                for row in rows:
                    if row["patch"] in by_patch:
                        row["voltage"] = by_patch[row["patch"]]
            table = pd.DataFrame(rows, columns=["patch", "voltage"])
    finally:
        if pool is not None:
            pool.shutdown()
        if lin is not None:
            lin.close()
    timings["solves"] = t_solve
    timings["maps"] = t_maps
    cur = np.full(net.node.shape, np.nan, dtype=np.float32)
    live = net.node >= 0
    cur[live] = cum_node[net.node[live]]
    peak = None
    if max_node is not None:
        peak = np.full(net.node.shape, np.nan, dtype=np.float32)
        peak[live] = max_node[net.node[live]]
    if nothing:
        logger.info("circuit: no component holds two patches; nothing to solve")
    return CircuitResult(
        mode=str(mode),
        resistances=table,
        cum_current=cur,
        voltages=volts_out,
        solver=lin.method if lin is not None else "",
        iterations=list(lin.iterations) if lin is not None else [],
        timings_s=timings,
        currents=currents_out,
        focal_shorting=str(FocalShorting.ALL),
        max_current=peak,
    )


def _plan_memory(
    net: CircuitNetwork,
    solver: CircuitSolver | str,
    n_wanted: int,
    n_per_run: int,
    superpose: bool,
    mode: CircuitMode,
    max_memory_gb: float | None,
) -> tuple[str, bool]:
    """The solver and whether to store unit solutions: the first plan that fits in memory, else MemoryLimitError."""
    first = choose_solver(net.n_solve, n_wanted if superpose else n_per_run, solver)
    methods = [first] + (["amg"] if CircuitSolver(solver) is CircuitSolver.AUTO and first != "amg" else [])
    plans = [(m, superpose) for m in methods]
    if superpose and mode is not CircuitMode.ONE_TO_ALL:
        plans += [(m, False) for m in methods]
    error: MemoryLimitError | None = None
    for method, sup in plans:
        try:
            _check_memory(net.node.size, net.n_solve, n_wanted if sup else 0, max_memory_gb, method)
        except MemoryLimitError as exc:
            error = exc
            continue
        return method, sup
    assert error is not None
    raise error


def _solve_each(
    net: CircuitNetwork,
    lin: LaplacianSolver,
    solves: list[_Solve],
    pool: ThreadPoolExecutor | None,
    workers: int,
    measure: Callable[[_Solve, np.ndarray], float],
    maps: tuple[int, np.ndarray, bool, bool, dict, dict, np.ndarray | None],
) -> tuple[float, float, list[float]]:
    """One solve per entry of ``solves`` (in blocks), their maps added; returns solve and map seconds, measured values."""
    chunk = max(1, 2 * workers) if lin.method == "amg" else DIRECT_BLOCK_RHS
    t_solve = t_maps = 0.0
    values: list[float] = []
    for k in range(0, len(solves), chunk):
        part = solves[k : k + chunk]
        b = np.zeros((net.n_solve, len(part)))
        for j, s in enumerate(part):
            for n_, w in s.injected.items():
                if n_ < net.n_solve:
                    b[n_, j] += w
        t = time.perf_counter()
        x = np.zeros((net.n_total, len(part)))
        x[: net.n_solve] = lin.solve_many(b, pool)
        t_solve += time.perf_counter() - t
        t = time.perf_counter()
        for j, s in enumerate(part):
            s.weights = {j: 1.0}
            values.append(measure(s, x[:, j]))
        _fill_maps(net, x, part, *maps)
        t_maps += time.perf_counter() - t
    return t_solve, t_maps, values


def _multi_patch_solves(
    net: CircuitNetwork, mode: CircuitMode, x_units: np.ndarray, col_of: dict[int, int], superpose: bool
) -> tuple[list[_Solve], list[dict]]:
    """The solves of one_to_all / all_to_one (weights over the unit solutions when superposed) and the table rows."""
    solves: list[_Solve] = []
    rows: list[dict] = []

    def x_at(n_: int, at: int) -> float:
        j = col_of.get(n_, -1)
        return 0.0 if j < 0 else float(x_units[at, j])

    def weights(inj: dict[int, float]) -> dict[int, float]:
        w: dict[int, float] = {}
        for n_, s in inj.items():
            if n_ in col_of:
                w[col_of[n_]] = w.get(col_of[n_], 0.0) + s
        return w

    for i, pid in enumerate(net.focal_ids):
        ci = net.component[i]
        if ci < 0:
            rows.append({"patch": int(pid), "voltage": math.nan})
            continue
        fnodes = [int(net.focal_node[j]) for j in np.flatnonzero(net.component == ci)]
        src = int(net.focal_node[i])
        others = [n_ for n_ in fnodes if n_ != src]
        if mode is CircuitMode.ALL_TO_ONE:
            inj = dict.fromkeys(others, 1.0)
            inj[src] = -float(len(others))
            if not superpose:
                solves.append(_Solve(int(pid), {}, inj))
                rows.append({"patch": int(pid), "voltage": math.nan})
                continue
            w = weights(inj)

            def v_at(at: int, w: dict[int, float] = w) -> float:
                return sum(s * float(x_units[at, j]) for j, s in w.items())

            shift = -v_at(src)
            voltage = float(np.mean([v_at(n_) for n_ in others])) + shift
        else:  # one to all: 1 A in at src, every other patch held at 0 V
            # unknowns: injections c_o at the others (c_src = 1 is known), the free voltage shift V0
            m = len(others)
            mat = np.zeros((m + 1, m + 1))
            rhs = np.zeros(m + 1)
            for r_, nr_ in enumerate(others):
                for c_, nc_ in enumerate(others):
                    mat[r_, c_] = x_at(nc_, nr_)
                mat[r_, m] = 1.0
                rhs[r_] = -x_at(src, nr_)
            mat[m, :m] = 1.0  # currents balance: sum of the others' injections = -1
            rhs[m] = -1.0
            sol = np.linalg.solve(mat, rhs)
            inj = {src: 1.0} | {nc_: float(sol[c_]) for c_, nc_ in enumerate(others)}
            w = weights(inj)
            shift = float(sol[m])
            voltage = sum(s * float(x_units[src, j]) for j, s in w.items()) + shift
        solves.append(_Solve(int(pid), w, inj, shift))
        rows.append({"patch": int(pid), "voltage": voltage})
    return solves, rows


# --------------------------------------------------------------------------- network mode
def network_resistances(
    u: Sequence[int] | np.ndarray,
    v: Sequence[int] | np.ndarray,
    resistance_ohm: Sequence[float] | np.ndarray,
    *,
    focal: Sequence[int] | np.ndarray | None = None,
    pairs: Iterable[Sequence[int]] | None = None,
) -> pd.DataFrame:
    """Effective resistance between nodes of a graph (Circuitscape's network mode, pairwise).

    Each edge ``(u[i], v[i])`` is a resistor of ``resistance_ohm[i]`` ohms
    (parallel edges add as conductances).  For every pair of focal nodes,
    1 A is driven from one to the other; its effective resistance is the
    voltage difference.  A component's grounded Laplacian is factorised once
    (SciPy SuperLU) and every focal node's unit solution reused for all its
    pairs.

    Parameters
    ----------
    u, v
        Node ids (integers) of each edge's ends.
    resistance_ohm
        Resistance of each edge (> 0, finite).
    focal
        The focal nodes (default: every node of the graph).
    pairs
        The pairs to report (default: every pair of focal nodes).

    Returns
    -------
    pandas.DataFrame
        ``patch_a``, ``patch_b``, ``eff_resistance`` (ohms; ``inf`` when the two
        lie in different components).

    Raises
    ------
    DataError
        If the edge arrays differ in length, a resistance is not finite and
        positive, or a focal / pair id is not a node of the graph.

    Examples
    --------
    A triangle of 1-ohm resistors: 1 ohm in parallel with 2 ohms.

    >>> network_resistances([1, 2, 1], [2, 3, 3], [1.0, 1.0, 1.0])
       patch_a  patch_b  eff_resistance
    0        1        2        0.666667
    1        1        3        0.666667
    2        2        3        0.666667
    """
    ua = np.asarray(u, dtype=np.int64)
    va = np.asarray(v, dtype=np.int64)
    ra = np.asarray(resistance_ohm, dtype=np.float64)
    if not (ua.shape == va.shape == ra.shape) or ua.ndim != 1:
        msg = (
            "network edges: expected three arrays of one length (u, v, resistance), "
            f"found shapes {ua.shape}, {va.shape}, {ra.shape}."
        )
        raise DataError(msg)
    bad = ~(np.isfinite(ra) & (ra > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"network edge ({ua[i]}, {va[i]}): expected a finite resistance > 0 ohms, found {ra[i]!r} "
            f"({int(bad.sum())} such edges). Drop the edge or give it a resistance."
        )
        raise DataError(msg)
    nodes = np.unique(np.concatenate([ua, va]))
    focal_ids = nodes if focal is None else np.unique(np.asarray(focal, dtype=np.int64))
    missing = np.setdiff1d(focal_ids, nodes)
    if len(missing):
        msg = f"focal node {int(missing[0])}: expected a node of the graph, found no edge at it."
        raise DataError(msg)
    todo = _requested_pairs(focal_ids, pairs, ())
    n = len(nodes)
    iu, iv = np.searchsorted(nodes, ua), np.searchsorted(nodes, va)
    keep = iu != iv  # a self-loop carries no current
    g = 1.0 / ra[keep]
    adj = sp.coo_matrix((np.r_[g, g], (np.r_[iu[keep], iv[keep]], np.r_[iv[keep], iu[keep]])), shape=(n, n)).tocsr()
    lap = (sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsc()
    n_comp, comp = connected_components(adj, directed=False)
    index = {int(x): i for i, x in enumerate(nodes)}
    r_of: dict[tuple[int, int], float] = {}
    for c in range(n_comp):
        members = np.flatnonzero(comp == c)
        wanted = [p for p in todo if comp[index[p[0]]] == c and comp[index[p[1]]] == c]
        if not wanted:
            continue
        ground, free = members[0], members[1:]
        pos = {int(k): i for i, k in enumerate(free)}
        sub = lap[free][:, free]
        ends = sorted({index[x] for p in wanted for x in p} - {int(ground)})
        x = np.zeros((len(free), 0))
        if ends:
            b = np.zeros((len(free), len(ends)))
            b[[pos[e] for e in ends], np.arange(len(ends))] = 1.0
            x = splu(sub.tocsc()).solve(b) if len(free) else b
        col = {e: j for j, e in enumerate(ends)}

        def volt(src: int, at: int, x: np.ndarray = x, col: dict = col, pos: dict = pos) -> float:
            return 0.0 if src not in col or at not in pos else float(x[pos[at], col[src]])

        for a, b_ in wanted:
            ia, ib = index[a], index[b_]
            r_of[(a, b_)] = volt(ia, ia) - volt(ib, ia) - volt(ia, ib) + volt(ib, ib)
    rows = [{"patch_a": a, "patch_b": b_, "eff_resistance": r_of.get((a, b_), math.inf)} for a, b_ in todo]
    return pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"])
