"""Population simulation: invariants, an independent stage matrix and brute-force distances."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.stages.simulate import (
    SimulationParams,
    TerritoryLandscape,
    leslie_lambda,
    plot_trajectories,
    simulate_individuals,
    simulate_population,
)
from leopardgeo.stages.territories import pack_territories

# Small territories on 100 m cells (1 ha): females need 10 ha, males 20 ha.
PACK = {"min_area_ha": 5, "max_area_ha": 40, "female_need_ha": 10}
# Dispersal scaled to the small grid: the source strip lies 3.5 km from the site strip.
SMALL = {
    "mean_dispersal_cost_female_m": 300.0,
    "mean_dispersal_cost_male_m": 1000.0,
    "max_dispersal_cost_m": 5000.0,
    "mate_search_cost_m": 500.0,
}
ALL_SURVIVE = {"survival_cub": 1.0, "survival_juvenile": 1.0, "survival_subadult": 1.0, "survival_adult": 1.0, "max_age": None}
NONE_SURVIVE = {"survival_cub": 0.0, "survival_juvenile": 0.0, "survival_subadult": 0.0, "survival_adult": 0.0}


def _strip_territories():
    g = Grid.from_bounds((0, 0, 6000, 3000), cell_size_m=100, crs="EPSG:32652")
    return pack_territories(np.ones(g.shape), np.ones(g.shape), g, **PACK)


def strip_landscape(resistance: np.ndarray | None = None) -> TerritoryLandscape:
    """6 km x 3 km of uniform habitat: site = the 10 western columns, source = the 15 eastern ones."""
    g = Grid.from_bounds((0, 0, 6000, 3000), cell_size_m=100, crs="EPSG:32652")
    res = np.ones(g.shape) if resistance is None else resistance
    tr = pack_territories(np.ones(g.shape), res, g, **PACK)
    site = np.zeros(g.shape, bool)
    site[:, :10] = True
    src = np.zeros(g.shape, bool)
    src[:, -15:] = True
    return TerritoryLandscape.from_territories(tr, res, site=site, source=src, max_cost_m=5000)


@pytest.fixture(scope="module")
def landscape() -> TerritoryLandscape:
    return strip_landscape()


def params(**kw: object) -> SimulationParams:
    base = {"n_runs": 20, "years": 30, "seed": 3, **SMALL}
    base.update(kw)
    return SimulationParams(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- landscape
def test_territory_distances_match_brute_force_dijkstra() -> None:
    """Least cost from each female territory to every territory, against scipy's Dijkstra on the cell graph."""
    rng = np.random.default_rng(7)
    g = Grid.from_bounds((0, 0, 2400, 1600), cell_size_m=100, crs="EPSG:32652")  # 16 x 24 cells
    res = rng.uniform(1, 5, g.shape)
    res[5:11, 12] = np.nan  # a wall with gaps
    tr = pack_territories(np.ones(g.shape), res, g, **PACK)
    site = np.zeros(g.shape, bool)
    site[:, :6] = True
    max_cost = 1500.0
    ls = TerritoryLandscape.from_territories(tr, res, site=site, max_cost_m=max_cost, workers=2)
    # 8-neighbour cell graph, step cost = length x mean resistance of the two cells (independent of costdist)
    n_r, n_c = g.shape
    ids = np.arange(n_r * n_c).reshape(g.shape)
    rows, cols, w = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for r in range(n_r):
            for c in range(n_c):
                r2, c2 = r + dr, c + dc
                if not (0 <= r2 < n_r and 0 <= c2 < n_c) or np.isnan(res[r, c]) or np.isnan(res[r2, c2]):
                    continue
                rows.append(ids[r, c])
                cols.append(ids[r2, c2])
                w.append(100 * np.hypot(dr, dc) * (res[r, c] + res[r2, c2]) / 2)
    graph = scipy.sparse.coo_matrix((w, (rows, cols)), shape=(n_r * n_c,) * 2).tocsr()
    fem, mal = tr.female.ravel(), tr.male.ravel()
    for i, fid in enumerate(ls.female_ids):
        d = dijkstra(graph, directed=False, indices=np.flatnonzero(fem == fid), min_only=True)
        for kind, raster, all_ids, ptr, index, cost in (
            ("F", fem, ls.female_ids, ls.ff_ptr, ls.ff_index, ls.ff_cost),
            ("M", mal, ls.male_ids, ls.fm_ptr, ls.fm_index, ls.fm_cost),
        ):
            expected = {j: float(d[raster == tid].min()) for j, tid in enumerate(all_ids)}
            expected = {j: v for j, v in expected.items() if v <= max_cost}
            got = dict(zip(index[ptr[i] : ptr[i + 1]].tolist(), cost[ptr[i] : ptr[i + 1]].tolist(), strict=True))
            assert got.keys() == expected.keys(), (kind, i)
            np.testing.assert_allclose([got[j] for j in expected], list(expected.values()), rtol=1e-9)
            assert np.all(np.diff(cost[ptr[i] : ptr[i + 1]]) >= 0)  # nearest first
    assert ls.ff_index[ls.ff_ptr[0]] == 0 and ls.ff_cost[ls.ff_ptr[0]] == 0  # itself first


