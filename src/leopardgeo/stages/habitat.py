r"""Habitat suitability (0..1): given as a raster, or a logistic RSF on covariates.

The RSF form is the logistic resource-selection function

.. math::

    s = \\frac{1}{1 + \\exp\\left(-(\\beta_0 + \\sum_i \\beta_i x_i)\\right)}

with one coefficient per covariate from the user's table.  The demo table follows
the signs reported by Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): Amur
leopards select lower-elevation mixed / broadleaf (Korean-pine) forest far from
human activity; Wang et al. (Landsc. Ecol., c. 2016) name cattle grazing and
human disturbance as the hurdles in China.  Its magnitudes are calibrated on
published habitat areas (``docs/validation.md``), not fitted to leopard
locations (the papers' coefficients could not be obtained); replace them with
your own model.

Human pressure from settlements (:func:`settlement_pressure`) is

.. math::

    p(x) = 1 - \\prod_i \\left(1 - e^{-d_i(x) / r_i}\\right), \\qquad
    r_i = r_0 \\left(\\frac{P_i}{P_0}\\right)^{b}

with :math:`d_i` the distance to settlement :math:`i` of population
:math:`P_i`: every settlement disturbs its surroundings with a reach that
grows with its size, and overlapping disturbances combine like independent
probabilities (0 = no settlement near, 1 = in a town).
"""

from __future__ import annotations

import csv
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

import geopandas as gpd

from leopardgeo.config import HabitatMethod, _f, _normalise, _positive
from leopardgeo.core._crs import M_PER_KM
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS
from leopardgeo.kernels.linear import linear_predictor
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs

__all__ = [
    "builtin_covariates",
    "hold_at_best",
    "read_coefficients",
    "rsf_suitability",
    "ruggedness_m",
    "settlement_pressure",
    "settlement_reach_km",
    "suitability_from_raster",
]

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


#: Settlement pressure is negligible (< 0.1 %) beyond this many reaches from a settlement.
_REACH_WINDOW = 7.0


def settlement_reach_km(
    population: np.ndarray, *, reach_km: float, reach_population: float, exponent: float
) -> np.ndarray:
    """Reach of each settlement, km: ``reach_km * (population / reach_population) ** exponent``.

    Examples
    --------
    >>> settlement_reach_km(np.array([1000, 8000]), reach_km=1.5, reach_population=1000, exponent=1 / 3)
    array([1.5, 3. ])
    """
    pop = np.asarray(population, dtype="float64")
    return reach_km * (pop / reach_population) ** exponent


def settlement_pressure(
    grid: Grid,
    x_m: np.ndarray,
    y_m: np.ndarray,
    reach_km: np.ndarray,
) -> np.ndarray:
    r"""Human pressure 0..1 from settlements, each with its own reach (see the module docstring).

    Parameters
    ----------
    grid
        The analysis grid.
    x_m, y_m
        Settlement coordinates in the grid's CRS, metres.
    reach_km
        Reach :math:`r_i` of each settlement, km (e.g. from :func:`settlement_reach_km`):
        the distance at which its pressure has fallen to :math:`e^{-1}`.

    Returns
    -------
    numpy.ndarray
        float32 pressure on ``grid`` (0 far from every settlement, 1 at one).
        Beyond seven reaches a settlement is ignored (its term is below 0.1 %).

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 3000, 1000), cell_size_m=1000, crs="EPSG:32652")
    >>> p = settlement_pressure(g, np.array([500.0]), np.array([500.0]), np.array([1.0]))
    >>> np.round(p, 3)  # exp(-0) = 1 at the town, then 1 - (1 - e^-1), 1 - (1 - e^-2)
    array([[1.   , 0.368, 0.135]], dtype=float32)
    """
    x = np.asarray(x_m, dtype="float64")
    y = np.asarray(y_m, dtype="float64")
    r_m = np.asarray(reach_km, dtype="float64") * M_PER_KM
    log_free = np.zeros(grid.shape, dtype="float64")  # sum of log(1 - p_i)
    t = grid.transform
    cell = grid.cell_size_m
    nrow, ncol = grid.shape
    for xi, yi, ri in zip(x, y, r_m, strict=True):
        if not (np.isfinite(xi) and np.isfinite(yi) and ri > 0):
            continue
        w = _REACH_WINDOW * ri
        c0 = max(int(np.floor((xi - w - t.c) / cell)), 0)
        c1 = min(int(np.ceil((xi + w - t.c) / cell)) + 1, ncol)
        r0 = max(int(np.floor((t.f - yi - w) / cell)), 0)
        r1 = min(int(np.ceil((t.f - yi + w) / cell)) + 1, nrow)
        if c0 >= c1 or r0 >= r1:
            continue
        xs = t.c + (np.arange(c0, c1) + 0.5) * cell
        ys = t.f - (np.arange(r0, r1) + 0.5) * cell
        d = np.hypot(xs[None, :] - xi, ys[:, None] - yi)
        p = np.exp(-d / ri)
        log_free[r0:r1, c0:c1] += np.log1p(-np.minimum(p, 1.0 - 1e-12))
    return (-np.expm1(log_free)).astype("float32")


