"""Time the pipeline stages on the embedded Amur study area and write docs/performance.md.

Usage: python benchmarks/bench_pipeline.py [--repeat 3] [--cell-size-m 500] [--write docs/performance.md]

Each stage is timed ``repeat`` times (minimum and median reported); peak memory is the process's
maximum resident set size.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.runner import pipeline
from leopardgeo.runner.registry import GridConfig, demo_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cell-size-m", type=float, default=500.0)
    ap.add_argument("--write", type=Path, default=None, help="Markdown file to write the results into")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cfg = demo_config()
    cfg = cfg.replace(grid=GridConfig(template=cfg.grid.template, cell_size_m=args.cell_size_m))
    # the base install's solver (CHOLMOD is used instead when scikit-sparse is installed)
    cfg = cfg.replace(circuit=dataclasses.replace(cfg.circuit, solver="amg"))
    stage_times: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}

    def timed(name, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        times.setdefault(name, []).append(time.perf_counter() - t)
        return out

    for _ in range(args.repeat):
        inputs = timed("load_inputs (read + warp)", pipeline.load_inputs, cfg)
        suit = timed("compute_suitability (RSF)", pipeline.compute_suitability, cfg, inputs)
        timed("compute_resistance", pipeline.compute_resistance, cfg, inputs, suit)
        timed("compute_patches", pipeline.compute_patches, cfg, inputs, suit)
        with tempfile.TemporaryDirectory() as tmp:
            result = timed("run (all stages + writing)", lambda: pipeline.run(cfg, out_dir=Path(tmp) / "o"))
        for stage, sec in result.timings_s.items():
            stage_times.setdefault(f"run: {stage}", []).append(sec)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    grid = inputs.grid
    lines = [
        "## Pipeline stages",
        "",
        f"Measured {dt.date.today().isoformat()} with leopardgeo {__version__} by `python benchmarks/bench_pipeline.py`",
        (
            f"on {platform.machine()} / {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}."
        ),
        "",
        (
            f"Embedded Amur study area ({grid.cell_size_m:g} m cells, {grid.height} × {grid.width} "
            f"= {grid.height * grid.width / 1e6:.2f} M cells), {args.repeat} repeats"
        ),
        "",
        "| stage | min (s) | median (s) |",
        "| --- | ---: | ---: |",
    ]
    for name, ts in (times | stage_times).items():
        lines.append(f"| {name} | {min(ts):.2f} | {statistics.median(ts):.2f} |")
    circ = result.circuit
    if circ is not None:
        lines += [
            "",
            (
                f"The circuit stage ({circ.solver}, all {len(circ.resistances)} pairs of {len(result.patches)} patches, "
                f"{len(circ.iterations)} unit solves of {circ.iterations and max(circ.iterations)} CG iterations at most) "
                "is most of the run."
            ),
        ]
    lines += ["", f"Peak resident memory of the benchmark process: {rss_mb:,.0f} MB.", ""]
    lines += [
        "No peer tool builds habitat, resistance and patches this way end to end, so these stages have no",
        "side-by-side ratio; peers are timed against the cost-distance and circuit stages.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_pipeline", text)


if __name__ == "__main__":
    main()
