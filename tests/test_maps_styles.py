"""QGIS styles (QML in the GeoPackage and beside the GeoTIFFs) and static / interactive maps of a run folder."""

from __future__ import annotations

import sqlite3
import sys
import types
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import Rectangle
from matplotlib.text import Text

import geopandas as gpd
import pyogrio
import shapely

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.io import styles, write_layers
from leopardgeo.report import maps
from leopardgeo.testing import TEST_CRS, synthetic_raster

X0, Y0 = 500_000.0, 4_800_000.0  # top-left corner of the synthetic grid
CELL = 1_000.0
SHAPE = (20, 24)  # 20 km x 24 km
LAYERS = [
    "study_area",
    "borders",
    "protected_areas",
    "patches",
    "graph_nodes",
    "links",
    "corridors",
    "pinch_points",
    "barriers",
    "border_crossings",
    "border_permeability",
    "territories",
    "sites",
]


def _xy(col: float, row: float) -> tuple[float, float]:
    return X0 + col * CELL, Y0 - row * CELL


def _box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    (x0, y0), (x1, y1) = _xy(c0, r1), _xy(c1, r0)
    return shapely.box(x0, y0, x1, y1)


def _gdf(data: dict, geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(data, geometry=geoms, crs=TEST_CRS)


def _line(*pts: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([_xy(c, r) for c, r in pts])


def _layers() -> dict[str, gpd.GeoDataFrame]:
    border = _line((12, 0), (12, 20))
    return {
        "study_area": _gdf({"name": ["test"]}, [_box(0, 0, 24, 20)]),
        "borders": _gdf({"pair": ["CN-RU"], "name": ["China-Russia"]}, [shapely.MultiLineString([border])]),
        "protected_areas": _gdf({"NAME": ["PA"], "area_ha": [1600.0]}, [shapely.MultiPolygon([_box(1, 1, 5, 5)])]),
        "patches": _gdf(
            {"patch_id": [1, 2, 3], "name": ["a", "b", "c"], "mean_quality": [0.6, 0.8, 0.9], "area_ha": [1600.0, 900.0, 2500.0]},
            [
                shapely.MultiPolygon([_box(1, 1, 5, 5)]),
                shapely.MultiPolygon([_box(17, 2, 20, 5)]),
                shapely.MultiPolygon([_box(15, 12, 20, 17)]),
            ],
        ),
        "graph_nodes": _gdf(
            {"patch_id": [1, 2, 3], "degree": [2, 1, 1]},
            [shapely.Point(_xy(3, 3)), shapely.Point(_xy(18.5, 3.5)), shapely.Point(_xy(17.5, 14.5))],
        ),
        "links": _gdf(
            {
                "patch_a": [1, 1, 2],
                "patch_b": [2, 3, 3],
                "cwd": [12_000.0, 30_000.0, 9_000.0],
                "score": [72.5, 18.0, 90.0],
                "crosses_border": [True, True, False],
            },
            [_line((5, 3), (17, 3)), _line((4, 5), (15, 14)), _line((18, 5), (18, 12))],
        ),
        "corridors": _gdf(
            {"patch_a": [1, 1, 2], "patch_b": [2, 3, 3], "cwd": [12_000.0, 30_000.0, 9_000.0]},
            [
                shapely.MultiPolygon([_box(5, 2, 17, 4)]),
                shapely.MultiPolygon([_box(5, 5, 15, 13)]),
                shapely.MultiPolygon([_box(17, 5, 19, 12)]),
            ],
        ),
        "pinch_points": _gdf(
            {"patch_a": [1, 1, 2], "patch_b": [2, 3, 3], "pinch_current": [0.4, 0.9, 0.2]},
            [shapely.Point(_xy(11, 3)), shapely.Point(_xy(9, 9)), shapely.Point(_xy(18, 8))],
        ),
        "barriers": _gdf(
            {"rank": [1, 2], "score": [3.5, 1.2], "patch_a": [1, 1], "patch_b": [2, 3]},
            [shapely.Point(_xy(10, 3)), shapely.Point(_xy(8, 8))],
        ),
        "border_crossings": _gdf(
            {
                "patch_a": [1, 1],
                "patch_b": [2, 3],
                "cwd": [12_000.0, 30_000.0],
                "border": ["CN-RU", "CN-RU"],
                "current": [0.5, 0.3],
            },
            [shapely.Point(_xy(12, 3)), shapely.Point(_xy(12, 11))],
        ),
        "border_permeability": _gdf(
            {
                "border": ["CN-RU"] * 4,
                "segment": [0, 1, 2, 3],
                "length_m": [5_000.0] * 4,
                "current_sum": [2.0, 0.5, 1.5, 0.1],
                "n_corridors": [1, 0, 1, 0],
            },
            [_line((12, 0), (12, 5)), _line((12, 5), (12, 10)), _line((12, 10), (12, 15)), _line((12, 15), (12, 20))],
        ),
        "territories": _gdf(
            {"sex": ["F", "M", "F"], "area_ha": [900.0, 2500.0, 400.0], "mean_quality": [0.7, 0.8, 0.9], "patch": [1, 3, 2]},
            [_box(1, 1, 4, 4), _box(15, 12, 20, 17), _box(17, 2, 19, 4)],
        ),
        "sites": _gdf(
            {"name": ["North", "South"], "score": [80.0, 55.0], "rank": [1, 2]}, [_box(14, 11, 21, 18), _box(0, 0, 6, 6)]
        ),
    }


def _rasters(out) -> None:
    rng = np.random.default_rng(42)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    suit = (rows * SHAPE[1] + cols) / (SHAPE[0] * SHAPE[1] - 1)
    suit = suit.astype("float32")
    suit[0, 0] = np.nan
    patches = np.zeros(SHAPE, "int32")
    patches[1:5, 1:5], patches[2:5, 17:20], patches[12:17, 15:20] = 1, 2, 3
    terr = np.zeros(SHAPE, "uint8")
    terr[1:4, 1:4], terr[12:17, 15:20], terr[13:15, 16:18] = 1, 2, 3
    corridors = np.full(SHAPE, np.nan, "float32")
    corridors[2:14, 5:19] = rng.uniform(0, 5_000, (12, 14))
    kw = {"cell_size_m": CELL, "origin": (X0, Y0)}
    synthetic_raster(out / "suitability.tif", suit, nodata=np.nan, **kw)
    synthetic_raster(out / "resistance.tif", 10 ** (3 * (1 - suit)), nodata=np.nan, **kw)
    synthetic_raster(out / "cwd.tif", rng.uniform(0, 50_000, SHAPE), nodata=np.nan, **kw)
    synthetic_raster(out / "corridors.tif", corridors, nodata=np.nan, **kw)
    synthetic_raster(out / "current.tif", rng.lognormal(0, 2, SHAPE), nodata=np.nan, **kw)
    synthetic_raster(
        out / "pinchpoints.tif", np.where(np.isfinite(corridors), rng.uniform(0, 1, SHAPE), np.nan), nodata=np.nan, **kw
    )
    synthetic_raster(out / "barriers.tif", rng.uniform(0, 4, SHAPE), nodata=np.nan, **kw)
    synthetic_raster(out / "omniscape_current.tif", rng.lognormal(0, 1, SHAPE), nodata=np.nan, **kw)
    synthetic_raster(out / "omniscape_normalized.tif", rng.lognormal(0, 0.5, SHAPE), nodata=np.nan, **kw)
    synthetic_raster(out / "patches.tif", patches, nodata=0, dtype="int32", **kw)
    synthetic_raster(out / "territories.tif", terr, nodata=None, dtype="uint8", **kw)


@pytest.fixture
def run_dir(tmp_path):
    """A tiny run folder: every GeoPackage layer (GeoPackage 1.2, as the pipeline writes) and every raster."""
    out = tmp_path / "run"
    out.mkdir()
    write_layers(out / "leopardgeo.gpkg", _layers())
    _rasters(out)
    return out


def _version(gpkg) -> tuple[int, int]:
    con = sqlite3.connect(gpkg)
    try:
        return con.execute("PRAGMA application_id").fetchone()[0], con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def _style_rows(gpkg) -> pd.DataFrame:
    con = sqlite3.connect(gpkg)
    try:
        return pd.read_sql("SELECT * FROM layer_styles ORDER BY id", con)
    finally:
        con.close()


# ---------------------------------------------------------------------- QML per layer
@pytest.mark.parametrize(
    ("layer", "data", "geom", "renderer", "attr"),
    [
        ("links", {"score": [10.0, 50.0, 90.0], "cwd": [1.0, 2.0, 3.0]}, "LineString", "graduatedSymbol", "score"),
        ("links", {"cwd": [1.0, 2.0, 3.0, 4.0]}, "LineString", "graduatedSymbol", "cwd"),
        ("links", {"patch_a": [1]}, "LineString", "singleSymbol", None),
        ("links", {"score": [40.0], "cwd": [1.0]}, "LineString", "graduatedSymbol", "score"),
        ("territories", {"sex": ["F", "M"]}, "MultiPolygon", "categorizedSymbol", "sex"),
        ("patches", {"mean_quality": [0.5, 0.7, 0.9]}, "MultiPolygon", "graduatedSymbol", "mean_quality"),
        ("patches", {"patch_id": [1]}, "MultiPolygon", "singleSymbol", None),
        ("corridors", {"cwd": [1.0, 5.0, 9.0]}, "MultiPolygon", "graduatedSymbol", "cwd"),
        ("barriers", {"score": [1.0, 2.0, 3.0]}, "Point", "graduatedSymbol", "score"),
        ("pinch_points", {"pinch_current": [0.1, 0.5]}, "Point", "graduatedSymbol", "pinch_current"),
        ("border_crossings", {"current": [0.1, 0.5]}, "Point", "graduatedSymbol", "current"),
        ("border_permeability", {"current_sum": [0.0, 1.0, 4.0]}, "LineString", "graduatedSymbol", "current_sum"),
        ("borders", {"name": ["x"]}, "MultiLineString", "singleSymbol", None),
        ("study_area", {"name": ["x"]}, "Polygon", "singleSymbol", None),
        ("protected_areas", {"NAME": ["x"]}, "MultiPolygon", "singleSymbol", None),
        ("graph_nodes", {"degree": [1]}, "Point", "singleSymbol", None),
        ("sites", {"name": ["x"], "score": [1.0], "rank": [1]}, "MultiPolygon", "singleSymbol", None),
        ("something_new", {"v": [1]}, "Point", "singleSymbol", None),
    ],
)
def test_layer_qml_parses_with_expected_renderer(layer, data, geom, renderer, attr):
    qml = styles.layer_qml(layer, pd.DataFrame(data), geom)
    assert qml.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(qml)
    assert root.tag == "qgis" and root.get("version").startswith("3.22.")
    r = root.find("renderer-v2")
    assert r.get("type") == renderer
    assert r.get("attr") == attr
    kind = styles._geometry_kind(geom)
    assert root.findtext("layerGeometryType") == {"point": "0", "line": "1", "polygon": "2"}[kind]
    symbols = list(r.iter("symbol"))
    assert symbols and all(s.get("type") == {"point": "marker", "line": "line", "polygon": "fill"}[kind] for s in symbols)
    for layer_el in r.iter("layer"):  # every symbol layer carries its properties both ways (as QGIS 3.22 writes)
        assert layer_el.find("Option").get("type") == "Map" and layer_el.findall("prop")


def test_layer_qml_details():
    links = pd.DataFrame({"score": [10.0, 50.0, 90.0], "crosses_border": [True, False, True]})
    root = ET.fromstring(styles.layer_qml("links", links, "LineString"))
    ranges = root.findall("renderer-v2/ranges/range")
    assert [float(r.get("lower")) for r in ranges] == [0, 20, 40, 60, 80]
    assert root.find("renderer-v2/source-symbol/symbol").get("name") == "0"
    widths = [float(p.get("v")) for p in root.findall("renderer-v2/symbols/symbol/layer[last()]/prop[@k='line_width']")]
    assert widths == sorted(widths) and widths[0] < widths[-1]  # higher score = wider
    # the cross-border halo: a dashed orange layer enabled only where "crosses_border" is true
    exprs = [o.get("value") for o in root.iter("Option") if o.get("name") == "expression"]
    assert exprs and set(exprs) == {'"crosses_border"'}
    # the alternative rule-based style
    alt = styles._extra_styles("links", "line", links)
    rule_root = ET.fromstring(alt[styles.CROSS_BORDER_STYLE_NAME])
    assert rule_root.find("renderer-v2").get("type") == "RuleRenderer"
    assert rule_root.find("renderer-v2/rules/rule").get("filter") == '"crosses_border" = true'
    # territories: F / M semi-transparent fills
    terr = ET.fromstring(styles.layer_qml("territories", pd.DataFrame({"sex": ["F"]}), "polygon"))
    assert [(c.get("value"), c.get("label")) for c in terr.iter("category")] == [("F", "female"), ("M", "male")]
    fills = [p.get("v") for p in terr.iter("prop") if p.get("k") == "color"]
    assert all(0 < int(f.split(",")[3]) < 255 for f in fills)
    # borders dashed dark red; border crossings stars; sites labelled by name
    borders = ET.fromstring(styles.layer_qml("borders", None, "MultiLineString"))
    props = {p.get("k"): p.get("v") for p in borders.iter("prop")}
    assert props["line_style"] == "dash" and props["line_color"] == "139,0,0,255"
    stars = ET.fromstring(styles.layer_qml("border_crossings", pd.DataFrame({"current": [1.0, 2.0]}), "Point"))
    assert {p.get("v") for p in stars.iter("prop") if p.get("k") == "name"} == {"star"}
    sites = ET.fromstring(styles.layer_qml("sites", pd.DataFrame({"name": ["a"]}), "MultiPolygon"))
    assert sites.get("labelsEnabled") == "1" and sites.find("labeling/settings/text-style").get("fieldName") == "name"
    # a known name with another geometry falls back to the default of that geometry
    assert ET.fromstring(styles.layer_qml("links", None, "Point")).find("renderer-v2").get("type") == "singleSymbol"


# ---------------------------------------------------------------------- GeoPackage layer_styles
def test_write_layer_styles_into_geopackage(run_dir):
    gpkg = run_dir / "leopardgeo.gpkg"
    assert _version(gpkg) == (0x47504B47, 10200)  # 'GPKG', version 1.2
    written = styles.write_layer_styles(gpkg)
    assert list(written) == LAYERS
    rows = _style_rows(gpkg)
    defaults = rows[rows["useAsDefault"] == 1]
    assert sorted(defaults["f_table_name"]) == sorted(LAYERS) and defaults["f_table_name"].is_unique
    assert (defaults["styleName"] == styles.STYLE_NAME).all()
    assert (rows["f_table_catalog"] == "").all() and (rows["f_table_schema"] == "").all()
    assert set(rows["f_geometry_column"]) == {"geom"}
    for qml, name in zip(defaults["styleQML"], defaults["f_table_name"], strict=True):
        assert ET.fromstring(qml).find("renderer-v2") is not None, name
    alt = rows[rows["useAsDefault"] == 0]
    assert list(alt["f_table_name"]) == ["links"] and list(alt["styleName"]) == [styles.CROSS_BORDER_STYLE_NAME]
    assert ET.fromstring(defaults.set_index("f_table_name").loc["links", "styleQML"]).find("renderer-v2").get("attr") == "score"

    con = sqlite3.connect(gpkg)
    try:
        assert con.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone() == ("attributes",)
        assert con.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = 'layer_styles'").fetchone() == (
            len(rows),
        )
    finally:
        con.close()
    # GeoPackage 1.2 still; GDAL lists layer_styles as an attribute table and every layer still reads
    assert _version(gpkg) == (0x47504B47, 10200)
    listed = {str(n): g for n, g in pyogrio.list_layers(gpkg)}
    assert set(listed) == {*LAYERS, "layer_styles"} and listed["layer_styles"] is None
    for name in LAYERS:
        assert len(pyogrio.read_dataframe(gpkg, layer=name)) > 0
    table = pyogrio.read_dataframe(gpkg, layer="layer_styles")
    assert len(table) == len(rows) and table["useAsDefault"].dtype == bool

    # idempotent: the rows are replaced, not duplicated
    styles.write_layer_styles(gpkg)
    again = _style_rows(gpkg)
    assert len(again) == len(rows)
    assert sorted(again.loc[again["useAsDefault"] == 1, "f_table_name"]) == sorted(LAYERS)
    assert _version(gpkg) == (0x47504B47, 10200)
    # GDAL can still update the file (a later stage adds a layer); styling again picks the new layer up
    write_layers(gpkg, {"extra_sites": _layers()["sites"]})
    assert pyogrio.read_info(gpkg, layer="layer_styles")["features"] == len(rows)
    assert "extra_sites" in styles.write_layer_styles(gpkg)
    assert len(_style_rows(gpkg)) == len(rows) + 1


def test_write_layer_styles_options_and_errors(tmp_path):
    gpkg = tmp_path / "x.gpkg"
    lines = _layers()["links"]
    write_layers(gpkg, {"links_2030": lines})
    # a layer whose geometry column is not "geom": read from gpkg_geometry_columns
    pyogrio.write_dataframe(lines, gpkg, layer="other", driver="GPKG", append=False, layer_options={"GEOMETRY_NAME": "shape"})
    # a default style saved earlier (e.g. by QGIS) stays, but is no longer the default
    styles.write_layer_styles(gpkg, {"other": "<qgis/>"})
    con = sqlite3.connect(gpkg)
    with con:
        con.execute("UPDATE layer_styles SET styleName = 'mine'")
    con.close()
    written = styles.write_layer_styles(gpkg, {"links_2030": "links", "other": "links"})
    rows = _style_rows(gpkg).set_index(["f_table_name", "styleName"])
    assert rows.loc[("other", "mine"), "useAsDefault"] == 0
    assert rows.loc[("other", styles.STYLE_NAME), "useAsDefault"] == 1
    assert rows.loc[("other", styles.STYLE_NAME), "f_geometry_column"] == "shape"
    assert rows.loc[("links_2030", styles.STYLE_NAME), "f_geometry_column"] == "geom"
    assert ET.fromstring(written["links_2030"]).find("renderer-v2").get("attr") == "score"

    with pytest.raises(DataError, match="expected feature layers"):
        styles.write_layer_styles(gpkg, {"nope": "links"})
    with pytest.raises(DataError, match="found no file"):
        styles.write_layer_styles(tmp_path / "missing.gpkg")
    (tmp_path / "not.gpkg").write_bytes(b"")
    with pytest.raises(DataError, match="gpkg_contents"):
        styles.write_layer_styles(tmp_path / "not.gpkg")


# ---------------------------------------------------------------------- raster styles
def _renderer(qml_path):
    return ET.parse(qml_path).getroot().find("pipe/rasterrenderer")


def test_raster_styles_beside_the_tifs(run_dir):
    written = styles.write_run_styles(run_dir)
    names = {p.name for p in written}
    assert {"leopardgeo.gpkg", "suitability.qml", "corridors.qml", "patches.qml", "territories.qml"} <= names
    assert not list(run_dir.glob(".*.tmp"))

    import rasterio

    with rasterio.open(run_dir / "suitability.tif") as src:
        values = src.read(1, masked=True).compressed()
    lo, hi = np.percentile(values[np.isfinite(values)], [2, 98])
    r = _renderer(run_dir / "suitability.qml")
    assert r.get("type") == "singlebandpseudocolor"
    assert float(r.get("classificationMin")) == pytest.approx(lo, rel=1e-5)
    assert float(r.get("classificationMax")) == pytest.approx(hi, rel=1e-5)
    shader = r.find("rastershader/colorrampshader")
    items = [float(i.get("value")) for i in shader.iter("item")]
    assert items[0] == pytest.approx(lo, rel=1e-5) and items[-1] == pytest.approx(hi, rel=1e-5)
    assert shader.find("item").get("color") == "#440154"  # viridis, low = dark

    corr = _renderer(run_dir / "corridors.qml").find("rastershader/colorrampshader")
    assert corr.find("item").get("color") == "#fde725"  # reversed: low (best) = bright

    res = [float(i.get("value")) for i in _renderer(run_dir / "resistance.qml").iter("item")]
    ratios = np.diff(np.log(res))
    assert np.allclose(ratios, ratios[0])  # log-spaced stops

    pal = _renderer(run_dir / "patches.qml")
    assert pal.get("type") == "paletted"
    assert [float(e.get("value")) for e in pal.iter("paletteEntry")] == [1.0, 2.0, 3.0]
    terr = _renderer(run_dir / "territories.qml")
    assert terr.get("type") == "paletted"
    assert [e.get("label") for e in terr.iter("paletteEntry")] == ["none", "female only", "male only", "both"]

    # rewriting replaces the file (atomically)
    before = (run_dir / "suitability.qml").read_text(encoding="utf-8")
    assert styles.write_raster_style(run_dir / "suitability.tif") == run_dir / "suitability.qml"
    assert (run_dir / "suitability.qml").read_text(encoding="utf-8") == before
    with pytest.raises(DataError, match="found no file"):
        styles.write_raster_style(run_dir / "missing.tif")


def test_raster_style_of_unknown_and_constant_rasters(tmp_path):
    _, classes = synthetic_raster(tmp_path / "landcover.tif", np.array([[1, 2], [2, 5]]), dtype="int16")
    assert _renderer(styles.write_raster_style(classes)).get("type") == "paletted"
    _, flat = synthetic_raster(tmp_path / "elev.tif", np.full((3, 3), 7.0))
    r = _renderer(styles.write_raster_style(flat))
    assert r.get("type") == "singlebandpseudocolor"
    assert float(r.get("classificationMax")) > float(r.get("classificationMin")) == 7.0


# ---------------------------------------------------------------------- maps
def _texts(fig: Figure) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for t in fig.findobj(Text):
        if t.get_gid():
            found.setdefault(t.get_gid(), []).append(t.get_text())
    return found


@pytest.mark.parametrize("name", list(maps.MAPS))
def test_each_map_has_scale_bar_north_arrow_and_legend(run_dir, name):
    fig = maps.plot_map(run_dir, name)
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert texts["scale_bar"] and all(t.endswith(" km") for t in texts["scale_bar"])
    assert texts["north_arrow"] == ["N"]
    ax = fig.axes[0]
    assert ax.get_title()
    has_colorbar = len(fig.axes) > 1
    assert ax.get_legend() is not None or has_colorbar
    # the scale bar is drawn in data units: its segments add up to the labelled length
    bar = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_zorder() == 20]
    km = float(texts["scale_bar"][0].removesuffix(" km"))
    assert sum(p.get_width() for p in bar) == pytest.approx(km * 1000)