def _settlement_covariate(grid: Grid, settlements: gpd.GeoDataFrame, config: HabitatConfig) -> np.ndarray:
    field = config.settlement_population_field
    if field not in settlements.columns:
        msg = (
            f"settlements: expected a population column {field!r}, found columns {list(settlements.columns)}. "
            "Set [habitat] settlement_population_field."
        )
        raise DataError(msg)
    pop = np.asarray(settlements[field].to_numpy(), dtype="float64")
    if (np.nan_to_num(pop, nan=0.0) < 0).any():
        msg = f"settlements: expected populations >= 0, found a minimum of {np.nanmin(pop):g} in {field!r}."
        raise DataError(msg)
    unknown = ~(pop > 0)
    pop = np.where(unknown, config.settlement_default_population, pop)
    pts = settlements.geometry.representative_point()
    reach = settlement_reach_km(
        pop,
        reach_km=config.settlement_reach_km,
        reach_population=config.settlement_reach_population,
        exponent=config.settlement_reach_exponent,
    )
    logger.info(
        "settlement pressure: %d settlements (%d without population, counted as %g people)",
        len(pop), int(unknown.sum()), config.settlement_default_population,
    )  # fmt: skip
    return settlement_pressure(grid, pts.x.to_numpy(), pts.y.to_numpy(), reach)


def _filled(elevation_m: np.ndarray) -> np.ndarray:
    """Elevation with cells without data (off land) at sea level, so coasts slope down to the sea."""
    e = np.asarray(elevation_m, dtype="float64")
    return np.where(np.isfinite(e), e, 0.0)


def south_slope_m_per_km(elevation_m: np.ndarray, grid: Grid) -> np.ndarray:
    """How much the terrain rises toward the north, m per km: > 0 on south-facing slopes, < 0 on north-facing ones.

    The north component of the elevation gradient (central differences on
    the grid's rows, a north-up grid), so it grows with both the slope and
    how squarely the slope faces south: ``slope * cos(aspect - 180 deg)``.
    Cells without elevation count as sea level.

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 1000, 3000), cell_size_m=1000, crs="EPSG:32652")
    >>> south_slope_m_per_km(np.array([[300.0], [200.0], [100.0]]), g).ravel()  # rises 100 m per km to the north
    array([100., 100., 100.])
    """
    e = _filled(elevation_m)
    if e.shape[0] < 2:
        return np.zeros(e.shape)
    d_per_row = np.gradient(e, axis=0)  # rows run south
    return -d_per_row / (grid.cell_size_m / M_PER_KM)


