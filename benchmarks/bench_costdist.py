"""Cost distance of leopardgeo against peer tools on the same synthetic resistance grids.

Usage:
    python benchmarks/bench_costdist.py [--sizes 1000 2000 4000 8000] [--repeat 3]
        [--peers-max-size N] [--timeout 900] [--write docs/performance.md]

Every tool runs in a fresh subprocess per repetition, reads the grid from ``.npy`` files in a
temporary folder, times only its computation and writes its cost surface for the agreement check
(GRASS: ``r.cost`` is its own fresh process per repetition, run in a temporary location).
Peak memory is the maximum resident set size of that process.  One thread per tool
(``--threads``).  With ``--write`` the Markdown section is put between the markers
``<!-- bench_costdist:start -->`` and ``<!-- bench_costdist:end -->`` of the file (appended
if missing); the rest of the file is kept.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata as md
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sections import write_section
from scipy import ndimage

CELL_M = 100.0
CRS = "EPSG:32652"
X0, Y_TOP = 300_000.0, 5_200_000.0  # upper-left corner of every synthetic grid (UTM 52N)
SOURCE_RADIUS = 4  # cells: a disc of 49 cells
RTOL = 1e-6
TOOLS = ("leopardgeo", "xarray-spatial", "skimage", "scipy", "grass", "landschaft")
LABELS = {
    "leopardgeo": "leopardgeo `cost_distance`",
    "xarray-spatial": "xarray-spatial `cost_distance`",
    "skimage": "skimage `MCP_Geometric`",
    "scipy": "scipy `csgraph.dijkstra` (+ graph build)",
    "grass": "GRASS `r.cost`",
    "landschaft": "landschaft `cost.acc_cost` (+ transition)",
}
#: Rough peak bytes per cell, for the memory guard (upper estimates; scipy from the 360 B/cell of peers.md).
EST_BYTES_PER_CELL = {
    "leopardgeo": 70,
    "xarray-spatial": 70,
    "skimage": 110,
    "scipy": 380,
    "grass": 60,
    "landschaft": 200,
}
INSTALL = {
    "xarray-spatial": "pip install xarray-spatial",
    "skimage": "pip install scikit-image",
    "landschaft": "pip install landschaft",
    "grass": "apt-get install -y grass-core",
}


# --------------------------------------------------------------------------- synthetic grids
def _smooth_field(rng: np.random.Generator, n: int, scales: tuple[int, ...]) -> np.ndarray:
    """Sum of upsampled gaussian-filtered noises (``scales`` in cells), float32 in 0..1."""
    out = np.zeros((n, n), dtype=np.float32)
    for k, s in enumerate(scales):
        m = max(4, math.ceil(n / s) + 2)
        coarse = ndimage.gaussian_filter(rng.standard_normal((m, m)).astype(np.float32), 1.0)
        up = ndimage.zoom(coarse, n / (m - 2), order=1, prefilter=False)[:n, :n]
        out += up / (k + 1)
    out -= out.min()
    out /= out.max()
    return out


def make_grid(n: int, seed: int = 20261125) -> tuple[np.ndarray, np.ndarray]:
    """Resistance (float32, 1..1000, NaN = sea and lakes) and a one-label source disc (int32)."""
    rng = np.random.default_rng([seed, n])
    f = _smooth_field(rng, n, (n // 4, n // 16, 40, 8))
    res = np.power(np.float32(10.0), np.float32(3.0) * f).astype(np.float32)  # 1..1000, log-uniform-ish
    res += rng.uniform(0, 0.5, res.shape).astype(np.float32)  # cell-scale roughness
    np.clip(res, 1.0, 1000.0, out=res)
    water = _smooth_field(rng, n, (n // 6, 30))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / np.float32(n)
    water += np.clip(xx + yy - 1.55, 0, None) * np.float32(4.0)  # a sea in the south-east corner
    target = 0.06 + 0.06 * rng.random()  # 6-12 % no data
    nodata = water > np.quantile(water[:: max(1, n // 1000), :: max(1, n // 1000)], 1 - target)
    src = np.zeros((n, n), dtype=np.int32)
    c = n // 2
    r = SOURCE_RADIUS
    disc = (np.arange(-r, r + 1)[:, None] ** 2 + np.arange(-r, r + 1)[None, :] ** 2) <= r * r + 1
    while nodata[c - r : c + r + 1, c - r : c + r + 1].any():  # nearest all-land spot on the diagonal
        c += 7
    src[c - r : c + r + 1, c - r : c + r + 1][disc] = 1
    res[nodata] = np.nan
    return res, src


def _coords(n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    x = X0 + (np.arange(n_cols) + 0.5) * CELL_M
    y = Y_TOP - (np.arange(n_rows) + 0.5) * CELL_M
    return x, y, (X0, X0 + n_cols * CELL_M, Y_TOP - n_rows * CELL_M, Y_TOP)


def _write_tifs(d: Path, res: np.ndarray, src: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    prof = {
        "driver": "GTiff",
        "height": res.shape[0],
        "width": res.shape[1],
        "count": 1,
        "crs": CRS,
        "transform": from_origin(X0, Y_TOP, CELL_M, CELL_M),
        "tiled": True,
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(d / "res.tif", "w", dtype="float64", nodata=float("nan"), **prof) as ds:
        ds.write(res.astype(np.float64), 1)
    with rasterio.open(d / "src.tif", "w", dtype="uint8", nodata=0, **prof) as ds:
        ds.write(src.astype(np.uint8), 1)


# --------------------------------------------------------------------------- the tools (run in workers)
def _tiny() -> tuple[np.ndarray, np.ndarray]:
    res = np.full((12, 12), 2.0, dtype=np.float32)
    res[5, 3:9] = np.nan
    src = np.zeros((12, 12), dtype=np.int32)
    src[1, 1] = 1
    return res, src


def run_leopardgeo(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    from leopardgeo.kernels.costdist import cost_distance

    return cost_distance(res, src, cell_size_m=CELL_M, connectivity=8).cost


def run_xarray_spatial(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    import xarray as xr
    from xrspatial import cost_distance

    x, y, _ = _coords(*res.shape)
    friction = xr.DataArray(res, dims=("y", "x"), coords={"y": y, "x": x})
    sources = xr.DataArray(src.astype(np.float32), dims=("y", "x"), coords={"y": y, "x": x})
    out = cost_distance(sources, friction, connectivity=8).values  # float32, NaN = no data or unreachable
    return out


def run_skimage(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    from skimage.graph import MCP_Geometric

    costs = np.where(np.isnan(res), np.inf, res)  # inf (or negative) = impassable for MCP
    mcp = MCP_Geometric(costs, sampling=(CELL_M, CELL_M))
    cum, _ = mcp.find_costs(np.argwhere(src > 0))
    return cum


def run_scipy(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    nr, nc = res.shape
    r = res.astype(np.float64)
    valid = ~np.isnan(r)
    idx = np.arange(nr * nc, dtype=np.int32).reshape(nr, nc)
    heads, tails, weights = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each undirected 8-neighbour pair once
        r0, r1 = 0, nr - dr
        c0, c1 = max(0, -dc), nc - max(0, dc)
        a = (slice(r0, r1), slice(c0, c1))
        b = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
        m = valid[a] & valid[b]
        heads.append(idx[a][m])
        tails.append(idx[b][m])
        weights.append(math.hypot(dr, dc) * CELL_M * 0.5 * (r[a][m] + r[b][m]))
    g = csr_matrix((np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))), shape=(nr * nc, nr * nc))
    del heads, tails, weights
    dist = dijkstra(g, directed=False, indices=np.flatnonzero(src.ravel() > 0), min_only=True)
    out = dist.reshape(nr, nc)
    out[~valid] = np.nan
    return out


def run_landschaft(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    import landschaft as ls

    _, _, extent = _coords(*res.shape)
    t = ls.cost.geo_correction(1 / ls.cost.transition(res, "mean", 8, extent=extent, crs=CRS))
    return np.asarray(ls.cost.acc_cost(t, src > 0))


MODULES = {
    "leopardgeo": "leopardgeo.kernels.costdist",
    "xarray-spatial": "xrspatial",
    "skimage": "skimage.graph",
    "scipy": "scipy.sparse.csgraph",
    "landschaft": "landschaft",
}
RUNNERS = {
    "leopardgeo": run_leopardgeo,
    "xarray-spatial": run_xarray_spatial,
    "skimage": run_skimage,
    "scipy": run_scipy,
    "landschaft": run_landschaft,
}


def _maxrss_mb() -> float:
    """Peak resident memory of this process (MB).

    ``VmHWM`` of the process's own address space: on Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` keeps the
    parent's peak across fork + exec, so in a worker it would report the benchmark driver's memory.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def worker(tool: str, d: Path, out: str) -> dict:
    """One timed run of ``tool`` on the grid in ``d``, in this (fresh) process."""
    fn = RUNNERS[tool]
    t = time.perf_counter()
    importlib.import_module(MODULES[tool])
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    fn(*_tiny())  # JIT compilation or cache load, lazy imports: not timed
    first = time.perf_counter() - t
    res = np.load(d / "res.npy")
    src = np.load(d / "src.npy")
    t = time.perf_counter()
    cost = fn(res, src)
    seconds = time.perf_counter() - t
    if out:
        np.save(out, np.asarray(cost, dtype=np.float64))
    return {"seconds": seconds, "peak_mb": _maxrss_mb(), "first_call_s": first, "import_s": import_s}


