"""Circuitscape's raster modes: pairwise (pair- or all-shorted), one-to-all and all-to-one."""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.config import CircuitMode, CircuitSolver, FocalShorting, choice
from leopardgeo.core.errors import ConfigError, DataError, LeopardGeoError, MemoryLimitError, NoPathError
from leopardgeo.core.executor import available_cores, native_thread_limit
from leopardgeo.core.memory import small_pages
from leopardgeo.kernels.circuit.assembly import CircuitNetwork, _check_inputs, build_network, solve_nodes
from leopardgeo.kernels.circuit.currents import SERIAL_CELLS, _fill_maps, _Solve
from leopardgeo.kernels.circuit.solvers import (
    DIRECT_BLOCK_RHS,
    LaplacianSolver,
    _check_memory,
    choose_solver,
    grid_orderable,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CircuitResult:
    """Outputs of :func:`circuit_flow`.

    Attributes
    ----------
    mode
        ``pairwise``, ``one_to_all`` or ``all_to_one``.
    resistances
        pairwise: one row per requested pair (``patch_a``, ``patch_b``,
        ``eff_resistance`` in ohms; ``inf`` when not connected, written as
        ``-1`` in ``circuit.csv`` as Circuitscape does).  one_to_all /
        all_to_one: one row per patch (``patch``, ``voltage``: the source's
        voltage for one_to_all, the mean source voltage for all_to_one).
    cum_current
        Sum of the solves' current maps (float32, A; NaN outside the circuit).
    voltages
        ``{key: voltage raster}`` (float32, V) when asked for; key = pair or patch.
    currents
        ``{key: current raster}`` (float32, A), one per solve, when asked for.
    solver
        ``amg``, ``pardiso``, ``cholmod`` or ``superlu``.
    iterations
        CG iterations per solve (0 for direct solvers).
    timings_s
        Seconds per phase: network, setup, solves, maps.
    focal_shorting
        ``pair`` (only the pair's two patches short-circuited in each solve) or
        ``all`` (every patch short-circuited in every solve).
    max_current
        Largest current over the solves at each cell (float32, A; Circuitscape's
        max-current map) when asked for, else None.
    """

    mode: str
    resistances: pd.DataFrame
    cum_current: np.ndarray
    voltages: dict = field(default_factory=dict)
    solver: str = ""
    iterations: list = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)
    currents: dict = field(default_factory=dict)
    focal_shorting: str = "all"
    max_current: np.ndarray | None = None


def _workers(workers: int | None) -> int:
    if workers is None:
        return available_cores()
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        msg = f"workers: expected a positive whole number of threads or None, found {workers!r}."
        raise ConfigError(msg)
    return int(workers)


def _requested_pairs(
    ids: np.ndarray, pairs: Iterable[Sequence[int]] | None, exclude: Iterable[Sequence[int]]
) -> list[tuple[int, int]]:
    known = {int(i) for i in ids}
    if pairs is None:
        out = [(int(a), int(b)) for a, b in combinations(ids, 2)]
    else:
        out = []
        for a, b in check_pairs(pairs, "pairs"):
            for v in (a, b):
                if v not in known:
                    msg = f"pair ({a}, {b}): expected patch ids among {sorted(known)[:20]}, found {v}."
                    raise DataError(msg)
            out.append((a, b))
    drop = set(check_pairs(exclude, "exclude_pairs"))
    return list(dict.fromkeys(p for p in out if p not in drop))


def check_pairs(
    pairs: Iterable[Sequence[int]], what: str, error: type[LeopardGeoError] = DataError
) -> list[tuple[int, int]]:
    """``pairs`` as sorted ``(a, b)`` tuples of two different whole-number patch ids; ``error`` otherwise.

    Examples
    --------
    >>> check_pairs([(2, 1), (1, 3.0)], "pairs")
    [(1, 2), (1, 3)]
    >>> check_pairs([(1, 1.5)], "pairs")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.DataError: pairs: expected whole-number patch ids, found 1.5 in (1, 1.5).
    """
    out = []
    for p in pairs:
        try:
            a, b = p  # type: ignore[misc]
        except (TypeError, ValueError):
            msg = f"{what}: expected pairs of two patch ids, e.g. [(1, 2), (1, 3)], found {p!r}."
            raise error(msg) from None
        got = []
        for v in (a, b):
            whole = isinstance(v, numbers.Integral) or (isinstance(v, numbers.Real) and float(v).is_integer())
            if isinstance(v, bool) or not whole:
                msg = f"{what}: expected whole-number patch ids, found {v!r} in {p!r}."
                raise error(msg)
            got.append(int(v))
        if got[0] == got[1]:
            msg = f"{what}: expected two different patches in a pair, found ({got[0]}, {got[1]})."
            raise error(msg)
        out.append((min(got), max(got)))
    return out


