"""Connectivity metrics checked against values worked out by hand from the papers' formulas and against
the brute-force definition (every pair recomputed without each node and link)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.stages.metrics import add_metric_attributes, connectivity_metrics, dispersal_k
from leopardgeo.testing import naive_connectivity_metrics


def path_graph():
    """1 -- 2 -- 3, areas 1, 2, 1 ha, each link 100 m; with d50 = 100 m every link has p = 0.5."""
    G = nx.Graph()
    for n, a in ((1, 1.0), (2, 2.0), (3, 1.0)):
        G.add_node(n, area_ha=a)
    G.add_edge(1, 2, cwd=100.0)
    G.add_edge(2, 3, cwd=100.0)
    return G


def test_pc_iic_ec_by_hand():
    m = connectivity_metrics(path_graph(), median_distance=100.0)
    # p*12 = p*23 = 0.5, p*13 = 0.5 * 0.5 = 0.25 (max product through 2); A_L = 4 ha
    # sum a_i a_j p*_ij = (1 + 4 + 1) + 2 (1*2*0.5 + 2*1*0.5 + 1*1*0.25) = 6 + 4.5 = 10.5
    assert m.summary["PC"] == pytest.approx(10.5 / 16)
    assert m.summary["EC_ha"] == pytest.approx(math.sqrt(10.5))
    # IIC: nl12 = nl23 = 1, nl13 = 2: 6 + 2 (2/2 + 2/2 + 1/3) = 10 2/3
    assert m.summary["IIC"] == pytest.approx((6 + 2 * (1 + 1 + 1 / 3)) / 16)
    assert m.summary["components"] == 1


def test_dpc_fractions_by_hand():
    m = connectivity_metrics(path_graph(), median_distance=100.0)
    n2 = m.nodes.loc[2]
    # without node 2: 1 and 3 are cut off: 1 + 1 = 2 -> dPC = 100 (10.5 - 2) / 10.5
    assert n2["dPC"] == pytest.approx(100 * 8.5 / 10.5)
    assert n2["dPC_intra"] == pytest.approx(100 * 4 / 10.5)  # a2^2
    assert n2["dPC_flux"] == pytest.approx(100 * 2 * 2 * (0.5 * 1 + 0.5 * 1) / 10.5)
    assert n2["dPC_connector"] == pytest.approx(100 * 2 * 1 * 1 * 0.25 / 10.5)  # the 1-3 flow it carries
    n1 = m.nodes.loc[1]
    # without node 1: 4 + 1 + 2*2*1*0.5 = 7 -> dPC = 100 * 3.5 / 10.5; no stepping-stone role
    assert n1["dPC"] == pytest.approx(100 * 3.5 / 10.5)
    assert n1["dPC_intra"] == pytest.approx(100 / 10.5)
    assert n1["dPC_flux"] == pytest.approx(100 * 2 * (2 * 0.5 + 1 * 0.25) / 10.5)
    assert n1["dPC_connector"] == pytest.approx(0.0, abs=1e-9)
    # dIIC of node 2: 1 + 1 = 2 left of 10 2/3
    assert n2["dIIC"] == pytest.approx(100 * (32 / 3 - 2) / (32 / 3))


def test_link_importance_betweenness_bridges():
    m = connectivity_metrics(path_graph(), median_distance=100.0)
    link = m.links.set_index(["patch_a", "patch_b"]).loc[(1, 2)]
    # without link 1-2: 6 + 2 * (2*1*0.5) = 8 -> dPC = 100 * 2.5 / 10.5
    assert link["dPC_link"] == pytest.approx(100 * 2.5 / 10.5)
    assert link["p"] == pytest.approx(0.5)
    assert bool(link["bridge"])
    assert m.nodes["BC"].tolist() == [0.0, 1.0, 0.0]  # node 2 is on the one path 1-3
    assert m.nodes.loc[2, "BCPC"] == pytest.approx(1 * 1 * 0.25)  # a1 a3 p*13
    assert m.nodes["articulation"].tolist() == [False, True, False]


def test_max_product_path_beats_a_long_direct_link():
    G = path_graph()
    G.add_edge(1, 3, cwd=300.0)  # direct p = 0.125 < 0.25 through patch 2
    m = connectivity_metrics(G, median_distance=100.0)
    assert m.summary["PC"] == pytest.approx(10.5 / 16)
    assert not m.links["bridge"].any()
    assert m.nodes.loc[2, "BC"] == 1.0


def test_disconnected_patches_and_landscape_area():
    G = nx.Graph()
    G.add_node(1, area_ha=3.0)
    G.add_node(2, area_ha=1.0)
    m = connectivity_metrics(G, median_distance=100.0, landscape_area=10.0)
    assert m.summary["PC"] == pytest.approx((9 + 1) / 100)
    assert m.summary["IIC"] == pytest.approx((9 + 1) / 100)
    assert m.summary["components"] == 2
    assert m.nodes.loc[1, "dPC_connector"] == pytest.approx(0.0, abs=1e-9)


def test_attributes_stored_on_the_graph():
    G = path_graph()
    m = connectivity_metrics(G, median_distance=100.0)
    add_metric_attributes(G, m)
    assert G.nodes[2]["dPC"] == pytest.approx(100 * 8.5 / 10.5)
    assert G.edges[2, 3]["bridge"] is True
    assert G.graph["metrics"]["PC"] == pytest.approx(10.5 / 16)


def test_errors():
    assert dispersal_k(100.0, 0.5) == pytest.approx(math.log(2) / 100)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        dispersal_k(100.0, 1.0)
    with pytest.raises(ConfigError, match="> 0"):
        dispersal_k(0.0)
    with pytest.raises(DataError, match="at least one patch"):
        connectivity_metrics(nx.Graph())
    G = nx.Graph()
    G.add_node(1)
    with pytest.raises(DataError, match="area_ha"):
        connectivity_metrics(G)
    with pytest.raises(DataError, match="'length_m'"):
        connectivity_metrics(path_graph(), weight="length_m")


# --- equality with the brute-force definition (leopardgeo.testing.naive_connectivity_metrics) ---

NODE_COLS = ["dPC", "dPC_intra", "dPC_flux", "dPC_connector", "dIIC", "dIIC_intra", "dIIC_flux", "dIIC_connector",
             "BC", "BCPC"]  # fmt: skip


def assert_same_as_brute_force(G, *, d50=100.0, min_probability=None, landscape_area=None):
    k = dispersal_k(d50)
    m = connectivity_metrics(G, median_distance=d50, min_probability=min_probability, landscape_area=landscape_area)
    ref = naive_connectivity_metrics(G, k=k, min_probability=min_probability, landscape_area=landscape_area)
    assert m.summary["PC"] == pytest.approx(ref["PC"], rel=1e-12)
    assert m.summary["IIC"] == pytest.approx(ref["IIC"], rel=1e-12)
    # with zero-length links "shortest paths" of any number of links tie, and betweenness is undefined
    cols = NODE_COLS if all(d > 0 for *_, d in G.edges(data="cwd")) else NODE_COLS[:-2]
    got = m.nodes[cols]
    want = ref["nodes"].loc[got.index, cols]
    # percentages: the brute force subtracts two sums of size 100, so 1e-9 is its own round-off
    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-9, atol=1e-9)
    assert (m.nodes["dPC_connector"] >= 0).all() and (m.nodes["dIIC_connector"] >= 0).all()
    H = nx.Graph()
    H.add_nodes_from(G)
    H.add_edges_from((r.patch_a, r.patch_b) for r in m.links.itertuples() if r.used)
    assert set(m.nodes.index[m.nodes["articulation"]]) == set(nx.articulation_points(H))
    assert {frozenset((r.patch_a, r.patch_b)) for r in m.links.itertuples() if r.bridge} == {
        frozenset(e) for e in nx.bridges(H)
    }
    for row in m.links.itertuples(index=False):
        key = frozenset((row.patch_a, row.patch_b))
        if row.used:
            assert (row.dPC_link, row.dIIC_link) == pytest.approx(ref["links"][key], rel=1e-9, abs=1e-9)
        else:
            assert key not in ref["links"] and row.dPC_link == 0.0 and row.dIIC_link == 0.0
    return m


@st.composite
def random_graphs(draw):
    """Up to 9 patches (zero areas allowed), any links; integer distances make many equal-length paths."""
    n = draw(st.integers(1, 9))
    G = nx.Graph()
    for i in range(n):
        G.add_node(i, area_ha=float(draw(st.sampled_from([0.0, 1.0, 2.0, 3.5, 10.0]))))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    for i, j in chosen:
        G.add_edge(i, j, cwd=float(draw(st.sampled_from([0.0, 50.0, 100.0, 100.0, 150.0, 200.0, 300.0, math.inf]))))
    return G


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(G=random_graphs(), min_p=st.sampled_from([None, None, 0.3]))
def test_equals_brute_force_on_random_graphs(G, min_p):
    area = None if sum(a for _, a in G.nodes(data="area_ha")) > 0 else 1.0
    assert_same_as_brute_force(G, min_probability=min_p, landscape_area=area)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 25), density=st.floats(0.05, 1.0))
def test_equals_brute_force_with_real_distances(seed, n, density):
    """Random points, Euclidean distances, random link sets (disconnected ones included)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n, 2))
    G = nx.Graph()
    for i in range(n):
        G.add_node(i, area_ha=float(rng.uniform(0.5, 50)))
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < density:
                G.add_edge(i, j, cwd=float(np.hypot(*(xy[i] - xy[j]))))
    assert_same_as_brute_force(G, d50=300.0, landscape_area=10_000.0)


