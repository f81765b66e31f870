"""Scenarios on hand-built landscapes with known answers: roads, gaps, restoration, ranking, comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geopandas as gpd
import shapely

from leopardgeo.config.scenario import EditConfig, ScenarioConfig
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.runner.registry import RunConfig, load_config, load_config_string
from leopardgeo.stages.graph import build_graph
from leopardgeo.stages.interventions import rank_interventions
from leopardgeo.stages.scenario import apply_habitat_edits, apply_resistance_edits
from leopardgeo.testing import TEST_CRS, synthetic_raster

X0, Y0, CELL = 500_000.0, 4_800_000.0, 100.0
ROWS, COLS = 15, 50
#: Patches A (cols 0-7), B (21-28), C (42-49); corridors on rows 6-8 between them, the rest impassable.
A, B, C = (0, 8), (21, 29), (42, 50)
CORRIDOR_ROWS = (6, 9)
ROAD_COL = 35  # a road across the B-C corridor, along the centre of this column


def _x(col: float) -> float:
    return X0 + col * CELL


def _y(row: float) -> float:
    return Y0 - row * CELL


def landscape() -> tuple[np.ndarray, np.ndarray]:
    """(suitability, resistance) of the three-patch landscape; resistance NaN = impassable."""
    suit = np.full((ROWS, COLS), 0.1, dtype="float32")
    res = np.full((ROWS, COLS), np.nan, dtype="float32")
    for c0, c1 in (A, B, C):
        suit[:, c0:c1] = 0.9
        res[:, c0:c1] = 1.0
    r0, r1 = CORRIDOR_ROWS
    res[r0:r1, A[1] : B[0]] = 2.0
    res[r0:r1, B[1] : C[0]] = 2.0
    return suit, res


def road_frame() -> gpd.GeoDataFrame:
    x = _x(ROAD_COL + 0.5)
    return gpd.GeoDataFrame({"name": ["road"]}, geometry=[shapely.LineString([(x, _y(0)), (x, _y(ROWS))])], crs=TEST_CRS)


def gap_frame(row: float = 7.5) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(_x(ROAD_COL + 0.5), _y(row))], crs=TEST_CRS)


def grid() -> Grid:
    return Grid.from_bounds((X0, Y0 - ROWS * CELL, X0 + COLS * CELL, Y0), cell_size_m=CELL, crs=TEST_CRS)


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    """The landscape as files, a config with three scenarios, and a run of it."""
    from leopardgeo.runner.pipeline import run

    d = tmp_path_factory.mktemp("scen")
    suit, res = landscape()
    synthetic_raster(d / "suit.tif", suit, cell_size_m=CELL, origin=(X0, Y0))
    synthetic_raster(d / "res.tif", np.nan_to_num(res, nan=50.0), cell_size_m=CELL, origin=(X0, Y0))
    synthetic_raster(d / "land.tif", np.isfinite(res).astype("uint8"), cell_size_m=CELL, origin=(X0, Y0), dtype="uint8")
    road_frame().to_file(d / "road.gpkg", layer="road")
    gap_frame().to_file(d / "gap.gpkg", layer="gap")
    (d / "run.toml").write_text(
        """
[grid]
template = "suit.tif"
[inputs]
landmask = "land.tif"
suitability = "suit.tif"
resistance = "res.tif"
[habitat]
method = "raster"
[resistance]
method = "raster"
[patches]
min_area_ha = 0
[territories]
enabled = false
[circuit]
enabled = false
[barrier_mapper]
enabled = false
[crossborder]
enabled = false
[sites]
enabled = false

[[scenarios]]
name = "road"
description = "an impassable road across the only B-C corridor"
illustrative = true
[[scenarios.edits]]
kind = "line"
path = "road.gpkg"

[[scenarios]]
name = "road_underpass"
[[scenarios.edits]]
kind = "line"
path = "road.gpkg"
[[scenarios.edits]]
kind = "gap"
name = "underpass"
path = "gap.gpkg"
width_m = 301