def grass_worker(d: Path, out: str, repeat: int, memory_mb: int) -> dict:
    """Inside ``grass --tmp-location ... --exec``: import, ``repeat`` timed r.cost processes, export."""
    import rasterio

    def grass(*args: str) -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

    grass("r.in.gdal", f"input={d / 'res.tif'}", "output=res", "--quiet")
    grass("r.in.gdal", f"input={d / 'src.tif'}", "output=src", "--quiet")
    grass("g.region", "raster=res")
    runs = []
    for _ in range(repeat):
        # /usr/bin/time (a small process) forks r.cost, so its %M is r.cost's own peak, not this driver's
        rss = d / "rcost_rss.txt"
        cmd = ["r.cost", "input=res", "output=cost", "start_raster=src", f"memory={memory_mb}", "--overwrite", "--quiet"]
        t = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss), *cmd], check=True)
        seconds = time.perf_counter() - t
        runs.append({"seconds": seconds, "peak_mb": int(rss.read_text().split()[-1]) / 1024})
    tif = Path(out).with_suffix(".tif")
    grass("r.out.gdal", "input=cost", f"output={tif}", "type=Float64", "createopt=TILED=YES,BIGTIFF=IF_SAFER", "--quiet")
    with rasterio.open(tif) as ds:
        a = ds.read(1, masked=True)
    np.save(out, a.filled(np.nan).astype(np.float64) * CELL_M)  # r.cost reports cost in cell units
    tif.unlink()
    return {"runs": runs}


