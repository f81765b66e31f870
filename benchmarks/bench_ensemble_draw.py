"""CPU seconds of one ensemble draw at the demo's resolution, stage by stage (one core).

Usage:
    python benchmarks/bench_ensemble_draw.py [--draws 4] [--cell-size 500]

The draws of ``bench_ensemble.py`` (links + corridors + metrics + scores); each stage computed as a draw
computes it (``runner.ensemble._DRAW_COMPUTE``: the corridors without their outlines) and timed with
``time.process_time`` (CPU time, so other work on a shared machine stretches it much less than the wall time).
The suitability is timed both ways: rebuilding the RSF covariates (as each draw did before they were shared)
and from the covariates built once (as a draw does now); the two must be equal.  The first draw warms caches
and is left out of the means.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.core.executor import core_budget
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
        print(i, {k: round(v, 3) for k, v in tt.items()}, flush=True)
        if i:
            for k, v in tt.items():
                total[k] = total.get(k, 0.0) + v
    m = max(1, args.draws - 1)
    print("mean CPU s per draw:", {k: round(v / m, 3) for k, v in total.items()})
    before = sum(v for k, v in total.items() if "(now)" not in k) / m
    now = sum(v for k, v in total.items() if "(before)" not in k) / m
    print(f"per draw: before {before:.2f} s, now {now:.2f} s; load {os.getloadavg()}")
    target = sum(total.get(k, 0.0) for k in ("links", "corridors", "metrics", "scores")) / m
    print(f"links + corridors + metrics + scores: {target:.2f} CPU s per draw (target <= 0.3)")


if __name__ == "__main__":
    main()