def test_betweenness_matches_networkx_with_ties():
    G = nx.grid_2d_graph(4, 4)  # many equal shortest paths
    G = nx.convert_node_labels_to_integers(G)
    nx.set_node_attributes(G, 1.0, "area_ha")
    nx.set_edge_attributes(G, 100.0, "cwd")
    m = assert_same_as_brute_force(G)
    bc = nx.betweenness_centrality(G, weight="cwd", normalized=False)
    np.testing.assert_allclose(m.nodes["BC"], [bc[v] for v in m.nodes.index])


def test_min_probability_drops_improbable_links():
    G = path_graph()
    G.add_edge(1, 3, cwd=150.0)  # p = 2**-1.5 = 0.354 > p*13 via 2 = 0.25
    full = connectivity_metrics(G, median_distance=100.0)
    cut = connectivity_metrics(G, median_distance=100.0, min_probability=0.4)
    links = cut.links.set_index(["patch_a", "patch_b"])
    assert not links.loc[(1, 3), "used"] and links.loc[(1, 3), "dPC_link"] == 0.0
    assert cut.summary["links_used"] == 2
    # without the 1-3 link p*13 falls back to 0.25 through patch 2: PC = 10.5 / 16 again
    assert cut.summary["PC"] == pytest.approx(10.5 / 16)
    assert full.summary["PC"] == pytest.approx((10.5 + 2 * (2**-1.5 - 0.25)) / 16)
    with pytest.raises(ConfigError, match="min_probability"):
        connectivity_metrics(G, median_distance=100.0, min_probability=1.0)