def links_worker(n: int, n_patches: int, repeat: int, seed: int) -> dict:
    """One-pass planar links on an ``n``² grid with ``n_patches`` disc patches, against one cost-distance run."""
    from leopardgeo.core.grid import Grid
    from leopardgeo.kernels.costdist import cost_distance
    from leopardgeo.stages.graph import build_graph
    from leopardgeo.stages.patches import patch_polygons

    res, _ = make_grid(n, seed)
    rng = np.random.default_rng([seed, n, n_patches])
    labels = np.zeros(res.shape, dtype=np.int32)
    taken = np.zeros(res.shape, dtype=bool)
    pid = 0
    while pid < n_patches:
        rad = int(rng.integers(3, 16))
        r, c = (int(v) for v in rng.integers(rad + 1, n - rad - 1, size=2))
        win = (slice(r - rad, r + rad + 1), slice(c - rad, c + rad + 1))
        disc = (np.arange(-rad, rad + 1)[:, None] ** 2 + np.arange(-rad, rad + 1)[None, :] ** 2) <= rad * rad
        grown = (slice(r - rad - 1, r + rad + 2), slice(c - rad - 1, c + rad + 2))
        if np.isnan(res[win][disc]).any() or taken[grown].any():
            continue
        pid += 1
        labels[win][disc] = pid
        taken[win] |= disc
    grid = Grid.from_bounds((X0, Y_TOP - n * CELL_M, X0 + n * CELL_M, Y_TOP), cell_size_m=CELL_M, crs=CRS)
    patches = patch_polygons(labels, grid)
    # warm-up (compile or cache load) on a tiny grid
    tg = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs=CRS)
    tl = np.array([[1, 0, 0, 0, 2]], dtype=np.int32)
    t = time.perf_counter()
    build_graph(np.ones(tg.shape), tl, patch_polygons(tl, tg), tg, rule="planar")
    first = time.perf_counter() - t
    t_graph, t_cd, n_links = [], [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        G, _ = build_graph(res, labels, patches, grid, rule="planar")
        t_graph.append(time.perf_counter() - t)
        n_links = G.number_of_edges()
        t = time.perf_counter()
        cost_distance(res, labels, cell_size_m=CELL_M, connectivity=8)
        t_cd.append(time.perf_counter() - t)
    return {
        "graph_s": statistics.median(t_graph),
        "cost_distance_s": statistics.median(t_cd),
        "n_links": n_links,
        "n_patches": n_patches,
        "first_call_s": first,
        "peak_mb": _maxrss_mb(),
    }


def demo_worker(out_dir: str) -> dict:
    """The whole demo run in this fresh process (numba cache dir empty): imports, compilation, stages."""
    t = time.perf_counter()
    from leopardgeo.runner.pipeline import run
    from leopardgeo.runner.registry import demo_config

    result = run(demo_config(), out_dir=Path(out_dir) / "out", overwrite=True)
    total = time.perf_counter() - t
    g = result.grid
    return {
        "timings_s": result.timings_s,
        "total_s": total,
        "n_links": result.graph.number_of_edges() if result.graph is not None else 0,
        "cells": g.height * g.width,
        "cell_size_m": g.cell_size_m,
    }


# --------------------------------------------------------------------------- orchestration
def _env(threads: int, **extra: str) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = str(threads)
    env.update(extra)
    return env


def _call(cmd: list[str], timeout: float, env: dict) -> dict:
    """Run a worker; its last stdout line is JSON.  Errors come back as ``{"error": ...}``."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"not run to the end (timeout > {timeout:g} s)"}
    if p.returncode != 0:
        if p.returncode < 0 or p.returncode == 137:
            return {"error": f"failed (killed by signal {abs(p.returncode) % 128}, likely out of memory)"}
        tail = [ln for ln in p.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit code {p.returncode}"]
        return {"error": f"failed: {tail[0][:160]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return math.inf


def _missing(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    if tool == "grass":
        return None if shutil.which("grass") else f"not installed (`{INSTALL['grass']}`)"
    if importlib.util.find_spec(MODULES[tool].split(".")[0]) is None:
        return f"not installed (`{INSTALL.get(tool, 'pip install ' + tool)}`)"
    return None


def compare(ours: np.ndarray, other: np.ndarray) -> dict:
    """Agreement on the cells we reach; cells reached by one and not the other are counted."""
    mine = np.isfinite(ours)
    theirs = np.isfinite(other)
    both = mine & theirs
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(other[both] - ours[both]) / np.maximum(np.abs(ours[both]), 1e-12)
    zero = ours[both] == 0
    diff[zero] = np.abs(other[both][zero])  # source cells: absolute difference from 0
    mx = float(diff.max()) if diff.size else math.nan
    reach = int((mine != theirs).sum())
    return {"max_rel": mx, "reach_mismatch": reach, "ok": bool(reach == 0 and mx <= RTOL)}


def bench_size(n: int, args: argparse.Namespace, tmp: Path, tools: list[str]) -> list[dict]:
    d = tmp / f"g{n}"
    d.mkdir()
    t = time.perf_counter()
    res, src = make_grid(n, args.seed)
    np.save(d / "res.npy", res)
    np.save(d / "src.npy", src)
    nodata = float(np.isnan(res).mean())
    if "grass" in tools:
        _write_tifs(d, res, src)
    del res, src
    print(f"[{n}²] grid made in {time.perf_counter() - t:.1f} s ({nodata:.1%} no data)", file=sys.stderr)
    cells = n * n
    rows = []
    env = _env(args.threads)
    me = [sys.executable, str(Path(__file__).resolve())]
    for tool in TOOLS:
        row = {"tool": tool, "n": n, "cells": cells, "nodata": nodata}
        rows.append(row)
        if tool not in tools:
            row["error"] = f"not run (sizes above {args.peers_max_size}² run only {', '.join(args.large_tools)})"
            continue
        why = _missing(tool)
        need_mb = EST_BYTES_PER_CELL[tool] * cells / 2**20
        if why is None and need_mb > 0.85 * _available_mb():
            why = f"not run (memory: needs ~{need_mb / 1024:.0f} GB, {_available_mb() / 1024:.0f} GB available)"
        if why:
            row["error"] = why
            continue
        out = d / f"cost_{tool}.npy"
        t = time.perf_counter()
        if tool == "grass":
            cmd = [
                "grass", "--tmp-location", CRS, "--exec", *me, "--worker", "grass", "--dir", str(d), "--out", str(out),
                "--repeat", str(args.repeat), "--grass-memory-mb", str(args.grass_memory_mb),
            ]  # fmt: skip
            r = _call(cmd, args.timeout * (args.repeat + 1), env)
            reps = r.get("runs", [])
            if "error" in r:
                row["error"] = r["error"]
        else:
            reps = []
            for k in range(args.repeat):
                last = k == args.repeat - 1
                r = _call([*me, "--worker", tool, "--dir", str(d), "--out", str(out) if last else ""], args.timeout, env)
                if "error" in r:
                    row["error"] = r["error"]
                    break
                reps.append(r)
        if reps and "error" not in row:
            row["seconds"] = statistics.median(x["seconds"] for x in reps)
            row["peak_mb"] = max(x["peak_mb"] for x in reps)
            if "first_call_s" in reps[0]:
                row["first_call_s"] = statistics.median(x["first_call_s"] for x in reps)
        print(f"[{n}²] {tool}: {row.get('seconds', row.get('error'))} ({time.perf_counter() - t:.0f} s wall)", file=sys.stderr)
    ours_file = d / "cost_leopardgeo.npy"
    if ours_file.exists():
        ours = np.load(ours_file)
        for row in rows:
            f = d / f"cost_{row['tool']}.npy"
            if row["tool"] != "leopardgeo" and f.exists() and "seconds" in row:
                row["agree"] = compare(ours, np.load(f))
        base = next((r.get("seconds") for r in rows if r["tool"] == "leopardgeo"), None)
        for row in rows:
            if base and "seconds" in row:
                row["ratio"] = row["seconds"] / base
    shutil.rmtree(d)
    return rows


def bench_demo(args: argparse.Namespace, tmp: Path) -> dict:
    """Cold demo runs: library call (stage timings) and the ``leopardgeo run`` command, numba cache empty."""
    me = [sys.executable, str(Path(__file__).resolve())]
    lib, cli = [], []
    exe = Path(sys.executable).with_name("leopardgeo")
    for k in range(args.repeat):
        cache = tmp / f"numba_cache_{k}"
        cache.mkdir()
        r = _call(
            [*me, "--worker", "demo", "--dir", str(tmp / f"demo_{k}")],
            args.timeout,
            _env(args.threads, NUMBA_CACHE_DIR=str(cache)),
        )
        if "error" in r:
            return r
        lib.append(r)
        shutil.rmtree(cache)
        cache.mkdir()
        cmd = [str(exe), "-q", "run", "--out", str(tmp / f"demo_cli_{k}"), "--overwrite"]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(args.threads, NUMBA_CACHE_DIR=str(cache)), check=False)
        cli.append(time.perf_counter() - t if p.returncode == 0 else math.nan)
    return {
        "links_s": statistics.median(x["timings_s"]["links"] for x in lib),
        "total_s": statistics.median(x["total_s"] for x in lib),
        "stages": {k: statistics.median(x["timings_s"][k] for x in lib) for k in lib[0]["timings_s"]},
        "cli_s": statistics.median(cli),
        "n_links": lib[0]["n_links"],
        "cells": lib[0]["cells"],
        "cell_size_m": lib[0]["cell_size_m"],
    }


# --------------------------------------------------------------------------- report
def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_gb = math.nan
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_gb = int(line.split()[1]) / 2**20
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, {platform.system()} {platform.release()} ({platform.machine()}), "
        f"Python {platform.python_version()}"
    )


def versions() -> str:
    out = []
    for name, dist in (
        ("leopardgeo", "leopardgeo"),
        ("numba", "numba"),
        ("numpy", "numpy"),
        ("scipy", "scipy"),
        ("scikit-image", "scikit-image"),
        ("xarray-spatial", "xarray-spatial"),
        ("landschaft", "landschaft"),
    ):
        try:
            out.append(f"{name} {md.version(dist)}")
        except md.PackageNotFoundError:
            out.append(f"{name} not installed")
    if shutil.which("grass"):
        p = subprocess.run(["grass", "--version"], capture_output=True, text=True, check=False)
        first = (p.stdout or p.stderr).strip().splitlines()[:1]
        out.append(first[0].replace("GRASS GIS", "GRASS GIS") if first else "GRASS GIS (version unknown)")
    else:
        out.append("GRASS GIS not installed")
    return ", ".join(out)


def _fmt_cells(c: int) -> str:
    return f"{c / 1e6:g} M ({math.isqrt(c)}²)"


def _agree_text(row: dict) -> str:
    if row["tool"] == "leopardgeo":
        return "reference"
    a = row.get("agree")
    if not a:
        return "–"
    verdict = "yes" if a["ok"] else "**no**"
    reach = "same reachable cells" if a["reach_mismatch"] == 0 else f"{a['reach_mismatch']:,} cells reached by one only"
    return f"{verdict}: max rel. diff {a['max_rel']:.1e}, {reach}"


def report(args: argparse.Namespace, rows: list[dict], links: dict | None, demo: dict | None, cmdline: str) -> str:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "## Cost distance against peer tools",
        "",
        f"Measured {when} by `{cmdline}`",
        f"on {machine()}.",
        "",
        f"Versions: {versions()}.",
        "",
        (
            f"Same synthetic grids for every tool (seed {args.seed}): float32 resistance 1..1000 (a smooth random field, "
            f"log-scaled), {CELL_M:g} m cells, 6–12 % no data (NaN sea and lakes), one source patch (a disc of 49 cells), "
            "8 neighbours, step cost = step length × mean resistance of the two cells. Each tool runs in a fresh process "
            f"per repetition with {args.threads} thread(s); seconds are the median of {args.repeat}, peak memory is the "
            "largest maximum resident set size of those processes (interpreter, imports and input included), "
            "ratio = tool seconds / leopardgeo seconds (above 1 = slower than leopardgeo)."
        ),
        "",
        "| tool | cells | median (s) | peak (MB) | bytes/cell | M cells/s | ratio | agrees with leopardgeo (rtol 1e-6) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        label = LABELS[row["tool"]]
        if "seconds" in row:
            s, mb = row["seconds"], row["peak_mb"]
            ratio = f"{row['ratio']:.2f}" if "ratio" in row else "–"
            lines.append(
                f"| {label} | {_fmt_cells(row['cells'])} | {s:.2f} | {mb:,.0f} | {mb * 2**20 / row['cells']:.0f} | "
                f"{row['cells'] / s / 1e6:.2f} | {ratio} | {_agree_text(row)} |"
            )
        else:
            lines.append(f"| {label} | {_fmt_cells(row['cells'])} | {row.get('error', 'not run')} | | | | | |")
    firsts = [
        f"{_fmt_cells(r['cells'])}: {r['first_call_s']:.2f} s" for r in rows if r["tool"] == "leopardgeo" and "first_call_s" in r
    ]
    lines += [
        "",
        "What each time covers:",
        "",
        (
            "- leopardgeo, xarray-spatial: the call, from the in-memory float32 grid to a cost array. Both are numba-compiled; "
            "a first call on a 12 × 12 grid in the same process, before the timed one, takes the compilation or cache load "
            f"out of the timing. leopardgeo's first call (numba cache load) took {'; '.join(firsts) or 'n/a'}; "
            "see the demo below for a cold run with compilation. xarray-spatial returns float32 (it sums in float64), "
            "hence its ~1e-7 differences."
        ),
        (
            "- skimage: replacing NaN by inf (MCP treats inf and negative costs as impassable), `MCP_Geometric(costs, "
            f"sampling=({CELL_M:g}, {CELL_M:g}))` and `find_costs` from the source cells."
        ),
        (
            "- scipy: building the 8-neighbour graph (vectorised, CSR) **and** `dijkstra(..., directed=False, min_only=True)`; "
            "the graph is most of its memory (a memory guard skips it where it would not fit)."
        ),
        (
            "- GRASS: the wall time of each `r.cost` process (no `-k`, "
            f"`memory={args.grass_memory_mb}`) in a temporary location, "
            "which includes reading its input map from and writing its output map to the GRASS database; importing the "
            "GeoTIFFs (`r.in.gdal`) and exporting are not timed. Peak memory is that of `r.cost` alone. Its cost, in "
            "cell units, is multiplied by the cell size."
        ),
        '- landschaft: `geo_correction(1 / transition(r, "mean", 8, extent=..., crs=...))` **and** `acc_cost(T, source_mask)`.',
        "",
    ]
    if links:
        if "error" in links:
            lines += [f"One-pass links: {links['error']}.", ""]
        else:
            lines += [
                "### Links",
                "",
                (
                    f'One-pass planar links (`build_graph(..., rule="planar")`: one labelled cost-distance run, neighbouring '
                    f"allocation regions, path tracing, link attributes) on the {_fmt_cells(links['cells'])} grid above with "
                    f"{links['n_patches']} disc patches (radius 3–15 cells): {links['graph_s']:.2f} s for "
                    f"{links['n_links']} links, against {links['cost_distance_s']:.2f} s for a single cost-distance run from "
                    f"the same {links['n_patches']} patches: ratio {links['graph_s'] / links['cost_distance_s']:.2f} "
                    f"(median of {args.repeat}, same process, after a warm-up call; peak {links['peak_mb']:,.0f} MB)."
                ),
                "",
            ]
    if demo:
        if "error" in demo:
            lines += [f"Demo: {demo['error']}.", ""]
        else:
            stages = ", ".join(f"{k} {v:.2f} s" for k, v in demo["stages"].items())
            lines += [
                (
                    f"Whole demo (embedded Amur study area, {demo['cell_size_m']:g} m cells, {demo['cells'] / 1e6:.2f} M cells, "
                    f"{demo['n_links']} links), each run in a fresh process with an empty `NUMBA_CACHE_DIR`, so numba "
                    f"compiles the kernel inside the links stage: links stage {demo['links_s']:.2f} s "
                    f"(`RunResult.timings_s['links']`, compilation included); whole `pipeline.run` with imports "
                    f"{demo['total_s']:.2f} s ({stages}); the `leopardgeo run` command end to end "
                    f"{demo['cli_s']:.2f} s (median of {args.repeat})."
                ),
                "",
            ]
    lines += ["### Project targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    peers = [r for r in rows if r["tool"] != "leopardgeo" and "seconds" in r]
    agree_all = all(r.get("agree", {}).get("ok") for r in peers) if peers else False
    lines.append(
        f"| peers agree on the values (rtol {RTOL:g}) | {sum(bool(r.get('agree', {}).get('ok')) for r in peers)} of {len(peers)} "
        f"peer runs agree | {'met' if agree_all else 'not met'} |"
    )
    ours = {r["cells"]: r for r in rows if r["tool"] == "leopardgeo" and "seconds" in r}
    for r in rows:
        if r["tool"] == "xarray-spatial" and "seconds" in r and r["cells"] >= 4000**2 and r["cells"] in ours:
            speed = r["seconds"] / ours[r["cells"]]["seconds"]
            lines.append(
                f"| ≥ 3 × faster than xarray-spatial, the fastest peer, at {_fmt_cells(r['cells'])} | {speed:.2f} × "
                f"({r['seconds']:.2f} s / {ours[r['cells']]['seconds']:.2f} s) | {'met' if speed >= 3 else 'not met'} |"
            )
    if 8000**2 in ours and "peak_mb" in ours[8000**2]:
        bpc = ours[8000**2]["peak_mb"] * 2**20 / 8000**2
        lines.append(
            f"| peak memory of the whole process ≤ 30 bytes per cell at 64 M (8000²) | {bpc:.1f} B/cell | "
            f"{'met' if bpc <= 30 else 'not met'} |"
        )
    if links and "error" not in links:
        ratio = links["graph_s"] / links["cost_distance_s"]
        lines.append(
            f"| all links of a {_fmt_cells(links['cells'])} grid with {links['n_patches']} patches (one-pass rule) "
            f"≤ 2 × one cost-distance run | {ratio:.2f} × ({links['graph_s']:.2f} s / {links['cost_distance_s']:.2f} s) | "
            f"{'met' if ratio <= 2 else 'not met'} |"
        )
    if demo and "error" not in demo:
        lines.append(
            f"| the whole demo's links < 10 s including compilation | {demo['links_s']:.2f} s | "
            f"{'met' if demo['links_s'] < 10 else 'not met'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000], help="grid sides, cells")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--peers-max-size", type=int, default=None, help="above this side, run only --large-tools")
    ap.add_argument("--large-tools", nargs="+", default=["leopardgeo", "xarray-spatial"], choices=TOOLS)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grass-memory-mb", type=int, default=8000, help="r.cost memory= (MB)")
    ap.add_argument("--links-size", type=int, default=4000)
    ap.add_argument("--patches", type=int, default=50)
    ap.add_argument("--no-links", action="store_true", help="skip the links and demo measurements")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--write", type=Path, default=None, help="Markdown file to put the section into")
    # worker mode (internal)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "grass":
            r = grass_worker(args.dir, args.out, args.repeat, args.grass_memory_mb)
        elif args.worker == "links":
            r = links_worker(args.links_size, args.patches, args.repeat, args.seed)
        elif args.worker == "demo":
            r = demo_worker(str(args.dir))
        else:
            r = worker(args.worker, args.dir, args.out)
        print(json.dumps(r))
        return

    cmdline = "python benchmarks/bench_costdist.py " + " ".join(sys.argv[1:])
    t0 = time.perf_counter()
    rows: list[dict] = []
    links = demo = None
    with tempfile.TemporaryDirectory(prefix="bench_costdist_") as tmpname:
        tmp = Path(tmpname)
        for n in args.sizes:
            tools = list(args.tools)
            if args.peers_max_size is not None and n > args.peers_max_size:
                tools = [t for t in tools if t in args.large_tools]
            rows += bench_size(n, args, tmp, tools)
        if not args.no_links:
            me = [sys.executable, str(Path(__file__).resolve())]
            cmd = [*me, "--worker", "links", "--links-size", str(args.links_size), "--patches", str(args.patches)]
            links = _call([*cmd, "--repeat", str(args.repeat), "--seed", str(args.seed)], args.timeout * 3, _env(args.threads))
            links["cells"] = args.links_size**2
            print(f"links: {links}", file=sys.stderr)
            demo = bench_demo(args, tmp)
            print(f"demo: {demo}", file=sys.stderr)
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    text = report(args, rows, links, demo, cmdline)
    print(text)
    if args.write:
        write_section(args.write, "bench_costdist", text)


if __name__ == "__main__":
    main()
