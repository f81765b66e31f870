"""The kernel layer: array-level compiled code and solvers (cost distance, circuit assembly and solves).

Kernels take arrays and a :class:`~leopardgeo.core.grid.Grid`; they know no stage, no config file and no path.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    """Import the submodule ``name`` on first access (PEP 562)."""
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
