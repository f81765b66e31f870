"""Cross-border crossings and border permeability on a synthetic two-country landscape with a fence."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import geopandas as gpd
import shapely

from leopardgeo.core.errors import AlignmentError, ConfigError
from leopardgeo.core.grid import Grid
from leopardgeo.kernels.circuit import circuit_flow
from leopardgeo.stages.corridors import least_cost_corridors
from leopardgeo.stages.crossborder import (
    border_cells,
    border_crossings,
    border_permeability,
    compare_networks,
    crossborder_corridors,
    crossing_table,
    fence_resistance,
    fill_countries,
    mark_crosses_border,
)
from leopardgeo.stages.graph import build_graph
from leopardgeo.stages.metrics import connectivity_metrics
from leopardgeo.stages.patches import extract_patches
from leopardgeo.testing import TEST_CRS

CELL = 100.0


def landscape(gap: bool = True):
    """40 x 60 cells; country A west of column 30, B east; a fence (no data) on column 30 with a gap at row 20."""
    g = Grid.from_bounds((500_000, 5_000_000, 500_000 + 60 * CELL, 5_000_000 + 40 * CELL), cell_size_m=CELL, crs=TEST_CRS)
    res = np.ones((40, 60), dtype=np.float32)
    res[:, 30] = np.nan
    if gap:
        res[20, 30] = 1.0
    suit = np.full((40, 60), 0.1, dtype=np.float32)
    suit[15:25, 2:10] = 0.9
    suit[15:25, 50:58] = 0.9
    labels, patches = extract_patches(suit, g, min_area_ha=0, connectivity=4)
    x_border = 500_000 + 30.5 * CELL
    borders = gpd.GeoDataFrame(
        {"pair": ["A-B"]}, geometry=[shapely.LineString([(x_border, 5_000_000), (x_border, 5_000_000 + 40 * CELL)])], crs=TEST_CRS
    )
    countries = np.where(np.arange(60) < 30, 0, 1)[None, :].repeat(40, axis=0).astype(np.int32)
    return g, res, labels, patches, borders, countries


def test_single_gap_carries_all_the_current_and_the_crossing():
    g, res, labels, patches, borders, countries = landscape()
    G, _ = build_graph(res, labels, patches, g, countries=countries, country_codes=["AAA", "BBB"])
    mark_crosses_border(G)
    assert G.number_of_edges() == 1
    d = next(iter(G.edges(data=True)))[2]
    assert d["crosses_border"] and d["countries"] == "AAA;BBB"
    cor = least_cost_corridors(res, labels, G, g, width_fraction=0.2)
    flow = circuit_flow(res, labels, connectivity=8)
    cur = flow.cum_current
    assert cur[20, 30] == pytest.approx(1.0, rel=1e-6)  # every amp passes the one open cell
    crossings = border_crossings(G, countries, ["AAA", "BBB"], g, borders=borders, corridors=cor, current=cur)
    assert len(crossings) == 1
    pt = crossings.geometry.iloc[0]
    col, row = ~g.transform * (pt.x, pt.y)
    assert (row, col) == (20.5, 30.0)  # midway between cell (20, 29) in A and the gap cell (20, 30) in B
    assert crossings["current"].iloc[0] == pytest.approx(1.0, rel=1e-6)
    assert crossings["border"].iloc[0] == "AAA-BBB"
    assert crossings["border_line"].iloc[0] == "A-B"
    assert crossings["border_line_m"].iloc[0] == pytest.approx(0.5 * CELL)  # the drawn line runs through column 30's centre
    assert crossings["corridor_width_m"].iloc[0] == pytest.approx(CELL)  # the corridor is one cell wide in the fence
    table = crossing_table(crossings)
    assert {"lon", "lat"} <= set(table.columns)
    segs = border_permeability(borders, g, current=cur, corridors=cor.table, segment_m=500)
    assert len(segs) == 8 and segs["length_m"].sum() == pytest.approx(40 * CELL)
    hot = segs["current_sum"] > 0
    assert hot.sum() == 1  # only the 500 m stretch holding the gap carries current
    assert segs.loc[hot, "current_sum"].iloc[0] == pytest.approx(1.0, rel=1e-6)
    assert segs.loc[hot, "n_corridors"].iloc[0] == 1 and segs.loc[~hot, "n_corridors"].sum() == 0


def test_closing_the_gap_isolates_one_side():
    g, res, labels, patches, *_ = landscape(gap=False)
    G, _ = build_graph(res, labels, patches, g)
    assert G.number_of_edges() == 0
    assert sorted(G.graph["isolated"]) == [1, 2]
    flow = circuit_flow(res, labels)
    assert np.isinf(flow.resistances["eff_resistance"]).all()


def test_permeability_needs_a_positive_segment_length():
    g, _, _, _, borders, _ = landscape()
    with pytest.raises(ConfigError, match="segment_m"):
        border_permeability(borders, g, segment_m=0)


# ------------------------------------------------------------------ the fence scenario
def open_landscape():
    """Same two patches, no fence in the data: the border at column 30 is open everywhere."""
    g, res, labels, patches, borders, countries = landscape()
    res[:, 30] = 1.0
    return g, res, labels, patches, borders, countries


def test_border_cells_mark_both_sides_of_every_country_change():
    c = np.array([[0, 0, 1], [0, 2, 1], [-1, 2, 2]])
    expected = np.array([[0, 1, 1], [1, 1, 1], [0, 0, 1]], dtype=bool)  # (2, 1) touches only its own country and -1
    np.testing.assert_array_equal(border_cells(c), expected)
    np.testing.assert_array_equal(fill_countries(np.array([[-1, 0, -1, -1, 1]])), [[0, 0, 0, 1, 1]])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 4))
def test_impassable_fence_separates_every_country(seed, n):
    """Independent check with scipy: no 8-connected component of passable cells holds two countries."""
    rng = np.random.default_rng(seed)
    h, w = 24, 24
    pts = rng.uniform(0, 24, size=(n, 2))
    rr, cc = np.mgrid[0:h, 0:w]
    countries = np.argmin(((rr[..., None] - pts[:, 0]) ** 2 + (cc[..., None] - pts[:, 1]) ** 2), axis=-1)
    countries[rng.random((h, w)) < 0.05] = -1  # slivers without a country
    g = Grid.from_bounds((0, 0, w * CELL, h * CELL), cell_size_m=CELL, crs=TEST_CRS)
    res, fence = fence_resistance(np.ones((h, w)), countries, g)
    comp, _ = ndimage.label(np.isfinite(res), structure=np.ones((3, 3)))
    filled = fill_countries(countries)
    for k in range(1, comp.max() + 1):
        assert len(np.unique(filled[comp == k])) == 1
    assert fence.sum() == np.isnan(res).sum()


def test_fence_with_one_gap_lengthens_the_link_and_carries_all_current():
    g, res, labels, patches, _, countries = open_landscape()
    codes = ["AAA", "BBB"]
    before, _ = build_graph(res, labels, patches, g, countries=countries, country_codes=codes)
    gap_x, gap_y = g.xy(np.array([20]), np.array([30]))
    fenced, fence = fence_resistance(res, countries, g, gaps_xy=[(gap_x[0], gap_y[0])], gap_width_m=CELL)
    assert fence[:, 29].sum() == fence[:, 30].sum() == 40 - 3  # rows 19-21 open (radius sqrt(2) cells)
    after, _ = build_graph(fenced, labels, patches, g, countries=countries, country_codes=codes)
    cur = circuit_flow(fenced, labels, connectivity=8).cum_current
    assert np.isnan(cur[fence]).all() and (cur[19:22, 29:31] > 0).all()  # all current crosses in the opening
    a = patches.set_index("patch_id")["area_ha"].to_dict()
    m0 = connectivity_metrics(before, median_distance=5000.0, landscape_area=1000.0).summary
    m1 = connectivity_metrics(after, median_distance=5000.0, landscape_area=1000.0).summary
    s = compare_networks(before, after, m0, m1)
    assert s.links["status"].tolist() == ["unchanged"]  # straight across row 20 is still possible through the gap
    assert s.summary["PC_loss_pct"] == pytest.approx(0.0)
    assert a[1] == a[2] == 80.0


def test_penalty_fence_adds_two_cells_of_penalty_to_a_straight_crossing():
    g, res, labels, patches, _, countries = open_landscape()
    before, _ = build_graph(res, labels, patches, g)
    fenced, _ = fence_resistance(res, countries, g, mode="penalty", penalty=50.0)
    after, _ = build_graph(fenced, labels, patches, g)
    # steps A->fenceA, fenceA->fenceB, fenceB->B cost CELL*(1+51)/2 + CELL*51 + CELL*(51+1)/2 instead of 3*CELL
    extra = CELL * (52 / 2 + 51 + 52 / 2) - 3 * CELL
    assert after.edges[1, 2]["cwd"] - before.edges[1, 2]["cwd"] == pytest.approx(extra, rel=1e-9)


def test_closing_the_fence_loses_the_pc_of_the_link_worked_by_hand():
    g, res, labels, patches, _, countries = open_landscape()
    before, _ = build_graph(res, labels, patches, g)
    fenced, _ = fence_resistance(res, countries, g)
    after, _ = build_graph(fenced, labels, patches, g)
    assert after.number_of_edges() == 0
    d0 = before.edges[1, 2]["cwd"]
    m0 = connectivity_metrics(before, median_distance=d0, probability=0.5, landscape_area=1000.0).summary
    m1 = connectivity_metrics(after, median_distance=d0, probability=0.5, landscape_area=1000.0).summary
    s = compare_networks(before, after, m0, m1)
    # a1 = a2 = 80 ha, p12 = 0.5: PC numerator 80^2 + 80^2 + 2*80*80*0.5 = 19200 before, 12800 after -> 33.3 % lost
    assert s.summary["PC_loss_pct"] == pytest.approx(100 * 6400 / 19200)
    assert s.summary["EC_loss_pct"] == pytest.approx(100 * (1 - np.sqrt(12800) / np.sqrt(19200)))
    assert s.summary["newly_isolated"] == [1, 2]
    assert s.summary["links_vanished"] == 1 and s.links["status"].tolist() == ["vanished"]


def test_fence_errors():
    g, res, _, _, _, countries = open_landscape()
    with pytest.raises(ConfigError, match="impassable"):
        fence_resistance(res, countries, g, mode="wall")
    with pytest.raises(AlignmentError):
        fence_resistance(res[:, :10], countries, g)
    with pytest.raises(AlignmentError):
        border_crossings(nx.Graph(), countries[:, :10], ["AAA", "BBB"], g)


def test_crossborder_table_ranks_by_score_and_names_the_protected_areas():
    G = nx.Graph()
    G.add_node(1, name="Land of the Leopard")
    G.add_node(2, name="NE China Tiger and Leopard")
    G.add_node(3, name="")
    G.add_edge(1, 2, cwd=500.0, countries="CHN;RUS", score=60.0)
    G.add_edge(2, 3, cwd=900.0, countries="CHN;PRK", score=80.0)
    G.add_edge(1, 3, cwd=100.0, countries="RUS", score=99.0)
    mark_crosses_border(G)
    t = crossborder_corridors(G)
    assert t[["rank", "from_id", "to_id"]].values.tolist() == [[1, 2, 3], [2, 1, 2]]
    assert t["protected_areas"].tolist() == ["NE China Tiger and Leopard", "Land of the Leopard; NE China Tiger and Leopard"]
