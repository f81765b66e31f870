"""leopardgeo: territory and corridor analysis for the Amur leopard.

Habitat rasters and protected areas -> suitability -> resistance -> habitat
patches, on one analysis grid in a projected CRS (metres).

Examples
--------
>>> import leopardgeo
>>> issubclass(leopardgeo.ConfigError, leopardgeo.LeopardGeoError)
True
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leopardgeo")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from leopardgeo.config import RunConfig, demo_config, dump_config, load_config  # noqa: E402
from leopardgeo.errors import (  # noqa: E402
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
from leopardgeo.grid import Grid  # noqa: E402
from leopardgeo.pipeline import run  # noqa: E402

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


def show_versions() -> str:
    """Versions of leopardgeo and the libraries it stands on (for bug reports)."""
    import platform

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
