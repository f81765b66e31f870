"""The circuit's conductance network: cells, short-circuited patches, grounds and the reduced Laplacian."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import ndimage

from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError, NoPathError
from leopardgeo.core.validation import check_resistance
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

    def node_of(self, patch_id: int) -> int:
        """Node id of a patch (-1 when it is not solved)."""
        i = int(np.searchsorted(self.focal_ids, patch_id))
        if i >= len(self.focal_ids) or self.focal_ids[i] != patch_id:
            msg = f"patch {patch_id}: expected one of the focal patches {self.focal_ids.tolist()[:20]}, found none."
            raise DataError(msg)
        return int(self.focal_node[i])

    def connected(self, a: int, b: int) -> bool:
        """Whether two patches lie in the same connected component."""
        ia, ib = np.searchsorted(self.focal_ids, [a, b])
        return bool(self.component[ia] >= 0 and self.component[ia] == self.component[ib])


def solve_nodes(net: CircuitNetwork) -> np.ndarray:
    """Raster of unknown ids of the cell nodes (-1 elsewhere, incl. patches), for geometric coarsening."""
    return np.where(net.node < net.n_cell, net.node, np.int32(-1))


def _check_inputs(resistance: np.ndarray, focal: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    res = np.asarray(resistance)
    lab = np.asarray(focal)
    if res.ndim != 2 or lab.shape != res.shape:
        msg = f"focal patches: expected a raster of the resistance's shape {res.shape}, found {lab.shape}."
        raise DataError(msg)
    if not np.issubdtype(lab.dtype, np.integer):
        msg = f"focal patches: expected an integer raster of patch ids (0 = none), found dtype {lab.dtype}."
        raise DataError(msg)
    if connectivity not in (4, 8):
        msg = f"connectivity: expected 4 or 8 neighbours (Circuitscape's options), found {connectivity!r}."
        raise ConfigError(msg)
    res = np.ascontiguousarray(res, dtype=np.float32 if res.dtype == np.float32 else np.float64)
    check_resistance(res)  # ResistanceError naming the count, range and first cells
    return res, np.ascontiguousarray(lab, dtype=np.int32 if lab.dtype.itemsize < 4 or lab.dtype == np.int32 else np.int64)


def build_network(
    resistance: np.ndarray,
    focal: np.ndarray,
    *,
    connectivity: int = 8,
    avg_resistances: bool = False,
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
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    comp, n_comp = ndimage.label(valid, structure=structure)
    # patches join the components they touch (a short circuit): union-find over component labels
    parent = np.arange(n_comp + 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    first_comp = {}
    for pid in ids:
        cs = np.unique(comp[(lab == pid) & valid])
        root = find(int(cs[0]))
        for c in cs[1:]:
            rc = find(int(c))
            if rc != root:
                parent[rc] = root
        first_comp[int(pid)] = root
    roots = np.array([find(i) for i in range(n_comp + 1)])
    patch_root = np.array([roots[first_comp[int(p)]] for p in ids])
    counts = pd.Series(patch_root).value_counts()
    solved_roots = np.sort(counts.index[counts >= 2].to_numpy())
    keep_comp = np.isin(roots, solved_roots)
    keep_comp[0] = False
    in_circuit = keep_comp[comp] & valid
    solved = np.isin(patch_root, solved_roots)
    # numbering: cell nodes (raster order), non-ground patches, grounds (first patch of each component)
    is_patch = (lab > 0) & in_circuit
    plain = in_circuit & ~is_patch
    n_cell = int(plain.sum())
    node = np.full(res.shape, -1, dtype=np.int32)
    node[plain] = np.arange(n_cell, dtype=np.int32)
    focal_node = np.full(len(ids), -1, dtype=np.int64)
    component = np.full(len(ids), -1, dtype=np.int64)
    comp_index = {int(r): i for i, r in enumerate(solved_roots)}
    ground_of: dict[int, int] = {}
    order = []
    for i in range(len(ids)):
        if not solved[i]:
            continue
        ci = comp_index[int(patch_root[i])]
        component[i] = ci
        if ci not in ground_of:
            ground_of[ci] = i
        else:
            order.append(i)
    nxt = n_cell
    for i in order:
        focal_node[i] = nxt
        nxt += 1
    n_solve = nxt
    for ci in sorted(ground_of):
        focal_node[ground_of[ci]] = nxt
        nxt += 1
    n_total = nxt
    node[is_patch] = focal_node[np.searchsorted(ids, lab[is_patch])].astype(np.int32)
    k = connectivity
    rows, cols, gs, rdiag = _region_entries(res, node, n_cell, n_solve, k, avg_resistances)
    n_reg = n_solve - n_cell
    reg = sp.coo_matrix((-gs, (rows, cols)), shape=(n_reg, n_solve)).tocsr()
    reg = (reg + sp.csr_matrix((rdiag, (np.arange(n_reg), np.arange(n_cell, n_solve))), shape=(n_reg, n_solve))).tocsr()
    reg.sort_indices()
    # the region rows go into spare room at the end of the cell rows' arrays (no copy of the big arrays)
    indptr, all_indices, all_data = _cell_rows(res, node, n_cell, n_solve, k, avg_resistances, reg.nnz)
    n_cell_nnz = int(indptr[-1])
    all_indices[n_cell_nnz:] = reg.indices
    all_data[n_cell_nnz:] = reg.data
    all_indptr = np.concatenate([indptr, reg.indptr[1:].astype(np.int64) + n_cell_nnz])
    nnz = int(all_indptr[-1])
    if nnz >= 2**31 - 1:  # pragma: no cover - beyond ~200 M cells
        msg = f"circuit: expected fewer than 2**31 matrix entries, found {nnz:,}. Use coarser cells or clip the grid."
        raise MemoryLimitError(msg)
    all_indptr = all_indptr.astype(np.int32)
    lap = sp.csr_matrix((all_data, all_indices, all_indptr), shape=(n_solve, n_solve))
    lap.has_sorted_indices = True
    logger.debug("circuit network: %d cell nodes, %d patch nodes, %d grounds, %d non-zeros", n_cell, n_reg, len(ground_of), nnz)
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
    )
