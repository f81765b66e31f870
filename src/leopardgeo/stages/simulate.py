r"""Individual-based, spatially explicit population simulation of a released leopard population.

A population viability analysis (PVA) in the style of Vortex (Lacy 2000,
*Ecological Bulletins* 48:191–203) and of the individual-based tiger models of
Carroll & Miquelle (2006, *J. Appl. Ecol.* 43:1056–1068), run on the
territories of :func:`leopardgeo.stages.territories.pack_territories`: every animal
is tracked with its age, sex, territory (or none) and mother, in yearly steps.

The yearly cycle (census after the births, so year 0 counts the founders):

1. **Survival** by age class at the start of the year: cub (age 0), juvenile
   (1), subadult (2), adult (>= 3; males may have their own rate); an adult
   without a territory (a *floater*) survives with the floater rate.  With
   ``cubs_die_with_mother`` a cub in its first year dies with its mother.
   The territory of a dead animal becomes free.
2. **Ageing**: every survivor is one year older.
3. **Dispersal**: young reaching ``independence_age`` (2: cubs stay with the
   mother up to 2 years) and floaters search for a free territory of their own
   sex (females in female territories, males in male territories).  Each draws
   a search distance :math:`D \sim \mathrm{Exp}(\text{mean})` in cost-weighted
   metres (sex-specific mean, capped at ``max_dispersal_cost_m``) and settles in
   the *nearest* free territory whose least-cost distance from its natal
   territory is at most :math:`D`; the chance of reaching a territory at cost
   :math:`d` is thus :math:`e^{-d/\text{mean}}` (an exponential dispersal
   kernel).  Dispersers search one at a time in a random order.  One that
   finds nothing becomes a floater and searches again next year from its natal
   territory (``floaters=True``), or dies (``floaters=False``).
4. **Releases**: founders (year 0) and supplementation (later years) settle
   in the free territories of their sex in the release site, nearest to the
   release point first; the rest become floaters at the site.
5. **Breeding**: a territorial female aged >= ``first_breeding_age`` with no
   dependent cubs (cubs younger than ``independence_age``) breeds with
   probability ``breeding_probability`` if a territorial adult male holds a
   territory within ``mate_search_cost_m`` of hers (overlapping territories are
   at cost 0).  Litter size 1, 2 or 3 with ``litter_probabilities``; each cub
   is female with probability ``female_share``.  The female can breed again
   when her cubs are independent (or all died): an inter-birth interval of two
   years, or one year after losing the whole litter.
6. **Census**.

Territories are the density ceiling.  With ``density_limit=False`` the
simulation is not spatial: every disperser settles at once on a territory of
its own and any adult male of the population is a mate, which makes the
expected growth that of the stage matrix of :func:`leslie_lambda`.

A *source* population (e.g. Land of the Leopard NP) can live in the same
landscape: ``source_fill`` of its territories are occupied at year 0 by adults
of the stable age distribution (adult ages 3, 4, ... with weights
:math:`s^{k}`).  Its animals follow the same rules.  The landscape is split
into the site's side and the source's side by least-cost allocation (each
territory goes to whichever of site and source its cells are mostly nearer
to, in cost).  The simulated population (trajectories, persistence) is every
animal on the site's side: the released animals, their descendants and
immigrants from the source.  The corridor's role is measured as the number of
dispersers that settle on the source's side coming from a natal (or release)
territory on the site's side (``to_source``), and the reverse
(``from_source``).

A run *persists* at year *t* if at every census up to *t* the simulated
population held at least one female and one male of any age (Vortex's
definition of extinction: one sex or both gone).

Defaults and their sources (assumptions are labelled):

* ``survival_adult = 0.82``: annual adult survival of Amur leopards,
  0.82 (0.69–0.91) (Vitkalova et al. 2018, *Conservation Letters*).
* ``survival_subadult = 0.75``: **assumption**, above the 0.41 of dispersing
  subadult male Amur tigers (Goodrich et al. 2008, *J. Zool.* 276:323–329),
  as most leopard females settle near their mother; no Amur leopard value.
* ``survival_cub = 0.7``, ``survival_juvenile = 0.9``: **assumptions** (no
  Amur leopard values); with ``cubs_die_with_mother`` the first-year survival
  is 0.7 × 0.82 ≈ 0.57.
* ``breeding_probability = 0.9``, ``litter_probabilities = (0.25, 0.5, 0.25)``
  (mean 2.0): **assumptions**; camera trapping in Land of the Leopard found
  5 breeding females with 11 cubs (2014) and 9 with 16 (2015), 1.8–2.2 cubs per
  litter (Vitkalova & Shevtsova 2016, *Nature Conservation Research*).
  With these defaults the stage matrix gives λ ≈ 1.024 per year.
* ``first_breeding_age = 3``, ``independence_age = 2``: the project's life
  history (first breeding at 3 years, cubs with the mother up to 2 years).
* ``mean_dispersal_cost_female_m = 2700``, ``mean_dispersal_cost_male_m =
  11000``: natal dispersal of leopards in South Africa, females 2.7 km, males
  11.0 km (Fattebert et al. 2015, *PLoS ONE* e0122355) -- not Amur leopards;
  as cost-weighted metres they are metres through resistance-1 habitat.
* ``max_dispersal_cost_m = 50000``: modelling choice; an exponential kernel
  of mean 11 km puts 1 % of males beyond it (a study of North China leopards
  used 110 km as the maximum dispersal).
* ``mate_search_cost_m = 10000``: **assumption**, about the radius of a male
  territory of 30,000 ha.

Examples
--------
A non-spatial run of 20 females and 20 males without a density limit:

>>> p = SimulationParams(founders_female=20, founders_male=20, density_limit=False, n_runs=50, years=10, seed=1)
>>> res = simulate_population(None, p)
>>> res.adults.shape
(50, 11)
>>> float(res.persistence_at(10))
1.0
>>> round(leslie_lambda(p), 3)
1.024
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from leopardgeo.core.errors import AlignmentError, ConfigError, DataError
from leopardgeo.kernels.costdist import cost_distance

__all__ = [
    "QUANTILES",
    "SimulationParams",
    "SimulationResult",
    "TerritoryLandscape",
    "leslie_lambda",
    "leslie_matrix",
    "plot_trajectories",
    "simulate_individuals",
    "simulate_population",
    "simulate_site",
]

#: Quantiles (percent) of the trajectories reported by :meth:`SimulationResult.quantiles`.
QUANTILES = (5, 25, 50, 75, 95)

# Region codes of a territory.
OTHER, SITE, SOURCE = 0, 1, 2

# Columns of the individual table of the compiled kernel.
_AGE, _SEX, _TERR, _ORIGIN, _MOTHER, _ALIVE = 0, 1, 2, 3, 4, 5
_NCOL = 6
# Rows of the per-run trajectory array.
_ROWS = ("adult_females", "adult_males", "adults", "total", "females", "males", "source_adults")
_VIRTUAL = -2  # territory of an animal settled without a density limit


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True, kw_only=True)
class SimulationParams:
    """Parameters of :func:`simulate_population` (see the module docstring for the cycle and sources).

    Ages are in years, probabilities in 0..1, costs in cost-weighted metres.
    ``supplementation`` lists ``(year, females, males)`` releases after year 0.
    """

    years: int = 50
    n_runs: int = 1000
    seed: int = 0
    founders_female: int = 3
    founders_male: int = 3
    founder_age: int = 3
    supplementation: tuple[tuple[int, int, int], ...] = ()
    survival_cub: float = 0.7
    survival_juvenile: float = 0.9
    survival_subadult: float = 0.75
    survival_adult: float = 0.82
    survival_adult_male: float | None = None
    survival_floater: float | None = None
    cubs_die_with_mother: bool = True
    first_breeding_age: int = 3
    independence_age: int = 2
    breeding_probability: float = 0.9
    litter_probabilities: tuple[float, ...] = (0.25, 0.5, 0.25)
    female_share: float = 0.5
    mean_dispersal_cost_female_m: float = 2700.0
    mean_dispersal_cost_male_m: float = 11000.0
    max_dispersal_cost_m: float = 50000.0
    mate_search_cost_m: float = 10000.0
    disperse: bool = True
    floaters: bool = True
    density_limit: bool = True
    source_fill: float = 1.0

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def adult_male_survival(self) -> float:
        """Adult male survival (``survival_adult_male``, else ``survival_adult``)."""
        return self.survival_adult if self.survival_adult_male is None else float(self.survival_adult_male)

    @property
    def floater_survival(self) -> float:
        """Survival of adults without a territory (``survival_floater``, else ``survival_subadult``)."""
        return self.survival_subadult if self.survival_floater is None else float(self.survival_floater)

    @property
    def mean_litter_size(self) -> float:
        """Expected litter size."""
        return float(sum((k + 1) * p for k, p in enumerate(self.litter_probabilities)))

    def releases(self) -> list[tuple[int, int, int]]:
        """All releases as ``(year, females, males)``, founders (year 0) first."""
        return [(0, self.founders_female, self.founders_male), *[tuple(map(int, r)) for r in self.supplementation]]


def _expected(name: str, expected: str, value: object, fix: str = "") -> str:
    """Error message: what was expected, what was found, how to fix it."""
    return f"{name}: expected {expected}, found {value!r}." + (f" {fix}" if fix else "")


def _check_int(p: SimulationParams, name: str, minimum: int) -> None:
    v = getattr(p, name)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < minimum:
        raise ConfigError(_expected(name, f"a whole number >= {minimum}", v))


def _check_prob(name: str, v: object) -> None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0
    if not ok:
        raise ConfigError(_expected(name, "a probability from 0 to 1", v))


def _check_cost(name: str, v: object) -> None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v) > 0 and math.isfinite(float(v))
    if not ok:
        raise ConfigError(_expected(name, "a positive finite number of cost-weighted metres", v))


def _validate(p: SimulationParams) -> None:
    for name, minimum in (
        ("years", 1),
        ("n_runs", 1),
        ("seed", 0),
        ("founders_female", 0),
        ("founders_male", 0),
        ("founder_age", 0),
        ("first_breeding_age", 1),
        ("independence_age", 1),
    ):
        _check_int(p, name, minimum)
    if p.independence_age > p.first_breeding_age:
        raise ConfigError(
            _expected(
                "independence_age",
                f"at most first_breeding_age = {p.first_breeding_age} (young leave the mother before they breed)",
                p.independence_age,
            )
        )
    for name in (
        "survival_cub",
        "survival_juvenile",
        "survival_subadult",
        "survival_adult",
        "breeding_probability",
        "female_share",
        "source_fill",
    ):
        _check_prob(name, getattr(p, name))
    for name in ("survival_adult_male", "survival_floater"):
        if getattr(p, name) is not None:
            _check_prob(name, getattr(p, name))
    for name in ("mean_dispersal_cost_female_m", "mean_dispersal_cost_male_m", "max_dispersal_cost_m"):
        _check_cost(name, getattr(p, name))
    v = p.mate_search_cost_m
    if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v) >= 0 and math.isfinite(float(v))):
        raise ConfigError(_expected("mate_search_cost_m", "a finite number of cost-weighted metres >= 0", v))
    lp = p.litter_probabilities
    try:
        probs = [float(x) for x in lp]
    except (TypeError, ValueError):
        raise ConfigError(_expected("litter_probabilities", "a list of probabilities of litter sizes 1, 2, 3, ...", lp)) from None
    if not probs or any(not (0 <= x <= 1) for x in probs) or abs(sum(probs) - 1) > 1e-6:
        raise ConfigError(
            _expected(
                "litter_probabilities",
                "probabilities of litter sizes 1, 2, 3, ... that sum to 1",
                lp,
                f"They sum to {sum(probs):g}." if probs else "",
            )
        )
    for i, r in enumerate(p.supplementation):
        ok = (
            isinstance(r, Sequence)
            and len(r) == 3
            and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and int(x) >= 0 for x in r)
            and 1 <= int(r[0]) <= p.years
        )
        if not ok:
            raise ConfigError(
                _expected(
                    f"supplementation[{i}]",
                    f"(year, females, males): whole numbers >= 0 and a year from 1 to years = {p.years}",
                    r,
                )
            )
    for name in ("cubs_die_with_mother", "disperse", "floaters", "density_limit"):
        if not isinstance(getattr(p, name), bool):
            raise ConfigError(_expected(name, "true or false", getattr(p, name)))
    if p.founders_female + p.founders_male == 0 and not p.supplementation and p.source_fill == 0:
        raise ConfigError(_expected("founders_female, founders_male", "at least one founder", 0, "Release at least one animal."))


# --------------------------------------------------------------------------- stage matrix
def leslie_matrix(params: SimulationParams) -> np.ndarray:
    r"""Female stage matrix of the simulation without a density limit (census after the births).

    The expected-value matrix of the simulation's life cycle seen as a
    multitype branching process.  Stages: females of age 0 ..
    ``first_breeding_age - 1``; adults *available* (no dependent cub, did not
    breed this year); and mothers :math:`W_{j,k}` with :math:`k` living cubs
    (of both sexes) of age :math:`j` = 0 .. ``independence_age - 1``.  Each
    year a mother survives with :math:`s_{ad}` and each of her cubs of age
    :math:`j` with the survival of its age class, so :math:`k' \sim
    \mathrm{Binomial}(k, s_j)`; she is available for breeding again when
    :math:`k' = 0` or the cubs come of age.  Available adults (and females
    reaching ``first_breeding_age``) breed with probability :math:`p`, a litter
    of :math:`k` with probability :math:`\pi_k`, giving ``female_share ×
    mean litter size`` daughters on average.  With ``cubs_die_with_mother``
    a cub's first-year survival is :math:`s_{cub} s_{ad}` (its mother is an
    adult); given that the mother lives, cubs survive independently.

    Floaters do not occur without a density limit; a lack of males is ignored.

    Examples
    --------
    >>> p = SimulationParams(survival_cub=1, survival_juvenile=1, survival_subadult=1, survival_adult=1,
    ...                      breeding_probability=1, litter_probabilities=(0, 1), female_share=0.5)
    >>> leslie_matrix(p).shape  # ages 0-2, available, mothers of 1 or 2 cubs aged 0 or 1
    (8, 8)
    >>> round(leslie_lambda(p), 4)  # one daughter every 2 years from age 3 on: x**3 = x + 1
    1.3247
    """
    a = params.first_breeding_age
    dep = params.independence_age
    s_cub, s_juv, s_sub, s_ad = params.survival_cub, params.survival_juvenile, params.survival_subadult, params.survival_adult
    p = params.breeding_probability
    litter = np.asarray(params.litter_probabilities, dtype=np.float64)
    n_k = litter.size  # litter sizes 1 .. n_k
    f = params.female_share * params.mean_litter_size

    def age_surv(j: int) -> float:
        """Survival from age j to j + 1 of a young animal (not counting its mother's death)."""
        return s_cub if j == 0 else s_juv if j == 1 else s_sub

    i_av = a
    n = a + 1 + dep * n_k

    def w(j: int, k: int) -> int:  # mother of k cubs (1 .. n_k) of age j
        return a + 1 + j * n_k + (k - 1)

    m = np.zeros((n, n))
    for j in range(a - 1):  # young ageing
        m[j + 1, j] = age_surv(j) * (s_ad if j == 0 and params.cubs_die_with_mother else 1.0)
    # into_pool[i]: expected number of next year's breeding candidates per female of stage i
    into_pool = np.zeros(n)
    into_pool[a - 1] = age_surv(a - 1) * (s_ad if a == 1 and params.cubs_die_with_mother else 1.0)
    into_pool[i_av] = s_ad
    for j in range(dep):
        s_j = age_surv(j)
        for k in range(1, n_k + 1):
            if j + 1 >= dep:  # the cubs come of age
                into_pool[w(j, k)] = s_ad
                continue
            into_pool[w(j, k)] = s_ad * (1 - s_j) ** k  # the whole litter died
            for k2 in range(1, k + 1):
                m[w(j + 1, k2), w(j, k)] = s_ad * math.comb(k, k2) * s_j**k2 * (1 - s_j) ** (k - k2)
    m[0, :] += p * f * into_pool
    m[i_av, :] += (1 - p) * into_pool
    for k in range(1, n_k + 1):
        m[w(0, k), :] += p * litter[k - 1] * into_pool
    return m


def leslie_lambda(params: SimulationParams) -> float:
    """Dominant eigenvalue (asymptotic yearly growth factor) of :func:`leslie_matrix`.

    Examples
    --------
    >>> round(leslie_lambda(SimulationParams()), 3)
    1.024
    """
    return float(np.max(np.abs(np.linalg.eigvals(leslie_matrix(params)))))


# --------------------------------------------------------------------------- landscape
@dataclass(frozen=True, eq=False)
class TerritoryLandscape:
    """Territories as the simulation sees them: centroids, regions and least-cost distances.

    Female territories have indices ``0 .. n_female - 1``, male territories
    ``0 .. n_male - 1``.  Distances are least costs (cost-weighted metres)
    from any cell of a female territory to the nearest cell of another
    territory, kept only up to ``max_cost_m``, in compressed rows sorted
    nearest first: for female territory ``i`` the female territories
    ``ff_index[ff_ptr[i]:ff_ptr[i+1]]`` at costs ``ff_cost[...]`` (itself
    first, at 0), and likewise ``fm_*`` for male territories (0 if they overlap).

    Attributes
    ----------
    female_ids, male_ids
        Territory ids (``territory_id`` of the territory table).
    female_xy, male_xy
        Centroids, metres in the grid CRS, shape (n, 2).
    female_region, male_region
        0 = other, 1 = release site, 2 = source population.
    female_side, male_side
        0 = the site's side, 1 = the source's side: the territory's cells are
        mostly nearer (least cost) to the source than to the site.  Without a
        source every territory is on the site's side.
    site_female_order, site_male_order
        Indices of the site's territories, nearest to the release point first.
    release_origin
        Index of the female territory nearest the release point (where
        unsettled released animals start their search).
    release_xy
        The release point (metres).
    max_cost_m
        Cost up to which distances are kept.
    build_s
        Seconds taken to build it.
    grid, female_raster, male_raster, resistance, connectivity
        What :meth:`with_site` needs to place another site: the grid, the
        territory id rasters (0 = none or filtered out), the resistance and the
        search's neighbourhood.
    """

    female_ids: np.ndarray
    male_ids: np.ndarray
    female_xy: np.ndarray
    male_xy: np.ndarray
    female_region: np.ndarray
    male_region: np.ndarray
    female_side: np.ndarray
    male_side: np.ndarray
    ff_ptr: np.ndarray
    ff_index: np.ndarray
    ff_cost: np.ndarray
    fm_ptr: np.ndarray
    fm_index: np.ndarray
    fm_cost: np.ndarray
    site_female_order: np.ndarray
    site_male_order: np.ndarray
    release_origin: int
    release_xy: tuple[float, float]
    max_cost_m: float
    build_s: float = 0.0
    grid: Any = field(default=None, repr=False)
    female_raster: np.ndarray | None = field(default=None, repr=False)
    male_raster: np.ndarray | None = field(default=None, repr=False)
    resistance: np.ndarray | None = field(default=None, repr=False)
    connectivity: int = 8

    @property
    def n_female(self) -> int:
        """Number of female territories."""
        return int(self.female_ids.size)

    @property
    def n_male(self) -> int:
        """Number of male territories."""
        return int(self.male_ids.size)

    def summary(self) -> dict[str, Any]:
        """Territory counts per region, for reports."""
        out: dict[str, Any] = {}
        for name, code in (("site", SITE), ("source", SOURCE), ("other", OTHER)):
            out[f"{name}_female_territories"] = int((self.female_region == code).sum())
            out[f"{name}_male_territories"] = int((self.male_region == code).sum())
        out["site_side_female_territories"] = int((self.female_side == 0).sum())
        out["source_side_female_territories"] = int((self.female_side == 1).sum())
        out["max_cost_m"] = self.max_cost_m
        out["build_s"] = round(self.build_s, 2)
        return out

    @classmethod
    def from_territories(
        cls,
        territories: Any,
        resistance: np.ndarray,
        *,
        site: Any,
        source: Any = None,
        max_cost_m: float = 50000.0,
        min_share: float = 0.5,
        release_xy: tuple[float, float] | None = None,
        within_cost_m: float | None = None,
        connectivity: int = 8,
        workers: int | None = None,
    ) -> TerritoryLandscape:
        """Build the landscape from packed territories and the resistance surface.

        Parameters
        ----------
        territories
            A :class:`leopardgeo.stages.territories.TerritoryResult` (its ``female``
            and ``male`` rasters and ``grid`` are used).
        resistance
            Resistance on the same grid (NaN = impassable).
        site, source
            The release site and the source population: a boolean raster on
            the grid, or polygons (shapely geometry, GeoSeries or GeoDataFrame in
            the grid CRS).  A territory belongs to one if at least ``min_share``
            of its cells do (the site wins where both claim it).  ``source`` may
            be None.
        max_cost_m
            Distances beyond this cost are not kept; use the simulation's
            ``max_dispersal_cost_m`` (and at least ``mate_search_cost_m``).
        min_share
            Share of a territory's cells that must lie in the site / source.
        release_xy
            Release point in metres; default: the centroid of the site's cells.
        within_cost_m
            Keep only territories with a cell within this least cost of the
            site or the source (None: all).  The distance searches, one per
            female territory, dominate the build time (about 16 s for the 3,762
            female territories of the demo at ``max_cost_m = 50000``).
        connectivity
            4, 8 or 16 neighbours of the cost-distance search.
        workers
            Threads for the searches (default: the CPU count).

        Raises
        ------
        DataError
            If there is no female territory, or the site holds no female territory.
        AlignmentError, ConfigError
            If rasters do not match the grid or a parameter is out of range.
        """
        t0 = time.perf_counter()
        grid = territories.grid
        female = np.asarray(territories.female)
        male = np.asarray(territories.male)
        res = np.asarray(resistance, dtype=np.float64)
        if res.shape != female.shape:
            msg = f"resistance: expected the territory rasters' shape {female.shape}, found {res.shape}."
            raise AlignmentError(msg)
        _check_cost("max_cost_m", max_cost_m)
        if female.max(initial=0) <= 0:
            msg = "territories: expected at least one female territory, found none. Check the territory packing."
            raise DataError(msg)
        if within_cost_m is not None:
            _check_cost("within_cost_m", within_cost_m)
            site_mask = _mask(site, grid, "site")
            src_mask = None if source is None else _mask(source, grid, "source")
            near = np.isfinite(_allocation(res, grid, site_mask, src_mask, connectivity, within_cost_m).cost)
            # whole territories with a cell within reach
            female = np.where(np.isin(female, np.unique(female[near & (female > 0)])), female, 0)
            male = np.where(np.isin(male, np.unique(male[near & (male > 0)])), male, 0)
            if female.max(initial=0) <= 0:
                msg = (
                    f"within_cost_m: expected female territories within {within_cost_m:g} cost-weighted metres "
                    "of the site or source, found none. Raise within_cost_m."
                )
                raise DataError(msg)
        f_ids = np.unique(female[female > 0]).astype(np.int64)
        m_ids = np.unique(male[male > 0]).astype(np.int64)
        f_idx = _index_raster(female, f_ids)
        m_idx = _index_raster(male, m_ids)
        ff, fm = _territory_distances(
            res, f_idx, m_idx, f_ids.size, m_ids.size, grid.cell_size_m, float(max_cost_m), connectivity, workers
        )
        empty = np.zeros(0, dtype=np.int64)
        base = cls(
            female_ids=f_ids,
            male_ids=m_ids,
            female_xy=_centroids(f_idx, f_ids.size, grid),
            male_xy=_centroids(m_idx, m_ids.size, grid),
            female_region=np.zeros(f_ids.size, dtype=np.int64),
            male_region=np.zeros(m_ids.size, dtype=np.int64),
            female_side=np.zeros(f_ids.size, dtype=np.int64),
            male_side=np.zeros(m_ids.size, dtype=np.int64),
            ff_ptr=ff[0],
            ff_index=ff[1],
            ff_cost=ff[2],
            fm_ptr=fm[0],
            fm_index=fm[1],
            fm_cost=fm[2],
            site_female_order=empty,
            site_male_order=empty,
            release_origin=-1,
            release_xy=(math.nan, math.nan),
            max_cost_m=float(max_cost_m),
            grid=grid,
            female_raster=female,
            male_raster=male,
            resistance=res,
            connectivity=int(connectivity),
        )
        out = base.with_site(site, source, min_share=min_share, release_xy=release_xy)
        return replace(out, build_s=time.perf_counter() - t0)

    def with_site(
        self,
        site: Any,
        source: Any = None,
        *,
        min_share: float = 0.5,
        release_xy: tuple[float, float] | None = None,
    ) -> TerritoryLandscape:
        """The same territories and distances with another release site (and source).

        Only the regions, sides and release order are recomputed (one
        allocation search when a source is given, about 1 s on the demo), so
        several candidate sites can share one landscape built once: build it
        with ``site`` = all candidate sites together, then call this per site.

        Raises
        ------
        DataError
            If the site holds no female territory (at ``min_share``).
        """
        t0 = time.perf_counter()
        if not (isinstance(min_share, numbers.Real) and 0 < float(min_share) <= 1):
            raise ConfigError(_expected("min_share", "a share in (0, 1]", min_share))
        grid = self.grid
        site_mask = _mask(site, grid, "site")
        src_mask = None if source is None else _mask(source, grid, "source")
        f_idx = _index_raster(self.female_raster, self.female_ids)
        m_idx = _index_raster(self.male_raster, self.male_ids)
        n_f, n_m = self.female_ids.size, self.male_ids.size
        f_reg = np.zeros(n_f, dtype=np.int64)
        m_reg = np.zeros(n_m, dtype=np.int64)
        for mask, code in ((src_mask, SOURCE), (site_mask, SITE)):
            if mask is not None:
                f_reg[_share(f_idx, n_f, mask) >= min_share] = code
                m_reg[_share(m_idx, n_m, mask) >= min_share] = code
        if not (f_reg == SITE).any():
            msg = (
                f"site: expected at least one female territory with >= {min_share:g} of its cells in the site, "
                "found none. Enlarge the site, lower min_share, or check that the site overlaps the territories."
            )
            raise DataError(msg)
        # sides: territories whose cells are mostly nearer (least cost) to the source than to the site
        f_side = np.zeros(n_f, dtype=np.int64)
        m_side = np.zeros(m_reg.size, dtype=np.int64)
        if src_mask is not None:
            alloc = _allocation(self.resistance, grid, site_mask, src_mask, self.connectivity, None).allocation
            f_side[_share(f_idx, n_f, alloc == 2) > 0.5] = 1
            m_side[_share(m_idx, n_m, alloc == 2) > 0.5] = 1
        if release_xy is None:
            rows, cols = np.nonzero(site_mask)
            xy = _cell_xy(grid, np.array([rows.mean()]), np.array([cols.mean()]))[0]
            release_xy = (float(xy[0]), float(xy[1]))
        rx, ry = float(release_xy[0]), float(release_xy[1])
        site_f = np.flatnonzero(f_reg == SITE)
        site_m = np.flatnonzero(m_reg == SITE)
        d_f = np.hypot(self.female_xy[site_f, 0] - rx, self.female_xy[site_f, 1] - ry)
        d_m = np.hypot(self.male_xy[site_m, 0] - rx, self.male_xy[site_m, 1] - ry)
        site_f = site_f[np.argsort(d_f, kind="stable")].astype(np.int64)
        site_m = site_m[np.argsort(d_m, kind="stable")].astype(np.int64)
        return replace(
            self,
            female_region=f_reg,
            male_region=m_reg,
            female_side=f_side,
            male_side=m_side,
            site_female_order=site_f,
            site_male_order=site_m,
            release_origin=int(site_f[0]),
            release_xy=(rx, ry),
            build_s=time.perf_counter() - t0,
        )


def _allocation(
    res: np.ndarray, grid: Any, site_mask: np.ndarray, src_mask: np.ndarray | None, connectivity: int, max_cost: float | None
) -> Any:
    """Least-cost search from the site (label 1) and the source (label 2; the site wins where they overlap)."""
    labels = np.zeros(res.shape, dtype=np.int32)
    if src_mask is not None:
        labels[src_mask] = 2
    labels[site_mask] = 1
    labels[~np.isfinite(res)] = 0
    if not (labels == 1).any():
        msg = "site: expected cells with finite resistance, found only no-data cells. Check the site's location."
        raise DataError(msg)
    return cost_distance(res, labels, cell_size_m=grid.cell_size_m, connectivity=connectivity, max_cost=max_cost)


def _mask(value: Any, grid: Any, name: str) -> np.ndarray:
    """Boolean raster of a site / source given as a raster or as polygons."""
    if isinstance(value, np.ndarray):
        if value.shape != grid.shape:
            msg = f"{name}: expected a boolean raster of the grid's shape {grid.shape}, found shape {value.shape}."
            raise AlignmentError(msg)
        mask = value.astype(bool)
    else:
        from rasterio.features import geometry_mask

        geoms = getattr(value, "geometry", value)
        geoms = list(np.atleast_1d(np.asarray(geoms, dtype=object))) if not hasattr(geoms, "to_numpy") else list(geoms.to_numpy())
        geoms = [g for g in geoms if g is not None and not g.is_empty]
        if not geoms:
            msg = f"{name}: expected polygons or a boolean raster, found no geometry."
            raise DataError(msg)
        mask = ~geometry_mask(geoms, out_shape=grid.shape, transform=grid.transform)
    if not mask.any():
        msg = f"{name}: expected an area on the grid, found no cell inside it. Check its CRS and extent."
        raise DataError(msg)
    return mask


def _index_raster(ids_raster: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Raster of territory indices (0-based), -1 outside."""
    out = np.full(ids_raster.shape, -1, dtype=np.int64)
    on = ids_raster > 0
    out[on] = np.searchsorted(ids, ids_raster[on])
    return out


def _centroids(idx: np.ndarray, n: int, grid: Any) -> np.ndarray:
    rows, cols = np.nonzero(idx >= 0)
    lab = idx[rows, cols]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    r = np.bincount(lab, weights=rows, minlength=n) / np.maximum(cnt, 1)
    c = np.bincount(lab, weights=cols, minlength=n) / np.maximum(cnt, 1)
    return _cell_xy(grid, r, c)


def _cell_xy(grid: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Map coordinates (metres) of the centres of cells at fractional ``rows``, ``cols``; shape (n, 2)."""
    t = grid.transform
    x = t.a * (cols + 0.5) + t.b * (rows + 0.5) + t.c
    y = t.d * (cols + 0.5) + t.e * (rows + 0.5) + t.f
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def _share(idx: np.ndarray, n: int, mask: np.ndarray) -> np.ndarray:
    on = idx >= 0
    lab = idx[on]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    inside = np.bincount(lab, weights=mask[on].astype(np.float64), minlength=n)
    return inside / np.maximum(cnt, 1)


@njit(cache=True, nogil=True)
def _label_min(cost, labels, best, touched):  # pragma: no cover - compiled
    """Least finite ``cost`` per label >= 0 of ``labels`` into ``best`` (inf = untouched); return the touched count."""
    nt = 0
    flat_c = cost.ravel()
    flat_l = labels.ravel()
    for k in range(flat_c.size):
        c = flat_c[k]
        if not c < np.inf:  # inf (beyond max cost) or NaN (no data)
            continue
        lab = flat_l[k]
        if lab < 0:
            continue
        if best[lab] == np.inf:
            touched[nt] = lab
            nt += 1
        if c < best[lab]:
            best[lab] = c
    return nt


def _territory_distances(
    res: np.ndarray,
    f_idx: np.ndarray,
    m_idx: np.ndarray,
    n_f: int,
    n_m: int,
    cell_size_m: float,
    max_cost_m: float,
    connectivity: int,
    workers: int | None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Least-cost distances from every female territory to female and male territories within ``max_cost_m``.

    One bounded search of :func:`leopardgeo.kernels.costdist.cost_distance` per female
    territory, on a window around it: no path of cost <= ``max_cost_m`` leaves
    the territory's bounding box widened by ``max_cost_m / (cell size × least
    resistance)`` cells, so the window gives the same costs as the full grid.
    """
    from scipy import ndimage

    finite = np.isfinite(res)
    r_min = float(res[finite].min())
    pad = math.ceil(max_cost_m / (cell_size_m * r_min)) + 2
    boxes = ndimage.find_objects(f_idx + 1)  # label k+1 = territory index k
    n_rows, n_cols = res.shape

    def one(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sl = boxes[i]
        r0, r1 = max(0, sl[0].start - pad), min(n_rows, sl[0].stop + pad)
        c0, c1 = max(0, sl[1].start - pad), min(n_cols, sl[1].stop + pad)
        src = (f_idx[r0:r1, c0:c1] == i).astype(np.int32)
        cost = cost_distance(res[r0:r1, c0:c1], src, cell_size_m=cell_size_m, connectivity=connectivity, max_cost=max_cost_m).cost
        out = []
        for idx, n in ((f_idx, n_f), (m_idx, n_m)):
            best = np.full(max(n, 1), np.inf)
            touched = np.empty(max(n, 1), dtype=np.int64)
            nt = _label_min(cost, np.ascontiguousarray(idx[r0:r1, c0:c1]), best, touched)
            lab = touched[:nt]
            d = best[lab]
            order = np.lexsort((lab, d))
            out.extend([lab[order], d[order]])
        return out[0], out[1], out[2], out[3]

    n_workers = max(1, min(n_f, os.cpu_count() or 1) if workers is None else int(workers))
    if n_workers == 1:
        rows = [one(i) for i in range(n_f)]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            rows = list(pool.map(one, range(n_f)))

    def csr(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lens = np.array([r[k].size for r in rows], dtype=np.int64)
        ptr = np.zeros(n_f + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        idx = np.concatenate([r[k] for r in rows]).astype(np.int64) if rows else np.zeros(0, np.int64)
        cost = np.concatenate([r[k + 1] for r in rows]).astype(np.float64) if rows else np.zeros(0)
        return ptr, idx, cost

    return csr(0), csr(2)


# --------------------------------------------------------------------------- compiled kernel
# Why hand-written: an individual-based model's yearly cycle (survival, a
# search for the nearest free territory within a random distance, births that
# depend on each mother's cubs and on a male nearby) is sequential per animal;
# no library runs it, and a compiled loop does one 50-year run in well under a
# millisecond, so thousands of runs take seconds.


@njit(cache=True, nogil=True)
def _ensure(st, n, extra):  # pragma: no cover - compiled
    """Return ``st`` with room for ``n + extra`` rows (doubling)."""
    if n + extra <= st.shape[0]:
        return st
    cap = max(2 * st.shape[0], n + extra)
    new = np.empty((cap, st.shape[1]), dtype=st.dtype)
    new[:n] = st[:n]
    return new


@njit(cache=True, nogil=True)
def _settle(st, i, spatial, ptr, index, cost, occ, d_max):  # pragma: no cover - compiled
    """Settle animal ``i`` in the nearest free territory within cost ``d_max`` of its origin; return it or -1."""
    if not spatial:
        st[i, _TERR] = _VIRTUAL
        return _VIRTUAL
    o = st[i, _ORIGIN]
    if o < 0:
        return -1
    for j in range(ptr[o], ptr[o + 1]):
        if cost[j] > d_max:
            break
        t = index[j]
        if occ[t] < 0:
            occ[t] = i
            st[i, _TERR] = t
            return t
    return -1


@njit(cache=True, nogil=True)
def _side_of(st, i, side_f, side_m):  # pragma: no cover - compiled
    """Side (0 site, 1 source) of animal ``i``: of its territory, else of its natal or release territory."""
    t = st[i, _TERR]
    if t >= 0:
        return side_f[t] if st[i, _SEX] == 0 else side_m[t]
    o = st[i, _ORIGIN]
    if o >= 0:
        return side_f[o]
    return 0


@njit(cache=True, nogil=True)
def _simulate_run(
    rng,
    years,
    spatial,
    ff_ptr,
    ff_index,
    ff_cost,
    fm_ptr,
    fm_index,
    fm_cost,
    region_f,
    region_m,
    side_f,
    side_m,
    site_f,
    site_m,
    release_origin,
    source_fill,
    surv,
    first_breed,
    indep_age,
    p_breed,
    litter_cum,
    female_share,
    mean_disp,
    max_disp,
    mate_reach,
    disperse,
    floaters,
    cubs_die,
    rel_year,
    rel_sex,
    rel_age,
):  # pragma: no cover - compiled
    """One run; return the (7, years + 1) census array, [to_source, from_source] settlements and the final animals.

    ``surv``: cub, juvenile, subadult, adult female, adult male, floater.
    ``mean_disp``: female, male.  Releases: one row per animal.
    """
    n_f = region_f.size
    n_m = region_m.size
    st = np.empty((64 + rel_year.size + n_f + n_m, _NCOL), dtype=np.int64)
    n = 0
    occ_f = np.full(n_f, -1, dtype=np.int64)
    occ_m = np.full(n_m, -1, dtype=np.int64)
    traj = np.zeros((7, years + 1), dtype=np.int64)
    moves = np.zeros(2, dtype=np.int64)

    # source population at year 0: adults of the stable age distribution
    if spatial and source_fill > 0:
        for sex in range(2):
            region = region_f if sex == 0 else region_m
            occ = occ_f if sex == 0 else occ_m
            s = surv[3 + sex]
            for t in range(region.size):
                if region[t] != 2 or rng.random() >= source_fill:
                    continue
                k = 0
                if 0 < s < 1:
                    k = math.floor(math.log(1.0 - rng.random()) / math.log(s))
                st = _ensure(st, n, 1)
                st[n, _AGE] = first_breed + k
                st[n, _SEX] = sex
                st[n, _TERR] = t
                st[n, _ORIGIN] = t if sex == 0 else -1
                st[n, _MOTHER] = -1
                st[n, _ALIVE] = 1
                occ[t] = n
                n += 1

    for y in range(years + 1):
        if y > 0:
            # 1. survival
            for i in range(n):
                if st[i, _ALIVE] == 0:  # a disperser that found no territory (floaters=False)
                    continue
                a = st[i, _AGE]
                if a >= first_breed:
                    s = surv[5] if st[i, _TERR] == -1 else surv[3 + st[i, _SEX]]
                elif a == 0:
                    s = surv[0]
                elif a == 1:
                    s = surv[1]
                else:
                    s = surv[2]
                st[i, _ALIVE] = 1 if rng.random() < s else 0
            if cubs_die:
                for i in range(n):
                    m = st[i, _MOTHER]
                    if st[i, _ALIVE] == 1 and st[i, _AGE] == 0 and m >= 0 and st[m, _ALIVE] == 0:
                        st[i, _ALIVE] = 0
            # free territories, compact, age
            newidx = np.full(n, -1, dtype=np.int64)
            k = 0
            for i in range(n):
                t = st[i, _TERR]
                if st[i, _ALIVE] == 0:
                    if t >= 0:
                        if st[i, _SEX] == 0:
                            occ_f[t] = -1
                        else:
                            occ_m[t] = -1
                    continue
                newidx[i] = k
                k += 1
            for i in range(n):
                j = newidx[i]
                if j < 0:
                    continue
                for c in range(_NCOL):
                    st[j, c] = st[i, c]
                st[j, _AGE] += 1
                m = st[j, _MOTHER]
                st[j, _MOTHER] = newidx[m] if m >= 0 else -1
                t = st[j, _TERR]
                if t >= 0:
                    if st[j, _SEX] == 0:
                        occ_f[t] = j
                    else:
                        occ_m[t] = j
            n = k
            # 3. dispersal of independent young and floaters, in random order
            cand = np.empty(n, dtype=np.int64)
            nc = 0
            for i in range(n):
                if st[i, _TERR] == -1 and st[i, _AGE] >= indep_age:
                    cand[nc] = i
                    nc += 1
            if disperse:
                for a in range(nc - 1, 0, -1):  # Fisher-Yates shuffle
                    b = int(rng.random() * (a + 1))
                    tmp = cand[a]
                    cand[a] = cand[b]
                    cand[b] = tmp
                for c in range(nc):
                    i = cand[c]
                    sex = st[i, _SEX]
                    d = min(rng.exponential(mean_disp[sex]), max_disp)
                    if sex == 0:
                        t = _settle(st, i, spatial, ff_ptr, ff_index, ff_cost, occ_f, d)
                    else:
                        t = _settle(st, i, spatial, fm_ptr, fm_index, fm_cost, occ_m, d)
                    if t >= 0:
                        o = st[i, _ORIGIN]
                        s_from = side_f[o] if o >= 0 else 0
                        s_to = side_f[t] if sex == 0 else side_m[t]
                        if s_to == 1 and s_from == 0:
                            moves[0] += 1
                        elif s_from == 1 and s_to == 0:
                            moves[1] += 1
                    elif t == -1 and not floaters:
                        st[i, _ALIVE] = 0  # removed at the next compaction; counted dead now
        # 4. releases
        for r in range(rel_year.size):
            if rel_year[r] != y:
                continue
            st = _ensure(st, n, 1)
            sex = rel_sex[r]
            st[n, _AGE] = rel_age[r]
            st[n, _SEX] = sex
            st[n, _TERR] = -1
            st[n, _ORIGIN] = release_origin if spatial else -1
            st[n, _MOTHER] = -1
            st[n, _ALIVE] = 1
            if spatial:
                order = site_f if sex == 0 else site_m
                occ = occ_f if sex == 0 else occ_m
                for t in order:
                    if occ[t] < 0:
                        occ[t] = n
                        st[n, _TERR] = t
                        break
            else:
                st[n, _TERR] = _VIRTUAL
            n += 1
        # 5. breeding
        if y > 0:
            has_dep = np.zeros(n, dtype=np.bool_)
            any_male = False
            for i in range(n):
                m = st[i, _MOTHER]
                if m >= 0 and st[i, _AGE] < indep_age and st[i, _ALIVE] == 1:
                    has_dep[m] = True
                if st[i, _SEX] == 1 and st[i, _AGE] >= first_breed and st[i, _TERR] != -1 and st[i, _ALIVE] == 1:
                    any_male = True
            n0 = n
            for i in range(n0):
                if st[i, _SEX] != 0 or st[i, _ALIVE] == 0 or st[i, _TERR] == -1:
                    continue
                if st[i, _AGE] < first_breed or has_dep[i]:
                    continue
                t = st[i, _TERR]
                mate = False
                if spatial:
                    for j in range(fm_ptr[t], fm_ptr[t + 1]):
                        if fm_cost[j] > mate_reach:
                            break
                        mo = occ_m[fm_index[j]]
                        if mo >= 0 and st[mo, _AGE] >= first_breed:
                            mate = True
                            break
                else:
                    mate = any_male
                if not mate or rng.random() >= p_breed:
                    continue
                u = rng.random()
                size = 1
                while size < litter_cum.size and u >= litter_cum[size - 1]:
                    size += 1
                st = _ensure(st, n, size)
                for _ in range(size):
                    st[n, _AGE] = 0
                    st[n, _SEX] = 0 if rng.random() < female_share else 1
                    st[n, _TERR] = -1
                    st[n, _ORIGIN] = t if spatial else -1
                    st[n, _MOTHER] = i
                    st[n, _ALIVE] = 1
                    n += 1
        # 6. census
        for i in range(n):
            if st[i, _ALIVE] == 0:
                continue
            sex = st[i, _SEX]
            adult = st[i, _AGE] >= first_breed
            side = _side_of(st, i, side_f, side_m) if spatial else 0
            if side == 1:
                if adult:
                    traj[6, y] += 1
                continue
            traj[3, y] += 1
            traj[4 + sex, y] += 1
            if adult:
                traj[sex, y] += 1
                traj[2, y] += 1
    return traj, moves, st[:n].copy()


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Trajectories of every run and their summaries.

    The simulated population is every animal on the site's side of the
    landscape (see the module docstring).  Arrays of shape (n_runs, years + 1) count it at
    each census (year 0 = after the founders' release): ``adult_females``,
    ``adult_males``, ``adults`` (age >= first_breeding_age), ``total`` (all
    ages), ``females``, ``males`` (all ages); ``source_adults`` counts adults on
    the source's side.  ``to_source`` / ``from_source`` (n_runs,) count the
    dispersers that settled on the source's side coming from the site's side,
    and the reverse.  ``persistence[t]`` is the share of runs in which
    the population held a female and a male at every census up to year t.
    """

    params: SimulationParams
    adult_females: np.ndarray
    adult_males: np.ndarray
    adults: np.ndarray
    total: np.ndarray
    females: np.ndarray
    males: np.ndarray
    source_adults: np.ndarray
    to_source: np.ndarray
    from_source: np.ndarray
    elapsed_s: float = 0.0
    landscape_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def years(self) -> np.ndarray:
        """Census years 0 .. years."""
        return np.arange(self.adults.shape[1])

    @property
    def persistence(self) -> np.ndarray:
        """Share of runs with at least one female and one male at every census up to each year."""
        alive = (self.females > 0) & (self.males > 0)
        return np.logical_and.accumulate(alive, axis=1).mean(axis=0)

    def persistence_at(self, year: int) -> float:
        """Probability of persistence to ``year`` (0 .. years)."""
        if isinstance(year, bool) or not isinstance(year, numbers.Integral) or not 0 <= int(year) < self.adults.shape[1]:
            raise ConfigError(_expected("year", f"a whole number from 0 to {self.adults.shape[1] - 1}", year))
        return float(self.persistence[int(year)])

    def quantiles(self, what: str = "adults", q: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Quantiles (percent) of a trajectory per year: rows = years, columns = ``q``."""
        if what not in _ROWS:
            raise ConfigError(_expected("what", f"one of {list(_ROWS)}", what))
        arr = getattr(self, what)
        vals = np.percentile(arr, list(q), axis=0).T
        return pd.DataFrame(vals, index=pd.Index(self.years, name="year"), columns=[f"q{x:g}" for x in q])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: parameters, persistence, quantile trajectories, dispersers, timing."""
        p = self.params
        params = asdict(p)
        params["supplementation"] = [list(r) for r in p.supplementation]
        params["litter_probabilities"] = list(p.litter_probabilities)
        horizon = {str(y): self.persistence_at(y) for y in (25, 50) if y <= p.years}
        traj = {}
        for what in ("adult_females", "adults", "total"):
            qt = self.quantiles(what)
            traj[what] = {col: [float(v) for v in qt[col]] for col in qt.columns}
            traj[what]["mean"] = [float(v) for v in getattr(self, what).mean(axis=0)]
        return {
            "n_runs": int(self.adults.shape[0]),
            "years": int(self.adults.shape[1] - 1),
            "persistence_25y": horizon.get("25"),
            "persistence_50y": horizon.get("50"),
            "persistence": horizon,
            "persistence_by_year": [float(v) for v in self.persistence],
            "final_adults_median": float(np.median(self.adults[:, -1])),
            "trajectories": traj,
            "dispersers": {
                "to_source_mean": float(self.to_source.mean()),
                "from_source_mean": float(self.from_source.mean()),
                "to_source_share_runs": float((self.to_source > 0).mean()),
                "from_source_share_runs": float((self.from_source > 0).mean()),
            },
            "leslie_lambda": leslie_lambda(p),
            "landscape": self.landscape_summary,
            "elapsed_s": round(self.elapsed_s, 3),
            "params": params,
        }


# --------------------------------------------------------------------------- entry point
def _kernel_args(landscape: TerritoryLandscape | None, p: SimulationParams) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Check the inputs and return the arguments of :func:`_simulate_run` after ``rng``, and the landscape summary."""
    if not isinstance(p, SimulationParams):
        raise ConfigError(_expected("params", "a SimulationParams", type(p).__name__))
    spatial = p.density_limit
    if spatial and landscape is None:
        raise ConfigError(
            _expected(
                "landscape",
                "a TerritoryLandscape when density_limit is true",
                None,
                "Build one with TerritoryLandscape.from_territories(...) or set density_limit = false.",
            )
        )
    if spatial:
        assert landscape is not None
        need = max(p.max_dispersal_cost_m, p.mate_search_cost_m)
        if landscape.max_cost_m < need * (1 - 1e-12):
            msg = (
                f"landscape: expected distances kept up to max(max_dispersal_cost_m, mate_search_cost_m) = {need:g}, "
                f"found {landscape.max_cost_m:g}. Rebuild it with max_cost_m={need:g}."
            )
            raise DataError(msg)
    if spatial:
        assert landscape is not None
        ls = landscape
        arrays = (
            ls.ff_ptr, ls.ff_index, ls.ff_cost, ls.fm_ptr, ls.fm_index, ls.fm_cost,
            ls.female_region, ls.male_region, ls.female_side, ls.male_side, ls.site_female_order, ls.site_male_order,
        )  # fmt: skip
        origin = ls.release_origin
        summary = ls.summary()
    else:
        z = np.zeros(1, dtype=np.int64)
        e = np.zeros(0, dtype=np.int64)
        arrays = (z, e, np.zeros(0), z, e, np.zeros(0), e, e, e, e, e, e)
        origin = -1
        summary = {}
    surv = np.array(
        [p.survival_cub, p.survival_juvenile, p.survival_subadult, p.survival_adult, p.adult_male_survival, p.floater_survival],
        dtype=np.float64,
    )
    litter_cum = np.cumsum(np.asarray(p.litter_probabilities, dtype=np.float64))
    litter_cum[-1] = 1.0
    rel = [(y, s, p.founder_age) for y, nf, nm in p.releases() for s, k in ((0, nf), (1, nm)) for _ in range(k)]
    rel_arr = np.array(rel, dtype=np.int64).reshape(-1, 3)
    mean_disp = np.array([p.mean_dispersal_cost_female_m, p.mean_dispersal_cost_male_m], dtype=np.float64)
    # plain Python scalars of fixed types, so that the kernel compiles once (an int where a float was would recompile)
    args = (
        int(p.years), bool(spatial), *arrays, int(origin), float(p.source_fill), surv, int(p.first_breeding_age),
        int(p.independence_age), float(p.breeding_probability), litter_cum, float(p.female_share), mean_disp,
        float(p.max_dispersal_cost_m), float(p.mate_search_cost_m), bool(p.disperse), bool(p.floaters),
        bool(p.cubs_die_with_mother),
        np.ascontiguousarray(rel_arr[:, 0]), np.ascontiguousarray(rel_arr[:, 1]), np.ascontiguousarray(rel_arr[:, 2]),
    )  # fmt: skip
    return args, summary


def simulate_individuals(landscape: TerritoryLandscape | None, params: SimulationParams, *, run: int = 0) -> pd.DataFrame:
    """The animals alive at the end of run ``run`` of :func:`simulate_population` (same random stream).

    Columns: ``age`` (years), ``sex`` (``"F"``/``"M"``), ``territory`` (index
    among the territories of its sex; -1 none, -2 a territory without density
    limit), ``territory_id`` (the packing's id, 0 if none), ``origin`` (index of
    the natal or release female territory, -1 if none), ``region`` (0 other,
    1 site, 2 source) and ``side`` (0 the site's, 1 the source's), both of the
    territory, else of the origin.

    Examples
    --------
    >>> p = SimulationParams(density_limit=False, years=1, breeding_probability=0, survival_adult=1, n_runs=1)
    >>> simulate_individuals(None, p)[["age", "sex", "territory"]].value_counts().to_dict()
    {(4, 'F', -2): 3, (4, 'M', -2): 3}
    """
    if isinstance(run, bool) or not isinstance(run, numbers.Integral) or not 0 <= int(run) < params.n_runs:
        raise ConfigError(_expected("run", f"a run number from 0 to n_runs - 1 = {params.n_runs - 1}", run))
    args, _ = _kernel_args(landscape, params)
    seed = np.random.SeedSequence(params.seed).spawn(int(run) + 1)[int(run)]
    _, _, st = _simulate_run(np.random.default_rng(seed), *args)
    st = st[st[:, _ALIVE] == 1]
    sex = st[:, _SEX]
    terr = st[:, _TERR]
    tid = np.zeros(terr.size, dtype=np.int64)
    region = np.zeros(terr.size, dtype=np.int64)
    side = np.zeros(terr.size, dtype=np.int64)
    if landscape is not None and params.density_limit:
        for code, ids, reg, sd in (
            (0, landscape.female_ids, landscape.female_region, landscape.female_side),
            (1, landscape.male_ids, landscape.male_region, landscape.male_side),
        ):
            on = (sex == code) & (terr >= 0)
            tid[on] = ids[terr[on]]
            region[on] = reg[terr[on]]
            side[on] = sd[terr[on]]
        off = (terr < 0) & (st[:, _ORIGIN] >= 0)
        region[off] = landscape.female_region[st[off, _ORIGIN]]
        side[off] = landscape.female_side[st[off, _ORIGIN]]
    return pd.DataFrame(
        {
            "age": st[:, _AGE],
            "sex": np.where(sex == 0, "F", "M"),
            "territory": terr,
            "territory_id": tid,
            "origin": st[:, _ORIGIN],
            "region": region,
            "side": side,
        }
    )


def simulate_population(
    landscape: TerritoryLandscape | None,
    params: SimulationParams | None = None,
    *,
    workers: int | None = None,
) -> SimulationResult:
    """Run ``params.n_runs`` replicate simulations of a released population.

    Parameters
    ----------
    landscape
        The territories (:meth:`TerritoryLandscape.from_territories`), or None
        for a non-spatial run, which needs ``params.density_limit = False``.
    params
        Simulation parameters (default: :class:`SimulationParams()`).
    workers
        Threads running the replicates (default: the CPU count).  Run ``r``
        draws from ``numpy.random.SeedSequence(params.seed).spawn(n_runs)[r]``,
        so the result does not depend on ``workers``.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ConfigError
        If a parameter is out of range, or a density limit is asked without a landscape.
    DataError
        If the landscape's distances were kept to less than the dispersal or mate-search cost.

    Examples
    --------
    >>> p = SimulationParams(survival_cub=0, survival_juvenile=0, survival_subadult=0, survival_adult=0,
    ...                      density_limit=False, n_runs=3, years=5)
    >>> simulate_population(None, p).total[:, :3].tolist()
    [[6, 0, 0], [6, 0, 0], [6, 0, 0]]
    """
    p = SimulationParams() if params is None else params
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ConfigError(_expected("workers", "a positive whole number of threads or None", workers))
    t0 = time.perf_counter()
    args, summary = _kernel_args(landscape, p)
    seeds = np.random.SeedSequence(p.seed).spawn(p.n_runs)
    n_years = p.years + 1
    traj = np.zeros((p.n_runs, 7, n_years), dtype=np.int64)
    moves = np.zeros((p.n_runs, 2), dtype=np.int64)

    def one(r: int) -> None:
        rng = np.random.default_rng(seeds[r])
        t, mv, _ = _simulate_run(rng, *args)
        traj[r] = t
        moves[r] = mv

    def chunk(rs: range) -> None:
        for r in rs:
            one(r)

    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    n_workers = max(1, min(n_workers, p.n_runs))
    if n_workers == 1:
        chunk(range(p.n_runs))
    else:
        bounds = np.linspace(0, p.n_runs, n_workers + 1).astype(int)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(chunk, [range(a, b) for a, b in itertools.pairwise(bounds)]))
    rows = {name: traj[:, k, :] for k, name in enumerate(_ROWS)}
    return SimulationResult(
        params=p,
        **rows,
        to_source=moves[:, 0].copy(),
        from_source=moves[:, 1].copy(),
        elapsed_s=time.perf_counter() - t0,
        landscape_summary=summary,
    )


def simulate_site(
    territories: Any,
    resistance: np.ndarray,
    site: Any,
    source: Any = None,
    params: SimulationParams | None = None,
    *,
    within_cost_m: float | None = None,
    min_share: float = 0.5,
    workers: int | None = None,
) -> SimulationResult:
    """Build the landscape for one release site and simulate it: the one-call entry point.

    Distances are kept up to ``max(max_dispersal_cost_m, mate_search_cost_m)``
    of ``params``.  See :meth:`TerritoryLandscape.from_territories` for
    ``site``, ``source``, ``within_cost_m`` and ``min_share``, and
    :func:`simulate_population` for the rest.

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> from leopardgeo.stages.territories import pack_territories
    >>> g = Grid.from_bounds((0, 0, 4000, 2000), cell_size_m=100, crs="EPSG:32652")
    >>> terr = pack_territories(np.ones(g.shape), np.ones(g.shape), g, min_area_ha=5, max_area_ha=40, female_need_ha=10)
    >>> site = np.zeros(g.shape, bool)
    >>> site[:, :10] = True
    >>> p = SimulationParams(n_runs=100, years=25, survival_adult=0.95, mean_dispersal_cost_female_m=300,
    ...                      mean_dispersal_cost_male_m=1000, max_dispersal_cost_m=3000, mate_search_cost_m=500)
    >>> res = simulate_site(terr, np.ones(g.shape), site, params=p)
    >>> 0.5 < res.persistence_at(25) <= 1
    True
    >>> int(np.median(res.adults[:, 25])) > 6
    True
    """
    p = SimulationParams() if params is None else params
    if not isinstance(p, SimulationParams):
        raise ConfigError(_expected("params", "a SimulationParams", type(p).__name__))
    landscape = None
    if p.density_limit:
        landscape = TerritoryLandscape.from_territories(
            territories,
            resistance,
            site=site,
            source=source,
            max_cost_m=max(p.max_dispersal_cost_m, p.mate_search_cost_m),
            min_share=min_share,
            within_cost_m=within_cost_m,
            workers=workers,
        )
    return simulate_population(landscape, p, workers=workers)


# --------------------------------------------------------------------------- plot
def plot_trajectories(result: SimulationResult, path: Any = None, *, ax: Any = None, title: str | None = None) -> Any:
    """Median and 5–95 % / 25–75 % bands of adult females and all adults, persistence on a twin axis.

    Parameters
    ----------
    result
        A :class:`SimulationResult`.
    path
        Write the figure here (PNG, 150 dpi) when given; matplotlib axes given
        here are used as ``ax``.
    ax
        Draw into these matplotlib axes; default: a new figure (Agg canvas, no pyplot state).
    title
        Axes title (default: runs and persistence at 25 / 50 years).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if path is not None and hasattr(path, "fill_between"):  # axes passed positionally
        ax, path = path, None
    if ax is None:
        fig = Figure(figsize=(7, 4.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    years = result.years
    for what, colour, label in (("adults", "tab:blue", "all adults"), ("adult_females", "tab:red", "adult females")):
        qt = result.quantiles(what)
        ax.fill_between(years, qt["q5"], qt["q95"], color=colour, alpha=0.15, linewidth=0)
        ax.fill_between(years, qt["q25"], qt["q75"], color=colour, alpha=0.3, linewidth=0)
        ax.plot(years, qt["q50"], color=colour, label=f"{label} (median, 50 % and 90 % bands)")
    ax.set_xlabel("years after release")
    ax.set_ylabel("animals (site's side)")
    ax.set_xlim(0, years[-1])
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(years, result.persistence, color="black", linestyle="--", label="persistence")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("probability of persistence")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    if title is None:
        parts = [f"{result.adults.shape[0]} runs"]
        for y in (25, 50):
            if y < result.adults.shape[1]:
                parts.append(f"P(persist {y} y) = {result.persistence_at(y):.2f}")
        title = ", ".join(parts)
    ax.set_title(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig
