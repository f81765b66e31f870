r"""Typed, frozen run configuration loaded from TOML.

One section class per pipeline stage, nested in :class:`RunConfig` (the shape of
Circuitscape's typed ``CSConfig``).  Unknown keys and bad values raise
:class:`~leopardgeo.core.errors.ConfigError` listing the valid ones; nothing falls
back silently.  Every default that comes from the literature says where from
(see ``docs/parameters.md``); field names carry their unit.

Examples
--------
>>> cfg = load_config_string('''
... [patches]
... min_area_ha = 8000
... ''')
>>> cfg.patches.min_area_ha, cfg.patches.min_suitability
(8000.0, 0.5)
>>> load_config_string("[patches]\\nmin_area = 1")
Traceback (most recent call last):
...
leopardgeo.core.errors.ConfigError: [patches] unknown key 'min_area'; valid keys: ...
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from leopardgeo.core.errors import ConfigError

__all__ = [
    "BarrierConfig",
    "BarrierMapperConfig",
    "CircuitConfig",
    "CircuitMode",
    "CircuitSolver",
    "FocalShorting",
    "Combine",
    "CorridorConfig",
    "CrossBorderConfig",
    "FenceMode",
    "PairSet",
    "GridConfig",
    "HabitatConfig",
    "HabitatMethod",
    "InputsConfig",
    "LinkConfig",
    "LinkRule",
    "MetricsConfig",
    "OutputConfig",
    "PatchConfig",
    "ProtectedAreaMode",
    "ResistanceConfig",
    "ResistanceMethod",
    "BarrierMode",
    "RunConfig",
    "ScoreConfig",
    "SiteConfig",
    "TerritoryConfig",
    "TerritoryQuality",
    "VectorInput",
    "config_hash",
    "config_template",
    "demo_config",
    "dump_config",
    "load_config",
    "load_config_string",
]


def _f(default: Any = dataclasses.MISSING, *, doc: str, factory: Any = None) -> Any:
    """A dataclass field carrying its documentation (used for the template)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


# ---------------------------------------------------------------------- enums
class HabitatMethod(enum.StrEnum):
    """How suitability is obtained."""

    RASTER = "raster"  #: read a 0..1 suitability raster
    RSF = "rsf"  #: logistic model from covariates and a coefficient table


class ResistanceMethod(enum.StrEnum):
    """How resistance is derived."""

    NEGATIVE_EXPONENTIAL = "negative_exponential"  #: Keeley et al. 2016 transform of suitability
    LINEAR = "linear"  #: linear in suitability
    CLASSES = "classes"  #: lookup table on a class raster (land cover)
    RASTER = "raster"  #: read a resistance raster as it is (inputs.resistance)


class BarrierMode(enum.StrEnum):
    """How a barrier layer changes resistance where it is burned in."""

    ADD = "add"  #: resistance + penalty
    MAX = "max"  #: max(resistance, penalty)
    IMPASSABLE = "impassable"  #: no data (infinite cost), e.g. a fence


class LinkRule(enum.StrEnum):
    """How patches are linked (see :mod:`leopardgeo.stages.graph`)."""

    PLANAR = "planar"  #: cost-Voronoi adjacency in one pass (minimum planar graph, Fall et al. 2007)
    CUTOFF = "cutoff"  #: all pairs within max_cwd and/or max_euclid_m
    KNN = "knn"  #: k nearest patches by least-cost distance


class CircuitMode(enum.StrEnum):
    """Which currents are driven (Circuitscape's modes)."""

    PAIRWISE = "pairwise"  #: 1 A from one patch to another, for each pair
    ONE_TO_ALL = "one_to_all"  #: 1 A into one patch, every other patch grounded
    ALL_TO_ONE = "all_to_one"  #: 1 A into every other patch, one patch grounded


class PairSet(enum.StrEnum):
    """Which patch pairs a pairwise circuit run solves."""

    ALL = "all"  #: every pair of patches (Circuitscape's default)
    LINKS = "links"  #: only pairs joined by a link of the graph


class FenceMode(enum.StrEnum):
    """The border-fence scenario of the cross-border evaluation."""

    NONE = "none"  #: no scenario
    IMPASSABLE = "impassable"  #: border cells become no data, except at the listed gaps
    PENALTY = "penalty"  #: border cells get `fence_penalty` added to their resistance, except at the gaps


class CircuitSolver(enum.StrEnum):
    """Linear solver for the circuit."""

    AUTO = "auto"  #: a direct factor (PARDISO, else CHOLMOD, else SuperLU) where it pays off and fits, else amg
    AMG = "amg"  #: conjugate gradients preconditioned by classical AMG (pyamg)
    PARDISO = "pardiso"  #: MKL PARDISO sparse Cholesky (pypardiso), reused for every solve
    CHOLMOD = "cholmod"  #: CHOLMOD sparse Cholesky (cholespy), reused for every solve
    SUPERLU = "superlu"  #: SciPy's SuperLU sparse LU, reused for every solve


class FocalShorting(enum.StrEnum):
    """Which focal patches a pairwise circuit solve short-circuits."""

    PAIR = "pair"  #: only the pair's two patches (Circuitscape's pairwise convention)
    ALL = "all"  #: every patch in every solve (one matrix for all pairs; Circuitscape with the patches as short-circuit regions)


class Combine(enum.StrEnum):
    """How per-link rasters are combined into one map."""

    MAX = "max"
    SUM = "sum"


class TerritoryQuality(enum.StrEnum):
    """The habitat-quality surface territories are packed on."""

    SUITABILITY = "suitability"  #: the run's habitat suitability 0..1
    PREY = "prey"  #: [inputs] prey_density scaled by [territories] prey_full_density


class ProtectedAreaMode(enum.StrEnum):
    """How protected areas enter the patches."""

    LABEL = "label"  #: patches from suitability only; protected areas name the patches they overlap
    MERGE = "merge"  #: protected cells join the habitat cores they touch
    SEPARATE = "separate"  #: each group of overlapping protected areas is a patch of its own
    IGNORE = "ignore"  #: patches from suitability only


#: Upper bounds on counts that only a typing mistake reaches (10**9 replicates would run for years).
MAX_REPLICATES = 10_000
MAX_DRAWS = 1_000_000
MAX_SIMULATION_RUNS = 100_000

#: Demo RSF coefficients (logit scale).  Signs from the published habitat models (see
#: HabitatConfig.coefficients); magnitudes calibrated on published habitat areas, written down in
#: docs/validation.md ("Calibration").
DEMO_COEFFICIENTS: dict[str, float] = {
    "elevation_km": -1.5,
    "forest": 3.0,
    "open_land": -1.5,
    "dist_cropland_km": 0.05,
    "dist_urban_km": 0.1,
    "settlement_pressure": -1.25,
    "dec_temp_c": 0.7,
    "dec_precip_mm": -0.3,
}
DEMO_INTERCEPT = 8.9

# ---------------------------------------------------------------------- sections
@dataclass(frozen=True, slots=True, kw_only=True)
class VectorInput:
    """A vector layer: ``path`` (any OGR source) and an optional ``layer``."""

    path: str = _f(doc="file path (relative paths are relative to the config file)")
    layer: str | None = _f(None, doc="layer name; the first layer when omitted")