[[scenarios]]
name = "road_narrow_underpass"
[[scenarios.edits]]
kind = "line"
path = "road.gpkg"
mode = "penalty"
penalty = 500
[[scenarios.edits]]
kind = "gap"
path = "gap.gpkg"
width_m = 101
""",
        encoding="utf-8",
    )
    cfg = load_config(d / "run.toml")
    result = run(cfg, out_dir=d / "out")
    return d, cfg, result


def _cwd(graph, a, b):
    return graph.edges[a, b]["cwd"] if graph.has_edge(a, b) else math.inf


def _patch_at(result, col: int) -> int:
    return int(result.patch_labels[0, col])


def test_a_road_cutting_the_only_corridor_isolates_a_patch(area):
    d, _, result = area
    pb, pc = (_patch_at(result, c) for c in (B[0], C[0]))
    assert result.graph.has_edge(pb, pc)  # the baseline links B and C
    doc = json.loads((d / "out/scenarios/road/compare.json").read_text(encoding="utf-8"))
    assert doc["newly_isolated"] == [pc]
    assert doc["links_lost"] == 1 and doc["illustrative"] is True
    assert doc["PC_after"] < doc["PC_before"]
    links = pd.read_csv(d / "out/scenarios/road/links_change.csv")
    lost = links[links["status"] == "lost"]
    assert [tuple(sorted(x)) for x in lost[["patch_a", "patch_b"]].to_numpy()] == [tuple(sorted((pb, pc)))]
    assert (links.loc[links["status"] != "lost", "status"] == "unchanged").all()  # A-B does not notice the road
    scen = json.loads((d / "out/scenarios/road/scenario.json").read_text(encoding="utf-8"))
    assert "territories" not in scen["rerun"] and scen["reused"][0] == "inputs"
    layer = gpd.read_file(d / "out/scenarios/road/leopardgeo.gpkg", layer="changes")
    assert set(layer["status"]) == {"lost", "unchanged"}


def test_a_gap_of_width_w_restores_exactly_the_cost_of_the_cells_it_reopens(area):
    d, _, result = area
    pb, pc = _patch_at(result, B[0]), _patch_at(result, C[0])
    before = _cwd(result.graph, pb, pc)
    for name in ("road_underpass", "road_narrow_underpass"):
        links = pd.read_csv(d / f"out/scenarios/{name}/links_change.csv")
        ends = links[["patch_a", "patch_b"]]
        row = links[(ends.min(axis=1) == min(pb, pc)) & (ends.max(axis=1) == max(pb, pc))]
        assert row["status"].tolist() == ["unchanged"], name
        assert row["cwd_after"].iloc[0] == pytest.approx(before, rel=1e-9)
    crossings = pd.read_csv(d / "out/scenarios/road_underpass/crossings.csv")
    assert crossings["crossing"].tolist() == ["underpass"] and crossings["cells"].iloc[0] == 9  # 3 rows x 3 columns


@pytest.mark.parametrize(("width_m", "rows"), [(101.0, 1), (301.0, 3), (501.0, 5)])
def test_gap_reopens_whole_cells_at_their_resistance_before_the_road(width_m, rows):
    _, res = landscape()
    res = np.where(np.isnan(res), 50.0, res).astype("float32")
    road = EditConfig(kind="line", mode="penalty", penalty=500.0)
    gap = EditConfig(kind="gap", width_m=width_m)
    after, where = apply_resistance_edits(res, grid(), [(road, road_frame()), (gap, gap_frame())])
    assert where.opened.sum() == rows  # a penalty line of width 0 burns the one column it runs along
    np.testing.assert_array_equal(after[where.opened], res[where.opened])
    np.testing.assert_array_equal(after[where.barrier], res[where.barrier] + 500.0)
    untouched = ~(where.opened | where.barrier)
    np.testing.assert_array_equal(after[untouched], res[untouched])
    assert (np.nonzero(where.opened)[1] == ROAD_COL).all()


def test_an_impassable_road_is_two_cells_across_and_can_remove_habitat():
    suit, res = landscape()
    road = EditConfig(kind="line", remove_habitat=True)
    frames = [(road, road_frame())]
    after, where = apply_resistance_edits(np.nan_to_num(res, nan=5.0), grid(), frames)
    cols = sorted(set(np.nonzero(where.barrier)[1]))
    assert cols == [ROAD_COL - 1, ROAD_COL, ROAD_COL + 1] and np.isnan(after[:, cols]).all()
    s = apply_habitat_edits(suit, grid(), frames)
    assert (s[:, cols] == 0).all() and np.array_equal(np.delete(s, cols, axis=1), np.delete(suit, cols, axis=1))
    assert np.array_equal(apply_habitat_edits(suit, grid(), [(EditConfig(kind="line"), road_frame())]), suit)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    box=st.tuples(st.integers(0, 11), st.integers(0, 11), st.integers(1, 12), st.integers(1, 12)),
    value=st.floats(1.0, 200.0),
    habitat=st.floats(0.0, 1.0),
)
def test_restoring_a_polygon_never_raises_any_links_cost(seed, box, value, habitat):
    rng = np.random.default_rng(seed)
    g = Grid.from_bounds((X0, Y0 - 1200, X0 + 1200, Y0), cell_size_m=CELL, crs=TEST_CRS)
    res = rng.uniform(1, 100, g.shape).astype("float32")
    res[rng.random(g.shape) < 0.15] = np.nan
    labels = np.zeros(g.shape, "int32")
    labels[0:2, 0:2], labels[10:12, 10:12], labels[0:2, 10:12] = 1, 2, 3
    res[labels > 0] = 1.0
    box3 = [shapely.box(0, 0, 1, 1)] * 3
    patches = gpd.GeoDataFrame({"patch_id": [1, 2, 3], "area_ha": [4.0, 4.0, 4.0]}, geometry=box3, crs=g.crs)
    r0, c0, h, w = box
    poly = shapely.box(_x(c0), _y(min(r0 + h, 12)), _x(min(c0 + w, 12)), _y(r0))
    edit = EditConfig(kind="polygon", effect="restoration", resistance=value, habitat=habitat)
    after, _ = apply_resistance_edits(res, g, [(edit, gpd.GeoDataFrame(geometry=[poly], crs=g.crs))])
    assert np.array_equal(np.isnan(after), np.isnan(res))  # no data stays no data
    fin = np.isfinite(res)
    assert (after[fin] <= res[fin]).all()
    kw = {"rule": "cutoff", "max_cwd": 1e12}
    g0, _ = build_graph(res, labels, patches, g, **kw)
    g1, _ = build_graph(after, labels, patches, g, **kw)
    for u, v, d in g0.edges(data=True):
        assert g1.has_edge(u, v) and g1.edges[u, v]["cwd"] <= d["cwd"] * (1 + 1e-6)


def _pc_with(gaps: frozenset[str]) -> float:
    """PC of the three-patch landscape with an impassable road on each corridor, open at the chosen gaps."""
    from leopardgeo.stages.metrics import connectivity_metrics

    _, res = landscape()
    x_ab, x_bc = _x(14.5), _x(ROAD_COL + 0.5)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(x, _y(0)), (x, _y(ROWS))]) for x in (x_ab, x_bc)], crs=TEST_CRS)
    edits = [(EditConfig(kind="line"), lines)]
    where = {"ab": x_ab, "bc": x_bc}
    for name in sorted(gaps):
        pt = gpd.GeoDataFrame(geometry=[shapely.Point(where[name], _y(7.5))], crs=TEST_CRS)
        edits.append((EditConfig(kind="gap", width_m=301.0), pt))
    after, _ = apply_resistance_edits(res, grid(), edits)
    labels = np.zeros((ROWS, COLS), "int32")
    for i, (c0, c1) in enumerate((A, B, C), start=1):
        labels[:, c0:c1] = i
    area = [float((labels == i).sum()) for i in (1, 2, 3)]
    area[0] *= 3  # patch A is worth more: reconnecting it gains more
    patches = gpd.GeoDataFrame({"patch_id": [1, 2, 3], "area_ha": area}, geometry=[shapely.box(0, 0, 1, 1)] * 3, crs=TEST_CRS)
    graph, _ = build_graph(after, labels, patches, grid())
    return float(connectivity_metrics(graph, median_distance=5000.0, landscape_area=1000.0).summary["PC"])


@pytest.mark.parametrize("method", ["greedy", "exhaustive"])
def test_ranking_of_two_crossings_matches_brute_force(method):
    values = {s: _pc_with(frozenset(s)) for s in ((), ("ab",), ("bc",), ("ab", "bc"))}
    assert values[("ab",)] > values[("bc",)] > values[()]  # the landscape makes the answer known
    brute = sorted(["ab", "bc"], key=lambda n: -(values[(n,)] - values[()]))
    table = rank_interventions(["bc", "ab"], _pc_with, method=method)
    assert table["candidate"].tolist() == brute
    assert table["gain_alone"].tolist() == pytest.approx([values[(n,)] - values[()] for n in brute])
    assert table["value_after"].iloc[-1] == pytest.approx(values[("ab", "bc")])
    per_cost = rank_interventions(["bc", "ab"], _pc_with, method=method, units={"ab": 100.0, "bc": 1.0})
    assert per_cost["candidate"].tolist() == ["bc", "ab"]  # per unit of cost the cheap one wins


def test_scenario_config_errors_say_what_to_fix():
    with pytest.raises(ConfigError, match="coords: expected \\[longitude, latitude\\]"):
        load_config_string('[[scenarios]]\nname = "x"\n[[scenarios.edits]]\nkind = "line"\ncoords = [[500000, 4800000], [1, 2]]')
    with pytest.raises(ConfigError, match="needs a geometry"):
        load_config_string('[[scenarios]]\nname = "x"\n[[scenarios.edits]]\nkind = "gap"')
    with pytest.raises(ConfigError, match="expected at least one"):
        load_config_string('[[scenarios]]\nname = "x"')
    with pytest.raises(ConfigError, match=r"\[scenarios\[0\]\] expected the key 'name', found none. Add name = \.\.\."):
        load_config_string('[[scenarios]]\n[[scenarios.edits]]\nkind = "gap"\ncoords = [[131.9, 43.7]]')
    with pytest.raises(ConfigError, match="unique names"):
        RunConfig(scenarios=(ScenarioConfig(name="a", edits=(EditConfig(kind="gap", coords=((1, 2),)),)),) * 2)
    with pytest.raises(ConfigError, match="folder name"):
        ScenarioConfig(name="../x", edits=(EditConfig(kind="gap", coords=((1, 2),)),))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        EditConfig(kind="polygon", habitat=2.0)


def test_a_gap_on_no_line_of_the_scenario_is_refused():
    gap = EditConfig(kind="gap", width_m=100.0)
    far = gpd.GeoDataFrame(geometry=[shapely.Point(_x(3), _y(3))], crs=TEST_CRS)
    road = EditConfig(kind="line")
    with pytest.raises(DataError, match="expected each to cross a line edit"):
        apply_resistance_edits(np.ones((ROWS, COLS)), grid(), [(road, road_frame()), (gap, far)])


def test_an_edit_outside_the_study_area_is_refused(tmp_path):
    from leopardgeo.stages.scenario import edit_frame

    e = EditConfig(kind="line", coords=((10.0, 50.0), (10.1, 50.1)))
    with pytest.raises(DataError, match="within the study area"):
        edit_frame(e, grid())


def test_compare_scenarios_and_rank_from_the_command_line(area, tmp_path):
    import shutil

    from click.testing import CliRunner

    from leopardgeo.cli import cli

    d, _, _ = area
    run_dir = d / "run_cli"  # beside the run: run_config.toml's base_dir is relative to its folder
    shutil.copytree(d / "out", run_dir)
    res = CliRunner().invoke(cli, ["compare", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "road (illustrative)" in res.output and "isolated" in res.output
    res = CliRunner().invoke(cli, ["compare", str(run_dir), "road"])
    assert res.exit_code == 0 and "lost" in res.output, res.output
    res = CliRunner().invoke(cli, ["compare", str(run_dir), "nope"])
    assert res.exit_code != 0 and "expected a scenario 'nope'" in res.output
    # two folders: the run against its own scenario, written with the styled changes layer
    res = CliRunner().invoke(cli, ["compare", str(run_dir), str(run_dir / "scenarios/road"), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cmp/compare.json").read_text(encoding="utf-8"))["links_lost"] == 1
    assert "changes" in gpd.list_layers(tmp_path / "cmp/leopardgeo.gpkg")["name"].tolist()
    # a scenario rerun on the finished run: only the stages its edit touches are computed
    (tmp_path / "more.toml").write_text(
        f'[[scenarios]]\nname = "penalty_road"\n[[scenarios.edits]]\nkind = "line"\nmode = "penalty"\npenalty = 3\n'
        f'path = "{(d / "road.gpkg").as_posix()}"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["scenarios", str(run_dir), "--config", str(tmp_path / "more.toml")])
    assert res.exit_code == 0, res.output
    doc = json.loads((run_dir / "scenarios/penalty_road/compare.json").read_text(encoding="utf-8"))
    assert doc["links_lengthened"] == 1 and doc["links_lost"] == 0
    assert (run_dir / "scenarios/road/compare.json").is_file()  # the earlier scenarios stay
    # ranking two underpasses on the road scenario: the one on the corridor gains, the other nothing
    pts = gpd.GeoDataFrame(
        {"name": ["on corridor", "off corridor"], "cost": [2.0, 1.0]},
        geometry=[shapely.Point(_x(ROAD_COL + 0.5), _y(7.5)), shapely.Point(_x(ROAD_COL + 0.5), _y(1.5))],
        crs=TEST_CRS,
    )
    pts.to_file(tmp_path / "gaps.gpkg", layer="gaps")
    res = CliRunner().invoke(
        cli,
        ["rank", str(run_dir), "--scenario", "road", "--candidates", str(tmp_path / "gaps.gpkg"), "--name-field", "name",
         "--width", "301", "--method", "exhaustive"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(run_dir / "ranking/ranking.csv")
    assert table["candidate"].tolist() == ["on corridor", "off corridor"]
    assert table["gain"].iloc[0] > 0 and table["gain"].iloc[1] == pytest.approx(0.0, abs=1e-12)
    # crossings have no area to rank per km²; a missing cost column is named with the columns there are
    for extra, said in ((["--per", "km2"], "expected polygon candidates"), (["--cost-field", "cst"], "found no column 'cst'")):
        res = CliRunner().invoke(
            cli, ["rank", str(run_dir), "--candidates", str(tmp_path / "gaps.gpkg"), "--out", str(tmp_path / "r"), *extra]
        )
        assert res.exit_code == 2 and said in res.output, res.output


def test_barrier_mapper_top_sites_become_restoration_candidates(tmp_path):
    from types import SimpleNamespace

    from leopardgeo.runner.interventions import barrier_candidates, candidate_edits

    top = gpd.GeoDataFrame(
        {"rank": [1, 2, 3], "score": [9.0, 5.0, 1.0], "improvement_cwd": [900.0, 500.0, 100.0],
         "radius_m": [200.0, 100.0, 100.0]},
        geometry=[shapely.Point(_x(12), _y(7)), shapely.Point(_x(30), _y(7)), shapely.Point(_x(40), _y(2))],
        crs=TEST_CRS,
    )
    cands = barrier_candidates(SimpleNamespace(top=top), grid(), n=2)
    assert cands["name"].tolist() == ["barrier_1", "barrier_2"]
    assert cands["area_km2"].to_numpy() == pytest.approx([math.pi * 0.04, math.pi * 0.01], rel=0.01)
    assert cands["lat"].between(43, 44).all() and cands["lon"].between(128, 130).all()
    # head(-2) would be "all but the last two": a count below 1 is refused, in the API and the command
    with pytest.raises(ConfigError, match="n >= 1"):
        barrier_candidates(SimpleNamespace(top=top), grid(), n=-2)
    from click.testing import CliRunner

    from leopardgeo.cli import cli

    res = CliRunner().invoke(cli, ["rank", str(tmp_path), "--barriers", "-2"])
    assert res.exit_code == 2 and "--barriers" in res.output and "-2 is not in the range x>=1" in res.output
    edits = candidate_edits(cands, kind="restoration", name_field="name")
    _, res = landscape()
    after, where = apply_resistance_edits(np.nan_to_num(res, nan=50.0), grid(), edits[:1])
    assert where.polygons.sum() > 0 and (after[where.polygons] == 1.0).all()


def _unloadable_run_with_a_road(folder, monkeypatch):
    """A run folder's config with the scenario ``road``, and loading its values made an error (it takes a minute)."""
    import leopardgeo.runner.interventions as iv
    from leopardgeo.config import dump_config
    from leopardgeo.runner.registry import demo_config

    road = ScenarioConfig(name="road", edits=(EditConfig(kind="gap", coords=((131.9, 43.7),)),))
    cfg = demo_config().replace(scenarios=(road,))
    (folder / "run_config.toml").write_text(dump_config(cfg, relative_to=folder), encoding="utf-8")

    def loading(*a, **k):
        raise AssertionError("checked only after loading the run's values")

    monkeypatch.setattr(iv, "load_context", loading)


