"""CPU seconds of one ensemble draw at the demo's resolution, stage by stage (one core).

Usage:
    python benchmarks/bench_ensemble_draw.py [--draws 4] [--cell-size 500] [--floor]

The draws of ``bench_ensemble.py`` (links + corridors + metrics + scores); each stage computed as a draw
computes it (``runner.ensemble._DRAW_COMPUTE``: the corridors without their outlines) and timed with
``time.process_time`` (CPU time, so other work on a shared machine stretches it much less than the wall time).
The suitability is timed both ways: rebuilding the RSF covariates (as each draw did before they were shared)
and from the covariates built once (as a draw does now); the two must be equal.  The first draw warms caches
and is left out of the means.

``--floor``: what the corridors' searches cannot go below.  A corridor cell of link (p, q) needs its exact cost
from p and from q, and a search from p settles every cell of a least-cost path to it, so the search from p must
expand at least the cells with d_p + d_q <= the link's reach for one of p's links (reach = least-cost distance +
width).  Per draw the script finds those cells from unpruned searches of every patch (its own floor: it knows each
link's least-cost distance before searching), counts them, and prices them at the search kernel's own speed,
measured here on the same unpruned searches (CPU ns per cell reached).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.core.executor import core_budget
from leopardgeo.kernels.costdist import prepare_search, single_source_window
from leopardgeo.runner.ensemble import _DRAW_COMPUTE, draw_configs, draw_parameters
from leopardgeo.runner.registry import STAGES, demo_config
from leopardgeo.runner.stagegraph import execute, resolve
from leopardgeo.stages.habitat import compute_suitability, rsf_inputs
from leopardgeo.stages.inputs import protected_raster
from leopardgeo.stages.patches import country_raster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--cell-size", type=float, default=500.0)
    ap.add_argument("--floor", action="store_true", help="also the floor of the corridors' searches (see above)")
    args = ap.parse_args()
    cfg = demo_config()
    cfg = cfg.replace(grid=dataclasses.replace(cfg.grid, cell_size_m=args.cell_size))
    ens = EnsembleConfig(draws=args.draws, max_resistance=(50.0, 200.0), shape_c=(4.0, 12.0),
                         coefficient_se={"forest": 0.75, "elevation_km": 0.5},
                         stages=("links", "corridors", "metrics", "scores"))  # fmt: skip
    cfg = cfg.replace(ensemble=ens)
    base, _ = execute(resolve(STAGES, cfg, targets=["inputs", "habitat", "patches"]), cfg, input_hashes={})
    cov = rsf_inputs(cfg, base["inputs"])[0]
    base["countries"] = country_raster(base["inputs"].countries, base["inputs"].grid, cfg.inputs.country_field)  # once
    base["protected"] = protected_raster(base["inputs"])  # once, as run_ensemble shares it
    by_name = {s.name: s for s in STAGES}
    print("load", os.getloadavg(), "grid", base["inputs"].grid.shape)
    total: dict[str, float] = {}
    floors: dict[str, float] = {}
    for i, c in enumerate(draw_configs(cfg, draw_parameters(cfg))):
        with core_budget(1):
            ctx = dict(base)
            t = time.process_time()
            old = by_name["habitat"].compute(c, ctx)["suitability"]
            tt = {"suitability, covariates rebuilt (before)": time.process_time() - t}
            t = time.process_time()
            ctx["suitability"] = compute_suitability(c, ctx["inputs"], covariates=cov)
            tt["suitability, covariates shared (now)"] = time.process_time() - t
            assert np.array_equal(old, ctx["suitability"], equal_nan=True)
            for name in ("resistance", "links", "corridors", "metrics", "scores"):
                t = time.process_time()
                ctx.update(_DRAW_COMPUTE.get(name, by_name[name].compute)(c, ctx))
                tt[name] = time.process_time() - t
        fl = _floor(c, ctx) if args.floor else {}
        print(i, {k: round(v, 3) for k, v in {**tt, **fl}.items()}, flush=True)
        if i:
            for k, v in fl.items():
                floors[k] = floors.get(k, 0.0) + v
            for k, v in tt.items():
                total[k] = total.get(k, 0.0) + v
    m = max(1, args.draws - 1)
    print("mean CPU s per draw:", {k: round(v / m, 3) for k, v in total.items()})
    before = sum(v for k, v in total.items() if "(now)" not in k) / m
    now = sum(v for k, v in total.items() if "(before)" not in k) / m
    print(f"per draw: before {before:.2f} s, now {now:.2f} s; load {os.getloadavg()}")
    target = sum(total.get(k, 0.0) for k in ("links", "corridors", "metrics", "scores")) / m
    print(f"links + corridors + metrics + scores: {target:.2f} CPU s per draw (target <= 0.3)")
    if args.floor:
        print("mean per draw:", {k: round(v / m, 3) for k, v in floors.items()})
        floor = (total["links"] + floors["corridor searches at the floor"]) / m
        print(f"links as measured + the corridors' searches at their floor: {floor:.3f} CPU s per draw")


def _floor(cfg, ctx) -> dict[str, float]:
    """Cells the corridors' searches must expand (millions), the kernel's CPU ns per cell, and their product (s)."""
    graph, labels = ctx["graph"], ctx["labels"]
    cell = ctx["inputs"].grid.cell_size_m
    prep = prepare_search(ctx["resistance"], labels, cell_size_m=cell, connectivity=cfg.links.connectivity)
    ends = sorted({p for e in graph.edges for p in e})
    t = time.process_time()
    cost = {p: single_source_window(prep, p, cell_size_m=cell, max_cost=1e300) for p in ends}
    spent = time.process_time() - t
    reached = sum(int(np.count_nonzero(np.isfinite(c))) for c, _, _, _ in cost.values())
    full = {}
    for p, (c, (r0, c0), _, _) in cost.items():
        full[p] = np.full(labels.shape, np.inf)
        full[p][r0 : r0 + c.shape[0], c0 : c0 + c.shape[1]] = c
    need = {p: np.zeros(labels.shape, dtype=bool) for p in ends}
    w = cfg.corridors
    for a, b in graph.edges:
        with np.errstate(invalid="ignore"):
            total = full[a] + full[b]
            lcd = float(np.nanmin(total))
            reach = lcd + (w.width_cwd if w.width_cwd is not None else w.width_fraction * lcd)
            inside = total <= reach
        need[a] |= inside
        need[b] |= inside
    cells = sum(int(np.count_nonzero(v)) for v in need.values())
    ns = spent / reached * 1e9
    return {
        "corridor cells the searches must expand (M)": cells / 1e6,
        "search kernel, CPU ns per cell": ns,
        "corridor searches at the floor": cells * ns * 1e-9,
    }


if __name__ == "__main__":
    main()
