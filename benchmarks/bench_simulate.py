"""Population simulation on the embedded Amur study area: landscape build, 1,000 runs per release site.

Usage:
    python benchmarks/bench_simulate.py [--runs 1000] [--years 100] [--within-km 150] [--write docs/performance.md]

Steps (the demo configuration): suitability, resistance and patches as in ``leopardgeo run``; territories
packed on the patches' cells (``pack_territories`` with its defaults); one landscape for all sites of the
``sites`` layer with Land of the Leopard NP as the source (distances kept to 50 km cost, territories within
``--within-km`` of a site or the source); then per site ``with_site`` and ``simulate_population`` with the
default parameters (3 females and 3 males released, seed 42), timed three ways in the same run: the
demographic model as it was before genetics (``genetics=False, max_age=None``), the full model (genetics,
pedigree, inbreeding depression, maximum age), and the full model without the corridor.  numba compiles on
a small run first, which is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from _sections import write_section

from leopardgeo import __version__
from leopardgeo.runner import pipeline
from leopardgeo.runner.registry import demo_config
from leopardgeo.stages.simulate import SimulationParams, TerritoryLandscape, simulate_population
from leopardgeo.stages.territories import pack_territories


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--years", type=int, default=100)
    ap.add_argument("--within-km", type=float, default=150.0)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()

    simulate_population(None, SimulationParams(density_limit=False, n_runs=2, years=2))  # compile, not timed
    simulate_population(None, SimulationParams(density_limit=False, n_runs=2, years=2, genetics=False))
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
        base = SimulationParams(n_runs=args.runs, years=args.years, seed=42)
        timed = {}
        b0 = replace(base, lethal_equivalents=0.0)
        for key, lsx, p in (
            ("demography", ls, replace(base, genetics=False, max_age=None)),
            ("full", ls, base),
            ("b0", ls, b0),
            ("b0_no_corridor", ls.without_corridor(), b0),
        ):
            t0 = time.perf_counter()
            timed[key] = (simulate_population(lsx, p), time.perf_counter() - t0)
        rd, t_demo = timed["demography"]
        r, t_full = timed["full"]
        rb, t_b0 = timed["b0"]
        rn, t_nc = timed["b0_no_corridor"]
        y1 = args.years
        hb = {y: rb.horizon(y) for y in (50, y1)}
        hn = rn.horizon(y1)
        g = rb.genetics_summary()
        rows.append(
            f"| {site['name']} | {int((ls.female_region == 1).sum())} / {int((ls.male_region == 1).sum())} | "
            f"{rd.persistence_at(50):.3f} | {r.persistence_at(25):.3f} / {r.persistence_at(50):.3f} | "
            f"{rb.persistence_at(50):.3f} / {rb.persistence_at(y1):.3f} | "
            f"{_f(hb[50]['heterozygosity_retained']['median'])} / {_f(hb[y1]['heterozygosity_retained']['median'])} | "
            f"{_f(hb[y1]['inbreeding']['median'])} | {rn.persistence_at(y1):.3f} / "
            f"{_f(hn['heterozygosity_retained']['median'])} | {_f(g['migrants_per_generation'])} | {t_site:.2f} | "
            f"{t_demo:.2f} | {t_full:.2f} ({t_full / t_demo:.2f}x) | {t_b0:.2f} ({t_b0 / t_demo:.2f}x) | {t_nc:.2f} |"
        )
    lines = [
        "## Population simulation (`bench_simulate.py`)",
        "",
        (
            f"leopardgeo {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}. "
            f"`python benchmarks/bench_simulate.py --runs {args.runs} --years {args.years} --within-km {args.within_km:g}`."
        ),
        "",
        (
            f"Territories packed in {t_pack:.1f} s ({int(terr.replicates['females'].iloc[0])} female, "
            f"{int(terr.replicates['males'].iloc[0])} male); landscape for all sites with Land of the Leopard NP as the "
            f"source, {land.n_female} female and {land.n_male} male territories within {args.within_km:g} km cost: "
            f"{t_build:.1f} s. Default parameters (3 F + 3 M released, {args.runs} runs of {args.years} years, seed 42). "
            "*demography*: the model without genetics and maximum age (as before genetics); *full*: the defaults "
            "(12 neutral loci, pedigree, 6.29 lethal equivalents on first-year survival, maximum age 20); *B = 0*: the "
            "same without inbreeding depression (the cost of the genetics itself); *no corridor*: B = 0 with no "
            "movement between the site's and the source's side. H retained: median H_t / H_0 of the persisting runs; "
            "F: median mean pedigree inbreeding of the persisting runs. The machine is shared (other work running), "
            "so times are upper bounds; ratios are within one run."
        ),
        "",
        (
            f"| site | site territories F / M | P(50 y) demography | P(25 y) / P(50 y) full | P(50 y) / P({args.years} y) "
            f"B = 0 | H retained 50 / {args.years} y, B = 0 | F at {args.years} y, B = 0 | P({args.years} y) / H retained, "
            "B = 0, no corridor | migrants / generation, B = 0 | with_site (s) | demography (s) | full (s, ratio) "
            "| B = 0 (s, ratio) | no corridor (s) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "bench_simulate", text)


if __name__ == "__main__":
    main()
