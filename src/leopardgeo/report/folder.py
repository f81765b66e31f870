"""Reading a run folder for the report: the GeoPackage layers, CSV and JSON files, the grid.

A file that exists but cannot be read raises :class:`~leopardgeo.core.errors.DataError`
naming the file and the re-run (``_damaged``), never a bare parser traceback.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

import pyogrio

from leopardgeo.core.errors import DataError
from leopardgeo.io import GPKG_NAME


# ---------------------------------------------------------------------- reading the run
class _RunFolder:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.gpkg = self.dir / GPKG_NAME
        if not self.gpkg.is_file():
            msg = (
                f"{str(self.dir)!r}: expected a run folder holding {GPKG_NAME}, found none. "
                f"Run `leopardgeo run --out {self.dir}` first."
            )
            raise DataError(msg)
        try:
            self.layers = [str(n) for n in pyogrio.list_layers(self.gpkg)[:, 0]]
        except Exception as exc:  # pyogrio / GDAL / sqlite errors on a damaged file
            raise _damaged(self.gpkg, "a GeoPackage", exc) from exc

    def has(self, name: str) -> bool:
        return name in self.layers if "." not in name else (self.dir / name).is_file()

    def table(self, layer: str) -> pd.DataFrame | None:
        if layer not in self.layers:
            return None
        try:
            return pd.DataFrame(pyogrio.read_dataframe(self.gpkg, layer=layer, read_geometry=False))
        except Exception as exc:
            raise _damaged(self.gpkg, f"a GeoPackage with a readable layer {layer!r}", exc) from exc

    def frame(self, layer: str) -> Any:
        """The layer with its geometry (a GeoDataFrame), or None if absent or empty."""
        if layer not in self.layers:
            return None
        gdf = pyogrio.read_dataframe(self.gpkg, layer=layer)
        return gdf if len(gdf) else None

    def json(self, name: str) -> Any:
        p = self.dir / name
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{p}: expected JSON, found a file that does not parse ({exc}). Re-run the stage that wrote it."
            raise DataError(msg) from exc

    def csv(self, name: str) -> pd.DataFrame | None:
        p = self.dir / name
        if not p.is_file():
            return None
        try:
            return pd.read_csv(p)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise _damaged(p, "a CSV table", exc) from exc


def _damaged(path: Path, expected: str, exc: BaseException) -> DataError:
    """The error for a run file that exists but cannot be read."""
    msg = (
        f"{str(path)!r}: expected {expected}, found a file that cannot be read ({type(exc).__name__}: {exc}). "
        "It is damaged or was replaced: re-run `leopardgeo run` into this folder with --overwrite."
    )
    return DataError(msg)


def _crs_text(crs: Any) -> str:
    """``EPSG:xxxx`` when the CRS has a code, else its PROJ string (short enough for a table)."""
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PROJ strings drop datum details; this text is for reading only
        return str(crs.to_proj4()).replace(" +no_defs=True", "").replace(" +no_defs", "")


def _grid_info(run: _RunFolder) -> dict[str, Any]:
    import rasterio

    for name in ("suitability.tif", "resistance.tif", "patches.tif"):
        p = run.dir / name
        if p.is_file():
            with rasterio.open(p) as ds:
                crs = ds.crs
                return {
                    "crs": _crs_text(crs) if crs else None,
                    "crs_wkt": crs.to_wkt() if crs else None,
                    "cell_size_m": float(abs(ds.transform.a)),
                    "shape": [int(ds.height), int(ds.width)],
                    "bounds": [float(v) for v in ds.bounds],
                }
    return {"crs": None, "crs_wkt": None, "cell_size_m": None, "shape": None, "bounds": None}


def _patch_names(run: _RunFolder) -> dict[int, str]:
    nodes = run.table("graph_nodes")
    if nodes is None:
        nodes = run.table("patches")
    if nodes is None or "name" not in nodes.columns:
        return {}
    return {int(i): str(n) for i, n in zip(nodes["patch_id"], nodes["name"].fillna(""), strict=True) if str(n)}


def _patch_label(pid: int, names: dict[int, str]) -> str:
    name = names.get(int(pid), "")
    return f"{int(pid)} ({name})" if name else str(int(pid))
