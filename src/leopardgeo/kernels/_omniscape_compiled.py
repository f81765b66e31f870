"""Compiled solve of Omniscape windows, one or eight at a time: flood fill, banded Cholesky, node currents.

Numba kernels used by :mod:`leopardgeo.kernels.omniscape`.  A window's grounded Laplacian is banded
in row-major order (band about twice the radius), so a right-looking banded Cholesky in panels of
four columns, restricted to the matrix's envelope, factors it without any sparse-matrix machinery.
A window's circuit is first reduced to a list of branches (node pair and conductance, each branch
once), which the factor's assembly and the node currents both read.  Windows the grid's edge does
not cut share one circuit (the disc) and are solved eight at a time, the window as the innermost axis
(:func:`_factor8`, :func:`_solve8`; vector code from :mod:`._vec8`).
Written by hand because no installed library factors many small banded systems from compiled code
without a Python call per window.
"""

from __future__ import annotations

import numba
import numpy as np

from leopardgeo.kernels._vec8 import LANES, vabs, vadd, vany, vdiv, vfma, vlane, vload, vmul, vsplat, vsqrt, vstore, vsub
from leopardgeo.kernels.circuit._compiled import _OFFSETS, _g


@numba.njit(cache=True, nogil=True)
def _flood(valid, ty, tx, k):  # pragma: no cover - compiled
    """Node ids of the cells connected to ``(ty, tx)`` (row-major, 0..n-1), the ground ``(ty, tx)`` = n; -1 elsewhere.

    The grid is padded by one cell of no data, so neighbours need no bounds test.
    """
    nr, nc = valid.shape
    stride = nc + 2
    state = np.zeros((nr + 2) * stride, np.uint8)  # 0: not in the circuit, 1: valid, 2: reached
    for r in range(nr):
        for c in range(nc):
            if valid[r, c]:
                state[(r + 1) * stride + c + 1] = 1
    step = np.empty(8, np.int64)
    for o in range(8):
        step[o] = _OFFSETS[o, 0] * stride + _OFFSETS[o, 1]
    stack = np.empty(nr * nc + 1, np.int64)
    start = (ty + 1) * stride + tx + 1
    state[start] = 2
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        q = stack[top]
        for o in range(k):
            p = q + step[o]
            if state[p] == 1:
                state[p] = 2
                stack[top] = p
                top += 1
    node = np.full((nr, nc), -1, np.int32)
    n = 0
    for r in range(nr):
        base = (r + 1) * stride + 1
        for c in range(nc):
            if state[base + c] == 2 and not (r == ty and c == tx):
                node[r, c] = n
                n += 1
    node[ty, tx] = n
    return node, n


@numba.njit(cache=True, nogil=True)
def _bandwidth(node, n, k):  # pragma: no cover - compiled
    nr, nc = node.shape
    bw = 0
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0 or a >= n:
                continue
            for o in range(k):
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if 0 <= rr < nr and 0 <= cc < nc:
                    b = node[rr, cc]
                    if 0 <= b < n and a - b > bw:
                        bw = a - b
    return bw


#: The forward neighbours as rows of ``_OFFSETS`` (east, south, south-east, south-west; 4 neighbours: the first
#: two): every branch of the window visited once, from the cell that comes first in row-major order.
_FORWARD = np.array([1, 2, 5, 6], dtype=np.int64)

#: Zero columns after a band of width ``kd + 1`` in the factor's rows: the update loops run to a multiple of 4
#: (their last, partial, vector is then never a scalar tail) and read or add zeros there.  One more column
#: after them takes what the two-column update writes before a column's band, and is never read.
_PAD = 7


@numba.njit(cache=True)
def _buffer_size(h: int, w: int) -> int:  # pragma: no cover - compiled
    """Floats of the factor's work array for an ``h`` x ``w`` window (a band is at most ``w + 1`` wide)."""
    return (h * w + 4) * (w + 3 + _PAD)


