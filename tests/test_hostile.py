"""Hostile inputs: each one ends in a clear LeopardGeoError (class and key words checked) or an explicit warning,
never in a traceback, a hang or a silently wrong result; and no earlier output changes.

Everything runs on a small synthetic study area (48 x 48 cells of 500 m in UTM 52N: two habitat blobs either
side of a north-south border, a protected area on each, two candidate sites) built in a temporary folder.
One baseline run and report are made first; every hostile run that could write targets that same folder with
``--overwrite``, and the folder's bytes are compared with the baseline's afterwards.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner

import geopandas as gpd
import rasterio
import shapely
from affine import Affine

from leopardgeo.cli import cli
from leopardgeo.core.errors import (
    AlignmentError,
    ConfigError,
    DataError,
    MemoryLimitError,
    MultiBandWarning,
    NodataWarning,
    OutputError,
    OutputExistsError,
    ResistanceError,
)
from leopardgeo.core.grid import Grid
from leopardgeo.io import read_raster, read_vector, read_wdpa
from leopardgeo.runner.registry import load_config, load_config_string
from leopardgeo.testing import TEST_CRS, synthetic_raster

CELL = 500.0
N = 48
X0, Y1 = 500_000.0, 4_800_000.0
X1, Y0 = X0 + N * CELL, Y1 - N * CELL
XM = X0 + N * CELL / 2


def _suitability() -> np.ndarray:
    yy, xx = np.mgrid[0:N, 0:N]
    blob = lambda cx: 0.75 * np.exp(-(((xx - cx) ** 2 + (yy - 24) ** 2) / 60.0))  # noqa: E731
    return np.clip(0.2 + blob(12) + blob(36), 0, 1).astype("float32")


def _layers() -> dict[str, gpd.GeoDataFrame]:
    return {
        "study_area": gpd.GeoDataFrame({"name": ["study area"]}, geometry=[shapely.box(X0, Y0, X1, Y1)], crs=TEST_CRS),
        "countries": gpd.GeoDataFrame(
            {"iso3": ["RUS", "CHN"]}, geometry=[shapely.box(X0, Y0, XM, Y1), shapely.box(XM, Y0, X1, Y1)], crs=TEST_CRS
        ),
        "borders": gpd.GeoDataFrame({"name": ["border"]}, geometry=[shapely.LineString([(XM, Y0), (XM, Y1)])], crs=TEST_CRS),
        "protected_areas": gpd.GeoDataFrame(
            {"WDPAID": [1, 2], "NAME": ["West NP", "East NR"], "ISO3": ["RUS", "CHN"], "STATUS": ["Designated"] * 2,
             "MARINE": ["0", "0"]},
            geometry=[shapely.box(X0 + 4000, Y1 - 16000, X0 + 9000, Y1 - 9000),
                      shapely.box(X1 - 9000, Y1 - 16000, X1 - 4000, Y1 - 9000)],
            crs=TEST_CRS,
        ),
        "sites": gpd.GeoDataFrame(
            {"name": ["Site A", "Site B"]},
            geometry=[shapely.Point(X0 + 6000, Y1 - 20000).buffer(3000), shapely.Point(X1 - 6000, Y1 - 20000).buffer(3000)],
            crs=TEST_CRS,
        ),
    }


def _config(**sections: dict) -> dict:
    cfg = {
        "grid": {"template": "suit.tif"},
        "inputs": {
            "suitability": "suit.tif",
            **{k: {"path": "area.gpkg", "layer": k} for k in ("study_area", "countries", "borders", "protected_areas", "sites")},
        },
        "habitat": {"method": "raster"},
        "patches": {"min_area_ha": 2000.0},
        "territories": {"replicates": 2},
        "circuit": {"enabled": False},
        "barrier_mapper": {"enabled": False},
        "sites": {"simulate": False, "rank_stability_draws": 50, "capacity_replicates": 1, "source": "West NP"},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


@dataclasses.dataclass
class Area:
    dir: Path
    out: Path
    snapshot: dict[str, str]

    def config(self, name: str = "run.toml", **sections: dict) -> Path:
        path = self.dir / name
        path.write_text(tomli_w.dumps(_config(**sections)), encoding="utf-8")
        return path

    def run(self, *args: str) -> object:
        """``leopardgeo run CONFIG --out <baseline> --overwrite``: may write over the baseline if it succeeds."""
        return CliRunner().invoke(cli, ["run", *args, "--out", str(self.out), "--overwrite"])

    def untouched(self) -> None:
        assert _hashes(self.out) == self.snapshot, "an earlier output changed"


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _make_area(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    synthetic_raster(d / "suit.tif", _suitability(), cell_size_m=CELL, origin=(X0, Y1), nodata=-1.0)
    for name, gdf in _layers().items():
        gdf.to_file(d / "area.gpkg", layer=name)


@pytest.fixture(scope="module")
def area(tmp_path_factory) -> Area:
    d = tmp_path_factory.mktemp("hostile")
    _make_area(d / "data")
    a = Area(d / "data", d / "out", {})
    cfg = a.config()
    res = CliRunner().invoke(cli, ["run", str(cfg), "--out", str(a.out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["report", str(a.out), "--no-maps"])
    assert res.exit_code == 0, res.output
    a.snapshot = _hashes(a.out)
    return a


def _clean_failure(res: object, cls: type, *words: str) -> str:
    """The CLI failed with one line naming ``cls`` and every one of ``words``, and no traceback."""
    out = res.output  # type: ignore[attr-defined]
    assert res.exit_code == 1, out  # type: ignore[attr-defined]
    assert f"{cls.__name__}:" in out, out
    for w in words:
        assert w in out, f"{w!r} not in {out!r}"
    assert "Traceback" not in out
    return out


# ============================================================================ config files
def test_config_in_latin1(area):
    path = area.dir / "latin1.toml"
    path.write_bytes("[sites]\nsource = 'Лазовский'\n".encode("cp1251"))
    res = area.run(str(path))
    _clean_failure(res, ConfigError, "latin1.toml", "expected UTF-8", "Save it as UTF-8")
    area.untouched()


def test_config_that_is_binary(area):
    path = area.dir / "binary.toml"
    path.write_bytes(bytes(range(256)))
    _clean_failure(area.run(str(path)), ConfigError, "binary.toml", "binary data")
    area.untouched()


def test_config_with_byte_order_mark_loads(area):
    path = area.dir / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + tomli_w.dumps(_config()).encode())
    assert load_config(path).habitat.method == "raster"


def test_rsf_coefficients_not_utf8(area):
    table = area.dir / "coef.csv"
    table.write_bytes("covariate,coefficient\nélévation,1\n".encode("latin-1"))
    cfg = area.config("rsf.toml", habitat={"method": "rsf", "coefficients_file": "coef.csv"})
    _clean_failure(area.run(str(cfg)), DataError, "coef.csv", "expected UTF-8")
    area.untouched()


def test_toml_syntax_error_names_the_file(area):
    path = area.dir / "broken.toml"
    path.write_text("[grid\ncell_size_m = 1\n", encoding="utf-8")
    _clean_failure(area.run(str(path)), ConfigError, "broken.toml", "not valid TOML")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("territories", "replicates", 10**9),
        ("sites", "rank_stability_draws", 10**10),
        ("sites", "simulation_runs", 10**9),
        ("sites", "capacity_replicates", 10**7),
    ],
)
def test_absurd_counts_are_refused_at_once(area, section, key, value):
    cfg = area.config("count.toml", **{section: {key: value}})
    _clean_failure(area.run(str(cfg)), ConfigError, f"[{section}] {key}", "expected at most", f"{value:,}")
    area.untouched()


def test_unknown_band_key(area):
    cfg = area.config("band.toml", inputs={"bands": {"suitabilty": 2}})
    _clean_failure(area.run(str(cfg)), ConfigError, "[inputs] bands", "'suitabilty'", "suitability")


def test_include_pairs_naming_a_missing_patch(area):
    cfg = area.config("pairs.toml", circuit={"enabled": True, "include_pairs": [[1, 99]]}, territories={"enabled": False},
                      sites={"enabled": False})  # fmt: skip
    _clean_failure(area.run(str(cfg)), ConfigError, "[circuit] include_pairs", "99", "does not exist")
    area.untouched()


def test_links_command_with_a_broken_run_config(area, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(area.out, run)
    (run / "run_config.toml").write_text("[links\nrule = 1", encoding="utf-8")
    res = CliRunner().invoke(cli, ["links", str(run), "--overwrite"])
    _clean_failure(res, ConfigError, "run_config.toml", "not valid TOML")


# ============================================================================ memory and counts
def test_vrt_declaring_a_trillion_cells_as_template(area):
    vrt = area.dir / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="1000000" rasterYSize="1000000">'
        f"<SRS>{TEST_CRS}</SRS><GeoTransform>{X0}, 1, 0, {Y1}, 0, -1</GeoTransform>"
        '<VRTRasterBand dataType="Float32" band="1"/></VRTDataset>',
        encoding="utf-8",
    )
    cfg = area.config("huge.toml", grid={"template": "huge.vrt"})
    out = _clean_failure(area.run(str(cfg)), MemoryLimitError, "1,000,000 x 1,000,000", "expected to need about", "found")
    assert "cell_size_m" in out and "available memory" in out
    area.untouched()


def test_one_metre_cells_over_the_study_area(area):
    cfg = area.config("fine.toml", grid={"cell_size_m": 1.0})
    _clean_failure(area.run(str(cfg)), MemoryLimitError, "24,000 x 24,000", "Use coarser cells")
    area.untouched()


def test_one_metre_cells_over_100_km(area):
    cfg = area.config("fine100.toml", grid={"template": "", "crs": TEST_CRS, "bounds": [X0, Y1 - 100_000, X0 + 100_000, Y1],
                                            "cell_size_m": 1.0})  # fmt: skip
    _clean_failure(area.run(str(cfg)), MemoryLimitError, "100,000 x 100,000", "1.0e+10 cells")
    area.untouched()


def test_input_read_refused_when_memory_is_short(area, monkeypatch):
    import leopardgeo.core.memory

    monkeypatch.setattr(leopardgeo.core.memory, "available_bytes", lambda: 1000)
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    with pytest.raises(MemoryLimitError, match=r"reading raster 'suit\.tif'.*found 1\.0 kB of available memory \(cgroup limit"):
        read_raster(area.dir / "suit.tif", grid)


def test_cgroup_limit_lowers_available_memory(tmp_path):
    from leopardgeo.core.memory import _cgroup_bytes

    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("250000\n")
    assert _cgroup_bytes(tmp_path) == 750_000
    (tmp_path / "memory.max").write_text("max\n")
    assert _cgroup_bytes(tmp_path) is None


def test_fine_input_is_streamed_through_gdal_with_the_same_result(area, monkeypatch, tmp_path):
    import leopardgeo.io

    fine = np.kron(_suitability(), np.ones((8, 8), dtype="float32"))  # 62.5 m cells over the 500 m grid
    _, path = synthetic_raster(tmp_path / "fine.tif", fine, cell_size_m=CELL / 8, origin=(X0, Y1))
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    whole = read_raster(path, grid, resampling="average")
    monkeypatch.setattr(leopardgeo.io, "_STREAM_BYTES", 0)
    streamed = read_raster(path, grid, resampling="average")
    np.testing.assert_allclose(streamed, _suitability(), atol=1e-6)  # the exact block mean, independently known
    np.testing.assert_allclose(whole, streamed, atol=1e-6)


def test_too_many_circuit_pairs_are_refused_before_any_solve(area):
    from leopardgeo.runner.pipeline import _check_circuit_patches

    labels = np.zeros((60, 60), dtype="int32")
    labels.flat[::7] = np.arange(1, labels.flat[::7].size + 1)  # 515 one-cell patches: 132,355 pairs
    cfg = load_config(area.config("circ.toml", circuit={"enabled": True}))
    with pytest.raises(DataError, match=r"at most 100,000 pairwise solves, found 132,355 \(515 patches.*pairs = 'links'"):
        _check_circuit_patches(cfg, labels)


def test_one_cell_grid_circuit_needs_two_patches(area):
    from leopardgeo.runner.pipeline import _check_circuit_patches

    cfg = load_config(area.config("circ.toml", circuit={"enabled": True}))
    with pytest.raises(DataError, match=r"at least two habitat patches.*found 1.*\[circuit\] enabled = false"):
        _check_circuit_patches(cfg, np.ones((1, 1), dtype="int32"))


# ============================================================================ paths that hang or loop
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_named_pipe_as_raster_is_refused_not_opened(area, tmp_path):
    fifo = tmp_path / "suit.tif"
    os.mkfifo(fifo)
    cfg = area.config("fifo.toml", inputs={"suitability": str(fifo)})
    _clean_failure(area.run(str(cfg)), DataError, "named pipe", "expected a regular file")
    area.untouched()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_named_pipe_as_vector_is_refused(tmp_path):
    fifo = tmp_path / "areas.gpkg"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="named pipe"):
        read_vector(fifo, what="countries")


def test_symlink_loop_as_input(area, tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    a.symlink_to(b)
    b.symlink_to(a)
    cfg = area.config("loop.toml", inputs={"suitability": str(a)})
    _clean_failure(area.run(str(cfg)), DataError, "symbolic link", "Point the path at the real file")
    area.untouched()


def test_folder_given_as_raster(area, tmp_path):
    cfg = area.config("dir.toml", inputs={"suitability": str(tmp_path)})
    _clean_failure(area.run(str(cfg)), DataError, "is a folder", "expected a file")


# ============================================================================ damaged or odd rasters
def test_truncated_geotiff(area):
    raw = (area.dir / "suit.tif").read_bytes()
    (area.dir / "cut.tif").write_bytes(raw[: len(raw) * 2 // 3])
    cfg = area.config("cut.toml", inputs={"suitability": "cut.tif"})
    _clean_failure(area.run(str(cfg)), DataError, "cut.tif", "truncated or damaged")
    area.untouched()


def test_geotiff_with_corrupt_tiles(area, tmp_path):
    path = tmp_path / "tiled.tif"
    with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=1, dtype="float32", crs=TEST_CRS,
                       transform=Affine(CELL, 0, X0, 0, -CELL, Y1), tiled=True, blockxsize=16, blockysize=16,
                       compress="deflate") as dst:  # fmt: skip
        dst.write(_suitability(), 1)
    raw = bytearray(path.read_bytes())
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    raw[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    with pytest.raises(DataError, match=r"reading its cells failed.*truncated or damaged.*gdalinfo -checksum"):
        read_raster(path, grid)


def test_suitability_covering_half_the_study_area_warns_and_unreachable_sites_are_not_ranked(area, tmp_path):
    from leopardgeo.runner.pipeline import run

    part = _suitability().copy()
    part[:, 30:] = -1.0  # nodata east of column 30: Site B is cut off from the source (West NP)
    synthetic_raster(area.dir / "part.tif", part, cell_size_m=CELL, origin=(X0, Y1), nodata=-1.0)
    cfg = load_config(area.config("part.toml", inputs={"suitability": "part.tif"}, territories={"enabled": False}))
    with pytest.warns(NodataWarning, match=r"suitability: 864 of 2,304 cells of the study area \(37\.5 %\) have no data"):
        result = run(cfg.replace(output=dataclasses.replace(cfg.output, dir="")), out_dir=None)
    table = result.sites.table.set_index("name")
    assert table.loc["Site A", "rank"] == 1
    assert np.isnan(table.loc["Site B", "rank"]) and np.isnan(table.loc["Site B", "score"])
    assert not np.isfinite(table.loc["Site B", "cwd_to_source"])


def test_three_band_raster_warns_and_band_key_selects(area):
    s = _suitability()
    path = area.dir / "three.tif"
    with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=3, dtype="float32", crs=TEST_CRS,
                       transform=Affine(CELL, 0, X0, 0, -CELL, Y1)) as dst:  # fmt: skip
        dst.write(np.stack([s * 0, s, s * 0.5]))
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    with pytest.warns(MultiBandWarning, match="has 3 bands; reading band 1"):
        read_raster(path, grid, what="suitability")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_raster(path, grid, band=2), s)
    cfg = load_config(area.config("three.toml", inputs={"suitability": "three.tif", "bands": {"suitability": 2}}))
    assert cfg.inputs.bands == {"suitability": 2}
    with pytest.raises(DataError, match=r"expected band 1\.\.3, found band 4"):
        read_raster(path, grid, band=4)


def test_infinite_suitability_is_blamed_on_suitability(area):
    s = _suitability()
    s[3, 3], s[4, 4] = np.inf, -np.inf
    synthetic_raster(area.dir / "inf.tif", s, cell_size_m=CELL, origin=(X0, Y1), nodata=-1.0)
    cfg = area.config("inf.toml", inputs={"suitability": "inf.tif"})
    out = _clean_failure(area.run(str(cfg)), DataError, "suitability", "2 infinite cells", "nodata")
    assert "resistance" not in out.lower()
    area.untouched()


def test_undeclared_nodata_suggests_declaring_it(area):
    s = _suitability()
    s[:5] = -9999.0
    synthetic_raster(area.dir / "undeclared.tif", s, cell_size_m=CELL, origin=(X0, Y1))
    cfg = area.config("undeclared.toml", inputs={"suitability": "undeclared.tif"})
    _clean_failure(area.run(str(cfg)), DataError, "-9999", "undeclared nodata", "gdal_edit.py -a_nodata")
    area.untouched()


def test_resistance_overflowing_float32(area):
    r = np.full((N, N), 3e38, dtype="float32")
    synthetic_raster(area.dir / "huge_r.tif", r, cell_size_m=CELL, origin=(X0, Y1))
    cfg = area.config("huge_r.toml", inputs={"resistance": "huge_r.tif"}, resistance={"method": "raster"})
    _clean_failure(area.run(str(cfg)), ResistanceError, "3e+38", "overflows 32-bit floats", "Rescale")
    area.untouched()


def _south_up(path: Path, values: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=1, dtype="float32", crs=TEST_CRS,
                       transform=Affine(CELL, 0, X0, 0, CELL, Y0)) as dst:  # fmt: skip
        dst.write(values[::-1], 1)
    return path


def test_south_up_input_is_read_exactly(area, tmp_path):
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    path = _south_up(tmp_path / "south_up.tif", _suitability())
    np.testing.assert_array_equal(read_raster(path, grid), _suitability())


def test_south_up_template_is_refused_with_a_fix(area):
    _south_up(area.dir / "south_up.tif", _suitability())
    cfg = area.config("south.toml", grid={"template": "south_up.tif"})
    _clean_failure(area.run(str(cfg)), AlignmentError, "south-up", "gdalwarp")
    area.untouched()


# ============================================================================ vectors
def _write_layer(area: Area, name: str, gdf: gpd.GeoDataFrame) -> dict:
    path = area.dir / f"{name}.gpkg"
    gdf.to_file(path, layer=name)
    return {"path": path.name, "layer": name}


def test_points_as_countries(area):
    pts = gpd.GeoDataFrame({"iso3": ["RUS", "CHN"]}, geometry=[shapely.Point(X0 + 5000, Y1 - 5000),
                                                                shapely.Point(X1 - 5000, Y1 - 5000)], crs=TEST_CRS)  # fmt: skip
    cfg = area.config("pc.toml", inputs={"countries": _write_layer(area, "pt_countries", pts)})
    _clean_failure(area.run(str(cfg)), DataError, "countries: expected polygons, found 2 Point")
    area.untouched()


def test_lines_mixed_into_countries(area):
    mixed = gpd.GeoDataFrame(
        {"iso3": ["RUS", "CHN", "RUS"]},
        geometry=[shapely.box(X0, Y0, XM, Y1), shapely.box(XM, Y0, X1, Y1), shapely.LineString([(XM, Y0), (XM, Y1)])],
        crs=TEST_CRS,
    )
    cfg = area.config("mixed.toml", inputs={"countries": _write_layer(area, "mixed_countries", mixed)})
    _clean_failure(area.run(str(cfg)), DataError, "countries: expected polygons, found 1 LineString")
    area.untouched()


def test_points_as_study_area(area):
    pts = gpd.GeoDataFrame({"name": ["here"]}, geometry=[shapely.Point(X0 + 5000, Y1 - 5000)], crs=TEST_CRS)
    cfg = area.config("ps.toml", inputs={"study_area": _write_layer(area, "pt_study", pts)})
    out = _clean_failure(area.run(str(cfg)), DataError, "study_area: expected polygons")
    assert "site" not in out.lower()
    area.untouched()


def test_points_as_protected_areas(area):
    pts = _layers()["protected_areas"].assign(geometry=lambda g: g.geometry.centroid)
    cfg = area.config("pp.toml", inputs={"protected_areas": _write_layer(area, "pt_pas", pts)})
    _clean_failure(area.run(str(cfg)), DataError, "protected_areas: expected polygons", "point layer")
    area.untouched()


def test_null_country_code(area):
    countries = _layers()["countries"].assign(iso3=["RUS", None])
    cfg = area.config("null.toml", inputs={"countries": _write_layer(area, "null_countries", countries)})
    _clean_failure(area.run(str(cfg)), DataError, "countries", "empty or NULL", "Fill in the codes")
    area.untouched()


def test_wdpa_filters_normalise_and_log_what_they_remove(area, caplog):
    pas = gpd.GeoDataFrame(
        {"WDPAID": [1, 2, 3, 4], "NAME": ["A", "B", "C", "D"], "ISO3": ["RUS", "rus ", "643", "CHN;RUS"],
         "STATUS": ["designated ", "Designated", "Designated", "Proposed"], "MARINE": [0, 2, 0, 1]},
        geometry=[shapely.box(X0 + i * 5000, Y1 - 5000, X0 + i * 5000 + 4000, Y1 - 1000) for i in range(4)],
        crs=TEST_CRS,
    )  # fmt: skip
    path = area.dir / "wdpa.gpkg"
    pas.to_file(path, layer="wdpa")
    with caplog.at_level(logging.INFO, logger="leopardgeo.io"):
        kept = read_wdpa(path, "wdpa", iso3=["RUS"])
    assert kept["NAME"].tolist() == ["A"]  # "designated " matches Designated; B is marine, C has no ISO3 match, D proposed
    text = caplog.text
    assert "MARINE != 2 (not purely marine) removed 1" in text
    assert "ISO3 in ['RUS'] removed 1" in text and "'643'" in text
    assert "STATUS in" in text and "removed 1" in text and "'Proposed'" in text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # pyogrio's GDAL error handler
def test_damaged_geopackage_as_input(area):
    (area.dir / "damaged.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x13" * 3000)
    cfg = area.config("dmg.toml", inputs={"countries": {"path": "damaged.gpkg"}})
    _clean_failure(area.run(str(cfg)), DataError, "damaged.gpkg", "cannot be read by OGR")
    area.untouched()


# ============================================================================ output folders
def test_output_folder_that_cannot_be_created(area):
    cfg = area.config()
    res = CliRunner().invoke(cli, ["run", str(cfg), "--out", "/proc/leopardgeo_out"])
    _clean_failure(res, OutputError, "/proc/leopardgeo_out", "expected a writable output folder")


def test_out_below_a_regular_file(area, tmp_path):
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(cli, ["run", str(area.config()), "--out", str(tmp_path / "file" / "out")])
    _clean_failure(res, OutputError, "expected a writable output folder", "a file, not a folder")


def test_output_name_too_long(area, tmp_path):
    res = CliRunner().invoke(cli, ["run", str(area.config()), "--out", str(tmp_path / ("x" * 300))])
    _clean_failure(res, OutputError, "too long")


def test_output_path_too_deep_for_the_geopackage_is_refused_before_work(area, tmp_path):
    deep = tmp_path.joinpath(*["d" * 100] * 5)
    res = CliRunner().invoke(cli, ["run", str(area.config()), "--out", str(deep)])
    _clean_failure(res, OutputError, "expected a path of at most 448 bytes", "Choose a shorter --out")


def test_init_into_a_missing_folder(tmp_path):
    res = CliRunner().invoke(cli, ["init", str(tmp_path / "no" / "such" / "area.toml")])
    _clean_failure(res, OutputError, "expected an existing folder", "Create it first")


def test_disk_full_while_writing_a_raster(area, monkeypatch):
    import leopardgeo.io
    from leopardgeo.io import OutputWriter

    def full(*_a, **_k):
        raise rasterio.errors.RasterioIOError("TIFFAppendToStrip: Seek error at row 0")

    monkeypatch.setattr(leopardgeo.io, "write_raster", full)
    grid = Grid.from_bounds((X0, Y0, X1, Y1), cell_size_m=CELL, crs=TEST_CRS)
    with pytest.raises(OutputError, match=r"Seek error.*disk is probably full"), OutputWriter(area.out, overwrite=True) as w:
        w.raster("suitability.tif", _suitability(), grid)
    area.untouched()


def test_read_only_output_folder(area, tmp_path, monkeypatch):
    def refuse(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(Path, "mkdir", refuse)  # root ignores permission bits: simulate the refusal
    res = CliRunner().invoke(cli, ["run", str(area.config()), "--out", str(tmp_path / "ro")])
    _clean_failure(res, OutputError, "Permission denied", "not writable")


def test_os_error_fix_names_the_cause():
    from leopardgeo.io import output_errors

    with pytest.raises(OutputError, match=r"No space left.*disk is full") as info, output_errors("/x/out.tif"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC


# ============================================================================ report on damaged run folders
def _copy_run(area: Area, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(area.out, run)
    return run


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # pyogrio's GDAL error handler
def test_report_on_damaged_geopackage(area, tmp_path):
    run = _copy_run(area, tmp_path)
    (run / "leopardgeo.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100 + b"garbage" * 500)
    res = CliRunner().invoke(cli, ["report", str(run), "--no-maps", "--overwrite"])
    _clean_failure(res, DataError, "leopardgeo.gpkg", "cannot be read", "re-run `leopardgeo run`")


def test_report_on_garbage_capacity_csv(area, tmp_path):
    run = _copy_run(area, tmp_path)
    (run / "capacity.csv").write_text("what,ever\n1,2\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["report", str(run), "--no-maps", "--overwrite"])
    _clean_failure(res, DataError, "capacity.csv", "expected the capacity table", "missing")


def test_report_on_binary_manifest(area, tmp_path):
    run = _copy_run(area, tmp_path)
    (run / "manifest.json").write_bytes(bytes(range(256)) * 4)
    res = CliRunner().invoke(cli, ["report", str(run), "--no-maps", "--overwrite"])
    _clean_failure(res, DataError, "manifest.json", "expected", "JSON")


def test_report_refusing_to_overwrite_names_the_real_option(area):
    res = CliRunner().invoke(cli, ["report", str(area.out), "--no-maps"])
    out = _clean_failure(res, OutputExistsError, "already holds a report", "--overwrite")
    assert "--out" not in out
    area.untouched()


def test_report_no_maps_overwrite_removes_old_maps(area, tmp_path):
    run = _copy_run(area, tmp_path)
    (run / "maps").mkdir(exist_ok=True)
    (run / "maps" / "patches.png").write_bytes(b"old map")
    res = CliRunner().invoke(cli, ["report", str(run), "--no-maps", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert not list((run / "maps").glob("*.png"))


# ============================================================================ shared outputs and messages
def test_no_absolute_machine_path_in_shared_outputs(area):
    home = str(area.dir.parent)
    names = sorted(p.name for p in area.out.iterdir() if p.suffix in (".html", ".md", ".json", ".toml", ".csv", ".qml"))
    assert {"report.html", "report.md", "summary.json", "run_config.toml", "manifest.json"} <= set(names)
    for name in names:
        text = (area.out / name).read_text(encoding="utf-8")
        assert home not in text, name
        assert os.path.dirname(os.__file__) not in text, name  # no interpreter or library path
    cfg = load_config(area.out / "run_config.toml")
    assert Path(cfg.base_dir) == area.dir.resolve()  # relative base_dir still finds the inputs


def test_init_template_has_no_absolute_path(tmp_path):
    res = CliRunner().invoke(cli, ["init", str(tmp_path / "area.toml")])
    assert res.exit_code == 0
    text = (tmp_path / "area.toml").read_text(encoding="utf-8")
    base = next(line for line in text.splitlines() if line.startswith("base_dir"))
    assert not base.split("=", 1)[1].strip().strip('"').startswith("/")
    assert load_config_string(text, base_dir=tmp_path).inputs.landmask == "landmask.tif"


def test_capacity_by_country_gives_iso3_codes(area):
    from leopardgeo.runner.pipeline import run

    cfg = area.config("cap.toml", territories={"replicates": 1}, sites={"enabled": False}, links={"enabled": False},
                      output={"dir": ""})  # fmt: skip
    result = run(load_config(cfg), out_dir=None)
    cap = result.territories.capacity("country")
    assert set(cap["country"]) <= {"RUS", "CHN", ""}


def test_isolated_patch_warning_names_the_stage_and_the_fix(caplog):
    from leopardgeo.stages.graph import build_graph
    from leopardgeo.stages.patches import patch_polygons

    grid = Grid.from_bounds((0, 0, 1000, 500), cell_size_m=100, crs=TEST_CRS)
    labels = np.zeros(grid.shape, dtype="int32")
    labels[1, 1], labels[1, 8] = 1, 2
    res = np.ones(grid.shape)
    res[:, 5] = np.nan  # a wall of no data
    with caplog.at_level(logging.WARNING, logger="leopardgeo.stages.graph"):
        build_graph(res, labels, patch_polygons(labels, grid), grid)
    assert "least-cost links: no link found between any of 2 patches" in caplog.text
    assert "[links] max_cwd" in caplog.text


_ARENAS_SCRIPT = """
import ctypes, os, sys, tempfile, threading
import numpy as np
if sys.argv[1] == "one":
    from leopardgeo.core.memory import one_malloc_arena
    assert one_malloc_arena()
