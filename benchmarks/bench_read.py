"""Reading a source much finer than the grid: the whole source window in memory vs streamed through GDAL.

``io.read_raster`` reads the source window over the grid and warps it in memory when it is small, and
streams it through GDAL's warper (``rasterio.vrt.WarpedVRT``) when it holds more than four source cells
per grid cell and over 64 MB.  This measures both paths on one synthetic source (float32, 62.5 m cells)
read onto a 500 m grid with ``average`` resampling, each in a fresh process: wall time and peak
resident memory (``ru_maxrss``), side by side with the source's size.

    .venv/bin/python benchmarks/bench_read.py [--cells 8000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import leopardgeo.io as io
from leopardgeo.core.grid import Grid
path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
io._STREAM_BYTES = float("inf") if mode == "window" else 0.0
grid = Grid.from_bounds((500_000, 4_800_000 - n * 62.5, 500_000 + n * 62.5, 4_800_000), cell_size_m=500, crs="EPSG:32652")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = io.read_raster(path, grid, resampling="average")
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "s": dt, "peak_mb": peak / 1024, "added_mb": (peak - base) / 1024, "mean": float(out.mean())}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=8000, help="source side in cells (float32)")
    args = ap.parse_args()
    import numpy as np

    import rasterio
    from affine import Affine

    n = args.cells
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fine.tif"
        with rasterio.open(path, "w", driver="GTiff", height=n, width=n, count=1, dtype="float32", crs="EPSG:32652",
                           transform=Affine(62.5, 0, 500_000, 0, -62.5, 4_800_000), tiled=True) as dst:  # fmt: skip
            rng = np.random.default_rng(0)
            for r0 in range(0, n, 512):
                rows = min(512, n - r0)
                dst.write(rng.random((rows, n), dtype="float32"), 1, window=((r0, r0 + rows), (0, n)))
        print(f"source {n:,} x {n:,} float32 = {n * n * 4 / 1e6:,.0f} MB; grid {n // 8:,} x {n // 8:,} cells of 500 m")
        for mode in ("window", "streamed"):
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(n)], capture_output=True, text=True,
                                 check=True)  # fmt: skip
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{mode:9s} read {rec['s']:6.2f} s  peak RSS {rec['peak_mb']:7.0f} MB (+{rec['added_mb']:6.0f} MB by the read) "
                  f"mean {rec['mean']:.6f}  (process {time.perf_counter() - t:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
