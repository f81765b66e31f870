"""The run layer: the pipeline that chains the stages into a run folder, and its manifest.

Named ``runner`` rather than ``run`` so that the subpackage never shadows the function :func:`leopardgeo.run`.

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
