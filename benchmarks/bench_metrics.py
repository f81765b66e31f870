"""Connectivity metrics (PC, IIC, node and link dPC / dIIC, BC, BCPC) at graph sizes users build.

Usage:
    python benchmarks/bench_metrics.py [--complete 142 404] [--planar 1000 5000] [--spread 5000]
        [--floors 1e-4] [--brute-complete 60] [--brute-planar 300] [--brute-spread 300]
        [--write docs/performance.md]

Graphs (seeded, built in the worker, not timed): *complete* = every pair of ``n`` random points in a
100 km square joined by its Euclidean distance (the node and connection files Conefor and Makurhini users
commonly build from patch centroids); *planar* = the Delaunay triangulation of ``n`` random points in the
same 100 km square (about 3 n links, like the minimum planar graph of the links stage); *spread* = the same
triangulation at a constant density of one patch per 25 km² (a square of side 5 km × √n: 100 km for 400
patches, 354 km for 5,000), so larger graphs cover larger landscapes instead of packing more patches
into the same one.  Areas are log-normal (median 500 ha), median dispersal 11 km, p = 0.5.  Every planar
and spread size also runs once per ``--floors`` value with that ``pair_probability_floor`` (the
reported bound, and the true error where the brute force runs).  Each measurement runs in a fresh
subprocess (``--worker``) that first computes the metrics of a 5-node graph (numba compilation or cache
load: not timed), then times
:func:`leopardgeo.stages.metrics.connectivity_metrics` with node and link metrics.  The brute-force definition
(:func:`leopardgeo.testing.naive_connectivity_metrics`: all pairs recomputed once per node and once per
link) runs on the ``--brute-complete`` and ``--brute-planar`` sizes, and every node and link value of the fast version is
compared with it.  With ``--write`` the Markdown section goes between ``<!-- bench_metrics:start -->`` and
``<!-- bench_metrics:end -->`` of the file (appended if missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _sections import write_section

SIDE_M = 100_000.0
D50_M = 11_000.0


def side_m(kind: str, n: int) -> float:
    """Side of the square the points are drawn in."""
    return 5_000.0 * math.sqrt(n) if kind == "spread" else SIDE_M


def build(kind: str, n: int, seed: int = 20261202):
    import networkx as nx
    from scipy.spatial import Delaunay

    rng = np.random.default_rng([seed, n, kind == "planar"] + ([2] if kind == "spread" else []))
    xy = rng.uniform(0, side_m(kind, n), (n, 2))
    G = nx.Graph()
    for i in range(n):
        G.add_node(i, area_ha=float(rng.lognormal(math.log(500.0), 1.0)))
    if kind == "complete":
        i, j = np.triu_indices(n, 1)
    else:
        tri = Delaunay(xy).simplices
        e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1)
        i, j = np.unique(e, axis=0).T
    d = np.hypot(*(xy[i] - xy[j]).T)
    G.add_edges_from((int(a), int(b), {"cwd": float(c)}) for a, b, c in zip(i, j, d, strict=True))
    return G


def worker(kind: str, n: int, brute: bool, floor: float | None) -> dict:
    from leopardgeo.stages.metrics import connectivity_metrics, dispersal_k
    from leopardgeo.testing import naive_connectivity_metrics

    connectivity_metrics(build("complete", 5), median_distance=D50_M)  # compile / load the cache
    G = build(kind, n)
    t0, c0 = time.perf_counter(), time.process_time()
    m = connectivity_metrics(G, median_distance=D50_M, links=True, pair_probability_floor=floor)
    out = {"kind": kind, "n": n, "links": G.number_of_edges(), "fast_s": time.perf_counter() - t0,
           "fast_cpu_s": time.process_time() - c0, "floor": floor, "bound_pct": m.summary["dPC_error_bound"],
           "side_km": side_m(kind, n) / 1000.0, "load": os.getloadavg()[0]}  # fmt: skip
    if brute:
        t0 = time.perf_counter()
        ref = naive_connectivity_metrics(G, k=dispersal_k(D50_M))
        out["brute_s"] = time.perf_counter() - t0
        cols = ["dPC", "dPC_intra", "dPC_flux", "dPC_connector", "dIIC", "dIIC_intra", "dIIC_flux", "dIIC_connector"]
        node_err = float(np.abs(m.nodes[cols].to_numpy(float) - ref["nodes"].loc[m.nodes.index, cols].to_numpy(float)).max())
        for col in ("BC", "BCPC"):  # not percentages: relative to the largest value
            want = ref["nodes"].loc[m.nodes.index, col].to_numpy(float)
            out[f"{col}_rel_diff"] = float(np.abs(m.nodes[col].to_numpy(float) - want).max() / max(np.abs(want).max(), 1e-300))
        link_err = max(
            max(abs(r.dPC_link - ref["links"][frozenset((r.patch_a, r.patch_b))][0]),
                abs(r.dIIC_link - ref["links"][frozenset((r.patch_a, r.patch_b))][1]))
            for r in m.links.itertuples(index=False)
        )  # fmt: skip
        out["max_abs_diff_pct"] = max(node_err, link_err)
        out["pc_rel_diff"] = abs(m.summary["PC"] - ref["PC"]) / ref["PC"]
    return out


def run(kind: str, n: int, brute: bool, floor: float | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, str(n)] + (["--with-brute"] if brute else [])
    cmd += ["--floor", repr(floor)] if floor is not None else []
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "## Connectivity metrics (`bench_metrics.py`)",
        "",
        (
            f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            "shared machine. Node and link metrics (PC, IIC, EC, node dPC / dIIC with intra / flux / connector, "
            "link dPC / dIIC, BC, BCPC, bridges). Brute force = every pair recomputed once per node and per link "
            "(`leopardgeo.testing.naive_connectivity_metrics`, dense `scipy.sparse.csgraph` all pairs); "
            "\"max diff\" = the largest difference of any dPC / dIIC value (node, fraction or link) between the two, in "
            "percentage points (BC and BCPC are compared relative to their largest value in the JSON lines). "
            "\"floor\" = `pair_probability_floor` (— = exact) and \"bound\" = the `dPC_error_bound` it reported "
            "(percentage points). \"load\" = the machine's 1-minute load average when the run ended."
        ),
        "",
        (
            "| graph | side | nodes | links | floor | wall | CPU (all threads) | load | bound (pct pt) | brute force wall "
            "| speed-up | max diff (pct pt) |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for r in rows:
        brute = f"{r['brute_s']:.1f} s" if "brute_s" in r else "—"
        ratio = f"{r['brute_s'] / r['fast_s']:.0f}×" if "brute_s" in r else "—"
        diff = f"{r['max_abs_diff_pct']:.1e}" if "brute_s" in r else "—"
        cpu = f"{r['fast_cpu_s']:.2f} s" if "fast_cpu_s" in r else "—"
        floor = f"{r['floor']:g}" if r.get("floor") is not None else "—"
        bound = f"{r['bound_pct']:.1e}" if r.get("floor") is not None else "0"
        load = f"{r['load']:.1f}" if "load" in r else "—"
        side = f"{r.get('side_km', SIDE_M / 1000):.0f} km"
        lines.append(f"| {r['kind']} | {side} | {r['n']:,} | {r['links']:,} | {floor} | {r['fast_s']:.2f} s | {cpu} | {load} | "
                     f"{bound} | {brute} | {ratio} | {diff} |")  # fmt: skip
    lines += [
        "",
        (
            "Targets: the 404-node complete graph in ≤ 10 s and a planar graph of 5,000 patches in ≤ 30 s, node and "
            "link metrics. The version before the per-source kernel (one all-pairs recomputation per removed "
            "link) took 248 s on a 142-node complete graph; the per-source kernel before it used dominator trees "
            "(one restricted Dijkstra per shortest-path subtree) took 8.5 s of CPU on the 1,000-patch and 55 s on "
            "the 2,000-patch planar graph; the dominator-tree kernel with one search per node and another per link "
            "took 242 s of CPU on the 5,000-patch planar graph and 3.2 s on the 404-node complete graph; the pre-order "
            "kernel before each pair was counted from one end only took 92 s of CPU on the 5,000-patch planar graph "
            "(load 22), and the one before its per-node search was inlined 62.3 s of CPU, 31.5 s wall (2 threads, "
            "load 1.6)."
        ),
        "",
        "```sh",
        ".venv/bin/python benchmarks/bench_metrics.py --write docs/performance.md",
        "```",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--complete", type=int, nargs="*", default=[142, 404])
    ap.add_argument("--planar", type=int, nargs="*", default=[1000, 5000])
    ap.add_argument("--brute-complete", type=int, nargs="*", default=[60], help="complete graphs to check by brute force")
    ap.add_argument("--brute-planar", type=int, nargs="*", default=[300], help="planar graphs to check by brute force")
    ap.add_argument("--spread", type=int, nargs="*", default=[1000, 5000], help="planar graphs at constant density")
    ap.add_argument("--brute-spread", type=int, nargs="*", default=[300], help="spread graphs to check by brute force")
    ap.add_argument("--floors", type=float, nargs="*", default=[1e-4], help="pair_probability_floor runs (planar, spread)")
    ap.add_argument("--from-jsonl", type=Path, help="make the table from the JSON lines of earlier runs instead")
    ap.add_argument("--write", type=Path)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--with-brute", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--floor", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.with_brute, args.floor)))
        return
    rows = []
    if args.from_jsonl:
        rows = [json.loads(line) for line in args.from_jsonl.read_text().splitlines() if line.startswith("{")]
    groups = (("complete", args.complete, args.brute_complete), ("planar", args.planar, args.brute_planar),
              ("spread", args.spread, args.brute_spread))  # fmt: skip
    for kind, sizes, brute in groups if not args.from_jsonl else ():
        for n in sorted(set(sizes) | set(brute)):
            for floor in [None] + (list(args.floors) if kind != "complete" else []):
                r = run(kind, n, n in brute, floor)
                print(json.dumps(r), flush=True)
                rows.append(r)
    kinds = ["complete", "planar", "spread"]
    rows.sort(key=lambda r: (kinds.index(r["kind"]), r["n"], r.get("floor") or 0.0))
    text = markdown(rows)
    print(text)
    if args.write:
        write_section(args.write, "bench_metrics", text)


if __name__ == "__main__":
    main()
