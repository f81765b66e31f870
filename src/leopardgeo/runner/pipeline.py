"""``run(config)``: chain the stages (inputs -> habitat -> resistance -> patches) and write outputs.

Each stage is also callable on its own (:func:`load_inputs`,
:func:`compute_suitability`, :func:`compute_resistance`,
:func:`compute_patches`) so a notebook can stop, inspect and resume anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import shapely
from pyproj import Transformer

from leopardgeo.config import (
    CircuitMode,
    FenceMode,
    HabitatMethod,
    PairSet,
    ResistanceMethod,
    RunConfig,
    TerritoryQuality,
    config_hash,
    dump_config,
)
from leopardgeo.core._crs import M2_PER_HA, M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError, NodataWarning, NoPathError, OutputExistsError
from leopardgeo.core.grid import Grid
from leopardgeo.core.version import __version__
from leopardgeo.io import (
    GPKG_NAME,
    RASTERS,
    OutputWriter,
    grid_from_raster,
    json_records,
    read_raster,
    read_vector,
    read_wdpa,
    require_polygons,
)
from leopardgeo.io.circuitscape import read_pairs_file
from leopardgeo.kernels.circuit import CircuitResult, circuit_flow
from leopardgeo.kernels.costdist import CostDistanceResult
from leopardgeo.runner.manifest import MANIFEST_NAME, input_files, input_paths, manifest_json, read_manifest, utc_now
from leopardgeo.runner.stagegraph import CACHE_DIR, Stage, execute, resolve
from leopardgeo.stages.barrier_mapper import BarrierResult, map_barriers
from leopardgeo.stages.corridors import CorridorResult, add_corridor_attributes, least_cost_corridors
from leopardgeo.stages.crossborder import (
    CrossBorderResult,
    border_crossings,
    border_permeability,
    compare_fenced,
    crossing_importance,
    crossing_routes,
    fence_resistance,
    mark_crosses_border,
    split_at_border,
    transboundary_patches,
)
from leopardgeo.stages.graph import build_graph, graph_layers
from leopardgeo.stages.habitat import (
    builtin_covariates,
    hold_at_best,
    read_coefficients,
    rsf_suitability,
    suitability_from_raster,
)
from leopardgeo.stages.metrics import MetricsResult, add_metric_attributes, connectivity_metrics
from leopardgeo.stages.patches import country_raster, extract_patches
from leopardgeo.stages.pinchpoints import PinchResult, add_pinch_attributes, pinch_points
from leopardgeo.stages.resistance import (
    burn_barriers,
    check_resistance,
    resistance_from_classes,
    resistance_from_suitability,
)
from leopardgeo.stages.score import add_scores, corridor_scores
from leopardgeo.stages.sites import SiteResult
from leopardgeo.stages.territories import TerritoryResult, capacity_table, pack_territories, territory_raster

__all__ = [
    "Inputs",
    "RunResult",
    "compute_barriers",
    "compute_circuit",
    "compute_corridors",
    "compute_metrics",
    "compute_pinch_points",
    "compute_patches",
    "compute_resistance",
    "compute_sites",
    "compute_links",
    "compute_suitability",
    "compute_territories",
    "load_inputs",
    "make_grid",
    "run",
    "run_links",
    "run_once",
    "summary_table",
    "territory_outputs",
]

logger = logging.getLogger(__name__)

#: Files ``run`` writes into the output folder (the last two only with links enabled).
OUTPUT_FILES = (GPKG_NAME, "suitability.tif", "resistance.tif", "patches.tif", "run_config.toml", MANIFEST_NAME)
LINK_FILES = ("cwd.tif", "allocation.tif")
#: Files of the territory stage.
TERRITORY_FILES = ("territories.tif", "capacity.csv", "capacity.json")


def output_files(cfg: RunConfig) -> tuple[str, ...]:
    """Files a run with ``cfg`` writes (each GeoTIFF with its QGIS style ``.qml``)."""
    files = OUTPUT_FILES + (LINK_FILES if cfg.links.enabled else ())
    if cfg.links.enabled and cfg.corridors.enabled:
        files += ("corridors.tif",)
    if cfg.circuit.enabled:
        files += ("current.tif", "circuit.csv") + (("voltage.tif",) if cfg.circuit.voltage_maps else ())
        files += (("current_solves.tif",) if cfg.circuit.current_maps else ()) + (
            ("max_current.tif",) if cfg.circuit.max_current_map else ()
        )
    if cfg.links.enabled and cfg.corridors.enabled and cfg.circuit.enabled and cfg.circuit.pinch_points:
        files += ("pinchpoints.tif",)
    if cfg.links.enabled and cfg.barrier_mapper.enabled:
        files += ("barriers.tif",)
    if cfg.links.enabled and cfg.metrics.enabled:
        files += ("metrics.json",)
    if cfg.links.enabled and cfg.crossborder.enabled:
        if cfg.crossborder.fence is not FenceMode.NONE:
            files += ("fence.json", "fence.tif")
    files += site_files(cfg)
    if cfg.territories.enabled:
        files += TERRITORY_FILES
    return files + tuple(f.removesuffix(".tif") + ".qml" for f in files if f.endswith(".tif"))  # QGIS styles


def _sites_run(cfg: RunConfig) -> bool:
    """Whether the sites stage runs: enabled, with candidates (a layer given, a file, or 'auto')."""
    s = cfg.sites
    return s.enabled and (s.candidates != "layer" or cfg.inputs.sites is not None)


def site_files(cfg: RunConfig) -> tuple[str, ...]:
    """Files of the sites stage (the ``sites`` layer goes into the GeoPackage)."""
    if not _sites_run(cfg):
        return ()
    return ("sites.csv", "sites.json") + (("simulation.json", "simulation.png") if cfg.sites.simulate else ())


@dataclass
class Inputs:
    """Everything read for a run, on the analysis grid."""

    grid: Grid
    valid: np.ndarray  #: bool, cells inside the study area and on land
    rasters: dict[str, np.ndarray] = field(default_factory=dict)
    study_area: gpd.GeoDataFrame | None = None
    countries: gpd.GeoDataFrame | None = None
    borders: gpd.GeoDataFrame | None = None
    protected_areas: gpd.GeoDataFrame | None = None
    sites: gpd.GeoDataFrame | None = None
    settlements: gpd.GeoDataFrame | None = None


@dataclass
class RunResult:
    """What :func:`run` produced (arrays on ``inputs.grid``, frames in its CRS)."""

    config: RunConfig
    inputs: Inputs
    suitability: np.ndarray
    resistance: np.ndarray
    patch_labels: np.ndarray
    patches: gpd.GeoDataFrame
    graph: nx.Graph | None = None
    cwd: CostDistanceResult | None = None
    corridors: CorridorResult | None = None
    circuit: CircuitResult | None = None
    pinch: PinchResult | None = None
    barriers: BarrierResult | None = None
    metrics: MetricsResult | None = None
    crossborder: CrossBorderResult | None = None
    scores: pd.DataFrame | None = None
    sites: SiteResult | None = None
    territories: TerritoryResult | None = None
    out_dir: Path | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    @property
    def grid(self) -> Grid:
        """The analysis grid."""
        return self.inputs.grid


# ---------------------------------------------------------------------- stages
def make_grid(cfg: RunConfig) -> Grid:
    """The analysis grid from ``[grid]``: a template raster, or CRS + bounds + cell size.

    Raises
    ------
    ConfigError
        If neither a template nor crs, bounds and cell_size_m are given.
    CRSError
        If the grid's CRS is not projected in metres.
    """
    g = cfg.grid
    if g.template:
        return grid_from_raster(cfg.resolve(g.template), cell_size_m=g.cell_size_m)
    if g.crs and g.bounds and g.cell_size_m:
        return Grid.from_bounds(g.bounds, cell_size_m=g.cell_size_m, crs=g.crs)
    msg = "[grid]: expected `template` (a raster), or all of `crs`, `bounds` and `cell_size_m`; found neither."
    raise ConfigError(msg)


def check_run_memory(cfg: RunConfig, grid: Grid) -> None:
    """Refuse, before any allocation, a run estimated not to fit in memory (see :mod:`leopardgeo.core.memory`).

    Raises
    ------
    MemoryLimitError
        Saying how much the run needs, how much is available and what to change.
    """
    from leopardgeo.core.memory import cells_text, check_memory, estimate_run_bytes, parts_text

    inp = cfg.inputs
    n_inputs = sum(bool(v) for v in (inp.landmask, inp.elevation, inp.landcover, inp.suitability, inp.resistance,
                                     inp.prey_density)) + len(inp.covariates)  # fmt: skip
    stages = [s for s in ("territories", "links") if getattr(cfg, s).enabled] + _extra_stages(cfg)
    n_cells = float(grid.height) * float(grid.width)
    parts = estimate_run_bytes(int(n_cells), n_inputs=n_inputs, stages=stages)
    check_memory(
        parts["total"],
        what=(
            f"the run on a {grid.height:,} x {grid.width:,} grid ({cells_text(n_cells)} cells of {grid.cell_size_m:g} m; "
            f"{parts_text(parts)})"
        ),
        fix=(
            "Use coarser cells ([grid] cell_size_m; the demo uses 500 m), a smaller study area ([grid] bounds or a "
            "smaller template), or switch stages off (e.g. [circuit] enabled = false)."
        ),
    )


def load_inputs(cfg: RunConfig, grid: Grid | None = None) -> Inputs:
    """Read and align every configured input onto the analysis grid.

    Raises
    ------
    MemoryLimitError
        Before any allocation, if the run is estimated not to fit in memory.

    Warns
    -----
    NodataWarning
        When an input raster leaves cells of the study area (land mask and
        study-area polygon) without data; those cells are impassable.
    """
    grid = grid or make_grid(cfg)
    check_run_memory(cfg, grid)
    inp = cfg.inputs
    valid = np.ones(grid.shape, bool)
    rasters: dict[str, np.ndarray] = {}
    if inp.landmask:
        lm = read_raster(cfg.resolve(inp.landmask), grid, resampling="nearest", what="landmask", band=inp.bands.get("landmask"))
        valid &= np.nan_to_num(lm, nan=0.0) > 0
    for name, path, how in (
        ("elevation", inp.elevation, "bilinear"),
        ("landcover", inp.landcover, "nearest"),
        ("suitability", inp.suitability, "bilinear"),
        ("resistance", inp.resistance, "nearest"),
        ("prey_density", inp.prey_density, "bilinear"),
    ):
        if path:
            rasters[name] = read_raster(cfg.resolve(path), grid, resampling=how, what=name, band=inp.bands.get(name))
    for name, path in inp.covariates.items():
        rasters[f"covariate:{name}"] = read_raster(
            cfg.resolve(path), grid, resampling="bilinear", what=name, band=inp.bands.get(name)
        )

    def vec(v: Any, what: str) -> gpd.GeoDataFrame | None:
        return None if v is None else read_vector(cfg.resolve(v.path), v.layer, grid=grid, what=what)

    study = vec(inp.study_area, "study_area")
    if study is not None:
        from rasterio.features import geometry_mask

        require_polygons(study, "study_area", fix="Give the study-area outline as a polygon layer.")
        inside = ~geometry_mask(study.geometry.to_numpy(), out_shape=grid.shape, transform=grid.transform)
        valid &= inside
    countries = vec(inp.countries, "countries")
    if countries is not None:
        require_polygons(countries, "countries", fix="Give country polygons (not points or border lines).")
    pas = None
    if inp.protected_areas is not None:
        pas = read_wdpa(
            cfg.resolve(inp.protected_areas.path),
            inp.protected_areas.layer,
            grid=grid,
            iso3=inp.pa_iso3,
            status=inp.pa_status,
        )
    if not valid.any():
        msg = "no valid cell: the land mask and the study area leave nothing to analyse. Check both layers."
        raise DataError(msg)
    for name, arr in rasters.items():
        missing = valid & np.isnan(arr)  # infinities are values, refused by the stage that uses them
        n_missing = int(missing.sum())
        if n_missing:
            warnings.warn(
                f"{name}: {n_missing:,} of {int(valid.sum()):,} cells of the study area "
                f"({100 * n_missing / valid.sum():.1f} %) have no data (outside the raster or at its nodata); they are "
                "treated as impassable and hold no habitat. Give a raster that covers the whole study area, or clip the "
                "study area ([inputs] study_area) to the raster.",
                NodataWarning,
                stacklevel=2,
            )
    return Inputs(
        grid=grid,
        valid=valid,
        rasters=rasters,
        study_area=study,
        countries=countries,
        borders=vec(inp.borders, "borders"),
        protected_areas=pas,
        sites=vec(inp.sites, "sites"),
        settlements=vec(inp.settlements, "settlements"),
    )


def rsf_inputs(cfg: RunConfig, inputs: Inputs) -> tuple[dict[str, np.ndarray], float, dict[str, float]]:
    """The RSF's covariates (built-in and ``[inputs.covariates]``), intercept and coefficients."""
    h = cfg.habitat
    cov = builtin_covariates(
        inputs.grid,
        elevation_m=inputs.rasters.get("elevation"),
        landcover=inputs.rasters.get("landcover"),
        settlements=inputs.settlements,
        config=h,
    )
    cov |= {k.split(":", 1)[1]: v for k, v in inputs.rasters.items() if k.startswith("covariate:")}
    intercept, coefficients = h.intercept, h.coefficients
    if h.coefficients_file:
        intercept, coefficients = read_coefficients(cfg.resolve(h.coefficients_file))
    return cov, intercept, dict(coefficients)


