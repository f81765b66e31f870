"""Pairwise circuit solves with a current map: leopardgeo against plain solvers and landschaft, in one run.

Usage:
    python benchmarks/bench_circuit.py [--sizes 1000 2000 4000] [--repeat 1] [--timeout 1200]
        [--write docs/performance.md]

Problem (the same for every tool): the synthetic resistance grids of ``bench_costdist.py``
(float32, resistance 1..1000, 6-12 % no data), two focal patches (discs of 49 cells) for
"one pair"; four patches (six pairs) for "further pairs".  Each tool runs in a fresh
subprocess that reads the grid from ``.npy`` files and times everything from the arrays in
memory to the cumulative current map (building the graph, preconditioner / factor, solve,
current map); imports, and numba's compilation on a tiny grid, are not timed.  Peak memory
is the process's ``VmHWM``.  Agreement: effective resistance and current map against
landschaft's exact sparse Cholesky solve (or, without landschaft, our own solve at
tolerance 1e-12).

Tools:
  leopardgeo       ``circuit_flow`` (geometric + Ruge-Stüben AMG, CG, tol 1e-8), one pair
  leopardgeo-4     ``circuit_flow`` on four patches: six pairs (superposition, one hierarchy)
  pyamg-plain      the same network, ``pyamg.smoothed_aggregation_solver`` defaults + CG (tol 1e-8), per pair
  scipy-cg         the same network, ``scipy.sparse.linalg.cg`` without preconditioner (tol 1e-6)
  scipy-spsolve    the same network, ``scipy.sparse.linalg.spsolve`` (SuperLU)
  landschaft       ``landschaft.circuit.circuitscape_pairwise(r, ids, cum_map=True)`` (exact Cholesky)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sections import write_section
from bench_costdist import _available_mb, _call, _env, _maxrss_mb, machine, make_grid

TOOLS = ("leopardgeo", "leopardgeo-4", "pyamg-plain", "scipy-cg", "scipy-spsolve", "landschaft")
LABELS = {
    "leopardgeo": "leopardgeo `circuit_flow` (1 pair)",
    "leopardgeo-4": "leopardgeo `circuit_flow` (4 patches, 6 pairs)",
    "pyamg-plain": "pyamg SA + CG, plain (1 pair)",
    "scipy-cg": "scipy `cg`, no preconditioner (1 pair)",
    "scipy-spsolve": "scipy `spsolve` (SuperLU, 1 pair)",
    "landschaft": "landschaft `circuitscape_pairwise` (1 pair)",
}
#: Rough peak bytes per cell (memory guard; landschaft from peers.md: 17 GB at 16 M cells).
EST_BYTES_PER_CELL = {
    "leopardgeo": 400,
    "leopardgeo-4": 600,
    "pyamg-plain": 900,
    "scipy-cg": 300,
    "scipy-spsolve": 3000,
    "landschaft": 1100,
}
#: Largest grid side each slow baseline is run at (they take minutes to hours beyond).
MAX_SIDE = {"scipy-cg": 1000, "scipy-spsolve": 1000}
#: Per-tool time limit (s) for the slow baselines.
TIMEOUT = {"scipy-cg": 600, "scipy-spsolve": 300}
RADIUS = 4
#: Why landschaft is not run on the largest grid of a shared machine, with the figure of the earlier run that did.
PEER_SKIPPED = {
    4000: (
        "not run here (its 17 GB peak would starve the other work on this shared 24 GB machine); "
        "an earlier run on this machine (2026-11-25, idle): 106.01 s, 17.34 GB"
    )
}
#: Circuitscape's published BigTests figures (Circuitscape.jl docs/src/benchmark/plot.jl; peers.md section 3):
#: million cells -> seconds, 16 processes on a 20-core Xeon Silver 4114.
CIRCUITSCAPE_PUBLISHED = {
    1: {"Circuitscape 4.0.5 (Python)": 537.8, "Circuitscape.jl cg+amg": 106.4, "Circuitscape.jl CHOLMOD": 89.6},
    6: {"Circuitscape 4.0.5 (Python)": 4711.4, "Circuitscape.jl cg+amg": 1217.9, "Circuitscape.jl CHOLMOD": 543.1},
    12: {"Circuitscape 4.0.5 (Python)": 9486.9, "Circuitscape.jl cg+amg": 2337.5, "Circuitscape.jl CHOLMOD": 1124.3},
}


def focal_patches(res: np.ndarray, k: int) -> np.ndarray:
    """``k`` disc-shaped patches (ids 1..k) on land, far apart."""
    n = res.shape[0]
    spots = [(n // 5, n // 5), (n // 2, 4 * n // 5), (4 * n // 5, n // 5), (n // 5, 3 * n // 5)][:k]
    yy, xx = np.mgrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
    disc = yy**2 + xx**2 <= RADIUS * RADIUS + 1
    out = np.zeros(res.shape, dtype=np.int32)
    for lab, (cy, cx) in enumerate(spots, 1):
        while not np.isfinite(res[cy - RADIUS : cy + RADIUS + 1, cx - RADIUS : cx + RADIUS + 1]).all():
            cx += 5
        out[cy - RADIUS : cy + RADIUS + 1, cx - RADIUS : cx + RADIUS + 1][disc] = lab
    return out


# --------------------------------------------------------------------------- runners (in the worker)
def _one_pair_system(res: np.ndarray, focal: np.ndarray):
    from leopardgeo.kernels.circuit import build_network

    net = build_network(res, focal)
    b = np.zeros(net.n_solve)
    b[int(net.focal_node[net.focal_node < net.n_solve][0])] = 1.0
    return net, b


def _finish(net, x: np.ndarray) -> tuple[float, np.ndarray]:
    from leopardgeo.kernels.circuit import current_density

    v = np.zeros(net.n_total)
    v[: net.n_solve] = x
    src = int(net.focal_node[net.focal_node < net.n_solve][0])
    gnd = int(net.focal_node[net.focal_node >= net.n_solve][0])
    inj = np.zeros(net.n_total)
    inj[src], inj[gnd] = 1.0, -1.0
    return float(v[src] - v[gnd]), current_density(net, v, inj)


def run_leopardgeo(res: np.ndarray, focal: np.ndarray) -> dict:
    from leopardgeo.kernels.circuit import circuit_flow

    out = circuit_flow(res, focal, solver="amg")
    return {
        "r_eff": out.resistances["eff_resistance"].tolist(),
        "cum": out.cum_current,
        "iterations": out.iterations,
        "phases": out.timings_s,
    }


def run_pyamg_plain(res: np.ndarray, focal: np.ndarray) -> dict:
    import pyamg

    net, b = _one_pair_system(res, focal)
    ml = pyamg.smoothed_aggregation_solver(net.laplacian)
    its: list[float] = []
    x = ml.solve(b, tol=1e-8, accel="cg", residuals=its)
    r, cur = _finish(net, x)
    return {"r_eff": [r], "cum": cur, "iterations": [len(its) - 1]}


def run_scipy_cg(res: np.ndarray, focal: np.ndarray) -> dict:
    from scipy.sparse.linalg import cg

    net, b = _one_pair_system(res, focal)
    count = [0]
    x, _ = cg(net.laplacian, b, rtol=1e-6, maxiter=200_000, callback=lambda _: count.__setitem__(0, count[0] + 1))
    r, cur = _finish(net, x)
    return {"r_eff": [r], "cum": cur, "iterations": [count[0]]}


def run_scipy_spsolve(res: np.ndarray, focal: np.ndarray) -> dict:
    from scipy.sparse.linalg import spsolve

    net, b = _one_pair_system(res, focal)
    x = spsolve(net.laplacian.tocsc(), b)
    r, cur = _finish(net, x)
    return {"r_eff": [r], "cum": cur, "iterations": [0]}


def run_landschaft(res: np.ndarray, focal: np.ndarray) -> dict:
    from landschaft import circuit

    out = circuit.circuitscape_pairwise(res, focal, cum_map=True)
    k = out.resistances.shape[0] - 1
    r = [float(out.resistances[i, j]) for i in range(1, k + 1) for j in range(i + 1, k + 1)]
    return {"r_eff": r, "cum": np.asarray(out.cum_current, dtype=np.float64), "iterations": [0]}


RUNNERS = {
    "leopardgeo": run_leopardgeo,
    "leopardgeo-4": run_leopardgeo,
    "pyamg-plain": run_pyamg_plain,
    "scipy-cg": run_scipy_cg,
    "scipy-spsolve": run_scipy_spsolve,
    "landschaft": run_landschaft,
}


def worker(tool: str, d: Path, out: str) -> dict:
    res = np.load(d / "res.npy")
    focal = np.load(d / ("focal4.npy" if tool == "leopardgeo-4" else "focal2.npy"))
    # warm-up large enough (> 100,000 unknowns) to load every compiled kernel, geometric levels included
    tiny = np.ones((400, 400), dtype=np.float32)
    tf = np.zeros((400, 400), dtype=np.int32)
    tf[5, 5], tf[390, 390] = 1, 2
    RUNNERS[tool](tiny, tf)  # imports, numba cache load / compilation: not timed
    t, c0 = time.perf_counter(), time.process_time()
    r = RUNNERS[tool](res, focal)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c0
    if out:
        np.save(out, np.asarray(r["cum"], dtype=np.float64))
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_mb": _maxrss_mb(),
        "r_eff": r["r_eff"],
        "iterations": r["iterations"],
        "phases": r.get("phases", {}),
    }


# --------------------------------------------------------------------------- driver
def _missing(tool: str) -> str | None:
    import importlib.util

    mod = {"landschaft": "landschaft", "pyamg-plain": "pyamg"}.get(tool)
    if mod and importlib.util.find_spec(mod) is None:
        return f"not installed (`pip install {mod}`)"
    return None


def compare(ref_cum: np.ndarray, cum: np.ndarray, ref_r: float, r: float) -> dict:
    both = np.isfinite(ref_cum) & np.isfinite(cum)
    top = float(np.nanmax(ref_cum[both]))
    diff = np.abs(cum[both] - ref_cum[both])
    corridor = ref_cum[both] > 0.01 * top  # cells carrying more than 1 % of the peak current
    rel = diff[corridor] / ref_cum[both][corridor]
    return {
        "r_rel": abs(r - ref_r) / ref_r,
        "map_max_abs_over_peak": float(diff.max() / top),
        "map_max_rel_corridor": float(rel.max()) if rel.size else math.nan,
    }


def bench_size(n: int, args: argparse.Namespace, tmp: Path) -> list[dict]:
    d = tmp / f"g{n}"
    d.mkdir(exist_ok=True)
    res, _ = make_grid(n)
    np.save(d / "res.npy", res)
    np.save(d / "focal2.npy", focal_patches(res, 2))
    np.save(d / "focal4.npy", focal_patches(res, 4))
    del res
    rows = []
    for tool in args.tools:
        row: dict = {"tool": tool, "n": n, "cells": n * n}
        why = _missing(tool)
        need_mb = EST_BYTES_PER_CELL[tool] * n * n / 2**20
        if why is None and n > MAX_SIDE.get(tool, 10**9):
            why = f"not run above {MAX_SIDE[tool]}² (minutes to hours)"
        if why is None and tool == "landschaft" and args.peer_max_side and n > args.peer_max_side:
            why = PEER_SKIPPED.get(n, f"not run above {args.peer_max_side}² (--peer-max-side)")
        if why is None and need_mb > 0.9 * _available_mb():
            why = f"not run: needs about {need_mb / 1024:.0f} GB"
        if why:
            row["error"] = why
            rows.append(row)
            print(f"{n}² {tool}: {why}", file=sys.stderr)
            continue
        runs = []
        for i in range(args.repeat):
            out = str(d / f"{tool}.npy") if i == 0 else ""
            cmd = [sys.executable, __file__, "--worker", tool, str(d), out]
            r = _call(cmd, min(args.timeout, TIMEOUT.get(tool, args.timeout)), _env(args.threads))
            if "error" in r:
                row["error"] = r["error"]
                break
            runs.append(r)
        if runs:
            best = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
            row.update(best)
        print(f"{n}² {tool}: {row.get('seconds', row.get('error'))}", file=sys.stderr)
        rows.append(row)
    ref_tool = "landschaft" if (d / "landschaft.npy").exists() else None
    if ref_tool:
        ref_cum = np.load(d / "landschaft.npy")
        ref_r = next(r for r in rows if r["tool"] == "landschaft")["r_eff"][0]
        for row in rows:
            if row["tool"] in ("landschaft", "leopardgeo-4") or "seconds" not in row:
                continue
            row["agree"] = compare(ref_cum, np.load(d / f"{row['tool']}.npy"), ref_r, row["r_eff"][0])
    for f in d.glob("*.npy"):
        f.unlink()
    return rows


def versions() -> str:
    out = []
    for name in ("leopardgeo", "numba", "numpy", "scipy", "pyamg", "landschaft"):
        try:
            out.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def _get(rows: list[dict], tool: str, n: int) -> dict:
    return next((r for r in rows if r["tool"] == tool and r["n"] == n), {})


def report(args: argparse.Namespace, rows: list[dict], cmdline: str) -> str:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "## Circuit theory: pairwise solves with a current map",
        "",
        f"Measured {when} on {machine()}; {versions()}.",
        (
            f"Command: `{cmdline}`.  Each tool in a fresh process, {args.repeat} run(s) per size (median), "
            f"{args.threads} thread(s) for BLAS / OpenMP; timing from the arrays in memory to the cumulative current map "
            "(graph, preconditioner or factor, solve, map); peak memory = the process's high-water mark."
        ),
        "",
        (
            "Problem: the synthetic grids of the cost-distance benchmark (resistance 1..1000, 6-12 % no data, 8 neighbours, "
            "Circuitscape's conductance averaging), focal patches = discs of 49 cells, 1 A from one to the other."
        ),
        "",
        "| cells | tool | seconds | CPU s | CG iterations | peak memory | effective resistance | vs landschaft (exact) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = LABELS[row["tool"]]
        if "seconds" not in row:
            lines.append(f"| {row['cells'] / 1e6:g} M ({row['n']}²) | {name} | {row.get('error', '–')} | | | | | |")
            continue
        its = row["iterations"]
        it_s = "direct" if all(i == 0 for i in its) else ", ".join(str(i) for i in its[:6])
        a = row.get("agree")
        ag = (
            f"R {a['r_rel']:.0e}; map max |diff| {a['map_max_abs_over_peak']:.0e} of peak, "
            f"{a['map_max_rel_corridor']:.0e} rel. on corridor cells"
            if a
            else ("reference" if row["tool"] == "landschaft" else "–")
        )
        r_s = ", ".join(f"{v:.6g}" for v in row["r_eff"][:1]) + (
            f" (+{len(row['r_eff']) - 1} pairs)" if len(row["r_eff"]) > 1 else ""
        )
        lines.append(
            f"| {row['cells'] / 1e6:g} M ({row['n']}²) | {name} | {row['seconds']:.2f} | "
            f"{row.get('cpu_s', math.nan):.2f} | {it_s} | "
            f"{row['peak_mb'] / 1024:.2f} GB | {r_s} | {ag} |"
        )
    lines += ["", "### Ratios (from this run)", "", ("| cells | first pair vs landschaft (wall; CPU) | memory vs landschaft | "
              "first pair vs plain pyamg | further pair vs plain pyamg | ours per 1 M cells | targets |"),
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for n in args.sizes:
        ours = _get(rows, "leopardgeo", n)
        four = _get(rows, "leopardgeo-4", n)
        ls = _get(rows, "landschaft", n)
        plain = _get(rows, "pyamg-plain", n)
        if "seconds" not in ours:
            continue
        t1 = ours["seconds"]

        def ratio(other: dict, mine: float) -> str:
            return f"{other['seconds'] / mine:.1f}×" if "seconds" in other else "–"

        vs_ls = ratio(ls, t1)
        mem = "–"
        if "seconds" in ls:
            vs_ls += f"; {ls['cpu_s'] / ours['cpu_s']:.1f}×" if "cpu_s" in ls and "cpu_s" in ours else ""
            mem = f"{ours['peak_mb'] / ls['peak_mb']:.2f}"

        further = math.nan
        if "seconds" in four:
            further = max(four["seconds"] - t1, 1e-9) / 5  # five more pairs than the first
        fp = f"{plain['seconds'] / further:.1f}× ({further:.2f} s/pair)" if "seconds" in plain and further == further else "–"
        target = ""
        if n == 2000 and "seconds" in ls:
            ok1 = ls["seconds"] / t1 >= 2.5
            ok2 = ours["peak_mb"] <= ls["peak_mb"] / 3
            target = f"≥2.5× landschaft {'met' if ok1 else '**not met**'}; ≤⅓ of its memory {'met' if ok2 else '**not met**'}"
        if n == 4000:
            ok = t1 < 45 and ours["peak_mb"] <= 5 * 1024
            target = f"<45 s and ≤5 GB {'met' if ok else '**not met**'}"
            if "seconds" not in ls:
                vs_ls = f"{106.01 / t1:.1f}× against the earlier run's 106.01 s"
                mem = f"{ours['peak_mb'] / (17.34 * 1024):.2f} against the earlier run's 17.34 GB"
        lines.append(
            f"| {n * n / 1e6:g} M | {vs_ls} | {mem} | {ratio(plain, t1)} | {fp} | {t1 / (n * n / 1e6):.2f} s | {target} |"
        )
    lines += [
        "",
        "Phases of our one-pair solve (s): "
        + "; ".join(
            f"{n}²: " + ", ".join(f"{k} {v:.2f}" for k, v in _get(rows, "leopardgeo", n).get("phases", {}).items())
            for n in args.sizes
            if "phases" in _get(rows, "leopardgeo", n)
        )
        + ".",
        "",
        "### Circuitscape's published figures (from elsewhere, not measured here)",
        "",
        (
            "Circuitscape.jl's BigTests (`docs/src/benchmark/plot.jl`), 16 processes on a 20-core Xeon Silver 4114 with 384 GB; "
            "whole pairwise runs with many pairs, so only the order of magnitude compares with a single pair here:"
        ),
        "",
        "| million cells | Circuitscape 4.0.5 (Python) | Circuitscape.jl cg+amg | Circuitscape.jl CHOLMOD |",
        "|---|---|---|---|",
    ]
    for m, figs in CIRCUITSCAPE_PUBLISHED.items():
        lines.append(
            f"| {m} | {figs['Circuitscape 4.0.5 (Python)']:.0f} s ({figs['Circuitscape 4.0.5 (Python)'] / m:.0f} s per M) | "
            f"{figs['Circuitscape.jl cg+amg']:.0f} s ({figs['Circuitscape.jl cg+amg'] / m:.0f} s per M) | "
            f"{figs['Circuitscape.jl CHOLMOD']:.0f} s ({figs['Circuitscape.jl CHOLMOD'] / m:.0f} s per M) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], Path(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--write", type=Path, default=None)
    ap.add_argument(
        "--peer-max-side", type=int, default=None, help="skip landschaft above this side (its 16 M run needs about 17 GB)"
    )
    args = ap.parse_args()
    cmdline = "python benchmarks/bench_circuit.py " + " ".join(sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory(prefix="lg_circuit_") as tmp:
        for n in args.sizes:
            rows += bench_size(n, args, Path(tmp))
    text = report(args, rows, cmdline)
    print(text)
    if args.write:
        write_section(args.write, "bench_circuit", text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
