"""The population simulation's parameters (with their checks and the Leslie matrix) and its result.

Re-exported by :mod:`leopardgeo.stages.simulate`, whose module docstring gives the model, the parameter
values and their sources.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.core.errors import ConfigError
from leopardgeo.kernels import popkernel as pk
from leopardgeo.kernels.genetics import spectrum, spectrum_from_heterozygosity
from leopardgeo.stages.poplandscape import _check_cost, _expected

__all__ = [
    "HORIZONS",
    "QUANTILES",
    "SimulationParams",
    "SimulationResult",
    "leslie_lambda",
    "leslie_matrix",
]

#: Quantiles (percent) of the trajectories reported by :meth:`SimulationResult.quantiles`.
QUANTILES = (5, 25, 50, 75, 95)
#: Years at which the summaries report persistence, population and genetics.
HORIZONS = (25, 50, 100)

_ROWS = pk.ROWS
_GEN_ROWS = pk.GEN_ROWS
_AGE, _SEX, _TERR, _ORIGIN, _ALIVE = pk._AGE, pk._SEX, pk._TERR, pk._ORIGIN, pk._ALIVE


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
    founder_origin: str = "wild"
    supplementation: tuple[tuple[int, int, int], ...] = ()
    translocations: tuple[tuple[int, int, int, str], ...] = ()
    survival_cub: float = 0.7
    survival_juvenile: float = 0.9
    survival_subadult: float = 0.75
    survival_adult: float = 0.82
    survival_adult_male: float | None = None
    survival_floater: float | None = None
    cubs_die_with_mother: bool = True
    first_breeding_age: int = 3
    independence_age: int = 2
    max_age: int | None = 20
    breeding_probability: float = 0.9
    litter_probabilities: tuple[float, ...] = (0.25, 0.5, 0.25)
    female_share: float = 0.5
    multiple_paternity: bool = False
    poaching_rate: float = 0.0
    ev_survival_sd: float = 0.0
    ev_breeding_sd: float = 0.0
    ev_correlation: float = 0.5
    catastrophes: tuple[tuple[float, float, float], ...] = ()
    carrying_capacity: int | None = None
    mean_dispersal_cost_female_m: float = 2700.0
    mean_dispersal_cost_male_m: float = 11000.0
    max_dispersal_cost_m: float = 50000.0
    mate_search_cost_m: float = 10000.0
    disperse: bool = True
    floaters: bool = True
    density_limit: bool = True
    source_fill: float = 1.0
    genetics: bool = True
    neutral_loci: int = 12
    wild_heterozygosity: float = 0.33
    wild_alleles_per_locus: int = 4
    wild_allele_frequencies: tuple[Any, ...] | None = None
    captive_heterozygosity: float = 0.6
    captive_alleles_per_locus: int = 6
    captive_allele_frequencies: tuple[Any, ...] | None = None
    lethal_equivalents: float = 6.29
    lethal_share: float = 0.0
    inbreeding_threshold: float = 0.125
    max_pedigree: int = 3000

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

    @property
    def lethal_loci(self) -> int:
        """Lethal loci per animal (purging): ``round(lethal_equivalents × lethal_share)`` when genetics is on."""
        return round(self.lethal_equivalents * self.lethal_share) if self.genetics else 0

    @property
    def neutral_lethal_equivalents(self) -> float:
        """Lethal equivalents acting as exp(-B F) on first-year survival (the part not modelled as lethal loci)."""
        return float(self.lethal_equivalents - self.lethal_loci) if self.genetics else 0.0

    def wild_spectrum(self) -> np.ndarray:
        """Allele frequencies of wild-born founders, (neutral_loci, alleles)."""
        if self.wild_allele_frequencies is not None:
            return spectrum(self.wild_allele_frequencies, n_loci=self.neutral_loci, name="wild_allele_frequencies")
        return spectrum_from_heterozygosity(
            self.wild_heterozygosity, n_alleles=self.wild_alleles_per_locus, n_loci=self.neutral_loci
        )

    def captive_spectrum(self) -> np.ndarray:
        """Allele frequencies of captive-bred founders (supplementation, and founders if ``founder_origin='captive'``)."""
        if self.captive_allele_frequencies is not None:
            return spectrum(self.captive_allele_frequencies, n_loci=self.neutral_loci, name="captive_allele_frequencies")
        return spectrum_from_heterozygosity(
            self.captive_heterozygosity, n_alleles=self.captive_alleles_per_locus, n_loci=self.neutral_loci
        )


def _check_int(p: SimulationParams, name: str, minimum: int) -> None:
    v = getattr(p, name)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < minimum:
        raise ConfigError(_expected(name, f"a whole number >= {minimum}", v))


def _check_prob(name: str, v: object) -> None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0
    if not ok:
        raise ConfigError(_expected(name, "a probability from 0 to 1", v))


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
        ("neutral_loci", 0),
        ("wild_alleles_per_locus", 1),
        ("captive_alleles_per_locus", 1),
        ("max_pedigree", 1),
    ):
        _check_int(p, name, minimum)
    for name, minimum in (("max_age", 1), ("carrying_capacity", 1)):
        if getattr(p, name) is not None:
            _check_int(p, name, minimum)
    if p.max_age is not None and p.max_age < p.first_breeding_age:
        raise ConfigError(_expected("max_age", f"at least first_breeding_age = {p.first_breeding_age}", p.max_age))
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
        "poaching_rate",
        "lethal_share",
        "inbreeding_threshold",
    ):
        _check_prob(name, getattr(p, name))
    for name in ("ev_survival_sd", "ev_breeding_sd", "lethal_equivalents"):
        v = getattr(p, name)
        if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= float(v) and math.isfinite(float(v))):
            raise ConfigError(_expected(name, "a finite number >= 0", v))
    v = p.ev_correlation
    if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and -1 <= float(v) <= 1):
        raise ConfigError(_expected("ev_correlation", "a correlation from -1 to 1", v))
    if p.founder_origin not in ("wild", "captive"):
        raise ConfigError(_expected("founder_origin", "'wild' or 'captive'", p.founder_origin))
    for i, c in enumerate(p.catastrophes):
        ok = isinstance(c, Sequence) and len(c) == 3 and all(
            isinstance(x, numbers.Real) and not isinstance(x, bool) and 0 <= float(x) <= 1 for x in c
        )
        if not ok:
            raise ConfigError(
                _expected(f"catastrophes[{i}]", "(yearly probability, survival severity, breeding severity), each 0 to 1", c)
            )
    for i, r in enumerate(p.translocations):
        ok = (
            isinstance(r, Sequence)
            and len(r) == 4
            and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and int(x) >= 0 for x in r[:3])
            and 0 <= int(r[0]) <= p.years
            and r[3] in ("to_site", "to_source")
        )
        if not ok:
            raise ConfigError(
                _expected(
                    f"translocations[{i}]",
                    f"(year, females, males, 'to_site' or 'to_source'), a year from 0 to years = {p.years}",
                    r,
                )
            )
    if p.genetics and p.neutral_loci > 0:
        p.wild_spectrum()
        p.captive_spectrum()
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
    for name in ("cubs_die_with_mother", "disperse", "floaters", "density_limit", "genetics", "multiple_paternity"):
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


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class SimulationResult:
    r"""Trajectories of every run and their summaries.

    The simulated population is every animal on the site's side of the
    landscape (see the module docstring).  Arrays of shape (n_runs, years + 1) count it at
    each census (year 0 = after the founders' release): ``adult_females``,
    ``adult_males``, ``adults`` (age >= first_breeding_age), ``total`` (all
    ages), ``females``, ``males`` (all ages); ``source_adults`` counts adults on
    the source's side.  ``to_source`` / ``from_source`` (n_runs,) count the
    dispersers that settled on the source's side coming from the site's side,
    and the reverse.  ``persistence[t]`` is the share of runs in which
    the population held a female and a male at every census up to year t.

    Genetics (float arrays (n_runs, years + 1), NaN where there is no
    independent animal to measure): ``heterozygosity`` (expected, :math:`1 -
    \\sum p^2` averaged over the neutral loci, of the independent animals on
    the site's side), ``allelic_richness`` (alleles present per locus, not
    rarefied), ``inbreeding`` (mean pedigree inbreeding coefficient of the
    independent animals on the site's side), ``fst`` (Nei's
    :math:`(H_T - H_S)/H_T` between the site's and the source's side) and
    ``source_heterozygosity``.  ``generation_years`` (n_runs,) is the mean
    age of the parents at the births of the run; ``lethal_deaths`` counts
    cubs killed by a homozygous lethal (purging).  ``corridor_results``
    holds the same site simulated with other corridors (``no_corridor``,
    ``scenario``; see :func:`simulate_corridors`), when compared.
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
    heterozygosity: np.ndarray | None = None
    allelic_richness: np.ndarray | None = None
    inbreeding: np.ndarray | None = None
    fst: np.ndarray | None = None
    source_heterozygosity: np.ndarray | None = None
    generation_years: np.ndarray | None = None
    lethal_deaths: np.ndarray | None = None
    site_catastrophes: np.ndarray | None = None
    elapsed_s: float = 0.0
    landscape_summary: dict[str, Any] = field(default_factory=dict)
    corridor_results: dict[str, SimulationResult] = field(default_factory=dict)

    @property
    def years(self) -> np.ndarray:
        """Census years 0 .. years."""
        return np.arange(self.adults.shape[1])

    @property
    def persistence(self) -> np.ndarray:
        """Share of runs with at least one female and one male at every census up to each year."""
        return self.persisting.mean(axis=0)

    @property
    def persisting(self) -> np.ndarray:
        """(n_runs, years + 1): True while the run's population has held a female and a male at every census."""
        alive = (self.females > 0) & (self.males > 0)
        return np.logical_and.accumulate(alive, axis=1)

    @property
    def heterozygosity_retained(self) -> np.ndarray:
        """Heterozygosity of each run relative to its founders' (year 0); NaN where not measurable."""
        if self.heterozygosity is None:
            return np.full(self.adults.shape, np.nan)
        h0 = self.heterozygosity[:, :1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(h0 > 0, self.heterozygosity / h0, np.nan)

    def persistence_at(self, year: int) -> float:
        """Probability of persistence to ``year`` (0 .. years)."""
        if isinstance(year, bool) or not isinstance(year, numbers.Integral) or not 0 <= int(year) < self.adults.shape[1]:
            raise ConfigError(_expected("year", f"a whole number from 0 to {self.adults.shape[1] - 1}", year))
        return float(self.persistence[int(year)])

    def quantiles(self, what: str = "adults", q: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Quantiles (percent) of a trajectory per year: rows = years, columns = ``q``.

        Genetic trajectories (``heterozygosity``, ``heterozygosity_retained``,
        ``inbreeding``, ...) are taken over the runs that still persist that year.
        """
        gen = (*_GEN_ROWS, "heterozygosity_retained")
        if what not in _ROWS and what not in gen:
            raise ConfigError(_expected("what", f"one of {list(_ROWS) + list(gen)}", what))
        arr = getattr(self, what)
        if what in gen:
            arr = np.where(self.persisting, arr, np.nan) if arr is not None else np.full(self.adults.shape, np.nan)
            vals = np.full((arr.shape[1], len(q)), np.nan)
            ok = ~np.all(np.isnan(arr), axis=0)
            if ok.any():
                vals[ok] = np.nanpercentile(arr[:, ok], list(q), axis=0).T
        else:
            vals = np.percentile(arr, list(q), axis=0).T
        return pd.DataFrame(vals, index=pd.Index(self.years, name="year"), columns=[f"q{x:g}" for x in q])

    def first_year_inbred(self, threshold: float | None = None) -> np.ndarray:
        """Per run, the first year whose mean inbreeding reached ``threshold`` (default: the params'); NaN if never."""
        thr = self.params.inbreeding_threshold if threshold is None else float(threshold)
        out = np.full(self.adults.shape[0], np.nan)
        if self.inbreeding is None:
            return out
        hit = np.nan_to_num(self.inbreeding, nan=-1.0) >= thr
        any_hit = hit.any(axis=1)
        out[any_hit] = hit[any_hit].argmax(axis=1)
        return out

    def horizon(self, year: int) -> dict[str, Any]:
        """Persistence, adults and genetics at one year: medians with 5-95 % intervals over the runs."""

        def band(arr: np.ndarray | None, persisting_only: bool) -> dict[str, float | None]:
            if arr is None:
                return {"median": None, "q5": None, "q95": None}
            col = arr[:, year].astype(np.float64)
            if persisting_only:
                col = col[self.persisting[:, year]]
            col = col[np.isfinite(col)]
            if col.size == 0:
                return {"median": None, "q5": None, "q95": None}
            q5, q50, q95 = np.percentile(col, [5, 50, 95])
            return {"median": float(q50), "q5": float(q5), "q95": float(q95)}

        return {
            "year": int(year),
            "persistence": self.persistence_at(year),
            "adults": band(self.adults, False),
            "adults_if_persisting": band(self.adults, True),
            "heterozygosity": band(self.heterozygosity, True),
            "heterozygosity_retained": band(self.heterozygosity_retained, True),
            "inbreeding": band(self.inbreeding, True),
            "fst": band(self.fst, True),
        }

    def genetics_summary(self) -> dict[str, Any]:
        """Inbreeding threshold, generation time and migrants per generation across the corridor."""
        p = self.params
        n_years = self.adults.shape[1] - 1
        first = self.first_year_inbred()
        gen = self.generation_years
        t_gen = float(np.nanmean(gen)) if gen is not None and np.isfinite(gen).any() else math.nan
        to_y = float(self.to_source.mean()) / n_years
        from_y = float(self.from_source.mean()) / n_years
        reached = np.isfinite(first)
        return {
            "neutral_loci": p.neutral_loci if p.genetics else 0,
            "founder_heterozygosity_median": _nanmedian(self.heterozygosity[:, 0]) if self.heterozygosity is not None else None,
            "inbreeding_threshold": p.inbreeding_threshold,
            "runs_reaching_threshold": float(reached.mean()),
            "first_year_over_threshold_median": float(np.median(first[reached])) if reached.any() else None,
            "generation_years": None if not math.isfinite(t_gen) else t_gen,
            "migrants_per_year_to_source": to_y,
            "migrants_per_year_from_source": from_y,
            "migrants_per_generation": None if not math.isfinite(t_gen) else (to_y + from_y) * t_gen,
            "migrants_per_generation_from_source": None if not math.isfinite(t_gen) else from_y * t_gen,
            "lethal_deaths_mean": float(self.lethal_deaths.mean()) if self.lethal_deaths is not None else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: parameters, persistence, quantile trajectories, genetics (no timings: reproducible)."""
        p = self.params
        params = asdict(p)
        for k in ("supplementation", "translocations", "catastrophes", "litter_probabilities"):
            params[k] = [list(r) if isinstance(r, tuple | list) else r for r in getattr(p, k)]
        for k in ("wild_allele_frequencies", "captive_allele_frequencies"):
            v = getattr(p, k)
            params[k] = None if v is None else np.asarray(v, dtype=float).tolist()
        horizon = {str(y): self.persistence_at(y) for y in HORIZONS if y <= p.years}
        traj = {}
        for what in ("adult_females", "adults", "total", "heterozygosity_retained", "inbreeding"):
            qt = self.quantiles(what)
            traj[what] = {col: [_num(v) for v in qt[col]] for col in qt.columns}
            if what in _ROWS:
                traj[what]["mean"] = [float(v) for v in getattr(self, what).mean(axis=0)]
        return {
            "n_runs": int(self.adults.shape[0]),
            "years": int(self.adults.shape[1] - 1),
            "persistence_25y": horizon.get("25"),
            "persistence_50y": horizon.get("50"),
            "persistence_100y": horizon.get("100"),
            "persistence": horizon,
            "persistence_by_year": [float(v) for v in self.persistence],
            "final_adults_median": float(np.median(self.adults[:, -1])),
            "horizons": {str(y): self.horizon(y) for y in HORIZONS if y <= p.years},
            "genetics": self.genetics_summary(),
            "trajectories": traj,
            "dispersers": {
                "to_source_mean": float(self.to_source.mean()),
                "from_source_mean": float(self.from_source.mean()),
                "to_source_share_runs": float((self.to_source > 0).mean()),
                "from_source_share_runs": float((self.from_source > 0).mean()),
            },
            "leslie_lambda": leslie_lambda(p),
            "landscape": self.landscape_summary,
            "params": params,
            "corridors": {
                name: {k: v for k, v in r.to_dict().items() if k not in ("params", "corridors", "persistence_by_year")}
                for name, r in self.corridor_results.items()
            },
        }

    def table(self) -> pd.DataFrame:
        """One row per corridor (``today`` first, then the compared ones): persistence, adults and genetics at 25, 50, 100 years.

        Medians with 5-95 % intervals over the runs (genetics over the runs
        that persist); the report's sites section shows it.
        """
        rows = []
        for name, r in {"today": self, **self.corridor_results}.items():
            row: dict[str, Any] = {"corridor": name}
            for y in HORIZONS:
                if y > r.params.years:
                    continue
                h = r.horizon(y)
                row[f"persistence_{y}y"] = h["persistence"]
                row[f"adults_{y}y"] = h["adults"]["median"]
                row[f"adults_{y}y_q5"] = h["adults"]["q5"]
                row[f"adults_{y}y_q95"] = h["adults"]["q95"]
                row[f"het_retained_{y}y"] = h["heterozygosity_retained"]["median"]
                row[f"het_retained_{y}y_q5"] = h["heterozygosity_retained"]["q5"]
                row[f"het_retained_{y}y_q95"] = h["heterozygosity_retained"]["q95"]
                row[f"inbreeding_{y}y"] = h["inbreeding"]["median"]
            g = r.genetics_summary()
            row["first_year_inbred_median"] = g["first_year_over_threshold_median"]
            row["runs_inbred_share"] = g["runs_reaching_threshold"]
            row["migrants_per_generation"] = g["migrants_per_generation"]
            rows.append(row)
        return pd.DataFrame(rows)


def _num(v: float) -> float | None:
    return None if not math.isfinite(float(v)) else float(v)


def _nanmedian(a: np.ndarray) -> float | None:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None
