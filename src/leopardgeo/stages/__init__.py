"""The stage layer: one module per analysis stage (plain arrays, GeoDataFrames and graphs in and out).

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = (
    'habitat', 'resistance', 'patches', 'graph', 'corridors', 'pinchpoints', 'barrier_mapper',
    'metrics', 'crossborder', 'score', 'territories', 'sites', 'simulate', 'poplandscape', 'nodes',
)

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
