r"""Habitat suitability (0..1): given as a raster, or a logistic RSF on covariates.

The RSF form is the logistic resource-selection function

.. math::

    s = \\frac{1}{1 + \\exp\\left(-(\\beta_0 + \\sum_i \\beta_i x_i)\\right)}

with one coefficient per covariate from the user's table.  The demo table follows
the signs reported by Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): Amur
leopards select lower-elevation mixed / broadleaf (Korean-pine) forest far from
human activity.  Its magnitudes are illustrative, not fitted (the paper's
coefficients could not be obtained); replace them with your own model.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy import ndimage

from leopardgeo.config import HabitatConfig
from leopardgeo.core._crs import M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid

__all__ = ["builtin_covariates", "read_coefficients", "rsf_suitability", "suitability_from_raster"]

logger = logging.getLogger(__name__)


def suitability_from_raster(values: np.ndarray, *, land: np.ndarray | None = None) -> np.ndarray:
    """Check a suitability raster (0..1, NaN = no data) and mask it to land.

    Raises
    ------
    DataError
        If finite values fall outside 0..1 (e.g. a 0..100 scale).

    Examples
    --------
    >>> suitability_from_raster(np.array([[0.2, np.nan], [1.0, 0.0]]))
    array([[0.2, nan],
           [1. , 0. ]], dtype=float32)
    """
    s = np.asarray(values, dtype="float32")
    infinite = np.isinf(s)
    if infinite.any():
        msg = (
            f"suitability: expected values in 0..1 or no data, found {int(infinite.sum())} infinite cells (+/-inf). "
            "Set them to the raster's nodata value (e.g. `gdal_calc.py --calc \"where(isinf(A), -1, A)\" "
            "--NoDataValue -1`) or to a value in 0..1."
        )
        raise DataError(msg)
    finite = s[np.isfinite(s)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        bad = finite[(finite < 0) | (finite > 1)]
        n_bad = int(bad.size)
        common = np.unique(bad)
        if common.size <= 3 and (np.abs(common) >= 999).all():
            fix = (
                f"The value{'s' if common.size > 1 else ''} {', '.join(f'{v:g}' for v in common)} look like an "
                "undeclared nodata value: declare it (e.g. `gdal_edit.py -a_nodata -9999 file.tif`)."
            )
        else:
            fix = "Rescale it (e.g. divide a 0..100 map by 100), or declare the raster's nodata value if these cells have none."
        rng = f"{finite.min():g}..{finite.max():g}"
        msg = f"suitability: expected values in 0..1, found {n_bad} cells outside (range {rng}). {fix}"
        raise DataError(msg)
    if land is not None:
        s = np.where(land, s, np.nan).astype("float32")
    return s


def read_coefficients(path: str | Path) -> tuple[float, dict[str, float]]:
    """Read an RSF coefficient table (CSV ``covariate,coefficient``; a row ``intercept``).

    Returns
    -------
    intercept, coefficients

    Raises
    ------
    DataError
        If the file is missing, lacks the two columns, or a coefficient is not a number.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"coefficient table {str(p)!r} not found. Check [habitat] coefficients_file."
        raise DataError(msg)
    import io

    from leopardgeo.config import decode_utf8

    try:
        text = decode_utf8(p.read_bytes(), f"coefficient table {str(p)!r}")
    except ConfigError as exc:
        raise DataError(str(exc)) from exc
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"covariate", "coefficient"} <= set(reader.fieldnames):
            msg = f"coefficient table {p.name!r}: expected columns covariate,coefficient, found {reader.fieldnames}."
            raise DataError(msg)
        intercept, coefs = 0.0, {}
        for i, row in enumerate(reader, start=2):
            try:
                value = float(row["coefficient"])
            except (TypeError, ValueError):
                msg = f"coefficient table {p.name!r} line {i}: expected a number, found {row['coefficient']!r}."
                raise DataError(msg) from None
            name = (row["covariate"] or "").strip()
            if name == "intercept":
                intercept = value
            else:
                coefs[name] = value
    return intercept, coefs


def builtin_covariates(
    grid: Grid,
    *,
    elevation_m: np.ndarray | None = None,
    landcover: np.ndarray | None = None,
    config: HabitatConfig,
) -> dict[str, np.ndarray]:
    """The covariates leopardgeo derives itself (float32 arrays on ``grid``).

    ``elevation_km`` and ``elevation_km_sq`` (for a unimodal response);
    ``forest`` (1 where land cover is in
    ``config.forest_classes``); ``landcover_<code>`` indicators;
    ``dist_cropland_km`` and ``dist_urban_km`` (Euclidean distance to the
    nearest cropland / urban cell, capped at ``config.distance_cap_km``).
    """
    cov: dict[str, np.ndarray] = {}
    if elevation_m is not None:
        cov["elevation_km"] = (elevation_m / M_PER_KM).astype("float32")
        cov["elevation_km_sq"] = cov["elevation_km"] ** 2
    if landcover is not None:
        nodata = ~np.isfinite(landcover)
        lc = np.where(nodata, -1, landcover).astype("int32")
        from_lc = {"forest": np.isin(lc, config.forest_classes)}
        for code in np.unique(lc[lc >= 0]):
            from_lc[f"landcover_{int(code)}"] = lc == code
        for name, classes in (("cropland", config.cropland_classes), ("urban", config.urban_classes)):
            target = np.isin(lc, classes)
            d_km = (
                ndimage.distance_transform_edt(~target) * (grid.cell_size_m / M_PER_KM)
                if target.any()
                else np.full(grid.shape, np.inf)
            )
            from_lc[f"dist_{name}_km"] = np.minimum(d_km, config.distance_cap_km)
        for name, arr in from_lc.items():
            cov[name] = np.where(nodata, np.nan, arr).astype("float32")
    return cov


def rsf_suitability(
    covariates: Mapping[str, np.ndarray],
    *,
    intercept: float,
    coefficients: Mapping[str, float],
) -> np.ndarray:
    r"""Logistic RSF suitability from covariate arrays and coefficients.

    Parameters
    ----------
    covariates
        Name -> float array (all the same shape; NaN = no data).
    intercept
        :math:`\\beta_0`.
    coefficients
        Name -> :math:`\\beta_i`; every name must be a covariate.

    Returns
    -------
    numpy.ndarray
        float32 suitability in 0..1, NaN where any used covariate is NaN.

    Raises
    ------
    ConfigError
        If a coefficient names an unknown covariate (the message lists the
        available ones), or no coefficient is given.

    Examples
    --------
    >>> x = {"forest": np.array([[0.0, 1.0]])}
    >>> rsf_suitability(x, intercept=0.0, coefficients={"forest": np.log(3)})
    array([[0.5 , 0.75]], dtype=float32)
    """
    if not coefficients:
        msg = "[habitat] coefficients: expected at least one covariate = coefficient, found none."
        raise ConfigError(msg)
    unknown = sorted(set(coefficients) - set(covariates))
    if unknown:
        msg = (
            f"[habitat] coefficients: unknown covariate(s) {unknown}; available: {sorted(covariates)}. "
            "Add a raster under [inputs.covariates] or fix the name."
        )
        raise ConfigError(msg)
    shape = next(iter(covariates[k] for k in coefficients)).shape
    eta = np.full(shape, float(intercept), dtype="float64")
    for name, beta in coefficients.items():
        eta += float(beta) * covariates[name]
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-eta))
    logger.info("RSF suitability: mean %.3f over %d cells", np.nanmean(s), np.isfinite(s).sum())
    return s.astype("float32")
