"""Pinch points: current flow inside each truncated corridor (Linkage Mapper's Pinchpoint Mapper).

For every link, the resistance raster is clipped to the link's truncated
least-cost corridor (:mod:`leopardgeo.stages.corridors`) plus the cells of its two
patches, and 1 A is driven from one patch to the other
(:func:`leopardgeo.kernels.circuit.circuit_flow`, pairwise, the two patches
short-circuited).  All of the current crosses every cross-section of the
corridor, so the current density is highest where the corridor is narrowest
or where few cells are easy to cross: the *pinch points* (McRae 2012,
Pinchpoint Mapper; McRae et al. 2008).

Per link the result holds ``pinch_current``, the highest current density
(A) on a corridor cell outside the two patches, the cell where it occurs (a
point of the ``pinch_points`` layer) and ``corridor_resistance``, the
effective resistance of the clipped corridor (ohms).  The map
``pinchpoints.tif`` is the maximum over links of their corridor current.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd

from leopardgeo.config import CircuitSolver
from leopardgeo.core.errors import DataError
from leopardgeo.core.executor import current_executor, native_thread_limit
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS
from leopardgeo.kernels.circuit import CircuitResult, circuit_flow
from leopardgeo.stages.base import Context, RunConfigLike, Stage
from leopardgeo.stages.corridors import CorridorResult

__all__ = ["PINCH_COLUMNS", "PinchResult", "add_pinch_attributes", "pinch_points"]

logger = logging.getLogger(__name__)

#: Columns of :attr:`PinchResult.table` (besides ``geometry``).
PINCH_COLUMNS = ("patch_a", "patch_b", "pinch_current", "corridor_resistance", "corridor_cells")


@dataclass(frozen=True)
class PinchResult:
    """Outputs of :func:`pinch_points`.

    Attributes
    ----------
    current
        float32 raster: maximum over links of the corridor current density
        (A for 1 A between the link's patches); NaN outside every corridor.
    table
        One point per link at its pinch point: ``patch_a``, ``patch_b``,
        ``pinch_current`` (A), ``corridor_resistance`` (ohms, the clipped
        corridor's effective resistance), ``corridor_cells``.
    """

    current: np.ndarray
    table: gpd.GeoDataFrame


def _window_inputs(
    resistance: np.ndarray, labels: np.ndarray, corridors: CorridorResult, key: tuple[int, int]
) -> tuple[slice, slice, np.ndarray, np.ndarray, np.ndarray]:
    """Resistance clipped to the corridor (+ its two patches) and focal labels, in the window padded by one cell."""
    w = corridors.windows[key]
    a, b = key
    nr, nc = resistance.shape
    r0, r1 = max(w.rows.start - 1, 0), min(w.rows.stop + 1, nr)
    c0, c1 = max(w.cols.start - 1, 0), min(w.cols.stop + 1, nc)
    rows, cols = slice(r0, r1), slice(c0, c1)
    mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    mask[w.rows.start - r0 : w.rows.stop - r0, w.cols.start - c0 : w.cols.stop - c0] = w.mask
    lab = labels[rows, cols]
    ends = (lab == a) | (lab == b)
    inside = (mask | ends) & np.isfinite(resistance[rows, cols])
    res = np.where(inside, resistance[rows, cols], np.nan).astype(np.float64)
    focal = np.where(inside & ends, lab, 0).astype(np.int32)
    return rows, cols, res, focal, mask & ~ends


def _window_flow(item: tuple[np.ndarray, np.ndarray, dict]) -> CircuitResult:
    """One executor task: 1 A between the two patches of one corridor window (module level, for Dask's workers).

    BLAS and MKL hold one thread whatever the executor: a direct factor's dense blocks are summed in an order
    that depends on the thread count, so a window's numbers are then the same on any executor (as for the
    pairwise circuit's pair solves).
    """
    res, focal, opts = item
    with native_thread_limit(1, user_api="blas"):
        return circuit_flow(res, focal, **opts)


def pinch_points(
    resistance: np.ndarray,
    patch_labels: np.ndarray,
    corridors: CorridorResult,
    grid: Grid,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
    solver: CircuitSolver | str = CircuitSolver.AUTO,
    tolerance: float = 1e-8,
) -> PinchResult:
    """Current flow through each link's truncated corridor and its pinch point.

    The links' windows are tasks of the run's executor
    (:func:`leopardgeo.core.executor.current_executor`), each solved on one
    BLAS / MKL thread, so the result is the same on any executor.

    Parameters
    ----------
    resistance
        Resistance raster on ``grid`` (> 0; NaN = no data).
    patch_labels
        Patch id per cell (0 = none).
    corridors
        Result of :func:`leopardgeo.stages.corridors.least_cost_corridors` on the same grid.
    grid
        The analysis grid.
    connectivity, avg_resistances, solver, tolerance
        Circuit options (see :func:`leopardgeo.kernels.circuit.circuit_flow`).

    Returns
    -------
    PinchResult

    Raises
    ------
    DataError
        If the rasters do not match the grid.

    Examples
    --------
    A corridor that narrows to one cell between two patches:

    >>> import networkx as nx
    >>> from leopardgeo.stages.corridors import least_cost_corridors
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 700, 500), cell_size_m=100, crs=TEST_CRS)
    >>> r = np.ones((5, 7))
    >>> r[[0, 1, 3, 4], 3] = np.nan                    # a one-cell gap in a wall
    >>> lab = np.zeros((5, 7), dtype=np.int32)
    >>> lab[:, 0], lab[:, 6] = 1, 2
    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, patch_a=1, patch_b=2, cwd=600.0)
    >>> cor = least_cost_corridors(r, lab, G, g, width_cwd=1000)
    >>> out = pinch_points(r, lab, cor, g)
    >>> out.table[["patch_a", "patch_b", "pinch_current"]]
       patch_a  patch_b  pinch_current
    0        1        2            1.0
    >>> out.table.geometry[0].x, out.table.geometry[0].y   # the gap's cell centre
    (350.0, 250.0)
    """
    res = np.asarray(resistance)
    lab = np.asarray(patch_labels)
    if res.shape != grid.shape or lab.shape != grid.shape:
        msg = f"pinch points: expected rasters of the grid's shape {grid.shape}, found {res.shape} and {lab.shape}."
        raise DataError(msg)
    current = np.full(grid.shape, np.nan, dtype=np.float32)
    records = []
    opts = {"connectivity": connectivity, "avg_resistances": avg_resistances, "solver": solver, "tolerance": tolerance}
    executor = current_executor()
    # the windows are the run's tasks, a few per slot at a time (their rasters and maps wait in memory)
    keys = sorted(corridors.windows)
    batch = max(1, 2 * int(getattr(executor, "slots", 1)))
    for start in range(0, len(keys), batch):
        windows = []
        for key in keys[start : start + batch]:
            rows, cols, wres, focal, free = _window_inputs(res, lab, corridors, key)
            if len(np.unique(focal[focal > 0])) < 2:
                logger.warning("link %s: the corridor window holds fewer than two patches; no pinch point", key)
                continue
            windows.append((key, rows, cols, wres, focal, free))
        items = [(wres, focal, opts) for _, _, _, wres, focal, _ in windows]
        flows = executor.map(_window_flow, items, label="pinch points")
        for (key, rows, cols, _, _, free), flow in zip(windows, flows, strict=True):
            records.append(_pinch_record(key, rows, cols, free, flow, current))
    frame = pd.DataFrame(records, columns=[*PINCH_COLUMNS, "row", "col"])
    ok = frame["row"].to_numpy() >= 0
    x, y = grid.xy(frame["row"].to_numpy()[ok], frame["col"].to_numpy()[ok])
    geoms = np.full(len(frame), None, dtype=object)
    geoms[ok] = gpd.points_from_xy(x, y)
    table = gpd.GeoDataFrame(frame[list(PINCH_COLUMNS)], geometry=list(geoms), crs=grid.crs)
    table = table[ok].reset_index(drop=True) if len(table) else table
    return PinchResult(current=current, table=table)


def _pinch_record(
    key: tuple[int, int], rows: slice, cols: slice, free: np.ndarray, flow: CircuitResult, current: np.ndarray
) -> dict:
    """One link's row of the pinch table from its window's solve; raises ``current`` to its corridor current."""
    r_eff = float(flow.resistances["eff_resistance"].iloc[0])
    cur = flow.cum_current
    sub = current[rows, cols]
    np.fmax(sub, np.where(np.isfinite(cur), cur, np.nan), out=sub)
    corridor_cur = np.where(free & np.isfinite(cur), cur, -np.inf)
    n_free = int(free.sum())
    row = {"patch_a": key[0], "patch_b": key[1], "pinch_current": math.nan, "corridor_resistance": r_eff,
           "corridor_cells": n_free, "row": -1, "col": -1}  # fmt: skip
    if math.isfinite(r_eff) and n_free > 0 and np.isfinite(corridor_cur).any():
        i, j = np.unravel_index(int(np.argmax(corridor_cur)), corridor_cur.shape)
        row.update(pinch_current=float(corridor_cur[i, j]), row=rows.start + int(i), col=cols.start + int(j))
    return row


def add_pinch_attributes(graph: nx.Graph, result: PinchResult) -> None:
    """Set the edge attributes ``pinch_current`` and ``corridor_resistance`` (NaN for links without one)."""
    nx.set_edge_attributes(graph, math.nan, "pinch_current")
    nx.set_edge_attributes(graph, math.nan, "corridor_resistance")
    for row in result.table.itertuples(index=False):
        if graph.has_edge(row.patch_a, row.patch_b):
            graph.edges[row.patch_a, row.patch_b]["pinch_current"] = float(row.pinch_current)
            graph.edges[row.patch_a, row.patch_b]["corridor_resistance"] = float(row.corridor_resistance)


# ---------------------------------------------------------------------- the stage
def compute_pinch_points(
    cfg: RunConfigLike, resistance: np.ndarray, labels: np.ndarray, corridors: CorridorResult, graph: nx.Graph, grid: Grid
) -> PinchResult:
    """Current inside each truncated corridor and its pinch point; sets ``pinch_current`` on links."""
    c = cfg.circuit
    result = pinch_points(
        resistance,
        labels,
        corridors,
        grid,
        connectivity=c.connectivity,
        avg_resistances=c.avg_resistances,
        solver=c.solver,
        tolerance=c.tolerance,
    )
    add_pinch_attributes(graph, result)
    return result


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    pinch = ctx["pinch"]
    writer.raster("pinchpoints.tif", pinch.current, ctx["inputs"].grid, nodata=np.nan, description=RASTERS["pinchpoints.tif"])


STAGE = Stage(
    "pinch_points",
    "pinch points",
    lambda cfg, c: {
        "pinch": compute_pinch_points(cfg, c["resistance"], c["labels"], c["corridors"], c["graph"], c["inputs"].grid)
    },
    sections=("circuit",),
    needs=("inputs", "resistance", "patches", "links", "corridors", "circuit"),
    produces=("pinch",),
    mutates=("graph",),
    enabled=lambda cfg: cfg.circuit.pinch_points,
    outputs=("pinchpoints.tif",),
    layers=lambda cfg, c: {"pinch_points": c["pinch"].table},
    write=_write,
)