def test_map_contents(run_dir):
    fig = maps.map_links(run_dir)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "crosses a border" in labels and "national border" in labels
    assert "corridor score" in fig.axes[1].get_ylabel()
    fig = maps.map_border(run_dir)
    profile = fig.axes[1]
    assert profile.get_title() == "Border permeability profile"
    assert [b.get_height() for b in profile.patches] == [2.0, 0.5, 1.5, 0.1]
    fig = maps.map_territories(run_dir)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "female territory" in labels and "male territory" in labels
    # drawing into a caller's axes
    fig = Figure()
    ax = fig.add_subplot()
    assert maps.map_suitability(run_dir, ax=ax) is fig


def test_save_maps_writes_pngs(run_dir, tmp_path):
    out = maps.save_maps(run_dir, tmp_path / "png", dpi=40)
    assert list(out) == list(maps.MAPS)
    for name, path in out.items():
        assert path == tmp_path / "png" / f"{name}.png"
        img = imread(path)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, name
    assert not list((tmp_path / "png").glob(".*"))
    # default folder: run_dir/maps; a subset
    assert maps.save_maps(run_dir, maps=["suitability"], dpi=30) == {"suitability": run_dir / "maps" / "suitability.png"}


def test_missing_inputs_are_skipped(tmp_path, run_dir):
    # a folder with one raster and no GeoPackage: only that map
    only = tmp_path / "only"
    only.mkdir()
    (only / "suitability.tif").write_bytes((run_dir / "suitability.tif").read_bytes())
    assert list(maps.save_maps(only, dpi=30)) == ["suitability"]
    # a GeoPackage with patches only: no borders / study area / protected areas to draw, still a map
    write_layers(only / "leopardgeo.gpkg", {"patches": _layers()["patches"]})
    assert maps.available_maps(only) == ["suitability", "patches"]
    fig = maps.plot_map(only, "patches")
    assert _texts(fig)["north_arrow"] == ["N"]
    with pytest.raises(DataError, match="'links'"):
        maps.plot_map(only, "links")
    with pytest.raises(DataError, match=r"current\.tif"):
        maps.map_current(only)
    with pytest.raises(DataError, match="border_permeability"):
        maps.map_border(only)
    with pytest.raises(ConfigError, match="expected one of"):
        maps.plot_map(only, "nope")
    with pytest.raises(ConfigError):
        maps.save_maps(only, maps=["nope"])
    with pytest.raises(DataError, match="found no folder"):
        maps.save_maps(tmp_path / "absent")
    # links without score / crosses_border: coloured by cwd, no highlight
    write_layers(only / "leopardgeo.gpkg", {"links": _layers()["links"].drop(columns=["score", "crosses_border"])})
    fig = maps.map_links(only)
    assert "cost-weighted distance" in fig.axes[1].get_ylabel()
    assert "crosses a border" not in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # territories from the raster when there is no layer
    (only / "territories.tif").write_bytes((run_dir / "territories.tif").read_bytes())
    fig = maps.map_territories(only)
    assert "female only" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _stub_mapclassify(monkeypatch):
    """mapclassify (which GeoDataFrame.explore imports) if installed, else a stub of its ``classify``."""
    try:
        import mapclassify  # noqa: F401
    except ImportError:
        stub = types.ModuleType("mapclassify")

        def classify(y, scheme, bins=None, **_):
            return types.SimpleNamespace(yb=np.minimum(np.searchsorted(bins, y), len(bins) - 1), k=len(bins))

        stub.classify = classify
        monkeypatch.setitem(sys.modules, "mapclassify", stub)


