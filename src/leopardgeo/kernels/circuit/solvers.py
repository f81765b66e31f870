"""Solvers of the grounded Laplacian behind one interface (direct factors, AMG-CG) and the memory estimate."""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.linalg import pinv
from scipy.sparse.linalg import splu
from threadpoolctl import threadpool_limits

from leopardgeo.config import CircuitSolver, choice
from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError
from leopardgeo.core.memory import small_pages
from leopardgeo.kernels.circuit._compiled import (
    _cg_direction,
    _cg_step,
    _direct_interpolation,
    _fix_orphans,
    _galerkin,
    _grid_dissection,
    _gs_backward,
    _gs_forward_from_zero,
    _matvec_dot,
    _prolong_add,
    _restrict,
    _upper_one_based,
)

logger = logging.getLogger(__name__)

#: Unknowns up to which ``solver = "auto"`` always factorises (see :func:`choose_solver`).
DIRECT_ALWAYS_NODES = 100_000
#: Unknowns up to which ``auto`` uses SciPy's SuperLU: no thread start-up, faster than PARDISO / CHOLMOD this small.
SMALL_NODES = 20_000
#: Unknowns up to which ``auto`` factorises a grid with PARDISO even for one right-hand side: in the grid's own
#: order the factor is cheap enough.  The demo's pinch-point windows with one solve each (2 cores, wall seconds,
#: PARDISO against AMG-CG): 108,264 unknowns 0.22 against 0.34, 178,832 0.41 against 0.50, 318,242 0.78 against
#: 1.48, 390,556 0.76 against 2.00, 485,601 1.34 against 2.03; SuperLU (one thread) 0.42, 0.87, 1.81, 1.67, 2.21,
#: so without PARDISO the limit stays :data:`DIRECT_ALWAYS_NODES`.
PARDISO_GRID_ALWAYS_NODES = 600_000
#: Unknowns up to which ``auto`` factorises when there are :data:`DIRECT_MIN_RHS` right-hand sides or more.
DIRECT_MAX_NODES = 1_500_000
#: Right-hand sides from which a factor pays off on a large grid (a factor costs about as much as 3-4 AMG solves).
DIRECT_MIN_RHS = 4
#: Right-hand sides handed to a factor at once when solves are not stored (memory: 16 bytes per node each).
DIRECT_BLOCK_RHS = 16
#: Levels larger than this are coarsened geometrically (see :class:`LaplacianSolver`).
GEOMETRIC_MIN_NODES = 100_000
#: Bytes per grid cell and per solve node of a circuit run, measured with
#: ``benchmarks/bench_circuit.py`` (peak RSS minus interpreter, with headroom).
BYTES_PER_CELL = 40
BYTES_PER_NODE = 260
#: Bytes per node of a direct solve besides the factor (matrix, its upper triangle, permutations).
BYTES_PER_NODE_MATRIX = 100
#: Bytes of factor per node and per doubling of the node count (fill ~ n log2 n; 1.6 GB peak at 690,002 nodes).
FACTOR_BYTES_PER_NODE_LOG2 = 100


def _pardiso() -> object | None:
    """The ``pypardiso`` module (MKL PARDISO), or None when it is not installed or MKL cannot be loaded."""
    try:
        import pypardiso  # type: ignore[import-not-found]
    except (ImportError, OSError):
        return None
    return pypardiso


@functools.lru_cache(maxsize=1)
def _mkl_library(mod: object) -> ctypes.CDLL:
    """MKL's runtime library (``mkl_rt``), loaded once per process.

    The ``mkl`` wheel that ``pypardiso`` installs lists the library in its
    record, which is read in milliseconds; ``pypardiso``'s own search (used
    when there is no such record, or with ``PYPARDISO_MKL_RT`` set) walks the
    whole environment with a recursive glob, 0.7 s of the demo's 3.5 s
    circuit set-up here.
    """
    if not os.environ.get("PYPARDISO_MKL_RT"):
        try:
            files = importlib.metadata.files("mkl") or []
        except importlib.metadata.PackageNotFoundError:
            files = []
        for f in sorted((f for f in files if f.name.startswith("libmkl_rt")), key=lambda f: len(str(f))):
            try:
                return ctypes.CDLL(str(f.locate()))
            except OSError:
                continue
    found = mod.PyPardisoSolver(mtype=2).libmkl  # type: ignore[attr-defined]  # finds and loads mkl_rt
    return ctypes.CDLL(found._name)  # the same library, with function objects (argtypes) of our own


#: MKL PARDISO's ``iparm`` (1-based numbers as in MKL's manual) for a grounded Laplacian (real symmetric positive
#: definite, ``mtype = 2``).  pypardiso leaves ``iparm(1) = 0``, MKL's defaults, and those refine every solve
#: twice (``iparm(8) = 2``): each right-hand side is solved three times, with a residual in between.  A Cholesky
#: factor of a positive definite matrix has no perturbed pivots to refine away (residual 1e-11 of the right-hand
#: side on the demo's Laplacian without refinement).  ``iparm(25) = 2`` solves a block's right-hand sides in
#: parallel.  Measured on the demo (1,444,642 unknowns, 30 right-hand sides, ``benchmarks/bench_circuit_demo.py``):
#: the solve phase from 12 to 3-5 CPU seconds, the factor's peak memory from 1.76 to 1.08 GB.
PARDISO_IPARM = {
    1: 1,  # use the values below, not MKL's defaults
    2: 2,  # METIS nested dissection
    8: 0,  # no iterative refinement (MKL refines only if the factor perturbed a pivot, which Cholesky does not)
    10: 8,  # pivot perturbation 1e-8 (not used by a positive definite factor)
    18: -1,  # report the factor's non-zeros in iparm(18)
    19: -1,  # report the factor's Mflop in iparm(19)
    25: 2,  # forward / backward solve parallel over the right-hand sides
}