kept = []
t = threading.Thread(target=lambda: kept.append(np.ones(200_000)))  # 1.6 MB from the thread's arena
t.start()
t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
path = os.path.join(tempfile.mkdtemp(), "malloc.xml")
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(fp))
libc.fclose(ctypes.c_void_p(fp))
print(open(path).read().count("<heap nr="))
"""


def test_one_malloc_arena_keeps_threads_on_the_main_heap():
    """glibc's own report (malloc_info) of a fresh process: a thread gets a second arena, unless one_malloc_arena ran."""
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    one_thread = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # no BLAS pool
    one_thread.pop("MALLOC_ARENA_MAX", None)  # glibc's default in "default", whatever this process was started with
    count = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", _ARENAS_SCRIPT, mode], capture_output=True, text=True, check=True, env=one_thread
            ).stdout
        )
        for mode in ("default", "one")
    }
    assert count == {"default": 2, "one": 1}


_HEAP_SCRIPT = """
import resource, sys
import numpy as np
from leopardgeo.core.memory import keep_freed_heap, small_pages
if sys.argv[1] == "keep":
    assert keep_freed_heap()
def one_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with small_pages():  # base pages: a fault per 4 kB touched
        arrays = [np.ones(2_000_000) for _ in range(3)]  # 16 MB each, 48 MB together
    del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(*(one_round() for _ in range(3)))
"""