def circuit_flow(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    mode: CircuitMode | str = CircuitMode.PAIRWISE,
    pairs: Iterable[Sequence[int]] | None = None,
    exclude_pairs: Iterable[Sequence[int]] = (),
    focal_shorting: FocalShorting | str = FocalShorting.PAIR,
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: CircuitSolver | str = CircuitSolver.AUTO,
    tolerance: float = 1e-8,
    max_memory_gb: float | None = None,
    voltage_maps: bool = False,
    current_maps: bool = False,
    max_current: bool = False,
    workers: int | None = None,
    short_circuit: np.ndarray | None = None,
    source_strengths: Mapping[int, float] | None = None,
    executor: Any = None,
) -> CircuitResult:
    """Current flow between patches, in Circuitscape's modes, with a cumulative current map.

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data).
    focal
        Integer raster of patch ids (0 = none).
    mode
        ``pairwise``, ``one_to_all`` or ``all_to_one``.
    pairs
        pairwise: the pairs to solve (default: all pairs of patches).
    exclude_pairs
        pairwise: pairs to skip.
    focal_shorting
        pairwise: ``pair`` (Circuitscape: only the pair's two patches are
        short-circuited in each solve; the other patches' cells are ordinary
        cells) or ``all`` (every patch short-circuited in every solve: one
        matrix and one factor for all pairs, much faster with many patches; the
        same as Circuitscape with the patches also given as short-circuit
        regions).  one_to_all and all_to_one short-circuit every patch, as
        Circuitscape does.
    connectivity
        4 or 8 neighbours.
    avg_resistances
        Circuitscape's ``connect_using_avg_resistances``.
    solver
        ``auto``, ``amg``, ``pardiso``, ``cholmod`` or ``superlu`` (see
        :func:`choose_solver`).
    tolerance
        Relative residual of the iterative solver.
    max_memory_gb
        Refuse runs estimated to need more (default: the memory available).
    voltage_maps
        Keep each solve's voltage raster in ``result.voltages``.
    current_maps
        Keep each solve's current raster in ``result.currents``.
    max_current
        Also return the largest current over the solves at each cell
        (``result.max_current``).
    workers
        Threads for the current maps and independent iterative solves (default:
        all cores).
    short_circuit
        Optional integer raster of short-circuit regions (Circuitscape's
        ``polygon_file``, 0 = none), in every mode: each region conducts
        perfectly without being a focal patch.  Patches that a region joins
        share one node; as in Circuitscape, the resistance between them is 0
        and their pair carries no current.
    source_strengths
        one_to_all / all_to_one: amperes injected at each patch (Circuitscape's
        ``variable_source_file``; patches not listed inject 1 A).  one_to_all
        scales the source patch's solve; all_to_one injects each source
        patch's strength and takes their sum out at the ground patch.  In
        one_to_all the ``voltage`` column stays the source's voltage per ampere
        (Circuitscape's number); in all_to_one it is the mean source voltage
        with the strengths.
    executor
        Pairwise with ``focal_shorting = "pair"``: runs the pairs' solves as its
        tasks (``map`` in item order, ``share``; the run's executor, local threads
        or Dask workers), a batch at a time.  Default: one pair after another here.
        The result does not depend on it.

    Returns
    -------
    CircuitResult

    Raises
    ------
    DataError, NoPathError, ResistanceError, ConfigError
        Bad inputs (messages say what was expected and found).
    MemoryLimitError
        If the run is estimated not to fit in memory (before any solve).

    Examples
    --------
    Two 1-ohm... cells in series between two patches of a 1 x 4 strip:

    >>> r = np.ones((1, 4))
    >>> out = circuit_flow(r, np.array([[1, 0, 0, 2]]), connectivity=4)
    >>> out.resistances
       patch_a  patch_b  eff_resistance
    0        1        2             3.0
    >>> out.cum_current
    array([[1., 1., 1., 1.]], dtype=float32)
    """
    mode = choice(CircuitMode, mode, "mode")
    shorting = choice(FocalShorting, focal_shorting, "focal_shorting")
    strengths = _check_strengths(source_strengths, mode)
    if max_memory_gb is not None and not (isinstance(max_memory_gb, numbers.Real) and max_memory_gb > 0):
        msg = f"max_memory_gb: expected a number of GB > 0 or None (no limit), found {max_memory_gb!r}."
        raise ConfigError(msg)
    opts = {
        "connectivity": connectivity,
        "avg_resistances": avg_resistances,
        "solver": solver,
        "tolerance": tolerance,
        "max_memory_gb": max_memory_gb,
        "voltage_maps": voltage_maps,
        "current_maps": current_maps,
        "max_current": max_current,
        "workers": _workers(workers),
        "short_circuit": short_circuit,
    }
    if mode is CircuitMode.PAIRWISE and shorting is FocalShorting.PAIR:
        res, lab = _check_inputs(resistance, focal, connectivity)
        ids = np.unique(lab[lab > 0])
        if len(ids) > 2:
            return _pairwise_each_pair(res, lab, ids, pairs, exclude_pairs, opts, executor)
    return _circuit_shorted(resistance, focal, mode, pairs, exclude_pairs, strengths=strengths, **opts)