#: Unknowns off the grid (patch and region nodes) up to which the grid's own nested dissection orders a factor
#: (they are eliminated last, as one dense block); with more, METIS orders it.
GRID_ORDER_MAX_EXTRA = 2_000
#: Cells up to which a box of the grid's nested dissection keeps raster order.  On the demo's Laplacian (1,426,897
#: unknowns) boxes of 64 cells gave a factor of 86.8 M non-zeros in 1.07 M supernodes, boxes of 4 cells 80.0 M in
#: 0.73 M: 20-30 % less CPU in the backward solves and 0.5 s less in the analysis.
GRID_ORDER_LEAF = 4
#: Share of a box's cells each side of a grid line must keep for the line to be a cut of the grid's nested
#: dissection (the line with the fewest cells wins).  On the demo: 0.5 (the median line only) 80.0 M non-zeros and
#: 29.4 Gflop in the factor, 0.3 76.1 M and 24.6 Gflop, 0.2 79.1 M and 30.8 Gflop.
GRID_ORDER_BALANCE = 0.3


def grid_orderable(n_unknowns: int, n_cell_unknowns: int) -> bool:
    """Whether a factor of ``n_unknowns`` unknowns, ``n_cell_unknowns`` of them raster cells, takes the grid's order.

    The unknowns off the raster (patch and region nodes) are eliminated last as one dense block
    (:func:`_grid_order`), so there may be at most :data:`GRID_ORDER_MAX_EXTRA` of them; with more, METIS
    orders the factor and ``auto`` chooses as off a raster (:func:`choose_solver`'s ``grid``).

    Examples
    --------
    >>> grid_orderable(1_426_897, 1_426_862)   # the demo: 35 patch nodes
    True
    >>> grid_orderable(100_000, 90_000)
    False
    """
    return 0 <= n_unknowns - n_cell_unknowns <= GRID_ORDER_MAX_EXTRA


def _grid_order(node_raster: np.ndarray | None, n: int, last: Sequence[int] = ()) -> np.ndarray | None:
    """Fill-reducing elimination order of the ``n`` unknowns from the grid's geometry, or None (METIS decides).

    Nested dissection by grid lines (:func:`_grid_dissection`), the unknowns off
    the raster (patch nodes) last, and of those the unknowns ``last`` at the
    very end, in their given order (see :meth:`LaplacianSolver.solve_units`).
    On the demo's Laplacian (1,426,897 unknowns, 8 neighbours) PARDISO's factor
    has 76.1 M non-zeros and needs 24.6 Gflop against METIS's 88.9 M and 35.1,
    and the order costs 0.2 CPU s against 3-5 for METIS inside PARDISO's
    analysis, most of the factor's serial part.  METIS stays for general
    graphs and for many unknowns off the grid.
    """
    if node_raster is None:
        return None
    cells = np.asarray(node_raster)
    on_grid = cells[cells >= 0]
    if on_grid.size == 0 or on_grid.max() >= n or not grid_orderable(n, on_grid.size):
        return None
    order = _grid_dissection(np.ascontiguousarray(cells, dtype=np.int64), GRID_ORDER_LEAF, GRID_ORDER_BALANCE)
    seen = np.zeros(n, dtype=bool)
    seen[order] = True
    if seen.sum() != order.size:  # an unknown on two cells: not a plain grid
        return None
    tail = np.asarray(last, dtype=np.int64)
    if tail.size and (seen[tail].any() or np.unique(tail).size != tail.size):
        return None  # ``last`` must be distinct unknowns off the grid
    seen[tail] = True
    return np.concatenate([order, np.flatnonzero(~seen), tail])


def _pardiso_error(code: int) -> Exception:
    if code == -2:
        return MemoryLimitError(
            "PARDISO: expected enough memory for the factor, found MKL out of memory (error -2). Use coarser cells "
            "([grid] cell_size_m), fewer patches, solver = 'amg', or a machine with more memory."
        )
    return DataError(
        f"PARDISO: expected a symmetric positive definite Laplacian to factorise and solve, found MKL error {code}. "
        "Check the resistance raster (finite values > 0) or use solver = 'amg'."
    )