@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierConfig:
    """A barrier layer (roads, settlements, a fence) burned into resistance."""

    path: str = _f(doc="vector file of the barrier (any CRS; reprojected onto the grid), e.g. an OSM roads extract")
    layer: str | None = _f(None, doc="layer name")
    name: str = _f("barrier", doc="label used in logs and reports")
    mode: BarrierMode = _f(BarrierMode.ADD, doc="add | max | impassable")
    penalty: float = _f(50.0, doc="resistance added (add) or floor (max) when no class_field is given; ignored for impassable")
    buffer_m: float = _f(0.0, doc="buffer around lines/points before burning, metres")
    class_field: str | None = _f(
        None,
        doc="column holding each feature's class (e.g. OSM 'highway' or 'railway'); penalties then come from class_penalties",
    )
    class_penalties: dict[str, float] = _f(
        doc=(
            "penalty per class of class_field, e.g. { motorway = 80, primary = 40, track = 2 }; every class present "
            "must be listed (0 = ignore the class). Where classes overlap a cell takes the largest penalty of the layer"
        ),
        factory=dict,
    )
    crossings: VectorInput | None = _f(
        None, doc="points where the barrier is open (underpasses, bridges, gaps in a fence), any CRS"
    )
    crossing_radius_m: float = _f(
        250.0, doc="barrier cells within this distance of a crossing keep their resistance without the barrier, metres"
    )

    def __post_init__(self) -> None:
        _normalise(self, "resistance.barriers")
        _positive(self.penalty, "resistance.barriers.penalty", allow_zero=True)
        _positive(self.buffer_m, "resistance.barriers.buffer_m", allow_zero=True)
        _positive(self.crossing_radius_m, "resistance.barriers.crossing_radius_m")
        for k, v in self.class_penalties.items():
            _positive(v, f"resistance.barriers.class_penalties.{k}", allow_zero=True)
        if self.class_penalties and not self.class_field:
            msg = (
                f"[resistance.barriers] {self.name!r}: class_penalties given but no class_field; expected the column "
                "that holds each feature's class, e.g. class_field = 'highway'."
            )
            raise ConfigError(msg)
        if self.class_field and not self.class_penalties:
            msg = (
                f"[resistance.barriers] {self.name!r}: class_field = {self.class_field!r} but no class_penalties; "
                "expected a table of class = penalty, e.g. class_penalties = { motorway = 80, track = 2 }."
            )
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class GridConfig:
    """The analysis grid: a template raster, or a CRS and bounds."""

    template: str | None = _f(None, doc="raster whose CRS, extent and cells define the grid (e.g. the land mask)")
    crs: str | None = _f(None, doc="projected CRS in metres, when no template is given")
    bounds: tuple[float, float, float, float] | None = _f(
        None, doc="[left, bottom, right, top] in metres, when no template is given"
    )
    cell_size_m: float | None = _f(None, doc="cell size in metres; default: the template's (500 m for the demo)")

    def __post_init__(self) -> None:
        _normalise(self, "grid")
        if self.cell_size_m is not None:
            _positive(self.cell_size_m, "grid.cell_size_m")


