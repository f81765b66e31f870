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


def burn_barriers(
    resistance: np.ndarray,
    grid: Grid,
    barriers: Sequence[tuple[gpd.GeoDataFrame, BarrierConfig]],
) -> np.ndarray:
    """Burn barrier layers (roads, settlements, fences) into resistance.

    Every cell a (buffered) barrier geometry touches gets ``resistance +
    penalty`` (``add``), ``max(resistance, penalty)`` (``max``) or no data
    (``impassable``).  Layers must already be in the grid's CRS.

    Raises
    ------
    DataError
        If a barrier layer touches no cell of the grid.
    """
    r = np.array(resistance, dtype="float32", copy=True)
    for gdf, cfg in barriers:
        geoms = gdf.geometry.to_numpy()
        if cfg.buffer_m > 0:
            geoms = shapely.buffer(geoms, cfg.buffer_m)
        geoms = geoms[~shapely.is_empty(geoms)]
        hit = (
            rasterize(
                ((g, 1) for g in geoms),
                out_shape=grid.shape,
                transform=grid.transform,
                fill=0,
                all_touched=True,
                dtype="uint8",
            ).astype(bool)
            if len(geoms)
            else np.zeros(grid.shape, bool)
        )
        n = int(hit.sum())
        if n == 0:
            msg = (
                f"barrier {cfg.name!r}: expected it to cross the study area, found it touches no cell. Check its CRS and extent."
            )
            raise DataError(msg)
        if cfg.mode is BarrierMode.ADD:
            r[hit] += cfg.penalty
        elif cfg.mode is BarrierMode.MAX:
            r[hit] = np.maximum(r[hit], cfg.penalty)
        else:
            r[hit] = np.nan
        logger.info("barrier %r (%s): %d cells", cfg.name, cfg.mode.value, n)
    return r


