"""The stage layer: one module per analysis stage (plain arrays, GeoDataFrames and graphs in and out).

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

from leopardgeo.core._lazy import submodule_getattr

__all__: list[str] = []


__getattr__ = submodule_getattr(__name__)
