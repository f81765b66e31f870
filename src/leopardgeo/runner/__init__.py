"""The run layer: the pipeline that chains the stages into a run folder, and its manifest.

Named ``runner`` rather than ``run`` so that the subpackage never shadows the function :func:`leopardgeo.run`.

Submodules load on first access (PEP 562).
"""

from __future__ import annotations

from leopardgeo.core._lazy import submodule_getattr

__all__: list[str] = []


__getattr__ = submodule_getattr(__name__)