class _PardisoFactor:
    """MKL PARDISO's Cholesky factor of a grounded Laplacian, called directly through ctypes.

    ``pypardiso`` only finds and loads MKL's runtime library here.  Its own
    ``solve`` hashes the whole matrix on every call (to check it is the
    factorised one), copies the index arrays and returns a C-ordered copy of
    the solutions (390 MB for the demo's 34 right-hand sides); here the
    factor's index arrays are made once and solutions are written straight into
    a Fortran-ordered block.  Phases 331-333 (forward, diagonal and backward
    substitution alone) are available to :meth:`LaplacianSolver.solve_units`.

    Parameters
    ----------
    mod
        The ``pypardiso`` module.
    matrix
        The symmetric matrix (CSR, float64); PARDISO gets its upper triangle.
    order
        The unknowns in elimination order, given to PARDISO as its user
        permutation (``iparm(5) = 1``); None: METIS.
    """

    def __init__(self, mod: object, matrix: sp.csr_matrix, order: np.ndarray | None = None) -> None:
        lib = _mkl_library(mod)
        self._lib = lib
        self._fn = lib.pardiso
        i32 = ctypes.POINTER(ctypes.c_int32)
        handle = ctypes.c_int64 if ctypes.sizeof(ctypes.c_void_p) == 8 else ctypes.c_int32
        self._fn.argtypes = [ctypes.POINTER(handle), i32, i32, i32, i32, i32, ctypes.c_void_p, i32, i32, i32, i32, i32,
                             i32, ctypes.c_void_p, ctypes.c_void_p, i32]  # fmt: skip
        self._fn.restype = None
        self._handle_type = handle
        self.pt = np.zeros(64, dtype=np.int64 if handle is ctypes.c_int64 else np.int32)
        self.iparm = np.zeros(64, dtype=np.int32)
        for i, value in PARDISO_IPARM.items():
            self.iparm[i - 1] = value
        self.n = int(matrix.shape[0])
        if not matrix.has_sorted_indices:
            matrix = matrix.copy()
            matrix.sort_indices()
        # the upper triangle, 1-based (iparm(35) = 0)
        values = matrix.data.astype(np.float64, copy=False)
        self._ia, self._ja, self._data = _upper_one_based(matrix.indptr, matrix.indices, values)
        self.perm = np.zeros(1, dtype=np.int32)
        if order is not None:
            self.iparm[4] = 1
            self.perm = (np.asarray(order) + 1).astype(np.int32)  # 1-based: perm[k] is the unknown eliminated k-th
        self._alive = True
        try:
            dummy = np.zeros((self.n, 1), order="F")
            self._call(12, dummy, dummy.copy(order="F"))  # analysis and numerical factorisation
        except Exception:
            self.free()
            raise
        logger.debug(
            "PARDISO factor: %d non-zeros, %.1f Gflop, peak %.2f GB",
            self.iparm[17],
            self.iparm[18] / 1e3,
            max(self.iparm[14], self.iparm[15] + self.iparm[16]) / 1e6,
        )

    def get_iparm(self, i: int) -> int:
        """``iparm(i)``, 1-based as in MKL's manual."""
        return int(self.iparm[i - 1])

    def _call(self, phase: int, b: np.ndarray, x: np.ndarray) -> None:
        i32 = ctypes.POINTER(ctypes.c_int32)
        error = ctypes.c_int32(0)

        def ref(v: int) -> ctypes._Pointer:  # type: ignore[type-arg]
            return ctypes.byref(ctypes.c_int32(v))

        self._fn(self.pt.ctypes.data_as(ctypes.POINTER(self._handle_type)), ref(1), ref(1), ref(2), ref(phase), ref(self.n),
                 self._data.ctypes.data, self._ia.ctypes.data_as(i32), self._ja.ctypes.data_as(i32),
                 self.perm.ctypes.data_as(i32), ref(b.shape[1] if b.ndim == 2 else 1), self.iparm.ctypes.data_as(i32),
                 ref(0), b.ctypes.data, x.ctypes.data, ctypes.byref(error))  # fmt: skip
        if error.value != 0:
            raise _pardiso_error(int(error.value))

    def solve(self, b: np.ndarray, phase: int = 33, out: np.ndarray | None = None) -> np.ndarray:
        """``phase`` 33 (the whole solve), 331, 332 or 333 on the columns of ``b`` (n-by-k), into ``out`` (Fortran order)."""
        b = np.asfortranarray(b, dtype=np.float64)
        if out is None:
            out = np.empty(b.shape, order="F")
        if not (out.flags.f_contiguous and out.dtype == np.float64 and out.shape == b.shape):
            msg = f"PARDISO: expected a Fortran-ordered float64 {b.shape} block for the solutions, found {out.shape}."
            raise DataError(msg)
        self._call(phase, b, out)
        return out

    def product_t(self, w: np.ndarray, m: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = w @ m.T`` by MKL's ``dgemm`` (``w`` n-by-k Fortran order, ``m`` k-by-k, ``out`` n-by-k C order).

        MKL's threads, not numpy's OpenBLAS: OpenBLAS's threads would start
        while MKL's, just done with the solves, still spin-wait for work, and
        the two pools would share the cores.
        """
        n, k = w.shape
        m = np.ascontiguousarray(m, dtype=np.float64)
        if not (w.flags.f_contiguous and out.flags.c_contiguous and out.shape == (n, k) and w.dtype == np.float64):
            return np.matmul(w, m.T, out=out)
        # column-major view: out^T (k x n, ld k) = m (k x k: the C-ordered m read transposed) @ w^T (w: n x k, ld n)
        col_major, trans = 102, 112
        c_int, c_double = ctypes.c_int, ctypes.c_double
        self._lib.cblas_dgemm(c_int(col_major), c_int(trans), c_int(trans), c_int(k), c_int(n), c_int(k), c_double(1.0),
                              ctypes.c_void_p(m.ctypes.data), c_int(k), ctypes.c_void_p(w.ctypes.data), c_int(n),
                              c_double(0.0), ctypes.c_void_p(out.ctypes.data), c_int(k))  # fmt: skip
        return out

    def free(self) -> None:
        """Release MKL's memory for this factor (phase -1); idempotent."""
        if getattr(self, "_alive", False):
            self._alive = False
            dummy = np.zeros((1, 1), order="F")
            self._call(-1, dummy, dummy)
            self._lib.mkl_free_buffers()  # MKL keeps freed blocks in a pool of its own: give them back to the system

    def __del__(self) -> None:  # a factor dropped without LaplacianSolver.close(): MKL's memory is not Python's
        try:
            self.free()
        except Exception:  # interpreter shutdown: the library may be gone
            pass


def _superlu(matrix: sp.csr_matrix, order: np.ndarray | None) -> object:
    """SciPy's SuperLU factor of a symmetric positive definite ``matrix``, in ``order`` when given.

    With an order (:func:`_grid_order`) the matrix is permuted symmetrically and
    factorised as it is (``permc_spec = "NATURAL"``), the pivots kept on the
    diagonal (``diag_pivot_thresh = 0``, ``SymmetricMode``: a positive definite
    matrix needs no pivoting); without, SuperLU orders it (``MMD_AT_PLUS_A``).
    With an order, solutions are ``x[order] = factor.solve(b[order])``.
    """
    if order is None:
        return splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A")
    rows = matrix[order]  # row k of the permuted matrix is row order[k]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    # columns renamed by the inverse order; the matrix is symmetric, so its CSR arrays read as CSC are the same matrix
    permuted = sp.csc_matrix((rows.data, inverse[rows.indices], rows.indptr), shape=matrix.shape)
    permuted.sort_indices()
    return splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})


