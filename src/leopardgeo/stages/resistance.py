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
from collections.abc import Mapping, Sequence

import numpy as np

import geopandas as gpd
import shapely
from rasterio.features import rasterize

from leopardgeo.config import BarrierConfig, BarrierMode, ResistanceMethod
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance

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
        r = max_resistance - (max_resistance - 1.0) * (-np.expm1(-shape_c * s)) / (-np.expm1(-shape_c))
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
    >>> from leopardgeo.config import BarrierConfig, VectorInput
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


