r"""Circuitscape's advanced mode: current sources and grounds given as rasters, one solve.

Every valid cell is a node (cells of a short-circuit region form one node).  A
source cell injects its current (amperes); a ground cell is tied to 0 V
through its ground resistance (or conductance), or directly.  One linear
system for the whole grid:

.. math:: (L + \mathrm{diag}(g))\, v = s

over the nodes that are not direct grounds (those are held at 0 V), where
:math:`L` is the conductance Laplacian, :math:`g` the finite ground
conductances and :math:`s` the source currents.  Conventions follow
Circuitscape (``compute.py`` of Circuitscape 4 and ``raster/advanced.jl`` of
Circuitscape.jl; McRae, Shah & Mohapatra 2013, *Circuitscape 4 User Guide*):

* ground values are resistances to ground by default
  (``ground_file_is_resistances``): conductance ``1 / r``, a resistance of 0 is
  a direct ground; as conductances, an infinite value is a direct ground;
  NaN or 0 conductance (infinite resistance) is no ground;
* ``use_direct_grounds`` ties every ground cell directly to 0 V;
* ``use_unit_currents`` makes every source cell inject 1 A;
* a cell that is both a source and a ground follows ``remove_src_or_gnd``:
  ``keepall`` keeps both, ``rmvsrc`` drops the source, ``rmvgnd`` the ground,
  ``rmvall`` both (Circuitscape 4's rule, cell by cell).  With ``keepall`` a
  source on a direct ground loses the ground (Circuitscape.jl: the current
  would otherwise vanish into the ground at that cell);
* sources and grounds of the cells of one short-circuit region add up;
* a connected component is solved when its sources do not sum to 0 and it
  holds a ground (Circuitscape.jl's test); other
  components are outside the circuit (NaN in the maps; Circuitscape writes 0);
* a negative source takes current out of the circuit;
* the current map shows the current through each node, Circuitscape's
  ``max(inflow, outflow)`` counting the current to ground as an outflow, which
  equals half the sum of the absolute branch currents plus half the absolute
  source and ground currents.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from leopardgeo.config import CircuitSolver
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.validation import check_resistance, unmasked
from leopardgeo.kernels.circuit._compiled import _branch_sums, _net_inflow, _paint
from leopardgeo.kernels.circuit.assembly import (
    _check_short,
    _merge_regions,
    _region_components,
    assemble_laplacian,
)
from leopardgeo.kernels.circuit.solvers import LaplacianSolver, _check_memory, choose_solver, grid_orderable

__all__ = ["AdvancedResult", "SourceGroundConflict", "advanced_flow"]

logger = logging.getLogger(__name__)


class SourceGroundConflict(enum.StrEnum):
    """What to do with a cell that is both a source and a ground (Circuitscape's ``remove_src_or_gnd``)."""

    KEEPALL = "keepall"  #: keep both
    RMVSRC = "rmvsrc"  #: drop the source
    RMVGND = "rmvgnd"  #: drop the ground
    RMVALL = "rmvall"  #: drop both


@dataclass(frozen=True)
class AdvancedResult:
    """Outputs of :func:`advanced_flow`.

    Attributes
    ----------
    voltage
        Voltage of every cell (float32, V); NaN outside the circuit.
    current
        Current through every cell (float32, A); NaN outside the circuit.
    n_components
        Connected components solved (each holds a source and a ground).
    solver
        The solver used (see :func:`leopardgeo.kernels.circuit.choose_solver`).
    iterations
        CG iterations (0 for a direct solver).
    timings_s
        Seconds per phase: network, setup, solve, maps.
    """

    voltage: np.ndarray
    current: np.ndarray
    n_components: int
    solver: str = ""
    iterations: list = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)


