"""The demo's circuit stage, solver by solver, against landschaft's Circuitscape port, in one run.

Usage:
    python benchmarks/bench_circuit_demo.py [--tools stage pardiso cholmod superlu amg landschaft] [--repeat 1]
        [--threads N] [--phase-clock wall|cpu] [--write docs/performance.md]

``--phase-clock cpu``: the phases (network, setup, solves, maps) in CPU seconds of the process
(``time.process_time``, all threads) instead of wall seconds; with ``--threads 1`` and
``OMP_NUM_THREADS = MKL_NUM_THREADS = NUMBA_NUM_THREADS = LEOPARDGEO_CORES = 1`` the work per phase on a loaded
machine.

Problem: the demo's resistance raster and its habitat patches (1250 x 1756 cells; the counts are read from the
demo: at the end of 2026-12-03 35 patches and 595 pairs, every patch short-circuited), all pairs, 8 neighbours, the
cumulative current map, as `leopardgeo run` solves them (`focal_shorting = "all"`). Each tool runs in a fresh
process that reads the two rasters from ``.npy`` files; the time runs from the arrays in memory to the resistance
table and the cumulative map (imports and numba's compilation on a tiny grid excluded). Peak memory = the process's
high-water mark.

Tools:
  stage       the circuit stage alone as ``leopardgeo run`` calls it (``stages.circuit.compute_circuit`` with the
              demo's ``[circuit]``: solver ``auto``, so PARDISO when installed, else CHOLMOD), all pairs
  pardiso     ``circuit_flow(..., solver="pardiso")`` (MKL PARDISO factor, one block solve)
  cholmod     ``circuit_flow(..., solver="cholmod")`` (CHOLMOD from cholespy)
  superlu     ``circuit_flow(..., solver="superlu")`` (SciPy's SuperLU in the grid's order: ``auto`` without PARDISO)
  amg         ``circuit_flow(..., solver="amg")`` (CG + AMG, the engine before direct solvers)
  landschaft  ``landschaft.circuit.circuitscape_pairwise(r, labels, polygons=labels, cum_map=True)`` (the same
              convention: every patch a short-circuit region)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sections import write_section
from bench_costdist import _call, _env, _maxrss_mb, machine

TOOLS = ("stage", "pardiso", "cholmod", "superlu", "amg", "landschaft")


def demo_arrays(d: Path) -> None:
    from leopardgeo.runner import pipeline as p
    from leopardgeo.runner.registry import demo_config

    cfg = demo_config()
    inputs = p.load_inputs(cfg)
    suit = p.compute_suitability(cfg, inputs)
    np.save(d / "res.npy", p.compute_resistance(cfg, inputs, suit))
    np.save(d / "lab.npy", p.compute_patches(cfg, inputs, suit)[0])


def worker(tool: str, d: Path, phase_clock: str = "wall") -> dict:
    if phase_clock == "cpu":  # the circuit's phase timings read CPU time instead of wall time
        import types

        import leopardgeo.kernels.circuit.modes as modes

        modes.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[assignment]
    res = np.load(d / "res.npy")
    lab = np.load(d / "lab.npy")
    if tool == "landschaft":
        import landschaft.circuit as lc

        t, c0 = time.perf_counter(), time.process_time()
        cs = lc.circuitscape_pairwise(res.astype(np.float64), lab, polygons=lab, cum_map=True)
        wall, cpu = time.perf_counter() - t, time.process_time() - c0
        table = np.asarray(cs.resistances)
        ids = table[0, 1:].astype(int)
        r = {f"{a}-{b}": float(table[i + 1, j + 1]) for i, a in enumerate(ids) for j, b in enumerate(ids) if a < b}
        cum = np.asarray(cs.cum_current, dtype=np.float64)
        phases: dict = {}
    elif tool == "stage":
        from leopardgeo.kernels.circuit import _pardiso, circuit_flow
        from leopardgeo.runner.registry import demo_config
        from leopardgeo.stages.circuit import compute_circuit

        cfg = demo_config()
        small = np.ones((20, 20), dtype=res.dtype)  # the demo's dtypes: no compilation inside the timing
        f = np.zeros((20, 20), dtype=lab.dtype)
        f[0, 0], f[-1, -1], f[0, -1] = 1, 2, 3
        circuit_flow(small, f, focal_shorting="all")  # compile outside the timing
        if _pardiso() is not None:  # and the PARDISO path's kernels (grid order, upper triangle): auto uses SuperLU here
            circuit_flow(small, f, focal_shorting="all", solver="pardiso")
        t, c0 = time.perf_counter(), time.process_time()
        out = compute_circuit(cfg, res, lab, None)  # no links graph: every pair, as with pairs = "all"
        wall, cpu = time.perf_counter() - t, time.process_time() - c0
        tab = out.resistances
        triples = zip(tab.patch_a, tab.patch_b, tab.eff_resistance, strict=True)
        r = {f"{a}-{b}": (float(x) if np.isfinite(x) else -1.0) for a, b, x in triples}
        cum = out.cum_current.astype(np.float64)
        phases = {k: round(v, 2) for k, v in out.timings_s.items()}
        phases["solver"] = str(getattr(out, "solver", cfg.circuit.solver))
    else:
        from leopardgeo.kernels.circuit import circuit_flow

        small = np.ones((20, 20), dtype=res.dtype)  # the demo's dtypes: no compilation inside the timing
        f = np.zeros((20, 20), dtype=lab.dtype)
        f[0, 0], f[-1, -1], f[0, -1] = 1, 2, 3
        circuit_flow(small, f, focal_shorting="all", solver=tool)  # compile outside the timing
        t, c0 = time.perf_counter(), time.process_time()
        out = circuit_flow(res, lab, focal_shorting="all", solver=tool)
        wall, cpu = time.perf_counter() - t, time.process_time() - c0
        tab = out.resistances
        triples = zip(tab.patch_a, tab.patch_b, tab.eff_resistance, strict=True)
        r = {f"{a}-{b}": (float(x) if np.isfinite(x) else -1.0) for a, b, x in triples}
        cum = out.cum_current.astype(np.float64)
        phases = {k: round(v, 2) for k, v in out.timings_s.items()}
    np.save(d / f"cum_{tool}.npy", cum)
    return {"tool": tool, "wall_s": wall, "cpu_s": cpu, "peak_mb": _maxrss_mb(), "r": r, "phases": phases}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--write", type=Path)
    ap.add_argument("--threads", type=int, default=None, help="threads for BLAS / OpenMP / numba (default: every core)")
    ap.add_argument("--phase-clock", choices=("wall", "cpu"), default="wall", help="clock of the phase timings")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.phase_clock)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        demo_arrays(d)
        n_patches = int(np.unique(np.load(d / "lab.npy")).size - 1)
        for tool in args.tools:
            cmd = [sys.executable, __file__, "--worker", tool, str(d), "--phase-clock", args.phase_clock]
            threads = args.threads or os.cpu_count() or 1
            runs = [_call(cmd, args.timeout, _env(threads)) for _ in range(args.repeat)]
            ok = [r for r in runs if "error" not in r]
            row = min(ok, key=lambda r: r["wall_s"]) if ok else {"tool": tool, **runs[-1]}
            if ok:
                row["wall_s"] = float(np.median([r["wall_s"] for r in ok]))
                row["cpu_s"] = float(np.median([r["cpu_s"] for r in ok]))
                row["cum"] = str(d / f"cum_{tool}.npy")
            rows.append(row)
            print(tool, {k: v for k, v in row.items() if k not in ("r", "cum")}, flush=True)
        ref = next((r for r in rows if r["tool"] == "pardiso" and "r" in r), next((r for r in rows if "r" in r), None))
        lines = []
        for row in rows:
            if "error" in row:
                lines.append(f"| {row['tool']} | {row['error']} | | | | |")
                continue
            agree = "reference"
            if ref is not None and row is not ref:
                pairs = [k for k in ref["r"] if ref["r"][k] > 0]
                rel = max(abs(row["r"][k] - ref["r"][k]) / ref["r"][k] for k in pairs)
                same_cut = all((row["r"][k] < 0) == (ref["r"][k] < 0) for k in ref["r"])
                a, b = np.load(row["cum"]), np.load(ref["cum"])
                live = np.isfinite(a) & np.isfinite(b)
                dmap = float(np.max(np.abs(a[live] - b[live])) / np.max(np.abs(b[live])))
                agree = f"R max rel. diff {rel:.0e}, same disconnected pairs: {same_cut}; map max diff {dmap:.0e} of peak"
            phases = ", ".join(f"{k} {v}" for k, v in row.get("phases", {}).items())  # the solver name is not a time
            mem = f"{row['peak_mb'] / 1000:.2f} GB"
            lines.append(f"| {row['tool']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {mem} | {phases} | {agree} |")
    load = os.getloadavg()
    section = "\n".join(
        [
            "## Circuit stage on the demo, solver by solver",
            "",
            (
                f"Measured {dt.date.today().isoformat()} on {machine()}; load average at the end {load[0]:.1f} / "
                f"{load[1]:.1f} / {load[2]:.1f} (the 2 cores were shared: wall times scale with the load, ratios less so)."
            ),
            "",
            "Command: `python " + " ".join(["benchmarks/bench_circuit_demo.py", *sys.argv[1:]]) + "`. "
            f"All {n_patches * (n_patches - 1) // 2} pairs of the demo's {n_patches} patches, every patch short-circuited, "
            "cumulative current map; each tool in a "
            "fresh process, from the arrays in memory to the table and the map. CPU s is the process's CPU time over "
            "all its threads: steadier than wall time on a loaded machine, but contention inflates it too (and "
            "waiting BLAS threads spin). The reference is PARDISO when it ran, else the first tool.",
            "",
            f"| tool | wall s | CPU s (all threads) | peak memory | phases ({args.phase_clock} s) | agreement with the ref. |",
            "|---|---|---|---|---|---|",
            *lines,
        ]
    )
    print(section)
    if args.write:
        write_section(args.write, "bench_circuit_demo", section)


if __name__ == "__main__":
    main()
