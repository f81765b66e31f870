"""Genetics of the population simulation against population-genetics theory.

Each test sets the individual-based model up so that a textbook result holds
(an ideal population, an island model, a scalar growth rate) and compares
with the formula, within Monte Carlo error.  The formulas are written out
here (and in :mod:`leopardgeo.kernels.genetics`); none is fitted to the model.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.kernels.genetics import (
    expected_heterozygosity_decay,
    island_fst,
    island_fst_trajectory,
    ne_family_size,
    ne_sex_ratio,
    spectrum_from_heterozygosity,
)
from leopardgeo.stages.simulate import SimulationParams, TerritoryLandscape, simulate_individuals, simulate_population

# Discrete generations: every animal breeds at age 1 and dies the next year; cubs all survive the year.
GENERATIONS = {
    "first_breeding_age": 1,
    "independence_age": 1,
    "founder_age": 0,
    "survival_cub": 1.0,
    "survival_adult": 0.0,
    "cubs_die_with_mother": False,
    "breeding_probability": 1.0,
    "max_age": None,
    "lethal_equivalents": 0.0,
    "floaters": False,
    "source_fill": 0.0,
    "mean_dispersal_cost_female_m": 1.0,
    "mean_dispersal_cost_male_m": 1.0,
    "max_dispersal_cost_m": 1.0,
    "mate_search_cost_m": 1.0,
}
LITTER = 20  # large litters: the settlers are a near-random sample of many cubs


def panmictic(n_f: int, n_m: int, n_f2: int = 0, n_m2: int = 0) -> TerritoryLandscape:
    """Territories all at cost 0 from each other within a side (one deme per side), none reachable across."""
    side_f = np.array([0] * n_f + [1] * n_f2, dtype=np.int64)
    side_m = np.array([0] * n_m + [1] * n_m2, dtype=np.int64)

    def rows(side_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx, ptr = [], [0]
        for s in side_f:
            cols = np.flatnonzero(side_cols == s)
            idx.extend(cols.tolist())
            ptr.append(len(idx))
        return np.array(ptr, dtype=np.int64), np.array(idx, dtype=np.int64), np.zeros(len(idx))

    ff, fm = rows(side_f), rows(side_m)
    # the female rows must start with the territory itself (cost 0 to itself): rotate each row to start there
    ff_idx = ff[1].copy()
    for i in range(side_f.size):
        a, b = ff[0][i], ff[0][i + 1]
        row = ff_idx[a:b].tolist()
        row.remove(i)
        ff_idx[a:b] = [i, *row]
    f_n, m_n = side_f.size, side_m.size
    return TerritoryLandscape(
        female_ids=np.arange(1, f_n + 1), male_ids=np.arange(1, m_n + 1),
        female_xy=np.zeros((f_n, 2)), male_xy=np.zeros((m_n, 2)),
        female_region=np.where(side_f == 0, 1, 2), male_region=np.where(side_m == 0, 1, 2),
        female_side=side_f, male_side=side_m,
        ff_ptr=ff[0], ff_index=ff_idx, ff_cost=ff[2], fm_ptr=fm[0], fm_index=fm[1], fm_cost=fm[2],
        site_female_order=np.flatnonzero(side_f == 0), site_male_order=np.flatnonzero(side_m == 0),
        release_origin=0, release_xy=(0.0, 0.0), max_cost_m=1.0,
        source_female_order=np.flatnonzero(side_f == 1), source_male_order=np.flatnonzero(side_m == 1),
        source_origin=int(n_f) if n_f2 else -1,
    )  # fmt: skip


def ideal(n_f: int, n_m: int, *, runs: int, years: int, multiple_paternity: bool = True, **kw: object) -> SimulationParams:
    litter = tuple([0.0] * (LITTER - 1) + [1.0])
    return SimulationParams(
        **GENERATIONS, founders_female=n_f, founders_male=n_m, litter_probabilities=litter, n_runs=runs, years=years,
        seed=7, neutral_loci=20, wild_heterozygosity=0.7, wild_alleles_per_locus=6, multiple_paternity=multiple_paternity,
        **kw,
    )  # type: ignore[arg-type]  # fmt: skip


def decay_ne(res, t0: int, t1: int) -> tuple[float, float]:
    """Ne from the decay of the mean heterozygosity between generations t0 and t1, and its standard error."""
    h = res.heterozygosity
    ratio = h[:, t1] / h[:, t0]
    m, se = float(np.mean(ratio)), float(np.std(ratio, ddof=1) / math.sqrt(ratio.size))
    per_gen = m ** (1 / (t1 - t0))
    return 1 / (2 * (1 - per_gen)), se


def hill_ne(n: int, v_male: float, v_female: float) -> float:
    """Ne of a dioecious population of N/2 males and N/2 females, discrete generations (Hill 1979): (8N-4)/(Vm+Vf+4)."""
    return (8 * n - 4) / (v_male + v_female + 4)


def test_heterozygosity_decays_as_in_an_ideal_population() -> None:
    """20 + 20 breeders, each cub of its own random father: H_t = H_1 (1 - 1/(2 Ne))^(t-1)."""
    n_f = n_m = 20
    n = n_f + n_m
    res = simulate_population(panmictic(n_f, n_m), ideal(n_f, n_m, runs=80, years=31))
    assert np.all(res.adults[:, 1:] == n)  # constant size: every territory refilled every generation
    # family sizes: a mother's settled offspring ~ Binomial(LITTER, q), q = N / (n_f LITTER); a father's ~ Binomial(N, 1/n_m)
    q = n / (n_f * LITTER)
    ne = hill_ne(n, n * (1 / n_m) * (1 - 1 / n_m), LITTER * q * (1 - q))
    expected = (1 - 1 / (2 * ne)) ** 30
    ratio = res.heterozygosity[:, 31] / res.heterozygosity[:, 1]
    se = np.std(ratio, ddof=1) / math.sqrt(ratio.size)
    assert float(np.mean(ratio)) == pytest.approx(expected, abs=4 * se)
    assert abs(expected - (1 - 1 / (2 * 0.6 * n)) ** 30) > 6 * se  # a population of Ne = 0.6 N would be told apart


def test_ne_follows_the_demographic_formula() -> None:
    """Sex ratio (Ne = 4 Nm Nf / (Nm + Nf)) and family-size variance (one father per litter lowers Ne)."""
    skewed = simulate_population(panmictic(30, 10), ideal(30, 10, runs=60, years=21))
    ne_skewed, _ = decay_ne(skewed, 1, 21)
    assert ne_skewed == pytest.approx(4 * 10 * 30 / 40, rel=0.12)  # 30, not the census 40
    litters = simulate_population(panmictic(20, 20), ideal(20, 20, runs=60, years=21, multiple_paternity=False))
    ne_litters, _ = decay_ne(litters, 1, 21)
    # one father per litter: a male's offspring = the sum over the litters he sired (Binomial(n_f, 1/n_m) of them)
    q = 40 / (20 * LITTER)
    v_f = LITTER * q * (1 - q)
    k_f = LITTER * q
    v_m = 1.0 * v_f + 20 * (1 / 20) * (1 - 1 / 20) * k_f**2
    assert ne_litters == pytest.approx(hill_ne(40, v_m, v_f), rel=0.12)
    assert ne_litters < 0.8 * 40


def test_island_model_fst() -> None:
    """Two demes of 20 + 20 exchanging one breeder each way every generation: F_ST follows the island model."""
    years = 50
    moves = tuple((y, int(y % 2 == 0), int(y % 2 == 1), d) for y in range(1, years + 1) for d in ("to_site", "to_source"))
    land = panmictic(20, 20, 20, 20)
    # 40 + 40 founders at the site, of which the 20 + 20 that settle are moved to the source at year 0
    p = ideal(40, 40, runs=40, years=years, translocations=((0, 20, 20, "to_source"), *moves))
    res = simulate_population(land, p)
    assert np.all(res.adults[:, 1:] == 40) and np.all(res.source_adults[:, 1:] == 40)
    n = 40
    q = n / (20 * LITTER)
    ne = hill_ne(n, n * (1 / 20) * (1 - 1 / 20), LITTER * q * (1 - q))
    m = 1 / n  # one of the deme's breeders is an immigrant every generation
    theory = island_fst_trajectory(ne, m, years)
    # migrants arrive after the settlement of generation t, so the generation-t census holds them: compare late means
    obs = float(np.nanmean(res.fst[:, 30:]))
    assert obs == pytest.approx(float(np.mean(theory[30:])), rel=0.25)
    assert island_fst(ne, m) == pytest.approx(float(theory[-1]), rel=0.1)  # the equilibrium formula is reached
    no_flow = simulate_population(land, replace(p, translocations=p.translocations[:1]))
    assert float(np.nanmean(no_flow.fst[:, 30:])) > 2.5 * obs  # without migrants the demes drift apart


def test_no_inbreeding_depression_leaves_the_demography_unchanged() -> None:
    """B = 0: the demography of a run is the same, draw for draw, with or without genetics."""
    base = SimulationParams(founders_female=4, founders_male=4, density_limit=False, carrying_capacity=40, n_runs=30,
                            years=40, seed=3, lethal_equivalents=0.0)  # fmt: skip
    with_gen = simulate_population(None, base)
    without = simulate_population(None, replace(base, genetics=False))
    np.testing.assert_array_equal(with_gen.total, without.total)
    assert np.nanmax(with_gen.inbreeding) > 0.1  # inbreeding did build up
    hurt = simulate_population(None, replace(base, lethal_equivalents=6.29))
    assert not np.array_equal(hurt.total, without.total)


@pytest.mark.parametrize("b", [0.0, 6.0])
def test_cub_survival_falls_as_exp_minus_b_f(b: float) -> None:
    """Cubs of the year T - 1, followed to year T: survival s_cub exp(-B F) for each cub's pedigree F."""
    p = SimulationParams(founders_female=3, founders_male=3, density_limit=False, carrying_capacity=60, n_runs=1,
                         years=25, survival_cub=0.8, survival_adult=0.95, survival_juvenile=1.0, cubs_die_with_mother=False,
                         max_age=None, lethal_equivalents=b, neutral_loci=0)  # fmt: skip
    f_all, survived = [], []
    for seed in range(60):
        q = replace(p, seed=seed, years=24)
        before = simulate_individuals(None, q)
        after = simulate_individuals(None, replace(q, years=25))
        cubs = before[before["age"] == 0]
        f_all.append(cubs["inbreeding"].to_numpy())
        survived.append(cubs["id"].isin(after["id"]).to_numpy())
    f = np.concatenate(f_all)
    alive = np.concatenate(survived)
    assert f.max() >= 0.25 and f.size > 300  # many inbred cubs
    expected = 0.8 * np.exp(-b * f)
    # the carrying capacity removes at random after the births: the year's survivors are thinned equally, so compare
    # the ratio of inbred to outbred survival with exp(-B F)
    inbred = f >= 0.2
    ratio_obs = alive[inbred].mean() / alive[~inbred].mean()
    ratio_exp = expected[inbred].mean() / expected[~inbred].mean()
    se = ratio_obs * math.sqrt((1 - alive[inbred].mean()) / max(1, alive[inbred].sum()) +
                               (1 - alive[~inbred].mean()) / max(1, alive[~inbred].sum()))  # fmt: skip
    assert ratio_obs == pytest.approx(ratio_exp, abs=4 * se + 0.02)


