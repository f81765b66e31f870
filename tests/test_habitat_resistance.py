from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geopandas as gpd
import shapely

from leopardgeo.core.errors import ConfigError, DataError, ResistanceError
from leopardgeo.core.grid import Grid
from leopardgeo.kernels.linear import linear_predictor
from leopardgeo.runner.registry import BarrierConfig, HabitatConfig
from leopardgeo.stages.habitat import builtin_covariates, rsf_suitability, suitability_from_raster
from leopardgeo.stages.resistance import (
    burn_barriers,
    check_resistance,
    resistance_from_classes,
    resistance_from_suitability,
)

GRID = Grid.from_bounds((0, 0, 500, 300), cell_size_m=100, crs="EPSG:32652")


# ---------------------------------------------------------------------- habitat
def test_rsf_is_the_logistic_of_the_linear_predictor():
    elev = np.array([[0.2, 1.0]], dtype="float32")
    forest = np.array([[1.0, 0.0]], dtype="float32")
    s = rsf_suitability(
        {"elevation_km": elev, "forest": forest}, intercept=-1.0, coefficients={"elevation_km": -2.0, "forest": 3.0}
    )
    # by hand: eta = -1 - 2*0.2 + 3 = 1.6 -> 1/(1+e^-1.6) ; eta = -1 - 2 = -3 -> 1/(1+e^3)
    np.testing.assert_allclose(s, [[1 / (1 + math.exp(-1.6)), 1 / (1 + math.exp(3))]], rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_terms=st.integers(1, 12),
    dtype=st.sampled_from(["float32", "float64", "mixed"]),
    shape=st.sampled_from([(1, 1), (3, 7), (40, 33)]),
)
def test_linear_predictor_and_rsf_are_numpys_bit_for_bit(seed, n_terms, dtype, shape):
    # the compiled one-pass predictor against numpy's term-by-term sum (beta * x rounded in x's type, summed in
    # float64), with NaN cells and coefficients that are not float32 numbers; mixed types: None (numpy's own way)
    rng = np.random.default_rng(seed)
    types = [rng.choice(["float32", "float64"]) if dtype == "mixed" else dtype for _ in range(n_terms)]
    xs = [(rng.normal(0, 50, shape)).astype(t) for t in types]
    for x in xs:
        x[rng.random(shape) < 0.1] = np.nan
    betas = [float(b) for b in rng.normal(0, 3, n_terms)]
    intercept = float(rng.normal(0, 5))
    want = np.full(shape, intercept)
    for b, x in zip(betas, xs, strict=True):
        want += b * x
    got = linear_predictor(intercept, list(zip(betas, xs, strict=True)))
    if len(set(types)) > 1:
        assert got is None
    else:
        assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
    covariates = {f"x{i}": x for i, x in enumerate(xs)}
    s = rsf_suitability(covariates, intercept=intercept, coefficients={f"x{i}": b for i, b in enumerate(betas)})
    with np.errstate(over="ignore"):
        assert s.tobytes() == (1.0 / (1.0 + np.exp(-want))).astype("float32").tobytes()


def test_rsf_unknown_covariate_lists_available():
    with pytest.raises(ConfigError, match=r"unknown covariate\(s\) \['slope'\]; available: \['forest'\]"):
        rsf_suitability({"forest": np.zeros((1, 1))}, intercept=0, coefficients={"slope": 1})


def test_builtin_covariates_distance_and_classes():
    lc = np.full(GRID.shape, 4.0)
    lc[0, 0] = 12  # cropland in the top-left corner
    lc[2, 4] = np.nan
    cfg = HabitatConfig(distance_cap_km=0.25)
    cov = builtin_covariates(GRID, landcover=lc, elevation_m=np.full(GRID.shape, 500.0), config=cfg)
    assert cov["forest"][1, 1] == 1 and cov["forest"][0, 0] == 0
    assert cov["landcover_12"][0, 0] == 1
    assert cov["dist_cropland_km"][0, 1] == pytest.approx(0.1)
    assert cov["dist_cropland_km"][1, 1] == pytest.approx(math.sqrt(2) * 0.1)
    assert cov["dist_cropland_km"][2, 3] == pytest.approx(0.25)  # capped
    assert np.isnan(cov["forest"][2, 4])
    assert cov["elevation_km_sq"][0, 0] == pytest.approx(0.25)
    assert (cov["dist_urban_km"][np.isfinite(cov["dist_urban_km"])] == 0.25).all()  # no town: the cap


def test_suitability_raster_out_of_range():
    with pytest.raises(DataError, match=r"expected values in 0..1, found 1 cells outside \(range 0..87\)"):
        suitability_from_raster(np.array([[0.0, 87.0]]))


