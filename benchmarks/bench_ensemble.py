"""Resistance ensemble: draws on one thread vs 2 threads vs a LocalCluster of 2 worker processes, in one run.

Usage:
    python benchmarks/bench_ensemble.py [--draws 200] [--cell-size 500] [--write docs/performance.md]

The demo configuration (at ``--cell-size`` metres) with ``max_resistance`` in [50, 200], ``shape_c`` in
[4, 12] and illustrative standard errors on two RSF coefficients; each draw runs links + corridors + metrics +
scores.  Executors, in this order: 1 thread (serial), 2 threads, a ``LocalCluster`` of 2 worker processes
(1 thread each, started and warmed up before the clock starts).  Every executor writes byte-identical outputs;
the script checks that.  Parallel efficiency = serial draw time / (2 x parallel draw time).  Upstream stages
(inputs, habitat, patches) run once per ensemble and are reported apart.  The script starts as the
``leopardgeo`` command does, with ``one_malloc_arena()`` and ``keep_freed_heap()``: its threads' full-grid
arrays come from the main heap and are reused from draw to draw (the cluster's workers get the same through
their environment).

The machine may be shared: the load average is recorded before and after each executor, and so is the CPU
time the draws used (this process for threads; every worker process for the cluster), which depends much less
on other work than the wall time does.  Bytes per task: the pickled task (configuration + handles) sent to a
worker, and the pickled result returned.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import platform
import shutil
import statistics
import time
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.core.executor import ExecutorConfig, available_cores, get_executor
from leopardgeo.core.memory import keep_freed_heap, one_malloc_arena
from leopardgeo.runner.ensemble import DRAWS_DIR, run_ensemble
from leopardgeo.runner.registry import demo_config

COMPARED = ("ensemble_links.csv", "ensemble_draws.csv", "corridor_frequency.tif", "ensemble.json")
TARGET_STAGES = ("links", "corridors", "metrics", "scores")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _cpu(ex) -> float:
    """CPU seconds used so far by the processes that run the tasks."""
    if getattr(ex, "client", None) is not None:
        return float(sum(ex.client.run(time.process_time).values()))
    return time.process_time()


def _task_bytes(cfg, draws_dir: Path) -> tuple[int, float]:
    """Pickled size of one task's inputs (as the ensemble sends it) and mean pickled size of a draw's result."""
    import cloudpickle

    from leopardgeo.core.executor import Shared
    from leopardgeo.runner.cache import loads

    item = (cfg, Shared(key="shared-key"), ("links", "corridors", "metrics", "scores"), True)
    # each saved draw (npz, no pickle) read back: the result as a worker returns it, pickled
    results = [len(pickle.dumps(loads(p.read_bytes()), protocol=pickle.HIGHEST_PROTOCOL)) for p in draws_dir.glob("draw_*.npz")]
    return len(cloudpickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)), statistics.fmean(results)


def _shared_bytes(cfg) -> int:
    """Pickled size of what the ensemble shares with the workers once (inputs, suitability, patches, covariates, countries,
    protected areas)."""
    from leopardgeo.runner.registry import STAGES
    from leopardgeo.runner.stagegraph import execute, resolve
    from leopardgeo.stages.habitat import rsf_inputs
    from leopardgeo.stages.inputs import protected_raster
    from leopardgeo.stages.patches import country_raster

    ctx, _ = execute(resolve(STAGES, cfg, targets=["inputs", "habitat", "patches"]), cfg, input_hashes={})
    shared = {k: ctx[k] for k in ("inputs", "suitability", "labels", "patches")}
    shared["covariates"] = rsf_inputs(cfg, ctx["inputs"])[0]
    shared["countries"] = country_raster(ctx["inputs"].countries, ctx["inputs"].grid, cfg.inputs.country_field)
    shared["protected"] = protected_raster(ctx["inputs"])
    return len(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL))


def main() -> None:
    one_malloc_arena()  # first, as the command line does
    keep_freed_heap()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--cell-size", type=float, default=500.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_ensemble"))
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    cfg = demo_config()
    cfg = cfg.replace(grid=dataclasses.replace(cfg.grid, cell_size_m=args.cell_size))
    ens = EnsembleConfig(
        draws=args.draws,
        max_resistance=(50.0, 200.0),
        shape_c=(4.0, 12.0),
        coefficient_se={"forest": 0.75, "elevation_km": 0.5},
        stages=("links", "corridors", "metrics", "scores"),
    )
    cfg = cfg.replace(ensemble=ens)
    # warm-up: numba compiles (cached on disk) in this process before any clock starts
    warm = cfg.replace(ensemble=dataclasses.replace(ens, draws=1))
    run_ensemble(warm, args.out / "warm", executor=get_executor(threads=1))
    rows = []
    for name, ecfg in (
        ("1 thread", ExecutorConfig(threads=1)),
        ("2 threads", ExecutorConfig(threads=2)),
        ("LocalCluster, 2 processes", ExecutorConfig(workers=2, threads=1)),
    ):
        with get_executor(ecfg) as ex:
            if ecfg.workers:  # workers import leopardgeo and load the compiled kernels before the clock starts
                run_ensemble(warm, args.out / "warm_cluster", executor=ex)
            load0, cpu0 = _load(), _cpu(ex)
            t = time.perf_counter()
            res = run_ensemble(cfg, args.out / name.split(",")[0].replace(" ", "_"), executor=ex)
            total = time.perf_counter() - t
            cpu = _cpu(ex) - cpu0
        draws_s = res.timings_s["draws_s"]
        n = args.draws + 1  # + the base configuration
        # the target's stages: their share of the tasks' time (each task on one core) of the wall time per draw
        four = sum(res.timings_s.get(f"{k}_s", 0.0) for k in TARGET_STAGES) / res.timings_s["task_s"]
        rows.append((name, total, res.timings_s["upstream_s"], draws_s, draws_s / n, draws_s / n * four, cpu / n,
                     f"{load0} → {_load()}"))  # fmt: skip
        print(rows[-1], flush=True)
    folders = [args.out / r[0].split(",")[0].replace(" ", "_") for r in rows]
    identical = all((f / n).read_bytes() == (folders[0] / n).read_bytes() for f in folders[1:] for n in COMPARED)
    task_in, task_out = _task_bytes(cfg, folders[0] / DRAWS_DIR)
    shared_mb = _shared_bytes(cfg) / 1e6
    serial = rows[0][3]
    lines = [
        "## Resistance ensemble: serial vs a 2-worker LocalCluster (`benchmarks/bench_ensemble.py`)",
        "",
        (
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} "
            f"({os.cpu_count()} CPUs, {available_cores()} available to this process, shared with other work: load "
            f"averages 1/5/15 min in the table), leopardgeo {__version__}, Python {platform.python_version()}. "
            f"`python benchmarks/bench_ensemble.py --draws {args.draws} --cell-size {args.cell_size:g}`: the demo at "
            f"{args.cell_size:g} m, {args.draws} draws (+ the base configuration), each links + corridors + metrics "
            "+ scores; max_resistance in [50, 200], shape_c in [4, 12], illustrative SEs on two RSF coefficients."
        ),
        "",
        ("| executor | total (s) | upstream once (s) | draws (s) | wall per draw (s) | of it links + corridors + "
        "metrics + scores (s) | CPU per draw (s) | parallel efficiency (wall) | CPU per draw, 1 thread / this | "
        "load before → after |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, total, up, dr, per, per4, cpu, load in rows:
        eff = "—" if name == "1 thread" else f"{serial / (2 * dr):.0%}"
        cpu_eff = "—" if name == "1 thread" else f"{rows[0][6] / cpu:.0%}"
        lines.append(
            f"| {name} | {total:.1f} | {up:.1f} | {dr:.1f} | {per:.3f} | {per4:.3f} | {cpu:.3f} | {eff} | {cpu_eff} | {load} |"
        )
    lines += [
        "",
        ("Of it links + corridors + metrics + scores: the wall time per draw times those stages' share of the "
         "draws' own time (each draw runs on one core and times its stages; the rest of a draw is its resistance, "
         "its suitability when RSF coefficients vary, and packing its result). "
         "Parallel efficiency (wall) = draws time on 1 thread / (2 × draws time here): the target's measure, "
         "meaningful only on an otherwise idle machine. CPU per draw, 1 thread / this: the CPU a draw costs on "
         "1 thread over what it costs here (this process's CPU for threads, the worker processes' for the "
         "cluster); an upper bound of the wall efficiency an idle machine can give, and much less stretched by "
         "other work on a shared one."),
        "",
        (f"Outputs byte-identical across the three executors: {'yes' if identical else 'NO'}. "
        f"Per task: {task_in / 1e3:.1f} kB pickled in (the draw's configuration and the handle of the shared "
        f"upstream data), {task_out / 1e3:.1f} kB out on average (links with their paths as WKB, the corridor "
        "mask at one bit per cell)."),
        "",
        (
            f"**Strong scaling model.** A draw is one task; the upstream stages (inputs, suitability, patches, the RSF "
            f"covariates) run once and go to each worker once (`Executor.share`: scattered, then a dependency of "
            f"every task): {shared_mb:.0f} MB pickled here, once per worker, not per draw. Per task the scheduler "
            f"moves {task_in / 1e3:.0f} kB in and {task_out / 1e3:.0f} kB out (above). All pending draws go out in one "
            "map and each result is saved as it arrives (no batch barrier), so a worker is idle only at the very end "
            "(at most one draw). With `t` the CPU time of one draw, `n` draws and `w` workers, "
            f"`T(w) ≈ T_upstream + w × {shared_mb:.0f} MB / bandwidth + ⌈n / w⌉ × (t + ~5 ms scheduler overhead + "
            f"{(task_in + task_out) / 1e3:.0f} kB / bandwidth)`: with `t` of seconds and tasks of tens of kB, the "
            "efficiency stays near `t / (t + 5 ms)` until the scheduler's ~1,000 tasks/s or the client's result "
            "bandwidth binds — hundreds of workers. Each draw runs on one core (`core_budget(1)`), so `w` workers × "
            "`threads` each use `w × threads` cores and nothing more. With the circuit in `[ensemble] stages`, each "
            "result also carries the draw's float32 current map (4 B per cell, 8.8 MB at 500 m), written into a "
            "memory-mapped stack on arrival; the per-cell quantiles are taken over row blocks at the end."
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_ensemble", text)


if __name__ == "__main__":
    main()