def test_landscape_regions_and_sides(landscape: TerritoryLandscape) -> None:
    x_f = landscape.female_xy[:, 0]
    site = landscape.female_region == 1
    assert site.any() and (landscape.female_region == 2).any()
    assert x_f[site].max() < 1500 and x_f[landscape.female_region == 2].min() > 4000  # half their cells inside
    # sides split at the least-cost midpoint between the site (x < 1 km) and the source (x > 4.5 km): x = 2.75 km
    assert np.all(x_f[landscape.female_side == 1] > 2000) and np.all(x_f[landscape.female_side == 0] < 3500)
    # release order: nearest to the site's centroid first
    d = np.hypot(*(landscape.female_xy[landscape.site_female_order] - np.array(landscape.release_xy)).T)
    assert np.all(np.diff(d) >= 0)


def test_with_site_reuses_distances_and_matches_a_fresh_build(landscape: TerritoryLandscape) -> None:
    g = landscape.grid
    site = np.zeros(g.shape, bool)
    site[:, 25:35] = True  # a site in the middle
    src = np.zeros(g.shape, bool)
    src[:, -15:] = True
    moved = landscape.with_site(site, src)
    fresh = TerritoryLandscape.from_territories(_strip_territories(), np.ones(g.shape), site=site, source=src, max_cost_m=5000)
    for name in ("female_region", "male_region", "female_side", "male_side", "site_female_order", "ff_index", "fm_cost"):
        np.testing.assert_array_equal(getattr(moved, name), getattr(fresh, name))
    assert moved.ff_index is landscape.ff_index  # shared, not recomputed
    x = moved.female_xy[moved.female_region == 1, 0]
    assert x.min() > 2000 and x.max() < 4000
    # within_cost_m keeps only territories near the site or the source
    near = TerritoryLandscape.from_territories(
        _strip_territories(), np.ones(g.shape), site=site, max_cost_m=5000, within_cost_m=300
    )
    assert 0 < near.n_female < landscape.n_female
    assert np.all(np.abs(near.female_xy[:, 0] - 3000) < 1000)


# --------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("spatial", [True, False])
def test_survival_one_and_no_dispersal_never_falls(landscape: TerritoryLandscape, spatial: bool) -> None:
    p = params(**ALL_SURVIVE, disperse=False, density_limit=spatial)
    res = simulate_population(landscape if spatial else None, p)
    for arr in (res.total, res.adults, res.adult_females, res.source_adults):
        assert np.all(np.diff(arr, axis=1) >= 0)
    assert np.all(res.total[:, -1] > res.total[:, 0])  # births happen, so the check can fail
    assert res.persistence_at(30) == 1.0


