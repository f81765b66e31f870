r"""Compiled kernel of the graph connectivity metrics: every removal delta from one pass per source.

The probability-weighted sums of PC and IIC are sums over ordered pairs of nodes,

.. math::

    N = \sum_s a_s \sum_t a_t \, f(D_{st}),

with :math:`D` the shortest-path distance (link distances for PC, :math:`f(D) = e^{-kD}`, the maximum
product probability; link counts for IIC, :math:`f(D) = 1 / (1 + D)`).  Removing a node :math:`x` can
only lengthen :math:`D_{st}` for the targets :math:`t` that :math:`x` *dominates* in the shortest-path
DAG of :math:`s` (every shortest path from :math:`s` to :math:`t` runs through :math:`x`); every other
target keeps a shortest path that avoids it.  Removing a link :math:`u \to v` can only lengthen the
paths to the nodes :math:`v` dominates (:math:`v` included), and only when that link is :math:`v`'s one
way in.  So, for each source :math:`s`, the kernel

1. runs Dijkstra from :math:`s` (distances, settle order, number of shortest paths);
2. builds the dominator tree of the shortest-path DAG (links with :math:`D_u + w_{uv} = D_v`): in
   settle order, which is topological, the immediate dominator of :math:`v` is the nearest common
   dominator of its DAG predecessors (Cooper, Harvey & Kennedy 2001, *A simple, fast dominance
   algorithm*; one pass suffices on a DAG).  With distinct distances (PC on real distances) the DAG is
   the shortest-path tree; with many equal paths (IIC counts links) the dominated sets are far smaller
   than any one tree's subtrees;
3. numbers the dominator tree in pre-order, so the nodes a node dominates are one contiguous slice;
4. for every node :math:`x` with a non-empty slice, finds the new distances of the slice's nodes only:
   each starts from its best link to a node outside the slice (whose distance cannot change) and a
   Dijkstra restricted to the slice finishes the job (the decremental update of Ramalingam & Reps
   1996, *J. Algorithms* 21:267-305).  The same search gives the loss of the link that is
   :math:`x`'s one way in: with only that link gone :math:`x` stays, reached through its best other way
   in, and the search is the same up to the point where it would settle :math:`x` again, after which
   everything left takes :math:`x`'s increase.  The search runs on copies of the node and link arrays
   in the dominator tree's pre-order, so each slice is a contiguous range read in order;
5. adds :math:`a_s \sum_t a_t (f(D_{st}) - f(D'_{st}))` to the element's loss.  Every term is
   :math:`\ge 0` (distances only grow), so the connector fraction is a sum of non-negative terms,
   not a difference of two large sums;
6. accumulates Brandes' (2001) dependencies for betweenness (BC) and for BCPC, where a pair's
   weight is :math:`a_s a_t p^*_{st}` (Bodin & Saura 2010), split equally between equal shortest paths.

7. counts each (pair, removed element) once (the graph is undirected: the pair's loss is the same from
   either end, and the element dominates :math:`t` from :math:`s` exactly when it dominates :math:`s`
   from :math:`t`), from the end farther from the element (:func:`_node_link_half`), and doubles it.
   The targets counted from :math:`s` for a node :math:`x` are those with :math:`D_{st} < 2 D_{sx}`, near
   :math:`x`, so the search first covers only the slice's nodes within :data:`CAP` (unit links:
   :data:`CAP_UNIT`) times
   :math:`D_{sx}` of the source; a new distance found there that is at most that far is exact (any path
   through a node left out is longer), and when a counted target's is not the search runs again within
   :data:`CAP_WIDE` times :math:`D_{sx}`, then on the whole slice (the first cap is kept tight: on the
   2,000-patch planar graph a first cap of 2.3 instead of 3 left 12 % fewer nodes to search and ran 0.3 %
   of the searches again).  A tentative increase is not queued for a node when a node above it in the
   slice already has an entry no larger (that node's group settles it no later): on the 5,000-patch
   planar graph this drops about three in four of the queue entries the PC searches made after their
   initial ones.  With links of length 0 (ties between any number of links) or a distance cap
   (``max_distance``) every pair is counted from both ends, as without this step.

The result is the brute-force definition (one all-pairs recomputation per removed element), pair by
pair, with no approximation and no tolerance but one: a pair whose removed element lies at its midpoint
(within a relative :data:`SIDE_BAND` of its distance, e.g. on a lattice of equal links) is shared between
its two ends by a linear ramp, so the rounding of the two ends' distances (about the number of links
times 1e-16, relative) changes that pair's share by about that rounding over :data:`SIDE_BAND`
(≈ 1e-10 relative per link on the path).  Link counts (IIC) are exact integers: no error at all.

The cost is the sum, over sources, of the dominated
slices' sizes, i.e. of the dominator-tree depths: a few operations per pair on a complete graph with
metric distances (the trees are stars), about the mean hop count per pair on a planar graph with real
distances.  Sources run on all cores (``numba.prange``, as many threads as numba is set to), in a fixed
number of chunks (:data:`N_CHUNKS`, whatever the thread count, so the result is the same to the last bit on
any number of threads), each chunk of sources with its own
accumulators.  A node alone in its slice (every node of a complete graph with metric distances, whose
trees are stars) is handled from the graph's own arrays, without sorting its links; unit-length links
(IIC) are searched breadth first, the dominators found in the same pass, and the one-end searches queue
their increases (0, 1 or 2 per link) in three buckets instead of a heap.  The nearest common dominator
of a link's two ends is a range minimum over the pre-order depths (a sparse table per source, constant
time per link; a link to the node's own dominator or below it needs none).  The per-node search
(:func:`_node_link_half`) is inlined into the per-source loop: it runs once per node with a slice,
millions of times per pass, and a call passing two dozen arrays (reference counts included) cost more
than many of the searches themselves.  Brandes' sums run over the shortest-path predecessors recorded
while the dominators are found.

Optionally (``max_distance``, from a probability floor) targets farther than a distance are not
recomputed; every term this leaves out, and every recomputed term whose new distance passes the cap,
is added to a per-element error bound, so the result is exact up to a computed bound.  A source that
reaches every node within that distance takes the exact search instead (each pair from both ends, like
the capped searches of the other sources).

The kernel knows arrays only; :mod:`leopardgeo.stages.metrics` builds them from the patch graph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

__all__ = ["MODE_IIC", "MODE_PC", "RemovalDeltas", "removal_deltas"]

#: :math:`f(D) = e^{-kD}` (PC: maximum-product probability)
MODE_PC = 0
#: :math:`f(D) = 1 / (1 + D)`, D in links (IIC)
MODE_IIC = 1


@njit(cache=True, error_model="numpy", inline="always")
def _f(d, mode, k):  # pragma: no cover - compiled
    if d == np.inf:
        return 0.0
    if mode == 0:
        return np.exp(-k * d)
    return 1.0 / (1.0 + d)


@njit(cache=True, error_model="numpy", inline="always")
def _push(hk, hv, size, key, val):  # pragma: no cover - compiled
    """Add ``(key, val)`` to the 8-ary min-heap of ``size`` entries; returns the new size.

    Eight children per entry make the heap a third as tall as a binary heap: on the 3,000-patch planar graph the
    PC pass (Dijkstra and the removal searches) took 9 % less CPU on one thread with four children than with two,
    and another 4 % less with eight (six alternating runs), with bit-identical results.
    """
    i = size
    while i > 0:
        p = (i - 1) >> 3
        if hk[p] <= key:
            break
        hk[i] = hk[p]
        hv[i] = hv[p]
        i = p
    hk[i] = key
    hv[i] = val
    return size + 1


@njit(cache=True, error_model="numpy", inline="always")
def _pop(hk, hv, size):  # pragma: no cover - compiled
    """Remove the root of the 8-ary heap; the caller read ``hk[0], hv[0]`` first. Returns the new size."""
    size -= 1
    key = hk[size]
    val = hv[size]
    i = 0
    while True:
        c = 8 * i + 1
        if c >= size:
            break
        m = c
        km = hk[c]
        end = c + 8 if c + 8 <= size else size
        for j in range(c + 1, end):
            if hk[j] < km:
                km = hk[j]
                m = j
        if km >= key:
            break
        hk[i] = km
        hv[i] = hv[m]
        i = m
    if size > 0:
        hk[i] = key
        hv[i] = val
    return size


@njit(cache=True, error_model="numpy", inline="always")
def _common_dominator(idom, depth, a, b):  # pragma: no cover - compiled
    """The nearest common dominator of ``a`` and ``b`` (Cooper, Harvey & Kennedy: walk the deeper one up)."""
    while a != b:
        if depth[a] >= depth[b]:
            a = idom[a]
        else:
            b = idom[b]
    return a


@njit(cache=True, error_model="numpy", inline="always")
def _bucket_push(hv, hn, n_push, key, val):  # pragma: no cover - compiled
    """Queue ``val`` at the integer increase ``key`` in the three buckets of :func:`_node_link_half`.

    Bucket ``key % 3`` is a stack: ``hn[b]`` its top entry, ``hn[3 + i]`` the entry below entry ``i``, whose node is
    ``hv[i]``.  Returns the number of entries written.
    """
    b = int(key) % 3
    hv[n_push] = val
    hn[3 + n_push] = hn[b]
    hn[b] = n_push
    return n_push + 1


@njit(cache=True, error_model="numpy", nogil=True)
def _subtree_loss(
    lo, hi, droot, skip_eid, lptr, lin, lnb, lw, le, lsl, lsz, ldep, lpar, ld, lp, la, mode, k, dmax,
    key, beta, fin, hk, hv,
):  # pragma: no cover - compiled
    r"""Loss and error bound of the targets of the pre-order slice ``lo:hi`` (local numbering).

    Every array here is indexed by the dominator tree's pre-order number of the node (the slice is
    contiguous and every walk below reads memory in order); a node's links are ``lptr[q]:lptr[q + 1]``
    with the other end ``lnb`` (pre-order number), length ``lw``, link number ``le`` and ``lsl``, the depth
    of the nearest common dominator of the two ends, sorted deepest first (``lin[q]`` is the first link
    that leaves ``q``'s own subtree).  Returns ``(sum of a_t (f(D_st) - f(D'_st)), bound)`` over the slice.
    Nodes with ``lo <= q < hi`` are the only ones whose distance may change.  ``droot`` is the depth of the
    dominator-tree node whose subtree holds the slice (the removed node, whose own slot ``lo - 1`` is left
    out, or the removed link's head, ``lo`` itself); ``skip_eid`` >= 0 is the removed link.  A link leaves
    the subtree of a node at depth ``d`` on the path to the root exactly when its ``lsl`` is below ``d``, so
    each scan below stops at the first link on the wrong side.

    The search runs on the increases :math:`\delta_t = D'_t - D_t` rather than on distances: a link
    :math:`u - t` costs its slack :math:`D_u + w_{ut} - D_t \ge 0`, and every link of the shortest-path
    DAG costs nothing, so when a node is settled at :math:`\delta` every node it dominates that is not
    settled yet is settled at the same :math:`\delta` (Dijkstra's order: nothing left can be lower).  A
    settled group costs one walk over its pre-order slice and, for PC, one exponential:
    :math:`\sum a_t e^{-kD_t}(1 - e^{-k\delta})`.

    Targets farther than ``dmax`` (``inf``: none) are not recomputed: each adds its whole term
    ``a_t f(D_st)`` to the bound; once anything beyond ``dmax`` was left out, a target whose new distance
    exceeds ``dmax`` adds ``a_t f(dmax)`` (its true and computed ``f`` are both below ``f(dmax)``).
    ``key`` (the tentative increases), ``beta`` and ``fin`` are scratch.
    """
    size = 0
    bound = 0.0
    capped = False  # whether anything beyond dmax was left out (else every new distance is exact)
    for t in range(lo, hi):
        fin[t] = False
        dt = ld[t]
        if dt > dmax:
            key[t] = np.inf
            beta[t] = np.inf
            bound += la[t] * lp[t]
            capped = True
            continue
        best = np.inf
        for j in range(lptr[t + 1] - 1, lptr[t] - 1, -1):
            if lsl[j] >= droot:
                break  # this link and the rest stay inside the subtree (or reach the removed node)
            if le[j] == skip_eid:
                continue
            du = ld[lnb[j]]
            if du > dmax:
                capped = True
                continue
            cand = du + lw[j] - dt
            if cand < best:
                best = cand
        key[t] = best
        # an entry matters only if it beats every entry above it in the tree (whose increase the node
        # inherits for free): the running minimum down the tree keeps the heap to those records
        par = lpar[t]
        above = beta[par] if par >= lo else np.inf
        if best < above:
            beta[t] = best
            size = _push(hk, hv, size, best, t)
        else:
            beta[t] = above
    loss = 0.0
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if fin[u] or d > key[u]:
            continue
        group = 0.0
        q = u
        end = u + lsz[u]
        du = ldep[u]
        while q < end:
            if fin[q] or ld[q] > dmax:
                q += lsz[q]  # settled earlier (with everything below it) or beyond the cap
                continue
            fin[q] = True
            key[q] = d
            if mode == 0:
                group += la[q] * lp[q]
            else:
                loss += la[q] * (lp[q] - _f(ld[q] + d, mode, k))
            base = d + ld[q]
            for j in range(lin[q], lptr[q + 1]):
                sj = lsl[j]
                if sj >= du:
                    continue  # stays inside this group's subtree: the same increase
                if sj < droot:
                    break  # this link and the rest leave the slice
                v = lnb[j]
                if v < lo or fin[v] or le[j] == skip_eid:
                    continue
                dv = ld[v]
                if dv > dmax:
                    continue
                cand = base + lw[j] - dv
                if cand < key[v]:
                    key[v] = cand
                    size = _push(hk, hv, size, cand, v)
            q += 1
        if mode == 0:
            loss -= group * np.expm1(-k * d)
    fmax = _f(dmax, mode, k)
    for t in range(lo, hi):
        if ld[t] > dmax:
            continue
        if not fin[t]:
            loss += la[t] * lp[t]  # no way left: f(D') = 0
            if capped:
                bound += la[t] * fmax
        elif capped and ld[t] + key[t] > dmax:
            bound += la[t] * fmax
    return loss, bound


@njit(cache=True, error_model="numpy", nogil=True)
def _rest(lo, hi, xq, kx, fin, lsz, ld, lp, la, mode, k):  # pragma: no cover - compiled
    """Loss of the removed link's head ``xq`` and the nodes of ``lo:hi`` not settled yet, all at ``kx``.

    ``kx`` is the head's increase through its best other way in (``inf``: none, every term is lost).
    """
    if mode == 0:
        mass = la[xq] * lp[xq]
        q = lo
        while q < hi:
            if fin[q]:
                q += lsz[q]  # settled with everything below it
                continue
            mass += la[q] * lp[q]
            q += 1
        return mass if kx == np.inf else -mass * np.expm1(-k * kx)
    loss = la[xq] * (lp[xq] - _f(ld[xq] + kx, mode, k))
    q = lo
    while q < hi:
        if fin[q]:
            q += lsz[q]
            continue
        loss += la[q] * (lp[q] - _f(ld[q] + kx, mode, k))
        q += 1
    return loss


@njit(cache=True, error_model="numpy", nogil=True)
def _node_link_loss(
    xq, hi, skip_eid, do_link, lptr, lin, lnb, le, lsl, lsi, lso, lsz, ldep, lpar, ld, lp, la, lm, mode, k,
    key, beta, fin, hk, hv,
):  # pragma: no cover - compiled
    r"""Losses of removing the node ``xq`` and of removing its one way in (link ``skip_eid``), one search.

    The uncapped case of :func:`_subtree_loss` (same arrays, local numbering) for both removals at once:
    the node's removal searches the slice ``xq + 1 : hi`` on the increases; without only the link, the
    node stays, with the increase ``kx`` of its best other way in (its links out of its subtree, or a
    node of the slice settled before it), and the search is the same until it would settle the node:
    every node settled below ``kx`` keeps its increase, and the node and everything not settled yet take
    ``kx`` (the node dominates them).  So the link's loss is read off the node's search at the first
    heap entry not below ``kx``.  Returns ``(node loss, link loss)`` (the latter 0 without ``do_link``).

    A link's slack (its cost in the search on the increases) is read from ``lsi`` (into the node:
    :math:`D_u + w - D_t`) and ``lso`` (out of it), computed once per source.  For PC the targets not
    settled yet (the link's removal) or never (no way left) are summed from the subtree masses ``lm``
    (:math:`\sum a_t f(D_{st})` over a node's subtree) minus the settled ones, without a walk, unless
    they are all settled.
    """
    lo = xq + 1
    droot = ldep[xq]
    n_slice = hi - lo
    size = 0
    for t in range(lo, hi):
        fin[t] = False
        best = np.inf
        for j in range(lptr[t + 1] - 1, lptr[t] - 1, -1):
            if lsl[j] >= droot:
                break  # this link and the rest stay inside the subtree (or reach the removed node)
            cand = lsi[j]
            if cand < best:
                best = cand
        key[t] = best
        par = lpar[t]
        above = beta[par] if par >= lo else np.inf
        if best < above:
            beta[t] = best
            size = _push(hk, hv, size, best, t)
        else:
            beta[t] = above
    kx = np.inf
    if do_link:
        for j in range(lptr[xq + 1] - 1, lptr[xq] - 1, -1):
            if lsl[j] >= droot:
                break
            if le[j] != skip_eid and lsi[j] < kx:
                kx = lsi[j]
    own = la[xq] * lp[xq]
    loss = 0.0
    link = 0.0
    settled = 0.0  # PC: sum of a_t f(D_st) over the settled targets
    n_set = 0
    open_link = do_link
    while size > 0:
        d = hk[0]
        u = hv[0]
        if open_link and d >= kx:  # every entry left is >= kx: the node would settle now
            if mode == 0:
                link = loss - (own + _left(lm[xq] - own, settled, n_set, n_slice)) * np.expm1(-k * kx)
            else:
                link = loss + _rest(lo, hi, xq, kx, fin, lsz, ld, lp, la, mode, k)
            open_link = False
        size = _pop(hk, hv, size)
        if fin[u] or d > key[u]:
            continue
        group = 0.0
        q = u
        end = u + lsz[u]
        du = ldep[u]
        while q < end:
            if fin[q]:
                q += lsz[q]  # settled earlier, with everything below it
                continue
            fin[q] = True
            n_set += 1
            if mode == 0:
                group += la[q] * lp[q]
            else:
                loss += la[q] * (lp[q] - _f(ld[q] + d, mode, k))
            j0 = lin[q]
            j1 = lptr[q + 1]
            if j0 == j1 or lsl[j0] < droot or lsl[j1 - 1] >= du:
                q += 1  # every link stays in the group's subtree or leaves the slice
                continue
            for j in range(j0, j1):
                sj = lsl[j]
                if sj >= du:
                    continue  # stays inside this group's subtree: the same increase
                if sj < droot:
                    break  # this link and the rest leave the slice
                v = lnb[j]
                cand = d + lso[j]
                if v < lo:  # the removed node: a way back in for the link's removal
                    if cand < kx:
                        kx = cand
                    continue
                if fin[v]:
                    continue
                if cand < key[v]:
                    key[v] = cand
                    size = _push(hk, hv, size, cand, v)
            q += 1
        if mode == 0:
            loss -= group * np.expm1(-k * d)
            settled += group
    if open_link:
        if mode == 0:
            rest = own + _left(lm[xq] - own, settled, n_set, n_slice)
            link = loss + (rest if kx == np.inf else -rest * np.expm1(-k * kx))
        else:
            link = loss + _rest(lo, hi, xq, kx, fin, lsz, ld, lp, la, mode, k)
    if n_set < n_slice:  # no way left for the rest: f(D') = 0
        if mode == 0:
            loss += _left(lm[xq] - own, settled, n_set, n_slice)
        else:
            q = lo
            while q < hi:
                if fin[q]:
                    q += lsz[q]
                    continue
                loss += la[q] * lp[q]
                q += 1
    return loss, link


#: chunks of sources, each with its own accumulators, summed in order at the end
N_CHUNKS = 32

#: the searches for the pairs counted from one end first cover the nodes up to this many times the removed
#: node's distance from the source (no less than 2: the counted targets lie within twice that distance)
CAP = 2.1

#: the first cap of unit links (IIC): hop counts leave many more nodes at the cap's edge, and with 2.1 more of the
#: searches run again (planar 3,000, IIC pass, one thread, four alternating runs: 6.83 CPU s at 2.1, 6.47 at 3.0)
CAP_UNIT = 3.0

#: when that is not enough, the second search covers this many times the distance (the third: the whole slice)
CAP_WIDE = 3.5

#: width of the band, relative to the pair's distance, in which a pair's removal is shared between its
#: two ends (see :func:`_side`)
SIDE_BAND = 1e-6


@njit(cache=True, error_model="numpy", inline="always")
def _side(z, scale):  # pragma: no cover - compiled
    """Share of a pair's removal loss counted from this end: 1 when ``z > scale``, 0 when ``z < -scale``.

    ``z`` changes sign between the two ends of the pair (up to rounding, far below ``scale``), so the
    two shares add up to 1; in between they are interpolated, so rounding cannot count a pair twice.
    """
    if z > scale:
        return 1.0
    if z < -scale:
        return 0.0
    if scale == 0.0:
        return 0.5
    return 0.5 + 0.5 * z / scale


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _node_link_half(
    xq, hi, skip_eid, do_link, cap, lptr, lin, lnb, le, lsl, lsi, lso, lsz, ldep, lpar, ld, lp, la, mode, k,
    key, beta, fin, hk, hv, unit, hn,
):  # pragma: no cover - compiled
    r""":func:`_node_link_loss` for the pairs counted from this source's end only; ``ok`` False: retry.

    A pair :math:`(s, t)` and a node :math:`x` on every shortest path between them give the same loss
    from either end (the graph is undirected), so each such triple is counted once, from the end farther
    from :math:`x`: from :math:`s` when :math:`D_{sx} > D_{xt} = D_{st} - D_{sx}`, i.e. for the targets
    with :math:`D_{st} < 2 D_{sx}` (:func:`_side` shares the ties); for the link :math:`y \to x` (``y`` the
    node's dominator), when :math:`D_{sy} > D_{xt}`, i.e. :math:`D_{st} < D_{sx} + D_{sy}`.  The caller
    doubles the result.  Those targets are near :math:`x`, so the search runs only on the slice's nodes no
    farther than ``cap`` from the source (a connected top of the subtree): a new distance found there
    that is at most ``cap`` is exact (any path through a node left out is longer than ``cap``).  When a
    counted target's new distance is not shown to be at most ``cap`` the result is not used (``ok``
    False) and the caller runs the search again with ``cap = inf`` (every node of the slice).  The search
    stops once every counted target is settled.  Returns ``(node loss, link loss, ok)``.

    With unit links (``unit``) every slack is 0, 1 or 2 (the two ends of a link are at most one level
    apart), so the queued increases never span more than three values, from the smallest up: the heap
    is replaced by three buckets (increase modulo 3), each a stack linked through ``hn`` (``hn[:3]`` the
    bucket heads, ``hn[3 + i]`` the entry after entry ``i``, whose node is ``hv[i]``).
    """
    lo = xq + 1
    droot = ldep[xq]
    dx = ld[xq]
    dy = ld[lpar[xq]]
    two_dx = 2.0 * dx
    dxy = dx + dy
    size = 0  # entries queued
    n_push = 0  # unit: entries written to hv / hn so far
    cur = 0  # unit: the bucket being emptied (every queued increase lies in cur .. cur + 2)
    if unit:
        hn[0] = -1
        hn[1] = -1
        hn[2] = -1
    n_need = 0  # targets with a node share > 0 in the searched part
    link_mass = 0.0  # PC: sum of (link share) a_t f(D_st) over the searched part
    d_link = -1.0  # the farthest target with a link share > 0
    lim = 2.0 * dx * (1.0 + 2.0 * SIDE_BAND)  # no target beyond this has a share
    if cap < lim:
        cap = lim
    t = lo
    while t < hi:
        dt = ld[t]
        if dt > cap:
            fin[t] = True  # left out, with everything below it
            t += lsz[t]
            continue
        fin[t] = False
        sc = SIDE_BAND * dt
        if _side(two_dx - dt, sc) > 0.0:
            n_need += 1
        wl = _side(dxy - dt, sc) if do_link else 0.0
        if wl > 0.0:
            link_mass += wl * la[t] * lp[t]
            if dt > d_link:
                d_link = dt
        best = np.inf
        for j in range(lptr[t + 1] - 1, lptr[t] - 1, -1):
            if lsl[j] >= droot:
                break  # this link and the rest stay inside the subtree (or reach the removed node)
            cand = lsi[j]
            if cand < best:
                best = cand
        key[t] = best
        par = lpar[t]
        above = beta[par] if par >= lo else np.inf
        if best < above:
            beta[t] = best
            if unit:
                n_push = _bucket_push(hv, hn, n_push, best, t)
                size += 1
            else:
                size = _push(hk, hv, size, best, t)
        else:
            beta[t] = above
        t += 1
    wx = _side(dy, SIDE_BAND * dx) if do_link else 0.0  # the link's share of the pair (s, x)
    if wx > 0.0 and dx > d_link:
        d_link = dx
    kx = np.inf
    if do_link:
        for j in range(lptr[xq + 1] - 1, lptr[xq] - 1, -1):
            if lsl[j] >= droot:
                break
            if le[j] != skip_eid and lsi[j] < kx:
                kx = lsi[j]
    own = wx * la[xq] * lp[xq]
    loss = 0.0
    link = 0.0
    link_set = 0.0  # PC: link-share mass settled
    n_set = 0  # targets with a node share settled
    open_link = do_link
    b = 0
    ent = 0
    while size > 0:
        if unit:
            b = cur % 3
            while hn[b] < 0:
                cur += 1
                b = cur % 3
            ent = hn[b]
            d = float(cur)
            u = hv[ent]
        else:
            d = hk[0]
            u = hv[0]
        if open_link and d >= kx:  # every entry left is >= kx: the node would settle now
            if d_link >= 0.0 and d_link + kx > cap:
                return 0.0, 0.0, False
            if mode == 0:
                rest = link_mass - link_set
                link -= (own + (rest if rest > 0.0 else 0.0)) * np.expm1(-k * kx)
            else:
                link += _rest_half(lo, hi, xq, kx, dxy, wx, fin, lsz, ld, lp, la, k)
            open_link = False
        if not open_link and n_set == n_need:
            break  # every counted target is settled
        if unit:
            hn[b] = hn[3 + ent]
            size -= 1
        else:
            size = _pop(hk, hv, size)
        if fin[u] or d > key[u]:
            continue
        group_n = 0.0
        group_l = 0.0
        q = u
        end = u + lsz[u]
        du = ldep[u]
        while q < end:
            if fin[q]:
                q += lsz[q]  # settled earlier (or left out), with everything below it
                continue
            fin[q] = True
            dq = ld[q]
            sc = SIDE_BAND * dq
            wn = _side(two_dx - dq, sc)
            if wn > 0.0:
                if dq + d > cap:
                    return 0.0, 0.0, False
                n_set += 1
                ap = la[q] * lp[q]
                if mode == 0:
                    group_n += wn * ap
                else:
                    loss += wn * la[q] * (lp[q] - _f(dq + d, mode, k))
                if open_link:
                    wl = _side(dxy - dq, sc)
                    if wl > 0.0:
                        if mode == 0:
                            group_l += wl * ap
                        else:
                            link += wl * la[q] * (lp[q] - _f(dq + d, mode, k))
            j0 = lin[q]
            j1 = lptr[q + 1]
            if j0 == j1 or lsl[j0] < droot or lsl[j1 - 1] >= du:
                q += 1  # every link stays in the group's subtree or leaves the slice
                continue
            for j in range(j0, j1):
                sj = lsl[j]
                if sj >= du:
                    continue  # stays inside this group's subtree: the same increase
                if sj < droot:
                    break  # this link and the rest leave the slice
                v = lnb[j]
                cand = d + lso[j]
                if v < lo:  # the removed node: a way back in for the link's removal
                    if cand < kx:
                        kx = cand
                    continue
                if ld[v] > cap or fin[v]:
                    continue
                if cand < key[v] and cand < beta[v]:  # else a node above v settles it no later
                    key[v] = cand
                    if unit:
                        n_push = _bucket_push(hv, hn, n_push, cand, v)
                        size += 1
                    else:
                        size = _push(hk, hv, size, cand, v)
            q += 1
        if mode == 0:
            e = np.expm1(-k * d)
            loss -= group_n * e
            if open_link:
                link -= group_l * e
                link_set += group_l
    if n_set < n_need:  # counted targets not reached: no way left, or not within the searched part
        if cap != np.inf:
            return 0.0, 0.0, False
        q = lo
        while q < hi:
            if fin[q]:
                q += lsz[q]
                continue
            wn = _side(two_dx - ld[q], SIDE_BAND * ld[q])
            loss += wn * la[q] * lp[q]
            q += 1
    if open_link:
        if kx != np.inf and d_link >= 0.0 and d_link + kx > cap:
            return 0.0, 0.0, False
        if kx == np.inf and d_link >= 0.0 and cap != np.inf:
            return 0.0, 0.0, False
        if mode == 0:
            rest = link_mass - link_set
            rest = own + (rest if rest > 0.0 else 0.0)
            link += rest if kx == np.inf else -rest * np.expm1(-k * kx)
        else:
            link += _rest_half(lo, hi, xq, kx, dxy, wx, fin, lsz, ld, lp, la, k)
    return loss, link, True


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _rest_half(lo, hi, xq, kx, dxy, wx, fin, lsz, ld, lp, la, k):  # pragma: no cover - compiled
    """IIC: :func:`_rest` with each target's link share (``wx``: the node's own)."""
    loss = wx * la[xq] * (lp[xq] - _f(ld[xq] + kx, 1, k))
    q = lo
    while q < hi:
        if fin[q]:
            q += lsz[q]
            continue
        wl = _side(dxy - ld[q], SIDE_BAND * ld[q])
        if wl > 0.0:
            loss += wl * la[q] * (lp[q] - _f(ld[q] + kx, 1, k))
        q += 1
    return loss


@njit(cache=True, error_model="numpy", inline="always")
def _left(total, settled, n_set, n_slice):  # pragma: no cover - compiled
    """The part of a slice's mass ``total`` not settled yet (0 when every node is; never below 0)."""
    if n_set == n_slice:
        return 0.0
    r = total - settled
    return r if r > 0.0 else 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def _one_source(
    s, indptr, indices, w, eid, a, mode, k, dmax, do_links, do_between, unit, positive,
    dist, pos, idom, depth, indeg, ineid, order, sigma, tin, sz, euler, stack, child_ptr, child_idx, p, mass,
    key, beta, fin, hk, hv, hn, delta, delta_pc, pred_ptr, pred,
    ld, lp, la, lm, lsz, ldep, lpar, lptr, lin, lnb, lw, le, lsl, lsi, lso, sp, lg,
    node_loss, link_loss, node_bound, link_bound, bc, bcpc,
):  # pragma: no cover - compiled
    """One source: Dijkstra, dominator tree, every node / link loss and bound, Brandes dependencies.

    The dominator tree of the shortest-path DAG is numbered in pre-order and the removals run on copies
    of the node and link arrays in that numbering (``ld`` ... ``lsl``, see :func:`_subtree_loss`); the
    bounds stay zero while ``dmax`` is ``inf``.  Returns ``(sum_t a_t f(D_st), number of nodes settled)``.
    """
    n = a.shape[0]
    for v in range(n):
        dist[v] = np.inf
        pos[v] = n
        tin[v] = -1
        sigma[v] = 0.0
    dist[s] = 0.0
    m = 0
    idom[s] = s
    depth[s] = 0
    if unit:
        # every link 1 long: breadth-first order is Dijkstra's, without a heap (``order`` is the queue).
        # The immediate dominators come with it: every predecessor of v (one level up) is dequeued before
        # v, and each folds itself into v's common dominator when it finds v (see the pass below), so
        # v's dominator and depth are final when v is dequeued; without Brandes' sums that pass is skipped
        pos[s] = 0
        order[0] = s
        m = 1
        q = 0
        while q < m:
            u = order[q]
            if q > 0:
                depth[u] = depth[idom[u]] + 1
            q += 1
            d = dist[u] + 1.0
            for j in range(indptr[u], indptr[u + 1]):
                v = indices[j]
                dv = dist[v]
                if dv == np.inf:
                    dist[v] = d
                    pos[v] = m
                    order[m] = v
                    m += 1
                    idom[v] = u
                    indeg[v] = 1
                    ineid[v] = eid[j]
                elif dv == d:  # another predecessor of v
                    idom[v] = _common_dominator(idom, depth, idom[v], u)
                    indeg[v] += 1
                    ineid[v] = eid[j]
    size = 0 if unit else _push(hk, hv, 0, 0.0, s)
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if pos[u] < n or d > dist[u]:
            continue
        pos[u] = m
        order[m] = u
        m += 1
        for j in range(indptr[u], indptr[u + 1]):
            v = indices[j]
            if pos[v] < n:
                continue
            cand = d + w[j]
            if cand < dist[v]:
                dist[v] = cand
                size = _push(hk, hv, size, cand, v)
    total = 0.0
    for q in range(m):
        v = order[q]
        p[v] = _f(dist[v], mode, k)
        total += a[v] * p[v]
    if m <= 1:
        return total, m
    # immediate dominators of the shortest-path DAG (links u -> v with dist[u] + w = dist[v], u settled
    # first): in settle (topological) order, idom(v) = the common dominator of all of v's predecessors
    # (with the number of shortest paths, sigma, and the predecessors in settle order for Brandes' sums);
    # for unit links the breadth-first search above found the dominators already, and this pass runs
    # only when Brandes' sums need sigma and the predecessors
    sigma[s] = 1.0
    npred = 0
    for q in range(1 if do_between or not unit else m, m):
        v = order[q]
        cur = -1
        cnt = 0
        last = -1
        tot = 0.0
        pred_ptr[q] = npred
        for j in range(indptr[v], indptr[v + 1]):
            u = indices[j]
            if pos[u] >= q or dist[u] + w[j] != dist[v]:
                continue
            pred[npred] = u
            npred += 1
            tot += sigma[u]
            cnt += 1
            last = eid[j]
            if cur < 0:
                cur = u
                continue
            cur = _common_dominator(idom, depth, cur, u)
        sigma[v] = tot
        idom[v] = cur
        depth[v] = depth[cur] + 1
        indeg[v] = cnt
        ineid[v] = last
    # children lists (counting sort on idom), pre-order numbering with an explicit stack
    for q in range(n + 1):
        child_ptr[q] = 0
    for q in range(1, m):
        child_ptr[idom[order[q]] + 1] += 1
    for q in range(n):
        child_ptr[q + 1] += child_ptr[q]
    for q in range(1, m):
        v = order[q]
        child_idx[child_ptr[idom[v]]] = v
        child_ptr[idom[v]] += 1
    for q in range(n, 0, -1):
        child_ptr[q] = child_ptr[q - 1]
    child_ptr[0] = 0
    top = 0
    stack[top] = s
    top += 1
    c = 0
    while top > 0:
        top -= 1
        v = stack[top]
        tin[v] = c
        euler[c] = v
        c += 1
        for q in range(child_ptr[v], child_ptr[v + 1]):
            stack[top] = child_idx[q]
            top += 1
    # subtree sizes and f-weighted masses (a_t f(D_st) summed over the subtree, the node included)
    for q in range(m):
        v = order[q]
        sz[v] = 1
        mass[v] = a[v] * p[v]
    for q in range(m - 1, 0, -1):
        v = order[q]
        sz[idom[v]] += sz[v]
        mass[idom[v]] += mass[v]
    # the node arrays in pre-order
    for q in range(m):
        v = euler[q]
        ld[q] = dist[v]
        lp[q] = p[v]
        la[q] = a[v]
        lm[q] = mass[v]
        lsz[q] = sz[v]
        ldep[q] = depth[v]
        lpar[q] = tin[idom[v]] if q > 0 else -1
    # the depths in pre-order as a sparse table: the nearest common dominator of the nodes numbered
    # y < z is one above the shallowest node numbered y + 1 .. z (a range minimum, constant time)
    for q in range(m):
        sp[0, q] = ldep[q]
    h = 1
    lev = 1
    while 2 * h <= m:
        for q in range(m - 2 * h + 1):
            y = sp[lev - 1, q]
            z = sp[lev - 1, q + h]
            sp[lev, q] = y if y < z else z
        h *= 2
        lev += 1
    # the links of every node that lies in a slice of two nodes or more (below depth 1, or at depth 1
    # with something below it), sorted deepest first by the depth of the nearest common dominator of
    # their two ends; a node alone in its slice (every node of a complete graph's star) needs none
    c = 0
    for q in range(m):
        lptr[q] = c
        lin[q] = c
        if ldep[q] < 2 and (ldep[q] == 0 or lsz[q] == 1):
            continue
        t = euler[q]
        j0 = c
        depth_q = ldep[q]
        qend = q + lsz[q]
        qpar = lpar[q]
        # sort the node's links deepest first on (depth, link) pairs in two scratch arrays (free after
        # the pre-order numbering; insertion sort, stable: a few links per node), then write them once
        nd = 0
        for j in range(indptr[t], indptr[t + 1]):
            tu = tin[indices[j]]
            if q < tu < qend:  # below q: q is the common dominator
                lv = depth_q
            elif tu == qpar:  # q's dominator
                lv = depth_q - 1
            else:
                y = q + 1 if q < tu else tu + 1
                z = tu if q < tu else q
                lev = lg[z - y + 1]
                y = sp[lev, y]
                z = sp[lev, z - (1 << lev) + 1]
                lv = (y if y < z else z) - 1
            r = nd
            while r > 0 and stack[r - 1] < lv:
                stack[r] = stack[r - 1]
                child_idx[r] = child_idx[r - 1]
                r -= 1
            stack[r] = lv
            child_idx[r] = j
            nd += 1
        dist_q = ld[q]
        for r in range(nd):
            j = child_idx[r]
            tu = tin[indices[j]]
            wj = w[j]
            dt = ld[tu]
            lsl[c] = stack[r]
            lnb[c] = tu
            lw[c] = wj
            le[c] = eid[j]
            lsi[c] = dt + wj - dist_q  # the slack of the link into q (>= 0)
            lso[c] = dist_q + wj - dt  # and out of q
            c += 1
        r = j0
        while r < c and lsl[r] >= ldep[q]:
            r += 1
        lin[q] = r
    lptr[m] = c
    # removal losses: a node x can only lengthen the paths to the nodes it dominates; a link only those
    # to the subtree of its head, and only when it is that head's one way in
    a_s = a[s]
    fmax = _f(dmax, mode, k)
    half = dmax == np.inf and positive  # each pair counted from one end (links of length 0: both)
    # every node this source reaches within the cap (settled last = farthest): its searches are exact,
    # one per node for both removals, each pair from both ends like the capped ones of other sources
    within = dist[order[m - 1]] <= dmax
    for q in range(1, m):
        x = euler[q]
        far = ld[q] > dmax
        szx = lsz[q]
        if half and szx > 1:
            both = do_links and indeg[x] == 1
            # a counted target's new distance may lie beyond the cap: search again with a wider one, then the
            # whole slice
            cap = (CAP_UNIT if unit else CAP) * ld[q]
            while True:
                loss, lloss, ok = _node_link_half(
                    q, q + szx, ineid[x], both, cap, lptr, lin, lnb, le, lsl, lsi, lso, lsz, ldep, lpar, ld, lp,
                    la, mode, k, key, beta, fin, hk, hv, unit, hn,
                )
                if ok:
                    break
                cap = CAP_WIDE * ld[q] if cap < CAP_WIDE * ld[q] else np.inf
            node_loss[x] += 2.0 * a_s * loss
            if both:
                link_loss[ineid[x]] += 2.0 * a_s * lloss
            continue
        if within and szx > 1:
            both = do_links and indeg[x] == 1
            loss, lloss = _node_link_loss(
                q, q + szx, ineid[x], both, lptr, lin, lnb, le, lsl, lsi, lso, lsz, ldep, lpar, ld, lp, la, lm, mode, k,
                key, beta, fin, hk, hv,
            )
            node_loss[x] += a_s * loss
            if both:
                link_loss[ineid[x]] += a_s * lloss
            continue
        if szx > 1:
            if far:
                node_bound[x] += a_s * (mass[x] - la[q] * lp[q])
            else:
                loss, bnd = _subtree_loss(
                    q + 1, q + szx, ldep[q], -1, lptr, lin, lnb, lw, le, lsl, lsz, ldep, lpar, ld, lp, la,
                    mode, k, dmax, key, beta, fin, hk, hv,
                )
                node_loss[x] += a_s * loss
                node_bound[x] += a_s * bnd
        if do_links and indeg[x] == 1:
            e = ineid[x]
            if far:
                link_bound[e] += a_s * mass[x]
            elif szx > 1:
                loss, bnd = _subtree_loss(
                    q, q + szx, ldep[q], e, lptr, lin, lnb, lw, le, lsl, lsz, ldep, lpar, ld, lp, la,
                    mode, k, dmax, key, beta, fin, hk, hv,
                )
                link_loss[e] += a_s * loss
                link_bound[e] += a_s * bnd
            else:
                share = 1.0
                if half:  # the pair (s, x) counted from the end farther from the link (see _node_link_half)
                    share = 2.0 * _side(ld[lpar[q]], SIDE_BAND * ld[q])
                    if share == 0.0:
                        continue
                # alone in its slice: its best other link, read straight from the graph
                dx = ld[q]
                best = np.inf
                capped = False
                for j in range(indptr[x], indptr[x + 1]):
                    if eid[j] == e:
                        continue
                    du = dist[indices[j]]
                    if du > dmax:
                        capped = True
                        continue
                    cand = du + w[j] - dx
                    if cand < best:
                        best = cand
                ax = la[q]
                px = lp[q]
                if best == np.inf:
                    loss = ax * px
                    bnd = ax * fmax if capped else 0.0
                else:
                    loss = -(ax * px) * np.expm1(-k * best) if mode == 0 else ax * (px - _f(dx + best, mode, k))
                    bnd = ax * fmax if capped and dx + best > dmax else 0.0
                link_loss[e] += share * a_s * loss
                link_bound[e] += a_s * bnd
    if do_between:
        # Brandes' back-propagation over the shortest-path predecessors (sigma: numbers of shortest paths)
        pred_ptr[m] = npred
        for q in range(m):
            v = order[q]
            delta[v] = 0.0
            delta_pc[v] = 0.0
        for q in range(m - 1, 0, -1):
            v = order[q]
            wv_pc = a_s * a[v] * p[v]
            for j in range(pred_ptr[q], pred_ptr[q + 1]):
                u = pred[j]
                cf = sigma[u] / sigma[v]
                delta[u] += cf * (1.0 + delta[v])
                delta_pc[u] += cf * (wv_pc + delta_pc[v])
            bc[v] += delta[v]
            bcpc[v] += delta_pc[v]
    return total, m


@njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _all_sources(indptr, indices, w, eid, a, n_links, mode, k, dmax, do_links, do_between, n_chunks):  # pragma: no cover
    n = a.shape[0]
    nl = max(n_links, 1)
    node_loss = np.zeros((n_chunks, n))
    link_loss = np.zeros((n_chunks, nl))
    node_bound = np.zeros((n_chunks, n))
    link_bound = np.zeros((n_chunks, nl))
    bc = np.zeros((n_chunks, n))
    bcpc = np.zeros((n_chunks, n))
    totals = np.zeros(n)
    nnz = indices.shape[0]
    unit = True
    positive = True
    for j in range(nnz):
        if w[j] != 1.0:
            unit = False
        if not w[j] > 0.0:
            positive = False
    # floor(log2(i)) for the sparse tables
    lg = np.zeros(n + 1, np.int64)
    for i in range(2, n + 1):
        lg[i] = lg[i >> 1] + 1
    n_lev = lg[max(n, 1)] + 1
    for c in prange(n_chunks):
        dist = np.empty(n)
        pos = np.empty(n, np.int64)
        idom = np.empty(n, np.int64)
        depth = np.empty(n, np.int64)
        indeg = np.empty(n, np.int64)
        ineid = np.empty(n, np.int64)
        order = np.empty(n, np.int64)
        sigma = np.empty(n)
        tin = np.empty(n, np.int64)
        sz = np.empty(n, np.int64)
        euler = np.empty(n, np.int64)
        stack = np.empty(n, np.int64)
        child_ptr = np.empty(n + 1, np.int64)
        child_idx = np.empty(n, np.int64)
        p = np.zeros(n)
        mass = np.zeros(n)
        key = np.empty(n)
        fin = np.zeros(n, np.bool_)
        beta = np.empty(n)
        hk = np.empty(nnz + n + 1)
        hv = np.empty(nnz + n + 1, np.int64)
        hn = np.empty(nnz + n + 4, np.int64)
        delta = np.empty(n)
        delta_pc = np.empty(n)
        pred_ptr = np.empty(n + 1, np.int64)
        pred = np.empty(nnz, np.int64)
        ld = np.empty(n)
        lp = np.empty(n)
        la = np.empty(n)
        lsz = np.empty(n, np.int32)
        ldep = np.empty(n, np.int32)
        lpar = np.empty(n, np.int32)
        lptr = np.empty(n + 1, np.int32)
        lin = np.empty(n, np.int32)
        lnb = np.empty(nnz, np.int32)
        lw = np.empty(nnz)
        le = np.empty(nnz, np.int32)
        lsl = np.empty(nnz, np.int32)
        lm = np.empty(n)
        lsi = np.empty(nnz)
        lso = np.empty(nnz)
        sp = np.empty((n_lev, n), np.int32)
        for s in range(c, n, n_chunks):
            tot, _ = _one_source(
                s, indptr, indices, w, eid, a, mode, k, dmax, do_links, do_between, unit, positive,
                dist, pos, idom, depth, indeg, ineid, order, sigma, tin, sz, euler, stack, child_ptr, child_idx,
                p, mass, key, beta, fin, hk, hv, hn, delta, delta_pc, pred_ptr, pred,
                ld, lp, la, lm, lsz, ldep, lpar, lptr, lin, lnb, lw, le, lsl, lsi, lso, sp, lg,
                node_loss[c], link_loss[c], node_bound[c], link_bound[c], bc[c], bcpc[c],
            )
            totals[s] = tot
    return (
        totals, node_loss.sum(axis=0), link_loss.sum(axis=0)[:n_links], bc.sum(axis=0), bcpc.sum(axis=0),
        node_bound.sum(axis=0), link_bound.sum(axis=0)[:n_links],
    )


class RemovalDeltas(NamedTuple):
    """Result of :func:`removal_deltas` (arrays by node or by link number)."""

    totals: np.ndarray
    node_loss: np.ndarray
    link_loss: np.ndarray
    bc: np.ndarray
    bcpc: np.ndarray
    node_bound: np.ndarray
    link_bound: np.ndarray


def removal_deltas(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    link_ids: np.ndarray,
    a: np.ndarray,
    *,
    n_links: int,
    mode: int = MODE_PC,
    k: float = 1.0,
    max_distance: float = np.inf,
    links: bool = True,
    betweenness: bool = True,
) -> RemovalDeltas:
    r"""Per-source sums and the loss of every node and link removal, in one pass per source.

    Parameters
    ----------
    indptr, indices, weights
        Symmetric CSR adjacency (both directions of every link), weights >= 0 (PC: distances;
        IIC: ones).
    link_ids
        Link number of every CSR entry (both directions carry the same number), ``0 .. n_links - 1``.
    a
        Node weights :math:`a_i \ge 0`.
    n_links
        Number of links.
    mode
        :data:`MODE_PC` (:math:`e^{-kD}`) or :data:`MODE_IIC` (:math:`1 / (1 + D)`).
    k
        Decay constant of :data:`MODE_PC`.
    max_distance
        Pairs farther apart than this (:math:`f(D) < f(\text{max\_distance})`) are not recomputed;
        the error this allows is returned in ``node_bound`` and ``link_bound``.  Default ``inf``: every
        pair, exact, and both bounds are zero.
    links, betweenness
        Compute link losses; compute BC and BCPC (each unordered pair counted twice).

    Returns
    -------
    RemovalDeltas
        ``totals``: :math:`\sum_t a_t f(D_{st})` per source :math:`s` (:math:`t = s` included).
        ``node_loss``: :math:`\sum_{s,t \ne x} a_s a_t (f(D_{st}) - f(D^{-x}_{st}))` per node, the
        connector part of the node's removal (its own pairs are the intra and flux parts).
        ``link_loss``: :math:`\sum_{s,t} a_s a_t (f(D_{st}) - f(D^{-e}_{st}))` per link (zeros when
        ``links`` is off).  ``bc``, ``bcpc``: Brandes dependencies summed over sources (ordered pairs).
        ``node_bound``, ``link_bound``: the exact loss lies in ``[loss - bound, loss + bound]``.

    Examples
    --------
    Path 0 - 1 - 2 with unit areas and unit link counts (IIC): removing node 1 cuts the pair (0, 2),
    whose term was 1 / (1 + 2) in both directions.

    >>> indptr = np.array([0, 1, 3, 4]); indices = np.array([1, 0, 2, 1])
    >>> w = np.ones(4); ids = np.array([0, 0, 1, 1]); a = np.ones(3)
    >>> r = removal_deltas(indptr, indices, w, ids, a, n_links=2, mode=MODE_IIC)
    >>> r.node_loss.round(4).tolist(), r.link_loss.round(4).tolist(), (r.bc / 2).tolist()
    ([0.0, 0.6667, 0.0], [1.6667, 1.6667], [0.0, 1.0, 0.0])
    """
    n = int(a.shape[0])
    n_chunks = max(1, min(n, N_CHUNKS))  # not the thread count: the same sums in the same order on any machine
    return RemovalDeltas(
        *_all_sources(
            np.ascontiguousarray(indptr, dtype=np.int64),
            np.ascontiguousarray(indices, dtype=np.int64),
            np.ascontiguousarray(weights, dtype=np.float64),
            np.ascontiguousarray(link_ids, dtype=np.int64),
            np.ascontiguousarray(a, dtype=np.float64),
            int(n_links),
            int(mode),
            float(k),
            float(max_distance),
            bool(links),
            bool(betweenness),
            n_chunks,
        )
    )
