"""The run layer: the pipeline that chains the stages into a run folder, and its manifest.

Named ``runner`` rather than ``run`` so that the subpackage never shadows the function :func:`leopardgeo.run`.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ('pipeline', 'manifest')

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