def test_purging_lethal_loci_kill_homozygous_cubs() -> None:
    p = SimulationParams(founders_female=3, founders_male=3, density_limit=False, carrying_capacity=40, n_runs=20,
                         years=40, seed=1, lethal_equivalents=6.0, lethal_share=0.5)  # fmt: skip
    assert p.lethal_loci == 3 and p.neutral_lethal_equivalents == 3.0
    res = simulate_population(None, p)
    assert res.lethal_deaths.sum() > 0


def test_catastrophes_lower_the_growth_rate_as_the_stochastic_growth_formula_says() -> None:
    """Every vital rate's matrix entry carries one survival factor, so a catastrophe year multiplies the matrix by
    (1 - s): the long-run growth rate is log(lambda) + p log(1 - s) (Lewontin & Cohen 1969; Caswell 2001 ch. 14),
    not log(lambda (1 - p s)) of the mean matrix."""
    base = SimulationParams(founders_female=1000, founders_male=1000, founder_age=1, first_breeding_age=1,
                            independence_age=1, cubs_die_with_mother=False, max_age=None, density_limit=False,
                            survival_cub=0.5, survival_adult=0.85, breeding_probability=0.45, genetics=False, n_runs=200,
                            years=20, seed=2)  # fmt: skip
    p_cat, sev = 0.15, 0.6
    rates = {}
    for name, cat in (("none", ()), ("cat", ((p_cat, sev, 0.0),))):
        res = simulate_population(None, replace(base, catastrophes=cat))
        f = res.females.astype(float)
        assert f[:, 20].min() > 0  # no run extinct: the growth rate is measured, not the absorbing state
        rates[name] = (np.log(f[:, 20]) - np.log(f[:, 5])) / 15
    diff = float(rates["cat"].mean() - rates["none"].mean())
    se = math.sqrt(rates["cat"].var(ddof=1) / rates["cat"].size + rates["none"].var(ddof=1) / rates["none"].size)
    assert diff == pytest.approx(p_cat * math.log(1 - sev), abs=4 * se)
    assert abs(math.log(1 - p_cat * sev) - p_cat * math.log(1 - sev)) > 5 * se  # the mean-matrix answer is rejected


