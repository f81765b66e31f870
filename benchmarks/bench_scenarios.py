"""A scenario rerun against a full run on the demo: what each demo scenario recomputes and what it costs.

Usage:
    python benchmarks/bench_scenarios.py [--out /tmp/bench_scenarios] [--base RUN_FOLDER] [--write docs/performance.md]

Steps: a full demo run into ``--out`` (``pipeline.run``, timed; or ``--base``, an existing demo run folder,
whose full-run time is the sum of its manifest's stage and write times), then each scenario of
``data/amur/scenarios.toml`` run on it with ``runner.scenarios.run_scenario`` (its values loaded once from the
run's cache by ``runner.interventions.load_context``, timed apart), and all four written with their comparisons
by ``runner.interventions.rerun_scenarios`` (timed as a whole, as ``leopardgeo scenarios`` runs it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.config import demo_config, load_config
from leopardgeo.core.data import demo_data_dir
from leopardgeo.runner import pipeline
from leopardgeo.runner.interventions import load_context, rerun_scenarios
from leopardgeo.runner.manifest import read_manifest
from leopardgeo.runner.scenarios import run_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_scenarios"))
    ap.add_argument("--base", type=Path, default=None, help="an existing demo run folder (skips the full run)")
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    if args.base is None:
        shutil.rmtree(args.out, ignore_errors=True)
        t0 = time.perf_counter()
        pipeline.run(demo_config(), out_dir=args.out, overwrite=True, recompute=True)
        full = time.perf_counter() - t0
        folder, how = args.out, "timed here"
    else:
        folder = args.base
        times = read_manifest(folder)["timings_s"]
        full = sum(v for k, v in times.items() if "." not in k)
        how = "the stage and write times of its manifest"
    print(f"full run: {full:.1f} s ({how})", flush=True)
    scenarios = load_config(demo_data_dir() / "scenarios.toml", over=demo_config()).scenarios
    t0 = time.perf_counter()
    config, ctx = load_context(folder)
    load_s = time.perf_counter() - t0
    print(f"loading the run's values from its cache: {load_s:.1f} s", flush=True)
    rows = []
    for sc in scenarios:
        t0 = time.perf_counter()
        run = run_scenario(config, sc, ctx, stages=pipeline.STAGES)
        dt = time.perf_counter() - t0
        rows.append((sc.name, dt, run.rerun))
        print(f"{sc.name}: {dt:.1f} s; reran {', '.join(run.rerun)}", flush=True)
    t0 = time.perf_counter()
    rerun_scenarios(folder, scenarios=scenarios, overwrite=True)
    all_s = time.perf_counter() - t0
    print(f"leopardgeo scenarios (all four, with comparisons and writing): {all_s:.1f} s", flush=True)
    lines = [
        "## Scenario reruns against a full run (`bench_scenarios.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} cores, shared with other work),",
        f"leopardgeo {__version__}; `python benchmarks/bench_scenarios.py --write docs/performance.md`. The full run is",
        f"the demo ({how}); each scenario of `data/amur/scenarios.toml` reruns only the stages its edits touch",
        "(`runner.scenarios.run_scenario`), without the stages the comparison does not read (pinch points, Barrier",
        "Mapper, cross-border, the population simulation).",
        "",
        "| step | wall s | of a full run | stages computed |",
        "| --- | ---: | ---: | --- |",
        f"| full demo run | {full:.1f} | 100% | all |",
        f"| the run's values loaded from its cache | {load_s:.1f} | {load_s / full:.0%} | none |",
    ]
    lines += [f"| scenario `{n}` | {dt:.1f} | {dt / full:.0%} | {', '.join(r)} |" for n, dt, r in rows]
    lines.append(f"| `leopardgeo scenarios` (all four, compared and written) | {all_s:.1f} | {all_s / full:.0%} | as above |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, "bench_scenarios", section)


if __name__ == "__main__":
    main()
