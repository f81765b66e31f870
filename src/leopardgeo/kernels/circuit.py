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

How the solves are shared
-------------------------
Every patch is short-circuited in every solve (the graph is the same for all
pairs; Circuitscape short-circuits only the pair's two focal regions unless the
patches are also given as short-circuit polygons).  One patch per connected
component is the ground; the reduced Laplacian is then symmetric positive
definite and the same for every solve, so its preconditioner (pyamg classical
AMG) or Cholesky factor is built once.  With ``m`` patches in a component, the
``m - 1`` unit-injection solutions :math:`x_k` (1 A into patch k, out at the
ground) give every mode by superposition: pairwise a-b is :math:`x_a - x_b`;
one-to-all and all-to-one solve an ``m``-by-``m`` system for the injections
(exact linear algebra, not an approximation).  When storing the :math:`x_k`
would not fit in memory, pairwise and all-to-one fall back to one solve per
pair / patch with the same preconditioner.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse.linalg import cg, splu

from leopardgeo.config import CircuitMode, CircuitSolver
from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError, NoPathError
from leopardgeo.core.validation import check_resistance

__all__ = [
    "CircuitNetwork",
    "CircuitResult",
    "LaplacianSolver",
    "build_network",
    "circuit_flow",
    "current_density",
    "estimate_memory_bytes",
    "solve_nodes",
]

logger = logging.getLogger(__name__)

#: All 8 neighbour offsets: 4 axial first, then 4 diagonal.
_OFFSETS = np.array([(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)], dtype=np.int64)
#: Unknowns up to which ``solver = "auto"`` factorises with scipy's SuperLU instead of AMG.
DIRECT_MAX_NODES = 60_000
#: Levels larger than this are coarsened geometrically (see :class:`LaplacianSolver`).
GEOMETRIC_MIN_NODES = 100_000
#: Bytes per grid cell and per solve node of a circuit run, measured with
#: ``benchmarks/bench_circuit.py`` (peak RSS minus interpreter, with headroom).
BYTES_PER_CELL = 40
BYTES_PER_NODE = 260


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
def _cholmod() -> object | None:
    try:
        from sksparse import cholmod  # type: ignore[import-not-found]
    except ImportError:
        return None
    except ValueError as exc:  # built against another numpy
        logger.warning("scikit-sparse is installed but cannot be loaded (%s); using AMG", exc)
        return None
    return cholmod