def _check_strengths(strengths: Mapping[int, float] | None, mode: CircuitMode) -> dict[int, float]:
    """Source strengths as ``{patch id: amperes}``; ConfigError in pairwise mode or for a value not finite and > 0."""
    if not strengths:
        return {}
    if mode is CircuitMode.PAIRWISE:
        msg = (
            "source_strengths: expected one_to_all or all_to_one mode (Circuitscape's variable source strengths), "
            "found pairwise. Drop the strengths or change the mode."
        )
        raise ConfigError(msg)
    out: dict[int, float] = {}
    for k, v in strengths.items():
        val = float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else math.nan
        if not (math.isfinite(val) and val > 0):
            msg = f"source strength of patch {k}: expected a finite number of amperes > 0, found {v!r}. Fix the strengths."
            raise ConfigError(msg)
        out[int(k)] = val
    return out


def _pairwise_each_pair(
    res: np.ndarray,
    lab: np.ndarray,
    ids: np.ndarray,
    pairs: Iterable[Sequence[int]] | None,
    exclude_pairs: Iterable[Sequence[int]],
    opts: dict,
    executor: Any = None,
) -> CircuitResult:
    """Circuitscape's pairwise convention: one network per pair, only its two patches short-circuited.

    With an ``executor`` the pairs are its tasks, a few per slot at a time (the
    rasters shared once); each pair's solve is the same as here, and the maps are
    added in pair order, so the result does not depend on the executor.
    """
    todo = _requested_pairs(ids, pairs, exclude_pairs)
    # every patch must touch data, as in the all-shorted network (the same error, before any solve)
    on_data = np.unique(lab[(lab > 0) & ~np.isnan(res)])
    off = np.setdiff1d(ids, on_data)
    if len(off):
        msg = f"patch {int(off[0])}: expected cells with data, found all of its cells on no data. Fix the resistance raster."
        raise NoPathError(msg)
    cum = np.zeros(res.shape)
    seen = np.zeros(res.shape, dtype=bool)
    peak = np.full(res.shape, np.nan, dtype=np.float32) if opts["max_current"] else None
    r_of: dict[tuple[int, int], float] = {}
    volts: dict = {}
    currents: dict = {}
    timings: dict[str, float] = {}
    iterations: list[int] = []
    methods: set[str] = set()
    for (a, b), one in zip(todo, _pair_results(res, lab, todo, opts, executor), strict=True):
        r_of[(a, b)] = float(one.resistances.eff_resistance.iloc[0])
        live = ~np.isnan(one.cum_current)
        cum[live] += one.cum_current[live]
        seen |= live
        if peak is not None and one.max_current is not None:
            np.fmax(peak, one.max_current, out=peak)
        volts.update(one.voltages)
        currents.update(one.currents)
        iterations += one.iterations
        if one.solver:
            methods.add(one.solver)
        for k, v in one.timings_s.items():
            timings[k] = timings.get(k, 0.0) + v
    rows = [{"patch_a": a, "patch_b": b, "eff_resistance": r_of[(a, b)]} for a, b in todo]
    cur32 = cum.astype(np.float32)
    cur32[~seen] = np.nan
    return CircuitResult(
        mode=str(CircuitMode.PAIRWISE),
        resistances=pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"]),
        cum_current=cur32,
        voltages=volts,
        solver="+".join(sorted(methods)),
        iterations=iterations,
        timings_s=timings,
        currents=currents,
        focal_shorting=str(FocalShorting.PAIR),
        max_current=peak,
    )