def test_survival_zero_dies_in_one_step(landscape: TerritoryLandscape) -> None:
    res = simulate_population(landscape, params(**NONE_SURVIVE))
    assert np.all(res.total[:, 0] == 6) and np.all(res.source_adults[:, 0] > 0)
    assert not res.total[:, 1:].any() and not res.source_adults[:, 1:].any()
    assert res.persistence_at(0) == 1.0 and res.persistence_at(1) == 0.0


def test_same_seed_same_result_other_seed_differs(landscape: TerritoryLandscape) -> None:
    a = simulate_population(landscape, params(seed=11))
    b = simulate_population(landscape, params(seed=11))
    c = simulate_population(landscape, params(seed=12))
    for name in ("adult_females", "adults", "total", "source_adults", "to_source", "from_source"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.total, c.total)


def test_parallel_equals_serial(landscape: TerritoryLandscape) -> None:
    p = params(n_runs=13)
    one = simulate_population(landscape, p, workers=1)
    two = simulate_population(landscape, p, workers=2)
    for name in ("adult_females", "adults", "total", "source_adults", "to_source", "from_source"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    # run r of the batch is reproducible on its own: its animals on the site's side are the census total
    ind = simulate_individuals(landscape, p, run=12)
    assert int((ind["side"] == 0).sum()) == one.total[12, -1]
    assert int(((ind["side"] == 1) & (ind["age"] >= 3)).sum()) == one.source_adults[12, -1]


def test_supplementation_adds_animals_in_its_year() -> None:
    p = params(**ALL_SURVIVE, breeding_probability=0.0, density_limit=False, supplementation=((5, 2, 1), (9, 0, 3)))
    res = simulate_population(None, p)
    assert np.all(res.total[:, :5] == 6) and np.all(res.total[:, 5:9] == 9) and np.all(res.total[:, 9:] == 12)
    assert np.all(res.adult_females[:, 5] == 5) and np.all(res.adult_males[:, 9] == 7)


# --------------------------------------------------------------------------- stage matrix
@pytest.mark.parametrize("cubs_die", [True, False])
def test_growth_without_density_limit_matches_hand_built_stage_matrix(cubs_die: bool) -> None:
    p = SimulationParams(
        survival_cub=0.7,
        survival_juvenile=0.85,
        survival_subadult=0.8,
        survival_adult=0.9,
        breeding_probability=0.8,
        litter_probabilities=(0.3, 0.5, 0.2),
        female_share=0.5,
        cubs_die_with_mother=cubs_die,
        density_limit=False,
        founders_female=300,
        founders_male=300,
        max_age=None,
        genetics=False,
        n_runs=8,
        years=40,
        seed=5,
    )
    # Females counted after the births.  Stages: ages 0, 1, 2; adult available (A); mother of newborns (W0);
    # mother of 1-year-old cubs (W1).  Next year's breeders ("pool"): age-2 survivors (0.8), A and W1 survivors
    # (0.9; W1's cubs turn 2 and leave), and W0 survivors whose whole litter died:
    # q = 0.3 * 0.3 + 0.5 * 0.3**2 + 0.2 * 0.3**3 = 0.1404, so 0.9 * 0.1404 = 0.12636.
    pool = np.array([0.0, 0.0, 0.8, 0.9, 0.9 * 0.1404, 0.9])
    daughters = 0.8 * (1 * 0.3 + 2 * 0.5 + 3 * 0.2) * 0.5  # p_breed x mean litter (1.9) x female share = 0.76
    m = np.zeros((6, 6))
    m[0] = daughters * pool
    m[1, 0] = 0.7 * 0.9 if cubs_die else 0.7  # cub survival (x the mother's survival if cubs die with her)
    m[2, 1] = 0.85
    m[3] = 0.2 * pool  # did not breed
    m[4] = 0.8 * pool  # bred
    m[5, 4] = 0.9 * (1 - 0.1404)  # mother survives and at least one cub does
    lam = float(np.max(np.abs(np.linalg.eigvals(m))))
    assert leslie_lambda(p) == pytest.approx(lam, rel=1e-12)
    res = simulate_population(None, p)
    f = res.females.sum(axis=0).astype(float)  # pooled over runs
    t0, t1 = 20, 40  # after the transient of the all-adult start
    lam_sim = (f[t1] / f[t0]) ** (1 / (t1 - t0))
    assert lam_sim == pytest.approx(lam, abs=0.005)  # 10 seeds gave |error| <= 0.0011
    assert abs(lam - 1) > 0.03  # the comparison is not of two flat populations


@pytest.mark.parametrize(("first_breeding", "independence"), [(4, 3), (3, 3)])
def test_growth_matches_stage_matrix_for_other_life_histories(first_breeding: int, independence: int) -> None:
    """Longer dependence: mothers whose whole litter dies later are available again (binomial litter states)."""
    p = SimulationParams(
        survival_cub=0.7,
        survival_juvenile=0.75,
        survival_subadult=0.85,
        survival_adult=0.92,
        breeding_probability=0.9,
        litter_probabilities=(0.3, 0.5, 0.2),
        first_breeding_age=first_breeding,
        independence_age=independence,
        density_limit=False,
        founders_female=400,
        founders_male=400,
        max_age=None,
        genetics=False,
        founder_age=4,
        n_runs=6,
        years=35,
        seed=2,
    )
    res = simulate_population(None, p)
    f = res.females.sum(axis=0).astype(float)
    assert (f[35] / f[20]) ** (1 / 15) == pytest.approx(leslie_lambda(p), abs=0.005)


# --------------------------------------------------------------------------- settlement and dispersal
@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_f=st.integers(0, 8),
    n_m=st.integers(0, 8),
    fill=st.sampled_from([0.0, 0.5, 1.0]),
    site_cols=st.integers(3, 15),
)
def test_founders_settle_only_in_free_site_territories_of_their_sex(
    seed: int, n_f: int, n_m: int, fill: float, site_cols: int
) -> None:
    rng = np.random.default_rng(seed)
    g = Grid.from_bounds((0, 0, 3000, 1500), cell_size_m=100, crs="EPSG:32652")
    q = rng.uniform(0.5, 1.0, g.shape)
    res = rng.uniform(1, 3, g.shape)
    tr = pack_territories(q, res, g, seed=seed, **PACK)
    site = np.zeros(g.shape, bool)
    site[:, :site_cols] = True
    src = np.zeros(g.shape, bool)
    src[:, 8:] = True  # may overlap the site: the site wins
    try:
        ls = TerritoryLandscape.from_territories(tr, res, site=site, source=src, max_cost_m=5000)
    except DataError:  # no female territory in a narrow site
        return
    if n_f + n_m == 0 and fill == 0:
        return
    p = params(
        **ALL_SURVIVE, founders_female=n_f, founders_male=n_m, source_fill=fill, years=1, disperse=False, n_runs=1,
        breeding_probability=0.0,
    )  # fmt: skip
    ind = simulate_individuals(ls, p)
    held = ind[ind["territory"] >= 0]
    assert not held.duplicated(["sex", "territory"]).any()  # one animal per territory
    assert set(held.loc[held["sex"] == "F", "territory_id"]) <= set(ls.female_ids.tolist())
    assert set(held.loc[held["sex"] == "M", "territory_id"]) <= set(ls.male_ids.tolist())
    for sex, n, order in (("F", n_f, ls.site_female_order), ("M", n_m, ls.site_male_order)):
        in_site = held[(held["sex"] == sex) & (held["region"] == 1)]
        k = min(n, order.size)
        assert sorted(in_site["territory"]) == sorted(order[:k].tolist())  # the k nearest to the release point
        floating = ind[(ind["sex"] == sex) & (ind["territory"] == -1)]
        assert len(floating) == n - k
        in_source = held[(held["sex"] == sex) & (held["region"] == 2)]
        assert len(in_source) == 0 if fill == 0 else True
    # after years of births, deaths and dispersal: still one animal per territory, each of its own sex
    later = simulate_individuals(ls, params(founders_female=n_f, founders_male=n_m, source_fill=fill, years=15, n_runs=1))
    held = later[later["territory"] >= 0]
    assert not held.duplicated(["sex", "territory"]).any()
    assert set(held.loc[held["sex"] == "F", "territory_id"]) <= set(ls.female_ids.tolist())
    assert set(held.loc[held["sex"] == "M", "territory_id"]) <= set(ls.male_ids.tolist())
    assert (later["territory"] >= -1).all()  # no territory without density limit in a spatial run


