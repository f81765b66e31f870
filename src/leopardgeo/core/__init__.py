"""The core layer: the analysis grid, the errors, CRS and unit helpers, validation helpers, the data locator.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

from leopardgeo.core._lazy import submodule_getattr

__all__: list[str] = []


__getattr__ = submodule_getattr(__name__)
