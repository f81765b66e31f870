"""Windowed cost distance within a cutoff and windowed corridors: identical to the whole-grid results.

References: the whole-grid kernel (cost_distance_many) and scipy.sparse.csgraph's Dijkstra on an explicit
graph (test_costdist.grid_graph).  Grids are tiny; the LocalCluster is the session's (conftest.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leopardgeo.core.errors import MemoryLimitError
from leopardgeo.core.executor import ThreadExecutor
from leopardgeo.kernels.costdist import cost_distance, cost_distance_many
from leopardgeo.kernels.windowed import (
    GeoTiffWindows,
    cost_distance_window,
    cost_distance_windows,
    label_boxes,
)
from leopardgeo.stages import corridors
from leopardgeo.stages.corridors import least_cost_corridors
from leopardgeo.stages.graph import build_graph
from test_costdist import grid_graph, scipy_cost
from test_graph import patches_from_mask

CELL = 100.0


@st.composite
def cutoff_cases(draw):
    nr, nc = draw(st.integers(3, 14)), draw(st.integers(3, 14))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = rng.uniform(0.5, 20.0, (nr, nc))
    if draw(st.booleans()):
        res = res.astype(np.float32)
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.15]))] = np.nan
    src = np.zeros((nr, nc), np.int32)
    for lab in (1, 2, 3):
        r, c = rng.integers(nr), rng.integers(nc)
        src[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = lab
    src[np.isnan(res)] = 0
    return res, src, draw(st.sampled_from([4, 8, 16])), draw(st.sampled_from([60.0, 250.0, 900.0]))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cutoff_cases())
def test_window_search_equals_whole_grid_kernel_and_scipy(case):
    res, src, conn, cut = case
    present = [int(v) for v in np.unique(src[src > 0])]
    assume(present)
    graph = grid_graph(res.astype(np.float64), CELL, conn)
    for lab in present:
        w = cost_distance_window(res, src, lab, cell_size_m=CELL, max_cost=cut, connectivity=conn)
        whole = cost_distance_many(res, src, [lab], cell_size_m=CELL, connectivity=conn, max_cost=cut)[lab]
        # bit for bit inside the window, nothing reached outside it
        np.testing.assert_array_equal(w.cost, whole[w.rows, w.cols])
        outside = np.ones(res.shape, bool)
        outside[w.rows, w.cols] = False
        assert not np.isfinite(whole[outside]).any()
        # scipy's Dijkstra, cut at max_cost
        ref = scipy_cost(graph, res.astype(np.float64), src, [lab])
        ref = np.where(ref <= cut, ref, np.inf)
        ref[np.isnan(res)] = np.nan
        got = w.full(res.shape)
        got[np.isnan(res)] = np.nan
        np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_several_small_windows_and_files(tmp_path):
    """Windows far smaller than the grid (so several, none the whole grid), read from GeoTIFFs as from arrays."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(7)
    res = rng.uniform(1.0, 4.0, (60, 90)).astype(np.float32)
    res[20:40, 44] = np.nan  # a wall with gaps
    src = np.zeros(res.shape, np.int32)
    src[5:8, 5:9], src[50:53, 80:84], src[30:32, 40:42] = 1, 2, 3
    cutoffs = {1: 900.0, 2: 1500.0, 3: 600.0}
    paths = {}
    for name, a in (("res", res), ("src", src)):
        paths[name] = tmp_path / f"{name}.tif"
        nodata = np.nan if a.dtype.kind == "f" else 0
        prof = {"driver": "GTiff", "height": 60, "width": 90, "count": 1, "dtype": a.dtype, "nodata": nodata,
                "crs": "EPSG:32652", "transform": from_origin(0, 6000, CELL, CELL)}  # fmt: skip
        with rasterio.open(paths[name], "w", **prof) as ds:
            ds.write(a, 1)
    assert label_boxes(GeoTiffWindows(str(paths["src"])), scan_rows=7) == label_boxes(src)
    on_arrays = cost_distance_windows(res, src, cutoffs, cell_size_m=CELL, executor=ThreadExecutor(2))
    on_files = cost_distance_windows(
        GeoTiffWindows(str(paths["res"])), GeoTiffWindows(str(paths["src"])), cutoffs, cell_size_m=CELL
    )
    assert list(on_arrays) == [1, 2, 3]
    for lab, cut in cutoffs.items():
        whole = cost_distance_many(res, src, [lab], cell_size_m=CELL, max_cost=cut)[lab]
        for w in (on_arrays[lab], on_files[lab]):
            assert w.cost.size < res.size / 3
            np.testing.assert_array_equal(w.cost, whole[w.rows, w.cols])
            assert np.isfinite(whole).sum() == np.isfinite(w.cost).sum()