def _check_layer(values: np.ndarray, shape: tuple[int, int], what: str, *, signed: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape:
        msg = f"{what}: expected a raster of the resistance's shape {shape}, found {arr.shape}."
        raise DataError(msg)
    bad = ~np.isfinite(arr) & ~np.isnan(arr) if signed else arr < 0
    if bad.any():
        r, c = np.argwhere(bad)[0]
        msg = (
            f"{what}: expected {'finite values' if signed else 'values >= 0'} (NaN or 0 = none), found {int(bad.sum())} "
            "other cells, the first "
            f"{arr[r, c]!r} at row {r}, column {c}. Set them to 0 or NaN."
        )
        raise DataError(msg)
    return np.where(np.isnan(arr), 0.0, arr)


def advanced_flow(
    resistance: np.ndarray,
    source: np.ndarray,
    ground: np.ndarray,
    *,
    ground_is_resistance: bool = True,
    use_direct_grounds: bool = False,
    use_unit_currents: bool = False,
    remove_src_or_gnd: SourceGroundConflict | str = SourceGroundConflict.KEEPALL,
    short_circuit: np.ndarray | None = None,
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: CircuitSolver | str = CircuitSolver.AUTO,
    tolerance: float = 1e-8,
    max_memory_gb: float | None = None,
) -> AdvancedResult:
    """Voltages and currents from current sources to grounds (Circuitscape's advanced mode).

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data).
    source
        Current injected at each cell, amperes (NaN or 0 = no source; a
        negative value takes current out, as in Circuitscape).
    ground
        Resistance (ohms, default) or conductance (siemens) from each cell to
        ground (>= 0; NaN = no ground; see the module notes for 0 and inf).
    ground_is_resistance
        Circuitscape's ``ground_file_is_resistances``.
    use_direct_grounds
        Tie every ground cell directly to 0 V.
    use_unit_currents
        Every source cell injects 1 A.
    remove_src_or_gnd
        ``keepall``, ``rmvsrc``, ``rmvgnd`` or ``rmvall`` for cells that are
        both a source and a ground.
    short_circuit
        Optional integer raster of short-circuit regions (0 = none).
    connectivity, avg_resistances, solver, tolerance, max_memory_gb
        As in :func:`leopardgeo.kernels.circuit.circuit_flow`.

    Returns
    -------
    AdvancedResult

    Raises
    ------
    DataError
        Shapes differ, negative sources or grounds, or no source or no ground
        left after the conflict rule.
    ConfigError
        An unknown ``remove_src_or_gnd``.
    ResistanceError
        Resistance <= 0 or infinite.

    Examples
    --------
    Three 1-ohm cells in a row, 1 A into the left one, the right one grounded
    through 1 ohm: 1 V across the ground resistor, 1 V across each branch.

    >>> out = advanced_flow(np.ones((1, 3)), np.array([[1.0, 0, 0]]), np.array([[np.nan, np.nan, 1.0]]), connectivity=4)
    >>> out.voltage
    array([[3., 2., 1.]], dtype=float32)
    >>> out.current
    array([[1., 1., 1.]], dtype=float32)
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    try:
        policy = SourceGroundConflict(str(remove_src_or_gnd).lower())
    except ValueError:
        msg = f"remove_src_or_gnd: expected one of {[str(p) for p in SourceGroundConflict]}, found {remove_src_or_gnd!r}."
        raise ConfigError(msg) from None
    if connectivity not in (4, 8):
        msg = f"connectivity: expected 4 or 8 neighbours (Circuitscape's options), found {connectivity!r}."
        raise ConfigError(msg)
    res = np.asarray(unmasked(resistance))
    if res.ndim != 2:
        msg = f"resistance: expected a 2-D raster, found {res.ndim} dimensions."
        raise DataError(msg)
    res = np.ascontiguousarray(res, dtype=np.float32 if res.dtype == np.float32 else np.float64)
    check_resistance(res)
    valid = ~np.isnan(res)
    src = _check_layer(source, res.shape, "sources", signed=True)
    raw = _check_layer(ground, res.shape, "grounds")
    if use_unit_currents:
        src = (src != 0).astype(np.float64)
    if ground_is_resistance:
        with np.errstate(divide="ignore"):
            gnd = np.where(np.isnan(np.asarray(ground, dtype=np.float64)), 0.0, 1.0 / raw)
    else:
        gnd = raw
    if use_direct_grounds:
        gnd = np.where(gnd > 0, np.inf, 0.0)
    src[~valid] = 0.0
    gnd[~valid] = 0.0
    both = (src != 0) & (gnd > 0)
    if policy in (SourceGroundConflict.RMVSRC, SourceGroundConflict.RMVALL):
        src[both] = 0.0
    if policy in (SourceGroundConflict.RMVGND, SourceGroundConflict.RMVALL):
        gnd[both] = 0.0
    gnd[(src > 0) & np.isinf(gnd)] = 0.0  # a source on a direct ground keeps its current in the circuit (Circuitscape.jl)
    for what, arr, fix in (("source", src, "source raster"), ("ground", gnd, "ground raster")):
        if not (arr != 0).any():
            msg = (
                f"advanced mode: expected at least one {what} cell on data after remove_src_or_gnd = '{policy}', "
                f"found none. Check the {fix}, its overlap with the resistance's data and the conflict rule."
            )
            raise DataError(msg)
    short = _check_short(short_circuit, res.shape)
    no_ids = np.zeros(0, dtype=np.int64)
    reg, _, n_reg = _merge_regions(np.zeros(res.shape, np.int64), short, valid, no_ids)
    comp, _ = _region_components(reg, valid, connectivity, n_reg)
    # node keys: a region's key is its index, a plain cell's key n_reg + its flat index
    key = np.where(reg >= 0, reg, n_reg + np.arange(res.size).reshape(res.shape))
    live = valid
    flat_key = key[live]
    present = np.zeros(n_reg + res.size, dtype=bool)  # keys are bounded: rank them in O(n), no sort
    present[flat_key] = True
    uniq = np.flatnonzero(present)
    inv = (np.cumsum(present) - 1)[flat_key]
    del present
    s_node = np.bincount(inv, weights=src[live], minlength=len(uniq))
    g_fin = np.where(np.isinf(gnd), 0.0, gnd)
    g_node = np.bincount(inv, weights=g_fin[live], minlength=len(uniq))
    direct_node = np.bincount(inv, weights=np.isinf(gnd[live]).astype(np.float64), minlength=len(uniq)) > 0
    comp_node = np.zeros(len(uniq), dtype=np.int64)
    comp_node[inv] = comp[live]
    # components with a source and a ground
    n_c = int(comp.max()) + 1
    has_s = np.bincount(comp_node, weights=s_node, minlength=n_c) != 0  # Circuitscape: the sources' sum
    has_g = (np.bincount(comp_node, weights=g_node, minlength=n_c) > 0) | (
        np.bincount(comp_node, weights=direct_node.astype(np.float64), minlength=n_c) > 0
    )
    keep = (has_s & has_g)[comp_node]
    is_region = uniq < n_reg
    # numbering: plain cells, regions (not direct grounds), then direct grounds (held at 0 V)
    order_cell = np.flatnonzero(keep & ~is_region & ~direct_node)
    order_reg = np.flatnonzero(keep & is_region & ~direct_node)
    order_gnd = np.flatnonzero(keep & direct_node)
    n_cell, n_solve = len(order_cell), len(order_cell) + len(order_reg)
    n_total = n_solve + len(order_gnd)
    node_of = np.full(len(uniq), -1, dtype=np.int64)
    node_of[np.concatenate([order_cell, order_reg, order_gnd])] = np.arange(n_total)
    node = np.full(res.shape, -1, dtype=np.int32)
    node[live] = node_of[inv].astype(np.int32)
    by_node = np.concatenate([order_cell, order_reg, order_gnd])
    s_n, g_n = s_node[by_node], g_node[by_node]
    n_comp = int((has_s & has_g).sum())
    timings["network"] = time.perf_counter() - t
    volts = np.zeros(n_total)
    iterations: list[int] = []
    method = ""
    if n_solve:
        t = time.perf_counter()
        lap = assemble_laplacian(res, node, n_cell, n_solve, connectivity, avg_resistances)
        lap = (lap + sp.diags(g_n[:n_solve])).tocsr()
        # a raster: the factor takes the grid's order
        method = choose_solver(n_solve, 1, solver, grid=grid_orderable(n_solve, n_cell))
        _check_memory(res.size, n_solve, 1, max_memory_gb, method)
        node_raster = np.where(node < n_cell, node, np.int32(-1))
        lin = LaplacianSolver(lap, method, tolerance, node_raster=node_raster)
        timings["setup"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            volts[:n_solve] = lin.solve(s_n[:n_solve])
            iterations = list(lin.iterations)
        finally:
            lin.close()
        timings["solve"] = time.perf_counter() - t
    t = time.perf_counter()
    branch = _branch_sums(res, node, volts, n_total, connectivity, bool(avg_resistances))
    through = branch + np.abs(s_n) + g_n * np.abs(volts)
    # a direct ground takes (or gives) the net branch current at its node
    through += np.abs(_net_inflow(res, node, volts, n_solve, n_total, connectivity, bool(avg_resistances)))
    through *= 0.5
    cur = np.zeros(res.shape)
    _paint(node, through, cur, 1.0)
    outside = node < 0
    cur[outside] = np.nan
    volt = np.append(volts, np.nan)[node]  # node -1 (outside) picks the NaN; also with nothing solved
    timings["maps"] = time.perf_counter() - t
    logger.info("advanced mode: %d components, %d unknowns, %s", n_comp, n_solve, method or "nothing to solve")
    return AdvancedResult(
        voltage=volt.astype(np.float32),
        current=cur.astype(np.float32),
        n_components=n_comp,
        solver=method,
        iterations=iterations,
        timings_s=timings,
    )