def ruggedness_m(elevation_m: np.ndarray, grid: Grid, *, window_km: float) -> np.ndarray:
    """Local relief: the standard deviation of elevation (m) in a square window of about ``window_km`` a side.

    Cells without elevation count as sea level.  The window is rounded to an
    odd number of cells (at least 3).

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 3000, 3000), cell_size_m=1000, crs="EPSG:32652")
    >>> e = np.array([[0.0, 0.0, 0.0], [0.0, 90.0, 0.0], [0.0, 0.0, 0.0]])
    >>> round(float(ruggedness_m(e, g, window_km=3.0)[1, 1]), 1)  # one 90 m knoll in nine cells
    28.3
    """
    e = _filled(elevation_m)
    n = max(3, round(window_km * M_PER_KM / grid.cell_size_m) // 2 * 2 + 1)
    mean = ndimage.uniform_filter(e, n, mode="nearest")
    mean_sq = ndimage.uniform_filter(e * e, n, mode="nearest")
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def builtin_covariates(
    grid: Grid,
    *,
    elevation_m: np.ndarray | None = None,
    landcover: np.ndarray | None = None,
    settlements: gpd.GeoDataFrame | None = None,
    config: HabitatConfig,
) -> dict[str, np.ndarray]:
    """The covariates leopardgeo derives itself (float32 arrays on ``grid``).

    ``elevation_km`` and ``elevation_km_sq`` (for a unimodal response);
    ``south_slope_m_per_km`` (:func:`south_slope_m_per_km`, > 0 on
    south-facing slopes) and ``ruggedness_m`` (:func:`ruggedness_m`, local
    relief over ``config.ruggedness_window_km``), both from the elevation;
    ``forest`` (1 where land cover is in
    ``config.forest_classes``); ``landcover_<code>`` indicators;
    ``dist_cropland_km`` and ``dist_urban_km`` (Euclidean distance to the
    nearest cropland / urban cell, capped at ``config.distance_cap_km``);
    ``open_land`` (1 where land cover is in ``config.open_classes``: the
    grassland / savanna mosaics of farmed valleys); ``settlement_pressure``
    (:func:`settlement_pressure`, from settlement points with a population
    column, in the grid's CRS).

    Raises
    ------
    DataError
        If the settlements lack the population column or hold a negative population.
    """
    cov: dict[str, np.ndarray] = {}
    if settlements is not None:
        cov["settlement_pressure"] = _settlement_covariate(grid, settlements, config)
    if elevation_m is not None:
        cov["elevation_km"] = (elevation_m / M_PER_KM).astype("float32")
        cov["elevation_km_sq"] = cov["elevation_km"] ** 2
        nodata = ~np.isfinite(elevation_m)
        cov["south_slope_m_per_km"] = np.where(nodata, np.nan, south_slope_m_per_km(elevation_m, grid)).astype("float32")
        rugged = ruggedness_m(elevation_m, grid, window_km=config.ruggedness_window_km)
        cov["ruggedness_m"] = np.where(nodata, np.nan, rugged).astype("float32")
    if landcover is not None:
        nodata = ~np.isfinite(landcover)
        lc = np.where(nodata, -1, landcover).astype("int32")
        from_lc = {"forest": np.isin(lc, config.forest_classes), "open_land": np.isin(lc, config.open_classes)}
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


def hold_at_best(
    covariates: Mapping[str, np.ndarray],
    coefficients: Mapping[str, float],
    names: Sequence[str],
    *,
    valid: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A copy of ``covariates`` with each of ``names`` set to its most favourable value everywhere.

    The most favourable value is the maximum over ``valid`` cells for a
    positive coefficient and the minimum for a negative one.  Used to drop a
    residency-only term (e.g. winter temperature) from the suitability that
    resistance is derived from: crossing is then nowhere harder than in the
    mildest winter of the study area, and the rest of the model is unchanged.

    Examples
    --------
    >>> hold_at_best({"t": np.array([[-12.0, -8.0, np.nan]])}, {"t": 0.5}, ["t"])["t"]
    array([[-8., -8., nan]], dtype=float32)
    """
    out = dict(covariates)
    for name in names:
        a = np.asarray(covariates[name], dtype="float64")
        finite = np.isfinite(a) if valid is None else np.isfinite(a) & np.asarray(valid, bool)
        if not finite.any():
            continue
        best = float(a[finite].max()) if float(coefficients.get(name, 0.0)) >= 0 else float(a[finite].min())
        out[name] = np.where(np.isfinite(a), best, np.nan).astype("float32")
    return out


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
    eta = linear_predictor(float(intercept), [(float(beta), covariates[name]) for name, beta in coefficients.items()])
    if eta is None:  # covariates of mixed types: numpy, term by term (the same sums)
        shape = next(iter(covariates[k] for k in coefficients)).shape
        eta = np.full(shape, float(intercept), dtype="float64")
        for name, beta in coefficients.items():
            eta += float(beta) * covariates[name]
    with np.errstate(over="ignore"):  # 1 / (1 + exp(-eta)), in place
        np.negative(eta, out=eta)
        np.exp(eta, out=eta)
        eta += 1.0
        np.divide(1.0, eta, out=eta)
    if logger.isEnabledFor(logging.INFO):  # two more passes over the grid: only when shown
        logger.info("RSF suitability: mean %.3f over %d cells", np.nanmean(eta), np.isfinite(eta).sum())
    return eta.astype("float32")


# ---------------------------------------------------------------------- config section
#: Demo RSF coefficients (logit scale).  Signs from the published habitat models (see
#: HabitatConfig.coefficients); magnitudes calibrated on published habitat areas, written down in
#: docs/validation.md ("Calibration").
DEMO_COEFFICIENTS: dict[str, float] = {
    "elevation_km": -0.02,
    "forest": 2.31,
    "open_land": -5.18,
    "dist_cropland_km": 0.194,
    "settlement_pressure": -3.52,
    "dec_temp_c": 0.955,
    "dec_precip_mm": -0.345,
    "south_slope_m_per_km": 0.023,
    "ruggedness_m": 0.0247,
}


DEMO_INTERCEPT = 10.5


@dataclass(frozen=True, slots=True, kw_only=True)
class HabitatConfig:
    """Habitat suitability."""

    method: HabitatMethod = _f(HabitatMethod.RSF, doc="raster | rsf")
    intercept: float = _f(DEMO_INTERCEPT, doc="RSF logistic intercept (demo: calibrated, see docs/validation.md)")
    coefficients: dict[str, float] = _f(
        doc=(
            "RSF logistic coefficients by covariate. Built-in covariates: elevation_km, elevation_km_sq, "
            "south_slope_m_per_km (rise of the terrain to the north: > 0 on south-facing slopes), ruggedness_m "
            "(standard deviation of elevation over ruggedness_window_km), "
            "forest, open_land, landcover_<code>, dist_cropland_km, dist_urban_km (capped at distance_cap_km), "
            "settlement_pressure (needs [inputs] settlements); plus any name in [inputs.covariates]. Demo signs "
            "follow Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): lower-elevation mixed/broadleaf forest far "
            "from people; Wang et al. (Landsc. Ecol., c. 2016): grazing and human disturbance; winter: leopards keep "
            "to the mild south-west (dec_temp_c, December mean air temperature, warmer = better) and avoid snow "
            "(dec_precip_mm, December precipitation, all of it snow here: less = better); terrain: strongly rugged "
            "mountains and, in winter, south-facing slopes (Russian leopard strategy, MNR order 2022 N 4-r, section "
            "2.4; Hebblewhite et al. 2011: south-west-facing slopes): ruggedness_m and south_slope_m_per_km > 0. "
            "Magnitudes are calibrated on published habitat areas and the southern Sikhote-Alin release site "
            "(docs/validation.md), not fitted: replace them with your model"
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
    ruggedness_window_km: float = _f(
        25.0,
        doc=(
            "side of the square window of the ruggedness_m covariate (standard deviation of elevation), km; "
            "rounded to an odd number of cells. 25 km (51 cells at 500 m): about three cells of the embedded 5' "
            "elevation grid (9.3 x 6.7 km), the smallest window in which its relief is measured rather than "
            "interpolated (mountain massifs, not single slopes); with a finer DEM a smaller window can fit better"
        ),
    )
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
        terms = {"intercept": self.intercept} | {f"coefficients.{k}": v for k, v in dict(self.coefficients).items()}
        for key, value in terms.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                msg = f"[habitat] {key}: expected a finite number (an RSF term on the logit scale), found {value!r}."
                raise ConfigError(msg)
        _positive(self.distance_cap_km, "habitat.distance_cap_km")
        _positive(self.ruggedness_window_km, "habitat.ruggedness_window_km")
        _positive(self.settlement_reach_km, "habitat.settlement_reach_km")
        _positive(self.settlement_reach_population, "habitat.settlement_reach_population")
        _positive(self.settlement_reach_exponent, "habitat.settlement_reach_exponent", allow_zero=True)
        _positive(self.settlement_default_population, "habitat.settlement_default_population")


# ---------------------------------------------------------------------- the stage
def rsf_inputs(
    cfg: RunConfigLike, inputs: Inputs, *, covariates: Mapping[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], float, dict[str, float]]:
    """The RSF's covariates (built-in and ``[inputs.covariates]``), intercept and coefficients.

    ``covariates``: the covariates of an earlier call on the same inputs and ``[habitat]`` covariate settings
    (a resistance ensemble varies only the coefficients, so it builds them once); ``None`` builds them.
    """
    h = cfg.habitat
    if covariates is not None:
        cov = dict(covariates)
    else:
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


def compute_suitability(
    cfg: RunConfigLike,
    inputs: Inputs,
    *,
    hold: tuple[str, ...] = (),
    covariates: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Suitability 0..1 on the grid (NaN outside valid cells).

    ``hold`` names RSF covariates held at their most favourable value (see
    :func:`leopardgeo.habitat.hold_at_best`); the resistance uses it for the
    residency-only terms of ``[resistance] residency_covariates``.  ``covariates``: the first
    value of :func:`rsf_inputs` for these inputs, when already built (see there).
    """
    h = cfg.habitat
    if h.method is HabitatMethod.RASTER:
        if "suitability" not in inputs.rasters:
            msg = "[habitat] method = 'raster' needs [inputs] suitability = 'path/to/suitability.tif'."
            raise ConfigError(msg)
        return suitability_from_raster(inputs.rasters["suitability"], land=inputs.valid)
    cov, intercept, coefficients = rsf_inputs(cfg, inputs, covariates=covariates)
    if hold:
        cov = hold_at_best(cov, coefficients, [n for n in hold if n in coefficients], valid=inputs.valid)
    s = rsf_suitability(cov, intercept=intercept, coefficients=coefficients)
    return np.where(inputs.valid, s, np.nan).astype("float32")


def movement_suitability(cfg: RunConfigLike, inputs: Inputs, suitability: np.ndarray) -> np.ndarray:
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


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    writer.raster("suitability.tif", ctx["suitability"], ctx["inputs"].grid, description=RASTERS["suitability.tif"])


STAGE = Stage(
    "habitat",
    "habitat suitability",
    lambda cfg, c: {"suitability": compute_suitability(cfg, c["inputs"])},
    config=(Section("habitat", HabitatConfig, "habitat suitability"),),
    needs=("inputs",),
    produces=("suitability",),
    outputs=("suitability.tif",),
    write=_write,
)