def test_keep_freed_heap_reuses_the_memory_of_freed_arrays():
    """Page faults of a fresh process that allocates three 16 MB arrays and frees them, three times over.

    With glibc's defaults each round faults its pages in afresh (the first from mmap, then the heap's top is given
    back); with keep_freed_heap the rounds after the first reuse the heap.
    """
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        thp = ""
    if "[always]" in thp:  # the kernel would back the arrays with 2 MB pages whatever numpy asks: a few faults each
        pytest.skip("transparent huge pages always on: page faults do not count the memory touched")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults in "default"
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    faults = {
        mode: [
            int(v)
            for v in subprocess.run(
                [sys.executable, "-c", _HEAP_SCRIPT, mode], capture_output=True, text=True, check=True, env=env
            ).stdout.split()
        ]
        for mode in ("default", "keep")
    }
    first = faults["default"][0]
    assert first > 10_000  # 48 MB on 4 kB pages: ~11,700 faults
    assert max(faults["default"][1:]) > first // 2  # given back and faulted in again
    assert faults["keep"][0] > 10_000 and max(faults["keep"][1:]) < first // 20  # reused


def test_small_pages_switches_numpy_huge_pages_off_and_restores_them():
    """``small_pages`` turns numpy's huge-page advice off inside (nested too) and puts back what was there."""
    from leopardgeo.core.memory import _hugepage_switch, small_pages

    switch = _hugepage_switch()
    if switch is None:
        pytest.skip("numpy has no huge-page switch here")

    def current() -> bool:
        was = bool(switch(True))
        switch(was)
        return was

    before = current()
    try:
        for start in (True, False):
            switch(start)
            with small_pages():
                assert current() is False
                with small_pages():
                    assert current() is False
                assert current() is False  # the inner block does not restore early
                x = np.ones(1_000_000)
            assert current() is start
            assert float(x.sum()) == 1_000_000.0
        switch(True)
        with pytest.raises(ValueError), small_pages():
            raise ValueError("an error inside")
        assert current() is True  # restored on errors as well
    finally:
        switch(before)