def test_link_metrics_skipped_above_the_limit(monkeypatch, caplog):
    import leopardgeo.stages.metrics as metrics

    monkeypatch.setattr(metrics, "LINK_METRICS_MAX_LINKS", 1)
    m = metrics.connectivity_metrics(path_graph(), median_distance=100.0)
    assert m.summary["link_metrics"].startswith("skipped: 2 links > 1")
    assert "links=True" in caplog.text
    assert m.links["dPC_link"].isna().all()
    forced = metrics.connectivity_metrics(path_graph(), median_distance=100.0, links=True)
    assert forced.summary["link_metrics"] == "computed"
    assert forced.links["dPC_link"].notna().all()


def test_negative_distance_is_refused():
    G = path_graph()
    G.edges[1, 2]["cwd"] = -5.0
    with pytest.raises(DataError, match=">= 0"):
        connectivity_metrics(G, median_distance=100.0)


def test_graphs_the_metrics_cannot_read_are_refused_naming_what_to_do():
    # a directed graph with two distances for one pair was read as two undirected links (the shorter won)
    D = nx.DiGraph(path_graph())
    D.edges[2, 1]["cwd"] = 5_000.0
    with pytest.raises(DataError, match="found a DiGraph.*build an nx.Graph"):
        connectivity_metrics(D, median_distance=100.0)
    with pytest.raises(DataError, match="found a MultiGraph"):
        connectivity_metrics(nx.MultiGraph(path_graph()), median_distance=100.0)
    G = path_graph()
    G.nodes[2]["area_ha"] = "2 ha"
    with pytest.raises(DataError, match="'area_ha' to be a number, found '2 ha' on patch 2"):
        connectivity_metrics(G, median_distance=100.0)
    G = path_graph()
    G.edges[2, 3]["cwd"] = None
    with pytest.raises(DataError, match=r"cwd to be a number \(inf for no link\), found \[\(2, 3, None\)\]"):
        connectivity_metrics(G, median_distance=100.0)
    with pytest.raises(ConfigError, match="dispersal distance: expected a number, found '100'"):
        dispersal_k("100")


