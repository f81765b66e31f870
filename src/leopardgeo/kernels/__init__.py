"""The kernel layer: array-level compiled code and solvers (cost distance, circuit assembly and solves).

Kernels take arrays and a :class:`~leopardgeo.core.grid.Grid`; they know no stage, no config file and no path.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ('costdist', 'circuit', 'popkernel', 'genetics', 'graph_metrics')

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
