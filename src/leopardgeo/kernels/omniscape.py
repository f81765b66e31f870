r"""Omniscape: omnidirectional current flow from moving-window circuits (McRae et al. 2016; Landau et al. 2021).

No patches are needed.  Every ``block_size`` x ``block_size`` block of cells
whose source strengths add up to more than 0 is a *target*.  Its window is the
circle of ``radius + buffer`` cells around the block's centre cell; the block's
total strength is injected into the source cells within ``radius`` of the
centre (shared in proportion to their strengths, the target block itself left
out), the centre cell is grounded, and the current through every cell of the
window (Circuitscape's node current) is added to the cumulative current map.
The *flow potential* is the same sum with every conductance set to 1 (what the
current would be on a uniform landscape); the *normalised current* is the
cumulative current divided by the flow potential (> 1: more current than the
landscape's geometry alone explains, i.e. channelling; < 1: impeded).

Conventions follow Omniscape.jl 0.6 (``src/utils.jl``: ``get_targets``,
``get_source``, ``get_ground``, ``solve_target!``, ``calc_correction``), so the
maps can be compared cell by cell:

* targets: block centres at rows / columns ``block_radius, block_radius +
  block_size, ...`` (0-based) that leave a whole block inside the grid; the
  strength of a target is the sum of the sources of its block;
* the conductance window is the square of ``radius + buffer`` cells around the
  target, cut at the grid's edges, with the cells farther than ``radius +
  buffer`` from the target (Euclidean, in cells) removed; sources farther than
  ``radius`` are 0;
* the target block is zeroed ``radius + buffer`` cells from the window's first
  row and column, so where the window is cut on the top or left edge the
  zeroed block is not the target's (Omniscape.jl's behaviour, kept so the maps
  agree; it changes only windows within ``radius + buffer`` of those edges);
  a source left on the grounded cell is dropped (Circuitscape's ``rmvsrc``);
* the circuit is Circuitscape's advanced mode: conductance 1 / resistance,
  between neighbours the mean of the two conductances (divided by sqrt 2 on
  diagonals; or the mean of the resistances with ``avg_resistances``), only the
  connected component holding the grounded cell is solved (current injected in
  other components is lost, as in Circuitscape);
* the flow potential uses conductance 1 on the whole square window (not cut to
  the circle), as ``solve_target!`` does;
* with ``block_size`` > 1 and ``correct_artifacts``, both maps of every window
  are multiplied by Omniscape's block-artifact correction (the current of the
  ``block_size``\ :sup:`2` single-cell targets a block stands for, over the
  current of the one block target, on a uniform window).

The circuits are solved with the project's own Laplacian assembly and solvers
(:mod:`leopardgeo.kernels.circuit`).  The targets are split into row bands of
blocks (a fixed number of bands, whatever the executor), each band's windows
are summed in a fixed order into the band's own map, and the bands are added in
order: the result is bit-for-bit the same with any executor and any number of
workers.  A band needs only its rows plus ``radius + buffer`` rows either side,
which is what :func:`omniscape` reads through the ``read_band`` callback (a
window read of a GeoTIFF, for grids larger than memory).

The compiled window solve lives in :mod:`leopardgeo.kernels._omniscape_compiled` and conditional
connectivity in :mod:`leopardgeo.kernels.omniscape_conditions`; their public names are importable
from here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.memory import small_pages
from leopardgeo.core.validation import check_nonnegative, check_resistance_cells, unmasked
from leopardgeo.kernels._omniscape_compiled import (
    _PAD,
    LANES,
    _add_current,
    _bandwidth,
    _batch_floats,
    _branches,
    _buffer_size,
    _currents8,
    _disc_circuit,
    _envelope,
    _factor,
    _factor8,
    _factor_branches,
    _flood,
    _injections,
    _lane_clear,
    _lane_fill,
    _paint8,
    _solve8,
    _solve_add,
    _solve_add_branches,
    _window_banded,
)
from leopardgeo.kernels.circuit._compiled import _branch_sums, _cell_rows, _paint
from leopardgeo.kernels.circuit.solvers import LaplacianSolver
from leopardgeo.kernels.omniscape_conditions import OmniscapeCondition, _condition_sources, condition_target_values

__all__ = [
    "ArrayBands",
    "OmniscapeCondition",
    "OmniscapeMaps",
    "block_correction",
    "check_options",
    "condition_target_values",
    "omniscape",
    "omniscape_targets",
    "solve_window",
    "source_from_resistance",
]

logger = logging.getLogger(__name__)

#: Rows of target blocks per task: small enough to spread over workers, large enough to amortise a task.
BAND_BLOCK_ROWS = 4
#: Widest band (in unknowns) solved by the compiled banded Cholesky; wider windows use a sparse factor.
#: Banded costs ~1.5 pi r**4 multiply-adds for a window of radius r; measured (CPU per window, current only,
#: 2026-12-03, under load): 1.8 ms banded against 91 ms through SuperLU at r = 40, 7.6 against 709 ms at r = 60,
#: and 20 / 35 ms banded at r = 80 / 100.  Its memory grows as the window's cells x its width: 3 x 138 MB at 256.
MAX_BANDWIDTH = 256
#: Largest work arrays (bytes, per band) for solving a band's uncut windows eight at a time; with wider windows
#: every window is solved one by one.  64 MB: radius + buffer up to 47 cells.
BATCH_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class OmniscapeMaps:
    """Outputs of :func:`omniscape` (float64 rasters on the input's grid; NaN on no data when masked).

    Attributes
    ----------
    current
        Cumulative current, amperes (Omniscape's ``cum_currmap``).
    flow_potential
        Cumulative current with every conductance 1 (``flow_potential``), or None.
    normalized
        ``current / flow_potential``, 0 where both are 0 (``normalized_cum_currmap``), or None.
    n_targets
        Number of targets (windows solved).
    """

    current: np.ndarray
    flow_potential: np.ndarray | None
    normalized: np.ndarray | None
    n_targets: int


# --------------------------------------------------------------------------- sources and targets
def source_from_resistance(resistance: np.ndarray, *, r_cutoff: float = math.inf) -> np.ndarray:
    """Source strength from resistance, as Omniscape's ``source_from_resistance``: 1 / r, 0 above ``r_cutoff``.

    Examples
    --------
    >>> source_from_resistance(np.array([[1.0, 2.0], [4.0, np.nan]]), r_cutoff=3.0)
    array([[1. , 0.5],
           [0. , 0. ]])
    """
    r = np.asarray(resistance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.0 / r
    return np.where(np.isnan(r) | (r > r_cutoff), 0.0, s)


def omniscape_targets(source: np.ndarray, block_size: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target cells and strengths: block centres whose block's sources sum to more than 0 (``get_targets``).

    Returns ``rows, cols, strength`` in row-major order of the blocks.

    Examples
    --------
    >>> s = np.zeros((6, 6)); s[0, 0] = 1.0; s[4, 4] = 2.0
    >>> omniscape_targets(s, 3)
    (array([1, 4]), array([1, 4]), array([1., 2.]))
    """
    s = np.nan_to_num(np.asarray(source, dtype=np.float64), nan=0.0)
    br = (block_size - 1) // 2
    nr, nc = s.shape
    ys = np.arange(br, nr - br, block_size)
    xs = np.arange(br, nc - br, block_size)
    if len(ys) == 0 or len(xs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    # block sums: the blocks tile the grid from its corner (block (i, j) is centred on (ys[i], xs[j])); summed
    # block by block, not as differences of a 2-D prefix sum (which loses digits far from the corner on big grids)
    b = block_size
    strength = s[: len(ys) * b, : len(xs) * b].reshape(len(ys), b, len(xs), b).sum(axis=(1, 3))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    keep = strength > 0
    return yy[keep].astype(np.int64), xx[keep].astype(np.int64), strength[keep]


# --------------------------------------------------------------------------- one window
def _window(nr: int, nc: int, y: int, x: int, reach: int) -> tuple[int, int, int, int]:
    return max(y - reach, 0), min(y + reach + 1, nr), max(x - reach, 0), min(x + reach + 1, nc)


def _disc(h: int, w: int, ty: int, tx: int, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return (yy - ty) ** 2 + (xx - tx) ** 2 <= radius * radius


def _window_sources(src_w: np.ndarray, ty: int, tx: int, strength: float, radius: int, buffer: int, br: int) -> np.ndarray:
    """The injected currents of one window (``get_source``) from its sources within ``radius``: zeroed block, scaled."""
    s = src_w.copy()
    c = radius + buffer  # Omniscape zeroes the block around (c, c) of the window, whatever its cut
    s[max(c - br, 0) : c + br + 1, max(c - br, 0) : c + br + 1] = 0.0
    total = s[s > 0].sum()
    if total > 0:
        s = np.where(s > 0, s * (strength / total), 0.0)
    s[ty, tx] = 0.0  # a source on the ground is removed (Circuitscape's rmvsrc)
    return s


def _node_raster(valid: np.ndarray, ty: int, tx: int, connectivity: int) -> tuple[np.ndarray, int]:
    """Node ids of the cells in the grounded cell's component: 0.. for the others, ``n`` for the ground."""
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    lab, _ = ndimage.label(valid, structure=structure)
    comp = lab == lab[ty, tx]
    comp[ty, tx] = False
    n = int(comp.sum())
    node = np.full(valid.shape, -1, np.int32)
    node[comp] = np.arange(n, dtype=np.int32)
    node[ty, tx] = n
    return node, n


def _laplacian(res_w: np.ndarray, node: np.ndarray, n: int, connectivity: int, avg_resistances: bool) -> sp.csr_matrix:
    indptr, indices, data = _cell_rows(res_w, node, n, n, connectivity, avg_resistances, 0)
    lap = sp.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(n, n))
    lap.has_sorted_indices = True
    return lap


def _node_current(
    res_w: np.ndarray, node: np.ndarray, n: int, volts: np.ndarray, inj: np.ndarray, connectivity: int, avg: bool
) -> np.ndarray:
    """Circuitscape's node current painted on the window (0 off the circuit)."""
    v = np.zeros(n + 1)
    v[:n] = volts
    acc = _branch_sums(res_w, node, v, n + 1, connectivity, avg)
    acc[:n] = 0.5 * (acc[:n] + np.abs(inj))  # the ground's current is its branch sum
    out = np.zeros(node.shape)
    _paint(node, acc, out, 1.0)
    return out


def solve_window(
    res_w: np.ndarray,
    src_w: np.ndarray,
    ty: int,
    tx: int,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: LaplacianSolver | None = None,
) -> np.ndarray:
    """Current map of one circuit: inject ``src_w`` (amperes per cell), ground cell ``(ty, tx)``.

    ``res_w`` is the window's resistance (NaN = not in the circuit).  Only the
    component holding the grounded cell is solved; with ``solver`` given (a
    factor of that component's grounded Laplacian), it is reused.

    Examples
    --------
    Three cells in a row, 1 A in at the left, out at the right: 1 A through each.

    >>> solve_window(np.ones((1, 3)), np.array([[1.0, 0.0, 0.0]]), 0, 2, connectivity=4)
    array([[1., 1., 1.]])
    """
    valid = ~np.isnan(res_w)
    if not valid[ty, tx]:
        return np.zeros(res_w.shape)
    node, n = _node_raster(valid, ty, tx, connectivity)
    inj = np.zeros(n)
    on = node[(node >= 0) & (node < n)]
    inj[on] = src_w[(node >= 0) & (node < n)]
    if n == 0 or not inj.any():
        return np.zeros(res_w.shape)
    if solver is None:
        solver = LaplacianSolver(_laplacian(res_w, node, n, connectivity, avg_resistances), "superlu")
    volts = solver.solve(inj)
    return _node_current(res_w, node, n, volts, inj, connectivity, avg_resistances)


# --------------------------------------------------------------------------- block-artifact correction
def block_correction(radius: int, buffer: int, block_size: int, *, connectivity: int = 8) -> np.ndarray:
    r"""Omniscape's block-artifact correction array (``calc_correction``), ``2 (radius + buffer) + 1`` square.

    On a uniform window, the current of the ``block_size``\ :sup:`2` one-cell
    targets a block stands for (each with one unit shared by all other
    sources), over the current of the single block target with strength
    ``block_size``\ :sup:`2`; 1 where either is 0.

    Examples
    --------
    >>> block_correction(4, 0, 1).round(12).min(), block_correction(4, 0, 1).round(12).max()
    (np.float64(1.0), np.float64(1.0))
    """
    c = radius + buffer
    size = 2 * c + 1
    br = (block_size - 1) // 2
    res = np.where(_disc(size, size, c, c, c), 1.0, np.nan)
    inner = _disc(size, size, c, c, radius)
    null_src = np.where(inner, 1.0, 0.0)
    n_sources = null_src.sum()
    null_src[c, c] = 0.0
    null_src[null_src != 0] = 1.0 / (n_sources - 1)
    blocked = _window_sources(np.where(inner, 1.0, 0.0), c, c, float(block_size**2), radius, buffer, br)
    kw = {"connectivity": connectivity}
    block_current = solve_window(res, blocked, c, c, **kw)
    null_current = solve_window(res, null_src, c, c, **kw)
    total = np.zeros((size + block_size - 1, size + block_size - 1))
    for i in range(block_size):
        for j in range(block_size):
            total[i : i + size, j : j + size] += null_current
    total = total[br : br + size, br : br + size]
    total[block_current == 0.0] = 0.0
    total[total == 0.0] = 1.0
    block_current[block_current == 0.0] = 1.0
    return total / block_current


def _correction_cut(corr: np.ndarray, h: int, w: int, y: int, x: int, nr: int, nc: int, reach: int) -> np.ndarray:
    """The part of the correction array Omniscape multiplies a window cut at the grid's edges by."""
    s = corr.shape[0]
    ylo, yhi, xlo, xhi = 0, s, 0, s
    if x > nc - 1 - reach:
        xhi = w
    if x < reach:
        xlo = xhi - w
    if y > nr - 1 - reach:
        yhi = h
    if y < reach:
        ylo = yhi - h
    return corr[ylo:yhi, xlo:xhi]


# --------------------------------------------------------------------------- bands of targets
@dataclass(frozen=True)
class _Params:
    radius: int
    buffer: int
    block_size: int
    connectivity: int
    avg_resistances: bool
    flow_potential: bool
    correction: np.ndarray | None
    shape: tuple[int, int]
    #: ``(comparison, lower, upper)`` of each condition of conditional connectivity (none: every source counts)
    conditions: tuple[tuple[str, float, float], ...] = ()


@numba.njit(cache=True, nogil=True)
def _band_compiled(
    res_b, src_b, row0, ty, tx, strength, shape, radius, buffer, br, k, avg_res, corr, use_corr, fp_on, batch, cur, fp
):
    """All windows of a band in compiled code (no Python between windows, so bands run in parallel on threads).

    The same steps as :func:`_solve_band` (the conditional path; the two agree to rounding, since the branch
    sums are ordered differently, not bit for bit): window cut at the grid's
    edges, conductance within ``radius + buffer``, sources within ``radius``, the block zeroed at
    ``(radius + buffer, radius + buffer)`` of the window, scaled to the target's strength, the ground's
    source removed; the flow potential's factor of a whole (uncut) window is built once and reused.

    With ``batch``, the windows the grid's edge does not cut are solved eight at a time (in target order; the
    band's last batch padded with empty lanes): their current on the disc's common circuit
    (:func:`~leopardgeo.kernels._omniscape_compiled._factor8`), their flow potential with the shared factor of the
    uniform window (:func:`~leopardgeo.kernels._omniscape_compiled._solve8`); the other windows one by one.  The
    batches depend on the band's targets only, so the maps are the same on any executor.
    """  # pragma: no cover - compiled
    nr, nc = shape
    reach = radius + buffer
    full = 2 * reach + 1
    fp_node = np.empty((0, 0), np.int32)
    fp_c = np.empty((0, 0))
    fp_n = -1
    fp_kd = 0
    fp_ga = np.empty(0, np.int32)
    fp_gb = fp_ga
    fp_gg = np.empty(0)
    # the last cut window's flow-potential factor: windows along the grid's top or bottom edge come one after
    # another in a row of targets and are cut alike (same shape, same target position)
    cut_key = (-1, -1, -1, -1)
    cut_node = fp_node
    cut_c = fp_c
    cut_n = -1
    cut_kd = 0
    cut_ga = fp_ga
    cut_gb = fp_gb
    cut_gg = fp_gg
    buf = np.empty(_buffer_size(full, full))  # the factor's work array, reused by every window
    # batches of eight uncut windows: the disc's common circuit and the lanes' work arrays
    _, dn, dcell, dga, dgb, dca, dcb, dwd, dkd, dlast = _disc_circuit(reach if batch else 0, k)
    dwidth = dkd + 2 + _PAD
    dpad = (dn + 3) // 4 * 4
    cells = full * full if batch else 0
    lc = np.empty((cells, LANES))
    lr = np.empty((cells, LANES))
    lm = np.empty((cells, LANES))
    rhs = np.zeros((dpad + 2 * dwidth + 8 if batch else 0, LANES))
    vw = np.zeros(rhs.shape)
    acc = np.empty((dn + 1, LANES))
    G = np.empty((dga.shape[0] if batch else 0, LANES))
    F = np.empty((dpad if batch else 0, dwidth, LANES))
    ly = np.zeros(LANES, np.int64)
    lx = np.zeros(LANES, np.int64)
    n_cur = 0
    # the flow potential's lanes: injections, solution, node currents, windows
    fp_last = np.empty(0, np.int64)
    fp_cells = np.empty(0, np.int64)
    frhs = np.zeros((0, LANES))
    fw = frhs
    facc = frhs
    fy = np.zeros(LANES, np.int64)
    fx = np.zeros(LANES, np.int64)
    n_fp = 0
    for t in range(len(ty) + 1):
        if t == len(ty):  # the band's last, partial, batches
            if n_cur > 0:
                for lane in range(n_cur, LANES):
                    _lane_clear(lane, lc, lr, lm, rhs)
            if n_fp > 0:
                frhs[:, n_fp:] = 0.0
        if n_cur == LANES or (t == len(ty) and n_cur > 0):
            _factor8(lc, lr, lm, dga, dgb, dca, dcb, dwd, dcell, dn, dkd, dlast, avg_res, G, F)
            vw[:] = rhs
            _solve8(F, dwidth, dn, dkd, dlast, vw)
            _currents8(dga, dgb, G, dn, vw, rhs, acc)
            _paint8(acc, dn, dcell, full, lm, True, n_cur, ly, lx, cur, corr, use_corr)
            n_cur = 0
        if n_fp == LANES or (t == len(ty) and n_fp > 0):
            fw[:] = frhs
            _solve8(fp_c.reshape(-1), fp_c.shape[1], fp_n, fp_kd, fp_last, fw)
            _currents8(fp_ga, fp_gb, fp_gg, fp_n, fw, frhs, facc)
            _paint8(facc, fp_n, fp_cells, full, lm, False, n_fp, fy, fx, fp, corr, use_corr)
            n_fp = 0
        if t == len(ty):
            break
        y = ty[t]
        x = tx[t]
        y0 = max(y - reach, 0)
        y1 = min(y + reach + 1, nr)
        x0 = max(x - reach, 0)
        x1 = min(x + reach + 1, nc)
        h = y1 - y0
        w = x1 - x0
        wy = y - y0
        wx = x - x0
        r_w = np.empty((h, w))
        s_w = np.zeros((h, w))
        for i in range(h):
            for j in range(w):
                d2 = (i - wy) ** 2 + (j - wx) ** 2
                r_w[i, j] = res_b[y0 - row0 + i, x0 + j] if d2 <= reach * reach else np.nan
                if d2 <= radius * radius:
                    s_w[i, j] = src_b[y0 - row0 + i, x0 + j]
        for i in range(max(reach - br, 0), min(reach + br + 1, h)):
            for j in range(max(reach - br, 0), min(reach + br + 1, w)):
                s_w[i, j] = 0.0
        total = 0.0
        for i in range(h):
            for j in range(w):
                if s_w[i, j] > 0:
                    total += s_w[i, j]
        for i in range(h):
            for j in range(w):
                if s_w[i, j] > 0:
                    s_w[i, j] = s_w[i, j] * (strength[t] / total)
                else:
                    s_w[i, j] = 0.0
        s_w[wy, wx] = 0.0
        # Omniscape's cut of the correction array at the grid's edges
        cs = corr.shape[0]
        ylo, yhi, xlo, xhi = 0, cs, 0, cs
        if use_corr:
            if x > nc - 1 - reach:
                xhi = w
            if x < reach:
                xlo = xhi - w
            if y > nr - 1 - reach:
                yhi = h
            if y < reach:
                ylo = yhi - h
        c_w = corr[ylo:yhi, xlo:xhi] if use_corr else corr
        whole = h == full and w == full
        if batch and whole:
            if not np.isnan(r_w[wy, wx]) and _lane_fill(r_w, s_w, wy, wx, k, n_cur, dcell, dn, avg_res, lc, lr, lm, rhs):
                ly[n_cur] = y0 - row0
                lx[n_cur] = x0
                n_cur += 1
        else:
            out = cur[y0 - row0 : y1 - row0, x0:x1]
            _window_banded(r_w, s_w, wy, wx, k, avg_res, 1 << 30, out, c_w, use_corr, buf)
        if fp_on:
            key = (h, w, wy, wx)
            if whole and fp_n >= 0:
                node, n, kd, c_, ga, gb, gg = fp_node, fp_n, fp_kd, fp_c, fp_ga, fp_gb, fp_gg
            elif not whole and key == cut_key:
                node, n, kd, c_, ga, gb, gg = cut_node, cut_n, cut_kd, cut_c, cut_ga, cut_gb, cut_gg
            else:
                node, n = _flood(np.ones((h, w), np.bool_), wy, wx, k)
                ga, gb, gg, kd = _branches(np.ones((h, w)), node, n, k, avg_res)
                c_ = _factor_branches(ga, gb, gg, n, kd, buf).copy()
                if whole:
                    fp_node, fp_n, fp_kd, fp_c, fp_ga, fp_gb, fp_gg = node, n, kd, c_, ga, gb, gg
                    if batch:
                        fp_last = _envelope(ga, gb, n)
                        fp_cells = np.empty(n + 1, np.int64)
                        for i in range(h):
                            for j in range(w):
                                fp_cells[node[i, j]] = i * w + j
                        frhs = np.zeros(((n + 3) // 4 * 4 + 8, LANES))
                        fw = np.zeros(frhs.shape)
                        facc = np.empty((n + 1, LANES))
                else:
                    cut_key, cut_node, cut_n, cut_kd, cut_c = key, node, n, kd, c_
                    cut_ga, cut_gb, cut_gg = ga, gb, gg
            if batch and whole:
                hit = False
                for a in range(n):
                    i = fp_cells[a]
                    v = s_w[i // w, i % w]
                    frhs[a, n_fp] = v
                    if v != 0.0:
                        hit = True
                if hit:
                    fy[n_fp] = y0 - row0
                    fx[n_fp] = x0
                    n_fp += 1
                continue
            inj = _injections(node, n, s_w)
            if n > 0 and np.any(inj != 0.0):
                _solve_add_branches(c_, ga, gb, gg, node, n, kd, inj, fp[y0 - row0 : y1 - row0, x0:x1], c_w, use_corr)


def _solve_band(
    res_b: np.ndarray,
    src_b: np.ndarray,
    row0: int,
    ty: np.ndarray,
    tx: np.ndarray,
    strength: np.ndarray,
    p: _Params,
    cond_b: Sequence[np.ndarray] = (),
    cond_values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum the windows of one band's targets into maps of the band's rows (``row0`` = the band's first grid row).

    With conditions (``p.conditions``): ``cond_b`` are the band's rows of each condition's present raster and
    ``cond_values[t]`` the target's values; a window's sources that do not match are dropped.
    """
    nr, nc = p.shape
    reach = p.radius + p.buffer
    br = (p.block_size - 1) // 2
    k, avg = p.connectivity, p.avg_resistances
    cur = np.zeros(res_b.shape)
    fp = np.zeros(res_b.shape) if p.flow_potential else None
    # per window shape and target position (one entry for every window away from the edges)
    discs: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    fp_factors: dict[tuple[int, int, int, int], tuple[np.ndarray, int, int, object]] = {}
    no_corr = np.ones((1, 1))
    # the factor's work array, when every window fits the banded factor; otherwise (wide windows, mostly solved
    # by the sparse factor) each banded window allocates its own
    fits = 2 * reach + 2 <= MAX_BANDWIDTH
    buf = np.empty(_buffer_size(min(2 * reach + 1, nr), min(2 * reach + 1, nc)) if fits else 0)
    for t, (y, x, st) in enumerate(zip(ty.tolist(), tx.tolist(), strength.tolist(), strict=True)):
        y0, y1, x0, x1 = _window(nr, nc, y, x, reach)
        h, w = y1 - y0, x1 - x0
        wy, wx = y - y0, x - x0
        key = (h, w, wy, wx)
        if key not in discs:
            discs[key] = (_disc(h, w, wy, wx, reach), _disc(h, w, wy, wx, p.radius))
        in_reach, in_radius = discs[key]
        rows = slice(y0 - row0, y1 - row0)
        s_w = np.where(in_radius, src_b[rows, x0:x1], 0.0)
        s_w = _window_sources(s_w, wy, wx, st, p.radius, p.buffer, br)
        if p.conditions:  # conditional connectivity: only sources similar to the target
            s_w = _condition_sources(s_w, [c[rows, x0:x1] for c in cond_b], cond_values[t], p.conditions)  # type: ignore[index]
        r_w = np.where(in_reach, res_b[rows, x0:x1], np.nan)
        corr = no_corr if p.correction is None else _correction_cut(p.correction, h, w, y, x, nr, nc, reach)
        use_corr = p.correction is not None
        out = cur[rows, x0:x1]
        if _window_banded(r_w, s_w, wy, wx, k, avg, MAX_BANDWIDTH, out, corr, use_corr, buf) < 0:
            c_w = solve_window(r_w, s_w, wy, wx, connectivity=k, avg_resistances=avg)
            out += c_w * corr if use_corr else c_w
        if fp is not None:
            uniform = np.ones((h, w))
            if key not in fp_factors:
                node, n = _flood(np.ones((h, w), np.bool_), wy, wx, k)
                kd = _bandwidth(node, n, k)
                if kd <= MAX_BANDWIDTH:
                    fac: object = _factor(uniform, node, n, kd, k, avg, np.empty(0)).copy()
                else:
                    fac = LaplacianSolver(_laplacian(uniform, node, n, k, avg), "auto")
                fp_factors[key] = (node, n, kd, fac)
            node, n, kd, fac = fp_factors[key]
            inj = _injections(node, n, s_w)
            if n and inj.any():
                if isinstance(fac, np.ndarray):
                    _solve_add(fac, node, n, kd, uniform, inj, k, avg, fp[rows, x0:x1], corr, use_corr)
                else:
                    volts = np.zeros(n + 1)
                    volts[:n] = fac.solve(inj)  # type: ignore[attr-defined]
                    _add_current(uniform, node, n, volts, inj, k, avg, fp[rows, x0:x1], corr, use_corr)
    return cur, fp


class _Held:
    """A stand-in for an executor's shared handle: holds the object itself."""

    def __init__(self, value: object) -> None:
        self.value = value

    def get(self) -> object:
        return self.value


@dataclass(frozen=True)
class ArrayBands:
    """``read_band`` over in-memory rasters: ``handle.get()`` gives ``(resistance, source, *conditions)``; rows are slices.

    ``handle`` is an executor's shared handle (``executor.share(...)``: the arrays go to each worker once),
    or anything with ``get()``.  The conditions are the present rasters of conditional connectivity, if any.
    """

    handle: object

    def __call__(self, r0: int, r1: int) -> tuple[np.ndarray, ...]:
        """Rows ``r0:r1`` of the resistance, the source and each condition's present raster."""
        arrays = self.handle.get()  # type: ignore[attr-defined]
        return tuple(a[r0:r1] for a in arrays)


def _band_task(item: tuple) -> tuple[int, np.ndarray, np.ndarray | None]:
    """One task: read a band's rows, solve its targets' windows, return its maps (module level, so workers can import it)."""
    read_band, r0, r1, ty, tx, strength, p, *rest = item
    res_b, src_b, *cond_b = read_band(r0, r1)
    res_b = np.ascontiguousarray(res_b, dtype=np.float64)
    src_b = np.asarray(src_b, dtype=np.float64)
    if not np.isfinite(src_b).all():  # arrays in memory were cleaned once by omniscape(); a file's rows may not be
        src_b = np.nan_to_num(src_b, nan=0.0)
    reach = p.radius + p.buffer
    if p.conditions:  # conditional sources are chosen per window in Python; the solves are the same
        if len(cond_b) != len(p.conditions):
            msg = f"omniscape: expected {len(p.conditions)} condition raster(s) from read_band, found {len(cond_b)}."
            raise DataError(msg)
        cond_b = [np.asarray(c, dtype=np.float64) for c in cond_b]
        cur, fp2 = _solve_band(res_b, src_b, r0, ty, tx, strength, p, cond_b, rest[0])
        return r0, cur, fp2
    if 2 * reach + 2 <= MAX_BANDWIDTH:  # every window fits the banded factor: the whole band compiled
        cur = np.zeros(res_b.shape)
        fp = np.zeros(res_b.shape) if p.flow_potential else np.zeros((1, 1))
        corr = np.ones((1, 1)) if p.correction is None else p.correction
        br = (p.block_size - 1) // 2
        args = (ty, tx, strength, p.shape, p.radius, p.buffer, br, p.connectivity, p.avg_resistances)
        # batches only where a window can be uncut, and their work arrays are not too large
        batch = 2 * reach + 1 <= min(p.shape) and _batch_floats(reach, p.connectivity) * 8 <= BATCH_MAX_BYTES
        _band_compiled(res_b, src_b, r0, *args, corr, p.correction is not None, p.flow_potential, batch, cur, fp)
        return r0, cur, fp if p.flow_potential else None
    cur, fp2 = _solve_band(res_b, src_b, r0, ty, tx, strength, p)
    return r0, cur, fp2


def check_options(radius: int, block_size: int, buffer: int = 0, connectivity: int = 8) -> None:
    """Check the window options (in cells) before any work: radius >= 1, an odd block smaller than the window.

    Raises
    ------
    ConfigError
        Saying what was expected and what to use instead.

    Examples
    --------
    >>> check_options(radius=3, block_size=5)
    >>> check_options(radius=3, block_size=7)
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: omniscape block_size: expected fewer cells than the window's 2 x radius + 1 = 7, ...
    """
    radius, block_size, buffer = int(radius), int(block_size), int(buffer)
    if radius < 1:
        msg = f"omniscape radius: expected at least 1 cell, found {radius}. Use a radius of at least one cell size."
        raise ConfigError(msg)
    if block_size < 1 or block_size % 2 == 0:
        msg = f"omniscape block_size: expected an odd number of cells >= 1, found {block_size}. Use {max(block_size + 1, 1)}."
        raise ConfigError(msg)
    if buffer < 0:
        msg = f"omniscape buffer: expected >= 0 cells, found {buffer}."
        raise ConfigError(msg)
    if connectivity not in (4, 8):
        msg = f"omniscape connectivity: expected 4 or 8 neighbours, found {connectivity!r}."
        raise ConfigError(msg)
    window = 2 * radius + 1
    if block_size >= window:  # the target block would cover the whole window: no source left in it, all maps 0
        msg = (
            f"omniscape block_size: expected fewer cells than the window's 2 x radius + 1 = {window}, found "
            f"{block_size} (a block as wide as the window leaves no source in it). Use a block_size of at most "
            f"{window - 2} cells, or a larger radius."
        )
        raise ConfigError(msg)


#: ``read_band(row0, row1) -> (resistance rows, source rows, *condition rows)``
ReadBand = Callable[[int, int], tuple[np.ndarray, ...]]


def omniscape(
    resistance: np.ndarray | None,
    source: np.ndarray | None,
    *,
    radius: int,
    block_size: int = 1,
    buffer: int = 0,
    connectivity: int = 8,
    avg_resistances: bool = False,
    flow_potential: bool = True,
    normalized: bool = True,
    correct_artifacts: bool = True,
    mask_nodata: bool = True,
    executor: object | None = None,
    read_band: ReadBand | None = None,
    shape: tuple[int, int] | None = None,
    targets: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    conditions: Sequence[OmniscapeCondition] = (),
    condition_values: np.ndarray | None = None,
    nodata: np.ndarray | None = None,
) -> OmniscapeMaps:
    """Omniscape's cumulative current, flow potential and normalised current.

    Parameters
    ----------
    resistance, source
        Resistance (> 0; NaN = no data) and source strength (NaN = 0) rasters of
        one shape.  Both may be None when ``read_band`` and ``shape`` are given.
    radius, block_size, buffer
        In cells, as Omniscape.jl's options (``block_size`` odd).
    connectivity, avg_resistances
        Circuitscape's neighbourhood (8, or 4 for ``connect_four_neighbors_only``)
        and ``connect_using_avg_resistances``.
    flow_potential, normalized
        Also compute the flow potential, and the normalised current (needs it).
    correct_artifacts
        Omniscape's block-artifact correction (only with ``block_size`` > 1).
    mask_nodata
        NaN on the resistance's no-data cells in every map.
    executor
        Anything with ``map(fn, items) -> list`` (ordered results), e.g. the run's
        executor; default: in this process.  The result does not depend on it.
    read_band
        ``read_band(row0, row1) -> (resistance rows, source rows)``: how a task
        gets its rows (e.g. a window read of a GeoTIFF); default: slices of the arrays.
    shape
        Grid shape when the arrays are not given.
    targets
        ``(rows, cols, strengths)`` from :func:`omniscape_targets` when already known.
    conditions
        Conditional connectivity (Omniscape's ``conditional``, ``n_conditions``, ``compare_to_future``):
        a target's window keeps only the sources that meet every condition (:class:`OmniscapeCondition`).
        With ``read_band``, its rasters are not read from here: ``read_band`` returns each condition's
        present rows after the source's, and ``condition_values`` (targets x conditions, from
        :func:`condition_target_values`) gives the targets' values.
    condition_values
        See ``conditions``; computed from the conditions' rasters when not given.
    nodata
        With ``read_band``: the grid's no-data cells (boolean, ``shape``) when
        the caller already has them, e.g. from its pass over the bands for the
        targets; without it ``mask_nodata`` reads every band once more.

    Returns
    -------
    OmniscapeMaps

    Examples
    --------
    A uniform strip with a barrier that has one gap: current crowds into the gap.

    >>> r = np.ones((9, 15)); r[:, 7] = 100.0; r[4, 7] = 1.0
    >>> maps = omniscape(r, source_from_resistance(r), radius=4)
    >>> bool(maps.current[4, 7] > 2 * maps.current[1, 7])
    True
    >>> bool(maps.normalized[4, 7] > 1.0 > maps.normalized[1, 7])
    True
    """
    radius, block_size, buffer = int(radius), int(block_size), int(buffer)
    check_options(radius, block_size, buffer, connectivity)
    if read_band is None:
        if resistance is None or source is None:
            msg = "omniscape: expected resistance and source arrays (or read_band and shape), found None."
            raise DataError(msg)
        res_all = np.asarray(unmasked(resistance), dtype=np.float64)
        check_resistance_cells(res_all, what="omniscape resistance")
        check_nonnegative(source, what="omniscape source")
        src_all = np.nan_to_num(np.asarray(source, dtype=np.float64), nan=0.0)
        if res_all.shape != src_all.shape or res_all.ndim != 2:
            msg = f"omniscape: expected a 2-D source of the resistance's shape {res_all.shape}, found {src_all.shape}."
            raise DataError(msg)

        for c in conditions:
            if c.present.shape != res_all.shape:
                msg = f"omniscape: expected condition rasters of the resistance's shape {res_all.shape}, found {c.present.shape}."
                raise DataError(msg)
        arrays = (res_all, src_all, *(c.present for c in conditions))
        share = getattr(executor, "share", None)
        shared = share(arrays) if share is not None else None  # sent to each worker once
        read_band = ArrayBands(shared if shared is not None else _Held(arrays))
        shape = res_all.shape
        if targets is None:
            targets = omniscape_targets(src_all, block_size)
        if conditions and condition_values is None:
            ty0, tx0 = targets[0], targets[1]
            condition_values = np.column_stack(
                [
                    condition_target_values(c.present if c.future is None else c.future, ty0, tx0, block_size, c.comparison)
                    for c in conditions
                ]
            )
    else:
        shared = None
        if shape is None or targets is None:
            msg = "omniscape: read_band needs the grid shape and the targets."
            raise DataError(msg)
        if conditions and condition_values is None:
            msg = "omniscape: read_band with conditions needs the targets' condition_values."
            raise DataError(msg)
    nr, nc = shape
    compute_fp = flow_potential or normalized
    corr = (
        block_correction(radius, buffer, block_size, connectivity=connectivity) if correct_artifacts and block_size > 1 else None
    )
    specs = tuple(c.spec for c in conditions)
    params = _Params(radius, buffer, block_size, connectivity, bool(avg_resistances), compute_fp, corr, (nr, nc), specs)
    ty, tx, strength = targets
    reach = radius + buffer
    # bands of BAND_BLOCK_ROWS rows of blocks; fixed by the grid, never by the executor
    band_rows = BAND_BLOCK_ROWS * block_size
    band_of = ty // band_rows
    bands = [int(b) for b in np.unique(band_of)]

    items = []
    for b in bands:
        sel = band_of == b
        r0 = max(int(ty[sel].min()) - reach, 0)
        r1 = min(int(ty[sel].max()) + reach + 1, nr)
        item = (read_band, r0, r1, ty[sel], tx[sel], strength[sel], params)
        items.append((*item, condition_values[sel]) if conditions else item)  # type: ignore[index]
    with small_pages():  # the grid-sized maps, written band by band: see small_pages
        current = np.zeros((nr, nc))
        fp_map = np.zeros((nr, nc)) if compute_fp else None
    # a few bands per worker at a time: the bands' maps waiting to be added stay a small part of the grid
    chunk = max(8, 4 * int(getattr(executor, "slots", 2)))
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        results = executor.map(_band_task, part) if executor is not None else map(_band_task, part)  # type: ignore[attr-defined]
        for r0, cur, fp in results:
            current[r0 : r0 + cur.shape[0]] += cur
            if fp_map is not None and fp is not None:
                fp_map[r0 : r0 + fp.shape[0]] += fp
    if shared is not None and hasattr(executor, "release"):
        executor.release(shared)  # type: ignore[attr-defined]
    norm = None
    if normalized and fp_map is not None:
        with np.errstate(divide="ignore", invalid="ignore"), small_pages():
            norm = current / fp_map
        norm[np.isnan(norm)] = 0.0
    if mask_nodata:
        if resistance is not None:
            nodata = np.isnan(np.asarray(unmasked(resistance), dtype=np.float64))
        elif nodata is None:
            nodata = _nodata_mask(read_band, nr)
        elif nodata.shape != (nr, nc) or nodata.dtype != bool:
            msg = f"omniscape: expected a boolean no-data mask of shape {(nr, nc)}, found {nodata.dtype} {nodata.shape}."
            raise DataError(msg)
        for m in (current, fp_map, norm):
            if m is not None:
                m[nodata] = np.nan
    logger.info("omniscape: %d targets in %d bands, radius %d cells, block size %d", len(ty), len(bands), radius, block_size)
    return OmniscapeMaps(
        current=current,
        flow_potential=fp_map if flow_potential else None,
        normalized=norm,
        n_targets=len(ty),
    )


def _nodata_mask(read_band: ReadBand, nr: int, step: int = 1024) -> np.ndarray:
    parts: Sequence[np.ndarray] = [
        np.isnan(np.asarray(read_band(r, min(r + step, nr))[0], dtype=np.float64)) for r in range(0, nr, step)
    ]
    return np.concatenate(parts, axis=0)
