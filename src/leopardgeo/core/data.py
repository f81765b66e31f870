"""Where the embedded Amur study area lives.

The demo data (``data/amur`` in the source tree) is found, in order, at
``$LEOPARDGEO_DATA``, inside the installed package (``leopardgeo/_data/amur``,
present in wheels), or at ``data/amur`` of the source checkout the package was
installed from (editable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

from leopardgeo.core.errors import DataError

__all__ = ["demo_data_dir"]

_MARKER = "landmask.tif"


def demo_data_dir() -> Path:
    """Folder of the embedded Amur study area.

    Raises
    ------
    DataError
        If the data cannot be found (e.g. a wheel built without it).
    """
    here = Path(__file__).resolve().parents[1]  # the leopardgeo package folder
    candidates = []
    env = os.environ.get("LEOPARDGEO_DATA")
    if env:
        candidates.append(Path(env))
    candidates += [here / "_data" / "amur", here.parents[1] / "data" / "amur"]
    for c in candidates:
        if (c / _MARKER).is_file():
            return c
    tried = ", ".join(str(c) for c in candidates)
    msg = (
        f"the embedded Amur study area was not found (looked in {tried}). "
        "Install leopardgeo from its source checkout (`pip install -e .`) or set LEOPARDGEO_DATA "
        "to the folder holding landmask.tif and amur.gpkg."
    )
    raise DataError(msg)
