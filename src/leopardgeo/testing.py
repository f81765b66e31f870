"""Helpers to build tiny synthetic inputs for tests and examples.

Examples
--------
>>> import tempfile, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> grid, path = synthetic_raster(tmp / "r.tif", np.ones((3, 4)), cell_size_m=100)
>>> grid.shape, path.name
((3, 4), 'r.tif')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import geopandas as gpd
import rasterio
from affine import Affine

from leopardgeo.grid import Grid

__all__ = ["TEST_CRS", "synthetic_raster", "synthetic_vector"]

#: CRS of synthetic data: WGS 84 / UTM zone 52N (covers Primorye and Jilin).
TEST_CRS = "EPSG:32652"


def synthetic_raster(
    path: str | Path,
    values: Any,
    *,
    cell_size_m: float = 100.0,
    origin: tuple[float, float] = (500_000.0, 4_800_000.0),
    crs: Any = TEST_CRS,
    nodata: float | None = None,
    dtype: str = "float32",
) -> tuple[Grid, Path]:
    """Write ``values`` as a single-band GeoTIFF; return its grid and path.

    ``origin`` is the top-left corner in metres.  With ``crs=None`` the file
    has no CRS (for error tests); the returned grid then uses ``TEST_CRS``.
    """
    arr = np.asarray(values, dtype=dtype)
    path = Path(path)
    transform = Affine(cell_size_m, 0.0, origin[0], 0.0, -cell_size_m, origin[1])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(arr, 1)
    grid_crs = crs if crs is not None else TEST_CRS
    try:
        grid = Grid(grid_crs, transform, arr.shape)
    except Exception:  # geographic CRS on purpose: callers test the error
        grid = Grid(TEST_CRS, transform, arr.shape)
    return grid, path


def synthetic_vector(path: str | Path, gdf: gpd.GeoDataFrame, *, layer: str | None = None) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer and return the path."""
    path = Path(path)
    gdf.to_file(path, layer=layer, driver="GPKG")
    return path
