"""Bring-your-own-nodes: habitat polygons to nodes, links and every metric, and the ``metrics`` command."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import geopandas as gpd
import shapely

from leopardgeo.cli import cli
from leopardgeo.core.errors import ConfigError, CRSError, DataError, OutputExistsError
from leopardgeo.stages.metrics import connectivity_metrics, dispersal_k
from leopardgeo.stages.nodes import polygon_metrics, write_polygon_metrics
from leopardgeo.testing import TEST_CRS, naive_connectivity_metrics, synthetic_raster

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the project


def squares() -> gpd.GeoDataFrame:
    """Three squares (1, 4 and 1 ha) in a row on UTM 52N, with a name and a quality-weighted area."""
    geoms = [shapely.box(0, 0, 100, 100), shapely.box(300, -50, 500, 150), shapely.box(700, 0, 800, 100)]
    return gpd.GeoDataFrame(
        {"name": ["a", "b", "c"], "habitat": [2.0, 3.0, 5.0]}, geometry=geoms, crs=TEST_CRS
    ).set_geometry(gpd.GeoSeries(geoms, crs=TEST_CRS).translate(500_000, 4_800_000).to_numpy())


def crescent() -> shapely.Polygon:
    """A U shape whose centroid lies in the open middle, outside the polygon."""
    return shapely.Polygon([(0, 0), (300, 0), (300, 300), (200, 300), (200, 100), (100, 100), (100, 300), (0, 300)])


def test_centroid_distances_and_metrics_by_hand():
    r = polygon_metrics(squares(), median_distance=400.0)
    cx = [50.0, 400.0, 750.0]
    d = {(1, 2): 350.0, (2, 3): 350.0, (1, 3): 700.0}
    got = {(a, b): dist for a, b, dist in r.links[["patch_a", "patch_b", "distance_m"]].itertuples(index=False)}
    assert got == pytest.approx(d)
    assert r.nodes["area_ha"].tolist() == pytest.approx([1.0, 4.0, 1.0])
    assert (r.nodes["point_x"] - 500_000).tolist() == pytest.approx(cx)
    # the same graph built by hand gives the same metrics
    G = nx.Graph()
    for i, a in enumerate([1.0, 4.0, 1.0], start=1):
        G.add_node(i, area_ha=a)
    for (a, b), dist in d.items():
        G.add_edge(a, b, distance_m=dist)
    m = connectivity_metrics(G, weight="distance_m", median_distance=400.0)
    assert r.summary["PC"] == pytest.approx(m.summary["PC"])
    np.testing.assert_allclose(r.nodes["dPC"], m.nodes["dPC"])
    assert r.nodes["name"].tolist() == ["a", "b", "c"]  # the layer's attributes travel along


def test_point_on_surface_when_the_centroid_is_outside():
    gdf = gpd.GeoDataFrame(geometry=[crescent(), shapely.box(1000, 0, 1100, 100)], crs=TEST_CRS)
    assert not crescent().contains(crescent().centroid)
    r = polygon_metrics(gdf)
    pt = shapely.Point(r.nodes.loc[0, "point_x"], r.nodes.loc[0, "point_y"])
    assert crescent().intersects(pt)
    assert r.links.loc[0, "distance_m"] == pytest.approx(pt.distance(shapely.Point(1050, 50)))


def test_edge_distance_threshold_area_field_and_ids():
    gdf = squares()
    r = polygon_metrics(gdf, distance="edge", max_distance=250.0, area_field="habitat", id_field="name",
                        median_distance=200.0)  # fmt: skip
    assert r.links[["patch_a", "patch_b", "distance_m"]].to_dict("split")["data"] == [["a", "b", 200.0], ["b", "c", 200.0]]
    assert r.nodes["habitat"].tolist() == [2.0, 3.0, 5.0]
    # a = 2, 3, 5; p = 0.5 per link, 0.25 for a-c through b
    num = 4 + 9 + 25 + 2 * (2 * 3 * 0.5 + 3 * 5 * 0.5 + 2 * 5 * 0.25)
    assert r.summary["PC"] == pytest.approx(num / 100)
    assert shapely.length(r.links.geometry).tolist() == pytest.approx([200.0, 200.0])  # shortest lines


def test_any_crs_gives_the_same_answer():
    utm = squares()
    geo = utm.to_crs("EPSG:4326")
    a = polygon_metrics(utm, distance="edge")
    b = polygon_metrics(geo, distance="edge", crs=TEST_CRS)
    c = polygon_metrics(geo, distance="edge")  # its own UTM zone: 52N again
    for other in (b, c):
        assert other.summary["PC"] == pytest.approx(a.summary["PC"], rel=1e-6)
        np.testing.assert_allclose(other.links["distance_m"], a.links["distance_m"], rtol=1e-6)


def test_least_cost_over_a_resistance_raster(tmp_path):
    res = np.ones((3, 9))
    res[:, 4] = 5.0  # a band of resistance 5 between the patches
    grid, path = synthetic_raster(tmp_path / "res.tif", res, cell_size_m=100.0)
    x0, y1 = grid.transform.c, grid.transform.f
    gdf = gpd.GeoDataFrame(
        geometry=[shapely.box(x0, y1 - 300, x0 + 200, y1), shapely.box(x0 + 700, y1 - 300, x0 + 900, y1)], crs=TEST_CRS
    )
    r = polygon_metrics(gdf, distance="least_cost", resistance=path, median_distance=1000.0)
    # cell centres from column 1 to 7: steps 1-2, 2-3 at r 1, 3-4 and 4-5 at mean 3, 5-6, 6-7 at r 1: 100 (1+1+3+3+1+1)
    assert r.links.loc[0, "cwd"] == pytest.approx(1000.0)
    assert r.links.loc[0, "p"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="resistance raster"):
        polygon_metrics(gdf, distance="least_cost")


def test_write_styled_geopackage_and_csv(tmp_path):
    r = polygon_metrics(squares(), median_distance=400.0)
    written = write_polygon_metrics(r, tmp_path / "out")
    gpkg = tmp_path / "out" / "leopardgeo.gpkg"
    assert gpkg in written
    nodes = gpd.read_file(gpkg, layer="habitat_nodes")
    links = gpd.read_file(gpkg, layer="node_links")
    for col in ("dPC", "dPC_intra", "dPC_flux", "dPC_connector", "dIIC", "dIIC_connector", "BC", "BCPC", "articulation"):
        assert col in nodes.columns
    for col in ("distance_m", "p", "used", "dPC_link", "dIIC_link", "bridge"):
        assert col in links.columns
    with sqlite3.connect(gpkg) as con:
        styled = {row[0] for row in con.execute("SELECT f_table_name FROM layer_styles")}
    assert {"habitat_nodes", "node_links"} <= styled
    csv = pd.read_csv(tmp_path / "out" / "habitat_nodes.csv")
    np.testing.assert_allclose(csv["dPC"], r.nodes["dPC"])
    summary = json.loads((tmp_path / "out" / "node_metrics.json").read_text())
    assert summary["PC"] == pytest.approx(r.summary["PC"]) and summary["distance"] == "centroid"
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_polygon_metrics(r, tmp_path / "out")
    write_polygon_metrics(r, tmp_path / "out", overwrite=True)


def test_errors():
    gdf = squares()
    with pytest.raises(CRSError, match="CRS"):
        polygon_metrics(gdf.set_crs(None, allow_override=True))
    with pytest.raises(DataError, match="polygons"):
        polygon_metrics(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=TEST_CRS))
    with pytest.raises(DataError, match="unique"):
        polygon_metrics(gdf.assign(name=["a", "a", "b"]), id_field="name")
    with pytest.raises(DataError, match=">= 0"):
        polygon_metrics(gdf.assign(habitat=[1.0, -1.0, 2.0]), area_field="habitat")
    with pytest.raises(DataError, match="'nope'"):
        polygon_metrics(gdf, area_field="nope")
    with pytest.raises(ConfigError, match="distance"):
        polygon_metrics(gdf, distance="manhattan")
    # a resistance raster with centroid or edge distances would be ignored without a word
    with pytest.raises(ConfigError, match="only with distance 'least_cost'"):
        polygon_metrics(gdf, distance="edge", resistance="r.tif")
    # A_L smaller than the habitat it holds: PC and IIC above 1 (squares(): 6 ha in all)
    with pytest.raises(DataError, match=r"landscape area at least the nodes' total 'area_ha' \(6\), found 5"):
        polygon_metrics(gdf, landscape_area=5.0)
    assert polygon_metrics(gdf, landscape_area=6.0).summary["PC"] <= 1.0
    with pytest.raises(CRSError, match="expected a projected CRS in metres"):  # once areas of 8e-11 ha, in degrees
        polygon_metrics(gdf, crs="EPSG:4326")


@pytest.mark.parametrize("blank", [None, shapely.Polygon()])
def test_a_feature_without_geometry_is_refused_not_dropped(tmp_path, blank):
    # node ids are 1..n in file order: dropping the third feature would give the fourth its id
    gdf = squares()
    rows = gpd.GeoDataFrame(
        {"name": ["a", "b", "x", "c"]}, geometry=[*gdf.geometry[:2], blank, gdf.geometry[2]], crs=gdf.crs
    )
    path = tmp_path / "gaps.gpkg"
    rows.to_file(path)
    with pytest.raises(DataError, match=r"1 feature\(s\) without a geometry \(feature 3 in file order\)"):
        polygon_metrics(path)
    res = CliRunner().invoke(cli, ["metrics", str(path), "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "feature 3 in file order" in res.output and not (tmp_path / "m").exists()


def test_metrics_command(tmp_path):
    path = tmp_path / "habitat.gpkg"
    squares().to_file(path, layer="habitat")
    out = tmp_path / "m"
    args = ["metrics", str(path), "--out", str(out), "--distance", "edge", "--median-dispersal", "300",
            "--min-probability", "0.01"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "PC =" in res.output and (out / "node_links.csv").exists()
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and "OutputExistsError" in res.output
    res = CliRunner().invoke(cli, ["metrics", str(path), "--out", str(out), "--distance", "least-cost", "--overwrite"])
    assert res.exit_code != 0 and "resistance raster" in res.output
    res = CliRunner().invoke(cli, [*args, "--pair-probability-floor", "0.2", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "pair probability floor 0.2: every dPC within" in res.output
    assert json.loads((out / "node_metrics.json").read_text())["pair_probability_floor"] == 0.2


@pytest.mark.skipif(not (SHARED / "primorsky_municipal" / "mo.geojson").exists(), reason="shared test data absent")
def test_primorsky_municipalities_against_brute_force():
    """Real polygons (Primorsky Krai municipalities, OpenStreetMap; test-only data): the brute force agrees."""
    gdf = gpd.read_file(SHARED / "primorsky_municipal" / "mo.geojson")
    gdf = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])].head(30)
    r = polygon_metrics(gdf, distance="centroid", max_distance=80_000.0, median_distance=20_000.0)
    G = nx.Graph()
    for row in r.nodes.itertuples():
        G.add_node(row.node_id, area_ha=row.area_ha)
    for row in r.links.itertuples():
        G.add_edge(row.patch_a, row.patch_b, cwd=row.distance_m)
    ref = naive_connectivity_metrics(G, k=dispersal_k(20_000.0))
    assert r.summary["PC"] == pytest.approx(ref["PC"], rel=1e-12)
    got = r.nodes.set_index("node_id")
    for col in ("dPC", "dPC_connector", "dIIC", "BCPC"):
        np.testing.assert_allclose(got[col], ref["nodes"].loc[got.index, col], rtol=1e-9, atol=1e-9)
    assert math.isfinite(r.summary["EC_ha"])


def test_a_self_intersecting_polygon_is_repaired_with_a_warning():
    from leopardgeo.core.errors import InvalidGeometryWarning

    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])  # two triangles of 0.25 ha; area 0 unrepaired
    geoms = gpd.GeoSeries([bowtie, shapely.box(300, 0, 400, 100)]).translate(500_000, 4_800_000)
    with pytest.warns(InvalidGeometryWarning, match="1 invalid geometry repaired"):
        r = polygon_metrics(gpd.GeoDataFrame(geometry=geoms, crs=TEST_CRS), median_distance=500.0)
    assert r.nodes["area_ha"].tolist() == pytest.approx([0.5, 1.0])
