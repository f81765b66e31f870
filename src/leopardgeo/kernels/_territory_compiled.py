"""The compiled kernel of territory packing (:mod:`leopardgeo.kernels.territory_packing` drives it).

One territory grown from one seed by a Dijkstra search that stops at an accumulated resource; see the
note below for why it is written by hand.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Highest quality bin (quality 1) and the key stride that orders the frontier heap by bin, then first in first out.
_MAX_BIN = 20
_BIN_STRIDE = 2.0**40

# Outcomes of one growth.
_MET, _BEYOND_COST, _TOO_LARGE, _EXHAUSTED = 0, 1, 2, 3


# --------------------------------------------------------------------------- compiled kernel
# Why hand-written: each territory is a Dijkstra search from ONE seed that stops
# as soon as the cells settled so far hold a resource target (sum of quality x
# area), or at a cost radius or an area cap, and that may only enter cells no
# territory of the same sex has claimed yet -- a set that changes after every
# accepted territory.  Library searches (scipy.sparse.csgraph.dijkstra,
# skimage.graph.MCP, leopardgeo.kernels.costdist) run to a fixed cost limit over a
# fixed graph and return full-grid arrays; none stops at an accumulated
# resource, and running them per seed would cost a full grid per seed (10^5
# seeds x 10^6 cells).  The kernel below touches only the few hundred cells of
# each growth: the full-grid scratch arrays (``dist``, ``state``) are
# allocated once and reset cell by cell from the ``touched`` list after every
# seed, and the heap, touched and member lists have a fixed capacity derived
# from the area cap (pushes <= 1 + neighbours x settled cells).


@njit(cache=True, nogil=True)
def _heap_push(hkey, hcell, size, key, cell):  # pragma: no cover - compiled
    """Push ``(key, cell)`` on the binary min-heap of ``size`` entries; return the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hkey[p] <= key:
            break
        hkey[i] = hkey[p]
        hcell[i] = hcell[p]
        i = p
    hkey[i] = key
    hcell[i] = cell
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(hkey, hcell, size):  # pragma: no cover - compiled
    """Pop the least entry; return ``(key, cell, new size)``."""
    key = hkey[0]
    cell = hcell[0]
    size -= 1
    if size > 0:
        lk = hkey[size]
        lc = hcell[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and hkey[child + 1] < hkey[child]:
                child += 1
            if hkey[child] >= lk:
                break
            hkey[i] = hkey[child]
            hcell[i] = hcell[child]
            i = child
        hkey[i] = lk
        hcell[i] = lc
    return key, cell, size


@njit(cache=True, nogil=True)
def _pack_one_sex(
    quality,
    res,
    eligible,
    order,
    qbin,
    claimed,
    failed,
    dist,
    state,
    hkey,
    hcell,
    touched,
    members,
    n_cols,
    drow,
    dcol,
    step_m,
    cell_area_ha,
    need_ha,
    min_cells,
    max_cells,
    max_cost_m,
    first_id,
    out_cells,
    out_qsum,
    fkey,
    fcell,
    queued,
):  # pragma: no cover - compiled
    """Pack the territories of one sex; return how many were accepted.

    Flat (raveled) rasters: ``quality`` and ``res`` (float64), ``eligible``
    (uint8), ``claimed`` (int32, written: territory id, 0 = free) and
    ``failed`` (uint8, written).  ``dist`` (inf) and ``state`` (0) are scratch
    and come back as they went in.  Seeds are tried in ``order``.  Territory
    ``k`` gets id ``first_id + k``; its cell count and quality sum go to
    ``out_cells[k]`` and ``out_qsum[k]``.
    """
    n = quality.size
    n_rows = n // n_cols
    n_nb = drow.size
    target = need_ha * (1.0 - 1e-9)
    n_terr = 0
    n_front = 0  # frontier heap: free cells next to accepted territories, best bin first, FIFO within a bin
    n_pushed = 0
    i_order = 0
    n_order = order.size
    while True:
        # the best quality bin left: advance the random order past the cells already used
        while i_order < n_order and (claimed[order[i_order]] != 0 or failed[order[i_order]] != 0):
            i_order += 1
        if i_order >= n_order:
            break
        s = order[i_order]
        # among seeds of that bin, prefer one on the frontier of the territories placed so far
        while n_front > 0:
            fc = fcell[0]
            if claimed[fc] != 0 or failed[fc] != 0:
                _k, fc, n_front = _heap_pop(fkey, fcell, n_front)
                continue
            if qbin[fc] == qbin[s]:
                s = fc
            break
        size = _heap_push(hkey, hcell, 0, 0.0, s)
        dist[s] = 0.0
        state[s] = 1
        touched[0] = s
        n_touched = 1
        n_mem = 0
        qsum = 0.0
        outcome = _EXHAUSTED
        while size > 0:
            d, c, size = _heap_pop(hkey, hcell, size)
            if state[c] == 2 or d > dist[c]:
                continue  # stale entry: the cell was settled or improved since
            if d > max_cost_m:
                outcome = _BEYOND_COST
                break
            if n_mem >= max_cells:
                outcome = _TOO_LARGE
                break
            state[c] = 2
            members[n_mem] = c
            n_mem += 1
            qsum += quality[c]
            if qsum * cell_area_ha >= target:
                outcome = _MET
                break
            r = c // n_cols
            col = c - r * n_cols
            rc = res[c]
            for k in range(n_nb):
                rr = r + drow[k]
                cc = col + dcol[k]
                if rr < 0 or rr >= n_rows or cc < 0 or cc >= n_cols:
                    continue
                nb = rr * n_cols + cc
                if eligible[nb] == 0 or claimed[nb] != 0 or state[nb] == 2:
                    continue
                nd = d + step_m[k] * 0.5 * (rc + res[nb])
                if nd < dist[nb]:
                    if state[nb] == 0:
                        state[nb] = 1
                        touched[n_touched] = nb
                        n_touched += 1
                    dist[nb] = nd
                    size = _heap_push(hkey, hcell, size, nd, nb)
        if outcome == _MET and n_mem >= min_cells:
            tid = first_id + n_terr
            for i in range(n_mem):
                claimed[members[i]] = tid
            for i in range(n_mem):  # queue the free cells bordering the new territory as preferred seeds
                c = members[i]
                r = c // n_cols
                col = c - r * n_cols
                for k in range(n_nb):
                    rr = r + drow[k]
                    cc = col + dcol[k]
                    if rr < 0 or rr >= n_rows or cc < 0 or cc >= n_cols:
                        continue
                    nb = rr * n_cols + cc
                    if eligible[nb] == 0 or claimed[nb] != 0 or failed[nb] != 0 or queued[nb] != 0:
                        continue
                    queued[nb] = 1
                    n_front = _heap_push(fkey, fcell, n_front, float(_MAX_BIN - qbin[nb]) * _BIN_STRIDE + n_pushed, nb)
                    n_pushed += 1
            out_cells[n_terr] = n_mem
            out_qsum[n_terr] = qsum
            n_terr += 1
        elif outcome == _EXHAUSTED:
            for i in range(n_mem):  # the whole free group holds too little: no seed in it can succeed
                failed[members[i]] = 1
        else:
            failed[s] = 1
        for i in range(n_touched):
            t = touched[i]
            dist[t] = np.inf
            state[t] = 0
    return n_terr
