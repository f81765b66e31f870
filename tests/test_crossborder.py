"""Cross-border crossings and border permeability on a synthetic two-country landscape with a fence."""

from __future__ import annotations

import numpy as np
import pytest

import geopandas as gpd
import shapely

from leopardgeo.circuit import circuit_flow
from leopardgeo.corridors import least_cost_corridors
from leopardgeo.crossborder import border_crossings, border_permeability, crossing_table, mark_crosses_border
from leopardgeo.errors import ConfigError
from leopardgeo.graph import build_graph
from leopardgeo.grid import Grid
from leopardgeo.patches import extract_patches
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
    crossings = border_crossings(G, borders, g, corridors=cor.table, current=cur)
    assert len(crossings) == 1
    pt = crossings.geometry.iloc[0]
    col, row = ~g.transform * (pt.x, pt.y)
    assert (int(row), int(col)) == (20, 30)
    assert crossings["current"].iloc[0] == pytest.approx(1.0, rel=1e-6)
    assert crossings["border"].iloc[0] == "A-B"
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