def _one_pair(res: np.ndarray, lab: np.ndarray, a: int, b: int, opts: dict) -> CircuitResult:
    """One pair's network (only patches ``a`` and ``b`` short-circuited) and its solve, BLAS on one thread."""
    lab_ab = np.where((lab == a) | (lab == b), lab, 0)
    # BLAS on one thread while any pair solve runs: an iterative solve's dot products and a direct factor's dense
    # blocks are summed in an order that depends on BLAS's thread count, so a pair's numbers are then the same
    # on any executor (the executor's reference-counted limit, shared with its own)
    with native_thread_limit(1, user_api="blas"):
        return _circuit_shorted(res, lab_ab, CircuitMode.PAIRWISE, [(a, b)], (), **opts)


def _pair_task(item: tuple) -> CircuitResult:
    """One executor task: a pair's solve on the shared rasters (module level, so Dask workers can import it)."""
    handle, a, b, opts = item
    res, lab, short = handle.get()
    return _one_pair(res, lab, a, b, {**opts, "short_circuit": short})


def _pair_results(
    res: np.ndarray, lab: np.ndarray, todo: list[tuple[int, int]], opts: dict, executor: Any
) -> Iterator[CircuitResult]:
    """Each pair's result in the order of ``todo``: here one by one, or a batch at a time on ``executor``."""
    if executor is None:
        for a, b in todo:
            yield _one_pair(res, lab, a, b, opts)
        return
    handle = executor.share((res, lab, opts["short_circuit"]))  # on Dask: sent to each worker once
    small = {k: v for k, v in opts.items() if k != "short_circuit"}
    batch = max(1, 2 * int(getattr(executor, "slots", 1)))  # a few pairs per slot: their maps wait in memory
    try:
        for i in range(0, len(todo), batch):
            yield from executor.map(_pair_task, [(handle, a, b, small) for a, b in todo[i : i + batch]])
    finally:
        executor.release(handle)


