"""The corridor score, worked by hand from the formula in leopardgeo.stages.score."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_weights_change_the_ranking_and_a_missing_criterion_is_never_a_reward():
    G = three_links()
    t = corridor_scores(G, {"width": 1.0})
    assert t.iloc[0][["patch_a", "patch_b"]].tolist() == [2, 3] and t.iloc[0]["score"] == pytest.approx(100)
    del G.edges[1, 2]["pinch_current"]
    t = corridor_scores(G, {"cwd": 1.0, "pinch": 1.0}).set_index(["patch_a", "patch_b"])
    # pinch rescaled over the two links that have it: 0.2 -> 1, 0.5 -> 0; the link without it counts 0
    assert t.loc[(1, 2), "s_pinch"] == 0.0
    assert t.loc[(1, 2), "score"] == pytest.approx(100 * (1 + 0) / 2)  # not 100: cwd alone does not decide
    assert t.loc[(2, 3), "score"] == pytest.approx(100 * (0.5 + 1) / 2)
    assert t.loc[(3, 4), "score"] == pytest.approx(100 * (0 + 0) / 2)
    add_scores(G, corridor_scores(G))
    assert {"score", "score_rank"} <= set(G.edges[1, 2])


def test_a_criterion_no_link_has_is_left_out_for_all():
    G = three_links()
    for e in G.edges:
        del G.edges[e]["pinch_current"]
    t = corridor_scores(G, {"cwd": 1.0, "pinch": 1.0}).set_index(["patch_a", "patch_b"])
    assert t["score"].tolist() == pytest.approx([100.0, 50.0, 0.0])  # cwd alone, as if pinch had weight 0
    assert t["s_pinch"].isna().all()


def test_seams_and_zero_length_links_never_outrank_a_real_corridor():
    # The situation of a run that cut one patch in two at the border: the seam costs one step, has no width and
    # no pinch value, and its dPC is large (it joins the two halves of a big patch).  It must not rank first.
    G = three_links()
    G.add_edge(5, 6, cwd=250.0, lcp_length_m=0.0, euclid_m=0.0, dPC_link=90.0)  # patches that touch
    G.add_edge(6, 7, cwd=0.0, dPC_link=80.0)  # a zero-cost, zero-length link
    G.add_edge(7, 8, cwd=300.0, euclid_m=0.0, kind="touching", corridor_width_m=9e9, pinch_current=0.0, dPC_link=99.0)
    t = corridor_scores(G)
    real = t[t["kind"] == "corridor"]
    seams = t[t["kind"] == "touching"]
    assert sorted(map(tuple, seams[["patch_a", "patch_b"]].to_numpy().tolist())) == [(5, 6), (6, 7), (7, 8)]
    assert seams["score"].isna().all() and seams["rank"].isna().all()
    assert real["rank"].tolist() == [1, 1, 3] and t.index[t["kind"] == "touching"].min() > real.index.max()
    # the real corridors score exactly as without the seams
    base = corridor_scores(three_links())
    assert real["score"].tolist() == pytest.approx(base["score"].tolist())
    add_scores(G, t)
    assert "score" not in G.edges[5, 6] and G.edges[5, 6]["kind"] == "touching"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(1.0, 1e6),
            st.one_of(st.none(), st.floats(0.0, 1e4)),
            st.one_of(st.none(), st.floats(0.0, 5.0)),
            st.one_of(st.none(), st.floats(0.0, 100.0)),
        ),
        min_size=2,
        max_size=8,
    ),
    st.integers(0, 7),
)
def test_property_lacking_a_criterion_scores_as_the_worst_value(rows, pick):
    # A link without a criterion never scores better than with the run's worst value of it (equal, except where
    # that value would tie every link at s = 1).
    def graph(vals):
        G = nx.Graph()
        for i, (c, w, p, d) in enumerate(vals):
            attrs = {"cwd": c, "corridor_width_m": w, "pinch_current": p, "dPC_link": d}
            G.add_edge(2 * i, 2 * i + 1, **{k: v for k, v in attrs.items() if v is not None})
        return G

    i = pick % len(rows)
    filled = list(rows)
    worst = []
    for k, better_high in ((1, True), (2, False), (3, True)):
        others = [r[k] for j, r in enumerate(rows) if j != i and r[k] is not None]
        worst.append((min(others) if better_high else max(others)) if others and rows[i][k] is None else rows[i][k])
    filled[i] = (rows[i][0], *worst)
    a = corridor_scores(graph(rows)).set_index(["patch_a", "patch_b"])
    b = corridor_scores(graph(filled)).set_index(["patch_a", "patch_b"])
    assert a.loc[(2 * i, 2 * i + 1), "score"] <= b.loc[(2 * i, 2 * i + 1), "score"] + 1e-6


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
