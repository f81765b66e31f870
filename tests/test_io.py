from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geopandas as gpd
import rasterio
import shapely
from pyproj import Geod

from leopardgeo.core._crs import DEMO_CRS_PROJ4
from leopardgeo.core.errors import (
    AlignmentError,
    CRSError,
    DataError,
    InvalidGeometryWarning,
    OutputError,
    OutputExistsError,
)
from leopardgeo.core.grid import Grid
from leopardgeo.io import OutputWriter, read_raster, read_vector, read_wdpa, write_raster
from leopardgeo.testing import TEST_CRS, synthetic_raster


# ---------------------------------------------------------------------- rasters
def test_read_raster_same_grid_is_exact(utm_raster):
    grid, path = utm_raster
    out = read_raster(path, grid)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.linspace(0, 1, 120).reshape(10, 12), rtol=1e-6)


def test_raster_without_crs(tmp_path):
    grid, path = synthetic_raster(tmp_path / "nocrs.tif", np.ones((3, 3)), crs=None)
    with pytest.raises(CRSError, match="has no CRS.*gdal_edit"):
        read_raster(path, grid)


def test_raster_missing_file(tmp_path, utm_raster):
    grid, _ = utm_raster
    with pytest.raises(DataError, match="not found"):
        read_raster(tmp_path / "missing.tif", grid)


def test_raster_outside_study_area(tmp_path, utm_raster):
    grid, _ = utm_raster
    _, far = synthetic_raster(tmp_path / "far.tif", np.ones((3, 3)), origin=(700_000, 5_500_000))
    with pytest.raises(AlignmentError, match="does not overlap the study area"):
        read_raster(far, grid)


def test_raster_all_nodata(tmp_path, utm_raster):
    grid, _ = utm_raster
    _, path = synthetic_raster(tmp_path / "nd.tif", np.full((10, 12), -9999.0), nodata=-9999.0)
    with pytest.raises(DataError, match="all nodata"):
        read_raster(path, grid)


def test_geographic_raster_is_warped_onto_a_projected_grid(tmp_path):
    # a lon/lat raster of ones around Vladivostok, read onto the demo's LAEA grid
    _, path = synthetic_raster(tmp_path / "ll.tif", np.ones((60, 60)), cell_size_m=0.01, origin=(131.5, 43.5), crs="EPSG:4326")
    grid = Grid.from_bounds((-60_000, -90_000, 0, -30_000), cell_size_m=1000, crs=DEMO_CRS_PROJ4)
    out = read_raster(path, grid)
    assert np.nanmax(out) == 1.0 and np.isnan(out).any()


def test_geographic_template_grid_is_refused(tmp_path):
    from leopardgeo.io import grid_from_raster

    _, path = synthetic_raster(tmp_path / "ll.tif", np.ones((3, 3)), cell_size_m=0.01, origin=(131, 43), crs="EPSG:4326")
    with pytest.raises(CRSError, match="geographic CRS"):
        grid_from_raster(path)


def test_template_grid_with_a_cell_size_that_is_no_number_is_refused(tmp_path, utm_raster):
    from leopardgeo.core.errors import ConfigError
    from leopardgeo.io import grid_from_raster

    grid, path = utm_raster
    with pytest.raises(ConfigError, match="cell_size_m: expected a positive number of metres, found '500'"):
        grid_from_raster(path, cell_size_m="500")
    assert grid_from_raster(path, cell_size_m=grid.cell_size_m) == grid


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(30, 80),
    cols=st.integers(30, 80),
    r0=st.integers(5, 40),
    c0=st.integers(5, 40),
)
def test_reprojection_round_trip_keeps_area(tmp_path_factory, rows, cols, r0, c0):
    """A block in UTM, warped to the equal-area LAEA grid and back, keeps its area within 1 %."""
    tmp = tmp_path_factory.mktemp("rt")
    values = np.zeros((130, 130), dtype="float32")
    values[r0 : r0 + rows, c0 : c0 + cols] = 1
    # UTM 52N near Vladivostok (x 700 km, y 4 780 km)
    utm, path = synthetic_raster(tmp / "a.tif", values, cell_size_m=100, origin=(700_000, 4_790_000))
    area_ha = values.sum() * utm.cell_area_ha
    from pyproj import Transformer

    tr = Transformer.from_crs(TEST_CRS, DEMO_CRS_PROJ4, always_xy=True)
    xs, ys = tr.transform([utm.bounds[0], utm.bounds[2]] * 2, [utm.bounds[1]] * 2 + [utm.bounds[3]] * 2)
    laea = Grid.from_bounds((min(xs), min(ys), max(xs), max(ys)), cell_size_m=100, crs=DEMO_CRS_PROJ4)
    there = read_raster(path, laea)
    there_ha = np.nansum(there) * laea.cell_area_ha
    assert there_ha == pytest.approx(area_ha, rel=0.01)
    _, path2 = synthetic_raster(
        tmp / "b.tif", np.nan_to_num(there), cell_size_m=100, origin=(laea.bounds[0], laea.bounds[3]), crs=DEMO_CRS_PROJ4
    )
    back = read_raster(path2, utm)
    assert np.nansum(back) * utm.cell_area_ha == pytest.approx(area_ha, rel=0.01)