def _cholespy() -> object | None:
    """The ``cholespy`` module (CHOLMOD in a self-contained wheel), or None."""
    try:
        import cholespy  # type: ignore[import-not-found]
    except ImportError:
        return None
    return cholespy


def direct_backend(grid: bool = False) -> str:
    """The direct solver ``auto`` uses on this machine: ``pardiso``, ``cholmod`` or ``superlu``.

    MKL PARDISO (the ``pypardiso`` wheel) factors an earlier demo's 690,002-unknown
    Laplacian in 2.0 s on 2 cores, CHOLMOD (``cholespy``) in 5.1 s, SciPy's
    SuperLU in 5.8 s (docs/performance.md); the first one installed wins.  On a
    grid (``grid``: the unknowns are raster cells, so the grid's own nested
    dissection orders the factor, :func:`_grid_order`) SuperLU comes before
    CHOLMOD: cholespy's CHOLMOD is simplicial (no dense blocks) and orders by
    itself, and on the demo's 1,426,897 unknowns with 34 right-hand sides it took
    30 s to factor and 7 s to solve, SuperLU in the grid's order 11 s and 4 s.

    Examples
    --------
    >>> direct_backend() in ("pardiso", "cholmod", "superlu")
    True
    >>> direct_backend(grid=True) in ("pardiso", "superlu")
    True
    """
    if _pardiso() is not None:
        return "pardiso"
    if _cholespy() is not None and not grid:
        return "cholmod"
    return "superlu"


def choose_solver(n_unknowns: int, n_rhs: int, method: CircuitSolver | str = "auto", grid: bool = False) -> str:
    """The solver used for ``n_rhs`` right-hand sides on ``n_unknowns`` unknowns.

    ``auto`` factorises (:func:`direct_backend`) up to :data:`DIRECT_ALWAYS_NODES`
    unknowns, and up to :data:`DIRECT_MAX_NODES` when there are at least
    :data:`DIRECT_MIN_RHS` right-hand sides (the factor's cost is then shared);
    above, or for one or two solves on a large grid, AMG-preconditioned conjugate
    gradients is faster and needs far less memory (the factor's fill grows as
    ``n log n``: 5 GB at 3.6 M unknowns).  Up to :data:`SMALL_NODES` unknowns
    SciPy's SuperLU is used (no thread start-up).  PARDISO factorises a grid
    (``grid``) for any number of solves up to :data:`PARDISO_GRID_ALWAYS_NODES`
    unknowns.  Without PARDISO the factor is SuperLU in the grid's order on a
    grid (:func:`direct_backend`) and CHOLMOD off a grid, in the same ranges;
    with neither PARDISO nor CHOLMOD, off a grid, SuperLU in its own order
    only up to :data:`DIRECT_ALWAYS_NODES`.  ``grid``: the unknowns are raster
    cells and at most :data:`GRID_ORDER_MAX_EXTRA` others
    (:func:`grid_orderable`), so a factor takes the grid's own order.

    Examples
    --------
    >>> choose_solver(690_002, 15) in ("pardiso", "cholmod")  # an earlier demo, with a direct backend installed
    True
    >>> choose_solver(3_600_000, 1)
    'amg'
    >>> choose_solver(5_000, 1)
    'superlu'
    """
    method = choice(CircuitSolver, method, "solver")
    if method is not CircuitSolver.AUTO:
        return str(method)
    if n_unknowns <= SMALL_NODES:
        return "superlu"
    backend = direct_backend(grid)
    if n_unknowns <= DIRECT_ALWAYS_NODES or (backend == "pardiso" and grid and n_unknowns <= PARDISO_GRID_ALWAYS_NODES):
        return backend
    if (backend != "superlu" or grid) and n_unknowns <= DIRECT_MAX_NODES and n_rhs >= DIRECT_MIN_RHS:
        return backend
    return "amg"