@dataclass(frozen=True, slots=True, kw_only=True)
class InputsConfig:
    """Input layers.  Paths are relative to the config file."""

    landmask: str | None = _f(None, doc="raster, 1 = land, 0 = water (water is impassable)")
    elevation: str | None = _f(None, doc="DEM raster in metres (RSF covariate)")
    landcover: str | None = _f(None, doc="land-cover class raster (MODIS IGBP codes in the demo)")
    suitability: str | None = _f(None, doc="suitability raster 0..1 (habitat.method = 'raster')")
    resistance: str | None = _f(None, doc="resistance raster > 0 (resistance.method = 'raster')")
    covariates: dict[str, str] = _f(
        doc=(
            "extra covariate rasters for the RSF, name = path. Demo: dec_temp_c = December mean air temperature, degC "
            "(Legates & Willmott 1989 0.5-degree climatology, real data but coarse; a winter-severity covariate); "
            "dec_precip_mm = December precipitation, mm, same source (falls as snow here: an early-winter snowfall proxy)"
        ),
        factory=dict,
    )
    bands: dict[str, int] = _f(
        doc="band to read of a multi-band raster, by input name, e.g. {suitability = 2} (default band 1, with a warning)",
        factory=dict,
    )
    study_area: VectorInput | None = _f(None, doc="study-area polygon(s)")
    countries: VectorInput | None = _f(None, doc="country polygons")
    country_field: str = _f("iso3", doc="column of `countries` holding the country code")
    borders: VectorInput | None = _f(None, doc="national border lines")
    protected_areas: VectorInput | None = _f(None, doc="protected areas; a WDPA extract works as it is")
    pa_iso3: tuple[str, ...] = _f((), doc="keep only protected areas with these WDPA ISO3 codes (empty = all)")
    pa_status: tuple[str, ...] = _f(
        ("Designated", "Inscribed", "Established"),
        doc="keep only protected areas with these WDPA STATUS values",
    )
    sites: VectorInput | None = _f(None, doc="candidate reintroduction sites")
    settlements: VectorInput | None = _f(
        None,
        doc=(
            "settlement points with a population column, for the settlement_pressure covariate "
            "(demo: GeoNames cities500, CC BY 4.0)"
        ),
    )
    prey_density: str | None = _f(
        None, doc="prey-density raster (any unit, e.g. ungulates per 1000 ha) for [territories] quality = 'prey'"
    )

    def __post_init__(self) -> None:
        _normalise(self, "inputs")
        rasters = {"landmask", "elevation", "landcover", "suitability", "resistance", "prey_density", *self.covariates}
        for k, v in self.bands.items():
            if k not in rasters:
                msg = f"[inputs] bands: unknown raster {k!r}; expected one of {sorted(rasters)}."
                raise ConfigError(msg)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                msg = f"[inputs] bands.{k}: expected a band number >= 1, found {v!r}."
                raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class HabitatConfig:
    """Habitat suitability."""

    method: HabitatMethod = _f(HabitatMethod.RSF, doc="raster | rsf")
    intercept: float = _f(DEMO_INTERCEPT, doc="RSF logistic intercept (demo: calibrated, see docs/validation.md)")
    coefficients: dict[str, float] = _f(
        doc=(
            "RSF logistic coefficients by covariate. Built-in covariates: elevation_km, elevation_km_sq, "
            "forest, open_land, landcover_<code>, dist_cropland_km, dist_urban_km (capped at distance_cap_km), "
            "settlement_pressure (needs [inputs] settlements); plus any name in [inputs.covariates]. Demo signs "
            "follow Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): lower-elevation mixed/broadleaf forest far "
            "from people; Wang et al. (Landsc. Ecol., c. 2016): grazing and human disturbance; winter: leopards keep "
            "to the mild south-west (dec_temp_c, December mean air temperature, warmer = better) and avoid snow "
            "(dec_precip_mm, December precipitation, all of it snow here: less = better). Magnitudes are "
            "calibrated on published habitat areas (docs/validation.md), not fitted: replace them with your model"
        ),
        factory=lambda: dict(DEMO_COEFFICIENTS),
    )
    coefficients_file: str | None = _f(
        None,
        doc=(
            "CSV table of coefficients with columns covariate,coefficient (a row 'intercept' sets the "
            "intercept); replaces intercept and coefficients when given"
        ),
    )
    distance_cap_km: float = _f(10.0, doc="distance covariates are capped here (km); beyond it distance no longer matters")
    forest_classes: tuple[int, ...] = _f(
        (1, 2, 3, 4, 5, 8),
        doc=(
            "land-cover codes counted as forest: IGBP 1-5 (tree cover > 60 %) and 8, woody savanna (tree cover "
            "30-60 %; in SW Primorye the oak woodland of the repeatedly burnt hills, leopard range)"
        ),
    )
    cropland_classes: tuple[int, ...] = _f((12, 14), doc="land-cover codes counted as cropland")
    urban_classes: tuple[int, ...] = _f((13,), doc="land-cover codes counted as urban")
    open_classes: tuple[int, ...] = _f(
        (9, 10), doc="land-cover codes of the open_land covariate: savanna and grassland, in this region farmed valley mosaics"
    )
    settlement_population_field: str = _f("population", doc="column of [inputs] settlements holding the population")
    settlement_reach_km: float = _f(
        2.0, doc="reach (e-folding distance) of the pressure of a settlement of settlement_reach_population people, km"
    )
    settlement_reach_population: float = _f(1000.0, doc="reference population of settlement_reach_km")
    settlement_reach_exponent: float = _f(
        1 / 3,
        doc=(
            "reach grows as (population / settlement_reach_population) ** this (modelling choice, calibrated): "
            "2 km at 1,000 people, 8 km for Ussuriysk (157,000), 17 km for Vladivostok (605,000)"
        ),
    )
    settlement_default_population: float = _f(
        2000.0,
        doc=(
            "population assumed where none is recorded (0 or empty; GeoNames records none for most Chinese "
            "township seats): an assumption, not data"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "habitat")
        _positive(self.distance_cap_km, "habitat.distance_cap_km")
        _positive(self.settlement_reach_km, "habitat.settlement_reach_km")
        _positive(self.settlement_reach_population, "habitat.settlement_reach_population")
        _positive(self.settlement_reach_exponent, "habitat.settlement_reach_exponent", allow_zero=True)
        _positive(self.settlement_default_population, "habitat.settlement_default_population")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResistanceConfig:
    """Resistance to movement (minimum 1; no data = impassable)."""

    method: ResistanceMethod = _f(ResistanceMethod.NEGATIVE_EXPONENTIAL, doc="negative_exponential | linear | classes | raster")
    max_resistance: float = _f(100.0, doc="resistance at suitability 0 (1 at suitability 1); Keeley et al. 2016 use 100")
    shape_c: float = _f(
        8.0,
        doc=(
            "shape of the negative-exponential transform (Keeley et al. 2016, Landsc. Ecol. "
            "31:2151); larger = only the best habitat is easy to cross; calibrate for your data"
        ),
    )
    class_values: dict[str, float] = _f(doc="resistance per land-cover class code (method = 'classes')", factory=dict)
    residency_covariates: tuple[str, ...] = _f(
        (),
        doc=(
            "RSF covariates that limit where leopards settle, not where they cross: held at their most favourable "
            "value in the suitability that resistance is derived from (habitat keeps them). Demo: [] (winter acts on "
            "both: held at the mildest December, the calibrated winter terms make farmland as cheap to cross as "
            "forest, docs/validation.md); e.g. ['dec_temp_c', 'dec_precip_mm'] keeps winter out of resistance"
        ),
    )
    barriers: tuple[BarrierConfig, ...] = _f(
        (), doc="barrier layers burned in: [[resistance.barriers]] path, layer, mode, penalty, buffer_m"
    )

    def __post_init__(self) -> None:
        _normalise(self, "resistance")
        if not self.max_resistance > 1:
            msg = f"[resistance] max_resistance: expected a number > 1, found {self.max_resistance!r}."
            raise ConfigError(msg)
        _positive(self.shape_c, "resistance.shape_c")
        for k, v in self.class_values.items():
            if not v > 0:
                msg = f"[resistance] class_values: expected resistance > 0 for every class, found {k} = {v!r}."
                raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchConfig:
    """Habitat cores."""

    min_suitability: float = _f(0.5, doc="suitability threshold of a core cell (0..1)")
    min_area_ha: float = _f(
        5000.0,
        doc=(
            "smallest core kept, ha: the smallest Amur leopard territory, 5,000 ha "
            "(Wikipedia 'Amur leopard', Ecology: 5,000-30,000 ha)"
        ),
    )
    protected_areas: ProtectedAreaMode = _f(
        ProtectedAreaMode.LABEL,
        doc=(
            "label (protected areas name the patches they overlap and count their capacity, but add no habitat) | "
            "merge (protected cells join the cores they touch) | separate | ignore"
        ),
    )
    connectivity: int = _f(8, doc="cell connectivity of a patch: 4 or 8")
    split_by_country: bool = _f(
        False,
        doc=(
            "cut patches at national borders (off: a patch across a border is one transboundary node; "
            "the fence scenario of [crossborder] cuts them to measure what a fence costs)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "patches")
        if not 0.0 <= self.min_suitability <= 1.0:
            msg = f"[patches] min_suitability: expected a value in 0..1, found {self.min_suitability!r}."
            raise ConfigError(msg)
        _positive(self.min_area_ha, "patches.min_area_ha", allow_zero=True)
        if self.connectivity not in (4, 8):
            msg = f"[patches] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """Least-cost links between patches (the connectivity graph)."""

    enabled: bool = _f(True, doc="build the graph in `leopardgeo run`")
    rule: LinkRule = _f(
        LinkRule.PLANAR,
        doc=(
            "planar (cost-Voronoi neighbours in one pass, Fall et al. 2007; Graphab 'planar'), "
            "cutoff (all pairs within max_cwd / max_euclid_m) or knn (k_nearest per patch)"
        ),
    )
    connectivity: int = _f(8, doc="neighbours per cell: 4, 8 (ArcGIS / Linkage Mapper default) or 16 (knight's moves)")
    max_cwd: float | None = _f(None, doc="longest link kept, cost-weighted metres (resistance x m)")
    max_euclid_m: float | None = _f(None, doc="largest edge-to-edge gap between linked patches, metres")
    k_nearest: int = _f(3, doc="links per patch for rule = 'knn'")
    drop_through_patches: bool = _f(False, doc="drop links whose path crosses another patch")
    workers: int | None = _f(None, doc="threads for per-patch searches (cutoff / knn); default: all cores")

    def __post_init__(self) -> None:
        _normalise(self, "links")
        if self.connectivity not in (4, 8, 16):
            msg = f"[links] connectivity: expected 4, 8 or 16, found {self.connectivity!r}."
            raise ConfigError(msg)
        for name in ("max_cwd", "max_euclid_m"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), f"links.{name}")
        if self.k_nearest < 1:
            msg = f"[links] k_nearest: expected an integer >= 1, found {self.k_nearest!r}."
            raise ConfigError(msg)
        if self.workers is not None and self.workers < 1:
            msg = f"[links] workers: expected an integer >= 1, found {self.workers!r}."
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class CorridorConfig:
    """Least-cost corridors between linked patches (Linkage Mapper's Linkage Pathways)."""

    enabled: bool = _f(True, doc="map corridors in `leopardgeo run` (needs [links] enabled)")
    width_cwd: float | None = _f(
        None,
        doc="truncation width: keep cells whose corridor value (cwd_a + cwd_b - LCD) is at most this, cost-weighted metres",
    )
    width_fraction: float = _f(
        0.1,
        doc="truncation width as a fraction of each link's least-cost distance (used when width_cwd is not set)",
    )

    def __post_init__(self) -> None:
        _normalise(self, "corridors")
        if self.width_cwd is not None:
            _positive(self.width_cwd, "corridors.width_cwd")
        _positive(self.width_fraction, "corridors.width_fraction")


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

    def __post_init__(self) -> None:
        _normalise(self, "circuit")
        if self.connectivity not in (4, 8):
            msg = f"[circuit] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)
        _positive(self.tolerance, "circuit.tolerance")
        if self.max_memory_gb is not None:
            _positive(self.max_memory_gb, "circuit.max_memory_gb")
        for name in ("include_pairs", "exclude_pairs"):
            pairs = tuple(tuple(int(v) for v in p) for p in getattr(self, name))
            bad = [p for p in pairs if len(p) != 2 or p[0] == p[1]]
            if bad:
                msg = f"[circuit] {name}: expected pairs of two different patch ids, found {list(bad[0])!r}."
                raise ConfigError(msg)
            object.__setattr__(self, name, pairs)


@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierMapperConfig:
    """Barriers whose removal most improves links (Linkage Mapper's Barrier Mapper; McRae et al. 2012)."""

    enabled: bool = _f(True, doc="map restoration opportunities in `leopardgeo run` (needs [links] enabled)")
    min_radius_m: float = _f(1000.0, doc="smallest detection radius, metres")
    max_radius_m: float = _f(3000.0, doc="largest detection radius, metres")
    radius_step_m: float = _f(1000.0, doc="step between radii, metres")
    restored_resistance: float | None = _f(None, doc="resistance of restored cells; default: the raster's minimum")
    combine: Combine = _f(Combine.MAX, doc="max | sum over links of the improvement score")
    n_top: int = _f(20, doc="number of top barrier locations in the `barriers` layer")

    def __post_init__(self) -> None:
        _normalise(self, "barrier_mapper")
        for name in ("min_radius_m", "max_radius_m", "radius_step_m"):
            _positive(getattr(self, name), f"barrier_mapper.{name}")
        if self.max_radius_m < self.min_radius_m:
            msg = f"[barrier_mapper] max_radius_m: expected >= min_radius_m ({self.min_radius_m}), found {self.max_radius_m!r}."
            raise ConfigError(msg)
        if self.restored_resistance is not None:
            _positive(self.restored_resistance, "barrier_mapper.restored_resistance")
        if self.n_top < 0:
            msg = f"[barrier_mapper] n_top: expected an integer >= 0, found {self.n_top!r}."
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Graph connectivity metrics (Conefor / Graphab: PC, IIC, EC, dPC, BC, BCPC)."""

    enabled: bool = _f(True, doc="compute the metrics in `leopardgeo run` (needs [links] enabled)")
    attribute: str = _f("area_ha", doc="patch attribute used as the node weight a_i (area_ha, or e.g. a quality-weighted area)")
    distance: str = _f(
        "cwd", doc="link attribute used as the distance d_ij (cwd, cost-weighted metres; or lcp_length_m, euclid_m)"
    )
    median_dispersal: float = _f(
        11_000.0,
        doc=(
            "distance at which the dispersal probability is `probability`, in the unit of `distance`: "
            "11 km, the mean natal dispersal of male leopards (Fattebert et al. 2015, PLoS ONE e0122355; "
            "South African leopards: no Amur figure is published); with cwd, 11 km of resistance-1 habitat"
        ),
    )
    probability: float = _f(0.5, doc="dispersal probability at median_dispersal (0.5 = median, as in Conefor and Graphab)")
    landscape_area_ha: float | None = _f(None, doc="A_L of PC and IIC, ha; default: the study area's valid (land) cells")
    min_probability: float | None = _f(
        None,
        doc=(
            "drop links whose dispersal probability is below this before the max-product paths (Conefor users often "
            "set 0.01: with p = 0.5 at median_dispersal it drops links longer than 6.64 x median_dispersal); "
            "default: keep every link"
        ),
    )
    link_metrics: bool | None = _f(
        None, doc="compute dPC_link / dIIC_link; default: yes up to 250,000 links, then skipped with a message"
    )

    def __post_init__(self) -> None:
        _normalise(self, "metrics")
        _positive(self.median_dispersal, "metrics.median_dispersal")
        if not 0 < self.probability < 1:
            msg = f"[metrics] probability: expected a value strictly between 0 and 1, found {self.probability!r}."
            raise ConfigError(msg)
        if self.landscape_area_ha is not None:
            _positive(self.landscape_area_ha, "metrics.landscape_area_ha")
        if self.min_probability is not None and not 0 <= self.min_probability < 1:
            msg = f"[metrics] min_probability: expected a value in [0, 1), found {self.min_probability!r}."
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossBorderConfig:
    """Where links cross national borders and how permeable each border stretch is."""

    enabled: bool = _f(True, doc="map border crossings and border permeability in `leopardgeo run` (needs [inputs] borders)")
    segment_m: float = _f(5000.0, doc="length of the border segments of the permeability profile, metres")
    fence: FenceMode = _f(
        FenceMode.IMPASSABLE,
        doc=(
            "border-fence scenario: none, impassable (border cells become no data except at fence_gaps) or penalty "
            "(fence_penalty added to their resistance); links and metrics are recomputed and the losses reported"
        ),
    )
    fence_penalty: float = _f(1000.0, doc="resistance added to border cells when fence = 'penalty'")
    fence_gaps: tuple[tuple[float, float], ...] = _f(
        (), doc="openings in the fence as [longitude, latitude] pairs (WGS 84), e.g. river crossings or wildlife passages"
    )
    gap_width_m: float = _f(1000.0, doc="width of each fence opening, metres (border cells within half of it stay open)")
    band_m: float = _f(
        5000.0,
        doc=(
            "current across the border inside a transboundary patch flows between its national parts farther than "
            "this from the border, metres"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "crossborder")
        _positive(self.band_m, "crossborder.band_m")
        _positive(self.segment_m, "crossborder.segment_m")
        _positive(self.fence_penalty, "crossborder.fence_penalty")
        _positive(self.gap_width_m, "crossborder.gap_width_m")
        gaps = tuple(tuple(float(v) for v in g) for g in self.fence_gaps)
        bad = [g for g in gaps if len(g) != 2 or not (-180 <= g[0] <= 180 and -90 <= g[1] <= 90)]
        if bad:
            msg = (
                f"[crossborder] fence_gaps: expected [longitude, latitude] pairs in degrees, found {list(bad[0])!r}. "
                "Write e.g. fence_gaps = [[130.95, 42.95]]."
            )
            raise ConfigError(msg)
        object.__setattr__(self, "fence_gaps", gaps)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreConfig:
    """The corridor score that ranks links everywhere (report, layers, cross-border table).

    score = 100 · Σ w·s / Σ w over the criteria a link has, each s in [0, 1] with 1 = best among the run's links:
    s_cwd = 1 − (ln cwd − ln min) / (ln max − ln min); s_width, s_dpc = (x − min) / (max − min);
    s_pinch = (max − x) / (max − min) (a low pinch current = a wide corridor).
    """

    weight_cwd: float = _f(0.4, doc="weight of the least-cost distance (lower cwd = better, on a log scale)")
    weight_width: float = _f(0.2, doc="weight of the corridor's narrowest width (corridor_width_m, wider = better)")
    weight_pinch: float = _f(0.2, doc="weight of the pinch-point current (pinch_current, lower = better)")
    weight_dpc: float = _f(0.2, doc="weight of the link's importance to PC (dPC_link, higher = better)")

    def __post_init__(self) -> None:
        _normalise(self, "score")
        for name in ("weight_cwd", "weight_width", "weight_pinch", "weight_dpc"):
            _positive(getattr(self, name), f"score.{name}", allow_zero=True)
        if self.weight_cwd + self.weight_width + self.weight_pinch + self.weight_dpc <= 0:
            msg = "[score] weights: expected at least one weight > 0, found all 0. Set e.g. weight_cwd = 1."
            raise ConfigError(msg)


BENEFIT, COST = "benefit", "cost"

#: Scoring criteria: column -> (direction, description).  ``benefit``: higher is better; ``cost``: lower is better.
CRITERIA: dict[str, tuple[str, str]] = {
    "capacity_females": (BENEFIT, "female territories the site holds (replicate 0)"),
    "habitat_area_ha": (BENEFIT, "habitat area inside the site, ha"),
    "mean_quality": (BENEFIT, "mean suitability of the site's habitat, 0..1"),
    "cwd_to_source": (COST, "least-cost distance to the source population, cost-weighted metres"),
    "eff_resistance": (COST, "effective resistance between the site and the source, ohms"),
    "n_corridors": (BENEFIT, "links of the run whose path or corridor passes through the site"),
    "best_corridor_score": (BENEFIT, "best corridor score (0-100) of those links"),
    "dPC_gain_pct": (BENEFIT, "gain in PC when the site joins the network as a node, %"),
    "cropland_frac": (COST, "share of the site's cells in cropland classes"),
    "urban_frac": (COST, "share of the site's cells in urban classes"),
    "road_density_km_per_km2": (COST, "road length per site area, km/km2"),
    "protected_frac": (BENEFIT, "share of the site's cells in protected areas"),
    "dist_to_territory_m": (COST, "distance to the nearest existing leopard territory, m (closer = exchange with residents)"),
}

#: Default weights (modelling choices, not published values: no weighting of these criteria for Amur
#: leopard reintroduction was found).  Capacity and habitat quality weigh most ("big and good enough"),
#: connection second (least cost, effective resistance, corridors, dPC gain), human pressure and protection
#: third; they follow the habitat selection of Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): high prey,
#: forest, far from human activity.  Distance to resident territories is shown but not weighted.
DEFAULT_WEIGHTS: dict[str, float] = {
    "capacity_females": 0.20,
    "habitat_area_ha": 0.05,
    "mean_quality": 0.10,
    "cwd_to_source": 0.10,
    "eff_resistance": 0.10,
    "n_corridors": 0.05,
    "best_corridor_score": 0.05,
    "dPC_gain_pct": 0.10,
    "cropland_frac": 0.05,
    "urban_frac": 0.05,
    "road_density_km_per_km2": 0.05,
    "protected_frac": 0.10,
    "dist_to_territory_m": 0.0,
}


def _default_site_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    """Reintroduction site evaluation (see :mod:`leopardgeo.stages.sites`)."""

    enabled: bool = _f(True, doc="evaluate reintroduction sites in `leopardgeo run` (needs candidates: [inputs] sites or 'auto')")
    candidates: str | VectorInput = _f(
        "layer",
        doc=(
            "'layer' ([inputs] sites: the demo's southern Sikhote-Alin sites), 'auto' (habitat patches away from the "
            "source holding >= min_females female territories) or a vector {path = ..., layer = ...} in any CRS"
        ),
    )
    name_field: str | None = _f(None, doc="column of the site names; default 'name' (any case), else the first text column")
    source: str = _f(
        "Land of the Leopard",
        doc=(
            "source population: protected area(s) whose NAME contains this (case-insensitive); the largest patch if none "
            "does. Land of the Leopard NP holds the remaining wild Amur leopards (Vitkalova et al. 2018)"
        ),
    )
    min_females: int = _f(
        5,
        doc="candidates = 'auto': least number of female territories a patch must hold (modelling choice, not a published value)",
    )
    weights: dict[str, float] = _f(
        doc=(
            "weight of each criterion of the score (>= 0; renormalised over the criteria that have values). Modelling "
            "choices, no published weighting exists: capacity and quality first, connection (cwd_to_source, "
            "eff_resistance, n_corridors, best_corridor_score, dPC_gain_pct) second, human pressure (cropland_frac, "
            "urban_frac, road_density_km_per_km2; Hebblewhite et al. 2011: far from human activity) and protected_frac "
            "third; dist_to_territory_m is shown, weight 0"
        ),
        factory=_default_site_weights,
    )
    directions: dict[str, str] = _f(
        doc="override 'benefit' (higher = better) or 'cost' (lower = better) of a criterion, e.g. dist_to_territory_m",
        factory=dict,
    )
    rank_stability_draws: int = _f(1000, doc="Monte Carlo draws of perturbed weights for the rank stability")
    weight_spread: float = _f(0.5, doc="each weight is multiplied by U(1 - spread, 1 + spread) in every draw")
    seed: int = _f(0, doc="seed of the rank-stability draws, the capacity packings and the simulation")
    capacity_replicates: int = _f(5, doc="territory packings per site (capacity min / max over them)")
    circuit_margin_m: float | None = _f(
        50_000.0,
        doc=(
            "effective resistance site-source is solved in their bounding box plus this margin, metres (an upper "
            "bound on the whole-raster value; leave unset for the whole raster, slower)"
        ),
    )
    roads: VectorInput | None = _f(None, doc="road lines for road_density_km_per_km2 (none in the demo)")
    simulate: bool = _f(True, doc="run the population simulation (leopardgeo.stages.simulate) for the simulated sites")
    simulate_sites: str = _f("all", doc="'all' sites or only the 'top' ranked one")
    simulation_runs: int = _f(500, doc="simulation replicates per site")
    simulation_years: int = _f(100, doc="years simulated (persistence and genetics are reported at 25, 50 and 100 years)")
    simulation_compare_corridors: bool = _f(
        True,
        doc=(
            "also simulate every site with no corridor to the source (same seeds), so the report shows what today's "
            "corridor buys in persistence and heterozygosity retained"
        ),
    )
    simulation_corridor_resistance: str | None = _f(
        None,
        doc=(
            "a scenario's resistance raster (GeoTIFF on the run's grid, or any raster reprojected onto it) simulated "
            "as a third corridor (the 'scenario' rows)"
        ),
    )
    simulation_params: dict[str, Any] = _f(
        doc=(
            "any other parameter of leopardgeo.stages.simulate.SimulationParams, e.g. {lethal_equivalents = 6.29, "
            "catastrophes = [[0.05, 0.3, 0.0]], ev_survival_sd = 0.05} (see docs/parameters.md)"
        ),
        factory=dict,
    )
    founders_female: int = _f(
        2,
        doc=(
            "females released at year 0: the Ussuriysky translocations released 2 females and 4 males in 2023-2025 "
            "(RIA Novosti 20 Oct 2025; TASS 13 Oct 2025)"
        ),
    )
    founders_male: int = _f(4, doc="males released at year 0 (see founders_female)")
    simulation_margin_m: float = _f(
        25_000.0,
        doc=(
            "without the territories stage, the simulation packs territories in the bounding box of the site and the "
            "source plus this margin, metres (modelling choice: beyond it dispersal from either is rare)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "sites")
        if isinstance(self.candidates, str) and self.candidates not in ("layer", "auto"):
            msg = (
                f"[sites] candidates: expected 'layer', 'auto' or a table {{path = ..., layer = ...}}, found "
                f"{self.candidates!r}. Write candidates = {{path = {self.candidates!r}}} for a file."
            )
            raise ConfigError(msg)
        if isinstance(self.candidates, dict):
            object.__setattr__(self, "candidates", VectorInput(**self.candidates))
        for key, table in (("weights", self.weights), ("directions", self.directions)):
            unknown = [k for k in table if k not in CRITERIA]
            if unknown:
                msg = f"[sites] {key}: unknown criterion {unknown[0]!r}; valid criteria: {', '.join(CRITERIA)}."
                raise ConfigError(msg)
        for k, v in self.weights.items():
            _positive(v, f"sites.weights.{k}", allow_zero=True)
        if not any(v > 0 for v in self.weights.values()):
            msg = "[sites] weights: expected at least one weight > 0, found none. Set e.g. capacity_females = 1."
            raise ConfigError(msg)
        for k, v in self.directions.items():
            if v not in ("benefit", "cost"):
                msg = f"[sites] directions: expected 'benefit' or 'cost' for {k!r}, found {v!r}."
                raise ConfigError(msg)
        for name, low in (("min_females", 1), ("rank_stability_draws", 1), ("capacity_replicates", 1),
                          ("simulation_runs", 1), ("simulation_years", 1), ("founders_female", 0),
                          ("founders_male", 0), ("seed", 0)):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                msg = f"[sites] {name}: expected an integer >= {low}, found {v!r}."
                raise ConfigError(msg)
        from leopardgeo.core.memory import check_count

        for name, limit in (("rank_stability_draws", MAX_DRAWS), ("capacity_replicates", MAX_REPLICATES),
                            ("simulation_runs", MAX_SIMULATION_RUNS), ("simulation_years", 1000)):  # fmt: skip
            check_count(getattr(self, name), name=f"[sites] {name}", limit=limit,
                        fix="A count this large would run for days; the defaults are enough for stable results.")  # fmt: skip
        if not 0 <= self.weight_spread < 1:
            msg = f"[sites] weight_spread: expected a fraction in [0, 1), found {self.weight_spread!r}."
            raise ConfigError(msg)
        if self.circuit_margin_m is not None:
            _positive(self.circuit_margin_m, "sites.circuit_margin_m")
        _positive(self.simulation_margin_m, "sites.simulation_margin_m", allow_zero=True)
        if self.simulate_sites not in ("all", "top"):
            msg = f"[sites] simulate_sites: expected 'all' or 'top', found {self.simulate_sites!r}."
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class TerritoryConfig:
    """Territory packing and carrying capacity (see :mod:`leopardgeo.stages.territories`)."""

    enabled: bool = _f(True, doc="pack territories in `leopardgeo run` (needs only the patches)")
    quality: TerritoryQuality = _f(
        TerritoryQuality.SUITABILITY,
        doc="quality surface: suitability (the run's 0..1 habitat map) or prey ([inputs] prey_density / prey_full_density)",
    )
    prey_full_density: float | None = _f(
        None,
        doc=(
            "quality = 'prey': the density (in the raster's unit) at which quality reaches 1; quality = "
            "min(density / prey_full_density, 1). No Amur leopard prey-to-home-range function is published: set it "
            "from your survey, e.g. the density of a well-occupied reference area"
        ),
    )
    min_area_ha: float = _f(
        5000.0,
        doc="smallest territory accepted, ha (Amur leopard territory 5,000-30,000 ha; Wikipedia 'Amur leopard', Ecology)",
    )
    max_area_ha: float = _f(30000.0, doc="largest territory accepted, ha (same source: 5,000-30,000 ha)")
    female_need_ha: float = _f(
        12000.0,
        doc=(
            "resource a female territory must hold: sum of quality x cell area, ha (a territory covers about need / mean "
            "quality). Derived: SECR 0.98 adults/100 km2 at 1 male : 1.2 females (Vitkalova & Shevtsova 2016) gives "
            "0.535 exclusive females per 100 km2, i.e. 18,700 ha per female; x 0.64, the mean suitability of the demo's "
            "habitat, = 12,000 ha (docs/validation.md)"
        ),
    )
    male_multiple: float = _f(
        1.2,
        doc=(
            "male need = female need x this (>= 1). Derived from the SECR sex ratio 1 male : 1.2 females (Vitkalova & "
            "Shevtsova 2016): with males exclusive among males, a male holds 1.2 x a female's area (22,450 vs 18,700 ha)"
        ),
    )
    min_quality: float = _f(0.5, doc="minimum quality of a territory cell (0..1); 0.5 = the habitat-core threshold of [patches]")
    max_cost_m: float = _f(
        30000.0,
        doc=(
            "cost radius of a territory around its seed, cost-weighted metres (inf = no limit). Modelling choice: about "
            "3 x the radius of a 30,000 ha disk (9.8 km), so a territory can follow a valley but not become a strip"
        ),
    )
    seed: int = _f(0, doc="random seed of the seed-cell order (replicate r uses seed + r)")
    replicates: int = _f(5, doc="packings with different seed orders; capacity is reported as mean, sd, min and max")
    connectivity: int = _f(8, doc="4 or 8 neighbours for territory growth")
    workers: int | None = _f(None, doc="threads packing replicates in parallel; default: all cores (results do not depend on it)")

    def __post_init__(self) -> None:
        _normalise(self, "territories")
        _positive(self.min_area_ha, "territories.min_area_ha")
        _positive(self.max_area_ha, "territories.max_area_ha")
        if self.min_area_ha >= self.max_area_ha:
            msg = (
                f"[territories] min_area_ha, max_area_ha: expected min_area_ha < max_area_ha, "
                f"found {self.min_area_ha!r} >= {self.max_area_ha!r}."
            )
            raise ConfigError(msg)
        _positive(self.female_need_ha, "territories.female_need_ha")
        if not (self.male_multiple >= 1 and self.male_multiple != float("inf")):
            msg = f"[territories] male_multiple: expected a finite number >= 1, found {self.male_multiple!r}."
            raise ConfigError(msg)
        if self.female_need_ha * self.male_multiple > self.max_area_ha:
            msg = (
                f"[territories] female_need_ha x male_multiple: expected at most max_area_ha = {self.max_area_ha:g} ha "
                f"(even quality 1 needs area = need), found {self.female_need_ha * self.male_multiple:g} ha. "
                "Lower female_need_ha or male_multiple, or raise max_area_ha."
            )
            raise ConfigError(msg)
        if not 0.0 <= self.min_quality <= 1.0:
            msg = f"[territories] min_quality: expected a value in 0..1, found {self.min_quality!r}."
            raise ConfigError(msg)
        if not self.max_cost_m > 0:  # inf allowed: no limit
            msg = f"[territories] max_cost_m: expected a number > 0 (inf = no limit), found {self.max_cost_m!r}."
            raise ConfigError(msg)
        if self.prey_full_density is not None:
            _positive(self.prey_full_density, "territories.prey_full_density")
        if self.seed < 0:
            msg = f"[territories] seed: expected an integer >= 0, found {self.seed!r}."
            raise ConfigError(msg)
        if self.replicates < 1:
            msg = f"[territories] replicates: expected an integer >= 1, found {self.replicates!r}."
            raise ConfigError(msg)
        from leopardgeo.core.memory import check_count

        check_count(self.replicates, name="[territories] replicates", limit=MAX_REPLICATES,
                    fix="Each replicate is a full packing; 5 to 100 give a stable mean and range.")  # fmt: skip
        if self.connectivity not in (4, 8):
            msg = f"[territories] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)
        if self.workers is not None and self.workers < 1:
            msg = f"[territories] workers: expected an integer >= 1, found {self.workers!r}."
            raise ConfigError(msg)
        if self.quality is TerritoryQuality.PREY and self.prey_full_density is None:
            msg = (
                "[territories] quality = 'prey': expected prey_full_density (the density at which quality is 1), "
                "found none. Set e.g. prey_full_density = 25 (in the unit of [inputs] prey_density)."
            )
            raise ConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputConfig:
    """Where and how outputs are written."""

    dir: str = _f("out", doc="output folder (relative to the current directory)")
    overwrite: bool = _f(False, doc="replace existing outputs")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """The whole run: one section per stage."""

    grid: GridConfig = _f(doc="analysis grid", factory=GridConfig)
    inputs: InputsConfig = _f(doc="input layers", factory=InputsConfig)
    habitat: HabitatConfig = _f(doc="habitat suitability", factory=HabitatConfig)
    resistance: ResistanceConfig = _f(doc="resistance", factory=ResistanceConfig)
    patches: PatchConfig = _f(doc="habitat patches", factory=PatchConfig)
    links: LinkConfig = _f(doc="least-cost links", factory=LinkConfig)
    corridors: CorridorConfig = _f(doc="least-cost corridors", factory=CorridorConfig)
    circuit: CircuitConfig = _f(doc="circuit-theory current", factory=CircuitConfig)
    barrier_mapper: BarrierMapperConfig = _f(doc="barrier (restoration) mapping", factory=BarrierMapperConfig)
    metrics: MetricsConfig = _f(doc="graph connectivity metrics", factory=MetricsConfig)
    crossborder: CrossBorderConfig = _f(doc="cross-border evaluation", factory=CrossBorderConfig)
    score: ScoreConfig = _f(doc="corridor score", factory=ScoreConfig)
    sites: SiteConfig = _f(doc="reintroduction site evaluation", factory=SiteConfig)
    territories: TerritoryConfig = _f(doc="territory packing and carrying capacity", factory=TerritoryConfig)
    output: OutputConfig = _f(doc="outputs", factory=OutputConfig)
    base_dir: str = _f(".", doc="folder that relative input paths start from")

    def resolve(self, path: str | None) -> Path | None:
        """An input path made absolute against :attr:`base_dir`."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def replace(self, **sections: Any) -> RunConfig:
        """A copy with whole sections replaced (configs are frozen)."""
        return dataclasses.replace(self, **sections)


def _normalise(obj: Any, section: str) -> None:
    """Turn strings into enum members (and lists into tuples) when a section is built in Python."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        if isinstance(tp, type) and issubclass(tp, enum.Enum) and not isinstance(value, tp):
            object.__setattr__(obj, f.name, _coerce(tp, value, f"[{section}] {f.name}"))
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            object.__setattr__(obj, f.name, tuple(value))


def _positive(value: float, where: str, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value != value or value in (float("inf"), float("-inf")):
        bound = ">= 0" if allow_zero else "> 0"
        section, _, key = where.rpartition(".")
        msg = f"[{section}] {key}: expected a finite number {bound}, found {value!r}."
        raise ConfigError(msg)


# ---------------------------------------------------------------------- parsing
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            return None
        for alt in non_none[1:]:  # e.g. str | VectorInput: a table is the second kind
            if dataclasses.is_dataclass(alt) and isinstance(value, dict):
                return _coerce(alt, value, where)
        return _coerce(non_none[0], value, where)
    if dataclasses.is_dataclass(tp):
        if tp is VectorInput and isinstance(value, str):
            return VectorInput(path=value)
        if not isinstance(value, dict):
            msg = f"{where}: expected a table, found {value!r}."
            raise ConfigError(msg)
        return _from_dict(tp, value, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        valid = [m.value for m in tp]
        if value not in valid:
            msg = f"{where}: expected one of {valid}, found {value!r}."
            raise ConfigError(msg)
        return tp(value)
    if tp is bool:
        if not isinstance(value, bool):
            msg = f"{where}: expected true or false, found {value!r}."
            raise ConfigError(msg)
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{where}: expected a number, found {value!r}."
            raise ConfigError(msg)
        if tp is int and not float(value).is_integer():
            msg = f"{where}: expected a whole number, found {value!r}."
            raise ConfigError(msg)
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            msg = f"{where}: expected a string, found {value!r}."
            raise ConfigError(msg)
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            msg = f"{where}: expected a list, found {value!r}."
            raise ConfigError(msg)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            msg = f"{where}: expected a list of {len(args)} values, found {len(value)}."
            raise ConfigError(msg)
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            msg = f"{where}: expected a table of name = value, found {value!r}."
            raise ConfigError(msg)
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    msg = f"{where}: unsupported type {_type_name(tp)}"  # pragma: no cover - programming error
    raise TypeError(msg)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        label = f"[{where}]" if where else "top level"
        keys = ", ".join(repr(k) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        msg = f"{label} unknown key{plural} {keys}; valid keys: {', '.join(names)}."
        raise ConfigError(msg)
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(hints[k], v, f"{where}.{k}" if where else k)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        msg = f"[{where}] {exc}"
        raise ConfigError(msg) from exc


def load_config_string(text: str, *, base_dir: str | Path = ".") -> RunConfig:
    """Parse TOML text into a :class:`RunConfig`.

    Raises
    ------
    ConfigError
        On a TOML syntax error, an unknown key or a bad value.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"config is not valid TOML: {exc}. Check quotes and [section] headers."
        raise ConfigError(msg) from exc
    root = Path(base_dir).resolve()
    given = data.get("base_dir", ".")
    if not isinstance(given, str):
        msg = f"base_dir: expected a string, found {given!r}."
        raise ConfigError(msg)
    data["base_dir"] = str((root / Path(given).expanduser()).resolve())
    return _from_dict(RunConfig, data, "")


def load_config(path: str | Path, *, over: RunConfig | None = None) -> RunConfig:
    r"""Read a TOML config file; relative input paths resolve against its folder.

    Parameters
    ----------
    path
        The TOML file.
    over
        The configuration a partial file completes (the effective config of an
        earlier run, or :func:`demo_config`).  A file without ``[inputs]`` and
        ``[grid]`` sections takes every section it does not hold from ``over``
        (the data, the countries, the other stages' settings); a section it holds
        replaces ``over``'s section whole (keys it leaves out take their defaults).
        A file with ``[inputs]`` or ``[grid]`` describes its own data and is read
        as it is.

    Raises
    ------
    ConfigError
        If the file is missing or invalid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "links.toml"
    >>> _ = f.write_text('[links]\nrule = "knn"\n')
    >>> cfg = load_config(f, over=demo_config())
    >>> cfg.links.rule.value, cfg.inputs.countries.layer
    ('knn', 'countries')
    >>> load_config(f).inputs.countries is None
    True
    """
    p = Path(path)
    if not p.is_file():
        msg = f"config file {str(p)!r} not found. Create one with `leopardgeo init {p}`."
        raise ConfigError(msg)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        msg = f"config file {str(p)!r} cannot be read: {exc.strerror}. Check its permissions."
        raise ConfigError(msg) from exc
    try:
        text = decode_utf8(raw, f"config file {str(p)!r}")
        return _load_over(text, p, over)
    except ConfigError as exc:
        if str(p) in str(exc):
            raise
        msg = f"{exc} (config file {str(p)!r})"
        raise ConfigError(msg) from exc


def _load_over(text: str, p: Path, over: RunConfig | None) -> RunConfig:
    """``text`` read as a config file at ``p``, completing ``over`` when it is partial (see :func:`load_config`)."""
    if over is None:
        return load_config_string(text, base_dir=p.parent)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return load_config_string(text, base_dir=p.parent)  # raises the usual ConfigError
    if "inputs" in data or "grid" in data or "base_dir" in data:
        return load_config_string(text, base_dir=p.parent)
    merged = _to_plain(over)
    folder = p.parent.resolve()
    for key, value in data.items():
        merged[key] = _absolute_paths(value, folder)
    return _from_dict(RunConfig, merged, "")


def _absolute_paths(value: Any, folder: Path) -> Any:
    """``value`` with each string that names a file relative to ``folder`` made absolute (a partial config's paths)."""
    if isinstance(value, dict):
        return {k: _absolute_paths(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute_paths(v, folder) for v in value]
    if isinstance(value, str) and value and not Path(value).is_absolute() and (folder / value).is_file():
        return str((folder / value).resolve())
    return value


def decode_utf8(raw: bytes, what: str) -> str:
    r"""Text of a UTF-8 file, without a byte-order mark; a clear error for any other encoding.

    Raises
    ------
    ConfigError
        Naming the file, the first bad byte and the fix.

    Examples
    --------
    >>> decode_utf8(b"\xef\xbb\xbfa = 1", "x.toml")
    'a = 1'
    >>> decode_utf8("é".encode("latin-1"), "x.toml")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: x.toml: expected UTF-8 text, found byte 0xe9 at position 0 ...
    """
    if b"\x00" in raw[:4096]:
        msg = f"{what}: expected UTF-8 text, found binary data (a NUL byte). Give the text file, not a binary one."
        raise ConfigError(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"{what}: expected UTF-8 text, found byte 0x{raw[exc.start]:02x} at position {exc.start} (another encoding, "
            "e.g. Latin-1 or Windows-1251, or a binary file). Save it as UTF-8 (e.g. `iconv -f cp1251 -t utf-8`)."
        )
        raise ConfigError(msg) from exc
    return text.removeprefix("\ufeff")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def relative_base_dir(cfg: RunConfig, folder: str | Path) -> RunConfig:
    """``cfg`` with ``base_dir`` relative to ``folder``, for files shared with others (no home folder in them).

    A config written into ``folder`` with this ``base_dir`` loads back to the
    same absolute paths (a relative ``base_dir`` starts from the config's
    folder).  On Windows, a ``base_dir`` on another drive stays absolute.

    Examples
    --------
    >>> cfg = RunConfig(base_dir="/data/amur")
    >>> relative_base_dir(cfg, "/data/runs/out").base_dir
    '../../amur'
    """
    try:
        rel = os.path.relpath(Path(cfg.base_dir).absolute(), Path(folder).absolute())
    except ValueError:  # pragma: no cover - another drive on Windows
        return cfg
    return dataclasses.replace(cfg, base_dir=Path(rel).as_posix())


def dump_config(cfg: RunConfig, *, relative_to: str | Path | None = None) -> str:
    """The effective config as TOML text (round-trips through :func:`load_config_string`).

    With ``relative_to`` (the folder the text is written into), ``base_dir`` is
    written relative to it, so the file holds no absolute machine path of the
    data and still loads from that folder.
    """
    if relative_to is not None:
        cfg = relative_base_dir(cfg, relative_to)
    return tomli_w.dumps(_to_plain(cfg))


def config_hash(cfg: RunConfig) -> str:
    """Short SHA-256 of the effective config (stored in output metadata)."""
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def demo_config(data_dir: str | Path | None = None) -> RunConfig:
    """The configuration of the embedded Amur study area (``data/amur``).

    Parameters
    ----------
    data_dir
        Folder of the demo data; found automatically when omitted.
    """
    from leopardgeo.core.data import demo_data_dir

    d = Path(data_dir) if data_dir is not None else demo_data_dir()
    gpkg = "amur.gpkg"
    return RunConfig(
        base_dir=str(d.resolve()),
        grid=GridConfig(template="landmask.tif"),
        inputs=InputsConfig(
            landmask="landmask.tif",
            elevation="elevation.tif",
            landcover="landcover.tif",
            study_area=VectorInput(path=gpkg, layer="study_area"),
            countries=VectorInput(path=gpkg, layer="countries"),
            borders=VectorInput(path=gpkg, layer="borders"),
            protected_areas=VectorInput(path=gpkg, layer="protected_areas"),
            sites=VectorInput(path=gpkg, layer="sites"),
            settlements=VectorInput(path=gpkg, layer="settlements"),
            covariates={"dec_temp_c": "dec_temp_c.tif", "dec_precip_mm": "dec_precip_mm.tif"},
        ),
        # 17 habitat cores of up to 476,000 cells: one factor for all 136 pairs takes seconds, one network per
        # pair (Circuitscape's pairwise convention) minutes; docs/circuit.md compares the two.
        circuit=CircuitConfig(focal_shorting=FocalShorting.ALL),
    )


# ---------------------------------------------------------------------- template
def _inline(value: Any) -> str:
    """One TOML value on one line (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    msg = f"cannot write {value!r} as TOML"  # pragma: no cover - programming error
    raise TypeError(msg)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _template_lines(cls: type, obj: Any, section: str) -> list[str]:
    lines: list[str] = []
    nested: list[tuple[str, type, Any]] = []
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, VectorInput):
            nested.append((f.name, type(value), value))
            continue
        lines.append(f"# {f.metadata.get('doc', '')}")
        if value is None or value == ():
            lines.append(f"# {f.name} = ")
        else:
            lines.append(f"{f.name} = {_inline(_to_plain(value))}")
    out = [f"[{section}]"] if section else []
    out += lines
    for name, sub_cls, sub in nested:
        out.append("")
        doc = next(f.metadata["doc"] for f in dataclasses.fields(cls) if f.name == name)
        out.append(f"# ---- {doc}")
        out += _template_lines(sub_cls, sub, f"{section}.{name}" if section else name)
    return out


def config_template(cfg: RunConfig | None = None, *, relative_to: str | Path | None = None) -> str:
    """A commented TOML template with every key, its default and its source.

    The default template describes the embedded Amur study area, so it runs as
    written; edit ``base_dir`` and the paths to point at your own data.  With
    ``relative_to`` (the folder the template is written into), ``base_dir`` is
    relative to it rather than an absolute machine path.
    """
    if cfg is None:
        cfg = demo_config()
    if relative_to is not None:
        cfg = relative_base_dir(cfg, relative_to)
    head = [
        "# leopardgeo run configuration (TOML).",
        "# Every key is optional; the values shown are the defaults of the embedded Amur study area.",
        "# Units are in the key names (_m metres, _ha hectares, _km kilometres).",
        "# Relative paths start from base_dir; a relative base_dir starts from this file's folder.",
        "",
    ]
    return "\n".join(head + _template_lines(RunConfig, cfg, "")) + "\n"
