"""Omniscape on a big synthetic GeoTIFF on a Dask LocalCluster: time, peak memory per worker, equality, scaling.

Usage (from ``benchmarks/``):
    python bench_omniscape_cluster.py [--size 8000] [--radius 6] [--block 9] [--modes single cluster1 cluster2]
        [--memory-gb 4] [--write ../docs/performance.md]

The problem: a SIZE x SIZE grid (8000 x 8000 = 64 M cells) of smooth log-normal resistance (a Gaussian-filtered
normal field, seed 0, 2 % no data), float32 GeoTIFF (tiled, deflate), sources 1 / resistance (Omniscape's
``source_from_resistance``), read band by band through rasterio windows (``leopardgeo.stages.omniscape.omniscape_files``):
a task opens the file and reads only its band's rows plus the window's reach.

Modes, each in a fresh process (time = from the file to the three maps in the driver's memory; numba's
compilation on a tiny grid excluded; peak memory = each process's high-water mark, VmHWM):
  single    no executor: every band in the driver process, one after another (the reference)
  cluster1  ``get_executor(workers=1, threads=1, memory_limit_gb=MEMORY)``: a LocalCluster of 1 worker process
  cluster2  the same with 2 worker processes (strong scaling: same problem, twice the workers)

Every map is compared with the reference bit for bit (the bands are summed in a fixed order).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sections import write_section
from bench_costdist import _call, _env, _maxrss_mb, machine

MODES = ("single", "cluster1", "cluster2")


def write_problem(path: Path, size: int) -> None:
    """The synthetic resistance GeoTIFF, written in bands of rows (the field is made in one piece: 8 B a cell)."""
    from scipy import ndimage

    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)).astype(np.float32), 4.0)
    field *= np.float32(2.0 / field.std())
    np.exp(field, out=field)
    field[rng.random((size, size), dtype=np.float32) < 0.02] = np.nan
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "float32", "nodata": np.nan,
        "crs": "EPSG:32652", "transform": from_origin(500_000, 5_000_000, 100, 100),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(field, 1)


def _peak_mb() -> float:
    return _maxrss_mb()


def worker(mode: str, d: Path, radius: int, block: int, memory_gb: float) -> dict:
    from leopardgeo.core.executor import get_executor
    from leopardgeo.kernels.omniscape import omniscape
    from leopardgeo.stages.omniscape import OmniscapeConfig, omniscape_files

    tiny = np.ones((12, 12))
    omniscape(tiny, tiny, radius=3, block_size=3)  # compile outside the timing
    # radius and buffer are metres in the config: cells of 100 m
    cfg = OmniscapeConfig(radius_m=radius * 100.0, block_size=block, source="resistance", source_threshold=0.0)
    ex = None
    workers_mb: list[float] = []
    if mode != "single":
        ex = get_executor(workers=int(mode[-1]), threads=1, memory_limit_gb=memory_gb)
        ex.map(_compile, [0] * ex.slots)  # each worker compiles its kernels outside the timing
    cpu0 = ex.client.run(_cpu_s) if ex is not None else {}
    drv0 = _cpu_s()
    t = time.perf_counter()
    result, _grid = omniscape_files(d / "res.tif", cfg=cfg, executor=ex)
    wall = time.perf_counter() - t
    driver_cpu = _cpu_s() - drv0
    workers_cpu: list[float] = []
    if ex is not None:
        workers_mb = sorted(ex.client.run(_peak_mb).values())
        cpu1 = ex.client.run(_cpu_s)
        workers_cpu = sorted(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)
        ex.close()
    maps = result.maps
    digest = {}
    for name, a in (("cur", maps.current), ("fp", maps.flow_potential), ("norm", maps.normalized)):
        digest[name] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
        if mode == "single":
            np.save(d / f"{name}_single.npy", a)
        else:
            ref = np.load(d / f"{name}_single.npy", mmap_mode="r") if (d / f"{name}_single.npy").exists() else None
            if ref is not None:
                live = np.isfinite(a) & np.isfinite(ref)
                digest[name + "_maxdiff"] = float(np.max(np.abs(a[live] - ref[live]))) if live.any() else 0.0
    return {
        "mode": mode,
        "wall_s": wall,
        "driver_peak_mb": _maxrss_mb(),
        "workers_peak_mb": workers_mb,
        "driver_cpu_s": driver_cpu,
        "workers_cpu_s": workers_cpu,
        "n_targets": maps.n_targets,
        "digest": digest,
        "n_cells": int(maps.current.size),
    }


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far: unlike wall time, not stretched by other work."""
    t = os.times()
    return t.user + t.system