# ---------------------------------------------------------------------- vectors
def _lonlat_polygons(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"NAME": ["a", "b"]},
        geometry=[shapely.box(131.0, 43.0, 131.5, 43.4), shapely.box(133.0, 43.1, 133.6, 43.5)],
        crs="EPSG:4326",
    )
    path = tmp_path / "ll.gpkg"
    gdf.to_file(path, layer="pa")
    return gdf, path


def test_vector_is_reprojected_and_area_matches_geodesic(tmp_path):
    gdf, path = _lonlat_polygons(tmp_path)
    grid = Grid.from_bounds((-200_000, -200_000, 200_000, 0), cell_size_m=1000, crs=DEMO_CRS_PROJ4)
    out = read_vector(path, "pa", grid=grid)
    geod = Geod(ellps="WGS84")
    for g_ll, g_m in zip(gdf.geometry, out.geometry, strict=True):
        geodesic_m2 = abs(geod.geometry_area_perimeter(g_ll)[0])
        # densified edges are not geodesics, so allow 0.5 %
        assert shapely.area(g_m) == pytest.approx(geodesic_m2, rel=0.005)


def test_empty_layer(tmp_path):
    empty = gpd.GeoDataFrame({"NAME": []}, geometry=[], crs=TEST_CRS)
    path = tmp_path / "e.gpkg"
    empty.to_file(path, layer="x")
    with pytest.raises(DataError, match="empty layer"):
        read_vector(path, "x")


def test_unknown_layer_lists_layers(tmp_path):
    _, path = _lonlat_polygons(tmp_path)
    with pytest.raises(DataError, match=r"expected a layer named 'nope'.*\['pa'\]"):
        read_vector(path, "nope")


def test_vector_without_crs(tmp_path):
    gdf = gpd.GeoDataFrame({"NAME": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=TEST_CRS)
    shp = tmp_path / "nocrs.shp"
    gdf.to_file(shp)
    shp.with_suffix(".prj").unlink()  # a shapefile that lost its .prj
    with pytest.raises(CRSError, match="expected a CRS, found none"):
        read_vector(shp)


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000), (0, 0)])
    gdf = gpd.GeoDataFrame({"NAME": ["bow"]}, geometry=[bowtie], crs=TEST_CRS)
    path = tmp_path / "bad.gpkg"
    gdf.to_file(path)
    with pytest.warns(InvalidGeometryWarning, match="1 invalid geometry repaired with make_valid.*Self-intersection"):
        out = read_vector(path)
    assert out.geometry.is_valid.all()
    assert out.geometry.area.iloc[0] == pytest.approx(500_000)


def test_vector_outside_study_area(tmp_path):
    _, path = _lonlat_polygons(tmp_path)
    grid = Grid.from_bounds((2_000_000, 2_000_000, 2_100_000, 2_100_000), cell_size_m=1000, crs=DEMO_CRS_PROJ4)
    with pytest.raises(AlignmentError, match="no feature overlaps the study area"):
        read_vector(path, "pa", grid=grid)


def test_wdpa_filters(tmp_path):
    gdf = gpd.GeoDataFrame(
        {
            "WDPAID": [1, 2, 3, 4, 5],
            "NAME": ["land", "sea", "proposed", "china", "point"],
            "ISO3": ["RUS", "RUS", "RUS", "CHN", "RUS"],
            "STATUS": ["Designated", "Designated", "Proposed", "Designated", "Designated"],
            "MARINE": ["0", "2", "0", "1", "0"],
        },
        geometry=[shapely.box(0, 0, 10, 10)] * 4 + [shapely.Point(5, 5)],
        crs=TEST_CRS,
    )
    path = tmp_path / "wdpa.gpkg"
    gdf.iloc[:4].to_file(path, layer="polys")
    out = read_wdpa(path, "polys")
    assert sorted(out["NAME"]) == ["china", "land"]
    assert list(read_wdpa(path, "polys", iso3=["rus"])["NAME"]) == ["land"]
    with pytest.raises(DataError, match="none left after"):
        read_wdpa(path, "polys", iso3=["PRK"])