@pytest.mark.parametrize("with_geopandas_explore", [False, True])
def test_explore(run_dir, monkeypatch, with_geopandas_explore):
    pytest.importorskip("folium")
    if with_geopandas_explore:
        _stub_mapclassify(monkeypatch)
    else:
        monkeypatch.setitem(sys.modules, "mapclassify", None)
    m = maps.explore(run_dir, layers=["study_area", "links", "territories", "border_crossings"])
    html = m.get_root().render()
    assert "links" in html and "territories" in html and "border_crossings" in html
    assert len(maps.explore(run_dir / "leopardgeo.gpkg").get_root().render()) > len(html)
    with pytest.raises(DataError, match="expected layers"):
        maps.explore(run_dir, layers=["nope"])
    monkeypatch.setitem(sys.modules, "folium", None)
    with pytest.raises(DataError, match="pip install folium"):
        maps.explore(run_dir)


def _png_pixels(fig: Figure, tmp_path, name: str) -> np.ndarray:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    return imread(path)


@pytest.mark.parametrize("name", list(maps.MAPS))
def test_each_map_is_drawn_with_legend_lonlat_axes_and_labels_that_do_not_overlap(run_dir, tmp_path, name):
    fig = maps.plot_map(run_dir, name)
    img = _png_pixels(fig, tmp_path, name)
    # not blank: many colours, and the map axes are not one flat colour
    ax = fig.axes[0]
    rgb = (img[..., :3] * 255).astype(int)
    colours = np.unique(rgb.reshape(-1, 3) // 8, axis=0)
    assert len(colours) > 20, f"{name}: {len(colours)} colours, the map looks blank"
    assert ax.get_legend() is not None or len(fig.axes) > 1
    # axes in degrees (graticule) rather than projected metres
    ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert ticks and all("°" in t for t in ticks), ticks
    # patch ids (and the protected area's name) are labelled, and no two labels overlap
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == "label"]
    texts = {t.get_text() for t in labels}
    assert {"1", "2", "3"} <= texts, texts
    assert "PA" in texts
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), f"{name}: labels overlap"
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_place_labels_never_overlaps_and_drops_what_cannot_fit():
    fig = Figure(figsize=(3, 3))
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    items = [(5.0, 5.0, f"label {i}", {"fontsize": 9}) for i in range(40)]  # 40 labels on one point
    placed = maps.place_labels(ax, items)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in placed]
    assert 1 < len(placed) < 40  # some around the point, the rest left out
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert placed[0].get_text() == "label 0"  # the first (most important) item is placed first


