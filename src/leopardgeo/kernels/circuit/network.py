"""Circuitscape's network (graph) mode: effective resistances between the nodes of a resistor graph."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from leopardgeo.core.errors import DataError
from leopardgeo.kernels.circuit.modes import _requested_pairs


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
            f"network edge ({ua[i]}, {va[i]}): expected a finite resistance > 0 ohms, found {float(ra[i])!r} "
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
