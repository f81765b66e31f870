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
from leopardgeo.runner.stagegraph import CACHE_DIR, Stage, execute, resolve, stage_hashes


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
    assert _changed(cfg, other) == ["scores", "sites"]


def test_a_sites_change_touches_only_the_sites():
    cfg = demo_config()
    other = cfg.replace(sites=dataclasses.replace(cfg.sites, rank_stability_draws=cfg.sites.rank_stability_draws + 1))
    assert _changed(cfg, other) == ["sites"]


def test_a_link_rule_change_recomputes_links_and_everything_downstream():
    cfg = demo_config()
    other = cfg.replace(links=dataclasses.replace(cfg.links, rule=LinkRule.CUTOFF, max_cwd=1e9))
    assert _changed(cfg, other) == sorted(
        ["links", "corridors", "circuit", "pinch_points", "barriers", "metrics", "crossborder", "scores", "sites"]
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
        trusted=[f"{CACHE_DIR}/{s.name}.pkl" for s in stages],
        save=lambda name, data: saved.__setitem__(name, data),
    )
    for name, data in saved.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return ctx, rep, {"stages": rep.manifest(), "cache_sha256": rep.cache_sha256}


def test_execute_reuses_unchanged_stages_and_restores_mutated_values(tmp_path):
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
    (tmp_path / CACHE_DIR / "a.pkl").write_bytes(b"not the cache")
    log.clear()
    ctx, rep, _ = _run(stages, other, tmp_path, manifest)
    assert rep.reused == ["box"] and log == ["a", "b"]


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
    assert set(third.reused) == set(again.reused) - {"scores", "sites"}
    # the files of reused stages are carried over (the same files, not written again); the sites' are new
    assert all((out / n).stat().st_ino == inode[n] for n in ("suitability.tif", "suitability.qml", "metrics.json"))
    assert (out / "sites.csv").stat().st_ino != inode["sites.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {n for n, s in manifest["stages"].items() if not s["reused"]} == {"scores", "sites"}
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
    cfg2 = cfg.replace(links=dataclasses.replace(cfg.links, rule=LinkRule.CUTOFF, max_cwd=1e9))
    third = run(cfg2, out_dir=out, overwrite=True, targets=("territories",))
    recomputed = [n for n in everything if n not in third.reused]
    downstream = ["links", "corridors", "circuit", "pinch_points", "barriers", "metrics", "crossborder", "scores", "sites"]
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
