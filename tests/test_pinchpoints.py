"""Pinch points checked against hand-solved corridors (uniform strips, a one-cell narrowing)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from leopardgeo.core.grid import Grid
from leopardgeo.stages.corridors import least_cost_corridors
from leopardgeo.stages.pinchpoints import add_pinch_attributes, pinch_points
from leopardgeo.testing import TEST_CRS


def strip(width: int, length: int = 8, r: float = 2.0):
    """A strip ``width`` rows x ``length`` columns of resistance r; patches = first and last columns."""
    g = Grid.from_bounds((0, 0, length * 100.0, width * 100.0), cell_size_m=100, crs=TEST_CRS)
    res = np.full((width, length), r)
    lab = np.zeros((width, length), dtype=np.int32)
    lab[:, 0], lab[:, -1] = 1, 2
    G = nx.Graph()
    G.add_edge(1, 2, patch_a=1, patch_b=2, cwd=(length - 1) * 100.0 * r)
    return g, res, lab, G


@pytest.mark.parametrize("width", [1, 3, 5])
def test_uniform_strip_current_and_resistance(width):
    g, res, lab, G = strip(width)
    cor = least_cost_corridors(res, lab, G, g, width_cwd=1e9)  # the whole strip is the corridor
    out = pinch_points(res, lab, cor, g, connectivity=4)
    row = out.table.iloc[0]
    # 4 neighbours, W parallel rows of N-1 edges of resistance r in series: R = (N - 1) r / W; 1/W A per cell
    assert row["corridor_resistance"] == pytest.approx(7 * 2.0 / width)
    assert row["pinch_current"] == pytest.approx(1.0 / width)
    np.testing.assert_allclose(out.current[:, 1:-1], 1.0 / width)
    add_pinch_attributes(G, out)
    assert G.edges[1, 2]["pinch_current"] == pytest.approx(1.0 / width)


def test_narrowing_is_the_pinch_point():
    g, res, lab, G = strip(5, length=9)
    res[[0, 1, 3, 4], 4] = np.nan  # the corridor narrows to one cell at (2, 4)
    G.edges[1, 2]["cwd"] = 800.0 * 2.0
    cor = least_cost_corridors(res, lab, G, g, width_cwd=1e9)
    out = pinch_points(res, lab, cor, g, connectivity=4)
    row = out.table.iloc[0]
    assert row["pinch_current"] == pytest.approx(1.0)
    col, r = ~g.transform * (row.geometry.x, row.geometry.y)
    assert int(r) == 2 and 3 <= int(col) <= 5  # the gap cell and its two neighbours in the row each pass all 1 A
    assert out.current[2, 4] == pytest.approx(1.0)
    assert out.current[0, 1] < 0.3  # away from the narrowing the amp spreads over five rows
    # Rayleigh monotonicity: shorting each column gives a lower bound (3 gaps of 5 parallel edges, 2 single edges,
    # 3 gaps of 5), keeping only row 2 an upper bound (8 edges in series); edge resistance r = 2
    assert 2.0 * (3 / 5 + 2 + 3 / 5) < row["corridor_resistance"] < 8 * 2.0


def _three_patches(least_cost_links):
    """Three patches on a random landscape, every pair a link: three corridor windows."""
    g = Grid.from_bounds((0, 0, 6000.0, 4000.0), cell_size_m=100, crs=TEST_CRS)
    res = 10.0 ** np.random.default_rng(4).uniform(0.0, 1.5, g.shape)
    lab = np.zeros(g.shape, dtype=np.int32)
    lab[2:6, 2:6], lab[30:35, 50:55], lab[5:9, 45:50] = 1, 2, 3
    return g, res, lab, least_cost_links(res, lab, [(1, 2), (1, 3), (2, 3)], cell_size_m=100.0)


def test_windows_on_any_executor_give_the_same_pinch_points(monkeypatch, least_cost_links):
    from leopardgeo.core.executor import ThreadExecutor, use_executor
    from leopardgeo.kernels.circuit import circuit_flow
    from leopardgeo.stages.pinchpoints import _window_inputs

    g, res, lab, G = _three_patches(least_cost_links)
    cor = least_cost_corridors(res, lab, G, g, width_cwd=3000.0)
    with use_executor(ThreadExecutor(1)):
        one = pinch_points(res, lab, cor, g)
    tasks: list[int] = []
    map_ = ThreadExecutor.map

    def counted(self, fn, items, **kw):  # the windows are the executor's tasks
        items = list(items)
        tasks.append(len(items))
        return map_(self, fn, items, **kw)

    monkeypatch.setattr(ThreadExecutor, "map", counted)
    with use_executor(ThreadExecutor(2)):  # two windows at a time
        two = pinch_points(res, lab, cor, g)
    assert sum(tasks) == 3
    assert len(one.table) == 3
    np.testing.assert_array_equal(two.current, one.current)
    assert two.table.drop(columns="geometry").equals(one.table.drop(columns="geometry"))
    assert list(two.table.geometry) == list(one.table.geometry)
    # each link's numbers are its own window's circuit, whatever ran beside it
    for row in one.table.itertuples(index=False):
        _, _, wres, focal, _ = _window_inputs(res, lab, cor, (row.patch_a, row.patch_b))
        r = circuit_flow(wres, focal).resistances.eff_resistance.iloc[0]
        assert row.corridor_resistance == pytest.approx(r, rel=1e-12)
