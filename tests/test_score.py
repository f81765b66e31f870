"""The corridor score, worked by hand from the formula in leopardgeo.stages.score."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from leopardgeo.core.errors import ConfigError
from leopardgeo.stages.score import add_scores, corridor_scores


def three_links() -> nx.Graph:
    G = nx.Graph()
    G.add_edge(1, 2, cwd=1_000.0, corridor_width_m=500.0, pinch_current=0.8, dPC_link=10.0)
    G.add_edge(2, 3, cwd=10_000.0, corridor_width_m=1500.0, pinch_current=0.2, dPC_link=0.0)
    G.add_edge(3, 4, cwd=100_000.0, corridor_width_m=1000.0, pinch_current=0.5, dPC_link=5.0)
    return G


def test_scores_by_hand():
    t = corridor_scores(three_links()).set_index(["patch_a", "patch_b"])
    # s_cwd on ln: ln 1e3, ln 1e4, ln 1e5 are equally spaced -> 1, 0.5, 0
    assert t.loc[(1, 2), "s_cwd"] == pytest.approx(1.0)
    assert t.loc[(2, 3), "s_cwd"] == pytest.approx(0.5)
    assert t.loc[(3, 4), "s_cwd"] == pytest.approx(0.0)
    # width 500, 1500, 1000 -> 0, 1, 0.5; pinch 0.8, 0.2, 0.5 -> 0, 1, 0.5; dPC 10, 0, 5 -> 1, 0, 0.5
    assert t.loc[(1, 2), ["s_width", "s_pinch", "s_dpc"]].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert t.loc[(2, 3), ["s_width", "s_pinch", "s_dpc"]].tolist() == pytest.approx([1.0, 1.0, 0.0])
    # default weights 0.4 / 0.2 / 0.2 / 0.2
    assert t.loc[(1, 2), "score"] == pytest.approx(100 * (0.4 * 1 + 0.2 * 0 + 0.2 * 0 + 0.2 * 1))  # 60
    assert t.loc[(2, 3), "score"] == pytest.approx(100 * (0.4 * 0.5 + 0.2 + 0.2 + 0))  # 60
    assert t.loc[(3, 4), "score"] == pytest.approx(100 * (0 + 0.2 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5))  # 30
    assert t.loc[(1, 2), "rank"] == t.loc[(2, 3), "rank"] == 1 and t.loc[(3, 4), "rank"] == 3


def test_weights_change_the_ranking_and_missing_criteria_drop_out():
    G = three_links()
    t = corridor_scores(G, {"width": 1.0})
    assert t.iloc[0][["patch_a", "patch_b"]].tolist() == [2, 3] and t.iloc[0]["score"] == pytest.approx(100)
    del G.edges[1, 2]["pinch_current"]
    t = corridor_scores(G, {"cwd": 1.0, "pinch": 1.0}).set_index(["patch_a", "patch_b"])
    assert math.isnan(t.loc[(1, 2), "s_pinch"])
    assert t.loc[(1, 2), "score"] == pytest.approx(100.0)  # only cwd counts for it (s_cwd = 1)
    # pinch rescaled over the two links that have it: 0.2 -> 1, 0.5 -> 0
    assert t.loc[(3, 4), "score"] == pytest.approx(100 * (0 + 0) / 2)
    add_scores(G, corridor_scores(G))
    assert {"score", "score_rank"} <= set(G.edges[1, 2])


def test_equal_values_score_one_and_bad_weights_fail():
    G = nx.Graph()
    G.add_edge(1, 2, cwd=5.0)
    G.add_edge(2, 3, cwd=5.0)
    assert corridor_scores(G)["score"].tolist() == [100.0, 100.0]
    with pytest.raises(ConfigError, match="expected keys"):
        corridor_scores(G, {"speed": 1.0})
    with pytest.raises(ConfigError, match="positive sum"):
        corridor_scores(G, {"cwd": 0.0})
    assert corridor_scores(nx.Graph()).empty
