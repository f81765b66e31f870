r"""Resistance to movement: from suitability, from a class table, or given; plus barriers.

Resistance is >= 1 by construction (1 = easiest), float32, NaN = no data =
impassable.  A resistance given by the user must be finite and > 0 wherever it
is not no data; anything else is a :class:`~leopardgeo.core.errors.ResistanceError`
naming how many cells and where.

The negative-exponential transform of Keeley et al. 2016 (Landsc. Ecol.
31:2151–2162) maps suitability :math:`h \\in [0, 1]` to

.. math::

    R(h) = R_{max} - (R_{max} - 1) \\frac{1 - e^{-c h}}{1 - e^{-c}}

so that :math:`R(1) = 1`, :math:`R(0) = R_{max}`; larger :math:`c` makes all
but the best habitat costly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import geopandas as gpd
import shapely
from rasterio.features import rasterize

from leopardgeo.config import BarrierMode, ResistanceMethod, VectorInput, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance
from leopardgeo.io import RASTERS, read_vector
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.habitat import movement_suitability
from leopardgeo.stages.inputs import Inputs

__all__ = [
    "burn_barriers",
    "check_resistance",
    "resistance_from_classes",
    "resistance_from_suitability",
]

logger = logging.getLogger(__name__)


def resistance_from_suitability(
    suitability: np.ndarray,
    *,
    method: ResistanceMethod | str = ResistanceMethod.NEGATIVE_EXPONENTIAL,
    max_resistance: float = 100.0,
    shape_c: float = 8.0,
) -> np.ndarray:
    """Resistance from suitability (NaN stays NaN).

    Parameters
    ----------
    suitability
        0..1, NaN = no data.
    method
        ``"negative_exponential"`` (Keeley et al. 2016) or ``"linear"``.
    max_resistance
        Resistance at suitability 0 (> 1).
    shape_c
        Shape of the negative-exponential transform (> 0).

    Examples
    --------
    >>> s = np.array([[0.0, 0.5, 1.0]])
    >>> resistance_from_suitability(s, method="linear", max_resistance=11)
    array([[11.,  6.,  1.]], dtype=float32)
    >>> r = resistance_from_suitability(s, shape_c=8)
    >>> float(r[0, 0]), round(float(r[0, 1]), 2), float(r[0, 2])
    (100.0, 2.78, 1.0)
    """
    method = ResistanceMethod(method)
    s = np.asarray(suitability, dtype="float64")
    if method is ResistanceMethod.LINEAR:
        r = max_resistance - (max_resistance - 1.0) * s
    elif method is ResistanceMethod.NEGATIVE_EXPONENTIAL:
        # max_resistance - (max_resistance - 1) * (-expm1(-shape_c * s)) / (-expm1(-shape_c)), each operation as
        # numpy does it in that expression (the same bits), in one grid-sized array instead of five
        r = np.multiply(-shape_c, s)
        np.expm1(r, out=r)
        np.negative(r, out=r)
        np.multiply(max_resistance - 1.0, r, out=r)
        np.divide(r, -np.expm1(-shape_c), out=r)
        np.subtract(max_resistance, r, out=r)
    else:
        msg = (
            "[resistance] method: expected 'negative_exponential' or 'linear' for a suitability transform, "
            f"found {method.value!r}."
        )
        raise ConfigError(msg)
    return r.astype("float32")


def resistance_from_classes(classes: np.ndarray, class_values: Mapping[str | int, float]) -> np.ndarray:
    """Resistance by looking up each class code (NaN class = no data).

    Raises
    ------
    ConfigError
        If a class present in the raster has no value (listing the missing
        codes and their cell counts), or the table is empty.

    Examples
    --------
    >>> resistance_from_classes(np.array([[1, 12], [np.nan, 1]]), {"1": 1, "12": 40})
    array([[ 1., 40.],
           [nan,  1.]], dtype=float32)
    """
    if not class_values:
        msg = "[resistance] class_values: expected a table of class code = resistance, found none."
        raise ConfigError(msg)
    table = {int(k): float(v) for k, v in class_values.items()}
    c = np.asarray(classes, dtype="float64")
    valid = np.isfinite(c)
    codes, counts = np.unique(c[valid].astype("int64"), return_counts=True)
    missing = [(int(k), int(n)) for k, n in zip(codes, counts, strict=True) if int(k) not in table]
    if missing:
        listed = ", ".join(f"{k} ({n} cells)" for k, n in missing)
        msg = (
            f"[resistance] class_values: expected a value for every class in the raster, missing {listed}. "
            f"Add them to class_values (given: {sorted(table)})."
        )
        raise ConfigError(msg)
    lut_codes = np.array(sorted(table), dtype="int64")
    lut_vals = np.array([table[k] for k in lut_codes], dtype="float32")
    out = np.full(c.shape, np.nan, dtype="float32")
    out[valid] = lut_vals[np.searchsorted(lut_codes, c[valid].astype("int64"))]
    return out


def _barrier_penalties(gdf: gpd.GeoDataFrame, cfg: BarrierConfig) -> np.ndarray:
    """Penalty of each feature: ``cfg.penalty``, or its class's entry in ``cfg.class_penalties``."""
    if not cfg.class_field:
        return np.full(len(gdf), cfg.penalty, dtype="float64")
    if cfg.class_field not in gdf.columns:
        msg = (
            f"barrier {cfg.name!r}: expected a class column {cfg.class_field!r}, found columns "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}. Fix class_field."
        )
        raise DataError(msg)
    classes = gdf[cfg.class_field].astype("string").fillna("<empty>").to_numpy()
    table = {str(k): float(v) for k, v in cfg.class_penalties.items()}
    values, counts = np.unique(classes, return_counts=True)
    missing = [(str(v), int(n)) for v, n in zip(values, counts, strict=True) if str(v) not in table]
    if missing:
        listed = ", ".join(f"{v!r} ({n} features)" for v, n in missing)
        msg = (
            f"barrier {cfg.name!r}: expected a penalty for every class of {cfg.class_field!r}, missing {listed}. "
            "Add them to class_penalties (0 ignores a class)."
        )
        raise DataError(msg)
    return np.array([table[str(c)] for c in classes], dtype="float64")


