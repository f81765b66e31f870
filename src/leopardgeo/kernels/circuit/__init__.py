r"""Circuit-theory current flow between patches (Circuitscape; McRae et al. 2008).

Each valid cell is a node joined to its 4 or 8 neighbours by a conductance; each
focal region (a patch) is short-circuited into one node.  Driving 1 A between
patches gives voltages, branch currents and the effective resistance
(McRae, Dickson, Keitt & Shah 2008, *Ecology* 89:2712-2724).

Conventions follow Circuitscape (``compute.py`` / ``Circuitscape.jl``):

* conductance of a cell :math:`c = 1/r`; between neighbours
  :math:`g_{uv} = (c_u + c_v)/2` (axial) and :math:`(c_u + c_v)/(2\sqrt2)`
  (diagonal), or with ``avg_resistances`` :math:`g_{uv} = 1/(\ell (r_u + r_v)/2)`
  with :math:`\ell` = 1 or √2;
* branch current :math:`I_{uv} = g_{uv}(v_u - v_v)`; current density of a node =
  half the sum of the absolute currents of its branches plus half the absolute
  current injected or taken out there (= the current passing through it); every
  cell of a short-circuited patch shows its patch node's value;
* modes ``pairwise`` (1 A from a to b for each pair), ``one_to_all`` (1 A into
  one patch, all others grounded) and ``all_to_one`` (1 A into every other
  patch, one grounded); cumulative current = the sum of the solves' maps.

Focal regions in pairwise mode
------------------------------
By default (``focal_shorting="pair"``) each pairwise solve short-circuits only
the pair's two patches, as Circuitscape does; the other patches' cells are
ordinary cells, so every pair has its own network and factor.  With
``focal_shorting="all"`` every patch is short-circuited in every solve (what
Circuitscape computes with the patches also given as short-circuit regions);
one-to-all and all-to-one always short-circuit every patch.  docs/circuit.md
shows where the two conventions differ.

How the solves are shared
-------------------------
With every patch of a network short-circuited, one patch per connected
component is the ground; the reduced Laplacian is then symmetric positive
definite and the same for every solve, so its factor (PARDISO, CHOLMOD or
SuperLU) or AMG preconditioner is built once (:func:`choose_solver`).  With
``m`` patches in a component, the ``m - 1`` unit-injection solutions
:math:`x_k` (1 A into patch k, out at the ground; one block solve with a
factor) give every mode by superposition: pairwise a-b is :math:`x_a - x_b`;
one-to-all and all-to-one solve an ``m``-by-``m`` system for the injections
(exact linear algebra, not an approximation).  When storing the :math:`x_k`
would not fit in memory, pairwise and all-to-one fall back to solving in blocks
with the same factor or preconditioner.  The current maps of all solves come
from one compiled pass over the grid (each branch visited once), on threads.

Modules
-------
``assembly``
    :class:`CircuitNetwork` and :func:`build_network` (the reduced Laplacian).
``solvers``
    :class:`LaplacianSolver` (PARDISO, CHOLMOD, SuperLU, AMG-CG),
    :func:`choose_solver` and :func:`estimate_memory_bytes`.
``currents``
    :func:`current_density` and the compiled passes for the maps of many solves.
``modes``
    :func:`circuit_flow`: pairwise, one-to-all and all-to-one.
``advanced``
    :func:`advanced_flow`: Circuitscape's advanced mode (source and ground rasters).
``network``
    :func:`network_resistances` (network / graph mode).
``_compiled``
    The numba kernels.
"""

from leopardgeo.kernels.circuit._compiled import _OFFSETS  # noqa: F401 - re-exported
from leopardgeo.kernels.circuit.advanced import AdvancedResult, SourceGroundConflict, advanced_flow
from leopardgeo.kernels.circuit.assembly import CircuitNetwork, assemble_laplacian, build_network, solve_nodes
from leopardgeo.kernels.circuit.currents import SERIAL_CELLS, current_density  # noqa: F401 - re-exported
from leopardgeo.kernels.circuit.modes import CircuitResult, check_pairs, circuit_flow
from leopardgeo.kernels.circuit.network import network_resistances
from leopardgeo.kernels.circuit.solvers import (  # noqa: F401 - re-exported
    BYTES_PER_CELL,
    BYTES_PER_NODE,
    BYTES_PER_NODE_MATRIX,
    DIRECT_ALWAYS_NODES,
    DIRECT_BLOCK_RHS,
    DIRECT_MAX_NODES,
    DIRECT_MIN_RHS,
    FACTOR_BYTES_PER_NODE_LOG2,
    GEOMETRIC_MIN_NODES,
    SMALL_NODES,
    LaplacianSolver,
    _cholespy,
    _pardiso,
    choose_solver,
    direct_backend,
    estimate_memory_bytes,
    grid_orderable,
)

__all__ = [
    "AdvancedResult",
    "CircuitNetwork",
    "CircuitResult",
    "LaplacianSolver",
    "SourceGroundConflict",
    "advanced_flow",
    "assemble_laplacian",
    "build_network",
    "check_pairs",
    "choose_solver",
    "circuit_flow",
    "current_density",
    "direct_backend",
    "estimate_memory_bytes",
    "grid_orderable",
    "network_resistances",
    "solve_nodes",
]