@numba.njit(cache=True, nogil=True)
def _branches(res, node, n, k, avg_res):  # pragma: no cover - compiled
    """The window's branches ``(a, b, g)``, each once (row-major cells, forward neighbours), and the band width.

    ``a``, ``b`` are node ids (the ground is ``n``), ``g`` the conductance (Circuitscape's: the mean of the two
    cells' conductances, or 1 / the mean of their resistances; divided by sqrt 2 on diagonals).  The band width
    ``kd`` is the largest ``|a - b|`` between two unknowns (``< n``).
    """
    nr, nc = res.shape
    cond = np.empty((nr, nc))
    for r in range(nr):
        for c in range(nc):
            if node[r, c] >= 0:
                cond[r, c] = 1.0 / res[r, c]
    m_max = (k // 2) * (n + 1)
    ga = np.empty(m_max, np.int32)
    gb = np.empty(m_max, np.int32)
    gg = np.empty(m_max)
    m = 0
    kd = 0
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a < 0:
                continue
            ra = res[r, c]
            ca = cond[r, c]
            for q in range(k // 2):
                o = _FORWARD[q]
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                b = node[rr, cc]
                if b < 0:
                    continue
                ga[m] = a
                gb[m] = b
                gg[m] = _g(ca, cond[rr, cc], ra, res[rr, cc], o >= 4, avg_res)
                m += 1
                if a < n and b < n and abs(a - b) > kd:
                    kd = abs(a - b)
    return ga[:m], gb[:m], gg[:m], kd


@numba.njit(cache=True, nogil=True)
def _factor_branches(ga, gb, gg, n, kd, buf):  # pragma: no cover - compiled
    """Cholesky factor of the grounded Laplacian of the branches ``(ga, gb, gg)``, in column band storage, in ``buf``.

    Returns ``C`` with ``C[j, d] = L[j + d, j]`` (``d`` = 0 .. ``kd``; ``kd + 2 + _PAD`` columns, the last ones
    zero but the very last; rows rounded up to a multiple of 4 with identity rows).  Right-looking in panels of
    4 columns, each panel updating the band below it with one pass over each pair of target columns (8
    multiply-adds per 4 elements loaded and 2 loaded and stored, which the compiler vectorises), skipping the
    columns and rows outside the matrix's envelope (no fill there).
    """
    width = kd + 2 + _PAD
    npad = (n + 3) // 4 * 4
    need = npad * width
    if buf.shape[0] < need:
        buf = np.empty(need)
    c_ = buf[:need].reshape(npad, width)
    c_[:, :] = 0.0
    for i in range(n, npad):
        c_[i, 0] = 1.0
    first = np.arange(n)
    for e in range(ga.shape[0]):
        a = ga[e]
        b = gb[e]
        g = gg[e]
        if a < n:
            c_[a, 0] += g
        if b < n:
            c_[b, 0] += g
        if a < n and b < n:
            lo = min(a, b)
            hi = max(a, b)
            c_[lo, hi - lo] -= g
            if lo < first[hi]:
                first[hi] = lo
    # reach[j]: the last row with a non-zero in columns <= j (the envelope; the factor fills only inside it)
    reach = np.arange(n)
    for r in range(n):
        if r > reach[first[r]]:
            reach[first[r]] = r
    for j in range(1, n):
        if reach[j - 1] > reach[j]:
            reach[j] = reach[j - 1]
    kd4 = (kd + 3) // 4 * 4
    for j0 in range(0, npad, 4):
        last = reach[min(j0 + 3, n - 1)]
        r0 = c_[j0]
        r1 = c_[j0 + 1]
        r2 = c_[j0 + 2]
        r3 = c_[j0 + 3]
        # the panel (columns j0 .. j0 + 3): its 4 x 4 diagonal block first, then the rows below it in one pass
        # (the same operations in the same order as scaling each column and applying it to the next ones)
        d0 = np.sqrt(r0[0])
        r0[0] = d0
        i0 = 1.0 / d0
        l10 = r0[1] * i0
        l20 = r0[2] * i0
        l30 = r0[3] * i0
        r0[1] = l10
        r0[2] = l20
        r0[3] = l30
        r1[0] -= l10 * l10
        r1[1] -= l10 * l20
        r1[2] -= l10 * l30
        r2[0] -= l20 * l20
        r2[1] -= l20 * l30
        r3[0] -= l30 * l30
        d1 = np.sqrt(r1[0])
        r1[0] = d1
        i1 = 1.0 / d1
        l21 = r1[1] * i1
        l31 = r1[2] * i1
        r1[1] = l21
        r1[2] = l31
        r2[0] -= l21 * l21
        r2[1] -= l21 * l31
        r3[0] -= l31 * l31
        d2 = np.sqrt(r2[0])
        r2[0] = d2
        i2 = 1.0 / d2
        l32 = r2[1] * i2
        r2[1] = l32
        r3[0] -= l32 * l32
        d3 = np.sqrt(r3[0])
        r3[0] = d3
        i3 = 1.0 / d3
        # rows j0 + 4 .. last (below them the panel is zero), rounded up to a multiple of 4 over zeros
        mb = min(kd4, (last - j0) // 4 * 4)
        s0 = r0[4:]
        s1 = r1[3:]
        s2 = r2[2:]
        s3 = r3[1:]
        for t in range(mb):
            x0 = s0[t] * i0
            x1 = (s1[t] - l10 * x0) * i1
            x2 = (s2[t] - l20 * x0 - l21 * x1) * i2
            x3 = (s3[t] - l30 * x0 - l31 * x1 - l32 * x2) * i3
            s0[t] = x0
            s1[t] = x1
            s2[t] = x2
            s3[t] = x3
        if j0 >= n:
            break
        end = min(j0 + 4 + kd, npad, last + 1)
        flat = buf[:need]
        col = j0 + 4
        while col < end:
            o = col - j0
            if col + 1 < end:
                # two target columns in one pass: column col + 1's rows, shifted by one, line up with column col's
                # (its element before the band lands in the unused last column of row col)
                a0 = r0[o]
                a1 = r1[o - 1]
                a2 = r2[o - 2]
                a3 = r3[o - 3]
                b0 = r0[o + 1]
                b1 = r1[o]
                b2 = r2[o - 1]
                b3 = r3[o - 2]
                m = (min(kd + 4 - o, last - col + 1) + 3) // 4 * 4
                rc = flat[col * width :]
                rd = flat[(col + 1) * width - 1 :]
                s0 = r0[o:]
                s1 = r1[o - 1 :]
                s2 = r2[o - 2 :]
                s3 = r3[o - 3 :]
                for t in range(m):
                    u0 = s0[t]
                    u1 = s1[t]
                    u2 = s2[t]
                    u3 = s3[t]
                    rc[t] -= a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3
                    rd[t] -= b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3
                col += 2
                continue
            l0 = r0[o]
            l1 = r1[o - 1]
            l2 = r2[o - 2]
            l3 = r3[o - 3]
            m = (min(kd + 4 - o, last - col + 1) + 3) // 4 * 4
            rc = c_[col]
            s0 = r0[o:]
            s1 = r1[o - 1 :]
            s2 = r2[o - 2 :]
            s3 = r3[o - 3 :]
            for t in range(m):
                rc[t] -= l0 * s0[t] + l1 * s1[t] + l2 * s2[t] + l3 * s3[t]
            col += 1
    return c_


@numba.njit(cache=True, nogil=True)
def _factor(res, node, n, kd, k, avg_res, buf):  # pragma: no cover - compiled
    """Cholesky factor of the window's grounded Laplacian (see :func:`_factor_branches`); ``kd`` from :func:`_bandwidth`."""
    ga, gb, gg, _ = _branches(res, node, n, k, avg_res)
    return _factor_branches(ga, gb, gg, n, kd, buf)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _factor_solve(c_, n, kd, x):  # pragma: no cover - compiled
    """Solve ``L L^T x = b`` in place (``x[:n]`` holds ``b`` on entry) with the factor of :func:`_factor_branches`.

    Four columns at a time, as the factor: their small triangle first, then one pass over the band below
    them (forward), or four dot products sharing one pass over the solution below them (backward).  The
    passes run over ``kd`` rounded up to a multiple of 4 (zeros of the factor's padding past the band).
    """
    npad = c_.shape[0]
    kd4 = (kd + 3) // 4 * 4
    w = np.zeros(npad + kd4 + 4)
    w[:n] = x[:n]
    for j0 in range(0, npad, 4):
        for q in range(4):
            j = j0 + q
            yq = w[j] / c_[j, 0]
            w[j] = yq
            for q2 in range(q + 1, 4):
                w[j0 + q2] -= c_[j, q2 - q] * yq
        y0 = w[j0]
        y1 = w[j0 + 1]
        y2 = w[j0 + 2]
        y3 = w[j0 + 3]
        if y0 == 0.0 and y1 == 0.0 and y2 == 0.0 and y3 == 0.0:
            continue
        s0 = c_[j0][4:]
        s1 = c_[j0 + 1][3:]
        s2 = c_[j0 + 2][2:]
        s3 = c_[j0 + 3][1:]
        ws = w[j0 + 4 :]
        for t in range(kd4):
            ws[t] -= y0 * s0[t] + y1 * s1[t] + y2 * s2[t] + y3 * s3[t]
    for j0 in range(npad - 4, -1, -4):
        s0 = c_[j0][4:]
        s1 = c_[j0 + 1][3:]
        s2 = c_[j0 + 2][2:]
        s3 = c_[j0 + 3][1:]
        ws = w[j0 + 4 :]
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for t in range(kd4):
            wt = ws[t]
            a0 += s0[t] * wt
            a1 += s1[t] * wt
            a2 += s2[t] * wt
            a3 += s3[t] * wt
        x3 = (w[j0 + 3] - a3) / c_[j0 + 3, 0]
        x2 = (w[j0 + 2] - a2 - c_[j0 + 2, 1] * x3) / c_[j0 + 2, 0]
        x1 = (w[j0 + 1] - a1 - c_[j0 + 1, 1] * x2 - c_[j0 + 1, 2] * x3) / c_[j0 + 1, 0]
        x0 = (w[j0] - a0 - c_[j0, 1] * x1 - c_[j0, 2] * x2 - c_[j0, 3] * x3) / c_[j0, 0]
        w[j0] = x0
        w[j0 + 1] = x1
        w[j0 + 2] = x2
        w[j0 + 3] = x3
    x[:n] = w[:n]


@numba.njit(cache=True, nogil=True)
def _injections(node, n, src):  # pragma: no cover - compiled
    nr, nc = node.shape
    inj = np.zeros(n)
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if 0 <= a < n:
                inj[a] = src[r, c]
    return inj


@numba.njit(cache=True, nogil=True)
def _add_branch_current(ga, gb, gg, node, n, volts, inj, out, corr, use_corr):  # pragma: no cover - compiled
    """Add Circuitscape's node current (half the branch and injected currents; the ground's branch sum) to ``out``.

    ``volts`` has ``n + 1`` entries, the ground's (0) last.
    """
    acc = np.zeros(n + 1)
    for e in range(ga.shape[0]):
        a = ga[e]
        b = gb[e]
        i = gg[e] * abs(volts[a] - volts[b])
        acc[a] += i
        acc[b] += i
    for i in range(n):
        acc[i] = 0.5 * (acc[i] + abs(inj[i]))
    nr, nc = node.shape
    for r in range(nr):
        for c in range(nc):
            a = node[r, c]
            if a >= 0:
                out[r, c] += acc[a] * corr[r, c] if use_corr else acc[a]


@numba.njit(cache=True, nogil=True)
def _add_current(res, node, n, volts, inj, k, avg_res, out, corr, use_corr):  # pragma: no cover - compiled
    """:func:`_add_branch_current` from the window's resistance and node ids."""
    ga, gb, gg, _ = _branches(res, node, n, k, avg_res)
    _add_branch_current(ga, gb, gg, node, n, volts, inj, out, corr, use_corr)


@numba.njit(cache=True, nogil=True)
def _solve_add_branches(c_, ga, gb, gg, node, n, kd, inj, out, corr, use_corr):  # pragma: no cover - compiled
    v = np.zeros(n + 1)
    v[:n] = inj
    _factor_solve(c_, n, kd, v)
    _add_branch_current(ga, gb, gg, node, n, v, inj, out, corr, use_corr)


@numba.njit(cache=True, nogil=True)
def _solve_add(c_, node, n, kd, res, inj, k, avg_res, out, corr, use_corr):  # pragma: no cover - compiled
    ga, gb, gg, _ = _branches(res, node, n, k, avg_res)
    _solve_add_branches(c_, ga, gb, gg, node, n, kd, inj, out, corr, use_corr)


@numba.njit(cache=True, nogil=True)
def _window_banded(res, src, ty, tx, k, avg_res, max_bw, out, corr, use_corr, buf):  # pragma: no cover - compiled
    """Solve one window with a banded factor and add its current to ``out``; -1 when the band is wider than ``max_bw``."""
    if np.isnan(res[ty, tx]):
        return 0
    node, n, ga, gb, gg, kd = _graph(res, ty, tx, k, avg_res)
    if n == 0:
        return 0
    inj = _injections(node, n, src)
    if not np.any(inj != 0.0):
        return 0
    if kd > max_bw:
        return -1
    c_ = _factor_branches(ga, gb, gg, n, kd, buf)
    _solve_add_branches(c_, ga, gb, gg, node, n, kd, inj, out, corr, use_corr)
    return 1


@numba.njit(cache=True, nogil=True)
def _padded_flood(res, ty, tx, k):  # pragma: no cover - compiled
    """Flood fill from ``(ty, tx)`` over the cells with data, on the grid padded by one cell of no data.

    Returns ``state`` (flat, ``(rows + 2) x stride``; 0: no data or padding, 1: data not reached, 2: reached),
    ``stride`` (``cols + 2``), the flat ``step`` of each of the 8 neighbour offsets, the start's flat index and
    the number of cells reached besides the start.  The padding spares the fill every bounds test.
    """
    nr, nc = res.shape
    stride = nc + 2
    state = np.zeros((nr + 2) * stride, np.uint8)
    for r in range(nr):
        base = (r + 1) * stride + 1
        for c in range(nc):
            if not np.isnan(res[r, c]):
                state[base + c] = 1
    step = np.empty(8, np.int64)
    for o in range(8):
        step[o] = _OFFSETS[o, 0] * stride + _OFFSETS[o, 1]
    stack = np.empty(nr * nc + 1, np.int64)
    start = (ty + 1) * stride + tx + 1
    state[start] = 2
    stack[0] = start
    top = 1
    n = 0
    while top > 0:
        top -= 1
        q = stack[top]
        for o in range(k):
            p = q + step[o]
            if state[p] == 1:
                state[p] = 2
                stack[top] = p
                top += 1
                n += 1
    return state, stride, step, start, n


@numba.njit(cache=True, nogil=True)
def _graph(res, ty, tx, k, avg_res):  # pragma: no cover - compiled
    """:func:`_flood` and :func:`_branches` in one: node ids, their count ``n``, the branches and the band width.

    The flood fill counts the cells it reaches, so the ground's id ``n`` is known before the numbering pass, which
    then takes each cell's branches to its neighbours already numbered (west, north-west, north, north-east): the
    same branches as :func:`_branches`, listed in another order.  The grid is padded by one cell of no data.
    """
    nr, nc = res.shape
    state, stride, step, start, n = _padded_flood(res, ty, tx, k)
    size = state.shape[0]
    ids = np.full(size, -1, np.int32)
    cond = np.empty(size)
    node = np.full((nr, nc), -1, np.int32)
    # the backward neighbours (already numbered): west, north (4 neighbours), north-west, north-east
    back = np.array([3, 0, 7, 4], dtype=np.int64)
    m_max = (k // 2) * (n + 1)
    ga = np.empty(m_max, np.int32)
    gb = np.empty(m_max, np.int32)
    gg = np.empty(m_max)
    m = 0
    kd = 0
    nxt = 0
    for r in range(nr):
        base = (r + 1) * stride + 1
        for c in range(nc):
            p = base + c
            if state[p] != 2:
                continue
            if p == start:
                a = n
            else:
                a = nxt
                nxt += 1
            ids[p] = a
            node[r, c] = a
            ra = res[r, c]
            ca = 1.0 / ra
            cond[p] = ca
            for qq in range(k // 2):
                o = back[qq]
                pb = p + step[o]
                b = ids[pb]
                if b < 0:
                    continue
                ga[m] = b
                gb[m] = a
                gg[m] = _g(cond[pb], ca, res[r + _OFFSETS[o, 0], c + _OFFSETS[o, 1]], ra, o >= 4, avg_res)
                m += 1
                if a < n and b < n and a - b > kd:
                    kd = a - b
    return node, n, ga[:m], gb[:m], gg[:m], kd


# --------------------------------------------------------------------------- eight interior windows at once
# The windows of a band that the grid's edge does not cut all have the same shape: the disc of radius
# ``reach`` around the target.  They are given one common circuit, every cell of the disc, where a cell with no
# data or outside the ground's component is an unknown of its own (diagonal 1, no branch, no injection): the
# other unknowns' solution is the same, their own is 0.  Eight such windows are then factorised and solved at
# once, the window being the innermost axis of every array (``[..., 0:8]``), so each operation of the banded
# Cholesky and of the solves is one 8-wide vector operation (:mod:`._vec8`) with no remainder loop; the
# scalar factor's update loops (~20 elements) ran mostly in their remainders.


@numba.njit(cache=True, nogil=True)
def _envelope(ga, gb, n):  # pragma: no cover - compiled
    """``last[j]``: the last row with a non-zero in columns <= ``j`` of the Laplacian of the branches (its envelope)."""
    first = np.arange(n)
    for e in range(ga.shape[0]):
        a = ga[e]
        b = gb[e]
        if a < n and b < n:
            lo = min(a, b)
            hi = max(a, b)
            if lo < first[hi]:
                first[hi] = lo
    last = np.arange(n)
    for r in range(n):
        if r > last[first[r]]:
            last[first[r]] = r
    for j in range(1, n):
        if last[j - 1] > last[j]:
            last[j] = last[j - 1]
    return last


@numba.njit(cache=True, nogil=True)
def _disc_circuit(reach, k):  # pragma: no cover - compiled
    """The circuit shared by the windows of radius ``reach`` that the grid's edge does not cut.

    Every cell of the disc is a node: ``node`` (``2 reach + 1`` square; -1 outside the disc) numbers them in
    row-major order, the centre (the ground) last, ``n``; ``cell_of[a]`` is node ``a``'s flat cell.  The branches
    ``ga, gb`` (node ids), ``ca, cb`` (their cells) and ``wd`` (1, or 1 / sqrt 2 on diagonals) join neighbours
    of the disc, each once; ``kd`` is the band width and ``last`` the envelope (:func:`_envelope`).
    """
    full = 2 * reach + 1
    node = np.full((full, full), -1, np.int32)
    n = 0
    for r in range(full):
        for c in range(full):
            if (r - reach) ** 2 + (c - reach) ** 2 <= reach * reach and not (r == reach and c == reach):
                node[r, c] = n
                n += 1
    node[reach, reach] = n
    cell_of = np.empty(n + 1, np.int64)
    for r in range(full):
        for c in range(full):
            if node[r, c] >= 0:
                cell_of[node[r, c]] = r * full + c
    m_max = (k // 2) * (n + 1)
    ga = np.empty(m_max, np.int32)
    gb = np.empty(m_max, np.int32)
    ca = np.empty(m_max, np.int64)
    cb = np.empty(m_max, np.int64)
    wd = np.empty(m_max)
    m = 0
    kd = 0
    for r in range(full):
        for c in range(full):
            a = node[r, c]
            if a < 0:
                continue
            for q in range(k // 2):
                o = _FORWARD[q]
                rr = r + _OFFSETS[o, 0]
                cc = c + _OFFSETS[o, 1]
                if not (0 <= rr < full and 0 <= cc < full):
                    continue
                b = node[rr, cc]
                if b < 0:
                    continue
                ga[m] = a
                gb[m] = b
                ca[m] = r * full + c
                cb[m] = rr * full + cc
                wd[m] = 0.7071067811865476 if o >= 4 else 1.0
                m += 1
                if a < n and b < n and abs(a - b) > kd:
                    kd = abs(a - b)
    return node, n, cell_of, ga[:m], gb[:m], ca[:m], cb[:m], wd[:m], kd, _envelope(ga[:m], gb[:m], n)


@numba.njit(cache=True)
def _batch_floats(reach: int, k: int) -> int:  # pragma: no cover - compiled
    """Floats of the work arrays of a band's batches of windows (:func:`_factor8` and its lanes) at ``reach``."""
    full = 2 * reach + 1
    cells = full * full
    n = cells  # at most
    width = 2 * reach + 3 + _PAD
    return LANES * ((n + 4) * width + (k // 2) * (n + 1) + 3 * cells + 3 * (n + 2 * width + 8))


@numba.njit(cache=True, nogil=True)
def _lane_fill(res, src, ty, tx, k, lane, node_cells, n, avg_res, lc, lr, lm, rhs):  # pragma: no cover - compiled
    """Put one window in lane ``lane`` of a batch; True when it injects current into the ground's component.

    ``res`` (NaN: no data) and ``src`` are the window's (``2 reach + 1`` square); the flood fill from the ground
    ``(ty, tx)`` finds its component.  For the nodes' cells (``node_cells``, the ground's last): ``lm`` 1 in the
    component, 0 off it, and ``lc`` the conductance (0 off the component) or, with ``avg_res``, ``lr`` the
    resistance (1 off it); ``rhs`` (rows x 8): the injection of each node ``< n``, 0 off the component.
    """
    nc = res.shape[1]
    state, stride, _step, _start, _n = _padded_flood(res, ty, tx, k)
    any_in = False
    for a in range(n + 1):
        i = node_cells[a]
        r = i // nc
        c = i - r * nc
        if state[(r + 1) * stride + c + 1] == 2:
            lm[i, lane] = 1.0
            if avg_res:
                lr[i, lane] = res[r, c]
            else:
                lc[i, lane] = 1.0 / res[r, c]
            x = src[r, c]
        else:
            lm[i, lane] = 0.0
            if avg_res:
                lr[i, lane] = 1.0
            else:
                lc[i, lane] = 0.0
            x = 0.0
        if a < n:
            rhs[a, lane] = x
            if x != 0.0:
                any_in = True
    return any_in


@numba.njit(cache=True, nogil=True)
def _lane_clear(lane, lc, lr, lm, rhs):  # pragma: no cover - compiled
    """An empty lane: every cell off the circuit, no injection (its unknowns are decoupled, its solution 0)."""
    lc[:, lane] = 0.0
    lr[:, lane] = 1.0
    lm[:, lane] = 0.0
    rhs[:, lane] = 0.0


@numba.njit(cache=True, nogil=True)
def _factor8(lc, lr, lm, ga, gb, ca, cb, wd, cell_of, n, kd, last, avg_res, G, F):  # pragma: no cover - compiled
    """Eight windows' Cholesky factors at once (:func:`_factor_branches`'s algorithm, each scalar a vec8).

    Assembles the grounded Laplacians of the common circuit's branches with each lane's conductances
    (``G[e]``: branch ``e``'s, 0 unless both ends are in the lane's component; Circuitscape's conductance as
    :func:`~leopardgeo.kernels.circuit._compiled._g`, the same floating-point operations), a diagonal 1 for the
    lanes' decoupled unknowns, then factorises them in ``F`` (rows x ``kd + 2 + _PAD`` x 8; ``F[j, d, l] =
    L[j + d, j]`` of lane ``l``) in panels of 4 columns, each panel updating the band below it two target
    columns per pass, down to the envelope ``last``.
    """
    width = F.shape[1]
    npad = (n + 3) // 4 * 4
    w8 = width * 8
    F[:npad] = 0.0
    half = vsplat(0.5)
    for e in range(ga.shape[0]):
        a = ga[e]
        b = gb[e]
        xa = ca[e] * 8
        xb = cb[e] * 8
        if avg_res:
            g = vdiv(vsplat(wd[e]), vmul(half, vadd(vload(lr, xa), vload(lr, xb))))
        else:
            g = vmul(vsplat(wd[e] * 0.5), vadd(vload(lc, xa), vload(lc, xb)))
        g = vmul(vmul(g, vload(lm, xa)), vload(lm, xb))
        vstore(G, e * 8, g)
        if a < n:
            p = a * w8
            vstore(F, p, vadd(vload(F, p), g))
        if b < n:
            p = b * w8
            vstore(F, p, vadd(vload(F, p), g))
        if a < n and b < n:
            p = (min(a, b) * width + abs(a - b)) * 8
            vstore(F, p, vsub(vload(F, p), g))
    one = vsplat(1.0)
    for i in range(npad):
        p = i * w8
        if i < n:  # a decoupled unknown (mask 0, no branch) gets 1
            vstore(F, p, vadd(vload(F, p), vsub(one, vload(lm, cell_of[i] * 8))))
        else:
            vstore(F, p, one)
    for j0 in range(0, npad, 4):
        lst = last[min(j0 + 3, n - 1)]
        p0 = j0 * w8
        p1 = p0 + w8
        p2 = p1 + w8
        p3 = p2 + w8
        # the panel's 4 x 4 diagonal block
        d0 = vsqrt(vload(F, p0))
        i0 = vdiv(one, d0)
        l10 = vmul(vload(F, p0 + 8), i0)
        l20 = vmul(vload(F, p0 + 16), i0)
        l30 = vmul(vload(F, p0 + 24), i0)
        a11 = vsub(vload(F, p1), vmul(l10, l10))
        a21 = vsub(vload(F, p1 + 8), vmul(l10, l20))
        a31 = vsub(vload(F, p1 + 16), vmul(l10, l30))
        a22 = vsub(vload(F, p2), vmul(l20, l20))
        a32 = vsub(vload(F, p2 + 8), vmul(l20, l30))
        a33 = vsub(vload(F, p3), vmul(l30, l30))
        d1 = vsqrt(a11)
        i1 = vdiv(one, d1)
        l21 = vmul(a21, i1)
        l31 = vmul(a31, i1)
        a22 = vsub(a22, vmul(l21, l21))
        a32 = vsub(a32, vmul(l21, l31))
        a33 = vsub(a33, vmul(l31, l31))
        d2 = vsqrt(a22)
        i2 = vdiv(one, d2)
        l32 = vmul(a32, i2)
        a33 = vsub(a33, vmul(l32, l32))
        d3 = vsqrt(a33)
        i3 = vdiv(one, d3)
        vstore(F, p0, d0)
        vstore(F, p0 + 8, l10)
        vstore(F, p0 + 16, l20)
        vstore(F, p0 + 24, l30)
        vstore(F, p1, d1)
        vstore(F, p1 + 8, l21)
        vstore(F, p1 + 16, l31)
        vstore(F, p2, d2)
        vstore(F, p2 + 8, l32)
        vstore(F, p3, d3)
        # rows j0 + 4 .. lst (below them the panel is zero): column q's element of row j0 + 4 + t at
        # p_q + (4 - q + t) * 8
        for t in range(min(kd, lst - j0 - 3)):
            q = t * 8
            x0 = vmul(vload(F, p0 + 32 + q), i0)
            x1 = vmul(vsub(vload(F, p1 + 24 + q), vmul(l10, x0)), i1)
            x2 = vmul(vsub(vsub(vload(F, p2 + 16 + q), vmul(l20, x0)), vmul(l21, x1)), i2)
            x3 = vmul(vsub(vsub(vsub(vload(F, p3 + 8 + q), vmul(l30, x0)), vmul(l31, x1)), vmul(l32, x2)), i3)
            vstore(F, p0 + 32 + q, x0)
            vstore(F, p1 + 24 + q, x1)
            vstore(F, p2 + 16 + q, x2)
            vstore(F, p3 + 8 + q, x3)
        if j0 + 4 >= n:
            break
        end = min(j0 + 4 + kd, n, lst + 1)
        col = j0 + 4
        while col < end:
            o = col - j0
            m = min(kd + 4 - o, lst - col + 1)
            s0 = p0 + o * 8
            s1 = p1 + (o - 1) * 8
            s2 = p2 + (o - 2) * 8
            s3 = p3 + (o - 3) * 8
            a0 = vload(F, s0)
            a1 = vload(F, s1)
            a2 = vload(F, s2)
            a3 = vload(F, s3)
            rc = col * w8
            if col + 3 < end:
                # four target columns per pass: column col + i's rows, shifted by i, line up with column col's (its
                # i elements before the band land in unused slots at the end of the rows above it)
                b0 = vload(F, s0 + 8)
                b1 = vload(F, s1 + 8)
                b2 = vload(F, s2 + 8)
                b3 = vload(F, s3 + 8)
                c0 = vload(F, s0 + 16)
                c1 = vload(F, s1 + 16)
                c2 = vload(F, s2 + 16)
                c3 = vload(F, s3 + 16)
                e0 = vload(F, s0 + 24)
                e1 = vload(F, s1 + 24)
                e2 = vload(F, s2 + 24)
                e3 = vload(F, s3 + 24)
                rd = rc + w8 - 8
                re = rd + w8 - 8
                rf = re + w8 - 8
                for t in range(m):
                    q = t * 8
                    u0 = vload(F, s0 + q)
                    u1 = vload(F, s1 + q)
                    u2 = vload(F, s2 + q)
                    u3 = vload(F, s3 + q)
                    x = vfma(a3, u3, vfma(a2, u2, vfma(a1, u1, vmul(a0, u0))))
                    y = vfma(b3, u3, vfma(b2, u2, vfma(b1, u1, vmul(b0, u0))))
                    z = vfma(c3, u3, vfma(c2, u2, vfma(c1, u1, vmul(c0, u0))))
                    zz = vfma(e3, u3, vfma(e2, u2, vfma(e1, u1, vmul(e0, u0))))
                    vstore(F, rc + q, vsub(vload(F, rc + q), x))
                    vstore(F, rd + q, vsub(vload(F, rd + q), y))
                    vstore(F, re + q, vsub(vload(F, re + q), z))
                    vstore(F, rf + q, vsub(vload(F, rf + q), zz))
                col += 4
                continue
            if col + 1 < end:
                # two target columns per pass: column col + 1's rows, shifted by one, line up with column col's
                # (its element before the band lands in the unused last slot of row col)
                b0 = vload(F, s0 + 8)
                b1 = vload(F, s1 + 8)
                b2 = vload(F, s2 + 8)
                b3 = vload(F, s3 + 8)
                rd = rc + w8 - 8
                for t in range(m):
                    q = t * 8
                    u0 = vload(F, s0 + q)
                    u1 = vload(F, s1 + q)
                    u2 = vload(F, s2 + q)
                    u3 = vload(F, s3 + q)
                    x = vfma(a3, u3, vfma(a2, u2, vfma(a1, u1, vmul(a0, u0))))
                    y = vfma(b3, u3, vfma(b2, u2, vfma(b1, u1, vmul(b0, u0))))
                    vstore(F, rc + q, vsub(vload(F, rc + q), x))
                    vstore(F, rd + q, vsub(vload(F, rd + q), y))
                col += 2
                continue
            for t in range(m):
                q = t * 8
                x = vfma(a3, vload(F, s3 + q), vfma(a2, vload(F, s2 + q), vfma(a1, vload(F, s1 + q), vmul(a0, vload(F, s0 + q)))))
                vstore(F, rc + q, vsub(vload(F, rc + q), x))
            col += 1


@numba.njit(cache=True, nogil=True)
def _solve8(F, width, n, kd, last, w):  # pragma: no cover - compiled
    """Solve ``L L^T x = b`` for eight right-hand sides at once, in place in ``w`` (rows x 8; ``b`` in rows < ``n``).

    ``F`` is eight lanes' factors (:func:`_factor8`, rows x ``width`` x 8), or one factor shared by the lanes
    (:func:`_factor_branches`'s, flattened, ``width`` floats a row).  ``w`` has at least ``n`` rounded up to 4
    rows, zero from row ``n``.  Four columns at a time, as the factor, down to the envelope ``last`` (forward; a
    panel whose four values are zero in every lane is skipped), then four dot products sharing one pass (backward).
    """
    npad = (n + 3) // 4 * 4
    for j0 in range(0, npad, 4):
        e0 = j0 * width
        e1 = e0 + width
        e2 = e1 + width
        e3 = e2 + width
        q0 = j0 * 8
        y0 = vdiv(vload(w, q0), vlane(F, e0))
        w1 = vsub(vload(w, q0 + 8), vmul(vlane(F, e0 + 1), y0))
        w2 = vsub(vload(w, q0 + 16), vmul(vlane(F, e0 + 2), y0))
        w3 = vsub(vload(w, q0 + 24), vmul(vlane(F, e0 + 3), y0))
        y1 = vdiv(w1, vlane(F, e1))
        w2 = vsub(w2, vmul(vlane(F, e1 + 1), y1))
        w3 = vsub(w3, vmul(vlane(F, e1 + 2), y1))
        y2 = vdiv(w2, vlane(F, e2))
        w3 = vsub(w3, vmul(vlane(F, e2 + 1), y2))
        y3 = vdiv(w3, vlane(F, e3))
        vstore(w, q0, y0)
        vstore(w, q0 + 8, y1)
        vstore(w, q0 + 16, y2)
        vstore(w, q0 + 24, y3)
        if not (vany(y0) or vany(y1) or vany(y2) or vany(y3)):
            continue
        for t in range(min(kd, last[min(j0 + 3, n - 1)] - j0 - 3)):
            q = q0 + 32 + t * 8
            x = vmul(vlane(F, e0 + 4 + t), y0)
            x = vfma(vlane(F, e3 + 1 + t), y3, vfma(vlane(F, e2 + 2 + t), y2, vfma(vlane(F, e1 + 3 + t), y1, x)))
            vstore(w, q, vsub(vload(w, q), x))
    zero = vsplat(0.0)
    for j0 in range(npad - 4, -1, -4):
        e0 = j0 * width
        e1 = e0 + width
        e2 = e1 + width
        e3 = e2 + width
        q0 = j0 * 8
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        for t in range(min(kd, last[min(j0 + 3, n - 1)] - j0 - 3)):
            wt = vload(w, q0 + 32 + t * 8)
            a0 = vfma(vlane(F, e0 + 4 + t), wt, a0)
            a1 = vfma(vlane(F, e1 + 3 + t), wt, a1)
            a2 = vfma(vlane(F, e2 + 2 + t), wt, a2)
            a3 = vfma(vlane(F, e3 + 1 + t), wt, a3)
        x3 = vdiv(vsub(vload(w, q0 + 24), a3), vlane(F, e3))
        x2 = vdiv(vsub(vsub(vload(w, q0 + 16), a2), vmul(vlane(F, e2 + 1), x3)), vlane(F, e2))
        x1 = vdiv(vsub(vsub(vsub(vload(w, q0 + 8), a1), vmul(vlane(F, e1 + 1), x2)), vmul(vlane(F, e1 + 2), x3)), vlane(F, e1))
        x0 = vsub(vsub(vsub(vload(w, q0), a0), vmul(vlane(F, e0 + 1), x1)), vmul(vlane(F, e0 + 2), x2))
        x0 = vsub(x0, vmul(vlane(F, e0 + 3), x3))
        vstore(w, q0, vdiv(x0, vlane(F, e0)))
        vstore(w, q0 + 8, x1)
        vstore(w, q0 + 16, x2)
        vstore(w, q0 + 24, x3)


@numba.njit(cache=True, nogil=True)
def _currents8(ga, gb, G, n, v, rhs, acc):  # pragma: no cover - compiled
    """Eight lanes' node currents (:func:`_add_branch_current`'s) in ``acc`` (n + 1 rows x 8; the ground's last).

    ``G`` is each branch's conductance per lane (branches x 8) or shared (1-D); ``v`` the solution (row ``n``
    zero: the ground), ``rhs`` the injections.
    """
    acc[: n + 1] = 0.0
    for e in range(ga.shape[0]):
        pa = ga[e] * 8
        pb = gb[e] * 8
        i = vmul(vlane(G, e), vabs(vsub(vload(v, pa), vload(v, pb))))
        vstore(acc, pa, vadd(vload(acc, pa), i))
        vstore(acc, pb, vadd(vload(acc, pb), i))
    half = vsplat(0.5)
    for a in range(n):
        p = a * 8
        vstore(acc, p, vmul(half, vadd(vload(acc, p), vabs(vload(rhs, p)))))


@numba.njit(cache=True, nogil=True)
def _paint8(acc, n, node_cells, full, lm, masked, count, ly, lx, out, corr, use_corr):  # pragma: no cover - compiled
    """Add lanes ``0 .. count - 1``'s node currents to ``out`` at their windows (top-left ``ly[l], lx[l]``).

    Node ``a`` (ground included) is cell ``node_cells[a]`` of the ``full`` square window; with ``masked``, only
    the cells in the lane's component (``lm``).  In lane order, each lane's cells in node order.
    """
    for lane in range(count):
        y = ly[lane]
        x = lx[lane]
        for a in range(n + 1):
            i = node_cells[a]
            if masked and lm[i, lane] == 0.0:
                continue
            r = i // full
            c = i % full
            out[y + r, x + c] += acc[a, lane] * corr[r, c] if use_corr else acc[a, lane]