def test_tiny_dispersal_never_reaches_far_territories(landscape: TerritoryLandscape) -> None:
    common = {"survival_adult": 0.95, "survival_subadult": 0.9, "source_fill": 0.0, "years": 40, "n_runs": 5}
    near = params(**common, mean_dispersal_cost_female_m=1.0, mean_dispersal_cost_male_m=1.0)
    far = params(**common, mean_dispersal_cost_female_m=3000.0, mean_dispersal_cost_male_m=3000.0)
    site_f = set(landscape.site_female_order.tolist())
    # male territories at cost 0 (overlapping) from a site female territory
    reach_m = set(landscape.site_male_order.tolist())
    for i in site_f:
        sl = slice(landscape.fm_ptr[i], landscape.fm_ptr[i + 1])
        reach_m |= set(landscape.fm_index[sl][landscape.fm_cost[sl] == 0].tolist())
    outside = 0
    for run in range(5):
        ind = simulate_individuals(landscape, near, run=run)
        held = ind[ind["territory"] >= 0]
        assert set(held.loc[held["sex"] == "F", "territory"]) <= site_f
        assert set(held.loc[held["sex"] == "M", "territory"]) <= reach_m
        wide = simulate_individuals(landscape, far, run=run)
        wf = wide[(wide["territory"] >= 0) & (wide["sex"] == "F")]
        outside += int((~wf["territory"].isin(site_f)).sum())
    assert outside > 0  # with a long kernel they do spread: the check above can fail


