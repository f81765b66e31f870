#!/usr/bin/env python3
"""Search the demo's RSF magnitudes against the published habitat targets (``docs/validation.md``, Calibration).

Usage::

    python scripts/calibrate_demo.py                  # evaluate the current defaults
    python scripts/calibrate_demo.py --search 2000    # random search within the published signs, then refine

The habitat rows of the validation table (area by country, protected-area
footprints, land north of 45.5 N, Land of the Leopard and the Lazovsky site in
different patches) depend only on the suitability, so they are evaluated here
from covariates computed once: threshold, 8-connected cores, minimum area, the
same rules as the patch stage with protected areas labelling only.  A setting's
score is the smallest margin to those targets (each margin scaled to about one
unit across its band); the Lazovsky row can be left out (``--without-site``),
as the committed calibration does, and then it is reported only.

Nothing is fitted to leopard or tiger locations.  The signs are fixed
(``SIGNS``); only magnitudes and the intercept move.  Capacity rows need the
territory stage: run ``python scripts/validation.py`` on a result.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from scipy import ndimage

from leopardgeo.report.validation import _mask, _named
from leopardgeo.runner import pipeline as P
from leopardgeo.runner.registry import demo_config
from leopardgeo.stages.patches import country_raster

#: The published sign of each demo covariate (Hebblewhite et al. 2011; Wang et al.; the winter limit).
SIGNS = {
    "elevation_km": -1,
    "forest": 1,
    "open_land": -1,
    "dist_cropland_km": 1,
    "dist_urban_km": 1,
    "settlement_pressure": -1,
    "dec_temp_c": 1,
    "dec_precip_mm": -1,
}
#: Random-search range of each magnitude.
RANGES = {
    "elevation_km": (0, 3),
    "forest": (1.5, 4),
    "open_land": (1, 3),
    "dist_cropland_km": (0, 0.3),
    "dist_urban_km": (0, 0.3),
    "settlement_pressure": (1, 4),
    "dec_temp_c": (0.3, 1.3),
    "dec_precip_mm": (0, 0.35),
}
PARKS = ("Land of the Leopard", "Kedrovaya Pad", "Hunchun", "Northeast China Tiger and Leopard")


def load() -> dict[str, Any]:
    """Covariates, masks and the patch rules of the demo, computed once."""
    cfg = demo_config()
    inputs = P.load_inputs(cfg)
    grid, valid = inputs.grid, inputs.valid
    cov, _, _ = P.rsf_inputs(cfg, inputs)
    cidx, codes = country_raster(inputs.countries, grid, cfg.inputs.country_field)
    masks = {n: _mask(_named(inputs.protected_areas, "NAME", n, "protected area"), grid, valid) for n in PARKS}
    masks["site"] = _mask(_named(inputs.sites, "name", "Lazovsky / Zov Tigra", "site"), grid, valid)
    from pyproj import Transformer

    rows, cols = np.nonzero(valid)
    x, y = grid.xy(rows, cols)
    _, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    north = np.zeros(grid.shape, bool)
    north[rows[lat > 45.5], cols[lat > 45.5]] = True
    return {
        "cfg": cfg,
        "cov": {k: cov[k] for k in SIGNS},
        "valid": valid,
        "country": {c: (cidx == i) & valid for i, c in enumerate(codes)},
        "masks": masks,
        "north": north,
        "km2": grid.cell_area_ha / 100.0,
        "min_cells": int(np.ceil(cfg.patches.min_area_ha / grid.cell_area_ha)),
        "threshold": cfg.patches.min_suitability,
    }


def evaluate(data: dict[str, Any], intercept: float, coefs: dict[str, float]) -> dict[str, float]:
    """The habitat rows of the validation table for one setting."""
    eta = intercept + sum(b * data["cov"][k] for k, b in coefs.items())
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-eta))
    core = (s >= data["threshold"]) & data["valid"]
    labels, _ = ndimage.label(core, structure=np.ones((3, 3)))
    keep = np.bincount(labels.ravel()) >= data["min_cells"]
    keep[0] = False
    habitat = keep[labels]
    labels = np.where(habitat, labels, 0)
    out = {c: float(habitat[m].sum()) * data["km2"] for c, m in data["country"].items()}
    out["all"] = float(habitat.sum()) * data["km2"]
    out |= {n: float(habitat[m].mean()) for n, m in data["masks"].items()}
    out["north"] = float(habitat[data["north"]].mean())
    a = set(np.unique(labels[data["masks"]["Land of the Leopard"] & habitat]).tolist())
    b = set(np.unique(labels[data["masks"]["site"] & habitat]).tolist())
    out["separate"] = float(not (a & b))
    return out


def margins(r: dict[str, float], *, site: bool) -> dict[str, float]:
    """Margin to each target (> 0 met), scaled to about one unit across its band; a small inner safety margin."""
    m = {
        "RUS": min(r["RUS"] - 9000, 19000 - r["RUS"]) / 4000,
        "CHN": min(r["CHN"] - 13000, 27000 - r["CHN"]) / 6000,
        "all": min(r["all"] - 20000, 39000 - r["all"]) / 5000,
        "north": (0.2 - r["north"]) / 0.1,
        "separate": 1.0 if r["separate"] else -1.0,
    }
    m |= {n: (r[n] - (0.52 if n.startswith("Northeast") else 0.72)) / 0.1 for n in PARKS}
    if site:
        m["site"] = (r["site"] - 0.5) / 0.1
    return m


def search(data: dict[str, Any], n: int, *, site: bool, seed: int = 1) -> tuple[float, dict[str, float]]:
    """Random search within the signs, then a coordinate search on rounded values; the best setting."""
    rng = np.random.default_rng(seed)
    best = (-np.inf, 0.0, {})
    for _ in range(n):
        c = {k: SIGNS[k] * rng.uniform(*RANGES[k]) for k in SIGNS}
        b0 = rng.uniform(-2, 3) + 11 * c["dec_temp_c"] + 15 * c["dec_precip_mm"]  # centred on -11 degC, 15 mm
        score = min(margins(evaluate(data, b0, c), site=site).values())
        if score > best[0]:
            best = (score, b0, c)
    score, b0, c = best
    b0, c = round(b0 * 4) / 4, {k: round(v * 20) / 20 for k, v in c.items()}
    steps = {"intercept": 0.25, **{k: max(0.05, round(abs(v) / 6 * 20) / 20) for k, v in c.items()}}
    score = min(margins(evaluate(data, b0, c), site=site).values())
    improved = True
    while improved:
        improved = False
        for k, st in steps.items():
            for d in (st, -st, 2 * st, -2 * st):
                nb, nc = (b0 + d, c) if k == "intercept" else (b0, {**c, k: round(c[k] + d, 3)})
                if k != "intercept" and nc[k] * SIGNS[k] < 0:
                    continue
                sc = min(margins(evaluate(data, nb, nc), site=site).values())
                if sc > score + 1e-9:
                    score, b0, c, improved = sc, nb, nc, True
    return b0, c


def main(argv: list[str] | None = None) -> int:
    """Evaluate the defaults, or search."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--search", type=int, default=0, metavar="N", help="random settings to try before refining")
    ap.add_argument("--without-site", action="store_true", help="leave the Lazovsky row out of the score")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    data = load()
    h = data["cfg"].habitat
    b0, coefs = h.intercept, dict(h.coefficients)
    if args.search:
        b0, coefs = search(data, args.search, site=not args.without_site, seed=args.seed)
    r = evaluate(data, b0, coefs)
    print(f"intercept {b0:g}; " + ", ".join(f"{k} {v:+g}" for k, v in coefs.items()))
    for k, v in r.items():
        print(f"  {k:36s} {v:,.0f} km²" if v > 1 else f"  {k:36s} {v:.2f}")
    m = margins(r, site=True)
    print("targets met (with the inner safety margin):", sum(v > 0 for v in m.values()), "of", len(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
