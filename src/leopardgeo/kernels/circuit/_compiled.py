"""Compiled (numba) kernels of the circuit: matrix rows, branch currents, AMG coarsening."""

from __future__ import annotations

import numba
import numpy as np

#: All 8 neighbour offsets: 4 axial first, then 4 diagonal.
_OFFSETS = np.array([(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)], dtype=np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _g(ca, cb, ra, rb, diagonal, avg_res):  # pragma: no cover - compiled
    w = 0.7071067811865476 if diagonal else 1.0
    if avg_res:
        return w / (0.5 * (ra + rb))
    return w * 0.5 * (ca + cb)


#: Slot of each neighbour offset (``_OFFSETS`` order) in raster order around the cell (0-3 before it, 4-7 after).
_SLOT = np.array([1, 4, 6, 3, 2, 7, 5, 0], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _cell_rows(res, node, n_cell, n_solve, k, avg_res, extra):  # pragma: no cover - compiled
    """CSR rows of the cell nodes (ids < n_cell), columns sorted, diagonal included; ``extra`` spare entries at the end.

    Cell nodes are numbered in raster order, so a cell's cell neighbours taken
    in raster order are already sorted, the cell itself between those before
    and after it; region nodes (ids ``n_cell`` on) come last, merged and
    sorted in a small buffer.  Sums run in ``_OFFSETS`` order.
    """
    nr, nc = res.shape
    indptr = np.zeros(n_cell + 1, np.int64)
    rbuf = np.empty(9, np.int64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0 or a >= n_cell:
                continue
            m = 1
            n_reg = 0
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                    continue
                b = node[rr, cc]
                if b < 0 or b >= n_solve:
                    continue
                if b < n_cell:
                    m += 1
                    continue
                dup = False
                for q in range(n_reg):
                    if rbuf[q] == b:
                        dup = True
                if not dup:
                    rbuf[n_reg] = b
                    n_reg += 1
            indptr[a + 1] = m + n_reg
    for i in range(n_cell):
        indptr[i + 1] += indptr[i]
    nnz = indptr[n_cell]
    indices = np.empty(nnz + extra, np.int32)
    data = np.empty(nnz + extra, np.float64)
    slot_b = np.empty(8, np.int64)
    slot_g = np.empty(8, np.float64)
    rval = np.empty(9, np.float64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0 or a >= n_cell:
                continue
            ra = res[r, c]
            ca = 1.0 / ra
            diag = 0.0
            n_reg = 0
            for s in range(8):
                slot_b[s] = -1
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
                diag += g
                if b >= n_solve:  # a ground node: diagonal only
                    continue
                if b < n_cell:
                    slot_b[_SLOT[o]] = b
                    slot_g[_SLOT[o]] = g
                    continue
                q = 0
                while q < n_reg and rbuf[q] != b:
                    q += 1
                if q < n_reg:
                    rval[q] -= g
                else:
                    rbuf[n_reg] = b
                    rval[n_reg] = -g
                    n_reg += 1
            p = indptr[a]
            for s in range(8):
                if s == 4:
                    indices[p] = a
                    data[p] = diag
                    p += 1
                if slot_b[s] >= 0:
                    indices[p] = slot_b[s]
                    data[p] = -slot_g[s]
                    p += 1
            for i in range(1, n_reg):  # insertion sort of the few region columns
                bi = rbuf[i]
                vi = rval[i]
                j = i - 1
                while j >= 0 and rbuf[j] > bi:
                    rbuf[j + 1] = rbuf[j]
                    rval[j + 1] = rval[j]
                    j -= 1
                rbuf[j + 1] = bi
                rval[j + 1] = vi
            for i in range(n_reg):
                indices[p + i] = rbuf[i]
                data[p + i] = rval[i]
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
def _net_inflow(res, node, volts, n0, n_total, k, avg_res):  # pragma: no cover - compiled
    """Net branch current flowing into each node with id >= ``n0`` (signed; other nodes 0)."""
    nr, nc = res.shape
    acc = np.zeros(n_total, np.float64)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < n0:
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
                acc[a] += _g(1.0 / ra, 1.0 / rb, ra, rb, o >= 4, avg_res) * (volts[b] - volts[a])
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
def _clique_currents(res, node, x, cols, starts, k, avg_res, r0, r1):  # pragma: no cover - compiled
    """:func:`_pair_currents` for solves that are all pairs of each group of columns, by sorting.

    Group ``g`` is ``cols[starts[g]:starts[g + 1]]`` (column ``x.shape[1]``
    stands for zero volts, a ground) and the solves are every pair ``(i, j)``
    of a group's columns, voltages ``x[:, i] - x[:, j]``.  At a branch with
    voltage differences ``d`` (one per column) the pairs' currents add up to
    ``g * sum_{i<j} |d_i - d_j|``; with the group's ``d`` sorted,
    ``v_0 <= ... <= v_{n-1}``, that sum is
    ``sum_q (v_q - v_{q-1}) q (n - q)`` (each gap lies between ``q (n - q)``
    pairs; all terms >= 0, so no cancellation).  The order of the previous
    branch in the same direction seeds the sort (insertion sort, mostly
    already in order: neighbouring branches carry similar currents), so a
    branch costs ``O(n)`` instead of ``O(n^2)`` for the pairs.
    """
    nr, nc = res.shape
    m = x.shape[1]
    n_fwd = 2 if k == 4 else 4
    nq = len(cols)
    out = np.zeros((r1 - r0 + 1, nc), np.float64)
    d = np.zeros(m + 1, np.float64)  # d[m] = 0: the ground
    order = np.empty((n_fwd, nq), np.int64)  # per direction: the columns as the last branch sorted them
    for f in range(n_fwd):
        for q in range(nq):
            order[f, q] = cols[q]
    v = np.empty(nq, np.float64)
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
                for gi in range(len(starts) - 1):
                    s0 = starts[gi]
                    s1 = starts[gi + 1]
                    for q in range(s0, s1):
                        v[q] = d[order[f, q]]
                    for i in range(s0 + 1, s1):
                        vi = v[i]
                        if v[i - 1] <= vi:
                            continue
                        col = order[f, i]
                        j = i - 1
                        while j >= s0 and v[j] > vi:
                            v[j + 1] = v[j]
                            order[f, j + 1] = order[f, j]
                            j -= 1
                        v[j + 1] = vi
                        order[f, j + 1] = col
                    n = s1 - s0
                    for q in range(1, n):
                        t += (v[s0 + q] - v[s0 + q - 1]) * (q * (n - q))
                t *= g
                out[r - r0, c] += t
                out[rr - r0, cc] += t
    return out


@numba.njit(cache=True, nogil=True)
def _upper_one_based(indptr, indices, data):  # pragma: no cover - compiled
    """The upper triangle of a CSR matrix with sorted columns, as 1-based int32 row pointers and columns (PARDISO's).

    One pass instead of ``scipy.sparse.triu`` (a COO round trip and a sort) and
    two ``+ 1`` copies.
    """
    n = len(indptr) - 1
    ia = np.empty(n + 1, np.int32)
    nnz = 0
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] >= i:
                nnz += 1
    ja = np.empty(nnz, np.int32)
    a = np.empty(nnz, np.float64)
    k = 0
    for i in range(n):
        ia[i] = k + 1
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j >= i:
                ja[k] = j + 1
                a[k] = data[p]
                k += 1
    ia[n] = k + 1
    return ia, ja, a


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
                        acc[cj] = w * p_val[pp]
                        cols[m] = cj
                        m += 1
                    else:
                        acc[cj] += w * p_val[pp]
        if nnz + m > cap:
            cap = max(2 * cap, nnz + m)
            ni = np.empty(cap, np.int32)
            nv = np.empty(cap, np.float64)
            ni[:nnz] = out_idx[:nnz]
            nv[:nnz] = out_val[:nnz]
            out_idx = ni
            out_val = nv
        if m > 32:  # a region's row: many columns
            cols[:m] = np.sort(cols[:m])
        else:  # insertion sort of a lattice row's few columns (no allocation per row)
            for i in range(1, m):
                c = cols[i]
                j = i - 1
                while j >= 0 and cols[j] > c:
                    cols[j + 1] = cols[j]
                    j -= 1
                cols[j + 1] = c
        for t in range(m):
            out_idx[nnz + t] = cols[t]
            out_val[nnz + t] = acc[cols[t]]
        nnz += m
        out_ptr[ci + 1] = nnz
    return out_ptr, out_idx[:nnz].copy(), out_val[:nnz].copy()


@numba.njit(cache=True, nogil=True)
def _grid_dissection(node_raster, leaf, balance):  # pragma: no cover - compiled
    """Nested dissection order of the cell unknowns of a grid (George 1973): ids in elimination order.

    ``node_raster`` holds each cell's unknown id (-1 none).  A box of cells is
    cut along a grid line (a row or a column) that leaves at least ``balance``
    of its cells on either side, the line with the fewest cells (ties: the one
    nearest the median line); with no such line, the median line across the
    box's longer side.  The cells on the line separate the two halves in 4- and
    8-neighbour graphs alike (a branch never skips a line), so each half is
    ordered first, recursively, then the line.  On an irregular habitat a
    short line (a narrow neck) makes a smaller dense block in the factor than
    the median line.  Boxes of ``leaf`` cells or fewer keep raster order.
    Unknowns not on the raster (patch nodes) are left to the caller, which
    puts them last.
    """
    nr, nc = node_raster.shape
    n = 0
    for r in range(nr):
        for c in range(nc):
            if node_raster[r, c] >= 0:
                n += 1
    ids = np.empty(n, np.int64)
    rows = np.empty(n, np.int64)
    cols = np.empty(n, np.int64)
    k = 0
    for r in range(nr):
        for c in range(nc):
            if node_raster[r, c] >= 0:
                ids[k] = node_raster[r, c]
                rows[k] = r
                cols[k] = c
                k += 1
    t_ids = np.empty(n, np.int64)
    t_rows = np.empty(n, np.int64)
    t_cols = np.empty(n, np.int64)
    hist = np.zeros(max(nr, nc), np.int64)
    stack = np.empty((n + 1, 2), np.int64)  # spans still to cut: each cut leaves at most two
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]
        tot = hi - lo
        if tot <= leaf:
            continue
        r0, r1, c0, c1 = rows[lo], rows[lo], cols[lo], cols[lo]
        for i in range(lo, hi):
            r0, r1 = min(r0, rows[i]), max(r1, rows[i])
            c0, c1 = min(c0, cols[i]), max(c1, cols[i])
        longer_is_rows = r1 - r0 >= c1 - c0
        best, by_row, cut, base, extent = -1, True, 1, 0, 0
        for orient in range(2):  # rows first, then columns
            o_row = orient == 0
            o_base = r0 if o_row else c0
            o_ext = (r1 - r0 if o_row else c1 - c0) + 1
            if o_ext < 3:
                continue
            hist[:o_ext] = 0
            for i in range(lo, hi):
                hist[(rows[i] if o_row else cols[i]) - o_base] += 1
            med, acc = -1, 0
            for j in range(o_ext):
                acc += hist[j]
                if med < 0 and 2 * acc >= tot:
                    med = j
            med = min(max(med, 1), o_ext - 2)  # a line inside the box: both halves non-empty
            acc = 0
            for j in range(o_ext):
                below_j = acc
                acc += hist[j]
                if j < 1 or j > o_ext - 2:
                    continue
                balanced = below_j >= balance * tot and tot - acc >= balance * tot
                if not balanced and not (j == med and o_row == longer_is_rows):
                    continue
                size = hist[j]
                if best < 0 or size < best or (size == best and o_row == by_row and abs(j - med) < abs(cut - med)):
                    best, by_row, cut, base, extent = size, o_row, j, o_base, o_ext
        if best < 0:
            continue
        hist[:extent] = 0
        for i in range(lo, hi):
            hist[(rows[i] if by_row else cols[i]) - base] += 1
        below = 0
        for j in range(cut):
            below += hist[j]
        p_lo, p_hi, p_sep = lo, lo + below, hi - hist[cut]
        for i in range(lo, hi):
            v = (rows[i] if by_row else cols[i]) - base
            if v < cut:
                q = p_lo
                p_lo += 1
            elif v > cut:
                q = p_hi
                p_hi += 1
            else:
                q = p_sep
                p_sep += 1
            t_ids[q], t_rows[q], t_cols[q] = ids[i], rows[i], cols[i]
        ids[lo:hi] = t_ids[lo:hi]
        rows[lo:hi] = t_rows[lo:hi]
        cols[lo:hi] = t_cols[lo:hi]
        stack[top, 0], stack[top, 1] = lo, lo + below
        stack[top + 1, 0], stack[top + 1, 1] = lo + below, hi - hist[cut]
        top += 2
    return ids


@numba.njit(cache=True, nogil=True)
def _gs_forward_from_zero(indptr, indices, data, b, x, r):  # pragma: no cover - compiled
    """Forward Gauss-Seidel sweep on ``A x = b`` from ``x = 0``; ``r`` receives the residual ``b - A x`` it leaves.

    ``A`` symmetric, CSR with sorted columns and every diagonal entry stored.
    From a zero start a row reads only its entries left of the diagonal; after
    the sweep row ``j``'s residual is ``-sum_{i > j} a_ij x_i`` (the rows up to
    ``j`` were zeroed in turn), gathered from those same entries of the later
    rows: no second pass over the matrix.
    """
    for i in range(len(b)):
        r[i] = 0.0
        s = b[i]
        p0 = indptr[i]
        p = p0
        while indices[p] < i:  # stops at the diagonal
            s -= data[p] * x[indices[p]]
            p += 1
        xi = s / data[p]
        x[i] = xi
        for q in range(p0, p):
            r[indices[q]] -= data[q] * xi


@numba.njit(cache=True, nogil=True)
def _gs_backward(indptr, indices, data, b, x):  # pragma: no cover - compiled
    """Backward Gauss-Seidel sweep on ``A x = b``, in place (CSR, sorted columns, diagonal stored).

    The entry right of the diagonal (the node just updated) is subtracted last,
    so the rest of the row's sum does not wait for it.
    """
    for i in range(len(b) - 1, -1, -1):
        p1 = indptr[i + 1]
        p = indptr[i]
        t = 0.0
        while indices[p] < i:
            t += data[p] * x[indices[p]]
            p += 1
        for q in range(p + 2, p1):
            t += data[q] * x[indices[q]]
        s = b[i] - t
        if p + 1 < p1:
            s -= data[p + 1] * x[indices[p + 1]]
        x[i] = s / data[p]


@numba.njit(cache=True, nogil=True)
def _restrict(indptr, indices, data, r, out):  # pragma: no cover - compiled
    """``out = P.T @ r`` for a CSR ``P``."""
    out[:] = 0.0
    for i in range(len(r)):
        ri = r[i]
        for p in range(indptr[i], indptr[i + 1]):
            out[indices[p]] += data[p] * ri


@numba.njit(cache=True, nogil=True)
def _prolong_add(indptr, indices, data, xc, x):  # pragma: no cover - compiled
    """``x += P @ xc`` for a CSR ``P``, in place."""
    for i in range(len(x)):
        s = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            s += data[p] * xc[indices[p]]
        x[i] += s


@numba.njit(cache=True, nogil=True)
def _matvec_dot(indptr, indices, data, p, q):  # pragma: no cover - compiled
    """``q = A @ p`` for a CSR ``A``, in place; returns ``p @ q``."""
    pq = 0.0
    for i in range(len(p)):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * p[indices[k]]
        q[i] = s
        pq += p[i] * s
    return pq


@numba.njit(cache=True, nogil=True)
def _cg_step(x, r, p, q, alpha):  # pragma: no cover - compiled
    """``x += alpha p``, ``r -= alpha q`` in one pass; returns ``r @ r``."""
    rr = 0.0
    for i in range(len(x)):
        x[i] += alpha * p[i]
        ri = r[i] - alpha * q[i]
        r[i] = ri
        rr += ri * ri
    return rr


@numba.njit(cache=True, nogil=True)
def _cg_direction(p, z, r, rz_old):  # pragma: no cover - compiled
    """``p = z + (r @ z / rz_old) p`` in place (``p = z`` when ``rz_old`` is 0); returns ``r @ z``."""
    rz = 0.0
    for i in range(len(r)):
        rz += r[i] * z[i]
    beta = rz / rz_old if rz_old != 0.0 else 0.0
    for i in range(len(p)):
        p[i] = z[i] + beta * p[i]
    return rz