def test_corridor_counts_need_a_passable_landscape(landscape: TerritoryLandscape) -> None:
    p = params(n_runs=10, years=30, mean_dispersal_cost_female_m=2000.0, mean_dispersal_cost_male_m=4000.0)
    open_ = simulate_population(landscape, p)
    assert (open_.from_source > 0).mean() >= 0.5
    res = np.ones((30, 60))
    res[:, 30] = np.nan  # an impassable wall between the site and the source
    walled = simulate_population(strip_landscape(res), p)
    assert not walled.from_source.any() and not walled.to_source.any()


def test_corridor_scenarios_today_none_and_a_scenario_resistance(landscape: TerritoryLandscape) -> None:
    """No corridor cuts every exchange; a scenario raster 50 times as resistant puts the source out of reach."""
    from leopardgeo.stages.simulate import simulate_corridors

    p = params(n_runs=10, years=30, mean_dispersal_cost_female_m=2000.0, mean_dispersal_cost_male_m=4000.0)
    out = simulate_corridors(landscape, p, scenario=np.full((30, 60), 50.0))
    assert list(out) == ["today", "no_corridor", "scenario"]
    assert (out["today"].from_source > 0).mean() >= 0.5  # the comparison can fail
    for name in ("no_corridor", "scenario"):
        assert not out[name].from_source.any() and not out[name].to_source.any()
    cut = landscape.without_corridor()
    rows = np.repeat(np.arange(cut.n_female), np.diff(cut.ff_ptr))
    assert (cut.female_side[rows] == cut.female_side[cut.ff_index]).all()
    assert cut.ff_index.size < landscape.ff_index.size  # links across the sides existed and were dropped
    same = simulate_corridors(landscape, p, scenario=landscape)  # a ready landscape: today's again, same seeds
    np.testing.assert_array_equal(same["scenario"].total, same["today"].total)
    with pytest.raises(ConfigError, match="scenario"):
        simulate_corridors(landscape, p, scenario="wide")  # type: ignore[arg-type]


