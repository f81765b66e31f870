"""``leopardgeo omniscape --resistance FILE``: Omniscape on GeoTIFFs, outside a run, written all-or-nothing.

The inputs are read band by band (:func:`leopardgeo.stages.omniscape.omniscape_files`), so a task holds
only its rows of them; the maps are written as Cloud-Optimized GeoTIFFs with QGIS styles, plus
``omniscape.json`` (the window, the number of windows, the time), into ``out_dir`` through
:class:`leopardgeo.io.OutputWriter`: nothing in the folder changes unless every file is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from leopardgeo.io import RASTERS, OutputWriter
from leopardgeo.stages.omniscape import OMNISCAPE_RASTERS, OmniscapeConfig, omniscape_files, omniscape_summary

__all__ = ["run_omniscape_files"]


def run_omniscape_files(
    resistance: str | Path,
    *,
    out_dir: str | Path,
    cfg: OmniscapeConfig,
    source: str | Path | None = None,
    overwrite: bool = False,
    executor: object | None = None,
) -> list[Path]:
    """Compute Omniscape's maps from GeoTIFFs and write them into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    OutputExistsError
        If an output exists and ``overwrite`` is false (checked before any work).
    ConfigError, DataError, AlignmentError
        Bad options, unreadable or misaligned inputs.
    """
    names = [n for n in OMNISCAPE_RASTERS if _asked(n, cfg)] + ["omniscape.json"]
    inputs = [p for p in (resistance, source) if p is not None]
    with OutputWriter(out_dir, overwrite=overwrite, names=names, inputs=inputs) as writer:
        result, grid = omniscape_files(resistance, cfg=cfg, source_path=source, executor=executor)
        for name, array in result.rasters().items():
            writer.raster(name, array, grid, nodata=np.nan, description=RASTERS[name])
        writer.text("omniscape.json", json.dumps(omniscape_summary(result, cfg, grid.cell_size_m), indent=1))
    return [Path(out_dir) / n for n in names]


def _asked(name: str, cfg: OmniscapeConfig) -> bool:
    if name == "omniscape_flow_potential.tif":
        return cfg.flow_potential
    if name == "omniscape_normalized.tif":
        return cfg.normalized_current
    return True