def test_patch_ids_of_any_hashable_kind():
    # ids of mixed types (not sortable) and tuples (once read as a pandas MultiIndex) give the same metrics
    ref = connectivity_metrics(path_graph(), median_distance=100.0)
    for ids in ((1, "b", 3), ((0, 1), (0, 2), (0, 3))):
        G = nx.relabel_nodes(path_graph(), dict(zip((1, 2, 3), ids, strict=True)))
        m = connectivity_metrics(G, median_distance=100.0)
        assert m.summary["PC"] == ref.summary["PC"]
        assert list(m.nodes.index) == list(G.nodes)
        assert m.nodes["dPC"].tolist() == ref.nodes["dPC"].tolist()
        assert m.links[["patch_a", "patch_b"]].values.tolist() == [[ids[0], ids[1]], [ids[1], ids[2]]]
        assert m.links["dPC_link"].tolist() == ref.links["dPC_link"].tolist()
        add_metric_attributes(G, m)
        assert G.nodes[ids[1]]["articulation"] is True


def test_a_float32_dispersal_distance_gives_the_float64_answer():
    ref = connectivity_metrics(path_graph(), median_distance=110.0)
    m = connectivity_metrics(path_graph(), median_distance=np.float32(110.0))
    assert m.summary["PC"] == ref.summary["PC"]
    assert type(m.summary["k"]) is float


# --- the optional pair probability floor: every dPC within the bound it reports ---


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(4, 30), floor=st.sampled_from([0.5, 0.1, 0.01, 1e-4]))
def test_pair_probability_floor_stays_within_its_bound(seed, n, floor):
    """Planar-like graphs (Delaunay of random points) several dispersal distances across."""
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 3000, (n, 2))
    G = nx.Graph()
    for i in range(n):
        G.add_node(i, area_ha=float(rng.uniform(0.5, 50)))
    tri = Delaunay(xy).simplices
    for s in tri:
        for i, j in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2])):
            G.add_edge(int(i), int(j), cwd=float(np.hypot(*(xy[i] - xy[j]))))
    d50 = 300.0
    m = connectivity_metrics(G, median_distance=d50, pair_probability_floor=floor)
    ref = naive_connectivity_metrics(G, k=dispersal_k(d50))
    bound = m.summary["dPC_error_bound"]
    num = m.summary["EC_ha"] ** 2
    total_a = sum(a for _, a in G.nodes(data="area_ha"))
    assert 0.0 <= bound <= 100.0 * floor * total_a**2 / num + 1e-12  # the a-priori bound of the docstring
    assert m.summary["PC"] == pytest.approx(ref["PC"], rel=1e-12)  # PC itself stays exact
    got = m.nodes[NODE_COLS[:3]].to_numpy(float)
    want = ref["nodes"].loc[m.nodes.index, NODE_COLS[:3]].to_numpy(float)
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], rtol=1e-9, atol=1e-9)  # intra, flux exact
    assert np.abs(got[:, 0] - want[:, 0]).max() <= bound + 1e-9
    for col in ("dIIC", "dIIC_connector", "BC", "BCPC"):  # untouched by the floor
        np.testing.assert_allclose(m.nodes[col], ref["nodes"].loc[m.nodes.index, col], rtol=1e-9, atol=1e-9)
    for row in m.links.itertuples(index=False):
        assert abs(row.dPC_link - ref["links"][frozenset((row.patch_a, row.patch_b))][0]) <= bound + 1e-9


