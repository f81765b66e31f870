"""The run manifest, QGIS styles written by the run, and the run report (report.md / .html, summary.json, maps, CLI)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import pyogrio

from leopardgeo.cli import cli
from leopardgeo.core.errors import DataError, OutputExistsError
from leopardgeo.io import GPKG_NAME
from leopardgeo.report.runreport import SUMMARY_SCHEMA_VERSION, build_report, render_markdown, write_report
from leopardgeo.runner.pipeline import output_files, run

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def run_copy(coarse_run, tmp_path):
    """A private copy of the coarse demo run folder (reports write into it)."""
    _, out = coarse_run
    dst = tmp_path / "run"
    shutil.copytree(out, dst)
    return dst


def _patches_only(cfg):
    """The configuration without links and circuit: inputs, habitat, resistance, patches only (a second or two)."""
    return cfg.replace(links=type(cfg.links)(enabled=False), circuit=type(cfg.circuit)(enabled=False))


# ---------------------------------------------------------------------- manifest
def test_manifest_records_config_inputs_versions_and_timings(coarse_run):
    import tomllib

    import numpy

    import rasterio

    from leopardgeo.config import dump_config

    result, out = coarse_run
    m = json.loads((out / "manifest.json").read_text())
    assert m["manifest_version"] == "1.0"
    assert set(m["timings_s"]) == set(result.timings_s)
    for k, v in m["timings_s"].items():  # "write" is measured up to the manifest, before the final renames
        assert v == pytest.approx(result.timings_s[k], abs=2e-3) if k != "write" else 0 < v <= result.timings_s[k]
    assert m["started"] <= m["finished"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["started"])
    # the effective config as a dict: the same as run_config.toml
    assert m["config"] == tomllib.loads((out / "run_config.toml").read_text())
    assert m["config"]["grid"]["cell_size_m"] == 2000.0
    assert dump_config(result.config, relative_to=out) == (out / "run_config.toml").read_text()
    assert not m["config"]["base_dir"].startswith("/") and "/" not in m["platform"]["executable"]  # no machine paths
    # inputs: each configured file, hashed independently here
    by_key = {f["key"]: f for f in m["inputs"]}
    cfg = result.config
    pa = cfg.inputs.protected_areas.path
    for key, rel in (("inputs.elevation", cfg.inputs.elevation), ("inputs.protected_areas.path", pa)):
        p = cfg.resolve(rel)
        assert not by_key[key]["path"].startswith("/") and (out / by_key[key]["path"]).resolve() == p
        assert by_key[key]["size_bytes"] == p.stat().st_size
        assert by_key[key]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    v = m["versions"]
    assert v["numpy"] == numpy.__version__ and v["GDAL"] == rasterio.__gdal_version__
    assert {"leopardgeo", "python", "scipy", "geopandas", "shapely", "rasterio", "pyogrio", "networkx", "numba", "pyamg",
            "PROJ"} <= set(v)  # fmt: skip
    # outputs: every file in the folder, styles included, and nothing else (the hidden ledger and stage cache
    # are the run folder's bookkeeping, not outputs)
    on_disk = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    assert m["outputs"] == on_disk
    assert set(output_files(result.config)) <= set(on_disk)


def test_run_styles_every_layer_and_raster_and_writes_geopackage_1_2(coarse_run):
    _, out = coarse_run
    gpkg = out / GPKG_NAME
    con = sqlite3.connect(gpkg)
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        user_version = con.execute("PRAGMA user_version").fetchone()[0]
        features = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")}
        styled = {r[0] for r in con.execute("SELECT f_table_name FROM layer_styles WHERE useAsDefault = 1")}
        n_default = dict(con.execute("SELECT f_table_name, count(*) FROM layer_styles WHERE useAsDefault = 1 GROUP BY 1"))
    finally:
        con.close()
    assert app_id == int.from_bytes(b"GPKG", "big") and user_version == 10200  # GeoPackage 1.2.0
    assert features and features == styled and set(n_default.values()) == {1}
    for tif in out.glob("*.tif"):
        qml = tif.with_suffix(".qml")
        assert qml.is_file(), tif.name
        assert "<rasterrenderer" in qml.read_text()


def test_a_run_failing_while_styling_leaves_no_output(tmp_path, monkeypatch, coarse_config):
    from leopardgeo.io import styles

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(styles, "write_raster_style", boom)
    cfg = _patches_only(coarse_config)
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="disk full"):
        run(cfg, out_dir=out)
    assert not out.exists()  # nothing half-written: no folder, and no staging folder beside it
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- report
def _img_sources(page: str) -> list[str]:
    return re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)


def test_report_writes_md_html_summary_tables_and_maps(run_copy):
    out = run_copy
    rep = write_report(out)
    layers = {n: pyogrio.read_dataframe(out / GPKG_NAME, layer=n, read_geometry=False) for n in ("patches", "links")}
    # summary.json: versioned, and its numbers are the layers' own
    s = json.loads((out / "summary.json").read_text())
    assert s["schema"] == "leopardgeo.summary" and s["schema_version"] == SUMMARY_SCHEMA_VERSION == "1.0"
    assert s["patches"]["count"] == len(layers["patches"])
    assert s["patches"]["area_ha"] == pytest.approx(layers["patches"]["area_ha"].sum())
    by = pd.DataFrame(s["patches"]["by_country"]).set_index("country")
    assert by.loc["all", "patches"] == len(layers["patches"])
    # a patch across a border counts in each country it reaches, with that country's share of its area
    p = layers["patches"]
    for code in by.index.drop("all"):
        share = p[f"area_ha_{code.lower()}"]
        assert by.loc[code, "patches"] == int((share > 0).sum())
        assert by.loc[code, "area_ha"] == pytest.approx(share.sum())
    assert by.drop("all")["area_ha"].sum() <= by.loc["all", "area_ha"] + 1e-6
    assert s["links"]["count"] == len(layers["links"])
    assert s["links"]["cross_border"] == int(layers["links"]["countries"].str.contains(";").sum())
    assert [r["score_rank"] for r in s["links"]["ranked"]] == sorted(r["score_rank"] for r in s["links"]["ranked"])
    assert s["connectivity"] == json.loads((out / "metrics.json").read_text())
    assert s["crossborder"]["fence"] == json.loads((out / "fence.json").read_text())["summary"]
    assert s["run"]["cell_size_m"] == 2000.0 and s["run"]["timings_s"]
    # the territory and site stages ran: their summary rows are the rows of capacity.csv and sites.csv
    assert len(s["capacity"]["rows"]) == len(pd.read_csv(out / "capacity.csv"))
    assert [r["name"] for r in s["sites"]["rows"]] == list(pd.read_csv(out / "sites.csv")["name"])
    # CSV tables hold every row
    assert len(pd.read_csv(out / "links.csv")) == len(layers["links"])
    xb = pd.read_csv(out / "crossborder.csv")
    assert (xb["route"] == "link").sum() == s["links"]["cross_border"]  # no seam: patches are not cut at the border
    tb = pyogrio.read_dataframe(out / GPKG_NAME, layer="transboundary_patches", read_geometry=False)
    assert (xb["route"] == "transboundary patch").sum() == len(tb)
    # maps: one PNG per available map, each a real picture
    assert set(s["maps"]) == set(rep.maps) and {"suitability", "links", "border"} <= set(rep.maps)
    for name, rel in s["maps"].items():
        png = out / rel
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
    # report.md: the sections, links to the PNGs that exist
    md = (out / "report.md").read_text()
    for title in ("## Run", "## Habitat patches", "## Least-cost links and corridor scores", "## Connectivity",
                  "## Cross-border routes", "## Restoration opportunities", "## Territories and carrying capacity",
                  "## Reintroduction sites", "## Files"):  # fmt: skip
        assert title in md
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / target).is_file(), target
    # report.html: self-contained (no external resource), every map embedded as a decodable PNG
    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", page) and "<link" not in page and "<script" not in page
    imgs = _img_sources(page)
    assert len(imgs) == len(rep.maps) + (out / "simulation.png").is_file()  # the maps and the simulation plot
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    best = pd.read_csv(out / "links.csv").iloc[0]
    assert f"{best['from_id']} {best['from_name']}".strip() in page


def test_report_opens_with_findings_and_ends_with_the_run(run_copy):
    from pyproj import Transformer

    rep = build_report(run_copy)
    titles = [s.title for s in rep.sections]
    assert titles[0] == "Findings" and titles[-2:] == ["Run", "Files"]
    assert [h.split(":**")[0] for h in rep.headlines] == ["**Habitat", "**Cross-border", "**Southern Sikhote-Alin",
                                                          "**Restore first"]  # fmt: skip
    # the demo's site-to-source route costs ~580 km cost-weighted: connected in the graph, but the headline
    # gives the dispersal probability (exp(-k cwd) with the metrics' kernel) instead of a bare "connects"
    sikhote = rep.headlines[2]
    assert "connects to Land of the Leopard only at a dispersal probability of < 0.0001" in sikhote, sikhote
    md = render_markdown(rep)
    findings = md.split("## Findings")[1].split("\n## ")[0]
    assert findings.lstrip().startswith("- **Habitat:**")  # the four answers come first
    assert "Vitkalova et al. 2018" in findings and "Jiang et al. 2015" in findings  # published figures beside ours
    patches = pyogrio.read_dataframe(run_copy / GPKG_NAME, layer="patches", read_geometry=False)
    assert f"{patches['area_ha'].sum() / 100:,.0f} km² of habitat" in findings
    # a transboundary patch counts in each country with its own share, not wholly in its majority country
    assert f"{patches['area_ha_chn'].sum() / 100:,.0f} km² in China" in findings
    fence = json.loads((run_copy / "fence.json").read_text())["summary"]
    assert f"cost {fence['PC_loss_pct']:.0f} % of the connectivity" in rep.headlines[1]
    assert "straddle a national border" in findings and "% of PC lost if closed" in findings  # the ranked routes
    # "Restore first" names the first of the places listed below (ordered by the connectivity each adds), or says
    # that none adds any and names their links; every place listed is a Barrier Mapper place, in WGS 84
    barriers = pyogrio.read_dataframe(run_copy / GPKG_NAME, layer="barriers").sort_values("rank")
    lon, lat = Transformer.from_crs(barriers.crs, 4326, always_xy=True).transform(
        barriers.geometry.x.to_numpy(), barriers.geometry.y.to_numpy()
    )
    known = {f"{a:.3f} N {o:.3f} E" for a, o in zip(lat, lon, strict=True)}
    listed = re.findall(r"\*\*(\d+\.\d{3} N \d+\.\d{3} E)\*\* on link (\d+-\d+)", findings)
    assert listed and {place for place, _ in listed} <= known
    if "none of the places" in rep.headlines[3]:
        assert all(f"{link}" in rep.headlines[3] for _, link in listed)
        restore = findings.split("Best places to restore")[1]
        assert all(float(g.replace(",", "")) <= 1 for g in re.findall(r"adds ([\d,]+) ha", restore))
    else:
        assert rep.headlines[3].startswith(f"**Restore first:** {listed[0][0]} on link {listed[0][1]}")
    # every place named lies in the study area: the lon/lat box 127-137.5 E, 41.5-47 N, whose projected grid reaches
    # a little beyond it at the corners (data/README.md); no number in scientific notation
    places = re.findall(r"(\d+\.\d{3}) N (\d+\.\d{3}) E", md)
    assert places and all(41.35 <= float(a) <= 47.2 and 126.4 <= float(o) <= 138.1 for a, o in places)
    assert not re.search(r"\d\.?\d*e[+-]\d+", md)
    # every table carries a note that explains its columns, except the run metadata and file lists
    from leopardgeo.report.runreport import Table

    for sec in rep.sections:
        for b in sec.blocks:
            if isinstance(b, Table) and sec.title not in ("Run", "Files") and b.caption != "Patches by country":
                assert b.note, f"{sec.title}: {b.caption!r} has no footnote"


def test_report_refuses_to_overwrite_before_any_work(run_copy):
    out = run_copy
    write_report(out, maps=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_report(out, maps=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    write_report(out, maps=False, overwrite=True)
    assert not list(out.glob(".staging-*"))


def _fake_territory_and_site_outputs(out: Path) -> None:
    """Files the territory and site stages write (names and columns of their contract), with made-up numbers."""
    cap = pd.DataFrame(
        {
            "zone_type": ["patch", "country", "all", "protected_area"],
            "zone": ["4", "RUS", "all", "Land of the Leopard"],
            "name": ["Kedrovaya Pad", "Russia", "study area", "Land of the Leopard"],
            "females": [7.5, 21.0, 40.25, 9.0],
            "males": [3.0, 8.0, 15.0, 4.0],
            "adults": [10.5, 29.0, 55.25, 13.0],
            "adults_min": [9, 27, 52, 12],
            "adults_max": [12, 31, 58, 14],
        }
    )
    cap.to_csv(out / "capacity.csv", index=False)
    sites = pd.DataFrame(
        {
            "site_id": [2, 1],
            "name": ["Lazovsky", "Southern Sikhote-Alin"],
            "score": [61.0, 83.5],
            "rank": [2, 1],
            "habitat_ha": [120_000.0, 310_000.0],
            "persistence_25y": [0.62, 0.91],
            "persistence_50y": [0.41, 0.80],
        }
    )
    sites.to_csv(out / "sites.csv", index=False)
    (out / "simulation.json").write_text(json.dumps({"years": 50, "replicates": 200, "lambda": 1.04}))
    shutil.move(_any_png(out), out / "simulation.png")


def _any_png(out: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 50], [30, 40])
    fig.savefig(out / "_sim.png")
    return out / "_sim.png"


def test_capacity_and_site_sections_appear_when_their_files_exist(run_copy):
    out = run_copy
    _fake_territory_and_site_outputs(out)
    rep = build_report(out)
    titles = [s.title for s in rep.sections]
    assert "Territories and carrying capacity" in titles and "Reintroduction sites" in titles
    assert titles.index("Territories and carrying capacity") < titles.index("Reintroduction sites") < titles.index("Files")
    md = render_markdown(rep)
    cap_md = md.split("## Territories and carrying capacity")[1].split("\n## ")[0]
    rows = [line for line in cap_md.splitlines() if line.startswith("| ") and "zone_type" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["all", "country", "protected_area", "patch"]  # study area first
    assert "| all | all | study area | 40.2 | 15.0 | 55.2 | 52–58 |" in cap_md
    sites_md = md.split("## Reintroduction sites")[1].split("\n## ")[0]
    first = next(line for line in sites_md.splitlines() if line.startswith("| 1 "))
    assert "Southern Sikhote-Alin" in first and "91%" in first and "80%" in first  # ranked, persistence as %
    assert "![Simulated population trajectories (modelled).](simulation.png)" in sites_md
    assert rep.summary["capacity"]["rows"][2]["adults"] == 55.25
    assert [r["name"] for r in rep.summary["sites"]["rows"]] == ["Lazovsky", "Southern Sikhote-Alin"]
    assert rep.summary["simulation"] == {"years": 50, "replicates": 200, "lambda": 1.04}


def test_report_without_links_and_on_a_folder_without_a_run(tmp_path, coarse_config):
    cfg = _patches_only(coarse_config)
    out = tmp_path / "o"
    run(cfg, out_dir=out)
    rep = write_report(out, maps=False)
    assert rep.summary["links"] is None and rep.summary["crossborder"] is None and rep.summary["connectivity"] is None
    heads = [h.split(":**")[0] for h in rep.headlines]  # only what the run has: no links, so no route or restoration
    assert rep.sections[0].title == "Findings" and heads[0] == "**Habitat"
    assert "**Cross-border" not in heads and "**Restore first" not in heads
    assert "leopardgeo links OUT_DIR" in (out / "report.md").read_text()
    assert not (out / "links.csv").exists()
    with pytest.raises(DataError, match="expected a run folder"):
        write_report(tmp_path)


def test_summary_keys_are_documented():
    doc = (DOCS / "outputs.md").read_text()
    section = doc.split("## summary.json")[1].split("\n## ")[0]
    for key in ("schema", "schema_version", "leopardgeo_version", "generated", "out_dir", "run", "patches", "links",
                "connectivity", "crossborder", "barriers", "capacity", "sites", "simulation", "maps", "files",
                "run.timings_s", "run.crs", "run.cell_size_m", "patches.by_country", "links.ranked",
                "crossborder.fence"):  # fmt: skip
        assert f"`{key}`" in section, key
    manifest = doc.split("## manifest.json")[1].split("\n## ")[0]
    for key in ("manifest_version", "started", "finished", "timings_s", "total_s", "config_hash", "config", "inputs",
                "versions", "platform", "outputs"):  # fmt: skip
        assert f"`{key}`" in manifest, key


def test_summary_json_has_every_documented_top_level_key(run_copy):
    rep = build_report(run_copy)
    doc = (DOCS / "outputs.md").read_text().split("## summary.json")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.M))
    assert documented == set(rep.summary)


# ---------------------------------------------------------------------- CLI
def test_cli_report_prints_summary_and_ranked_links(run_copy):
    res = CliRunner().invoke(cli, ["report", str(run_copy), "--no-maps", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "Run summary" in res.output and "habitat patches" in res.output
    assert "Findings" in res.output and "Southern Sikhote-Alin:" in res.output and "**" not in res.output
    assert "best corridor score first" in res.output and "Cross-border routes" in res.output
    assert "report.html" in res.output
    ranks = re.findall(r"│\s+(\d+) │\s+(\d+) │", res.output.split("Least-cost links")[1].split("Cross-border")[0])
    assert [int(r) for r, _ in ranks] == [1, 2, 3]
    assert [int(s) for _, s in ranks] == sorted((int(s) for _, s in ranks), reverse=True)
    res = CliRunner().invoke(cli, ["report", str(run_copy), "--no-maps"])
    assert res.exit_code == 1 and "OutputExistsError" in res.output and "--overwrite" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["-q", "report", str(run_copy), "--no-maps", "--overwrite"])
    assert res.exit_code == 0 and res.output == ""


def test_cli_debug_shows_the_traceback(tmp_path):
    res = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert res.exit_code == 1 and "DataError" in res.output and "leopardgeo run --out" in res.output
    res = CliRunner().invoke(cli, ["--debug", "report", str(tmp_path)])
    assert res.exit_code == 1 and isinstance(res.exception, DataError)


def test_every_command_help_has_an_example():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "Example" in top.output
    for name in cli.commands:
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, name
        assert re.search(r"Examples?:\n\s+leopardgeo " + name, res.output), name
    assert {"-v", "-q", "--debug"} <= {o for p in cli.params for o in p.opts}


def test_markdown_numbers_are_right_aligned_and_text_left():
    from leopardgeo.report.runreport import markdown_table

    t = markdown_table(pd.DataFrame({"name": ["a|b", "c"], "n": ["1,200", "-"], "p": ["5%", "12%"]}))
    assert t.splitlines()[1] == "|---|---:|---:|"
    assert "a\\|b" in t


def test_run_once_reuses_a_finished_run_of_the_same_config(tmp_path, coarse_config):
    from leopardgeo.runner.pipeline import run_once

    cfg = _patches_only(coarse_config)
    out = run_once(cfg, tmp_path / "o")
    gpkg = out / GPKG_NAME
    first = gpkg.stat().st_mtime_ns
    assert run_once(cfg, out) == out and gpkg.stat().st_mtime_ns == first  # same config: reused
    (out / "patches.tif").unlink()  # incomplete: run again
    run_once(cfg, out)
    assert (out / "patches.tif").is_file() and gpkg.stat().st_mtime_ns != first
    second = gpkg.stat().st_mtime_ns
    other = cfg.replace(patches=type(cfg.patches)(min_area_ha=20_000))  # another config: run again
    run_once(other, out)
    assert gpkg.stat().st_mtime_ns != second
    assert json.loads((out / "manifest.json").read_text())["config"]["patches"]["min_area_ha"] == 20_000


def test_maps_show_themselves_in_jupyter(coarse_run):
    from leopardgeo.report.maps import plot_map

    _, out = coarse_run
    png = plot_map(out, "links")._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
