"""Resistance ensembles: seeded draws, summaries, byte-identical outputs on every executor, resume, the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from leopardgeo.cli import cli
from leopardgeo.config import dump_config
from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.core.errors import ConfigError, OutputExistsError
from leopardgeo.core.executor import get_executor
from leopardgeo.runner.ensemble import DRAWS_DIR, ENSEMBLE_FILES, draw_configs, draw_parameters, run_ensemble, summarise_links
from leopardgeo.runner.registry import demo_config

COMPARED = ("ensemble_links.csv", "ensemble_draws.csv", "corridor_frequency.tif", "ensemble.json")


def tiny_config(draws: int = 2):
    """The demo on a 4 km grid (~34 k cells): real data, a fraction of a second per draw."""
    cfg = demo_config()
    cfg = cfg.replace(grid=dataclasses.replace(cfg.grid, cell_size_m=4000.0))
    ens = EnsembleConfig(
        draws=draws,
        max_resistance=(25.0, 400.0),
        shape_c=(2.0, 16.0),
        coefficient_se={"forest": 0.75},
        stages=("links", "corridors", "metrics", "scores"),
    )
    return cfg.replace(ensemble=ens)


def test_draws_are_the_seed_sequence_children_in_a_fixed_order():
    cfg = demo_config().replace(ensemble=EnsembleConfig(draws=5, seed=9, max_resistance=(50.0, 200.0), shape_c=(4.0, 12.0)))
    p = draw_parameters(cfg)
    for i, ss in enumerate(np.random.SeedSequence(9).spawn(5)):
        rng = np.random.default_rng(ss)
        assert p.loc[i, "max_resistance"] == rng.uniform(50.0, 200.0)
        assert p.loc[i, "shape_c"] == rng.uniform(4.0, 12.0)
    fewer = draw_parameters(cfg.replace(ensemble=dataclasses.replace(cfg.ensemble, draws=3)))
    pd.testing.assert_frame_equal(fewer, p.iloc[:3])  # a draw does not depend on how many follow it
    configs = draw_configs(cfg, p)
    assert [c.resistance.max_resistance for c in configs] == p["max_resistance"].tolist()
    assert configs[0].patches == cfg.patches


def test_normal_draws_stay_in_range_and_coefficients_centre_on_the_config():
    coef = demo_config().habitat.coefficients["forest"]
    ens = EnsembleConfig(draws=400, distribution="normal", max_resistance=(50.0, 150.0), coefficient_se={"forest": 0.5})
    p = draw_parameters(demo_config().replace(ensemble=ens))
    assert p["max_resistance"].between(50, 150).all()
    assert abs(p["max_resistance"].mean() - 100) < 3  # mean of the truncated normal: the middle
    assert abs(p["coef_forest"].mean() - coef) < 4 * 0.5 / np.sqrt(400)
    assert abs(p["coef_forest"].std() - 0.5) < 0.06


def test_bad_ensemble_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="expected at least one varied parameter"):
        draw_parameters(demo_config())
    with pytest.raises(ConfigError, match=r"max_resistance: expected \[low, high\]"):
        EnsembleConfig(max_resistance=(10.0,))
    with pytest.raises(ConfigError, match="stages: expected some of"):
        EnsembleConfig(stages=("resistance",))
    with pytest.raises(ConfigError, match=r"rank_spread: expected a share of the ranked links, 0 < rank_spread <= 1"):
        EnsembleConfig(rank_spread=0.0)
    with pytest.raises(ConfigError, match="coefficient_se: expected names of habitat.coefficients"):
        draw_parameters(demo_config().replace(ensemble=EnsembleConfig(coefficient_se={"nope": 1.0})))


def test_link_summary_by_hand():
    mk = lambda rows: {"links": pd.DataFrame(rows, columns=["patch_a", "patch_b", "cwd", "score"])}  # noqa: E731
    draws = [mk([(1, 2, 10.0, 0.9), (2, 3, 40.0, 0.5)]), mk([(1, 2, 20.0, 0.4), (2, 3, 30.0, 0.6)]), mk([(1, 2, 30.0, 0.7)])]
    by_presence = summarise_links(draws, draws[0], robust_share=0.9, rare_share=0.5, rank_spread=1.0)
    t = by_presence.set_index(["patch_a", "patch_b"])
    assert t.loc[(1, 2), "share"] == 1.0 and t.loc[(1, 2), "robustness"] == "robust"
    assert t.loc[(2, 3), "share"] == pytest.approx(2 / 3) and t.loc[(2, 3), "robustness"] == "sensitive"
    # (1, 2) is in every draw but ranks 1st, 2nd, 1st of the 2, 2, 1 links ranked: its rank's 5-95 % range,
    # 1 to 1.9, spans 0.9 / 2 = 45 % of a draw's links, so with the default 25 % it depends on the resistance guess
    t = summarise_links(draws, draws[0], robust_share=0.9, rare_share=0.5).set_index(["patch_a", "patch_b"])
    assert t.loc[(1, 2), "rank_spread"] == pytest.approx(0.45)
    assert t.loc[(1, 2), "robustness"] == "sensitive"
    assert summarise_links(draws, draws[0], robust_share=0.9, rare_share=0.5, rank_spread=0.5).set_index(
        ["patch_a", "patch_b"]
    ).loc[(1, 2), "robustness"] == "robust"
    assert summarise_links(draws, draws[0], robust_share=0.9, rare_share=0.7).set_index(
        ["patch_a", "patch_b"]
    ).loc[(2, 3), "robustness"] == "rare"
    assert t.loc[(1, 2), "cwd_median"] == 20.0
    assert t.loc[(1, 2), "cwd_p05"] == pytest.approx(10.0 + 0.05 * 2 * 10.0)  # linear interpolation of 10, 20, 30
    # ranks by score within each draw (1 = highest): link (1, 2) is 1st, 2nd, 1st
    assert t.loc[(1, 2), "rank_median"] == 1.0 and t.loc[(1, 2), "rank_p95"] == pytest.approx(1.9)


# rasterio hides a NotGeoreferencedWarning of its in-memory datasets inside warnings.catch_warnings, which is not
# thread-safe: with draws on 2 threads another thread's catch_warnings can let it through (the results are unaffected)
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_outputs_are_byte_identical_on_every_executor_and_resume(tmp_path, cluster):
    cfg = tiny_config()
    folders = {}
    for name, ex in (("t1", get_executor(threads=1)), ("t2", get_executor(threads=2)), ("cluster", cluster)):
        folders[name] = tmp_path / name
        res = run_ensemble(cfg, folders[name], executor=ex)
    assert len(res.links) > 0 and res.corridor_frequency is not None
    assert 0 < np.nanmax(res.corridor_frequency) <= 1
    for f in COMPARED:
        ref = (folders["t1"] / f).read_bytes()
        assert (folders["t2"] / f).read_bytes() == ref, f
        assert (folders["cluster"] / f).read_bytes() == ref, f
    # interrupted: a draw lost and no final files; the rerun resumes from the others and gives the same bytes
    again = tmp_path / "again"
    again.mkdir()
    import shutil

    shutil.copytree(folders["t1"] / DRAWS_DIR, again / DRAWS_DIR)
    assert not list((again / DRAWS_DIR).glob("*.pkl"))  # draws are stored without pickle
    (again / DRAWS_DIR / "draw_00001.npz").unlink()
    res2 = run_ensemble(cfg, again, executor=get_executor(threads=1))
    assert res2.resumed == 1
    # the stages' times, summed over the draws run here (only the lost one), within the task's
    t = res2.timings_s
    assert t["tasks"] == 1 and {"resistance_s", "links_s", "corridors_s", "task_s"} <= set(t)
    assert 0 < t["links_s"] + t["corridors_s"] + t["resistance_s"] <= t["task_s"] <= t["draws_s"]
    assert (again / DRAWS_DIR / "draw_00001.npz").read_bytes() == (folders["t1"] / DRAWS_DIR / "draw_00001.npz").read_bytes()
    for f in COMPARED:
        assert (again / f).read_bytes() == (folders["t1"] / f).read_bytes(), f
    # a damaged draw file is not an error: that draw runs again, with the same outputs
    (again / DRAWS_DIR / "draw_00000.npz").write_bytes(b"not a draw")
    res3 = run_ensemble(cfg, again, executor=get_executor(threads=1), overwrite=True)
    assert res3.resumed == 1
    for f in COMPARED:
        assert (again / f).read_bytes() == (folders["t1"] / f).read_bytes(), f
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_ensemble(cfg, again)
    other = cfg.replace(ensemble=dataclasses.replace(cfg.ensemble, seed=1))
    for f in ENSEMBLE_FILES:
        (again / f).unlink(missing_ok=True)
    with pytest.raises(OutputExistsError, match="draws of other settings"):
        run_ensemble(other, again)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_cli_ensemble_writes_the_report_naming_robust_and_sensitive_links(tmp_path):
    cfg_path = tmp_path / "ens.toml"
    cfg_path.write_text(dump_config(tiny_config(draws=4)))
    out = tmp_path / "ens"
    r = CliRunner().invoke(cli, ["ensemble", str(cfg_path), "--out", str(out), "--threads", "2", "--no-maps"])
    assert r.exit_code == 0, r.output
    report = (out / "ensemble_report.md").read_text()
    assert "**Robust** (in at least 90 % of draws, ranked within 25 % of the links' ranks)" in report
    assert "**Depend on the resistance guess**, present in 10 % to 90 % of draws" in report
    assert "but their rank among the corridors moves across more than 25 % of the links" in report
    links = pd.read_csv(out / "ensemble_links.csv")
    assert set(links["robustness"]) <= {"robust", "sensitive", "rare"}
    import pyogrio

    layers = pyogrio.list_layers(out / "ensemble.gpkg")[:, 0].tolist()
    assert "ensemble_links" in layers and "layer_styles" in layers


def test_a_draw_that_cannot_fit_a_worker_is_refused_up_front(tmp_path, monkeypatch):
    from leopardgeo.core.errors import MemoryLimitError
    from leopardgeo.core.executor import ThreadExecutor

    ex = ThreadExecutor(2)
    monkeypatch.setattr(ex, "task_memory_bytes", lambda: 1_000_000)  # 1 MB per task; a draw needs ~4 MB
    with pytest.raises(MemoryLimitError, match=r"one ensemble draw \(.* cells; links, corridors.*memory_limit_gb"):
        run_ensemble(tiny_config(), tmp_path / "ens", executor=ex)
    assert not (tmp_path / "ens" / "ensemble_links.csv").exists()


def test_cluster_memory_per_task_is_the_worker_limit_over_its_threads(cluster):
    assert cluster.task_memory_bytes() == 2_000_000_000  # memory_limit_gb = 2, 1 thread per worker


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_current_quantiles_are_numpy_quantiles_of_the_draws_current_maps(tmp_path):
    """Per-cell current quantiles (memory-mapped stack, row blocks) against numpy.quantile of maps made apart."""
    import rasterio

    from leopardgeo.runner.ensemble import CURRENT_BANDS, current_quantiles
    from leopardgeo.runner.registry import STAGES
    from leopardgeo.runner.stagegraph import execute, resolve

    cfg = demo_config()
    cfg = cfg.replace(grid=dataclasses.replace(cfg.grid, cell_size_m=8000.0))  # ~8 k cells
    # max_resistance only: the patches do not move, so each draw's own full pipeline is an independent reference
    cfg = cfg.replace(ensemble=EnsembleConfig(draws=3, max_resistance=(25.0, 400.0), stages=("links", "circuit")))
    res = run_ensemble(cfg, tmp_path / "ens", executor=get_executor(threads=1))
    base, _ = execute(resolve(STAGES, cfg, targets=["patches"]), cfg, input_hashes={})
    by_name = {s.name: s for s in STAGES}
    maps = []
    for c in draw_configs(cfg, draw_parameters(cfg)):  # each draw through the stages' own computes, one by one
        ctx = dict(base)
        for name in ("resistance", "links", "circuit"):
            ctx.update(by_name[name].compute(c, ctx))
        maps.append(ctx["circuit"].cum_current)
    stack = np.stack(maps).astype(np.float32)
    expected = np.quantile(stack, [q for _, q in CURRENT_BANDS], axis=0).astype(np.float32)
    assert np.isfinite(expected).any() and not np.array_equal(maps[0], maps[1])  # the draws differ
    np.testing.assert_array_equal(res.current_quantiles, expected)
    with rasterio.open(tmp_path / "ens" / "current_quantiles.tif") as src:
        assert src.descriptions == ("median", "p05", "p95")
        np.testing.assert_array_equal(src.read(), expected)
    assert (tmp_path / "ens" / "current_quantiles.qml").is_file()
    from leopardgeo.report.ensemble import write_ensemble_report

    assert "**Current (circuit)** per cell" in write_ensemble_report(tmp_path / "ens", maps=False).read_text()
    # row blocks of any size give the same quantiles, NaN cells included
    stack[0, 0, 0] = np.nan
    np.testing.assert_array_equal(current_quantiles(stack, block_bytes=1), current_quantiles(stack))


def test_a_lost_worker_is_a_clear_error_and_the_ensemble_resumes_after_it(tmp_path, cluster, monkeypatch):
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker

    from leopardgeo.core.errors import LeopardGeoError
    from leopardgeo.core.executor import ThreadExecutor, WorkerLostError

    # Dask's exception for a task whose workers died, translated by the executor (real cluster, gather replaced)
    def lost(*a, **k):
        raise KilledWorker("draw-0", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)

    with monkeypatch.context() as m:
        m.setattr(cluster.client, "gather", lost)
        with pytest.raises(WorkerLostError, match="worker lost mid-run.*Rerun the same command.*memory_limit_gb"):
            cluster.map(abs, [-1, -2])
    assert issubclass(WorkerLostError, LeopardGeoError)

    class DiesAfterTwo(ThreadExecutor):  # a run whose worker is lost after two draws arrived
        def map(self, fn, items, **kw):
            on_result = kw["on_result"]
            for i, item in enumerate(list(items)[:2]):
                on_result(i, fn(*item))
            raise WorkerLostError("draw: worker lost mid-run")

    cfg = tiny_config(draws=2)
    with pytest.raises(WorkerLostError):
        run_ensemble(cfg, tmp_path / "ens", executor=DiesAfterTwo(1))
    assert not (tmp_path / "ens" / "ensemble_links.csv").exists()  # no partial outputs
    res = run_ensemble(cfg, tmp_path / "ens", executor=get_executor(threads=1))
    assert res.resumed == 1  # the base configuration and draw 0 were saved; draw 1 ran now
