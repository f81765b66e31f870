"""Population simulation on the embedded Amur study area: landscape build, 1,000 runs per release site.

Usage:
    python benchmarks/bench_simulate.py [--runs 1000] [--within-km 150] [--write docs/performance.md]

Steps (the demo configuration): suitability, resistance and patches as in ``leopardgeo run``; territories
packed on the patches' cells (``pack_territories`` with its defaults); one landscape for all sites of the
``sites`` layer with Land of the Leopard NP as the source (distances kept to 50 km cost, territories within
``--within-km`` of a site or the source); then per site ``with_site`` and ``simulate_population`` with the
default parameters (3 females and 3 males released, 50 years, seed 42).  numba compiles on a small run
first, which is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from _sections import write_section

from leopardgeo import __version__
from leopardgeo.config import demo_config
from leopardgeo.runner import pipeline
from leopardgeo.stages.simulate import SimulationParams, TerritoryLandscape, simulate_population
from leopardgeo.stages.territories import pack_territories


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--within-km", type=float, default=150.0)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()

    simulate_population(None, SimulationParams(density_limit=False, n_runs=2, years=2))  # compile, not timed
    cfg = demo_config()
    inputs = pipeline.load_inputs(cfg)
    suit = pipeline.compute_suitability(cfg, inputs)
    res = pipeline.compute_resistance(cfg, inputs, suit)
    labels, _ = pipeline.compute_patches(cfg, inputs, suit)
    t0 = time.perf_counter()
    terr = pack_territories(suit, res, inputs.grid, habitat=labels > 0)
    t_pack = time.perf_counter() - t0
    sites = inputs.sites
    pas = inputs.protected_areas
    source = pas[pas["NAME"] == "Land of the Leopard"]
    t0 = time.perf_counter()
    land = TerritoryLandscape.from_territories(
        terr, res, site=sites, source=source, max_cost_m=50000, within_cost_m=args.within_km * 1000
    )
    t_build = time.perf_counter() - t0
    rows = []
    for _, site in sites.iterrows():
        t0 = time.perf_counter()
        ls = land.with_site(site.geometry, source)
        t_site = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = simulate_population(ls, SimulationParams(n_runs=args.runs, seed=42))
        t_sim = time.perf_counter() - t0
        rows.append(
            f"| {site['name']} | {int((ls.female_region == 1).sum())} / {int((ls.male_region == 1).sum())} | "
            f"{r.persistence_at(25):.3f} | {r.persistence_at(50):.3f} | {np.median(r.adults[:, 25]):g} | "
            f"{r.to_source.mean():.2f} / {r.from_source.mean():.2f} ({(r.from_source > 0).mean():.1%}) | "
            f"{t_site:.2f} | {t_sim:.2f} |"
        )
    lines = [
        "## Population simulation (`bench_simulate.py`)",
        "",
        (
            f"leopardgeo {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs. "
            f"`python benchmarks/bench_simulate.py --runs {args.runs} --within-km {args.within_km:g}`."
        ),
        "",
        (
            f"Territories packed in {t_pack:.1f} s ({int(terr.replicates['females'].iloc[0])} female, "
            f"{int(terr.replicates['males'].iloc[0])} male); landscape for all sites with Land of the Leopard NP as the "
            f"source, {land.n_female} female and {land.n_male} male territories within {args.within_km:g} km cost: "
            f"{t_build:.1f} s. Default parameters (3 F + 3 M released, {args.runs} runs of 50 years, seed 42)."
        ),
        "",
        (
            "| site | site territories F / M | P(persist 25 y) | P(persist 50 y) | median adults at 25 y "
            "| dispersers to / from the source side per run (runs with any from it) | with_site (s) | runs (s) |"
        ),
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_simulate", text)


if __name__ == "__main__":
    main()