def test_floaters_false_kills_unsettled_dispersers(landscape: TerritoryLandscape) -> None:
    # no territory is reachable with a 1 m search (and the site's territories are full): dispersers die
    p = params(**ALL_SURVIVE, source_fill=0.0, founders_female=40, founders_male=40, breeding_probability=0.0,
               mean_dispersal_cost_female_m=1.0, mean_dispersal_cost_male_m=1.0, years=2)  # fmt: skip
    keep = simulate_population(landscape, p)
    kill = simulate_population(landscape, replace(p, floaters=False))
    site_f, site_m = landscape.site_female_order.size, landscape.site_male_order.size
    assert np.all(keep.total[:, -1] == 80)
    # floaters dispersing at year 1 either inherit nothing (all site territories held) or die
    assert np.all(kill.total[:, -1] == site_f + site_m)


# --------------------------------------------------------------------------- end to end, outputs, errors
def test_end_to_end_from_packed_territories(tmp_path, landscape: TerritoryLandscape) -> None:
    res = simulate_population(landscape, params(n_runs=40, years=30))
    pers = res.persistence
    assert pers[0] == 1.0 and np.all(np.diff(pers) <= 0) and 0 <= pers[-1] <= 1
    qt = res.quantiles("adults")
    assert list(qt.columns) == ["q5", "q25", "q50", "q75", "q95"] and len(qt) == 31
    assert np.all(qt.diff(axis=1).iloc[:, 1:] >= 0)
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d["persistence"]) == {"25"} and d["n_runs"] == 40
    assert d["trajectories"]["adults"]["q50"][0] == 6.0
    fig = plot_trajectories(res, tmp_path / "sim.png")
    assert (tmp_path / "sim.png").stat().st_size > 1000 and len(fig.axes) == 2
    from matplotlib.figure import Figure

    ax = Figure().add_subplot(1, 1, 1)
    assert plot_trajectories(res, ax) is ax.figure  # axes given in place of the path
    assert ax.get_lines()[0].get_ydata()[0] == 6  # median adults at year 0: the founders


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"litter_probabilities": (0.5, 0.4)}, "sum to 1"),
        ({"survival_adult": 1.2}, "probability from 0 to 1"),
        ({"supplementation": ((0, 1, 1),)}, r"supplementation\[0\]"),
        ({"independence_age": 4}, "at most first_breeding_age"),
        ({"years": 0}, "years: expected a whole number >= 1"),
        ({"mean_dispersal_cost_male_m": -1}, "positive finite"),
    ],
)
def test_bad_parameters_raise_config_error(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SimulationParams(**kw)


def test_bad_inputs(landscape: TerritoryLandscape) -> None:
    with pytest.raises(ConfigError, match="TerritoryLandscape"):
        simulate_population(None, SimulationParams())
    with pytest.raises(DataError, match="max_cost_m=50000"):
        simulate_population(landscape, SimulationParams())  # built with max_cost_m = 5000
    g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")
    tr = pack_territories(np.ones(g.shape), np.ones(g.shape), g, **PACK)
    with pytest.raises(DataError, match="site"):
        TerritoryLandscape.from_territories(tr, np.ones(g.shape), site=np.zeros(g.shape, bool))
    with pytest.raises(ConfigError, match="run"):
        simulate_individuals(landscape, params(n_runs=2), run=2)
