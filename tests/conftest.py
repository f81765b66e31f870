"""Shared fixtures: tiny synthetic grids in UTM 52N, written into tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

import geopandas as gpd
import shapely

from leopardgeo.testing import TEST_CRS, synthetic_raster


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
