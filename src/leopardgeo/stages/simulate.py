r"""Individual-based, spatially explicit population simulation of a released leopard population.

A population viability analysis (PVA) in the style of Vortex (Lacy 2000,
*Ecological Bulletins* 48:191–203) and of the individual-based tiger models of
Carroll & Miquelle (2006, *J. Appl. Ecol.* 43:1056–1068), run on the
territories of :func:`leopardgeo.stages.territories.pack_territories`: every animal
is tracked with its age, sex, territory (or none), mother, neutral diploid
genotype and pedigree inbreeding coefficient, in yearly steps.  The compiled
kernel is :mod:`leopardgeo.kernels.popkernel`, the landscape
:mod:`leopardgeo.stages.poplandscape`, the founder spectra and the reference
formulas :mod:`leopardgeo.kernels.genetics`.

The yearly cycle (census after the births, so year 0 counts the founders):

1. **Survival** by age class at the start of the year: cub (age 0), juvenile
   (1), subadult (2), adult (>= 3; males may have their own rate); an adult
   without a territory (a *floater*) survives with the floater rate.  Each
   rate moves with the year's environmental variation and catastrophes (per
   side of the landscape), independent animals also face ``poaching_rate``,
   a cub's survival is × :math:`e^{-B F}` (inbreeding depression, lethal
   equivalents B, F its pedigree inbreeding) and a cub homozygous at a lethal
   locus dies (optional purging); an animal reaching ``max_age`` dies.  With
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
   The father is drawn among the males within reach (per litter, or per cub
   with ``multiple_paternity``); each cub inherits one allele of each parent
   at every locus, and its inbreeding coefficient is its parents' kinship.
6. **Census**, with the genetic census of the independent animals:
   expected heterozygosity, allelic richness, mean inbreeding, F_ST between
   the site's and the source's side.

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

Defaults and their sources (assumptions are labelled; the genetic defaults --
12 loci, wild heterozygosity 0.33, 6.29 lethal equivalents, maximum age 20 --
are sourced in ``docs/parameters.md``):

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

import numbers
import time
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.executor import current_executor
from leopardgeo.kernels import popkernel as pk
from leopardgeo.stages.poplandscape import OTHER, SITE, SOURCE, TerritoryLandscape, _expected
from leopardgeo.stages.population_model import (  # the parameters and the result, re-exported
    _AGE,
    _ALIVE,
    _GEN_ROWS,
    _ORIGIN,
    _ROWS,
    _SEX,
    _TERR,
    HORIZONS,
    QUANTILES,
    SimulationParams,
    SimulationResult,
    leslie_lambda,
    leslie_matrix,
)

__all__ = [
    "HORIZONS",
    "OTHER",
    "QUANTILES",
    "SITE",
    "SOURCE",
    "SimulationParams",
    "SimulationResult",
    "TerritoryLandscape",
    "leslie_lambda",
    "leslie_matrix",
    "plot_genetics",
    "plot_trajectories",
    "simulate_corridors",
    "simulate_individuals",
    "simulate_population",
    "simulate_site",
    "simulate_site_corridors",
]

# --------------------------------------------------------------------------- entry point
def _kernel_args(landscape: TerritoryLandscape | None, p: SimulationParams) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Check the inputs and return the arguments of :func:`leopardgeo.kernels.popkernel._simulate_run` after ``rng``."""
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
    if not spatial and p.translocations:
        raise ConfigError(
            _expected("translocations", "none without a density limit (there is no source population)", p.translocations)
        )
    if not spatial and p.carrying_capacity is None:
        n0 = sum(nf + nm for _, nf, nm in p.releases())
        grow = leslie_lambda(p)
        if n0 * grow ** min(p.years, 400) > 5e6:
            raise ConfigError(
                _expected(
                    "carrying_capacity",
                    "a ceiling for a non-spatial run that would otherwise grow past millions of animals",
                    None,
                    f"The stage matrix grows by {grow:.3f} a year; {n0} animals become about {n0 * grow ** p.years:.3g} in "
                    f"{p.years} years. Set carrying_capacity or fewer years.",
                )
            )
    if spatial and p.carrying_capacity is not None:
        raise ConfigError(
            _expected(
                "carrying_capacity",
                "None with a density limit (the territories are the ceiling)",
                p.carrying_capacity,
                "Set density_limit = false for a non-spatial run with a ceiling.",
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
        if p.translocations and landscape.source_origin < 0:
            raise ConfigError(_expected("translocations", "a landscape with a source population", "no source"))
        ls = landscape
        arrays = (
            ls.ff_ptr, ls.ff_index, ls.ff_cost, ls.fm_ptr, ls.fm_index, ls.fm_cost,
            ls.female_region, ls.male_region, ls.female_side, ls.male_side, ls.site_female_order, ls.site_male_order,
            np.asarray(ls.source_female_order, dtype=np.int64), np.asarray(ls.source_male_order, dtype=np.int64),
        )  # fmt: skip
        origin, src_origin = ls.release_origin, ls.source_origin
        summary = ls.summary()
    else:
        z = np.zeros(1, dtype=np.int64)
        e = np.zeros(0, dtype=np.int64)
        arrays = (z, e, np.zeros(0), z, e, np.zeros(0), e, e, e, e, e, e, e, e)
        origin, src_origin = -1, -1
        summary = {}
    surv = np.array(
        [p.survival_cub, p.survival_juvenile, p.survival_subadult, p.survival_adult, p.adult_male_survival, p.floater_survival],
        dtype=np.float64,
    )
    litter_cum = np.cumsum(np.asarray(p.litter_probabilities, dtype=np.float64))
    litter_cum[-1] = 1.0
    kind0 = 0 if p.founder_origin == "wild" else 1
    rel = [
        (y, s, p.founder_age, kind0 if k == 0 else 1)
        for k, (y, nf, nm) in enumerate(p.releases())
        for s, cnt in ((0, nf), (1, nm))
        for _ in range(cnt)
    ]
    rel_arr = np.array(rel, dtype=np.int64).reshape(-1, 4)
    tr = [
        (int(y), s, 0 if d == "to_site" else 1)
        for y, nf, nm, d in p.translocations
        for s, cnt in ((0, nf), (1, nm))
        for _ in range(int(cnt))
    ]
    tr_arr = np.array(tr, dtype=np.int64).reshape(-1, 3)
    mean_disp = np.array([p.mean_dispersal_cost_female_m, p.mean_dispersal_cost_male_m], dtype=np.float64)
    n_loci = p.neutral_loci if p.genetics else 0

    def cum(f: np.ndarray) -> np.ndarray:
        c = np.cumsum(f, axis=1)
        c[:, -1] = 1.0
        return np.ascontiguousarray(c)

    wild = cum(p.wild_spectrum()) if n_loci else np.ones((1, 1))
    capt = cum(p.captive_spectrum()) if n_loci else np.ones((1, 1))
    ipar = np.zeros(pk.I_N, dtype=np.int64)
    ipar[pk.I_YEARS] = p.years
    ipar[pk.I_SPATIAL] = int(spatial)
    ipar[pk.I_ORIGIN] = origin
    ipar[pk.I_FIRST_BREED] = p.first_breeding_age
    ipar[pk.I_INDEP] = p.independence_age
    ipar[pk.I_DISPERSE] = int(p.disperse)
    ipar[pk.I_FLOATERS] = int(p.floaters)
    ipar[pk.I_CUBS_DIE] = int(p.cubs_die_with_mother)
    ipar[pk.I_LOCI] = n_loci
    ipar[pk.I_LETHAL] = p.lethal_loci
    ipar[pk.I_MAX_AGE] = 0 if p.max_age is None else p.max_age
    ipar[pk.I_K] = 0 if p.carrying_capacity is None else p.carrying_capacity
    ipar[pk.I_MULTI_PAT] = int(p.multiple_paternity)
    ipar[pk.I_SRC_ORIGIN] = src_origin
    ipar[pk.I_MAX_PEDIGREE] = p.max_pedigree if p.genetics else 0
    fpar = np.zeros(pk.F_N, dtype=np.float64)
    fpar[pk.F_SOURCE_FILL] = p.source_fill
    fpar[pk.F_P_BREED] = p.breeding_probability
    fpar[pk.F_FEMALE_SHARE] = p.female_share
    fpar[pk.F_MAX_DISP] = p.max_dispersal_cost_m
    fpar[pk.F_MATE_REACH] = p.mate_search_cost_m
    fpar[pk.F_B] = p.neutral_lethal_equivalents
    fpar[pk.F_EV_S] = p.ev_survival_sd
    fpar[pk.F_EV_B] = p.ev_breeding_sd
    fpar[pk.F_EV_RHO] = p.ev_correlation
    fpar[pk.F_POACH] = p.poaching_rate
    cat = np.array([list(map(float, c)) for c in p.catastrophes], dtype=np.float64).reshape(-1, 3)
    args = (
        ipar, fpar, *arrays, surv, litter_cum, mean_disp,
        np.ascontiguousarray(rel_arr[:, 0]), np.ascontiguousarray(rel_arr[:, 1]), np.ascontiguousarray(rel_arr[:, 2]),
        np.ascontiguousarray(rel_arr[:, 3]), wild, capt, cat,
        np.ascontiguousarray(tr_arr[:, 0]), np.ascontiguousarray(tr_arr[:, 1]), np.ascontiguousarray(tr_arr[:, 2]),
    )  # fmt: skip
    return args, summary


def _rngs(seed: np.random.SeedSequence) -> tuple[np.random.Generator, np.random.Generator]:
    """The demographic and the genetic random streams of one run (the genetic one from a child of its seed)."""
    genetic = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 0xD1A))
    return np.random.default_rng(seed), np.random.default_rng(genetic)


