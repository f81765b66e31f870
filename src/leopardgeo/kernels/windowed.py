r"""Cost distance within a cutoff, read and searched window by window.

A search stopped at a cost ``max_cost`` (the per-patch searches of the
corridors and of the barrier and pinch-point stages) never leaves a bounded
neighbourhood of its source, so it does not need the whole grid: this module
reads the resistance and the patch labels through windows (rasterio windows of
a GeoTIFF, or slices of an array or ``numpy.memmap``) around each source patch,
with a *halo* wide enough that no path of cost ``<= max_cost`` can leave the
window, and runs the compiled search of :mod:`leopardgeo.kernels.costdist` on
that window.  A search's memory is then that of its window, not of the grid.

Why the result is the whole-grid result
---------------------------------------
Every step of the search costs :math:`\ell (r_u + r_v) / 2` with
:math:`\ell \ge s \times` the step's Chebyshev length (axial and diagonal
steps move one cell, knight's moves two with :math:`\ell = s\sqrt5 > 2s`).
Let the window be the patch's bounding box widened by :math:`h` cells (cut
at the grid's edges, which bound the whole-grid search too) and
:math:`r_W` the least resistance inside it.  A cell outside the window lies
more than :math:`h` cells (Chebyshev) from every cell of the patch; the last
cell a path visits before it leaves the window lies at least :math:`h - 1`
cells away (a step moves at most two), and every step up to there joins two
cells of the window, so that part of the path costs at least
:math:`(h - 1)\, s\, r_W`.  With

.. math::

    (h - 1)\, s\, r_W > \mathrm{max\_cost}\,(1 + \epsilon)

no path that leaves the window costs ``max_cost`` or less, so every cell the
whole-grid search reaches within ``max_cost`` is reached in the window along
the same least-cost paths, with the same floating-point sums (the kernel's
costs are the fixed point of :math:`D(v) = \min_u fl(D(u) + w(u, v))`, which
does not depend on the order cells are visited: see
:mod:`leopardgeo.kernels.costdist`).  Costs inside the window are therefore
identical bit for bit, and every cell outside it is beyond the cutoff (inf, or
NaN on no data) in the whole-grid search.  :math:`\epsilon = 10^{-6}` covers
the rounding of a float sum against the exact one.

The halo is found from the data, not from the grid's least resistance: start
from the least resistance of the patch's own box, read the widened window,
and widen again while its least resistance says the halo is too narrow (each
round can only widen; it stops at the whole grid at worst).

The per-patch searches are independent tasks of the run's executor
(:mod:`leopardgeo.core.executor`): local threads, or Dask workers that read
their windows from the shared arrays or open the GeoTIFFs themselves.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import ndimage

from leopardgeo.core.errors import DataError
from leopardgeo.core.memory import check_memory
from leopardgeo.core.validation import check_resistance
from leopardgeo.kernels.costdist import _check_connectivity, _check_positive, cost_distance_many

__all__ = [
    "ArrayWindows",
    "CostWindow",
    "GeoTiffWindows",
    "WindowReader",
    "cost_distance_window",
    "cost_distance_windows",
    "label_boxes",
    "search_window_bytes",
]

logger = logging.getLogger(__name__)

#: Relative slack on the halo's bound: a float sum along a path may fall short of the exact sum by a few ulps per step.
HALO_SLACK = 1e-6
#: Rows read at a time when scanning a raster for its patches' boxes.
SCAN_ROWS = 1024
#: Bytes a search keeps per cell of its window: the resistance and labels read (up to 8 + 4), cost (8),
#: allocation (4), back-links (1), the queue's front (a few), rounded up.
SEARCH_BYTES_PER_CELL = 32


class WindowReader(Protocol):
    """Reads rectangles of one raster: ``shape`` and ``read(rows, cols)`` (slices with explicit ends)."""

    shape: tuple[int, int]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The cells ``[rows, cols]``."""
        ...


@dataclass(frozen=True)
class ArrayWindows:
    """A :class:`WindowReader` over an array (or ``numpy.memmap``), or over an executor's shared handle of one.

    Examples
    --------
    >>> w = ArrayWindows(np.arange(12).reshape(3, 4))
    >>> w.shape, w.read(slice(1, 3), slice(0, 2)).tolist()
    ((3, 4), [[4, 5], [8, 9]])
    """

    source: Any  # numpy array, or anything with get() -> array (leopardgeo.core.executor.Shared)

    def _array(self) -> np.ndarray:
        get = None if isinstance(self.source, np.ndarray) else getattr(self.source, "get", None)
        return get() if get is not None else self.source

    @property
    def shape(self) -> tuple[int, int]:  # type: ignore[override]
        """Rows and columns."""
        a = self._array()
        return int(a.shape[0]), int(a.shape[1])

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The cells ``[rows, cols]`` (a view for an array, read from disk for a memmap)."""
        return self._array()[rows, cols]


@dataclass(frozen=True)
class GeoTiffWindows:
    """A :class:`WindowReader` over one band of a raster file, through rasterio windows (no data -> NaN for floats).

    Picklable (only the path travels): a Dask worker opens the file itself.
    Float bands keep their type (float32 stays float32, as the search would
    see it in memory); integer bands (labels) are returned as they are stored,
    no data as 0.
    """

    path: str
    band: int = 1

    @property
    def shape(self) -> tuple[int, int]:  # type: ignore[override]
        """Rows and columns of the raster."""
        import rasterio

        with rasterio.open(self.path) as ds:
            return int(ds.height), int(ds.width)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The cells ``[rows, cols]`` through a window read."""
        import rasterio
        from rasterio.windows import Window

        with rasterio.open(self.path) as ds:
            win = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
            a = ds.read(self.band, window=win, masked=True)
        if np.issubdtype(a.dtype, np.floating):
            return np.ma.filled(a, np.nan)
        return np.ma.filled(a, 0)


@dataclass(frozen=True)
class CostWindow:
    """The cost distance of one source label, stored in the window it was searched in.

    Attributes
    ----------
    label
        The source label.
    rows, cols
        Slices of the grid the window covers.
    cost
        float64 cost (cost-weighted metres) inside the window: 0 on the source,
        ``inf`` beyond ``max_cost``, NaN on no data -- the whole-grid search's
        values there.  Every cell outside the window is beyond ``max_cost``.
    halo
        Cells the window extends past the source's bounding box (before the grid's edges cut it).

    Examples
    --------
    >>> cw = CostWindow(1, slice(1, 2), slice(0, 2), np.array([[0.0, 10.0]]), 1)
    >>> cw.full((2, 3))
    array([[inf, inf, inf],
           [ 0., 10., inf]])
    """

    label: int
    rows: slice
    cols: slice
    cost: np.ndarray
    halo: int

    @property
    def offset(self) -> tuple[int, int]:
        """``(row, col)`` of the window's first cell in the grid."""
        return int(self.rows.start), int(self.cols.start)

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """The cost on the whole grid, inf outside the window (for tests and small grids only)."""
        out = np.full(shape, np.inf)
        out[self.rows, self.cols] = self.cost
        return out


def label_boxes(labels: WindowReader | np.ndarray, *, scan_rows: int = SCAN_ROWS) -> dict[int, tuple[int, int, int, int]]:
    """Bounding box ``(row0, row1, col0, col1)`` (ends exclusive) of every positive label, read in bands of rows.

    Examples
    --------
    >>> lab = np.array([[0, 1, 1], [2, 0, 0], [2, 0, 1]])
    >>> label_boxes(lab, scan_rows=2)
    {1: (0, 3, 1, 3), 2: (1, 3, 0, 1)}
    """
    reader = labels if not isinstance(labels, np.ndarray) else ArrayWindows(labels)
    nr, nc = reader.shape
    boxes: dict[int, list[int]] = {}
    for r0 in range(0, nr, max(1, int(scan_rows))):
        r1 = min(r0 + max(1, int(scan_rows)), nr)
        part = np.asarray(reader.read(slice(r0, r1), slice(0, nc)))
        if not (np.issubdtype(part.dtype, np.integer) or part.dtype == np.bool_):
            msg = f"labels: expected an integer label raster (0 = not a source), found dtype {part.dtype}."
            raise DataError(msg)
        part = np.where(part > 0, part, 0).astype(np.int64)
        for lab, sl in enumerate(ndimage.find_objects(part), start=1):
            if sl is None:
                continue
            box = [sl[0].start + r0, sl[0].stop + r0, sl[1].start, sl[1].stop]
            old = boxes.get(lab)
            if old is not None:
                box = [min(old[0], box[0]), max(old[1], box[1]), min(old[2], box[2]), max(old[3], box[3])]
            boxes[lab] = box
    return {k: (v[0], v[1], v[2], v[3]) for k, v in sorted(boxes.items())}


