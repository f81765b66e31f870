"""Omniscape stage: omnidirectional connectivity from moving-window circuits, no patches needed.

McRae et al. (2016) introduced the method; Landau et al. (2021, *JOSS* 6(57):2829) describe
Omniscape.jl, whose conventions the kernel (:mod:`leopardgeo.kernels.omniscape`) follows.
Sources come from the habitat suitability by default (the demo's leopards start where the habitat
is), or from the resistance as Omniscape's ``source_from_resistance``.  The radius and buffer are
given in metres and converted to cells of the run's grid; the block size is a count of cells (see
``docs/circuit.md``: a block is Omniscape's unit of targets, an odd number of cells on a side).

Outputs: ``omniscape_current.tif`` (cumulative current), ``omniscape_flow_potential.tif`` and
``omniscape_normalized.tif`` (current over flow potential), Cloud-Optimized GeoTIFFs with QGIS styles.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leopardgeo.config import _f, _normalise, _positive
from leopardgeo.core.errors import AlignmentError, ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_nonnegative, check_resistance_cells
from leopardgeo.io import RASTERS
from leopardgeo.kernels._omniscape_compiled import _batch_floats, _buffer_size
from leopardgeo.kernels.omniscape import (
    BAND_BLOCK_ROWS,
    BATCH_MAX_BYTES,
    OmniscapeCondition,
    OmniscapeMaps,
    check_options,
    condition_target_values,
    omniscape,
    omniscape_targets,
    source_from_resistance,
)
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage

__all__ = [
    "OMNISCAPE_RASTERS",
    "OmniscapeConfig",
    "OmniscapeResult",
    "GeoTiffBands",
    "OmniscapeSource",
    "STAGE",
    "compute_omniscape",
    "omniscape_conditions",
    "omniscape_files",
    "omniscape_sources",
    "omniscape_summary",
]

logger = logging.getLogger(__name__)

#: Output rasters of the stage (descriptions in :data:`leopardgeo.io.RASTERS`).
OMNISCAPE_RASTERS = ("omniscape_current.tif", "omniscape_flow_potential.tif", "omniscape_normalized.tif")


class Comparison(enum.StrEnum):
    """How a source's condition is compared with its target's (Omniscape's ``comparison1`` / ``comparison2``)."""

    WITHIN = "within"  #: lower <= source - target <= upper (the target's value: median over its block)
    EQUAL = "equal"  #: source == target (the target's value: most common over its block)


#: Named rasters a condition can use besides a file path: the run's inputs and the habitat suitability.
CONDITION_RASTERS = ("elevation", "landcover", "suitability", "prey_density")


class OmniscapeSource(enum.StrEnum):
    """Where source strengths come from."""

    SUITABILITY = "suitability"  #: habitat suitability 0..1 (cells below source_threshold give none)
    RESISTANCE = "resistance"  #: 1 / resistance, none above r_cutoff (Omniscape's source_from_resistance)


@dataclass(frozen=True, slots=True, kw_only=True)
class OmniscapeConfig:
    """Omniscape moving-window current (McRae et al. 2016; Landau et al. 2021), the ``[omniscape]`` section."""

    enabled: bool = _f(True, doc="compute Omniscape's maps in `leopardgeo run`")
    radius_m: float = _f(
        10_000.0,
        doc="moving-window radius in metres (Omniscape's radius, converted to the nearest whole number of cells); "
        "default 10 km, about the 11 km median dispersal of [metrics]",
    )
    block_size: int = _f(
        9,
        doc="target blocks of block_size x block_size cells, odd (Omniscape's block_size); 1 = every cell a target; "
        "larger is faster (fewer windows) with little change to the maps",
    )
    buffer_m: float = _f(0.0, doc="conductance beyond the radius, in metres (Omniscape's buffer)")
    source: OmniscapeSource = _f(
        OmniscapeSource.SUITABILITY, doc="suitability (habitat suitability as source strength) | resistance (1 / r)"
    )
    source_threshold: float = _f(
        0.5,
        doc="source strengths below this are 0 (Omniscape's source_threshold); default 0.5, the habitat-core threshold of "
        "[patches] min_suitability, so only habitat sends current",
    )
    r_cutoff: float | None = _f(None, doc="source = resistance: no source where resistance exceeds this (Omniscape's r_cutoff)")
    flow_potential: bool = _f(True, doc="write the flow potential (current on a uniform landscape)")
    normalized_current: bool = _f(True, doc="write the normalised current (current / flow potential)")
    connectivity: int = _f(8, doc="4 or 8 neighbours (Omniscape: connect_four_neighbors_only = false -> 8)")
    avg_resistances: bool = _f(False, doc="conductance between cells from the mean of the resistances (Circuitscape's option)")
    correct_artifacts: bool = _f(True, doc="Omniscape's block-artifact correction (block_size > 1)")
    conditional: bool = _f(
        False,
        doc="conditional connectivity (Omniscape's conditional): a target is connected only to sources whose "
        "condition1 (and condition2) match its own",
    )
    condition1: str | None = _f(
        None,
        doc="raster of condition 1 at the sources: elevation | landcover | suitability | prey_density | a name of "
        "[inputs] covariates | a raster file (Omniscape's condition1_file)",
    )
    condition1_future: str | None = _f(
        None,
        doc="condition 1 at the targets, e.g. a future climate (Omniscape's compare_to_future = 1 with "
        "condition1_future_file); default: condition1 itself",
    )
    comparison1: Comparison = _f(Comparison.WITHIN, doc="within (lower <= source - target <= upper) | equal")
    condition1_lower: float = _f(0.0, doc="comparison1 = within: least source - target value, units of condition1")
    condition1_upper: float = _f(0.0, doc="comparison1 = within: largest source - target value, units of condition1")
    condition2: str | None = _f(None, doc="a second condition (Omniscape's n_conditions = 2), as condition1")
    condition2_future: str | None = _f(None, doc="condition 2 at the targets, as condition1_future")
    comparison2: Comparison = _f(Comparison.WITHIN, doc="within | equal, for condition2")
    condition2_lower: float = _f(0.0, doc="comparison2 = within: least source - target value")
    condition2_upper: float = _f(0.0, doc="comparison2 = within: largest source - target value")

    def __post_init__(self) -> None:
        if isinstance(self.comparison1, str) and self.comparison1.strip().lower() == "equals":
            object.__setattr__(self, "comparison1", "equal")  # Omniscape.jl's code spells it "equals"
        if isinstance(self.comparison2, str) and self.comparison2.strip().lower() == "equals":
            object.__setattr__(self, "comparison2", "equal")
        _normalise(self, "omniscape")
        _positive(self.radius_m, "omniscape.radius_m")
        _positive(self.buffer_m, "omniscape.buffer_m", allow_zero=True)
        _positive(self.source_threshold, "omniscape.source_threshold", allow_zero=True)
        if self.r_cutoff is not None:
            _positive(self.r_cutoff, "omniscape.r_cutoff")
        if not isinstance(self.block_size, int) or self.block_size < 1 or self.block_size % 2 == 0:
            msg = (
                f"[omniscape] block_size: expected an odd number of cells >= 1, found {self.block_size!r}. "
                f"Use {max(int(self.block_size) + 1, 1) if isinstance(self.block_size, int) else 9}."
            )
            raise ConfigError(msg)
        if self.connectivity not in (4, 8):
            msg = f"[omniscape] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)
        if self.conditional and not self.condition1:
            msg = "[omniscape] conditional = true: expected condition1 (a raster name or file), found none. Set condition1."
            raise ConfigError(msg)
        if self.condition2_future and not self.condition2:
            msg = "[omniscape] condition2_future: expected condition2 as well, found none. Set condition2."
            raise ConfigError(msg)
        for i in (1, 2):
            lower, upper = getattr(self, f"condition{i}_lower"), getattr(self, f"condition{i}_upper")
            if not lower <= upper:
                msg = (
                    f"[omniscape] condition{i}_lower {lower:g} > condition{i}_upper {upper:g}: expected lower <= upper. "
                    "Swap them."
                )
                raise ConfigError(msg)

    def condition_specs(self) -> list[tuple[str, str | None, str, float, float]]:
        """``(present, future, comparison, lower, upper)`` of each condition in use (none unless ``conditional``)."""
        if not self.conditional:
            return []
        out = [(self.condition1, self.condition1_future, str(self.comparison1), self.condition1_lower, self.condition1_upper)]
        if self.condition2:
            out.append(
                (self.condition2, self.condition2_future, str(self.comparison2), self.condition2_lower, self.condition2_upper)
            )
        return out  # type: ignore[return-value]


@dataclass(frozen=True)
class OmniscapeResult:
    """The stage's maps and what produced them.

    Attributes
    ----------
    maps
        :class:`~leopardgeo.kernels.omniscape.OmniscapeMaps` on the run's grid.
    radius_cells, buffer_cells, block_size
        The window in cells of the grid.
    seconds
        Wall time of the moving windows.
    """

    maps: OmniscapeMaps
    radius_cells: int
    buffer_cells: int
    block_size: int
    seconds: float

    def rasters(self) -> dict[str, np.ndarray]:
        """Output file name -> float32 raster (NaN = no data), the maps the config asked for."""
        out = {"omniscape_current.tif": self.maps.current}
        if self.maps.flow_potential is not None:
            out["omniscape_flow_potential.tif"] = self.maps.flow_potential
        if self.maps.normalized is not None:
            out["omniscape_normalized.tif"] = self.maps.normalized
        return {k: v.astype(np.float32) for k, v in out.items()}

    def summary(self) -> dict[str, float | int]:
        """Numbers for the report: window, targets and the spread of the maps (no time: result files stay reproducible)."""
        cur = self.maps.current
        valid = cur[np.isfinite(cur)]
        out: dict[str, float | int] = {
            "radius_cells": self.radius_cells,
            "buffer_cells": self.buffer_cells,
            "block_size": self.block_size,
            "n_targets": self.maps.n_targets,
            "current_median": float(np.median(valid)) if valid.size else float("nan"),
            "current_p99": float(np.percentile(valid, 99)) if valid.size else float("nan"),
        }
        if self.maps.normalized is not None:
            norm = self.maps.normalized[np.isfinite(self.maps.normalized)]
            if norm.size:
                out["share_channelled"] = float(np.mean(norm > 1.0))
        return out


def _kernel_options(cfg: OmniscapeConfig, grid: Grid) -> dict[str, int | bool]:
    """The kernel's keyword arguments from ``[omniscape]`` on ``grid`` (radius and buffer in cells)."""
    cell = float(grid.cell_size_m)
    return {
        "radius": _cells(cfg.radius_m, cell, "radius_m", minimum=1),
        "block_size": cfg.block_size,
        "buffer": _cells(cfg.buffer_m, cell, "buffer_m", minimum=0),
        "connectivity": cfg.connectivity,
        "avg_resistances": cfg.avg_resistances,
        "flow_potential": cfg.flow_potential,
        "normalized": cfg.normalized_current,
        "correct_artifacts": cfg.correct_artifacts,
    }


def _cells(metres: float, cell_m: float, what: str, *, minimum: int) -> int:
    n = round(metres / cell_m)
    if n < minimum:
        msg = (
            f"[omniscape] {what}: expected at least {minimum} cell(s) of {cell_m:g} m, found {metres:g} m "
            f"({metres / cell_m:.2f} cells). Use {what} >= {minimum * cell_m:g}."
        )
        raise ConfigError(msg)
    return n


def omniscape_summary(result: OmniscapeResult, cfg: OmniscapeConfig, cell_size_m: float) -> dict:
    """The ``omniscape.json`` document: the options, the window in cells, windows solved, time, spread of the maps."""
    return {
        "source": str(cfg.source),
        "source_threshold": cfg.source_threshold,
        "radius_m": cfg.radius_m,
        "buffer_m": cfg.buffer_m,
        "cell_size_m": cell_size_m,
        "connectivity": cfg.connectivity,
        "correct_artifacts": cfg.correct_artifacts,
        "conditions": [
            {"present": p, "future": f, "comparison": c, "lower": lo, "upper": up} for p, f, c, lo, up in cfg.condition_specs()
        ],
        **result.summary(),
    }


def omniscape_sources(cfg: OmniscapeConfig, resistance: np.ndarray, suitability: np.ndarray | None) -> np.ndarray:
    """Source strengths per cell from the section's ``source``, ``source_threshold`` and ``r_cutoff``.

    Examples
    --------
    >>> r = np.array([[1.0, 4.0, np.nan]]); s = np.array([[0.9, 0.2, 0.5]])
    >>> omniscape_sources(OmniscapeConfig(source_threshold=0.3), r, s)
    array([[0.9, 0. , 0. ]])
    >>> omniscape_sources(OmniscapeConfig(source="resistance", r_cutoff=2.0), r, s)
    array([[1., 0., 0.]])
    """
    res = np.asarray(resistance, dtype=np.float64)
    if cfg.source is OmniscapeSource.RESISTANCE:
        src = source_from_resistance(res, r_cutoff=math.inf if cfg.r_cutoff is None else cfg.r_cutoff)
    else:
        if suitability is None:
            msg = "[omniscape] source = 'suitability': expected a suitability raster, found none. Use source = 'resistance'."
            raise DataError(msg)
        src = np.nan_to_num(np.asarray(suitability, dtype=np.float64), nan=0.0)
        src[np.isnan(res)] = 0.0  # no source where the landscape has no data
    src[src < cfg.source_threshold] = 0.0
    return src


def omniscape_memory(shape: tuple[int, int], opts: dict, *, arrays_shared: bool, n_conditions: int = 0) -> dict[str, int]:
    """Approximate peak bytes of an Omniscape run: the driver's maps and one task (a band of windows).

    ``opts`` are the kernel's options (:func:`_kernel_options`).  A task holds
    its band's rows of the resistance and the source and its two maps (float64,
    8 B each, plus a temporary), and three banded factors of a window (cells x
    (width + 10) x 8 B: the work array, the uncut and the last cut window's flow-potential factors), and
    the work arrays that solve eight uncut windows at once (eight factors; none above ``BATCH_MAX_BYTES``); with
    ``arrays_shared`` (in-memory rasters sent to Dask workers) each worker also
    holds the two whole rasters.  The driver keeps three float64 maps and a
    no-data mask (plus the two float64 input rasters when they are in memory).
    Each of ``n_conditions`` condition rasters (conditional connectivity) adds
    its band's rows (float64) to a task, and its whole raster to each worker
    with ``arrays_shared``.  Approximate, for refusing a run that cannot fit,
    not a measurement.

    Examples
    --------
    >>> m = omniscape_memory((8000, 8000), {"radius": 6, "buffer": 0, "block_size": 9}, arrays_shared=False)
    >>> m["driver"], m["task"]
    (1600000000, 15817480)
    >>> omniscape_memory((8000, 8000), {"radius": 6, "buffer": 0, "block_size": 9}, arrays_shared=False,
    ...                  n_conditions=2)["task"]
    21961480
    """
    n_rows, n_cols = int(shape[0]), int(shape[1])
    n = n_rows * n_cols
    reach = int(opts["radius"]) + int(opts.get("buffer", 0))
    band_rows = min(n_rows, BAND_BLOCK_ROWS * int(opts["block_size"]) + 2 * reach)
    side = 2 * reach + 1
    window = 3 * _buffer_size(side, side) * 8  # the factor's work array, the flow potential's two kept factors
    batch = _batch_floats(reach, int(opts.get("connectivity", 8))) * 8
    window += batch if batch <= BATCH_MAX_BYTES else 0  # eight uncut windows' factors and lanes
    n_arrays = 2 + int(n_conditions)  # resistance, source and the conditions
    task = band_rows * n_cols * (40 + 8 * int(n_conditions)) + window + (8 * n_arrays * n if arrays_shared else 0)
    driver = n * (3 * 8 + 1)
    return {"driver": int(driver), "task": int(task)}


def check_omniscape_memory(
    shape: tuple[int, int], opts: dict, executor: object | None, *, in_memory: bool, n_conditions: int = 0
) -> None:
    """Refuse, before any window is solved, an Omniscape run whose driver or tasks cannot fit their memory.

    A task's limit is the executor's :meth:`~leopardgeo.core.executor.Executor.task_memory_bytes`
    (a LocalCluster's ``memory_limit`` over its threads; local threads: available memory over the threads).
    ``n_conditions`` counts the condition rasters of conditional connectivity (present and future ones).

    Raises
    ------
    MemoryLimitError
        With the estimate, the memory found and what to change.
    """
    from leopardgeo.core.memory import available_bytes, check_memory

    on_dask = getattr(executor, "kind", "") == "dask"
    est = omniscape_memory(shape, opts, arrays_shared=in_memory and on_dask, n_conditions=n_conditions)
    grid_text = f"Omniscape on a {shape[0]:,} x {shape[1]:,} grid (radius {opts['radius']} cells, block {opts['block_size']})"
    if int(opts["radius"]) >= max(shape):  # every window covers the whole grid: the radius is the likely mistake
        grid_text += f", a radius larger than the grid itself ({max(shape):,} cells; check the radius's unit, metres)"
    check_memory(
        est["driver"] + ((16 + 8 * n_conditions) * shape[0] * shape[1] if in_memory else 0),
        what=f"{grid_text}: its three maps",
        fix="Use coarser cells or a smaller study area, or write only the current ([omniscape] flow_potential = false).",
        limit_bytes=available_bytes(),
    )
    task_limit = getattr(executor, "task_memory_bytes", None)
    extra = ", the whole rasters on its worker" if in_memory and on_dask else ""
    if task_limit is not None:
        check_memory(
            est["task"],
            what=f"{grid_text}: each task (a band of windows{extra})",
            fix=(
                "Give each worker more memory ([executor] memory_limit_gb) or fewer threads, use a smaller radius, or "
                "run `leopardgeo omniscape --resistance FILE` (workers read their bands from the file, not whole rasters)."
            ),
            limit_bytes=int(task_limit()),
        )


def omniscape_conditions(
    cfg: OmniscapeConfig, rasters: dict[str, np.ndarray], read_file: object | None = None
) -> tuple[OmniscapeCondition, ...]:
    """The section's conditions on the run's grid: each name looked up in ``rasters``, else read as a file.

    ``rasters`` maps names to grids (``elevation``, ``landcover``, ``suitability``, ... and the [inputs]
    covariates by their names); ``read_file(path, categorical) -> array`` reads a raster file onto the grid.

    Examples
    --------
    >>> cfg = OmniscapeConfig(conditional=True, condition1="elevation", condition1_lower=-100, condition1_upper=100)
    >>> (c,) = omniscape_conditions(cfg, {"elevation": np.array([[10.0, 20.0]])})
    >>> c.comparison, c.lower, c.upper, c.future is None
    ('within', -100.0, 100.0, True)
    """

    def get(name: str, categorical: bool) -> np.ndarray:
        if name in rasters:
            return np.asarray(rasters[name], dtype=np.float64)
        if read_file is None:
            msg = (
                f"[omniscape] condition raster {name!r}: expected one of {sorted(rasters)} or a raster file, "
                "found neither. Name a run raster or give a file path."
            )
            raise ConfigError(msg)
        return np.asarray(read_file(name, categorical), dtype=np.float64)  # type: ignore[operator]

    out = []
    for present, future, comparison, lower, upper in cfg.condition_specs():
        categorical = comparison == Comparison.EQUAL
        out.append(
            OmniscapeCondition(
                get(present, categorical),
                comparison,
                lower=lower,
                upper=upper,
                future=None if not future else get(future, categorical),
            )
        )
    return tuple(out)


def compute_omniscape(
    cfg: OmniscapeConfig,
    grid: Grid,
    resistance: np.ndarray,
    suitability: np.ndarray | None = None,
    *,
    executor: object | None = None,
    conditions: tuple[OmniscapeCondition, ...] = (),
) -> OmniscapeResult:
    """Omniscape's maps on the run's grid.

    Parameters
    ----------
    cfg
        The ``[omniscape]`` section.
    grid
        The analysis grid (square cells in metres).
    resistance
        Resistance raster (NaN = no data).
    suitability
        Habitat suitability 0..1 (sources with ``source = "suitability"``).
    executor
        Runs the bands of windows (anything with an ordered ``map``); the maps do not depend on it.
    conditions
        Conditional connectivity (:func:`omniscape_conditions` builds them from the section).

    Returns
    -------
    OmniscapeResult

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> grid = Grid.from_bounds((0, 0, 3000, 2000), cell_size_m=100.0, crs=TEST_CRS)
    >>> r = np.ones(grid.shape); r[:, 15] = 50.0; r[10, 15] = 1.0
    >>> res = compute_omniscape(OmniscapeConfig(radius_m=500, block_size=3), grid, r, np.full(grid.shape, 0.8))
    >>> res.radius_cells, bool(res.maps.normalized[10, 15] > 1.0)
    (5, True)
    """
    if resistance.shape != grid.shape or (suitability is not None and suitability.shape != grid.shape):
        msg = f"omniscape: expected rasters of the grid's shape {grid.shape}, found {resistance.shape}."
        raise AlignmentError(msg)
    opts = _kernel_options(cfg, grid)
    n_cond = sum(1 + (c.future is not None) for c in conditions or ())
    check_omniscape_memory(grid.shape, opts, executor, in_memory=True, n_conditions=n_cond)
    src = omniscape_sources(cfg, resistance, suitability)
    t = time.perf_counter()
    maps = omniscape(resistance, src, **opts, executor=executor, conditions=conditions)
    seconds = time.perf_counter() - t
    logger.info("omniscape: %d windows of radius %d cells in %.1f s", maps.n_targets, opts["radius"], seconds)
    return OmniscapeResult(maps, opts["radius"], opts["buffer"], cfg.block_size, seconds)


def _read_rows(path: str, r0: int, r1: int) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as f:
        a = f.read(1, window=Window(0, r0, f.width, r1 - r0), masked=True)
    return np.ma.filled(a.astype(np.float64), np.nan)


@dataclass(frozen=True)
class GeoTiffBands:
    """``read_band`` over GeoTIFFs: rows ``r0:r1`` read through a rasterio window (picklable: workers open the files).

    ``condition_paths`` are the present rasters of conditional connectivity, returned after the source.
    """

    resistance_path: str
    source_path: str | None
    cfg: OmniscapeConfig
    condition_paths: tuple[str, ...] = ()

    def __call__(self, r0: int, r1: int) -> tuple[np.ndarray, ...]:
        """Rows ``r0:r1`` of the resistance, the source strengths (no data = 0, below the threshold = 0), the conditions."""
        res = _read_rows(self.resistance_path, r0, r1)
        conds = tuple(_read_rows(p, r0, r1) for p in self.condition_paths)
        if self.source_path is None:
            return res, omniscape_sources(self.cfg, res, None), *conds
        src = _read_rows(self.source_path, r0, r1)
        check_nonnegative(src, what=f"omniscape source {self.source_path}", row0=r0)
        src = np.nan_to_num(src, nan=0.0)
        src[src < self.cfg.source_threshold] = 0.0
        return res, src, *conds


def _one_band(ds: Any, what: str, path: str | Path) -> None:
    if ds.count != 1:
        msg = (
            f"omniscape {what} {path}: expected a one-band raster, found {ds.count} bands (only the first would be "
            "read). Extract the band you mean, e.g. `gdal_translate -b 2 in.tif band2.tif`."
        )
        raise DataError(msg)


def omniscape_files(
    resistance_path: str | Path,
    *,
    cfg: OmniscapeConfig,
    source_path: str | Path | None = None,
    executor: object | None = None,
) -> tuple[OmniscapeResult, Grid]:
    """Omniscape on GeoTIFFs read band by band (rasterio windows): a task holds only its rows of the inputs.

    ``source_path`` is a source-strength raster on the resistance's grid
    (NaN / nodata = 0); without it, sources come from the resistance (``cfg.source``
    must then be ``"resistance"``).  With ``cfg.conditional`` the conditions are raster
    files on the resistance's grid (read band by band as well).  The maps are returned
    in memory (float64).

    Raises
    ------
    AlignmentError
        If the source raster's grid differs from the resistance's.
    DataError
        If a file cannot be read.
    """
    from leopardgeo.io import _open_raster, check_input_path

    check_input_path(resistance_path, "omniscape resistance")
    if source_path is not None:
        check_input_path(source_path, "omniscape source")
    elif cfg.source is not OmniscapeSource.RESISTANCE:
        msg = "omniscape: expected a source raster, or source = 'resistance' (1 / resistance), found neither."
        raise DataError(msg)
    specs = cfg.condition_specs()
    cond_files = [str(p) for p, *_ in specs]
    future_files = [str(f) if f else str(p) for p, f, *_ in specs]
    for path in {*cond_files, *future_files}:
        check_input_path(path, "omniscape condition")
    with _open_raster(resistance_path, "omniscape resistance") as ds:
        _one_band(ds, "resistance", resistance_path)
        grid = Grid.from_dataset(ds)
        shape = grid.shape
        others = [("source", source_path)] if source_path is not None else []
        others += [("condition", p) for p in dict.fromkeys([*cond_files, *future_files])]
        for what, path in others:
            with _open_raster(path, f"omniscape {what}") as ss:
                _one_band(ss, what, path)
                found = None
                if (ss.height, ss.width) != shape:
                    found = f"{ss.height} x {ss.width} cells"
                elif ss.transform != ds.transform:
                    found = f"the same size on another origin or cell size (transform {tuple(ss.transform)[:6]})"
                elif ss.crs is not None and ds.crs is not None and ss.crs != ds.crs:
                    found = f"the same cells in another CRS ({ss.crs.to_string()} against {ds.crs.to_string()})"
                if found is not None:
                    msg = (
                        f"omniscape {what} {path}: expected the resistance's grid ({shape[0]} x {shape[1]} cells, "
                        f"transform {tuple(ds.transform)[:6]}, {ds.crs.to_string() if ds.crs else 'no CRS'}), found "
                        f"{found}. Warp it onto the resistance's grid (e.g. `gdalwarp -te ... -tr ... -t_srs ...`)."
                    )
                    raise AlignmentError(msg)

    opts = _kernel_options(cfg, grid)
    check_options(opts["radius"], opts["block_size"], opts["buffer"], opts["connectivity"])
    n_cond = len(cond_files)  # the tasks read the present conditions band by band
    check_omniscape_memory(shape, opts, executor, in_memory=False, n_conditions=n_cond)
    read_band = GeoTiffBands(str(resistance_path), None if source_path is None else str(source_path), cfg, tuple(cond_files))

    # targets need the block sums of the sources: one pass over bands of whole block rows (bands start on a
    # block boundary, so each band holds exactly the blocks the whole grid would)
    step = max(cfg.block_size * max(1, 4096 // cfg.block_size), cfg.block_size)
    ys, xs, ss, vals = [], [], [], []
    nodata = np.empty(shape, dtype=bool)  # kept from this pass: the maps' no-data cells (no second pass)
    for r0 in range(0, shape[0], step):
        r1 = min(r0 + step, shape[0])
        res, src = read_band(r0, r1)[:2]
        check_resistance_cells(res, grid, what=f"omniscape resistance {resistance_path}", row0=r0)
        np.isnan(res, out=nodata[r0:r1])
        ty, tx, st = omniscape_targets(src, cfg.block_size)
        ys.append(ty + r0)
        xs.append(tx)
        ss.append(st)
        # the targets' condition values over their blocks (a band holds whole blocks)
        vals.append(
            np.column_stack(
                [
                    condition_target_values(_read_rows(f, r0, r1), ty, tx, cfg.block_size, str(spec[2]))
                    for f, spec in zip(future_files, specs, strict=True)
                ]
            )
            if specs
            else np.zeros((len(ty), 0))
        )
    targets = (np.concatenate(ys), np.concatenate(xs), np.concatenate(ss))
    conditions = tuple(
        OmniscapeCondition(np.zeros((1, 1)), str(c), lower=lo, upper=up) for _, _, c, lo, up in specs
    )  # the rasters come through read_band; only the comparisons are needed here
    t = time.perf_counter()
    maps = omniscape(
        None,
        None,
        **opts,
        executor=executor,
        read_band=read_band,
        shape=shape,
        targets=targets,
        conditions=conditions,
        condition_values=np.concatenate(vals) if specs else None,
        nodata=nodata,
    )
    return OmniscapeResult(maps, opts["radius"], opts["buffer"], cfg.block_size, time.perf_counter() - t), grid


# ---------------------------------------------------------------------- the stage
def omniscape_files_for(cfg: RunConfigLike) -> tuple[str, ...]:
    """The files a run with ``cfg`` writes for the stage."""
    o = cfg.omniscape
    asked = {"omniscape_flow_potential.tif": o.flow_potential, "omniscape_normalized.tif": o.normalized_current}
    return (*(n for n in OMNISCAPE_RASTERS if asked.get(n, True)), "omniscape.json")


def _compute(cfg: RunConfigLike, c: dict) -> dict:
    from leopardgeo.core.executor import current_executor
    from leopardgeo.io import read_raster

    inputs = c["inputs"]
    conditions: tuple[OmniscapeCondition, ...] = ()
    if cfg.omniscape.conditional:
        named = {
            k.removeprefix("covariate:"): v
            for k, v in inputs.rasters.items()
            if k in CONDITION_RASTERS or k.startswith("covariate:")
        }
        if c.get("suitability") is not None:
            named["suitability"] = c["suitability"]

        def read_file(path: str, categorical: bool) -> np.ndarray:
            how = "nearest" if categorical else "bilinear"
            return read_raster(cfg.resolve(path), inputs.grid, resampling=how, what=f"[omniscape] condition {path}")

        conditions = omniscape_conditions(cfg.omniscape, named, read_file)
    # the run's executor (local threads, or Dask workers): bands of windows are its tasks
    result = compute_omniscape(
        cfg.omniscape, inputs.grid, c["resistance"], c["suitability"], executor=current_executor(), conditions=conditions
    )
    return {"omniscape": result}


def _write(writer: object, cfg: RunConfigLike, ctx: Context) -> None:
    result = ctx["omniscape"]
    grid = ctx["inputs"].grid
    for name, array in result.rasters().items():
        writer.raster(name, array, grid, nodata=np.nan, description=RASTERS[name])  # type: ignore[attr-defined]
    doc = omniscape_summary(result, cfg.omniscape, grid.cell_size_m)
    writer.text("omniscape.json", json.dumps(doc, indent=1))  # type: ignore[attr-defined]


STAGE = Stage(
    "omniscape",
    "Omniscape moving windows",
    _compute,
    config=(Section("omniscape", OmniscapeConfig, "Omniscape moving-window current (no patches needed)"),),
    needs=("inputs", "habitat", "resistance"),
    produces=("omniscape",),
    enabled=lambda cfg: cfg.omniscape.enabled,
    reads_inputs=False,
    outputs=(*OMNISCAPE_RASTERS, "omniscape.json"),
    files=omniscape_files_for,
    write=_write,
)
