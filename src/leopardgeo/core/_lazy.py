"""Lazy submodules for the layer packages (PEP 562): one ``__getattr__`` shared by every ``__init__``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType


def submodule_getattr(package: str) -> Callable[[str], ModuleType]:
    """A module-level ``__getattr__`` for ``package`` that imports its submodule ``name`` on first access.

    Examples
    --------
    >>> getattr_ = submodule_getattr("leopardgeo.core")
    >>> getattr_("grid").__name__
    'leopardgeo.core.grid'
    """

    def __getattr__(name: str) -> ModuleType:
        """Import the submodule ``name`` on first access (PEP 562)."""
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
        msg = f"module {package!r} has no attribute {name!r}"
        raise AttributeError(msg)

    return __getattr__
