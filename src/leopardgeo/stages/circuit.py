"""The circuit stage: circuit-theory current between the habitat patches (``[circuit]``).

The solver is :mod:`leopardgeo.kernels.circuit`; this module turns the configuration into its arguments
(pairs from the links, a Circuitscape pairs file or ``include_pairs``), refuses runs that cannot work before
solving, stores each link's effective resistance on the graph, and writes ``current.tif``, ``circuit.csv``
and (with ``voltage_maps``) ``voltage.tif``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from leopardgeo.config import CircuitMode, CircuitSolver, FocalShorting, PairSet, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.executor import current_executor
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS, OutputWriter
from leopardgeo.io.circuitscape import read_pairs_file
from leopardgeo.kernels.circuit import CircuitResult, check_pairs, circuit_flow
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitConfig:
    """Circuit-theory current flow between patches (Circuitscape; McRae et al. 2008)."""

    enabled: bool = _f(True, doc="solve the circuit in `leopardgeo run`")
    mode: CircuitMode = _f(CircuitMode.PAIRWISE, doc="pairwise | one_to_all | all_to_one (Circuitscape's modes)")
    pairs: PairSet = _f(PairSet.ALL, doc="pairwise: all pairs of patches (Circuitscape) or only linked pairs ('links')")
    include_pairs: tuple[tuple[int, int], ...] = _f((), doc="pairwise: solve only these patch-id pairs, e.g. [[1, 2], [2, 4]]")
    exclude_pairs: tuple[tuple[int, int], ...] = _f((), doc="pairwise: skip these patch-id pairs")
    pairs_file: str | None = _f(
        None,
        doc="pairwise: a Circuitscape include / exclude pairs file ('mode include' or 'mode exclude' then one pair "
        "per line, or Circuitscape's min / max id matrix); relative to base_dir",
    )
    connectivity: int = _f(8, doc="4 or 8 neighbours (Circuitscape: connect_four_neighbors_only = false -> 8)")
    avg_resistances: bool = _f(
        False,
        doc="edge conductance from the mean of the two resistances (Circuitscape connect_using_avg_resistances); "
        "default: mean of the two conductances",
    )
    focal_shorting: FocalShorting = _f(
        FocalShorting.PAIR,
        doc="pairwise: 'pair' short-circuits only the pair's two patches in each solve (Circuitscape); 'all' every "
        "patch in every solve (one factor for all pairs, far faster with many patches; see docs/circuit.md)",
    )
    solver: CircuitSolver = _f(CircuitSolver.AUTO, doc="auto | amg | pardiso | cholmod | superlu")
    tolerance: float = _f(1e-8, doc="relative residual at which the iterative solver stops")
    max_memory_gb: float | None = _f(None, doc="refuse solves estimated to need more than this; default: available memory")
    pinch_points: bool = _f(True, doc="current flow inside each truncated corridor (Pinchpoint Mapper); needs [corridors]")
    voltage_maps: bool = _f(False, doc="write voltage.tif, one band per solve")
    current_maps: bool = _f(
        False, doc="write current_solves.tif, one band per solve (Circuitscape's write_cur_maps; current.tif is their sum)"
    )
    max_current_map: bool = _f(
        False, doc="write max_current.tif, the largest current of any solve at each cell (Circuitscape's write_max_cur_maps)"
    )

    def __post_init__(self) -> None:
        _normalise(self, "circuit")
        if self.connectivity not in (4, 8):
            msg = f"[circuit] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)
        _positive(self.tolerance, "circuit.tolerance")
        if self.max_memory_gb is not None:
            _positive(self.max_memory_gb, "circuit.max_memory_gb")
        for name in ("include_pairs", "exclude_pairs"):
            object.__setattr__(self, name, tuple(check_pairs(getattr(self, name), f"[circuit] {name}", ConfigError)))


# ---------------------------------------------------------------------- the stage
def _circuit_pairs(cfg: RunConfigLike, graph: nx.Graph | None) -> list[tuple[int, int]] | None:
    c = cfg.circuit
    if c.pairs_file:
        mode, listed = read_pairs_file(cfg.resolve(c.pairs_file))  # type: ignore[arg-type]
        if mode == "include":
            return listed
    if c.include_pairs:
        return [tuple(p) for p in c.include_pairs]  # type: ignore[misc]
    if c.pairs is PairSet.LINKS:
        if graph is None:
            msg = "[circuit] pairs = 'links': expected [links] enabled, found it disabled. Enable links or use pairs = 'all'."
            raise ConfigError(msg)
        return [(int(a), int(b)) for a, b in graph.edges()]
    return None


def _file_exclusions(cfg: RunConfigLike) -> list[tuple[int, int]]:
    """The pairs an ``exclude`` pairs file skips (none for an include file or no file)."""
    if not cfg.circuit.pairs_file:
        return []
    mode, listed = read_pairs_file(cfg.resolve(cfg.circuit.pairs_file))  # type: ignore[arg-type]
    return listed if mode == "exclude" else []


#: More pairwise circuit solves than this are refused (each is a sparse solve over the whole grid).
MAX_CIRCUIT_PAIRS = 100_000


def _check_circuit_patches(cfg: RunConfigLike, labels: np.ndarray) -> None:
    """Refuse a circuit with fewer than two patches, unknown ``include_pairs`` or an absurd number of pairs."""
    c = cfg.circuit
    ids = np.unique(labels[labels > 0])
    off = "or switch the circuit off ([circuit] enabled = false)"
    if len(ids) < 2:
        msg = (
            f"circuit: expected at least two habitat patches to drive current between, found {len(ids)}. "
            f"Lower [patches] min_area_ha or min_suitability, enlarge the study area, {off}."
        )
        raise DataError(msg)
    known = {int(i) for i in ids}
    for key in ("include_pairs", "exclude_pairs"):
        for pair in getattr(c, key):
            unknown = [v for v in pair if v not in known]
            if unknown:
                msg = (
                    f"[circuit] {key}: pair {list(pair)} names patch {unknown[0]}, which does not exist; expected patch "
                    f"ids among {sorted(known)[:20]}{' ...' if len(known) > 20 else ''} (see the patches layer). "
                    "Fix the pair or remove it."
                )
                raise ConfigError(msg)
    if c.mode is CircuitMode.PAIRWISE and not c.include_pairs and not c.pairs_file and c.pairs is PairSet.ALL:
        n_pairs = len(ids) * (len(ids) - 1) // 2
        if n_pairs > MAX_CIRCUIT_PAIRS:
            msg = (
                f"circuit: expected at most {MAX_CIRCUIT_PAIRS:,} pairwise solves, found {n_pairs:,} "
                f"({len(ids):,} patches, all pairs). Set [circuit] pairs = 'links' or include_pairs, raise [patches] "
                f"min_area_ha so fewer, larger patches remain, use mode = 'one_to_all', {off}."
            )
            raise DataError(msg)


def compute_circuit(
    cfg: RunConfigLike, resistance: np.ndarray, labels: np.ndarray, graph: nx.Graph | None = None
) -> CircuitResult:
    """Circuit current between patches (:func:`leopardgeo.kernels.circuit.circuit_flow`); sets links' ``eff_resistance``.

    Raises
    ------
    DataError
        Fewer than two patches, or more pairwise solves than :data:`MAX_CIRCUIT_PAIRS`.
    ConfigError
        ``include_pairs`` names a patch that does not exist.
    """
    c = cfg.circuit
    _check_circuit_patches(cfg, labels)
    result = circuit_flow(
        resistance,
        labels,
        mode=c.mode,
        pairs=_circuit_pairs(cfg, graph),
        exclude_pairs=(*c.exclude_pairs, *_file_exclusions(cfg)),
        focal_shorting=c.focal_shorting,
        connectivity=c.connectivity,
        avg_resistances=c.avg_resistances,
        solver=c.solver,
        tolerance=c.tolerance,
        max_memory_gb=c.max_memory_gb,
        voltage_maps=c.voltage_maps,
        current_maps=c.current_maps,
        max_current=c.max_current_map,
        executor=current_executor(),  # pairwise pairs as the run's tasks (local threads or Dask workers)
    )
    if graph is not None:
        nx.set_edge_attributes(graph, np.nan, "eff_resistance")
        if c.mode is CircuitMode.PAIRWISE:
            for row in result.resistances.itertuples(index=False):
                if graph.has_edge(row.patch_a, row.patch_b):
                    graph.edges[row.patch_a, row.patch_b]["eff_resistance"] = float(row.eff_resistance)
    return result


def circuit_table(result: CircuitResult) -> str:
    """``circuit.csv``: the effective resistances (pairwise) or source voltages (one/all modes).

    A pair with no path between its patches has ``inf`` ohms in the Python API
    and ``-1`` here, as in Circuitscape's resistance tables.
    """
    table = result.resistances.copy()
    if "eff_resistance" in table:
        table["eff_resistance"] = table["eff_resistance"].where(np.isfinite(table["eff_resistance"]), -1.0)
    return table.to_csv(index=False, float_format="%.9g")


def _write_voltages(writer: OutputWriter, circ: CircuitResult, grid: Grid, name: str = "voltage.tif") -> None:
    """``voltage.tif`` (or ``current_solves.tif``): one band per solve, described by its pair or patch."""
    maps = circ.currents if name == "current_solves.tif" else circ.voltages
    keys = list(maps)
    if not keys:
        return
    stack = np.stack([maps[k] for k in keys])
    names = ["-".join(str(v) for v in k) if isinstance(k, tuple) else str(k) for k in keys]
    writer.raster(name, stack, grid, nodata=np.nan, description=RASTERS[name], band_names=names)


def _files(cfg: Any) -> tuple[str, ...]:
    c = cfg.circuit
    optional = (("voltage.tif", c.voltage_maps), ("current_solves.tif", c.current_maps), ("max_current.tif", c.max_current_map))
    return ("current.tif", "circuit.csv", *(name for name, on in optional if on))


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    circ, grid = ctx["circuit"], ctx["inputs"].grid
    writer.raster("current.tif", circ.cum_current, grid, nodata=np.nan, description=RASTERS["current.tif"])
    writer.text("circuit.csv", circuit_table(circ))
    if cfg.circuit.voltage_maps:
        _write_voltages(writer, circ, grid)
    if cfg.circuit.current_maps:
        _write_voltages(writer, circ, grid, "current_solves.tif")
    if cfg.circuit.max_current_map and circ.max_current is not None:
        writer.raster("max_current.tif", circ.max_current, grid, nodata=np.nan, description=RASTERS["max_current.tif"])


STAGE = Stage(
    "circuit",
    "circuit-theory current",
    lambda cfg, c: {"circuit": compute_circuit(cfg, c["resistance"], c["labels"], c.get("graph"))},
    config=(Section("circuit", CircuitConfig, "circuit-theory current"),),
    needs=("inputs", "resistance", "patches"),
    uses=("links",),  # pairs = 'links'; eff_resistance on the links
    after=("corridors",),  # the graph's in-place chain: each stage changing the links runs after the earlier ones
    produces=("circuit",),
    mutates=("graph",),
    enabled=lambda cfg: cfg.circuit.enabled,
    outputs=("current.tif", "circuit.csv", "voltage.tif", "current_solves.tif", "max_current.tif"),
    files=_files,
    write=_write,
)
