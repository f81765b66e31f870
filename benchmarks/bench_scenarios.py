"""A scenario rerun against a full run on the demo: what each demo scenario recomputes and what it costs.

Usage:
    python benchmarks/bench_scenarios.py [--out /tmp/bench_scenarios] [--base RUN_FOLDER] [--write docs/performance.md]

Steps: a full demo run into ``--out`` (``pipeline.run``, timed; or ``--base``, an existing demo run folder,
whose full-run time is the sum of its manifest's stage and write times), then each scenario of
``data/amur/scenarios.toml`` run on it by ``runner.interventions.rerun_scenarios`` (as ``leopardgeo scenarios``
runs them: the run's values loaded from its cache, each scenario's stages, comparison and files; each scenario
timed by itself, the load timed apart once).
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
from leopardgeo.core.data import demo_data_dir
from leopardgeo.runner import pipeline
from leopardgeo.runner.interventions import load_context, rerun_scenarios
from leopardgeo.runner.manifest import read_manifest
from leopardgeo.runner.registry import demo_config, load_config


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
    load_context(folder)
    load_s = time.perf_counter() - t0
    print(f"loading the run's values from its cache: {load_s:.1f} s", flush=True)
    t0 = time.perf_counter()
    times = rerun_scenarios(folder, scenarios=scenarios, overwrite=True)
    all_s = time.perf_counter() - t0
    rows = []
    for sc in scenarios:
        stages = [k.rsplit(".", 1)[1] for k in times if k.startswith(f"scenario.{sc.name}.")]
        rows.append((sc.name, times[f"scenario.{sc.name}"], stages))
        print(f"{sc.name}: {times[f'scenario.{sc.name}']:.1f} s; reran {', '.join(stages)}", flush=True)
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
    lines += [f"| scenario `{n}` (with its comparison and files) | {dt:.1f} | {dt / full:.0%} | {', '.join(r)} |"
              for n, dt, r in rows]  # fmt: skip
    lines.append(f"| `leopardgeo scenarios` (load + all four) | {all_s:.1f} | {all_s / full:.0%} | as above |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, "bench_scenarios", section)


if __name__ == "__main__":
    main()