class LaplacianSolver:
    """Solve ``L x = b`` repeatedly for one reduced Laplacian, reusing its factor or preconditioner.

    Parameters
    ----------
    laplacian
        Symmetric positive definite CSR matrix (a grounded Laplacian).
    method
        ``"auto"`` (see :func:`choose_solver`), ``"amg"``, ``"pardiso"``,
        ``"cholmod"`` or ``"superlu"``.
    tolerance
        Relative residual at which conjugate gradients stop (AMG only).
    node_raster
        Optional raster of unknown ids per cell (-1 none), e.g. from
        :func:`solve_nodes`; enables geometric coarsening of the large levels.
    n_rhs
        How many right-hand sides are expected (guides ``auto``).
    last
        Unknowns to eliminate last, in this order, when the factor uses the
        grid's own order (PARDISO with ``node_raster``): the unit solves of
        :meth:`solve_units` at exactly these unknowns then need only the
        backward half of each solve.

    Notes
    -----
    Direct solvers: MKL PARDISO (``pypardiso``; real symmetric positive
    definite, upper triangle, the grid's nested dissection or METIS), SciPy's
    SuperLU (in the grid's order when ``node_raster`` is given, see
    :func:`_superlu`) or CHOLMOD (``cholespy``; simplicial Cholesky in its own
    order).  All right-hand sides go to the
    factor in one block (:meth:`solve_many`).

    AMG is a classical (Ruge-Stüben) hierarchy used as the preconditioner of
    conjugate gradients, with forward Gauss-Seidel before and backward after
    (a symmetric V-cycle).  Classical AMG suits graph Laplacians (M-matrices)
    with high-contrast conductances: on the benchmark grids it needs about half
    the iterations of smoothed aggregation.  The finest level, which holds
    three quarters of the work, is coarsened geometrically (every other row
    and column, plus patches and any node without a coarse neighbour) with
    classical direct interpolation, compiled here because pyamg's generic
    strength / splitting / interpolation passes take most of its setup time on
    grids this size (their interpolation weights are kept in float32); the
    coarser levels are pyamg's ``ruge_stuben_solver``.  The cycle itself and
    the conjugate gradients around it are compiled here too (:class:`_VCycle`,
    :meth:`_pcg`): pyamg's preconditioner spends two extra products with the
    finest matrix per application and both allocate new vectors each time.
    :meth:`close` frees the hierarchy.

    Examples
    --------
    >>> L = sp.csr_matrix(np.array([[2.0, -1.0], [-1.0, 1.0]]))
    >>> LaplacianSolver(L).solve(np.array([0.0, 1.0]))
    array([1., 2.])
    >>> LaplacianSolver(L, "amg").solve_many(np.eye(2)).round(6)
    array([[1., 1.],
           [1., 2.]])
    """

    def __init__(
        self,
        laplacian: sp.csr_matrix,
        method: CircuitSolver | str = "auto",
        tolerance: float = 1e-8,
        node_raster: np.ndarray | None = None,
        n_rhs: int = 1,
        last: Sequence[int] = (),
    ) -> None:
        n = laplacian.shape[0]
        self.matrix = laplacian
        if not (sp.issparse(laplacian) and laplacian.format == "csr"):
            self.matrix = laplacian = sp.csr_matrix(laplacian)
        self.tolerance = float(tolerance)
        if not 0.0 < self.tolerance < 1.0:  # 0 (or >= 1) stops CG at x = 0 as converged: every resistance 0
            msg = (
                f"tolerance: expected a relative residual in (0, 1), e.g. 1e-8, found {tolerance!r}. For an exact "
                "answer use a direct solver (solver = 'pardiso', 'cholmod' or 'superlu')."
            )
            raise ConfigError(msg)
        self.iterations: list[int] = []
        grid = node_raster is not None and grid_orderable(n, int(np.count_nonzero(np.asarray(node_raster) >= 0)))
        self.method = choose_solver(n, n_rhs, method, grid=grid)
        self._last: tuple[int, ...] = ()  # the unknowns eliminated last (grid order with PARDISO)
        self._order: np.ndarray | None = None  # SuperLU's factor is of the matrix in this order (the grid's)
        t = time.perf_counter()
        if self.method == "pardiso":
            mod = _pardiso()
            if mod is None:
                msg = (
                    "solver = 'pardiso': expected pypardiso (MKL) to be installed, found it missing. "
                    "pip install pypardiso, or use 'auto'."
                )
                raise ConfigError(msg)
            order = _grid_order(node_raster, n, last)
            self._factor = _PardisoFactor(mod, laplacian, order)
            if order is not None:
                self._last = tuple(int(v) for v in last)
        elif self.method == "cholmod":
            mod = _cholespy()
            if mod is None:
                msg = (
                    "solver = 'cholmod': expected cholespy to be installed, found it missing. "
                    "pip install cholespy, or use 'auto'."
                )
                raise ConfigError(msg)
            csr = laplacian.tocsr()
            self._factor = mod.CholeskySolverD(
                n,
                csr.indptr.astype(np.int32),
                csr.indices.astype(np.int32),
                np.ascontiguousarray(csr.data, dtype=np.float64),
                mod.MatrixType.CSR,
            )
        elif self.method == "superlu":
            self._order = _grid_order(node_raster, n)
            self._factor = _superlu(laplacian, self._order)
        else:
            self._ml = _grid_amg(laplacian, node_raster)
            self._cycle = _VCycle(self._ml)
        self.setup_s = time.perf_counter() - t

    @property
    def direct(self) -> bool:
        """Whether the solver holds a factor (no iterations)."""
        return self.method != "amg"

    def solve(self, b: np.ndarray, out: np.ndarray | None = None, overwrite_b: bool = False) -> np.ndarray:
        """Solution of ``L x = b`` (float64) for one right-hand side.

        AMG: written into ``out`` when given; with ``overwrite_b`` a contiguous
        float64 ``b`` becomes the residual's storage (one vector less).
        """
        if self.direct:
            return self.solve_many(np.asarray(b, dtype=np.float64).reshape(-1, 1))[:, 0]
        x, its, converged = self._pcg(np.asarray(b, dtype=np.float64).ravel(), out, overwrite_b)
        self.iterations.append(its)
        if not converged:  # pragma: no cover - a symmetric positive definite system converges
            logger.warning("conjugate gradients stopped after %d iterations above tolerance %g", its, self.tolerance)
        return x

    def _pcg(
        self, b: np.ndarray, out: np.ndarray | None = None, overwrite_b: bool = False, maxiter: int = 1000
    ) -> tuple[np.ndarray, int, bool]:
        """Conjugate gradients preconditioned by the V-cycle, from ``x = 0``; stops at ``|r| < tolerance |b|``.

        The textbook iteration of scipy's ``cg`` (same steps, same stopping
        rule) on four vectors allocated once (the preconditioned residual and
        the matrix-vector product share one): scipy's allocates four new
        n-vectors per iteration (page faults, and 100 MB at 3.6 M unknowns) and
        makes separate passes for the updates and dot products, fused here.
        Checked against scipy's ``cg`` in the tests.
        """
        a = self.matrix
        n = len(b)
        x = np.zeros(n) if out is None else out
        x[:] = 0.0
        stop = self.tolerance * float(np.linalg.norm(b))
        if stop == 0.0:
            return x, 0, True
        r = b if overwrite_b and b.flags.c_contiguous and b.flags.writeable else b.copy()
        p = np.zeros(n)
        zq = np.empty(n)  # z = M r, then q = A p
        rr = float(r @ r)
        rz = 0.0
        for it in range(maxiter):
            if math.sqrt(rr) < stop:
                return x, it, True
            self._cycle(r, out=zq)
            rz = _cg_direction(p, zq, r, rz)
            alpha = rz / _matvec_dot(a.indptr, a.indices, a.data, p, zq)
            rr = _cg_step(x, r, p, zq, alpha)
        return x, maxiter, math.sqrt(rr) < stop

    def solve_many(self, b: np.ndarray, pool: ThreadPoolExecutor | None = None, overwrite_b: bool = False) -> np.ndarray:
        """Solutions of ``L X = B`` for the columns of ``B`` (n-by-k, float64).

        Direct solvers take the whole block at once; AMG solves the columns one by
        one, on ``pool``'s threads when given (``overwrite_b``: a Fortran-ordered
        ``B`` serves as the residuals' storage).
        """
        b = np.asarray(b, dtype=np.float64)
        k = b.shape[1]
        if k == 0:
            return np.zeros_like(b)
        if self.method == "pardiso":
            x = self._factor.solve(b)  # PARDISO reads and writes columns (Fortran order)
        elif self.method == "cholmod":
            bc = np.ascontiguousarray(b)
            x = np.empty_like(bc)
            self._factor.solve(bc, x)
        elif self.method == "superlu":
            if self._order is None:
                x = self._factor.solve(np.asfortranarray(b))
            else:  # the factor is of the matrix in the grid's order: rows in, rows out, column by column
                bp = np.empty(b.shape, order="F")
                for j in range(k):
                    np.take(b[:, j], self._order, out=bp[:, j])
                y = self._factor.solve(bp)
                del bp
                x = np.empty(b.shape, order="F")
                for j in range(k):
                    x[self._order, j] = y[:, j]
        else:
            x = np.empty(b.shape, order="F")  # each solve writes its own contiguous column

            def one(j: int) -> np.ndarray:
                return self.solve(b[:, j], out=x[:, j], overwrite_b=overwrite_b)

            if pool is None:
                list(map(one, range(k)))
            else:
                # one CG per thread: numpy's BLAS threads (dot products) would take the other threads' cores
                with threadpool_limits(limits=1, user_api="blas"):
                    list(pool.map(one, range(k)))
            return x
        self.iterations.extend([0] * k)
        return x

    def solve_units(
        self,
        nodes: Sequence[int],
        out: np.ndarray | None = None,
        pool: ThreadPoolExecutor | None = None,
        release: bool = False,
    ) -> np.ndarray:
        """Solutions for a unit current injected at each of ``nodes``: ``L X = E`` with ``E[nodes[j], j] = 1``.

        Parameters
        ----------
        nodes
            Unknowns (distinct).
        out
            Optional n-by-k float64 array (any order) to write ``X`` into.
        pool
            Threads for AMG's independent solves.
        release
            Free the factor or hierarchy (:meth:`close`) as soon as the
            solutions no longer need it: with PARDISO before the n-by-k
            product, whose output then reuses the factor's memory.  No solves
            after this.

        Notes
        -----
        With PARDISO and ``nodes`` eliminated last (``last`` at construction),
        only the backward substitution runs per node.  With those k unknowns at
        the end of the elimination order, the forward substitution
        ``L z = e_j`` of a unit injection at one of them touches only the
        factor's trailing k-by-k block ``L_KK``: ``z`` is zero above it and
        ``z_K = L_KK^-1 e_j``.  Backward substitutions of the unit vectors at
        those k positions (PARDISO's phase 333) give ``W = L^-T E``, whose
        rows at the k unknowns are ``W_KK = L_KK^-T``; hence
        ``X = L^-T L^-1 E = W W_KK^T``: k passes through the factor instead of
        2k, and an n-by-k times k-by-k product.  (MKL's own sparse right-hand
        sides, ``iparm(31)``, cannot be combined with a user order.)  The
        result is checked against the matrix (one product with a weighted sum
        of its columns); should PARDISO ever not eliminate the k unknowns
        last, the full solves are used.
        """
        nodes = [int(v) for v in nodes]
        n, k = self.matrix.shape[0], len(nodes)
        if out is None:
            out = np.empty((n, k), order="F")
        if k == 0:
            return out
        if self.method == "pardiso" and self._last and tuple(nodes) == self._last:
            with small_pages():  # short-lived n-by-k blocks: see small_pages
                e = np.zeros((n, k), order="F")
                e[nodes, np.arange(k)] = 1.0
                w = self._factor.solve(e, phase=333)
            del e
            m = np.ascontiguousarray(w[nodes, :])
            # every column at once, before the product: L X c = E c for weights c in [1, 2), with X c = W (W_KK^T c);
            # a column that misses part of its 1 A leaves a residual of that order (the weights keep such errors from
            # cancelling)
            c = 1.0 + np.random.default_rng(0).random(k)
            xc = w @ (m.T @ c)
            r = self.matrix @ xc
            r[nodes] -= c
            # a Laplacian's largest entry is on its diagonal: the rounding of this residual is below 1e-12 |L| |x|
            rounding = 1e-12 * float(self.matrix.diagonal().max()) * float(np.abs(xc).max())
            if float(np.abs(r).max()) <= 1e-6 + rounding:
                factor = self._factor
                if release:  # the factor's memory returns to the system before the product writes n-by-k values
                    self.close()
                factor.product_t(w, m, out)
                self.iterations.extend([0] * k)
                return out
            del w
            logger.warning("PARDISO did not eliminate the unit solves' unknowns last; solving them in full")
        b = np.zeros((n, k), order="F")
        b[nodes, np.arange(k)] = 1.0
        out[...] = self.solve_many(b, pool, overwrite_b=True)
        if release:
            self.close()
        return out

    def close(self) -> None:
        """Release the factor's or the hierarchy's memory (PARDISO keeps it outside Python); no solves after this."""
        if self.method == "pardiso" and getattr(self, "_factor", None) is not None:
            self._factor.free()
        self._factor = self._ml = self._cycle = None