# ---------------------------------------------------------------------- resistance
@pytest.mark.parametrize("c", [0.5, 2.0, 8.0, 16.0])
def test_negative_exponential_matches_keeley_formula(c):
    h = np.linspace(0, 1, 11)
    r = resistance_from_suitability(h, shape_c=c, max_resistance=100)
    by_hand = [100 - 99 * (1 - math.exp(-c * x)) / (1 - math.exp(-c)) for x in h]
    np.testing.assert_allclose(r, by_hand, rtol=1e-5)
    assert r[0] == pytest.approx(100) and r[-1] == pytest.approx(1)
    assert (np.diff(r) < 0).all()  # more suitable, easier to cross


def test_linear_and_nan():
    r = resistance_from_suitability(np.array([0.0, 0.25, np.nan]), method="linear", max_resistance=5)
    np.testing.assert_allclose(r[:2], [5.0, 4.0])
    assert np.isnan(r[2])


def test_classes_missing_code_is_named():
    with pytest.raises(ConfigError, match=r"missing 13 \(2 cells\)"):
        resistance_from_classes(np.array([[4, 13, 13]]), {"4": 1})


@pytest.mark.parametrize(
    ("values", "n"),
    [([[1.0, 0.0]], 1), ([[-1.0, -2.0]], 2), ([[np.inf, 3.0]], 1)],
)
def test_check_resistance_names_count_and_place(values, n):
    with pytest.raises(ResistanceError) as err:
        check_resistance(np.array(values), Grid.from_bounds((0, 0, 200, 100), cell_size_m=100, crs="EPSG:32652"))
    msg = str(err.value)
    assert f"found {n} cells" in msg and "row/col" in msg and "x=" in msg and "impassable" in msg


def test_check_resistance_all_nodata():
    with pytest.raises(DataError, match="every cell is no data"):
        check_resistance(np.full((2, 2), np.nan))


def test_barriers_add_max_impassable():
    r = np.ones(GRID.shape, dtype="float32")
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 150), (500, 150)])], crs=GRID.crs)  # along row 1
    out = burn_barriers(r, GRID, [(road, BarrierConfig(path="x", penalty=10))])
    assert (out[1] == 11).all() and (out[[0, 2]] == 1).all()
    out = burn_barriers(r * 30, GRID, [(road, BarrierConfig(path="x", mode="max", penalty=10))])
    assert (out == 30).all()
    fence = gpd.GeoDataFrame(geometry=[shapely.LineString([(250, 0), (250, 300)])], crs=GRID.crs)  # a column edge
    out = burn_barriers(r, GRID, [(fence, BarrierConfig(path="x", mode="impassable"))])
    # a fence on a cell edge closes one whole column: every row is cut, nothing else changes
    assert np.isnan(out).any(axis=1).all() and np.isnan(out).sum() == GRID.height
    far = gpd.GeoDataFrame(geometry=[shapely.Point(10_000, 10_000)], crs=GRID.crs)
    with pytest.raises(DataError, match="touches no cell"):
        burn_barriers(r, GRID, [(far, BarrierConfig(path="x", name="far"))])


def test_coefficient_table_from_csv(tmp_path):
    from leopardgeo.stages.habitat import read_coefficients

    path = tmp_path / "rsf.csv"
    path.write_text("covariate,coefficient\nintercept,-2.5\nforest,1.25\ndist_urban_km,0.1\n")
    assert read_coefficients(path) == (-2.5, {"forest": 1.25, "dist_urban_km": 0.1})
    path.write_text("name,value\nforest,1\n")
    with pytest.raises(DataError, match="expected columns covariate,coefficient"):
        read_coefficients(path)
    path.write_text("covariate,coefficient\nforest,high\n")
    with pytest.raises(DataError, match="line 2: expected a number, found 'high'"):
        read_coefficients(path)


def test_pipeline_uses_the_coefficient_table(tmp_path):
    from leopardgeo.runner import pipeline
    from leopardgeo.runner.registry import demo_config

    path = tmp_path / "rsf.csv"
    path.write_text("covariate,coefficient\nintercept,0\nforest,0\n")
    cfg = demo_config()
    cfg = cfg.replace(habitat=HabitatConfig(coefficients_file=str(path)))
    inputs = pipeline.load_inputs(cfg)
    s = pipeline.compute_suitability(cfg, inputs)
    # logistic(0) = 0.5 everywhere on valid cells, by hand
    np.testing.assert_allclose(s[inputs.valid], 0.5)
