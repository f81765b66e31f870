"""Reintroduction site evaluation on the embedded Amur study area: the sites stage of ``leopardgeo run``.

Usage:
    python benchmarks/bench_sites.py [--runs 500] [--write docs/performance.md]

Steps (the demo configuration): inputs, suitability, resistance, patches, territories, links, corridors,
metrics and corridor scores as in ``leopardgeo run`` (not timed; no circuit or barrier stage, which the sites
stage does not use), then ``pipeline.compute_sites`` on the demo's two southern Sikhote-Alin sites with the
``[sites]`` defaults (rank stability 1,000 draws, simulation of both sites with ``--runs`` runs of 50 years).
numba compiles on a first small call of each kernel, which is not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.runner import pipeline
from leopardgeo.runner.registry import demo_config
from leopardgeo.stages.simulate import SimulationParams, simulate_population


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()

    simulate_population(None, SimulationParams(density_limit=False, n_runs=2, years=2))  # compile, not timed
    cfg = demo_config()
    cfg = cfg.replace(sites=dataclasses.replace(cfg.sites, simulation_runs=args.runs))
    inputs = pipeline.load_inputs(cfg)
    suit = pipeline.compute_suitability(cfg, inputs)
    res = pipeline.compute_resistance(cfg, inputs, suit)
    labels, patches = pipeline.compute_patches(cfg, inputs, suit)
    terr = pipeline.compute_territories(cfg, inputs, suit, res, labels, patches)
    graph, _ = pipeline.compute_links(cfg, inputs, res, labels, patches)
    corr = pipeline.compute_corridors(cfg, inputs, res, labels, graph)
    pipeline.compute_metrics(cfg, inputs, graph)
    pipeline.compute_scores(cfg, graph)
    t0 = time.perf_counter()
    out = pipeline.compute_sites(cfg, inputs, suit, res, labels, patches, graph, corr, terr)
    total = time.perf_counter() - t0
    t = out.table
    rows = [
        f"| {r['name']} | {r['rank']} | {r['score']:.1f} | {r['first_share']:.1%} | {r['capacity_females']} / "
        f"{r['capacity_males']} | {r['cwd_to_source']:,.0f} | {r['eff_resistance']:.3f} | {r['dPC_gain_pct']:.2f} | "
        f"{r['persistence_25y']:.3f} | {r['persistence_50y']:.3f} |"
        for r in t.to_dict("records")
    ]
    lines = [
        "## Reintroduction sites (`bench_sites.py`)",
        "",
        (
            f"leopardgeo {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs. "
            f"`python benchmarks/bench_sites.py --runs {args.runs}`."
        ),
        "",
        (
            f"The sites stage on the demo's {len(t)} sites took {total:.1f} s: evaluation (capacity packings, one "
            f"cost-distance search from the source and one per site, a windowed site-source circuit per site, "
            f"add-patch PC / EC) {out.timings_s['evaluate']:.1f} s, simulation of every site "
            f"({args.runs} runs of 50 years on the territories stage's territories) {out.timings_s.get('simulation', 0):.1f} s; "
            "the score and 1,000 rank-stability draws take milliseconds."
        ),
        "",
        "| site | rank | score | first in | territories F / M | cwd to source | R eff (ohm) | dPC gain % | P(25 y) | P(50 y) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_sites", text)


if __name__ == "__main__":
    main()
