"""The core layer: the analysis grid, the errors, CRS and unit helpers, validation helpers, the data locator.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ('grid', 'errors', '_crs', 'data', 'validation', 'version')

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
