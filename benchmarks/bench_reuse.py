"""Reruns into a run folder: how much of a full demo run a change of one section costs, and what is recomputed.

Usage:
    python benchmarks/bench_reuse.py [--out /tmp/bench_reuse] [--write docs/performance.md]

Steps, each a ``pipeline.run`` of the demo configuration into the same folder with ``overwrite=True``:
a full run (``recompute=True``), a rerun after changing only ``[score]`` weights, one after changing only
``[sites]`` (the rank-stability draws) and one after changing ``[links] rule`` (planar -> cutoff). Each rerun
reuses the stages whose hash did not change; the table lists what was recomputed. numba compiles during the
full run (the first in the process), which is then timed as a cold run; a second full run is timed too.
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
from leopardgeo.config import LinkRule
from leopardgeo.runner import pipeline
from leopardgeo.runner.registry import demo_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_reuse"))
    ap.add_argument("--write", type=Path, default=None)
    ap.add_argument("--no-cold", action="store_true", help="skip the first (cold) full run when numba's cache is warm")
    ap.add_argument("--no-links", action="store_true", help="skip the `[links] rule` rerun (the longest step)")
    args = ap.parse_args()
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    cfg = demo_config()
    score = cfg.replace(score=dataclasses.replace(cfg.score, weight_cwd=cfg.score.weight_cwd + 1.0))
    sites = score.replace(sites=dataclasses.replace(cfg.sites, rank_stability_draws=cfg.sites.rank_stability_draws + 1))
    links = sites.replace(links=dataclasses.replace(cfg.links, rule=LinkRule.CUTOFF))
    steps = [
        ("full run, cold (numba compiles)", cfg, True),
        ("full run", cfg, True),
        ("rerun: only `[score]` weights changed", score, False),
        ("rerun: only `[sites]` changed", sites, False),
        ("rerun: `[links] rule` planar -> cutoff", links, False),
    ]
    if args.no_cold:
        steps = steps[1:]
    if args.no_links:
        steps = steps[:-1]
    rows = []
    full = None
    for label, c, recompute in steps:
        t0 = time.perf_counter()
        result = pipeline.run(c, out_dir=out, overwrite=True, recompute=recompute)
        dt = time.perf_counter() - t0
        if label == "full run":
            full = dt
        computed = [n for n in result.timings_s if n not in result.reused and n in {s.name for s in pipeline.STAGES}]
        rows.append((label, dt, computed))
        stage_s = sum(result.timings_s.get(n, 0.0) for n in computed)
        print(
            f"{label}: {dt:.1f} s; recomputed {', '.join(computed)} ({stage_s:.1f} s); "
            f"write {result.timings_s.get('write', 0.0):.1f} s",
            flush=True,
        )
    assert full is not None
    lines = [
        "## Reruns into a run folder (`bench_reuse.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} cores, shared with other work),",
        f"leopardgeo {__version__}; `python benchmarks/bench_reuse.py --write docs/performance.md`. Each step is a",
        "`pipeline.run` of the demo into the same folder with `overwrite=True`; a rerun loads the stages whose hash",
        "(config sections, upstream stages, input files) is unchanged from the run's cache and recomputes the rest.",
        "The files of a reused stage are carried over from the earlier run; the GeoPackage is written again.",
        "",
        "| step | wall s | of a full run | recomputed stages |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [f"| {label} | {dt:.1f} | {dt / full:.0%} | {', '.join(c)} |" for label, dt, c in rows]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, "bench_reuse", section)


if __name__ == "__main__":
    main()