class _VCycle:
    """One symmetric V-cycle of a pyamg hierarchy from a zero initial guess: the preconditioner of conjugate gradients.

    The same cycle as pyamg's ``aspreconditioner`` (forward Gauss-Seidel before,
    backward after, restriction ``P.T``, the coarsest level by pseudo-inverse),
    written out because pyamg's computes two residual norms per application that
    conjugate gradients never reads (two products with the finest matrix, a
    third of the cycle's work), and cannot use the zero initial guess: here the
    forward sweep starts from zero and leaves the residual behind it, so the
    pre-smoothing step reads each finest-level row once.  Work vectors are per
    thread (``solve_many`` runs solves on a pool).
    """

    def __init__(self, ml: object) -> None:
        levels = ml.levels  # type: ignore[attr-defined]
        self.ops = []
        for lvl in levels[:-1]:
            a, p = sp.csr_matrix(lvl.A), sp.csr_matrix(lvl.P)  # no copy when already CSR
            if not a.has_canonical_format:
                a.sum_duplicates()  # the sweeps find the diagonal by the sorted, unique columns
            if not (a.diagonal() > 0).all():
                msg = "AMG: expected a symmetric positive definite matrix (positive diagonal), found a zero or negative one."
                raise DataError(msg)
            self.ops.append((a.indptr, a.indices, a.data, p.indptr, p.indices, p.data))
        self.sizes = [lvl.A.shape[0] for lvl in levels]
        self.coarse_inv = pinv(levels[-1].A.toarray())
        self._local = threading.local()

    def _work(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        work = getattr(self._local, "work", None)
        if work is None:  # per level: right-hand side and solution (below the finest), residual (above the coarsest)
            sizes = self.sizes
            work = [(np.empty(0 if i == 0 else n), np.empty(0 if i == 0 else n), np.empty(n if i < len(sizes) - 1 else 0))
                    for i, n in enumerate(sizes)]  # fmt: skip
            self._local.work = work
        return work

    def __call__(self, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        work = self._work()
        x = np.empty(len(b)) if out is None else out
        bl = np.ascontiguousarray(b, dtype=np.float64).ravel()
        levels = [x] + [w[1] for w in work[1:]]
        for lvl, (a_ptr, a_idx, a_val, p_ptr, p_idx, p_val) in enumerate(self.ops):
            r = work[lvl][2]
            _gs_forward_from_zero(a_ptr, a_idx, a_val, bl, levels[lvl], r)
            bl = work[lvl + 1][0]
            _restrict(p_ptr, p_idx, p_val, r, bl)
        levels[-1][:] = self.coarse_inv @ bl
        for lvl in range(len(self.ops) - 1, -1, -1):
            a_ptr, a_idx, a_val, p_ptr, p_idx, p_val = self.ops[lvl]
            _prolong_add(p_ptr, p_idx, p_val, levels[lvl + 1], levels[lvl])
            rhs = work[lvl][0] if lvl > 0 else np.ascontiguousarray(b, dtype=np.float64).ravel()
            _gs_backward(a_ptr, a_idx, a_val, rhs, levels[lvl])
        return x


def _grid_amg(laplacian: sp.csr_matrix, node_raster: np.ndarray | None) -> object:
    """Pyamg MultilevelSolver: geometric levels with direct interpolation on the grid, Ruge-Stüben below.

    ``node_raster`` holds the unknown's id per cell (-1 none); every level keeps
    the cells on even rows and columns, plus every node not on the lattice
    (patches, and nodes left without a coarse neighbour).
    """
    import pyamg
    from pyamg.multilevel import MultilevelSolver
    from pyamg.relaxation.smoothing import change_smoothers

    smoothers = {"presmoother": ("gauss_seidel", {"sweep": "forward"}), "postsmoother": ("gauss_seidel", {"sweep": "backward"})}
    levels = []
    A = laplacian
    nodes = node_raster
    while nodes is not None and A.shape[0] > GEOMETRIC_MIN_NODES:
        n = A.shape[0]
        is_c = np.ones(n, dtype=bool)
        is_c[nodes[nodes >= 0]] = False  # lattice cells first become F ...
        sub = nodes[::2, ::2]
        is_c[sub[sub >= 0]] = True  # ... except the even rows and columns
        _fix_orphans(A.indptr, A.indices, is_c)
        ptr, pidx, pval, nc = _direct_interpolation(A.indptr, A.indices, A.data, is_c)
        if nc > 0.6 * n:  # coarsening stalls (a very fragmented grid): let Ruge-Stüben take over
            break
        # float32 weights: 4 bytes less per entry (32 MB at 4 M cells); the coarse matrix is the Galerkin product
        # with these same rounded weights, so the cycle stays symmetric and its coarse levels consistent
        P = sp.csr_matrix((pval.astype(np.float32), pidx, ptr.astype(np.int32)), shape=(n, nc))
        del pval
        R = P.T.tocsr()
        cptr, cidx, cval = _galerkin(A.indptr, A.indices, A.data, P.indptr, P.indices, P.data, R.indptr, R.indices, R.data, nc)
        del R  # the cycle restricts with P.T (a CSC view of P, no copy)
        level = MultilevelSolver.Level()
        level.A, level.P, level.R = A, P, P.T
        levels.append(level)
        A = sp.csr_matrix((cval, cidx, cptr.astype(np.int32)), shape=(nc, nc))
        A.has_sorted_indices = True
        coarse_id = np.cumsum(is_c) - 1
        nodes = np.where(sub >= 0, coarse_id[np.maximum(sub, 0)], -1)
    rest = pyamg.ruge_stuben_solver(A, max_coarse=500, **smoothers)
    if not levels:
        return rest
    ml = MultilevelSolver([*levels, *rest.levels], coarse_solver="pinv")
    change_smoothers(ml, **smoothers)
    return ml


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def estimate_memory_bytes(n_cells: int, n_nodes: int, n_stored: int = 0, method: str = "amg") -> int:
    """Rough peak memory of a circuit run (bytes): grid rasters, matrix, AMG hierarchy or factor, stored solutions.

    The factor of a direct solver grows as ``n log n`` on a grid (nested
    dissection): 1.6 GB peak for an earlier demo's 690,002 unknowns with PARDISO,
    measured with ``benchmarks/bench_circuit.py --demo``.  A direct solver holds
    the right-hand sides and the solutions of a block together (16 bytes per
    stored value and node instead of 8).

    Examples
    --------
    >>> round(estimate_memory_bytes(4_000_000, 3_600_000) / 1e9, 2)
    1.1
    >>> round(estimate_memory_bytes(2_195_000, 690_002, 15, "pardiso") / 1e9, 2)  # the demo: 1.50 GB measured
    1.66
    """
    base = n_cells * BYTES_PER_CELL
    if method == "amg":
        return int(base + n_nodes * BYTES_PER_NODE + n_stored * n_nodes * 8)
    fill = FACTOR_BYTES_PER_NODE_LOG2 * math.log2(max(n_nodes, 2))
    return int(base + n_nodes * (BYTES_PER_NODE_MATRIX + fill) + n_stored * n_nodes * 16)


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def _check_memory(n_cells: int, n_nodes: int, n_stored: int, limit_gb: float | None, method: str = "amg") -> None:
    need = estimate_memory_bytes(n_cells, n_nodes, n_stored, method)
    have = int(limit_gb * 1e9) if limit_gb is not None else _available_bytes()
    if need > have:
        what = "the limit max_memory_gb" if limit_gb is not None else "available memory"
        msg = (
            f"circuit: expected to need about {_fmt_bytes(need)} for {n_nodes:,} nodes ({method}), found {_fmt_bytes(have)} "
            f"({what}). Use coarser cells ([grid] cell_size_m), clip to corridors, fewer patches or pairs "
            "([circuit] include_pairs), or a machine with more memory."
        )
        raise MemoryLimitError(msg)
