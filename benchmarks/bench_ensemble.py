"""Resistance ensemble: draws on one thread vs a LocalCluster of 2 worker processes, side by side in one run.

Usage:
    python benchmarks/bench_ensemble.py [--draws 200] [--cell-size 500] [--write docs/performance.md]

The demo configuration (at ``--cell-size`` metres) with ``max_resistance`` in [50, 200], ``shape_c`` in
[4, 12] and illustrative standard errors on two RSF coefficients; each draw runs links + corridors + metrics +
scores.  Executors, in this order: 1 thread (serial), 2 threads, a ``LocalCluster`` of 2 worker processes
(1 thread each, started before the clock starts).  Every executor writes byte-identical outputs; the script
checks that.  Parallel efficiency = serial draw time / (2 x parallel draw time).  Upstream stages (inputs,
habitat, patches) run once per ensemble and are reported apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import time
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.core.executor import ExecutorConfig, available_cores, get_executor
from leopardgeo.runner.ensemble import run_ensemble
from leopardgeo.runner.registry import demo_config

COMPARED = ("ensemble_links.csv", "ensemble_draws.csv", "corridor_frequency.tif", "ensemble.json")


def main() -> None:
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
            t = time.perf_counter()
            res = run_ensemble(cfg, args.out / name.split(",")[0].replace(" ", "_"), executor=ex)
            total = time.perf_counter() - t
        draws_s = res.timings_s["draws_s"]
        rows.append((name, total, res.timings_s["upstream_s"], draws_s, draws_s / (args.draws + 1)))
        print(rows[-1], flush=True)
    folders = [args.out / r[0].split(",")[0].replace(" ", "_") for r in rows]
    identical = all((f / n).read_bytes() == (folders[0] / n).read_bytes() for f in folders[1:] for n in COMPARED)
    serial = rows[0][3]
    lines = [
        "## Resistance ensemble: serial vs a 2-worker LocalCluster (`benchmarks/bench_ensemble.py`)",
        "",
        (
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} CPUs, "
            f"{available_cores()} available to this process, shared with other work), leopardgeo {__version__}, "
            f"Python {platform.python_version()}. `python benchmarks/bench_ensemble.py --draws {args.draws} "
            f"--cell-size {args.cell_size:g}`: the demo at {args.cell_size:g} m, {args.draws} draws (+ the base "
            "configuration), each links + corridors + metrics + scores; max_resistance in [50, 200], shape_c in "
            "[4, 12], illustrative SEs on two RSF coefficients."
        ),
        "",
        "| executor | total (s) | upstream once (s) | draws (s) | per draw (s) | parallel efficiency |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, total, up, dr, per in rows:
        eff = "—" if name == "1 thread" else f"{serial / (2 * dr):.0%}"
        lines.append(f"| {name} | {total:.1f} | {up:.1f} | {dr:.1f} | {per:.3f} | {eff} |")
    lines += ["", f"Outputs byte-identical across the three executors: {'yes' if identical else 'NO'}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_ensemble", text)


if __name__ == "__main__":
    main()