def test_environmental_variation_correlation_and_poaching() -> None:
    base = SimulationParams(founders_female=50, founders_male=50, density_limit=False, carrying_capacity=400, n_runs=40,
                            years=30, seed=4, genetics=False)  # fmt: skip
    calm = simulate_population(None, base)
    wild = simulate_population(None, replace(base, ev_survival_sd=0.15, ev_breeding_sd=0.2))
    assert np.std(np.diff(np.log(wild.total[:, 5:] + 1), axis=1)) > np.std(np.diff(np.log(calm.total[:, 5:] + 1), axis=1))
    poached = simulate_population(None, replace(base, poaching_rate=0.1))
    assert poached.total[:, -1].mean() < calm.total[:, -1].mean()


def test_genetics_is_seeded_and_independent_of_workers() -> None:
    p = SimulationParams(founders_female=5, founders_male=5, density_limit=False, carrying_capacity=60, n_runs=9, years=30,
                         seed=8)  # fmt: skip
    a = simulate_population(None, p, workers=1)
    b = simulate_population(None, p, workers=3)
    for name in ("total", "heterozygosity", "allelic_richness", "inbreeding"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.to_dict() == b.to_dict()


def test_spectrum_and_bad_genetic_parameters() -> None:
    f = spectrum_from_heterozygosity(0.33, n_alleles=4, n_loci=3)
    assert np.allclose(1 - (f**2).sum(axis=1), 0.33) and np.allclose(f.sum(axis=1), 1)
    with pytest.raises(ConfigError, match="Raise the number of alleles"):
        SimulationParams(wild_heterozygosity=0.8, wild_alleles_per_locus=4)
    with pytest.raises(ConfigError, match="catastrophes"):
        SimulationParams(catastrophes=((0.1, 1.5, 0.0),))
    with pytest.raises(ConfigError, match="translocations"):
        SimulationParams(translocations=((3, 1, 0, "north"),))
    with pytest.raises(ConfigError, match="founder_origin"):
        SimulationParams(founder_origin="zoo")
    with pytest.raises(DataError, match="max_pedigree"):
        simulate_population(None, SimulationParams(density_limit=False, founders_female=300, founders_male=300,
                                                   max_pedigree=400, n_runs=1, years=10))  # fmt: skip


@pytest.mark.parametrize(
    ("call", "found"),
    [(lambda: expected_heterozygosity_decay(0.5, 0.3, 10), "ne: expected a finite number >= 0.5, found 0.3"),
     (lambda: expected_heterozygosity_decay(1.2, 50, 10), "h0: expected a finite number >= 0 and <= 1, found 1.2"),
     (lambda: expected_heterozygosity_decay(0.5, "50", 10), "ne: expected a finite number >= 0.5, found '50'"),
     (lambda: ne_family_size(50, -2.0), "variance_k: expected a finite number >= 0, found -2.0"),
     (lambda: ne_sex_ratio(-1, 3), "n_males: expected a finite number >= 0, found -1"),
     (lambda: island_fst(25, 0.02, n_demes=1), "n_demes: expected a whole number of demes >= 2, found 1"),
     (lambda: island_fst(25, 1.5), "migration_rate: expected a finite number >= 0 and <= 1, found 1.5"),
     (lambda: island_fst_trajectory(25, 0.02, -1), "generations: expected a whole number >= 0, found -1")],
)  # fmt: skip
def test_formula_helpers_refuse_values_outside_their_model(call, found):
    # each once gave a number (a negative heterozygosity, an F_ST above 1) or a bare ZeroDivisionError
    with pytest.raises(ConfigError, match=re.escape(found)):
        call()


def test_no_breeders_have_no_effective_size():
    assert ne_sex_ratio(0, 0) == 0.0
    assert ne_sex_ratio(0, 12) == 0.0
