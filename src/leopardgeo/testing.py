"""Helpers to build tiny synthetic inputs for tests and examples.

Examples
--------
>>> import tempfile, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> grid, path = synthetic_raster(tmp / "r.tif", np.ones((3, 4)), cell_size_m=100)
>>> grid.shape, path.name
((3, 4), 'r.tif')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import geopandas as gpd
import rasterio
from affine import Affine

from leopardgeo.core.grid import Grid

__all__ = ["TEST_CRS", "naive_pack_females", "synthetic_raster", "synthetic_vector"]

#: CRS of synthetic data: WGS 84 / UTM zone 52N (covers Primorye and Jilin).
TEST_CRS = "EPSG:32652"


def synthetic_raster(
    path: str | Path,
    values: Any,
    *,
    cell_size_m: float = 100.0,
    origin: tuple[float, float] = (500_000.0, 4_800_000.0),
    crs: Any = TEST_CRS,
    nodata: float | None = None,
    dtype: str = "float32",
) -> tuple[Grid, Path]:
    """Write ``values`` as a single-band GeoTIFF; return its grid and path.

    ``origin`` is the top-left corner in metres.  With ``crs=None`` the file
    has no CRS (for error tests); the returned grid then uses ``TEST_CRS``.
    """
    arr = np.asarray(values, dtype=dtype)
    path = Path(path)
    transform = Affine(cell_size_m, 0.0, origin[0], 0.0, -cell_size_m, origin[1])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(arr, 1)
    grid_crs = crs if crs is not None else TEST_CRS
    try:
        grid = Grid(grid_crs, transform, arr.shape)
    except Exception:  # geographic CRS on purpose: callers test the error
        grid = Grid(TEST_CRS, transform, arr.shape)
    return grid, path


def synthetic_vector(path: str | Path, gdf: gpd.GeoDataFrame, *, layer: str | None = None) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer and return the path."""
    path = Path(path)
    gdf.to_file(path, layer=layer, driver="GPKG")
    return path


def naive_pack_females(
    quality: np.ndarray,
    resistance: np.ndarray,
    cell_size_m: float,
    *,
    habitat: np.ndarray | None = None,
    min_area_ha: float,
    max_area_ha: float,
    need_ha: float,
    min_quality: float = 0.0,
    max_cost_m: float = np.inf,
    seed: int = 0,
    connectivity: int = 8,
) -> np.ndarray:
    """Female territories of :func:`leopardgeo.stages.territories.pack_territories`, the slow way: one SciPy Dijkstra per seed.

    A reference for tests and benchmarks, written from the method's description, not from the compiled kernel:
    for every seed, ``scipy.sparse.csgraph.dijkstra`` runs over the graph of eligible cells no territory holds
    yet, the cells are sorted by cost and the fewest nearest cells holding the need form the territory.  Seeds
    follow the same rule (best quality bin of 0.05 first, random order within a bin from
    ``numpy.random.default_rng(seed)``, free cells bordering a placed territory first within the bin).  Exact
    ties in cost may be broken differently from the kernel: use continuous resistances.  Returns the territory
    id raster (0 = none).

    Examples
    --------
    >>> ids = naive_pack_females(np.ones((4, 6)), np.ones((4, 6)), 100.0, min_area_ha=4, max_area_ha=8, need_ha=6)
    >>> sorted(np.bincount(ids.ravel())[1:].tolist())
    [6, 6, 6, 6]
    """
    import heapq

    from scipy import sparse
    from scipy.sparse.csgraph import dijkstra

    rows, cols = quality.shape
    n = rows * cols
    cell_ha = cell_size_m**2 / 10_000
    q = np.nan_to_num(np.asarray(quality, dtype=np.float64)).ravel()
    hab = np.ones(n, dtype=bool) if habitat is None else np.asarray(habitat, dtype=bool).ravel()
    res = np.asarray(resistance, dtype=np.float64).ravel()
    eligible = hab & np.isfinite(np.asarray(quality, dtype=np.float64).ravel()) & (q >= min_quality) & np.isfinite(res)
    offsets = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)][:connectivity]
    a, b, w = [], [], []
    for dr, dc in offsets:
        for r in range(rows):
            for c in range(cols):
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < cols and eligible[r * cols + c] and eligible[rr * cols + cc]:
                    a.append(r * cols + c)
                    b.append(rr * cols + cc)
                    w.append(cell_size_m * float(np.hypot(dr, dc)) * (res[r * cols + c] + res[rr * cols + cc]) / 2)
    a_arr, b_arr, w_arr = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64), np.array(w)
    bins = np.clip(np.floor(q / 0.05 + 1e-6), 0, 20).astype(np.int64)
    cells = np.flatnonzero(eligible).astype(np.int64)
    rng = np.random.default_rng(seed)
    perm = cells[rng.permutation(cells.size)]
    order = perm[np.argsort(-bins[perm], kind="stable")]
    claimed = np.zeros(n, dtype=np.int32)
    failed = np.zeros(n, dtype=bool)
    queued = np.zeros(n, dtype=bool)
    front: list[tuple[int, int]] = []
    pushed = 0
    min_cells = max(1, int(np.ceil(min_area_ha / cell_ha * (1 - 1e-9))))
    max_cells = int(np.floor(max_area_ha / cell_ha * (1 + 1e-9)))
    target = need_ha * (1 - 1e-9)
    next_id = 1
    i = 0
    while True:
        while i < order.size and (claimed[order[i]] or failed[order[i]]):
            i += 1
        if i >= order.size:
            break
        s = int(order[i])
        while front:
            f = front[0][1]
            if claimed[f] or failed[f]:
                heapq.heappop(front)
                continue
            if bins[f] == bins[s]:
                s = f
            break
        free = (claimed[a_arr] == 0) & (claimed[b_arr] == 0)
        graph = sparse.coo_matrix((w_arr[free], (a_arr[free], b_arr[free])), shape=(n, n)).tocsr()
        dist = dijkstra(graph, directed=True, indices=s)
        reach = np.flatnonzero(np.isfinite(dist))
        reach = reach[np.argsort(dist[reach], kind="stable")]
        within = reach[dist[reach] <= max_cost_m][:max_cells]
        met = np.flatnonzero(np.cumsum(q[within]) * cell_ha >= target)
        if met.size and met[0] + 1 >= min_cells:
            members = within[: met[0] + 1]
            claimed[members] = next_id
            next_id += 1
            for m in members:
                r, c = divmod(int(m), cols)
                for dr, dc in offsets:
                    rr, cc = r + dr, c + dc
                    nb = rr * cols + cc
                    inside = 0 <= rr < rows and 0 <= cc < cols
                    if inside and eligible[nb] and not claimed[nb] and not failed[nb] and not queued[nb]:
                        queued[nb] = True
                        heapq.heappush(front, ((20 - int(bins[nb])) * 2**40 + pushed, nb))
                        pushed += 1
        elif not met.size and reach.size <= max_cells and dist[reach[-1]] <= max_cost_m:
            failed[reach] = True  # the whole free group holds too little
        else:
            failed[s] = True
    return claimed.reshape(rows, cols)
