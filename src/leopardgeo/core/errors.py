"""The one exception and warning hierarchy of leopardgeo.

Every error a user can cause derives from :class:`LeopardGeoError`, so a caller
can catch them all in one place, and each also derives from the matching
built-in (``ValueError``, ``FileExistsError``...) so generic handlers work too.
Messages say what was expected, what was found and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AlignmentError",
    "CRSError",
    "ConfigError",
    "DataError",
    "InvalidGeometryWarning",
    "LeopardGeoError",
    "LeopardGeoWarning",
    "MemoryLimitError",
    "MultiBandWarning",
    "NoPathError",
    "NodataWarning",
    "OutputError",
    "OutputExistsError",
    "ResistanceError",
    "RunLockedError",
    "SmallPatchWarning",
]


class LeopardGeoError(Exception):
    """Root of every error leopardgeo raises on purpose."""


class ConfigError(LeopardGeoError, ValueError):
    """A configuration key is unknown or a value is out of range."""


class CRSError(LeopardGeoError, ValueError):
    """A coordinate reference system is missing, geographic, or not in metres."""


class AlignmentError(LeopardGeoError, ValueError):
    """Rasters or vectors do not share the analysis grid, or do not overlap it."""


class DataError(LeopardGeoError, ValueError):
    """An input cannot be used: missing file, empty layer, all-nodata raster."""


class ResistanceError(LeopardGeoError, ValueError):
    """Resistance values are not finite or not strictly positive."""


class NoPathError(LeopardGeoError):
    """A patch or source cannot be reached (it lies wholly in no-data)."""


class MemoryLimitError(LeopardGeoError, MemoryError):
    """A computation is estimated to need more memory than is available or allowed."""


class OutputExistsError(LeopardGeoError, FileExistsError):
    """An output exists and ``overwrite`` was not requested."""


class RunLockedError(LeopardGeoError):
    """Another run is writing into the same output folder (the message names it)."""


class LeopardGeoWarning(UserWarning):
    """Root of leopardgeo's warnings."""


class NodataWarning(LeopardGeoWarning):
    """An input has more no-data than expected (e.g. partly outside the grid)."""


class InvalidGeometryWarning(LeopardGeoWarning):
    """Invalid geometries were repaired with ``shapely.make_valid``."""


class SmallPatchWarning(LeopardGeoWarning):
    """A patch or protected area is smaller than the minimum patch area."""


class MultiBandWarning(LeopardGeoWarning):
    """A raster with several bands was read without naming the band (band 1 is used)."""


class OutputError(LeopardGeoError, OSError):
    """An output cannot be written: read-only or missing folder, disk full, a path too long."""