def _compile(_: int) -> int:
    from leopardgeo.kernels.omniscape import omniscape

    tiny = np.ones((12, 12))
    omniscape(tiny, tiny, radius=3, block_size=3)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8000)
    ap.add_argument("--radius", type=int, default=6)
    ap.add_argument("--block", type=int, default=9)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--memory-gb", type=float, default=4.0)
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--keep", type=Path, help="folder for the problem and maps (default: a temporary one)")
    ap.add_argument("--write", type=Path)
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        mode, d, radius, block, mem = args.worker
        print(json.dumps(worker(mode, Path(d), int(radius), int(block), float(mem))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        if not (d / "res.tif").exists():
            write_problem(d / "res.tif", args.size)
        print(f"problem written in {time.perf_counter() - t:.0f} s", flush=True)
        rows = []
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--worker", mode, str(d), str(args.radius), str(args.block), str(args.memory_gb)]
            row = _call(cmd, args.timeout, _env(1))
            row.setdefault("mode", mode)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.write:
        write_section(args.write, "bench_omniscape_cluster", section(args, rows))


def section(args: argparse.Namespace, rows: list[dict]) -> str:
    ref = next((r for r in rows if r.get("mode") == "single" and "error" not in r), None)
    one = next((r for r in rows if r.get("mode") == "cluster1" and "error" not in r), None)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    out = [
        "## Omniscape on a LocalCluster (a 64 M-cell GeoTIFF read band by band)",
        "",
        (
            f"Measured {dt.date.today().isoformat()} on {machine()}; load average at the end {load} "
            "(the 2 cores were shared with other work: wall times scale with the load)."
        ),
        "",
        (
            f"Command: `python bench_omniscape_cluster.py --size {args.size} --radius {args.radius} --block {args.block} "
            f"--modes {' '.join(args.modes)} --memory-gb {args.memory_gb:g} --write ../docs/performance.md` "
            f"(from `benchmarks/`). A {args.size:,} x {args.size:,} float32 GeoTIFF of smooth log-normal resistance "
            f"(2 % no data), sources 1 / resistance, radius {args.radius} cells, block size {args.block}, 8 neighbours, "
            f"current + flow potential + normalised current; workers of 1 thread with memory_limit {args.memory_gb:g} GB each."
        ),
        "",
        (
            "| mode | windows | wall s | speed-up vs 1 worker | CPU s: driver / each worker | driver peak | peak per worker | "
            "maps vs single process |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['mode']} | | {r['error']} | | | | | |")
            continue
        speed = f"{one['wall_s'] / r['wall_s']:.2f}" if one and r["mode"] != "single" else ""
        workers = ", ".join(f"{m / 1000:.2f} GB" for m in r["workers_peak_mb"]) or "(no workers)"
        if r is ref:
            same = "reference"
        elif ref is None:
            same = "no reference"
        else:
            keys = ("cur", "fp", "norm")
            if all(r["digest"][k] == ref["digest"][k] for k in keys):
                same = "identical"
            else:
                same = "differs: max |diff| " + ", ".join(f"{k} {r['digest'].get(k + '_maxdiff', math.nan):.1e}" for k in keys)
        driver = f"{r['driver_peak_mb'] / 1000:.2f} GB"
        cpus = [r.get("driver_cpu_s"), *r.get("workers_cpu_s", [])]
        cpu = " / ".join("n/a" if c is None else f"{c:.0f}" for c in cpus)
        out.append(f"| {r['mode']} | {r['n_targets']:,} | {r['wall_s']:.0f} | {speed} | {cpu} | {driver} | {workers} | {same} |")
    # the model: tasks (bands of BAND_BLOCK_ROWS rows of blocks) and the bytes each moves
    from leopardgeo.kernels.omniscape import BAND_BLOCK_ROWS

    n, b, reach = args.size, args.block, args.radius
    band_rows = BAND_BLOCK_ROWS * b
    n_tasks = -(-(n // b) // BAND_BLOCK_ROWS)
    read_rows = min(n, band_rows + 2 * reach)
    out += [
        "",
        (
            f"Tasks and bytes: {n_tasks:,} tasks (bands of {BAND_BLOCK_ROWS} rows of blocks = {band_rows} rows); a task "
            f"reads {read_rows} rows x {n:,} columns of float32 from the file ({read_rows * n * 4 / 1e6:.1f} MB) and sends "
            f"back two float64 maps of those rows ({2 * read_rows * n * 8 / 1e6:.1f} MB); nothing is scattered (workers "
            f"open the file). The driver holds the three float64 maps ({3 * n * n * 8 / 1e9:.2f} GB) and adds each band's "
            "rows in band order."
        ),
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
