"""Omniscape's moving windows: leopardgeo serial and on threads against landschaft's C++ Omniscape, in one run.

Usage:
    python benchmarks/bench_omniscape.py [--problems demo synthetic] [--size 1000] [--radius 20] [--block 9]
        [--tools serial threads landschaft] [--threads 2] [--write docs/performance.md]

Problems:
  demo       the demo's resistance raster (1250 x 1756 cells of 500 m) with the suitability as sources, the
             stage's defaults (radius 10 km = 20 cells, block size 9), as `leopardgeo run` computes it
  synthetic  a SIZE x SIZE grid of smooth log-normal resistance (a Gaussian-filtered field, seed 0, 2 % no data),
             sources 1 / resistance (Omniscape's source_from_resistance), the same radius and block size

Tools (each in a fresh process reading the arrays from ``.npy``; time from the arrays in memory to the three maps,
numba's compilation on a tiny grid excluded; CPU = the process's user + system time over the same span, all its
threads together, which on a machine shared with other work is a steadier measure of the work done than the wall
time; peak memory = the process's high-water mark):
  serial      ``omniscape(...)`` with no executor: every band of windows in this process, one after another
  threads     the same bands on a ``ThreadPoolExecutor(THREADS)`` (the compiled window solves release the GIL)
  landschaft  ``landschaft.circuit.omniscape(r, radius, source=s, block_size=b, flow_potential=True,
              normalized_current=True, n_threads=THREADS)`` (C++/OpenMP, Omniscape.jl's semantics)

Every map is compared with the first tool's: largest difference relative to the map's largest value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sections import write_section
from bench_costdist import _call, _env, _maxrss_mb, machine

TOOLS = ("serial", "threads", "landschaft")


def write_problem(kind: str, d: Path, size: int) -> tuple[int, int]:
    if kind == "demo":
        from leopardgeo.runner import pipeline as p
        from leopardgeo.runner.registry import demo_config
        from leopardgeo.stages.omniscape import OmniscapeConfig, omniscape_sources

        cfg = demo_config()
        inputs = p.load_inputs(cfg)
        suit = p.compute_suitability(cfg, inputs)
        res = p.compute_resistance(cfg, inputs, suit).astype(np.float64)
        src = omniscape_sources(OmniscapeConfig(), res, suit)
    else:
        from scipy import ndimage

        rng = np.random.default_rng(0)
        field = ndimage.gaussian_filter(rng.normal(size=(size, size)), 4.0)
        res = np.exp(2.0 * field / field.std())
        res[rng.random((size, size)) < 0.02] = np.nan
        src = np.where(np.isnan(res), 0.0, 1.0 / res)
    np.save(d / "res.npy", res)
    np.save(d / "src.npy", src)
    return res.shape


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(tool: str, d: Path, radius: int, block: int, threads: int) -> dict:
    res = np.load(d / "res.npy")
    src = np.load(d / "src.npy")
    if tool == "landschaft":
        import landschaft.circuit as lc

        cpu = _cpu_s()
        t = time.perf_counter()
        out = lc.omniscape(
            res, radius, source=src, block_size=block, flow_potential=True, normalized_current=True, n_threads=threads
        )
        wall = time.perf_counter() - t
        cpu = _cpu_s() - cpu
        maps = [out[k].to_numpy() for k in ("cum_currmap", "flow_potential", "normalized_cum_currmap")]
        n_targets = int(out.attrs["n_targets"])
    else:
        from concurrent.futures import ThreadPoolExecutor

        from leopardgeo.kernels.omniscape import omniscape

        tiny = np.ones((12, 12))
        omniscape(tiny, tiny, radius=3, block_size=3)  # compile outside the timing
        pool = ThreadPoolExecutor(threads) if tool == "threads" else None
        cpu = _cpu_s()
        t = time.perf_counter()
        m = omniscape(res, src, radius=radius, block_size=block, executor=pool)
        wall = time.perf_counter() - t
        cpu = _cpu_s() - cpu
        if pool is not None:
            pool.shutdown()
        maps = [m.current, m.flow_potential, m.normalized]
        n_targets = m.n_targets
    for name, a in zip(("cur", "fp", "norm"), maps, strict=True):
        np.save(d / f"{name}_{tool}.npy", a)
    return {"tool": tool, "wall_s": wall, "cpu_s": cpu, "peak_mb": _maxrss_mb(), "n_targets": n_targets}


def _diff(d: Path, tool: str, ref: str) -> str:
    out = []
    for name in ("cur", "fp", "norm"):
        a, b = np.load(d / f"{name}_{tool}.npy"), np.load(d / f"{name}_{ref}.npy")
        live = np.isfinite(a) & np.isfinite(b)
        same_nodata = bool(np.array_equal(np.isfinite(a), np.isfinite(b)))
        rel = float(np.max(np.abs(a[live] - b[live])) / np.max(np.abs(b[live])))
        out.append(f"{name} {rel:.0e}" + ("" if same_nodata else " (no data differs)"))
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=["demo", "synthetic"], choices=["demo", "synthetic"])
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--radius", type=int, default=20)
    ap.add_argument("--block", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--write", type=Path)
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        tool, d, radius, block, threads = args.worker
        print(json.dumps(worker(tool, Path(d), int(radius), int(block), int(threads))))
        return
    load0 = os.getloadavg()
    start = dt.datetime.now(dt.UTC)
    lines = []
    for kind in args.problems:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            shape = write_problem(kind, d, args.size)
            rows = []
            for tool in args.tools:
                cmd = [sys.executable, __file__, "--worker", tool, str(d), str(args.radius), str(args.block), str(args.threads)]
                threads = 1 if tool == "serial" else args.threads
                row = _call(cmd, args.timeout, _env(threads))
                row.setdefault("tool", tool)
                rows.append(row)
                print(kind, row, flush=True)
            ref = next((r["tool"] for r in rows if "error" not in r), None)
            base = next((r for r in rows if r["tool"] == "landschaft" and "error" not in r), None)
            for row in rows:
                what = f"{kind} {shape[0]} x {shape[1]}"
                if "error" in row:
                    lines.append(f"| {what} | {row['tool']} | {row['error']} | | | | | | |")
                    continue
                agree = "reference" if row["tool"] == ref else _diff(d, row["tool"], ref)
                ratio = f"{row['wall_s'] / base['wall_s']:.2f}" if base else ""
                cpu_ratio = f"{row['cpu_s'] / base['cpu_s']:.2f}" if base else ""
                lines.append(
                    f"| {what} | {row['tool']} | {row['n_targets']:,} | {row['wall_s']:.1f} | {ratio} | "
                    f"{row['cpu_s']:.1f} | {cpu_ratio} | {row['peak_mb'] / 1000:.2f} GB | {agree} |"
                )
    load = os.getloadavg()
    section = "\n".join(
        [
            "## Omniscape (moving windows)",
            "",
            (
                f"Measured {start:%Y-%m-%d %H:%M}-{dt.datetime.now(dt.UTC):%H:%M} UTC on {machine()}; "
                f"load average (1 min) {load0[0]:.1f} at the start and {load[0]:.1f} at the end (the 2 cores were shared "
                "with other work: wall times scale with the load)."
            ),
            "",
            "Command: `python " + " ".join(["benchmarks/bench_omniscape.py", *sys.argv[1:]]) + "`. "
            f"Radius {args.radius} cells, block size {args.block}, 8 neighbours, cumulative current, flow potential and "
            f"normalised current; threads = {args.threads}. Each tool in a fresh process, from the arrays in memory to the "
            "three maps. A ratio to landschaft < 1 means leopardgeo is faster; CPU s is the work of all the process's threads.",
            "",
            (
                "| problem | tool | windows | wall s | wall / landschaft | CPU s | CPU / landschaft | peak memory | "
                "max difference (of the map's peak) |"
            ),
            "|---|---|---|---|---|---|---|---|---|",
            *lines,
        ]
    )
    print(section)
    if args.write:
        write_section(args.write, "bench_omniscape", section)


if __name__ == "__main__":
    main()
