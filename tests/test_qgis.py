"""A run opens styled in headless QGIS (Debian's qgis / python3-qgis; skipped where it is not installed).

QGIS's Python bindings belong to the system Python, not to the project's virtual environment, so the check
runs ``tests/qgis_check.py`` with ``/usr/bin/python3`` in a subprocess (``QT_QPA_PLATFORM=offscreen``) and
reads what QGIS saw from its JSON output.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

import geopandas as gpd

from leopardgeo.io import GPKG_NAME, write_layers
from leopardgeo.io.styles import write_layer_styles

SYSTEM_PYTHON = Path("/usr/bin/python3")
CHECK = Path(__file__).with_name("qgis_check.py")


def _qgis_available() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    try:
        res = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], env=env, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


pytestmark = pytest.mark.skipif(not _qgis_available(), reason="QGIS (Debian python3-qgis) is not installed")


@pytest.fixture(scope="module")
def qgis_view(coarse_run, tmp_path_factory):
    """What headless QGIS sees in a copy of the coarse demo run (plus a territories layer) and in a GeoPackage 1.4."""
    _, out = coarse_run
    run_dir = tmp_path_factory.mktemp("qgis") / "run"
    shutil.copytree(out, run_dir)
    patches = gpd.read_file(run_dir / GPKG_NAME, layer="patches")
    cells = patches.geometry.iloc[0].representative_point()
    terr = gpd.GeoDataFrame(  # the territory stage's layer (its contract's columns), so "territories by sex" is checked
        {"territory_id": [1, 2], "sex": ["F", "M"], "area_ha": [8000.0, 25000.0], "patch_id": [1, 1]},
        geometry=[cells.buffer(5000), cells.buffer(9000)],
        crs=patches.crs,
    )
    write_layers(run_dir / GPKG_NAME, {"territories": terr})
    write_layer_styles(run_dir / GPKG_NAME, {"territories": "territories"})
    v14 = run_dir.parent / "v14.gpkg"  # control: the newest GDAL's GeoPackage version, which QGIS 3.22 warns about
    shutil.copy(run_dir / GPKG_NAME, v14)
    con = sqlite3.connect(v14)
    con.execute("PRAGMA user_version = 10400")
    con.close()
    png = run_dir.parent / "qgis_render.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    res = subprocess.run(
        [SYSTEM_PYTHON, CHECK, run_dir, png, v14], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout), res.stderr, run_dir, png, v14


def test_every_layer_is_valid_and_opens_with_its_stored_style(qgis_view):
    view, _, run_dir, _, _ = qgis_view
    con = sqlite3.connect(run_dir / GPKG_NAME)
    features = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")}
    con.close()
    vectors = view["vectors"]
    assert set(vectors) == features
    for name, v in vectors.items():
        assert v["valid"] and v["features"] > 0, name
        assert v["stored"] is not None, f"{name}: no default style stored"
        assert v["renderer"] == v["stored"], name  # QGIS applied the layer_styles default, not its own
        if v["renderer"] == "singleSymbol":
            assert v["colour"] == v["stored_colour"], name  # not QGIS's random default colour
    # corridors graded by score, territories by sex: not QGIS's default single symbol
    assert vectors["links"]["renderer"] == "graduatedSymbol"
    assert vectors["corridors"]["renderer"] == "graduatedSymbol"
    assert vectors["patches"]["renderer"] == "graduatedSymbol"
    assert vectors["territories"]["renderer"] == "categorizedSymbol"


def test_every_raster_opens_with_its_qml(qgis_view):
    view, _, run_dir, _, _ = qgis_view
    assert set(view["rasters"]) == {p.name for p in run_dir.glob("*.tif")}
    for name, r in view["rasters"].items():
        assert r["valid"], name
        assert r["stored"] in ("singlebandpseudocolor", "paletted"), name
        assert r["renderer"] == r["stored"], name  # the .qml beside it was loaded (QGIS's default is singlebandgray)
    assert view["rasters"]["patches.tif"]["renderer"] == "paletted"
    assert view["rasters"]["suitability.tif"]["renderer"] == "singlebandpseudocolor"


def test_geopackage_opens_without_the_version_warning(qgis_view):
    view, stderr, run_dir, _, v14 = qgis_view
    ours = str(run_dir / GPKG_NAME)
    warned = [line for line in stderr.splitlines() if "partially supported" in line]
    assert warned, "control failed: QGIS should warn about the GeoPackage 1.4 copy"  # the capture works...
    assert all(str(v14) in line for line in warned)  # ...and only the 1.4 copy is warned about
    assert not [m for m in view["open_messages"][ours] if "partially supported" in m]
    assert not [m["message"] for m in view["messages"] if "partially supported" in m["message"] and ours in m["message"]]


def test_rendered_map_is_not_blank(qgis_view):
    from matplotlib.image import imread

    view, _, _, png, _ = qgis_view
    assert view["render"]["width"] == 900 and view["render"]["height"] == 700
    assert view["render"]["distinct_colours"] > 50
    img = imread(png)
    assert img.shape[:2] == (700, 900)
    assert (img[..., :3] < 0.95).any(axis=-1).mean() > 0.3  # most of the map is drawn, not white background
