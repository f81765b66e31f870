"""Reintroduction site evaluation: MCDA score, rank stability, capacity, connection, candidates, errors."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import geopandas as gpd
import shapely

from leopardgeo.config import ConfigError, VectorInput
from leopardgeo.core.errors import AlignmentError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.runner.registry import PatchConfig, RunConfig, SiteConfig, load_config_string
from leopardgeo.stages.graph import build_graph
from leopardgeo.stages.patches import extract_patches
from leopardgeo.stages.sites import (
    CRITERIA,
    SourceRegion,
    add_patch_gain,
    effective_resistance,
    evaluate_sites,
    find_source,
    prepare_sites,
    rank_stability,
    score_sites,
    site_capacity,
    site_masks,
)
from leopardgeo.testing import TEST_CRS

HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- 1. score: hand-worked
def test_score_hand_worked():
    t = pd.DataFrame(
        {
            "site_id": [1, 2, 3],
            "name": ["A", "B", "C"],
            "capacity_females": [10.0, 6.0, 2.0],  # benefit: n = (x - 2) / 8 = 1, 0.5, 0
            "cwd_to_source": [300.0, 100.0, 500.0],  # cost: n = (500 - x) / 400 = 0.5, 1, 0
            "protected_frac": [0.4, 0.4, 0.4],  # equal everywhere: n = 1 for all
            "road_density_km_per_km2": [np.nan, 0.2, 0.1],  # cost, A has no value: n = 0, 0, 1
        }
    )
    w = {"capacity_females": 2.0, "cwd_to_source": 1.0, "protected_frac": 1.0, "road_density_km_per_km2": 0.0}
    s = score_sites(t, w).set_index("name")
    np.testing.assert_allclose(s.loc[["A", "B", "C"], "n_capacity_females"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(s.loc[["A", "B", "C"], "n_cwd_to_source"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(s.loc[["A", "B", "C"], "n_protected_frac"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(s.loc[["A", "B", "C"], "n_road_density_km_per_km2"], [0.0, 0.0, 1.0])  # shown, weight 0
    # score = 100 (2 n_cap + 1 n_cwd + 1 n_pa) / 4
    assert s.loc["A", "score"] == pytest.approx(100 * (2 * 1 + 0.5 + 1) / 4)  # 87.5
    assert s.loc["B", "score"] == pytest.approx(100 * (2 * 0.5 + 1 + 1) / 4)  # 75
    assert s.loc["C", "score"] == pytest.approx(100 * (0 + 0 + 1) / 4)  # 25
    assert s["rank"].to_dict() == {"A": 1, "B": 2, "C": 3}
    assert list(score_sites(t, w)["name"]) == ["A", "B", "C"]  # rank order


def test_score_ties_go_to_the_earlier_site_and_missing_criteria_are_skipped():
    t = pd.DataFrame({"site_id": [1, 2], "name": ["first", "second"], "capacity_females": [5.0, 5.0]})
    s = score_sites(t, {"capacity_females": 1.0, "eff_resistance": 3.0})  # no eff_resistance column: left out
    assert list(s["name"]) == ["first", "second"] and list(s["rank"]) == [1, 2]
    assert list(s["score"]) == [100.0, 100.0]


def test_score_errors():
    t = pd.DataFrame({"site_id": [1], "name": ["A"], "capacity_females": [3.0]})
    with pytest.raises(ConfigError, match="unknown criterion"):
        score_sites(t, {"area": 1.0})
    with pytest.raises(ConfigError, match=">= 0"):
        score_sites(t, {"capacity_females": -1.0})
    with pytest.raises(ConfigError, match="at least one weight"):
        score_sites(t, {"capacity_females": 0.0})
    with pytest.raises(ConfigError, match="benefit"):
        score_sites(t, {"capacity_females": 1.0}, {"capacity_females": "up"})
    with pytest.raises(DataError, match="weighted criterion"):
        score_sites(t, {"eff_resistance": 1.0})
    with pytest.raises(ConfigError, match="integer >= 1"):
        rank_stability(t, {"capacity_females": 1.0}, n=0)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        rank_stability(t, {"capacity_females": 1.0}, spread=1.5)


# --------------------------------------------------------------------------- 2. dominance at any weights
_criteria = sorted(CRITERIA)


@HYPO
@given(
    others=st.lists(st.lists(st.floats(0, 1000, allow_nan=False), min_size=len(_criteria), max_size=len(_criteria)), max_size=4),
    worse=st.lists(st.floats(0, 1000, allow_nan=False), min_size=len(_criteria), max_size=len(_criteria)),
    gap=st.floats(1.0, 100.0),
    weights=st.lists(st.floats(0.001, 10.0), min_size=len(_criteria), max_size=len(_criteria)),
)
def test_more_habitat_and_better_connection_outranks_at_any_weights(others, worse, gap, weights):
    """A site equal elsewhere, with more habitat / capacity and a shorter, less resistant connection, always wins."""
    better = list(worse)
    for i, c in enumerate(_criteria):
        if c in ("capacity_females", "habitat_area_ha", "dPC_gain_pct"):
            better[i] = worse[i] + gap
        elif c in ("cwd_to_source", "eff_resistance"):
            better[i] = worse[i] - gap
    rows = [*others, worse, better]
    t = pd.DataFrame(rows, columns=_criteria)
    t.insert(0, "site_id", np.arange(1, len(t) + 1))
    t.insert(1, "name", [f"s{i}" for i in range(len(t))])
    w = dict(zip(_criteria, weights, strict=True))
    s = score_sites(t, w).set_index("site_id")
    b, wo = len(t), len(t) - 1
    assert s.loc[b, "score"] > s.loc[wo, "score"]
    assert s.loc[b, "rank"] < s.loc[wo, "rank"]
    stab = rank_stability(t, w, n=50, seed=1).set_index("site_id")
    assert stab.loc[b, "mean_rank"] < stab.loc[wo, "mean_rank"] and stab.loc[wo, "first_share"] == 0.0


@HYPO
@given(
    values=st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(0, 1)), min_size=1, max_size=6),
    spread=st.floats(0.0, 0.9),
)
def test_rank_stability_shares_sum_to_one(values, spread):
    t = pd.DataFrame(values, columns=["capacity_females", "cwd_to_source", "protected_frac"])
    t.insert(0, "site_id", np.arange(1, len(t) + 1))
    st_ = rank_stability(t, {"capacity_females": 1.0, "cwd_to_source": 1.0, "protected_frac": 0.5}, n=100, spread=spread)
    assert st_["first_share"].sum() == pytest.approx(1.0)
    assert st_["mean_rank"].sum() == pytest.approx(len(t) * (len(t) + 1) / 2)  # ranks 1..n in every draw
    assert (st_["best_rank"] <= st_["mean_rank"] + 1e-12).all() and (st_["mean_rank"] <= st_["worst_rank"] + 1e-12).all()


def test_rank_stability_dominant_site_and_a_close_call():
    t = pd.DataFrame({"site_id": [1, 2, 3], "capacity_females": [9.0, 10.0, 1.0], "cwd_to_source": [10.0, 11.0, 50.0]})
    w = {"capacity_females": 1.0, "cwd_to_source": 1.0}
    s = rank_stability(t, w, n=2000, spread=0.5, seed=3).set_index("site_id")
    # normalised: site 1 = (8/9, 1), site 2 = (1, 39/40): 1 wins when w_cwd/w_cap > (1/9)/(1/40) = 40/9 -- never with +-50 %
    assert s.loc[2, "first_share"] == 1.0 and s.loc[3, "worst_rank"] == 3
    t.loc[0, "cwd_to_source"] = 1.0  # now site 1: (8/9, 1), site 2: (1, 0.8): 1 wins when w_cwd/w_cap > (1/9)/0.2 = 5/9
    s = rank_stability(t, w, n=4000, spread=0.5, seed=3).set_index("site_id")
    # ratio r = U1/U2 of two U(0.5, 1.5): P(r > 5/9) by numerical integration (independent of the code)
    u = np.linspace(0.5, 1.5, 2001)
    u1, u2 = np.meshgrid(u, u)
    expected = float(np.mean(u2 / u1 > 5 / 9))
    assert s.loc[1, "first_share"] == pytest.approx(expected, abs=0.03)
    assert s.loc[1, "first_share"] + s.loc[2, "first_share"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- 3. capacity
@pytest.mark.parametrize(("side", "need_ha", "quality"), [(30, 20.0, 1.0), (40, 25.0, 0.8), (24, 12.0, 0.6)])
def test_capacity_of_a_uniform_square_is_area_over_need(side, need_ha, quality):
    g = Grid.from_bounds((0, 0, side * 100 + 1000, side * 100 + 1000), cell_size_m=100, crs=TEST_CRS)  # 1 ha cells
    mask = np.zeros(g.shape, bool)
    mask[5 : 5 + side, 5 : 5 + side] = True
    q = np.full(g.shape, quality)
    cap = site_capacity(
        q, np.ones(g.shape), g, mask, replicates=3, min_area_ha=need_ha / 2, max_area_ha=need_ha * 5,
        female_need_ha=need_ha, max_cost_m=math.inf,
    )  # fmt: skip
    # area / area of a female territory: the fewest whole 1-ha cells of quality q holding the need
    expected = side * side / math.ceil(need_ha / quality - 1e-9)
    assert cap["capacity_females"] == pytest.approx(expected, rel=0.10)
    assert cap["capacity_females_min"] <= cap["capacity_females"] <= cap["capacity_females_max"]
    assert cap["capacity_males"] == pytest.approx(expected / 2, rel=0.15)  # males need twice the area
    assert cap["capacity_adults"] == cap["capacity_females"] + cap["capacity_males"]


def test_capacity_uses_only_the_site():
    g = Grid.from_bounds((0, 0, 3000, 1000), cell_size_m=100, crs=TEST_CRS)
    mask = np.zeros(g.shape, bool)
    mask[:, :10] = True  # 100 ha of 300
    cap = site_capacity(np.ones(g.shape), np.ones(g.shape), g, mask, min_area_ha=5, max_area_ha=40, female_need_ha=10)
    assert 9 <= cap["capacity_females"] <= 10


# --------------------------------------------------------------------------- 4. connection against references
def _grid_graph(res: np.ndarray, cell: float) -> csr_matrix:
    """8-neighbour graph, edge cost = step length x mean resistance (independent of costdist)."""
    nr, nc = res.shape
    rows, cols, w = [], [], []
    for r in range(nr):
        for c in range(nc):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < nr and 0 <= cc < nc and np.isfinite(res[r, c]) and np.isfinite(res[rr, cc]):
                    cost = cell * math.hypot(dr, dc) * (res[r, c] + res[rr, cc]) / 2
                    rows += [r * nc + c, rr * nc + cc]
                    cols += [rr * nc + cc, r * nc + c]
                    w += [cost, cost]
    return csr_matrix((w, (rows, cols)), shape=(nr * nc, nr * nc))


def _empty_patches(g: Grid) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"patch_id": pd.Series([], dtype="int32"), "area_ha": []}, geometry=[], crs=g.crs)


@HYPO
@given(seed=st.integers(0, 10_000))
def test_least_cost_distance_matches_scipy_dijkstra(seed):
    rng = np.random.default_rng(seed)
    g = Grid.from_bounds((0, 0, 1200, 800), cell_size_m=100, crs=TEST_CRS)
    res = rng.uniform(1, 20, g.shape)
    res[rng.random(g.shape) < 0.1] = np.nan
    res[:, :2] = 1.0
    res[:, -2:] = 1.0
    src = np.zeros(g.shape, bool)
    src[:, :2] = True
    source = SourceRegion("src", src, shapely.box(0, 0, 200, 800), (), "protected_area")
    sites = gpd.GeoDataFrame({"name": ["east"]}, geometry=[shapely.box(1000, 0, 1200, 800)], crs=g.crs)
    sites = prepare_sites(sites, g)
    out = evaluate_sites(
        sites, suitability=np.full(g.shape, 0.9), resistance=res, labels=np.zeros(g.shape, "int32"),
        patches=_empty_patches(g), grid=g, source=source, territory={"min_area_ha": 1, "max_area_ha": 10, "female_need_ha": 2},
        capacity_replicates=1, circuit_margin_m=None,
    )  # fmt: skip
    dist = dijkstra(_grid_graph(res, 100.0), indices=np.flatnonzero(src.ravel()), min_only=True).reshape(g.shape)
    assert out["cwd_to_source"].iloc[0] == pytest.approx(float(dist[:, -2:].min()), rel=1e-9)
    assert out["euclid_to_source_m"].iloc[0] == pytest.approx(800.0)


@pytest.mark.parametrize(("rows", "cols", "r"), [(1, 6, 2.0), (4, 9, 3.0), (6, 5, 0.5)])
def test_effective_resistance_of_a_uniform_strip(rows, cols, r):
    res = np.full((rows, cols), r)
    a = np.zeros(res.shape, bool)
    b = np.zeros(res.shape, bool)
    a[:, 0], b[:, -1] = True, True
    expected = (cols - 1) * r / rows  # N - 1 series steps of r, W parallel rows
    assert effective_resistance(res, a, b, cell_size_m=100, connectivity=4, margin_m=None) == pytest.approx(expected, rel=1e-9)
    assert effective_resistance(res, a, b, cell_size_m=100, connectivity=4, margin_m=100) == pytest.approx(expected, rel=1e-9)
    assert effective_resistance(res, a, a, cell_size_m=100) == 0.0  # overlapping regions
    cut = res.copy()
    cut[:, cols // 2] = np.nan
    assert effective_resistance(cut, a, b, cell_size_m=100, connectivity=4) == math.inf


def test_effective_resistance_window_is_an_upper_bound():
    rng = np.random.default_rng(0)
    res = rng.uniform(1, 5, (30, 30))
    a = np.zeros(res.shape, bool)
    b = np.zeros(res.shape, bool)
    a[14:16, 5], b[14:16, 24] = True, True
    full = effective_resistance(res, a, b, cell_size_m=100, margin_m=None)
    small = effective_resistance(res, a, b, cell_size_m=100, margin_m=100)
    wide = effective_resistance(res, a, b, cell_size_m=100, margin_m=500)
    assert small >= wide >= full > 0


def test_add_patch_gain_of_an_isolated_site_is_its_own_area_squared():
    """An unreachable site adds only a_s^2 to sum_ij a_i a_j p*_ij: dPC = 100 a_s^2 / (sum before)."""
    G = nx.Graph()
    G.add_node(1, area_ha=2.0)
    G.add_node(2, area_ha=3.0)
    G.add_edge(1, 2, cwd=500.0)
    labels = np.array([[1, 1, 0, 2, 2, 2, 0, 0, 0]], dtype="int32")
    site = np.array([[0, 0, 0, 0, 0, 0, 0, 1, 1]], bool)
    res = np.ones(labels.shape)
    res[0, 6] = np.nan  # the site is cut off
    k = math.log(2) / 500.0  # p = 0.5 at 500
    before = 2 * 2 + 3 * 3 + 2 * 2 * 3 * math.exp(-k * 500)  # 4 + 9 + 6
    out = add_patch_gain(G, labels, site, res, cell_size_m=100, landscape_area_ha=100.0, median_distance=500.0)
    a_s = 2.0  # two 1-ha cells
    assert out["site_links"] == 0
    assert out["PC_before"] == pytest.approx(before / 100.0**2)
    assert out["dPC_gain_pct"] == pytest.approx(100 * a_s**2 / before)
    assert out["dEC_gain_ha"] == pytest.approx(math.sqrt(before + a_s**2) - math.sqrt(before))


def test_add_patch_gain_takes_the_site_cells_from_the_patch_it_overlaps():
    G = nx.Graph()
    G.add_node(1, area_ha=4.0)
    labels = np.array([[1, 1, 1, 1]], dtype="int32")
    site = np.array([[0, 0, 1, 1]], bool)  # half of patch 1
    out = add_patch_gain(G, labels, site, np.ones(labels.shape), cell_size_m=100, landscape_area_ha=4.0, median_distance=1000.0)
    # before: patch of 2 ha -> 2^2 = 4; after: site of 2 ha one 100-m step away, p = 0.5^(100/1000)
    p = 0.5 ** (100 / 1000)
    assert out["PC_before"] == pytest.approx(4 / 16) and out["PC_after"] == pytest.approx((4 + 4 + 2 * 2 * 2 * p) / 16)
    assert out["site_links"] == 1


# --------------------------------------------------------------------------- 5. a synthetic landscape
@pytest.fixture(scope="module")
def landscape():
    """100 x 40 cells of 1 ha: a source block (west), a big site near it, a small site far east."""
    g = Grid.from_bounds((500_000, 4_796_000, 510_000, 4_800_000), cell_size_m=100, crs=TEST_CRS)
    suit = np.full(g.shape, 0.2)
    suit[10:30, 0:10] = 0.9  # source
    suit[5:35, 20:50] = 0.95  # big, near
    suit[15:25, 80:92] = 0.8  # small, far
    res = np.where(suit >= 0.5, 1.0, 10.0)
    labels, patches = extract_patches(suit, g, min_area_ha=0)
    graph, _ = build_graph(res, labels, patches, g)
    x0, y1 = 500_000, 4_800_000

    def box(r0, r1, c0, c1):
        return shapely.box(x0 + c0 * 100, y1 - r1 * 100, x0 + c1 * 100, y1 - r0 * 100)

    pas = gpd.GeoDataFrame({"NAME": ["Land of the Leopard NP"]}, geometry=[box(10, 30, 0, 10)], crs=g.crs)
    sites = gpd.GeoDataFrame({"название": ["Большой", "Малый"]}, geometry=[box(5, 35, 20, 50), box(15, 25, 80, 92)], crs=g.crs)
    return {"grid": g, "suit": suit, "res": res, "labels": labels, "patches": patches, "graph": graph, "pas": pas, "sites": sites}


TERR = {"min_area_ha": 10, "max_area_ha": 100, "female_need_ha": 20, "max_cost_m": math.inf}


def _evaluate(ls, sites_gdf, **kw):
    g = ls["grid"]
    src = find_source(g, labels=ls["labels"], patches=ls["patches"], protected_areas=ls["pas"])
    sites = prepare_sites(sites_gdf, g, **kw)
    return evaluate_sites(
        sites, suitability=ls["suit"], resistance=ls["res"], labels=ls["labels"], patches=ls["patches"], grid=g,
        source=src, graph=ls["graph"], territory=TERR, capacity_replicates=2, median_distance=2000.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(landscape):
    return _evaluate(landscape, landscape["sites"])


def test_synthetic_sites_criteria(evaluated, landscape):
    t = evaluated.set_index("name")
    big, small = t.loc["Большой"], t.loc["Малый"]
    assert big["habitat_area_ha"] == 900.0 and small["habitat_area_ha"] == 120.0
    assert big["mean_quality"] == pytest.approx(0.95) and small["mean_quality"] == pytest.approx(0.8)
    assert big["capacity_females"] == pytest.approx(900 / math.ceil(20 / 0.95), rel=0.1)  # area / cells per female
    assert big["capacity_females"] > small["capacity_females"] >= 1
    assert big["euclid_to_source_m"] == pytest.approx(1000.0) and small["euclid_to_source_m"] == pytest.approx(7000.0)
    assert big["cwd_to_source"] < small["cwd_to_source"] < math.inf
    assert 0 < big["eff_resistance"] < small["eff_resistance"] < math.inf
    assert big["dPC_gain_pct"] > small["dPC_gain_pct"] > 0
    assert big["dist_to_territory_m"] == big["euclid_to_source_m"]  # no territories given: distance to the source
    assert np.isnan(big["cropland_frac"]) and np.isnan(big["protected_frac"])  # no land cover, no protected raster
    assert (t["source"] == "Land of the Leopard NP").all()


@HYPO
@given(weights=st.lists(st.floats(0.001, 10.0), min_size=len(_criteria), max_size=len(_criteria)))
def test_synthetic_big_near_site_ranks_first_at_any_weights(evaluated, weights):
    s = score_sites(evaluated, dict(zip(_criteria, weights, strict=True)))
    assert s["name"].iloc[0] == "Большой" and s["score"].iloc[0] > s["score"].iloc[1]


def test_user_polygon_in_epsg4326_with_cyrillic_names_matches_the_grid_crs(landscape, evaluated, tmp_path):
    wgs = landscape["sites"].to_crs("EPSG:4326")
    wgs = wgs.rename(columns={"название": "название участка"}).assign(площадь=[1.0, 2.0])
    path = tmp_path / "участки.gpkg"
    wgs.to_file(path, layer="участки", driver="GPKG")
    from leopardgeo.io import read_vector

    got = _evaluate(landscape, read_vector(path, "участки"), name_field="название участка")
    assert list(got["name"]) == ["Большой", "Малый"]
    g = landscape["grid"]
    for m1, m2 in zip(site_masks(prepare_sites(landscape["sites"], g), g), site_masks(prepare_sites(wgs, g), g), strict=True):
        np.testing.assert_array_equal(m1, m2)
    cols = [c for c in evaluated.columns if c not in ("geometry", "euclid_to_source_m", "dist_to_territory_m")]
    pd.testing.assert_frame_equal(pd.DataFrame(got[cols]), pd.DataFrame(evaluated[cols]))
    np.testing.assert_allclose(got["euclid_to_source_m"], evaluated["euclid_to_source_m"], atol=1.0)  # reprojected edges


def test_compute_sites_from_a_user_file(landscape, tmp_path):
    from leopardgeo.runner.pipeline import Inputs, compute_sites
    from leopardgeo.runner.registry import TerritoryConfig

    g = landscape["grid"]
    path = tmp_path / "sites.gpkg"
    landscape["sites"].to_crs("EPSG:4326").to_file(path, layer="кандидаты", driver="GPKG")
    cfg = RunConfig(
        base_dir=str(tmp_path),
        patches=PatchConfig(min_area_ha=0),
        sites=SiteConfig(candidates=VectorInput(path="sites.gpkg", layer="кандидаты"), rank_stability_draws=200),
        territories=TerritoryConfig(min_area_ha=10, max_area_ha=100, female_need_ha=20, max_cost_m=1e9),  # 1-ha cells
    )
    inputs = Inputs(grid=g, valid=np.ones(g.shape, bool), protected_areas=landscape["pas"])
    arrays = (landscape["suit"], landscape["res"], landscape["labels"], landscape["patches"])
    out = compute_sites(cfg, inputs, *arrays, landscape["graph"])
    t = out.table
    assert list(t["name"]) == ["Большой", "Малый"] and list(t["rank"]) == [1, 2]
    assert t["score"].between(0, 100).all() and t["first_share"].sum() == pytest.approx(1.0)
    assert {f"n_{c}" for c in out.weights} <= set(t.columns)
    assert out.source.name == "Land of the Leopard NP" and out.summary()["sites"][0]["name"] == "Большой"
    # the simulation of each site, wired into the table
    assert set(out.simulation_results) == {"Большой", "Малый"}
    for row in t.itertuples():
        r = out.simulation_results[row.name]
        assert r.adults.shape == (500, 101)  # [sites] simulation_runs, simulation_years
        nc = r.corridor_results["no_corridor"]  # compared with no corridor, same seeds
        assert nc.adults.shape == r.adults.shape and nc.to_source.sum() == 0 and nc.from_source.sum() == 0
        assert row.persistence_50y_no_corridor == nc.persistence_at(50)
        assert row.persistence_25y == r.persistence_at(25) and row.persistence_50y == r.persistence_at(50)
        assert 0 <= row.persistence_50y <= row.persistence_25y <= 1
        assert row.dispersers_to_source == pytest.approx(float(np.mean(r.to_source)))
        assert out.simulation["sites"][row.name]["site_id"] == row.site_id
    assert (out.simulation_results["Большой"].adult_females[:, 0] == 2).all()  # 2 founding females settle
    auto = compute_sites(
        cfg.replace(sites=SiteConfig(candidates="auto", min_females=1, rank_stability_draws=10)),
        inputs, landscape["suit"], landscape["res"], landscape["labels"], landscape["patches"], landscape["graph"],
    )  # fmt: skip
    assert len(auto.table) == 2 and (auto.table["capacity_females"] >= 1).all()  # both patches away from the source
    with pytest.raises(DataError, match="min_females"):
        compute_sites(
            cfg.replace(sites=SiteConfig(candidates="auto", min_females=10_000)),
            inputs, landscape["suit"], landscape["res"], landscape["labels"], landscape["patches"], landscape["graph"],
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[inputs\] sites"):
        compute_sites(cfg.replace(sites=SiteConfig()), inputs, *arrays)


def test_source_falls_back_to_the_largest_patch(landscape):
    ls = landscape
    src = find_source(ls["grid"], labels=ls["labels"], patches=ls["patches"], protected_areas=ls["pas"], name="Nowhere")
    biggest = int(landscape["patches"].sort_values("area_ha").iloc[-1]["patch_id"])
    assert src.kind == "patch" and src.patch_ids == (biggest,)


# --------------------------------------------------------------------------- 6. errors
def test_candidate_errors(landscape):
    g = landscape["grid"]
    with pytest.raises(DataError, match="empty layer"):
        prepare_sites(landscape["sites"].iloc[:0], g)
    pts = gpd.GeoDataFrame({"name": ["p"]}, geometry=[shapely.Point(505_000, 4_798_000)], crs=g.crs)
    with pytest.raises(DataError, match="polygons"):
        prepare_sites(pts, g)
    with pytest.raises(DataError, match="name column 'nom'"):
        prepare_sites(landscape["sites"], g, name_field="nom")
    far = gpd.GeoDataFrame({"name": ["far"]}, geometry=[shapely.box(0, 0, 1000, 1000)], crs=g.crs)
    with pytest.raises(AlignmentError, match="outside"):
        prepare_sites(far, g)
    tiny = gpd.GeoDataFrame({"name": ["tiny"]}, geometry=[shapely.box(505_010, 4_798_010, 505_040, 4_798_040)], crs=g.crs)
    with pytest.raises(DataError, match="smaller than a 100 m cell"):
        site_masks(prepare_sites(tiny, g), g)
    nocrs = landscape["sites"].set_crs(None, allow_override=True)
    from leopardgeo.core.errors import CRSError

    with pytest.raises(CRSError):
        prepare_sites(nocrs, g)
    unnamed = gpd.GeoDataFrame({"code": [7]}, geometry=[shapely.box(505_000, 4_797_000, 506_000, 4_798_000)], crs=g.crs)
    assert prepare_sites(unnamed, g)["name"].tolist() == ["site 1"]


def test_config_section():
    cfg = load_config_string('[sites]\ncandidates = {path = "s.gpkg", layer = "x"}\nweights = {capacity_females = 1.0}\n')
    assert cfg.sites.candidates == VectorInput(path="s.gpkg", layer="x") and cfg.sites.weights == {"capacity_females": 1.0}
    assert load_config_string('[sites]\ncandidates = "auto"').sites.candidates == "auto"
    for bad, match in (
        ('candidates = "sites.gpkg"', "candidates = {path"),
        ("weights = {area = 1.0}", "unknown criterion 'area'"),
        ("weights = {capacity_females = 0.0}", "at least one weight"),
        ('directions = {urban_frac = "up"}', "benefit"),
        ("weight_spread = 1.0", r"\[0, 1\)"),
        ("founders_female = -1", "integer >= 0"),
        ('simulate_sites = "best"', "'all' or 'top'"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config_string(f"[sites]\n{bad}\n")


# --------------------------------------------------------------------------- 7. command line on a small config
def test_cli_sites_and_report_on_a_small_config(tmp_path):
    """`leopardgeo sites` on 500 m cells: sites from a file in EPSG:4326, Cyrillic names; then `leopardgeo report`."""
    import json

    from click.testing import CliRunner

    from leopardgeo.cli import cli
    from leopardgeo.testing import synthetic_raster

    suit = np.full((40, 120), 0.2, dtype="float32")
    suit[10:30, 0:15] = 0.9  # source
    suit[5:35, 30:65] = 0.95  # big, near
    suit[12:28, 95:115] = 0.8  # small, far
    origin = (500_000.0, 4_800_000.0)
    synthetic_raster(tmp_path / "land.tif", np.ones(suit.shape), cell_size_m=500, origin=origin, dtype="uint8")
    synthetic_raster(tmp_path / "suit.tif", suit, cell_size_m=500, origin=origin)

    def box(r0, r1, c0, c1):
        return shapely.box(origin[0] + c0 * 500, origin[1] - r1 * 500, origin[0] + c1 * 500, origin[1] - r0 * 500)

    gpd.GeoDataFrame({"NAME": ["Land of the Leopard"]}, geometry=[box(10, 30, 0, 15)], crs=TEST_CRS).to_file(
        tmp_path / "pa.gpkg", layer="pa"
    )
    gpd.GeoDataFrame(
        {"код": [1, 2], "название": ["Ближний", "Дальний"]}, geometry=[box(5, 35, 30, 65), box(12, 28, 95, 115)], crs=TEST_CRS
    ).to_crs("EPSG:4326").to_file(tmp_path / "участки.gpkg", layer="участки")
    (tmp_path / "c.toml").write_text(
        """