def test_window_search_refuses_a_window_over_the_memory_limit():
    res = np.ones((30, 30))
    src = np.zeros((30, 30), np.int32)
    src[15, 15] = 1
    with pytest.raises(MemoryLimitError, match="patch 1 in a window of .* cells.*memory_limit_gb"):
        cost_distance_window(res, src, 1, cell_size_m=CELL, max_cost=1000.0, limit_bytes=1000)
    w = cost_distance_window(res, src, 1, cell_size_m=CELL, max_cost=1000.0, limit_bytes=10**9)
    assert w.halo == 12 and w.cost.shape == (25, 25)


# ---------------------------------------------------------------- corridors
@st.composite
def corridor_cases(draw):
    nr, nc = draw(st.integers(8, 16)), draw(st.integers(8, 16))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = rng.uniform(1.0, 30.0, (nr, nc))
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.1]))] = np.nan
    mask = np.zeros((nr, nc), bool)
    for _ in range(draw(st.integers(3, 5))):
        r, c = rng.integers(nr), rng.integers(nc)
        mask[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = True
    mask &= np.isfinite(res)
    width = draw(st.sampled_from([{"width_fraction": 0.1}, {"width_fraction": 1.0}, {"width_cwd": 300.0}]))
    return res, mask, draw(st.sampled_from([4, 8, 16])), width


def assert_same_corridors(a, b):
    np.testing.assert_array_equal(a.normalised, b.normalised)
    np.testing.assert_array_equal(a.link_index, b.link_index)
    assert a.table.equals(b.table)
    assert list(a.windows) == list(b.windows)
    for k, w in a.windows.items():
        v = b.windows[k]
        assert (w.rows, w.cols) == (v.rows, v.cols)
        np.testing.assert_array_equal(w.mask, v.mask)
        np.testing.assert_array_equal(w.value, v.value)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=corridor_cases())
def test_windowed_corridors_equal_whole_grid_corridors(case):
    res, mask, conn, width = case
    g, labels, p = patches_from_mask(mask)
    assume(3 <= len(p) <= 5)
    G, _ = build_graph(res, labels, p, g, connectivity=conn)
    assume(G.number_of_edges() > 0)
    whole = least_cost_corridors(res, labels, G, g, connectivity=conn, windowed=False, workers=1, **width)
    windowed = least_cost_corridors(res, labels, G, g, connectivity=conn, windowed=True, workers=2, **width)
    assert_same_corridors(whole, windowed)


def _strip_case():
    """A 16 x 80 strip with six patches in a row: each patch's window covers about half of it."""
    rng = np.random.default_rng(3)
    res = rng.uniform(1.0, 1.2, (16, 80))
    mask = np.zeros(res.shape, bool)
    for c in (2, 17, 32, 47, 62, 77):
        mask[7:10, c : c + 2] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(res, labels, p, g, rule="planar")
    return res, labels, G, g


def test_auto_switches_to_windows_when_whole_grid_searches_do_not_fit(monkeypatch):
    res, labels, G, g = _strip_case()

    class Small(ThreadExecutor):
        def task_memory_bytes(self) -> int:
            return 25 * res.size  # below the whole-grid searches' 29 B a cell, above a window's share

    seen = []
    real = corridors.cost_distance_window
    monkeypatch.setattr(corridors, "cost_distance_window", lambda *a, **k: seen.append(a[2]) or real(*a, **k))
    auto = least_cost_corridors(res, labels, G, g, executor=Small(1))
    assert sorted(seen) == [1, 2, 3, 4, 5, 6]
    assert_same_corridors(auto, least_cost_corridors(res, labels, G, g, windowed=False, workers=1))
    with pytest.raises(MemoryLimitError, match=r"whole-grid cost-distance search.*\[corridors\] windowed"):
        least_cost_corridors(res, labels, G, g, executor=Small(1), windowed=False)


def test_corridor_searches_on_the_cluster_equal_one_thread(cluster):
    """Per-patch searches as tasks of a real 2-process LocalCluster: the same corridors, whole-grid or windowed, and
    whole-grid with the links stage's cost distance and allocation (bound, reaches and floors sent to the workers)."""
    res, labels, G, g = _strip_case()
    serial = least_cost_corridors(res, labels, G, g, windowed=False, workers=1)
    for windowed in (False, True):
        assert_same_corridors(serial, least_cost_corridors(res, labels, G, g, windowed=windowed, executor=cluster))
    one_pass = cost_distance(res, labels, cell_size_m=g.cell_size_m)
    bound = {"lower_bound": one_pass.cost, "lower_bound_allocation": one_pass.allocation}
    assert_same_corridors(serial, least_cost_corridors(res, labels, G, g, windowed=False, executor=cluster, **bound))
    assert math.isfinite(float(serial.table["cwd"].sum()))


