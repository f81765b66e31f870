r"""The territories stage: leopard territories packed over the study area, and the capacity of each zone.

The packing itself (the algorithm, its defaults and their sources) is
:mod:`leopardgeo.kernels.territory_packing`, whose public names are re-exported here.  This module holds
the ``[territories]`` section, the quality surface and the zones the stage packs on
(:func:`territory_quality`, :func:`territory_zones`), :func:`compute_territories` and the outputs
(``territories.tif``, ``capacity.csv``, ``capacity.json``, the ``territories`` layer).

Examples
--------
>>> from leopardgeo.core.grid import Grid
>>> g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")  # 10 x 20 cells of 1 ha
>>> res = pack_territories(np.ones(g.shape), np.ones(g.shape), g, min_area_ha=10, max_area_ha=40, female_need_ha=10)
>>> int(territory_raster(res).max())
3
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd

from leopardgeo.config import MAX_REPLICATES, TerritoryQuality, _f, _normalise
from leopardgeo.config import _positive as _config_positive
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS, OutputWriter, json_records
from leopardgeo.kernels.territory_packing import (  # the packing, re-exported
    QUALITY_BIN,
    TerritoryResult,
    capacity,
    capacity_table,
    pack_territories,
    territory_raster,
)
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs
from leopardgeo.stages.patches import country_raster

__all__ = [
    "QUALITY_BIN",
    "TerritoryResult",
    "capacity",
    "capacity_table",
    "pack_territories",
    "territory_raster",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- config section
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
        14100.0,
        doc=(
            "resource a female territory must hold: sum of quality x cell area, ha (a territory covers about need / mean "
            "quality). Derived: SECR 0.98 adults/100 km2 at 1 male : 1.2 females (Vitkalova & Shevtsova 2016) gives "
            "0.535 exclusive females per 100 km2, i.e. 18,700 ha per female; x 0.752, the mean suitability of the demo's "
            "habitat, = 14,070, rounded to 14,100 ha (docs/validation.md)"
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
    workers: int | None = _f(None, doc="threads packing replicates; default: the run's executor (results do not depend on it)")

    def __post_init__(self) -> None:
        _normalise(self, "territories")
        _config_positive(self.min_area_ha, "territories.min_area_ha")
        _config_positive(self.max_area_ha, "territories.max_area_ha")
        if self.min_area_ha >= self.max_area_ha:
            msg = (
                f"[territories] min_area_ha, max_area_ha: expected min_area_ha < max_area_ha, "
                f"found {self.min_area_ha!r} >= {self.max_area_ha!r}."
            )
            raise ConfigError(msg)
        _config_positive(self.female_need_ha, "territories.female_need_ha")
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
            _config_positive(self.prey_full_density, "territories.prey_full_density")
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


# ---------------------------------------------------------------------- the stage
#: Files of the territory stage.
TERRITORY_FILES = ("territories.tif", "capacity.csv", "capacity.json")


def territory_quality(cfg: RunConfigLike, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
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
    cfg: RunConfigLike, inputs: Inputs, labels: np.ndarray, patches: gpd.GeoDataFrame
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
    cfg: RunConfigLike,
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
    cfg: RunConfigLike, inputs: Inputs, labels: np.ndarray, patches: gpd.GeoDataFrame, result: TerritoryResult
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


def _write_territories(writer: OutputWriter, terr: TerritoryResult, capacity: pd.DataFrame, grid: Grid) -> None:
    """``territories.tif`` (uint8 codes), ``capacity.csv`` and ``capacity.json``."""
    writer.raster("territories.tif", territory_raster(terr), grid, nodata=0, description=RASTERS["territories.tif"])
    writer.text("capacity.csv", capacity.to_csv(index=False, float_format="%.6g"))
    writer.text("capacity.json", json.dumps(capacity_report(capacity, terr), indent=1, ensure_ascii=False))


def _layers(cfg: Any, ctx: Context) -> dict[str, gpd.GeoDataFrame]:
    layer, _ = territory_outputs(cfg, ctx["inputs"], ctx["labels"], ctx["patches"], ctx["territories"])
    return {"territories": layer}


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    _, capacity = territory_outputs(cfg, ctx["inputs"], ctx["labels"], ctx["patches"], ctx["territories"])
    _write_territories(writer, ctx["territories"], capacity, ctx["inputs"].grid)


STAGE = Stage(
    "territories",
    "territories and carrying capacity",
    lambda cfg, c: {
        "territories": compute_territories(cfg, c["inputs"], c["suitability"], c["resistance"], c["labels"], c["patches"])
    },
    config=(Section("territories", TerritoryConfig, "territory packing and carrying capacity"),),
    needs=("inputs", "habitat", "resistance", "patches"),
    produces=("territories",),
    mutates=("patches",),
    enabled=lambda cfg: cfg.territories.enabled,
    outputs=TERRITORY_FILES,
    layers=_layers,
    write=_write,
)