class LaplacianSolver:
    """Solve ``L x = b`` repeatedly for one reduced Laplacian, reusing its preconditioner or factor.

    Parameters
    ----------
    laplacian
        Symmetric positive definite CSR matrix (a grounded Laplacian).
    method
        ``"auto"`` (CHOLMOD if scikit-sparse is installed, SuperLU for small
        systems, else AMG), ``"amg"`` or ``"cholmod"``.
    tolerance
        Relative residual at which conjugate gradients stop (AMG only).
    node_raster
        Optional raster of unknown ids per cell (-1 none), e.g. from
        :func:`solve_nodes`; enables geometric coarsening of the large levels.

    Notes
    -----
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
    """

    def __init__(
        self,
        laplacian: sp.csr_matrix,
        method: CircuitSolver | str = "auto",
        tolerance: float = 1e-8,
        node_raster: np.ndarray | None = None,
    ) -> None:
        method = CircuitSolver(method)
        n = laplacian.shape[0]
        self.matrix = laplacian
        self.tolerance = float(tolerance)
        self.iterations: list[int] = []
        t = time.perf_counter()
        chol = _cholmod()
        if method is CircuitSolver.CHOLMOD and chol is None:
            msg = (
                "solver = 'cholmod': expected scikit-sparse to be installed, found it missing. "
                "pip install scikit-sparse, or use 'amg'."
            )
            raise ConfigError(msg)
        if method is CircuitSolver.CHOLMOD or (method is CircuitSolver.AUTO and chol is not None):
            self.method = "cholmod"
            self._factor = chol.cholesky(laplacian.tocsc())  # type: ignore[attr-defined]
        elif method is CircuitSolver.AUTO and n <= DIRECT_MAX_NODES:
            self.method = "superlu"
            self._factor = splu(laplacian.tocsc(), permc_spec="MMD_AT_PLUS_A")
        else:
            self.method = "amg"
            self._ml = _grid_amg(laplacian, node_raster)
            self._precond = self._ml.aspreconditioner(cycle="V")
        self.setup_s = time.perf_counter() - t

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Solution of ``L x = b`` (float64)."""
        if self.method == "cholmod":
            self.iterations.append(0)
            return np.asarray(self._factor(b)).ravel()
        if self.method == "superlu":
            self.iterations.append(0)
            return self._factor.solve(b)
        count = [0]

        def cb(_: np.ndarray) -> None:
            count[0] += 1

        x, info = cg(self.matrix, b, rtol=self.tolerance, atol=0.0, M=self._precond, callback=cb, maxiter=1000)
        self.iterations.append(count[0])
        if info != 0:  # pragma: no cover - a symmetric positive definite system converges
            logger.warning("conjugate gradients stopped after %d iterations above tolerance %g", count[0], self.tolerance)
        return x


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


def estimate_memory_bytes(n_cells: int, n_nodes: int, n_stored: int = 0) -> int:
    """Rough peak memory of a circuit run (bytes): grid rasters, matrix, AMG hierarchy, stored solutions.

    Examples
    --------
    >>> round(estimate_memory_bytes(4_000_000, 3_600_000) / 1e9, 2)
    1.1
    """
    return int(n_cells * BYTES_PER_CELL + n_nodes * BYTES_PER_NODE + n_stored * n_nodes * 8)


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def _check_memory(n_cells: int, n_nodes: int, n_stored: int, limit_gb: float | None) -> None:
    need = estimate_memory_bytes(n_cells, n_nodes, n_stored)
    have = int(limit_gb * 1e9) if limit_gb is not None else _available_bytes()
    if need > have:
        what = "the limit max_memory_gb" if limit_gb is not None else "available memory"
        msg = (
            f"circuit: expected to need about {_fmt_bytes(need)} for {n_nodes:,} nodes, found {_fmt_bytes(have)} "
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
        ``eff_resistance`` in ohms; ``inf`` when not connected).  one_to_all /
        all_to_one: one row per patch (``patch``, ``voltage``: the source's
        voltage for one_to_all, the mean source voltage for all_to_one).
    cum_current
        Sum of the solves' current maps (float32, A; NaN outside the circuit).
    voltages
        ``{key: voltage raster}`` (float32, V) when asked for; key = pair or patch.
    solver
        ``amg``, ``superlu`` or ``cholmod``.
    iterations
        CG iterations per solve (0 for direct solvers).
    timings_s
        Seconds per phase: network, setup, solves, maps.
    """

    mode: str
    resistances: pd.DataFrame
    cum_current: np.ndarray
    voltages: dict = field(default_factory=dict)
    solver: str = ""
    iterations: list = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)


def _workers(workers: int | None) -> int:
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    return int(workers)


def _voltage_raster(net: CircuitNetwork, v: np.ndarray) -> np.ndarray:
    vm = v[net.node].astype(np.float32)
    vm[net.node < 0] = np.nan
    return vm


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


