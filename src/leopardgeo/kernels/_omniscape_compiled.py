"""Compiled solve of one Omniscape window: flood fill, banded Cholesky, node currents.

Numba kernels used by :mod:`leopardgeo.kernels.omniscape`.  A window's grounded Laplacian is banded
in row-major order (band about twice the radius), so a right-looking banded Cholesky in panels of
four columns, restricted to the matrix's envelope, factors it without any sparse-matrix machinery.
A window's circuit is first reduced to a list of branches (node pair and conductance, each branch
once), which the factor's assembly and the node currents both read.
Written by hand because no installed library factors many small banded systems from compiled code
without a Python call per window.
"""

from __future__ import annotations

import numba
import numpy as np

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
def _graph(res, ty, tx, k, avg_res):  # pragma: no cover - compiled
    """:func:`_flood` and :func:`_branches` in one: node ids, their count ``n``, the branches and the band width.

    The flood fill counts the cells it reaches, so the ground's id ``n`` is known before the numbering pass, which
    then takes each cell's branches to its neighbours already numbered (west, north-west, north, north-east): the
    same branches as :func:`_branches`, listed in another order.  The grid is padded by one cell of no data.
    """
    nr, nc = res.shape
    stride = nc + 2
    size = (nr + 2) * stride
    state = np.zeros(size, np.uint8)  # 0: not in the circuit, 1: valid, 2: reached
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
