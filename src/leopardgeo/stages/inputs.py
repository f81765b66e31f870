"""The inputs stage: the analysis grid (``[grid]``) and every input layer read onto it (``[inputs]``).

:func:`make_grid` builds the :class:`~leopardgeo.core.grid.Grid`; :func:`load_inputs` checks the run's memory
estimate first, then reads and aligns every configured raster and vector (:mod:`leopardgeo.io`) into an
:class:`Inputs`.  The stage writes the study area, borders and protected areas as the run used them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import geopandas as gpd
import shapely

from leopardgeo.config import VectorInput, _f, _normalise, _positive
from leopardgeo.core._crs import M2_PER_HA, M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError, NodataWarning
from leopardgeo.core.grid import Grid
from leopardgeo.io import grid_from_raster, read_raster, read_vector, read_wdpa, require_polygons
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage


# ---------------------------------------------------------------------- config section
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


# ---------------------------------------------------------------------- the stage
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


def make_grid(cfg: RunConfigLike) -> Grid:
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


def check_run_memory(cfg: RunConfigLike, grid: Grid) -> None:
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


def load_inputs(cfg: RunConfigLike, grid: Grid | None = None) -> Inputs:
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


def _extra_stages(cfg: RunConfigLike) -> list[str]:
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
    omni = getattr(cfg, "omniscape", None)
    if omni is not None and omni.enabled:
        out.append("omniscape")
    s = cfg.sites  # the sites stage runs with candidates: a layer given, a file, or 'auto'
    if s.enabled and (s.candidates != "layer" or cfg.inputs.sites is not None):
        out.append("sites")
    return out


def _layers(cfg: Any, ctx: Context) -> dict[str, gpd.GeoDataFrame]:
    """The study area (clipped to the grid), the borders and the protected areas as the run used them."""
    inputs = ctx["inputs"]
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
    return layers


STAGE = Stage(
    "inputs",
    "reading and aligning inputs",
    lambda cfg, c: {"inputs": load_inputs(cfg)},
    config=(Section("grid", GridConfig, "analysis grid"), Section("inputs", InputsConfig, "input layers")),
    produces=("inputs",),
    layers=_layers,
)