def test_rerunning_a_scenario_refuses_an_existing_folder_before_loading_the_run(tmp_path, monkeypatch):
    from leopardgeo.core.errors import OutputExistsError
    from leopardgeo.runner.interventions import rerun_scenarios

    _unloadable_run_with_a_road(tmp_path, monkeypatch)
    (tmp_path / "scenarios" / "road").mkdir(parents=True)
    (tmp_path / "scenarios" / "road" / "compare.json").write_text("{}", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="scenarios/road/compare.json"):
        rerun_scenarios(tmp_path)


def test_rank_checks_its_scenario_name_and_output_before_loading_the_run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from leopardgeo.cli import cli

    _unloadable_run_with_a_road(tmp_path, monkeypatch)
    res = CliRunner().invoke(cli, ["rank", str(tmp_path), "--barriers", "2", "--scenario", "raod"])
    assert res.exit_code == 1 and "found the run's ['road']" in res.output, res.output
    (tmp_path / "ranking").mkdir()
    (tmp_path / "ranking" / "ranking.csv").write_text("rank\n")
    res = CliRunner().invoke(cli, ["rank", str(tmp_path), "--barriers", "2"])
    assert res.exit_code == 1 and "OutputExistsError" in res.output and "ranking.csv" in res.output, res.output


def test_compare_refuses_one_folder_twice_and_out_without_a_second_folder(tmp_path):
    from click.testing import CliRunner

    from leopardgeo.cli import cli

    res = CliRunner().invoke(cli, ["compare", str(tmp_path), str(tmp_path)])  # once read as a scenario's name
    assert res.exit_code == 2 and "two different run folders" in res.output, res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path), "--out", str(tmp_path / "c")])  # --out once ignored
    assert res.exit_code == 2 and "give the second one" in res.output and not (tmp_path / "c").exists(), res.output


def test_a_partial_config_with_a_long_description_loads(tmp_path):
    from leopardgeo.runner.registry import demo_config

    text = "x" * 400
    (tmp_path / "s.toml").write_text(
        f'[[scenarios]]\nname = "a"\ndescription = "{text}"\n[[scenarios.edits]]\nkind = "gap"\ncoords = [[131.9, 43.7]]\n',
        encoding="utf-8",
    )
    assert load_config(tmp_path / "s.toml", over=demo_config()).scenarios[0].description == text
