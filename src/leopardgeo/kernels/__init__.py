"""The kernel layer: array-level compiled code and solvers (cost distance, circuit assembly and solves).

Kernels take arrays and a :class:`~leopardgeo.core.grid.Grid`; they know no stage, no config file and no path.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

from leopardgeo.core._lazy import submodule_getattr

__all__: list[str] = []


__getattr__ = submodule_getattr(__name__)