def _least(res: np.ndarray) -> float:
    """Least resistance of a window (NaN = no data left out); inf if all no data; raises on values <= 0 or inf."""
    finite = res[~np.isnan(res)]
    if finite.size == 0:
        return math.inf
    lo = float(finite.min())
    if not (lo > 0) or not np.isfinite(finite.max()):
        check_resistance(res)  # raises with the count and the first cells
    return lo


def _halo(max_cost: float, cell_size_m: float, r_least: float) -> int:
    """Cells a window needs past the source's box so no path of cost <= max_cost leaves it."""
    if not math.isfinite(r_least):
        return 1
    return math.floor(max_cost * (1.0 + HALO_SLACK) / (cell_size_m * r_least)) + 2


def _widen(box: tuple[int, int, int, int], h: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    r0, r1, c0, c1 = box
    return slice(max(0, r0 - h), min(shape[0], r1 + h)), slice(max(0, c0 - h), min(shape[1], c1 + h))


def cost_distance_window(
    resistance: WindowReader | np.ndarray,
    labels: WindowReader | np.ndarray,
    label: int,
    *,
    cell_size_m: float,
    max_cost: float,
    connectivity: int = 8,
    box: tuple[int, int, int, int] | None = None,
    limit_bytes: float | None = None,
) -> CostWindow:
    """Cost distance from one source label within ``max_cost``, searched in a window around the source.

    Identical, inside the returned window, to
    ``cost_distance_many(resistance, labels, [label], max_cost=max_cost)[label]``
    on the whole grid, and every cell outside it is beyond ``max_cost`` there
    (see the module's docstring for why).

    Parameters
    ----------
    resistance, labels
        :class:`WindowReader` (or arrays) of one shape: resistance (> 0; NaN =
        no data) and integer source labels (0 = none).  Other labels are
        ordinary cells, as in :func:`~leopardgeo.kernels.costdist.cost_distance_many`.
    label
        The source label.
    cell_size_m
        Cell side length in metres.
    max_cost
        The cutoff, cost-weighted metres (finite: without one a search may reach the whole grid).
    connectivity
        4, 8 or 16 neighbours.
    box
        The label's bounding box ``(row0, row1, col0, col1)`` if known (:func:`label_boxes`).
    limit_bytes
        Memory the search may use (e.g. the executor's
        :meth:`~leopardgeo.core.executor.Executor.task_memory_bytes`); checked
        once the window is known, before the search allocates.  ``None``: no check.

    Returns
    -------
    CostWindow

    Raises
    ------
    ConfigError
        On a bad ``cell_size_m``, ``max_cost`` or ``connectivity``.
    DataError
        If the shapes differ or ``label`` has no cell.
    ResistanceError, NoPathError
        As :func:`~leopardgeo.kernels.costdist.cost_distance` (for the cells read).
    MemoryLimitError
        If the window's search would need more than ``limit_bytes``.

    Examples
    --------
    >>> r = np.ones((1, 9))
    >>> lab = np.zeros((1, 9), dtype=int); lab[0, 0] = 1
    >>> cw = cost_distance_window(r, lab, 1, cell_size_m=10, max_cost=25, connectivity=4)
    >>> cw.cols, cw.cost.tolist()
    (slice(0, 5, None), [[0.0, 10.0, 20.0, inf, inf]])
    """
    k = _check_connectivity(connectivity)
    s = _check_positive(cell_size_m, "cell_size_m", "metres")
    cut = _check_positive(max_cost, "max_cost", "cost-weighted metres")
    res_r = resistance if not isinstance(resistance, np.ndarray) else ArrayWindows(resistance)
    lab_r = labels if not isinstance(labels, np.ndarray) else ArrayWindows(labels)
    shape = res_r.shape
    if tuple(lab_r.shape) != tuple(shape):
        msg = f"labels: expected the resistance raster's shape {shape}, found {lab_r.shape}. Rasterize them on one grid."
        raise DataError(msg)
    label = int(label)
    if box is None:
        box = label_boxes(lab_r).get(label)
        if box is None:
            msg = f"labels: expected label {label} to have at least one cell, found none. Check the patch raster."
            raise DataError(msg)
    rows, cols = _widen(box, 0, shape)
    h = _halo(cut, s, _least(np.asarray(res_r.read(rows, cols))))
    while True:
        rows, cols = _widen(box, h, shape)
        res_w = np.asarray(res_r.read(rows, cols))
        need = _halo(cut, s, _least(res_w))
        whole = rows == slice(0, shape[0]) and cols == slice(0, shape[1])
        if need <= h or whole:
            break
        h = need  # the wider window holds cheaper cells: widen and read again
    if limit_bytes is not None:
        n_win = (rows.stop - rows.start) * (cols.stop - cols.start)
        check_memory(
            search_window_bytes(n_win),
            what=f"the cost-distance search of patch {label} in a window of {n_win:,} cells (halo {h} cells, max_cost {cut:g})",
            fix="Give each task more memory ([executor] memory_limit_gb, fewer threads per worker) or use coarser cells.",
            limit_bytes=limit_bytes,
        )
    lab_w = np.asarray(lab_r.read(rows, cols))
    cost = cost_distance_many(res_w, lab_w, [label], cell_size_m=s, connectivity=k, max_cost=cut, workers=1)[label]
    logger.debug("windowed search of %d: %d x %d cells (halo %d)", label, cost.shape[0], cost.shape[1], h)
    return CostWindow(label, rows, cols, cost, h)


def _window_task(item: tuple) -> CostWindow:
    """One executor task: a label's windowed search (module level, so Dask workers can import it)."""
    res_r, lab_r, label, box, cell_size_m, max_cost, connectivity, limit = item
    return cost_distance_window(
        res_r, lab_r, label, cell_size_m=cell_size_m, max_cost=max_cost, connectivity=connectivity, box=box, limit_bytes=limit
    )


def cost_distance_windows(
    resistance: WindowReader | np.ndarray,
    labels: WindowReader | np.ndarray,
    cutoffs: dict[int, float],
    *,
    cell_size_m: float,
    connectivity: int = 8,
    executor: Any = None,
    boxes: dict[int, tuple[int, int, int, int]] | None = None,
) -> dict[int, CostWindow]:
    """Windowed searches from several labels, each to its own cutoff, as tasks of ``executor``.

    Parameters
    ----------
    resistance, labels
        As :func:`cost_distance_window`.  Arrays are shared with the
        executor's workers once (``executor.share``); file readers travel as paths.
    cutoffs
        ``{label: max_cost}``, in the order results are wanted.
    cell_size_m, connectivity
        As :func:`cost_distance_window`.
    executor
        Anything with ``map(fn, items) -> list`` in item order (the run's
        executor); default: one after another here.  The result does not depend on it.
    boxes
        The labels' bounding boxes if known (else one scan of ``labels``).

    Returns
    -------
    dict of int to CostWindow
        In the order of ``cutoffs``.

    Examples
    --------
    >>> r = np.ones((3, 12))
    >>> lab = np.zeros((3, 12), dtype=int); lab[:, 0] = 1; lab[:, 11] = 2
    >>> out = cost_distance_windows(r, lab, {1: 30.0, 2: 15.0}, cell_size_m=10, connectivity=4)
    >>> [(k, w.cols.stop - w.cols.start) for k, w in out.items()]
    [(1, 6), (2, 4)]
    """
    if boxes is None:
        boxes = label_boxes(labels)
    missing = [p for p in cutoffs if int(p) not in boxes]
    if missing:
        msg = f"labels: expected every searched label to have a cell, found none for {missing[:10]}. Check the patch raster."
        raise DataError(msg)
    shared: list[Any] = []

    def reader(src: WindowReader | np.ndarray) -> WindowReader:
        if not isinstance(src, np.ndarray):
            return src
        share = getattr(executor, "share", None)
        if share is None:
            return ArrayWindows(src)
        handle = share(src)  # sent to each worker once
        shared.append(handle)
        return ArrayWindows(handle)

    res_r, lab_r = reader(resistance), reader(labels)
    task = getattr(executor, "task_memory_bytes", None)
    limit = int(task()) if task is not None else None
    items = [
        (res_r, lab_r, int(p), boxes[int(p)], float(cell_size_m), float(c), int(connectivity), limit) for p, c in cutoffs.items()
    ]
    try:
        found = executor.map(_window_task, items) if executor is not None else [_window_task(i) for i in items]
    finally:
        release = getattr(executor, "release", None)
        for h in shared:
            if release is not None:
                release(h)
    return {w.label: w for w in found}


def search_window_bytes(n_cells: int) -> int:
    """Approximate peak bytes of one windowed search over ``n_cells`` cells (for memory checks).

    Examples
    --------
    >>> search_window_bytes(1_000_000)
    32000000
    """
    return int(n_cells) * SEARCH_BYTES_PER_CELL