def _circuit_shorted(
    resistance: np.ndarray,
    focal: np.ndarray,
    mode: CircuitMode,
    pairs: Iterable[Sequence[int]] | None,
    exclude_pairs: Iterable[Sequence[int]],
    *,
    connectivity: int,
    avg_resistances: bool,
    short_circuit: np.ndarray | None = None,
    strengths: dict[int, float] | None = None,
    solver: CircuitSolver | str,
    tolerance: float,
    max_memory_gb: float | None,
    voltage_maps: bool,
    current_maps: bool,
    max_current: bool,
    workers: int,
) -> CircuitResult:
    """Every patch of ``focal`` short-circuited in every solve: one matrix, one factor or hierarchy."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    net = build_network(
        resistance, focal, connectivity=connectivity, avg_resistances=avg_resistances, short_circuit=short_circuit
    )
    strengths = strengths or {}
    unknown = sorted(set(strengths) - {int(i) for i in net.focal_ids})
    if unknown:
        msg = f"source strength of patch {unknown[0]}: expected one of the patch ids {net.focal_ids.tolist()[:20]}, found none."
        raise DataError(msg)
    timings["network"] = time.perf_counter() - t
    ids = net.focal_ids
    n_solve = net.n_solve
    todo: list[tuple[int, int]] = []
    solvable: list[tuple[int, int]] = []
    if mode is CircuitMode.PAIRWISE:
        todo = _requested_pairs(ids, pairs, exclude_pairs)
        # two patches on one node (joined by a short-circuit region): resistance 0, no solve (Circuitscape)
        zero = {p for p in todo if net.same_node(*p)}
        solvable = [p for p in todo if p not in zero and net.connected(*p)]
        wanted = sorted({net.node_of(v) for p in solvable for v in p} - set(range(n_solve, net.n_total)))
        superpose = len(solvable) > len(wanted)
        n_per_run = len(solvable)
    else:
        wanted = sorted({int(n) for n in net.focal_node if 0 <= n < n_solve})
        superpose = True
        n_per_run = len(ids)
    nothing = n_solve == 0 or (mode is CircuitMode.PAIRWISE and not solvable)
    if mode is not CircuitMode.PAIRWISE:
        zero = set()
    method = ""
    if not nothing:
        method, superpose = _plan_memory(net, solver, len(wanted), n_per_run, superpose, mode, max_memory_gb)
    cum_node = np.zeros(net.n_total)
    max_node = np.zeros(net.n_total) if max_current else None
    volts_out: dict = {}
    currents_out: dict = {}
    rows: list[dict] = []
    lin: LaplacianSolver | None = None
    t_solve = t_maps = 0.0
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and method == "amg" and net.node.size >= SERIAL_CELLS else None
    try:
        if not nothing:
            t = time.perf_counter()
            last = wanted if superpose else ()  # the unit solves' nodes eliminated last: backward halves only
            lin = LaplacianSolver(net.laplacian, method, tolerance, node_raster=solve_nodes(net), last=last)
            timings["setup"] = time.perf_counter() - t
        col_of: dict[int, int] = {}
        x_units = np.zeros((net.n_total, 0))
        if superpose and lin is not None:
            t = time.perf_counter()
            with small_pages():  # written after the factor is freed, into its memory: see small_pages
                x_units = np.empty((net.n_total, len(wanted)))  # a node's voltages side by side, as the maps read them
            x_units[n_solve:] = 0.0  # the grounds
            # every solve done: the hierarchy or factor is freed before the product and the maps
            lin.solve_units(wanted, out=x_units[:n_solve], pool=pool, release=True)
            col_of = {n_: j for j, n_ in enumerate(wanted)}
            t_solve += time.perf_counter() - t

        def unit_value(n_: int, at: int) -> float:
            j = col_of.get(n_, -1)
            return 0.0 if j < 0 else float(x_units[at, j])

        maps = (workers, cum_node, voltage_maps, current_maps, volts_out, currents_out, max_node)
        if mode is CircuitMode.PAIRWISE:
            solves = []
            r_of: dict[tuple[int, int], float] = {}
            for a, b_ in solvable:
                na, nb = net.node_of(a), net.node_of(b_)
                w = {col_of[n_]: s for n_, s in ((na, 1.0), (nb, -1.0)) if n_ in col_of}
                solves.append(_Solve((a, b_), w, {na: 1.0, nb: -1.0}))
                if superpose:
                    r_of[(a, b_)] = unit_value(na, na) - unit_value(nb, na) - unit_value(na, nb) + unit_value(nb, nb)
            if superpose:
                t = time.perf_counter()
                _fill_maps(net, x_units, solves, *maps)
                t_maps += time.perf_counter() - t
            elif lin is not None:

                def drop(s: _Solve, v: np.ndarray) -> float:
                    na, nb = s.injected
                    return float(v[na] - v[nb])

                ts, tm, values = _solve_each(net, lin, solves, pool, workers, drop, maps)
                t_solve += ts
                t_maps += tm
                r_of.update(zip((s.key for s in solves), values, strict=True))  # type: ignore[misc]
            r_of.update(dict.fromkeys(zero, 0.0))
            rows = [{"patch_a": a, "patch_b": b_, "eff_resistance": r_of.get((a, b_), math.inf)} for a, b_ in todo]
            table = pd.DataFrame(rows, columns=["patch_a", "patch_b", "eff_resistance"])
        else:
            solves, rows = _multi_patch_solves(net, mode, x_units, col_of, superpose, strengths)
            if superpose:
                t = time.perf_counter()
                _fill_maps(net, x_units, solves, *maps)
                t_maps += time.perf_counter() - t
            elif lin is not None:  # all_to_one, one solve per patch: the ground's share is implied by the others

                def mean_source(s: _Solve, v: np.ndarray) -> float:
                    src = next(n_ for n_, w in s.injected.items() if w < 0)
                    s.shift = -float(v[src])
                    return float(np.mean([v[n_] for n_, w in s.injected.items() if w > 0])) + s.shift

                ts, tm, values = _solve_each(net, lin, solves, pool, workers, mean_source, maps)
                t_solve += ts
                t_maps += tm
                by_patch = dict(zip((s.key for s in solves), values, strict=True))
                for row in rows:
                    if row["patch"] in by_patch:
                        row["voltage"] = by_patch[row["patch"]]
            table = pd.DataFrame(rows, columns=["patch", "voltage"])
    finally:
        if pool is not None:
            pool.shutdown()
        if lin is not None:
            lin.close()
    timings["solves"] = t_solve
    timings["maps"] = t_maps
    cur = np.full(net.node.shape, np.nan, dtype=np.float32)
    live = net.node >= 0
    cur[live] = cum_node[net.node[live]]
    peak = None
    if max_node is not None:
        peak = np.full(net.node.shape, np.nan, dtype=np.float32)
        peak[live] = max_node[net.node[live]]
    if nothing:
        logger.info("circuit: no component holds two patches; nothing to solve")
    return CircuitResult(
        mode=str(mode),
        resistances=table,
        cum_current=cur,
        voltages=volts_out,
        solver=lin.method if lin is not None else "",
        iterations=list(lin.iterations) if lin is not None else [],
        timings_s=timings,
        currents=currents_out,
        focal_shorting=str(FocalShorting.ALL),
        max_current=peak,
    )


def _plan_memory(
    net: CircuitNetwork,
    solver: CircuitSolver | str,
    n_wanted: int,
    n_per_run: int,
    superpose: bool,
    mode: CircuitMode,
    max_memory_gb: float | None,
) -> tuple[str, bool]:
    """The solver and whether to store unit solutions: the first plan that fits in memory, else MemoryLimitError."""
    grid = grid_orderable(net.n_solve, net.n_cell)  # a raster: the factor takes the grid's order
    first = choose_solver(net.n_solve, n_wanted if superpose else n_per_run, solver, grid=grid)
    methods = [first] + (["amg"] if CircuitSolver(solver) is CircuitSolver.AUTO and first != "amg" else [])
    plans = [(m, superpose) for m in methods]
    if superpose and mode is not CircuitMode.ONE_TO_ALL:
        plans += [(m, False) for m in methods]
    error: MemoryLimitError | None = None
    for method, sup in plans:
        try:
            _check_memory(net.node.size, net.n_solve, n_wanted if sup else 0, max_memory_gb, method)
        except MemoryLimitError as exc:
            error = exc
            continue
        return method, sup
    assert error is not None
    raise error


def _solve_each(
    net: CircuitNetwork,
    lin: LaplacianSolver,
    solves: list[_Solve],
    pool: ThreadPoolExecutor | None,
    workers: int,
    measure: Callable[[_Solve, np.ndarray], float],
    maps: tuple[int, np.ndarray, bool, bool, dict, dict, np.ndarray | None],
) -> tuple[float, float, list[float]]:
    """One solve per entry of ``solves`` (in blocks), their maps added; returns solve and map seconds, measured values."""
    chunk = max(1, 2 * workers) if lin.method == "amg" else DIRECT_BLOCK_RHS
    t_solve = t_maps = 0.0
    values: list[float] = []
    for k in range(0, len(solves), chunk):
        part = solves[k : k + chunk]
        b = np.zeros((net.n_solve, len(part)), order="F")
        for j, s in enumerate(part):
            for n_, w in s.injected.items():
                if n_ < net.n_solve:
                    b[n_, j] += w
        t = time.perf_counter()
        xs = lin.solve_many(b, pool, overwrite_b=True)
        del b
        x = np.empty((net.n_total, len(part)))
        x[net.n_solve :] = 0.0  # the grounds
        x[: net.n_solve] = xs
        del xs
        if k + chunk >= len(solves):
            lin.close()  # the last solves: free the hierarchy or factor before the maps
        t_solve += time.perf_counter() - t
        t = time.perf_counter()
        for j, s in enumerate(part):
            s.weights = {j: 1.0}
            values.append(measure(s, x[:, j]))
        _fill_maps(net, x, part, *maps)
        t_maps += time.perf_counter() - t
    return t_solve, t_maps, values


def _multi_patch_solves(
    net: CircuitNetwork,
    mode: CircuitMode,
    x_units: np.ndarray,
    col_of: dict[int, int],
    superpose: bool,
    strengths: dict[int, float] | None = None,
) -> tuple[list[_Solve], list[dict]]:
    """The solves of one_to_all / all_to_one (weights over the unit solutions when superposed) and the table rows.

    Patches sharing a node (joined by a short-circuit region) are one source or
    ground; a patch whose component holds no other node has nothing to solve.
    """
    strengths = strengths or {}
    solves: list[_Solve] = []
    rows: list[dict] = []

    def x_at(n_: int, at: int) -> float:
        j = col_of.get(n_, -1)
        return 0.0 if j < 0 else float(x_units[at, j])

    def weights(inj: dict[int, float]) -> dict[int, float]:
        w: dict[int, float] = {}
        for n_, s in inj.items():
            if n_ in col_of:
                w[col_of[n_]] = w.get(col_of[n_], 0.0) + s
        return w

    for i, pid in enumerate(net.focal_ids):
        ci = net.component[i]
        if ci < 0:
            rows.append({"patch": int(pid), "voltage": math.nan})
            continue
        members = np.flatnonzero(net.component == ci)
        src = int(net.focal_node[i])
        amps: dict[int, float] = {}  # all_to_one: each source node's amperes (patches on one node add up)
        for j in members:
            n_ = int(net.focal_node[j])
            if n_ != src:
                amps[n_] = amps.get(n_, 0.0) + strengths.get(int(net.focal_ids[j]), 1.0)
        others = sorted(amps)
        if mode is CircuitMode.ALL_TO_ONE:
            inj = dict(amps)
            inj[src] = -float(sum(amps.values()))
            if not superpose:
                solves.append(_Solve(int(pid), {}, inj))
                rows.append({"patch": int(pid), "voltage": math.nan})
                continue
            w = weights(inj)

            def v_at(at: int, w: dict[int, float] = w) -> float:
                return sum(s * float(x_units[at, j]) for j, s in w.items())

            shift = -v_at(src)
            voltage = float(np.mean([v_at(n_) for n_ in others])) + shift
        else:  # one to all: 1 A in at src, every other patch held at 0 V
            # unknowns: injections c_o at the others (c_src = 1 is known), the free voltage shift V0
            m = len(others)
            mat = np.zeros((m + 1, m + 1))
            rhs = np.zeros(m + 1)
            for r_, nr_ in enumerate(others):
                for c_, nc_ in enumerate(others):
                    mat[r_, c_] = x_at(nc_, nr_)
                mat[r_, m] = 1.0
                rhs[r_] = -x_at(src, nr_)
            mat[m, :m] = 1.0  # currents balance: sum of the others' injections = -1
            rhs[m] = -1.0
            sol = np.linalg.solve(mat, rhs)
            inj = {src: 1.0} | {nc_: float(sol[c_]) for c_, nc_ in enumerate(others)}
            w = weights(inj)
            shift = float(sol[m])
            voltage = sum(s * float(x_units[src, j]) for j, s in w.items()) + shift  # per ampere
            amp = strengths.get(int(pid), 1.0)  # a variable source strength scales the whole solve
            if amp != 1.0:
                inj = {n_: amp * v for n_, v in inj.items()}
                w = {j: amp * v for j, v in w.items()}
                shift *= amp
        solves.append(_Solve(int(pid), w, inj, shift))
        rows.append({"patch": int(pid), "voltage": voltage})
    return solves, rows
