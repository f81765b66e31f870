"""Least-cost links and the graph, checked against pairwise scipy Dijkstra and hand-worked cases."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import shapely

from leopardgeo.core.errors import ConfigError, DataError, NoPathError
from leopardgeo.core.grid import Grid
from leopardgeo.kernels.costdist import cost_distance, trace_path
from leopardgeo.stages import graph as graph_stage
from leopardgeo.stages.graph import build_graph, gdfs_to_graph, graph_to_gdfs
from leopardgeo.stages.patches import extract_patches
from leopardgeo.testing import TEST_CRS
from test_costdist import grid_graph, scipy_cost


def grid_of(shape, cell=100.0):
    return Grid.from_bounds((0, 0, shape[1] * cell, shape[0] * cell), cell_size_m=cell, crs=TEST_CRS)


def patches_from_mask(mask, cell=100.0):
    g = grid_of(mask.shape, cell)
    labels, p = extract_patches(np.where(mask, 0.9, 0.1).astype("float32"), g, min_area_ha=0, connectivity=4)
    return g, labels, p


def pairwise_lcd(res, labels, a, b, cell, connectivity):
    """Independent reference: scipy Dijkstra from all cells of patch a, minimum over the cells of patch b."""
    graph = grid_graph(res, cell, connectivity)
    d = scipy_cost(graph, res, labels, [a])
    return float(np.min(d[labels == b]))


@st.composite
def two_or_more_patches(draw):
    nr, nc = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = rng.uniform(1.0, 30.0, (nr, nc))
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.1]))] = np.nan
    mask = np.zeros((nr, nc), bool)
    for _ in range(draw(st.integers(2, 4))):
        r, c = rng.integers(nr), rng.integers(nc)
        mask[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = True
    mask &= np.isfinite(res)
    assume(mask.sum() >= 2)
    return res, mask, draw(st.sampled_from([4, 8, 16]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=two_or_more_patches())
def test_one_pass_links_equal_pairwise_least_cost_distances(case):
    res, mask, conn = case
    g, labels, p = patches_from_mask(mask)
    assume(len(p) >= 2)
    G, one_pass = build_graph(res, labels, p, g, connectivity=conn)
    alloc = one_pass.allocation
    for a, b, d in G.edges(data=True):
        lcd = pairwise_lcd(res, labels, a, b, 100.0, conn)
        # the planar link is a path from a to b, so never cheaper than the least-cost distance ...
        assert d["cwd"] >= lcd * (1 - 1e-9)
        # ... and equal to it whenever the pairwise least-cost path stays inside the two allocation regions
        from_a = cost_distance(res, np.where(labels == a, a, 0), cell_size_m=100.0, connectivity=conn)
        cost_b = np.where(labels == b, from_a.cost, np.inf)
        end = np.unravel_index(np.argmin(cost_b), cost_b.shape)
        path = trace_path(from_a.backlink, end, connectivity=conn)
        if set(alloc[path[:, 0], path[:, 1]].tolist()) <= {a, b}:
            assert d["cwd"] == pytest.approx(lcd, rel=1e-9)
    # with 8 neighbours every pair of touching allocation regions is linked
    if conn == 8:
        nr, nc = alloc.shape
        touching = set()
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            r0, r1, c0, c1 = max(0, -dr), nr - max(0, dr), max(0, -dc), nc - max(0, dc)
            x, y = alloc[r0:r1, c0:c1], alloc[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
            m = (x > 0) & (y > 0) & (x != y)
            touching |= {tuple(sorted(t)) for t in zip(x[m].tolist(), y[m].tolist(), strict=True)}
        assert touching == {tuple(sorted(e)) for e in G.edges}


def test_two_patches_in_uniform_resistance_by_hand():
    # patches at columns 0 and 6 of a 1-row strip of 30 m cells, resistance 2:
    # cwd = 6 steps x 30 m x 2 = 360; path through 7 cell centres = 180 m; edge-to-edge gap 5 cells = 150 m
    mask = np.zeros((1, 7), bool)
    mask[0, [0, 6]] = True
    g, labels, p = patches_from_mask(mask, cell=30.0)
    G, _ = build_graph(np.full((1, 7), 2.0), labels, p, g)
    ((_, _, d),) = G.edges(data=True)
    assert d["cwd"] == pytest.approx(360.0)
    assert d["lcp_length_m"] == pytest.approx(180.0)
    assert d["euclid_m"] == pytest.approx(150.0)
    assert d["cwd_to_euclid"] == pytest.approx(360 / 150)
    assert d["cwd_to_lcp_length"] == pytest.approx(2.0)


def test_gaps_measured_once_per_pair_and_read_back():
    # three patches in a row of 100 m cells (columns 0, 4, 9): gaps 300 m and 400 m edge to edge
    mask = np.zeros((1, 10), bool)
    mask[0, [0, 4, 9]] = True
    g, labels, p = patches_from_mask(mask)
    res = np.ones((1, 10))
    plain, _ = build_graph(res, labels, p, g)
    gaps = graph_stage.PatchGaps(p)
    shared, _ = build_graph(res, labels, p, g, gaps=gaps)
    assert gaps == {(1, 2): pytest.approx(300.0), (2, 3): pytest.approx(400.0)}
    assert nx.utils.edges_equal(plain.edges(data="euclid_m"), shared.edges(data="euclid_m"))
    gaps[(1, 2)] = 123.0  # a value given is read, not measured again
    again, _ = build_graph(res, labels, p, g, gaps=gaps)
    assert again.edges[1, 2]["euclid_m"] == 123.0 and again.edges[2, 3]["euclid_m"] == pytest.approx(400.0)
    # the distances of other patches (one moved a cell) are refused, not given to these links
    mask2 = np.zeros((1, 10), bool)
    mask2[0, [0, 5, 9]] = True
    g2, labels2, p2 = patches_from_mask(mask2)
    with pytest.raises(DataError, match=r"gaps: expected the distances between these 3 patches.*PatchGaps\(patches\)"):
        build_graph(res, labels2, p2, g2, gaps=gaps)
    with pytest.raises(DataError, match=r"gaps: expected PatchGaps\(patches\) or None, found dict"):
        build_graph(res, labels, p, g, gaps={})


def test_diagonal_link_by_hand():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[3, 3] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(np.ones((4, 4)), labels, p, g)
    assert G.edges[1, 2]["cwd"] == pytest.approx(3 * 100 * math.sqrt(2))


def test_corridor_through_a_barrier_gap_by_hand():
    # 5 x 5 grid, wall of no data in column 2 except a gap at row 4; patches at (0, 0) and (0, 4).
    res = np.ones((5, 5))
    res[:4, 2] = np.nan
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[0, 4] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(res, labels, p, g, connectivity=8)
    # every route passes the gap (4, 2): (0,0) -> (1,1) diagonal, (2,1), (3,1) axial, (4,2) diagonal,
    # (3,3) diagonal, (2,3), (1,3) axial, (0,4) diagonal = 4 diagonal + 4 axial steps of 100 m at resistance 1
    expected = 4 * 100 * math.sqrt(2) + 4 * 100
    assert G.edges[1, 2]["cwd"] == pytest.approx(expected)
    gap_x, gap_y = g.xy([4], [2])
    assert G.edges[1, 2]["geometry"].distance(shapely.Point(gap_x[0], gap_y[0])) < 1e-6  # the path uses the gap
    assert G.edges[1, 2]["cwd"] == pytest.approx(pairwise_lcd(res, labels, 1, 2, 100.0, 8))


def test_cutoff_rule_links_all_pairs_within_the_cost(tmp_path):
    mask = np.zeros((1, 9), bool)
    mask[0, [0, 4, 8]] = True  # patches 1, 2, 3 in a row, 4 cells apart
    g, labels, p = patches_from_mask(mask)
    res = np.ones((1, 9))
    G, _ = build_graph(res, labels, p, g, rule="cutoff", max_cwd=1000)
    left, middle, right = (int(labels[0, c]) for c in (0, 4, 8))
    far = (left, right)
    assert G.number_of_edges() == 3  # 400, 400 and the 800 link through the middle patch
    assert G.edges[far]["cwd"] == pytest.approx(800)
    assert G.edges[far]["through_patches"] == str(middle)
    G2, _ = build_graph(res, labels, p, g, rule="cutoff", max_cwd=1000, drop_through_patches=True)
    assert G2.number_of_edges() == 2
    G3, _ = build_graph(res, labels, p, g, rule="cutoff", max_cwd=500)
    assert G3.number_of_edges() == 2
    G4, _ = build_graph(res, labels, p, g, rule="knn", k_nearest=1)
    assert all(d >= 1 for _, d in G4.degree()) and G4.number_of_edges() == 2
    for a, b, d in G.edges(data=True):
        assert d["cwd"] == pytest.approx(pairwise_lcd(res, labels, a, b, 100.0, 8))


def test_unreachable_patch_is_an_isolated_node_and_nodata_patch_an_error():
    res = np.ones((5, 7))
    res[:, 3] = np.nan  # a wall nobody crosses
    mask = np.zeros((5, 7), bool)
    mask[2, 0] = mask[2, 6] = mask[0, 1] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(res, labels, p, g)
    lone = int(labels[2, 6])
    assert G.graph["isolated"] == [lone] and G.degree(lone) == 0 and G.number_of_nodes() == 3
    bad = res.copy()
    bad[2, 6] = np.nan  # the lone patch now lies wholly on no data
    with pytest.raises(NoPathError, match=f"patch {lone}: expected passable cells"):
        build_graph(bad, labels, p, g)


def test_countries_along_the_path():
    mask = np.zeros((1, 6), bool)
    mask[0, [0, 5]] = True
    g, labels, p = patches_from_mask(mask)
    countries = np.array([[0, 0, 0, 1, 1, 1]], dtype="int16")
    G, _ = build_graph(np.ones((1, 6)), labels, p, g, countries=countries, country_codes=["CHN", "RUS"])
    assert G.edges[1, 2]["countries"] == "CHN;RUS"


def test_graph_round_trips_through_geodataframes():
    mask = np.zeros((3, 9), bool)
    mask[1, [0, 4, 8]] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(np.ones((3, 9)), labels, p, g)
    nodes, edges = graph_to_gdfs(G)
    assert len(nodes) == 3 and len(edges) == G.number_of_edges()
    assert list(edges["cwd"]) == sorted(edges["cwd"])
    H = gdfs_to_graph(nodes, edges)
    assert nx.utils.graphs_equal(nx.Graph(H.edges), nx.Graph(G.edges))
    for a, b in G.edges:
        assert H.edges[a, b]["cwd"] == G.edges[a, b]["cwd"]


def test_unknown_rule():
    mask = np.zeros((1, 3), bool)
    mask[0, [0, 2]] = True
    g, labels, p = patches_from_mask(mask)
    with pytest.raises(ConfigError, match=r"expected one of \['planar', 'cutoff', 'knn'\]"):
        build_graph(np.ones((1, 3)), labels, p, g, rule="delaunay")


def test_planar_proposal_of_two_patches_on_a_wide_grid():
    # one region edge on a 30 x 70 grid: the blocks scanned cell by cell must include the ones it crosses.  Two
    # patches at the far ends of the middle row, resistance 1: the edge is the middle column pair, cwd = 69 x 100
    mask = np.zeros((30, 70), bool)
    mask[15, [0, 69]] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(np.ones((30, 70)), labels, p, g, connectivity=8)
    assert list(G.edges) == [(1, 2)] and G.edges[1, 2]["cwd"] == pytest.approx(6900.0, rel=1e-12)


@pytest.mark.parametrize("holes", [False, True])  # with no-data cells: no region there, no proposal across them
@pytest.mark.parametrize("room", [4096, 1])  # room for every proposal at once; room for 100 (1 per 16 cells): again
def test_many_patches_grow_the_proposal_table_and_match_a_plain_loop(monkeypatch, room, holes):
    # 20 x 20 single-cell patches on a 40 x 40 grid: about a thousand touching region pairs
    monkeypatch.setattr(graph_stage, "_PROPOSALS_MIN", room)
    rng = np.random.default_rng(7)
    res = rng.uniform(1, 5, (40, 40))
    mask = np.zeros((40, 40), bool)
    mask[::2, ::2] = True
    if holes:
        res[(rng.random((40, 40)) < 0.15) & ~mask] = np.nan
    g, labels, p = patches_from_mask(mask)
    G, one_pass = build_graph(res, labels, p, g, connectivity=8)
    assert G.number_of_edges() > 256
    # reference: a plain Python loop over every cell and its 8 neighbours
    best = {}
    cost, alloc = one_pass.cost, one_pass.allocation
    for r in range(40):
        for c in range(40):
            for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
                vr, vc = r + dr, c + dc
                if 0 <= vr < 40 and 0 <= vc < 40 and alloc[r, c] != alloc[vr, vc] and min(alloc[r, c], alloc[vr, vc]) > 0:
                    w = cost[r, c] + 100.0 * math.hypot(dr, dc) * (res[r, c] + res[vr, vc]) / 2 + cost[vr, vc]
                    key = tuple(sorted((int(alloc[r, c]), int(alloc[vr, vc]))))
                    best[key] = min(best.get(key, np.inf), w)
    assert set(best) == {tuple(sorted(e)) for e in G.edges}
    for (a, b), w in best.items():
        assert G.edges[a, b]["cwd"] == pytest.approx(w, rel=1e-12)


def test_resistance_of_another_shape_is_a_data_error():
    mask = np.zeros((4, 6), bool)
    mask[1, 0] = mask[1, 5] = True
    g, labels, p = patches_from_mask(mask)
    with pytest.raises(DataError, match=r"resistance: expected the shape of the patch labels \(4, 6\), found \(4, 5\)"):
        build_graph(np.ones((4, 5)), labels, p, g)


def random_patches(seed, shape, share, *, integer):
    """Random patches (``share`` of the cells) on a random resistance with 10 % no data, every patch passable.

    ``integer``: resistance 1..3 (ties between crossings), else uniform in [1, 20).
    """
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < share
    assume(mask.sum() >= 2)
    g, labels, p = patches_from_mask(mask)
    res = rng.integers(1, 4, shape).astype(float) if integer else rng.uniform(1.0, 20.0, shape)
    res[rng.random(shape) < 0.1] = np.nan
    res[mask] = 1.0
    return g, labels, p, res


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), connectivity=st.sampled_from([4, 8, 16]))
def test_planar_graph_gives_the_allocation_crossings_of_its_search(seed, connectivity):
    """cwd.crossings of a planar graph is allocation_crossings of that search, bit for bit (what the corridors take)."""
    from leopardgeo.kernels.costdist import allocation_crossings

    g, labels, p, res = random_patches(seed, (14, 17), 0.12, integer=False)
    _, cwd = build_graph(res, labels, p, g, connectivity=connectivity)
    want = allocation_crossings(cwd.cost, cwd.allocation, labels, res, cell_size_m=100.0, connectivity=connectivity)
    assert cwd.crossings is not None and np.array_equal(cwd.crossings, want)
    _, by_cutoff = build_graph(res, labels, p, g, connectivity=connectivity, rule="cutoff")
    assert by_cutoff.crossings is None  # made only where the links are those crossings


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), connectivity=st.sampled_from([4, 8, 16]))
def test_planar_least_proposals_kept_in_the_scan_equal_the_sorted_ones(seed, connectivity):
    """Each pair's least proposal (the first found of equals) kept as the scan goes is the stable sort's, with ties."""
    _, labels, _, res = random_patches(seed, (12, 15), 0.15, integer=True)  # few values: equal crossings
    one = cost_distance(res, labels, cell_size_m=100.0, connectivity=connectivity)
    top = int(labels.max())
    dense = graph_stage._planar_proposals(one, res, top)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graph_stage, "_MAX_DENSE_LABELS", 0)  # collect every proposal and sort
        sorted_ = graph_stage._planar_proposals(one, res, top)
    assert dense.keys() == sorted_.keys()
    for k in dense:
        assert dense[k].dtype == sorted_[k].dtype and np.array_equal(dense[k], sorted_[k]), k


def test_masked_resistance_cells_are_no_data_for_the_patch_checks():
    mask = np.zeros((3, 5), bool)
    mask[:, [0, 4]] = True
    g, labels, p = patches_from_mask(mask)
    res = np.ma.masked_array(np.ones((3, 5)), mask=np.zeros((3, 5), bool))
    res.mask[:, 4] = True  # the second patch wholly masked (its hidden values 1.0 would look passable)
    with pytest.raises(NoPathError, match="expected passable cells"):
        build_graph(res, labels, p, g)