def circuit_flow(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    mode: CircuitMode | str = CircuitMode.PAIRWISE,
    pairs: Iterable[Sequence[int]] | None = None,
    exclude_pairs: Iterable[Sequence[int]] = (),
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: CircuitSolver | str = CircuitSolver.AUTO,
    tolerance: float = 1e-8,
    max_memory_gb: float | None = None,
    voltage_maps: bool = False,
    workers: int | None = None,
) -> CircuitResult:
    """Current flow between patches, in Circuitscape's modes, with a cumulative current map.

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data).
    focal
        Integer raster of patch ids (0 = none); every patch is short-circuited.
    mode
        ``pairwise``, ``one_to_all`` or ``all_to_one``.
    pairs
        pairwise: the pairs to solve (default: all pairs of patches).
    exclude_pairs
        pairwise: pairs to skip.
    connectivity
        4 or 8 neighbours.
    avg_resistances
        Circuitscape's ``connect_using_avg_resistances``.
    solver
        ``auto``, ``amg`` or ``cholmod`` (see :class:`LaplacianSolver`).
    tolerance
        Relative residual of the iterative solver.
    max_memory_gb
        Refuse runs estimated to need more (default: the memory available).
    voltage_maps
        Keep each solve's voltage raster in ``result.voltages``.
    workers
        Threads for independent solves and current maps (default: all cores).

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
    timings: dict[str, float] = {}
    t = time.perf_counter()
    net = build_network(resistance, focal, connectivity=connectivity, avg_resistances=avg_resistances)
    timings["network"] = time.perf_counter() - t
    ids = net.focal_ids
    n_ground = net.n_total - net.n_solve
    if mode is CircuitMode.PAIRWISE:
        todo = _requested_pairs(ids, pairs, exclude_pairs)
        solvable = [p for p in todo if net.connected(*p)]
        nodes_used = {net.node_of(v) for p in solvable for v in p} - set(range(net.n_solve, net.n_total))
        superpose = len(solvable) > len(nodes_used)
    else:
        todo = []
        solvable = []
        nodes_used = {int(n) for n in net.focal_node if 0 <= n < net.n_solve}
        superpose = True
    n_stored = len(nodes_used) if superpose else 0
    try:
        _check_memory(net.node.size, net.n_solve, n_stored, max_memory_gb)
    except MemoryLimitError:
        if mode is CircuitMode.ONE_TO_ALL or not superpose:
            raise
        superpose = False
        _check_memory(net.node.size, net.n_solve, 0, max_memory_gb)
    cum = np.zeros(net.node.shape, dtype=np.float64)
    volts_out: dict = {}
    rows: list[dict] = []
    if net.n_solve == 0 or (mode is CircuitMode.PAIRWISE and not solvable):
        lin = None
    else:
        t = time.perf_counter()
        lin = LaplacianSolver(net.laplacian, solver, tolerance, node_raster=solve_nodes(net))
        timings["setup"] = time.perf_counter() - t
    t_solve = 0.0
    t_maps = 0.0

    def full(x: np.ndarray) -> np.ndarray:
        v = np.zeros(net.n_total)
        v[: net.n_solve] = x
        return v

    def unit(nodes_w: dict[int, float]) -> np.ndarray:
        b = np.zeros(net.n_solve)
        for n_, w in nodes_w.items():
            if n_ < net.n_solve:
                b[n_] += w
        return b

    def add_map(v: np.ndarray, inj: np.ndarray, key: object) -> None:
        nonlocal t_maps
        t0 = time.perf_counter()
        cur = current_density(net, v, inj)
        np.add(cum, np.nan_to_num(cur), out=cum)
        if voltage_maps:
            volts_out[key] = _voltage_raster(net, v)
        t_maps += time.perf_counter() - t0

    stored: dict[int, np.ndarray] = {}

    def x_of(n_: int) -> np.ndarray:
        """Unit solution of node n_ (1 A in, out at its component's ground); zeros for a ground."""
        if n_ >= net.n_solve:
            return np.zeros(net.n_total)
        if n_ not in stored:
            stored[n_] = full(lin.solve(unit({n_: 1.0})))  # type: ignore[union-attr]
        return stored[n_]

    n_workers = _workers(workers)
    solve_times: list[float] = []
    pool = ThreadPoolExecutor(max_workers=n_workers) if n_workers > 1 else None
    try:
        if superpose and lin is not None:
            t0 = time.perf_counter()
            wanted = sorted(n_ for n_ in nodes_used if n_ < net.n_solve)
            solved = pool.map(lambda n_: full(lin.solve(unit({n_: 1.0}))), wanted) if pool else map(x_of, wanted)
            stored.update(zip(wanted, solved, strict=True))
            t_solve += time.perf_counter() - t0

        def pair_job(pair: tuple[int, int]) -> tuple[float, np.ndarray, np.ndarray | None]:
            na, nb = net.node_of(pair[0]), net.node_of(pair[1])
            if superpose:
                v = x_of(na) - x_of(nb)
            else:
                t0 = time.perf_counter()
                v = full(lin.solve(unit({na: 1.0, nb: -1.0})))  # type: ignore[union-attr]
                solve_times.append(time.perf_counter() - t0)
            inj = np.zeros(net.n_total)
            inj[na], inj[nb] = 1.0, -1.0
            return float(v[na] - v[nb]), current_density(net, v, inj), _voltage_raster(net, v) if voltage_maps else None

        if mode is CircuitMode.PAIRWISE:
            r_of: dict[tuple[int, int], float] = {}
            batch = max(1, 2 * n_workers)
            t0 = time.perf_counter()
            for k in range(0, len(solvable), batch):
                chunk = solvable[k : k + batch]
                for pair, (r_ab, cur, vm) in zip(chunk, pool.map(pair_job, chunk) if pool else map(pair_job, chunk), strict=True):
                    r_of[pair] = r_ab
                    np.add(cum, np.nan_to_num(cur), out=cum)
                    if vm is not None:
                        volts_out[pair] = vm
            # wall time of the pair loop, split by the share spent in per-pair solves (threads overlap)
            loop_s = time.perf_counter() - t0
            busy = min(n_workers, max(len(solvable), 1))
            solve_wall = min(sum(solve_times) / busy, loop_s)
            t_solve += solve_wall
            t_maps += loop_s - solve_wall
            rows = [{"patch_a": a, "patch_b": b, "eff_resistance": r_of.get((a, b), math.inf)} for a, b in todo]
            table = pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"])
        else:
            for i, pid in enumerate(ids):
                ci = net.component[i]
                if ci < 0:
                    rows.append({"patch": int(pid), "voltage": math.nan})
                    continue
                members = np.flatnonzero(net.component == ci)
                fnodes = [int(net.focal_node[j]) for j in members]
                src = int(net.focal_node[i])
                if mode is CircuitMode.ALL_TO_ONE:
                    inj_w = {n_: 1.0 for n_ in fnodes if n_ != src}
                    inj_w[src] = -float(len(fnodes) - 1)
                    if superpose:
                        v = sum((w * x_of(n_) for n_, w in inj_w.items()), np.zeros(net.n_total))
                    else:  # one solve per patch: the ground's share is implied by the others
                        v = full(lin.solve(unit(inj_w)))  # type: ignore[union-attr]
                    v = v - v[src]
                    voltage = float(np.mean([v[n_] for n_ in fnodes if n_ != src]))
                else:  # one to all: 1 A in at src, every other patch held at 0 V
                    xs = {n_: x_of(n_) for n_ in fnodes}
                    others = [n_ for n_ in fnodes if n_ != src]
                    # unknowns: injections c_o at the others (c_src = 1 is known), the free voltage shift V0
                    m = len(others)
                    mat = np.zeros((m + 1, m + 1))
                    rhs = np.zeros(m + 1)
                    for r_, nr_ in enumerate(others):
                        for c_, nc_ in enumerate(others):
                            mat[r_, c_] = xs[nc_][nr_]
                        mat[r_, m] = 1.0
                        rhs[r_] = -xs[src][nr_]
                    mat[m, :m] = 1.0  # currents balance: sum of the others' injections = -1
                    rhs[m] = -1.0
                    sol = np.linalg.solve(mat, rhs)
                    v = xs[src] + sum((sol[c_] * xs[nc_] for c_, nc_ in enumerate(others)), np.zeros(net.n_total)) + sol[m]
                    inj_w = {src: 1.0} | {nc_: float(sol[c_]) for c_, nc_ in enumerate(others)}
                    voltage = float(v[src])
                inj = np.zeros(net.n_total)
                for n_, w in inj_w.items():
                    inj[n_] = w
                rows.append({"patch": int(pid), "voltage": voltage})
                add_map(v, inj, int(pid))
            table = pd.DataFrame(rows, columns=["patch", "voltage"])
    finally:
        if pool is not None:
            pool.shutdown()
    timings["solves"] = t_solve
    timings["maps"] = t_maps
    cur32 = cum.astype(np.float32)
    cur32[net.node < 0] = np.nan
    if n_ground == 0:
        logger.info("circuit: no component holds two patches; nothing to solve")
    return CircuitResult(
        mode=str(mode),
        resistances=table,
        cum_current=cur32,
        voltages=volts_out,
        solver=lin.method if lin is not None else "",
        iterations=list(lin.iterations) if lin is not None else [],
        timings_s=timings,
    )
