"""leopardgeo: territory and corridor analysis for the Amur leopard.

Habitat rasters and protected areas -> suitability -> resistance -> habitat
patches, on one analysis grid in a projected CRS (metres).

The package is lazy (PEP 562): ``import leopardgeo`` loads almost nothing, and each
name below (and each layer subpackage) is imported on first use, so
``leopardgeo --help`` does not pay for numba, scipy and GDAL.

Examples
--------
>>> import leopardgeo
>>> issubclass(leopardgeo.ConfigError, leopardgeo.LeopardGeoError)
True
>>> leopardgeo.maps.__name__
'leopardgeo.report.maps'
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from leopardgeo.core.version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from leopardgeo.config import dump_config
    from leopardgeo.core.errors import (
        AlignmentError,
        ConfigError,
        CRSError,
        DataError,
        LeopardGeoError,
        LeopardGeoWarning,
        NoPathError,
        OutputExistsError,
        ResistanceError,
    )
    from leopardgeo.core.grid import Grid
    from leopardgeo.runner.pipeline import run
    from leopardgeo.runner.registry import RunConfig, demo_config, load_config, load_config_string  # noqa: F401

#: Public names -> the module that defines them (imported on first access).
_NAMES = {
    "RunConfig": "leopardgeo.runner.registry",
    "demo_config": "leopardgeo.runner.registry",
    "dump_config": "leopardgeo.config",
    "load_config": "leopardgeo.runner.registry",
    "load_config_string": "leopardgeo.runner.registry",
    "AlignmentError": "leopardgeo.core.errors",
    "ConfigError": "leopardgeo.core.errors",
    "CRSError": "leopardgeo.core.errors",
    "DataError": "leopardgeo.core.errors",
    "LeopardGeoError": "leopardgeo.core.errors",
    "LeopardGeoWarning": "leopardgeo.core.errors",
    "NoPathError": "leopardgeo.core.errors",
    "OutputExistsError": "leopardgeo.core.errors",
    "ResistanceError": "leopardgeo.core.errors",
    "Grid": "leopardgeo.core.grid",
    "run": "leopardgeo.runner.pipeline",
}

#: Subpackages (the layers) and the modules that lived at the top level before them, by their short name.
_MODULES = {
    "core": "leopardgeo.core",
    "config": "leopardgeo.config",
    "io": "leopardgeo.io",
    "kernels": "leopardgeo.kernels",
    "stages": "leopardgeo.stages",
    "runner": "leopardgeo.runner",
    "report": "leopardgeo.report",
    "cli": "leopardgeo.cli",
    "testing": "leopardgeo.testing",
    "grid": "leopardgeo.core.grid",
    "errors": "leopardgeo.core.errors",
    "data": "leopardgeo.core.data",
    "styles": "leopardgeo.io.styles",
    "costdist": "leopardgeo.kernels.costdist",
    "circuit": "leopardgeo.kernels.circuit",
    "habitat": "leopardgeo.stages.habitat",
    "resistance": "leopardgeo.stages.resistance",
    "patches": "leopardgeo.stages.patches",
    "graph": "leopardgeo.stages.graph",
    "corridors": "leopardgeo.stages.corridors",
    "pinchpoints": "leopardgeo.stages.pinchpoints",
    "barrier_mapper": "leopardgeo.stages.barrier_mapper",
    "metrics": "leopardgeo.stages.metrics",
    "crossborder": "leopardgeo.stages.crossborder",
    "score": "leopardgeo.stages.score",
    "territories": "leopardgeo.stages.territories",
    "sites": "leopardgeo.stages.sites",
    "simulate": "leopardgeo.stages.simulate",
    "pipeline": "leopardgeo.runner.pipeline",
    "manifest": "leopardgeo.runner.manifest",
    "runreport": "leopardgeo.report.runreport",
    "maps": "leopardgeo.report.maps",
}

__all__ = [
    "AlignmentError",
    "CRSError",
    "ConfigError",
    "DataError",
    "Grid",
    "LeopardGeoError",
    "LeopardGeoWarning",
    "NoPathError",
    "OutputExistsError",
    "ResistanceError",
    "RunConfig",
    "__version__",
    "demo_config",
    "dump_config",
    "load_config",
    "run",
    "show_versions",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        msg = f"module 'leopardgeo' has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_MODULES))


def show_versions() -> str:
    """Versions of leopardgeo and the libraries it stands on (for bug reports)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    names = ["numpy", "scipy", "shapely", "pyproj", "rasterio", "pyogrio", "geopandas", "networkx", "numba"]
    lines = [f"leopardgeo {__version__}", f"python {platform.python_version()} ({platform.platform()})"]
    for n in names:
        try:
            lines.append(f"{n} {version(n)}")
        except PackageNotFoundError:
            lines.append(f"{n} not installed")
    import rasterio

    lines.append(f"GDAL (rasterio) {rasterio.__gdal_version__}")
    return "\n".join(lines)
