"""The stage graph: resolution for any targets, per-stage hashes, reuse of an earlier run, nothing stale."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from leopardgeo.config import LinkRule
from leopardgeo.core.errors import ConfigError
from leopardgeo.runner.pipeline import STAGES
from leopardgeo.runner.registry import demo_config
from leopardgeo.runner.stagegraph import CACHE_DIR, CACHE_SUFFIX, Stage, execute, resolve, stage_hashes

#: The stages of the reintroduction sites (their evaluation, simulation and ranking).
SITES = ("site_evaluation", "site_simulation", "sites")


def _names(order):
    return [s.name for s in order]


def test_resolve_orders_every_stage_after_its_needs():
    cfg = demo_config()
    order = resolve(STAGES, cfg)
    pos = {s.name: i for i, s in enumerate(order)}
    for s in order:
        for n in (*s.needs, *s.uses):
            if n in pos:
                assert pos[n] < pos[s.name], f"{s.name} runs before {n}"
    assert _names(resolve(STAGES, cfg, ["links"])) == ["inputs", "habitat", "resistance", "patches", "links"]


def test_resolve_drops_disabled_stages_and_what_needs_them():
    cfg = demo_config()
    cfg = cfg.replace(links=dataclasses.replace(cfg.links, enabled=False))
    names = _names(resolve(STAGES, cfg))
    for gone in ("links", "corridors", "pinch_points", "barriers", "metrics", "crossborder", "scores"):
        assert gone not in names
    assert "circuit" in names  # the circuit runs on the patches alone


def test_resolve_refuses_unknown_targets_and_circles():
    cfg = demo_config()
    with pytest.raises(ConfigError, match="unknown stage"):
        resolve(STAGES, cfg, ["link"])
    a = Stage("a", "a", lambda c, x: {}, needs=("b",))
    b = Stage("b", "b", lambda c, x: {}, needs=("a",))
    with pytest.raises(ConfigError, match="circle"):
        resolve([a, b], cfg)


def _changed(cfg, other, inputs=None, inputs2=None):
    order = resolve(STAGES, cfg)
    h1 = stage_hashes(order, cfg, inputs or {})
    h2 = stage_hashes(resolve(STAGES, other), other, inputs2 or inputs or {})
    return sorted(n for n in h1 if h1[n] != h2.get(n))


def test_a_score_change_touches_only_the_scores_and_the_sites():
    cfg = demo_config()
    other = cfg.replace(score=dataclasses.replace(cfg.score, weight_cwd=cfg.score.weight_cwd + 1))
    assert _changed(cfg, other) == ["scores", "site_evaluation", "site_simulation", "sites"]


def test_a_sites_change_touches_only_the_sites():
    cfg = demo_config()
    other = cfg.replace(sites=dataclasses.replace(cfg.sites, rank_stability_draws=cfg.sites.rank_stability_draws + 1))
    assert _changed(cfg, other) == ["sites"]  # the ranking alone: the evaluation and the simulation are reused


def test_a_sites_change_touches_the_parts_of_the_sites_that_read_the_key():
    cfg = demo_config()
    sc = cfg.sites
    weights = {**sc.weights, "capacity_females": sc.weights["capacity_females"] + 1}
    assert _changed(cfg, cfg.replace(sites=dataclasses.replace(sc, weights=weights))) == ["site_simulation", "sites"]
    runs = dataclasses.replace(sc, simulation_runs=sc.simulation_runs + 1)
    assert _changed(cfg, cfg.replace(sites=runs)) == ["site_simulation", "sites"]
    reps = dataclasses.replace(sc, capacity_replicates=sc.capacity_replicates + 1)
    assert _changed(cfg, cfg.replace(sites=reps)) == ["site_evaluation", "site_simulation", "sites"]


def test_a_link_rule_change_recomputes_links_and_everything_downstream():
    cfg = demo_config()
    other = cfg.replace(links=dataclasses.replace(cfg.links, rule=LinkRule.CUTOFF, max_cwd=1e9))
    assert _changed(cfg, other) == sorted(
        ["links", "corridors", "circuit", "pinch_points", "barriers", "metrics", "crossborder", "scores", *SITES]
    )


def test_an_input_file_change_recomputes_everything():
    cfg = demo_config()
    assert _changed(cfg, cfg, {"/a.tif": "1"}, {"/a.tif": "2"}) == sorted(s.name for s in resolve(STAGES, cfg))


def _toy(log):
    def comp(name, value):
        def f(cfg, ctx):
            log.append(name)
            out = {name: value(ctx)}
            if "box" in ctx and name != "box":
                ctx["box"].append(name)  # mutates an upstream value in place
            return out

        return f

    return [
        Stage("box", "box", comp("box", lambda c: []), produces=("box",), sections=("links",)),
        Stage("a", "a", comp("a", lambda c: 1), needs=("box",), produces=("a",), mutates=("box",), sections=("score",)),
        Stage("b", "b", comp("b", lambda c: c["a"] + 1), needs=("a",), produces=("b",), mutates=("box",), sections=("sites",)),
    ]


def _run(stages, cfg, folder, previous):
    saved = {}
    ctx, rep = execute(
        resolve(stages, cfg),
        cfg,
        input_hashes={},
        previous=previous,
        folder=folder,
        trusted=[f"{CACHE_DIR}/{s.name}{CACHE_SUFFIX}" for s in stages],
        save=lambda name, data: saved.__setitem__(name, data),
    )
    for name, data in saved.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return ctx, rep, {"stages": rep.manifest(), "cache_sha256": rep.cache_sha256}


def test_execute_reuses_unchanged_stages_and_restores_mutated_values(tmp_path, caplog):
    cfg = demo_config()
    log = []
    stages = _toy(log)
    ctx, rep, manifest = _run(stages, cfg, tmp_path, None)
    assert rep.reused == [] and log == ["box", "a", "b"] and ctx["box"] == ["a", "b"]
    log.clear()
    ctx, rep, manifest = _run(stages, cfg, tmp_path, manifest)
    assert rep.reused == ["box", "a", "b"] and log == []
    assert ctx["box"] == ["a", "b"] and ctx["b"] == 2
    # [sites] changed: only b recomputes, on the box as a left it
    log.clear()
    other = cfg.replace(sites=dataclasses.replace(cfg.sites, rank_stability_draws=7))
    ctx, rep, manifest = _run(stages, other, tmp_path, manifest)
    assert rep.reused == ["box", "a"] and log == ["b"] and ctx["box"] == ["a", "b"]
    # a cache that does not match its manifest is recomputed, with everything after it
    (tmp_path / CACHE_DIR / f"a{CACHE_SUFFIX}").write_bytes(b"not the cache")
    log.clear()
    ctx, rep, manifest = _run(stages, other, tmp_path, manifest)
    assert rep.reused == ["box"] and log == ["a", "b"]
    # a damaged or foreign cache that matches its manifest (a pickle, say) is computed again with a note, never loaded
    import hashlib
    import pickle

    bad = pickle.dumps({"a": 1})
    (tmp_path / CACHE_DIR / f"a{CACHE_SUFFIX}").write_bytes(bad)
    manifest["cache_sha256"][f"{CACHE_DIR}/a{CACHE_SUFFIX}"] = hashlib.sha256(bad).hexdigest()
    log.clear()
    with caplog.at_level("WARNING", logger="leopardgeo.runner.stagegraph"):
        ctx, rep, manifest = _run(stages, other, tmp_path, manifest)
    assert rep.reused == ["box"] and log == ["a", "b"] and "not a stage cache file" in caplog.text
    # a value the cache cannot store: the stage is not cached (a note) and a later run computes it again
    odd = [*stages[:2], Stage("b", "b", lambda c, x: {"b": object()}, needs=("a",), produces=("b",), sections=("links",))]
    with caplog.at_level("WARNING", logger="leopardgeo.runner.stagegraph"):
        ctx, rep, manifest = _run(odd, other, tmp_path, manifest)
    assert "does not store a builtins.object" in caplog.text and f"{CACHE_DIR}/b{CACHE_SUFFIX}" not in manifest["cache_sha256"]
    _, rep, _ = _run(odd, other, tmp_path, manifest)
    assert rep.reused == ["box", "a"] and rep.computed == ["b"]


def test_rerun_of_a_run_folder_reuses_and_writes_identical_files(coarse_run, tmp_path):
    from leopardgeo.runner.pipeline import run

    result, folder = coarse_run
    out = tmp_path / "out"
    shutil.copytree(folder, out)
    (out / "my_notes.txt").write_text("mine")
    again = run(result.config, out_dir=out, overwrite=True)
    assert again.reused == _names(resolve(STAGES, result.config))
    skip = {"manifest.json"}
    for f in folder.rglob("*"):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and rel not in skip:
            assert (out / rel).read_bytes() == f.read_bytes(), f"{rel} differs between two runs of one configuration"
    assert (out / "my_notes.txt").read_text() == "mine"

    # only [score] changed: the scores and the sites are recomputed, the links layer gets the new scores
    cfg = result.config
    cfg2 = cfg.replace(score=dataclasses.replace(cfg.score, weight_cwd=0.0, weight_width=1.0))
    inode = {n: (out / n).stat().st_ino for n in ("suitability.tif", "suitability.qml", "metrics.json", "sites.csv")}
    third = run(cfg2, out_dir=out, overwrite=True)
    assert set(third.reused) == set(again.reused) - {"scores", *SITES}
    # the files of reused stages are carried over (the same files, not written again); the sites' are new
    assert all((out / n).stat().st_ino == inode[n] for n in ("suitability.tif", "suitability.qml", "metrics.json"))
    assert (out / "sites.csv").stat().st_ino != inode["sites.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {n for n, s in manifest["stages"].items() if not s["reused"]} == {"scores", *SITES} & set(manifest["stages"])
    assert third.graph is not None
    assert [d["score"] for *_, d in third.graph.edges(data=True)] != [d["score"] for *_, d in result.graph.edges(data=True)]
    assert (out / "leopardgeo.gpkg").read_bytes() != (folder / "leopardgeo.gpkg").read_bytes()


def test_targets_bring_what_they_need_and_uses_not_the_stages_they_only_follow():
    cfg = demo_config()
    assert _names(resolve(STAGES, cfg, ["territories"])) == ["inputs", "habitat", "resistance", "patches", "territories"]
    xb = _names(resolve(STAGES, cfg, ["crossborder", "scores"]))
    assert "barriers" not in xb and "sites" not in xb
    assert {"links", "corridors", "circuit", "metrics", "territories", "pinch_points"} <= set(xb)
    everything = _names(resolve(STAGES, cfg))
    # a stage that runs `after` another runs after it whenever both run
    for order in (xb, everything):
        pos = {n: i for i, n in enumerate(order)}
        for s in STAGES:
            for n in s.after:
                if n in pos and s.name in pos:
                    assert pos[n] < pos[s.name], f"{s.name} runs before {n}"
    a = Stage("a", "a", lambda c, x: {})
    b = Stage("b", "b", lambda c, x: {}, after=("c",))
    c = Stage("c", "c", lambda c, x: {}, needs=("b",))
    with pytest.raises(ConfigError, match="circle"):
        resolve([a, b, c], cfg)


def test_a_stage_command_into_a_run_folder_keeps_every_stage_and_recomputes_only_what_changed(coarse_run, tmp_path):
    from leopardgeo.runner.pipeline import run

    result, folder = coarse_run
    out = tmp_path / "out"
    shutil.copytree(folder, out)
    everything = _names(resolve(STAGES, result.config))
    # the territories target into a finished run: nothing changed, nothing is recomputed, nothing is dropped
    again = run(result.config, out_dir=out, overwrite=True, targets=("territories",))
    assert again.reused == everything
    assert sorted(json.loads((out / "manifest.json").read_text())["stages"]) == sorted(everything)
    # [links] rule changed, target territories: the links and everything downstream of them are recomputed in the same
    # commit (nothing left stale); the stages above the links and the territories are loaded, not recomputed
    cfg = result.config
    cfg2 = cfg.replace(links=dataclasses.replace(cfg.links, rule=LinkRule.CUTOFF, max_cwd=1e6))
    third = run(cfg2, out_dir=out, overwrite=True, targets=("territories",))
    recomputed = [n for n in everything if n not in third.reused]
    downstream = ["links", "corridors", "circuit", "pinch_points", "barriers", "metrics", "crossborder", "scores", *SITES]
    assert recomputed == downstream
    assert third.reused == ["inputs", "habitat", "resistance", "patches", "omniscape", "territories"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["links"]["reused"] is False and manifest["stages"]["territories"]["reused"] is True
    assert third.graph is not None and third.graph.number_of_edges() != result.graph.number_of_edges()


def test_a_stage_command_into_a_new_folder_runs_only_what_it_needs(coarse_config, tmp_path):
    from leopardgeo.runner.pipeline import output_files, run

    cfg = coarse_config.replace(sites=dataclasses.replace(coarse_config.sites, enabled=False))
    res = run(cfg, out_dir=tmp_path / "t", targets=("territories",))
    assert list(res.timings_s)[:5] == ["inputs", "habitat", "resistance", "patches", "territories"]
    assert res.graph is None and res.territories is not None
    written = {p.name for p in (tmp_path / "t").iterdir()}
    assert "capacity.csv" in written and "cwd.tif" not in written
    assert written >= set(output_files(cfg, ["territories"]))
    with pytest.raises(ConfigError, match="unknown stage"):
        run(cfg, out_dir=tmp_path / "u", targets=("territory",))


def test_stage_hashes_change_with_the_package_version_and_library_versions(monkeypatch):
    from leopardgeo.runner import stagegraph

    cfg = demo_config()
    order = resolve(STAGES, cfg)
    before = stage_hashes(order, cfg, {})
    versions = stagegraph.software_versions()
    assert versions["leopardgeo"] and "numpy" in versions
    monkeypatch.setattr(stagegraph, "software_versions", lambda: {**versions, "leopardgeo": versions["leopardgeo"] + ".1"})
    after = stage_hashes(order, cfg, {})
    assert all(before[n] != after[n] for n in before)  # an upgraded leopardgeo reuses nothing of an older run


def test_code_digest_follows_the_imports_of_a_stage(monkeypatch, tmp_path):
    from leopardgeo.runner import stagegraph

    root = tmp_path / "leopardgeo"
    for name, text in {
        "__init__.py": "",
        "stages/__init__.py": "",
        "stages/a.py": "from leopardgeo.kernels import k\nimport numpy as np\n\ndef f():\n    from ..core import c as _c\n",
        "stages/b.py": "x = 1\n",
        "kernels/__init__.py": "",
        "kernels/k.py": "y = 1\n",
        "core/__init__.py": "",
        "core/c.py": "z = 1\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)

    def digest():
        for f in (stagegraph._source, stagegraph._imported, stagegraph.code_digest):
            f.cache_clear()
        return stagegraph.code_digest("leopardgeo.stages.a")

    monkeypatch.setattr(stagegraph, "_ROOT", root)
    try:
        assert stagegraph._imported("leopardgeo.stages.a") == {
            "leopardgeo.kernels", "leopardgeo.kernels.k", "leopardgeo.core", "leopardgeo.core.c"
        }  # fmt: skip
        d0 = digest()
        (root / "stages/b.py").write_text("x = 2\n")  # not imported by a
        assert digest() == d0
        (root / "kernels/k.py").write_text("y = 2\n")  # imported
        d1 = digest()
        assert d1 != d0
        (root / "core/c.py").write_text("z = 2\n")  # imported inside a function, relative
        assert digest() != d1
    finally:
        monkeypatch.undo()
        for f in (stagegraph._source, stagegraph._imported, stagegraph.code_digest):
            f.cache_clear()


def test_the_stage_cache_stores_every_kind_of_stage_value_and_runs_no_code(tmp_path):
    import networkx as nx
    import numpy as np
    import pandas as pd
    from pandas.testing import assert_frame_equal

    import geopandas as gpd
    import shapely
    from affine import Affine
    from pyproj import CRS

    from leopardgeo.runner import cache
    from leopardgeo.stages.site_candidates import SourceRegion

    gdf = gpd.GeoDataFrame(
        {
            "name": pd.array(["a", None, "c"], dtype="str"),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "kind": pd.Categorical(["x", "y", "x"]),
            "f": [0.5, np.nan, np.inf],
            "obj": [{"k": 1}, [1, 2], None],
            "geometry": [shapely.Point(0, 1), None, shapely.box(0, 0, 1, 1)],
        },
        crs="EPSG:32652",
        index=pd.Index([10, 20, 30], name="id"),
    )
    g = nx.MultiGraph(kind="links")
    g.add_edge((1, 2), "b", key=7, path=np.arange(4, dtype=np.int32), geom=shapely.LineString([(0, 0), (1, 1)]))
    shared = np.ones(3)
    region = SourceRegion(
        name="LotL", kind="patch", patch_ids=(1, 2), mask=np.eye(2, dtype=bool), geometry=shapely.box(0, 0, 1, 1)
    )
    value = {
        "gdf": gdf, "graph": g, "a": shared, "b": shared, "region": region, "rule": LinkRule.CUTOFF,
        "t": Affine(500.0, 0, 1e6, 0, -500.0, 5e6), "crs": CRS.from_epsg(3857), "s": slice(1, None, 2),
        "big": 2**70, "nan": float("nan"), "np": np.float32(1.5), 3: (None, b"\x00\xff", frozenset({1})),
    }  # fmt: skip
    back = cache.loads(cache.dumps(value))
    assert_frame_equal(pd.DataFrame(back["gdf"].drop(columns="geometry")), pd.DataFrame(gdf.drop(columns="geometry")))
    assert back["gdf"].crs == gdf.crs and back["gdf"].geometry.name == "geometry"
    geoms = back["gdf"].geometry
    assert geoms.iloc[0].equals(gdf.geometry.iloc[0]) and geoms.iloc[1] is None and geoms.iloc[2].equals(gdf.geometry.iloc[2])
    e = next(iter(back["graph"].edges(keys=True, data=True)))
    assert isinstance(back["graph"], nx.MultiGraph) and back["graph"].graph == {"kind": "links"}
    assert (
        e[:3] == ((1, 2), "b", 7) and e[3]["path"].dtype == np.int32 and e[3]["geom"].equals(shapely.LineString([(0, 0), (1, 1)]))
    )
    assert back["a"] is back["b"] and np.array_equal(back["a"], shared)
    assert isinstance(back["region"], SourceRegion) and back["region"].patch_ids == (1, 2)
    assert np.array_equal(back["region"].mask, region.mask)
    assert back["rule"] is LinkRule.CUTOFF and back["t"] == value["t"] and back["crs"] == value["crs"]
    assert back["s"] == slice(1, None, 2) and back["big"] == 2**70 and np.isnan(back["nan"])
    assert back["np"].dtype == np.float32 and back[3] == (None, b"\x00\xff", frozenset({1}))

    # only leopardgeo's own dataclasses and enums are made from a file; anything else is refused, never run
    import io
    import json

    def forged(node):
        tree = json.dumps({"format": cache.FORMAT, "value": node}).encode()
        buf = io.BytesIO()
        np.savez(buf, __tree__=np.frombuffer(tree, dtype=np.uint8))
        return buf.getvalue()

    marker = tmp_path / "ran"
    for node in (
        {"t": "dc", "n": 0, "cls": "subprocess:Popen", "f": {}},
        {"t": "enum", "cls": "os:system", "v": f"touch {marker}"},
        {"t": "dc", "n": 0, "cls": "leopardgeo.runner.cache:dumps", "f": {}},
    ):
        with pytest.raises(cache.CacheFormatError, match="not a stage cache file"):
            cache.loads(forged(node))
    buf = io.BytesIO()
    np.savez(buf, __tree__=np.zeros(2, np.uint8), a0=np.array([object()], dtype=object))  # a pickled array inside
    with pytest.raises(cache.CacheFormatError):
        cache.loads(buf.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize("targets", [("links",), ("territories",), ("crossborder", "scores"), ("sites",)])
def test_a_stage_command_runs_exactly_the_ancestors_of_its_targets(targets):
    # the stage commands' targets (cli: links, territories, crossborder, sites) into a new folder: the stages they
    # need or use, and theirs, found here by a plain walk of the declarations; nothing downstream, nothing beside
    cfg = demo_config()
    by_name = {s.name: s for s in STAGES}
    enabled = {s.name for s in resolve(STAGES, cfg)}
    wanted, todo = set(), list(targets)
    while todo:
        n = todo.pop()
        if n in enabled and n not in wanted:
            wanted.add(n)
            todo += [*by_name[n].needs, *by_name[n].uses]
    assert set(_names(resolve(STAGES, cfg, targets))) == wanted
    assert not {"omniscape", "barriers"} & wanted  # no target needs them