def burn_barriers(
    resistance: np.ndarray,
    grid: Grid,
    barriers: Sequence[tuple[gpd.GeoDataFrame, BarrierConfig] | tuple[gpd.GeoDataFrame, BarrierConfig, gpd.GeoDataFrame | None]],
) -> np.ndarray:
    """Burn barrier layers (roads, railways, fences, settlements) into resistance.

    Every cell a (buffered) barrier feature touches gets ``resistance +
    penalty`` (``add``), ``max(resistance, penalty)`` (``max``) or no data
    (``impassable``).  With ``class_field`` each feature's penalty comes from
    ``class_penalties`` (motorway vs track, railway, fence); where features of
    one layer overlap, a cell takes the largest of their penalties, and
    separate layers add up.  An optional third element holds crossing points
    (underpasses, bridges, gaps): barrier cells within ``crossing_radius_m``
    of one keep the resistance they had without that layer.  Layers must
    already be in the grid's CRS.

    Raises
    ------
    DataError
        If a barrier layer touches no cell of the grid, lacks its class column,
        or holds a class with no penalty.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from leopardgeo.config import VectorInput
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs="EPSG:32652")
    >>> road = gpd.GeoDataFrame({"highway": ["primary"]}, geometry=[shapely.LineString([(0, 50), (500, 50)])], crs=g.crs)
    >>> gap = gpd.GeoDataFrame(geometry=[shapely.Point(250, 50)], crs=g.crs)
    >>> cfg = BarrierConfig(path="roads.gpkg", class_field="highway", class_penalties={"primary": 40},
    ...                     crossings=VectorInput(path="gaps.gpkg"), crossing_radius_m=50)
    >>> burn_barriers(np.ones(g.shape), g, [(road, cfg, gap)])
    array([[41., 41.,  1., 41., 41.]], dtype=float32)
    """
    r = np.array(resistance, dtype="float32", copy=True)
    for item in barriers:
        gdf, cfg = item[0], item[1]
        crossings = item[2] if len(item) > 2 else None
        penalties = _barrier_penalties(gdf, cfg)
        geoms = gdf.geometry.to_numpy()
        if cfg.buffer_m > 0:
            geoms = shapely.buffer(geoms, cfg.buffer_m)
        ok = ~(shapely.is_empty(geoms) | shapely.is_missing(geoms))
        geoms, penalties = geoms[ok], penalties[ok]
        order = np.argsort(penalties, kind="stable")  # the largest penalty is burned last and wins
        burned = (
            rasterize(
                ((geoms[i], float(penalties[i]) + 1.0) for i in order),
                out_shape=grid.shape,
                transform=grid.transform,
                fill=0.0,
                all_touched=True,
                dtype="float32",
            )
            if len(geoms)
            else np.zeros(grid.shape, "float32")
        )
        hit = burned > 0
        n = int(hit.sum())
        if n == 0:
            msg = (
                f"barrier {cfg.name!r}: expected it to cross the study area, found it touches no cell. Check its CRS and extent."
            )
            raise DataError(msg)
        pen = burned - 1.0
        if crossings is not None and len(crossings):
            pts = shapely.buffer(crossings.geometry.to_numpy(), cfg.crossing_radius_m)
            pts = pts[~(shapely.is_empty(pts) | shapely.is_missing(pts))]
            gap = rasterize(
                ((g_, 1) for g_ in pts), out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
            ).astype(bool)
            logger.info("barrier %r: %d cells left open at %d crossings", cfg.name, int((hit & gap).sum()), len(pts))
            hit &= ~gap
        if cfg.mode is BarrierMode.ADD:
            r[hit] += pen[hit]
        elif cfg.mode is BarrierMode.MAX:
            r[hit] = np.maximum(r[hit], pen[hit])
        else:
            r[hit] = np.nan
        logger.info("barrier %r (%s): %d cells", cfg.name, cfg.mode.value, int(hit.sum()))
    return r


# ---------------------------------------------------------------------- config section
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
        if not 1 < self.max_resistance < math.inf:
            msg = f"[resistance] max_resistance: expected a finite number > 1, found {self.max_resistance!r}."
            raise ConfigError(msg)
        _positive(self.shape_c, "resistance.shape_c")
        for k, v in self.class_values.items():
            if not v > 0:
                msg = f"[resistance] class_values: expected resistance > 0 for every class, found {k} = {v!r}."
                raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def compute_resistance(cfg: RunConfigLike, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
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
    r = np.where(inputs.valid, r, np.nan).astype("float32", copy=False)
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


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    writer.raster("resistance.tif", ctx["resistance"], ctx["inputs"].grid, description=RASTERS["resistance.tif"])


STAGE = Stage(
    "resistance",
    "resistance",
    lambda cfg, c: {"resistance": compute_resistance(cfg, c["inputs"], c["suitability"])},
    config=(Section("resistance", ResistanceConfig, "resistance"),),
    needs=("inputs", "habitat"),
    produces=("resistance",),
    outputs=("resistance.tif",),
    write=_write,
)
