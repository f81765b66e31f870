"""The circuit's conductance network: cells, short-circuited patches, grounds and the reduced Laplacian."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import ndimage

from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError, NoPathError
from leopardgeo.core.validation import check_resistance, unmasked
from leopardgeo.kernels.circuit._compiled import _cell_rows, _region_entries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CircuitNetwork:
    """The conductance graph of a resistance grid with focal patches short-circuited.

    Attributes
    ----------
    node
        int32 raster: node id of each cell; -1 for no data and for cells in a
        connected component holding fewer than two focal patches.
    laplacian
        Reduced Laplacian (scipy CSR, float64) over the ``n_solve`` non-ground
        nodes: cell nodes first (raster order), then non-ground patch nodes.
    focal_ids
        Patch ids, sorted.
    focal_node
        Node id of each patch (same order); ``-1`` when the patch is alone in
        its component (not solved).  Ground patches have ids ``>= n_solve``.
    component
        Component number of each patch (same order), ``-1`` when not solved.
    n_cell, n_solve, n_total
        Number of cell nodes, of unknowns and of nodes including grounds.
    connectivity, avg_resistances
        Graph options used.
    focal_region
        Short-circuited region of each patch (same order); patches sharing a
        region share a node (Circuitscape: resistance 0 between them).
    """

    node: np.ndarray
    laplacian: sp.csr_matrix
    focal_ids: np.ndarray
    focal_node: np.ndarray
    component: np.ndarray
    n_cell: int
    n_solve: int
    n_total: int
    connectivity: int
    avg_resistances: bool
    resistance: np.ndarray = field(repr=False)
    focal_region: np.ndarray | None = field(default=None, repr=False)

    def node_of(self, patch_id: int) -> int:
        """Node id of a patch (-1 when it is not solved)."""
        i = int(np.searchsorted(self.focal_ids, patch_id))
        if i >= len(self.focal_ids) or self.focal_ids[i] != patch_id:
            msg = f"patch {patch_id}: expected one of the focal patches {self.focal_ids.tolist()[:20]}, found none."
            raise DataError(msg)
        return int(self.focal_node[i])

    def same_node(self, a: int, b: int) -> bool:
        """Whether two patches share one node (joined by a short-circuit region): resistance 0 between them."""
        if self.focal_region is None:
            return a == b
        ia, ib = np.searchsorted(self.focal_ids, [a, b])
        return bool(self.focal_region[ia] == self.focal_region[ib])

    def connected(self, a: int, b: int) -> bool:
        """Whether two patches lie in the same connected component."""
        ia, ib = np.searchsorted(self.focal_ids, [a, b])
        return bool(self.component[ia] >= 0 and self.component[ia] == self.component[ib])


def solve_nodes(net: CircuitNetwork) -> np.ndarray:
    """Raster of unknown ids of the cell nodes (-1 elsewhere, incl. patches), for geometric coarsening."""
    return np.where(net.node < net.n_cell, net.node, np.int32(-1))


def _check_inputs(resistance: np.ndarray, focal: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    res = np.asarray(unmasked(resistance))
    lab = np.asarray(focal)
    if res.ndim != 2:
        msg = f"resistance: expected a 2-D raster (rows, columns), found {res.ndim} dimensions (shape {res.shape})."
        raise DataError(msg)
    if lab.shape != res.shape:
        msg = f"focal patches: expected a raster of the resistance's shape {res.shape}, found {lab.shape}."
        raise DataError(msg)
    if not np.issubdtype(lab.dtype, np.integer):
        msg = f"focal patches: expected an integer raster of patch ids (0 = none), found dtype {lab.dtype}."
        raise DataError(msg)
    if lab.size and lab.min() < 0:
        msg = (
            f"focal patches: expected patch ids >= 0 (0 = none), found {int((lab < 0).sum())} cells below 0 "
            f"(smallest {int(lab.min())}). Set no-data cells to 0."
        )
        raise DataError(msg)
    if connectivity not in (4, 8):
        msg = f"connectivity: expected 4 or 8 neighbours (Circuitscape's options), found {connectivity!r}."
        raise ConfigError(msg)
    res = np.ascontiguousarray(res, dtype=np.float32 if res.dtype == np.float32 else np.float64)
    check_resistance(res)  # ResistanceError naming the count, range and first cells
    return res, np.ascontiguousarray(lab, dtype=np.int32 if lab.dtype.itemsize < 4 or lab.dtype == np.int32 else np.int64)


def _check_short(short_circuit: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The short-circuit region raster as int64 (0 = none), or None; DataError on a wrong shape or dtype."""
    if short_circuit is None:
        return None
    reg = np.asarray(short_circuit)
    if reg.shape != shape:
        msg = f"short-circuit regions: expected a raster of the resistance's shape {shape}, found {reg.shape}."
        raise DataError(msg)
    if not np.issubdtype(reg.dtype, np.integer):
        msg = f"short-circuit regions: expected an integer raster of region ids (0 = none), found dtype {reg.dtype}."
        raise DataError(msg)
    if (reg < 0).any():
        msg = "short-circuit regions: expected ids >= 0 (0 = none), found negative ids. Set cells outside regions to 0."
        raise DataError(msg)
    return reg.astype(np.int64, copy=False)


