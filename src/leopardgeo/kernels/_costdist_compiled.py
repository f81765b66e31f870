"""The compiled cost-distance search behind :mod:`leopardgeo.kernels.costdist`.

A multi-source grid Dijkstra (bucket queue, binary-heap fallback) in numba that writes costs,
allocation and back-links straight into the output rasters, plus the compiled scans of the inputs.
Why it is written by hand, and why its costs are exact whatever the queue, is set out below.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

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
# a free list -- sequential, cache-friendly memory, no per-cell index.  An entry
# holds only the cell id, so a cell lowered to a cost in the same later bucket
# as its entry gets no second one: that entry, not yet popped, reads the lower
# cost when it is (a second entry would expand the cell twice).  All live
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


@njit(cache=True, nogil=True, inline="always")
def _prefetch_block(arr, w, nc):  # pragma: no cover - compiled
    """Prefetch the 3 x 3 cells around flat cell ``w`` of rows ``nc`` wide: each row's three cells, at both ends.

    Three cells of a row can straddle two cache lines; prefetching the row's first and last cell fetches both
    (measured: 6 % less time in the corridors' searches than one prefetch per row at its middle cell).
    """
    _prefetch(arr, w - nc - 1)
    _prefetch(arr, w - nc + 1)
    _prefetch(arr, w - 1)
    _prefetch(arr, w + 1)
    _prefetch(arr, w + nc - 1)
    _prefetch(arr, w + nc + 1)


#: Rows ahead that the passes over a window of a larger raster prefetch, a cache line (8 cells) at a time: such a
#: window is read as many short runs, one per row, whose lines the hardware fetches only once it has seen a few of
#: them (measured on the demo's corridors at 500 m: the passes take 25-30 % less time).  Written out in each loop:
#: a compiled helper holding the ``j & 7`` test made the loop three times slower.
_ROWS_AHEAD = 4


@intrinsic
def _load_f64(typingctx, address, index):  # pragma: no cover - compiled
    """The float64 ``index`` elements after ``address`` (a C-contiguous float64 array's data, kept alive by the caller)."""
    if not (isinstance(address, types.Integer) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        base = builder.inttoptr(args[0], ir.DoubleType().as_pointer())
        return builder.load(builder.gep(base, [args[1]]))

    return types.float64(address, index), codegen


#: Slots of the search state kept between calls of :func:`_search` (it returns to grow its queue); the last
#: four: the bounding box of the expanded cells (rows, columns, ends inclusive).
_ST_SCAN, _ST_CUR, _ST_SLOT, _ST_FREE, _ST_NFREE, _ST_LIVE, _ST_SIZE, _ST_R0, _ST_R1, _ST_C0, _ST_C1 = range(11)
_N_STATE = 11


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
    srcs,
    want_back,
    prune,
    h1,
    r1,
    pt_addr,
    pt_geo,
    pt_reach,
    thr,
    thr_box,
    thr_st,
    labf,
    tg_slot,
    tg_h1,
    tg_a,
    tg_b,
    tg_rest,
    reached,
    floors,
    gam,
    learned,
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

    ``srcs``: the flat ids of the source cells (their cost already 0), expanded first in
    that order; empty: found by a scan of ``cost`` for 0.  Without ``want_back`` the
    loop leaves ``back`` alone (it may then be a dummy).  ``state`` keeps the bounding
    box of the expanded cells; every cell given a cost lies within ``margin`` of it.

    ``h1[u]`` and ``labf[u]`` below stand for ``h1[2 * u]`` and ``labf[2 * u + 1]``: a float32 and an
    int32 view of one buffer (:func:`_pack_bound`) that holds a cell's two values in one 8-byte slot, so
    that the search reads one cache line per cell it takes, not two (``h1`` empty: ``labf`` alone, the
    same layout).  ``h1`` there is rounded down to float32: a lower bound where the tests need one
    (``d + h1 <= r1``, the least ``d + h1`` of ``learned``), and :func:`_above` of it an upper bound where
    they need one (``d - h1`` against ``gam``, ``ub = d + h1``).

    With ``prune`` a popped cell ``u`` of cost ``d`` is expanded only if
    ``d + h1[u] <= r1`` (``h1`` flat over the grid; empty: ``h1 = 0``) or, for one of the
    rectangles ``t``, ``u`` lies in its box and ``d + (g_t[u] - pt_reach[t]) <= 0``: ``g_t``
    is a C-contiguous float64 raster at ``pt_addr[t]`` (its data's address; the caller keeps it
    alive), ``pt_geo[t]`` its first cell's row and column, rows, columns and the box where it
    is tested (rows, columns, ends exclusive, inside the raster).  Cells that fail keep the
    cost they were given (no lower than their least cost) and give none to their neighbours: see
    :func:`leopardgeo.kernels.costdist.single_source_window` for when the costs that
    matter stay exact.  ``thr_box[k]`` (rows, columns, ends inclusive) grows to hold
    every cell expanded at a cost ``<= thr[k]``.  Not cell by cell for each ``k``: while every
    cell expanded so far was within ``thr[k]`` (``thr_st[k, 0] == 1``, "open"), its box is that
    of all expanded cells, taken when the first cell beyond ``thr[k]`` comes (or at the end).
    From then on only cells popped from that same bucket can still be within ``thr[k]``
    (``thr_st[k, 1]``; a later bucket holds only costs above that first cell's, and ``thr[k]``
    never rises), so those are added one by one until the queue leaves the bucket; with the heap,
    none (its costs come in order).  The caller sets ``thr_st`` to ``(1, -1)`` per threshold.

    With partners (``reached`` not empty: one partner per ``thr[k]``; ``tg_slot[l]`` the partner
    of label ``l``, -1 for none; ``labf`` a flat label raster) the thresholds tighten as the
    search goes.  A popped cell ``u`` of cost ``d`` with ``labf[u]`` the label of partner ``k``
    shows that a path to that partner costs at most ``ub = d`` (``labf``: the source labels, 0 off
    them) or, with ``tg_h1``, ``ub = d + h1[u]`` (``labf``: the allocation of ``h1``, which must
    then be exactly the cost distance from the labelled sources, so that ``h1[u]`` is the cost
    on from ``u`` to ``labf[u]``: a search reaching a partner's allocation learns a bound long
    before it reaches the partner).  Then ``reached[k] = min(reached[k], ub)`` and ``thr[k]``
    becomes ``min(thr[k], tg_a * ub + tg_b)``; the cutoff is ``min(max_cost, max(thr))`` and,
    with ``prune``, ``r1`` is ``min(r1, max(thr[k] for the k with tg_rest[k]))``.  Cells
    given a cost before a cutoff came down keep it (above the new cutoff, no lower than
    their least cost); every cell whose least cost is within the final cutoff gets it.

    With partners, ``tg_h1`` and ``floors`` not empty (``floors[a, k]``: a lower bound on the
    least cost between the sources of label ``a`` and partner ``k``), a cell ``u`` that passes
    ``d + h1[u] <= r1`` is expanded only if also ``d - h1[u] <= gam[labf[u]]``, with ``gam[a]`` the
    largest ``thr[k] - floors[a, k]`` over the ``k`` with ``tg_rest[k]`` (kept in ``gam`` as the
    thresholds come down).  Why that loses no cell of a corridor: see
    :func:`leopardgeo.kernels.costdist.single_source_window`.  ``learned`` (empty: not kept; else
    one slot plus one per label, filled by the caller with inf) gets in slot 0 the least ``d + h1[u]``
    over the cells not expanded for failing the tests, and in slot ``1 + l`` the least cost at which a
    cell of label ``l`` (``h1 == 0``: with ``tg_h1``, a source cell) was taken from the queue.

    Array indices are cast to unsigned integers so that numba leaves out the
    negative-index wrap-around.
    """
    nr, nc = res.shape
    n = nr * nc
    use_list = srcs.size > 0
    n_scan = srcs.size if use_list else n
    has_h1 = h1.size > 0
    n_pt = pt_reach.size
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
    br0, br1, bc0, bc1 = state[_ST_R0], state[_ST_R1], state[_ST_C0], state[_ST_C1]
    cand = np.empty(n_off, dtype=np.float64)  # costs offered to the neighbours
    n_thr = thr.size
    thr_min, n_live = _open_thresholds(thr, thr_st)
    n_tg = reached.size
    n_slot = tg_slot.size
    n_gam = gam.size if floors.size > 0 else 0
    n_learn = learned.size
    if n_tg > 0:  # the thresholds as tightened so far (they persist between calls)
        max_cost, r1 = _tightened(thr, tg_rest, max_cost, r1)
        if n_gam > 0:
            _floor_reach(gam, floors, thr, tg_rest)
    status = 0
    while True:
        # Room for one expansion: at most n_off entries, each needing at most one new block.
        if (n_free < n_off) if use_buckets else (size + n_off > cap):
            status = 2
            break
        if scan < n_scan:  # sources are expanded first: listed, or found by a scan for cost 0
            if use_list:
                u = np.int64(srcs[np.uint64(scan)])
            else:
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
                    _prefetch_block(cf, w, nc)
                    _prefetch_block(rf, w, nc)
                    if has_h1:  # its h1 and label: one 8-byte slot, the same address in either view
                        _prefetch(h1, 2 * w)
                    elif n_tg > 0:
                        _prefetch(labf, 2 * w)
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

        if n_tg > 0:
            lu = labf[np.uint64(2 * u + 1)]
            if lu > 0 and lu < n_slot:
                k = tg_slot[np.uint64(lu)]
                if k >= 0:  # a path to partner k costs at most d, plus with tg_h1 the cost on to it from u
                    ub = d + _above(np.float64(h1[np.uint64(2 * u)])) if tg_h1 else d
                    if ub < reached[k]:
                        reached[k] = ub
                        t_new = tg_a * ub + tg_b
                        if t_new < thr[k]:
                            thr[k] = t_new
                            max_cost, r1 = _tightened(thr, tg_rest, max_cost, r1)
                            thr_min, n_live = _open_thresholds(thr, thr_st)
                            if n_gam > 0:
                                _floor_reach(gam, floors, thr, tg_rest)
        # Expand u: relax its neighbours.
        ur = u // nc
        uc = u - ur * nc
        if prune:
            hu = np.float64(h1[np.uint64(2 * u)]) if has_h1 else 0.0
            ok = d + hu <= r1
            if ok and n_gam > 0:  # the other end of every link still searched for is farther than d - hu allows
                a = labf[np.uint64(2 * u + 1)]
                if a < n_gam and d - _above(hu) > gam[np.uint64(a)]:  # a label beyond the rows: nothing known
                    ok = False
            if n_learn > 0 and hu == 0.0 and has_h1:  # a source cell (cost 0 from all sources)
                li = np.int64(labf[np.uint64(2 * u + 1)]) + 1
                if li < n_learn and d < learned[li]:
                    learned[li] = d
            if not ok:
                for t in range(n_pt):  # the rectangles in place: no raster of their least values to build
                    if ur >= pt_geo[t, 4] and ur < pt_geo[t, 5] and uc >= pt_geo[t, 6] and uc < pt_geo[t, 7]:
                        g = _load_f64(pt_addr[t], (ur - pt_geo[t, 0]) * pt_geo[t, 3] + (uc - pt_geo[t, 1]))
                        if d + (g - pt_reach[t]) <= 0.0:
                            ok = True
                            break
            if not ok:
                if n_learn > 0 and d + hu < learned[0]:
                    learned[0] = d + hu
                continue
        if d > thr_min:  # the first cell beyond an open threshold: its box is that of the cells so far
            thr_min = np.inf
            for t in range(n_thr):
                if thr_st[t, 0] == 1:
                    if d > thr[t]:
                        thr_st[t, 0] = 0
                        if br1 >= 0:
                            _widen(thr_box, t, br0, br1, bc0, bc1)
                        if use_buckets:
                            thr_st[t, 1] = cur
                            n_live += 1
                    else:
                        thr_min = min(thr_min, thr[t])
        br0 = min(br0, ur)
        br1 = max(br1, ur)
        bc0 = min(bc0, uc)
        bc1 = max(bc1, uc)
        if n_live > 0:  # closed thresholds whose bucket the queue has not left: cell by cell
            for t in range(n_thr):
                if thr_st[t, 1] >= 0:
                    if thr_st[t, 1] != cur:
                        thr_st[t, 1] = -1
                        n_live -= 1
                    elif d <= thr[t]:
                        _widen(thr_box, t, ur, ur, uc, uc)
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
            was = cf[np.uint64(v)]
            cf[np.uint64(v)] = nd
            if not one_label:
                af[np.uint64(v)] = lab
            if want_back:
                bf[np.uint64(v)] = opposite[k]
            if use_buckets:
                b = np.int64(nd * inv_width) - cur  # >= 0 as nd >= d and the key is monotone
                if b >= n_buckets:
                    return 1
                if b > 0 and np.int64(was * inv_width) - cur == b:
                    continue  # its entry in that (later, so not yet popped) bucket now stands for the lower cost
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
    for t in range(n_thr):  # the open thresholds: every cell expanded so far
        if thr_st[t, 0] == 1 and br1 >= 0:
            _widen(thr_box, t, br0, br1, bc0, bc1)
    state[_ST_SCAN] = scan
    state[_ST_CUR] = cur
    state[_ST_SLOT] = slot
    state[_ST_FREE] = free
    state[_ST_NFREE] = n_free
    state[_ST_LIVE] = live
    state[_ST_SIZE] = size
    state[_ST_R0] = br0
    state[_ST_R1] = br1
    state[_ST_C0] = bc0
    state[_ST_C1] = bc1
    return status


@njit(cache=True, nogil=True, inline="always")
def _open_thresholds(thr, thr_st):  # pragma: no cover - compiled
    """``(least open threshold (inf if none), thresholds closed in a bucket not yet left)`` of :func:`_search`."""
    low = np.inf
    live = 0
    for t in range(thr.size):
        if thr_st[t, 0] == 1:
            low = min(low, thr[t])
        elif thr_st[t, 1] >= 0:
            live += 1
    return low, live


@njit(cache=True, nogil=True)
def _floor_reach(gam, floors, thr, rest):  # pragma: no cover - compiled
    """``gam[a]`` = the largest ``thr[k] - floors[a, k]`` over the ``k`` with ``rest[k]`` (-inf if none)."""
    for a in range(gam.size):
        g = -np.inf
        for k in range(thr.size):
            if rest[k]:
                g = max(g, thr[k] - floors[a, k])
        gam[a] = g


@njit(cache=True, nogil=True, inline="always")
def _widen(box, t, r0, r1, c0, c1):  # pragma: no cover - compiled
    """Grow ``box[t]`` (rows, columns, ends inclusive) to hold rows ``r0..r1``, columns ``c0..c1``."""
    box[t, 0] = min(box[t, 0], r0)
    box[t, 1] = max(box[t, 1], r1)
    box[t, 2] = min(box[t, 2], c0)
    box[t, 3] = max(box[t, 3], c1)


@njit(cache=True, nogil=True, inline="always")
def _tightened(thr, rest, max_cost, r1):  # pragma: no cover - compiled
    """``(min(max_cost, max(thr)), min(r1, max(thr[rest])))`` (``r1`` as it is when no entry is ``rest``)."""
    top = -np.inf
    top_rest = -np.inf
    any_rest = False
    for k in range(thr.size):
        top = max(top, thr[k])
        if rest[k]:
            top_rest = max(top_rest, thr[k])
            any_rest = True
    return min(max_cost, top), (min(r1, top_rest) if any_rest else r1)


def _search_grid(
    res: np.ndarray,
    cost: np.ndarray,
    alloc: np.ndarray,
    back: np.ndarray,
    offsets: tuple,
    inv_width: float,
    n_buckets: int,
    one_label: bool,
    srcs: np.ndarray | None = None,
    want_back: bool = True,
    bound: tuple | None = None,
    box: list[int] | None = None,
    thresholds: np.ndarray | None = None,
    thr_box: np.ndarray | None = None,
    partners: tuple | None = None,
    seed_cost: np.ndarray | None = None,
) -> int:
    """Run :func:`_search` with a bucket queue (``n_buckets > 0``) or the heap, growing the queue as needed.

    ``srcs``, ``want_back``: as :func:`_search` (None: scan for the sources); ``bound``: ``(h1, r1, pt_addr, pt_geo, pt_reach)``
    of a pruned search, or None.  ``box``, a list, gets the bounding box of the expanded cells
    ``[row0, row1, col0, col1]`` (ends exclusive; ``row1 == 0`` when no cell was expanded).  ``thr_box``
    (``(k, 4)`` int64, ends inclusive, set up empty by the caller) gets the box of the cells expanded at a cost
    ``<= thresholds[k]``.  ``partners``: ``(labf, tg_slot, tg_h1, tg_a, tg_b, tg_rest, reached, floors, gam, learned)``
    of :func:`_search`
    (the thresholds tighten in place), or None.

    ``seed_cost``: None, or one cost per cell of ``srcs``, which are then seeds, not sources: cells whose cost
    (``seed_cost``, no lower than their least cost) the caller has set in ``cost``, put in the queue at that cost
    before the search starts (:func:`_seed_queue`), so that the search goes on from them as if it had come to them.
    The ring then spans the costs of the seeds too (or, beyond :data:`_MAX_BUCKETS`, the heap holds them).
    """
    ids = np.int32 if res.size < 2**31 else np.int64  # cell ids in the queue
    state = np.zeros(_N_STATE, dtype=np.int64)
    state[_ST_R0], state[_ST_R1], state[_ST_C0], state[_ST_C1] = res.shape[0], -1, res.shape[1], -1
    src = _NO_SOURCES if srcs is None else srcs
    if seed_cost is None:
        data, link, head, fill, hkey, hnode = _new_queue(state, n_buckets, 64, 1024, ids)
    else:
        n_buckets, data, link, head, fill, hkey, hnode = _seeded_queue(state, src, seed_cost, inv_width, n_buckets, ids)
        inv_width = inv_width if n_buckets else 0.0
        src = _NO_SOURCES
        state[_ST_SCAN] = res.size  # no sources to expand or scan for
    prune = (False, _NO_H32, -np.inf, _NO_ADDR, _NO_GEO, _NO_H) if bound is None else (True, *bound)
    if thresholds is None:
        thr = (_NO_H, _NO_THR_BOX, _NO_THR_BOX[:, :2])
    else:
        thr_st = np.empty((thresholds.size, 2), dtype=np.int64)
        thr_st[:, 0], thr_st[:, 1] = 1, -1  # open, not live
        thr = (thresholds, thr_box, thr_st)
    tg = (_NO_LABELS, _NO_SOURCES, False, 0.0, 0.0, _NO_REST, _NO_H, _NO_FLOORS, _NO_H, _NO_H) if partners is None else partners
    while True:
        status = _search(
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
            *offsets,
            inv_width,
            n_buckets,
            one_label,
            src,
            want_back,
            *prune,
            *thr,
            *tg,
        )
        if status != 2:
            if box is not None:
                box[:] = [int(state[_ST_R0]), int(state[_ST_R1]) + 1, int(state[_ST_C0]), int(state[_ST_C1]) + 1]
                if box[1] == 0:
                    box[:] = [0, 0, 0, 0]
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


def _new_queue(state: np.ndarray, n_buckets: int, n_blocks: int, heap_size: int, ids: type) -> tuple:
    """``(data, link, head, fill, hkey, hnode)`` of an empty queue for :func:`_search`.

    ``n_buckets`` in the ring with ``n_blocks`` blocks free (``state``'s count of them set), or (``n_buckets == 0``)
    a heap of ``heap_size`` entries.
    """
    none32 = np.empty(0, dtype=np.int32)
    if not n_buckets:
        return np.empty(0, dtype=ids), none32, none32, none32, np.empty(heap_size), np.empty(heap_size, dtype=ids)
    link = np.arange(1, n_blocks + 1, dtype=np.int32)  # the free list
    link[-1] = -1
    state[_ST_NFREE] = n_blocks
    head, fill = np.full(n_buckets, -1, dtype=np.int32), np.zeros(n_buckets, dtype=np.int32)
    return np.empty(n_blocks * _BLOCK, dtype=ids), link, head, fill, np.empty(0), np.empty(0, dtype=ids)


def _seeded_queue(
    state: np.ndarray, seeds: np.ndarray, seed_cost: np.ndarray, inv_width: float, n_buckets: int, ids: type
) -> tuple:
    """``(n_buckets, data, link, head, fill, hkey, hnode)`` of :func:`_search_grid`'s queue with the seeds in it.

    The bucket ring grows to hold the seeds' buckets as well as one largest step (0 buckets: the heap, as
    :func:`leopardgeo.kernels.costdist._plan_queue` chooses beyond :data:`_MAX_BUCKETS`); its block pool to
    hold them all.
    """
    cost = np.asarray(seed_cost, dtype=np.float64)
    n_blocks = 64
    if n_buckets and cost.size:
        bucket = (cost * inv_width).astype(np.int64)
        n_buckets = max(n_buckets, int(bucket.max()) + 2)
        if n_buckets > _MAX_BUCKETS:
            n_buckets = 0
        else:  # a block per bucket the seeds take, and one per _BLOCK seeds in it
            n_blocks += int(((np.bincount(bucket) + _BLOCK - 1) // _BLOCK).sum())
    data, link, head, fill, hkey, hnode = _new_queue(state, n_buckets, n_blocks, max(1024, 2 * cost.size), ids)
    _seed_queue(np.asarray(seeds, dtype=np.int64), cost, inv_width, n_buckets, data, link, head, fill, hkey, hnode, state)
    return n_buckets, data, link, head, fill, hkey, hnode


@njit(cache=True, nogil=True)
def _seed_queue(seeds, cost, inv_width, n_buckets, data, link, head, fill, hkey, hnode, state):  # pragma: no cover
    """Put each seed (flat id) in the empty queue of a search not started, at its cost: :func:`_search` goes on from there.

    Bucket ``floor(cost * inv_width)`` of the ring as :func:`_search` starts it (current bucket 0 in slot 0), or
    the heap (``n_buckets == 0``); the caller made them large enough (:func:`_seeded_queue`).  The same pushes as
    :func:`_search`'s, which its loop keeps written out: that loop is the hot one, and any change to it is measured.
    """
    free = state[_ST_FREE]
    n_free = state[_ST_NFREE]
    live = state[_ST_LIVE]
    size = state[_ST_SIZE]
    for i in range(seeds.size):
        v = seeds[i]
        key = cost[i]
        if n_buckets > 0:
            s = np.int64(key * inv_width)
            h = np.int64(head[s])
            fs = np.int64(fill[s])
            if h < 0 or fs == _BLOCK:  # start a new block on top of this bucket's stack
                nb = free
                free = np.int64(link[nb])
                n_free -= 1
                link[nb] = h
                head[s] = nb
                h = nb
                fs = 0
            data[h * _BLOCK + fs] = v
            fill[s] = fs + 1
            live += 1
        else:
            j = size
            size += 1
            while j > 0:
                p = (j - 1) >> 1
                if hkey[p] <= key:
                    break
                hkey[j] = hkey[p]
                hnode[j] = hnode[p]
                j = p
            hkey[j] = key
            hnode[j] = v
    state[_ST_FREE] = free
    state[_ST_NFREE] = n_free
    state[_ST_LIVE] = live
    state[_ST_SIZE] = size


_NO_SOURCES = np.empty(0, dtype=np.int64)
_NO_H = np.empty(0, dtype=np.float64)
_NO_H32 = np.empty(0, dtype=np.float32)
_NO_ADDR = np.empty(0, dtype=np.int64)
_NO_GEO = np.zeros((0, 8), dtype=np.int64)
_NO_FLOORS = np.zeros((0, 0), dtype=np.float64)
_NO_THR_BOX = np.zeros((0, 4), dtype=np.int64)
_NO_LABELS = np.empty(0, dtype=np.int32)
_NO_REST = np.empty(0, dtype=np.bool_)


@njit(cache=True, nogil=True, inline="always")
def _flat_deltas(offsets, nc):  # pragma: no cover - compiled
    """``(delta, top)``: forward neighbour offsets ``(row, col)`` as flat ids on rows of ``nc`` cells, and the largest."""
    delta = np.empty(offsets.shape[0], dtype=np.uint64)
    top = 0
    for k in range(offsets.shape[0]):
        dk = offsets[k, 0] * nc + offsets[k, 1]
        delta[k] = np.uint64(dk)
        top = max(top, dk)
    return delta, top


@njit(cache=True, nogil=True, inline="always")
def _block_has_edge(af, delta, s0, e):  # pragma: no cover - compiled
    """Whether a cell ``s0 .. e - 1`` of the flat labels ``af`` has a forward neighbour of another label (> 0).

    Branch-free, with flat offsets that wrap rows (a false alarm only sends the block to an exact pass); every
    ``u + delta`` must lie in ``af``.
    """
    hit = 0
    for k in range(delta.size):
        dk = delta[k]
        for i in range(s0, e):
            u = np.uint64(i)
            a = af[u]
            b = af[u + dk]
            hit |= np.int64((a != b) & (a > 0) & (b > 0))
    return hit != 0


@njit(cache=True, nogil=True, inline="always")
def _crossing(cost, res, r, c, vr, vc, k, step_len, via, has_via):  # pragma: no cover - compiled
    """``cost[r, c] + step + cost[vr, vc]`` across neighbour offset ``k`` (NaN: a knight's move across no data)."""
    if has_via[k] and (math.isnan(res[r + via[k, 0], c + via[k, 1]]) or math.isnan(res[r + via[k, 2], c + via[k, 3]])):
        return np.nan
    return cost[r, c] + step_len[k] * 0.5 * (np.float64(res[r, c]) + np.float64(res[vr, vc])) + cost[vr, vc]


@njit(cache=True, nogil=True)
def _allocation_exits(cost, alloc, labels, res, offsets, step_len, via, has_via, want_pairs):  # pragma: no cover
    """``(exits, bad, pairs)``: each label's least cost of leaving its allocation; labelled cells allocated otherwise.

    ``exits[l]`` (up to the largest of ``labels``): the least ``cost[y] + step(y, z) + cost[z]`` over neighbouring
    cells ``y``, ``z`` allocated to ``l`` and to another label (inf if none); ``bad``: the labelled cells
    (``labels > 0``, cost not NaN) not allocated to their own label at cost 0; with ``want_pairs``, ``pairs[a, b]``:
    that least value over the neighbours allocated to ``a`` and ``b`` (symmetric; inf where they do not touch),
    else an empty ``(0, 0)`` array.

    ``offsets`` hold each neighbour pair once, forward (row > 0, or row 0 and col > 0); ``step_len`` their lengths;
    ``via`` / ``has_via`` the cells a knight's move crosses (no data there: no step).  Region edges are few: blocks
    of cells are first tested for any neighbour of another label in a branch-free pass (flat offsets, wrapping
    rows: a false alarm only sends the block to the exact pass), and only such blocks are looked at cell by cell
    (the same test per cell first).
    """
    nr, nc = alloc.shape
    n = nr * nc
    af = alloc.reshape(-1)
    lf = labels.reshape(-1)
    cf = cost.reshape(-1)
    n_off = offsets.shape[0]
    delta, top = _flat_deltas(offsets, nc)
    bad = 0
    top_lab = 0
    for i in range(n):
        u = np.uint64(i)
        lab = lf[u]
        top_lab = max(top_lab, lab)
        if lab > 0 and not math.isnan(cf[u]) and (af[u] != lab or cf[u] != 0.0):
            bad += 1
    n_lab = top_lab + 1
    exits = np.full(n_lab, np.inf)
    pairs = np.full((n_lab, n_lab) if want_pairs else (0, 0), np.inf)
    blk = 32
    for s0 in range(0, n, blk):
        e = min(s0 + blk, n)
        fast = e + top <= n  # every neighbour id in range
        if fast and not _block_has_edge(af, delta, s0, e):
            continue
        for i in range(s0, e):
            u = np.uint64(i)
            a = af[u]
            if a <= 0:
                continue
            if fast:
                hit = 0
                for k in range(n_off):
                    b = af[u + delta[k]]
                    hit |= np.int64((a != b) & (b > 0))
                if hit == 0:
                    continue
            r = i // nc
            c = i - r * nc
            for k in range(n_off):
                vr = r + offsets[k, 0]
                vc = c + offsets[k, 1]
                if vr < 0 or vr >= nr or vc < 0 or vc >= nc:
                    continue
                b = af[np.uint64(vr * nc + vc)]
                if b == a or b <= 0:
                    continue
                w = _crossing(cost, res, r, c, vr, vc, k, step_len, via, has_via)
                if math.isnan(w):  # a knight's move: no step across no data
                    continue
                if a < n_lab and w < exits[a]:
                    exits[a] = w
                if b < n_lab and w < exits[b]:
                    exits[b] = w
                if want_pairs and a < n_lab and b < n_lab and w < pairs[a, b]:
                    pairs[a, b] = w
                    pairs[b, a] = w
    return exits, bad, pairs


@njit(cache=True, nogil=True, inline="always")
def _root(parent, x):  # pragma: no cover - compiled
    """The root of ``x``'s set in the union-find forest ``parent``, halving the path on the way."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def _minimax_rows(ea, eb, ew, row_of, out):  # pragma: no cover - compiled
    """Kruskal's merges over the edges ``(ea, eb, ew)`` in ascending ``ew``: the least largest weight between nodes.

    When an edge first joins two sets of nodes, every path between them in the graph has an edge at least that
    heavy (the lighter ones do not join them) and the one through it has none heavier, so it is the minimax
    weight of every pair across the two sets.  ``out`` (inf, one row per node with ``row_of[node] >= 0``, a column
    per node) gets it for each such node and every node of the other set; 0 at the node itself.
    """
    n = row_of.size
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    head = np.arange(n)  # each set's members as a linked list: first, next, last
    nxt = np.full(n, -1, dtype=np.int64)
    tail = np.arange(n)
    for v in range(n):
        if row_of[v] >= 0:
            out[row_of[v], v] = 0.0
    for e in range(ea.size):
        a = _root(parent, ea[e])
        b = _root(parent, eb[e])
        if a == b:
            continue
        w = ew[e]
        for s, t in ((a, b), (b, a)):
            x = head[s]
            while x >= 0:
                r = row_of[x]
                if r >= 0:
                    y = head[t]
                    while y >= 0:
                        out[r, y] = w
                        y = nxt[y]
                x = nxt[x]
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        nxt[tail[a]] = head[b]
        tail[a] = tail[b]


@njit(cache=True, nogil=True)
def _trace(back, r, c, drow, dcol):  # pragma: no cover - compiled
    """Cells from ``(r, c)`` back along the back-links to a source (-1), end cell first.

    Returns ``(cells, status, row, col)``: status 0 done; 1 a back-link outside ``0..len(drow) - 1`` at
    ``(row, col)``; 2 a link leaving the raster to ``(row, col)``; 3 a cycle (more steps than cells).
    """
    nr, nc = back.shape
    k = drow.size
    out = np.empty((16, 2), dtype=np.int64)
    n = 0
    for _ in range(back.size + 1):
        if n == out.shape[0]:
            grown = np.empty((2 * n, 2), dtype=np.int64)
            grown[:n] = out
            out = grown
        out[n, 0] = r
        out[n, 1] = c
        n += 1
        b = back[r, c]
        if b == -1:
            return out[:n], 0, r, c
        if b < 0 or b >= k:
            return out[:n], 1, r, c
        r += drow[b]
        c += dcol[b]
        if r < 0 or r >= nr or c < 0 or c >= nc:
            return out[:n], 2, r, c
    return out[:n], 3, r, c


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


@njit(cache=True, nogil=True)
def _group_sources(src, res, start):  # pragma: no cover - compiled
    """The flat ids of the source cells (label > 0, resistance not NaN), by label and ascending within each.

    ``start`` (``top + 2`` int64, zeros, ``top`` the largest label): set to the offsets, so that label ``l``'s
    cells are ``cells[start[l]:start[l + 1]]``.  A counting sort: two passes over the rasters, no sort.
    """
    nr, nc = src.shape
    for i in range(nr):
        for j in range(nc):
            x = np.int64(src[i, j])
            if x > 0 and not math.isnan(res[i, j]):
                start[x + 1] += 1
    for lab in range(1, start.size):
        start[lab] += start[lab - 1]
    cells = np.empty(start[start.size - 1], dtype=np.int64)
    at = start[:-1].copy()
    for i in range(nr):
        for j in range(nc):
            x = np.int64(src[i, j])
            if x > 0 and not math.isnan(res[i, j]):
                cells[at[x]] = i * nc + j
                at[x] += 1
    return cells


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


# ---------------------------------------------------------------------------
# Passes over searches' costs for the corridors (one compiled pass each, no full-size temporaries: numpy
# needs five or six passes and as many temporaries of the overlap of two searches for the same results).


@njit(cache=True, nogil=True)
def _least_sums(a, b):  # pragma: no cover - compiled
    """The least finite ``a + b`` over the cells, per row and per column (inf where none), and its first cell.

    The first is the least-cost distance of two searches.  As ``fl(x - lcd)`` does not decrease with ``x``, a row
    holds a cell with ``(a + b) - lcd <= width`` exactly when its least sum does, so the rows' and columns' least
    sums give the box of those cells (``corridors._within_box``) without a second pass over the cells.  The cell:
    ``(row, col)`` of the first least sum in row-major order (``(-1, -1)`` if none is finite), where the least of
    ``(a + b) - lcd`` is first too (the difference is exact near ``lcd``).
    """
    nr, nc = a.shape
    row = np.full(nr, np.inf)
    col = np.full(nc, np.inf)
    best = np.inf
    at_r = -1
    for i in range(nr):
        best_i = np.inf
        k = min(i + _ROWS_AHEAD, nr - 1)
        a_next, b_next = a[k], b[k]
        for j in range(nc):
            if (j & 7) == 0:
                _prefetch(a_next, j)
                _prefetch(b_next, j)
            t = a[i, j] + b[i, j]
            if t < best_i:  # False for NaN; inf never beats inf
                best_i = t
            if t < col[j]:
                col[j] = t
        row[i] = best_i
        if best_i < best:
            best = best_i
            at_r = i
    at_c = -1
    if at_r >= 0:
        for j in range(nc):
            if a[at_r, j] + b[at_r, j] == best:
                at_c = j
                break
    return best, row, col, at_r, at_c


@njit(cache=True, nogil=True)
def _pack_bound(h1, labels, out):  # pragma: no cover - compiled
    """Lay ``h1`` and ``labels`` (flat, one per cell) out as :func:`_search` reads them, into ``out``.

    ``out``: int32, two per cell: ``h1`` rounded down to float32, as its bits (0 where ``h1`` is empty),
    then the label.  So the two values of a cell share 8 aligned bytes, one cache line, in the memory
    ``h1`` alone takes.  Rounded down: no higher than ``h1`` (NaN stays NaN, inf inf, a finite
    value above float32's range becomes its largest finite value); :func:`_above` gives an upper bound.
    """
    hf = out.view(np.float32)
    with_h1 = h1.size > 0
    for i in range(labels.size):
        x = h1[i] if with_h1 else 0.0
        v = np.float32(x)
        hf[2 * i] = v
        down = np.int32(np.float64(v) > x)  # rounded up: one float32 step down
        if down and v <= 0.0:  # (toward -inf: the bits go the other way for 0 and below)
            hf[2 * i] = np.nextafter(v, np.float32(-np.inf))
        else:
            out[2 * i] -= down
        out[2 * i + 1] = np.int32(labels[i])


#: A float32 step is at most this share of the value (normal numbers), and at most :data:`_F32_TINY` (below them).
_F32_STEP = 2.0**-22
_F32_TINY = 2.0**-149
_F32_MAX = float(np.finfo(np.float32).max)


@njit(cache=True, nogil=True, inline="always")
def _above(v):  # pragma: no cover - compiled
    """An upper bound on every float64 that :func:`_pack_bound` rounds down to the float32 ``v`` (as a float64).

    The next float32 above ``v``, or higher: ``v + |v| 2^-22`` is exact in float64 and at least one step above
    a normal ``v``; adding ``2^-149`` covers the steps below them (rounding to nearest cannot take a sum below
    its larger term).  inf from float32's largest finite value up, which stands for every value above it;
    that value's negative for -inf, which stands for every value below it.
    """
    if v >= _F32_MAX:
        return np.inf
    if v == -np.inf:
        return -_F32_MAX
    return (v + abs(v) * _F32_STEP) + _F32_TINY


@njit(cache=True, nogil=True)
def _edge_flags(alloc, nc, drow, dcol, edge):  # pragma: no cover - compiled
    """``edge[i] = 1`` for each cell of ``alloc`` (flat) with a neighbour of another label.

    Offsets ``drow`` >= 0, ``dcol``: the forward half of a neighbourhood, each pair of cells once (in the grid of
    ``nc`` columns).  Row against row, offset by offset: loops without branches, which the compiler vectorises.
    """
    nr = alloc.size // nc
    for r in range(nr):
        row = alloc[r * nc : (r + 1) * nc]
        e_row = edge[r * nc : (r + 1) * nc]
        for k in range(drow.size):
            vr = r + drow[k]
            if vr >= nr:
                continue
            dc = dcol[k]
            c0, c1 = max(0, -dc), min(nc, nc - dc)
            other = alloc[vr * nc + c0 + dc : vr * nc + c1 + dc]
            e_other = edge[vr * nc + c0 + dc : vr * nc + c1 + dc]
            mine = row[c0:c1]
            e_mine = e_row[c0:c1]
            for c in range(c1 - c0):
                d = np.uint8(mine[c] != other[c])
                e_mine[c] |= d
                e_other[c] |= d


@njit(cache=True, nogil=True)
def _region_runs(alloc, edge, nc, run_start, edge_start, runs, edges):  # pragma: no cover - compiled
    """Each label's runs of cells along the rows, and its edge cells (:func:`_edge_flags`), grouped by label.

    Labels ``1 .. run_start.size - 2``.  With ``runs`` empty: counts them, ``run_start[a + 1]`` and
    ``edge_start[a + 1]``.  Else (the counts summed, as starts): label ``a``'s runs ``(row, first column, end
    column)`` into ``runs[run_start[a]:]`` and its edge cells (flat ids, ascending) into ``edges[edge_start[a]:]``,
    in raster order.
    """
    nr = alloc.size // nc
    top = run_start.size - 2
    count = runs.shape[0] == 0
    at = run_start[:-1].copy()
    at_e = edge_start[:-1].copy()
    for r in range(nr):
        c = 0
        while c < nc:
            i = r * nc + c
            a = alloc[i]
            e = c + 1
            while e < nc and alloc[r * nc + e] == a:
                e += 1
            if a >= 1 and a <= top:
                if count:
                    run_start[a + 1] += 1
                    n = 0
                    for j in range(i, i + e - c):
                        n += edge[j]
                    edge_start[a + 1] += n
                else:
                    k = at[a]
                    runs[k, 0] = r
                    runs[k, 1] = c
                    runs[k, 2] = e
                    at[a] = k + 1
                    k = at_e[a]
                    for j in range(i, i + e - c):
                        if edge[j]:
                            edges[k] = j
                            k += 1
                    at_e[a] = k
            c = e


@njit(cache=True, nogil=True)
def _seed_region(edges, alloc, label, h1, cut, work, nc, drow, dcol, seeds, seed_cost, box):  # pragma: no cover
    """Before a search that leaves ``label``'s region to ``h1``: its edge cells and their neighbours in it get their ``h1``.

    ``edges``: the region's edge cells (flat ids).  Each of them, and each neighbour (offsets ``drow``, ``dcol``) of
    one allocated to ``label``, with ``h1 <= cut`` gets ``work = h1``; so a step into the region offers no cell a
    lower cost (``h1`` is the least) and the search never goes in.  The edge cells set also go to ``seeds``, with
    their ``h1`` in ``seed_cost``.  ``box`` (rows, columns, ends inclusive) grows to hold every cell set.  Returns
    how many seeds.
    """
    nr = alloc.size // nc
    n = 0
    for j in range(edges.size):
        u = np.int64(edges[j])
        x = h1[u]
        if not x <= cut:
            continue
        work[u] = x
        ur = u // nc
        uc = u - ur * nc
        _widen(box, 0, ur, ur, uc, uc)
        seeds[n] = u
        seed_cost[n] = x
        n += 1
        for k in range(drow.size):
            vr, vc = ur + drow[k], uc + dcol[k]
            if vr >= 0 and vr < nr and vc >= 0 and vc < nc:
                v = vr * nc + vc
                if alloc[v] == label and h1[v] <= cut:
                    work[v] = h1[v]
                    _widen(box, 0, vr, vr, vc, vc)
    return n


@njit(cache=True, nogil=True)
def _fill_region(runs, h1, cut, r1, pt_addr, pt_geo, pt_reach, work, nc, thr, levels):  # pragma: no cover - compiled
    """``work[c] = h1[c]`` for the cells of ``runs`` with ``h1 <= cut`` that pass a pruned search's tests at ``d = h1``.

    ``runs``: ``(row, first column, end column)`` of the cells (:func:`_region_runs`).  The tests of
    :func:`_search`: ``2 h1 <= r1``, or in the box of a rectangle ``t`` (``pt_addr``, ``pt_geo``, ``pt_reach`` as
    there) ``h1 + (g_t - pt_reach[t]) <= 0``.  ``thr`` ascending; ``levels[t]`` (rows, columns, ends inclusive, as
    :func:`_widen`) grows to hold the cells set whose first cost of ``thr`` they are within at ``2 h1`` is
    ``thr[t]`` (row ``thr.size``: within none): the box of those within ``thr[t]`` is the union of rows ``0 .. t``,
    of all the cells set that of every row.
    """
    n_thr = thr.size
    n_pt = pt_reach.size
    for j in range(runs.shape[0]):
        r = np.int64(runs[j, 0])
        row_h = h1[r * nc : (r + 1) * nc]
        row_w = work[r * nc : (r + 1) * nc]
        for col in range(np.int64(runs[j, 1]), np.int64(runs[j, 2])):
            x = row_h[col]
            if not x <= cut:
                continue
            ok = 2.0 * x <= r1
            if not ok:
                for t in range(n_pt):
                    if r >= pt_geo[t, 4] and r < pt_geo[t, 5] and col >= pt_geo[t, 6] and col < pt_geo[t, 7]:
                        g = _load_f64(pt_addr[t], (r - pt_geo[t, 0]) * pt_geo[t, 3] + (col - pt_geo[t, 1]))
                        if x + (g - pt_reach[t]) <= 0.0:
                            ok = True
                            break
            if ok:
                row_w[col] = x
                t = 0
                if n_thr > 0 and 2.0 * x > thr[0]:  # most are within every cost
                    t = 1
                    while t < n_thr and 2.0 * x > thr[t]:
                        t += 1
                _widen(levels, t, r, r, col, col)


@njit(cache=True, nogil=True)
def _take_box(work, r0, r1, c0, c1):  # pragma: no cover - compiled
    """``work[r0:r1, c0:c1]`` copied out, and set to inf there: one pass, the rows prefetched ahead (:data:`_ROWS_AHEAD`)."""
    nc = c1 - c0
    out = np.empty((r1 - r0, nc))
    for i in range(r0, r1):
        row = work[i]
        ahead = work[min(i + _ROWS_AHEAD, r1 - 1)]
        dst = out[i - r0]
        for j in range(nc):
            if (j & 7) == 0:
                _prefetch(ahead, c0 + j)
            dst[j] = row[c0 + j]
            row[c0 + j] = np.inf
    return out


@njit(cache=True, nogil=True)
def _corridor_values(a, b, lcd, width, best, link_index, r0, c0, index, res, prot, measures):  # pragma: no cover - compiled
    """One pass over a corridor's window: ``value = (a + b) - lcd``, ``inside = value <= width``, into the mosaic.

    Returns ``inside``, the float32 values (NaN outside) and the count inside, as
    ``np.where(inside, value, np.nan).astype(np.float32)`` gives them; ``res[inside]`` (``res``: the resistance in
    the window, in row-major order as numpy's boolean indexing gives it) and the count of cells inside where
    ``prot`` (the protected-area window, bool; 0 rows: none) is True.  Each cell inside enters the mosaic ``best``
    (the window at ``(r0, c0)``, float64) when its value is below it, or equal with a lower ``index`` than the one in
    ``link_index`` (0: none): the least value over the links, the first link in link order on a tie, whatever order
    the links come in.  Without ``measures`` only ``inside``, the count and the mosaic: the values and ``res[inside]``
    come back empty and the protected count 0 (half the memory traffic).
    """
    nr, nc = a.shape
    inside = np.empty((nr, nc), dtype=np.bool_)
    value32 = np.empty((nr, nc) if measures else (0, 0), dtype=np.float32)
    res_in = np.empty(res.size if measures else 0, dtype=res.dtype)
    has_prot = measures and prot.shape[0] > 0
    n = 0
    n_prot = 0
    for i in range(nr):
        k = min(i + _ROWS_AHEAD, nr - 1)
        a_next, b_next, res_next, best_next = a[k], b[k], res[k], best[r0 + k, c0:]
        for j in range(nc):
            if (j & 7) == 0:
                _prefetch(a_next, j)
                _prefetch(b_next, j)
                _prefetch(best_next, j)
                if measures:
                    _prefetch(res_next, j)
            v = (a[i, j] + b[i, j]) - lcd
            ok = v <= width  # False for NaN
            inside[i, j] = ok
            if ok:
                if measures:
                    value32[i, j] = np.float32(v)
                    res_in[n] = res[i, j]
                    if has_prot and prot[i, j]:
                        n_prot += 1
                n += 1
                was = best[r0 + i, c0 + j]
                if v < was or (v == was and index < link_index[r0 + i, c0 + j]):
                    best[r0 + i, c0 + j] = v
                    link_index[r0 + i, c0 + j] = index
            elif measures:
                value32[i, j] = np.nan
    return inside, value32, n, res_in[: n if measures else 0], n_prot


@njit(cache=True, nogil=True)
def _mosaic_float32(best):  # pragma: no cover - compiled
    """``np.where(np.isfinite(best), best, np.nan).astype(np.float32)`` in one pass (no boolean and float64 temporaries)."""
    out = np.empty(best.shape, dtype=np.float32)
    nr, nc = best.shape
    for i in range(nr):
        for j in range(nc):
            v = best[i, j]
            out[i, j] = np.float32(v) if np.isfinite(v) else np.float32(np.nan)
    return out


@njit(cache=True, nogil=True, inline="always")
def _in_mask(mask, i, j):  # pragma: no cover - compiled
    """``mask[i, j]``, False outside the array."""
    return i >= 0 and i < mask.shape[0] and j >= 0 and j < mask.shape[1] and mask[i, j]


@njit(cache=True, nogil=True, inline="always")
def _edge_distance(r, c, dr, dc, mask, cell, best):  # pragma: no cover - compiled
    """``min(best, distance to (r + dr, c + dc))`` if that cell is outside ``mask``, in metres as scipy computes it."""
    if _in_mask(mask, r + dr, c + dc):
        return best
    y = np.float64(dr) * cell
    x = np.float64(dc) * cell
    return min(best, math.sqrt(y * y + x * x))


@njit(cache=True, nogil=True)
def _nearest_outside(mask, rows, cols, cell):  # pragma: no cover - compiled
    """Least distance (m) from a listed cell of ``mask`` to a cell outside it (outside the array counts); inf if none.

    The distance of a cell offset ``(dr, dc)`` is ``sqrt((dr * cell)**2 + (dc * cell)**2)``, as
    ``scipy.ndimage.distance_transform_edt(np.pad(mask, 1), sampling=cell)`` gives it.  Each listed cell looks
    in square rings of growing radius ``k`` only while ``k`` cells could still beat the least distance found so
    far (a cell of ring ``k`` is at least ``k`` cells away), so the work is about the listed cells times the
    square of the narrowest half-width, not the corridor's area.  A first sweep over every ``sqrt(n)``-th cell
    finds a low bound early, so a long run of wide cells at the start of the list costs little.
    """
    best = np.inf
    n = rows.size
    stride = max(1, int(math.sqrt(n)))
    for sweep in range(2):
        step = stride if sweep == 0 else 1
        for t in range(0, n, step):
            r, c = rows[t], cols[t]
            k = 1
            while np.float64(k) * cell <= best * (1.0 + 1e-12):  # slack: sqrt's rounding
                for dc in range(-k, k + 1):  # the ring's top and bottom rows
                    best = _edge_distance(r, c, -k, dc, mask, cell, best)
                    best = _edge_distance(r, c, k, dc, mask, cell, best)
                for dr in range(-k + 1, k):  # and its columns between them
                    best = _edge_distance(r, c, dr, -k, mask, cell, best)
                    best = _edge_distance(r, c, dr, k, mask, cell, best)
                k += 1
    return best


@njit(cache=True, nogil=True)
def _descent(cost, res, r, c, drow, dcol, half, via, has_via):  # pragma: no cover - compiled
    """Cells from ``(r, c)`` down to a cost of 0, each step to the neighbour ``p`` of least ``cost[p] + step``.

    Neighbour ``k`` is ``(drow[k], dcol[k])`` away, its step ``half[k] * (res[p] + res[x])``; a knight's move
    (``has_via[k]``) needs its two crossed cells ``via[k]`` (row, col, row, col offsets) off no data.  Only
    neighbours of lower cost count (not NaN or inf), and the first of least ``cost + step`` is taken.  Returns
    ``(n, 2)`` rows and columns; empty if some cell has no such neighbour (not a search's own costs).
    """
    nr, nc = cost.shape
    rows = [r]
    cols = [c]
    for _ in range(cost.size):
        d = cost[r, c]
        if d == 0.0:
            out = np.empty((len(rows), 2), dtype=np.int64)
            for i in range(len(rows)):
                out[i, 0] = rows[i]
                out[i, 1] = cols[i]
            return out
        best = np.inf
        sr, sc = -1, -1
        ru = np.float64(res[r, c])
        for k in range(drow.size):
            pr, pc = r + drow[k], c + dcol[k]
            if pr < 0 or pr >= nr or pc < 0 or pc >= nc:
                continue
            cp = cost[pr, pc]
            if not cp < d:  # also skips NaN and unreached cells
                continue
            if has_via[k] and (
                math.isnan(res[r + via[k, 0], c + via[k, 1]]) or math.isnan(res[r + via[k, 2], c + via[k, 3]])
            ):
                continue
            cand = cp + half[k] * (np.float64(res[pr, pc]) + ru)
            if cand < best:
                best = cand
                sr, sc = pr, pc
        if sr < 0:
            break
        r, c = sr, sc
        rows.append(r)
        cols.append(c)
    return np.empty((0, 2), dtype=np.int64)