def _pedigree_error(p: SimulationParams) -> DataError:
    msg = (
        f"pedigree: expected at most max_pedigree = {p.max_pedigree} animals on the site's side at once, found more. "
        "Raise max_pedigree (memory grows with its square), set a carrying_capacity (without a density limit) "
        "or genetics = false."
    )
    return DataError(msg)


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
    _, _, ctr, st, finb = pk._simulate_run(*_rngs(seed), *args)
    if ctr[pk.C_STATUS]:
        raise _pedigree_error(params)
    alive = st[:, _ALIVE] == 1
    st = st[alive]
    finb = finb[alive]
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
            "id": st[:, pk._ID],
            "inbreeding": finb,
        }
    )


def _one_run(shared: Any, seed_seq: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One replicate run of the kernel (a task of the executor)."""
    t, g, c, _, _ = pk._simulate_run(*_rngs(seed_seq), *shared.get())
    return t, g, c


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
        Threads running the replicates (default: the run's executor, see
        :func:`leopardgeo.core.executor.current_executor`).  Run ``r``
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
        If the landscape's distances were kept to less than the dispersal or
        mate-search cost, or the pedigree outgrows ``max_pedigree``.

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
    n_years = p.years + 1
    traj = np.zeros((p.n_runs, len(_ROWS), n_years), dtype=np.int64)
    gen = np.full((p.n_runs, len(_GEN_ROWS), n_years), np.nan)
    ctrs = np.zeros((p.n_runs, pk.C_N), dtype=np.int64)
    ex = current_executor(None if workers is None else int(workers))
    shared = ex.share(args)
    # run r draws from SeedSequence(p.seed).spawn(n_runs)[r] on every executor
    for r, (t, g, c) in enumerate(ex.map(_one_run, [shared] * p.n_runs, seed=p.seed, label="simulation")):
        traj[r] = t
        gen[r] = g
        ctrs[r] = c
    if ctrs[:, pk.C_STATUS].any():
        raise _pedigree_error(p)
    rows = {name: traj[:, k, :] for k, name in enumerate(_ROWS)}
    genetic: dict[str, Any] = {}
    if p.genetics and p.neutral_loci > 0:
        genetic = {name: gen[:, k, :] for k, name in enumerate(_GEN_ROWS)}
    elif p.genetics:
        genetic = {"inbreeding": gen[:, _GEN_ROWS.index("inbreeding"), :]}
    with np.errstate(invalid="ignore", divide="ignore"):
        gen_years = np.where(ctrs[:, pk.C_PARENTS] > 0, ctrs[:, pk.C_PARENT_AGE_SUM] / ctrs[:, pk.C_PARENTS], np.nan)
    return SimulationResult(
        params=p,
        **rows,
        to_source=ctrs[:, pk.C_TO_SOURCE].copy(),
        from_source=ctrs[:, pk.C_FROM_SOURCE].copy(),
        **genetic,
        generation_years=gen_years,
        lethal_deaths=ctrs[:, pk.C_LETHAL_DEATHS].copy(),
        site_catastrophes=ctrs[:, pk.C_CATASTROPHES_SITE].copy(),
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


def simulate_corridors(
    landscape: TerritoryLandscape,
    params: SimulationParams | None = None,
    *,
    scenario: TerritoryLandscape | np.ndarray | None = None,
    workers: int | None = None,
) -> dict[str, SimulationResult]:
    """The same site simulated with today's corridor, with no corridor and, if given, with a scenario's corridor.

    Parameters
    ----------
    landscape
        Today's landscape (site and source placed).
    scenario
        The corridor of a scenario: a resistance raster on the territories'
        grid (distances searched again, :meth:`TerritoryLandscape.with_resistance`)
        or a ready :class:`TerritoryLandscape` of the same territories (e.g.
        one whose distance table was edited).

    Returns
    -------
    dict
        ``{"today": ..., "no_corridor": ..., ["scenario": ...]}``, every run
        with the same seeds, so the differences are the corridor's.

    Raises
    ------
    ConfigError
        If ``scenario`` is neither a raster nor a landscape of the same territories.
    """
    p = SimulationParams() if params is None else params
    out = {
        "today": simulate_population(landscape, p, workers=workers),
        "no_corridor": simulate_population(landscape.without_corridor(), p, workers=workers),
    }
    if scenario is not None:
        if isinstance(scenario, TerritoryLandscape):
            if scenario.n_female != landscape.n_female or scenario.n_male != landscape.n_male:
                raise ConfigError(
                    _expected(
                        "scenario",
                        f"a landscape of the same {landscape.n_female} female and {landscape.n_male} male territories",
                        f"{scenario.n_female} and {scenario.n_male}",
                    )
                )
            ls = scenario
        elif isinstance(scenario, np.ndarray):
            ls = landscape.with_resistance(scenario, workers=workers)
        else:
            raise ConfigError(_expected("scenario", "a resistance raster or a TerritoryLandscape", type(scenario).__name__))
        out["scenario"] = simulate_population(ls, p, workers=workers)
    return out


def simulate_site_corridors(
    territories: Any,
    resistance: np.ndarray,
    site: Any,
    source: Any,
    params: SimulationParams | None = None,
    *,
    scenario_resistance: np.ndarray | None = None,
    within_cost_m: float | None = None,
    min_share: float = 0.5,
    workers: int | None = None,
) -> dict[str, SimulationResult]:
    """:func:`simulate_site` for today's corridor, no corridor and a scenario's corridor (one landscape build).

    See :func:`simulate_corridors`; ``scenario_resistance`` is the scenario's
    resistance raster on the territories' grid (None: no scenario).
    """
    p = SimulationParams() if params is None else params
    if not p.density_limit:
        raise ConfigError(_expected("density_limit", "true to compare corridors (a landscape is needed)", False))
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
    return simulate_corridors(landscape, p, scenario=scenario_resistance, workers=workers)


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
    for name, r in result.corridor_results.items():
        _, clabel = _CORRIDOR_STYLE.get(name, ("", name))
        ax.plot(r.years, r.quantiles("adults")["q50"], color="tab:blue", linestyle="-." if name == "scenario" else "--",
                linewidth=1, label=f"all adults, {clabel} (median)")  # fmt: skip
    ax.set_xlabel("years after release")
    ax.set_ylabel("animals (site's side)")
    ax.set_xlim(0, years[-1])
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(years, result.persistence, color="black", linestyle="-", linewidth=0.8, label="persistence")
    for name, r in result.corridor_results.items():
        _, clabel = _CORRIDOR_STYLE.get(name, ("", name))
        ax2.plot(r.years, r.persistence, color="black", linestyle="--", linewidth=0.8, label=f"persistence, {clabel}")
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


_CORRIDOR_STYLE = {"today": ("tab:green", "today's corridor"), "no_corridor": ("tab:gray", "no corridor"),
                   "scenario": ("tab:purple", "scenario corridor")}  # fmt: skip


def plot_genetics(result: SimulationResult, path: Any = None, *, ax: Any = None, title: str | None = None) -> Any:
    """Heterozygosity retained (median, 5–95 % band) and median inbreeding per corridor compared.

    One line per corridor of ``result`` (today) and of its
    ``corridor_results`` (no corridor, a scenario's corridor), over the runs
    that still persist each year.  Arguments as :func:`plot_trajectories`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(7, 4.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    ax2 = ax.twinx()
    for name, r in {"today": result, **result.corridor_results}.items():
        colour, label = _CORRIDOR_STYLE.get(name, ("tab:orange", name))
        qt = r.quantiles("heterozygosity_retained")
        ax.fill_between(r.years, qt["q5"], qt["q95"], color=colour, alpha=0.12, linewidth=0)
        ax.plot(r.years, qt["q50"], color=colour, label=f"H retained, {label} (median, 90 % band)")
        fq = r.quantiles("inbreeding")
        ax2.plot(r.years, fq["q50"], color=colour, linestyle=":", label=f"inbreeding F, {label} (median)")
    thr = result.params.inbreeding_threshold
    ax2.axhline(thr, color="black", linewidth=0.6, linestyle="--", label=f"F threshold {thr:g}")
    ax.set_xlabel("years after release")
    ax.set_ylabel("heterozygosity retained (H_t / H_0)")
    ax.set_ylim(0, 1.3)
    ax.set_xlim(0, result.years[-1])
    ax2.set_ylim(0, max(0.5, thr * 2))
    ax2.set_ylabel("mean pedigree inbreeding F")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7, frameon=False)
    ax.set_title(title or "Genetics (modelled)", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig
