"""Settlement pressure, residency-only covariates, barrier classes and crossings, protected areas as labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geopandas as gpd
import shapely

from leopardgeo.config import VectorInput
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.io import grid_from_raster, read_vector
from leopardgeo.runner.registry import BarrierConfig, HabitatConfig, load_config_string
from leopardgeo.stages.habitat import builtin_covariates, hold_at_best, settlement_pressure, settlement_reach_km
from leopardgeo.stages.patches import extract_patches
from leopardgeo.stages.resistance import burn_barriers

GRID = Grid.from_bounds((0, 0, 4000, 3000), cell_size_m=100, crs="EPSG:32652")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the project
DEMO = Path(__file__).resolve().parents[1] / "data" / "amur"


def _centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.indices(grid.shape)
    return grid.xy(rows, cols)


# ---------------------------------------------------------------------- settlement pressure
def test_pressure_matches_the_formula_cell_by_cell():
    x = np.array([1000.0, 2600.0])
    y = np.array([1500.0, 1200.0])
    reach = settlement_reach_km(np.array([8000, 1000]), reach_km=0.2, reach_population=1000, exponent=1 / 3)
    np.testing.assert_allclose(reach, [0.4, 0.2])
    p = settlement_pressure(GRID, x, y, reach)
    cx, cy = _centres(GRID)
    free = np.ones(GRID.shape)
    for xi, yi, ri in zip(x, y, reach * 1000, strict=True):  # dense, no window: the formula as written
        free *= 1 - np.exp(-np.hypot(cx - xi, cy - yi) / ri)
    np.testing.assert_allclose(p, 1 - free, atol=1e-3)  # the 7-reach window drops terms below e^-7
    assert p.max() <= 1 and p.min() >= 0


@settings(max_examples=30, deadline=None)
@given(
    pts=st.lists(st.tuples(st.floats(0, 4000), st.floats(0, 3000), st.floats(0.05, 1.0)), min_size=1, max_size=4),
    extra=st.tuples(st.floats(0, 4000), st.floats(0, 3000), st.floats(0.05, 1.0)),
)
def test_pressure_is_bounded_and_never_falls_when_a_settlement_is_added(pts, extra):
    x, y, r = (np.array(v) for v in zip(*pts, strict=True))
    p = settlement_pressure(GRID, x, y, r)
    q = settlement_pressure(GRID, np.append(x, extra[0]), np.append(y, extra[1]), np.append(r, extra[2]))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(q >= p - 1e-6)


@settings(max_examples=20, deadline=None)
@given(small=st.integers(500, 20_000), factor=st.floats(1.0, 50.0))
def test_a_bigger_town_reaches_further(small, factor):
    r = settlement_reach_km(np.array([small, small * factor]), reach_km=2.0, reach_population=1000, exponent=1 / 3)
    assert r[1] >= r[0]
    pa = settlement_pressure(GRID, np.array([2000.0]), np.array([1500.0]), r[:1] / 10)
    pb = settlement_pressure(GRID, np.array([2000.0]), np.array([1500.0]), r[1:] / 10)
    assert np.all(pb >= pa - 1e-6)


def test_settlements_in_covariates_and_unknown_population():
    towns = gpd.GeoDataFrame(
        {"population": [0, 50_000]}, geometry=[shapely.Point(500, 500), shapely.Point(3500, 2500)], crs=GRID.crs
    )
    cfg = HabitatConfig(settlement_reach_km=0.2, settlement_default_population=1000, settlement_reach_exponent=0.5)
    cov = builtin_covariates(GRID, settlements=towns, config=cfg)
    p = cov["settlement_pressure"]
    # the first town has no recorded population: it counts as 1,000 people, reach 0.2 km; the second reaches
    # 0.2 * sqrt(50) km. Cell (25, 6) has its centre at (650, 450).
    r2 = 200 * math.sqrt(50)
    by_hand = 1 - (1 - math.exp(-math.hypot(150, 50) / 200)) * (1 - math.exp(-math.hypot(2850, 2050) / r2))
    assert p[25, 6] == pytest.approx(by_hand, abs=1e-4)
    assert p[4, 35 - 3] > p[25, 6 + 3]  # 300 m from each: 50,000 people press harder than 1,000
    with pytest.raises(DataError, match=r"expected a population column 'pop'.*settlement_population_field"):
        builtin_covariates(GRID, settlements=towns, config=HabitatConfig(settlement_population_field="pop"))
    with pytest.raises(DataError, match="expected populations >= 0"):
        builtin_covariates(GRID, settlements=towns.assign(population=[-1, 5]), config=cfg)


def test_hold_at_best_keeps_the_favourable_end():
    t = np.array([[-15.0, -9.0], [-12.0, np.nan]])
    up = hold_at_best({"t": t, "f": t}, {"t": 0.5, "f": -1.0}, ["t", "f"])
    assert np.nanmax(up["t"]) == np.nanmin(up["t"]) == -9.0  # warmer is better: held at the warmest
    assert np.nanmax(up["f"]) == -15.0  # negative coefficient: held at the minimum
    assert np.isnan(up["t"][1, 1])


def test_residency_covariates_are_config():
    cfg = load_config_string("[resistance]\nresidency_covariates = []\n")
    assert cfg.resistance.residency_covariates == ()
    assert load_config_string("").resistance.residency_covariates == ()
    assert load_config_string("[resistance]\nresidency_covariates = [\"dec_temp_c\"]\n").resistance.residency_covariates == (
        "dec_temp_c",
    )


# ---------------------------------------------------------------------- barriers
ROADS = gpd.GeoDataFrame(
    {"highway": ["track", "motorway", "motorway"]},
    geometry=[
        shapely.LineString([(0, 1550), (4000, 1550)]),  # row 14, all columns
        shapely.LineString([(2050, 0), (2050, 3000)]),  # column 20, all rows
        shapely.LineString([(3550, 0), (3550, 3000)]),  # column 35
    ],
    crs=GRID.crs,
)


def test_class_penalties_take_the_largest_per_cell_and_crossings_open_the_barrier():
    cfg = BarrierConfig(
        path="roads.gpkg",
        class_field="highway",
        class_penalties={"motorway": 80, "track": 2},
        crossings=VectorInput(path="gaps.gpkg"),
        crossing_radius_m=150,
    )
    gap = gpd.GeoDataFrame(geometry=[shapely.Point(3550, 550)], crs=GRID.crs)  # an underpass on the second motorway
    r = burn_barriers(np.ones(GRID.shape), GRID, [(ROADS, cfg, gap)])
    assert r[14, 5] == 3  # track: 1 + 2
    assert r[3, 20] == 81  # motorway: 1 + 80
    assert r[14, 20] == 81  # track and motorway in one cell: the larger penalty, not the sum
    assert r[24, 35] == 1  # under the gap (row 24 is y = 550): left open
    assert r[20, 35] == 81  # beyond the radius: closed
    assert r[0, 0] == 1


def test_every_class_needs_a_penalty():
    cfg = BarrierConfig(path="roads.gpkg", class_field="highway", class_penalties={"motorway": 80})
    with pytest.raises(DataError, match=r"missing 'track' \(1 features\).*class_penalties"):
        burn_barriers(np.ones(GRID.shape), GRID, [(ROADS, cfg)])
    cfg = BarrierConfig(path="roads.gpkg", class_field="kind", class_penalties={"motorway": 80})
    with pytest.raises(DataError, match=r"expected a class column 'kind'"):
        burn_barriers(np.ones(GRID.shape), GRID, [(ROADS, cfg)])


def test_barrier_config_errors():
    with pytest.raises(ConfigError, match="class_penalties given but no class_field"):
        BarrierConfig(path="x.gpkg", class_penalties={"a": 1})
    with pytest.raises(ConfigError, match="class_field = 'highway' but no class_penalties"):
        BarrierConfig(path="x.gpkg", class_field="highway")
    with pytest.raises(ConfigError, match=r"\[resistance.barriers\] crossing_radius_m: expected a finite number > 0"):
        BarrierConfig(path="x.gpkg", crossing_radius_m=0)
    toml = """
[[resistance.barriers]]
path = "rails.geojson"
name = "railways"
class_field = "FCO_DESCRI"
class_penalties = { Single = 30, Multiple = 60, Unknown = 30 }
crossings = { path = "underpasses.gpkg" }
crossing_radius_m = 500
"""
    b = load_config_string(toml).resistance.barriers[0]
    assert b.class_penalties == {"Single": 30.0, "Multiple": 60.0, "Unknown": 30.0}
    assert b.crossings == VectorInput(path="underpasses.gpkg")


@pytest.mark.skipif(not (SHARED / "cn_rails_vmap0").is_dir(), reason="shared test data absent")
def test_real_railways_and_urban_areas_in_geographic_crs():
    grid = grid_from_raster(DEMO / "landmask.tif")
    rails = read_vector(SHARED / "cn_rails_vmap0" / "CHN_rails_vmap0_box.geojson", grid=grid, what="railways")
    assert rails.crs.equals(grid.crs)  # EPSG:4326 in, the grid's LAEA out
    gaps = gpd.GeoDataFrame(geometry=rails.geometry.iloc[:3].interpolate(0.5, normalized=True), crs=grid.crs)
    cfg = BarrierConfig(
        path="rails.geojson",
        name="railways",
        class_field="FCO_DESCRI",
        class_penalties={"Single": 30, "Multiple": 60, "Unknown": 30},
        crossings=VectorInput(path="gaps.gpkg"),
        crossing_radius_m=1000,
    )
    r = burn_barriers(np.ones(grid.shape, "float32"), grid, [(rails, cfg, gaps)])
    assert set(np.unique(r).tolist()) == {1.0, 31.0, 61.0}
    mids = rails[rails["FCO_DESCRI"] == "Multiple"].geometry.interpolate(0.5, normalized=True)
    inside = mids[mids.within(shapely.box(*grid.bounds)) & (mids.distance(gaps.geometry.union_all()) > 3000)]
    col, row = (int(v) for v in ~grid.transform * (inside.iloc[0].x, inside.iloc[0].y))
    assert r[row, col] == 61  # a double-track railway: 1 + 60
    for pt in gaps.geometry:  # every crossing leaves its cell open
        c, rr = (int(v) for v in ~grid.transform * (pt.x, pt.y))
        assert r[rr, c] == 1
    urban = read_vector(SHARED / "ne_places_urban" / "ne_50m_urban_areas_box.geojson", grid=grid, what="urban areas")
    towns = burn_barriers(r, grid, [(urban, BarrierConfig(path="urban.geojson", name="towns", mode="max", penalty=90))])
    assert towns.max() == 90 and (towns >= r).all()


# ---------------------------------------------------------------------- protected areas label patches
def test_label_mode_names_patches_but_adds_no_habitat():
    s = np.zeros(GRID.shape, "float32")
    s[5:15, 5:15] = 0.9  # a 100 ha core
    park = gpd.GeoDataFrame(
        {"NAME": ["Park"]}, geometry=[shapely.box(1000, 1000, 2500, 2500)], crs=GRID.crs
    )  # overlaps the core and adds 125 ha of unsuitable land
    labels, patches = extract_patches(s, GRID, min_area_ha=50, protected_areas=park, protected_mode="label")
    assert int((labels > 0).sum()) == 100  # the core only
    assert patches["name"].tolist() == ["Park"]
    assert 0 < patches["protected_frac"].iloc[0] < 1
    merged, _ = extract_patches(s, GRID, min_area_ha=50, protected_areas=park, protected_mode="merge")
    assert int((merged > 0).sum()) > 100