class _UnionFind:
    """Union-find over ``n`` integer keys (path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def _merge_regions(
    lab: np.ndarray, short: np.ndarray | None, valid: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Short-circuited regions: each focal patch, each short-circuit region, merged where they overlap.

    Returns the region raster (-1 outside regions; cells with no data are
    outside), each focal id's region and the number of regions.  Regions are
    numbered by their smallest focal id first, then the regions without a patch.
    """
    n_f = len(ids)
    reg = np.full(lab.shape, -1, dtype=np.int32)  # int32: a raster per cell, kept lean on large grids
    has_f = (lab > 0) & valid
    reg[has_f] = np.searchsorted(ids, lab[has_f])
    if short is None or not (short[valid] > 0).any():
        return reg, np.arange(n_f, dtype=np.int64), n_f
    sids = np.unique(short[(short > 0) & valid])
    uf = _UnionFind(n_f + len(sids))
    both = has_f & (short > 0)
    if both.any():
        base = np.int64(len(sids))
        keys = np.unique(reg[both].astype(np.int64) * base + np.searchsorted(sids, short[both]))
        for f, k in zip((keys // base).tolist(), (keys % base).tolist(), strict=True):
            uf.union(f, n_f + k)
    roots = uf.roots()
    only_s = (short > 0) & valid & ~has_f
    key = reg.copy()
    key[only_s] = n_f + np.searchsorted(sids, short[only_s])
    # renumber the roots: regions holding a patch first (by smallest patch), then the others
    uniq, first = np.unique(roots, return_index=True)
    order = uniq[np.argsort(first, kind="stable")]
    new_id = np.full(len(roots), -1, dtype=np.int64)
    new_id[order] = np.arange(len(order))
    region_of_key = new_id[roots]
    live = key >= 0
    reg[live] = region_of_key[key[live]]
    return reg, region_of_key[:n_f], len(order)


def _region_components(reg: np.ndarray, valid: np.ndarray, connectivity: int, n_reg: int) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the valid cells with every region short-circuited.

    Returns the component label raster (0 = no data) after the merge, and each region's component.
    """
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    comp, n_comp = ndimage.label(valid, structure=structure)
    uf = _UnionFind(n_comp + 1)
    live = reg >= 0
    if live.any():
        base = np.int64(n_comp + 1)
        keys = np.unique(reg[live].astype(np.int64) * base + comp[live])  # one 1-D sort, not a row-wise unique
        first: dict[int, int] = {}
        for r, c in zip((keys // base).tolist(), (keys % base).tolist(), strict=True):
            if r in first:
                uf.union(first[r], c)
            else:
                first[r] = c
    roots = uf.roots().astype(np.int32)
    comp = roots[comp]
    region_comp = np.zeros(n_reg, dtype=np.int64)
    if live.any():
        region_comp[reg[live]] = comp[live]
    return comp, region_comp


def assemble_laplacian(
    res: np.ndarray, node: np.ndarray, n_cell: int, n_solve: int, connectivity: int, avg_resistances: bool
) -> sp.csr_matrix:
    """The reduced conductance Laplacian over the unknowns ``0 .. n_solve - 1`` of a node raster.

    ``node`` holds each cell's node: ids below ``n_cell`` are single cells,
    ``n_cell .. n_solve - 1`` short-circuited regions (any number of cells),
    ids from ``n_solve`` on are held at 0 V (grounds: their branches enter the
    diagonal only), -1 is outside the circuit.  Compiled assembly; the region
    rows go into spare room at the end of the cell rows' arrays (no copy of the
    big arrays).

    Examples
    --------
    Three 1-ohm cells in a row, the last one grounded:

    >>> node = np.array([[0, 1, 2]], dtype=np.int32)
    >>> assemble_laplacian(np.ones((1, 3)), node, 2, 2, 4, False).toarray()
    array([[ 1., -1.],
           [-1.,  2.]])
    """
    k = connectivity
    rows, cols, gs, rdiag = _region_entries(res, node, n_cell, n_solve, k, avg_resistances)
    n_reg = n_solve - n_cell
    reg = sp.coo_matrix((-gs, (rows, cols)), shape=(n_reg, n_solve)).tocsr()
    reg = (reg + sp.csr_matrix((rdiag, (np.arange(n_reg), np.arange(n_cell, n_solve))), shape=(n_reg, n_solve))).tocsr()
    reg.sort_indices()
    indptr, all_indices, all_data = _cell_rows(res, node, n_cell, n_solve, k, avg_resistances, reg.nnz)
    n_cell_nnz = int(indptr[-1])
    all_indices[n_cell_nnz:] = reg.indices
    all_data[n_cell_nnz:] = reg.data
    all_indptr = np.concatenate([indptr, reg.indptr[1:].astype(np.int64) + n_cell_nnz])
    nnz = int(all_indptr[-1])
    if nnz >= 2**31 - 1:  # pragma: no cover - beyond ~200 M cells
        msg = f"circuit: expected fewer than 2**31 matrix entries, found {nnz:,}. Use coarser cells or clip the grid."
        raise MemoryLimitError(msg)
    lap = sp.csr_matrix((all_data, all_indices, all_indptr.astype(np.int32)), shape=(n_solve, n_solve))
    lap.has_sorted_indices = True
    return lap


def build_network(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
    short_circuit: np.ndarray | None = None,
) -> CircuitNetwork:
    """Build the reduced conductance Laplacian with every focal patch short-circuited.

    Parameters
    ----------
    resistance
        Resistance raster (> 0; NaN = no data, not part of the circuit).
    focal
        Integer raster of patch ids (0 = none); each id's cells form one node.
    connectivity
        4 or 8 neighbours.
    avg_resistances
        Circuitscape's ``connect_using_avg_resistances``.
    short_circuit
        Optional integer raster of short-circuit regions (Circuitscape's
        ``polygon_file``; 0 = none): each region's cells conduct perfectly (one
        node) without being a focal patch.  A patch overlapping a region joins
        it; patches joined this way share one node (resistance 0 between them).

    Returns
    -------
    CircuitNetwork

    Raises
    ------
    DataError
        Shape or dtype mismatch, or fewer than two patches.
    NoPathError
        If a patch lies wholly on no data.
    ResistanceError
        If resistance is <= 0 or infinite.

    Examples
    --------
    Three cells in a row, a patch at each end: two 1-ohm... resistances in series.

    >>> r = np.array([[1.0, 1.0, 1.0]])
    >>> net = build_network(r, np.array([[1, 0, 2]]), connectivity=4)
    >>> net.laplacian.toarray()   # middle cell, then patch 1 (patch 2 is the ground)
    array([[ 2., -1.],
           [-1.,  1.]])
    """
    res, lab = _check_inputs(resistance, focal, connectivity)
    short = _check_short(short_circuit, res.shape)
    valid = ~np.isnan(res)
    ids = np.unique(lab[lab > 0])
    if len(ids) < 2:
        msg = f"focal patches: expected at least two patch ids, found {ids.tolist()}."
        raise DataError(msg)
    on_data = np.unique(lab[(lab > 0) & valid])
    off = np.setdiff1d(ids, on_data)
    if len(off):
        msg = f"patch {int(off[0])}: expected cells with data, found all of its cells on no data. Fix the resistance raster."
        raise NoPathError(msg)
    reg, focal_region, n_reg = _merge_regions(lab, short, valid, ids)
    comp, region_comp = _region_components(reg, valid, connectivity, n_reg)
    # a component is solved when it holds two focal regions (nodes) or more
    patch_comp = region_comp[focal_region]
    n_focal_regions = pd.Series(region_comp[np.unique(focal_region)]).value_counts()
    solved_comps = np.sort(n_focal_regions.index[n_focal_regions >= 2].to_numpy())
    in_circuit = valid & np.isin(comp, solved_comps)
    solved = np.isin(patch_comp, solved_comps)
    # numbering: cell nodes (raster order), non-ground regions, grounds (the first patch's region of each component)
    plain = in_circuit & (reg < 0)
    n_cell = int(plain.sum())
    node = np.full(res.shape, -1, dtype=np.int32)
    node[plain] = np.arange(n_cell, dtype=np.int32)
    comp_index = {int(c): i for i, c in enumerate(solved_comps)}
    ground_region: dict[int, int] = {}
    for i in range(len(ids)):
        if solved[i]:
            ground_region.setdefault(comp_index[int(patch_comp[i])], int(focal_region[i]))
    grounds = set(ground_region.values())
    region_node = np.full(n_reg, -1, dtype=np.int64)
    nxt = n_cell
    for r in range(n_reg):
        if int(region_comp[r]) in comp_index and r not in grounds:
            region_node[r] = nxt
            nxt += 1
    n_solve = nxt
    for ci in sorted(ground_region):
        region_node[ground_region[ci]] = nxt
        nxt += 1
    n_total = nxt
    is_reg = in_circuit & (reg >= 0)
    node[is_reg] = region_node[reg[is_reg]].astype(np.int32)
    focal_node = np.where(solved, region_node[focal_region], -1).astype(np.int64)
    component = np.array([comp_index[int(c)] if s else -1 for c, s in zip(patch_comp, solved, strict=True)], dtype=np.int64)
    lap = assemble_laplacian(res, node, n_cell, n_solve, connectivity, avg_resistances)
    logger.debug(
        "circuit network: %d cell nodes, %d region nodes, %d grounds, %d non-zeros",
        n_cell, n_solve - n_cell, len(ground_region), lap.nnz,
    )  # fmt: skip
    return CircuitNetwork(
        node=node,
        laplacian=lap,
        focal_ids=ids.astype(np.int64),
        focal_node=focal_node,
        component=component,
        n_cell=n_cell,
        n_solve=n_solve,
        n_total=n_total,
        connectivity=connectivity,
        avg_resistances=bool(avg_resistances),
        resistance=res,
        focal_region=focal_region,
    )