[grid]
template = "land.tif"
[inputs]
landmask = "land.tif"
suitability = "suit.tif"
protected_areas = {path = "pa.gpkg", layer = "pa"}
[habitat]
method = "raster"
[patches]
min_area_ha = 0
[sites]
candidates = {path = "участки.gpkg", layer = "участки"}
rank_stability_draws = 300
simulation_runs = 20
[territories]
enabled = false
female_need_ha = 5000
male_multiple = 2.0
""",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sites", str(tmp_path / "c.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Reintroduction sites" in res.output and "Ближний" in res.output
    t = pd.read_csv(out / "sites.csv")
    assert list(t["name"]) == ["Ближний", "Дальний"] and list(t["rank"]) == [1, 2]
    assert t["capacity_females"].iloc[0] > t["capacity_females"].iloc[1] > 0  # 5,000 ha territories on 25 ha cells
    layer = gpd.read_file(out / "leopardgeo.gpkg", layer="sites")
    assert {"score", "rank", "first_share", "cwd_to_source", "eff_resistance", "n_capacity_females"} <= set(layer.columns)
    doc = json.loads((out / "sites.json").read_text(encoding="utf-8"))
    assert doc["source"] == "Land of the Leopard" and len(doc["rank_stability"]) == 2
    md = (out / "sites.md").read_text(encoding="utf-8")
    assert md.startswith("## Reintroduction sites") and "Ближний" in md and "Rank stability" in md
    assert t["persistence_25y"].between(0, 1).all() and t["persistence_50y"].between(0, 1).all()
    sim = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert set(sim["sites"]) == {"Ближний", "Дальний"} and sim["sites"]["Ближний"]["n_runs"] == 20
    assert {(r["site"], r["corridor"]) for r in sim["table"]} == {
        (n, c) for n in ("Ближний", "Дальний") for c in ("today", "no_corridor")
    }
    assert "elapsed_s" not in json.dumps(sim) and "build_s" not in json.dumps(sim)  # reproducible: no timings
    assert (out / "simulation.png").stat().st_size > 10_000 and "Population simulation" in md
    res = CliRunner().invoke(cli, ["sites", str(tmp_path / "c.toml"), "--out", str(out)])
    assert res.exit_code != 0 and "--overwrite" in res.output
    res = CliRunner().invoke(cli, ["report", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "Reintroduction sites" in res.output and (out / "sites_report.csv").exists()
    assert "Population viability by corridor (modelled)" in (out / "report.md").read_text(encoding="utf-8")
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run")])  # on by default
    assert res.exit_code == 0, res.output
    assert "Reintroduction sites (2; source Land of the Leopard): best Ближний" in res.output
    assert (tmp_path / "run" / "simulation.png").exists()
    text = (tmp_path / "c.toml").read_text(encoding="utf-8").replace("simulation_runs = 20", "simulate = false")
    text += "[links]\nenabled = false\n"
    (tmp_path / "nolinks.toml").write_text(text, encoding="utf-8")
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "nolinks.toml"), "--out", str(tmp_path / "nl")])
    assert res.exit_code == 0, res.output
    nl = pd.read_csv(tmp_path / "nl" / "sites.csv")
    assert nl["n_corridors"].eq(0).all() and nl["dPC_gain_pct"].isna().all()  # no graph: no corridors, no add-patch gain
    assert "persistence_25y" not in nl.columns and not (tmp_path / "nl" / "simulation.json").exists()
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "nl")])
    assert res.exit_code == 0, res.output
    assert "Reintroduction sites" in res.output and "leopardgeo links" in res.output


def test_distance_to_resident_territories(landscape):
    """Territories with half their area in the source are the residents; others (e.g. in a site) are ignored."""
    ls = landscape
    g = ls["grid"]
    src = find_source(g, labels=ls["labels"], patches=ls["patches"], protected_areas=ls["pas"])
    x0, y1 = 500_000, 4_800_000
    terr = gpd.GeoDataFrame(
        {"sex": ["F", "F", "M"]},
        geometry=[
            shapely.box(x0 + 500, y1 - 2000, x0 + 1500, y1 - 1500),  # half inside the source (cols 5-15, source to col 10)
            shapely.box(x0 + 3000, y1 - 2000, x0 + 3500, y1 - 1500),  # inside the big site: not a resident
            shapely.box(x0 + 200, y1 - 2500, x0 + 400, y1 - 2300),  # wholly in the source
        ],
        crs=g.crs,
    )
    out = evaluate_sites(
        prepare_sites(ls["sites"], g), suitability=ls["suit"], resistance=ls["res"], labels=ls["labels"],
        patches=ls["patches"], grid=g, source=src, territories=terr, territory=TERR, capacity_replicates=1,
    )  # fmt: skip
    # big site starts at x0 + 2000; the first territory ends at x0 + 1500 -> 500 m; small site starts at x0 + 8000
    assert out["dist_to_territory_m"].tolist() == pytest.approx([500.0, 6500.0])


def test_duplicate_names_are_made_unique(landscape):
    g = landscape["grid"]
    twins = landscape["sites"].assign(название=["Участок", "Участок"])
    assert prepare_sites(twins, g)["name"].tolist() == ["Участок #1", "Участок #2"]


def test_cli_sites_without_candidates_fails_before_running(tmp_path):
    from click.testing import CliRunner

    from leopardgeo.cli import cli

    (tmp_path / "c.toml").write_text('[grid]\ntemplate = "missing.tif"\n')
    res = CliRunner().invoke(cli, ["sites", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "[inputs] sites" in res.output and "candidates = 'auto'" in res.output
    assert not (tmp_path / "o").exists()


def test_simulation_on_the_territories_of_the_territory_stage(landscape, evaluated):
    """With a landscape-wide TerritoryResult the simulation uses it (restricted by cost) instead of packing its own."""
    from leopardgeo.stages.simulate import SimulationParams
    from leopardgeo.stages.sites import simulate_sites, simulation_columns
    from leopardgeo.stages.territories import pack_territories

    ls = landscape
    g = ls["grid"]
    kw = {k: v for k, v in TERR.items() if k != "max_cost_m"}
    terr = pack_territories(ls["suit"], ls["res"], g, habitat=ls["labels"] > 0, max_cost_m=1e9, **kw)
    src = find_source(g, labels=ls["labels"], patches=ls["patches"], protected_areas=ls["pas"])
    sites = prepare_sites(ls["sites"], g)
    masks = dict(zip(sites["site_id"], site_masks(sites, g), strict=True))
    p = SimulationParams(n_runs=30, years=25, max_dispersal_cost_m=3000.0, mate_search_cost_m=1000.0)
    out = simulate_sites(
        evaluated, masks, suitability=ls["suit"], resistance=ls["res"], labels=ls["labels"], grid=g, source=src,
        params=p, territories=terr, margin_m=1000.0,
    )  # fmt: skip
    assert set(out) == {"Большой", "Малый"}
    big = out["Большой"]
    in_site = terr.table[(terr.table["sex"] == "F") & terr.table.geometry.within(sites.geometry.iloc[0].buffer(1))]
    assert big.landscape_summary["site_female_territories"] >= len(in_site) > 0
    cols = simulation_columns(out).set_index("name")
    assert cols.loc["Большой", "persistence_25y"] == big.persistence_at(25) and np.isnan(cols.loc["Большой", "persistence_50y"])


def test_simulation_packs_its_own_territories_around_site_and_source(landscape, evaluated):
    """Without a TerritoryResult each site's landscape is packed in the bounding box of site and source plus the margin."""
    from leopardgeo.stages.simulate import SimulationParams
    from leopardgeo.stages.sites import simulate_sites
    from leopardgeo.stages.territories import pack_territories

    ls = landscape
    g = ls["grid"]
    src = find_source(g, labels=ls["labels"], patches=ls["patches"], protected_areas=ls["pas"])
    sites = prepare_sites(ls["sites"], g)
    masks = dict(zip(sites["site_id"], site_masks(sites, g), strict=True))
    p = SimulationParams(n_runs=10, years=5, max_dispersal_cost_m=3000.0, mate_search_cost_m=1000.0)
    out = simulate_sites(
        evaluated, masks, suitability=ls["suit"], resistance=ls["res"], labels=ls["labels"], grid=g, source=src,
        params=p, territory=TERR, margin_m=500.0,
    )  # fmt: skip
    # the small site (rows 15-24, cols 80-91) and the source (rows 10-29, cols 0-9), 5 cells of margin: rows 5-34,
    # cols 0-96, packed here by hand on that window
    win = (slice(5, 35), slice(0, 97))
    bounds = (500_000, 4_800_000 - 35 * 100, 500_000 + 97 * 100, 4_800_000 - 5 * 100)
    sub = Grid.from_bounds(bounds, cell_size_m=100, crs=TEST_CRS)
    habitat = ls["labels"][win] > 0
    own = pack_territories(np.where(habitat, ls["suit"][win], np.nan), ls["res"][win], sub, habitat=habitat, **TERR)
    s = out["Малый"].landscape_summary
    n_female = s["site_female_territories"] + s["source_female_territories"] + s["other_female_territories"]
    assert n_female == int((own.table["sex"] == "F").sum()) > 0
    assert s["site_female_territories"] >= 1 and s["source_female_territories"] >= 1