# ---------------------------------------------------------------- up-front memory refusals (Omniscape)
def test_omniscape_on_a_local_cluster_is_refused_when_a_task_cannot_fit(cluster, monkeypatch):
    """The cluster's memory_limit (2 GB a worker of 1 thread) bounds a task; the check runs before any window."""
    from leopardgeo.core import memory
    from leopardgeo.stages.omniscape import check_omniscape_memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 10**15)  # the driver's maps are not the point here
    opts = {"radius": 6, "buffer": 0, "block_size": 9}
    shape = (12_000, 12_500)  # 150 M cells: 2.4 GB of float64 resistance + source scattered to each worker
    assert cluster.task_memory_bytes() == 2 * 10**9
    with pytest.raises(MemoryLimitError, match=r"each task .*whole rasters on its worker.*2\.0 GB.*--resistance FILE"):
        check_omniscape_memory(shape, opts, cluster, in_memory=True)
    check_omniscape_memory(shape, opts, cluster, in_memory=False)  # bands read from a file: 24 MB a task
    check_omniscape_memory(shape, opts, ThreadExecutor(2), in_memory=True)  # threads share the rasters


def test_omniscape_stage_refuses_before_solving(monkeypatch):
    from leopardgeo.core.grid import Grid
    from leopardgeo.kernels import omniscape as kernel
    from leopardgeo.stages import omniscape as stage

    class Tiny(ThreadExecutor):
        def task_memory_bytes(self) -> int:
            return 1000

    monkeypatch.setattr(stage, "omniscape", lambda *a, **k: pytest.fail("solved before the check"))
    g = Grid.from_bounds((0, 0, 3000, 2000), cell_size_m=100.0, crs="EPSG:32652")
    cfg = stage.OmniscapeConfig(radius_m=500, block_size=3)
    with pytest.raises(MemoryLimitError, match="each task"):
        stage.compute_omniscape(cfg, g, np.ones(g.shape), np.full(g.shape, 0.8), executor=Tiny(1))
    assert kernel.BAND_BLOCK_ROWS >= 1


def test_link_searches_on_the_cluster_equal_one_thread(cluster):
    """The cutoff rule's per-patch searches as tasks of the run's executor: the same graph on a LocalCluster."""
    from leopardgeo.core.executor import use_executor

    res, labels, _, g = _strip_case()
    _, _, p = patches_from_mask(np.isin(labels, [1, 2, 3, 4, 5, 6]))
    serial, _ = build_graph(res, labels, p, g, rule="cutoff", max_cwd=4000.0, workers=1)
    with use_executor(cluster):
        spread, _ = build_graph(res, labels, p, g, rule="cutoff", max_cwd=4000.0)
    assert list(serial.edges) == list(spread.edges) and serial.number_of_edges() >= 5
    for e in serial.edges:
        assert serial.edges[e]["cwd"] == spread.edges[e]["cwd"]
        assert serial.edges[e]["geometry"].equals_exact(spread.edges[e]["geometry"], 0.0)


# ---------------------------------------------------------------- pairwise circuit solves on the executor
def _circuit_case():
    rng = np.random.default_rng(0)
    r = rng.uniform(1.0, 10.0, (30, 30))
    r[rng.random(r.shape) < 0.05] = np.nan
    lab = np.zeros(r.shape, np.int32)
    for i, (y, x) in enumerate([(2, 2), (2, 24), (24, 2), (24, 24), (13, 13)], start=1):
        lab[y : y + 4, x : x + 4] = i
        r[y : y + 4, x : x + 4] = 1.0
    return r, lab


@pytest.mark.parametrize("solver", ["superlu", "amg"])
def test_pairwise_pairs_on_threads_and_a_cluster_equal_one_by_one(cluster, solver):
    """Pairwise (focal_shorting = pair) solves as executor tasks: same table and maps, in pair order, as serially."""
    from leopardgeo.kernels.circuit import circuit_flow

    r, lab = _circuit_case()
    kw = {"solver": solver, "max_current": True, "voltage_maps": True}
    serial = circuit_flow(r, lab, **kw)
    assert len(serial.resistances) == 10 and np.isfinite(serial.resistances.eff_resistance).all()
    for ex in (ThreadExecutor(2), cluster):
        got = circuit_flow(r, lab, executor=ex, **kw)
        assert got.resistances.equals(serial.resistances)
        np.testing.assert_array_equal(got.cum_current, serial.cum_current)
        np.testing.assert_array_equal(got.max_current, serial.max_current)
        assert list(got.voltages) == list(serial.voltages)
        for k, v in serial.voltages.items():
            np.testing.assert_array_equal(got.voltages[k], v)
