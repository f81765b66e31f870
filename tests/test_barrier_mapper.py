"""Barrier Mapper: checked against a brute-force reference on scipy cost distances and hand-worked corridors."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leopardgeo.core.errors import ConfigError, DataError, ResistanceError
from leopardgeo.core.grid import Grid
from leopardgeo.stages.barrier_mapper import map_barriers
from leopardgeo.testing import TEST_CRS
from test_costdist import grid_graph, scipy_cost


def grid_of(shape, cell=100.0):
    return Grid.from_bounds((0, 0, shape[1] * cell, shape[0] * cell), cell_size_m=cell, crs=TEST_CRS)


def graph_of(edges):
    G = nx.Graph()
    for a, b, d in edges:
        G.add_edge(a, b, patch_a=a, patch_b=b, cwd=float(d))
    return G


# --------------------------------------------------------------------------- brute-force reference
def reference(res, labels, cwd, links, cell, radii_m, restored, combine):
    """Per cell, per link, per radius: explicit minima over the cells within the circle, then the formula.

    ``cwd`` are scipy Dijkstra rasters; the least-cost distance of a link is the
    least cwd_a over the cells of patch b.  Links are combined in sorted order
    (max or sum), radii by max with the smallest radius on ties; the link a cell
    improves most is the first with the largest improvement.
    """
    nr, nc = res.shape
    rows, cols = np.mgrid[0:nr, 0:nc]
    usable = {p: np.where(np.isfinite(c), c, np.inf) for p, c in cwd.items()}
    lcd = {(a, b): float(usable[a][labels == b].min()) for a, b in links}
    best = np.zeros((nr, nc))
    best_rad = np.full((nr, nc), np.nan)
    best_impr = np.zeros((nr, nc))
    best_link = np.full((nr, nc), -1)
    best_link_impr = np.zeros((nr, nc))
    for radius in sorted(radii_m):
        restored_cost = 2 * radius * restored
        for r, c in itertools.product(range(nr), range(nc)):
            disc = np.hypot((rows - r) * cell, (cols - c) * cell) <= radius * (1 + 1e-10)
            acc, top, top_k = 0.0, 0.0, -1
            for k, (a, b) in enumerate(links):
                impr = max(lcd[a, b] - usable[a][disc].min() - usable[b][disc].min() - restored_cost, 0.0)
                acc = acc + impr if combine == "sum" else max(acc, impr)
                if impr > top:
                    top, top_k = impr, k
            score = acc / (2 * radius)
            if score > best[r, c]:
                best[r, c], best_rad[r, c], best_impr[r, c] = score, radius, acc
                best_link[r, c], best_link_impr[r, c] = top_k, top
    nodata = np.isnan(res)
    for arr in (best, best_rad, best_impr):
        arr[nodata] = np.nan
    return best, best_rad, best_impr, best_link, best_link_impr, lcd


def reference_top(score, radius, cell, n_top):
    """Greedy: cells by score (row-major on ties), each kept unless within max(radius) of one kept."""
    nr, nc = score.shape
    cand = sorted((-score[r, c], r * nc + c) for r in range(nr) for c in range(nc) if score[r, c] > 0)
    kept = []
    for _, flat in cand:
        r, c = divmod(flat, nc)
        if all(((r - r2) * cell) ** 2 + ((c - c2) * cell) ** 2 > max(radius[r, c], radius[r2, c2]) ** 2 for r2, c2 in kept):
            kept.append((r, c))
        if len(kept) == n_top:
            break
    return kept


@st.composite
def landscapes(draw):
    nr, nc = draw(st.integers(3, 11)), draw(st.integers(3, 11))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = rng.uniform(1.0, 30.0, (nr, nc))
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.15]))] = np.nan
    labels = np.zeros((nr, nc), np.int32)
    n_patches = draw(st.integers(2, 4))
    for p in range(1, n_patches + 1):
        r, c = rng.integers(nr), rng.integers(nc)
        labels[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = p
    labels[np.isnan(res)] = 0
    assume(len(np.unique(labels[labels > 0])) >= 2)
    cell = draw(st.sampled_from([100.0, 30.0]))
    radii = draw(st.lists(st.sampled_from([1.0, 1.5, 2.0, 2.3, 3.0]), min_size=1, max_size=3, unique=True))
    restored = draw(st.sampled_from([None, 0.5, 4.0]))
    combine = draw(st.sampled_from(["max", "sum"]))
    connectivity = draw(st.sampled_from([4, 8, 16]))
    return res, labels, cell, [r * cell for r in radii], restored, combine, connectivity


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes())
def test_equals_brute_force_reference(case):
    res, labels, cell, radii_m, restored, combine, conn = case
    graph = grid_graph(res, cell, conn)
    ids = [int(p) for p in np.unique(labels[labels > 0])]
    cwd = {p: scipy_cost(graph, res, labels, [p]) for p in ids}
    links = [(a, b) for a, b in itertools.combinations(ids, 2) if np.isfinite(cwd[a][labels == b]).any()]
    assume(links)
    # edge costs at or above the true least-cost distance (a planar graph may overestimate): the rasters win
    edges = [(a, b, cwd[a][labels == b].min() * (1.0 if k % 2 else 1.25)) for k, (a, b) in enumerate(links)]
    r_restored = float(np.nanmin(res)) if restored is None else restored
    ref_score, ref_rad, ref_impr, ref_link, ref_link_impr, lcd = reference(
        res, labels, cwd, links, cell, radii_m, r_restored, combine
    )
    g = grid_of(res.shape, cell)
    n_top = 4
    out = map_barriers(
        res, labels, graph_of(edges), g, radii_m=radii_m, restored_resistance=restored, combine=combine, n_top=n_top, cwd=cwd
    )
    for arr in (out.score, out.radius_m, out.improvement):
        assert arr.dtype == np.float32 and arr.shape == res.shape
    np.testing.assert_allclose(out.score, ref_score, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out.improvement, ref_impr, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(out.radius_m, ref_rad.astype(np.float32))
    assert np.isnan(out.score[np.isnan(res)]).all()

    # the top layer: the reference's greedy selection, with the link each point improves most
    kept = reference_top(ref_score, ref_rad, cell, n_top)
    top = out.top
    assert top["rank"].tolist() == list(range(1, len(kept) + 1))
    col = np.round((top.geometry.x.to_numpy() - g.bounds[0]) / cell - 0.5).astype(int)
    row = np.round((g.bounds[3] - top.geometry.y.to_numpy()) / cell - 0.5).astype(int)
    assert list(zip(row.tolist(), col.tolist(), strict=True)) == kept
    for (r, c), rec in zip(kept, top.itertuples(), strict=True):
        a, b = links[ref_link[r, c]]
        assert (rec.patch_a, rec.patch_b) == (a, b)
        assert rec.score == pytest.approx(ref_score[r, c], rel=1e-6)
        assert rec.improvement_cwd == pytest.approx(ref_impr[r, c], rel=1e-6)
        assert rec.radius_m == ref_rad[r, c]
        assert rec.pct_of_lcd == pytest.approx(100 * ref_link_impr[r, c] / lcd[a, b], rel=1e-6)

    # with the cost distances computed inside (stopped at each patch's largest link cost): same map
    inner = map_barriers(
        res, labels, graph_of(edges), g, radii_m=radii_m, restored_resistance=restored, combine=combine,
        n_top=0, connectivity=conn, workers=1,
    )  # fmt: skip
    scale = 1e-6 * max(1.0, float(np.nanmax(ref_impr)))
    np.testing.assert_allclose(inner.improvement, ref_impr, rtol=1e-6, atol=scale)
    np.testing.assert_allclose(inner.score, ref_score, rtol=1e-6, atol=scale / (2 * min(radii_m)))
    assert len(inner.top) == 0


# --------------------------------------------------------------------------- hand-worked corridor
def corridor(t, n_cols=21, extra_patch=False):
    """Row 1 of a 3-row grid is a corridor of resistance 1 (rows 0 and 2 are no data), 100 m cells.

    Patch 1 at column 0, patch 2 at column 20 (and patch 3 at column 22), a wall
    of resistance 100 and ``t`` cells centred on column 10.
    """
    res = np.full((3, n_cols), np.nan)
    res[1] = 1.0
    half = (t - 1) // 2
    res[1, 10 - half : 10 + half + 1] = 100.0
    labels = np.zeros((3, n_cols), np.int32)
    labels[1, 0], labels[1, 20] = 1, 2
    if extra_patch:
        labels[1, 22] = 3
    return res, labels


def wall_lcd(t):
    # 20 steps of 100 m from column 0 to 20; step cost = 100 m * (r_u + r_v) / 2:
    #   the 2 steps entering/leaving the wall cost 100 * (1 + 100) / 2 = 5050 each,
    #   the t - 1 steps inside it 100 * 100 = 10000 each, the other 20 - (t + 1) steps 100 each.
    return 2 * 5050 + (t - 1) * 10_000 + (20 - (t + 1)) * 100


@pytest.mark.parametrize("t", [1, 3])
def test_hand_corridor_wall(t):
    res, labels = corridor(t)
    lcd = wall_lcd(t)  # t = 1: 11900, t = 3: 31700
    out = map_barriers(res, labels, graph_of([(1, 2, lcd)]), grid_of(res.shape), radii_m=[300.0], n_top=3)
    # Radius 300 m = 3 cells: the circle around column c covers columns c-3 .. c+3 of the corridor
    # (the rest is no data).  Centred on the wall (column 10) it covers it, and the least costs
    # in it are cwd_1(7) = 7 * 100 = 700 and cwd_2(13) = 7 * 100 = 700; restoring costs
    # 2 * 300 m * 1 (restored resistance = the least resistance, 1), so
    #   LCD' = 700 + 700 + 600 = 2000,   improvement = LCD - 2000,   score = improvement / 600.
    improvement = lcd - 2000  # t = 1: 9900, t = 3: 29700
    assert out.improvement[1, 10] == pytest.approx(improvement, rel=1e-6)
    assert out.score[1, 10] == pytest.approx(improvement / 600, rel=1e-6)
    assert out.radius_m[1, 10] == 300.0
    # Far from the wall (columns 0..3 and 17..20) the circle holds no cell past the wall, so e.g. at
    # column 3: LCD' = cwd_1(0) + cwd_2(6) + 600 = 0 + (LCD - 600) + 600 = LCD: no improvement.
    for c in [*range(4), *range(17, 21)]:
        assert out.improvement[1, c] == 0 and out.score[1, c] == 0 and np.isnan(out.radius_m[1, c])
    # no-data rows: NaN
    assert np.isnan(out.score[[0, 2]]).all() and np.isnan(out.improvement[[0, 2]]).all()


def test_hand_corridor_full_profile_and_top():
    res, labels = corridor(3)
    out = map_barriers(res, labels, graph_of([(1, 2, 31_700)]), grid_of(res.shape), radii_m=[300.0], n_top=3)
    # cwd_1 along the row: 100 c up to column 8, 5850, 15850, 25850 on the wall, then 30900 + 100 (c - 12);
    # cwd_2 mirrored (cwd_2(c) = cwd_1(20 - c)).  Column c sees columns c-3..c+3:
    #   c = 9..11: the whole wall, 100 (c - 3) + 100 (17 - c) + 600 = 2000  -> 31700 - 2000  = 29700
    #   c = 8:     cwd_1(5) + cwd_2(11) + 600 = 500 + 5850 + 600             -> 31700 - 6950  = 24750
    #   c = 7:     cwd_1(4) + cwd_2(10) + 600 = 400 + 15850 + 600            -> 31700 - 16850 = 14850
    #   c = 6:     cwd_1(3) + cwd_2(9) + 600 = 300 + 25850 + 600             -> 31700 - 26750 = 4950
    #   c = 5:     cwd_1(2) + cwd_2(8) + 600 = 200 + 30900 + 600             -> 0
    expected = [0] * 6 + [4950, 14850, 24750] + [29700] * 3 + [24750, 14850, 4950] + [0] * 6
    np.testing.assert_allclose(out.improvement[1], expected, rtol=1e-6)
    np.testing.assert_allclose(out.score[1], np.array(expected) / 600, rtol=1e-6)
    # Top: columns 9..11 tie at 49.5 and column 9 comes first; 10..12 lie within 300 m of it (12 at
    # exactly 300 m), as do 6..8; column 13 (24.75) is 400 m away and kept; 14 is 100 m from 13.
    top = out.top
    assert top["rank"].tolist() == [1, 2]
    assert top.geometry.x.tolist() == [950.0, 1350.0] and top.geometry.y.tolist() == [150.0, 150.0]
    assert top["score"].tolist() == [49.5, 24.75]
    assert top["improvement_cwd"].tolist() == [29_700, 14_850]
    assert top["radius_m"].tolist() == [300.0, 300.0]
    assert top["pct_of_lcd"].tolist() == pytest.approx([100 * 29_700 / 31_700, 100 * 14_850 / 31_700])
    assert top.crs == grid_of(res.shape).crs


def test_smaller_radius_wins_when_its_score_is_higher():
    res, labels = corridor(3)
    out = map_barriers(res, labels, graph_of([(1, 2, 31_700)]), grid_of(res.shape), radii_m=[300.0, 100.0])
    # radius 100 m at column 10 covers the wall exactly: cwd_1(9) + cwd_2(11) + 200 = 5850 + 5850 + 200 = 11900,
    # improvement 19800 over 200 m = 99 per metre, more than 29700 / 600 = 49.5 at 300 m.
    assert out.score[1, 10] == pytest.approx(99.0)
    assert out.radius_m[1, 10] == 100.0
    assert out.improvement[1, 10] == pytest.approx(19_800)
    # at column 8, 100 m sees columns 7..9: 700 + cwd_2(9) + 200 = 700 + 25850 + 200 = 26750, 4950 / 200 = 24.75,
    # less than 300 m's 24750 / 600 = 41.25 (see the profile above)
    assert out.radius_m[1, 8] == 300.0 and out.score[1, 8] == pytest.approx(41.25)


def test_equal_scores_keep_the_smaller_radius():
    # two one-cell walls (resistance 100) at columns 10 and 12 of a 23-column corridor, patches at 0 and 22:
    # LCD = 4 steps touching a wall * 5050 + 18 steps * 100 = 22000; cwd_1(10) = 900 + 5050 = 5950 = cwd_2(12).
    res = np.full((3, 23), np.nan)
    res[1] = 1.0
    res[1, [10, 12]] = 100.0
    labels = np.zeros((3, 23), np.int32)
    labels[1, 0], labels[1, 22] = 1, 2
    out = map_barriers(res, labels, graph_of([(1, 2, 22_000)]), grid_of(res.shape), radii_m=[200.0, 100.0])
    # column 11, 100 m (columns 10..12): 22000 - (5950 + 5950 + 200) = 9900, / 200 m = 49.5
    # column 11, 200 m (columns 9..13):  22000 - (900 + 900 + 400)   = 19800, / 400 m = 49.5: a tie
    assert out.score[1, 11] == 49.5
    assert out.radius_m[1, 11] == 100.0
    assert out.improvement[1, 11] == 9900.0


def test_combine_max_and_sum_over_two_links():
    res, labels = corridor(3, n_cols=23, extra_patch=True)
    # links 1-2 (LCD 31700) and 1-3 (31900: two more steps of 100, through patch 2) share the wall;
    # 2-3 (200) is shorter than any restored circle (600) and never improves.
    edges = [(1, 2, 31_700), (1, 3, 31_900), (2, 3, 200)]
    g = grid_of(res.shape)
    hi = map_barriers(res, labels, graph_of(edges), g, radii_m=[300.0], combine="max")
    su = map_barriers(res, labels, graph_of(edges), g, radii_m=[300.0], combine="sum")
    # at column 10: link 1-2 as in the single corridor, 29700; link 1-3: cwd_1(7) + cwd_3(13) + 600
    # = 700 + 900 + 600 = 2200 -> 31900 - 2200 = 29700.
    assert hi.improvement[1, 10] == pytest.approx(29_700)
    assert su.improvement[1, 10] == pytest.approx(59_400)
    assert su.score[1, 10] == pytest.approx(99.0) and hi.score[1, 10] == pytest.approx(49.5)
    # the two links gain the same everywhere on this row, so the sum is twice the max
    np.testing.assert_allclose(su.improvement[1], 2 * hi.improvement[1], rtol=1e-6)
    # the first link of the tie is reported, with its own share of the improvement
    assert (hi.top.loc[0, "patch_a"], hi.top.loc[0, "patch_b"]) == (1, 2)
    assert su.top.loc[0, "improvement_cwd"] == pytest.approx(59_400)
    assert su.top.loc[0, "pct_of_lcd"] == pytest.approx(100 * 29_700 / 31_700)


def test_max_restored_cwd_leaves_out_links_no_circle_brings_within_reach():
    # the corridor of test_hand_corridor_full_profile_and_top: LCD 31700, best circle (300 m) leaves 2000
    res, labels = corridor(3)
    G, g = graph_of([(1, 2, 31_700)]), grid_of(res.shape)
    every = map_barriers(res, labels, G, g, radii_m=[300.0], n_top=3)
    kept = map_barriers(res, labels, G, g, radii_m=[300.0], n_top=3, max_restored_cwd=2000.0)
    np.testing.assert_array_equal(kept.improvement, every.improvement)  # restored to 2000: within reach
    out = map_barriers(res, labels, G, g, radii_m=[300.0], n_top=3, max_restored_cwd=1999.0)
    assert np.nanmax(out.improvement) == 0 and np.nanmax(out.score) == 0 and out.top.empty
    assert np.isnan(out.score[[0, 2]]).all()  # no data stays NaN
    # with two links the hopeless one drops out and the other keeps its own map: link 1-3 (LCD 31900) is
    # restored at best to 2200 (see test_combine_max_and_sum_over_two_links), link 1-2 to 2000
    res3, labels3 = corridor(3, n_cols=23, extra_patch=True)
    G3 = graph_of([(1, 2, 31_700), (1, 3, 31_900)])
    su = map_barriers(res3, labels3, G3, grid_of(res3.shape), radii_m=[300.0], combine="sum", max_restored_cwd=2100.0)
    assert su.improvement[1, 10] == pytest.approx(29_700)  # link 1-2 alone, not the sum 59400
    assert {(a, b) for a, b in zip(su.top["patch_a"], su.top["patch_b"], strict=True)} == {(1, 2)}


def test_top_layer_on_random_landscape():
    rng = np.random.default_rng(7)
    shape = (40, 50)
    res = rng.uniform(1.0, 40.0, shape)
    res[rng.random(shape) < 0.05] = np.nan
    labels = np.zeros(shape, np.int32)
    for p, (r, c) in enumerate([(3, 3), (5, 40), (33, 8), (30, 44), (20, 25)], start=1):
        labels[r : r + 3, c : c + 3] = p
    labels[np.isnan(res)] = 0
    graph = grid_graph(res, 100.0, 8)
    cwd = {p: scipy_cost(graph, res, labels, [p]) for p in range(1, 6)}
    edges = [(a, b, cwd[a][labels == b].min()) for a, b in itertools.combinations(range(1, 6), 2)]
    g = grid_of(shape)
    out = map_barriers(res, labels, graph_of(edges), g, radii_m=[100, 200, 300], n_top=12, cwd=cwd)
    top = out.top
    assert 0 < len(top) <= 12
    assert list(top.columns) == ["rank", "score", "improvement_cwd", "radius_m", "patch_a", "patch_b", "pct_of_lcd", "geometry"]
    assert top["rank"].tolist() == list(range(1, len(top) + 1))
    assert (np.diff(top["score"].to_numpy()) <= 0).all()
    assert top.loc[0, "score"] == np.nanmax(out.score)
    # cell centres, carrying the raster values
    x, y = top.geometry.x.to_numpy(), top.geometry.y.to_numpy()
    fc, fr = (x - g.bounds[0]) / 100 - 0.5, (g.bounds[3] - y) / 100 - 0.5
    np.testing.assert_array_equal(fc, np.round(fc))
    np.testing.assert_array_equal(fr, np.round(fr))
    rr, cc = fr.astype(int), fc.astype(int)
    np.testing.assert_array_equal(top["score"].to_numpy(), out.score[rr, cc].astype(float))
    np.testing.assert_array_equal(top["radius_m"].to_numpy(), out.radius_m[rr, cc].astype(float))
    np.testing.assert_allclose(top["score"] * 2 * top["radius_m"], top["improvement_cwd"], rtol=1e-6)
    # distinct: no two points within the larger of their radii
    rad = top["radius_m"].to_numpy()
    for i, j in itertools.combinations(range(len(top)), 2):
        assert (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 > max(rad[i], rad[j]) ** 2
    assert set(zip(top["patch_a"], top["patch_b"], strict=True)) <= {(a, b) for a, b, _ in edges}
    assert ((top["pct_of_lcd"] > 0) & (top["pct_of_lcd"] <= 100)).all()
    assert top.crs == g.crs
    # threads do not change the result
    one = map_barriers(res, labels, graph_of(edges), g, radii_m=[100, 200, 300], n_top=12, cwd=cwd, workers=1)
    two = map_barriers(res, labels, graph_of(edges), g, radii_m=[100, 200, 300], n_top=12, cwd=cwd, workers=2)
    for a, b in ((one.score, two.score), (one.radius_m, two.radius_m), (one.improvement, out.improvement)):
        np.testing.assert_array_equal(a, b)


def test_no_links_gives_an_empty_map():
    res, labels = corridor(1)
    out = map_barriers(res, labels, nx.Graph(), grid_of(res.shape), radii_m=[100.0])
    assert (out.score[1] == 0).all() and np.isnan(out.score[0]).all() and np.isnan(out.radius_m).all()
    assert len(out.top) == 0 and list(out.top.columns)[-1] == "geometry"


# --------------------------------------------------------------------------- errors
@pytest.fixture
def small():
    res, labels = corridor(1)
    return res, labels, graph_of([(1, 2, wall_lcd(1))]), grid_of(res.shape)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radii_m": [50.0]}, r"at least one cell \(100 m\).*radii >= 100 m"),
        ({"radii_m": [0.0]}, "positive finite"),
        ({"radii_m": [math.nan]}, "positive finite"),
        ({"radii_m": ["far"]}, "positive finite"),
        ({"radii_m": []}, "at least one detection radius"),
        ({"combine": "mean"}, r"combine: expected one of \['max', 'sum'\]"),
        ({"n_top": -1}, "n_top: expected a whole number >= 0"),
        ({"n_top": 2.5}, "n_top"),
        ({"restored_resistance": 0.0}, "restored_resistance: expected a positive finite"),
        ({"restored_resistance": -3.0}, "restored_resistance"),
        ({"connectivity": 6}, "connectivity"),
        ({"workers": 0}, "workers"),
        ({"max_restored_cwd": 0.0}, "max_restored_cwd: expected a cost-weighted distance > 0"),
        ({"max_restored_cwd": math.nan}, "max_restored_cwd"),
    ],
)
def test_config_errors(small, kwargs, match):
    res, labels, G, g = small
    with pytest.raises(ConfigError, match=match):
        map_barriers(res, labels, G, g, **{"radii_m": [100.0], **kwargs})


def test_data_errors(small):
    res, labels, G, g = small
    with pytest.raises(DataError, match=r"resistance: expected the grid's shape \(3, 21\), found \(3, 20\)"):
        map_barriers(res[:, :20], labels, G, g, radii_m=[100.0])
    bad = res.copy()
    bad[1, 5] = -1.0
    with pytest.raises(ResistanceError, match="expected values > 0"):
        map_barriers(bad, labels, G, g, radii_m=[100.0])
    with pytest.raises(DataError, match="patch_labels: expected the grid's shape"):
        map_barriers(res, labels[:2], G, g, radii_m=[100.0])
    with pytest.raises(DataError, match="integer label raster"):
        map_barriers(res, labels.astype(float), G, g, radii_m=[100.0])
    with pytest.raises(DataError, match=r"patch id\(s\) \[7\]"):
        map_barriers(res, labels, graph_of([(1, 7, 100.0)]), g, radii_m=[100.0])
    bare = nx.Graph()
    bare.add_edge(1, 2)
    with pytest.raises(DataError, match="'cwd'"):
        map_barriers(res, labels, bare, g, radii_m=[100.0])
    ones = np.zeros(res.shape)
    with pytest.raises(DataError, match="none for patch 2"):
        map_barriers(res, labels, G, g, radii_m=[100.0], cwd={1: ones})
    with pytest.raises(DataError, match=r"cwd\[2\]: expected the grid's shape"):
        map_barriers(res, labels, G, g, radii_m=[100.0], cwd={1: ones, 2: ones[:, :3]})


def test_min_restored_probability_config():
    from leopardgeo.runner.registry import load_config_string

    assert load_config_string("").barrier_mapper.min_restored_probability == 0  # every link, as Linkage Mapper
    assert load_config_string("[barrier_mapper]\nmin_restored_probability = 0.01").barrier_mapper.min_restored_probability == 0.01
    for bad in ("1", "-0.1"):
        with pytest.raises(ConfigError, match=r"min_restored_probability: expected a value in \[0, 1\)"):
            load_config_string(f"[barrier_mapper]\nmin_restored_probability = {bad}")