def test_graticule_labels_the_meridians_where_they_cross_the_bottom_edge():
    from pyproj import Transformer

    fig = Figure()
    ax = fig.add_subplot()
    # a 200 km square centred on 131 E 43 N in UTM 52N (EPSG:32652)
    fwd = Transformer.from_crs(4326, 32652, always_xy=True)
    x, y = fwd.transform(131.0, 43.0)
    ax.set_xlim(x - 100_000, x + 100_000)
    ax.set_ylim(y - 100_000, y + 100_000)
    assert maps.add_graticule(ax, "EPSG:32652", step_deg=1.0)
    xt = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks(), strict=True))
    assert "131°E" in xt
    lon, _ = Transformer.from_crs(32652, 4326, always_xy=True).transform(xt["131°E"], y - 100_000)
    assert lon == pytest.approx(131.0, abs=1e-6)
    assert not maps.add_graticule(ax, None)


def test_current_map_leaves_the_patches_out_of_its_log_scale(run_dir):
    fig = maps.map_current(run_dir)
    (im,) = [i for i in fig.axes[0].get_images() if i.get_zorder() == 1]  # the data (the land / water base is 0)
    data = im.get_array()
    assert np.ma.getmaskarray(data)[1:5, 1:5].all()  # patch 1's cells are not coloured
    assert type(im.norm).__name__ == "LogNorm"
    # the barrier scale covers only cells with a score
    fig = maps.map_barriers(run_dir)
    (im,) = [i for i in fig.axes[0].get_images() if i.get_zorder() == 1]
    assert im.norm.vmin > 0 and np.ma.getmaskarray(im.get_array())[im.get_array().filled(1) <= 0].all()


def test_explore_overlays_rasters_and_stays_small(run_dir):
    pytest.importorskip("folium")
    m = maps.explore(run_dir, layers=["patches", "links"])
    html = m.get_root().render()
    assert html.count("L.imageOverlay") == 2  # suitability and current
    m = maps.explore(run_dir, layers=["patches"], rasters=[])
    assert "L.imageOverlay" not in m.get_root().render()
    rgba, bounds, _ = maps.raster_overlay(run_dir / "suitability.tif")
    assert rgba.dtype == np.uint8 and rgba.shape[2] == 4 and rgba[..., 3].min() == 0  # no data is transparent
    (s, w), (n, e) = bounds
    assert 40 < s < n < 50 and 125 < w < e < 135  # UTM 52N, lat / lon order as Leaflet wants
    with pytest.raises(DataError, match="expected rasters"):
        maps.explore(run_dir, rasters=["nope.tif"])
    with pytest.raises(ConfigError, match="lonboard"):
        maps.explore(run_dir, backend="kepler")
