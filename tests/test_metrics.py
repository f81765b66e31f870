"""Connectivity metrics checked against values worked out by hand from the papers' formulas."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.stages.metrics import add_metric_attributes, connectivity_metrics, dispersal_k


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
