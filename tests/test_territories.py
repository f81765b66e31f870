"""Territory packing: counts and areas against closed forms, growth order against scipy's Dijkstra, invariants."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage, sparse
from scipy.sparse.csgraph import dijkstra

from leopardgeo.core.errors import AlignmentError, ConfigError, DataError, ResistanceError
from leopardgeo.core.grid import Grid
from leopardgeo.runner.pipeline import Inputs, territory_quality
from leopardgeo.runner.registry import RunConfig, TerritoryConfig, load_config_string
from leopardgeo.stages.territories import capacity, capacity_table, pack_territories, territory_raster
from leopardgeo.testing import naive_pack_females

CRS = "EPSG:32652"


def grid_of(rows: int, cols: int, cell_m: float = 100.0) -> Grid:
    """A grid of ``rows x cols`` cells (100 m cells hold 1 ha)."""
    return Grid.from_bounds((500_000, 4_800_000, 500_000 + cols * cell_m, 4_800_000 + rows * cell_m), cell_size_m=cell_m, crs=CRS)


def pack(q, g, **kw):
    kw.setdefault("max_cost_m", math.inf)
    return pack_territories(np.asarray(q, dtype=float), kw.pop("resistance", np.ones(g.shape)), g, **kw)


# ---------------------------------------------------------------------- closed forms
@pytest.mark.parametrize(("quality", "need_ha"), [(1.0, 100.0), (0.8, 100.0), (1.0, 60.0)])
def test_uniform_quality_packs_area_over_territory_size(quality, need_ha):
    g = grid_of(60, 60)  # 3,600 ha of 1 ha cells
    res = pack(np.full(g.shape, quality), g, min_area_ha=40, max_area_ha=400, female_need_ha=need_ha, sexes=("F",))
    size_ha = math.ceil(need_ha / quality - 1e-9)  # cells of quality q hold q ha each: need / q cells, rounded up
    expected = 3600 / size_ha
    females = res.replicates["females"].iloc[0]
    assert abs(females - expected) <= 0.1 * expected, (females, expected)
    assert (res.table["area_ha"] == size_ha).all()
    assert res.table["area_ha"].between(40, 400).all()


def test_halving_quality_doubles_the_area_of_both_sexes():
    g = grid_of(40, 40)
    kw = {"min_area_ha": 10, "max_area_ha": 200, "female_need_ha": 25, "male_multiple": 2.0}
    good = pack(np.full(g.shape, 0.9), g, **kw).table
    poor = pack(np.full(g.shape, 0.45), g, **kw, min_quality=0.4).table
    # 25 ha / 0.9 = 27.8 -> 28 cells; 25 / 0.45 = 55.6 -> 56 cells; males 50 / 0.9 -> 56, 50 / 0.45 -> 112
    assert set(good.loc[good["sex"] == "F", "area_ha"]) == {28}
    assert set(poor.loc[poor["sex"] == "F", "area_ha"]) == {56}
    assert set(good.loc[good["sex"] == "M", "area_ha"]) == {56}
    assert set(poor.loc[poor["sex"] == "M", "area_ha"]) == {112}


def test_no_territory_below_the_quality_that_would_need_more_than_max_area():
    g = grid_of(40, 40)
    kw = {"min_area_ha": 10, "max_area_ha": 300, "female_need_ha": 100, "min_quality": 0.0, "sexes": ("F",)}
    below = pack(np.full(g.shape, 0.33), g, **kw)  # 100 / 0.33 = 303 ha > 300 ha
    assert below.replicates["females"].iloc[0] == 0 and len(below.table) == 0
    above = pack(np.full(g.shape, 0.34), g, **kw)  # 100 / 0.34 = 294.1 -> 295 cells <= 300
    assert 4 <= above.replicates["females"].iloc[0] <= 5  # 1,600 ha / 295 ha = 5.4
    assert (above.table["area_ha"] == 295).all()


def test_territories_below_min_area_are_rejected():
    g = grid_of(20, 20)
    res = pack(np.ones(g.shape), g, min_area_ha=30, max_area_ha=100, female_need_ha=20, sexes=("F",))
    assert len(res.table) == 0  # quality 1 meets the 20 ha need with 20 cells < 30 ha


def test_males_overlap_females_but_not_males():
    g = grid_of(30, 30)
    res = pack(np.ones(g.shape), g, min_area_ha=10, max_area_ha=100, female_need_ha=25)
    both = (res.female > 0) & (res.male > 0)
    assert both.sum() > 0.5 * (res.male > 0).sum()  # males are packed regardless of females
    assert set(territory_raster(res)[both]) == {3}
    male = res.table[res.table["sex"] == "M"]
    assert (male["area_ha"] == 50).all()
    assert np.bincount(res.male.ravel())[male["territory_id"]].tolist() == male["n_cells"].tolist()
    geoms = male.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            assert geoms[i].intersection(geoms[j]).area == pytest.approx(0, abs=1e-6)


# ---------------------------------------------------------------------- growth order
def dijkstra_costs(resistance: np.ndarray, eligible: np.ndarray, seed: int, cell_m: float, connectivity: int) -> np.ndarray:
    """Cost from ``seed`` to every cell over the eligible cells (step length x mean resistance), by scipy."""
    rows, cols = resistance.shape
    idx = np.arange(rows * cols).reshape(rows, cols)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    a, b, w = [], [], []
    for dr, dc in offsets:
        for r in range(rows):
            for c in range(cols):
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < cols and eligible[r, c] and eligible[rr, cc]:
                    a.append(idx[r, c])
                    b.append(idx[rr, cc])
                    w.append(cell_m * math.hypot(dr, dc) * (resistance[r, c] + resistance[rr, cc]) / 2)
    graph = sparse.coo_matrix((w, (a, b)), shape=(rows * cols, rows * cols)).tocsr()
    return dijkstra(graph, directed=False, indices=seed)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_territory_is_the_nearest_cells_by_dijkstra_cost(connectivity, seed):
    rng = np.random.default_rng(seed)
    g = grid_of(15, 17)
    resistance = rng.uniform(1, 5, g.shape)  # continuous: no ties in cost
    habitat = rng.random(g.shape) > 0.15
    quality = np.full(g.shape, 0.6)
    start = (7, 8)
    quality[start] = 1.0  # the only cell of the top quality bin: the first seed
    habitat[start] = True
    res = pack(quality, g, resistance=resistance, habitat=habitat, min_area_ha=1, max_area_ha=200, female_need_ha=20,
               sexes=("F",), connectivity=connectivity)  # fmt: skip
    cost = dijkstra_costs(resistance, habitat, start[0] * g.shape[1] + start[1], 100.0, connectivity)
    order = np.argsort(cost, kind="stable")
    order = order[np.isfinite(cost[order])]
    resource = np.cumsum(quality.ravel()[order])  # ha: cells are 1 ha
    k = int(np.searchsorted(resource, 20 - 1e-9)) + 1  # fewest nearest cells holding the 20 ha need
    if k > order.size:
        assert (res.female == 0).all()
        return
    expected = np.zeros(quality.size, dtype=bool)
    expected[order[:k]] = True
    assert np.array_equal(res.female.ravel() == 1, expected)


def test_growth_stops_at_the_cost_radius():
    g = grid_of(21, 21)
    quality = np.full(g.shape, 0.6)
    quality[10, 10] = 1.0
    kw = {"min_area_ha": 1, "max_area_ha": 400, "female_need_ha": 30, "sexes": ("F",)}
    # 30 ha needs 50 cells; within 300 cost-m of the centre lie 29 cells (|d| <= 3 cells on a uniform grid, 8 neighbours)
    assert len(pack(quality, g, max_cost_m=300.0, **kw).table) == 0
    assert len(pack(quality, g, max_cost_m=600.0, **kw).table) >= 1


# ---------------------------------------------------------------------- invariants
@st.composite
def landscapes(draw):
    rows = draw(st.integers(6, 22))
    cols = draw(st.integers(6, 22))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    raw = ndimage.gaussian_filter(rng.random((rows, cols)), draw(st.floats(0.5, 3)))
    quality = (raw - raw.min()) / max(raw.max() - raw.min(), 1e-9)
    quality[rng.random((rows, cols)) < draw(st.floats(0, 0.2))] = np.nan
    resistance = rng.uniform(1, draw(st.floats(1.5, 20)), (rows, cols))
    resistance[rng.random((rows, cols)) < 0.05] = np.nan
    habitat = rng.random((rows, cols)) > draw(st.floats(0, 0.3))
    need = draw(st.floats(2, 15))
    mult = draw(st.floats(1, 2.5))
    params = {
        "female_need_ha": need,
        "male_multiple": mult,
        "min_area_ha": draw(st.floats(0.5, need)),
        "max_area_ha": need * mult * draw(st.floats(1.01, 4)),
        "min_quality": draw(st.floats(0, 0.6)),
        "max_cost_m": draw(st.sampled_from([math.inf, 300.0, 800.0, 2000.0])),
        "connectivity": draw(st.sampled_from([4, 8])),
        "seed": draw(st.integers(0, 1000)),
    }
    return grid_of(rows, cols), quality, resistance, habitat, params


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(landscapes())
def test_packing_invariants(case):
    g, quality, resistance, habitat, params = case
    zone = np.zeros(g.shape, dtype="int32")
    zone[:, : g.shape[1] // 2] = 1
    zone[: g.shape[0] // 2, g.shape[1] // 2 :] = 2
    res = pack_territories(quality, resistance, g, habitat=habitat, zones={"z": zone}, **params)
    eligible = habitat & np.isfinite(quality) & (np.nan_to_num(quality) >= params["min_quality"]) & np.isfinite(resistance)
    q = np.nan_to_num(quality)
    need = {"F": params["female_need_ha"], "M": params["female_need_ha"] * params["male_multiple"]}
    structure = ndimage.generate_binary_structure(2, 1 if params["connectivity"] == 4 else 2)
    for sex, ids in (("F", res.female), ("M", res.male)):
        rows = res.table[res.table["sex"] == sex]
        assert (ids[~eligible] == 0).all()  # every territory cell is eligible habitat
        counts = np.bincount(ids.ravel(), minlength=int(ids.max()) + 1)
        assert set(np.flatnonzero(counts[1:]) + 1) == set(rows["territory_id"])
        # no cell went to two territories of one sex: each keeps every cell the packing gave it
        assert counts[rows["territory_id"]].tolist() == rows["n_cells"].tolist()
        assert rows["area_ha"].sum() <= eligible.sum() * g.cell_area_ha + 1e-9
        for r in rows.itertuples():
            cells = ids == r.territory_id
            assert q[cells].sum() * g.cell_area_ha >= need[sex] * (1 - 1e-9)
            assert params["min_area_ha"] * (1 - 1e-9) <= r.area_ha <= params["max_area_ha"] * (1 + 1e-9)
            assert r.area_ha == pytest.approx(cells.sum() * g.cell_area_ha)
            assert r.mean_quality == pytest.approx(q[cells].mean())
            assert ndimage.label(cells, structure=structure)[1] == 1  # grown from one seed: connected
            votes = Counter(zone[cells][zone[cells] != 0].tolist())
            top = max(votes.values()) if votes else 0
            assert r.z == (min(k for k, v in votes.items() if v == top) if votes else 0)
            assert cells.sum() == 1 or r.geometry.area == pytest.approx(cells.sum() * g.cell_size_m**2)
    table = capacity_table(res)
    zone_rows = table[table["zone_type"] == "z"]
    total = table[table["zone_type"] == "all"].iloc[0]
    for what in ("females", "males", "adults"):
        assert zone_rows[what].sum() == total[what] == res.replicates[what].iloc[0]


# ---------------------------------------------------------------------- seeds and replicates
def test_deterministic_for_a_seed_and_varies_between_seeds():
    g = grid_of(30, 30)
    q = np.ones(g.shape)
    kw = {"min_area_ha": 10, "max_area_ha": 100, "female_need_ha": 20}
    a, b, c = pack(q, g, seed=3, **kw), pack(q, g, seed=3, **kw), pack(q, g, seed=4, **kw)
    assert np.array_equal(a.female, b.female) and np.array_equal(a.male, b.male)
    assert a.table.drop(columns="geometry").equals(b.table.drop(columns="geometry"))
    assert not np.array_equal(a.female > 0, c.female > 0)


def test_replicates_are_seed_plus_r_and_their_statistics():
    g = grid_of(36, 36)
    rng = np.random.default_rng(5)
    q = np.clip(ndimage.gaussian_filter(rng.random(g.shape), 2) * 2, 0, 1)
    kw = {"min_area_ha": 5, "max_area_ha": 120, "female_need_ha": 15, "min_quality": 0.3}
    many = pack(q, g, seed=10, replicates=4, **kw)
    alone = [pack(q, g, seed=10 + r, **kw).replicates.iloc[0] for r in range(4)]
    for what in ("females", "males", "adults"):
        counts = np.array([row[what] for row in alone])
        assert many.replicates[what].tolist() == counts.tolist()
        total = capacity_table(many).set_index("zone_type").loc["all"]
        assert total[f"{what}_mean"] == pytest.approx(counts.mean())
        assert total[f"{what}_sd"] == pytest.approx(counts.std(ddof=1))
        assert (total[f"{what}_min"], total[f"{what}_max"]) == (counts.min(), counts.max())
    serial = pack(q, g, seed=10, replicates=4, workers=1, **kw)
    assert serial.replicates.equals(many.replicates)
    assert serial.replicate_territories.equals(many.replicate_territories)


def test_capacity_by_zone_counts_each_territory_once():
    g = grid_of(20, 40)
    halves = np.ones(g.shape, dtype="int32")
    halves[:, 20:] = 2
    res = pack(np.ones(g.shape), g, zones={"patch": halves}, min_area_ha=10, max_area_ha=100, female_need_ha=40, replicates=3)
    cap = capacity(res, "patch")
    assert cap["adults"].sum() == res.replicates["adults"].iloc[0]
    per_rep = res.replicate_territories.groupby(["replicate", "patch"]).size().unstack(fill_value=0)
    np.testing.assert_allclose(cap.set_index("patch")["adults_mean"], per_rep.mean(axis=0))
    assert np.isnan(capacity(pack(np.ones(g.shape), g, zones={"patch": halves}, min_area_ha=10, max_area_ha=100,
                                  female_need_ha=40), "patch")["adults_sd"]).all()  # fmt: skip


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"quality": np.ones((5, 6))}, AlignmentError, r"quality: expected the grid's shape \(10, 10\), found \(5, 6\)"),
        ({"quality": np.full((10, 10), 1.5)}, DataError, "quality: expected values from 0 to 1"),
        ({"quality": np.full((10, 10), np.nan)}, DataError, "every cell is no data"),
        ({"resistance": np.zeros((10, 10))}, ResistanceError, "resistance: expected values > 0 and finite"),
        ({"habitat": np.full((10, 10), 2)}, DataError, "habitat: expected a boolean mask"),
        ({"zones": {"z": np.ones((10, 10))}}, DataError, "expected an integer label raster"),
        ({"min_area_ha": 50, "max_area_ha": 40}, ConfigError, "expected min_area_ha < max_area_ha"),
        ({"female_need_ha": 30, "male_multiple": 2, "max_area_ha": 40}, ConfigError, "male need: expected at most"),
        ({"male_multiple": 0.5}, ConfigError, "male_multiple: expected a finite number >= 1"),
        ({"min_quality": 2}, ConfigError, "min_quality: expected a quality from 0 to 1"),
        ({"max_cost_m": -1}, ConfigError, "max_cost_m: expected a positive number"),
        ({"replicates": 0}, ConfigError, "replicates: expected an integer >= 1"),
        ({"connectivity": 6}, ConfigError, "connectivity: expected 4"),
        ({"sexes": ("F", "X")}, ConfigError, "sexes: expected"),
        ({"seed": -1}, ConfigError, "seed: expected an integer >= 0"),
    ],
)
def test_bad_input_raises_a_helpful_error(change, error, match):
    g = grid_of(10, 10)
    args = {"quality": np.ones(g.shape), "resistance": np.ones(g.shape)}
    kw = {"min_area_ha": 5, "max_area_ha": 40, "female_need_ha": 10}
    for k, v in change.items():
        (args if k in args else kw)[k] = v
    with pytest.raises(error, match=match):
        pack_territories(args["quality"], args["resistance"], g, **kw)


def test_capacity_of_an_unknown_zone_names_the_known_ones():
    g = grid_of(10, 10)
    res = pack(np.ones(g.shape), g, min_area_ha=5, max_area_ha=40, female_need_ha=10)
    with pytest.raises(ConfigError, match=r"zone: expected one of the zone layers .*\[\].*'country'"):
        capacity(res, "country")


# ---------------------------------------------------------------------- config and prey quality
def test_config_section_defaults_and_errors():
    tc = RunConfig().territories
    assert (tc.enabled, tc.min_area_ha, tc.max_area_ha, tc.quality) == (True, 5000, 30000, "suitability")
    assert tc.female_need_ha == 14100  # derived from the SECR density (the config field's doc)
    assert load_config_string("[territories]\nmax_cost_m = inf\nreplicates = 2").territories.max_cost_m == math.inf
    for text, match in (
        ("[territories]\nneed = 1", "unknown key 'need'; valid keys: enabled, quality"),
        ("[territories]\nquality = 'prey'", "expected prey_full_density"),
        ("[territories]\nquality = 'lynx'", r"expected one of \['suitability', 'prey'\]"),
        ("[territories]\nfemale_need_ha = 26000", "female_need_ha x male_multiple: expected at most max_area_ha"),
        ("[territories]\nreplicates = 0", "replicates: expected an integer >= 1"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config_string(text)


def test_prey_density_becomes_quality_clipped_at_full_density():
    g = grid_of(2, 3)
    density = np.array([[0.0, 5.0, 10.0], [20.0, np.nan, 2.5]])
    valid = np.array([[True, True, True], [True, True, False]])
    cfg = RunConfig(territories=TerritoryConfig(quality="prey", prey_full_density=10.0))
    q = territory_quality(cfg, Inputs(grid=g, valid=valid, rasters={"prey_density": density}), np.zeros(g.shape))
    np.testing.assert_array_equal(q, [[0.0, 0.5, 1.0], [1.0, np.nan, np.nan]])
    with pytest.raises(ConfigError, match="expected \\[inputs\\] prey_density"):
        territory_quality(cfg, Inputs(grid=g, valid=valid), np.zeros(g.shape))
    with pytest.raises(DataError, match="prey_density: expected densities >= 0"):
        territory_quality(cfg, Inputs(grid=g, valid=valid, rasters={"prey_density": -density}), np.zeros(g.shape))
    suit = np.full(g.shape, 0.7)
    assert territory_quality(RunConfig(), Inputs(grid=g, valid=valid), suit) is suit


@pytest.mark.parametrize("case", range(8))
def test_whole_female_packing_equals_a_per_seed_scipy_dijkstra_reference(case):
    """Every territory, seed order, failure and frontier rule, against leopardgeo.testing.naive_pack_females."""
    rng = np.random.default_rng(100 + case)
    rows, cols = (int(v) for v in rng.integers(10, 26, 2))
    g = grid_of(rows, cols)
    raw = ndimage.gaussian_filter(rng.random((rows, cols)), 1.5)
    quality = (raw - raw.min()) / (raw.max() - raw.min())
    quality[rng.random(quality.shape) < 0.05] = np.nan
    resistance = rng.uniform(1, 6, quality.shape)  # continuous: no ties in cost
    habitat = rng.random(quality.shape) > 0.1
    need = float(rng.uniform(3, 12))
    kw = {
        "min_area_ha": need * 0.8,
        "max_area_ha": need * 3,
        "min_quality": float(rng.uniform(0, 0.5)),
        "max_cost_m": (math.inf, 400.0, 900.0)[case % 3],
        "seed": case,
        "connectivity": (4, 8)[case % 2],
    }
    res = pack_territories(quality, resistance, g, habitat=habitat, female_need_ha=need, sexes=("F",), **kw)
    ref = naive_pack_females(quality, resistance, 100.0, habitat=habitat, need_ha=need, **kw)
    assert res.female.max() > 0
    np.testing.assert_array_equal(res.female, ref)