# ---------------------------------------------------------------------- writing
def test_write_raster_refuses_to_overwrite(tmp_path, utm_raster):
    grid, _ = utm_raster
    p = write_raster(tmp_path / "x.tif", np.ones(grid.shape, "float32"), grid)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_raster(p, np.zeros(grid.shape, "float32"), grid)
    write_raster(p, np.zeros(grid.shape, "float32"), grid, overwrite=True)
    assert read_raster(p, grid).max() == 0
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_write_raster_takes_bool_float16_and_lists_losslessly(tmp_path, utm_raster):
    # a bool or float16 array and a plain list were bare TypeErrors / AttributeErrors from GDAL and numpy
    grid, _ = utm_raster
    mask = np.arange(grid.height * grid.width).reshape(grid.shape) % 3 == 0
    with rasterio.open(write_raster(tmp_path / "m.tif", mask, grid, nodata=255)) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        assert np.array_equal(src.read(1), mask.astype("uint8"))
    half = (np.arange(grid.height * grid.width).reshape(grid.shape) / 7).astype(np.float16)
    back = read_raster(write_raster(tmp_path / "h.tif", half, grid), grid)
    assert np.array_equal(back, half.astype(np.float32))
    listed = np.ones(grid.shape).tolist()
    assert read_raster(write_raster(tmp_path / "l.tif", listed, grid), grid).min() == 1.0


@pytest.mark.parametrize(
    ("array", "kw", "error", "found"),
    [(np.ones((5, 5), np.uint8), {"nodata": -1}, DataError, "nodata value of the array's type uint8 \\(0..255\\), found -1"),
     (np.ones((5, 5), np.int16), {"nodata": float("nan")}, DataError, "type int16 .* found nan"),
     (np.ones((5, 5), np.uint8), {"nodata": True}, DataError, "type uint8 .* found True"),
     (np.ones((2, 5, 5)), {"band_names": ["a"]}, DataError, "one band name per band \\(2\\), found 1"),
     (np.ones((5, 5)), {"band_names": ["a"]}, DataError, "band_names only for a 3-D array, found a 2-D one"),
     (np.ones((5, 5), complex), {}, DataError, "real numbers .* found dtype complex128"),
     (np.ones((5, 5)), {"folder": "nope"}, OutputError, "expected an existing folder, found no folder")],
)  # fmt: skip
def test_write_raster_refuses_what_it_cannot_write_faithfully(tmp_path, array, kw, error, found):
    # nodata -1 on uint8 and NaN on int16 were written as they were (nodata no cell can hold); one name for two
    # bands was accepted; a complex array and a missing folder ended in GDAL errors
    grid = Grid(crs=TEST_CRS, transform=rasterio.Affine(100, 0, 0, 0, -100, 500), shape=(5, 5))
    folder = tmp_path / kw.pop("folder", "")
    with pytest.raises(error, match=found):
        write_raster(folder / "x.tif", array, grid, **kw)
    assert list(tmp_path.iterdir()) == []


def test_output_writer_is_all_or_nothing(tmp_path, utm_raster):
    grid, _ = utm_raster
    out = tmp_path / "out"
    with OutputWriter(out, names=["a.tif"]) as w:
        w.raster("a.tif", np.ones(grid.shape, "float32"), grid)
    before = (out / "a.tif").read_bytes()
    with pytest.raises(OutputExistsError):
        OutputWriter(out, names=["a.tif"])
    with pytest.raises(RuntimeError), OutputWriter(out, overwrite=True, names=["a.tif"]) as w:
        w.raster("a.tif", np.zeros(grid.shape, "float32"), grid)
        raise RuntimeError("stage failed")
    assert (out / "a.tif").read_bytes() == before
    # the QGIS style is committed with the raster; the hidden ledger lists what leopardgeo wrote
    assert sorted(p.name for p in out.iterdir()) == [".leopardgeo_files.json", "a.qml", "a.tif"]
