from __future__ import annotations

import pytest

from affine import Affine

from leopardgeo.core._crs import require_projected_metres
from leopardgeo.core.errors import AlignmentError, CRSError
from leopardgeo.core.grid import Grid


def test_geographic_crs_is_refused_with_the_fix():
    with pytest.raises(CRSError) as err:
        require_projected_metres("EPSG:4326", "analysis grid")
    msg = str(err.value)
    assert "expected a projected CRS in metres" in msg
    assert "geographic" in msg and "EPSG:4326" in msg
    assert "to_crs" in msg and "EPSG:32652" in msg


def test_missing_crs_is_refused():
    with pytest.raises(CRSError, match="found no CRS"):
        require_projected_metres(None, "layer")


def test_feet_are_refused():
    with pytest.raises(CRSError, match="axis units"):
        require_projected_metres("EPSG:2229", "grid")  # NAD83 / California zone 5 (ftUS)


def test_grid_geometry():
    g = Grid.from_bounds((1, 2, 1001, 502), cell_size_m=100, crs="EPSG:32652")
    assert g.bounds == (0.0, 0.0, 1100.0, 600.0)  # snapped outward to multiples of 100 m
    assert g.shape == (6, 11)
    assert g.cell_area_ha == 1.0
    x, y = g.xy([0], [0])
    assert (x[0], y[0]) == (50.0, 550.0)


def test_non_square_cells_are_refused():
    with pytest.raises(AlignmentError, match="square cells"):
        Grid("EPSG:32652", Affine(100, 0, 0, 0, -50, 0), (3, 3))


def test_check_same_names_the_difference():
    a = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=100, crs="EPSG:32652")
    b = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=50, crs="EPSG:32652")
    a.check_same(a, "x")
    with pytest.raises(AlignmentError, match=r"shape \(20, 20\) instead of \(10, 10\)"):
        a.check_same(b, "resistance")


@pytest.mark.parametrize("shape", [(3, 4, 5), (3.5, 4), (3,)])
def test_grid_shape_is_two_whole_numbers(shape):
    # (3, 4, 5) was cut to (3, 4) and 3.5 rows to 3 without a word
    with pytest.raises(AlignmentError, match="expected a shape of two whole numbers"):
        Grid(crs="EPSG:32652", transform=Affine(100, 0, 0, 0, -100, 0), shape=shape)


@pytest.mark.parametrize("cell", ["500", float("nan"), 0, -5, True])
def test_cell_size_must_be_a_positive_number(cell):
    # a string reached numpy's isclose in grid_from_raster (a bare UFuncTypeError)
    from leopardgeo.core.errors import ConfigError

    with pytest.raises(ConfigError, match="cell_size_m: expected a positive number of metres"):
        Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=cell, crs="EPSG:32652")
