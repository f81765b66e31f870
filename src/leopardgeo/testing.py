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

__all__ = ["TEST_CRS", "naive_connectivity_metrics", "naive_pack_females", "synthetic_raster", "synthetic_vector"]

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


def naive_connectivity_metrics(
    G: Any,
    *,
    attribute: str = "area_ha",
    weight: str = "cwd",
    k: float,
    landscape_area: float | None = None,
    min_probability: float | None = None,
    links: bool = True,
) -> dict[str, Any]:
    r"""Brute-force PC / IIC and every removal delta: all pairs recomputed without each node and link.

    The definitions of Saura & Pascual-Hortal (2007), Saura & Rubio (2010) and Bodin & Saura (2010)
    computed the slow, obvious way: dense all-pairs ``scipy.sparse.csgraph.shortest_path`` on the
    graph, then again once per removed node and once per removed link (``n + m`` all-pairs runs); BC
    from networkx, BCPC by splitting each pair's weight :math:`a_i a_j p^*_{ij}` over
    ``networkx.all_shortest_paths``.  The reference of :func:`leopardgeo.stages.metrics.connectivity_metrics`
    in tests and ``benchmarks/bench_metrics.py``; it shares no code with it.

    Returns
    -------
    dict
        ``PC``, ``IIC``, ``EC_ha``, ``nodes`` (frame indexed by node: ``dPC``, ``dPC_intra``,
        ``dPC_flux``, ``dPC_connector``, ``dIIC`` and its three parts, ``BC``, ``BCPC``), ``links``
        (dict ``frozenset({u, v}) -> (dPC_link, dIIC_link)``).

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.path_graph(3); nx.set_node_attributes(G, 1.0, "area_ha"); nx.set_edge_attributes(G, 1.0, "cwd")
    >>> r = naive_connectivity_metrics(G, k=np.log(2))
    >>> round(r["PC"] * 9, 4), round(float(r["nodes"].loc[1, "dPC_connector"]), 4)   # 3 + 2(.5 + .5 + .25); 2·.25 of 5.5
    (5.5, 9.0909)
    """
    import networkx as nx
    import pandas as pd
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    nodes = sorted(G.nodes)
    n = len(nodes)
    index = {v: i for i, v in enumerate(nodes)}
    a = np.array([float(G.nodes[v][attribute]) for v in nodes])
    kept = []
    for u, v, d in G.edges(data=True):
        dist = float(d[weight])
        if u == v or not np.isfinite(dist):
            continue
        if min_probability is not None and np.exp(-k * dist) < min_probability:
            continue
        kept.append((u, v, dist))

    def sums(alive: np.ndarray, skip: frozenset | None) -> tuple[float, float, np.ndarray, np.ndarray]:
        rows, cols, w = [], [], []
        for u, v, dist in kept:
            if not (alive[index[u]] and alive[index[v]]) or frozenset((u, v)) == skip:
                continue
            rows += [index[u], index[v]]
            cols += [index[v], index[u]]
            w += [max(dist, 1e-300)] * 2  # an explicit 0 would read as "no link"
        m = csr_matrix((w, (rows, cols)), shape=(n, n))
        pstar = np.exp(-k * shortest_path(m, method="D", directed=False))
        topo = shortest_path(m, method="D", directed=False, unweighted=True)
        inv = np.where(np.isfinite(topo), 1.0 / (1.0 + np.where(np.isfinite(topo), topo, 0.0)), 0.0)
        aa = np.where(alive, a, 0.0)
        return float(aa @ pstar @ aa), float(aa @ inv @ aa), pstar, inv

    everyone = np.ones(n, dtype=bool)
    num, inum, pstar, inv = sums(everyone, None)
    rows = []
    for i, v in enumerate(nodes):
        alive = everyone.copy()
        alive[i] = False
        num_r, inum_r, _, _ = sums(alive, None)
        row: dict[str, Any] = {"node": v}
        for name, tot, tot_r, f in (("dPC", num, num_r, pstar), ("dIIC", inum, inum_r, inv)):
            scale = 100.0 / tot if tot > 0 else 0.0
            intra = scale * a[i] ** 2
            flux = scale * 2.0 * a[i] * float(f[i, alive] @ a[alive])
            total = scale * (tot - tot_r)
            row |= {name: total, f"{name}_intra": intra, f"{name}_flux": flux, f"{name}_connector": total - intra - flux}
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("node")
    H = nx.Graph()
    H.add_nodes_from(nodes)
    H.add_weighted_edges_from(kept, weight="d")
    frame["BC"] = pd.Series(nx.betweenness_centrality(H, weight="d", normalized=False))
    bcpc = dict.fromkeys(nodes, 0.0)
    for i, s in enumerate(nodes):
        for j in range(i + 1, n):
            t = nodes[j]
            if not np.isfinite(-np.log(pstar[i, j]) if pstar[i, j] > 0 else np.inf) or not nx.has_path(H, s, t):
                continue
            paths = list(nx.all_shortest_paths(H, s, t, weight="d"))
            share = a[i] * a[j] * pstar[i, j] / len(paths)
            for path in paths:
                for mid in path[1:-1]:
                    bcpc[mid] += share
    frame["BCPC"] = pd.Series(bcpc)
    link_out = {}
    if links:
        for u, v, _ in kept:
            num_r, inum_r, _, _ = sums(everyone, frozenset((u, v)))
            link_out[frozenset((u, v))] = (
                100.0 * (num - num_r) / num if num > 0 else 0.0,
                100.0 * (inum - inum_r) / inum if inum > 0 else 0.0,
            )
    al = float(landscape_area) if landscape_area is not None else float(a.sum())
    return {"PC": num / al**2, "IIC": inum / al**2, "EC_ha": float(np.sqrt(num)), "nodes": frame, "links": link_out}