def test_pair_probability_floor_is_exact_where_no_pair_is_below_it():
    m = connectivity_metrics(path_graph(), median_distance=100.0, pair_probability_floor=0.2)  # p*13 = 0.25
    assert m.summary["dPC_error_bound"] == 0.0
    assert m.nodes.loc[2, "dPC"] == pytest.approx(100 * 8.5 / 10.5)
    cut = connectivity_metrics(path_graph(), median_distance=100.0, pair_probability_floor=0.3)
    # the 1-3 pair (p* = 0.25 < 0.3) is not recomputed: node 2 misses its connector 2·0.25 of 10.5 ...
    assert cut.nodes.loc[2, "dPC_connector"] == 0.0
    # ... which the bound covers.  Its largest term is link 1-2's: from source 1, node 3 (p* 0.25) is not
    # recomputed and node 2, cut off once 3 is left out, may be off by up to the floor (0.3 * a2 = 0.6);
    # from source 3, node 1 (p* 0.25) is not recomputed: 0.25 + 0.6 + 0.25 = 1.1 of 10.5
    assert cut.summary["dPC_error_bound"] == pytest.approx(100 * 1.1 / 10.5)
    assert cut.summary["dPC_error_bound"] >= 100 * 2 * 0.25 / 10.5  # node 2's true error
    with pytest.raises(ConfigError, match="pair_probability_floor"):
        connectivity_metrics(path_graph(), median_distance=100.0, pair_probability_floor=0.0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(2, 6), cols=st.integers(3, 6), drop=st.floats(0.0, 0.3))
def test_equals_brute_force_on_grids_with_many_equal_paths(seed, rows, cols, drop):
    """Lattices with link lengths 100 or 200 m and some links missing: deep dominator trees, many ties."""
    rng = np.random.default_rng(seed)
    G = nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols))
    nx.set_node_attributes(G, {v: float(rng.choice([0.0, 1.0, 5.0])) for v in G}, "area_ha")
    G.remove_edges_from([e for e in list(G.edges) if rng.random() < drop])
    nx.set_edge_attributes(G, {e: float(rng.choice([100.0, 200.0])) for e in G.edges}, "cwd")
    area = None if sum(a for _, a in G.nodes(data="area_ha")) > 0 else 1.0
    assert_same_as_brute_force(G, landscape_area=area)


@pytest.mark.parametrize("length_m", [100.0, 141.4213562373095, 0.1 * 1234.5])
def test_equals_brute_force_on_a_ring_and_a_rounded_lattice(length_m):
    """Each pair's removal is counted from one end only: a ring (the detour around a removed node is the
    long way round, beyond the first search's reach) and lattices whose equal paths differ by rounding."""
    ring = nx.cycle_graph(14)
    nx.set_node_attributes(ring, {v: 1.0 + v % 3 for v in ring}, "area_ha")
    nx.set_edge_attributes(ring, {e: length_m * (1.0 + 0.1 * (sum(e) % 2)) for e in ring.edges}, "cwd")
    assert_same_as_brute_force(ring)
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 5))
    nx.set_node_attributes(grid, {v: 1.0 + v % 4 for v in grid}, "area_ha")
    nx.set_edge_attributes(grid, length_m, "cwd")
    assert_same_as_brute_force(grid)


def test_equals_brute_force_on_a_planar_graph():
    """A Delaunay triangulation, as the benchmark's: dominator trees several levels deep."""
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 5000, (70, 2))
    G = nx.Graph()
    G.add_nodes_from((i, {"area_ha": float(rng.lognormal(3.0, 1.0))}) for i in range(len(xy)))
    for tri in Delaunay(xy).simplices:
        for i, j in ((0, 1), (1, 2), (0, 2)):
            G.add_edge(int(tri[i]), int(tri[j]), cwd=float(np.hypot(*(xy[tri[i]] - xy[tri[j]]))))
    assert_same_as_brute_force(G, d50=1000.0)


def test_removal_deltas_are_the_same_on_any_number_of_threads():
    import numba

    from leopardgeo.kernels.graph_metrics import removal_deltas

    rng = np.random.default_rng(3)
    n = 60
    i, j = np.triu_indices(n, 1)
    keep = rng.random(len(i)) < 0.1
    i, j = i[keep], j[keep]
    w = rng.uniform(1.0, 5.0, len(i))
    order = np.argsort(np.concatenate([i, j]), kind="stable")
    indices = np.concatenate([j, i])[order]
    indptr = np.searchsorted(np.concatenate([i, j])[order], np.arange(n + 1))
    args = (indptr, indices, np.concatenate([w, w])[order], np.concatenate([np.arange(len(i))] * 2)[order],
            rng.uniform(1.0, 9.0, n))  # fmt: skip
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = removal_deltas(*args, n_links=len(i), k=0.3)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = removal_deltas(*args, n_links=len(i), k=0.3)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a, b)
