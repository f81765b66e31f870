"""Terrain covariates from the elevation: south-facing slope and ruggedness, against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leopardgeo.core.grid import Grid
from leopardgeo.runner.registry import HabitatConfig
from leopardgeo.stages.habitat import builtin_covariates, ruggedness_m, south_slope_m_per_km

GRID = Grid.from_bounds((0, 0, 9000, 7000), cell_size_m=500, crs="EPSG:32652")  # 14 rows x 18 cols


def _plane(aspect_deg: float, slope_m_per_km: float) -> np.ndarray:
    """Elevation of a plane whose slope faces ``aspect_deg`` (0 = north, 180 = south)."""
    rows, cols = np.indices(GRID.shape)
    x_km, y_km = (cols + 0.5) * 0.5, (GRID.shape[0] - rows - 0.5) * 0.5  # y grows to the north
    a = math.radians(aspect_deg)  # downhill direction; the terrain rises the opposite way
    return 1000.0 - slope_m_per_km * (x_km * math.sin(a) + y_km * math.cos(a))


@pytest.mark.parametrize(("aspect", "expected"), [(180, 40.0), (0, -40.0), (90, 0.0), (225, 40 * math.cos(math.radians(45)))])
def test_south_slope_is_the_slope_times_cos_of_aspect_from_south(aspect, expected):
    s = south_slope_m_per_km(_plane(aspect, 40.0), GRID)
    assert s == pytest.approx(np.full(GRID.shape, expected), abs=1e-9)


def test_ruggedness_is_the_standard_deviation_in_the_window():
    e = np.random.default_rng(3).normal(300, 50, GRID.shape)
    r = ruggedness_m(e, GRID, window_km=2.5)  # 5 x 5 cells
    assert r[6, 8] == pytest.approx(np.std(e[4:9, 6:11]), rel=1e-9)
    assert ruggedness_m(np.full(GRID.shape, 700.0), GRID, window_km=5.0) == pytest.approx(np.zeros(GRID.shape), abs=1e-6)


def test_builtin_covariates_have_terrain_and_no_data_off_land():
    e = _plane(180, 20.0)
    e[0, 0] = np.nan
    cov = builtin_covariates(GRID, elevation_m=e, config=HabitatConfig())
    assert np.isnan(cov["south_slope_m_per_km"][0, 0]) and np.isnan(cov["ruggedness_m"][0, 0])
    assert cov["south_slope_m_per_km"][7, 9] == pytest.approx(20.0)
    assert cov["ruggedness_m"].dtype == np.float32