def compute_suitability(cfg: RunConfig, inputs: Inputs, *, hold: tuple[str, ...] = ()) -> np.ndarray:
    """Suitability 0..1 on the grid (NaN outside valid cells).

    ``hold`` names RSF covariates held at their most favourable value (see
    :func:`leopardgeo.habitat.hold_at_best`); the resistance uses it for the
    residency-only terms of ``[resistance] residency_covariates``.
    """
    h = cfg.habitat
    if h.method is HabitatMethod.RASTER:
        if "suitability" not in inputs.rasters:
            msg = "[habitat] method = 'raster' needs [inputs] suitability = 'path/to/suitability.tif'."
            raise ConfigError(msg)
        return suitability_from_raster(inputs.rasters["suitability"], land=inputs.valid)
    cov, intercept, coefficients = rsf_inputs(cfg, inputs)
    if hold:
        cov = hold_at_best(cov, coefficients, [n for n in hold if n in coefficients], valid=inputs.valid)
    s = rsf_suitability(cov, intercept=intercept, coefficients=coefficients)
    return np.where(inputs.valid, s, np.nan).astype("float32")


def movement_suitability(cfg: RunConfig, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
    """The suitability resistance is derived from: the habitat's, with the residency-only covariates at their best.

    Equal to ``suitability`` when no coefficient names a ``[resistance] residency_covariates`` entry (or the
    habitat is a given raster).
    """
    hold = cfg.resistance.residency_covariates
    if cfg.habitat.method is HabitatMethod.RASTER or not hold:
        return suitability
    h = cfg.habitat
    coefficients = read_coefficients(cfg.resolve(h.coefficients_file))[1] if h.coefficients_file else h.coefficients
    if not any(n in coefficients for n in hold):
        return suitability
    return compute_suitability(cfg, inputs, hold=tuple(hold))


def compute_resistance(cfg: RunConfig, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
    """Resistance on the grid (>= 1 from transforms; NaN = impassable), barriers burned in."""
    rc = cfg.resistance
    if rc.method is ResistanceMethod.CLASSES:
        if "landcover" not in inputs.rasters:
            msg = "[resistance] method = 'classes' needs [inputs] landcover = 'path/to/classes.tif'."
            raise ConfigError(msg)
        r = resistance_from_classes(inputs.rasters["landcover"], rc.class_values)
    elif rc.method is ResistanceMethod.RASTER:
        if "resistance" not in inputs.rasters:
            msg = "[resistance] method = 'raster' needs [inputs] resistance = 'path/to/resistance.tif'."
            raise ConfigError(msg)
        r = check_resistance(inputs.rasters["resistance"], inputs.grid, what="resistance raster")
    else:
        move = movement_suitability(cfg, inputs, suitability)
        r = resistance_from_suitability(move, method=rc.method, max_resistance=rc.max_resistance, shape_c=rc.shape_c)
    r = np.where(inputs.valid, r, np.nan).astype("float32")
    if rc.barriers:
        layers = [
            (
                read_vector(cfg.resolve(b.path), b.layer, grid=inputs.grid, what=f"barrier {b.name!r}"),
                b,
                None
                if b.crossings is None
                else read_vector(
                    cfg.resolve(b.crossings.path), b.crossings.layer, grid=inputs.grid, what=f"crossings of {b.name!r}"
                ),
            )
            for b in rc.barriers
        ]
        r = burn_barriers(r, inputs.grid, layers)
    return check_resistance(r, inputs.grid)


def compute_patches(cfg: RunConfig, inputs: Inputs, suitability: np.ndarray) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Labelled patches and their polygons (see :func:`leopardgeo.stages.patches.extract_patches`)."""
    p = cfg.patches
    return extract_patches(
        suitability,
        inputs.grid,
        min_suitability=p.min_suitability,
        min_area_ha=p.min_area_ha,
        connectivity=p.connectivity,
        protected_areas=inputs.protected_areas,
        protected_mode=p.protected_areas,
        countries=inputs.countries,
        country_field=cfg.inputs.country_field,
        split_by_country=p.split_by_country,
    )


def compute_links(
    cfg: RunConfig,
    inputs: Inputs,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    **log: str,
) -> tuple[nx.Graph, CostDistanceResult]:
    """The least-cost graph (:func:`leopardgeo.stages.graph.build_graph`; ``log``: its ``stage`` and ``isolated_hint``)."""
    lc = cfg.links
    cidx, codes = country_raster(inputs.countries, inputs.grid, cfg.inputs.country_field)
    return build_graph(
        resistance,
        labels,
        patches,
        inputs.grid,
        rule=lc.rule,
        connectivity=lc.connectivity,
        max_cwd=lc.max_cwd,
        max_euclid_m=lc.max_euclid_m,
        k_nearest=lc.k_nearest,
        drop_through_patches=lc.drop_through_patches,
        countries=cidx if codes else None,
        country_codes=codes,
        workers=lc.workers,
        **log,
    )


def protected_raster(inputs: Inputs) -> np.ndarray | None:
    """Bool raster: cells whose centre lies in a protected area (None without protected areas)."""
    if inputs.protected_areas is None or inputs.protected_areas.empty:
        return None
    from rasterio.features import rasterize

    g = inputs.grid
    geoms = [(geom, 1) for geom in inputs.protected_areas.geometry.to_numpy() if geom is not None and not geom.is_empty]
    if not geoms:
        return None
    return rasterize(geoms, out_shape=g.shape, transform=g.transform, fill=0, dtype="uint8").astype(bool)


def compute_corridors(
    cfg: RunConfig, inputs: Inputs, resistance: np.ndarray, labels: np.ndarray, graph: nx.Graph
) -> CorridorResult:
    """Least-cost corridors of the graph's links; sets their corridor attributes on ``graph``."""
    c = cfg.corridors
    result = least_cost_corridors(
        resistance,
        labels,
        graph,
        inputs.grid,
        connectivity=cfg.links.connectivity,
        width_cwd=c.width_cwd,
        width_fraction=c.width_fraction,
        protected=protected_raster(inputs),
        workers=cfg.links.workers,
    )
    add_corridor_attributes(graph, result)
    return result


def _circuit_pairs(cfg: RunConfig, graph: nx.Graph | None) -> list[tuple[int, int]] | None:
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


def _file_exclusions(cfg: RunConfig) -> list[tuple[int, int]]:
    """The pairs an ``exclude`` pairs file skips (none for an include file or no file)."""
    if not cfg.circuit.pairs_file:
        return []
    mode, listed = read_pairs_file(cfg.resolve(cfg.circuit.pairs_file))  # type: ignore[arg-type]
    return listed if mode == "exclude" else []


#: More pairwise circuit solves than this are refused (each is a sparse solve over the whole grid).
MAX_CIRCUIT_PAIRS = 100_000


def _check_circuit_patches(cfg: RunConfig, labels: np.ndarray) -> None:
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


def compute_circuit(cfg: RunConfig, resistance: np.ndarray, labels: np.ndarray, graph: nx.Graph | None = None) -> CircuitResult:
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
    )
    if graph is not None:
        nx.set_edge_attributes(graph, np.nan, "eff_resistance")
        if c.mode is CircuitMode.PAIRWISE:
            for row in result.resistances.itertuples(index=False):
                if graph.has_edge(row.patch_a, row.patch_b):
                    graph.edges[row.patch_a, row.patch_b]["eff_resistance"] = float(row.eff_resistance)
    return result


def compute_pinch_points(
    cfg: RunConfig, resistance: np.ndarray, labels: np.ndarray, corridors: CorridorResult, graph: nx.Graph, grid: Grid
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


def barrier_radii_m(cfg: RunConfig) -> tuple[float, ...]:
    """Detection radii from ``[barrier_mapper]`` min, max and step (metres)."""
    b = cfg.barrier_mapper
    n = int(np.floor((b.max_radius_m - b.min_radius_m) / b.radius_step_m + 1e-9)) + 1
    return tuple(float(b.min_radius_m + i * b.radius_step_m) for i in range(n))


def compute_barriers(
    cfg: RunConfig, inputs: Inputs, resistance: np.ndarray, labels: np.ndarray, graph: nx.Graph
) -> BarrierResult:
    """Barrier Mapper: improvement in least-cost distance per metre restored (see :mod:`leopardgeo.stages.barrier_mapper`)."""
    b = cfg.barrier_mapper
    return map_barriers(
        resistance,
        labels,
        graph,
        inputs.grid,
        radii_m=barrier_radii_m(cfg),
        restored_resistance=b.restored_resistance,
        combine=b.combine,
        n_top=b.n_top,
        connectivity=cfg.links.connectivity,
        workers=cfg.links.workers,
    )


def _landscape_area(cfg: RunConfig, inputs: Inputs) -> float:
    """A_L of PC / IIC: ``[metrics] landscape_area_ha``, else the study area's valid cells (ha)."""
    area = cfg.metrics.landscape_area_ha
    if area is None:
        area = float(inputs.valid.sum()) * inputs.grid.cell_size_m**2 / M2_PER_HA
    return float(area)


def compute_metrics(cfg: RunConfig, inputs: Inputs, graph: nx.Graph) -> MetricsResult:
    """PC, IIC, EC and node / link importance (see :mod:`leopardgeo.stages.metrics`); stored on ``graph``."""
    m = cfg.metrics
    result = connectivity_metrics(
        graph,
        attribute=m.attribute,
        weight=m.distance,
        median_distance=m.median_dispersal,
        probability=m.probability,
        landscape_area=_landscape_area(cfg, inputs),
        min_probability=m.min_probability,
        links=m.link_metrics,
    )
    add_metric_attributes(graph, result)
    return result


def compute_crossborder(
    cfg: RunConfig,
    inputs: Inputs,
    graph: nx.Graph,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    corridors: CorridorResult | None = None,
    circuit: CircuitResult | None = None,
    metrics: MetricsResult | None = None,
    territories: TerritoryResult | None = None,
) -> CrossBorderResult:
    """Cross-border connectivity: links across borders, transboundary patches, every crossing route ranked, the fence.

    (a) links whose least-cost path crosses a border, with the crossing point; (b) patches that straddle a border
    (:func:`leopardgeo.stages.crossborder.transboundary_patches`: border length through habitat and the current across
    it); both ranked by the PC lost if closed (:func:`leopardgeo.stages.crossborder.crossing_routes`).  (c) The fence
    scenario cuts the patches at the border (:func:`leopardgeo.stages.crossborder.split_at_border`), fences the border
    on the resistance, reruns the links and the metrics with the same parameters, and compares (PC / EC,
    capacity reachable, links lost or lengthened; :func:`leopardgeo.stages.crossborder.compare_fenced`).
    """
    cb = cfg.crossborder
    mark_crosses_border(graph)
    grid = inputs.grid
    cidx, codes = country_raster(inputs.countries, grid, cfg.inputs.country_field)
    cur = circuit.cum_current if circuit is not None else None
    borders = None
    if inputs.borders is not None and not inputs.borders.empty:
        extent = shapely.box(*grid.bounds)
        borders = inputs.borders.assign(geometry=inputs.borders.geometry.intersection(extent))
        borders = borders[~borders.geometry.is_empty]
    crossings = border_crossings(graph, cidx, codes, grid, borders=borders, corridors=corridors, current=cur)
    if borders is not None:
        cor = corridors.table if corridors is not None else None
        perm = border_permeability(borders, grid, current=cur, corridors=cor, segment_m=cb.segment_m)
    else:
        perm = gpd.GeoDataFrame({"border": [], "segment": [], "length_m": []}, geometry=[], crs=grid.crs)
    tb = None
    importance: dict[int, float] = {}
    if codes:
        tb = transboundary_patches(
            labels, patches, cidx, codes, grid, resistance,
            band_m=cb.band_m, connectivity=cfg.circuit.connectivity, avg_resistances=cfg.circuit.avg_resistances,
            tolerance=cfg.circuit.tolerance, borders=borders, protected_areas=inputs.protected_areas,
            country_polygons=inputs.countries, country_field=cfg.inputs.country_field,
        )  # fmt: skip
        if len(tb):
            m = cfg.metrics
            importance = crossing_importance(
                graph, sorted(set(tb["patch_id"].astype(int))), labels, cidx, codes, grid,
                attribute=m.attribute, weight=m.distance, median_distance=m.median_dispersal,
                probability=m.probability, landscape_area=_landscape_area(cfg, inputs), min_probability=m.min_probability,
            )  # fmt: skip
    routes = crossing_routes(graph, crossings, tb, importance=importance, permeability=perm if len(perm) else None)
    if cb.fence is FenceMode.NONE or not codes:
        return CrossBorderResult(crossings, perm, transboundary=tb, routes=routes)
    gaps = []
    if cb.fence_gaps:
        tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
        gaps = [tuple(tr.transform(lon, lat)) for lon, lat in cb.fence_gaps]
    fenced, mask = fence_resistance(
        resistance, cidx, grid, mode=str(cb.fence), penalty=cb.fence_penalty, gaps_xy=gaps, gap_width_m=cb.gap_width_m
    )
    part_labels, parts = split_at_border(
        labels, patches, cidx, grid, country_codes=codes, connectivity=cfg.patches.connectivity
    )
    attr = cfg.metrics.attribute
    if attr not in parts.columns and attr in patches.columns:  # a quality-weighted area: the part's share of it
        parts[attr] = patches.set_index("patch_id")[attr].reindex(parts["parent_id"]).to_numpy() * parts["share"]
    # parts lying wholly under the fence (slivers between the fence band and the border) cannot start a link:
    # they stay in the network as isolated nodes, so their habitat counts in PC / EC after the fence
    passable = np.bincount(part_labels.ravel(), weights=np.isfinite(fenced).ravel(), minlength=len(parts) + 1)[1:]
    blocked = parts["patch_id"].to_numpy()[passable[parts["patch_id"].to_numpy() - 1] == 0]
    run_labels = np.where(np.isin(part_labels, blocked), 0, part_labels).astype(part_labels.dtype)
    after, _ = compute_links(
        cfg, inputs, fenced, run_labels, parts[~parts["patch_id"].isin(blocked)], stage="border-fence scenario",
        isolated_hint="Expected when the fence cuts them off: see the fence_links layer and newly_isolated in fence.json.",
    )  # fmt: skip
    for row in parts[parts["patch_id"].isin(blocked)].itertuples(index=False):
        after.add_node(int(row.patch_id), **row._asdict())
    mark_crosses_border(after)
    if metrics is None:
        metrics = compute_metrics(cfg, inputs, graph)
    after_metrics = compute_metrics(cfg, inputs, after)
    capacity = None
    if territories is not None and len(territories.table) and codes and "country" in territories.table.columns:
        t = territories.table
        capacity = pd.DataFrame(
            {
                "patch_id": t["patch"].astype(int),
                "country": [codes[int(c) - 1] if int(c) > 0 else "" for c in t["country"]],
                "adults": 1.0,
            }
        )
    scenario = compare_fenced(graph, after, parts, metrics.summary, after_metrics.summary, crs=grid.crs, capacity=capacity)
    scenario.summary.update({"fence": str(cb.fence), "fence_cells": int(mask.sum()), "gaps": [list(g) for g in cb.fence_gaps]})
    return CrossBorderResult(crossings, perm, scenario, mask, transboundary=tb, routes=routes)


def territory_quality(cfg: RunConfig, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
    """The quality surface of ``[territories] quality``: suitability, or prey density / prey_full_density clipped to 1.

    Raises
    ------
    ConfigError
        If quality = 'prey' and no ``[inputs] prey_density`` raster is given.
    DataError
        If the prey density is negative somewhere.
    """
    tc = cfg.territories
    if tc.quality is not TerritoryQuality.PREY:
        return suitability
    if "prey_density" not in inputs.rasters:
        msg = "[territories] quality = 'prey': expected [inputs] prey_density = 'path/to/prey.tif', found none."
        raise ConfigError(msg)
    density = np.asarray(inputs.rasters["prey_density"], dtype="float64")
    if (np.nan_to_num(density, nan=0.0) < 0).any():
        msg = (
            f"prey_density: expected densities >= 0 (NaN = no data), found a minimum of {np.nanmin(density):g}. "
            "Check the raster's nodata value."
        )
        raise DataError(msg)
    full = tc.prey_full_density if tc.prey_full_density is not None else np.nan  # TerritoryConfig requires it
    return np.where(inputs.valid, np.clip(density / full, 0.0, 1.0), np.nan)


def territory_zones(
    cfg: RunConfig, inputs: Inputs, labels: np.ndarray, patches: gpd.GeoDataFrame
) -> tuple[dict[str, np.ndarray], dict[str, dict[int, tuple[str, str]]]]:
    """Zone rasters (patch, country, protected_area; 0 = none) and how each label is shown in the capacity table.

    Protected areas are burned largest first, so a cell of a reserve nested in a park counts for the reserve.
    """
    grid = inputs.grid
    zones = {"patch": labels.astype("int32")}
    pnames = patches.set_index("patch_id")["name"] if "name" in patches.columns else pd.Series(dtype=str)
    names: dict[str, dict[int, tuple[str, str]]] = {
        "patch": {int(i): (str(int(i)), str(pnames.get(i, "") or "")) for i in patches["patch_id"]}
    }
    cidx, codes = country_raster(inputs.countries, grid, cfg.inputs.country_field)
    if codes:
        zones["country"] = (cidx.astype("int32") + 1).astype("int32")
        cnames = {}
        if inputs.countries is not None and "name" in inputs.countries.columns:
            by_code = inputs.countries.assign(_c=inputs.countries[cfg.inputs.country_field].astype(str))
            cnames = dict(zip(by_code["_c"], by_code["name"].astype(str), strict=False))
        names["country"] = {i + 1: (c, cnames.get(c, c)) for i, c in enumerate(codes)}
    pas = inputs.protected_areas
    if pas is not None and not pas.empty:
        from rasterio.features import rasterize

        order = np.argsort(-pas.geometry.area.to_numpy(), kind="stable")
        geoms = pas.geometry.to_numpy()
        shapes_ = [(geoms[i], int(i) + 1) for i in order if geoms[i] is not None and not geoms[i].is_empty]
        zones["protected_area"] = (
            rasterize(shapes_, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
            if shapes_
            else np.zeros(grid.shape, dtype="int32")
        )
        pa_name = pas["NAME"].astype(str) if "NAME" in pas.columns else pd.Series([""] * len(pas))
        pa_id = pas["WDPAID"] if "WDPAID" in pas.columns else pd.Series(range(1, len(pas) + 1))
        names["protected_area"] = {i + 1: (str(pa_id.iloc[i]), pa_name.iloc[i]) for i in range(len(pas))}
    return zones, names


def compute_territories(
    cfg: RunConfig,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
) -> TerritoryResult:
    """Pack female and male territories in the patches (see :func:`leopardgeo.stages.territories.pack_territories`).

    Territory cells are patch cells with quality >= ``min_quality``; territories grow along ``resistance``.  Zones
    for the capacity table: ``patch`` (``labels``), ``country`` (the country raster) and ``protected_area``
    (the protected areas rasterized by row, 1-based); :func:`territory_outputs` turns them into names.
    """
    tc = cfg.territories
    zones, names = territory_zones(cfg, inputs, labels, patches)
    result = pack_territories(
        territory_quality(cfg, inputs, suitability),
        resistance,
        inputs.grid,
        habitat=labels > 0,
        zones=zones,
        min_area_ha=tc.min_area_ha,
        max_area_ha=tc.max_area_ha,
        female_need_ha=tc.female_need_ha,
        male_multiple=tc.male_multiple,
        min_quality=tc.min_quality,
        max_cost_m=tc.max_cost_m,
        seed=tc.seed,
        replicates=tc.replicates,
        connectivity=tc.connectivity,
        workers=tc.workers,
    )
    if "country" in names:  # capacity("country") shows ISO3 codes, as the CLI and capacity.csv do
        result.zone_codes["country"] = {i: code for i, (code, _) in names["country"].items()}
    return result


def territory_outputs(
    cfg: RunConfig, inputs: Inputs, labels: np.ndarray, patches: gpd.GeoDataFrame, result: TerritoryResult
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The ``territories`` layer (names instead of zone labels) and the capacity table (``capacity.csv``)."""
    _, names = territory_zones(cfg, inputs, labels, patches)
    t = result.table

    def zone(name: str) -> list[int]:
        return t[name].tolist() if name in t.columns else [0] * len(t)

    layer = gpd.GeoDataFrame(
        {
            "territory_id": t["territory_id"].astype("int32"),
            "sex": t["sex"].astype(str),
            "area_ha": t["area_ha"].astype(float),
            "mean_quality": t["mean_quality"].astype(float),
            "patch_id": t["patch"].astype("int32"),
            "country": [names.get("country", {}).get(int(v), ("", ""))[0] for v in zone("country")],
            "protected_area": [names.get("protected_area", {}).get(int(v), ("", ""))[1] for v in zone("protected_area")],
        },
        geometry=t.geometry.to_numpy(),
        crs=t.crs,
    )
    return layer, capacity_table(result, names)


def capacity_report(table: pd.DataFrame, result: TerritoryResult) -> dict[str, Any]:
    """``capacity.json``: the capacity rows and the per-replicate counts."""
    return {
        "columns": list(table.columns),
        "capacity": json_records(table),
        "replicates": json_records(result.replicates),
    }


def compute_scores(cfg: RunConfig, graph: nx.Graph) -> pd.DataFrame:
    """The corridor score of every link (see :mod:`leopardgeo.stages.score`); stored as ``score`` / ``score_rank``."""
    s = cfg.score
    table = corridor_scores(
        graph, {"cwd": s.weight_cwd, "width": s.weight_width, "pinch": s.weight_pinch, "dpc": s.weight_dpc}
    )
    add_scores(graph, table)
    return table


def compute_sites(
    cfg: RunConfig,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    graph: nx.Graph | None = None,
    corridors: CorridorResult | None = None,
    territories: Any = None,
) -> SiteResult:
    """Reintroduction sites: every criterion, the score, the rank stability (see :mod:`leopardgeo.stages.sites`).

    Candidates come from ``[sites] candidates``: the ``[inputs] sites`` layer,
    a vector file, or ``auto``.  ``territories`` (a
    :class:`leopardgeo.stages.territories.TerritoryResult`) gives the existing
    territories for ``dist_to_territory_m`` and the simulation's landscape;
    without it the distance runs to the source and the simulation packs its
    own territories around the site and the source.  Capacity packs with the
    parameters and the quality surface of ``[territories]``.

    Raises
    ------
    ConfigError
        If ``candidates = 'layer'`` and ``[inputs] sites`` is not set.
    DataError
        Empty or invalid candidates, a site on no valid cell, no source.
    """
    from leopardgeo.stages import sites as st

    sc = cfg.sites
    grid = inputs.grid
    timings: dict[str, float] = {}
    t = time.perf_counter()
    src = st.find_source(
        grid, labels=labels, patches=patches, protected_areas=inputs.protected_areas, name=sc.source, valid=inputs.valid
    )
    tp = _territory_params(cfg)
    quality = territory_quality(cfg, inputs, suitability)
    if sc.candidates == "auto":
        cand = st.auto_candidates(
            quality, resistance, grid, labels=labels, patches=patches, source=src, min_females=sc.min_females,
            seed=sc.seed, **tp,
        )  # fmt: skip
    elif sc.candidates == "layer":
        if inputs.sites is None:
            msg = (
                "[sites] candidates = 'layer': expected [inputs] sites = {path = ..., layer = ...}, found none. "
                "Set it, or use candidates = 'auto'."
            )
            raise ConfigError(msg)
        cand = st.prepare_sites(inputs.sites, grid, name_field=sc.name_field)
    else:
        v = sc.candidates
        gdf = read_vector(cfg.resolve(v.path), v.layer, grid=grid, what="[sites] candidates")  # type: ignore[union-attr]
        cand = st.prepare_sites(gdf, grid, name_field=sc.name_field, what="[sites] candidates")
    roads = None
    if sc.roads is not None:
        roads = read_vector(cfg.resolve(sc.roads.path), sc.roads.layer, grid=grid, what="[sites] roads")
    terr_table = getattr(territories, "table", None)
    m = cfg.metrics
    area = m.landscape_area_ha if m.landscape_area_ha is not None else float(inputs.valid.sum()) * grid.cell_area_ha
    table = st.evaluate_sites(
        cand,
        suitability=suitability,
        resistance=resistance,
        labels=labels,
        patches=patches,
        grid=grid,
        source=src,
        valid=inputs.valid,
        graph=graph,
        corridors=corridors.table if corridors is not None else None,
        protected=protected_raster(inputs),
        landcover=inputs.rasters.get("landcover"),
        roads=roads,
        territories=terr_table,
        quality=quality,
        min_suitability=cfg.patches.min_suitability,
        cropland_classes=cfg.habitat.cropland_classes,
        urban_classes=cfg.habitat.urban_classes,
        territory=tp,
        capacity_replicates=sc.capacity_replicates,
        seed=sc.seed,
        median_distance=m.median_dispersal,
        probability=m.probability,
        landscape_area_ha=area,
        circuit_margin_m=sc.circuit_margin_m,
        connectivity=cfg.links.connectivity,
        circuit_connectivity=cfg.circuit.connectivity,
    )
    timings["evaluate"] = time.perf_counter() - t
    cut = _unreachable_sites(table, src.name)
    ranked = table[~cut].reset_index(drop=True)
    scored = st.score_sites(ranked, sc.weights, sc.directions)
    stab = st.rank_stability(
        ranked, sc.weights, sc.directions, n=sc.rank_stability_draws, spread=sc.weight_spread, seed=sc.seed
    )
    scored = scored.merge(stab[["site_id", "first_share", "mean_rank"]], on="site_id", how="left")
    if cut.any():  # listed after the ranked sites, without score or rank
        unranked = table[cut].assign(score=np.nan, rank=np.nan, first_share=np.nan, mean_rank=np.nan)
        scored = pd.concat([scored, unranked], ignore_index=True)
    sim_doc: dict[str, Any] = {}
    sim_results: dict[str, Any] = {}
    if sc.simulate:
        from leopardgeo.stages.simulate import SimulationParams

        t = time.perf_counter()
        extra = dict(sc.simulation_params)
        fixed = {"years", "n_runs", "seed", "founders_female", "founders_male"} & set(extra)
        if fixed:
            msg = (
                f"[sites] simulation_params: {sorted(fixed)} are set by [sites] simulation_years, simulation_runs, seed, "
                "founders_female and founders_male; set them there."
            )
            raise ConfigError(msg)
        try:
            params = SimulationParams(
                years=sc.simulation_years,
                n_runs=sc.simulation_runs,
                seed=sc.seed,
                founders_female=sc.founders_female,
                founders_male=sc.founders_male,
                **{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                   for k, v in extra.items()},
            )  # fmt: skip
        except TypeError as exc:
            msg = f"[sites] simulation_params: {exc}. See leopardgeo.stages.simulate.SimulationParams for the parameter names."
            raise ConfigError(msg) from None
        scen = None
        if sc.simulation_corridor_resistance:
            scen = read_raster(
                cfg.resolve(sc.simulation_corridor_resistance), grid, resampling="nearest",
                what="[sites] simulation_corridor_resistance",
            )  # fmt: skip
        chosen = scored if sc.simulate_sites == "all" else scored.iloc[:1]
        masks = dict(zip(cand["site_id"].astype(int), st.site_masks(cand, grid, inputs.valid), strict=True))
        sim_results = st.simulate_sites(
            chosen, masks, suitability=suitability, resistance=resistance, labels=labels, grid=grid, source=src,
            params=params, territories=territories, quality=quality, min_suitability=cfg.patches.min_suitability, territory=tp,
            margin_m=sc.simulation_margin_m, seed=sc.seed, compare_corridors=sc.simulation_compare_corridors,
            scenario_resistance=scen,
        )  # fmt: skip
        scored = scored.merge(st.simulation_columns(sim_results), on="name", how="left")
        sim_doc = st.simulation_report(sim_results, dict(zip(scored["name"], scored["site_id"].astype(int), strict=True)))
        timings["simulation"] = time.perf_counter() - t
    scored = gpd.GeoDataFrame(scored, geometry="geometry", crs=grid.crs)
    used = {c: float(w) for c, w in sc.weights.items() if w > 0 and c in table.columns and table[c].notna().any()}
    return SiteResult(
        table=scored, stability=stab, source=src, weights=used, simulation=sim_doc, simulation_results=sim_results,
        timings_s=timings,
    )  # fmt: skip


def _unreachable_sites(table: pd.DataFrame, source: str) -> np.ndarray:
    """Mask of the sites that cannot reach the source population (infinite ``cwd_to_source``); they are not ranked.

    Raises
    ------
    NoPathError
        If no site can reach the source.
    """
    if "cwd_to_source" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    cut = ~np.isfinite(table["cwd_to_source"].to_numpy(dtype=float))
    if cut.any():
        names = ", ".join(str(n) for n in table.loc[cut, "name"])
        hint = (
            "No-data cells (outside an input raster, water, impassable barriers) separate them from it: check that "
            "every input covers the study area (see any NodataWarning) and the barriers."
        )
        if cut.all():
            msg = f"sites: expected a site that can reach the source population {source!r}, found none ({names}). {hint}"
            raise NoPathError(msg)
        logger.warning("sites: %s cannot reach the source population %r and are not ranked. %s", names, source, hint)
    return cut


def _territory_params(cfg: RunConfig) -> dict[str, Any]:
    """Packing parameters of ``[territories]`` when the config has that section (else the packing defaults)."""
    t = getattr(cfg, "territories", None)
    keys = ("min_area_ha", "max_area_ha", "female_need_ha", "male_multiple", "min_quality", "max_cost_m", "connectivity")
    return {k: getattr(t, k) for k in keys if t is not None and getattr(t, k, None) is not None}


def site_layer(result: SiteResult) -> gpd.GeoDataFrame:
    """The ``sites`` GeoPackage layer: one polygon per site with every criterion, score, rank and stability."""
    return result.table


def circuit_table(result: CircuitResult) -> str:
    """``circuit.csv``: the effective resistances (pairwise) or source voltages (one/all modes).

    A pair with no path between its patches has ``inf`` ohms in the Python API
    and ``-1`` here, as in Circuitscape's resistance tables.
    """
    table = result.resistances.copy()
    if "eff_resistance" in table:
        table["eff_resistance"] = table["eff_resistance"].where(np.isfinite(table["eff_resistance"]), -1.0)
    return table.to_csv(index=False, float_format="%.9g")


def link_rasters(cwd: CostDistanceResult) -> dict[str, tuple[np.ndarray, float | int]]:
    """``cwd.tif`` (float32, NaN where unreachable or no data) and ``allocation.tif`` (int32, 0 = none)."""
    cost = np.where(np.isfinite(cwd.cost), cwd.cost, np.nan).astype("float32")
    return {"cwd.tif": (cost, np.nan), "allocation.tif": (cwd.allocation.astype("int32"), 0)}


def run_links(
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    overwrite: bool = False,
) -> tuple[nx.Graph, CostDistanceResult]:
    """(Re)build the links of an earlier run, and everything that depends on them, in its folder.

    The run is redone with its own configuration (or ``config``) and links
    enabled: stages the links do not touch are reused from the folder, the
    links and every stage downstream of them (corridors, circuit, pinch points,
    barriers, metrics, cross-border, scores, sites) are recomputed, and the
    folder is replaced whole, so no output is left describing the old links.

    Parameters
    ----------
    out_dir
        Folder of an earlier ``leopardgeo run``.
    config
        Configuration to use; default: the run's own ``run_config.toml``.
    overwrite
        Replace links written before.

    Raises
    ------
    DataError
        If the folder holds no complete run.
    OutputExistsError
        If links exist and ``overwrite`` is false.
    """
    from leopardgeo.config import load_config

    out = Path(out_dir)
    needed = [GPKG_NAME, "resistance.tif", "patches.tif", "run_config.toml"]
    missing = [n for n in needed if not (out / n).exists()]
    if missing:
        msg = f"{str(out)!r}: expected the outputs of `leopardgeo run`, missing {', '.join(missing)}. Run it first."
        raise DataError(msg)
    cfg = config if config is not None else load_config(out / "run_config.toml")
    existing = [str(n) for n in pyogrio.list_layers(out / GPKG_NAME)[:, 0]]
    if not overwrite and ("links" in existing or any((out / n).exists() for n in LINK_FILES)):
        msg = f"{str(out)!r} already holds links; expected none. Pass --overwrite to rebuild them."
        raise OutputExistsError(msg)
    cfg = cfg.replace(links=dataclasses.replace(cfg.links, enabled=True))
    result = run(cfg, out_dir=out, overwrite=True)
    assert result.graph is not None and result.cwd is not None  # links are enabled
    return result.graph, result.cwd


def summary_table(patches: gpd.GeoDataFrame) -> pd.DataFrame:
    """Patches and their area (ha) by country, with a total row."""
    by = patches.assign(country=patches["country"].replace("", "?")).groupby("country")
    table = pd.DataFrame({"patches": by.size(), "area_ha": by["area_ha"].sum()}).reset_index()
    total = pd.DataFrame({"country": ["all"], "patches": [len(patches)], "area_ha": [patches["area_ha"].sum()]})
    return pd.concat([table, total], ignore_index=True)


# ---------------------------------------------------------------------- run
@contextlib.contextmanager
def _steps(progress: bool, total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``step(label)``: logs each step and, with ``progress``, shows a rich bar."""
    if not progress:
        yield lambda label: logger.info("%s", label)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def step(label: str) -> None:
            logger.info("%s", label)
            bar.update(task, description=label, advance=1)

        yield step


def _vector_outputs(inputs: Inputs, patches: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    grid = inputs.grid
    extent = shapely.box(*grid.bounds)
    study = (
        inputs.study_area.assign(geometry=inputs.study_area.geometry.intersection(extent))
        if inputs.study_area is not None
        else gpd.GeoDataFrame({"name": ["analysis grid"]}, geometry=[extent], crs=grid.crs)
    )
    study = study.assign(area_ha=study.geometry.area / M2_PER_HA)
    layers = {"study_area": study}
    if inputs.borders is not None:
        b = inputs.borders.assign(geometry=inputs.borders.geometry.intersection(extent))
        layers["borders"] = b.assign(length_km=b.geometry.length / M_PER_KM)
    if inputs.protected_areas is not None:
        pa = inputs.protected_areas
        layers["protected_areas"] = pa.assign(area_ha=pa.geometry.area / M2_PER_HA)
    layers["patches"] = patches
    return layers

# ---------------------------------------------------------------------- the stage graph
#: Stages that change the graph's links in place, in run order: each uses all the earlier ones, so a reused
#: stage always restores the graph as the stages before it left it.
_GRAPH_CHAIN = ("links", "corridors", "circuit", "pinch_points", "barriers", "metrics", "crossborder", "scores")


def _before(name: str) -> tuple[str, ...]:
    return _GRAPH_CHAIN[: _GRAPH_CHAIN.index(name)]


def _links_on(cfg: RunConfig) -> bool:
    return cfg.links.enabled


#: The run as data: each stage, the config sections it reads, what it needs, what it produces.
STAGES: tuple[Stage, ...] = (
    Stage(
        "inputs",
        "reading and aligning inputs",
        lambda cfg, c: {"inputs": load_inputs(cfg)},
        sections=("grid", "inputs"),
        produces=("inputs",),
    ),
    Stage(
        "habitat",
        "habitat suitability",
        lambda cfg, c: {"suitability": compute_suitability(cfg, c["inputs"])},
        sections=("habitat",),
        needs=("inputs",),
        produces=("suitability",),
        outputs=("suitability.tif",),
    ),
    Stage(
        "resistance",
        "resistance",
        lambda cfg, c: {"resistance": compute_resistance(cfg, c["inputs"], c["suitability"])},
        sections=("resistance",),
        needs=("inputs", "habitat"),
        produces=("resistance",),
        outputs=("resistance.tif",),
    ),
    Stage(
        "patches",
        "habitat patches",
        lambda cfg, c: dict(zip(("labels", "patches"), compute_patches(cfg, c["inputs"], c["suitability"]), strict=True)),
        sections=("patches",),
        needs=("inputs", "habitat"),
        produces=("labels", "patches"),
        outputs=("patches.tif",),
    ),
    Stage(
        "territories",
        "territories and carrying capacity",
        lambda cfg, c: {
            "territories": compute_territories(cfg, c["inputs"], c["suitability"], c["resistance"], c["labels"], c["patches"])
        },
        sections=("territories",),
        needs=("inputs", "habitat", "resistance", "patches"),
        produces=("territories",),
        mutates=("patches",),
        enabled=lambda cfg: cfg.territories.enabled,
        outputs=TERRITORY_FILES,
    ),
    Stage(
        "links",
        "least-cost links",
        lambda cfg, c: dict(
            zip(("graph", "cwd"), compute_links(cfg, c["inputs"], c["resistance"], c["labels"], c["patches"]), strict=True)
        ),
        sections=("links",),
        needs=("inputs", "resistance", "patches"),
        produces=("graph", "cwd"),
        enabled=_links_on,
        outputs=LINK_FILES,
    ),
    Stage(
        "corridors",
        "least-cost corridors",
        lambda cfg, c: {"corridors": compute_corridors(cfg, c["inputs"], c["resistance"], c["labels"], c["graph"])},
        sections=("corridors",),
        needs=("inputs", "resistance", "patches", "links"),
        produces=("corridors",),
        mutates=("graph",),
        enabled=lambda cfg: cfg.corridors.enabled,
        outputs=("corridors.tif",),
    ),
    Stage(
        "circuit",
        "circuit-theory current",
        lambda cfg, c: {"circuit": compute_circuit(cfg, c["resistance"], c["labels"], c.get("graph"))},
        sections=("circuit",),
        needs=("resistance", "patches"),
        uses=_before("circuit"),
        produces=("circuit",),
        mutates=("graph",),
        enabled=lambda cfg: cfg.circuit.enabled,
        outputs=("current.tif", "circuit.csv", "voltage.tif", "current_solves.tif", "max_current.tif"),
    ),
    Stage(
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
    ),
    Stage(
        "barriers",
        "barriers",
        lambda cfg, c: {"barriers": compute_barriers(cfg, c["inputs"], c["resistance"], c["labels"], c["graph"])},
        sections=("barrier_mapper",),
        needs=("inputs", "resistance", "patches", "links"),
        uses=_before("barriers"),
        produces=("barriers",),
        mutates=("graph",),
        enabled=lambda cfg: cfg.barrier_mapper.enabled,
        outputs=("barriers.tif",),
    ),
    Stage(
        "metrics",
        "connectivity metrics",
        lambda cfg, c: {"metrics": compute_metrics(cfg, c["inputs"], c["graph"])},
        sections=("metrics",),
        needs=("inputs", "links"),
        uses=_before("metrics"),
        produces=("metrics",),
        mutates=("graph",),
        enabled=lambda cfg: cfg.metrics.enabled,
        outputs=("metrics.json",),
    ),
    Stage(
        "crossborder",
        "cross-border evaluation and fence scenario",
        lambda cfg, c: {
            "crossborder": compute_crossborder(
                cfg,
                c["inputs"],
                c["graph"],
                c["resistance"],
                c["labels"],
                c["patches"],
                c.get("corridors"),
                c.get("circuit"),
                c.get("metrics"),
                c.get("territories"),
            )
        },
        sections=("crossborder",),
        needs=("inputs", "resistance", "patches", "links"),
        uses=(*_before("crossborder"), "territories"),
        produces=("crossborder",),
        mutates=("graph", "patches"),
        enabled=lambda cfg: cfg.crossborder.enabled,
        outputs=("fence.tif", "fence.json"),
    ),
    Stage(
        "scores",
        "corridor scores",
        lambda cfg, c: {"scores": compute_scores(cfg, c["graph"])},
        sections=("score",),
        needs=("links",),
        uses=_before("scores"),
        produces=("scores",),
        mutates=("graph",),
    ),
    Stage(
        "sites",
        "reintroduction sites",
        lambda cfg, c: {
            "sites": compute_sites(
                cfg,
                c["inputs"],
                c["suitability"],
                c["resistance"],
                c["labels"],
                c["patches"],
                c.get("graph"),
                c.get("corridors"),
                c.get("territories"),
            )
        },
        sections=("sites", "territories", "patches"),
        needs=("inputs", "habitat", "resistance", "patches"),
        uses=(*_GRAPH_CHAIN, "territories"),
        produces=("sites",),
        enabled=_sites_run,
        outputs=("sites.csv", "sites.json", "simulation.json", "simulation.png"),
    ),
)


def run(    config: RunConfig,
    *,
    out_dir: str | Path | None = None,
    overwrite: bool | None = None,
    progress: bool = False,
    recompute: bool = False,
) -> RunResult:
    """Run the pipeline and write the outputs.

    Parameters
    ----------
    config
        The run configuration (:func:`leopardgeo.config.demo_config` for the
        embedded Amur study area).
    out_dir
        Output folder; ``config.output.dir`` when omitted.  ``None`` with
        ``config.output.dir == ""`` runs without writing.
    overwrite
        Replace existing outputs; ``config.output.overwrite`` when omitted.
    progress
        Show a progress bar (terminal or Jupyter).
    recompute
        Compute every stage, even those an earlier run in ``out_dir`` could give (see Notes).

    Returns
    -------
    RunResult

    Raises
    ------
    OutputExistsError
        Before any work, if outputs exist and ``overwrite`` is false.  A run
        that fails later leaves earlier outputs intact.
    RunLockedError
        Before any work, if another run is writing into ``out_dir``.
    ConfigError
        Before any work, if ``out_dir`` holds one of the run's input files.

    Notes
    -----
    The run folder is replaced as a whole (:mod:`leopardgeo.io.runfolder`):
    outputs of an earlier run that this run does not make are removed, files
    the user put there are kept, and a failure or kill leaves the earlier
    folder as it was.

    The stages are the registry :data:`STAGES`, resolved and run by
    :mod:`leopardgeo.runner.stagegraph`.  With ``overwrite`` into a folder of
    an earlier run, a stage whose hash (its config sections, upstream stages,
    input files) is unchanged is loaded from that run's cache instead of being
    computed; ``RunResult.reused`` names those stages.
    """
    out = Path(out_dir) if out_dir is not None else (Path(config.output.dir) if config.output.dir else None)
    ow = config.output.overwrite if overwrite is None else overwrite
    writer = None
    if out is not None:
        inputs = [path for _, path in input_paths(config)]
        writer = OutputWriter(out, overwrite=ow, names=output_files(config), replace=True, inputs=inputs)
    timings: dict[str, float] = {}
    started = utc_now()
    try:
        order = resolve(STAGES, config)
        previous = None
        trusted: set[str] = set()
        if writer is not None and not recompute and out is not None and out.is_dir():
            from leopardgeo.io.runfolder import earlier_outputs

            previous = read_manifest(out)
            trusted = earlier_outputs(out)
        input_hashes = {f["path"]: f["sha256"] for f in input_files(config)}
        with _steps(progress, total=len(order) + (writer is not None)) as step:
            ctx, stage_run = execute(
                order,
                config,
                input_hashes=input_hashes,
                previous=previous,
                folder=out,
                trusted=trusted,
                save=(lambda name, data: writer.path(name).write_bytes(data)) if writer is not None else None,
                keep=writer.keep if writer is not None else None,
                step=step,
            )
            timings |= stage_run.timings_s
            if stage_run.reused:
                done = ", ".join(stage_run.computed) or "nothing"
                logger.info("reused from %s: %s; recomputed: %s", out, ", ".join(stage_run.reused), done)
            inputs, suit, res, labels, patches = (ctx[k] for k in ("inputs", "suitability", "resistance", "labels", "patches"))
            graph, cwd, corr, circ, pinch = (ctx.get(k) for k in ("graph", "cwd", "corridors", "circuit", "pinch"))
            barr, mets, xb, scores, sites, terr = (
                ctx.get(k) for k in ("barriers", "metrics", "crossborder", "scores", "sites", "territories")
            )
            if config.sites.enabled and not _sites_run(config):
                logger.info("reintroduction sites skipped: no [inputs] sites and [sites] candidates = 'layer'")
            if writer is not None:
                t = time.perf_counter()
                step(f"writing outputs to {out}")
                meta = {"leopardgeo_version": __version__, "config_hash": config_hash(config)}
                layers = _vector_outputs(inputs, patches)
                if graph is not None:
                    layers |= graph_layers(graph)
                if corr is not None:
                    layers["corridors"] = corr.table
                if pinch is not None:
                    layers["pinch_points"] = pinch.table
                if barr is not None:
                    layers["barriers"] = barr.top
                if xb is not None:
                    layers |= crossborder_layers(xb)
                capacity = None
                if terr is not None:
                    layers["territories"], capacity = territory_outputs(config, inputs, labels, patches, terr)
                if sites is not None:
                    layers["sites"] = site_layer(sites)
                writer.layers(layers, metadata=meta)
                g = inputs.grid
                writer.raster("suitability.tif", suit, g, description=RASTERS["suitability.tif"])
                writer.raster("resistance.tif", res, g, description=RASTERS["resistance.tif"])
                writer.raster("patches.tif", labels, g, nodata=0, description=RASTERS["patches.tif"])
                if cwd is not None:
                    for name, (array, nodata) in link_rasters(cwd).items():
                        writer.raster(name, array, g, nodata=nodata, description=RASTERS[name])
                if corr is not None:
                    writer.raster("corridors.tif", corr.normalised, g, nodata=np.nan, description=RASTERS["corridors.tif"])
                if circ is not None:
                    writer.raster("current.tif", circ.cum_current, g, nodata=np.nan, description=RASTERS["current.tif"])
                    writer.text("circuit.csv", circuit_table(circ))
                    if config.circuit.voltage_maps:
                        _write_voltages(writer, circ, g)
                    if config.circuit.current_maps:
                        _write_voltages(writer, circ, g, "current_solves.tif")
                    if config.circuit.max_current_map and circ.max_current is not None:
                        desc = RASTERS["max_current.tif"]
                        writer.raster("max_current.tif", circ.max_current, g, nodata=np.nan, description=desc)
                if pinch is not None:
                    writer.raster("pinchpoints.tif", pinch.current, g, nodata=np.nan, description=RASTERS["pinchpoints.tif"])
                if mets is not None:
                    writer.text("metrics.json", json.dumps(mets.summary, indent=1))
                if xb is not None:
                    _write_crossborder(writer, xb, g)
                if barr is not None:
                    writer.raster("barriers.tif", barr.score, g, nodata=np.nan, description=RASTERS["barriers.tif"])
                if sites is not None:
                    timings |= write_sites(writer, sites)
                if terr is not None and capacity is not None:
                    _write_territories(writer, terr, capacity, g)
                writer.text("run_config.toml", dump_config(config, relative_to=out))
                writer.write_styles()  # QGIS styles: layer_styles in the GeoPackage, a .qml beside each GeoTIFF
                timings["write"] = time.perf_counter() - t
                manifest = manifest_json(
                    config,
                    started=started,
                    timings_s=timings,
                    outputs=[n for n in [*writer.written, MANIFEST_NAME] if not n.startswith(CACHE_DIR)],
                    stages=stage_run.manifest(),
                    cache_sha256=stage_run.cache_sha256,
                    relative_to=out,
                )
                writer.text(MANIFEST_NAME, manifest)
                writer.commit()
                timings["write"] = time.perf_counter() - t
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    return RunResult(
        config,
        inputs,
        suit,
        res,
        labels,
        patches,
        graph=graph,
        cwd=cwd,
        corridors=corr,
        circuit=circ,
        pinch=pinch,
        barriers=barr,
        metrics=mets,
        crossborder=xb,
        scores=scores,
        sites=sites,
        territories=terr,
        out_dir=out,
        timings_s=timings,
        reused=stage_run.reused,
    )


def _extra_stages(cfg: RunConfig) -> list[str]:
    """The optional stages after links that ``cfg`` enables, in run order."""
    out = []
    links = cfg.links.enabled
    if links and cfg.corridors.enabled:
        out.append("corridors")
    if cfg.circuit.enabled:
        out.append("circuit")
    if links and cfg.corridors.enabled and cfg.circuit.enabled and cfg.circuit.pinch_points:
        out.append("pinch_points")
    if links and cfg.barrier_mapper.enabled:
        out.append("barriers")
    if links and cfg.metrics.enabled:
        out.append("metrics")
    if links and cfg.crossborder.enabled:
        out.append("crossborder")
    if _sites_run(cfg):
        out.append("sites")
    return out


#: Keys of the simulation's summaries that hold run times: they go to ``manifest.json``, not ``simulation.json``.
TIME_KEYS = frozenset({"elapsed_s", "build_s"})


def split_times(obj: Any, prefix: str = "") -> tuple[Any, dict[str, float]]:
    """``obj`` without its run-time keys (:data:`TIME_KEYS`, at any depth), and those times by dotted key.

    Result files hold no run times, so two runs of one configuration write identical files; the times
    are kept in ``manifest.json``.

    Examples
    --------
    >>> split_times({"a": 1, "elapsed_s": 2.5, "landscape": {"build_s": 0.1, "n": 3}})
    ({'a': 1, 'landscape': {'n': 3}}, {'elapsed_s': 2.5, 'landscape.build_s': 0.1})
    """
    times: dict[str, float] = {}
    if isinstance(obj, dict):
        clean = {}
        for k, v in obj.items():
            if k in TIME_KEYS and isinstance(v, int | float):
                times[prefix + k] = float(v)
            else:
                clean[k], sub = split_times(v, f"{prefix}{k}.")
                times |= sub
        return clean, times
    if isinstance(obj, list):
        items = [split_times(v, f"{prefix}{i}.") for i, v in enumerate(obj)]
        for _, sub in items:
            times |= sub
        return [c for c, _ in items], times
    return obj, times


def write_sites(writer: OutputWriter, result: SiteResult) -> dict[str, float]:
    """``sites.csv`` (the ranked table without geometry) and ``sites.json`` (source, weights, sites, stability).

    Returns the simulation's run times (for ``manifest.json``), which ``simulation.json`` leaves out.
    """
    table = pd.DataFrame(result.table.drop(columns="geometry"))
    writer.text("sites.csv", table.to_csv(index=False, float_format="%.6g"))
    writer.text("sites.json", json.dumps(result.summary(), indent=1, ensure_ascii=False))
    times: dict[str, float] = {}
    if result.simulation:
        from leopardgeo.stages.sites import plot_simulations

        simulation, times = split_times(result.simulation)
        writer.text("simulation.json", json.dumps(simulation, indent=1, ensure_ascii=False))
        plot_simulations(result.simulation_results, writer.path("simulation.png"))
    return {f"simulation.{k}": v for k, v in times.items()}


def crossborder_layers(xb: CrossBorderResult) -> dict[str, gpd.GeoDataFrame]:
    """GeoPackage layers of the cross-border stage: crossings, permeability, transboundary patches, routes, fence links."""
    layers = {"border_crossings": xb.crossings, "border_permeability": xb.permeability}
    if xb.transboundary is not None:
        layers["transboundary_patches"] = xb.transboundary
    if xb.routes is not None:
        layers["crossing_routes"] = xb.routes[xb.routes.geometry.notna()]
    if xb.fence is not None:
        layers["fence_links"] = xb.fence.links[xb.fence.links.geometry.notna()]
    return layers


def fence_report(xb: CrossBorderResult) -> dict[str, Any]:
    """``fence.json``: the fence scenario's summary and every link's status."""
    if xb.fence is None:
        return {}
    return {"summary": xb.fence.summary, "links": json_records(pd.DataFrame(xb.fence.links.drop(columns="geometry")))}


def _write_crossborder(writer: OutputWriter, xb: CrossBorderResult, grid: Grid) -> None:
    if xb.fence is not None and xb.fence_mask is not None:
        writer.text("fence.json", json.dumps(fence_report(xb), indent=1, ensure_ascii=False))
        writer.raster("fence.tif", xb.fence_mask.astype("uint8"), grid, nodata=None, description=RASTERS["fence.tif"])


def _write_territories(writer: OutputWriter, terr: TerritoryResult, capacity: pd.DataFrame, grid: Grid) -> None:
    """``territories.tif`` (uint8 codes), ``capacity.csv`` and ``capacity.json``."""
    writer.raster("territories.tif", territory_raster(terr), grid, nodata=0, description=RASTERS["territories.tif"])
    writer.text("capacity.csv", capacity.to_csv(index=False, float_format="%.6g"))
    writer.text("capacity.json", json.dumps(capacity_report(capacity, terr), indent=1, ensure_ascii=False))


def _write_voltages(writer: OutputWriter, circ: CircuitResult, grid: Grid, name: str = "voltage.tif") -> None:
    """``voltage.tif`` (or ``current_solves.tif``): one band per solve, described by its pair or patch."""
    maps = circ.currents if name == "current_solves.tif" else circ.voltages
    keys = list(maps)
    if not keys:
        return
    stack = np.stack([maps[k] for k in keys])
    names = ["-".join(str(v) for v in k) if isinstance(k, tuple) else str(k) for k in keys]
    writer.raster(name, stack, grid, nodata=np.nan, description=RASTERS[name], band_names=names)


def run_once(config: RunConfig, out_dir: str | Path, *, progress: bool = False) -> Path:
    """Run ``config`` into ``out_dir`` unless the folder already holds a finished run of the same configuration.

    A folder counts as holding the run when its ``manifest.json`` has the same
    ``config_hash`` and leopardgeo version and every file the manifest lists
    is present; otherwise the run is (re)done with ``overwrite=True``.  Meant
    for notebooks and scripts that share one run: the first one runs it, the
    others read its outputs.

    Parameters
    ----------
    config
        The run configuration.
    out_dir
        The output folder.
    progress
        Show a progress bar when running.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    m = read_manifest(out) if out.is_dir() else None
    if (
        m is not None
        and m.get("config_hash") == config_hash(config)
        and m.get("versions", {}).get("leopardgeo") == __version__
        and all((out / name).is_file() for name in m.get("outputs", []))
    ):
        return out
    run(config, out_dir=out, overwrite=True, progress=progress)
    return out
