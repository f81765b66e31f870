"""Current and voltage maps of the solves (Circuitscape's current through each node)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from leopardgeo.kernels.circuit._compiled import (
    _branch_sums,
    _clique_currents,
    _max_currents,
    _paint,
    _pair_currents,
    _solve_currents,
)
from leopardgeo.kernels.circuit.assembly import CircuitNetwork

logger = logging.getLogger(__name__)

#: Cells below which the current maps are computed on the calling thread (a pool costs more than it saves).
SERIAL_CELLS = 250_000


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
    >>> from leopardgeo.kernels.circuit.assembly import build_network
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


def _pair_groups(ia: np.ndarray, ib: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The solves ``(ia[p], ib[p])`` as groups of columns whose pairs they are, each pair once; None if they are not.

    Column ``m`` is a ground (zero volts); it may belong to several groups (one
    ground per component).  Returns the groups' columns one after another and
    their start offsets (CSR-like), the input of :func:`_clique_currents`.
    All pairs of a run's patches (the demo's 595 of 35 patches) form one group
    per connected component.

    Examples
    --------
    >>> cols, starts = _pair_groups(np.array([0, 0, 1]), np.array([1, 2, 2]), 2)  # columns 0, 1 and the ground
    >>> cols.tolist(), starts.tolist()
    ([0, 1, 2], [0, 3])
    >>> _pair_groups(np.array([0, 0]), np.array([1, 2]), 2) is None  # (1, 2) missing
    True
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    if lo.size == 0 or (lo == hi).any() or np.unique(lo * (m + 1) + hi).size != lo.size:
        return None
    real = hi < m
    graph = sp.coo_matrix((np.ones(int(real.sum())), (lo[real], hi[real])), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    used = np.unique(np.concatenate([lo, hi[real]]))
    n_comp = int(label.max()) + 1
    size = np.bincount(label[used], minlength=n_comp)
    inner = np.bincount(label[lo[real]], minlength=n_comp)
    grounded = np.bincount(label[lo[~real]], minlength=n_comp)
    cols: list[np.ndarray] = []
    starts = [0]
    for comp in np.flatnonzero(size):
        n = int(size[comp])
        if inner[comp] != n * (n - 1) // 2 or grounded[comp] not in (0, n):
            return None
        group = used[label[used] == comp]
        if grounded[comp]:
            group = np.append(group, m)
        cols.append(group)
        starts.append(starts[-1] + group.size)
    return np.concatenate(cols).astype(np.int64), np.asarray(starts, dtype=np.int64)


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
        groups = _pair_groups(ia, ib, m)
        if groups is not None and int(np.diff(groups[1]).max()) >= 3:  # all pairs of patches: sorted differences
            args = (net.resistance, net.node, x_full, *groups, net.connectivity, net.avg_resistances)
            cells = _row_blocks(_clique_currents, args, net.node.shape, workers, overlap=1)
        else:
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
