"""Shared fixtures: tiny synthetic grids in UTM 52N, written into tmp_path."""

from __future__ import annotations

import os

import numpy as np
import pytest

import geopandas as gpd
import shapely

from leopardgeo.testing import TEST_CRS, synthetic_raster

#: Run by test_qgis.py with the system Python that has QGIS; not importable here (--doctest-modules would try).
collect_ignore = ["qgis_check.py"]


@pytest.fixture
def least_cost_links():
    """``least_cost_links(res, labels, pairs, cell_size_m)``: a links graph, each link's ``cwd`` its least cost."""
    import networkx as nx

    from leopardgeo.kernels.costdist import cost_distance

    def build(res, labels, pairs, cell_size_m):
        graph = nx.Graph()
        for a, b in pairs:  # one search from patch a; the least cost reaching patch b
            cost = cost_distance(res, np.where(labels == a, a, 0), cell_size_m=cell_size_m).cost
            graph.add_edge(a, b, patch_a=a, patch_b=b, cwd=float(cost[labels == b].min()))
        return graph

    return build


@pytest.fixture
def utm_raster(tmp_path):
    """A 10 x 12 float raster of 100 m cells in UTM 52N with values 0..1."""
    values = np.linspace(0, 1, 120, dtype="float32").reshape(10, 12)
    return synthetic_raster(tmp_path / "suit.tif", values, cell_size_m=100)


@pytest.fixture
def square_pa(tmp_path):
    """One protected area polygon (WDPA columns) in UTM 52N."""
    gdf = gpd.GeoDataFrame(
        {
            "WDPAID": [1],
            "NAME": ["Test NP"],
            "ISO3": ["RUS"],
            "STATUS": ["Designated"],
            "MARINE": ["0"],
        },
        geometry=[shapely.box(500_200, 4_799_200, 500_600, 4_799_600)],
        crs=TEST_CRS,
    )
    path = tmp_path / "pa.gpkg"
    gdf.to_file(path, layer="protected_areas")
    return path


def coarse_demo_config():
    """The demo configuration on a 2 km grid (every stage, ~140 k cells): real data, seconds to run."""
    import dataclasses

    from leopardgeo.runner.registry import demo_config

    cfg = demo_config()
    bm = dataclasses.replace(cfg.barrier_mapper, min_radius_m=2000.0, max_radius_m=4000.0, radius_step_m=2000.0)
    return cfg.replace(grid=dataclasses.replace(cfg.grid, cell_size_m=2000.0), barrier_mapper=bm)


@pytest.fixture
def coarse_config():
    """:func:`coarse_demo_config` as a fixture."""
    return coarse_demo_config()


@pytest.fixture(scope="session")
def coarse_run(tmp_path_factory):
    """``(RunResult, folder)`` of :func:`coarse_demo_config`; copy the folder before writing into it."""
    from leopardgeo.runner.pipeline import run

    out = tmp_path_factory.mktemp("coarse") / "out"
    return run(coarse_demo_config(), out_dir=out), out


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """``(RunResult, folder)`` of the full demo configuration, run once per session (about a minute).

    Every test that needs the demo's own numbers reads this one run.  Treat the folder as read-only: a test
    that writes into a demo run folder (a report, a rerun) works on :func:`copy_run` of it.
    """
    from leopardgeo.runner.pipeline import run
    from leopardgeo.runner.registry import demo_config

    out = tmp_path_factory.mktemp("demo") / "out"
    return run(demo_config(), out_dir=out), out


def copy_run(folder, dst):
    """Copy the run folder ``folder`` to ``dst`` (which must not exist) and return ``dst``."""
    import shutil

    shutil.copytree(folder, dst)
    return dst


@pytest.fixture(scope="session")
def cluster():
    """A real Dask LocalCluster of 2 worker processes (1 thread each), shared by the session's tests."""
    pytest.importorskip("distributed")
    from leopardgeo.core.executor import ExecutorConfig, get_executor

    names = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    before = {name: os.environ.get(name) for name in names}
    with get_executor(ExecutorConfig(workers=2, threads=1, memory_limit_gb=2)) as ex:
        ex.malloc_env_before = before  # this process's own settings, which starting the workers leaves alone
        yield ex
